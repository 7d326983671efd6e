"""``qwenlong_dapo``: DAPO's clipped token-level policy loss, with overlong filtering and AEPO as options.

Select it with ``actor_rollout_ref.actor.policy_loss.loss_mode=qwenlong_dapo``. Per token, with ratio
``r = exp(log_prob - old_log_prob)`` (log-ratio clamped to [-20, 20]) and advantage ``A``::

    l = max(-A r, -A clip(r, 1 - clip_ratio_low, 1 + clip_ratio_high))      (clip-higher, DAPO)
    l = min(l, -A clip_ratio_c)          when A < 0 and dual_clip           (dual clip)
    loss = agg_loss(l, keep, loss_agg_mode, **global_batch_info)            (token-mean = DAPO's 1/sum|o_i|)

That part is verl's ``vanilla`` loss, which this function calls. What it adds is the mask ``keep``:

* overlong filtering (DAPO §3.4): responses that used all ``max_response_length`` tokens were truncated; their tokens
  leave ``keep``. verl gives the loss only ``response_mask`` (padded to the micro-batch's longest row), so a row is
  truncated when its last valid position is ``max_response_length - 1``. The loss cannot see the EOS token; a response
  ending in EOS at exactly the limit counts as truncated too.
* AEPO (QwenLong-L1.5): while the batch entropy is high, responses with a negative advantage leave ``keep``. The gate
  opens when the entropy rises above ``aepo_entropy_high`` and closes when it falls below ``aepo_entropy_low``
  (hysteresis; the state lives in each actor process). verl does not pass the entropy to a policy loss, so it is
  estimated as the mean of ``-old_log_prob`` over the micro-batch's response tokens: the tokens were sampled from that
  policy, so this is an unbiased estimate of the per-token entropy (nats) that verl logs as ``actor/entropy``.

Masked tokens stay in the normaliser: verl counts ``batch_num_tokens`` (and ``global_batch_size``) over the global
mini-batch before the loss sees it, so a masked response adds zero loss and the others keep their weight. Without
global info the same normaliser is rebuilt from the unmasked mask, so both paths agree.

Metrics (mean over micro-batches): ``actor/pg_clipfrac_low`` (A<0 and r < 1-clip_ratio_low) and
``actor/pg_clipfrac_high`` (A>0 and r > 1+clip_ratio_high), which sum to verl's ``actor/pg_clipfrac``;
with filtering ``actor/qwenlong_truncated_frac`` (share of responses masked as truncated); with AEPO
``actor/qwenlong_aepo_masked_frac``, ``actor/qwenlong_aepo_active`` and ``actor/qwenlong_entropy_estimate``.

Options. The loss receives only the actor config, a dataclass that rejects unknown keys and has no free-form slot,
and in the worker it has no link to the top-level ``qwenlong:`` block. verl builds ``policy_loss`` from its
``_target_``, so the options are fields of :class:`QwenLongPolicyLossConfig`, a subclass of verl's
``PolicyLossConfig``::

    # our recipes carry these keys (all off); ++ adds or overrides, so the same lines work on a plain verl config
    actor_rollout_ref.actor.policy_loss._target_=qwenlong_verl.integration.policy_loss.QwenLongPolicyLossConfig
    ++actor_rollout_ref.actor.policy_loss.overlong_filter=true
    ++actor_rollout_ref.actor.policy_loss.max_response_length=${actor_rollout_ref.rollout.response_length}
    ++actor_rollout_ref.actor.policy_loss.dual_clip=false
    ++actor_rollout_ref.actor.policy_loss.aepo=true
    ++actor_rollout_ref.actor.policy_loss.aepo_entropy_high=0.6
    ++actor_rollout_ref.actor.policy_loss.aepo_entropy_low=0.4

With plain ``PolicyLossConfig`` every option has its default (all extras off): the numbers are verl ``vanilla``'s.
The clip bounds are verl's ``actor_rollout_ref.actor.clip_ratio_low`` / ``clip_ratio_high`` (DAPO: 0.2 / 0.28).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import verl.utils.torch_functional as verl_F
from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla, register_policy_loss
from verl.workers.config import PolicyLossConfig

from qwenlong_verl.algorithm_options import DapoFields, DapoOptions

logger = logging.getLogger(__name__)

LOSS_NAME = "qwenlong_dapo"
@dataclass
class QwenLongPolicyLossConfig(PolicyLossConfig, DapoFields):
    """verl's ``PolicyLossConfig`` plus the ``qwenlong_dapo`` options (see :class:`DapoFields`)."""

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        DapoOptions.from_policy_loss(self)  # validate now: the driver builds this config before any worker starts


class AepoGate:
    """Hysteresis on the entropy: opens above ``high``, closes below ``low``, keeps its state in between."""

    def __init__(self) -> None:
        self.active = False

    def update(self, entropy: float, high: float, low: float) -> bool:
        if entropy > high:
            self.active = True
        elif entropy < low:
            self.active = False
        return self.active


# One gate per actor process: verl calls the loss once per micro-batch and gives it no step state. Every rank feeds
# it the same number (the entropy over all ranks' micro-batches, :func:`global_entropy`), so the ranks agree. The state
# is not in verl's checkpoint: after a resume the gate starts closed and reopens at the first micro-batch whose
# entropy is above ``aepo_entropy_high`` (between the bounds the first resumed micro-batches keep their negatives).
AEPO_GATE = AepoGate()


def global_entropy(old_log_prob: torch.Tensor, valid: torch.Tensor) -> float:
    """Token-mean of ``-old_log_prob`` over the valid tokens of this micro-batch on *every* data-parallel rank.

    Why global: each rank sees a different micro-batch, so a per-rank mean would let ranks disagree on the AEPO gate
    within one step. The all-reduce is safe: FSDP already makes every rank run the same number of micro-batches
    (verl balances dynamic micro-batches to the same count across the data-parallel group).

    Args:
        old_log_prob: ``(batch, response_len)`` log-probs of the sampled tokens under the rollout policy.
        valid: ``(batch, response_len)`` bool mask of response tokens.
    """
    stats = torch.stack([(-old_log_prob.detach().float() * valid).sum(), valid.sum().float()])
    if torch.distributed.is_available() and torch.distributed.is_initialized() and \
            torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(stats)
    return float(stats[0] / stats[1].clamp(min=1))


class _ConfigView:
    """The actor config with a few values replaced; ``compute_policy_loss_vanilla`` reads attributes and ``get``."""

    def __init__(self, base: Any, overrides: dict[str, Any]) -> None:
        self._base = base
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        overrides = self.__dict__["_overrides"]
        if name in overrides:
            return overrides[name]
        return getattr(self.__dict__["_base"], name)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._overrides:
            return self._overrides[key]
        getter = getattr(self._base, "get", None)
        return getter(key, default) if callable(getter) else getattr(self._base, key, default)


def truncated_rows(response_mask: torch.Tensor, max_response_length: int) -> torch.Tensor:
    """Rows whose last valid response position is ``max_response_length - 1`` (the rollout hit its budget)."""
    valid = response_mask.bool()
    if valid.shape[-1] < max_response_length:
        return torch.zeros(valid.shape[0], dtype=torch.bool, device=valid.device)
    positions = torch.arange(valid.shape[-1], device=valid.device)
    last = torch.where(valid, positions, torch.full_like(positions, -1)).amax(dim=-1)
    return last >= max_response_length - 1


def _unmasked_normaliser(global_batch_info: Mapping[str, Any], valid: torch.Tensor, loss_agg_mode: str) -> dict:
    """global_batch_info with the normaliser of the unmasked micro-batch filled in where verl left it unset."""
    info = dict(global_batch_info)
    if info.get("dp_size", 1) > 1:
        return info  # verl always sets the global counts when data-parallel; never substitute a local one
    if loss_agg_mode == "token-mean" and info.get("batch_num_tokens") is None:
        info["batch_num_tokens"] = valid.sum()
    if loss_agg_mode.startswith("seq-mean") and info.get("global_batch_size") is None:
        info["global_batch_size"] = valid.any(dim=-1).sum()
    return info


@register_policy_loss(LOSS_NAME)  # type: ignore[arg-type]
def compute_policy_loss_qwenlong_dapo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """DAPO clipped policy loss (formula in the module docstring); returns ``(pg_loss, pg_metrics)``."""
    if config is None:
        raise ValueError("qwenlong_dapo needs the actor config (verl passes config=ActorConfig)")
    opts = DapoOptions.from_policy_loss(config.get("policy_loss", None))

    valid = response_mask.bool()
    rows = valid.any(dim=-1)
    n_rows = max(int(rows.sum()), 1)
    keep = valid
    extra: dict[str, float] = {}

    if opts.overlong_filter:
        truncated = truncated_rows(valid, opts.max_response_length) & rows
        keep = keep & ~truncated.unsqueeze(-1)
        extra["actor/qwenlong_truncated_frac"] = float(truncated.sum()) / n_rows

    if opts.aepo:
        with torch.no_grad():
            entropy = global_entropy(old_log_prob, valid)
            active = AEPO_GATE.update(entropy, opts.aepo_entropy_high, opts.aepo_entropy_low)
            negative = rows & (verl_F.masked_mean(advantages.detach(), valid, axis=-1) < 0)
            masked = negative if active else torch.zeros_like(negative)
        keep = keep & ~masked.unsqueeze(-1)
        extra["actor/qwenlong_aepo_masked_frac"] = float(masked.sum()) / n_rows
        extra["actor/qwenlong_aepo_active"] = float(active)
        extra["actor/qwenlong_entropy_estimate"] = entropy

    overrides: dict[str, Any] = {}
    if not opts.dual_clip:
        overrides["clip_ratio_c"] = math.inf  # min(l, +inf) = l: the dual-clip branch never binds
    if keep is not valid:
        overrides["global_batch_info"] = _unmasked_normaliser(config.global_batch_info, valid, loss_agg_mode)
    loss_config = _ConfigView(config, overrides) if overrides else config

    pg_loss, pg_metrics = compute_policy_loss_vanilla(
        old_log_prob=old_log_prob,
        log_prob=log_prob,
        advantages=advantages,
        response_mask=keep,
        loss_agg_mode=loss_agg_mode,
        config=loss_config,
        rollout_is_weights=rollout_is_weights,
    )

    with torch.no_grad():
        clip_low = config.clip_ratio_low if config.clip_ratio_low is not None else config.clip_ratio
        clip_high = config.clip_ratio_high if config.clip_ratio_high is not None else config.clip_ratio
        # r < 1 - eps  <=>  log r < log(1 - eps): compare log-ratios, no second exp over the micro-batch
        log_ratio = log_prob.detach() - old_log_prob.detach()
        low = (advantages < 0) & (log_ratio < (math.log1p(-clip_low) if clip_low < 1 else -math.inf))
        high = (advantages > 0) & (log_ratio > math.log1p(clip_high))
        pg_metrics["actor/pg_clipfrac_low"] = float(verl_F.masked_mean(low.float(), keep))
        pg_metrics["actor/pg_clipfrac_high"] = float(verl_F.masked_mean(high.float(), keep))
    pg_metrics.update(extra)
    return pg_loss, pg_metrics
