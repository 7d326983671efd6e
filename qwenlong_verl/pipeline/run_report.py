"""The pipeline's closing report: per stage steps, mean reward, judge use, phase sizes, retrospective count and wall
time (``report.md``, ``report.json``), and ``reward.png``: reward per RL step across the phases (and SFT loss).

Every number comes from the stages' own logs: verl's ``file`` logger (one JSON line per step, ``VERL_FILE_LOGGER_PATH``)
and the stages' ``DONE`` records.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from qwenlong_verl.reporting import ReportFiles, fmt, markdown_table, read_metrics, write_report_files

logger = logging.getLogger(__name__)

REWARD_KEY = "critic/score/mean"  # mean sequence reward of the step's trained batch (verl)
ACC_KEY = "qwenlong/reward/acc_mean"  # every scored rollout of the step, DAPO-evicted groups included
REPORT_MD, REPORT_JSON, REWARD_PNG = "report.md", "report.json", "reward.png"
FILES = ReportFiles(md=REPORT_MD, json=REPORT_JSON, png=REWARD_PNG)
# this report's numbers: three decimals, and whole numbers (steps, counts, a loss of 3.0) without them
num = partial(fmt, whole_bare=True)


def _values(steps: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    out = []
    for s in steps:
        v = s["data"].get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out.append(float(v))
    return out


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _sum_suffix(steps: Sequence[Mapping[str, Any]], suffix: str) -> float:
    return sum(float(v) for s in steps for k, v in s["data"].items()
               if k.endswith(suffix) and isinstance(v, (int, float)))


def sft_summary(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    loss = _values(steps, "train/loss")
    return {"steps": len(steps), "loss_first": loss[0] if loss else None, "loss_last": loss[-1] if loss else None}


def rl_summary(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    reward = _values(steps, REWARD_KEY)
    acc = _values(steps, ACC_KEY)
    phase = _values(steps, "qwenlong/phase")
    return {
        "steps": len(steps),
        "reward_mean": _mean(reward),
        "reward_first": reward[0] if reward else None,
        "reward_last": reward[-1] if reward else None,
        "acc_mean": _mean(acc),
        "scored_rollouts": sum(_values(steps, "qwenlong/reward/samples")),
        "judge_calls": sum(_values(steps, "qwenlong/judge/calls")),
        "judge_failures": sum(_values(steps, "qwenlong/judge/failures")),
        "judge_call_rate": _mean(_values(steps, "qwenlong/judge/call_rate")),
        "judge_rescue_rate": _mean(_values(steps, "qwenlong/judge/rescue_rate")),
        "phase": int(phase[-1]) if phase else None,
        "retro_pool": max(_values(steps, "qwenlong/retro_pool"), default=0.0),
        "retro_in_batches": sum(_values(steps, "qwenlong/retro_in_batch")),
        "dapo_evicted": _sum_suffix(steps, "filter_groups/evicted_samples"),
    }


def build_report(workdir: Path, records: Mapping[str, Any]) -> dict[str, Any]:
    """``records``: stage name -> :class:`~qwenlong_verl.pipeline.stage_runner.StageRecord` (or a dict of the same
    fields)."""
    def field(rec: Any, name: str) -> Any:
        return rec.get(name) if isinstance(rec, Mapping) else getattr(rec, name)

    report: dict[str, Any] = {"workdir": str(workdir), "stages": {}, "curves": {}}
    for name, rec in records.items():
        if name == "report":
            continue
        status, outputs = field(rec, "status"), field(rec, "outputs") or {}
        entry: dict[str, Any] = {"status": status, "wall_s": round(float(field(rec, "wall_s") or 0.0), 1)}
        if name == "data" and outputs:
            entry["model"] = outputs.get("model")
            entry["phase_sizes"] = outputs.get("phase_sizes")
            entry["sft_conversion"] = outputs.get("sft_conversion")
        if name == "sft" and outputs:
            steps = read_metrics(outputs["metrics"])
            entry.update(sft_summary(steps), hf_model=outputs.get("hf_model"))
            report["curves"]["sft_loss"] = [[s["step"], v] for s in steps for v in _values([s], "train/loss")]
        if name in ("phase1", "phase2") and outputs:
            steps = read_metrics(outputs["metrics"])
            entry.update(rl_summary(steps))
            entry.update(start_stage=outputs.get("start_stage"), start_model=outputs.get("start_model"),
                         hf_model=outputs.get("hf_model"), retrospective_file=outputs.get("retrospective_file"),
                         difficulty_file=outputs.get("difficulty_file"))
            sizes = outputs.get("phase_sizes") or {}
            k = name[-1]
            entry["phase_band_size"] = (sizes.get(f"phase{k}") or {}).get("band_size")
            entry["retro_candidates"] = (sizes.get(f"phase{k}") or {}).get("retro_candidates")
            if sizes.get("difficulty"):
                entry["difficulty_in"] = sizes["difficulty"]
            report["curves"][name] = [[s["step"], s["data"].get(REWARD_KEY), s["data"].get(ACC_KEY)]
                                      for s in steps]
        if name == "eval" and outputs:
            entry["models"] = {label: {k: v for k, v in m.items() if k in ("model", "rows", "score", "rule_acc",
                                                                            "judge_calls", "judge_yes", "report",
                                                                            "scored")}
                               for label, m in (outputs.get("models") or {}).items()}
        report["stages"][name] = entry
    report["total_wall_s"] = round(sum(e["wall_s"] for e in report["stages"].values()), 1)
    report["learning"] = learning_summary(report)
    return report


LEARNING_WINDOW = 3  # steps averaged at the start and at the end of each RL phase, and the smoothing window


def _row_accuracy(scored: str | Path) -> dict[str, float]:
    """Per held-out row: the mean score of its sampled answers (a ``*_scored.jsonl`` of the eval stage)."""
    hits: dict[str, list[float]] = {}
    for line in Path(scored).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            hits.setdefault(str(row["id"]), []).append(1.0 if float(row.get("score") or 0.0) >= 1.0 else 0.0)
    return {k: sum(v) / len(v) for k, v in hits.items()}


def learning_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Does the run learn? Per RL phase, the mean reward of the first and of the last ``LEARNING_WINDOW`` steps
    (verl's ``critic/score/mean``, and acc over every rollout); on the held-out rows, the final model minus the SFT
    model with a 95 % paired bootstrap interval over rows (:func:`~qwenlong_verl.evaluation.bootstrap.paired_diff_ci`).
    A gain counts only when its interval excludes 0."""
    from qwenlong_verl.evaluation.bootstrap import first_last_means, paired_diff_ci

    out: dict[str, Any] = {"window": LEARNING_WINDOW, "phases": {}}
    for name in ("phase1", "phase2"):
        rows = report["curves"].get(name) or []
        reward = [r for _, r, _ in rows if isinstance(r, (int, float)) and math.isfinite(r)]
        acc = [a for _, _, a in rows if isinstance(a, (int, float)) and math.isfinite(a)]
        entry: dict[str, Any] = {}
        for key, xs in (("reward", reward), ("acc", acc)):
            if len(xs) >= 2:
                first, last = first_last_means(xs, LEARNING_WINDOW)
                entry[key] = {"first": first, "last": last, "rises": last > first}
        if entry:
            out["phases"][name] = entry
    models = (report["stages"].get("eval") or {}).get("models") or {}
    final = next((m for m in ("phase2", "phase1") if m in models), None)

    def gain(before_label: str, after_label: str) -> dict[str, Any] | None:
        try:
            before = _row_accuracy(models[before_label]["scored"])
            after = _row_accuracy(models[after_label]["scored"])
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("held-out gain %s -> %s left out of the report: %s", before_label, after_label, exc)
            return None
        ids = sorted(set(before) & set(after))
        if not ids:
            return None
        diff = paired_diff_ci([before[i] for i in ids], [after[i] for i in ids])
        return {"rows": len(ids), "before_label": before_label, "after_label": after_label,
                "before": sum(before[i] for i in ids) / len(ids), "after": sum(after[i] for i in ids) / len(ids),
                "gain": diff.as_dict(), "gain_excludes_0": diff.excludes(0.0)}

    if "sft" in models and final:
        h = gain("sft", final)
        if h:
            out["heldout"] = h
    # each phase's own held-out gain: SFT -> phase I, phase I -> phase II (a phase that adds nothing shows here)
    chain = [m for m in ("sft", "phase1", "phase2") if m in models]
    steps = [g for g in (gain(a, b) for a, b in zip(chain, chain[1:], strict=False)) if g]
    if steps:
        out["heldout_steps"] = steps
    p2 = report["stages"].get("phase2") or {}
    if p2.get("retrospective_file") and "retro_pool" in p2:
        out["retro_pool"] = p2["retro_pool"]
    return out


def learning_lines(learning: Mapping[str, Any]) -> list[str]:
    """The report's before/after block (also the last thing ``qwenlong-verl pipeline`` prints)."""
    lines = ["## Does it learn?", ""]
    k = learning.get("window", LEARNING_WINDOW)
    for name, e in (learning.get("phases") or {}).items():
        parts = [f"{key} {num(v['first'])} → {num(v['last'])} ({'rises' if v['rises'] else 'does not rise'})"
                 for key, v in e.items()]
        lines.append(f"- {name}, mean of the first vs the last {k} steps: " + "; ".join(parts))
    def heldout_line(h: Mapping[str, Any], prefix: str) -> str:
        g = h["gain"]
        verdict = ("the 95 % interval excludes 0: a real gain" if h["gain_excludes_0"] and g["estimate"] > 0 else
                   "the 95 % interval excludes 0: a real loss" if h["gain_excludes_0"] else
                   "the 95 % interval includes 0: no gain shown")
        return (f"{prefix}({h['rows']} rows): {h['before_label']} {100 * h['before']:.1f} % → "
                f"{h['after_label']} {100 * h['after']:.1f} %, gain {100 * g['estimate']:+.1f} points "
                f"[{100 * g['low']:+.1f}, {100 * g['high']:+.1f}]; {verdict}")

    h = learning.get("heldout")
    if h:
        lines.append(heldout_line(h, "- held-out "))
    steps = learning.get("heldout_steps") or []
    if len(steps) > 1 or (steps and h and steps[0]["after_label"] != h["after_label"]):
        for step in steps:
            lines.append(heldout_line(step, f"  - {step['after_label']} alone "))
    pool = learning.get("retro_pool")
    if pool is not None:
        note = ("" if pool else ": phase I left no unsolved example in phase II's reach, so retrospective sampling "
                "added nothing in this run")
        lines.append(f"- retrospective pool of phase II: {int(pool)} example(s){note}")
    return lines + [""] if len(lines) > 2 else []


def render_markdown(report: Mapping[str, Any]) -> str:
    st = report["stages"]
    head = ["stage", "status", "wall s", "steps", "mean reward", "first step → last step", "acc (all rollouts)",
            "judge calls (rate)", "phase band", "retrospective"]
    rows = []
    for name, e in st.items():
        steps = e.get("steps")
        if name == "sft" and "loss_first" in e:
            reward = "–"
            first_last = f"loss {num(e['loss_first'])} → {num(e['loss_last'])}"
        elif name in ("phase1", "phase2") and "reward_mean" in e:
            reward = num(e["reward_mean"])
            first_last = f"{num(e['reward_first'])} → {num(e['reward_last'])}"
        else:
            reward = first_last = "–"
        acc = num(e.get("acc_mean"))
        judge = (f"{num(e.get('judge_calls'))} ({num(e.get('judge_call_rate'), 2)})"
                 if "judge_calls" in e and name != "eval" else "–")
        band = num(e.get("phase_band_size"))
        retro = "–"
        if name == "phase2" and "retro_pool" in e:
            retro = (f"pool {num(e['retro_pool'])}, {num(e['retro_in_batches'])} trained "
                     f"(from {Path(e['retrospective_file']).name if e.get('retrospective_file') else 'none'})")
        elif name == "phase1" and e.get("difficulty_file"):
            retro = f"writes {Path(e['difficulty_file']).name}"
        rows.append([name, e["status"], f"{e['wall_s']:.0f}", num(steps), reward, first_last, acc, judge, band, retro])
    lines = ["# QwenLong-L1 pipeline report", "", f"Work folder: `{report['workdir']}`; total wall time "
             f"{report['total_wall_s']:.0f} s.", "", *learning_lines(report.get("learning") or {}),
             *markdown_table(head, rows)]
    data = st.get("data", {})
    sizes = data.get("phase_sizes") or {}
    if sizes:
        lines += ["", f"Training rows: {sizes.get('rows')}; phase I band {sizes.get('phase1', {}).get('band_size')}, "
                  f"phase II band {sizes.get('phase2', {}).get('band_size')}, outside both "
                  f"{sizes.get('outside_all_phases')}."]
    p2 = st.get("phase2", {})
    if p2.get("difficulty_in"):
        d = p2["difficulty_in"]
        lines.append(f"Phase I difficulty table: {d['examples']} examples, {d['zero_mean']} with mean reward 0 "
                     f"(retrospective candidates for phase II: {p2.get('retro_candidates')}).")
    for name in ("phase1", "phase2"):
        e = st.get(name, {})
        if e.get("start_stage"):
            lines.append(f"{name} started from the {e['start_stage']} model `{e['start_model']}`.")
    ev = st.get("eval", {}).get("models")
    if ev:
        lines += ["", "## Held-out evaluation (`qwenlong-verl score`)", "",
                  *markdown_table(["model", "rows", "score %", "rule acc %", "judge calls", "judge YES"],
                                  [[label, num(m.get("rows")), num(m.get("score"), 1), num(m.get("rule_acc"), 1),
                                    num(m.get("judge_calls")), num(m.get("judge_yes"))] for label, m in ev.items()])]
    lines += ["", f"![reward per step]({REWARD_PNG})", "",
              "mean reward = verl's `critic/score/mean` (trained batch, after DAPO filtering); acc = "
              "`qwenlong/reward/acc_mean` over every scored rollout of the step, evicted groups included.", ""]
    return "\n".join(lines)


def plot_reward(report: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = report["curves"]
    fig, (ax_sft, ax_rl) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 2]})
    sft = curves.get("sft_loss") or []
    if sft:
        ax_sft.plot([s for s, _ in sft], [v for _, v in sft], color="tab:gray")
    ax_sft.set_title("warm-up SFT")
    ax_sft.set_xlabel("SFT step")
    ax_sft.set_ylabel("train loss")
    offset = 0
    for name, color in (("phase1", "tab:blue"), ("phase2", "tab:orange")):
        rows = curves.get(name) or []
        if not rows:
            continue
        # a phase II that resumed phase I's checkpoint logs global steps that already continue phase I's count
        shift = offset if rows[0][0] <= offset else 0
        xs = [shift + s for s, _, _ in rows]
        reward = [r if r is not None else float("nan") for _, r, _ in rows]
        ax_rl.plot(xs, reward, "o", color=color, alpha=0.45, ms=4, label=f"{name}: reward (trained batch)")
        finite = [(x, r) for x, r in zip(xs, reward, strict=True) if math.isfinite(r)]
        if finite:
            from qwenlong_verl.evaluation.bootstrap import smooth

            ax_rl.plot([x for x, _ in finite], smooth([r for _, r in finite], LEARNING_WINDOW), "-", color=color,
                       lw=2, label=f"{name}: reward, mean of {LEARNING_WINDOW} steps")
        ax_rl.plot(xs, [a if a is not None else float("nan") for _, _, a in rows], "x--", color=color, alpha=0.6,
                   label=f"{name}: acc (all rollouts)")
        if offset:
            ax_rl.axvline(offset + 0.5, color="k", lw=0.8, ls=":")
        offset = xs[-1]
    ax_rl.set_title("RL: reward per step across the phases")
    ax_rl.set_xlabel("RL step (phase II continues phase I's count)")
    ax_rl.set_ylabel("reward")
    if ax_rl.lines:
        ax_rl.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(workdir: Path, records: Mapping[str, Any], out_dir: Path) -> dict[str, str]:
    """``report.json``, ``report.md`` and ``reward.png`` of the stages' ``records`` into ``out_dir``, each whole or
    not at all, credentials masked (a judge URL may carry them).

    Args:
        workdir: the pipeline's work folder (named in the report).
        records: stage name -> its record (:func:`build_report`).
        out_dir: the folder (created when missing).

    Returns:
        ``{"md": path, "json": path, "png": path}``.
    """
    report = build_report(workdir, records)
    paths = write_report_files(out_dir, report, render_markdown(report), FILES,
                               plot=lambda path: plot_reward(report, path), json_indent=2)
    return {key: str(path) for key, path in paths.items()}


def run_report(ctx: Any) -> dict[str, Any]:
    """The ``report`` stage."""
    records = {k: v for k, v in ctx.records.items() if k != "report"}
    return write_report(ctx.workdir, records, ctx.stage_dir())
