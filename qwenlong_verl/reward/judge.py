"""Async LLM judge over any OpenAI-compatible chat endpoint (production: ``vllm serve Qwen/Qwen2.5-1.5B-Instruct``).

The judge is asked whether a candidate answer to a question is equivalent to the reference answer, and must end its
reply with a line ``VERDICT: YES`` or ``VERDICT: NO``; anything else is a failed call, never a pass (the reference
implementation counted any "YES" in the explanation).

One :class:`JudgeClient` per worker process and endpoint (:meth:`JudgeClient.shared`) bounds the concurrent HTTP
requests with a semaphore, answers identical (question, answer, gold) requests once (a cache of verdicts plus
joining requests already in flight: the G rollouts of a group often agree), retries timeouts, dropped connections,
HTTP 408/429/5xx and unreadable bodies with exponential backoff, and never raises: a request that finally fails
returns a verdict with ``ok=False`` and is counted in :attr:`JudgeClient.stats`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

JUDGE_SYSTEM_PROMPT = """\
You check whether a candidate answer to a question says the same thing as a reference answer.
Do not solve the question and do not judge which answer is right: only compare the two answers.
They are equivalent when they give the same entity, value or choice, even if worded, formatted, rounded or \
written in different units or notation. They are not equivalent when the candidate is vaguer, gives several \
conflicting answers, or misses part of the reference answer.
Write at most two sentences of reasoning. Then end with a line that is exactly
VERDICT: YES
or exactly
VERDICT: NO"""

JUDGE_USER_TEMPLATE = "Question: {question}\nReference answer: {gold}\nCandidate answer: {answer}"

_VERDICT_LINE = re.compile(r"^verdict\s*:\s*(yes|no)$", re.IGNORECASE)


def parse_verdict(text: object) -> bool | None:
    """True/False when the last non-empty line of ``text`` is ``VERDICT: YES``/``VERDICT: NO`` (case, markdown
    emphasis, brackets and a final period tolerated); None otherwise. Never raises."""
    if not isinstance(text, str):
        return None
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        line = line.strip("*_`#>[]() \t").rstrip(".").strip("*_`[]() \t")
        m = _VERDICT_LINE.match(line)
        return None if m is None else m.group(1).lower() == "yes"
    return None


@dataclass
class JudgeOptions:
    """``qwenlong.judge.*``. ``enabled=None`` means "on when base_url is set"."""

    base_url: str | None = None  # OpenAI base URL, e.g. http://127.0.0.1:8000/v1 (".../chat/completions" also taken)
    model: str = "Qwen/Qwen2.5-1.5B-Instruct"
    api_key_env: str | None = "QWENLONG_JUDGE_API_KEY"  # env var holding a bearer key; unset/empty: no auth header
    enabled: bool | None = None
    max_concurrency: int = 64  # HTTP requests in flight per worker process
    timeout_s: float = 60.0  # per attempt
    max_retries: int = 3  # attempts after the first
    backoff_s: float = 0.5  # first retry delay; doubles each retry, with +-25% jitter
    max_backoff_s: float = 8.0
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int | None = 0
    cache_size: int = 100_000  # verdicts kept (LRU); 0 disables the cache but keeps joining in-flight requests
    max_answer_chars: int = 2000  # longer candidate answers are cut (a rambling answer is no answer)

    def __post_init__(self) -> None:
        if self.enabled and not self.base_url:
            raise ValueError("judge enabled but base_url is not set")
        for name in ("max_concurrency",):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("timeout_s", "backoff_s", "max_backoff_s"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if int(self.max_retries) < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")

    @property
    def active(self) -> bool:
        return bool(self.base_url) if self.enabled is None else bool(self.enabled)

    @property
    def url(self) -> str:
        base = (self.base_url or "").rstrip("/")
        return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


@dataclass
class JudgeVerdict:
    ok: bool  # a parsed verdict came back
    equivalent: bool = False  # the judge said YES (only meaningful when ok)
    cached: bool = False  # answered from the cache or by joining an identical request in flight
    latency_s: float = 0.0  # wall time of this judge() call
    attempts: int = 0  # HTTP requests this verdict cost (0 when cached)
    error: str | None = None
    raw: str | None = None  # the judge's reply text

    @property
    def score(self) -> float:
        return 1.0 if self.ok and self.equivalent else 0.0


@dataclass
class JudgeStats:
    calls: int = 0  # judge() calls
    cache_hits: int = 0  # answered from the verdict cache
    joined: int = 0  # joined an identical request already in flight
    requests: int = 0  # unique verdict requests sent (each may take several attempts)
    attempts: int = 0  # HTTP requests
    retries: int = 0
    successes: int = 0
    failures: int = 0  # requests that finally failed (the sample keeps its rule score)
    unparseable: int = 0  # replies without a valid verdict line
    yes: int = 0
    latency_total_s: float = 0.0  # over requests sent
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _TransientError(Exception):
    """Worth retrying: timeout, connection drop, 408/429/5xx, unreadable body."""


class _FatalError(Exception):
    """Not worth retrying: other 4xx, or a well-formed reply without a verdict."""


class JudgeClient:
    """See the module docstring. Use one per process and endpoint via :meth:`shared`; ``await judge(...)``."""

    _shared: dict[tuple, JudgeClient] = {}
    _shared_lock = threading.Lock()

    def __init__(self, options: JudgeOptions) -> None:
        if not options.base_url:
            raise ValueError("JudgeClient needs options.base_url")
        self.options = options
        self.stats = JudgeStats()
        self._cache: OrderedDict[str, tuple[bool, str]] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Future] = {}
        self._rng = random.Random()

    @classmethod
    def shared(cls, options: JudgeOptions) -> JudgeClient:
        """The process-wide client for these options, so every reward manager of a worker shares its
        concurrency bound, cache and connections."""
        key = tuple(sorted(asdict(options).items()))
        with cls._shared_lock:
            client = cls._shared.get(key)
            if client is None:
                client = cls._shared[key] = cls(options)
            return client

    # -- per-event-loop state ----------------------------------------------------------------------------------------
    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop and self._session is not None and not self._session.closed:
            return
        # aiohttp sessions and asyncio primitives belong to one loop; a new loop (e.g. a second asyncio.run)
        # gets fresh ones. The verdict cache is plain data and carries over.
        self._loop = loop
        connector = aiohttp.TCPConnector(limit=self.options.max_concurrency, limit_per_host=0, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector)
        self._semaphore = asyncio.Semaphore(self.options.max_concurrency)
        self._inflight = {}

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- API ---------------------------------------------------------------------------------------------------------
    @staticmethod
    def cache_key(question: str, answer: str, gold: str) -> str:
        payload = json.dumps([str(question).strip(), str(answer).strip(), str(gold).strip()], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def messages(self, question: str, answer: str, gold: str) -> list[dict[str, str]]:
        answer = str(answer).strip()
        if len(answer) > self.options.max_answer_chars:
            answer = answer[: self.options.max_answer_chars] + " ..."
        user = JUDGE_USER_TEMPLATE.format(question=str(question).strip(), gold=str(gold).strip(), answer=answer)
        return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": user}]

    async def judge(self, question: str, answer: str, gold: str) -> JudgeVerdict:
        """Is ``answer`` equivalent to ``gold`` for ``question``? Never raises (except on cancellation)."""
        start = time.perf_counter()
        self._bind_loop()
        self.stats.calls += 1
        key = self.cache_key(question, answer, gold)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            return JudgeVerdict(ok=True, equivalent=hit[0], cached=True, raw=hit[1],
                                latency_s=time.perf_counter() - start)
        pending = self._inflight.get(key)
        if pending is not None:
            self.stats.joined += 1
            verdict: JudgeVerdict = await asyncio.shield(pending)
            return JudgeVerdict(ok=verdict.ok, equivalent=verdict.equivalent, cached=True, raw=verdict.raw,
                                error=verdict.error, latency_s=time.perf_counter() - start)
        future: asyncio.Future = self._loop.create_future()  # type: ignore[union-attr]
        self._inflight[key] = future
        try:
            verdict = await self._request(self.messages(question, answer, gold))
        except Exception as exc:  # a bug or an unforeseen client error must not stop training either
            logger.exception("judge: unexpected error")
            self.stats.failures += 1
            self._count_error("internal")
            verdict = JudgeVerdict(ok=False, error=f"internal: {exc!r}")
        except BaseException as exc:  # cancellation: wake the joined waiters with a failure, then re-raise
            if not future.done():
                future.set_result(JudgeVerdict(ok=False, error=f"cancelled: {exc!r}"))
            raise
        finally:
            self._inflight.pop(key, None)
        verdict.latency_s = time.perf_counter() - start
        if verdict.ok and self.options.cache_size > 0:
            self._cache[key] = (verdict.equivalent, verdict.raw or "")
            while len(self._cache) > self.options.cache_size:
                self._cache.popitem(last=False)
        if not future.done():
            future.set_result(verdict)
        return verdict

    # -- internals ---------------------------------------------------------------------------------------------------
    def _count_error(self, kind: str) -> None:
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1

    async def _request(self, messages: list[dict[str, str]]) -> JudgeVerdict:
        opts = self.options
        body: dict[str, Any] = {"model": opts.model, "messages": messages, "temperature": opts.temperature,
                                "max_tokens": opts.max_tokens}
        if opts.seed is not None:
            body["seed"] = opts.seed
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(opts.api_key_env) if opts.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.stats.requests += 1
        start = time.perf_counter()
        last_error = "no attempt made"
        attempts = 0
        for attempt in range(opts.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                delay = min(opts.backoff_s * 2 ** (attempt - 1), opts.max_backoff_s)
                await asyncio.sleep(delay * self._rng.uniform(0.75, 1.25))
            attempts += 1
            self.stats.attempts += 1
            try:
                text = await self._post(body, headers)
            except _TransientError as exc:
                last_error = str(exc)
                self._count_error(last_error.split(":", 1)[0])
                logger.debug("judge attempt %d/%d failed: %s", attempt + 1, opts.max_retries + 1, exc)
                continue
            except _FatalError as exc:
                last_error = str(exc)
                self._count_error(last_error.split(":", 1)[0])
                break
            verdict = parse_verdict(text)
            if verdict is None:
                self.stats.unparseable += 1
                last_error = f"unparseable verdict: {text[-200:]!r}"
                self._count_error("unparseable")
                self.stats.failures += 1
                self.stats.latency_total_s += time.perf_counter() - start
                return JudgeVerdict(ok=False, attempts=attempts, error=last_error, raw=text)
            self.stats.successes += 1
            self.stats.yes += int(verdict)
            self.stats.latency_total_s += time.perf_counter() - start
            return JudgeVerdict(ok=True, equivalent=verdict, attempts=attempts, raw=text)
        self.stats.failures += 1
        self.stats.latency_total_s += time.perf_counter() - start
        # a judge that is down fails every sample: log the first few and then every 100th, with the count
        if self.stats.failures <= 5 or self.stats.failures % 100 == 0:
            logger.warning("judge request failed after %d attempt(s) (%d failures so far; the samples keep their "
                           "rule score): %s", attempts, self.stats.failures, last_error)
        return JudgeVerdict(ok=False, attempts=attempts, error=last_error)

    async def _post(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        assert self._session is not None and self._semaphore is not None
        timeout = aiohttp.ClientTimeout(total=self.options.timeout_s or None)
        async with self._semaphore:  # held for the HTTP exchange only, not during backoff
            try:
                async with self._session.post(self.options.url, json=body, headers=headers, timeout=timeout) as resp:
                    raw = await resp.read()
                    status = resp.status
            except asyncio.TimeoutError as exc:
                raise _TransientError(f"timeout: no reply within {self.options.timeout_s}s") from exc
            except aiohttp.ClientError as exc:
                raise _TransientError(f"connection: {type(exc).__name__}: {exc}") from exc
        if status == 408 or status == 429 or status >= 500:
            raise _TransientError(f"http {status}: {raw[:200]!r}")
        if status >= 400:
            raise _FatalError(f"http {status}: {raw[:200]!r}")
        try:
            payload = json.loads(raw)
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _TransientError(f"bad body: {raw[:200]!r}") from exc
        if not isinstance(content, str):
            raise _TransientError(f"bad body: content is {type(content).__name__}")
        return content
