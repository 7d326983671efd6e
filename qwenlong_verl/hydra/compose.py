"""``main_ppo``'s config, composed without running it: verl's ``ppo_trainer`` plus this package's recipes.

The code is plain Hydra, so it belongs to the core: ``preflight`` and the pipeline's data stage check the composed
config, and ``doctor`` composes every recipe. It lived in the verl-facing wing before, which made those core modules
import the wing for plain Hydra work. This module imports no verl and loads without it; *calling* it reads verl's
packaged YAML by module name (``pkg://verl.trainer.config``), and Hydra's lookup imports that package, so ``verl`` and,
through its entry point, this package's plugins are loaded as a side effect, exactly as in ``main_ppo`` itself.
"""

from __future__ import annotations

import hydra
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from qwenlong_verl.hydra.searchpath import ensure_searchpath_plugin

MAIN_PPO_CONFIG_MODULE = "verl.trainer.config"  # the YAML package main_ppo's @hydra.main reads
MAIN_PPO_CONFIG_NAME = "ppo_trainer"


def compose_main_ppo(overrides: list[str]) -> DictConfig:
    """The config ``python -m verl.trainer.main_ppo <overrides>`` would run with.

    Hydra's global state is cleared before and after, so a caller inside another Hydra app (or a test that composed
    before) gets a clean composition.

    Args:
        overrides: Hydra overrides as on main_ppo's command line, e.g. ``["+recipe=qwenlong_phase1",
            "actor_rollout_ref.model.path=/models/Qwen2.5-7B"]``.

    Returns:
        The composed config (interpolations unresolved, as main_ppo receives it).

    Raises:
        hydra.errors.HydraException: (and OmegaConf's errors) for an override that does not apply; the message names
            the key.
    """
    ensure_searchpath_plugin()  # editable installs: Hydra's scan misses the plugin
    GlobalHydra.instance().clear()
    try:
        with hydra.initialize_config_module(config_module=MAIN_PPO_CONFIG_MODULE, version_base=None):
            return hydra.compose(config_name=MAIN_PPO_CONFIG_NAME, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()
