#!/usr/bin/env bash
# RL phase II (prompts 20K-60K tokens, YaRN past 32K) from phase I's HF weights, with a fresh checkpoint folder, plus
# phase I's unsolved examples (retrospective sampling, paper §3.2) from phase I's difficulty table.
#   MODEL=/runs/phase1/global_step_N/actor/huggingface DIFFICULTY=/runs/phase1/qwenlong_difficulty.json \
#   TRAIN=/data/train.parquet VAL=/data/val.parquet JUDGE_URL=http://JUDGE_HOST:8000/v1 OUT=/runs/phase2 \
#   bash recipes/phase2.sh [more overrides]
# YaRN goes into the model folder's config.json (read by verl's actor and its vLLM rollout alike): this script makes
# $OUT/model_yarn from $MODEL (weights symlinked) and trains from it. NO_YARN=1 trains without rope scaling.
set -euo pipefail
: "${MODEL:?set MODEL}" "${DIFFICULTY:?set DIFFICULTY}" "${TRAIN:?set TRAIN}" "${VAL:?set VAL}" "${OUT:?set OUT}"
OUT=$(realpath -m "$OUT")
args=(+recipe=qwenlong_phase2)
if [[ -z "${NO_YARN:-}" ]]; then
  qwenlong-verl yarn-model "$MODEL" --out "$OUT/model_yarn"
  MODEL="$OUT/model_yarn"
  args+=(+qwenlong_rope=yarn)
fi
args+=(data.train_files="$TRAIN" data.val_files="$VAL" actor_rollout_ref.model.path="$MODEL"
  trainer.default_local_dir="$OUT" trainer.nnodes="${NNODES:-1}" trainer.n_gpus_per_node="${GPUS_PER_NODE:-8}"
  "++qwenlong.curriculum.lengths=[20000,60000]" ++qwenlong.curriculum.phase=2
  ++qwenlong.retrospective.enable=true ++qwenlong.retrospective.difficulty_file="$DIFFICULTY"
  ${JUDGE_URL:+++qwenlong.judge.base_url=$JUDGE_URL} "$@")
qwenlong-verl preflight "${args[@]}"
python -m verl.trainer.main_ppo "${args[@]}"
