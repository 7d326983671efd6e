"""Hydra callback declared by every qwenlong recipe and overlay: the driver's guard before Ray starts.

verl's ``main_ppo`` validates its own config but knows nothing of ours, and a recipe whose plugins did not load
would fail late, inside a Ray worker, or not at all. ``on_job_start`` runs after composition and before verl's
``main``, so a problem here stops the run before any worker exists.

This module holds the Hydra side: refusing a multirun launcher that shares one process between jobs, a sweep job's
status file, and stopping the run (Hydra turns a callback's exceptions into warnings). The checks themselves are the
callable the recipes name in ``checks:`` (``qwenlong_verl.preflight.guard.guard_checks``): ``preflight`` imports this
package (``run_preflight`` composes through :mod:`qwenlong_verl.hydra.compose`), so this package names it in the
config instead of importing it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from qwenlong_verl.config import QwenLongConfigError
from qwenlong_verl.hydra.sweep import register_resolver

register_resolver()  # ${qwenlong.job_dir:...} of the recipes (also registered by Hydra's plugin scan)

logger = logging.getLogger(__name__)

GUARD_CHECKS = "qwenlong_verl.preflight.guard.guard_checks"  # what the recipes give as `checks:`


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


def _stop(message: str) -> None:
    """Hydra turns a callback's exceptions into warnings and goes on; SystemExit is the one way to stop the run."""
    logger.error(message)
    from qwenlong_verl.hydra import sweep

    sweep.job_finished("failed", message)  # a sweep job: its status file says why (no-op in a single run)
    sweep.report_failure_to_submitit(message)  # the launcher sees the failure without sacct (no-op elsewhere)
    raise SystemExit(message)


class QwenLongGuard(Callback):
    """The recipes' callback (``hydra.callbacks.qwenlong_guard``).

    Args:
        checks: dotted name of the function run on the composed config in ``on_job_start``
            (``qwenlong_verl.preflight.guard.guard_checks``); it raises :class:`QwenLongRunError` or
            ``QwenLongConfigError`` to stop the run with its message.
    """

    def __init__(self, checks: str | None = None) -> None:
        if not checks:
            raise QwenLongRunError(
                "qwenlong-verl: hydra.callbacks.qwenlong_guard has no `checks:`; the guard would let the run start "
                f"unchecked. Add `checks: {GUARD_CHECKS}` under the callback's `_target_` in your YAML (the "
                "package's recipes carry it).")
        from hydra.utils import get_method

        try:
            self.checks: Callable[[DictConfig], Any] = get_method(checks)
        except Exception as exc:  # noqa: BLE001 - Hydra's error names the module it could not import
            raise QwenLongRunError(
                f"qwenlong-verl: hydra.callbacks.qwenlong_guard.checks={checks!r} does not name a function "
                f"({type(exc).__name__}: {exc}); the recipes use {GUARD_CHECKS}.") from exc

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from qwenlong_verl.hydra import sweep

        why = sweep.shared_process_reason(config)  # isolating launchers (submitit) pass
        if why:
            _stop(MULTIRUN_MESSAGE.format(why=why))
        problem = sweep.launcher_problem(config)
        if problem:
            _stop(problem)

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        from qwenlong_verl.hydra import sweep

        sweep.job_ended(job_return)  # a sweep job's status file: completed, or failed with its error

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from qwenlong_verl.hydra import sweep

        sweep.job_started(config)  # a sweep job: its own folder for checkpoints, metrics and status (else no-op)
        try:
            self.checks(config)
        except (QwenLongRunError, QwenLongConfigError) as exc:
            _stop(str(exc))
        except Exception as exc:  # noqa: BLE001 - Hydra would turn it into a warning and start the run unchecked
            logger.exception("qwenlong-verl: the start-up checks crashed")
            _stop(f"qwenlong-verl: the start-up checks crashed ({type(exc).__name__}: {exc}); the run was not "
                  "started unchecked. This is a qwenlong-verl bug: please report it with the traceback above.")
