/*
 * client: see client.h.
 *
 * Ownership.  The client owns its connections (struct client_conn), a pool
 * of per-op timers and the list of ops waiting out a backoff.  Every live op
 * is in exactly one place: on one connection's list (queued, sent or
 * watching) or on the backoff list.  Finishing an op takes it off, returns
 * its timer and then, as the very last step, runs its callback, which may
 * free or reuse the op, submit more, or close the client.
 *
 * Connections.  `connections` pooled connections go to the current endpoint
 * (c->cur) and take ops round-robin.  Watches and STATUS/MEMBERS of a named
 * endpoint get a connection of their own that closes once its op is gone;
 * closing it is also how a watch is cancelled, as the protocol has no cancel
 * frame.  A failed connection is closed, and its ops are dealt with in the
 * close callback: by then libuv has run every write callback on it, so
 * `written` is final and the COMMIT rule (sent means unknown) is exact.
 *
 * Frames.  An op's frame is encoded once and kept for retries, which reuse
 * the request id (ids are unique per client, and an op is on one connection
 * at a time).  libuv reads from the frame until the write callback, so an
 * op that moves on with a write pending hands that memory to the write
 * request (struct client_write) instead of freeing it.
 *
 * Leader preference.  The first pooled connection up on a new endpoint
 * sends STATUS; pooled connections hold their ops until the answer, then
 * either all move to the leader it names or all start sending.  A redirect
 * is trusted without asking the leader again, so two nodes naming each
 * other cannot bounce the client forever.
 */
#include "raftstore/client.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_TIMEOUT_DEFAULT_MS 10000u
#define CLIENT_BACKOFF_MIN_MS 10u
#define CLIENT_BACKOFF_MAX_MS 500u
#define CLIENT_CONNS_MAX 256u
/* Room offered to each read; a larger frame grows the buffer as it comes. */
#define CLIENT_READ_CHUNK (64u * 1024u)
/* A read buffer a large frame grew past this is freed once it is empty. */
#define CLIENT_RBUF_KEEP (1024u * 1024u)
/* "255.255.255.255:65535" and "localhost:65535" fit with room to spare. */
#define CLIENT_NAME_MAX 32u
#define CLIENT_LEADER_FIELD "leader_client_addr"

struct client_endpoint {
	char name[CLIENT_NAME_MAX]; /* as given, or as a node named it */
	struct sockaddr_in addr;
};

struct client_oplist {
	struct rs_op *head;
	struct rs_op *tail;
	unsigned n;
};

/* ---- state machines ---- */

enum client_conn_state {
	CLIENT_CONN_CONNECTING, /* uv_tcp_connect in progress */
	CLIENT_CONN_CHECKING,   /* connected; the leader STATUS is in flight */
	CLIENT_CONN_READY,      /* connected; sends (pooled: once checked) */
	CLIENT_CONN_CLOSING,    /* uv_close in progress; ops wait for its cb */
	CLIENT_CONN__COUNT
};

static const bool client_conn_transitions[CLIENT_CONN__COUNT]
					 [CLIENT_CONN__COUNT] = {
	[CLIENT_CONN_CONNECTING] = {[CLIENT_CONN_CHECKING] = true,
				    [CLIENT_CONN_READY] = true,
				    [CLIENT_CONN_CLOSING] = true},
	[CLIENT_CONN_CHECKING] = {[CLIENT_CONN_READY] = true,
				  [CLIENT_CONN_CLOSING] = true},
	/* READY -> CHECKING: asking again after the asker failed. */
	[CLIENT_CONN_READY] = {[CLIENT_CONN_CHECKING] = true,
			       [CLIENT_CONN_CLOSING] = true},
};

enum client_op_state {
	CLIENT_OP_IDLE,     /* being submitted */
	CLIENT_OP_QUEUED,   /* on a connection, not written yet */
	CLIENT_OP_SENT,     /* uv_write issued; waiting for the answer */
	CLIENT_OP_WATCHING, /* a started watch receiving events */
	CLIENT_OP_BACKOFF,  /* on the backoff list, its timer running */
	CLIENT_OP_DONE,     /* final cb run (or cancelled) */
	CLIENT_OP__COUNT
};

static const bool client_op_transitions[CLIENT_OP__COUNT][CLIENT_OP__COUNT] = {
	[CLIENT_OP_IDLE] = {[CLIENT_OP_QUEUED] = true},
	/* QUEUED -> QUEUED: moved to the leader before it was written. */
	[CLIENT_OP_QUEUED] = {[CLIENT_OP_QUEUED] = true,
			      [CLIENT_OP_SENT] = true,
			      [CLIENT_OP_BACKOFF] = true,
			      [CLIENT_OP_DONE] = true},
	[CLIENT_OP_SENT] = {[CLIENT_OP_WATCHING] = true,
			    [CLIENT_OP_BACKOFF] = true,
			    [CLIENT_OP_DONE] = true},
	[CLIENT_OP_WATCHING] = {[CLIENT_OP_DONE] = true},
	[CLIENT_OP_BACKOFF] = {[CLIENT_OP_QUEUED] = true,
			       [CLIENT_OP_DONE] = true},
};

struct client_conn {
	struct rs_client *client;
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	enum client_conn_state state;
	unsigned endpoint;
	unsigned slot;      /* index in c->pool while pooled */
	bool pooled;        /* in c->pool, to c->cur */
	bool retired;       /* takes no new ops; closes once idle */
	bool targeted;      /* serves STATUS/MEMBERS of a named endpoint */
	uint64_t status_id; /* the leader check in flight, or 0 */
	struct client_oplist ops;
	struct rs_buf rbuf; /* received, not yet parsed */
	int fail_status;
	char fail_msg[RS_ERRMSG_SIZE + CLIENT_NAME_MAX + 8];
	struct client_conn *prev;
	struct client_conn *next;
};

struct client_write {
	uv_write_t req;
	struct client_conn *conn;
	struct rs_op *op;    /* NULL once the op has moved on */
	struct rs_buf frame; /* bytes libuv writes that no op owns, if any */
};

struct client_timer {
	uv_timer_t timer; /* first: an op's uv_timer_t * is this struct */
	struct rs_client *client;
	struct rs_op *op; /* NULL while in the free pool */
	struct client_timer *next_free;
};

struct rs_client {
	uv_loop_t *loop;
	struct client_endpoint eps[RS_CLIENT_ENDPOINTS_MAX];
	unsigned n_eps;
	unsigned cur; /* the endpoint pooled connections go to */
	unsigned op_timeout_ms;
	unsigned n_pool;
	bool no_leader_pref;
	bool leader_checked;  /* cur needs no (more) STATUS check */
	bool leader_checking; /* a pooled connection's STATUS is in flight */
	bool switching;       /* inside client_switch: no nested rotation */
	bool closing;
	struct client_conn **pool; /* n_pool slots, NULL when empty */
	unsigned rr;
	struct client_conn *conns; /* every connection not yet freed */
	struct client_oplist backoff;
	struct client_timer *timers_free;
	uint64_t next_id;
	uint64_t rand_state;
	unsigned n_handles; /* open libuv handles; freed at 0 once closing */
	uv_timer_t anchor;  /* closed last, so close's cb runs on the loop */
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void client_conn_fail(struct client_conn *conn, int status,
			     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void client_conn_flush(struct client_conn *conn);
static void client_conn_check_leader(struct client_conn *conn);
static int client_op_dispatch(struct rs_op *op);
static void client_op_finish(struct rs_op *op, int status);
static void client_op_retry(struct rs_op *op, int status);
static void client_op_timer(uv_timer_t *timer);
static void client_rotate(struct rs_client *c, unsigned from);

static void client_conn_set_state(struct client_conn *conn,
				  enum client_conn_state to)
{
	assert(to < CLIENT_CONN__COUNT);
	assert(client_conn_transitions[conn->state][to]);
	(void)client_conn_transitions; /* for NDEBUG builds */
	conn->state = to;
}

static void client_op_set_state(struct rs_op *op, enum client_op_state to)
{
	assert(to < CLIENT_OP__COUNT);
	assert(client_op_transitions[op->state][to]);
	(void)client_op_transitions;
	op->state = (uint8_t)to;
}

/* ---- lists and messages ---- */

static void client_list_push(struct client_oplist *l, struct rs_op *op)
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

static void client_list_remove(struct client_oplist *l, struct rs_op *op)
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

/* Through a copy, so an argument may be the old message itself. */
__attribute__((format(printf, 2, 3))) static void
client_op_msgf(struct rs_op *op, const char *fmt, ...)
{
	char text[sizeof op->result.message];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	memcpy(op->result.message, text, sizeof text);
}

/* A server's message as a C string; its code's name if it sent none. */
static void client_msg_text(struct wire_bytes msg, int status, char *out,
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

/* "a, b, c": messages about giving up must say where the client looked. */
static const char *client_endpoint_list(const struct rs_client *c, char *out,
					size_t size)
{
	size_t at = 0;

	assert(size > 0);
	out[0] = '\0';
	for (unsigned i = 0; i < c->n_eps && at < size; i++) {
		int n = snprintf(out + at, size - at, "%s%s", i ? ", " : "",
				 c->eps[i].name);
		if (n < 0)
			break;
		at += (size_t)n;
	}
	assert(strlen(out) < size);
	return out;
}

/* ---- endpoints ---- */

static int client_endpoint_parse(const char *s, size_t len,
				 struct client_endpoint *ep, char *errmsg)
{
	char text[CLIENT_NAME_MAX];
	char *colon, *end;
	const char *host;
	unsigned long port;

	assert(s != NULL && ep != NULL);
	if (len == 0 || len >= sizeof text)
		goto err_form;
	memcpy(text, s, len);
	text[len] = '\0';
	colon = strrchr(text, ':');
	if (colon == NULL || colon == text)
		goto err_form;
	*colon = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port == 0 ||
	    port > 65535) {
		rs_errmsg_printf(errmsg, "endpoint \"%.*s\": bad port \"%s\"",
				 (int)len, s, colon + 1);
		return RS_EINVAL;
	}
	/* No resolver on purpose: a lookup would block the loop, and
	 * "localhost" is the only name worth knowing. */
	host = strcmp(text, "localhost") == 0 ? "127.0.0.1" : text;
	if (uv_ip4_addr(host, (int)port, &ep->addr) != 0) {
		rs_errmsg_printf(errmsg, "endpoint \"%.*s\": host \"%s\" is not an IPv4 address or localhost",
				 (int)len, s, text);
		return RS_EINVAL;
	}
	memcpy(ep->name, s, len);
	ep->name[len] = '\0';
	assert(ep->addr.sin_family == AF_INET);
	return RS_OK;
err_form:
	rs_errmsg_printf(errmsg, "endpoint \"%.*s\": not HOST:PORT", (int)len, s);
	return RS_EINVAL;
}

static int client_endpoints_parse(struct rs_client *c, const char *list,
				  char *errmsg)
{
	const char *p = list;

	assert(c->n_eps == 0);
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		const char *s = p;
		size_t len = n;
		int rv;

		while (len > 0 && *s == ' ')
			s++, len--;
		while (len > 0 && s[len - 1] == ' ')
			len--;
		if (c->n_eps == RS_CLIENT_ENDPOINTS_MAX) {
			rs_errmsg_printf(errmsg, "endpoint \"%.*s\": more than %u endpoints",
					 (int)len, s, RS_CLIENT_ENDPOINTS_MAX);
			return RS_EINVAL;
		}
		rv = client_endpoint_parse(s, len, &c->eps[c->n_eps], errmsg);
		if (rv != RS_OK)
			return rv;
		c->n_eps++;
		p += n;
		if (*p == ',' && *++p == '\0') {
			rs_errmsg_printf(errmsg, "endpoints \"%s\": empty entry at the end",
					 list);
			return RS_EINVAL;
		}
	}
	if (c->n_eps == 0) {
		rs_errmsg_printf(errmsg, "no endpoints given");
		return RS_EINVAL;
	}
	assert(c->n_eps <= RS_CLIENT_ENDPOINTS_MAX);
	return RS_OK;
}

/* Index of the leader a node named, added to the list if new; -1 if it
 * names none, or one this client cannot use. */
static int client_leader_index(struct rs_client *c, const char *addr)
{
	struct client_endpoint ep;

	assert(c->n_eps > 0 && c->n_eps <= RS_CLIENT_ENDPOINTS_MAX);
	if (addr[0] == '\0' ||
	    client_endpoint_parse(addr, strlen(addr), &ep, NULL) != RS_OK)
		return -1;
	for (unsigned i = 0; i < c->n_eps; i++)
		if (c->eps[i].addr.sin_addr.s_addr == ep.addr.sin_addr.s_addr &&
		    c->eps[i].addr.sin_port == ep.addr.sin_port)
			return (int)i;
	if (c->n_eps == RS_CLIENT_ENDPOINTS_MAX)
		return -1;
	c->eps[c->n_eps] = ep;
	assert(ep.addr.sin_family == AF_INET);
	return (int)c->n_eps++;
}

/* The STATUS object comes from our own server, and one string field is all
 * the client wants: a JSON parser would buy nothing.  Host:port strings
 * carry no escapes.  False if the field is absent or not a short string. */
static bool client_json_str(const uint8_t *json, size_t len, const char *key,
			    char *out, size_t size)
{
	size_t klen = strlen(key);
	const uint8_t *end, *p = NULL, *q;

	assert(key[0] != '\0' && size > 0);
	assert(json != NULL || len == 0);
	if (json == NULL)
		return false;
	end = json + len;
	for (const uint8_t *s = json; (size_t)(end - s) >= klen + 2; s++)
		if (s[0] == '"' && memcmp(s + 1, key, klen) == 0 &&
		    s[klen + 1] == '"') {
			p = s + klen + 2;
			break;
		}
	while (p != NULL && p < end && (*p == ' ' || *p == '\t' || *p == '\n'))
		p++;
	if (p == NULL || p == end || *p++ != ':')
		return false;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n'))
		p++;
	if (p == end || *p++ != '"')
		return false;
	q = memchr(p, '"', (size_t)(end - p));
	if (q == NULL || (size_t)(q - p) >= size)
		return false;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return true;
}

/* ---- handles and timers ---- */

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

static void client_handle_gone(struct rs_client *c)
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

/* ---- connections: lifecycle ---- */

static void client_conn_closed(uv_handle_t *h);
static void client_op_conn_lost(struct rs_op *op, struct client_conn *conn);

static struct client_conn *client_conn_new(struct rs_client *c,
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
	conn->state = CLIENT_CONN_CONNECTING;
	conn->tcp.data = conn;
	rs_buf_init(&conn->rbuf);
	conn->next = c->conns;
	if (c->conns != NULL)
		c->conns->prev = conn;
	c->conns = conn;
	return conn;
}

static void client_conn_close(struct client_conn *conn)
{
	struct rs_client *c = conn->client;

	assert(conn->state != CLIENT_CONN_CLOSING);
	if (conn->pooled) {
		assert(c->pool[conn->slot] == conn);
		c->pool[conn->slot] = NULL;
		conn->pooled = false;
	}
	client_conn_set_state(conn, CLIENT_CONN_CLOSING);
	uv_close((uv_handle_t *)&conn->tcp, client_conn_closed);
}

static void client_conn_maybe_close(struct client_conn *conn)
{
	assert(conn->state < CLIENT_CONN__COUNT);
	assert(!conn->retired || !conn->pooled);
	if (conn->retired && conn->state != CLIENT_CONN_CLOSING &&
	    conn->ops.n == 0 && conn->status_id == 0)
		client_conn_close(conn);
}

/* The connection that asked STATUS failed without moving the client: ask
 * on another one, or pooled ops would wait for an answer never coming.
 * With none connected yet, the next to connect asks. */
static void client_pool_recheck(struct rs_client *c)
{
	assert(c->n_pool > 0);
	if (c->closing || c->leader_checked || c->leader_checking)
		return;
	for (unsigned i = 0; i < c->n_pool; i++) {
		struct client_conn *conn = c->pool[i];
		if (conn != NULL && conn->state == CLIENT_CONN_READY) {
			client_conn_check_leader(conn);
			return;
		}
	}
	assert(!c->leader_checking);
}

/* Close a connection that went wrong; its ops are dealt with in the close
 * callback.  A failure with work on it moves the client to the next
 * endpoint; an idle connection the server dropped does not. */
static void client_conn_fail(struct client_conn *conn, int status,
			     const char *fmt, ...)
{
	struct rs_client *c = conn->client;
	char why[RS_ERRMSG_SIZE];
	bool busy, checking;
	va_list ap;

	assert(status != RS_OK);
	if (conn->state == CLIENT_CONN_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(conn->fail_msg, sizeof conn->fail_msg, "%s: %s",
		 c->eps[conn->endpoint].name, why);
	conn->fail_status = status;
	busy = conn->state == CLIENT_CONN_CONNECTING || conn->ops.n > 0 ||
	       conn->status_id != 0;
	checking = conn->status_id != 0 && conn->pooled &&
		   conn->endpoint == c->cur;
	if (checking)
		c->leader_checking = false;
	client_conn_close(conn);
	if (busy && !conn->targeted)
		client_rotate(c, conn->endpoint);
	if (checking)
		client_pool_recheck(c);
	assert(conn->state == CLIENT_CONN_CLOSING);
}

static void client_conn_closed(uv_handle_t *h)
{
	struct client_conn *conn = h->data;
	struct rs_client *c = conn->client;
	struct rs_op *op;

	assert(conn->state == CLIENT_CONN_CLOSING);
	assert(!conn->pooled);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		c->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	while ((op = conn->ops.head) != NULL) {
		client_list_remove(&conn->ops, op);
		op->conn = NULL;
		client_op_conn_lost(op, conn);
	}
	rs_buf_free(&conn->rbuf);
	free(conn);
	client_handle_gone(c);
}

/* ---- connections: writing ---- */

static void client_write_done(uv_write_t *req, int status)
{
	struct client_write *w = (struct client_write *)req;
	struct client_conn *conn = w->conn;

	assert(req->handle == (uv_stream_t *)&conn->tcp);
	if (w->op != NULL) {
		assert(w->op->write == w);
		w->op->write = NULL;
		if (status == 0)
			w->op->written = true;
	}
	rs_buf_free(&w->frame);
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		client_conn_fail(conn, RS_EUNAVAILABLE, "write: %s",
				 uv_strerror(status));
}

/* Start writing `frame`; on failure w is freed and conn fails. */
static int client_write_start(struct client_conn *conn, struct client_write *w,
			      const struct rs_buf *frame)
{
	uv_buf_t buf = uv_buf_init((char *)frame->data, (unsigned)frame->len);
	int rv;

	assert(conn->state == CLIENT_CONN_READY ||
	       conn->state == CLIENT_CONN_CHECKING);
	assert(frame->len >= WIRE_HEADER_SIZE);
	w->conn = conn;
	rv = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1,
		      client_write_done);
	if (rv != 0) {
		rs_buf_free(&w->frame);
		free(w);
		client_conn_fail(conn, RS_EUNAVAILABLE, "write: %s",
				 uv_strerror(rv));
	}
	return rv;
}

static void client_conn_send(struct client_conn *conn, struct rs_op *op)
{
	struct client_write *w;

	assert(op->state == CLIENT_OP_QUEUED && op->conn == conn);
	assert(op->write == NULL && op->request.len >= WIRE_HEADER_SIZE);
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		client_conn_fail(conn, RS_ENOMEM, "write: out of memory");
		return;
	}
	rs_buf_init(&w->frame);
	w->op = op;
	op->written = false;
	if (client_write_start(conn, w, &op->request) != 0)
		return;
	op->write = w;
	client_op_set_state(op, CLIENT_OP_SENT);
}

static bool client_conn_may_send(const struct client_conn *conn)
{
	assert(conn->state < CLIENT_CONN__COUNT);
	return conn->state == CLIENT_CONN_READY &&
	       (!conn->pooled || conn->client->leader_checked);
}

static void client_conn_flush(struct client_conn *conn)
{
	struct rs_op *op, *next;

	assert(conn->client != NULL);
	for (op = conn->ops.head; op != NULL && client_conn_may_send(conn);
	     op = next) {
		next = op->next;
		if (op->state == CLIENT_OP_QUEUED)
			client_conn_send(conn, op);
	}
	assert(conn->state != CLIENT_CONN_READY || !client_conn_may_send(conn) ||
	       conn->ops.head == NULL || conn->ops.tail->state != CLIENT_OP_QUEUED);
}

static void client_pool_flush(struct rs_client *c)
{
	assert(c->leader_checked);
	assert(!c->closing);
	for (unsigned i = 0; i < c->n_pool; i++)
		if (c->pool[i] != NULL)
			client_conn_flush(c->pool[i]);
}

static void client_conn_check_leader(struct client_conn *conn)
{
	struct rs_client *c = conn->client;
	struct client_write *w;

	assert(conn->pooled && conn->status_id == 0);
	assert(!c->leader_checked && !c->leader_checking);
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		client_conn_fail(conn, RS_ENOMEM, "leader check: out of memory");
		return;
	}
	rs_buf_init(&w->frame);
	if (wire_encode_simple(&w->frame, c->next_id, WIRE_STATUS) != RS_OK) {
		free(w);
		client_conn_fail(conn, RS_ENOMEM, "leader check: out of memory");
		return;
	}
	conn->status_id = c->next_id++;
	c->leader_checking = true;
	client_conn_set_state(conn, CLIENT_CONN_CHECKING);
	client_write_start(conn, w, &w->frame);
}

/* ---- connections: connecting ---- */

static void client_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client_conn *conn = h->data;

	(void)suggested;
	assert(conn->state != CLIENT_CONN_CLOSING);
	if (rs_buf_reserve(&conn->rbuf, CLIENT_READ_CHUNK) != RS_OK) {
		*buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
		return;
	}
	*buf = uv_buf_init((char *)conn->rbuf.data + conn->rbuf.len,
			   (unsigned)(conn->rbuf.cap - conn->rbuf.len));
	assert(buf->len >= CLIENT_READ_CHUNK);
}

static void client_conn_read(uv_stream_t *s, ssize_t nread,
			     const uv_buf_t *buf);

static void client_conn_start(struct client_conn *conn)
{
	struct rs_client *c = conn->client;
	int rv;

	assert(conn->state == CLIENT_CONN_CONNECTING);
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
		client_conn_check_leader(conn);
		return;
	}
	client_conn_set_state(conn, CLIENT_CONN_READY);
	client_conn_flush(conn);
}

static void client_conn_connected(uv_connect_t *req, int status)
{
	struct client_conn *conn = req->handle->data;

	assert(req == &conn->connect_req);
	if (conn->state == CLIENT_CONN_CLOSING)
		return; /* closed meanwhile (UV_ECANCELED) */
	assert(conn->state == CLIENT_CONN_CONNECTING);
	if (status < 0) {
		client_conn_fail(conn, RS_EUNAVAILABLE, "connect: %s",
				 uv_strerror(status));
		return;
	}
	client_conn_start(conn);
}

static void client_conn_connect(struct client_conn *conn)
{
	const struct client_endpoint *ep = &conn->client->eps[conn->endpoint];
	int rv;

	assert(conn->state == CLIENT_CONN_CONNECTING);
	assert(ep->addr.sin_family == AF_INET);
	rv = uv_tcp_connect(&conn->connect_req, &conn->tcp,
			    (const struct sockaddr *)&ep->addr,
			    client_conn_connected);
	if (rv != 0)
		client_conn_fail(conn, RS_EUNAVAILABLE, "connect: %s",
				 uv_strerror(rv));
}

/* ---- endpoint choice ---- */

/* Take a pooled connection out of the pool: no new ops, closes once its
 * answers are in; its unwritten ops go to `moved`. */
static void client_pool_retire(struct rs_client *c, unsigned slot,
			       struct client_oplist *moved)
{
	struct client_conn *conn = c->pool[slot];
	struct rs_op *op, *next;

	if (conn == NULL)
		return;
	assert(conn->pooled && conn->slot == slot);
	c->pool[slot] = NULL;
	conn->pooled = false;
	conn->retired = true;
	for (op = conn->ops.head; op != NULL; op = next) {
		next = op->next;
		if (op->state != CLIENT_OP_QUEUED)
			continue;
		client_list_remove(&conn->ops, op);
		op->conn = NULL;
		client_list_push(moved, op);
	}
	client_conn_maybe_close(conn);
	assert(c->pool[slot] == NULL);
}

static void client_switch(struct rs_client *c, unsigned to, bool checked)
{
	struct client_oplist moved = {NULL, NULL, 0};
	struct rs_op *op;

	assert(to < c->n_eps && !c->closing);
	assert(!c->switching);
	c->switching = true;
	c->cur = to;
	c->leader_checked = checked || c->no_leader_pref;
	c->leader_checking = false;
	for (unsigned i = 0; i < c->n_pool; i++)
		client_pool_retire(c, i, &moved);
	while ((op = moved.head) != NULL) {
		client_list_remove(&moved, op);
		if (c->closing) { /* an op callback closed the client */
			client_op_msgf(op, "client closed");
			client_op_finish(op, RS_ESHUTDOWN);
		} else if (client_op_dispatch(op) != RS_OK) {
			client_op_msgf(op, "connect: out of memory");
			client_op_finish(op, RS_ENOMEM);
		}
	}
	c->switching = false;
}

/* Move on from an endpoint that failed.  Only the first failure counts:
 * the other connections to it fail too and must not move the client on
 * again (nor, inside a switch, recurse). */
static void client_rotate(struct rs_client *c, unsigned from)
{
	assert(from < c->n_eps);
	assert(c->cur < c->n_eps);
	if (c->closing || c->switching || from != c->cur || c->n_eps < 2)
		return;
	client_switch(c, (c->cur + 1) % c->n_eps, false);
}

/* Leader address from a STATUS answer ("" if none); RS_EPROTO if the
 * answer is malformed.  A node that cannot say (error status) names none. */
static int client_status_leader(const struct wire_frame *f, char *addr,
				size_t size)
{
	struct wire_reader r;
	struct wire_bytes msg, json;
	int status;

	assert(size > 0);
	addr[0] = '\0';
	if (f->type != (WIRE_STATUS | WIRE_RESPONSE) ||
	    wire_decode_response_head(f, &r, &status, &msg) != RS_OK)
		return RS_EPROTO;
	if (status != RS_OK)
		return RS_OK;
	json = wire_get_bytes(&r, UINT32_MAX);
	if (!wire_reader_done(&r))
		return RS_EPROTO;
	if (!client_json_str(json.p, json.len, CLIENT_LEADER_FIELD, addr, size))
		addr[0] = '\0';
	assert(strlen(addr) < size);
	return RS_OK;
}

static void client_conn_leader_reply(struct client_conn *conn,
				     const struct wire_frame *f)
{
	struct rs_client *c = conn->client;
	bool current = conn->pooled && conn->endpoint == c->cur;
	char addr[CLIENT_NAME_MAX];
	int leader = -1;

	assert(conn->state == CLIENT_CONN_CHECKING);
	assert(f->request_id == conn->status_id);
	if (client_status_leader(f, addr, sizeof addr) != RS_OK) {
		client_conn_fail(conn, RS_EPROTO,
				 "protocol error: malformed STATUS response");
		return;
	}
	conn->status_id = 0;
	client_conn_set_state(conn, CLIENT_CONN_READY);
	if (current) {
		c->leader_checking = false;
		leader = client_leader_index(c, addr);
	}
	if (current && leader >= 0 && (unsigned)leader != c->cur) {
		client_switch(c, (unsigned)leader, true);
	} else if (current) {
		c->leader_checked = true;
		client_pool_flush(c);
	}
	client_conn_maybe_close(conn);
}

/* ---- responses ---- */

static int client_set_value(struct rs_result *res, struct wire_bytes b)
{
	assert(b.p != NULL || b.len == 0);
	res->value.len = 0;
	if (rs_buf_reserve(&res->value, (size_t)b.len + 1) != RS_OK)
		return RS_ENOMEM;
	rs_buf_append(&res->value, b.p, b.len);
	res->value.data[res->value.len] = '\0';
	assert(res->value.len == b.len);
	return RS_OK;
}

static int client_decode_get(struct rs_result *res, struct wire_reader *r)
{
	uint8_t mode = wire_get_u8(r);
	uint64_t read_version = wire_get_u64(r);
	uint8_t found = wire_get_u8(r);
	uint64_t found_version = wire_get_u64(r);
	struct wire_bytes val = wire_get_bytes(r, RS_VALUE_SIZE_MAX);

	assert(res != NULL);
	if (!wire_reader_done(r) || found > 1 || mode > WIRE_READ_AT_VERSION)
		return RS_EPROTO;
	res->read_mode = mode;
	res->version = read_version;
	res->found = found != 0;
	res->found_version = found_version;
	assert(r->pos == r->len);
	return client_set_value(res, val);
}

/* First pass: check every row and size the block that holds them all. */
static int client_range_scan(struct wire_reader scan, uint32_t n,
			     size_t *bytes)
{
	*bytes = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wire_bytes k = wire_get_bytes(&scan, RS_KEY_SIZE_MAX);
		struct wire_bytes v = wire_get_bytes(&scan, RS_VALUE_SIZE_MAX);
		wire_get_u64(&scan);
		*bytes += (size_t)k.len + v.len;
	}
	assert(scan.pos <= scan.len);
	assert(*bytes <= scan.len);
	return wire_reader_done(&scan) ? RS_OK : RS_EPROTO;
}

static int client_decode_range(struct rs_result *res, struct wire_reader *r)
{
	uint8_t mode = wire_get_u8(r);
	uint64_t read_version = wire_get_u64(r);
	uint8_t more = wire_get_u8(r);
	uint32_t n = wire_get_u32(r);
	size_t bytes;
	uint8_t *at;

	/* A row takes at least 16 bytes, so a count the body cannot hold is
	 * refused before it sizes an allocation. */
	if (r->failed || more > 1 || mode > WIRE_READ_AT_VERSION ||
	    n > (r->len - r->pos) / 16 || client_range_scan(*r, n, &bytes) != RS_OK)
		return RS_EPROTO;
	free(res->kvs);
	res->kvs = NULL;
	res->n_kvs = 0;
	if (n > 0) {
		res->kvs = malloc(n * sizeof *res->kvs + bytes);
		if (res->kvs == NULL)
			return RS_ENOMEM;
	}
	at = (uint8_t *)(res->kvs + n);
	for (uint32_t i = 0; i < n; i++) {
		struct rs_kv *kv = &res->kvs[i];
		struct wire_bytes k = wire_get_bytes(r, RS_KEY_SIZE_MAX);
		struct wire_bytes v = wire_get_bytes(r, RS_VALUE_SIZE_MAX);
		kv->version = wire_get_u64(r);
		kv->key = at;
		kv->key_len = k.len;
		memcpy(at, k.p, k.len);
		at += k.len;
		kv->val = at;
		kv->val_len = v.len;
		if (v.len > 0)
			memcpy(at, v.p, v.len);
		at += v.len;
	}
	assert(wire_reader_done(r));
	assert(at == (uint8_t *)(res->kvs + n) + bytes || n == 0);
	res->n_kvs = n;
	res->more = more != 0;
	res->read_mode = mode;
	res->version = read_version;
	return RS_OK;
}

/* RS_OK, RS_EPROTO (malformed: the connection is unusable) or RS_ENOMEM. */
static int client_decode(struct rs_op *op, struct wire_reader *r)
{
	struct rs_result *res = &op->result;
	struct wire_bytes json;

	assert(op->request.len > WIRE_HEADER_SIZE || op->type >= WIRE_GRV);
	assert(!r->failed);
	switch (op->type) {
	case WIRE_GET:
		return client_decode_get(res, r);
	case WIRE_RANGE:
		return client_decode_range(res, r);
	case WIRE_GRV:
	case WIRE_COMMIT:
		res->version = wire_get_u64(r);
		return wire_reader_done(r) ? RS_OK : RS_EPROTO;
	case WIRE_STATUS:
	case WIRE_MEMBERS:
	case WIRE_REGISTER:
		json = wire_get_bytes(r, UINT32_MAX);
		if (!wire_reader_done(r))
			return RS_EPROTO;
		return client_set_value(res, json);
	default:
		assert(false);
		return RS_EPROTO;
	}
}

/* Whether to try a server's refusal again.  A conflict cannot succeed
 * until the transaction re-reads, and "unknown" means exactly that, so
 * neither is repeated.  A node shutting down sends reads elsewhere; a
 * COMMIT it refused is returned, as the protocol does not promise that it
 * was not applied. */
static bool client_refusal_retryable(const struct rs_op *op, int status)
{
	assert(status != RS_OK);
	assert((op->type >= WIRE_GET && op->type <= WIRE_MEMBERS) ||
	       op->type == WIRE_REGISTER);
	if (status == RS_ESHUTDOWN)
		return op->type != WIRE_COMMIT;
	/* Conflict and too-old are the application's to retry (with a fresh
	 * read version); resending the same request cannot succeed. */
	return status != RS_ECONFLICT && status != RS_ETOOOLD &&
	       rs_error_retryable(status);
}

static void client_op_refused(struct client_conn *conn, struct rs_op *op,
			      int status, struct wire_bytes msg)
{
	struct rs_client *c = conn->client;
	char text[sizeof op->result.message];

	assert(status != RS_OK);
	assert(op->conn == conn);
	client_msg_text(msg, status, text, sizeof text);
	if (!client_refusal_retryable(op, status)) {
		client_op_msgf(op, "%s", text);
		client_op_finish(op, status);
		return;
	}
	client_op_msgf(op, "%s: %s", c->eps[conn->endpoint].name, text);
	if (status == RS_EUNAVAILABLE || status == RS_ENOTLEADER ||
	    status == RS_ERECOVERING || status == RS_ESHUTDOWN)
		client_rotate(c, conn->endpoint);
	client_op_retry(op, status);
}

static void client_op_response(struct client_conn *conn, struct rs_op *op,
			       const struct wire_frame *f)
{
	struct wire_reader r;
	struct wire_bytes msg;
	int status, rv;

	assert(op->conn == conn);
	assert(op->state == CLIENT_OP_SENT);
	if (wire_decode_response_head(f, &r, &status, &msg) != RS_OK) {
		client_conn_fail(conn, RS_EPROTO, "protocol error: malformed %s response",
				 wire_type_name(op->type));
		return;
	}
	op->result.endpoint = conn->client->eps[conn->endpoint].name;
	if (status != RS_OK) {
		client_op_refused(conn, op, status, msg);
		return;
	}
	rv = client_decode(op, &r);
	if (rv == RS_EPROTO) {
		client_conn_fail(conn, RS_EPROTO, "protocol error: malformed %s response",
				 wire_type_name(op->type));
		return;
	}
	if (rv != RS_OK)
		client_op_msgf(op, "%s response: %s", wire_type_name(op->type),
			       rs_strerror(rv));
	client_op_finish(op, rv);
}

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

static void client_watch_frame(struct client_conn *conn, struct rs_op *op,
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
	assert(conn->state == CLIENT_CONN_CLOSING);
}

static void client_conn_frame(struct client_conn *conn,
			      const struct wire_frame *f)
{
	struct rs_op *op;

	assert(conn->state != CLIENT_CONN_CLOSING);
	assert(f->total_len >= WIRE_HEADER_SIZE);
	if (conn->status_id != 0 && f->request_id == conn->status_id) {
		client_conn_leader_reply(conn, f);
		return;
	}
	for (op = conn->ops.head; op != NULL; op = op->next)
		if (op->request_id == f->request_id)
			break;
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
	while (conn->state != CLIENT_CONN_CLOSING) {
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
	if (conn->state == CLIENT_CONN_CLOSING)
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
	assert(conn->state != CLIENT_CONN_CLOSING);
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

/* ---- ops ---- */

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
	client_list_remove(&conn->ops, op);
	op->conn = NULL;
	client_conn_maybe_close(conn);
}

/* Let the op move on while libuv may still be writing its frame: the
 * write keeps the memory it reads from.  A retrying op takes a copy. */
static int client_op_unhook_write(struct rs_op *op, bool finishing)
{
	struct client_write *w = op->write;
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

/* Everything but the callback: after this the op is not the client's. */
static void client_op_release(struct rs_op *op)
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

static void client_op_finish(struct rs_op *op, int status)
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
	if (op->type == WIRE_COMMIT && op->state == CLIENT_OP_SENT) {
		client_op_msgf(op, "commit sent to %s got no answer within %u ms; its outcome is unknown",
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

/* Try again after a backoff; the message says what went wrong. */
static void client_op_retry(struct rs_op *op, int status)
{
	struct rs_client *c = op->client;
	uint64_t now, delay;

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

static void client_op_conn_lost(struct rs_op *op, struct client_conn *conn)
{
	assert(op->conn == NULL && op->write == NULL);
	assert(conn->state == CLIENT_CONN_CLOSING && conn->fail_status != RS_OK);
	op->result.endpoint = conn->client->eps[conn->endpoint].name;
	if (op->type == WIRE_COMMIT && op->written) {
		client_op_msgf(op, "commit sent, then %s; its outcome is unknown",
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
	client_list_push(&conn->ops, op);
	op->conn = conn;
	if (client_conn_may_send(conn))
		client_conn_send(conn, op);
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

/* Put the op on a connection.  Fails only for memory; never finishes the
 * op (a connection that fails at once deals with it from its close cb). */
static int client_op_dispatch(struct rs_op *op)
{
	struct rs_client *c = op->client;
	struct client_conn *conn;

	assert(!c->closing && op->conn == NULL);
	assert(op->request.len >= WIRE_HEADER_SIZE);
	if (op->type == WIRE_WATCH || op->target >= 0) {
		conn = client_conn_new(c, op->target >= 0 ? (unsigned)op->target
							  : c->cur);
		if (conn == NULL)
			return RS_ENOMEM;
		conn->targeted = op->target >= 0;
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

static int client_op_prepare(struct rs_client *c, struct rs_op *op,
			     uint8_t type, rs_op_cb cb)
{
	assert(c != NULL && op != NULL);
	assert((type >= WIRE_GET && type <= WIRE_MEMBERS) ||
	       type == WIRE_REGISTER);
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

/* Second half of every submit: `encoded` is the encoder's result. */
static int client_op_launch(struct rs_op *op, int encoded)
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

/* ---- public: results and client ---- */

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
	c->op_timeout_ms = o->op_timeout_ms ? o->op_timeout_ms
					    : CLIENT_TIMEOUT_DEFAULT_MS;
	c->no_leader_pref = o->no_leader_pref;
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
	bool unknown = op->type == WIRE_COMMIT &&
		       (op->state == CLIENT_OP_SENT || op->written);

	assert(op->client->closing);
	assert(op->state != CLIENT_OP_DONE);
	client_op_msgf(op, unknown ? "client closed after the commit was sent; its outcome is unknown"
				   : "client closed");
	client_op_finish(op, unknown ? RS_EUNKNOWN : RS_ESHUTDOWN);
}

void rs_client_close(struct rs_client *c, void (*cb)(void *arg), void *arg)
{
	struct client_conn *conn;
	struct client_timer *t;

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
		if (conn->state != CLIENT_CONN_CLOSING)
			client_conn_close(conn);
	while ((t = c->timers_free) != NULL) {
		c->timers_free = t->next_free;
		uv_close((uv_handle_t *)&t->timer, client_timer_closed);
	}
	uv_close((uv_handle_t *)&c->anchor, client_anchor_closed);
}

/* ---- public: operations ---- */

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

void rs_client_watch_cancel(struct rs_client *c, struct rs_op *op)
{
	assert(c != NULL && op != NULL);
	assert(op->client == c && op->type == WIRE_WATCH);
	(void)c;
	if (op->state == CLIENT_OP_DONE || op->state == CLIENT_OP_IDLE)
		return;
	client_op_release(op); /* closes its connection */
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

/* ---- blocking wrapper ---- */

struct rs_sync {
	uv_loop_t loop;
	struct rs_client *client;
};

/* One blocking call: the op and what its callback reports. */
struct sync_call {
	struct rs_op op;
	uv_loop_t *loop;
	bool done;
	int status;
	int (*fn)(void *ctx, const struct rs_result *ev);
	void *ctx;
};

/* Every completion stops the loop: an op finished by its timer runs
 * before the loop polls, and UV_RUN_ONCE would then block in the poll for
 * as long as an idle connection stays quiet. */
static void sync_op_done(struct rs_op *op)
{
	struct sync_call *call = op->data;

	assert(&call->op == op);
	assert(!call->done);
	call->done = true;
	uv_stop(call->loop);
}

static void sync_closed(void *arg)
{
	struct rs_sync *s = arg;

	assert(s->client != NULL);
	s->client = NULL;
	uv_stop(&s->loop);
}

static void sync_run(struct rs_sync *s, const bool *done)
{
	assert(s != NULL && done != NULL);
	while (!*done) {
		int alive = uv_run(&s->loop, UV_RUN_ONCE);
		/* An op in flight holds a timer, so the loop cannot run dry
		 * before the op is done. */
		assert(alive || *done);
		(void)alive;
	}
}

/* Before submitting: let the loop see what arrived while nobody ran it.
 * A server may have closed an idle connection meanwhile; finding out now
 * sends the op to a fresh one instead of writing it into a dead socket,
 * which for a COMMIT would make its outcome unknown. */
static void sync_begin(struct rs_sync *s, struct sync_call *call)
{
	assert(s != NULL && call != NULL);
	memset(call, 0, sizeof *call);
	call->op.data = call;
	call->loop = &s->loop;
	uv_run(&s->loop, UV_RUN_NOWAIT);
	assert(!call->done);
}

/* Run `call` (submitted with result rv) to completion into *res. */
static int sync_finish(struct rs_sync *s, struct sync_call *call, int rv,
		       struct rs_result *res)
{
	assert(s != NULL && res != NULL);
	if (rv != RS_OK) {
		rs_result_init(res);
		res->status = rv;
		snprintf(res->message, sizeof res->message, "%s",
			 rs_strerror(rv));
		return rv;
	}
	sync_run(s, &call->done);
	*res = call->op.result; /* the caller owns it now */
	assert(res->status == call->op.result.status);
	return res->status;
}

int rs_sync_open(struct rs_sync **out, const struct rs_client_options *o,
		 char *errmsg)
{
	struct rs_sync *s;
	int rv;

	assert(out != NULL && o != NULL);
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return RS_ENOMEM;
	rv = uv_loop_init(&s->loop);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "loop init: %s", uv_strerror(rv));
		rv = RS_EIO;
		goto err_free;
	}
	rv = rs_client_create(&s->client, &s->loop, o, errmsg);
	if (rv != RS_OK)
		goto err_loop;
	*out = s;
	return RS_OK;
err_loop:
	if (uv_loop_close(&s->loop) != 0)
		assert(false); /* nothing was opened on it */
err_free:
	free(s);
	return rv;
}

void rs_sync_close(struct rs_sync *s)
{
	int rv;

	assert(s != NULL && s->client != NULL);
	rs_client_close(s->client, sync_closed, s);
	/* Every handle is closing, so the loop runs dry once they are. */
	uv_run(&s->loop, UV_RUN_DEFAULT);
	assert(s->client == NULL);
	rv = uv_loop_close(&s->loop);
	assert(rv == 0); /* every handle is closed */
	(void)rv;
	free(s);
}

struct rs_client *rs_sync_client(struct rs_sync *s)
{
	assert(s != NULL);
	return s->client;
}

int rs_sync_get(struct rs_sync *s, const void *key, size_t key_len,
		enum wire_read_mode mode, uint64_t read_version,
		struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_get(s->client, &call.op, key, key_len,
					 mode, read_version, sync_op_done),
			   res);
}

int rs_sync_range(struct rs_sync *s, const void *begin, size_t begin_len,
		  const void *end, size_t end_len, uint32_t limit,
		  enum wire_read_mode mode, uint64_t read_version,
		  struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_range(s->client, &call.op, begin,
					   begin_len, end, end_len, limit,
					   mode, read_version, sync_op_done),
			   res);
}

int rs_sync_grv(struct rs_sync *s, struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_grv(s->client, &call.op, sync_op_done),
			   res);
}

int rs_sync_commit(struct rs_sync *s, uint64_t read_version,
		   const struct wire_bytes *begins, const struct wire_bytes *ends,
		   uint32_t n_ranges, const struct batch *mutations,
		   struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_commit(s->client, &call.op, read_version,
					    begins, ends, n_ranges, mutations,
					    sync_op_done),
			   res);
}

int rs_sync_info(struct rs_sync *s, uint8_t type, int endpoint_index,
		 struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_info(s->client, &call.op, type,
					  endpoint_index, sync_op_done),
			   res);
}

static void sync_watch_event(struct rs_op *op)
{
	struct sync_call *call = op->data;

	assert(&call->op == op);
	assert(!call->done);
	if (op->result.status != RS_OK) {
		call->status = op->result.status;
		call->done = true;
		uv_stop(call->loop);
	} else if (call->fn(call->ctx, &op->result) != 0) {
		rs_client_watch_cancel(op->client, op);
		call->status = RS_OK;
		call->done = true;
		uv_stop(call->loop);
	}
}

int rs_sync_watch(struct rs_sync *s, const void *begin, size_t begin_len,
		  const void *end, size_t end_len, uint64_t from_version,
		  int (*fn)(void *ctx, const struct rs_result *ev), void *ctx)
{
	struct sync_call call;
	int rv;

	assert(s != NULL && fn != NULL);
	sync_begin(s, &call);
	call.fn = fn;
	call.ctx = ctx;
	rv = rs_client_watch(s->client, &call.op, begin, begin_len, end,
			     end_len, from_version, sync_watch_event);
	if (rv != RS_OK)
		return rv;
	sync_run(s, &call.done);
	assert(call.op.state == CLIENT_OP_DONE);
	rs_result_free(&call.op.result);
	return call.status;
}
