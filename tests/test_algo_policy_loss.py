"""``qwenlong_dapo``: parity with verl's ``vanilla`` when the extras are off, hand-computed DAPO numbers (clip-higher,
dual clip, token-mean, overlong filtering, AEPO), clip-fraction metrics, and the Hydra override lines."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla, get_policy_loss_fn
from verl.workers.config import ActorConfig, PolicyLossConfig

from qwenlong_verl.config import QwenLongConfigError
from qwenlong_verl.integration import policy_loss as pl
from qwenlong_verl.integration.policy_loss import (
    LOSS_NAME,
    AepoGate,
    DapoOptions,
    QwenLongPolicyLossConfig,
    compute_policy_loss_qwenlong_dapo,
    truncated_rows,
)

AGG_MODES = ["token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]


def actor_config(policy_loss=None, **kw) -> ActorConfig:
    kw.setdefault("clip_ratio_low", 0.2)
    kw.setdefault("clip_ratio_high", 0.28)
    return ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1,
                       policy_loss=policy_loss or PolicyLossConfig(), **kw)


def dapo_config(**options) -> ActorConfig:
    return actor_config(QwenLongPolicyLossConfig(loss_mode=LOSS_NAME, **options))


def loss_and_grad(fn, old, logp, adv, mask, mode, cfg, weights=None):
    logp = logp.clone().requires_grad_(True)
    loss, metrics = fn(old_log_prob=old, log_prob=logp, advantages=adv, response_mask=mask, loss_agg_mode=mode,
                       config=cfg, rollout_is_weights=weights)
    loss.backward()
    return loss.detach(), logp.grad, metrics


@pytest.fixture(autouse=True)
def fresh_gate(monkeypatch):
    monkeypatch.setattr(pl, "AEPO_GATE", AepoGate())


def test_registered_by_name():
    assert get_policy_loss_fn(LOSS_NAME) is compute_policy_loss_qwenlong_dapo


@st.composite
def loss_batches(draw):
    bsz, width = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(bsz, width, generator=g) * 3
    logp = old + torch.randn(bsz, width, generator=g) * 0.4
    adv = torch.randn(bsz, 1, generator=g).expand(bsz, width).clone()
    lengths = torch.randint(1, width + 1, (bsz,), generator=g)
    mask = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
    weights = torch.rand(bsz, width, generator=g) + 0.5 if draw(st.booleans()) else None
    return old, logp, adv, mask, weights


@settings(max_examples=60, deadline=None)
@given(batch=loss_batches(), mode=st.sampled_from(AGG_MODES), global_info=st.booleans(),
       plain=st.booleans(), clip_c=st.sampled_from([3.0, 1.5]))
def test_same_numbers_as_vanilla_with_extras_off(batch, mode, global_info, plain, clip_c):
    old, logp, adv, mask, weights = batch
    policy_loss = PolicyLossConfig(loss_mode=LOSS_NAME) if plain else QwenLongPolicyLossConfig(loss_mode=LOSS_NAME)
    cfg = actor_config(policy_loss, clip_ratio_c=clip_c)
    if global_info:  # what verl's ppo_loss writes before calling the loss
        cfg.global_batch_info.update(dp_size=1, batch_num_tokens=int(mask.sum()) + 3,
                                     global_batch_size=mask.shape[0] + 1, loss_scale_factor=None)
    ours = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, logp, adv, mask, mode, cfg, weights)
    verls = loss_and_grad(compute_policy_loss_vanilla, old, logp, adv, mask, mode, cfg, weights)
    torch.testing.assert_close(ours[0], verls[0], rtol=0, atol=0)
    torch.testing.assert_close(ours[1], verls[1], rtol=0, atol=0)
    for key, value in verls[2].items():
        assert ours[2][key] == value
    # the two new clip fractions split verl's pg_clipfrac
    assert ours[2]["actor/pg_clipfrac_low"] + ours[2]["actor/pg_clipfrac_high"] == pytest.approx(
        verls[2]["actor/pg_clipfrac"], abs=1e-6)


def one_token_rows(ratios: list[float], advs: list[float]):
    old = torch.zeros(len(ratios), 1)
    logp = torch.log(torch.tensor(ratios)).unsqueeze(-1)
    adv = torch.tensor(advs).unsqueeze(-1)
    return old, logp, adv, torch.ones(len(ratios), 1, dtype=torch.bool)


def test_hand_computed_clip_higher_and_dual_clip():
    # per token l = max(-A r, -A clip(r, 0.8, 1.28)); for A<0 also min(l, -A * 3)
    ratios = [1.5, 1.1, 0.5, 0.9, 4.0, 1.5]
    advs = [1.0, 1.0, -1.0, -1.0, -1.0, 2.0]
    expected = [-1.28, -1.1, 0.8, 0.9, 3.0, -2.56]
    old, logp, adv, mask = one_token_rows(ratios, advs)
    loss, grad, m = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, logp, adv, mask, "token-mean", dapo_config())
    assert loss.item() == pytest.approx(sum(expected) / 6, rel=1e-6)
    # clipped tokens have no gradient; unclipped ones get -A r / N
    torch.testing.assert_close(grad[:, 0], torch.tensor([0, -1.1 / 6, 0, 0.9 / 6, 0, 0]))
    assert m["actor/pg_clipfrac_high"] == pytest.approx(2 / 6)  # rows 0 and 5
    assert m["actor/pg_clipfrac_low"] == pytest.approx(1 / 6)  # row 2
    assert m["actor/pg_clipfrac_lower"] == pytest.approx(1 / 6)  # verl's dual-clip fraction: row 4

    # dual clip off: row 4 keeps -A r = 4.0 (and its gradient)
    loss, grad, m = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, logp, adv, mask, "token-mean",
                                  dapo_config(dual_clip=False))
    expected[4] = 4.0
    assert loss.item() == pytest.approx(sum(expected) / 6, rel=1e-6)
    assert grad[4, 0].item() == pytest.approx(4.0 / 6)
    assert m["actor/pg_clipfrac_lower"] == 0.0
    assert torch.isfinite(grad).all()


def test_token_mean_weights_tokens_not_sequences():
    # DAPO: 1 / sum_i |o_i| over all tokens. Row 0 has 3 tokens with l = -1, row 1 one token with l = +1.
    old = torch.zeros(2, 3)
    logp = torch.zeros(2, 3)
    adv = torch.tensor([[1.0] * 3, [-1.0] * 3])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    cfg = dapo_config()
    loss, _, _ = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, logp, adv, mask, "token-mean", cfg)
    assert loss.item() == pytest.approx((-3 + 1) / 4)
    loss, _, _ = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, logp, adv, mask, "seq-mean-token-mean", cfg)
    assert loss.item() == pytest.approx((-1 + 1) / 2)


def test_truncated_rows_detection():
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 1, 1], [0, 0, 0, 0]])
    assert truncated_rows(mask, 4).tolist() == [True, False, True, False]  # row 2: multi-turn gap, ends at limit
    assert truncated_rows(mask, 5).tolist() == [False] * 4  # micro-batch padded shorter than the budget
    assert truncated_rows(mask[:, :2], 4).tolist() == [False] * 4


@pytest.mark.parametrize("global_info", [False, True])
def test_overlong_filter_masks_truncated_rows_and_keeps_the_normaliser(global_info):
    # budget 3: row 0 is truncated (uses all 3 tokens), rows 1-2 ended early
    old = torch.zeros(3, 3)
    logp = torch.log(torch.tensor([[1.1, 1.1, 1.1], [1.1, 1.1, 1.0], [0.9, 1.0, 1.0]]))  # ratios; 1.0 = padding
    adv = torch.tensor([[1.0] * 3, [1.0] * 3, [-2.0] * 3])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    cfg = dapo_config(overlong_filter=True, max_response_length=3)
    if global_info:
        cfg.global_batch_info.update(dp_size=1, batch_num_tokens=6, global_batch_size=3, loss_scale_factor=None)
    loss, grad, m = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, logp, adv, mask, "token-mean", cfg)
    # kept tokens: row 1 (2 x -1.1) and row 2 (-(-2) * 0.9 = 1.8); normaliser: all 6 valid tokens
    assert loss.item() == pytest.approx((-1.1 * 2 + 1.8) / 6, rel=1e-6)
    assert (grad[0] == 0).all() and (grad[1, :2] != 0).all()
    assert m["actor/qwenlong_truncated_frac"] == pytest.approx(1 / 3)
    assert m["actor/pg_clipfrac_high"] == 0.0  # masked row 0 (ratio 1.1 < 1.28) is not counted anyway

    # without the filter the truncated row counts: vanilla's number
    plain = dapo_config()
    if global_info:
        plain.global_batch_info.update(cfg.global_batch_info)
    base, _, m0 = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, logp, adv, mask, "token-mean", plain)
    assert base.item() == pytest.approx((-1.1 * 5 + 1.8) / 6, rel=1e-6)
    assert "actor/qwenlong_truncated_frac" not in m0


def test_overlong_filter_all_rows_truncated_gives_zero_not_nan():
    old, logp = torch.zeros(2, 2), torch.full((2, 2), 0.1)
    adv = torch.ones(2, 2)
    mask = torch.ones(2, 2, dtype=torch.bool)
    for mode in AGG_MODES:
        loss, grad, m = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, logp, adv, mask, mode,
                                      dapo_config(overlong_filter=True, max_response_length=2))
        assert loss.item() == 0.0 and (grad == 0).all(), mode
        assert m["actor/qwenlong_truncated_frac"] == 1.0


def test_aepo_gate_hysteresis():
    gate = AepoGate()
    seq = [(0.5, False), (0.9, True), (0.7, True), (0.45, True), (0.3, False), (0.7, False), (1.2, True)]
    assert [gate.update(h, high=0.8, low=0.4) for h, _ in seq] == [want for _, want in seq]


def test_aepo_masks_negative_samples_only_while_entropy_is_high():
    cfg = dapo_config(aepo=True, aepo_entropy_high=1.0, aepo_entropy_low=0.5)
    adv = torch.tensor([[1.0] * 2, [-1.0] * 2, [-0.5] * 2])
    mask = torch.ones(3, 2, dtype=torch.bool)
    logp_shift = torch.full((3, 2), 0.05)

    # entropy estimate = mean(-old_log_prob) = 2.0 > 1.0: gate opens, rows 1-2 (A<0) leave the loss
    old = torch.full((3, 2), -2.0)
    loss, grad, m = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, old + logp_shift, adv, mask, "token-mean", cfg)
    r = math.exp(0.05)
    assert loss.item() == pytest.approx(-r * 2 / 6, rel=1e-6)
    assert (grad[1:] == 0).all() and (grad[0] != 0).all()
    assert m["actor/qwenlong_aepo_masked_frac"] == pytest.approx(2 / 3)
    assert m["actor/qwenlong_aepo_active"] == 1.0
    assert m["actor/qwenlong_entropy_estimate"] == pytest.approx(2.0)

    # entropy 0.7 sits between the bounds: the gate stays open
    old = torch.full((3, 2), -0.7)
    _, grad, m = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, old + logp_shift, adv, mask, "token-mean", cfg)
    assert m["actor/qwenlong_aepo_active"] == 1.0 and (grad[1:] == 0).all()

    # entropy 0.2 < 0.5: gate closes, vanilla's numbers again
    old = torch.full((3, 2), -0.2)
    loss, grad, m = loss_and_grad(compute_policy_loss_qwenlong_dapo, old, old + logp_shift, adv, mask, "token-mean", cfg)
    want, _, _ = loss_and_grad(compute_policy_loss_vanilla, old, old + logp_shift, adv, mask, "token-mean", cfg)
    assert loss.item() == pytest.approx(want.item()) and m["actor/qwenlong_aepo_masked_frac"] == 0.0
    assert (grad != 0).all()


def test_options_validation_names_the_key():
    with pytest.raises(QwenLongConfigError, match="policy_loss.max_response_length"):
        QwenLongPolicyLossConfig(overlong_filter=True)
    with pytest.raises(QwenLongConfigError, match="aepo_entropy_high"):
        QwenLongPolicyLossConfig(aepo=True, aepo_entropy_low=0.1)
    with pytest.raises(QwenLongConfigError, match="aepo_entropy_low=0.9 is above"):
        QwenLongPolicyLossConfig(aepo=True, aepo_entropy_high=0.5, aepo_entropy_low=0.9)
    with pytest.raises(QwenLongConfigError, match="dual_clip"):
        DapoOptions.from_policy_loss({"dual_clip": "no"})
    assert DapoOptions.from_policy_loss(None) == DapoOptions()
    assert DapoOptions.from_policy_loss(PolicyLossConfig()) == DapoOptions()


def test_hydra_override_lines_build_our_config_the_way_verl_workers_do():
    """The documented overrides, composed on verl's own ppo_trainer config and instantiated like the actor worker."""
    from hydra import compose, initialize_config_module
    from verl.utils.config import omega_conf_to_dataclass

    overrides = [
        "actor_rollout_ref.actor.strategy=fsdp",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
        "data.max_response_length=77",
        f"actor_rollout_ref.actor.policy_loss.loss_mode={LOSS_NAME}",
        "actor_rollout_ref.actor.policy_loss._target_=qwenlong_verl.integration.policy_loss.QwenLongPolicyLossConfig",
        "+actor_rollout_ref.actor.policy_loss.overlong_filter=true",
        "+actor_rollout_ref.actor.policy_loss.max_response_length=${actor_rollout_ref.rollout.response_length}",
        "+actor_rollout_ref.actor.policy_loss.aepo=true",
        "+actor_rollout_ref.actor.policy_loss.aepo_entropy_high=0.6",
        "+actor_rollout_ref.actor.policy_loss.aepo_entropy_low=0.4",
        "+actor_rollout_ref.actor.policy_loss.dual_clip=false",
    ]
    with initialize_config_module("verl.trainer.config", version_base=None):
        cfg = compose("ppo_trainer", overrides=overrides)
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert isinstance(actor.policy_loss, QwenLongPolicyLossConfig)
    assert DapoOptions.from_policy_loss(actor.policy_loss) == DapoOptions(
        overlong_filter=True, max_response_length=77, dual_clip=False, aepo=True, aepo_entropy_high=0.6,
        aepo_entropy_low=0.4)
    assert get_policy_loss_fn(actor.policy_loss.loss_mode) is compute_policy_loss_qwenlong_dapo

    bad = [o for o in overrides if "max_response_length=" not in o]
    with initialize_config_module("verl.trainer.config", version_base=None):
        cfg = compose("ppo_trainer", overrides=bad)
    with pytest.raises(Exception, match="max_response_length"):
        omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)


def _aepo_rank(rank: int, world: int, port: int, queue) -> None:
    import torch.distributed as dist

    from qwenlong_verl.integration import policy_loss as loss_module

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        # rank 0 sees a low-entropy micro-batch, rank 1 a high-entropy one: alone, their gates would disagree
        old = torch.full((2, 4), -0.2 if rank == 0 else -2.0)
        mask = torch.ones(2, 4, dtype=torch.bool)
        entropy = loss_module.global_entropy(old, mask)
        queue.put((rank, round(entropy, 6), loss_module.AepoGate().update(entropy, high=1.0, low=0.5)))
    finally:
        dist.destroy_process_group()


def test_aepo_gate_agrees_across_data_parallel_ranks():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_aepo_rank, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    results = sorted(queue.get(timeout=10) for _ in procs)
    assert [r[1] for r in results] == [1.1, 1.1]  # (0.2 + 2.0) / 2 on both ranks
    assert [r[2] for r in results] == [True, True]
