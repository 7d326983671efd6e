"""``qwenlong-verl judge-check``: is this judge endpoint usable as the reward's judge?

Run once after ``vllm serve Qwen/Qwen2.5-1.5B-Instruct --port 8000``: it sends a small built-in set of (question,
candidate answer, reference answer) pairs whose equivalence is known (``qwenlong_verl.reward.judge_check.CASES``: the
kinds the rule cannot settle, namely paraphrases, units and scale words, fractions, partial answers, hedges,
near-miss numbers and years) through the same judge client the reward uses, in each judge mode, and prints per mode
the accuracy, the false YES (a wrong answer rewarded: the costly error in RL) and false NO, the failure rate split
into parse and transport failures, and the completion tokens requested and received per HTTP call.

Exit status: 0 when it ran (with ``--min-accuracy``: when every mode reached it), 1 when a mode fell below
``--min-accuracy`` or every request failed, 2 when the endpoint cannot be reached (one line says so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from qwenlong_verl.commands._args import bounded_float, bounded_int, http_url

MAX_CONCURRENCY = 1024  # requests in flight: more only exhausts sockets and the judge's queue


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "judge-check", help="send known equivalent / non-equivalent answer pairs to a judge endpoint and report",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--url", default="http://127.0.0.1:8000/v1", type=http_url,
                   help="OpenAI base URL of the judge (default %(default)s, what `vllm serve ... --port 8000` gives)")
    p.add_argument("--model", default=None,
                   help="model name to send (default: the first one the server lists, else "
                        "Qwen/Qwen2.5-1.5B-Instruct)")
    p.add_argument("--mode", choices=["generate", "logprob", "both"], default="both")
    p.add_argument("--timeout", type=bounded_float(0.1, 3600.0), default=60.0,
                   help="seconds per request, 0.1 to 3600 (60)")
    p.add_argument("--concurrency", type=bounded_int(1, MAX_CONCURRENCY), default=16,
                   help=f"requests in flight, 1 to {MAX_CONCURRENCY} (16)")
    p.add_argument("--api-key-env", default="QWENLONG_JUDGE_API_KEY",
                   help="env var holding the judge's API key (none sent if unset)")
    p.add_argument("--min-accuracy", type=bounded_float(0.0, 1.0), default=None, metavar="FRACTION",
                   help="exit 1 when a mode's accuracy is below this (e.g. 0.9)")
    p.add_argument("--show-wrong", action="store_true", help="print every case a mode got wrong or failed")
    p.add_argument("--json", dest="json_out", metavar="PATH", help="write the reports as JSON; '-' for stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.outputs import check_output, write_text
    from qwenlong_verl.redaction import redact_url, redact_value
    from qwenlong_verl.reward.judge_check import CASES, EndpointUnreachable, format_reports, probe, run_mode

    if args.json_out and args.json_out != "-":
        check_output(args.json_out, option="--json")
    shown = redact_url(args.url)  # the URL as a person or a file may see it: no user info, no key
    try:
        served = probe(args.url, min(args.timeout, 10.0), args.api_key_env)
    except EndpointUnreachable as exc:
        print(f"judge-check: cannot reach the judge at {exc}; start it (e.g. `vllm serve "
              "Qwen/Qwen2.5-1.5B-Instruct --port 8000`) or pass --url", file=sys.stderr)
        return 2
    model = args.model or (served[0] if served else "Qwen/Qwen2.5-1.5B-Instruct")
    modes = ["generate", "logprob"] if args.mode == "both" else [args.mode]
    out = sys.stderr if args.json_out == "-" else sys.stdout
    n_eq = sum(c.equivalent for c in CASES)
    print(f"judge-check: {len(CASES)} pairs ({n_eq} equivalent, {len(CASES) - n_eq} not) -> {shown} "
          f"model {model}", file=out)
    reports = [asyncio.run(run_mode(args.url, model, mode, CASES, args.timeout, args.concurrency,
                                    args.api_key_env)) for mode in modes]
    print(format_reports(reports), file=out)
    if args.show_wrong:
        for r in reports:
            for w in r.wrong:
                print(f"  [{r.mode}] {w['kind']}: {w['answer']!r} vs {w['gold']!r} (equivalent={w['equivalent']}) "
                      f"-> {w.get('verdict')} {w.get('error') or ''}".rstrip(), file=out)
    if args.json_out:
        text = json.dumps(redact_value({"url": shown, "model": model, "cases": len(CASES),
                                        "modes": {r.mode: r.as_dict() for r in reports}}), indent=2)
        if args.json_out == "-":
            print(text)
        else:
            write_text(args.json_out, text + "\n")  # atomically: a complete report or the old file
    if all(r.transport_failures == r.cases for r in reports):
        print(f"judge-check: every request to {shown} failed ({reports[0].wrong[0].get('error')}); check the "
              "URL, the model name (--model) and the server log", file=sys.stderr)
        return 1
    if args.min_accuracy is not None and any(r.accuracy < args.min_accuracy for r in reports):
        low = ", ".join(f"{r.mode} {100 * r.accuracy:.1f}%" for r in reports if r.accuracy < args.min_accuracy)
        print(f"judge-check: accuracy below --min-accuracy {args.min_accuracy:g}: {low}", file=sys.stderr)
        return 1
    return 0
