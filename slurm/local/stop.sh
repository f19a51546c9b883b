#!/usr/bin/env bash
# Stop the cluster that slurm/local/start.sh DIR started: cancel its jobs, then end slurmd,
# slurmctld and munged by the pid files in DIR (never by process name). Safe to run twice.
set -uo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(cd "$1" && pwd) || exit 0
PATH=/usr/sbin:$PATH
export SLURM_CONF=$dir/slurm.conf

if [[ -s $dir/slurmctld.pid ]] && kill -0 "$(<"$dir/slurmctld.pid")" 2>/dev/null; then
    timeout 10 scancel --quiet --user=root 2>/dev/null || true
    for _ in $(seq 40); do
        [[ -z $(timeout 5 squeue -h -t running,completing -o %i 2>/dev/null) ]] && break
        sleep 0.25
    done
fi

# stop pid (name): TERM, wait up to 10 s, then KILL; only if the pid still runs that program
stop() {
    local file=$1 name=$2 pid
    [[ -s $file ]] || return 0
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    grep -qa "$name" "/proc/$pid/cmdline" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
}
stop "$dir/slurmd.pid" slurmd
stop "$dir/slurmctld.pid" slurmctld
stop "$dir/munge/munged.pid" munged
exit 0
