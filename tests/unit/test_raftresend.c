/*
 * Tests of raftresend (c-raft guard 16) over a fake backend whose send
 * records each request and completes it when the test says, with the
 * status the test gives: a message whose write failed is handed to the
 * backend once more, the same message, and c-raft hears only the outcome
 * of the last try; nothing is resent twice, after a close, or for any
 * other failure.  The end-to-end case (raft_uv, a follower's restart) is
 * in test_raftguard.
 */
#include <check.h>
#include <raft.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/raftresend.h"
#include "tests/unit/testutil.h"

#define SENDS_MAX 8

/* The fake backend. */
static struct {
	struct raft_io_send *req[SENDS_MAX];
	raft_io_send_cb cb[SENDS_MAX];
	struct raft_message message[SENDS_MAX];
	unsigned n;
	int fail_sync; /* returned by the next send, if not 0 */
	bool closed;
} be;

static int fake_send(struct raft_io *io, struct raft_io_send *req,
		     const struct raft_message *message, raft_io_send_cb cb)
{
	(void)io;
	if (be.fail_sync != 0) {
		int rv = be.fail_sync;
		be.fail_sync = 0;
		return rv;
	}
	ck_assert_uint_lt(be.n, SENDS_MAX);
	be.req[be.n] = req;
	be.cb[be.n] = cb;
	be.message[be.n] = *message;
	be.n++;
	return 0;
}

static void fake_close(struct raft_io *io, raft_io_close_cb cb)
{
	be.closed = true;
	if (cb != NULL)
		cb(io);
}

/* Complete the backend's k-th send with status. */
static void complete(unsigned k, int status)
{
	ck_assert_uint_lt(k, be.n);
	be.cb[k](be.req[k], status);
}

/* c-raft's side. */
static struct raft_io io;
static struct raft_io_send craft_req;
static unsigned craft_calls;
static int craft_status;

static void craft_cb(struct raft_io_send *req, int status)
{
	ck_assert_ptr_eq(req, &craft_req);
	craft_calls++;
	craft_status = status;
}

static struct raft_entry entries[2];

static struct raft_message vote_request(void)
{
	struct raft_message m = {.type = RAFT_IO_REQUEST_VOTE,
				 .server_id = 2,
				 .server_address = "127.0.0.1:2"};

	m.request_vote.term = 7;
	m.request_vote.candidate_id = 1;
	m.request_vote.last_log_index = 41;
	m.request_vote.last_log_term = 6;
	m.request_vote.pre_vote = true;
	return m;
}

static void setup(void)
{
	memset(&be, 0, sizeof be);
	memset(&io, 0, sizeof io);
	io.send = fake_send;
	io.close = fake_close;
	craft_calls = 0;
	craft_status = -1;
	ck_assert_int_eq(raftresend_install(&io), RS_OK);
	ck_assert_ptr_ne(io.send, fake_send);
	ck_assert_ptr_ne(io.close, fake_close);
}

static void send_one(const struct raft_message *m)
{
	ck_assert_int_eq(io.send(&io, &craft_req, m, craft_cb), 0);
	ck_assert_ptr_eq(craft_req.cb, craft_cb);
}

/* Delivered the first time: one send, c-raft hears 0, nothing resent. */
START_TEST(test_delivered_once)
{
	struct raft_message m = vote_request();

	send_one(&m);
	ck_assert_uint_eq(be.n, 1);
	ck_assert_ptr_ne(be.req[0], &craft_req); /* the wrapper's own */
	ck_assert_uint_eq(craft_calls, 0);
	complete(0, 0);
	ck_assert_uint_eq(craft_calls, 1);
	ck_assert_int_eq(craft_status, 0);
	ck_assert_uint_eq(be.n, 1);
	ck_assert_uint_eq(raftresend_count(&io), 0);
}
END_TEST

/* A failed write: the same message goes to the backend again before
 * c-raft hears anything (its entries must still be alive), and c-raft
 * hears the second try's outcome. */
START_TEST(test_failed_write_is_resent_once)
{
	struct raft_message m = {.type = RAFT_IO_APPEND_ENTRIES,
				 .server_id = 3,
				 .server_address = "127.0.0.1:3"};

	m.append_entries.term = 4;
	m.append_entries.prev_log_index = 10;
	m.append_entries.prev_log_term = 4;
	m.append_entries.leader_commit = 9;
	m.append_entries.entries = entries;
	m.append_entries.n_entries = 2;
	send_one(&m);
	complete(0, RAFT_IOERR);
	ck_assert_uint_eq(craft_calls, 0);
	ck_assert_uint_eq(be.n, 2);
	ck_assert_int_eq(memcmp(&be.message[1], &m, sizeof m), 0);
	ck_assert_ptr_eq(be.message[1].append_entries.entries, entries);
	ck_assert_uint_eq(raftresend_count(&io), 1);
	complete(1, 0);
	ck_assert_uint_eq(craft_calls, 1);
	ck_assert_int_eq(craft_status, 0);

	/* Both tries fail: c-raft hears the failure, no third try. */
	craft_calls = 0;
	send_one(&m);
	complete(2, RAFT_IOERR);
	complete(3, RAFT_IOERR);
	ck_assert_uint_eq(be.n, 4);
	ck_assert_uint_eq(craft_calls, 1);
	ck_assert_int_eq(craft_status, RAFT_IOERR);
	ck_assert_uint_eq(raftresend_count(&io), 2);
}
END_TEST

/* The second try may end otherwise (the queue evicts it, the io closes):
 * c-raft hears that.  A second try the backend refuses at once: c-raft
 * hears the first failure. */
START_TEST(test_second_try_outcome_reaches_craft)
{
	struct raft_message m = vote_request();

	send_one(&m);
	complete(0, RAFT_IOERR);
	complete(1, RAFT_NOCONNECTION);
	ck_assert_uint_eq(craft_calls, 1);
	ck_assert_int_eq(craft_status, RAFT_NOCONNECTION);

	send_one(&m);
	be.fail_sync = RAFT_NOMEM;
	complete(2, RAFT_IOERR);
	ck_assert_uint_eq(be.n, 3);
	ck_assert_uint_eq(craft_calls, 2);
	ck_assert_int_eq(craft_status, RAFT_IOERR);
	ck_assert_uint_eq(raftresend_count(&io), 1);
}
END_TEST

/* Only a failed write is resent: no connection, a cancel or a refusal
 * reach c-raft as they are; a send the backend refuses at once returns
 * its error to c-raft, with no callback. */
START_TEST(test_other_failures_pass)
{
	struct raft_message m = vote_request();
	const int statuses[] = {RAFT_NOCONNECTION, RAFT_CANCELED, RAFT_NOMEM};

	for (unsigned k = 0; k < 3; k++) {
		send_one(&m);
		complete(k, statuses[k]);
		ck_assert_uint_eq(craft_calls, k + 1);
		ck_assert_int_eq(craft_status, statuses[k]);
	}
	ck_assert_uint_eq(be.n, 3);
	be.fail_sync = RAFT_NOMEM;
	ck_assert_int_eq(io.send(&io, &craft_req, &m, craft_cb), RAFT_NOMEM);
	ck_assert_uint_eq(craft_calls, 3);
	ck_assert_uint_eq(raftresend_count(&io), 0);
}
END_TEST

/* Once the io closes, a failed write is not resent (c-raft 0.15 asserts
 * on a send to a closing raft_uv): it reaches c-raft as it is. */
START_TEST(test_no_resend_after_close)
{
	struct raft_message m = vote_request();

	send_one(&m);
	io.close(&io, NULL);
	ck_assert(be.closed);
	complete(0, RAFT_IOERR);
	ck_assert_uint_eq(be.n, 1);
	ck_assert_uint_eq(craft_calls, 1);
	ck_assert_int_eq(craft_status, RAFT_IOERR);
	ck_assert_uint_eq(raftresend_count(&io), 0);
}
END_TEST

/* Installing again on the same io keeps one wrapper (the count restarts);
 * each io has its own slot, up to RAFTRESEND_IO_MAX. */
START_TEST(test_install_twice_and_slots)
{
	static struct raft_io more[RAFTRESEND_IO_MAX];
	struct raft_message m = vote_request();
	int (*wrapped)(struct raft_io *, struct raft_io_send *,
		       const struct raft_message *, raft_io_send_cb) = io.send;
	unsigned ok = 0;

	send_one(&m);
	complete(0, RAFT_IOERR);
	complete(1, 0);
	ck_assert_uint_eq(raftresend_count(&io), 1);
	ck_assert_int_eq(raftresend_install(&io), RS_OK);
	ck_assert_ptr_eq(io.send, wrapped);
	ck_assert_uint_eq(raftresend_count(&io), 0);
	send_one(&m);
	complete(2, 0);
	ck_assert_uint_eq(be.n, 3); /* not wrapped twice: one send */

	for (unsigned i = 0; i < RAFTRESEND_IO_MAX; i++) {
		more[i].send = fake_send;
		more[i].close = fake_close;
		ok += raftresend_install(&more[i]) == RS_OK;
	}
	/* io took a slot already (and earlier cases' ios theirs, in this
	 * process when check does not fork) */
	ck_assert_uint_lt(ok, RAFTRESEND_IO_MAX);
	ck_assert_uint_eq(raftresend_count(&more[RAFTRESEND_IO_MAX - 1]), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftresend");
	TCase *tc = testutil_tcase(s, "resend", setup, NULL, 10);

	tcase_add_test(tc, test_delivered_once);
	tcase_add_test(tc, test_failed_write_is_resent_once);
	tcase_add_test(tc, test_second_try_outcome_reaches_craft);
	tcase_add_test(tc, test_other_failures_pass);
	tcase_add_test(tc, test_no_resend_after_close);
	tcase_add_test(tc, test_install_twice_and_slots);
	return testutil_run_suite(s);
}
