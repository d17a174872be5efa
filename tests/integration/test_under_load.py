#!/usr/bin/env python3
"""Faults under a mixed load of linearizable reads and writes, each a
regression test for a crash that tools/chaos found (issue 10).

1. A leader cut off from both followers must step down, not crash: c-raft
fails pending barriers and applies while it is still leader, and a request
issued from inside those callbacks crashed the node.

The cut is made by stopping both followers with SIGSTOP, which works without
root: the leader loses contact with its quorum exactly as in a network
partition and steps down after the election timeout while the load keeps
requests in flight.  tools/chaos makes the same cut with network namespaces
when run as root (partition-leader, in its make check run).

2. A leader stopped with SIGTERM under load exits 0: the server was freed
while the proxy still held requests on its connections, and the replies
that Raft's close failed were written into freed memory (SIGSEGV).
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

RSBENCH = os.path.join(os.path.dirname(harness.RAFTSTORED), "rsbench")


def start_load(c, op, clients):
    """A closed-loop rsbench load; its output goes to a file in the run."""
    out = open(os.path.join(c.dir, "load-%s.log" % op), "ab")
    p = subprocess.Popen([RSBENCH, "cluster", "--endpoints", c.endpoints(),
                          "--op", op, "--clients", str(clients),
                          "--duration", "60", "--keys", "16"],
                         stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return p


def stop_loads(loads):
    for p in loads:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def test_isolated_leader_steps_down_under_load():
    c = harness.Cluster(election_ms=600, heartbeat_ms=60)
    c.start_all()
    loads = []
    try:
        for _ in range(3):
            leader = c.leader(timeout=20)
            if not loads:
                loads = [start_load(c, "get", 32), start_load(c, "put", 16)]
            time.sleep(1.0)  # let requests pile up on the leader
            followers = [n for n in c.nodes.values() if n.id != leader]
            for f in followers:
                f.signal(signal.SIGSTOP)
            # Past the election timeout, the leader finds no quorum and
            # steps down, failing every request it holds.
            deadline = time.time() + 4 * c.election_ms / 1000.0
            while time.time() < deadline:
                assert c.nodes[leader].alive(), \
                    "isolated leader %d died (exit %s):\n%s" % (
                        leader, c.nodes[leader].proc.returncode, c.logs())
                time.sleep(0.05)
            for f in followers:
                f.signal(signal.SIGCONT)
            c.leader(timeout=20)
            for n in c.nodes.values():
                assert n.alive(), "node %d died (exit %s):\n%s" % (
                    n.id, n.proc.returncode, c.logs())
        # The cluster still serves writes after all of it.
        conn = c.nodes[c.leader()].conn()
        harness.retry(lambda: conn.put(b"after", b"cuts"), 20, "put")
        conn.close()
    finally:
        stop_loads(loads)


def test_sigterm_leader_under_load_exits_cleanly():
    c = harness.Cluster(election_ms=600, heartbeat_ms=60)
    c.start_all()
    loads = []
    try:
        for i in range(6):
            leader = c.leader(timeout=20)
            if not loads:
                loads = [start_load(c, "get", 32), start_load(c, "put", 32)]
            time.sleep(0.7)
            rc = c.nodes[leader].stop()
            assert rc == 0, "leader %d exited %s on SIGTERM (round %d):\n%s" % (
                leader, rc, i, c.nodes[leader].tail(40))
            c.nodes[leader].start()
        c.leader(timeout=20)
        for n in c.nodes.values():
            assert n.alive(), "node %d died (exit %s):\n%s" % (
                n.id, n.proc.returncode, c.logs())
    finally:
        stop_loads(loads)


if __name__ == "__main__":
    if not os.access(harness.RAFTSTORED, os.X_OK) or \
            not os.access(RSBENCH, os.X_OK):
        print("SKIP: binaries not built")
        sys.exit(77)
    harness.run_tests([test_isolated_leader_steps_down_under_load,
                       test_sigterm_leader_under_load_exits_cleanly])
