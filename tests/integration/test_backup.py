#!/usr/bin/env python3
"""Backup and restore (issue 12, section 3): `rsctl snapshot save` from a
live three-node cluster while writes go on, `snapshot status`, and
`snapshot restore` into a new cluster, which must hold exactly the state at
the file's version, under a new cluster ID, and take writes.  Corrupt and
truncated files are refused and leave the data dir untouched.

The file is decoded here too, independently of the C codec, from the
format in docs/backup-format.md.
"""
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

from harness import RSCTL, Cluster, retry, run_tests
import rswire

KEYS = 100000
LOAD_BATCH = 2500


def key(i):
    return b"k%06d" % i


def rsctl(*args, timeout=60):
    p = subprocess.run([RSCTL] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def decode_file(data):
    """(header fields, [(key, value)]) of a snapshot file, checking it as
    docs/backup-format.md says."""
    assert data[:8] == b"RSBACKUP"
    fmt, flags, version, epoch = struct.unpack_from("<IIQQ", data, 8)
    assert rswire.crc32c(data[:60]) == struct.unpack_from("<I", data, 60)[0]
    assert fmt == 1 and flags == 0
    off, kvs, image = 64, [], b""
    while data[off:off + 4] == b"RSBC":
        plen, n, crc = struct.unpack_from("<III", data, off + 4)
        payload = data[off + 16:off + 16 + plen]
        p = 0
        for _ in range(n):
            kl = struct.unpack_from("<I", payload, p)[0]
            k = payload[p + 4:p + 4 + kl]
            vl = struct.unpack_from("<I", payload, p + 4 + kl)[0]
            kvs.append((k, payload[p + 8 + kl:p + 8 + kl + vl]))
            p += 8 + kl + vl
        assert p == plen
        image += payload
        off += 16 + plen
    assert data[off:off + 4] == b"RSBT"
    chunks, nkeys, nbytes, tver = struct.unpack_from("<IQQQ", data, off + 4)
    assert (nkeys, nbytes, tver) == (len(kvs), len(image), version)
    assert off + 40 == len(data)
    assert [k for k, _ in kvs] == sorted(k for k, _ in kvs)
    return {"version": version, "epoch": epoch}, kvs


def bulk_load(conn):
    """KEYS keys in transactions of LOAD_BATCH; {key: (value, version)}."""
    state = {}
    for b in range(0, KEYS, LOAD_BATCH):
        ops = [("set", key(i), (b"v0-%06d-" % i).ljust(64, b"."))
               for i in range(b, b + LOAD_BATCH)]
        v = retry(lambda: conn.commit(ops), what="bulk load")
        for _, k, val in ops:
            state[k] = (val, v)
    return state


class Writer(threading.Thread):
    """Commits single-key sets and clears until stopped; keeps a history
    of (version, key, value or None) of every acknowledged commit, and the
    keys whose outcome is unknown, and when each commit was acknowledged."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr, self.stop, self.history, self.unknown = addr, False, [], set()
        self.acked_at = []

    def run(self):
        conn = rswire.Conn(self.addr)
        n = 0
        while not self.stop:
            n += 1
            k = key(random.randrange(KEYS)) if n % 5 else b"new-%06d" % n
            op = ("clear", k) if n % 7 == 0 else ("set", k, b"w-%d" % n)
            try:
                v = conn.commit([op])
                self.history.append((v, k, op[2] if op[0] == "set" else None))
                self.acked_at.append(time.time())
            except (rswire.Error, OSError, ConnectionError):
                self.unknown.add(k)
                conn = rswire.Conn(self.addr)


def same_batch_keys(history):
    """Keys that two writers wrote at one version (one batch of the
    proxy's): which write the batch applied last, the history cannot tell,
    so their outcome counts as unknown."""
    seen = {}
    for v, k, _ in history:
        seen[(v, k)] = seen.get((v, k), 0) + 1
    return {k for (v, k), n in seen.items() if n > 1}


def expected_at(state, history, version):
    exp = {k: val for k, (val, v) in state.items() if v <= version}
    for v, k, val in sorted(history, key=lambda h: (h[0], h[1])):
        if v > version:
            break
        if val is None:
            exp.pop(k, None)
        else:
            exp[k] = val
    return exp


def read_all(conn, begin=b"", end=b"\xff"):
    """Every key in [begin, end) at one version, paged."""
    out, version, mode = {}, 0, rswire.LINEARIZABLE
    while True:
        items, more, rv = retry(lambda: conn.range(begin, end, 10000, mode,
                                                   version))
        version, mode = rv, rswire.AT_VERSION
        for k, v, _ in items:
            out[k] = v
        if not more or not items:
            return out
        begin = items[-1][0] + b"\x00"


def restore_cluster(path, c2):
    for n in c2.nodes.values():
        rc, out, err = rsctl("snapshot", "restore", path, "--data-dir", n.dir,
                             "--id", str(n.id), "--initial-cluster",
                             c2.initial_cluster())
        assert rc == 0, (rc, out, err)


def cluster_ids(c):
    return {n.id: n.status()["cluster_id"] for n in c.nodes.values()}


def test_round_trip_100k_keys_with_writes_during_save():
    c = Cluster()
    c.start_all()
    lead = c.nodes[c.leader()]
    t0 = time.time()
    state = bulk_load(lead.conn(30))
    print("loaded %d keys in %.1fs" % (KEYS, time.time() - t0), flush=True)
    path = os.path.join(c.dir, "backup.rssnap")
    writers = [Writer(n.client_addr) for n in c.nodes.values()]
    for w in writers:
        w.start()
    time.sleep(0.5)  # writes are going on before the save starts
    t0 = time.time()
    rc, out, err = rsctl("snapshot", "save", path, "--endpoints", c.endpoints())
    t1 = time.time()
    time.sleep(0.3)
    for w in writers:
        w.stop = True
        w.join(10)
    assert rc == 0, (rc, out, err)
    during = sum(1 for w in writers for t in w.acked_at if t0 <= t <= t1)
    print("saved in %.2fs, %d writes acknowledged meanwhile: %s" % (
        t1 - t0, during, out.strip()), flush=True)
    assert during > 0, "no write went on during the save"
    w = Writer(None)  # the writers' histories together
    for x in writers:
        w.history += x.history
        w.unknown |= x.unknown
    w.unknown |= same_batch_keys(w.history)

    rc, out, err = rsctl("snapshot", "status", path, "--json")
    assert rc == 0, (rc, out, err)
    st = json.loads(out)
    assert st["checksum_ok"] is True and st["format"] == 1
    with open(path, "rb") as f:
        head, kvs = decode_file(f.read())
    version = head["version"]
    assert st["version"] == version and st["keys"] == len(kvs)
    old_ids = cluster_ids(c)
    assert st["cluster_id"] == old_ids[1]
    # One version: every acknowledged write <= V is in, none > V.
    assert any(v > version for v, _, _ in w.history), "no write after V"
    assert any(v <= version for v, _, _ in w.history), "no write before V"
    exp = expected_at(state, w.history, version)
    user = {k: v for k, v in kvs if not k.startswith(b"\xff")}
    system = {k: v for k, v in kvs if k.startswith(b"\xff")}
    for k in w.unknown:
        exp.pop(k, None)
        user.pop(k, None)
    assert user == exp, "file differs from the state at version %d" % version
    assert b"\xff/system/epoch" in system and b"\xff/system/layout" in system
    assert struct.unpack("<Q", system[b"\xff/system/epoch"])[0] == head["epoch"]
    for n in c.nodes.values():
        n.stop()

    c2 = Cluster()
    restore_cluster(path, c2)
    c2.start_all()
    lead2 = c2.nodes[c2.leader(timeout=30)]
    conn = lead2.conn(30)
    got = read_all(conn)
    for k in w.unknown:
        got.pop(k, None)
    assert len(got) == len(exp) and got == exp, \
        "restored cluster differs from the file (%d vs %d keys)" % (
            len(got), len(exp))
    # A new cluster: one new ID on every node, not the old one.
    new_ids = _one_cluster_id(c2)
    assert new_ids != old_ids[1] and new_ids != "", (new_ids, old_ids)
    coords = dict(read_all(conn, b"\xff/system/coordinators",
                           b"\xff/system/coordinators\x00"))
    assert coords[b"\xff/system/coordinators"] == c2.initial_cluster().encode()
    # It takes writes, above the snapshot's version.
    v = retry(lambda: conn.put(b"after-restore", b"yes"))
    assert v > version
    assert conn.get(b"after-restore")[0] == b"yes"
    # Once it takes writes, its director has written a new layout.
    # Nothing in the system keys names the old cluster's nodes (unless the
    # new cluster happened to get one of the old ports).
    old_addrs = {a.encode() for n in c.nodes.values()
                 for a in (n.raft_addr, n.client_addr)}
    new_addrs = {a.encode() for n in c2.nodes.values()
                 for a in (n.raft_addr, n.client_addr)}
    if not old_addrs & new_addrs:
        sys2 = read_all(conn, b"\xff", b"")
        assert b"\xff/system/layout" in sys2
        for k, v in sys2.items():
            assert not any(a in v for a in old_addrs), (k, v)
    # A warm restart without --initial-cluster reads the members back.
    n3 = c2.nodes[3]
    n3.stop()
    n3.start([a for a in n3.args()[:5]])
    retry(lambda: n3.status(), timeout=10, what="restart of node 3")
    assert retry(lambda: n3.conn().get(b"after-restore")[0]) == b"yes"


def _one_cluster_id(c, timeout=15.0):
    """The cluster ID once every node of c reports the same, known one."""
    deadline = time.time() + timeout
    while True:
        ids = set(retry(lambda: cluster_ids(c)).values())
        if len(ids) == 1 and "" not in ids:
            return ids.pop()
        assert time.time() < deadline, "cluster ids %s" % ids
        time.sleep(0.1)


def _refused(path, target, what):
    rc, out, err = rsctl("snapshot", "status", path)
    assert rc == 1 and path in err and what in err, (what, rc, err)
    rc, out, err = rsctl("snapshot", "restore", path, "--data-dir", target,
                         "--id", "1", "--initial-cluster",
                         "1=127.0.0.1:1/127.0.0.1:2")
    assert rc == 1 and path in err and what in err and \
        "nothing was written" in err, (what, rc, err)


def test_corrupt_truncated_and_wrong_version_refused():
    c = Cluster()
    c.start_all()
    lead = c.nodes[c.leader()]
    conn = lead.conn()
    for b in range(0, 6000, 2000):
        retry(lambda: conn.commit([("set", key(i), b"x" * 300)
                                   for i in range(b, b + 2000)]))
    path = os.path.join(c.dir, "good.rssnap")
    rc, out, err = rsctl("snapshot", "save", path, "--endpoints", c.endpoints())
    assert rc == 0, err
    with open(path, "rb") as f:
        good = f.read()
    head, kvs = decode_file(good)
    assert len([k for k, _ in kvs if not k.startswith(b"\xff")]) == 6000
    rc, out, err = rsctl("snapshot", "status", path, "--json")
    assert rc == 0 and json.loads(out)["chunks"] >= 2, (out, err)
    absent = os.path.join(c.dir, "absent")
    empty = os.path.join(c.dir, "empty")
    os.mkdir(empty)
    bad = os.path.join(c.dir, "bad.rssnap")

    def check(data, what):
        with open(bad, "wb") as f:
            f.write(data)
        for target in (absent, empty):
            _refused(bad, target, what)
        assert not os.path.exists(absent) and os.listdir(empty) == []

    for cut in (len(good) - 1, len(good) - 40, len(good) // 2, 100, 64, 10):
        check(good[:cut], "truncated")
    flip = bytearray(good)
    flip[len(good) // 3] ^= 0x20
    check(bytes(flip), "checksum mismatch")
    flip = bytearray(good)
    flip[20] ^= 0x01  # the header's version
    check(bytes(flip), "header checksum mismatch")
    newer = bytearray(good)
    struct.pack_into("<I", newer, 8, 2)
    struct.pack_into("<I", newer, 60, rswire.crc32c(bytes(newer[:60])))
    check(bytes(newer), "unsupported format version 2")
    other = bytearray(good)  # the trailer names another version
    t = len(good) - 40
    struct.pack_into("<Q", other, t + 24, head["version"] + 1)
    struct.pack_into("<I", other, t + 36, rswire.crc32c(bytes(other[t:t + 36])))
    check(bytes(other), "version differs from the header's")
    check(good + b"\0", "after the trailer")
    # A data dir that is not empty is refused; the good file still restores.
    with open(os.path.join(empty, "keep"), "w") as f:
        f.write("x")
    rc, out, err = rsctl("snapshot", "restore", path, "--data-dir", empty,
                         "--id", "1", "--initial-cluster",
                         "1=127.0.0.1:1/127.0.0.1:2")
    assert rc == 2 and "not empty" in err, (rc, err)
    assert os.listdir(empty) == ["keep"]
    orphan = os.path.join(c.dir, "no-parent", "n1")
    rc, out, err = rsctl("snapshot", "restore", path, "--data-dir", orphan,
                         "--id", "1", "--initial-cluster",
                         "1=127.0.0.1:1/127.0.0.1:2")
    assert rc == 2 and "not an existing directory" in err, (rc, err)
    assert not os.path.exists(os.path.dirname(orphan))
    rc, out, err = rsctl("snapshot", "restore", path, "--data-dir", absent,
                         "--id", "1", "--initial-cluster",
                         "1=127.0.0.1:1/127.0.0.1:2")
    assert rc == 0, err
    assert sorted(os.listdir(absent)) == ["identity", "raft"]


def test_empty_node_beside_restored_ones_gets_the_data():
    """An operator restores two nodes and starts the third on an empty dir
    with the same --initial-cluster (a cold start): it must end up with the
    restored keys, not as an empty follower that matched the log."""
    c = Cluster()
    c.start_all()
    conn = c.nodes[c.leader()].conn()
    retry(lambda: conn.commit([("set", key(i), b"r") for i in range(500)]))
    path = os.path.join(os.path.dirname(c.dir), os.path.basename(c.dir) + ".rssnap")
    try:
        rc, out, err = rsctl("snapshot", "save", path, "--endpoints",
                             c.endpoints())
        assert rc == 0, err
        c.cleanup()
        c2 = Cluster()
        for n in (c2.nodes[1], c2.nodes[2]):
            rc, out, err = rsctl("snapshot", "restore", path, "--data-dir",
                                 n.dir, "--id", str(n.id), "--initial-cluster",
                                 c2.initial_cluster())
            assert rc == 0, err
    finally:
        os.unlink(path)
    c2.start_all()
    c2.leader(timeout=30)
    n3 = c2.nodes[3]
    deadline = time.time() + 20
    while True:
        try:
            items, _, _ = n3.conn().range(b"k", b"l", 1000, rswire.SERIALIZABLE)
        except (rswire.Error, OSError, ConnectionError):
            items = []
        if len(items) == 500:
            break
        assert time.time() < deadline, "node 3 holds %d of 500 keys\n%s" % (
            len(items), c2.logs())
        time.sleep(0.2)


class FakeNode(threading.Thread):
    """A stand-in node that speaks just enough of the wire protocol for a
    save: STATUS (it names itself the leader) and RANGE.  Each save attempt
    starts with a linearizable page; `too_old` attempts get RS_ETOOOLD on
    their second page (as when the MVCC window passes the read version),
    the next one is served in full.  Read version of attempt n: 100 * n."""

    def __init__(self, too_old):
        super().__init__(daemon=True)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.addr = "127.0.0.1:%d" % self.srv.getsockname()[1]
        self.too_old, self.attempt = too_old, 0

    def run(self):
        while True:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def reply(self, s, ftype, rid, body):
        s.sendall(rswire.frame(ftype | rswire.RESPONSE, rid, body))

    def answer_range(self, mode, version):
        if mode == rswire.LINEARIZABLE:
            self.attempt += 1
            rows = [(b"a", b"1"), (b"b", b"2")]
            more = 1
        elif self.attempt <= self.too_old:
            return struct.pack("<I", rswire.CODE["ETOOOLD"]) + \
                rswire.bytes_field(b"version too old")
        else:
            rows, more = [(b"c", b"%d" % self.attempt)], 0
        v = 100 * self.attempt
        out = struct.pack("<I", 0) + rswire.bytes_field(b"") + \
            struct.pack("<BQBI", mode, v, more, len(rows))
        for k, val in rows:
            out += rswire.bytes_field(k) + rswire.bytes_field(val) + \
                struct.pack("<Q", v)
        return out

    def serve(self, s):
        c = rswire.Conn.__new__(rswire.Conn)
        c.sock, c.buf, c.addr = s, b"", "client"
        try:
            while True:
                ftype, _, rid, body = c.recv_frame()
                if ftype == rswire.STATUS:
                    doc = json.dumps({"leader_client_addr": self.addr,
                                      "cluster_id": "ab" * 16}).encode()
                    self.reply(s, ftype, rid, struct.pack("<I", 0) +
                               rswire.bytes_field(b"") + rswire.bytes_field(doc))
                elif ftype == rswire.RANGE:
                    mode, version = struct.unpack_from("<BQ", body, 0)
                    self.reply(s, ftype, rid, self.answer_range(mode, version))
        except (OSError, ConnectionError):
            s.close()


def test_save_starts_over_when_the_window_passes_its_version():
    tmp = tempfile.mkdtemp(prefix="rs-backup-")
    try:
        path = os.path.join(tmp, "b.rssnap")
        node = FakeNode(too_old=1)
        node.start()
        rc, out, err = rsctl("snapshot", "save", path, "--endpoints",
                             node.addr)
        assert rc == 0, (rc, out, err)
        assert "version 100 left the nodes' read window after 2 keys" in err
        assert "starting over (attempt 2 of 3)" in err, err
        with open(path, "rb") as f:
            head, kvs = decode_file(f.read())
        assert head["version"] == 200, head
        assert kvs == [(b"a", b"1"), (b"b", b"2"), (b"c", b"2")], kvs
        assert os.listdir(tmp) == ["b.rssnap"]
        # Three attempts, all too old: no file, no temp file, exit 1.
        node = FakeNode(too_old=3)
        node.start()
        other = os.path.join(tmp, "c.rssnap")
        rc, out, err = rsctl("snapshot", "save", other, "--endpoints",
                             node.addr)
        assert rc == 1 and err.count("left the nodes' read window") == 3, err
        assert os.listdir(tmp) == ["b.rssnap"]
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    run_tests([test_round_trip_100k_keys_with_writes_during_save,
               test_corrupt_truncated_and_wrong_version_refused,
               test_empty_node_beside_restored_ones_gets_the_data,
               test_save_starts_over_when_the_window_passes_its_version])
