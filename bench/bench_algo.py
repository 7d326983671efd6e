"""Benchmark: the cost of ``qwenlong_dapo`` and ``qwenlong_grpo`` against verl's ``vanilla`` and ``grpo``.

Timed, in one run, on the same random tensors:
  * loss forward + backward of one micro-batch (``--rows`` x ``--width`` tokens, token-mean): verl ``vanilla``;
    ``qwenlong_dapo`` with the extras off; with overlong filtering + AEPO + dual clip off;
  * advantages of one batch (``--groups`` prompts x ``--n`` responses): verl ``grpo``; ``qwenlong_grpo`` group scope
    (delegates to verl); ``qwenlong_grpo`` with the per-task std (8 tasks).

Prints the median time of each and its ratio to verl's. Usage:
``python bench/bench_algo.py [--rows 8] [--width 4096] [--groups 128] [--n 8] [--repeat 20] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
import torch


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--groups", type=int, default=128)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; 1 keeps small-op timings stable on a shared box")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, compute_policy_loss_vanilla
    from verl.workers.config import ActorConfig, PolicyLossConfig

    from qwenlong_verl.integration.advantage import compute_qwenlong_grpo_advantage
    from qwenlong_verl.integration.policy_loss import QwenLongPolicyLossConfig, compute_policy_loss_qwenlong_dapo

    def actor(policy_loss) -> ActorConfig:
        return ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1, clip_ratio_high=0.28,
                           policy_loss=policy_loss)

    rows, width = args.rows, args.width
    old = -torch.rand(rows, width) * 3
    logits = old + torch.randn(rows, width) * 0.3
    adv = torch.randn(rows, 1).expand(rows, width).contiguous()
    lengths = torch.randint(width // 4, width + 1, (rows,))
    lengths[0] = width  # one truncated response
    mask = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
    configs = {
        "vanilla (verl)": (compute_policy_loss_vanilla, actor(PolicyLossConfig())),
        "qwenlong_dapo, extras off": (compute_policy_loss_qwenlong_dapo, actor(PolicyLossConfig())),
        "qwenlong_dapo, filter+AEPO+no dual clip": (compute_policy_loss_qwenlong_dapo, actor(QwenLongPolicyLossConfig(
            overlong_filter=True, max_response_length=width, aepo=True, aepo_entropy_high=0.5,
            aepo_entropy_low=0.3, dual_clip=False))),
    }

    def loss_step(fn, cfg):
        def run():
            lp = logits.clone().requires_grad_(True)
            loss, _ = fn(old_log_prob=old, log_prob=lp, advantages=adv, response_mask=mask,
                         loss_agg_mode="token-mean", config=cfg)
            loss.backward()
        return run

    print(f"policy loss, one micro-batch of {rows} x {width} tokens, forward + backward (median of {args.repeat}):")
    base = None
    for name, (fn, cfg) in configs.items():
        t = _median_time(loss_step(fn, cfg), args.repeat)
        base = base or t
        print(f"  {name:42s} {t * 1e3:8.2f} ms   x{t / base:.2f}")

    bsz = args.groups * args.n
    uids = np.array([f"u{i // args.n}" for i in range(bsz)], dtype=object)
    tasks = [f"task{(i // args.n) % 8}" for i in range(bsz)]
    resp = 512
    rewards = torch.zeros(bsz, resp)
    rewards[:, -1] = torch.randint(0, 2, (bsz,)).float()
    rmask = torch.ones(bsz, resp)
    runs = {
        "grpo (verl)": lambda: compute_grpo_outcome_advantage(rewards, rmask, uids),
        "qwenlong_grpo, group std": lambda: compute_qwenlong_grpo_advantage(rewards, rmask, uids),
        "qwenlong_grpo, per-task std": lambda: compute_qwenlong_grpo_advantage(rewards, rmask, uids,
                                                                               task_labels=tasks, std_scope="task"),
    }
    print(f"advantages, {args.groups} prompts x {args.n} responses (median of {args.repeat}):")
    base = None
    for name, fn in runs.items():
        t = _median_time(fn, args.repeat)
        base = base or t
        print(f"  {name:42s} {t * 1e3:8.2f} ms   x{t / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
