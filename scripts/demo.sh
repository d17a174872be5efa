#!/usr/bin/env bash
# The README's first command.  Installs dependencies, builds, and shows the
# storage engine at work: fill a store, verify, inspect and dump it with
# `rsctl log`, then corrupt one byte and watch `rsctl log verify` name it.
# (The three-node cluster arrives with the coordinator; until then this is
# the main job.)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh"
bin="$top/build"
dir=$(mktemp -d /tmp/raftstore-demo-XXXXXX)
trap 'rm -rf "$dir"' EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

run "$bin/rsbench" fill --dir "$dir/store" --records 500
run "$bin/rsctl" log verify "$dir/store"
run "$bin/rsctl" log inspect "$dir/store"
say "$bin/rsctl log dump $dir/store --from 495"
"$bin/rsctl" log dump "$dir/store" --from 495
seg=$(ls "$dir/store/journal" | head -n 2 | tail -n 1)
say "flip one byte in the middle of journal/$seg, then verify again"
python3 - "$dir/store/journal/$seg" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x10
open(p, 'wb').write(b)
PY
set +e
"$bin/rsctl" log verify "$dir/store"
rc=$?
set -e
echo "(rsctl log verify exited $rc: 1 means corrupt or torn)"
[ $rc -eq 1 ]
