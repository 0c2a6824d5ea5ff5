#!/usr/bin/env bash
# Stop what tests/slurm/start.sh started, by PID: slurmd, slurmctld, then munged.
scratch=$(realpath -m "$1")
for name in slurmd slurmctld munged; do
  pidfile="$scratch/run/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
done
[ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$scratch/slurm.conf" ] && rm -f /etc/slurm/slurm.conf
[ -L /run/munge/munge.socket.2 ] && rm -f /run/munge/munge.socket.2
exit 0
