#!/usr/bin/env python3
"""raftstored under a Type=notify unit (issue 14, section 1).

systemd's notify protocol without systemd: the test binds the datagram
socket that $NOTIFY_SOCKET names and starts raftstored with it, as
systemd does:

  * READY=1 arrives once, and when it does the client port already
    answers; SIGTERM then brings STOPPING=1 and a clean exit 0;
  * an abstract socket ("@name") works the same;
  * a NOTIFY_SOCKET that names no socket is logged (node.notify_failed)
    and the node serves anyway;
  * the shipped example config (dist/raftstored.conf, as the unit
    reads it, with only the addresses and data dir overridden by flags)
    starts a one-node cluster that takes writes.
"""
import os
import signal
import socket
import subprocess
import time

from harness import RAFTSTORED, RSCTL, Cluster, free_ports, run_tests
import rswire

SRCDIR = os.environ.get("top_srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")


class NotifySocket:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + path[1:] if path.startswith("@") else path)
        self.path = path

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def close(self):
        self.sock.close()


def start_notified(node, path, args=None):
    old = os.environ.get("NOTIFY_SOCKET")
    os.environ["NOTIFY_SOCKET"] = path
    try:
        node.start(args)
    finally:
        if old is None:
            del os.environ["NOTIFY_SOCKET"]
        else:
            os.environ["NOTIFY_SOCKET"] = old


def ready_then_stopping(c, path):
    ns = NotifySocket(path)
    try:
        n = c.nodes[1]
        start_notified(n, path)
        assert ns.receive(15) == "READY=1", n.tail()
        # Ready means listening: the client port answers at once.
        conn = rswire.Conn(n.client_addr, 5.0)
        conn.close()
        c.leader()
        n.signal(signal.SIGTERM)
        assert ns.receive(15) == "STOPPING=1", n.tail()
        assert n.proc.wait(15) == 0, n.tail()
        # Nothing else was sent (READY=1 once).
        ns.sock.settimeout(0.2)
        try:
            extra = ns.sock.recv(4096)
        except socket.timeout:
            extra = None
        assert extra is None, extra
    finally:
        ns.close()


def test_ready_and_stopping_on_a_path_socket():
    c = Cluster(1)
    try:
        ready_then_stopping(c, os.path.join(c.dir, "notify.sock"))
    finally:
        c.cleanup()


def test_abstract_socket():
    c = Cluster(1)
    try:
        ready_then_stopping(c, "@raftstore-test-%d-%d" % (os.getpid(),
                                                          time.time_ns()))
    finally:
        c.cleanup()


def test_bad_notify_socket_is_logged_not_fatal():
    c = Cluster(1)
    try:
        n = c.nodes[1]
        start_notified(n, "relative/path")
        c.leader()
        assert n.alive()
        assert "event=node.notify_failed" in n.tail(200), n.tail()
        assert "relative/path" in n.tail(200), n.tail()
    finally:
        c.cleanup()


def test_example_config_runs_a_one_node_cluster():
    c = Cluster(1)
    ns = None
    try:
        n = c.nodes[1]
        metrics_port = free_ports(1)[0]
        conf = os.path.join(SRCDIR, "dist", "raftstored.conf")
        path = os.path.join(c.dir, "notify.sock")
        ns = NotifySocket(path)
        start_notified(n, path, [
            RAFTSTORED, "--config", conf, "--data-dir", n.dir,
            "--initial-cluster",
            "1=%s/%s" % (n.raft_addr, n.client_addr),
            "--metrics-addr", "127.0.0.1:%d" % metrics_port])
        assert ns.receive(15) == "READY=1", n.tail()
        c.leader()
        p = subprocess.run([RSCTL, "put", "k", "v", "--endpoints",
                            n.client_addr], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        assert p.returncode == 0, p.stdout
        p = subprocess.run([RSCTL, "get", "k", "--endpoints", n.client_addr],
                           stdout=subprocess.PIPE, timeout=30)
        assert p.stdout == b"v\n", p.stdout
    finally:
        if ns is not None:
            ns.close()
        c.cleanup()


if __name__ == "__main__":
    run_tests([test_ready_and_stopping_on_a_path_socket,
               test_abstract_socket,
               test_bad_notify_socket_is_logged_not_fatal,
               test_example_config_runs_a_one_node_cluster])
