"""Options of the QwenLong-L1 pipeline (``qwenlong-verl pipeline``), with the CPU demo's and the paper's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STAGES = ("data", "sft", "phase1", "phase2", "eval", "report")
MODES = ("cpu", "gpu")


class PipelineError(RuntimeError):
    """The pipeline cannot go on; the message names the stage and what to do."""


@dataclass
class DemoSizes:
    """Synthetic data of the CPU demo and the tiny model's pre-training. Prompt lengths in tokens of the tiny model's
    tokenizer. Defaults: ``copy`` DocQA (the document states the answer at its start and end) and no pre-training;
    :func:`cpu_demo_options` uses ``needle`` DocQA and 400 pre-training steps."""

    train_rows: int = 64
    sft_rows: int = 384
    eval_rows: int = 32
    val_rows: int = 4
    min_tokens: int = 160
    max_tokens: int = 470
    sft_max_tokens: int = 300  # the SFT set lies within phase I's bound, as in the paper
    kinds: tuple[str, ...] = ("copy",)
    seed: int = 0
    pretrain_steps: int = 0  # code-copy pre-training of the fresh tiny model (tiny_model.pretrain_code_copy)


PHASE2_STARTS = ("resume", "restart")


@dataclass
class PipelineOptions:
    """Everything one pipeline run needs. ``mode=cpu``: the demo (tiny model and synthetic data built by the
    ``data`` stage unless given); ``mode=gpu``: the paper's settings with the user's model, data and judge."""

    mode: str = "cpu"
    workdir: Path = Path("qwenlong_demo")
    # inputs; the CPU demo builds whatever is None
    model: str | None = None
    train_data: str | None = None
    val_data: str | None = None
    eval_data: list[str] = field(default_factory=list)
    sft_data: list[str] = field(default_factory=list)  # triplets (converted) or a `messages` parquet
    sft_reasoning: str = "column"  # SFT conversion reasoning mode; the demo uses "evidence"
    # judge: a URL, or the CPU demo's stand-in server
    judge_url: str | None = None
    judge_model: str | None = None
    standin_judge: bool = False
    # curriculum (paper: L1 = 20K, L2 = 60K input tokens)
    phase_lengths: tuple[int, int] = (20000, 60000)
    retrospective_mode: str = "zero_mean"
    retrospective_ratio: float | None = None  # share of phase II's epoch; None: every zero-mean example (zero_mean)
    # lengths of each stage; None: the recipe's (epochs)
    sft_epochs: int = 3
    sft_steps: int | None = None
    phase1_steps: int | None = None
    phase2_steps: int | None = None
    max_response_length: int | None = None  # None: the recipe's (10K on GPU)
    rl_lr: float | None = None  # actor lr of both RL phases; None: the recipe's (paper: 2e-6)
    yarn_phase2: bool = True  # phase II past 32K tokens: YaRN rope scaling (+qwenlong_rope=yarn)
    # how phase II starts: "resume" continues phase I's last full verl checkpoint (weights, Adam moments, lr
    # schedule, global step, RNG) with phase II's band and settings; "restart" is the paper's separate launch (phase
    # I's HF weights, a fresh optimizer and step count)
    phase2_start: str = "resume"
    # launch
    nproc_per_node: int = 8
    nnodes: int = 1  # RL phases: trainer.nnodes (a Ray cluster of that many nodes, --ray-address)
    sft_launcher: str = "torchrun"  # torchrun (one node) | ray (verl.trainer.sft_trainer_ray, a Ray cluster)
    ray_address: str | None = None  # an existing Ray cluster for the RL phases (and the Ray SFT launcher)
    stage_timeout_s: float | None = None
    # evaluation
    eval_backend: str = "local"  # local: HF generate here | endpoint: `qwenlong-verl eval` against a server
    eval_endpoint: str | None = None
    eval_served_model: str | None = None
    eval_max_new_tokens: int = 10000
    eval_temperature: float = 0.7  # paper §3.3
    eval_samples: int = 1  # answers per held-out row (local backend); a row's accuracy is their mean
    eval_models: tuple[str, ...] = ("final",)  # which stage models to evaluate: base, sft, phase1, phase2, final
    # per-stage Hydra overrides, passed after the pipeline's own
    overrides: dict[str, list[str]] = field(default_factory=dict)
    demo: DemoSizes = field(default_factory=DemoSizes)

    def __post_init__(self) -> None:
        # absolute: every stage runs its subprocess inside its own folder
        self.workdir = Path(self.workdir).expanduser().resolve()
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if len(self.phase_lengths) != 2 or not 0 < self.phase_lengths[0] < self.phase_lengths[1]:
            raise ValueError(f"phase_lengths must be two increasing token counts (L1, L2), got {self.phase_lengths}")
        if self.sft_launcher not in ("torchrun", "ray"):
            raise ValueError(f"sft_launcher must be torchrun or ray, got {self.sft_launcher!r}")
        if self.eval_backend not in ("local", "endpoint"):
            raise ValueError(f"eval_backend must be local or endpoint, got {self.eval_backend!r}")
        if self.phase2_start not in PHASE2_STARTS:
            raise ValueError(f"phase2_start must be one of {PHASE2_STARTS}, got {self.phase2_start!r}")
        if self.retrospective_mode not in ("zero_mean", "weighted"):
            raise ValueError(f"retrospective_mode must be zero_mean or weighted, got {self.retrospective_mode!r}")
        if self.retrospective_mode == "weighted" and self.retrospective_ratio is None:
            raise ValueError("retrospective_mode=weighted needs retrospective_ratio (share of phase II's epoch)")
        if self.retrospective_ratio is not None and not 0 <= self.retrospective_ratio < 1:
            raise ValueError(f"retrospective_ratio must be in [0, 1), got {self.retrospective_ratio}")
        for stage in self.overrides:
            if stage not in ("sft", "phase1", "phase2", "rl"):
                raise ValueError(f"overrides: unknown stage {stage!r} (sft, phase1, phase2, or rl for both phases)")
        if self.eval_samples < 1:
            raise ValueError(f"eval_samples must be >= 1, got {self.eval_samples}")
        if self.nnodes < 1 or self.nproc_per_node < 1:
            raise ValueError(f"nnodes and nproc_per_node must be >= 1, got {self.nnodes} x {self.nproc_per_node}")
        for name in ("sft_steps", "phase1_steps", "phase2_steps"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        bad = [m for m in self.eval_models if m not in ("base", "sft", "phase1", "phase2", "final")]
        if bad:
            raise ValueError(f"eval_models: unknown {bad}; choose from base, sft, phase1, phase2, final")

    @property
    def cpu(self) -> bool:
        return self.mode == "cpu"

    def stage_overrides(self, stage: str) -> list[str]:
        extra = list(self.overrides.get("rl", [])) if stage in ("phase1", "phase2") else []
        return extra + list(self.overrides.get(stage, []))


# The CPU demo's RL batch: 8 prompts x G = 8 rollouts, one optimizer step per batch. The SFT lr is a third of the CPU
# recipe's: a larger step wipes out the pre-trained copy skill while it teaches the answer format.
DEMO_OVERRIDES = {
    "rl": ["data.train_batch_size=8", "actor_rollout_ref.rollout.n=8", "actor_rollout_ref.actor.ppo_mini_batch_size=8"],
    "sft": ["optim.lr=1e-3"],
}


def cpu_demo_options(workdir: str | Path = "qwenlong_demo", **changes) -> PipelineOptions:
    """The CPU demo, sized to show learning within ~10 minutes on 2 cores: a tiny model with a pre-trained code-copy
    skill, synthetic ``needle`` DocQA (the longer the document, the more distractor codes), SFT within phase I's
    bound, 12 RL steps per phase, a stand-in judge, and a held-out eval of the SFT, phase I and phase II models.
    ``overrides`` given here come after the demo's own (a later Hydra override wins)."""
    overrides = {stage: list(values) for stage, values in DEMO_OVERRIDES.items()}
    for stage, values in (changes.pop("overrides", None) or {}).items():
        overrides[stage] = overrides.get(stage, []) + list(values)
    base = dict(
        mode="cpu", workdir=Path(workdir), sft_reasoning="evidence", standin_judge=True, phase_lengths=(320, 600),
        sft_epochs=2, phase1_steps=12, phase2_steps=12, max_response_length=96, yarn_phase2=False, nproc_per_node=1,
        rl_lr=1e-3,  # a 140K-parameter model: the paper's 2e-6 (for 14B/32B) would not move it
        eval_max_new_tokens=96, eval_temperature=0.7, eval_samples=2, eval_models=("sft", "phase1", "final"),
        demo=DemoSizes(train_rows=128, sft_rows=384, eval_rows=64, min_tokens=150, max_tokens=600, sft_max_tokens=320,
                       kinds=("needle",), pretrain_steps=400),
        overrides=overrides,
    )
    base.update(changes)
    return PipelineOptions(**base)
