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
    """Counts the truncations of each row (by its question), thread-safe."""

    def __init__(self, tokenizer, max_tokens: int) -> None:
        super().__init__(tokenizer, max_tokens)
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, text):
        out = super().__call__(text)
        with self.lock:
            self.calls[split_template(text)[1]] += 1
        return out


def test_prompts_are_truncated_once_per_row_and_a_wave_ahead(tmp_path, tiny_tokenizer):
    rows = [EvalRow(id=f"r{i}", benchmark="hotpotqa", data_source="hotpotqa", question=f"What is item {i}?",
                    answers=(f"item{i}",), context=f"Item {i} is item{i}. " + "Filler words here. " * 300)
            for i in range(6)]
    truncate = RecordingTruncator(tiny_tokenizer, 200)
    at_first_reply: list[set[str]] = []

    def respond(messages):
        question = split_template(messages[-1]["content"])[1]
        with truncate.lock:
            if not at_first_reply:
                at_first_reply.append(set(truncate.calls))
        return f"<think>found</think> Therefore, the answer is item{question.split()[-1].rstrip('?')}."

    async def go():
        async with ChatClient(ChatOptions(endpoint=server.base_url, model="m")) as chat:
            return await run_eval(rows, chat, HybridScorer(), truncate,
                                  EvalOptions(out_dir=str(tmp_path), n_samples=2, concurrency=2, progress=False))

    # the first wave (both slots, both on row 0) is answered after 0.5 s: rows whose prompts exist by then were
    # truncated ahead of any free slot
    with FakeOpenAIServer(responder=respond, latency_s=lambda n: 0.5 if n < 2 else 0.0) as server:
        result = asyncio.run(go())
    assert result.complete and result.report["average"]["accuracy"] == 100.0
    assert server.count == 12
    assert dict(truncate.calls) == {row.question: 1 for row in rows}  # 2 samples a row, one truncation
    # the two slots share row 0 (its 2 samples); each prompt handed out starts the next row's truncation
    assert {"What is item 0?", "What is item 1?", "What is item 2?"} <= at_first_reply[0]
