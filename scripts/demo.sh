#!/usr/bin/env bash
# The README's first command: install what is missing, build, start a local
# three-node cluster and show it working with rsctl.  The cluster keeps
# running afterwards; stop it with `scripts/cluster.sh stop`.
#   --stop      stop the cluster (and remove its data) at the end
#   --nodes N   start N nodes (1..7, default 3; 5 tolerates two failures)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
echo "building (this takes a minute the first time)..."
"$root/scripts/build.sh"
bin="$root/build"
dir=/tmp/raftstore-cluster
stop_at_end=false
export RS_NODES=3
while [ $# -gt 0 ]; do
	case "$1" in
	--stop) stop_at_end=true ;;
	--nodes) RS_NODES=${2:?--nodes needs N}; shift ;;
	*) echo "demo.sh: unknown argument '$1' (--stop, --nodes N)" >&2; exit 2 ;;
	esac
	shift
done
RSCTL_ENDPOINTS=""
for i in $(seq "$RS_NODES"); do RSCTL_ENDPOINTS="$RSCTL_ENDPOINTS${RSCTL_ENDPOINTS:+,}127.0.0.1:$((7100 + i))"; done
export RSCTL_ENDPOINTS

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

if $stop_at_end; then trap '"$root/scripts/cluster.sh" stop "$dir"; rm -rf "$dir"' EXIT; fi
"$root/scripts/cluster.sh" stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
run "$root/scripts/cluster.sh" start "$dir"
run "$bin/rsctl" status
run "$bin/rsctl" put config/db/host db1.internal
run "$bin/rsctl" put config/db/port 5432
say "rsctl get config/db/host --endpoints 127.0.0.1:$((7100 + RS_NODES))   # through another node"
"$bin/rsctl" get config/db/host --endpoints "127.0.0.1:$((7100 + RS_NODES))"
run "$bin/rsctl" range config/ --prefix
run "$bin/rsctl" txn --if-value config/db/port=5432 --put config/db/port=6432
run "$bin/rsctl" get config/db/port --json
run "$bin/rsctl" members list
leader=$("$bin/rsctl" status --json | python3 -c 'import json,sys; print(next(n["id"] for n in json.load(sys.stdin) if n and n.get("role")=="leader"))')
say "kill -9 the leader (node $leader), then write and read again"
pid=$(cat "$dir/n$leader.pid")
kill -9 "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done # gone, ports closed
run "$bin/rsctl" put config/after-failover yes
run "$bin/rsctl" get config/db/host
say "restart node $leader: it rejoins and catches up"
"$root/scripts/cluster.sh" start "$dir" | tail -n 1
sleep 1.5 # a heartbeat or two for node $leader to catch up
run "$bin/rsctl" status
say "rsctl log verify $dir/n1/store   # read-only check of a live node's files"
"$bin/rsctl" log verify "$dir/n1/store" || true
if ! $stop_at_end; then
	echo
	echo "The cluster is still running: RSCTL_ENDPOINTS=$RSCTL_ENDPOINTS $bin/rsctl --help"
	echo "Stop it with: scripts/cluster.sh stop"
fi
