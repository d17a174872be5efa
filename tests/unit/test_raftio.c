/*
 * Tests of raftio: the guard that makes a failed Raft log or snapshot
 * write end the process.  The backend is a fake raft_io whose append and
 * snapshot_put keep the request and let the test complete it.
 */
#include <check.h>
#include <raft.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftstore/raftio.h"
#include "tests/unit/testutil.h"

#define FATAL_EXIT 42

static struct raft_io fake;
static struct raft_io_append *held_append;
static raft_io_append_cb held_append_cb;
static struct raft_io_snapshot_put *held_put;
static raft_io_snapshot_put_cb held_put_cb;
static int outer_calls, outer_status;
static char fatal_msg[512];

static int fake_append_rv; /* what the next append returns */

static int fake_append(struct raft_io *io, struct raft_io_append *req,
		       const struct raft_entry entries[], unsigned n,
		       raft_io_append_cb cb)
{
	(void)io, (void)entries, (void)n;
	if (fake_append_rv != 0)
		return fake_append_rv; /* as raft_uv may, after queueing req */
	req->cb = cb;
	held_append = req;
	held_append_cb = cb;
	return 0;
}

static int fake_snapshot_put(struct raft_io *io, unsigned trailing,
			     struct raft_io_snapshot_put *req,
			     const struct raft_snapshot *snapshot,
			     raft_io_snapshot_put_cb cb)
{
	(void)io, (void)trailing, (void)snapshot;
	held_put = req;
	held_put_cb = cb;
	return 0;
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

static void outer_append_cb(struct raft_io_append *req, int status)
{
	ck_assert_ptr_eq(req->data, &outer_calls);
	outer_calls++;
	outer_status = status;
}

static void outer_put_cb(struct raft_io_snapshot_put *req, int status)
{
	(void)req;
	outer_calls++;
	outer_status = status;
}

static void setup(void)
{
	memset(&fake, 0, sizeof fake);
	fake.append = fake_append;
	fake.snapshot_put = fake_snapshot_put;
	outer_calls = 0;
	outer_status = -1;
	fake_append_rv = 0;
	raftio_guard_install(&fake, "/data/n1/raft", test_fatal, &fake);
}

static void append_one(struct raft_io_append *req)
{
	struct raft_entry e = {.term = 1, .type = RAFT_COMMAND};

	req->data = &outer_calls;
	ck_assert_int_eq(fake.append(&fake, req, &e, 1, outer_append_cb), 0);
	ck_assert_ptr_nonnull(held_append);
	ck_assert_ptr_ne(held_append, req); /* the backend sees the wrapper */
}

START_TEST(test_success_passes_through)
{
	struct raft_io_append req;

	append_one(&req);
	held_append_cb(held_append, 0);
	ck_assert_int_eq(outer_calls, 1);
	ck_assert_int_eq(outer_status, 0);
}
END_TEST

/* A close cancels queued writes: that is no failure. */
START_TEST(test_canceled_passes_through)
{
	struct raft_io_append req;
	struct raft_io_snapshot_put put;

	append_one(&req);
	held_append_cb(held_append, RAFT_CANCELED);
	ck_assert_int_eq(outer_status, RAFT_CANCELED);
	ck_assert_int_eq(fake.snapshot_put(&fake, 0, &put, NULL, outer_put_cb), 0);
	held_put_cb(held_put, RAFT_CANCELED);
	ck_assert_int_eq(outer_calls, 2);
}
END_TEST

START_TEST(test_failed_append_is_fatal)
{
	struct raft_io_append req;

	append_one(&req);
	snprintf(fake.errmsg, sizeof fake.errmsg, "create segment open-1: "
		 "no space left on device");
	held_append_cb(held_append, RAFT_IOERR);
	ck_abort_msg("returned after a failed append");
}
END_TEST

START_TEST(test_failed_snapshot_put_is_fatal)
{
	struct raft_io_snapshot_put put;

	ck_assert_int_eq(fake.snapshot_put(&fake, 0, &put, NULL, outer_put_cb), 0);
	held_put_cb(held_put, RAFT_IOERR);
	ck_abort_msg("returned after a failed snapshot write");
}
END_TEST

/* raft_uv can refuse an append after queueing it: the guard cannot tell
 * whether the callback will still fire, so it stops the node. */
START_TEST(test_append_refused_at_once_is_fatal)
{
	struct raft_io_append req;
	struct raft_entry e = {.term = 1, .type = RAFT_COMMAND};

	fake_append_rv = RAFT_IOERR;
	snprintf(fake.errmsg, sizeof fake.errmsg, "write segment: no space left");
	fake.append(&fake, &req, &e, 1, outer_append_cb);
	ck_abort_msg("returned after a refused append");
}
END_TEST

START_TEST(test_quiet_after_shutdown)
{
	struct raft_io_append req;

	append_one(&req);
	raftio_guard_quiet();
	held_append_cb(held_append, RAFT_IOERR);
	ck_assert_int_eq(outer_status, RAFT_IOERR);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftio");
	TCase *tc = testutil_tcase(s, "guard", setup, NULL, 10);

	tcase_add_test(tc, test_success_passes_through);
	tcase_add_test(tc, test_canceled_passes_through);
	tcase_add_exit_test(tc, test_failed_append_is_fatal, FATAL_EXIT);
	tcase_add_exit_test(tc, test_failed_snapshot_put_is_fatal, FATAL_EXIT);
	tcase_add_exit_test(tc, test_append_refused_at_once_is_fatal, FATAL_EXIT);
	tcase_add_test(tc, test_quiet_after_shutdown);
	return testutil_run_suite(s);
}
