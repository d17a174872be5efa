#!/usr/bin/env python3
"""Smoke test of the watch and idle-connection benchmarks (issue 13, §4).

On a three-node cluster, `rsbench watch` with 50 watchers, both ways it
connects (client-library watches on the library's pooled connections, one
or two; all watches over a few raw connections), must report every write delivered to every watcher
once and in order: no loss, reordering, duplicate, wrong version or early
end, and exactly watchers x writes events.  `rsbench cluster --idle` must
hold its idle connections through a put run without an error and report
the servers' memory.  And the check can fail: when the leader, which
serves the watches, is killed during a run, every watch ends and rsbench
says so and exits 1.  `rsbench cluster --timeline` (the follower
scenario's writer in scripts/bench-recovery.py) must write one line per
completed request, on time.monotonic()'s clock, agree with its RESULT line,
name the errors it saw, and stop cleanly on SIGINT.  No performance
thresholds: the figures depend on the machine.
"""
import os
import signal
import subprocess
import tempfile
import time

from harness import BUILD, Cluster, free_ports, run_tests

RSBENCH = os.path.join(os.path.abspath(BUILD), "rsbench")
WATCHERS, RATE, DURATION = 50, 100, 1


def result(args, timeout=60):
    """Run rsbench; (exit status, the RESULT line's fields, stderr)."""
    p = subprocess.run([RSBENCH] + args, capture_output=True, text=True,
                       timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    assert len(lines) == 1, (p.returncode, p.stdout, p.stderr)
    fields = dict(f.split("=", 1) for f in lines[0].split()[1:])
    return p.returncode, fields, p.stderr


def started():
    c = Cluster(3)
    c.start_all()
    c.leader()
    pids = ",".join(str(n.proc.pid) for n in c.nodes.values())
    return c, pids


def check_watch(conns, lib_conns=None):
    c, pids = started()
    args = ["watch", "--endpoints", c.endpoints(), "--watchers",
            str(WATCHERS), "--rate", str(RATE), "--duration", str(DURATION),
            "--conns", str(conns), "--server-pids", pids]
    if lib_conns is not None:
        args += ["--lib-conns", str(lib_conns)]
    rc, r, err = result(args)
    writes = RATE * DURATION
    assert rc == 0, (rc, r, err)
    assert r["system"] == "raftstore" and r["op"] == "watch", r
    assert int(r["watchers"]) == WATCHERS, r
    assert int(r["conns"]) == (conns or lib_conns or 1), r
    assert r["mode"] == ("raw" if conns else "library"), r
    assert int(r["writes"]) == writes and r["write_errors"] == "0", r
    for k in ("lost", "reordered", "duplicated", "mismatched", "ended"):
        assert r[k] == "0", (k, r, err)
    assert int(r["events"]) == WATCHERS * writes, r
    assert float(r["p50_ms"]) > 0 and int(r["server_rss_kib"]) > 0, r
    assert float(r["server_cpu_s"]) > 0 and float(r["client_cpu_s"]) > 0, r


def test_watch_library_on_one_pooled_connection():
    check_watch(0)


def test_watch_library_on_two_pooled_connections():
    check_watch(0, 2)


def test_watch_many_watches_per_connection():
    check_watch(5)


def test_watch_reports_watches_ended_by_a_crash():
    c, pids = started()
    leader = c.nodes[c.leader()]
    p = subprocess.Popen([RSBENCH, "watch", "--endpoints", c.endpoints(),
                          "--watchers", str(WATCHERS), "--rate", "50",
                          "--duration", "1.5", "--drain", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    head = ""
    while "watchers ready" not in head:  # the timed phase has begun
        line = p.stderr.readline()
        assert line, (p.wait(60), head)
        head += line
    time.sleep(0.3)
    leader.kill()
    out, err = p.communicate(timeout=60)
    err = head + err
    lines = [l for l in out.splitlines() if l.startswith("RESULT ")]
    assert p.returncode == 1 and len(lines) == 1, (p.returncode, out, err)
    r = dict(f.split("=", 1) for f in lines[0].split()[1:])
    assert r["ended"] == str(WATCHERS), (r, err)
    assert "watches ended early" in err, err


def test_idle_connections_during_puts():
    c, pids = started()
    rc, r, err = result(["cluster", "--endpoints", c.endpoints(), "--op",
                         "put", "--clients", "4", "--duration", "0.5",
                         "--idle", "100", "--server-pids", pids])
    assert rc == 0 and r["errors"] == "0", (rc, r, err)
    assert r["idle"] == "100" and "100 idle connections open" in err, (r, err)
    assert int(r["ops"]) > 0 and int(r["idle_rss_kib"]) > 0, r
    assert int(r["server_rss_kib"]) > 0, r


def read_timeline(path):
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "# rsbench timeline v1: done_mono_ns latency_us status", lines[:1]
    return [(int(t) / 1e9, int(lat), st) for t, lat, st in
            (l.split() for l in lines[1:])]


def run_until_sigint(args, after, then=None, then_wait=0.0):
    """rsbench started with args; after `after` s, then() if given and
    `then_wait` s more; then SIGINT.  (exit status, RESULT fields, stderr,
    monotonic start, monotonic time of then(), monotonic stop)."""
    t0 = time.monotonic()
    t_then = None
    p = subprocess.Popen([RSBENCH] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(after)
        if then is not None:
            then()
            t_then = time.monotonic()
            time.sleep(then_wait)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    t1 = time.monotonic()
    lines = [l for l in out.splitlines() if l.startswith("RESULT ")]
    assert len(lines) == 1, (p.returncode, out, err)
    return (p.returncode, dict(f.split("=", 1) for f in lines[0].split()[1:]),
            err, t0, t_then, t1)


def test_cluster_timeline_and_sigint():
    c, _ = started()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "timeline")
        rc, r, err, t0, _, t1 = run_until_sigint(
            ["cluster", "--endpoints", c.endpoints(), "--op", "put",
             "--clients", "4", "--duration", "3600", "--timeline", path], 1.0)
        assert rc == 0 and r["errors"] == "0", (rc, r, err)
        assert float(r["secs"]) < 10, r  # SIGINT ended it, not --duration
        ev = read_timeline(path)
    assert len(ev) == int(r["ops"]) > 0, (len(ev), r)
    assert all(st == "ok" for _, _, st in ev), ev[:5]
    times = [t for t, _, _ in ev]
    assert times == sorted(times), "timeline not in completion order"
    assert t0 < times[0] and times[-1] < t1, (t0, times[0], times[-1], t1)
    assert all(0 < lat < 10_000_000 for _, lat, _ in ev), ev[:5]


def test_cluster_timeline_names_errors():
    c, _ = started()

    def kill_all():
        for n in c.nodes.values():
            n.proc.kill()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "timeline")
        rc, r, err, t0, t_dead, _ = run_until_sigint(
            ["cluster", "--endpoints", c.endpoints(), "--op", "put",
             "--clients", "2", "--duration", "3600", "--timeout-ms", "300",
             "--timeline", path], 0.7, kill_all, 1.0)
        ev = read_timeline(path)
    errs = [(t, st) for t, _, st in ev if st != "ok"]
    assert rc == 0 and len(errs) == int(r["errors"]) > 0, (r, err)
    assert all(st.startswith("RS_E") for _, st in errs), errs[:5]
    assert all(t > t0 for t, _ in errs) and errs[-1][0] > t_dead, errs[-3:]
    assert "errors, last:" in err, err


def test_cluster_bad_flags():
    for args, want in ((["--timeout-ms", "0"], "--timeout-ms '0'"),
                       (["--timeout-ms", "5x"], "--timeout-ms '5x'")):
        p = subprocess.run([RSBENCH, "cluster", "--endpoints", "127.0.0.1:1"]
                           + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and want in p.stderr, (args, p.returncode, p.stderr)
    # A preload against a cluster that is down stops at its first failure
    # (it went on through all --keys, each waiting --timeout-ms).
    dead = "127.0.0.1:%d" % free_ports(1)[0]
    t0 = time.monotonic()
    p = subprocess.run([RSBENCH, "cluster", "--endpoints", dead, "--op",
                        "sget", "--keys", "1000", "--timeout-ms", "300"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "preload failed" in p.stderr, \
        (p.returncode, p.stderr)
    assert time.monotonic() - t0 < 10, time.monotonic() - t0
    # An unwritable timeline fails before the run, not after it.
    c, _ = started()
    p = subprocess.run([RSBENCH, "cluster", "--endpoints", c.endpoints(),
                        "--duration", "3600", "--timeline",
                        "/nonexistent/dir/t"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "--timeline /nonexistent/dir/t" in p.stderr, \
        (p.returncode, p.stderr)
    assert "RESULT" not in p.stdout, p.stdout


if __name__ == "__main__":
    run_tests([test_watch_library_on_one_pooled_connection,
               test_watch_library_on_two_pooled_connections,
               test_watch_many_watches_per_connection,
               test_watch_reports_watches_ended_by_a_crash,
               test_idle_connections_during_puts,
               test_cluster_timeline_and_sigint,
               test_cluster_timeline_names_errors,
               test_cluster_bad_flags])
