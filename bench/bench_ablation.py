"""What each QwenLong-L1 piece buys at CPU scale: six arms from one SFT start, several seeds each.

Arms (same tiny model after the same warm-up SFT, same RL steps, prompts per step, rollouts per prompt, lr,
sampling temperature and response budget; only the algorithm pieces differ):

* **a** verl's stock GRPO: ``naive`` reward manager with this package's rule score, ``grpo``, ``vanilla`` loss with
  symmetric clip 0.2, no dynamic sampling, verl's ``sync`` trainer;
* **b** verl's stock DAPO: ``dapo`` reward manager (overlong buffer), ``grpo``, ``vanilla`` loss with clip-higher
  0.2/0.28, token-mean, dynamic sampling on ``acc``, ``sync`` trainer;
* **c** this package's plugins in one phase over every length: ``qwenlong`` reward manager (rule + the stand-in
  judge), ``qwenlong_grpo``, ``qwenlong_dapo``, ``qwenlong`` trainer mode, no curriculum, no retrospective;
* **d** c + the phased curriculum: half the steps on phase I's band (prompt <= L1), half on phase II's (<= L2);
* **e** d + difficulty-aware retrospective sampling: phase II mixes in phase I's unsolved examples. e continues from
  the very phase-I run of d with the same seed (the two arms differ only in phase II).
* **f** a control for d: c's data (every length) in two runs of half the steps, the second from the first's HF
  weights with a fresh optimizer and a new data seed, as d's phase II starts. f vs c is the cost of the restart alone;
  d vs f is the curriculum's data split alone.

Task: synthetic ``needle`` DocQA (``qwenlong_verl.data.synth``): one "The access code is W." at a random depth
among "The old code was V." distractors, one per ~60 words, so a longer document has more distractors and a deeper
answer. The tiny model gets the pipeline's code-copy pre-training and the pipeline's SFT (within L1) once; every
arm starts from that SFT model. Held-out: the same rows for every run, sampled at the rollout temperature
``--eval-samples`` times per row (per-row accuracy = share of correct samples), split into length bands.

Reported by ``bench/ablation_report.py``: held-out accuracy overall and per band with two-level bootstrap intervals
(seeds, then rows), differences vs the SFT start and vs arm a, training reward curves, judge rescue share, wall time:
``ablation.md``, ``ablation.json``, ``ablation.png`` in ``--out`` (default ``bench/results``). Not run in CI.

    flock /tmp/qwenlong-verl-e2e.lock python bench/bench_ablation.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("bench_ablation")

ARMS = {
    "a": "verl GRPO (stock)",
    "b": "verl DAPO (stock)",
    "c": "ours, one phase",
    "d": "ours + curriculum",
    "e": "ours + curriculum + retrospective",
    "f": "ours, one phase, optimizer restarted half-way",
}
# (arm, reference arm, the piece it adds): the report's "What each piece buys"
COMPARISONS = [
    ["b", "a", "DAPO: dynamic sampling, clip-higher, overlong shaping"],
    ["c", "b", "our plugins: hybrid reward (judge), qwenlong estimator/loss/trainer mode"],
    ["d", "c", "phased curriculum"],
    ["e", "d", "retrospective sampling"],
    ["f", "c", "a fresh optimizer half-way (d's phase II starts from HF weights)"],
    ["d", "f", "the curriculum's data split, both with the restart"],
]
STOCK_COMMON = [
    "reward.custom_reward_function.path=pkg://qwenlong_verl.reward.scoring",
    "reward.custom_reward_function.name=compute_score",
    "++reward.custom_reward_function.reward_kwargs.answer_after_think=optional",  # as ours on the CPU env
    "algorithm.adv_estimator=grpo",
    "actor_rollout_ref.actor.policy_loss.loss_mode=vanilla",
    "trainer.v1.trainer_mode=sync",
]
STOCK = {
    "a": [*STOCK_COMMON, "reward.reward_manager.name=naive", "actor_rollout_ref.actor.clip_ratio_high=0.2",
          "algorithm.filter_groups.enable=false"],
    "b": [*STOCK_COMMON, "reward.reward_manager.name=dapo", "actor_rollout_ref.actor.clip_ratio_high=0.28",
          "algorithm.filter_groups.enable=true", "algorithm.filter_groups.metric=acc"],
}


def _load_report_module():
    spec = importlib.util.spec_from_file_location("ablation_report", ROOT / "bench" / "ablation_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(metrics: Path) -> dict[str, str]:
    from qwenlong_verl.pipeline.stages import BASE_ENV, CPU_ENV

    return {**os.environ, **BASE_ENV, **CPU_ENV, "VERL_PLATFORM": "cpu", "QWENLONG_JUDGE_PROBE": "0",
            "VERL_FILE_LOGGER_PATH": str(metrics)}


def _main_ppo(cmd: list[str], out: Path) -> tuple[Path, float]:
    """Run one verl job in ``out``; returns (metrics file, wall seconds). A failed job stops the bench, named."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = out / "metrics.jsonl"
    if (out / "DONE").is_file():  # a rerun of the bench reuses finished runs
        return metrics, json.loads((out / "DONE").read_text())["wall_s"]
    metrics.unlink(missing_ok=True)
    start = time.monotonic()
    with open(out / "run.log", "w") as log:
        proc = subprocess.run(cmd, cwd=out, env=_env(metrics), stdout=log, stderr=subprocess.STDOUT)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        tail = (out / "run.log").read_text(errors="replace").splitlines()[-25:]
        raise SystemExit(f"{out.name}: main_ppo failed (exit {proc.returncode}); log {out / 'run.log'}:\n"
                         + "\n".join(tail))
    (out / "DONE").write_text(json.dumps({"wall_s": wall}))
    return metrics, wall


def _rewards(metrics: Path, offset: int = 0) -> list[list[Any]]:
    from qwenlong_verl.pipeline.run_report import ACC_KEY, REWARD_KEY, read_metrics

    return [[s["step"] + offset, s["data"].get(REWARD_KEY), s["data"].get(ACC_KEY)] for s in read_metrics(metrics)]


def _judge_counts(metrics: Path) -> dict[str, int]:
    from qwenlong_verl.pipeline.run_report import read_metrics

    calls = rescues = scored = 0
    for s in read_metrics(metrics):
        d = s["data"]
        n = int(d.get("qwenlong/reward/samples", 0) or 0)
        scored += n
        calls += int(d.get("qwenlong/judge/calls", 0) or 0)
        rescues += int(round(float(d.get("qwenlong/judge/rescue_rate", 0.0) or 0.0) * n))
    return {"judge_calls": calls, "judge_rescues": rescues, "scored": scored}


def _evaluate(model: str, eval_file: str, out: Path, *, samples: int, temperature: float, seed: int,
              bands: list[tuple[str, int]], max_new_tokens: int) -> list[dict[str, Any]]:
    """Per held-out row: mean rule accuracy over ``samples`` sampled answers, with its prompt length and band."""
    from qwenlong_verl.pipeline.generate import GenerateOptions, generate_file
    from qwenlong_verl.reward.offline import load_rows, score_rows
    from qwenlong_verl.reward.scoring import ScoreOptions

    responses = out / "eval_responses.jsonl"
    if not responses.is_file():
        tmp = out / "eval_responses.tmp.jsonl"
        generate_file(model, [eval_file], tmp, GenerateOptions(max_new_tokens=max_new_tokens, temperature=temperature,
                                                               n_samples=samples, seed=seed))
        tmp.replace(responses)
    rows = load_rows(responses)
    scores, _ = asyncio.run(score_rows(rows, ScoreOptions(answer_after_think="optional", qa_metric="em_or_sub_em")))
    per_row: dict[str, dict[str, Any]] = {}
    for row, score in zip(rows, scores, strict=True):
        rec = per_row.setdefault(str(row["id"]), {"id": str(row["id"]), "prompt_length": int(row["prompt_tokens"]),
                                                  "hits": []})
        rec["hits"].append(1.0 if score.acc >= 1.0 else 0.0)
    out_rows = []
    for rec in per_row.values():
        band = next(label for label, bound in bands if rec["prompt_length"] <= bound)
        out_rows.append({"id": rec["id"], "prompt_length": rec["prompt_length"], "band": band,
                         "correct": sum(rec["hits"]) / len(rec["hits"])})
    return sorted(out_rows, key=lambda r: r["id"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="bench_ablation_run")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--arms", default="a,b,c,d,e,f")
    p.add_argument("--steps", type=int, default=12, help="RL steps per run (d, e: half per phase)")
    p.add_argument("--batch", type=int, default=8, help="prompts per step")
    p.add_argument("--rollouts", type=int, default=8, help="rollouts per prompt (G)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lengths", default="320,640", help="L1,L2 prompt tokens of the two phases")
    p.add_argument("--max-response-length", type=int, default=96,
                   help="response tokens in RL and in the held-out eval (the demo's; at 64 the answers grow into "
                        "the DAPO arms' overlong penalty)")
    p.add_argument("--train-rows", type=int, default=192)
    p.add_argument("--eval-rows", type=int, default=96)
    p.add_argument("--eval-samples", type=int, default=4)
    p.add_argument("--pretrain-steps", type=int, default=400)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from qwenlong_verl.pipeline.pipeline_options import DemoSizes, cpu_demo_options
    from qwenlong_verl.pipeline.run_all import run_pipeline
    from qwenlong_verl.pipeline.stages import difficulty_output, rl_command, rl_hf_model
    from qwenlong_verl.pipeline.standin_judge import StandinJudge

    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [a.strip() for a in args.arms.split(",")]
    l1, l2 = (int(x) for x in args.lengths.split(","))
    work = Path(args.workdir).resolve()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t_all = time.monotonic()

    # the shared start: data (tiny model + code-copy pre-training, needle rows) and the warm-up SFT, once
    demo = DemoSizes(train_rows=args.train_rows, sft_rows=384, eval_rows=args.eval_rows, val_rows=4, min_tokens=120,
                     max_tokens=l2, sft_max_tokens=l1, kinds=("needle",), seed=0, pretrain_steps=args.pretrain_steps)
    base = cpu_demo_options(work / "shared", demo=demo, phase_lengths=(l1, l2), rl_lr=args.lr,
                            standin_judge=False, sft_epochs=2, max_response_length=args.max_response_length,
                            overrides={"sft": ["optim.lr=1e-3"]})
    shared = run_pipeline(base, skip=["phase1", "phase2", "eval", "report"])["records"]
    data, sft_model = shared["data"].outputs, shared["sft"].outputs["hf_model"]
    eval_file = data["eval"][0]
    bands = [(f"<={l1}", l1), (f"{l1 + 1}-{l2}", 10**9)]
    evaluate = dict(samples=args.eval_samples, temperature=0.7, bands=bands, max_new_tokens=args.max_response_length)
    sft_eval = _evaluate(sft_model, eval_file, work / "shared", seed=0, **evaluate)

    rl = [f"data.train_batch_size={args.batch}", f"actor_rollout_ref.rollout.n={args.rollouts}",
          f"actor_rollout_ref.actor.ppo_mini_batch_size={args.batch}"]
    records: list[dict[str, Any]] = []
    with StandinJudge() as judge:
        for seed in seeds:
            seeded = [*rl, f"data.seed={seed}", f"actor_rollout_ref.rollout.seed={seed}"]
            for arm in arms:
                run_dir = work / f"{arm}_seed{seed}"
                half = max(1, args.steps // 2)
                one_phase = arm in ("a", "b", "c")
                o = dataclasses.replace(base, phase1_steps=args.steps if one_phase else half,
                                        phase2_steps=args.steps - half, workdir=run_dir,
                                        overrides={"rl": seeded})
                if arm in ("a", "b", "c", "f"):
                    # no curriculum: phase I's band is every training row (L1 = L2)
                    o = dataclasses.replace(o, phase_lengths=(l2, l2 + 1))
                judge_url = judge.base_url if arm in ("c", "d", "e", "f") else None
                phases: list[tuple[Path, float, int]] = []
                p1_dir = (work / f"d_seed{seed}" / "phase1") if arm in ("d", "e") else run_dir / "phase1"
                cmd = rl_command(o, 1, train=data["train"], val=data["val"], model=sft_model, ckpt=p1_dir / "ckpt",
                                 difficulty_out=difficulty_output(p1_dir), difficulty_in=None, judge_url=judge_url,
                                 metrics=None) + STOCK.get(arm, [])
                if judge_url is None:
                    cmd.append("++qwenlong.judge.base_url=null")
                metrics, wall = _main_ppo(cmd, p1_dir)
                phases.append((metrics, wall, 0))
                final = p1_dir / "ckpt"
                if not one_phase:
                    p2_dir = run_dir / "phase2"
                    start = str(rl_hf_model(p1_dir / "ckpt"))
                    retro = str(difficulty_output(p1_dir)) if arm == "e" else None
                    if arm == "f":  # phase I's band again, on batches of another data seed
                        reseeded = [*rl, f"data.seed={seed + 1000}", f"actor_rollout_ref.rollout.seed={seed + 1000}"]
                        o2 = dataclasses.replace(o, phase1_steps=args.steps - half, overrides={"rl": reseeded})
                        cmd = rl_command(o2, 1, train=data["train"], val=data["val"], model=start,
                                         ckpt=p2_dir / "ckpt", difficulty_out=difficulty_output(p2_dir),
                                         difficulty_in=None, judge_url=judge_url, metrics=None)
                    else:
                        cmd = rl_command(o, 2, train=data["train"], val=data["val"], model=start, ckpt=p2_dir / "ckpt",
                                         difficulty_out=difficulty_output(p2_dir), difficulty_in=retro,
                                         judge_url=judge_url, metrics=None)
                    metrics, wall = _main_ppo(cmd, p2_dir)
                    phases.append((metrics, wall, half))
                    final = p2_dir / "ckpt"
                model = str(rl_hf_model(final))
                rewards = [r for m, _, offset in phases for r in _rewards(m, offset)]
                counts = {"judge_calls": 0, "judge_rescues": 0, "scored": 0}
                for m, _, _ in phases:
                    for k, v in _judge_counts(m).items():
                        counts[k] += v
                rec = {"arm": arm, "label": ARMS[arm], "seed": seed, "rewards": rewards,
                       "eval": _evaluate(model, eval_file, run_dir, seed=seed, **evaluate),
                       **counts, "wall_s": round(sum(w for _, w, _ in phases), 1), "rl_steps": len(rewards)}
                records.append(rec)
                acc = sum(r["correct"] for r in rec["eval"]) / max(1, len(rec["eval"]))
                logger.info("arm %s seed %d: held-out %.3f, %d steps, %.0f s", arm, seed, acc, rec["rl_steps"],
                            rec["wall_s"])

    meta = {
        "command": "python bench/bench_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": seeds, "steps": args.steps, "batch": args.batch, "rollouts": args.rollouts, "lr": args.lr,
        "max_response_length": args.max_response_length,
        "lengths": [l1, l2], "train_rows": args.train_rows, "eval_rows": args.eval_rows,
        "eval_samples": args.eval_samples, "eval_temperature": 0.7,
        "task": (f"synthetic needle DocQA, {demo.min_tokens}-{l2} prompt tokens, one access code among ~1 distractor "
                 "code per 60 words; tiny Qwen2 (code-copy pre-trained) after 2 SFT epochs within L1"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "total_wall_s": round(time.monotonic() - t_all, 1),
        "bands": [label for label, _ in bands], "sft_eval": sft_eval, "window": 3, "smooth": 3,
        "comparisons": COMPARISONS,
    }
    paths = _load_report_module().write_report(records, Path(args.out), meta)
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    print(Path(paths["md"]).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
