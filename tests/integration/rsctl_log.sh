#!/usr/bin/env bash
# rsctl_log.sh: `rsctl log verify|inspect|dump` on a real store, a corrupted
# copy and a torn copy, checking exit codes, what is reported, and that no
# file ever changes.
#
# Test data.  The store is written by the lead's tools/rsbench.c:
#
#     $top_builddir/rsbench fill --dir DIR --records N
#
# which creates DIR as a store directory (store_open: journal/ and
# checkpoints/ inside) holding N batches at versions 1..N, with 4 KiB
# segments and a checkpoint half way.  The test relies only on: versions
# 1..N, each batch with at least one mutation, and at least 3 records in some
# segment.  Retention may remove covered segments, so the expected counts
# come from walking the journal's files independently (records() below);
# the checkpoint checks are skipped if there is no checkpoint.
# RSCTL_TEST_FILL="cmd args" replaces "rsbench fill"; it is called as
# `$RSCTL_TEST_FILL --dir DIR --records N`.
#
# The last part runs a one-node raftstored (with a low snapshot threshold),
# writes through it, kills it with SIGKILL (a crash: its open segment keeps
# its batches) and checks `rsctl log verify|inspect DIR` on its data dir
# and on damaged copies: a flipped byte in a Raft segment, a torn tail, bad
# metadata, a damaged snapshot and identity file.
#
# Needs python3 (to walk the journal's records and to parse the NDJSON).
# Run by `make check`, or by hand from the top of the build tree:
#     tests/integration/rsctl_log.sh
# RS_KEEP_TMP=1 keeps the temporary directory for a look afterwards.

set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

N=300
rs_init rsctl_log

RSCTL=$top_builddir/rsctl
[ -x "$RSCTL" ] || die "$RSCTL not built"
command -v python3 >/dev/null || die "python3 is required"
if [ -n "${RSCTL_TEST_FILL:-}" ]; then
	read -r -a FILL <<<"$RSCTL_TEST_FILL"
else
	FILL=("$top_builddir/rsbench" fill)
	[ -x "${FILL[0]}" ] || die "${FILL[0]} not built (needed for test data)"
fi

STORE=$RS_TMP/store
"${FILL[@]}" --dir "$STORE" --records "$N" >"$RS_TMP/fill.out" 2>&1 ||
	die "fill failed: $(tail -n 5 "$RS_TMP/fill.out")"
[ -d "$STORE/journal" ] || die "fill made no $STORE/journal"

# Print "segment offset length version" for every record, in journal order,
# by walking the framing of record.h after journal.h's 40-byte header.  Stops
# at the first record that does not fit (a torn tail).
records() {
	python3 - "$1" <<'EOF'
import os, struct, sys
d = sys.argv[1]
for name in sorted(f for f in os.listdir(d) if f.startswith("seg-") and f.endswith(".rsj")):
    data = open(os.path.join(d, name), "rb").read()
    off = 40
    while off + 9 <= len(data):
        length = struct.unpack_from("<I", data, off + 4)[0]
        if length < 16 or off + 9 + length > len(data):
            break
        version = struct.unpack_from("<Q", data, off + 9)[0]
        print(name, off, length, version)
        off += 9 + length
EOF
}

# flip_byte FILE OFFSET: xor one byte with 0x55, in place.
flip_byte() {
	python3 - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x55]))
EOF
}

# Every line of $RS_OUT parses as a JSON batch; versions increase inside
# [from, to]; prints the number of lines.
json_lines() {
	python3 - "$RS_OUT" "$1" "$2" <<'EOF'
import json, sys
lo, hi, prev, n = int(sys.argv[2]), int(sys.argv[3]), -1, 0
for line in open(sys.argv[1], encoding="ascii"):
    o = json.loads(line)
    assert isinstance(o["epoch"], int), o
    assert lo <= o["version"] <= hi and o["version"] > prev, o
    assert o["count"] == len(o["mutations"]), o
    for m in o["mutations"]:
        assert m["op"] in ("set", "del", "clear-range"), m
        keys = ("key", "value") if m["op"] == "set" else ("key",) if m["op"] == "del" else ("begin", "end")
        for k in keys:
            assert all(ord(c) < 256 for c in m[k]), m
    prev, n = o["version"], n + 1
print(n)
EOF
}

# write_journal DIR: a journal written from the formats documented in
# journal.h, record.h and batch.h alone, holding keys and values that need
# escaping.  Writes DIR/../expected.json: each batch's mutations in hex.
write_journal() {
	python3 - "$1" <<'EOF'
import json, os, struct, sys
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
def mask(c):
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
SET, CLEAR, CLEAR_RANGE = 1, 2, 3
batches = [  # version, epoch, [(type, a, b)]
    (1, 7, [(SET, b"plain", b"hello")]),
    (2, 7, [(SET, b'q"b\\s', bytes([0, 1, 10, 9, 0x7F, 0x80, 0xFF, 13, 8, 12]))]),
    (3, 7, [(SET, "\u20ac".encode(), b"x" * 2000)]),
    (4, 8, [(CLEAR, b"plain", b""), (SET, b"k2", b"")]),
    (5, 8, [(CLEAR_RANGE, b"", b"\xff")]),
    (9, 8, [(SET, b"after", "</script>\u2028".encode())]),
]
d = sys.argv[1]
os.makedirs(d)
hdr = b"RSJRNL\r\n" + struct.pack("<IIQQ", 1, 0, 1, 0)
seg = hdr + struct.pack("<II", crc32c(hdr), 0)
for version, epoch, muts in batches:
    body = struct.pack("<I", len(muts))
    for t, a, b in muts:
        body += struct.pack("<BI", t, len(a)) + a + struct.pack("<I", len(b)) + b
    tp = bytes([1]) + struct.pack("<QQ", version, epoch) + body
    seg += struct.pack("<II", mask(crc32c(tp)), len(tp) - 1) + tp
open(os.path.join(d, "seg-0000000000000001.rsj"), "wb").write(seg)
exp = {str(v): [[t, a.hex(), b.hex()] for t, a, b in m] for v, _, m in batches}
json.dump(exp, open(os.path.join(os.path.dirname(d), "expected.json"), "w"))
EOF
}

# The --json dump in $RS_OUT gives back exactly the bytes of expected.json.
json_exact() {
	python3 - "$RS_OUT" "$1" <<'EOF'
import json, sys
exp = json.load(open(sys.argv[2]))
ops = {"set": (1, "key", "value"), "del": (2, "key", None),
       "clear-range": (3, "begin", "end")}
for line in open(sys.argv[1], encoding="ascii"):
    o = json.loads(line)
    got = []
    for m in o["mutations"]:
        t, a, b = ops[m["op"]]
        got.append([t, m[a].encode("latin-1").hex(),
                    m[b].encode("latin-1").hex() if b else ""])
    assert got == exp.pop(str(o["version"])), (o["version"], got)
assert not exp, exp
EOF
}

lines() {
	wc -l <"$RS_OUT" | tr -d ' '
}

# ---- usage ----
assert_exit 0 "$RSCTL" --help && assert_out "rsctl --help lists exit codes" \
	'Exit codes:'
assert_exit 0 "$RSCTL" log --help && assert_out "rsctl log --help lists dump" \
	'rsctl log dump DIR \[--from V\] \[--to V\] \[--json\]'
assert_exit 0 "$RSCTL" log dump --help
assert_exit 2 "$RSCTL" no-such-command && assert_out "unknown command named" \
	"unknown command 'no-such-command'"
assert_exit 2 "$RSCTL"
assert_exit 2 "$RSCTL" log
assert_exit 2 "$RSCTL" log frobnicate "$STORE"
assert_exit 2 "$RSCTL" log verify
assert_exit 2 "$RSCTL" log verify "$RS_TMP/no-such-dir" &&
	assert_out "missing dir named" "no-such-dir: No such file or directory"
assert_exit 2 "$RSCTL" log verify --bogus "$STORE" &&
	assert_out "bad flag named" "unknown option '--bogus'"
assert_exit 2 "$RSCTL" log verify "$STORE" "$STORE"
assert_exit 2 "$RSCTL" log verify --json "$STORE"
assert_exit 2 "$RSCTL" log verify "$RS_TMP/fill.out"
assert_exit 2 "$RSCTL" log verify "$RS_TMP"
assert_exit 2 "$RSCTL" log dump "$STORE" --from
assert_exit 2 "$RSCTL" log dump "$STORE" --from x
assert_exit 2 "$RSCTL" log dump "$STORE" --from -1
assert_exit 2 "$RSCTL" log dump "$STORE" --from 5 --to 4

# ---- a good store ----
before=$(tree_digest "$STORE")
records "$STORE/journal" >"$RS_TMP/records"
nrec=$(wc -l <"$RS_TMP/records")
first=$(head -n 1 "$RS_TMP/records" | cut -d' ' -f4)
last=$(tail -n 1 "$RS_TMP/records" | cut -d' ' -f4)
[ "${last:-0}" -eq "$N" ] || die "the journal ends at version '$last', not $N"
[ "$nrec" -eq "$((last - first + 1))" ] || die "journal versions not dense"
lo=$((first + 10)) hi=$((first + 19))

assert_exit 0 "$RSCTL" log verify "$STORE" &&
	assert_out "verify summary" "$nrec records" &&
	assert_out "verify says OK" '^OK'
assert_exit 0 "$RSCTL" log verify "$STORE/journal" &&
	assert_out "verify of a journal directory" "$nrec records"
assert_exit 0 "$RSCTL" log inspect "$STORE" &&
	assert_out "inspect lists segments" 'seg-[0-9a-f]{16}\.rsj' &&
	assert_out "inspect counts records" "records $nrec," &&
	assert_out "inspect shows the state at version $N" \
		"state at version $N " &&
	assert_out "inspect shows live keys" 'live keys +[0-9]+'
assert_exit 0 "$RSCTL" log dump "$STORE" &&
	check "dump prints $nrec lines" [ "$(lines)" -eq "$nrec" ]
assert_exit 0 "$RSCTL" log dump "$STORE" --json &&
	check "dump --json: $nrec lines of JSON" \
		[ "$(json_lines 0 "$N" 2>&1)" = "$nrec" ]
assert_exit 0 "$RSCTL" log dump --json --from "$lo" --to="$hi" "$STORE" &&
	check "dump --from $lo --to $hi: 10 lines" \
		[ "$(json_lines "$lo" "$hi" 2>&1)" = 10 ]
assert_exit 0 "$RSCTL" log dump "$STORE" --from "$((N + 1))" &&
	check "dump past the end prints nothing" [ "$(lines)" -eq 0 ]
check "good store: every file byte-identical" \
	[ "$before" = "$(tree_digest "$STORE")" ]

# ---- a flipped byte in the middle of a segment ----
# The middle record of the first segment with at least 3 records: not its
# first (so the last good record is in the same segment) nor its last.
CORRUPT=$RS_TMP/corrupt
cp -a "$STORE" "$CORRUPT"
read -r cseg coff clen prevver < <(awk '
	{ n[$1]++; off[$1, n[$1]] = $2; len[$1, n[$1]] = $3; ver[$1, n[$1]] = $4
	  if (!($1 in first)) { first[$1] = 1; order[++segs] = $1 } }
	END { for (s = 1; s <= segs; s++) { g = order[s]
		if (n[g] >= 3) { k = int((n[g] + 1) / 2)
			print g, off[g, k], len[g, k], ver[g, k - 1]; exit } } }' \
	"$RS_TMP/records")
[ -n "${cseg:-}" ] || die "no segment holds 3 records"
flip_byte "$CORRUPT/journal/$cseg" "$((coff + 9 + clen / 2))"
before=$(tree_digest "$CORRUPT")
assert_exit 1 "$RSCTL" log verify "$CORRUPT" &&
	assert_out "corrupt: names file and offset" "$cseg at offset $coff\b" &&
	assert_out "corrupt: last good version" "last good record: version $prevver\b"
assert_exit 1 "$RSCTL" log dump "$CORRUPT"
assert_exit 1 "$RSCTL" log inspect "$CORRUPT"
check "corrupt store: every file byte-identical" \
	[ "$before" = "$(tree_digest "$CORRUPT")" ]

# ---- the last segment cut in the middle of its last record ----
TORN=$RS_TMP/torn
cp -a "$STORE" "$TORN"
read -r tseg toff tlen _ < <(tail -n 1 "$RS_TMP/records")
prevver=$(tail -n 2 "$RS_TMP/records" | head -n 1 | cut -d' ' -f4)
lastseg=$(cd "$TORN/journal" && ls seg-*.rsj | LC_ALL=C sort | tail -n 1)
[ "$tseg" = "$lastseg" ] || die "the last segment $lastseg holds no record"
truncate -s "$((toff + 9 + tlen / 2))" "$TORN/journal/$tseg"
before=$(tree_digest "$TORN")
assert_exit 1 "$RSCTL" log verify "$TORN" &&
	assert_out "torn: says torn" 'torn' &&
	assert_out "torn: names file and offset" "$tseg at offset $toff\b" &&
	assert_out "torn: last good version" "version $prevver\b"
assert_exit 0 "$RSCTL" log dump "$TORN"
check "torn: dump prints the $((nrec - 1)) good batches" \
	[ "$(grep -c '^version=' "$RS_OUT")" -eq "$((nrec - 1))" ]
assert_exit 0 "$RSCTL" log inspect "$TORN"
check "torn store: every file byte-identical (not truncated)" \
	[ "$before" = "$(tree_digest "$TORN")" ]

# ---- a flipped byte in a checkpoint ----
ckpt=$(cd "$STORE/checkpoints" 2>/dev/null && ls ckpt-*.rsc 2>/dev/null | head -n 1)
if [ -n "$ckpt" ]; then
	BADCK=$RS_TMP/badckpt
	cp -a "$STORE" "$BADCK"
	flip_byte "$BADCK/checkpoints/$ckpt" \
		"$(($(stat -c %s "$BADCK/checkpoints/$ckpt") / 2))"
	before=$(tree_digest "$BADCK")
	assert_exit 1 "$RSCTL" log verify "$BADCK" &&
		assert_out "bad checkpoint named" "CORRUPT .*$ckpt"
	assert_exit 1 "$RSCTL" log inspect "$BADCK" &&
		assert_out "inspect marks it corrupt" "$ckpt .* corrupt"
	check "bad checkpoint: every file byte-identical" \
		[ "$before" = "$(tree_digest "$BADCK")" ]
else
	echo "skip - no checkpoint in the test store: checkpoint checks skipped"
fi

# ---- a hand-made journal: escaping, and the documented format ----
HAND=$RS_TMP/hand/journal
write_journal "$HAND" || die "cannot write the hand-made journal"
before=$(tree_digest "$RS_TMP/hand")
assert_exit 0 "$RSCTL" log verify "$HAND" &&
	assert_out "hand-made journal matches the documented format" \
		'6 records, 7 mutations, versions 1\.\.9'
assert_exit 0 "$RSCTL" log dump "$HAND" &&
	assert_out "text: quote and backslash escaped" \
		'^version=2 epoch=7 count=1 set "q\\"b\\\\s"=' &&
	assert_out "text: other bytes as \\xNN" \
		'="\\x00\\x01\\x0a\\x09\\x7f\\x80\\xff\\x0d\\x08\\x0c"$' &&
	assert_out "text: long value cut, with its length" \
		'^version=3 .*="x{64}"\.\.\.\(2000 bytes\)$' &&
	assert_out "text: clear-range with an empty begin" \
		'^version=5 epoch=8 count=1 clear-range \["","\\xff"\)$'
assert_exit 0 "$RSCTL" log dump "$HAND" --json &&
	check "json: every byte of every key and value comes back" \
		json_exact "$RS_TMP/hand/expected.json"
assert_exit 0 "$RSCTL" log dump "$HAND" --json --from 6 --to 100 &&
	check "json: --from 6 --to 100 is the batch at version 9" \
		[ "$(json_lines 6 100 2>&1)" = 1 ]
check "hand-made journal: every file byte-identical" \
	[ "$before" = "$(tree_digest "$RS_TMP/hand")" ]

# ---- a node's data dir: the Raft log, its metadata and snapshots ----
RAFTSTORED=$top_builddir/raftstored
[ -x "$RAFTSTORED" ] || die "$RAFTSTORED not built"
NODE_PID=0
# shellcheck disable=SC2317 # called from the exit hook
stop_node() {
	[ "$NODE_PID" -gt 0 ] && kill -KILL "$NODE_PID" 2>/dev/null &&
		wait "$NODE_PID" 2>/dev/null
	NODE_PID=0
	return 0
}
rs_on_exit stop_node
read -r RPORT CPORT < <(python3 "$here/ports.py" 2) || die "cannot pick ports"
DD=$RS_TMP/node
"$RAFTSTORED" --id 1 --data-dir "$DD" \
	--initial-cluster "1=127.0.0.1:$RPORT/127.0.0.1:$CPORT" \
	--election-timeout-ms 300 --heartbeat-timeout-ms 30 \
	--snapshot-threshold 64 --snapshot-trailing 16 >"$RS_TMP/node.log" 2>&1 &
NODE_PID=$!
export RSCTL_ENDPOINTS=127.0.0.1:$CPORT
ready=no
for ((i = 0; i < 100; i++)); do
	"$RSCTL" put ready yes >/dev/null 2>&1 && ready=yes && break
	sleep 0.2
done
[ "$ready" = yes ] || die "the node did not serve in 20 s: $(tail -n 5 "$RS_TMP/node.log")"
for ((i = 0; i < 150; i++)); do
	"$RSCTL" put "k$((i % 25))" "value $i" >/dev/null 2>&1 ||
		die "put $i failed"
done
# A running node's files may be read; a write in flight may read as a torn
# tail (exit 1 from verify), but never as anything that stops the command.
"$RSCTL" log inspect "$DD" >"$RS_OUT" 2>&1
check "inspect of a running node's data dir exits 0 or 1" [ $? -le 1 ]
assert_out "a running node is noted, from DIR/LOCK" \
	"^NOTE +$DD/LOCK: raftstored \(pid $NODE_PID\) runs on this data dir"
# A backup, restored into a data dir of a new cluster: a raw (not LZ4)
# snapshot, metadata1 and the identity; no store yet.
"$RSCTL" snapshot save "$RS_TMP/backup" >"$RS_OUT" 2>&1 ||
	die "snapshot save failed: $(tail -n 3 "$RS_OUT")"
RESTORED=$RS_TMP/restored
"$RSCTL" snapshot restore "$RS_TMP/backup" --data-dir "$RESTORED" --id 1 \
	--initial-cluster "1=127.0.0.1:$RPORT/127.0.0.1:$CPORT" >"$RS_OUT" 2>&1 ||
	die "snapshot restore failed: $(tail -n 3 "$RS_OUT")"
# raft_batches FILE: "offset entries end" for every batch of a c-raft 0.15
# segment, walking the layout of docs/storage-format.md (no checksums).
raft_batches() {
	python3 - "$1" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
off = 8
while off + 16 <= len(data):
    n = struct.unpack_from("<Q", data, off + 8)[0]
    if n == 0 or off + 16 + 16 * n > len(data):
        break
    size = sum(struct.unpack_from("<I", data, off + 16 + 16 * i + 12)[0] for i in range(n))
    end = off + 16 + 16 * n + size
    if end > len(data):
        break
    print(off, n, end)
    off = end
EOF
}

# Whether an open segment of the node holds a batch.
open_has_batch() {
	local f
	for f in "$DD"/raft/open-*; do
		[ -f "$f" ] || continue
		[ -n "$(raft_batches "$f")" ] && return 0
	done
	return 1
}

# Let the last writes and any snapshot land (the files stop changing),
# then crash the node.  A snapshot closes the open segment, and each
# cycle's cut is random (snappolicy), so it may come last: then one more
# put, which lands in a new open segment, and again.
for ((round = 0; round < 5; round++)); do
	prev=''
	for ((i = 0; i < 25; i++)); do
		sleep 0.2
		now=$(tree_digest "$DD/raft")
		[ "$now" = "$prev" ] && break
		prev=$now
	done
	open_has_batch && break
	"$RSCTL" put "after-snapshot-$round" yes >/dev/null 2>&1 ||
		die "put after the snapshot failed"
done
stop_node

# put_u64 FILE OFFSET VALUE: overwrite a little-endian u64 in place.
put_u64() {
	python3 - "$@" <<'EOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    f.write(struct.pack("<Q", int(sys.argv[3])))
EOF
}

# The segment with the most batches, and the last open one with data.
best=0 bseg='' oseg=''
for f in "$DD"/raft/[0-9]*-[0-9]* "$DD"/raft/open-*; do
	[ -f "$f" ] || continue
	name=$(basename "$f")
	raft_batches "$f" >"$RS_TMP/b.$name"
	n=$(wc -l <"$RS_TMP/b.$name")
	[ "$n" -gt "$best" ] && best=$n bseg=$name
	case $name in open-*) [ "$n" -gt 0 ] && oseg=$name ;; esac
done
[ "$best" -ge 3 ] || die "no Raft segment holds 3 batches"
[ -n "$oseg" ] || die "no open segment holds a batch after SIGKILL"
snapmeta=''
for f in "$DD"/raft/snapshot-*.meta; do
	[ -f "$f" ] && snapmeta=$(basename "$f")
done
[ -n "$snapmeta" ] || die "the node took no snapshot"

before=$(tree_digest "$DD")
assert_exit 0 "$RSCTL" log verify "$DD" &&
	assert_out "data dir: verify says OK" '^OK' &&
	assert_out "data dir: verify sums up the Raft log" \
		'^raft +.*/raft: [0-9]+ segments?, entries [0-9]+\.\.[0-9]+, [0-9]+ snapshots?' &&
	assert_out "data dir: verify reads the metadata" \
		'^metadata +.*: term [0-9]+, voted for [0-9]+ \(metadata[12], version [0-9]+\)' &&
	assert_out "data dir: verify reads the identity" \
		'^identity +.*/identity: node 1, cluster [0-9a-f]{32}' &&
	check "data dir: no note once the node is gone" \
		sh -c "! grep -q '^NOTE' '$RS_OUT'"
assert_exit 0 "$RSCTL" log inspect "$DD" &&
	assert_out "data dir: inspect says what it read" '^data dir ' &&
	assert_out "data dir: inspect shows the store's state" \
		'^state at version [0-9]+ ' &&
	assert_out "data dir: inspect lists $bseg" \
		"^  $bseg +[0-9]+ +[0-9]+ +$best " &&
	assert_out "data dir: inspect shows metadata" \
		'^  metadata1 +version [0-9]+, term [0-9]+, voted for [0-9]+' &&
	assert_out "data dir: inspect checks the snapshot" \
		'state at version [0-9]+, epoch [0-9]+, image [0-9]+ bytes, valid' &&
	assert_out "data dir: inspect shows the identity" '^identity .*: node 1,'
assert_exit 0 "$RSCTL" log dump "$DD" && cp "$RS_OUT" "$RS_TMP/dump.dd" &&
	assert_exit 0 "$RSCTL" log dump "$DD/store" &&
	check "data dir: dump prints the store's journal" \
		cmp -s "$RS_OUT" "$RS_TMP/dump.dd"
assert_exit 0 "$RSCTL" log verify "$DD/store" &&
	assert_out "the store dir alone: as before" \
		'^OK: every record and checkpoint verified$' &&
	check "the store dir alone: no word of the Raft log" \
		sh -c "! grep -Eq '^(raft|metadata|identity) ' '$RS_OUT'"
check "good data dir: every file byte-identical" \
	[ "$before" = "$(tree_digest "$DD")" ]

# data_case NAME: a fresh copy of the data dir in $CASE.
data_case() {
	CASE=$RS_TMP/dd-$1
	cp -a "$DD" "$CASE"
}

# A flipped byte in the data of a middle batch of the fullest segment.
data_case flip
read -r boff _ bend < <(sed -n "$(((best + 1) / 2))p" "$RS_TMP/b.$bseg")
flip_byte "$CASE/raft/$bseg" "$((bend - 3))"
before=$(tree_digest "$CASE")
assert_exit 1 "$RSCTL" log verify "$CASE" &&
	assert_out "raft flip: verify names the file and offset" \
		"^CORRUPT +$CASE/raft/$bseg at offset $boff: " &&
	assert_out "raft flip: verify says FAILED" '^FAILED'
assert_exit 1 "$RSCTL" log inspect "$CASE" &&
	assert_out "raft flip: inspect names the file and offset" \
		"^CORRUPT +$CASE/raft/$bseg at offset $boff: " &&
	assert_out "raft flip: inspect marks the segment" \
		"^  $bseg .* corrupt at byte $boff"
check "raft flip: every file byte-identical" \
	[ "$before" = "$(tree_digest "$CASE")" ]

# The last open segment cut in the middle of its last batch: the trace of
# a crash, which raftstored cuts at its next start.
data_case torn
read -r toff _ tend < <(tail -n 1 "$RS_TMP/b.$oseg")
truncate -s "$(((toff + tend) / 2))" "$CASE/raft/$oseg"
before=$(tree_digest "$CASE")
assert_exit 1 "$RSCTL" log verify "$CASE" &&
	assert_out "raft torn: verify reports a torn tail" \
		"^TORN +$CASE/raft/$oseg at offset $toff: torn tail"
assert_exit 0 "$RSCTL" log inspect "$CASE" &&
	assert_out "raft torn: inspect notes it" \
		"^TORN +$CASE/raft/$oseg at offset $toff: torn tail" &&
	assert_out "raft torn: inspect marks the segment" \
		"^  $oseg .* torn at byte $toff"
check "raft torn: not truncated, every file byte-identical" \
	[ "$before" = "$(tree_digest "$CASE")" ]

# metadata1 with a format c-raft 0.15 does not write; with an even version;
# cut short (a crash's trace, which c-raft deletes: inspect allows it).
data_case meta
put_u64 "$CASE/raft/metadata1" 0 7
before=$(tree_digest "$CASE")
assert_exit 1 "$RSCTL" log verify "$CASE" &&
	assert_out "bad metadata: verify names it" \
		"^FORMAT +$CASE/raft/metadata1 at offset 0: format version 7"
assert_exit 1 "$RSCTL" log inspect "$CASE" &&
	assert_out "bad metadata: inspect names it" \
		"^FORMAT +$CASE/raft/metadata1 at offset 0"
check "bad metadata: every file byte-identical" \
	[ "$before" = "$(tree_digest "$CASE")" ]
data_case meta-parity
put_u64 "$CASE/raft/metadata1" 8 4
assert_exit 1 "$RSCTL" log verify "$CASE" &&
	assert_out "metadata version of the wrong parity" \
		"^CORRUPT +$CASE/raft/metadata1 at offset 8: version 4 is even"
data_case meta-short
truncate -s 20 "$CASE/raft/metadata1"
assert_exit 1 "$RSCTL" log verify "$CASE" &&
	assert_out "short metadata: verify reports it" \
		"^TORN +$CASE/raft/metadata1 at offset 20"
assert_exit 0 "$RSCTL" log inspect "$CASE"

# A snapshot: its .meta's checksum, its data's LZ4 frame and image.
data_case snapmeta
flip_byte "$CASE/raft/$snapmeta" 34
assert_exit 1 "$RSCTL" log verify "$CASE" &&
	assert_out "snapshot .meta: checksum mismatch named" \
		"^CORRUPT +$CASE/raft/$snapmeta at offset 8: checksum mismatch"
data_case snapdata
snapdata=${snapmeta%.meta}
flip_byte "$CASE/raft/$snapdata" "$(($(stat -c %s "$CASE/raft/$snapdata") / 2))"
assert_exit 1 "$RSCTL" log verify "$CASE" &&
	assert_out "snapshot data: corruption named" \
		"^CORRUPT +$CASE/raft/$snapdata"
assert_exit 1 "$RSCTL" log inspect "$CASE"

# The identity file.
data_case ident
flip_byte "$CASE/identity" 20
assert_exit 1 "$RSCTL" log verify "$CASE" &&
	assert_out "identity: corruption named" "^CORRUPT +$CASE/identity"
assert_exit 1 "$RSCTL" log inspect "$CASE"

# A restored data dir: its snapshot is raw, checked all the same.
before=$(tree_digest "$RESTORED")
assert_exit 0 "$RSCTL" log verify "$RESTORED" &&
	assert_out "restored: verify says OK" '^OK' &&
	assert_out "restored: no store yet" '^journal +.*: absent'
assert_exit 0 "$RSCTL" log inspect "$RESTORED" &&
	assert_out "restored: inspect checks the raw snapshot" \
		'^    data [0-9]+ bytes: state at version [0-9]+, epoch [0-9]+, image [0-9]+ bytes, valid'
rsnap=''
for f in "$RESTORED"/raft/snapshot-*; do
	case $f in *.meta) ;; *) rsnap=$(basename "$f") ;; esac
done
[ -n "$rsnap" ] || die "the restored data dir holds no snapshot"
flip_byte "$RESTORED/raft/$rsnap" 40
assert_exit 1 "$RSCTL" log verify "$RESTORED" &&
	assert_out "restored: a flipped byte in the image" \
		"^CORRUPT +$RESTORED/raft/$rsnap at offset 32: data: image checksum mismatch"
flip_byte "$RESTORED/raft/$rsnap" 40
check "restored: every file byte-identical" \
	[ "$before" = "$(tree_digest "$RESTORED")" ]

rs_finish
