"""Report writer of the ablation bench: ``ablation.json``, ``ablation.md`` and ``ablation.png`` from the per-run
records of ``bench/bench_ablation.py``.

Why a separate module: the bench runs for hours; the report is cheap. :func:`main` re-renders all three files from an
existing ``ablation.json`` so wording or plot changes never need a rerun::

    python bench/ablation_report.py bench/results/ablation.json

Statistics (``qwenlong_verl.evaluation.bootstrap``), all 95 % percentile bootstraps:

* arm accuracy = mean over seeds of each seed's held-out accuracy; interval from a two-level bootstrap (seeds, then
  rows within each seed), so it reflects seed-to-seed spread and the finite eval set;
* difference vs the SFT start / vs the first arm = ``acc(arm) - acc(ref)``, each side resampled independently (the
  SFT start is one run: only its rows are resampled). Rows are not paired across arms, which makes these intervals
  conservative;
* "what each piece buys" (``meta["paired"]``): the difference is taken per (seed, held-out row) between two arms run
  with the same seed on the same rows, then a two-level bootstrap resamples seeds and rows within a seed of those
  differences (a paired design: seed-to-seed luck common to both arms cancels). Also per length band. The seeds a
  +-5-point interval would need: ``ceil((1.96 * sd / 0.05)^2)``, sd the spread of the per-seed mean differences;
* tokens processed per run (prompt + response tokens of every generated rollout) and wall time, mean over seeds;
* final-window training reward = mean of the last ``window`` logged ``critic/score/mean`` values of each run,
  reported as mean ± sd (ddof=1) over seeds;
* judge rescue share = ``sum(judge_rescues) / sum(scored)`` over the arm's runs (a rescue is a judge "yes" where the
  rule said no).

The "what it shows" list says, for every difference, whether its interval excludes 0. A difference whose interval
includes 0 is reported as not detectable at this size, whatever its sign.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qwenlong_verl.evaluation.bootstrap import (
    Interval,
    clustered_diff_ci,
    clustered_mean_ci,
    first_last_means,
    mean_ci,
    smooth,
)
from qwenlong_verl.outputs import atomic_path, atomic_write

logger = logging.getLogger("ablation_report")

JSON_NAME, MD_NAME, PNG_NAME = "ablation.json", "ablation.md", "ablation.png"
DEFAULT_WINDOW = 5  # steps in the final training-reward window
DEFAULT_SMOOTH = 5  # trailing moving-average window of the plotted reward curves
DEFAULT_N_BOOT = 2000
LEVEL = 0.95


def _correct(rows: Sequence[Mapping[str, Any]], band: str | None = None) -> list[float]:
    """0/1 correctness of ``rows`` (only those in ``band`` when given)."""
    return [float(r["correct"]) for r in rows if band is None or r.get("band") == band]


def _group_runs(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Runs per arm, arms in first-appearance order, runs sorted by seed."""
    arms: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        arms.setdefault(str(rec["arm"]), []).append(rec)
    for runs in arms.values():
        runs.sort(key=lambda r: (str(type(r.get("seed"))), r.get("seed")))
    return arms


def _bands(records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> list[str]:
    """``meta["bands"]`` in its order, then any band seen in the eval rows but missing there."""
    bands = [str(b) for b in meta.get("bands") or []]
    seen = [r.get("band") for rec in records for r in rec.get("eval") or []]
    seen += [r.get("band") for r in meta.get("sft_eval") or []]
    for band in seen:
        if band is not None and str(band) not in bands:
            bands.append(str(band))
    return bands


def _iv(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.as_dict()


def _reward_series(rec: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """(steps, critic score) of one run, rows with a missing score dropped."""
    steps, scores = [], []
    for row in rec.get("rewards") or []:
        if len(row) >= 2 and row[1] is not None and math.isfinite(float(row[1])):
            steps.append(float(row[0]))
            scores.append(float(row[1]))
    return steps, scores


def _mean_sd(xs: Sequence[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(np.mean(xs)), "sd": float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0, "n": len(xs)}


def _reward_summary(runs: Sequence[Mapping[str, Any]], window: int) -> dict[str, Any]:
    firsts, finals = [], []
    for rec in runs:
        _, scores = _reward_series(rec)
        if len(scores) >= 2:
            first, last = first_last_means(scores, window)
            firsts.append(first)
            finals.append(last)
    return {"window": window, "first": _mean_sd(firsts), "final": _mean_sd(finals), "per_seed_final": finals}


def _eval_groups(runs: Sequence[Mapping[str, Any]], band: str | None, arm: str) -> list[list[float]]:
    groups = []
    for rec in runs:
        vals = _correct(rec.get("eval") or [], band)
        if vals:
            groups.append(vals)
        elif band is None:
            logger.warning("arm %s seed %s has no eval rows; left out of its accuracy", arm, rec.get("seed"))
    return groups


def paired_differences(runs: Sequence[Mapping[str, Any]], ref_runs: Sequence[Mapping[str, Any]],
                       band: str | None = None) -> dict[Any, list[float]]:
    """Per seed that both arms ran: ``correct(arm) - correct(ref)`` for every held-out row both evaluated (matched
    by row id), restricted to ``band`` when given.

    Args:
        runs: the arm's records (one per seed), each with ``eval`` rows ``{id, band, correct}``.
        ref_runs: the reference arm's records.
        band: a length-band label, or None for every row.

    Returns:
        ``{seed: [difference per row]}``, seeds in ``runs`` order.
    """
    ref_by_seed = {r.get("seed"): {str(x["id"]): x for x in r.get("eval") or []} for r in ref_runs}
    out: dict[Any, list[float]] = {}
    for rec in runs:
        ref_rows = ref_by_seed.get(rec.get("seed"))
        if ref_rows is None:
            continue
        diffs = [float(x["correct"]) - float(ref_rows[str(x["id"])]["correct"]) for x in rec.get("eval") or []
                 if str(x["id"]) in ref_rows and (band is None or x.get("band") == band)]
        if diffs:
            out[rec.get("seed")] = diffs
    return out


def seeds_for_halfwidth(per_seed_means: Sequence[float], halfwidth: float = 0.05) -> int | None:
    """Seeds a 95 % interval of a paired difference would need to be +-``halfwidth``, from the spread of the
    per-seed mean differences (the seed level dominates once rows are many): ``ceil((1.96 * sd / halfwidth)^2)``.
    None with fewer than two seeds."""
    if len(per_seed_means) < 2:
        return None
    sd = float(np.std(per_seed_means, ddof=1))
    return max(2, math.ceil((1.96 * sd / halfwidth) ** 2))


def _paired_piece(runs: Sequence[Mapping[str, Any]], ref_runs: Sequence[Mapping[str, Any]], bands: Sequence[str],
                  boot: Mapping[str, Any]) -> dict[str, Any] | None:
    diffs = paired_differences(runs, ref_runs)
    if not diffs:
        return None
    groups = list(diffs.values())
    per_seed = [float(np.mean(g)) for g in groups]
    out: dict[str, Any] = {"seeds": len(groups), "rows": max(len(g) for g in groups), "paired": True,
                           "diff": _iv(clustered_mean_ci(groups, **boot)), "per_seed": per_seed,
                           "seeds_for_5pts": seeds_for_halfwidth(per_seed), "bands": {}}
    for band in bands:
        bd = paired_differences(runs, ref_runs, band)
        if bd:
            out["bands"][band] = {"rows": int(np.mean([len(g) for g in bd.values()])),
                                  "diff": _iv(clustered_mean_ci(list(bd.values()), **boot))}
    return out


def summarize(records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], *, n_boot: int = DEFAULT_N_BOOT,
              seed: int = 0) -> dict[str, Any]:
    """Every number the report prints, as plain JSON-ready data.

    Args:
        records: one dict per (arm, seed) run (schema in ``bench/bench_ablation.py``).
        meta: run metadata; ``sft_eval`` (the SFT start's eval rows), ``bands`` and ``window`` are read here.
        n_boot: bootstrap resamples per interval.
        seed: bootstrap seed (the same records and seed give the same report).

    Returns:
        ``{"sft": ..., "arms": [...], "findings": [...], "bands": [...], ...}``.
    """
    if not records:
        raise ValueError("write_report: no records")
    window = int(meta.get("window") or DEFAULT_WINDOW)
    bands = _bands(records, meta)
    boot = {"n_boot": n_boot, "seed": seed, "level": LEVEL}
    sft_rows = list(meta.get("sft_eval") or [])
    sft: dict[str, Any] | None = None
    if sft_rows:
        sft = {"rows": len(sft_rows), "accuracy": _iv(mean_ci(_correct(sft_rows), **boot)),
               "bands": {b: {"rows": len(_correct(sft_rows, b)),
                             "accuracy": _iv(mean_ci(_correct(sft_rows, b), **boot)) if _correct(sft_rows, b)
                             else None} for b in bands}}
    arms_runs = _group_runs(records)
    first_arm = next(iter(arms_runs))
    first_groups = _eval_groups(arms_runs[first_arm], None, first_arm)
    arms = []
    for arm, runs in arms_runs.items():
        groups = _eval_groups(runs, None, arm)
        entry: dict[str, Any] = {
            "arm": arm, "label": str(runs[0].get("label") or arm), "seeds": [r.get("seed") for r in runs],
            "rows_per_run": [len(r.get("eval") or []) for r in runs],
            "accuracy": _iv(clustered_mean_ci(groups, **boot)) if groups else None,
            "vs_sft": _iv(clustered_diff_ci([_correct(sft_rows)], groups, **boot)) if groups and sft_rows else None,
            "vs_first": (_iv(clustered_diff_ci(first_groups, groups, **boot))
                         if groups and first_groups and arm != first_arm else None),
            "bands": {}, "reward": _reward_summary(runs, window),
        }
        for band in bands:
            bg = _eval_groups(runs, band, arm)
            entry["bands"][band] = {"rows": int(np.mean([len(g) for g in bg])) if bg else 0,
                                    "accuracy": _iv(clustered_mean_ci(bg, **boot)) if bg else None}
        calls = sum(int(r.get("judge_calls") or 0) for r in runs)
        rescues = sum(int(r.get("judge_rescues") or 0) for r in runs)
        scored = sum(int(r.get("scored") or 0) for r in runs)
        entry["judge"] = {"calls": calls, "rescues": rescues, "scored": scored,
                          "rescue_share": rescues / scored if scored else None}
        walls = [float(r["wall_s"]) for r in runs if r.get("wall_s") is not None]
        steps = [float(r["rl_steps"]) for r in runs if r.get("rl_steps") is not None]
        entry["wall_s_mean"] = float(np.mean(walls)) if walls else None
        tokens = [float(r["tokens"]) for r in runs if r.get("tokens") is not None]
        entry["tokens_mean"] = float(np.mean(tokens)) if tokens else None
        entry["rl_steps_mean"] = float(np.mean(steps)) if steps else None
        arms.append(entry)
    pieces = []
    for arm, ref, piece in meta.get("comparisons") or []:
        if arm in arms_runs and ref in arms_runs:
            if meta.get("paired"):
                entry = _paired_piece(arms_runs[arm], arms_runs[ref], bands, boot)
                if entry:
                    pieces.append({"arm": arm, "ref": ref, "piece": piece, **entry})
                continue
            a_groups, r_groups = _eval_groups(arms_runs[arm], None, arm), _eval_groups(arms_runs[ref], None, ref)
            if a_groups and r_groups:
                pieces.append({"arm": arm, "ref": ref, "piece": piece, "seeds": min(len(a_groups), len(r_groups)),
                               "rows": max(len(g) for g in a_groups),
                               "diff": _iv(clustered_diff_ci(r_groups, a_groups, **boot))})
    summary = {"bands": bands, "window": window, "bootstrap": boot, "first_arm": first_arm, "sft": sft,
               "arms": arms, "pieces": pieces}
    summary["findings"] = findings(summary)
    return summary


def _pts(d: Mapping[str, Any]) -> str:
    """A difference in percentage points with its interval: ``+5.0 pts [-1.0, 11.0]``."""
    return f"{d['estimate'] * 100:+.1f} pts [{d['low'] * 100:+.1f}, {d['high'] * 100:+.1f}]"


def _pct(d: Mapping[str, Any] | None) -> str:
    return "n/a" if d is None else Interval(**d).fmt(pct=True)


def _verdict(d: Mapping[str, Any], ref: str, seeds: int, rows: int) -> str:
    iv = Interval(**d)
    if iv.excludes(0.0):
        side = "higher" if iv.estimate > 0 else "lower"
        return f"the {LEVEL * 100:.0f} % interval excludes 0: {side} than {ref}"
    return (f"the {LEVEL * 100:.0f} % interval includes 0: no difference from {ref} detectable with {seeds} "
            f"seed(s) x {rows} rows")


def findings(summary: Mapping[str, Any]) -> list[str]:
    """Plain statements, one per difference, saying whether its interval excludes 0.

    Args:
        summary: output of :func:`summarize` (without ``findings``).
    """
    out = []
    first = summary["arms"][0]
    for arm in summary["arms"]:
        seeds, rows = len(arm["seeds"]), max(arm["rows_per_run"], default=0)
        if arm["vs_sft"] is not None:
            out.append(f"**{arm['label']}** vs the SFT start: {_pts(arm['vs_sft'])}; "
                       f"{_verdict(arm['vs_sft'], 'the SFT start', seeds, rows)}.")
        if arm["vs_first"] is not None:
            out.append(f"**{arm['label']}** vs **{first['label']}**: {_pts(arm['vs_first'])}; "
                       f"{_verdict(arm['vs_first'], first['label'], seeds, rows)}.")
    labels = {a["arm"]: a["label"] for a in summary["arms"]}
    for p in summary.get("pieces") or []:
        if p["ref"] == first["arm"]:
            continue  # already said above
        out.append(f"**{labels[p['arm']]}** vs **{labels[p['ref']]}** ({p['piece']}): {_pts(p['diff'])}; "
                   f"{_verdict(p['diff'], labels[p['ref']], p['seeds'], p['rows'])}.")
    if not out:
        out.append("No differences could be computed (no SFT eval rows and a single arm).")
    return out


def _fmt_num(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None else f"{x:{spec}}"


def render_markdown(summary: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """The ``ablation.md`` text.

    Args:
        summary: output of :func:`summarize`.
        meta: run metadata (command, seeds, sizes, machine, timestamps, task).
    """
    arms, first = summary["arms"], summary["arms"][0]
    window = summary["window"]
    lines = [f"# Ablation: {meta.get('task') or 'QwenLong-L1 recipe arms'}", ""]
    if meta.get("command"):
        lines += ["```", str(meta["command"]), "```", ""]
    sizes = ", ".join(f"{k} {meta[k]}" for k in ("steps", "batch", "rollouts", "lr", "max_response_length")
                      if meta.get(k) is not None)
    lines += [f"- seeds: {meta.get('seeds', sorted({s for a in arms for s in a['seeds']}, key=str))}"]
    if sizes:
        lines.append(f"- RL: {sizes}")
    for key in ("machine", "started", "finished"):
        if meta.get(key):
            lines.append(f"- {key}: {meta[key]}")
    boot = summary["bootstrap"]
    how = ("'what each piece buys' is paired: differences per (seed, held-out row) between arms run with the same "
           "seed on the same rows, then seeds and rows within a seed resampled; the overview's columns resample each "
           "side independently" if meta.get("paired") else
           "differences resample each side independently (rows unpaired, so conservative)")
    lines += [f"- intervals: {boot['level'] * 100:.0f} % percentile bootstrap, {boot['n_boot']} resamples (seed "
              f"{boot['seed']}); arm accuracy resamples seeds, then rows within each seed; {how}", ""]
    sft = summary["sft"]
    if sft is not None:
        lines += [f"SFT start (one model, {sft['rows']} rows): {_pct(sft['accuracy'])}", ""]

    lines += ["## Overview", "", f"| arm | held-out accuracy | vs SFT start | vs {first['label']} | "
              f"final reward (last {window}) |", "|---|---|---|---|---|"]
    for arm in arms:
        r = arm["reward"]["final"]
        lines.append(f"| {arm['label']} | {_pct(arm['accuracy'])} | "
                     f"{_pts(arm['vs_sft']) if arm['vs_sft'] else 'n/a'} | "
                     f"{_pts(arm['vs_first']) if arm['vs_first'] else '(reference)'} | "
                     f"{_fmt_num(r['mean'])} ± {_fmt_num(r['sd'])} |")
    lines.append("")
    labels = {a["arm"]: a["label"] for a in arms}
    if summary.get("pieces"):
        lines += ["## What each piece buys", "", "Each row compares an arm with a reference arm that lacks the named "
                  "piece (held-out accuracy, percentage points, 95 % interval).", "", "| piece | arm vs arm | difference | interval excludes 0? |",
                  "|---|---|---|---|"]
        paired = any(p.get("paired") for p in summary["pieces"])
        if paired:
            bands = summary["bands"]
            lines[-2] = ("| piece | arm vs arm | paired difference | excludes 0? | "
                         + " | ".join(f"band {b}" for b in bands) + " | seeds for +-5 pts |")
            lines[-1] = "|---|---|---|---|" + "---|" * len(bands) + "---|"
        for p in summary["pieces"]:
            row = (f"| {p['piece']} | {labels[p['arm']]} vs {labels[p['ref']]} | {_pts(p['diff'])} | "
                   f"{'yes' if Interval(**p['diff']).excludes(0.0) else 'no'} |")
            if paired:
                row += "".join(f" {_pts(p['bands'][b]['diff']) if b in p.get('bands', {}) else 'n/a'} |"
                               for b in summary["bands"])
                row += f" {p.get('seeds_for_5pts') or 'n/a'} |"
            lines.append(row)
        lines.append("")
        if paired:
            lines += ["Seeds for +-5 pts: how many seeds a 95 % paired interval of +-5 points would need, from the "
                      "spread of the per-seed mean differences seen here (ceil((1.96 sd / 0.05)^2)).", ""]
    if any(a.get("tokens_mean") for a in arms):
        lines += ["## Compute", "", "| arm | RL steps | tokens processed (prompt + response, all rollouts) | "
                  "wall per run |", "|---|---|---|---|"]
        for a in arms:
            tok = "n/a" if not a.get("tokens_mean") else f"{a['tokens_mean'] / 1e6:.2f} M"
            wall = "n/a" if a.get("wall_s_mean") is None else f"{a['wall_s_mean']:.0f} s"
            lines.append(f"| {a['label']} | {_fmt_num(a['rl_steps_mean'], '.1f')} | {tok} | {wall} |")
        lines.append("")

    for arm in arms:
        n_seeds, rows = len(arm["seeds"]), max(arm["rows_per_run"], default=0)
        lines += [f"## {arm['label']} (`{arm['arm']}`)", "", "| metric | value |", "|---|---|",
                  f"| held-out accuracy ({n_seeds} seeds x {rows} rows) | {_pct(arm['accuracy'])} |",
                  f"| vs SFT start | {_pts(arm['vs_sft']) if arm['vs_sft'] else 'n/a'} |",
                  f"| vs {first['label']} | {_pts(arm['vs_first']) if arm['vs_first'] else '(reference arm)'} |"]
        for band, b in arm["bands"].items():
            sft_band = "" if sft is None else f" (SFT {_pct(sft['bands'][band]['accuracy'])})"
            lines.append(f"| accuracy, band {band} ({b['rows']} rows) | {_pct(b['accuracy'])}{sft_band} |")
        rw = arm["reward"]
        lines.append(f"| training reward, last {window} steps (mean ± sd over {rw['final']['n']} seeds) | "
                     f"{_fmt_num(rw['final']['mean'])} ± {_fmt_num(rw['final']['sd'])} "
                     f"(first {window}: {_fmt_num(rw['first']['mean'])}) |")
        j = arm["judge"]
        share = "n/a" if j["rescue_share"] is None else f"{j['rescue_share'] * 100:.1f} %"
        lines.append(f"| judge rescue share | {share} ({j['rescues']} / {j['scored']} scored, "
                     f"{j['calls']} judge calls) |")
        lines.append(f"| wall time per run (mean) | {_fmt_num(arm['wall_s_mean'], '.0f')} s "
                     f"({_fmt_num(arm['rl_steps_mean'], '.0f')} RL steps) |")
        lines.append("")

    lines += ["## What it shows", ""] + [f"- {f}" for f in summary["findings"]] + [""]
    return "\n".join(lines)


def render_plot(records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], path: str | Path,
                smooth_window: int = DEFAULT_SMOOTH) -> None:
    """Write ``ablation.png``: training reward per step (left) and held-out accuracy per band (right).

    Args:
        records: the per-run records (reward curves).
        summary: output of :func:`summarize` (accuracies and intervals).
        path: PNG path, written atomically.
        smooth_window: trailing moving-average window applied to each run's curve before averaging over seeds.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_r, ax_a = fig.subplots(1, 2, width_ratios=[1.1, 1])
    colors = [f"C{i % 10}" for i in range(len(summary["arms"]))]
    runs_by_arm = _group_runs(records)

    for arm, color in zip(summary["arms"], colors, strict=True):
        per_step: dict[float, list[float]] = {}
        for rec in runs_by_arm.get(arm["arm"], []):
            steps, scores = _reward_series(rec)
            for step, val in zip(steps, smooth(scores, smooth_window), strict=True):
                per_step.setdefault(step, []).append(val)
        if not per_step:
            continue
        xs = sorted(per_step)
        mean = [float(np.mean(per_step[x])) for x in xs]
        ax_r.plot(xs, mean, color=color, label=f"{arm['label']} ({len(arm['seeds'])} seeds)")
        ax_r.fill_between(xs, [min(per_step[x]) for x in xs], [max(per_step[x]) for x in xs], color=color,
                          alpha=0.18, linewidth=0)
    ax_r.set_xlabel("RL step")
    ax_r.set_ylabel("training reward (critic/score/mean)")
    ax_r.set_title(f"training reward, mean over seeds (band: min–max), smoothed w={smooth_window}", fontsize=10)
    ax_r.grid(alpha=0.3)
    ax_r.legend(fontsize=8)

    groups = ["all", *summary["bands"]]
    sft = summary["sft"]
    n_bars = len(summary["arms"]) + (1 if sft else 0)
    width = 0.8 / max(n_bars, 1)
    x0 = np.arange(len(groups), dtype=float)

    def _err(ivs: list[dict[str, Any] | None]) -> tuple[list[float], np.ndarray]:
        vals = [iv["estimate"] if iv else np.nan for iv in ivs]
        err = np.array([[iv["estimate"] - iv["low"] if iv else 0.0 for iv in ivs],
                        [iv["high"] - iv["estimate"] if iv else 0.0 for iv in ivs]])
        return vals, np.clip(err, 0.0, None)

    slot = 0
    if sft:
        ivs = [sft["accuracy"], *(sft["bands"][b]["accuracy"] for b in summary["bands"])]
        vals, err = _err(ivs)
        ax_a.bar(x0 + (slot - (n_bars - 1) / 2) * width, vals, width, yerr=err, capsize=3, fill=False,
                 edgecolor="0.3", linestyle="--", label="SFT start", error_kw={"ecolor": "0.3"})
        slot += 1
    for arm, color in zip(summary["arms"], colors, strict=True):
        ivs = [arm["accuracy"], *(arm["bands"][b]["accuracy"] for b in summary["bands"])]
        vals, err = _err(ivs)
        ax_a.bar(x0 + (slot - (n_bars - 1) / 2) * width, vals, width, yerr=err, capsize=3, color=color,
                 alpha=0.85, label=arm["label"])
        slot += 1
    rows = [max(summary["arms"][0]["rows_per_run"], default=0),
            *(summary["arms"][0]["bands"][b]["rows"] for b in summary["bands"])]
    ax_a.set_xticks(x0, [f"{g}\n({n} rows)" for g, n in zip(groups, rows, strict=True)])
    ax_a.set_ylim(0, 1.05)
    ax_a.set_ylabel("held-out accuracy")
    ax_a.set_title(f"held-out accuracy by prompt-length band ({LEVEL * 100:.0f} % bootstrap CI)", fontsize=10)
    ax_a.grid(axis="y", alpha=0.3)
    ax_a.legend(fontsize=8)

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_report(records: Sequence[Mapping[str, Any]], out_dir: str | Path, meta: Mapping[str, Any], *,
                 n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> dict[str, Path]:
    """Write ``ablation.json``, ``ablation.md`` and ``ablation.png`` into ``out_dir``, each atomically.

    Args:
        records: one dict per (arm, seed) run; the first arm seen is the reference for "vs arm a".
        out_dir: output folder (created if missing).
        meta: command, seeds, steps, batch, rollouts, lr, task, machine, started, finished, bands, ``sft_eval``
            (the SFT start's eval rows) and optionally ``window`` (final-reward steps) and ``smooth``.
        n_boot: bootstrap resamples per interval.
        seed: bootstrap seed.

    Returns:
        ``{"json": path, "md": path, "png": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(records, meta, n_boot=n_boot, seed=seed)
    paths = {"json": out / JSON_NAME, "md": out / MD_NAME, "png": out / PNG_NAME}
    doc = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "meta": dict(meta), "summary": summary,
           "records": list(records)}
    with atomic_write(paths["json"]) as fh:
        json.dump(doc, fh, indent=1, ensure_ascii=False, default=_json_default)
        fh.write("\n")
    with atomic_write(paths["md"]) as fh:
        fh.write(render_markdown(summary, meta))
    render_plot(records, summary, paths["png"], smooth_window=int(meta.get("smooth") or DEFAULT_SMOOTH))
    logger.info("ablation report: %s, %s, %s", *paths.values())
    return paths


def main(argv: list[str] | None = None) -> int:
    """Re-render the report from an existing ``ablation.json`` (its records and meta), no rerun needed."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("json_path", help="an ablation.json written by write_report")
    p.add_argument("--out-dir", default=None, help="output folder (default: the JSON's folder)")
    p.add_argument("--n-boot", type=int, default=DEFAULT_N_BOOT)
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    src = Path(args.json_path)
    try:
        doc = json.loads(src.read_text(encoding="utf-8"))
        records, meta = doc["records"], doc["meta"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"ablation_report: cannot read records and meta from {src}: {exc}", file=sys.stderr)
        return 2
    paths = write_report(records, args.out_dir or src.parent, meta, n_boot=args.n_boot, seed=args.seed)
    print("\n".join(str(v) for v in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
