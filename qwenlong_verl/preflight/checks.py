"""The GPU-layout checks that verl 0.9.1 makes only on the GPU workers, minutes into a job, made in the driver.

Every function takes the composed run config as a plain dict (``OmegaConf.to_container(cfg, resolve=True)``) and,
where it needs one, the model's :class:`ModelFacts`; it returns :class:`Finding` s and imports no verl. Which verl
code each check mirrors is named in its docstring, so a verl upgrade tells us which check to revisit.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Any

from qwenlong_verl.findings import Finding
from qwenlong_verl.preflight.model_facts import ModelFacts

GIB = 1024**3
# vLLM's non-KV, non-weight memory per GPU (activations of a chunked-prefill step, CUDA graphs, NCCL buffers):
# a round figure for the estimate, stated in its output.
VLLM_OVERHEAD_GIB = 4.0
ACTOR = "actor_rollout_ref.actor"
ROLLOUT = "actor_rollout_ref.rollout"
REF = "actor_rollout_ref.ref"
MODEL = "actor_rollout_ref.model"


def sel(cfg: dict[str, Any], key: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return default if node is None else node


def max_sequence(cfg: dict[str, Any]) -> int:
    """Longest prompt + response of the run (the unpadded length of one sample in a training micro-batch)."""
    return int(sel(cfg, "data.max_prompt_length", 0)) + int(sel(cfg, "data.max_response_length", 0))


def layout(cfg: dict[str, Any]) -> tuple[int, int]:
    return int(sel(cfg, "trainer.nnodes", 1)), int(sel(cfg, "trainer.n_gpus_per_node", 1))


def uses_reference(cfg: dict[str, Any]) -> bool:
    """verl builds a reference model only for a KL term (``verl.trainer.ppo.utils.need_reference_policy``)."""
    return bool(sel(cfg, f"{ACTOR}.use_kl_loss", False) or sel(cfg, "algorithm.use_kl_in_reward", False))


def attn_implementation(cfg: dict[str, Any]) -> str:
    """verl's ``HFModelConfig`` builds the model with ``override_config.attn_implementation``, default
    ``flash_attention_2``."""
    return str(sel(cfg, f"{MODEL}.override_config.attn_implementation", "flash_attention_2"))


def suggest_sp(facts: ModelFacts, cfg: dict[str, Any]) -> str:
    """The fix for a bad SP/budget pair: the largest valid SP within a node and the per-GPU budget it needs."""
    _, gpus = layout(cfg)
    need = max_sequence(cfg)
    budget = int(sel(cfg, f"{ACTOR}.ppo_max_token_len_per_gpu", 0))
    options = [sp for sp in facts.valid_sp_sizes(gpus) if gpus % sp == 0]
    sp = max(options) if options else 1
    per_gpu = max(budget, math.ceil(need / sp / 500) * 500)
    text = (f"{ACTOR}.ulysses_sequence_parallel_size={sp} {ACTOR}.ppo_max_token_len_per_gpu={per_gpu} "
            f"(SP sizes this model allows within a {gpus}-GPU node: {options})")
    if facts.num_heads == 28 and facts.num_kv_heads == 4:
        text += "; or the overlay +qwenlong_model=qwen_7b"
    return text


# ------------------------------------------------------------------------------------------------ the checks
def check_sequence_parallel(cfg: dict[str, Any], facts: ModelFacts) -> list[Finding]:
    """Ulysses SP against the model's heads and the GPU count.

    Mirrors ``verl.models.transformers.monkey_patch`` (``heads % sp == 0`` and ``kv % sp == 0 or sp % kv == 0``,
    asserted when each GPU worker patches the model), the FSDP engine's device mesh (``world % sp == 0``) and its
    requirement of ``use_remove_padding`` and flash-attention for SP > 1."""
    out: list[Finding] = []
    nnodes, gpus = layout(cfg)
    world = nnodes * gpus
    for section in (ACTOR, REF) if uses_reference(cfg) else (ACTOR,):
        key = f"{section}.ulysses_sequence_parallel_size"
        sp = int(sel(cfg, key, 1))
        if sp <= 1:
            continue
        if facts.num_heads % sp or not (facts.num_kv_heads % sp == 0 or sp % facts.num_kv_heads == 0):
            out.append(Finding("error", "sequence_parallel", key,
                               f"SP {sp} does not divide the model's {facts.num_heads} attention heads / "
                               f"{facts.num_kv_heads} KV heads ({facts.path}); verl asserts this on every GPU worker "
                               "when it patches the model", suggest_sp(facts, cfg)))
        if world % sp:
            out.append(Finding("error", "sequence_parallel", key,
                               f"SP {sp} does not divide the {world} GPUs (trainer.nnodes={nnodes} x "
                               f"trainer.n_gpus_per_node={gpus})", suggest_sp(facts, cfg)))
        elif sp > gpus:
            out.append(Finding("warning", "sequence_parallel", key,
                               f"SP {sp} spans nodes ({gpus} GPUs per node): its all-to-all then crosses the network",
                               f"SP <= {gpus}"))
        if not sel(cfg, f"{MODEL}.use_remove_padding", False):
            out.append(Finding("error", "sequence_parallel", f"{MODEL}.use_remove_padding",
                               f"SP {sp} needs use_remove_padding (verl's FSDP engine refuses SP without it)",
                               f"{MODEL}.use_remove_padding=true"))
        if attn_implementation(cfg) != "flash_attention_2":
            out.append(Finding("error", "sequence_parallel", f"{MODEL}.override_config.attn_implementation",
                               f"SP {sp} with attn_implementation={attn_implementation(cfg)}: verl's Ulysses patch "
                               "covers only flash_attention_2", "leave attn_implementation at flash_attention_2"))
    return out


def check_token_budgets(cfg: dict[str, Any]) -> list[Finding]:
    """Per-GPU token budgets x SP must hold the longest sample, for each pass that packs by tokens.

    Mirrors ``verl.workers.engine.utils.prepare_micro_batches`` -> ``rearrange_micro_batches`` (asserts
    ``max_token_len_per_gpu * sp >= longest sequence``): the actor update (``actor.ppo_max_token_len_per_gpu``), the
    old-log-prob pass (``rollout.log_prob_max_token_len_per_gpu``) and, with a KL term, the reference pass
    (``ref.log_prob_max_token_len_per_gpu``)."""
    if not sel(cfg, f"{ACTOR}.use_dynamic_bsz", False):
        return []
    need = max_sequence(cfg)
    actor_sp = int(sel(cfg, f"{ACTOR}.ulysses_sequence_parallel_size", 1))
    passes = [(f"{ACTOR}.ppo_max_token_len_per_gpu", actor_sp, "actor update"),
              (f"{ROLLOUT}.log_prob_max_token_len_per_gpu", actor_sp, "old log-prob pass")]
    if uses_reference(cfg):
        passes.append((f"{REF}.log_prob_max_token_len_per_gpu",
                       int(sel(cfg, f"{REF}.ulysses_sequence_parallel_size", actor_sp)), "reference pass"))
    out = []
    for key, sp, what in passes:
        budget = sel(cfg, key)
        if budget is None:
            continue
        if int(budget) * sp < need:
            out.append(Finding("error", "token_budget", key,
                               f"{budget} tokens per GPU x SP {sp} = {int(budget) * sp} < prompt + response = {need} "
                               f"(data.max_prompt_length + data.max_response_length): the {what} cannot hold one "
                               "sample and verl asserts in its first step",
                               f"{key}={math.ceil(need / sp / 500) * 500} (>= {need}/{sp}) or a larger SP"))
    return out


def check_context_window(cfg: dict[str, Any]) -> list[Finding]:
    """Prompt + response must fit the rollout's context window when one is set (else vLLM cuts every long
    response short, or refuses the prompt)."""
    need = max_sequence(cfg)
    max_len = sel(cfg, f"{ROLLOUT}.max_model_len")
    if max_len is not None and need > int(max_len):
        return [Finding("error", "context", f"{ROLLOUT}.max_model_len",
                        f"{max_len} < data.max_prompt_length + data.max_response_length = {need}",
                        f"{ROLLOUT}.max_model_len={need} (past 32K with YaRN: +qwenlong_rope=yarn), or lower the "
                        "lengths")]
    return []


def check_context(cfg: dict[str, Any], facts: ModelFacts) -> list[Finding]:
    """Rollout context against the model's positions and rope scaling.

    Mirrors ``vLLMHttpServer._validate_configs`` (``rollout.max_model_len <= config.max_position_embeddings``, read
    from the model folder's ``config.json``)."""
    out: list[Finding] = []
    need = max_sequence(cfg)
    max_len = sel(cfg, f"{ROLLOUT}.max_model_len")
    rope = sel(cfg, "qwenlong.rope") or {}
    length = int(max_len) if max_len is not None else need
    if rope.get("type") == "yarn":
        from qwenlong_verl.rope_scaling import YarnSettings

        yarn = YarnSettings(**{k: rope[k] for k in ("factor", "original_max_position_embeddings") if k in rope})
        if not yarn.declared_by(facts.rope_scaling, facts.max_position_embeddings):
            out.append(Finding(
                "error", "rope", f"{MODEL}.path",
                f"+qwenlong_rope=yarn asks for YaRN (factor {yarn.factor}, original "
                f"{yarn.original_max_position_embeddings}) but {facts.path}/config.json declares rope "
                f"{facts.rope_type!r} with max_position_embeddings {facts.max_position_embeddings}; verl's actor and "
                "vLLM rollout both read the model's config.json, so YaRN must be written there",
                f"`qwenlong-verl yarn-model {facts.path} --out {facts.path.rstrip('/')}-yarn` and "
                f"{MODEL}.path={facts.path.rstrip('/')}-yarn"))
            return out
    if length > facts.max_position_embeddings:
        out.append(Finding(
            "error", "context", f"{ROLLOUT}.max_model_len",
            f"{length} > the model's max_position_embeddings {facts.max_position_embeddings} ({facts.path}/config.json, "
            f"rope {facts.rope_type!r}); verl's vLLM server refuses to start",
            f"YaRN: add +qwenlong_rope=yarn and run `qwenlong-verl yarn-model {facts.path} --out "
            f"{facts.path.rstrip('/')}-yarn` (use that folder as {MODEL}.path); or lower data.max_prompt_length"))
    elif length > 32768 and facts.rope_type == "default" and facts.max_position_embeddings > 32768:
        out.append(Finding("info", "context", f"{MODEL}.path",
                           f"{length} tokens without rope scaling: the model's config allows "
                           f"{facts.max_position_embeddings} positions; QwenLong-L1 uses YaRN past 32K "
                           "(+qwenlong_rope=yarn)"))
    return out


def check_rope_agreement(cfg: dict[str, Any]) -> list[Finding]:
    """Rope settings must reach the actor and the rollout alike.

    verl 0.9.1 applies ``model.override_config`` only in ``HFModelConfig`` (actor, ref) and never forwards it to vLLM;
    under transformers 5 a dict-valued override such as ``rope_scaling`` also crashes ``update_model_config``."""
    override = sel(cfg, f"{MODEL}.override_config", {}) or {}
    inner = override.get("model_config", override) if isinstance(override, dict) else {}
    out = []
    for key in ("rope_scaling", "rope_parameters", "max_position_embeddings", "rope_theta"):
        if key in inner:
            out.append(Finding("error", "rope", f"{MODEL}.override_config.{key}",
                               "verl 0.9.1 applies override_config to the FSDP actor only (vLLM never receives it, "
                               "so actor and rollout log-probs disagree), and under transformers 5 a dict override "
                               "crashes HFModelConfig", "remove it; write rope settings into the model's config.json "
                               "with `qwenlong-verl yarn-model` (what +qwenlong_rope=yarn expects)"))
    return out


def check_rollout_parallel(cfg: dict[str, Any], facts: ModelFacts) -> list[Finding]:
    """vLLM tensor parallelism: heads split evenly, TP within a node, the GPUs split into whole replicas."""
    if sel(cfg, f"{ROLLOUT}.name") not in ("vllm", "sglang"):
        return []
    key = f"{ROLLOUT}.tensor_model_parallel_size"
    tp = int(sel(cfg, key, 1))
    nnodes, gpus = layout(cfg)
    out = []
    if tp not in facts.valid_tp_sizes(max(tp, 1)):
        out.append(Finding("error", "rollout_parallel", key,
                           f"TP {tp} does not split the model's {facts.num_heads} heads / {facts.num_kv_heads} KV "
                           "heads evenly", f"one of {[t for t in facts.valid_tp_sizes(gpus) if gpus % t == 0]}"))
    if tp > gpus or (nnodes * gpus) % tp:
        out.append(Finding("error", "rollout_parallel", key,
                           f"TP {tp} must divide the GPUs of one node ({gpus}) and of the job ({nnodes * gpus})",
                           f"one of {[t for t in facts.valid_tp_sizes(gpus) if gpus % t == 0]}"))
    return out


def check_batch_split(cfg: dict[str, Any]) -> list[Finding]:
    """The actor's mini-batch of ``ppo_mini_batch_size * rollout.n`` samples is split over the data-parallel ranks
    (``world / SP``); verl's ``TrainingWorker`` asserts divisibility."""
    nnodes, gpus = layout(cfg)
    sp = int(sel(cfg, f"{ACTOR}.ulysses_sequence_parallel_size", 1))
    if (nnodes * gpus) % sp:
        return []  # reported by check_sequence_parallel
    dp = nnodes * gpus // sp
    mini = int(sel(cfg, f"{ACTOR}.ppo_mini_batch_size", 1)) * int(sel(cfg, f"{ROLLOUT}.n", 1))
    batch = int(sel(cfg, "data.train_batch_size", 1))
    out = []
    if mini % dp:
        out.append(Finding("error", "batch_split", f"{ACTOR}.ppo_mini_batch_size",
                           f"ppo_mini_batch_size x rollout.n = {mini} samples do not split over {dp} data-parallel "
                           f"ranks ({nnodes * gpus} GPUs / SP {sp})", f"a multiple of {dp // math.gcd(dp, mini)}"))
    if batch < int(sel(cfg, f"{ACTOR}.ppo_mini_batch_size", 1)):
        out.append(Finding("error", "batch_split", "data.train_batch_size",
                           f"{batch} < {ACTOR}.ppo_mini_batch_size", "train_batch_size >= ppo_mini_batch_size"))
    return out


def estimate_vllm_memory(cfg: dict[str, Any], facts: ModelFacts, gpu_memory_gib: float) -> list[Finding]:
    """KV cache of vLLM per GPU, estimated from the model's sizes.

    ``free = utilisation * GPU memory - weights / TP - overhead``; ``capacity = free / kv_bytes_per_token(TP)``.
    vLLM refuses to start when capacity < ``max_model_len``; a prompt group (one prompt shared through prefix
    caching + ``n`` responses) that does not fit is preempted and recomputed, which is slow but runs."""
    if sel(cfg, f"{ROLLOUT}.name") != "vllm":
        return []
    tp = int(sel(cfg, f"{ROLLOUT}.tensor_model_parallel_size", 1))
    util = float(sel(cfg, f"{ROLLOUT}.gpu_memory_utilization", 0.5))
    weights = facts.weight_bytes_per_gpu(tp)
    free = util * gpu_memory_gib * GIB - weights - VLLM_OVERHEAD_GIB * GIB
    per_token = facts.kv_bytes_per_token(tp)
    capacity = int(max(free, 0) // per_token)
    prompt, response = int(sel(cfg, "data.max_prompt_length", 0)), int(sel(cfg, "data.max_response_length", 0))
    n = int(sel(cfg, f"{ROLLOUT}.n", 1))
    group = prompt + n * response
    max_len = int(sel(cfg, f"{ROLLOUT}.max_model_len", prompt + response) or prompt + response)
    numbers = (f"{facts.num_parameters() / 1e9:.1f}B params: weights {weights / GIB:.1f} GiB per GPU at TP {tp}; "
               f"{util} x {gpu_memory_gib:g} GiB - weights - {VLLM_OVERHEAD_GIB:g} GiB overhead = "
               f"{free / GIB:.1f} GiB for KV at {per_token // 1024} KiB/token = {capacity:,} tokens; one sequence "
               f"{max_len:,}, one prompt group (prefix-cached prompt + {n} x {response:,}) {group:,}")
    key = f"{ROLLOUT}.gpu_memory_utilization"
    fix = (f"raise {key} (with param/optimizer offload the actor leaves the GPU during rollout) or "
           f"{ROLLOUT}.tensor_model_parallel_size")
    if capacity < max_len:
        return [Finding("error", "vllm_memory", key, f"KV cache too small for one sequence: {numbers}", fix)]
    if capacity < group:
        return [Finding("warning", "vllm_memory", key,
                        f"KV cache holds less than one prompt group (requests will be preempted): {numbers}", fix)]
    return [Finding("info", "vllm_memory", key, f"estimate: {numbers}")]


def check_gpu_environment(cfg: dict[str, Any], strict: bool) -> list[Finding]:
    """Packages the GPU workers import: flash-attn (verl's default ``attn_implementation``) and the rollout engine.

    Errors when this machine has CUDA GPUs (it is a training node) or ``strict``; warnings on a login/CPU machine."""
    if sel(cfg, "qwenlong.backend") == "cpu":
        return []
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        has_cuda = False
    level = "error" if strict or has_cuda else "warning"
    where = "" if has_cuda else " on this machine (no CUDA GPU here: check the GPU nodes, or pass --strict-env)"
    out = []
    if attn_implementation(cfg) == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        out.append(Finding(level, "environment", f"{MODEL}.override_config.attn_implementation",
                           f"flash_attention_2 (verl's default) but flash-attn is not installed{where}",
                           "pip install '.[gpu]' --no-build-isolation (flash-attn 2.8.3 for torch 2.11 / CUDA 13.0)"))
    engine = sel(cfg, f"{ROLLOUT}.name")
    if engine in ("vllm", "sglang") and importlib.util.find_spec(engine) is None:
        out.append(Finding(level, "environment", f"{ROLLOUT}.name",
                           f"{engine} is not installed{where}", "pip install '.[gpu]' (vllm 0.24.0, verl's pin)"))
    if has_cuda:
        from qwenlong_verl.preflight.gpu_stack import stack_findings

        out += stack_findings()
        count = torch.cuda.device_count()
        _, gpus = layout(cfg)
        if count < gpus and not sel(cfg, "ray_kwargs.ray_init.address"):
            out.append(Finding("error", "environment", "trainer.n_gpus_per_node",
                               f"{gpus} GPUs per node requested, this node has {count}",
                               f"trainer.n_gpus_per_node={count}"))
    return out


def _local(path: Any) -> bool:
    return isinstance(path, str) and "://" not in path and not path.startswith("hdfs:")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def check_files(cfg: dict[str, Any]) -> list[Finding]:
    """Data files the run reads, with the stored prompt lengths the phase sampler selects by. (The retrospective
    phase's difficulty table is checked by ``sampling.options.validate_run_config``.)"""
    out = []
    length_key = sel(cfg, "qwenlong.curriculum.length_key", "prompt_length")
    phased = sel(cfg, "trainer.v1.trainer_mode") == "qwenlong"
    for key in ("data.train_files", "data.val_files"):
        for path in _as_list(sel(cfg, key)):
            if not _local(path) or path in ("???",):
                continue
            path = os.path.expanduser(path)  # a shell would have expanded it; Hydra and verl do not
            if not Path(path).is_file():
                out.append(Finding("error", "files", key, f"{path} does not exist",
                                   "`qwenlong-verl prepare INPUT --tokenizer MODEL --out FILE.parquet`"))
                continue
            if phased and key == "data.train_files" and path.endswith(".parquet"):
                import pyarrow.parquet as pq

                if length_key not in pq.read_schema(path).names:
                    out.append(Finding("error", "files", key,
                                       f"{path} has no {length_key!r} column; the phase sampler selects by stored "
                                       "prompt length", f"`qwenlong-verl prepare {path} --tokenizer MODEL --out "
                                                        "prepared.parquet`"))
    return out


def check_cluster_paths(cfg: dict[str, Any]) -> list[Finding]:
    """On a multi-node job verl's TaskRunner and workers run on any node, each with its own working directory, so
    every path they read or write must be absolute and on storage all nodes share."""
    nnodes, _ = layout(cfg)
    remote = bool(sel(cfg, "ray_kwargs.ray_init.address"))
    if nnodes <= 1 and not remote:
        return []
    why = f"trainer.nnodes={nnodes}" if nnodes > 1 else "an existing Ray cluster (ray_kwargs.ray_init.address)"
    keys = ["trainer.default_local_dir", "qwenlong.difficulty.output_file", "qwenlong.retrospective.difficulty_file",
            "data.train_files", "data.val_files", f"{MODEL}.path"]
    out = []
    for key in keys:
        for path in _as_list(sel(cfg, key)):
            if not _local(path) or os.path.isabs(path) or path == "???":
                continue
            if key == f"{MODEL}.path" and not Path(path).exists():
                continue  # a hub name: every node downloads it
            out.append(Finding("error", "cluster_paths", key,
                               f"relative path {path!r} with {why}: the TaskRunner and workers resolve it against "
                               "their own working directory on whichever node they run",
                               f"{key}={Path(os.path.expanduser(path)).resolve()} (on storage every node mounts)"))
    return out


def check_phase_bands(cfg: dict[str, Any]) -> list[Finding]:
    """Every phase this run trains has rows in its band of the training file, and phase II's retrospective pool is
    not empty when enabled. Without them the phased sampler has nothing to draw and verl fails at its first batch,
    after Ray, the model and the rollout have started. Files that cannot be read are left to :func:`check_files`."""
    if sel(cfg, "trainer.v1.trainer_mode") != "qwenlong":
        return []
    from qwenlong_verl.config import QwenLongConfigError
    from qwenlong_verl.sampling.options import sampling_options
    from qwenlong_verl.sampling.phases import phase_band, retrospective_pool, view_from_file

    files = [os.path.expanduser(p) for p in _as_list(sel(cfg, "data.train_files")) if _local(p) and p != "???"]
    if len(files) != 1 or not files[0].endswith(".parquet") or not Path(files[0]).is_file():
        return []
    path = files[0]
    try:
        options = sampling_options(cfg)
        view = view_from_file(path, options.curriculum.length_key)
    except (QwenLongConfigError, ValueError, OSError):
        return []  # reported by the option and file checks
    if not options.curriculum.lengths:
        return []
    counts = {ph: int(len(phase_band(view, options, ph))) for ph in range(1, options.num_phases + 1)}

    def band(ph: int) -> str:
        lower, upper = options.phase_bounds(ph)
        return f"phase {ph} ({lower} < prompt tokens <= {upper})"

    per_band = "; ".join(f"{band(ph)}: {n} rows" for ph, n in counts.items())
    lengths = ",".join(str(x) for x in options.curriculum.lengths)
    out = []
    for ph in sorted(set(options.phases_used())):
        if ph not in counts:
            continue  # no such phase: the option checks name it
        if counts[ph] == 0:
            out.append(Finding(
                "error", "phase_bands", "data.train_files",
                f"{path} has no row in {band(ph)}, which this run trains ({len(view)} rows; {per_band})",
                f"train on a file with prompts in that band (`qwenlong-verl plan --data {path} --phases {lengths}` "
                "shows the bands), or set qwenlong.curriculum.lengths / qwenlong.curriculum.phase to a band the data "
                "fills"))
    retro = options.retrospective
    table_file = os.path.expanduser(str(retro.difficulty_file)) if retro.difficulty_file else None
    if retro.enable and table_file and Path(table_file).is_file():
        from qwenlong_verl.sampling.difficulty import DifficultyTable

        try:
            table = DifficultyTable.load(table_file)
        except (OSError, ValueError) as exc:
            return out + [Finding("error", "phase_bands", "qwenlong.retrospective.difficulty_file",
                                  f"{table_file} cannot be read ({exc})",
                                  "point it at the previous phase's qwenlong_difficulty.json")]
        for ph in sorted({p for p in options.phases_used() if 1 < p <= options.num_phases}):
            pool = retrospective_pool(view, table, options, ph)
            if len(pool) == 0:
                out.append(Finding(
                    "error", "phase_bands", "qwenlong.retrospective.difficulty_file",
                    f"{table_file} gives {band(ph)} no retrospective example ({len(table)} examples in the table, "
                    f"mode {retro.mode}; {pool.missing} not in {path}, {pool.too_long} longer than the band)",
                    "use the difficulty file of a run on this training file, qwenlong.retrospective.mode=weighted, "
                    "or qwenlong.retrospective.enable=false"))
    return out


def check_loggers(cfg: dict[str, Any]) -> list[Finding]:
    """wandb in ``trainer.logger`` needs credentials or an offline mode, else the TaskRunner stops at login; on a
    cluster the file logger's location must be forwarded through verl's ``runtime_env``."""
    loggers = _as_list(sel(cfg, "trainer.logger", []))
    out = []
    forwarded = sel(cfg, "ray_kwargs.ray_init.runtime_env.env_vars", {}) or {}
    remote = bool(sel(cfg, "ray_kwargs.ray_init.address")) or layout(cfg)[0] > 1
    for var in ("VERL_FILE_LOGGER_PATH", "VERL_FILE_LOGGER_ROOT"):
        if "file" in loggers and remote and os.environ.get(var) and var not in forwarded:
            out.append(Finding("warning", "loggers", "ray_kwargs.ray_init.runtime_env.env_vars",
                               f"{var} is set here but not forwarded: verl's file logger runs in the TaskRunner, on "
                               "any node of the cluster, where this environment does not reach",
                               f"+ray_kwargs.ray_init.runtime_env.env_vars.{var}={os.environ[var]}"))
    if "wandb" not in loggers:
        return out
    mode = os.environ.get("WANDB_MODE", "")
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    has_netrc = netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="replace")
    if os.environ.get("WANDB_API_KEY") or mode in ("offline", "disabled", "dryrun") or has_netrc:
        return out
    return out + [Finding("error", "loggers", "trainer.logger",
                    "wandb is listed but no WANDB_API_KEY, `wandb login` (~/.netrc) or WANDB_MODE=offline is set",
                    "export WANDB_API_KEY=... (forward it to a running Ray cluster with "
                    "+ray_kwargs.ray_init.runtime_env.env_vars.WANDB_API_KEY=...), or trainer.logger=[console,file]")]


def probe_judge(cfg: dict[str, Any], timeout_s: float = 5.0) -> list[Finding]:
    """The judge answers from where the run starts, and serves ``qwenlong.judge.model`` (a wrong name fails every
    call, which would leave a rule-only run). One request: the guard's own probe (``config_checks.probe_judge``, the
    judge client's route and key), whose model list is checked here.

    Args:
        cfg: The composed config, as plain containers.
        timeout_s: Bound on connecting and on the reply (seconds).
    """
    from qwenlong_verl.config import QwenLongConfigError
    from qwenlong_verl.config_checks import PROBE_ENV
    from qwenlong_verl.config_checks import probe_judge as probe
    from qwenlong_verl.redaction import redact_url

    url = sel(cfg, "qwenlong.judge.base_url")
    if not url:
        return []
    try:
        names = probe(cfg, timeout_s)
    except QwenLongConfigError as exc:
        return [Finding("error", "judge", "qwenlong.judge.base_url", str(exc))]
    shown = redact_url(str(url))
    if names is None:
        return [Finding("info", "judge", "qwenlong.judge.base_url", f"{shown} not probed: the judge is off "
                        f"(qwenlong.judge.enabled=false) or {PROBE_ENV}=0, as the launch guard would skip it")]
    if not names:
        return [Finding("info", "judge", "qwenlong.judge.base_url", f"{shown} answers (no model list)")]
    model = sel(cfg, "qwenlong.judge.model")
    if model and model not in names:
        return [Finding("error", "judge", "qwenlong.judge.model", f"{model!r} is not served at {shown} (it serves "
                        f"{names}): every judge call would fail", f"qwenlong.judge.model={names[0]}")]
    return [Finding("info", "judge", "qwenlong.judge.base_url", f"{shown} answers, serving {names}")]


def model_checks(cfg: dict[str, Any], facts: ModelFacts, gpu_memory_gib: float | None) -> list[Finding]:
    """Every check that needs the model's sizes (the vLLM estimate only with a GPU memory to estimate against)."""
    found = check_sequence_parallel(cfg, facts) + check_context(cfg, facts) + check_rollout_parallel(cfg, facts)
    return found + (estimate_vllm_memory(cfg, facts, gpu_memory_gib) if gpu_memory_gib else [])


def config_checks(cfg: dict[str, Any]) -> list[Finding]:
    """Every check that needs only the config (and the local files it names)."""
    return (check_context_window(cfg) + check_token_budgets(cfg) + check_rope_agreement(cfg) + check_batch_split(cfg) + check_files(cfg)
            + check_phase_bands(cfg) + check_cluster_paths(cfg) + check_loggers(cfg))
