"""YaRN written into the model folder: what verl's FSDP actor (transformers) and vLLM both read."""

from __future__ import annotations

import json

import pytest

from qwenlong_verl.cli import main as cli_main
from qwenlong_verl.rope_scaling import RopeScalingError, YarnSettings, has_yarn, with_yarn, write_yarn_model


def test_with_yarn_keeps_rope_theta_and_raises_positions_never_lowers():
    legacy = with_yarn({"rope_theta": 1e6, "max_position_embeddings": 32768}, YarnSettings())
    assert legacy["rope_scaling"] == {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert legacy["max_position_embeddings"] == 131072 and legacy["rope_theta"] == 1e6
    v5 = with_yarn({"rope_parameters": {"rope_type": "default", "rope_theta": 1e4}, "max_position_embeddings": 262144},
                   YarnSettings(2.0, 32768))
    assert v5["rope_parameters"] == {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0,
                                     "original_max_position_embeddings": 32768}
    assert "rope_scaling" not in v5 and v5["max_position_embeddings"] == 262144
    assert has_yarn(legacy, YarnSettings()) and has_yarn(v5, YarnSettings(2.0, 32768))
    assert not has_yarn(legacy, YarnSettings(2.0, 32768))
    with pytest.raises(RopeScalingError, match="factor"):
        YarnSettings(factor=1.0)


def test_yarn_folder_loads_in_transformers_with_yarn_rope(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = write_yarn_model(tiny_model_dir, tmp_path / "yarn")
    assert json.loads((tiny_model_dir / "config.json").read_text()).get("max_position_embeddings") == 32768
    cfg = AutoConfig.from_pretrained(out)
    assert cfg.rope_parameters["rope_type"] == "yarn" and cfg.max_position_embeddings == 131072
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    scaled = AutoModelForCausalLM.from_pretrained(out).eval()
    assert scaled.model.rotary_emb.rope_type == "yarn" and scaled.model.rotary_emb.attention_scaling > 1.0
    ids = torch.randint(0, 200, (1, 48))
    with torch.no_grad():  # same weights (symlinked), different rope: different logits
        assert not torch.allclose(plain(ids).logits, scaled(ids).logits)
    weights = [p for p in out.iterdir() if p.suffix == ".safetensors"]
    assert weights and all(p.is_symlink() for p in weights)


def test_yarn_model_is_idempotent_and_never_overwrites(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "yarn"
    assert cli_main(["yarn-model", str(tiny_model_dir), "--out", str(out)]) == 0
    first = (out / "config.json").read_text()
    assert cli_main(["yarn-model", str(tiny_model_dir), "--out", str(out)]) == 0  # same source, same settings
    assert (out / "config.json").read_text() == first
    assert cli_main(["yarn-model", str(tiny_model_dir), "--out", str(out), "--factor", "2"]) == 1
    other = tmp_path / "taken"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert cli_main(["yarn-model", str(tiny_model_dir), "--out", str(other)]) == 1
    assert (other / "keep.txt").read_text() == "mine"
    assert cli_main(["yarn-model", str(tiny_model_dir), "--out", str(tiny_model_dir / "sub")]) == 1
    assert cli_main(["yarn-model", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()
