"""The whole CPU demo through ``qwenlong-verl pipeline``: synthetic data -> verl SFT -> RL phase I -> RL phase II ->
held-out eval -> report, at tiny sizes; then a rerun that skips every finished stage.

One module-scoped run (several verl jobs, ~4 minutes on 2 cores) under the e2e lock. DAPO dynamic sampling is off
here: a 16-step SFT leaves the tiny model nearly always wrong, and refilling all-zero groups would only cost time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# whichever test runs first runs the whole pipeline (its limit: 900 s); the rerun test adds two runs of up to 300 s
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

ARGS = ["--demo-train-rows", "32", "--demo-sft-rows", "64", "--demo-eval-rows", "8", "--demo-pretrain-steps", "0",
        "--sft-epochs", "2", "--phase1-steps", "2", "--phase2-steps", "2", "--eval-models", "sft,final",
        "--eval-samples", "1", "--max-response-length", "64", "--eval-max-new-tokens", "64",
        "--rl-override", "algorithm.filter_groups.enable=false", "--rl-override", "data.train_batch_size=4",
        "--rl-override", "actor_rollout_ref.rollout.n=4", "--rl-override", "actor_rollout_ref.actor.ppo_mini_batch_size=4"]


def _cli(workdir: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "qwenlong_verl.cli", "pipeline", "--workdir", str(workdir), *ARGS,
                           *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from conftest import hold_e2e_lock

    workdir = tmp_path_factory.mktemp("pipeline") / "demo"
    with hold_e2e_lock():  # held for the whole pipeline: it starts several verl jobs
        proc = _cli(workdir)
    assert proc.returncode == 0, proc.stdout[-6000:]
    report = json.loads((workdir / "report" / "report.json").read_text())
    return workdir, proc, report


def _done(workdir: Path, stage: str) -> dict:
    return json.loads((workdir / stage / "DONE").read_text())


def test_every_stage_ran_and_the_report_says_what_happened(demo):
    workdir, proc, report = demo
    st = report["stages"]
    assert {k: v["status"] for k, v in st.items()} == {s: "ran" for s in ("data", "sft", "phase1", "phase2", "eval")}
    sft_rows = st["data"]["sft_conversion"]["rows_out"]  # rows over phase I's bound were left out, and counted
    assert sft_rows + st["data"]["sft_conversion"]["too_long"] == 64
    assert st["sft"]["steps"] == 2 * (sft_rows // 8)  # 2 epochs at batch 8, verl drops the last partial batch
    assert st["sft"]["loss_last"] < st["sft"]["loss_first"]
    for name, phase in (("phase1", 1), ("phase2", 2)):
        e = st[name]
        assert e["steps"] == 2 and e["phase"] == phase
        assert -1.0 <= e["reward_mean"] <= 1.0  # acc in {0, 1} plus DAPO's overlong penalty in [-1, 0]
        assert e["scored_rollouts"] == 2 * 4 * 4  # 2 steps x 4 prompts x G=4, no DAPO refills
        # the CPU overlay reads answers without </think>: every wrong answer goes to the (stand-in) judge
        assert e["judge_calls"] > 0 and e["judge_failures"] == 0
        assert e["phase_band_size"] > 0
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
    lrs = [json.loads(line)["data"]["actor/lr"] for stage in ("phase1", "phase2")
           for line in (workdir / stage / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(lrs) == 4 and len(set(lrs)) == 1, lrs  # the recipes' constant lr, one schedule


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
