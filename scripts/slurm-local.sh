#!/usr/bin/env bash
# A single-node Slurm on this machine, for tests and CI: munged + slurmctld + slurmd.
#
#   scripts/slurm-local.sh install   # apt-get install slurm-wlm munge (root)
#   scripts/slurm-local.sh start     # write the config, start the daemons, wait for the node
#   scripts/slurm-local.sh stop      # stop the daemons this script started (by pid file)
#   eval "$(scripts/slurm-local.sh env)"   # SLURM_CONF for sbatch/squeue/sacct and submitit
#
# The node offers 2 stand-in GPUs (gres.conf points at /dev/tty0 and /dev/tty1), so
# `--gpus-per-node` is scheduled for real and jobs see CUDA_VISIBLE_DEVICES 0 or 1.
# Everything lives under $VLMHB_SLURM_DIR (default /tmp/vlmhb-slurm); nothing in /etc changes.
set -euo pipefail

DIR="${VLMHB_SLURM_DIR:-/tmp/vlmhb-slurm}"
CONF="$DIR/etc/slurm.conf"
NODE="$(hostname -s)"
CPUS="${VLMHB_SLURM_CPUS:-8}"

write_config() {
  mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/munge"
  chmod 700 "$DIR/munge"
  cat >"$CONF" <<EOF
ClusterName=vlmhb-local
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=${VLMHB_SLURMCTLD_PORT:-6817}
SlurmdPort=${VLMHB_SLURMD_PORT:-6818}
MinJobAge=600
InactiveLimit=0
KillWait=5
NodeName=$NODE CPUs=$CPUS Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$DIR/etc/gres.conf" <<EOF
NodeName=$NODE Name=gpu File=/dev/tty[0-1]
EOF
  # Slurm looks for gres.conf beside slurm.conf; cgroup.conf is not needed without cgroups.
}

start() {
  command -v slurmctld >/dev/null || { echo "slurm-wlm is not installed ($0 install)" >&2; exit 2; }
  write_config
  export SLURM_CONF="$CONF"
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge
  if ! munge -n >/dev/null 2>&1 </dev/null; then
    munged --force --pid-file="$DIR/run/munged.pid" \
      --socket=/run/munge/munge.socket.2 --log-file="$DIR/log/munged.log"
  fi
  slurmctld -i -f "$CONF"
  slurmd -f "$CONF"
  for _ in $(seq 1 60); do
    state="$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)"
    case "$state" in
      idle*|mix*|alloc*) echo "slurm: node $NODE is $state"; return 0 ;;
      drain*|down*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  echo "slurm: node $NODE did not come up; see $DIR/log" >&2
  tail -n 5 "$DIR"/log/*.log >&2 || true
  exit 1
}

stop_pid() {
  local file="$1"
  [ -f "$file" ] || return 0
  local pid
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$file"
}

stop() {
  stop_pid "$DIR/run/slurmd.pid"
  stop_pid "$DIR/run/slurmctld.pid"
  stop_pid "$DIR/run/munged.pid"
  echo "slurm: stopped"
}

case "${1:-}" in
  install) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null ;;
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
