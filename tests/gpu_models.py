"""Model folders with the real sizes of the models QwenLong-L1 users train (from each model's published config.json),
plus the tiny local tokenizer: what verl's ``HFModelConfig`` needs to be built on CPU, without any download."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# name -> (layers, hidden, heads, kv heads, intermediate, max_position_embeddings, rope_theta, vocab)
MODELS: dict[str, tuple[int, int, int, int, int, int, float, int]] = {
    "Qwen2.5-7B-Instruct": (28, 3584, 28, 4, 18944, 32768, 1e6, 152064),
    "Qwen2.5-14B-Instruct": (48, 5120, 40, 8, 13824, 32768, 1e6, 152064),
    "Qwen2.5-32B-Instruct": (64, 5120, 40, 8, 27648, 32768, 1e6, 152064),
    "DeepSeek-R1-Distill-Qwen-7B": (28, 3584, 28, 4, 18944, 131072, 1e4, 152064),
    "DeepSeek-R1-Distill-Qwen-14B": (48, 5120, 40, 8, 13824, 131072, 1e6, 152064),
    "DeepSeek-R1-Distill-Qwen-32B": (64, 5120, 40, 8, 27648, 131072, 1e6, 152064),
}

# what the README's per-model table recommends on top of the recipes
OVERLAYS = {name: (["+qwenlong_model=qwen_7b"] if "-7B" in name else []) for name in MODELS}


def model_config(name: str) -> dict:
    layers, hidden, heads, kv, inter, positions, theta, vocab = MODELS[name]
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
        "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv, "max_position_embeddings": positions,
        "max_window_layers": layers, "rms_norm_eps": 1e-6 if "Qwen2.5" in name else 1e-5, "rope_theta": theta,
        "sliding_window": positions, "use_sliding_window": False, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "vocab_size": vocab, "bos_token_id": 151643, "eos_token_id": 151643,
    }


def make_model_folder(root: Path, name: str, tokenizer_dir: Path) -> Path:
    """``root/name`` with the model's config.json and the tiny tokenizer's files (no weights)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for f in tokenizer_dir.iterdir():
        if f.is_file() and f.name != "config.json" and not f.name.endswith((".safetensors", ".bin")):
            shutil.copy(f, folder / f.name)
    (folder / "config.json").write_text(json.dumps(model_config(name), indent=1))
    return folder
