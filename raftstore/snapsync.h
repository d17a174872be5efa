/*
 * snapsync: a Raft snapshot's file written back to disk in paced pieces,
 * not in one burst at its fsync.
 *
 * raft_uv 0.15 writes a snapshot (one it took, or one a leader installed)
 * as a temporary file "tmp-snapshot-T-I-TS": one buffered write of the
 * whole image into the page cache, then fsync, then a rename.  The kernel
 * writes nothing back before the fsync (a few tens of MB stay far below
 * the dirty thresholds), so the fsync hands the disk the whole image at
 * once, and every durable log append of every node sharing that disk
 * waits behind it.  Measured here (three nodes on one disk, 8 writers,
 * states of 60-150 MB that do not compress, `snapab` in
 * docs/architecture.md, c-raft guard 20): at every snapshot a commit gap
 * of 100-210 ms, the length of that fsync.
 *
 * raft_uv makes the call through libuv, which calls libc's fsync, so this
 * module defines fsync() in the daemon's executable, which the dynamic
 * linker binds libuv's call to (as segfill does with posix_fallocate).
 * Once snapsync_enable() has named the Raft directory, an fsync of a
 * regular file there whose name starts "tmp-snapshot-" and that holds at
 * least SNAPSYNC_MIN_BYTES first writes the file back SNAPSYNC_CHUNK at a
 * time with sync_file_range (each piece written and waited for), resting
 * SNAPSYNC_REST times as long as each piece took before the next, so the
 * snapshot has at most a quarter of the disk's time whatever the disk;
 * then it calls libc's fsync, which has only the metadata and the disk's
 * cache left to flush.  Every other call passes straight through.  Same
 * runs, three of 60 s per arm: the stall per snapshot (the sum of commit
 * gaps over 25 ms from the image's encoding to 0.3 s after its fsync)
 * 204 ms unpaced, 78 ms in pieces without rests, 46 ms with them; gaps
 * over 50 ms 1.5, 0.55 and 0.35 per snapshot.  The write-back takes 4-6 times as long
 * (100 MB: 0.4-0.7 s instead of 0.1-0.2 s).
 *
 * Durability is fsync's, unchanged: the paced write-back only moves when
 * the data reaches the disk.  sync_file_range consumes a write-back error
 * the way fsync does (a later fsync of the file would not report it), so
 * an error of any piece is returned as the fsync's own (-1 and errno)
 * even when libc's fsync, still called, then succeeds.  A filesystem
 * that does not support sync_file_range (EINVAL, ENOSYS, ESPIPE before
 * anything was written back) gets libc's fsync alone.  Safe on any
 * thread; the pacing runs on raft_uv's worker, never the loop.
 */
#ifndef RS_SNAPSYNC_H
#define RS_SNAPSYNC_H

#include <stdint.h>

/* A piece written back at a time: at most this much of a snapshot sits in
 * the disk's queue ahead of a log append (an O_DSYNC writer's worst 8-14
 * ms here beside a 60 MB write-back at 256 KiB, 15-18 ms at 1 MiB,
 * 101-131 ms at once). */
#define SNAPSYNC_CHUNK (256u * 1024u)

/* The rest after each piece, in multiples of the time it took; never
 * longer than SNAPSYNC_REST_MAX_NS. */
#define SNAPSYNC_REST 3u
#define SNAPSYNC_REST_MAX_NS (100u * 1000u * 1000u)

/* Smaller files are synced whole: they fit in a few pieces anyway. */
#define SNAPSYNC_MIN_BYTES (4u * SNAPSYNC_CHUNK)

/* Pace the snapshot files of raft_dir (an existing directory, resolved to
 * its canonical path) from now on.  RS_OK, or RS_EINVAL with errmsg. */
int snapsync_enable(const char *raft_dir, char *errmsg);

/* Stop pacing (tests). */
void snapsync_disable(void);

/* Fault injection (the daemon sets it only when built with
 * --enable-fault-hooks, from RS_FAULT_SNAPSHOT_SYNC_DELAY_MS): sleep ms
 * before syncing any snapshot file of the enabled directory, whatever its
 * size, on the worker that syncs it, logging fault.snapshot_sync_delayed
 * first; 0 turns it off.  Makes a snapshot install last long enough for a
 * test to act during it (tools/chaos, kill-leader-during-install). */
void snapsync_set_fault_delay_ms(unsigned ms);

struct snapsync_stats {
	uint64_t paced;       /* snapshot files written back in pieces */
	uint64_t bytes;       /* their bytes */
	uint64_t chunks;      /* sync_file_range calls that wrote a piece */
	uint64_t unsupported; /* files synced whole: no sync_file_range */
	uint64_t failed;      /* paced write-backs that failed (errno out) */
	uint64_t passed;      /* fsync calls passed straight through */
	uint64_t fault_delays; /* syncs the fault hook delayed */
};
void snapsync_get_stats(struct snapsync_stats *st);

struct metrics;
/* Register raftstore_raft_snapshots_paced_total and
 * raftstore_raft_snapshot_pacing_failures_total (read from the stats).
 * RS_OK, or RS_EINVAL with metrics_errmsg(ms). */
int snapsync_metrics_register(struct metrics *ms);

#endif /* RS_SNAPSYNC_H */
