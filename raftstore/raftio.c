/* raftio: see raftio.h. */
#include "raftstore/raftio.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"

/* The wrapped request: c-raft's own stays untouched, the backend sees ours. */
struct raftio_append {
	struct raft_io_append inner;
	struct raft_io_append *outer;
	raft_io_append_cb cb;
	uint64_t start_ns; /* when c-raft asked for it */
};

struct raftio_snapshot_put {
	struct raft_io_snapshot_put inner;
	struct raft_io_snapshot_put *outer;
	raft_io_snapshot_put_cb cb;
};

static struct {
	struct raft_io *io;
	int (*append)(struct raft_io *io, struct raft_io_append *req,
		      const struct raft_entry entries[], unsigned n,
		      raft_io_append_cb cb);
	int (*snapshot_put)(struct raft_io *io, unsigned trailing,
			    struct raft_io_snapshot_put *req,
			    const struct raft_snapshot *snapshot,
			    raft_io_snapshot_put_cb cb);
	raftio_fatal_fn fatal;
	void *ctx;
	bool quiet;
	struct metric *m_append; /* NULL until registered */
	char dir[256];
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

static void raftio_append_done(struct raft_io_append *inner, int status)
{
	struct raftio_append *w = (struct raftio_append *)inner;
	struct raft_io_append *outer = w->outer;
	raft_io_append_cb cb = w->cb;

	if (status == 0 && raftio_guard.m_append != NULL)
		metrics_observe(raftio_guard.m_append,
				(double)(uv_hrtime() - w->start_ns) / 1e9);
	free(w);
	raftio_failed("log append", status);
	if (cb != NULL)
		cb(outer, status);
}

static int raftio_append(struct raft_io *io, struct raft_io_append *req,
			 const struct raft_entry entries[], unsigned n,
			 raft_io_append_cb cb)
{
	struct raftio_append *w = calloc(1, sizeof *w);
	int rv;

	assert(io == raftio_guard.io);
	if (w == NULL)
		return RAFT_NOMEM;
	w->outer = req;
	w->cb = cb;
	w->start_ns = uv_hrtime();
	req->cb = cb;
	rv = raftio_guard.append(io, &w->inner, entries, n, raftio_append_done);
	/* raft_uv 0.15 may fail after it queued the request, whose callback
	 * then still fires: w cannot be freed, and c-raft's own error path
	 * frees the request that callback would reach.  A log write that
	 * cannot start is a disk failure: stop here. */
	if (rv != 0)
		raftio_failed("log append", rv);
	return rv;
}

static void raftio_snapshot_put_done(struct raft_io_snapshot_put *inner,
				     int status)
{
	struct raftio_snapshot_put *w = (struct raftio_snapshot_put *)inner;
	struct raft_io_snapshot_put *outer = w->outer;
	raft_io_snapshot_put_cb cb = w->cb;

	free(w);
	raftio_failed("snapshot write", status);
	if (cb != NULL)
		cb(outer, status);
}

static int raftio_snapshot_put(struct raft_io *io, unsigned trailing,
			       struct raft_io_snapshot_put *req,
			       const struct raft_snapshot *snapshot,
			       raft_io_snapshot_put_cb cb)
{
	struct raftio_snapshot_put *w = calloc(1, sizeof *w);
	int rv;

	assert(io == raftio_guard.io);
	if (w == NULL)
		return RAFT_NOMEM;
	w->outer = req;
	w->cb = cb;
	req->cb = cb;
	rv = raftio_guard.snapshot_put(io, trailing, &w->inner, snapshot,
				       raftio_snapshot_put_done);
	if (rv != 0)
		raftio_failed("snapshot write", rv); /* as for an append */
	return rv;
}

void raftio_guard_install(struct raft_io *io, const char *dir,
			  raftio_fatal_fn fatal, void *ctx)
{
	assert(io != NULL && io->append != NULL && fatal != NULL);
	raftio_guard.io = io;
	raftio_guard.append = io->append;
	raftio_guard.snapshot_put = io->snapshot_put;
	raftio_guard.fatal = fatal;
	raftio_guard.ctx = ctx;
	raftio_guard.quiet = false;
	raftio_guard.m_append = NULL;
	snprintf(raftio_guard.dir, sizeof raftio_guard.dir, "%s", dir);
	io->append = raftio_append;
	io->snapshot_put = raftio_snapshot_put;
}

void raftio_guard_quiet(void)
{
	raftio_guard.quiet = true;
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
