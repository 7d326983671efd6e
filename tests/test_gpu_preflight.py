"""The GPU path, checked without GPUs: every recommended {phase} x {model} x {nodes x GPUs} combination goes through
verl 0.9.1's own start-up validation (``validate_config``, the actor/rollout config dataclasses, ``HFModelConfig``
built on a folder whose config.json has the real sizes) and our GPU-layout checks; the known-bad settings fail
naming the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from gpu_models import MODELS, OVERLAYS, make_model_folder

from qwenlong_verl.preflight.all_checks import run_preflight
from qwenlong_verl.rope_scaling import write_yarn_model

LAYOUTS = [(1, 8), (4, 8)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Model folders (plain and YaRN), prepared data with stored lengths, phase I's difficulty table."""
    from qwenlong_verl.pipeline.tiny_model import build_tokenizer

    root = tmp_path_factory.mktemp("gpu_preflight")
    tok = root / "tokenizer"
    build_tokenizer(tok)
    models = {name: make_model_folder(root / "models", name, tok) for name in MODELS}
    yarn = {name: write_yarn_model(path, root / "models" / f"{name}-yarn") for name, path in models.items()}
    rows = pd.DataFrame({"data_source": ["hotpotqa"] * 2, "prompt_length": [15000, 45000],
                         "prompt": [[{"role": "user", "content": "q"}]] * 2,
                         "extra_info": [{"index": 0, "split": "train"}, {"index": 1, "split": "train"}]})
    rows.to_parquet(root / "train.parquet")
    rows.to_parquet(root / "val.parquet")
    (root / "phase1").mkdir()
    # phase I's table: example 0 (15K tokens) never solved, so phase II's retrospective pool is not empty
    (root / "phase1" / "qwenlong_difficulty.json").write_text(json.dumps({"format": "qwenlong-difficulty", "version": 1, "metric": "acc", "examples": [
        {"index": 0, "data_source": "hotpotqa", "prompt_length": 15000, "history": [[1, 1, 8, 0.0]]}]}))
    return {"root": root, "models": models, "yarn": yarn}


def readme_command(cluster, name: str, phase: int, nnodes: int, gpus: int) -> list[str]:
    """The README's phase command for this model and layout (phase II: +qwenlong_rope=yarn on a yarn-model folder)."""
    root = cluster["root"]
    out = root / f"run_phase{phase}"
    args = [f"+recipe=qwenlong_phase{phase}", *OVERLAYS[name],
            f"data.train_files={root / 'train.parquet'}", f"data.val_files={root / 'val.parquet'}",
            f"trainer.default_local_dir={out}", f"trainer.nnodes={nnodes}", f"trainer.n_gpus_per_node={gpus}",
            f"++qwenlong.difficulty.output_file={out / 'qwenlong_difficulty.json'}",
            "qwenlong.judge.base_url=http://judge.example:8000/v1"]
    if phase == 1:
        return args + [f"actor_rollout_ref.model.path={cluster['models'][name]}"]
    return args + ["+qwenlong_rope=yarn", f"actor_rollout_ref.model.path={cluster['yarn'][name]}",
                   f"++qwenlong.retrospective.difficulty_file={root / 'phase1' / 'qwenlong_difficulty.json'}"]


def _errors(report) -> list[str]:
    return [f.line() for f in report.findings if f.level == "error"]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda nl: f"{nl[0]}x{nl[1]}")
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("phase", [1, 2], ids=["phase1", "phase2_yarn"])
def test_recommended_settings_pass_verl_startup(cluster, phase, name, layout):
    report = run_preflight(readme_command(cluster, name, phase, *layout), gpu_memory_gib=80, network=False)
    assert report.ok, "\n".join(_errors(report))
    verl_model = report.summary["verl_model_config"]  # HFModelConfig built by verl's own code
    if phase == 2:
        assert verl_model["rope_parameters"]["rope_type"] == "yarn"
        assert verl_model["rope_parameters"]["factor"] == 4.0
        assert verl_model["max_position_embeddings"] >= 70000
    memory = [f for f in report.findings if f.check == "vllm_memory"]
    assert memory and memory[0].level == "info" and "GiB" in memory[0].message


def test_sp8_on_a_28_head_model_fails_naming_sp_and_heads(cluster):
    args = [a for a in readme_command(cluster, "Qwen2.5-7B-Instruct", 1, 1, 8) if "qwenlong_model" not in a]
    errors = _errors(run_preflight(args, gpu_memory_gib=80, network=False))
    sp = [e for e in errors if e.startswith("actor_rollout_ref.actor.ulysses_sequence_parallel_size")]
    assert sp and "28 attention heads" in sp[0] and "ulysses_sequence_parallel_size=4" in sp[0], errors


def test_70k_on_a_32k_model_without_rope_scaling_fails(cluster):
    args = [a for a in readme_command(cluster, "Qwen2.5-14B-Instruct", 2, 1, 8) if "qwenlong_rope" not in a]
    args = [a if not a.startswith("actor_rollout_ref.model.path") else
            f"actor_rollout_ref.model.path={cluster['models']['Qwen2.5-14B-Instruct']}" for a in args]
    errors = _errors(run_preflight(args, gpu_memory_gib=80, network=False))
    assert any(e.startswith("actor_rollout_ref.rollout.max_model_len: 70000 > the model's max_position_embeddings "
                            "32768") and "yarn-model" in e for e in errors), errors
    # and verl's own model config says the same
    assert any("verl's rollout server refuses max_model_len 70000 > max_position_embeddings 32768" in e
               for e in errors), errors


def test_yarn_overlay_on_a_folder_without_yarn_names_the_helper(cluster):
    args = [a if not a.startswith("actor_rollout_ref.model.path") else
            f"actor_rollout_ref.model.path={cluster['models']['DeepSeek-R1-Distill-Qwen-32B']}"
            for a in readme_command(cluster, "DeepSeek-R1-Distill-Qwen-32B", 2, 4, 8)]
    errors = _errors(run_preflight(args, gpu_memory_gib=80, network=False))
    assert any(e.startswith("actor_rollout_ref.model.path: +qwenlong_rope=yarn") and "qwenlong-verl yarn-model" in e
               for e in errors), errors


def test_token_budget_below_prompt_plus_response_per_sp_fails(cluster):
    args = readme_command(cluster, "Qwen2.5-14B-Instruct", 2, 1, 8) + [
        "actor_rollout_ref.actor.ulysses_sequence_parallel_size=4"]
    errors = _errors(run_preflight(args, gpu_memory_gib=80, network=False))
    for key in ("actor_rollout_ref.actor.ppo_max_token_len_per_gpu",
                "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu"):
        assert any(e.startswith(f"{key}: 10000 tokens per GPU x SP 4 = 40000 < prompt + response = 70000")
                   for e in errors), (key, errors)


def test_rope_override_config_fails_in_our_check_and_in_verls_model_config(cluster):
    """What the yarn overlay did before: override_config.rope_scaling. verl's HFModelConfig really crashes on it."""
    args = readme_command(cluster, "Qwen2.5-32B-Instruct", 2, 4, 8) + [
        "+actor_rollout_ref.model.override_config.rope_scaling={rope_type:yarn,factor:4.0,"
        "original_max_position_embeddings:32768}"]
    report = run_preflight(args, gpu_memory_gib=80, network=False)
    checks = {f.check: f for f in report.findings if f.level == "error"}
    assert "rope" in checks and checks["rope"].key == "actor_rollout_ref.model.override_config.rope_scaling"
    assert "verl.HFModelConfig" in checks and "rope_type" in checks["verl.HFModelConfig"].message


def test_verl_validate_config_findings_come_through(cluster):
    args = readme_command(cluster, "Qwen2.5-14B-Instruct", 1, 1, 8) + [
        "actor_rollout_ref.actor.use_dynamic_bsz=false", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
        "data.train_batch_size=16"]  # ppo_mini_batch_size 32 > train_batch_size 16: verl's ActorConfig.validate
    report = run_preflight(args, gpu_memory_gib=80, network=False)
    assert any(f.check == "verl.validate_config" and "ppo_mini_batch_size" in f.message for f in report.findings), \
        _errors(report)


def test_cluster_paths_must_be_absolute_on_several_nodes(cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = readme_command(cluster, "DeepSeek-R1-Distill-Qwen-14B", 1, 4, 8) + [
        "trainer.default_local_dir=runs/phase1", "++qwenlong.difficulty.output_file=runs/phase1/d.json"]
    errors = _errors(run_preflight(args, gpu_memory_gib=80, network=False))
    assert any(e.startswith("trainer.default_local_dir: relative path 'runs/phase1' with trainer.nnodes=4")
               for e in errors), errors
    assert any(e.startswith("qwenlong.difficulty.output_file: relative path") for e in errors), errors
    single = readme_command(cluster, "DeepSeek-R1-Distill-Qwen-14B", 1, 1, 8) + ["trainer.default_local_dir=runs/p1"]
    assert run_preflight(single, gpu_memory_gib=80, network=False).ok


def test_wandb_without_credentials_fails(cluster, monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    args = readme_command(cluster, "DeepSeek-R1-Distill-Qwen-14B", 1, 1, 8) + ["trainer.logger=[console,wandb]"]
    errors = _errors(run_preflight(args, gpu_memory_gib=80, network=False))
    assert any(e.startswith("trainer.logger: wandb is listed") for e in errors), errors
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert run_preflight(args, gpu_memory_gib=80, network=False).ok


def test_file_logger_path_must_be_forwarded_to_a_cluster(cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(tmp_path / "metrics.jsonl"))
    args = readme_command(cluster, "DeepSeek-R1-Distill-Qwen-14B", 1, 4, 8)
    warned = [f for f in run_preflight(args, gpu_memory_gib=80, network=False).findings if f.check == "loggers"]
    assert warned and warned[0].fix == f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={tmp_path}/" \
                                       "metrics.jsonl"
    forwarded = args + [f"++ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={tmp_path}/m.jsonl"]
    assert not [f for f in run_preflight(forwarded, gpu_memory_gib=80, network=False).findings
                if f.check == "loggers"]


def test_small_gpus_fail_the_kv_cache_estimate(cluster):
    args = readme_command(cluster, "DeepSeek-R1-Distill-Qwen-32B", 2, 1, 8)
    report = run_preflight(args, gpu_memory_gib=40, network=False)  # 0.5 x 40 GiB - 16 GiB weights at TP 4
    memory = [f for f in report.findings if f.check == "vllm_memory"]
    assert memory[0].level == "error" and memory[0].key == "actor_rollout_ref.rollout.gpu_memory_utilization"


def test_judge_url_is_checked_and_probed(cluster):
    from fake_openai_server import FakeOpenAIServer

    base = readme_command(cluster, "DeepSeek-R1-Distill-Qwen-14B", 1, 1, 8)
    typo = [a for a in base if "judge.base_url" not in a] + ["qwenlong.judge.base_url=not-a-url"]
    assert any("qwenlong.judge.base_url='not-a-url' is not an http(s) URL" in e
               for e in _errors(run_preflight(typo, gpu_memory_gib=80, network=False)))
    with FakeOpenAIServer(model="Qwen/Qwen2.5-1.5B-Instruct") as server:
        live = [a for a in base if "judge.base_url" not in a] + [f"qwenlong.judge.base_url={server.base_url}"]
        report = run_preflight(live, gpu_memory_gib=80, network=True)
        assert report.ok, _errors(report)
        assert any(f.check == "judge" and "answers" in f.message for f in report.findings)
        port = server.port
    down = [a for a in base if "judge.base_url" not in a] + [f"qwenlong.judge.base_url=http://127.0.0.1:{port}/v1"]
    assert any(e.startswith(f"qwenlong.judge.base_url='http://127.0.0.1:{port}/v1': the judge is unreachable")
               for e in _errors(run_preflight(down, gpu_memory_gib=80, network=True)))
    with FakeOpenAIServer(model="some-other-model") as server:
        wrong = [a for a in base if "judge.base_url" not in a] + [f"qwenlong.judge.base_url={server.base_url}"]
        assert any(e.startswith("qwenlong.judge.model: 'Qwen/Qwen2.5-1.5B-Instruct' is not served") for e in
                   _errors(run_preflight(wrong, gpu_memory_gib=80, network=True)))


def _cli(args: list[str], cwd: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "qwenlong_verl.cli", "preflight", "--no-network", *options, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_passes_the_readme_phase2_command_for_32b_on_4x8(cluster, tmp_path):
    proc = _cli(readme_command(cluster, "DeepSeek-R1-Distill-Qwen-32B", 2, 4, 8), tmp_path,
                "--json", str(tmp_path / "preflight.json"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "preflight: 0 error(s)" in proc.stdout
    saved = json.loads((tmp_path / "preflight.json").read_text())
    assert saved["ok"] is True and saved["summary"]["nodes_x_gpus"] == "4x8"
    assert "64 heads" not in proc.stdout and "40 heads / 8 KV" in proc.stdout


def test_cli_fails_qwen_7b_with_sp8_naming_the_key(cluster, tmp_path):
    args = [a for a in readme_command(cluster, "Qwen2.5-7B-Instruct", 2, 1, 8) if "qwenlong_model" not in a]
    proc = _cli(args, tmp_path)
    assert proc.returncode == 1
    assert "[ERROR] actor_rollout_ref.actor.ulysses_sequence_parallel_size: SP 8 does not divide the model's 28 " \
           "attention heads" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_cli_fails_a_phase2_launch_whose_training_file_has_no_phase2_rows(cluster, tmp_path):
    """All prompts under 20K: phase II's band is empty, and the sampler would have nothing to draw minutes into the
    job. preflight exits 1 naming the band and the rows per band; `~` in the path is expanded (as a shell would)."""
    short = pd.DataFrame({"data_source": ["hotpotqa"] * 3, "prompt_length": [900, 15000, 19999],
                          "prompt": [[{"role": "user", "content": "q"}]] * 3,
                          "extra_info": [{"index": i, "split": "train"} for i in range(3)]})
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    short.to_parquet(home / "data" / "short.parquet")
    args = [a if not a.startswith("data.train_files=") else "data.train_files='~/data/short.parquet'"  # quoted: Hydra's grammar
            for a in readme_command(cluster, "DeepSeek-R1-Distill-Qwen-32B", 2, 1, 8)]
    env_home = {**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "qwenlong_verl.cli", "preflight", "--no-network", *args],
                          cwd=tmp_path, env=env_home, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert (f"[ERROR] data.train_files: {home / 'data' / 'short.parquet'} has no row in phase 2 (20000 < prompt "
            "tokens <= 60000), which this run trains (3 rows; phase 1 (0 < prompt tokens <= 20000): 3 rows; "
            "phase 2 (20000 < prompt tokens <= 60000): 0 rows)") in proc.stdout, proc.stdout[-3000:]
    assert "does not exist" not in proc.stdout  # the file check found ~/data/short.parquet
    assert "Traceback" not in proc.stdout + proc.stderr


def test_retrospective_pool_must_not_be_empty_and_tilde_is_expanded(cluster, tmp_path, monkeypatch):
    from qwenlong_verl.preflight.checks import check_cluster_paths, check_phase_bands

    root = cluster["root"]
    empty = tmp_path / "empty_difficulty.json"
    empty.write_text(json.dumps({"format": "qwenlong-difficulty", "version": 1, "metric": "acc", "examples": []}))
    cfg = {"trainer": {"v1": {"trainer_mode": "qwenlong"}, "nnodes": 2},
           "data": {"train_files": str(root / "train.parquet")},
           "qwenlong": {"curriculum": {"lengths": [20000, 60000], "phase": 2},
                        "retrospective": {"enable": True, "difficulty_file": str(empty)}}}
    found = check_phase_bands(cfg)
    assert [f.key for f in found] == ["qwenlong.retrospective.difficulty_file"], found
    assert "gives phase 2 (20000 < prompt tokens <= 60000) no retrospective example (0 examples" in found[0].message
    cfg["qwenlong"]["retrospective"]["difficulty_file"] = str(root / "phase1" / "qwenlong_difficulty.json")
    assert check_phase_bands(cfg) == []
    cfg["qwenlong"]["curriculum"]["phase"] = 3  # no such phase: left to the option checks, no crash here
    assert check_phase_bands(cfg) == []
    monkeypatch.setenv("HOME", "/shared/home/me")
    cfg["data"]["train_files"] = "~/data/x.parquet"
    fixes = [f.fix for f in check_cluster_paths(cfg) if f.key == "data.train_files"]
    assert fixes == ["data.train_files=/shared/home/me/data/x.parquet (on storage every node mounts)"]


def test_main_ppo_stops_before_ray_on_sp8_for_a_7b_model(cluster, tmp_path):
    """The Hydra guard runs the cheap checks in the driver: seconds, not minutes into the job on GPU workers."""
    args = [a for a in readme_command(cluster, "Qwen2.5-7B-Instruct", 1, 1, 8) if "qwenlong_model" not in a]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "actor_rollout_ref.actor.ulysses_sequence_parallel_size: SP 8 does not divide" in out
    assert "ray init kwargs" not in out and "Started a local Ray instance" not in out


@pytest.mark.parametrize("nnodes", [1, 4])
def test_pipeline_gpu_commands_pass_preflight(cluster, tmp_path, nnodes):
    """`qwenlong-verl pipeline --gpu` on one node by default (it used to ask verl for 4 x 8 GPUs), and on 4 nodes
    when told; phase II trains from a YaRN folder made from phase I's weights."""
    from qwenlong_verl.pipeline.pipeline_options import PipelineOptions
    from qwenlong_verl.pipeline.stages import rl_command, yarn_model

    root = cluster["root"]
    o = PipelineOptions(mode="gpu", workdir=tmp_path / "run", nnodes=nnodes, nproc_per_node=8)
    phase1_hf = cluster["models"]["DeepSeek-R1-Distill-Qwen-14B"]
    for phase in (1, 2):
        model = str(phase1_hf) if phase == 1 else yarn_model(str(phase1_hf), tmp_path / "run" / "phase2")
        cmd = rl_command(o, phase, train=str(root / "train.parquet"), val=str(root / "val.parquet"), model=model,
                         ckpt=tmp_path / "run" / f"phase{phase}" / "ckpt",
                         difficulty_out=tmp_path / "run" / f"phase{phase}" / "difficulty.json",
                         difficulty_in=str(root / "phase1" / "qwenlong_difficulty.json") if phase == 2 else None,
                         judge_url="http://judge.example:8000/v1", metrics=tmp_path / "m.jsonl")
        assert cmd[1:3] == ["-m", "verl.trainer.main_ppo"]
        report = run_preflight(cmd[3:], gpu_memory_gib=80, network=False)
        assert report.ok, (phase, _errors(report))
        assert report.summary["nodes_x_gpus"] == f"{nnodes}x8"
    assert (tmp_path / "run" / "phase2" / "model_yarn" / ".qwenlong_yarn.json").is_file()


def test_pipeline_gpu_checks_both_rl_phases_before_sft(cluster, tmp_path):
    """A 7B start model with the recipe's SP 8 stops the GPU pipeline in its data stage, before hours of SFT; with
    the 7B overlay it passes (phase II checked on a YaRN view of the start model)."""
    from qwenlong_verl.pipeline.pipeline_options import PipelineError, PipelineOptions
    from qwenlong_verl.pipeline.stage_runner import StageContext
    from qwenlong_verl.pipeline.stages import run_data

    root = cluster["root"]
    common = dict(mode="gpu", model=str(cluster["models"]["Qwen2.5-7B-Instruct"]),
                  train_data=str(root / "train.parquet"), val_data=str(root / "val.parquet"))
    ctx = StageContext(options=PipelineOptions(workdir=tmp_path / "a", **common), current="data")
    ctx.stage_dir().mkdir(parents=True)
    with pytest.raises(PipelineError) as err:
        run_data(ctx)
    text = str(err.value)
    assert "phase 1: actor_rollout_ref.actor.ulysses_sequence_parallel_size: SP 8 does not divide" in text
    assert "phase 2: actor_rollout_ref.actor.ulysses_sequence_parallel_size" in text
    ok = StageContext(options=PipelineOptions(workdir=tmp_path / "b", overrides={"rl": ["+qwenlong_model=qwen_7b"]},
                                              **common), current="data")
    ok.stage_dir().mkdir(parents=True)
    assert run_data(ok)["train"] == str(root / "train.parquet")


def _phase1_checkpoint(root: Path, step: int, world: int, contents=("model", "optim", "extra_state")) -> Path:
    """A phase-I checkpoint folder laid out as verl's FSDP checkpoint manager writes it (file names only: preflight
    reads names, verl's workers read the shards)."""
    folder = root / f"global_step_{step}"
    (folder / "actor").mkdir(parents=True)
    for kind in contents:
        for rank in range(world):
            (folder / "actor" / f"{kind}_world_size_{world}_rank_{rank}.pt").write_bytes(b"")
    (folder / "data.pt").write_bytes(b"")
    return folder


def test_phase2_resume_checks_world_size_contents_and_steps(cluster, tmp_path):
    """Phase II resuming phase I's checkpoint: preflight names what would fail on the workers (another world size,
    no optimizer shard) or silently train nothing (total steps not past the resumed step)."""
    ok = _phase1_checkpoint(tmp_path / "p1", 40, 8)
    base = readme_command(cluster, "Qwen2.5-14B-Instruct", 2, 1, 8) + ["trainer.resume_mode=resume_path"]
    report = run_preflight(base + [f"trainer.resume_from_path={ok}", "trainer.total_training_steps=80"],
                           gpu_memory_gib=80, network=False)
    assert not [f for f in report.findings if f.check == "resume"], _errors(report)

    wrong_world = run_preflight(base + [f"trainer.resume_from_path={ok}", "trainer.nnodes=4"], gpu_memory_gib=80,
                                network=False)
    assert any(e.startswith("trainer.nnodes: the checkpoint was written by world size [8] and this launch has 4 x 8")
               for e in _errors(wrong_world)), _errors(wrong_world)

    no_optim = _phase1_checkpoint(tmp_path / "p1b", 40, 8, contents=("model", "extra_state"))
    errors = _errors(run_preflight(base + [f"trainer.resume_from_path={no_optim}"], gpu_memory_gib=80,
                                   network=False))
    assert any("has no optim_world_size_8_rank_0.pt: the Adam moments restart" in e for e in errors), errors

    errors = _errors(run_preflight(base + [f"trainer.resume_from_path={ok}", "trainer.total_training_steps=40"],
                                   gpu_memory_gib=80, network=False))
    assert any(e.startswith("trainer.total_training_steps: 40 is not past the resumed step 40") for e in errors), errors

    errors = _errors(run_preflight(base + [f"trainer.resume_from_path={tmp_path / 'p1' / 'latest'}"],
                                   gpu_memory_gib=80, network=False))
    assert any("is not a verl checkpoint folder" in e for e in errors), errors
