"""A scripted OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks.

It stands in for ``vllm serve`` (``POST /v1/chat/completions``, ``GET /v1/models``) and can be told to misbehave:
answer slowly, return HTTP 5xx, drop the connection without a reply, or send a garbage body, either for the first
``k`` calls or for a random fraction of them. A ``responder`` callback turns the request's messages into the reply
text. Every request is counted and its body kept.

Usage::

    with FakeOpenAIServer(latency_s=0.05, responder=lambda msgs: "VERDICT: YES") as server:
        client = JudgeClient(JudgeOptions(base_url=server.base_url, ...))
        ...
        assert server.count == 3

Logprobs (for the judge's ``logprob`` mode): a request with ``"logprobs": true`` gets, when ``logprobs`` is set, the
first token's candidates in the OpenAI chat format (``choices[0].logprobs.content[0].top_logprobs``), cut to the
request's ``top_logprobs``, and a reply of ``max_tokens`` fake tokens. ``logprobs`` is a callable (messages ->
``[(token, probability), ...]``) or ``"derive"``: candidates read from the scripted reply's verdict (``VERDICT:
YES`` -> "YES" 0.90, " Yes" 0.05, "NO" 0.03, "The" 0.02). Unset, the reply has no logprobs, like a server that
ignores the option. ``usage.completion_tokens`` counts the reply's fake tokens (a word or a punctuation mark with
its leading space); ``honour_max_tokens`` cuts every reply to ``max_tokens`` of them (``finish_reason: "length"``).

Ordering without sleeps: ``server.hold(which)`` makes the chat requests whose call number ``which`` accepts (all
when None) wait at a gate until ``server.release()``; ``server.wait_held(k)`` returns once k requests wait there. A
test can so keep requests "in flight" for exactly as long as it needs (to check what the client did meanwhile, or
that a client timeout fired) instead of guessing a latency. ``server.barrier(k)`` lets requests through only k at a
time, all k together: it proves that k requests were at the server at once. A gate or barrier not opened within
``hold_timeout_s`` (default 60 s) answers HTTP 500 "held too long", so a broken test fails instead of hanging.

The behaviour can be changed while it runs (``server.configure(fail_first=2)``), and ``python
tests/fake_openai_server.py --port 8000 --latency 0.05`` serves it from a shell (``--port 0``: a free port; the
first line printed is ``serving <base_url>``); ``GET /stats`` and ``POST /reset`` read and clear its counters from
another process. Standard library only: each connection gets a thread (``ThreadingHTTPServer``), so a slow reply
never blocks the others.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[list[dict[str, Any]]], str]
LogprobScript = Callable[[list[dict[str, Any]]], list[tuple[str, float]]]

GARBAGE_BODY = b"<html><body>502 Bad Gateway? {not json"


@dataclass
class Behaviour:
    """What the server does with each call. ``*_first`` act on the first k calls (counted from the last reset),
    ``*_rate`` on a random fraction of the others (seeded, reproducible). Checked in the order drop, fail,
    garbage."""

    latency_s: float | Callable[[int], float] = 0.0  # seconds before answering; a callable gets the call number
    fail_first: int = 0
    fail_rate: float = 0.0
    fail_status: int = 503
    drop_first: int = 0
    drop_rate: float = 0.0
    garbage_first: int = 0
    garbage_rate: float = 0.0
    responder: Responder | None = None
    default_reply: str = "OK"
    logprobs: LogprobScript | str | None = None  # first-token candidates when asked: a callable, "derive" or None
    honour_max_tokens: bool = False  # cut every reply to the request's max_tokens fake tokens
    model: str = "fake-judge"
    seed: int = 0


@dataclass
class RequestLog:
    number: int  # 0-based call number since the last reset
    path: str
    body: dict[str, Any] | None
    outcome: str  # "ok" | "fail" | "drop" | "garbage" | "bad_request" | "not_found"
    started: float = field(default_factory=time.monotonic)
    headers: dict[str, str] = field(default_factory=dict)  # request headers (e.g. to check what auth was sent)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a client pool reuses connections like it would with vLLM
    disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle + delayed ACK would add ~40 ms
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read counters, not logs
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        owner = self.server.owner
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, {"object": "list", "data": [{"id": owner.behaviour.model, "object": "model"}]})
        elif self.path.rstrip("/") == "/stats":  # counters for a server running in another process
            self._send_json(200, {"count": owner.count, "outcomes": dict(owner.outcomes),
                                  "max_in_flight": owner.max_in_flight})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") == "/reset":
            owner.reset_counts()
            self._send_json(200, {"reset": True})
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            owner._record(self.path, None, "not_found")
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"null")
            messages = body["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            owner._record(self.path, None, "bad_request")
            self._send_json(400, {"error": {"message": f"bad request: {exc}"}})
            return

        number, outcome, delay, beh = owner._decide()
        owner._record(self.path, body, outcome, number, headers=dict(self.headers.items()))
        try:
            self._reply(outcome, delay, beh, body, messages, number)
        finally:
            owner._done()

    def _reply(self, outcome: str, delay: float, beh: Behaviour, body: dict[str, Any],
               messages: list[dict[str, Any]], number: int) -> None:
        why = self.server.owner._wait_at_gate(number)
        if why is not None:
            self._send_json(500, {"error": {"message": why}})
            return
        if delay > 0:
            time.sleep(delay)
        if outcome == "drop":
            # Close without a status line: the client sees "server disconnected without sending a response".
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if outcome == "fail":
            self._send_json(beh.fail_status, {"error": {"message": "injected server error", "code": beh.fail_status}})
            return
        if outcome == "garbage":
            self._send_raw(200, GARBAGE_BODY, "application/json")
            return
        try:
            text = beh.responder(messages) if beh.responder is not None else beh.default_reply
            candidates = None
            if body.get("logprobs") and beh.logprobs is not None:
                candidates = (_derived_candidates(text) if beh.logprobs == "derive"
                              else list(beh.logprobs(messages)))  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - a broken responder is a 500, like a crashing server
            self._send_json(500, {"error": {"message": f"responder raised {exc!r}"}})
            return
        self._send_json(200, _completion(body.get("model") or beh.model, text, body, candidates,
                                         beh.honour_max_tokens))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json")

    def _send_raw(self, status: int, data: bytes, ctype: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): nothing to do


_FAKE_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")


def fake_tokens(text: str) -> list[str]:
    """A crude tokenisation for token counts: a word or one punctuation mark, with its leading whitespace."""
    return _FAKE_TOKEN.findall(text)


def _derived_candidates(text: str) -> list[tuple[str, float]]:
    """First-token candidates that agree with the scripted reply's verdict (the last YES/NO word in it)."""
    words = re.findall(r"\b(YES|NO)\b", text)
    if not words:
        return [("The", 0.9), ("I", 0.05), ("YES", 0.03), ("NO", 0.02)]
    top, other = ("YES", "NO") if words[-1] == "YES" else ("NO", "YES")
    return [(top, 0.90), (" " + top.capitalize(), 0.05), (other, 0.03), ("The", 0.02)]


def _completion(model: str, text: str, request: dict[str, Any] | None = None,
                candidates: list[tuple[str, float]] | None = None, honour_max_tokens: bool = False) -> dict[str, Any]:
    request = request or {}
    max_tokens = request.get("max_tokens")
    finish = "stop"
    logprobs = None
    if candidates:
        ranked = sorted(candidates, key=lambda c: -c[1])
        k = int(request.get("top_logprobs") or 0)
        top = [{"token": t, "logprob": math.log(p) if p > 0 else -9999.0, "bytes": list(t.encode())}
               for t, p in ranked[:max(k, 1)]]
        logprobs = {"content": [{**top[0], "top_logprobs": top[:k]}]}
        if isinstance(max_tokens, int) and max_tokens <= 1:
            text = ranked[0][0]
            finish = "length"
    tokens = fake_tokens(text)
    if (honour_max_tokens or candidates) and isinstance(max_tokens, int) and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        text = "".join(tokens)
        finish = "length"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": logprobs,
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 0, "completion_tokens": len(tokens), "total_tokens": len(tokens)},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a burst of 64+ new connections must not overflow the listen backlog
    owner: FakeOpenAIServer


class FakeOpenAIServer:
    """A background-thread OpenAI-compatible server on 127.0.0.1 (port 0 = a free one). Context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, hold_timeout_s: float = 60.0,
                 **behaviour: Any) -> None:
        self.behaviour = Behaviour(**behaviour)
        self._rng = random.Random(self.behaviour.seed)
        self._lock = threading.Lock()
        self._held_changed = threading.Condition(self._lock)
        self.hold_timeout_s = hold_timeout_s  # a held request not released by then fails (HTTP 500), never hangs
        self._hold: Callable[[int], bool] | None = None  # which call numbers wait at the gate
        self._gate = threading.Event()  # set: open
        self._gate.set()
        self._barrier: threading.Barrier | None = None
        self.held = 0  # requests waiting at the gate or the barrier now
        self.hold_timeouts = 0  # requests that gave up waiting (the test never released them)
        self._calls = 0
        self.requests: list[RequestLog] = []
        self._in_flight = 0
        self.max_in_flight = 0  # the most chat requests handled at once: shows the client's real concurrency
        self._httpd = _Server((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="fake-openai-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` (ends in ``/v1``), as a client such as ``openai.AsyncOpenAI`` expects it."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting -----------------------------------------------------------------------------------------------
    def configure(self, **changes: Any) -> None:
        """Change behaviour fields (e.g. ``fail_first=2``) and restart the call numbering that ``*_first`` uses."""
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.behaviour, key):
                    raise AttributeError(f"FakeOpenAIServer has no behaviour '{key}'")
                setattr(self.behaviour, key, value)
            if "seed" in changes:
                self._rng = random.Random(self.behaviour.seed)
            self._calls = 0

    # -- ordering: gates and barriers ----------------------------------------------------------------------------
    def hold(self, which: Callable[[int], bool] | None = None) -> None:
        """Make chat requests wait before they are answered, until :meth:`release`.

        Args:
            which: gets each request's call number (0-based since the last ``configure``/reset) and says whether
                it waits; None holds every request.
        """
        with self._lock:
            self._hold = which if which is not None else (lambda n: True)
            self._gate.clear()

    def release(self) -> None:
        """Open the gate: every held request goes on, and later ones are not held (until the next :meth:`hold`)."""
        with self._lock:
            self._hold = None
            self._gate.set()

    def barrier(self, parties: int | None) -> None:
        """Let chat requests through ``parties`` at a time, each group only once all of it has arrived (cyclic:
        the next ``parties`` requests form the next group). None removes the barrier.

        Args:
            parties: the group size; a group that never fills fails after ``hold_timeout_s`` (HTTP 500).
        """
        with self._lock:
            self._barrier = threading.Barrier(parties) if parties else None

    def wait_held(self, k: int, timeout: float | None = None) -> bool:
        """Wait until at least ``k`` requests wait at the gate or the barrier; False if that did not happen within
        ``timeout`` seconds (default ``hold_timeout_s``)."""
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self.held >= k,
                                               self.hold_timeout_s if timeout is None else timeout)

    def _wait_at_gate(self, number: int) -> str | None:
        """Block a request at the gate and then the barrier if they apply to it; the error text if it waited longer
        than ``hold_timeout_s``."""
        with self._lock:
            gated = self._hold is not None and self._hold(number)
            barrier = self._barrier
            if not gated and barrier is None:
                return None
            self.held += 1
            self._held_changed.notify_all()
        why = None
        try:
            if gated and not self._gate.wait(self.hold_timeout_s):
                why = f"held too long: call {number} was not released within {self.hold_timeout_s} s"
            elif barrier is not None:
                try:
                    barrier.wait(self.hold_timeout_s)
                except threading.BrokenBarrierError:
                    why = (f"held too long: barrier of {barrier.parties} did not fill within "
                           f"{self.hold_timeout_s} s (call {number})")
        finally:
            with self._lock:
                self.held -= 1
                if why is not None:
                    self.hold_timeouts += 1
                self._held_changed.notify_all()
        return why

    def reset_counts(self) -> None:
        with self._lock:
            self._calls = 0
            self.requests = []
            self.max_in_flight = 0

    @property
    def count(self) -> int:
        """Chat-completion requests received (every outcome)."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.rstrip("/") == "/v1/chat/completions")

    @property
    def outcomes(self) -> Counter[str]:
        with self._lock:
            return Counter(r.outcome for r in self.requests)

    def request_headers(self) -> list[dict[str, str]]:
        """Headers of every chat request, in arrival order (names as the client sent them)."""
        with self._lock:
            return [r.headers for r in self.requests if r.body is not None]

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests if r.body is not None]

    # -- internals -----------------------------------------------------------------------------------------------
    def _decide(self) -> tuple[int, str, float, Behaviour]:
        with self._lock:
            b = self.behaviour
            n = self._calls
            self._calls += 1
            roll = self._rng.random()  # one roll split into [drop | fail | garbage | ok] bands
            if n < b.drop_first or roll < b.drop_rate:
                outcome = "drop"
            elif n < b.fail_first or roll < b.drop_rate + b.fail_rate:
                outcome = "fail"
            elif n < b.garbage_first or roll < b.drop_rate + b.fail_rate + b.garbage_rate:
                outcome = "garbage"
            else:
                outcome = "ok"
            delay = b.latency_s(n) if callable(b.latency_s) else float(b.latency_s)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return n, outcome, delay, b

    def _record(self, path: str, body: dict[str, Any] | None, outcome: str, number: int = -1,
                headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.requests.append(RequestLog(number, path, body, outcome, headers=dict(headers or {})))

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--reply", default="VERDICT: YES", help="fixed reply text")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--logprobs", action="store_true",
                        help="answer logprobs requests with first-token candidates derived from the reply's verdict")
    parser.add_argument("--honour-max-tokens", action="store_true", help="cut replies to the request's max_tokens")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(port=args.port, latency_s=args.latency, default_reply=args.reply,
                              fail_rate=args.fail_rate, logprobs="derive" if args.logprobs else None,
                              honour_max_tokens=args.honour_max_tokens).start()
    print(f"serving {server.base_url} (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
