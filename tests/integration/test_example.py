#!/usr/bin/env python3
"""The example client, built against the installed library (issue 14,
section 2, "Done when").

make install goes into a temporary DESTDIR; examples/client.c, as
installed, is compiled with `pkg-config --cflags --libs raftstore` (the
.pc found through PKG_CONFIG_PATH in the DESTDIR, its paths moved there by
PKG_CONFIG_SYSROOT_DIR) and run, with the loader pointed at the DESTDIR's
library, against a real three-node cluster.  Its output, and what rsctl
reads back afterwards, show that each call did what the header promises:
the put, the linearizable get of it, the transaction (run twice: the
counter goes 1 then 2), the range, the delete, the watch replaying the
three commits from the first one's version in order, and the status.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

from harness import BUILD, RSCTL, Cluster, run_tests


def make_env():
    env = dict(os.environ)
    for v in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(v, None)
    return env


def makevar(name):
    """An installation variable of the build's Makefile, expanded."""
    p = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", BUILD, "-f", "Makefile",
         "-f", "-", "print-" + name],
        input=b"print-%:\n\t@echo '$($*)'\n", stdout=subprocess.PIPE,
        env=make_env(), check=True)
    return p.stdout.decode().strip()


class Installed:
    """The build installed into a temporary DESTDIR."""

    def __init__(self):
        self.dest = tempfile.mkdtemp(prefix="rs-example-")
        p = subprocess.run(["make", "--no-print-directory", "-C", BUILD,
                            "install", "DESTDIR=" + self.dest],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=make_env())
        assert p.returncode == 0, p.stdout.decode()[-3000:]
        self.libdir = self.dest + makevar("libdir")
        self.example = self.dest + makevar("docdir") + "/examples/client.c"

    def build_example(self):
        env = dict(os.environ, PKG_CONFIG_PATH=self.libdir + "/pkgconfig",
                   PKG_CONFIG_SYSROOT_DIR=self.dest)
        env.pop("PKG_CONFIG_LIBDIR", None)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs",
                                "raftstore"], stdout=subprocess.PIPE,
                               env=env, check=True).stdout.decode().split()
        assert "-lraftstore" in flags, flags
        assert any(f.startswith("-I" + self.dest) for f in flags), flags
        exe = os.path.join(self.dest, "client")
        cc = os.environ.get("CC", "cc")
        # A sanitizer or coverage build's library needs its runtime in the
        # program too.
        flags += makevar("RS_LDFLAGS").split()
        p = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror",
                            "-o", exe, self.example] + flags,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.returncode == 0, p.stdout.decode()
        return exe

    def run(self, exe, endpoints):
        env = dict(os.environ, LD_LIBRARY_PATH=self.libdir)
        p = subprocess.run([exe, endpoints], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0, "example exited %d:\n%s" % (
            p.returncode, out)
        return out

    def cleanup(self):
        shutil.rmtree(self.dest, ignore_errors=True)


def rsctl(*args):
    return subprocess.run([RSCTL] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=30)


def check_run(out, counter):
    version = re.search(r"^libraftstore (\S+)$", out, re.M)
    assert version, out
    first = int(re.search(r"^put: example/greeting = hello at version (\d+)$",
                          out, re.M).group(1))
    got = re.search(r"^get: example/greeting = hello \(written at (\d+)\)$",
                    out, re.M)
    assert got and int(got.group(1)) == first, out
    txn = re.search(r"^txn: example/counter = (\d+) at version (\d+)$",
                    out, re.M)
    assert txn and int(txn.group(1)) == counter, out
    assert int(txn.group(2)) > first, out
    assert "range: example/counter = %d\n" % counter in out, out
    assert "range: example/greeting = hello\n" in out, out
    deleted = int(re.search(r"^delete: example/greeting at version (\d+)$",
                            out, re.M).group(1))
    watched = re.findall(r"^watch: version (\d+) (.*)$", out, re.M)
    assert watched == [
        (str(first), "set example/greeting = hello"),
        (txn.group(2), "set example/counter = %d" % counter),
        (str(deleted), "delete example/greeting")], watched
    status = json.loads(re.search(r"^status: (.*)$", out, re.M).group(1))
    assert status["role"] in ("leader", "follower"), status
    return version.group(1)


def test_example_against_installed_library():
    inst = Installed()
    c = Cluster(3)
    try:
        c.start_all()
        c.leader()
        exe = inst.build_example()
        # The program links the installed library, not the build's.
        ldd = subprocess.run(["ldd", exe], stdout=subprocess.PIPE,
                             env=dict(os.environ, LD_LIBRARY_PATH=inst.libdir)
                             ).stdout.decode()
        assert inst.libdir + "/libraftstore.so.0" in ldd, ldd
        v1 = check_run(inst.run(exe, c.endpoints()), 1)
        v2 = check_run(inst.run(exe, c.endpoints()), 2)
        assert v1 == v2
        # rsctl sees what the library wrote.
        p = rsctl("get", "example/counter", "--endpoints", c.endpoints())
        assert p.returncode == 0 and p.stdout == b"2\n", p.stdout
        p = rsctl("get", "example/greeting", "--endpoints", c.endpoints())
        assert p.returncode == 1, p.stdout
    finally:
        c.cleanup()
        inst.cleanup()


if __name__ == "__main__":
    run_tests([test_example_against_installed_library])
