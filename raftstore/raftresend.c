/*
 * raftresend: see raftresend.h.
 */
#include "raftstore/raftresend.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/ioslot.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"

struct raftresend {
	struct raft_io *io; /* NULL: a free slot */
	int (*send)(struct raft_io *io, struct raft_io_send *req,
		    const struct raft_message *message, raft_io_send_cb cb);
	void (*close)(struct raft_io *io, raft_io_close_cb cb);
	bool closing;
	uint64_t resent;
};

/* One message on its way: what the backend sees (inner), and c-raft's. */
struct resend_req {
	struct raft_io_send inner; /* first: the callback's way back */
	struct raftresend *r;
	struct raft_io_send *outer;
	raft_io_send_cb cb;
	struct raft_message message;
	bool resent;
};

static struct raftresend raftresends[RAFTRESEND_IO_MAX];

_Static_assert(offsetof(struct raftresend, io) == 0,
	       "ioslot.h: io comes first");

static struct raftresend *raftresend_of(const struct raft_io *io)
{
	return ioslot_find(raftresends, RAFTRESEND_IO_MAX, sizeof raftresends[0],
			   io);
}

static const char *message_type_name(int type)
{
	switch (type) {
	case RAFT_IO_APPEND_ENTRIES: return "append_entries";
	case RAFT_IO_APPEND_ENTRIES_RESULT: return "append_entries_result";
	case RAFT_IO_REQUEST_VOTE: return "request_vote";
	case RAFT_IO_REQUEST_VOTE_RESULT: return "request_vote_result";
	case RAFT_IO_INSTALL_SNAPSHOT: return "install_snapshot";
	case RAFT_IO_TIMEOUT_NOW: return "timeout_now";
	default: return "unknown";
	}
}

static void resend_cb(struct raft_io_send *inner, int status)
{
	struct resend_req *q = (struct resend_req *)inner;
	struct raftresend *r = q->r;
	struct raft_io_send *outer = q->outer;
	raft_io_send_cb cb = q->cb;
	int rv;

	if (status == RAFT_IOERR && !q->resent && !r->closing) {
		q->resent = true;
		rv = r->send(r->io, &q->inner, &q->message, resend_cb);
		log_info("raft.message_resent",
			 "peer_id=%llu peer=%s type=%s outcome=\"%s\"",
			 (unsigned long long)q->message.server_id,
			 q->message.server_address != NULL
				 ? q->message.server_address
				 : "?",
			 message_type_name(q->message.type),
			 rv == 0 ? "queued" : raft_strerror(rv));
		if (rv == 0) {
			r->resent++;
			return;
		}
	}
	free(q);
	if (cb != NULL)
		cb(outer, status);
}

static int raftresend_send(struct raft_io *io, struct raft_io_send *req,
			   const struct raft_message *message,
			   raft_io_send_cb cb)
{
	struct raftresend *r = raftresend_of(io);
	struct resend_req *q;
	int rv;

	assert(r != NULL && r->send != NULL);
	req->cb = cb; /* as the backends do */
	q = r->closing ? NULL : malloc(sizeof *q);
	if (q == NULL)
		return r->send(io, req, message, cb);
	*q = (struct resend_req){.r = r, .outer = req, .cb = cb,
				 .message = *message};
	q->inner.data = req->data;
	rv = r->send(io, &q->inner, message, resend_cb);
	if (rv != 0)
		free(q);
	return rv;
}

static void raftresend_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct raftresend *r = raftresend_of(io);

	assert(r != NULL && r->close != NULL);
	r->closing = true;
	r->close(io, cb);
}

int raftresend_install(struct raft_io *io)
{
	struct raftresend *r = raftresend_of(io);

	assert(io != NULL && io->send != NULL && io->close != NULL);
	if (r != NULL && io->send == raftresend_send) {
		r->resent = 0; /* wrapped already: keep the originals */
		r->closing = false;
		return RS_OK;
	}
	if (r == NULL)
		r = raftresend_of(NULL);
	if (r == NULL)
		return RS_ETOOLARGE;
	*r = (struct raftresend){.io = io, .send = io->send,
				 .close = io->close};
	io->send = raftresend_send;
	io->close = raftresend_close;
	return RS_OK;
}

uint64_t raftresend_count(const struct raft_io *io)
{
	const struct raftresend *r = io != NULL ? raftresend_of(io) : NULL;

	return r != NULL ? r->resent : 0;
}

static double raftresend_read_count(void *ctx)
{
	return (double)raftresend_count(ctx);
}

int raftresend_metrics_register(struct raft_io *io, struct metrics *ms)
{
	assert(raftresend_of(io) != NULL);
	if (metrics_counter_fn(ms, "raftstore_raft_messages_resent_total",
			       "Raft messages sent a second time after their "
			       "write failed on a broken connection (c-raft "
			       "guard 16)",
			       raftresend_read_count, io) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
