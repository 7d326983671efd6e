"""``qwenlong-verl sft-data``: the output is checked before converting (never an input, a .parquet name) and written
whole; a failed run leaves an earlier output as it was."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from reliability_utils import UNEXPECTED, digest, run_cli

ROW = {"id": "t1", "benchmark": "hotpotqa", "question": "Capital?", "context": "Paris is the capital of France.",
       "answers": ["Paris"], "reasoning": "The text says Paris."}


@pytest.fixture
def triplets(tmp_path):
    path = tmp_path / "triplets.jsonl"
    path.write_text(json.dumps(ROW) + "\n")
    return path


@pytest.mark.parametrize("case, expect", [
    ("out_is_input", "is also an input"),
    ("csv", "writes .parquet files"),
    ("folder", "is a folder"),
])
def test_bad_out_is_refused_before_converting(tmp_path, triplets, caplog, case, expect):
    out = {"out_is_input": triplets, "csv": tmp_path / "sft.csv", "folder": tmp_path}[case]
    before = digest(triplets)
    with caplog.at_level(logging.ERROR):
        assert run_cli(["sft-data", "--input", triplets, "--out", out]) == 1
    assert expect in caplog.text and UNEXPECTED not in caplog.text
    assert digest(triplets) == before and not (tmp_path / "sft.csv").exists()


def test_output_written_whole_and_kept_on_failure(tmp_path, triplets, caplog):
    out = tmp_path / "sft.parquet"
    assert run_cli(["sft-data", "--input", triplets, "--out", out]) == 0
    assert len(pd.read_parquet(out)) == 1
    before = digest(out)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(ROW) + "\n{not json\n")
    with caplog.at_level(logging.ERROR):
        assert run_cli(["sft-data", "--input", broken, "--out", out]) == 1
    assert "broken.jsonl:2: not valid JSON" in caplog.text and UNEXPECTED not in caplog.text
    assert digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.jsonl", "sft.parquet", "triplets.jsonl"]
