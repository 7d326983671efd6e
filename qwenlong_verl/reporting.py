"""What the package's three reports share: the evaluation's ``report.md`` (:mod:`qwenlong_verl.evaluation.report`),
the pipeline's closing report (:mod:`qwenlong_verl.pipeline.run_report`) and ``sweep-report``
(:mod:`qwenlong_verl.hydra.sweep_report`).

* :func:`fmt`: one number formatter, so a missing value reads ``–`` and a float reads the same way in every table;
  each report keeps its own precision through the arguments (the evaluation one decimal of a percentage, the pipeline
  three decimals with whole counts bare, the sweep four significant digits);
* :func:`markdown_table`: the header, rule and rows of a Markdown table, every cell escaped (a ``|`` or a newline in
  an override or an error would otherwise split the row);
* :func:`write_report_files`: the JSON, the Markdown and the PNG of a report, each whole or not at all, credentials
  masked;
* :func:`read_metrics`: verl's per-step metrics log (its ``file`` logger), read by the pipeline and sweep reports.

No verl, torch or matplotlib import: the plots are the reports' own, passed in as a callable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MISSING = "–"  # a value the run did not produce (no step logged it, a stage that did not run)


def fmt(value: Any, digits: int = 3, *, significant: bool = False, whole_bare: bool = False) -> str:
    """One table cell of a value: ``–`` for None, a float to ``digits`` places, anything else as ``str``.

    Args:
        value: the number (or text, count, None) to show.
        digits: decimals after the point, or significant digits with ``significant``.
        significant: ``digits`` significant digits (``{:.4g}``: 0.0001234, 12.35, 1.235e+04) instead of decimals.
        whole_bare: a float holding a whole number of magnitude 1 or more is written without decimals (``12``, not
            ``12.000``): steps and token counts that went through a mean.

    Returns:
        The cell's text.
    """
    if value is None:
        return MISSING
    if isinstance(value, float):
        if whole_bare and value.is_integer() and abs(value) >= 1:
            return f"{value:.0f}"
        return f"{value:.{digits}{'g' if significant else 'f'}}"
    return str(value)


def cell(text: Any) -> str:
    """``text`` safe inside a Markdown table cell: ``|`` escaped, line breaks turned into spaces."""
    return str(text).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(head: Sequence[Any], rows: Iterable[Sequence[Any]], *, right: Iterable[int] = ()) -> list[str]:
    """The lines of a Markdown table: header, rule, one line per row (cells escaped with :func:`cell`).

    Args:
        head: the column titles.
        rows: the rows, each as many cells as ``head`` (format numbers with :func:`fmt` first).
        right: indexes of the columns aligned right (``---:``), e.g. numbers beside a name column.

    Returns:
        The lines, without a trailing blank line.

    Raises:
        ValueError: a row with another number of cells than ``head``; the message names the row.
    """
    aligned = set(right)
    lines = ["| " + " | ".join(cell(h) for h in head) + " |",
             "|" + "|".join("---:" if i in aligned else "---" for i in range(len(head))) + "|"]
    for n, row in enumerate(rows):
        if len(row) != len(head):
            raise ValueError(f"Markdown table row {n} has {len(row)} cells for {len(head)} columns: {list(row)!r}")
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return lines


@dataclass(frozen=True)
class ReportFiles:
    """The file names of one report inside its output folder."""

    md: str
    json: str
    png: str | None = None


def write_report_files(out_dir: str | Path, report: Mapping[str, Any], markdown: str, files: ReportFiles, *,
                       plot: Callable[[Path], Any] | None = None, json_indent: int = 2) -> dict[str, Path]:
    """Write a report's JSON, Markdown and (with ``plot``) PNG into ``out_dir``.

    Each file is written whole or not at all (a reader never sees half a report, a crash keeps the previous one), and
    the JSON and Markdown text go through :func:`qwenlong_verl.redaction.redact`: a judge URL with a password, an
    override such as ``+trainer.wandb_api_key=...`` or a key in an error message never reaches a report file.

    Args:
        out_dir: the folder (created when missing).
        report: the report's JSON-like value (values JSON cannot hold are written with ``str``).
        markdown: the report rendered as Markdown.
        files: the three file names.
        plot: draws the chart into the path it is given (a temporary file, renamed into place when it returns);
            no PNG without it, or without ``files.png``.
        json_indent: the JSON's indentation.

    Returns:
        ``{"json": path, "md": path}`` and ``"png"`` when one was drawn.
    """
    from qwenlong_verl.outputs import atomic_path, scrub, write_text
    from qwenlong_verl.redaction import redact

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / files.json, "md": out / files.md}
    clean, _ = scrub(report)  # a lone surrogate (an undecodable byte in a model's answer) becomes U+FFFD
    write_text(paths["json"], redact(json.dumps(clean, indent=json_indent, default=str)) + "\n")
    write_text(paths["md"], redact(markdown))
    if plot is not None and files.png:
        paths["png"] = out / files.png
        with atomic_path(paths["png"]) as tmp:
            plot(tmp)
    return paths


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Per-step metrics of one run, ``[{step, data}]`` sorted by step, from verl's ``file`` logger (one JSON line
    ``{"step": N, "data": {...}}`` per step, ``VERL_FILE_LOGGER_PATH``).

    Logs of earlier interrupted attempts (``metrics.N.jsonl`` beside ``metrics.jsonl``) come first; a later
    attempt's value for the same step wins. An unreadable line is logged (file and line) and left out.

    Args:
        path: the log (``metrics.jsonl``); it may be missing when only rotated logs exist.

    Returns:
        One entry per logged step.
    """
    path = Path(path)
    rotated = {}
    for f in path.parent.glob(f"{path.stem}.*{path.suffix}"):
        middle = f.name[len(path.stem) + 1:-len(path.suffix)]
        if middle.isdigit():
            rotated[int(middle)] = f
    files = [rotated[n] for n in sorted(rotated)]
    by_step: dict[int, dict[str, Any]] = {}
    for f in [*files, path]:
        if not f.is_file():
            continue
        for lineno, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                by_step.setdefault(int(rec["step"]), {}).update(rec["data"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                logger.warning("%s:%d: unreadable metrics line (%s); left out of the report", f, lineno, exc)
    return [{"step": s, "data": by_step[s]} for s in sorted(by_step)]
