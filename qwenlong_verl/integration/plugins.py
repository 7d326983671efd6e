"""verl ``verl.plugins`` entry point: registers every qwenlong-verl plugin with verl's registries.

verl imports this module inside ``import verl`` in the driver and in every Ray worker, and drops any exception at
DEBUG level. So each plugin is imported in its own ``try`` block: one broken plugin never hides the others, every
failure is logged at ERROR, and ``qwenlong-verl doctor`` reads the record in :data:`STATUS`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import sys
import traceback
from dataclasses import dataclass

from qwenlong_verl.hydra.searchpath import (  # noqa: F401 - searchpath_plugin_discovered: for doctor
    SEARCHPATH_MODULE,
    ensure_searchpath_plugin,
    searchpath_plugin_discovered,
)

logger = logging.getLogger("qwenlong_verl")


@dataclass(frozen=True)
class PluginSpec:
    name: str  # the name users put in their config
    kind: str  # which verl registry it lands in
    module: str  # module whose import registers it
    config_key: str  # the verl config key whose value selects it


PLUGINS: tuple[PluginSpec, ...] = (
    PluginSpec("cpu", "platform", "qwenlong_verl.integration.cpu_platform", "qwenlong.backend"),
    PluginSpec("hf", "rollout", "qwenlong_verl.integration.cpu_rollout", "actor_rollout_ref.rollout.name"),
    PluginSpec("qwenlong", "reward_manager", "qwenlong_verl.integration.reward_manager", "reward.reward_manager.name"),
    PluginSpec("qwenlong_grpo", "adv_estimator", "qwenlong_verl.integration.advantage", "algorithm.adv_estimator"),
    PluginSpec("qwenlong_dapo", "policy_loss", "qwenlong_verl.integration.policy_loss",
               "actor_rollout_ref.actor.policy_loss.loss_mode"),
    PluginSpec("qwenlong", "trainer_mode", "qwenlong_verl.integration.trainer_mode", "trainer.v1.trainer_mode"),
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


_RECIPE_ARG = re.compile(r"^\+{0,2}(recipe|qwenlong_env|sft_recipe)=(\S+)$")


def check_recipe_args(argv: list[str]) -> str | None:
    """The driver-side guard for a missing Hydra search-path plugin.

    Without it Hydra accepts ``+recipe=qwenlong_phase2`` as a plain string key and verl trains with its defaults.
    This runs when ``import verl`` loads the plugins in a verl entry point, before Hydra parses the command line;
    it returns the error message, or None when all is well.
    """
    asked = [m.group(0) for a in argv[1:] if (m := _RECIPE_ARG.match(a)) and m.group(2).startswith(("qwenlong", "cpu"))]
    if not asked:
        return None
    if ensure_searchpath_plugin():
        return None
    return (
        f"qwenlong-verl: {' '.join(asked)} needs the Hydra search-path plugin {SEARCHPATH_MODULE}, which this Python "
        "cannot import, so Hydra would take the recipe for a plain string and verl would train with its defaults. "
        "Reinstall the package (`pip install qwenlong-verl`) or pass "
        "'hydra.searchpath=[pkg://qwenlong_verl.hydra_configs]'."
    )


def _verl_hydra_entry_args() -> list[str] | None:
    """The command-line overrides when this process is ``python -m verl.trainer.{main_ppo,sft_trainer}`` (or the
    script itself), else None. ``sys.orig_argv`` because ``python -m`` imports verl before it fills ``sys.argv[0]``."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    for i, arg in enumerate(argv):
        if arg == "-m" and i + 1 < len(argv) and argv[i + 1] in ("verl.trainer.main_ppo", "verl.trainer.sft_trainer"):
            return argv[i + 1:]
        if arg.replace("\\", "/").endswith(("verl/trainer/main_ppo.py", "verl/trainer/sft_trainer.py")):
            return argv[i:]
    return None


load_all()
try:  # ${qwenlong.job_dir:...} (the recipes' checkpoint folder) resolves in verl's Ray workers too
    from qwenlong_verl.hydra.sweep import register_resolver

    register_resolver()
except Exception:  # noqa: BLE001 - never let it hide the plugins
    logger.exception("qwenlong-verl: could not register the ${qwenlong.job_dir:...} resolver")

_entry_args = _verl_hydra_entry_args()
if _entry_args and not any(a.startswith("hydra.searchpath") for a in _entry_args):
    _message = check_recipe_args(_entry_args)
    if _message:
        logger.error(_message)
        # SystemExit passes verl's `except Exception` around entry-point loading: stop before Ray starts.
        raise SystemExit(_message)
