"""Helpers of the reliability tests (tests/test_reliability_*.py): run the CLI in-process or as a user would, and
check that a failure leaves no traceback and no damaged file."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import qwenlong_verl

# the folder that holds the qwenlong_verl being tested (a checkout or site-packages): subprocesses use the same code
PKG_ROOT = str(Path(qwenlong_verl.__file__).resolve().parent.parent)
UNEXPECTED = "run with -v for the traceback"  # printed only for an exception no command anticipated


def run_cli(args: list[str]) -> int:
    """``qwenlong-verl ARGS`` in this process; argparse's exit code is returned, not raised."""
    from qwenlong_verl.cli import main

    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # argparse refuses an option value
        return int(exc.code or 0)


def run_cli_process(args: list[str], cwd: Path, env: dict[str, str] | None = None,
                    timeout: float = 180) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "qwenlong_verl.cli", *[str(a) for a in args]], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def assert_clean_failure(text: str) -> None:
    """A failure a user sees: no traceback, no 'unexpected error' line."""
    assert "Traceback" not in text, text[-3000:]
    assert UNEXPECTED not in text, text[-3000:]


def digest(path: Path) -> str | None:
    """Content hash of a file (None when absent): compare before and after a failed run."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def closed_port() -> int:
    """A local port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
