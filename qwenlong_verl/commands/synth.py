"""``qwenlong-verl synth``: write synthetic long-context DocQA (the demo's and the tests' default data)."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="generate synthetic long-context DocQA (parquet/JSONL), deterministic by seed",
        description="Generate DocQA rows (multi-hop, numeric, multiple-choice, copy) with documents of a chosen "
                    "token length. With --tokenizer the exact prompt length is stored (prompt_length column), "
                    "so the output is ready for the phased sampler without `prepare`.")
    p.add_argument("--out", required=True, help="output .parquet or .jsonl")
    p.add_argument("-n", "--num", type=int, default=64, help="number of rows (default 64)")
    p.add_argument("--min-tokens", type=int, default=500)
    p.add_argument("--max-tokens", type=int, default=4000)
    p.add_argument("--length-dist", choices=["uniform", "loguniform"], default="uniform")
    p.add_argument("--kinds", default="multihop,numeric,choice",
                   help="comma list of multihop,numeric,choice,copy (default multihop,numeric,choice)")
    p.add_argument("--tokenizer", help="tokenizer/model dir: calibrate lengths and store prompt_length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--index-offset", type=int, default=0, help="first extra_info.index (default 0)")
    p.add_argument("--split", default="train")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.data.synth import generate_docqa, write_rows

    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    rows = generate_docqa(args.num, min_tokens=args.min_tokens, max_tokens=args.max_tokens, tokenizer=tokenizer,
                          seed=args.seed, kinds=kinds, length_dist=args.length_dist,
                          index_offset=args.index_offset, split=args.split, progress=True)
    write_rows(rows, args.out)
    logger.info("wrote %d rows to %s", len(rows), args.out)
    return 0
