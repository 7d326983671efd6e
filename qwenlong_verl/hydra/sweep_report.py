"""The report of a Hydra sweep of ``main_ppo``: one row per job (``qwenlong-verl sweep-report <multirun folder>``).

Each job folder of the sweep (``<sweep dir>/<subdir>``, Hydra's ``.hydra/overrides.yaml`` inside) gives the swept
overrides (the ones that differ between jobs), its status (``qwenlong_job.json``, written by the recipes' guard:
completed / failed with its error / running) and its per-step metrics (verl's ``file`` logger, ``metrics.jsonl``).
:func:`write_report` writes ``sweep_report.md``, ``sweep_report.json`` and ``sweep_reward.png`` (reward per step per
job), each file whole or not at all. A failed job is a row with its error, never a missing row.

No verl, Ray or torch import: the report reads files only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qwenlong_verl.hydra.sweep import METRICS_FILE, STATUS_FILE, read_status
from qwenlong_verl.hydra.sweep_causes import cause_line, slurm_end
from qwenlong_verl.reporting import MISSING, ReportFiles, fmt, markdown_table, read_metrics, write_report_files

logger = logging.getLogger(__name__)

REPORT_MD, REPORT_JSON, REWARD_PNG = "sweep_report.md", "sweep_report.json", "sweep_reward.png"
FILES = ReportFiles(md=REPORT_MD, json=REPORT_JSON, png=REWARD_PNG)
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
SIGNIFICANT = 4  # the table's numbers: rates, rewards and lengths side by side, four significant digits


# ---------------------------------------------------------------------------------------------------------------
# Reading the sweep
# ---------------------------------------------------------------------------------------------------------------
def find_jobs(sweep_dir: Path) -> list[Path]:
    """Job folders: those holding ``.hydra/overrides.yaml`` or a ``qwenlong_job.json`` (up to 3 levels deep, for a
    custom ``hydra.sweep.subdir``), in job order."""
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
    local = job / METRICS_FILE
    if local.is_file():
        return local
    recorded = (status or {}).get("metrics")
    return Path(recorded) if recorded else local


def _slurm_ended(job: Path, sweep_dir: Path) -> str | None:
    """Why SLURM ended this job (time limit, scancel, OOM), from submitit's logs of its array task
    (``<sweep>/.submitit/<array id>_<job number>/*_log.err``), or None."""
    if not job.name.isdigit():
        return None
    for log in sorted((sweep_dir / ".submitit").glob(f"*_{job.name}/*_log.*")):
        cause = slurm_end(log.read_text(errors="replace"))
        if cause:
            return cause
    return None


def summarize_job(job: Path, sweep_dir: Path) -> dict[str, Any]:
    """One job's row: its overrides, status (with the cause of a failure, SLURM's own when SLURM ended it), wall
    time, step count, final and best metrics (:data:`COLUMNS`) and its reward curve.

    Args:
        job: the job's folder.
        sweep_dir: the sweep's folder (the row names the job by its path below it).

    Returns:
        The row (the sweep's swept keys are added by :func:`build_report`).
    """
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
    """The report of every job of ``sweep_dir``: a row per job (:func:`summarize_job`), the swept keys (those whose
    value differs between jobs), and how many jobs ended in each status.

    Args:
        sweep_dir: the sweep's folder (``hydra.sweep.dir``).

    Returns:
        The JSON-like report (not yet redacted: :func:`write_report` masks credentials).
    """
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
def _num(v: Any) -> str:
    return fmt(v, SIGNIFICANT, significant=True)


def _error_line(error: str | None) -> str:
    """The table's error cell: the line naming the cause (a verl assertion, the guard's first finding), not the
    error's first or last line (a guard heading, a log path)."""
    text = cause_line(error) or ""
    return text if len(text) <= ERROR_CHARS_MD else text[:ERROR_CHARS_MD - 3] + "..."


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: a line of status counts and the table of jobs (swept keys, status, metrics, error)."""
    swept = report["swept_keys"]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report["counts"].items())) or "no jobs"
    lines = [f"# Sweep report: {report['sweep_dir']}", "", f"{len(report['jobs'])} jobs: {counts}.", ""]
    head = ["job", *swept, "status", "steps", "wall s", "reward (final)", "reward (best @step)", "acc (final)",
            "acc (best)", "response len", "judge call", "judge fail", "judge parse fail", "error"]
    rows = []
    for r in report["jobs"]:
        f, b = r["final"], r["best"]
        best_reward = f"{_num(b.get('reward'))} @{b.get('reward_step')}" if b.get("reward") is not None else MISSING
        rows.append([r["job"], *[_num(r["swept"].get(k)) for k in swept], r["status"], _num(r["steps"]),
                     _num(r["wall_s"]), _num(f.get("reward")), best_reward, _num(f.get("acc")), _num(b.get("acc")),
                     _num(f.get("response_length")), _num(f.get("judge_call_rate")),
                     _num(f.get("judge_failure_rate")), _num(f.get("judge_parse_failure_rate")),
                     _error_line(r.get("error"))])
    lines += markdown_table(head, rows)
    lines += ["", f"reward = verl's `{REWARD_KEY}` (trained batch); acc = `qwenlong/reward/acc_mean` (every scored "
              "rollout of the step); judge rates = `qwenlong/judge/*` of the last step; wall time from the job's "
              "start-up checks to its end. Full errors: sweep_report.json.", "",
              f"![reward per step per job]({REWARD_PNG})", ""]
    return "\n".join(lines)


def plot_rewards(report: Mapping[str, Any], path: Path) -> Path:
    """Reward per step, one line per job (a job without steps is a legend entry), as a PNG at ``path``."""
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
    """Build the report of ``sweep_dir`` and write ``sweep_report.{json,md}`` (and ``sweep_reward.png``) into
    ``out_dir``, each whole or not at all.

    Args:
        sweep_dir: the sweep's folder (``hydra.sweep.dir``).
        out_dir: where the files go (created when missing).
        plot: draw the PNG.

    Returns:
        (the report, credentials masked: what the files hold and what the command prints; ``{"md", "json"[, "png"]}``
        -> path).
    """
    from qwenlong_verl.redaction import redact_value

    # credentials masked once, here: the swept overrides (+trainer.wandb_api_key=..., a judge URL with a password)
    # reach the JSON, the markdown, the plot's legend and stdout from this one value
    report = redact_value(build_report(sweep_dir))
    paths = write_report_files(out_dir, report, render_markdown(report), FILES,
                               plot=(lambda path: plot_rewards(report, path)) if plot else None, json_indent=1)
    return report, {key: str(path) for key, path in paths.items()}
