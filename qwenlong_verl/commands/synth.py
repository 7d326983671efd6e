"""``qwenlong-verl synth``: write synthetic long-context DocQA (the demo's and the tests' default data)."""

from __future__ import annotations

import argparse
import logging

from qwenlong_verl.commands._args import CommandError, bounded_int, positive_int, seed

logger = logging.getLogger(__name__)

OUT_SUFFIXES = (".parquet", ".jsonl", ".json")
MAX_ROWS = 10_000_000  # rows held in memory before the one write: more only exhausts memory
MAX_TOKENS_LIMIT = 2_000_000  # far beyond any model's context; more only exhausts memory
KINDS = ("multihop", "numeric", "choice", "copy", "needle", "needle_dense")  # qwenlong_verl.data.synth.KINDS (not imported: keeps --help fast)


def _tokens(text: str) -> int:
    value = positive_int(text)
    if value > MAX_TOKENS_LIMIT:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_TOKENS_LIMIT} tokens, got {text!r}")
    return value


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"unknown kind(s) {', '.join(bad) or repr(text)}; choose from "
                                         f"{','.join(KINDS)}")
    return kinds


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="generate synthetic long-context DocQA (parquet/JSONL), deterministic by seed",
        description="Generate DocQA rows (multi-hop, numeric, multiple-choice, copy) with documents of a chosen "
                    "token length. With --tokenizer the exact prompt length is stored (prompt_length column), "
                    "so the output is ready for the phased sampler without `prepare`.")
    p.add_argument("--out", required=True, help="output .parquet or .jsonl")
    p.add_argument("-n", "--num", type=bounded_int(1, MAX_ROWS), default=64,
                   help=f"number of rows, 1 to {MAX_ROWS} (default 64)")
    p.add_argument("--min-tokens", type=_tokens, default=500)
    p.add_argument("--max-tokens", type=_tokens, default=4000)
    p.add_argument("--length-dist", choices=["uniform", "loguniform"], default="uniform")
    p.add_argument("--kinds", type=_kinds, default=("multihop", "numeric", "choice"),
                   help="comma list of multihop,numeric,choice,copy,needle (default multihop,numeric,choice)")
    p.add_argument("--tokenizer", help="tokenizer/model dir: calibrate lengths and store prompt_length")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--index-offset", type=bounded_int(0, 2**53), default=0,
                   help="first extra_info.index, 0 to 2**53 (default 0)")
    p.add_argument("--split", default="train")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.data.synth import generate_docqa, write_rows
    from qwenlong_verl.model_source import load_tokenizer
    from qwenlong_verl.outputs import check_output

    if args.min_tokens > args.max_tokens:
        raise CommandError(f"--min-tokens ({args.min_tokens}) is above --max-tokens ({args.max_tokens})")
    check_output(args.out, option="--out", suffixes=OUT_SUFFIXES)
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else None
    kinds = args.kinds
    rows = generate_docqa(args.num, min_tokens=args.min_tokens, max_tokens=args.max_tokens, tokenizer=tokenizer,
                          seed=args.seed, kinds=kinds, length_dist=args.length_dist,
                          index_offset=args.index_offset, split=args.split, progress=True)
    write_rows(rows, args.out)
    logger.info("wrote %d rows to %s", len(rows), args.out)
    return 0
