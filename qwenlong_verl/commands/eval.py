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
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from qwenlong_verl.commands._args import CommandError, bounded_float, bounded_int, http_url, unit_interval
from qwenlong_verl.evaluation.api import MAX_SAMPLES, QA_METRICS, EndpointEvalOptions
from qwenlong_verl.reward.rule import FAMILIES

logger = logging.getLogger("qwenlong_verl.eval")

# The parser takes every default, bound and choice from the fields of EndpointEvalOptions: one source for the command,
# the pipeline's eval stage and any other caller of the library.
_FIELDS = {f.name: f for f in dataclasses.fields(EndpointEvalOptions)}


def _default(name: str) -> Any:
    f = _FIELDS[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _bounded(name: str) -> Callable[[str], Any]:
    """The argparse type of numeric option ``name``: the bounds declared on its field, refused in argparse's words
    ("expected an integer from 1 to 1024") before any work."""
    f = _FIELDS[name]
    meta = dict(f.metadata)
    meta.pop("hint", None)
    if meta == {"gt": 0, "le": 1}:
        return unit_interval
    if set(meta) != {"ge", "le"}:
        raise TypeError(f"EndpointEvalOptions.{name}: the command reads only ge/le or (0, 1] bounds, got {meta}")
    return (bounded_int if str(f.type).startswith("int") else bounded_float)(meta["ge"], meta["le"])


def _choices(name: str) -> tuple[Any, ...]:
    return tuple(c for c in _FIELDS[name].metadata["choices"] if c is not None)


def _positive_ints(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not ks or any(not 1 <= k <= MAX_SAMPLES for k in ks):
        raise argparse.ArgumentTypeError(f"expected integers from 1 to {MAX_SAMPLES}, got {text!r}")
    return ks


def _num(name: str) -> dict[str, Any]:
    """``type`` and ``default`` of numeric option ``name``, from its field."""
    return {"type": _bounded(name), "default": _default(name)}


def _span(name: str) -> str:
    """``"1 to 1024"``: the bounds declared on field ``name``, for the help text."""
    meta = _FIELDS[name].metadata
    return f"{meta['ge']:g} to {meta['le']:g}"


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
    g.add_argument("--concurrency", **_num("concurrency"),
                   help=f"generation requests in flight at most, {_span('concurrency')} ({_default('concurrency')})")
    g.add_argument("--timeout", **_num("timeout_s"),
                   help=f"seconds per request, > 0 and at most a day ({_default('timeout_s'):g})")
    g.add_argument("--max-retries", **_num("max_retries"),
                   help=f"retries of a failed request, {_span('max_retries')} ({_default('max_retries')})")
    g.add_argument("--retry-backoff", **_num("retry_backoff_s"),
                   help=f"seconds before the first retry, {_span('retry_backoff_s')}; doubles with each retry "
                        f"({_default('retry_backoff_s')})")
    g = p.add_argument_group("data and output")
    g.add_argument("--data", action="append", required=True, metavar="FILE",
                   help="JSONL or parquet file in the eval layout or the verl RL layout; repeat for several")
    g.add_argument("--out", required=True, help="output directory (resumed when it exists)")
    g.add_argument("--limit", **_num("limit"),
                   help=f"use only the first N rows of each file, {_span('limit')} (smoke tests)")
    g = p.add_argument_group("sampling (defaults: the paper's)")
    g.add_argument("--tokenizer", default=None,
                   help="tokenizer for middle truncation and token counts (default: --model when it is a local dir)")
    g.add_argument("--max-input-tokens", **_num("max_input_tokens"),
                   help=f"middle-truncate prompts to this many tokens ({_default('max_input_tokens')}; 0 disables)")
    g.add_argument("--max-tokens", **_num("max_tokens"), help=f"max output tokens ({_default('max_tokens')})")
    g.add_argument("--temperature", **_num("temperature"),
                   help=f"sampling temperature, {_span('temperature')} ({_default('temperature')})")
    g.add_argument("--top-p", **_num("top_p"), help=f"nucleus sampling, in (0, 1] ({_default('top_p')})")
    g.add_argument("-n", "--n-samples", **_num("n_samples"),
                   help=f"samples per row, {_span('n_samples')} (pass@k for k <= n)")
    g.add_argument("--pass-k", type=_positive_ints, default=None, help="k values, e.g. 1,2,16 (default 1,2,4..n)")
    g.add_argument("--seed", **_num("seed"), help="per-request seed = SEED + sample index (vLLM)")
    g = p.add_argument_group("scoring")
    g.add_argument("--judge-endpoint", default=None, type=http_url,
                   help="OpenAI-compatible server of the LLM judge (off if unset)")
    g.add_argument("--judge-model", default=None, help="judge model name (paper eval: DeepSeek-V3)")
    g.add_argument("--judge-api-key-env", default=None, metavar="NAME",
                   help="send the value of env var NAME as the judge's API key (default: none)")
    g.add_argument("--judge-concurrency", **_num("judge_concurrency"),
                   help=f"judge requests in flight at most, {_span('judge_concurrency')} "
                        f"({_default('judge_concurrency')})")
    g.add_argument("--family", action="append", default=[], metavar="DATA_SOURCE=FAMILY",
                   help=f"rule family ({', '.join(FAMILIES)}) of a data_source the scorer does not know; repeatable")
    g.add_argument("--default-family", default=_default("default_family"), choices=_choices("default_family"),
                   help="rule family for every unknown data_source (default: unknown is an error)")
    g.add_argument("--qa-metric", default=_default("qa_metric"), choices=QA_METRICS,
                   help=f"rule score of QA benchmarks ({_default('qa_metric')}: the paper's eval)")
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
    from qwenlong_verl.outputs import check_output

    check_output(args.dst, option="dst", inputs=[args.src], suffixes=(".jsonl",))
    try:
        n = convert_verl_file(args.src, args.dst)
    except EvalDataError as exc:
        logger.error("%s", exc)
        logger.debug("details", exc_info=True)
        return 2
    logger.info("wrote %d rows to %s", n, args.dst)
    return 0


def options_from_args(args: argparse.Namespace) -> EndpointEvalOptions:
    """The library's options from the parsed command line (``--family DS=FAM`` pairs become a dict).

    Raises:
        ValueError: a ``--family`` item is not DATA_SOURCE=FAMILY, or the options do not fit together.
    """
    families: dict[str, str] = {}
    for item in args.family:
        ds, sep, fam = item.partition("=")
        if not sep or not ds or not fam:
            raise ValueError(f"--family expects DATA_SOURCE=FAMILY, got {item!r}")
        families[ds] = fam
    return EndpointEvalOptions(
        endpoint=args.endpoint, model=args.model, data=list(args.data), out_dir=args.out,
        api_key_env=args.api_key_env, concurrency=args.concurrency, timeout_s=args.timeout,
        max_retries=args.max_retries, retry_backoff_s=args.retry_backoff, limit=args.limit, tokenizer=args.tokenizer,
        max_input_tokens=args.max_input_tokens, max_tokens=args.max_tokens, temperature=args.temperature,
        top_p=args.top_p, n_samples=args.n_samples, pass_ks=args.pass_k, seed=args.seed,
        judge_endpoint=args.judge_endpoint, judge_model=args.judge_model, judge_api_key_env=args.judge_api_key_env,
        judge_concurrency=args.judge_concurrency, families=families, default_family=args.default_family,
        qa_metric=args.qa_metric, rescore=args.rescore, allow_judge_failures=args.allow_judge_failures,
        force_resume=args.force_resume, progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    """argparse -> :class:`EndpointEvalOptions` -> :func:`evaluate_endpoint` -> one summary line and the exit code:
    0 every sample done, 1 some failed (or a server is down), 2 bad input or options."""
    from qwenlong_verl.evaluation.api import EvalSetupError, evaluate_endpoint
    from qwenlong_verl.evaluation.data import EvalDataError
    from qwenlong_verl.evaluation.store import EvalStoreError

    # one INFO line per request (URL credentials masked by the CLI's log redaction): only with -v
    logging.getLogger("httpx").setLevel(logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    try:
        result = evaluate_endpoint(options_from_args(args))
    except EvalSetupError as exc:
        raise CommandError(str(exc), exit_code=exc.exit_code) from exc
    except (EvalDataError, EvalStoreError, ValueError, OSError) as exc:
        logger.error("%s", exc)
        logger.debug("details", exc_info=True)
        return 2
    avg = result.report["average"]
    logger.info("asked %d sample(s), reused %d; average accuracy %s over %d benchmark(s); report: %s",
                result.asked, result.reused, avg["accuracy"], len(result.report["benchmarks"]), result.paths["md"])
    return 0 if result.complete else 1
