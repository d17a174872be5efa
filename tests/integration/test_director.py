#!/usr/bin/env python3
"""Multi-process tests of the director (issue 4): epochs, recovery, the
layout persisted as a system transaction, fencing and fail-fast restarts.

Each test starts real raftstored processes on loopback (harness.py) and
checks the brief's control-path invariants from the outside:

  * after every recovery "\\xff/system/layout" and its decomposed keys agree
    on every node (`rsctl layout --decomposed --endpoints ONE`, which reads
    both at one read version on that node);
  * epochs strictly increase: the epoch allocations logged by every
    director, ordered by commit version, never repeat or go back, and each
    node's store journal (`rsctl log dump --json`) never applies a batch of
    an older epoch after a newer one;
  * acknowledged writes survive kills, pauses and restarts.

Run by `make check`, or by hand: top_builddir=BUILD python3 test_director.py
(RS_TEST_ONLY=NAME runs one test, RS_TEST_SEED=N repeats a random run).
"""
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time

from harness import RAFTSTORED, RSCTL, Cluster, run_tests, status_or_none
import rswire

LAYOUT_KEY = b"\xff/system/layout"
EPOCH_KEY = b"\xff/system/epoch"
CONNECT_ERRORS = (OSError, ConnectionError, rswire.Error)


# ---- helpers ----

def rsctl(*args, timeout=30):
    """Run rsctl; the CompletedProcess (text)."""
    return subprocess.run([RSCTL] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def wait_ready(c, timeout=20.0, min_epoch=0, exclude=()):
    """Wait until a live node is the leader and its director is monitoring
    in an epoch >= min_epoch; (leader id, its status)."""
    deadline = time.time() + timeout
    seen = {}
    while time.time() < deadline:
        for n in c.nodes.values():
            if n.id in exclude:
                continue
            st = status_or_none(n)
            if st is None:
                continue
            seen[n.id] = (st.get("role"), st.get("epoch"),
                          st.get("director_phase"), st.get("director_exit"))
            if (st["role"] == "leader" and
                    st.get("director_phase") == "monitoring" and
                    st.get("epoch", 0) >= min_epoch):
                return n.id, st
        time.sleep(0.05)
    raise AssertionError("no director monitoring in epoch >= %d within %.0fs "
                         "(last seen %s)\n%s" % (min_epoch, timeout, seen,
                                                 c.logs()))


def layout_of(addr, decomposed=True):
    """rsctl layout --json [--decomposed] against one endpoint; the layout
    as a dict.  Retries only while the node is unreachable (exit 3)."""
    args = ["layout", "--json", "--endpoints", addr, "--timeout-ms", "5000"]
    if decomposed:
        args.append("--decomposed")
    deadline = time.time() + 15
    while True:
        p = rsctl(*args)
        if p.returncode == 0:
            return json.loads(p.stdout)
        # 1 = no layout, does not decode, or the decomposed keys disagree:
        # never transient, since both forms are read at one version.
        assert p.returncode == 3 and time.time() < deadline, \
            "rsctl %s -> %d\n%s%s" % (" ".join(args), p.returncode,
                                      p.stdout, p.stderr)
        time.sleep(0.2)


def layout_everywhere(c, want=None, timeout=15.0):
    """The layout as every live node serves it (each checked with
    --decomposed against that node alone).  Waits until all agree and
    want(layout) holds; a new recovery between two reads is why they may
    differ for a moment."""
    deadline = time.time() + timeout
    while True:
        views = {n.id: layout_of(n.client_addr)
                 for n in c.nodes.values() if n.alive()}
        first = next(iter(views.values()))
        same = all(v == first for v in views.values())
        if same and (want is None or want(first)):
            return first
        assert time.time() < deadline, "layouts never agreed: %s" % (
            {nid: (v["id"], v["epoch"], node_ids(v["storage"]))
             for nid, v in views.items()})
        time.sleep(0.2)


def node_ids(components):
    return sorted(x["node_id"] for x in components)


def retry_put(c, key, val, timeout=15.0, prefer=None):
    """Put until acknowledged, through any live node; the commit version.
    A put whose outcome was unknown is repeated: same key, same value, so a
    duplicate is harmless."""
    deadline = time.time() + timeout
    ids = [prefer] if prefer else []
    while True:
        live = [n for n in c.nodes.values() if n.alive()]
        n = c.nodes[ids.pop()] if ids else random.choice(live)
        try:
            conn = n.conn(3.0)
            try:
                return conn.put(key, val)
            finally:
                conn.close()
        except rswire.Error as e:
            if e.code not in rswire.RETRYABLE | {rswire.CODE["EUNKNOWN"]}:
                raise
            last = e
        except (OSError, ConnectionError) as e:
            last = e
        assert time.time() < deadline, "put %r: %s" % (key, last)
        time.sleep(0.05)


def read_all(c, keys, timeout=15.0):
    """Linearizable reads through any live node: {key: value or None}."""
    out = {}
    deadline = time.time() + timeout
    conn = None
    for key in keys:
        while True:
            try:
                conn = conn or random.choice(
                    [n for n in c.nodes.values() if n.alive()]).conn(3.0)
                out[key] = conn.get(key)[0]
                break
            except CONNECT_ERRORS as e:
                if isinstance(e, rswire.Error) and e.code not in rswire.RETRYABLE:
                    raise
                conn = None
                assert time.time() < deadline, "get %r: %s" % (key, e)
                time.sleep(0.05)
    return out


def restart_all(c, sig=signal.SIGTERM, order=None):
    for n in c.nodes.values():
        if sig == signal.SIGTERM:
            assert n.stop() == 0, n.tail()
        else:
            n.kill()
    c.start_all(order)


def log_text(n):
    with open(n.log, "rb") as f:
        return f.read().decode("utf-8", "replace")


def audit_events(n, name, pred=lambda e: True, timeout=5.0):
    """The first of node n's audit events called name for which pred
    holds, read with `rsctl events` (the log is flushed asynchronously)."""
    deadline = time.time() + timeout
    while True:
        p = rsctl("events", n.dir, "--event", name, "--json")
        if p.returncode == 0:
            for line in p.stdout.splitlines():
                e = json.loads(line)
                if pred(e):
                    return e
        assert time.time() < deadline, "node %d: no %s event\n%s%s" % (
            n.id, name, p.stdout, p.stderr)
        time.sleep(0.2)


def check_epoch_allocations(c):
    """Every epoch allocation every director logged, ordered by its commit
    version: the epochs strictly increase (none reused, none going back).
    Returns them."""
    pat = re.compile(r"event=director\.epoch_allocated epoch=(\d+) "
                     r"version=(\d+)")
    allocs = sorted({(int(v), int(e)) for n in c.nodes.values()
                     for e, v in pat.findall(log_text(n))})
    epochs = [e for _, e in allocs]
    assert epochs == sorted(set(epochs)), \
        "epoch allocations by version are not strictly increasing: %s" % allocs
    return epochs


def check_journals(c):
    """On every (stopped) node, the store journal never applies a batch of
    an older epoch after one of a newer epoch (brief invariant 3)."""
    for n in c.nodes.values():
        assert not n.alive()
        p = rsctl("log", "dump", os.path.join(n.dir, "store"), "--json",
                  timeout=60)
        assert p.returncode == 0, p.stderr
        prev = (0, 0)
        for line in p.stdout.splitlines():
            b = json.loads(line)
            assert b["version"] > prev[0], (n.id, prev, b["version"])
            assert b["epoch"] >= prev[1], \
                "node %d applied version %d of epoch %d after epoch %d" % (
                    n.id, b["version"], b["epoch"], prev[1])
            prev = (b["version"], b["epoch"])


def fault_hooks_built():
    """Whether raftstored reads the RS_FAULT_* test hooks: a build
    configured with --enable-fault-hooks says so in --version."""
    p = subprocess.run([RAFTSTORED, "--version"], capture_output=True,
                       text=True, timeout=10)
    return p.returncode == 0 and "fault hooks: compiled in" in p.stdout


def needs_fault_hooks(test):
    """Mark a test that sets an RS_FAULT_* hook: skipped, with a message,
    when the binary was built without them."""
    test.needs_fault_hooks = True
    return test


def exit_events(c):
    """Every director_exit audit event of every node."""
    evs = []
    for n in c.nodes.values():
        p = rsctl("events", n.dir, "--event", "director_exit", "--json")
        if p.returncode != 0 and "no events found" in p.stderr:
            continue  # this node's directors never exited
        assert p.returncode == 0, p.stderr
        evs += [json.loads(line) for line in p.stdout.splitlines()]
    return evs


def layout_write_epochs(c):
    """The epochs of the batches that wrote the layout, as every (stopped)
    node's store journal holds them."""
    epochs = set()
    for n in c.nodes.values():
        assert not n.alive()
        p = rsctl("log", "dump", os.path.join(n.dir, "store"), "--json",
                  timeout=60)
        assert p.returncode == 0, p.stderr
        for line in p.stdout.splitlines():
            b = json.loads(line)
            if any(m["op"] == "set" and m["key"] == LAYOUT_KEY.decode("latin-1")
                   for m in b["mutations"]):
                epochs.add(b["epoch"])
    return epochs


# ---- the tests ----

def test_cold_start_epoch_1_layout_on_every_node():
    c = Cluster()
    c.start_all()
    lead, st = wait_ready(c)
    lay = layout_everywhere(c)
    changes = max(status_or_none(n)["leader_changes"] for n in c.nodes.values())
    # Epoch 1, unless an early election was lost and a second director ran.
    assert lay["epoch"] == st["epoch"] and (lay["epoch"] == 1 or changes > 1), \
        (lay["epoch"], st, changes)
    assert lay["director"]["node_id"] == lead
    assert node_ids(lay["storage"]) == [1, 2, 3], lay["storage"]
    assert node_ids(lay["logs"]) == [1, 2, 3], lay["logs"]
    assert len(lay["commit_proxies"]) == 3 and len(lay["resolvers"]) == 1
    assert all(s["status"] == "up" for s in lay["services"]), lay["services"]
    # The other system keys of the same transaction.
    conn = c.nodes[lead].conn()
    epoch_le = conn.get(EPOCH_KEY)[0]
    assert struct.unpack("<Q", epoch_le)[0] == lay["epoch"], epoch_le
    last = json.loads(conn.get(b"\xff/system/last_recovery")[0])
    assert last["epoch"] == lay["epoch"] and last["layout_id"] == lay["id"], last
    assert conn.get(b"\xff/system/coordinators")[0], "no coordinators key"
    assert conn.get(b"\xff/system/config/commit_proxies")[0] == b"3"
    assert conn.get(b"\xff/system/config/resolvers")[0] == b"1"
    # Client writes to the system key space are refused (config excepted).
    try:
        conn.put(LAYOUT_KEY, b"x")
        raise AssertionError("a client overwrote the layout")
    except rswire.Error as e:
        assert e.code == rswire.CODE["EINVAL"], e
    # The text form, from a follower alone.
    fol = c.nodes[1 + lead % 3]
    p = rsctl("layout", "--decomposed", "--endpoints", fol.client_addr)
    assert p.returncode == 0, p.stderr
    assert "epoch %d" % lay["epoch"] in p.stdout and "all match" in p.stdout, \
        p.stdout
    assert "from %s" % fol.client_addr in p.stdout, p.stdout
    p = rsctl("status", "--endpoints", c.endpoints())
    assert p.returncode == 0 and "monitoring" in p.stdout, p.stdout + p.stderr


def test_warm_start_new_epoch_writes_survive():
    c = Cluster()
    c.start_all()
    _, st = wait_ready(c)
    before = layout_everywhere(c)
    acked = {}
    for i in range(30):
        key, val = b"warm-%03d" % i, b"v%d" % i
        retry_put(c, key, val)
        acked[key] = val
    restart_all(c, signal.SIGTERM)
    _, st2 = wait_ready(c, min_epoch=before["epoch"] + 1)
    after = layout_everywhere(c, lambda t: len(t["storage"]) == 3)
    assert after["epoch"] > before["epoch"], (before["epoch"], after["epoch"])
    assert after["recovery_version"] > before["recovery_version"]
    assert read_all(c, acked) == acked
    # The previous layout was the new director's input (audit trail).
    ev = audit_events(c.nodes[after["director"]["node_id"]],
                      "previous_layout_fenced",
                      lambda e: e["epoch"] == after["epoch"])
    assert ev["previous_epoch"] == before["epoch"], ev


@needs_fault_hooks
def test_system_transaction_failures_fail_fast():
    c = Cluster()
    os.environ["RS_FAULT_PERSIST_FAILURES"] = "2"
    try:
        c.start_all()
    finally:
        del os.environ["RS_FAULT_PERSIST_FAILURES"]
    lead, st = wait_ready(c, timeout=30, min_epoch=3)
    text = "".join(log_text(n) for n in c.nodes.values())
    assert text.count("system transaction failed") >= 2, c.logs()
    assert "node.director_restart" in text, c.logs()
    lay = layout_everywhere(c)
    assert lay["epoch"] >= 3 and lay["epoch"] == st["epoch"], (lay, st)
    check_epoch_allocations(c)
    for i in range(10):
        retry_put(c, b"after-fault-%d" % i, b"ok")
    assert read_all(c, [b"after-fault-9"]) == {b"after-fault-9": b"ok"}


@needs_fault_hooks
def test_raft_unavailable_stops_the_node():
    """c-raft 0.15 turns unavailable for good when its own I/O fails inside
    a step (here every term change's metadata write, as on a full disk):
    the node exits 1 naming it, instead of lingering with its data dir
    locked, and the other two go on."""
    c = Cluster()
    for nid in (1, 2):
        c.nodes[nid].start()
    os.environ["RS_FAULT_RAFT_SET_TERM"] = "fail"
    try:
        c.nodes[3].start()
    finally:
        del os.environ["RS_FAULT_RAFT_SET_TERM"]
    # The first election changes every node's term: node 3 cannot.
    assert c.nodes[3].proc.wait(30) == 1, c.nodes[3].tail()
    tail = c.nodes[3].tail(40)
    assert "event=node.fatal" in tail and "Raft stopped" in tail, tail
    assert "RS_FAULT_RAFT_SET_TERM" in tail, tail
    lead, st = wait_ready(c, timeout=30)
    assert lead in (1, 2), (lead, st)
    retry_put(c, b"after-unavailable", b"ok")
    assert read_all(c, [b"after-unavailable"]) == {b"after-unavailable": b"ok"}


@needs_fault_hooks
def test_system_transaction_fails_before_commit():
    """For each kind of pre-commit failure (RS_FAULT_SYSTEM_TXN, a test
    hook: the system transaction fails as it is submitted, so nothing of it
    is proposed): the director exits saying so in the audit log, the next
    epoch's director succeeds, and only a later epoch ever wrote the
    layout."""
    for kind, how in [("refuse", "refused"), ("conflict", "in conflict"),
                      ("leadership", "leadership lost")]:
        os.environ["RS_FAULT_SYSTEM_TXN"] = kind  # each node's first director
        try:
            c = Cluster()
            c.start_all()
        finally:
            del os.environ["RS_FAULT_SYSTEM_TXN"]
        lead, st = wait_ready(c, timeout=30, min_epoch=2)
        ev = audit_events(c.nodes[lead], "director_exit",
                          lambda e: "before commit" in e["reason"])
        failed = ev["epoch"]
        assert ev["phase"] == "persisting", ev
        assert ev["reason"].startswith(
            "system transaction failed before commit: %s (epoch %d)" % (
                how, failed)), ev
        assert "RS_FAULT_SYSTEM_TXN" in ev["reason"], ev
        assert st["epoch"] > failed, (st, ev)
        lay = layout_everywhere(c)
        assert lay["epoch"] == st["epoch"], (lay["epoch"], st)
        last = json.loads(c.nodes[lead].conn().get(
            b"\xff/system/last_recovery")[0])
        assert last["epoch"] == lay["epoch"], last
        retry_put(c, b"after-%s" % kind.encode(), b"ok")
        check_epoch_allocations(c)
        failed_epochs = {e["epoch"] for e in exit_events(c)
                         if "before commit" in e["reason"]}
        for n in c.nodes.values():
            n.stop()
        written = layout_write_epochs(c)
        assert written and not written & failed_epochs, (kind, written,
                                                         failed_epochs)
        assert min(written) > failed, (kind, written, failed)
        c.cleanup()


def test_layout_epoch_increases_across_restarts():
    c = Cluster()
    c.start_all()
    wait_ready(c)
    epochs = [layout_everywhere(c)["epoch"]]
    for round_, sig in enumerate((signal.SIGTERM, signal.SIGKILL,
                                  signal.SIGTERM)):
        retry_put(c, b"restart-%d" % round_, b"r%d" % round_)
        order = list(c.nodes)
        random.shuffle(order)
        restart_all(c, sig, order)
        wait_ready(c, timeout=30, min_epoch=epochs[-1] + 1)
        lay = layout_everywhere(c, lambda t: len(t["storage"]) == 3)
        assert lay["epoch"] > epochs[-1], (epochs, lay["epoch"])
        epochs.append(lay["epoch"])
    print("  epochs across restarts: %s" % epochs)
    assert read_all(c, [b"restart-%d" % i for i in range(3)]) == {
        b"restart-%d" % i: b"r%d" % i for i in range(3)}
    check_epoch_allocations(c)
    for n in c.nodes.values():
        assert n.stop() == 0, n.tail()
    check_journals(c)


class Writer(threading.Thread):
    """Writes unique keys through random live nodes until stopped.  A put
    is acknowledged only when a node says so; one with an unknown outcome
    is repeated with the same value (harmless if it did commit)."""

    def __init__(self, c, prefix):
        super().__init__(daemon=True)
        self.c, self.prefix = c, prefix
        self.acked, self.unknown = {}, {}
        self.stop_ev = threading.Event()
        self.errors = []

    conn = None

    def drop(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def put_one(self, key, val):
        deadline = time.time() + 10
        while not self.stop_ev.is_set() and time.time() < deadline:
            try:
                if self.conn is None:
                    live = [n for n in self.c.nodes.values() if n.alive()]
                    self.conn = random.choice(live).conn(2.0)
                self.conn.put(key, val)
                return True
            except rswire.Error as e:
                if e.code not in rswire.RETRYABLE | {rswire.CODE["EUNKNOWN"]}:
                    self.errors.append("%r: %s" % (key, e))
                    return False
                self.drop()  # try another node
            except (OSError, ConnectionError, IndexError):
                self.drop()
            time.sleep(0.02)
        return False

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            key, val = b"%s-%06d" % (self.prefix, i), b"v%d" % i
            if self.put_one(key, val):
                self.acked[key] = val
            else:
                self.unknown[key] = val
            i += 1
        self.drop()


def test_leader_killed_repeatedly():
    c = Cluster()
    c.start_all()
    wait_ready(c)
    w = Writer(c, b"kill")
    w.start()
    epochs_seen = []
    killed = None
    try:
        for round_ in range(5):
            lead = c.leader(timeout=20, exclude=(killed,) if killed else ())
            if killed is not None:
                c.nodes[killed].start()  # back while the new leader recovers
            time.sleep(random.uniform(0, 0.3))
            st = status_or_none(c.nodes[lead])
            if st is not None:
                epochs_seen.append((round_, lead, st["epoch"],
                                    st["director_phase"]))
            c.nodes[lead].kill()
            killed = lead
        c.leader(timeout=20, exclude=(killed,))
        c.nodes[killed].start()
        _, st = wait_ready(c, timeout=30)
        time.sleep(0.5)  # let the writer see the recovered cluster
    finally:
        w.stop_ev.set()
        w.join(30)
    print("  epochs at kill time (round, leader, epoch, phase): %s" % epochs_seen)
    print("  acked %d writes, %d unknown" % (len(w.acked), len(w.unknown)))
    assert not w.errors, w.errors[:5]
    assert len(w.acked) > 20, "the writer made no progress"
    got = read_all(c, w.acked, timeout=30)
    lost = [k for k, v in w.acked.items() if got[k] != v]
    assert not lost, "acknowledged writes lost: %s" % lost[:10]
    # Every node is re-admitted and agrees on the layout.
    lay = layout_everywhere(c, lambda t: len(t["storage"]) == 3, timeout=30)
    epochs = check_epoch_allocations(c)
    print("  epochs allocated: %s" % epochs)
    # A director killed before its epoch entry committed allocated none;
    # one that reported epoch E in its status leaves the cluster at >= E.
    assert lay["epoch"] in epochs and len(epochs) >= 2, (lay["epoch"], epochs)
    assert lay["epoch"] >= max(e for _, _, e, _ in epochs_seen), epochs_seen
    for n in c.nodes.values():
        assert n.stop() == 0, n.tail()
    check_journals(c)


def send_stale_commit(addr, key, val, result, stopped):
    """One COMMIT to a (stopped) node: record (outcome, detail, whether the
    node was still stopped when the answer came)."""
    try:
        conn = rswire.Conn(addr, timeout=15.0)
        try:
            v = conn.put(key, val)
            result[key] = ("ok", v, stopped.is_set())
        finally:
            conn.close()
    except rswire.Error as e:
        result[key] = ("error", e.code, stopped.is_set())
    except (OSError, ConnectionError) as e:
        result[key] = ("no answer", str(e), stopped.is_set())


def test_fencing_sigstop_old_leader():
    c = Cluster()
    c.start_all()
    old, st = wait_ready(c)
    old_epoch = st["epoch"]
    for i in range(10):
        retry_put(c, b"pre-%d" % i, b"p%d" % i)
    node = c.nodes[old]
    node.signal(signal.SIGSTOP)
    stopped = threading.Event()
    stopped.set()
    result, threads = {}, []
    try:
        new, st2 = wait_ready(c, timeout=20, min_epoch=old_epoch + 1,
                              exclude=(old,))
        new_epoch = st2["epoch"]
        new_layout = layout_of(c.nodes[new].client_addr)
        p = rsctl("layout", "--endpoints", c.nodes[new].client_addr)
        written = int(re.search(r"written at: +version (\d+)", p.stdout).group(1))
        # Writes to the paused leader: nothing answers while it is stopped.
        for i in range(6):
            t = threading.Thread(target=send_stale_commit, daemon=True,
                                 args=(node.client_addr, b"stale-%d" % i,
                                       b"s%d" % i, result, stopped))
            t.start()
            threads.append(t)
        time.sleep(1.5)
        assert not result, "the stopped node answered: %s" % result
        # The rest of the cluster keeps accepting writes meanwhile.
        for i in range(5):
            retry_put(c, b"during-%d" % i, b"d%d" % i, prefer=new)
    finally:
        stopped.clear()
        node.signal(signal.SIGCONT)
    for t in threads:
        t.join(20)
    print("  old leader %d epoch %d, new leader %d epoch %d; stale writes: %s"
          % (old, old_epoch, new, new_epoch, sorted(result.items())))
    assert all(not r[2] for r in result.values()), result
    # The old leader steps down and follows the new epoch.
    deadline = time.time() + 15
    while True:
        ost = status_or_none(node)
        if ost and ost["role"] == "follower" and ost["epoch"] >= new_epoch:
            break
        assert time.time() < deadline, (ost, node.tail())
        time.sleep(0.1)
    text = log_text(node)
    assert re.search(r"event=raft\.(leadership_lost|role role=follower "
                     r"previous=leader)", text), node.tail(40)
    print("  fenced entries: %s" % {n.id: status_or_none(n)["fenced"]
                                    for n in c.nodes.values()})
    _, st3 = wait_ready(c, timeout=20, min_epoch=new_epoch)
    assert st3["epoch"] >= new_epoch
    got = read_all(c, list(result) + [b"during-%d" % i for i in range(5)] +
                   [b"pre-%d" % i for i in range(10)])
    for i in range(10):
        assert got[b"pre-%d" % i] == b"p%d" % i
    for i in range(5):
        assert got[b"during-%d" % i] == b"d%d" % i
    definite_failures = {rswire.CODE[n] for n in (
        "ENOTLEADER", "EUNAVAILABLE", "ERECOVERING", "ECONFLICT", "EINVAL",
        "ESHUTDOWN")}
    conn = c.nodes[new].conn()
    for key, (outcome, detail, _) in result.items():
        val = b"s" + key.split(b"-")[1]
        if outcome == "ok":
            assert got[key] == val, (key, got[key])
        elif outcome == "error" and detail in definite_failures:
            assert got[key] is None, (key, result[key], got[key])
        if got[key] is not None:
            # Whatever landed did so in the new epoch: after its layout.
            items, _, _ = conn.range(key, key + b"\x00")
            assert items[0][2] > written, (key, items[0][2], written)
    lay = layout_everywhere(c, lambda t: t["epoch"] >= new_layout["epoch"] and
                            len(t["storage"]) == 3, timeout=20)
    assert lay["epoch"] >= new_epoch
    check_epoch_allocations(c)
    for n in c.nodes.values():
        assert n.stop() == 0, n.tail()
    check_journals(c)


def test_config_set_starts_recovery():
    c = Cluster()
    c.start_all()
    lead, st = wait_ready(c)
    ep = c.endpoints()
    # Every recovery writes all four back: the batching ones default to the
    # leader's flags (the harness leaves them at 512 and 500).
    p = rsctl("config", "list", "--json", "--endpoints", ep)
    params = {x["param"]: x["value"] for x in json.loads(p.stdout)["params"]}
    assert params == {"commit_proxies": "3", "resolvers": "1",
                      "batch_count_max": "512", "batch_delay_us": "500"}, p
    for bad in (("set", "commit_proxies", "0"), ("set", "commit_proxies", "x"),
                ("set", "commit_proxies", "17"), ("set", "bogus", "2"),
                ("get",), ("frob", "x")):
        p = rsctl("config", *bad, "--endpoints", ep)
        assert p.returncode == 2, (bad, p)
    p = rsctl("config", "set", "commit_proxies", "2", "--endpoints", ep)
    assert p.returncode == 0, p.stderr
    t0 = time.time()
    _, st2 = wait_ready(c, timeout=10, min_epoch=st["epoch"] + 1)
    print("  new epoch %d after %.2fs" % (st2["epoch"], time.time() - t0))
    assert time.time() - t0 < 5, "no recovery within 5 s of config set"
    lay = layout_everywhere(c, lambda t: len(t["commit_proxies"]) == 2)
    assert lay["epoch"] > st["epoch"]
    assert "configuration changed" in log_text(c.nodes[lead]), c.nodes[lead].tail()
    p = rsctl("config", "get", "commit_proxies", "--endpoints", ep)
    assert p.returncode == 0 and p.stdout.strip() == "2", p
    # A batching parameter is a config change too: a recovery applies it.
    p = rsctl("config", "set", "batch_count_max", "64", "--endpoints", ep)
    assert p.returncode == 0, p.stderr
    _, st3 = wait_ready(c, timeout=10, min_epoch=st2["epoch"] + 1)
    p = rsctl("config", "list", "--json", "--endpoints", ep)
    params = {x["param"]: x["value"] for x in json.loads(p.stdout)["params"]}
    assert params == {"commit_proxies": "2", "resolvers": "1",
                      "batch_count_max": "64", "batch_delay_us": "500"}, params
    for i in range(5):
        retry_put(c, b"after-config-%d" % i, b"ok")


def test_config_two_resolvers_split_the_key_space():
    """Regression test.  It found a director bug: with resolvers >= 2 the
    layout builder appended resolver i's component at index i of an array
    starting at resolvers[i].c, leaving resolvers[1].node_id 0, so every
    director exited in LAYOUT ("layout does not validate: resolvers[1].
    node_id: 0 is not a node id"), epoch after epoch, and every client
    commit, the config write that would undo it included, got
    RS_ERECOVERING for ever.  Fixed by plan_component_set in
    director/plan.c."""
    c = Cluster()
    c.start_all()
    _, st = wait_ready(c)
    p = rsctl("config", "set", "resolvers", "2", "--endpoints", c.endpoints(),
              "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["value"] == "2", p
    wait_ready(c, timeout=10, min_epoch=st["epoch"] + 1)
    lay = layout_everywhere(c, lambda t: len(t["resolvers"]) == 2)
    r = lay["resolvers"]
    # Two resolvers split the key space between them.
    assert r[0]["begin"] == "" and r[0]["end"] == r[1]["begin"] != "" and \
        r[1]["end"] == "", r
    for i in range(5):
        retry_put(c, b"after-resolvers-%d" % i, b"ok")


class SteadyWriter(threading.Thread):
    """Puts one after another through one node, each on a fresh key, and
    records when each was acknowledged and every error it got."""

    def __init__(self, node, tag):
        super().__init__(daemon=True)
        self.node, self.tag = node, tag
        self.acks = []      # (monotonic time of the ack, latency s)
        self.errors = []    # (monotonic time, what)
        self.halt = threading.Event()

    def run(self):
        conn, i = None, 0
        while not self.halt.is_set():
            t0 = time.monotonic()
            try:
                conn = conn or self.node.conn(5.0)
                conn.put(b"steady/%s/%d" % (self.tag.encode(), i), b"v")
                t1 = time.monotonic()
                self.acks.append((t1, t1 - t0))
                i += 1
            except CONNECT_ERRORS as e:
                self.errors.append((time.monotonic(), repr(e)))
                conn = None
                time.sleep(0.01)

    def stop(self):
        self.halt.set()
        self.join(15)
        assert not self.is_alive(), "writer %s did not stop" % self.tag

    def latencies(self, t0, t1):
        return [lat for t, lat in self.acks if t0 <= t <= t1]

    def longest_gap(self, t0, t1):
        """The longest time between two acks (or the window's ends and an
        ack) inside [t0, t1], and when it began: how long this writer saw
        no commit."""
        ts = [t0] + [t for t, _ in self.acks if t0 <= t <= t1] + [t1]
        return max((b - a, a) for a, b in zip(ts, ts[1:]))


def p99(xs):
    s = sorted(xs)
    return s[max(0, int(len(s) * 0.99) - 1)]


def test_follower_kill_and_restart_cost_no_outage():
    """Issue 13, section 1.  Under steady writers through the leader and the
    other follower, a follower's SIGKILL and its restart cost no outage:
    no write error, no commit gap above the bound, the epoch unchanged.
    The director still records both: the layout leaves the node out (its
    service down) and then re-admits it, each by a layout update of the
    same epoch, audited, and with the same log text as before."""
    c = Cluster()
    c.start_all()
    lead, st = wait_ready(c)
    lay0 = layout_everywhere(c, lambda t: len(t["storage"]) == 3)
    fol, other = [nid for nid in sorted(c.nodes) if nid != lead]
    writers = [SteadyWriter(c.nodes[lead], "lead"),
               SteadyWriter(c.nodes[other], "other")]
    for w in writers:
        w.start()
    time.sleep(2.0)
    t_kill = time.monotonic()
    steady = p99([lat for w in writers
                  for lat in w.latencies(t_kill - 1.5, t_kill)])
    bound = max(2 * steady, 0.25)
    log_start = os.path.getsize(c.nodes[lead].log)
    c.nodes[fol].kill()
    lay1 = layout_everywhere(c, lambda t: fol not in node_ids(t["storage"]))
    t_out = time.monotonic()
    time.sleep(0.5)
    t_restart = time.monotonic()
    c.nodes[fol].start()
    lay2 = layout_everywhere(c, lambda t: node_ids(t["storage"]) == [1, 2, 3],
                             timeout=20)
    time.sleep(0.5)
    t_end = time.monotonic()
    for w in writers:
        w.stop()
    gaps = {w.tag: w.longest_gap(t_kill, t_end) for w in writers}
    print("  steady p99 %.1f ms, bound %.0f ms; node %d out after %.2f s, "
          "restarted at %.2f s; longest gaps %s; layouts %d -> %d -> %d" % (
              steady * 1000, bound * 1000, fol, t_out - t_kill,
              t_restart - t_kill,
              {k: "%.1f ms at %.2f s" % (g * 1000, at - t_kill)
               for k, (g, at) in gaps.items()},
              lay0["id"], lay1["id"], lay2["id"]))
    for w in writers:
        assert not w.errors, "writer %s: %s" % (w.tag, w.errors[:5])
        assert gaps[w.tag][0] <= bound, (w.tag, gaps, bound)
    # The same epoch throughout: two layout updates, no recovery.
    assert lay0["epoch"] == lay1["epoch"] == lay2["epoch"] == st["epoch"], \
        (lay0["epoch"], lay1["epoch"], lay2["epoch"], st["epoch"])
    assert lay0["id"] < lay1["id"] < lay2["id"], (lay0["id"], lay1["id"],
                                                  lay2["id"])
    down = [s for s in lay1["services"] if s["node_id"] == fol]
    assert down and down[0]["status"] == "down", lay1["services"]
    assert fol not in node_ids(lay1["logs"]), lay1["logs"]
    assert all(s["status"] == "up" for s in lay2["services"]), lay2["services"]
    _, st2 = wait_ready(c)
    assert st2["epoch"] == st["epoch"] and st2["layout_id"] == lay2["id"], st2
    text = log_text(c.nodes[lead])[log_start:]
    assert "component failure: node %d" % fol in text, c.nodes[lead].tail()
    assert "node %d is back" % fol in text, c.nodes[lead].tail()
    assert "event=director.exit" not in text, c.nodes[lead].tail()
    # c-raft guard 16: the leader saw its connection to the node end, and
    # the message whose write then failed went out again.
    assert "event=raft.peer_closed peer_id=%d conn=out" % fol in text, \
        c.nodes[lead].tail()
    assert "event=raft.message_resent peer_id=%d" % fol in text, \
        c.nodes[lead].tail()
    ev = audit_events(c.nodes[lead], "component_failure",
                      lambda e: e["component_node"] == fol)
    assert ev["epoch"] == st["epoch"] and ev["cause"] == "heartbeat", ev
    ev = audit_events(c.nodes[lead], "layout_updated",
                      lambda e: e["layout_id"] == lay2["id"])
    assert ev["epoch"] == st["epoch"] and ev["storage"] == 3, ev
    # What was written while it was down is on it now.
    n_acks = sum(len(w.acks) for w in writers)
    key = b"steady/lead/%d" % (len(writers[0].acks) - 1)
    conn = c.nodes[fol].conn()
    try:
        deadline = time.time() + 10
        while conn.get(key, mode=rswire.SERIALIZABLE)[0] != b"v":
            assert time.time() < deadline, "node %d lacks %r" % (fol, key)
            time.sleep(0.1)
    finally:
        conn.close()
    assert max(check_epoch_allocations(c)) == st["epoch"]
    print("  %d writes acknowledged, none refused" % n_acks)


def test_member_removed_is_a_layout_update():
    """`rsctl members remove` of a live follower, under a steady writer:
    the monitoring director drops it by a layout update at once (it used
    to restart, costing an epoch), with no write error."""
    c = Cluster()
    c.start_all()
    lead, st = wait_ready(c)
    fol = [nid for nid in sorted(c.nodes) if nid != lead][0]
    w = SteadyWriter(c.nodes[lead], "lead")
    w.start()
    time.sleep(0.5)
    p = rsctl("members", "remove", fol, "--endpoints", c.nodes[lead].client_addr)
    assert p.returncode == 0 and "removed" in p.stdout, (p.stdout, p.stderr)
    rest = [nid for nid in sorted(c.nodes) if nid != fol]
    lay = layout_of(c.nodes[lead].client_addr)
    deadline = time.time() + 10
    while node_ids(lay["services"]) != rest:
        assert time.time() < deadline, lay
        time.sleep(0.1)
        lay = layout_of(c.nodes[lead].client_addr)
    time.sleep(0.3)
    w.stop()
    assert not w.errors, w.errors[:5]
    assert lay["epoch"] == st["epoch"] and node_ids(lay["storage"]) == rest, lay
    assert "node %d left the cluster" % fol in log_text(c.nodes[lead]), \
        c.nodes[lead].tail()
    _, st2 = wait_ready(c, exclude=(fol,))
    assert st2["epoch"] == st["epoch"], (st, st2)


class FakeNode(threading.Thread):
    """A node that serves GET and RANGE from fixed data at a fixed read
    version, and records every request: for checking what `rsctl layout`
    asks and how it reports what it finds."""

    def __init__(self, layout, entries, read_version, found_version, page=1000):
        super().__init__(daemon=True)
        self.layout, self.entries = layout, sorted(entries)
        self.rv, self.fv, self.page = read_version, found_version, page
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.done = threading.Event()

    def answer(self, ftype, body):
        r = rswire.Reader(body)
        if ftype == rswire.GET:
            mode, rv, key = r.u8(), r.u64(), r.bytes()
            self.requests.append(("get", mode, rv, key))
            found = key == LAYOUT_KEY and self.layout is not None
            return struct.pack("<BQBQ", mode, rv if mode == 2 else self.rv,
                               found, self.fv if found else 0) + \
                rswire.bytes_field(self.layout if found else b"")
        if ftype == rswire.RANGE:
            mode, rv, begin, end = r.u8(), r.u64(), r.bytes(), r.bytes()
            self.requests.append(("range", mode, rv, begin, end))
            rows = [(k, v) for k, v in self.entries
                    if k >= begin and (not end or k < end)]
            out = b"".join(rswire.bytes_field(k) + rswire.bytes_field(v) +
                           struct.pack("<Q", self.fv)
                           for k, v in rows[:self.page])
            return struct.pack("<BQBI", mode, rv if mode == 2 else self.rv,
                               len(rows) > self.page,
                               min(len(rows), self.page)) + out
        self.requests.append(("other", ftype))
        return rswire.bytes_field(b'{"id":1,"role":"leader","leader_id":1}')

    def serve(self, conn):
        c = rswire.Conn.__new__(rswire.Conn)
        c.sock, c.buf, c.addr = conn, b"", "client"
        while True:
            try:
                ftype, _, rid, body = c.recv_frame()
            except (OSError, ConnectionError):
                return
            reply = struct.pack("<I", 0) + rswire.bytes_field(b"") + \
                self.answer(ftype, body)
            conn.sendall(rswire.frame(ftype | rswire.RESPONSE, rid, reply))

    def run(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn.settimeout(None)
            self.serve(conn)
            conn.close()
        self.sock.close()


def test_rsctl_layout_reports_what_it_finds():
    """rsctl layout against a fake node serving a real layout, then broken
    ones: the decomposed keys are read AT_VERSION at the layout's read
    version, page after page, and every fault is exit 1 naming the key."""
    c = Cluster()
    c.start_all()
    lead, _ = wait_ready(c)
    conn = c.nodes[lead].conn()
    layout, rv, _ = conn.get(LAYOUT_KEY)
    items, more, _ = conn.range(LAYOUT_KEY + b"/", LAYOUT_KEY + b"0",
                                mode=rswire.AT_VERSION, version=rv)
    assert layout and items and not more
    entries = [(k, v) for k, v, _ in items]
    real = json.loads(rsctl("layout", "--json", "--endpoints",
                            c.nodes[lead].client_addr).stdout)
    c.cleanup()

    def run(layout_bytes, ents, *args, page=1000):
        fake = FakeNode(layout_bytes, ents, rv + 10, rv - 5, page)
        fake.start()
        try:
            p = rsctl("layout", "--endpoints", fake.addr, "--timeout-ms",
                      "3000", *args)
        finally:
            fake.done.set()
            fake.join(5)
        return p, fake.requests

    # Good, in pages of 4: every page at the GET's read version.
    p, reqs = run(layout, entries, "--decomposed", "--json", page=4)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == real
    assert reqs[0] == ("get", rswire.LINEARIZABLE, 0, LAYOUT_KEY), reqs
    ranges = [r for r in reqs if r[0] == "range"]
    assert len(ranges) == (len(entries) + 3) // 4, reqs
    assert all(r[1] == rswire.AT_VERSION and r[2] == rv + 10 and
               r[4] == LAYOUT_KEY + b"0" for r in ranges), ranges
    assert ranges[0][3] == LAYOUT_KEY + b"/"
    p, _ = run(layout, entries)
    assert p.returncode == 0 and "written at:        version %d" % (rv - 5) \
        in p.stdout, p.stdout
    # Faults.
    extra = (LAYOUT_KEY + b"/storage/00000000000000ff", entries[0][1])
    flipped = entries[1][1][:-1] + bytes([entries[1][1][-1] ^ 1])
    for name, lay, ents, want in (
            ("missing layout", None, entries, "no layout has been persisted yet"),
            ("garbage", b"\x00garbage", entries,
             "\\xff/system/layout (written at version %d" % (rv - 5)),
            ("unknown format version", layout[:8] + struct.pack("<I", 9) +
             layout[12:], entries, "format version 9"),
            ("missing key", layout, entries[1:], "missing key"),
            ("extra key", layout, entries + [extra], "extra key"),
            ("changed value", layout,
             [entries[0], (entries[1][0], flipped)] + entries[2:],
             entries[1][0][len(LAYOUT_KEY):].decode())):
        p, _ = run(lay, ents, "--decomposed")
        assert p.returncode == 1, (name, p)
        assert want in p.stderr, (name, want, p.stderr)
        assert p.stdout == "", (name, p.stdout)
    # Without --decomposed only the consolidated value is checked.
    p, reqs = run(layout, entries[1:])
    assert p.returncode == 0 and not [r for r in reqs if r[0] == "range"], p
    # A node that is not there is "unavailable".
    p = rsctl("layout", "--endpoints", "127.0.0.1:1", "--timeout-ms", "500")
    assert p.returncode == 3, p
    # config: nothing stored reads as "(default)"; other keys are listed.
    fake = FakeNode(None, [(b"\xff/system/config/mystery", b"7")], rv, rv)
    fake.start()
    try:
        p = rsctl("config", "get", "resolvers", "--endpoints", fake.addr)
        assert p.returncode == 0 and p.stdout == "(default)\n", p
        p = rsctl("config", "list", "--endpoints", fake.addr)
        rows = [line.split(None, 1) for line in p.stdout.splitlines()]
        assert p.returncode == 0 and rows == [
            ["commit_proxies", "(default)"], ["resolvers", "(default)"],
            ["batch_count_max", "(default)"], ["batch_delay_us", "(default)"],
            ["mystery", "7  (not a parameter rsctl knows)"]], p.stdout
    finally:
        fake.done.set()
        fake.join(5)


def crc32c(data):
    return rswire.crc32c(data)


def journal_append_layout(journal_dir, value):
    """Append one valid batch record to the last journal segment, per
    docs/storage-format.md: a set of \\xff/system/layout to `value` at a
    version one past the last.  Returns that version."""
    segs = sorted(f for f in os.listdir(journal_dir)
                  if f.startswith("seg-") and f.endswith(".rsj"))
    assert segs, journal_dir
    last_version = last_epoch = 0
    for name in segs:
        data = open(os.path.join(journal_dir, name), "rb").read()
        assert data[:8] == b"RSJRNL\r\n" and len(data) >= 40, name
        last_version = max(last_version, struct.unpack_from("<Q", data, 24)[0])
        off = 40
        while off + 9 <= len(data):
            crc, length = struct.unpack_from("<II", data, off)
            if off + 9 + length > len(data) or length < 16:
                break
            version, epoch = struct.unpack_from("<QQ", data, off + 9)
            last_version, last_epoch = max(last_version, version), epoch
            off += 9 + length
        assert off == len(data), "%s: unexpected bytes at %d" % (name, off)
    version = last_version + 1
    body = struct.pack("<I", 1) + struct.pack("<BI", 1, len(LAYOUT_KEY)) + \
        LAYOUT_KEY + struct.pack("<I", len(value)) + value
    tp = bytes([1]) + struct.pack("<QQ", version, last_epoch) + body
    c = crc32c(tp)
    masked = (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    with open(os.path.join(journal_dir, segs[-1]), "ab") as f:
        f.write(struct.pack("<II", masked, len(tp) - 1) + tp)
        f.flush()
        os.fsync(f.fileno())
    return version


HOLD_PHASES = ["epoch", "barrier", "locking", "recruiting", "layout",
               "persisting"]


def wait_hold(c, epoch, phase, timeout=15.0):
    """The node whose director logged a hold at (epoch, phase)."""
    pat = re.compile(r"event=director\.hold epoch=(\d+) phase=%s " % phase)
    deadline = time.time() + timeout
    while time.time() < deadline:
        for n in c.nodes.values():
            if not n.alive():
                continue
            for m in pat.finditer(log_text(n)):
                if int(m.group(1)) >= epoch:
                    return n, int(m.group(1))
        time.sleep(0.02)
    raise AssertionError("no director held in %s (epoch >= %d)\n%s" % (
        phase, epoch, c.logs()))


@needs_fault_hooks
def test_leader_killed_in_each_recovery_phase():
    """For every recovery phase: a new director is held at the start of
    that phase (RS_FAULT_HOLD_PHASE, a test hook) and its node is SIGKILLed
    there.  The next director must recover: a higher epoch, every
    acknowledged write still readable, and the layout the same (both forms)
    on every node."""
    for phase in HOLD_PHASES:
        os.environ["RS_FAULT_HOLD_PHASE"] = "%s:700" % phase
        try:
            c = Cluster()
            c.start_all()
            lead, st = wait_ready(c)
        finally:
            del os.environ["RS_FAULT_HOLD_PHASE"]
        acked = {}
        for i in range(10):
            key, val = b"hold/%s/%d" % (phase.encode(), i), b"v%d" % i
            retry_put(c, key, val)
            acked[key] = val
        epoch = st["epoch"]
        # Depose the leader; the next director pauses in `phase`: kill it
        # there.  Both come back (with the hook) so a quorum remains.
        env = dict(os.environ, RS_FAULT_HOLD_PHASE="%s:700" % phase)
        c.nodes[lead].kill()
        c.nodes[lead].proc = subprocess.Popen(
            c.nodes[lead].args(), env=env, stdout=open(c.nodes[lead].log, "ab"),
            stderr=subprocess.STDOUT)
        victim, held_epoch = wait_hold(c, epoch + 1, phase)
        victim.kill()
        victim.proc = subprocess.Popen(
            victim.args(), env=env, stdout=open(victim.log, "ab"),
            stderr=subprocess.STDOUT)
        # A director killed before its epoch entry committed ("epoch")
        # allocated nothing, so the next one may take the same number.
        lead2, st2 = wait_ready(c, timeout=30, min_epoch=held_epoch)
        assert st2["epoch"] >= held_epoch > epoch, (phase, epoch, held_epoch,
                                                    st2)
        got = read_all(c, list(acked))
        assert got == acked, (phase, got)
        layout_everywhere(c, want=lambda l: l["epoch"] >= st2["epoch"])
        check_epoch_allocations(c)
        c.cleanup()


def test_corrupt_layout_refused_at_warm_start():
    c = Cluster()
    c.start_all()
    wait_ready(c)
    retry_put(c, b"before-corruption", b"1")
    for n in c.nodes.values():
        assert n.stop() == 0, n.tail()
    n1 = c.nodes[1]
    store = os.path.join(n1.dir, "store")
    version = journal_append_layout(os.path.join(store, "journal"),
                                    b"\x00garbage, not a layout\xff")
    # The record is valid: the journal reader accepts it and shows it.
    p = rsctl("log", "verify", store)
    assert p.returncode == 0, p.stdout + p.stderr
    p = rsctl("log", "dump", store, "--from", version, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["version"] == version, p
    start = os.path.getsize(n1.log)
    proc = n1.start()
    assert proc.wait(15) == 3, n1.tail()
    out = open(n1.log, "rb").read()[start:].decode("utf-8", "replace")
    assert "\\xff/system/layout" in out and str(version) in out, out
    assert "--ignore-bad-layout" in out, out
    # The operator's override: it starts, and the next recovery replaces it.
    start = os.path.getsize(n1.log)
    n1.start(n1.args() + ["--ignore-bad-layout", "true"])
    time.sleep(1.0)
    assert n1.alive(), n1.tail()
    out = open(n1.log, "rb").read()[start:].decode("utf-8", "replace")
    assert "node.bad_layout_ignored" in out and "node.started" in out, out
    c.nodes[2].start()
    c.nodes[3].start()
    wait_ready(c, timeout=20)
    lay = layout_everywhere(c, lambda t: len(t["storage"]) == 3, timeout=20)
    assert lay["epoch"] >= 2
    assert read_all(c, [b"before-corruption"]) == {b"before-corruption": b"1"}


if __name__ == "__main__":
    tests = [
        test_cold_start_epoch_1_layout_on_every_node,
        test_rsctl_layout_reports_what_it_finds,
        test_warm_start_new_epoch_writes_survive,
        test_system_transaction_failures_fail_fast,
        test_raft_unavailable_stops_the_node,
        test_layout_epoch_increases_across_restarts,
        test_leader_killed_repeatedly,
        test_fencing_sigstop_old_leader,
        test_config_set_starts_recovery,
        test_config_two_resolvers_split_the_key_space,
        test_follower_kill_and_restart_cost_no_outage,
        test_member_removed_is_a_layout_update,
        test_corrupt_layout_refused_at_warm_start,
        test_leader_killed_in_each_recovery_phase,
        test_system_transaction_fails_before_commit,
    ]
    if not fault_hooks_built():
        for t in tests:
            if getattr(t, "needs_fault_hooks", False):
                print("SKIP %s: %s was built without --enable-fault-hooks "
                      "(configure --enable-fault-hooks to run it)" % (
                          t.__name__, RAFTSTORED), flush=True)
        tests = [t for t in tests if not getattr(t, "needs_fault_hooks",
                                                 False)]
    run_tests(tests)
