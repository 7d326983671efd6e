#!/usr/bin/env bash
# Warm-up SFT (paper §2.3, §3.2: inputs up to 20K, 3 epochs, batch 128, lr 5e-6) on verl's own SFT trainer.
# Run the same command on every node (NODE_RANK 0..NNODES-1); node 0 is MASTER_ADDR.
#   MODEL=deepseek-ai/DeepSeek-R1-Distill-Qwen-14B SFT_DATA=sft.parquet OUT=runs/sft bash recipes/sft.sh
# SFT_DATA: a `messages` parquet from `qwenlong-verl sft-data --input triplets.jsonl --tokenizer $MODEL
#   --max-prompt-tokens 20000 --out sft.parquet`. RL phase I starts from $OUT/global_step_N/huggingface.
set -euo pipefail
: "${MODEL:?set MODEL}" "${SFT_DATA:?set SFT_DATA}" "${OUT:?set OUT}"
torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="${GPUS_PER_NODE:-8}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
  -m verl.trainer.sft_trainer +sft_recipe=qwenlong_sft \
  data.train_files="$SFT_DATA" model.path="$MODEL" trainer.default_local_dir="$OUT" \
  trainer.nnodes="${NNODES:-1}" trainer.n_gpus_per_node="${GPUS_PER_NODE:-8}" "$@"
