#!/usr/bin/env bash
# A throw-away SLURM cluster on this machine, for CI: munged + slurmctld + two slurmd (node entries n1, n2, both
# this host, each its own port), every file in one folder, every daemon in the foreground under `timeout` so it
# dies on its own at the latest after QWENLONG_SLURM_LIFETIME_S. Root only (slurmd runs jobs as their users).
#   .ci/slurm_cluster.sh start DIR   -> DIR/slurm.conf, DIR/env (source it: SLURM_CONF), DIR/pids
#   .ci/slurm_cluster.sh stop DIR    -> kills exactly the PIDs in DIR/pids
# Accounting is off (no slurmdbd): submitit's `sacct` polls fail and it falls back to squeue/scontrol, which it
# logs as "Bypassing sacct error" on every poll; engines.sh filters that one line out.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?folder}
lifetime=${QWENLONG_SLURM_LIFETIME_S:-900}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stop() {
  [ -f "$dir/pids" ] || return 0
  # jobs first: slurmstepd daemonizes, so a job still running (a sweep past its timeout) would outlive slurmd
  if SLURM_CONF="$dir/slurm.conf" squeue -h -o %i 2>/dev/null | grep -q .; then
    SLURM_CONF="$dir/slurm.conf" scancel --full -u "$(id -un)" 2>/dev/null || true
    for _ in $(seq 15); do
      SLURM_CONF="$dir/slurm.conf" squeue -h -o %i 2>/dev/null | grep -q . || break
      sleep 1
    done
  fi
  while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; fi
  done < "$dir/pids"
  sleep 1
  while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
  done < "$dir/pids"
  rm -f "$dir/pids"
}

start() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null || { echo "slurm-wlm/munge not installed" >&2; return 2; }
  mkdir -p "$dir"/{state,spool-n1,spool-n2,munge}
  chmod 700 "$dir/munge"
  : > "$dir/pids"
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  local host cpus mem ctl p1 p2
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 4 ))  # MB per node entry: a quarter each
  ctl=$(free_port); p1=$(free_port); p2=$(free_port)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=qlci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=600
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$p1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$p2 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  echo "export SLURM_CONF=$dir/slurm.conf" > "$dir/env"
  export SLURM_CONF=$dir/slurm.conf
  setsid timeout "$lifetime" munged -F --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
    > "$dir/munge/stdout.log" 2>&1 &
  echo "$! munged" >> "$dir/pids"
  for _ in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
  setsid timeout "$lifetime" slurmctld -D -i > "$dir/slurmctld.stdout" 2>&1 &
  echo "$! slurmctld" >> "$dir/pids"
  for n in n1 n2; do
    setsid timeout "$lifetime" slurmd -D -N "$n" > "$dir/slurmd-$n.stdout" 2>&1 &
    echo "$! slurmd-$n" >> "$dir/pids"
  done
  for _ in $(seq 60); do
    if sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | wc -l | grep -qx 2; then
      sinfo -N; return 0
    fi
    sleep 1
  done
  echo "SLURM did not come up; logs in $dir" >&2
  tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd-n1.log 2>/dev/null >&2 || true
  return 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
