#!/usr/bin/env bash
# The reward's LLM judge: Qwen2.5-1.5B-Instruct at temperature 0 behind vLLM's OpenAI-compatible server (paper §2.4).
# Pass its URL to the RL phases: qwenlong.judge.base_url=http://$(hostname):${JUDGE_PORT:-8000}/v1
# (qwenlong-verl pipeline --gpu --judge-url ...). One GPU is plenty; keep it off the training nodes' GPUs.
set -euo pipefail
JUDGE_MODEL=${JUDGE_MODEL:-Qwen/Qwen2.5-1.5B-Instruct}
exec vllm serve "$JUDGE_MODEL" --host 0.0.0.0 --port "${JUDGE_PORT:-8000}" \
  --gpu-memory-utilization "${JUDGE_GPU_MEM:-0.85}" --max-model-len "${JUDGE_MAX_LEN:-8192}" "$@"
