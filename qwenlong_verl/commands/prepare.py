"""``qwenlong-verl prepare``: DocQA parquet/JSONL -> training parquet with stable indices and stored lengths."""

from __future__ import annotations

import argparse
import logging

from qwenlong_verl.commands._args import bounded_int, json_object

logger = logging.getLogger(__name__)

FAMILY_CHOICES = ("qa", "math", "choice")
MAX_WORKERS = 256  # tokenizer processes: more only multiplies memory (one tokenizer each)


def _family(item: str) -> tuple[str, str]:
    ds, sep, fam = item.partition("=")
    if not sep or not ds.strip() or fam.strip() not in FAMILY_CHOICES:
        raise argparse.ArgumentTypeError(f"expected DATA_SOURCE=qa|math|choice, got {item!r}")
    return ds.strip(), fam.strip()


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare", help="index a DocQA file and store prompt token lengths (for the phased sampler)",
        description="Read a DocQA parquet/JSONL (prompt, data_source, reward_model.ground_truth, extra_info), "
                    "validate every row (errors name file:line or the row, and the field), give every row a unique "
                    "extra_info.index and store the prompt's token length under the policy tokenizer and chat "
                    "template as `prompt_length` and `extra_info.prompt_length`.")
    p.add_argument("input", help="input .parquet or .jsonl")
    p.add_argument("--out", required=True, help="output .parquet (written only when every row is done)")
    p.add_argument("--tokenizer", required=True, help="policy tokenizer / model dir (its chat template is used)")
    p.add_argument("--prompt-key", default="prompt")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip unusable rows (counted and reported) instead of failing")
    p.add_argument("--index", dest="index_mode", choices=["keep", "position", "hash"], default="keep",
                   help="keep existing unique extra_info.index (else positions), or assign positions / content "
                        "hashes (default keep)")
    p.add_argument("--chat-template-kwargs", type=json_object, default=None,
                   help='JSON dict passed to apply_chat_template, as verl data.apply_chat_template_kwargs')
    p.add_argument("--workers", type=bounded_int(1, MAX_WORKERS), default=1,
                   help=f"tokenizer processes, 1 to {MAX_WORKERS} (default 1)")
    p.add_argument("--default-family", choices=FAMILY_CHOICES,
                   help="rule family of data_sources the reward does not know (as qwenlong.reward.default_family; "
                        "default: an unknown data_source is an error)")
    p.add_argument("--family", action="append", type=_family, default=[], metavar="DATA_SOURCE=FAMILY",
                   help="rule family of one data_source (as qwenlong.reward.families.<ds>); repeatable")
    p.set_defaults(func=run, interrupt_hint=lambda a: f"{a.out} was not written (it is written only when every "
                   "row is done); rerun the command")


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.data import prepare
    from qwenlong_verl.model_source import load_tokenizer
    from qwenlong_verl.outputs import check_output

    check_output(args.out, option="--out", inputs=[args.input], suffixes=(".parquet",))
    # load once here (a bad path is one line naming --tokenizer); compute_lengths reuses the cached one
    prepare._TOKENIZERS[args.tokenizer] = load_tokenizer(args.tokenizer)
    try:
        report = prepare.prepare_dataset(args.input, args.out, args.tokenizer, prompt_key=args.prompt_key,
                                         skip_invalid=args.skip_invalid, index_mode=args.index_mode,
                                         chat_template_kwargs=args.chat_template_kwargs, num_workers=args.workers,
                                         families=dict(args.family), default_family=args.default_family)
    except prepare.DataPrepError as exc:
        logger.error("%s", exc)
        return 1
    for what, count in sorted(report.repairs.items()):
        logger.warning("repaired %d row(s)/value(s): %s", count, what)
    if report.skipped:
        logger.warning("skipped %d unusable row(s) (--skip-invalid); first: row %d: %s", len(report.skipped),
                       *report.skipped[0])
    return 0  # the summary line was logged by prepare_dataset
