#!/usr/bin/env bash
# Benchmark raftstore and etcd 3.4 side by side, in one run, on loopback.
#
#   scripts/bench-vs-etcd.sh [--duration S] [--quick] [--mem-keys N]
#
# Both systems run as fresh three-node clusters with fsync on, one after the
# other, under the same closed-loop load: puts (16-byte distinct keys,
# 256-byte values), linearizable gets and serializable gets, with 1 and 64
# clients (64 clients share 8 connections).  raftstore is driven by
# `rsbench cluster` (its client library), etcd by tools/etcdbench (its
# native Go gRPC client).  Memory: server RSS of the three nodes summed
# after loading N keys (default 1,000,000) into a fresh cluster.
#
# Order: raftstore's throughput runs, etcd's, then raftstore's memory load
# and etcd's, each part started once the disk is quiet
# (scripts/wait-disk-quiet.py): a 1M-key load's deleted data is trimmed
# under whatever runs next on a file system mounted with `discard`, so
# neither system's throughput runs follow a memory load.
#
# Prints every RESULT line, then a table of raftstore / etcd ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
duration=10
mem_keys=1000000
quick=0
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration="$2"; shift 2 ;;
	--quick) quick=1; shift ;;
	--mem-keys) mem_keys="$2"; shift 2 ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "bench-vs-etcd: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ "$quick" = 1 ]; then
	duration=3
	[ "$mem_keys" = 1000000 ] && mem_keys=100000
fi

. "$here/bench-lib.sh"
bench_deps "$root"
bench_build "$root"
work=$(mktemp -d /tmp/bench-vs-etcd.XXXXXX)
# etcd's load generator, built once for both calls of bench-etcd.sh.
if [ -z "${ETCDBENCH:-}" ]; then
	bench_etcdbench "$root" "$work/etcdbench"
	export ETCDBENCH="$work/etcdbench"
fi
results="$work/results"
pids=()
cleanup() {
	for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== raftstore: $(nproc) cores, ${duration}s per run" >&2
mkdir -p "$work/rs"
wait_disk_quiet "$root" "$work" "bench-vs-etcd (raftstore throughput)"
start_raftstore "$work/rs"
for run in "put 1" "put 64" "get 1" "get 64" "sget 64"; do
	set -- $run
	"$bin/rsbench" cluster --endpoints "$ENDPOINTS" --op "$1" --clients "$2" \
		--conns $(($2 < 8 ? $2 : 8)) --duration "$duration" | tee -a "$results"
done
stop_raftstore
rm -rf "$work/rs"

echo "== etcd" >&2
wait_disk_quiet "$root" "$work" "bench-vs-etcd (etcd throughput)"
"$here/bench-etcd.sh" --duration "$duration" --part throughput | tee -a "$results"

echo "== memory: raftstore, then etcd" >&2
mkdir -p "$work/rsmem"
wait_disk_quiet "$root" "$work" "bench-vs-etcd (raftstore memory)"
start_raftstore "$work/rsmem"
"$bin/rsbench" cluster --endpoints "$ENDPOINTS" --op put --clients 64 --conns 8 \
	--count "$mem_keys" --prefix m >/dev/null
sleep 1
echo "RESULT system=raftstore op=mem keys=$mem_keys server_rss_kib=$(rss_kib "${RS_PIDS[@]}")" | tee -a "$results"
stop_raftstore
rm -rf "$work/rsmem"
wait_disk_quiet "$root" "$work" "bench-vs-etcd (etcd memory)"
"$here/bench-etcd.sh" --mem-keys "$mem_keys" --part mem | tee -a "$results"

python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    key = (kv["op"], kv.get("clients", ""))
    rows.setdefault(key, {})[kv["system"]] = kv
print()
print("%-6s %-7s | %-28s | %-28s | %s" % ("op", "clients", "raftstore ops/s (p50/p99 ms)",
                                          "etcd ops/s (p50/p99 ms)", "ratio"))
for key in [("put", "1"), ("put", "64"), ("get", "1"), ("get", "64"), ("sget", "64")]:
    r = rows.get(key, {})
    a, b = r.get("raftstore"), r.get("etcd")
    fmt = lambda x: "%8.0f (%.2f/%.2f)" % (float(x["ops_per_s"]), float(x["p50_ms"]), float(x["p99_ms"])) if x else "-"
    ratio = "%.2fx" % (float(a["ops_per_s"]) / float(b["ops_per_s"])) if a and b else "-"
    print("%-6s %-7s | %-28s | %-28s | %s" % (key[0], key[1], fmt(a), fmt(b), ratio))
m = rows.get(("mem", ""), {})
if "raftstore" in m and "etcd" in m:
    a, b = int(m["raftstore"]["server_rss_kib"]), int(m["etcd"]["server_rss_kib"])
    print("memory after %s keys: raftstore %.0f MiB, etcd %.0f MiB (%.2fx)" % (
        m["raftstore"]["keys"], a / 1024, b / 1024, a / b))
PY
