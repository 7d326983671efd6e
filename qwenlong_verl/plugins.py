"""verl ``verl.plugins`` entry point: registers every qwenlong-verl plugin with verl's registries.

verl imports this module inside ``import verl`` in the driver and in every Ray worker, and drops any exception at
DEBUG level. So each plugin is imported in its own ``try`` block: one broken plugin never hides the others, every
failure is logged at ERROR, and ``qwenlong-verl doctor`` reads the record in :data:`STATUS`.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from dataclasses import dataclass

logger = logging.getLogger("qwenlong_verl")


@dataclass(frozen=True)
class PluginSpec:
    name: str  # the name users put in their config
    kind: str  # which verl registry it lands in
    module: str  # module whose import registers it
    config_key: str  # where a verl config selects it


PLUGINS: tuple[PluginSpec, ...] = (
    PluginSpec("cpu", "platform", "qwenlong_verl.cpu.platform", "VERL_PLATFORM=cpu (set by +qwenlong_env=cpu)"),
    PluginSpec("hf", "rollout", "qwenlong_verl.cpu.hf_rollout", "actor_rollout_ref.rollout.name"),
    PluginSpec("qwenlong", "reward_manager", "qwenlong_verl.reward.manager", "reward.reward_manager.name"),
    PluginSpec("qwenlong_grpo", "adv_estimator", "qwenlong_verl.algo.advantage", "algorithm.adv_estimator"),
    PluginSpec("qwenlong_dapo", "policy_loss", "qwenlong_verl.algo.policy_loss",
               "actor_rollout_ref.actor.policy_loss.loss_mode"),
    PluginSpec("qwenlong", "trainer_mode", "qwenlong_verl.sampling.trainer", "trainer.v1.trainer_mode"),
)


@dataclass
class PluginStatus:
    spec: PluginSpec
    loaded: bool
    error: str | None = None


STATUS: dict[tuple[str, str], PluginStatus] = {}


def load_all() -> dict[tuple[str, str], PluginStatus]:
    """Import every plugin module once; record and log failures instead of raising."""
    for spec in PLUGINS:
        key = (spec.kind, spec.name)
        if key in STATUS and STATUS[key].loaded:
            continue
        try:
            importlib.import_module(spec.module)
        except Exception as exc:  # noqa: BLE001 - recorded, logged, and reported by `doctor`
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            STATUS[key] = PluginStatus(spec, False, detail)
            logger.error("qwenlong-verl: plugin %s '%s' (%s) failed to load: %s", spec.kind, spec.name, spec.module,
                         detail)
        else:
            STATUS[key] = PluginStatus(spec, True)
    return STATUS


def failed() -> list[PluginStatus]:
    return [s for s in STATUS.values() if not s.loaded]


load_all()
