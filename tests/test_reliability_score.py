"""``qwenlong-verl score`` under bad paths, a faulty judge, broken text and arbitrary rows: the exit code tells the
truth, the message names the problem, no traceback, and no file is damaged."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_utils import UNEXPECTED, assert_clean_failure, closed_port, digest, run_cli, run_cli_process
from strategies import any_json, any_text

ROWS = [
    {"id": "a", "data_source": "hotpotqa", "question": "Capital of France?", "response": "The answer is Paris.",
     "ground_truth": "Paris"},
    {"id": "b", "data_source": "musique", "question": "Who?", "response": "The answer is Bob.",
     "ground_truth": "Robert"},  # rule 0: the judge is asked
    {"id": "c", "data_source": "docmath", "question": "How much?", "response": "The answer is 12.",
     "ground_truth": "13"},  # rule 0: the judge is asked
]


def _write(tmp_path: Path, rows=ROWS, name="rows.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- output paths: refused before any scoring; nothing is touched ---------------------------------------------------
@pytest.mark.parametrize("case, expect", [
    ("output_is_input", "is also an input"),
    ("json_is_input", "is also an input"),
    ("output_is_folder", "is a folder"),
    ("output_parent_is_file", "is a file, not a folder"),
    ("output_equals_json", "both write"),
])
def test_bad_output_paths_fail_before_scoring(tmp_path, caplog, case, expect):
    src = _write(tmp_path)
    before = digest(src)
    other = tmp_path / "other.json"
    args = {
        "output_is_input": ["-o", src],
        "json_is_input": ["--json", src],
        "output_is_folder": ["-o", tmp_path],
        "output_parent_is_file": ["-o", src / "x.jsonl"],
        "output_equals_json": ["-o", other, "--json", other],
    }[case]
    with FakeOpenAIServer(responder=lambda m: "VERDICT: YES") as judge, caplog.at_level(logging.ERROR):
        rc = run_cli(["score", src, "--judge-url", judge.base_url, "--no-progress", *args])
        assert judge.count == 0  # refused before the first judge request
    assert rc == 2
    assert expect in caplog.text and UNEXPECTED not in caplog.text
    assert digest(src) == before and not other.exists()


def test_failed_scoring_leaves_an_existing_output_alone(tmp_path, caplog):
    bad = _write(tmp_path, [*ROWS, {"data_source": "mystery", "response": "x", "ground_truth": "y"}])
    out = tmp_path / "scored.jsonl"
    out.write_text("earlier results\n")
    with caplog.at_level(logging.ERROR):
        assert run_cli(["score", bad, "-o", out, "--no-progress"]) == 1
    assert "row 3: unknown data_source 'mystery'" in caplog.text and UNEXPECTED not in caplog.text
    assert out.read_text() == "earlier results\n"


def test_lone_surrogate_rows_are_scored_and_written_whole(tmp_path, caplog):
    rows = [dict(ROWS[0], response="The answer is Paris. \ud83d"), dict(ROWS[0], id="z", question="\udc80?")]
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))  # json escapes: "\ud83d" read back as a lone half
    out = tmp_path / "scored.jsonl"
    out.write_text("old\n")
    with caplog.at_level(logging.WARNING):
        assert run_cli(["score", src, "-o", out, "--json", tmp_path / "s.json", "--no-progress"]) == 0
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(scored) == 2 and scored[0]["score"] == 1.0 and "\ufffd" in scored[0]["response"]
    assert "2 unencodable character(s)" in caplog.text


# -- a faulty judge: exit 1 with the ids and the fix, unless the user accepts rule-only -----------------------------
JUDGE_FAULTS = {
    "down": None,  # nothing listens
    "http_500": {"fail_rate": 1.0, "fail_status": 500},
    "garbage": {"garbage_rate": 1.0},
    "no_verdict": {"responder": lambda m: "I am not sure."},
}


@pytest.mark.parametrize("fault, allow", [(f, a) for f in JUDGE_FAULTS for a in (False, True)
                                          if (f, a) != ("down", False)])  # down + strict: refused up front (below)
def test_judge_failures_make_the_exit_code_non_zero(tmp_path, caplog, fault, allow):
    src = _write(tmp_path)
    out, summary = tmp_path / "scored.jsonl", tmp_path / "summary.json"
    behaviour = JUDGE_FAULTS[fault]
    extra = ["--allow-judge-failures"] if allow else []
    common = ["score", src, "-o", out, "--json", summary, "--no-progress", "--judge-retries", "0",
              "--judge-timeout", "5", *extra]
    with caplog.at_level(logging.WARNING):
        if behaviour is None:
            rc = run_cli([*common, "--judge-url", f"http://127.0.0.1:{closed_port()}/v1"])
        else:
            with FakeOpenAIServer(**behaviour) as judge:
                rc = run_cli([*common, "--judge-url", judge.base_url])
    assert rc == (0 if allow else 1)
    assert "the judge call failed for 2 of 3 row(s) (b, c" in caplog.text
    if not allow:
        assert "--allow-judge-failures" in caplog.text and "rerun" in caplog.text.lower()
    # the outputs are complete either way, and say which rows lack a verdict
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["judge_failed"] for r in scored] == [False, True, True]
    assert json.loads(summary.read_text())["judge_failed_rows"] == 2
    assert UNEXPECTED not in caplog.text


def test_a_judge_that_is_down_is_named_before_scoring(tmp_path, caplog):
    src = _write(tmp_path)
    out = tmp_path / "scored.jsonl"
    out.write_text("earlier\n")
    url = f"http://user:pw@127.0.0.1:{closed_port()}/v1"
    with caplog.at_level(logging.ERROR):
        assert run_cli(["score", src, "-o", out, "--judge-url", url, "--no-progress"]) == 1
    assert "the judge is unreachable" in caplog.text and "--allow-judge-failures" in caplog.text
    assert "pw@" not in caplog.text and UNEXPECTED not in caplog.text
    assert out.read_text() == "earlier\n"


def test_a_working_judge_exits_0(tmp_path):
    src = _write(tmp_path)
    with FakeOpenAIServer(responder=lambda m: "VERDICT: NO") as judge:
        assert run_cli(["score", src, "--judge-url", judge.base_url, "--no-progress"]) == 0
        assert judge.count == 2


def test_judge_url_without_path_gets_v1_like_eval(tmp_path):
    src = _write(tmp_path)
    with FakeOpenAIServer(responder=lambda m: "VERDICT: YES") as judge:
        assert run_cli(["score", src, "--judge-url", f"http://127.0.0.1:{judge.port}", "--no-progress"]) == 0
        assert judge.count == 2 and judge.outcomes["ok"] == 2


# -- option values refused by argparse (exit 2, the option named) ----------------------------------------------------
@pytest.mark.parametrize("option, value", [
    ("--judge-timeout", "0"), ("--judge-timeout", "-1"), ("--judge-timeout", "nan"),
    ("--judge-concurrency", "0"), ("--judge-retries", "-1"), ("--judge-url", "not-a-url"),
    ("--judge-url", "ftp://host/v1"), ("--judge-url", "http://host:port/v1"),
])
def test_bad_option_values(tmp_path, capsys, option, value):
    src = _write(tmp_path)
    assert run_cli(["score", src, option, value]) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err


def test_ctrl_c_says_nothing_was_written(tmp_path, monkeypatch, capsys):
    import qwenlong_verl.commands.score as score

    async def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(score, "_score", interrupted)
    out = tmp_path / "scored.jsonl"
    assert run_cli(["score", _write(tmp_path), "-o", out]) == 130
    assert "nothing was written" in capsys.readouterr().err and not out.exists()


def test_as_a_user_sees_it(tmp_path):
    """Subprocess: the judge fails every call; one summary line, exit 1, no traceback, no verl start-up noise."""
    src = _write(tmp_path)
    with FakeOpenAIServer(fail_rate=1.0) as judge:
        proc = run_cli_process(["score", src, "--no-progress", "--judge-retries", "0", "--judge-url",
                                judge.base_url], cwd=tmp_path)
    assert proc.returncode == 1
    assert_clean_failure(proc.stderr)
    assert "the judge call failed for 2 of 3 row(s)" in proc.stderr
    assert "No supported accelerator" not in proc.stderr and "engine is not available" not in proc.stderr


# -- arbitrary rows: any outcome but an unexpected exception ---------------------------------------------------------
texts = any_text(12)  # lone surrogates too
json_values = any_json(texts)
row_strategy = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={
        "data_source": st.sampled_from(["hotpotqa", "docmath", "long_toc_choices", "nope", ""]) | json_values,
        "question": json_values, "response": texts | json_values,
        "ground_truth": texts | json_values,
        "reward_model": st.fixed_dictionaries({"ground_truth": json_values}) | json_values,
        "extra_info": json_values}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row_strategy, min_size=1, max_size=4))
def test_arbitrary_rows_never_crash_score(tmp_path_factory, caplog, rows):
    tmp = tmp_path_factory.mktemp("score_fuzz")
    src = tmp / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp / "out.jsonl"
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        rc = run_cli(["score", src, "-o", out, "--no-progress"])
    assert rc in (0, 1), caplog.text
    assert UNEXPECTED not in caplog.text, caplog.text
    if rc == 0:
        assert len(out.read_text().splitlines()) == len(rows)
    else:
        assert not out.exists()
