"""``qwenlong-verl judge-check`` and its library (:mod:`qwenlong_verl.reward.judge_check`) against the scripted
OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.cli import main as cli_main
from qwenlong_verl.reward.judge_check import CASES, Case, format_reports, run_mode

TRUTH = {(c.question, c.answer, c.gold): c.equivalent for c in CASES}


def _case(messages):
    user = messages[-1]["content"]
    q = user.split("Question: ", 1)[1].split("\n", 1)[0]
    g = user.split("Reference answer: ", 1)[1].split("\n", 1)[0]
    a = user.split("Candidate answer: ", 1)[1]
    return TRUTH[(q, a, g)]


def oracle(messages) -> str:
    return "Compared.\nVERDICT: YES" if _case(messages) else "Compared.\nVERDICT: NO"


def oracle_logprobs(messages):
    return [("YES", 0.95), ("NO", 0.05)] if _case(messages) else [("NO", 0.9), (" yes", 0.1)]


def test_builtin_set_is_balanced_and_distinct():
    assert 20 <= len(CASES) <= 30
    eq = sum(c.equivalent for c in CASES)
    assert abs(eq - (len(CASES) - eq)) <= 1
    assert len({(c.question, c.answer, c.gold) for c in CASES}) == len(CASES)


def test_a_perfect_judge_in_both_modes(tmp_path, capsys):
    with FakeOpenAIServer(responder=oracle, logprobs=oracle_logprobs, model="served-judge") as srv:
        out = tmp_path / "check.json"
        rc = cli_main(["judge-check", "--url", srv.base_url, "--json", str(out)])
        bodies = srv.bodies()
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["model"] == "served-judge"  # taken from GET /v1/models
    gen, lp = report["modes"]["generate"], report["modes"]["logprob"]
    assert gen["accuracy"] == lp["accuracy"] == 1.0 and gen["failure_rate"] == lp["failure_rate"] == 0.0
    assert gen["tokens_requested_per_call"] == 512 and lp["tokens_requested_per_call"] == 1
    assert lp["tokens_received_per_call"] == 1 and gen["tokens_received_per_call"] == 5  # "Compared.\nVERDICT: YES"
    assert lp["logprob_verdicts"] == len(CASES)
    assert len(bodies) == 2 * len(CASES) and all(b["model"] == "served-judge" for b in bodies)
    table = capsys.readouterr().out
    assert "generate" in table and "logprob" in table and "100.0%" in table


def test_a_yes_man_judge_is_caught(tmp_path, capsys):
    with FakeOpenAIServer(default_reply="They look similar.\nVERDICT: YES") as srv:
        rc = cli_main(["judge-check", "--url", srv.base_url, "--mode", "logprob", "--min-accuracy", "0.9",
                       "--json", "-", "--show-wrong"])
    captured = capsys.readouterr()
    assert rc == 1 and "below --min-accuracy" in captured.err
    lp = json.loads(captured.out)["modes"]["logprob"]
    not_equivalent = sum(not c.equivalent for c in CASES)
    assert lp["false_yes"] == not_equivalent and lp["false_no"] == 0
    assert lp["accuracy"] == pytest.approx(1 - not_equivalent / len(CASES))
    # the server sent no logprobs: the mode fell back to generate and says so (every request in flight by then)
    assert lp["logprob_verdicts"] == 0 and 1 <= lp["fell_back_to_generate"] <= len(CASES)
    assert "fell back to generate" in captured.err and "[logprob] hedge between candidates" in captured.err


def test_parse_failures_are_reported(capsys):
    with FakeOpenAIServer(default_reply="I think they are maybe similar, hard to say.") as srv:
        assert cli_main(["judge-check", "--url", srv.base_url, "--mode", "generate", "--json", "-"]) == 0
    gen = json.loads(capsys.readouterr().out)["modes"]["generate"]
    assert gen["failure_rate"] == 1.0 and gen["parse_failures"] == len(CASES) and gen["transport_failures"] == 0


def test_unreachable_endpoint_is_one_line_and_non_zero():
    with FakeOpenAIServer() as srv:
        url = srv.base_url  # free again once the server stops
    proc = subprocess.run([sys.executable, "-m", "qwenlong_verl.cli", "judge-check", "--url", url, "--timeout", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO"))
             and "warn" not in ln.lower()]
    assert len(lines) == 1 and "cannot reach the judge" in lines[0] and url.rsplit("/v1", 1)[0] in lines[0]
    assert proc.stdout == ""


def test_every_request_failing_is_non_zero(capsys):
    with FakeOpenAIServer(fail_rate=1.0) as srv:
        rc = cli_main(["judge-check", "--url", srv.base_url, "--mode", "generate", "--timeout", "2"])
    assert rc == 1 and "every request" in capsys.readouterr().err


def test_the_library_runs_a_mode_on_its_own_cases():
    """No argparse: a caller gives its own pairs and gets the report; the wrong verdicts are kept with the case."""
    cases = (Case("Q1?", "a", "a", True, "same"), Case("Q2?", "b", "c", False, "different"))
    with FakeOpenAIServer(default_reply="VERDICT: YES") as srv:
        report = asyncio.run(run_mode(srv.base_url, "j", "generate", cases, timeout_s=5, concurrency=2,
                                      api_key_env=None))
    assert (report.mode, report.cases, report.correct, report.false_yes, report.false_no) == ("generate", 2, 1, 1, 0)
    assert report.accuracy == 0.5 and report.failures == 0 and report.http_requests == 2
    assert [w["kind"] for w in report.wrong] == ["different"] and report.wrong[0]["verdict"] is True
    assert format_reports([report]).splitlines()[2].split()[:3] == ["generate", "50.0%", "1"]
