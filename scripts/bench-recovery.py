#!/usr/bin/env python3
"""Recovery-time benchmark: raftstore against etcd 3.4, on loopback.

    scripts/bench-recovery.py [--rounds N] [--build-dir DIR] [--only S,...]
        (S: leader, start, follower, etcd, etcd-follower; default all)

Usually run through scripts/bench-recovery.sh, which builds first.  One run
measures, N rounds each (default 10), with default election settings
(raftstore --election-timeout-ms 1000 --heartbeat-timeout-ms 100, etcd 3.4
defaults: election 1000 ms, heartbeat 100 ms):

  leader    raftstore: SIGKILL of the Raft leader -> first client commit
            accepted.  --clients threads (4) per surviving node do puts
            with a short per-request timeout (--request-timeout-ms, 200),
            their starts staggered over one timeout so a request stuck until
            its timeout costs at most 50 ms of resolution; the time is
            kill -> the first success on any of them.  Nothing can
            commit between the kill and the new director's ACCEPTING phase,
            so the first success is in the new epoch; the new leader's epoch
            is checked afterwards.  Also reported: kill -> a survivor
            reports role "leader", and the new director's recovery_ms.
  start     raftstore: three fresh processes started at once -> the
            leader's director_phase is "monitoring" and a put succeeds.
  follower  raftstore: SIGKILL of a follower, then its restart.  Writers
            keep doing puts throughout: by default one rsbench process (C,
            the client library, 2 x --clients closed loops on the leader
            and the other follower's endpoints; the library goes to the
            leader), which writes every completion's CLOCK_MONOTONIC time,
            latency and status to a timeline the gaps are read from
            (--writer rsbench); or, as before, --clients Python threads
            per surviving node, each on its node (--writer python: its
            GIL and its own CPU use add their stalls to the gaps).  Reported for each half (kill -> restart, restart
            -> re-admitted + 0.3 s): the longest gap between two successful
            puts (any client) as the commit outage, with the errors the
            clients saw; the steady p99 put latency of the second before
            the kill (the target is twice it, issue 13) and, for comparison,
            the longest gap with nothing failing in that second and in as
            long a window before the kill as the kill's own (about 1.5 s:
            the longest gap of a longer window is longer by chance
            alone); the time until
            the leader's layout leaves the node out (storage replicas 2)
            and re-admits it (3), and whether the epoch changed.
  etcd-follower
            etcd 3.4: the follower scenario above, measured the same way:
            SIGKILL of a follower, then its restart, under one
            tools/etcdbench process (Go's clientv3, 2 x --clients closed
            loops to the leader) whose --timeline gives the gaps; the
            member is restarted 1 s after the kill and counted back once
            it has caught up.  The same target (2 x its own steady p99).
  etcd      etcd 3.4 (scripts/etcd-cluster.sh): SIGKILL of the leader ->
            first successful put on a survivor.  Two clients at once: the
            JSON gRPC gateway (POST /v3/kv/put over HTTP/1.1, no process
            spawn, so no correction; --clients staggered threads per
            survivor as above), and `etcdctl put --command-timeout` in a
            loop (one per survivor), from whose result the median duration
            of a healthy etcdctl put (measured before the first round) is
            subtracted.

Each system's scenarios, and raftstore's follower rounds, start once the
disk is quiet (scripts/wait-disk-quiet.py).

Before the follower rounds (either system), the machine itself is measured
with no database running (scripts/stall-floor.py, --stall-floor-seconds,
10): three processes doing 4 KiB O_DSYNC writes, as three Raft logs on one
disk would, and the slowest write of each second.  A commit waits for the
writes of two such logs, and a stall of the disk or of a vCPU they share
holds them together, so those seconds are what a system's gaps are read
against; the verdicts report how many of them fit each system's target,
and the steal time (/proc/stat) during each system's rounds.

Between kill rounds the killed process is restarted and the run waits until
the cluster is whole again (raftstore: 3 live nodes, all agreeing on the
leader, leader in "monitoring" with a layout of 3 storage replicas, every
node's applied index within 100 of the leader's commit index; etcd: 3
members agreeing on a leader, a put through each).

Statistics: median, p90 (nearest rank) and max over the rounds.  Targets
(from the issues): after a leader's SIGKILL commits resume within 1.5 x the
election timeout (1.5 s), and (issue 13) sooner than etcd's, median against
median in the same run (printed last when both ran); a follower's SIGKILL
or restart leaves no commit gap longer than twice the steady p99 put
latency (the median over the rounds of each round's p99 in the second
before its kill), and no errors.

A raftstore leader round slower than one election timeout (the fast
election should never take that long), and a follower round with a commit
gap over 50 ms, copy the nodes' logs to a temporary directory, whose path
it prints.

Every process this script starts is killed by PID on exit, also on errors
and on SIGINT/SIGTERM.  Ports are picked free.  Any wait that runs past
--timeout seconds aborts the run with a message and the nodes' log tails,
and the script exits 1.
"""
import argparse
import base64
import importlib.util
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# A node whose applied index is within this many entries of the leader's
# commit index has caught up (between rounds; the load is stopped then).
RAFT_CAUGHT_UP = 100
# A follower round whose longest commit gap is over this (s) keeps the
# nodes' logs: several times what the machine's own stalls are.
FOLLOWER_GAP_KEEP_LOGS = 0.05
# Writers' first moments (connecting, finding the leader) are left out of
# the fault-free window the kill window is compared with (s).
WARMUP_S = 0.2
# raftstore's follower round: writers run this long (s) before the kill,
# enough for a fault-free window as long as the kill window (about 1.5 s).
FOLLOWER_PRE_KILL_S = 2.0
ROOT = os.path.dirname(HERE)

now = time.monotonic


class BenchError(Exception):
    """A wait ran out or the cluster misbehaved: the run is aborted."""


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# statistics and the report
# ---------------------------------------------------------------------------

def p90(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def p99(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


def fmt_s(x):
    return "-" if x is None else "%.3f" % x


class Results:
    def __init__(self):
        self.rows = []  # (system, scenario, values, target or None)

    def add(self, system, scenario, values, target=None):
        self.rows.append((system, scenario, list(values), target))

    def get(self, system, scenario):
        for r in self.rows:
            if r[0] == system and r[1] == scenario:
                return r
        return None

    def table(self):
        head = ("system", "scenario", "n", "median s", "p90 s", "max s",
                "target s", "within")
        lines = []
        for sysname, scen, vals, target in self.rows:
            if not vals:
                continue
            within = "-"
            if target is not None:
                within = "%d/%d" % (sum(v <= target for v in vals), len(vals))
            lines.append((sysname, scen, str(len(vals)),
                          fmt_s(statistics.median(vals)), fmt_s(p90(vals)),
                          fmt_s(max(vals)), fmt_s(target), within))
        widths = [max(len(head[i]), *(len(l[i]) for l in lines)) if lines
                  else len(head[i]) for i in range(len(head))]
        out = []
        sep = "  "
        out.append(sep.join(h.ljust(widths[i]) if i < 2 else h.rjust(widths[i])
                            for i, h in enumerate(head)))
        out.append(sep.join("-" * w for w in widths))
        for l in lines:
            out.append(sep.join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i])
                                for i, c in enumerate(l)))
        return "\n".join(out)


def verdict_line(system, label, vals, target):
    med, q, mx = statistics.median(vals), p90(vals), max(vals)
    if mx <= target:
        v = "MET in every round"
    elif med <= target:
        v = "met by the median only (%d/%d rounds within)" % (
            sum(x <= target for x in vals), len(vals))
    else:
        v = "NOT MET (%d/%d rounds within)" % (
            sum(x <= target for x in vals), len(vals))
    return ("%s: %s median %.3f s, p90 %.3f s, max %.3f s; target <= %.3f s: %s"
            % (system, label, med, q, mx, target, v))


def etcd_ratio_line(ours, etcds):
    """Issue 13's failover target: below etcd's median in the same run."""
    med, emed = statistics.median(ours), statistics.median(etcds)
    return ("leader failover against etcd in this run: median %.3f s vs %.3f s "
            "(%.2fx etcd's); below etcd's median: %s"
            % (med, emed, med / emed, "yes" if med < emed else "NO"))


# ---------------------------------------------------------------------------
# client loops (threads): first success, or every success
# ---------------------------------------------------------------------------

class Race:
    """Shared by the client threads of one round."""

    def __init__(self, record_all=False):
        self.lock = threading.Lock()
        self.go = threading.Event()
        self.stop = threading.Event()
        self.first = None        # (t, who)
        self.done = threading.Event()
        self.record_all = record_all
        self.successes = []      # (t, who, latency s) when record_all
        self.errors = {}
        self.error_times = []    # (t, name) when record_all

    def success(self, t, who, latency=None):
        with self.lock:
            if self.first is None:
                self.first = (t, who)
                self.done.set()
            if self.record_all:
                self.successes.append((t, who, latency))
            else:
                self.stop.set()

    def error(self, name):
        with self.lock:
            self.errors[name] = self.errors.get(name, 0) + 1
            if self.record_all:
                self.error_times.append((now(), name))

    def error_summary(self, t0=None, t1=None):
        """The errors by name, most first; with a window, only those seen
        in [t0, t1) (record_all only)."""
        counts = self.errors
        if t0 is not None:
            counts = {}
            for t, name in self.error_times:
                if t0 <= t < t1:
                    counts[name] = counts.get(name, 0) + 1
        return ", ".join("%s x%d" % kv for kv in
                         sorted(counts.items(), key=lambda kv: -kv[1])) or "none"

    def longest_gap(self, t0, t1):
        """The longest time in [t0, t1] without a successful put, from
        the window's start, between two successes, or to its end; and how
        long after t0 it began."""
        ts = [t0] + sorted(t for t, _, _ in self.successes if t0 <= t <= t1) + [t1]
        gap, at = max((b - a, a) for a, b in zip(ts, ts[1:]))
        return gap, at - t0


class TimelineWriter:
    """The follower scenario's writers as one load-generator process
    (`rsbench cluster`, or tools/etcdbench for etcd) doing closed-loop puts
    until stop(), which returns its --timeline as a Race (record_all) for
    the same analysis as the Python writers'.  CLOCK_MONOTONIC in the
    timeline is the clock of time.monotonic(), so the round's kill and
    restart times line up."""

    def __init__(self, argv, name):
        fd, self.timeline = tempfile.mkstemp(prefix="bench-recovery-", suffix=".timeline")
        os.close(fd)
        self.name = name
        self.proc = subprocess.Popen(argv + ["--timeline", self.timeline],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def kill(self):
        """On an error path: kill by PID, drop the timeline."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if os.path.exists(self.timeline):
            os.unlink(self.timeline)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError("%s did not stop within 30 s of SIGINT" % self.name)
        try:
            if self.proc.returncode != 0:
                raise BenchError("%s exited %d: %s" % (
                    self.name, self.proc.returncode,
                    err.decode("utf-8", "replace").strip()))
            race = Race(record_all=True)
            with open(self.timeline) as f:
                for line in f:
                    if line.startswith("#"):
                        continue
                    t_ns, lat_us, status = line.split()
                    t = int(t_ns) / 1e9
                    if status == "ok":
                        race.successes.append((t, self.name, int(lat_us) / 1e6))
                    else:
                        race.errors[status] = race.errors.get(status, 0) + 1
                        race.error_times.append((t, status))
            return race
        finally:
            self.kill()


def rsbench_writer(rsbench, endpoints, clients, timeout_ms, prefix):
    return TimelineWriter(
        [rsbench, "cluster", "--endpoints", ",".join(endpoints),
         "--op", "put", "--clients", str(clients),
         "--conns", str(min(clients, 8)), "--duration", "3600",
         "--timeout-ms", str(timeout_ms), "--prefix", prefix], "rsbench")


def gap_stats(race, t0, t_restart, t_end, what):
    """The follower round's figures from its writers' timeline."""
    steady = [lat for t, _, lat in race.successes if t0 - 1.0 <= t < t0]
    if len(steady) < 2:
        raise BenchError("%s: fewer than two puts in the second before the "
                         "kill" % what)
    steady_gap, _ = race.longest_gap(t0 - 1.0, t0)
    # The kill window (kill -> layout without it + 0.5 s for raftstore,
    # kill -> restart for etcd) is longer than that second, and the
    # longest gap of a longer window is longer by chance alone; so the
    # fault-free control also over as long a window before the kill, as
    # far as the writers ran (from their first success + WARMUP_S), and
    # never less than that second.
    first = min(t for t, _, _ in race.successes)
    span = max(1.0, min(t_restart - t0, t0 - (first + WARMUP_S)))
    steady_gap_span, _ = race.longest_gap(t0 - span, t0)
    kill_gap, kill_at = race.longest_gap(t0, t_restart)
    restart_gap, restart_at = race.longest_gap(t_restart, t_end)
    return {"steady_p99": p99(steady), "steady_gap": steady_gap,
            "steady_gap_span": steady_gap_span, "steady_span": span,
            "kill_gap": kill_gap, "kill_at": kill_at,
            "restart_gap": restart_gap, "restart_at": restart_at,
            "kill_errors": race.error_summary(t0, t_restart),
            "restart_errors": race.error_summary(t_restart, t_end)}


def load_stall_floor():
    """scripts/stall-floor.py as a module (its name has a hyphen)."""
    spec = importlib.util.spec_from_file_location(
        "stall_floor", os.path.join(HERE, "stall-floor.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


stall_floor = load_stall_floor()


def steal_rate(before, t0):
    """Steal time per second of wall time since (before, t0), in ms, or
    None where /proc/stat has none."""
    after = stall_floor.steal_ms()
    if before is None or after is None:
        return None
    return (after - before) / max(now() - t0, 1e-3)


def add_follower_results(results, system, rs):
    """The follower rows of one system; the target is 2 x the median of
    the rounds' steady p99."""
    target = 2 * statistics.median(x["steady_p99"] for x in rs)
    results.add(system, "follower SIGKILL: commit gap",
                [x["kill_gap"] for x in rs], target)
    results.add(system, "follower restart: commit gap",
                [x["restart_gap"] for x in rs], target)
    results.add(system, "  steady put p99 (before the kill)",
                [x["steady_p99"] for x in rs])
    results.add(system, "  steady: longest gap (1 s before)",
                [x["steady_gap"] for x in rs])
    results.add(system, "  steady: longest gap (as long as the kill's)",
                [x["steady_gap_span"] for x in rs])
    results.add(system, "    that window (the kill's, as far as it went)",
                [x["steady_span"] for x in rs])


def start_gate(race, offset):
    """Wait for the go signal, then for this client's stagger offset."""
    race.go.wait()
    if offset > 0:
        race.stop.wait(offset)


def rs_put_loop(rswire, addr, race, timeout, tag, offset=0.0):
    """raftstore puts against one node until race.stop."""
    conn = None
    i = 0
    start_gate(race, offset)
    while not race.stop.is_set():
        ok = False
        t_req = now()
        try:
            if conn is None:
                conn = rswire.Conn(addr, timeout)
            conn.put(b"bench/%s/%d" % (tag.encode(), i), b"v")
            i += 1
            ok = True
        except rswire.Error as e:
            race.error(rswire.error_name(e.code))
        except socket.timeout:
            race.error("timeout")
            conn = _close(conn)
        except (OSError, ConnectionError, ValueError) as e:
            race.error(type(e).__name__)
            conn = _close(conn)
        if ok:
            t = now()
            race.success(t, addr, t - t_req)
        else:
            time.sleep(0.005)
    _close(conn)


def _close(c):
    if c is not None:
        try:
            c.close()
        except Exception:
            pass
    return None


def etcd_http_put(conn, key, timeout):
    """One put through the etcd JSON gateway on a kept-alive connection."""
    body = json.dumps({"key": base64.b64encode(key).decode(),
                       "value": base64.b64encode(b"v").decode()})
    conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError("http %d: %s" % (r.status, data[:200]))
    d = json.loads(data)
    if "error" in d or "header" not in d:
        raise RuntimeError("etcd: %s" % data[:200])


def etcd_http_loop(port, race, timeout, tag, offset=0.0):
    conn = None
    i = 0
    start_gate(race, offset)
    while not race.stop.is_set():
        ok = False
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            etcd_http_put(conn, b"bench/%s/%d" % (tag.encode(), i), timeout)
            i += 1
            ok = True
        except socket.timeout:
            race.error("timeout")
            conn = _close(conn)
        except Exception as e:  # gateway errors, resets, refused
            race.error(type(e).__name__)
            conn = _close(conn)
        if ok:
            race.success(now(), "http:%d" % port)
        else:
            time.sleep(0.005)
    _close(conn)


def etcdctl_put(etcdctl, endpoint, key, timeout_ms):
    env = dict(os.environ, ETCDCTL_API="3")
    r = subprocess.run([etcdctl, "--endpoints=" + endpoint,
                        "--command-timeout=%dms" % timeout_ms, "put", key, "v"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=env, timeout=10)
    return r.returncode == 0, r.stderr.decode("utf-8", "replace").strip()


def etcdctl_loop(etcdctl, endpoint, race, timeout_ms, tag):
    i = 0
    race.go.wait()
    while not race.stop.is_set():
        try:
            ok, err = etcdctl_put(etcdctl, endpoint, "bench/%s/%d" % (tag, i), timeout_ms)
        except subprocess.TimeoutExpired:
            ok, err = False, "etcdctl hung"
        i += 1
        if ok:
            race.success(now(), "etcdctl:" + endpoint)
        else:
            race.error("etcdctl: " + (err.splitlines()[-1][:60] if err else "failed"))
            time.sleep(0.005)


def wait_disk_quiet(what):
    """Start a scenario on a quiet disk (scripts/wait-disk-quiet.py): the
    data an earlier benchmark deleted is trimmed under whatever runs next
    on a file system mounted with `discard`, and its stalls (64-145 ms for
    about 12 s after a 1M-key run) would be read as the fault's gaps."""
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "wait-disk-quiet.py"),
                    tempfile.gettempdir(), "--label", what], check=False)


def run_threads(targets):
    ts = [threading.Thread(target=f, args=a, daemon=True) for f, a in targets]
    for t in ts:
        t.start()
    return ts


def join_threads(race, ts):
    race.stop.set()
    race.go.set()
    for t in ts:
        t.join(15)
        if t.is_alive():
            raise BenchError("a client thread did not stop within 15 s")


# ---------------------------------------------------------------------------
# raftstore
# ---------------------------------------------------------------------------

class RaftstoreBench:
    def __init__(self, args, results):
        self.args = args
        self.results = results
        os.environ["top_builddir"] = args.build_dir
        sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
        import harness  # noqa: E402  (reads top_builddir at import)
        import rswire  # noqa: E402
        self.harness, self.rswire = harness, rswire
        if not os.access(harness.RAFTSTORED, os.X_OK):
            raise BenchError("no raftstored at %s (build first: "
                             "scripts/bench-recovery.sh)" % harness.RAFTSTORED)
        self.req_timeout = args.request_timeout_ms / 1000.0
        self.rsbench = os.path.join(args.build_dir, "rsbench")
        if args.writer == "rsbench" and not os.access(self.rsbench, os.X_OK):
            raise BenchError("no rsbench at %s (build first: "
                             "scripts/bench-recovery.sh)" % self.rsbench)
        self.follower_errors = None   # [(kill errors, restart errors)] by round
        self.follower_epochs = None   # [(before, left out, re-admitted)]
        self.follower_steal = None    # steal time in the rounds, ms per s

    def stagger(self, k):
        return k * self.req_timeout / self.args.clients

    def cluster(self):
        return self.harness.Cluster(3, election_ms=self.args.election_timeout_ms,
                                    heartbeat_ms=self.args.heartbeat_timeout_ms,
                                    extra_args=tuple(self.args.server_arg))

    def status(self, node, timeout=0.5):
        c = self.rswire.Conn(node.client_addr, timeout)
        try:
            return c.status()
        finally:
            c.close()

    def storage_replicas(self, node):
        c = self.rswire.Conn(node.client_addr, 1.0)
        try:
            items, _, _ = c.range(b"\xff/system/layout/storage/",
                                  b"\xff/system/layout/storage0",
                                  mode=self.rswire.SERIALIZABLE)
            return len(items)
        finally:
            c.close()

    def check_alive(self, c, expect):
        for nid in expect:
            n = c.nodes[nid]
            if not n.alive():
                raise BenchError("raftstore node %d exited (code %s)\n%s" % (
                    nid, n.proc.returncode if n.proc else None, c.logs()))

    def wait_healthy(self, c, what, settle_ms=200):
        """3 live nodes agreeing on a leader in "monitoring" whose layout has
        3 storage replicas.  Returns (leader node, its status)."""
        deadline = now() + self.args.timeout
        last = "no status yet"
        while now() < deadline:
            self.check_alive(c, c.nodes)
            try:
                sts = {nid: self.status(n) for nid, n in c.nodes.items()}
                lids = {st["leader_id"] for st in sts.values()}
                if len(lids) != 1 or 0 in lids:
                    last = "leader ids %s" % sorted(lids)
                else:
                    lid = lids.pop()
                    st = sts[lid]
                    if st["role"] != "leader" or st["proxy"] != "ready":
                        last = "node %d: role %s proxy %s" % (lid, st["role"], st["proxy"])
                    elif st.get("director_phase") != "monitoring":
                        last = "leader %d director_phase %s" % (lid, st.get("director_phase"))
                    elif st.get("phase_ms", 0) < settle_ms:
                        last = "leader %d in monitoring for %s ms only" % (lid, st.get("phase_ms"))
                    else:
                        reps = self.storage_replicas(c.nodes[lid])
                        # Raft too: a node the layout re-admitted may still
                        # be catching up (a snapshot install), and the next
                        # round's kill would then leave no quorum.
                        behind = [nid for nid, x in sts.items()
                                  if x["applied_index"] + RAFT_CAUGHT_UP <
                                  st["commit_index"]]
                        if reps == 3 and not behind:
                            return c.nodes[lid], st
                        last = ("leader %d layout has %d storage replicas, "
                                "Raft behind on %s" % (lid, reps, behind))
            except (OSError, ConnectionError, self.rswire.Error, KeyError) as e:
                last = "%s: %s" % (type(e).__name__, e)
            time.sleep(0.05)
        raise BenchError("raftstore: %s: cluster not back to 3 live nodes in "
                         "monitoring within %.0f s (last: %s)\n%s" % (
                             what, self.args.timeout, last, c.logs()))

    # -- scenario 1: leader SIGKILL -> first commit ------------------------

    def leader_kill_round(self, c, r):
        leader, st = self.wait_healthy(c, "before leader-kill round %d" % r)
        epoch0 = st["epoch"]
        survivors = [n for n in c.nodes.values() if n.id != leader.id]
        race = Race()
        ts = run_threads([(rs_put_loop, (self.rswire, n.client_addr, race,
                                         self.req_timeout, "l%d-%d-%d" % (r, n.id, k),
                                         self.stagger(k)))
                          for n in survivors for k in range(self.args.clients)])
        elected = {}

        def poll_leader():
            race.go.wait()
            conns = {}
            while not race.stop.is_set() and not elected:
                for n in survivors:
                    try:
                        if n.id not in conns:
                            conns[n.id] = self.rswire.Conn(n.client_addr, 0.2)
                        s = conns[n.id].status()
                        if s["role"] == "leader" and "t" not in elected:
                            elected.update(t=now(), id=n.id)
                    except Exception:
                        conns.pop(n.id, None)
                time.sleep(0.01)
            for cn in conns.values():
                _close(cn)

        ts += run_threads([(poll_leader, ())])
        time.sleep(0.05)  # threads parked on race.go
        t0 = now()
        os.kill(leader.proc.pid, signal.SIGKILL)
        race.go.set()
        leader.proc.wait(10)
        if not race.done.wait(self.args.timeout):
            join_threads(race, ts)
            raise BenchError("raftstore leader-kill round %d: no commit accepted "
                             "within %.0f s of SIGKILL (errors: %s)\n%s" % (
                                 r, self.args.timeout, race.error_summary(), c.logs()))
        t1, who = race.first
        join_threads(race, ts)
        # The node that accepted it; its leader's status shows the new epoch.
        new_leader = None
        for n in survivors:
            try:
                s = self.status(n, 1.0)
            except Exception:
                continue
            if s["role"] == "leader":
                new_leader, nst = n, s
        if new_leader is None:
            raise BenchError("raftstore leader-kill round %d: a put succeeded but "
                             "no survivor reports role leader\n%s" % (r, c.logs()))
        if nst["epoch"] <= epoch0:
            raise BenchError("raftstore leader-kill round %d: new leader %d "
                             "reports epoch %d, not above %d" % (
                                 r, new_leader.id, nst["epoch"], epoch0))
        res = {"commit": t1 - t0,
               "elected": elected["t"] - t0 if "t" in elected else None,
               "recovery_ms": nst.get("recovery_ms"),
               "epoch": (epoch0, nst["epoch"])}
        log("  round %d: killed leader %d; commit after %.3f s via %s "
            "(new leader %d elected after %s s, director recovery_ms %s, "
            "epoch %d -> %d; errors before: %s)" % (
                r, leader.id, res["commit"], who, new_leader.id,
                fmt_s(res["elected"]), res["recovery_ms"], epoch0, nst["epoch"],
                race.error_summary()))
        if res["commit"] > self.args.election_timeout_ms / 1000.0:
            self.keep_logs(c, "leader-round-%d" % r,
                           "slower than one election timeout")
        leader.start()
        return res

    def keep_logs(self, c, what, why):
        """A round far off what it should take: keep the nodes' logs
        (raft.peer_closed, raft.fast_election, snapshots) for a look."""
        dest = tempfile.mkdtemp(prefix="bench-recovery-%s-" % what)
        for n in c.nodes.values():
            if os.path.exists(n.log):
                shutil.copy(n.log, dest)
        log("  (%s: the nodes' logs are kept in %s)" % (why, dest))

    # -- scenario 3: follower SIGKILL and restart -> commit gaps -------------

    def wait_replicas(self, c, leader, want, what, t_from):
        """Poll the leader until its layout has `want` storage replicas and
        its director is monitoring; (time, its status)."""
        deadline = t_from + self.args.timeout
        last = None
        while now() < deadline:
            try:
                s = self.status(leader, 1.0)
                last = s
                if s["role"] != "leader":
                    raise BenchError("raftstore %s: node %d lost leadership\n%s"
                                     % (what, leader.id, c.logs()))
                if (s.get("director_phase") == "monitoring" and
                        self.storage_replicas(leader) == want):
                    return now(), s
            except (OSError, ConnectionError, self.rswire.Error) as e:
                last = e
            time.sleep(0.01)
        raise BenchError("raftstore %s: the leader's layout did not reach %d "
                         "storage replicas within %.0f s (last status: %s)\n%s"
                         % (what, want, self.args.timeout, last, c.logs()))

    def follower_kill_round(self, c, r):
        leader, st = self.wait_healthy(c, "before follower round %d" % r)
        epoch0, layout0 = st["epoch"], st["layout_id"]
        followers = sorted(n.id for n in c.nodes.values() if n.id != leader.id)
        victim = c.nodes[followers[r % 2]]
        other = [n for n in c.nodes.values() if n.id not in (victim.id,)]
        if self.args.writer == "rsbench":
            # leader first: the library starts there and stays
            writer = rsbench_writer(self.rsbench,
                                   [n.client_addr for n in sorted(
                                       other, key=lambda n: n.id != leader.id)],
                                   2 * self.args.clients,
                                   self.args.request_timeout_ms, "f%02d" % (r % 100))
        else:
            race = Race(record_all=True)
            ts = run_threads([(rs_put_loop, (self.rswire, n.client_addr, race,
                                             self.req_timeout, "f%d-%d-%d" % (r, n.id, k),
                                             self.stagger(k)))
                              for n in other for k in range(self.args.clients)])
            race.go.set()
        ok = False
        try:
            time.sleep(FOLLOWER_PRE_KILL_S)
            t0 = now()
            wall0 = time.time()  # to find the gaps in the nodes' logs
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.proc.wait(10)
            t_out, s_out = self.wait_replicas(c, leader, 2, "follower round %d "
                                              "(kill)" % r, t0)
            time.sleep(0.5)
            t_restart = now()
            victim.start()
            t_back, s_back = self.wait_replicas(c, leader, 3, "follower round "
                                                "%d (restart)" % r, t_restart)
            time.sleep(0.3)
            ok = True
        finally:
            t_end = now()
            if self.args.writer != "rsbench":
                join_threads(race, ts)
            elif ok:
                race = writer.stop()
            else:
                writer.kill()
        res = gap_stats(race, t0, t_restart, t_end,
                        "raftstore follower round %d" % r)
        res.update({"out": t_out - t0, "back": t_back - t_restart,
                    "epochs": (epoch0, s_out["epoch"], s_back["epoch"]),
                    "layouts": (layout0, s_out.get("layout_id"),
                                s_back.get("layout_id"))})
        steady_gap, kill_gap, kill_at = (res["steady_gap"], res["kill_gap"],
                                         res["kill_at"])
        restart_gap, restart_at = res["restart_gap"], res["restart_at"]
        log("  round %d: follower %d; steady p99 %.1f ms, longest gap %.3f s "
            "(%.2f s before: %.3f s); SIGKILL: longest "
            "commit gap %.3f s (from +%.3f s), errors %s, left out after "
            "%.3f s; restart: longest commit gap %.3f s (from +%.3f s), "
            "errors %s, re-admitted after %.3f s; epoch %d -> %d -> %d, "
            "layout %s -> %s -> %s; %d puts; killed at %s UTC" % (
                r, victim.id, res["steady_p99"] * 1000, steady_gap,
                res["steady_span"], res["steady_gap_span"], kill_gap, kill_at,
                res["kill_errors"], res["out"], restart_gap, restart_at,
                res["restart_errors"], res["back"], *res["epochs"],
                *res["layouts"], len(race.successes),
                time.strftime("%H:%M:%S", time.gmtime(wall0)) +
                ".%03d" % int((wall0 % 1) * 1000)))
        if max(kill_gap, restart_gap) > FOLLOWER_GAP_KEEP_LOGS:
            self.keep_logs(c, "follower-round-%d" % r,
                           "a commit gap over %.0f ms"
                           % (FOLLOWER_GAP_KEEP_LOGS * 1000))
        return res

    # -- scenario 2: start -> ready -----------------------------------------

    def start_round(self, r):
        c = self.cluster()
        try:
            t0 = now()
            c.start_all()
            deadline = t0 + self.args.timeout
            t_leader = None
            while now() < deadline:
                self.check_alive(c, c.nodes)
                for n in c.nodes.values():
                    try:
                        conn = self.rswire.Conn(n.client_addr, 0.2)
                    except OSError:
                        continue
                    try:
                        s = conn.status()
                        if s["role"] == "leader" and t_leader is None:
                            t_leader = now()
                        if s["role"] == "leader" and s.get("director_phase") == "monitoring":
                            conn.put(b"bench/start/%d" % r, b"v")
                            t1 = now()
                            log("  round %d: ready after %.3f s (leader %d after "
                                "%.3f s, director recovery_ms %s)" % (
                                    r, t1 - t0, n.id, t_leader - t0,
                                    s.get("recovery_ms")))
                            return {"ready": t1 - t0, "leader": t_leader - t0,
                                    "recovery_ms": s.get("recovery_ms")}
                    except (OSError, ConnectionError, self.rswire.Error):
                        pass
                    finally:
                        conn.close()
                time.sleep(0.01)
            raise BenchError("raftstore start round %d: not ready within %.0f s\n%s"
                             % (r, self.args.timeout, c.logs()))
        finally:
            c.cleanup()

    def run(self, only):
        a = self.args
        if "leader" in only or "follower" in only:
            wait_disk_quiet("raftstore")
            c = self.cluster()
            try:
                c.start_all()
                if "leader" in only:
                    log("raftstore: leader SIGKILL -> first commit accepted (%d rounds)"
                        % a.rounds)
                    rs = [self.leader_kill_round(c, r + 1) for r in range(a.rounds)]
                    self.results.add("raftstore", "leader SIGKILL -> first commit",
                                     [x["commit"] for x in rs], a.target)
                    el = [x["elected"] for x in rs if x["elected"] is not None]
                    self.results.add("raftstore", "  of which: -> new leader elected", el)
                    self.results.add("raftstore", "  director recovery_ms (server)",
                                     [x["recovery_ms"] / 1000.0 for x in rs
                                      if x["recovery_ms"] is not None])
                if "follower" in only:
                    wait_disk_quiet("raftstore follower rounds")
                    log("raftstore: follower SIGKILL and restart under load (%d rounds)"
                        % a.rounds)
                    steal0, t0 = stall_floor.steal_ms(), now()
                    rs = [self.follower_kill_round(c, r + 1) for r in range(a.rounds)]
                    self.follower_steal = steal_rate(steal0, t0)
                    add_follower_results(self.results, "raftstore", rs)
                    self.results.add("raftstore", "  SIGKILL -> layout leaves it out",
                                     [x["out"] for x in rs])
                    self.results.add("raftstore", "  restart -> layout re-admits it",
                                     [x["back"] for x in rs])
                    self.follower_errors = [(x["kill_errors"], x["restart_errors"])
                                            for x in rs]
                    self.follower_epochs = [x["epochs"] for x in rs]
                self.wait_healthy(c, "at the end")
            finally:
                c.cleanup()
        if "start" in only:
            log("raftstore: start -> ready (%d rounds, fresh cluster each)" % a.rounds)
            rs = [self.start_round(r + 1) for r in range(a.rounds)]
            self.results.add("raftstore", "start -> ready (monitoring + put)",
                             [x["ready"] for x in rs])
            self.results.add("raftstore", "  of which: -> leader elected",
                             [x["leader"] for x in rs])


# ---------------------------------------------------------------------------
# etcd
# ---------------------------------------------------------------------------

def ports_free(ports):
    socks = []
    try:
        for p in ports:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            socks.append(s)
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def proc_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
        return st != "Z"
    except (OSError, IndexError):
        return False


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


class EtcdBench:
    SCRIPT = os.path.join(ROOT, "scripts", "etcd-cluster.sh")

    def __init__(self, args, results):
        self.args, self.results = args, results
        self.etcdctl = shutil.which("etcdctl")
        if shutil.which("etcd") is None or self.etcdctl is None:
            raise BenchError("etcd/etcdctl not found (apt-get install etcd-server etcd-client)")
        self.dir = tempfile.mkdtemp(prefix="bench-recovery-etcd-")
        self.pids = {}       # member n -> pid (ours or the script's)
        self.children = []   # Popen of members we restarted
        self.base = None
        self.req_timeout = args.request_timeout_ms / 1000.0
        self.rsbench = os.path.join(args.build_dir, "rsbench")
        if args.writer == "rsbench" and not os.access(self.rsbench, os.X_OK):
            raise BenchError("no rsbench at %s (build first: "
                             "scripts/bench-recovery.sh)" % self.rsbench)
        self.etcdbench = os.path.join(args.build_dir, "etcdbench")
        self.follower_steal = None    # steal time in the rounds, ms per s
        self.follower_errors = None

    def port(self, n):
        return self.base + n - 1

    def start(self):
        for attempt in range(10):
            base = random.randrange(20000, 60000)
            if not ports_free([base, base + 1, base + 2,
                               base + 10, base + 11, base + 12]):
                continue
            r = subprocess.run([self.SCRIPT, "start", self.dir, str(base)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=self.args.timeout + 30)
            self.read_pids()
            if r.returncode == 0:
                self.base = base
                return
            err = r.stderr.decode("utf-8", "replace")
            if "already in use" not in err:
                raise BenchError("etcd-cluster.sh start failed:\n" + err)
        raise BenchError("etcd: no free port range found in 10 tries")

    def read_pids(self):
        for n in (1, 2, 3):
            try:
                with open(os.path.join(self.dir, "etcd%d.pid" % n)) as f:
                    self.pids[n] = int(f.read().strip())
            except (OSError, ValueError):
                pass

    def ours(self, pid):
        return ("--data-dir" in (cl := proc_cmdline(pid)) and
                cl[cl.index("--data-dir") + 1].startswith(self.dir))

    def cleanup(self):
        for n, pid in list(self.pids.items()):
            if proc_alive(pid) and self.ours(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for p in self.children:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        deadline = now() + 10
        while now() < deadline and any(proc_alive(p) for p in self.pids.values()):
            time.sleep(0.05)
        for n in (1, 2, 3):
            try:
                os.unlink(os.path.join(self.dir, "etcd%d.pid" % n))
            except OSError:
                pass
        if self.args.keep:
            log("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        out = []
        for n in (1, 2, 3):
            try:
                with open(os.path.join(self.dir, "etcd%d.log" % n), "rb") as f:
                    tail = f.readlines()[-8:]
                out.append("--- etcd%d\n%s" % (n, b"".join(tail).decode("utf-8", "replace")))
            except OSError:
                pass
        return "\n".join(out)

    def status(self, n, timeout=0.5):
        c = http.client.HTTPConnection("127.0.0.1", self.port(n), timeout=timeout)
        try:
            c.request("POST", "/v3/maintenance/status", "{}",
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            d = json.loads(r.read())
            if r.status != 200:
                raise RuntimeError("status %d: %s" % (r.status, d))
            return d
        finally:
            c.close()

    def check_alive(self):
        for n, pid in self.pids.items():
            if not proc_alive(pid):
                raise BenchError("etcd member %d (pid %d) is not running\n%s" % (
                    n, pid, self.logs()))

    def wait_healthy(self, what):
        """3 members agreeing on one leader, applied up to date, and a put
        through each.  Returns the leader's member number."""
        deadline = now() + self.args.timeout
        last = None
        while now() < deadline:
            self.check_alive()
            try:
                sts = {n: self.status(n) for n in (1, 2, 3)}
                ids = {n: st["header"]["member_id"] for n, st in sts.items()}
                leaders = {st.get("leader") for st in sts.values()}
                index = max(int(st.get("raftIndex", 0)) for st in sts.values())
                lagging = [n for n, st in sts.items()
                           if int(st.get("raftAppliedIndex", 0)) + 5 < index]
                if len(leaders) != 1 or list(leaders)[0] in (None, "0"):
                    last = "leaders %s" % leaders
                elif lagging:
                    last = "members %s lag behind index %d" % (lagging, index)
                else:
                    lid = list(leaders)[0]
                    lnum = [n for n, i in ids.items() if i == lid]
                    if not lnum:
                        last = "leader %s is not one of ours" % lid
                    else:
                        for n in (1, 2, 3):
                            c = http.client.HTTPConnection("127.0.0.1", self.port(n),
                                                           timeout=1.0)
                            try:
                                etcd_http_put(c, b"bench/health/%d" % n, 1.0)
                            finally:
                                c.close()
                        return lnum[0]
            except Exception as e:
                last = "%s: %s" % (type(e).__name__, e)
            time.sleep(0.1)
        raise BenchError("etcd: %s: cluster not healthy within %.0f s (last: %s)\n%s"
                         % (what, self.args.timeout, last, self.logs()))

    def endpoint(self, n):
        return "127.0.0.1:%d" % self.port(n)

    def etcdctl_baseline(self):
        ds = []
        for i in range(10):
            for n in (1, 2, 3):
                t = now()
                ok, err = etcdctl_put(self.etcdctl, self.endpoint(n),
                                      "bench/baseline/%d" % i, self.args.request_timeout_ms)
                if not ok:
                    raise BenchError("etcd: healthy etcdctl put failed: " + err)
                ds.append(now() - t)
        return statistics.median(ds), max(ds)

    def restart(self, n, cmdline):
        logf = open(os.path.join(self.dir, "etcd%d.log" % n), "ab")
        p = subprocess.Popen(cmdline, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        self.children.append(p)
        self.pids[n] = p.pid
        with open(os.path.join(self.dir, "etcd%d.pid" % n), "w") as f:
            f.write("%d\n" % p.pid)

    def leader_kill_round(self, r, baseline):
        lnum = self.wait_healthy("before leader-kill round %d" % r)
        pid = self.pids[lnum]
        cmdline = proc_cmdline(pid)
        if not cmdline or not self.ours(pid):
            raise BenchError("etcd: cannot read the command line of member %d (pid %d)"
                             % (lnum, pid))
        survivors = [n for n in (1, 2, 3) if n != lnum]
        http_race, ctl_race = Race(), Race()
        k_http = self.args.clients
        ts = run_threads(
            [(etcd_http_loop, (self.port(n), http_race, self.req_timeout,
                               "h%d-%d-%d" % (r, n, k), k * self.req_timeout / k_http))
             for n in survivors for k in range(k_http)] +
            [(etcdctl_loop, (self.etcdctl, self.endpoint(n), ctl_race,
                             self.args.request_timeout_ms, "c%d-%d" % (r, n)))
             for n in survivors])
        time.sleep(0.05)
        t0 = now()
        os.kill(pid, signal.SIGKILL)
        http_race.go.set()
        ctl_race.go.set()
        ok = http_race.done.wait(self.args.timeout) and \
            ctl_race.done.wait(max(1.0, self.args.timeout - (now() - t0)))
        join_threads(http_race, ts[:len(survivors) * k_http])
        join_threads(ctl_race, ts[len(survivors) * k_http:])
        for p in self.children:
            if p.pid == pid:
                p.wait(10)
        deadline = now() + 10
        while proc_alive(pid) and now() < deadline:
            time.sleep(0.01)
        if not ok:
            raise BenchError("etcd leader-kill round %d: no successful put within "
                             "%.0f s (http errors: %s; etcdctl errors: %s)\n%s" % (
                                 r, self.args.timeout, http_race.error_summary(),
                                 ctl_race.error_summary(), self.logs()))
        th = http_race.first[0] - t0
        tc_raw = ctl_race.first[0] - t0
        tc = max(0.0, tc_raw - baseline)
        log("  round %d: killed leader etcd%d; first put after %.3f s (HTTP gateway), "
            "%.3f s (etcdctl: %.3f s raw - %.3f s baseline); errors before: http %s"
            % (r, lnum, th, tc, tc_raw, baseline, http_race.error_summary()))
        self.restart(lnum, cmdline)
        return {"http": th, "etcdctl": tc}

    def wait_caught_up(self, n, lnum, what, t_from):
        """Poll until member n answers, follows the leader lnum and has
        applied to within RAFT_CAUGHT_UP of the leader's index; the time."""
        deadline = t_from + self.args.timeout
        last = None
        while now() < deadline:
            try:
                st, ls = self.status(n), self.status(lnum)
                if st.get("leader") != ls["header"]["member_id"]:
                    last = "member %d follows %s" % (n, st.get("leader"))
                elif int(st.get("raftAppliedIndex", 0)) + RAFT_CAUGHT_UP < \
                        int(ls.get("raftIndex", 0)):
                    last = "member %d applied %s of %s" % (
                        n, st.get("raftAppliedIndex"), ls.get("raftIndex"))
                else:
                    return now()
            except Exception as e:
                last = "%s: %s" % (type(e).__name__, e)
            time.sleep(0.01)
        raise BenchError("etcd %s: member %d did not catch up within %.0f s "
                         "(last: %s)\n%s" % (what, n, self.args.timeout, last,
                                             self.logs()))

    def follower_kill_round(self, r):
        lnum = self.wait_healthy("before follower round %d" % r)
        victim = [n for n in (1, 2, 3) if n != lnum][r % 2]
        pid = self.pids[victim]
        cmdline = proc_cmdline(pid)
        if not cmdline or not self.ours(pid):
            raise BenchError("etcd: cannot read the command line of member %d "
                             "(pid %d)" % (victim, pid))
        clients = 2 * self.args.clients
        writer = TimelineWriter(
            [self.etcdbench, "--endpoints",
             ",".join(self.endpoint(n) for n in (1, 2, 3) if n != victim),
             "--op", "put", "--clients", str(clients),
             "--conns", str(min(clients, 8)), "--duration", "3600",
             "--op-timeout", str(self.args.request_timeout_ms / 1000.0),
             "--prefix", "f%02d" % (r % 100), "--route", "leader"], "etcdbench")
        ok = False
        try:
            time.sleep(2.0)  # Go's client dials and finds the leader first
            t0 = now()
            os.kill(pid, signal.SIGKILL)
            for p in self.children:
                if p.pid == pid:
                    p.wait(10)
            while proc_alive(pid) and now() < t0 + 10:
                time.sleep(0.01)
            time.sleep(1.0)
            t_restart = now()
            self.restart(victim, cmdline)
            t_back = self.wait_caught_up(victim, lnum, "follower round %d" % r,
                                         t_restart)
            time.sleep(0.3)
            ok = True
        finally:
            t_end = now()
            if ok:
                race = writer.stop()
            else:
                writer.kill()
        res = gap_stats(race, t0, t_restart, t_end, "etcd follower round %d" % r)
        res["back"] = t_back - t_restart
        log("  round %d: follower etcd%d; steady p99 %.1f ms, longest gap %.3f s; "
            "SIGKILL: longest commit gap %.3f s (from +%.3f s), errors %s; "
            "restart: longest commit gap %.3f s (from +%.3f s), errors %s, "
            "caught up after %.3f s; %d puts" % (
                r, victim, res["steady_p99"] * 1000, res["steady_gap"],
                res["kill_gap"], res["kill_at"], res["kill_errors"],
                res["restart_gap"], res["restart_at"], res["restart_errors"],
                res["back"], len(race.successes)))
        return res

    def run(self, only):
        a = self.args
        try:
            wait_disk_quiet("etcd 3.4")
            self.start()
            log("etcd 3.4: cluster in %s, client ports %d-%d"
                % (self.dir, self.base, self.base + 2))
            self.wait_healthy("after start")
            if "etcd-follower" in only:
                if not os.access(self.etcdbench, os.X_OK):
                    raise BenchError("no etcdbench at %s (scripts/bench-recovery.sh "
                                     "builds it)" % self.etcdbench)
                log("etcd 3.4: follower SIGKILL and restart under load (%d rounds)"
                    % a.rounds)
                steal0, t0 = stall_floor.steal_ms(), now()
                fs = [self.follower_kill_round(r + 1) for r in range(a.rounds)]
                self.follower_steal = steal_rate(steal0, t0)
                add_follower_results(self.results, "etcd", fs)
                self.follower_errors = [(x["kill_errors"], x["restart_errors"])
                                        for x in fs]
            if "etcd" in only:
                log("etcd 3.4: leader SIGKILL -> first successful put (%d rounds)"
                    % a.rounds)
                base_med, base_max = self.etcdctl_baseline()
                log("  healthy etcdctl put (spawn + RPC): median %.3f s, max %.3f s "
                    "(subtracted below)" % (base_med, base_max))
                rs = [self.leader_kill_round(r + 1, base_med) for r in range(a.rounds)]
            self.wait_healthy("at the end")
        finally:
            self.cleanup()
        if "etcd" in only:
            self.results.add("etcd", "leader SIGKILL -> first put (HTTP)",
                             [x["http"] for x in rs], a.target)
            self.results.add("etcd", "leader SIGKILL -> first put (etcdctl)",
                             [x["etcdctl"] for x in rs], a.target)


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description="Recovery times of raftstore and etcd 3.4 on loopback "
                    "(see the module docstring).")
    ap.add_argument("--rounds", type=int, default=10, help="rounds per scenario (10)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"),
                    help="where raftstored is (build-bench/)")
    ap.add_argument("--only", default="leader,start,follower,etcd,etcd-follower",
                    help="comma-separated subset of leader,start,follower,etcd,"
                         "etcd-follower")
    ap.add_argument("--request-timeout-ms", type=int, default=200,
                    help="client per-request timeout while waiting (200)")
    ap.add_argument("--clients", type=int, default=4,
                    help="client threads per surviving node, their starts "
                         "staggered over one request timeout, so a request "
                         "stuck until its timeout costs at most "
                         "timeout/clients of resolution (4; etcdctl: 1); the "
                         "follower scenario's rsbench runs 2 x this many loops")
    ap.add_argument("--writer", choices=("rsbench", "python"), default="rsbench",
                    help="the follower scenario's writers: one rsbench process "
                         "(C client library, 2 x --clients loops; default) or "
                         "--clients Python threads per surviving node")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds any single wait may take before the run fails (30)")
    ap.add_argument("--target", type=float, default=None,
                    help="commit-resume target in s (default 1.5 x election timeout)")
    ap.add_argument("--election-timeout-ms", type=int, default=1000,
                    help=argparse.SUPPRESS)  # raftstore default; kept for experiments
    ap.add_argument("--heartbeat-timeout-ms", type=int, default=100,
                    help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the etcd data dir")
    ap.add_argument("--stall-floor-seconds", type=int, default=10,
                    help="before the follower rounds, measure the machine alone "
                         "for this long (scripts/stall-floor.py: 3 O_DSYNC "
                         "writers, no database), so the gaps can be read against "
                         "it (10; 0 skips it)")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="one more raftstored argument (repeat for each, "
                         "e.g. --server-arg=--snapshot-threshold --server-arg=65536)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if args.stall_floor_seconds < 0:
        ap.error("--stall-floor-seconds must be 0 or more")
    if args.clients < 1:
        ap.error("--clients must be at least 1")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    bad = only - {"leader", "start", "follower", "etcd", "etcd-follower"}
    if bad:
        ap.error("unknown scenario(s): %s" % ", ".join(sorted(bad)))
    if args.target is None:
        args.target = 1.5 * args.election_timeout_ms / 1000.0
    args.build_dir = os.path.abspath(args.build_dir)
    seed = args.seed if args.seed is not None else int(time.time())
    random.seed(seed)

    # SIGTERM/SIGHUP end the run like Ctrl-C, so every finally runs.
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    log("bench-recovery: %d rounds, seed %d, request timeout %d ms, %d clients per node, "
        "raftstore --election-timeout-ms %d --heartbeat-timeout-ms %d, "
        "etcd defaults (election 1000 ms, heartbeat 100 ms), build %s"
        % (args.rounds, seed, args.request_timeout_ms, args.clients, args.election_timeout_ms,
           args.heartbeat_timeout_ms, args.build_dir))
    results = Results()
    rs_bench = etcd_bench = None
    floor = None
    t_start = now()
    try:
        if only & {"follower", "etcd-follower"} and args.stall_floor_seconds > 0:
            wait_disk_quiet("stall floor")
            try:
                floor = stall_floor.measure(tempfile.gettempdir(), 3,
                                            args.stall_floor_seconds)
            except OSError as e:
                raise BenchError("stall floor: %s" % e)
            log("the machine alone, before the follower rounds: %s"
                % stall_floor.summary(floor))
            results.add("machine", "stall floor: slowest write per second",
                        [x / 1000.0 for x in floor["per_second_worst_ms"]])
        if only & {"leader", "start", "follower"}:
            rs_bench = RaftstoreBench(args, results)
            rs_bench.run(only)
        if only & {"etcd", "etcd-follower"}:
            etcd_bench = EtcdBench(args, results)
            etcd_bench.run(only)
    except BenchError as e:
        print("bench-recovery: FAILED: %s" % e, file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("bench-recovery: interrupted; processes killed", file=sys.stderr)
        return 130

    log("")
    log("Results (%d rounds each, %.0f s total; p90 = nearest rank; "
        "target = 1.5 x election timeout, or 2 x steady p99 for the follower "
        "gaps):" % (args.rounds, now() - t_start))
    log(results.table())
    log("")
    r = results.get("raftstore", "leader SIGKILL -> first commit")
    if r:
        log(verdict_line("raftstore", "commits resume after leader SIGKILL:", r[2], r[3]))
    for system in ("raftstore", "etcd"):
        for label in ("SIGKILL", "restart"):
            r = results.get(system, "follower %s: commit gap" % label)
            if r:
                log(verdict_line(system, "longest commit gap on follower %s "
                                 "(target 2 x steady p99):" % label, r[2], r[3]))
        r = results.get(system, "follower SIGKILL: commit gap")
        st = results.get(system, "  steady: longest gap (1 s before)")
        if r and st:
            within = sum(x <= r[3] for x in st[2])
            log("%s: the same measure with nothing failing (longest gap in "
                "the second before each kill): median %.3f s, p90 %.3f s; %d/%d "
                "of those seconds within the target" % (
                    system, statistics.median(st[2]), p90(st[2]), within,
                    len(st[2])))
        sp = results.get(system, "  steady: longest gap (as long as the kill's)")
        win = results.get(system, "    that window (the kill's, as far as it went)")
        if r and sp and win:
            within = sum(x <= r[3] for x in sp[2])
            log("%s: the same over as long a window before each kill as the "
                "kill's own (median %.2f s, shortest %.2f s): median %.3f s, "
                "p90 %.3f s; %d/%d of those windows within the target" % (
                    system, statistics.median(win[2]), min(win[2]),
                    statistics.median(sp[2]), p90(sp[2]), within, len(sp[2])))
        if r and floor is not None:
            fl = [x / 1000.0 for x in floor["per_second_worst_ms"]]
            log("%s: the machine alone (no database; scripts/stall-floor.py): "
                "slowest durable write per second median %.3f s, max %.3f s; "
                "%d/%d of those seconds within %s's target" % (
                    system, statistics.median(fl), max(fl),
                    sum(x <= r[3] for x in fl), len(fl), system))
        bench = rs_bench if system == "raftstore" else etcd_bench
        if r and bench is not None and bench.follower_steal is not None:
            log("%s: steal time during the follower rounds (the hypervisor "
                "running something else while a vCPU was ready): %.1f ms per "
                "second, all CPUs" % (system, bench.follower_steal))
    if rs_bench is not None and rs_bench.follower_errors is not None:
        errs = rs_bench.follower_errors
        clean = sum(k == "none" and x == "none" for k, x in errs)
        log("raftstore: writer errors in follower rounds: %d/%d rounds without "
            "any%s" % (clean, len(errs), "" if clean == len(errs) else "; " + "; ".join(
                "round %d: kill %s, restart %s" % (i + 1, k, x)
                for i, (k, x) in enumerate(errs) if (k, x) != ("none", "none"))))
        changed = sum(e[0] != e[2] for e in rs_bench.follower_epochs)
        log("raftstore: epoch changed in %d/%d follower rounds" % (changed, len(errs)))
    if etcd_bench is not None and etcd_bench.follower_errors is not None:
        errs = etcd_bench.follower_errors
        clean = sum(k == "none" and x == "none" for k, x in errs)
        log("etcd: writer errors in follower rounds: %d/%d rounds without any"
            % (clean, len(errs)))
    e = results.get("etcd", "leader SIGKILL -> first put (HTTP)")
    if e:
        log(verdict_line("etcd 3.4", "puts resume after leader SIGKILL:", e[2], e[3]))
    r = results.get("raftstore", "leader SIGKILL -> first commit")
    if r and e:
        log(etcd_ratio_line(r[2], e[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
