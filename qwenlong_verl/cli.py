"""``qwenlong-verl`` command line: one subcommand per module in :mod:`qwenlong_verl.commands`.

Each command module defines ``register(subparsers)``, which adds its parser and sets ``func`` (returning an exit
code). New commands need no change here.

Errors never reach the user as a traceback: :func:`main` prints one line naming the problem (``-v`` adds the
traceback), and Ctrl-C prints what was kept and how to resume (a command may set ``interrupt_hint``, a function of
its arguments, with ``set_defaults``) and exits 130.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterator

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
    for command_parser in sub.choices.values():  # `qwenlong-verl score ... -v` works as well as `-v score ...`
        command_parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                    help="debug logging, and the traceback of an unexpected error")
    return parser


def main(argv: list[str] | None = None) -> int:
    from qwenlong_verl.io_safety import install_stream_redaction

    install_stream_redaction()  # before argparse: its errors quote the arguments (URLs with passwords, keys)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    # httpx (the judge's and eval's client) logs one INFO line per request: only with -v
    logging.getLogger("httpx").setLevel(logging.INFO if args.verbose else logging.WARNING)
    from qwenlong_verl.io_safety import install_log_redaction

    install_log_redaction()  # no URL password in any log line; no log line that fails to encode
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_command(args)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler, a container stop) as an exception in the main thread.

    Python's default for SIGTERM is to die on the spot: no ``finally`` runs, so worker pools and child processes
    are left behind (``prepare --workers 2``'s workers stayed blocked on the dead parent's pipe). As a
    :class:`KeyboardInterrupt` it takes the path every command already has for Ctrl-C: work unwinds, pools are
    terminated, what was kept is said, and the exit status is 128 + 15."""

    signum = signal.SIGTERM


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """While inside: SIGTERM raises :class:`Terminated` in the main thread (elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(args: argparse.Namespace) -> int:
    """Run ``args.func``; turn Ctrl-C, SIGTERM and unexpected errors into one line and an exit code."""
    from qwenlong_verl.cli_args import CommandError
    from qwenlong_verl.io_safety import OutputPathError
    log = logging.getLogger("qwenlong_verl")
    verbose = bool(getattr(args, "verbose", False))
    try:
        with sigterm_as_exception():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        hint = getattr(args, "interrupt_hint", None)
        text = hint(args) if callable(hint) else "no output was written; rerun the command to start again"
        if isinstance(exc, Terminated):
            print(f"\nterminated (SIGTERM): {text}", file=sys.stderr)
            return 128 + int(signal.SIGTERM)
        print(f"\ninterrupted: {text}", file=sys.stderr)
        return 130
    except (CommandError, OutputPathError) as exc:
        log.error("%s", exc, exc_info=verbose)
        return getattr(exc, "exit_code", 2)
    except Exception as exc:  # the last line of defence: never a bare traceback for a user
        where = f" in qwenlong-verl {args.command}" if getattr(args, "command", None) else ""
        log.error("%s%s: %s%s", type(exc).__name__, where, _one_line(exc),
                  "" if verbose else " (run with -v for the traceback)", exc_info=verbose)
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or repr(exc)
    return text if len(text) <= 500 else text[:497] + "..."


if __name__ == "__main__":
    sys.exit(main())
