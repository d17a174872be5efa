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
 * the request and c-raft's error.  Everything else is passed through
 * untouched.  One guard per process (one event loop, one Raft instance).
 */
#ifndef RS_RAFTIO_H
#define RS_RAFTIO_H

#include <raft.h>

#include "raftstore/lib/metrics.h"

/* Must not return (the node's fail-fast exit). */
typedef void (*raftio_fatal_fn)(void *ctx, const char *msg);

/* Install the guard on io, after raft_uv_init and before raft_init.  dir
 * names the Raft directory in messages (copied).  A second install
 * replaces the first (tests). */
void raftio_guard_install(struct raft_io *io, const char *dir,
			  raftio_fatal_fn fatal, void *ctx);

/* Register raftstore_raft_append_duration_seconds: each append the guard
 * passes on, timed from c-raft's request to its successful callback (the
 * write and fsync of the Raft log; c-raft 0.15 gives no other way to time
 * its fsyncs).  After raftio_guard_install; ms must outlive the guard's
 * use.  RS_OK, or RS_EINVAL with metrics_errmsg(ms). */
int raftio_metrics_register(struct metrics *ms);

/* Stop reporting failures (the node is shutting down). */
void raftio_guard_quiet(void);

#endif /* RS_RAFTIO_H */
