"""``qwenlong_grpo``: parity with verl's ``grpo`` through verl's own dispatcher, hand-computed GRPO and per-task
numbers, and the errors for bad options or missing task labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.core_algos import get_adv_estimator_fn
from verl.trainer.ppo.ray_trainer import compute_advantage

from qwenlong_verl.config import QwenLongConfigError
from qwenlong_verl.integration.advantage import (
    ESTIMATOR_NAME,
    advantage_options,
    compute_qwenlong_grpo_advantage,
    last_task_stats,
    task_labels,
)

EPS = 1e-6


def trainer_config(norm: bool = True, **advantage) -> OmegaConf:
    """A config tree shaped like main_ppo's: verl hands the estimator only ``cfg.algorithm``."""
    cfg = {"algorithm": {"adv_estimator": ESTIMATOR_NAME, "norm_adv_by_std_in_grpo": norm}}
    if advantage:
        cfg["qwenlong"] = {"advantage": advantage}
    return OmegaConf.create(cfg)


def outcome_batch(rewards: list[float], lengths: list[int], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards on the last valid token, as verl's reward managers place them."""
    mask = torch.zeros(len(rewards), width)
    scores = torch.zeros(len(rewards), width)
    for i, (r, n) in enumerate(zip(rewards, lengths, strict=True)):
        mask[i, :n] = 1
        scores[i, n - 1] = r
    return scores, mask


def test_registered_by_name():
    assert get_adv_estimator_fn(ESTIMATOR_NAME) is compute_qwenlong_grpo_advantage


@st.composite
def grpo_batches(draw):
    group_sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=6))
    uids = np.array([f"g{g}" for g, n in enumerate(group_sizes) for _ in range(n)], dtype=object)
    order = draw(st.permutations(list(range(len(uids)))))  # rows of a group need not be adjacent
    uids = uids[list(order)]
    width = draw(st.integers(1, 6))
    reward = st.one_of(st.sampled_from([0.0, 1.0, -1.0]), st.floats(-3, 3, allow_nan=False, width=32))
    rewards = draw(st.lists(reward, min_size=len(uids), max_size=len(uids)))
    lengths = draw(st.lists(st.integers(1, width), min_size=len(uids), max_size=len(uids)))
    return uids, rewards, lengths, width


@settings(max_examples=60, deadline=None)
@given(batch=grpo_batches(), norm=st.booleans())
def test_same_numbers_as_verl_grpo_through_verl_dispatch(batch, norm):
    """verl's compute_advantage special-cases 'grpo' and sends 'qwenlong_grpo' down the registry path."""
    uids, rewards, lengths, width = batch
    scores, mask = outcome_batch(rewards, lengths, width)
    cfg = trainer_config(norm=norm)

    def run(name: str) -> torch.Tensor:
        data = DataProto.from_dict(
            tensors={"token_level_rewards": scores.clone(), "response_mask": mask.clone()},
            non_tensors={"uid": uids.copy()},
        )
        out = compute_advantage(data, adv_estimator=name, norm_adv_by_std_in_grpo=norm, config=cfg.algorithm)
        assert torch.equal(out.batch["advantages"], out.batch["returns"])
        return out.batch["advantages"]

    ours, verls = run(ESTIMATOR_NAME), run("grpo")
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, verls, rtol=0, atol=0)


def test_hand_computed_group_advantages():
    # group a: [1, 0, 0, 1] -> mean 0.5, unbiased std sqrt(1/3); group b: one response; group c: all equal.
    uids = np.array(["a", "a", "a", "a", "b", "c", "c"], dtype=object)
    scores, mask = outcome_batch([1, 0, 0, 1, 0.7, 1, 1], [3, 2, 3, 1, 2, 3, 3], width=3)
    adv, ret = compute_qwenlong_grpo_advantage(scores, mask, uids, config=trainer_config().algorithm)
    a = 0.5 / (math.sqrt(1 / 3) + EPS)
    expected_rows = [a, -a, -a, a, 0.7 / (1 + EPS), 0.0, 0.0]
    expected = torch.tensor(expected_rows).unsqueeze(-1) * mask
    torch.testing.assert_close(adv, expected)
    assert adv is ret or torch.equal(adv, ret)
    # padding positions stay exactly zero
    assert (adv[mask == 0] == 0).all()


def test_std_off_read_from_config_not_kwarg():
    """verl passes norm_adv_by_std_in_grpo to its own grpo only; ours must read it from the algorithm node."""
    uids = np.array(["a", "a", "a"], dtype=object)
    scores, mask = outcome_batch([1, 0, 0], [2, 2, 2], width=2)
    adv, _ = compute_qwenlong_grpo_advantage(scores, mask, uids, config=trainer_config(norm=False).algorithm)
    torch.testing.assert_close(adv[:, 0], torch.tensor([2 / 3, -1 / 3, -1 / 3]))


def test_per_task_std_hand_computed():
    # task x: groups g1 [1, 0], g2 [1, 1]; task y: group g3 [2, 0, 1]; single-response group g4 in task y.
    uids = np.array(["g1", "g1", "g2", "g2", "g3", "g3", "g3", "g4"], dtype=object)
    rewards = [1, 0, 1, 1, 2, 0, 1, 0.5]
    tasks = ["x", "x", "x", "x", "y", "y", "y", "y"]
    scores, mask = outcome_batch(rewards, [1] * 8, width=1)
    cfg = trainer_config(std_scope="task").algorithm
    with task_labels(dict(zip(uids, tasks, strict=True))):
        adv, _ = compute_qwenlong_grpo_advantage(scores, mask, uids, config=cfg)
    std_x = float(np.std([1, 0, 1, 1], ddof=1))
    std_y = float(np.std([2, 0, 1, 0.5], ddof=1))
    expected = [0.5 / (std_x + EPS), -0.5 / (std_x + EPS), 0.0, 0.0,
                1 / (std_y + EPS), -1 / (std_y + EPS), 0.0,
                0.5 / (1 + EPS)]  # one-response group: verl's mean 0, std 1
    torch.testing.assert_close(adv[:, 0], torch.tensor(expected))
    stats = last_task_stats()
    assert stats["x"]["count"] == 4 and stats["y"]["count"] == 4
    assert stats["x"]["std"] == pytest.approx(std_x) and stats["y"]["std"] == pytest.approx(std_y)


def test_per_task_std_differs_from_group_std_and_explicit_labels_match_context():
    uids = np.array(["g1", "g1", "g2", "g2"], dtype=object)
    scores, mask = outcome_batch([1, 0, 3, 0], [2, 2, 2, 2], width=2)
    cfg = trainer_config(std_scope="task").algorithm
    with task_labels({"g1": "t", "g2": "t"}):
        by_context, _ = compute_qwenlong_grpo_advantage(scores, mask, uids, config=cfg)
    explicit, _ = compute_qwenlong_grpo_advantage(scores, mask, uids, task_labels=["t"] * 4, std_scope="task")
    grouped, _ = compute_qwenlong_grpo_advantage(scores, mask, uids, config=trainer_config().algorithm)
    torch.testing.assert_close(by_context, explicit)
    assert not torch.allclose(by_context, grouped)
    task_std = float(np.std([1, 0, 3, 0], ddof=1))
    torch.testing.assert_close(by_context[:, 0], torch.tensor([0.5, -0.5, 1.5, -1.5]) / (task_std + EPS))


def test_zero_variance_task_and_singletons_stay_finite():
    uids = np.array(["a", "a", "b", "c"], dtype=object)
    scores, mask = outcome_batch([1, 1, 1, 1], [1, 1, 1, 1], width=1)
    adv, _ = compute_qwenlong_grpo_advantage(scores, mask, uids, task_labels=["t"] * 4, std_scope="task")
    assert torch.isfinite(adv).all()
    torch.testing.assert_close(adv[:, 0], torch.tensor([0.0, 0.0, 1 / (1 + EPS), 1 / (1 + EPS)]))


def test_task_scope_without_labels_names_the_way_out():
    uids = np.array(["a", "a"], dtype=object)
    scores, mask = outcome_batch([1, 0], [1, 1], width=1)
    with pytest.raises(QwenLongConfigError, match="trainer_mode=qwenlong"):
        compute_qwenlong_grpo_advantage(scores, mask, uids, config=trainer_config(std_scope="task").algorithm)


def test_missing_label_and_mixed_group_are_named():
    uids = np.array(["a", "a", "b"], dtype=object)
    scores, mask = outcome_batch([1, 0, 1], [1, 1, 1], width=1)
    cfg = trainer_config(std_scope="task").algorithm
    with task_labels({"a": "t"}), pytest.raises(ValueError, match="uid\\(s\\) b"):
        compute_qwenlong_grpo_advantage(scores, mask, uids, config=cfg)
    with pytest.raises(ValueError, match="group 'a' mixes tasks"):
        compute_qwenlong_grpo_advantage(scores, mask, uids, task_labels=["t", "u", "t"], std_scope="task")


def test_bad_options_are_named():
    with pytest.raises(QwenLongConfigError, match="qwenlong.advantage.std_scop"):
        advantage_options(trainer_config(std_scop="task").algorithm)
    with pytest.raises(QwenLongConfigError, match="std_scope='batch'"):
        advantage_options(trainer_config(std_scope="batch").algorithm)
    with pytest.raises(QwenLongConfigError, match="epsilon"):
        advantage_options(trainer_config(epsilon=0).algorithm)
    uids = np.array(["a", "a"], dtype=object)
    scores, mask = outcome_batch([1, 0], [1, 1], width=1)
    with pytest.raises(QwenLongConfigError, match="norm_adv_by_std_in_grpo=false"):
        compute_qwenlong_grpo_advantage(scores, mask, uids, config=trainer_config(norm=False, std_scope="task").algorithm,
                                        task_labels=["t", "t"])
    with pytest.raises(ValueError, match="uid"):
        compute_qwenlong_grpo_advantage(scores, mask, None)


def test_options_reach_the_estimator_through_the_algorithm_node_after_pickling():
    """Ray pickles the config into the TaskRunner; the algorithm node must still reach the qwenlong block."""
    import pickle

    cfg = pickle.loads(pickle.dumps(trainer_config(std_scope="task", epsilon=0.5)))
    opts = advantage_options(cfg.algorithm)
    assert opts.std_scope == "task" and opts.epsilon == 0.5
    assert advantage_options(None).std_scope == "group"


@settings(max_examples=40, deadline=None)
@given(batch=grpo_batches(), n_tasks=st.integers(1, 3), data=st.data())
def test_per_task_std_matches_a_plain_reference(batch, n_tasks, data):
    """A_i = (R_i - mean_g) / (std_task + eps); one-response groups: R_i / (1 + eps)."""
    import statistics

    uids, rewards, lengths, width = batch
    group_task = {u: data.draw(st.integers(0, n_tasks - 1)) for u in dict.fromkeys(uids)}
    tasks = [f"t{group_task[u]}" for u in uids]
    scores, mask = outcome_batch(rewards, lengths, width)
    adv, _ = compute_qwenlong_grpo_advantage(scores, mask, uids, task_labels=tasks, std_scope="task")
    r = scores.sum(-1).tolist()
    expected = []
    for i, u in enumerate(uids):
        group = [r[j] for j in range(len(uids)) if uids[j] == u]
        if len(group) == 1:
            expected.append(r[i] / (1 + EPS))
            continue
        task = [r[j] for j in range(len(uids)) if tasks[j] == tasks[i]]
        expected.append((r[i] - statistics.fmean(group)) / (statistics.stdev(task) + EPS))
    assert torch.isfinite(adv).all()
    torch.testing.assert_close(adv, torch.tensor(expected, dtype=adv.dtype).unsqueeze(-1) * mask,
                               rtol=1e-4, atol=1e-3)


def test_trainer_mixin_engages_only_for_task_scope():
    from qwenlong_verl.integration.trainer_hooks import AlgoTrainerMixin, task_std_metrics

    class VerlTrainerStandIn:  # only the one method the mixin wraps
        def _compute_advantage(self, batch, metrics):
            return "verl"

    class Trainer(AlgoTrainerMixin, VerlTrainerStandIn):
        pass

    trainer = Trainer()
    trainer.config = trainer_config()
    assert not trainer._uses_task_std()
    assert trainer._compute_advantage(None, {}) == "verl"  # group scope: passes straight through, no TransferQueue
    trainer.config = trainer_config(std_scope="task")
    assert trainer._uses_task_std()
    trainer.config.algorithm.adv_estimator = "grpo"
    assert not trainer._uses_task_std()
    assert task_std_metrics({"musique": {"std": 0.5, "count": 8.0}}) == {
        "qwenlong/adv_task_std/musique": 0.5, "qwenlong/adv_task_count/musique": 8.0}
