"""Issue 24, processes and bounds: two evals never share one --out, every count a user gives has a bound, and a
server's Retry-After is honoured. Local HTTP servers on 127.0.0.1 stand in for the model."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest
from test_first_hour_eval import REPLIES, ROWS, ScriptedServer, chat_reply, model_server, models_reply, write_rows

from qwenlong_verl.cli import main


def test_a_second_eval_on_the_same_out_is_refused(tmp_path, tiny_model_dir, caplog):
    """Two evals on one --out asked for every missing sample twice; the second must stop at once, naming the
    first, and ask the server nothing."""
    data = write_rows(tmp_path / "rows.jsonl", ROWS)
    out = tmp_path / "out"
    release = threading.Event()

    def slow(path: str, body: dict, headers: dict):
        if path.rstrip("/").endswith("/models"):
            return 200, {}, models_reply()
        release.wait(60)  # the first eval's requests hang until the second one has been refused
        question = next(q for q in REPLIES if q in body["messages"][-1]["content"])
        return 200, {}, chat_reply(REPLIES[question])

    with ScriptedServer(slow) as model:
        args = [sys.executable, "-m", "qwenlong_verl.cli", "eval", "--endpoint", f"http://127.0.0.1:{model.port}",
                "--model", "m", "--out", str(out), "--data", str(data), "--tokenizer", str(tiny_model_dir),
                "--max-input-tokens", "600", "--no-progress", "--concurrency", "2"]
        first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while len(model.posts()) < 2 and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.1)
            assert len(model.posts()) == 2, "the first eval never asked"
            rc = main(["eval", "--endpoint", f"http://127.0.0.1:{model.port}", "--model", "m", "--out", str(out),
                       "--data", str(data), "--tokenizer", str(tiny_model_dir), "--max-input-tokens", "600",
                       "--no-progress"])
            err = caplog.text
            assert rc == 2 and "in use by another qwenlong-verl eval" in err and f"pid {first.pid}" in err
            assert len(model.posts()) == 2  # the second asked nothing
        finally:
            release.set()
            stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr[-2000:]
    # the lock dies with its holder: the next run resumes (nothing left to ask)
    with model_server(REPLIES) as model:
        assert main(["eval", "--endpoint", f"http://127.0.0.1:{model.port}", "--model", "m", "--out", str(out),
                     "--data", str(data), "--tokenizer", str(tiny_model_dir), "--max-input-tokens", "600",
                     "--no-progress"]) == 0
        assert model.posts() == []


@pytest.mark.parametrize("argv, option", [
    (["eval", "--endpoint", "http://h:1", "--model", "m", "--out", "o", "--data", "d", "--judge-concurrency",
      "100000"], "--judge-concurrency"),
    (["eval", "--endpoint", "http://h:1", "--model", "m", "--out", "o", "--data", "d", "--concurrency", "5000"],
     "--concurrency"),
    (["eval", "--endpoint", "http://h:1", "--model", "m", "--out", "o", "--data", "d", "--max-retries", "1000"],
     "--max-retries"),
    (["eval", "--endpoint", "http://h:1", "--model", "m", "--out", "o", "--data", "d", "-n", "100000"],
     "--n-samples"),
    (["synth", "--out", "x.parquet", "-n", "1000000000"], "--num"),
])
def test_every_count_has_an_upper_bound(argv, option, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "expected an integer from" in err


def test_retry_after_is_honoured(monkeypatch):
    """A 503 with `Retry-After: 1` is retried no sooner than a second later, though the backoff says 10 ms: the
    transport's wait between the attempts is read from its clock (its ``asyncio.sleep``), not from a wall clock."""
    from qwenlong_verl import openai_client
    from qwenlong_verl.openai_client import OpenAIChatTransport, RetryPolicy

    calls: list[str] = []
    waits: list[float] = []

    class RecordingAsyncio:
        """The transport's view of asyncio: every sleep is recorded, in order with the requests, and skipped."""

        def __getattr__(self, name: str):
            return getattr(asyncio, name)

        async def sleep(self, delay: float, result=None):
            waits.append(delay)
            calls.append("wait")
            return result

    monkeypatch.setattr(openai_client, "asyncio", RecordingAsyncio())

    def busy(path: str, body: dict, headers: dict):
        calls.append("request")
        if calls.count("request") == 1:
            return 503, {"Retry-After": "1"}, b'{"error": "busy"}'
        return 200, {}, chat_reply("ok")

    async def go(url: str):
        async with OpenAIChatTransport(url, retry=RetryPolicy(2, 0.01, 0.02)) as transport:
            return await transport.post({"messages": []}, lambda payload: payload["choices"][0]["message"]["content"])

    with ScriptedServer(busy) as server:
        reply = asyncio.run(go(server.base_url + "/chat/completions"))
    assert reply.value == "ok" and reply.attempts == 2
    assert calls == ["request", "wait", "request"] and waits == [1.0]


def test_retry_after_parses_seconds_and_dates():
    from qwenlong_verl.openai_client import parse_retry_after

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
