"""``qwenlong-verl`` command line: one subcommand per module in :mod:`qwenlong_verl.commands`.

Each command module defines ``register(subparsers)``, which adds its parser and sets ``func`` (returning an exit
code). New commands need no change here.

Errors never reach the user as a traceback: :func:`main` prints one line naming the problem (``-v`` adds the
traceback), and Ctrl-C prints what was kept and how to resume (a command may set ``interrupt_hint``, a function of
its arguments, with ``set_defaults``) and exits 130.

A handled error (a bad config key, an unreadable input file, a server that gave up) and a bug are told apart by the
exit code: 1 for the first, :data:`EXIT_INTERNAL` (70, ``EX_SOFTWARE``) for any other exception, so a script or a
test that expects 1 is never satisfied by a ``TypeError``. The codes are listed in ``qwenlong-verl --help``.
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

EXIT_OK = 0
EXIT_FAILED = 1  # a handled error, or a check/run that did not pass
EXIT_USAGE = 2  # a bad option or an unusable input named on the command line
EXIT_INTERNAL = 70  # an exception no command anticipated (a bug): EX_SOFTWARE in sysexits.h
EXIT_INTERRUPTED = 128 + int(signal.SIGINT)  # 130: Ctrl-C
EXIT_TERMINATED = 128 + int(signal.SIGTERM)  # 143: SIGTERM

EXIT_CODES_EPILOG = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_FAILED}    handled error: the one line printed names the problem and the fix (or a check did not pass)
  {EXIT_USAGE}    bad option or unusable input file/path (argparse errors too)
  {EXIT_INTERNAL}   internal error (a bug): one line naming the exception; rerun with -v for the traceback
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): the line printed says what was kept and how to resume
  {EXIT_TERMINATED}  terminated (SIGTERM): as for Ctrl-C"""

# Errors a command may let through on purpose: each message names the problem and the fix, so the user gets that
# one line and exit 1. Imported when an error happens (module, class name), so `qwenlong-verl --help` stays cheap.
_HANDLED_ERRORS = (
    ("qwenlong_verl.config", "QwenLongConfigError"),
    ("qwenlong_verl.data.prepare", "DataPrepError"),
    ("qwenlong_verl.data.sft", "SFTDataError"),
    ("qwenlong_verl.evaluation.client", "ChatRequestError"),
    ("qwenlong_verl.evaluation.data", "EvalDataError"),
    ("qwenlong_verl.evaluation.store", "EvalStoreError"),
    ("qwenlong_verl.openai_client", "RequestFailed"),
    ("qwenlong_verl.pipeline.pipeline_options", "PipelineError"),
    ("qwenlong_verl.preflight.model_facts", "ModelConfigError"),
    ("qwenlong_verl.reward.rule", "UnknownDataSourceError"),
    ("qwenlong_verl.reward.scoring", "RowError"),
    ("qwenlong_verl.rope_scaling", "RopeScalingError"),
    ("qwenlong_verl.row_files", "RowFileError"),
    ("qwenlong_verl.sampling.difficulty", "DifficultyFileError"),
    ("qwenlong_verl.sampling.phases", "MissingLengthError"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwenlong-verl",
        description="QwenLong-L1 long-context RL recipe for verl 0.9.1: tools around the plugins.",
        epilog=EXIT_CODES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    from qwenlong_verl.redaction import install_stream_redaction

    install_stream_redaction()  # before argparse: its errors quote the arguments (URLs with passwords, keys)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    # httpx (the judge's and eval's client) logs one INFO line per request: only with -v
    logging.getLogger("httpx").setLevel(logging.INFO if args.verbose else logging.WARNING)
    from qwenlong_verl.redaction import install_log_redaction

    install_log_redaction()  # no URL password in any log line; no log line that fails to encode
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
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


def handled_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes that mean "the user can fix this" (exit 1 with their message), plus ``OSError`` (a
    missing file, a full disk, a refused connection). A module that fails to import is skipped: the handler must
    never raise while reporting an error."""
    found: list[type[BaseException]] = [OSError]
    for module_name, name in _HANDLED_ERRORS:
        try:
            found.append(getattr(importlib.import_module(module_name), name))
        except (ImportError, AttributeError):  # a broken install: the error is reported as internal, still one line
            continue
    return tuple(found)


def run_command(args: argparse.Namespace) -> int:
    """Run ``args.func``; turn Ctrl-C, SIGTERM and errors into one line and an exit code.

    Args:
        args: parsed arguments; ``func`` returns the command's exit code, ``command`` names it in messages,
            ``verbose`` adds tracebacks and ``interrupt_hint`` (optional) says what Ctrl-C kept.

    Returns:
        The command's own code; :data:`EXIT_FAILED` (or the error's ``exit_code``) for a handled error;
        :data:`EXIT_INTERNAL` for any other exception; 130 for Ctrl-C and 143 for SIGTERM.
    """
    from qwenlong_verl.commands._args import CommandError
    from qwenlong_verl.model_source import TokenizerLoadError
    from qwenlong_verl.outputs import OutputPathError
    log = logging.getLogger("qwenlong_verl")
    verbose = bool(getattr(args, "verbose", False))
    where = f"qwenlong-verl {args.command}" if getattr(args, "command", None) else "qwenlong-verl"
    try:
        with sigterm_as_exception():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        hint = getattr(args, "interrupt_hint", None)
        text = hint(args) if callable(hint) else "no output was written; rerun the command to start again"
        if isinstance(exc, Terminated):
            print(f"\nterminated (SIGTERM): {text}", file=sys.stderr)
            return EXIT_TERMINATED
        print(f"\ninterrupted: {text}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CommandError, OutputPathError, TokenizerLoadError) as exc:
        log.error("%s", exc, exc_info=verbose)
        return getattr(exc, "exit_code", EXIT_USAGE)
    except Exception as exc:  # the last line of defence: never a bare traceback for a user
        if isinstance(exc, handled_error_types()):
            log.error("%s: %s", where, _one_line(exc), exc_info=verbose)
            code = getattr(exc, "exit_code", EXIT_FAILED)
            return code if isinstance(code, int) and code > 0 else EXIT_FAILED
        log.error("internal error in %s: %s: %s%s", where, type(exc).__name__, _one_line(exc),
                  "" if verbose else " (rerun with -v for the traceback)", exc_info=verbose)
        return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or repr(exc)
    return text if len(text) <= 500 else text[:497] + "..."


if __name__ == "__main__":
    sys.exit(main())
