#!/usr/bin/env bash
# test_chaos.sh: a short tools/chaos run with a fixed seed, on real
# raftstored processes and the real rschaos workload and checker.
#
#   * one run of 40 s with, in this order, a kill-leader, a stop-leader, a
#     partition-leader (as root, in network namespaces; without root the
#     tool says "partitions skipped" and runs the others) and a restart,
#     then the final full restart, rschaos final and every check: it must
#     exit 0 with "verdict: PASS", and its outputs must be there (history,
#     events with each fault, node logs, a well-formed timeline.svg);
#   * the kill-leader-during-install scenario (when raftstored has the
#     fault hooks): a follower that installs a snapshot while its leader
#     dies holds its candidacy until the install is done (c-raft guard 22);
#   * `tools/chaos check HISTORY` on that history exits 0;
#   * a usage error exits 2 and creates nothing;
#   * a run stopped by SIGTERM in the middle of a partition exits 2 and
#     leaves no raftstored process, namespace or mount behind.
#
# Skipped (exit 77) only when raftstored, rsctl or rschaos is not built.
# Run by `make check`, or by hand from the top of the build tree:
# tests/integration/test_chaos.sh (RS_KEEP_TMP=1 keeps the run's files).

set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

for b in raftstored rsctl rschaos; do
	if [ ! -x "$top_builddir/$b" ]; then
		echo "test_chaos: $top_builddir/$b is not built: skipped"
		exit 77
	fi
done
rs_init test_chaos
command -v python3 >/dev/null || die "python3 is required"
CHAOS=$top_srcdir/tools/chaos
[ -f "$CHAOS" ] || die "$CHAOS is missing"
BIN=$(cd "$top_builddir" && pwd)
SEED=20261206

# No process, namespace or mount of a run (data under $1) may be left.
leftovers() {
	local dir=$1 tag=$2 left=""
	if pgrep -f -- "--data-dir $dir/" >/dev/null; then
		left="$left processes:$(pgrep -f -- "--data-dir $dir/" | tr '\n' ' ')"
	fi
	if [ -n "$tag" ] && command -v ip >/dev/null &&
		ip netns list 2>/dev/null | grep -q "^${tag}n"; then
		left="$left namespaces:$(ip netns list | grep "^${tag}n" | tr '\n' ' ')"
	fi
	if grep -q " $dir/" /proc/mounts; then
		left="$left mounts"
	fi
	echo "$left"
}

# Check that the run in $1 (its summary names its bridge) left nothing.
check_nothing_left() {
	local run=$1 label=$2 tag left
	tag=$(grep -m1 -o 'bridge rsc[0-9]*br' "$run/summary.txt" | sed 's/bridge \(rsc[0-9]*\)br/\1/')
	left=$(leftovers "$run/data" "$tag")
	check "$label${left:+ ($left)}" test -z "$left"
}

# Pass `label` if a run exited `want` (got `rc`), else fail it and show the
# tail of the run's output file.
expect_exit() {
	local want=$1 rc=$2 label=$3 out=$4
	if [ "$rc" -eq "$want" ]; then
		pass "$label"
	else
		fail "$label" "got exit $rc"
		tail -n 20 "$out" | sed 's/^/     | /'
	fi
}

# ---- the run
RUN=$RS_TMP/run
start=$(date +%s)
python3 "$CHAOS" run --bin "$BIN" --out "$RUN" --seed $SEED --duration 40 \
	--faults kill-leader,stop-leader,partition-leader,restart --order given \
	--fault-time 1:3 --gap 1:2 --snapshot-threshold 8192 \
	>"$RS_TMP/run.out" 2>&1
rc=$?
took=$(($(date +%s) - start))
echo "     | chaos run took ${took}s, exit $rc"
if [ "$rc" -eq 0 ]; then
	pass "chaos run (seed $SEED) exits 0"
else
	fail "chaos run (seed $SEED) exits 0" "got exit $rc"
	sed -n '/^chaos run: seed/,$s/^/     | /p' "$RS_TMP/run.out"
	tail -n 15 "$RUN/chaos.log" 2>/dev/null | sed 's/^/     | /'
fi
check "summary says PASS" grep -q '^verdict: PASS' "$RUN/summary.txt"
for f in history.ndjson events.ndjson summary.txt timeline.svg chaos.log \
	n1.log n2.log n3.log; do
	check "output $f" test -s "$RUN/$f"
done
faults=(kill-leader stop-leader restart)
if grep -q 'partitions skipped' "$RS_TMP/run.out"; then
	echo "     | $(grep -m1 -o 'partitions skipped: [^(]*' "$RS_TMP/run.out")"
else
	faults+=(partition-leader)
fi
for f in "${faults[@]}"; do
	check "events.ndjson records a $f" \
		grep -q "\"kind\": \"fault\", .*\"fault\": \"$f\"" "$RUN/events.ndjson"
done
check "events.ndjson has leader/epoch samples" \
	grep -q '"kind": "sample", .*"role": "leader"' "$RUN/events.ndjson"
check "timeline.svg is well-formed XML" python3 -c '
import sys, xml.dom.minidom
d = xml.dom.minidom.parse(sys.argv[1])
assert d.documentElement.tagName == "svg"
assert len(d.getElementsByTagName("rect")) > 20' "$RUN/timeline.svg"
for c in linearizability epochs layouts replicas "node crashes" journals; do
	check "check '$c' passed" grep -Eq "^  $c +ok" "$RUN/summary.txt"
done
check_nothing_left "$RUN" "nothing left behind by the run"

# ---- a follower's election timer runs out while it installs a snapshot
# (c-raft guard 22); the scenario needs the fault hooks
if "$BIN/raftstored" --version | grep -q 'fault hooks: compiled in'; then
	RUN3=$RS_TMP/run3
	python3 "$CHAOS" run --bin "$BIN" --out "$RUN3" --seed $((SEED + 2)) \
		--duration 30 --scenario kill-leader-during-install \
		>"$RS_TMP/run3.out" 2>&1
	expect_exit 0 $? "kill-leader-during-install exits 0" "$RS_TMP/run3.out"
	check "kill-leader-during-install: the follower held its candidacy" \
		grep -Eq '^  scenario +ok .*held its candidacy [1-9]' "$RUN3/summary.txt"
	check_nothing_left "$RUN3" "kill-leader-during-install: nothing left behind"
else
	echo "     | kill-leader-during-install skipped: raftstored built without --enable-fault-hooks"
fi

# ---- the checker alone
assert_exit 0 python3 "$CHAOS" check "$RUN/history.ndjson" --bin "$BIN"

# ---- usage errors
assert_exit 2 python3 "$CHAOS" run --bin "$BIN" --faults no-such-fault --out "$RS_TMP/bad"
check "a usage error creates no output" test ! -e "$RS_TMP/bad"
assert_exit 2 python3 "$CHAOS" frobnicate

# ---- SIGTERM in the middle of a fault: everything is cleaned up
RUN2=$RS_TMP/run2
python3 "$CHAOS" run --bin "$BIN" --out "$RUN2" --seed $((SEED + 1)) --duration 30 \
	--faults partition-leader,kill-leader --order given --fault-time 8:8 --gap 0.5:0.5 \
	>"$RS_TMP/run2.out" 2>&1 &
pid=$!
rs_on_exit "kill -KILL $pid 2>/dev/null"
for _ in $(seq 300); do
	grep -q 'fault #1 .* begins' "$RS_TMP/run2.out" && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
sleep 1
kill -TERM $pid
wait $pid
expect_exit 2 $? "SIGTERM during a fault: exit 2" "$RS_TMP/run2.out"
check "SIGTERM: summary says INTERRUPTED" grep -q '^verdict: INTERRUPTED' "$RUN2/summary.txt"
check_nothing_left "$RUN2" "SIGTERM: nothing left behind"

rs_finish
