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
# The stamp also says that libtool builds shared objects (since the client
# library is installed): objects of an older build dir are not PIC, and
# objects built with other flags are stale, so a changed stamp cleans.
stamp="$flags (shared)"
if [ ! -f Makefile ] || [ "$(cat .rs-configure-flags 2>/dev/null)" != "$stamp" ]; then
	if [ -f Makefile ]; then make clean >/dev/null 2>&1 || true; fi
	# shellcheck disable=SC2086
	"$top/configure" $flags >/dev/null
	echo "$stamp" >.rs-configure-flags
fi
make -j"$(nproc)" >/dev/null
