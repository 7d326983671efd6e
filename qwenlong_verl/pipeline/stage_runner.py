"""A small resumable stage runner: each stage runs once, writes ``<workdir>/<stage>/DONE`` with its outputs, and a
rerun reuses the outputs of finished stages.

* A finished stage (``DONE`` present) is skipped, unless ``--force`` or ``--from`` an earlier or equal stage. Its
  ``DONE`` records the settings it ran with (its *signature*); when they differ from this run's the runner stops and
  says so instead of silently mixing results of different settings.
* An unfinished stage (folder without ``DONE``: it failed or was interrupted) runs again in the same folder, so
  verl's ``trainer.resume_mode=auto`` continues from the stage's latest checkpoint.
* ``--skip STAGE`` leaves a stage out; the next stages fall back to what is there (e.g. RL from the base model
  without SFT), see :mod:`qwenlong_verl.pipeline.stages`.
* Stages marked ``always`` (the report) are rebuilt on every run: they only read the others' outputs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.pipeline.pipeline_options import PipelineError, PipelineOptions

logger = logging.getLogger(__name__)

DONE = "DONE"


@dataclass
class Stage:
    name: str
    run: Callable[[StageContext], dict[str, Any]]  # returns the stage's outputs (JSON-able)
    signature: Callable[[StageContext], dict[str, Any]] = lambda ctx: {}
    always: bool = False  # rebuilt on every run (cheap, derived from the other stages)


@dataclass
class StageRecord:
    name: str
    status: str  # ran | skipped-done | skipped | failed
    outputs: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0


@dataclass
class StageContext:
    options: PipelineOptions
    judge_url: str | None = None
    records: dict[str, StageRecord] = field(default_factory=dict)
    current: str = ""

    @property
    def workdir(self) -> Path:
        return self.options.workdir

    def stage_dir(self, name: str | None = None) -> Path:
        return self.workdir / (name or self.current)

    def outputs(self, name: str) -> dict[str, Any] | None:
        """Outputs of stage ``name`` in this run (ran or finished before), None when it was skipped or failed."""
        rec = self.records.get(name)
        if rec is None or rec.status not in ("ran", "skipped-done"):
            return None
        return rec.outputs

    def run_command(self, cmd: Sequence[str], *, env: dict[str, str] | None = None, log_name: str = "stage.log",
                    cwd: Path | None = None) -> None:
        """Run ``cmd`` with its output appended to ``<stage>/<log_name>``; raise :class:`PipelineError` with the
        log's tail when it fails or passes ``options.stage_timeout_s``."""
        stage_dir = self.stage_dir()
        log_path = stage_dir / log_name
        full_env = {**os.environ, **(env or {})}
        timeout = self.options.stage_timeout_s
        logger.info("[%s] %s", self.current, " ".join(cmd))
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n$ {' '.join(cmd)}\n")
            log.flush()
            # a session of its own: a timeout or Ctrl-C ends the whole process tree it started (torchrun, Ray)
            proc = subprocess.Popen(list(cmd), cwd=str(cwd or stage_dir), env=full_env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise PipelineError(f"stage {self.current}: timed out after {timeout:.0f} s\n{_tail(log_path)}"
                                    f"\nfull log: {log_path}") from None
            except BaseException:
                _kill_group(proc)
                raise
        if rc != 0:
            raise PipelineError(f"stage {self.current}: `{cmd[0]} ...` exited with status {rc}\n{_tail(log_path)}\n"
                                f"full log: {log_path}")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def read_done(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / DONE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path} is not valid JSON ({exc}); delete it to rerun the stage") from exc


def _diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_stages(stages: Sequence[Stage], ctx: StageContext, *, skip: Iterable[str] = (), from_stage: str | None = None,
               force: bool = False) -> dict[str, StageRecord]:
    names = [s.name for s in stages]
    skip = set(skip)
    for name in [*skip, *([from_stage] if from_stage else [])]:
        if name not in names:
            raise PipelineError(f"unknown stage {name!r}; stages: {', '.join(names)}")
    start = names.index(from_stage) if from_stage else len(names)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    for i, stage in enumerate(stages):
        ctx.current = stage.name
        stage_dir = ctx.stage_dir(stage.name)
        if stage.name in skip:
            logger.info("[%s] skipped (--skip)", stage.name)
            ctx.records[stage.name] = StageRecord(stage.name, "skipped")
            continue
        signature = _jsonable(stage.signature(ctx))
        done = read_done(stage_dir)
        rerun = force or i >= start
        if done is not None and not rerun and not stage.always:
            changed = _diff(done.get("signature", {}), signature)
            if changed:
                raise PipelineError(
                    f"stage {stage.name} finished earlier with other settings ({'; '.join(changed)}); rerun it and "
                    f"the stages after it with --from {stage.name}, or everything with --force")
            logger.info("[%s] done earlier (%s), skipped", stage.name, stage_dir / DONE)
            ctx.records[stage.name] = StageRecord(stage.name, "skipped-done", done.get("outputs", {}),
                                                  float(done.get("wall_s", 0.0)))
            continue
        if stage_dir.exists() and (rerun or done is not None):
            shutil.rmtree(stage_dir)  # a forced rerun starts from nothing (no verl auto-resume of old checkpoints)
        elif stage_dir.exists():
            logger.info("[%s] unfinished run in %s: running again there (verl resumes from its last checkpoint)",
                        stage.name, stage_dir)
        stage_dir.mkdir(parents=True, exist_ok=True)
        logger.info("[%s] running (log: %s)", stage.name, stage_dir / "stage.log")
        t0 = time.monotonic()
        try:
            outputs = _jsonable(stage.run(ctx))
        except BaseException:
            ctx.records[stage.name] = StageRecord(stage.name, "failed", wall_s=time.monotonic() - t0)
            raise
        wall = time.monotonic() - t0
        ctx.records[stage.name] = StageRecord(stage.name, "ran", outputs, wall)
        (stage_dir / DONE).write_text(json.dumps({
            "stage": stage.name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": wall,
            "signature": signature, "outputs": outputs}, indent=1), encoding="utf-8")
        logger.info("[%s] finished in %.1f s", stage.name, wall)
    return ctx.records
