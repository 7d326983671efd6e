#!/usr/bin/env bash
# The whole chain on GPUs with one command: SFT -> phase I -> difficulty file -> phase II -> eval -> report.
# Single node (NNODES=1, the default): just run it. Ray cluster: start Ray on every node, set RAY_ADDRESS=HEAD:6379 and
# NNODES, keep WORKDIR on storage every node mounts; the RL phases run on the cluster (SFT runs with torchrun on this
# node, or on the cluster with SFT_LAUNCHER=ray).
#   MODEL=deepseek-ai/DeepSeek-R1-Distill-Qwen-14B SFT_DATA=triplets.jsonl TRAIN=data/train.parquet \
#   VAL=data/val.parquet EVAL=data/eval.jsonl JUDGE_URL=http://JUDGE_HOST:8000/v1 bash recipes/pipeline.sh
# Eval: serve the final model (vllm serve runs/qwenlong/phase2/ckpt/global_step_N/actor/huggingface --port 8001)
# and set EVAL_ENDPOINT=http://HOST:8001 before the eval stage (`... --from eval` reruns just eval + report).
# Extra arguments go to `qwenlong-verl pipeline` (e.g. --phase1-steps 200 --rl-override +qwenlong_model=qwen_7b).
set -euo pipefail
: "${MODEL:?set MODEL}" "${TRAIN:?set TRAIN}" "${VAL:?set VAL}"
args=(--gpu --workdir "${WORKDIR:-runs/qwenlong}" --model "$MODEL" --train-data "$TRAIN" --val-data "$VAL"
      --nproc-per-node "${GPUS_PER_NODE:-8}" --nnodes "${NNODES:-1}" --sft-launcher "${SFT_LAUNCHER:-torchrun}")
[[ -n "${SFT_DATA:-}" ]] && args+=(--sft-data "$SFT_DATA") || args+=(--skip sft)
[[ -n "${JUDGE_URL:-}" ]] && args+=(--judge-url "$JUDGE_URL")
[[ -n "${RAY_ADDRESS:-}" ]] && args+=(--ray-address "$RAY_ADDRESS")
if [[ -n "${EVAL:-}" && -n "${EVAL_ENDPOINT:-}" ]]; then
  args+=(--eval-data "$EVAL" --eval-endpoint "$EVAL_ENDPOINT" --eval-served-model "${EVAL_SERVED_MODEL:-final}")
else
  args+=(--skip eval)
fi
exec qwenlong-verl pipeline "${args[@]}" "$@"
