"""The reward-worker -> trainer record channel: local buffer, and a named Ray actor shared by several processes."""

from __future__ import annotations

import asyncio

import pytest

from qwenlong_verl import telemetry


def test_local_buffer_push_apush_drain():
    telemetry.reset_local()
    telemetry.push([{"index": 1, "acc": 1.0}])
    asyncio.run(telemetry.apush([{"index": 2, "acc": 0.0}]))
    telemetry.push([])  # nothing to send is fine
    assert telemetry.drain() == [{"index": 1, "acc": 1.0}, {"index": 2, "acc": 0.0}]
    assert telemetry.drain() == []  # draining clears


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        telemetry._HUB = None
        ray.shutdown()


def test_records_from_several_worker_processes_reach_the_driver(local_ray):
    ray = local_ray

    @ray.remote(num_cpus=0)
    class Worker:  # stands in for verl's RewardLoopWorker actors (one process each)
        async def score(self, worker: int, n: int) -> int:
            from qwenlong_verl import telemetry as t

            for i in range(n):
                await t.apush([{"worker": worker, "index": i}])
            return n

    workers = [Worker.remote() for _ in range(3)]
    assert ray.get([w.score.remote(k, 5) for k, w in enumerate(workers)]) == [5, 5, 5]
    records = telemetry.drain()
    assert sorted((r["worker"], r["index"]) for r in records) == [(k, i) for k in range(3) for i in range(5)]
    assert telemetry.drain() == []
