#!/usr/bin/env python3
"""Linearizable reads confirmed by a quorum of TERM answers (readquorum.h).

* Every node answers TERM with its id and its Raft term (the one STATUS
  shows); a question carrying another cluster's ID, or a malformed one, is
  refused with an error that says why.
* A leader proves its reads with TERM answers, not with a log entry
  (STATUS reads_quorum grows, reads_barrier does not), also with one
  follower dead; `--linearizable-reads barrier` proves them with barriers.
* The stale-leader case the rule exists for: the leader is stopped, the
  others elect a new one and overwrite the key, and a linearizable GET is
  waiting in the old leader's socket when it resumes.  It must never answer
  with the old value (an error, or the new value, are both fine).  This
  catches a leader that serves without asking (mutation-checked: a count
  that always confirms failed 1 of 2 runs of 4 rounds; 6 are run); the old
  leader usually hears the new one before its TERM answers come back, so
  the finer rules (stamps, terms, node ids) are tested on fakes in
  tests/unit/test_readquorum.c.
"""
import signal
import struct
import time

import rswire
from harness import Cluster, retry, run_tests

ELECTION_MS, HEARTBEAT_MS = 600, 60


def test_term_answers_and_refusals():
    c = Cluster(3, election_ms=ELECTION_MS, heartbeat_ms=HEARTBEAT_MS)
    c.start_all()
    lid = c.leader()
    for n in c.nodes.values():
        st = n.status()
        cid = bytes.fromhex(st["cluster_id"])
        conn = n.conn()
        try:
            nid, term = conn.term(cid, lid)
            assert nid == n.id, (nid, n.id)
            assert term == n.status()["term"] == st["term"], (term, st)
            try:
                conn.term(bytes(16 * [0x5a]), lid)
                raise AssertionError("a foreign cluster ID was answered")
            except rswire.Error as e:
                assert e.code == rswire.CODE["EINVAL"], e
                assert "another cluster" in e.message, e.message
                assert "node %d" % n.id in e.message, e.message
            try:
                conn.call(rswire.TERM, rswire.bytes_field(b"abc") +
                          struct.pack("<QQ", lid, 1))
                raise AssertionError("a 3-byte cluster ID was answered")
            except rswire.Error as e:
                assert e.code == rswire.CODE["EPROTO"], e
                assert "cluster_id: 3 bytes, not 16" in e.message, e.message
        finally:
            conn.close()


def reads(conn, key, n):
    for _ in range(n):
        retry(lambda: conn.get(key))


def counted_reads(leader, conn, n):
    """n linearizable reads on the leader: its STATUS before and after."""
    before = leader.status()
    reads(conn, b"k", n)
    return before, leader.status()


def leader_with_a_key(c):
    """Start c; its leader and a connection to it, with key k written."""
    c.start_all()
    lid = c.leader()
    conn = c.nodes[lid].conn()
    retry(lambda: conn.put(b"k", b"v"))
    return lid, c.nodes[lid], conn


def test_reads_use_the_quorum_not_the_log():
    c = Cluster(3, election_ms=ELECTION_MS, heartbeat_ms=HEARTBEAT_MS)
    lid, leader, conn = leader_with_a_key(c)
    before, after = counted_reads(leader, conn, 50)
    assert after["reads_quorum"] - before["reads_quorum"] >= 50, (before, after)
    assert after["reads_barrier"] == before["reads_barrier"], (before, after)
    # One follower dead: this node and the other still make a majority.
    victim = next(n for n in c.nodes.values() if n.id != lid)
    victim.kill()
    before, after = counted_reads(leader, conn, 50)
    assert after["reads_quorum"] - before["reads_quorum"] >= 50, (before, after)
    conn.close()


def test_barrier_option():
    c = Cluster(3, election_ms=ELECTION_MS, heartbeat_ms=HEARTBEAT_MS,
                extra_args=("--linearizable-reads", "barrier"))
    _, leader, conn = leader_with_a_key(c)
    before, after = counted_reads(leader, conn, 20)
    assert after["reads_barrier"] - before["reads_barrier"] >= 20, (before, after)
    assert after["reads_quorum"] == 0, after
    conn.close()


def get_frame(conn, key):
    rid = conn.next_id
    conn.next_id += 1
    body = bytes([rswire.LINEARIZABLE]) + struct.pack("<Q", 0) + \
        rswire.bytes_field(key)
    return rid, rswire.frame(rswire.GET, rid, body)


def answer_to(conn, rid):
    """The GET answer for rid: (value or None, error name or None)."""
    while True:
        _, _, got, body = conn.recv_frame()
        if got == rid or got == 0:
            break
    r = rswire.Reader(body)
    status = r.u32()
    message = r.bytes().decode("utf-8", "replace")
    if status != 0:
        return None, "%s: %s" % (rswire.error_name(status), message)
    r.u8()
    r.u64()
    found = r.u8()
    r.u64()
    value = r.bytes()
    return (value if found else None), None


def test_stale_leader_never_serves_an_old_value():
    c = Cluster(3, election_ms=ELECTION_MS, heartbeat_ms=HEARTBEAT_MS)
    c.start_all()
    outcomes = []
    for rnd in range(6):
        lid = c.leader()
        old = c.nodes[lid]
        conn = old.conn(timeout=20.0)
        old_value, new_value = b"old-%d" % rnd, b"new-%d" % rnd
        retry(lambda: conn.put(b"k", old_value))
        reads(conn, b"k", 5)  # the leader's TERM connections are up
        old.signal(signal.SIGSTOP)
        try:
            new = c.leader(exclude=(lid,))
            nconn = c.nodes[new].conn()
            retry(lambda: nconn.put(b"k", new_value))
            nconn.close()
            rid, frame = get_frame(conn, b"k")
            conn.send_raw(frame)  # waits in the stopped node's socket
            time.sleep(0.05)
        finally:
            old.signal(signal.SIGCONT)
        value, error = answer_to(conn, rid)
        conn.close()
        assert value != old_value, \
            "round %d: the deposed leader %d served the old value %r after " \
            "node %d wrote %r\n%s" % (rnd, lid, value, new, new_value, c.logs())
        assert error is not None or value == new_value, (value, error)
        outcomes.append(error or "new value")
        c.leader()
    print("stale-leader reads: %s" % outcomes, flush=True)


if __name__ == "__main__":
    run_tests([test_term_answers_and_refusals,
               test_reads_use_the_quorum_not_the_log,
               test_barrier_option,
               test_stale_leader_never_serves_an_old_value])
