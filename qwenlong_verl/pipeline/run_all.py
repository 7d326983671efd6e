"""Run the whole pipeline: stages from :mod:`qwenlong_verl.pipeline.stages` through the resumable runner, with the
CPU demo's stand-in judge served for the duration of the run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from qwenlong_verl.pipeline.pipeline_options import PipelineOptions
from qwenlong_verl.pipeline.stage_runner import StageContext, run_stages
from qwenlong_verl.pipeline.stages import build_stages

logger = logging.getLogger(__name__)


def run_pipeline(options: PipelineOptions, *, skip: Iterable[str] = (), from_stage: str | None = None,
                 force: bool = False) -> dict[str, Any]:
    """Run (or resume) every stage; returns ``{"records": {stage: StageRecord}, "report": {md, json, png}}``."""
    with contextlib.ExitStack() as stack:
        judge_url = options.judge_url
        if options.standin_judge and not judge_url:
            from qwenlong_verl.pipeline.standin_judge import StandinJudge

            judge_url = stack.enter_context(StandinJudge()).base_url
        ctx = StageContext(options=options, judge_url=judge_url)
        records = run_stages(build_stages(), ctx, skip=skip, from_stage=from_stage, force=force)
    report = ctx.outputs("report")
    return {"records": records, "report": report}
