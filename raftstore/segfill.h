/*
 * segfill: raft_uv's open segments, written with zeros, not only allocated.
 *
 * raft_uv 0.15 prepares each open segment of the Raft log with
 * posix_fallocate (its segment size: 1 MiB in raftstored, see
 * node_init_raft), then writes entries into it with O_DIRECT and
 * O_DSYNC.  On ext4 (and XFS) fallocate leaves the blocks "unwritten": the
 * first write to each block must also change the extent tree, so every
 * durable append of the log waits for a journal (jbd2) commit, and its
 * completion runs on the filesystem's per-CPU workqueue (kworker
 * "dio/<dev>"), which cannot move to another CPU when a kernel thread
 * holds its own.  Measured here with dd (oflag=direct,dsync, 4 KiB and
 * 32 KiB): 100-120 us a write into fallocated space, 62-72 us into
 * written space; and in issue 13's benchmark a kernel thread holding one
 * vCPU for 3.5 ms delayed that workqueue, and every commit, as long.
 * Writing zeros over a segment once, when it is prepared (on raft_uv's
 * worker thread, not the loop), turns each append into a plain overwrite:
 * no journal commit, completion in interrupt context.
 *
 * raft_uv makes the call through libc's posix_fallocate, so this module
 * defines posix_fallocate() in the daemon's executable, which the dynamic
 * linker binds libraft.so's calls to (as aiodefer does with syscall()).
 * It calls libc's; then, once segfill_enable() has named the Raft
 * directory, if the file is an open segment there ("open-N"), it writes
 * zeros over the range through a second descriptor (buffered), fdatasyncs
 * and closes it.  The content is what c-raft expects of a prepared segment
 * either way (zeros), so a crash at any point leaves a segment c-raft
 * loads.  A failure of the fill is returned as posix_fallocate's error
 * (raft_uv then gives up the segment and reports an I/O error, as for a
 * failed fallocate), and counted.  Every other call passes straight
 * through.  Safe on any thread.
 */
#ifndef RS_SEGFILL_H
#define RS_SEGFILL_H

#include <stdint.h>

/* Fill the open segments of raft_dir (an existing directory, resolved to
 * its canonical path) from now on.  RS_OK, or RS_EINVAL with errmsg. */
int segfill_enable(const char *raft_dir, char *errmsg);

/* Stop filling (tests). */
void segfill_disable(void);

struct segfill_stats {
	uint64_t filled;       /* segments written with zeros */
	uint64_t bytes;        /* bytes of zeros written */
	uint64_t failed;       /* fills that failed (errno returned) */
	uint64_t passed;       /* calls passed through unfilled */
};
void segfill_get_stats(struct segfill_stats *st);

struct metrics;
/* Register raftstore_raft_segments_filled_total and
 * raftstore_raft_segment_fill_failures_total (read from the stats).  RS_OK,
 * or RS_EINVAL with metrics_errmsg(ms). */
int segfill_metrics_register(struct metrics *ms);

#endif /* RS_SEGFILL_H */
