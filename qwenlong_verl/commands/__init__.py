"""Subcommands of ``qwenlong-verl``; each module defines ``register(subparsers)``."""
