"""The ``qwenlong`` V1 trainer mode: verl's synchronous PPO trainer plus the QwenLong-L1 hooks.

Registered as ``trainer.v1.trainer_mode=qwenlong``. verl compares ``self.trainer_mode == "sync"`` in many places
(replay buffer class, gen_batch_size, checkpointing, prompt submission); a registered name other than "sync" would get
async semantics. So the attribute always reads "sync" and the registry name only picks this class.
"""

from __future__ import annotations

import logging

from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from qwenlong_verl import telemetry

logger = logging.getLogger(__name__)

TRAINER_MODE = "qwenlong"


@register_trainer(TRAINER_MODE)
class QwenLongTrainer(PPOTrainerSync):
    # PPOTrainer.__init__ assigns config.trainer.v1.trainer_mode; keep verl's sync code paths.
    trainer_mode = property(lambda self: "sync", lambda self, value: None)

    def _step_once(self, metrics: dict, timing_raw: dict, sample_batch_size: int):
        batch = super()._step_once(metrics, timing_raw, sample_batch_size)
        metrics.update(self._telemetry_metrics())
        return batch

    def _telemetry_metrics(self) -> dict[str, float]:
        """Drain the reward workers' per-sample records and turn them into step metrics."""
        try:
            records = telemetry.drain()
        except Exception as exc:  # noqa: BLE001 - metrics must never stop training
            logger.warning("qwenlong: telemetry drain failed: %s", exc)
            return {}
        train = [r for r in records if not r.get("validate", False)]
        out: dict[str, float] = {"qwenlong/scored_samples": float(len(train))}
        try:
            from qwenlong_verl.reward.metrics import judge_step_metrics
        except ImportError:
            return out
        out.update(judge_step_metrics(train))
        return out
