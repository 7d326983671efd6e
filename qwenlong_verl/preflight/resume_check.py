"""What a launch that resumes a verl checkpoint needs, checked before Ray starts.

Phase II continues phase I's training state by resuming phase I's last checkpoint (``trainer.resume_mode=
resume_path``, ``trainer.resume_from_path=.../global_step_N``). verl finds out that the checkpoint does not fit only
on the GPU workers, minutes into the job (or not at all: a run whose total steps do not exceed N trains nothing and
exits 0). The rules, each from verl 0.9.1's own loading code:

* the folder is a ``global_step_N`` folder (verl parses N from the name and asserts the pattern);
* ``actor/`` holds the model, optimizer and extra-state shards of *this* world size: verl's FSDP checkpoint manager
  loads ``{model,optim,extra_state}_world_size_{W}_rank_{r}.pt`` with W = ``trainer.nnodes`` x
  ``trainer.n_gpus_per_node``, so a checkpoint written by another number of GPUs cannot be loaded;
* without the optimizer shard, the moments restart; without ``extra_state``, the lr scheduler and RNG restart;
  without ``data.pt``, the sampler cannot tell which phase the checkpoint was taken in;
* ``trainer.total_training_steps``, when set, exceeds N: global steps continue across phases.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from qwenlong_verl.findings import Finding

KEY = "trainer.resume_from_path"
_STEP = re.compile(r"global_step_(\d+)$")


def _sel(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def resume_findings(cfg: dict[str, Any]) -> list[Finding]:
    """Findings for ``trainer.resume_mode=resume_path`` (none for other modes).

    Args:
        cfg: the composed ``main_ppo`` config as plain Python.
    """
    if _sel(cfg, "trainer.resume_mode") != "resume_path":
        return []
    raw = _sel(cfg, KEY)
    if not raw:
        return [Finding("error", "resume", KEY, "trainer.resume_mode=resume_path needs a checkpoint folder",
                        f"set {KEY}=<phase I's default_local_dir>/global_step_N")]
    folder = Path(str(raw)).expanduser()
    m = _STEP.search(folder.name)
    if not m:
        return [Finding("error", "resume", KEY, f"{raw!r} is not a verl checkpoint folder (verl reads the step from "
                        "a name global_step_N)", "point it at <run folder>/global_step_N (the number in "
                        "latest_checkpointed_iteration.txt)")]
    step = int(m.group(1))
    if not folder.is_dir():
        return [Finding("error", "resume", KEY, f"{folder} does not exist",
                        f"use an existing checkpoint; {folder.parent}/latest_checkpointed_iteration.txt names the "
                        "last complete one")]
    found: list[Finding] = []
    nnodes = int(_sel(cfg, "trainer.nnodes") or 1)
    gpus = int(_sel(cfg, "trainer.n_gpus_per_node") or 1)
    world = nnodes * gpus
    actor = folder / "actor"
    shards = sorted(actor.glob("model_world_size_*_rank_0.pt")) if actor.is_dir() else []
    sizes = sorted({int(re.search(r"world_size_(\d+)_", p.name).group(1)) for p in shards})
    if not shards:
        found.append(Finding("error", "resume", KEY, f"{actor} holds no model shards "
                             "(model_world_size_W_rank_R.pt): not a full verl checkpoint",
                             "resume a checkpoint saved with actor.checkpoint.save_contents including model, "
                             "optimizer and extra"))
        return found
    if world not in sizes:
        found.append(Finding("error", "resume", "trainer.nnodes", f"the checkpoint was written by world size "
                             f"{sizes} and this launch has {nnodes} x {gpus} = {world} ranks; verl's FSDP checkpoint "
                             "loads the shards of its own world size only",
                             f"launch with the checkpoint's world size ({sizes[0]} ranks), or start from its HF "
                             "weights with a fresh optimizer (recipes/phase2.sh RESTART=1, pipeline --phase2-start "
                             "restart)"))
    else:
        for kind, lost in (("optim", "the Adam moments restart"), ("extra_state", "the lr scheduler and RNG restart")):
            if not (actor / f"{kind}_world_size_{world}_rank_0.pt").is_file():
                found.append(Finding("error", "resume", KEY, f"{actor} has no {kind}_world_size_{world}_rank_0.pt: "
                                     f"{lost}, which is what resuming is for",
                                     "save phase I with actor.checkpoint.save_contents=[model,optimizer,extra,"
                                     "hf_model] (the recipes do)"))
    if not (folder / "data.pt").is_file():
        found.append(Finding("warning", "resume", KEY, f"{folder} has no data.pt: the sampler cannot tell which "
                             "phase the checkpoint was taken in", "resume a checkpoint verl's trainer wrote whole"))
    total = _sel(cfg, "trainer.total_training_steps")
    if total is not None and int(total) <= step:
        found.append(Finding("error", "resume", "trainer.total_training_steps",
                             f"{total} is not past the resumed step {step}: global steps continue across phases, so "
                             "this launch would train 0 steps",
                             f"set trainer.total_training_steps={step} + this phase's steps (or leave it unset: "
                             f"this phase's epochs after step {step})"))
    return found
