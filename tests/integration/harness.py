"""Multi-process test harness: real raftstored processes on loopback.

Each Cluster lives in its own temporary directory with ports picked free
at start.  Every process it starts is remembered by PID and killed (SIGKILL
after SIGTERM) when the cluster is cleaned up, also on test failure and on
interpreter exit.
"""
import atexit
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rswire  # noqa: E402
import ports as portpick  # noqa: E402

BUILD = os.environ.get("top_builddir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
RAFTSTORED = os.path.join(os.path.abspath(BUILD), "raftstored")
RSCTL = os.path.join(os.path.abspath(BUILD), "rsctl")

_live = []


def _cleanup_all():
    for c in list(_live):
        c.cleanup()


atexit.register(_cleanup_all)


def free_ports(n):
    """n distinct loopback ports that are free right now, below the
    ephemeral range (ports.py says why)."""
    return portpick.free_ports(n)


class Node:
    def __init__(self, cluster, nid, raft_port, client_port):
        self.cluster, self.id = cluster, nid
        self.raft_addr = "127.0.0.1:%d" % raft_port
        self.client_addr = "127.0.0.1:%d" % client_port
        self.dir = os.path.join(cluster.dir, "n%d" % nid)
        self.proc = None
        self.log = os.path.join(cluster.dir, "n%d.log" % nid)

    def args(self):
        return [RAFTSTORED, "--id", str(self.id), "--data-dir", self.dir,
                "--initial-cluster", self.cluster.initial_cluster(),
                "--election-timeout-ms", str(self.cluster.election_ms),
                "--heartbeat-timeout-ms", str(self.cluster.heartbeat_ms)] + \
            list(self.cluster.extra_args)

    def start(self, args=None):
        assert self.proc is None or self.proc.poll() is not None
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args or self.args(), stdout=logf,
                                     stderr=subprocess.STDOUT)
        logf.close()
        return self.proc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("node %d ignored SIGTERM" % self.id)
        return self.proc.returncode

    def conn(self, timeout=10.0):
        return rswire.Conn(self.client_addr, timeout)

    def status(self):
        c = self.conn(2.0)
        try:
            return c.status()
        finally:
            c.close()

    def tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


class Cluster:
    def __init__(self, n=3, election_ms=600, heartbeat_ms=60, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="rs-cluster-")
        ports = free_ports(2 * n)
        self.nodes = {i + 1: Node(self, i + 1, ports[2 * i], ports[2 * i + 1])
                      for i in range(n)}
        self.election_ms, self.heartbeat_ms = election_ms, heartbeat_ms
        self.extra_args = extra_args
        _live.append(self)

    def initial_cluster(self):
        return ",".join("%d=%s/%s" % (n.id, n.raft_addr, n.client_addr)
                        for n in self.nodes.values())

    def endpoints(self):
        return ",".join(n.client_addr for n in self.nodes.values())

    def start_all(self, order=None):
        for nid in order or list(self.nodes):
            self.nodes[nid].start()

    def leader(self, timeout=15.0, exclude=()):
        """Wait until the live nodes agree on a ready leader; its id."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for n in self.nodes.values():
                if not n.alive() or n.id in exclude:
                    continue
                try:
                    st = n.status()
                except (OSError, rswire.Error, ConnectionError) as e:
                    last = e
                    continue
                if st["role"] == "leader" and st["proxy"] == "ready":
                    return n.id
            time.sleep(0.05)
        raise AssertionError("no ready leader within %.0fs (%s)\n%s" % (
            timeout, last, self.logs()))

    def logs(self):
        return "\n".join("--- node %d (alive=%s)\n%s" % (n.id, n.alive(), n.tail())
                         for n in self.nodes.values())

    def lost_events(self):
        """Log lines of audit events a node's writer refused: each is an
        event lost, which fails the test that caused it."""
        found = []
        for n in self.nodes.values():
            try:
                with open(n.log, "rb") as f:
                    for line in f:
                        if b"event=audit.event_refused" in line or \
                                line.startswith(b"audit: event "):
                            found.append("node %d: %s" % (
                                n.id, line.decode("utf-8", "replace").strip()))
            except OSError:
                pass
        return found

    def cleanup(self):
        for n in self.nodes.values():
            if n.proc is not None and n.proc.poll() is None:
                try:
                    n.proc.send_signal(signal.SIGCONT)
                    n.proc.kill()
                    n.proc.wait(10)
                except Exception:
                    pass
        if self in _live:
            _live.remove(self)
        if os.environ.get("RS_KEEP_TEST_DIRS"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def status_or_none(n):
    """n's STATUS, or None if it is down or does not answer."""
    if not n.alive():
        return None
    try:
        return n.status()
    except (OSError, ConnectionError, rswire.Error):
        return None


def retry(fn, timeout=10.0, what="operation"):
    """Call fn until it does not raise a retryable error or connection error."""
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except rswire.Error as e:
            if e.code not in rswire.RETRYABLE or time.time() > deadline:
                raise
        except (OSError, ConnectionError):
            if time.time() > deadline:
                raise
        time.sleep(0.05)


def run_tests(tests):
    """Run test functions; print a summary line; exit non-zero on failure."""
    seed = int(os.environ.get("RS_TEST_SEED", str(int(time.time()))))
    random.seed(seed)
    print("seed=%d (rerun with RS_TEST_SEED=%d)" % (seed, seed), flush=True)
    passed = failed = 0
    only = os.environ.get("RS_TEST_ONLY")
    for t in tests:
        if only and only not in t.__name__:
            continue
        t0 = time.time()
        try:
            t()
            lost = [line for c in _live for line in c.lost_events()]
            assert not lost, "audit events refused:\n" + "\n".join(lost)
            passed += 1
            print("PASS %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
            traceback.print_exc()
        finally:
            _cleanup_all()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
