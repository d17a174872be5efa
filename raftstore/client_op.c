/*
 * client_op: the life of an op, from submit to its one final callback.
 *
 * An op is dispatched to a connection (a pooled one to the current
 * endpoint, watches included, or one of its own for STATUS/MEMBERS of a
 * named endpoint), and its timer runs the deadline from the moment it is
 * launched.  A retryable
 * failure detaches it, waits out a jittered exponential backoff (10 ms
 * doubling to 500 ms, never past the deadline) and dispatches it again.
 * The deadline ends it with RS_ETIMEOUT, RS_EUNAVAILABLE or, for a COMMIT
 * that was sent, RS_EUNKNOWN; the message names the endpoints tried and
 * the last error.
 *
 * Frames.  An op's frame is encoded once and kept for retries, which reuse
 * the request id (ids are unique per client, and an op is on one connection
 * at a time).  An op that moves on while libuv still writes its frame hands
 * that memory to the write request (struct client_write).
 *
 * Timers are pooled per client: an op takes one at launch and returns it
 * when it finishes, so a busy client does not init and close a handle per
 * op.
 */
#include "raftstore/client_internal.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_BACKOFF_MIN_MS 10u
#define CLIENT_BACKOFF_MAX_MS 500u

static const struct sm_state client_op_states[CLIENT_OP__COUNT] = {
	[CLIENT_OP_IDLE] = {"idle", SM_TO(CLIENT_OP_QUEUED)},
	/* QUEUED -> QUEUED: moved to the leader before it was written. */
	[CLIENT_OP_QUEUED] = {"queued", SM_TO(CLIENT_OP_QUEUED) |
						SM_TO(CLIENT_OP_SENT) |
						SM_TO(CLIENT_OP_BACKOFF) |
						SM_TO(CLIENT_OP_DONE)},
	[CLIENT_OP_SENT] = {"sent", SM_TO(CLIENT_OP_WATCHING) |
					    SM_TO(CLIENT_OP_BACKOFF) |
					    SM_TO(CLIENT_OP_DONE)},
	[CLIENT_OP_WATCHING] = {"watching", SM_TO(CLIENT_OP_DONE)},
	[CLIENT_OP_BACKOFF] = {"backoff", SM_TO(CLIENT_OP_QUEUED) |
						  SM_TO(CLIENT_OP_DONE)},
	[CLIENT_OP_DONE] = {"done", 0},
};
static const struct sm_def client_op_sm = SM_DEF("client_op", client_op_states);

static void client_op_timer(uv_timer_t *timer);

void client_op_set_state(struct rs_op *op, enum client_op_state to)
{
	/* The state is a byte of the public struct rs_op, not a struct sm. */
	sm_check_move(&client_op_sm, op->state, to);
	op->state = (uint8_t)to;
}

void client_list_push(struct client_oplist *l, struct rs_op *op)
{
	assert(op->next == NULL && op->prev == NULL);
	assert((l->head == NULL) == (l->n == 0));
	op->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = op;
	else
		l->head = op;
	l->tail = op;
	l->n++;
}

void client_list_remove(struct client_oplist *l, struct rs_op *op)
{
	assert(l->n > 0);
	assert(op->prev != NULL || l->head == op);
	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		l->head = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	else
		l->tail = op->prev;
	op->next = NULL;
	op->prev = NULL;
	l->n--;
}

/* Through a copy, as the header promises. */
void client_op_msgf(struct rs_op *op, const char *fmt, ...)
{
	char text[sizeof op->result.message];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	memcpy(op->result.message, text, sizeof text);
}

void client_msg_text(struct wire_bytes msg, int status, char *out,
		     size_t size)
{
	size_t n = msg.len < size - 1 ? msg.len : size - 1;

	assert(size > 1);
	assert(msg.p != NULL || msg.len == 0);
	if (n == 0) {
		snprintf(out, size, "%s", rs_strerror(status));
		return;
	}
	memcpy(out, msg.p, n);
	out[n] = '\0';
}

static void client_timer_closed(uv_handle_t *h)
{
	struct client_timer *t = (struct client_timer *)h;
	struct rs_client *c = t->client;

	assert(t->op == NULL);
	assert(c->closing);
	free(t);
	client_handle_gone(c);
}

static uv_timer_t *client_timer_get(struct rs_client *c, struct rs_op *op)
{
	struct client_timer *t = c->timers_free;

	assert(!c->closing);
	if (t != NULL) {
		c->timers_free = t->next_free;
	} else {
		t = calloc(1, sizeof *t);
		if (t == NULL)
			return NULL;
		if (uv_timer_init(c->loop, &t->timer) != 0) {
			free(t);
			return NULL;
		}
		t->client = c;
		c->n_handles++;
	}
	t->next_free = NULL;
	t->op = op;
	assert(!uv_is_active((uv_handle_t *)&t->timer));
	return &t->timer;
}

/* Timers are reused: 64 ops in flight would otherwise cost a handle
 * init and close each. */
static void client_timer_put(struct rs_client *c, uv_timer_t *timer)
{
	struct client_timer *t = (struct client_timer *)timer;

	assert(t->client == c);
	assert(t->op != NULL);
	uv_timer_stop(timer);
	t->op = NULL;
	if (c->closing) {
		uv_close((uv_handle_t *)timer, client_timer_closed);
		return;
	}
	t->next_free = c->timers_free;
	c->timers_free = t;
}

void client_timers_close(struct rs_client *c)
{
	struct client_timer *t;

	assert(c->closing);
	while ((t = c->timers_free) != NULL) {
		c->timers_free = t->next_free;
		uv_close((uv_handle_t *)&t->timer, client_timer_closed);
	}
	assert(c->timers_free == NULL);
}

/* Off its connection's list (closing that connection if it was waiting
 * for this) or off the backoff list. */
static void client_op_detach(struct rs_op *op)
{
	struct client_conn *conn = op->conn;

	assert(op->state != CLIENT_OP_DONE && op->state != CLIENT_OP_IDLE);
	if (op->state == CLIENT_OP_BACKOFF) {
		assert(conn == NULL);
		client_list_remove(&op->client->backoff, op);
		return;
	}
	if (conn == NULL)
		return;
	client_conn_remove_op(conn, op);
	op->conn = NULL;
	client_conn_maybe_close(conn);
}

/* Let the op move on while libuv may still be writing its frame: the
 * write keeps the memory it reads from.  A retrying op takes a copy. */
static int client_op_unhook_write(struct rs_op *op, bool finishing)
{
	struct client_write_part *w = op->write;
	struct rs_buf copy;

	if (w == NULL)
		return RS_OK;
	assert(w->op == op && w->frame.data == NULL);
	rs_buf_init(&copy);
	if (!finishing &&
	    rs_buf_append(&copy, op->request.data, op->request.len) != RS_OK)
		return RS_ENOMEM;
	w->frame = op->request;
	op->request = copy;
	w->op = NULL;
	op->write = NULL;
	assert(finishing || op->request.len == w->frame.len);
	return RS_OK;
}

void client_op_release(struct rs_op *op)
{
	struct rs_client *c = op->client;

	assert(op->backoff != NULL);
	client_op_detach(op);
	client_op_unhook_write(op, true);
	client_timer_put(c, op->backoff);
	op->backoff = NULL;
	rs_buf_free(&op->request);
	client_op_set_state(op, CLIENT_OP_DONE);
	assert(op->conn == NULL && op->write == NULL);
}

void client_op_finish(struct rs_op *op, int status)
{
	assert(op->cb != NULL);
	assert(op->backoff != NULL);
	client_op_release(op);
	op->result.status = status;
	if (status == RS_OK)
		op->result.message[0] = '\0';
	else if (op->result.message[0] == '\0')
		client_op_msgf(op, "%s", rs_strerror(status));
	op->cb(op);
}

static void client_op_expire(struct rs_op *op)
{
	struct rs_client *c = op->client;
	char eps[160], last[sizeof op->result.message];
	int last_status = op->result.status;

	assert(op->state == CLIENT_OP_QUEUED || op->state == CLIENT_OP_SENT ||
	       op->state == CLIENT_OP_BACKOFF);
	assert(uv_now(c->loop) >= op->deadline_ms);
	memcpy(last, op->result.message, sizeof last);
	client_endpoint_list(c, eps, sizeof eps);
	if (client_op_changes_state(op) && op->state == CLIENT_OP_SENT) {
		client_op_msgf(op, "%s sent to %s got no answer within %u ms; its outcome is unknown",
			       op->type == WIRE_COMMIT ? "commit" : "member change",
			       c->eps[((struct client_conn *)op->conn)->endpoint].name,
			       c->op_timeout_ms);
		client_op_finish(op, RS_EUNKNOWN);
	} else if (last_status == RS_EUNAVAILABLE) {
		client_op_msgf(op, "no endpoint answered within %u ms (%s); last error: %s",
			       c->op_timeout_ms, eps, last);
		client_op_finish(op, RS_EUNAVAILABLE);
	} else if (last_status != RS_OK) {
		client_op_msgf(op, "gave up after %u ms and %u retries (%s); last error: %s",
			       c->op_timeout_ms, op->attempt, eps, last);
		client_op_finish(op, RS_ETIMEOUT);
	} else {
		client_op_msgf(op, "no answer within %u ms (endpoints %s)",
			       c->op_timeout_ms, eps);
		client_op_finish(op, RS_ETIMEOUT);
	}
}

static uint64_t client_backoff_ms(struct rs_client *c, unsigned attempt)
{
	uint64_t base = (uint64_t)CLIENT_BACKOFF_MIN_MS << (attempt < 6 ? attempt : 6);

	if (base > CLIENT_BACKOFF_MAX_MS)
		base = CLIENT_BACKOFF_MAX_MS;
	c->rand_state ^= c->rand_state << 13;
	c->rand_state ^= c->rand_state >> 7;
	c->rand_state ^= c->rand_state << 17;
	assert(c->rand_state != 0);
	/* Jitter over [base/2, base]: ops failed by one event must not all
	 * come back at the same instant. */
	base = base / 2 + c->rand_state % (base / 2 + 1);
	assert(base >= CLIENT_BACKOFF_MIN_MS / 2 && base <= CLIENT_BACKOFF_MAX_MS);
	return base;
}

void client_endpoint_connect_result(struct rs_client *c, unsigned i,
				    const char *why)
{
	assert(i < c->n_eps);
	if (why == NULL) {
		for (unsigned j = 0; j < c->n_eps; j++)
			c->eps[j].down = false;
		return;
	}
	c->eps[i].down = true;
	snprintf(c->eps[i].down_why, sizeof c->eps[i].down_why, "%s", why);
}

bool client_all_down(const struct rs_client *c, char *out, size_t size)
{
	size_t len = 0;

	if (!c->fail_fast)
		return false;
	for (unsigned i = 0; i < c->n_eps; i++)
		if (!c->eps[i].down)
			return false;
	out[0] = '\0';
	for (unsigned i = 0; i < c->n_eps && len < size; i++) {
		int w = snprintf(out + len, size - len, "%s%s: %s",
				 i ? "; " : "", c->eps[i].name,
				 c->eps[i].down_why);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return true;
}

void client_op_retry(struct rs_op *op, int status)
{
	struct rs_client *c = op->client;
	uint64_t now, delay;
	char down[sizeof op->result.message];

	assert(status != RS_OK);
	assert(op->state == CLIENT_OP_QUEUED || op->state == CLIENT_OP_SENT);
	client_op_detach(op);
	if (client_op_unhook_write(op, false) != RS_OK) {
		client_op_msgf(op, "retry: out of memory");
		client_op_finish(op, RS_ENOMEM);
		return;
	}
	op->result.status = status;
	if (c->closing) {
		client_op_msgf(op, "client closed");
		client_op_finish(op, RS_ESHUTDOWN);
		return;
	}
	if (status == RS_EUNAVAILABLE && c->fail_fast && op->target >= 0 &&
	    c->eps[op->target].down) {
		client_op_msgf(op, "%s: %s", c->eps[op->target].name,
			       c->eps[op->target].down_why);
		client_op_finish(op, RS_EUNAVAILABLE);
		return;
	}
	if (status == RS_EUNAVAILABLE && client_all_down(c, down, sizeof down)) {
		client_op_msgf(op, "no endpoint accepts connections: %s", down);
		client_op_finish(op, RS_EUNAVAILABLE);
		return;
	}
	op->written = false;
	client_op_set_state(op, CLIENT_OP_BACKOFF);
	client_list_push(&c->backoff, op);
	now = uv_now(c->loop);
	if (now >= op->deadline_ms) {
		client_op_expire(op);
		return;
	}
	delay = client_backoff_ms(c, op->attempt++);
	if (delay > op->deadline_ms - now)
		delay = op->deadline_ms - now;
	uv_timer_start(op->backoff, client_op_timer, delay, 0);
}

void client_op_conn_lost(struct rs_op *op, struct client_conn *conn)
{
	assert(op->conn == NULL && op->write == NULL);
	assert(sm_state(&conn->sm) == CLIENT_CONN_CLOSING && conn->fail_status != RS_OK);
	op->result.endpoint = conn->client->eps[conn->endpoint].name;
	if (client_op_changes_state(op) && op->written) {
		client_op_msgf(op, "%s sent, then %s; its outcome is unknown",
			       op->type == WIRE_COMMIT ? "commit" : "member change",
			       conn->fail_msg);
		client_op_finish(op, RS_EUNKNOWN);
	} else if (op->state == CLIENT_OP_WATCHING) {
		client_op_msgf(op, "watch ended: %s", conn->fail_msg);
		client_op_finish(op, RS_EUNAVAILABLE);
	} else {
		client_op_msgf(op, "%s", conn->fail_msg);
		client_op_retry(op, conn->fail_status == RS_EPROTO ?
				RS_EPROTO : RS_EUNAVAILABLE);
	}
}

static void client_op_timer(uv_timer_t *timer)
{
	struct client_timer *t = (struct client_timer *)timer;
	struct rs_op *op = t->op;
	uint64_t now = uv_now(t->client->loop);

	assert(op != NULL && op->backoff == timer);
	assert(op->state != CLIENT_OP_DONE && op->state != CLIENT_OP_WATCHING);
	if (now >= op->deadline_ms) {
		client_op_expire(op);
		return;
	}
	if (op->state == CLIENT_OP_BACKOFF &&
	    client_op_dispatch(op) != RS_OK) {
		client_op_msgf(op, "connect: out of memory");
		client_op_finish(op, RS_ENOMEM);
		return;
	}
	uv_timer_start(timer, client_op_timer, op->deadline_ms - now, 0);
}

static void client_op_attach(struct client_conn *conn, struct rs_op *op)
{
	struct rs_client *c = conn->client;

	assert(op->conn == NULL);
	assert(!conn->retired);
	if (op->state == CLIENT_OP_BACKOFF)
		client_list_remove(&c->backoff, op);
	client_op_set_state(op, CLIENT_OP_QUEUED);
	client_conn_add_op(conn, op);
	op->conn = conn;
	if (client_conn_may_send(conn))
		client_flush_soon(c);
}

static struct client_conn *client_pool_pick(struct rs_client *c)
{
	unsigned slot = c->rr++ % c->n_pool;
	struct client_conn *conn = c->pool[slot];

	assert(c->cur < c->n_eps);
	if (conn != NULL) {
		assert(conn->pooled && conn->endpoint == c->cur);
		return conn;
	}
	conn = client_conn_new(c, c->cur);
	if (conn == NULL)
		return NULL;
	conn->pooled = true;
	conn->slot = slot;
	c->pool[slot] = conn;
	client_conn_connect(conn);
	return conn;
}

int client_op_dispatch(struct rs_op *op)
{
	struct rs_client *c = op->client;
	struct client_conn *conn;

	assert(!c->closing && op->conn == NULL);
	assert(op->request.len >= WIRE_HEADER_SIZE);
	if (op->target >= 0) {
		conn = client_conn_new(c, (unsigned)op->target);
		if (conn == NULL)
			return RS_ENOMEM;
		conn->targeted = true;
		client_conn_connect(conn);
		client_op_attach(conn, op);
		conn->retired = true; /* it serves this op only */
		return RS_OK;
	}
	conn = client_pool_pick(c);
	if (conn == NULL)
		return RS_ENOMEM;
	client_op_attach(conn, op);
	return RS_OK;
}

int client_op_prepare(struct rs_client *c, struct rs_op *op,
		      uint8_t type, rs_op_cb cb)
{
	assert(c != NULL && op != NULL);
	assert((type >= WIRE_GET && type <= WIRE_MEMBERS) ||
	       type == WIRE_REGISTER || type == WIRE_MEMBER_CHANGE ||
	       type == WIRE_TERM);
	if (cb == NULL)
		return RS_EINVAL;
	if (c->closing)
		return RS_ESHUTDOWN;
	op->cb = cb;
	op->client = c;
	op->type = type;
	op->state = CLIENT_OP_IDLE;
	op->target = -1;
	op->request_id = c->next_id++;
	op->attempt = 0;
	op->written = false;
	op->next = op->prev = NULL;
	op->backoff = NULL;
	op->conn = NULL;
	op->write = NULL;
	rs_buf_init(&op->request);
	rs_result_init(&op->result);
	return RS_OK;
}

int client_op_launch(struct rs_op *op, int encoded)
{
	struct rs_client *c = op->client;
	int rv = encoded;

	assert(op->state == CLIENT_OP_IDLE);
	if (rv != RS_OK)
		goto err;
	assert(op->request.len >= WIRE_HEADER_SIZE);
	op->backoff = client_timer_get(c, op);
	if (op->backoff == NULL) {
		rv = RS_ENOMEM;
		goto err;
	}
	/* The loop's time is as old as its last turn; work the caller did
	 * since (encoding a large batch, say) must not eat into the op's
	 * time. */
	uv_update_time(c->loop);
	op->deadline_ms = uv_now(c->loop) + c->op_timeout_ms;
	rv = client_op_dispatch(op);
	if (rv != RS_OK)
		goto err_timer;
	uv_timer_start(op->backoff, client_op_timer, c->op_timeout_ms, 0);
	return RS_OK;
err_timer:
	client_timer_put(c, op->backoff);
	op->backoff = NULL;
err:
	rs_buf_free(&op->request);
	return rv;
}
