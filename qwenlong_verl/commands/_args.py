"""Argument types and user-facing errors shared by the ``qwenlong-verl`` commands (argparse only: what the library
needs lives below the command line, e.g. :data:`qwenlong_verl.config.SEED_MAX`, :mod:`qwenlong_verl.model_source`).

A bad option value is refused by argparse itself (exit 2, one line naming the option and the accepted range), before
any work. :class:`CommandError` is what a command raises for a problem the user can fix; the top-level handler in
:mod:`qwenlong_verl.cli` prints its message as one line.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from qwenlong_verl.config import SEED_MAX


class CommandError(Exception):
    """A problem the user can fix (bad input file, unusable path, unreachable server); printed as one line."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _number(text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
                                         ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _ranged(kind: type, ok, wanted: str):
    """An argparse type: a number of ``kind`` for which ``ok(value)`` holds, else "expected <wanted>"."""
    def parse(text: str):
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


positive_int = _ranged(int, lambda v: v >= 1, "an integer >= 1")
nonneg_int = _ranged(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _ranged(float, lambda v: v > 0, "a number > 0")
nonneg_float = _ranged(float, lambda v: v >= 0, "a number >= 0")
# A probability in (0, 1] (top-p).
unit_interval = _ranged(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


def bounded_int(low: int, high: int):
    """An argparse type: an integer in [low, high]. Every count a user gives (requests in flight, retries, rows) has
    an upper bound: a typo such as ``--judge-concurrency 100000`` must be refused, not open 100000 sockets."""
    return _ranged(int, lambda v: low <= v <= high, f"an integer from {low} to {high}")


def bounded_float(low: float, high: float):
    """An argparse type: a finite number in [low, high] (timeouts, fractions)."""
    return _ranged(float, lambda v: low <= v <= high, f"a number from {low:g} to {high:g}")


def seed(text: str) -> int:
    """An argparse type: a random seed, 0 to 2**32-1 (numpy refuses others; a typo must not pass silently)."""
    return bounded_int(0, SEED_MAX)(text)


MAX_TOKEN_COUNT = 100_000_000  # tokens of one prompt or response: far beyond any model's context


def positive_ints(text: str) -> list[int]:
    """``20000,60000``: comma-separated positive integers (phase bounds; their order is checked by the command)."""
    parts = [x.strip() for x in text.split(",")]
    if not text.strip() or any(not x for x in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated token counts such as 20000,60000, got {text!r}")
    try:
        values = [int(x) for x in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole token counts such as 20000,60000, got {text!r}") from None
    if any(not 1 <= v <= MAX_TOKEN_COUNT for v in values):
        raise argparse.ArgumentTypeError(f"token counts must be from 1 to {MAX_TOKEN_COUNT}, got {text!r}")
    return values


def json_object(text: str) -> dict[str, Any]:
    """A JSON object on the command line (``'{"enable_thinking": false}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at column {exc.colno}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"key\": 1}}', got {text!r}")
    return value


def http_url(text: str) -> str:
    """An http(s) URL with a host (``http://127.0.0.1:8000/v1``); a typo such as ``not-a-url`` is refused."""
    from qwenlong_verl.openai_client import http_url_error
    from qwenlong_verl.redaction import redact, redact_url

    shown = redact_url(text)  # never echo a password: urlsplit's own message quotes the netloc, user info and all
    error = http_url_error(text)
    if error and error[0] == "invalid":
        why = "the port is not a number, or user info holds a ':' or '@' that is not %-escaped" if "@" in text \
            else redact(error[1])
        raise argparse.ArgumentTypeError(f"not a valid URL ({why}): {shown!r}")
    if error:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL with a host, e.g. "
                                         f"http://127.0.0.1:8000/v1, got {shown!r}")
    return text.strip()

