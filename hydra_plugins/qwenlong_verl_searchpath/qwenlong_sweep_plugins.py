"""Hydra imports every module under ``hydra_plugins`` at start-up: this one registers what the recipes' sweeps need
in every Hydra app (verl's ``main_ppo`` and the compose API alike).

* the ``${qwenlong.job_dir:...}`` resolver (the recipes' ``trainer.default_local_dir``: the sweep job's folder);
* ``hydra/launcher=qwenlong_submitit_local`` (selected by ``+qwenlong_sweep=local``): hydra-submitit-launcher's
  ``submitit_local``, each job a process of its own (its own Ray, its own named actors), with two changes for verl
  jobs on one machine:

  - at most ``max_parallel`` jobs run at once (default 1). ``submitit_local`` starts every point of the sweep at
    once, and several verl jobs on one machine compete for its GPUs (and the CPU RAM of offloading); Hydra's
    ``hydra.sweeper.max_batch_size`` would serialise them but stops the sweep at the first failed point;
  - a job that fails (an exception in verl, the recipe's start-up checks refusing it, a killed process) comes back
    as a failed job after the other points have run; Hydra then reports it and exits non-zero.

  Everything else (the subprocess per job, its logs in ``<sweep dir>/.submitit/``, timeouts) is submitit's.
"""

# No `from __future__ import annotations`: Hydra executes this module outside sys.modules, where dataclasses cannot
# look string annotations up. Nothing here may raise: one failing module stops Hydra's whole plugin discovery.
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

try:
    from qwenlong_verl.sweep import register_resolver

    register_resolver()
except Exception:  # noqa: BLE001 - qwenlong_verl itself missing or broken: the search-path plugin reports it
    pass

try:
    from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher
except Exception:  # noqa: BLE001 - hydra-submitit-launcher missing or broken: Hydra then names the unknown launcher
    LocalLauncher = None

if LocalLauncher is not None:
    from hydra.core.config_store import ConfigStore
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import open_dict

    @dataclass
    class QwenLongLocalQueueConf(LocalQueueConf):
        _target_: str = "hydra_plugins.qwenlong_verl_searchpath.qwenlong_sweep_plugins.QwenLongLocalLauncher"
        max_parallel: int = 1  # jobs running at once on this machine

    ConfigStore.instance().store(group="hydra/launcher", name="qwenlong_submitit_local", node=QwenLongLocalQueueConf,
                                 provider="qwenlong-verl")

    class QwenLongLocalLauncher(LocalLauncher):
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
                from qwenlong_verl.io_safety import redact
                from qwenlong_verl.sweep_causes import cause_line

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

            from qwenlong_verl import sweep

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
            sweep._write_status(folder, record)
