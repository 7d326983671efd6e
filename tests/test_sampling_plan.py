"""`qwenlong-verl plan`: per-phase counts, histograms, retrospective picks, JSON and PNG output."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from qwenlong_verl.cli import main
from qwenlong_verl.data.synth import generate_docqa, write_rows
from qwenlong_verl.sampling.difficulty import DifficultyTable


@pytest.fixture
def prepared(tmp_path):
    rows = generate_docqa(30, min_tokens=300, max_tokens=3000, seed=4)
    for r in rows:  # stored lengths as `prepare` would write them (words-based targets are enough here)
        r["prompt_length"] = r["extra_info"]["target_tokens"]
        r["extra_info"]["prompt_length"] = r["prompt_length"]
    path = tmp_path / "train.parquet"
    write_rows(rows, str(path))
    return path, rows


def test_plan_counts_histograms_and_picks(tmp_path, prepared, capsys):
    path, rows = prepared
    lengths = {r["extra_info"]["index"]: r["prompt_length"] for r in rows}
    phase1 = [i for i, n in lengths.items() if n <= 1500]
    table = DifficultyTable()
    zero = set(phase1[::2])
    for i in phase1:
        table.add(i, step=1, phase=1, rewards=[0.0, 0.0] if i in zero else [1.0, 0.0])
    diff = table.save(tmp_path / "d.json")
    out_json, out_png = tmp_path / "plan.json", tmp_path / "plan.png"
    assert main(["plan", "--data", str(path), "--phases", "1500,3000", "--difficulty", str(diff),
                 "--json", str(out_json), "--plot", str(out_png)]) == 0
    plan = json.loads(out_json.read_text())
    p1, p2 = plan["phases"]
    assert p1["band_size"] == len(phase1) and p2["band_size"] == 30 - len(phase1)
    assert sum(p1["histogram"]["counts"]) == p1["band_size"]
    assert p1["retro_candidates"] == 0 and set(p2["retro_picks"]) == zero and p2["retro_per_epoch"] == len(zero)
    assert plan["difficulty"]["zero_mean"] == len(zero)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert f"phase 2: 1500 < len <= 3000: {30 - len(phase1)} examples" in text

    # weighted mode with a count: picks are a subset of phase I, deterministic by seed
    args = ["plan", "--data", str(path), "--phases", "1500,3000", "--difficulty", str(diff), "--mode", "weighted",
            "--count", "3", "--json", str(out_json)]
    assert main(args) == 0
    picks = json.loads(out_json.read_text())["phases"][1]["retro_picks"]
    assert len(picks) == 3 and set(picks) <= set(phase1)
    assert main(args) == 0 and json.loads(out_json.read_text())["phases"][1]["retro_picks"] == picks


def test_plan_errors_are_reported(tmp_path, prepared):
    path, _ = prepared
    assert main(["plan", "--data", str(path), "--phases", "3000,1500"]) == 1
    raw = tmp_path / "raw.parquet"
    pd.read_parquet(path).drop(columns=["prompt_length"]).assign(
        extra_info=lambda d: d["extra_info"].map(lambda e: {k: v for k, v in e.items() if k != "prompt_length"})
    ).to_parquet(raw)
    assert main(["plan", "--data", str(raw), "--phases", "1500"]) == 1
