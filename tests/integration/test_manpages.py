#!/usr/bin/env python3
"""The man pages against --help (issue 14, section 1).

The lists come from the binaries at test time, so a flag, command or
subcommand added later without a man entry fails here:

  * every flag (--name or -x) and $VARIABLE that `raftstored --help`
    prints appears in raftstored(8);
  * every command of `rsctl --help` has a .SS section in rsctl(1) named
    after it; each `rsctl CMD --help` exits 0 and its flags and
    $VARIABLEs appear in the page; each subcommand it names (its own
    "Commands:" list, `rsctl CMD SUB` on a usage line, `rsctl CMD a|b` or
    `<a|b>` anywhere, `rsctl CMD SUB --help` anywhere) appears as
    "CMD SUB" and its own `rsctl CMD SUB --help` flags appear too;
  * both pages render without groff warnings and name the version that
    --version prints;
  * the checker itself finds a flag missing from a page that lacks it.
"""
import os
import re
import shutil
import subprocess

from harness import RAFTSTORED, RSCTL, run_tests

SRCDIR = os.environ.get("top_srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
MAN8 = os.path.join(SRCDIR, "man", "raftstored.8")
MAN1 = os.path.join(SRCDIR, "man", "rsctl.1")

FLAG = re.compile(r"(?<![\w$-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
ENVVAR = re.compile(r"\$([A-Z][A-Z0-9_]+)")
# "rsctl CMD SUB", "rsctl CMD <a|b|c>" or "rsctl CMD a|b|c".
RSCTL_SUB = re.compile(
    r"\brsctl\s+([a-z][a-z-]*)\s+(<[a-z|-]+>|[a-z][a-z-]*(?:\|[a-z][a-z-]*)*)")
# "rsctl CMD SUB --help", in prose too.
RSCTL_SUB_HELP = re.compile(r"\brsctl\s+([a-z][a-z-]*)\s+([a-z][a-z-]*)\s+--help\b")


def man_text(path):
    """The page's text with roff escapes and fonts removed, blanks
    collapsed: what a reader sees, near enough to search."""
    with open(path, encoding="utf-8") as f:
        s = f.read()
    s = re.sub(r"^\.\\\".*$", "", s, flags=re.M)          # comments
    s = re.sub(r"\\f(\(..|\[[^]]*\]|.)", "", s)           # fonts
    s = s.replace("\\-", "-").replace("\\(lq", '"').replace("\\(rq", '"')
    s = s.replace("\\e", "\\").replace("\\&", "")
    return s


def words(s):
    return " ".join(s.split())


def helptext(*args):
    p = subprocess.run(list(args) + ["--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "%s --help exited %d:\n%s" % (
        " ".join(args), p.returncode, out)
    return out


def present(token, text):
    return re.search(r"(?<![\w-])" + re.escape(token) + r"(?![\w-])",
                     text) is not None


def missing_from(help_out, text, where):
    """What help_out names (flags, $VARIABLES) that text lacks."""
    miss = []
    for flag in sorted(set(FLAG.findall(help_out))):
        if not present(flag, text):
            miss.append("%s: flag %s" % (where, flag))
    for var in sorted(set(ENVVAR.findall(help_out))):
        if not present(var, text):
            miss.append("%s: variable $%s" % (where, var))
    return miss


def command_list(help_out):
    """The names listed under a "Commands:" heading, two spaces in (the
    deeper lines continue a description)."""
    cmds, inside = [], False
    for line in help_out.splitlines():
        if line.strip() == "Commands:":
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            m = re.match(r"  ([a-z][a-z-]*)\s", line)
            if m:
                cmds.append(m.group(1))
    return cmds


def commands(top_help):
    cmds = command_list(top_help)
    assert cmds, "no commands found in rsctl --help:\n" + top_help
    return cmds


def subcommands(cmd, cmd_help):
    """The subcommands cmd's help names: its own "Commands:" list, the
    words after "rsctl CMD" on usage lines (those starting with rsctl or
    Usage:), alternatives "rsctl CMD a|b" or "<a|b>" anywhere, and "rsctl
    CMD SUB --help" anywhere.  A lone word after "rsctl CMD" in prose, or
    a placeholder such as <command>, is not one."""
    subs = list(command_list(cmd_help))
    for line in cmd_help.splitlines():
        usage = re.match(r"\s*(Usage:\s*)?rsctl\s", line) is not None
        names = [sub for c, sub in RSCTL_SUB_HELP.findall(line) if c == cmd]
        for c, sub in RSCTL_SUB.findall(line):
            alternatives = "|" in sub
            if c != cmd or (sub.startswith("<") and not alternatives) or \
                    not (usage or alternatives):
                continue
            names += sub.strip("<>").split("|")
        subs += [n for n in names if n not in subs]
    return list(dict.fromkeys(subs))


def rsctl_missing(text):
    """Everything rsctl's help texts name that the page text lacks."""
    top = helptext(RSCTL)
    miss = missing_from(top, text, "rsctl --help")
    sections = [words(m) for m in
                re.findall(r"^\.SS\s+(.*)$", text, flags=re.M)]
    flat = words(text)
    cmds = commands(top)
    for cmd in cmds:
        if not any(s.strip('"').split()[0] == cmd for s in sections if s):
            miss.append("rsctl %s: no .SS section for the command" % cmd)
        h = helptext(RSCTL, cmd)
        miss += missing_from(h, text, "rsctl %s --help" % cmd)
        for sub in subcommands(cmd, h):
            if not re.search(r"\b%s\s+(\S*\|)?%s\b" % (
                    re.escape(cmd), re.escape(sub)), flat):
                miss.append("rsctl %s %s: subcommand not in the page" %
                            (cmd, sub))
            miss += missing_from(helptext(RSCTL, cmd, sub), text,
                                 "rsctl %s %s --help" % (cmd, sub))
    return cmds, miss


def test_raftstored_page_has_every_flag():
    h = helptext(RAFTSTORED)
    flags = set(FLAG.findall(h))
    assert {"--id", "--data-dir", "--config", "--help"} <= flags, flags
    miss = missing_from(h, man_text(MAN8), "raftstored --help")
    assert not miss, "raftstored(8) lacks:\n  " + "\n  ".join(miss)


def test_rsctl_page_has_every_command_and_flag():
    cmds, miss = rsctl_missing(man_text(MAN1))
    assert {"get", "put", "txn", "watch", "log", "config"} <= set(cmds), cmds
    assert not miss, "rsctl(1) lacks:\n  " + "\n  ".join(miss)


def test_checker_finds_what_is_missing():
    """A page without --serializable, without the events section, without
    "config list" and without "members add" (named only in the prose of
    `rsctl members --help`, as "add|promote|remove") must be reported on
    all four counts; raftstored(8) without --join too."""
    text = man_text(MAN1)
    text = re.sub(r"(?<![\w-])--serializable(?![\w-])", "", text)
    text = re.sub(r"^\.SS\s+\"?events.*$", "", text, flags=re.M)
    text = text.replace("config list", "").replace("members add", "")
    _, miss = rsctl_missing(text)
    joined = "\n".join(miss)
    assert "flag --serializable" in joined, joined
    assert "rsctl events: no .SS section" in joined, joined
    assert "rsctl config list: subcommand" in joined, joined
    assert "rsctl members add: subcommand" in joined, joined
    text = re.sub(r"(?<![\w-])--join(?![\w-])", "", man_text(MAN8))
    miss = missing_from(helptext(RAFTSTORED), text, "raftstored --help")
    assert miss == ["raftstored --help: flag --join"], miss


def test_pages_render_and_name_the_version():
    out = subprocess.run([RAFTSTORED, "--version"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    version = out.split()[1]
    for page in (MAN8, MAN1):
        with open(page, encoding="utf-8") as f:
            th = [line for line in f if line.startswith(".TH ")]
        assert len(th) == 1 and ('"raftstore %s"' % version) in th[0], (
            page, th, version)
        if shutil.which("groff") is None:
            print("groff not installed: rendering not checked")
            continue
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.returncode == 0 and not p.stderr, (page, p.stderr.decode())


if __name__ == "__main__":
    run_tests([test_raftstored_page_has_every_flag,
               test_rsctl_page_has_every_command_and_flag,
               test_checker_finds_what_is_missing,
               test_pages_render_and_name_the_version])
