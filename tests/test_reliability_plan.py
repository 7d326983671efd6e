"""``qwenlong-verl plan``: outputs never overwrite an input, bad values are refused by argparse, a damaged
difficulty file is named; no traceback."""

from __future__ import annotations

import json
import logging

import pytest
from reliability_utils import UNEXPECTED, assert_clean_failure, digest, run_cli, run_cli_process

from qwenlong_verl.data.synth import generate_docqa, write_rows
from qwenlong_verl.sampling.difficulty import FORMAT, DifficultyTable


@pytest.fixture
def inputs(tmp_path):
    rows = generate_docqa(12, min_tokens=300, max_tokens=3000, seed=1)
    for r in rows:
        r["prompt_length"] = r["extra_info"]["prompt_length"] = r["extra_info"]["target_tokens"]
    data = tmp_path / "train.parquet"
    write_rows(rows, str(data))
    table = DifficultyTable()
    for r in rows[:4]:
        table.add(r["extra_info"]["index"], step=1, phase=1, rewards=[0.0, 1.0])
    diff = table.save(tmp_path / "difficulty.json")
    return data, diff


@pytest.mark.parametrize("case, expect", [
    ("json_is_data", "is also an input"),
    ("json_is_difficulty", "is also an input"),
    ("plot_is_data", "is also an input"),
    ("plot_extension", "this command writes .png or .pdf or .svg or .jpg or .jpeg files"),
    ("json_is_plot", "both write"),
    ("json_is_folder", "is a folder"),
])
def test_outputs_are_checked_before_the_work(tmp_path, inputs, caplog, case, expect):
    data, diff = inputs
    same = tmp_path / "plan.png"
    extra = {
        "json_is_data": ["--json", data],
        "json_is_difficulty": ["--json", diff],
        "plot_is_data": ["--plot", data],
        "plot_extension": ["--plot", tmp_path / "plan.xyz"],
        "json_is_plot": ["--json", same, "--plot", same],
        "json_is_folder": ["--json", tmp_path],
    }[case]
    before = (digest(data), digest(diff))
    with caplog.at_level(logging.ERROR):
        rc = run_cli(["plan", "--data", data, "--phases", "1500,3000", "--difficulty", diff, *extra])
    assert rc == 2 and expect in caplog.text and UNEXPECTED not in caplog.text
    assert (digest(data), digest(diff)) == before
    assert not (tmp_path / "plan.xyz").exists() and not same.exists()


@pytest.mark.parametrize("option, value", [
    ("--phases", ","), ("--phases", "-5,10"), ("--phases", "1.5,3"), ("--phases", "0"), ("--phases", "a,b"),
    ("--phases", ""), ("--ratio", "1"), ("--ratio", "-0.1"), ("--count", "-1"), ("--eps", "0"),
])
def test_bad_option_values(inputs, capsys, option, value):
    data, _ = inputs
    args = ["plan", "--data", data, "--phases", "1500,3000", option, value]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err


@pytest.mark.parametrize("history, expect", [
    ([[1, 1, 2, 3.0]], "reward sum 3.0 over 2 rollout(s) is impossible"),
    ([[1, 1, -1, 0.0]], "is impossible"),
    ([[1, 1, 2, float("nan")]], "is impossible"),
    ([[1, 1]], "is malformed"),
])
def test_damaged_difficulty_file_is_named(tmp_path, inputs, caplog, history, expect):
    data, _ = inputs
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": FORMAT, "version": 1, "metric": "acc",
                               "examples": [{"index": 0, "history": history}]}))
    with caplog.at_level(logging.ERROR):
        assert run_cli(["plan", "--data", data, "--phases", "1500,3000", "--difficulty", bad]) == 1
    assert expect in caplog.text and "bad.json" in caplog.text


def test_outputs_are_complete_and_atomic(tmp_path, inputs):
    data, diff = inputs
    out_json, out_png = tmp_path / "plan.json", tmp_path / "plan.png"
    out_json.write_text("old")
    assert run_cli(["plan", "--data", data, "--phases", "1500,3000", "--difficulty", diff, "--json", out_json,
                    "--plot", out_png]) == 0
    assert json.loads(out_json.read_text())["phases"]
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["difficulty.json", "plan.json", "plan.png",
                                                           "train.parquet"]  # no temp files left


def test_as_a_user_sees_it(tmp_path, inputs):
    data, _ = inputs
    proc = run_cli_process(["plan", "--data", data, "--phases", "1500,3000", "--json", data], cwd=tmp_path)
    assert proc.returncode == 2
    assert_clean_failure(proc.stderr)
    assert "is also an input" in proc.stderr
