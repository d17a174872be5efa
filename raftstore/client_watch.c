/*
 * client_watch: watches, on the pooled connections like any op.
 *
 * A watch is sent like any op and, until the server's "started" answer,
 * follows the same deadline and retry rules.  Once started its deadline
 * stops: it lasts until the server ends it, its connection fails, or the
 * caller cancels it.  Each event (a version and a batch of mutations) is
 * checked whole before it reaches the callback.
 *
 * Cancelling a watch that was sent writes a WATCH_CANCEL naming its
 * request id on its connection, which stays open for the other ops and
 * watches; a watch not written yet is only taken off its queue.  Either
 * way the op is released at once, so no callback follows the cancel: the
 * connection drops the events still in flight for it and the cancel's
 * answer, as frames for an id it no longer has.
 */
#include "raftstore/client_internal.h"

#include <assert.h>

static void client_watch_event(struct client_conn *conn, struct rs_op *op,
			       struct wire_reader *r)
{
	/* An empty string is read as an empty batch, as the commit encoder
	 * writes one for a batch nobody added to. */
	static const uint8_t empty_body[4] = {0, 0, 0, 0};
	uint64_t version = wire_get_u64(r);
	struct wire_bytes muts = wire_get_bytes(r, RS_BATCH_SIZE_MAX);

	assert(op->state == CLIENT_OP_WATCHING);
	if (muts.len == 0) {
		muts.p = empty_body;
		muts.len = sizeof empty_body;
	}
	if (!wire_reader_done(r) ||
	    batch_body_validate(muts.p, muts.len, NULL) != RS_OK) {
		client_conn_fail(conn, RS_EPROTO,
				 "protocol error: malformed WATCH event");
		return;
	}
	if (batch_load_body(&op->result.event, muts.p, muts.len) != RS_OK) {
		client_op_msgf(op, "watch event: out of memory");
		client_op_finish(op, RS_ENOMEM);
		return;
	}
	op->result.event.version = version;
	op->result.version = version;
	op->result.status = RS_OK;
	op->result.message[0] = '\0';
	assert(op->result.event.count == rs_get_u32(muts.p));
	/* Last: the callback may cancel the watch or close the client. */
	op->cb(op);
}

void client_watch_frame(struct client_conn *conn, struct rs_op *op,
			const struct wire_frame *f)
{
	bool more = (f->flags & WIRE_FLAG_MORE) != 0;
	struct wire_reader r;
	struct wire_bytes msg;
	int status;

	assert(op->type == WIRE_WATCH);
	assert(op->state == CLIENT_OP_SENT || op->state == CLIENT_OP_WATCHING);
	if (wire_decode_response_head(f, &r, &status, &msg) != RS_OK)
		goto proto;
	op->result.endpoint = conn->client->eps[conn->endpoint].name;
	if (status != RS_OK && op->state == CLIENT_OP_SENT) {
		client_op_refused(conn, op, status, msg);
	} else if (status != RS_OK) {
		client_msg_text(msg, status, op->result.message,
				sizeof op->result.message);
		client_op_finish(op, status);
	} else if (op->state == CLIENT_OP_SENT) {
		if (more || !wire_reader_done(&r))
			goto proto;
		client_op_set_state(op, CLIENT_OP_WATCHING);
		op->result.watch_started = true;
		/* The deadline was for getting the watch started; a running
		 * watch lasts until it ends or is cancelled. */
		uv_timer_stop(op->backoff);
	} else if (more) {
		client_watch_event(conn, op, &r);
	} else {
		goto proto;
	}
	return;
proto:
	client_conn_fail(conn, RS_EPROTO, "protocol error: malformed WATCH response");
}

int rs_client_watch(struct rs_client *c, struct rs_op *op, const void *begin,
		    size_t begin_len, const void *end, size_t end_len,
		    uint64_t from_version, rs_op_cb cb)
{
	struct wire_watch_req m;
	int rv;

	assert(begin != NULL || begin_len == 0);
	assert(end != NULL || end_len == 0);
	if (begin_len > RS_KEY_SIZE_MAX || end_len > RS_KEY_SIZE_MAX)
		return RS_ETOOLARGE;
	rv = client_op_prepare(c, op, WIRE_WATCH, cb);
	if (rv != RS_OK)
		return rv;
	m.begin.p = begin;
	m.begin.len = (uint32_t)begin_len;
	m.end.p = end;
	m.end.len = (uint32_t)end_len;
	m.from_version = from_version;
	return client_op_launch(op, wire_encode_watch(&op->request,
						       op->request_id, &m));
}

/* Tell the server to stop op's watch.  Without memory for the frame the
 * watch runs on at the server, and its events are dropped here like any
 * frame for an id the connection no longer has. */
static void client_watch_send_cancel(struct client_conn *conn,
				     const struct rs_op *op)
{
	struct rs_client *c = conn->client;
	struct rs_buf frame;

	assert(op->conn == conn && op->type == WIRE_WATCH);
	assert(sm_state(&conn->sm) == CLIENT_CONN_READY ||
	       sm_state(&conn->sm) == CLIENT_CONN_CHECKING);
	rs_buf_init(&frame);
	if (wire_encode_watch_cancel(&frame, c->next_id, op->request_id) !=
	    RS_OK)
		return;
	c->next_id++;
	if (client_write_owned(conn, &frame, "watch cancel") == 0)
		conn->cancels++;
}

bool client_watch_cancels_pending(const struct rs_client *c)
{
	for (const struct client_conn *conn = c->conns; conn != NULL;
	     conn = conn->next)
		if (conn->cancels > 0 &&
		    sm_state(&conn->sm) != CLIENT_CONN_CLOSING)
			return true;
	return false;
}

void rs_client_watch_cancel(struct rs_client *c, struct rs_op *op)
{
	struct client_conn *conn;

	assert(c != NULL && op != NULL);
	assert(op->client == c && op->type == WIRE_WATCH);
	if (op->state == CLIENT_OP_DONE || op->state == CLIENT_OP_IDLE)
		return;
	conn = op->conn;
	/* Sent (its frame may still be in libuv's queue, which keeps the
	 * order): the server runs it or is about to.  A closing connection
	 * ends its watches at the server anyway. */
	if ((op->state == CLIENT_OP_SENT || op->state == CLIENT_OP_WATCHING) &&
	    !c->closing && sm_state(&conn->sm) != CLIENT_CONN_CLOSING)
		client_watch_send_cancel(conn, op);
	/* Off its connection, which closes only if retired and now idle. */
	client_op_release(op);
}
