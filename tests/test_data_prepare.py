"""`prepare`: validation naming rows, skip-and-count, stable unique indices, verl-identical stored lengths."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from qwenlong_verl.data.prepare import DataPrepError, content_index, prepare_dataset
from qwenlong_verl.data.synth import generate_docqa


def _write_jsonl(path, rows):
    with open(path, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def _rows(n=5, seed=0):
    rows = generate_docqa(n, min_tokens=300, max_tokens=900, seed=seed)
    for r in rows:
        r["extra_info"].pop("index")
    return rows


def test_lengths_match_verl_and_columns_written(tmp_path, tiny_model_dir, tiny_tokenizer):
    from verl.utils.tokenizer.tokenizer import normalize_token_ids

    src = tmp_path / "in.parquet"
    pd.DataFrame(_rows(6)).to_parquet(src)
    out = tmp_path / "out.parquet"
    report = prepare_dataset(src, out, str(tiny_model_dir), progress=False)
    assert (report.input_rows, report.output_rows, report.skipped) == (6, 6, [])
    df = pd.read_parquet(out)
    assert list(df["extra_info"].map(lambda e: e["index"])) == list(range(6))
    for prompt, length, extra in zip(df["prompt"], df["prompt_length"], df["extra_info"], strict=True):
        msgs = [dict(m) for m in prompt]
        want = len(normalize_token_ids(tiny_tokenizer.apply_chat_template(msgs, add_generation_prompt=True,
                                                                          tokenize=True)))
        assert length == want == extra["prompt_length"]
    assert report.length_max == df["prompt_length"].max()


def test_missing_prompt_or_ground_truth_names_the_row(tmp_path, tiny_model_dir):
    rows = _rows(4)
    rows[2]["reward_model"] = {"style": "rule", "ground_truth": ""}
    del rows[3]["prompt"]
    src = tmp_path / "in.jsonl"
    _write_jsonl(src, rows)
    with pytest.raises(DataPrepError, match=r"row 2: missing 'reward_model.ground_truth'.*--skip-invalid"):
        prepare_dataset(src, tmp_path / "o.parquet", str(tiny_model_dir), progress=False)
    report = prepare_dataset(src, tmp_path / "o.parquet", str(tiny_model_dir), skip_invalid=True, progress=False)
    assert report.output_rows == 2 and [i for i, _ in report.skipped] == [2, 3]
    assert "missing 'prompt'" in report.skipped[1][1]
    assert "2 skipped" in report.summary()
    # positions of the input survive skipping: indices stay those of the source rows
    assert list(pd.read_parquet(tmp_path / "o.parquet")["extra_info"].map(lambda e: e["index"])) == [0, 1]


def test_bad_message_shape_is_an_error(tmp_path, tiny_model_dir):
    rows = _rows(2)
    rows[1]["prompt"] = [{"text": "no role"}]
    src = tmp_path / "in.jsonl"
    _write_jsonl(src, rows)
    with pytest.raises(DataPrepError, match=r"row 1: 'prompt\[0\]' must be a \{role, content\} message"):
        prepare_dataset(src, tmp_path / "o.parquet", str(tiny_model_dir), progress=False)


def test_string_prompt_is_wrapped_and_counted(tmp_path, tiny_model_dir):
    rows = _rows(2)
    rows[0]["prompt"] = rows[0]["prompt"][0]["content"]
    src = tmp_path / "in.jsonl"
    _write_jsonl(src, rows)
    report = prepare_dataset(src, tmp_path / "o.parquet", str(tiny_model_dir), progress=False)
    assert report.converted_string_prompts == 1
    df = pd.read_parquet(tmp_path / "o.parquet")
    assert df["prompt"][0][0]["role"] == "user"


def test_index_modes_and_duplicates(tmp_path, tiny_model_dir):
    rows = _rows(3)
    for r, idx in zip(rows, ["a", "b", "c"], strict=True):
        r["extra_info"]["index"] = idx
    src = tmp_path / "in.jsonl"
    _write_jsonl(src, rows)
    prepare_dataset(src, tmp_path / "keep.parquet", str(tiny_model_dir), progress=False)
    assert list(pd.read_parquet(tmp_path / "keep.parquet")["extra_info"].map(lambda e: e["index"])) == ["a", "b", "c"]
    prepare_dataset(src, tmp_path / "hash.parquet", str(tiny_model_dir), index_mode="hash", progress=False)
    hashed = list(pd.read_parquet(tmp_path / "hash.parquet")["extra_info"].map(lambda e: e["index"]))
    assert hashed == [content_index(r) for r in rows] and len(set(hashed)) == 3
    # a content hash does not depend on row order
    _write_jsonl(tmp_path / "rev.jsonl", rows[::-1])
    prepare_dataset(tmp_path / "rev.jsonl", tmp_path / "rev.parquet", str(tiny_model_dir), index_mode="hash",
                    progress=False)
    assert list(pd.read_parquet(tmp_path / "rev.parquet")["extra_info"].map(lambda e: e["index"])) == hashed[::-1]

    rows[2]["extra_info"]["index"] = "a"
    _write_jsonl(src, rows)
    with pytest.raises(DataPrepError, match=r"rows 0 and 2 share extra_info.index='a'"):
        prepare_dataset(src, tmp_path / "dup.parquet", str(tiny_model_dir), progress=False)
    prepare_dataset(src, tmp_path / "pos.parquet", str(tiny_model_dir), index_mode="position", progress=False)
    assert list(pd.read_parquet(tmp_path / "pos.parquet")["extra_info"].map(lambda e: e["index"])) == [0, 1, 2]


def test_parallel_workers_give_the_same_lengths(tmp_path, tiny_model_dir):
    src = tmp_path / "in.parquet"
    pd.DataFrame(_rows(6, seed=3)).to_parquet(src)
    prepare_dataset(src, tmp_path / "a.parquet", str(tiny_model_dir), progress=False)
    from qwenlong_verl.data.prepare import compute_lengths

    prompts = list(pd.read_parquet(src)["prompt"])
    par = compute_lengths(str(tiny_model_dir), prompts, num_workers=2, chunk_size=2, progress=False)
    assert par == list(pd.read_parquet(tmp_path / "a.parquet")["prompt_length"])


def test_cli(tmp_path, tiny_model_dir, caplog):
    from qwenlong_verl.cli import main

    rows = _rows(3)
    del rows[1]["reward_model"]
    src = tmp_path / "in.jsonl"
    _write_jsonl(src, rows)
    out = tmp_path / "out.parquet"
    assert main(["prepare", str(src), "--out", str(out), "--tokenizer", str(tiny_model_dir)]) == 1
    assert "in.jsonl:2, row 1: missing 'reward_model.ground_truth'" in caplog.text and "--skip-invalid" in caplog.text
    assert not out.exists()
    assert main(["prepare", str(src), "--out", str(out), "--tokenizer", str(tiny_model_dir), "--skip-invalid"]) == 0
    assert len(pd.read_parquet(out)) == 2
