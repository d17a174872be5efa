/* Tests for client: every behaviour against an in-process fake server on
 * the test's loop (127.0.0.1, port 0) that parses frames with the real
 * wire code and answers from a tiny table, or from a per-test script:
 * scripted errors, silence, a dropped connection, garbage, a redirect.
 * The blocking wrapper is tested against the fake on its own thread. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/client.h"
#include "raftstore/client_internal.h"
#include "raftstore/lib/batch.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/json.h"
#include "raftstore/wire.h"
#include "tests/unit/testutil.h"

/* ---- the fake server ---- */

enum fake_action { FAKE_REPLY, FAKE_CLOSE };

struct fake;
/* Append the replies to one request to out (none: stay silent). */
typedef int (*fake_handler)(struct fake *fk, const struct wire_frame *f,
			    struct rs_buf *out);

struct fake_kv {
	char key[32];
	char val[32];
	uint64_t version;
};

#define FAKE_WATCHES_MAX 64

struct fake_conn {
	struct fake *fk;
	uv_tcp_t tcp;
	struct rs_buf in;
	bool closing;
	struct fake_conn *next;
};

struct fake {
	uv_loop_t *loop;
	uv_tcp_t listener;
	char addr[32];
	fake_handler handler;
	struct fake_conn *conns;
	int n_open; /* handles not yet closed */
	int n_accepted;
	int n_eof; /* connections the client closed */
	int n_req[16]; /* by request type */
	char leader[32]; /* STATUS leader_client_addr */
	char status_doc[256]; /* else STATUS answers this text as it is */
	bool reverse;    /* answer the frames of one read in reverse order */
	int fail_count;  /* answer this many requests with fail_status */
	int fail_status;
	uint8_t fail_type; /* of this type only (0: all but STATUS) */
	int watch_end;     /* status that ends a watch; 0 leaves it open */
	bool watch_drop;   /* close the connection after the watch events */
	bool no_read;      /* accept, then never read (tiny window) */
	int script;        /* per-test state */
	uint64_t watch_ids[FAKE_WATCHES_MAX]; /* WATCH request ids seen */
	int n_watch_ids;
	struct fake_kv kv[128];
	int n_kv; /* sorted by key */
	uint64_t version;
};

static void fake_handle_closed(uv_handle_t *h)
{
	struct fake *fk = h->data;
	fk->n_open--;
}

static void fake_conn_closed(uv_handle_t *h)
{
	struct fake_conn *fc = h->data;
	struct fake *fk = fc->fk;
	struct fake_conn **pp = &fk->conns;

	while (*pp != fc)
		pp = &(*pp)->next;
	*pp = fc->next;
	rs_buf_free(&fc->in);
	free(fc);
	fk->n_open--;
}

static void fake_conn_close(struct fake_conn *fc)
{
	if (fc->closing)
		return;
	fc->closing = true;
	uv_close((uv_handle_t *)&fc->tcp, fake_conn_closed);
}

struct fake_write {
	uv_write_t req;
	struct rs_buf buf;
};

static void fake_write_done(uv_write_t *req, int status)
{
	struct fake_write *w = (struct fake_write *)req;
	(void)status;
	rs_buf_free(&w->buf);
	free(w);
}

/* Takes the bytes of *buf. */
static void fake_write(struct fake_conn *fc, struct rs_buf *buf)
{
	struct fake_write *w;
	uv_buf_t b;

	if (buf->len == 0 || fc->closing) {
		rs_buf_free(buf);
		return;
	}
	w = calloc(1, sizeof *w);
	ck_assert_ptr_nonnull(w);
	w->buf = *buf;
	rs_buf_init(buf);
	b = uv_buf_init((char *)w->buf.data, (unsigned)w->buf.len);
	ck_assert_int_eq(uv_write(&w->req, (uv_stream_t *)&fc->tcp, &b, 1,
				  fake_write_done), 0);
}

/* The store's key order, for a NUL-terminated key and a wire one. */
static int fake_cmp(const char *key, struct wire_bytes b)
{
	return bytes_compare(key, strlen(key), b.p, b.len);
}

static struct fake_kv *fake_find(struct fake *fk, const uint8_t *k,
				 uint32_t len)
{
	for (int i = 0; i < fk->n_kv; i++)
		if (strlen(fk->kv[i].key) == len &&
		    memcmp(fk->kv[i].key, k, len) == 0)
			return &fk->kv[i];
	return NULL;
}

static void fake_set(struct fake *fk, const uint8_t *k, uint32_t klen,
		     const uint8_t *v, uint32_t vlen)
{
	struct fake_kv *kv = fake_find(fk, k, klen);
	int i;

	ck_assert_uint_lt(klen, sizeof kv->key);
	ck_assert_uint_lt(vlen, sizeof kv->val);
	if (kv == NULL) {
		ck_assert_int_lt(fk->n_kv, 128);
		struct wire_bytes kb = {k, klen};
		for (i = fk->n_kv; i > 0 && fake_cmp(fk->kv[i - 1].key, kb) > 0;
		     i--)
			fk->kv[i] = fk->kv[i - 1];
		kv = &fk->kv[i];
		memset(kv, 0, sizeof *kv);
		memcpy(kv->key, k, klen);
		fk->n_kv++;
	}
	memset(kv->val, 0, sizeof kv->val);
	memcpy(kv->val, v, vlen);
	kv->version = fk->version;
}

static void fake_get(struct fake *fk, const struct wire_frame *f,
		     struct rs_buf *out)
{
	struct wire_get_req m;
	struct fake_kv *kv;
	size_t st;

	ck_assert_int_eq(wire_decode_get(f, &m, NULL), RS_OK);
	kv = fake_find(fk, m.key.p, m.key.len);
	st = wire_frame_begin(out, WIRE_GET | WIRE_RESPONSE, 0, f->request_id);
	wire_put_status(out, RS_OK, NULL);
	wire_put_u8(out, m.mode);
	wire_put_u64(out, fk->version);
	wire_put_u8(out, kv != NULL);
	wire_put_u64(out, kv ? kv->version : 0);
	wire_put_bytes(out, kv ? kv->val : "", kv ? strlen(kv->val) : 0);
	ck_assert_int_eq(wire_frame_end(out, st), RS_OK);
}

static bool fake_in_range(const char *key, struct wire_bytes b,
			  struct wire_bytes e)
{
	return fake_cmp(key, b) >= 0 && (e.len == 0 || fake_cmp(key, e) < 0);
}

static void fake_range(struct fake *fk, const struct wire_frame *f,
		       struct rs_buf *out)
{
	struct wire_range_req m;
	uint32_t limit, n = 0, total = 0;
	size_t st, count_at;

	ck_assert_int_eq(wire_decode_range(f, &m, NULL), RS_OK);
	limit = m.limit ? m.limit : WIRE_RANGE_LIMIT_DEFAULT;
	for (int i = 0; i < fk->n_kv; i++)
		total += fake_in_range(fk->kv[i].key, m.begin, m.end);
	st = wire_frame_begin(out, WIRE_RANGE | WIRE_RESPONSE, 0, f->request_id);
	wire_put_status(out, RS_OK, NULL);
	wire_put_u8(out, m.mode);
	wire_put_u64(out, fk->version);
	wire_put_u8(out, total > limit);
	count_at = out->len;
	wire_put_u32(out, 0);
	for (int i = 0; i < fk->n_kv && n < limit; i++) {
		struct fake_kv *kv = &fk->kv[i];
		if (!fake_in_range(kv->key, m.begin, m.end))
			continue;
		wire_put_bytes(out, kv->key, strlen(kv->key));
		wire_put_bytes(out, kv->val, strlen(kv->val));
		wire_put_u64(out, kv->version);
		n++;
	}
	rs_put_u32(out->data + count_at, n);
	ck_assert_int_eq(wire_frame_end(out, st), RS_OK);
}

static void fake_commit(struct fake *fk, const struct wire_frame *f,
			struct rs_buf *out)
{
	struct wire_commit_req m;
	struct batch b;
	struct mutation mu;
	size_t pos = 0, st;

	ck_assert_int_eq(wire_decode_commit(f, &m, NULL), RS_OK);
	batch_init(&b);
	ck_assert_int_eq(batch_load_body(&b, m.mutations.p, m.mutations.len),
			 RS_OK);
	fk->version++;
	while (batch_next(&b, &pos, &mu))
		if (mu.type == MUT_SET)
			fake_set(fk, mu.key, mu.key_len, mu.val, mu.val_len);
	batch_free(&b);
	st = wire_frame_begin(out, WIRE_COMMIT | WIRE_RESPONSE, 0,
			      f->request_id);
	wire_put_status(out, RS_OK, NULL);
	wire_put_u64(out, fk->version);
	ck_assert_int_eq(wire_frame_end(out, st), RS_OK);
}

static void fake_json(const struct wire_frame *f, const char *json,
		      struct rs_buf *out)
{
	size_t st = wire_frame_begin(out, f->type | WIRE_RESPONSE, 0,
				     f->request_id);
	wire_put_status(out, RS_OK, NULL);
	wire_put_bytes(out, json, strlen(json));
	ck_assert_int_eq(wire_frame_end(out, st), RS_OK);
}

/* The node status: this node and the leader it names. */
static void fake_status(struct fake *fk, const struct wire_frame *f,
			struct rs_buf *out)
{
	json_t *doc;
	char *text;

	if (fk->status_doc[0] != '\0') {
		fake_json(f, fk->status_doc, out);
		return;
	}
	doc = json_object();
	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(rs_json_set_str(doc, "node", fk->addr), RS_OK);
	ck_assert_int_eq(rs_json_set_str(doc, "leader_client_addr", fk->leader),
			 RS_OK);
	text = rs_json_dump(doc, RS_JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	fake_json(f, text, out);
	free(text);
	json_decref(doc);
}

static void fake_event(const struct wire_frame *f, int status, uint64_t v,
		       const char *val, struct rs_buf *out)
{
	size_t st = wire_frame_begin(out, WIRE_WATCH | WIRE_RESPONSE,
				     WIRE_FLAG_MORE, f->request_id);
	struct batch b;

	wire_put_status(out, status, "watch compacted");
	if (status == RS_OK) {
		batch_init(&b);
		ck_assert_int_eq(batch_set(&b, "w", 1, val, strlen(val), NULL),
				 RS_OK);
		wire_put_u64(out, v);
		wire_put_bytes(out, b.body.data, b.body.len);
		batch_free(&b);
	}
	ck_assert_int_eq(wire_frame_end(out, st), RS_OK);
}

/* Started, two events, and the end if the test asks for one. */
static void fake_watch(struct fake *fk, const struct wire_frame *f,
		       struct rs_buf *out)
{
	struct wire_watch_req m;

	ck_assert_int_eq(wire_decode_watch(f, &m, NULL), RS_OK);
	if (fk->n_watch_ids < FAKE_WATCHES_MAX)
		fk->watch_ids[fk->n_watch_ids++] = f->request_id;
	ck_assert_int_eq(wire_encode_status(out, WIRE_WATCH, f->request_id,
					    RS_OK, NULL), RS_OK);
	fake_event(f, RS_OK, m.from_version, "1", out);
	fake_event(f, RS_OK, m.from_version + 1, "2", out);
	if (fk->watch_end != RS_OK)
		fake_event(f, fk->watch_end, 0, NULL, out);
}

/* The fake sends a watch's events at once, so there is nothing to stop:
 * it answers "cancelled" (ok), or not found for an id it never saw. */
static void fake_watch_cancel(struct fake *fk, const struct wire_frame *f,
			      struct rs_buf *out)
{
	uint64_t watch_id;
	bool known = false;

	ck_assert_int_eq(wire_decode_watch_cancel(f, &watch_id, NULL), RS_OK);
	for (int i = 0; i < fk->n_watch_ids; i++)
		known = known || fk->watch_ids[i] == watch_id;
	ck_assert_int_eq(wire_encode_status(out, WIRE_WATCH_CANCEL,
					    f->request_id,
					    known ? RS_OK : RS_ENOTFOUND,
					    known ? NULL : "no such watch"),
			 RS_OK);
}

static int fake_answer(struct fake *fk, const struct wire_frame *f,
		       struct rs_buf *out)
{
	size_t st;

	if (fk->fail_count > 0 && f->type != WIRE_STATUS &&
	    (fk->fail_type == 0 || fk->fail_type == f->type)) {
		fk->fail_count--;
		ck_assert_int_eq(wire_encode_status(out, f->type, f->request_id,
						    fk->fail_status,
						    "scripted failure"), RS_OK);
		return FAKE_REPLY;
	}
	switch (f->type) {
	case WIRE_GET: fake_get(fk, f, out); break;
	case WIRE_RANGE: fake_range(fk, f, out); break;
	case WIRE_COMMIT: fake_commit(fk, f, out); break;
	case WIRE_WATCH:
		fake_watch(fk, f, out);
		return fk->watch_drop ? FAKE_CLOSE : FAKE_REPLY;
	case WIRE_GRV:
		st = wire_frame_begin(out, WIRE_GRV | WIRE_RESPONSE, 0,
				      f->request_id);
		wire_put_status(out, RS_OK, NULL);
		wire_put_u64(out, fk->version);
		ck_assert_int_eq(wire_frame_end(out, st), RS_OK);
		break;
	case WIRE_STATUS: fake_status(fk, f, out); break;
	case WIRE_MEMBERS: fake_json(f, "[{\"id\": 1}]", out); break;
	case WIRE_WATCH_CANCEL: fake_watch_cancel(fk, f, out); break;
	default: ck_abort_msg("unexpected request type %u", f->type);
	}
	return FAKE_REPLY;
}

#define FAKE_BATCH_MAX 256

/* Answer every whole frame received; returns false if the conn closed. */
static bool fake_serve(struct fake_conn *fc)
{
	struct fake *fk = fc->fk;
	struct rs_buf outs[FAKE_BATCH_MAX];
	struct wire_frame f;
	size_t off = 0;
	int n = 0, action = FAKE_REPLY;

	while (n < FAKE_BATCH_MAX &&
	       wire_frame_parse(fc->in.data + off, fc->in.len - off, &f,
				NULL) == RS_OK) {
		off += f.total_len;
		fk->n_req[f.type & 0x0f]++;
		rs_buf_init(&outs[n]);
		action = fk->handler(fk, &f, &outs[n++]);
		if (action == FAKE_CLOSE)
			break;
	}
	memmove(fc->in.data, fc->in.data + off, fc->in.len - off);
	fc->in.len -= off;
	for (int i = 0; i < n; i++)
		fake_write(fc, &outs[fk->reverse ? n - 1 - i : i]);
	if (action == FAKE_CLOSE)
		fake_conn_close(fc);
	return action != FAKE_CLOSE;
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct fake_conn *fc = h->data;
	(void)suggested;
	ck_assert_int_eq(rs_buf_reserve(&fc->in, 65536), RS_OK);
	*buf = uv_buf_init((char *)fc->in.data + fc->in.len,
			   (unsigned)(fc->in.cap - fc->in.len));
}

static void fake_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fake_conn *fc = s->data;
	(void)buf;
	if (nread < 0) {
		fc->fk->n_eof++;
		fake_conn_close(fc);
		return;
	}
	fc->in.len += (size_t)nread;
	fake_serve(fc);
}

static void fake_accept(uv_stream_t *server, int status)
{
	struct fake *fk = server->data;
	struct fake_conn *fc = calloc(1, sizeof *fc);

	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(fc);
	fc->fk = fk;
	rs_buf_init(&fc->in);
	ck_assert_int_eq(uv_tcp_init(fk->loop, &fc->tcp), 0);
	fc->tcp.data = fc;
	fk->n_open++;
	fc->next = fk->conns;
	fk->conns = fc;
	ck_assert_int_eq(uv_accept(server, (uv_stream_t *)&fc->tcp), 0);
	fk->n_accepted++;
	if (fk->no_read)
		return;
	ck_assert_int_eq(uv_read_start((uv_stream_t *)&fc->tcp, fake_alloc,
				       fake_read), 0);
}

static int bound_port(uv_tcp_t *t)
{
	struct sockaddr_in sa;
	int len = sizeof sa;

	ck_assert_int_eq(uv_tcp_getsockname(t, (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin_port);
}

static void fake_start_opt(struct fake *fk, uv_loop_t *loop, bool no_read)
{
	struct sockaddr_in sa;
	int small = 4096;

	memset(fk, 0, sizeof *fk);
	fk->no_read = no_read;
	fk->loop = loop;
	fk->handler = fake_answer;
	ck_assert_int_eq(uv_tcp_init(loop, &fk->listener), 0);
	fk->listener.data = fk;
	fk->n_open = 1;
	ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
	ck_assert_int_eq(uv_tcp_bind(&fk->listener, (struct sockaddr *)&sa, 0), 0);
	/* Accepted sockets inherit the window: a client's large write then
	 * stays pending. */
	if (no_read)
		ck_assert_int_eq(uv_recv_buffer_size((uv_handle_t *)&fk->listener,
						     &small), 0);
	ck_assert_int_eq(uv_listen((uv_stream_t *)&fk->listener, 64,
				   fake_accept), 0);
	snprintf(fk->addr, sizeof fk->addr, "127.0.0.1:%d",
		 bound_port(&fk->listener));
}

static void fake_start(struct fake *fk, uv_loop_t *loop)
{
	fake_start_opt(fk, loop, false);
}

static void fake_stop(struct fake *fk)
{
	uv_close((uv_handle_t *)&fk->listener, fake_handle_closed);
	for (struct fake_conn *fc = fk->conns; fc != NULL; fc = fc->next)
		fake_conn_close(fc);
}

/* ---- test helpers ---- */

struct t_op {
	struct rs_op op;
	int calls;
	int events;
	uint64_t versions[8];
};

static void t_op_done(struct rs_op *op)
{
	struct t_op *t = op->data;
	t->calls++;
}

/* t is zeroed or used before: a previous result is freed. */
static void t_op_init(struct t_op *t)
{
	rs_result_free(&t->op.result);
	memset(t, 0, sizeof *t);
	t->op.data = t;
}

static void t_flag(uv_timer_t *t)
{
	int *fired = t->data;
	(*fired)++;
}

static void t_tick(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until *counter reaches target.  A ticking timer keeps
 * UV_RUN_ONCE from blocking in the poll after the callback that reached
 * the target ran in the timer phase. */
static void t_wait(uv_loop_t *loop, const int *counter, int target)
{
	uv_timer_t tick;

	uv_timer_init(loop, &tick);
	uv_timer_start(&tick, t_tick, 5, 5);
	while (*counter < target)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

static void t_sleep(uv_loop_t *loop, unsigned ms)
{
	uv_timer_t t;
	int fired = 0;

	uv_timer_init(loop, &t);
	t.data = &fired;
	uv_timer_start(&t, t_flag, ms, 0);
	t_wait(loop, &fired, 1);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* A port nothing listens on: bound, then released. */
static int t_dead_port(uv_loop_t *loop)
{
	struct sockaddr_in sa;
	uv_tcp_t t;
	int port;

	uv_tcp_init(loop, &t);
	uv_ip4_addr("127.0.0.1", 0, &sa);
	ck_assert_int_eq(uv_tcp_bind(&t, (struct sockaddr *)&sa, 0), 0);
	port = bound_port(&t);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return port;
}

static struct rs_client *t_client(uv_loop_t *loop, const char *endpoints,
				  unsigned timeout_ms, unsigned conns,
				  bool no_pref)
{
	struct rs_client_options o = {.endpoints = endpoints,
				      .op_timeout_ms = timeout_ms,
				      .connections = conns,
				      .no_leader_pref = no_pref};
	char err[RS_ERRMSG_SIZE] = "";
	struct rs_client *c = NULL;

	ck_assert_msg(rs_client_create(&c, loop, &o, err) == RS_OK, "%s", err);
	return c;
}

static void t_closed(void *arg)
{
	int *n = arg;
	(*n)++;
}

/* Close the client and fakes; the loop must then close cleanly. */
static void t_finish(uv_loop_t *loop, struct rs_client *c, struct fake *fks,
		     int n_fks)
{
	int closed = 0;

	if (c != NULL)
		rs_client_close(c, t_closed, &closed);
	for (int i = 0; i < n_fks; i++)
		fake_stop(&fks[i]);
	uv_run(loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(closed, c != NULL);
	for (int i = 0; i < n_fks; i++)
		ck_assert_int_eq(fks[i].n_open, 0);
	ck_assert_int_eq(uv_loop_close(loop), 0);
}

static int t_get(uv_loop_t *loop, struct rs_client *c, const char *key,
		 struct t_op *t)
{
	t_op_init(t);
	ck_assert_int_eq(rs_client_get(c, &t->op, key, strlen(key),
				       WIRE_READ_LINEARIZABLE, 0, t_op_done),
			 RS_OK);
	t_wait(loop, &t->calls, 1);
	return t->op.result.status;
}

/* Commit sets of "k=v" pairs. */
static int t_commit(uv_loop_t *loop, struct rs_client *c, const char **kv,
		    int n, struct t_op *t)
{
	struct batch b;

	batch_init(&b);
	for (int i = 0; i < n; i += 2)
		ck_assert_int_eq(batch_set(&b, kv[i], strlen(kv[i]), kv[i + 1],
					   strlen(kv[i + 1]), NULL), RS_OK);
	t_op_init(t);
	ck_assert_int_eq(rs_client_commit(c, &t->op, 0, NULL, NULL, 0, &b,
					  t_op_done), RS_OK);
	batch_free(&b); /* copied by the client */
	t_wait(loop, &t->calls, 1);
	return t->op.result.status;
}

static void t_value_is(const struct rs_result *r, const char *want)
{
	ck_assert_uint_eq(r->value.len, strlen(want));
	ck_assert_mem_eq(r->value.data, want, strlen(want));
}

/* ---- tests ---- */

START_TEST(test_endpoints)
{
	static const char *bad[][2] = {
		{"127.0.0.1", "\"127.0.0.1\": not HOST:PORT"},
		{"1.2.3.4:99999", "\"1.2.3.4:99999\": bad port"},
		{"1.2.3.4:0", "\"1.2.3.4:0\": bad port"},
		{"foo:1", "\"foo:1\": host \"foo\""},
		{"10.0.0.1:1, 10.0.0.2:x", "\"10.0.0.2:x\": bad port"},
		{"10.0.0.1:1,,10.0.0.2:2", "\"\": not HOST:PORT"},
		{"10.0.0.1:1,", "empty entry"},
		{"", "no endpoints"},
		{"1:2:3", "host \"1:2\""},
	};
	struct rs_client_options o = {0};
	char err[RS_ERRMSG_SIZE], many[512] = "";
	struct rs_client *c;
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		o.endpoints = bad[i][0];
		err[0] = '\0';
		ck_assert_int_eq(rs_client_create(&c, &loop, &o, err), RS_EINVAL);
		ck_assert_msg(strstr(err, bad[i][1]) != NULL, "%s: %s",
			      bad[i][0], err);
	}
	for (int i = 0; i < 17; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many),
			 "%s10.0.0.%d:1", i ? "," : "", i);
	o.endpoints = many;
	ck_assert_int_eq(rs_client_create(&c, &loop, &o, err), RS_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "\"10.0.0.16:1\": more than 16"));
	o.endpoints = "10.0.0.1:1";
	o.connections = 1000;
	ck_assert_int_eq(rs_client_create(&c, &loop, &o, err), RS_EINVAL);

	c = t_client(&loop, " localhost:7001 , 10.0.0.2:7002", 0, 0, false);
	ck_assert_uint_eq(rs_client_endpoint_count(c), 2);
	ck_assert_str_eq(rs_client_endpoint(c, 0), "localhost:7001");
	ck_assert_str_eq(rs_client_endpoint(c, 1), "10.0.0.2:7002");
	ck_assert_ptr_null(rs_client_endpoint(c, 2));
	t_finish(&loop, c, NULL, 0);
}
END_TEST

START_TEST(test_roundtrip)
{
	static const char *kv[] = {"a", "1", "b", "22", "c", "333"};
	struct wire_bytes rb = {(const uint8_t *)"a", 1};
	struct wire_bytes re = {(const uint8_t *)"d", 1};
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uv_loop_t loop;
	struct batch b;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	c = t_client(&loop, fk.addr, 0, 0, false);

	ck_assert_int_eq(t_commit(&loop, c, kv, 6, &t), RS_OK);
	ck_assert_uint_eq(t.op.result.version, 1);
	ck_assert_str_eq(t.op.result.endpoint, fk.addr);
	rs_result_free(&t.op.result);

	/* With read-conflict ranges, and a second version. */
	batch_init(&b);
	batch_set(&b, "a", 1, "4", 1, NULL);
	t_op_init(&t);
	ck_assert_int_eq(rs_client_commit(c, &t.op, 1, &rb, &re, 1, &b,
					  t_op_done), RS_OK);
	batch_free(&b);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_uint_eq(t.op.result.version, 2);

	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert(t.op.result.found);
	ck_assert_uint_eq(t.op.result.found_version, 2);
	ck_assert_uint_eq(t.op.result.version, 2);
	ck_assert_uint_eq(t.op.result.read_mode, WIRE_READ_LINEARIZABLE);
	t_value_is(&t.op.result, "4");
	rs_result_free(&t.op.result);
	ck_assert_int_eq(t_get(&loop, c, "zz", &t), RS_OK);
	ck_assert(!t.op.result.found);
	ck_assert_uint_eq(t.op.result.value.len, 0);

	t_op_init(&t);
	ck_assert_int_eq(rs_client_range(c, &t.op, "a", 1, "c", 1, 0,
					 WIRE_READ_SERIALIZABLE, 0, t_op_done),
			 RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_uint_eq(t.op.result.n_kvs, 2);
	ck_assert(!t.op.result.more);
	ck_assert_uint_eq(t.op.result.read_mode, WIRE_READ_SERIALIZABLE);
	ck_assert_mem_eq(t.op.result.kvs[0].key, "a", 1);
	ck_assert_mem_eq(t.op.result.kvs[1].key, "b", 1);
	ck_assert_uint_eq(t.op.result.kvs[1].val_len, 2);
	ck_assert_mem_eq(t.op.result.kvs[1].val, "22", 2);
	ck_assert_uint_eq(t.op.result.kvs[1].version, 1);
	rs_result_free(&t.op.result);

	t_op_init(&t);
	ck_assert_int_eq(rs_client_range(c, &t.op, "", 0, "", 0, 2,
					 WIRE_READ_LINEARIZABLE, 0, t_op_done),
			 RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_uint_eq(t.op.result.n_kvs, 2);
	ck_assert(t.op.result.more);
	rs_result_free(&t.op.result);

	t_op_init(&t);
	ck_assert_int_eq(rs_client_grv(c, &t.op, t_op_done), RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_uint_eq(t.op.result.version, 2);

	t_op_init(&t);
	ck_assert_int_eq(rs_client_info(c, &t.op, WIRE_MEMBERS, 0, t_op_done),
			 RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_str_eq((const char *)t.op.result.value.data, "[{\"id\": 1}]");
	rs_result_free(&t.op.result);

	/* Synchronous refusals: cb never runs. */
	ck_assert_int_eq(rs_client_info(c, &t.op, WIRE_GET, -1, t_op_done),
			 RS_EINVAL);
	ck_assert_int_eq(rs_client_info(c, &t.op, WIRE_STATUS, 5, t_op_done),
			 RS_EINVAL);
	ck_assert_int_eq(rs_client_get(c, &t.op, "", 0, 0, 0, t_op_done),
			 RS_EINVAL);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

START_TEST(test_retry_unavailable)
{
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.fail_count = 2;
	fk.fail_status = RS_EUNAVAILABLE;
	c = t_client(&loop, fk.addr, 0, 0, false);
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert_str_eq(t.op.result.message, "");
	ck_assert_int_eq(fk.n_req[WIRE_GET], 3);

	fk.fail_count = 1;
	fk.fail_status = RS_ENOTLEADER;
	t_op_init(&t);
	ck_assert_int_eq(rs_client_grv(c, &t.op, t_op_done), RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_int_eq(fk.n_req[WIRE_GRV], 2);
	ck_assert_int_eq(fk.n_accepted, 1); /* one endpoint: no rotation */
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

/* An endpoint answering "unavailable" sends the client to the next one. */
START_TEST(test_rotate_on_unavailable)
{
	char eps[80];
	struct rs_client *c;
	struct fake fk[2];
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk[0], &loop);
	fake_start(&fk[1], &loop);
	fk[0].fail_count = 1000;
	fk[0].fail_status = RS_EUNAVAILABLE;
	snprintf(eps, sizeof eps, "%s,%s", fk[0].addr, fk[1].addr);
	c = t_client(&loop, eps, 0, 0, false);
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert_str_eq(t.op.result.endpoint, fk[1].addr);
	ck_assert_int_eq(fk[0].n_req[WIRE_GET], 1);
	ck_assert_int_eq(fk[1].n_req[WIRE_GET], 1);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, fk, 2);
}
END_TEST

START_TEST(test_conflict_not_retried)
{
	static const char *kv[] = {"a", "1"};
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.fail_count = 1;
	fk.fail_status = RS_ECONFLICT;
	c = t_client(&loop, fk.addr, 0, 0, false);
	ck_assert_int_eq(t_commit(&loop, c, kv, 2, &t), RS_ECONFLICT);
	ck_assert_str_eq(t.op.result.message, "scripted failure");
	ck_assert_int_eq(fk.n_req[WIRE_COMMIT], 1);

	fk.fail_count = 1;
	fk.fail_status = RS_EUNKNOWN;
	ck_assert_int_eq(t_commit(&loop, c, kv, 2, &t), RS_EUNKNOWN);
	ck_assert_int_eq(fk.n_req[WIRE_COMMIT], 2);

	fk.fail_count = 1;
	fk.fail_status = RS_EINVAL;
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_EINVAL);
	ck_assert_int_eq(fk.n_req[WIRE_GET], 1);

	/* Too old: only a fresh read version helps, so it is not resent. */
	fk.fail_count = 1;
	fk.fail_status = RS_ETOOOLD;
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_ETOOOLD);
	ck_assert_int_eq(fk.n_req[WIRE_GET], 2);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

START_TEST(test_failover_dead_endpoint)
{
	char eps[80];
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	snprintf(eps, sizeof eps, "127.0.0.1:%d,", t_dead_port(&loop));
	fake_start(&fk, &loop);
	strcat(eps, fk.addr);
	c = t_client(&loop, eps, 0, 0, false);
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert_str_eq(t.op.result.endpoint, fk.addr);
	ck_assert_int_eq(fk.n_req[WIRE_GET], 1);
	/* The client stays on the live endpoint. */
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert_int_eq(fk.n_accepted, 1);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

START_TEST(test_deadline_unreachable)
{
	char eps[80], a[32], b[32];
	struct rs_client *c;
	struct t_op t = {0};
	uv_loop_t loop;
	uint64_t start;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	snprintf(a, sizeof a, "127.0.0.1:%d", t_dead_port(&loop));
	snprintf(b, sizeof b, "127.0.0.1:%d", t_dead_port(&loop));
	snprintf(eps, sizeof eps, "%s,%s", a, b);
	c = t_client(&loop, eps, 300, 0, false);
	uv_update_time(&loop);
	start = uv_now(&loop);
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_EUNAVAILABLE);
	ck_assert_uint_ge(uv_now(&loop) - start, 290);
	ck_assert_uint_lt(uv_now(&loop) - start, 2000);
	ck_assert_msg(strstr(t.op.result.message, a) &&
		      strstr(t.op.result.message, b) &&
		      strstr(t.op.result.message, "300 ms"),
		      "%s", t.op.result.message);
	ck_assert_ptr_nonnull(strstr(t.op.result.message, "refused"));
	rs_result_free(&t.op.result);
	t_finish(&loop, c, NULL, 0);
}
END_TEST

static int h_silent(struct fake *fk, const struct wire_frame *f,
		    struct rs_buf *out)
{
	if (f->type == WIRE_GET || f->type == WIRE_COMMIT)
		return FAKE_REPLY;
	return fake_answer(fk, f, out);
}

START_TEST(test_deadline_silent_server)
{
	struct rs_client *c;
	struct fake fk;
	struct t_op g = {0}, m = {0};
	struct batch b;
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.handler = h_silent;
	c = t_client(&loop, fk.addr, 500, 0, false);
	t_op_init(&g);
	t_op_init(&m);
	batch_init(&b);
	batch_set(&b, "k", 1, "v", 1, NULL);
	ck_assert_int_eq(rs_client_get(c, &g.op, "a", 1, 0, 0, t_op_done), 0);
	ck_assert_int_eq(rs_client_commit(c, &m.op, 0, NULL, NULL, 0, &b,
					  t_op_done), 0);
	batch_free(&b);
	t_wait(&loop, &g.calls, 1);
	t_wait(&loop, &m.calls, 1);
	ck_assert_int_eq(g.op.result.status, RS_ETIMEOUT);
	ck_assert_ptr_nonnull(strstr(g.op.result.message, fk.addr));
	ck_assert_int_eq(m.op.result.status, RS_EUNKNOWN);
	ck_assert_ptr_nonnull(strstr(m.op.result.message, "unknown"));
	ck_assert_int_eq(fk.n_req[WIRE_GET], 1);
	ck_assert_int_eq(fk.n_req[WIRE_COMMIT], 1);

	/* A server that keeps saying "retry": the last error is reported. */
	fk.fail_count = 1000;
	fk.fail_status = RS_ERECOVERING;
	t_op_init(&g);
	ck_assert_int_eq(rs_client_grv(c, &g.op, t_op_done), 0);
	t_wait(&loop, &g.calls, 1);
	ck_assert_int_eq(g.op.result.status, RS_ETIMEOUT);
	ck_assert_msg(strstr(g.op.result.message, "gave up after 500 ms") &&
		      strstr(g.op.result.message, "scripted failure"),
		      "%s", g.op.result.message);
	ck_assert_int_gt(fk.n_req[WIRE_GRV], 3);
	rs_result_free(&g.op.result);
	rs_result_free(&m.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

static int h_drop_commit(struct fake *fk, const struct wire_frame *f,
			 struct rs_buf *out)
{
	if (f->type == WIRE_COMMIT)
		return FAKE_CLOSE;
	return fake_answer(fk, f, out);
}

START_TEST(test_commit_conn_dropped_unknown)
{
	static const char *kv[] = {"a", "1"};
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.handler = h_drop_commit;
	c = t_client(&loop, fk.addr, 2000, 0, false);
	ck_assert_int_eq(t_commit(&loop, c, kv, 2, &t), RS_EUNKNOWN);
	ck_assert_msg(strstr(t.op.result.message, "outcome is unknown") &&
		      strstr(t.op.result.message, "closed by the server"),
		      "%s", t.op.result.message);
	t_sleep(&loop, 100);
	ck_assert_int_eq(fk.n_req[WIRE_COMMIT], 1);
	/* The client reconnects for the next op. */
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert_int_eq(fk.n_accepted, 2);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

static void t_corrupt(struct rs_buf *out, size_t st)
{
	out->data[st + 4] ^= 0xff; /* the crc */
}

/* Garbage answers the first GET, a truncated body the first GRV, the
 * server's own protocol complaint (request id 0) the first RANGE, a frame
 * of the wrong type the first MEMBERS, and garbage every COMMIT. */
static int h_malformed(struct fake *fk, const struct wire_frame *f,
		       struct rs_buf *out)
{
	size_t st;

	if ((f->type == WIRE_GET && (fk->script & 1) == 0) ||
	    f->type == WIRE_COMMIT) {
		fk->script |= 1;
		st = wire_frame_begin(out, f->type | WIRE_RESPONSE, 0,
				      f->request_id);
		wire_put_status(out, RS_OK, NULL);
		wire_put_u64(out, 7);
		wire_frame_end(out, st);
		t_corrupt(out, st);
		return FAKE_REPLY;
	}
	if (f->type == WIRE_GRV && (fk->script & 2) == 0) {
		fk->script |= 2;
		st = wire_frame_begin(out, WIRE_GRV | WIRE_RESPONSE, 0,
				      f->request_id);
		wire_put_status(out, RS_OK, NULL);
		wire_put_u32(out, 7); /* a u64 is due */
		wire_frame_end(out, st);
		return FAKE_REPLY;
	}
	if (f->type == WIRE_RANGE && (fk->script & 4) == 0) {
		fk->script |= 4;
		wire_encode_status(out, WIRE_RANGE, 0, RS_EPROTO, "bad frame");
		return FAKE_CLOSE;
	}
	if (f->type == WIRE_MEMBERS && (fk->script & 8) == 0) {
		fk->script |= 8;
		st = wire_frame_begin(out, WIRE_GRV | WIRE_RESPONSE, 0,
				      f->request_id);
		wire_put_status(out, RS_OK, NULL);
		wire_put_u64(out, 7);
		wire_frame_end(out, st);
		return FAKE_REPLY;
	}
	return fake_answer(fk, f, out);
}

START_TEST(test_malformed_frame)
{
	static const char *kv[] = {"a", "1"};
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.handler = h_malformed;
	c = t_client(&loop, fk.addr, 2000, 0, false);
	/* Reads: the connection is dropped and the read retried. */
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert_int_eq(fk.n_req[WIRE_GET], 2);
	ck_assert_int_eq(fk.n_accepted, 2);
	t_op_init(&t);
	ck_assert_int_eq(rs_client_grv(c, &t.op, t_op_done), RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_int_eq(fk.n_req[WIRE_GRV], 2);
	ck_assert_int_eq(fk.n_accepted, 3);
	t_op_init(&t);
	ck_assert_int_eq(rs_client_range(c, &t.op, "", 0, "", 0, 0, 0, 0,
					 t_op_done), RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_int_eq(fk.n_req[WIRE_RANGE], 2);
	t_op_init(&t);
	ck_assert_int_eq(rs_client_info(c, &t.op, WIRE_MEMBERS, -1, t_op_done),
			 RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_int_eq(fk.n_req[WIRE_MEMBERS], 2);
	ck_assert_int_eq(fk.n_accepted, 5);
	/* A commit already sent cannot be retried. */
	ck_assert_int_eq(t_commit(&loop, c, kv, 2, &t), RS_EUNKNOWN);
	ck_assert_msg(strstr(t.op.result.message, "protocol error") &&
		      strstr(t.op.result.message, "checksum"),
		      "%s", t.op.result.message);
	t_sleep(&loop, 50);
	ck_assert_int_eq(fk.n_req[WIRE_COMMIT], 1);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

START_TEST(test_leader_redirect)
{
	struct rs_client *c;
	struct fake fk[2];
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk[0], &loop);
	fake_start(&fk[1], &loop);
	strcpy(fk[0].leader, fk[1].addr);
	strcpy(fk[1].leader, fk[1].addr);
	c = t_client(&loop, fk[0].addr, 0, 0, false);
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert_str_eq(t.op.result.endpoint, fk[1].addr);
	ck_assert_int_eq(fk[0].n_req[WIRE_STATUS], 1);
	ck_assert_int_eq(fk[0].n_req[WIRE_GET], 0);
	ck_assert_int_eq(fk[1].n_req[WIRE_STATUS], 0); /* trusted */
	ck_assert_int_eq(fk[1].n_req[WIRE_GET], 1);
	ck_assert_uint_eq(rs_client_endpoint_count(c), 2);
	ck_assert_str_eq(rs_client_endpoint(c, 1), fk[1].addr);

	/* STATUS of a named endpoint goes there, not to the leader. */
	t_op_init(&t);
	ck_assert_int_eq(rs_client_info(c, &t.op, WIRE_STATUS, 0, t_op_done),
			 RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_OK);
	ck_assert_str_eq(t.op.result.endpoint, fk[0].addr);
	ck_assert_ptr_nonnull(strstr((const char *)t.op.result.value.data,
				     fk[1].addr));
	rs_result_free(&t.op.result);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, fk, 2);
}
END_TEST

START_TEST(test_no_leader_pref)
{
	char eps[80];
	struct rs_client *c;
	struct fake fk[2];
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk[0], &loop);
	fake_start(&fk[1], &loop);
	strcpy(fk[0].leader, fk[1].addr);
	snprintf(eps, sizeof eps, "%s,%s", fk[0].addr, fk[1].addr);
	c = t_client(&loop, eps, 0, 0, true);
	ck_assert_int_eq(t_get(&loop, c, "a", &t), RS_OK);
	ck_assert_str_eq(t.op.result.endpoint, fk[0].addr);
	ck_assert_int_eq(fk[0].n_req[WIRE_STATUS], 0);
	ck_assert_int_eq(fk[1].n_accepted, 0);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, fk, 2);
}
END_TEST

/* The leader check reads leader_client_addr from the STATUS document.
 * The documents are text (%s: the second node's address) because some are
 * malformed on purpose.  A case either redirects the GET to the second
 * node, keeps it on the first, or ends it with a protocol error whose
 * message holds `error`. */
struct t_status_case {
	const char *doc;
	bool redirect;
	const char *error;
};

static const struct t_status_case t_status_cases[] = {
	/* valid, with nested members the way a node writes them */
	{"{\"id\":1,\"role\":\"follower\",\"leader_id\":2,"
	 "\"leader_client_addr\":\"%s\",\"members\":[{\"id\":2,"
	 "\"client_addr\":\"%s\",\"leader\":true}],\"accepting\":false}",
	 true, NULL},
	/* the member missing: no leader named, stay */
	{"{\"id\":1,\"role\":\"follower\",\"members\":[]}", false, NULL},
	/* the wrong type */
	{"{\"id\":1,\"leader_client_addr\":2}", false,
	 "STATUS document: member \"leader_client_addr\": expected a string"},
	/* truncated */
	{"{\"id\":1,\"leader_client_addr\":\"%s", false,
	 "STATUS document: line 1 column"},
	/* not an object */
	{"[\"leader_client_addr\",\"%s\"]", false,
	 "STATUS document: expected a JSON object"},
	/* the name as a string value before the member: a scan for the
	 * quoted name stops at the value and misses the member */
	{"{\"role\":\"leader_client_addr\",\"leader_client_addr\":\"%s\"}",
	 true, NULL},
	/* a nested object's member first: a scan would take its value */
	{"{\"members\":[{\"leader_client_addr\":\"127.0.0.1:1\"}],"
	 "\"leader_client_addr\":\"%s\"}",
	 true, NULL},
};

START_TEST(test_status_leader_doc)
{
	const struct t_status_case *tc = &t_status_cases[_i];
	struct rs_client *c;
	struct fake fk[2];
	struct t_op t = {0};
	uv_loop_t loop;
	int rv;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk[0], &loop);
	fake_start(&fk[1], &loop);
	snprintf(fk[0].status_doc, sizeof fk[0].status_doc, tc->doc,
		 fk[1].addr, fk[1].addr);
	c = t_client(&loop, fk[0].addr, tc->error != NULL ? 300 : 0, 0,
		     false);
	rv = t_get(&loop, c, "a", &t);
	if (tc->error != NULL) {
		ck_assert_int_eq(rv, RS_ETIMEOUT);
		ck_assert_msg(strstr(t.op.result.message, "protocol error") &&
			      strstr(t.op.result.message, tc->error) &&
			      strstr(t.op.result.message, fk[0].addr),
			      "%s", t.op.result.message);
		ck_assert_int_eq(fk[0].n_req[WIRE_GET], 0);
	} else {
		ck_assert_msg(rv == RS_OK, "%s", t.op.result.message);
		ck_assert_str_eq(t.op.result.endpoint,
				 fk[tc->redirect ? 1 : 0].addr);
		ck_assert_int_eq(fk[tc->redirect ? 1 : 0].n_req[WIRE_GET], 1);
	}
	ck_assert_int_eq(fk[tc->redirect ? 0 : 1].n_req[WIRE_GET], 0);
	ck_assert_uint_eq(rs_client_endpoint_count(c), tc->redirect ? 2 : 1);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, fk, 2);
}
END_TEST

#define T_PIPELINE 64

START_TEST(test_pipelining)
{
	static const char *kv[2 * T_PIPELINE];
	static char names[T_PIPELINE][2][8];
	struct t_op *ops = calloc(T_PIPELINE, sizeof *ops);
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uv_loop_t loop;
	int done = 0;

	ck_assert_ptr_nonnull(ops);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.reverse = true; /* answers out of order */
	c = t_client(&loop, fk.addr, 0, 8, false);
	for (int i = 0; i < T_PIPELINE; i++) {
		snprintf(names[i][0], 8, "k%02d", i);
		snprintf(names[i][1], 8, "v%02d", i);
		kv[2 * i] = names[i][0];
		kv[2 * i + 1] = names[i][1];
	}
	ck_assert_int_eq(t_commit(&loop, c, kv, 2 * T_PIPELINE, &t), RS_OK);
	for (int i = 0; i < T_PIPELINE; i++) {
		t_op_init(&ops[i]);
		ck_assert_int_eq(rs_client_get(c, &ops[i].op, names[i][0], 3,
					       0, 0, t_op_done), RS_OK);
	}
	while (done < T_PIPELINE) {
		uv_run(&loop, UV_RUN_ONCE);
		done = 0;
		for (int i = 0; i < T_PIPELINE; i++)
			done += ops[i].calls;
	}
	for (int i = 0; i < T_PIPELINE; i++) {
		ck_assert_int_eq(ops[i].calls, 1);
		ck_assert_int_eq(ops[i].op.result.status, RS_OK);
		t_value_is(&ops[i].op.result, names[i][1]);
		rs_result_free(&ops[i].op.result);
	}
	ck_assert_int_eq(fk.n_accepted, 8);
	ck_assert_int_eq(fk.n_req[WIRE_STATUS], 1);
	ck_assert_int_eq(fk.n_req[WIRE_GET], T_PIPELINE);
	free(ops);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

/* Ops submitted in one turn of the loop leave in one write per
 * connection (one writev), in submission order, and every one is
 * answered. */
START_TEST(test_ops_of_one_turn_share_a_write)
{
	struct t_op *ops = calloc(T_PIPELINE, sizeof *ops);
	static const char *kv[] = {"k", "v"};
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uint64_t writes, frames;
	uv_loop_t loop;
	int done = 0;

	ck_assert_ptr_nonnull(ops);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	c = t_client(&loop, fk.addr, 0, 1, true);
	ck_assert_int_eq(t_commit(&loop, c, kv, 2, &t), RS_OK);
	rs_result_free(&t.op.result);
	writes = c->writes;
	frames = c->frames_written;
	for (int i = 0; i < T_PIPELINE; i++) {
		t_op_init(&ops[i]);
		ck_assert_int_eq(rs_client_get(c, &ops[i].op, "k", 1, 0, 0,
					       t_op_done), RS_OK);
		/* Queued, not written, until the loop turns. */
		ck_assert_uint_eq(ops[i].op.state, CLIENT_OP_QUEUED);
	}
	while (done < T_PIPELINE) {
		uv_run(&loop, UV_RUN_ONCE);
		done = 0;
		for (int i = 0; i < T_PIPELINE; i++)
			done += ops[i].calls;
	}
	ck_assert_uint_eq(c->writes - writes, 1);
	ck_assert_uint_eq(c->frames_written - frames, T_PIPELINE);
	for (int i = 0; i < T_PIPELINE; i++) {
		ck_assert_int_eq(ops[i].op.result.status, RS_OK);
		t_value_is(&ops[i].op.result, "v");
		rs_result_free(&ops[i].op.result);
	}
	ck_assert_int_eq(fk.n_req[WIRE_GET], T_PIPELINE);
	free(ops);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

static void t_watch_cb(struct rs_op *op)
{
	struct t_op *t = op->data;
	struct mutation m;
	size_t pos = 0;

	if (op->result.status != RS_OK) {
		t->calls++;
		return;
	}
	ck_assert_int_lt(t->events, 8);
	ck_assert(batch_next(&op->result.event, &pos, &m));
	ck_assert_mem_eq(m.key, "w", 1);
	ck_assert_uint_eq(op->result.event.version, op->result.version);
	t->versions[t->events++] = op->result.version;
	if (op->result.version == 11) /* the cancel test's first event */
		rs_client_watch_cancel(op->client, op);
}

START_TEST(test_watch)
{
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0}, g = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.watch_end = RS_ECOMPACTED;
	c = t_client(&loop, fk.addr, 0, 0, false);
	t_op_init(&t);
	ck_assert_int_eq(rs_client_watch(c, &t.op, "a", 1, "", 0, 5,
					 t_watch_cb), RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.events, 2);
	ck_assert_uint_eq(t.versions[0], 5);
	ck_assert_uint_eq(t.versions[1], 6);
	ck_assert_int_eq(t.op.result.status, RS_ECOMPACTED);
	ck_assert_str_eq(t.op.result.message, "watch compacted");
	rs_result_free(&t.op.result);

	/* Cancelled from its first event: a WATCH_CANCEL on the pooled
	 * connection, no more calls; the second event (already on its way)
	 * and the cancel's answer are dropped, not protocol errors, and the
	 * connection stays for the next op. */
	fk.watch_end = RS_OK;
	t_op_init(&t);
	ck_assert_int_eq(rs_client_watch(c, &t.op, "", 0, "", 0, 11,
					 t_watch_cb), RS_OK);
	t_wait(&loop, &fk.n_req[WIRE_WATCH_CANCEL], 1);
	ck_assert_int_eq(t.events, 1);
	ck_assert_int_eq(t.calls, 0);
	rs_result_free(&t.op.result);
	ck_assert_int_eq(t_get(&loop, c, "a", &g), RS_OK);
	rs_result_free(&g.op.result);
	ck_assert_int_eq(t.events, 1);
	ck_assert_int_eq(fk.n_accepted, 1);
	ck_assert_int_eq(fk.n_eof, 0);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

/* A COMMIT too large for the socket buffers, to a server that reads
 * nothing: the deadline comes with the write still pending. */
START_TEST(test_commit_deadline_write_pending)
{
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	struct batch b;
	char *val = calloc(1, RS_VALUE_SIZE_MAX);
	char key[8];
	uv_loop_t loop;

	ck_assert_ptr_nonnull(val);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start_opt(&fk, &loop, true);
	c = t_client(&loop, fk.addr, 500, 0, true);
	batch_init(&b);
	for (int i = 0; i < 9; i++) {
		snprintf(key, sizeof key, "big%d", i);
		ck_assert_int_eq(batch_set(&b, key, strlen(key), val,
					   RS_VALUE_SIZE_MAX, NULL), RS_OK);
	}
	free(val);
	t_op_init(&t);
	ck_assert_int_eq(rs_client_commit(c, &t.op, 0, NULL, NULL, 0, &b,
					  t_op_done), RS_OK);
	batch_free(&b);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(t.op.result.status, RS_EUNKNOWN);
	ck_assert_ptr_nonnull(strstr(t.op.result.message, "got no answer"));
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

static int h_drop_status_once(struct fake *fk, const struct wire_frame *f,
			      struct rs_buf *out)
{
	if (f->type == WIRE_STATUS && fk->script++ == 0)
		return FAKE_CLOSE;
	return fake_answer(fk, f, out);
}

/* The connection asking STATUS dies: another one asks, ops still run. */
START_TEST(test_leader_check_dropped)
{
	struct rs_client *c;
	struct fake fk;
	struct t_op t[2];
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.handler = h_drop_status_once;
	memset(t, 0, sizeof t);
	c = t_client(&loop, fk.addr, 2000, 2, false);
	for (int i = 0; i < 2; i++) {
		t_op_init(&t[i]);
		ck_assert_int_eq(rs_client_get(c, &t[i].op, "a", 1, 0, 0,
					       t_op_done), RS_OK);
	}
	t_wait(&loop, &t[0].calls, 1);
	t_wait(&loop, &t[1].calls, 1);
	ck_assert_int_eq(t[0].op.result.status, RS_OK);
	ck_assert_int_eq(t[1].op.result.status, RS_OK);
	ck_assert_int_eq(fk.n_req[WIRE_STATUS], 2);
	ck_assert_int_eq(fk.n_req[WIRE_GET], 2);
	rs_result_free(&t[0].op.result);
	rs_result_free(&t[1].op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

/* A watch cancelled while its connection still connects was never
 * written: it is dropped from the queue, and no WATCH_CANCEL is sent. */
START_TEST(test_watch_cancel_before_sent)
{
	struct rs_client *c;
	struct fake fk;
	struct t_op w = {0}, g = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	c = t_client(&loop, fk.addr, 2000, 1, false);
	t_op_init(&w);
	ck_assert_int_eq(rs_client_watch(c, &w.op, "", 0, "", 0, 3,
					 t_watch_cb), RS_OK);
	rs_client_watch_cancel(c, &w.op);
	rs_result_free(&w.op.result);
	ck_assert_int_eq(t_get(&loop, c, "a", &g), RS_OK);
	rs_result_free(&g.op.result);
	ck_assert_int_eq(fk.n_req[WIRE_WATCH], 0);
	ck_assert_int_eq(fk.n_req[WIRE_WATCH_CANCEL], 0);
	ck_assert_int_eq(w.calls + w.events, 0);
	ck_assert_int_eq(fk.n_accepted, 1);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

/* A watch runs on the pooled connection; when a refusal moves the client
 * to the next endpoint, that connection is retired but stays open for the
 * running watch, and closes once the watch is cancelled. */
START_TEST(test_watch_keeps_a_retired_connection)
{
	struct rs_client *c;
	struct fake fks[2];
	struct t_op w = {0}, g = {0};
	char eps[80];
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fks[0], &loop);
	fake_start(&fks[1], &loop);
	snprintf(eps, sizeof eps, "%s,%s", fks[0].addr, fks[1].addr);
	c = t_client(&loop, eps, 2000, 1, true);
	t_op_init(&w);
	ck_assert_int_eq(rs_client_watch(c, &w.op, "", 0, "", 0, 3,
					 t_watch_cb), RS_OK);
	t_wait(&loop, &w.events, 2);
	fks[0].fail_count = 1;
	fks[0].fail_status = RS_ENOTLEADER;
	fks[0].fail_type = WIRE_GET;
	ck_assert_int_eq(t_get(&loop, c, "a", &g), RS_OK);
	rs_result_free(&g.op.result);
	ck_assert_int_eq(fks[0].n_req[WIRE_GET], 1);
	ck_assert_int_eq(fks[1].n_req[WIRE_GET], 1);
	/* Retired, not closed: the watch still runs on it. */
	t_sleep(&loop, 50);
	ck_assert_int_eq(fks[0].n_eof, 0);
	ck_assert_int_eq(w.calls, 0);
	rs_client_watch_cancel(c, &w.op);
	rs_result_free(&w.op.result);
	t_wait(&loop, &fks[0].n_eof, 1);
	ck_assert_int_eq(w.calls, 0);
	ck_assert_int_eq(w.events, 2);
	ck_assert_int_eq(fks[0].n_accepted, 1);
	ck_assert_int_eq(fks[1].n_eof, 0);
	t_finish(&loop, c, fks, 2);
}
END_TEST

/* A refused start is retried; a lost connection ends a running watch. */
START_TEST(test_watch_retry_and_loss)
{
	struct rs_client *c;
	struct fake fk;
	struct t_op t = {0};
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.fail_count = 1;
	fk.fail_status = RS_ERECOVERING;
	fk.fail_type = WIRE_WATCH;
	fk.watch_drop = true;
	c = t_client(&loop, fk.addr, 2000, 0, false);
	t_op_init(&t);
	ck_assert_int_eq(rs_client_watch(c, &t.op, "", 0, "", 0, 3,
					 t_watch_cb), RS_OK);
	t_wait(&loop, &t.calls, 1);
	ck_assert_int_eq(fk.n_req[WIRE_WATCH], 2);
	ck_assert_int_eq(t.events, 2);
	ck_assert_int_eq(t.op.result.status, RS_EUNAVAILABLE);
	ck_assert_msg(strstr(t.op.result.message, "watch ended") &&
		      strstr(t.op.result.message, fk.addr),
		      "%s", t.op.result.message);
	rs_result_free(&t.op.result);
	t_finish(&loop, c, &fk, 1);
}
END_TEST

START_TEST(test_close_with_ops_outstanding)
{
	struct rs_client *c;
	struct fake fk;
	struct t_op g = {0}, m = {0};
	struct batch b;
	uv_loop_t loop;
	int closed = 0;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	fake_start(&fk, &loop);
	fk.handler = h_silent;
	c = t_client(&loop, fk.addr, 0, 0, false);
	t_op_init(&g);
	t_op_init(&m);
	batch_init(&b);
	batch_set(&b, "k", 1, "v", 1, NULL);
	ck_assert_int_eq(rs_client_get(c, &g.op, "a", 1, 0, 0, t_op_done), 0);
	ck_assert_int_eq(rs_client_commit(c, &m.op, 0, NULL, NULL, 0, &b,
					  t_op_done), 0);
	batch_free(&b);
	t_wait(&loop, &fk.n_req[WIRE_COMMIT], 1);
	rs_client_close(c, t_closed, &closed);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.op.result.status, RS_ESHUTDOWN);
	ck_assert_int_eq(m.calls, 1);
	ck_assert_int_eq(m.op.result.status, RS_EUNKNOWN);
	t_wait(&loop, &closed, 1);
	rs_result_free(&g.op.result);
	rs_result_free(&m.op.result);
	t_finish(&loop, NULL, &fk, 1);
}
END_TEST

/* ---- the blocking wrapper, against a fake on its own thread ---- */

struct fake_thread {
	pthread_t th;
	uv_loop_t loop;
	struct fake fk;
	uv_async_t stop;
	uv_async_t drop; /* close every connection, then post `dropped` */
	uv_sem_t ready;
	uv_sem_t dropped;
	int loop_close_rv;
};

static void fake_thread_drop(uv_async_t *a)
{
	struct fake_thread *ft = a->data;
	for (struct fake_conn *fc = ft->fk.conns; fc != NULL; fc = fc->next)
		fake_conn_close(fc);
	uv_sem_post(&ft->dropped);
}

static void fake_thread_stop(uv_async_t *a)
{
	struct fake_thread *ft = a->data;
	fake_stop(&ft->fk);
	uv_close((uv_handle_t *)a, NULL);
	uv_close((uv_handle_t *)&ft->drop, NULL);
}

/* GET "hang" gets no answer. */
static int h_sync(struct fake *fk, const struct wire_frame *f,
		  struct rs_buf *out)
{
	if (f->type == WIRE_GET && f->body_len >= 4 &&
	    memcmp(f->body + f->body_len - 4, "hang", 4) == 0)
		return FAKE_REPLY;
	return fake_answer(fk, f, out);
}

static void *fake_thread_main(void *arg)
{
	struct fake_thread *ft = arg;

	uv_loop_init(&ft->loop);
	fake_start(&ft->fk, &ft->loop);
	ft->fk.handler = h_sync;
	uv_async_init(&ft->loop, &ft->stop, fake_thread_stop);
	ft->stop.data = ft;
	uv_async_init(&ft->loop, &ft->drop, fake_thread_drop);
	ft->drop.data = ft;
	uv_sem_post(&ft->ready);
	uv_run(&ft->loop, UV_RUN_DEFAULT);
	ft->loop_close_rv = uv_loop_close(&ft->loop);
	return NULL;
}

static int t_sync_event(void *ctx, const struct rs_result *ev)
{
	int *seen = ctx;
	ck_assert_int_eq(ev->status, RS_OK);
	(*seen)++;
	return *seen == 2; /* stop after the second */
}

START_TEST(test_sync)
{
	struct rs_client_options o = {.op_timeout_ms = 2000};
	struct fake_thread ft;
	struct rs_result r;
	struct rs_sync *s, *s2;
	struct batch b;
	char err[RS_ERRMSG_SIZE];
	int seen = 0;

	memset(&ft, 0, sizeof ft);
	ck_assert_int_eq(uv_sem_init(&ft.ready, 0), 0);
	ck_assert_int_eq(uv_sem_init(&ft.dropped, 0), 0);
	ck_assert_int_eq(pthread_create(&ft.th, NULL, fake_thread_main, &ft), 0);
	uv_sem_wait(&ft.ready);
	o.endpoints = ft.fk.addr;

	o.endpoints = "nonsense";
	ck_assert_int_eq(rs_sync_open(&s, &o, err), RS_EINVAL);
	o.endpoints = ft.fk.addr;
	ck_assert_int_eq(rs_sync_open(&s, &o, err), RS_OK);
	ck_assert_uint_eq(rs_client_endpoint_count(rs_sync_client(s)), 1);

	batch_init(&b);
	batch_set(&b, "x", 1, "42", 2, NULL);
	ck_assert_int_eq(rs_sync_commit(s, 0, NULL, NULL, 0, &b, &r), RS_OK);
	ck_assert_uint_eq(r.version, 1);
	rs_result_free(&r);
	batch_free(&b);
	ck_assert_int_eq(rs_sync_get(s, "x", 1, WIRE_READ_LINEARIZABLE, 0, &r),
			 RS_OK);
	ck_assert(r.found);
	t_value_is(&r, "42");
	rs_result_free(&r);
	ck_assert_int_eq(rs_sync_range(s, "", 0, "", 0, 0,
				       WIRE_READ_LINEARIZABLE, 0, &r), RS_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	rs_result_free(&r);
	ck_assert_int_eq(rs_sync_grv(s, &r), RS_OK);
	ck_assert_uint_eq(r.version, 1);
	rs_result_free(&r);
	ck_assert_int_eq(rs_sync_info(s, WIRE_STATUS, -1, &r), RS_OK);
	ck_assert_ptr_nonnull(strstr((const char *)r.value.data, ft.fk.addr));
	rs_result_free(&r);
	ck_assert_int_eq(rs_sync_get(s, "", 0, 0, 0, &r), RS_EINVAL);
	ck_assert_int_eq(r.status, RS_EINVAL);
	rs_result_free(&r);
	ck_assert_int_eq(rs_sync_watch(s, "", 0, "", 0, 1, t_sync_event, &seen),
			 RS_OK);
	ck_assert_int_eq(seen, 2);

	/* An op that ends by its deadline, with an idle connection open,
	 * must not leave the loop blocked in its poll. */
	o.op_timeout_ms = 200;
	ck_assert_int_eq(rs_sync_open(&s2, &o, err), RS_OK);
	ck_assert_int_eq(rs_sync_grv(s2, &r), RS_OK);
	rs_result_free(&r);
	ck_assert_int_eq(rs_sync_get(s2, "hang", 4, 0, 0, &r), RS_ETIMEOUT);
	rs_result_free(&r);
	rs_sync_close(s2);

	/* The server drops the idle connection between two calls: the
	 * commit goes to a fresh connection, not into the dead one. */
	uv_async_send(&ft.drop);
	uv_sem_wait(&ft.dropped);
	usleep(50 * 1000); /* let the FIN arrive */
	batch_init(&b);
	batch_set(&b, "y", 1, "1", 1, NULL);
	ck_assert_int_eq(rs_sync_commit(s, 0, NULL, NULL, 0, &b, &r), RS_OK);
	rs_result_free(&r);
	batch_free(&b);
	rs_sync_close(s);

	uv_async_send(&ft.stop);
	ck_assert_int_eq(pthread_join(ft.th, NULL), 0);
	ck_assert_int_eq(ft.loop_close_rv, 0);
	ck_assert_int_eq(ft.fk.n_req[WIRE_COMMIT], 2);
	ck_assert_int_eq(ft.fk.n_req[WIRE_WATCH], 1);
	uv_sem_destroy(&ft.ready);
	uv_sem_destroy(&ft.dropped);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_endpoints);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_retry_unavailable);
	tcase_add_test(tc, test_rotate_on_unavailable);
	tcase_add_test(tc, test_conflict_not_retried);
	tcase_add_test(tc, test_failover_dead_endpoint);
	tcase_add_test(tc, test_deadline_unreachable);
	tcase_add_test(tc, test_deadline_silent_server);
	tcase_add_test(tc, test_commit_conn_dropped_unknown);
	tcase_add_test(tc, test_malformed_frame);
	tcase_add_test(tc, test_leader_redirect);
	tcase_add_test(tc, test_no_leader_pref);
	tcase_add_loop_test(tc, test_status_leader_doc, 0,
			    (int)(sizeof t_status_cases / sizeof t_status_cases[0]));
	tcase_add_test(tc, test_pipelining);
	tcase_add_test(tc, test_ops_of_one_turn_share_a_write);
	tcase_add_test(tc, test_watch);
	tcase_add_test(tc, test_commit_deadline_write_pending);
	tcase_add_test(tc, test_leader_check_dropped);
	tcase_add_test(tc, test_watch_cancel_before_sent);
	tcase_add_test(tc, test_watch_keeps_a_retired_connection);
	tcase_add_test(tc, test_watch_retry_and_loss);
	tcase_add_test(tc, test_close_with_ops_outstanding);
	tcase_add_test(tc, test_sync);
	suite_add_tcase(s, tc);
	return testutil_run_suite(s);
}
