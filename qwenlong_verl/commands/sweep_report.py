"""``qwenlong-verl sweep-report <multirun folder>``: one row per job of a Hydra sweep of ``main_ppo``.

The command line only: arguments, the checks of the two folders, printing. The report itself (reading the job
folders, the table, the plot, the files) is :mod:`qwenlong_verl.hydra.sweep_report`.

No verl, Ray or torch import: the report reads files only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


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


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.commands._args import CommandError
    from qwenlong_verl.hydra.sweep_report import REPORT_JSON, find_jobs, render_markdown, write_report
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
