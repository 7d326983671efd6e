"""Put a run's config (composed by :func:`qwenlong_verl.hydra.compose.compose_main_ppo`) through verl 0.9.1's own
start-up code, without Ray and without GPUs: ``validate_config`` (batch sizes, micro-batches, SP vs GPUs), the
actor/ref/rollout/critic config dataclasses (their ``__post_init__`` checks) and ``HFModelConfig`` on the model
folder (where ``override_config`` is applied and the tokenizer is loaded). Each failure becomes a :class:`Finding` naming the step.

This is the only preflight module that imports verl. ``preflight.all_checks.run_preflight`` calls it lazily; it
imports nothing of ``preflight`` (its :class:`Finding` is the core's ``qwenlong_verl.findings``), so the two folders
do not form a loop.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from qwenlong_verl.findings import Finding

# config key -> the verl registry its value is looked up in (by verl's workers, minutes into a run)
REGISTRY_KEYS: tuple[tuple[str, str], ...] = (
    ("algorithm.adv_estimator", "adv_estimator"),
    ("actor_rollout_ref.actor.policy_loss.loss_mode", "policy_loss"),
    ("reward.reward_manager.name", "reward_manager"),
    ("trainer.v1.trainer_mode", "trainer_mode"),
    ("actor_rollout_ref.rollout.name", "rollout"),
)


def registry_findings(cfg: DictConfig) -> list[Finding]:
    """Every name that selects a verl registry entry, checked against the names registered after ``import verl``
    (which loads this package's plugins). verl looks most of them up only inside a Ray worker, so a misspelt
    ``loss_mode=qwenlong_dap`` or ``reward_manager.name=qwenlongg`` otherwise fails minutes into a run."""
    import difflib

    from qwenlong_verl.integration.contacts import import_verl, registry_names

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        import_verl()
    findings: list[Finding] = []
    for key, kind in REGISTRY_KEYS:
        if key == "reward.reward_manager.name" and OmegaConf.select(cfg, "reward.reward_manager.source",
                                                                    default="register") != "register":
            continue  # source=importlib names a module path, not a registered name
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is None or value == "???":
            continue  # unset: verl's own validation names a missing mandatory value
        try:
            names = registry_names(kind)
        except Exception as exc:  # noqa: BLE001 - a verl upgrade moved the registry: doctor names the contact
            findings.append(Finding("warning", "registry", key, f"cannot read verl's {kind} registry ({exc}): "
                                    f"{value!r} was not checked", "run `qwenlong-verl doctor`"))
            continue
        if str(value) in names:
            continue
        close = difflib.get_close_matches(str(value), names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        findings.append(Finding("error", "registry", key,
                                f"{key}={value!r} is not a registered {kind} in verl 0.9.1 (with this package's "
                                f"plugins): registered are {', '.join(names)}",
                                f"{hint}set {key} to one of the registered names"))
    return findings


def reward_manager_findings(cfg: DictConfig, tokenizer: Any) -> list[Finding]:
    """Build the reward manager ``main_ppo``'s reward workers build, on this config: its ``__init__`` is where verl's
    DAPO manager (and ours, its subclass) reads ``reward.reward_kwargs`` (``overlong_buffer_cfg.enable``/``len``,
    ``max_resp_len``), and a missing key there kills every reward worker after Ray and the model have started. Only
    registered managers derived from DAPO's are built (others may open connections in ``__init__``)."""
    from verl.experimental.reward_loop.reward_manager.dapo import DAPORewardManager
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    findings: list[Finding] = []
    if OmegaConf.select(cfg, "reward.reward_manager.source", default="register") != "register":
        return findings
    cls = _step(findings, "reward_manager", "reward.reward_manager.name", lambda: resolve_reward_manager_cls(cfg))
    if cls is None or not (isinstance(cls, type) and issubclass(cls, DAPORewardManager)):
        return [f for f in findings if "Unknown reward manager" not in f.message]  # registry_findings names it
    _step(findings, "reward_manager", "reward.reward_kwargs",
          lambda: cls(config=copy.deepcopy(cfg), tokenizer=tokenizer, compute_score=None),
          fix="give reward.reward_kwargs.overlong_buffer_cfg all of enable, len, penalty_factor and log, and "
              "reward.reward_kwargs.max_resp_len >= its len (the recipes' reward block has them: +recipe=...)")
    return findings


def _step(findings: list[Finding], name: str, key: str, fn, fix: str = "see the key named in verl's message") -> Any:
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except Exception as exc:  # noqa: BLE001 - any verl failure is a finding
        cause = exc.__cause__ or exc
        lines = str(cause).strip().splitlines()
        text = lines[0] if lines else type(cause).__name__
        full_key = next((ln.strip() for ln in lines[1:] if ln.strip().startswith("full_key:")), "")
        if full_key:  # OmegaConf's errors put the key on a line of its own
            text += f" ({full_key})"
        findings.append(Finding("error", f"verl.{name}", key, f"verl 0.9.1 rejects the config: "
                                f"{type(cause).__name__}: {text}", fix))
        return None


def verl_findings(cfg: DictConfig, *, build_model: bool = True) -> tuple[list[Finding], Any]:
    """Run verl's start-up validation on ``cfg``.

    Args:
        cfg: the composed config (:func:`qwenlong_verl.hydra.compose.compose_main_ppo`).
        build_model: also build ``HFModelConfig`` (needs ``actor_rollout_ref.model.path`` to be a local folder with
            ``config.json`` and a tokenizer).

    Returns:
        (findings, the ``HFModelConfig`` or None).
    """
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    findings: list[Finding] = []
    cfg = copy.deepcopy(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        use_ref, use_critic = bool(need_reference_policy(cfg)), bool(need_critic(cfg))
    _step(findings, "validate_config", "(verl) validate_config",
          lambda: validate_config(cfg, use_reference_policy=use_ref, use_critic=use_critic))
    _step(findings, "ActorConfig", "actor_rollout_ref.actor",
          lambda: omega_conf_to_dataclass(cfg.actor_rollout_ref.actor))
    if use_ref:
        def ref_config():
            # what verl's ActorRolloutRefWorker.init_model does to the ref section before building it
            ref = copy.deepcopy(cfg.actor_rollout_ref.ref)
            with open_dict(ref):
                ref.ppo_mini_batch_size = cfg.actor_rollout_ref.actor.ppo_mini_batch_size
                ref.ppo_micro_batch_size = ref.pop("log_prob_micro_batch_size", None)
                ref.ppo_micro_batch_size_per_gpu = ref.pop("log_prob_micro_batch_size_per_gpu", None)
                ref.use_dynamic_bsz = ref.pop("log_prob_use_dynamic_bsz", False)
                ref.ppo_max_token_len_per_gpu = ref.pop("log_prob_max_token_len_per_gpu", None)
            return omega_conf_to_dataclass(ref)

        _step(findings, "RefConfig", "actor_rollout_ref.ref", ref_config)
    _step(findings, "RolloutConfig", "actor_rollout_ref.rollout",
          lambda: omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout))
    if use_critic:
        _step(findings, "CriticConfig", "critic", lambda: omega_conf_to_dataclass(cfg.critic))
    findings += registry_findings(cfg)
    model = None
    if build_model:
        model = _step(findings, "HFModelConfig", "actor_rollout_ref.model",
                      lambda: omega_conf_to_dataclass(cfg.actor_rollout_ref.model))
        if model is not None:
            from verl.workers.rollout.utils import get_max_position_embeddings

            positions = _step(findings, "get_max_position_embeddings", "actor_rollout_ref.model.path",
                              lambda: get_max_position_embeddings(model.hf_config))
            max_len = OmegaConf.select(cfg, "actor_rollout_ref.rollout.max_model_len", default=None)
            if positions is not None and max_len is not None and int(max_len) > positions:
                # the rollout server's own rule (vLLMHttpServer._validate_configs), on verl's own model config
                findings.append(Finding(
                    "error", "verl.rollout_server", "actor_rollout_ref.rollout.max_model_len",
                    f"verl's rollout server refuses max_model_len {max_len} > max_position_embeddings {positions} "
                    "of the model config verl builds", "YaRN in the model folder: `qwenlong-verl yarn-model`"))
            findings += reward_manager_findings(cfg, getattr(model, "tokenizer", None))
    return findings, model
