#!/usr/bin/env python3
"""The machine's own stalls under durable writes, with no database running:
the floor under any replicated log's commit gaps on this machine.

    scripts/stall-floor.py DIR [--writers N] [--seconds S] [--cpus LIST] [--json]

Why: issue 13 asks that a follower's kill or restart leave writers no
commit gap longer than twice the steady p99 put latency.  A commit of a
three-node Raft group waits for durable appends on two nodes; when all of
them share one disk, a stall of that disk stops every commit, fault or no
fault; and in a virtual machine, so does the host taking a vCPU away
(steal time).  This measures how long those stalls are, apart from any
database: so a benchmark can show the target beside what the machine
alone allows.

How: N processes (default 3, one per Raft node) each rewrite a 4 MiB file
in DIR, 4 KiB at a time, in order, with O_DSYNC (the file is written with
zeros and synced first, so each write is a plain overwrite, as raftstore's
filled log segments are), for S seconds (default 10), all starting at one
instant.  Reported per whole second: the slowest single write of any
writer.  The summary gives that per-second worst as median, p90 and max
over the seconds, every writer's p50 and p99 write latency, and the steal
time the kernel counted over the run (/proc/stat: time a vCPU was ready
but the hypervisor ran something else), in ms per second of wall time,
all CPUs summed (0 on bare metal).  --cpus pins the writers to those CPUs
(as taskset would), to tell one CPU's stalls from another's.  The probe
files are removed.

Output: one line to stdout; with --json, one JSON object instead
({"writers", "seconds", "per_second_worst_ms": [...], "median_ms",
"p90_ms", "max_ms", "writer_p50_ms": [...], "writer_p99_ms": [...],
"steal_ms_per_s"}; steal_ms_per_s is null where /proc/stat is unreadable).
Exit status 0; 2 for bad arguments or a directory it cannot write in.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

PROBE_SIZE = 4 << 20
WRITE_SIZE = 4096


def nearest_rank(sorted_xs, q):
    return sorted_xs[max(0, math.ceil(q * len(sorted_xs)) - 1)]


def steal_ms():
    """Steal time of all CPUs so far in ms (/proc/stat's aggregate "cpu"
    line, 8th value, in USER_HZ ticks), or None where it is unreadable."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] == "cpu" and len(fields) > 8:
                    return int(fields[8]) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return None


def writer(path, start, seconds, out_fd):
    """One writer process: wait for start, write for seconds, send back
    {"per_second": {second: worst ms}, "p50": ms, "p99": ms} as JSON."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.pwrite(fd, b"\0" * PROBE_SIZE, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(path, os.O_WRONLY | os.O_DSYNC)
    buf = b"x" * WRITE_SIZE
    per_second, lat = {}, []
    off = 0
    while time.monotonic() < start:
        time.sleep(0.001)
    end = start + seconds
    try:
        while True:
            t0 = time.monotonic()
            if t0 >= end:
                break
            os.pwrite(fd, buf, off)
            t1 = time.monotonic()
            off = (off + WRITE_SIZE) % PROBE_SIZE
            ms = (t1 - t0) * 1000.0
            lat.append(ms)
            sec = int(t0 - start)
            if ms > per_second.get(sec, 0.0):
                per_second[sec] = ms
    finally:
        os.close(fd)
    lat.sort()
    msg = json.dumps({"per_second": per_second,
                      "p50": nearest_rank(lat, 0.5) if lat else None,
                      "p99": nearest_rank(lat, 0.99) if lat else None})
    os.write(out_fd, msg.encode())


def measure(directory, writers, seconds, cpus=None):
    """Run the writers (pinned to the set cpus, if given); return the
    report as a dict."""
    start = time.monotonic() + 0.5 + 0.1 * writers  # after every file is ready
    children = []
    for i in range(writers):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            # the child never returns into the caller's code, whatever
            # happens (a signal the caller turns into an exception)
            code = 1
            try:
                os.close(r)
                if cpus:
                    os.sched_setaffinity(0, cpus)
                writer(os.path.join(directory, ".stall-floor-%d" % i), start,
                       seconds, w)
                code = 0
            except OSError as e:
                os.write(w, json.dumps({"error": "%s: %s" % (
                    e.filename or directory, e.strerror)}).encode())
            finally:
                os._exit(code)
        os.close(w)
        children.append((pid, r))
    while time.monotonic() < start:
        time.sleep(0.001)
    steal0 = steal_ms()
    reports = []
    for pid, r in children:
        chunks = []
        while True:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
        os.close(r)
        os.waitpid(pid, 0)
        reports.append(json.loads(b"".join(chunks) or b'{"error": "no report"}'))
    steal1 = steal_ms()
    for i in range(writers):
        try:
            os.unlink(os.path.join(directory, ".stall-floor-%d" % i))
        except OSError:
            pass
    errors = [x["error"] for x in reports if "error" in x]
    if errors:
        raise OSError(errors[0])
    # whole seconds only: the last one may be cut short
    worst = [max(x["per_second"].get(str(s), 0.0) for x in reports)
             for s in range(int(seconds))]
    s = sorted(worst)
    return {"writers": writers, "seconds": int(seconds),
            "per_second_worst_ms": [round(x, 2) for x in worst],
            "median_ms": round(statistics.median(s), 2),
            "p90_ms": round(nearest_rank(s, 0.9), 2),
            "max_ms": round(s[-1], 2),
            "writer_p50_ms": [round(x["p50"], 3) for x in reports],
            "writer_p99_ms": [round(x["p99"], 3) for x in reports],
            "steal_ms_per_s": None if steal0 is None or steal1 is None
            else round((steal1 - steal0) / seconds, 1)}


def summary(rep):
    steal = rep["steal_ms_per_s"]
    return ("stall floor: %d writers of 4 KiB O_DSYNC overwrites for %d s: "
            "slowest write per second median %.1f ms, p90 %.1f ms, max %.1f ms "
            "(writers' p50 %s ms, p99 %s ms); steal time %s"
            % (rep["writers"], rep["seconds"], rep["median_ms"], rep["p90_ms"],
               rep["max_ms"], "/".join("%.2f" % x for x in rep["writer_p50_ms"]),
               "/".join("%.2f" % x for x in rep["writer_p99_ms"]),
               "unknown" if steal is None else "%.1f ms per second" % steal))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="a directory on the disk to measure")
    ap.add_argument("--writers", type=int, default=3,
                    help="writer processes, one per Raft node (3)")
    ap.add_argument("--seconds", type=int, default=10,
                    help="how long they write (10)")
    ap.add_argument("--cpus", default=None,
                    help="pin the writers to these CPUs, e.g. 1 or 0,1 (default: not pinned)")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON object instead of the summary line")
    a = ap.parse_args()
    if a.writers < 1 or a.writers > 64:
        ap.error("--writers must be 1 to 64")
    if a.seconds < 1:
        ap.error("--seconds must be at least 1")
    cpus = None
    if a.cpus is not None:
        try:
            cpus = {int(x) for x in a.cpus.split(",")}
        except ValueError:
            ap.error("--cpus: %r is not a comma-separated list of CPU numbers" % a.cpus)
        bad = cpus - os.sched_getaffinity(0)
        if bad:
            ap.error("--cpus: CPU %s is not available to this process" %
                     ",".join(str(c) for c in sorted(bad)))
    if not os.path.isdir(a.dir):
        print("stall-floor: %s is not a directory" % a.dir, file=sys.stderr)
        return 2
    try:
        rep = measure(a.dir, a.writers, a.seconds, cpus)
    except OSError as e:
        print("stall-floor: cannot write probe files in %s: %s" % (a.dir, e),
              file=sys.stderr)
        return 2
    print(json.dumps(rep) if a.json else summary(rep), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
