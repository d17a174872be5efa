#!/usr/bin/env bash
# Run raftstore's fuzz targets (tests/fuzz/fuzz_<name>.c) with libFuzzer.
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]     (make fuzz FUZZ_ARGS=...)
#
# Installs Debian's clang if it is missing, builds the library once in
# build-fuzz/ with clang and -fsanitize=fuzzer-no-link,address,undefined,
# links each target with -fsanitize=fuzzer,address,undefined, and runs it
# for N seconds (default 600) at nice 19, one target at a time.  The
# committed seeds (tests/fuzz/corpus/<name>/) are read; what libFuzzer adds
# goes to build-fuzz/corpus/<name>/, so the tree only grows by what is
# worth keeping.  A crash (or leak, timeout, out-of-memory) input is copied
# into tests/fuzz/corpus/<name>/ as a regression input that make check
# then replays; commit it with the fix.  Prints, per target: seconds,
# execs, execs/s, corpus size (files in the working corpus) and crashes.
# Exits 1 if any target crashed.  docs/fuzzing.md has the figures.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=600
targets=()
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
	--seconds=*) seconds=${1#--seconds=}; shift ;;
	-h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "fuzz.sh: unknown flag $1" >&2; exit 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: --seconds wants a number" >&2; exit 2 ;; esac
if [ ${#targets[@]} -eq 0 ]; then
	for f in "$top"/tests/fuzz/fuzz_*.c; do
		n=$(basename "$f" .c)
		targets+=("${n#fuzz_}")
	done
fi
for t in "${targets[@]}"; do
	[ -f "$top/tests/fuzz/fuzz_$t.c" ] || { echo "fuzz.sh: no target $t (tests/fuzz/fuzz_$t.c)" >&2; exit 2; }
done

if ! command -v clang >/dev/null; then
	echo "fuzz.sh: installing clang (Debian package)"
	apt-get install -y clang >/dev/null
fi

build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-g -O1 -fno-omit-frame-pointer $san"
mkdir -p "$build"
if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ] ||
	[ "$top/Makefile.am" -nt "$top/configure" ]; then
	(cd "$top" && autoreconf -fi >/dev/null 2>&1)
fi
if [ ! -f "$build/Makefile" ]; then
	(cd "$build" && "$top/configure" CC=clang \
		CFLAGS="$cflags -fsanitize=fuzzer-no-link" >/dev/null)
fi
# A build dir from before the client library was shared (no librscore.la)
# holds non-PIC objects that libtool would not rebuild.
if [ -f "$build/Makefile" ] && [ ! -f "$build/librscore.la" ]; then
	make -C "$build" clean >/dev/null 2>&1 || true
fi
nice -n 19 make -C "$build" -j"$(nproc)" librscore.la >/dev/null
# What the library's own compile and link lines use.
mkvar() { sed -n "s/^$1 = //p" "$build/Makefile" | head -1; }
# DEFS holds quoted strings (-DPACKAGE_STRING=\"raftstore\ 0.1.0\"): let the
# shell split it as make's would.
eval "defs=($(mkvar DEFS))"
libs="$(mkvar RAFT_LIBS) $(mkvar UV_LIBS) $(mkvar LZ4_LIBS) $(mkvar JANSSON_LIBS)"
incs="$(mkvar RAFT_CFLAGS) $(mkvar UV_CFLAGS) $(mkvar LZ4_CFLAGS) $(mkvar JANSSON_CFLAGS)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}

status=0
summary=()
for t in "${targets[@]}"; do
	bin="$build/fuzz_$t"
	# shellcheck disable=SC2086
	clang -std=c11 $cflags -fsanitize=fuzzer "${defs[@]}" $incs -I"$top" -I"$build" \
		-o "$bin" "$top/tests/fuzz/fuzz_$t.c" "$top/tests/fuzz/fuzz_util.c" \
		"$build/.libs/librscore.a" $libs
	work="$build/corpus/$t"
	crashes="$build/crashes/$t"
	rm -rf "$crashes"
	mkdir -p "$work" "$crashes"
	log="$build/fuzz_$t.log"
	echo "fuzz.sh: $t for ${seconds}s (log: $log)"
	rc=0
	nice -n 19 "$bin" -max_total_time="$seconds" -print_final_stats=1 \
		-timeout=25 -rss_limit_mb=2048 -artifact_prefix="$crashes/" \
		"$work" "$top/tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	corpus=$(find "$work" -type f | wc -l)
	found=0
	for a in "$crashes"/crash-* "$crashes"/leak-* "$crashes"/timeout-* "$crashes"/oom-*; do
		[ -f "$a" ] || continue
		cp "$a" "$top/tests/fuzz/corpus/$t/"
		found=$((found + 1))
	done
	if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then
		found=1 # died without an artifact: the log says why
	fi
	[ "$found" -eq 0 ] || status=1
	summary+=("$(printf '%-11s %6ss %12s execs %8s/s  corpus %6s  crashes %s' \
		"$t" "$seconds" "${execs:-?}" "${rate:-?}" "$corpus" "$found")")
	rm -f "$bin"
done
echo "fuzz.sh: results"
printf '  %s\n' "${summary[@]}"
if [ "$status" -ne 0 ]; then
	echo "fuzz.sh: crashes found; inputs copied into tests/fuzz/corpus/<target>/, logs in $build" >&2
fi
exit "$status"
