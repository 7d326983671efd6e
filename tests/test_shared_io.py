"""The shared pieces the judge, eval, score and prepare all use: the one OpenAI client (qwenlong_verl.openai_client),
the one row reader and the one "to plain Python" helper (qwenlong_verl.row_files)."""

from __future__ import annotations

import asyncio
import json
import random
import socket

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.data.prepare import DataPrepError, read_records
from qwenlong_verl.evaluation.client import ChatClient, ChatOptions, ChatRequestError
from qwenlong_verl.evaluation.data import EvalDataError, load_file
from qwenlong_verl.openai_client import OpenAIChatTransport, RequestFailed, RetryPolicy, is_retryable_status
from qwenlong_verl.reward.offline import load_rows
from qwenlong_verl.reward.scoring import RowError
from qwenlong_verl.row_files import RowFileError, plain, read_row_file


# -- the client --------------------------------------------------------------------------------------------------------
def test_retry_policy_backs_off_exponentially_with_jitter_and_a_cap():
    policy, rng = RetryPolicy(max_retries=5, backoff_s=0.5, max_backoff_s=3.0), random.Random(0)
    for k, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (5, 3.0)]:
        for _ in range(50):
            assert 0.75 * base <= policy.delay(k, rng) <= 1.25 * base
    assert [is_retryable_status(s) for s in (408, 409, 429, 500, 501, 503, 400, 401, 404, 422)] == \
        [True] * 6 + [False] * 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_retried_by_the_transport_not_multiplied():
    url = f"http://user:secret@127.0.0.1:{_free_port()}/v1/chat/completions"
    seen: list[int] = []

    async def go():
        async with OpenAIChatTransport(url, retry=RetryPolicy(max_retries=2, backoff_s=0.0), timeout_s=5) as http:
            return await http.post({"x": 1}, lambda p: p, on_attempt=seen.append)

    with pytest.raises(RequestFailed) as err:
        asyncio.run(go())
    assert err.value.last.kind == "connection" and err.value.retryable
    assert seen == [0]  # httpx's transport made the connect retries; the loop did not repeat them
    assert "secret" not in err.value.error


def test_api_key_is_opt_in_and_eval_errors_mask_url_credentials(monkeypatch):
    with FakeOpenAIServer(default_reply="hi") as server:
        async def go(env):
            async with OpenAIChatTransport(server.base_url + "/chat/completions", api_key_env=env) as http:
                return await http.post({"messages": [{"role": "user", "content": "q"}]}, lambda p: p["choices"][0]["message"]["content"])

        monkeypatch.delenv("QW_TEST_KEY", raising=False)
        assert asyncio.run(go("QW_TEST_KEY")).value == "hi"
        monkeypatch.setenv("QW_TEST_KEY", "sk-1")
        asyncio.run(go("QW_TEST_KEY"))
        asyncio.run(go(None))
        auth = [{k.lower(): v for k, v in h.items()}.get("authorization") for h in server.request_headers()]
        assert auth == [None, "Bearer sk-1", None]

        server.configure(fail_rate=1.0)
        opts = ChatOptions(endpoint=f"http://bob:pw123@127.0.0.1:{server.port}", model="m", max_retries=1,
                           backoff_s=0.0)

        async def chat():
            async with ChatClient(opts) as c:
                return await c.complete("x")

        with pytest.raises(ChatRequestError, match="gave up after 2 attempts") as err:
            asyncio.run(chat())
        assert "pw123" not in str(err.value) and "***@" in str(err.value)


def test_one_transport_serves_several_event_loops():
    with FakeOpenAIServer(default_reply="ok") as server:
        http = OpenAIChatTransport(server.base_url + "/chat/completions")
        parse = lambda p: p["choices"][0]["message"]["content"]  # noqa: E731
        assert asyncio.run(http.post({"messages": [{"role": "user", "content": "q"}]}, parse)).value == "ok"
        assert asyncio.run(http.post({"messages": [{"role": "user", "content": "q"}]}, parse)).value == "ok"  # a new loop: a fresh httpx client
        asyncio.run(http.aclose())
        assert server.count == 2


def test_requests_spread_over_small_pools_up_to_the_limit():
    """10 connections in pools of 4, 4 and 2: all 10 are used at once, never more (no request waits in a pool)."""
    with FakeOpenAIServer(default_reply="ok", hold_timeout_s=30) as server:
        # answered ten at a time, each ten only once all ten are at the server: a request stuck in a full pool while
        # connections of another pool idle would leave a group short, and the server would fail it (HTTP 500)
        server.barrier(10)
        http = OpenAIChatTransport(server.base_url + "/chat/completions", max_connections=10, timeout_s=5)
        parse = lambda p: p["choices"][0]["message"]["content"]  # noqa: E731

        async def go():
            try:
                return await asyncio.gather(*(http.post({"messages": [{"role": "user", "content": str(i)}]}, parse)
                                              for i in range(30)))
            finally:
                await http.aclose()

        replies = asyncio.run(go())
        assert all(r.value == "ok" and r.attempts == 1 for r in replies) and server.hold_timeouts == 0
        assert server.max_in_flight == 10 and server.count == 30  # three full groups, never an eleventh


# -- the row reader ----------------------------------------------------------------------------------------------------
def _loaders():
    return [(lambda p: load_rows(p), RowError), (lambda p: load_file(p), EvalDataError),
            (lambda p: read_records(p), DataPrepError), (lambda p: read_row_file(p), RowFileError)]


ROW = {"data_source": "docqa", "question": "Where?", "context": "It is in Paris.",
       "response": "Therefore, the answer is Paris.", "ground_truth": "Paris"}


@pytest.mark.parametrize("i", range(4))
def test_every_caller_reads_the_same_formats(tmp_path, i):
    load, _ = _loaders()[i]
    # U+2028 is legal unescaped inside a JSON string: it must not split the line
    row = {**ROW, "context": "line one\u2028line two"}
    (tmp_path / "a.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n\n", encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps([row], ensure_ascii=False), encoding="utf-8")
    import pandas as pd

    pd.DataFrame([row]).to_parquet(tmp_path / "a.parquet")
    for name in ("a.jsonl", "a.json", "a.parquet"):
        out = load(tmp_path / name)
        rows = out.rows if hasattr(out, "rows") else out[0] if isinstance(out, tuple) else out
        assert len(rows) == 1, name


@pytest.mark.parametrize("i", range(4))
def test_every_caller_names_file_and_line(tmp_path, i):
    load, error = _loaders()[i]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROW) + "\n" + '{"truncated": \n', encoding="utf-8")
    with pytest.raises(error, match=r"bad.jsonl:2: not valid JSON"):
        load(bad)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps(ROW).encode() + b"\n" + '{"q": "caf\xe9"}'.encode("latin-1") + b"\n")
    with pytest.raises(error, match=r"latin.jsonl:2: not UTF-8"):
        load(latin)
    with pytest.raises(error, match="no such file"):
        load(tmp_path / "missing.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(error, match="unknown file type"):
        load(tmp_path / "x.csv")


def test_plain_turns_numpy_containers_into_python():
    value = {"a": np.array([1, 2]), "b": (np.float32(0.5), {"c": np.array([[1], [2]])}), "d": np.int64(3),
             "e": np.array(4), "f": float("nan"), "s": "text"}
    out = plain(value)
    assert out["a"] == [1, 2] and out["b"] == [0.5, {"c": [[1], [2]]}] and out["d"] == 3 and out["e"] == 4
    assert type(out["d"]) is int and out["s"] == "text" and out["f"] != out["f"]
    assert plain(value, nan_as_none=True)["f"] is None
    obj = np.empty(2, dtype=object)
    obj[:] = [{"role": "user", "content": np.array(["x"])}, None]
    assert plain(obj) == [{"role": "user", "content": ["x"]}, None]
