/*
 * raftio: see raftio.h.
 *
 * Every request c-raft makes of the backend's log (append, truncate,
 * snapshot_put) goes through one FIFO.  A request leaves the FIFO, in
 * order, for the backend as soon as it is safe to:
 *
 *   - an append always is (raft_uv orders appends against its barriers);
 *   - a truncate or a snapshot put (each a raft_uv barrier) only when no
 *     other barrier of ours may still be pending in the backend.
 *
 * A snapshot put is pending until its callback has fired and the backend
 * has lifted its barrier, which raft_uv does right after that callback
 * returns: the FIFO moves again from a zero timer.  A truncate has no
 * callback; it is pending until the first append passed on after it
 * completes, which raft_uv writes only once the truncation is done.
 * c-raft 0.15 appends the leader's entries right after every truncate, in
 * the same call (replication.c, deleteConflictingEntries).  Should that
 * append not come (an allocation failure inside c-raft), a snapshot put
 * waits for the next one, which may overtake it (op_may_overtake).
 */
#include "raftstore/raftio.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftheap.h"

enum raftio_kind { RAFTIO_APPEND, RAFTIO_TRUNCATE, RAFTIO_PUT };

/* One request of c-raft's.  The wrapped requests (inner) are what the
 * backend sees; c-raft's own (outer) stay untouched until their callback. */
struct raftio_op {
	enum raftio_kind kind;
	struct raftio_op *next; /* in the FIFO */
	/* RAFTIO_APPEND */
	struct raft_io_append append;
	struct raft_io_append *append_outer;
	raft_io_append_cb append_cb;
	const struct raft_entry *entries;
	unsigned n;
	uint64_t start_ns; /* when c-raft asked for it */
	/* RAFTIO_TRUNCATE */
	raft_index index;
	/* RAFTIO_PUT */
	struct raft_io_snapshot_put put;
	struct raft_io_snapshot_put *put_outer;
	raft_io_snapshot_put_cb put_cb;
	unsigned trailing;
	const struct raft_snapshot *snapshot;
};

enum raftio_barrier {
	RAFTIO_BARRIER_NONE,
	RAFTIO_BARRIER_PUT,      /* a snapshot put not yet finished */
	RAFTIO_BARRIER_TRUNCATE, /* a truncate not yet known finished */
	RAFTIO_BARRIER_LIFTING,  /* finished: the FIFO moves from the timer */
};

static struct {
	struct raft_io *io;
	int (*append)(struct raft_io *io, struct raft_io_append *req,
		      const struct raft_entry entries[], unsigned n,
		      raft_io_append_cb cb);
	int (*truncate)(struct raft_io *io, raft_index index);
	int (*snapshot_put)(struct raft_io *io, unsigned trailing,
			    struct raft_io_snapshot_put *req,
			    const struct raft_snapshot *snapshot,
			    raft_io_snapshot_put_cb cb);
	void (*close)(struct raft_io *io, raft_io_close_cb cb);
	raft_io_close_cb close_cb; /* c-raft's, passed on once */
	bool close_cb_fired;
	raftio_fatal_fn fatal;
	void *ctx;
	bool quiet;
	struct metric *m_append; /* NULL until registered */
	char dir[256];

	struct raftio_op *head, *tail; /* the FIFO */
	enum raftio_barrier barrier;
	/* With RAFTIO_BARRIER_TRUNCATE: the first append passed on after the
	 * truncate, NULL until there is one. */
	struct raftio_op *after_truncate;
	uv_timer_t timer; /* moves the FIFO after a snapshot put */
	bool closed;
	struct raftio_stats stats;
} raftio_guard;

static void raftio_failed(const char *what, int status)
{
	char msg[RAFT_ERRMSG_BUF_SIZE + 512];

	if (status == 0 || status == RAFT_CANCELED || raftio_guard.quiet)
		return;
	snprintf(msg, sizeof msg, "Raft %s in %s failed: %s%s%s", what,
		 raftio_guard.dir, raft_strerror(status),
		 raftio_guard.io->errmsg[0] ? ": " : "", raftio_guard.io->errmsg);
	raftio_guard.fatal(raftio_guard.ctx, msg);
	abort(); /* fatal must not return */
}

/* ---- the FIFO ---- */

static bool op_is_barrier(const struct raftio_op *op)
{
	return op->kind != RAFTIO_APPEND;
}

/* An append may overtake a held snapshot put of the usual kind (trailing
 * entries kept): raft_uv takes the put's barrier at whatever index the
 * appends have reached, and the snapshot covers older entries only.  It
 * never overtakes a truncate (its entries replace the truncated ones) or a
 * snapshot install (trailing 0: it moves the next index; c-raft appends
 * nothing while one is under way anyway). */
static bool op_may_overtake(const struct raftio_op *held)
{
	return held->kind == RAFTIO_PUT && held->trailing > 0;
}

static void fifo_push(struct raftio_op *op)
{
	op->next = NULL;
	if (raftio_guard.tail != NULL)
		raftio_guard.tail->next = op;
	else
		raftio_guard.head = op;
	raftio_guard.tail = op;
	raftio_guard.stats.held++;
}

/* Take op, which follows prev (NULL: the head), out of the FIFO. */
static void fifo_unlink(struct raftio_op *prev, struct raftio_op *op)
{
	if (prev != NULL)
		prev->next = op->next;
	else
		raftio_guard.head = op->next;
	if (raftio_guard.tail == op)
		raftio_guard.tail = prev;
	op->next = NULL;
}

static struct raftio_op *fifo_pop(void)
{
	struct raftio_op *op = raftio_guard.head;

	if (op != NULL)
		fifo_unlink(NULL, op);
	return op;
}

/* May op go now, given what is held before it?  A barrier only when no
 * barrier is held before it and none is pending in the backend; an append
 * when everything held before it may be overtaken. */
static bool op_may_pass(const struct raftio_op *op, bool barrier_before,
			bool no_overtake_before)
{
	if (op_is_barrier(op))
		return !barrier_before &&
		       raftio_guard.barrier == RAFTIO_BARRIER_NONE;
	return !no_overtake_before;
}

static void append_done(struct raft_io_append *inner, int status);
static void put_done(struct raft_io_snapshot_put *inner, int status);

/* Pass op on to the backend.  A request the backend refuses at once is a
 * disk failure: raft_uv 0.15 may refuse an append after it queued it, so
 * that its callback still fires, and nothing can be undone safely. */
static void op_pass(struct raftio_op *op)
{
	int rv;

	switch (op->kind) {
	case RAFTIO_APPEND:
		if (raftio_guard.barrier == RAFTIO_BARRIER_TRUNCATE &&
		    raftio_guard.after_truncate == NULL)
			raftio_guard.after_truncate = op;
		rv = raftio_guard.append(raftio_guard.io, &op->append,
					 op->entries, op->n, append_done);
		if (rv != 0)
			raftio_failed("log append", rv);
		break;
	case RAFTIO_TRUNCATE:
		raftio_guard.barrier = RAFTIO_BARRIER_TRUNCATE;
		raftio_guard.after_truncate = NULL;
		rv = raftio_guard.truncate(raftio_guard.io, op->index);
		free(op);
		if (rv != 0)
			raftio_failed("log truncate", rv);
		break;
	case RAFTIO_PUT:
		raftio_guard.barrier = RAFTIO_BARRIER_PUT;
		rv = raftio_guard.snapshot_put(raftio_guard.io, op->trailing,
					       &op->put, op->snapshot, put_done);
		if (rv != 0)
			raftio_failed("snapshot write", rv);
		break;
	}
}

/* Pass on, in order, every held request that may go now. */
static void fifo_drain(void)
{
	struct raftio_op *prev = NULL, *op = raftio_guard.head;
	bool barrier_before = false, no_overtake_before = false;

	while (op != NULL) {
		struct raftio_op *next = op->next;
		if (op_may_pass(op, barrier_before, no_overtake_before)) {
			fifo_unlink(prev, op);
			op_pass(op);
		} else {
			barrier_before = barrier_before || op_is_barrier(op);
			no_overtake_before = no_overtake_before ||
					     !op_may_overtake(op);
			prev = op;
		}
		op = next;
	}
}

/* A request from c-raft: straight on when it may go past everything held,
 * else behind it. */
static void op_submit(struct raftio_op *op)
{
	bool barrier_before = false, no_overtake_before = false;

	for (const struct raftio_op *h = raftio_guard.head; h != NULL;
	     h = h->next) {
		barrier_before = barrier_before || op_is_barrier(h);
		no_overtake_before = no_overtake_before || !op_may_overtake(h);
	}
	if (op_may_pass(op, barrier_before, no_overtake_before))
		op_pass(op);
	else
		fifo_push(op);
}

static void timer_cb(uv_timer_t *t)
{
	(void)t;
	assert(raftio_guard.barrier == RAFTIO_BARRIER_LIFTING);
	raftio_guard.barrier = RAFTIO_BARRIER_NONE;
	fifo_drain();
}

/* ---- callbacks from the backend ---- */

static void append_done(struct raft_io_append *inner, int status)
{
	struct raftio_op *op =
		(struct raftio_op *)((char *)inner -
				     offsetof(struct raftio_op, append));
	struct raft_io_append *outer = op->append_outer;
	raft_io_append_cb cb = op->append_cb;

	if (status == 0 && raftio_guard.m_append != NULL)
		metrics_observe(raftio_guard.m_append,
				(double)(uv_hrtime() - op->start_ns) / 1e9);
	if (op == raftio_guard.after_truncate) {
		/* Written after the truncation, so that is done.  The FIFO
		 * moves from the timer: this callback runs inside raft_uv's
		 * write path, not the place to start a barrier. */
		raftio_guard.after_truncate = NULL;
		raftio_guard.barrier = RAFTIO_BARRIER_LIFTING;
		if (!raftio_guard.closed)
			uv_timer_start(&raftio_guard.timer, timer_cb, 0, 0);
	}
	free(op);
	raftio_failed("log append", status);
	if (cb != NULL)
		cb(outer, status);
}

static void put_done(struct raft_io_snapshot_put *inner, int status)
{
	struct raftio_op *op =
		(struct raftio_op *)((char *)inner -
				     offsetof(struct raftio_op, put));
	struct raft_io_snapshot_put *outer = op->put_outer;
	raft_io_snapshot_put_cb cb = op->put_cb;

	/* raft_uv lifts its barrier only after this callback returns. */
	assert(raftio_guard.barrier == RAFTIO_BARRIER_PUT);
	raftio_guard.barrier = RAFTIO_BARRIER_LIFTING;
	if (!raftio_guard.closed)
		uv_timer_start(&raftio_guard.timer, timer_cb, 0, 0);
	free(op);
	raftio_failed("snapshot write", status);
	if (cb == NULL)
		return;
	/* c-raft drops the entries the snapshot covers in here, one free
	 * each: a worker does the frees (raftheap.h). */
	raftheap_defer_begin();
	cb(outer, status);
	raftheap_defer_end(raftio_guard.timer.loop);
}

/* ---- the backend's vtable entries ---- */

static int raftio_append(struct raft_io *io, struct raft_io_append *req,
			 const struct raft_entry entries[], unsigned n,
			 raft_io_append_cb cb)
{
	struct raftio_op *op = calloc(1, sizeof *op);

	assert(io == raftio_guard.io);
	if (op == NULL)
		return RAFT_NOMEM;
	op->kind = RAFTIO_APPEND;
	op->append_outer = req;
	op->append_cb = cb;
	op->entries = entries;
	op->n = n;
	op->start_ns = uv_hrtime();
	req->cb = cb;
	op_submit(op);
	return 0;
}

static int raftio_truncate(struct raft_io *io, raft_index index)
{
	struct raftio_op *op = calloc(1, sizeof *op);

	assert(io == raftio_guard.io);
	if (op == NULL)
		return RAFT_NOMEM;
	op->kind = RAFTIO_TRUNCATE;
	op->index = index;
	raftio_guard.stats.truncates++;
	if (raftio_guard.barrier == RAFTIO_BARRIER_PUT) {
		char q[sizeof raftio_guard.dir + 64];
		raftio_guard.stats.truncates_during_put++;
		log_info("raft.truncate_deferred",
			 "dir=%s index=%llu reason=\"a snapshot write is under "
			 "way: c-raft 0.15 would lose the truncation\"",
			 log_quote(q, sizeof q, raftio_guard.dir),
			 (unsigned long long)index);
	}
	op_submit(op);
	return 0;
}

static int raftio_snapshot_put(struct raft_io *io, unsigned trailing,
			       struct raft_io_snapshot_put *req,
			       const struct raft_snapshot *snapshot,
			       raft_io_snapshot_put_cb cb)
{
	struct raftio_op *op = calloc(1, sizeof *op);

	assert(io == raftio_guard.io);
	if (op == NULL)
		return RAFT_NOMEM;
	op->kind = RAFTIO_PUT;
	op->put_outer = req;
	op->put_cb = cb;
	op->trailing = trailing;
	op->snapshot = snapshot;
	req->cb = cb;
	op_submit(op);
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	(void)h;
}

/* raft_uv 0.15 may call its close callback twice: a segment writer's
 * close, which it does not wait for, finishing after the callback fired
 * calls it again (fixed upstream in cowsql/raft #45), and c-raft's
 * callback frees the node's address and its log a second time (a double
 * free under ASan at the close of test_director_run).  So the backend's
 * callback reaches c-raft once; a second one is counted and dropped. */
static void raftio_closed(struct raft_io *io)
{
	if (raftio_guard.close_cb_fired) {
		raftio_guard.stats.close_cb_repeats++;
		return;
	}
	raftio_guard.close_cb_fired = true;
	if (raftio_guard.close_cb != NULL)
		raftio_guard.close_cb(io);
}

/* What is still held never reached the backend: it is canceled here, as
 * the backend cancels what it holds. */
static void raftio_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct raftio_op *op;

	assert(io == raftio_guard.io);
	raftio_guard.closed = true;
	uv_timer_stop(&raftio_guard.timer);
	uv_close((uv_handle_t *)&raftio_guard.timer, timer_closed);
	while ((op = fifo_pop()) != NULL) {
		if (op->kind == RAFTIO_APPEND) {
			raft_io_append_cb acb = op->append_cb;
			struct raft_io_append *outer = op->append_outer;
			free(op);
			if (acb != NULL)
				acb(outer, RAFT_CANCELED);
		} else if (op->kind == RAFTIO_PUT) {
			raft_io_snapshot_put_cb pcb = op->put_cb;
			struct raft_io_snapshot_put *outer = op->put_outer;
			free(op);
			if (pcb != NULL)
				pcb(outer, RAFT_CANCELED);
		} else {
			free(op);
		}
	}
	raftio_guard.close_cb = cb;
	raftio_guard.close_cb_fired = false;
	raftio_guard.close(io, raftio_closed);
}

void raftio_guard_install(struct raft_io *io, uv_loop_t *loop, const char *dir,
			  raftio_fatal_fn fatal, void *ctx)
{
	assert(io != NULL && io->append != NULL && fatal != NULL);
	assert(io->truncate != NULL && io->snapshot_put != NULL &&
	       io->close != NULL);
	raftio_guard.io = io;
	raftio_guard.append = io->append;
	raftio_guard.truncate = io->truncate;
	raftio_guard.snapshot_put = io->snapshot_put;
	raftio_guard.close = io->close;
	raftio_guard.fatal = fatal;
	raftio_guard.ctx = ctx;
	raftio_guard.quiet = false;
	raftio_guard.m_append = NULL;
	snprintf(raftio_guard.dir, sizeof raftio_guard.dir, "%s", dir);
	raftio_guard.head = raftio_guard.tail = NULL;
	raftio_guard.barrier = RAFTIO_BARRIER_NONE;
	raftio_guard.after_truncate = NULL;
	raftio_guard.closed = false;
	memset(&raftio_guard.stats, 0, sizeof raftio_guard.stats);
	uv_timer_init(loop, &raftio_guard.timer);
	/* raft_uv 0.15 implements async_work, the one field version 2 adds,
	 * but says version 1, and raft_init then refuses a state machine
	 * that snapshots asynchronously (fsm_snapshot.c). */
	if (io->version < 2 && io->async_work != NULL)
		io->version = 2;
	io->append = raftio_append;
	io->truncate = raftio_truncate;
	io->snapshot_put = raftio_snapshot_put;
	io->close = raftio_close;
}

void raftio_guard_quiet(void)
{
	raftio_guard.quiet = true;
}

struct raftio_stats raftio_guard_stats(void)
{
	return raftio_guard.stats;
}

int raftio_metrics_register(struct metrics *ms)
{
	raftio_guard.m_append = metrics_histogram(
		ms, "raftstore_raft_append_duration_seconds",
		"Raft log appends, from c-raft's request to written and fsynced "
		"(raft_uv batches the requests that arrive while a write is under "
		"way)",
		metrics_buckets_seconds, METRICS_BUCKETS_SECONDS_COUNT);
	return raftio_guard.m_append != NULL ? RS_OK : RS_EINVAL;
}
