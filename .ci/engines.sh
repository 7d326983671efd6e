#!/usr/bin/env bash
# CI on the engines users scale out to, on this one machine (root; .ci/run calls `install` in the background at its
# start and `run` after the tests):
#   .ci/engines.sh install   apt-get install slurm-wlm and munge where missing (root and apt only; else a no-op)
#   .ci/engines.sh [run]     the two jobs below, concurrently after the pipeline's data stage, then their checks:
#   1. a 2-node Ray cluster (head + worker, each its own temp dir): the pipeline's RL stage (verl main_ppo with our
#      plugins) at world size 2 (trainer.nnodes=2 x 1 CPU rank) through --ray-address;
#   2. a SLURM cluster (slurm-wlm + munge, generated slurm.conf, node entries n1 and n2 on this host): the 2-point
#      sweep `+qwenlong_sweep=slurm trainer.nnodes=2 qwenlong.curriculum.phase=1,3`: point 1 is a 2-node job whose
#      Ray cluster spans its allocation and trains one step, point 3 fails (phase II of a 2-phase curriculum does not
#      exist) and must be a failed row with its error; then `qwenlong-verl sweep-report` over it;
#   3. tests/test_engines.py (pytest -m engines) checks what they left: checkpoints, metrics, difficulty tables,
#      the report's rows.
# Every daemon runs under `timeout` in its own process group and is killed by that group's id on exit.
# QWENLONG_ENGINES=0 skips all; SLURM is skipped, saying why, only where it cannot be installed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
sub=${1:-run}

install_slurm() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "engines: slurm-wlm/munge missing and not installable here (need root and apt-get)"; return 0
  fi
  local t0; t0=$(date +%s)
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q --no-install-recommends slurm-wlm munge \
    > /dev/null 2>&1 || { timeout 120 apt-get update -q > /dev/null 2>&1; DEBIAN_FRONTEND=noninteractive \
    timeout 300 apt-get install -y -q --no-install-recommends slurm-wlm munge > /dev/null 2>&1; } \
    || echo "engines: apt-get install slurm-wlm munge failed"
  echo "engines: slurm-wlm/munge install took $(( $(date +%s) - t0 )) s"
}
if [ "$sub" = install ]; then install_slurm; exit 0; fi
[ "$sub" = run ] || { echo "usage: $0 [install|run]" >&2; exit 2; }
[ "${QWENLONG_ENGINES:-1}" = 0 ] && { echo "engines: skipped (QWENLONG_ENGINES=0)"; exit 0; }

OUT=${QWENLONG_ENGINES_OUT:-$(mktemp -d /tmp/qle.XXXXXX)}  # short: Ray's unix sockets live under it
mkdir -p "$OUT"
export PATH="$ROOT/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled \
  TOKENIZERS_PARALLELISM=false HYDRA_FULL_ERROR=1 RAY_USAGE_STATS_ENABLED=0 RAY_DEDUP_LOGS=0 \
  RAY_AUTH_MODE=disabled  # a loopback-only test cluster; a token left in ~/.ray would otherwise switch auth on
unset RAY_ADDRESS
export QWENLONG_ENGINES_OUT=$OUT
groups=()
cleanup() {
  local g
  [ -f "$OUT/ray_groups" ] && mapfile -t groups < "$OUT/ray_groups"
  for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
  sleep 2
  for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
  [ -f "$OUT/slurm/pids" ] && bash .ci/slurm_cluster.sh stop "$OUT/slurm"
  return 0
}
trap cleanup EXIT
log() { echo "engines [$(date +%T)] $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
t_all=$(date +%s)
status=0

# the pipeline's demo data (tiny Qwen2 + 16 needle rows), shared by both jobs; the RL stage below finds it done
DEMO=(--no-judge --demo-pretrain-steps 0 --demo-train-rows 16 --demo-eval-rows 4)
qwenlong-verl pipeline --workdir "$OUT/pipeline" --skip sft --skip phase1 --skip phase2 --skip eval --skip report \
  "${DEMO[@]}" > "$OUT/data.log" 2>&1 || { log "pipeline data stage FAILED"; tail -n 20 "$OUT/data.log"; exit 1; }

# ---------------------------------------------------------------------------------------------- 1. Ray, 2 nodes
ray_job() {
  local t0 port; t0=$(date +%s); port=$(free_port)
  local args=(--num-cpus=8 --num-gpus=1 --object-store-memory=150000000 --disable-usage-stats --block)
  setsid timeout 600 ray start --head --port="$port" --node-ip-address=127.0.0.1 --include-dashboard=false \
    --temp-dir="$OUT/rh" "${args[@]}" > "$OUT/ray_head.log" 2>&1 &
  echo $! >> "$OUT/ray_groups"
  python -m qwenlong_verl.ray_cluster --address "127.0.0.1:$port" --nodes 1 --timeout 90 || return 1
  setsid timeout 600 ray start --address="127.0.0.1:$port" --node-ip-address=127.0.0.1 --temp-dir="$OUT/rw" \
    "${args[@]}" > "$OUT/ray_worker.log" 2>&1 &
  echo $! >> "$OUT/ray_groups"
  python -m qwenlong_verl.ray_cluster --address "127.0.0.1:$port" --nodes 2 --timeout 90 || return 1
  log "Ray: 2 nodes up at 127.0.0.1:$port; the pipeline's phase1 at world size 2"
  timeout 480 qwenlong-verl pipeline --workdir "$OUT/pipeline" --skip sft --skip phase2 --skip eval --skip report \
    --ray-address "127.0.0.1:$port" --nnodes 2 --nproc-per-node 1 --phase1-steps 1 --max-response-length 16 \
    "${DEMO[@]}" \
    --rl-override data.train_batch_size=4 --rl-override actor_rollout_ref.rollout.n=4 \
    --rl-override actor_rollout_ref.actor.ppo_mini_batch_size=4 --rl-override algorithm.filter_groups.enable=false \
    --rl-override actor_rollout_ref.rollout.agent.num_workers=1 --rl-override reward.num_workers=1 \
    > "$OUT/pipeline.log" 2>&1 || { log "Ray: pipeline FAILED"; tail -n 40 "$OUT/pipeline.log"; return 1; }
  log "Ray job: $(( $(date +%s) - t0 )) s"
}

# ---------------------------------------------------------------------------------------------- 2. SLURM
slurm_job() {
  local t0; t0=$(date +%s)
  install_slurm
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    log "SLURM: SKIPPED - slurm-wlm/munge not installed and not installable here (need root and apt-get)"
    touch "$OUT/slurm_skipped"; return 0
  fi
  if ! QWENLONG_SLURM_LIFETIME_S=600 bash .ci/slurm_cluster.sh start "$OUT/slurm" > "$OUT/slurm_start.log" 2>&1; then
    log "SLURM: cluster did not start"; cat "$OUT/slurm_start.log"; return 1
  fi
  local data
  data=$(python - "$OUT/pipeline/data/DONE" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
print(f"data.train_files={o['train']} data.val_files={o['val']} actor_rollout_ref.model.path={o['model']}")
PY
  ) || { log "SLURM: no data from the pipeline's data stage"; return 1; }
  # shellcheck disable=SC2206
  local sweep=(+recipe=qwenlong_phase1 +qwenlong_env=cpu +qwenlong_sweep=slurm $data trainer.total_training_steps=1
               data.train_batch_size=4 actor_rollout_ref.rollout.n=4 algorithm.filter_groups.enable=false
               data.max_response_length=16 actor_rollout_ref.rollout.agent.num_workers=1 reward.num_workers=1
               hydra.launcher.timeout_min=6 hydra.sweep.dir="$OUT/sweep" trainer.nnodes=2
               qwenlong.curriculum.phase=1,3)
  log "SLURM: cluster up; the 2-point sweep of 2-node jobs (phase 3 fails by design)"
  # submitit polls `sacct` first; accounting is off here (no slurmdbd), so it falls back to squeue and logs
  # "Bypassing sacct error" on every poll: filtered out, said once here.
  echo "engines: SLURM accounting is off: submitit's 'Bypassing sacct error' lines are filtered (harmless)"
  (cd "$OUT" && SLURM_CONF="$OUT/slurm/slurm.conf" timeout 420 python -m verl.trainer.main_ppo -m "${sweep[@]}" 2>&1 \
    | grep -v 'Bypassing sacct error\|Slurm accounting storage is disabled' > "$OUT/sweep.log")
  # the sweep exits 1 because point 3 failed, as it should; the report and tests/test_engines.py judge the rows
  qwenlong-verl sweep-report "$OUT/sweep" > "$OUT/sweep_report.log" 2>&1 || { cat "$OUT/sweep_report.log"; return 1; }
  cat "$OUT/sweep/sweep_report.md"
  bash .ci/slurm_cluster.sh stop "$OUT/slurm"
  log "SLURM job: $(( $(date +%s) - t0 )) s"
}

ray_job > "$OUT/ray_job.log" 2>&1 &
ray_pid=$!
slurm_job > "$OUT/slurm_job.log" 2>&1 &
slurm_pid=$!
wait "$ray_pid" || status=1
[ -f "$OUT/ray_groups" ] && mapfile -t groups < "$OUT/ray_groups"
for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
wait "$slurm_pid" || status=1
cat "$OUT/ray_job.log" "$OUT/slurm_job.log"

# ---------------------------------------------------------------------------------------------- 3. checks
pytest -q -m engines -p no:cacheprovider tests/test_engines.py || status=1
log "engines: $(( $(date +%s) - t_all )) s in all, outputs in $OUT (status $status)"
exit $status
