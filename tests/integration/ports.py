#!/usr/bin/env python3
"""Loopback ports for test clusters, outside the kernel's ephemeral range.

A port taken by binding port 0 is an ephemeral port, the range the kernel
also draws every outgoing connection's source port from.  Between picking
a node's ports and the node binding them, the other nodes of the test dial
it (raft_uv retries every heartbeat, 100 ms), each attempt from a new
source port; now and then one of them is the port just picked, and the
node fails with "address already in use" (seen in valgrind_daemon.sh,
whose valgrind-slowed node starts last).  So ports here are drawn at
random below the ephemeral range (ip_local_port_range), from 10000 up, and
kept only if they bind free right now; if that range is too small, it falls
back to port 0.

A port free right now is not free for long: a test that stops a node and
starts it again on the same port leaves it unbound in between, and a test
running beside it (`make -j2 check`) could draw it then (seen once: a
node of test_safety.py failed with "address already in use").  So every
port handed out is also reserved, across processes, for the process that
asked: a file named after the port in RESERVE_DIR holds that process's
pid, and the port is not handed out again while that process lives.  A
reservation whose process has died is taken over.  The command-line form
reserves for its parent (the test script that runs it).

    python3 tests/integration/ports.py N     prints N distinct ports
    from ports import free_ports             the same, as a list
"""
import atexit
import os
import random
import socket
import sys
import tempfile

LOWEST = 10000
RESERVE_DIR = os.path.join(tempfile.gettempdir(), "raftstore-test-ports")
_reserved = []  # files this process created for itself


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reserve(port, owner):
    """Claim port for the process owner; False if a live process holds it."""
    os.makedirs(RESERVE_DIR, exist_ok=True)
    path = os.path.join(RESERVE_DIR, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    holder = int(f.read().strip() or "0")
            except (OSError, ValueError):
                holder = 0
            if holder and holder != owner and _alive(holder):
                return False
            try:  # the holder is gone (or was us): take it over
                os.unlink(path)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % owner)
        if owner == os.getpid():
            _reserved.append(path)
        return True
    return False


@atexit.register
def _release():
    for path in _reserved:
        try:
            with open(path) as f:
                if int(f.read().strip() or "0") == os.getpid():
                    os.unlink(path)
        except (OSError, ValueError):
            pass


def free_ports(n, owner=None):
    """n distinct loopback ports that are free right now, reserved for the
    process owner (this one by default) while it lives."""
    lo, _ = ephemeral_range()
    ports = []
    owner = os.getpid() if owner is None else owner
    if lo - LOWEST >= 1000:
        rng = random.SystemRandom()
        tries = 0
        while len(ports) < n and tries < 100 * n:
            tries += 1
            p = rng.randrange(LOWEST, lo)
            if p not in ports and _bindable(p) and _reserve(p, owner):
                ports.append(p)
    while len(ports) < n:  # fallback: the kernel's pick
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in ports:
            ports.append(p)
    return ports


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        sys.exit("usage: ports.py N")
    print(" ".join(str(p) for p in free_ports(int(sys.argv[1]),
                                              owner=os.getppid())))
