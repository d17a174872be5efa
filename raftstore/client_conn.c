/*
 * client_conn: the client's TCP connections to the cluster's endpoints.
 *
 * A connection connects, optionally asks the leader STATUS first (pooled
 * connections: client_endpoint.c), writes its ops' frames in order and
 * routes each frame it reads to the op with that request id.  Ops are
 * written when the loop is next about to wait for I/O (a prepare handle),
 * all those queued on a connection in one uv_write: a client that answers
 * each reply with a new request, as a busy one does, pays one system call
 * per read's worth of replies rather than one per request, and so does
 * the server reading them.  `connections`
 * pooled connections go to the current endpoint (c->cur) and take ops
 * round-robin, watches as well: one connection carries any number of
 * watches beside the other ops, and a watch is cancelled with a
 * WATCH_CANCEL frame on its connection (client_watch.c), which stays open
 * for the others.  STATUS/MEMBERS of a named endpoint get a connection of
 * their own that closes once its op is gone.  A pooled connection that is
 * retired (the client moved to another endpoint) keeps its sent ops and
 * running watches until they end, and closes once it has none.
 *
 * Failure.  Anything wrong with a connection (connect, write or read
 * error, the server closing it, a malformed frame) closes it, and its ops
 * are dealt with in the close callback: by then libuv has run every write
 * callback on it, so an op's `written` is final and the COMMIT rule (sent
 * means unknown) is exact.  A running watch on it ends with
 * RS_EUNAVAILABLE ("watch ended: ...").  A late answer for an op no longer
 * on the connection (timed out, cancelled) is dropped, and so are a
 * cancelled watch's events and the answer to its WATCH_CANCEL.
 */
#include "raftstore/client_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room offered to each read; a larger frame grows the buffer as it comes. */
#define CLIENT_READ_CHUNK (64u * 1024u)
/* A read buffer a large frame grew past this is freed once it is empty. */
#define CLIENT_RBUF_KEEP (1024u * 1024u)

static const struct sm_state client_conn_states[CLIENT_CONN__COUNT] = {
	[CLIENT_CONN_CONNECTING] = {"connecting", SM_TO(CLIENT_CONN_CHECKING) |
							  SM_TO(CLIENT_CONN_READY) |
							  SM_TO(CLIENT_CONN_CLOSING)},
	[CLIENT_CONN_CHECKING] = {"checking", SM_TO(CLIENT_CONN_READY) |
						      SM_TO(CLIENT_CONN_CLOSING)},
	/* READY -> CHECKING: asking again after the asker failed. */
	[CLIENT_CONN_READY] = {"ready", SM_TO(CLIENT_CONN_CHECKING) |
						SM_TO(CLIENT_CONN_CLOSING)},
	[CLIENT_CONN_CLOSING] = {"closing", 0},
};
static const struct sm_def client_conn_sm =
	SM_DEF("client_conn", client_conn_states);

static void client_conn_closed(uv_handle_t *h);
static void client_conn_read(uv_stream_t *s, ssize_t nread,
			     const uv_buf_t *buf);

struct client_conn *client_conn_new(struct rs_client *c,
				    unsigned endpoint)
{
	struct client_conn *conn;

	assert(!c->closing);
	assert(endpoint < c->n_eps);
	conn = calloc(1, sizeof *conn);
	if (conn == NULL)
		return NULL;
	if (uv_tcp_init(c->loop, &conn->tcp) != 0) {
		free(conn);
		return NULL;
	}
	c->n_handles++;
	conn->client = c;
	conn->endpoint = endpoint;
	sm_init(&conn->sm, &client_conn_sm, CLIENT_CONN_CONNECTING);
	conn->tcp.data = conn;
	rs_buf_init(&conn->rbuf);
	conn->next = c->conns;
	if (c->conns != NULL)
		c->conns->prev = conn;
	c->conns = conn;
	return conn;
}

void client_conn_close(struct client_conn *conn)
{
	struct rs_client *c = conn->client;

	assert(sm_state(&conn->sm) != CLIENT_CONN_CLOSING);
	if (conn->pooled) {
		assert(c->pool[conn->slot] == conn);
		c->pool[conn->slot] = NULL;
		conn->pooled = false;
	}
	sm_move(&conn->sm, CLIENT_CONN_CLOSING);
	uv_close((uv_handle_t *)&conn->tcp, client_conn_closed);
}

void client_conn_maybe_close(struct client_conn *conn)
{
	assert(sm_state(&conn->sm) < CLIENT_CONN__COUNT);
	assert(!conn->retired || !conn->pooled);
	if (conn->retired && sm_state(&conn->sm) != CLIENT_CONN_CLOSING &&
	    conn->ops.n == 0 && conn->status_id == 0)
		client_conn_close(conn);
}

void client_conn_fail(struct client_conn *conn, int status,
		      const char *fmt, ...)
{
	struct rs_client *c = conn->client;
	char why[RS_ERRMSG_SIZE];
	bool busy, checking;
	va_list ap;

	assert(status != RS_OK);
	if (sm_state(&conn->sm) == CLIENT_CONN_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(conn->fail_msg, sizeof conn->fail_msg, "%s: %s",
		 c->eps[conn->endpoint].name, why);
	conn->fail_status = status;
	busy = sm_state(&conn->sm) == CLIENT_CONN_CONNECTING || conn->ops.n > 0 ||
	       conn->status_id != 0;
	checking = conn->status_id != 0 && conn->pooled &&
		   conn->endpoint == c->cur;
	if (checking)
		c->leader_checking = false;
	client_conn_close(conn);
	if (busy && !conn->targeted)
		client_rotate(c, conn->endpoint);
	if (checking)
		client_leader_recheck(c);
	assert(sm_state(&conn->sm) == CLIENT_CONN_CLOSING);
}

static void client_conn_closed(uv_handle_t *h)
{
	struct client_conn *conn = h->data;
	struct rs_client *c = conn->client;
	struct rs_op *op;

	assert(sm_state(&conn->sm) == CLIENT_CONN_CLOSING);
	assert(!conn->pooled);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		c->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	while ((op = conn->ops.head) != NULL) {
		client_conn_remove_op(conn, op);
		op->conn = NULL;
		client_op_conn_lost(op, conn);
	}
	rs_buf_free(&conn->rbuf);
	free(conn->by_id);
	free(conn);
	client_handle_gone(c);
}

static void client_write_done(uv_write_t *req, int status)
{
	struct client_write *w = (struct client_write *)req;
	struct client_conn *conn = w->conn;

	assert(req->handle == (uv_stream_t *)&conn->tcp);
	for (unsigned i = 0; i < w->n; i++) {
		struct client_write_part *part = &w->parts[i];

		if (part->op != NULL) {
			assert(part->op->write == part);
			part->op->write = NULL;
			if (status == 0)
				part->op->written = true;
		}
		rs_buf_free(&part->frame);
	}
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		client_conn_fail(conn, RS_EUNAVAILABLE, "write: %s",
				 uv_strerror(status));
}

/* Hand w's n buffers to libuv; on failure w is freed (with the frames its
 * parts own) and conn fails. */
static int client_write_issue(struct client_conn *conn, struct client_write *w,
			      const uv_buf_t *bufs)
{
	int rv;

	assert(sm_state(&conn->sm) == CLIENT_CONN_READY ||
	       sm_state(&conn->sm) == CLIENT_CONN_CHECKING);
	assert(w->n > 0);
	w->conn = conn;
	rv = uv_write(&w->req, (uv_stream_t *)&conn->tcp, bufs, w->n,
		      client_write_done);
	if (rv == 0) {
		conn->client->writes++;
		conn->client->frames_written += w->n;
	} else {
		for (unsigned i = 0; i < w->n; i++)
			rs_buf_free(&w->parts[i].frame);
		free(w);
		client_conn_fail(conn, RS_EUNAVAILABLE, "write: %s",
				 uv_strerror(rv));
	}
	return rv;
}

int client_write_owned(struct client_conn *conn, struct rs_buf *frame,
		       const char *what)
{
	struct client_write *w = calloc(1, sizeof *w + sizeof w->parts[0]);
	uv_buf_t buf;

	assert(frame->len >= WIRE_HEADER_SIZE);
	if (w == NULL) {
		rs_buf_free(frame);
		client_conn_fail(conn, RS_ENOMEM, "%s: out of memory", what);
		return RS_ENOMEM;
	}
	w->n = 1;
	w->parts[0].frame = *frame;
	rs_buf_init(frame);
	buf = uv_buf_init((char *)w->parts[0].frame.data,
			  (unsigned)w->parts[0].frame.len);
	return client_write_issue(conn, w, &buf);
}

bool client_conn_may_send(const struct client_conn *conn)
{
	assert(sm_state(&conn->sm) < CLIENT_CONN__COUNT);
	return sm_state(&conn->sm) == CLIENT_CONN_READY &&
	       (!conn->pooled || conn->client->leader_checked);
}

void client_conn_flush(struct client_conn *conn)
{
	uv_buf_t small[16], *bufs = small;
	struct client_write *w;
	struct rs_op *first = NULL, *op;
	unsigned n = 0, i;

	assert(conn->client != NULL);
	if (!client_conn_may_send(conn))
		return;
	for (op = conn->ops.tail; op != NULL && op->state == CLIENT_OP_QUEUED;
	     op = op->prev) {
		first = op;
		n++;
	}
	if (n == 0)
		return;
	w = calloc(1, sizeof *w + n * sizeof w->parts[0]);
	if (n > sizeof small / sizeof small[0])
		bufs = malloc(n * sizeof *bufs);
	if (w == NULL || bufs == NULL) {
		free(w);
		if (bufs != small)
			free(bufs);
		client_conn_fail(conn, RS_ENOMEM, "write: out of memory");
		return;
	}
	w->n = n;
	for (i = 0, op = first; op != NULL; op = op->next, i++) {
		assert(op->state == CLIENT_OP_QUEUED && op->write == NULL);
		assert(op->request.len >= WIRE_HEADER_SIZE);
		bufs[i] = uv_buf_init((char *)op->request.data,
				      (unsigned)op->request.len);
		w->parts[i].op = op;
		rs_buf_init(&w->parts[i].frame);
	}
	assert(i == n);
	/* libuv copies the buffer list; the frames stay the ops' own. */
	if (client_write_issue(conn, w, bufs) == 0)
		for (i = 0; i < n; i++) {
			op = w->parts[i].op;
			op->written = false;
			op->write = &w->parts[i];
			client_op_set_state(op, CLIENT_OP_SENT);
		}
	if (bufs != small)
		free(bufs);
	assert(sm_state(&conn->sm) != CLIENT_CONN_READY || !client_conn_may_send(conn) ||
	       conn->ops.head == NULL || conn->ops.tail->state != CLIENT_OP_QUEUED);
}

static void client_flush_run(uv_prepare_t *h)
{
	struct rs_client *c = h->data;
	struct client_conn *conn, *next;

	assert(c->flush_armed && !c->closing);
	uv_prepare_stop(h);
	c->flush_armed = false;
	/* A connection that fails here stays on the list until its close
	 * callback; one a failure opens goes to the head, behind us. */
	for (conn = c->conns; conn != NULL; conn = next) {
		next = conn->next;
		if (sm_state(&conn->sm) != CLIENT_CONN_CLOSING)
			client_conn_flush(conn);
	}
}

void client_flush_soon(struct rs_client *c)
{
	assert(!c->closing);
	if (c->flush_armed)
		return;
	uv_prepare_start(&c->flusher, client_flush_run);
	c->flush_armed = true;
}

static void client_flusher_closed(uv_handle_t *h)
{
	client_handle_gone(h->data);
}

void client_flusher_init(struct rs_client *c)
{
	/* Cannot fail on Unix: libuv only links the handle into the loop. */
	int rv = uv_prepare_init(c->loop, &c->flusher);

	assert(rv == 0);
	(void)rv;
	c->flusher.data = c;
	c->n_handles++;
}

void client_flusher_close(struct rs_client *c)
{
	c->flush_armed = false;
	uv_close((uv_handle_t *)&c->flusher, client_flusher_closed);
}

static void client_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client_conn *conn = h->data;

	(void)suggested;
	assert(sm_state(&conn->sm) != CLIENT_CONN_CLOSING);
	if (rs_buf_reserve(&conn->rbuf, CLIENT_READ_CHUNK) != RS_OK) {
		*buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
		return;
	}
	*buf = uv_buf_init((char *)conn->rbuf.data + conn->rbuf.len,
			   (unsigned)(conn->rbuf.cap - conn->rbuf.len));
	assert(buf->len >= CLIENT_READ_CHUNK);
}

static void client_conn_start(struct client_conn *conn)
{
	struct rs_client *c = conn->client;
	int rv;

	assert(sm_state(&conn->sm) == CLIENT_CONN_CONNECTING);
	assert(conn->ops.n > 0 || !conn->retired);
	/* Requests are small and latency-bound: Nagle would hold the second
	 * of two pipelined frames until the first is acknowledged. */
	rv = uv_tcp_nodelay(&conn->tcp, 1);
	if (rv == 0)
		rv = uv_read_start((uv_stream_t *)&conn->tcp, client_conn_alloc,
				   client_conn_read);
	if (rv != 0) {
		client_conn_fail(conn, RS_EUNAVAILABLE, "start reading: %s",
				 uv_strerror(rv));
		return;
	}
	if (conn->pooled && !c->leader_checked && !c->leader_checking) {
		client_leader_check(conn);
		return;
	}
	sm_move(&conn->sm, CLIENT_CONN_READY);
	client_conn_flush(conn);
}

static void client_conn_connected(uv_connect_t *req, int status)
{
	struct client_conn *conn = req->handle->data;

	assert(req == &conn->connect_req);
	if (sm_state(&conn->sm) == CLIENT_CONN_CLOSING)
		return; /* closed meanwhile (UV_ECANCELED) */
	assert(sm_state(&conn->sm) == CLIENT_CONN_CONNECTING);
	if (status < 0) {
		client_endpoint_connect_result(conn->client, conn->endpoint,
					       uv_strerror(status));
		client_conn_fail(conn, RS_EUNAVAILABLE, "connect: %s",
				 uv_strerror(status));
		return;
	}
	client_endpoint_connect_result(conn->client, conn->endpoint, NULL);
	client_conn_start(conn);
}

void client_conn_connect(struct client_conn *conn)
{
	const struct client_endpoint *ep = &conn->client->eps[conn->endpoint];
	int rv;

	assert(sm_state(&conn->sm) == CLIENT_CONN_CONNECTING);
	assert(ep->addr.sin_family == AF_INET);
	rv = uv_tcp_connect(&conn->connect_req, &conn->tcp,
			    (const struct sockaddr *)&ep->addr,
			    client_conn_connected);
	if (rv != 0)
		client_conn_fail(conn, RS_EUNAVAILABLE, "connect: %s",
				 uv_strerror(rv));
}

/* A frame with request id 0 is the server refusing our stream. */
static void client_conn_refused(struct client_conn *conn,
				const struct wire_frame *f)
{
	char text[RS_ERRMSG_SIZE];
	struct wire_reader r;
	struct wire_bytes msg;
	int status;

	assert(f->request_id == 0);
	if (wire_decode_response_head(f, &r, &status, &msg) != RS_OK) {
		client_conn_fail(conn, RS_EPROTO,
				 "protocol error: malformed frame for request 0");
		return;
	}
	client_msg_text(msg, status, text, sizeof text);
	client_conn_fail(conn, RS_EPROTO, "the server refused the stream: %s",
			 text);
	assert(sm_state(&conn->sm) == CLIENT_CONN_CLOSING);
}

/* ---- ops by request id ---- */

static unsigned client_id_slot(uint64_t id, unsigned cap)
{
	return (unsigned)((id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static void client_id_insert(struct rs_op **by_id, unsigned cap,
			     struct rs_op *op)
{
	unsigned slot = client_id_slot(op->request_id, cap);

	op->id_next = by_id[slot];
	by_id[slot] = op;
}

/* Room for one more op: grow to keep at least two buckets per op. */
static void client_id_reserve(struct client_conn *conn)
{
	unsigned cap = conn->by_id_cap ? conn->by_id_cap * 2 : 16;
	struct rs_op **fresh;

	if (conn->by_id_cap >= 2 * (conn->ops.n + 1))
		return;
	fresh = calloc(cap, sizeof *fresh);
	if (fresh == NULL)
		return; /* keep the smaller one */
	for (unsigned i = 0; i < conn->by_id_cap; i++)
		while (conn->by_id[i] != NULL) {
			struct rs_op *op = conn->by_id[i];
			conn->by_id[i] = op->id_next;
			client_id_insert(fresh, cap, op);
		}
	free(conn->by_id);
	conn->by_id = fresh;
	conn->by_id_cap = cap;
}

void client_conn_add_op(struct client_conn *conn, struct rs_op *op)
{
	client_id_reserve(conn);
	client_list_push(&conn->ops, op);
	if (conn->by_id_cap > 0)
		client_id_insert(conn->by_id, conn->by_id_cap, op);
	else
		op->id_next = NULL;
}

void client_conn_remove_op(struct client_conn *conn, struct rs_op *op)
{
	client_list_remove(&conn->ops, op);
	if (conn->by_id_cap > 0) {
		struct rs_op **p = &conn->by_id[client_id_slot(op->request_id,
								conn->by_id_cap)];
		while (*p != NULL && *p != op)
			p = &(*p)->id_next;
		if (*p == op)
			*p = op->id_next;
	}
	op->id_next = NULL;
}

struct rs_op *client_conn_op(const struct client_conn *conn, uint64_t id)
{
	struct rs_op *op;

	if (conn->by_id_cap == 0) { /* never grown: walk the list */
		for (op = conn->ops.head; op != NULL; op = op->next)
			if (op->request_id == id)
				return op;
		return NULL;
	}
	for (op = conn->by_id[client_id_slot(id, conn->by_id_cap)];
	     op != NULL; op = op->id_next)
		if (op->request_id == id)
			return op;
	return NULL;
}

static void client_conn_frame(struct client_conn *conn,
			      const struct wire_frame *f)
{
	struct rs_op *op;

	assert(sm_state(&conn->sm) != CLIENT_CONN_CLOSING);
	assert(f->total_len >= WIRE_HEADER_SIZE);
	if (conn->status_id != 0 && f->request_id == conn->status_id) {
		client_leader_reply(conn, f);
		return;
	}
	/* Its watch is gone already: the answer only says it stopped (or
	 * had ended by itself). */
	if (f->type == (WIRE_WATCH_CANCEL | WIRE_RESPONSE) && conn->cancels > 0) {
		conn->cancels--;
		return;
	}
	op = client_conn_op(conn, f->request_id);
	if (op == NULL) {
		/* Else a late answer to an op that timed out or was cancelled. */
		if (f->request_id == 0)
			client_conn_refused(conn, f);
		return;
	}
	if (f->type != (op->type | WIRE_RESPONSE) ||
	    op->state == CLIENT_OP_QUEUED) {
		client_conn_fail(conn, RS_EPROTO,
				 "protocol error: frame type 0x%02x answers %s request %" PRIu64,
				 f->type, wire_type_name(op->type), op->request_id);
		return;
	}
	if (op->type == WIRE_WATCH)
		client_watch_frame(conn, op, f);
	else
		client_op_response(conn, op, f);
}

static void client_conn_parse(struct client_conn *conn)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_frame f;
	size_t off = 0;
	int rv;

	assert(conn->rbuf.len > 0);
	while (sm_state(&conn->sm) != CLIENT_CONN_CLOSING) {
		rv = wire_frame_parse(conn->rbuf.data + off, conn->rbuf.len - off,
				      &f, errmsg);
		if (rv == RS_ETORN)
			break;
		if (rv != RS_OK) {
			client_conn_fail(conn, RS_EPROTO, "protocol error: %s",
					 errmsg);
			return;
		}
		off += f.total_len;
		client_conn_frame(conn, &f);
	}
	if (sm_state(&conn->sm) == CLIENT_CONN_CLOSING)
		return; /* the buffer goes with the connection */
	assert(off <= conn->rbuf.len);
	memmove(conn->rbuf.data, conn->rbuf.data + off, conn->rbuf.len - off);
	conn->rbuf.len -= off;
	if (conn->rbuf.len == 0 && conn->rbuf.cap > CLIENT_RBUF_KEEP)
		rs_buf_free(&conn->rbuf);
}

static void client_conn_read(uv_stream_t *s, ssize_t nread,
			     const uv_buf_t *buf)
{
	struct client_conn *conn = s->data;

	(void)buf;
	assert(sm_state(&conn->sm) != CLIENT_CONN_CLOSING);
	if (nread == 0)
		return;
	if (nread == UV_EOF) {
		client_conn_fail(conn, RS_EUNAVAILABLE,
				 "connection closed by the server");
		return;
	}
	if (nread < 0) {
		client_conn_fail(conn, nread == UV_ENOBUFS ? RS_ENOMEM :
				 RS_EUNAVAILABLE, "read: %s",
				 uv_strerror((int)nread));
		return;
	}
	assert((size_t)nread <= conn->rbuf.cap - conn->rbuf.len);
	conn->rbuf.len += (size_t)nread;
	client_conn_parse(conn);
}
