"""Judge throughput of the hybrid reward against one-at-a-time calls, in the same run.

Scores N responses (default 1,024 = 128 questions x 8 rollouts) whose rule score is below 1, so every one needs the
judge, against the local scripted OpenAI-compatible server answering after a fixed latency (default 50 ms), and
prints, for two workloads:

* ``unique``: every response different (1,024 judge requests);
* ``grouped``: the 8 rollouts of a question give only a few distinct answers, as G rollouts often do;

the wall time of ``HybridScorer.score_many`` with ``--concurrency`` requests in flight, the ideal time
(requests / concurrency x latency), and the time of sequential one-at-a-time judge calls, one per response (the
reference implementation's behaviour; measured on ``--sequential-sample`` responses and scaled to N unless
``--full-sequential``), with the ratios and the judge requests made per response; then, for each judge mode (``generate``: reasoning and a
VERDICT line; ``logprob``: one token with its logprobs), the completion tokens requested (``max_tokens``) and
received (``usage.completion_tokens``) per call on the unique workload. The scripted reply is two sentences and a
verdict line (~25 tokens by the fake server's count); a real 1.5B judge writes 30-100.

    python bench/bench_judge.py                      # targets: >= 30x sequential, <= 1.5x ideal
    python bench/bench_judge.py --json               # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the scripted server lives with the tests

from fake_openai_server import FakeOpenAIServer  # noqa: E402

from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions  # noqa: E402
from qwenlong_verl.reward.scoring import HybridScorer, ScoreOptions  # noqa: E402

WRONG = ["Lyon", "Marseille", "Nice", "Toulouse", "Bordeaux", "Lille", "Nantes", "Rennes"]


class ServerProcess:
    """The scripted server in its own process, like a real vLLM server: it does not share the client's GIL."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _call(self, path: str, method: str = "GET") -> dict:
        root = self.base_url.rsplit("/v1", 1)[0]
        req = urllib.request.Request(root + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    @property
    def count(self) -> int:
        return int(self._call("/stats")["count"])

    @property
    def max_in_flight(self) -> int:
        return int(self._call("/stats")["max_in_flight"])

    def reset_counts(self) -> None:
        self._call("/reset", "POST")


AIOHTTP_SERVER = r"""
import asyncio, json, sys, time, uuid
from aiohttp import web
latency, reply = float(sys.argv[1]), sys.argv[2]
state = {"count": 0, "in_flight": 0, "max_in_flight": 0}
verdict = "YES" if reply.rstrip().endswith("YES") else "NO"
async def chat(request):
    body = await request.json()
    state["count"] += 1
    state["in_flight"] += 1
    state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
    try:
        await asyncio.sleep(latency)
    finally:
        state["in_flight"] -= 1
    text, logprobs = reply, None
    if body.get("logprobs"):
        top = [{"token": verdict, "logprob": -0.05}, {"token": "YES" if verdict == "NO" else "NO", "logprob": -3.0}]
        logprobs = {"content": [{**top[0], "top_logprobs": top[:int(body.get("top_logprobs") or 1)]}]}
        text = verdict
    tokens = len(text.split()) if body.get("max_tokens", 1) > 1 else 1
    return web.json_response({"id": uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
                              "model": body.get("model"), "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": text}, "logprobs": logprobs}],
                              "usage": {"completion_tokens": tokens}})
async def stats(request):
    return web.json_response({"count": state["count"], "max_in_flight": state["max_in_flight"]})
async def reset(request):
    state.update(count=0, max_in_flight=0)
    return web.json_response({"reset": True})
async def main():
    app = web.Application()
    app.add_routes([web.post("/v1/chat/completions", chat), web.get("/stats", stats), web.post("/reset", reset)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"serving http://127.0.0.1:{port}/v1", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@contextlib.contextmanager
def server_process(latency: float, reply: str, kind: str = "process") -> Iterator[ServerProcess]:
    if kind == "aiohttp":
        cmd = [sys.executable, "-c", AIOHTTP_SERVER, str(latency), reply]
    else:
        cmd = [sys.executable, str(REPO / "tests" / "fake_openai_server.py"), "--port", "0", "--latency",
               str(latency), "--reply", reply, "--logprobs"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("serving "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield ServerProcess(line.split()[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def build_rows(n: int, group: int, distinct_per_group: int | None, seed: int = 0) -> list[dict]:
    """Rows whose rule score is 0 (the answer never matches the gold), grouped by question like G rollouts."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        q = i // group
        if distinct_per_group is None:
            answer = f"{WRONG[i % len(WRONG)]} district {i}"
        else:
            answer = f"{rng.choice(WRONG[:distinct_per_group])} district {q}"
        rows.append({"data_source": "musique" if q % 2 else "hotpotqa",
                     "question": f"In which city was the leader of project {q} born?",
                     "response": f"<think>Let me look at the document.</think> Therefore, the answer is {answer}.",
                     "ground_truth": f"Paris {q}"})
    return rows


def _client(url: str, concurrency: int, cache: bool = True, mode: str = "generate") -> JudgeClient:
    return JudgeClient(JudgeOptions(base_url=url, model="bench", max_concurrency=concurrency, timeout_s=30,
                                    max_retries=2, cache_size=100_000 if cache else 0, mode=mode))


async def mode_run(rows: list[dict], server, concurrency: int, mode: str) -> dict:
    """Completion tokens requested and received per judge call, and the wall time, for one judge mode."""
    client = _client(server.base_url, concurrency, mode=mode)
    try:
        t0 = time.perf_counter()
        scores = await HybridScorer(ScoreOptions(), client).score_many(rows)
        wall = time.perf_counter() - t0
    finally:
        await client.aclose()
    s = client.stats
    failed = sum(x.judge_failed for x in scores)
    if failed:
        raise RuntimeError(f"{failed} judge calls failed in {mode} mode")
    return {"wall_s": wall, "http_requests": s.attempts, "verdicts": s.successes,
            "tokens_requested_per_call": s.completion_tokens_requested / max(s.attempts, 1),
            "tokens_received_per_call": s.completion_tokens_received / max(s.attempts, 1),
            "logprob_verdicts": s.logprob_verdicts, "logprob_fallbacks": s.logprob_fallbacks + s.logprob_low_mass,
            "yes": s.yes}


async def concurrent_run(rows: list[dict], server, concurrency: int) -> tuple[float, int, int]:
    """(wall seconds, judge requests sent, judge-called rows) for HybridScorer.score_many."""
    client = _client(server.base_url, concurrency)
    scorer = HybridScorer(ScoreOptions(), client)
    try:
        # steady state: open the pool's connections outside the timed part, as after a training step
        await asyncio.gather(*(client.judge("warm-up", f"a{i}", "b") for i in range(concurrency)))
        server.reset_counts()
        sent0 = client.stats.requests
        t0 = time.perf_counter()
        scores = await scorer.score_many(rows)
        wall = time.perf_counter() - t0
    finally:
        await client.aclose()
    assert all(s.rule_score < 1.0 for s in scores), "benchmark rows must all need the judge"
    failed = sum(s.judge_failed for s in scores)
    if failed:
        raise RuntimeError(f"{failed} judge calls failed during the benchmark")
    return wall, client.stats.requests - sent0, sum(s.judge_called for s in scores)


async def sequential_run(rows: list[dict], url: str) -> list[float]:
    """Seconds per call of one judge call per response, awaited one after the other, no cache (the reference)."""
    client = _client(url, 1, cache=False)
    scorer = HybridScorer(ScoreOptions())  # rule part only; the judge is called by hand below
    try:
        await client.judge("warm-up", "a", "b")
        times = []
        for r in rows:
            t0 = time.perf_counter()
            sample = scorer.rule_only(r["data_source"], r["response"], r["ground_truth"])
            await client.judge(r["question"], sample.extracted_answer or "", r["ground_truth"])
            times.append(time.perf_counter() - t0)
        return times
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--responses", type=int, default=1024)
    p.add_argument("--group", type=int, default=8, help="rollouts per question")
    p.add_argument("--distinct", type=int, default=3, help="distinct answers per group in the grouped workload")
    p.add_argument("--latency", type=float, default=0.05, help="judge server latency (s)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--sequential-sample", type=int, default=128)
    p.add_argument("--full-sequential", action="store_true", help="time all N sequential calls (N x latency)")
    p.add_argument("--server", choices=["process", "aiohttp", "thread"], default="process",
                   help="judge stand-in: tests/fake_openai_server.py in its own process, like vLLM (default); an "
                        "asyncio (aiohttp) server in its own process; or the fake server in a thread here")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per workload; the median is reported")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    results = {"responses": args.responses, "latency_s": args.latency, "concurrency": args.concurrency,
               "server": args.server}
    reply = ("The candidate names a different city than the reference answer. The two answers therefore do not "
             "refer to the same place.\nVERDICT: NO")
    if args.server in ("aiohttp", "process"):
        server_cm = server_process(args.latency, reply, args.server)
    else:
        server_cm = FakeOpenAIServer(latency_s=args.latency, default_reply=reply)
    with server_cm as server:
        url = server.base_url
        n_seq = args.responses if args.full_sequential else min(args.sequential_sample, args.responses)
        seq_rows = build_rows(n_seq, args.group, None, seed=1)
        times = sorted(asyncio.run(sequential_run(seq_rows, url)))
        # median x N: a few calls slowed by other load on the machine must not inflate the baseline
        per_call = times[len(times) // 2]
        seq_total = sum(times) if args.full_sequential else per_call * args.responses
        results["sequential"] = {"measured_calls": n_seq, "measured_s": sum(times), "estimated_s": seq_total,
                                 "per_call_s": per_call}
        for name, distinct in (("unique", None), ("grouped", args.distinct)):
            rows = build_rows(args.responses, args.group, distinct)
            runs = []
            for _ in range(max(1, args.repeat)):  # a shared machine: report the median of a few runs
                wall, sent, judged = asyncio.run(concurrent_run(rows, server, args.concurrency))
                runs.append(wall)
                served = server.count
            wall = sorted(runs)[len(runs) // 2]
            ideal = sent / args.concurrency * args.latency
            results[name] = {
                "wall_s": wall, "wall_runs_s": runs, "judge_requests": sent, "server_requests": served,
                "judged_rows": judged,
                "requests_per_response": sent / args.responses, "ideal_s": ideal,
                "wall_over_ideal": wall / ideal if ideal else float("nan"),
                "speedup_vs_sequential": seq_total / wall, "max_in_flight": server.max_in_flight,
            }
        rows = build_rows(args.responses, args.group, None)
        results["modes"] = {mode: asyncio.run(mode_run(rows, server, args.concurrency, mode))
                            for mode in ("generate", "logprob")}

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    seq = results["sequential"]
    print(f"judge benchmark: {args.responses} responses with rule score < 1, server latency "
          f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}")
    print(f"sequential one-at-a-time: median {seq['per_call_s'] * 1000:.1f} ms/call over {seq['measured_calls']} "
          f"calls -> {seq['estimated_s']:.2f} s for {args.responses} responses")
    print(f"{'workload':<9} {'wall s':>7} {'ideal s':>8} {'wall/ideal':>10} {'vs seq':>7} {'req/resp':>9} "
          f"{'in flight':>9}")
    for name in ("unique", "grouped"):
        r = results[name]
        print(f"{name:<9} {r['wall_s']:>7.3f} {r['ideal_s']:>8.3f} {r['wall_over_ideal']:>9.2f}x "
              f"{r['speedup_vs_sequential']:>6.1f}x {r['requests_per_response']:>9.3f} {r['max_in_flight']:>9d}")
    print(f"{'mode':<9} {'requests':>8} {'tok req/call':>12} {'tok recv/call':>13} {'wall s':>7} "
          f"{'from logprobs':>13}")
    for mode, r in results["modes"].items():
        print(f"{mode:<9} {r['http_requests']:>8d} {r['tokens_requested_per_call']:>12.1f} "
              f"{r['tokens_received_per_call']:>13.1f} {r['wall_s']:>7.3f} {r['logprob_verdicts']:>13d}")
    ok = all(results[n]["speedup_vs_sequential"] >= 30 and results[n]["wall_over_ideal"] <= 1.5
             for n in ("unique", "grouped"))
    print(f"targets (>= 30x sequential, <= 1.5x ideal): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
