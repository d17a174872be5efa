/*
 * Tests of watches and commits end to end through the service
 * (raftstore/service.c) and the server (raftstore/server.c): a client of
 * the real client library talks over loopback TCP to the leader of a
 * three-server raft_fixture cluster running the real fsm, stores and
 * commit proxy (tests/unit/raftfix.h), all on one loop, wired as
 * coordinator/node.c wires them.
 *
 *  - a commit answers with its version, and a linearizable read sees it;
 *  - a watch streams the changes inside its range, in version order, from
 *    the version asked, history first;
 *  - a start version older than the retained history is refused with
 *    RS_ECOMPACTED and a message saying what to do;
 *  - a snapshot install ends every watch with RS_ECOMPACTED;
 *  - a cancelled watch is removed from the hub (the library sends
 *    WATCH_CANCEL on the connection it shares with other ops);
 *  - 50 watches of the library share its one connection, each gets every
 *    event once in order, and cancelling half leaves the others running
 *    and the cancelled silent, on that same one connection;
 *  - WATCH_CANCEL on a connection carrying two watches (raw frames) stops
 *    only the one named, with no final frame; a cancel of an id that never
 *    ran, or of a watch that ended already, answers RS_ENOTFOUND;
 *  - REGISTER (the internal frame) reaches the node only from a member's
 *    id at a member's IP; anything else is refused with RS_EINVAL naming
 *    why, counted, and the connection kept (and the gate's rule,
 *    service_member_check, case by case).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raftstore/client.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/proxy.h"
#include "raftstore/server.h"
#include "raftstore/service.h"
#include "raftstore/watch.h"
#include "tests/unit/raftfix.h"
#include "tests/unit/testutil.h"

#define N 3
#define REAL_MS_MAX 5000u
#define EVENTS_MAX 16

static struct raftfix c;
static struct proxy *proxy;
static struct watch_hub *hub;
static struct service *svc;
static struct server *srv;
static struct rs_client *cli;
static char server_addr[32];
static struct proxy *follower; /* server 1's, forwarding to the leader */

static char *info_json(void *ctx)
{
	(void)ctx;
	return strdup("{}");
}

/* The members the gate sees: node 2's client address is on loopback, its
 * Raft address elsewhere; gate_members_elsewhere moves both away. */
static bool gate_members_elsewhere;
static unsigned registrations; /* REGISTER frames that reached the node */

static unsigned gate_members(void *ctx, struct service_member *out,
			     unsigned max)
{
	(void)ctx;
	ck_assert_uint_ge(max, 2);
	out[0] = (struct service_member){1, "10.1.1.1:7001", ""};
	out[1] = (struct service_member){
		2, "10.1.1.2:7001",
		gate_members_elsewhere ? "10.1.1.2:7002" : "127.0.0.1:7002"};
	return 2;
}

static char *count_registration(void *ctx, const struct service_registration *r,
				int *status)
{
	(void)ctx;
	(void)r;
	(void)status;
	registrations++;
	return strdup("{}");
}

static void on_applied(void *ctx, const struct batch *b)
{
	(void)ctx;
	service_applied(svc, b);
}

static const char *no_leader_addr(void *ctx)
{
	(void)ctx;
	return NULL;
}

static void start_server_and_client(void)
{
	struct rs_client_options co = {.op_timeout_ms = REAL_MS_MAX,
				       .no_leader_pref = true};
	char errmsg[RS_ERRMSG_SIZE];
	int rv = RS_EIO;

	for (unsigned attempt = 0; attempt < 5 && rv != RS_OK; attempt++) {
		snprintf(server_addr, sizeof server_addr, "127.0.0.1:%d",
			 testutil_free_port());
		rv = server_start(&srv, &c.loop, server_addr, NULL,
				  service_handle, service_conn_closed, svc,
				  errmsg);
	}
	ck_assert_msg(rv == RS_OK, "%s", errmsg);
	co.endpoints = server_addr;
	ck_assert_msg(rs_client_create(&cli, &c.loop, &co, errmsg) == RS_OK,
		      "%s", errmsg);
}

/* service_options.term: node 5 in term 9, of cluster "0123..." only. */
static int term_answer(void *ctx, const struct wire_term_req *m,
		       uint64_t *node_id, uint64_t *term, char *errmsg)
{
	(void)ctx;
	if (memcmp(m->cluster_id.p, "0123456789abcdef", 16) != 0) {
		rs_errmsg_printf(errmsg, "TERM from node %llu of another cluster",
				 (unsigned long long)m->leader_id);
		return RS_EINVAL;
	}
	*node_id = 5;
	*term = 9;
	return RS_OK;
}

static void setup_with_history(size_t bytes)
{
	struct proxy_options po = {.leader_addr = no_leader_addr};
	struct service_options so = {.status_json = info_json,
				     .members_json = info_json,
				     .registration = count_registration,
				     .members = gate_members,
				     .term = term_answer};

	gate_members_elsewhere = false;
	registrations = 0;
	raftfix_start(&c, N);
	follower = NULL;
	proxy = raftfix_proxy_ready(&c, 0, &po);
	raftfix_proxy_recovered(&c, proxy, 1);
	hub = watch_hub_create(store_applied_version(c.reps[0].store), bytes);
	svc = service_create(&c.loop, c.reps[0].store, proxy, hub, &so);
	c.reps[0].applied_hook = on_applied;
	start_server_and_client();
}

static void setup(void)
{
	setup_with_history(0);
}

/* Just over one small batch: the hub keeps only the newest. */
static void setup_short_history(void)
{
	setup_with_history(1);
}

static const char *leader_client_addr(void *ctx)
{
	(void)ctx;
	return server_addr;
}

/* Server 1's proxy too: a follower's, forwarding to the leader's port. */
static void setup_forwarding(void)
{
	struct proxy_options po = {.leader_addr = leader_client_addr};

	setup();
	ck_assert_int_eq(proxy_create(&follower, &c.loop, raftfix_raft(&c, 1),
				      c.reps[1].store, &po),
			 RS_OK);
}

static void set_flag(void *arg)
{
	*(bool *)arg = true;
}

static bool flag_set(void *arg)
{
	return *(bool *)arg;
}

/* As the node: the client goes, the server stops, then c-raft, the
 * proxy, the service, the hub and the stores. */
static void teardown(void)
{
	bool client_closed = false, server_stopped = false;

	rs_client_close(cli, set_flag, &client_closed);
	server_stop(srv, set_flag, &server_stopped);
	ck_assert(raftfix_wait(&c, flag_set, &client_closed, REAL_MS_MAX));
	ck_assert(raftfix_wait(&c, flag_set, &server_stopped, REAL_MS_MAX));
	if (follower != NULL)
		raftfix_proxy_close(&c, follower);
	raftfix_proxy_close(&c, proxy);
	service_destroy(svc);
	ck_assert_ptr_null(watch_hub_first(hub));
	watch_hub_destroy(hub);
	raftfix_stop(&c);
}

/* ---- client operations, waited for on the fixture ---- */

struct op {
	struct rs_op op;
	unsigned calls;
};

static void op_done(struct rs_op *o)
{
	((struct op *)o->data)->calls++;
}

static bool op_answered(void *arg)
{
	return ((struct op *)arg)->calls > 0;
}

static void op_wait(struct op *o, const char *what)
{
	ck_assert_msg(raftfix_wait(&c, op_answered, o, REAL_MS_MAX),
		      "no answer to %s", what);
	ck_assert_uint_eq(o->calls, 1);
}

/* A blind write of key = val; returns its commit version. */
static uint64_t put(const char *key, const char *val)
{
	struct op o;
	struct batch b;
	uint64_t version;

	memset(&o, 0, sizeof o);
	o.op.data = &o;
	batch_init(&b);
	ck_assert_int_eq(batch_set(&b, key, strlen(key), val, strlen(val),
				   NULL),
			 RS_OK);
	ck_assert_int_eq(rs_client_commit(cli, &o.op, 0, NULL, NULL, 0, &b,
					  op_done),
			 RS_OK);
	batch_free(&b);
	op_wait(&o, "a commit");
	ck_assert_msg(o.op.result.status == RS_OK, "commit %s: %s", key,
		      o.op.result.message);
	version = o.op.result.version;
	rs_result_free(&o.op.result);
	ck_assert_uint_gt(version, 0);
	return version;
}

static uint64_t read_version(void)
{
	struct op o;
	uint64_t v;

	memset(&o, 0, sizeof o);
	o.op.data = &o;
	ck_assert_int_eq(rs_client_grv(cli, &o.op, op_done), RS_OK);
	op_wait(&o, "a read version");
	ck_assert_int_eq(o.op.result.status, RS_OK);
	v = o.op.result.version;
	rs_result_free(&o.op.result);
	return v;
}

/* A watch and every event it was given. */
struct watch_rec {
	struct rs_op op;
	unsigned events;
	uint64_t versions[EVENTS_MAX];
	char keys[EVENTS_MAX][32];
	int final_status; /* 0 while it runs */
	char final_message[256];
};

static void watch_event(struct rs_op *o)
{
	struct watch_rec *w = o->data;
	struct mutation m;
	size_t pos = 0;

	ck_assert_int_eq(w->final_status, 0);
	if (o->result.status != RS_OK) {
		w->final_status = o->result.status;
		snprintf(w->final_message, sizeof w->final_message, "%s",
			 o->result.message);
		return;
	}
	ck_assert_uint_lt(w->events, EVENTS_MAX);
	ck_assert(batch_next(&o->result.event, &pos, &m));
	w->versions[w->events] = o->result.version;
	snprintf(w->keys[w->events], sizeof w->keys[0], "%.*s", (int)m.key_len,
		 (const char *)m.key);
	ck_assert(!batch_next(&o->result.event, &pos, &m)); /* one a batch */
	w->events++;
}

static void watch_start(struct watch_rec *w, const char *begin,
			const char *end, uint64_t from_version)
{
	memset(w, 0, sizeof *w);
	w->op.data = w;
	ck_assert_int_eq(rs_client_watch(cli, &w->op, begin, strlen(begin),
					 end, strlen(end), from_version,
					 watch_event),
			 RS_OK);
}

struct events_wait {
	struct watch_rec *w;
	unsigned n;
};

static bool has_events(void *arg)
{
	struct events_wait *e = arg;
	return e->w->events >= e->n || e->w->final_status != 0;
}

static void wait_events(struct watch_rec *w, unsigned n)
{
	struct events_wait e = {w, n};

	ck_assert_msg(raftfix_wait(&c, has_events, &e, REAL_MS_MAX),
		      "%u of %u events", w->events, n);
	ck_assert_msg(w->final_status == 0, "watch ended: %s: %s",
		      rs_strerror(w->final_status), w->final_message);
}

/* End w from the client: silent (no callback); the last event's result
 * is still the caller's to free. */
static void watch_cancel(struct watch_rec *w)
{
	rs_client_watch_cancel(cli, &w->op);
	rs_result_free(&w->op.result);
}

/* Event i was the change of key at version. */
static void expect_event(const struct watch_rec *w, unsigned i,
			 uint64_t version, const char *key)
{
	ck_assert_uint_lt(i, w->events);
	ck_assert_uint_eq(w->versions[i], version);
	ck_assert_str_eq(w->keys[i], key);
}

static bool watch_ended(void *arg)
{
	return ((struct watch_rec *)arg)->final_status != 0;
}

static void wait_end(struct watch_rec *w)
{
	ck_assert(raftfix_wait(&c, watch_ended, w, REAL_MS_MAX));
	rs_result_free(&w->op.result);
}

/* ---- tests ---- */

START_TEST(test_commit_then_linearizable_read)
{
	uint64_t v = put("k", "v1");
	struct op o;

	memset(&o, 0, sizeof o);
	o.op.data = &o;
	ck_assert_int_eq(rs_client_get(cli, &o.op, "k", 1,
				       WIRE_READ_LINEARIZABLE, 0, op_done),
			 RS_OK);
	op_wait(&o, "a read");
	ck_assert_int_eq(o.op.result.status, RS_OK);
	ck_assert(o.op.result.found);
	ck_assert_uint_eq(o.op.result.found_version, v);
	ck_assert_uint_eq(o.op.result.value.len, 2);
	ck_assert_int_eq(memcmp(o.op.result.value.data, "v1", 2), 0);
	ck_assert_uint_ge(o.op.result.version, v);
	rs_result_free(&o.op.result);
	raftfix_step_until_applied(&c, raftfix_all(&c),
				   raft_last_index(raftfix_raft(&c, 0)), 10000);
	for (unsigned i = 0; i < N; i++)
		raftfix_expect(&c.reps[i], "k", "v1");
}
END_TEST

START_TEST(test_watch_streams_its_range_in_order)
{
	struct watch_rec w;
	uint64_t a, b;

	watch_start(&w, "app/", "app0", read_version() + 1);
	a = put("app/a", "1");
	put("other", "2");
	b = put("app/b", "3");
	wait_events(&w, 2);
	ck_assert_uint_eq(w.events, 2);
	expect_event(&w, 0, a, "app/a");
	expect_event(&w, 1, b, "app/b");
	watch_cancel(&w);
}
END_TEST

/* Started after the changes, from the first one's version: the history
 * comes first, then what follows. */
START_TEST(test_watch_from_the_past_replays_history)
{
	struct watch_rec w;
	uint64_t a = put("h/1", "x");
	uint64_t b = put("h/2", "y");
	uint64_t later;

	watch_start(&w, "h/", "h0", a);
	wait_events(&w, 2);
	later = put("h/3", "z");
	wait_events(&w, 3);
	expect_event(&w, 0, a, "h/1");
	expect_event(&w, 1, b, "h/2");
	expect_event(&w, 2, later, "h/3");
	watch_cancel(&w);
}
END_TEST

START_TEST(test_compacted_start_refused)
{
	struct watch_rec w;
	uint64_t first = put("k", "1");

	put("k", "2");
	put("k", "3");
	ck_assert_uint_gt(watch_hub_oldest(hub), first);
	watch_start(&w, "", "", first);
	wait_end(&w);
	ck_assert_int_eq(w.final_status, RS_ECOMPACTED);
	ck_assert_uint_eq(w.events, 0);
	ck_assert_msg(strstr(w.final_message,
			     "older than the retained history") != NULL,
		      "message: %s", w.final_message);
	ck_assert_ptr_null(watch_hub_first(hub));
}
END_TEST

/* The node replaced its state by a snapshot (the fsm's restored hook):
 * history is gone, so every watch ends and the clients re-read. */
START_TEST(test_snapshot_install_ends_watches)
{
	struct watch_rec w, again;
	uint64_t v;

	watch_start(&w, "", "", read_version() + 1);
	put("k", "1");
	wait_events(&w, 1);
	v = store_applied_version(c.reps[0].store);
	service_restored(svc, v);
	wait_end(&w);
	ck_assert_int_eq(w.final_status, RS_ECOMPACTED);
	ck_assert_msg(strstr(w.final_message, "installed a snapshot"),
		      "message: %s", w.final_message);
	ck_assert_ptr_null(watch_hub_first(hub));
	ck_assert_uint_eq(watch_hub_oldest(hub), v + 1);

	watch_start(&again, "", "", v);
	wait_end(&again);
	ck_assert_int_eq(again.final_status, RS_ECOMPACTED);
}
END_TEST

static bool hub_empty(void *arg)
{
	(void)arg;
	return watch_hub_first(hub) == NULL;
}

static bool hub_has_watch(void *arg)
{
	return !hub_empty(arg);
}

static unsigned hub_watchers(void)
{
	unsigned n = 0;

	for (struct watcher *w = watch_hub_first(hub); w != NULL; w = w->next)
		n++;
	return n;
}

#define MANY_WATCHES 50

/* The library's watches share its one pooled connection: every one gets
 * every event once, in order; cancelling half of them (WATCH_CANCEL on
 * that connection) silences those and leaves the others, and the server
 * still serves one connection. */
START_TEST(test_many_watches_share_one_connection)
{
	static struct watch_rec ws[MANY_WATCHES];
	struct service_stats st;
	uint64_t v[5];
	char val[8];

	put("warm", "up");
	ck_assert_uint_eq(server_connection_count(srv), 1);
	for (unsigned i = 0; i < MANY_WATCHES; i++)
		watch_start(&ws[i], "m/", "m0", 0);
	for (unsigned k = 0; k < 3; k++) {
		snprintf(val, sizeof val, "%u", k);
		v[k] = put("m/key", val);
	}
	for (unsigned i = 0; i < MANY_WATCHES; i++) {
		wait_events(&ws[i], 3);
		ck_assert_uint_eq(ws[i].events, 3);
		for (unsigned k = 0; k < 3; k++)
			expect_event(&ws[i], k, v[k], "m/key");
	}
	ck_assert_uint_eq(hub_watchers(), MANY_WATCHES);
	ck_assert_uint_eq(server_connection_count(srv), 1);

	for (unsigned i = 0; i < MANY_WATCHES; i += 2)
		watch_cancel(&ws[i]);
	/* The commits go after the cancels on the same connection. */
	v[3] = put("m/key", "3");
	v[4] = put("m/key", "4");
	for (unsigned i = 1; i < MANY_WATCHES; i += 2) {
		wait_events(&ws[i], 5);
		ck_assert_uint_eq(ws[i].events, 5);
		expect_event(&ws[i], 3, v[3], "m/key");
		expect_event(&ws[i], 4, v[4], "m/key");
	}
	for (unsigned i = 0; i < MANY_WATCHES; i += 2) {
		ck_assert_uint_eq(ws[i].events, 3);
		ck_assert_int_eq(ws[i].final_status, 0);
	}
	ck_assert_uint_eq(hub_watchers(), MANY_WATCHES / 2);
	service_get_stats(svc, &st);
	ck_assert_uint_eq(st.watches, MANY_WATCHES);
	ck_assert_uint_eq(st.watch_cancels, MANY_WATCHES / 2);
	ck_assert_uint_eq(server_connection_count(srv), 1);
	for (unsigned i = 1; i < MANY_WATCHES; i += 2)
		watch_cancel(&ws[i]);
	ck_assert(raftfix_wait(&c, hub_empty, NULL, REAL_MS_MAX));
	ck_assert_uint_eq(server_connection_count(srv), 1);
}
END_TEST

START_TEST(test_cancelled_watch_leaves_the_hub)
{
	struct watch_rec w;
	struct service_stats st;

	watch_start(&w, "", "", 0);
	ck_assert(raftfix_wait(&c, hub_has_watch, NULL, REAL_MS_MAX));
	service_get_stats(svc, &st);
	ck_assert_uint_eq(st.watches, 1);
	watch_cancel(&w);
	ck_assert(raftfix_wait(&c, hub_empty, NULL, REAL_MS_MAX));
	put("k", "after");
	ck_assert_uint_eq(w.events, 0);
	ck_assert_int_eq(w.final_status, 0); /* cancelled silently */
}
END_TEST

/* ---- raw frames on one connection ---- */

#define RAW_FRAMES_MAX 32

/* A plain socket to the server, read without blocking while the fixture
 * steps; every whole frame received is kept (header fields and status). */
struct raw_conn {
	int fd;
	struct rs_buf in;
	unsigned n;
	struct raw_frame {
		uint8_t type;
		uint16_t flags;
		uint64_t id;
		int status;
	} frames[RAW_FRAMES_MAX];
};

static void raw_connect(struct raw_conn *r)
{
	struct sockaddr_in sa;
	const char *colon = strrchr(server_addr, ':');

	memset(r, 0, sizeof *r);
	rs_buf_init(&r->in);
	ck_assert_ptr_nonnull(colon);
	ck_assert_int_eq(uv_ip4_addr("127.0.0.1", atoi(colon + 1), &sa), 0);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(r->fd, 0);
	ck_assert_int_eq(connect(r->fd, (struct sockaddr *)&sa, sizeof sa), 0);
}

static void raw_close(struct raw_conn *r)
{
	close(r->fd);
	rs_buf_free(&r->in);
}

static void raw_send(struct raw_conn *r, const struct rs_buf *frame)
{
	ck_assert_int_eq(send(r->fd, frame->data, frame->len, 0),
			 (ssize_t)frame->len);
}

/* Read what has arrived and parse every whole frame in it. */
static void raw_poll(struct raw_conn *r)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_frame f;
	struct wire_reader rd;
	struct wire_bytes msg;
	uint8_t chunk[4096];
	ssize_t got;
	size_t off = 0;

	while ((got = recv(r->fd, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
		ck_assert_int_eq(rs_buf_append(&r->in, chunk, (size_t)got), RS_OK);
	ck_assert_msg(got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
		      "raw connection closed or failed");
	while (wire_frame_parse(r->in.data + off, r->in.len - off, &f,
				errmsg) == RS_OK) {
		struct raw_frame *k = &r->frames[r->n++];

		ck_assert_uint_le(r->n, RAW_FRAMES_MAX);
		ck_assert_int_eq(wire_decode_response_head(&f, &rd, &k->status,
							   &msg),
				 RS_OK);
		k->type = f.type;
		k->flags = f.flags;
		k->id = f.request_id;
		off += f.total_len;
	}
	if (off > 0) {
		memmove(r->in.data, r->in.data + off, r->in.len - off);
		r->in.len -= off;
	}
}

struct raw_wait {
	struct raw_conn *r;
	unsigned n;
};

static bool raw_has_frames(void *arg)
{
	struct raw_wait *w = arg;

	raw_poll(w->r);
	return w->r->n >= w->n;
}

/* Wait until n frames in all have arrived; returns the n-th. */
static const struct raw_frame *raw_wait_frame(struct raw_conn *r, unsigned n)
{
	struct raw_wait w = {r, n};

	ck_assert_msg(raftfix_wait(&c, raw_has_frames, &w, REAL_MS_MAX),
		      "%u of %u frames", r->n, n);
	return &r->frames[n - 1];
}

static void raw_watch(struct raw_conn *r, uint64_t id, const char *begin,
		      const char *end)
{
	struct wire_watch_req m = {{(const uint8_t *)begin, (uint32_t)strlen(begin)},
				   {(const uint8_t *)end, (uint32_t)strlen(end)},
				   0};
	struct rs_buf b;

	rs_buf_init(&b);
	ck_assert_int_eq(wire_encode_watch(&b, id, &m), RS_OK);
	raw_send(r, &b);
	rs_buf_free(&b);
}

static void raw_cancel(struct raw_conn *r, uint64_t id, uint64_t watch_id)
{
	struct rs_buf b;

	rs_buf_init(&b);
	ck_assert_int_eq(wire_encode_watch_cancel(&b, id, watch_id), RS_OK);
	raw_send(r, &b);
	rs_buf_free(&b);
}

/* Frame n (1-based) answers request id of type with status (no events). */
static void raw_expect(struct raw_conn *r, unsigned n, uint8_t type,
		       uint64_t id, int status)
{
	const struct raw_frame *k = raw_wait_frame(r, n);

	ck_assert_uint_eq(k->type, type | WIRE_RESPONSE);
	ck_assert_uint_eq(k->id, id);
	ck_assert_uint_eq(k->flags, 0);
	ck_assert_int_eq(k->status, status);
}

START_TEST(test_watch_cancel_on_a_shared_connection)
{
	struct raw_conn r;
	struct service_stats st;
	const struct raw_frame *k;

	raw_connect(&r);
	raw_watch(&r, 1, "k", "l");
	raw_watch(&r, 2, "", "");
	raw_expect(&r, 1, WIRE_WATCH, 1, RS_OK);
	raw_expect(&r, 2, WIRE_WATCH, 2, RS_OK);
	raw_cancel(&r, 3, 1);
	raw_expect(&r, 3, WIRE_WATCH_CANCEL, 3, RS_OK);
	service_get_stats(svc, &st);
	ck_assert_uint_eq(st.watch_cancels, 1);

	put("k", "in both ranges");
	k = raw_wait_frame(&r, 4);
	ck_assert_uint_eq(k->id, 2);
	ck_assert_uint_eq(k->flags, WIRE_FLAG_MORE);
	/* A second change: had watch 1 still run, its event for the first
	 * would have come before this one. */
	put("k", "again");
	k = raw_wait_frame(&r, 5);
	ck_assert_uint_eq(k->id, 2);
	ck_assert_uint_eq(k->flags, WIRE_FLAG_MORE);

	/* Cancelled already, and never started: not found. */
	raw_cancel(&r, 4, 1);
	raw_expect(&r, 6, WIRE_WATCH_CANCEL, 4, RS_ENOTFOUND);
	raw_cancel(&r, 5, 77);
	raw_expect(&r, 7, WIRE_WATCH_CANCEL, 5, RS_ENOTFOUND);

	/* Ended by the server (its final frame), then cancelled. */
	service_restored(svc, store_applied_version(c.reps[0].store));
	raw_expect(&r, 8, WIRE_WATCH, 2, RS_ECOMPACTED);
	raw_cancel(&r, 6, 2);
	raw_expect(&r, 9, WIRE_WATCH_CANCEL, 6, RS_ENOTFOUND);
	ck_assert_ptr_null(watch_hub_first(hub));
	service_get_stats(svc, &st);
	ck_assert_uint_eq(st.watch_cancels, 1);
	ck_assert_uint_eq(r.n, 9);
	raw_close(&r);
}
END_TEST

/* ---- a follower's proxy forwarding to the leader ---- */

struct fwd_txn {
	struct proxy_txn t;
	unsigned calls;
	int status;
	uint64_t version;
};

static void fwd_done(struct proxy_txn *t, int status, uint64_t version,
		     const char *message)
{
	struct fwd_txn *x = t->data;

	(void)message;
	x->calls++;
	x->status = status;
	x->version = version;
}

static bool fwd_answered(void *arg)
{
	return ((struct fwd_txn *)arg)->calls > 0;
}

static void fwd_commit(struct fwd_txn *x, const char *key, const char *val)
{
	memset(x, 0, sizeof *x);
	proxy_txn_init(&x->t);
	x->t.data = x;
	ck_assert_int_eq(batch_set(&x->t.muts, key, strlen(key), val,
				   strlen(val), NULL),
			 RS_OK);
	proxy_commit(follower, &x->t, fwd_done);
}

static uint64_t leader_batches(void)
{
	struct proxy_stats st;

	proxy_get_stats(proxy, &st);
	return st.batches;
}

START_TEST(test_follower_forwards_commits_to_the_leader)
{
	struct fwd_txn x;
	struct proxy_stats st;

	fwd_commit(&x, "f", "1");
	ck_assert(raftfix_wait(&c, fwd_answered, &x, REAL_MS_MAX));
	ck_assert_int_eq(x.status, RS_OK);
	ck_assert_uint_gt(x.version, 0);
	proxy_get_stats(follower, &st);
	ck_assert_uint_eq(st.forwarded, 1);
	raftfix_step_until_applied(&c, raftfix_all(&c),
				   raft_last_index(raftfix_raft(&c, 0)), 10000);
	for (unsigned i = 0; i < N; i++)
		raftfix_expect(&c.reps[i], "f", "1");
	proxy_txn_free(&x.t);
}
END_TEST

/* The follower loses its link to the leader after the commit was sent and
 * proposed there: it cannot know the outcome (RS_EUNKNOWN), and indeed the
 * leader goes on to commit it.  Answered once, the later reply dropped. */
START_TEST(test_forwarded_commit_unknown_when_the_link_drops)
{
	uint64_t before = leader_batches();
	struct fwd_txn x;

	fwd_commit(&x, "f", "sent");
	/* Only the loop runs: the leader proposes, c-raft does not move. */
	while (leader_batches() == before)
		uv_run(&c.loop, UV_RUN_ONCE);
	ck_assert_uint_eq(x.calls, 0);
	proxy_leader_moved(follower);
	ck_assert(raftfix_wait(&c, fwd_answered, &x, REAL_MS_MAX));
	ck_assert_int_eq(x.status, RS_EUNKNOWN);

	raftfix_step_until_applied(&c, raftfix_all(&c),
				   raft_last_index(raftfix_raft(&c, 0)), 10000);
	for (unsigned i = 0; i < N; i++)
		raftfix_expect(&c.reps[i], "f", "sent");
	ck_assert_uint_eq(x.calls, 1);
	proxy_txn_free(&x.t);
}
END_TEST

struct fwd_grv {
	struct proxy_grv g;
	unsigned calls;
	int status;
};

static void fwd_grv_done(struct proxy_grv *g, int status, uint64_t version)
{
	struct fwd_grv *x = g->data;

	(void)version;
	x->calls++;
	x->status = status;
}

static bool fwd_grv_answered(void *arg)
{
	return ((struct fwd_grv *)arg)->calls > 0;
}

/* A read version asked through the follower whose link to the leader drops
 * after the request was written: nothing can have changed, so the answer
 * is a retryable RS_ENOTLEADER, never RS_EUNKNOWN. */
START_TEST(test_forwarded_grv_retryable_when_the_link_drops)
{
	struct fwd_grv x;

	memset(&x, 0, sizeof x);
	x.g.data = &x;
	proxy_grv(follower, &x.g, fwd_grv_done);
	while (!x.g.op.written && x.calls == 0)
		uv_run(&c.loop, UV_RUN_ONCE);
	ck_assert_uint_eq(x.calls, 0);
	proxy_leader_moved(follower);
	ck_assert(raftfix_wait(&c, fwd_grv_answered, &x, REAL_MS_MAX));
	ck_assert_int_eq(x.status, RS_ENOTLEADER);
	ck_assert_uint_eq(x.calls, 1);
}
END_TEST

/* Send REGISTER claiming node_id; its status and message. */
static int register_as(uint64_t node_id, char *msg, size_t msg_size)
{
	struct rs_buf body;
	struct op o;
	int status;

	rs_buf_init(&body);
	rs_buf_put_u64(&body, node_id);
	wire_put_bytes(&body, "10.1.1.9:7001", 13);
	wire_put_bytes(&body, "10.1.1.9:7002", 13);
	rs_buf_put_u32(&body, 0);
	rs_buf_put_u64(&body, 1);
	memset(&o, 0, sizeof o);
	o.op.data = &o;
	ck_assert_int_eq(rs_client_register(cli, &o.op, &body, op_done), RS_OK);
	rs_buf_free(&body);
	op_wait(&o, "a REGISTER");
	status = o.op.result.status;
	snprintf(msg, msg_size, "%s", o.op.result.message);
	rs_result_free(&o.op.result);
	return status;
}

/* TERM: the answer is what the callback sampled; its refusal is sent
 * back whole. */
START_TEST(test_term_answered)
{
	struct wire_term_req req = {{(const uint8_t *)"0123456789abcdef", 16},
				    1, 9};
	struct op o;

	memset(&o, 0, sizeof o);
	o.op.data = &o;
	ck_assert_int_eq(rs_client_term(cli, &o.op, &req, op_done), RS_OK);
	op_wait(&o, "a TERM");
	ck_assert_int_eq(o.op.result.status, RS_OK);
	ck_assert_uint_eq(o.op.result.node_id, 5);
	ck_assert_uint_eq(o.op.result.term, 9);
	rs_result_free(&o.op.result);
	rs_buf_free(&o.op.request);

	req.cluster_id.p = (const uint8_t *)"fedcba9876543210";
	memset(&o, 0, sizeof o);
	o.op.data = &o;
	ck_assert_int_eq(rs_client_term(cli, &o.op, &req, op_done), RS_OK);
	op_wait(&o, "a TERM of another cluster");
	ck_assert_int_eq(o.op.result.status, RS_EINVAL);
	ck_assert_msg(strstr(o.op.result.message, "TERM from node 1 of another "
				 "cluster") != NULL, "%s", o.op.result.message);
	rs_result_free(&o.op.result);
	rs_buf_free(&o.op.request);
}
END_TEST

START_TEST(test_register_only_from_members)
{
	struct service_stats st;
	char msg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(register_as(2, msg, sizeof msg), RS_OK);
	ck_assert_uint_eq(registrations, 1);
	ck_assert_int_eq(register_as(7, msg, sizeof msg), RS_EINVAL);
	ck_assert_msg(strstr(msg, "REGISTER refused: node 7 is not a member of "
				  "this cluster") != NULL, "%s", msg);
	gate_members_elsewhere = true;
	ck_assert_int_eq(register_as(2, msg, sizeof msg), RS_EINVAL);
	ck_assert_msg(strstr(msg, "node 2 is a member, but 127.0.0.1 is not the "
				  "IP of any member's raft or client address") !=
			      NULL, "%s", msg);
	ck_assert_uint_eq(registrations, 1);
	service_get_stats(svc, &st);
	ck_assert_uint_eq(st.internal_refused, 2);
	/* The connection was kept: the client still gets answers. */
	put("after", "refusals");
}
END_TEST

struct gate_case {
	uint64_t id;
	const char *peer; /* NULL: the peer's address is unknown */
	int want;
};

START_TEST(test_member_check_rule)
{
	static const struct service_member members[] = {
		{1, "127.0.0.1:7001", "127.0.0.1:7101"},
		{2, "localhost:7002", ""},
		{3, "10.0.0.3:7003", "192.168.1.3:7103"},
		{4, "db4.example:7004", "0.0.0.0:7104"},
	};
	static const struct gate_case cases[] = {
		{1, "127.0.0.1", RS_OK},
		{2, "127.0.0.1", RS_OK},     /* localhost is 127.0.0.1 */
		{3, "10.0.0.3", RS_OK},      /* its raft address */
		{3, "192.168.1.3", RS_OK},   /* its client address */
		{1, "192.168.1.3", RS_OK},   /* another member's IP will do */
		{9, "127.0.0.1", RS_EINVAL}, /* not a member */
		{0, "127.0.0.1", RS_EINVAL},
		{1, "10.0.0.4", RS_EINVAL},  /* no member's IP */
		{4, "0.0.0.0", RS_EINVAL},   /* a wildcard matches nothing */
		{1, NULL, RS_EINVAL},
	};
	char errmsg[RS_ERRMSG_SIZE];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct in_addr ip;
		const struct gate_case *k = &cases[i];

		if (k->peer != NULL)
			ck_assert_int_eq(uv_inet_pton(AF_INET, k->peer, &ip), 0);
		errmsg[0] = '\0';
		ck_assert_msg(service_member_check(members, 4, k->id,
						   k->peer ? &ip : NULL,
						   errmsg) == k->want,
			      "case %zu: node %llu from %s: %s", i,
			      (unsigned long long)k->id, k->peer, errmsg);
		ck_assert(k->want == RS_OK || errmsg[0] != '\0');
	}
	ck_assert_int_eq(service_member_check(members, 0, 1, &(struct in_addr){
							   htonl(INADDR_LOOPBACK)},
					      errmsg),
			 RS_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("service");
	TCase *tc = testutil_tcase(s, "commit", setup, teardown, 30);

	log_set_level(LOG_WARN);
	tcase_add_test(tc, test_commit_then_linearizable_read);
	tc = testutil_tcase(s, "watch", setup, teardown, 30);
	tcase_add_test(tc, test_watch_streams_its_range_in_order);
	tcase_add_test(tc, test_watch_from_the_past_replays_history);
	tcase_add_test(tc, test_snapshot_install_ends_watches);
	tcase_add_test(tc, test_cancelled_watch_leaves_the_hub);
	tcase_add_test(tc, test_watch_cancel_on_a_shared_connection);
	tcase_add_test(tc, test_many_watches_share_one_connection);
	tc = testutil_tcase(s, "forwarding", setup_forwarding, teardown, 30);
	tcase_add_test(tc, test_follower_forwards_commits_to_the_leader);
	tcase_add_test(tc, test_forwarded_commit_unknown_when_the_link_drops);
	tcase_add_test(tc, test_forwarded_grv_retryable_when_the_link_drops);
	tc = testutil_tcase(s, "history", setup_short_history, teardown, 30);
	tcase_add_test(tc, test_compacted_start_refused);
	tc = testutil_tcase(s, "gate", setup, teardown, 30);
	tcase_add_test(tc, test_register_only_from_members);
	tcase_add_test(tc, test_term_answered);
	tc = testutil_tcase(s, "gate_rule", NULL, NULL, 10);
	tcase_add_test(tc, test_member_check_rule);
	return testutil_run_suite(s);
}
