"""The judge's logprob mode (one completion token, P(YES) vs P(NO)) and the failure / token accounting of both modes,
against the scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.cli import main as cli_main
from qwenlong_verl.config import QwenLongConfigError, options_from
from qwenlong_verl.reward.judge import JUDGE_LOGPROB_SYSTEM_PROMPT, JUDGE_SYSTEM_PROMPT, JudgeClient, JudgeOptions
from qwenlong_verl.reward.metrics import judge_step_metrics
from qwenlong_verl.reward.scoring import HybridScorer, ScoreOptions

REPO = Path(__file__).resolve().parents[1]

# (question, answer, gold, equivalent): the scripted judge knows the truth of each
TRIPLES = [
    ("Capital of France?", "Lutetia", "Paris", True), ("Capital of France?", "Rome", "Paris", False),
    ("Growth?", "twelve and a half percent", "12.5%", True), ("Growth?", "13%", "12.5%", False),
    ("Author?", "J. K. Rowling", "Joanne Rowling", True), ("Author?", "Tolkien", "Joanne Rowling", False),
    ("Year?", "nineteen ninety", "1990", True), ("Year?", "1991", "1990", False),
]
TRUTH = {(q, a, g): eq for q, a, g, eq in TRIPLES}
YES_VARIANTS = [" yes", "Yes", "YES", "yes"]


def _triple(messages) -> tuple[str, str, str]:
    user = messages[-1]["content"]
    q = user.split("Question: ", 1)[1].split("\n", 1)[0]
    g = user.split("Reference answer: ", 1)[1].split("\n", 1)[0]
    a = user.split("Candidate answer: ", 1)[1]
    return q, a, g


def generate_reply(messages) -> str:
    eq = TRUTH[_triple(messages)]
    return "Both name the same thing.\nVERDICT: YES" if eq else "They differ.\nVERDICT: NO"


def logprob_script(messages) -> list[tuple[str, float]]:
    """Unambiguous first-token candidates, the mass spread over case/space variants of the verdict word."""
    q, a, g = _triple(messages)
    eq = TRUTH[(q, a, g)]
    lead = YES_VARIANTS[len(a) % len(YES_VARIANTS)] if eq else " No"
    other = "NO" if eq else "YES"
    second = ("YES" if lead != "YES" else "Yes") if eq else "NO"  # another variant of the same word
    return [(lead, 0.6), (second, 0.3), (other, 0.04), ("The", 0.04), ("I", 0.02)]


def _opts(server: FakeOpenAIServer, **kw) -> JudgeOptions:
    base = {"base_url": server.base_url, "model": "judge", "timeout_s": 5.0, "max_retries": 1, "backoff_s": 0.01,
            "max_concurrency": 8}
    base.update(kw)
    return JudgeOptions(**base)


def _judge(client: JudgeClient, triples):
    async def run():
        try:
            return await asyncio.gather(*(client.judge(q, a, g) for q, a, g, *_ in triples))
        finally:
            await client.aclose()

    return asyncio.run(run())


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=generate_reply, logprobs=logprob_script) as srv:
        yield srv


def test_logprob_mode_asks_for_one_token(server):
    client = JudgeClient(_opts(server, mode="logprob", top_logprobs=7))
    verdicts = _judge(client, TRIPLES)
    bodies = server.bodies()
    assert len(bodies) == len(TRIPLES)
    for body in bodies:
        assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 7
        assert body["messages"][0]["content"] == JUDGE_LOGPROB_SYSTEM_PROMPT
    assert "one word" in JUDGE_LOGPROB_SYSTEM_PROMPT
    assert all(v.ok and v.mode == "logprob" for v in verdicts)
    s = client.stats
    assert s.completion_tokens_requested == len(TRIPLES) and s.completion_tokens_received == len(TRIPLES)
    assert s.logprob_verdicts == len(TRIPLES) and s.logprob_fallbacks == 0 and s.usage_missing == 0


def test_logprob_and_generate_agree_on_unambiguous_replies(server):
    gen = _judge(JudgeClient(_opts(server)), TRIPLES)
    n_gen = server.count
    lp = _judge(JudgeClient(_opts(server, mode="logprob")), TRIPLES)
    assert [v.equivalent for v in gen] == [v.equivalent for v in lp] == [eq for *_, eq in TRIPLES]
    assert all(v.ok for v in gen + lp)
    assert server.count - n_gen == len(TRIPLES)  # one request per verdict in both modes
    # generate bodies ask for the reasoning and the VERDICT line, with the max_tokens budget
    gen_bodies = server.bodies()[:n_gen]
    assert all(b["max_tokens"] == 512 and "logprobs" not in b for b in gen_bodies)
    assert all(b["messages"][0]["content"] == JUDGE_SYSTEM_PROMPT for b in gen_bodies)
    # P(YES) is the folded mass: 0.9 of 0.94 (or 0.04 of 0.94) for these scripts
    assert {round(v.p_yes, 3) for v in lp} == {round(0.9 / 0.94, 3), round(0.04 / 0.94, 3)}


def test_falls_back_to_generate_when_the_server_sends_no_logprobs(server, caplog):
    server.configure(logprobs=None)
    client = JudgeClient(_opts(server, mode="logprob"))
    first = _judge(client, TRIPLES[:1])[0]
    assert first.ok and first.equivalent and first.mode == "generate" and first.attempts == 2
    assert [b.get("max_tokens") for b in server.bodies()] == [1, 512]
    assert "returned no logprobs" in caplog.text
    # the client remembers: later verdicts go straight to generate mode
    rest = _judge(client, TRIPLES[1:])
    assert [v.equivalent for v in rest] == [eq for *_, eq in TRIPLES[1:]]
    assert server.count == 2 + len(TRIPLES) - 1
    assert client.stats.logprob_fallbacks == 1 and client.stats.logprob_verdicts == 0


def test_first_token_that_is_not_a_verdict_falls_back_per_request(server):
    server.configure(logprobs=lambda msgs: [("The", 0.9), ("YES", 0.06), ("NO", 0.04)])
    client = JudgeClient(_opts(server, mode="logprob"))
    verdicts = _judge(client, TRIPLES[:2])
    assert [v.equivalent for v in verdicts] == [True, False] and all(v.mode == "generate" for v in verdicts)
    assert client.stats.logprob_low_mass == 2 and server.count == 4
    assert client.stats.completion_tokens_requested == 2 * (1 + 512)


@pytest.mark.parametrize(("threshold", "expected"), [(0.5, True), (0.55, True), (0.7, False)])
def test_threshold(server, threshold, expected):
    server.configure(logprobs=lambda msgs: [("YES", 0.5), (" no", 0.2), ("No", 0.133333)])
    v = _judge(JudgeClient(_opts(server, mode="logprob", logprob_threshold=threshold)), TRIPLES[:1])[0]
    assert v.ok and v.equivalent is expected and v.p_yes == pytest.approx(0.6, abs=1e-3)


def test_top_logprobs_cut_to_the_request(server):
    # the yes candidates are 3rd and 4th: top_logprobs=2 sees only "The"/"I" -> low mass -> generate
    server.configure(logprobs=lambda msgs: [("The", 0.4), ("I", 0.3), ("YES", 0.2), ("Yes", 0.1)])
    v = _judge(JudgeClient(_opts(server, mode="logprob", top_logprobs=2)), TRIPLES[:1])[0]
    assert v.mode == "generate"
    v = _judge(JudgeClient(_opts(server, mode="logprob", top_logprobs=4, logprob_min_mass=0.25)), TRIPLES[:1])[0]
    assert v.mode == "logprob" and v.equivalent


def test_transport_and_parse_failures_are_counted_apart(server):
    server.configure(fail_rate=1.0)
    client = JudgeClient(_opts(server, mode="logprob"))
    v = _judge(client, TRIPLES[:1])[0]
    assert not v.ok and not v.parse_failed and v.score == 0.0
    assert client.stats.transport_failures == 1 and client.stats.unparseable == 0

    server.configure(fail_rate=0.0, responder=lambda msgs: "I am not sure about this one.")
    client = JudgeClient(_opts(server))
    v = _judge(client, TRIPLES[:1])[0]
    assert not v.ok and v.parse_failed and "unparseable" in v.error and v.score == 0.0
    assert client.stats.unparseable == 1 and client.stats.transport_failures == 0 and client.stats.failures == 1


def test_a_reply_cut_by_max_tokens_names_the_option(server):
    server.configure(honour_max_tokens=True,
                     responder=lambda msgs: "The candidate and the reference both name Paris. VERDICT: YES")
    client = JudgeClient(_opts(server, max_tokens=5))
    v = _judge(client, TRIPLES[:1])[0]
    assert not v.ok and v.parse_failed and "max_tokens=5" in v.error
    assert client.stats.truncated == 1 and client.stats.completion_tokens_received == 5


def test_parse_failures_reach_the_sample_and_the_step_metrics(server):
    server.configure(responder=lambda msgs: "Hmm." if "Rome" in msgs[-1]["content"] else generate_reply(msgs))
    rows = [{"data_source": "musique", "question": q, "response": f"<think>.</think>The answer is {a}.",
             "ground_truth": g} for q, a, g, _ in TRIPLES[:2]]

    async def run():
        client = JudgeClient(_opts(server))
        try:
            return await HybridScorer(ScoreOptions(), client).score_many(rows)
        finally:
            await client.aclose()

    lutetia, rome = asyncio.run(run())
    assert lutetia.judge_called and not lutetia.judge_failed and not lutetia.judge_parse_failed
    assert rome.judge_failed and rome.judge_parse_failed and rome.as_dict()["judge_parse_failed"] is True
    records = [{**s.as_dict(), "truncated": False} for s in (lutetia, rome)]
    records.append({"judge_called": True, "judge_failed": True, "judge_parse_failed": False})  # a transport failure
    m = judge_step_metrics(records)
    assert m["qwenlong/judge/failure_rate"] == pytest.approx(2 / 3)
    assert m["qwenlong/judge/parse_failure_rate"] == pytest.approx(1 / 3)
    assert m["qwenlong/judge/transport_failure_rate"] == pytest.approx(1 / 3)


def test_options_validation():
    for bad, key in [({"mode": "sample"}, "mode"), ({"top_logprobs": 0}, "top_logprobs"),
                     ({"top_logprobs": 21}, "top_logprobs"), ({"logprob_threshold": 1.0}, "logprob_threshold"),
                     ({"logprob_min_mass": -0.1}, "logprob_min_mass"), ({"max_tokens": 0}, "max_tokens")]:
        with pytest.raises(QwenLongConfigError, match=f"qwenlong.judge: {key}"):
            options_from(JudgeOptions, {"base_url": "http://x/v1", **bad}, "qwenlong.judge")
    assert JudgeOptions().mode == "generate"  # the default until a real judge comparison exists


# the recipe's judge keys against JudgeOptions' defaults: tests/test_config_defaults.py (every qwenlong.* section)


def test_score_command_judge_mode(server, tmp_path):
    rows = [{"data_source": "musique", "question": q, "response": f"<think>.</think>The answer is {a}.",
             "ground_truth": g} for q, a, g, _ in TRIPLES]
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "summary.json"
    assert cli_main(["score", str(src), "--judge-url", server.base_url, "--judge-mode", "logprob", "--no-progress",
                     "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["judge"]["logprob_verdicts"] == len(TRIPLES)
    assert all(b["max_tokens"] == 1 for b in server.bodies())
    # rows whose verdict is YES score 1
    assert summary["summary"]["ALL"]["score"] == pytest.approx(100 * sum(eq for *_, eq in TRIPLES) / len(TRIPLES))


def test_fake_server_logprob_format(server):
    """What the judge reads is the OpenAI chat format vLLM sends."""
    import urllib.request

    body = {"model": "m", "messages": [{"role": "user", "content": "Question: Year?\nReference answer: 1990\n"
                                                                    "Candidate answer: 1991"}],
            "max_tokens": 1, "logprobs": True, "top_logprobs": 3}
    req = urllib.request.Request(server.base_url + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    reply = json.loads(urllib.request.urlopen(req, timeout=5).read())
    choice = reply["choices"][0]
    first = choice["logprobs"]["content"][0]
    assert choice["message"]["content"] == first["token"] == " No" and reply["usage"]["completion_tokens"] == 1
    assert len(first["top_logprobs"]) == 3 and math.exp(first["logprob"]) == pytest.approx(0.6)
