#!/usr/bin/env bash
# Run a local raftstore cluster (three nodes, or RS_NODES=1..7) for
# development.
#
#   scripts/cluster.sh start [DIR]   start nodes 1-N (data in DIR, default
#                                    /tmp/raftstore-cluster) and wait until
#                                    a leader serves requests
#   scripts/cluster.sh stop  [DIR]   SIGTERM the nodes started there (by PID)
#   scripts/cluster.sh status [DIR]  rsctl status
#
# Ports: Raft 127.0.0.1:7001-700N, clients 127.0.0.1:7101-710N (rsctl's
# default endpoints are the first three).  Override the base with
# RS_PORT_BASE (default 7000).  stop and status find the nodes by the PID
# files in DIR, whatever RS_NODES says.
# Binaries come from build/ (run scripts/build.sh first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${RS_BIN:-$root/build}
cmd=${1:-}
dir=${2:-/tmp/raftstore-cluster}
base=${RS_PORT_BASE:-7000}
nodes=${RS_NODES:-3}
case "$nodes" in
[1-7]) ;;
*) echo "cluster.sh: RS_NODES=$nodes: expected 1..7" >&2; exit 2 ;;
esac
endpoints="" ic=""
for i in $(seq "$nodes"); do
	endpoints="$endpoints${endpoints:+,}127.0.0.1:$((base + 100 + i))"
	ic="$ic${ic:+,}$i=127.0.0.1:$((base + i))/127.0.0.1:$((base + 100 + i))"
done

start() {
	mkdir -p "$dir"
	for i in $(seq "$nodes"); do
		if [ -f "$dir/n$i.pid" ] && kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
			echo "node $i already running (pid $(cat "$dir/n$i.pid"))"
			continue
		fi
		"$bin/raftstored" --id "$i" --data-dir "$dir/n$i" --initial-cluster "$ic" \
			>>"$dir/n$i.log" 2>&1 &
		echo $! >"$dir/n$i.pid"
		echo "node $i: pid $!, client 127.0.0.1:$((base + 100 + i)), log $dir/n$i.log"
	done
	for _ in $(seq 150); do
		if "$bin/rsctl" status --endpoints "$endpoints" >/dev/null 2>&1; then
			echo "cluster ready: --endpoints $endpoints"
			return 0
		fi
		sleep 0.1
	done
	echo "cluster.sh: no leader after 15 s; see $dir/n*.log" >&2
	return 1
}

stop() {
	local i pid
	for i in 1 2 3 4 5 6 7; do
		[ -f "$dir/n$i.pid" ] || continue
		pid=$(cat "$dir/n$i.pid")
		if kill -TERM "$pid" 2>/dev/null; then
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
			echo "node $i (pid $pid) stopped"
		fi
		rm -f "$dir/n$i.pid"
	done
}

case "$cmd" in
start) start ;;
stop) stop ;;
status) "$bin/rsctl" status --endpoints "$endpoints" ;;
*) sed -n '2,15p' "$0"; exit 2 ;;
esac
