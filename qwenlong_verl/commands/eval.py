"""``qwenlong-verl eval``: evaluate a checkpoint served by an OpenAI-compatible server on long-context DocQA files,
the way QwenLong-L1 does (PAPER §3.3); ``qwenlong-verl eval-convert``: verl RL parquet -> the eval JSONL layout.

Example (vLLM serving the checkpoint on port 8000, a judge on port 8001)::

    qwenlong-verl eval --endpoint http://localhost:8000 --model /ckpt/qwenlong-14b --data docmath.jsonl \\
        --data hotpotqa.jsonl --out eval/qwenlong-14b --n-samples 4 \\
        --judge-endpoint http://localhost:8001 --judge-model Qwen2.5-1.5B-Instruct

Rerunning the same command resumes: finished (row, sample) pairs are read from ``OUT/generations.jsonl``.
Exit status: 0 when every sample is done, 1 when some failed (a generation request, or a judge call: rerun to retry
them; --allow-judge-failures accepts rule-only scores for the latter), 2 for bad input or options, 130 on Ctrl-C
(what finished is kept; rerun to resume). No API key is sent unless --api-key-env / --judge-api-key-env names the
environment variable that holds it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qwenlong_verl.cli_args import (
    CommandError,
    bounded_float,
    bounded_int,
    http_url,
    seed,
    unit_interval,
)

logger = logging.getLogger("qwenlong_verl.eval")

# bounds of the counts a user gives: a typo (--concurrency 100000) is refused instead of exhausting sockets
MAX_IN_FLIGHT = 1024
MAX_RETRIES = 20
MAX_SAMPLES = 1024
MAX_ROWS = 10_000_000  # --limit: rows of one file
MAX_TOKEN_COUNT = 10_000_000  # tokens of a prompt or a reply: beyond any model's context
MAX_TEMPERATURE = 10.0  # beyond this sampling is noise; servers refuse far less (OpenAI: 2)


def _positive_ints(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not ks or any(not 1 <= k <= MAX_SAMPLES for k in ks):
        raise argparse.ArgumentTypeError(f"expected integers from 1 to {MAX_SAMPLES}, got {text!r}")
    return ks


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a served model on long-context DocQA benchmarks (QwenLong-L1 protocol)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("model server")
    g.add_argument("--endpoint", required=True, type=http_url, help="OpenAI-compatible server: http://host:port[/v1]")
    g.add_argument("--model", required=True, help="model name the server knows (vLLM: the served model path/name)")
    g.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="send the value of env var NAME as the server's API key (default: no key is sent)")
    g.add_argument("--concurrency", type=bounded_int(1, MAX_IN_FLIGHT), default=32,
                   help=f"generation requests in flight at most, 1 to {MAX_IN_FLIGHT} (32)")
    g.add_argument("--timeout", type=bounded_float(0.001, 86400.0), default=1800.0,
                   help="seconds per request, > 0 and at most a day (1800)")
    g.add_argument("--max-retries", type=bounded_int(0, MAX_RETRIES), default=4,
                   help=f"retries of a failed request, 0 to {MAX_RETRIES} (4)")
    g.add_argument("--retry-backoff", type=bounded_float(0.0, 3600.0), default=1.0,
                   help="seconds before the first retry, 0 to 3600; doubles with each retry (1.0)")
    g = p.add_argument_group("data and output")
    g.add_argument("--data", action="append", required=True, metavar="FILE",
                   help="JSONL or parquet file in the eval layout or the verl RL layout; repeat for several")
    g.add_argument("--out", required=True, help="output directory (resumed when it exists)")
    g.add_argument("--limit", type=bounded_int(1, MAX_ROWS), default=None,
                   help=f"use only the first N rows of each file, 1 to {MAX_ROWS} (smoke tests)")
    g = p.add_argument_group("sampling (defaults: the paper's)")
    g.add_argument("--tokenizer", default=None,
                   help="tokenizer for middle truncation and token counts (default: --model when it is a local dir)")
    g.add_argument("--max-input-tokens", type=bounded_int(0, MAX_TOKEN_COUNT), default=120_000,
                   help="middle-truncate prompts to this many tokens (120000; 0 disables)")
    g.add_argument("--max-tokens", type=bounded_int(1, MAX_TOKEN_COUNT), default=10_000,
                   help="max output tokens (10000)")
    g.add_argument("--temperature", type=bounded_float(0.0, MAX_TEMPERATURE), default=0.7,
                   help=f"sampling temperature, 0 to {MAX_TEMPERATURE:g} (0.7)")
    g.add_argument("--top-p", type=unit_interval, default=0.95)
    g.add_argument("-n", "--n-samples", type=bounded_int(1, MAX_SAMPLES), default=1,
                   help=f"samples per row, 1 to {MAX_SAMPLES} (pass@k for k <= n)")
    g.add_argument("--pass-k", type=_positive_ints, default=None, help="k values, e.g. 1,2,16 (default 1,2,4..n)")
    g.add_argument("--seed", type=seed, default=None, help="per-request seed = SEED + sample index (vLLM)")
    g = p.add_argument_group("scoring")
    g.add_argument("--judge-endpoint", default=None, type=http_url, help="OpenAI-compatible server of the LLM judge (off if unset)")
    g.add_argument("--judge-model", default=None, help="judge model name (paper eval: DeepSeek-V3)")
    g.add_argument("--judge-api-key-env", default=None, metavar="NAME",
                   help="send the value of env var NAME as the judge's API key (default: none)")
    g.add_argument("--judge-concurrency", type=bounded_int(1, MAX_IN_FLIGHT), default=16,
                   help=f"judge requests in flight at most, 1 to {MAX_IN_FLIGHT} (16)")
    g.add_argument("--family", action="append", default=[], metavar="DATA_SOURCE=FAMILY",
                   help="rule family (qa, math, choice) of a data_source the scorer does not know; repeatable")
    g.add_argument("--default-family", default=None, choices=("qa", "math", "choice"),
                   help="rule family for every unknown data_source (default: unknown is an error)")
    g.add_argument("--qa-metric", default="em_or_sub_em", choices=("em_or_sub_em", "sub_em", "em", "f1"),
                   help="rule score of QA benchmarks (em_or_sub_em: the paper's eval)")
    g.add_argument("--rescore", action="store_true", help="score every stored response again before continuing")
    g.add_argument("--allow-judge-failures", action="store_true",
                   help="count a sample whose judge call finally failed as done, with its rule score (exit 0); "
                        "without it such samples are failed: the run exits 1 and a rerun asks the judge again")
    g = p.add_argument_group("run control")
    g.add_argument("--force-resume", action="store_true", help="resume although the settings in run.json differ")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, interrupt_hint=lambda a: f"finished samples are saved in {a.out}/generations.jsonl; "
                   "rerun the same command to resume (only the missing samples are asked)")

    c = subparsers.add_parser("eval-convert", help="convert a verl RL parquet/JSONL file to the eval JSONL layout")
    c.add_argument("src", help="verl RL file (data_source, prompt, reward_model.ground_truth, extra_info)")
    c.add_argument("dst", help="output .jsonl")
    c.set_defaults(func=run_convert, interrupt_hint=lambda a: f"{a.dst} was not written; rerun the command")


def run_convert(args: argparse.Namespace) -> int:
    from qwenlong_verl.evaluation.data import EvalDataError, convert_verl_file
    from qwenlong_verl.io_safety import check_output

    check_output(args.dst, option="dst", inputs=[args.src], suffixes=(".jsonl",))
    try:
        n = convert_verl_file(args.src, args.dst)
    except EvalDataError as exc:
        logger.error("%s", exc)
        logger.debug("details", exc_info=True)
        return 2
    logger.info("wrote %d rows to %s", n, args.dst)
    return 0


def load_tokenizer(args: argparse.Namespace) -> tuple[Any | None, str | None]:
    name = args.tokenizer
    if name is None and Path(args.model).is_dir():
        name = args.model
    if name is None:
        if args.max_input_tokens > 0:
            raise ValueError("middle truncation needs a tokenizer: pass --tokenizer PATH (the served model's "
                             "tokenizer), or --max-input-tokens 0 to send prompts uncut")
        return None, None
    from qwenlong_verl.cli_args import load_tokenizer as load

    return load(name, "--tokenizer" if args.tokenizer else "--model (as tokenizer)"), name


def _judge_url(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    if base.endswith("/chat/completions") or base.endswith("/v1"):
        return base
    return base + "/v1"


def build_scorer(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """(scorer, judge client or None, scorer settings for run.json)."""
    from qwenlong_verl.reward.scoring import HybridScorer, ScoreOptions

    families: dict[str, str] = {}
    for item in args.family:
        ds, sep, fam = item.partition("=")
        if not sep or not ds or not fam:
            raise ValueError(f"--family expects DATA_SOURCE=FAMILY, got {item!r}")
        families[ds] = fam
    score_opts = ScoreOptions(families=families, default_family=args.default_family, qa_metric=args.qa_metric)
    judge = None
    if bool(args.judge_endpoint) != bool(args.judge_model):
        raise ValueError("--judge-endpoint and --judge-model go together")
    if args.judge_endpoint:
        from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions

        kwargs: dict[str, Any] = {"base_url": _judge_url(args.judge_endpoint), "model": args.judge_model,
                                  "max_concurrency": args.judge_concurrency}
        kwargs["api_key_env"] = args.judge_api_key_env  # None: no key is sent
        judge = JudgeClient(JudgeOptions(**kwargs))
    settings = {"judge_model": args.judge_model, "families": families, "default_family": args.default_family,
                "qa_metric": args.qa_metric}
    return HybridScorer(score_opts, judge=judge), judge, settings


async def _evaluate(args: argparse.Namespace) -> int:
    from qwenlong_verl.evaluation.client import ChatClient, ChatOptions
    from qwenlong_verl.evaluation.data import load_rows
    from qwenlong_verl.evaluation.runner import EvalOptions, run_eval
    from qwenlong_verl.evaluation.truncation import MiddleTruncator

    rows = load_rows(args.data, limit=args.limit)
    tokenizer, tok_name = await asyncio.to_thread(load_tokenizer, args)
    truncator = MiddleTruncator(tokenizer, args.max_input_tokens)
    count = None
    if tokenizer is not None:
        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    chat_opts = ChatOptions(
        endpoint=args.endpoint, model=args.model, api_key_env=args.api_key_env, temperature=args.temperature,
        top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed, timeout_s=args.timeout,
        max_retries=args.max_retries, backoff_s=args.retry_backoff, max_connections=max(args.concurrency, 1),
    )
    options = EvalOptions(out_dir=args.out, n_samples=args.n_samples, concurrency=args.concurrency,
                          pass_ks=args.pass_k, progress=not args.no_progress, force_resume=args.force_resume,
                          rescore=args.rescore, allow_judge_failures=args.allow_judge_failures)
    scorer, judge, scorer_settings = build_scorer(args)
    try:
        async with ChatClient(chat_opts) as chat:
            result = await run_eval(rows, chat, scorer, truncator, options, tokenizer_name=tok_name,
                                    scorer_settings=scorer_settings, count_tokens=count)
    finally:
        if judge is not None:
            await judge.aclose()
    avg = result.report["average"]
    logger.info("asked %d sample(s), reused %d; average accuracy %s over %d benchmark(s); report: %s",
                result.asked, result.reused, avg["accuracy"], len(result.report["benchmarks"]), result.paths["md"])
    return 0 if result.complete else 1


def check_out_dir(out: str, data: list[str]) -> None:
    """``--out`` is a folder this process can write, and none of the files eval writes there is an input."""
    from qwenlong_verl.evaluation.report import REPORT_JSON, REPORT_MD, REPORT_PNG
    from qwenlong_verl.evaluation.store import GENERATIONS, MANIFEST
    from qwenlong_verl.io_safety import check_output

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CommandError(f"--out {out!r} is a file; eval writes a folder (generations, reports): give a folder "
                           "path")
    for name in (GENERATIONS, MANIFEST, REPORT_JSON, REPORT_MD, REPORT_PNG):
        check_output(path / name, option="--out", inputs=data)


def check_servers_answer(args: argparse.Namespace) -> None:
    """One GET to the model server and to the judge before any work: a server that is down is named now, instead of
    every sample failing after its retries. A judge that is down is accepted with --allow-judge-failures."""
    from qwenlong_verl.config_checks import probe_server
    from qwenlong_verl.evaluation.client import ChatOptions
    from qwenlong_verl.io_safety import redact_url

    model_url = ChatOptions(endpoint=args.endpoint, model=args.model).url
    reason = probe_server(model_url.removesuffix("/chat/completions"))
    if reason is not None:
        raise CommandError(f"--endpoint {redact_url(args.endpoint)!r}: the model server is unreachable ({reason}); "
                           "start it (vllm serve ...) or fix the URL", exit_code=1)
    if args.judge_endpoint and not args.allow_judge_failures:
        reason = probe_server(_judge_url(args.judge_endpoint))
        if reason is not None:
            raise CommandError(f"--judge-endpoint {redact_url(args.judge_endpoint)!r}: the judge is unreachable "
                               f"({reason}); start it or fix the URL, or pass --allow-judge-failures to score by the "
                               "rule alone", exit_code=1)


LOCK_FILE = ".eval.lock"


@contextlib.contextmanager
def out_dir_lock(out: str) -> Iterator[None]:
    """Hold ``<out>/.eval.lock`` (an exclusive ``flock``) for the whole run. Two evals on one ``--out`` would each
    ask for every missing sample (every request twice) and interleave their appends; the second is refused at once,
    naming the first's pid. The kernel drops the lock when the holder dies, so a killed run never blocks the next."""
    import fcntl

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            raise CommandError(f"--out {out!r} is in use by another qwenlong-verl eval (pid {holder}): wait for it "
                               "to finish (it saves every sample; a rerun then resumes), or give another --out",
                               exit_code=2) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def run(args: argparse.Namespace) -> int:
    check_out_dir(args.out, args.data)
    check_servers_answer(args)
    with out_dir_lock(args.out):
        return _run_locked(args)


def _run_locked(args: argparse.Namespace) -> int:
    from qwenlong_verl.evaluation.data import EvalDataError
    from qwenlong_verl.evaluation.store import EvalStoreError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # one INFO line per request (URL credentials masked by the CLI's log redaction): only with -v
    logging.getLogger("httpx").setLevel(logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    try:
        return asyncio.run(_evaluate(args))
    except (EvalDataError, EvalStoreError, ValueError, OSError) as exc:
        logger.error("%s", exc)
        logger.debug("details", exc_info=True)
        return 2
