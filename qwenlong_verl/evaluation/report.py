"""Per-benchmark report of an evaluation run: Markdown and JSON tables and a PNG bar chart.

Accuracy is the paper's score: the mean over all samples of ``max(rule, judge)`` (binary), in percent. With several
samples per row it is avg@n, i.e. pass@1. The across-benchmark average is the unweighted mean of the benchmarks'
accuracies, as in PAPER Table 4.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from qwenlong_verl.reporting import ReportFiles, fmt, markdown_table, write_report_files

logger = logging.getLogger(__name__)

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
REPORT_PNG = "report.png"
FILES = ReportFiles(md=REPORT_MD, json=REPORT_JSON, png=REPORT_PNG)
DIGITS = 1  # the table's percentages and token means: one decimal, as in PAPER Table 4


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from n samples of which c are correct: ``1 - C(n-c, k) / C(n, k)``.

    (Chen et al. 2021, the estimator behind the paper's pass@2 from 16 samples.) Requires ``1 <= k <= n``.
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n (n={n})")
    if not 0 <= c <= n:
        raise ValueError(f"correct count {c} outside [0, {n}]")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks = [k for k in (2**i for i in range(0, 16)) if k <= n]
    if n not in ks:
        ks.append(n)
    return ks


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100.0 * x, 2)


def _bench_stats(records: list[Mapping[str, Any]], rows: int, n: int, ks: Sequence[int]) -> dict[str, Any]:
    by_row: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        by_row[r["id"]].append(r)
    scores = [float(r["score"]) for r in records]
    rule = [float(r.get("rule_score") or 0.0) >= 1.0 for r in records]
    # Judge share: samples the judge credited although the rule did not (what the judge adds to accuracy).
    judge_only = [bool(r.get("judge_score") or 0.0) and not ok for r, ok in zip(records, rule, strict=True)]
    lengths = [r["response_tokens"] for r in records if isinstance(r.get("response_tokens"), int)]
    truncated = [any(s.get("input_truncated") for s in samples) for samples in by_row.values()]
    cut = [r.get("finish_reason") == "length" for r in records]
    pass_at: dict[str, float | None] = {}
    for k in ks:
        vals = [pass_at_k(len(s), sum(bool(x.get("correct")) for x in s), k) for s in by_row.values() if len(s) >= k]
        pass_at[str(k)] = _pct(_mean(vals))
    return {
        "rows": rows,
        "rows_done": len(by_row),
        "samples": len(records),
        "samples_expected": rows * n,
        "accuracy": _pct(_mean(scores)),
        "rule_accuracy": _pct(_mean([float(x) for x in rule])),
        "judge_share": _pct(_mean([float(x) for x in judge_only])),
        "judge_calls": sum(bool(r.get("judge_called")) for r in records),
        "judge_failed": sum(bool(r.get("judge_failed")) for r in records),
        "mean_response_tokens": None if not lengths else round(sum(lengths) / len(lengths), 1),
        "truncated_share": _pct(_mean([float(x) for x in truncated])),
        "output_cut_share": _pct(_mean([float(x) for x in cut])),
        "pass_at": pass_at if n > 1 else {},
    }


def build_report(records: Iterable[Mapping[str, Any]], rows_per_benchmark: Mapping[str, int], n: int,
                 ks: Sequence[int] | None = None, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Aggregate sample records (one per (id, sample)) into the report dict that the writers render."""
    ks = sorted({k for k in (ks or default_ks(n)) if 1 <= k <= n}) if n > 1 else []
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        grouped[r["benchmark"]].append(r)
    unknown = sorted(set(grouped) - set(rows_per_benchmark))
    if unknown:
        raise ValueError(f"records for benchmark(s) {unknown} that the data does not contain")
    # benchmarks in the order given (the order of the --data files), like the paper's table
    benches = {b: _bench_stats(grouped.get(b, []), rows_per_benchmark[b], n, ks) for b in rows_per_benchmark}
    keys = ("accuracy", "rule_accuracy", "judge_share", "mean_response_tokens", "truncated_share",
            "output_cut_share")
    average: dict[str, Any] = {}
    for key in keys:
        vals = [s[key] for s in benches.values() if s[key] is not None]
        average[key] = None if not vals else round(sum(vals) / len(vals), 2)
    average["pass_at"] = {}
    for k in ks:
        vals = [s["pass_at"][str(k)] for s in benches.values() if s["pass_at"].get(str(k)) is not None]
        average["pass_at"][str(k)] = None if not vals else round(sum(vals) / len(vals), 2)
    for key in ("rows", "rows_done", "samples", "samples_expected", "judge_calls", "judge_failed"):
        average[key] = sum(s[key] for s in benches.values())
    complete = all(s["samples"] == s["samples_expected"] for s in benches.values())
    return {"meta": dict(meta or {}), "n": n, "ks": ks, "complete": complete, "benchmarks": benches,
            "average": average}


def render_markdown(report: Mapping[str, Any]) -> str:
    ks = report["ks"]
    head = ["Benchmark", "Rows", "Samples", "Accuracy", "Rule acc.", "Judge share", "Judge failed",
            "Mean resp. tokens", "Truncated", "Output cut"] + [f"pass@{k}" for k in ks]

    def row(name: str, s: Mapping[str, Any]) -> list[str]:
        samples = f"{s['samples']}" + ("" if s["samples"] == s["samples_expected"] else f"/{s['samples_expected']}")
        cells = [name, str(s["rows"]), samples, fmt(s["accuracy"], DIGITS), fmt(s["rule_accuracy"], DIGITS),
                 fmt(s["judge_share"], DIGITS), str(s["judge_failed"]), fmt(s["mean_response_tokens"], DIGITS),
                 fmt(s["truncated_share"], DIGITS), fmt(s["output_cut_share"], DIGITS)]
        cells += [fmt(s["pass_at"].get(str(k)), DIGITS) for k in ks]
        return cells

    rows = [row(name, s) for name, s in report["benchmarks"].items()] + [row("**Average**", report["average"])]
    lines = markdown_table(head, rows, right=range(1, len(head)))
    meta = report.get("meta") or {}
    title = f"# DocQA evaluation: {meta.get('model', '?')}"
    notes = [
        "Accuracy, rule accuracy, judge share, truncated and output-cut shares are percentages. Accuracy is the mean "
        "of max(rule, judge) over all samples (pass@1 = avg@n); Average is the unweighted mean over benchmarks.",
        "Judge share: samples the judge credited although the rule match failed. Truncated: rows whose prompt was "
        "cut in the middle to the input budget. Output cut: samples that stopped at max_tokens.",
    ]
    failed = report.get("failed") or []
    if failed:
        notes.insert(0, f"**Incomplete run**: {len(failed)} sample(s) failed (generation or judge call, listed in "
                        "report.json); rerun the same command to retry only those.")
    elif not report["complete"]:
        notes.insert(0, "**Incomplete run**: some samples are missing (Samples shows done/expected); rerun the same "
                        "command to finish it.")
    if report.get("judge_failures_accepted"):
        notes.append(f"{report['judge_failures_accepted']} sample(s) kept their rule score because the judge call "
                     "failed (accepted with --allow-judge-failures).")
    settings = ", ".join(f"{k}={v}" for k, v in meta.items() if k not in ("model",))
    return "\n".join([title, "", *(f"- {n}" for n in notes), f"- Settings: {settings}" if settings else "", "",
                      *lines, ""])


_TICK_ROTATION = 20  # degrees: long benchmark names side by side


def _text_extent(fig: Any, text: str, size: str | float) -> tuple[float, float]:
    """(width, height) in inches of ``text`` at font ``size`` on ``fig``'s canvas."""
    from matplotlib.font_manager import FontProperties

    w, h, _ = fig.canvas.get_renderer().get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return w / fig.dpi, h / fig.dpi


def _layout(fig: Any, names: Sequence[str], title: str) -> tuple[dict[str, float], float]:
    """(subplot margins as figure fractions, title font size) that fit the rotated tick labels, the y label and the
    title: what ``tight_layout`` finds, from a few text measurements instead of a full draw (a third of the chart's
    time). A title longer than the axes widens ``fig`` (up to 16 inches; past that its font shrinks)."""
    from matplotlib.font_manager import FontProperties

    width_in, height_in = fig.get_size_inches()
    sin, cos = math.sin(math.radians(_TICK_ROTATION)), math.cos(math.radians(_TICK_ROTATION))
    pad = 0.1  # inches: ticks, their padding and a small border
    labels = [_text_extent(fig, n, "medium") for n in names] or [(0.0, 0.0)]
    bottom = pad + max(w * sin + h * cos for w, h in labels) + pad
    ylab = _text_extent(fig, "100", "medium")[0] + _text_extent(fig, "score (%)", "medium")[1] + 2 * pad
    right = pad
    title_size = FontProperties(size="large").get_size_in_points()
    title_w, title_h = _text_extent(fig, title, title_size)
    for _ in range(2):  # the axes' width depends on the left margin, which depends on the axes' width
        # a right-aligned rotated label ends at its tick (x = i + 0.5 of n slots) and reaches w*cos + h*sin left
        slot = (width_in - ylab - right) / max(1, len(labels))
        left = max([ylab] + [pad + w * cos + h * sin - (i + 0.5) * slot for i, (w, h) in enumerate(labels)])
        need = left + title_w + right + pad  # the title is centred over the axes
        if need <= width_in:
            break
        width_in = min(16.0, need)
        fig.set_size_inches(width_in, height_in)
    axes_w = width_in - left - right
    if title_w + pad > axes_w:
        title_size *= axes_w / (title_w + pad)
    top = title_h + 2 * pad
    return ({"left": left / width_in, "right": 1 - right / width_in, "bottom": bottom / height_in,
             "top": 1 - top / height_in}, title_size)


def render_png(report: Mapping[str, Any], path: str | Path) -> None:
    """The chart of :func:`report_figure` as a PNG."""
    # a PNG of flat colours: zlib level 1 is ~5x faster than PIL's default 6 for a few KB more
    report_figure(report).savefig(str(path), pil_kwargs={"compress_level": 1})


def report_figure(report: Mapping[str, Any]) -> Any:
    """A bar per benchmark (accuracy, plus pass@k bars when n > 1) and the average as a dashed line (a matplotlib
    ``Figure`` on the Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(report["benchmarks"])
    series = [("accuracy", [report["benchmarks"][b]["accuracy"] for b in names])]
    series += [(f"pass@{k}", [report["benchmarks"][b]["pass_at"].get(str(k)) for b in names])
               for k in report["ks"] if k > 1]
    title = f"DocQA accuracy: {(report.get('meta') or {}).get('model', '')}"
    fig = Figure(figsize=(min(16.0, max(6.0, 1.5 + len(names) * (0.5 + 0.3 * len(series)))), 4.5), dpi=120)
    FigureCanvasAgg(fig)
    margins, title_size = _layout(fig, names, title)
    fig.subplots_adjust(**margins)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(series)
    for j, (label, vals) in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(names))]
        ys = [v if v is not None else 0.0 for v in vals]
        bars = ax.bar(xs, ys, width=width, label=label)
        if len(series) <= 2:
            ax.bar_label(bars, labels=[fmt(v, DIGITS) for v in vals], fontsize=7, padding=2)
    avg = report["average"]["accuracy"]
    if avg is not None:
        ax.axhline(avg, linestyle="--", color="black", linewidth=1, label=f"average {avg:.1f}")
    ax.set_xticks(range(len(names)), names, rotation=_TICK_ROTATION, ha="right")
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylim(0, 118)  # headroom for the bar labels and the legend
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("score (%)")
    ax.set_title(title, fontsize=title_size)
    ax.legend(fontsize=8, loc="upper right", ncols=len(series) + 1)
    return fig


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """``report.json``, ``report.md`` and ``report.png`` into ``out_dir``, each whole or not at all, credentials masked
    (:func:`qwenlong_verl.reporting.write_report_files`).

    Args:
        report: what :func:`build_report` returned (plus the runner's ``failed`` and ``judge_failures_accepted``).
        out_dir: the folder (created when missing).

    Returns:
        ``{"md": path, "json": path, "png": path}``.
    """
    return write_report_files(out_dir, report, render_markdown(report), FILES,
                              plot=lambda path: render_png(report, path), json_indent=2)
