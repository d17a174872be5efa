#!/usr/bin/env python3
"""Wait until the disk under DIR is quiet, so a benchmark does not measure
the aftermath of the one before it.

    scripts/wait-disk-quiet.py DIR [--label L] [--max-ms M] [--timeout S]

Why: on ext4 mounted with `discard` (as this project's machine is), the
blocks of deleted files are trimmed as the journal commits, and every
fdatasync waits behind that.  After a 1M-key run's data directory is
deleted, a single writer's fdatasync stalls 64-145 ms for about 12 s
(README, "Recovery"), which would land in the next system's rounds.

How: rewrites 4 KiB of a probe file in DIR with fdatasync, in windows of
one second, until one window's slowest fdatasync is at most M ms (default
20) or S seconds (default 60) have passed; prints one line to stderr with
what it saw and removes the probe file.  Exit status 0 either way (a busy
disk is reported, not fatal: the benchmark's own rows show its effect);
2 for bad arguments or a directory it cannot write a probe file in.
"""
import argparse
import os
import sys
import time


def window(path, secs):
    """The slowest 4 KiB rewrite + fdatasync in secs seconds, in ms."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        buf = b"\0" * 4096
        worst = 0.0
        end = time.monotonic() + secs
        while time.monotonic() < end:
            t = time.monotonic()
            os.pwrite(fd, buf, 0)
            os.fdatasync(fd)
            worst = max(worst, time.monotonic() - t)
        return worst * 1000.0
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--label", default="wait-disk-quiet")
    ap.add_argument("--max-ms", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    if not os.path.isdir(a.dir):
        print("wait-disk-quiet: %s is not a directory" % a.dir, file=sys.stderr)
        return 2
    path = os.path.join(a.dir, ".disk-quiet-probe")
    start = time.monotonic()
    seen = []
    try:
        while True:
            try:
                seen.append(window(path, 1.0))
            except OSError as e:
                print("wait-disk-quiet: cannot write a probe file in %s: %s"
                      % (a.dir, e.strerror), file=sys.stderr)
                return 2
            if seen[-1] <= a.max_ms:
                state = "quiet"
                break
            if time.monotonic() - start >= a.timeout:
                state = "STILL BUSY"
                break
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass  # never created (or not ours to remove)
    print("%s: disk %s after %.0f s (slowest fdatasync per second: %s ms; "
          "quiet means <= %.0f ms)"
          % (a.label, state, time.monotonic() - start,
             ", ".join("%.1f" % x for x in seen), a.max_ms), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
