#!/usr/bin/env python3
"""Leader failover (issue 13, section 2): a crashed leader is replaced
sooner than the election timeout, a silent one no sooner.

When a leader's process dies, its kernel closes its connections at once;
the followers see its connection to them end and hold a fast
election (coordinator/node.c, docs/architecture.md, c-raft guard 8).  A
stopped (SIGSTOP) or partitioned leader closes nothing, so the followers
wait the full election timeout.  Three real raftstored processes on
loopback, election timeout ELECTION_MS, heartbeat HEARTBEAT_MS:

  * SIGKILL of the leader: a survivor leads within ELECTION_MS - one
    heartbeat (without the fast election no survivor can: each waits at
    least ELECTION_MS from its last heartbeat, at most one heartbeat before
    the kill), and both survivors logged event=raft.fast_election;
  * then SIGSTOP of the new leader: no survivor leads sooner than that
    bound, and none logged a fast election for it, which also shows that
    the kill's shortened timeout was restored once the new leader was
    known.

Run by `make check`, or by hand: top_builddir=BUILD python3 test_failover.py
"""
import signal
import time

from harness import Cluster, run_tests, status_or_none

ELECTION_MS = 1500
HEARTBEAT_MS = 100
# No election can finish sooner than this after the leader goes quiet,
# unless it is a fast one: the followers' last heartbeat came at most one
# heartbeat before, and each waits at least the election timeout from it.
SLOW_BOUND_S = (ELECTION_MS - HEARTBEAT_MS) / 1000.0


def wait_followers_know(c, lid, timeout=15.0):
    """Every live node names lid as the leader; then one more election
    timeout, so that every connection is settled."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sts = [status_or_none(n) for n in c.nodes.values() if n.alive()]
        if all(st is not None and st["leader_id"] == lid for st in sts):
            time.sleep(ELECTION_MS / 1000.0)
            return
        time.sleep(0.05)
    raise AssertionError("the nodes do not agree on leader %d\n%s" % (lid, c.logs()))


def time_to_new_leader(c, old, t0, timeout=15.0):
    """Seconds from t0 until a node other than old reports role leader."""
    deadline = t0 + timeout
    while time.time() < deadline:
        for n in c.nodes.values():
            if n.id == old:
                continue
            st = status_or_none(n)
            if st is not None and st["role"] == "leader":
                return n.id, time.time() - t0
        time.sleep(0.01)
    raise AssertionError("no new leader within %.0f s\n%s" % (timeout, c.logs()))


def log_count(n, event):
    with open(n.log, "rb") as f:
        return f.read().count(b"event=" + event.encode())


def test_killed_leader_fast_stopped_leader_slow():
    c = Cluster(3, election_ms=ELECTION_MS, heartbeat_ms=HEARTBEAT_MS)
    c.start_all()
    lid = c.leader()
    wait_followers_know(c, lid)
    survivors = [n for n in c.nodes.values() if n.id != lid]
    before = {n.id: log_count(n, "raft.fast_election") for n in survivors}

    t0 = time.time()
    c.nodes[lid].kill()
    new, took = time_to_new_leader(c, lid, t0)
    print("SIGKILL of leader %d: node %d leads after %.3f s (bound %.3f s)"
          % (lid, new, took, SLOW_BOUND_S), flush=True)
    assert took < SLOW_BOUND_S, \
        "a killed leader was replaced after %.3f s, not within %.3f s\n%s" % (
            took, SLOW_BOUND_S, c.logs())
    for n in survivors:
        assert log_count(n, "raft.fast_election") > before[n.id], \
            "node %d logged no fast election\n%s" % (n.id, n.tail())

    # The new leader, stopped: nothing closes, so no fast election.
    c.nodes[lid].start()  # back as a follower: a majority without `new`
    wait_followers_know(c, new)
    followers = [n for n in c.nodes.values() if n.id != new]
    quiet = {n.id: log_count(n, "raft.fast_election") for n in followers}
    t0 = time.time()
    c.nodes[new].signal(signal.SIGSTOP)
    try:
        newer, took = time_to_new_leader(c, new, t0)
    finally:
        c.nodes[new].signal(signal.SIGCONT)
    print("SIGSTOP of leader %d: node %d leads after %.3f s (bound %.3f s)"
          % (new, newer, took, SLOW_BOUND_S), flush=True)
    assert took >= SLOW_BOUND_S, \
        "a stopped leader was replaced after %.3f s, sooner than %.3f s\n%s" % (
            took, SLOW_BOUND_S, c.logs())
    for n in followers:
        assert log_count(n, "raft.fast_election") == quiet[n.id], \
            "node %d held a fast election for a stopped leader\n%s" % (
                n.id, n.tail())


if __name__ == "__main__":
    run_tests([test_killed_leader_fast_stopped_leader_slow])
