#!/usr/bin/env python3
"""Operator-safety tests (issue 12, section 0 and 1): the data-dir lock,
the node identity stored in the data dir, start-up errors that name their
cause, and the cluster ID in STATUS.

Each scenario is one an operator can run into; each failed before: a second
raftstored on a dir in use damaged the running node, --id on another node's
dir (audit/ removed) started, a hostname in --initial-cluster left state
that refused the corrected retry, and "start Raft from DIR: " named no
cause.
"""
import hashlib
import os
import shutil
import re
import socket
import subprocess
import time

from harness import RAFTSTORED, Cluster, retry, run_tests

HEX32 = re.compile(r"[0-9a-f]{32}")


def dir_state(path):
    """{relative path: (sha256, mtime_ns)} of every file under path."""
    state = {}
    for root, _, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            st = os.stat(p)
            with open(p, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            state[os.path.relpath(p, path)] = (digest, st.st_mtime_ns)
    return state


def settled_state(path, timeout=10.0):
    """dir_state once two looks 0.5 s apart agree (the node is idle)."""
    deadline = time.time() + timeout
    last = dir_state(path)
    while True:
        time.sleep(0.5)
        now = dir_state(path)
        if now == last:
            return now
        assert time.time() < deadline, "the data dir never settled"
        last = now


def run(args, timeout=10):
    """Run raftstored to its exit: (exit code, stderr, seconds taken)."""
    t0 = time.time()
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr, time.time() - t0


def with_flag(args, flag, value):
    args = list(args)
    args[args.index(flag) + 1] = value
    return args


def identity_hex(node):
    """The cluster ID in the node's identity file, as STATUS shows it."""
    with open(os.path.join(node.dir, "identity"), "rb") as f:
        raw = f.read()
    assert len(raw) == 44 and raw[:8] == b"RSIDENT\0", raw
    cid = raw[24:40]
    return "" if cid == bytes(16) else cid.hex()


def wait_idle_leader(c):
    """A leader whose director has finished recovery (no more writes)."""
    deadline = time.time() + 20
    while True:
        lead = c.leader()
        if c.nodes[lead].status()["director_phase"] == "monitoring":
            return lead
        assert time.time() < deadline, c.logs()
        time.sleep(0.1)


def test_second_process_on_a_dir_in_use_changes_nothing():
    c = Cluster()
    c.start_all()
    wait_idle_leader(c)
    n = c.nodes[2]
    before = settled_state(n.dir)
    assert "LOCK" in before, sorted(before)
    msg = "data dir %s is in use by another raftstored (pid %d)" % (
        n.dir, n.proc.pid)
    # The same command line, then the same dir under another --id.
    for args in (n.args(), with_flag(n.args(), "--id", "3")):
        rc, err, took = run(args)
        assert rc == 3, (rc, err)
        assert msg in err, err
        assert took < 1.0, took
    assert dir_state(n.dir) == before, "the running node's files changed"
    conn = n.conn()
    assert retry(lambda: conn.put(b"after-second-start", b"ok")) > 0
    assert conn.get(b"after-second-start")[0] == b"ok"
    assert n.alive()


def test_identity_names_the_node_even_without_audit():
    c = Cluster()
    c.start_all()
    c.leader()
    for x in c.nodes.values():
        assert x.stop() == 0
    n3 = c.nodes[3]
    for root, dirs, files in os.walk(os.path.join(n3.dir, "audit"),
                                     topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        os.rmdir(root)
    before = dir_state(n3.dir)
    # Node 3's dir started as node 1 (node 1's addresses, from the list).
    rc, err, _ = run(with_flag(n3.args(), "--id", "1"))
    assert rc == 3, (rc, err)
    assert "data dir %s belongs to node 3, not --id 1" % n3.dir in err, err
    # Only the lock file took the refused process's PID.
    after = dir_state(n3.dir)
    del before["LOCK"], after["LOCK"]
    assert after == before, "a refused start changed the dir"
    assert not os.path.exists(os.path.join(n3.dir, "audit"))
    # A damaged identity file is refused, naming it, and left as it is.
    ident = os.path.join(c.nodes[2].dir, "identity")
    with open(ident, "r+b") as f:
        f.seek(17)
        b = f.read(1)
        f.seek(17)
        f.write(bytes([b[0] ^ 0x04]))
    with open(ident, "rb") as f:
        damaged = f.read()
    rc, err, _ = run(c.nodes[2].args())
    assert rc == 3, (rc, err)
    assert "identity file %s" % ident in err and "checksum" in err, err
    with open(ident, "rb") as f:
        assert f.read() == damaged


def test_dir_from_before_identity_files_gets_one():
    c = Cluster()
    c.start_all()
    c.leader()
    n = c.nodes[3]
    assert n.stop() == 0
    os.unlink(os.path.join(n.dir, "identity"))
    n.start()
    c.leader()
    deadline = time.time() + 10
    while "event=identity.created_for_existing_data" not in n.tail(200):
        assert time.time() < deadline, n.tail()
        time.sleep(0.1)
    st = retry(n.status)
    assert st["id"] == 3 and st["cluster_id"] == identity_hex(n), st


def test_cluster_id_in_status():
    c = Cluster()
    c.start_all()
    c.leader()
    founder = identity_hex(c.nodes[1])
    assert HEX32.fullmatch(founder), founder
    for n in c.nodes.values():
        st = retry(n.status)
        assert st["id"] == n.id, st
        # The founder drew it; the others have it or have not learned it.
        assert st["cluster_id"] == identity_hex(n), (n.id, st["cluster_id"])
        assert st["cluster_id"] in ("", founder), st["cluster_id"]
    # The others learn it from the founder's HELLO within moments.
    for n in c.nodes.values():
        deadline = time.time() + 10
        while identity_hex(n) != founder:
            assert time.time() < deadline, (n.id, identity_hex(n), c.logs())
            time.sleep(0.1)
        assert retry(n.status)["cluster_id"] == founder
    # It is durable: the same after a restart.
    n1 = c.nodes[1]
    assert n1.stop() == 0
    n1.start()
    c.leader()
    assert retry(n1.status)["cluster_id"] == founder
    out = subprocess.run([os.path.join(os.path.dirname(RAFTSTORED), "rsctl"),
                          "status", "--endpoints", n1.client_addr],
                         capture_output=True, text=True, timeout=20)
    assert "cluster ID: %s" % founder in out.stdout, out


def test_hostname_in_initial_cluster_then_corrected_retry():
    c = Cluster()
    n = c.nodes[1]
    good = c.initial_cluster()
    host, port = c.nodes[2].raft_addr.split(":")
    bad = good.replace(c.nodes[2].raft_addr, "node2.invalid:" + port)
    rc, err, _ = run(with_flag(n.args(), "--initial-cluster", bad))
    assert rc == 2, (rc, err)
    assert "--initial-cluster" in err and "node2.invalid" in err, err
    assert not os.path.exists(n.dir), os.listdir(n.dir)
    # c-raft resolves no name, not even localhost, in a Raft address.
    bad = good.replace(c.nodes[3].raft_addr, "localhost:" +
                       c.nodes[3].raft_addr.split(":")[1])
    rc, err, _ = run(with_flag(n.args(), "--initial-cluster", bad))
    assert rc == 2 and "must be an IPv4 address" in err, (rc, err)
    assert not os.path.exists(n.dir)
    # The same for this node's own address flags and --metrics-addr.
    for flag in ("--raft-addr", "--client-addr", "--metrics-addr"):
        rc, err, _ = run(n.args() + [flag, "host.invalid:7000"])
        assert rc == 2, (flag, rc, err)
        assert flag in err and "host.invalid:7000" in err, err
        assert not os.path.exists(n.dir)
    # A cold start without the member list: a usage error, nothing written.
    args = n.args()
    i = args.index("--initial-cluster")
    rc, err, _ = run(args[:i] + args[i + 2:])
    assert rc == 2 and "--initial-cluster is required" in err, (rc, err)
    assert not os.path.exists(n.dir)
    c.start_all()
    lead = c.leader()
    assert retry(lambda: c.nodes[lead].conn().put(b"k", b"v")) > 0


def test_address_in_use_names_it_then_retry_starts():
    c = Cluster()
    c.start_all([2, 3])
    n = c.nodes[1]
    for addr, what in ((n.raft_addr, "start Raft from"),
                       (n.client_addr, "listen on")):
        host, port = addr.split(":")
        squat = socket.socket()
        squat.bind((host, int(port)))
        squat.listen(1)
        try:
            rc, err, _ = run(n.args())
        finally:
            squat.close()
        assert rc == 3, (addr, rc, err)
        assert what in err and addr in err, err
        assert re.search("address already in use", err, re.I), err
    # The port is free again: the same command starts and joins.
    n.start()
    c.leader()
    def led():
        st = n.status()
        if st["leader_id"] == 0:  # up, the election still under way
            raise ConnectionError("no leader yet")
        return st
    st = retry(led, timeout=15)
    assert st["id"] == 1 and st["leader_id"] != 0, st


def test_old_clusters_node_is_refused_and_no_data_moves():
    """Issue 12's scenario: new dirs for nodes 1 and 2 plus a copy of an
    old cluster's node 3, same addresses.  Before the handshake, node 3 won
    the election and its keys reached the new nodes.  Now the new nodes form
    their own cluster, node 3 is refused by both (its log names them), and
    none of its keys reaches them."""
    old = Cluster()
    old.start_all()
    lead = old.leader()
    conn = old.nodes[lead].conn()
    for i in range(20):
        retry(lambda: conn.put(b"old/%d" % i, b"from the old cluster"))
    conn.close()
    old_id = identity_hex(old.nodes[1])
    for n in old.nodes.values():
        assert n.stop() == 0
    assert identity_hex(old.nodes[3]) == old_id

    new = Cluster()
    # Node 3 of the new cluster uses the old node 3's data and addresses.
    for nid in (1, 2, 3):
        n = new.nodes[nid]
        o = old.nodes[nid]
        n.raft_addr, n.client_addr = o.raft_addr, o.client_addr
    shutil.copytree(old.nodes[3].dir, new.nodes[3].dir)
    new.nodes[3].start()
    time.sleep(1.5)  # the old node campaigns first, with its longer log
    new.nodes[1].start()
    new.nodes[2].start()
    lead = new.leader(exclude=(3,))
    assert lead in (1, 2), lead
    new_id = identity_hex(new.nodes[1])
    assert HEX32.fullmatch(new_id) and new_id != old_id, (new_id, old_id)
    conn = new.nodes[lead].conn()
    retry(lambda: conn.put(b"new/key", b"v"))
    for nid in (1, 2):
        c2 = new.nodes[nid].conn()
        for i in range(20):
            value, _, _ = retry(lambda: c2.get(b"old/%d" % i))
            assert value is None, (nid, i, value, new.logs())
        assert retry(lambda: c2.get(b"new/key"))[0] == b"v"
        c2.close()
    conn.close()
    assert identity_hex(new.nodes[3]) == old_id
    with open(new.nodes[3].log, "rb") as f:
        log3 = f.read()
    assert b"event=raft.peer_refused" in log3, new.logs()
    st = retry(new.nodes[3].status)
    assert st["role"] != "leader", st
    old.cleanup()
    new.cleanup()


if __name__ == "__main__":
    run_tests([
        test_second_process_on_a_dir_in_use_changes_nothing,
        test_identity_names_the_node_even_without_audit,
        test_dir_from_before_identity_files_gets_one,
        test_cluster_id_in_status,
        test_hostname_in_initial_cluster_then_corrected_retry,
        test_address_in_use_names_it_then_retry_starts,
        test_old_clusters_node_is_refused_and_no_data_moves,
    ])
