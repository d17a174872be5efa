#!/usr/bin/env bash
# Watch fan-out and idle connections: raftstore and etcd 3.4 side by side,
# in one run, on loopback (issue 13, section 4).
#
#   scripts/bench-watch.sh [--quick] [--duration S] [--watchers "W1 W2 ..."]
#                          [--events N] [--idle N] [--clients N]
#                          [--etcd-conn-per-watcher-max W]
#
# Watch, for each W (default 1000 and 10000), each run on fresh three-node
# clusters with fsync on: W watchers on one prefix and one writer putting
# at R = N / W per second (--events, default 100,000 events offered per
# second: R = 100/s for 1,000 watchers, 10/s for 10,000) for S seconds
# (default 10).  Every watcher checks it saw each write once, in order.
#   raftstore  conns=1  W client-library watches on the library's one
#                       pooled connection (mode=library; before WATCH_CANCEL
#                       the library gave each watch a connection)
#   raftstore  conns=1  all W watches on one raw protocol connection
#                       (mode=raw)
#   etcd       conns=1  all W watches on one clientv3.Client: one gRPC
#                       stream, etcd's own default
#   etcd       conns=W  one clientv3.Client per watcher (what raftstore's
#                       library did before WATCH_CANCEL), up to W =
#                       --etcd-conn-per-watcher-max
#                       (default 1000: 10,000 Go clients in one process
#                       measure mostly the client)
# Writer and watchers are one process (rsbench watch, etcdbench --op watch)
# on the same machine as the servers, so the client's own work is in the
# latencies of both systems alike.
#
# Idle connections: put with --clients closed-loop clients (default 64 on 8
# connections) for S seconds on a fresh cluster, then again on another
# fresh cluster with --idle N connections (default 5000) opened to the
# leader first and held through the run.  The servers' RSS (three nodes
# summed) is read before and after they open: memory per idle connection.
#
# --quick: W = 100 and 1000, 2 s runs, 20,000 events/s, 500 idle
# connections (a smoke test, not figures).
#
# Prints every RESULT line, then two tables.  Raises the open-files limit
# (10,000 watchers are 10,000 sockets on each side of loopback).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
duration=10
watchers="1000 10000"
events=100000
idle=5000
clients=64
etcd_cpw_max=1000
quick=0
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration="$2"; shift 2 ;;
	--watchers) watchers="$2"; shift 2 ;;
	--events) events="$2"; shift 2 ;;
	--idle) idle="$2"; shift 2 ;;
	--clients) clients="$2"; shift 2 ;;
	--etcd-conn-per-watcher-max) etcd_cpw_max="$2"; shift 2 ;;
	--quick) quick=1; shift ;;
	-h|--help) sed -n '2,36p' "$0"; exit 0 ;;
	*) echo "bench-watch: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ "$quick" = 1 ]; then
	duration=2 watchers="100 1000" events=20000 idle=500
fi

. "$here/bench-lib.sh"
bench_deps "$root"
bench_build "$root"
work=$(mktemp -d /tmp/bench-watch.XXXXXX)
results="$work/results"
pids=()
etcd_dirs=()
cleanup() {
	local d
	for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
	for d in ${etcd_dirs[@]+"${etcd_dirs[@]}"}; do "$here/etcd-cluster.sh" stop "$d" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
note() { echo "bench-watch: $*" >&2; }

etcdbench="$work/bin/etcdbench"
bench_etcdbench "$root" "$etcdbench"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
max_w=0
for w in $watchers; do [ "$w" -gt "$max_w" ] && max_w=$w; done
max_conns=$((max_w > idle ? max_w : idle))
max_conns=$((max_conns + 1000))
note "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), open files $(ulimit -n), ${duration}s runs"

n=0
rs_fresh() { n=$((n + 1)); start_raftstore "$work/rs$n" --max-client-connections "$max_conns"; }
etcd_fresh() { # sets EPS and ETCD_PIDS
	local dir
	n=$((n + 1))
	dir="$work/etcd$n"
	etcd_dirs+=("$dir")
	EPS=$("$here/etcd-cluster.sh" start "$dir" "$(pick_etcd_base)")
	ETCD_PIDS=$(cat "$dir"/etcd[123].pid | paste -sd,)
	ETCD_DIR=$dir
}
etcd_stop() { "$here/etcd-cluster.sh" stop "$ETCD_DIR"; }
pidlist() { local IFS=,; echo "$*"; }

# A failed check (exit 1 with a RESULT line) is reported in the table;
# the run goes on.
for w in $watchers; do
	rate=$(python3 -c "print(max(1, round($events / $w, 3)))")
	note "watch: $w watchers, $rate puts/s"
	rs_fresh
	"$bin/rsbench" watch --endpoints "$ENDPOINTS" --watchers "$w" --rate "$rate" \
		--duration "$duration" --server-pids "$(pidlist "${RS_PIDS[@]}")" | tee -a "$results" || true
	stop_raftstore
	rs_fresh
	"$bin/rsbench" watch --endpoints "$ENDPOINTS" --watchers "$w" --rate "$rate" \
		--duration "$duration" --conns 1 --server-pids "$(pidlist "${RS_PIDS[@]}")" | tee -a "$results" || true
	stop_raftstore
	conns_list=1
	[ "$w" -le "$etcd_cpw_max" ] && conns_list="1 $w"
	for c in $conns_list; do
		etcd_fresh
		"$etcdbench" --endpoints "$EPS" --op watch --watchers "$w" --rate "$rate" \
			--duration "$duration" --conns "$c" --server-pids "$ETCD_PIDS" | tee -a "$results" || true
		etcd_stop
	done
done

note "idle connections: put, $clients clients, without and with $idle idle connections"
for i in 0 "$idle"; do
	rs_fresh
	"$bin/rsbench" cluster --endpoints "$ENDPOINTS" --op put --clients "$clients" \
		--conns $((clients < 8 ? clients : 8)) --duration "$duration" --idle "$i" \
		--server-pids "$(pidlist "${RS_PIDS[@]}")" | tee -a "$results"
	stop_raftstore
	etcd_fresh
	"$etcdbench" --endpoints "$EPS" --op put --clients "$clients" --duration "$duration" \
		--idle "$i" --server-pids "$ETCD_PIDS" | tee -a "$results"
	etcd_stop
done

python3 - "$results" <<'PY'
import sys
watch, idle = [], {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    if kv["op"] == "watch":
        watch.append(kv)
    elif "idle" in kv:
        idle[(kv["system"], kv["idle"])] = kv
print()
print("%-9s %-7s %6s %6s %5s | %9s %8s %8s %8s | %7s | %13s | %s" % (
    "system", "mode", "W", "conns", "put/s", "events/s", "p50 ms", "p99 ms",
    "p999 ms", "KiB/W", "CPU s srv/cli", "lost/reord/dup/wrong/ended"))
for r in watch:
    print("%-9s %-7s %6s %6s %5s | %9s %8s %8s %8s | %7s | %6s/%-6s | %s/%s/%s/%s/%s" % (
        r["system"], r.get("mode", ""), r["watchers"], r["conns"], r["rate"], r["events_per_s"],
        r["p50_ms"], r["p99_ms"], r["p999_ms"], r["kib_per_watcher"],
        r["server_cpu_s"], r["client_cpu_s"], r["lost"],
        r["reordered"], r["duplicated"], r["mismatched"], r["ended"]))
print()
print("%-9s %6s | %9s %8s %8s | %14s %14s %10s" % (
    "system", "idle", "put/s", "p50 ms", "p99 ms", "RSS idle MiB", "RSS after MiB",
    "KiB/conn"))
for (system, n), r in sorted(idle.items()):
    print("%-9s %6s | %9.0f %8s %8s | %14.1f %14.1f %10s" % (
        system, n, float(r["ops_per_s"]), r["p50_ms"], r["p99_ms"],
        int(r["idle_rss_kib"]) / 1024, int(r["server_rss_kib"]) / 1024,
        r["kib_per_idle_conn"]))
PY
