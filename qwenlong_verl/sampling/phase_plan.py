"""What a curriculum will train on, before any GPU time: per-phase counts, length histograms, retrospective picks.

Used by ``qwenlong-verl plan``; it applies the same selection code as the trainer's sampler to the stored lengths.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from qwenlong_verl.sampling.difficulty import DifficultyTable, difficulty_score
from qwenlong_verl.sampling.options import SamplingOptions
from qwenlong_verl.sampling.phases import DatasetView, length_histogram, phase_band, retrospective_pool
from qwenlong_verl.sampling.sampler import epoch_picks

logger = logging.getLogger(__name__)


def _stats(lengths: np.ndarray) -> dict[str, float]:
    if len(lengths) == 0:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": int(lengths.min()), "mean": float(lengths.mean()), "max": int(lengths.max())}


def build_plan(view: DatasetView, options: SamplingOptions, table: DifficultyTable | None = None,
               bins: int = 20) -> dict[str, Any]:
    """Per phase: band size and lengths, retrospective candidates and the first epoch's picks."""
    upper_all = options.curriculum.lengths[-1] if options.curriculum.lengths else int(view.lengths.max())
    phases = []
    covered = np.zeros(len(view), dtype=bool)
    for phase in range(1, options.num_phases + 1):
        lower, upper = options.phase_bounds(phase)
        band = phase_band(view, options, phase)
        covered[band] = True
        entry: dict[str, Any] = {
            "phase": phase, "lower_exclusive": lower, "upper_inclusive": upper, "band_size": int(len(band)),
            "lengths": _stats(view.lengths[band]),
            "histogram": length_histogram(view.lengths[band], bins=bins, upper=upper_all),
            "retro_candidates": 0, "retro_per_epoch": 0, "retro_picks": [],
        }
        pool = retrospective_pool(view, table, options, phase)
        entry["retro_candidates"] = len(pool)
        entry["retro_missing_from_data"] = pool.missing
        entry["retro_too_long"] = pool.too_long
        picks = epoch_picks(options, pool, len(band), phase, epoch=0)  # what the trainer's first epoch draws
        entry["retro_per_epoch"] = int(len(picks))
        entry["retro_picks"] = [view.indices[p] for p in picks]
        entry["epoch_size"] = int(len(band) + len(picks))
        entry["retro_lengths"] = _stats(view.lengths[picks])
        phases.append(entry)
    plan: dict[str, Any] = {
        "rows": len(view), "phase_lengths": list(options.curriculum.lengths),
        "cumulative": options.curriculum.cumulative, "phases": phases,
        "outside_all_phases": int((~covered).sum()),
        "retrospective": {"enable": options.retrospective.enable, "mode": options.retrospective.mode,
                          "ratio": options.retrospective.ratio, "count": options.retrospective.count,
                          "eps": options.retrospective.eps},
    }
    if table is not None:
        means = table.means(min_rollouts=options.retrospective.min_rollouts)
        values = np.asarray(list(means.values()), dtype=float)
        counts, edges = np.histogram(values, bins=10, range=(0.0, 1.0)) if len(values) else ([], [])
        plan["difficulty"] = {
            "examples": len(table), "with_rollouts": len(values), "phases": table.phases(),
            "zero_mean": int((values == 0).sum()), "all_correct": int((values == 1).sum()),
            "mean_reward_histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
            "difficulty_mean": float(np.mean([difficulty_score(m, options.retrospective.eps) for m in values]))
            if len(values) else None,
        }
    return plan


def format_plan(plan: dict[str, Any]) -> str:
    lines = [f"{plan['rows']} rows; phases {plan['phase_lengths'] or '[all]'}"
             f"{' (cumulative)' if plan['cumulative'] else ''}"]
    for p in plan["phases"]:
        s = p["lengths"]
        lines.append(
            f"phase {p['phase']}: {p['lower_exclusive']} < len <= {p['upper_inclusive']}: {p['band_size']} examples "
            f"(tokens min {s['min']} mean {s['mean']:.0f} max {s['max']}); retrospective: {p['retro_candidates']} "
            f"candidates, {p['retro_per_epoch']} per epoch")
    if plan["outside_all_phases"]:
        lines.append(f"{plan['outside_all_phases']} rows are longer than the last phase bound and never trained")
    d = plan.get("difficulty")
    if d:
        lines.append(f"difficulty table: {d['examples']} examples (phases {d['phases']}), {d['zero_mean']} with mean "
                     f"reward 0, {d['all_correct']} always solved")
    return "\n".join(lines)


def plot_plan(plan: dict[str, Any], view: DatasetView, options: SamplingOptions, path: str,
              table: DifficultyTable | None = None) -> None:
    """Length distribution per phase (retrospective picks hatched) and, with a table, the difficulty histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = 2 if table is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    ax = axes[0][0]
    upper_all = options.curriculum.lengths[-1] if options.curriculum.lengths else int(view.lengths.max())
    edges = np.linspace(0, max(1, upper_all), 41)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for p in plan["phases"]:
        band = phase_band(view, options, p["phase"])
        color = colors[(p["phase"] - 1) % len(colors)]
        ax.hist(view.lengths[band], bins=edges, alpha=0.55, color=color,
                label=f"phase {p['phase']} band ({p['band_size']})")
        if p["retro_picks"]:
            pos = [view.position(i) for i in p["retro_picks"]]
            ax.hist(view.lengths[pos], bins=edges, histtype="step", hatch="//", color=color, linewidth=1.5,
                    label=f"phase {p['phase']} retrospective ({len(pos)})")
    for bound in options.curriculum.lengths:
        ax.axvline(bound, color="black", linestyle="--", linewidth=0.8)
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("examples")
    ax.set_title("length distribution per phase")
    ax.legend(fontsize=8)
    if table is not None:
        ax2 = axes[0][1]
        d = plan.get("difficulty") or {}
        hist = d.get("mean_reward_histogram") or {}
        if hist.get("counts"):
            e = np.asarray(hist["edges"])
            ax2.bar(e[:-1], hist["counts"], width=np.diff(e), align="edge", edgecolor="black", alpha=0.7)
        ax2.set_xlabel("mean reward over recorded rollouts (difficulty = 1/(mean+eps))")
        ax2.set_ylabel("examples")
        ax2.set_title(f"difficulty: {d.get('zero_mean', 0)} of {d.get('with_rollouts', 0)} never solved")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
