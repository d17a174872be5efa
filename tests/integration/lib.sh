# lib.sh: helpers shared by the integration tests (bash; source it).
#
#   rs_init NAME        locate the build, make a temp dir ($RS_TMP) that is
#                       removed on exit, and reset the counters
#   rs_on_exit CMD      run CMD at exit, before the temp dir goes (e.g. to
#                       kill a daemon the test started); last added runs first
#   pass NAME / fail NAME [DETAIL]
#                       count one check
#   check NAME CMD...   pass if CMD succeeds, else fail
#   assert_exit CODE CMD...
#                       run CMD, keep its stdout+stderr in $RS_OUT, and
#                       check its exit status is CODE
#   assert_out NAME ERE check that $RS_OUT matches the extended regex ERE
#   tree_digest DIR     print the path and sha256 of every file under DIR,
#                       and every directory, sorted: equal digests mean no
#                       byte, file or directory changed
#   rs_finish           print "NAME: P passed, F failed"; exit 1 on failure
#   die MSG             a broken test setup: exit 99 (automake's hard error)
#
# Run by `make check` (which exports top_builddir and top_srcdir), or by hand
# from the top of a build tree, where both default to ".".

: "${top_builddir:=.}"
: "${top_srcdir:=.}"

RS_NAME=
RS_TMP=
RS_OUT=
RS_PASSED=0
RS_FAILED=0
RS_EXIT_HOOKS=()

die() {
	echo "${RS_NAME:-test}: ERROR: $*" >&2
	exit 99
}

_rs_exit() {
	local rc=$? i
	for ((i = ${#RS_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
		eval "${RS_EXIT_HOOKS[i]}" || true
	done
	if [ -n "$RS_TMP" ] && [ -d "$RS_TMP" ]; then
		if [ -n "${RS_KEEP_TMP:-}" ]; then
			echo "$RS_NAME: kept $RS_TMP" >&2
		else
			rm -rf -- "$RS_TMP"
		fi
	fi
	exit "$rc"
}

rs_on_exit() {
	RS_EXIT_HOOKS+=("$*")
}

rs_init() {
	RS_NAME=$1
	RS_PASSED=0
	RS_FAILED=0
	[ -d "$top_builddir" ] || die "top_builddir '$top_builddir' is not a directory"
	RS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rs-$RS_NAME-XXXXXX") ||
		die "cannot create a temporary directory"
	RS_OUT=$RS_TMP/.last-output
	trap _rs_exit EXIT
	trap 'exit 130' INT TERM
}

pass() {
	RS_PASSED=$((RS_PASSED + 1))
	echo "ok   - $1"
}

fail() {
	RS_FAILED=$((RS_FAILED + 1))
	echo "FAIL - $1${2:+: $2}"
}

check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# Show what a failing command printed, briefly.
_rs_show_out() {
	sed -n '1,20s/^/     | /p' "$RS_OUT"
}

# A command line as a short name: no temp dir or build dir prefixes.
_rs_cmd_name() {
	local s="$*"
	s=${s//"$RS_TMP/"/}
	s=${s//"$top_builddir/"/}
	echo "$s"
}

assert_exit() {
	local want=$1 rc name
	shift
	name="exit $want: $(_rs_cmd_name "$@")"
	"$@" >"$RS_OUT" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		pass "$name"
		return 0
	fi
	fail "$name" "got exit $rc"
	_rs_show_out
	return 1
}

assert_out() {
	if grep -Eq -- "$2" "$RS_OUT"; then
		pass "$1"
		return 0
	fi
	fail "$1" "output does not match /$2/"
	_rs_show_out
	return 1
}

tree_digest() {
	(cd "$1" && find . -type d | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
}

rs_finish() {
	echo "$RS_NAME: $RS_PASSED passed, $RS_FAILED failed"
	[ "$RS_FAILED" -eq 0 ] && [ "$RS_PASSED" -gt 0 ]
	exit $?
}
