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
* Stopping: SIGTERM or Ctrl-C while a stage runs ends every process the stage started (each command runs in a
  session of its own: torchrun and its ranks, ``main_ppo`` and the Ray processes it starts, and any descendant
  that moved to a group of its own), then the run exits non-zero naming the stage. ``--stage-timeout`` bounds every
  stage the same way, in-process ones (data, report) included: an interval timer raises in the main thread.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.pipeline.pipeline_options import PipelineError, PipelineOptions

logger = logging.getLogger(__name__)

DONE = "DONE"
KILL_GRACE_S = 30.0  # SIGTERM, then this long for verl/Ray to shut down, then SIGKILL


class StageInterrupted(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT or the stage's timer while a stage runs. A BaseException, so no
    ``except Exception`` inside a stage swallows it on its way to :func:`run_stages`."""

    def __init__(self, why: str, exit_code: int) -> None:
        super().__init__(why)
        self.why = why
        self.exit_code = exit_code


class PipelineStopped(PipelineError):
    """The run was stopped while a stage ran (signal or --stage-timeout); the message names the stage."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
                _kill_tree(proc)
                raise PipelineError(f"stage {self.current}: timed out after {timeout:.0f} s\n{_tail(log_path)}"
                                    f"\nfull log: {log_path}") from None
            except BaseException:
                _kill_tree(proc)
                raise
        if rc != 0:
            raise PipelineError(f"stage {self.current}: `{cmd[0]} ...` exited with status {rc}\n{_tail(log_path)}\n"
                                f"full log: {log_path}")


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc; [] where there is none). Ray's workers and a torchrun rank may
    sit in process groups of their own, which a signal to the stage's group alone would miss."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _signal_tree(root: int, pids: list[int], sig: int) -> None:
    """``sig`` to the stage's process group, the groups of its descendants (not ours) and each descendant."""
    own = os.getpgrp()
    groups = {root}
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except OSError:
            pass
    for group in groups - {own}:
        try:
            os.killpg(group, sig)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _kill_tree(proc: subprocess.Popen, grace_s: float = KILL_GRACE_S) -> None:
    """End a stage's command and everything it started: SIGTERM to all of it, ``grace_s`` to exit, then SIGKILL to
    what is left. The descendants are listed before the first signal: once a parent dies its children are
    re-parented and could no longer be found."""
    tree = _descendants(proc.pid)
    _signal_tree(proc.pid, tree, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    while time.monotonic() < deadline and any(_alive(pid) for pid in tree):
        time.sleep(0.05)
    survivors = [pid for pid in tree if _alive(pid)]
    if proc.poll() is None or survivors:
        _signal_tree(proc.pid, survivors, signal.SIGKILL)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("process %d did not exit after SIGKILL", proc.pid)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X")


def _interrupts(timeout_s: float | None):
    """While a stage runs: SIGTERM, SIGINT and the stage timer raise :class:`StageInterrupted` (main thread only:
    elsewhere Python cannot set signal handlers, and the stage keeps the caller's handling)."""
    import contextlib

    @contextlib.contextmanager
    def installed():
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, frame: object) -> None:
            raise StageInterrupted(f"stopped by {signal.Signals(signum).name}", 128 + signum)

        def on_timer(signum: int, frame: object) -> None:
            raise StageInterrupted(f"timed out (--stage-timeout {timeout_s:g} s)", 1)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous_timer = signal.signal(signal.SIGALRM, on_timer) if timeout_s else None
        if timeout_s:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            yield
        finally:
            if timeout_s:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous_timer)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    return installed()


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
            with _interrupts(ctx.options.stage_timeout_s):
                outputs = _jsonable(stage.run(ctx))
        except StageInterrupted as exc:
            ctx.records[stage.name] = StageRecord(stage.name, "failed", wall_s=time.monotonic() - t0)
            raise PipelineStopped(
                f"stage {stage.name} {exc.why} {time.monotonic() - t0:.0f} s in; every process it started was "
                f"ended. Its folder {stage_dir} is kept: rerun the same command to resume (finished stages are "
                "kept)", exc.exit_code) from None
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
