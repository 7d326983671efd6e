"""The CPU backend at world size > 1: trainer ranks map onto rollout replicas as verl numbers them.

verl 0.9.1 builds the rollout mesh ``(dp, infer_tp, infer_pp)`` over the WHOLE world, so the old arithmetic
(``rank // device_mesh.size()``) put every rank of a 2-rank run into replica 0: replica 1 never got weights or its
global step and verl's ``_compute_metrics`` crashed on ``min_global_steps=None``. These tests build the same mesh
verl builds, with real gloo process groups; tests/test_main_ppo_e2e.py runs verl's ``main_ppo`` with 2 trainer ranks.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mesh_worker(rank: int, world: int, port: int, shape: tuple[int, int, int], out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    from qwenlong_verl.integration.cpu_rollout import ranks_per_replica, replica_position

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        # exactly verl 0.9.1 engine_workers' rollout mesh
        mesh = init_device_mesh("cpu", mesh_shape=shape, mesh_dim_names=["dp", "infer_tp", "infer_pp"])
        replica, leader = replica_position(dist.get_rank(), mesh)
        Path(out, f"{rank}.json").write_text(json.dumps(
            {"replica": replica, "leader": leader, "per_replica": ranks_per_replica(mesh), "size": mesh.size()}))
    finally:
        dist.destroy_process_group()


def _layout(tmp_path: Path, shape: tuple[int, int, int]) -> list[dict]:
    world = shape[0] * shape[1] * shape[2]
    mp.start_processes(_mesh_worker, args=(world, _free_port(), shape, str(tmp_path)), nprocs=world,
                       start_method="spawn", join=True)
    return [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(world)]


def test_two_data_parallel_ranks_are_two_replicas_each_its_own_leader(tmp_path):
    got = _layout(tmp_path, (2, 1, 1))
    assert [g["size"] for g in got] == [2, 2]  # the mesh spans the world: size() is NOT a replica's size
    assert [(g["replica"], g["leader"], g["per_replica"]) for g in got] == [(0, True, 1), (1, True, 1)]


def test_two_tensor_parallel_ranks_share_one_replica_with_one_leader(tmp_path):
    got = _layout(tmp_path, (1, 2, 1))
    assert [(g["replica"], g["leader"], g["per_replica"]) for g in got] == [(0, True, 2), (0, False, 2)]

