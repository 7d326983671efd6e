"""``qwenlong-verl sweep-report <multirun folder>``: one row per job of a Hydra sweep of ``main_ppo``.

Each job folder of the sweep (``<sweep dir>/<subdir>``, Hydra's ``.hydra/overrides.yaml`` inside) gives the swept
overrides (the ones that differ between jobs), its status (``qwenlong_job.json``, written by the recipes' guard:
completed / failed with its error / running) and its per-step metrics (verl's ``file`` logger, ``metrics.jsonl``).
Writes ``sweep_report.md``, ``sweep_report.json`` and ``sweep_reward.png`` (reward per step per job) into the folder
(or ``--out``), each file whole or not at all. A failed job is a row with its error, never a missing row.

No verl, Ray or torch import: the report reads files only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPORT_MD, REPORT_JSON, REWARD_PNG = "sweep_report.md", "sweep_report.json", "sweep_reward.png"
REWARD_KEY = "critic/score/mean"  # mean sequence reward of the step's trained batch (verl)
# (column, metric key, how the best value is chosen)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("reward", REWARD_KEY, "max"),
    ("acc", "qwenlong/reward/acc_mean", "max"),
    ("response_length", "response_length/mean", "last"),
    ("judge_call_rate", "qwenlong/judge/call_rate", "last"),
    ("judge_failure_rate", "qwenlong/judge/failure_rate", "last"),
    ("judge_parse_failure_rate", "qwenlong/judge/parse_failure_rate", "last"),
    ("judge_rescue_rate", "qwenlong/judge/rescue_rate", "last"),
)
ERROR_CHARS_MD = 160


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep-report", help="table + plot of a Hydra sweep of main_ppo (swept overrides vs final/best metrics)",
        description="Read every job folder of a Hydra multirun folder (python -m verl.trainer.main_ppo -m "
                    "+recipe=... +qwenlong_sweep=local ...) and write one table (Markdown + JSON) of the swept "
                    "overrides against each job's final and best metrics, status and wall time, plus a PNG of "
                    "reward per step per job. Failed jobs are rows with their error.")
    p.add_argument("sweep_dir", help="the sweep folder (hydra.sweep.dir, e.g. multirun/2026-01-01/12-00-00)")
    p.add_argument("--out", help="folder for sweep_report.{md,json} and sweep_reward.png (default: the sweep folder)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--json", dest="print_json", action="store_true", help="print the JSON report instead of the table")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------------------------------
# Reading the sweep
# ---------------------------------------------------------------------------------------------------------------
def find_jobs(sweep_dir: Path) -> list[Path]:
    """Job folders: those holding ``.hydra/overrides.yaml`` or a ``qwenlong_job.json`` (up to 3 levels deep, for a
    custom ``hydra.sweep.subdir``), in job order."""
    from qwenlong_verl.sweep import STATUS_FILE

    found: set[Path] = set()
    for depth in range(1, 4):
        stars = "/".join(["*"] * depth)
        for f in sweep_dir.glob(f"{stars}/.hydra/overrides.yaml"):
            found.add(f.parent.parent)
        for f in sweep_dir.glob(f"{stars}/{STATUS_FILE}"):
            found.add(f.parent)
    found = {d for d in found if ".submitit" not in d.parts}

    def key(d: Path) -> tuple:
        status = _status(d) or {}
        num = status.get("job_num")
        rel = d.relative_to(sweep_dir).as_posix()
        return (0, int(num), rel) if isinstance(num, int) else ((0, int(rel), rel) if rel.isdigit() else (1, 0, rel))

    return sorted(found, key=key)


def _status(job: Path) -> dict[str, Any] | None:
    from qwenlong_verl.sweep import read_status

    return read_status(str(job))


def _overrides(job: Path, status: Mapping[str, Any] | None) -> list[str]:
    f = job / ".hydra" / "overrides.yaml"
    if f.is_file():
        try:
            import yaml

            data = yaml.safe_load(f.read_text(encoding="utf-8"))
            if isinstance(data, list):
                return [str(x) for x in data]
        except Exception as exc:  # noqa: BLE001 - a broken file is reported, not fatal
            logger.warning("%s: unreadable (%s)", f, exc)
    return [str(x) for x in (status or {}).get("overrides") or []]


def _split(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key, value


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _metrics_file(job: Path, status: Mapping[str, Any] | None) -> Path:
    from qwenlong_verl.sweep import METRICS_FILE

    local = job / METRICS_FILE
    if local.is_file():
        return local
    recorded = (status or {}).get("metrics")
    return Path(recorded) if recorded else local


def _slurm_ended(job: Path, sweep_dir: Path) -> str | None:
    """Why SLURM ended this job (time limit, scancel, OOM), from submitit's logs of its array task
    (``<sweep>/.submitit/<array id>_<job number>/*_log.err``), or None."""
    from qwenlong_verl.sweep_causes import slurm_end

    if not job.name.isdigit():
        return None
    for log in sorted((sweep_dir / ".submitit").glob(f"*_{job.name}/*_log.*")):
        cause = slurm_end(log.read_text(errors="replace"))
        if cause:
            return cause
    return None


def summarize_job(job: Path, sweep_dir: Path) -> dict[str, Any]:
    from qwenlong_verl.pipeline.run_report import read_metrics

    status = _status(job)
    metrics_path = _metrics_file(job, status)
    steps = read_metrics(metrics_path) if metrics_path.is_file() else []
    row: dict[str, Any] = {
        "job": job.relative_to(sweep_dir).as_posix(),
        "status": (status or {}).get("status") or ("unknown" if not steps else "completed?"),
        "error": (status or {}).get("error"),
        "wall_s": (status or {}).get("wall_s"),
        "steps": len(steps),
        "last_step": steps[-1]["step"] if steps else None,
        "overrides": _overrides(job, status),
        "final": {}, "best": {}, "curve": [],
    }
    if row["status"] in ("unknown", "running", "completed?"):
        ended = _slurm_ended(job, sweep_dir)
        if ended:  # SLURM killed the process: its own status file could not say so
            row["status"], row["error"] = "failed", ended
            status = {**(status or {}), "status": "failed"}
    if status is None:
        row["error"] = ("no qwenlong_job.json: the job did not start through the recipe's guard, or its process was "
                        "killed before it could write one (see <sweep>/.submitit/*/ logs)")
    elif row["status"] == "running":
        row["error"] = "still running, or its process died without a word (killed? out of memory? timeout?)"
    from qwenlong_verl.sweep_causes import cause_line

    row["cause"] = cause_line(row["error"]) if row["status"] != "completed" else None
    for name, key, how in COLUMNS:
        values = [(s["step"], _finite(s["data"].get(key))) for s in steps]
        values = [(st, v) for st, v in values if v is not None]
        row["final"][name] = values[-1][1] if values else None
        if how == "max":
            row["best"][name] = max((v for _, v in values), default=None)
            row["best"][f"{name}_step"] = max(values, key=lambda x: x[1])[0] if values else None
    row["curve"] = [[s["step"], _finite(s["data"].get(REWARD_KEY))] for s in steps]
    return row


def build_report(sweep_dir: Path) -> dict[str, Any]:
    jobs = find_jobs(sweep_dir)
    rows = [summarize_job(j, sweep_dir) for j in jobs]
    # the swept keys: those whose value differs between jobs (or that only some jobs set)
    per_job = [dict(_split(o) for o in r["overrides"]) for r in rows]
    keys: list[str] = []
    for d in per_job:
        for k in d:
            if k not in keys:
                keys.append(k)
    swept = [k for k in keys if len({d.get(k) for d in per_job}) > 1] if len(rows) > 1 else []
    for r, d in zip(rows, per_job, strict=True):
        r["swept"] = {k: d.get(k) for k in swept}
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"sweep_dir": str(sweep_dir), "swept_keys": swept, "jobs": rows, "counts": counts,
            "columns": [c[0] for c in COLUMNS], "reward_key": REWARD_KEY}


# ---------------------------------------------------------------------------------------------------------------
# Writing it
# ---------------------------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _error_line(error: str | None) -> str:
    """The table's error cell: the line naming the cause (a verl assertion, the guard's first finding), not the
    error's first or last line (a guard heading, a log path)."""
    from qwenlong_verl.sweep_causes import cause_line

    text = cause_line(error) or ""
    return text if len(text) <= ERROR_CHARS_MD else text[:ERROR_CHARS_MD - 3] + "..."


def render_markdown(report: Mapping[str, Any]) -> str:
    swept = report["swept_keys"]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report["counts"].items())) or "no jobs"
    lines = [f"# Sweep report: {report['sweep_dir']}", "", f"{len(report['jobs'])} jobs: {counts}.", ""]
    head = ["job", *swept, "status", "steps", "wall s", "reward (final)", "reward (best @step)", "acc (final)",
            "acc (best)", "response len", "judge call", "judge fail", "judge parse fail", "error"]
    lines += ["| " + " | ".join(_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    for r in report["jobs"]:
        f, b = r["final"], r["best"]
        best_reward = (f"{_fmt(b.get('reward'))} @{b.get('reward_step')}" if b.get("reward") is not None else "–")
        cells = [r["job"], *[_fmt(r["swept"].get(k)) for k in swept], r["status"], _fmt(r["steps"]),
                 _fmt(r["wall_s"]), _fmt(f.get("reward")), best_reward, _fmt(f.get("acc")), _fmt(b.get("acc")),
                 _fmt(f.get("response_length")), _fmt(f.get("judge_call_rate")), _fmt(f.get("judge_failure_rate")),
                 _fmt(f.get("judge_parse_failure_rate")), _error_line(r.get("error"))]
        lines.append("| " + " | ".join(_cell(str(c)) for c in cells) + " |")
    lines += ["", f"reward = verl's `{REWARD_KEY}` (trained batch); acc = `qwenlong/reward/acc_mean` (every scored "
              "rollout of the step); judge rates = `qwenlong/judge/*` of the last step; wall time from the job's "
              "start-up checks to its end. Full errors: sweep_report.json.", "",
              f"![reward per step per job]({REWARD_PNG})", ""]
    return "\n".join(lines)


def plot_rewards(report: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in report["jobs"]:
        pts = [(s, v) for s, v in r["curve"] if v is not None]
        label = r["job"] + (": " + ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in r["swept"].items())
                            if r["swept"] else "")
        if r["status"] != "completed":
            label += f" ({r['status']})"
        if pts:
            ax.plot([s for s, _ in pts], [v for _, v in pts], "o-", label=label)
        else:
            ax.plot([], [], "x", label=label + ": no steps")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel(f"reward ({REWARD_KEY})")
    ax.set_title("reward per step per job")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(sweep_dir: Path, out_dir: Path, plot: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    from qwenlong_verl.outputs import atomic_path, write_text
    from qwenlong_verl.redaction import redact, redact_value

    # credentials masked once, here: the swept overrides (+trainer.wandb_api_key=..., a judge URL with a password)
    # reach the JSON, the markdown, the plot's legend and stdout from this one value
    report = redact_value(build_report(sweep_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": str(out_dir / REPORT_MD), "json": str(out_dir / REPORT_JSON)}
    # each file whole or not at all; no URL credentials (a judge URL may be a swept override)
    write_text(out_dir / REPORT_JSON, redact(json.dumps(report, indent=1, default=str)))
    write_text(out_dir / REPORT_MD, redact(render_markdown(report)))
    if plot:
        with atomic_path(out_dir / REWARD_PNG) as tmp:
            plot_rewards(report, tmp)
        paths["png"] = str(out_dir / REWARD_PNG)
    return report, paths


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.commands._args import CommandError
    from qwenlong_verl.outputs import check_output

    sweep_dir = Path(args.sweep_dir)
    if not sweep_dir.is_dir():
        raise CommandError(f"sweep folder {str(sweep_dir)!r} does not exist (give hydra.sweep.dir of the sweep, "
                           "e.g. multirun/<date>/<time>)")
    out_dir = Path(args.out) if args.out else sweep_dir
    check_output(out_dir / REPORT_JSON, option="--out")
    if not find_jobs(sweep_dir):
        raise CommandError(f"{str(sweep_dir)!r} holds no Hydra job folder (no */.hydra/overrides.yaml): is it the "
                           "folder of a sweep (hydra.sweep.dir)?")
    report, paths = write_report(sweep_dir, out_dir, plot=not args.no_plot)
    if args.print_json:
        sys.stdout.write(json.dumps(report, indent=1, default=str) + "\n")
    else:
        sys.stdout.write(render_markdown(report) + "\n")
    logger.info("sweep report: %s", ", ".join(paths.values()))
    failed = [r["job"] + (f" ({r['cause']})" if r.get("cause") else "") for r in report["jobs"]
              if r["status"] != "completed"]
    if failed:
        logger.warning("%d of %d jobs did not complete: %s", len(failed), len(report["jobs"]), "; ".join(failed))
    return 0
