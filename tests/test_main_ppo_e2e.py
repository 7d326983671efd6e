"""One real CPU ``main_ppo`` sweep, shared by every check that needs verl's trainer end to end but no particular run
shape of its own (a verl run costs a minute or more on 2 cores; six separate runs used to cost six times that).

The sweep: ``+qwenlong_sweep=local`` over ``qwenlong.curriculum.phase=2,3``. Point 2 is the run: ``+recipe=
qwenlong_phase2`` on the CPU backend at world size 2 (two actor ranks, two HF rollout replicas), 2 steps, the judge
up (a local stand-in that fails a fifth of its requests, not retried), two data sources, and every extra of our loss
and estimator on. Point 3 is not a phase of the two lengths: the guard refuses it in its own job. Each test reads one
aspect:

* the foundation: the phase-II recipe trains, its values reach the workers, our trainer mode logs its metrics;
* the algorithm plugins: ``qwenlong_grpo`` and ``qwenlong_dapo`` ran in the trainer and actor worker with their
  options (per-task advantage std, overlong filter, AEPO);
* the hybrid reward: judge health reaches the step metrics, and judge failures are counted, never fatal;
* the CPU backend at world size 2: both replicas got their weights and global step from their own leader (the old
  replica arithmetic crashed verl on ``min_global_steps=None``), every scored sample reached the one difficulty
  table, and the checkpoint is sharded over the two ranks;
* local sweeps: each point runs in its own process, folder and Ray; the refused point is a failed row whose cause
  (the guard's finding, the run's secret masked) the launcher's per-job line and ``sweep-report`` name.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from e2e_utils import CPU_ENV, RunResult, demo_overrides
from fake_openai_server import FakeOpenAIServer
from reliability_utils import run_cli_process

from qwenlong_verl.hydra.sweep import JOB_DIR_ENV, STATUS_FILE
from qwenlong_verl.hydra.sweep_report import REPORT_JSON, REPORT_MD, REWARD_PNG, build_report

# the shared sweep takes 100-300 s on 2 cores (its own limit 900 s); waiting for the e2e lock does not count (conftest)
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

STEPS = 2
BATCH, N = 4, 4  # the CPU overlay's data.train_batch_size and rollout.n
TASKS = ("musique", "hotpotqa")
_CANDIDATE = re.compile(r"Candidate answer: (.*)", re.DOTALL)
SECRET = "wk-s3cret-778899"
PHASE3_CAUSE = "qwenlong.curriculum.phase=3 is not a phase of qwenlong.curriculum.lengths=[384, 1024] (phases 1..2)"


def _responder(messages):
    """A deterministic stand-in judge: YES for candidate answers of even length, NO otherwise."""
    m = _CANDIDATE.search(messages[-1]["content"])
    answer = m.group(1) if m else ""
    return f"Compared.\nVERDICT: {'YES' if len(answer) % 2 == 0 else 'NO'}"


class SharedRun:
    """The sweep: its folder and driver output, the judge's counts, and point 2's run (``result``: its status, the
    job's log as output, its metrics) with its job folder (``workdir``) and verl's folder in it (``ckpt``)."""

    def __init__(self, sweep: Path, driver: subprocess.CompletedProcess, judge_requests: int,
                 judge_outcomes: dict[str, int]):
        self.sweep, self.driver = sweep, driver
        self.judge_requests, self.judge_outcomes = judge_requests, judge_outcomes
        self.jobs = {v: sweep / str(i) for i, v in enumerate(("2", "3"))}
        self.status = {v: json.loads((d / STATUS_FILE).read_text()) for v, d in self.jobs.items()}
        self.workdir = self.jobs["2"]
        self.ckpt = self.workdir / "checkpoints" / "qwenlong_verl" / "e2e"
        logs = [p.read_text(errors="replace") for p in sweep.glob(".submitit/*/*_log.out")]
        self.job_log = next((t for t in logs if f"'default_local_dir': '{self.workdir}/checkpoints" in t), "")
        metrics_file = self.workdir / "metrics.jsonl"
        lines = metrics_file.read_text().splitlines() if metrics_file.exists() else []
        metrics = [json.loads(x) for x in lines if x.strip()]
        ok = self.status["2"]["status"] == "completed"
        self.result = RunResult(0 if ok else 1, self.job_log, metrics, float(self.status["2"].get("wall_s") or 0.0))


@pytest.fixture(scope="module")
def shared_run(demo_data, tmp_path_factory) -> SharedRun:
    from conftest import hold_e2e_lock

    work = tmp_path_factory.mktemp("main_ppo_e2e")
    rows = pd.read_parquet(demo_data.train)
    rows["data_source"] = [TASKS[i % 2] for i in range(len(rows))]  # two tasks for the per-task std
    rows.to_parquet(work / "train.parquet")
    loss = "actor_rollout_ref.actor.policy_loss"
    sweep = work / "sweep"
    overrides = [
        *demo_overrides(demo_data, steps=STEPS),
        f"data.train_files={work / 'train.parquet'}", "trainer.experiment_name=e2e",
        # world size 2 on one node: data parallel 2, one HF rollout replica per rank
        "trainer.n_gpus_per_node=2", "actor_rollout_ref.rollout.agent.num_workers=1", "reward.num_workers=1",
        # the untrained tiny model answers nothing right: DAPO's group filter would regenerate without bound
        "algorithm.filter_groups.enable=false",
        # phase II alone: no phase-I difficulty file to carry hard examples from
        "qwenlong.retrospective.enable=false", "trainer.save_freq=1",
        # every extra of the loss and the estimator on (the recipe carries these keys, off: override, never append)
        f"{loss}.overlong_filter=true", f"{loss}.aepo=true",
        f"{loss}.aepo_entropy_high=0.0", f"{loss}.aepo_entropy_low=0.0",  # any positive entropy opens the gate
        "++qwenlong.advantage.std_scope=task",
        # the judge: no retries, so its failures show; the whole response scored so the judge is asked
        "++qwenlong.judge.max_retries=0", "++qwenlong.judge.timeout_s=10",
        "++qwenlong.reward.answer_after_think=off",
        # the sweep: the run, and a point the guard refuses (3 is not a phase of the two lengths); a secret to mask
        f"hydra.sweep.dir={sweep}", f"+trainer.wandb_api_key={SECRET}", "qwenlong.curriculum.phase=2,3",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_FILE_LOGGER_PATH", "VERL_FILE_LOGGER_ROOT",
                                                            JOB_DIR_ENV)}
    args = [sys.executable, "-m", "verl.trainer.main_ppo", "-m", "+recipe=qwenlong_phase2", "+qwenlong_env=cpu",
            "+qwenlong_sweep=local"]
    with hold_e2e_lock():  # re-entrant: the per-test hook may hold it already
        with FakeOpenAIServer(responder=_responder, latency_s=0.01, fail_rate=0.2, seed=3) as judge:
            proc = subprocess.run([*args, *overrides, f"++qwenlong.judge.base_url={judge.base_url}"], cwd=work,
                                  env={**env, **CPU_ENV, "HYDRA_FULL_ERROR": "0"}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=900)
            requests, outcomes = judge.count, dict(judge.outcomes)
    (work / "sweep.log").write_text(proc.stdout)
    run = SharedRun(sweep, proc, requests, outcomes)
    assert run.result.returncode == 0, (run.status, proc.stdout[-4000:], run.result.tail())
    assert run.result.steps() == list(range(1, STEPS + 1)), run.result.tail()
    return run


def test_phase2_recipe_trains_on_cpu_and_its_values_reach_the_workers(shared_run):
    result = shared_run.result
    for step in range(1, STEPS + 1):
        m = result.step_metrics(step)
        assert m["training/global_step"] == step
        # the actor update ran and the rollout came from our HF replicas with log-probs matching the actor's
        assert m["actor/grad_norm"] >= 0 and "actor/pg_loss" in m
        assert m["training/rollout_actor_probs_pearson_corr"] > 0.99
        assert m["response_length/mean"] > 0
        # our trainer mode ran: it adds the qwenlong/* metrics every step
        assert "qwenlong/scored_samples" in m and m["qwenlong/phase"] == 2
    # recipe values reached the workers: the paper's clip-higher, our loss and estimator by name
    assert "'clip_ratio_high': 0.28" in result.output
    assert "'loss_mode': 'qwenlong_dapo'" in result.output
    assert "'adv_estimator': 'qwenlong_grpo'" in result.output


def test_both_algorithm_plugins_ran_every_step_with_their_options(shared_run):
    for step in range(1, STEPS + 1):
        m = shared_run.result.step_metrics(step)
        # the loss ran in the actor workers with its options
        for key in ("actor/pg_clipfrac_low", "actor/pg_clipfrac_high", "actor/qwenlong_truncated_frac",
                    "actor/qwenlong_aepo_masked_frac", "actor/qwenlong_aepo_active", "actor/qwenlong_entropy_estimate"):
            assert key in m, f"step {step}: {key} missing; logged: {sorted(m)}"
        # truncation seen by the loss (mask reaches max_response_length) is verl's own clip ratio of the batch
        assert m["actor/qwenlong_truncated_frac"] == pytest.approx(m["response_length/clip_ratio"], abs=0.07)
        # the -old_log_prob estimate tracks verl's exact entropy of the same batch
        assert m["actor/qwenlong_entropy_estimate"] == pytest.approx(m["actor/entropy"], rel=0.15)
        assert m["actor/qwenlong_aepo_active"] == 1.0
        # the estimator ran in the trainer with the task labels the trainer supplied
        counts = {t: m.get(f"qwenlong/adv_task_count/{t}", 0) for t in TASKS}
        assert sum(counts.values()) > 0, f"step {step}: no per-task advantage metrics; logged: {sorted(m)}"
        assert m["actor/pg_loss"] == m["actor/pg_loss"]  # finite


def test_judge_health_reaches_the_step_metrics_and_failures_are_not_fatal(shared_run):
    result = shared_run.result
    assert shared_run.judge_requests > 0
    assert shared_run.judge_outcomes["ok"] > 0 and shared_run.judge_outcomes["fail"] > 0
    for step in range(1, STEPS + 1):
        m = result.step_metrics(step)
        assert m["qwenlong/reward/samples"] > 0
        for key in ("qwenlong/judge/call_rate", "qwenlong/judge/failure_rate", "qwenlong/judge/agreement",
                    "qwenlong/judge/latency_mean_s", "qwenlong/judge/latency_p95_s", "qwenlong/reward/acc_mean"):
            assert key in m, (key, sorted(k for k in m if k.startswith("qwenlong/")))
        assert 0 < m["qwenlong/judge/call_rate"] <= 1
        assert m["qwenlong/judge/latency_mean_s"] > 0
    total_calls = sum(result.step_metrics(s)["qwenlong/judge/calls"] for s in range(1, STEPS + 1))
    total_failures = sum(result.step_metrics(s)["qwenlong/judge/failures"] for s in range(1, STEPS + 1))
    assert total_calls > 0 and total_failures > 0  # failures are counted, not fatal


def test_cpu_backend_at_world_size_two_feeds_both_replicas_and_one_difficulty_table(shared_run):
    for step in range(1, STEPS + 1):
        m = shared_run.result.step_metrics(step)
        # both replicas got their weights and global step from their own leader: verl tags every trajectory with the
        # step of the weights that generated it (the old arithmetic left replica 1 without one: verl crashed on None)
        assert m["training/off_policy/trajectory_staleness_worst/max"] == 0
        # the reward workers' telemetry of every scored sample reached the trainer's one difficulty table
        assert m["qwenlong/difficulty_records"] == BATCH * N
    table = json.loads((shared_run.ckpt / "qwenlong_difficulty.json").read_text())
    assert len(table["examples"]) == STEPS * BATCH, len(table["examples"])  # distinct prompts of the two steps
    # a checkpoint sharded over the two ranks
    actor = shared_run.ckpt / f"global_step_{STEPS}" / "actor"
    assert sorted(p.name for p in actor.glob("model_world_size_*")) == [
        "model_world_size_2_rank_0.pt", "model_world_size_2_rank_1.pt"]


def test_a_local_sweep_runs_each_point_in_its_own_process_and_folder(shared_run):
    """Point 2 trained in its own process, folder and Ray; point 3 was refused by the guard in its own job, before
    Ray started, and the launcher's per-job line and sweep-report name the guard's finding with the secret masked
    (a failed point's cause, not submitit's log path)."""
    run, out = shared_run, shared_run.driver.stdout
    tail = out[-4000:]
    assert run.driver.returncode != 0, tail  # Hydra reports the failed point at the end of the sweep
    assert not (run.sweep.parent / "checkpoints").exists() and not (run.sweep.parent / "qwenlong_verl").exists()
    assert [run.status[v]["status"] for v in run.jobs] == ["completed", "failed"], (run.status, tail)
    assert len({run.status[v]["pid"] for v in run.jobs} | {os.getpid()}) == 3  # every job its own process
    # the per-job line names the cause, masked, instead of ending with submitit's log path
    line = next((x for x in out.splitlines() if "sweep job #1" in x), None)
    assert line is not None and f"failed: {PHASE3_CAUSE}" in line, tail
    assert SECRET not in line and "_log.out" not in line

    job = run.workdir
    # the logged config holds this job's value, in Hydra's record and on verl's worker (the sampler's phase)
    cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
    assert cfg["qwenlong"]["curriculum"]["phase"] == 2
    assert "qwenlong curriculum: phase 2 (" in run.job_log
    assert f"Creating file logger at {job}/metrics.jsonl" in run.job_log
    assert "Started a local Ray instance" in run.job_log  # its own Ray
    # its own outputs: metrics, difficulty file (next to its checkpoints); nothing of the refused job
    assert (run.ckpt / "qwenlong_difficulty.json").is_file()
    assert run.status["2"]["wall_s"] > 0
    assert not (run.jobs["3"] / "metrics.jsonl").exists()  # refused before Ray: nothing trained

    proc = run_cli_process(["sweep-report", run.sweep], run.sweep.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"did not complete: 1 ({PHASE3_CAUSE[:40]}" in proc.stderr, proc.stderr[-2000:]
    report = json.loads((run.sweep / REPORT_JSON).read_text())
    assert report["swept_keys"] == ["qwenlong.curriculum.phase"]
    rows = {str(r["swept"]["qwenlong.curriculum.phase"]): r for r in report["jobs"]}
    assert set(rows) == {"2", "3"}
    assert rows["2"]["status"] == "completed" and rows["2"]["steps"] == STEPS
    assert rows["2"]["final"]["reward"] is not None and rows["2"]["final"]["response_length"] > 0
    assert rows["2"]["final"]["acc"] is not None
    assert rows["3"]["status"] == "failed" and rows["3"]["cause"].startswith(PHASE3_CAUSE[:40])
    md = (run.sweep / REPORT_MD).read_text()
    assert "| 3 | failed |" in md and PHASE3_CAUSE[:40] in md and "this run would fail" not in md
    assert SECRET not in md and SECRET not in (run.sweep / REPORT_JSON).read_text()
    assert (run.sweep / REWARD_PNG).stat().st_size > 0
    assert build_report(run.sweep)["counts"] == {"completed": 1, "failed": 1}
