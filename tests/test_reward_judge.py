"""The judge client against a real local HTTP server that can be slow, fail, drop connections or answer garbage."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.config import QwenLongConfigError, options_from
from qwenlong_verl.reward.judge import JUDGE_SYSTEM_PROMPT, JudgeClient, JudgeOptions, parse_verdict


def _opts(server: FakeOpenAIServer, **kw) -> JudgeOptions:
    base = {"base_url": server.base_url, "model": "judge", "timeout_s": 2.0, "max_retries": 2, "backoff_s": 0.01,
            "max_concurrency": 8}
    base.update(kw)
    return JudgeOptions(**base)


def _run(coro):
    return asyncio.run(coro)


async def _judge_all(client: JudgeClient, triples):
    try:
        return await asyncio.gather(*(client.judge(*t) for t in triples))
    finally:
        await client.aclose()


@pytest.fixture
def server():
    with FakeOpenAIServer(default_reply="They name the same city.\nVERDICT: YES") as srv:
        yield srv


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Same.\nVERDICT: YES", True),
        ("Different.\nVERDICT: NO", False),
        ("Same.\n\n**Verdict: yes**.\n", True),
        ("[[VERDICT: NO]]", False),
        ("YES, they are the same.", None),  # the reference would count this; we do not
        ("VERDICT: YES\nActually, no.", None),  # the verdict must be the last line
        ("Verdict: maybe", None),
        ("VERDICT: YES or NO", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_parse_verdict_is_strict(text, verdict):
    assert parse_verdict(text) is verdict


def test_request_shape_and_verdicts(server, monkeypatch):
    monkeypatch.setenv("QWENLONG_JUDGE_API_KEY", "sk-test")
    server.configure(responder=lambda msgs: "ok\nVERDICT: YES" if "Lutetia" in msgs[-1]["content"] else "VERDICT: NO")
    client = JudgeClient(_opts(server, model="Qwen/Qwen2.5-1.5B-Instruct"))
    yes, no = _run(_judge_all(client, [("Capital of France?", "Lutetia", "Paris"), ("Capital?", "Rome", "Paris")]))
    assert yes.ok and yes.equivalent and yes.score == 1.0 and yes.attempts == 1
    assert no.ok and not no.equivalent and no.score == 0.0
    # both requests run at once: the server may log either first
    [body] = [b for b in server.bodies() if "Lutetia" in b["messages"][-1]["content"]]
    assert len(server.bodies()) == 2
    assert body["model"] == "Qwen/Qwen2.5-1.5B-Instruct" and body["temperature"] == 0.0
    assert body["messages"][0] == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
    user = body["messages"][1]["content"]
    assert "Question: Capital of France?" in user and "Reference answer: Paris" in user
    assert "Candidate answer: Lutetia" in user
    assert client.stats.successes == 2 and client.stats.yes == 1 and client.stats.failures == 0


def test_identical_requests_are_made_once(server):
    # neither distinct request is answered before both reached the server: by then every duplicate has run its
    # first step (all 16 start in one turn of the event loop), so each finds its twin in flight, not in the cache
    server.barrier(2)
    client = JudgeClient(_opts(server))
    triples = [("q", "a", "g")] * 8 + [("q", "b", "g")] * 8  # two groups of agreeing rollouts
    verdicts = _run(_judge_all(client, triples))
    assert server.count == 2
    assert all(v.ok and v.equivalent for v in verdicts)
    assert sum(not v.cached for v in verdicts) == 2
    assert client.stats.joined == 14 and client.stats.requests == 2
    # a later identical question is answered from the cache, with no request
    again = _run(_judge_all(client, [("q ", "a", "g")]))[0]  # surrounding whitespace is not a different request
    assert again.cached and again.ok and server.count == 2 and client.stats.cache_hits == 1


def test_concurrency_is_bounded(server):
    server.barrier(4)  # answered four at a time, once all four are at the server: the client fills its 4 slots
    client = JudgeClient(_opts(server, max_concurrency=4))
    verdicts = _run(_judge_all(client, [("q", f"a{i}", "g") for i in range(16)]))
    assert all(v.ok for v in verdicts) and server.hold_timeouts == 0
    assert server.count == 16
    assert server.max_in_flight == 4  # and never a fifth


def test_shared_client_per_process():
    a = JudgeClient.shared(JudgeOptions(base_url="http://127.0.0.1:9/v1"))
    b = JudgeClient.shared(JudgeOptions(base_url="http://127.0.0.1:9/v1"))
    c = JudgeClient.shared(JudgeOptions(base_url="http://127.0.0.1:9/v1", max_concurrency=3))
    assert a is b and a is not c


def test_retries_5xx_then_succeeds(server):
    server.configure(fail_first=2, fail_status=503)
    client = JudgeClient(_opts(server, max_retries=2))
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert v.ok and v.equivalent and v.attempts == 3 and server.count == 3
    assert client.stats.retries == 2 and client.stats.errors == {"http 503": 2}


def test_dropped_connections_and_garbage_are_retried(server):
    server.configure(drop_first=1)
    client = JudgeClient(_opts(server))
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert v.ok and v.attempts == 2
    assert client.stats.errors.get("connection") == 1

    server.configure(drop_first=0, garbage_first=2)
    client = JudgeClient(_opts(server))
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert v.ok and v.attempts == 3 and client.stats.errors == {"bad body": 2}


def test_final_failure_is_reported_not_raised(server):
    server.configure(fail_rate=1.0)
    client = JudgeClient(_opts(server, max_retries=2))
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert not v.ok and v.score == 0.0 and v.attempts == 3 and "http 503" in v.error
    assert client.stats.failures == 1 and server.count == 3
    # failures are not cached: the next call tries again and can succeed
    server.configure(fail_rate=0.0)
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert v.ok and not v.cached and server.count == 4


def test_client_errors_are_not_retried(server):
    client = JudgeClient(_opts(server, base_url=server.base_url.replace("/v1", "/nope")))
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert not v.ok and v.attempts == 1 and "http 404" in v.error


def test_unparseable_reply_is_a_failure_not_a_pass(server):
    server.configure(default_reply="YES! They are equivalent, I think.")
    client = JudgeClient(_opts(server))
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert not v.ok and v.score == 0.0 and "unparseable" in v.error
    assert server.count == 1  # temperature 0: asking again gives the same reply
    assert client.stats.unparseable == 1


def test_timeout_then_retry(server):
    server.hold(lambda n: n == 0)  # the first attempt is never answered while the client waits
    client = JudgeClient(_opts(server, timeout_s=0.2, max_retries=1))
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert v.ok and v.attempts == 2 and client.stats.errors.get("timeout") == 1
    assert server.held == 1  # the verdict came while the first request was still held: it did not wait for it
    server.release()


def test_unreachable_server_fails_cleanly():
    with FakeOpenAIServer() as srv:
        url = srv.base_url  # a port that is free again once the server stops
    client = JudgeClient(JudgeOptions(base_url=url, max_retries=1, backoff_s=0.0, timeout_s=1.0))
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert not v.ok and v.error.startswith("connection")


def test_random_faults_never_raise(server):
    server.configure(fail_rate=0.2, drop_rate=0.1, garbage_rate=0.1, seed=7)
    client = JudgeClient(_opts(server, max_retries=1, backoff_s=0.0))
    verdicts = _run(_judge_all(client, [("q", f"a{i}", "g") for i in range(60)]))
    assert len(verdicts) == 60
    assert client.stats.successes + client.stats.failures == 60
    assert client.stats.failures == sum(not v.ok for v in verdicts)
    assert 0 < client.stats.successes < 60 or client.stats.failures == 0


def test_client_survives_a_new_event_loop(server):
    client = JudgeClient(_opts(server))
    assert _run(client.judge("q", "a", "g")).ok
    assert _run(client.judge("q", "b", "g")).ok  # a second asyncio.run: fresh session, same cache
    assert _run(client.judge("q", "a", "g")).cached
    _run(client.aclose())


def test_options_validation():
    with pytest.raises(ValueError, match="base_url"):
        JudgeOptions(enabled=True)
    with pytest.raises(ValueError, match="max_concurrency"):
        JudgeOptions(base_url="http://x/v1", max_concurrency=0)
    assert not JudgeOptions().active and JudgeOptions(base_url="http://x/v1").active
    assert not JudgeOptions(base_url="http://x/v1", enabled=False).active
    assert JudgeOptions(base_url="http://x/v1/").url == "http://x/v1/chat/completions"
    with pytest.raises(QwenLongConfigError, match="qwenlong.judge.base_ur"):
        options_from(JudgeOptions, {"base_ur": "x"}, "qwenlong.judge")


def test_unexpected_error_is_a_failure(server, monkeypatch):
    client = JudgeClient(_opts(server))

    async def broken(*args, **kwargs):
        raise TypeError("boom")

    monkeypatch.setattr(client, "_send", broken)
    v = _run(_judge_all(client, [("q", "a", "g")]))[0]
    assert not v.ok and "internal" in v.error and client.stats.failures == 1


def test_fake_server_as_a_process():
    script = Path(__file__).with_name("fake_openai_server.py")
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--reply", "VERDICT: NO"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[1]
        client = JudgeClient(JudgeOptions(base_url=url, max_retries=0))
        v = _run(_judge_all(client, [("q", "a", "g")]))[0]
        assert v.ok and not v.equivalent
        root = url.rsplit("/v1", 1)[0]
        stats = json.loads(urllib.request.urlopen(root + "/stats", timeout=5).read())
        assert stats["count"] == 1 and stats["outcomes"] == {"ok": 1}
        urllib.request.urlopen(urllib.request.Request(root + "/reset", data=b"", method="POST"), timeout=5).read()
        assert json.loads(urllib.request.urlopen(root + "/stats", timeout=5).read())["count"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
