"""``actor_rollout_ref.rollout.name=hf``: a rollout replica that generates with HF transformers in a Ray actor.

verl 0.9.1's rollouts are vLLM/SGLang/TRT-LLM servers only; none runs on a CPU. This replica keeps verl's server
protocol (token ids in, token ids + log-probs out, weights pushed by the trainer after each step) so the stock agent
loop, reward loop and trainer run unchanged. Concurrent requests are gathered into one batched ``generate`` call,
since the agent loop sends all G rollouts of a batch at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from verl.workers.rollout import base as rollout_base
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, RolloutReplicaRegistry, TokenOutput

logger = logging.getLogger(__name__)

ROLLOUT_NAME = "hf"
MAX_BATCH = 64
GATHER_WINDOW_S = 0.005


def server_name(replica_rank: int) -> str:
    return f"qwenlong_hf_rollout_{replica_rank}"


@dataclass
class _Request:
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    top_k: int
    future: asyncio.Future = field(repr=False)

    def sampling_key(self) -> tuple:
        return (self.temperature, self.top_p, self.top_k)


class HFGenerationServer:
    """Holds an HF causal LM; batches concurrent ``generate`` calls; reports per-token log-probs.

    Log-probs are ``log_softmax(logits / temperature)`` of the raw logits, the quantity verl's actor recomputes, so
    rollout and actor probabilities agree (``training/rollout_actor_probs_pearson_corr``).
    """

    def __init__(self, model_path: str, response_length: int, dtype: str = "float32") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).eval()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos if eos is not None else self.tokenizer.eos_token_id])
        self.response_length = int(response_length)
        self.global_steps: int | None = None
        self._queue: list[_Request] = []
        self._worker: asyncio.Task | None = None
        self.requests_served = 0
        self.batches_run = 0

    # ---- weights -------------------------------------------------------------------------------------------
    def load_weights(self, state: dict[str, torch.Tensor]) -> int:
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        unexpected = [k for k in unexpected if not k.endswith("rotary_emb.inv_freq")]
        if unexpected:
            raise KeyError(f"hf rollout: weights not in the model: {unexpected[:5]}")
        return len(state)

    def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    def stats(self) -> dict[str, int]:
        return {"requests": self.requests_served, "batches": self.batches_run}

    # ---- generation ----------------------------------------------------------------------------------------
    async def generate(self, prompt_ids, sampling_params, request_id, image_data=None, video_data=None, **kw):
        sp = dict(sampling_params or {})
        loop = asyncio.get_running_loop()
        req = _Request(
            prompt_ids=list(prompt_ids),
            # like verl's vLLM server: the configured response length unless the request caps it lower
            max_new_tokens=min(int(sp.get("max_tokens") or sp.get("max_new_tokens") or self.response_length),
                               self.response_length),
            temperature=float(sp.get("temperature", 1.0)),
            top_p=float(sp.get("top_p", 1.0)),
            top_k=int(sp.get("top_k", -1) or -1),
            future=loop.create_future(),
        )
        self._queue.append(req)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        token_ids, log_probs = await req.future
        return TokenOutput(
            token_ids=token_ids,
            log_probs=log_probs,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(GATHER_WINDOW_S)  # let the other requests of this wave arrive
            key = self._queue[0].sampling_key()
            batch = [r for r in self._queue if r.sampling_key() == key][:MAX_BATCH]
            self._queue = [r for r in self._queue if not any(r is b for b in batch)]
            try:
                results = await asyncio.to_thread(self._generate_batch, batch)
            except Exception as exc:  # noqa: BLE001 - hand the failure to every waiting caller
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)
                continue
            for r, res in zip(batch, results, strict=True):
                if not r.future.done():
                    r.future.set_result(res)

    @torch.no_grad()
    def _generate_batch(self, batch: list[_Request]) -> list[tuple[list[int], list[float]]]:
        width = max(len(r.prompt_ids) for r in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(batch):  # left padding: every prompt ends where generation starts
            ids[i, width - len(r.prompt_ids):] = torch.tensor(r.prompt_ids)
            mask[i, width - len(r.prompt_ids):] = 1
        first = batch[0]
        greedy = first.temperature <= 0
        gen_kwargs: dict[str, Any] = dict(
            attention_mask=mask,
            max_new_tokens=max(r.max_new_tokens for r in batch),
            do_sample=not greedy,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids),
        )
        if not greedy:
            gen_kwargs.update(temperature=first.temperature, top_p=first.top_p,
                              top_k=first.top_k if first.top_k > 0 else 0)
        out = self.model.generate(ids, **gen_kwargs)
        new_tokens = out.sequences[:, width:]
        temperature = first.temperature if first.temperature > 0 else 1.0
        logprobs = torch.stack([torch.log_softmax(s.float() / temperature, dim=-1) for s in out.logits], dim=1)
        token_lp = logprobs.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
        results = []
        for i, r in enumerate(batch):
            toks = new_tokens[i].tolist()[: r.max_new_tokens]
            end = len(toks)
            for j, t in enumerate(toks):
                if t in self.eos_ids:
                    end = j + 1
                    break
            results.append((toks[:end], token_lp[i, :end].tolist()))
        self.requests_served += len(batch)
        self.batches_run += 1
        return results

    # ---- lifecycle calls verl makes on every server; nothing to free on a CPU ------------------------------
    async def wake_up(self) -> None: ...
    async def sleep(self) -> None: ...
    async def abort_all_requests(self, reject_request: bool = False) -> None: ...
    async def resume_generation(self) -> None: ...
    async def clear_kv_cache(self) -> None: ...
    async def release_kv_cache(self) -> None: ...
    async def resume_kv_cache(self) -> None: ...
    async def start_profile(self, **kwargs) -> None: ...
    async def stop_profile(self) -> None: ...


class HFReplica(RolloutReplica):
    """One HF generation server per replica, placed without GPU resources."""

    def rollout_worker_use_gpu(self) -> bool:
        return False

    async def launch_servers(self) -> None:
        path = getattr(self.model_config, "local_path", None) or self.model_config.path
        actor_cls = ray.remote(num_cpus=0)(HFGenerationServer)
        handle = actor_cls.options(name=server_name(self.replica_rank), get_if_exists=True).remote(path, self.config.response_length)
        self.servers = [handle]
        self._server_handle = handle
        self._server_address = server_name(self.replica_rank)


def ranks_per_replica(device_mesh: Any) -> int:
    """How many trainer ranks share one rollout replica: the size of the rollout mesh without its ``dp`` dimension.

    verl 0.9.1 builds the rollout mesh as ``(dp, infer_tp, infer_pp)`` over the whole world (engine_workers), so
    ``device_mesh.size()`` is the world size, not a replica's size: dividing a rank by it put every rank of a
    world-size-2 run in replica 0, replica 1 never got weights or its global step, and verl's metrics crashed on
    ``min_global_steps=None``. A mesh without dim names is taken as one replica (the old single-rank layout).
    """
    names = tuple(getattr(device_mesh, "mesh_dim_names", None) or ())
    shape = tuple(int(n) for n in device_mesh.shape)
    if "dp" not in names:
        return max(1, math.prod(shape))
    return max(1, math.prod(size for name, size in zip(names, shape, strict=True) if name != "dp"))


def replica_position(rank: int, device_mesh: Any) -> tuple[int, bool]:
    """(replica rank, is leader) of global trainer ``rank``: replicas are consecutive blocks of
    :func:`ranks_per_replica` ranks (as verl's vLLM adapter numbers them), the block's first rank pushes weights."""
    per_replica = ranks_per_replica(device_mesh)
    return rank // per_replica, rank % per_replica == 0


class HFServerAdapter(BaseRollout):
    """The trainer-side half: pushes the actor's weights into the generation server after each step."""

    def __init__(self, config, model_config, device_mesh, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, model_config, device_mesh)
        if torch.distributed.is_initialized():
            self.replica_rank, self.is_leader = replica_position(torch.distributed.get_rank(), device_mesh)
        else:
            self.replica_rank, self.is_leader = 0, True
        logger.info("hf rollout adapter: rank %s -> replica %d (leader: %s)",
                    torch.distributed.get_rank() if torch.distributed.is_initialized() else 0,
                    self.replica_rank, self.is_leader)

    async def resume(self, tags: list[str]) -> None: ...

    async def release(self) -> None: ...

    async def update_weights(self, weights, wire_format: str = "named_tensors", **kwargs: Any) -> None:
        state = {}
        for name, tensor in weights:  # consume on every rank: FSDP gathers are collective
            full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
            state[name] = full.detach().to("cpu", torch.float32).clone()
        if not self.is_leader:
            return
        server = ray.get_actor(server_name(self.replica_rank))
        await server.load_weights.remote(state)
        if kwargs.get("global_steps") is not None:
            await server.set_global_steps.remote(kwargs["global_steps"])


# verl 0.9.1 has no registration function for rollout adapters; its registry is this dict of import paths.
rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = f"{__name__}.HFServerAdapter"
RolloutReplicaRegistry.register(ROLLOUT_NAME, lambda: HFReplica)
