#!/usr/bin/env bash
# The whole test suite: install dependencies, build with warnings as errors,
# run `make check`, run it again under AddressSanitizer and
# UndefinedBehaviorSanitizer, compile the release build (-DNDEBUG) with
# warnings as errors, and run `make distcheck`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/deps.sh"

status=0
run_check() { # name, build dir, configure flags
	echo "== $1: configure $3"
	BUILD_DIR=$2 CONFIGURE_FLAGS=$3 "$top/scripts/build.sh"
	if ! make -C "$2" -j"$(nproc)" check; then
		echo "== $1: FAILED; logs:"
		find "$2/tests" -name '*.log' -newer "$2/Makefile" -exec sh -c \
			'grep -q "^FAIL\|^ERROR" "$1" 2>/dev/null && { echo "--- $1"; tail -n 60 "$1"; }' _ {} \;
		status=1
	fi
}

# Both builds compile in the test-only fault hooks the integration tests use.
run_check "debug build" "$top/build" "--enable-debug --enable-fault-hooks"
run_check "sanitizer build" "$top/build-sanitize" \
	"--enable-debug --enable-sanitize --enable-fault-hooks"
# The release build (what `./configure && make` gives a user, assertions
# off) must compile without a warning too: variables read only by assert()
# and format widths show up only there.
echo "== release build: CFLAGS='-O2 -DNDEBUG -Werror', compile only"
# A release dir from before the client library was shared (no librscore.la)
# holds non-PIC objects that would be reused: start it afresh.
[ -f "$top/build-release/librscore.la" ] || rm -rf "$top/build-release"
mkdir -p "$top/build-release"
if ! (cd "$top/build-release" && "$top/configure" CFLAGS="-O2 -DNDEBUG -Werror" >/dev/null &&
	make -j"$(nproc)" all >/dev/null); then
	echo "== release build: FAILED"
	status=1
fi
echo "== make distcheck"
if ! make -C "$top/build" distcheck >"$top/build/distcheck.log" 2>&1; then
	tail -n 80 "$top/build/distcheck.log"
	echo "== distcheck: FAILED"
	status=1
fi
if [ $status -eq 0 ]; then
	echo "== all test stages passed"
fi
exit $status
