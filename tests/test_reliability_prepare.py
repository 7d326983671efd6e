"""``qwenlong-verl prepare`` validates every row before tokenising: the error names ``file:line`` (or the row) and the
field; repairs are counted at WARNING; outputs are checked first and written whole; arbitrary rows never crash it."""

from __future__ import annotations

import json
import logging
import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_utils import UNEXPECTED, assert_clean_failure, digest, run_cli, run_cli_process
from strategies import any_json, any_text

GOOD = {"data_source": "hotpotqa", "prompt": [{"role": "user", "content": "Doc. Question?"}],
        "reward_model": {"style": "rule", "ground_truth": "Paris"}, "extra_info": {"index": 0, "split": "train"}}


def row(**changes):
    out = json.loads(json.dumps(GOOD))
    out["extra_info"]["index"] = changes.pop("index", 1)
    for key, value in changes.items():
        if value is DELETE:
            out.pop(key, None)
        else:
            out[key] = value
    return out


DELETE = object()


def write_jsonl(path, rows):
    # NaN is written as the bare token NaN (what pandas' to_json and many scripts produce)
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
    return path


def prepare(tmp_path, tokenizer_dir, rows, *extra, name="in.jsonl"):
    src = write_jsonl(tmp_path / name, [GOOD, *rows])
    out = tmp_path / "out.parquet"
    return run_cli(["prepare", src, "--out", out, "--tokenizer", tokenizer_dir, *extra]), src, out


# -- one bad row each: exit 1 before tokenising, the message names file:line and the field ---------------------------
BAD_ROWS = {
    "no_data_source": (row(data_source=DELETE), "in.jsonl:2, row 1 (extra_info.index=1): missing 'data_source'"),
    "null_data_source": (row(data_source=None), "missing 'data_source'"),
    "unknown_data_source": (row(data_source="mystery"), "unknown data_source 'mystery'"),
    "int_data_source": (row(data_source=7), "'data_source' must be a non-empty string, got int 7"),
    "nan_ground_truth": (row(reward_model={"ground_truth": math.nan}), "'reward_model.ground_truth' is NaN"),
    "null_ground_truth": (row(reward_model={"ground_truth": None}), "missing 'reward_model.ground_truth'"),
    "nested_ground_truth": (row(reward_model={"ground_truth": [["a", "b"]]}),
                            "'reward_model.ground_truth[0]' must be a string"),
    "dict_ground_truth": (row(reward_model={"ground_truth": {"a": 1}}),
                          "'reward_model.ground_truth' must be a string or a list of strings"),
    "bool_ground_truth": (row(reward_model={"ground_truth": True}), "got bool True"),
    "bad_json_extra_info": (row(extra_info='{"index": 3,'), "'extra_info' is a string that is not a JSON object"),
    "list_extra_info": (row(extra_info=[1, 2]), "'extra_info' must be an object, got list"),
    "bad_json_prompt": (row(prompt='[{"role": "user", "content": "x"'), "looks like a JSON chat list but does not"),
    "non_text_content": (row(prompt=[{"role": "user", "content": 5}]), "role and content must be strings"),
    "not_an_object": ([1, 2, 3], "in.jsonl:2, row 1: expected a JSON object, got list"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_row_is_named_before_tokenising(tmp_path, tiny_model_dir, caplog, monkeypatch, case):
    import qwenlong_verl.data.prepare as prep

    bad, expect = BAD_ROWS[case]

    def no_tokenising(*args, **kwargs):
        raise AssertionError("tokenised before validating")

    monkeypatch.setattr(prep, "_compute_lengths", no_tokenising)
    with caplog.at_level(logging.ERROR):
        rc, _, out = prepare(tmp_path, tiny_model_dir, [bad])
    assert rc == 1 and expect in caplog.text, caplog.text
    assert "--skip-invalid" in caplog.text and UNEXPECTED not in caplog.text
    assert not out.exists()


@pytest.mark.parametrize("rows, expect", [
    ([row(reward_model={"ground_truth": 5})],
     "in.jsonl:2: column 'reward_model.ground_truth' holds a number here but a string in "),
    ([row(index="b")], "column 'extra_info.index' holds a string here but a number"),
    ([row(extra_info={"index": 1, "split": {"a": 1}})], "column 'extra_info.split' holds a object here"),
    ([row(), row(index=2, reward_model={"ground_truth": ["x"]})], "in.jsonl:3: column 'reward_model.ground_truth'"),
])
def test_mixed_types_per_column_name_the_first_differing_row(tmp_path, tiny_model_dir, caplog, rows, expect):
    with caplog.at_level(logging.ERROR):
        rc, _, out = prepare(tmp_path, tiny_model_dir, rows)
    assert rc == 1 and expect in caplog.text, caplog.text
    assert not out.exists()


def test_truncated_jsonl_names_the_line(tmp_path, tiny_model_dir, caplog):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n" + json.dumps(row())[:25] + "\n")
    with caplog.at_level(logging.ERROR):
        assert run_cli(["prepare", src, "--out", tmp_path / "o.parquet", "--tokenizer", tiny_model_dir]) == 1
    assert "in.jsonl:2: not valid JSON" in caplog.text and "position" not in caplog.text


def test_non_utf8_input_names_the_line(tmp_path, tiny_model_dir, caplog):
    src = tmp_path / "in.jsonl"
    src.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"x": "\xff"}\n')
    with caplog.at_level(logging.ERROR):
        assert run_cli(["prepare", src, "--out", tmp_path / "o.parquet", "--tokenizer", tiny_model_dir]) == 1
    assert "in.jsonl:2: not UTF-8" in caplog.text


# -- repairs: made, counted at WARNING, never silent ----------------------------------------------------------------
def test_repairs_are_counted_and_lose_nothing(tmp_path, tiny_model_dir, caplog):
    rows = [
        row(index=1, extra_info=json.dumps({"index": 1, "question": "Q?", "split": "train"})),
        row(index=2, prompt=json.dumps([{"role": "user", "content": "Doc 2. Question?"}])),
        row(index=3, prompt="Plain text question?"),
        row(index=4, reward_model=json.dumps({"ground_truth": "Rome"})),
        row(index=5, prompt=[{"role": "user", "content": "half an emoji \ud83d"}]),
    ]
    with caplog.at_level(logging.WARNING):
        rc, _, out = prepare(tmp_path, tiny_model_dir, rows)
    assert rc == 0, caplog.text
    for text in ("repaired 1 row(s)/value(s): JSON-string extra_info parsed",
                 "repaired 1 row(s)/value(s): JSON-string prompts parsed into chat lists",
                 "repaired 1 row(s)/value(s): string prompts wrapped as one user message",
                 "repaired 1 row(s)/value(s): JSON-string reward_model parsed",
                 "repaired 1 row(s)/value(s): unencodable characters"):
        assert text in caplog.text
    df = pd.read_parquet(out)
    assert df["extra_info"][1]["question"] == "Q?" and df["extra_info"][1]["index"] == 1
    assert df["prompt"][2][0]["content"] == "Doc 2. Question?"
    assert df["reward_model"][4]["ground_truth"] == "Rome"


def test_skip_invalid_counts_and_warns_once(tmp_path, tiny_model_dir, caplog):
    with caplog.at_level(logging.WARNING):
        rc, _, out = prepare(tmp_path, tiny_model_dir, [row(data_source=None), row(index=2)], "--skip-invalid")
    assert rc == 0 and len(pd.read_parquet(out)) == 2
    assert caplog.text.count("missing 'data_source'") == 2  # the row's line and the summary, not repeated


def test_unknown_data_source_with_a_default_family(tmp_path, tiny_model_dir):
    rc, _, _ = prepare(tmp_path, tiny_model_dir, [row(data_source="mystery")], "--default-family", "qa")
    assert rc == 0
    rc, _, _ = prepare(tmp_path, tiny_model_dir, [row(data_source="mystery")], "--family", "mystery=math")
    assert rc == 0


# -- outputs and options ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, expect", [
    ("csv", "writes .parquet files; name the output 'out.parquet'"),
    ("out_is_input", "is also an input"),
    ("out_is_folder", "is a folder"),
])
def test_bad_out_fails_before_reading(tmp_path, tiny_model_dir, caplog, case, expect):
    src = write_jsonl(tmp_path / "in.parquet" if case == "out_is_input" else tmp_path / "in.jsonl", [GOOD])
    if case == "out_is_input":
        pd.DataFrame([GOOD]).to_parquet(src)
    out = {"csv": tmp_path / "out.csv", "out_is_input": src, "out_is_folder": tmp_path}[case]
    before = digest(src)
    with caplog.at_level(logging.ERROR):
        assert run_cli(["prepare", src, "--out", out, "--tokenizer", tiny_model_dir]) == 2
    assert expect in caplog.text and digest(src) == before


def test_failed_run_keeps_the_previous_output(tmp_path, tiny_model_dir, caplog):
    out = tmp_path / "out.parquet"
    pd.DataFrame([GOOD]).to_parquet(out)
    before = digest(out)
    with caplog.at_level(logging.ERROR):
        rc, _, _ = prepare(tmp_path, tiny_model_dir, [row(data_source=None)])
    assert rc == 1 and digest(out) == before
    assert "in.jsonl:2, row 1 (extra_info.index=1): missing 'data_source'" in caplog.text


@pytest.mark.parametrize("option, value", [("--workers", "0"), ("--chat-template-kwargs", "{bad"),
                                           ("--chat-template-kwargs", "[1]"), ("--family", "x=nope")])
def test_bad_option_values(tmp_path, tiny_model_dir, capsys, option, value):
    src = write_jsonl(tmp_path / "in.jsonl", [GOOD])
    assert run_cli(["prepare", src, "--out", tmp_path / "o.parquet", "--tokenizer", tiny_model_dir,
                    option, value]) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err


def test_missing_tokenizer_is_one_line(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [GOOD])
    proc = run_cli_process(["prepare", src, "--out", tmp_path / "o.parquet", "--tokenizer",
                            tmp_path / "no" / "model"], cwd=tmp_path)
    assert proc.returncode == 2
    assert_clean_failure(proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "--tokenizer" in errors[0] and "no such folder" in errors[0]


def test_long_prompts_are_warned_about(tmp_path, tiny_model_dir, caplog, monkeypatch):
    import qwenlong_verl.data.prepare as prep

    monkeypatch.setattr(prep, "LONG_PROMPT_TOKENS", 5)
    with caplog.at_level(logging.WARNING):
        rc, _, _ = prepare(tmp_path, tiny_model_dir, [])
    assert rc == 0 and "1 prompt(s) longer than 5 tokens" in caplog.text


# -- arbitrary rows: any outcome but an unexpected exception ---------------------------------------------------------
texts = any_text(10)  # lone surrogates too
json_values = any_json(texts)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]) | json_values,
                                           "content": texts | json_values}), max_size=2)
rows = st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "data_source": st.sampled_from(["hotpotqa", "docmath", "long_toc_choices", "nope"]) | json_values,
    "prompt": messages | texts | json_values,
    "reward_model": st.fixed_dictionaries({"ground_truth": texts | json_values}) | json_values,
    "extra_info": st.fixed_dictionaries({}, optional={"index": st.integers(0, 3) | json_values}) | json_values,
}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(rows, min_size=1, max_size=4), skip=st.booleans())
def test_arbitrary_rows_never_crash_prepare(tmp_path_factory, tiny_model_dir, caplog, data, skip):
    tmp = tmp_path_factory.mktemp("prepare_fuzz")
    src = tmp / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in data))
    out = tmp / "out.parquet"
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        rc = run_cli(["prepare", src, "--out", out, "--tokenizer", tiny_model_dir, "--index", "position",
                      *(["--skip-invalid"] if skip else [])])
    assert rc in (0, 1), caplog.text
    assert UNEXPECTED not in caplog.text, caplog.text
    assert out.exists() == (rc == 0)
    if rc == 0:
        assert 1 <= len(pd.read_parquet(out)) <= len(data)
