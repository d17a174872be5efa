/*
 * raftheap: c-raft's allocator, whose frees can be put off to a libuv
 * worker for the length of one callback (docs/architecture.md, c-raft
 * guard 15).
 *
 * When a snapshot has been written, c-raft 0.15 drops the log entries it
 * covers from memory inside the snapshot-put callback (logSnapshot), one
 * raft_free per entry batch; a follower that installs a leader's snapshot
 * drops its whole log the same way.  Measured on a steady put load: each
 * such callback held the loop 17-25 ms, 15-20 ms of it in free() of
 * 55,000-63,000 batches; every commit the node takes part in waits that
 * long.
 *
 * raftheap_install makes c-raft allocate through this module, which
 * passes every call to libc.  Between raftheap_defer_begin and
 * raftheap_defer_end, on the thread that called begin, raft_free records
 * the pointer instead (other threads' frees still go to libc at once);
 * the end hands the list to freelater, which frees it on a worker.  A
 * short list, or one the pool refuses, or a pointer that finds no room in
 * the list (out of memory) is freed at once.  So memory is freed a little
 * later, never kept.
 */
#ifndef RS_RAFTHEAP_H
#define RS_RAFTHEAP_H

#include <stdint.h>
#include <uv.h>

/* Lists shorter than this are freed at the end, on the calling thread. */
#define RAFTHEAP_DEFER_MIN 256

/* Make c-raft's raft_malloc and friends go through this module (once, at
 * start, before any c-raft allocation; process-wide). */
void raftheap_install(void);

/* Put off this thread's raft_frees until raftheap_defer_end, which hands
 * them to a worker of loop.  Not nested. */
void raftheap_defer_begin(void);
void raftheap_defer_end(uv_loop_t *loop);

/* What the brackets did, on the thread that ran them. */
struct raftheap_stats {
	uint64_t deferred;    /* frees handed to a worker */
	uint64_t lists;       /* lists handed to a worker */
	uint64_t freed_at_end; /* recorded, then freed at the end (few) */
};
struct raftheap_stats raftheap_stats(void);

struct metrics;
/* Register raftstore_raft_frees_deferred_total: raftheap_stats().deferred,
 * read at each render, which must run on the thread that runs the
 * brackets (the node's loop).  RS_OK, or RS_EINVAL with
 * metrics_errmsg(ms). */
int raftheap_metrics_register(struct metrics *ms);

#endif /* RS_RAFTHEAP_H */
