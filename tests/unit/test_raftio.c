/*
 * Tests of raftio: the guard that makes a failed Raft log or snapshot
 * write end the process, and that keeps c-raft 0.15's raft_uv from losing
 * a truncation.
 *
 * "guard" and "order" use a fake raft_io whose append, truncate and
 * snapshot_put record each request and let the test complete it.  "uv"
 * runs the real raft_uv on a temporary directory: the same sequence of
 * requests, once on raft_uv alone (it loses the truncation: this is what
 * the guard is for) and once through the guard, and reloads the log.
 */
#include <check.h>
#include <dirent.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/raftheap.h"
#include "raftstore/raftio.h"
#include "tests/unit/testutil.h"

#define FATAL_EXIT 42

/* ---- the fake backend ---- */

enum call_kind { CALL_APPEND, CALL_TRUNCATE, CALL_PUT };

struct call {
	enum call_kind kind;
	struct raft_io_append *append;
	raft_io_append_cb append_cb;
	struct raft_io_snapshot_put *put;
	raft_io_snapshot_put_cb put_cb;
	raft_index index; /* truncate */
	unsigned n;       /* append */
};

static struct raft_io fake;
static uv_loop_t loop;
static struct call calls[32];
static unsigned n_calls;
static int outer_calls, outer_status;
static int closed_calls;
static char fatal_msg[512];

static int fake_append_rv; /* what the next append returns */

static int fake_append(struct raft_io *io, struct raft_io_append *req,
		       const struct raft_entry entries[], unsigned n,
		       raft_io_append_cb cb)
{
	(void)io, (void)entries;
	if (fake_append_rv != 0)
		return fake_append_rv; /* as raft_uv may, after queueing req */
	ck_assert_uint_lt(n_calls, 32);
	req->cb = cb;
	calls[n_calls++] = (struct call){
		.kind = CALL_APPEND, .append = req, .append_cb = cb, .n = n};
	return 0;
}

static int fake_truncate(struct raft_io *io, raft_index index)
{
	(void)io;
	ck_assert_uint_lt(n_calls, 32);
	calls[n_calls++] = (struct call){.kind = CALL_TRUNCATE, .index = index};
	return 0;
}

static int fake_snapshot_put(struct raft_io *io, unsigned trailing,
			     struct raft_io_snapshot_put *req,
			     const struct raft_snapshot *snapshot,
			     raft_io_snapshot_put_cb cb)
{
	(void)io, (void)trailing, (void)snapshot;
	ck_assert_uint_lt(n_calls, 32);
	calls[n_calls++] =
		(struct call){.kind = CALL_PUT, .put = req, .put_cb = cb};
	return 0;
}

static int fake_close_fires = 1; /* raft_uv 0.15 can fire it twice */

static void fake_close(struct raft_io *io, raft_io_close_cb cb)
{
	closed_calls++;
	for (int i = 0; i < fake_close_fires; i++)
		if (cb != NULL)
			cb(io);
}

/* _exit, as the node's own fatal path: no atexit work (LeakSanitizer
 * would report the wrapper a refused append leaves to raft_uv). */
static void test_fatal(void *ctx, const char *msg)
{
	ck_assert_ptr_eq(ctx, &fake);
	snprintf(fatal_msg, sizeof fatal_msg, "%s", msg);
	/* The message names the directory, the request and the backend's
	 * own error text. */
	if (strstr(msg, "/data/n1/raft") == NULL)
		_exit(FATAL_EXIT + 1);
	if (strstr(msg, "Raft log append") && strstr(msg, "no space left"))
		_exit(FATAL_EXIT);
	if (strstr(msg, "Raft snapshot write"))
		_exit(FATAL_EXIT);
	_exit(FATAL_EXIT + 2);
}

/* c-raft's side: each outer request records the order its callback came
 * in, in its data field. */
static int outer_order[32];
static unsigned n_outer;

static void outer_append_cb(struct raft_io_append *req, int status)
{
	ck_assert_uint_lt(n_outer, 32);
	outer_order[n_outer++] = req->data != NULL ? *(int *)req->data : -1;
	outer_calls++;
	outer_status = status;
}

static void outer_put_cb(struct raft_io_snapshot_put *req, int status)
{
	ck_assert_uint_lt(n_outer, 32);
	outer_order[n_outer++] = req->data != NULL ? *(int *)req->data : -1;
	outer_calls++;
	outer_status = status;
}

static void setup(void)
{
	memset(&fake, 0, sizeof fake);
	fake.append = fake_append;
	fake.truncate = fake_truncate;
	fake.snapshot_put = fake_snapshot_put;
	fake.close = fake_close;
	memset(calls, 0, sizeof calls);
	n_calls = 0;
	n_outer = 0;
	outer_calls = 0;
	outer_status = -1;
	closed_calls = 0;
	fake_close_fires = 1;
	fake_append_rv = 0;
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	raftio_guard_install(&fake, &loop, "/data/n1/raft", test_fatal, &fake);
}

static void teardown(void)
{
	uv_run(&loop, UV_RUN_NOWAIT);
}

static const struct raft_entry one_entry = {.term = 1, .type = RAFT_COMMAND};

static void append_one(struct raft_io_append *req, int *tag)
{
	req->data = tag;
	ck_assert_int_eq(fake.append(&fake, req, &one_entry, 1, outer_append_cb),
			 0);
}

static void put_one(struct raft_io_snapshot_put *req, unsigned trailing,
		    int *tag)
{
	req->data = tag;
	ck_assert_int_eq(fake.snapshot_put(&fake, trailing, req, NULL,
					   outer_put_cb),
			 0);
}

/* Complete the backend's call i as raft_uv would. */
static void complete(unsigned i, int status)
{
	ck_assert_uint_lt(i, n_calls);
	if (calls[i].kind == CALL_APPEND)
		calls[i].append_cb(calls[i].append, status);
	else if (calls[i].kind == CALL_PUT)
		calls[i].put_cb(calls[i].put, status);
	else
		ck_abort_msg("a truncate has no callback");
}

/* ---- guard: failures ---- */

START_TEST(test_success_passes_through)
{
	struct raft_io_append req;

	append_one(&req, NULL);
	ck_assert_uint_eq(n_calls, 1);
	ck_assert_ptr_ne(calls[0].append, &req); /* the backend sees a wrapper */
	complete(0, 0);
	ck_assert_int_eq(outer_calls, 1);
	ck_assert_int_eq(outer_status, 0);
}
END_TEST

/* c-raft's snapshot-put callback drops the entries the snapshot covers,
 * one free each: this one stands in for it. */
static void *compacted[RAFTHEAP_DEFER_MIN];

static void dropping_put_cb(struct raft_io_snapshot_put *req, int status)
{
	(void)req;
	ck_assert_int_eq(status, 0);
	for (unsigned i = 0; i < RAFTHEAP_DEFER_MIN; i++)
		raft_free(compacted[i]);
	outer_calls++;
}

/* The guard brackets c-raft's snapshot-put callback: its frees go to a
 * worker of the loop (raftheap.h), which frees them (ASan checks). */
START_TEST(test_put_callback_frees_go_to_a_worker)
{
	struct raft_io_snapshot_put put;

	raftheap_install();
	for (unsigned i = 0; i < RAFTHEAP_DEFER_MIN; i++)
		ck_assert_ptr_nonnull(compacted[i] = raft_malloc(32));
	ck_assert_int_eq(fake.snapshot_put(&fake, 0, &put, NULL,
					   dropping_put_cb), 0);
	complete(0, 0);
	ck_assert_int_eq(outer_calls, 1);
	ck_assert_uint_eq(raftheap_stats().lists, 1);
	ck_assert_uint_eq(raftheap_stats().deferred, RAFTHEAP_DEFER_MIN);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	raft_heap_set_default();
}
END_TEST

/* A close cancels queued writes: that is no failure. */
START_TEST(test_canceled_passes_through)
{
	struct raft_io_append req;
	struct raft_io_snapshot_put put;

	append_one(&req, NULL);
	complete(0, RAFT_CANCELED);
	ck_assert_int_eq(outer_status, RAFT_CANCELED);
	put_one(&put, 0, NULL);
	complete(1, RAFT_CANCELED);
	ck_assert_int_eq(outer_calls, 2);
}
END_TEST

START_TEST(test_failed_append_is_fatal)
{
	struct raft_io_append req;

	append_one(&req, NULL);
	snprintf(fake.errmsg, sizeof fake.errmsg, "create segment open-1: "
		 "no space left on device");
	complete(0, RAFT_IOERR);
	ck_abort_msg("returned after a failed append");
}
END_TEST

START_TEST(test_failed_snapshot_put_is_fatal)
{
	struct raft_io_snapshot_put put;

	put_one(&put, 0, NULL);
	complete(0, RAFT_IOERR);
	ck_abort_msg("returned after a failed snapshot write");
}
END_TEST

/* raft_uv can refuse an append after queueing it: the guard cannot tell
 * whether the callback will still fire, so it stops the node. */
START_TEST(test_append_refused_at_once_is_fatal)
{
	struct raft_io_append req;

	fake_append_rv = RAFT_IOERR;
	snprintf(fake.errmsg, sizeof fake.errmsg, "write segment: no space left");
	fake.append(&fake, &req, &one_entry, 1, outer_append_cb);
	ck_abort_msg("returned after a refused append");
}
END_TEST

START_TEST(test_quiet_after_shutdown)
{
	struct raft_io_append req;

	append_one(&req, NULL);
	raftio_guard_quiet();
	complete(0, RAFT_IOERR);
	ck_assert_int_eq(outer_status, RAFT_IOERR);
}
END_TEST

/* ---- order: barriers one at a time ---- */

/* Nothing pending: every request goes straight on. */
START_TEST(test_no_barrier_nothing_held)
{
	struct raft_io_append a1, a2;

	append_one(&a1, NULL);
	ck_assert_int_eq(fake.truncate(&fake, 5), 0);
	ck_assert_uint_eq(n_calls, 2);
	ck_assert_int_eq(calls[1].kind, CALL_TRUNCATE);
	ck_assert_uint_eq(calls[1].index, 5);
	append_one(&a2, NULL); /* behind a truncate: raft_uv orders it */
	ck_assert_uint_eq(n_calls, 3);
	ck_assert_uint_eq(raftio_guard_stats().held, 0);
}
END_TEST

/* The chaos run's case: a truncate while a snapshot put waits is held,
 * with every request after it, until the put is done and raft_uv has
 * lifted its barrier (the next loop turn); then all go, in order. */
START_TEST(test_truncate_waits_for_snapshot_put)
{
	struct raft_io_snapshot_put put;
	struct raft_io_append a1, a2, a3;
	int t1 = 1, t2 = 2, t3 = 3, tp = 9;

	put_one(&put, 8, &tp);
	append_one(&a1, &t1); /* beside a snapshot put: goes on */
	ck_assert_uint_eq(n_calls, 2);
	ck_assert_int_eq(fake.truncate(&fake, 7), 0);
	append_one(&a2, &t2);
	ck_assert_uint_eq(n_calls, 2); /* held */
	ck_assert_uint_eq(raftio_guard_stats().truncates_during_put, 1);

	complete(0, 0); /* the put */
	ck_assert_uint_eq(n_calls, 2); /* still held: the barrier lifts later */
	append_one(&a3, &t3);
	ck_assert_uint_eq(n_calls, 2); /* behind the held ones */
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(n_calls, 5);
	ck_assert_int_eq(calls[2].kind, CALL_TRUNCATE);
	ck_assert_uint_eq(calls[2].index, 7);
	ck_assert_int_eq(calls[3].kind, CALL_APPEND);
	ck_assert_int_eq(calls[4].kind, CALL_APPEND);
	complete(1, 0);
	complete(3, 0);
	complete(4, 0);
	/* c-raft saw the put, then a1, a2, a3: each callback once */
	ck_assert_uint_eq(n_outer, 4);
	ck_assert_int_eq(outer_order[0], 9);
	ck_assert_int_eq(outer_order[1], 1);
	ck_assert_int_eq(outer_order[2], 2);
	ck_assert_int_eq(outer_order[3], 3);
	ck_assert_uint_eq(raftio_guard_stats().held, 3);
}
END_TEST

/* A snapshot put after a truncate waits until an append made after the
 * truncate is written (raft_uv writes it only once the truncation is
 * done); the appends before it do not hold it. */
START_TEST(test_snapshot_put_waits_for_truncate)
{
	struct raft_io_snapshot_put put;
	struct raft_io_append a0, a1;

	append_one(&a0, NULL);
	ck_assert_int_eq(fake.truncate(&fake, 3), 0);
	append_one(&a1, NULL);
	put_one(&put, 8, NULL);
	ck_assert_uint_eq(n_calls, 3); /* the put is held */
	complete(0, 0);                /* a0: written before the truncate */
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(n_calls, 3);
	complete(2, 0); /* a1 */
	ck_assert_uint_eq(n_calls, 3); /* from the timer, not in raft_uv's cb */
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(n_calls, 4);
	ck_assert_int_eq(calls[3].kind, CALL_PUT);
}
END_TEST

/* An append may overtake a held snapshot put (not an install, not a
 * truncate): the append c-raft makes after a truncate then goes on even
 * if a snapshot put came first, and clears the way for the put. */
START_TEST(test_append_overtakes_held_snapshot_put)
{
	struct raft_io_snapshot_put put, install;
	struct raft_io_append a1, a2;

	ck_assert_int_eq(fake.truncate(&fake, 3), 0);
	put_one(&put, 8, NULL); /* held: the truncate may be pending */
	append_one(&a1, NULL);  /* overtakes it */
	ck_assert_uint_eq(n_calls, 2);
	ck_assert_int_eq(calls[1].kind, CALL_APPEND);
	complete(1, 0); /* written: the truncation is done */
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(n_calls, 3);
	ck_assert_int_eq(calls[2].kind, CALL_PUT);
	complete(2, 0);
	uv_run(&loop, UV_RUN_NOWAIT);

	/* An install is never overtaken. */
	ck_assert_int_eq(fake.truncate(&fake, 5), 0);
	put_one(&install, 0, NULL);
	append_one(&a2, NULL);
	ck_assert_uint_eq(n_calls, 4); /* only the truncate went */
	fake.close(&fake, NULL);       /* both held ones are cancelled */
	ck_assert_int_eq(outer_status, RAFT_CANCELED);
}
END_TEST

/* Held requests never reached the backend: a close cancels them, each
 * callback once, and then closes the backend. */
START_TEST(test_close_cancels_held)
{
	struct raft_io_snapshot_put put;
	struct raft_io_append a1;
	int t1 = 1, tp = 9;

	put_one(&put, 8, &tp);
	ck_assert_int_eq(fake.truncate(&fake, 7), 0);
	append_one(&a1, &t1);
	ck_assert_uint_eq(n_calls, 1);
	fake.close(&fake, NULL);
	ck_assert_int_eq(closed_calls, 1);
	ck_assert_uint_eq(n_outer, 1);
	ck_assert_int_eq(outer_order[0], 1);
	ck_assert_int_eq(outer_status, RAFT_CANCELED);
	complete(0, RAFT_CANCELED); /* the backend cancels its own */
	ck_assert_uint_eq(n_outer, 2);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(n_calls, 1); /* nothing passed on after the close */
}
END_TEST

static int raft_close_cbs;

static void count_close_cb(struct raft_io *io)
{
	ck_assert_ptr_eq(io, &fake);
	raft_close_cbs++;
}

/* raft_uv 0.15 may fire its close callback a second time (a segment
 * writer's close finishing late); c-raft's callback frees its state, so it
 * must run once. */
START_TEST(test_close_callback_reaches_craft_once)
{
	raft_close_cbs = 0;
	fake_close_fires = 2;
	fake.close(&fake, count_close_cb);
	ck_assert_int_eq(closed_calls, 1);
	ck_assert_int_eq(raft_close_cbs, 1);
	ck_assert_uint_eq(raftio_guard_stats().close_cb_repeats, 1);
}
END_TEST

/* ---- uv: the real raft_uv ---- */

#define UV_ADDR "127.0.0.1:9"

struct uvrun {
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	char *dir;
	int pending;
};

static void uv_append_cb(struct raft_io_append *req, int status)
{
	struct uvrun *u = req->data;
	ck_assert_int_eq(status, 0);
	u->pending--;
	free(req);
}

static void uv_put_cb(struct raft_io_snapshot_put *req, int status)
{
	struct uvrun *u = req->data;
	ck_assert_int_eq(status, 0);
	u->pending--;
}

static void uv_closed_cb(struct raft_io *io)
{
	struct uvrun *u = io->data;
	u->pending--;
}

static void uv_settle(struct uvrun *u)
{
	for (int i = 0; i < 5000 && u->pending > 0; i++) {
		uv_run(&u->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_int_eq(u->pending, 0);
}

static void uv_open(struct uvrun *u, bool guarded)
{
	ck_assert_int_eq(uv_loop_init(&u->loop), 0);
	ck_assert_int_eq(raft_uv_tcp_init(&u->transport, &u->loop), 0);
	ck_assert_int_eq(raft_uv_init(&u->io, &u->loop, u->dir, &u->transport),
			 0);
	u->io.data = u;
	ck_assert_int_eq(u->io.init(&u->io, 1, UV_ADDR), 0);
	if (guarded)
		raftio_guard_install(&u->io, &u->loop, u->dir, test_fatal,
				     &fake);
}

static void uv_shut(struct uvrun *u)
{
	u->pending = 1;
	u->io.close(&u->io, uv_closed_cb);
	uv_settle(u);
	raft_uv_close(&u->io);
	raft_uv_tcp_close(&u->transport);
	uv_run(&u->loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&u->loop), 0);
}

/* Entries from..from+n-1 of term, each holding its index. */
static void uv_append(struct uvrun *u, raft_term term, uint64_t from,
		      unsigned n)
{
	static struct raft_entry ents[8][16];
	static unsigned slot;
	struct raft_entry *e = ents[slot++ % 8];
	struct raft_io_append *req = malloc(sizeof *req);

	ck_assert_ptr_nonnull(req);
	ck_assert_uint_le(n, 16);
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = from + i;
		e[i] = (struct raft_entry){.term = term, .type = RAFT_COMMAND};
		e[i].buf.len = 8;
		e[i].buf.base = raft_malloc(8);
		memcpy(e[i].buf.base, &v, 8);
	}
	req->data = u;
	u->pending++;
	ck_assert_int_eq(u->io.append(&u->io, req, e, n, uv_append_cb), 0);
}

/* Loaded entries share their batch: each batch is freed once. */
static void uv_free_entries(struct raft_entry *ents, size_t n)
{
	void *last = NULL;

	for (size_t i = 0; i < n; i++)
		if (ents[i].batch != last) {
			last = ents[i].batch;
			raft_free(last);
		}
	raft_free(ents);
}

/* The chaos run's sequence: entries 2..10 of term 1; a snapshot at 8 (with
 * nothing appended after it); a new leader's term-2 entries replace 9 and
 * 10 (truncate at 9, append 9..11), then 12..14.  Returns the reloaded
 * log as "index:term" words, and the segment files it left. */
static void uv_scenario(bool guarded, char *log, size_t log_size,
			char *files, size_t files_size)
{
	struct uvrun u = {.dir = testutil_tmpdir("raftio")};
	struct raft_configuration conf;
	struct raft_snapshot snap = {.index = 8, .term = 1,
				     .configuration_index = 1};
	struct raft_buffer data = {.len = 8};
	struct raft_io_snapshot_put put = {.data = &u};
	raft_term term;
	raft_id vote;
	struct raft_snapshot *loaded;
	raft_index start;
	struct raft_entry *ents;
	size_t n;

	uv_open(&u, guarded);
	raft_configuration_init(&conf);
	ck_assert_int_eq(raft_configuration_add(&conf, 1, UV_ADDR, RAFT_VOTER),
			 0);
	ck_assert_int_eq(u.io.bootstrap(&u.io, &conf), 0);
	ck_assert_int_eq(u.io.load(&u.io, &term, &vote, &loaded, &start, &ents,
				   &n),
			 0);
	uv_free_entries(ents, n);
	uv_append(&u, 1, 2, 9);
	uv_settle(&u);

	snap.configuration = conf;
	data.base = raft_calloc(1, 8);
	snap.bufs = &data;
	snap.n_bufs = 1;
	u.pending++;
	ck_assert_int_eq(u.io.snapshot_put(&u.io, 1, &put, &snap, uv_put_cb), 0);
	ck_assert_int_eq(u.io.truncate(&u.io, 9), 0);
	uv_append(&u, 2, 9, 3);
	uv_settle(&u);
	uv_append(&u, 2, 12, 3);
	uv_settle(&u);
	uv_shut(&u);
	raft_free(data.base);
	raft_configuration_close(&conf);

	files[0] = '\0';
	DIR *d = opendir(u.dir);
	struct dirent *de;
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] == '0') {
			strncat(files, de->d_name, files_size - strlen(files) - 2);
			strcat(files, " ");
		}
	closedir(d);

	uv_open(&u, false);
	log[0] = '\0';
	if (u.io.load(&u.io, &term, &vote, &loaded, &start, &ents, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			uint64_t v;
			char w[48];
			memcpy(&v, ents[i].buf.base, 8);
			ck_assert_uint_eq(v, start + i); /* each holds its index */
			snprintf(w, sizeof w, "%llu:%llu ",
				 (unsigned long long)(start + i),
				 (unsigned long long)ents[i].term);
			strncat(log, w, log_size - strlen(log) - 1);
		}
		uv_free_entries(ents, n);
		if (loaded != NULL) {
			raft_configuration_close(&loaded->configuration);
			for (unsigned i = 0; i < loaded->n_bufs; i++)
				raft_free(loaded->bufs[i].base);
			raft_free(loaded->bufs);
			raft_free(loaded);
		}
	} else {
		snprintf(log, log_size, "load failed: %s", u.io.errmsg);
	}
	uv_shut(&u);
	fprintf(stderr, "raft_uv%s: segments %s; reloaded log: %s\n",
		guarded ? " with the guard" : " alone", files, log);
	testutil_rmtree(u.dir);
	free(u.dir);
}

/* What the guard is for: raft_uv 0.15 alone keeps the truncated entries
 * on disk beside their replacements (two segments hold index 9), and the
 * reload does not give the log that was written.  If Debian's c-raft ever
 * fixes this, this test says so and the guard can go. */
START_TEST(test_raft_uv_alone_loses_the_truncation)
{
	char log[512], files[512];

	uv_scenario(false, log, sizeof log, files, sizeof files);
	ck_assert_msg(strstr(log, "9:2 10:2 11:2 12:2 13:2 14:2") == NULL,
		      "raft_uv alone kept the truncation: log %s, files %s",
		      log, files);
}
END_TEST

START_TEST(test_guard_keeps_the_truncation)
{
	char log[512], files[512];

	uv_scenario(true, log, sizeof log, files, sizeof files);
	ck_assert_msg(strstr(log, "8:1 9:2 10:2 11:2 12:2 13:2 14:2") != NULL &&
			      strstr(log, "load failed") == NULL,
		      "log %s, files %s", log, files);
	ck_assert_uint_eq(raftio_guard_stats().truncates_during_put, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftio");
	TCase *tc = testutil_tcase(s, "guard", setup, teardown, 10);

	tcase_add_test(tc, test_success_passes_through);
	tcase_add_test(tc, test_canceled_passes_through);
	tcase_add_test(tc, test_put_callback_frees_go_to_a_worker);
	tcase_add_exit_test(tc, test_failed_append_is_fatal, FATAL_EXIT);
	tcase_add_exit_test(tc, test_failed_snapshot_put_is_fatal, FATAL_EXIT);
	tcase_add_exit_test(tc, test_append_refused_at_once_is_fatal, FATAL_EXIT);
	tcase_add_test(tc, test_quiet_after_shutdown);

	tc = testutil_tcase(s, "order", setup, teardown, 10);
	tcase_add_test(tc, test_no_barrier_nothing_held);
	tcase_add_test(tc, test_truncate_waits_for_snapshot_put);
	tcase_add_test(tc, test_snapshot_put_waits_for_truncate);
	tcase_add_test(tc, test_append_overtakes_held_snapshot_put);
	tcase_add_test(tc, test_close_cancels_held);
	tcase_add_test(tc, test_close_callback_reaches_craft_once);

	tc = testutil_tcase(s, "uv", NULL, NULL, 30);
	tcase_add_test(tc, test_raft_uv_alone_loses_the_truncation);
	tcase_add_test(tc, test_guard_keeps_the_truncation);
	return testutil_run_suite(s);
}
