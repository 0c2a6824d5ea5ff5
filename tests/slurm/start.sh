#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster on 127.0.0.1 (munged, slurmctld, slurmd).
#   tests/slurm/start.sh SCRATCH   -> writes SCRATCH/slurm.conf, logs, state and SCRATCH/pids
# Installs Debian's slurm-wlm and munge when missing (needs root and the Debian mirror).
# Exit 3: the packages cannot be installed here (the caller skips with that reason).
set -euo pipefail
scratch=$(realpath -m "$1")
mkdir -p "$scratch"/{state,spool,log,run,munge}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! command -v sbatch >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "slurm-wlm/munge missing and cannot be installed (not root or no apt-get)" >&2; exit 3
  fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge) \
    > "$scratch/log/apt.log" 2>&1 || { echo "apt-get install of slurm-wlm/munge failed, see $scratch/log/apt.log" >&2; exit 3; }
fi

# munge: a fresh key and socket in the scratch folder
key="$scratch/munge/munge.key"
dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
chmod 400 "$key"
munged --force --key-file="$key" --socket="$scratch/munge/munge.socket" \
  --pid-file="$scratch/run/munged.pid" --log-file="$scratch/log/munged.log" --seed-file="$scratch/munge/seed"
# slurm's auth/munge plugin talks to the default socket path
mkdir -p /run/munge
ln -sf "$scratch/munge/munge.socket" /run/munge/munge.socket.2

node=$(hostname -s)
cpus=$(nproc)
mem=$(( $(free -m | awk '/^Mem:/{print $2}') * 3 / 4 ))
cat > "$scratch/slurm.conf" <<CONF
ClusterName=bnnprobe-test
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$scratch/state
SlurmdSpoolDir=$scratch/spool
SlurmctldPidFile=$scratch/run/slurmctld.pid
SlurmdPidFile=$scratch/run/slurmd.pid
SlurmctldLogFile=$scratch/log/slurmctld.log
SlurmdLogFile=$scratch/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
ReturnToService=2
SchedulerType=sched/backfill
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
# The jobstep plugin clears SLURM_* variables (SLURM_CONF too): the config must be at /etc/slurm.
mkdir -p /etc/slurm
if [ -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
  echo "/etc/slurm/slurm.conf exists and is not ours; refusing to replace it" >&2; exit 3
fi
ln -sf "$scratch/slurm.conf" /etc/slurm/slurm.conf

slurmctld -f "$scratch/slurm.conf"
slurmd -f "$scratch/slurm.conf"
for _ in $(seq 60); do
  if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "slurm up: $(sinfo -h -o '%P %t %c CPUs %m MB')"
    exit 0
  fi
  sleep 0.5
done
echo "slurmd did not become idle; logs in $scratch/log" >&2
sinfo >&2 || true
exit 1
