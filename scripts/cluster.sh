#!/usr/bin/env bash
# Run a local three-node raftstore cluster for development.
#
#   scripts/cluster.sh start [DIR]   start nodes 1-3 (data in DIR, default
#                                    /tmp/raftstore-cluster) and wait until
#                                    a leader serves requests
#   scripts/cluster.sh stop  [DIR]   SIGTERM the nodes started there (by PID)
#   scripts/cluster.sh status [DIR]  rsctl status
#
# Ports: Raft 127.0.0.1:7001-7003, clients 127.0.0.1:7101-7103 (rsctl's
# default endpoints).  Override the base with RS_PORT_BASE (default 7000).
# Binaries come from build/ (run scripts/build.sh first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${RS_BIN:-$root/build}
cmd=${1:-}
dir=${2:-/tmp/raftstore-cluster}
base=${RS_PORT_BASE:-7000}
endpoints="127.0.0.1:$((base + 101)),127.0.0.1:$((base + 102)),127.0.0.1:$((base + 103))"
ic=""
for i in 1 2 3; do
	ic="$ic${ic:+,}$i=127.0.0.1:$((base + i))/127.0.0.1:$((base + 100 + i))"
done

start() {
	mkdir -p "$dir"
	for i in 1 2 3; do
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
	for i in 1 2 3; do
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
*) sed -n '2,13p' "$0"; exit 2 ;;
esac
