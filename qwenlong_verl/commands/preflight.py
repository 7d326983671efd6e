"""``qwenlong-verl preflight OVERRIDES...``: will ``python -m verl.trainer.main_ppo OVERRIDES...`` start on the GPUs?

Composes the config as ``main_ppo`` would, reads the model folder's ``config.json`` and tokenizer, and runs -- without
Ray and without GPUs -- verl 0.9.1's own validation and config dataclasses plus the checks verl makes only on GPU
workers: heads vs Ulysses SP, token budgets x SP vs prompt + response, ``max_model_len`` vs the model's positions
and rope scaling, actor/rollout rope agreement, vLLM TP and KV-cache memory, flash-attn, the run's files, cluster
paths, loggers and the judge URL. Each finding names the key and the fix; exit 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from qwenlong_verl.commands._args import bounded_float


def register(subparsers) -> None:
    p = subparsers.add_parser("preflight", help="check a main_ppo command line against verl's start-up code and the "
                                                "GPU layout, without GPUs", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs=argparse.REMAINDER,
                   help="the Hydra overrides you would give main_ppo, e.g. +recipe=qwenlong_phase2 "
                        "actor_rollout_ref.model.path=/models/R1-Distill-Qwen-32B trainer.nnodes=4")
    p.add_argument("--gpu-memory-gib", type=bounded_float(1.0, 4096.0), default=None,
                   help="memory of one training GPU for the vLLM estimate (default: this machine's GPU, else 80)")
    p.add_argument("--no-network", action="store_true", help="do not probe qwenlong.judge.base_url")
    p.add_argument("--strict-env", action="store_true",
                   help="missing flash-attn / vLLM is an error even on a machine without GPUs")
    p.add_argument("--json", metavar="FILE", help="also write the findings and summary as JSON")
    p.set_defaults(func=run)


# keys naming what the run writes: their folders are outputs, a preflight report may go there
OUTPUT_KEYS = frozenset({"default_local_dir", "rollout_data_dir", "validation_data_dir", "output_file", "output_dir"})


def override_paths(overrides: list[str]) -> list[str]:
    """Every existing file or folder an override names (``data.train_files=/d/train.parquet``,
    ``actor_rollout_ref.model.path=/models/m``, lists ``[a,b]`` too): the run's inputs, which ``--json`` must never
    write over (a file inside an input folder, e.g. the model's config.json, included)."""
    found: list[str] = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or key.lstrip("+~").startswith("hydra.") or key.rsplit(".", 1)[-1] in OUTPUT_KEYS:
            continue
        value = value.strip()
        items = value[1:-1].split(",") if value.startswith("[") and value.endswith("]") else [value]
        for item in items:
            item = item.strip().strip("'\"")
            if item and os.path.exists(os.path.expanduser(item)):
                found.append(os.path.expanduser(item))
    return found


def run(args: argparse.Namespace) -> int:
    from qwenlong_verl.preflight.all_checks import run_preflight

    overrides = [o for o in args.overrides if o != "--"]
    if args.json:
        from qwenlong_verl.outputs import check_output

        # before the work: a bad path must not cost the checks; never over a file the run reads
        check_output(args.json, option="--json", inputs=override_paths(overrides))
    if not overrides:
        logging.getLogger("qwenlong_verl").error(
            "preflight needs the overrides you would give main_ppo, e.g. `qwenlong-verl preflight "
            "+recipe=qwenlong_phase1 actor_rollout_ref.model.path=/models/M data.train_files=... data.val_files=...`")
        return 2
    report = run_preflight(overrides, gpu_memory_gib=args.gpu_memory_gib, network=not args.no_network,
                           strict_env=args.strict_env)
    s = report.summary
    if s:
        model = s.get("model", {})
        print(f"run: {s.get('recipe')} on {s.get('nodes_x_gpus')} GPUs, prompt+response {s.get('prompt_plus_response')}"
              f", SP {s.get('sp')}, token budget {s.get('ppo_max_token_len_per_gpu')}/GPU, TP {s.get('tp')}, "
              f"max_model_len {s.get('max_model_len')}")
        if model:
            print(f"model: {model['path']}: {model['params_b']}B, {model['heads']} heads / {model['kv_heads']} KV, "
                  f"{model['max_position_embeddings']} positions, rope {model['rope']}")
    for f in report.findings:
        tag = {"error": "ERROR", "warning": " warn", "info": " info"}[f.level]
        print(f"[{tag}] {f.line()}")
    n_err = sum(f.level == "error" for f in report.findings)
    n_warn = sum(f.level == "warning" for f in report.findings)
    print(f"\npreflight: {n_err} error(s), {n_warn} warning(s)" + ("" if n_err else ": main_ppo should start"))
    if args.json:
        from qwenlong_verl.outputs import write_text
        from qwenlong_verl.redaction import redact_value

        payload = redact_value({"ok": report.ok, "summary": s, "findings": [f.to_dict() for f in report.findings]})
        write_text(args.json, json.dumps(payload, indent=1, default=str) + "\n")
    sys.stdout.flush()
    return 0 if report.ok else 1
