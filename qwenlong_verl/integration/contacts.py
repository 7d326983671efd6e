"""Every place this package relies on verl 0.9.1 (or TransferQueue, torch, OmegaConf) beyond a documented API: one
table, one check per row. ``qwenlong-verl doctor`` runs the checks, so a verl upgrade that renames a method or drops a
registry fails there, naming the contact, instead of in the middle of a run.

A row names the object by ``module:attribute.path``, what we need from it (it exists; it is callable with these
parameters; its source assigns these attributes, or contains the text of a rule we restate) and which of our files
depends on it. :func:`check_contact` resolves it against the installed packages; ``tests/test_verl_contacts.py``
points a row at a stand-in to see a broken contact named.

The verl-free checks in :mod:`qwenlong_verl.preflight` restate rules that verl enforces only on its GPU workers (SP
against the heads, token budgets against the longest sample, ``max_model_len`` against the positions). Their rows
carry ``source_has``: the expression of verl's rule, so a verl upgrade that changes the rule fails ``doctor`` instead of
leaving preflight checking the old one. A row on a module that cannot be imported on a CPU machine (vLLM's server)
is ``static``: its source is read from the installed file without importing it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field
from pathlib import Path
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
        source_has: text its source must contain (compared with runs of whitespace collapsed): the expression of a
            verl rule that ``user`` restates, so the row fails when verl changes the rule.
        static: read the definition from the module's installed file instead of importing it (the module imports
            something only a GPU machine has, e.g. vLLM); only functions and classes, checked for ``params``,
            ``assigns`` and ``source_has``.
    """

    target: str
    user: str
    why: str
    params: tuple[str, ...] = ()
    assigns: tuple[str, ...] = ()
    kind: str = "callable"
    private: bool = field(default=False)
    source_has: tuple[str, ...] = ()
    static: bool = False


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
    # -- verl rules that preflight restates without verl (source_has: the rule's own expression in verl's code)
    _c("verl.models.transformers.monkey_patch:apply_monkey_patch", "preflight.checks",
       "check_sequence_parallel (and ModelFacts.valid_sp_sizes) restate its asserts on SP vs attention/KV heads",
       params=("model", "ulysses_sp_size", "use_remove_padding"),
       source_has=("num_attention_heads % ulysses_sp_size == 0",
                   "num_key_value_heads % ulysses_sp_size == 0 or ulysses_sp_size % num_key_value_heads == 0")),
    _c("verl.utils.seqlen_balancing:rearrange_micro_batches", "preflight.checks",
       "check_token_budgets restates its assert: the token budget of a micro-batch holds the longest sequence",
       params=("batch", "max_token_len"), source_has=("assert max_token_len >= max_seq_len",)),
    _c("verl.workers.engine.utils:prepare_micro_batches", "preflight.checks",
       "check_token_budgets: the budget verl packs by is the per-GPU budget x SP",
       source_has=("max_token_len = max_token_len_per_gpu * sp_size", "rearrange_micro_batches(")),
    _c("verl.workers.rollout.vllm_rollout.vllm_async_server:vLLMHttpServer._validate_configs", "preflight.checks",
       "check_context (and config_validation, on verl's model config) restate its max_model_len <= "
       "max_position_embeddings (read from the file: the module imports vLLM)", static=True,
       source_has=("max_position_embeddings = get_max_position_embeddings(self.model_config.hf_config)",
                   "if self.config.max_model_len > max_position_embeddings:")),
    _c("verl.workers.rollout.vllm_rollout.vllm_async_server:vLLMHttpServer.__init__", "preflight.checks",
       "the vLLM server runs _validate_configs when it starts (read from the file: the module imports vLLM)",
       static=True, source_has=("self._validate_configs()",)),
    _c("verl.trainer.ppo.utils:need_reference_policy", "preflight.checks",
       "uses_reference restates it: a reference model only for a KL term",
       source_has=('config.algorithm.get("use_kl_in_reward", False) or config.actor_rollout_ref.actor.use_kl_loss',)),
    _c("verl.workers.engine.fsdp.transformer_impl:FSDPEngine.__init__", "preflight.checks",
       "check_sequence_parallel restates it: SP > 1 needs use_remove_padding",
       source_has=("self.engine_config.ulysses_sequence_parallel_size > 1 and not self.use_remove_padding",)),
    _c("verl.workers.config.model:HFModelConfig.__post_init__", "preflight.checks",
       "attn_implementation restates its default: flash_attention_2 unless override_config names another",
       source_has=('self.override_config.get("attn_implementation", "flash_attention_2")',)),
    _c("verl.utils.checkpoint.checkpoint_handler:CheckpointHandler._determine_resume_path", "preflight.resume_check",
       "resume_findings restates it: trainer.resume_from_path names a global_step_N folder",
       source_has=('assert "global_step_" in resume_from_path',)),
    _c("verl.utils.checkpoint.fsdp_checkpoint_manager:FSDPCheckpointManager.load_checkpoint",
       "preflight.resume_check", "resume_findings restates the shard names it loads, one set per world size",
       source_has=('f"model_world_size_{self.world_size}_rank_{self.rank}.pt"',
                   'f"optim_world_size_{self.world_size}_rank_{self.rank}.pt"',
                   'f"extra_state_world_size_{self.world_size}_rank_{self.rank}.pt"')),
)


def resolve(target: str) -> Any:
    """The object ``module:attr.attr`` names (AttributeError/ImportError when it is gone)."""
    module_name, _, attrs = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attrs.split(".") if attrs else ():
        obj = getattr(obj, part) if not isinstance(obj, dict) else obj[part]
    return obj


def _squash(text: str) -> str:
    return " ".join(text.split())


def static_definition(target: str) -> tuple[str, tuple[str, ...] | None]:
    """The source text of the function or class ``module:Name.name`` and its parameter names (None for a class, or
    when it takes ``**kwargs``), read from the installed file without importing the module.

    Raises:
        LookupError: the package, the module's file or the definition is gone (the message names which).
    """
    module_name, _, attrs = target.partition(":")
    top, _, rest = module_name.partition(".")
    spec = importlib.util.find_spec(top)  # finds a top-level package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {top!r} is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    base = root.joinpath(*rest.split(".")) if rest else root
    path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    if not path.is_file():
        raise LookupError(f"module {module_name} has no file (looked for {path})")
    text = path.read_text(encoding="utf-8")
    node: ast.AST = ast.parse(text)
    for name in attrs.split("."):
        node = next((n for n in getattr(node, "body", []) if isinstance(
            n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.name == name), None)
        if node is None:
            raise LookupError(f"{path} defines no {name!r}")
    params = None
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.args.kwarg is None:
        params = tuple(a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs)
    return ast.get_source_segment(text, node) or "", params


def _source_problems(contact: Contact, source: str) -> str | None:
    missing = [a for a in contact.assigns if f"self.{a}" not in source]
    if missing:
        return f"{contact.target} no longer assigns self.{', self.'.join(missing)}, which {contact.user} reads"
    gone = [t for t in contact.source_has if _squash(t) not in _squash(source)]
    if gone:
        return (f"{contact.target} no longer contains {' / '.join(repr(t) for t in gone)}: verl changed a rule "
                f"that {contact.user} restates ({contact.why}); compare the two and update {contact.user} and this "
                "row in qwenlong_verl/integration/contacts.py")
    return None


def check_contact(contact: Contact, resolver=resolve) -> str | None:
    """Why ``contact`` is broken in the installed packages, or None when it holds."""
    if contact.static:
        try:
            source, names = static_definition(contact.target)
        except (LookupError, SyntaxError, OSError) as exc:
            return f"{contact.target} is gone ({type(exc).__name__}: {exc})"
        missing = [p for p in contact.params if names is not None and p not in names]
        if missing:
            return f"{contact.target} has no parameter(s) {', '.join(missing)} that {contact.user} passes"
        return _source_problems(contact, source)
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
    if contact.assigns or contact.source_has:
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError):
            source = ""
        if not source and contact.source_has:
            return f"{contact.target}: its source cannot be read, so the rule {contact.user} restates is unchecked"
        if source:
            return _source_problems(contact, source)
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
