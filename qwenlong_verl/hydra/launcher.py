"""``hydra/launcher=qwenlong_submitit_local`` (selected by ``+qwenlong_sweep=local``): hydra-submitit-launcher's
``submitit_local``, each job a process of its own (its own Ray, its own named actors), with two changes for verl jobs
on one machine:

- at most ``max_parallel`` jobs run at once (default 1). ``submitit_local`` starts every point of the sweep at once,
  and several verl jobs on one machine compete for its GPUs (and the CPU RAM of offloading); Hydra's
  ``hydra.sweeper.max_batch_size`` would serialise them but stops the sweep at the first failed point;
- a job that fails (an exception in verl, the recipe's start-up checks refusing it, a killed process) comes back as a
  failed job after the other points have run; Hydra then reports it and exits non-zero.

Everything else (the subprocess per job, its logs in ``<sweep dir>/.submitit/``, timeouts) is submitit's.

Hydra instantiates a launcher only from a class whose module lies under the top-level ``hydra_plugins`` package (and
that its plugin scan found there), so ``hydra_plugins/qwenlong_verl_searchpath/qwenlong_sweep_plugins.py`` declares
the class Hydra names (:data:`~qwenlong_verl.hydra.sweep.QWENLONG_LOCAL_LAUNCHER`) as an empty subclass of
:class:`BoundedLocalLauncher` and calls :func:`register_config`; the behaviour lives here, where it is tested like
the rest of the package.
"""

# No `from __future__ import annotations`: OmegaConf reads the field types of the structured config below.
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher
from omegaconf import open_dict

from qwenlong_verl.hydra import sweep

logger = logging.getLogger(__name__)

LAUNCHER_NAME = "qwenlong_submitit_local"  # hydra/launcher=<this>


@dataclass
class QwenLongLocalQueueConf(LocalQueueConf):
    """``submitit_local``'s options, plus how many jobs may run at once."""

    _target_: str = sweep.QWENLONG_LOCAL_LAUNCHER
    max_parallel: int = 1  # jobs running at once on this machine


def register_config() -> None:
    """Store ``hydra/launcher=qwenlong_submitit_local`` in Hydra's config store (idempotent: a later store of the
    same name replaces the node)."""
    ConfigStore.instance().store(group="hydra/launcher", name=LAUNCHER_NAME, node=QwenLongLocalQueueConf,
                                 provider="qwenlong-verl")


class BoundedLocalLauncher(LocalLauncher):
    """``submitit_local`` running at most ``max_parallel`` jobs at a time, a failed job reported as a failed
    ``JobReturn`` (with its status file written) instead of ending the sweep."""

    def __init__(self, max_parallel: int = 1, **params: Any) -> None:
        super().__init__(**params)
        self.max_parallel = max(1, int(max_parallel))

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        jobs = [(list(o), initial_job_idx + i) for i, o in enumerate(job_overrides)]
        logger.info("qwenlong-verl: %d sweep jobs, at most %d at a time, each in its own process", len(jobs),
                    self.max_parallel)
        if self.max_parallel == 1:
            return [self._launch_one(o, idx) for o, idx in jobs]
        with ThreadPoolExecutor(self.max_parallel) as pool:
            return list(pool.map(lambda job: self._launch_one(*job), jobs))

    def _launch_one(self, overrides: list[str], idx: int) -> JobReturn:
        try:
            return super().launch([overrides], initial_job_idx=idx)[0]
        except Exception as exc:  # noqa: BLE001 - submitit's error for a job that died without a result
            from qwenlong_verl.hydra.sweep_causes import cause_line
            from qwenlong_verl.redaction import redact

            # the cause, not submitit's trailing log path; overrides may carry a key (+trainer.wandb_api_key=)
            logger.error("qwenlong-verl: sweep job #%d (%s) failed: %s", idx, redact(" ".join(overrides)),
                         cause_line(str(exc)) or type(exc).__name__)
            self._record_failure(overrides, idx, exc)
            ret = JobReturn(overrides=overrides, status=JobStatus.FAILED)
            ret.return_value = exc
            return ret

    def _record_failure(self, overrides: list[str], idx: int, exc: BaseException) -> None:
        """The job's status file, when the job died before writing its own (killed, timed out, crashed)."""
        from hydra.core.hydra_config import HydraConfig

        try:
            assert self.hydra_context is not None and self.config is not None
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            with open_dict(cfg.hydra.job):
                cfg.hydra.job.num = idx
                cfg.hydra.job.id = f"job_id_for_{idx}"
            previous = HydraConfig.instance().cfg
            HydraConfig.instance().set_config(cfg)
            try:
                folder = os.path.join(str(cfg.hydra.sweep.dir), str(cfg.hydra.sweep.subdir))
            finally:
                HydraConfig.instance().cfg = previous
        except Exception as err:  # noqa: BLE001
            logger.warning("qwenlong-verl: could not find the folder of sweep job #%d: %s", idx, err)
            return
        status = sweep.read_status(folder) or {}
        if status.get("status") in ("completed", "failed"):
            return
        os.makedirs(folder, exist_ok=True)
        record = {**status, "status": "failed", "job_num": idx, "overrides": overrides,
                  "error": f"{type(exc).__name__}: {str(exc)[-sweep.MAX_ERROR_CHARS:]}"}
        record.setdefault("metrics", os.path.join(folder, sweep.METRICS_FILE))
        sweep.write_status(folder, record)
