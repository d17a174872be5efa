#!/usr/bin/env bash
# bash_completion.sh: the bash completion of rsctl and raftstored
# (dist/bash-completion/), sourced into this bash and driven as readline
# drives it (COMP_WORDS, COMP_CWORD, then the completion function).
#
# Checked against the programs' own --help texts, so that a command, a
# subcommand or a flag added to either and not to the completion fails
# here:
#  - `rsctl <TAB>` offers exactly the commands `rsctl --help` lists, and
#    `rsctl --<TAB>` its global options;
#  - `rsctl CMD <TAB>` offers exactly CMD's subcommands (those its help
#    texts name and that accept --help);
#  - `rsctl CMD [SUB] --<TAB>` offers every flag the usage lines and the
#    option list of `rsctl CMD [SUB] --help` give, and none that its help
#    does not mention (but the global options, where --endpoints is one
#    of its flags); the same for raftstored;
#  - a few completions by hand: directories for DIR, files for FILE,
#    nothing for a value, configuration parameters, --log-level levels.
#
# Needs python3 (to read the help texts).  Run by `make check`, or by hand
# from the top of a build tree: tests/integration/bash_completion.sh

set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

rs_init bash_completion

RSCTL=$top_builddir/rsctl
RAFTSTORED=$top_builddir/raftstored
COMPDIR=$top_srcdir/dist/bash-completion
[ -x "$RSCTL" ] || die "$RSCTL not built"
[ -x "$RAFTSTORED" ] || die "$RAFTSTORED not built"
if [ ! -f "$COMPDIR/rsctl" ] || [ ! -f "$COMPDIR/raftstored" ]; then
	die "no completion files in $COMPDIR"
fi
command -v python3 >/dev/null || die "python3 is required"

# shellcheck source=/dev/null
. "$COMPDIR/rsctl" || die "cannot source $COMPDIR/rsctl"
# shellcheck source=/dev/null
. "$COMPDIR/raftstored" || die "cannot source $COMPDIR/raftstored"
check "rsctl's completion is registered" \
	sh -c "echo '$(complete -p rsctl 2>&1)' | grep -q -- '-F _rsctl rsctl'"
check "raftstored's completion is registered" \
	sh -c "echo '$(complete -p raftstored 2>&1)' | grep -q -- '-F _raftstored raftstored'"

# comp FUNCTION WORD...: complete the last WORD of the command line WORD...
# (the program's name first); prints the candidates, sorted, one a line.
comp() {
	local fn=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$fn" 2>/dev/null
	[ "${#COMPREPLY[@]}" -gt 0 ] && printf '%s\n' "${COMPREPLY[@]}" |
		LC_ALL=C sort -u
	return 0
}

# expect_comp NAME WANT FUNCTION WORD...: the candidates, joined by
# spaces, are exactly WANT.
expect_comp() {
	local name=$1 want=$2 got
	shift 2
	got=$(comp "$@" | tr '\n' ' ' | sed 's/ $//')
	if [ "$got" = "$want" ]; then
		pass "$name"
	else
		fail "$name" "got '$got', wanted '$want'"
	fi
}

words() {
	tr ' ' '\n' | sed '/^$/d' | LC_ALL=C sort -u
}

# help_parse MODE PROG CMD SUB <HELP: what a help text lists.
#   commands  the commands under "Commands:" (rsctl --help)
#   subs      subcommand candidates: "rsctl CMD a|b", "rsctl CMD <a|b>",
#             "rsctl CMD a", and the first words under "Commands:"
#   flags     the flags of the usage lines that are about CMD [SUB] (with
#             their continuation lines) and of the option list (lines
#             that start with two spaces and a flag)
#   mentioned every --flag anywhere in the text
#   global    the flags of the "Global options" paragraph (rsctl --help)
help_parse() {
	python3 -c '
import re, sys
mode, prog, cmd, sub = sys.argv[1:5]
text = sys.stdin.read()
lines = text.splitlines()
out = set()
if mode == "global":
    inside = False
    for l in lines:
        if l.startswith("Global options"):
            inside = True
        elif l.strip() == "":
            inside = False
        if inside:
            out.update(re.findall(r"--[a-z][a-z0-9-]*", l))
if mode == "commands" or mode == "subs":
    inside = False
    for l in lines:
        if l.strip() == "Commands:":
            inside = True
            continue
        if inside:
            m = re.match(r"^  ([a-z]+)\b", l)
            if not m:
                if l.strip() == "":
                    inside = False
                continue
            out.add(m.group(1))
if mode == "subs":
    for m in re.finditer(r"\b%s %s <?([a-z]+(?:\|[a-z]+)*)" % (prog, cmd), text):
        out.update(m.group(1).split("|"))
elif mode == "flags":
    groups, usage = [], True
    for l in lines:
        if usage and l.strip() == "":
            usage = False
        if usage:
            s = re.sub(r"^[Uu]sage:", "", l).strip()
            if s.startswith(prog + " ") or s == prog:
                groups.append(s)
            elif groups:
                groups[-1] += " " + s
        elif re.match(r"^  (-[a-zA-Z], )?--[a-z]", l):
            out.update(re.findall(r"--[a-z][a-z0-9-]*", l))
    want = " ".join(w for w in (prog, cmd, sub) if w)
    for g in groups:
        if (g + " ").startswith(want + " ") or (
                not sub and re.match(r"%s %s( |$)" % (prog, cmd) if cmd else prog, g)):
            out.update(re.findall(r"--[a-z][a-z0-9-]*", g))
elif mode == "mentioned":
    out.update(re.findall(r"--[a-z][a-z0-9-]*", text))
print(" ".join(sorted(out)))
' "$@"
}

# same_set NAME WANT GOT: the two space-separated lists hold the same
# words.
same_set() {
	local name=$1 want got
	want=$(echo "$2" | words | tr '\n' ' ')
	got=$(echo "$3" | words | tr '\n' ' ')
	if [ "$want" = "$got" ]; then
		pass "$name"
	else
		fail "$name" "wanted [$want], got [$got]"
	fi
}

# covers NAME NEEDED OFFERED ALLOWED: OFFERED holds every word of NEEDED
# and none outside ALLOWED.
covers() {
	local name=$1 missing extra
	missing=$(comm -23 <(echo "$2" | words) <(echo "$3" | words) | tr '\n' ' ')
	extra=$(comm -13 <(echo "$4" | words) <(echo "$3" | words) | tr '\n' ' ')
	if [ -z "$missing" ] && [ -z "$extra" ]; then
		pass "$name"
	else
		fail "$name" "not offered: [$missing]; not in --help: [$extra]"
	fi
}

# ---- rsctl: commands and subcommands, against rsctl --help ----
"$RSCTL" --help >"$RS_TMP/help" 2>&1 || die "rsctl --help failed"
commands=$(help_parse commands rsctl "" "" <"$RS_TMP/help")
[ -n "$commands" ] || die "no commands found in rsctl --help"
same_set "rsctl <TAB>: every command rsctl --help lists" \
	"$commands" "$(comp _rsctl rsctl "")"
global=$(help_parse global rsctl "" "" <"$RS_TMP/help")
[ -n "$global" ] || die "no global options found in rsctl --help"
covers "rsctl --<TAB>: the global options rsctl --help lists" \
	"$global --help" "$(comp _rsctl rsctl --)" \
	"$(help_parse mentioned rsctl "" "" <"$RS_TMP/help") --help"

# allowed HELPFILE: the flags rsctl may offer after a command whose help
# is HELPFILE: those it mentions, and the global ones if it talks to a
# cluster (its help lists --endpoints).
allowed() {
	local m
	m=$(help_parse mentioned rsctl "" "" <"$1")
	case " $m " in *" --endpoints "*) m="$m $global" ;; esac
	echo "$m --help"
}

for cmd in $commands; do
	"$RSCTL" "$cmd" --help >"$RS_TMP/help.$cmd" 2>&1 ||
		fail "rsctl $cmd --help exits 0"
	# Subcommands: those named in CMD's help, then in each found one's.
	subs=
	todo=$(help_parse subs rsctl "$cmd" "" <"$RS_TMP/help.$cmd")
	while [ -n "$todo" ]; do
		next=
		for s in $todo; do
			case " $subs " in *" $s "*) continue ;; esac
			"$RSCTL" "$cmd" "$s" --help >"$RS_TMP/help.$cmd.$s" 2>&1 ||
				continue # "<command>" and the like: not a subcommand
			subs="$subs $s"
			next="$next $(help_parse subs rsctl "$cmd" "" \
				<"$RS_TMP/help.$cmd.$s")"
		done
		todo=$next
	done
	offered=$(comp _rsctl rsctl "$cmd" "")
	if [ -n "$subs" ]; then
		same_set "rsctl $cmd <TAB>: its subcommands" "$subs --help" \
			"$offered"
		for s in $subs; do
			covers "rsctl $cmd $s --<TAB>: the flags of its --help" \
				"$(help_parse flags rsctl "$cmd" "$s" <"$RS_TMP/help.$cmd.$s") --help" \
				"$(comp _rsctl rsctl "$cmd" "$s" --)" \
				"$(allowed "$RS_TMP/help.$cmd.$s")"
		done
	else
		covers "rsctl $cmd --<TAB>: the flags of its --help" \
			"$(help_parse flags rsctl "$cmd" "" <"$RS_TMP/help.$cmd") --help" \
			"$(comp _rsctl rsctl "$cmd" --)" \
			"$(allowed "$RS_TMP/help.$cmd")"
	fi
done

# ---- raftstored: its flags ----
"$RAFTSTORED" --help >"$RS_TMP/help.raftstored" 2>&1 ||
	die "raftstored --help failed"
covers "raftstored --<TAB>: the flags of its --help" \
	"$(help_parse flags raftstored "" "" <"$RS_TMP/help.raftstored")" \
	"$(comp _raftstored raftstored --)" \
	"$(help_parse mentioned raftstored "" "" <"$RS_TMP/help.raftstored")"

# ---- a few by hand ----
mkdir -p "$RS_TMP/cwd/data1" "$RS_TMP/cwd/data2" || die "mkdir"
: >"$RS_TMP/cwd/backup.rssnap"
cd "$RS_TMP/cwd" || die "cd"
expect_comp "rsctl lo<TAB>" "log" _rsctl rsctl lo
expect_comp "rsctl log <TAB>" "--help dump inspect verify" _rsctl rsctl log ""
expect_comp "rsctl log verify <TAB>: directories only" "data1 data2" \
	_rsctl rsctl log verify ""
expect_comp "rsctl log dump --<TAB>" "--from --help --json --to" \
	_rsctl rsctl log dump --
expect_comp "rsctl log dump DIR --from <TAB>: a version, nothing" "" \
	_rsctl rsctl log dump data1 --from ""
expect_comp "rsctl events d<TAB>: directories" "data1 data2" \
	_rsctl rsctl events d
expect_comp "rsctl events data1 d<TAB>: more directories" "data1 data2" \
	_rsctl rsctl events data1 d
expect_comp "rsctl snapshot save <TAB>: files" "backup.rssnap data1 data2" \
	_rsctl rsctl snapshot save ""
expect_comp "rsctl snapshot restore F --data-dir <TAB>: directories" \
	"data1 data2" _rsctl rsctl snapshot restore backup.rssnap --data-dir ""
expect_comp "rsctl snapshot restore F --id 2 --i<TAB>" \
	"--id --initial-cluster" \
	_rsctl rsctl snapshot restore backup.rssnap --id 2 --i
expect_comp "rsctl members rebuild 3 --data-dir <TAB>" "data1 data2" \
	_rsctl rsctl members rebuild 3 --data-dir ""
expect_comp "rsctl watch --prefix <TAB>: a key, nothing" "" \
	_rsctl rsctl watch --prefix ""
expect_comp "rsctl range a --prefix --l<TAB>" "--limit" \
	_rsctl rsctl range a --prefix --l
expect_comp "rsctl config get <TAB>: the parameters" \
	"batch_count_max batch_delay_us commit_proxies resolvers" \
	_rsctl rsctl config get ""
expect_comp "rsctl config set resolvers <TAB>: a value, nothing" "" \
	_rsctl rsctl config set resolvers ""
expect_comp "rsctl get --endpoints <TAB>: an address, nothing" "" \
	_rsctl rsctl get --endpoints ""
expect_comp "rsctl get --endpoints X --s<TAB>" "--serializable" \
	_rsctl rsctl get --endpoints 127.0.0.1:7101 --s
expect_comp "rsctl --endpoints X -w json g<TAB>: global options first" \
	"get" _rsctl rsctl --endpoints 127.0.0.1:7101 -w json g
expect_comp "rsctl -w <TAB>" "json table" _rsctl rsctl -w ""
expect_comp "rsctl get k --write-out <TAB>" "json table" \
	_rsctl rsctl get k --write-out ""
expect_comp "rsctl --timeout-ms 500 log <TAB>" "--help dump inspect verify" \
	_rsctl rsctl --timeout-ms 500 log ""
expect_comp "rsctl status --w<TAB>" "--write-out" _rsctl rsctl status --w
expect_comp "raftstored --log-level <TAB>" "debug error info warn" \
	_raftstored raftstored --log-level ""
expect_comp "raftstored --linearizable-reads <TAB>" "barrier quorum" \
	_raftstored raftstored --linearizable-reads ""
expect_comp "raftstored --data-dir <TAB>: directories" "data1 data2" \
	_raftstored raftstored --id 1 --data-dir ""
expect_comp "raftstored --config <TAB>: files" "backup.rssnap data1 data2" \
	_raftstored raftstored --config ""
expect_comp "raftstored --snapshot-t<TAB>" \
	"--snapshot-threshold --snapshot-trailing" \
	_raftstored raftstored --snapshot-t
expect_comp "raftstored --snapshot-<TAB>" \
	"--snapshot-log-mib --snapshot-threshold --snapshot-trailing" \
	_raftstored raftstored --snapshot-

rs_finish
