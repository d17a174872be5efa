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

    python3 tests/integration/ports.py N     prints N distinct ports
    from ports import free_ports             the same, as a list
"""
import random
import socket
import sys

LOWEST = 10000


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


def free_ports(n):
    """n distinct loopback ports that are free right now."""
    lo, _ = ephemeral_range()
    ports = []
    if lo - LOWEST >= 1000:
        rng = random.SystemRandom()
        tries = 0
        while len(ports) < n and tries < 100 * n:
            tries += 1
            p = rng.randrange(LOWEST, lo)
            if p not in ports and _bindable(p):
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
    print(" ".join(str(p) for p in free_ports(int(sys.argv[1]))))
