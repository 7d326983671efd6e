"""``qwenlong-verl score``: score responses the way QwenLong-L1 evaluates them, max(EM-or-subEM/numeric, judge)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from qwenlong_verl.commands._args import bounded_float, bounded_int, http_url

MAX_IN_FLIGHT = 1024  # judge requests in flight: more only exhausts sockets and the judge's queue (as eval)
MAX_RETRIES = 20  # retries of one judge call: beyond this a dead judge only costs hours of backoff

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
    p.add_argument("--judge-url", type=http_url,
                   help="OpenAI base URL of the judge, e.g. http://127.0.0.1:8000/v1 (no judge if unset; /v1 is "
                        "added to a URL without a path; any other path is kept, as everywhere in the package)")
    p.add_argument("--judge-model", default="Qwen/Qwen2.5-1.5B-Instruct")
    p.add_argument("--judge-concurrency", type=bounded_int(1, MAX_IN_FLIGHT), default=64,
                   help=f"judge requests in flight at most, 1 to {MAX_IN_FLIGHT} (64)")
    p.add_argument("--judge-timeout", type=bounded_float(0.001, 86400.0), default=60.0,
                   help="seconds per attempt, > 0 and at most a day (60)")
    p.add_argument("--judge-retries", type=bounded_int(0, MAX_RETRIES), default=3,
                   help=f"retries of a failed judge call, 0 to {MAX_RETRIES} (3)")
    p.add_argument("--allow-judge-failures", action="store_true",
                   help="exit 0 although some judge calls finally failed (those rows keep their rule score); "
                        "without it such a run exits 1")
    p.add_argument("--judge-mode", choices=["generate", "logprob"], default=None,
                   help="generate: short reasoning + VERDICT line (default); logprob: one token, P(YES) vs P(NO) "
                        "from the first token's logprobs, generate when the server sends none")
    # no key unless asked for, as `eval`: a key set in the shell for one server must not go to another one
    p.add_argument("--judge-api-key-env", default=None, metavar="NAME",
                   help="send the value of env var NAME as the judge's API key (default: no key is sent)")
    p.add_argument("--answer-after-think", choices=["require", "optional", "off"], default="optional",
                   help="where the answer is read: require (after the last </think>, as in training), optional "
                        "(default: after the last </think>, or the whole response when it has no <think> tags and "
                        "is finished; a response cut off inside its reasoning scores 0 in both) or off (the whole "
                        "text, reasoning included: only on explicit request)")
    p.add_argument("--qa-metric", choices=["em_or_sub_em", "sub_em", "em", "f1"], default="em_or_sub_em")
    p.add_argument("--default-family", choices=["qa", "math", "choice"],
                   help="family for data_sources the table does not know (default: unknown is an error)")
    p.add_argument("--family", action="append", default=[], metavar="DATA_SOURCE=FAMILY",
                   help="map a data_source to qa|math|choice (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, interrupt_hint=lambda a: "nothing was written (outputs are written when scoring "
                   "finishes); rerun the same command")


def _families(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        ds, sep, fam = item.partition("=")
        if not sep or not ds.strip() or not fam.strip():
            raise ValueError(f"--family expects DATA_SOURCE=FAMILY, got {item!r}")
        out[ds.strip()] = fam.strip()
    return out


async def _score(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any], dict[str, Any] | None]:
    from qwenlong_verl.openai_client import openai_base_url
    from qwenlong_verl.outputs import scrub
    from qwenlong_verl.reward.judge import JudgeOptions
    from qwenlong_verl.reward.offline import load_rows, score_rows
    from qwenlong_verl.reward.scoring import ScoreOptions

    rows, bad = scrub(load_rows(args.input))
    if bad:
        logger.warning("%s: %d unencodable character(s) (lone surrogates, e.g. half an emoji) replaced by U+FFFD",
                       args.input, bad)
    options = ScoreOptions(answer_after_think=args.answer_after_think, qa_metric=args.qa_metric,
                           default_family=args.default_family, families=_families(args.family))
    judge_options = None
    if args.judge_url:
        judge_options = JudgeOptions(base_url=openai_base_url(args.judge_url), model=args.judge_model,
                                     max_concurrency=args.judge_concurrency, timeout_s=args.judge_timeout,
                                     max_retries=args.judge_retries, api_key_env=args.judge_api_key_env,
                                     **({"mode": args.judge_mode} if args.judge_mode else {}))
    scores, judge_stats = await score_rows(rows, options, judge_options, progress=not args.no_progress)
    return rows, scores, judge_stats


def _row_id(row: dict[str, Any], position: int) -> str:
    info = row.get("extra_info")
    for value in (row.get("id"), info.get("index") if isinstance(info, dict) else None):
        if value is not None:
            return str(value)
    return f"row {position}"


def judge_failure_summary(rows: list[dict[str, Any]], scores: list[Any], *, show: int = 5) -> str | None:
    """One line on the rows whose judge call finally failed (None when there are none)."""
    failed = [(i, s) for i, s in enumerate(scores) if s.judge_failed]
    if not failed:
        return None
    ids = ", ".join(_row_id(rows[i], i) for i, _ in failed[:show]) + (", ..." if len(failed) > show else "")
    error = next((s.judge_error for _, s in failed if s.judge_error), None)
    return (f"the judge call failed for {len(failed)} of {len(scores)} row(s) ({ids}; last error: "
            f"{str(error)[:200]}); they kept their rule score. Check the judge server and rerun the same command, "
            "or pass --allow-judge-failures to accept rule-only scores for them")


def _check_judge_answers(url: str) -> None:
    """One GET before any scoring: a judge that is down is named now, not after every row's retries."""
    from qwenlong_verl.commands._args import CommandError
    from qwenlong_verl.config_checks import probe_server
    from qwenlong_verl.openai_client import openai_base_url
    from qwenlong_verl.redaction import redact_url

    reason = probe_server(openai_base_url(url))
    if reason is not None:
        raise CommandError(f"--judge-url {redact_url(url)!r}: the judge is unreachable ({reason}); start it or fix "
                           "the URL, or pass --allow-judge-failures to score such rows by the rule alone",
                           exit_code=1)


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.outputs import check_distinct, check_output, write_jsonl, write_text
    from qwenlong_verl.reward.offline import (
        format_reasons,
        format_table,
        reason_counts,
        score_payload,
        scored_rows,
        summarise,
    )

    # every output is checked before any judge request: a bad path must not cost the scoring
    if args.output:
        check_output(args.output, option="--output", inputs=[args.input])
    if args.json_out and args.json_out != "-":
        check_output(args.json_out, option="--json", inputs=[args.input])
    check_distinct(**{"--output": args.output, "--json": args.json_out})
    if args.judge_url and not args.allow_judge_failures:
        _check_judge_answers(args.judge_url)
    try:
        rows, scores, judge_stats = asyncio.run(_score(args))
    except (ValueError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 1
    if args.output:
        _, bad = write_jsonl(args.output, scored_rows(rows, scores), default=str)
        if bad:
            logger.warning("%d unencodable character(s) (lone surrogates) replaced by U+FFFD in %s", bad,
                           args.output)
        logger.info("wrote %d scored rows to %s", len(rows), args.output)
    summary = summarise(scores)
    table = format_table(summary)
    # the table goes to stdout unless stdout carries the JSON
    reasons = reason_counts(scores)
    print(table + "\n\n" + format_reasons(reasons), file=sys.stderr if args.json_out == "-" else sys.stdout)
    if judge_stats is not None and judge_stats["failures"]:
        logger.warning("judge: %d of %d requests failed; those rows kept their rule score",
                       judge_stats["failures"], judge_stats["requests"])
    if args.json_out:
        payload = score_payload(args.input, summary, scores, judge_stats, reasons=reasons,
                                options={"answer_after_think": args.answer_after_think, "qa_metric": args.qa_metric,
                                         "judge_model": args.judge_model if args.judge_url else None})
        text = json.dumps(payload, indent=2)
        if args.json_out == "-":
            print(text)
        else:
            write_text(args.json_out, text + "\n")
    failures = judge_failure_summary(rows, scores)
    if failures:
        if args.allow_judge_failures:
            logger.warning("%s (accepted: --allow-judge-failures)", failures.split("; they kept")[0])
            return 0
        logger.error("%s", failures)
        return 1
    return 0
