#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine (Debian's slurm-wlm and munge), for the
# Slurm test (tests/it/slurm.rs) and for trying `balms slurm` locally. Needs root and apt; does
# nothing when `sinfo` already answers. See README "Beyond one machine: shards, leases and Slurm".
set -euo pipefail
if sinfo -h >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "slurm-local: needs root" >&2; exit 1; fi
command -v slurmctld >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; }
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /run/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 400 /etc/munge/munge.key
host=$(hostname -s)
memory=$(( $(free -m | awk '/Mem:/{print $2}') - 1024 ))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmUser=root
ReturnToService=2
NodeName=$host CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
for _ in $(seq 30); do
    if sinfo -h -o %t 2>/dev/null | grep -q idle; then sinfo; exit 0; fi
    sleep 1
done
echo "slurm-local: the node did not become idle" >&2
sinfo >&2 || true
exit 1
