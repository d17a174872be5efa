# shellcheck shell=bash
# What the benchmark scripts (bench-vs-etcd.sh, bench-etcd.sh,
# bench-watch.sh) share: the packages they need, the optimised build,
# free ports, raftstore clusters on loopback and the servers' memory.
# Source it; it defines functions and nothing runs.
#
#   bench_deps ROOT            install raftstore's and etcd's packages if missing
#   bench_build ROOT           optimised build in ROOT/build-bench; sets $bin
#   bench_etcdbench ROOT OUT   build tools/etcdbench as OUT (offline, Debian's Go)
#   free_ports N               N free loopback ports
#   pick_etcd_base             a base port for etcd-cluster.sh (base..+2, +10..+12 free)
#   start_raftstore DIR [raftstored args...]
#                              a fresh 3-node cluster; sets ENDPOINTS and RS_PIDS,
#                              appends the PIDs to the caller's pids array
#   stop_raftstore             SIGTERM the cluster started last, and wait
#   rss_kib PID...             summed VmRSS of the processes, KiB
#   wait_disk_quiet ROOT DIR LABEL
#                              wait (up to 60 s) until fdatasync in DIR stalls no
#                              more than 20 ms, so one run's deleted data is not
#                              trimmed under the next (scripts/wait-disk-quiet.py)

bench_deps() {
	local p need=0
	"$1/scripts/deps.sh"
	for p in golang-go golang-etcd-server-dev etcd-server etcd-client; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need=1
	done
	if [ "$need" = 1 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go \
				golang-etcd-server-dev etcd-server etcd-client >/dev/null
	fi
}

# An optimised build of its own (the test build is -O0 for debugging).
bench_build() {
	BUILD_DIR="$1/build-bench" CONFIGURE_FLAGS="--disable-debug" "$1/scripts/build.sh"
	bin="$1/build-bench"
}

bench_etcdbench() {
	mkdir -p "$(dirname "$2")"
	(cd "$1/tools/etcdbench" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o "$2" .)
}

# Below the ephemeral range, so no outgoing connection takes one meanwhile
# (tests/integration/ports.py).
free_ports() { python3 "$(dirname "${BASH_SOURCE[0]}")/../tests/integration/ports.py" "$1"; }

port_in_use() { # PORT
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

pick_etcd_base() {
	local base p ok
	for base in $(seq 23790 100 33790); do
		ok=1
		for p in $base $((base + 1)) $((base + 2)) $((base + 10)) $((base + 11)) $((base + 12)); do
			if port_in_use "$p"; then ok=0; break; fi
		done
		[ "$ok" = 1 ] && { echo "$base"; return 0; }
	done
	echo "bench: no free base port found for etcd" >&2
	return 1
}

start_raftstore() {
	local dir=$1 ports ic i
	shift
	mkdir -p "$dir"
	read -r -a ports <<<"$(free_ports 6)"
	ic="1=127.0.0.1:${ports[0]}/127.0.0.1:${ports[1]},2=127.0.0.1:${ports[2]}/127.0.0.1:${ports[3]},3=127.0.0.1:${ports[4]}/127.0.0.1:${ports[5]}"
	ENDPOINTS="127.0.0.1:${ports[1]},127.0.0.1:${ports[3]},127.0.0.1:${ports[5]}"
	RS_PIDS=()
	for i in 1 2 3; do
		"$bin/raftstored" --id $i --data-dir "$dir/n$i" --initial-cluster "$ic" \
			--log-level warn "$@" >"$dir/n$i.log" 2>&1 &
		pids+=($!)
		RS_PIDS+=($!)
	done
	for _ in $(seq 100); do
		"$bin/rsctl" status --endpoints "$ENDPOINTS" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "bench: raftstore cluster in $dir did not start" >&2
	exit 1
}

stop_raftstore() { kill -TERM "${RS_PIDS[@]}" 2>/dev/null || true; wait "${RS_PIDS[@]}" 2>/dev/null || true; }

rss_kib() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done; echo $t; }

wait_disk_quiet() { python3 "$1/scripts/wait-disk-quiet.py" "$2" --label "$3"; }
