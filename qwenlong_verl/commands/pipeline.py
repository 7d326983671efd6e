"""``qwenlong-verl pipeline``: warm-up SFT -> RL phase I -> difficulty file -> RL phase II (retrospective sampling)
-> held-out evaluation -> report, each stage one run of verl's own trainer; ``qwenlong-verl sft-data``: triplets to
verl's SFT ``messages`` layout.

With no arguments ``pipeline`` runs the CPU demo: a tiny local Qwen2 model, synthetic copy-task DocQA, a local
stand-in judge, every stage at a few steps, in ``./qwenlong_demo`` (a few minutes on 2 cores). ``--gpu`` runs the
paper's settings with your model, data and judge. Reruns skip finished stages (``--force``, ``--from STAGE``,
``--skip STAGE``); an interrupted stage resumes from its last verl checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from qwenlong_verl.commands._args import bounded_float, bounded_int

logger = logging.getLogger("qwenlong_verl.pipeline")

STAGE_NAMES = ("data", "sft", "phase1", "phase2", "eval", "report")
# every number a user gives has a bound: a typo (an extra 0 or two) is refused up front, not found hours in
MAX_STAGE_S = 30 * 86400.0
MAX_STEPS = 10_000_000
MAX_TOKENS = 10_000_000
MAX_DEMO_ROWS = 1_000_000


def _lengths(text: str) -> tuple[int, int]:
    try:
        parts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected L1,L2 token counts, got {text!r}") from exc
    if len(parts) != 2 or not 0 < parts[0] < parts[1]:
        raise argparse.ArgumentTypeError(f"expected two increasing token counts L1,L2, got {text!r}")
    return parts  # type: ignore[return-value]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pipeline", help="SFT -> phase I -> phase II -> eval -> report (CPU demo by default; --gpu for the paper)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("mode and run control")
    g.add_argument("--gpu", action="store_true", help="the paper's GPU settings (default: the CPU demo)")
    g.add_argument("--workdir", help="stage folders and the report (default ./qwenlong_demo, --gpu: ./qwenlong_run)")
    g.add_argument("--skip", action="append", default=[], choices=STAGE_NAMES, metavar="STAGE",
                   help=f"leave a stage out (repeatable): {', '.join(STAGE_NAMES)}")
    g.add_argument("--from", dest="from_stage", choices=STAGE_NAMES, metavar="STAGE",
                   help="rerun this stage and every later one, reusing the earlier ones")
    g.add_argument("--force", action="store_true", help="rerun every stage from scratch")
    g.add_argument("--stage-timeout", type=bounded_float(1.0, MAX_STAGE_S), default=None,
                   help="seconds a stage may run, 1 to 30 days (default: no limit); it stops subprocess stages "
                        "(their whole process tree) and in-process ones (data, report) alike")
    g = p.add_argument_group("model and data (the CPU demo builds what is not given)")
    g.add_argument("--model", help="start model (HF folder or name); GPU: e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-14B")
    g.add_argument("--train-data", help="RL training parquet with stored prompt lengths (`qwenlong-verl prepare`)")
    g.add_argument("--val-data", help="RL validation parquet")
    g.add_argument("--eval-data", action="append", default=[], help="held-out DocQA file(s) for the eval stage")
    g.add_argument("--sft-data", action="append", default=[],
                   help="SFT data: question-document-answer triplets with reasoning (converted), or a `messages` "
                        "parquet")
    g.add_argument("--sft-reasoning", choices=["column", "evidence", "none"], default=None,
                   help="reasoning of converted SFT rows (default: column; CPU demo: evidence)")
    g = p.add_argument_group("judge")
    g.add_argument("--judge-url", help="OpenAI-compatible judge, e.g. http://HOST:8000/v1 (recipes/serve_judge.sh)")
    g.add_argument("--judge-model", help="the judge's model name (default: the recipe's Qwen/Qwen2.5-1.5B-Instruct)")
    g.add_argument("--no-judge", action="store_true", help="CPU demo: rule reward only, no stand-in judge")
    g = p.add_argument_group("training lengths (defaults: CPU demo tiny, GPU the recipes')")
    g.add_argument("--phase-lengths", type=_lengths, help="L1,L2 prompt tokens (GPU default 20000,60000)")
    g.add_argument("--sft-epochs", type=bounded_int(1, 1000), help="SFT epochs (paper: 3)")
    g.add_argument("--sft-steps", type=bounded_int(1, MAX_STEPS), help="SFT steps (overrides epochs)")
    g.add_argument("--phase1-steps", type=bounded_int(1, MAX_STEPS), help="RL steps of phase I (GPU default: the recipe's epochs)")
    g.add_argument("--phase2-steps", type=bounded_int(1, MAX_STEPS), help="RL steps of phase II")
    g.add_argument("--max-response-length", type=bounded_int(1, MAX_TOKENS), help="RL response tokens (GPU default: the recipe's 10000)")
    g.add_argument("--rl-lr", type=bounded_float(1e-12, 1.0), help="actor lr of the RL phases (default: the recipe's 2e-6; CPU demo 2e-4)")
    g.add_argument("--retrospective-mode", choices=["zero_mean", "weighted"], default="zero_mean",
                   help="phase II's hard examples: every zero-mean one of phase I (paper §3.2, default) or drawn by "
                        "difficulty 1/(mean+eps) (Eq. 10; needs --retrospective-ratio)")
    g.add_argument("--retrospective-ratio", type=bounded_float(0.0, 0.999), help="share of phase II's epoch made of phase I examples")
    g.add_argument("--no-yarn", action="store_true", help="GPU: no YaRN rope scaling in phase II")
    g.add_argument("--phase2-start", choices=["resume", "restart"], default="resume",
                   help="resume (default): phase II continues phase I's last verl checkpoint (weights, Adam moments, "
                        "lr schedule, global step, RNG, difficulty table) with its own band and settings; restart: "
                        "the paper's separate launch from phase I's HF weights with a fresh optimizer")
    g = p.add_argument_group("launch")
    g.add_argument("--nproc-per-node", type=bounded_int(1, 1024), help="GPUs per node (GPU default 8)")
    g.add_argument("--nnodes", type=bounded_int(1, 4096), help="nodes of the RL phases (default 1; more needs a Ray cluster: "
                                              "--ray-address, and paths on storage every node mounts)")
    g.add_argument("--sft-launcher", choices=["torchrun", "ray"], default="torchrun",
                   help="torchrun on this node (default) or verl.trainer.sft_trainer_ray on a Ray cluster")
    g.add_argument("--ray-address", help="existing Ray cluster for the RL phases (ray start --head ... on the nodes)")
    g.add_argument("--sft-override", action="append", default=[], metavar="KEY=VALUE",
                   help="Hydra override for verl's SFT trainer (repeatable)")
    g.add_argument("--phase1-override", action="append", default=[], metavar="KEY=VALUE")
    g.add_argument("--phase2-override", action="append", default=[], metavar="KEY=VALUE")
    g.add_argument("--rl-override", action="append", default=[], metavar="KEY=VALUE", help="for both RL phases")
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-backend", choices=["local", "endpoint"],
                   help="local: HF generate here (default on CPU); endpoint: `qwenlong-verl eval` against a server "
                        "that serves the final model (default on GPU)")
    g.add_argument("--eval-endpoint", help="OpenAI-compatible server of the trained model (endpoint backend)")
    g.add_argument("--eval-served-model", help="the served model's name (endpoint backend)")
    g.add_argument("--eval-max-new-tokens", type=bounded_int(1, MAX_TOKENS))
    g.add_argument("--eval-temperature", type=bounded_float(0.0, 10.0))
    g.add_argument("--eval-samples", type=bounded_int(1, 1024), help="sampled answers per held-out row (local backend; CPU demo 2): "
                                                    "the row's accuracy is their mean")
    g.add_argument("--eval-models", help="comma list of base,sft,phase1,phase2,final (CPU default "
                                         "sft,phase1,final; GPU final)")
    g = p.add_argument_group("CPU demo data sizes")
    g.add_argument("--demo-train-rows", type=bounded_int(1, MAX_DEMO_ROWS))
    g.add_argument("--demo-sft-rows", type=bounded_int(1, MAX_DEMO_ROWS))
    g.add_argument("--demo-eval-rows", type=bounded_int(1, MAX_DEMO_ROWS))
    g.add_argument("--demo-pretrain-steps", type=bounded_int(0, MAX_STEPS), help="code-copy pre-training steps of the tiny model (default "
                                                           "400, ~20 s; 0: none)")
    p.set_defaults(func=run)

    s = subparsers.add_parser(
        "sft-data", help="question-document-answer triplets (with reasoning) -> verl SFT `messages` parquet",
        description="Convert DocQA rows (the eval layout: question, context, answers, reasoning; or verl RL rows with "
                    "extra_info.reasoning) into the `messages` parquet of verl.trainer.sft_trainer: the user turn is "
                    "the QwenLong-L1 prompt, the assistant turn '<think>reasoning</think> Therefore, the answer is "
                    "X.'. With --tokenizer, prompts are measured (--max-prompt-tokens leaves longer ones out, "
                    "counted) and the chat template is checked to keep the reasoning.")
    s.add_argument("--input", action="append", required=True, help="JSONL/parquet (repeatable)")
    s.add_argument("--out", required=True, help="output parquet")
    s.add_argument("--tokenizer", help="tokenizer/model folder of the model to train")
    s.add_argument("--reasoning", choices=["column", "evidence", "none"], default="column",
                   help="column: every row has its reasoning (default); evidence: else the document sentences "
                        "stating the answer; none: empty thinking")
    s.add_argument("--reasoning-key", default="reasoning")
    s.add_argument("--max-prompt-tokens", type=bounded_int(1, MAX_TOKENS), default=None,
                   help="leave out rows with longer prompts (paper: 20000); needs --tokenizer")
    s.set_defaults(func=run_sft_data)


def options_from_args(args: argparse.Namespace):
    from qwenlong_verl.pipeline.pipeline_options import PipelineOptions, cpu_demo_options

    overrides = {k: v for k, v in (("sft", args.sft_override), ("phase1", args.phase1_override),
                                   ("phase2", args.phase2_override), ("rl", args.rl_override)) if v}
    given = {
        "model": args.model, "train_data": args.train_data, "val_data": args.val_data,
        "eval_data": args.eval_data, "sft_data": args.sft_data, "sft_reasoning": args.sft_reasoning,
        "judge_url": args.judge_url, "judge_model": args.judge_model, "phase_lengths": args.phase_lengths,
        "sft_epochs": args.sft_epochs, "sft_steps": args.sft_steps, "phase1_steps": args.phase1_steps,
        "phase2_steps": args.phase2_steps, "max_response_length": args.max_response_length, "rl_lr": args.rl_lr,
        "retrospective_mode": args.retrospective_mode, "phase2_start": args.phase2_start,
        "retrospective_ratio": args.retrospective_ratio, "nproc_per_node": args.nproc_per_node,
        "nnodes": args.nnodes,
        "sft_launcher": args.sft_launcher, "ray_address": args.ray_address, "stage_timeout_s": args.stage_timeout,
        "eval_backend": args.eval_backend, "eval_endpoint": args.eval_endpoint,
        "eval_served_model": args.eval_served_model, "eval_max_new_tokens": args.eval_max_new_tokens,
        "eval_temperature": args.eval_temperature, "eval_samples": args.eval_samples, "overrides": overrides,
    }
    if args.eval_models:
        given["eval_models"] = tuple(m.strip() for m in args.eval_models.split(",") if m.strip())
    given = {k: v for k, v in given.items() if v not in (None, [], {})}
    if args.no_yarn:
        given["yarn_phase2"] = False
    if args.gpu:
        given.setdefault("eval_backend", "endpoint")
        options = PipelineOptions(mode="gpu", workdir=Path(args.workdir or "qwenlong_run"), **given)
    else:
        if args.judge_url or args.no_judge:
            given["standin_judge"] = False
        options = cpu_demo_options(args.workdir or "qwenlong_demo", **given)
        for name, attr in (("demo_train_rows", "train_rows"), ("demo_sft_rows", "sft_rows"),
                           ("demo_eval_rows", "eval_rows"), ("demo_pretrain_steps", "pretrain_steps")):
            if getattr(args, name) is not None:
                setattr(options.demo, attr, getattr(args, name))
    return options


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.pipeline.pipeline_options import PipelineError
    from qwenlong_verl.pipeline.run_all import run_pipeline

    try:
        options = options_from_args(args)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    if options.mode == "gpu" and not options.judge_url:
        logger.warning("no --judge-url: the reward is the rule match alone (the paper adds a Qwen2.5-1.5B judge)")
    if options.stage_timeout_s:
        logger.info("--stage-timeout: each stage, in-process or not, is stopped after %g s (with every process it "
                    "started)", options.stage_timeout_s)
    try:
        result = run_pipeline(options, skip=args.skip, from_stage=args.from_stage, force=args.force)
    except PipelineError as exc:
        logger.error("%s", exc)
        return getattr(exc, "exit_code", 1)  # PipelineStopped: 128 + the signal
    except KeyboardInterrupt:  # between stages (a stage's own Ctrl-C/SIGTERM is a PipelineStopped naming it)
        logger.error("interrupted; rerun the same command to resume (finished stages are kept)")
        return 130
    report = result.get("report")
    if report:
        print(Path(report["md"]).read_text(encoding="utf-8"))
        print(f"report: {report['md']}\n        {report['json']}\n        {report['png']}")
    return 0


def run_sft_data(args: argparse.Namespace) -> int:
    from qwenlong_verl.data.sft import SFTConversionOptions, SFTDataError, convert_files
    from qwenlong_verl.evaluation.data import EvalDataError

    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    try:
        options = SFTConversionOptions(reasoning=args.reasoning, reasoning_key=args.reasoning_key,
                                       max_prompt_tokens=args.max_prompt_tokens)
        stats = convert_files(args.input, args.out, options, tokenizer)
    except (SFTDataError, EvalDataError, ValueError, OSError) as exc:
        logger.error("%s", exc)
        return 1
    print(f"{stats.rows_out}/{stats.rows_in} rows -> {args.out}; reasoning {stats.reasoning_sources}; "
          f"left out (too long): {len(stats.too_long)}; no evidence found: {len(stats.no_evidence)}",
          file=sys.stderr)
    return 0
