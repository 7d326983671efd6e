"""What a model's ``config.json`` says about the GPU layout it needs: heads, positions, rope scaling, sizes.

Pure arithmetic on the JSON (no transformers, no verl), so the driver-side guard and ``qwenlong-verl preflight``
can check a 32B model's layout in milliseconds on a login node.

Sizes (bf16, Qwen2-style decoder, ``d`` = head dim = hidden / heads unless ``head_dim`` is given):

* parameters ``P = V*H*(1 + !tie) + L*(H*h*d + 2*H*k*d + h*d*H + (h + 2k)*d + 3*H*I + 2*H) + H``
  (embedding and head; per layer q/k/v/o projections with Qwen2's q/k/v biases, the SwiGLU MLP, two RMSNorms);
* KV cache per token ``2 (K and V) * L * k * d * bytes``; under tensor parallelism TP each GPU holds
  ``max(1, k / TP)`` of the ``k`` KV heads (vLLM replicates KV heads when TP > k).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.rope_scaling import declared_rope_scaling

BF16_BYTES = 2


class ModelConfigError(ValueError):
    """The model folder has no readable ``config.json``; the message names the path."""


@dataclass(frozen=True)
class ModelFacts:
    """The numbers of one decoder model that decide SP, TP, context and memory (from its ``config.json``)."""

    path: str
    model_type: str
    architectures: tuple[str, ...]
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    rope_scaling: dict[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any], path: str = "<dict>") -> ModelFacts:
        """Args:
            cfg: the parsed ``config.json`` (a multimodal model's ``text_config`` is used when present).
            path: where it came from, for messages."""
        text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
        try:
            heads = int(text["num_attention_heads"])
            hidden = int(text["hidden_size"])
            return cls(
                path=path,
                model_type=str(cfg.get("model_type", "?")),
                architectures=tuple(cfg.get("architectures") or ()),
                num_layers=int(text["num_hidden_layers"]),
                hidden_size=hidden,
                num_heads=heads,
                num_kv_heads=int(text.get("num_key_value_heads") or heads),
                head_dim=int(text.get("head_dim") or hidden // heads),
                intermediate_size=int(text.get("intermediate_size") or 4 * hidden),
                vocab_size=int(text.get("vocab_size") or 0),
                tie_word_embeddings=bool(cfg.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
                max_position_embeddings=int(text["max_position_embeddings"]),
                rope_scaling=declared_rope_scaling(text),
            )
        except KeyError as exc:
            raise ModelConfigError(f"{path}: config.json has no {exc.args[0]!r}; is it a decoder LM config?") from exc

    @classmethod
    def from_folder(cls, folder: str | Path) -> ModelFacts:
        cfg_file = Path(folder) / "config.json"
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelConfigError(f"{cfg_file} does not exist: actor_rollout_ref.model.path must be a model folder "
                                   "(download it first: `huggingface-cli download NAME --local-dir DIR`)") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelConfigError(f"{cfg_file} is not readable JSON: {exc}") from exc
        return cls.from_dict(cfg, str(folder))

    # ------------------------------------------------------------------------------------------------ derived
    @property
    def rope_type(self) -> str:
        return (self.rope_scaling or {}).get("rope_type", "default")

    @property
    def context_positions(self) -> int:
        """Positions the model supports as configured: for YaRN-style scaling ``original * factor`` (what vLLM
        derives), never less than ``max_position_embeddings``."""
        rs = self.rope_scaling
        if not rs or "factor" not in rs:
            return self.max_position_embeddings
        base = int(rs.get("original_max_position_embeddings") or self.max_position_embeddings)
        return max(self.max_position_embeddings, int(base * float(rs["factor"])))

    def num_parameters(self) -> int:
        h, k, d, hid, inter = self.num_heads, self.num_kv_heads, self.head_dim, self.hidden_size, self.intermediate_size
        attn = hid * h * d + 2 * hid * k * d + h * d * hid + (h + 2 * k) * d
        per_layer = attn + 3 * hid * inter + 2 * hid
        embed = self.vocab_size * hid * (1 if self.tie_word_embeddings else 2)
        return embed + self.num_layers * per_layer + hid

    def kv_bytes_per_token(self, tp: int = 1, dtype_bytes: int = BF16_BYTES) -> int:
        """KV-cache bytes per token on one GPU of a TP group."""
        heads_per_gpu = max(1, math.ceil(self.num_kv_heads / max(1, tp)))
        return 2 * self.num_layers * heads_per_gpu * self.head_dim * dtype_bytes

    def weight_bytes_per_gpu(self, tp: int = 1, dtype_bytes: int = BF16_BYTES) -> int:
        return self.num_parameters() * dtype_bytes // max(1, tp)

    def valid_sp_sizes(self, limit: int) -> list[int]:
        """Ulysses SP sizes verl's model patch accepts (``heads % sp == 0`` and ``kv % sp == 0 or sp % kv == 0``)."""
        return [sp for sp in range(1, limit + 1) if self.num_heads % sp == 0
                and (self.num_kv_heads % sp == 0 or sp % self.num_kv_heads == 0)]

    def valid_tp_sizes(self, limit: int) -> list[int]:
        """vLLM tensor-parallel sizes: heads split evenly, KV heads split or replicated evenly."""
        return [tp for tp in range(1, limit + 1) if self.num_heads % tp == 0
                and (self.num_kv_heads % tp == 0 or tp % self.num_kv_heads == 0)]
