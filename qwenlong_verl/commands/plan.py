"""``qwenlong-verl plan``: per-phase counts, length histograms and retrospective picks of a prepared dataset."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from qwenlong_verl.commands._args import bounded_float, bounded_int, positive_ints, seed

logger = logging.getLogger(__name__)

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan", help="show what each curriculum phase trains on (counts, lengths, retrospective picks)",
        description="Apply the trainer's phase selection to the stored prompt lengths of a prepared parquet: "
                    "per-phase counts and length histograms, and with --difficulty the retrospective candidates "
                    "and the first epoch's picks.")
    p.add_argument("--data", required=True, help="training parquet written by `qwenlong-verl prepare` or `synth`")
    p.add_argument("--phases", required=True, type=positive_ints,
                   help="phase bounds L_1,L_2,... in prompt tokens (positive, increasing), e.g. 20000,60000")
    p.add_argument("--difficulty", help="difficulty file of an earlier phase (qwenlong.difficulty.output_file)")
    p.add_argument("--cumulative", action="store_true", help="phase k takes length <= L_k (not L_{k-1} < length)")
    p.add_argument("--mode", choices=["zero_mean", "weighted"], default="zero_mean", help="retrospective mode")
    p.add_argument("--ratio", type=_ratio, help="retrospective share of an epoch, in [0, 1)")
    p.add_argument("--count", type=bounded_int(0, 1_000_000_000), help="retrospective examples per epoch")
    p.add_argument("--eps", type=bounded_float(1e-9, 1000.0), default=0.01,
                   help="difficulty = 1/(mean + eps), 1e-9 to 1000 (default 0.01)")
    p.add_argument("--seed", type=seed, default=0, help="retrospective seed (default 0)")
    p.add_argument("--length-key", default="prompt_length")
    p.add_argument("--json", dest="json_out", help="write the plan as JSON here")
    p.add_argument("--plot", help="write a PNG (or .pdf/.svg/.jpg): length distribution per phase and the "
                                  "difficulty histogram")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.config import QwenLongConfigError
    from qwenlong_verl.outputs import atomic_path, check_distinct, check_output, write_json
    from qwenlong_verl.sampling.difficulty import DifficultyFileError, DifficultyTable
    from qwenlong_verl.sampling.options import sampling_options
    from qwenlong_verl.sampling.phase_plan import build_plan, format_plan, plot_plan
    from qwenlong_verl.sampling.phases import MissingLengthError, view_from_file

    inputs = [args.data, args.difficulty]
    if args.json_out:
        check_output(args.json_out, option="--json", inputs=inputs)
    if args.plot:
        check_output(args.plot, option="--plot", inputs=inputs, suffixes=PLOT_SUFFIXES)
    check_distinct(**{"--json": args.json_out, "--plot": args.plot})
    lengths = list(args.phases)
    retro = {"enable": bool(args.difficulty), "mode": args.mode, "eps": args.eps, "seed": args.seed,
             "difficulty_file": args.difficulty}
    if args.ratio is not None:
        retro["ratio"] = args.ratio
    if args.count is not None:
        retro["count"] = args.count
    try:
        options = sampling_options({"qwenlong": {
            "curriculum": {"lengths": lengths, "cumulative": args.cumulative, "length_key": args.length_key},
            "retrospective": retro}})
        options.validate()
        view = view_from_file(args.data, args.length_key)
        table = DifficultyTable.load(args.difficulty) if args.difficulty else None
    except (QwenLongConfigError, DifficultyFileError, MissingLengthError, ValueError, OSError) as exc:
        logger.error("%s", exc)
        return 1
    plan = build_plan(view, options, table)
    sys.stdout.write(format_plan(plan) + "\n")
    if args.json_out:
        write_json(args.json_out, json.loads(json.dumps(plan, default=str)), indent=1)
        logger.info("plan written to %s", args.json_out)
    if args.plot:
        with atomic_path(args.plot) as tmp:
            plot_plan(plan, view, options, str(tmp), table)
        logger.info("plot written to %s", args.plot)
    return 0
