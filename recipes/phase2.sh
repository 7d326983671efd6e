#!/usr/bin/env bash
# RL phase II (prompts 20K-60K tokens, YaRN past 32K). By default it CONTINUES phase I: it resumes phase I's last full
# verl checkpoint (weights, Adam moments, lr schedule, global step, RNG, difficulty table; trainer.resume_mode=
# resume_path) with phase II's band, context and token budget, and mixes in phase I's unsolved examples
# (retrospective sampling, paper §3.2). Global steps number on from phase I's; checkpoints go to $OUT.
#   PHASE1=/runs/phase1 TRAIN=/data/train.parquet VAL=/data/val.parquet JUDGE_URL=http://JUDGE_HOST:8000/v1 \
#   OUT=/runs/phase2 bash recipes/phase2.sh [more overrides]
# Launch it on the same number of GPUs as phase I (verl loads the FSDP shards of its own world size; preflight
# checks). RESTART=1 is the paper's separate launch instead: phase I's HF weights, a fresh optimizer and step count
# (MODEL= may then name any HF folder). DIFFICULTY= overrides $PHASE1/qwenlong_difficulty.json.
# YaRN goes into the model folder's config.json (read by verl's actor and its vLLM rollout alike): this script makes
# $OUT/model_yarn from the start weights (symlinked) and trains from it. NO_YARN=1 trains without rope scaling.
set -euo pipefail
: "${PHASE1:?set PHASE1 to the OUT folder of phase I}" "${TRAIN:?set TRAIN}" "${VAL:?set VAL}" "${OUT:?set OUT}"
OUT=$(realpath -m "$OUT")
PHASE1=$(realpath -m "$PHASE1")
STEP=$(cat "$PHASE1/latest_checkpointed_iteration.txt") || { echo "phase2.sh: no checkpoint in $PHASE1 (no latest_checkpointed_iteration.txt)" >&2; exit 1; }
CKPT="$PHASE1/global_step_$STEP"
MODEL=${MODEL:-$CKPT/actor/huggingface}
DIFFICULTY=${DIFFICULTY:-$PHASE1/qwenlong_difficulty.json}
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
  ${JUDGE_URL:+++qwenlong.judge.base_url=$JUDGE_URL})
if [[ -z "${RESTART:-}" ]]; then
  # the model folder names the architecture (and YaRN); verl replaces its weights with the checkpoint's
  args+=(trainer.resume_mode=resume_path trainer.resume_from_path="$CKPT")
fi
args+=("$@")
qwenlong-verl preflight "${args[@]}"
python -m verl.trainer.main_ppo "${args[@]}"
