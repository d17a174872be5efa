#!/usr/bin/env python3
"""Membership changes on real clusters (issue 12, section 2).

- 3 -> 5 with writes going on (rsctl members add, raftstored --join, the
  joining node promoted once caught up), two of the five SIGKILLed with
  writes still going on, a warm restart of all five (the stored members win
  over --initial-cluster), then 5 -> 3; every acknowledged write is read
  back at the end, on every member.
- A dead node replaced by a new one on an empty disk.
- Removing the leader moves leadership first.
- Refusals say why: an id or address in use, a second change while a spare
  waits, an unknown id, the last voter; a node that joins without being
  added, or with other addresses, refuses to start (exit 3) and writes
  nothing; --join with --initial-cluster is a usage error (exit 2).
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import rswire  # noqa: E402
from harness import RAFTSTORED, RSCTL, Cluster, Node, free_ports  # noqa: E402


def rsctl(c, *args, timeout=60):
    p = subprocess.run([RSCTL] + list(args) + ["--endpoints", endpoints(c)],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def endpoints(c):
    return ",".join(n.client_addr for n in c.nodes.values() if n.alive())


def new_node(c, nid):
    rp, cp = free_ports(2)
    n = Node(c, nid, rp, cp)
    return n


def join_args(c, n, join):
    return [RAFTSTORED, "--id", str(n.id), "--data-dir", n.dir,
            "--raft-addr", n.raft_addr, "--client-addr", n.client_addr,
            "--join", join,
            "--election-timeout-ms", str(c.election_ms),
            "--heartbeat-timeout-ms", str(c.heartbeat_ms)] + \
        list(c.extra_args)


def members(c):
    rc, out, err = rsctl(c, "members", "list", "--json")
    assert rc == 0, (rc, out, err)
    return {m["id"]: m for m in json.loads(out)}


def wait_voters(c, ids, timeout=30.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = members(c)
            if sorted(last) == sorted(ids) and \
                    all(m["role"] == "voter" for m in last.values()):
                return last
        except AssertionError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError("voters %s not reached: %s\n%s" % (
        ids, last, c.logs()))


def add_and_join(c, nid):
    n = new_node(c, nid)
    rc, out, err = rsctl(c, "members", "add", str(nid), n.raft_addr,
                         n.client_addr)
    assert rc == 0 and "added (spare)" in out, (rc, out, err)
    assert members(c)[nid]["role"] == "spare"
    join = endpoints(c)
    c.nodes[nid] = n
    n.start(join_args(c, n, join))
    return n


class Writer:
    """Puts w/<i> continuously through any live node; remembers what was
    acknowledged."""

    def __init__(self, c):
        self.c, self.acked, self.errors = c, {}, 0
        self.stop_flag = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        i = 0
        conn = None
        while not self.stop_flag:
            key = b"w/%06d" % i
            try:
                if conn is None:
                    live = [n for n in list(self.c.nodes.values()) if n.alive()]
                    if not live:
                        time.sleep(0.05)
                        continue
                    conn = live[i % len(live)].conn(2.0)
                conn.put(key, b"v%d" % i)
                self.acked[key] = b"v%d" % i
                i += 1
            except (rswire.Error, OSError, ConnectionError, IndexError):
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)

    def count(self):
        return len(self.acked)

    def stop(self):
        self.stop_flag = True
        self.t.join(15)

    def progress(self, n, timeout, what):
        start = self.count()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count() >= start + n:
                return
            time.sleep(0.1)
        raise AssertionError("writes stalled %s: %d -> %d\n%s" % (
            what, start, self.count(), self.c.logs()))


def check_all(c, acked, ids):
    """Every acknowledged write is on every listed member (at the version
    the leader confirms)."""
    for nid in ids:
        n = c.nodes[nid]
        conn = n.conn(10.0)
        try:
            got = {}
            begin = b"w/"
            while True:
                rows = harness.retry(lambda: conn.range(begin, b"w0", 10000),
                                     timeout=20)[0]
                for k, v, _ in rows:
                    got[k] = v
                if len(rows) < 10000:
                    break
                begin = rows[-1][0] + b"\x00"
        finally:
            conn.close()
        missing = [k for k in acked if got.get(k) != acked[k]]
        assert not missing, "node %d lacks %d acknowledged writes, e.g. %s" % (
            nid, len(missing), missing[:3])


def wait_removed_exit(n):
    """A removed node stops by itself (exit 0), saying why."""
    try:
        code = n.proc.wait(15)
    except subprocess.TimeoutExpired:
        raise AssertionError("removed node %d still runs after 15 s:\n%s"
                             % (n.id, n.tail(60)))
    assert code == 0, n.tail()
    assert "event=node.removed" in n.tail(60), n.tail()


def test_grow_kill_restart_shrink():
    c = Cluster(3)
    c.start_all()
    c.leader()
    first_args = {nid: c.nodes[nid].args() for nid in (1, 2, 3)}
    w = Writer(c)
    w.progress(50, 20, "at start")
    add_and_join(c, 4)
    wait_voters(c, [1, 2, 3, 4])
    w.progress(50, 20, "after 4 joined")
    add_and_join(c, 5)
    wait_voters(c, [1, 2, 3, 4, 5])
    w.progress(50, 20, "after 5 joined")

    # two of five SIGKILLed (the leader among them if it is 4 or 5)
    c.nodes[4].kill()
    c.nodes[5].kill()
    c.leader(timeout=20)
    w.progress(100, 30, "with two of five dead")

    # a warm restart: 4 and 5 come back with --join (ignored: they have
    # state), 1..3 with their --initial-cluster (stored members win).  The
    # writer pauses: c-raft 0.15 crashes, rarely, closing a leader with
    # requests in flight (docs/architecture.md), which is not under test.
    for nid in (4, 5):
        c.nodes[nid].start(join_args(c, c.nodes[nid], endpoints(c)))
    wait_voters(c, [1, 2, 3, 4, 5])
    w.stop()
    for nid in (1, 2, 3):
        code = c.nodes[nid].stop()
        assert code == 0, (nid, code, c.nodes[nid].tail(40))
        c.nodes[nid].start(first_args[nid])  # the 3-node --initial-cluster
        c.leader(timeout=20)
    wait_voters(c, [1, 2, 3, 4, 5])
    acked = dict(w.acked)
    w = Writer(c)
    w.progress(50, 30, "after the restarts")
    log1 = open(c.nodes[1].log).read()
    assert "node.initial_cluster_ignored" in log1, log1[-3000:]

    # 5 -> 3
    for nid in (5, 4):
        rc, out, err = rsctl(c, "members", "remove", str(nid))
        assert rc == 0 and "removed" in out, (rc, out, err)
        wait_removed_exit(c.nodes[nid])
    wait_voters(c, [1, 2, 3])
    w.progress(50, 30, "after shrinking to 3")
    w.stop()
    acked.update(w.acked)
    check_all(c, acked, [1, 2, 3])
    c.cleanup()


def test_replace_dead_node():
    # small snapshots: the new node catches up from a snapshot, then the log
    c = Cluster(3, extra_args=("--snapshot-threshold", "64",
                               "--snapshot-trailing", "16"))
    c.start_all()
    lid = c.leader()
    w = Writer(c)
    w.progress(100, 20, "at start")
    dead = [i for i in (1, 2, 3) if i != lid][0]
    c.nodes[dead].kill()
    rc, out, err = rsctl(c, "members", "remove", str(dead))
    assert rc == 0, (rc, out, err)
    del c.nodes[dead]
    add_and_join(c, 7)
    ids = sorted([i for i in (1, 2, 3) if i != dead] + [7])
    wait_voters(c, ids)
    w.progress(50, 20, "after the replacement")
    w.stop()
    check_all(c, w.acked, ids)
    assert "event=fsm.restored" in open(c.nodes[7].log).read(), \
        "node 7 did not catch up from a snapshot"
    c.cleanup()


def flip_middle(path):
    with open(path, "r+b") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x5A]))


def test_rebuild_corrupt_founder():
    """Node 1, the founder: on an empty data dir with --initial-cluster it
    would found a new cluster (a new cluster ID, refused by the others);
    rebuilt, it joins the old one and catches up."""
    c = Cluster(3)
    c.start_all()
    c.leader()
    w = Writer(c)
    w.progress(300, 20, "at start")
    w.stop()
    f = 1
    node = c.nodes[f]
    assert node.stop() == 0
    # node 1 may have led: the others elect a leader of their own
    lid = c.leader(timeout=20)
    assert lid != f
    segs = sorted(os.listdir(os.path.join(node.dir, "store", "journal")))
    flip_middle(os.path.join(node.dir, "store", "journal", segs[0]))
    # the damaged node refuses to start, naming the damage
    assert node.start().wait(20) == 1, node.tail()
    # the refusal names the damaged segment and what is wrong there (a
    # flipped length byte reads as a record cut short or a length past the
    # maximum, any other as a checksum mismatch)
    tail = node.tail()
    assert "seg-" in tail and ("checksum mismatch" in tail or
                               "cut short" in tail or
                               "exceeds the maximum" in tail), tail

    # while it runs, rebuild refuses
    other = c.nodes[lid]
    rc, out, err = rsctl(c, "members", "rebuild", str(f), "--data-dir",
                         other.dir)
    assert rc == 1 and ("belongs to node" in err or "in use" in err), (
        rc, out, err)
    rc, out, err = rsctl(c, "members", "rebuild", str(f), "--data-dir",
                         node.dir)
    assert rc == 0, (rc, out, err)
    assert "--join" in out and "moved to" in out, out
    moved = [d for d in os.listdir(c.dir) if d.startswith("n%d.rebuilt-" % f)]
    assert len(moved) == 1, os.listdir(c.dir)
    assert not os.path.exists(node.dir)
    node.start(join_args(c, node, endpoints(c)))
    wait_voters(c, [1, 2, 3])
    check_all(c, w.acked, [f])
    # the same cluster, not a new one
    ids = {n.id: n.status()["cluster_id"] for n in c.nodes.values()}
    assert len(set(ids.values())) == 1 and ids[1], ids
    c.cleanup()


def test_remove_leader():
    c = Cluster(3)
    c.start_all()
    lid = c.leader()
    rc, out, err = rsctl(c, "members", "remove", str(lid))
    assert rc == 0 and "removed" in out, (rc, out, err)
    wait_removed_exit(c.nodes[lid])
    del c.nodes[lid]
    rest = sorted(c.nodes)
    wait_voters(c, rest)
    new = c.leader(timeout=20)
    assert new != lid
    conn = c.nodes[new].conn()
    harness.retry(lambda: conn.put(b"after", b"x"), timeout=20)
    conn.close()
    c.cleanup()


def test_refusals():
    c = Cluster(3)
    c.start_all()
    c.leader()
    n1 = c.nodes[1]
    # an id in use, an address in use
    rc, out, err = rsctl(c, "members", "add", "2", "127.0.0.1:1", "127.0.0.1:2")
    assert rc == 1 and "already a member" in err, (rc, out, err)
    rc, out, err = rsctl(c, "members", "add", "9", n1.raft_addr,
                         "127.0.0.1:3")
    assert rc == 1 and "node 1's" in err, (rc, out, err)
    rc, out, err = rsctl(c, "members", "add", "9", "db1:7000", "127.0.0.1:3")
    assert rc == 1 and "db1" in err, (rc, out, err)
    rc, out, err = rsctl(c, "members", "remove", "9")
    assert rc == 1 and "not a member" in err, (rc, out, err)
    rc, out, err = rsctl(c, "members", "add", "x", "a", "b")
    assert rc == 2, (rc, out, err)

    # a node that was never added refuses to start, and writes nothing
    stranger = new_node(c, 8)
    p = subprocess.run(join_args(c, stranger, endpoints(c)),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 3 and "members add 8" in p.stderr, (
        p.returncode, p.stderr)
    assert not os.path.exists(os.path.join(stranger.dir, "raft")), \
        os.listdir(stranger.dir)
    # --join and --initial-cluster together
    p = subprocess.run(join_args(c, stranger, endpoints(c)) +
                       ["--initial-cluster", c.initial_cluster()],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--join" in p.stderr, (p.returncode, p.stderr)

    # a spare waiting: the next change is refused with the reason
    spare = new_node(c, 6)
    rc, out, err = rsctl(c, "members", "add", "6", spare.raft_addr,
                         spare.client_addr)
    assert rc == 0, (rc, out, err)
    other = new_node(c, 7)
    rc, out, err = rsctl(c, "members", "add", "7", other.raft_addr,
                         other.client_addr)
    assert rc == 1 and "still joining" in err, (rc, out, err)
    # joining with other addresses than those added: refused, exit 3
    wrong = Node(c, 6, *free_ports(2))
    p = subprocess.run(join_args(c, wrong, endpoints(c)),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 3 and "was added with the addresses" in p.stderr, (
        p.returncode, p.stderr)
    # the spare removed, and the add goes through
    rc, out, err = rsctl(c, "members", "remove", "6")
    assert rc == 0, (rc, out, err)
    assert 6 not in members(c)
    c.cleanup()


def test_last_voter():
    c = Cluster(1)
    c.start_all()
    lid = c.leader()
    rc, out, err = rsctl(c, "members", "remove", str(lid), "--timeout-ms",
                         "3000")
    assert rc == 1 and "only voter" in err, (rc, out, err)
    c.cleanup()


if __name__ == "__main__":
    harness.run_tests([test_refusals, test_last_voter, test_remove_leader,
                       test_rebuild_corrupt_founder,
                       test_replace_dead_node, test_grow_kill_restart_shrink])
