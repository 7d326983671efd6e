"""The eval model client for an OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM's server in production).

One request per sample (``n=1``): each (row, sample) pair is then its own unit of resume, and vLLM's prefix caching
shares the prompt's prefill between the samples of a row anyway. Requests go through the package's one OpenAI client
(:mod:`qwenlong_verl.openai_client`, the judge's too): transient failures (connection errors, timeouts, HTTP
408/409/429/5xx, an unreadable body) are retried with exponential backoff; other HTTP errors (a prompt longer than
the server's context, a wrong model name) fail at once with the server's message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from qwenlong_verl.config import check_fields, option
from qwenlong_verl.openai_client import OpenAIChatTransport, RequestFailed, RetryPolicy, chat_completions_url
from qwenlong_verl.outputs import scrub_text
from qwenlong_verl.redaction import redact, redact_url

logger = logging.getLogger(__name__)


class ChatRequestError(RuntimeError):
    """A chat request failed for good; ``retryable`` says whether retries were spent (True) or pointless."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class ChatOptions:
    endpoint: str  # http://host:port, .../v1 or .../v1/chat/completions
    model: str
    api_key_env: str | None = None  # name of the env var whose value is sent as a Bearer token (opt-in)
    temperature: float = option(0.7, ge=0)  # PAPER §3.3
    top_p: float = option(0.95, gt=0, le=1)
    max_tokens: int = option(10000, ge=1)  # PAPER: 10K output
    seed: int | None = None  # per-sample seed = seed + sample index, for reproducible vLLM sampling
    timeout_s: float = 1800.0  # a 10K-token answer over a 120K prompt can take many minutes
    connect_timeout_s: float = 10.0
    max_retries: int = option(4, ge=0)
    backoff_s: float = 1.0  # first retry delay; doubles each retry (at most max_backoff_s), with +-25% jitter
    max_backoff_s: float = 30.0
    max_connections: int = 64
    extra_body: dict[str, Any] | None = None  # e.g. {"top_k": 20} for vLLM

    def __post_init__(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must start with http:// or https://, got {redact_url(self.endpoint)!r}")
        check_fields(self)

    @property
    def url(self) -> str:
        return chat_completions_url(self.endpoint)


@dataclass(frozen=True)
class Completion:
    text: str  # "<think>reasoning</think>answer" when the server splits reasoning out
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int
    replaced_chars: int = 0  # lone surrogates (half an emoji) in the reply, replaced by U+FFFD


class NoContent(ValueError):
    """The reply holds no answer text (``content: null``)."""


def parse_completion(payload: Any) -> tuple[str | None, str | None, int | None, int | None]:
    """(text, finish_reason, prompt_tokens, completion_tokens) of a chat-completion body; ValueError if malformed.

    vLLM with ``--reasoning-parser`` moves the thinking into ``reasoning_content`` (newer: ``reasoning``); the
    scorer needs the ``</think>`` marker, so the two are joined back as the model wrote them. ``content: null`` (what
    those parsers send when the model never finished its reasoning) gives text None: no answer at all, which the
    caller must count as a failed sample, not score as a wrong answer.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list) or not payload["choices"]:
        raise ValueError(f"no choices in response: {str(payload)[:200]!r}")
    choice = payload["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ValueError(f"no message in choice: {str(choice)[:200]!r}")
    content = message.get("content")
    if content is None:
        return None, choice.get("finish_reason"), None, None
    if not isinstance(content, str):
        raise ValueError(f"message content is not text: {str(content)[:200]!r}")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning and "</think>" not in content:
        content = f"<think>\n{reasoning}\n</think>\n\n{content}"
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}

    def _tokens(key: str) -> int | None:
        v = usage.get(key)
        return int(v) if isinstance(v, int) and v > 0 else None  # 0 from a server that does not count

    return content, choice.get("finish_reason"), _tokens("prompt_tokens"), _tokens("completion_tokens")


class ChatClient:
    """Async chat client with its own connection pool; use as ``async with ChatClient(opts) as c``."""

    def __init__(self, options: ChatOptions, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.options = options
        self._http = OpenAIChatTransport(
            options.url, api_key_env=options.api_key_env, max_connections=options.max_connections,
            timeout_s=options.timeout_s, connect_timeout_s=options.connect_timeout_s,
            retry=RetryPolicy(options.max_retries, options.backoff_s, options.max_backoff_s),
            warn_missing_key=True, transport=transport)

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def body(self, user_message: str, sample: int) -> dict[str, Any]:
        o = self.options
        body: dict[str, Any] = {
            "model": o.model,
            "messages": [{"role": "user", "content": user_message}],
            "temperature": o.temperature,
            "top_p": o.top_p,
            "max_tokens": o.max_tokens,
            "n": 1,
        }
        if o.seed is not None:
            body["seed"] = o.seed + sample
        if o.extra_body:
            body.update(o.extra_body)
        return body

    async def complete(self, user_message: str, sample: int = 0) -> Completion:
        o = self.options
        try:
            reply = await self._http.post(self.body(user_message, sample), parse_completion)
        except RequestFailed as exc:
            last = exc.last
            what = f"HTTP {last.status}: {last.text[:300]}" if last.status is not None else str(last)
            if not exc.retryable:
                raise ChatRequestError(f"{redact_url(o.url)} refused the request: {redact(what)}",
                                       retryable=False) from None
            raise ChatRequestError(f"{redact_url(o.url)}: gave up after {o.max_retries + 1} attempts; last error: "
                                   f"{redact(what)}", retryable=True) from None
        text, finish, p_tok, c_tok = reply.value
        if text is None:
            raise ChatRequestError(
                f"{redact_url(o.url)} replied with content: null (finish_reason {finish!r}): no answer text, so the "
                "sample is failed, not scored as wrong. A vLLM reasoning parser does this when the model never "
                "finished its reasoning: raise --max-tokens, or serve without --reasoning-parser", retryable=False)
        # half an emoji (a lone surrogate) breaks the tokenizer and the judge's JSON request: replaced once, here
        text, replaced = scrub_text(text)
        return Completion(text, finish, p_tok, c_tok, reply.attempts, replaced)
