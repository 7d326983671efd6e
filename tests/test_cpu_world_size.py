"""The CPU backend at world size > 1: trainer ranks map onto rollout replicas as verl numbers them.

verl 0.9.1 builds the rollout mesh ``(dp, infer_tp, infer_pp)`` over the WHOLE world, so the old arithmetic
(``rank // device_mesh.size()``) put every rank of a 2-rank run into replica 0: replica 1 never got weights or its
global step and verl's ``_compute_metrics`` crashed on ``min_global_steps=None``. These tests build the same mesh
verl builds, with real gloo process groups, and (in the e2e test) run verl's ``main_ppo`` with 2 trainer ranks.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp
from e2e_utils import demo_overrides, run_main_ppo


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


@pytest.mark.e2e
@pytest.mark.timeout(1200)  # one verl run (run_main_ppo's 900 s limit) plus set-up
def test_main_ppo_trains_with_two_cpu_ranks(demo_data, tmp_path, e2e_lock):
    """verl's real trainer at world size 2 on one node: two actor ranks (data parallel 2), two HF rollout
    replicas each fed its weights and global step by its own leader, the step's rewards in the one difficulty table."""
    difficulty = tmp_path / "difficulty.json"
    result = run_main_ppo([*demo_overrides(demo_data, steps=1), "trainer.n_gpus_per_node=2",
                           "actor_rollout_ref.rollout.agent.num_workers=1", "reward.num_workers=1",
                           "algorithm.filter_groups.enable=false", f"++qwenlong.difficulty.output_file={difficulty}",
                           "trainer.save_freq=1"], tmp_path)
    assert result.returncode == 0, result.tail()
    assert result.steps() == [1], result.tail()
    m = result.step_metrics(1)
    # both replicas got their weights and global step from their own leader: verl tags every trajectory with the
    # step of the weights that generated it (the old arithmetic left replica 1 without one: verl crashed on None)
    assert m["training/global_step"] == 1 and "actor/pg_loss" in m
    assert m["training/off_policy/trajectory_staleness_worst/max"] == 0
    # the reward workers' telemetry of every scored sample reached the trainer's one difficulty table
    batch, n = 4, 4  # the CPU overlay's train_batch_size and rollout.n
    assert m["qwenlong/difficulty_records"] == batch * n
    table = json.loads(difficulty.read_text())
    assert len(table["examples"]) == batch, table.keys()
    # a checkpoint sharded over the two ranks
    actor = tmp_path / "ckpt" / "global_step_1" / "actor"
    assert sorted(p.name for p in actor.glob("model_world_size_*")) == [
        "model_world_size_2_rank_0.pt", "model_world_size_2_rank_1.pt"]
