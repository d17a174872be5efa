#!/usr/bin/env bash
# rsctl_events.sh: `rsctl events` on the audit logs of three nodes, written
# here in the documented format (docs/audit.md, coordinator/audit.h) by a
# small Python writer: the merged order, --json, the filters, usage errors,
# unreadable and torn lines, --follow across appends and a rotation, and
# that no file ever changes.
#
# The scenario (gen below) has node 1 rotated into two files, node 2 with a
# clock that steps back (its own seq order must still hold), and node 3
# whose older files were deleted by retention (seq starts at 10, file 4).
# The expected order is computed independently with heapq.merge, a k-way
# merge of each node's file order by (ts, node, seq).
#
# Needs python3.  Run by `make check`, or by hand from the top of the build
# tree: tests/integration/rsctl_events.sh (RS_KEEP_TMP=1 keeps the files).

set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

rs_init rsctl_events

RSCTL=$top_builddir/rsctl
[ -x "$RSCTL" ] || die "$RSCTL not built"
command -v python3 >/dev/null || die "python3 is required"

DATA=$RS_TMP/data
mkdir -p "$DATA"

# append AUDIT_DIR FILE_NUM NODE SEQ MS EVENT [EXTRA_JSON_OBJECT]
# One line in the documented form: ts, node, seq, event, then the extras.
append() {
	python3 - "$@" <<'EOF'
import datetime, json, os, sys
d, num, node, seq, ms, event = sys.argv[1:7]
extra = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
ms = int(ms)
t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)
line = '{"ts":%s,"node":%d,"seq":%d,"event":%s' % (
    json.dumps(ts), int(node), int(seq), json.dumps(event))
for k, v in extra.items():
    line += "," + json.dumps(k) + ":" + json.dumps(v, separators=(",", ":"))
os.makedirs(d, exist_ok=True)
with open(os.path.join(d, "audit-%08d.ndjson" % int(num)), "a") as f:
    f.write(line + "}\n")
EOF
}

T0=1795323600000 # 2026-11-22T05:00:00.000Z

gen() {
	local a1=$DATA/n1/audit a2=$DATA/n2/audit a3=$DATA/n3/audit
	append "$a1" 1 1 1 $((T0 + 10)) node_start '{"cold":true}'
	append "$a1" 1 1 2 $((T0 + 110)) election_won '{"term":3}'
	append "$a1" 1 1 3 $((T0 + 210)) epoch_allocated '{"epoch":1,"term":3}'
	append "$a1" 2 1 4 $((T0 + 310)) recovery_phase '{"epoch":1,"phase":"recruit","duration_ms":12}'
	append "$a1" 2 1 5 $((T0 + 410)) component_failed '{"epoch":1,"component":"proxy \"x\"","id":2,"reason":"caf\u00e9"}'
	append "$a1" 2 1 6 $((T0 + 510)) director_exit '{"epoch":1,"reason":"component failed"}'
	append "$a2" 1 2 1 $((T0 + 50)) node_start '{"cold":true}'
	append "$a2" 1 2 2 $((T0 + 150)) leader_lost '{"term":3}'
	append "$a2" 1 2 3 $((T0 + 450)) election_won '{"term":4}'
	append "$a2" 1 2 4 $((T0 + 250)) epoch_allocated '{"epoch":2,"term":4}' # clock stepped back
	append "$a2" 1 2 5 $((T0 + 550)) layout_committed '{"epoch":2,"version":77}'
	append "$a3" 4 3 10 $((T0 + 30)) node_start '{"cold":false}'
	append "$a3" 4 3 11 $((T0 + 130)) leader_lost '{"term":3}'
	append "$a3" 4 3 12 $((T0 + 330)) election_won '{"term":5,"nested":{"a":[1,2]}}'
	append "$a3" 4 3 13 $((T0 + 530)) fail_fast '{"reason":"journal: fsync: I/O error"}'
}
gen
mkdir -p "$DATA/empty/audit" "$DATA/plain"
echo "not a dir" >"$DATA/file"

# expected DIR...: "node seq" per event in the merged order.
expected() {
	python3 - "$@" <<'EOF'
import heapq, json, os, sys
streams = []
for d in sys.argv[1:]:
    a = os.path.join(d, "audit") if os.path.isdir(os.path.join(d, "audit")) else d
    evs = []
    for name in sorted(n for n in os.listdir(a) if n.startswith("audit-")):
        for line in open(os.path.join(a, name)):
            e = json.loads(line)
            evs.append((e["ts"], e["node"], e["seq"]))
    streams.append(evs)
for ts, node, seq in heapq.merge(*streams):
    print(node, seq)
EOF
}

# "node seq" of each table row in $RS_OUT (after the header).
table_rows() {
	awk '$1 == "TIME" || /^rsctl:/ { next } { print $2, $3 }' "$RS_OUT"
}

# "node seq" of each NDJSON line in $RS_OUT; fails if one does not parse.
json_rows() {
	python3 - "$RS_OUT" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("rsctl:"):
        continue
    e = json.loads(line)
    assert set(("ts", "node", "seq", "event")) <= set(e), line
    print(e["node"], e["seq"])
EOF
}

same() { # NAME WANT GOT
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1" "want [$(echo "$2" | tr '\n' ' ')] got [$(echo "$3" | tr '\n' ' ')]"
	fi
}

BEFORE=$(tree_digest "$DATA")
N1=$DATA/n1 N2=$DATA/n2 N3=$DATA/n3
ALL=$(expected "$N1" "$N2" "$N3")

# ---- reading ----
assert_exit 0 "$RSCTL" events "$N1" "$N2" "$N3"
assert_out "table header" '^TIME +NODE +SEQ +EVENT +DETAILS$'
same "merged order, node 2's stepped-back clock kept in seq order" \
	"$ALL" "$(table_rows)"
assert_out "details as key=JSON" 'election_won +term=3$'
# Values are written again by jansson, compact and ASCII: escapes as the
# writer spells them (\u00E9, capitals), whatever the file had.
assert_out "string details keep their JSON quoting" \
	'component="proxy \\"x\\"" id=2 reason="caf\\u00E9"'
assert_out "nested details" 'nested=\{"a":\[1,2\]\}'

assert_exit 0 "$RSCTL" events --json "$N1" "$N2" "$N3"
same "--json lines parse, same order" "$ALL" "$(json_rows)"
if python3 - "$RS_OUT" "$DATA" <<'EOF'
import glob, sys
out = sorted(l for l in open(sys.argv[1]) if not l.startswith("rsctl:"))
src = sorted(l for f in glob.glob(sys.argv[2] + "/n*/audit/*.ndjson") for l in open(f))
sys.exit(0 if out == src else 1)
EOF
then pass "--json prints the lines exactly as stored"; else fail "--json prints the lines exactly as stored"; fi

assert_exit 0 "$RSCTL" events "$N3/audit" --json
same "an audit directory as DIR" "$(expected "$N3")" "$(json_rows)"

assert_exit 0 "$RSCTL" events "$N1" "$N2" "$N3" --node 2 --json
same "--node 2" "$(expected "$N2")" "$(json_rows)"
assert_exit 0 "$RSCTL" events "$N1" "$N2" "$N3" --node=1 --node 3 --json
same "--node 1 --node 3" "$(expected "$N1" "$N3")" "$(json_rows)"
assert_exit 0 "$RSCTL" events "$N1" "$N2" "$N3" --since 4 --json
same "--since 4 (per node, inclusive; a subsequence of the whole)" \
	"$(echo "$ALL" | awk '$2 >= 4')" "$(json_rows)"
assert_exit 0 "$RSCTL" events "$N1" "$N2" "$N3" --event election_won
same "--event election_won" \
	"$(printf '1 2\n3 12\n2 3')" "$(table_rows)"
assert_exit 1 "$RSCTL" events "$N1" --event no_such_event
assert_out "no match says so" 'no events found \(matching the filters\)'
assert_exit 1 "$RSCTL" events "$DATA/empty"
assert_out "an empty log says so" 'no events found$'

# ---- usage ----
assert_exit 0 "$RSCTL" events --help
assert_out "help lists exit codes" '^Exit codes:'
assert_out "help says read-only" 'O_RDONLY'
assert_exit 0 "$RSCTL" --help
assert_out "listed in rsctl --help" '^  events '
assert_exit 2 "$RSCTL" events
assert_out "missing DIR" 'missing DIR'
assert_exit 2 "$RSCTL" events "$DATA/nope"
assert_out "missing directory" 'No such file or directory'
assert_exit 2 "$RSCTL" events "$DATA/file"
assert_exit 2 "$RSCTL" events "$DATA/plain"
assert_out "a directory without a log" 'not a node data directory'
assert_exit 2 "$RSCTL" events "$N1" --bogus
assert_exit 2 "$RSCTL" events "$N1" --since abc
assert_exit 2 "$RSCTL" events "$N1" --node -1
assert_exit 2 "$RSCTL" events "$N1" --node
assert_exit 2 "$RSCTL" events "$N1" --event=
assert_exit 2 "$RSCTL" events "$N1" "$DATA/nope" # every DIR is checked

# ---- damaged logs (copies) ----
BAD=$RS_TMP/bad
mkdir -p "$BAD"
cp -r "$N1" "$BAD/corrupt"
sed -i '2s/}$/]/' "$BAD/corrupt/audit/audit-00000001.ndjson"
assert_exit 1 "$RSCTL" events "$BAD/corrupt"
assert_out "a corrupt line is named" \
	'audit-00000001.ndjson: line 2 \(offset [0-9]+\): skipped unreadable line'
same "the other lines are printed" "$(printf '1 1\n1 3\n1 4\n1 5\n1 6')" \
	"$(table_rows)"
assert_out "a gap is noted" 'seq 3 follows 1'

cp -r "$N2" "$BAD/torn"
printf '{"ts":"2026-11-22T05:0' >>"$BAD/torn/audit/audit-00000001.ndjson"
assert_exit 0 "$RSCTL" events "$BAD/torn"
assert_out "a torn last line is only noted" \
	'note: .*audit-00000001.ndjson: incomplete last line at offset [0-9]+ \(22 bytes\)'
same "the complete lines are printed" "$(expected "$N2")" "$(table_rows)"

cp -r "$N1" "$BAD/oldtorn"
printf '{"ts":"2026' >>"$BAD/oldtorn/audit/audit-00000001.ndjson"
assert_exit 1 "$RSCTL" events "$BAD/oldtorn"
assert_out "an incomplete line in a finished file is unreadable" \
	'incomplete line at the end of a finished file'

AFTER=$(tree_digest "$DATA")
same "no file, directory or byte changed" "$BEFORE" "$AFTER"

# ---- --follow ----
F=$RS_TMP/follow
cp -r "$N1" "$F-n1"
cp -r "$N2" "$F-n2"
"$RSCTL" events --follow --json "$F-n1" "$F-n2" >"$F.out" 2>"$F.err" &
FPID=$!
rs_on_exit "kill -KILL $FPID 2>/dev/null"

# wait_lines N: until $F.out has N lines (5 s at most).
wait_lines() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(wc -l <"$F.out")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
check "--follow prints what is there" wait_lines 11
append "$F-n2/audit" 1 2 6 $((T0 + 900)) node_stop '{"reason":"signal"}'
check "--follow picks up an appended line" wait_lines 12
printf '{"ts":"2026-11-22T05:00:01.000Z","node":1,' \
	>>"$F-n1/audit/audit-00000002.ndjson"
sleep 0.6
check "--follow waits for a line's LF" test "$(wc -l <"$F.out")" -eq 12
printf '"seq":7,"event":"half_written"}\n' >>"$F-n1/audit/audit-00000002.ndjson"
check "--follow prints it once whole" wait_lines 13
append "$F-n1/audit" 3 1 8 $((T0 + 1100)) node_stop '{"reason":"rotated"}'
check "--follow follows a rotation" wait_lines 14
kill -INT "$FPID"
for ((i = 0; i < 50; i++)); do
	kill -0 "$FPID" 2>/dev/null || break
	sleep 0.1
done
wait "$FPID"
rc=$?
check "--follow exits 0 on SIGINT" test "$rc" -eq 0
RS_OUT=$F.out
same "--follow output" \
	"$(printf '%s\n2 6\n1 7\n1 8' "$(expected "$N1" "$N2")")" "$(json_rows)"
if [ -s "$F.err" ]; then
	fail "--follow printed no warnings" "$(head -n 3 "$F.err")"
else
	pass "--follow printed no warnings"
fi

rs_finish
