/*
 * http: see http.h.
 *
 * A connection is a state machine (http_conn_sm, raftstore/lib/sm.h: every
 * change is checked against the table):
 *
 *   READING ---> WRITING ---> LINGERING ---> CLOSED
 *      |            |                          ^
 *      +------------+--------------------------+
 *
 *   READING    collecting the head in c->in; http_parse runs whenever the
 *              new bytes could change its answer.
 *   WRITING    one uv_write of head and body; reading is stopped.
 *   LINGERING  write side shut down; reading again, discarding, until EOF,
 *              HTTP_LINGER_MS or HTTP_LINGER_BYTES_MAX, so that unread
 *              request bytes do not turn our close into a reset that
 *              destroys the response before the peer reads it.
 *   CLOSED     both handles (tcp, timer) are closing; the memory goes when
 *              the last close callback has run.  libuv runs cancelled
 *              write and shutdown callbacks before the close callback, so
 *              they still find the connection and see CLOSED.
 *
 * One timer per connection bounds READING + WRITING (request timeout) and
 * then LINGERING.
 */
#include "coordinator/http.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/lib/sm.h"

#define HTTP_READ_CHUNK 4096u
#define HTTP_LINGER_BYTES_MAX 65536u
#define HTTP_BACKLOG 128

enum http_conn_state {
	HTTP_CONN_READING,
	HTTP_CONN_WRITING,
	HTTP_CONN_LINGERING,
	HTTP_CONN_CLOSED,
};

static const struct sm_state http_conn_states[] = {
	[HTTP_CONN_READING] = {"reading", SM_TO(HTTP_CONN_WRITING) |
						  SM_TO(HTTP_CONN_CLOSED)},
	[HTTP_CONN_WRITING] = {"writing", SM_TO(HTTP_CONN_LINGERING) |
						  SM_TO(HTTP_CONN_CLOSED)},
	[HTTP_CONN_LINGERING] = {"lingering", SM_TO(HTTP_CONN_CLOSED)},
	[HTTP_CONN_CLOSED] = {"closed", 0},
};
static const struct sm_def http_conn_sm = SM_DEF("http_conn", http_conn_states);

struct http_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t write_req;
	uv_shutdown_t shutdown_req;
	struct http *http;
	struct http_conn *prev, *next; /* live (not CLOSED) connections */
	struct sm sm; /* enum http_conn_state */
	unsigned handles_open;
	size_t drained;
	struct rs_buf in;
	struct rs_buf head; /* response status line and headers */
	struct rs_buf body;
};

struct http {
	uv_loop_t *loop;
	uv_tcp_t listener;
	bool listener_open;
	bool stopping;
	struct http_route *routes;
	size_t n_routes;
	void *ctx;
	unsigned timeout_ms;
	struct http_conn *conns;
	unsigned n_conns;   /* on the list */
	unsigned n_closing; /* CLOSED, handles not yet closed */
	void (*stop_cb)(void *arg);
	void *stop_arg;
	char drain[HTTP_READ_CHUNK]; /* LINGERING reads land here */
};

/* ---- parsing ---- */

static bool http_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* No control bytes but HT and line ends; CR only right before LF. */
static bool http_bytes_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\r' && i + 1 < n && p[i + 1] != '\n')
			return false;
		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
		    c == 0x7f)
			return false;
	}
	return true;
}

static size_t http_token_len(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && http_tchar((unsigned char)p[i]))
		i++;
	return i;
}

/* method SP request-target SP HTTP/DIGIT.DIGIT */
static enum http_parse_result http_parse_request_line(const char *p, size_t n,
						      struct http_request *r)
{
	size_t m = http_token_len(p, n), t = 0;
	const char *v;

	if (m == 0 || m >= n || p[m] != ' ')
		return HTTP_PARSE_BAD;
	while (m + 1 + t < n && p[m + 1 + t] > 0x20 && p[m + 1 + t] < 0x7f)
		t++;
	if (t == 0 || m + 1 + t >= n || p[m + 1 + t] != ' ')
		return HTTP_PARSE_BAD;
	v = p + m + 2 + t;
	if ((size_t)(p + n - v) != 8 || memcmp(v, "HTTP/", 5) != 0 ||
	    v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
		return HTTP_PARSE_BAD;
	if (v[5] != '1')
		return HTTP_PARSE_VERSION;
	r->method = p;
	r->method_len = m;
	r->target = p + m + 1;
	r->target_len = t;
	assert(r->method_len > 0 && r->target_len > 0);
	return HTTP_PARSE_DONE;
}

/* field-name ":" value; the bytes were checked already.  No obs-fold, no
 * space before the colon (RFC 9112 5.1, 5.2). */
static enum http_parse_result http_parse_header(const char *p, size_t n)
{
	size_t name = http_token_len(p, n);

	assert(n > 0);
	if (name == 0 || name >= n || p[name] != ':')
		return HTTP_PARSE_BAD;
	return HTTP_PARSE_DONE;
}

enum http_parse_result http_parse(const char *p, size_t n,
				  struct http_request *req)
{
	size_t lim = n < HTTP_HEAD_SIZE_MAX ? n : HTTP_HEAD_SIZE_MAX;
	struct http_request r = {0};
	bool have_line = false;
	size_t pos = 0;

	assert(p != NULL || n == 0);
	/* Bytes are checked line by line, so what follows the head (a body,
	 * the next request) never changes the answer: it must not depend on
	 * whether those bytes came in the same read. */
	for (;;) {
		const char *nl = memchr(p + pos, '\n', lim - pos);
		enum http_parse_result res = HTTP_PARSE_DONE;
		size_t next, len;

		if (nl == NULL) {
			if (!http_bytes_ok(p + pos, lim - pos))
				return HTTP_PARSE_BAD;
			return n > HTTP_HEAD_SIZE_MAX ? HTTP_PARSE_TOO_LARGE
						      : HTTP_PARSE_MORE;
		}
		next = (size_t)(nl - p) + 1;
		if (!http_bytes_ok(p + pos, next - pos))
			return HTTP_PARSE_BAD;
		len = next - 1 - pos;
		if (len > 0 && p[pos + len - 1] == '\r')
			len--;
		if (len == 0 && have_line) {
			r.head_len = next;
			assert(r.head_len <= HTTP_HEAD_SIZE_MAX);
			*req = r;
			return HTTP_PARSE_DONE;
		}
		if (len > 0 && !have_line)
			res = http_parse_request_line(p + pos, len, &r);
		else if (len > 0)
			res = http_parse_header(p + pos, len);
		if (res != HTTP_PARSE_DONE)
			return res;
		have_line = have_line || len > 0;
		pos = next;
	}
}

/* ---- responses ---- */

static const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* The path of a request target: absolute-form reduced, query cut. */
static void http_target_path(const char *t, size_t n, const char **path,
			     size_t *path_len)
{
	const char *scheme_end = NULL;

	if (n > 7 && (strncasecmp(t, "http://", 7) == 0 ||
		      strncasecmp(t, "https://", 8) == 0))
		scheme_end = memchr(t, '/', n);
	if (scheme_end != NULL) {
		const char *auth = scheme_end + 2;
		const char *slash = memchr(auth, '/', (size_t)(t + n - auth));
		if (slash == NULL) {
			*path = "/";
			*path_len = 1;
			return;
		}
		n -= (size_t)(slash - t);
		t = slash;
	}
	*path = t;
	*path_len = n;
	for (size_t i = 0; i < n; i++) {
		if (t[i] == '?' || t[i] == '#') {
			*path_len = i;
			break;
		}
	}
}

static const struct http_route *http_route_find(const struct http *h,
						const struct http_request *r)
{
	const char *path;
	size_t len;

	http_target_path(r->target, r->target_len, &path, &len);
	for (size_t i = 0; i < h->n_routes; i++) {
		const struct http_route *rt = &h->routes[i];
		if (strlen(rt->path) == len && memcmp(rt->path, path, len) == 0)
			return rt;
	}
	return NULL;
}

static bool http_method_is(const struct http_request *r, const char *m)
{
	return r->method_len == strlen(m) &&
	       memcmp(r->method, m, r->method_len) == 0;
}

/* ---- connections ---- */

static void http_maybe_stopped(struct http *h);

static void http_conn_handle_closed(uv_handle_t *handle)
{
	struct http_conn *c = handle->data;
	struct http *h = c->http;

	assert(sm_state(&c->sm) == HTTP_CONN_CLOSED && c->handles_open > 0);
	if (--c->handles_open > 0)
		return;
	rs_buf_free(&c->in);
	rs_buf_free(&c->head);
	rs_buf_free(&c->body);
	free(c);
	assert(h->n_closing > 0);
	h->n_closing--;
	http_maybe_stopped(h);
}

static void http_conn_close(struct http_conn *c)
{
	struct http *h = c->http;

	if (sm_state(&c->sm) == HTTP_CONN_CLOSED)
		return;
	sm_move(&c->sm, HTTP_CONN_CLOSED);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	assert(h->n_conns > 0);
	h->n_conns--;
	h->n_closing++;
	uv_close((uv_handle_t *)&c->tcp, http_conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, http_conn_handle_closed);
}

static void http_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

static void http_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct http_conn *c = handle->data;
	size_t room;
	(void)suggested;

	if (sm_state(&c->sm) != HTTP_CONN_READING) {
		*buf = uv_buf_init(c->http->drain, sizeof c->http->drain);
		return;
	}
	assert(c->in.len <= HTTP_HEAD_SIZE_MAX); /* else parsed as too large */
	room = HTTP_HEAD_SIZE_MAX + 1 - c->in.len;
	if (room > HTTP_READ_CHUNK)
		room = HTTP_READ_CHUNK;
	if (rs_buf_reserve(&c->in, room) != RS_OK) {
		*buf = uv_buf_init(NULL, 0); /* read fails with UV_ENOBUFS */
		return;
	}
	*buf = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)room);
}

static void http_timer_fired(uv_timer_t *t);

static void http_shutdown_done(uv_shutdown_t *req, int status)
{
	struct http_conn *c = req->data;

	if (sm_state(&c->sm) != HTTP_CONN_CLOSED && status != 0)
		http_conn_close(c);
}

static void http_write_done(uv_write_t *w, int status)
{
	struct http_conn *c = w->data;

	if (sm_state(&c->sm) == HTTP_CONN_CLOSED)
		return; /* cancelled by a close */
	if (status != 0) {
		http_conn_close(c);
		return;
	}
	sm_move(&c->sm, HTTP_CONN_LINGERING);
	c->shutdown_req.data = c;
	if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
			http_shutdown_done) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, http_alloc, http_read) != 0) {
		http_conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, http_timer_fired, HTTP_LINGER_MS, 0);
}

static int http_head_build(struct http_conn *c, int status,
			   const char *content_type, bool allow)
{
	char s[512];
	int len;

	len = snprintf(s, sizeof s,
		       "HTTP/1.1 %d %s\r\n"
		       "Content-Type: %s\r\n"
		       "Content-Length: %zu\r\n"
		       "%s"
		       "Connection: close\r\n"
		       "\r\n",
		       status, http_reason(status), content_type, c->body.len,
		       allow ? "Allow: GET, HEAD\r\n" : "");
	assert(len > 0);
	if ((size_t)len >= sizeof s)
		return RS_ETOOLARGE;
	c->head.len = 0;
	return rs_buf_append(&c->head, s, (size_t)len);
}

/* Send the response in c->body (status 200, or 503 with the route's body)
 * or a short error text, then
 * LINGERING.  Reading must be stopped. */
static void http_respond(struct http_conn *c, int status,
			 const char *content_type, bool with_body)
{
	uv_buf_t bufs[2];
	char text[64];
	int rv;

	assert(sm_state(&c->sm) == HTTP_CONN_READING);
	if (status != 200 && status != 503) {
		snprintf(text, sizeof text, "%d %s\n", status, http_reason(status));
		c->body.len = 0;
		content_type = "text/plain; charset=utf-8";
		rv = rs_buf_append(&c->body, text, strlen(text));
	} else {
		rv = RS_OK;
	}
	if (rv == RS_OK)
		rv = http_head_build(c, status, content_type, status == 405);
	if (rv != RS_OK || c->body.len > UINT32_MAX) { /* uv_buf_t length */
		http_conn_close(c);
		return;
	}
	bufs[0] = uv_buf_init((char *)c->head.data, (unsigned)c->head.len);
	bufs[1] = uv_buf_init((char *)c->body.data, (unsigned)c->body.len);
	c->write_req.data = c;
	rv = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs,
		      with_body && c->body.len > 0 ? 2 : 1, http_write_done);
	if (rv != 0) {
		http_conn_close(c);
		return;
	}
	sm_move(&c->sm, HTTP_CONN_WRITING);
}

/* A complete head: route it and answer. */
static void http_dispatch(struct http_conn *c, const struct http_request *r)
{
	struct http *h = c->http;
	const struct http_route *rt = http_route_find(h, r);
	bool get = http_method_is(r, "GET"), head = http_method_is(r, "HEAD");
	int rv;

	if (rt == NULL) {
		http_respond(c, 404, NULL, !head);
		return;
	}
	if (!get && !head) {
		http_respond(c, 405, NULL, true);
		return;
	}
	c->body.len = 0;
	rv = rt->body(h->ctx, &c->body);
	if (sm_state(&c->sm) == HTTP_CONN_CLOSED)
		return; /* the callback stopped the server */
	if (rv == RS_EUNAVAILABLE)
		http_respond(c, 503, rt->content_type, !head);
	else if (rv != RS_OK)
		http_respond(c, 500, NULL, !head);
	else
		http_respond(c, 200, rt->content_type, !head);
}

/* Could bytes p[0..n) change what http_parse said before them?  Only a
 * line end, a control byte, or crossing the size limit can. */
static bool http_worth_parsing(const struct http_conn *c, const char *p,
			       size_t n)
{
	if (c->in.len > HTTP_HEAD_SIZE_MAX)
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
			return true;
	}
	return false;
}

static void http_read_head(struct http_conn *c, size_t n)
{
	struct http_request r;
	enum http_parse_result res;

	assert(c->in.len + n <= HTTP_HEAD_SIZE_MAX + 1);
	c->in.len += n;
	if (!http_worth_parsing(c, (const char *)c->in.data + c->in.len - n, n))
		return;
	res = http_parse((const char *)c->in.data, c->in.len, &r);
	if (res == HTTP_PARSE_MORE)
		return;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (res == HTTP_PARSE_DONE)
		http_dispatch(c, &r);
	else
		http_respond(c, res == HTTP_PARSE_VERSION ? 505 : 400, NULL, true);
}

static void http_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct http_conn *c = stream->data;
	(void)buf;

	if (sm_state(&c->sm) == HTTP_CONN_CLOSED)
		return;
	if (n < 0) { /* EOF, reset, or no buffer: nothing more to do */
		http_conn_close(c);
		return;
	}
	if (sm_state(&c->sm) == HTTP_CONN_READING) {
		http_read_head(c, (size_t)n);
		return;
	}
	assert(sm_state(&c->sm) == HTTP_CONN_LINGERING);
	c->drained += (size_t)n;
	if (c->drained > HTTP_LINGER_BYTES_MAX)
		http_conn_close(c);
}

static void http_timer_fired(uv_timer_t *t)
{
	struct http_conn *c = t->data;

	assert(sm_state(&c->sm) != HTTP_CONN_CLOSED);
	if (sm_state(&c->sm) == HTTP_CONN_READING && c->in.len > 0) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		http_respond(c, 408, NULL, true);
		if (sm_state(&c->sm) == HTTP_CONN_WRITING) /* bound the write too */
			uv_timer_start(&c->timer, http_timer_fired,
				       HTTP_LINGER_MS, 0);
		return;
	}
	http_conn_close(c);
}

/* A new connection on the list, READING, handles initialized. */
static struct http_conn *http_conn_new(struct http *h)
{
	struct http_conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->http = h;
	sm_init(&c->sm, &http_conn_sm, HTTP_CONN_READING);
	uv_tcp_init(h->loop, &c->tcp);
	uv_timer_init(h->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles_open = 2;
	c->next = h->conns;
	if (h->conns != NULL)
		h->conns->prev = c;
	h->conns = c;
	h->n_conns++;
	return c;
}

static void http_accept(uv_stream_t *listener, int status)
{
	struct http *h = listener->data;
	struct http_conn *c;
	bool full;

	if (status != 0 || h->stopping)
		return;
	full = h->n_conns >= HTTP_CONN_MAX;
	c = http_conn_new(h);
	if (c == NULL)
		return;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || full ||
	    uv_read_start((uv_stream_t *)&c->tcp, http_alloc, http_read) != 0) {
		http_conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, http_timer_fired, h->timeout_ms, 0);
	assert(h->n_conns <= HTTP_CONN_MAX);
}

/* ---- server ---- */

static void http_maybe_stopped(struct http *h)
{
	void (*cb)(void *);
	void *arg;

	if (!h->stopping || h->listener_open || h->conns != NULL ||
	    h->n_closing > 0)
		return;
	assert(h->n_conns == 0);
	cb = h->stop_cb;
	arg = h->stop_arg;
	free(h->routes);
	free(h);
	if (cb != NULL)
		cb(arg);
}

static void http_listener_closed(uv_handle_t *handle)
{
	struct http *h = handle->data;

	assert(h->stopping && h->listener_open);
	h->listener_open = false;
	http_maybe_stopped(h);
}

static int http_port_parse(const char *s, int *port)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return RS_EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return RS_EINVAL;
		v = v * 10 + (*s - '0');
	}
	if (v > 65535)
		return RS_EINVAL;
	*port = (int)v;
	return RS_OK;
}

/* "HOST:PORT", "[V6]:PORT", ":PORT" into sa. */
static int http_addr_parse(const char *addr, struct sockaddr_storage *sa,
			   char *errmsg)
{
	bool v6 = addr[0] == '[';
	const char *h0 = v6 ? addr + 1 : addr;
	const char *h1 = v6 ? strchr(h0, ']') : strrchr(addr, ':');
	const char *colon = h1;
	char host[64];
	int port, rv;

	if (v6)
		colon = h1 != NULL && h1[1] == ':' ? h1 + 1 : NULL;
	else if (colon != NULL && memchr(h0, ':', (size_t)(h1 - h0)) != NULL)
		colon = NULL; /* an IPv6 address needs brackets */
	if (colon == NULL || (size_t)(h1 - h0) >= sizeof host ||
	    http_port_parse(colon + 1, &port) != RS_OK) {
		rs_errmsg_printf(errmsg, "HTTP address '%s' is not HOST:PORT", addr);
		return RS_EINVAL;
	}
	snprintf(host, sizeof host, "%.*s", (int)(h1 - h0), h0);
	if (v6)
		rv = uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa);
	else if (host[0] == '\0')
		rv = uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)sa);
	else if (strcmp(host, "localhost") == 0)
		rv = uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)sa);
	else
		rv = uv_ip4_addr(host, port, (struct sockaddr_in *)sa);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "HTTP address '%s': %s", addr,
				 uv_strerror(rv));
		return RS_EINVAL;
	}
	return RS_OK;
}

static int http_config_check(const struct http_config *config, char *errmsg)
{
	for (size_t i = 0; i < config->n_routes; i++) {
		const struct http_route *rt = &config->routes[i];
		if (rt->path == NULL || rt->path[0] != '/' ||
		    rt->content_type == NULL || rt->body == NULL) {
			rs_errmsg_printf(errmsg, "HTTP route %zu is incomplete", i);
			return RS_EINVAL;
		}
	}
	return RS_OK;
}

static struct http *http_new(uv_loop_t *loop, const struct http_config *config)
{
	struct http *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	if (config->n_routes > 0) {
		h->routes = calloc(config->n_routes, sizeof *h->routes);
		if (h->routes == NULL) {
			free(h);
			return NULL;
		}
		memcpy(h->routes, config->routes,
		       config->n_routes * sizeof *h->routes);
	}
	h->n_routes = config->n_routes;
	h->loop = loop;
	h->ctx = config->ctx;
	h->timeout_ms = config->request_timeout_ms != 0
				? config->request_timeout_ms
				: HTTP_REQUEST_TIMEOUT_MS_DEFAULT;
	return h;
}

int http_start(struct http **out, uv_loop_t *loop, const char *addr,
	       const struct http_config *config, char *errmsg)
{
	struct sockaddr_storage sa;
	struct http *h;
	int rv;

	assert(out != NULL && loop != NULL && addr != NULL && config != NULL);
	memset(&sa, 0, sizeof sa);
	rv = http_config_check(config, errmsg);
	if (rv == RS_OK)
		rv = http_addr_parse(addr, &sa, errmsg);
	if (rv != RS_OK)
		return rv;
	h = http_new(loop, config);
	if (h == NULL) {
		rs_errmsg_printf(errmsg, "HTTP server on %s: out of memory", addr);
		return RS_ENOMEM;
	}
	uv_tcp_init(loop, &h->listener);
	h->listener.data = h;
	h->listener_open = true;
	rv = uv_tcp_bind(&h->listener, (const struct sockaddr *)&sa, 0);
	if (rv == 0) /* libuv reports EADDRINUSE here, not at bind */
		rv = uv_listen((uv_stream_t *)&h->listener, HTTP_BACKLOG,
			       http_accept);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "listen on %s: %s", addr, uv_strerror(rv));
		h->stopping = true; /* the close callback frees h */
		uv_close((uv_handle_t *)&h->listener, http_listener_closed);
		return RS_EIO;
	}
	*out = h;
	return RS_OK;
}

int http_port(const struct http *h)
{
	struct sockaddr_storage sa;
	int len = sizeof sa;

	if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	if (sa.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&sa)->sin_port);
	if (sa.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&sa)->sin6_port);
	return -1;
}

void http_stop(struct http *h, void (*cb)(void *arg), void *arg)
{
	assert(h != NULL && !h->stopping);
	h->stopping = true;
	h->stop_cb = cb;
	h->stop_arg = arg;
	uv_close((uv_handle_t *)&h->listener, http_listener_closed);
	while (h->conns != NULL)
		http_conn_close(h->conns);
	assert(h->n_conns == 0);
}
