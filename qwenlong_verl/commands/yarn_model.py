"""``qwenlong-verl yarn-model SRC --out DST``: a model folder with YaRN rope scaling in its ``config.json``.

The one place both verl's FSDP actor and its vLLM rollout read rope settings from (see
:mod:`qwenlong_verl.rope_scaling` for why ``override_config`` cannot do it in verl 0.9.1). Weights are symlinked, not
copied. Phase II of ``recipes/phase2.sh`` and ``qwenlong-verl pipeline --gpu`` call it on phase I's HF weights.
"""

from __future__ import annotations

import argparse
import logging

from qwenlong_verl.commands._args import bounded_float, bounded_int

logger = logging.getLogger("qwenlong_verl.yarn_model")


def register(subparsers) -> None:
    p = subparsers.add_parser("yarn-model", help="model folder with YaRN rope scaling in config.json (for phase II)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="HF model folder, e.g. runs/phase1/global_step_N/actor/huggingface")
    p.add_argument("--out", required=True, help="new folder (config.json rewritten, the rest symlinked to SRC)")
    p.add_argument("--factor", type=bounded_float(1.0, 1024.0), default=4.0,
                   help="YaRN factor, 1 to 1024 (QwenLong-L1: 4.0)")
    p.add_argument("--original-max-position-embeddings", type=bounded_int(1, 16_777_216), default=32768,
                   help="the model's pre-scaling context (Qwen2.5: 32768)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.rope_scaling import RopeScalingError, YarnSettings, write_yarn_model

    try:
        yarn = YarnSettings(args.factor, args.original_max_position_embeddings)
        out = write_yarn_model(args.src, args.out, yarn)
    except RopeScalingError as exc:
        logger.error("%s", exc)
        return 1
    print(f"{out}: YaRN factor {yarn.factor} over {yarn.original_max_position_embeddings} positions -> "
          f"max_position_embeddings {yarn.positions}; pass actor_rollout_ref.model.path={out} +qwenlong_rope=yarn")
    return 0
