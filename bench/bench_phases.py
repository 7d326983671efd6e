"""Benchmark: building the curriculum's phase datasets from stored lengths vs verl's start-up tokenisation.

Setup (not timed): 2,000 synthetic DocQA rows averaging ~11K prompt tokens (log-uniform 300..60K) under the tiny
local tokenizer, with ``prompt_length`` stored as ``qwenlong-verl synth/prepare`` write it.

Timed, in one run, for the two phases of the paper (L = 20K, 60K):
  * baseline: verl's ``RLHFDataset`` with ``filter_overlong_prompts=True`` and ``max_prompt_length`` = 20000, then
    60000 (one start-up per phase run: every prompt is chat-templated and tokenised each time);
  * ours: ``RLHFDataset`` without the filter + the stored-length view + the phase band and retrospective pool of
    each phase (the work the ``qwenlong`` trainer mode does at start-up).
Also: the sampler's overhead per batch of 128 indices (vs torch's RandomSampler) and one state_dict().

Prints the ratios. Usage: ``python bench/bench_phases.py [--n 2000] [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _timed(fn, repeat: int = 1):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--min-tokens", type=int, default=300)
    ap.add_argument("--max-tokens", type=int, default=60000)
    ap.add_argument("--phases", default="20000,60000")
    ap.add_argument("--workdir", default=None, help="keeps the generated data between runs")
    ap.add_argument("--tokenizer", default=None, help="tokenizer dir (default: build the tiny local one)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import datasets
    import numpy as np
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from qwenlong_verl.data.synth import generate_docqa, write_rows
    from qwenlong_verl.integration.trainer_mode import dataset_view
    from qwenlong_verl.pipeline.tiny_model import build_tokenizer
    from qwenlong_verl.sampling.difficulty import DifficultyTable
    from qwenlong_verl.sampling.options import sampling_options
    from qwenlong_verl.sampling.sampler import PhasedRetrospectiveSampler

    logging.getLogger("qwenlong_verl.sampling").setLevel(logging.WARNING)  # the trainer module sets INFO
    datasets.disable_caching()  # a cached filter result would hide the tokenisation we measure
    datasets.disable_progress_bars()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_phases_"))
    work.mkdir(parents=True, exist_ok=True)
    tok_dir = args.tokenizer or str(work / "tokenizer")
    if not args.tokenizer and not (work / "tokenizer" / "tokenizer.json").exists():
        build_tokenizer(work / "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    data = work / f"docqa_{args.n}_{args.min_tokens}_{args.max_tokens}.parquet"
    if not data.exists():
        t0 = time.perf_counter()
        rows = generate_docqa(args.n, min_tokens=args.min_tokens, max_tokens=args.max_tokens, tokenizer=tokenizer,
                              seed=0, length_dist="loguniform")
        write_rows(rows, str(data))
        print(f"setup: generated {args.n} rows in {time.perf_counter() - t0:.1f}s -> {data}")
    phases = [int(x) for x in args.phases.split(",")]
    lengths = np.asarray(__import__("pandas").read_parquet(data, columns=["prompt_length"])["prompt_length"])
    print(f"data: {len(lengths)} rows, prompt tokens mean {lengths.mean():.0f}, max {lengths.max()}, "
          f"total {lengths.sum() / 1e6:.1f}M")

    base_cfg = {"prompt_key": "prompt", "cache_dir": str(work / "cache"), "filter_overlong_prompts_workers": 1}

    def verl_startup(max_len: int) -> int:
        cfg = OmegaConf.create({**base_cfg, "max_prompt_length": max_len, "filter_overlong_prompts": True})
        return len(RLHFDataset(str(data), tokenizer, cfg))

    # difficulty table of a finished phase I: half of its examples never solved
    table = DifficultyTable()
    frame = __import__("pandas").read_parquet(data, columns=["extra_info", "prompt_length"])
    for k, (extra, n_tok) in enumerate(zip(frame["extra_info"], frame["prompt_length"], strict=True)):
        if n_tok <= phases[0]:
            table.add(extra["index"], step=1, phase=1, rewards=[0.0] * 8 if k % 2 else [1.0] * 4 + [0.0] * 4)
    options = [sampling_options({"qwenlong": {
        "curriculum": {"lengths": phases, "phase": k + 1},
        "retrospective": {"enable": True, "difficulty_file": "-"}}}) for k in range(len(phases))]

    def ours() -> list[int]:
        cfg = OmegaConf.create({**base_cfg, "max_prompt_length": phases[-1], "filter_overlong_prompts": False})
        ds = RLHFDataset(str(data), tokenizer, cfg)
        view = dataset_view(ds, "prompt_length")
        return [len(PhasedRetrospectiveSampler(view, o, table)) for o in options]

    with_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # RLHFDataset prints progress lines
    try:
        t_ours, sizes = _timed(ours, repeat=3)
        t_base = 0.0
        base_sizes = []
        for max_len in phases:
            t, n = _timed(lambda m=max_len: verl_startup(m))
            t_base += t
            base_sizes.append(n)
    finally:
        sys.stdout.close()
        sys.stdout = with_stdout
    print(f"verl filter_overlong_prompts start-up, {len(phases)} phases: {t_base:.2f}s (kept {base_sizes})")
    print(f"stored lengths + phase bands + retrospective pool, {len(phases)} phases: {t_ours:.3f}s "
          f"(epoch sizes {sizes})")
    print(f"RATIO build phase datasets: {t_base / t_ours:.1f}x faster (target >= 20x)")

    # sampler overhead per batch of 128 vs torch's RandomSampler
    import torch
    from torch.utils.data import BatchSampler, RandomSampler

    sys.stdout = open(os.devnull, "w")
    try:
        view = dataset_view(RLHFDataset(str(data), tokenizer, OmegaConf.create(
            {**base_cfg, "max_prompt_length": phases[-1], "filter_overlong_prompts": False})), "prompt_length")
    finally:
        sys.stdout.close()
        sys.stdout = with_stdout
    sampler = PhasedRetrospectiveSampler(view, options[-1], table)

    def per_batch(s, batches: int = 2000) -> float:
        it = iter(BatchSampler(s, 128, drop_last=True))
        start = time.perf_counter()
        done = 0
        while done < batches:
            try:
                next(it)
            except StopIteration:
                it = iter(BatchSampler(s, 128, drop_last=True))
                continue
            done += 1
        return (time.perf_counter() - start) / batches

    ours_batch = statistics.median(per_batch(sampler) for _ in range(3))
    torch_batch = statistics.median(per_batch(RandomSampler(range(len(view)), generator=torch.Generator()))
                                    for _ in range(3))
    t_state, _ = _timed(sampler.state_dict, repeat=20)
    t_switch, _ = _timed(lambda: sampler._enter_phase(len(phases)), repeat=5)
    print(f"sampler overhead per batch of 128: {ours_batch * 1e3:.4f} ms (torch RandomSampler "
          f"{torch_batch * 1e3:.4f} ms, ratio {ours_batch / torch_batch:.2f}); target < 1 ms")
    print(f"sampler state_dict: {t_state * 1e3:.3f} ms; phase switch (band + retrospective pool): "
          f"{t_switch * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
