"""Which checks run where: :func:`driver_findings` in the Hydra guard (milliseconds, before Ray starts) and
:func:`run_preflight` for ``qwenlong-verl preflight`` (the guard's checks + verl's own validation + the judge probe)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from qwenlong_verl.findings import Finding, errors
from qwenlong_verl.preflight import checks
from qwenlong_verl.preflight.model_facts import ModelConfigError, ModelFacts

logger = logging.getLogger(__name__)

DEFAULT_GPU_MEMORY_GIB = 80.0  # A100/H100 80G, the paper's GPUs


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain Python with interpolations resolved (a ``???`` value stays the string ``???``).
    The ``hydra`` node (present in the guard's config) is left out: its sweep keys do not resolve in a single run."""
    out: dict[str, Any] = {}
    for key in cfg:
        if key == "hydra":
            continue
        if OmegaConf.is_missing(cfg, key):
            out[key] = "???"
            continue
        value = cfg[key]
        out[key] = (OmegaConf.to_container(value, resolve=True, throw_on_missing=False)
                    if isinstance(value, DictConfig | ListConfig) else value)
    return out


def model_facts(cfg: dict[str, Any]) -> tuple[ModelFacts | None, list[Finding]]:
    """The model's sizes from its folder's ``config.json`` (None, with no finding, while the path is unset: verl
    names a missing mandatory value itself)."""
    path = checks.sel(cfg, "actor_rollout_ref.model.path")
    if not path or path == "???":
        return None, []
    key = "actor_rollout_ref.model.path"
    local = Path(str(path)).expanduser()
    if local.exists() and not local.is_dir():
        return None, [Finding("error", "model", key, f"{path!r} is a file, not a model folder: verl loads "
                              "config.json, the tokenizer and the weights from a folder",
                              "give the folder that holds config.json (e.g. the checkpoint's actor/huggingface)")]
    from qwenlong_verl.model_source import looks_like_path

    if not local.exists() and "://" not in str(path) and looks_like_path(str(path)):
        return None, [Finding("error", "model", key, f"{path!r} does not exist (a local path, not a hub name "
                              "like org/name): every worker would fail to load the model",
                              "give an existing model folder (on storage every node mounts), or a hub name")]
    if not Path(str(path)).is_dir():
        return None, [Finding("warning", "model", "actor_rollout_ref.model.path",
                              f"{path!r} is not a local folder: the checks that need the model's config.json "
                              "(heads vs SP, positions vs max_model_len, memory) were skipped",
                              "download it (`huggingface-cli download NAME --local-dir DIR`) and pass the folder")]
    try:
        return ModelFacts.from_folder(str(path)), []
    except ModelConfigError as exc:
        return None, [Finding("error", "model", "actor_rollout_ref.model.path", str(exc))]


def local_gpu_memory_gib() -> float | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(0).total_memory / checks.GIB
    except Exception:  # noqa: BLE001
        pass
    return None


def qwenlong_rule_findings(config: DictConfig) -> list[Finding]:
    """Our own options: every ``qwenlong.*`` key known, typed and in range, the judge URL well formed
    (``config_checks``); then the sampling subsystem's driver-side rules (phase bounds, retrospective input file)."""
    from qwenlong_verl.config import QwenLongConfigError
    from qwenlong_verl.config_checks import check_qwenlong_options
    from qwenlong_verl.sampling.options import validate_run_config

    for check in (check_qwenlong_options, validate_run_config):
        try:
            check(config)
        except QwenLongConfigError as exc:
            return [Finding("error", "qwenlong", "qwenlong", str(exc))]
    return []


def driver_findings(config: DictConfig, *, gpu_memory_gib: float | None = None,
                    strict_env: bool = False) -> list[Finding]:
    """The cheap checks (no verl, no network): what the Hydra guard runs before Ray starts. Without a GPU memory
    (given, or this machine's) the vLLM estimate is left out."""
    found, _, _ = _driver_checks(config, plain(config), gpu_memory_gib or local_gpu_memory_gib(), strict_env)
    return found


def _driver_checks(config: DictConfig, cfg: dict[str, Any], gpu_memory_gib: float | None,
                   strict_env: bool) -> tuple[list[Finding], ModelFacts | None, dict[str, Any]]:
    from qwenlong_verl.preflight.resume_check import resume_findings

    found = qwenlong_rule_findings(config) + checks.config_checks(cfg) + resume_findings(cfg)
    facts, problems = model_facts(cfg)
    found += problems
    if facts is not None:
        found += checks.model_checks(cfg, facts, gpu_memory_gib)
    found += checks.check_gpu_environment(cfg, strict=strict_env)
    return found, facts, cfg


@dataclass
class PreflightReport:
    findings: list[Finding]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not errors(self.findings)


def run_preflight(overrides: list[str], *, gpu_memory_gib: float | None = None, network: bool = True,
                  strict_env: bool = False) -> PreflightReport:
    """Everything ``qwenlong-verl preflight`` checks, for the overrides one would give ``main_ppo``.

    Args:
        overrides: Hydra overrides, e.g. ``["+recipe=qwenlong_phase2", "actor_rollout_ref.model.path=/m"]``.
        gpu_memory_gib: memory of one GPU for the vLLM estimate (default: this machine's GPU, else 80).
        network: probe the judge URL.
        strict_env: missing flash-attn/vLLM is an error even on a machine without GPUs.
    """
    # The one arrow from preflight into the wing, lazy: verl's own start-up validation needs verl, which the Hydra
    # guard (driver_findings, the same module) must not pay for. The wing imports nothing of preflight.
    from qwenlong_verl.hydra.compose import compose_main_ppo
    from qwenlong_verl.integration.config_validation import verl_findings

    try:
        config = compose_main_ppo(overrides)
    except Exception as exc:  # noqa: BLE001 - Hydra's override/composition errors
        return PreflightReport([Finding("error", "compose", "overrides", f"{type(exc).__name__}: {exc}",
                                        "check the override against `python -m verl.trainer.main_ppo ... --cfg job`")])
    memory = gpu_memory_gib or local_gpu_memory_gib() or DEFAULT_GPU_MEMORY_GIB
    found, facts, cfg = _driver_checks(config, plain(config), memory, strict_env)
    verl_found, model = verl_findings(config, build_model=facts is not None)
    found += verl_found
    if network:
        found += checks.probe_judge(cfg)
    nnodes, gpus = checks.layout(cfg)
    summary: dict[str, Any] = {
        "recipe": checks.sel(cfg, "qwenlong.recipe"), "nodes_x_gpus": f"{nnodes}x{gpus}",
        "prompt_plus_response": checks.max_sequence(cfg),
        "sp": checks.sel(cfg, "actor_rollout_ref.actor.ulysses_sequence_parallel_size"),
        "tp": checks.sel(cfg, "actor_rollout_ref.rollout.tensor_model_parallel_size"),
        "ppo_max_token_len_per_gpu": checks.sel(cfg, "actor_rollout_ref.actor.ppo_max_token_len_per_gpu"),
        "max_model_len": checks.sel(cfg, "actor_rollout_ref.rollout.max_model_len"), "gpu_memory_gib": memory,
    }
    if facts is not None:
        summary["model"] = {"path": facts.path, "heads": facts.num_heads, "kv_heads": facts.num_kv_heads,
                            "layers": facts.num_layers, "params_b": round(facts.num_parameters() / 1e9, 2),
                            "max_position_embeddings": facts.max_position_embeddings, "rope": facts.rope_type}
    if model is not None:
        summary["verl_model_config"] = {
            "rope_parameters": getattr(model.hf_config, "rope_parameters", None),
            "max_position_embeddings": getattr(model.hf_config, "max_position_embeddings", None)}
    return PreflightReport(found, summary)
