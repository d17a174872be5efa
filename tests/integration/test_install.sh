#!/usr/bin/env bash
# make install into a DESTDIR, and check the tree (issue 14, sections 1-2):
#   * exactly the expected files, with their modes: raftstored in sbin,
#     rsctl in bin, rsbench in pkglibexecdir (nothing else in bin or sbin),
#     the library with its soname and only raftstore_* exported, the one
#     public header (which compiles alone), raftstore.pc, the unit,
#     sysusers.d and tmpfiles.d entries, two man pages, the examples,
#     the bash completions;
#   * the installed binaries run --version (rsbench --help);
#   * the unit names the installed paths and `systemd-analyze verify`
#     accepts it (with its man pages found in the DESTDIR);
#   * make uninstall leaves no file behind.
# Exit 77 (skipped) only when every other check passed and systemd-analyze
# is not installed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/lib.sh
. "$here/lib.sh"
rs_init test_install

# A make run of the build tree's Makefile, not of the make running us.
bmake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory \
		-C "$top_builddir" "$@"
}
# The value of an (expanded) installation variable of the Makefile.
mkvar() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory \
		-C "$top_builddir" -f Makefile -f - "print-$1" <<'EOF'
print-%:
	@echo '$($*)'
EOF
}

dest=$RS_TMP/dest
bmake install DESTDIR="$dest" >"$RS_TMP/install.log" 2>&1 ||
	die "make install failed: $(tail -20 "$RS_TMP/install.log")"

for v in bindir sbindir pkglibexecdir libdir includedir mandir docdir \
	sysconfdir systemdsystemunitdir sysusersdir tmpfilesdir bashcompletiondir \
	PACKAGE_VERSION; do
	val=$(mkvar "$v")
	[ -n "$val" ] || die "cannot read $v from the Makefile"
	printf -v "$v" '%s' "$val"
done

# path (under DESTDIR) and mode of every file make install must write.
expected=(
	"$sbindir/raftstored 755"
	"$bindir/rsctl 755"
	"$pkglibexecdir/rsbench 755"
	"$libdir/libraftstore.so.0.0.0 755"
	"$libdir/libraftstore.so.0 777"
	"$libdir/libraftstore.so 777"
	"$libdir/libraftstore.la 755"
	"$libdir/pkgconfig/raftstore.pc 644"
	"$includedir/raftstore.h 644"
	"$systemdsystemunitdir/raftstored.service 644"
	"$sysusersdir/raftstore.conf 644"
	"$tmpfilesdir/raftstore.conf 644"
	"$mandir/man8/raftstored.8 644"
	"$mandir/man1/rsctl.1 644"
	"$docdir/examples/raftstored.conf 644"
	"$docdir/examples/client.c 644"
	"$bashcompletiondir/rsctl 644"
	"$bashcompletiondir/raftstored 644"
)
for e in "${expected[@]}"; do
	path=${e% *} mode=${e##* }
	got=$(stat -c %a "$dest$path" 2>/dev/null || echo absent)
	if [ "$got" = "$mode" ]; then
		pass "installed $path ($mode)"
	else
		fail "installed $path" "mode $got, expected $mode"
	fi
done
(cd "$dest" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort) \
	>"$RS_TMP/got"
printf '%s\n' "${expected[@]}" | sed 's/ [0-9]*$//' | sort >"$RS_TMP/want"
if cmp -s "$RS_TMP/got" "$RS_TMP/want"; then
	pass "nothing else installed"
else
	fail "nothing else installed" "$(diff "$RS_TMP/want" "$RS_TMP/got")"
fi

# The binaries run from where they were installed.
assert_exit 0 "$dest$sbindir/raftstored" --version
assert_out "raftstored --version" "^raftstored $PACKAGE_VERSION"
assert_exit 0 "$dest$bindir/rsctl" --version
assert_out "rsctl --version" "^rsctl $PACKAGE_VERSION"
assert_exit 0 "$dest$pkglibexecdir/rsbench" --help
assert_out "rsbench --help" "usage: rsbench"

# The library: soname, and only the public API exported.
lib=$dest$libdir/libraftstore.so.0.0.0
if objdump -p "$lib" | grep -Eq 'SONAME +libraftstore\.so\.0$'; then
	pass "soname libraftstore.so.0"
else
	fail "soname libraftstore.so.0" "$(objdump -p "$lib" | grep SONAME)"
fi
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort \
	>"$RS_TMP/exported"
others=$(grep -v '^raftstore_' "$RS_TMP/exported")
if [ -z "$others" ] && grep -qx raftstore_open "$RS_TMP/exported"; then
	pass "only raftstore_* exported ($(wc -l <"$RS_TMP/exported") symbols)"
else
	fail "only raftstore_* exported" "also: $others"
fi
# Every function the header declares is exported, and the reverse.
grep -Eo '\braftstore_[a-z_]+\(' "$dest$includedir/raftstore.h" | tr -d '(' |
	sort -u >"$RS_TMP/declared"
if cmp -s "$RS_TMP/declared" "$RS_TMP/exported"; then
	pass "the header declares exactly what the library exports"
else
	fail "header and exports agree" "$(diff "$RS_TMP/declared" "$RS_TMP/exported")"
fi

# The public header stands alone: standard headers only, and it compiles
# by itself with nothing but the installed include dir.
if grep '^#include' "$dest$includedir/raftstore.h" | grep -vq '<std[a-z]*\.h>'; then
	fail "raftstore.h includes only standard headers" \
		"$(grep '^#include' "$dest$includedir/raftstore.h")"
else
	pass "raftstore.h includes only standard headers"
fi
printf '#include <raftstore.h>\nint main(void) { return RAFTSTORE_OK; }\n' \
	>"$RS_TMP/alone.c"
check "raftstore.h compiles alone (C99, -pedantic)" \
	"${CC:-cc}" -std=c99 -pedantic -Wall -Wextra -Werror \
	-I"$dest$includedir" -o "$RS_TMP/alone" "$RS_TMP/alone.c"

pc=$dest$libdir/pkgconfig/raftstore.pc
check "raftstore.pc: version" grep -qx "Version: $PACKAGE_VERSION" "$pc"
check "raftstore.pc: -lraftstore" grep -q '^Libs: .*-lraftstore' "$pc"

# The unit names the installed daemon and config file.
unit=$dest$systemdsystemunitdir/raftstored.service
check "unit ExecStart" grep -qx \
	"ExecStart=$sbindir/raftstored --config $sysconfdir/raftstore/raftstored.conf" \
	"$unit"
check "unit runs as raftstore" grep -qx 'User=raftstore' "$unit"
check "sysusers entry" grep -Eq '^u raftstore ' "$dest$sysusersdir/raftstore.conf"
check "tmpfiles entry" grep -Eq '^d /var/lib/raftstore 0700 raftstore raftstore' \
	"$dest$tmpfilesdir/raftstore.conf"

verified=no
if command -v systemd-analyze >/dev/null; then
	# verify checks that ExecStart exists: point it into the DESTDIR.
	mkdir -p "$RS_TMP/unit"
	sed "s|^ExecStart=$sbindir/|ExecStart=$dest$sbindir/|" "$unit" \
		>"$RS_TMP/unit/raftstored.service"
	if MANPATH=$dest$mandir systemd-analyze verify \
		"$RS_TMP/unit/raftstored.service" >"$RS_TMP/verify" 2>&1 &&
		! grep -q . "$RS_TMP/verify"; then
		pass "systemd-analyze verify"
	else
		fail "systemd-analyze verify" "$(cat "$RS_TMP/verify")"
	fi
	verified=yes
fi

bmake uninstall DESTDIR="$dest" >"$RS_TMP/uninstall.log" 2>&1 ||
	die "make uninstall failed: $(tail -20 "$RS_TMP/uninstall.log")"
left=$(cd "$dest" && find . \( -type f -o -type l \))
if [ -z "$left" ]; then
	pass "make uninstall removes every file"
else
	fail "make uninstall removes every file" "left: $left"
fi

if [ "$verified" = no ] && [ "$RS_FAILED" -eq 0 ]; then
	echo "test_install: every other check passed; systemd-analyze is not" \
		"installed (Debian package systemd), so the unit was not verified: SKIP"
	exit 77
fi
rs_finish
