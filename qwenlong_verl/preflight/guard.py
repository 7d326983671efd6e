"""What the recipes' Hydra guard checks in the driver, after composition and before verl's ``main`` starts Ray.

verl's ``main_ppo`` validates its own config but knows nothing of ours, and a recipe whose plugins did not load would
fail late, inside a Ray worker, or not at all. :func:`guard_checks` raises before any worker exists.

The Hydra callback that calls it (:class:`qwenlong_verl.hydra.callbacks.QwenLongGuard`) is handed this function by
name in the recipes' YAML (``checks: qwenlong_verl.preflight.guard.guard_checks``) instead of importing it: the
Hydra glue sits below ``preflight`` (``run_preflight`` composes with :mod:`qwenlong_verl.hydra.compose`), and an
import back up would make the two folders a loop.
"""

from __future__ import annotations

import logging
import os
import sys

from omegaconf import DictConfig, OmegaConf

from qwenlong_verl.hydra.callbacks import QwenLongRunError

logger = logging.getLogger(__name__)


def plugin_problems(config: DictConfig | None = None) -> list[str]:
    """Why the verl plugins that ``config`` selects are unusable in this process ([] when they are fine).

    Reads ``sys.modules`` instead of importing the wing's plugin module: ``import verl`` (run by ``main_ppo`` before
    the guard) loads it through verl's entry point, and importing it here would load it and hide that failure.

    Args:
        config: The composed run config; without one every plugin counts.

    Returns:
        One message per unusable plugin, each naming the config key that selects it and the fix.
    """
    plugins = sys.modules.get("qwenlong_verl.integration.plugins")
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


def check_judge_reachable(config: DictConfig) -> None:
    """An active judge answers one request (else the run would silently be rule-only); QWENLONG_JUDGE_PROBE=0 skips."""
    from qwenlong_verl.config_checks import probe_judge

    probe_judge(config)


def guard_checks(config: DictConfig) -> None:
    """Every check of the driver, cheapest first; the judge probe (one request) last.

    Args:
        config: The composed run config (``main_ppo``'s or ``sft_trainer``'s).

    Raises:
        QwenLongRunError: the plugins the config selects did not load, or the run would fail on the GPU workers or
            the TaskRunner; the message lists each problem and its fix.
        qwenlong_verl.config.QwenLongConfigError: a ``qwenlong.*`` option is unknown, mistyped or out of range, or
            the active judge does not answer.
    """
    qwenlong = config.get("qwenlong") or {}
    problems = plugin_problems(config)
    if problems:
        raise QwenLongRunError(
            "qwenlong-verl: the recipe needs this package's verl plugins, and they are not usable:\n  - "
            + "\n  - ".join(problems)
        )
    if qwenlong.get("backend") == "cpu":
        from qwenlong_verl.integration.cpu_platform import use_cpu_platform

        # Ray workers inherit the driver's environment on a local cluster; the overlay also sets
        # ray_kwargs.ray_init.runtime_env.env_vars for clusters.
        use_cpu_platform()
    from qwenlong_verl.ray_cluster import ADDRESS_KEY, avoid_stale_cluster

    avoid_stale_cluster(OmegaConf.select(config, ADDRESS_KEY, default=None))  # a dead ray_current_cluster
    # verl's "file" logger writes relative to the TaskRunner's cwd; pin it to where the user started the run.
    os.environ.setdefault("VERL_FILE_LOGGER_ROOT", os.getcwd())
    # Every qwenlong.* option (known, typed, in range), our sampling rules, and the GPU layout checks verl makes
    # only on its workers (heads vs SP, token budgets, max_model_len vs the model's positions and YaRN, TP),
    # files, cluster paths, loggers: milliseconds here
    # instead of a crash minutes into the job. `qwenlong-verl preflight` runs these and verl's own validation.
    from qwenlong_verl.preflight.all_checks import driver_findings

    findings = driver_findings(config)
    for f in findings:
        if f.level == "warning":
            logger.warning("qwenlong-verl preflight: %s", f.line())
    bad = [f for f in findings if f.level == "error"]
    if bad:
        raise QwenLongRunError(
            "qwenlong-verl: this run would fail on the GPU workers or the TaskRunner:\n  - "
            + "\n  - ".join(f.line() for f in bad)
            + "\n(`qwenlong-verl preflight <the same overrides>` runs every check, verl's own included)")
    check_judge_reachable(config)  # last: one request, after every check that needs no network
