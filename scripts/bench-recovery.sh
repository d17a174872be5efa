#!/usr/bin/env bash
# Recovery-time benchmark, raftstore against etcd 3.4, on loopback.
# Installs what it needs (etcd included), builds the optimized binaries in
# build-bench/, then runs
# scripts/bench-recovery.py (see its header for what is measured).
#
#   scripts/bench-recovery.sh [--rounds N]
#       [--only leader,start,follower,etcd,etcd-follower] ...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
# raftstore's build dependencies and etcd (the etcd scenario needs etcd
# and etcdctl), installed if missing.
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
bench_deps "$root"
if ! BUILD_DIR="$build" CONFIGURE_FLAGS=--disable-debug "$root/scripts/build.sh"; then
	# Only raftstored is needed here; do not let an unrelated target stop the run.
	echo "bench-recovery: the full build failed; building raftstored alone" >&2
	make -C "$build" -j"$(nproc)" raftstored >/dev/null
fi
# The etcd follower scenario's load generator (Go, offline from Debian's
# packages, which bench_deps installed).
bench_etcdbench "$root" "$build/etcdbench"
exec python3 "$root/scripts/bench-recovery.py" --build-dir "$build" "$@"
