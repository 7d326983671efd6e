"""Async LLM judge over any OpenAI-compatible chat endpoint (production: ``vllm serve Qwen/Qwen2.5-1.5B-Instruct``).

The judge is asked whether a candidate answer to a question is equivalent to the reference answer, in one of two
modes (``JudgeOptions.mode``):

* ``generate`` (default): it writes at most two sentences and a final ``VERDICT: YES`` / ``VERDICT: NO``;
  :func:`parse_verdict` accepts the near-misses a small judge produces (``VERDICT: [[YES]]``, ``Final verdict:
  YES``, one sentence after the verdict, special-token text) and never turns a reply with both verdicts, a negated
  or a questioned verdict into a pass (the reference implementation counted any "YES" in the explanation);
* ``logprob``: it is asked for one word and sent ``max_tokens=1`` with ``logprobs``; the verdict is P(YES) vs
  P(NO) summed over the first token's candidates, case and spaces folded (:func:`verdict_probabilities`), with a
  fall-back to ``generate`` when the server returns no logprobs or the first token is not yes/no.

A reply without a clear verdict is a counted failure (``parse_failed``), apart from transport failures.

One :class:`JudgeClient` per worker process and endpoint (:meth:`JudgeClient.shared`) bounds the concurrent HTTP
requests, answers identical (question, answer, gold) requests once (a cache of verdicts plus joining requests already
in flight: the G rollouts of a group often agree), retries timeouts, dropped connections, HTTP 408/409/429/5xx and
unreadable bodies with exponential backoff (the package's one OpenAI client and retry policy:
:mod:`qwenlong_verl.openai_client`), and never raises: a request that finally fails returns a verdict with
``ok=False`` and is counted in :attr:`JudgeClient.stats`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from qwenlong_verl.config import check_fields, option
from qwenlong_verl.openai_client import (
    AttemptError,
    OpenAIChatTransport,
    RequestFailed,
    RetryPolicy,
    chat_completions_url,
)
from qwenlong_verl.reward.rule import strip_special_tokens

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

# logprob mode reads the probabilities of the first reply token, so the reply must start with the verdict word
JUDGE_LOGPROB_SYSTEM_PROMPT = """\
You check whether a candidate answer to a question says the same thing as a reference answer.
Do not solve the question and do not judge which answer is right: only compare the two answers.
They are equivalent when they give the same entity, value or choice, even if worded, formatted, rounded or \
written in different units or notation. They are not equivalent when the candidate is vaguer, gives several \
conflicting answers, or misses part of the reference answer.
Reply with one word only: YES if they are equivalent, NO if they are not."""

JUDGE_USER_TEMPLATE = "Question: {question}\nReference answer: {gold}\nCandidate answer: {answer}"

MODES = ("generate", "logprob")

# -- verdict parsing -------------------------------------------------------------------------------------------------
_WORD = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_KEYWORD_BEFORE = re.compile(r"\b(?:final\s+)?(?:verdict|judge?ment|decision)s?\b(?P<fill>[^.!?\n]{0,40})$",
                             re.IGNORECASE)
# what may stand between the keyword and the word: wrappers, and a few words ("is", "would be", "my final")
_FILL_WORDS = {"is", "was", "would", "will", "shall", "be", "my", "the", "final", "therefore", "thus", "so", "here",
               "clearly", "definitely", "then", "hence", "a", "an", "not", "isn't", "wasn't", "never",
               "cannot", "can't", "won't"}
_NEGATION = {"not", "isn't", "wasn't", "never", "cannot", "can't", "won't"}
_NEGATED_BEFORE = re.compile(r"(?:\bnot|n't|\bnever|\bno)\s*[\"'*_`\[(]*\s*$", re.IGNORECASE)
_AUX = r"(?:is|are|was|were|should|would|could|does|do|did|can|will|shall|may|might)"
_INTERROGATIVE = re.compile(r"^\W*" + _AUX + r"\b", re.IGNORECASE)  # the clause is a question
# an inverted question right before the word: "... should the verdict be YES", "is it YES"
_ASKED_BEFORE = re.compile(r"\b" + _AUX + r"\s+(?:the\s+|my\s+|your\s+)?(?:final\s+)?(?:verdict|judge?ment|decision"
                           r"|answer|it|this|that)\b(?:\s+(?:be|really|then|still))?[\s:\"'*_\[(]*$", re.IGNORECASE)
_TRAILING_NEGATION = re.compile(r"\b(?:not|never|neither|nor|cannot)\b|n't\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n+")
_WRAP = "*_`#>[](){}\"' \t:=-"
MAX_TRAILING_CHARS = 300


@dataclass(frozen=True)
class _Mention:
    yes: bool
    start: int
    end: int
    bound: bool  # after a verdict keyword ("VERDICT:", "Final verdict is")
    bare: bool  # alone on its line ("YES", "**NO**.")
    negated: bool
    questioned: bool


def _mentions(text: str) -> list[_Mention]:
    """The verdict words of ``text``: yes/no after a verdict keyword, alone on a line, or written in capitals.
    A lower-case "no"/"yes" inside a sentence ("there is no difference") is prose, not a verdict."""
    out = []
    for m in _WORD.finditer(text):
        word = m.group(1)
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", m.end())
        line = text[line_start:len(text) if line_end < 0 else line_end]
        before = text[line_start:m.start()]
        kw = _KEYWORD_BEFORE.search(before)
        fill_words = re.findall(r"[a-z']+", kw.group("fill").lower()) if kw else []
        bound = kw is not None and all(w in _FILL_WORDS for w in fill_words)
        bare = line.strip(_WRAP).rstrip(".!").strip(_WRAP).lower() == word.lower()
        if not (bound or bare or word.isupper()):
            continue
        negated = (bound and any(w in _NEGATION for w in fill_words)) or bool(_NEGATED_BEFORE.search(before))
        # the clause the word is in: from the previous sentence end to the next one
        prev_end = max((e.end() for e in _SENTENCE_END.finditer(text, 0, m.start())), default=0)
        nxt = _SENTENCE_END.search(text, m.end())
        clause = text[prev_end:m.start()]
        questioned = (bool(nxt and "?" in nxt.group(0)) or bool(_INTERROGATIVE.search(clause))
                      or bool(_ASKED_BEFORE.search(before)))
        out.append(_Mention(word.lower() == "yes", m.start(), m.end(), bound, bare, negated, questioned))
    return out


def parse_verdict(text: object) -> bool | None:
    """True/False for a clear final verdict in the judge's reply; None (a counted failure, never a pass) otherwise.

    Rule:

    1. Special-token text ends the reply (``VERDICT: YES<|im_end|>``).
    2. A verdict word is yes/no after a verdict keyword (``VERDICT:``, ``Final verdict:``, ``verdict is``,
       brackets and emphasis allowed: ``VERDICT: [[YES]]``), alone on a line (``**YES**``), or in capitals
       anywhere. Lower-case yes/no inside a sentence is prose.
    3. None when any verdict word is negated ("not YES", ``VERDICT: NOT YES``) or asked about (``VERDICT: YES?``,
       "Is the verdict YES"), or when both YES and NO occur as verdict words.
    4. The verdict is the last verdict word that follows a keyword or stands alone; a capitalised word in a
       sentence ("YES, they match") does not decide by itself.
    5. After it, at most one more sentence (≤ 300 characters: ``VERDICT: YES (equivalent)``, a verdict line and
       one sentence of explanation) that holds no yes/no at all, and, for YES, no negation (``VERDICT: YES (not
       equivalent)``); otherwise the reply is not a final verdict.

    Never raises."""
    if not isinstance(text, str):
        return None
    text = strip_special_tokens(text)
    mentions = _mentions(text)
    if not mentions or any(m.negated or m.questioned for m in mentions):
        return None
    if len({m.yes for m in mentions}) > 1:
        return None
    deciding = [m for m in mentions if m.bound or m.bare]
    if not deciding:
        return None
    verdict = deciding[-1].yes
    trailing = text[mentions[-1].end:]
    if len(trailing.strip()) > MAX_TRAILING_CHARS or _WORD.search(trailing):
        return None
    sentences = [s for s in _SENTENCE_END.split(trailing) if any(ch.isalnum() for ch in s)]
    if len(sentences) > 1 or (verdict and _TRAILING_NEGATION.search(trailing)):
        return None
    return verdict


def fold_verdict_token(token: object) -> bool | None:
    """True/False when a first-token candidate is the word yes/no in any case, with surrounding spaces, quotes,
    emphasis or punctuation (``"YES"``, ``" yes"``, ``"Yes"``, ``"**NO"``); None for any other token."""
    if not isinstance(token, str):
        return None
    word = token.strip().strip("*_`\"'.,:;!()[]{}<> \t\n").lower()
    return True if word == "yes" else False if word == "no" else None


def verdict_probabilities(top_logprobs: list[tuple[str, float]]) -> tuple[float, float]:
    """(P(YES), P(NO)) of the first reply token: the probabilities of its candidates summed by
    :func:`fold_verdict_token`, each distinct token counted once."""
    p_yes = p_no = 0.0
    seen: set[str] = set()
    for token, logprob in top_logprobs:
        if token in seen:
            continue
        seen.add(token)
        folded = fold_verdict_token(token)
        if folded is None:
            continue
        p = math.exp(logprob) if math.isfinite(logprob) else 0.0
        if folded:
            p_yes += p
        else:
            p_no += p
    return p_yes, p_no


@dataclass
class JudgeOptions:
    """``qwenlong.judge.*``. ``enabled=None`` means "on when base_url is set"."""

    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1; openai_client.openai_base_url: /v1 added when no path
    model: str = "Qwen/Qwen2.5-1.5B-Instruct"
    api_key_env: str | None = "QWENLONG_JUDGE_API_KEY"  # env var holding a bearer key; unset/empty: no auth header
    enabled: bool | None = None
    max_concurrency: int = option(64, ge=1)  # HTTP requests in flight per worker process
    timeout_s: float = option(60.0, ge=0)  # per attempt; 0: none
    max_retries: int = option(3, ge=0)  # attempts after the first
    backoff_s: float = option(0.5, ge=0)  # first retry delay; doubles each retry, with +-25% jitter
    max_backoff_s: float = option(8.0, ge=0)
    temperature: float = 0.0
    # generate mode's reply budget: "two sentences" from a 1.5B judge often take 100-250 tokens, and a reply cut
    # before its verdict line is a failure; the budget is a cap, so it costs time only on replies that run long
    max_tokens: int = option(512, ge=1)
    seed: int | None = 0
    cache_size: int = 100_000  # verdicts kept (LRU); 0 disables the cache but keeps joining in-flight requests
    max_answer_chars: int = 2000  # longer candidate answers are cut (a rambling answer is no answer)
    # generate: the judge writes a short reasoning and a VERDICT line (parse_verdict). logprob: one completion
    # token with its top_logprobs; YES when P(YES) / (P(YES) + P(NO)) >= logprob_threshold. Falls back to
    # generate when the server sends no logprobs (then for the rest of the run) or when P(YES) + P(NO) of the
    # first token is below logprob_min_mass (the judge did not start with the verdict word).
    mode: str = option("generate", choices=MODES,
                       hint="generate: reasoning + VERDICT line; logprob: one token, P(YES) vs P(NO)")
    # first-token candidates asked for (vLLM allows up to its --max-logprobs, default 20)
    top_logprobs: int = option(10, ge=1, le=20, hint="the OpenAI API limit")
    logprob_threshold: float = option(0.5, gt=0.0, lt=1.0)
    logprob_min_mass: float = option(0.5, ge=0.0, le=1.0)

    def __post_init__(self) -> None:
        if self.enabled and not self.base_url:
            raise ValueError("judge enabled but base_url is not set")
        check_fields(self)

    @property
    def active(self) -> bool:
        return bool(self.base_url) if self.enabled is None else bool(self.enabled)

    @property
    def url(self) -> str:
        return chat_completions_url(self.base_url or "")


@dataclass
class JudgeVerdict:
    ok: bool  # a parsed verdict came back
    equivalent: bool = False  # the judge said YES (only meaningful when ok)
    cached: bool = False  # answered from the cache or by joining an identical request in flight
    latency_s: float = 0.0  # wall time of this judge() call
    attempts: int = 0  # HTTP requests this verdict cost (0 when cached)
    error: str | None = None
    raw: str | None = None  # the judge's reply text
    parse_failed: bool = False  # a reply came back but held no clear verdict (not a transport failure)
    mode: str = "generate"  # the mode that produced the verdict ("logprob" unless it fell back)
    p_yes: float | None = None  # logprob mode: P(YES) / (P(YES) + P(NO)) of the first token

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
    unparseable: int = 0  # failures that were replies without a clear verdict (parse failures)
    transport_failures: int = 0  # failures without a usable reply (timeouts, HTTP errors, garbage after retries)
    truncated: int = 0  # unparseable generate replies stopped by max_tokens (finish_reason "length")
    logprob_verdicts: int = 0  # verdicts read from first-token probabilities
    logprob_fallbacks: int = 0  # logprob requests answered without logprobs: generate mode was used
    logprob_low_mass: int = 0  # logprob requests whose first token was not yes/no: generate mode was used
    completion_tokens_requested: int = 0  # sum of max_tokens over HTTP requests
    completion_tokens_received: int = 0  # sum of usage.completion_tokens over replies that report it
    usage_missing: int = 0  # replies without usage.completion_tokens
    yes: int = 0
    latency_total_s: float = 0.0  # over requests sent
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        self._inflight: dict[str, asyncio.Future] = {}
        # the HTTP side (connections, concurrency bound, retries): per event loop inside the transport
        self._http = OpenAIChatTransport(
            options.url, api_key_env=options.api_key_env, max_connections=options.max_concurrency,
            timeout_s=options.timeout_s, retry=RetryPolicy(options.max_retries, options.backoff_s,
                                                           options.max_backoff_s))
        self._logprobs_unsupported = False  # logprob mode: the server ignored logprobs once; use generate mode

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
        if loop is self._loop:
            return
        # in-flight futures belong to one loop, like the transport's connections and semaphore; a new loop (e.g. a
        # second asyncio.run) gets fresh ones. The verdict cache is plain data and carries over.
        self._loop = loop
        self._inflight = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- API ---------------------------------------------------------------------------------------------------------
    @staticmethod
    def cache_key(question: str, answer: str, gold: str) -> str:
        payload = json.dumps([str(question).strip(), str(answer).strip(), str(gold).strip()], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def messages(self, question: str, answer: str, gold: str, mode: str = "generate") -> list[dict[str, str]]:
        """The chat messages of one judge request; ``mode="logprob"`` asks for the one-word reply."""
        answer = str(answer).strip()
        if len(answer) > self.options.max_answer_chars:
            answer = answer[: self.options.max_answer_chars] + " ..."
        user = JUDGE_USER_TEMPLATE.format(question=str(question).strip(), gold=str(gold).strip(), answer=answer)
        system = JUDGE_LOGPROB_SYSTEM_PROMPT if mode == "logprob" else JUDGE_SYSTEM_PROMPT
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

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
                                error=verdict.error, latency_s=time.perf_counter() - start,
                                parse_failed=verdict.parse_failed, mode=verdict.mode, p_yes=verdict.p_yes)
        future: asyncio.Future = self._loop.create_future()  # type: ignore[union-attr]
        self._inflight[key] = future
        try:
            verdict = await self._request(question, answer, gold)
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

    def _body(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False) -> dict[str, Any]:
        opts = self.options
        body: dict[str, Any] = {"model": opts.model, "messages": messages, "temperature": opts.temperature,
                                "max_tokens": max_tokens}
        if opts.seed is not None:
            body["seed"] = opts.seed
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = int(opts.top_logprobs)
        return body

    async def _request(self, question: str, answer: str, gold: str) -> JudgeVerdict:
        """One verdict: in logprob mode a 1-token request first, generate mode when it gives no verdict."""
        opts = self.options
        self.stats.requests += 1
        start = time.perf_counter()
        attempts = 0
        try:
            if opts.mode == "logprob" and not self._logprobs_unsupported:
                reply, n = await self._send(self._body(self.messages(question, answer, gold, "logprob"), 1, True))
                attempts += n
                verdict = self._logprob_verdict(reply)
                if verdict is not None:
                    return self._success(verdict, attempts, start)
            reply, n = await self._send(self._body(self.messages(question, answer, gold), opts.max_tokens))
            attempts += n
        except RequestFailed as exc:
            attempts += exc.attempts
            self.stats.failures += 1
            self.stats.transport_failures += 1
            self.stats.latency_total_s += time.perf_counter() - start
            # a judge that is down fails every sample: log the first few and then every 100th, with the count
            if self.stats.failures <= 5 or self.stats.failures % 100 == 0:
                logger.warning("judge request failed after %d attempt(s) (%d failures so far; the samples keep "
                               "their rule score): %s", attempts, self.stats.failures, exc.error)
            return JudgeVerdict(ok=False, attempts=attempts, error=exc.error)
        verdict = parse_verdict(reply.content)
        if verdict is None:
            cut = reply.finish_reason == "length"
            self.stats.unparseable += 1
            self.stats.failures += 1
            self.stats.truncated += int(cut)
            self._count_error("unparseable")
            self.stats.latency_total_s += time.perf_counter() - start
            why = f" (cut at max_tokens={opts.max_tokens}: raise qwenlong.judge.max_tokens)" if cut else ""
            return JudgeVerdict(ok=False, attempts=attempts, raw=reply.content, parse_failed=True,
                                error=f"unparseable verdict{why}: {reply.content[-200:]!r}")
        return self._success(JudgeVerdict(ok=True, equivalent=verdict, raw=reply.content), attempts, start)

    def _success(self, verdict: JudgeVerdict, attempts: int, start: float) -> JudgeVerdict:
        verdict.attempts = attempts
        self.stats.successes += 1
        self.stats.yes += int(verdict.equivalent)
        self.stats.latency_total_s += time.perf_counter() - start
        return verdict

    def _logprob_verdict(self, reply: _Reply) -> JudgeVerdict | None:
        """The verdict of a 1-token reply from its first-token candidates; None means "use generate mode"."""
        opts = self.options
        if reply.top_logprobs is None:
            self.stats.logprob_fallbacks += 1  # every request already sent when the first such reply came back
            if self._logprobs_unsupported:
                return None
            self._logprobs_unsupported = True
            logger.warning("judge: qwenlong.judge.mode=logprob, but %s returned no logprobs; using generate mode "
                           "for the rest of this run (vLLM returns them; check the server's --max-logprobs >= "
                           "qwenlong.judge.top_logprobs=%d)", opts.url, opts.top_logprobs)
            return None
        p_yes, p_no = verdict_probabilities(reply.top_logprobs)
        if p_yes + p_no < opts.logprob_min_mass:
            self.stats.logprob_low_mass += 1
            logger.debug("judge: first token is not a verdict (P(YES)+P(NO)=%.3f < %.3f, reply %r); asking in "
                         "generate mode", p_yes + p_no, opts.logprob_min_mass, reply.content)
            return None
        share = p_yes / (p_yes + p_no)
        self.stats.logprob_verdicts += 1
        return JudgeVerdict(ok=True, equivalent=share >= opts.logprob_threshold, raw=reply.content, mode="logprob",
                            p_yes=share)

    async def _send(self, body: dict[str, Any]) -> tuple[_Reply, int]:
        """POST ``body`` with the package's retry policy; (reply, attempts), or
        :class:`~qwenlong_verl.openai_client.RequestFailed` with the last error."""
        def on_attempt(k: int) -> None:
            self.stats.retries += int(k > 0)
            self.stats.attempts += 1
            self.stats.completion_tokens_requested += int(body["max_tokens"])

        def on_error(exc: AttemptError) -> None:
            self._count_error(exc.kind)

        self._bind_loop()
        result = await self._http.post(body, _parse_reply, on_attempt=on_attempt, on_error=on_error)
        reply = result.value
        if reply.completion_tokens is None:
            self.stats.usage_missing += 1
        else:
            self.stats.completion_tokens_received += reply.completion_tokens
        return reply, result.attempts


@dataclass
class _Reply:
    content: str
    top_logprobs: list[tuple[str, float]] | None  # the first token's candidates; None: the server sent none
    completion_tokens: int | None  # usage.completion_tokens, when reported
    finish_reason: str | None


def _parse_reply(payload: Any) -> _Reply:
    """The judge's reply from a chat-completion body; raises (a retried ``bad body``) when it holds no text."""
    try:
        choice = payload["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{json.dumps(payload)[:200]!r}") from exc
    if not isinstance(content, str):
        raise ValueError(f"content is {type(content).__name__}")
    usage = payload.get("usage") if isinstance(payload, dict) else None
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return _Reply(content=content, top_logprobs=_first_token_candidates(choice.get("logprobs")),
                  completion_tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
                  finish_reason=choice.get("finish_reason"))


def _first_token_candidates(logprobs: object) -> list[tuple[str, float]] | None:
    """(token, logprob) candidates of the first generated token from an OpenAI chat ``choices[0].logprobs``
    (``{"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}, ...]}, ...]}``), the chosen token
    included; None when absent or malformed."""
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    first = content[0]
    out: list[tuple[str, float]] = []
    for item in [first, *(first.get("top_logprobs") or [])]:
        if not isinstance(item, dict):
            continue
        token, logprob = item.get("token"), item.get("logprob")
        if isinstance(token, str) and isinstance(logprob, int | float) and not isinstance(logprob, bool):
            out.append((token, float(logprob)))
    return out or None
