/*
 * Tests of raftcall: the guard that keeps c-raft callbacks from re-entering
 * c-raft, and (on c-raft's own in-memory fixture) the behaviour of c-raft
 * 0.15 that makes the guard necessary: a deposed leader fails its pending
 * requests while it still reports itself leader.
 */
#include <check.h>
#include <raft.h>
#include <raft/fixture.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/raftcall.h"
#include "tests/unit/plainfix.h"
#include "tests/unit/testutil.h"

START_TEST(test_callback_depth_nests)
{
	ck_assert(!raftcall_in_callback());
	raftcall_cb_enter("outer");
	ck_assert(raftcall_in_callback());
	raftcall_cb_enter("inner");
	raftcall_cb_leave();
	ck_assert(raftcall_in_callback());
	raftcall_cb_leave();
	ck_assert(!raftcall_in_callback());
}
END_TEST

static void unused_barrier_cb(struct raft_barrier *req, int status)
{
	(void)req, (void)status;
	ck_abort_msg("never issued");
}

/* The guard fires before c-raft is touched: the raft struct is never read. */
START_TEST(test_request_inside_callback_aborts)
{
	struct raft r;
	struct raft_barrier req;

	memset(&r, 0, sizeof r);
	raftcall_cb_enter("test callback");
	raftcall_barrier(&r, &req, unused_barrier_cb);
}
END_TEST

/* ---- c-raft's behaviour, on raft_fixture ---- */

struct seen {
	struct raft *r;
	bool called;
	int status;
	int state_in_callback;
};

static void record_barrier(struct raft_barrier *req, int status)
{
	struct seen *s = req->data;

	s->called = true;
	s->status = status;
	s->state_in_callback = raft_state(s->r);
}

/* A leader cut off from both followers steps down and fails the barrier it
 * could not commit; c-raft 0.15 runs that callback before it leaves the
 * leader state, which is why a request from the callback is accepted and
 * then crashes (the isolated-leader SIGSEGV). */
START_TEST(test_deposed_leader_fails_requests_while_leader)
{
	struct raft_fixture f;
	struct raft_barrier req;
	struct seen seen = {NULL, false, 0, -1};
	struct raft *leader;

	plainfix_start(&f, 3, NULL, NULL);
	leader = raft_fixture_get(&f, 0);
	ck_assert_int_eq(raft_state(leader), RAFT_LEADER);

	for (unsigned i = 1; i < 3; i++) {
		raft_fixture_disconnect(&f, 0, i);
		raft_fixture_disconnect(&f, i, 0);
	}
	seen.r = leader;
	req.data = &seen;
	ck_assert_int_eq(raft_barrier(leader, &req, record_barrier), 0);
	/* Record the state c-raft reports inside the failure callback. */
	ck_assert(raft_fixture_step_until_state_is(&f, 0, RAFT_FOLLOWER, 10000));
	ck_assert(seen.called);
	ck_assert_int_ne(seen.status, 0);
	ck_assert_int_eq(seen.state_in_callback, RAFT_LEADER);
	raft_fixture_close(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftcall");
	TCase *tc = testutil_tcase(s, "guard", NULL, NULL, 30);

	tcase_add_test(tc, test_callback_depth_nests);
	tcase_add_test_raise_signal(tc, test_request_inside_callback_aborts,
				    SIGABRT);
	tcase_add_test(tc, test_deposed_leader_fails_requests_while_leader);
	return testutil_run_suite(s);
}
