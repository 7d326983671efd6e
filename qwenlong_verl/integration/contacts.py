"""Every place this package relies on verl 0.9.1 (or TransferQueue, torch, OmegaConf) beyond a documented API: one
table, one check per row. ``qwenlong-verl doctor`` runs the checks, so a verl upgrade that renames a method or drops a
registry fails there, naming the contact, instead of in the middle of a run.

A row names the object by ``module:attribute.path``, what we need from it (it exists; it is callable with these
parameters; its source assigns these attributes) and which of our files depends on it. :func:`check_contact` resolves
it against the installed packages; ``tests/test_verl_contacts.py`` points a row at a stand-in to see a broken contact
named.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Contact:
    """Args:
        target: ``module:attr.attr`` of the verl object.
        user: our module that depends on it.
        why: what we do with it.
        params: parameter names a callable must accept (unless it takes ``**kwargs``).
        assigns: ``self.<name>`` assignments its source must contain (attributes set in ``__init__`` that we read).
        kind: ``callable`` | ``class`` | ``dict`` | ``any``.
    """

    target: str
    user: str
    why: str
    params: tuple[str, ...] = ()
    assigns: tuple[str, ...] = ()
    kind: str = "callable"
    private: bool = field(default=False)


def _c(target: str, user: str, why: str, **kw: Any) -> Contact:
    private = any(part.startswith("_") and not part.startswith("__") for part in target.replace(":", ".").split("."))
    return Contact(target, user, why, private=private, **kw)


TRAINER = "verl.trainer.ppo.v1.trainer_sync:PPOTrainerSync"
CONTACTS: tuple[Contact, ...] = (
    # -- advantage estimator
    _c("verl.trainer.ppo.core_algos:register_adv_est", "advantage", "registers qwenlong_grpo", params=("name_or_enum",)),
    _c("verl.trainer.ppo.core_algos:compute_grpo_outcome_advantage", "advantage",
       "group-scope numbers and task-scope centring are verl's grpo",
       params=("token_level_rewards", "response_mask", "index", "epsilon", "norm_adv_by_std_in_grpo")),
    _c("omegaconf:DictConfig._get_root", "advantage", "the qwenlong block above the algorithm node verl passes"),
    # -- policy loss
    _c("verl.trainer.ppo.core_algos:register_policy_loss", "policy_loss", "registers qwenlong_dapo", params=("name",)),
    _c("verl.trainer.ppo.core_algos:compute_policy_loss_vanilla", "policy_loss", "the clipped loss qwenlong_dapo masks",
       params=("old_log_prob", "log_prob", "advantages", "response_mask", "loss_agg_mode", "config",
               "rollout_is_weights")),
    _c("verl.workers.config:PolicyLossConfig", "policy_loss", "QwenLongPolicyLossConfig subclasses it", kind="class"),
    _c("verl.utils.torch_functional:masked_mean", "policy_loss", "AEPO entropy and row advantages",
       params=("values", "mask")),
    # -- reward manager
    _c("verl.experimental.reward_loop.reward_manager:register", "reward_manager", "registers the qwenlong manager",
       params=("name",)),
    _c("verl.experimental.reward_loop.reward_manager.dapo:DAPORewardManager.__init__", "reward_manager",
       "subclassed; reads the overlong settings it stores",
       params=("config", "tokenizer", "compute_score", "reward_router_address", "reward_model_tokenizer"),
       assigns=("overlong_buffer_cfg", "max_resp_len")),
    _c("verl.experimental.reward_loop.reward_manager.dapo:DAPORewardManager.run_single", "reward_manager",
       "overridden (async, one DataProto item)", params=("data",)),
    _c("verl:DataProto", "reward_manager", "the reward input", kind="class"),
    # -- trainer mode
    _c("verl.trainer.ppo.v1.trainer_base:register_trainer", "trainer_mode", "registers trainer_mode=qwenlong",
       params=("name",)),
    _c("verl.trainer.ppo.v1.trainer_base:TRAINER_REGISTRY", "doctor", "checks the trainer mode is registered",
       kind="dict"),
    _c(f"{TRAINER}.__init__", "trainer_mode", "assigns trainer_mode, which a property keeps at 'sync'",
       assigns=("trainer_mode",)),
    _c(f"{TRAINER}._init_dataloader", "trainer_mode", "overridden: the phased sampler in the dataloader",
       assigns=("train_dataloader",)),
    _c(f"{TRAINER}._add_prompts_to_generate", "trainer_mode", "overridden: bounds DAPO refills",
       params=("num_prompts",)),
    _c(f"{TRAINER}._step_once", "trainer_mode", "overridden: phase, telemetry and difficulty metrics",
       params=("metrics", "timing_raw", "sample_batch_size")),
    _c(f"{TRAINER}._save_checkpoint", "trainer_mode", "overridden: the difficulty table beside verl's checkpoint"),
    _c(f"{TRAINER}._load_checkpoint", "trainer_mode", "overridden: restores the difficulty table"),
    _c(f"{TRAINER}._compute_advantage", "trainer_hooks", "overridden: task labels for std_scope=task",
       params=("batch", "metrics")),
    _c(f"{TRAINER}.on_step_begin", "trainer_mode", "phase switch at a step boundary"),
    _c(f"{TRAINER}.on_validate_begin", "trainer_mode", "keeps validation records out of training metrics"),
    _c(f"{TRAINER}.on_validate_end", "trainer_mode", "drops validation records"),
    _c(f"{TRAINER}.fit", "trainer_mode", "wrapped", params=("agent_loop_manager",)),
    _c("verl.utils.dataset.rl_dataset:collate_fn", "trainer_mode", "the dataloader's collate function"),
    _c("transfer_queue:kv_batch_get", "batch_fields", "reads uid/index/data_source/extra_fields/rm_scores of a batch",
       params=("keys", "partition_id", "select_fields")),
    # -- CPU backend
    _c("verl.plugin.platform.platform_base:PlatformBase", "cpu_platform", "the cpu platform subclasses it",
       kind="class"),
    _c("verl.plugin.platform.platform_manager:PlatformRegistry.register", "cpu_platform", "registers platform cpu",
       params=("platform",)),
    _c("verl.plugin.platform.platform_manager:_current_platform", "cpu_platform",
       "replaced when verl resolved another platform before the overlay was read", kind="any"),
    _c("verl.workers.engine.base:EngineRegistry._engines", "cpu_platform", "FSDP engines for device cpu",
       kind="dict"),
    _c("verl.workers.engine.base:EngineRegistry.register", "cpu_platform", "FSDP engines for device cpu",
       params=("model_type", "backend", "device")),
    _c("verl.workers.engine.fsdp.transformer_impl:FSDPEngineWithLMHead", "cpu_platform", "registered for cpu",
       kind="class"),
    _c("torch.distributed:init_process_group", "cpu_platform", "wrapped: verl names the cpu backend twice"),
    _c("verl.workers.rollout.base:_ROLLOUT_REGISTRY", "cpu_rollout", "the hf rollout adapter's import path",
       kind="dict"),
    _c("verl.workers.rollout.base:BaseRollout.__init__", "cpu_rollout", "subclassed",
       params=("config", "model_config", "device_mesh")),
    _c("verl.workers.rollout.replica:RolloutReplica", "cpu_rollout", "the hf replica subclasses it", kind="class"),
    _c("verl.workers.rollout.replica:RolloutReplicaRegistry.register", "cpu_rollout", "registers rollout hf"),
    _c("verl.workers.rollout.replica:TokenOutput", "cpu_rollout", "the generate() result", kind="class"),
    # -- preflight
    _c("verl.utils.config:validate_config", "config_validation", "verl's own start-up validation",
       params=("config", "use_reference_policy", "use_critic")),
    _c("verl.utils.config:omega_conf_to_dataclass", "config_validation", "actor/ref/rollout/critic/model configs",
       params=("config", "dataclass_type")),
    _c("verl.trainer.ppo.utils:need_reference_policy", "config_validation", "which configs verl builds"),
    _c("verl.trainer.ppo.utils:need_critic", "config_validation", "which configs verl builds"),
    _c("verl.workers.rollout.utils:get_max_position_embeddings", "config_validation",
       "the rollout server's max_model_len rule", params=("hf_config",)),
    _c("verl.trainer.ppo.core_algos:ADV_ESTIMATOR_REGISTRY", "config_validation",
       "algorithm.adv_estimator checked against the registered names", kind="dict"),
    _c("verl.trainer.ppo.core_algos:POLICY_LOSS_REGISTRY", "config_validation",
       "policy_loss.loss_mode checked against the registered names", kind="dict"),
    _c("verl.experimental.reward_loop.reward_manager.registry:REWARD_MANAGER", "config_validation",
       "reward.reward_manager.name checked against the registered names", kind="dict"),
    _c("verl.trainer.ppo.reward:resolve_reward_manager_cls", "config_validation",
       "the reward manager class main_ppo builds, whose __init__ preflight runs", params=("config",)),
)


def resolve(target: str) -> Any:
    """The object ``module:attr.attr`` names (AttributeError/ImportError when it is gone)."""
    module_name, _, attrs = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attrs.split(".") if attrs else ():
        obj = getattr(obj, part) if not isinstance(obj, dict) else obj[part]
    return obj


def check_contact(contact: Contact, resolver=resolve) -> str | None:
    """Why ``contact`` is broken in the installed packages, or None when it holds."""
    try:
        obj = resolver(contact.target)
    except (ImportError, AttributeError, KeyError) as exc:
        return f"{contact.target} is gone ({type(exc).__name__}: {exc})"
    if contact.kind == "dict" and not isinstance(obj, dict):
        return f"{contact.target} is a {type(obj).__name__}, not the dict registry {contact.user} writes"
    if contact.kind == "class" and not inspect.isclass(obj):
        return f"{contact.target} is not a class"
    if contact.kind == "callable" and not callable(obj):
        return f"{contact.target} is not callable"
    if contact.params:
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            sig = None
        if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            missing = [p for p in contact.params if p not in sig.parameters]
            if missing:
                return f"{contact.target}{sig} has no parameter(s) {', '.join(missing)} that {contact.user} passes"
    if contact.assigns:
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError):
            source = ""
        missing = [a for a in contact.assigns if f"self.{a}" not in source]
        if source and missing:
            return f"{contact.target} no longer assigns self.{', self.'.join(missing)}, which {contact.user} reads"
    return None


def check_all(contacts: tuple[Contact, ...] | None = None, resolver=resolve) -> list[tuple[Contact, str | None]]:
    """``(contact, problem or None)`` for every row of :data:`CONTACTS` (or of ``contacts``)."""
    return [(c, check_contact(c, resolver)) for c in (CONTACTS if contacts is None else contacts)]


def import_verl() -> str:
    """``import verl`` (which loads every ``verl.plugins`` entry point, ours included); verl's version."""
    import verl

    return str(verl.__version__)


def registry_has(kind: str, name: str) -> bool:
    """Whether verl's registry of ``kind`` holds ``name`` (the plugin table's kinds)."""
    if kind == "platform":
        return resolve("verl.plugin.platform.platform_manager:PlatformRegistry").get(name) is not None
    if kind == "rollout":
        try:
            resolve("verl.workers.rollout.replica:RolloutReplicaRegistry").get(name)
        except Exception:  # noqa: BLE001
            return False
        return (name, "async") in resolve("verl.workers.rollout.base:_ROLLOUT_REGISTRY")
    if kind == "reward_manager":
        try:
            resolve("verl.experimental.reward_loop.reward_manager.registry:get_reward_manager_cls")(name)
        except Exception:  # noqa: BLE001
            return False
        return True
    if kind == "adv_estimator":
        return name in resolve("verl.trainer.ppo.core_algos:ADV_ESTIMATOR_REGISTRY")
    if kind == "policy_loss":
        return name in resolve("verl.trainer.ppo.core_algos:POLICY_LOSS_REGISTRY")
    if kind == "trainer_mode":
        return name in resolve("verl.trainer.ppo.v1.trainer_base:TRAINER_REGISTRY")
    raise ValueError(f"unknown plugin kind {kind!r}")


REGISTRIES: dict[str, str] = {
    "adv_estimator": "verl.trainer.ppo.core_algos:ADV_ESTIMATOR_REGISTRY",
    "policy_loss": "verl.trainer.ppo.core_algos:POLICY_LOSS_REGISTRY",
    "reward_manager": "verl.experimental.reward_loop.reward_manager.registry:REWARD_MANAGER",
    "trainer_mode": "verl.trainer.ppo.v1.trainer_base:TRAINER_REGISTRY",
    "rollout": "verl.workers.rollout.base:_ROLLOUT_REGISTRY",
}


def registry_names(kind: str) -> list[str]:
    """The names verl's registry of ``kind`` holds now (after ``import verl`` loaded the plugins), sorted: what a
    config value may be. The rollout registry is keyed by ``(name, mode)``; its names are returned."""
    registry = resolve(REGISTRIES[kind])
    return sorted({k[0] if isinstance(k, tuple) else str(k) for k in registry})
