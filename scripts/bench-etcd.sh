#!/usr/bin/env bash
# Benchmark a local three-member etcd 3.4 cluster with tools/etcdbench, for
# comparison with raftstore on the same machine.
#
#   scripts/bench-etcd.sh [--duration S] [--quick] [--route leader|all] [--mem-keys N]
#                         [--part all|throughput|mem]
#
#   --duration S   seconds per throughput run (default 10)
#   --quick        2-second runs and 100,000 keys for the memory figure
#   --route R      leader (default): etcdbench finds the leader and sends every
#                  request to it (as raftstore's client does);
#                  all: clientv3 gets all three endpoints and round-robins
#                  requests over them (followers forward writes to the leader)
#   --mem-keys N   keys loaded for the memory figure (default 1,000,000)
#   --part P       all (default), or only the throughput runs, or only the
#                  memory figure (bench-vs-etcd.sh runs both systems'
#                  throughput before either memory load)
#
# Prints RESULT lines on stdout (progress and notes go to stderr):
#   RESULT system=etcd op=put|get|sget clients=N ops=... secs=... ops_per_s=...
#          p50_ms=... p99_ms=... p999_ms=... client_cpu_s=... errors=...
#   RESULT system=etcd op=mem keys=N server_rss_kib=<VmRSS of the 3 members summed>
# The memory figure is taken on a second, fresh cluster after loading N keys
# (16-byte keys, 256-byte values) with 64 clients.
#
# Needs: apt-get install golang-go golang-etcd-server-dev etcd-server etcd-client
# ETCDBENCH=/path/to/etcdbench skips the build.  Every cluster it starts is
# stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cluster="$here/etcd-cluster.sh"
. "$here/bench-lib.sh" # bench_etcdbench, pick_etcd_base

duration=10
mem_keys=1000000
route=leader
quick=0
part=all
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --duration=*) duration="${1#*=}"; shift ;;
    --quick) quick=1; shift ;;
    --route) route="$2"; shift 2 ;;
    --route=*) route="${1#*=}"; shift ;;
    --mem-keys) mem_keys="$2"; shift 2 ;;
    --mem-keys=*) mem_keys="${1#*=}"; shift ;;
    --part) part="$2"; shift 2 ;;
    --part=*) part="${1#*=}"; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "bench-etcd: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$part" in
all|throughput|mem) ;;
*) echo "bench-etcd: --part must be all, throughput or mem, not '$part'" >&2; exit 2 ;;
esac
if [ "$quick" = 1 ]; then
    duration=2
    [ "$mem_keys" = 1000000 ] && mem_keys=100000
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-etcd.XXXXXX")
clusters=()
child=
cleanup() {
    local rc=$? d
    trap - EXIT INT TERM
    if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi
    for d in ${clusters[@]+"${clusters[@]}"}; do
        "$cluster" stop "$d" || true
    done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note() { echo "bench-etcd: $*" >&2; }

# --- build ---------------------------------------------------------------
if [ -n "${ETCDBENCH:-}" ]; then
    bench="$ETCDBENCH"
else
    bench="$work/bin/etcdbench"
    mkdir -p "$work/bin"
    note "building etcdbench"
    bench_etcdbench "$root" "$bench"
fi

start_cluster() { # DIR -> sets $eps (not in a subshell: the EXIT trap needs $clusters)
    local dir="$1" base
    base=$(pick_etcd_base)
    clusters+=("$dir")
    "$cluster" start "$dir" "$base" >"$work/eps.$$"
    eps=$(cat "$work/eps.$$")
}

# bench ARGS...: run etcdbench in the background and wait for it, so that a
# signal to this script runs the cleanup at once (and stops etcdbench too).
bench() {
    local rc=0
    "$bench" "$@" &
    child=$!
    wait "$child" || rc=$?
    child=
    return "$rc"
}

run() { # OP CLIENTS [extra etcdbench flags...]
    local op="$1" c="$2"
    shift 2
    note "op=$op clients=$c duration=${duration}s"
    bench --endpoints "$eps" --route "$route" --op "$op" --clients "$c" --duration "$duration" "$@"
}

note "etcd $(etcd --version 2>/dev/null | awk '/^etcd Version/ {print $3}'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), route=$route"

# --- throughput ----------------------------------------------------------
if [ "$part" != mem ]; then
    start_cluster "$work/c1"
    note "cluster 1 up: $eps"
    run put 1
    run put 64
    run get 1
    run get 64
    run sget 64
    "$cluster" stop "$work/c1"
fi
[ "$part" = throughput ] && exit 0

# --- memory --------------------------------------------------------------
start_cluster "$work/c2"
note "cluster 2 up: $eps; idle RSS $("$cluster" rss "$work/c2") KiB; loading $mem_keys keys with 64 clients"
bench --endpoints "$eps" --route "$route" --op put --clients 64 --count "$mem_keys" --prefix m >"$work/load.out"
load=$(cat "$work/load.out")
note "load: $load"
case "$load" in *" errors=0"*) ;; *) note "WARNING: errors while loading; not every key is stored" ;; esac
sleep 1
rss=$("$cluster" rss "$work/c2")
anon=0
for n in 1 2 3; do
    kib=$(awk '/^RssAnon:/ {print $2}' "/proc/$(cat "$work/c2/etcd$n.pid")/status")
    anon=$((anon + kib))
done
note "of which anonymous (heap) RSS: $anon KiB; data dirs: $(du -sk "$work/c2" | cut -f1) KiB on disk"
echo "RESULT system=etcd op=mem keys=$mem_keys server_rss_kib=$rss"
