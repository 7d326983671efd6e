"""The eval runner's scheduling: each row's prompt is truncated once, and the next wave's while this one waits."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.evaluation.client import ChatClient, ChatOptions
from qwenlong_verl.evaluation.data import EvalRow, split_template
from qwenlong_verl.evaluation.runner import EvalOptions, run_eval
from qwenlong_verl.evaluation.truncation import MiddleTruncator
from qwenlong_verl.reward.scoring import HybridScorer


class RecordingTruncator(MiddleTruncator):
    """Counts the truncations of each row (by its question), thread-safe; :meth:`wait_for` blocks until a set of
    rows has been truncated."""

    def __init__(self, tokenizer, max_tokens: int) -> None:
        super().__init__(tokenizer, max_tokens)
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def __call__(self, text):
        out = super().__call__(text)
        with self.lock:
            self.calls[split_template(text)[1]] += 1
            self.changed.notify_all()
        return out

    def wait_for(self, questions: set[str], timeout: float) -> set[str]:
        """The rows truncated once ``questions`` all are, or when ``timeout`` seconds passed without that."""
        with self.changed:
            self.changed.wait_for(lambda: questions <= set(self.calls), timeout)
            return set(self.calls)


def test_prompts_are_truncated_once_per_row_and_a_wave_ahead(tmp_path, tiny_tokenizer):
    rows = [EvalRow(id=f"r{i}", benchmark="hotpotqa", data_source="hotpotqa", question=f"What is item {i}?",
                    answers=(f"item{i}",), context=f"Item {i} is item{i}. " + "Filler words here. " * 300)
            for i in range(6)]
    truncate = RecordingTruncator(tiny_tokenizer, 200)
    ahead = {"What is item 0?", "What is item 1?", "What is item 2?"}
    while_held: list[tuple[bool, set[str]]] = []

    def respond(messages):
        question = split_template(messages[-1]["content"])[1]
        return f"<think>found</think> Therefore, the answer is item{question.split()[-1].rstrip('?')}."

    def first_wave_held() -> None:
        """While both first requests wait at the server (no slot is free), see which rows got truncated; then let
        the run go on. A runner that truncated only when a slot frees would never get past row 1 here."""
        both = server.wait_held(2, timeout=60)
        while_held.append((both, truncate.wait_for(ahead, timeout=60)))
        server.release()

    async def go():
        async with ChatClient(ChatOptions(endpoint=server.base_url, model="m")) as chat:
            return await run_eval(rows, chat, HybridScorer(), truncate,
                                  EvalOptions(out_dir=str(tmp_path), n_samples=2, concurrency=2, progress=False))

    # the first wave (both slots, both on row 0) is held at the server until the rows ahead are truncated
    with FakeOpenAIServer(responder=respond) as server:
        server.hold(lambda n: n < 2)
        watcher = threading.Thread(target=first_wave_held, daemon=True)
        watcher.start()
        result = asyncio.run(go())
        watcher.join(timeout=60)
    assert result.complete and result.report["average"]["accuracy"] == 100.0
    assert server.count == 12 and server.hold_timeouts == 0
    assert dict(truncate.calls) == {row.question: 1 for row in rows}  # 2 samples a row, one truncation
    # the two slots share row 0 (its 2 samples); each prompt handed out starts the next row's truncation
    [(both_held, truncated)] = while_held
    assert both_held and ahead <= truncated
