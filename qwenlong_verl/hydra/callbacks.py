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
from qwenlong_verl.sweep import register_resolver

register_resolver()  # ${qwenlong.job_dir:...} of the recipes (also registered by Hydra's plugin scan)

logger = logging.getLogger(__name__)


class QwenLongRunError(RuntimeError):
    """A qwenlong recipe cannot run as configured; the message says why and what to do."""


MULTIRUN_MESSAGE = (
    "qwenlong-verl: Hydra multirun (-m) needs a launcher that runs every job in its own process: {why}, and verl "
    "keeps Ray and its named actors alive between jobs of one process, so the second job would collide with the "
    "first. Add +qwenlong_sweep=local (one job at a time on this machine, hydra-submitit-launcher) or "
    "+qwenlong_sweep=slurm (one SLURM job per point), or pick hydra/launcher=submitit_local, e.g.\n"
    "  python -m verl.trainer.main_ppo -m +recipe=qwenlong_phase1 +qwenlong_sweep=local "
    "actor_rollout_ref.actor.optim.lr=1e-6,2e-6"
)


def plugin_problems(config: DictConfig | None = None) -> list[str]:
    """Why the verl plugins that ``config`` selects are unusable in this process ([] when they are fine).

    Without a config every plugin counts."""
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


def _stop(message: str) -> None:
    """Hydra turns a callback's exceptions into warnings and goes on; SystemExit is the one way to stop the run."""
    logger.error(message)
    from qwenlong_verl import sweep

    sweep.job_finished("failed", message)  # a sweep job: its status file says why (no-op in a single run)
    sweep.report_failure_to_submitit(message)  # the launcher sees the failure without sacct (no-op elsewhere)
    raise SystemExit(message)


class QwenLongGuard(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from qwenlong_verl import sweep

        why = sweep.shared_process_reason(config)  # isolating launchers (submitit) pass
        if why:
            _stop(MULTIRUN_MESSAGE.format(why=why))
        problem = sweep.launcher_problem(config)
        if problem:
            _stop(problem)

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        from qwenlong_verl import sweep

        sweep.job_ended(job_return)  # a sweep job's status file: completed, or failed with its error

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from qwenlong_verl import sweep

        sweep.job_started(config)  # a sweep job: its own folder for checkpoints, metrics and status (else no-op)
        try:
            self._check(config)
        except (QwenLongRunError, QwenLongConfigError) as exc:
            _stop(str(exc))
        except Exception as exc:  # noqa: BLE001 - Hydra would turn it into a warning and start the run unchecked
            logger.exception("qwenlong-verl: the start-up checks crashed")
            _stop(f"qwenlong-verl: the start-up checks crashed ({type(exc).__name__}: {exc}); the run was not "
                  "started unchecked. This is a qwenlong-verl bug: please report it with the traceback above.")

    def _check(self, config: DictConfig) -> None:
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
