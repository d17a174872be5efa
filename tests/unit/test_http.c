/* Tests for http: the server runs on the test's loop in the main thread;
 * a client thread talks to it with plain blocking sockets (so requests can
 * be cut into pieces at will), records what came back, and then asks the
 * loop, through a uv_async, to stop the server.  The test checks the
 * answers after the loop has ended, and that uv_loop_close returns 0.
 * The parser is also tested on its own, without sockets. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "coordinator/http.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "tests/unit/testutil.h"

#define T_MAX_RESP 16
#define T_BIG_BYTES (32u << 20)

struct t_env;
typedef void (*t_client_fn)(struct t_env *env);

struct t_env {
	uv_loop_t loop;
	uv_async_t stop_async;
	struct http *h;
	int port;
	struct metrics *ms;
	struct metric *requests;
	bool stop_sent;  /* client thread: stop requested */
	bool stop_begun; /* loop thread: http_stop called */
	int stopped;     /* stop callbacks run */
	char *resp[T_MAX_RESP]; /* what each client exchange got back */
	size_t resp_len[T_MAX_RESP];
	int n_resp;
	int checks_failed; /* client-side checks that failed */
	char failure[256];
};

/* ---- routes ---- */

static int route_metrics(void *ctx, struct rs_buf *body)
{
	struct t_env *env = ctx;

	metrics_inc(env->requests);
	return metrics_render_prometheus(env->ms, body);
}

static int route_status(void *ctx, struct rs_buf *body)
{
	static const char json[] = "{\"node_id\":1,\"role\":\"leader\"}\n";
	(void)ctx;
	return rs_buf_append(body, json, sizeof json - 1);
}

static int route_fail(void *ctx, struct rs_buf *body)
{
	(void)ctx;
	rs_buf_append(body, "partial", 7); /* must not be sent */
	return RS_EIO;
}

/* A health check that fails: 503 with the body as written. */
static int route_down(void *ctx, struct rs_buf *body)
{
	(void)ctx;
	rs_buf_append(body, "{\"health\":false}", 16);
	return RS_EUNAVAILABLE;
}

static int route_big(void *ctx, struct rs_buf *body)
{
	size_t n = T_BIG_BYTES;
	(void)ctx;
	if (rs_buf_reserve(body, n) != RS_OK)
		return RS_ENOMEM;
	memset(body->data, 'x', n);
	body->len = n;
	return RS_OK;
}

static void t_stopped(void *arg)
{
	struct t_env *env = arg;
	env->stopped++;
}

static int route_stop(void *ctx, struct rs_buf *body)
{
	struct t_env *env = ctx;
	(void)body;
	env->stop_begun = true;
	http_stop(env->h, t_stopped, env);
	return RS_OK;
}

static const struct http_route t_routes[] = {
	{"/metrics", HTTP_CONTENT_TYPE_PROMETHEUS, route_metrics},
	{"/status", HTTP_CONTENT_TYPE_JSON, route_status},
	{"/fail", "text/plain", route_fail},
	{"/big", "application/octet-stream", route_big},
	{"/stop", "text/plain", route_stop},
	{"/down", HTTP_CONTENT_TYPE_JSON, route_down},
};

/* ---- loop side ---- */

static void t_stop_async(uv_async_t *a)
{
	struct t_env *env = a->data;

	uv_close((uv_handle_t *)a, NULL);
	if (!env->stop_begun) {
		env->stop_begun = true;
		http_stop(env->h, t_stopped, env);
	}
}

static void t_start(struct t_env *env, unsigned timeout_ms)
{
	struct http_config cfg = {t_routes, sizeof t_routes / sizeof t_routes[0],
				  env, timeout_ms};
	char err[RS_ERRMSG_SIZE] = "";

	memset(env, 0, sizeof *env);
	ck_assert_int_eq(uv_loop_init(&env->loop), 0);
	ck_assert_int_eq(metrics_new(&env->ms), RS_OK);
	env->requests = metrics_counter(env->ms, "http_requests_total",
					"Scrapes.");
	ck_assert_ptr_nonnull(env->requests);
	ck_assert_msg(http_start(&env->h, &env->loop, "127.0.0.1:0", &cfg, err) ==
			      RS_OK,
		      "%s", err);
	env->port = http_port(env->h);
	ck_assert_int_gt(env->port, 0);
	uv_async_init(&env->loop, &env->stop_async, t_stop_async);
	env->stop_async.data = env;
}

/* Thread-safe: ask the loop to stop the server (once). */
static void t_request_stop(struct t_env *env)
{
	if (!env->stop_sent) {
		env->stop_sent = true;
		uv_async_send(&env->stop_async);
	}
}

struct t_thread_arg {
	struct t_env *env;
	t_client_fn fn;
};

static void *t_thread(void *p)
{
	struct t_thread_arg *a = p;

	a->fn(a->env);
	t_request_stop(a->env);
	return NULL;
}

/* Run fn on a client thread against a fresh server; the loop runs until
 * the server has stopped.  Leaves env->resp for the test to check. */
static void t_run_timeout(struct t_env *env, t_client_fn fn,
			  unsigned timeout_ms)
{
	struct t_thread_arg a;
	pthread_t th;

	t_start(env, timeout_ms);
	a.env = env;
	a.fn = fn;
	ck_assert_int_eq(pthread_create(&th, NULL, t_thread, &a), 0);
	ck_assert_int_eq(uv_run(&env->loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(env->stopped, 1);
	ck_assert_msg(env->checks_failed == 0, "client: %s", env->failure);
}

static void t_run(struct t_env *env, t_client_fn fn)
{
	t_run_timeout(env, fn, 0);
}

static void t_finish(struct t_env *env)
{
	for (int i = 0; i < env->n_resp; i++)
		free(env->resp[i]);
	metrics_free(env->ms);
	ck_assert_int_eq(uv_loop_close(&env->loop), 0);
}

/* ---- client side (blocking sockets, client thread) ---- */

static void t_fail(struct t_env *env, const char *what)
{
	if (env->checks_failed++ == 0)
		snprintf(env->failure, sizeof env->failure, "%s (errno %d)", what,
			 errno);
}

/* Connect to the server; rcvbuf_bytes > 0 shrinks the receive buffer. */
static int t_connect_rcvbuf(struct t_env *env, int rcvbuf_bytes)
{
	struct sockaddr_in sa;
	struct timeval tv = {5, 0};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0) {
		t_fail(env, "socket");
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)env->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (rcvbuf_bytes > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes,
			   sizeof rcvbuf_bytes);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		t_fail(env, "connect");
		close(fd);
		return -1;
	}
	return fd;
}

static int t_connect(struct t_env *env)
{
	return t_connect_rcvbuf(env, 0);
}

static void t_send(struct t_env *env, int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0) {
			t_fail(env, "send");
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Read until EOF (or reset) and record it as the next response. */
static void t_recv_all(struct t_env *env, int fd)
{
	struct rs_buf b;
	char chunk[65536];
	ssize_t r;

	rs_buf_init(&b);
	while ((r = recv(fd, chunk, sizeof chunk, 0)) > 0)
		rs_buf_append(&b, chunk, (size_t)r);
	if (r < 0 && errno != ECONNRESET)
		t_fail(env, "recv");
	rs_buf_append(&b, "", 1);
	if (env->n_resp < T_MAX_RESP) {
		env->resp[env->n_resp] = (char *)b.data;
		env->resp_len[env->n_resp++] = b.len - 1;
	} else {
		rs_buf_free(&b);
	}
}

/* One connection: send p[0..n) in pieces of `piece` bytes (0: at once),
 * sleeping delay_us between them, then read everything back. */
static void t_exchange_split(struct t_env *env, const char *p, size_t n,
			     size_t piece, unsigned delay_us)
{
	int fd = t_connect(env);

	if (fd < 0)
		return;
	if (piece == 0)
		piece = n;
	for (size_t off = 0; off < n; off += piece) {
		t_send(env, fd, p + off, n - off < piece ? n - off : piece);
		if (delay_us > 0)
			usleep(delay_us);
	}
	t_recv_all(env, fd);
	close(fd);
}

static void t_exchange(struct t_env *env, const char *req)
{
	t_exchange_split(env, req, strlen(req), 0, 0);
}

/* ---- response checks (main thread) ---- */

struct t_resp {
	int status;
	const char *head; /* the whole text */
	const char *body;
	size_t body_len;
};

static struct t_resp t_parse(const struct t_env *env, int i)
{
	struct t_resp r = {0};
	const char *end;

	ck_assert_int_lt(i, env->n_resp);
	r.head = env->resp[i];
	ck_assert_msg(strncmp(r.head, "HTTP/1.1 ", 9) == 0, "response %d: '%s'",
		      i, r.head);
	r.status = atoi(r.head + 9);
	end = strstr(r.head, "\r\n\r\n");
	ck_assert_ptr_nonnull(end);
	r.body = end + 4;
	r.body_len = env->resp_len[i] - (size_t)(r.body - r.head);
	return r;
}

/* The value of header `name` ("" if absent), from the response head. */
static void t_header(const struct t_resp *r, const char *name, char *out,
		     size_t size)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof key, "\r\n%s: ", name);
	out[0] = '\0';
	p = strstr(r->head, key);
	if (p == NULL || p > r->body)
		return;
	p += strlen(key);
	e = strstr(p, "\r\n");
	snprintf(out, size, "%.*s", (int)(e - p), p);
}

/* Status, and the headers every response must carry. */
static struct t_resp t_expect(const struct t_env *env, int i, int status)
{
	struct t_resp r = t_parse(env, i);
	char v[128];

	ck_assert_msg(r.status == status, "response %d: want %d, got '%s'", i,
		      status, r.head);
	t_header(&r, "Connection", v, sizeof v);
	ck_assert_str_eq(v, "close");
	t_header(&r, "Content-Length", v, sizeof v);
	ck_assert_str_ne(v, "");
	ck_assert_uint_eq(strtoull(v, NULL, 10), r.body_len);
	return r;
}

/* ---- basic routes ---- */

static void c_routes(struct t_env *env)
{
	t_exchange(env, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	t_exchange(env, "GET /status HTTP/1.1\r\nHost: x\r\n"
			"User-Agent: test\r\nAccept: */*\r\n\r\n");
	t_exchange(env, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
	t_exchange(env, "GET /metrics HTTP/1.0\r\n\r\n");
	t_exchange(env, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	t_exchange(env, "GET /down HTTP/1.1\r\nHost: x\r\n\r\n");
}

START_TEST(test_routes)
{
	struct t_env env;
	struct t_resp r;
	char v[128];

	t_run(&env, c_routes);
	ck_assert_int_eq(env.n_resp, 6);

	r = t_expect(&env, 0, 200);
	t_header(&r, "Content-Type", v, sizeof v);
	ck_assert_str_eq(v, "text/plain; version=0.0.4; charset=utf-8");
	ck_assert_str_eq(r.body, "# HELP http_requests_total Scrapes.\n"
				 "# TYPE http_requests_total counter\n"
				 "http_requests_total 1\n");

	r = t_expect(&env, 1, 200);
	t_header(&r, "Content-Type", v, sizeof v);
	ck_assert_str_eq(v, "application/json");
	ck_assert_str_eq(r.body, "{\"node_id\":1,\"role\":\"leader\"}\n");

	r = t_expect(&env, 2, 404);
	ck_assert_str_eq(r.body, "404 Not Found\n");

	r = t_expect(&env, 3, 200); /* HTTP/1.0 gets an answer too */
	ck_assert_ptr_nonnull(strstr(r.body, "http_requests_total 2\n"));
	r = t_expect(&env, 4, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "http_requests_total 3\n"));
	ck_assert_uint_eq(metrics_counter_get(env.requests), 3);
	r = t_expect(&env, 5, 503); /* the route's own body, not a stock text */
	t_header(&r, "Content-Type", v, sizeof v);
	ck_assert_str_eq(v, "application/json");
	ck_assert_str_eq(r.body, "{\"health\":false}");
	t_finish(&env);
}
END_TEST

static void c_methods(struct t_env *env)
{
	t_exchange(env, "POST /metrics HTTP/1.1\r\nHost: x\r\n"
			"Content-Length: 5\r\n\r\nhello");
	t_exchange(env, "PUT /status HTTP/1.1\r\nHost: x\r\n\r\n");
	t_exchange(env, "get /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	t_exchange(env, "DELETE /nope HTTP/1.1\r\nHost: x\r\n\r\n");
	t_exchange(env, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	t_exchange(env, "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n");
}

START_TEST(test_methods)
{
	struct t_env env;
	struct t_resp r;
	char v[128];

	t_run(&env, c_methods);
	ck_assert_int_eq(env.n_resp, 6);
	for (int i = 0; i < 3; i++) {
		r = t_expect(&env, i, 405);
		t_header(&r, "Allow", v, sizeof v);
		ck_assert_str_eq(v, "GET, HEAD");
		ck_assert_str_eq(r.body, "405 Method Not Allowed\n");
	}
	t_expect(&env, 3, 404); /* no such path, whatever the method */

	/* HEAD: the headers of a GET, no body. */
	r = t_parse(&env, 4);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, 0);
	t_header(&r, "Content-Length", v, sizeof v);
	ck_assert_int_gt(atoi(v), 0);
	r = t_parse(&env, 5);
	ck_assert_int_eq(r.status, 404);
	ck_assert_uint_eq(r.body_len, 0);
	t_finish(&env);
}
END_TEST

static void c_targets(struct t_env *env)
{
	t_exchange(env, "GET /metrics?name[]=x HTTP/1.1\r\n\r\n");
	t_exchange(env, "GET http://127.0.0.1:9100/status HTTP/1.1\r\n\r\n");
	t_exchange(env, "GET http://127.0.0.1:9100 HTTP/1.1\r\n\r\n");
	t_exchange(env, "GET /metrics/ HTTP/1.1\r\n\r\n");
	t_exchange(env, "GET /METRICS HTTP/1.1\r\n\r\n");
	t_exchange(env, "GET * HTTP/1.1\r\n\r\n");
	t_exchange(env, "GET /fail HTTP/1.1\r\n\r\n");
	/* Lenient on line ends and leading blank lines, tolerant of OWS. */
	t_exchange(env, "\r\n\nGET /status HTTP/1.1\nHost:x\nX-A:  \t v \t\n\n");
}

START_TEST(test_targets)
{
	struct t_env env;
	struct t_resp r;

	t_run(&env, c_targets);
	ck_assert_int_eq(env.n_resp, 8);
	t_expect(&env, 0, 200);
	r = t_expect(&env, 1, 200);
	ck_assert_str_eq(r.body, "{\"node_id\":1,\"role\":\"leader\"}\n");
	t_expect(&env, 2, 404);
	t_expect(&env, 3, 404);
	t_expect(&env, 4, 404);
	t_expect(&env, 5, 404);
	r = t_expect(&env, 6, 500);
	ck_assert_str_eq(r.body, "500 Internal Server Error\n");
	t_expect(&env, 7, 200);
	t_finish(&env);
}
END_TEST

/* ---- malformed requests ---- */

static const struct {
	const char *req;
	size_t len; /* 0: strlen */
	int status;
} bad_cases[] = {
	{"garbage\r\n\r\n", 0, 400},
	{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, 400}, /* TLS */
	{"GET /metrics\r\n\r\n", 0, 400},                       /* HTTP/0.9 */
	{"GET  /metrics HTTP/1.1\r\n\r\n", 0, 400},
	{"GET /metrics  HTTP/1.1\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.1 \r\n\r\n", 0, 400},
	{" GET /metrics HTTP/1.1\r\n\r\n", 0, 400},
	{"GET\t/metrics HTTP/1.1\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.10\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/a.1\r\n\r\n", 0, 400},
	{"GET /metrics http/1.1\r\n\r\n", 0, 400},
	{"G(T /metrics HTTP/1.1\r\n\r\n", 0, 400},
	{"GET /m\x7f HTTP/1.1\r\n\r\n", 0, 400},
	{"GET /m\xc3\xa9 HTTP/1.1\r\n\r\n", 0, 400},
	{"GET /me\0trics HTTP/1.1\r\n\r\n", 26, 400},
	{"GET /metrics HTTP/1.1\r\nBad Header: x\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.1\r\n\tHost: x\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n", 33, 400},
	{"GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.1\r\n: no-name\r\n\r\n", 0, 400},
	{"GET /metrics HTTP/1.1\r\r\n\r\n", 0, 400},
	{"\xff\xfe\xfd\r\n\r\n", 0, 400},
	{"\0\0\0\0", 4, 400},
	{"GET /metrics HTTP/2.0\r\n\r\n", 0, 505},
	{"GET /metrics HTTP/0.9\r\n\r\n", 0, 505},
	{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, 505}, /* h2 preface */
};

static int bad_index;

static void c_bad(struct t_env *env)
{
	const char *req = bad_cases[bad_index].req;
	size_t len = bad_cases[bad_index].len;

	t_exchange_split(env, req, len ? len : strlen(req), 0, 0);
	t_exchange(env, "GET /status HTTP/1.1\r\n\r\n"); /* still serving */
}

START_TEST(test_bad)
{
	struct t_env env;
	struct t_resp r;
	char want[64];

	bad_index = _i;
	t_run(&env, c_bad);
	ck_assert_int_eq(env.n_resp, 2);
	r = t_expect(&env, 0, bad_cases[_i].status);
	snprintf(want, sizeof want, "%d ", bad_cases[_i].status);
	ck_assert_ptr_nonnull(strstr(r.body, want));
	t_expect(&env, 1, 200);
	t_finish(&env);
}
END_TEST

/* ---- partial reads ---- */

static const char split_req[] = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				"Accept: application/json\r\n\r\n";

static void c_split(struct t_env *env)
{
	size_t n = strlen(split_req);

	/* Byte by byte, each in its own segment. */
	t_exchange_split(env, split_req, n, 1, 2000);
	/* Every two-piece cut. */
	for (size_t cut = 1; cut < n; cut++) {
		int fd = t_connect(env);
		struct rs_buf b;
		char chunk[4096];
		ssize_t r;

		if (fd < 0)
			return;
		t_send(env, fd, split_req, cut);
		usleep(1000);
		t_send(env, fd, split_req + cut, n - cut);
		rs_buf_init(&b);
		while ((r = recv(fd, chunk, sizeof chunk, 0)) > 0)
			rs_buf_append(&b, chunk, (size_t)r);
		rs_buf_append(&b, "", 1);
		if (strncmp((char *)b.data, "HTTP/1.1 200 OK\r\n", 17) != 0)
			t_fail(env, "split request not answered with 200");
		rs_buf_free(&b);
		close(fd);
	}
}

START_TEST(test_split)
{
	struct t_env env;
	struct t_resp r;

	t_run(&env, c_split);
	ck_assert_int_eq(env.n_resp, 1);
	r = t_expect(&env, 0, 200);
	ck_assert_str_eq(r.body, "{\"node_id\":1,\"role\":\"leader\"}\n");
	t_finish(&env);
}
END_TEST

/* A request whose head is exactly `size` bytes. */
static char *t_sized_request(size_t size)
{
	const char *pre = "GET /status HTTP/1.1\r\nX-Pad: ";
	const char *post = "\r\n\r\n";
	size_t fixed = strlen(pre) + strlen(post);
	char *req;

	ck_assert_uint_gt(size, fixed);
	req = malloc(size + 1);
	ck_assert_ptr_nonnull(req);
	memcpy(req, pre, strlen(pre));
	memset(req + strlen(pre), 'p', size - fixed);
	memcpy(req + size - strlen(post), post, strlen(post) + 1);
	ck_assert_uint_eq(strlen(req), size);
	return req;
}

static void c_sizes(struct t_env *env)
{
	size_t sizes[] = {HTTP_HEAD_SIZE_MAX, HTTP_HEAD_SIZE_MAX + 1, 9000,
			  60000};

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *req = t_sized_request(sizes[i]);
		t_exchange(env, req);
		free(req);
	}
	/* Oversized, arriving in pieces. */
	{
		char *req = t_sized_request(20000);
		t_exchange_split(env, req, strlen(req), 1000, 500);
		free(req);
	}
	/* No line end at all, a head that is just long. */
	{
		char *req = malloc(HTTP_HEAD_SIZE_MAX + 100);
		memset(req, 'A', HTTP_HEAD_SIZE_MAX + 99);
		req[HTTP_HEAD_SIZE_MAX + 99] = '\0';
		t_exchange(env, req);
		free(req);
	}
}

START_TEST(test_sizes)
{
	struct t_env env;

	t_run(&env, c_sizes);
	ck_assert_int_eq(env.n_resp, 6);
	t_expect(&env, 0, 200); /* exactly at the limit */
	for (int i = 1; i < 6; i++)
		t_expect(&env, i, 400);
	t_finish(&env);
}
END_TEST

/* Pipelined requests: the first is answered, then the connection closes. */
static void c_pipelined(struct t_env *env)
{
	t_exchange(env, "GET /status HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n"
			"\r\n");
}

START_TEST(test_pipelined)
{
	struct t_env env;
	struct t_resp r;

	t_run(&env, c_pipelined);
	r = t_expect(&env, 0, 200);
	ck_assert_str_eq(r.body, "{\"node_id\":1,\"role\":\"leader\"}\n");
	ck_assert_uint_eq(metrics_counter_get(env.requests), 0);
	t_finish(&env);
}
END_TEST

/* ---- timeouts and limits ---- */

static void c_timeout(struct t_env *env)
{
	int fd;

	/* A started request that never completes: 408. */
	fd = t_connect(env);
	t_send(env, fd, "GET /sta", 8);
	t_recv_all(env, fd);
	close(fd);
	/* An idle connection: closed without a word. */
	fd = t_connect(env);
	t_recv_all(env, fd);
	close(fd);
}

START_TEST(test_timeout)
{
	struct t_env env;
	struct t_resp r;

	t_run_timeout(&env, c_timeout, 100);
	ck_assert_int_eq(env.n_resp, 2);
	r = t_expect(&env, 0, 408);
	ck_assert_str_eq(r.body, "408 Request Timeout\n");
	ck_assert_uint_eq(env.resp_len[1], 0);
	t_finish(&env);
}
END_TEST

/* More than HTTP_CONN_MAX at once: the extra ones are closed on accept,
 * the others served; then the slots are free again. */
static void c_conn_max(struct t_env *env)
{
	int max = (int)HTTP_CONN_MAX, n = max + 5, ok = 0;
	int fds[HTTP_CONN_MAX + 5];

	for (int i = 0; i < n; i++)
		fds[i] = t_connect(env);
	for (int i = max; i < n; i++) {
		char c;
		if (fds[i] < 0 || recv(fds[i], &c, 1, 0) > 0)
			t_fail(env, "connection over the limit not closed");
	}
	for (int i = 0; i < max; i++)
		t_send(env, fds[i], split_req, strlen(split_req));
	for (int i = 0; i < max; i++) {
		char buf[512];
		ssize_t r = recv(fds[i], buf, sizeof buf - 1, 0);
		if (r > 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0)
			ok++;
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (ok != max)
		t_fail(env, "not every connection under the limit served");
	t_exchange(env, split_req);
}

START_TEST(test_conn_max)
{
	struct t_env env;

	t_run(&env, c_conn_max);
	ck_assert_int_eq(env.n_resp, 1);
	t_expect(&env, 0, 200);
	t_finish(&env);
}
END_TEST

/* ---- stopping ---- */

/* Stop with connections in every state: idle, half a request, and a big
 * response the client does not read (a write under way is cancelled). */
static void c_stop_busy(struct t_env *env)
{
	int idle = t_connect(env), partial = t_connect(env);
	int big = t_connect_rcvbuf(env, 4096);
	const char *req = "GET /big HTTP/1.1\r\n\r\n";

	t_send(env, partial, "GET /metr", 9);
	t_send(env, big, req, strlen(req));
	usleep(200000); /* the server is now blocked writing /big */
	t_request_stop(env);
	t_recv_all(env, idle);
	t_recv_all(env, partial);
	t_recv_all(env, big);
	close(idle);
	close(partial);
	close(big);
}

START_TEST(test_stop_busy)
{
	struct t_env env;

	t_run(&env, c_stop_busy);
	ck_assert_int_eq(env.n_resp, 3);
	ck_assert_uint_eq(env.resp_len[0], 0);
	ck_assert_uint_eq(env.resp_len[1], 0);
	ck_assert_uint_lt(env.resp_len[2], T_BIG_BYTES); /* cut short */
	t_finish(&env);
}
END_TEST

/* A route callback that stops the server: no response, no crash. */
static void c_stop_in_callback(struct t_env *env)
{
	t_exchange(env, "GET /stop HTTP/1.1\r\n\r\n");
}

START_TEST(test_stop_in_callback)
{
	struct t_env env;

	t_run(&env, c_stop_in_callback);
	ck_assert_int_eq(env.n_resp, 1);
	ck_assert_uint_eq(env.resp_len[0], 0);
	t_finish(&env);
}
END_TEST

/* Start then stop at once, nothing else. */
START_TEST(test_stop_idle)
{
	struct t_env env;

	t_start(&env, 0);
	uv_close((uv_handle_t *)&env.stop_async, NULL);
	http_stop(env.h, NULL, NULL);
	ck_assert_int_eq(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
	t_finish(&env);
}
END_TEST

/* ---- start errors ---- */

START_TEST(test_port_in_use)
{
	struct t_env env;
	struct http_config cfg = {t_routes, 1, &env, 0};
	char err[RS_ERRMSG_SIZE] = "", addr[64], want[128];
	struct http *h2 = NULL;

	t_start(&env, 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", env.port);
	ck_assert_int_eq(http_start(&h2, &env.loop, addr, &cfg, err), RS_EIO);
	ck_assert_ptr_null(h2);
	snprintf(want, sizeof want, "listen on %s: address already in use", addr);
	ck_assert_str_eq(err, want);
	uv_close((uv_handle_t *)&env.stop_async, NULL);
	http_stop(env.h, t_stopped, &env);
	ck_assert_int_eq(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(env.stopped, 1);
	t_finish(&env);
}
END_TEST

static const char *const bad_addrs[] = {
	"",           "nonsense",     "127.0.0.1",    "127.0.0.1:",
	"127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:8x", "127.0.0.1:123456",
	"::1:80",     "[::1]80",      "[::1",         "300.1.1.1:80",
	"example.com:80",
};

START_TEST(test_bad_addr)
{
	uv_loop_t loop;
	struct http_config cfg = {t_routes, 1, NULL, 0};
	char err[RS_ERRMSG_SIZE] = "";
	struct http *h = NULL;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(http_start(&h, &loop, bad_addrs[_i], &cfg, err),
			 RS_EINVAL);
	ck_assert_ptr_null(h);
	ck_assert_ptr_nonnull(strstr(err, bad_addrs[_i]));
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static const char *const good_addrs[] = {"127.0.0.1:0", "localhost:0", ":0",
					 "0.0.0.0:0", "[::1]:0"};

START_TEST(test_good_addr)
{
	uv_loop_t loop;
	struct http_config cfg = {t_routes, 1, NULL, 0};
	char err[RS_ERRMSG_SIZE] = "";
	struct http *h = NULL;
	int rv;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	rv = http_start(&h, &loop, good_addrs[_i], &cfg, err);
	if (rv == RS_EIO && good_addrs[_i][0] == '[') {
		/* No IPv6 on this host: the error is still well-formed. */
		ck_assert_ptr_nonnull(strstr(err, "listen on [::1]:0: "));
	} else {
		ck_assert_msg(rv == RS_OK, "%s", err);
		ck_assert_int_gt(http_port(h), 0);
		http_stop(h, NULL, NULL);
	}
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_bad_routes)
{
	uv_loop_t loop;
	struct http_route r[] = {{"metrics", "text/plain", route_status}};
	struct http_config cfg = {r, 1, NULL, 0};
	char err[RS_ERRMSG_SIZE] = "";
	struct http *h = NULL;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(http_start(&h, &loop, "127.0.0.1:0", &cfg, err),
			 RS_EINVAL);
	ck_assert_str_eq(err, "HTTP route 0 is incomplete");
	r[0].path = "/metrics";
	r[0].body = NULL;
	ck_assert_int_eq(http_start(&h, &loop, "127.0.0.1:0", &cfg, err),
			 RS_EINVAL);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- garbage over the wire ---- */

static uint64_t fuzz_seed;

static void c_fuzz(struct t_env *env)
{
	uint64_t state = fuzz_seed;
	struct rs_buf b;

	rs_buf_init(&b);
	for (int i = 0; i < 40; i++) {
		size_t n = testutil_rand(&state) % 12000;
		size_t piece = 1 + testutil_rand(&state) % 3000;
		b.len = 0;
		rs_buf_reserve(&b, n + 1);
		for (size_t k = 0; k < n; k++) {
			uint64_t r = testutil_rand(&state);
			/* Mostly text with line ends, some raw bytes. */
			b.data[k] = (uint8_t)(r % 7 == 0   ? '\n'
					      : r % 5 == 0 ? (r >> 8)
							   : ' ' + (r >> 8) % 95);
		}
		b.len = n;
		t_exchange_split(env, (const char *)b.data, n, piece, 0);
		if (env->n_resp == T_MAX_RESP) {
			for (int k = 0; k < env->n_resp; k++) {
				const char *s = env->resp[k];
				if (env->resp_len[k] > 0 &&
				    strncmp(s, "HTTP/1.1 4", 10) != 0 &&
				    strncmp(s, "HTTP/1.1 505", 12) != 0)
					t_fail(env, "unexpected answer to garbage");
				free(env->resp[k]);
			}
			env->n_resp = 0;
		}
	}
	rs_buf_free(&b);
	for (int k = 0; k < env->n_resp; k++)
		free(env->resp[k]);
	env->n_resp = 0;
	t_exchange(env, split_req);
}

START_TEST(test_fuzz_wire)
{
	struct t_env env;

	fuzz_seed = testutil_seed() + (uint64_t)_i * 7919u;
	t_run_timeout(&env, c_fuzz, 200);
	ck_assert_int_eq(env.n_resp, 1);
	t_expect(&env, 0, 200);
	t_finish(&env);
}
END_TEST

/* ---- the parser alone ---- */

/* Parse from a heap copy of exactly n bytes, so that ASan sees any read
 * past the end, and check the fields of a DONE.  Plain ifs, not
 * ck_assert: Check records every passing assertion with a write(2),
 * which would dominate the fuzz loops. */
static enum http_parse_result parse_exact(const char *p, size_t n,
					  struct http_request *r)
{
	char *copy = malloc(n ? n : 1);
	enum http_parse_result res;

	if (copy == NULL)
		ck_abort_msg("out of memory");
	memcpy(copy, p, n);
	res = http_parse(copy, n, r);
	if (res > HTTP_PARSE_VERSION)
		ck_abort_msg("result %d out of range", (int)res);
	if (res == HTTP_PARSE_DONE &&
	    (r->head_len > n || r->head_len > HTTP_HEAD_SIZE_MAX ||
	     r->method < copy || r->method_len == 0 || r->target_len == 0 ||
	     r->target <= r->method ||
	     r->target + r->target_len > copy + r->head_len))
		ck_abort_msg("DONE with fields outside the input");
	free(copy);
	return res;
}

START_TEST(test_parse_prefixes)
{
	const char *reqs[] = {
		"GET / HTTP/1.1\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Y:\r\n\r\n",
		"\r\nHEAD /x?y HTTP/1.0\nA: b\n\n",
	};

	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		size_t n = strlen(reqs[i]);
		struct http_request r;
		for (size_t k = 0; k < n; k++)
			if (parse_exact(reqs[i], k, &r) != HTTP_PARSE_MORE)
				ck_abort_msg("request %zu: prefix %zu not MORE", i,
					     k);
		ck_assert_int_eq(parse_exact(reqs[i], n, &r), HTTP_PARSE_DONE);
		ck_assert_uint_eq(r.head_len, n);
	}
}
END_TEST

START_TEST(test_parse_fields)
{
	const char *req = "OPTIONS /a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\nbody";
	struct http_request r;

	ck_assert_int_eq(http_parse(req, strlen(req), &r), HTTP_PARSE_DONE);
	ck_assert_uint_eq(r.method_len, 7);
	ck_assert_int_eq(memcmp(r.method, "OPTIONS", 7), 0);
	ck_assert_uint_eq(r.target_len, 8);
	ck_assert_int_eq(memcmp(r.target, "/a/b?c=d", 8), 0);
	ck_assert_uint_eq(r.head_len, strlen(req) - 4);
}
END_TEST

/* Random bytes and mutations of valid heads: any answer but a crash, a
 * read out of bounds, or DONE with fields outside the input. */
START_TEST(test_parse_fuzz)
{
	uint64_t state = testutil_seed() + (uint64_t)_i;
	const char *base = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n"
			   "Accept: text/plain\r\n\r\n";
	size_t base_len = strlen(base);
	char buf[HTTP_HEAD_SIZE_MAX + 64];
	struct http_request r;

	for (int it = 0; it < 20000; it++) {
		size_t n;
		if (it % 2 == 0) {
			n = base_len;
			memcpy(buf, base, n);
			for (int m = 0; m < 1 + it % 4; m++) {
				uint64_t x = testutil_rand(&state);
				buf[x % n] = (char)(x >> 16);
			}
			n = 1 + testutil_rand(&state) % n;
		} else {
			n = testutil_rand(&state) %
			    (it % 64 == 1 ? sizeof buf : 300);
			for (size_t k = 0; k < n; k++) {
				uint64_t x = testutil_rand(&state);
				buf[k] = x % 9 == 0 ? '\n'
					 : x % 3 == 0 ? (char)(x >> 8)
						      : (char)(' ' + (x >> 8) % 95);
			}
		}
		parse_exact(buf, n, &r);
	}
}
END_TEST

START_TEST(test_parse_limit)
{
	char *at = t_sized_request(HTTP_HEAD_SIZE_MAX);
	char *over = t_sized_request(HTTP_HEAD_SIZE_MAX + 1);
	struct http_request r;

	ck_assert_int_eq(parse_exact(at, strlen(at), &r), HTTP_PARSE_DONE);
	ck_assert_int_eq(parse_exact(over, HTTP_HEAD_SIZE_MAX, &r),
			 HTTP_PARSE_MORE);
	ck_assert_int_eq(parse_exact(over, strlen(over), &r),
			 HTTP_PARSE_TOO_LARGE);
	free(at);
	free(over);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http");
	TCase *wire = tcase_create("wire");
	TCase *parse = tcase_create("parse");

	signal(SIGPIPE, SIG_IGN);
	tcase_set_timeout(wire, 60);
	tcase_add_test(wire, test_routes);
	tcase_add_test(wire, test_methods);
	tcase_add_test(wire, test_targets);
	tcase_add_loop_test(wire, test_bad, 0,
			    sizeof bad_cases / sizeof bad_cases[0]);
	tcase_add_test(wire, test_split);
	tcase_add_test(wire, test_sizes);
	tcase_add_test(wire, test_pipelined);
	tcase_add_test(wire, test_timeout);
	tcase_add_test(wire, test_conn_max);
	tcase_add_test(wire, test_stop_busy);
	tcase_add_test(wire, test_stop_in_callback);
	tcase_add_test(wire, test_stop_idle);
	tcase_add_test(wire, test_port_in_use);
	tcase_add_loop_test(wire, test_bad_addr, 0,
			    sizeof bad_addrs / sizeof bad_addrs[0]);
	tcase_add_loop_test(wire, test_good_addr, 0,
			    sizeof good_addrs / sizeof good_addrs[0]);
	tcase_add_test(wire, test_bad_routes);
	tcase_add_loop_test(wire, test_fuzz_wire, 0, 3);
	suite_add_tcase(s, wire);

	tcase_set_timeout(parse, 60);
	tcase_add_test(parse, test_parse_prefixes);
	tcase_add_test(parse, test_parse_fields);
	tcase_add_loop_test(parse, test_parse_fuzz, 0, 4);
	tcase_add_test(parse, test_parse_limit);
	suite_add_tcase(s, parse);

	return testutil_run_suite(s);
}
