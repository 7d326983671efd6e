"""The eval chat client against the scripted local OpenAI-compatible server: bodies, retries, fatal errors."""

from __future__ import annotations

import asyncio

import pytest
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.evaluation.client import ChatClient, ChatOptions, ChatRequestError, parse_completion


def test_endpoint_forms():
    for ep in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/chat/completions"):
        assert ChatOptions(endpoint=ep, model="m").url == "http://h:1/v1/chat/completions"
    with pytest.raises(ValueError, match="http"):
        ChatOptions(endpoint="h:1", model="m")
    with pytest.raises(ValueError, match="top_p"):
        ChatOptions(endpoint="http://h", model="m", top_p=0)


def test_parse_completion_joins_split_reasoning():
    body = {"choices": [{"message": {"content": "Therefore, the answer is 4.", "reasoning_content": "2+2"},
                         "finish_reason": "length"}], "usage": {"prompt_tokens": 12, "completion_tokens": 0}}
    text, finish, p, c = parse_completion(body)
    assert text == "<think>\n2+2\n</think>\n\nTherefore, the answer is 4."
    assert finish == "length" and p == 12 and c is None  # 0 means "not counted"
    # content: null is no answer (a reasoning parser's reply when the model never finished thinking), not ""
    assert parse_completion({"choices": [{"message": {"content": None}}]})[0] is None
    for bad in ({}, {"choices": []}, {"choices": [{"text": "x"}]}, [1]):
        with pytest.raises(ValueError):
            parse_completion(bad)


def test_request_body_and_retries():
    async def go(server):
        opts = ChatOptions(endpoint=f"http://127.0.0.1:{server.port}", model="ckpt", temperature=0.7, top_p=0.95,
                           max_tokens=77, seed=10, max_retries=4, backoff_s=0.01, timeout_s=5)
        async with ChatClient(opts) as client:
            return await client.complete("hello", sample=3)

    with FakeOpenAIServer(responder=lambda msgs: "echo " + msgs[-1]["content"], fail_first=1, drop_first=1,
                          garbage_first=3) as server:
        comp = asyncio.run(go(server))
        assert comp.text == "echo hello" and comp.attempts == 4  # drop, then garbage (first 3 calls), then ok
        body = server.bodies()[-1]
        assert body["model"] == "ckpt" and body["messages"] == [{"role": "user", "content": "hello"}]
        assert (body["temperature"], body["top_p"], body["max_tokens"], body["n"], body["seed"]) == \
            (0.7, 0.95, 77, 1, 13)


def test_gives_up_and_refuses():
    async def go(url, retries):
        async with ChatClient(ChatOptions(endpoint=url, model="m", max_retries=retries, backoff_s=0.01)) as c:
            return await c.complete("x")

    with FakeOpenAIServer(fail_rate=1.0) as server:
        with pytest.raises(ChatRequestError, match="gave up after 3 attempts.*HTTP 503") as err:
            asyncio.run(go(server.base_url, 2))
        assert err.value.retryable and server.count == 3
        server.reset_counts()
        # a wrong path is a 404: no point in retrying
        with pytest.raises(ChatRequestError, match="refused the request: HTTP 404") as err:
            asyncio.run(go(f"http://127.0.0.1:{server.port}/nope/chat/completions", 5))
        assert not err.value.retryable and len(server.requests) == 1
