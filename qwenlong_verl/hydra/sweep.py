"""Hydra sweeps (``-m``) of verl's ``main_ppo``: one process, one Ray and one output folder per job.

verl keeps Ray and its named actors alive for the life of a process, so a sweep needs a launcher that runs every
job in a process of its own (``hydra-submitit-launcher``: ``+qwenlong_sweep=local`` or ``=slurm``). Inside a job
this module gives the job its own folder:

* ``${qwenlong.job_dir:<path>}`` (the recipes' ``trainer.default_local_dir``) is ``<path>`` in a single run, and
  ``<job folder>/<path>`` in a sweep job, in the driver (from Hydra) and in the Ray workers (from
  ``QWENLONG_JOB_DIR``, which the job's driver sets and the workers of the Ray cluster it starts inherit). The
  difficulty file follows ``default_local_dir``.
* ``VERL_FILE_LOGGER_PATH`` = ``<job folder>/metrics.jsonl`` (verl's ``file`` logger).
* ``<job folder>/qwenlong_job.json``: the job's status (running / completed / failed with its error) and wall time,
  written by the recipes' Hydra guard; ``qwenlong-verl sweep-report`` reads it.

Importing this module is cheap (no verl, no Ray, no Hydra at import).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from typing import Any

logger = logging.getLogger(__name__)

RESOLVER = "qwenlong.job_dir"
JOB_DIR_ENV = "QWENLONG_JOB_DIR"
STATUS_FILE = "qwenlong_job.json"
METRICS_FILE = "metrics.jsonl"
MAX_ERROR_CHARS = 4000

# Launchers that run several jobs of a sweep in one process (or in worker processes reused between jobs): the second
# verl job would find the first one's Ray and named actors. Value: why, for the refusal message.
SHARED_PROCESS_LAUNCHERS = {
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher":
        "Hydra's default basic launcher runs every job in this one process",
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher":
        "the joblib launcher runs jobs in this process (n_jobs=1) or in worker processes it reuses between jobs",
    "hydra_plugins.hydra_ray_launcher.ray_local_launcher.RayLocalLauncher":
        "the ray launcher runs every job as a task of one Ray job, inside that job's Ray cluster",
}


def job_dir() -> str | None:
    """This sweep job's folder, or None in a single run (and outside Hydra)."""
    env = os.environ.get(JOB_DIR_ENV)
    if env:
        return env
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return None
        cfg = HydraConfig.get()
        if cfg.mode != RunMode.MULTIRUN:
            return None
        out = cfg.runtime.get("output_dir")
        return str(out) if out else None
    except Exception:  # noqa: BLE001 - outside a Hydra app, or a partial config: a single run
        return None


def in_job_dir(path: Any = "") -> str:
    """``${qwenlong.job_dir:<path>}``: ``path`` in a single run; ``<job folder>/<path>`` in a sweep job (an
    absolute ``path`` is kept as is)."""
    text = "" if path is None else str(path)
    if os.path.isabs(text):
        return text
    base = job_dir()
    if not base:
        return text
    return os.path.join(base, text) if text else base


def register_resolver() -> None:
    """Register ``${qwenlong.job_dir:...}`` with OmegaConf (idempotent). Done wherever a qwenlong config may be
    resolved: Hydra's plugin scan (every Hydra app), the guard, and ``qwenlong_verl.integration.plugins`` (verl's Ray workers)."""
    from omegaconf import OmegaConf

    from qwenlong_verl.ray_cluster import register_own_ray_resolver

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, in_job_dir)
    register_own_ray_resolver()  # ${qwenlong.own_ray:...} of the CPU overlay: null when joining a Ray cluster
    if not OmegaConf.has_resolver(BIN_DIR_RESOLVER):
        OmegaConf.register_new_resolver(BIN_DIR_RESOLVER, bin_dir)
    if not OmegaConf.has_resolver(SLURM_GPUS_RESOLVER):
        OmegaConf.register_new_resolver(SLURM_GPUS_RESOLVER, slurm_gpus)
    if not OmegaConf.has_resolver(RAY_CPUS_RESOLVER):
        OmegaConf.register_new_resolver(RAY_CPUS_RESOLVER, ray_start_cpus)


BIN_DIR_RESOLVER = "qwenlong.bin_dir"
SLURM_GPUS_RESOLVER = "qwenlong.slurm_gpus"
RAY_CPUS_RESOLVER = "qwenlong.ray_start_cpus"
CPU_BACKEND_RAY_CPUS = 32  # the CPU overlay's own-Ray num_cpus: verl's bundles ask for CPUs a 2-core node lacks


def ray_start_cpus(*, _root_: Any = None) -> str:
    """``${qwenlong.ray_start_cpus:}``: ``--num-cpus=32`` for the SLURM set-up's ``ray start`` with the CPU backend
    (each verl rank's bundle asks for several CPU slots; a node declaring its real 2 cores left the job waiting
    for resources until its time limit), empty for GPU recipes (Ray counts the node's cores)."""
    if _root_ is not None:
        from omegaconf import OmegaConf

        if OmegaConf.select(_root_, "qwenlong.backend", default=None) == "cpu":
            return f"--num-cpus={CPU_BACKEND_RAY_CPUS}"
    return ""


def bin_dir() -> str:
    """``${qwenlong.bin_dir:}``: the folder of this Python's scripts (``ray``, ``qwenlong-verl``). The SLURM set-up
    puts it first on PATH, so the ``ray start`` of every node is the submitting environment's (a batch shell without
    the venv started no Ray, and the driver then waited for one until the job's time limit)."""
    import sys

    return os.path.dirname(sys.executable)


def slurm_gpus(gpus: Any, *, _root_: Any = None) -> Any:
    """``${qwenlong.slurm_gpus:N}``: SLURM's ``--gpus-per-node`` of a job: N, or null for the CPU backend
    (``qwenlong.backend=cpu``: a partition without GPUs rejects any GPU request; the CPU ranks are processes)."""
    if _root_ is not None:
        from omegaconf import OmegaConf

        if OmegaConf.select(_root_, "qwenlong.backend", default=None) == "cpu":
            return None
    return gpus


def is_multirun(config: Any) -> bool:
    try:
        from omegaconf import OmegaConf

        return str(OmegaConf.select(config, "hydra.mode", default="")).endswith("MULTIRUN")
    except Exception:  # noqa: BLE001
        return False


def launcher_target(config: Any) -> str:
    from omegaconf import OmegaConf

    return str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")


# The class Hydra instantiates for hydra/launcher=qwenlong_submitit_local: Hydra takes launchers only from the
# `hydra_plugins` package, so it is declared there; its code is qwenlong_verl.hydra.launcher.BoundedLocalLauncher.
QWENLONG_LOCAL_LAUNCHER = "hydra_plugins.qwenlong_verl_searchpath.qwenlong_sweep_plugins.QwenLongLocalLauncher"
LOCAL_SUBMITIT_LAUNCHERS = (
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    QWENLONG_LOCAL_LAUNCHER,
)


def launcher_problem(config: Any) -> str | None:
    """A launcher setting that would break every job (None when fine). submitit's local executor sets
    ``CUDA_VISIBLE_DEVICES`` to GPUs 0..gpus_per_node-1 of each job, so without ``gpus_per_node`` a job sees no GPU
    (and Ray refuses the CPU overlay's one GPU bundle)."""
    from omegaconf import OmegaConf

    if launcher_target(config) in LOCAL_SUBMITIT_LAUNCHERS:
        gpus = OmegaConf.select(config, "hydra.launcher.gpus_per_node", default=None, throw_on_resolution_failure=False)
        if not gpus:
            return ("qwenlong-verl: hydra.launcher.gpus_per_node is not set, so submitit_local would start every job "
                    "with CUDA_VISIBLE_DEVICES='' (no GPU: verl's Ray refuses to start). Use +qwenlong_sweep=local "
                    "(it sets gpus_per_node to trainer.n_gpus_per_node), or add "
                    "hydra.launcher.gpus_per_node=<GPUs per job>.")
    return None


def shared_process_reason(config: Any) -> str | None:
    """Why the configured launcher cannot run verl jobs apart (None when it runs each job in its own process)."""
    return SHARED_PROCESS_LAUNCHERS.get(launcher_target(config))


# ---------------------------------------------------------------------------------------------------------------
# The job's status file
# ---------------------------------------------------------------------------------------------------------------
_ACTIVE: dict[str, Any] = {}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_status(folder: str, record: dict[str, Any]) -> None:
    """Write a job's status file whole (a reader never sees half a file); a failed write is logged, not raised."""
    from qwenlong_verl.outputs import write_json

    try:
        write_json(os.path.join(folder, STATUS_FILE), record, indent=1, default=str)
    except OSError as exc:
        logger.warning("qwenlong-verl: could not write the sweep job status %s: %s", STATUS_FILE, exc)


def read_status(folder: str) -> dict[str, Any] | None:
    import json

    try:
        with open(os.path.join(folder, STATUS_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def job_started(config: Any) -> str | None:
    """In a sweep job: pin this job's folder (checkpoints, metrics, status) before anything starts; None otherwise."""
    if not is_multirun(config):
        return None
    from omegaconf import OmegaConf

    folder = str(OmegaConf.select(config, "hydra.runtime.output_dir"))
    os.makedirs(folder, exist_ok=True)
    inherited_dir = os.environ.get(JOB_DIR_ENV)
    if inherited_dir and os.path.abspath(inherited_dir) != os.path.abspath(folder):
        logger.warning("qwenlong-verl: %s=%s (set before this job started, e.g. by a SLURM set-up that started Ray) "
                       "is not this job's folder %s; Ray workers started before the job keep the former",
                       JOB_DIR_ENV, inherited_dir, folder)
    os.environ[JOB_DIR_ENV] = folder  # the workers of the Ray cluster this job starts inherit it
    metrics = os.path.join(folder, METRICS_FILE)
    inherited = os.environ.get("VERL_FILE_LOGGER_PATH")
    if inherited and os.path.abspath(inherited) != metrics:
        logger.warning("qwenlong-verl: VERL_FILE_LOGGER_PATH=%s is shared by every job of the sweep; this job logs "
                       "to %s", inherited, metrics)
    os.environ["VERL_FILE_LOGGER_PATH"] = metrics
    os.environ["VERL_FILE_LOGGER_ROOT"] = folder
    overrides = OmegaConf.to_container(OmegaConf.select(config, "hydra.overrides.task") or [])
    _ACTIVE.clear()
    _ACTIVE.update(folder=folder, t0=time.monotonic(), record={
        "status": "running", "error": None, "started_at": _now(), "finished_at": None, "wall_s": None,
        "overrides": overrides, "job_num": OmegaConf.select(config, "hydra.job.num"), "metrics": metrics,
        "pid": os.getpid()})
    write_status(folder, _ACTIVE["record"])
    return folder


def job_finished(status: str, error: BaseException | str | None = None) -> None:
    """Record the end of the sweep job started by :func:`job_started` (no-op in a single run)."""
    if not _ACTIVE:
        return
    record = dict(_ACTIVE["record"])
    record["status"] = status
    if error is not None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        record["error"] = text if len(text) <= MAX_ERROR_CHARS else "..." + text[-MAX_ERROR_CHARS:]
    record["finished_at"] = _now()
    record["wall_s"] = round(time.monotonic() - _ACTIVE["t0"], 1)
    write_status(_ACTIVE["folder"], record)
    _ACTIVE.clear()


def job_ended(job_return: Any) -> None:
    """Hydra's ``on_job_end``: completed, or failed with the exception the task raised."""
    try:
        from hydra.core.utils import JobStatus

        failed = getattr(job_return, "status", None) == JobStatus.FAILED
    except Exception:  # noqa: BLE001
        failed = False
    error = getattr(job_return, "_return_value", None) if failed else None
    job_finished("failed" if failed else "completed", error)


def report_failure_to_submitit(message: str) -> bool:
    """In a submitit job: write the job's result file as failed with ``message`` (True if written).

    The guard stops a bad job with SystemExit (Hydra turns a callback's exceptions into warnings), and submitit's
    job process only records ``Exception``s; without a result file the launcher asks ``sacct``, which fails where
    SLURM accounting is off, so the sweep waited for the failed job until its own time limit."""
    try:
        import submitit
        from submitit.core import utils as submitit_utils

        env = submitit.JobEnvironment()
        paths = env.paths
    except Exception:  # noqa: BLE001 - not in a submitit job (a single run, another launcher)
        return False
    if paths.result_pickle.exists():
        return False
    try:
        with submitit_utils.temporary_save_path(paths.result_pickle) as tmp:
            submitit_utils.cloudpickle_dump(("error", message), tmp)
    except OSError as exc:
        logger.warning("qwenlong-verl: could not record the failure for submitit (%s)", exc)
        return False
    return True
