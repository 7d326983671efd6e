"""The whole CPU demo through ``qwenlong-verl pipeline``: synthetic data -> verl SFT -> RL phase I -> RL phase II ->
held-out eval -> report, at tiny sizes. The first attempt is stopped (SIGTERM, a preemption) in phase II after its
step-3 checkpoint; the re-run reuses the finished stages and phase II goes on from its own checkpoint without
repeating or losing examples. Then a rerun that skips every finished stage.

One module-scoped run (several verl jobs, ~4 minutes on 2 cores) under the e2e lock. DAPO dynamic sampling is off
here: a 16-step SFT leaves the tiny model nearly always wrong, and refilling all-zero groups would only cost time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# whichever test runs first runs the whole pipeline (its limit: 900 s); the rerun test adds two runs of up to 300 s
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

ARGS = ["--demo-train-rows", "32", "--demo-sft-rows", "64", "--demo-eval-rows", "8", "--demo-pretrain-steps", "0",
        "--sft-epochs", "2", "--phase1-steps", "2", "--phase2-steps", "2", "--eval-models", "sft,final",
        "--eval-samples", "1", "--max-response-length", "64", "--eval-max-new-tokens", "64",
        "--rl-override", "algorithm.filter_groups.enable=false", "--rl-override", "data.train_batch_size=4",
        "--rl-override", "actor_rollout_ref.rollout.n=4", "--rl-override", "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        # a checkpoint after every phase II step: the first attempt is stopped after step 3, the re-run finishes
        "--phase2-override", "trainer.save_freq=1"]
BATCH, N_ROLLOUTS = 4, 4
METRICS = "metrics.jsonl"
ENV = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


# phase I is scored by verl's own dapo reward manager (a reward by index parity), which sends no telemetry: the
# trainer warns and its difficulty table falls back to the trained batch's rewards (DAPO's filter is off: every
# rollout); phase II keeps the package's hybrid manager and the stand-in judge
REWARD_FN = """
def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return 1.0 if int(extra_info["index"]) % 2 == 0 else 0.0
"""


def _args(workdir: Path) -> list[str]:
    fn = workdir.parent / "parity_reward.py"
    if not fn.exists():
        fn.write_text(REWARD_FN)
    return ["pipeline", "--workdir", str(workdir), *ARGS, "--phase1-override", "reward.reward_manager.name=dapo",
            "--phase1-override", f"reward.custom_reward_function.path={fn}",
            "--phase1-override", "reward.custom_reward_function.name=compute_score"]


def _cli(workdir: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qwenlong_verl.cli", *_args(workdir), *extra], env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


def _stop_at_phase2_checkpoint(workdir: Path, step: int, timeout_s: float = 900) -> str:
    """Run the pipeline and SIGTERM it (a preemption; it ends every process of the running stage) once phase II's
    checkpoint ``step`` is complete and its metrics are logged (verl logs a step after saving its checkpoint)."""
    workdir.mkdir(parents=True)
    with open(workdir.parent / "first_attempt.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "qwenlong_verl.cli", *_args(workdir)], env=ENV, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        tracker = workdir / "phase2" / "ckpt" / "latest_checkpointed_iteration.txt"
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return f"exited early with {proc.returncode}; see {workdir.parent / 'first_attempt.log'}"
                seen = tracker.read_text().strip() if tracker.exists() else ""
                metrics = workdir / "phase2" / METRICS
                logged = metrics.exists() and f'"step":{step},' in metrics.read_text().replace(" ", "")
                if seen == str(step) and logged:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=120)
                    return "stopped"
                if seen and int(seen) > step:
                    return f"phase II passed step {step} before the stop (at {seen})"
                time.sleep(0.2)
            return "timeout"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo pipeline, stopped in phase II after its first step (step 3), then run again: data, SFT and phase I
    are done, phase II goes on from its own checkpoint, then eval and the report."""
    from conftest import hold_e2e_lock

    workdir = tmp_path_factory.mktemp("pipeline") / "demo"
    with hold_e2e_lock():  # held for the whole pipeline: it starts several verl jobs
        first = _stop_at_phase2_checkpoint(workdir, step=3)
        proc = _cli(workdir)
    assert first == "stopped", first
    assert proc.returncode == 0, proc.stdout[-6000:]
    report = json.loads((workdir / "report" / "report.json").read_text())
    return workdir, proc, report


def _done(workdir: Path, stage: str) -> dict:
    return json.loads((workdir / stage / "DONE").read_text())


def test_every_stage_ran_and_the_report_says_what_happened(demo):
    workdir, proc, report = demo
    st = report["stages"]
    # the re-run: what finished before the stop is reused, phase II and eval ran
    assert {k: v["status"] for k, v in st.items()} == {"data": "skipped-done", "sft": "skipped-done",
                                                       "phase1": "skipped-done", "phase2": "ran", "eval": "ran"}
    sft_rows = st["data"]["sft_conversion"]["rows_out"]  # rows over phase I's bound were left out, and counted
    assert sft_rows + st["data"]["sft_conversion"]["too_long"] == 64
    assert st["sft"]["steps"] == 2 * (sft_rows // 8)  # 2 epochs at batch 8, verl drops the last partial batch
    assert st["sft"]["loss_last"] < st["sft"]["loss_first"]
    for name, phase in (("phase1", 1), ("phase2", 2)):
        e = st[name]
        assert e["steps"] == 2 and e["phase"] == phase
        assert -1.0 <= e["reward_mean"] <= 1.0  # acc in {0, 1} plus DAPO's overlong penalty in [-1, 0]
        assert e["phase_band_size"] > 0
    # phase II: the CPU overlay reads answers without </think>, every wrong answer goes to the (stand-in) judge, and
    # the reward manager reports every rollout it scored (phase I's dapo manager reports none: the fallback)
    assert st["phase2"]["judge_calls"] > 0 and st["phase2"]["judge_failures"] == 0
    assert st["phase2"]["scored_rollouts"] == 2 * 4 * 4  # 2 steps x 4 prompts x G=4, no DAPO refills
    assert st["phase1"]["scored_rollouts"] == 0
    sizes = st["data"]["phase_sizes"]
    assert sizes["phase1"]["band_size"] + sizes["phase2"]["band_size"] + sizes["outside_all_phases"] == 32
    md = (workdir / "report" / "report.md").read_text()
    assert "| phase2 | ran |" in md and "Held-out evaluation" in md and "report.md" in proc.stdout
    assert (workdir / "report" / "reward.png").read_bytes()[:4] == b"\x89PNG"
    curves = report["curves"]
    assert [row[0] for row in curves["phase1"]] == [1, 2] and len(curves["sft_loss"]) == st["sft"]["steps"]
    assert "retrospective pool of phase II" in md


def test_weights_flow_sft_to_phase1_to_phase2(demo):
    workdir, _, _ = demo
    sft, p1, p2 = (_done(workdir, s)["outputs"] for s in ("sft", "phase1", "phase2"))
    assert p1["start_stage"] == "sft" and p1["start_model"] == sft["hf_model"]
    assert p2["start_stage"] == "phase1" and p2["start_model"] == p1["hf_model"]
    assert p1["hf_model"].endswith("phase1/ckpt/global_step_2/actor/huggingface")
    for hf in (sft["hf_model"], p1["hf_model"], p2["hf_model"]):
        assert (Path(hf) / "config.json").is_file() and list(Path(hf).glob("*.safetensors"))
    # what verl was actually told: phase II resumes phase I's last full checkpoint, writing its own folder
    log2 = (workdir / "phase2" / "stage.log").read_text()
    p1_ckpt = workdir / "phase1" / "ckpt" / "global_step_2"
    assert p2["continued_from"] == str(p1_ckpt)
    assert f"trainer.resume_from_path={p1_ckpt}" in log2 and f"Resuming from {p1_ckpt}" in log2
    assert f"trainer.default_local_dir={workdir / 'phase2' / 'ckpt'}" in log2
    assert "phase 2 continues phase 1's training state" in log2


def test_phase2_continues_phase1_training_state(demo):
    """2 + 2 RL steps: phase II's logged steps are 3 and 4, and its checkpoint's Adam state has taken 4 steps (phase
    I's 2 + its own 2): the optimizer was not restarted (the cross-launch curriculum; the in-run one is checked in
    test_sampling_e2e.py)."""
    from e2e_utils import adam_steps

    workdir, _, report = demo
    assert [row[0] for row in report["curves"]["phase2"]] == [3, 4]
    p1_actor = workdir / "phase1" / "ckpt" / "global_step_2" / "actor"
    p2_actor = workdir / "phase2" / "ckpt" / "global_step_4" / "actor"
    assert adam_steps(p1_actor) == {2}
    assert adam_steps(p2_actor) == {4}
    assert (workdir / "phase2" / "ckpt" / "latest_checkpointed_iteration.txt").read_text().strip() == "4"
    # its own data order: phase II's sampler starts at epoch 0 of its band; one lr across both launches
    log2 = (workdir / "phase2" / "stage.log").read_text()
    assert "starts at epoch 0 (none of phase 1's data order carries over)" in log2
    from qwenlong_verl.reporting import read_metrics

    lrs = [m["data"]["actor/lr"] for stage in ("phase1", "phase2") for m in read_metrics(workdir / stage / METRICS)]
    assert len(lrs) == 4 and len(set(lrs)) == 1, lrs  # the recipes' constant lr, one schedule


def test_a_stopped_phase2_goes_on_from_its_own_checkpoint_without_repeating_or_losing_examples(demo):
    """The re-run continued phase II's own step-3 checkpoint (not phase I's end again): step 4 drew the next batch of
    phase II's sampler order, nothing of step 3 again (DAPO off, so each step draws exactly one batch)."""
    from omegaconf import OmegaConf

    from qwenlong_verl.sampling.difficulty import DifficultyTable
    from qwenlong_verl.sampling.options import sampling_options
    from qwenlong_verl.sampling.phases import view_from_file
    from qwenlong_verl.sampling.sampler import PhasedRetrospectiveSampler

    workdir, _, _ = demo
    p1, p2 = _done(workdir, "phase1")["outputs"], _done(workdir, "phase2")["outputs"]
    assert p2["continued_own_attempt"] == str(workdir / "phase2" / "ckpt" / "global_step_3")
    log2 = (workdir / "phase2" / "stage.log").read_text()
    assert f"Resuming from {workdir / 'phase2' / 'ckpt' / 'global_step_3'}" in log2, log2[-3000:]
    assert (workdir / "phase2" / "metrics.1.jsonl").is_file()  # the stopped attempt's log, kept
    # the order phase II's sampler draws, from the config verl ran with and phase I's table
    config = OmegaConf.load(sorted((workdir / "phase2" / "outputs").glob("*/*/.hydra/config.yaml"))[0])
    options = sampling_options(config)
    table = DifficultyTable(metric=options.difficulty.metric)
    table.merge(DifficultyTable.load(p1["difficulty_file"]))
    view = view_from_file(_done(workdir, "data")["outputs"]["train"])
    sampler = PhasedRetrospectiveSampler(view, options, table=table, start_step=3)
    order = [view.indices[p] for p in sampler.epoch_order()]
    sampler.epoch = 1
    order += [view.indices[p] for p in sampler.epoch_order()]
    drawn: dict[int, set] = {}
    for idx, ex in DifficultyTable.load(p2["difficulty_file"]).examples.items():
        for step, phase, n, _ in ex.history:
            if phase == 2:
                assert n == N_ROLLOUTS, (idx, ex.history)  # a prompt drawn twice in one step would show 2 x n
                drawn.setdefault(step, set()).add(idx)
    assert sorted(drawn) == [3, 4]
    for k, step in enumerate((3, 4)):
        assert drawn[step] == set(order[k * BATCH: (k + 1) * BATCH]), (step, drawn, order[: 2 * BATCH])


def test_phase1_without_the_package_reward_manager_falls_back_to_the_trained_batch(demo):
    """verl's dapo manager sends no telemetry: one warning, and phase I's table holds the trained batch's rewards,
    every rollout of it (DAPO's filter off), here the parity reward of each example."""
    workdir, _, _ = demo
    assert "no reward telemetry" in (workdir / "phase1" / "stage.log").read_text()
    table = json.loads(Path(_done(workdir, "phase1")["outputs"]["difficulty_file"]).read_text())
    counts = []
    for ex in table["examples"]:
        n, total = sum(h[2] for h in ex["history"]), sum(h[3] for h in ex["history"])
        assert n % N_ROLLOUTS == 0 and total == (n if int(ex["index"]) % 2 == 0 else 0.0), ex
        counts.append(n)
    assert sum(counts) == 2 * BATCH * N_ROLLOUTS  # 2 steps x 4 prompts x G, no evicted groups (the filter is off)


def test_phase2_read_phase1_difficulty_file(demo):
    workdir, _, report = demo
    p1, p2 = _done(workdir, "phase1")["outputs"], _done(workdir, "phase2")["outputs"]
    table = json.loads(Path(p1["difficulty_file"]).read_text())
    assert p2["retrospective_file"] == p1["difficulty_file"]
    log2 = (workdir / "phase2" / "stage.log").read_text()
    assert f"qwenlong: difficulty table {p1['difficulty_file']}" in log2  # the trainer loaded it
    e2 = report["stages"]["phase2"]
    zero_mean = e2["difficulty_in"]["zero_mean"]
    assert e2["difficulty_in"]["examples"] == len(table["examples"]) > 0
    # the pool the trainer built from the file equals the plan computed from the same file by the pipeline
    assert e2["retro_pool"] == e2["retro_candidates"] == zero_mean


def test_eval_scored_the_trained_models_with_qwenlong_verl_score(demo):
    workdir, _, report = demo
    models = report["stages"]["eval"]["models"]
    assert list(models) == ["sft", "phase2"]
    p2 = _done(workdir, "phase2")["outputs"]["hf_model"]
    assert models["phase2"]["model"] == p2
    for label, m in models.items():
        assert m["rows"] == 8 and 0.0 <= m["score"] <= 100.0
        scores = json.loads((workdir / "eval" / f"{label}_scores.json").read_text())
        assert scores["summary"]["ALL"]["rows"] == 8


def test_rerun_skips_finished_stages(demo):
    workdir, _, _ = demo
    before = {s: _done(workdir, s)["finished_at"] for s in ("data", "sft", "phase1", "phase2", "eval")}
    log_size = (workdir / "phase1" / "stage.log").stat().st_size
    proc = _cli(workdir, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    for stage in before:
        assert f"[{stage}] done earlier" in proc.stdout
        assert _done(workdir, stage)["finished_at"] == before[stage]
    assert "[report] running" in proc.stdout  # the report is rebuilt from the stages' records
    assert (workdir / "phase1" / "stage.log").stat().st_size == log_size  # no training ran
    # a changed setting of a finished stage is refused, naming the stage and the way out
    proc = _cli(workdir, "--phase2-steps", "3", timeout=300)
    assert proc.returncode == 1
    assert "stage phase2 finished earlier with other settings (steps: 2 -> 3)" in proc.stdout
    assert "--from phase2" in proc.stdout
