/* raftfix: see raftfix.h. */
#include "tests/unit/raftfix.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftcommit.h"
#include "raftstore/raftmend.h"
#include "tests/unit/testutil.h"

bool raftfix_unmended;

static void raftfix_on_applied(void *ctx, const struct batch *b)
{
	struct raftfix_replica *r = ctx;

	ck_assert_uint_gt(b->version, 0);
	r->applied_calls++;
	if (r->applied_hook != NULL)
		r->applied_hook(r->hook_ctx, b);
}

static void raftfix_on_restored(void *ctx, uint64_t version)
{
	struct raftfix_replica *r = ctx;

	r->restored_calls++;
	r->restored_version = version;
	if (r->restored_hook != NULL)
		r->restored_hook(r->hook_ctx, version);
}

static void raftfix_on_fenced(void *ctx, const struct batch *b,
			      uint64_t current_epoch)
{
	struct raftfix_replica *r = ctx;

	r->fenced_calls++;
	r->fenced_version = b->version;
	r->fenced_batch_epoch = b->epoch;
	r->fenced_current_epoch = current_epoch;
}

static void raftfix_on_fatal(void *ctx, const char *msg)
{
	struct raftfix_replica *r = ctx;

	ck_abort_msg("server %u: fsm fatal error: %s", r->index, msg);
}

void raftfix_replica_open(struct raftfix_replica *r)
{
	struct store_options so = {.dir = r->dir,
				   .sync = JOURNAL_SYNC_NONE,
				   .apply_on_accept = true};
	struct store_open_report rep;
	char errmsg[RS_ERRMSG_SIZE];
	int rv;

	ck_assert_ptr_null(r->store);
	rv = store_open(&r->store, r->loop, &so, &rep, errmsg);
	ck_assert_msg(rv == RS_OK, "server %u: %s", r->index, errmsg);
	fsm_init(&r->fsm, r->store, raftfix_on_applied, raftfix_on_restored,
		 raftfix_on_fatal, r);
	r->fsm.on_fenced = raftfix_on_fenced;
}

static void raftfix_closed(void *arg)
{
	*(bool *)arg = true;
}

void raftfix_replica_close(struct raftfix_replica *r)
{
	bool done = false;

	ck_assert_ptr_nonnull(r->store);
	uv_run(r->loop, UV_RUN_DEFAULT);
	store_close(r->store, raftfix_closed, &done);
	while (!done)
		uv_run(r->loop, UV_RUN_ONCE);
	r->store = NULL;
}

void raftfix_start(struct raftfix *c, unsigned n)
{
	struct raft_configuration conf;

	ck_assert_uint_le(n, RAFTFIX_SERVERS_MAX);
	memset(c, 0, sizeof *c);
	c->n = n;
	ck_assert_int_eq(uv_loop_init(&c->loop), 0);
	ck_assert_int_eq(raft_fixture_initialize(&c->fx), 0);
	for (unsigned i = 0; i < n; i++) {
		struct raftfix_replica *r = &c->reps[i];
		r->index = i;
		r->loop = &c->loop;
		r->dir = testutil_tmpdir("raftfix");
		raftfix_replica_open(r);
		ck_assert_int_eq(raft_fixture_grow(&c->fx, &r->fsm.raft), 0);
	}
	/* As the node runs c-raft (coordinator/node_start.c). */
	for (unsigned i = 0; i < n && !raftfix_unmended; i++) {
		struct raft *r = raft_fixture_get(&c->fx, i);

		ck_assert_int_eq(raftmend_install(r->io), RS_OK);
		ck_assert_int_eq(raftcommit_install(r->io, r), RS_OK);
	}
	raft_configuration_init(&conf);
	ck_assert_int_eq(raft_fixture_configuration(&c->fx, n, &conf), 0);
	ck_assert_int_eq(raft_fixture_bootstrap(&c->fx, &conf), 0);
	raft_configuration_close(&conf);
	ck_assert_int_eq(raft_fixture_start(&c->fx), 0);
	raft_fixture_elect(&c->fx, 0);
	ck_assert_uint_eq(raft_fixture_leader_index(&c->fx), 0);
}

void raftfix_close_raft(struct raftfix *c)
{
	if (c->raft_closed)
		return;
	raft_fixture_close(&c->fx);
	c->raft_closed = true;
}

void raftfix_stop(struct raftfix *c)
{
	raftfix_close_raft(c);
	for (unsigned i = 0; i < c->n; i++) {
		struct raftfix_replica *r = &c->reps[i];
		if (r->store != NULL)
			raftfix_replica_close(r);
		testutil_rmtree(r->dir);
		free(r->dir);
	}
	uv_run(&c->loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&c->loop), 0);
}

struct raft *raftfix_raft(struct raftfix *c, unsigned i)
{
	ck_assert_uint_lt(i, c->n);
	return raft_fixture_get(&c->fx, i);
}

unsigned raftfix_all(const struct raftfix *c)
{
	return (1u << c->n) - 1;
}

struct raftfix_stop_arg {
	struct raftfix *c;
	bool (*stop)(void *arg);
	void *arg;
};

static bool raftfix_stop_with_loop(struct raft_fixture *fx, void *arg)
{
	struct raftfix_stop_arg *s = arg;

	(void)fx;
	uv_run(&s->c->loop, UV_RUN_NOWAIT);
	return s->stop(s->arg);
}

bool raftfix_step_until(struct raftfix *c, bool (*stop)(void *arg),
			void *arg, unsigned max_ms)
{
	struct raftfix_stop_arg s = {c, stop, arg};

	uv_run(&c->loop, UV_RUN_NOWAIT);
	if (stop(arg))
		return true;
	return raft_fixture_step_until(&c->fx, raftfix_stop_with_loop, &s,
				       max_ms);
}

static bool raftfix_proxy_is_ready(void *arg)
{
	struct proxy_stats st;

	proxy_get_stats(arg, &st);
	return strcmp(st.state, "ready") == 0;
}

struct proxy *raftfix_proxy_ready(struct raftfix *c, unsigned i,
				  const struct proxy_options *o)
{
	struct proxy *p = NULL;

	ck_assert_int_eq(raft_state(raftfix_raft(c, i)), RAFT_LEADER);
	ck_assert_int_eq(proxy_create(&p, &c->loop, raftfix_raft(c, i),
				      c->reps[i].store, o),
			 RS_OK);
	proxy_set_leader(p, true);
	ck_assert_msg(raftfix_step_until(c, raftfix_proxy_is_ready, p, 10000),
		      "the proxy of server %u never became ready", i);
	return p;
}

struct raftfix_epoch_wait {
	bool done;
	int status;
	uint64_t version;
};

static void raftfix_epoch_done(void *arg, int status, uint64_t version)
{
	struct raftfix_epoch_wait *w = arg;

	w->done = true;
	w->status = status;
	w->version = version;
}

static bool raftfix_epoch_answered(void *arg)
{
	return ((struct raftfix_epoch_wait *)arg)->done;
}

uint64_t raftfix_proxy_allocate_epoch(struct raftfix *c, struct proxy *p,
				      uint64_t epoch)
{
	struct raftfix_epoch_wait w = {false, 0, 0};
	struct batch none;

	batch_init(&none);
	ck_assert_int_eq(proxy_allocate_epoch(p, epoch, &none,
					      raftfix_epoch_done, &w),
			 RS_OK);
	batch_free(&none);
	ck_assert(raftfix_step_until(c, raftfix_epoch_answered, &w, 10000));
	ck_assert_int_eq(w.status, RS_OK);
	ck_assert_uint_gt(w.version, 0);
	return w.version;
}

void raftfix_proxy_recovered(struct raftfix *c, struct proxy *p,
			     uint64_t epoch)
{
	raftfix_proxy_allocate_epoch(c, p, epoch);
	proxy_set_epoch(p, epoch);
	proxy_set_accepting(p, true);
}

void raftfix_proxy_close(struct raftfix *c, struct proxy *p)
{
	bool closed = false;

	raftfix_close_raft(c);
	proxy_close(p, raftfix_closed, &closed);
	while (!closed)
		uv_run(&c->loop, UV_RUN_ONCE);
}

struct raftfix_wait_arg {
	bool (*done)(void *arg);
	void *arg;
	uint64_t deadline_ns;
};

static bool raftfix_done_or_late(void *arg)
{
	struct raftfix_wait_arg *w = arg;

	return w->done(w->arg) || uv_hrtime() > w->deadline_ns;
}

bool raftfix_wait(struct raftfix *c, bool (*done)(void *arg), void *arg,
		  unsigned real_ms)
{
	struct raftfix_wait_arg w = {done, arg,
				     uv_hrtime() + real_ms * 1000000ull};

	/* An hour of fixture time: the wall clock is the bound. */
	raftfix_step_until(c, raftfix_done_or_late, &w, 3600u * 1000u);
	return done(arg);
}

struct raftfix_applied_arg {
	struct raftfix *c;
	unsigned mask;
	raft_index index;
};

static bool raftfix_all_applied(void *arg)
{
	struct raftfix_applied_arg *a = arg;

	for (unsigned i = 0; i < a->c->n; i++)
		if ((a->mask & (1u << i)) &&
		    raft_last_applied(raftfix_raft(a->c, i)) < a->index)
			return false;
	return true;
}

void raftfix_step_until_applied(struct raftfix *c, unsigned mask,
				raft_index index, unsigned max_ms)
{
	struct raftfix_applied_arg a = {c, mask, index};

	ck_assert_msg(raftfix_step_until(c, raftfix_all_applied, &a, max_ms),
		      "servers 0x%x did not apply index %llu in %u ms", mask,
		      (unsigned long long)index, max_ms);
}

struct raft_buffer raftfix_entry(uint8_t kind, uint64_t version,
				 uint64_t epoch, const char *key,
				 const char *val)
{
	struct raft_buffer buf = {NULL, 0};
	struct batch b;

	batch_init(&b);
	b.version = version;
	b.epoch = epoch;
	if (key != NULL)
		ck_assert_int_eq(batch_set(&b, key, strlen(key), val,
					   strlen(val), NULL),
				 RS_OK);
	ck_assert_int_eq(fsm_entry_encode(&b, kind, &buf), RS_OK);
	batch_free(&b);
	ck_assert_uint_eq(buf.len % 8, 0);
	return buf;
}

struct raftfix_dump_arg {
	struct rs_buf out;
	bool with_versions;
};

static int raftfix_dump_one(void *ctx, const uint8_t *key, uint32_t key_len,
			    const uint8_t *val, uint32_t val_len,
			    uint64_t found_version)
{
	struct raftfix_dump_arg *a = ctx;
	struct rs_buf *out = &a->out;
	char ver[32] = "\n";
	int n = 1;

	if (a->with_versions)
		n = snprintf(ver, sizeof ver, "@%llu\n",
			     (unsigned long long)found_version);

	ck_assert_int_eq(rs_buf_append(out, key, key_len), RS_OK);
	ck_assert_int_eq(rs_buf_append(out, "=", 1), RS_OK);
	ck_assert_int_eq(rs_buf_append(out, val, val_len), RS_OK);
	ck_assert_int_eq(rs_buf_append(out, ver, (size_t)n), RS_OK);
	return 0;
}

char *raftfix_dump(struct raftfix_replica *r, bool with_versions)
{
	struct raftfix_dump_arg a = {.with_versions = with_versions};
	struct rs_buf *out = &a.out;
	char *s;
	int rv;

	rs_buf_init(out);
	rv = store_range(r->store, "", 0, NULL, 0,
			 store_applied_version(r->store), 0, raftfix_dump_one,
			 &a, NULL);
	ck_assert_msg(rv == RS_OK, "server %u: range: %s", r->index,
		      rs_strerror(rv));
	s = malloc(out->len + 1);
	ck_assert_ptr_nonnull(s);
	if (out->len > 0)
		memcpy(s, out->data, out->len);
	s[out->len] = '\0';
	rs_buf_free(out);
	return s;
}

void raftfix_expect(struct raftfix_replica *r, const char *key,
		    const char *want)
{
	const uint8_t *val;
	uint32_t len;
	int rv = store_get(r->store, key, strlen(key),
			   store_applied_version(r->store), &val, &len, NULL);

	if (want == NULL) {
		ck_assert_msg(rv == RS_ENOTFOUND, "server %u: %s: want absent, "
						  "got %s",
			      r->index, key, rs_strerror(rv));
		return;
	}
	ck_assert_msg(rv == RS_OK, "server %u: %s: %s", r->index, key,
		      rs_strerror(rv));
	ck_assert_msg(len == strlen(want) && memcmp(val, want, len) == 0,
		      "server %u: %s = '%.*s', want '%s'", r->index, key,
		      (int)len, (const char *)val, want);
}
