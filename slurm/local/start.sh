#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine, for trying the job scripts and for the test
# suite (tests/slurm/). Needs root and Debian's slurm-wlm and munge (`make slurm-deps`).
#
#   slurm/local/start.sh DIR      # prints `export SLURM_CONF=DIR/slurm.conf`
#   slurm/local/stop.sh DIR
#
# Everything lives in DIR: slurm.conf, a fresh munge key and socket, state, spool, logs and the
# daemons' pid files; nothing is written to /etc or /run. No systemd: munged (as the munge
# user), slurmctld and slurmd daemonise themselves and stop.sh ends them by these pid files.
# The node line comes from `slurmd -C`, so CPUs and memory are this machine's. MpiDefault is
# `none` on purpose: a script that forgets `--mpi=pmi2` starts N singletons, which hpcfit
# detects (exit 2), so the tests prove the scripts ask for PMI2 themselves.
# Ports: SLURM_LOCAL_CTLD_PORT / SLURM_LOCAL_D_PORT, else two free ports.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "$0: needs root to start slurmd" >&2; exit 2; }
for bin in munged slurmctld slurmd sinfo; do
    command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] || {
        echo "$0: $bin not found (install: apt-get install slurm-wlm munge)" >&2; exit 2; }
done
PATH=/usr/sbin:$PATH
mkdir -p "$1"
dir=$(cd "$1" && pwd)
conf=$dir/slurm.conf
marker="# hpcfit local test cluster (written by slurm/local/start.sh)"
if [[ -e $conf && $(head -n 1 "$conf") != "$marker" ]]; then
    echo "$0: $conf was not written by this script; not overwriting it" >&2; exit 2
fi
timeout_s=${SLURM_LOCAL_TIMEOUT:-60}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}
ctld_port=${SLURM_LOCAL_CTLD_PORT:-$(free_port)}
d_port=${SLURM_LOCAL_D_PORT:-$(free_port)}
host=$(hostname -s)
getent hosts "$host" >/dev/null || { echo "$0: hostname $host does not resolve (/etc/hosts)" >&2; exit 2; }
nodeline=$(slurmd -C | head -n 1)   # NodeName=<host> CPUs=… Boards=… … RealMemory=…

# munge: its own key and socket; munged insists on private directories owned by its user.
chmod 755 "$dir"
mkdir -p "$dir/munge" "$dir/ctld" "$dir/d" "$dir/log"
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$dir/munge"
chmod 755 "$dir/munge"      # the socket must be reachable by every user
chmod 400 "$dir/munge/munge.key"
socket=$dir/munge/munge.socket

cat > "$conf" <<CONF
$marker
ClusterName=hpcfit-local
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
KillWait=5
$nodeline State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf

runuser -u munge -- munged --socket="$socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
    --seed-file="$dir/munge/munged.seed"
slurmctld -i -f "$conf"       # -i: ignore saved state, a fresh cluster every time
slurmd -f "$conf"

deadline=$((SECONDS + timeout_s))
until [[ $(sinfo -h -o '%T' 2>/dev/null) == idle ]]; do
    if ((SECONDS >= deadline)); then
        echo "$0: the node did not become idle within ${timeout_s} s" >&2
        sinfo -N -l >&2 || true
        for log in "$dir"/log/*.log "$dir"/munge/munged.log; do
            [[ -e $log ]] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
        done
        exit 1
    fi
    sleep 0.25
done
echo "export SLURM_CONF=$conf"
