#!/usr/bin/env python3
"""rsctl, the way etcdctl users work (issue 14, section 3), on real nodes.

- Global options before or after the command; -w json|table.
- Fail fast: every endpoint refusing exits 3 in well under a second,
  naming each endpoint and its error; a dead first endpoint costs nothing.
- status with one node of three down answers at once, with that node as a
  row, and takes its short default per-node timeout for a silent node.
- watch survives its node: SIGKILL the node it watches through, and every
  commit is printed once, in order, none lost.
- range hides the system key space unless --system.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RSCTL, Cluster, free_ports, retry  # noqa: E402


def run(*args, timeout=30):
    t0 = time.time()
    p = subprocess.run([RSCTL] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.time() - t0


def test_global_options_and_write_out():
    c = Cluster(3)
    c.start_all()
    c.leader()
    ep = c.endpoints()
    rc, out, err, _ = run("--endpoints", ep, "put", "g/k", "v1")
    assert rc == 0, (rc, out, err)
    rc, out, err, _ = run("--endpoints", ep, "get", "g/k")
    assert rc == 0 and out.strip() == "v1", (rc, out, err)
    rc, out, err, _ = run("get", "g/k", "--endpoints", ep, "-w", "json")
    assert rc == 0 and json.loads(out)["value"] == "v1", (rc, out, err)
    rc, out, err, _ = run("-w", "json", "--endpoints=" + ep,
                          "--timeout-ms", "5000", "get", "g/k")
    assert rc == 0 and json.loads(out)["value"] == "v1", (rc, out, err)
    rc, out, err, _ = run("--endpoints", ep, "-w", "table", "get", "g/k")
    assert rc == 0 and out.strip() == "v1", (rc, out, err)
    rc, out, err, _ = run("-w", "yaml", "--endpoints", ep, "get", "g/k")
    assert rc == 2 and "yaml" in err, (rc, out, err)
    rc, out, err, _ = run("--bogus", "get", "g/k")
    assert rc == 2 and "--bogus" in err, (rc, out, err)
    rc, out, err, _ = run("--endpoints", ep)
    assert rc == 2 and "missing command" in err, (rc, out, err)
    c.cleanup()


def test_fail_fast():
    ports = free_ports(3)
    ep = ",".join("127.0.0.1:%d" % p for p in ports)
    rc, out, err, secs = run("--endpoints", ep, "get", "k")
    assert rc == 3, (rc, out, err)
    assert secs < 1.0, secs
    for p in ports:
        assert "127.0.0.1:%d: connection refused" % p in err, err
    rc, out, err, secs = run("--endpoints", ep, "put", "k", "v")
    assert rc == 3 and secs < 1.0, (rc, err, secs)
    # a dead first endpoint: the live ones answer, no timeout
    c = Cluster(3)
    c.start_all()
    c.leader()
    ep = "127.0.0.1:%d," % ports[0] + c.endpoints()
    rc, out, err, secs = run("--endpoints", ep, "put", "ff/k", "v")
    assert rc == 0 and secs < 3.0, (rc, err, secs)
    c.cleanup()


def test_status_with_a_node_down():
    c = Cluster(3)
    c.start_all()
    lid = c.leader()
    victim = [i for i in c.nodes if i != lid][0]
    c.nodes[victim].kill()
    rc, out, err, secs = run("status", "--endpoints", c.endpoints())
    assert rc == 0 and secs < 1.5, (rc, out, err, secs)
    assert "unreachable" in out, out
    # a silent node (SIGSTOP): its row after the short default timeout,
    # not the 10 s of other commands
    c.nodes[victim].start()
    retry(lambda: c.nodes[victim].status(), timeout=15)
    c.nodes[victim].signal(signal.SIGSTOP)
    rc, out, err, secs = run("status", "--endpoints", c.endpoints(),
                             "--json")
    assert rc == 0 and secs < 4.0, (rc, err, secs)
    rows = json.loads(out)
    assert sum(1 for r in rows if r.get("unreachable")) == 1, rows
    c.nodes[victim].signal(signal.SIGCONT)
    c.cleanup()


def test_watch_survives_its_node():
    c = Cluster(3)
    c.start_all()
    lid = c.leader()
    # rsctl's client moves to the leader: the watch runs there
    w = subprocess.Popen([RSCTL, "watch", "--prefix", "ws/", "--json",
                          "--endpoints", c.endpoints()],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(w.stdout),
                              daemon=True)
    reader.start()
    time.sleep(0.5)
    writer_node = [i for i in c.nodes if i != lid][0]
    conn = [c.nodes[writer_node].conn()]

    def put(i):
        def once():
            try:
                return conn[0].put(b"ws/%04d" % i, b"%d" % i)
            except (OSError, ConnectionError):
                conn[0].close()
                conn[0] = c.nodes[writer_node].conn()
                raise
        retry(once, timeout=20)

    for i in range(50):
        put(i)
    c.nodes[lid].kill()
    for i in range(50, 150):
        put(i)
    deadline = time.time() + 15
    while time.time() < deadline and len(lines) < 150:
        time.sleep(0.1)
    w.send_signal(signal.SIGINT)
    w.wait(10)
    err = w.stderr.read()
    got = [json.loads(line)["key"] for line in lines]
    want = ["ws/%04d" % i for i in range(150)]
    assert got == want, "lost/duplicated/reordered: %d lines, first diff " \
        "at %s\nstderr: %s" % (len(got), next(
            (i for i, (a, b) in enumerate(zip(got, want)) if a != b),
            min(len(got), len(want))), err)
    assert "resuming from version" in err, err
    c.cleanup()


def test_range_hides_system_keys():
    c = Cluster(3)
    c.start_all()
    c.leader()
    ep = c.endpoints()
    assert run("put", "a", "1", "--endpoints", ep)[0] == 0
    rc, out, err, _ = run("range", "", "--json", "--endpoints", ep)
    assert rc == 0, (rc, out, err)
    keys = [kv["key"] for kv in json.loads(out)["kvs"]]
    assert keys == ["a"], keys
    # the text table: columns aligned by what is displayed (escaped)
    conn = c.nodes[c.leader()].conn()
    retry(lambda: conn.put(b"b/\x80\xff\x01", b"\xc3\xa9t\xc3\xa9"))
    retry(lambda: conn.put(b"b/plain", b"v"))
    conn.close()
    rc, out, err, _ = run("range", "b/", "--prefix", "--endpoints", ep)
    rows = out.splitlines()
    assert rc == 0 and len(rows) == 3, (rc, out, err)
    col = rows[0].index("VERSION")
    assert all(r[col - 2:col] == "  " and r[col].isdigit() for r in rows[1:]), \
        out
    assert "\\x80\\xff\\x01" in out, out
    rc, out, err, _ = run("range", "", "--system", "--json",
                          "--endpoints", ep)
    keys = [kv["key"] for kv in json.loads(out)["kvs"]]
    assert "a" in keys and any(k.startswith("\u00ff/system/") for k in keys), \
        keys
    c.cleanup()


if __name__ == "__main__":
    harness.run_tests([test_global_options_and_write_out, test_fail_fast,
                       test_status_with_a_node_down,
                       test_watch_survives_its_node,
                       test_range_hides_system_keys])
