"""What each QwenLong-L1 piece buys at CPU scale: paired arms from one SFT start, the same seeds for every arm.

Arms (same tiny model after the same warm-up SFT, same RL steps, prompts per step, rollouts per prompt, lr,
sampling temperature and response budget; only the algorithm pieces differ):

* **a** verl's stock GRPO: ``naive`` reward manager with this package's rule score, ``grpo``, ``vanilla`` loss with
  symmetric clip 0.2, no dynamic sampling, verl's ``sync`` trainer;
* **b** verl's stock DAPO: ``dapo`` reward manager (overlong buffer), ``grpo``, ``vanilla`` loss with clip-higher
  0.2/0.28, token-mean, dynamic sampling on ``acc``, ``sync`` trainer;
* **c** this package's plugins in one phase over every length: ``qwenlong`` reward manager (rule + the stand-in
  judge), ``qwenlong_grpo``, ``qwenlong_dapo``, ``qwenlong`` trainer mode, no curriculum, no retrospective;
* **d** c + the phased curriculum with continuity: half the steps on phase I's band (prompt <= L1), then phase II
  (<= L2) *resumes phase I's checkpoint* (weights, Adam moments, lr schedule, global step, RNG), as the pipeline
  and ``recipes/phase2.sh`` now do;
* **e** d + difficulty-aware retrospective sampling: phase II also mixes in phase I's unsolved examples. e resumes
  the very phase-I checkpoint of d with the same seed, so e - d is retrospective sampling alone;
* **f** the restart control: d's phase I, then phase II from phase I's HF weights with a fresh optimizer and step
  count (what the pipeline did before, and what ``--phase2-start restart`` still does). d - f is the fix's effect;
* **c_eq** c stopped at the checkpoint whose tokens processed are nearest d's total (c saves every
  ``--eq-save-every`` steps): the curriculum's phase I is cheaper, so d and e are also compared at equal compute.

Pairing: every arm runs every seed; within a seed all arms share the data order seed, the rollout seed and the
held-out rows, and a difference is computed per (seed, row) before any resampling (``bench/ablation_report.py``).

Task (chosen before any arm ran, from the v1 ablation's finding that ``needle``'s SFT accuracy was flat across
lengths, 12.5 % vs 13.2 %): ``needle_dense`` DocQA (``qwenlong_verl.data.synth``): one "The access code is W." at
a random depth among "The old code was V." distractors whose density rises with length (4x the words, 4x the
density), prompts of 120-800 tokens (v1: 120-640), SFT within L1 = 320. A longer document is harder per token, and
phase II's band lies beyond what SFT saw.

Reported: held-out accuracy overall and per length band with paired two-level bootstrap intervals (seeds, then
rows), tokens processed and wall time per arm, accuracy at equal tokens, the seeds a +-5-point interval would need,
training reward curves, judge rescue share: ``ablation.md``, ``ablation.json``, ``ablation.png`` in ``--out``
(default ``bench/results``). Each finished run is appended to ``<workdir>/records.jsonl`` and reused by a rerun, so
an interrupted bench continues where it stopped. Not run in CI.

    python bench/bench_ablation.py --seeds 0,1,2,3,4
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
    "d": "ours + curriculum (continued)",
    "e": "ours + curriculum + retrospective (continued)",
    "f": "ours + curriculum, phase II restarted",
    "c_eq": "ours, one phase, at d's tokens",
    # the bisect between b and c (run with --arms when c trails b): stock DAPO with one of our plugins swapped in
    "b_rm": "stock DAPO + our reward manager (rule + judge)",
    "b_adv": "stock DAPO + our estimator",
    "b_loss": "stock DAPO + our policy loss",
    "b_tm": "stock DAPO + our trainer mode (sampler)",
}
# (arm, reference arm, the piece it adds): the report's "What each piece buys"
COMPARISONS = [
    ["b", "a", "DAPO: dynamic sampling, clip-higher, overlong shaping"],
    ["c", "b", "our plugins: hybrid reward (judge), qwenlong estimator/loss/trainer mode"],
    ["d", "c", "phased curriculum (phase II continues phase I), equal steps"],
    ["d", "c_eq", "phased curriculum, equal tokens"],
    ["e", "d", "retrospective sampling"],
    ["e", "c", "curriculum + retrospective, equal steps"],
    ["d", "f", "continuity: phase II resumes phase I's optimizer and step (vs a fresh restart)"],
    ["b_rm", "b", "bisect: our reward manager in stock DAPO"],
    ["b_adv", "b", "bisect: our estimator in stock DAPO"],
    ["b_loss", "b", "bisect: our policy loss in stock DAPO"],
    ["b_tm", "b", "bisect: our trainer mode in stock DAPO"],
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
# each bisect arm drops the stock setting of one piece from b's overrides, so our recipe's plugin stays in place
_REWARD_STOCK = {"reward.reward_manager.name=dapo", *STOCK_COMMON[:3]}
BISECT = {
    "b_rm": [o for o in STOCK["b"] if o not in _REWARD_STOCK],
    "b_adv": [o for o in STOCK["b"] if o != "algorithm.adv_estimator=grpo"],
    "b_loss": [o for o in STOCK["b"] if o != "actor_rollout_ref.actor.policy_loss.loss_mode=vanilla"],
    "b_tm": [o for o in STOCK["b"] if o != "trainer.v1.trainer_mode=sync"],
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
    from qwenlong_verl.pipeline.run_report import ACC_KEY, REWARD_KEY
    from qwenlong_verl.reporting import read_metrics

    return [[s["step"] + offset, s["data"].get(REWARD_KEY), s["data"].get(ACC_KEY)] for s in read_metrics(metrics)]


def _judge_counts(metrics: Path) -> dict[str, int]:
    from qwenlong_verl.reporting import read_metrics

    calls = rescues = scored = 0
    for s in read_metrics(metrics):
        d = s["data"]
        n = int(d.get("qwenlong/reward/samples", 0) or 0)
        scored += n
        calls += int(d.get("qwenlong/judge/calls", 0) or 0)
        rescues += int(round(float(d.get("qwenlong/judge/rescue_rate", 0.0) or 0.0) * n))
    return {"judge_calls": calls, "judge_rescues": rescues, "scored": scored}


def _tokens(metrics: Path) -> list[float]:
    """Prompt + response tokens processed per logged step: every generated rollout (trained, and evicted by DAPO's
    dynamic sampling) x the step's mean prompt + response length. The trained batch's own count is verl's
    ``perf/total_num_tokens``; evicted rollouts were generated and scored all the same."""
    from qwenlong_verl.reporting import read_metrics

    out = []
    for s in read_metrics(metrics):
        d = s["data"]
        per = float(d.get("prompt_length/mean", 0.0) or 0.0) + float(d.get("response_length/mean", 0.0) or 0.0)
        trained = float(d.get("perf/total_num_tokens", 0.0) or 0.0)
        evicted = float(d.get("training/filter_groups/evicted_samples", 0.0) or 0.0)
        out.append(trained + evicted * per)
    return out


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


def _append_record(path: Path, rec: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")


def _load_records(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            out[(rec["arm"], int(rec["seed"]))] = rec
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="bench_ablation_run")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--arms", default="d,e,f,c,c_eq,b,a", help="run order within a seed (c_eq needs c and d)")
    p.add_argument("--steps", type=int, default=10, help="RL steps per run (d, e, f: half per phase)")
    p.add_argument("--batch", type=int, default=8, help="prompts per step")
    p.add_argument("--rollouts", type=int, default=8, help="rollouts per prompt (G)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lengths", default="320,800", help="L1,L2 prompt tokens of the two phases")
    p.add_argument("--min-tokens", type=int, default=120)
    p.add_argument("--kind", default="needle_dense", help="synthetic DocQA kind (qwenlong_verl.data.synth)")
    p.add_argument("--max-response-length", type=int, default=96,
                   help="response tokens in RL and in the held-out eval (the demo's; at 64 the answers grow into "
                        "the DAPO arms' overlong penalty)")
    p.add_argument("--train-rows", type=int, default=192)
    p.add_argument("--eval-rows", type=int, default=96)
    p.add_argument("--eval-samples", type=int, default=3)
    p.add_argument("--eq-save-every", type=int, default=2, help="c's checkpoint interval, for the equal-token arm")
    p.add_argument("--pretrain-steps", type=int, default=400)
    p.add_argument("--report-only", action="store_true",
                   help="write the report from the finished runs in <workdir>/records.jsonl, starting none")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from qwenlong_verl.pipeline.pipeline_options import DemoSizes, cpu_demo_options
    from qwenlong_verl.pipeline.run_all import run_pipeline
    from qwenlong_verl.pipeline.stages import difficulty_output, latest_checkpoint, rl_command, rl_hf_model
    from qwenlong_verl.pipeline.standin_judge import StandinJudge

    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [a.strip() for a in args.arms.split(",")]
    l1, l2 = (int(x) for x in args.lengths.split(","))
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    records_file = work / "records.jsonl"
    done = _load_records(records_file)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t_all = time.monotonic()

    # the shared start: data (tiny model + code-copy pre-training, needle rows) and the warm-up SFT, once
    demo = DemoSizes(train_rows=args.train_rows, sft_rows=384, eval_rows=args.eval_rows, val_rows=4,
                     min_tokens=args.min_tokens, max_tokens=l2, sft_max_tokens=l1, kinds=(args.kind,), seed=0,
                     pretrain_steps=args.pretrain_steps)
    base = cpu_demo_options(work / "shared", demo=demo, phase_lengths=(l1, l2), rl_lr=args.lr,
                            standin_judge=False, sft_epochs=2, max_response_length=args.max_response_length,
                            overrides={"sft": ["optim.lr=1e-3"]})
    shared = run_pipeline(base, skip=["phase1", "phase2", "eval", "report"])["records"]
    data, sft_model = shared["data"].outputs, shared["sft"].outputs["hf_model"]
    eval_file = data["eval"][0]
    bands = [(f"<={l1}", l1), (f"{l1 + 1}-{l2}", 10**9)]
    evaluate = dict(samples=args.eval_samples, temperature=0.7, bands=bands, max_new_tokens=args.max_response_length)
    sft_eval = _evaluate(sft_model, eval_file, work / "shared", seed=0, **evaluate)
    sft_acc = {b: [r["correct"] for r in sft_eval if r["band"] == b] for b, _ in bands}
    logger.info("SFT start per band (before any arm): %s",
                {b: f"{100 * sum(v) / max(1, len(v)):.1f} % of {len(v)}" for b, v in sft_acc.items()})

    rl = [f"data.train_batch_size={args.batch}", f"actor_rollout_ref.rollout.n={args.rollouts}",
          f"actor_rollout_ref.actor.ppo_mini_batch_size={args.batch}"]
    half = max(1, args.steps // 2)
    records: list[dict[str, Any]] = []
    with StandinJudge() as judge:
        for seed in seeds:
            if args.report_only:
                records += [done[(arm, seed)] for arm in arms if (arm, seed) in done]
                continue
            seeded = [*rl, f"data.seed={seed}", f"actor_rollout_ref.rollout.seed={seed}"]
            one = dataclasses.replace(base, phase1_steps=args.steps, workdir=work, phase_lengths=(l2, l2 + 1),
                                      overrides={"rl": seeded})  # one phase: phase I's band is every row
            cur = dataclasses.replace(base, phase1_steps=half, phase2_steps=args.steps - half, workdir=work,
                                      overrides={"rl": seeded})
            p1_dir = work / f"d_seed{seed}" / "phase1"  # d's phase I: shared by d, e and f

            for arm in arms:
                if (arm, seed) in done:
                    records.append(done[(arm, seed)])
                    continue
                run_dir = work / f"{arm}_seed{seed}"
                phases: list[tuple[Path, float]] = []
                extra: dict[str, Any] = {}
                if arm in ("a", "b", "c", *BISECT):
                    judge_url = judge.base_url if arm in ("c", "b_rm") else None
                    cmd = rl_command(one, 1, train=data["train"], val=data["val"], model=sft_model,
                                     ckpt=run_dir / "phase1" / "ckpt",
                                     difficulty_out=difficulty_output(run_dir / "phase1"), difficulty_in=None,
                                     judge_url=judge_url) + STOCK.get(arm, BISECT.get(arm, []))
                    if judge_url is None:
                        cmd.append("++qwenlong.judge.base_url=null")
                    if arm == "c":  # checkpoints along the way, for the equal-token arm
                        cmd += [f"trainer.save_freq={args.eq_save_every}"]
                    phases.append(_main_ppo(cmd, run_dir / "phase1"))
                    final = latest_checkpoint(run_dir / "phase1" / "ckpt")
                elif arm in ("d", "e", "f"):
                    # d's phase I, run once per seed (a rerun finds its DONE marker) and shared by d, e and f
                    cmd = rl_command(cur, 1, train=data["train"], val=data["val"], model=sft_model,
                                     ckpt=p1_dir / "ckpt", difficulty_out=difficulty_output(p1_dir),
                                     difficulty_in=None, judge_url=judge.base_url)
                    phases.append(_main_ppo(cmd, p1_dir))
                    p2_dir = run_dir / "phase2"
                    start = str(rl_hf_model(p1_dir / "ckpt"))
                    resume = latest_checkpoint(p1_dir / "ckpt") if arm in ("d", "e") else None
                    retro = str(difficulty_output(p1_dir)) if arm == "e" else None
                    cmd = rl_command(cur, 2, train=data["train"], val=data["val"], model=start, ckpt=p2_dir / "ckpt",
                                     difficulty_out=difficulty_output(p2_dir), difficulty_in=retro,
                                     judge_url=judge.base_url, resume_from=resume)
                    phases.append(_main_ppo(cmd, p2_dir))
                    final = latest_checkpoint(p2_dir / "ckpt")
                elif arm == "c_eq":
                    c_rec, d_rec = done.get(("c", seed)), done.get(("d", seed))
                    if c_rec is None or d_rec is None:
                        logger.warning("c_eq seed %d needs arms c and d of that seed first; skipped", seed)
                        continue
                    c_dir = work / f"c_seed{seed}" / "phase1"
                    cum, total = [], 0.0
                    for t in c_rec["tokens_per_step"]:
                        total += t
                        cum.append(total)
                    saved = sorted(int(f.name.split("_")[-1]) for f in (c_dir / "ckpt").glob("global_step_*"))
                    step = min(saved, key=lambda k: abs(cum[k - 1] - d_rec["tokens"]))
                    final = c_dir / "ckpt" / f"global_step_{step}"
                    extra = {"tokens": cum[step - 1], "tokens_per_step": c_rec["tokens_per_step"][:step],
                             "rl_steps": step, "rewards": c_rec["rewards"][:step], "wall_s": None,
                             "matched_to": {"arm": "d", "tokens": d_rec["tokens"]}}
                else:
                    raise SystemExit(f"unknown arm {arm!r}; choose from {', '.join(ARMS)}")
                model = str(final / "actor" / "huggingface")
                rec: dict[str, Any] = {"arm": arm, "label": ARMS[arm], "seed": seed,
                                       "eval": _evaluate(model, eval_file, run_dir if arm != "c_eq" else
                                                         work / f"c_eq_seed{seed}", seed=seed, **evaluate)}
                if phases:
                    rewards, tokens = [], []
                    counts = {"judge_calls": 0, "judge_rescues": 0, "scored": 0}
                    for m, _ in phases:
                        rewards += _rewards(m)  # global steps: phase II of d/e continues phase I's count
                        tokens += _tokens(m)
                        for k, v in _judge_counts(m).items():
                            counts[k] += v
                    if arm == "f":  # f's phase II restarts its step count: place it after phase I
                        rewards = rewards[:half] + [[half + r[0], r[1], r[2]] for r in rewards[half:]]
                    rec.update(rewards=rewards, tokens_per_step=tokens, tokens=sum(tokens), rl_steps=len(rewards),
                               wall_s=round(sum(w for _, w in phases), 1), **counts)
                rec.update(extra)
                records.append(rec)
                done[(arm, seed)] = rec
                _append_record(records_file, rec)
                acc = sum(r["correct"] for r in rec["eval"]) / max(1, len(rec["eval"]))
                logger.info("arm %s seed %d: held-out %.3f, %d steps, %.0f tokens, %s s", arm, seed, acc,
                            rec["rl_steps"], rec["tokens"], rec.get("wall_s"))

    order = list(ARMS)  # the report's arm order (its first arm is the "vs" reference), whatever order they ran in
    records.sort(key=lambda r: (order.index(r["arm"]) if r["arm"] in order else len(order), int(r["seed"])))
    seeds_done = sorted({int(r["seed"]) for r in records})
    meta = {
        "command": "python bench/bench_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": seeds_done, "steps": args.steps, "batch": args.batch, "rollouts": args.rollouts, "lr": args.lr,
        "max_response_length": args.max_response_length,
        "lengths": [l1, l2], "train_rows": args.train_rows, "eval_rows": args.eval_rows,
        "eval_samples": args.eval_samples, "eval_temperature": 0.7,
        "task": (f"synthetic {args.kind} DocQA, {demo.min_tokens}-{l2} prompt tokens, one access code among "
                 "distractor codes whose density rises with length; tiny Qwen2 (code-copy pre-trained) after 2 SFT "
                 "epochs within L1"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "total_wall_s": round(time.monotonic() - t_all, 1),
        "bands": [label for label, _ in bands], "sft_eval": sft_eval, "window": 3, "smooth": 3,
        "comparisons": COMPARISONS, "paired": True,
    }
    paths = _load_report_module().write_report(records, Path(args.out), meta)
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    print(Path(paths["md"]).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
