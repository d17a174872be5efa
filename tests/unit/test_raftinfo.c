/*
 * Tests of raftinfo, the one reader of c-raft's struct raft, on c-raft's own
 * in-memory cluster (raft_fixture): each value it reports must be what the
 * running c-raft means by it, so that a c-raft upgrade that moves or
 * changes a field fails here and not in a node's STATUS.
 */
#include <check.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"
#include "tests/unit/plainfix.h"
#include "tests/unit/testutil.h"

#define N_SERVERS 3u

static struct raft_fixture f;

/* Three voters, server 0 (id 1) elected. */
static void setup(void)
{
	plainfix_start(&f, N_SERVERS, NULL, NULL);
}

static void teardown(void)
{
	raft_fixture_close(&f);
}

/* Propose one entry on the leader and step until every server applied it;
 * returns its index. */
static raft_index apply_one(void)
{
	struct raft *leader = raft_fixture_get(&f, 0);
	struct raft_apply *req = calloc(1, sizeof *req);
	struct raft_buffer buf = {raft_malloc(8), 8};

	ck_assert_ptr_nonnull(req);
	memset(buf.base, 0, 8);
	ck_assert_int_eq(raft_apply(leader, req, &buf, 1, NULL), 0);
	ck_assert(raft_fixture_step_until_applied(&f, N_SERVERS,
						  raft_last_index(leader), 5000));
	free(req);
	return raft_last_index(leader);
}

START_TEST(test_role_leader_term)
{
	struct raft *leader = raft_fixture_get(&f, 0);
	struct raft *follower = raft_fixture_get(&f, 1);

	ck_assert_int_eq(raftinfo_state(leader), RAFT_LEADER);
	ck_assert_int_eq(raftinfo_state(follower), RAFT_FOLLOWER);
	ck_assert_str_eq(raftinfo_state_name(raftinfo_state(leader)), "leader");
	ck_assert_str_eq(raftinfo_state_name(raftinfo_state(follower)),
			 "follower");
	ck_assert_str_eq(raftinfo_state_name(RAFT_CANDIDATE), "candidate");
	ck_assert_str_eq(raftinfo_state_name(RAFT_UNAVAILABLE), "unavailable");
	ck_assert_str_eq(raftinfo_state_name(99), "unavailable");
	ck_assert_uint_eq(raftinfo_leader(leader), leader->id);
	apply_one(); /* the followers learn the leader from its entries */
	ck_assert_uint_eq(raftinfo_leader(follower), leader->id);
	ck_assert_uint_ge(raftinfo_term(leader), 2);
	ck_assert_uint_eq(raftinfo_term(follower), raftinfo_term(leader));
}
END_TEST

START_TEST(test_indexes_follow_the_log)
{
	struct raft *leader = raft_fixture_get(&f, 0);
	raft_index before = raftinfo_commit_index(leader);
	raft_index index = apply_one();

	ck_assert_uint_gt(index, before);
	for (unsigned i = 0; i < N_SERVERS; i++) {
		struct raft *r = raft_fixture_get(&f, i);
		ck_assert_uint_eq(raftinfo_applied_index(r), index);
		ck_assert_uint_ge(raftinfo_commit_index(r), index);
	}
	ck_assert_uint_eq(raftinfo_commit_index(leader), index);
}
END_TEST

START_TEST(test_configuration)
{
	const struct raft_configuration *c =
		raftinfo_configuration(raft_fixture_get(&f, 2));

	ck_assert_uint_eq(c->n, N_SERVERS);
	for (unsigned i = 0; i < c->n; i++) {
		ck_assert_uint_eq(c->servers[i].id, i + 1);
		ck_assert_str_eq(raftinfo_server_role_name(c->servers[i].role),
				 "voter");
	}
	ck_assert_str_eq(raftinfo_server_role_name(RAFT_STANDBY), "standby");
	ck_assert_str_eq(raftinfo_server_role_name(RAFT_SPARE), "spare");
}
END_TEST

/* The leader knows how far each follower's log goes; nobody else does. */
START_TEST(test_match_index_leader_only)
{
	struct raft *leader = raft_fixture_get(&f, 0);
	raft_index index = apply_one();
	raft_index match = 0;

	for (unsigned i = 0; i < N_SERVERS; i++) {
		ck_assert(raftinfo_match_index(leader, i, &match));
		ck_assert_uint_eq(match, index);
	}
	ck_assert(!raftinfo_match_index(leader, N_SERVERS, &match));
	ck_assert(!raftinfo_match_index(raft_fixture_get(&f, 1), 0, &match));
	/* deposed: the progress array is gone */
	raft_fixture_depose(&f);
	ck_assert_int_ne(raftinfo_state(leader), RAFT_LEADER);
	ck_assert(!raftinfo_match_index(leader, 0, &match));
}
END_TEST

START_TEST(test_apply_lag_metric)
{
	struct raft *leader = raft_fixture_get(&f, 0);
	struct metrics *ms;
	struct rs_buf out;
	char want[1024];

	apply_one();
	ck_assert_int_eq(metrics_new(&ms), RS_OK);
	ck_assert_int_eq(raftinfo_metrics_register(leader, ms), RS_OK);
	ck_assert_int_eq(raftinfo_metrics_register(leader, ms), RS_OK);
	/* another raft under the same name is refused */
	ck_assert_int_eq(raftinfo_metrics_register(raft_fixture_get(&f, 1), ms),
			 RS_EINVAL);
	rs_buf_init(&out);
	ck_assert_int_eq(metrics_render_prometheus(ms, &out), RS_OK);
	ck_assert_int_eq(rs_buf_append(&out, "", 1), RS_OK);
	snprintf(want, sizeof want,
		 "# HELP raftstore_apply_lag_entries Raft commit index "
		 "minus applied index\n"
		 "# TYPE raftstore_apply_lag_entries gauge\n"
		 "raftstore_apply_lag_entries 0\n"
		 "# HELP raftstore_raft_term Current Raft term\n"
		 "# TYPE raftstore_raft_term gauge\n"
		 "raftstore_raft_term %llu\n"
		 "# HELP raftstore_raft_commit_index Raft commit index known to "
		 "this node\n"
		 "# TYPE raftstore_raft_commit_index counter\n"
		 "raftstore_raft_commit_index %llu\n"
		 "# HELP raftstore_raft_applied_index Raft index applied by this "
		 "node's state machine\n"
		 "# TYPE raftstore_raft_applied_index counter\n"
		 "raftstore_raft_applied_index %llu\n"
		 "# HELP raftstore_is_leader 1 if this node is the Raft leader\n"
		 "# TYPE raftstore_is_leader gauge\n"
		 "raftstore_is_leader 1\n",
		 (unsigned long long)raftinfo_term(leader),
		 (unsigned long long)raftinfo_commit_index(leader),
		 (unsigned long long)raftinfo_applied_index(leader));
	ck_assert_uint_gt(raftinfo_commit_index(leader), 0);
	ck_assert_str_eq((const char *)out.data, want);
	rs_buf_free(&out);
	metrics_free(ms);
}
END_TEST

/* raft_set_election_timeout leaves a running timer as it is (c-raft 0.15);
 * the redraw takes the new baseline and keeps the timer's start, which a
 * heartbeat moves.  On a leader it changes nothing (the roles' states
 * share their memory in struct raft). */
START_TEST(test_redraw_election_timer)
{
	struct raft *leader = raft_fixture_get(&f, 0);
	struct raft *follower = raft_fixture_get(&f, 1);
	raft_time heard;
	raft_index match;

	apply_one();
	raftinfo_redraw_election_timer(leader);
	ck_assert(raftinfo_match_index(leader, 1, &match));
	apply_one();
	heard = raftinfo_election_timer_start(follower);
	raft_fixture_step_until_elapsed(&f, 300);
	ck_assert_uint_gt(raftinfo_election_timer_start(follower), heard);

	raft_fixture_kill(&f, 0); /* the leader goes quiet */
	heard = raftinfo_election_timer_start(follower);
	raft_set_election_timeout(follower, 100);
	ck_assert(!raft_fixture_step_until_state_is(&f, 1, RAFT_CANDIDATE,
						    400));
	raft_fixture_set_randomized_election_timeout(&f, 1, 150); /* the draw */
	raftinfo_redraw_election_timer(follower);
	ck_assert_uint_eq(raftinfo_election_timer_start(follower), heard);
	ck_assert(raft_fixture_step_until_state_is(&f, 1, RAFT_CANDIDATE,
						   200));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftinfo");
	TCase *tc = testutil_tcase(s, "fixture", setup, teardown, 30);

	tcase_add_test(tc, test_role_leader_term);
	tcase_add_test(tc, test_indexes_follow_the_log);
	tcase_add_test(tc, test_configuration);
	tcase_add_test(tc, test_match_index_leader_only);
	tcase_add_test(tc, test_apply_lag_metric);
	tcase_add_test(tc, test_redraw_election_timer);
	return testutil_run_suite(s);
}
