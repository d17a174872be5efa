#!/usr/bin/env python3
"""include/raftstore.h's promises against a real cluster (issue 14,
section 2).

  * tests/integration/public_api (Check, linked with libraftstore.so)
    checks each call: not-found, exact bytes, linearizable read after a
    write, limits refused before sending, ranges paged into one snapshot,
    transactions that conflict exactly on what they read (keys and
    ranges), read-only commits, watch replay in order, status per node,
    an unreachable cluster failing within the handle's timeout, and a
    SIGPIPE during a call neither killing the program nor left pending;
  * a watch whose node is killed ends with RAFTSTORE_EUNAVAILABLE, as the
    header says (the library does not resume it), after delivering the
    events before the kill.
"""
import os
import subprocess
import time

from harness import BUILD, Cluster, run_tests

PUBLIC_API = os.path.join(os.path.abspath(BUILD), "tests", "integration",
                          "public_api")


def test_every_call_against_a_cluster():
    c = Cluster(3)
    try:
        c.start_all()
        c.leader()
        p = subprocess.run([PUBLIC_API], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600,
                           env=dict(os.environ,
                                    RS_API_ENDPOINTS=c.endpoints()))
        out = p.stdout.decode("utf-8", "replace")
        print(out.strip().splitlines()[-1] if out.strip() else "")
        assert p.returncode == 0, out + c.logs()
        assert "100%: Checks: 12" in out, out
    finally:
        c.cleanup()


def test_watch_ends_unavailable_when_its_node_dies():
    c = Cluster(3)
    try:
        c.start_all()
        leader = c.leader()
        # One endpoint, the leader's: the watch runs on that node.
        p = subprocess.Popen([PUBLIC_API, "watch-until-error"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env=dict(os.environ, RS_API_ENDPOINTS=c.nodes[
                                 leader].client_addr))
        try:
            first = p.stdout.readline().decode()
            assert first.startswith("event "), first
            time.sleep(0.2)
            c.nodes[leader].kill()
            rest = p.stdout.read().decode()
            assert p.wait(30) == 0, rest
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert rest.strip().splitlines()[-1] == "ended cluster unavailable", \
            rest
    finally:
        c.cleanup()


if __name__ == "__main__":
    run_tests([test_every_call_against_a_cluster,
               test_watch_ends_unavailable_when_its_node_dies])
