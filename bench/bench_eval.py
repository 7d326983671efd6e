"""Throughput of ``qwenlong-verl eval``'s runner against the sequential baseline, in the same run.

The reference QwenLong-L1 evaluation sends one request at a time. This script evaluates the same synthetic
benchmark twice against a local scripted OpenAI-compatible server with a fixed per-request latency (standing in for
vLLM, and like it in a process of its own): once with ``concurrency=1`` (the baseline) and once with
``--concurrency``; prompts are middle-truncated exactly with the tiny local tokenizer in both. It prints both wall
times and the speed-up ratio, the concurrent run against the ideal (ceil(rows / concurrency) x latency) with and
without the report files (the PNG chart: the user waits for it, so the headline figure includes it), where the
rest goes (the same concurrent run without truncation), plus the time to resume (read back) the finished
generations file, and the floor no scheduler can beat on this machine (the first wave's exact truncation, spread over
its cores, plus the ideal and the report). Numbers on a shared 2-core machine vary by +-30 %: run it several times.

    python bench/bench_eval.py --rows 64 --latency 0.1 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the scripted server lives with the tests

from fake_openai_server import FakeOpenAIServer  # noqa: E402

from qwenlong_verl.evaluation.client import ChatClient, ChatOptions  # noqa: E402
from qwenlong_verl.evaluation.data import EvalRow, split_template  # noqa: E402
from qwenlong_verl.evaluation.runner import EvalOptions, run_eval  # noqa: E402
from qwenlong_verl.evaluation.store import GenerationStore  # noqa: E402
from qwenlong_verl.evaluation.truncation import MiddleTruncator  # noqa: E402
from qwenlong_verl.reward.scoring import HybridScorer  # noqa: E402


def build_rows(n: int, words: int) -> list[EvalRow]:
    filler = " ".join(f"word{i % 97} of the filler text" for i in range(words // 5))
    return [EvalRow(id=f"r{i}", benchmark="hotpotqa" if i % 2 else "musique",
                    data_source="hotpotqa" if i % 2 else "musique", question=f"What is item {i}?",
                    answers=(f"item{i}",), context=f"Item {i} is item{i}. {filler}") for i in range(n)]


def respond(messages: list[dict]) -> str:
    question = split_template(messages[-1]["content"])[1]
    return f"<think>found it</think> Therefore, the answer is item{question.split()[-1].rstrip('?')}."


class ServerProcess:
    """The fake server in its own process, as vLLM is: in this process its 32 handler threads (HTTP parsing, JSON)
    would hold the GIL that the client's event loop and the truncation need, and charge the eval for the stand-in."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    @staticmethod
    def _serve(conn, latency: float) -> None:
        with FakeOpenAIServer(responder=respond, latency_s=latency) as server:
            conn.send(server.base_url)
            conn.recv()  # stop
            conn.send(server.count)

    def __enter__(self) -> ServerProcess:
        # fork before any tokenizer runs (a forked child of a process that used tokenizers' threads warns)
        self._conn, child = multiprocessing.get_context("fork").Pipe()
        self._proc = multiprocessing.get_context("fork").Process(target=self._serve, args=(child, self.latency),
                                                                 daemon=True)
        self._proc.start()
        self.base_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self.count = self._conn.recv()
        self._proc.join(timeout=10)


async def one_run(rows, url: str, tokenizer, budget: int, concurrency: int,
                  out: Path) -> tuple[float, float]:
    """Wall seconds of one evaluation, report files included, and the seconds the report files took."""
    opts = ChatOptions(endpoint=url, model="bench", max_connections=max(concurrency, 1))
    t0 = time.perf_counter()
    async with ChatClient(opts) as chat:
        result = await run_eval(rows, chat, HybridScorer(), MiddleTruncator(tokenizer, budget),
                                EvalOptions(out_dir=str(out), concurrency=concurrency, progress=False))
    wall = time.perf_counter() - t0
    assert result.complete and result.report["average"]["accuracy"] == 100.0, result.report["average"]
    return wall, result.report_s


def truncation_cpu_s(rows: list[EvalRow], tokenizer, budget: int) -> float:
    """CPU seconds to truncate one prompt exactly, one thread, averaged over ``rows`` (after a warm-up call)."""
    truncate = MiddleTruncator(tokenizer, budget)
    truncate(rows[0].user_message())
    t0 = time.process_time()
    for row in rows:
        truncate(row.user_message())
    return (time.process_time() - t0) / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per request at the fake server")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--words", type=int, default=6000, help="document length in words")
    ap.add_argument("--budget", type=int, default=4000, help="--max-input-tokens")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    from qwenlong_verl.pipeline.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp, ServerProcess(args.latency) as server:
        tmp_path = Path(tmp)
        tokenizer = AutoTokenizer.from_pretrained(str(build_tiny_model(tmp_path / "tiny")))
        rows = build_rows(args.rows, args.words)
        base, _ = asyncio.run(one_run(rows, server.base_url, tokenizer, args.budget, 1, tmp_path / "seq"))
        fast, report_s = asyncio.run(one_run(rows, server.base_url, tokenizer, args.budget, args.concurrency,
                                             tmp_path / "conc"))
        # where the rest goes: the same concurrent run with no tokenizer at all
        bare, _ = asyncio.run(one_run(rows, server.base_url, None, 0, args.concurrency, tmp_path / "bare"))
        per_prompt = truncation_cpu_s(rows, tokenizer, args.budget)
        t0 = time.perf_counter()
        n = len(GenerationStore(tmp_path / "conc").load())
        resume = time.perf_counter() - t0
    assert server.count == 3 * args.rows, server.count
    ideal = -(-args.rows // args.concurrency) * args.latency
    print(f"rows={args.rows} latency={args.latency}s doc_words={args.words} budget={args.budget} tokens; "
          f"fake server in its own process")
    print(f"sequential (concurrency=1, reference-script style): {base:.2f}s  ({args.rows / base:.1f} rows/s)")
    print(f"concurrency={args.concurrency}: {fast:.3f}s  ({args.rows / fast:.1f} rows/s); "
          f"speed-up {base / fast:.1f}x (ideal for pure latency: {min(args.concurrency, args.rows)}x)")
    print(f"vs ideal (ceil(rows / concurrency) x latency = {ideal:.2f}s): {fast / ideal:.2f}x ideal, "
          f"report files included; without them ({report_s:.3f}s, most of it the PNG chart): "
          f"{(fast - report_s) / ideal:.2f}x")
    print(f"  without truncation (HTTP client, scoring, store, report): {bare:.3f}s = {bare / ideal:.2f}x ideal")
    # No schedule beats this: the first wave's prompts must all be truncated (CPU, on this machine's cores) before the
    # last of them can leave, its slot then needs two latencies, and the report is written after the last reply.
    cores = len(os.sched_getaffinity(0))
    wave = min(args.concurrency, args.rows)
    floor = ideal + wave * per_prompt / cores + report_s
    print(f"floor on this machine: exact truncation takes {per_prompt * 1000:.2f} ms of CPU a prompt; the first "
          f"{wave} prompts on {cores} core(s) take {wave * per_prompt / cores:.3f}s before the last of them can be "
          f"sent, so >= ideal + that + report = {floor:.3f}s = {floor / ideal:.2f}x ideal; measured/floor "
          f"{fast / floor:.2f}")
    print(f"resume: read back {n} generations in {resume * 1000:.1f} ms")

if __name__ == "__main__":
    main()
