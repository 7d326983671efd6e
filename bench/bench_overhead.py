"""What the plugins cost inside a real step: the same CPU ``main_ppo`` run twice in one go.

* **stock**: verl's own pieces: ``dapo`` reward manager (overlong buffer on), ``grpo``, ``vanilla`` loss, ``sync``
  trainer mode;
* **ours**: ``qwenlong`` reward manager (rule only, no judge), ``qwenlong_grpo``, ``qwenlong_dapo``, trainer mode
  ``qwenlong`` with the phased curriculum and retrospective sampling (a difficulty file from a stand-in phase I).

Same tiny model, data, seed, batch and rollouts; DAPO dynamic sampling off in both, so each step does the same work.
Reported: mean ``timing_s/step`` over steps 2..N (verl's own timer; step 1 holds the warm-up), its ratio ours/stock,
each ``timing_s/*`` part, and the peak RSS of the largest process among the run's waited-for descendants
(``ru_maxrss`` of a wrapper process's children; Ray's worker processes are counted only where raylet reaps them).
Target: ours <= 1.03x stock. On 2 shared cores a step is noisy: run with ``--repeats 2`` or more and read the spread.

    flock /tmp/qwenlong-verl-e2e.lock python bench/bench_overhead.py --steps 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPU_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM":
           "false", "RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0", "QWENLONG_JUDGE_PROBE": "0"}


def _data(work: Path) -> tuple[Path, Path, Path, Path]:
    from transformers import AutoTokenizer

    from qwenlong_verl.data.synth import generate_docqa, write_rows
    from qwenlong_verl.pipeline.tiny_model import build_tiny_model

    model = work / "model"
    if not (model / "config.json").exists():
        build_tiny_model(model)
    tok = AutoTokenizer.from_pretrained(str(model))
    train, val, diff = work / "train.parquet", work / "val.parquet", work / "phase1_difficulty.json"
    rows = generate_docqa(64, min_tokens=120, max_tokens=700, tokenizer=tok, seed=0)
    write_rows(rows, str(train))
    write_rows(generate_docqa(4, min_tokens=120, max_tokens=300, tokenizer=tok, seed=1, index_offset=100_000,
                              split="val"), str(val))
    # a stand-in phase I table: every phase-I example unsolved, so phase II mixes them in (retrospective sampling)
    from qwenlong_verl.sampling.difficulty import DifficultyTable

    table = DifficultyTable.from_dict({
        "format": "qwenlong-difficulty", "version": 1, "metric": "acc",
        "examples": [{"index": r["extra_info"]["index"], "data_source": r["data_source"],
                      "prompt_length": r["prompt_length"], "history": [[1, 1, 8, 0.0]]}
                     for r in rows if r["prompt_length"] <= 384]})
    table.save(diff)
    return model, train, val, diff


def _run(name: str, args: list[str], work: Path, steps: int) -> dict:
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    metrics = out / "metrics.jsonl"
    metrics.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "verl.trainer.main_ppo", *args, f"trainer.default_local_dir={out / 'ckpt'}",
           f"trainer.total_training_steps={steps}", "trainer.experiment_name=overhead", "trainer.val_before_train=false",
           "algorithm.filter_groups.enable=false", "data.seed=0", "actor_rollout_ref.rollout.seed=0"]
    # a wrapper process per run, so ru_maxrss of its children is this run's alone (RUSAGE_CHILDREN only grows)
    wrapper = [sys.executable, "-c", "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
               "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"]
    start = time.monotonic()
    proc = subprocess.run(wrapper + cmd, cwd=out, env={**os.environ, **CPU_ENV, "VERL_FILE_LOGGER_PATH": str(metrics)},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - start
    peak = max([int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("PEAK_RSS_KIB")] or [0])
    (out / "run.log").write_text(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: main_ppo failed (exit {proc.returncode}); see {out / 'run.log'}:\n"
                         + "\n".join(proc.stdout.splitlines()[-30:]))
    logged = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    steps_data = [m["data"] for m in logged if m["step"] >= 2 and "timing_s/step" in m["data"]]
    parts = sorted({k for d in steps_data for k in d if k.startswith("timing_s/")})
    return {"name": name, "wall_s": wall, "steps": len(steps_data),
            "step_s": [d["timing_s/step"] for d in steps_data],
            "parts": {k: statistics.mean(d.get(k, 0.0) for d in steps_data) for k in parts},
            "peak_rss_mib": peak / 1024}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="bench_overhead_run")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeats", type=int, default=1, help="alternate stock/ours this many times")
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args(argv)
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    model, train, val, diff = _data(work)
    common = ["+qwenlong_env=cpu", f"data.train_files={train}", f"data.val_files={val}",
              f"actor_rollout_ref.model.path={model}", "data.train_batch_size=4", "actor_rollout_ref.rollout.n=4",
              "trainer.logger=[console,file]"]
    stock = [*common, "reward.reward_manager.name=dapo", "++reward.reward_kwargs.overlong_buffer_cfg.enable=true",
             "++reward.reward_kwargs.overlong_buffer_cfg.len=8", "++reward.reward_kwargs.overlong_buffer_cfg.penalty_factor=1.0",
             "++reward.reward_kwargs.overlong_buffer_cfg.log=false", "++reward.reward_kwargs.max_resp_len=32",
             "algorithm.adv_estimator=grpo",
             "actor_rollout_ref.actor.policy_loss.loss_mode=vanilla", "trainer.v1.trainer_mode=sync",
             "reward.custom_reward_function.path=pkg://qwenlong_verl.reward.scoring",
             "reward.custom_reward_function.name=compute_score"]
    ours = ["+recipe=qwenlong_phase2", *common, "++qwenlong.curriculum.lengths=[384,1024]",
            "++qwenlong.retrospective.enable=true", f"++qwenlong.retrospective.difficulty_file={diff}",
            "++qwenlong.judge.base_url=null"]
    runs: dict[str, list[dict]] = {"stock": [], "ours": []}
    for r in range(args.repeats):
        for name, overrides in (("stock", stock), ("ours", ours)):
            res = _run(f"{name}_{r}", overrides, work, args.steps)
            runs[name].append(res)
            print(f"{name} #{r}: {statistics.mean(res['step_s']):.3f} s/step over {res['steps']} steps "
                  f"(wall {res['wall_s']:.0f} s, peak RSS {res['peak_rss_mib']:.0f} MiB)", flush=True)
    mean = {n: statistics.mean(s for res in rs for s in res["step_s"]) for n, rs in runs.items()}
    ratio = mean["ours"] / mean["stock"]
    print(f"\nstep time: stock {mean['stock']:.3f} s, ours {mean['ours']:.3f} s -> ratio ours/stock {ratio:.3f} "
          f"(target <= 1.03)")
    rss = {n: max(res["peak_rss_mib"] for res in rs) for n, rs in runs.items()}
    print(f"peak RSS of the largest process: stock {rss['stock']:.0f} MiB, ours {rss['ours']:.0f} MiB -> ratio "
          f"{rss['ours'] / rss['stock']:.3f}")
    keys = sorted(set(runs["stock"][0]["parts"]) | set(runs["ours"][0]["parts"]))
    print(f"\n{'part (mean s/step)':<40} {'stock':>8} {'ours':>8}")
    for k in keys:
        s = statistics.mean(res["parts"].get(k, 0.0) for res in runs["stock"])
        o = statistics.mean(res["parts"].get(k, 0.0) for res in runs["ours"])
        print(f"{k:<40} {s:8.3f} {o:8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "mean_step_s": mean, "ratio": ratio, "peak_rss_mib": rss},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
