/*
 * client: the client's lifetime and the submit functions (see client.h).
 *
 * rs_client_create parses the options and opens only a timer and the
 * flusher (a prepare handle, client_conn.c); the first op connects.  Each submit function checks its arguments, encodes
 * the request frame once and hands the op to client_op.c.  rs_client_close
 * ends every outstanding op and watch (a COMMIT already sent with
 * RS_EUNKNOWN), closes every handle and frees the client when the last
 * one is closed; the anchor timer is closed last so that the caller's
 * callback always runs from the loop.
 *
 * The parts of the library are listed in client_internal.h.
 */
#include "raftstore/client_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_TIMEOUT_DEFAULT_MS 10000u
#define CLIENT_CONNS_MAX 256u

static void client_maybe_freed(struct rs_client *c)
{
	void (*cb)(void *arg) = c->close_cb;
	void *arg = c->close_arg;

	if (!c->closing || c->n_handles > 0)
		return;
	assert(c->conns == NULL && c->backoff.n == 0);
	assert(c->timers_free == NULL);
	free(c->pool);
	free(c);
	if (cb != NULL)
		cb(arg);
}

void client_handle_gone(struct rs_client *c)
{
	assert(c->n_handles > 0);
	c->n_handles--;
	client_maybe_freed(c);
}

static void client_anchor_closed(uv_handle_t *h)
{
	struct rs_client *c = h->data;

	assert(c->closing);
	assert(h == (uv_handle_t *)&c->anchor);
	client_handle_gone(c);
}

void rs_result_init(struct rs_result *r)
{
	assert(r != NULL);
	memset(r, 0, sizeof *r);
	rs_buf_init(&r->value);
	batch_init(&r->event);
	assert(r->kvs == NULL && r->endpoint == NULL);
}

void rs_result_free(struct rs_result *r)
{
	assert(r != NULL);
	assert(r->kvs != NULL || r->n_kvs == 0);
	rs_buf_free(&r->value);
	free(r->kvs); /* one block: the array, then every key and value */
	batch_free(&r->event);
	rs_result_init(r);
}

int rs_client_create(struct rs_client **out, uv_loop_t *loop,
		     const struct rs_client_options *o, char *errmsg)
{
	struct rs_client *c;
	int rv;

	assert(out != NULL && loop != NULL && o != NULL);
	if (o->endpoints == NULL) {
		rs_errmsg_printf(errmsg, "no endpoints given");
		return RS_EINVAL;
	}
	if (o->connections > CLIENT_CONNS_MAX) {
		rs_errmsg_printf(errmsg, "connections: %u is over %u",
				 o->connections, CLIENT_CONNS_MAX);
		return RS_EINVAL;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return RS_ENOMEM;
	rv = client_endpoints_parse(c, o->endpoints, errmsg);
	if (rv != RS_OK)
		goto err_client;
	c->n_pool = o->connections ? o->connections : 1;
	c->pool = calloc(c->n_pool, sizeof *c->pool);
	rv = RS_ENOMEM;
	if (c->pool == NULL || uv_timer_init(loop, &c->anchor) != 0)
		goto err_pool;
	c->anchor.data = c;
	c->n_handles = 1;
	c->loop = loop;
	client_flusher_init(c);
	c->op_timeout_ms = o->op_timeout_ms ? o->op_timeout_ms
					    : CLIENT_TIMEOUT_DEFAULT_MS;
	c->no_leader_pref = o->no_leader_pref;
	c->fail_fast = o->fail_fast;
	c->leader_checked = o->no_leader_pref;
	c->next_id = 1; /* 0 is the server's "unknown request" */
	c->rand_state = uv_hrtime() | 1;
	assert(c->n_eps > 0 && c->cur == 0);
	*out = c;
	return RS_OK;
err_pool:
	free(c->pool);
err_client:
	free(c);
	return rv;
}

static void client_op_shutdown(struct rs_op *op)
{
	bool unknown = client_op_changes_state(op) &&
		       (op->state == CLIENT_OP_SENT || op->written);

	assert(op->client->closing);
	assert(op->state != CLIENT_OP_DONE);
	client_op_msgf(op, unknown ? "client closed after the request was sent; its outcome is unknown"
				   : "client closed");
	client_op_finish(op, unknown ? RS_EUNKNOWN : RS_ESHUTDOWN);
}

void rs_client_close(struct rs_client *c, void (*cb)(void *arg), void *arg)
{
	struct client_conn *conn;

	assert(c != NULL);
	assert(!c->closing);
	c->closing = true;
	c->close_cb = cb;
	c->close_arg = arg;
	while (c->backoff.head != NULL)
		client_op_shutdown(c->backoff.head);
	/* Callbacks may cancel watches or close connections, but only close
	 * callbacks unlink them, so this walk is safe. */
	for (conn = c->conns; conn != NULL; conn = conn->next)
		while (conn->ops.head != NULL)
			client_op_shutdown(conn->ops.head);
	for (conn = c->conns; conn != NULL; conn = conn->next)
		if (sm_state(&conn->sm) != CLIENT_CONN_CLOSING)
			client_conn_close(conn);
	client_timers_close(c);
	client_flusher_close(c);
	uv_close((uv_handle_t *)&c->anchor, client_anchor_closed);
}

int rs_client_get(struct rs_client *c, struct rs_op *op, const void *key,
		  size_t key_len, enum wire_read_mode mode,
		  uint64_t read_version, rs_op_cb cb)
{
	struct wire_get_req m;
	int rv;

	assert(key != NULL || key_len == 0);
	if (key_len > RS_KEY_SIZE_MAX)
		return RS_ETOOLARGE;
	rv = client_op_prepare(c, op, WIRE_GET, cb);
	if (rv != RS_OK)
		return rv;
	m.mode = (uint8_t)mode;
	m.read_version = read_version;
	m.key.p = key;
	m.key.len = (uint32_t)key_len;
	return client_op_launch(op, wire_encode_get(&op->request,
						     op->request_id, &m));
}

int rs_client_range(struct rs_client *c, struct rs_op *op, const void *begin,
		    size_t begin_len, const void *end, size_t end_len,
		    uint32_t limit, enum wire_read_mode mode,
		    uint64_t read_version, rs_op_cb cb)
{
	struct wire_range_req m;
	int rv;

	assert(begin != NULL || begin_len == 0);
	assert(end != NULL || end_len == 0);
	if (begin_len > RS_KEY_SIZE_MAX || end_len > RS_KEY_SIZE_MAX)
		return RS_ETOOLARGE;
	rv = client_op_prepare(c, op, WIRE_RANGE, cb);
	if (rv != RS_OK)
		return rv;
	m.mode = (uint8_t)mode;
	m.read_version = read_version;
	m.begin.p = begin;
	m.begin.len = (uint32_t)begin_len;
	m.end.p = end;
	m.end.len = (uint32_t)end_len;
	m.limit = limit;
	return client_op_launch(op, wire_encode_range(&op->request,
						       op->request_id, &m));
}

int rs_client_grv(struct rs_client *c, struct rs_op *op, rs_op_cb cb)
{
	int rv = client_op_prepare(c, op, WIRE_GRV, cb);

	if (rv != RS_OK)
		return rv;
	assert(op->request.len == 0);
	return client_op_launch(op, wire_encode_simple(&op->request,
							op->request_id,
							WIRE_GRV));
}

int rs_client_commit(struct rs_client *c, struct rs_op *op,
		     uint64_t read_version, const struct wire_bytes *begins,
		     const struct wire_bytes *ends, uint32_t n_ranges,
		     const struct batch *mutations, rs_op_cb cb)
{
	int rv;

	if (n_ranges > 0 && (begins == NULL || ends == NULL))
		return RS_EINVAL;
	if (mutations != NULL && batch_body_len(mutations) > RS_BATCH_SIZE_MAX)
		return RS_ETOOLARGE;
	rv = client_op_prepare(c, op, WIRE_COMMIT, cb);
	if (rv != RS_OK)
		return rv;
	assert(op->request.len == 0);
	return client_op_launch(op, wire_encode_commit(&op->request,
							op->request_id,
							read_version, begins,
							ends, n_ranges,
							mutations));
}

int rs_client_info(struct rs_client *c, struct rs_op *op, uint8_t type,
		   int endpoint_index, rs_op_cb cb)
{
	int rv;

	assert(c != NULL);
	if ((type != WIRE_STATUS && type != WIRE_MEMBERS) ||
	    endpoint_index >= (int)c->n_eps)
		return RS_EINVAL;
	rv = client_op_prepare(c, op, type, cb);
	if (rv != RS_OK)
		return rv;
	op->target = endpoint_index < 0 ? -1 : endpoint_index;
	return client_op_launch(op, wire_encode_simple(&op->request,
							op->request_id, type));
}

int rs_client_register(struct rs_client *c, struct rs_op *op,
		       const struct rs_buf *body, rs_op_cb cb)
{
	size_t start;
	int rv = client_op_prepare(c, op, WIRE_REGISTER, cb);

	if (rv != RS_OK)
		return rv;
	start = wire_frame_begin(&op->request, WIRE_REGISTER, 0, op->request_id);
	if (start == WIRE_FRAME_NOMEM ||
	    rs_buf_append(&op->request, body->data, body->len) != RS_OK)
		return client_op_launch(op, RS_ENOMEM);
	return client_op_launch(op, wire_frame_end(&op->request, start));
}

int rs_client_member_change(struct rs_client *c, struct rs_op *op,
			    const struct wire_member_change_req *req,
			    rs_op_cb cb)
{
	int rv = client_op_prepare(c, op, WIRE_MEMBER_CHANGE, cb);

	if (rv != RS_OK)
		return rv;
	return client_op_launch(op, wire_encode_member_change(
					    &op->request, op->request_id, req));
}

int rs_client_term(struct rs_client *c, struct rs_op *op,
		   const struct wire_term_req *req, rs_op_cb cb)
{
	int rv = client_op_prepare(c, op, WIRE_TERM, cb);

	if (rv != RS_OK)
		return rv;
	return client_op_launch(op, wire_encode_term(&op->request,
						     op->request_id, req));
}

unsigned rs_client_endpoint_count(const struct rs_client *c)
{
	assert(c != NULL);
	return c->n_eps;
}

const char *rs_client_endpoint(const struct rs_client *c, unsigned i)
{
	assert(c != NULL);
	return i < c->n_eps ? c->eps[i].name : NULL;
}
