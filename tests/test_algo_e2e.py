"""A real CPU ``main_ppo`` run that selects ``qwenlong_grpo`` and ``qwenlong_dapo`` by name (through the recipe) with
every extra on, and checks from the logged step metrics that both ran in verl's trainer and actor worker."""

from __future__ import annotations

import pandas as pd
import pytest
from e2e_utils import run_main_ppo, toy_docqa_rows

# one verl run (its own limit: run_main_ppo's 900 s) plus set-up; the e2e lock is waited for outside this bound
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

STEPS = 2


@pytest.fixture
def algo_run(e2e_lock, tmp_path, tiny_model_dir):
    work = tmp_path / "algo_e2e"
    rows = toy_docqa_rows(16)
    for i, row in enumerate(rows):  # two tasks, so the per-task std has two groups of prompts to split
        row["data_source"] = "musique" if i % 2 == 0 else "hotpotqa"
    work.mkdir()
    pd.DataFrame(rows).to_parquet(work / "train.parquet")
    pd.DataFrame(toy_docqa_rows(4, split="test", start_index=100)).to_parquet(work / "val.parquet")
    loss = "actor_rollout_ref.actor.policy_loss"
    overrides = [
        f"data.train_files={work / 'train.parquet'}",
        f"data.val_files={work / 'val.parquet'}",
        f"actor_rollout_ref.model.path={tiny_model_dir}",
        f"trainer.total_training_steps={STEPS}",
        # the toy task's rewards are almost all 0: DAPO's group filter would regenerate for minutes; not under test here
        "algorithm.filter_groups.enable=false",
        # the recipe picks both plugins by name; the rest switches every extra on
        # (the recipe already carries these keys, off by default: override them, never append)
        f"{loss}.overlong_filter=true",
        f"{loss}.aepo=true",
        f"{loss}.aepo_entropy_high=0.0",  # any positive entropy opens the gate
        f"{loss}.aepo_entropy_low=0.0",
        "++qwenlong.advantage.std_scope=task",
    ]
    return run_main_ppo(overrides, work)


def test_both_plugins_ran_every_step(algo_run):
    result = algo_run
    assert result.returncode == 0, result.tail()
    assert result.steps() == list(range(1, STEPS + 1)), result.tail()
    for step in result.steps():
        m = result.step_metrics(step)
        # the loss ran in the actor worker with its options
        for key in ("actor/pg_clipfrac_low", "actor/pg_clipfrac_high", "actor/qwenlong_truncated_frac",
                    "actor/qwenlong_aepo_masked_frac", "actor/qwenlong_aepo_active", "actor/qwenlong_entropy_estimate"):
            assert key in m, f"step {step}: {key} missing; logged: {sorted(m)}"
        # truncation seen by the loss (mask reaches max_response_length) is verl's own clip ratio of the batch
        assert m["actor/qwenlong_truncated_frac"] == pytest.approx(m["response_length/clip_ratio"], abs=0.07)
        # the -old_log_prob estimate tracks verl's exact entropy of the same batch
        assert m["actor/qwenlong_entropy_estimate"] == pytest.approx(m["actor/entropy"], rel=0.15)
        assert m["actor/qwenlong_aepo_active"] == 1.0
        # the estimator ran in the trainer with the task labels the trainer supplied
        assert m.get("qwenlong/adv_task_count/musique", 0) + m.get("qwenlong/adv_task_count/hotpotqa", 0) > 0, (
            f"step {step}: no per-task advantage metrics; logged: {sorted(m)}")
        # verl's own sanity numbers are finite
        assert m["actor/pg_loss"] == m["actor/pg_loss"]
