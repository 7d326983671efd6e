"""Offline scoring of response files: load rows, score them with :class:`HybridScorer`, summarise per data_source.

Used by ``qwenlong-verl score`` and the pipeline's eval stage (:func:`score_rows`). A row is ``{data_source, question, response, ground_truth}``; verl's RL layout
(``reward_model.ground_truth``, ``extra_info.question``) is accepted too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qwenlong_verl.reward.scoring import RowError, SampleScore, ScoreOptions
from qwenlong_verl.row_files import plain, read_row_file


def normalise_row(row: Mapping[str, Any], position: int) -> dict[str, Any]:
    """The scorer's row from either layout; raises :class:`RowError` naming the row and key."""
    if not isinstance(row, Mapping):
        raise RowError(f"row {position}: expected an object, got {type(row).__name__}")
    out = dict(row)
    rm = out.get("reward_model")
    if out.get("ground_truth") is None and isinstance(rm, Mapping):
        out["ground_truth"] = rm.get("ground_truth")
    info = out.get("extra_info")
    if out.get("question") is None and isinstance(info, Mapping):
        out["question"] = info.get("question")
    if out.get("response") is None:
        raise RowError(f"row {position}: missing key 'response' (keys: {sorted(out)})")
    return out


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl``/``.json`` (one object per line, or a JSON list) or ``.parquet`` file
    (:func:`qwenlong_verl.row_files.read_row_file`; a missing, unreadable or corrupt file is a :class:`RowError`
    naming ``file:line``); a parquet NaN is read as a missing value."""
    f = read_row_file(Path(path), error=RowError)
    rows = [plain(r, nan_as_none=True) for r in f.rows] if f.format == "parquet" else f.rows
    return [normalise_row(r, i) for i, r in enumerate(rows)]


def summarise(scores: Sequence[SampleScore]) -> dict[str, dict[str, float]]:
    """Per data_source (and ``ALL``): rows, score = mean of max(rule, judge) in %, rule accuracy %, EM / sub-EM /
    F1 % where the family reports them, judge calls, judge YES and judge failures."""
    groups: dict[str, list[SampleScore]] = defaultdict(list)
    for s in scores:
        groups[s.data_source].append(s)
    out: dict[str, dict[str, float]] = {}
    for name, items in [*sorted(groups.items()), ("ALL", list(scores))]:
        if not items:
            continue
        n = len(items)
        row: dict[str, float] = {
            "rows": n,
            "score": 100 * sum(s.score for s in items) / n,
            "rule_acc": 100 * sum(s.rule_score >= 1.0 for s in items) / n,
            "judge_calls": sum(s.judge_called for s in items),
            "judge_yes": sum(s.judge_called and s.judge_score >= 1.0 for s in items),
            "judge_failed": sum(s.judge_failed for s in items),
        }
        for key in ("em", "sub_em", "f1"):
            vals = [s.metrics[key] for s in items if key in s.metrics]
            if vals:
                row[key] = 100 * sum(vals) / len(vals)
        out[name] = row
    return out


def reason_counts(scores: Sequence[SampleScore]) -> dict[str, dict[str, int]]:
    """Per data_source (and ``ALL``): how many rows got each rule reason (``matched``, ``hedged``, ``negated``,
    ...; see :data:`qwenlong_verl.reward.rule.REASONS`), and ``judged`` / ``judge_yes``: how many of the rule's
    rejections went to the judge and how many it accepted."""
    groups: dict[str, list[SampleScore]] = defaultdict(list)
    for s in scores:
        groups[s.data_source].append(s)
    out: dict[str, dict[str, int]] = {}
    for name, items in [*sorted(groups.items()), ("ALL", list(scores))]:
        if not items:
            continue
        counts: dict[str, int] = defaultdict(int)
        for s in items:
            counts[s.rule_reason or "unknown"] += 1
        counts["judged"] = sum(bool(s.judge_called) for s in items)
        counts["judge_yes"] = sum(bool(s.judge_called and s.judge_score >= 1.0) for s in items)
        out[name] = dict(counts)
    return out


def format_reasons(counts: Mapping[str, Mapping[str, int]]) -> str:
    """One line per data_source: each rule reason with its count and share, most frequent first, then the share of
    rows that went to the judge."""
    lines = ["rule reasons:"]
    for name, c in counts.items():
        n = sum(v for k, v in c.items() if k not in ("judged", "judge_yes"))
        parts = [f"{k} {v} ({100 * v / n:.1f}%)" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
                 if k not in ("judged", "judge_yes")]
        judged = c.get("judged", 0)
        lines.append(f"  {name}: {', '.join(parts)}; to the judge {judged} ({100 * judged / n:.1f}%), "
                     f"judge yes {c.get('judge_yes', 0)}")
    return "\n".join(lines)


def format_table(summary: Mapping[str, Mapping[str, float]]) -> str:
    cols = ["rows", "score", "rule_acc", "em", "sub_em", "f1", "judge_calls", "judge_yes", "judge_failed"]
    header = ["data_source", *cols]
    lines = [header]
    for name, row in summary.items():
        cells = [name]
        for c in cols:
            v = row.get(c)
            if v is None:
                cells.append("-")
            elif c in ("rows", "judge_calls", "judge_yes", "judge_failed"):
                cells.append(str(int(v)))
            else:
                cells.append(f"{v:.1f}")
        lines.append(cells)
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    rendered = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                 strict=True)))
                for r in lines]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)


async def score_rows(rows: Sequence[Mapping[str, Any]], options: ScoreOptions, judge_options: Any = None, *,
                     progress: bool = False) -> tuple[list[SampleScore], dict[str, Any] | None]:
    """Score ``rows`` with the hybrid scorer: the rule, and with ``judge_options`` (a
    :class:`~qwenlong_verl.reward.judge.JudgeOptions`) the judge for rows the rule scores below 1.

    Returns:
        (one score per row, the judge client's stats or None without a judge).
    """
    from qwenlong_verl.reward.judge import JudgeClient
    from qwenlong_verl.reward.scoring import HybridScorer

    judge = JudgeClient(judge_options) if judge_options is not None else None
    try:
        scores = await HybridScorer(options, judge).score_many(list(rows), progress=progress)
    finally:
        if judge is not None:
            await judge.aclose()
    return scores, (judge.stats.as_dict() if judge is not None else None)


def judge_failed_rows(scores: Sequence[SampleScore]) -> int:
    return sum(bool(s.judge_failed) for s in scores)


def scored_rows(rows: Sequence[Mapping[str, Any]], scores: Sequence[SampleScore]) -> Any:
    """Each input row with its score fields (what ``score -o`` and the pipeline's ``*_scored.jsonl`` hold)."""
    return ({**row, **s.as_dict()} for row, s in zip(rows, scores, strict=True))


def score_payload(input_path: str | Path, summary: Mapping[str, Any], scores: Sequence[SampleScore],
                  judge_stats: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """The summary JSON of a scored file (``score --json``, the pipeline's ``*_scores.json``)."""
    return {"input": str(input_path), "summary": summary, "judge": judge_stats,
            "judge_failed_rows": judge_failed_rows(scores), **extra}
