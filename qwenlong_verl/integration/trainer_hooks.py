"""What ``qwenlong_grpo`` needs from the V1 trainer: each row's task label, and its per-task metrics.

verl calls a registered advantage estimator with rewards, mask, ``uid`` and the ``algorithm`` config only, so the
per-task std (``qwenlong.advantage.std_scope=task``) cannot see ``data_source``. The agent loop stores every dataset
field per trajectory in TransferQueue, so a trainer can read ``uid`` and ``data_source`` for the batch and hand them to
the estimator (same process) with :func:`qwenlong_verl.integration.advantage.task_labels`. Put :class:`AlgoTrainerMixin`
before verl's trainer class in the bases::

    class QwenLongTrainer(AlgoTrainerMixin, PPOTrainerSync): ...

With ``std_scope=group`` (the default) or another estimator the mixin does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from qwenlong_verl.integration.advantage import ESTIMATOR_NAME, advantage_options, last_task_stats, task_labels
from qwenlong_verl.integration.batch_fields import batch_fields

logger = logging.getLogger(__name__)

TASK_FIELD = "data_source"


def task_std_metrics(stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """``qwenlong/adv_task_std/<task>`` and ``qwenlong/adv_task_count/<task>`` from the estimator's last call."""
    out: dict[str, float] = {}
    for task, s in stats.items():
        out[f"qwenlong/adv_task_std/{task}"] = s["std"]
        out[f"qwenlong/adv_task_count/{task}"] = s["count"]
    return out


class AlgoTrainerMixin:
    """Supplies ``data_source`` per ``uid`` to ``qwenlong_grpo`` when it normalises by per-task std."""

    config: Any

    def _uses_task_std(self) -> bool:
        algorithm = self.config.algorithm
        return algorithm.get("adv_estimator") == ESTIMATOR_NAME and advantage_options(algorithm).std_scope == "task"

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        if not self._uses_task_std():
            return super()._compute_advantage(batch, metrics)  # type: ignore[misc]
        data = batch_fields(batch, ["uid", TASK_FIELD])
        uids = [str(u) for u in data["uid"]]
        tasks = [str(t) for t in data[TASK_FIELD]]
        labels: dict[str, str] = {}
        for key, uid, task in zip(batch.keys, uids, tasks, strict=True):
            if labels.setdefault(uid, task) != task:
                raise ValueError(f"qwenlong: prompt group {uid!r} (row {key}) has data_source {task!r} and "
                                 f"{labels[uid]!r}")
        with task_labels(labels):
            out = super()._compute_advantage(batch, metrics)  # type: ignore[misc]
        metrics.update(task_std_metrics(last_task_stats()))
        return out
