#!/usr/bin/env bash
# rsctl_cluster.sh: rsctl's cluster commands (get, put, del, range, txn,
# watch, status, members) against a real three-node raftstored cluster on
# loopback: outputs, --json outputs (parsed with python3), and exit codes.
#
# The cluster runs in the test's temporary directory on free ports.  Every
# process the test starts is remembered by PID and stopped at exit (SIGTERM,
# then SIGKILL), also when the test fails or is interrupted.
#
# Run by `make check`, or by hand from the top of the build tree:
#     tests/integration/rsctl_cluster.sh
# RS_KEEP_TMP=1 keeps the temporary directory (node logs) for a look.

set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck disable=SC2154 # top_builddir: set by lib.sh

rs_init rsctl_cluster

RSCTL=$top_builddir/rsctl
RAFTSTORED=$top_builddir/raftstored
[ -x "$RSCTL" ] || die "$RSCTL not built"
[ -x "$RAFTSTORED" ] || die "$RAFTSTORED not built"
command -v python3 >/dev/null || die "python3 is required"

OUT=$RS_TMP/.stdout
ERR=$RS_TMP/.stderr

# ---- processes ----

NODE_PIDS=(0 0 0 0) # by node id; 0 = not running
BG_PIDS=()

# stop_pid PID: SIGTERM, up to 5 s to go, then SIGKILL.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# shellcheck disable=SC2317 # called from the exit hook
stop_all() {
	local pid
	for pid in "${BG_PIDS[@]}" "${NODE_PIDS[@]}"; do
		[ "$pid" -gt 0 ] && stop_pid "$pid"
	done
	return 0
}
rs_on_exit stop_all

# Six loopback ports nobody listens on right now: 3 Raft, 3 client.
read -r R1 R2 R3 C1 C2 C3 DEAD < <(python3 "$here/ports.py" 7) ||
	die "cannot pick ports"
CLUSTER="1=127.0.0.1:$R1/127.0.0.1:$C1,2=127.0.0.1:$R2/127.0.0.1:$C2,3=127.0.0.1:$R3/127.0.0.1:$C3"
EPS="127.0.0.1:$C1,127.0.0.1:$C2,127.0.0.1:$C3"
CLIENT_PORTS=(0 "$C1" "$C2" "$C3")

start_node() {
	local id=$1
	"$RAFTSTORED" --id "$id" --data-dir "$RS_TMP/n$id" \
		--initial-cluster "$CLUSTER" --election-timeout-ms 600 \
		--heartbeat-timeout-ms 60 >>"$RS_TMP/n$id.log" 2>&1 &
	NODE_PIDS[id]=$!
}

stop_node() {
	stop_pid "${NODE_PIDS[$1]}"
	NODE_PIDS[$1]=0
}

show_logs() {
	local id
	for id in 1 2 3; do
		echo "---- node $id (last lines) ----"
		tail -n 15 "$RS_TMP/n$id.log" 2>/dev/null
	done
}

# ---- checks ----

# expect CODE NAME CMD...: run CMD with stdout in $OUT and stderr in $ERR
# (both also in $RS_OUT for assert_out) and check its exit status.
expect() {
	local want=$1 name=$2 rc
	shift 2
	"$@" >"$OUT" 2>"$ERR"
	rc=$?
	cat "$OUT" "$ERR" >"$RS_OUT"
	if [ "$rc" -eq "$want" ]; then
		pass "$name"
		return 0
	fi
	fail "$name" "exit $rc, wanted $want"
	_rs_show_out
	return 1
}

# py_check NAME CODE: run python CODE with `out` (stdout of the last
# expect, as bytes), `err` (stderr, as text) and `lines` (out's lines,
# as text); it must not raise.
py_check() {
	local name=$1 code=$2
	if python3 - "$OUT" "$ERR" "$code" >"$RS_TMP/.py" 2>&1 <<'EOF'; then
import json, sys
out = open(sys.argv[1], "rb").read()
err = open(sys.argv[2], encoding="latin-1").read()
lines = out.decode("latin-1").splitlines()
def js():
    return json.loads(out.decode("latin-1"))
def nd():
    return [json.loads(l) for l in lines]
exec(sys.argv[3])
EOF
		pass "$name"
		return 0
	fi
	fail "$name" "$(tail -n 3 "$RS_TMP/.py" | tr '\n' ' ')"
	_rs_show_out
	return 1
}

# The commit version in "OK version=N" from the last expect.
ok_version() {
	sed -n 's/^OK version=\([0-9][0-9]*\)$/\1/p' "$OUT"
}

export RSCTL_ENDPOINTS=$EPS
R=("$RSCTL")

# ---- start ----

for id in 1 2 3; do
	start_node "$id"
done
ready=no
for ((i = 0; i < 100; i++)); do
	if "$RSCTL" status --timeout-ms 1000 >/dev/null 2>&1; then
		ready=yes
		break
	fi
	sleep 0.2
done
if [ "$ready" != yes ]; then
	show_logs >&2
	die "the cluster did not elect a leader in 20 s"
fi

# ---- help and usage ----

expect 0 "rsctl --help" "${R[@]}" --help
py_check "--help lists every command and exit code" '
for c in ["get", "put", "del", "range", "txn", "watch", "status", "members"]:
    assert ("\n  %s " % c) in out.decode(), c
for code in "0123":
    assert ("\n  %s  " % code) in out.decode(), code'
for c in get put del range txn watch status "members list"; do
	# shellcheck disable=SC2086
	expect 0 "rsctl $c --help" "${R[@]}" $c --help
	assert_out "rsctl $c --help names the default endpoints" \
		'127\.0\.0\.1:7101,127\.0\.0\.1:7102,127\.0\.0\.1:7103'
done
expect 2 "bad flag" "${R[@]}" get k --bogus
assert_out "bad flag is named" "unknown option '--bogus'"
expect 2 "missing KEY" "${R[@]}" get
expect 2 "extra argument" "${R[@]}" del a b
expect 2 "range END with --prefix" "${R[@]}" range a b --prefix
expect 2 "range END before BEGIN" "${R[@]}" range b a
expect 2 "txn without steps" "${R[@]}" txn
expect 2 "txn --put without =" "${R[@]}" txn --put novalue
expect 2 "txn --if-version not a number" "${R[@]}" txn --if-version k=x
expect 2 "watch without KEY or --prefix" "${R[@]}" watch
expect 2 "watch with both KEY and --prefix" "${R[@]}" watch k --prefix p
expect 2 "--timeout-ms 0" "${R[@]}" get k --timeout-ms 0
expect 2 "bad endpoint" "${R[@]}" get k --endpoints nonsense
expect 2 "members without list" "${R[@]}" members
expect 2 "status takes no argument" "${R[@]}" status now

# ---- status and members ----

expect 0 "status" "${R[@]}" status
py_check "status: a row per node, one leader, the cluster ID below" '
import re
rows = [l.split() for l in lines[1:-1]]
assert lines[0].split() == ["ID", "ADDRESS", "ROLE", "TERM", "LEADER", "EPOCH", "PHASE",
    "COMMIT", "APPLIED", "VERSION", "STORAGE", "HEALTH"], lines[0]
assert sorted(r[0] for r in rows) == ["1", "2", "3"], rows
assert [r[2] for r in rows].count("leader") == 1, rows
assert all(r[-1] == "ok" for r in rows), rows
# every node has the founder'"'"'s ID, or has not learned it yet
assert re.fullmatch("cluster ID: [0-9a-f]{32}( [(]not yet learned by .*[)])?",
                    lines[-1]), lines[-1]'
CLUSTER_ID=$(sed -n 's/^cluster ID: \([0-9a-f]\{32\}\).*/\1/p' "$OUT" | tail -n 1)
expect 0 "status --json" "${R[@]}" status --json
py_check "status --json: the nodes' objects" '
d = js()
assert len(d) == 3 and sorted(o["id"] for o in d) == [1, 2, 3]
assert [o["role"] for o in d].count("leader") == 1
leader = [o["id"] for o in d if o["role"] == "leader"][0]
assert {o["cluster_id"] for o in d} - {""} == {"'"$CLUSTER_ID"'"}, d
assert [o["cluster_id"] for o in d if o["id"] == 1] == ["'"$CLUSTER_ID"'"], d
for o in d:
    for f in ["client_addr", "term", "leader_id", "commit_index",
              "applied_index", "applied_version", "storage_bytes", "health"]:
        assert f in o, f
    assert o["leader_id"] == leader and o["health"] == "ok"'
read -r LEADER_EP FOLLOWER_EP < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print([o["client_addr"] for o in d if o["role"] == "leader"][0],
      [o["client_addr"] for o in d if o["role"] != "leader"][0])' "$OUT")
expect 0 "status --endpoints LEADER (flag over the environment)" \
	"${R[@]}" status --endpoints "$LEADER_EP"
py_check "status --endpoints: that node only" '
assert len(lines) == 3 and lines[1].split()[1] == "'"$LEADER_EP"'"
assert lines[2].startswith("cluster ID: "), lines'
expect 3 "status --endpoints FOLLOWER: no leader among those asked" \
	"${R[@]}" status --endpoints "$FOLLOWER_EP"
assert_out "status says there is no leader" "no node that answered is the leader"

expect 0 "members list" "${R[@]}" members list
py_check "members list: a row per member, one leader, the cluster ID below" '
import re
assert lines[0].split() == ["ID", "RAFT_ADDR", "CLIENT_ADDR", "ROLE", "LEADER"]
assert re.fullmatch("cluster ID: ('"$CLUSTER_ID"'|unknown) [(]as node [123] at "
                    "127.0.0.1:[0-9]+ knows it[)]", lines[-1]), lines[-1]
rows = sorted(l.split() for l in lines[1:-1])
assert [r[0] for r in rows] == ["1", "2", "3"], rows
assert [r[2] for r in rows] == ["127.0.0.1:'"$C1"'", "127.0.0.1:'"$C2"'",
    "127.0.0.1:'"$C3"'"], rows
assert [r[4] for r in rows].count("yes") == 1, rows'
expect 0 "members list --json" "${R[@]}" members list --json
py_check "members list --json" '
d = sorted(js(), key=lambda m: m["id"])
assert [m["id"] for m in d] == [1, 2, 3]
assert [m["raft_addr"] for m in d] == ["127.0.0.1:'"$R1"'", "127.0.0.1:'"$R2"'",
    "127.0.0.1:'"$R3"'"]
assert [m["leader"] for m in d].count(True) == 1
assert all(m["role"] == "voter" and "client_addr" in m for m in d)'

# ---- put, get, del ----

expect 0 "put" "${R[@]}" put cfg/a hello
assert_out "put prints the version" '^OK version=[0-9]+$'
V_A=$(ok_version)
expect 0 "get" "${R[@]}" get cfg/a
py_check "get prints the raw value" 'assert out == b"hello\n", out'
expect 0 "get --json" "${R[@]}" get cfg/a --json
py_check "get --json" '
d = js()
assert d["key"] == "cfg/a" and d["value"] == "hello"
assert d["version"] == '"$V_A"' and d["read_version"] >= d["version"]
assert d["serializable"] is False'
expect 0 "get --serializable --json" "${R[@]}" get cfg/a --serializable --json
py_check "get --serializable says so" 'assert js()["serializable"] is True'
expect 1 "get of a missing key" "${R[@]}" get cfg/missing
assert_out "missing key message" "^rsctl: key 'cfg/missing' not found$"
py_check "nothing on stdout for a missing key" 'assert out == b""'

printf 'line1\n\001\377 \\ end' >"$RS_TMP/value.bin"
expect 0 "put VALUE - (stdin, binary)" "${R[@]}" put bin/v - <"$RS_TMP/value.bin"
expect 0 "get binary value" "${R[@]}" get bin/v
py_check "binary value comes back byte for byte" '
assert out == open("'"$RS_TMP"'/value.bin", "rb").read() + b"\n", out'
expect 0 "get binary value --json" "${R[@]}" get bin/v --json
py_check "--json value decodes with latin-1" '
assert js()["value"].encode("latin-1") == open("'"$RS_TMP"'/value.bin", "rb").read()'
expect 0 "put a value starting with - after --" "${R[@]}" put -- cfg/neg -1
expect 0 "get it" "${R[@]}" get cfg/neg
py_check "value -1" 'assert out == b"-1\n"'

expect 0 "del" "${R[@]}" del cfg/a
V_DEL=$(ok_version)
check "del version above the put's" test "${V_DEL:-0}" -gt "$V_A"
expect 1 "get after del" "${R[@]}" get cfg/a
expect 0 "del of a missing key still commits" "${R[@]}" del cfg/a --json
py_check "del --json" 'd = js(); assert d["key"] == "cfg/a" and d["version"] > '"$V_DEL"

# A key with bytes >= 0x80, a quote, a backslash and a control byte: every
# --json output is one line of ASCII JSON whose strings give the bytes
# back through Latin-1.
BKEY=$'k\x80\xff"\\\x01 end'
BKEY_PY='b"k\x80\xff\"\\\x01 end"'
expect 0 "put a key with bytes >= 0x80" "${R[@]}" put "$BKEY" $'v\xfe\n'
V_BKEY=$(ok_version)
expect 0 "get that key --json" "${R[@]}" get "$BKEY" --json
py_check "get --json: ASCII, one line, key and value back via Latin-1" '
assert out.isascii() and out.count(b"\n") == 1 and out.endswith(b"\n"), out
d = js()
assert d["key"].encode("latin-1") == '"$BKEY_PY"', d
assert d["value"].encode("latin-1") == b"v\xfe\n", d
assert d["version"] == '"$V_BKEY"' and d["serializable"] is False, d'
expect 1 "txn --json: a failed compare on that key" \
	"${R[@]}" txn --if-absent "$BKEY" --json
py_check "txn --json failure: the key back via Latin-1" '
assert out.isascii(), out
d = js()
assert d["succeeded"] is False, d
assert d["failed"][0]["key"].encode("latin-1") == '"$BKEY_PY"', d
assert d["failed"][0]["version"] == '"$V_BKEY"', d'
expect 0 "watch that key --json" timeout 20 \
	"${R[@]}" watch "$BKEY" --from "$V_BKEY" --count 1 --json
py_check "watch --json: one ASCII line, the key back via Latin-1" '
assert out.isascii(), out
d = nd()
assert len(d) == 1 and d[0]["op"] == "set" and d[0]["version"] == '"$V_BKEY"', d
assert d[0]["key"].encode("latin-1") == '"$BKEY_PY"', d'
expect 0 "del that key --json" "${R[@]}" del "$BKEY" --json
py_check "del --json: the key back via Latin-1" '
assert out.isascii() and js()["key"].encode("latin-1") == '"$BKEY_PY"

# ---- range ----

{
	for i in $(seq -w 1 12); do echo "put r/k$i value$i"; done
	echo 'put r0 outside'
	echo 'put q/z outside'
	# txn --stdin decodes these \xNN (printf '%s' keeps them as is).
	printf '%s\n' 'put x\xff inside-ff' 'put x\xff\x01 inside-ff2' \
		'put x\xfe below' 'put y above' \
		'put r/sp\x20ace tab\x09and\x0anewline'
} >"$RS_TMP/range.txn"
expect 0 "txn --stdin writes the range data" "${R[@]}" txn --stdin <"$RS_TMP/range.txn"
expect 0 "range --prefix" "${R[@]}" range r/ --prefix
py_check "range --prefix: 13 rows in key order, escaped" '
assert lines[0].split() == ["KEY", "VALUE", "VERSION"]
keys = [l.split()[0] for l in lines[1:]]
assert keys == ["r/k%02d" % i for i in range(1, 13)] + ["r/sp"], keys
assert lines[-1].split()[:3] == ["r/sp", "ace", "tab\\x09and\\x0anewline"], lines[-1]'
expect 0 "range --prefix --limit 5" "${R[@]}" range r/ --prefix --limit 5
py_check "range --limit 5: 5 rows, a note on stderr" '
assert [l.split()[0] for l in lines[1:]] == ["r/k%02d" % i for i in range(1, 6)]
assert "more keys follow" in err'
expect 0 "range --limit --json" "${R[@]}" range r/ --prefix --limit 5 --json
py_check "range --json: count, more, one read version" '
d = js()
assert d["count"] == 5 and d["more"] is True and d["read_version"] > 0
assert [kv["key"] for kv in d["kvs"]] == ["r/k%02d" % i for i in range(1, 6)]
assert d["kvs"][0]["value"] == "value01" and d["kvs"][0]["version"] > 0'
expect 0 "range BEGIN END" "${R[@]}" range r/k03 r/k06 --json
py_check "range [r/k03, r/k06)" '
d = js()
assert [kv["key"] for kv in d["kvs"]] == ["r/k03", "r/k04", "r/k05"]
assert d["more"] is False and d["count"] == 3'
expect 0 "range --prefix with a 0xff last byte" "${R[@]}" range $'x\xff' --prefix --json
py_check "prefix x\\xff: its keys only" '
d = js()
assert [kv["key"].encode("latin-1") for kv in d["kvs"]] == [b"x\xff", b"x\xff\x01"], d'
expect 0 "range BEGIN to the end of the key space" "${R[@]}" range y --json
py_check "range y..end includes y" '
assert js()["kvs"][0]["key"] == "y"'

# More than one page (the page is 1000 rows): every page at one version.
for ((i = 1; i <= 1205; i++)); do
	printf 'put big/%05d v%d\n' "$i" "$i"
done >"$RS_TMP/big.txn"
expect 0 "txn of 1205 puts" "${R[@]}" txn --stdin <"$RS_TMP/big.txn"
expect 0 "range over two pages" "${R[@]}" range big/ --prefix --json
py_check "1205 keys, in order, no repeats" '
d = js()
keys = [kv["key"] for kv in d["kvs"]]
assert d["count"] == 1205 and len(keys) == 1205 and d["more"] is False
assert keys == ["big/%05d" % i for i in range(1, 1206)]'
expect 0 "range over two pages, --limit 1100" "${R[@]}" range big/ --prefix --limit 1100 --json
py_check "1100 keys and more" '
d = js()
assert d["count"] == 1100 and d["more"] is True
assert d["kvs"][-1]["key"] == "big/01100"'
expect 0 "range text over two pages" "${R[@]}" range big/ --prefix
py_check "1205 text rows" 'assert len(lines) == 1206'

# ---- txn ----

expect 0 "put t/a" "${R[@]}" put t/a 1
V_TA=$(ok_version)
expect 0 "txn: compares hold" "${R[@]}" txn --if-value t/a=1 \
	--if-version "t/a=$V_TA" --if-absent t/none --if-version t/none=0 \
	--put t/b=2 --put t/c=x=y --del t/a
assert_out "txn prints the version" '^OK version=[0-9]+$'
expect 0 "txn wrote t/c" "${R[@]}" get t/c
py_check "--put splits at the first =" 'assert out == b"x=y\n"'
expect 1 "txn deleted t/a" "${R[@]}" get t/a
expect 1 "txn: a compare fails" "${R[@]}" txn --if-value t/b=wrong \
	--if-absent t/c --put t/d=1
assert_out "compare failed message" "compare failed: if-value 't/b'"
assert_out "both failures reported" "compare failed: if-absent 't/c'"
expect 1 "a failed txn wrote nothing" "${R[@]}" get t/d
expect 1 "txn --json: a compare fails" "${R[@]}" txn --if-version t/b=1 --put t/d=1 --json
py_check "txn --json failure" '
d = js()
assert d["succeeded"] is False and d["read_version"] > 0
assert d["failed"][0]["compare"] == "if-version" and d["failed"][0]["key"] == "t/b"
assert d["failed"][0]["found"] is True'
printf 'if-value t/b 2\nput t/e hello world\nput t\\x20f \\x00\\\\\n# skipped\n\ndel t/c\n' \
	>"$RS_TMP/steps.txn"
expect 0 "txn --stdin --json" "${R[@]}" txn --stdin --json <"$RS_TMP/steps.txn"
py_check "txn --json success" '
d = js(); assert d["succeeded"] is True and d["committed"] is True and d["version"] > 0'
expect 0 "get t/e" "${R[@]}" get t/e
py_check "stdin VALUE is the rest of the line" 'assert out == b"hello world\n"'
expect 0 "get 't f'" "${R[@]}" get "t f"
py_check "stdin escapes decoded" 'assert out == b"\x00\\\n", out'
printf 'put k\n frob k v\n' >"$RS_TMP/bad.txn"
expect 2 "txn --stdin: unknown step" "${R[@]}" txn --stdin <"$RS_TMP/bad.txn"
assert_out "bad line is named" "stdin line 2: unknown step 'frob'"
expect 0 "read-only txn" "${R[@]}" txn --if-absent t/none --json
py_check "read-only txn does not commit" '
d = js(); assert d["succeeded"] is True and d["committed"] is False'

# ---- watch ----

expect 0 "put w/a" "${R[@]}" put w/a 1
V_W=$(ok_version)
expect 0 "put w/b" "${R[@]}" put w/b 2
expect 0 "put outside w/" "${R[@]}" put wx 0
expect 0 "del w/a" "${R[@]}" del w/a
expect 0 "watch --prefix --from --count" timeout 20 "${R[@]}" watch --prefix w/ --from "$V_W" --count 3
py_check "watch text lines" '
import re
assert len(lines) == 3, lines
assert re.fullmatch(r"version=%d set w/a=1" % '"$V_W"', lines[0]), lines[0]
assert re.fullmatch(r"version=\d+ set w/b=2", lines[1]), lines[1]
assert re.fullmatch(r"version=\d+ del w/a", lines[2]), lines[2]
v = [int(l.split()[0][8:]) for l in lines]
assert v == sorted(v) and len(set(v)) == 3'
expect 0 "watch KEY --json" timeout 20 "${R[@]}" watch w/b --from "$V_W" --count 1 --json
py_check "watch NDJSON" '
d = nd()
assert len(d) == 1 and d[0]["op"] == "set" and d[0]["key"] == "w/b"
assert d[0]["value"] == "2" and d[0]["version"] > '"$V_W"

# A live watch: from the version after a read, so nothing is missed even
# if the watch starts late.
expect 0 "read version for the live watch" "${R[@]}" get w/b --json
V_NOW=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["read_version"] + 1)' "$OUT")
timeout 20 "${R[@]}" watch --prefix w/ --from "$V_NOW" --count 2 --json \
	>"$RS_TMP/live.out" 2>"$RS_TMP/live.err" &
live=$!
BG_PIDS+=("$live")
expect 0 "txn seen by the live watch" "${R[@]}" txn --put w/c=3 --put w/d=4 --del w/b
V_LIVE=$(ok_version)
expect 0 "put seen by the live watch" "${R[@]}" put w/e 5
wait "$live"
rc=$?
check "live watch --count 2 exits 0" test "$rc" -eq 0
cp "$RS_TMP/live.out" "$OUT"
cp "$RS_TMP/live.err" "$ERR"
py_check "live watch: a commit's mutations together, in order" '
d = nd()
assert [(e["op"], e["key"]) for e in d] == [("set", "w/c"), ("set", "w/d"),
    ("del", "w/b"), ("set", "w/e")], d
assert d[0]["version"] == d[1]["version"] == d[2]["version"] == '"${V_LIVE:-0}"'
assert d[3]["version"] > d[0]["version"]'

# SIGINT ends a watch cleanly (exit 0), even one that saw nothing.
"${R[@]}" watch --prefix nothing/ >"$RS_TMP/int.out" 2>"$RS_TMP/int.err" &
wpid=$!
BG_PIDS+=("$wpid")
sleep 0.5
kill -INT "$wpid"
for ((i = 0; i < 50; i++)); do
	kill -0 "$wpid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$wpid" 2>/dev/null; then
	fail "watch ends on SIGINT" "still running 5 s later"
	kill -KILL "$wpid"
fi
wait "$wpid"
rc=$?
check "watch ends with exit 0 on SIGINT" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/     | /' "$RS_TMP/int.err"

# ---- config --json ----

expect 0 "config list --json" "${R[@]}" config list --json
py_check "config list --json: one document, every known parameter" '
d = js()
assert d["read_version"] > 0, d
names = [p["param"] for p in d["params"]]
for n in ["commit_proxies", "resolvers", "batch_count_max", "batch_delay_us"]:
    assert n in names, names
assert all(p["value"] is None or isinstance(p["value"], str) for p in d["params"])'
expect 0 "config get --json" "${R[@]}" config get batch_count_max --json
py_check "config get --json: param, value, version" '
d = js()
assert d["param"] == "batch_count_max" and isinstance(d["version"], int), d
assert d["value"] is None or isinstance(d["value"], str), d'

# ---- answers that are not what they should be ----

# A fake node that answers STATUS and MEMBERS with the bodies in files
# $FAKE_DIR/status and $FAKE_DIR/members, read afresh for every request.
FAKE_DIR=$RS_TMP/fake
mkdir -p "$FAKE_DIR"
python3 - "$FAKE_DIR" "$here" <<'EOF' >"$FAKE_DIR/log" 2>&1 &
import os, socket, struct, sys, threading
sys.path.insert(0, sys.argv[2])
import rswire
d = sys.argv[1]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
def serve(c):
    buf = b""
    while True:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack_from("<I", buf)[0]:
            chunk = c.recv(65536)
            if not chunk:
                return
            buf += chunk
        n = struct.unpack_from("<I", buf)[0]
        _, ftype, _, rid = struct.unpack_from("<BBHQ", buf, 8)
        buf = buf[4 + n:]
        name = {rswire.STATUS: "status", rswire.MEMBERS: "members"}.get(ftype)
        if name is None:
            body = struct.pack("<I", rswire.CODE["EPROTO"]) + rswire.bytes_field(b"fake")
        else:
            doc = open(os.path.join(d, name), "rb").read()
            body = struct.pack("<I", 0) + rswire.bytes_field(b"") + rswire.bytes_field(doc)
        c.sendall(rswire.frame(ftype | rswire.RESPONSE, rid, body))
open(os.path.join(d, "port.tmp"), "w").write(str(srv.getsockname()[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
EOF
BG_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
	[ -f "$FAKE_DIR/port" ] && break
	sleep 0.1
done
FAKE=127.0.0.1:$(cat "$FAKE_DIR/port" 2>/dev/null)
FAKE_OPTS=(--endpoints "$FAKE" --timeout-ms 2000)

printf '{"id":7,"role":"leader","term":"three","leader_id":7,"health":"ok"}' \
	>"$FAKE_DIR/status"
expect 0 "status: a member of the wrong type" "${R[@]}" status "${FAKE_OPTS[@]}"
assert_out "the warning names the endpoint and the member" \
	"^rsctl: status: answer from $FAKE: member \"term\": expected an unsigned integer$"
py_check "status: ? for the wrong member and for those missing" '
row = lines[1].split()
assert row[:5] == ["7", "'"$FAKE"'", "leader", "?", "7"], row
assert row[-1] == "ok", row'
expect 0 "status --json: the fake node's object as sent" \
	"${R[@]}" status --json "${FAKE_OPTS[@]}"
py_check "status --json: its members as sent" '
assert js() == [{"id": 7, "role": "leader", "term": "three", "leader_id": 7,
                 "health": "ok"}], js()'
printf '{"id":7,"role":' >"$FAKE_DIR/status"
expect 3 "status: an answer that is not JSON" "${R[@]}" status "${FAKE_OPTS[@]}"
assert_out "the row says invalid and why, with the line and column" \
	"^- +$FAKE +invalid .*the answer is not a status object: line 1 column"
printf '{"id":7,"role":7}' >"$FAKE_DIR/status"
expect 3 "status --json: an object without a role string" \
	"${R[@]}" status --json "${FAKE_OPTS[@]}"
py_check "status --json: an error object naming the member" '
d = js()
assert d[0]["endpoint"] == "'"$FAKE"'" and d[0]["unreachable"] is False, d
assert d[0]["error"] == "protocol error", d
assert "member \"role\": expected a string" in d[0]["message"], d'

printf '[{"id":1,"raft_addr":"a:1","client_addr":"a:2","role":"voter","leader":true},{"id":2,"raft_addr":5,"client_addr":"b:2","role":"voter","leader":false}]' \
	>"$FAKE_DIR/members"
expect 1 "members: a member of the wrong type" "${R[@]}" members list "${FAKE_OPTS[@]}"
assert_out "the error names the endpoint, the element and the member" \
	"^rsctl: members: answer from $FAKE: members\[1\]: member \"raft_addr\": expected a string$"
printf '{"members":[]}' >"$FAKE_DIR/members"
expect 1 "members: an answer that is no array" "${R[@]}" members list "${FAKE_OPTS[@]}"
assert_out "the error names the endpoint" \
	"^rsctl: members: answer from $FAKE: expected an array"
printf '[{"id":1,"raft_addr":"a:1","client_addr":"","role":"voter","leader":true,"new":1}]' \
	>"$FAKE_DIR/members"
expect 0 "members: an unknown member is ignored" "${R[@]}" members list "${FAKE_OPTS[@]}"
py_check "members: the row, - for an empty address" '
assert lines[1].split() == ["1", "a:1", "-", "voter", "yes"], lines'

# ---- unreachable ----

expect 3 "get from an unreachable endpoint" \
	"${R[@]}" get cfg/neg --endpoints "127.0.0.1:$DEAD" --timeout-ms 500
assert_out "the error names the endpoint" "127\.0\.0\.1:$DEAD"
expect 3 "put to an unreachable endpoint" \
	"${R[@]}" put k v --endpoints "127.0.0.1:$DEAD" --timeout-ms 500
expect 3 "txn to an unreachable endpoint" \
	"${R[@]}" txn --put k=v --endpoints "127.0.0.1:$DEAD" --timeout-ms 500
expect 3 "watch on an unreachable endpoint" \
	"${R[@]}" watch k --endpoints "127.0.0.1:$DEAD" --timeout-ms 500
expect 3 "members from an unreachable endpoint" \
	"${R[@]}" members list --endpoints "127.0.0.1:$DEAD" --timeout-ms 500
expect 3 "status of an unreachable endpoint" \
	"${R[@]}" status --endpoints "127.0.0.1:$DEAD" --timeout-ms 500
expect 0 "get skips an unreachable endpoint" \
	"${R[@]}" get cfg/neg --endpoints "127.0.0.1:$DEAD,$EPS" --timeout-ms 5000
expect 0 "status: 3 of 4 endpoints answer" \
	"${R[@]}" status --endpoints "$EPS,127.0.0.1:$DEAD" --timeout-ms 500 --json
py_check "status --json: an error object for the unreachable one" '
d = js()
assert len(d) == 4 and all("id" in o for o in d[:3])
assert d[3]["unreachable"] is True and d[3]["endpoint"] == "127.0.0.1:'"$DEAD"'"
assert d[3]["error"] and d[3]["message"]'

# Stop a follower: still a majority with a leader.  Then a second node:
# no majority.
expect 0 "status before stopping nodes" "${R[@]}" status --json
LEADER=$(python3 -c 'import json,sys; print([o["id"] for o in json.load(open(sys.argv[1])) if o["role"] == "leader"][0])' "$OUT")
FOLLOWERS=()
for id in 1 2 3; do
	[ "$id" != "$LEADER" ] && FOLLOWERS+=("$id")
done
stop_node "${FOLLOWERS[0]}"
expect 0 "status with one node down" "${R[@]}" status --timeout-ms 1000
assert_out "the stopped node's row says unreachable" \
	"127\.0\.0\.1:${CLIENT_PORTS[${FOLLOWERS[0]}]} +unreachable"
expect 0 "get with one node down" "${R[@]}" get cfg/neg --timeout-ms 5000
stop_node "${FOLLOWERS[1]}"
expect 3 "status with two nodes down" "${R[@]}" status --timeout-ms 1000
assert_out "status says why" "1 of 3 endpoints answered"
expect 3 "put with two nodes down" "${R[@]}" put k v --timeout-ms 1500

rs_finish
