"""``qwenlong-verl score``: score responses the way QwenLong-L1 evaluates them, max(EM-or-subEM/numeric, judge)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score", help="score a JSONL/parquet of responses: per-row scores and a per-data_source table",
        description="Score rows {data_source, question, response, ground_truth} (verl's reward_model.ground_truth "
                    "and extra_info.question are accepted too) with the hybrid reward: rule match by data_source "
                    "family, and, with --judge-url, an OpenAI-compatible judge for rows the rule scores below 1.")
    p.add_argument("input", help=".jsonl, .json or .parquet")
    p.add_argument("--output", "-o", help="write per-row scores as JSONL (the input row plus the score fields)")
    p.add_argument("--json", dest="json_out", metavar="PATH",
                   help="write the summary (per data_source, overall, judge stats) as JSON; '-' for stdout")
    p.add_argument("--judge-url", help="OpenAI base URL of the judge, e.g. http://127.0.0.1:8000/v1 (no judge if unset)")
    p.add_argument("--judge-model", default="Qwen/Qwen2.5-1.5B-Instruct")
    p.add_argument("--judge-concurrency", type=int, default=64)
    p.add_argument("--judge-timeout", type=float, default=60.0, help="seconds per attempt")
    p.add_argument("--judge-retries", type=int, default=3)
    p.add_argument("--judge-api-key-env", default="QWENLONG_JUDGE_API_KEY",
                   help="env var holding the judge's API key (none sent if unset)")
    p.add_argument("--answer-after-think", choices=["require", "optional", "off"], default="optional",
                   help="take the answer after the last </think>: required (training default), optional "
                        "(default here) or off")
    p.add_argument("--qa-metric", choices=["em_or_sub_em", "sub_em", "em", "f1"], default="em_or_sub_em")
    p.add_argument("--default-family", choices=["qa", "math", "choice"],
                   help="family for data_sources the table does not know (default: unknown is an error)")
    p.add_argument("--family", action="append", default=[], metavar="DATA_SOURCE=FAMILY",
                   help="map a data_source to qa|math|choice (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _families(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        ds, sep, fam = item.partition("=")
        if not sep or not ds.strip() or not fam.strip():
            raise ValueError(f"--family expects DATA_SOURCE=FAMILY, got {item!r}")
        out[ds.strip()] = fam.strip()
    return out


async def _score(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any], dict[str, Any] | None]:
    from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions
    from qwenlong_verl.reward.offline import load_rows
    from qwenlong_verl.reward.scoring import HybridScorer, ScoreOptions

    rows = load_rows(args.input)
    options = ScoreOptions(answer_after_think=args.answer_after_think, qa_metric=args.qa_metric,
                           default_family=args.default_family, families=_families(args.family))
    judge = None
    if args.judge_url:
        judge = JudgeClient(JudgeOptions(base_url=args.judge_url, model=args.judge_model,
                                         max_concurrency=args.judge_concurrency, timeout_s=args.judge_timeout,
                                         max_retries=args.judge_retries, api_key_env=args.judge_api_key_env))
    try:
        scores = await HybridScorer(options, judge).score_many(rows, progress=not args.no_progress)
    finally:
        if judge is not None:
            await judge.aclose()
    return rows, scores, (judge.stats.as_dict() if judge is not None else None)


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.reward.offline import format_table, summarise

    try:
        rows, scores, judge_stats = asyncio.run(_score(args))
    except (ValueError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 1
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            for row, s in zip(rows, scores, strict=True):
                fh.write(json.dumps({**row, **s.as_dict()}, ensure_ascii=False, default=str) + "\n")
        logger.info("wrote %d scored rows to %s", len(rows), args.output)
    summary = summarise(scores)
    table = format_table(summary)
    # the table goes to stdout unless stdout carries the JSON
    print(table, file=sys.stderr if args.json_out == "-" else sys.stdout)
    if judge_stats is not None and judge_stats["failures"]:
        logger.warning("judge: %d of %d requests failed; those rows kept their rule score",
                       judge_stats["failures"], judge_stats["requests"])
    if args.json_out:
        payload = {"input": args.input, "summary": summary, "judge": judge_stats,
                   "options": {"answer_after_think": args.answer_after_think, "qa_metric": args.qa_metric,
                               "judge_model": args.judge_model if args.judge_url else None}}
        text = json.dumps(payload, indent=2)
        if args.json_out == "-":
            print(text)
        else:
            with open(args.json_out, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    return 0
