"""Issue 24 for `eval`: nothing is lost (earlier verdicts survive a failing judge on --rescore, a reply with half a
surrogate pair is saved, a reply without content is a named failure) and two runs never share one --out. Local HTTP
servers on 127.0.0.1 stand in for the model and the judge."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from qwenlong_verl.cli import main

Handler = Callable[[str, dict, dict], tuple[int, dict, bytes]]


class ScriptedServer:
    """An HTTP server on 127.0.0.1 whose every reply comes from ``handler(path, json body, headers)`` as (status,
    extra headers, raw body bytes): the raw bytes let a test send what a real server may send and the fake
    OpenAI server cannot (``content: null``, a lone surrogate escape, an error body echoing headers)."""

    def __init__(self, handler: Handler) -> None:
        outer = self
        self.handler = handler
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.lock = threading.Lock()

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:  # quiet
                return

            def _serve(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                headers = dict(self.headers.items())
                with outer.lock:
                    outer.requests.append((method, self.path, body, headers))
                status, extra, payload = outer.handler(self.path, body, headers)
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **extra}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def posts(self) -> list[dict]:
        with self.lock:
            return [b for m, p, b, _ in self.requests if m == "POST"]

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_reply(content, reasoning=None, finish="stop", usage: bool = True) -> bytes:
    """A chat-completion body, serialised as vLLM does (json.dumps: a lone surrogate becomes its \\ud83d escape)."""
    message = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m",
                       "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                       **({"usage": {"prompt_tokens": 10, "completion_tokens": 5}} if usage else {})}).encode()


def models_reply(name: str = "m") -> bytes:
    return json.dumps({"object": "list", "data": [{"id": name, "object": "model"}]}).encode()


def model_server(replies: dict[str, object], usage: bool = True) -> ScriptedServer:
    """The model: the reply for each question (a str: the content; a tuple: (content, reasoning)); without
    ``usage`` the reply carries no token counts (eval then counts the reply's tokens itself)."""

    def handle(path: str, body: dict, headers: dict) -> tuple[int, dict, bytes]:
        if path.rstrip("/").endswith("/models"):
            return 200, {}, models_reply()
        text = body["messages"][-1]["content"]
        for question, reply in replies.items():
            if question in text:
                content, reasoning = reply if isinstance(reply, tuple) else (reply, None)
                return 200, {}, chat_reply(content, reasoning, usage=usage)
        return 404, {}, b'{"error": "unknown question"}'

    return ScriptedServer(handle)


class Judge:
    """A judge that says YES when the candidate equals the reference or is in ``yes``; ``down`` makes it fail."""

    def __init__(self, yes: set[tuple[str, str]]) -> None:
        self.yes = yes
        self.down = False

    def __call__(self, path: str, body: dict, headers: dict) -> tuple[int, dict, bytes]:
        if path.rstrip("/").endswith("/models"):
            return 200, {}, models_reply("judge")
        if self.down:
            return 500, {}, b'{"error": "judge overloaded"}'
        user = body["messages"][-1]["content"]
        gold = re.search(r"^Reference answer: (.*)$", user, re.M).group(1)
        cand = re.search(r"^Candidate answer: (.*)$", user, re.M).group(1)
        verdict = "YES" if (cand, gold) in self.yes else "NO"
        return 200, {}, chat_reply(f"Reasoning.\nVERDICT: {verdict}")


def write_rows(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "benchmark": "hotpotqa", "question": q, "context": "A note.",
                                        "answers": [a]}) + "\n" for i, q, a in rows), encoding="utf-8")
    return path


def run_eval(model: ScriptedServer, data: Path, out: Path, tokenizer: Path, *extra: str) -> int:
    return main(["eval", "--endpoint", f"http://127.0.0.1:{model.port}", "--model", "m", "--out", str(out),
                 "--data", str(data), "--tokenizer", str(tokenizer), "--max-input-tokens", "600", "--max-tokens",
                 "64", "--no-progress", "--concurrency", "2", "--retry-backoff", "0.01", "--max-retries", "1",
                 *extra])


def records(out: Path) -> dict[str, dict]:
    recs: dict[str, dict] = {}
    for line in (out / "generations.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        recs[rec["id"]] = rec  # a later line replaces an earlier one, as the store reads it
    return recs


ROWS = [("a", "Largest US city?", "New York City"), ("b", "Who wrote Hamlet?", "Shakespeare")]
REPLIES = {"Largest US city?": "<think>x</think>Therefore, the answer is NYC.",
           "Who wrote Hamlet?": "<think>x</think>Therefore, the answer is Shakespeare."}


def test_rescore_with_a_failing_judge_keeps_the_earlier_verdicts(tmp_path, tiny_model_dir):
    data = write_rows(tmp_path / "rows.jsonl", ROWS)
    out = tmp_path / "out"
    judge = Judge({("NYC", "New York City")})
    with model_server(REPLIES) as model, ScriptedServer(judge) as judge_server:
        judge_args = ("--judge-endpoint", judge_server.base_url, "--judge-model", "judge")
        assert run_eval(model, data, out, tiny_model_dir, *judge_args) == 0
        assert records(out)["a"]["score"] == 1.0 and records(out)["a"]["judge_score"] == 1.0
        judge.down = True
        run_eval(model, data, out, tiny_model_dir, *judge_args, "--rescore", "--allow-judge-failures")
        a = records(out)["a"]
        assert a["score"] == 1.0 and a["judge_score"] == 1.0 and a["correct"] is True  # not rewritten to 0.0
        assert not a["judge_failed"] and "judge" in a["rescore_judge_error"]
        assert json.loads((out / "report.json").read_text())["benchmarks"]["hotpotqa"]["accuracy"] == 100.0
        judge.down = False  # a later rescore with a working judge takes the new verdict and clears the note
        assert run_eval(model, data, out, tiny_model_dir, *judge_args, "--rescore") == 0
        assert "rescore_judge_error" not in records(out)["a"]


def test_a_reply_with_half_a_surrogate_pair_is_saved_and_scored(tmp_path, tiny_model_dir):
    """Half an emoji in a reply: the tokenizer (counting the reply's tokens) and the judge's JSON request both
    refused the text, and the exception ended the whole run."""
    data = write_rows(tmp_path / "rows.jsonl", ROWS)
    out = tmp_path / "out"
    replies = {**REPLIES, "Who wrote Hamlet?": "<think>\ud83d</think>Therefore, the answer is The Bard \ud83d."}
    judge = Judge({("The Bard \ufffd", "Shakespeare")})  # the rule says no: the judge is asked
    with model_server(replies, usage=False) as model, ScriptedServer(judge) as judge_server:
        assert run_eval(model, data, out, tiny_model_dir, "--judge-endpoint", judge_server.base_url,
                        "--judge-model", "judge") == 0
    b = records(out)["b"]
    assert "\ufffd" in b["response"] and "\ud83d" not in b["response"]
    assert b["score"] == 1.0 and b["judge_score"] == 1.0 and b["response_tokens"] > 0
    assert b["replaced_chars"] == 2


def test_a_reply_without_content_is_a_named_failure(tmp_path, tiny_model_dir, caplog):
    """vLLM's reasoning parsers answer ``content: null`` when the model never finished its reasoning: that is no
    answer, not a wrong one, and the run must not report itself finished."""
    caplog.set_level(logging.INFO)  # whatever level an earlier test's CLI call left on the loggers
    data = write_rows(tmp_path / "rows.jsonl", ROWS)
    out = tmp_path / "out"
    replies = {**REPLIES, "Who wrote Hamlet?": (None, "I keep thinking about Hamlet and")}
    with model_server(replies) as model:
        assert run_eval(model, data, out, tiny_model_dir) == 1
    assert "b" not in records(out)  # left out: the next run asks again
    report = json.loads((out / "report.json").read_text())
    assert not report["complete"] and report["failed"][0]["id"] == "b"
    assert "content: null" in report["failed"][0]["error"]
    assert any("content: null" in r.getMessage() for r in caplog.records)
