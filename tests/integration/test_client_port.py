#!/usr/bin/env python3
"""Multi-process tests of the client port's limits (issue 12, section 1).

  * a connection stuck in a partial frame is answered RS_ETIMEOUT and
    closed after --client-frame-timeout-ms; connections idle between frames
    (a pooled one, a watch) are not;
  * past --max-client-connections a connection gets RS_EUNAVAILABLE "too
    many client connections (N)" and is closed, rsctl reports it and exits
    non-zero, and a slot freed lets the next one in;
  * REGISTER (the one internal frame) from a node id that is not a member,
    or from an IP no member has, is refused with a reason, and the director
    never sees it: the layout of the next recovery does not name it;
  * each is logged and counted in /metrics, and --help tells the truth.
"""
import json
import socket
import struct
import subprocess
import time
import urllib.request

from harness import RAFTSTORED, RSCTL, Cluster, free_ports, retry, run_tests
import rswire

REGISTER = 9


def start_with_metrics(c):
    """Start every node with its own --metrics-addr; {id: metrics url}."""
    ports = free_ports(len(c.nodes))
    urls = {}
    for (nid, n), port in zip(c.nodes.items(), ports):
        n.start(n.args() + ["--metrics-addr", "127.0.0.1:%d" % port])
        urls[nid] = "http://127.0.0.1:%d/metrics" % port
    return urls


def metric(url, name):
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError("%s not in %s" % (name, url))


def log_lines(node, event):
    with open(node.log, "rb") as f:
        return [l.decode("utf-8", "replace") for l in f
                if b"event=" + event.encode() + b" " in l]


def expect_refusal(conn, code):
    """The next frame is a refusal (request id 0) with this code, then EOF;
    returns its message."""
    ftype, _, rid, body = conn.recv_frame()
    assert rid == 0 and ftype == rswire.STATUS | rswire.RESPONSE, (ftype, rid)
    r = rswire.Reader(body)
    status, message = r.u32(), r.bytes().decode()
    assert status == rswire.CODE[code], (rswire.error_name(status), message)
    try:
        conn.recv_frame()
        raise AssertionError("connection still open after the refusal")
    except (ConnectionError, OSError):
        pass
    return message


def settle_connections(node, want):
    """Wait until the node serves `want` connections besides the asker."""
    deadline = time.time() + 5
    while node.status()["connections"] != want + 1:
        assert time.time() < deadline, node.status()["connections"]
        time.sleep(0.05)


def test_partial_frame_closed_idle_connections_kept():
    c = Cluster(n=1, extra_args=("--client-frame-timeout-ms", "300"))
    urls = start_with_metrics(c)
    c.leader()
    node = c.nodes[1]
    idle = node.conn()
    idle.status()
    # [w/, w0): the prefix w/ only, not the system keys after it
    watch = rswire.Watch(node.client_addr, b"w/", b"w0")
    stuck = node.conn()
    whole = rswire.frame(rswire.STATUS, 5, b"")
    stuck.send_raw(whole[:10])
    t0 = time.time()
    message = expect_refusal(stuck, "ETIMEOUT")
    waited = time.time() - t0
    assert 0.25 <= waited < 3.0, waited
    assert "no complete frame within 300 ms (10 bytes" in message, message
    lines = log_lines(node, "client.frame_timeout")
    assert len(lines) == 1 and " bytes=10 " in lines[0] and "peer=127.0.0.1:" in lines[0], lines
    assert metric(urls[1], "raftstore_client_frame_timeouts_total") == 1
    # Idle between frames for several timeouts: both still served.
    time.sleep(1.2)
    assert idle.status()["role"] == "leader"
    v = retry(lambda: idle.put(b"w/1", b"x"))
    got, muts = watch.next()
    assert got == v and muts == [("set", b"w/1", b"x")], (got, muts)
    # A frame sent slowly but finished in time is served.
    slow = node.conn()
    slow.send_raw(whole[:7])
    time.sleep(0.1)
    slow.send_raw(whole[7:])
    ftype, _, rid, _ = slow.recv_frame()
    assert rid == 5 and ftype == rswire.STATUS | rswire.RESPONSE
    assert metric(urls[1], "raftstore_client_frame_timeouts_total") == 1
    for x in (idle, watch, slow):
        x.close()


def test_connection_cap_refuses_then_admits():
    c = Cluster(n=1, extra_args=("--max-client-connections", "3"))
    urls = start_with_metrics(c)
    c.leader()
    node = c.nodes[1]
    time.sleep(0.3)  # the leader() probes' connections are gone
    held = [node.conn() for _ in range(3)]
    for h in held:
        assert h.status()["connections"] == 3
    over = node.conn()
    message = expect_refusal(over, "EUNAVAILABLE")
    assert message == "too many client connections (3)", message
    r = subprocess.run([RSCTL, "get", "k", "--endpoints", node.client_addr,
                        "--timeout-ms", "1500"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0, r
    assert "too many client connections (3)" in r.stdout + r.stderr, r
    assert log_lines(node, "client.refused"), node.tail()
    assert metric(urls[1], "raftstore_client_connections_refused_total") >= 2
    assert metric(urls[1], "raftstore_client_connections") == 3
    held.pop().close()
    deadline = time.time() + 5
    while True:  # the server sees the close a moment later
        fresh = node.conn()
        try:
            assert fresh.status()["connections"] == 3
            break
        except rswire.Error as e:
            assert e.code == rswire.CODE["EUNAVAILABLE"], e
            assert time.time() < deadline, "no slot freed"
        fresh.close()
        time.sleep(0.1)
    for h in held + [fresh]:
        h.close()


def register_body(node_id, raft_addr, client_addr):
    return (struct.pack("<Q", node_id) + rswire.bytes_field(raft_addr.encode()) +
            rswire.bytes_field(client_addr.encode()) + struct.pack("<IQ", 0xFFFFFFFF, 1))


def conn_from(addr, source_ip):
    """A rswire.Conn to addr whose socket is bound to source_ip."""
    host, port = addr.rsplit(":", 1)
    c = rswire.Conn.__new__(rswire.Conn)
    c.addr, c.next_id, c.buf = addr, 1, b""
    c.sock = socket.create_connection((host, int(port)), timeout=10,
                                      source_address=(source_ip, 0))
    return c


def layout(addr):
    r = subprocess.run([RSCTL, "layout", "--json", "--endpoints", addr,
                        "--timeout-ms", "5000"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def test_register_from_non_member_refused():
    c = Cluster()
    urls = start_with_metrics(c)
    lead = c.nodes[c.leader()]
    # The members' own heartbeats pass the gate.
    time.sleep(1.0)
    for nid in c.nodes:
        assert metric(urls[nid], "raftstore_internal_frames_refused_total") == 0
    before = layout(lead.client_addr)
    conn = lead.conn()
    fake = "127.0.0.1:%d" % free_ports(1)[0]
    for _ in range(20):  # heartbeats, as a node of another cluster sends
        try:
            conn.call(REGISTER, register_body(99, fake, fake))
            raise AssertionError("REGISTER from node 99 accepted")
        except rswire.Error as e:
            assert e.code == rswire.CODE["EINVAL"], e
            assert "node 99 is not a member of this cluster" in e.message, e
        time.sleep(0.02)
    # The connection stays usable; the refusal is logged (rate-limited) and
    # every one counted.
    assert conn.status()["role"] == "leader"
    lines = log_lines(lead, "client.internal_refused")
    assert lines and "type=REGISTER" in lines[0] and "claimed_id=99" in lines[0] \
        and "peer=127.0.0.1:" in lines[0], lines
    assert len(lines) < 5, lines
    assert metric(urls[lead.id], "raftstore_internal_frames_refused_total") == 20
    # A member's id from an IP no member has (loopback, but not 127.0.0.1).
    other = conn_from(lead.client_addr, "127.0.0.2")
    member = c.nodes[1 if lead.id != 1 else 2]
    try:
        other.call(REGISTER, register_body(member.id, member.raft_addr,
                                           member.client_addr))
        raise AssertionError("REGISTER from 127.0.0.2 accepted")
    except rswire.Error as e:
        assert e.code == rswire.CODE["EINVAL"], e
        assert "node %d is a member, but 127.0.0.2 is not the IP" % member.id \
            in e.message, e
    other.close()
    assert metric(urls[lead.id], "raftstore_internal_frames_refused_total") == 21
    # A recovery now plans from the registry: node 99 must not be in it.
    subprocess.run([RSCTL, "config", "set", "batch_delay_us", "500",
                    "--endpoints", c.endpoints()], check=True,
                   capture_output=True, timeout=30)
    deadline = time.time() + 20
    while True:
        after = retry(lambda: layout(lead.client_addr), what="layout")
        if after["epoch"] > before["epoch"]:
            break
        assert time.time() < deadline, "no new recovery"
        time.sleep(0.2)
    ids = {x["node_id"] for part in ("commit_proxies", "logs", "storage",
                                     "services") for x in after[part]}
    assert ids == set(c.nodes), (ids, after)
    conn.close()


def test_help_and_bad_values():
    out = subprocess.run([RAFTSTORED, "--help"], capture_output=True,
                         text=True, timeout=10).stdout
    assert "--client-frame-timeout-ms N" in out and "default 10000" in out, out
    assert "--max-client-connections N" in out and "default 1024" in out, out
    for flag, value in (("--max-client-connections", "0"),
                        ("--client-frame-timeout-ms", "0")):
        r = subprocess.run([RAFTSTORED, "--id", "1", "--data-dir", "/nonexistent",
                            flag, value], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2 and flag in r.stderr, r


if __name__ == "__main__":
    socket.setdefaulttimeout(10)
    run_tests([
        test_partial_frame_closed_idle_connections_kept,
        test_connection_cap_refuses_then_admits,
        test_register_from_non_member_refused,
        test_help_and_bad_values,
    ])
