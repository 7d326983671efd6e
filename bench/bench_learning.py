"""Learning check: does RL through verl's real trainer (this package's recipe, CPU backend) raise the reward of a tiny
model on a task it can learn?

Task: synthetic ``copy`` DocQA (the document states "The access code is W." and the question asks for the code; W is
one of 8 colour words). A randomly initialised model cannot answer at all, so a short warm-up SFT (the pipeline's
own SFT stage, verl's SFT trainer) teaches the answer format first and leaves it a weak copier; then RL phase I
(``+recipe=qwenlong_phase1 +qwenlong_env=cpu``: GRPO, DAPO dynamic sampling, the hybrid reward with the rule part
only) runs for ``--steps`` steps. The baseline in the same run is the SFT model itself:

* training reward (verl's ``critic/score/mean`` of the trained batch, and ``qwenlong/reward/acc_mean`` over every
  scored rollout, DAPO-evicted groups included): mean of the first ``--window`` steps vs the last ``--window``;
* held-out copy questions, greedy decoding, scored by ``qwenlong-verl score``: SFT model vs RL model.

Run (holds the e2e lock; ~10 minutes on 2 cores)::

    flock /tmp/qwenlong-verl-e2e.lock python bench/bench_learning.py --workdir /tmp/bench_learning
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="bench_learning_run")
    p.add_argument("--steps", type=int, default=40, help="RL steps (default 40)")
    p.add_argument("--batch", type=int, default=8, help="prompts per step (default 8)")
    p.add_argument("--rollouts", type=int, default=8, help="rollouts per prompt, G (default 8)")
    p.add_argument("--lr", type=float, default=2e-4, help="actor lr (tiny model; the paper's 2e-6 is for 14B/32B)")
    p.add_argument("--sft-rows", type=int, default=384)
    p.add_argument("--sft-epochs", type=int, default=3)
    p.add_argument("--train-rows", type=int, default=256)
    p.add_argument("--eval-rows", type=int, default=64)
    p.add_argument("--window", type=int, default=5, help="steps averaged at the start and at the end")
    p.add_argument("--force", action="store_true", help="rerun every stage (default: reuse finished ones)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from qwenlong_verl.pipeline.pipeline_options import DemoSizes, cpu_demo_options
    from qwenlong_verl.pipeline.run_all import run_pipeline
    from qwenlong_verl.pipeline.run_report import ACC_KEY, REWARD_KEY, read_metrics

    # every training row in phase I's band (160-300 tokens < L1 = 320): one phase, many steps
    options = cpu_demo_options(
        args.workdir, standin_judge=False, sft_epochs=args.sft_epochs, phase1_steps=args.steps, rl_lr=args.lr,
        eval_models=("sft", "phase1"),
        demo=DemoSizes(train_rows=args.train_rows, sft_rows=args.sft_rows, eval_rows=args.eval_rows,
                       min_tokens=160, max_tokens=290, sft_max_tokens=290, seed=11),
        overrides={"rl": [f"data.train_batch_size={args.batch}", f"actor_rollout_ref.rollout.n={args.rollouts}",
                          f"actor_rollout_ref.actor.ppo_mini_batch_size={args.batch}"]},
    )
    t0 = time.monotonic()
    result = run_pipeline(options, skip=["phase2"], force=args.force)
    wall = time.monotonic() - t0
    records = result["records"]
    steps = read_metrics(records["phase1"].outputs["metrics"])
    reward = [s["data"].get(REWARD_KEY) for s in steps]
    acc = [s["data"].get(ACC_KEY) for s in steps]
    w = min(args.window, len(steps) // 2)
    if w < 1:
        print(f"only {len(steps)} RL steps logged; nothing to compare", file=sys.stderr)
        return 1

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else float("nan")

    r0, r1, a0, a1 = mean(reward[:w]), mean(reward[-w:]), mean(acc[:w]), mean(acc[-w:])
    ev = records["eval"].outputs["models"]
    e_sft, e_rl = ev["sft"]["score"], ev["phase1"]["score"]
    out = {
        "steps": len(steps), "window": w, "batch": args.batch, "rollouts": args.rollouts, "lr": args.lr,
        "reward_start": r0, "reward_end": r1, "reward_ratio": r1 / r0 if r0 else None,
        "acc_all_rollouts_start": a0, "acc_all_rollouts_end": a1, "acc_ratio": a1 / a0 if a0 else None,
        "heldout_score_sft_pct": e_sft, "heldout_score_rl_pct": e_rl,
        "heldout_ratio": e_rl / e_sft if e_sft else None, "heldout_rows": ev["phase1"]["rows"],
        "sft_wall_s": round(records["sft"].wall_s, 1), "rl_wall_s": round(records["phase1"].wall_s, 1),
        "total_wall_s": round(wall, 1),
        "reward_per_step": reward, "acc_per_step": acc,
    }
    Path(args.workdir, "bench_learning.json").write_text(json.dumps(out, indent=1))
    print(f"RL steps {len(steps)} (batch {args.batch} x G {args.rollouts}, lr {args.lr})")
    print(f"train reward (critic/score/mean), first {w} vs last {w} steps: {r0:.3f} -> {r1:.3f}  "
          f"ratio {out['reward_ratio'] if out['reward_ratio'] is None else round(out['reward_ratio'], 2)}")
    print(f"acc over all rollouts (incl. DAPO-evicted groups):        {a0:.3f} -> {a1:.3f}  "
          f"ratio {out['acc_ratio'] if out['acc_ratio'] is None else round(out['acc_ratio'], 2)}")
    print(f"held-out copy questions ({out['heldout_rows']} rows, greedy): SFT {e_sft:.1f}% -> RL {e_rl:.1f}%  "
          f"ratio {out['heldout_ratio'] if out['heldout_ratio'] is None else round(out['heldout_ratio'], 2)}")
    print(f"wall: SFT {out['sft_wall_s']} s, RL {out['rl_wall_s']} s, total {out['total_wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
