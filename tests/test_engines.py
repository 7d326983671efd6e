"""What the real engines left: ``.ci/engines.sh`` runs a 2-node Ray cluster and a SLURM cluster on this machine,
then these tests read their outputs (``QWENLONG_ENGINES_OUT``). Without that folder they skip, saying so.

One shared real run per engine (a verl run costs minutes on 2 cores); every assertion here is about a place the
README names: the pipeline's stage folders, the checkpoint shards of each rank, the sweep folders and reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.engines

OUT = Path(os.environ.get("QWENLONG_ENGINES_OUT", "/nonexistent"))


def _need(path: Path, what: str) -> Path:
    if not OUT.is_dir():
        pytest.skip("no engine outputs: run `bash .ci/engines.sh` (a 2-node Ray and a SLURM cluster on this machine)")
    if what == "slurm" and (OUT / "slurm_skipped").exists():
        pytest.skip("SLURM could not be installed on this machine (.ci/engines.sh said why)")
    return path


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_ray_two_nodes_pipeline_rl_stage_at_world_size_two():
    phase1 = _need(OUT / "pipeline" / "phase1", "ray")
    assert (phase1 / "DONE").is_file(), (OUT / "pipeline.log").read_text()[-3000:]
    # the checkpoint: one FSDP shard per rank, the two ranks on the two Ray nodes (1 fake GPU each)
    actor = phase1 / "ckpt" / "global_step_1" / "actor"
    assert sorted(p.name for p in actor.glob("model_world_size_*")) == [
        "model_world_size_2_rank_0.pt", "model_world_size_2_rank_1.pt"]
    assert (actor / "huggingface" / "config.json").is_file()  # the HF weights the next stage starts from
    # metrics: through verl's runtime_env to the TaskRunner on whichever node it ran (CPU mode lost them before)
    steps = _metrics(phase1 / "metrics.jsonl")
    assert [s["step"] for s in steps] == [1]
    m = steps[0]["data"]
    assert m["training/off_policy/trajectory_staleness_worst/max"] == 0  # both replicas got step-1 weights
    assert m["qwenlong/difficulty_records"] == 4 * 4  # every scored sample reached the one difficulty table
    # the difficulty table: the pipeline's phase1/difficulty.json for phase II, and one with the checkpoint
    for table in (phase1 / "difficulty.json", phase1 / "ckpt" / "global_step_1" / "qwenlong_difficulty.json"):
        assert len(json.loads(table.read_text())["examples"]) == 4, table


def _report(name: str) -> dict:
    folder = _need(OUT / name, "slurm")
    report = folder / "sweep_report.json"
    assert report.is_file(), (OUT / f"{name}.log").read_text()[-3000:] if (OUT / f"{name}.log").exists() else name
    return json.loads(report.read_text())


def test_slurm_two_point_sweep_a_two_node_job_completes_and_a_failing_one_is_a_failed_row():
    report = _report("sweep")
    jobs = report["jobs"]
    assert report["swept_keys"] == ["qwenlong.curriculum.phase"]
    rows = [(j["swept"]["qwenlong.curriculum.phase"], j["status"], j["steps"]) for j in jobs]
    assert rows == [("1", "completed", 1), ("3", "failed", 0)], [(j["status"], j["error"]) for j in jobs]
    assert "qwenlong.curriculum.phase=3 is not a phase" in (jobs[1]["error"] or ""), jobs[1]
    assert (OUT / "sweep" / "sweep_reward.png").is_file() and (OUT / "sweep" / "sweep_report.md").is_file()
    # the completed job's Ray cluster spanned its 2-node allocation before the driver started (the set-up's wait
    # says so), and verl trained at world size 2 over it: one FSDP shard per rank when it saved
    job0 = [d for d in (OUT / "sweep" / ".submitit").iterdir() if d.name.endswith("_0")]  # array task 0
    log = "".join(p.read_text(errors="replace") for d in job0 for p in d.glob("*_log.*"))
    assert ": 2 nodes" in log, log[-3000:]
    folder = OUT / "sweep" / jobs[0]["job"]
    assert sorted(p.name for p in folder.rglob("model_world_size_*")) in ([], [
        "model_world_size_2_rank_0.pt", "model_world_size_2_rank_1.pt"])
    assert _metrics(folder / "metrics.jsonl")[0]["data"]["qwenlong/difficulty_records"] == 16
