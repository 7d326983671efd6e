"""Hydra sweeps of verl's main_ppo through hydra-submitit-launcher (+qwenlong_sweep=local|slurm) and sweep-report.

The guard under Hydra's basic launcher, a dry composition of the SLURM overlay, and the report on hand-made job
folders (a killed job, a job still running). The real local sweep (a training point and a point the guard refuses)
is the shared run of ``test_main_ppo_e2e.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qwenlong_verl.hydra.sweep import JOB_DIR_ENV, QWENLONG_LOCAL_LAUNCHER, STATUS_FILE
from qwenlong_verl.hydra.sweep_report import REPORT_JSON, REPORT_MD, REWARD_PNG, write_report

MAIN_PPO = [sys.executable, "-m", "verl.trainer.main_ppo"]
RAY_STARTED = ("Started a local Ray instance", "ray init kwargs", "TaskRunner")


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose("ppo_trainer", overrides=overrides, return_hydra_config=True)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qwenlong_verl.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=180)


# ---------------------------------------------------------------------------------------------------------------
# The guard
# ---------------------------------------------------------------------------------------------------------------
def test_basic_launcher_multirun_is_refused_naming_the_launcher(tmp_path):
    proc = subprocess.run([*MAIN_PPO, "-m", "+recipe=qwenlong_phase1", "actor_rollout_ref.actor.optim.lr=1e-6,2e-6"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Hydra's default basic launcher runs every job in this one process" in out, out[-2000:]
    assert "+qwenlong_sweep=local" in out and "hydra/launcher=submitit_local" in out
    assert not any(s in out for s in RAY_STARTED), out[-2000:]
    assert not list(tmp_path.glob("multirun/*/*/*/.hydra")), "no job may start"


def test_submitit_local_without_gpus_per_node_is_refused(tmp_path):
    proc = subprocess.run([*MAIN_PPO, "-m", "+recipe=qwenlong_phase1", "hydra/launcher=submitit_local",
                           f"hydra.sweep.dir={tmp_path / 'sweep'}", "actor_rollout_ref.actor.optim.lr=1e-6,2e-6"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "hydra.launcher.gpus_per_node is not set" in out and "+qwenlong_sweep=local" in out, out[-2000:]
    assert not list((tmp_path / "sweep").glob("*/.hydra")), "no job may start"


def test_the_guard_runs_the_checks_every_recipe_names():
    """The guard (hydra/) gets its checks (preflight/) by name from the recipes' YAML: each YAML that declares it
    names the same function, a guard without checks or with a wrong name refuses to start the run unchecked."""
    import qwenlong_verl.hydra.callbacks as hc
    from qwenlong_verl.preflight.guard import guard_checks

    declared = {}
    for path in sorted((Path(__file__).resolve().parent.parent / "qwenlong_verl" / "hydra_configs").rglob("*.yaml")):
        guard = (((yaml.safe_load(path.read_text()) or {}).get("hydra") or {}).get("callbacks") or {}).get(
            "qwenlong_guard")
        if guard is not None:
            declared[path.name] = guard
    assert {"qwenlong_base.yaml", "qwenlong_sft.yaml", "cpu.yaml", "local.yaml", "slurm.yaml"} <= set(declared)
    assert all(g == {"_target_": "qwenlong_verl.hydra.callbacks.QwenLongGuard", "checks": hc.GUARD_CHECKS}
               for g in declared.values()), declared
    assert hc.QwenLongGuard(checks=hc.GUARD_CHECKS).checks is guard_checks
    with pytest.raises(hc.QwenLongRunError, match="has no `checks:`.*checks: qwenlong_verl.preflight.guard"):
        hc.QwenLongGuard()
    with pytest.raises(hc.QwenLongRunError, match="checks='qwenlong_verl.preflight.guard.nope' does not name"):
        hc.QwenLongGuard(checks="qwenlong_verl.preflight.guard.nope")


def test_only_shared_process_launchers_are_refused():
    from omegaconf import OmegaConf

    from qwenlong_verl.hydra.sweep import shared_process_reason

    def cfg(target):
        return OmegaConf.create({"hydra": {"launcher": {"_target_": target}}})

    assert shared_process_reason(cfg("hydra._internal.core_plugins.basic_launcher.BasicLauncher"))
    assert shared_process_reason(cfg("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"))
    for isolating in ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
                      "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                      QWENLONG_LOCAL_LAUNCHER):
        assert shared_process_reason(cfg(isolating)) is None


# ---------------------------------------------------------------------------------------------------------------
# Composition: the job folder default, the overlays
# ---------------------------------------------------------------------------------------------------------------
def test_checkpoint_folder_is_verls_in_a_single_run_and_the_job_folder_in_a_sweep(monkeypatch, tmp_path):
    from omegaconf import OmegaConf

    cfg = _compose(["+recipe=qwenlong_phase1"])
    monkeypatch.delenv(JOB_DIR_ENV, raising=False)
    assert OmegaConf.select(cfg, "trainer.default_local_dir") == "checkpoints/qwenlong_verl/qwenlong_phase1"
    monkeypatch.setenv(JOB_DIR_ENV, str(tmp_path / "3"))  # what the guard sets in a sweep job (Ray workers inherit)
    assert OmegaConf.select(cfg, "trainer.default_local_dir") == str(
        tmp_path / "3" / "checkpoints/qwenlong_verl/qwenlong_phase1")
    cfg = _compose(["+recipe=qwenlong_phase1", "trainer.default_local_dir=/data/run1"])
    assert OmegaConf.select(cfg, "trainer.default_local_dir") == "/data/run1"  # an absolute path is kept


def test_local_overlay_selects_the_isolating_launcher():
    from omegaconf import OmegaConf

    cfg = _compose(["+recipe=qwenlong_phase1", "+qwenlong_sweep=local"])
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == QWENLONG_LOCAL_LAUNCHER
    assert launcher["max_parallel"] == 1
    assert launcher["gpus_per_node"] == 8  # trainer.n_gpus_per_node of the recipe
    assert "qwenlong_guard" in cfg.hydra.callbacks


def test_hydra_finds_the_launcher_under_hydra_plugins_with_the_packages_behaviour():
    """Hydra instantiates launchers only from classes its scan found under `hydra_plugins`: the stub there declares
    the name the config targets, and the behaviour is qwenlong_verl.hydra.launcher's (no second plugin class)."""
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    from qwenlong_verl.hydra.launcher import BoundedLocalLauncher
    from qwenlong_verl.hydra.searchpath import ensure_searchpath_plugin

    ensure_searchpath_plugin()
    found = {f"{c.__module__}.{c.__name__}": c for c in Plugins.instance().discover(Launcher)}
    assert issubclass(found[QWENLONG_LOCAL_LAUNCHER], BoundedLocalLauncher)
    assert Plugins.is_in_toplevel_plugins_module(QWENLONG_LOCAL_LAUNCHER)
    assert not [name for name in found if name.startswith("qwenlong_verl.")]


def test_the_hydra_package_imports_the_real_hydra():
    """``qwenlong_verl/hydra/`` shares its name with Hydra; its modules' absolute ``import hydra`` is hydra-core."""
    from qwenlong_verl.hydra import callbacks, launcher, searchpath  # noqa: F401 - searchpath imports Hydra lazily

    assert callbacks.Callback.__module__ == "hydra.experimental.callback"
    assert launcher.ConfigStore.__module__ == "hydra.core.config_store"
    assert launcher.JobReturn.__module__ == "hydra.core.utils"
    assert launcher.LocalLauncher.__module__ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher"
    assert searchpath.searchpath_plugin_discovered() in (True, False)  # reaches hydra.core.plugins, not this package


def test_slurm_overlay_composes_into_a_valid_submitit_sbatch(tmp_path, monkeypatch):
    """SLURM cannot run here: compose the overlay, instantiate submitit_slurm's launcher from it, and let submitit
    write the sbatch script (a stand-in `srun` on PATH satisfies its check that it runs on a cluster)."""
    import submitit
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf, open_dict

    cfg = _compose(["+recipe=qwenlong_phase1", "+qwenlong_sweep=slurm", "trainer.nnodes=4",
                    "hydra.launcher.partition=gpu", "hydra.launcher.account=proj"])
    with open_dict(cfg):
        cfg.hydra.sweep.dir = str(tmp_path / "sweep")
        cfg.hydra.job.name = "main_ppo"
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    params = dict(launcher.params)
    assert params["gpus_per_node"] == 8 and params["additional_parameters"]["nodes"] == 4
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    # exactly what BaseSubmititLauncher.launch does with its params
    executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    sbatch = executor._executor._make_submission_file_text("python -u -m submitit.core._submit /x", "uid")
    for line in ("#SBATCH --nodes=4", "#SBATCH --gpus-per-node=8", "#SBATCH --partition=gpu",
                 "#SBATCH --account=proj", "#SBATCH --ntasks-per-node=1", "#SBATCH --time=4320"):
        assert line in sbatch, sbatch
    assert sbatch.count("#SBATCH --nodes=") == 1
    assert executor._executor._num_tasks() == 1  # one verl driver per job
    setup = sbatch[sbatch.index("# setup"):sbatch.index("# command")]
    assert "ray start --head" in setup and "ray start --address" in setup and "--num-gpus=8" in setup
    assert "export RAY_ADDRESS=" in setup
    # the per-job folder reaches Ray nodes started before the driver: job n is array task n of the sweep folder
    assert f"export QWENLONG_JOB_DIR={tmp_path / 'sweep'}/$SLURM_ARRAY_TASK_ID" in setup
    # every node runs the submitting venv's `ray`, each Ray node of the job is waited for (no blind sleep: a failed
    # `ray start` used to leave the driver waiting until the time limit), the job's own port and Ray temp dir
    assert f'export PATH="{os.path.dirname(sys.executable)}:$PATH"' in setup
    assert 'python -m qwenlong_verl.ray_cluster --nodes "$SLURM_JOB_NUM_NODES" --timeout 180 || exit 1' in setup
    assert "--temp-dir=$qwenlong_ray_tmp" in setup and "sleep" not in setup
    proc = subprocess.run(["bash", "-n"], input=sbatch, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_slurm_sweep_asks_no_gpus_for_the_cpu_backend():
    """A GPU-less partition rejects --gpus-per-node: the CPU overlay's jobs ask for none, GPU recipes for theirs."""
    from hydra.utils import instantiate

    cpu = instantiate(_compose(["+recipe=qwenlong_phase1", "+qwenlong_env=cpu", "+qwenlong_sweep=slurm",
                                "trainer.n_gpus_per_node=2"]).hydra.launcher)
    assert cpu.params["gpus_per_node"] is None
    # and its Ray nodes declare the CPU slots verl's bundles ask for (2 real cores left a 2-node job waiting)
    assert all("--num-cpus=32" in line for line in cpu.params["setup"] if "ray start" in line)
    gpu = instantiate(_compose(["+recipe=qwenlong_phase1", "+qwenlong_sweep=slurm"]).hydra.launcher)
    assert gpu.params["gpus_per_node"] == 8
    assert not any("--num-cpus" in line for line in gpu.params["setup"])


# ---------------------------------------------------------------------------------------------------------------
# sweep-report on hand-made job folders
# ---------------------------------------------------------------------------------------------------------------
def _job(root: Path, num: int, value: str, status: dict | None, rewards: list[float] | None) -> Path:
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["+recipe=qwenlong_phase1", f"x.lr={value}"]))
    if status is not None:
        (job / STATUS_FILE).write_text(json.dumps({"job_num": num, **status}))
    if rewards is not None:
        (job / "metrics.jsonl").write_text("".join(json.dumps(
            {"step": i + 1, "data": {"critic/score/mean": r, "qwenlong/reward/acc_mean": r / 2,
                                     "response_length/mean": 10.0 + i, "qwenlong/judge/call_rate": 0.5}}) + "\n"
            for i, r in enumerate(rewards)))
    return job


def test_report_rows_for_finished_failed_killed_and_running_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    _job(sweep, 0, "1e-6", {"status": "completed", "wall_s": 12.5}, [0.1, 0.4, 0.3])
    _job(sweep, 1, "2e-6", {"status": "failed", "error": "Traceback...\nValueError: bad lr", "wall_s": 3.0}, None)
    _job(sweep, 2, "3e-6", None, None)  # killed before the guard wrote anything
    _job(sweep, 3, "4e-6", {"status": "running"}, [0.2])
    report, paths = write_report(sweep, sweep)
    rows = report["jobs"]
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert report["swept_keys"] == ["x.lr"]
    assert [r["swept"]["x.lr"] for r in rows] == ["1e-6", "2e-6", "3e-6", "4e-6"]
    assert rows[0]["status"] == "completed" and rows[0]["final"]["reward"] == 0.3
    assert rows[0]["best"]["reward"] == 0.4 and rows[0]["best"]["reward_step"] == 2
    assert rows[0]["final"]["acc"] == 0.15 and rows[0]["final"]["response_length"] == 12.0
    assert rows[1]["status"] == "failed" and "ValueError: bad lr" in rows[1]["error"]
    assert rows[2]["status"] == "unknown" and "killed" in rows[2]["error"]
    assert rows[3]["status"] == "running" and rows[3]["steps"] == 1
    md = Path(paths["md"]).read_text()
    assert "ValueError: bad lr" in md and "| x.lr |" in md.replace("job | x.lr", "| x.lr")
    assert Path(paths["png"]).stat().st_size > 0
    assert json.loads(Path(paths["json"]).read_text())["counts"] == {"completed": 1, "failed": 1, "unknown": 1,
                                                                      "running": 1}


def test_report_names_what_slurm_ended_a_job_with(tmp_path):
    """A job SLURM killed (time limit, scancel, OOM) died without a word of its own: its status file still says
    running; slurmstepd's line in submitit's log of that array task says why, and the row is failed with it."""
    sweep = tmp_path / "sweep"
    _job(sweep, 0, "1e-6", {"status": "running"}, [0.2])
    _job(sweep, 1, "2e-6", {"status": "running"}, None)
    _job(sweep, 2, "3e-6", None, None)
    _job(sweep, 3, "4e-6", {"status": "running"}, None)  # no SLURM line: still running as far as anyone knows
    logs = {0: "slurmstepd: error: *** JOB 8 ON n1 CANCELLED AT 2026-12-04T06:31:07 DUE TO TIME LIMIT ***",
            1: "srun: forcing job termination\nslurmstepd: error: *** JOB 9 ON n2 CANCELLED AT 2026-12-04T06:31:09 ***",
            2: "slurmstepd: error: Detected 1 oom_kill event in StepId=10.batch. Some of the step tasks have been "
               "OOM Killed."}
    for num, text in logs.items():
        folder = sweep / ".submitit" / f"7_{num}"
        folder.mkdir(parents=True)
        (folder / f"7_{num}_0_log.err").write_text(f"some output\n{text}\n")
    (sweep / ".submitit" / "7_13").mkdir()  # job 13's folder must not be read as job 3's
    (sweep / ".submitit" / "7_13" / "7_13_0_log.err").write_text(logs[0])
    rows = write_report(sweep, sweep)[0]["jobs"]
    assert [r["status"] for r in rows] == ["failed", "failed", "failed", "running"]
    assert rows[0]["error"].startswith("killed by SLURM at its time limit (job 8 on n1") and \
        "hydra.launcher.timeout_min" in rows[0]["error"]
    assert rows[1]["error"].startswith("cancelled (job 9 on n2") and "scancel" in rows[1]["error"]
    assert "out-of-memory" in rows[2]["error"] and "hydra.launcher.mem_gb" in rows[2]["error"]
    assert rows[0]["steps"] == 1  # what it logged before the kill still counts


PROBE = """
import json, sys
from qwenlong_verl.cli import main
rc = main(sys.argv[1:])
print("IMPORTS " + json.dumps({"rc": rc, "heavy": sorted(m for m in ("verl", "ray", "torch") if m in sys.modules)}))
"""


def test_report_command_does_not_import_verl(tmp_path):
    sweep = tmp_path / "sweep"
    _job(sweep, 0, "1e-6", {"status": "completed", "wall_s": 1.0}, [0.5])
    _job(sweep, 1, "2e-6", {"status": "failed", "error": "boom"}, None)
    proc = subprocess.run([sys.executable, "-c", PROBE, "sweep-report", str(sweep), "--out", str(tmp_path / "r")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("IMPORTS ")), None)
    assert line is not None, proc.stderr[-2000:]
    assert json.loads(line[len("IMPORTS "):]) == {"rc": 0, "heavy": []}, proc.stderr[-2000:]
    assert "| 1 | 2e-6 | failed |" in proc.stdout
    assert {p.name for p in (tmp_path / "r").iterdir()} == {REPORT_MD, REPORT_JSON, REWARD_PNG}


def test_report_command_errors_in_one_line(tmp_path):
    proc = _cli(["sweep-report", tmp_path / "missing"], tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = _cli(["sweep-report", tmp_path / "empty"], tmp_path)
    assert proc.returncode == 2 and "no Hydra job folder" in proc.stderr
