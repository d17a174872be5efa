/*
 * Tests of the client listener's limits (raftstore/server.c) on a bare
 * loop: a handler that answers every request with status 0, and plain
 * non-blocking sockets as clients, the loop pumped while they wait.
 *
 *  - over max_connections a connection gets one RS_EUNAVAILABLE frame
 *    (request id 0, "too many client connections (N)") and is closed,
 *    counted, not served; closing a served one lets the next in;
 *  - a connection stuck in a partial frame gets one RS_ETIMEOUT frame and
 *    is closed after frame_timeout_ms; one idle between frames is kept;
 *  - the timeout runs from each frame's first byte: a stream of frames
 *    each finished in time is never closed, however long it lasts;
 *  - a peer that stops reading cannot keep a connection open once it is to
 *    be closed: its unsent replies are dropped one timeout later;
 *  - a stop with refused and stuck connections still open closes cleanly
 *    (uv_loop_close returns 0);
 *  - the replies to the frames of one read leave in one write.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/server.h"
#include "raftstore/wire.h"
#include "tests/unit/testutil.h"

#define WAIT_MS_MAX 3000u

static uv_loop_t loop;
static struct server *srv;
static struct metrics *ms;
static int port;
static unsigned requests; /* frames the handler answered */

static void answer_all(void *ctx, struct server_conn *conn,
		       const struct wire_frame *f)
{
	(void)ctx;
	requests++;
	server_reply_status(conn, f->request_id, f->type, RS_OK, NULL);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pump(void)
{
	uv_run(&loop, UV_RUN_NOWAIT);
	usleep(1000);
}

static void pump_ms(unsigned ms_total)
{
	uint64_t end = now_ms() + ms_total;
	while (now_ms() < end)
		pump();
}

static void start(unsigned frame_timeout_ms, unsigned max_connections)
{
	struct server_options o = {.frame_timeout_ms = frame_timeout_ms,
				   .max_connections = max_connections};
	char addr[32], errmsg[RS_ERRMSG_SIZE];
	int rv = RS_EIO;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(metrics_new(&ms), RS_OK);
	requests = 0;
	for (unsigned attempt = 0; attempt < 5 && rv != RS_OK; attempt++) {
		port = testutil_free_port();
		snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
		rv = server_start(&srv, &loop, addr, &o, answer_all, NULL, NULL,
				  errmsg);
	}
	ck_assert_msg(rv == RS_OK, "%s", errmsg);
	ck_assert_int_eq(server_metrics_register(srv, ms), RS_OK);
}

static void set_flag(void *arg)
{
	*(bool *)arg = true;
}

static void teardown(void)
{
	bool stopped = false;
	uint64_t end = now_ms() + WAIT_MS_MAX;

	server_stop(srv, set_flag, &stopped);
	while (!stopped && now_ms() < end)
		pump();
	ck_assert(stopped);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	metrics_free(ms);
}

/* rcvbuf_bytes: 0 for the default receive buffer. */
static int sock_connect_rcvbuf(int rcvbuf_bytes)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	if (rcvbuf_bytes > 0)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF,
					    &rcvbuf_bytes, sizeof rcvbuf_bytes),
				 0);
	/* Loopback: the kernel completes it before the server accepts. */
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static int sock_connect(void)
{
	return sock_connect_rcvbuf(0);
}

static void sock_send(int fd, const void *p, size_t len)
{
	ck_assert_int_eq(send(fd, p, len, 0), (ssize_t)len);
}

/* One whole request frame of type STATUS with this id. */
static void request_frame(struct rs_buf *out, uint64_t id)
{
	rs_buf_init(out);
	ck_assert_int_eq(wire_encode_simple(out, id, WIRE_STATUS), RS_OK);
}

/* Pump until n bytes arrived on fd (no more are read). */
static void recv_exact(int fd, uint8_t *p, size_t n)
{
	uint64_t end = now_ms() + WAIT_MS_MAX;
	size_t have = 0;

	while (have < n) {
		ssize_t got = recv(fd, p + have, n - have, MSG_DONTWAIT);
		ck_assert_msg(got != 0, "connection closed before a frame");
		if (got > 0)
			have += (size_t)got;
		ck_assert_msg(now_ms() < end, "no frame within %u ms", WAIT_MS_MAX);
		if (have < n)
			pump();
	}
}

/* Pump until the next whole frame arrives on fd; its id, status and
 * message. */
static void read_reply(int fd, uint64_t *id, int *status, char *msg,
		       size_t msg_size)
{
	uint8_t buf[4096];
	uint32_t len;
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_frame f;
	struct wire_reader r;
	struct wire_bytes m;

	recv_exact(fd, buf, 4);
	len = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
	      (uint32_t)buf[3] << 24;
	ck_assert_uint_le(len, sizeof buf - 4);
	recv_exact(fd, buf + 4, len);
	ck_assert_msg(wire_frame_parse(buf, 4 + len, &f, errmsg) == RS_OK, "%s",
		      errmsg);
	ck_assert_int_eq(wire_decode_response_head(&f, &r, status, &m), RS_OK);
	*id = f.request_id;
	snprintf(msg, msg_size, "%.*s", (int)m.len, (const char *)m.p);
}

/* Pump until fd reads end of stream (or a reset). */
static void wait_closed(int fd)
{
	uint64_t end = now_ms() + WAIT_MS_MAX;
	uint8_t b;

	for (;;) {
		ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return;
		ck_assert_msg(n < 0, "data after the last frame");
		ck_assert_msg(now_ms() < end, "still open after %u ms", WAIT_MS_MAX);
		pump();
	}
}

/* Send one request on fd and check it is answered with status 0. */
static void expect_served(int fd, uint64_t id)
{
	struct rs_buf req;
	uint64_t got;
	int status;
	char msg[128];

	request_frame(&req, id);
	sock_send(fd, req.data, req.len);
	rs_buf_free(&req);
	read_reply(fd, &got, &status, msg, sizeof msg);
	ck_assert_uint_eq(got, id);
	ck_assert_int_eq(status, RS_OK);
}

/* The next frame on fd is a refusal (id 0) with this status and message
 * prefix, and the server closes the connection after it. */
static void expect_refused(int fd, int want_status, const char *want_msg)
{
	uint64_t id;
	int status;
	char msg[256];

	read_reply(fd, &id, &status, msg, sizeof msg);
	ck_assert_uint_eq(id, 0);
	ck_assert_int_eq(status, want_status);
	ck_assert_msg(strncmp(msg, want_msg, strlen(want_msg)) == 0,
		      "message '%s', wanted '%s...'", msg, want_msg);
	wait_closed(fd);
}

/* A counter's value, as /metrics renders it. */
static uint64_t counter(const char *name)
{
	struct rs_buf text;
	char pattern[128];
	const char *line;
	uint64_t v;

	rs_buf_init(&text);
	ck_assert_int_eq(metrics_render_prometheus(ms, &text), RS_OK);
	ck_assert_int_eq(rs_buf_append(&text, "", 1), RS_OK);
	snprintf(pattern, sizeof pattern, "\n%s ", name);
	line = strstr((const char *)text.data, pattern);
	ck_assert_msg(line != NULL, "%s not rendered", name);
	v = strtoull(line + strlen(pattern), NULL, 10);
	rs_buf_free(&text);
	return v;
}

static void wait_count(unsigned want)
{
	uint64_t end = now_ms() + WAIT_MS_MAX;
	while (server_connection_count(srv) != want) {
		ck_assert_msg(now_ms() < end, "%u connections, wanted %u",
			      server_connection_count(srv), want);
		pump();
	}
}

START_TEST(test_replies_of_one_read_share_a_write)
{
	enum { N = 32 };
	struct rs_buf reqs, one;
	uint64_t writes0, replies0, writes, replies, id;
	int fd, status;
	char msg[64];

	start(1000, 16);
	fd = sock_connect();
	expect_served(fd, 1);
	server_write_counts(srv, &writes0, &replies0);
	rs_buf_init(&reqs);
	for (uint64_t i = 0; i < N; i++) {
		request_frame(&one, 100 + i);
		ck_assert_int_eq(rs_buf_append(&reqs, one.data, one.len), RS_OK);
		rs_buf_free(&one);
	}
	sock_send(fd, reqs.data, reqs.len); /* one segment on loopback */
	rs_buf_free(&reqs);
	for (uint64_t i = 0; i < N; i++) {
		read_reply(fd, &id, &status, msg, sizeof msg);
		ck_assert_uint_eq(id, 100 + i);
		ck_assert_int_eq(status, RS_OK);
	}
	server_write_counts(srv, &writes, &replies);
	ck_assert_uint_eq(replies - replies0, N);
	ck_assert_uint_eq(writes - writes0, 1);
	close(fd);
}
END_TEST

START_TEST(test_cap_refuses_then_admits)
{
	int a, b, over, next;

	start(0, 2);
	a = sock_connect();
	b = sock_connect();
	expect_served(a, 1);
	expect_served(b, 2);
	over = sock_connect();
	expect_refused(over, RS_EUNAVAILABLE, "too many client connections (2)");
	ck_assert_uint_eq(server_connection_count(srv), 2);
	ck_assert_uint_eq(counter("raftstore_client_connections_refused_total"),
			  1);
	close(over);
	close(a);
	wait_count(1);
	next = sock_connect();
	expect_served(next, 3);
	expect_served(b, 4);
	ck_assert_uint_eq(requests, 4);
	ck_assert_uint_eq(counter("raftstore_client_connections_refused_total"),
			  1);
	close(b);
	close(next);
}
END_TEST

/* A refused connection's request is dropped unread, never handled. */
START_TEST(test_refused_request_not_handled)
{
	struct rs_buf req;
	int a, over;

	start(0, 1);
	a = sock_connect();
	expect_served(a, 1);
	over = sock_connect();
	request_frame(&req, 9);
	sock_send(over, req.data, req.len);
	rs_buf_free(&req);
	expect_refused(over, RS_EUNAVAILABLE, "too many client connections (1)");
	ck_assert_uint_eq(requests, 1);
	close(over);
	close(a);
}
END_TEST

START_TEST(test_partial_frame_closed_idle_kept)
{
	struct rs_buf req;
	uint64_t t0;
	int idle, stuck;

	start(100, 0);
	idle = sock_connect();
	stuck = sock_connect();
	expect_served(idle, 1);
	request_frame(&req, 2);
	sock_send(stuck, req.data, 5);
	t0 = now_ms();
	expect_refused(stuck, RS_ETIMEOUT,
		       "no complete frame within 100 ms (5 bytes of one received)");
	ck_assert_uint_ge(now_ms() - t0, 90); /* loop time runs a little behind */
	ck_assert_uint_eq(counter("raftstore_client_frame_timeouts_total"), 1);
	pump_ms(300); /* three timeouts idle between frames */
	expect_served(idle, 3);
	ck_assert_uint_eq(server_connection_count(srv), 1);
	ck_assert_uint_eq(counter("raftstore_client_frame_timeouts_total"), 1);
	rs_buf_free(&req);
	close(stuck);
	close(idle);
}
END_TEST

/* Frames arriving in pieces, each piece of a frame within the timeout of
 * that frame's first byte, for longer than one timeout in all. */
START_TEST(test_timeout_restarts_with_each_frame)
{
	struct rs_buf stream, one;
	uint64_t id;
	int status, fd;
	char msg[64];

	start(300, 0);
	fd = sock_connect();
	rs_buf_init(&stream);
	for (uint64_t i = 1; i <= 3; i++) {
		request_frame(&one, i);
		rs_buf_append(&stream, one.data, one.len);
		rs_buf_free(&one);
	}
	/* frame 1 and 3 bytes of frame 2; then the rest of 2 and 3 bytes of
	 * 3; then the rest: 400 ms in all, no frame open 300 ms. */
	sock_send(fd, stream.data, WIRE_HEADER_SIZE + 3);
	pump_ms(200);
	sock_send(fd, stream.data + WIRE_HEADER_SIZE + 3, WIRE_HEADER_SIZE);
	pump_ms(200);
	sock_send(fd, stream.data + 2 * WIRE_HEADER_SIZE + 3,
		  stream.len - 2 * WIRE_HEADER_SIZE - 3);
	for (uint64_t i = 1; i <= 3; i++) {
		read_reply(fd, &id, &status, msg, sizeof msg);
		ck_assert_uint_eq(id, i);
		ck_assert_int_eq(status, RS_OK);
	}
	ck_assert_uint_eq(counter("raftstore_client_frame_timeouts_total"), 0);
	rs_buf_free(&stream);
	close(fd);
}
END_TEST

/* The peer sends requests and never reads: the replies back up in the
 * server, then it leaves a partial frame.  The closing reply can never be
 * flushed; the connection still goes. */
START_TEST(test_unread_replies_do_not_hold_a_closing_connection)
{
	/* 28-byte replies: about 5.6 MB, past what the socket buffers of
	 * both ends hold (the client's receive buffer is made small). */
	const unsigned n_requests = 200000;
	struct rs_buf req, many;
	size_t sent = 0;
	int fd;

	start(200, 0);
	fd = sock_connect_rcvbuf(4096);
	request_frame(&req, 1);
	rs_buf_init(&many);
	for (unsigned i = 0; i < n_requests; i++)
		ck_assert_int_eq(rs_buf_append(&many, req.data, req.len), RS_OK);
	while (sent < many.len) {
		ssize_t n = send(fd, many.data + sent, many.len - sent,
				 MSG_DONTWAIT);
		ck_assert(n > 0 || errno == EAGAIN || errno == EWOULDBLOCK);
		if (n > 0)
			sent += (size_t)n;
		pump();
	}
	while (requests < n_requests)
		pump();
	sock_send(fd, req.data, 5); /* a partial frame: closed in 200 ms */
	wait_count(0);
	ck_assert_uint_eq(counter("raftstore_client_frame_timeouts_total"), 1);
	rs_buf_free(&many);
	rs_buf_free(&req);
	close(fd);
}
END_TEST

/* Stopping with a refused connection and a stuck one still open. */
START_TEST(test_stop_with_refused_and_stuck)
{
	int a, over;

	start(10000, 1);
	a = sock_connect();
	sock_send(a, "\x10\x00", 2);
	wait_count(1);
	pump_ms(20);
	over = sock_connect();
	pump_ms(20);
	ck_assert_uint_eq(server_connection_count(srv), 1);
	teardown();
	close(a);
	close(over);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("server");
	TCase *tc = testutil_tcase(s, "limits", NULL, teardown, 30);

	tcase_add_test(tc, test_cap_refuses_then_admits);
	tcase_add_test(tc, test_replies_of_one_read_share_a_write);
	tcase_add_test(tc, test_refused_request_not_handled);
	tcase_add_test(tc, test_partial_frame_closed_idle_kept);
	tcase_add_test(tc, test_timeout_restarts_with_each_frame);
	tcase_add_test(tc, test_unread_replies_do_not_hold_a_closing_connection);
	tc = testutil_tcase(s, "stop", NULL, NULL, 30);
	tcase_add_test(tc, test_stop_with_refused_and_stuck);
	return testutil_run_suite(s);
}
