#!/usr/bin/env bash
# RL phase I (prompts up to L1 = 20K tokens) from the SFT model; writes the difficulty table phase II reads.
# One node: just run it. Several nodes: start Ray on them first (ray start --head / ray start --address=HEAD:6379),
# set NNODES, and give absolute paths on storage every node mounts. On the head node:
#   MODEL=/models/sft TRAIN=/data/train.parquet VAL=/data/val.parquet JUDGE_URL=http://JUDGE_HOST:8000/v1 \
#   OUT=/runs/phase1 bash recipes/phase1.sh [more overrides, e.g. +qwenlong_model=qwen_7b]
# TRAIN must carry stored prompt lengths (`qwenlong-verl prepare`). Output: $OUT/global_step_N/actor/huggingface
# (HF weights for phase II) and $OUT/qwenlong_difficulty.json. The run is checked first (`qwenlong-verl preflight`).
set -euo pipefail
: "${MODEL:?set MODEL}" "${TRAIN:?set TRAIN}" "${VAL:?set VAL}" "${OUT:?set OUT}"
OUT=$(realpath -m "$OUT")
args=(+recipe=qwenlong_phase1
  data.train_files="$TRAIN" data.val_files="$VAL" actor_rollout_ref.model.path="$MODEL"
  trainer.default_local_dir="$OUT" trainer.nnodes="${NNODES:-1}" trainer.n_gpus_per_node="${GPUS_PER_NODE:-8}"
  "++qwenlong.curriculum.lengths=[20000,60000]" ++qwenlong.curriculum.phase=1
  ++qwenlong.difficulty.output_file="$OUT/qwenlong_difficulty.json"
  ${JUDGE_URL:+++qwenlong.judge.base_url=$JUDGE_URL} "$@")
qwenlong-verl preflight "${args[@]}"
python -m verl.trainer.main_ppo "${args[@]}"
