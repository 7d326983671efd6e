"""Eval input layout: JSONL/parquet loading, LongBench aliases, clear errors for bad rows, the verl converter."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from qwenlong_verl.data.synth import generate_docqa, write_rows
from qwenlong_verl.evaluation.data import (
    PROMPT_TEMPLATE,
    EvalDataError,
    convert_verl_file,
    load_file,
    load_rows,
    split_template,
)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_documented_layout_and_aliases(tmp_path):
    f = write_jsonl(tmp_path / "hotpot.jsonl", [
        {"id": "a", "benchmark": "hotpotqa", "question": "Who?", "context": "Doc A.", "answers": ["Ann", "Anne"]},
        {"_id": "b", "dataset": "hotpotqa", "input": "Where?", "context": "Doc B.", "answers": "Paris"},
        {"benchmark": "docmath", "data_source": "docmath", "question": "How much?", "context": "T", "answer": 12.5},
        {"data_source": "musique", "question": "Q?", "prompt": "my own full prompt", "answers": ["x"]},
    ])
    rows = load_file(f)
    assert [r.id for r in rows] == ["a", "b", "hotpot:3", "hotpot:4"]
    assert rows[0].answers == ("Ann", "Anne") and rows[0].data_source == "hotpotqa"
    assert rows[1].question == "Where?" and rows[1].benchmark == "hotpotqa" and rows[1].answers == ("Paris",)
    assert rows[2].answers == ("12.5",) and rows[2].data_source == "docmath"
    assert rows[3].benchmark == "musique" and rows[3].user_message() == "my own full prompt"
    assert rows[0].user_message() == PROMPT_TEMPLATE.format(context="Doc A.", question="Who?")


def test_parquet_same_as_jsonl(tmp_path):
    recs = [{"id": f"r{i}", "benchmark": "qasper", "question": f"q{i}?", "context": "doc " * i,
             "answers": [f"a{i}", f"b{i}"]} for i in range(5)]
    pd.DataFrame(recs).to_parquet(tmp_path / "q.parquet")
    assert load_file(tmp_path / "q.parquet") == load_file(write_jsonl(tmp_path / "q.jsonl", recs))


@pytest.mark.parametrize("row, message", [
    ({"benchmark": "b", "context": "c", "answers": ["a"]}, "missing 'question'"),
    ({"benchmark": "b", "question": "q", "answers": ["a"]}, "missing 'context'"),
    ({"benchmark": "b", "question": "q", "context": "c"}, "missing 'answers'"),
    ({"benchmark": "b", "question": "q", "context": "c", "answers": []}, "empty list"),
    ({"benchmark": "b", "question": "q", "context": "c", "answers": ["ok", {"x": 1}]}, r"answers\[1\]"),
    ({"benchmark": "b", "question": "q", "context": "c", "answers": [" "]}, r"answers\[0\] is empty"),
    ({"question": "q", "context": "c", "answers": ["a"]}, "needs 'benchmark' or 'data_source'"),
    ({"benchmark": "b", "question": 3, "context": "c", "answers": ["a"]}, "'question' must be a string"),
    ({"benchmark": "b", "question": "q", "input": "q2", "context": "c", "answers": ["a"]}, "both 'input'"),
    (["not", "an", "object"], "must be a JSON object"),
])
def test_bad_row_is_named(tmp_path, row, message):
    good = {"benchmark": "b", "question": "q", "context": "c", "answers": ["a"]}
    f = write_jsonl(tmp_path / "bad.jsonl", [good, good, row])
    with pytest.raises(EvalDataError, match=message) as err:
        load_file(f)
    assert f"{f}:3" in str(err.value)


def test_file_level_errors(tmp_path):
    f = tmp_path / "broken.jsonl"
    f.write_text('{"benchmark": "b", "question": "q", "context": "c", "answers": ["a"]}\n{"oops": \n')
    with pytest.raises(EvalDataError, match=r"broken.jsonl:2: not valid JSON"):
        load_file(f)
    with pytest.raises(EvalDataError, match="no such file"):
        load_file(tmp_path / "missing.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(EvalDataError, match="unknown file type"):
        load_file(tmp_path / "x.csv")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(EvalDataError, match="no rows"):
        load_file(tmp_path / "empty.jsonl")


def test_duplicate_ids_across_files(tmp_path):
    row = {"id": "same", "benchmark": "b", "question": "q", "context": "c", "answers": ["a"]}
    a = write_jsonl(tmp_path / "a.jsonl", [row])
    b = write_jsonl(tmp_path / "b.jsonl", [{**row, "benchmark": "other"}])
    with pytest.raises(EvalDataError, match=r"b.jsonl:1: duplicate id 'same' \(first at .*a.jsonl:1\)"):
        load_rows([a, b])
    assert len(load_rows([a])) == 1


def test_verl_rows_from_synth_convert_exactly(tmp_path):
    synth = generate_docqa(9, min_tokens=200, max_tokens=400, seed=3, kinds=("multihop", "numeric", "choice"))
    src = tmp_path / "train.parquet"
    write_rows(synth, str(src))
    rows = load_file(src)  # recognised by its columns
    assert len(rows) == 9
    for row, s in zip(rows, synth, strict=True):
        assert row.id == f"{s['data_source']}:{s['extra_info']['index']}"
        assert row.data_source == row.benchmark == s["data_source"]
        assert row.question == s["extra_info"]["question"]
        assert row.answers == (s["reward_model"]["ground_truth"],)
        # the model is asked exactly what training showed it
        assert row.user_message() == s["prompt"][0]["content"]
        assert row.prompt is None and row.context  # recovered into document + question, not kept verbatim
        assert row.extra["kind"] == s["extra_info"]["kind"]
    dst = tmp_path / "eval.jsonl"
    assert convert_verl_file(src, dst) == 9
    again = load_rows([dst])
    assert [(r.id, r.question, r.answers, r.user_message()) for r in again] == \
        [(r.id, r.question, r.answers, r.user_message()) for r in rows]


def test_verl_rows_other_prompt_and_errors(tmp_path):
    base = {"data_source": "musique", "reward_model": {"style": "rule", "ground_truth": "Paris"},
            "extra_info": {"index": 7, "question": "Where?"}}
    free = {**base, "prompt": [{"role": "user", "content": "Free-form prompt, no template. Where?"}]}
    rows = load_file(write_jsonl(tmp_path / "free.jsonl", [free]))
    assert rows[0].prompt == "Free-form prompt, no template. Where?" and rows[0].question == "Where?"
    assert rows[0].id == "musique:7"

    no_q = {**free, "extra_info": {"index": 1}}
    with pytest.raises(EvalDataError, match=r"no_q.jsonl:1: cannot find the question"):
        load_file(write_jsonl(tmp_path / "no_q.jsonl", [no_q]))
    no_gt = {**free, "reward_model": {"style": "rule"}}
    with pytest.raises(EvalDataError, match=r"no_gt.jsonl:1: verl row needs 'reward_model.ground_truth'"):
        load_file(write_jsonl(tmp_path / "no_gt.jsonl", [no_gt]))
    system = {**free, "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}
    with pytest.raises(EvalDataError, match="only one user turn"):
        load_file(write_jsonl(tmp_path / "sys.jsonl", [system]))


def test_split_template_roundtrip():
    for ctx in ["plain", "\nleading newline", "trailing newline\n", "has </text> inside", ""]:
        text = PROMPT_TEMPLATE.format(context=ctx, question="Which one?")
        assert split_template(text) == (ctx, "Which one?")
    assert split_template("no template here") is None
