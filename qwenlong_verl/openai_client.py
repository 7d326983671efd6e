"""The one HTTP client of this package for OpenAI-compatible endpoints (vLLM's server).

Both the LLM judge (:class:`qwenlong_verl.reward.judge.JudgeClient`) and evaluation
(:class:`qwenlong_verl.evaluation.client.ChatClient`) send their requests through :class:`OpenAIChatTransport`, and
every up-front "does the server answer?" check (the training guard, ``preflight``, ``judge-check``, ``eval``,
``score``) goes through :func:`list_models`, the one ``GET <base>/models`` of the package. Both make their httpx
client with :func:`client_options`, so a probe takes exactly the route training takes: one library (httpx), one
proxy policy, one way of handling keys, TLS, limits and event loops:

* **Retries** (:class:`RetryPolicy`): a refused or timed-out *connection* is retried by httpx's own transport
  (``httpx.AsyncHTTPTransport(retries=max_retries)``, httpcore's backoff). Everything after the connection, which
  httpx does not retry, is retried here with exponential backoff and ±25% jitter (``backoff_s * 2**k``, at most
  ``max_backoff_s``): a timeout, a dropped connection, HTTP 408/409/429/5xx, and a body that is not a valid reply.
  A ``Retry-After`` header on an HTTP error is honoured (the next attempt waits at least that long, up to
  :data:`MAX_RETRY_AFTER_S`).
  Any other HTTP status (a prompt over the context, a wrong model name, a 404) fails at once.
* **Timeouts**: ``timeout_s`` bounds one attempt from connect to the last byte (0: none); ``connect_timeout_s`` bounds
  establishing the connection.
* **Limits**: at most ``max_connections`` requests in flight per event loop (a semaphore held for the HTTP exchange
  only, never during a backoff) over as many keep-alive connections, in httpx clients of
  :data:`CONNECTIONS_PER_POOL` connections each, a request going to the least busy one: httpcore 1.0's pool does
  work quadratic in its connections at every request start and end, which at 64 connections in one pool costs ~10 ms
  of CPU per request (10x aiohttp's time in ``bench/bench_judge.py``); pools of 4 cost what aiohttp does.
* **Event loops**: the httpx client and the semaphore belong to one event loop; a call from another loop (a second
  ``asyncio.run``, the reward loop of another worker thread) gets fresh ones. What the caller keeps across loops
  (the judge's verdict cache) is its own.
* **Credentials**: an API key is sent only when asked for (``api_key_env`` names the variable holding it; unset or
  empty: no ``Authorization`` header). User info in the URL (``http://user:pw@host/v1``) is sent to that host as
  HTTP basic auth, by httpx, and then replaces the bearer key. URLs in messages have user info and key-like query
  values masked (:func:`qwenlong_verl.redaction.redact_url`).
* **Proxies and the environment** (an explicit transport and ``trust_env=False``): ``http_proxy``,
  ``https_proxy``, ``all_proxy`` and ``no_proxy`` (either case) are ignored, and so is ``~/.netrc``: every request
  connects straight to the host in the URL. The judge and the model server are cluster-internal (a node of the job,
  or a host next to it), which a site proxy usually cannot reach; a proxy would also receive the URL's
  ``user:password``; and the probes must take the route training takes, so that a probe that passes means the
  reward's calls connect too. A judge reachable only through a proxy: tunnel it (``ssh -L``) and give the local
  URL. ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are honoured (read once, when the first client is made): they name
  the CA bundle of an ``https://`` judge with a site certificate, and change whom we trust, not where we connect.

Failures are :class:`RequestFailed` with the last :class:`AttemptError`, whose ``kind`` (``"timeout"``,
``"connection"``, ``"http 503"``, ``"bad body"``) callers count.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import random
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from qwenlong_verl.redaction import redact, redact_url

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx
CONNECTIONS_PER_POOL = 4  # see the module docstring (Limits)
MAX_RETRY_AFTER_S = 120.0  # a server's Retry-After is honoured up to this (a longer wait is a failed request)


def chat_completions_url(endpoint: str) -> str:
    """``<base>/chat/completions`` of an endpoint, ``<base>`` being :func:`openai_base_url`'s: the URL every chat
    request of the package (judge in training, ``score``, ``eval``'s model and judge) goes to."""
    return openai_base_url(endpoint) + "/chat/completions"


def http_url_error(text: str) -> tuple[str, str] | None:
    """Why ``text`` is not an http(s) URL with a host, or None when it is: the one rule behind the ``qwenlong.judge``
    option check, the commands' URL arguments and the evaluation options.

    Args:
        text: the URL as given (surrounding blanks ignored).

    Returns:
        None, ``("invalid", <the parser's message>)`` (e.g. a port that is not a number; the message may quote the
        URL's user info: redact it before showing it), or ``("not_http", "")`` (another scheme, or no host).
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text.strip())
        _ = parts.port  # raises ValueError for a non-numeric port
    except ValueError as exc:
        return "invalid", str(exc)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not_http", ""
    return None


def openai_base_url(url: str) -> str:
    """The OpenAI base URL of a server, the one rule for every URL the package is given (``qwenlong.judge.base_url``,
    ``--judge-url``, ``eval --endpoint``/``--judge-endpoint``, ``judge-check --url``, the probes).

    ``/v1`` is added only when the URL has no path (``http://host:8000`` is vLLM's root); a path the user wrote is
    kept, as the OpenAI client keeps its ``base_url``: gateways serve the API under paths that do not end in ``/v1``
    (``.../v1beta/openai``), and a reverse proxy's prefix is written with its ``/v1`` (``https://gw/judge/v1``).
    A trailing ``/chat/completions`` (the full request URL pasted in) is taken off.

    Args:
        url: the server as the user gave it.

    Returns:
        The base without a trailing slash: ``http://h:8000`` -> ``http://h:8000/v1``; ``http://h:8000/v1/`` and
        ``http://h:8000/v1/chat/completions`` -> ``http://h:8000/v1``; ``https://gw/api`` -> ``https://gw/api``.
    """
    from urllib.parse import urlsplit

    base = url.strip().rstrip("/").removesuffix("/chat/completions").rstrip("/")
    return base + "/v1" if urlsplit(base).path in ("", "/") else base


def models_url(endpoint: str) -> str:
    """``<base>/models`` (:func:`openai_base_url`): the model list of an OpenAI-compatible server, which every server
    probe of the package asks for (:func:`list_models`)."""
    return openai_base_url(endpoint) + "/models"


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, made once: each transport would otherwise load the CA bundle (~40 ms).
    It reads ``SSL_CERT_FILE``/``SSL_CERT_DIR`` (see the module docstring: Proxies and the environment)."""
    return httpx.create_ssl_context()


def request_headers(api_key_env: str | None) -> dict[str, str]:
    """Headers of every request: JSON, and ``Authorization: Bearer`` only when ``api_key_env`` names a set
    variable (read at each call: a key exported after start-up is used)."""
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def client_options(*, api_key_env: str | None, timeout_s: float, connect_timeout_s: float, max_connections: int,
                   retries: int, sync: bool = False,
                   transport: httpx.AsyncBaseTransport | httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Keyword arguments of every httpx client of the package (``httpx.AsyncClient(**client_options(...))``, or
    ``httpx.Client`` with ``sync=True``): the one place the route, proxy policy, auth and TLS are decided, so the
    judge's calls and the probes cannot drift apart (see the module docstring).

    Args:
        api_key_env: Name of the variable holding a bearer key (:func:`request_headers`); None: no key.
        timeout_s: Bound on one request from connect to the last byte; 0: none.
        connect_timeout_s: Bound on establishing the connection (at most ``timeout_s``).
        max_connections: Connections the client may hold (all kept alive).
        retries: Connection attempts httpx's transport retries (refused or timed-out connects only).
        sync: Options for ``httpx.Client`` (a synchronous transport) rather than ``httpx.AsyncClient``.
        transport: Tests: a custom transport instead of httpx's (it then makes no connect retries).
    """
    total = timeout_s or None
    timeout = httpx.Timeout(total, connect=connect_timeout_s if total is None else min(connect_timeout_s, total))
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    if transport is None:
        transport_cls = httpx.HTTPTransport if sync else httpx.AsyncHTTPTransport
        transport = transport_cls(retries=retries, limits=limits, verify=_ssl_context())
    # an explicit transport makes httpx mount no proxy from the environment, and trust_env=False also drops
    # ~/.netrc: both, so neither alone is load-bearing (the module docstring says why)
    return {"headers": request_headers(api_key_env), "timeout": timeout, "limits": limits, "transport": transport,
            "trust_env": False}


def list_models(endpoint: str, *, timeout_s: float = 3.0,
                api_key_env: str | None = None) -> tuple[str | None, list[str]]:
    """``GET <endpoint>/models`` (:func:`models_url`) on an OpenAI-compatible server, over a client made like the
    judge's (:func:`client_options`: no proxy, URL user info as basic auth, the same TLS), so a server that answers
    here is one the reward's calls reach. No model work is done, and no connection is retried: it is a probe.

    Args:
        endpoint: ``http://host:port/v1`` or ``.../v1/chat/completions`` (user info allowed).
        timeout_s: Bound on connecting and on the reply (seconds).
        api_key_env: Name of the variable holding the bearer key training sends; None or unset: no key.

    Returns:
        (why nothing answers, or None when a server answered; the model ids it lists). Any HTTP answer counts as
        reachable: an auth error or a 404 from a server without ``/models`` still shows a server is there (then
        the list is empty, as it is for a body that is not a model list). The reason never holds a credential.
    """
    url = models_url(endpoint)
    try:
        with httpx.Client(**client_options(api_key_env=api_key_env, timeout_s=timeout_s, connect_timeout_s=timeout_s,
                                           max_connections=1, retries=0, sync=True)) as client:
            resp = client.get(url)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        return redact(reason), []
    if resp.status_code >= 300:
        return None, []
    try:
        payload = resp.json()
    except ValueError:
        return None, []
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return None, []
    return None, [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date; RFC 9110 §10.2.3), or None when
    absent or unreadable. A 429/503 that says when to come back is retried no sooner: retrying earlier only adds
    load to an overloaded judge."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils
    import time

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_retryable_status(status: int) -> bool:
    return status in RETRY_STATUS or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """Retries after the first attempt and their delays: ``backoff_s * 2**(k-1)`` before retry k, capped at
    ``max_backoff_s``, times a uniform jitter in [0.75, 1.25]."""

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def delay(self, retry: int, rng: random.Random) -> float:
        base = min(self.backoff_s * 2 ** (retry - 1), self.max_backoff_s)
        return base * rng.uniform(0.75, 1.25)


class AttemptError(Exception):
    """One attempt failed. ``kind`` is the counted category (``timeout``, ``connection``, ``http <status>``,
    ``bad body``); ``str()`` is ``"<kind>: <detail>"``; ``retryable`` says whether another attempt may help."""

    def __init__(self, kind: str, detail: str, *, retryable: bool, status: int | None = None, text: str = "",
                 retry_here: bool | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), if it said
        self.kind = kind
        self.detail = detail
        self.retryable = retryable
        self.retry_here = retryable if retry_here is None else retry_here  # False: the transport already retried
        self.status = status  # HTTP status of an HTTP error
        self.text = text  # the body of an HTTP error, decoded


class RequestFailed(Exception):
    """No usable reply after ``attempts`` attempts; ``last`` is the final attempt's error. ``retryable`` is True
    when the retries were spent on transient errors, False when the server refused the request for good."""

    def __init__(self, last: AttemptError, attempts: int) -> None:
        super().__init__(str(last))
        self.last = last
        self.attempts = attempts
        self.error = str(last)

    @property
    def retryable(self) -> bool:
        return self.last.retryable


@dataclass
class Reply(Generic[T]):
    value: T  # what ``parse`` made of the JSON body
    attempts: int


class OpenAIChatTransport:
    """POST JSON bodies to one ``/chat/completions`` URL with the module's retry policy (see module docstring).

    ``parse`` turns the decoded JSON body into the caller's reply and raises ValueError/KeyError/IndexError/TypeError
    for a body that is not one (a retried ``bad body``). ``on_attempt(k)`` is called before attempt k (0: the first;
    k > 0 is a retry) and ``on_error(error)`` after each failed attempt, so callers can keep their counters."""

    def __init__(self, url: str, *, api_key_env: str | None = None, max_connections: int = 64,
                 timeout_s: float = 60.0, connect_timeout_s: float = 10.0, retry: RetryPolicy | None = None,
                 warn_missing_key: bool = False, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not str(url).startswith(("http://", "https://")):
            raise ValueError(f"endpoint must start with http:// or https://, got {redact_url(url)!r}")
        self.url = url
        self.api_key_env = api_key_env
        self.max_connections = int(max_connections)
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.retry = retry or RetryPolicy()
        self._transport = transport  # tests: a custom transport (then httpx makes no connect retries)
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: list[httpx.AsyncClient] = []
        self._free: list[int] = []  # free connections per client
        self._semaphore: asyncio.Semaphore | None = None
        if warn_missing_key and api_key_env and not os.environ.get(api_key_env):
            logger.warning("the API key variable %s is not set; sending requests without a key", api_key_env)

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    def headers(self) -> dict[str, str]:
        """Request headers (:func:`request_headers`)."""
        return request_headers(self.api_key_env)

    # -- per-event-loop state ----------------------------------------------------------------------------------------
    def _bind_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or not self._clients or self._clients[0].is_closed:
            # httpx clients' connections and an asyncio semaphore belong to the loop that made them: a new loop
            # gets fresh ones (the old clients' connections died with their loop)
            if self._transport is not None:
                sizes = [self.max_connections]
            else:
                n, rest = divmod(self.max_connections, CONNECTIONS_PER_POOL)
                sizes = [CONNECTIONS_PER_POOL] * n + ([rest] if rest else [])
            self._clients = [httpx.AsyncClient(**client_options(
                api_key_env=self.api_key_env, timeout_s=self.timeout_s, connect_timeout_s=self.connect_timeout_s,
                max_connections=size, retries=self.retry.max_retries, transport=self._transport)) for size in sizes]
            self._free = list(sizes)
            self._semaphore = asyncio.Semaphore(self.max_connections)
            self._loop = loop
        assert self._semaphore is not None
        return self._semaphore

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            if not client.is_closed:
                try:
                    await client.aclose()
                except RuntimeError:  # made on a loop that is gone: its connections went with it
                    pass

    async def __aenter__(self) -> OpenAIChatTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- requests ----------------------------------------------------------------------------------------------------
    async def post(self, body: Mapping[str, Any], parse: Callable[[Any], T], *,
                   on_attempt: Callable[[int], None] | None = None,
                   on_error: Callable[[AttemptError], None] | None = None) -> Reply[T]:
        """POST ``body`` until a reply parses; :class:`Reply` or :class:`RequestFailed`."""
        last: AttemptError | None = None
        for attempt in range(self.retry.max_retries + 1):
            if attempt:
                delay = self.retry.delay(attempt, self._rng)
                if last is not None and last.retry_after is not None:  # the server said how long: never sooner
                    delay = max(delay, min(last.retry_after, MAX_RETRY_AFTER_S))
                await asyncio.sleep(delay)
            if on_attempt is not None:
                on_attempt(attempt)
            try:
                return Reply(await self._attempt(body, parse), attempt + 1)
            except AttemptError as exc:
                last = exc
                if on_error is not None:
                    on_error(exc)
                logger.debug("%s attempt %d/%d failed: %s", self.display_url, attempt + 1,
                             self.retry.max_retries + 1, exc)
                if not exc.retry_here:
                    break
        assert last is not None
        raise RequestFailed(last, attempt + 1)

    async def _attempt(self, body: Mapping[str, Any], parse: Callable[[Any], T]) -> T:
        semaphore = self._bind_loop()
        async with semaphore:  # held for the HTTP exchange only, not during backoff
            # the client with the most free connections has one: the semaphore admits at most the sum of their limits
            i = max(range(len(self._free)), key=self._free.__getitem__)
            self._free[i] -= 1
            try:
                resp = await asyncio.wait_for(self._clients[i].post(self.url, json=body), self.timeout_s or None)
                raw = resp.content
            except (asyncio.TimeoutError, httpx.TimeoutException) as exc:
                if isinstance(exc, httpx.ConnectTimeout):
                    raise AttemptError("connection", f"ConnectTimeout: no connection within "
                                       f"{self.connect_timeout_s}s", retryable=True,
                                       retry_here=self._transport is not None) from exc
                raise AttemptError("timeout", f"no reply within {self.timeout_s}s", retryable=True) from exc
            except httpx.ConnectError as exc:
                # httpx's transport already retried the connection (retries=max_retries): do not multiply them
                raise AttemptError("connection", f"ConnectError: {redact(str(exc))}",
                                   retryable=True, retry_here=self._transport is not None) from exc
            except httpx.TransportError as exc:  # dropped connection, protocol error: worth another attempt
                raise AttemptError("connection", f"{type(exc).__name__}: {redact(str(exc))}",
                                   retryable=True) from exc
            finally:
                self._free[i] += 1
        status = resp.status_code
        if status >= 300:
            # a server's error body may echo the request, Authorization header included: masked here, at the
            # source, so no log line, stderr message, scored row or report can carry it
            text = redact(raw.decode("utf-8", "replace"))
            raise AttemptError(f"http {status}", repr(text[:200]),
                               retryable=is_retryable_status(status), status=status, text=text,
                               retry_after=parse_retry_after(resp.headers.get("Retry-After")))
        try:
            return parse(json.loads(raw))
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # JSONDecodeError is a ValueError
            detail = (repr(redact(raw.decode("utf-8", "replace"))[:200])
                      if isinstance(exc, json.JSONDecodeError) else redact(str(exc))[:300])
            raise AttemptError("bad body", detail, retryable=True) from exc
