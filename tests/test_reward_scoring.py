"""HybridScorer (max(rule, judge)), the custom-reward-function entry points, and ``qwenlong-verl score``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pandas as pd
import pytest
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.cli import main as cli_main
from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions
from qwenlong_verl.reward.scoring import HybridScorer, RowError, ScoreOptions, compute_score_with_judge


def _responder(messages):
    user = messages[-1]["content"]
    return "Same.\nVERDICT: YES" if ("Lutetia" in user or "twelve and a half" in user) else "Differ.\nVERDICT: NO"


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=_responder) as srv:
        yield srv


ROWS = [
    {"data_source": "musique", "question": "Capital?", "response": "<think>.</think>The answer is Paris.",
     "ground_truth": "Paris"},
    {"data_source": "musique", "question": "Capital?", "response": "<think>.</think>The answer is Lutetia.",
     "ground_truth": "Paris"},
    {"data_source": "musique", "question": "Capital?", "response": "<think>.</think>The answer is Lutetia.",
     "ground_truth": "Paris"},
    {"data_source": "docmath", "question": "Growth?", "response": "<think>.</think>The answer is twelve and a half %.",
     "ground_truth": "12.5"},
    {"data_source": "long_toc_choices", "question": "Which?", "response": "<think>.</think>The answer is (A).",
     "ground_truth": "B"},
    {"data_source": "hotpotqa", "question": "Capital?", "response": "<think>.</think>The answer is Rome.",
     "ground_truth": ["Paris", "City of Light"]},
]


def _score_rows(server, rows, **opts):
    async def run():
        client = JudgeClient(JudgeOptions(base_url=server.base_url, max_retries=0))
        try:
            return await HybridScorer(ScoreOptions(**opts), client).score_many(rows), client
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_hybrid_score_is_max_of_rule_and_judge(server):
    scores, client = _score_rows(server, ROWS)
    assert [s.score for s in scores] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert [s.rule_score for s in scores] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert [s.judge_called for s in scores] == [False, True, True, True, False, True]
    assert [s.acc for s in scores] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert scores[4].family == "choice" and not scores[4].judge_called  # multiple choice is regex-only
    assert server.count == 3  # the two identical Lutetia rows cost one request
    assert sum(s.judge_cached for s in scores) == 1
    assert any("Reference answer: Paris OR City of Light" in b["messages"][1]["content"] for b in server.bodies())
    assert client.stats.requests == 3


def test_judge_families_and_rule_only(server):
    scores, _ = _score_rows(server, ROWS, judge_families=["math"])
    assert [s.judge_called for s in scores] == [False, False, False, True, False, False]
    rule_only = asyncio.run(HybridScorer(ScoreOptions()).score_many(ROWS))
    assert [s.score for s in rule_only] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert server.count == 1


def test_no_answer_means_no_judge(server):
    rows = [dict(ROWS[1], response="The answer is Lutetia.")]  # no </think> under "require"
    scores, _ = _score_rows(server, rows)
    assert scores[0].score == 0.0 and not scores[0].judge_called and server.count == 0


def test_bad_rows_are_named_before_any_request(server):
    rows = [ROWS[0], {"data_source": "musique", "question": "q", "response": "r"}, ROWS[1]]
    with pytest.raises(RowError, match=r"row 1: missing key 'ground_truth'"):
        _score_rows(server, rows)
    rows = [ROWS[0], dict(ROWS[1], data_source="mystery")]
    with pytest.raises(RowError, match=r"row 1: unknown data_source 'mystery'"):
        _score_rows(server, rows)
    rows = [dict(ROWS[0], ground_truth=[])]
    with pytest.raises(RowError, match=r"row 0: data_source 'musique': ground truth is empty"):
        _score_rows(server, rows)
    assert server.count == 0


def test_compute_score_with_judge(server):
    out = asyncio.run(compute_score_with_judge(
        "musique", "<think>.</think>The answer is Lutetia", "Paris", extra_info={"question": "Capital?"},
        judge={"base_url": server.base_url}, reward_router_address=None))
    assert out["score"] == 1.0 and out["rule_score"] == 0.0 and out["judge_called"] == 1.0
    assert "Question: Capital?" in server.bodies()[0]["messages"][1]["content"]


def _write_inputs(tmp_path):
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    # verl RL layout in parquet: reward_model.ground_truth and extra_info.question
    verl_rows = [{"data_source": r["data_source"], "response": r["response"],
                  "reward_model": {"ground_truth": r["ground_truth"] if isinstance(r["ground_truth"], list)
                                   else [r["ground_truth"]]},
                  "extra_info": {"question": r["question"]}} for r in ROWS]
    parquet = tmp_path / "rows.parquet"
    pd.DataFrame(verl_rows).to_parquet(parquet)
    return jsonl, parquet


def test_score_command_with_judge(server, tmp_path, capsys):
    jsonl, parquet = _write_inputs(tmp_path)
    out_rows, out_json = tmp_path / "scored.jsonl", tmp_path / "summary.json"
    rc = cli_main(["score", str(jsonl), "--judge-url", server.base_url, "-o", str(out_rows), "--json",
                   str(out_json), "--no-progress"])
    assert rc == 0
    table = capsys.readouterr().out
    assert "musique" in table and "ALL" in table and "sub_em" in table
    scored = [json.loads(line) for line in out_rows.read_text().splitlines()]
    assert [r["score"] for r in scored] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert scored[1]["question"] == "Capital?" and scored[1]["judge_called"] is True
    summary = json.loads(out_json.read_text())
    assert summary["summary"]["ALL"]["rows"] == 6
    assert summary["summary"]["ALL"]["score"] == pytest.approx(400 / 6)
    assert summary["summary"]["musique"]["rule_acc"] == pytest.approx(100 / 3)
    assert summary["summary"]["musique"]["score"] == 100.0
    assert summary["judge"]["requests"] == 3

    # the parquet in verl's layout gives the same scores, without a judge only the rule part
    rc = cli_main(["score", str(parquet), "--json", "-", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0
    doc = json.loads(captured.out)
    assert doc["judge"] is None and doc["summary"]["ALL"]["score"] == pytest.approx(100 / 6)
    assert "data_source" in captured.err  # the table moved to stderr


def test_score_command_errors(tmp_path, caplog):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    assert cli_main(["score", str(bad), "--no-progress"]) == 1
    assert "bad.jsonl:2: not valid JSON" in caplog.text
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps(dict(ROWS[0], data_source="mystery")) + "\n")
    assert cli_main(["score", str(unknown), "--no-progress"]) == 1
    assert "row 0: unknown data_source 'mystery'" in caplog.text
    assert cli_main(["score", str(unknown), "--default-family", "qa", "--no-progress"]) == 0
    assert cli_main(["score", str(unknown), "--family", "mystery=qa", "--no-progress"]) == 0


def test_score_command_installed_entry_point(tmp_path):
    jsonl, _ = _write_inputs(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "qwenlong_verl.cli", "score", str(jsonl), "--json", "-"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["ALL"]["rows"] == 6
    assert "scoring" in proc.stderr  # the progress bar


def test_gold_answers_are_parsed_once_per_sample(server, monkeypatch):
    """The rule and the judge get the same parsed golds: one parse per sample, the same scores as before."""
    from qwenlong_verl.reward import rule

    calls = []
    real = rule.gold_answers

    def counting(ground_truth):
        calls.append(ground_truth)
        return real(ground_truth)

    monkeypatch.setattr(rule, "gold_answers", counting)
    scores, _ = _score_rows(server, ROWS)
    assert [s.score for s in scores] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert len(calls) == len(ROWS)
    calls.clear()

    async def one():
        client = JudgeClient(JudgeOptions(base_url=server.base_url, max_retries=0))
        try:
            return await HybridScorer(ScoreOptions(), client).score("musique", "Capital?", ROWS[1]["response"],
                                                                     "Therefore, the answer is Paris.")
        finally:
            await client.aclose()

    sample = asyncio.run(one())
    assert sample.judge_called and sample.score == 1.0 and len(calls) == 1
    assert "Reference answer: Paris\n" in server.bodies()[-1]["messages"][-1]["content"]
