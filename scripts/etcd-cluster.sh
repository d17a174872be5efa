#!/usr/bin/env bash
# Start/stop a local three-member etcd cluster (etcd 3.4, Debian's etcd-server)
# on 127.0.0.1, for benchmarking raftstore against etcd.
#
#   scripts/etcd-cluster.sh start DIR BASEPORT   fresh cluster; client ports
#                                                BASEPORT..+2, peer ports
#                                                BASEPORT+10..+12; prints endpoints
#   scripts/etcd-cluster.sh stop DIR             SIGTERM the members by DIR/etcdN.pid,
#                                                SIGKILL after 5 s
#   scripts/etcd-cluster.sh rss DIR              summed VmRSS (KiB) of the members
#
# Data dirs are DIR/etcdN.data, logs DIR/etcdN.log, PIDs DIR/etcdN.pid (N=1..3).
# Default etcd settings (fsync on). Needs: apt-get install etcd-server etcd-client
set -euo pipefail

ETCD=${ETCD:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-30}

usage() {
    echo "usage: $0 start DIR BASEPORT | stop DIR | rss DIR" >&2
    exit 2
}

endpoints() { # BASEPORT
    echo "127.0.0.1:$1,127.0.0.1:$(($1 + 1)),127.0.0.1:$(($1 + 2))"
}

# pid_of DIR N: print the PID from DIR/etcdN.pid if that process is alive and
# is an etcd started with our data dir (guards against PID reuse).
pid_of() {
    local f="$1/etcd$2.pid" pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -d "/proc/$pid" ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--data-dir $1/etcd$2.data" || return 1
    echo "$pid"
}

# alive PID: the process exists and is not a zombie
alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

cmd_stop() {
    local dir="$1" n pid pids=() t
    [ -d "$dir" ] || { echo "etcd-cluster: no such dir $dir" >&2; return 0; }
    dir=$(cd "$dir" && pwd)
    for n in 1 2 3; do
        if pid=$(pid_of "$dir" "$n"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for t in $(seq 50); do
        local alive=0
        for pid in ${pids[@]+"${pids[@]}"}; do
            alive "$pid" && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in ${pids[@]+"${pids[@]}"}; do
        if alive "$pid"; then
            echo "etcd-cluster: pid $pid still running 5 s after SIGTERM (a stopping etcd leader waits to hand over leadership), sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for n in 1 2 3; do rm -f "$dir/etcd$n.pid"; done
}

cmd_rss() {
    local dir n pid kib sum=0
    dir=$(cd "$1" && pwd)
    for n in 1 2 3; do
        pid=$(pid_of "$dir" "$n") || { echo "etcd-cluster: member $n not running" >&2; return 1; }
        kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        sum=$((sum + kib))
    done
    echo "$sum"
}

cmd_start() {
    local dir="$1" base="$2" n cport pport cluster="" pid
    [[ "$base" =~ ^[0-9]+$ ]] || usage
    command -v "$ETCD" >/dev/null || { echo "etcd-cluster: $ETCD not found (apt-get install etcd-server)" >&2; return 1; }
    command -v "$ETCDCTL" >/dev/null || { echo "etcd-cluster: $ETCDCTL not found (apt-get install etcd-client)" >&2; return 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    for n in 1 2 3; do
        if pid=$(pid_of "$dir" "$n"); then
            echo "etcd-cluster: member $n already running (pid $pid) in $dir" >&2
            return 1
        fi
    done
    local p
    for p in $base $((base + 1)) $((base + 2)) $((base + 10)) $((base + 11)) $((base + 12)); do
        if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
            echo "etcd-cluster: port $p is already in use" >&2
            return 1
        fi
    done
    for n in 1 2 3; do
        cluster+="${cluster:+,}etcd$n=http://127.0.0.1:$((base + 9 + n))"
    done
    for n in 1 2 3; do
        cport=$((base + n - 1))
        pport=$((base + 9 + n))
        rm -rf "$dir/etcd$n.data"
        # Each member in its own session so that it outlives this script
        # but is still only ever stopped through its PID file.
        setsid "$ETCD" \
            --name "etcd$n" \
            --data-dir "$dir/etcd$n.data" \
            --listen-client-urls "http://127.0.0.1:$cport" \
            --advertise-client-urls "http://127.0.0.1:$cport" \
            --listen-peer-urls "http://127.0.0.1:$pport" \
            --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "$cluster" \
            --initial-cluster-token "etcdbench-$base" \
            --initial-cluster-state new \
            >"$dir/etcd$n.log" 2>&1 </dev/null &
        echo $! >"$dir/etcd$n.pid"
    done
    local eps deadline
    eps=$(endpoints "$base")
    deadline=$((SECONDS + HEALTH_TIMEOUT))
    while :; do
        if ETCDCTL_API=3 "$ETCDCTL" --endpoints="$eps" --command-timeout=2s endpoint health >/dev/null 2>&1; then
            local ok=1
            for n in 1 2 3; do pid_of "$dir" "$n" >/dev/null || ok=0; done
            [ "$ok" = 1 ] && break
        fi
        for n in 1 2 3; do
            if ! pid_of "$dir" "$n" >/dev/null; then
                echo "etcd-cluster: member $n exited during startup; tail of $dir/etcd$n.log:" >&2
                tail -5 "$dir/etcd$n.log" >&2 || true
                cmd_stop "$dir"
                return 1
            fi
        done
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "etcd-cluster: cluster not healthy after ${HEALTH_TIMEOUT}s (logs in $dir)" >&2
            cmd_stop "$dir"
            return 1
        fi
        sleep 0.3
    done
    echo "$eps"
}

[ $# -ge 2 ] || usage
case "$1" in
start) [ $# -eq 3 ] || usage; cmd_start "$2" "$3" ;;
stop) [ $# -eq 2 ] || usage; cmd_stop "$2" ;;
rss) [ $# -eq 2 ] || usage; cmd_rss "$2" ;;
*) usage ;;
esac
