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


def test_two_runs_on_one_ray_cluster_do_not_mix_records(local_ray):
    """Two main_ppo drivers on one Ray cluster are two Ray jobs; each job's trainer drains only its own records."""
    import subprocess
    import sys

    ray = local_ray
    telemetry.push([{"run": "first", "index": 0}])
    other = (
        "import ray\n"
        "from qwenlong_verl import telemetry\n"
        f"ray.init(address={ray.get_runtime_context().gcs_address!r}, log_to_driver=False)\n"
        "telemetry.push([{'run': 'second', 'index': 7}])\n"
        "print('DRAINED', telemetry.drain())\n"
    )
    proc = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DRAINED [{'run': 'second', 'index': 7}]" in proc.stdout
    assert telemetry.drain() == [{"run": "first", "index": 0}]
