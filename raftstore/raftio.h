/*
 * raftio: a guard around c-raft's I/O backend (raft_uv) that turns a failed
 * write of the Raft log or of a snapshot into a fail-fast exit.
 *
 * c-raft 0.15 does not stop on a failed disk write (upstream #321: a leader
 * does not step down; a follower drops the entries and keeps running).  The
 * chaos tool showed a follower whose disk filled up staying up for good,
 * applying nothing, while it still counted as a member.  The design's
 * persistence model is fail-fast: a node that cannot write its log must
 * stop, say why, and be restarted by its operator once the disk is fixed.
 *
 * raftio_guard_install() replaces the backend's append and snapshot_put
 * with wrappers that call the original and, when a request completes with
 * an error other than RAFT_CANCELED (which is what a close does to queued
 * writes), call the fatal function with a message naming the directory,
 * the request and c-raft's error.
 *
 * It also keeps c-raft 0.15's raft_uv from losing a truncation.  Its
 * barriers (a truncate, a snapshot put) do not queue: a truncate asked for
 * while a snapshot put still waits for its barrier is attached to nothing
 * and never runs, while the entries that replace the truncated ones are
 * written to a new segment that starts at the same index.  The log on
 * disk then holds both the old entries and the new, and the next start
 * loads one or the other (silently the old, uncommitted ones, in a test of
 * raft_uv itself) or refuses ("closed segment ... is past last snapshot").
 * The chaos run found it: a leader snapshotting as it lost leadership, its
 * last entries replaced by the new leader's.  So the guard holds a
 * truncate or snapshot put, and every request after it, in order, while
 * another of the two may be pending in the backend (details in raftio.c).
 * Appends are held only behind a held barrier.  And it says version 2 for
 * raft_uv, which implements version 2's async_work but says 1 (raft_init
 * would refuse asynchronous snapshots).  raft_uv's close callback reaches
 * c-raft once: raft_uv 0.15 can fire it a second time (a segment writer's
 * close finishing late), and c-raft would free its state twice.  One guard
 * per process (one event loop, one Raft instance).
 */
#ifndef RS_RAFTIO_H
#define RS_RAFTIO_H

#include <raft.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/metrics.h"

/* Must not return (the node's fail-fast exit). */
typedef void (*raftio_fatal_fn)(void *ctx, const char *msg);

/* Install the guard on io, after raft_uv_init and before raft_init.  loop
 * is io's loop (the guard's timer runs on it; io's close closes it).  dir
 * names the Raft directory in messages (copied).  A second install
 * replaces the first (tests). */
void raftio_guard_install(struct raft_io *io, uv_loop_t *loop, const char *dir,
			  raftio_fatal_fn fatal, void *ctx);

/* What the guard did since it was installed. */
struct raftio_stats {
	uint64_t held;                 /* requests held behind a barrier */
	uint64_t truncates;            /* truncates c-raft asked for */
	uint64_t truncates_during_put; /* of them, while a snapshot put waited */
	uint64_t close_cb_repeats;     /* raft_uv's close callback, again */
};
struct raftio_stats raftio_guard_stats(void);

/* Register raftstore_raft_append_duration_seconds: each append the guard
 * passes on, timed from c-raft's request to its successful callback (the
 * write and fsync of the Raft log; c-raft 0.15 gives no other way to time
 * its fsyncs).  After raftio_guard_install; ms must outlive the guard's
 * use.  RS_OK, or RS_EINVAL with metrics_errmsg(ms). */
int raftio_metrics_register(struct metrics *ms);

/* Stop reporting failures (the node is shutting down). */
void raftio_guard_quiet(void);

#endif /* RS_RAFTIO_H */
