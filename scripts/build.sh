#!/usr/bin/env bash
# Configure and build raftstore out of tree in build/ (or in $BUILD_DIR, with
# configure flags from $CONFIGURE_FLAGS; by default those of test.sh's debug
# build, so the two share build/).  Used by demo.sh and test.sh.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
build=${BUILD_DIR:-$top/build}
mkdir -p "$build"
cd "$build"
flags=${CONFIGURE_FLAGS:---enable-debug --enable-fault-hooks}
if [ ! -f Makefile ] || [ "$(cat .rs-configure-flags 2>/dev/null)" != "$flags" ]; then
	# shellcheck disable=SC2086
	"$top/configure" $flags >/dev/null
	echo "$flags" >.rs-configure-flags
fi
make -j"$(nproc)" >/dev/null
