"""The eval library entry: ``evaluate_endpoint(EndpointEvalOptions)`` -> ``EvalResult``, against scripted servers on
127.0.0.1 (the model and the judge). What the pipeline's eval stage and any other non-CLI caller rely on: the result
object tells the accuracy, counts and failures, a rerun resumes, problems before any request raise
``EvalSetupError`` with the command's exit code, and the command's parser takes its defaults from the options."""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
from pathlib import Path

import pytest
from eval_rows import ROWS, model
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.evaluation import EndpointEvalOptions, EvalResult, EvalSetupError, evaluate_endpoint
from qwenlong_verl.evaluation.api import QA_METRICS, out_dir_lock
from qwenlong_verl.reward.scoring import QA_METRICS as SCORER_QA_METRICS


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def options(endpoint: str, data: Path, out: Path, **kw) -> EndpointEvalOptions:
    return EndpointEvalOptions(endpoint=endpoint, model="m", data=[str(data)], out_dir=str(out), max_input_tokens=0,
                               progress=False, retry_backoff_s=0.01, max_retries=0, **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_result_object_says_accuracy_counts_and_paths_and_a_rerun_resumes(tmp_path, data):
    out = tmp_path / "out"
    with FakeOpenAIServer(responder=model) as gen, FakeOpenAIServer(responder=lambda m: "VERDICT: YES") as judge:
        opts = options(gen.base_url, data, out, n_samples=2, judge_endpoint=judge.base_url, judge_model="j")
        result = evaluate_endpoint(opts)
        assert isinstance(result, EvalResult)
        # the judge is asked only where the rule says no: q2, whose 2 samples give one answer (asked once, deduplicated)
        assert gen.count == 6 and judge.count == 1
        assert result.complete and result.failed == [] and result.judge_failed == []
        assert (result.asked, result.reused, result.rows) == (6, 0, 3)
        assert result.accuracy == 100.0 and result.rule_accuracy == 75.0  # hotpotqa rule 50, docmath 100
        assert result.report_path == out / "report.json" and set(result.paths) == {"md", "json", "png"}
        on_disk = json.loads(result.report_path.read_text())
        assert on_disk["average"]["accuracy"] == result.accuracy and on_disk["complete"] is True
        assert on_disk["meta"]["judge"] == "j" and on_disk["n"] == 2

        again = evaluate_endpoint(opts)  # resumes: every sample is stored, nothing is asked
        assert gen.count == 6 and judge.count == 1
        assert (again.asked, again.reused, again.accuracy) == (0, 6, 100.0)


def test_judge_failures_make_the_result_incomplete_unless_accepted(tmp_path, data):
    with FakeOpenAIServer(responder=model) as gen, FakeOpenAIServer(fail_rate=1.0, fail_status=500) as judge:
        result = evaluate_endpoint(options(gen.base_url, data, tmp_path / "a", judge_endpoint=judge.base_url,
                                           judge_model="j"))
        assert not result.complete and [(i, s) for i, s, _ in result.judge_failed] == [("q2", 0)]
        assert "1 judge call(s) failed (q2#0" in result.failure_summary()
        accepted = evaluate_endpoint(options(gen.base_url, data, tmp_path / "b", judge_endpoint=judge.base_url,
                                             judge_model="j", allow_judge_failures=True))
    assert accepted.complete and accepted.report["judge_failures_accepted"] == 1
    assert accepted.accuracy == pytest.approx((50.0 + 100.0) / 2)  # q2 keeps its rule score 0


def test_problems_before_any_request_raise_setup_errors_with_the_commands_exit_code(tmp_path, data):
    down = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(EvalSetupError, match="--endpoint .* the model server is unreachable") as exc:
        evaluate_endpoint(options(down, data, tmp_path / "out"))
    assert exc.value.exit_code == 1 and not (tmp_path / "out" / "generations.jsonl").exists()

    a_file = tmp_path / "taken"
    a_file.write_text("precious\n")
    with FakeOpenAIServer(responder=model) as gen:
        with pytest.raises(EvalSetupError, match="is a file; eval writes a folder") as exc:
            evaluate_endpoint(options(gen.base_url, data, a_file))
        assert exc.value.exit_code == 2 and a_file.read_text() == "precious\n"
        with out_dir_lock(str(tmp_path / "busy")):  # another eval holds the folder
            with pytest.raises(EvalSetupError, match="in use by another qwenlong-verl eval") as exc:
                evaluate_endpoint(options(gen.base_url, data, tmp_path / "busy"))
        assert exc.value.exit_code == 2
        missing = tmp_path / "no" / "tokenizer"  # model_source's TokenizerLoadError, as the command's setup error
        with pytest.raises(EvalSetupError, match=r"--tokenizer '.*tokenizer': no such folder") as exc:
            evaluate_endpoint(dataclasses.replace(options(gen.base_url, data, tmp_path / "tok"),
                                                  tokenizer=str(missing), max_input_tokens=100))
        assert exc.value.exit_code == 2
        assert gen.count == 0


@pytest.mark.parametrize("values, message", [
    ({"concurrency": 0}, r"^concurrency must be in \[1, 1024\], got 0$"),
    ({"n_samples": 5000}, r"^n_samples must be in \[1, 1024\], got 5000$"),
    ({"top_p": 0}, r"^top_p must be in \(0, 1\], got 0$"),
    ({"timeout_s": 0}, r"^timeout_s must be in \[0.001, 86400.0\], got 0"),
    ({"qa_metric": "bleu"}, r"^qa_metric must be one of"),
    ({"judge_endpoint": "http://127.0.0.1:1/v1"}, "go together"),
    ({"endpoint": "localhost:8000"}, "endpoint must be an http:// or https:// URL"),
    ({"families": {"mybench": "poetry"}}, r"families.mybench: family must be one of"),
    ({"pass_ks": [0]}, "pass_ks must be integers from 1 to 1024"),
    ({"data": []}, "data is empty"),
])
def test_options_refuse_out_of_bounds_values(values, message):
    base = {"endpoint": "http://127.0.0.1:1/v1", "model": "m", "data": ["d.jsonl"], "out_dir": "o"}
    with pytest.raises(ValueError, match=message):
        EndpointEvalOptions(**{**base, **values})


def test_the_command_takes_defaults_and_bounds_from_the_options():
    """One source: the parser's defaults build exactly the dataclass defaults, and its bounds are the fields'."""
    from qwenlong_verl.commands.eval import options_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    required = ["eval", "--endpoint", "http://h:1/v1", "--model", "m", "--data", "d.jsonl", "--out", "o"]
    from_cli = options_from_args(parser.parse_args(required))
    assert from_cli == EndpointEvalOptions(endpoint="http://h:1/v1", model="m", data=["d.jsonl"], out_dir="o")
    flags = {"timeout_s": "--timeout", "retry_backoff_s": "--retry-backoff"}
    checked = 0
    for f in dataclasses.fields(EndpointEvalOptions):
        if "le" not in f.metadata:
            continue
        flag = flags.get(f.name, "--" + f.name.replace("_", "-"))
        top = f.metadata["le"]
        text = str(int(top)) if float(top).is_integer() else str(top)
        assert getattr(options_from_args(parser.parse_args([*required, flag, text])), f.name) == top, f.name
        with pytest.raises(SystemExit):  # one past the field's bound: refused by argparse, before any work
            parser.parse_args([*required, flag, str(int(top) + 1)])
        checked += 1
    assert checked >= 12
    assert set(QA_METRICS) == set(SCORER_QA_METRICS)
