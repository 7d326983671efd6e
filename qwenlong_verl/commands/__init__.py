"""Subcommands of ``qwenlong-verl``; each module defines ``register(subparsers)``.

A module whose name starts with ``_`` is not a subcommand: ``_args`` holds the argparse types and
:class:`~qwenlong_verl.commands._args.CommandError` that the commands share.
"""
