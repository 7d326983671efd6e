"""``qwenlong-verl prepare``: DocQA parquet/JSONL -> training parquet with stable indices and stored lengths."""

from __future__ import annotations

import argparse
import json
import logging

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare", help="index a DocQA file and store prompt token lengths (for the phased sampler)",
        description="Read a DocQA parquet/JSONL (prompt, data_source, reward_model.ground_truth, extra_info), "
                    "give every row a unique extra_info.index and store the prompt's token length under the "
                    "policy tokenizer and chat template as `prompt_length` and `extra_info.prompt_length`.")
    p.add_argument("input", help="input .parquet or .jsonl")
    p.add_argument("--out", required=True, help="output .parquet")
    p.add_argument("--tokenizer", required=True, help="policy tokenizer / model dir (its chat template is used)")
    p.add_argument("--prompt-key", default="prompt")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip rows without prompt/ground truth (counted and reported) instead of failing")
    p.add_argument("--index", dest="index_mode", choices=["keep", "position", "hash"], default="keep",
                   help="keep existing unique extra_info.index (else positions), or assign positions / content "
                        "hashes (default keep)")
    p.add_argument("--chat-template-kwargs", default=None,
                   help='JSON dict passed to apply_chat_template, as verl data.apply_chat_template_kwargs')
    p.add_argument("--workers", type=int, default=1, help="tokenizer processes (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.data.prepare import DataPrepError, prepare_dataset

    kwargs = json.loads(args.chat_template_kwargs) if args.chat_template_kwargs else None
    try:
        report = prepare_dataset(args.input, args.out, args.tokenizer, prompt_key=args.prompt_key,
                                 skip_invalid=args.skip_invalid, index_mode=args.index_mode,
                                 chat_template_kwargs=kwargs, num_workers=args.workers)
    except DataPrepError as exc:
        logger.error("%s", exc)
        return 1
    logger.info("%s", report.summary())
    if report.skipped:
        for row, reason in report.skipped[:20]:
            logger.warning("skipped row %d: %s", row, reason)
        if len(report.skipped) > 20:
            logger.warning("... and %d more skipped rows", len(report.skipped) - 20)
    return 0
