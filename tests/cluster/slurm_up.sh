#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, with accounting, for the cluster tests (tests/cluster/,
# docs/slurm.md).
#
#   tests/cluster/slurm_up.sh            bring it up (idempotent); prints SLURM_CONF=<file> on stdout
#   tests/cluster/slurm_up.sh --status   exit 0 if it is up (its node answers sinfo), else 1
#   tests/cluster/slurm_up.sh --down     cancel its jobs, stop the daemons it started (by their pid files)
#
# Needs a Debian machine and root: installs slurmctld, slurmd, slurmdbd, slurm-client, munge and
# mariadb-server with apt-get where they are missing. Everything else lives in one state folder
# ($REPRODUCE_SLURM_DIR, default /tmp/reproduce-slurm): slurm.conf, slurmdbd.conf, its own munge key and socket,
# its own database, the daemons' pid files, logs, state and spool. No system file is written and no system
# daemon is touched. The node is this machine (`hostname -s`) with the CPUs and memory slurmd finds; one
# partition, `debug`. Accounting (slurmdbd) is there because submitit follows its jobs with sacct, as on
# any real cluster. Exit status 3: a cluster cannot be brought up here (not root, no apt-get, the packages
# cannot be installed); the reason is the last line on stderr.
set -euo pipefail

DIR=${REPRODUCE_SLURM_DIR:-/tmp/reproduce-slurm}
CONF=$DIR/slurm.conf
DB_PORT=${REPRODUCE_SLURM_DB_PORT:-16819}  # the private MariaDB, on 127.0.0.1 only
PACKAGES=(slurmctld slurmd slurmdbd slurm-client munge mariadb-server)
export SLURM_CONF=$CONF  # also where slurmdbd finds slurmdbd.conf (beside it)

say() { echo "slurm_up: $*" >&2; }
cannot() { say "cannot bring a Slurm cluster up here: $*"; exit 3; }
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_state() { sinfo -h -N -o %T 2>/dev/null; }
wait_for() {  # wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds
    local s=$1 what=$2; shift 2
    for _ in $(seq $((s * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    say "$what not ready in $s s (logs in $DIR)"; return 1
}

stop() {  # the daemon whose pid file is $1, if it is running
    alive "$1" || return 0
    local pid; pid=$(cat "$1")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }; sleep 0.2; done
    say "pid $pid ($1) did not stop in 20 s"; return 1
}

down() {
    if alive "$DIR/slurmctld.pid"; then  # the jobs of this cluster first, so that no job outlives its slurmd
        scancel --quiet --partition=debug 2>/dev/null || true
        for _ in $(seq 60); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.5; done
    fi
    for d in slurmd slurmctld slurmdbd mariadb munged; do stop "$DIR/$d.pid"; done
    say "stopped (state and logs kept in $DIR)"
}

install() {
    local missing=()
    for c in slurmctld slurmd slurmdbd sbatch sacct munged mariadbd mariadb-install-db; do
        command -v "$c" >/dev/null || missing+=("$c")
    done
    (( ${#missing[@]} == 0 )) && return 0
    command -v apt-get >/dev/null || cannot "${missing[*]} missing and no apt-get"
    say "installing ${PACKAGES[*]} (a minute or two)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } \
        >"$DIR/apt.log" 2>&1 || cannot "apt-get could not install ${PACKAGES[*]} (see $DIR/apt.log)"
}

write_conf() {
    local host node; host=$(hostname -s)
    # slurmd -C: "NodeName=<host> CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=.."
    node=$(slurmd -C | head -1)
    cat >"$CONF" <<EOF
# Written by tests/cluster/slurm_up.sh: a single-node cluster for the cluster tests.
ClusterName=reproduce
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePass=$DIR/munge.socket
MpiDefault=none
ReturnToService=2
# a cancelled or requeued job gets SIGKILL 2 s after SIGTERM (submitit's jobs ignore SIGTERM); finished jobs stay visible to scontrol for an hour
KillWait=2
MinJobAge=3600
# a job that asks for no memory gets 1 GB per CPU, not the whole node
DefMemPerCPU=1024
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    (umask 077; cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
)
}

start_munged() {
    alive "$DIR/munged.pid" && return 0
    [[ -f $DIR/munge.key ]] || (umask 077; dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none)
    munged --force --key-file="$DIR/munge.key" --socket="$DIR/munge.socket" --pid-file="$DIR/munged.pid" \
        --log-file="$DIR/munged.log" --seed-file="$DIR/munged.seed"
}

start_db() {  # a private MariaDB for slurmdbd: data, socket and pid file in the state folder
    alive "$DIR/mariadb.pid" && return 0
    local sql=(mariadb --no-defaults --socket="$DIR/mariadb.sock" -u root)
    if [[ ! -d $DIR/mariadb/mysql ]]; then
        mariadb-install-db --no-defaults --user=root --datadir="$DIR/mariadb" --skip-test-db \
            --auth-root-authentication-method=socket >"$DIR/mariadb-install.log" 2>&1
    fi
    setsid mariadbd --no-defaults --user=root --datadir="$DIR/mariadb" --socket="$DIR/mariadb.sock" \
        --pid-file="$DIR/mariadb.pid" --bind-address=127.0.0.1 --port="$DB_PORT" --log-error="$DIR/mariadb.log" \
        --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB "${sql[@]}" -e "select 1"
    "${sql[@]}" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
                    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
                    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

up() {
    if [[ $(id -u) != 0 ]]; then node_state | grep -qx idle && { echo "SLURM_CONF=$CONF"; exit 0; }; cannot "not root"; fi
    mkdir -p "$DIR/state" "$DIR/spool"
    chmod 755 "$DIR"  # clients reach the munge socket in it; the munge key and slurmdbd.conf are 0600
    install
    alive "$DIR/slurmctld.pid" || write_conf
    start_munged
    start_db
    alive "$DIR/slurmdbd.pid" || slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 60); do
        if node_state | grep -qx idle && sacct -n -X -j 1 >/dev/null 2>&1; then
            say "node $(hostname -s) idle"; echo "SLURM_CONF=$CONF"; return 0
        fi
        # a node left down or drained by an earlier session: back to service
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    say "the node did not become idle in 60 s; sinfo says: $(sinfo -N 2>&1 | tail -1); logs in $DIR"
    exit 1
}

case "${1:-}" in
    "") up ;;
    --down) down ;;
    --status) node_state | grep -qE "^(idle|mixed|allocated)$" ;;
    *) say "usage: $0 [--down | --status]"; exit 2 ;;
esac
