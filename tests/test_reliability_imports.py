"""The CLI imports verl only in commands that need it: score/eval/eval-convert/prepare/plan/synth leave it (and its
start-up warnings, 4-6 s of imports) out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from reliability_utils import PKG_ROOT, run_cli_process

PROBE = """
import json, sys
from qwenlong_verl.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in ("verl", "ray", "vllm") if m in sys.modules)
print("IMPORTS " + json.dumps({"rc": rc, "heavy": heavy}))
"""


@pytest.fixture
def files(tmp_path):
    rows = [{"id": "a", "data_source": "hotpotqa", "question": "Q?", "response": "The answer is x.",
             "ground_truth": "x"}]
    scored = tmp_path / "rows.jsonl"
    scored.write_text("".join(json.dumps(r) + "\n" for r in rows))
    verl_row = {"data_source": "hotpotqa", "prompt": [{"role": "user", "content": "Q?"}],
                "reward_model": {"ground_truth": "x"}, "extra_info": {"question": "Q?", "index": 0}}
    rl = tmp_path / "rl.jsonl"
    rl.write_text(json.dumps(verl_row) + "\n")
    return {"scored": scored, "rl": rl}


def _commands(tmp_path, files, tiny_model_dir):
    synth_out = tmp_path / "synth.parquet"
    return {
        "score": ["score", files["scored"], "--no-progress"],
        "eval-convert": ["eval-convert", files["rl"], tmp_path / "conv.jsonl"],
        "synth": ["synth", "--out", synth_out, "-n", "4", "--min-tokens", "50", "--max-tokens", "80",
                  "--tokenizer", tiny_model_dir],
        "prepare": ["prepare", files["rl"], "--out", tmp_path / "prep.parquet", "--tokenizer", tiny_model_dir],
        "plan": ["plan", "--data", synth_out, "--phases", "100,200"],
    }


def test_commands_do_not_import_verl(tmp_path, files, tiny_model_dir):
    env = {"PYTHONPATH": PKG_ROOT, "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for name, args in _commands(tmp_path, files, tiny_model_dir).items():  # in order: plan reads synth's output
        proc = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=180, env=env)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("IMPORTS ")), None)
        assert line is not None, (name, proc.stderr[-2000:])
        result = json.loads(line[len("IMPORTS "):])
        assert result == {"rc": 0, "heavy": []}, (name, result, proc.stderr[-2000:])
        for noise in ("No supported accelerator", "engine is not available"):
            assert noise not in proc.stderr, (name, proc.stderr[-2000:])


def test_eval_does_not_import_verl(tmp_path, files):
    from fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer(responder=lambda m: "Therefore, the answer is x.") as gen:
        proc = run_cli_process(["eval", "--endpoint", gen.base_url, "--model", "m", "--data", files["rl"], "--out",
                                tmp_path / "out", "--max-input-tokens", "0", "--no-progress"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for noise in ("No supported accelerator", "engine is not available"):
        assert noise not in proc.stderr
