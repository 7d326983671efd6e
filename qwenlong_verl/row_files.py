"""The one reader of row files (JSON lines, a JSON list, parquet) and the one "to plain Python" helper.

Every command that reads rows — ``score`` (:func:`qwenlong_verl.reward.offline.load_rows`), ``eval`` and
``sft-data`` (:func:`qwenlong_verl.evaluation.data.load_file`) and ``prepare``
(:func:`qwenlong_verl.data.prepare.read_records`) — reads them with :func:`read_row_file`, which accepts the same
formats everywhere and names ``file:line`` in every error:

* ``.jsonl`` / ``.ndjson`` / ``.json``: one JSON value per line (blank lines skipped); a ``.json`` file whose text
  starts with ``[`` is one JSON list of rows;
* ``.parquet``: read with pyarrow, each row a dict of plain Python values.

Each caller keeps its own row validation and its own error type (``error=``). :func:`plain` turns numpy/pyarrow
containers (parquet list columns, verl's ``non_tensor_batch`` values) into Python lists, dicts and scalars.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
SUFFIXES = (*JSON_SUFFIXES, ".parquet")


class RowFileError(ValueError):
    """A row file cannot be read; the message names the file (and the line, where there is one)."""


def plain(value: Any, *, nan_as_none: bool = False) -> Any:
    """``value`` with numpy arrays / numpy scalars (anything with ``tolist``) turned into Python lists and scalars,
    tuples into lists and mappings into dicts, recursively; with ``nan_as_none`` a float NaN becomes None."""
    if isinstance(value, str | bytes):
        return value
    if hasattr(value, "tolist"):
        return plain(value.tolist(), nan_as_none=nan_as_none)
    if isinstance(value, Mapping):
        return {k: plain(v, nan_as_none=nan_as_none) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, nan_as_none=nan_as_none) for v in value]
    if nan_as_none and isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass
class RowFile:
    """The rows of one file with where each came from."""

    path: Path
    format: str  # "jsonl" (one value per line), "json" (one list) or "parquet"
    rows: list[Any]
    numbers: list[int]  # per row: its line (jsonl, from 1) or its position (json list, parquet: from 0)

    @property
    def by_line(self) -> bool:
        return self.format == "jsonl"

    def where(self, i: int) -> str:
        """``file:line`` for a JSON-lines row, ``file: row k`` otherwise (for error messages)."""
        n = self.numbers[i]
        return f"{self.path}:{n}" if self.by_line else f"{self.path}: row {n}"


def read_row_file(path: str | Path, *, error: type[Exception] = RowFileError) -> RowFile:
    """Read every row of ``path`` (see module docstring); problems raise ``error`` with ``file:line`` in the
    message: a missing file, an unknown extension, an unreadable parquet file, text that is not UTF-8, a line that
    is not JSON (a truncated file)."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(p).to_pylist()
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a corrupt or truncated file
            raise error(f"{p}: not a readable parquet file ({exc})") from exc
        return RowFile(p, "parquet", rows, list(range(len(rows))))
    if suffix not in JSON_SUFFIXES:
        raise error(f"{p}: unknown file type {suffix!r} (use {', '.join(SUFFIXES)})")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise error(f"{p}: cannot read ({exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{p}:{line}: not UTF-8 text ({exc.reason}); convert the file to UTF-8") from None
    if suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{p}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(rows, list):
            raise error(f"{p}: expected a JSON list of rows")
        return RowFile(p, "json", rows, list(range(len(rows))))
    rows, numbers = [], []
    # lines end at "\n" only: str.splitlines() would also split at U+2028 and other characters a JSON string may
    # hold unescaped (json.dumps(..., ensure_ascii=False) writes them as they are)
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise error(f"{p}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); a truncated or corrupt "
                        "line: fix or delete it") from exc
        numbers.append(lineno)
    return RowFile(p, "jsonl", rows, numbers)
