"""The recipes through verl's real Hydra entry point: paper values, and fast, named failures before Ray starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

MAIN_PPO = [sys.executable, "-m", "verl.trainer.main_ppo"]
RAY_STARTED = ("ray init kwargs", "Started a local Ray instance")


def _run(args: list[str], tmp_path: Path, env: dict[str, str] | None = None, timeout: int = 180):
    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(MAIN_PPO + args, cwd=tmp_path, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def test_phase2_cfg_job_holds_the_paper_settings(tmp_path):
    proc = _run(["+recipe=qwenlong_phase2", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load(proc.stdout)
    actor = cfg["actor_rollout_ref"]["actor"]
    rollout = cfg["actor_rollout_ref"]["rollout"]
    assert cfg["data"]["train_batch_size"] == 128
    assert actor["ppo_mini_batch_size"] == 32
    assert rollout["n"] == 8
    assert actor["optim"]["lr"] == 2e-6
    assert rollout["temperature"] == 0.7 and rollout["top_p"] == 0.95
    assert actor["use_kl_loss"] is False and cfg["algorithm"]["use_kl_in_reward"] is False
    assert cfg["data"]["max_response_length"] == 10000
    assert cfg["data"]["max_prompt_length"] == 60000
    assert (actor["clip_ratio_low"], actor["clip_ratio_high"]) == (0.2, 0.28)
    assert actor["loss_agg_mode"] == "token-mean"
    assert cfg["algorithm"]["filter_groups"] == {**cfg["algorithm"]["filter_groups"], "enable": True, "metric": "acc"}
    assert cfg["reward"]["reward_kwargs"]["overlong_buffer_cfg"]["enable"] is True
    assert actor["ulysses_sequence_parallel_size"] > 1 and actor["use_dynamic_bsz"] is True
    assert cfg["algorithm"]["adv_estimator"] == "qwenlong_grpo"
    assert actor["policy_loss"]["loss_mode"] == "qwenlong_dapo"
    assert cfg["reward"]["reward_manager"]["name"] == "qwenlong"
    assert cfg["trainer"]["v1"]["trainer_mode"] == "qwenlong"
    assert cfg["qwenlong"]["recipe_loaded"] is True
    assert "recipe" not in cfg, "the recipe must be a config group, not a string key"


def test_phase1_and_cpu_overlay_compose(tmp_path):
    proc = _run(["+recipe=qwenlong_phase1", "+qwenlong_env=cpu", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["data"]["max_prompt_length"] == 1024  # the overlay comes after the recipe and wins
    assert cfg["actor_rollout_ref"]["rollout"]["name"] == "hf"
    assert cfg["qwenlong"]["backend"] == "cpu"
    assert cfg["actor_rollout_ref"]["actor"]["clip_ratio_high"] == 0.28  # recipe values the overlay leaves alone


def test_yarn_overlay_expects_yarn_in_the_model_folder_not_override_config(tmp_path):
    """verl 0.9.1 cannot apply rope scaling through override_config (crash under transformers 5, never sent to vLLM):
    the overlay records the expected YaRN settings; the model folder's config.json carries them (yarn-model)."""
    proc = _run(["+recipe=qwenlong_phase2", "+qwenlong_rope=yarn", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["qwenlong"]["rope"] == {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert "rope_scaling" not in (cfg["actor_rollout_ref"]["model"].get("override_config") or {})


def test_misspelled_recipe_fails_naming_it(tmp_path):
    proc = _run(["+recipe=qwenlong_phse2", "--cfg", "job"], tmp_path)
    assert proc.returncode != 0
    assert "qwenlong_phse2" in proc.stderr
    assert "qwenlong_phase2" in proc.stderr  # Hydra lists the available recipes


def test_recipe_without_loaded_plugins_stops_before_ray(tmp_path):
    proc = _run(["+recipe=qwenlong_phase1", "data.train_files=x.parquet", "data.val_files=y.parquet"], tmp_path,
                env={"VERL_USE_EXTERNAL_PLUGINS": "none"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "qwenlong-verl's verl plugins were not loaded by `import verl`" in out
    assert "VERL_USE_EXTERNAL_PLUGINS='none'" in out
    assert not any(s in out for s in RAY_STARTED), out[-2000:]


def test_recipe_without_searchpath_plugin_stops_instead_of_training_with_defaults(tmp_path):
    # A regular package named hydra_plugins first on sys.path hides the namespace package Hydra walks.
    shadow = tmp_path / "shadow" / "hydra_plugins"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    proc = _run(["+recipe=qwenlong_phase2"], tmp_path, env={"PYTHONPATH": str(shadow.parent)})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "needs the Hydra search-path plugin" in out
    assert not any(s in out for s in RAY_STARTED), out[-2000:]


def test_multirun_fails_fast_with_advice(tmp_path):
    proc = _run(["-m", "+recipe=qwenlong_phase1", "actor_rollout_ref.actor.optim.lr=1e-6,2e-6"], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Hydra multirun (-m) needs a launcher that runs every job in its own process" in out
    assert "+qwenlong_sweep=local" in out  # the launcher to use (tests/test_sweeps.py runs a real sweep)
    assert not any(s in out for s in RAY_STARTED), out[-2000:]


def test_inconsistent_lengths_fail_before_ray(tmp_path):
    proc = _run(["+recipe=qwenlong_phase2", "data.train_files=x.parquet", "data.val_files=y.parquet",
                 "actor_rollout_ref.rollout.max_model_len=32768"], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("actor_rollout_ref.rollout.max_model_len: 32768 < data.max_prompt_length + data.max_response_length "
            "= 70000") in out
    assert not any(s in out for s in RAY_STARTED), out[-2000:]


def _recording_path(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose ``python`` and ``qwenlong-verl`` write their arguments (one per line) to files and exit 0, so a
    recipe script's wiring can be read without starting verl (its args are then composed for real below)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "qwenlong-verl"):
        script = bin_dir / name
        script.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "{tmp_path}/{name}.args"\n')
        script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, tmp_path


def test_phase2_script_resumes_phase1_checkpoint_by_default(tmp_path):
    """recipes/phase2.sh continues phase I: main_ppo gets trainer.resume_mode=resume_path at phase I's last
    checkpoint, phase I's HF folder as the model, and phase I's difficulty table; RESTART=1 leaves the resume out."""
    from qwenlong_verl.hydra.compose import compose_main_ppo
    from qwenlong_verl.preflight.all_checks import plain
    from qwenlong_verl.preflight.resume_check import resume_findings

    phase1 = tmp_path / "phase1"
    hf = phase1 / "global_step_7" / "actor" / "huggingface"
    hf.mkdir(parents=True)
    (phase1 / "latest_checkpointed_iteration.txt").write_text("7")
    env, rec = _recording_path(tmp_path)
    script = Path(__file__).resolve().parent.parent / "recipes" / "phase2.sh"
    base = {**os.environ, **env, "PHASE1": str(phase1), "TRAIN": "/d/train.parquet", "VAL": "/d/val.parquet",
            "OUT": str(tmp_path / "phase2"), "NO_YARN": "1"}
    proc = subprocess.run(["bash", str(script), "trainer.total_training_steps=20"], env=base, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = (rec / "python.args").read_text().splitlines()
    assert args[:3] == ["-m", "verl.trainer.main_ppo", "+recipe=qwenlong_phase2"]
    assert (rec / "qwenlong-verl.args").read_text().splitlines() == ["preflight", *args[2:]]
    ckpt = phase1 / "global_step_7"
    assert "trainer.resume_mode=resume_path" in args and f"trainer.resume_from_path={ckpt}" in args
    assert f"actor_rollout_ref.model.path={hf}" in args
    assert f"++qwenlong.retrospective.difficulty_file={phase1 / 'qwenlong_difficulty.json'}" in args
    # the same arguments through verl's real composition: the resume keys land where verl reads them
    cfg = plain(compose_main_ppo(args[2:]))
    assert (cfg["trainer"]["resume_mode"], cfg["trainer"]["resume_from_path"]) == ("resume_path", str(ckpt))
    assert any("holds no model shards" in f.message for f in resume_findings(cfg))  # the fake folder has none

    proc = subprocess.run(["bash", str(script)], env={**base, "RESTART": "1"}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = (rec / "python.args").read_text().splitlines()
    assert not [a for a in args if a.startswith("trainer.resume")]
    assert f"actor_rollout_ref.model.path={hf}" in args
