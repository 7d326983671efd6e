"""The acceptance run of the foundation: verl's own main_ppo trains with +recipe=qwenlong_phase2 on the CPU backend."""

from __future__ import annotations

import pytest
from e2e_utils import demo_overrides, run_main_ppo

# one verl run (its own limit: run_main_ppo's 900 s) plus set-up; the e2e lock is waited for outside this bound
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


def test_main_ppo_phase2_recipe_runs_two_steps_on_cpu(demo_data, tmp_path, e2e_lock):
    # phase II alone, without a phase-I difficulty file (the curriculum tests cover the retrospective mix)
    # DAPO dynamic sampling off: the untrained tiny model answers nothing right, every group would be evicted,
    # and verl's V1 refills without bound (test_sampling_e2e covers eviction with a judge that says YES)
    result = run_main_ppo([*demo_overrides(demo_data, steps=2), "qwenlong.retrospective.enable=false",
                           "algorithm.filter_groups.enable=false"], tmp_path, recipe="qwenlong_phase2")
    assert result.returncode == 0, result.tail()
    assert result.steps() == [1, 2], result.tail()
    for step in (1, 2):
        m = result.step_metrics(step)
        assert m["training/global_step"] == step
        # the actor update ran (all-zero rewards give zero advantages, so the gradient may be 0) and the rollout
        # came from our HF replica with log-probs matching the actor's
        assert m["actor/grad_norm"] >= 0 and "actor/pg_loss" in m
        assert m["actor/pg_clipfrac_high"] >= 0  # our qwenlong_dapo loss's metric
        assert m["training/rollout_actor_probs_pearson_corr"] > 0.99
        assert m["response_length/mean"] > 0
        # our trainer mode ran: it adds the qwenlong/* metrics every step
        assert "qwenlong/scored_samples" in m
        assert m["qwenlong/phase"] == 2
    # recipe values reached the workers: token-mean DAPO loss, the paper's clip-higher, the CPU overlay sizes
    assert "'clip_ratio_high': 0.28" in result.output
    assert "'loss_mode': 'qwenlong_dapo'" in result.output
    assert "'adv_estimator': 'qwenlong_grpo'" in result.output
