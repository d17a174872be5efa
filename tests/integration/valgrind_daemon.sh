#!/usr/bin/env bash
# A raftstored node under valgrind memcheck, in a live three-node cluster:
# writes, reads, a watch, status and metrics, then SIGTERM.  It must exit 0
# with no memory errors and no leaks (tests/valgrind.supp holds only c-raft's
# own bootstrap padding).  Its snapshots come every 1,024 entries with 64
# kept behind, so the writes take it through several: the image encoded and
# freed, and c-raft's compacted entries freed on a worker (c-raft guard 15,
# which its metric must show).  Skipped (exit 77) in sanitizer builds and when
# valgrind is missing.
set -u
b=${top_builddir:-build}
src=${top_srcdir:-.}
if ! command -v valgrind >/dev/null; then echo "valgrind not installed"; exit 77; fi
if ldd "$b/raftstored" | grep -q libasan || nm "$b/raftstored" 2>/dev/null | grep -q __asan_init; then
	echo "sanitizer build: valgrind cannot run it"; exit 77
fi
dir=$(mktemp -d /tmp/rs-valgrind-XXXXXX)
pids=()
cleanup() {
	for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
read -r -a p <<<"$(python3 "$src/tests/integration/ports.py" 7)"
ic="1=127.0.0.1:${p[0]}/127.0.0.1:${p[1]},2=127.0.0.1:${p[2]}/127.0.0.1:${p[3]},3=127.0.0.1:${p[4]}/127.0.0.1:${p[5]}"
ep="127.0.0.1:${p[1]},127.0.0.1:${p[3]},127.0.0.1:${p[5]}"
valgrind --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --error-exitcode=9 \
	--suppressions="$src/tests/valgrind.supp" --log-file="$dir/vg.log" \
	"$b/raftstored" --id 1 --data-dir "$dir/n1" --initial-cluster "$ic" \
	--metrics-addr "127.0.0.1:${p[6]}" --snapshot-threshold 1024 \
	--snapshot-trailing 64 >"$dir/n1.log" 2>&1 &
vg=$!
pids+=($vg)
for i in 2 3; do
	"$b/raftstored" --id $i --data-dir "$dir/n$i" --initial-cluster "$ic" >"$dir/n$i.log" 2>&1 &
	pids+=($!)
done
for _ in $(seq 300); do "$b/rsctl" status --endpoints "$ep" >/dev/null 2>&1 && break; sleep 0.1; done
fail=0
"$b/rsbench" cluster --endpoints "$ep" --op put --clients 8 --duration 3 >/dev/null || fail=1
"$b/rsbench" cluster --endpoints "127.0.0.1:${p[1]}" --op sget --clients 4 --duration 2 >/dev/null || fail=1
timeout 20 "$b/rsctl" watch --prefix vg/ --count 1 --endpoints "127.0.0.1:${p[1]}" >/dev/null &
w=$!
sleep 1
"$b/rsctl" put vg/key value --endpoints "$ep" >/dev/null || fail=1
wait $w || fail=1
"$b/rsctl" status --endpoints "$ep" >/dev/null || fail=1
deferred=$(python3 -c "import urllib.request; print(*[l.split()[1] for l in urllib.request.urlopen('http://127.0.0.1:${p[6]}/metrics').read().decode().splitlines() if l.startswith('raftstore_raft_frees_deferred_total ')])") || fail=1
if ! [ "${deferred:-0}" -gt 0 ] 2>/dev/null; then
	echo "valgrind_daemon: no compacted entries freed on a worker (raftstore_raft_frees_deferred_total=${deferred:-missing})"
	fail=1
fi
kill -TERM "$vg"
wait "$vg"
rc=$?
if [ $rc -ne 0 ] || [ $fail -ne 0 ]; then
	echo "valgrind_daemon: exit $rc, workload failures $fail"
	tail -40 "$dir/vg.log"
	tail -5 "$dir/n1.log"
	echo "0 passed, 1 failed"
	exit 1
fi
grep -E "ERROR SUMMARY|definitely|All heap" "$dir/vg.log"
echo "1 passed, 0 failed"
