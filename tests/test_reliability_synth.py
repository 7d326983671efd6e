"""``qwenlong-verl synth``: every bad option is one argparse line (exit 2) naming the option, the output is checked
before generating and written whole, a bad tokenizer path is one line."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from reliability_utils import UNEXPECTED, assert_clean_failure, digest, run_cli, run_cli_process


@pytest.mark.parametrize("option, value", [
    ("-n", "0"), ("-n", "-3"), ("-n", "x"), ("--min-tokens", "0"), ("--min-tokens", "-1"),
    ("--max-tokens", "1e9"), ("--max-tokens", "99999999"), ("--kinds", "bogus"), ("--kinds", ","),
    ("--length-dist", "normal"), ("--index-offset", "-1"), ("--seed", "1.5"),
])
def test_bad_option_values(tmp_path, capsys, option, value):
    out = tmp_path / "s.parquet"
    assert run_cli(["synth", "--out", out, option, value]) == 2
    err = capsys.readouterr().err
    assert option.lstrip("-").split("-")[0] in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("args, expect", [
    (["--min-tokens", "900", "--max-tokens", "500"], "--min-tokens (900) is above --max-tokens (500)"),
    (["--out-suffix", ".csv"], "writes .parquet or .jsonl or .json files"),
    (["--tokenizer", "./no/such/tokenizer"], "--tokenizer './no/such/tokenizer': no such folder"),
])
def test_refused_before_generating(tmp_path, caplog, args, expect):
    out = tmp_path / "s.parquet"
    if args[0] == "--out-suffix":
        out, args = tmp_path / "s.csv", []
    with caplog.at_level(logging.ERROR):
        assert run_cli(["synth", "--out", out, *args]) == 2
    assert expect in caplog.text and UNEXPECTED not in caplog.text
    assert not out.exists()


def test_existing_output_is_replaced_whole(tmp_path):
    out = tmp_path / "s.parquet"
    out.write_bytes(b"old")
    assert run_cli(["synth", "--out", out, "-n", "3", "--min-tokens", "50", "--max-tokens", "80"]) == 0
    assert len(pd.read_parquet(out)) == 3 and [p.name for p in tmp_path.iterdir()] == ["s.parquet"]


def test_output_folder_is_refused_and_untouched(tmp_path, caplog):
    keep = tmp_path / "keep.txt"
    keep.write_text("x")
    with caplog.at_level(logging.ERROR):
        assert run_cli(["synth", "--out", tmp_path]) == 2
    assert "is a folder" in caplog.text and digest(keep) is not None


def test_kinds_of_the_command_match_the_generator():
    from qwenlong_verl.commands.synth import KINDS
    from qwenlong_verl.data import synth

    assert KINDS == synth.KINDS


def test_as_a_user_sees_it(tmp_path):
    proc = run_cli_process(["synth", "--out", tmp_path / "s.parquet", "--tokenizer", tmp_path / "missing"],
                           cwd=tmp_path)
    assert proc.returncode == 2
    assert_clean_failure(proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "--tokenizer" in errors[0]
