"""Per-sample records from the reward workers to the trainer, across processes and nodes.

verl 0.9.1 scores every rollout inside ``RewardLoopWorker`` Ray actors (``reward.num_workers`` of them, possibly on
several nodes) and does not turn ``reward_extra_info`` into training-step metrics. Groups that DAPO's dynamic
sampling evicts never reach the trainer at all. So the reward manager pushes one small record per scored sample to a
named Ray actor of the run's Ray job, and the trainer drains it once per step: that gives judge health metrics and the
per-example rewards of the difficulty table, evicted groups included.

Outside Ray (the standalone scorer, unit tests) records go to an in-process buffer with the same API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

HUB_NAME = "qwenlong_telemetry_hub"
HUB_NAMESPACE = "qwenlong_verl"


def hub_name() -> str:
    """The hub of this run: one per Ray job. Every actor the driver of one ``main_ppo`` creates (TaskRunner, reward
    workers) carries that driver's job id, and two runs on one Ray cluster are two jobs, so their difficulty
    records never mix."""
    import ray

    return f"{HUB_NAME}_{ray.get_runtime_context().get_job_id()}"


class _Buffer:
    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def push(self, records: list[dict[str, Any]]) -> int:
        with self._lock:
            self._records.extend(records)
            return len(self._records)

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            out, self._records = self._records, []
            return out


_LOCAL = _Buffer()
_HUB = None
_HUB_LOCK = threading.Lock()


def _ray_hub():
    """The cluster-wide hub actor, created on first use; None outside an initialised Ray."""
    global _HUB
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a verl dependency
        return None
    if not ray.is_initialized():
        return None
    with _HUB_LOCK:
        if _HUB is None:
            remote_cls = ray.remote(num_cpus=0)(_Buffer)
            _HUB = remote_cls.options(
                name=hub_name(), namespace=HUB_NAMESPACE, get_if_exists=True, lifetime=None
            ).remote()
        return _HUB


def _send(batch: list[dict[str, Any]]):
    """Hand ``batch`` to the hub; the Ray ObjectRef of the call, or None when it went to the local buffer."""
    hub = _ray_hub()
    if hub is None:
        _LOCAL.push(batch)
        return None
    return hub.push.remote(batch)


def push(records: Iterable[dict[str, Any]]) -> None:
    """Send records without waiting (fire and forget). Never raises: telemetry must not stop training."""
    batch = list(records)
    try:
        if batch:
            _send(batch)
    except Exception as exc:  # noqa: BLE001
        logger.warning("qwenlong telemetry: dropped %d records: %s", len(batch), exc)


async def apush(records: Iterable[dict[str, Any]]) -> None:
    """Like :func:`push`, but waits until the hub holds the records, so a trainer that drains after the reward
    came back sees them. For async callers (the reward manager's ``run_single``). Never raises."""
    batch = list(records)
    try:
        ref = _send(batch) if batch else None
        if ref is not None:
            await ref
    except Exception as exc:  # noqa: BLE001
        logger.warning("qwenlong telemetry: dropped %d records: %s", len(batch), exc)


def drain(timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Return and clear every record pushed so far (by any process of this Ray job)."""
    hub = _ray_hub()
    if hub is None:
        return _LOCAL.drain()
    import ray

    return ray.get(hub.drain.remote(), timeout=timeout_s)


def reset_local() -> None:
    _LOCAL.drain()
