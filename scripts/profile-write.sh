#!/usr/bin/env bash
# Where one write's CPU goes: the CPU cost of a put on each node and on the
# client, and (with perf) the functions it is spent in.
#
#   scripts/profile-write.sh [--duration S] [--clients N] [--no-perf]
#
# Starts a fresh three-node raftstore cluster (optimized build, fsync on,
# loopback), runs `rsbench cluster --op put` with N clients (default 64 on
# 8 connections) for S seconds (default 10), and reads each process' user
# and system CPU time from /proc before and after.  Prints per process:
# CPU seconds, CPU microseconds per acknowledged put, and the share of one
# core; then, unless --no-perf, `perf record` of the leader during a
# second run of the same load and the top functions by self time, for the
# leader and a follower.  Every process it starts is killed on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
duration=10
clients=64
use_perf=1
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration="$2"; shift 2 ;;
	--clients) clients="$2"; shift 2 ;;
	--no-perf) use_perf=0; shift ;;
	-h|--help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "profile-write: unknown argument $1" >&2; exit 2 ;;
	esac
done
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
"$root/scripts/deps.sh"
if [ "$use_perf" = 1 ] && ! command -v perf >/dev/null; then
	apt-get install -y -qq linux-perf >/dev/null 2>&1 || use_perf=0
fi
bench_build "$root" >/dev/null
work=$(mktemp -d /tmp/profile-write.XXXXXX)
pids=()
cleanup() {
	for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_raftstore "$work"
endpoints=$ENDPOINTS
leader=$("$bin/rsctl" status --endpoints "$endpoints" --json |
	python3 -c 'import json,sys; print(next(n["id"] for n in json.load(sys.stdin) if n and n.get("role")=="leader"))')

# user+system CPU seconds of a pid
cpu() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
conns=$((clients < 8 ? clients : 8))
declare -A before
for i in 1 2 3; do before[$i]=$(cpu "${pids[$((i - 1))]}"); done
"$bin/rsbench" cluster --endpoints "$endpoints" --op put --clients "$clients" \
	--conns "$conns" --duration "$duration" >"$work/run1" &
bench=$!
pids+=($bench)
# the client's CPU: sample its /proc/stat just before it exits
client_cpu=0
while kill -0 "$bench" 2>/dev/null; do
	c=$(cpu "$bench" 2>/dev/null) && client_cpu=$c
	sleep 0.2
done
wait "$bench"
result=$(grep '^RESULT' "$work/run1")
echo "$result"
ops=$(sed -n 's/.* ops=\([0-9]*\).*/\1/p' <<<"$result")
echo
printf "%-22s %10s %14s %10s\n" "process" "cpu_s" "cpu_us/put" "cores"
for i in 1 2 3; do
	after=$(cpu "${pids[$((i - 1))]}")
	role=follower
	[ "$i" = "$leader" ] && role=leader
	python3 -c "
b, a, ops, d = ${before[$i]}, $after, $ops, $duration
print('%-22s %10.2f %14.1f %10.2f' % ('node $i ($role)', a - b, (a - b) * 1e6 / ops, (a - b) / d))"
done
python3 -c "
c,ops,d=$client_cpu,$ops,$duration
print('%-22s %10.2f %14.1f %10.2f' % ('client (rsbench)', c, c*1e6/ops, c/d))"

if [ "$use_perf" = 1 ]; then
	follower=$((leader % 3 + 1))
	echo
	echo "== perf: top functions by self time during a second ${duration}s run"
	perf record -q -F 499 -g -o "$work/leader.data" -p "${pids[$((leader - 1))]}" \
		-- sleep "$duration" >/dev/null 2>&1 &
	rec1=$!
	perf record -q -F 499 -g -o "$work/follower.data" -p "${pids[$((follower - 1))]}" \
		-- sleep "$duration" >/dev/null 2>&1 &
	rec2=$!
	"$bin/rsbench" cluster --endpoints "$endpoints" --op put --clients "$clients" \
		--conns "$conns" --duration "$duration" >/dev/null
	wait "$rec1" "$rec2" || true
	for who in leader follower; do
		echo "-- $who"
		perf report -q -i "$work/$who.data" --no-children -g none --sort dso,symbol \
			--stdio 2>/dev/null | grep "%" | head -20
	done
fi
