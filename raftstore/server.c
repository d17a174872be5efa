/*
 * server: see server.h.
 *
 * Output coalescing: replies are appended to conn->out, and the connection
 * goes on the server's dirty list; when the loop is next about to wait for
 * I/O (a prepare handle) each dirty connection's replies go out in one
 * uv_write, so the answers to a committed batch cost one system call per
 * connection, not one each.  One uv_write per connection is in flight at
 * a time, and whatever accumulates meanwhile goes out when it completes.
 *
 * Connections are reference counted: the uv handle holds one reference
 * until it is closed, each server_req holds one, and so does the dirty
 * list.  The server is reference counted too: it holds one reference of
 * its own until its stop is reported, and every connection struct not
 * yet freed holds one.  A request still owned by the proxy when the server
 * stops (a commit that Raft fails at close) therefore replies into a live
 * server's scratch buffer, never into freed memory.
 *
 * Limits.  A connection over the cap is accepted only to be told so: it
 * stays on the list (so a stop closes it) but is not counted as served,
 * and whatever it sends is dropped unread.  Partial frames are found by a
 * sweep timer that runs every quarter of the frame timeout (at most every
 * second); a frame therefore gets between 1 and 1.25 timeouts to arrive.
 * The same sweep closes outright a connection whose last reply (before a
 * close) has not gone out within one timeout: a peer that does not read
 * cannot keep it open.
 */
#include "raftstore/server.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"

#define SERVER_READ_CHUNK 65536u
/* Descriptors kept for everything but client connections (Raft peers,
 * storage files, the metrics endpoint, libuv's own). */
#define SERVER_FDS_RESERVED 64u
#define SERVER_SWEEP_MS_MAX 1000u

struct server_conn {
	uv_tcp_t tcp;
	struct server *server;
	struct server_conn *prev, *next;
	struct rs_buf in;
	struct rs_buf out;      /* replies not yet handed to uv_write */
	struct rs_buf inflight; /* the buffer uv_write is sending */
	uv_write_t write_req;
	bool writing;
	bool dirty; /* on server->dirty, holding a reference */
	struct server_conn *dirty_next;
	bool closing;
	bool close_after_flush;
	bool refused;       /* over the cap: told so, then closed */
	bool partial;       /* c->in holds the start of a frame ... */
	uint64_t partial_ms; /* ... whose first byte came then */
	uint64_t close_ms;   /* close_after_flush was set then */
	unsigned refs;
	void *data;
	bool peer_ip_known;
	struct in_addr peer_ip;
	char peer[64];
};

struct server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	server_handle_fn handle;
	server_closed_fn closed;
	void *ctx;
	struct server_options o;
	struct server_conn *conns;
	unsigned n_conns;   /* on the list, refused ones included */
	unsigned n_refused; /* on the list, refused, not yet closed */
	uv_timer_t sweep;   /* finds connections stuck in a partial frame */
	uv_prepare_t flusher;      /* runs while dirty is not empty */
	struct server_conn *dirty; /* connections with replies to flush */
	uint64_t refused_total, frame_timeouts_total;
	uint64_t writes_total, replies_total;
	struct metric *m_refused, *m_frame_timeouts; /* NULL until registered */
	bool stopping;
	unsigned closing_handles;
	void (*stop_cb)(void *arg);
	void *stop_arg;
	struct rs_buf scratch; /* replies to dead connections land here */
	unsigned refs;         /* its own until stop is reported + conn structs */
	bool stop_reported;
};

static void server_maybe_stopped(struct server *s);

static void server_unref(struct server *s)
{
	assert(s->refs > 0);
	if (--s->refs > 0)
		return;
	assert(s->stop_reported && s->conns == NULL);
	rs_buf_free(&s->scratch);
	free(s);
}

static void server_conn_unref(struct server_conn *c)
{
	struct server *s = c->server;

	assert(c->refs > 0);
	if (--c->refs > 0)
		return;
	rs_buf_free(&c->in);
	rs_buf_free(&c->out);
	rs_buf_free(&c->inflight);
	free(c);
	server_unref(s);
}

static void server_conn_closed(uv_handle_t *h)
{
	struct server_conn *c = h->data;
	struct server *s = c->server;

	assert(s->closing_handles > 0);
	s->closing_handles--;
	server_conn_unref(c);
	server_maybe_stopped(s);
}

static void server_conn_shutdown(struct server_conn *c)
{
	struct server *s = c->server;

	if (c->closing)
		return;
	c->closing = true;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	if (c->refused)
		s->n_refused--;
	assert(s->n_refused <= s->n_conns);
	if (s->closed != NULL)
		s->closed(s->ctx, c);
	s->closing_handles++;
	uv_close((uv_handle_t *)&c->tcp, server_conn_closed);
}

static void server_flush(struct server_conn *c);

static void server_write_done(uv_write_t *w, int status)
{
	struct server_conn *c = w->data;

	c->writing = false;
	c->inflight.len = 0;
	if (status != 0 && !c->closing) {
		log_debug("client.write_failed", "peer=%s error=%s", c->peer,
			  uv_strerror(status));
		server_conn_shutdown(c);
	} else if (!c->closing) {
		server_flush(c);
	}
	server_conn_unref(c); /* the write's reference */
}

static void server_flush(struct server_conn *c)
{
	struct rs_buf tmp;
	uv_buf_t b;
	int rv;

	if (c->writing || c->closing)
		return;
	if (c->out.len == 0) {
		if (c->close_after_flush)
			server_conn_shutdown(c);
		return;
	}
	/* Swap buffers: out becomes the in-flight one, keeping allocations. */
	tmp = c->inflight;
	c->inflight = c->out;
	c->out = tmp;
	c->out.len = 0;
	b = uv_buf_init((char *)c->inflight.data, (unsigned)c->inflight.len);
	c->write_req.data = c;
	rv = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1,
		      server_write_done);
	if (rv != 0) {
		server_conn_shutdown(c);
		return;
	}
	c->writing = true;
	c->refs++;
	c->server->writes_total++;
}

struct rs_buf *server_reply_begin(struct server_conn *conn, uint64_t id,
				  uint8_t type, uint16_t flags, size_t *start)
{
	struct rs_buf *out = conn->closing ? &conn->server->scratch : &conn->out;

	if (conn->closing)
		out->len = 0;
	*start = wire_frame_begin(out, (uint8_t)(type | WIRE_RESPONSE), flags, id);
	return out;
}

/* Empty the dirty list, flushing each connection (nothing if it is
 * closing or writing) when send, and drop the list's references. */
static void server_dirty_drain(struct server *s, bool send)
{
	struct server_conn *c = s->dirty, *next;

	s->dirty = NULL;
	for (; c != NULL; c = next) {
		next = c->dirty_next;
		c->dirty_next = NULL;
		c->dirty = false;
		if (send)
			server_flush(c);
		server_conn_unref(c);
	}
}

static void server_flush_dirty(uv_prepare_t *h)
{
	uv_prepare_stop(h);
	server_dirty_drain(h->data, true);
}

/* Flush conn before the loop next waits for I/O.  A stopping server has
 * closed the flusher, and its connections are closing: nothing to send. */
static void server_mark_dirty(struct server_conn *c)
{
	struct server *s = c->server;

	if (c->dirty || c->closing || s->stopping)
		return;
	if (s->dirty == NULL)
		uv_prepare_start(&s->flusher, server_flush_dirty);
	c->dirty = true;
	c->refs++;
	c->dirty_next = s->dirty;
	s->dirty = c;
}

void server_reply_end(struct server_conn *conn, size_t start)
{
	struct rs_buf *out = conn->closing ? &conn->server->scratch : &conn->out;
	int rv = wire_frame_end(out, start);

	assert(rv == RS_OK);
	(void)rv;
	if (conn->closing)
		return;
	conn->server->replies_total++;
	if (!conn->writing)
		server_mark_dirty(conn);
}

void server_write_counts(const struct server *s, uint64_t *writes,
			 uint64_t *replies)
{
	*writes = s->writes_total;
	*replies = s->replies_total;
}

void server_reply_status(struct server_conn *conn, uint64_t id, uint8_t type,
			 int status, const char *message)
{
	size_t start;
	struct rs_buf *out = server_reply_begin(conn, id, type, 0, &start);
	wire_put_status(out, status, message);
	server_reply_end(conn, start);
}

static void server_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct server_conn *c = h->data;
	(void)suggested;
	if (rs_buf_reserve(&c->in, SERVER_READ_CHUNK) != RS_OK) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init((char *)c->in.data + c->in.len, SERVER_READ_CHUNK);
}

/* After a read: the frame timeout runs from the first byte of a frame
 * that has not arrived whole; it starts again with each new frame. */
static void server_note_partial(struct server_conn *c, bool consumed)
{
	if (c->in.len == 0) {
		c->partial = false;
	} else if (consumed || !c->partial) {
		c->partial = true;
		c->partial_ms = uv_now(c->server->loop);
	}
	assert(c->partial == (c->in.len > 0));
}

/* Parse and dispatch every complete frame in c->in. */
static void server_dispatch(struct server_conn *c)
{
	struct server *s = c->server;
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_frame f;
	size_t pos = 0;
	int rv = RS_OK;

	c->refs++; /* handlers may close the connection under us */
	while (!c->closing && !c->close_after_flush) {
		rv = wire_frame_parse(c->in.data + pos, c->in.len - pos, &f, errmsg);
		if (rv != RS_OK)
			break;
		if (f.type & WIRE_RESPONSE) {
			rs_errmsg_printf(errmsg, "a response frame (type 0x%02x) sent "
						 "to the server", f.type);
			rv = RS_EPROTO;
			break;
		}
		s->handle(s->ctx, c, &f);
		pos += f.total_len;
	}
	if (rv == RS_EPROTO && !c->closing) {
		log_warn("client.protocol_error", "peer=%s error=\"%s\"", c->peer,
			 errmsg);
		/* Request id 0 and type STATUS: the frame could not be read,
		 * so there is nothing of it to echo (docs/protocol.md). */
		server_reply_status(c, 0, WIRE_STATUS, RS_EPROTO, errmsg);
		server_conn_close(c);
	}
	if (pos > 0 && !c->closing) {
		memmove(c->in.data, c->in.data + pos, c->in.len - pos);
		c->in.len -= pos;
	}
	if (!c->closing)
		server_note_partial(c, pos > 0);
	server_conn_unref(c);
}

static void server_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct server_conn *c = stream->data;
	(void)buf;

	if (n < 0) {
		if (n != UV_EOF)
			log_debug("client.read_failed", "peer=%s error=%s", c->peer,
				  uv_strerror((int)n));
		server_conn_shutdown(c);
		return;
	}
	if (n == 0 || c->refused)
		return; /* a refused connection's bytes are dropped unread */
	c->in.len += (size_t)n;
	server_dispatch(c);
}

/* Over the cap: one RS_EUNAVAILABLE reply (request id 0, as for a frame
 * that cannot be read: the client library reports it as the server
 * refusing the stream), then close. */
static void server_refuse(struct server_conn *c)
{
	struct server *s = c->server;
	char msg[64];

	c->refused = true;
	s->n_refused++;
	s->refused_total++;
	if (s->m_refused != NULL)
		metrics_inc(s->m_refused);
	snprintf(msg, sizeof msg, "too many client connections (%u)",
		 s->o.max_connections);
	log_warn("client.refused", "peer=%s reason=\"%s\"", c->peer, msg);
	server_reply_status(c, 0, WIRE_STATUS, RS_EUNAVAILABLE, msg);
	server_conn_close(c);
}

/* Remember the peer's address, for logs and for the internal-frame gate
 * (service.c). */
static void server_conn_set_peer(struct server_conn *c)
{
	struct sockaddr_storage sa;
	int len = sizeof sa;

	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0 &&
	    sa.ss_family == AF_INET) {
		char ip[32];
		const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
		uv_ip4_name(in, ip, sizeof ip);
		snprintf(c->peer, sizeof c->peer, "%s:%d", ip, ntohs(in->sin_port));
		c->peer_ip = in->sin_addr;
		c->peer_ip_known = true;
	}
}

static void server_accept(uv_stream_t *listener, int status)
{
	struct server *s = listener->data;
	struct server_conn *c;

	if (status != 0 || s->stopping)
		return;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	c->server = s;
	c->refs = 1;
	s->refs++;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		s->closing_handles++;
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, server_conn_closed);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	server_conn_set_peer(c);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	/* Read even when refusing: input left unread at close would turn it
	 * into a reset that may beat the refusal to the client. */
	uv_read_start((uv_stream_t *)&c->tcp, server_alloc, server_read);
	if (s->n_conns - s->n_refused > s->o.max_connections)
		server_refuse(c);
	assert(s->n_conns - s->n_refused <= s->o.max_connections);
}

/* Close every connection whose partial frame is older than the timeout,
 * and every one whose closing reply is stuck for as long. */
static void server_sweep(uv_timer_t *t)
{
	struct server *s = t->data;
	uint64_t now = uv_now(s->loop);
	struct server_conn *c, *next;
	char msg[96];

	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->close_after_flush &&
		    now - c->close_ms >= s->o.frame_timeout_ms) {
			log_debug("client.close_forced", "peer=%s unsent_bytes=%zu",
				  c->peer, server_conn_pending(c));
			server_conn_shutdown(c);
			continue;
		}
		if (!c->partial || !server_conn_alive(c) ||
		    now - c->partial_ms < s->o.frame_timeout_ms)
			continue;
		assert(c->in.len > 0);
		s->frame_timeouts_total++;
		if (s->m_frame_timeouts != NULL)
			metrics_inc(s->m_frame_timeouts);
		log_warn("client.frame_timeout", "peer=%s bytes=%zu timeout_ms=%u",
			 c->peer, c->in.len, s->o.frame_timeout_ms);
		snprintf(msg, sizeof msg,
			 "no complete frame within %u ms (%zu bytes of one received)",
			 s->o.frame_timeout_ms, c->in.len);
		server_reply_status(c, 0, WIRE_STATUS, RS_ETIMEOUT, msg);
		server_conn_close(c);
	}
}

/* Serving max_connections takes that many descriptors: raise the soft
 * limit if it is lower (as far as the hard limit allows), else warn. */
static void server_check_fd_limit(unsigned max_connections)
{
	rlim_t want = (rlim_t)max_connections + SERVER_FDS_RESERVED;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= want)
		return;
	log_warn("client.fd_limit",
		 "max_connections=%u open_files_limit=%" PRIu64 " reason=\"the "
		 "process may run out of descriptors before the connection cap\"",
		 max_connections, (uint64_t)rl.rlim_cur);
}

int server_start(struct server **out, uv_loop_t *loop, const char *addr,
		 const struct server_options *o, server_handle_fn handle,
		 server_closed_fn closed, void *ctx, char *errmsg)
{
	struct sockaddr_in sa;
	char host[64];
	const char *colon = strrchr(addr, ':');
	struct server *s;
	unsigned sweep_ms;
	int rv;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
		rs_errmsg_printf(errmsg, "client address '%s' is not HOST:PORT", addr);
		return RS_EINVAL;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	rv = uv_ip4_addr(host, atoi(colon + 1), &sa);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "client address '%s': %s", addr,
				 uv_strerror(rv));
		return RS_EINVAL;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return RS_ENOMEM;
	s->loop = loop;
	s->refs = 1;
	if (o != NULL)
		s->o = *o;
	if (s->o.frame_timeout_ms == 0)
		s->o.frame_timeout_ms = SERVER_FRAME_TIMEOUT_MS_DEFAULT;
	if (s->o.max_connections == 0)
		s->o.max_connections = SERVER_MAX_CONNECTIONS_DEFAULT;
	s->handle = handle;
	s->closed = closed;
	s->ctx = ctx;
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&s->listener, 1024, server_accept);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "listen on %s: %s", addr, uv_strerror(rv));
		s->stopping = true;
		uv_close((uv_handle_t *)&s->listener, NULL);
		uv_run(loop, UV_RUN_NOWAIT); /* let the close finish */
		free(s);
		return RS_EIO;
	}
	server_check_fd_limit(s->o.max_connections);
	sweep_ms = s->o.frame_timeout_ms / 4;
	sweep_ms = sweep_ms == 0 ? 1 : sweep_ms > SERVER_SWEEP_MS_MAX ?
		   SERVER_SWEEP_MS_MAX : sweep_ms;
	uv_timer_init(loop, &s->sweep);
	s->sweep.data = s;
	uv_timer_start(&s->sweep, server_sweep, sweep_ms, sweep_ms);
	uv_prepare_init(loop, &s->flusher);
	s->flusher.data = s;
	*out = s;
	return RS_OK;
}

/* Every handle is closed: report the stop, then drop the server's own
 * reference.  Requests still in flight keep the struct alive. */
static void server_maybe_stopped(struct server *s)
{
	if (!s->stopping || s->stop_reported || s->closing_handles > 0 ||
	    s->conns != NULL)
		return;
	s->stop_reported = true;
	if (s->stop_cb != NULL)
		s->stop_cb(s->stop_arg);
	server_unref(s);
}

static void server_handle_closed(uv_handle_t *h)
{
	struct server *s = h->data;
	assert(s->closing_handles > 0);
	s->closing_handles--;
	server_maybe_stopped(s);
}

void server_stop(struct server *s, void (*cb)(void *arg), void *arg)
{
	assert(!s->stopping);
	s->stopping = true;
	s->stop_cb = cb;
	s->stop_arg = arg;
	s->closing_handles += 3;
	uv_close((uv_handle_t *)&s->listener, server_handle_closed);
	uv_close((uv_handle_t *)&s->sweep, server_handle_closed);
	uv_close((uv_handle_t *)&s->flusher, server_handle_closed);
	while (s->conns != NULL)
		server_conn_shutdown(s->conns);
	/* Closing connections send nothing more: drop the dirty list. */
	server_dirty_drain(s, false);
}

unsigned server_connection_count(const struct server *s)
{
	assert(s->n_refused <= s->n_conns);
	return s->n_conns - s->n_refused;
}

static double server_connections_read(void *ctx)
{
	return (double)server_connection_count(ctx);
}

int server_metrics_register(struct server *s, struct metrics *ms)
{
	assert(s->m_refused == NULL && s->m_frame_timeouts == NULL);
	if (metrics_gauge_fn(ms, "raftstore_client_connections",
			     "Client connections served now",
			     server_connections_read, s) == NULL)
		return RS_EINVAL;
	s->m_refused = metrics_counter(
		ms, "raftstore_client_connections_refused_total",
		"Client connections refused over --max-client-connections");
	s->m_frame_timeouts = metrics_counter(
		ms, "raftstore_client_frame_timeouts_total",
		"Client connections closed stuck in a partial frame "
		"(--client-frame-timeout-ms)");
	if (s->m_refused == NULL || s->m_frame_timeouts == NULL) {
		s->m_refused = s->m_frame_timeouts = NULL;
		return RS_EINVAL;
	}
	metrics_add(s->m_refused, s->refused_total);
	metrics_add(s->m_frame_timeouts, s->frame_timeouts_total);
	return RS_OK;
}

struct server_req *server_req_new(struct server_conn *conn,
				  const struct wire_frame *f)
{
	struct server_req *r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	r->conn = conn;
	r->id = f->request_id;
	r->type = f->type;
	r->start_ns = uv_hrtime();
	conn->refs++;
	return r;
}

void server_req_done(struct server_req *r)
{
	server_conn_unref(r->conn);
	free(r);
}

void server_conn_close(struct server_conn *conn)
{
	if (!conn->close_after_flush)
		conn->close_ms = uv_now(conn->server->loop);
	conn->close_after_flush = true;
	if (!conn->writing)
		server_flush(conn);
}

bool server_conn_alive(const struct server_conn *conn)
{
	return !conn->closing && !conn->close_after_flush;
}

void **server_conn_data(struct server_conn *conn)
{
	return &conn->data;
}

size_t server_conn_pending(const struct server_conn *conn)
{
	return conn->out.len + conn->inflight.len;
}

const char *server_conn_peer(const struct server_conn *conn)
{
	return conn->peer;
}

bool server_conn_peer_ip(const struct server_conn *conn, struct in_addr *ip)
{
	if (conn->peer_ip_known)
		*ip = conn->peer_ip;
	return conn->peer_ip_known;
}
