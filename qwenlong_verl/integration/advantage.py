"""``qwenlong_grpo``: GRPO group-relative advantages, with QwenLong-L1.5's per-task std as an option.

Select it with ``algorithm.adv_estimator=qwenlong_grpo``. For an outcome reward ``R_i = sum_t r_{i,t}``, prompt group
``g(i)`` (verl's ``uid``) and task ``k(i)`` (the row's ``data_source``)::

    std_scope=group (default, = verl ``grpo``):  A_i = (R_i - mean_g(R)) / (std_g(R) + eps)
    std_scope=task  (QwenLong-L1.5):            A_i = (R_i - mean_g(R)) / (std_k(R) + eps)
    norm_adv_by_std_in_grpo=false (Dr.GRPO):    A_i =  R_i - mean_g(R)

``std`` is the unbiased sample std (as verl's), ``std_k`` runs over every response of task ``k`` in the batch. ``A_i``
is broadcast over the response tokens (times ``response_mask``). Safe cases, as in verl: a group with one response
has mean 0 and std 1 (``A_i = R_i / (1 + eps)``), and a zero-variance group or task gives ``A = 0``.

Options (``qwenlong.advantage.*``; verl's ``algorithm`` node rejects unknown keys, so they live in the package block):

* ``std_scope``: ``group`` | ``task`` — ``+qwenlong.advantage.std_scope=task``.
* ``epsilon``: the ``eps`` above, default 1e-6 — ``+qwenlong.advantage.epsilon=1e-6``.
* ``algorithm.norm_adv_by_std_in_grpo`` (verl's key): std on or off. verl passes it to its own ``grpo`` but not to a
  registered estimator, so it is read from the ``config`` node verl does pass.

verl calls a registered estimator with ``config=<the algorithm node>`` and no ``data_source``. The ``algorithm`` node
is a child of the full trainer config, so the ``qwenlong:`` block is reached through its root. The task labels come
from the trainer: :class:`qwenlong_verl.integration.trainer_hooks.AlgoTrainerMixin` reads ``data_source`` per ``uid`` and
hands it over with :func:`task_labels` around verl's ``_compute_advantage``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, register_adv_est

from qwenlong_verl.algorithm_options import STD_SCOPES, AdvantageOptions  # noqa: F401 - re-exported
from qwenlong_verl.config import QwenLongConfigError, options_from, qwenlong_section

logger = logging.getLogger(__name__)

ESTIMATOR_NAME = "qwenlong_grpo"
def _config_root(config: Any) -> Any:
    """The full trainer config above ``config`` (verl hands the estimator only its ``algorithm`` node)."""
    if isinstance(config, DictConfig):
        try:
            return config._get_root()
        except Exception:  # noqa: BLE001 - a detached node is its own root
            return config
    return config


def advantage_options(config: Any) -> AdvantageOptions:
    """Options from ``qwenlong.advantage`` of the config tree ``config`` belongs to (defaults when absent)."""
    return options_from(AdvantageOptions, qwenlong_section(_config_root(config), "advantage"), "qwenlong.advantage")


def _norm_by_std(config: Any) -> bool:
    if config is None:
        return True
    getter = getattr(config, "get", None)
    value = getter("norm_adv_by_std_in_grpo", True) if callable(getter) else getattr(
        config, "norm_adv_by_std_in_grpo", True)
    return bool(value)


# uid -> task label for the batch being processed; set by the trainer around verl's _compute_advantage.
_TASK_LABELS: ContextVar[Mapping[str, str] | None] = ContextVar("qwenlong_task_labels", default=None)

# Per-task statistics of the last task-scope call, for the trainer's step metrics.
_LAST_TASK_STATS: dict[str, dict[str, float]] = {}


@contextmanager
def task_labels(uid_to_task: Mapping[str, str]) -> Iterator[None]:
    """Make ``uid -> data_source`` visible to ``qwenlong_grpo`` calls inside the block."""
    token = _TASK_LABELS.set(dict(uid_to_task))
    try:
        yield
    finally:
        _TASK_LABELS.reset(token)


def last_task_stats() -> dict[str, dict[str, float]]:
    """``{task: {"std": ..., "count": ...}}`` of the most recent task-scope call (empty before one)."""
    return {k: dict(v) for k, v in _LAST_TASK_STATS.items()}


def _row_tasks(index: np.ndarray, explicit: Sequence[str] | np.ndarray | None) -> list[str]:
    bsz = len(index)
    if explicit is not None:
        if len(explicit) != bsz:
            raise ValueError(f"qwenlong_grpo: {len(explicit)} task labels for {bsz} rows")
        return [str(t) for t in explicit]
    labels = _TASK_LABELS.get()
    if labels is None:
        raise QwenLongConfigError(
            "qwenlong.advantage.std_scope=task needs each row's data_source, which verl does not pass to an "
            "advantage estimator; run with trainer.v1.trainer_mode=qwenlong (its trainer supplies the labels) or "
            "set qwenlong.advantage.std_scope=group"
        )
    missing = [str(u) for u in dict.fromkeys(index) if u not in labels]
    if missing:
        raise ValueError(f"qwenlong_grpo: no task label for uid(s) {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}")
    return [str(labels[u]) for u in index]


@register_adv_est(ESTIMATOR_NAME)
def compute_qwenlong_grpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    epsilon: float | None = None,
    norm_adv_by_std_in_grpo: bool | None = None,
    task_labels: Sequence[str] | np.ndarray | None = None,
    std_scope: str | None = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-relative advantages (see the module docstring for the formulas). Returns ``(advantages, returns)``.

    ``norm_adv_by_std_in_grpo``, ``epsilon`` and ``std_scope`` default to ``config`` / ``qwenlong.advantage``;
    ``task_labels`` (one per row) overrides the labels the trainer supplies.
    """
    if index is None:
        raise ValueError("qwenlong_grpo needs the prompt-group index (verl's 'uid' field) and got none")
    if token_level_rewards.dim() != 2 or token_level_rewards.shape != response_mask.shape:
        raise ValueError(f"qwenlong_grpo: token_level_rewards {tuple(token_level_rewards.shape)} and response_mask "
                         f"{tuple(response_mask.shape)} must be the same (batch, response_length) shape")
    if len(index) != token_level_rewards.shape[0]:
        raise ValueError(f"qwenlong_grpo: index has {len(index)} entries for {token_level_rewards.shape[0]} rows")

    opts = advantage_options(config)
    eps = opts.epsilon if epsilon is None else epsilon
    norm = _norm_by_std(config) if norm_adv_by_std_in_grpo is None else bool(norm_adv_by_std_in_grpo)
    scope = opts.std_scope if std_scope is None else std_scope
    if scope not in STD_SCOPES:
        raise QwenLongConfigError(f"qwenlong_grpo: std_scope={scope!r}; expected one of {', '.join(STD_SCOPES)}")

    if scope == "group":
        # Same numbers as verl's `grpo`: call it rather than restate it.
        return compute_grpo_outcome_advantage(
            token_level_rewards, response_mask, index, epsilon=eps, norm_adv_by_std_in_grpo=norm
        )
    if not norm:
        raise QwenLongConfigError(
            "qwenlong.advantage.std_scope=task divides by a per-task std, but algorithm.norm_adv_by_std_in_grpo=false "
            "turns std normalisation off; drop one of the two"
        )

    # Centre on the group mean with verl's own code (singleton groups: mean 0), then divide by the task std.
    centered, _ = compute_grpo_outcome_advantage(
        token_level_rewards, response_mask, index, epsilon=eps, norm_adv_by_std_in_grpo=False
    )
    tasks = _row_tasks(index, task_labels)
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        _, group_of, group_size = np.unique(np.asarray(index, dtype=object).astype(str), return_inverse=True,
                                            return_counts=True)
        task_names, task_of = np.unique(np.asarray(tasks, dtype=str), return_inverse=True)
        task_of_group = np.full(len(group_size), -1)
        task_of_group[group_of] = task_of
        mixed = np.flatnonzero(task_of_group[group_of] != task_of)
        if mixed.size:
            i = int(mixed[0])
            other = task_names[task_of_group[group_of[i]]]
            raise ValueError(f"qwenlong_grpo: prompt group {index[i]!r} mixes tasks {other!r} and {tasks[i]!r}")
        task_std = torch.ones(len(task_names), dtype=scores.dtype)
        _LAST_TASK_STATS.clear()
        for k, task in enumerate(task_names):  # a handful of tasks: a loop over them, not over rows
            rows = torch.from_numpy(np.flatnonzero(task_of == k))
            if len(rows) > 1:
                task_std[k] = torch.std(scores[rows])
            _LAST_TASK_STATS[str(task)] = {"std": float(task_std[k]), "count": float(len(rows))}
        row_std = task_std[torch.from_numpy(task_of)]
        # A one-response group keeps verl's std of 1, whatever its task's spread.
        row_std[torch.from_numpy(group_size[group_of] == 1)] = 1.0
        advantages = centered / (row_std.to(centered.device, centered.dtype) + eps).unsqueeze(-1)
    return advantages, advantages
