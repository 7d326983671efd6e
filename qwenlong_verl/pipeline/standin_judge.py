"""A stand-in for the LLM judge in the CPU demo: a local OpenAI-compatible ``/v1/chat/completions`` server.

The paper's judge is Qwen2.5-1.5B-Instruct served by vLLM; a CPU box has neither. This server answers the reward's
judge prompt (``Question / Reference answer / Candidate answer``, see :mod:`qwenlong_verl.reward.judge`) with a
lexical verdict, so the demo exercises the real hybrid-reward path (HTTP calls from the reward workers, the
max(rule, judge) rule, judge metrics) without a model:

    verdict = YES  iff  difflib.SequenceMatcher(norm(reference), norm(candidate)).ratio() >= threshold

with ``norm`` = lower case, punctuation and articles removed, whitespace collapsed (SQuAD normalisation). It is more
lenient than the rule's sub-EM (a near-miss spelling passes), as an LLM judge is. It is a demo device, never a judge
for real training. Run alone: ``python -m qwenlong_verl.pipeline.standin_judge --port 8000``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import re
import string
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.85
_PROMPT = re.compile(r"Reference answer:\s*(?P<gold>.*?)\nCandidate answer:\s*(?P<answer>.*)\Z", re.DOTALL)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def similarity(reference: str, candidate: str) -> float:
    """difflib ratio of the normalised strings, in [0, 1]."""
    a, b = normalise(reference), normalise(candidate)
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def verdict_text(user_message: str, threshold: float = DEFAULT_THRESHOLD) -> str:
    """The reply to one judge prompt: a sentence, then ``VERDICT: YES|NO``; a prompt without the two answers gets
    a reply without a verdict (which the judge client counts as a failed call)."""
    m = _PROMPT.search(user_message)
    if m is None:
        return "I cannot find a reference answer and a candidate answer in the message."
    ratio = similarity(m.group("gold").strip(), m.group("answer").strip())
    word = "YES" if ratio >= threshold else "NO"
    return f"Lexical similarity of the normalised answers is {ratio:.2f} (threshold {threshold:.2f}).\nVERDICT: {word}"


@dataclass
class StandinJudge:
    """``with StandinJudge() as judge:`` serves on 127.0.0.1 (a free port) in a thread; ``judge.base_url``."""

    host: str = "127.0.0.1"
    port: int = 0
    threshold: float = DEFAULT_THRESHOLD
    requests: int = 0
    yes: int = 0
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("stand-in judge is not running")
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def _count(self, reply: str) -> None:
        with self._lock:
            self.requests += 1
            self.yes += reply.endswith("VERDICT: YES")

    def start(self) -> StandinJudge:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # no per-request lines on stderr
                return

            def _send(self, code: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "standin-judge", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                    messages = body["messages"]
                    user = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
                except (ValueError, KeyError, StopIteration, TypeError) as exc:
                    self._send(400, {"error": {"message": f"bad request: {exc!r}"}})
                    return
                reply = verdict_text(str(user), judge.threshold)
                judge._count(reply)
                self._send(200, {
                    "id": f"standin-{judge.requests}", "object": "chat.completion",
                    "model": body.get("model", "standin-judge"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                })

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="standin-judge", daemon=True)
        self._thread.start()
        logger.info("stand-in judge (lexical, threshold %.2f) at %s", self.threshold, self.base_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandinJudge:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    judge = StandinJudge(host=args.host, port=args.port, threshold=args.threshold).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        judge.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
