"""Run verl's real ``main_ppo`` as a subprocess on the CPU backend and read back its per-step metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CPU_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "HYDRA_FULL_ERROR": "1",
    "RAY_DEDUP_LOGS": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


@dataclass
class RunResult:
    returncode: int
    output: str
    metrics: list[dict] = field(default_factory=list)  # one dict per logged step, from verl's "file" logger
    wall_s: float = 0.0

    def steps(self) -> list[int]:
        return [m["step"] for m in self.metrics]

    def step_metrics(self, step: int) -> dict:
        for m in self.metrics:
            if m["step"] == step:
                return m["data"]
        raise KeyError(f"step {step} not logged; logged steps: {self.steps()}")

    def tail(self, n: int = 80) -> str:
        return "\n".join(self.output.splitlines()[-n:])


def run_main_ppo(
    overrides: list[str],
    workdir: Path,
    *,
    recipe: str | None = "qwenlong_phase1",
    cpu: bool = True,
    timeout_s: int = 900,
    env: dict[str, str] | None = None,
) -> RunResult:
    """``python -m verl.trainer.main_ppo +recipe=<recipe> +qwenlong_env=cpu <overrides>`` in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_file = workdir / "metrics.jsonl"
    if metrics_file.exists():
        metrics_file.unlink()
    args = [sys.executable, "-m", "verl.trainer.main_ppo"]
    if recipe:
        args.append(f"+recipe={recipe}")
    if cpu:
        args.append("+qwenlong_env=cpu")
    args += [
        f"trainer.default_local_dir={workdir / 'ckpt'}",
        "trainer.experiment_name=e2e",
        *overrides,
    ]
    full_env = {**os.environ, **CPU_ENV, "VERL_FILE_LOGGER_PATH": str(metrics_file), **(env or {})}
    start = time.monotonic()
    proc = subprocess.run(args, cwd=workdir, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout_s)
    wall = time.monotonic() - start
    (workdir / "run.log").write_text(proc.stdout)
    metrics = []
    if metrics_file.exists():
        metrics = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    return RunResult(proc.returncode, proc.stdout, metrics, wall)


def toy_docqa_rows(n: int, split: str = "train", start_index: int = 0) -> list[dict]:
    """Small copy-the-answer DocQA rows in verl's RL layout (a stand-in until tests use the synth generator)."""
    rows = []
    for i in range(n):
        idx = start_index + i
        answer = f"{(idx * 37) % 1000}"
        doc = f"The report for unit {idx} says the total value is {answer}. Other units differ."
        question = f"What is the total value for unit {idx}?"
        content = (
            "Please read the following text and answer the question below.\n\n<text>\n"
            f"{doc}\n</text>\n\n{question}\n\n"
            'Format your response as follows: "Therefore, the answer is (insert answer here)".'
        )
        rows.append({
            "data_source": "musique",
            "prompt": [{"role": "user", "content": content}],
            "ability": "docqa",
            "reward_model": {"style": "rule", "ground_truth": answer},
            "extra_info": {"index": idx, "split": split, "question": question, "prompt_length": 60},
            "prompt_length": 60,
        })
    return rows


@dataclass
class DemoData:
    model: Path
    train: Path
    val: Path


def make_demo_data(root: Path, model: Path, *, n_train: int = 32, n_val: int = 8, min_tokens: int = 120,
                   max_tokens: int = 700, seed: int = 0) -> DemoData:
    """Synthetic DocQA parquet (with stored prompt lengths) for CPU runs of the tiny model."""
    from transformers import AutoTokenizer

    from qwenlong_verl.data.synth import generate_docqa, write_rows

    root.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(str(model))
    train = generate_docqa(n_train, min_tokens=min_tokens, max_tokens=max_tokens, tokenizer=tok, seed=seed)
    val = generate_docqa(n_val, min_tokens=min_tokens, max_tokens=max_tokens, tokenizer=tok, seed=seed + 1,
                         index_offset=100_000, split="val")
    write_rows(train, str(root / "train.parquet"))
    write_rows(val, str(root / "val.parquet"))
    return DemoData(model, root / "train.parquet", root / "val.parquet")


def demo_overrides(data: DemoData, steps: int = 2) -> list[str]:
    return [
        f"data.train_files={data.train}",
        f"data.val_files={data.val}",
        f"actor_rollout_ref.model.path={data.model}",
        f"trainer.total_training_steps={steps}",
    ]


def adam_steps(actor_dir: Path) -> set[int]:
    """The optimizer ``step`` counts in a verl actor checkpoint folder (``.../global_step_N/actor``), one per
    parameter: how many updates the Adam moments in it have taken. A run that continued an earlier run's optimizer
    shows that run's steps plus its own; a restarted optimizer shows only its own."""
    import warnings

    import torch

    files = sorted(Path(actor_dir).glob("optim_world_size_*_rank_*.pt"))
    assert files, f"no optimizer shard in {actor_dir}: {sorted(p.name for p in Path(actor_dir).iterdir())}"
    steps: set[int] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            state = torch.load(f, weights_only=False, map_location="cpu")["state"]
            steps |= {int(float(s["step"])) for s in state.values()}
    return steps
