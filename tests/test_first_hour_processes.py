"""Issue 24, nothing left running: SIGTERM to `prepare --workers 2` ends its worker pool, SIGTERM to `pipeline` ends
every process its stage started (its own group and any descendant that left it), and --stage-timeout stops an
in-process stage too. Every wait is a poll with a deadline, never a sleep standing in for an ordering."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_utils import PKG_ROOT

from qwenlong_verl.pipeline.pipeline_options import PipelineOptions
from qwenlong_verl.pipeline.stage_runner import PipelineStopped, Stage, StageContext, run_stages


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process from /proc, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    state = _stat(pid)
    return state is not None and state[0] not in ("Z", "X")  # a zombie runs nothing; a container's init may not reap


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            state = _stat(int(entry))
            if state is not None and state[1] == pid and state[0] not in ("Z", "X"):
                out.append(int(entry))
    return out


def _wait_until(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


# ---------------------------------------------------------------------------------------------------------------
# prepare --workers 2
# ---------------------------------------------------------------------------------------------------------------
# `qwenlong-verl prepare` as the console script runs it, with each chunk's tokenisation blocked until the process is
# stopped (the tiny test tokenizer would finish before the pool could be caught at work; forked workers inherit the
# patch): prepare cannot end on its own, only the SIGTERM under test ends it
PREPARE = r"""
import sys, time
import qwenlong_verl.data.prepare as prepare
real = prepare.prompt_lengths
def slow(*args, **kwargs):
    time.sleep(600)
    return real(*args, **kwargs)
prepare.prompt_lengths = slow
from qwenlong_verl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_to_prepare_ends_its_worker_pool(tmp_path, tiny_model_dir):
    row = {"data_source": "hotpotqa", "prompt": [{"role": "user", "content": "Doc. Question?"}],
           "reward_model": {"style": "rule", "ground_truth": "Paris"}}
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({**row, "extra_info": {"index": i}}) + "\n" for i in range(64 * 60)))
    out = tmp_path / "out.parquet"
    proc = subprocess.Popen([sys.executable, "-c", PREPARE, "prepare", str(src), "--out", str(out), "--tokenizer",
                             str(tiny_model_dir), "--workers", "2"], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        workers = _wait_until("two tokenizer workers", lambda: len(_children(proc.pid)) >= 2 and
                              _children(proc.pid), timeout=120)
        assert proc.poll() is None, "prepare ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    lines = [x for x in err.strip().splitlines() if x.strip() and "prompt lengths" not in x]  # tqdm's bar
    assert lines[-1].startswith("terminated (SIGTERM):") and "rerun" in lines[-1], err[-2000:]
    assert "Traceback" not in err
    assert not out.exists()
    _wait_until("every worker to be gone", lambda: not any(_alive(p) for p in workers), timeout=30)


# ---------------------------------------------------------------------------------------------------------------
# pipeline
# ---------------------------------------------------------------------------------------------------------------
# the stage's command: a child that starts a grandchild in its group and a great-grandchild in a session of its own
# (as Ray's processes may), writes the three pids, then sleeps
SLEEPER = r"""
import subprocess, sys, time, json
sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
same_group = subprocess.Popen(sleep)
own_session = subprocess.Popen(sleep, start_new_session=True)
with open(sys.argv[1] + ".tmp", "w") as fh:
    json.dump([__import__("os").getpid(), same_group.pid, own_session.pid], fh)
__import__("os").replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""

# `qwenlong-verl pipeline` whose stage list is one cheap phase1 stage running SLEEPER
PIPELINE = r"""
import sys
from qwenlong_verl.pipeline import run_all
from qwenlong_verl.pipeline.stage_runner import Stage
sleeper, pids, workdir = sys.argv[1:4]
def phase1(ctx):
    ctx.run_command([sys.executable, "-c", sleeper, pids])
    return {}
run_all.build_stages = lambda: [Stage("phase1", phase1)]
from qwenlong_verl.cli import main
sys.exit(main(["pipeline", "--workdir", workdir, "--no-judge", *sys.argv[4:]]))
"""


def _start_pipeline(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    pids = tmp_path / "pids.json"
    proc = subprocess.Popen([sys.executable, "-c", PIPELINE, SLEEPER, str(pids), str(tmp_path / "run"), *extra],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, pids


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_pipeline_leaves_no_process_of_its_stage(tmp_path, sig):
    proc, pids_file = _start_pipeline(tmp_path)
    try:
        _wait_until("the stage's processes", pids_file.exists, timeout=120)
        pids = json.loads(pids_file.read_text())
        assert all(_alive(p) for p in pids)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in json.loads(pids_file.read_text()) if pids_file.exists() else []:
            try:  # never leave a sleeper behind, whatever the outcome
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    assert proc.returncode == 128 + sig, err[-2000:]
    assert f"stage phase1 stopped by {sig.name}" in err and "rerun the same command" in err, err[-2000:]
    assert "Traceback" not in err
    _wait_until("every process of the stage to be gone", lambda: not any(_alive(p) for p in pids), timeout=60)


def test_stage_timeout_stops_a_subprocess_stage_and_its_tree(tmp_path):
    proc, pids_file = _start_pipeline(tmp_path, "--stage-timeout", "5")
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-2000:]
    assert "stage phase1 timed out (--stage-timeout 5 s)" in err, err[-2000:]
    assert "--stage-timeout: each stage, in-process or not, is stopped after 5 s" in err  # said at the start
    pids = json.loads(pids_file.read_text())
    _wait_until("every process of the stage to be gone", lambda: not any(_alive(p) for p in pids), timeout=60)


def test_stage_timeout_stops_an_in_process_stage(tmp_path):
    """The data and report stages run in the pipeline's own process; --stage-timeout bounded only subprocesses."""
    calls = []

    def forever(ctx: StageContext):
        calls.append("started")
        deadline = time.monotonic() + 60  # pure Python work, "forever" (bounded: without the timer the test fails)
        while time.monotonic() < deadline:
            sum(range(1000))
        calls.append("ran to its end")  # only reached if the timer never stopped the stage
        return {}

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM)
    ctx = StageContext(options=PipelineOptions(workdir=tmp_path / "w", stage_timeout_s=1.0))
    with pytest.raises(PipelineStopped, match=r"stage data timed out \(--stage-timeout 1 s\)") as exc:
        run_stages([Stage("data", forever)], ctx)
    assert calls == ["started"]  # stopped mid-work by the timer, not by the loop's own bound
    assert exc.value.exit_code == 1 and ctx.records["data"].status == "failed"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM)) == before  # handlers restored
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
