#!/usr/bin/env bash
# RL phase II (prompts 20K-60K tokens, YaRN past 32K) from phase I's HF weights, with a fresh checkpoint folder, plus
# phase I's unsolved examples (retrospective sampling, paper §3.2) from phase I's difficulty table.
#   MODEL=runs/phase1/global_step_N/actor/huggingface DIFFICULTY=runs/phase1/qwenlong_difficulty.json \
#   TRAIN=data/train.parquet VAL=data/val.parquet JUDGE_URL=http://JUDGE_HOST:8000/v1 OUT=runs/phase2 \
#   bash recipes/phase2.sh
set -euo pipefail
: "${MODEL:?set MODEL}" "${DIFFICULTY:?set DIFFICULTY}" "${TRAIN:?set TRAIN}" "${VAL:?set VAL}" "${OUT:?set OUT}"
python -m verl.trainer.main_ppo +recipe=qwenlong_phase2 +qwenlong_rope=yarn \
  data.train_files="$TRAIN" data.val_files="$VAL" actor_rollout_ref.model.path="$MODEL" \
  trainer.default_local_dir="$OUT" trainer.nnodes="${NNODES:-4}" trainer.n_gpus_per_node="${GPUS_PER_NODE:-8}" \
  "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]" \
  "++qwenlong.curriculum.lengths=[20000,60000]" ++qwenlong.curriculum.phase=2 \
  ++qwenlong.retrospective.enable=true ++qwenlong.retrospective.difficulty_file="$DIFFICULTY" \
  ${JUDGE_URL:+++qwenlong.judge.base_url=$JUDGE_URL} "$@"
