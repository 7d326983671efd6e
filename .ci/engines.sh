#!/usr/bin/env bash
# CI on the engines users scale out to, on this one machine (root; called by .ci/run after the tests):
#   1. a 2-node Ray cluster (head + worker, each its own temp dir): the pipeline's data stage, then its RL stage
#      (verl main_ppo with our plugins) at world size 2 (trainer.nnodes=2 x 1 CPU rank) through --ray-address;
#   2. a SLURM cluster (slurm-wlm + munge, generated slurm.conf, node entries n1 and n2 on this host): the 2-point
#      sweep `+qwenlong_sweep=slurm trainer.nnodes=2 actor_rollout_ref.actor.optim.lr=1e-6,2e-6` (each job a Ray
#      cluster spanning its 2-node allocation; the launcher's --nodes is one value per sweep, so trainer.nnodes
#      cannot itself be swept), a sweep whose one job fails, and `qwenlong-verl sweep-report` over both;
#   3. tests/test_engines.py (pytest -m engines) checks what they left: checkpoints, metrics, difficulty tables,
#      the reports' rows (the failed one with its error).
# Every daemon runs under `timeout` in its own process group and is killed by that group's id on exit.
# QWENLONG_ENGINES=0 skips all; a job whose engine cannot be installed is skipped with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "${QWENLONG_ENGINES:-1}" = 0 ] && { echo "engines: skipped (QWENLONG_ENGINES=0)"; exit 0; }
OUT=${QWENLONG_ENGINES_OUT:-$(mktemp -d /tmp/qle.XXXXXX)}  # short: Ray's unix sockets live under it
mkdir -p "$OUT"
export PATH="$ROOT/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled \
  TOKENIZERS_PARALLELISM=false HYDRA_FULL_ERROR=1 RAY_USAGE_STATS_ENABLED=0 RAY_DEDUP_LOGS=0 \
  RAY_AUTH_MODE=disabled  # a loopback-only test cluster; a token left in ~/.ray would otherwise switch auth on
unset RAY_ADDRESS
groups=()
cleanup() {
  local g
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
export QWENLONG_ENGINES_OUT=$OUT

# ---------------------------------------------------------------------------------------------- 1. Ray, 2 nodes
t0=$(date +%s)
port=$(free_port)
RAY_ARGS=(--num-cpus=8 --num-gpus=1 --object-store-memory=150000000 --disable-usage-stats --block)
setsid timeout 600 ray start --head --port="$port" --node-ip-address=127.0.0.1 --include-dashboard=false \
  --temp-dir="$OUT/rh" "${RAY_ARGS[@]}" > "$OUT/ray_head.log" 2>&1 &
groups+=($!)
python -m qwenlong_verl.ray_cluster --address "127.0.0.1:$port" --nodes 1 --timeout 90 || status=1
setsid timeout 600 ray start --address="127.0.0.1:$port" --node-ip-address=127.0.0.1 --temp-dir="$OUT/rw" \
  "${RAY_ARGS[@]}" > "$OUT/ray_worker.log" 2>&1 &
groups+=($!)
python -m qwenlong_verl.ray_cluster --address "127.0.0.1:$port" --nodes 2 --timeout 90 || status=1
if [ $status = 0 ]; then
  log "Ray: 2 nodes up at 127.0.0.1:$port; pipeline data + phase1 (world size 2)"
  timeout 480 qwenlong-verl pipeline --workdir "$OUT/pipeline" --skip sft --skip phase2 --skip eval --skip report \
    --ray-address "127.0.0.1:$port" --nnodes 2 --nproc-per-node 1 --phase1-steps 1 --max-response-length 16 \
    --no-judge --demo-pretrain-steps 0 --demo-train-rows 16 --demo-eval-rows 4 \
    --rl-override data.train_batch_size=4 --rl-override actor_rollout_ref.rollout.n=4 \
    --rl-override actor_rollout_ref.actor.ppo_mini_batch_size=4 --rl-override algorithm.filter_groups.enable=false \
    --rl-override actor_rollout_ref.rollout.agent.num_workers=1 --rl-override reward.num_workers=1 \
    > "$OUT/pipeline.log" 2>&1 || { status=1; log "Ray: pipeline FAILED"; tail -n 40 "$OUT/pipeline.log"; }
fi
for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
sleep 2; for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
groups=()
echo "$(( $(date +%s) - t0 ))" > "$OUT/ray_wall_s"
log "Ray job: $(cat "$OUT/ray_wall_s") s (status $status)"

# ---------------------------------------------------------------------------------------------- 2. SLURM
t0=$(date +%s)
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing slurm-wlm and munge"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q --no-install-recommends slurm-wlm munge \
      > "$OUT/apt.log" 2>&1 || { apt-get update -q > /dev/null 2>&1; DEBIAN_FRONTEND=noninteractive timeout 300 \
      apt-get install -y -q --no-install-recommends slurm-wlm munge >> "$OUT/apt.log" 2>&1; }
  fi
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  log "SLURM: SKIPPED - slurm-wlm/munge not installed and not installable here (need root and apt; see $OUT/apt.log)"
  touch "$OUT/slurm_skipped"
elif ! QWENLONG_SLURM_LIFETIME_S=700 bash .ci/slurm_cluster.sh start "$OUT/slurm" > "$OUT/slurm_start.log" 2>&1; then
  log "SLURM: cluster did not start"; cat "$OUT/slurm_start.log"; status=1
else
  # shellcheck disable=SC1091
  source "$OUT/slurm/env"
  data=$(python - "$OUT/pipeline/data/DONE" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
print(f"data.train_files={o['train']} data.val_files={o['val']} actor_rollout_ref.model.path={o['model']}")
PY
  ) || { log "SLURM: no data from the pipeline's data stage"; status=1; data=""; }
  if [ -n "$data" ]; then
    common=(+recipe=qwenlong_phase1 +qwenlong_env=cpu +qwenlong_sweep=slurm $data trainer.total_training_steps=1
            data.train_batch_size=4 actor_rollout_ref.rollout.n=4 algorithm.filter_groups.enable=false
            data.max_response_length=16 actor_rollout_ref.rollout.agent.num_workers=1 reward.num_workers=1
            hydra.launcher.timeout_min=8)
    log "SLURM: 2-point sweep of 2-node jobs, and a sweep whose job fails"
    mkdir -p "$OUT/sweeps" && cd "$OUT/sweeps"
    # submitit polls `sacct` first; accounting is off here (no slurmdbd), so it falls back to squeue and logs
    # "Bypassing sacct error" on every poll: filtered out, said once here.
    echo "engines: SLURM accounting is off: submitit's 'Bypassing sacct error' lines are filtered (harmless)"
    SACCT_NOISE='Bypassing sacct error\|Slurm accounting storage is disabled'
    ( timeout 420 python -m verl.trainer.main_ppo -m "${common[@]}" hydra.sweep.dir="$OUT/sweep" \
        trainer.nnodes=2 actor_rollout_ref.actor.optim.lr=1e-6,2e-6 2>&1 | grep -v "$SACCT_NOISE" > "$OUT/sweep.log" ) &
    sweep_pid=$!
    ( timeout 420 python -m verl.trainer.main_ppo -m "${common[@]}" hydra.sweep.dir="$OUT/sweep_fail" \
        qwenlong.curriculum.phase=3 2>&1 | grep -v "$SACCT_NOISE" > "$OUT/sweep_fail.log" ) &
    fail_pid=$!
    wait "$sweep_pid" "$fail_pid"
    cd "$ROOT"
    qwenlong-verl sweep-report "$OUT/sweep" > "$OUT/sweep_report.log" 2>&1 || status=1
    qwenlong-verl sweep-report "$OUT/sweep_fail" > "$OUT/sweep_fail_report.log" 2>&1 || status=1
    cat "$OUT/sweep/sweep_report.md" 2>/dev/null
  fi
  bash .ci/slurm_cluster.sh stop "$OUT/slurm"
fi
echo "$(( $(date +%s) - t0 ))" > "$OUT/slurm_wall_s"
log "SLURM job: $(cat "$OUT/slurm_wall_s") s"

# ---------------------------------------------------------------------------------------------- 3. checks
pytest -q -m engines -p no:cacheprovider tests/test_engines.py || status=1
log "engines: $(( $(date +%s) - t_all )) s in all, outputs in $OUT (status $status)"
exit $status
