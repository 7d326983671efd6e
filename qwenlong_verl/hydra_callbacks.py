"""Hydra callback declared by every qwenlong recipe and overlay: checks that run in the driver before Ray starts.

verl's ``main_ppo`` validates its own config but knows nothing of ours, and a recipe whose plugins did not load
would fail late, inside a Ray worker, or not at all. ``on_job_start`` runs after composition and before verl's
``main``, so a problem here stops the run before any worker exists.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from qwenlong_verl.config import QwenLongConfigError

logger = logging.getLogger(__name__)


class QwenLongRunError(RuntimeError):
    """A qwenlong recipe cannot run as configured; the message says why and what to do."""


MULTIRUN_MESSAGE = (
    "qwenlong-verl: Hydra multirun (-m) is not supported with verl's main_ppo: it runs every job in one process, "
    "and verl keeps Ray and its named actors alive between jobs, so the second job collides with the first. "
    "Run one process per setting instead, e.g.\n"
    "  for lr in 1e-6 2e-6; do python -m verl.trainer.main_ppo +recipe=qwenlong_phase1 "
    "actor_rollout_ref.actor.optim.lr=$lr; done"
)


def plugin_problems(config: DictConfig | None = None) -> list[str]:
    """Why the verl plugins that ``config`` selects are unusable in this process ([] when they are fine).

    Without a config every plugin counts."""
    plugins = sys.modules.get("qwenlong_verl.plugins")
    if plugins is None:
        policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto")
        return [
            "qwenlong-verl's verl plugins were not loaded by `import verl` "
            f"(VERL_USE_EXTERNAL_PLUGINS={policy!r}; it must be 'auto' or list 'qwenlong'). "
            "Is qwenlong-verl installed in this Python (`pip install qwenlong-verl`)? Run `qwenlong-verl doctor`."
        ]
    return [
        f"{s.spec.config_key}={s.spec.name} selects the {s.spec.kind} plugin '{s.spec.name}', which failed to load: "
        f"{s.error}"
        for s in plugins.failed()
        if config is None or OmegaConf.select(config, s.spec.config_key, default=None) == s.spec.name
    ]


def check_lengths(config: DictConfig) -> None:
    """Prompt + response must fit the rollout's context window when one is set."""
    data = config.get("data", {})
    rollout = config.get("actor_rollout_ref", {}).get("rollout", {})
    prompt, response = data.get("max_prompt_length"), data.get("max_response_length")
    max_model_len = rollout.get("max_model_len")
    if max_model_len is not None and prompt is not None and response is not None and prompt + response > max_model_len:
        raise QwenLongConfigError(
            f"data.max_prompt_length ({prompt}) + data.max_response_length ({response}) = {prompt + response} exceeds "
            f"actor_rollout_ref.rollout.max_model_len ({max_model_len}); raise max_model_len (with YaRN past 32K: "
            "+qwenlong_rope=yarn) or lower the lengths"
        )


def _stop(message: str) -> None:
    """Hydra turns a callback's exceptions into warnings and goes on; SystemExit is the one way to stop the run."""
    logger.error(message)
    raise SystemExit(message)


class QwenLongGuard(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _stop(MULTIRUN_MESSAGE)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._check(config)
        except (QwenLongRunError, QwenLongConfigError) as exc:
            _stop(str(exc))

    def _check(self, config: DictConfig) -> None:
        qwenlong = config.get("qwenlong") or {}
        problems = plugin_problems(config)
        if problems:
            raise QwenLongRunError(
                "qwenlong-verl: the recipe needs this package's verl plugins, and they are not usable:\n  - "
                + "\n  - ".join(problems)
            )
        if qwenlong.get("backend") == "cpu":
            from qwenlong_verl.cpu.platform import use_cpu_platform

            # Ray workers inherit the driver's environment on a local cluster; the overlay also sets
            # ray_kwargs.ray_init.runtime_env.env_vars for clusters.
            use_cpu_platform()
        # verl's "file" logger writes relative to the TaskRunner's cwd; pin it to where the user started the run.
        os.environ.setdefault("VERL_FILE_LOGGER_ROOT", os.getcwd())
        check_lengths(config)
        # phase bounds, retrospective input file, schedule (the sampling subsystem owns these rules)
        from qwenlong_verl.sampling.options import validate_run_config

        validate_run_config(config)
