/*
 * aiodefer: raft_uv's io_destroy, off the loop.
 *
 * raft_uv 0.15 gives every open segment of the Raft log its own kernel AIO
 * context and destroys it, on the loop thread, when the segment is closed:
 * at every segment rollover and at every snapshot (whose barrier closes the
 * open segment).  io_destroy returns only after an RCU grace period of the
 * kernel's, even with nothing in flight: 30-50 ms on this project's 2-core
 * machine (`perf trace --duration 10` on a loaded node showed nothing else
 * that long).  The node's loop, and with it every commit it takes part in,
 * stood still that long each time (issue 13's follower benchmark: the
 * commit gaps left after the snapshot changes).
 *
 * raft_uv makes the call through libc's syscall(2) (its own io_destroy
 * wrapper in libraft.so), so this module defines syscall() in the daemon's
 * executable, which the dynamic linker binds libraft.so's calls to.  Once
 * aiodefer_enable has run, SYS_io_destroy returns 0 at once and a thread of
 * this module makes the real call; every other system call, and
 * io_destroy before enabling or with the queue full, goes straight to
 * libc's syscall.  raft_uv calls io_destroy last, after it closed the
 * segment's file and finished or cancelled its requests, so nothing of
 * raft_uv's waits on the destruction; the kernel holds what an in-flight
 * request needs (the file, pinned pages) until it completes either way.
 */
#ifndef RS_AIODEFER_H
#define RS_AIODEFER_H

#include <stdint.h>

/* Start the thread and defer io_destroy from then on.  RS_OK, or RS_ENOMEM
 * (no thread: nothing deferred) with errmsg. */
int aiodefer_enable(char *errmsg);

/* Contexts handed to the thread so far, and destroyed by it (the
 * difference is what is queued or being destroyed now); failures of the
 * real call (the kernel refused the context: raft_uv's bug, not ours). */
struct aiodefer_stats {
	uint64_t deferred;
	uint64_t destroyed;
	uint64_t failed;
};
void aiodefer_get_stats(struct aiodefer_stats *st);

/* Wait until every context handed over so far is destroyed (tests). */
void aiodefer_drain(void);

#endif /* RS_AIODEFER_H */
