#!/usr/bin/env python3
"""/metrics and /health on real nodes (issue 14, section 4).

- /metrics parses with the Prometheus client's own parser
  (python3-prometheus-client) and holds the process, build, Raft, request,
  connection, watch and director families, with values that follow what
  the test did (requests counted by op and result, a watch seen, the
  leader's director monitoring).
- /health answers 200 {"health":true} on a healthy node and 503 with the
  reason on a node that has lost its leader.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import rswire  # noqa: E402
from harness import Cluster, free_ports, retry  # noqa: E402

# The Debian package python3-prometheus-client; the interpreter running the
# tests may be another one (a pyenv), so parse in the system's.
PARSER = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out[fam.name] = {"type": fam.type,
                     "samples": [[s.name, s.labels, s.value]
                                 for s in fam.samples]}
print(json.dumps(out))
"""


def parse_metrics(text):
    for py in ("/usr/bin/python3", sys.executable):
        p = subprocess.run([py, "-c", PARSER], input=text,
                           capture_output=True, text=True, timeout=30)
        if p.returncode == 0:
            return json.loads(p.stdout)
        if "No module named" not in p.stderr:
            raise AssertionError("the Prometheus parser refused /metrics:\n" +
                                 p.stderr[-2000:])
    raise AssertionError("python3-prometheus-client is not installed "
                         "(scripts/deps.sh installs it)")


def http_get(addr, path):
    try:
        with urllib.request.urlopen("http://%s%s" % (addr, path),
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample(fams, family, name=None, **labels):
    for s_name, s_labels, value in fams[family]["samples"]:
        if (name is None or s_name == name) and all(
                s_labels.get(k) == v for k, v in labels.items()):
            return value
    raise AssertionError("no sample %s %s in %s" % (family, labels,
                                                     fams[family]))


def start(c):
    ports = free_ports(len(c.nodes))
    for (nid, n), port in zip(sorted(c.nodes.items()), ports):
        n.metrics_addr = "127.0.0.1:%d" % port
        n.start(n.args() + ["--metrics-addr", n.metrics_addr])
    return c.leader()


def test_metrics_families_and_values():
    c = Cluster(3)
    lid = start(c)
    leader = c.nodes[lid]
    conn = leader.conn()
    for i in range(20):
        retry(lambda: conn.put(b"m/%d" % i, b"v"))
    for i in range(10):
        conn.get(b"m/%d" % i)
    w = rswire.Watch(leader.client_addr, b"m/")
    conn.put(b"m/x", b"y")
    w.next()
    text = http_get(leader.metrics_addr, "/metrics")[1]
    fams = parse_metrics(text)
    for fam in ("process_cpu_seconds", "process_resident_memory_bytes",
                "process_virtual_memory_bytes", "process_open_fds",
                "process_max_fds", "process_start_time_seconds",
                "raftstore_build_info", "raftstore_raft_term",
                "raftstore_raft_commit_index", "raftstore_raft_applied_index",
                "raftstore_is_leader", "raftstore_leader_changes",
                "raftstore_requests", "raftstore_request_duration_seconds",
                "raftstore_client_connections", "raftstore_watches",
                "raftstore_epoch", "raftstore_director_phase",
                "raftstore_raft_append_duration_seconds",
                "raftstore_raft_appends_mended",
                "raftstore_raft_replies_capped",
                "raftstore_raft_replies_dropped",
                "raftstore_raft_segments_filled",
                "raftstore_raft_segment_fill_failures",
                "raftstore_raft_snapshots_paced",
                "raftstore_raft_snapshot_pacing_failures",
                "raftstore_raft_frees_deferred",
                "raftstore_raft_messages_resent",
                "raftstore_raft_votes_unblocked",
                "raftstore_raft_candidacy_held_ticks",
                "raftstore_raft_commits_advanced",
                "raftstore_raft_old_term_commits_held",
                "raftstore_apply_lag_entries"):
        assert fam in fams, "%s missing from /metrics:\n%s" % (fam, text)
    assert fams["process_cpu_seconds"]["type"] == "counter"
    assert sample(fams, "process_resident_memory_bytes") > 1 << 20
    assert sample(fams, "process_open_fds") >= 5
    start_s = sample(fams, "process_start_time_seconds")
    assert time.time() - 120 < start_s <= time.time(), start_s
    assert sample(fams, "raftstore_build_info") == 1
    assert sample(fams, "raftstore_is_leader") == 1
    assert sample(fams, "raftstore_raft_term") >= 1
    assert sample(fams, "raftstore_raft_commit_index") >= 20
    assert sample(fams, "raftstore_director_phase") == 8  # monitoring
    assert sample(fams, "raftstore_requests", "raftstore_requests_total",
                  op="commit", result="ok") >= 21
    assert sample(fams, "raftstore_requests", "raftstore_requests_total",
                  op="get", result="ok") >= 10
    assert sample(fams, "raftstore_request_duration_seconds",
                  "raftstore_request_duration_seconds_count", op="get") >= 10
    assert sample(fams, "raftstore_watches") == 1
    assert sample(fams, "raftstore_client_connections") >= 2
    assert sample(fams, "raftstore_raft_append_duration_seconds",
                  "raftstore_raft_append_duration_seconds_count") >= 20
    # raft_uv prepared its open segments: written with zeros (guard 13)
    assert sample(fams, "raftstore_raft_segments_filled") >= 1
    assert sample(fams, "raftstore_raft_segment_fill_failures") == 0
    # no snapshot yet, so none paced (guard 20; test_cluster.py paces one)
    assert sample(fams, "raftstore_raft_snapshots_paced") == 0
    assert sample(fams, "raftstore_raft_snapshot_pacing_failures") == 0
    assert sample(fams, "raftstore_raft_appends_mended") == 0
    # one leader from the start: nothing of an older term to hold back
    assert sample(fams, "raftstore_raft_old_term_commits_held") == 0
    # no snapshot yet, so no compacted entries to free (guard 15)
    assert sample(fams, "raftstore_raft_frees_deferred") == 0
    # a refused request is counted with its result
    try:
        conn.commit([("set", b"\xff/system/x", b"y")])
    except rswire.Error:
        pass
    fams = parse_metrics(http_get(leader.metrics_addr, "/metrics")[1])
    assert sample(fams, "raftstore_requests", "raftstore_requests_total",
                  op="commit", result="inval") >= 1
    w.close()
    conn.close()
    c.cleanup()


def test_health():
    c = Cluster(3)
    lid = start(c)
    for n in c.nodes.values():
        deadline = time.time() + 10  # the first recovery may still run
        while True:
            code, body = retry(lambda: http_get(n.metrics_addr, "/health"))
            if code == 200 or time.time() > deadline:
                break
            time.sleep(0.05)
        assert code == 200 and json.loads(body) == {"health": True,
                                                    "reason": ""}, (code, body)
    # the leader alone: it steps down, knows no leader, and says so
    for nid in c.nodes:
        if nid != lid:
            c.nodes[nid].kill()
    leader = c.nodes[lid]
    deadline = time.time() + 15
    while True:
        code, body = http_get(leader.metrics_addr, "/health")
        if code == 503 and "no Raft leader" in body:
            break
        # before Raft steps down, the director already says it is stuck
        assert code == 200 or "director" in body, (code, body)
        assert time.time() < deadline, (code, body)
        time.sleep(0.1)
    doc = json.loads(body)
    assert doc["health"] is False and "no Raft leader" in doc["reason"], doc
    code, _ = http_get(leader.metrics_addr, "/nope")
    assert code == 404
    c.cleanup()


if __name__ == "__main__":
    harness.run_tests([test_metrics_families_and_values, test_health])
