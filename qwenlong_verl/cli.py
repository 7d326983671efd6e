"""``qwenlong-verl`` command line: one subcommand per module in :mod:`qwenlong_verl.commands`.

Each command module defines ``register(subparsers)``, which adds its parser and sets ``func`` (returning an exit
code). New commands need no change here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from qwenlong_verl import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwenlong-verl",
        description="QwenLong-L1 long-context RL recipe for verl 0.9.1: tools around the plugins.",
    )
    parser.add_argument("--version", action="version", version=f"qwenlong-verl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
