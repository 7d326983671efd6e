"""The stages of the QwenLong-L1 pipeline and their hand-offs.

``data`` -> ``sft`` -> ``phase1`` -> ``phase2`` -> ``eval`` -> ``report``. Each training stage is one subprocess
of verl's own entry point (``verl.trainer.sft_trainer`` under torchrun, ``verl.trainer.main_ppo``), configured by
this package's recipes plus the overrides built here:

* SFT -> phase I: the SFT checkpoint's HF folder (``checkpoint.save_contents`` has ``hf_model``), see
  :func:`sft_hf_model`.
* phase I -> phase II (``phase2_start="resume"``, the default): phase II resumes phase I's last full verl
  checkpoint (``trainer.resume_mode=resume_path``, :func:`resume_overrides`): weights, Adam moments, lr scheduler,
  global step and RNG continue, so phase II's steps number on from phase I's. Its sampler sees a checkpoint of
  another phase and starts phase II's band at epoch 0 (nothing of phase I's data order carries over), and phase II
  writes its own checkpoint folder. An interrupted phase II re-run goes on from its own last checkpoint there
  (``trainer.resume_mode=auto``), not from phase I's end again. ``phase2_start="restart"`` is the paper's separate
  launch: the actor's HF folder of phase I's last checkpoint (:func:`rl_hf_model`) with a fresh optimizer and step
  count. Either way phase I's difficulty table is passed in :func:`retrospective_overrides`, the one place that wires
  ``qwenlong.difficulty.output_file`` of phase I to ``qwenlong.retrospective.difficulty_file`` of phase II.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from qwenlong_verl.pipeline.pipeline_options import PipelineError, PipelineOptions
from qwenlong_verl.pipeline.stage_runner import Stage, StageContext

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
DIFFICULTY_FILE = "difficulty.json"
HF_CHECKPOINT_CONTENTS = "[model,optimizer,extra,hf_model]"

# Environment of every subprocess; the CPU demo also runs offline (everything it uses is built locally).
BASE_ENV = {
    "TOKENIZERS_PARALLELISM": "false",
    "HYDRA_FULL_ERROR": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
}
CPU_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled"}


def _env(ctx: StageContext, metrics: Path) -> dict[str, str]:
    env = {**BASE_ENV, "VERL_FILE_LOGGER_PATH": str(metrics)}
    if ctx.options.cpu:
        env.update(CPU_ENV)
        env["VERL_PLATFORM"] = "cpu"  # torchrun's workers import verl before Hydra's guard could set it
    return env


def _rotate_metrics(path: Path) -> None:
    """verl's file logger truncates its file; keep the log of an interrupted attempt before a resumed one."""
    if path.exists() and path.stat().st_size:
        n = 1
        while path.with_name(f"{path.stem}.{n}{path.suffix}").exists():
            n += 1
        path.rename(path.with_name(f"{path.stem}.{n}{path.suffix}"))


def _abs(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


# ---------------------------------------------------------------------------------------------------- data
def _stored_length_check(path: str) -> None:
    import pyarrow.parquet as pq

    if not str(path).endswith(".parquet"):
        return
    names = pq.read_schema(path).names
    if "prompt_length" not in names:
        raise PipelineError(
            f"stage data: {path} has no prompt_length column; the phased sampler selects by stored length. Run "
            f"`qwenlong-verl prepare --input {path} --tokenizer MODEL --out prepared.parquet` first")


def _is_messages_file(path: str) -> bool:
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        return "messages" in pq.read_schema(path).names
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    try:
        return "messages" in json.loads(first)
    except (json.JSONDecodeError, TypeError):
        return False


def run_data(ctx: StageContext) -> dict[str, Any]:
    """CPU demo: tiny model + synthetic copy-task DocQA (train / val / held-out eval / SFT). GPU: check the given
    data and convert the SFT triplets into the ``messages`` layout."""
    from transformers import AutoTokenizer

    from qwenlong_verl.data.sft import SFTConversionOptions, convert_files
    from qwenlong_verl.data.synth import generate_docqa, write_rows

    o, out = ctx.options, ctx.stage_dir()
    model = o.model
    if model is None:
        if not o.cpu:
            raise PipelineError("stage data: --model is required on GPUs (the SFT start point, e.g. "
                                "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B)")
        from qwenlong_verl.pipeline.tiny_model import build_tiny_model

        model = str(build_tiny_model(out / "model"))
        if o.demo.pretrain_steps:
            from qwenlong_verl.pipeline.tiny_model import pretrain_code_copy

            pretrain_code_copy(model, steps=o.demo.pretrain_steps, seed=o.demo.seed)
    tok = AutoTokenizer.from_pretrained(model)
    result: dict[str, Any] = {"model": _abs(model)}
    d = o.demo

    def synth(name: str, n: int, lo: int, hi: int, seed: int, offset: int, split: str) -> str:
        rows = generate_docqa(n, min_tokens=lo, max_tokens=hi, tokenizer=tok, seed=seed, kinds=d.kinds,
                              index_offset=offset, split=split)
        path = out / f"{name}.parquet"
        write_rows(rows, str(path))
        return str(path)

    if o.train_data:
        _stored_length_check(o.train_data)
        result["train"] = _abs(o.train_data)
    elif o.cpu:
        result["train"] = synth("train", d.train_rows, d.min_tokens, d.max_tokens, d.seed, 0, "train")
    else:
        raise PipelineError("stage data: --train-data is required on GPUs (a parquet prepared by "
                            "`qwenlong-verl prepare`)")
    if o.val_data:
        result["val"] = _abs(o.val_data)
    elif o.cpu:
        result["val"] = synth("val", d.val_rows, d.min_tokens, d.max_tokens, d.seed + 1, 100_000, "val")
    else:
        result["val"] = result["train"]
        logger.warning("stage data: no --val-data; validation uses the training file")
    if o.eval_data:
        result["eval"] = [_abs(p) for p in o.eval_data]
    elif o.cpu:
        result["eval"] = [synth("eval", d.eval_rows, d.min_tokens, d.max_tokens, d.seed + 2, 200_000, "test")]
    else:
        result["eval"] = []

    sft_inputs = list(o.sft_data)
    if not sft_inputs and o.cpu:
        sft_inputs = [synth("sft_triplets", d.sft_rows, d.min_tokens, d.sft_max_tokens, d.seed + 3, 300_000, "sft")]
    if sft_inputs:
        if len(sft_inputs) == 1 and _is_messages_file(sft_inputs[0]):
            result["sft"] = _abs(sft_inputs[0])
        else:
            # paper §2.3: the SFT set lies within phase I's input bound L1
            stats = convert_files(sft_inputs, out / "sft.parquet",
                                  SFTConversionOptions(reasoning=o.sft_reasoning, max_prompt_tokens=o.phase_lengths[0]),
                                  tokenizer=tok)
            result["sft"] = str(out / "sft.parquet")
            result["sft_conversion"] = stats.as_dict()
    result["phase_sizes"] = phase_sizes(result["train"], o.phase_lengths)
    if not o.cpu:
        preflight_rl_phases(ctx, result)
    return result


def preflight_rl_phases(ctx: StageContext, data: dict[str, Any]) -> None:
    """GPU: check both RL phases' main_ppo commands on the start model before SFT spends hours (same architecture as
    the weights the phases will get): SP vs heads, token budgets, context vs positions (phase II on a YaRN view of
    the start model), TP, vLLM memory, cluster paths, loggers. A problem stops the pipeline here, named."""
    import tempfile

    from qwenlong_verl.hydra.compose import compose_main_ppo
    from qwenlong_verl.preflight.all_checks import driver_findings

    o = ctx.options
    model = data["model"]
    if not Path(model).is_dir():
        logger.warning("stage data: %s is not a local folder: the RL phases are checked when they start", model)
        return
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="qwenlong_preflight_") as tmp:
        for phase in (1, 2):
            start = yarn_model(model, Path(tmp)) if phase == 2 and o.yarn_phase2 else model
            cmd = rl_command(o, phase, train=data["train"], val=data["val"], model=start,
                             ckpt=ctx.stage_dir(f"phase{phase}") / "ckpt",
                             difficulty_out=difficulty_output(ctx.stage_dir(f"phase{phase}")), difficulty_in=None,
                             judge_url=ctx.judge_url)
            found = driver_findings(compose_main_ppo(cmd[3:]))
            problems += [f"phase {phase}: {f.line()}" for f in found if f.level == "error"]
    if problems:
        raise PipelineError("stage data: the RL phases would fail on the GPUs:\n  - " + "\n  - ".join(problems))


def phase_sizes(train: str, lengths: tuple[int, int], difficulty_file: str | None = None,
                mode: str = "zero_mean", ratio: float | None = None) -> dict[str, Any]:
    """Band size per phase (paper Eq. 9) and, with phase I's difficulty file, phase II's retrospective candidates,
    computed by the trainer's own selection code."""
    from qwenlong_verl.sampling.difficulty import DifficultyTable
    from qwenlong_verl.sampling.options import sampling_options
    from qwenlong_verl.sampling.phase_plan import build_plan
    from qwenlong_verl.sampling.phases import view_from_file

    options = sampling_options({"qwenlong": {
        "curriculum": {"lengths": list(lengths)},
        "retrospective": {"enable": bool(difficulty_file), "difficulty_file": difficulty_file, "mode": mode,
                          "ratio": ratio}}})
    table = DifficultyTable.load(difficulty_file) if difficulty_file else None
    plan = build_plan(view_from_file(train), options, table)
    out: dict[str, Any] = {"rows": plan["rows"], "outside_all_phases": plan["outside_all_phases"]}
    for p in plan["phases"]:
        out[f"phase{p['phase']}"] = {"band_size": p["band_size"], "retro_candidates": p["retro_candidates"],
                                     "epoch_size": p["epoch_size"], "lengths": p["lengths"]}
    if "difficulty" in plan:
        out["difficulty"] = {k: plan["difficulty"][k] for k in ("examples", "zero_mean", "all_correct")}
    return out


# ---------------------------------------------------------------------------------------------------- SFT
def _latest_step(ckpt: Path) -> int:
    tracker = ckpt / "latest_checkpointed_iteration.txt"
    if not tracker.is_file():
        raise PipelineError(f"no checkpoint in {ckpt} (no latest_checkpointed_iteration.txt): the run saved nothing")
    return int(tracker.read_text().strip())


def sft_hf_model(ckpt: Path) -> Path:
    """HF weights of the SFT run's last checkpoint: ``global_step_N/huggingface`` (verl's SFT trainer always saves
    the last step)."""
    path = ckpt / f"global_step_{_latest_step(ckpt)}" / "huggingface"
    if not (path / "config.json").is_file() or not any(path.glob("*.safetensors")):
        raise PipelineError(f"SFT checkpoint {path} has no HF weights; checkpoint.save_contents needs hf_model")
    return path


def sft_command(o: PipelineOptions, data: str, model: str, ckpt: Path) -> list[str]:
    recipe = "qwenlong_sft_cpu" if o.cpu else "qwenlong_sft"
    if o.sft_launcher == "ray":
        head = [sys.executable, "-m", "verl.trainer.sft_trainer_ray"]
    else:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
                f"--nproc_per_node={o.nproc_per_node}", "-m", "verl.trainer.sft_trainer"]
    args = [
        f"+sft_recipe={recipe}",
        f"data.train_files={data}",
        f"model.path={model}",
        f"trainer.default_local_dir={ckpt}",
        "trainer.experiment_name=pipeline_sft",
        f"trainer.total_epochs={o.sft_epochs}",
        "trainer.logger=[console,file]",
        f"checkpoint.save_contents={HF_CHECKPOINT_CONTENTS}",
    ]
    if o.sft_steps is not None:
        args.append(f"trainer.total_training_steps={o.sft_steps}")
    if not o.cpu:
        args += [f"trainer.n_gpus_per_node={o.nproc_per_node}",
                 f"trainer.nnodes={o.nnodes if o.sft_launcher == 'ray' else 1}"]
    return head + args + o.stage_overrides("sft")


def run_sft(ctx: StageContext) -> dict[str, Any]:
    data = ctx.outputs("data") or {}
    if not data.get("sft"):
        raise PipelineError("stage sft: no SFT data (--sft-data: question-document-answer triplets with reasoning, "
                            "or a `messages` parquet); or leave SFT out with --skip sft")
    out = ctx.stage_dir()
    metrics = out / METRICS_FILE
    _rotate_metrics(metrics)
    ckpt = out / "ckpt"
    ctx.run_command(sft_command(ctx.options, data["sft"], data["model"], ckpt), env=_env(ctx, metrics))
    return {"hf_model": str(sft_hf_model(ckpt)), "ckpt": str(ckpt), "metrics": str(metrics),
            "start_model": data["model"]}


# ---------------------------------------------------------------------------------------------------- RL
def rl_hf_model(ckpt: Path) -> Path:
    """HF weights of an RL run's last checkpoint: ``global_step_N/actor/huggingface``."""
    path = ckpt / f"global_step_{_latest_step(ckpt)}" / "actor" / "huggingface"
    if not (path / "config.json").is_file() or not any(path.glob("*.safetensors")):
        raise PipelineError(f"RL checkpoint {path} has no HF weights; actor.checkpoint.save_contents needs hf_model")
    return path


def input_model(ctx: StageContext, stage: str) -> tuple[str, str]:
    """(path, source stage) of the model a stage starts from: the latest earlier training stage that ran."""
    order = ["phase2", "phase1", "sft"]
    earlier = order[order.index(stage) + 1:] if stage in order else order
    for name in earlier:
        out = ctx.outputs(name)
        if out and out.get("hf_model"):
            return out["hf_model"], name
    data = ctx.outputs("data")
    if not data:
        raise PipelineError(f"stage {stage}: no model: the data stage did not run")
    return data["model"], "base"


def difficulty_output(stage_dir: Path) -> Path:
    """Where phase I writes its difficulty table (``qwenlong.difficulty.output_file``)."""
    return stage_dir / DIFFICULTY_FILE


def retrospective_overrides(difficulty_file: str | None, mode: str, ratio: float | None = None) -> list[str]:
    """THE hand-off of phase I's difficulty table to phase II (retrospective sampling, paper §3.2). Without a file
    (phase I skipped) phase II trains on its own band only."""
    if not difficulty_file:
        return ["++qwenlong.retrospective.enable=false"]
    out = ["++qwenlong.retrospective.enable=true", f"++qwenlong.retrospective.difficulty_file={difficulty_file}",
           f"++qwenlong.retrospective.mode={mode}"]
    if ratio is not None:
        out.append(f"++qwenlong.retrospective.ratio={ratio}")
    return out


def latest_checkpoint(ckpt: Path) -> Path:
    """The last complete verl checkpoint folder ``global_step_N`` of a run's ``trainer.default_local_dir``."""
    return ckpt / f"global_step_{_latest_step(ckpt)}"


def resume_overrides(checkpoint: Path, steps: int | None, *, own_progress: bool = False) -> list[str]:
    """Continue a run's full training state in a new launch (phase II after phase I): verl's ``resume_path`` mode
    restores the actor's weights, optimizer and lr scheduler, the RNG and the global step N from
    ``checkpoint`` (``.../global_step_N``). Global steps number on, so the launch must run to N + ``steps``; verl's
    epoch loop counts from N // steps_per_epoch as well, so ``total_epochs`` is raised alike.

    ``own_progress``: this stage was interrupted after saving checkpoints of its own; verl's ``auto`` mode goes on
    from the latest of them (``trainer.default_local_dir``) instead of starting the phase again from ``checkpoint``,
    and the totals stay N + ``steps``."""
    if not checkpoint.name.startswith("global_step_"):
        raise PipelineError(f"resume: {checkpoint} is not a verl checkpoint folder (global_step_N)")
    done = int(checkpoint.name.split("global_step_")[-1])
    out = (["trainer.resume_mode=auto"] if own_progress
           else ["trainer.resume_mode=resume_path", f"trainer.resume_from_path={checkpoint}"])
    if steps is not None:
        total = done + steps
        out += [f"trainer.total_training_steps={total}", f"trainer.total_epochs={total}"]
    return out


def rl_command(o: PipelineOptions, phase: int, *, train: str, val: str, model: str, ckpt: Path,
               difficulty_out: Path | None, difficulty_in: str | None, judge_url: str | None,
               metrics: Path | None = None, resume_from: Path | None = None,
               own_progress: bool = False) -> list[str]:
    """verl's ``main_ppo`` command of one RL phase. ``resume_from``: a ``global_step_N`` checkpoint whose full
    training state the phase continues (:func:`resume_overrides`); ``model`` then names the architecture and
    tokenizer (its weights are replaced by the checkpoint's). ``own_progress``: ``ckpt`` holds checkpoints of an
    interrupted attempt of this phase, which the launch continues instead."""
    args = [sys.executable, "-m", "verl.trainer.main_ppo", f"+recipe=qwenlong_phase{phase}"]
    if o.cpu:
        args.append("+qwenlong_env=cpu")
    elif phase == 2 and o.yarn_phase2:
        args.append("+qwenlong_rope=yarn")
    steps = o.phase1_steps if phase == 1 else o.phase2_steps
    args += [
        f"data.train_files={train}",
        f"data.val_files={val}",
        f"actor_rollout_ref.model.path={model}",
        f"trainer.default_local_dir={ckpt}",
        f"trainer.experiment_name=pipeline_phase{phase}",
        "trainer.logger=[console,file]",
        f"actor_rollout_ref.actor.checkpoint.save_contents={HF_CHECKPOINT_CONTENTS}",
        f"++qwenlong.curriculum.lengths=[{o.phase_lengths[0]},{o.phase_lengths[1]}]",
        f"++qwenlong.curriculum.phase={phase}",
    ]
    if steps is not None:
        # verl saves at the last step whenever save_freq > 0: the HF weights the next stage starts from. verl also
        # stops after total_epochs epochs, before the last step if DAPO refills use up the data; an epoch is at
        # least one step, so `steps` epochs let the step count decide.
        args += [f"trainer.total_training_steps={steps}", f"trainer.save_freq={steps}", f"trainer.total_epochs={steps}"]
    if resume_from is not None:
        # later values win: the totals count on from phase I's step
        args += resume_overrides(resume_from, steps, own_progress=own_progress)
    if o.max_response_length is not None:
        args.append(f"data.max_response_length={o.max_response_length}")
    if o.rl_lr is not None:
        args.append(f"actor_rollout_ref.actor.optim.lr={o.rl_lr}")
    if difficulty_out is not None:
        args.append(f"++qwenlong.difficulty.output_file={difficulty_out}")
    if phase == 2:
        args += retrospective_overrides(difficulty_in, o.retrospective_mode, o.retrospective_ratio)
    if judge_url:
        args.append(f"++qwenlong.judge.base_url={judge_url}")
        if o.judge_model:
            args.append(f"++qwenlong.judge.model={o.judge_model}")
    # CPU mode too (the demo's 1 x 1 by default): a CPU run on a Ray cluster has its ranks on several nodes
    args += [f"trainer.n_gpus_per_node={o.nproc_per_node}", f"trainer.nnodes={o.nnodes}"]
    if metrics is not None:
        # verl's file logger runs in the TaskRunner, on any node of a Ray cluster: the driver's environment
        # does not reach it there, verl's runtime_env does (CPU mode included: --ray-address lost the metrics).
        args.append(f"++ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={metrics}")
    if o.ray_address:
        args.append(f"+ray_kwargs.ray_init.address={o.ray_address}")
    return args + o.stage_overrides(f"phase{phase}")


def yarn_model(model: str, stage_dir: Path) -> str:
    """Phase II past 32K: the start model with YaRN in its ``config.json`` (``qwenlong-verl yarn-model``), the one
    setting verl's FSDP actor and vLLM rollout both read."""
    from qwenlong_verl.rope_scaling import RopeScalingError, write_yarn_model

    if not Path(model).is_dir():
        raise PipelineError(f"stage phase2: YaRN needs a local model folder, got {model!r}; download it "
                            "(`huggingface-cli download NAME --local-dir DIR`) and pass the folder, or --no-yarn")
    try:
        return str(write_yarn_model(model, stage_dir / "model_yarn"))
    except RopeScalingError as exc:
        raise PipelineError(f"stage phase2: {exc}") from exc


def run_phase(ctx: StageContext, phase: int) -> dict[str, Any]:
    data = ctx.outputs("data")
    if not data:
        raise PipelineError(f"stage phase{phase}: the data stage did not run")
    out = ctx.stage_dir()
    metrics = out / METRICS_FILE
    _rotate_metrics(metrics)
    ckpt = out / "ckpt"
    model, source = input_model(ctx, f"phase{phase}")
    difficulty_in = None
    if phase == 2:
        p1 = ctx.outputs("phase1")
        difficulty_in = p1.get("difficulty_file") if p1 else None
        if difficulty_in is None:
            logger.warning("stage phase2: phase I did not run: no retrospective sampling")
    difficulty_out = difficulty_output(out)
    run_model = model
    if phase == 2 and not ctx.options.cpu and ctx.options.yarn_phase2:
        run_model = yarn_model(model, out)
    resume_from, own = None, None
    if phase == 2 and source == "phase1" and ctx.options.phase2_start == "resume":
        resume_from = latest_checkpoint(Path(ctx.outputs("phase1")["ckpt"]))
        if (ckpt / "latest_checkpointed_iteration.txt").is_file():
            # an interrupted attempt of phase II (a forced rerun empties the folder first): go on from its own last
            # checkpoint, not from phase I's end again, which would throw its steps away
            own = latest_checkpoint(ckpt)
            logger.info("stage phase2: continuing the interrupted attempt from %s", own)
    cmd = rl_command(ctx.options, phase, train=data["train"], val=data["val"], model=run_model, ckpt=ckpt,
                     difficulty_out=difficulty_out, difficulty_in=difficulty_in, judge_url=ctx.judge_url,
                     metrics=metrics, resume_from=resume_from, own_progress=own is not None)
    ctx.run_command(cmd, env=_env(ctx, metrics))
    if not (ckpt / "latest_checkpointed_iteration.txt").is_file():
        from qwenlong_verl.reporting import read_metrics

        logged = read_metrics(metrics)
        raise PipelineError(
            f"stage phase{phase}: verl finished after {logged[-1]['step'] if logged else 0} logged steps without "
            f"saving a checkpoint in {ckpt}: it saves at the last step (trainer.total_training_steps) and every "
            "trainer.save_freq steps; a run that ends early (trainer.total_epochs used up) saves nothing. Set "
            f"--phase{phase}-steps, or trainer.save_freq / trainer.total_epochs with --phase{phase}-override")
    result: dict[str, Any] = {"hf_model": str(rl_hf_model(ckpt)), "start_model": model, "start_stage": source,
                              "ckpt": str(ckpt), "metrics": str(metrics), "retrospective_file": difficulty_in,
                              "continued_from": str(resume_from) if resume_from else None,
                              "continued_own_attempt": str(own) if own else None}
    if difficulty_out.is_file():
        result["difficulty_file"] = str(difficulty_out)
    elif phase == 1:
        raise PipelineError(f"stage phase1: the trainer wrote no difficulty table at {difficulty_out}; is "
                            "trainer.v1.trainer_mode=qwenlong with qwenlong.difficulty.enable=true?")
    result["phase_sizes"] = phase_sizes(data["train"], ctx.options.phase_lengths, difficulty_in,
                                        ctx.options.retrospective_mode, ctx.options.retrospective_ratio)
    return result


# ---------------------------------------------------------------------------------------------------- eval
def eval_models(ctx: StageContext) -> list[tuple[str, str]]:
    """(label, HF folder) of the models to evaluate, without repeats of one folder."""
    chain = {"base": (ctx.outputs("data") or {}).get("model")}
    for name in ("sft", "phase1", "phase2"):
        chain[name] = (ctx.outputs(name) or {}).get("hf_model")
    final = next((chain[n] for n in ("phase2", "phase1", "sft", "base") if chain.get(n)), None)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for label in ctx.options.eval_models:
        path = final if label == "final" else chain.get(label)
        if label == "final":
            label = next(n for n in ("phase2", "phase1", "sft", "base") if chain.get(n) == final)
        if path and path not in seen:
            seen.add(path)
            out.append((label, path))
    return out


def score_responses(ctx: StageContext, label: str, responses: Path) -> dict[str, Any]:
    """Score one model's responses in this process with the reward library (the same hybrid scorer as
    ``qwenlong-verl score``: rule, and the judge when the run has one); writes ``<label>_scored.jsonl`` and
    ``<label>_scores.json``. A judge call that finally failed fails the stage, named: such scores are not final."""
    import asyncio

    from qwenlong_verl.outputs import write_jsonl, write_text
    from qwenlong_verl.reward.judge import JudgeOptions
    from qwenlong_verl.reward.offline import load_rows, score_payload, score_rows, scored_rows, summarise
    from qwenlong_verl.reward.scoring import ScoreOptions

    o, out = ctx.options, ctx.stage_dir()
    rows = load_rows(responses)
    judge = None
    if ctx.judge_url:
        from qwenlong_verl.openai_client import openai_base_url

        judge = JudgeOptions(base_url=openai_base_url(ctx.judge_url),
                             **({"model": o.judge_model} if o.judge_model else {}))
    options = ScoreOptions(answer_after_think="optional", qa_metric="em_or_sub_em")  # as `qwenlong-verl score`
    scores, judge_stats = asyncio.run(score_rows(rows, options, judge))
    write_jsonl(out / f"{label}_scored.jsonl", scored_rows(rows, scores), default=str)
    summary = summarise(scores)
    payload = score_payload(responses, summary, scores, judge_stats)
    failed = payload["judge_failed_rows"]
    write_text(out / f"{label}_scores.json", json.dumps(payload, indent=2) + "\n")
    if failed:
        raise PipelineError(f"stage eval: the judge call failed for {failed} of {len(scores)} {label} response(s); "
                            f"their scores are rule-only ({out / f'{label}_scores.json'}). Check the judge and rerun "
                            "with --from eval")
    overall = summary.get("ALL", {})
    return {"rows": overall.get("rows", 0), "score": overall.get("score"), "rule_acc": overall.get("rule_acc"),
            "judge_calls": overall.get("judge_calls", 0), "judge_yes": overall.get("judge_yes", 0),
            "by_data_source": {k: v for k, v in summary.items() if k != "ALL"}, "scores": str(out / f"{label}_scores.json"),
            "scored": str(out / f"{label}_scored.jsonl")}


def run_eval(ctx: StageContext) -> dict[str, Any]:
    o, out = ctx.options, ctx.stage_dir()
    data = ctx.outputs("data") or {}
    files = data.get("eval") or []
    if not files:
        raise PipelineError("stage eval: no held-out data (--eval-data); or leave it out with --skip eval")
    results: dict[str, Any] = {}
    for label, model in eval_models(ctx):
        if o.eval_backend == "endpoint":
            results[label] = _eval_endpoint(ctx, label, model, files)
            continue
        responses = out / f"{label}_responses.jsonl"
        ctx.run_command([sys.executable, "-m", "qwenlong_verl.pipeline.generate", "--model", model,
                         *[a for f in files for a in ("--data", f)], "--out", str(responses),
                         "--max-new-tokens", str(o.eval_max_new_tokens), "--temperature", str(o.eval_temperature),
                         "--n-samples", str(o.eval_samples)],
                        env=_env(ctx, out / METRICS_FILE))
        results[label] = {"model": model, "responses": str(responses), **score_responses(ctx, label, responses)}
    return {"models": results, "data": files}


def _eval_endpoint(ctx: StageContext, label: str, model: str, files: list[str]) -> dict[str, Any]:
    """Evaluate this model on a server that serves it (vLLM) through the eval library (``qwenlong-verl eval``'s own
    entry, defaults and checks), scored by the same hybrid scorer. The model's HF folder supplies the tokenizer for
    the paper's middle truncation of long prompts."""
    from qwenlong_verl.evaluation import EndpointEvalOptions, evaluate_endpoint

    o = ctx.options
    if not o.eval_endpoint:
        raise PipelineError("stage eval: --eval-backend endpoint needs --eval-endpoint (an OpenAI-compatible server "
                            "serving the trained model, e.g. `vllm serve <phase2 hf folder>`)")
    out = ctx.stage_dir() / f"{label}_eval"
    served = o.eval_served_model or label
    try:
        options = EndpointEvalOptions(
            endpoint=o.eval_endpoint, model=served, tokenizer=model, data=list(files), out_dir=str(out),
            max_tokens=o.eval_max_new_tokens, temperature=o.eval_temperature, progress=False,
            judge_endpoint=ctx.judge_url or None,
            judge_model=(o.judge_model or "Qwen/Qwen2.5-1.5B-Instruct") if ctx.judge_url else None)
        result = evaluate_endpoint(options)
    except Exception as exc:  # noqa: BLE001 - the library's named errors (EvalSetupError, ValueError, OSError...)
        raise PipelineError(f"stage eval ({label}): {exc}") from exc
    if not result.complete:
        raise PipelineError(f"stage eval ({label}): evaluation did not complete "
                            f"({result.failure_summary() or 'samples are missing'}; failed samples are listed in "
                            f"{result.report_path}); rerun with --from eval to retry them")
    return {"model": served, "report": str(result.report_path), "rows": result.rows, "score": result.accuracy,
            "rule_acc": result.rule_accuracy}


# ---------------------------------------------------------------------------------------------------- stages
def _signature(ctx: StageContext, stage: str) -> dict[str, Any]:
    """What a finished stage's result depends on: its options and the outputs it starts from."""
    o = ctx.options
    judge = "standin" if o.standin_judge else o.judge_url
    if stage == "data":
        return {"mode": o.mode, "model": o.model, "train": o.train_data, "val": o.val_data, "eval": o.eval_data,
                "sft_data": o.sft_data, "sft_reasoning": o.sft_reasoning, "phase_lengths": list(o.phase_lengths),
                "demo": o.demo.__dict__ if o.cpu else None}
    if stage == "sft":
        data = ctx.outputs("data") or {}
        return {"data": data.get("sft"), "model": data.get("model"), "epochs": o.sft_epochs, "steps": o.sft_steps,
                "launcher": o.sft_launcher, "overrides": o.stage_overrides("sft")}
    if stage in ("phase1", "phase2"):
        model, _ = input_model(ctx, stage) if ctx.outputs("data") else (None, None)
        sig = {"model": model, "steps": o.phase1_steps if stage == "phase1" else o.phase2_steps,
               "phase_lengths": list(o.phase_lengths), "judge": judge, "max_response_length": o.max_response_length, "lr": o.rl_lr,
               "overrides": o.stage_overrides(stage)}
        if stage == "phase2":
            sig["retrospective_file"] = (ctx.outputs("phase1") or {}).get("difficulty_file")
            sig["retrospective_mode"] = o.retrospective_mode
            sig["retrospective_ratio"] = o.retrospective_ratio
            sig["yarn"] = o.yarn_phase2 and not o.cpu
            sig["start"] = o.phase2_start
        return sig
    if stage == "eval":
        return {"models": eval_models(ctx) if ctx.outputs("data") else [], "backend": o.eval_backend,
                "max_new_tokens": o.eval_max_new_tokens, "temperature": o.eval_temperature, "judge": judge,
                "samples": o.eval_samples}
    return {}


def build_stages() -> list[Stage]:
    from qwenlong_verl.pipeline.run_report import run_report

    def sig(name: str):
        return lambda ctx: _signature(ctx, name)

    return [
        Stage("data", run_data, sig("data")),
        Stage("sft", run_sft, sig("sft")),
        Stage("phase1", lambda ctx: run_phase(ctx, 1), sig("phase1")),
        Stage("phase2", lambda ctx: run_phase(ctx, 2), sig("phase2")),
        Stage("eval", run_eval, sig("eval")),
        Stage("report", run_report, always=True),
    ]
