/*
 * Tests of c-raft guard 18 (raftmend's cap on every AppendEntries answer)
 * on c-raft's in-memory cluster (raft_fixture), each case run without
 * and with the guard so that the test shows it can fail.
 *
 * The case: leader 0, cut off, appends an entry E0 at index N+1 that
 * nobody else gets; 1 and 2 elect a new leader L.  L's first heartbeat
 * reaches 0 (previous index N, which matches), and 0 answers with its last
 * stored index, N+1, which holds E0.  Before that answer arrives (0's
 * messages are slow), L appends its own entry at N+1.  c-raft 0.15 takes
 * the answer as 0's match index (it caps it only at its own last index,
 * N+1 by then): L counts 0 toward its entry at N+1, which 0 does not hold
 * (the third node is cut off here, so L + 0 is the majority), and from
 * then on ignores 0's rejections as stale, so 0 never gets L's entries.
 * With the guard, 0 answers N (what the heartbeat matched): L commits N+1
 * only once 0 really holds its entry, and 0 catches up.
 */
#include <check.h>
#include <raft.h>
#include <raft/fixture.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"
#include "raftstore/raftmend.h"
#include "tests/unit/plainfix.h"
#include "tests/unit/testutil.h"

#define N_SERVERS 3u

static struct raft_fixture f;

static void wrap(struct raft_fixture *fx, unsigned i, void *guarded)
{
	if (*(const bool *)guarded)
		ck_assert_int_eq(raftmend_install(raft_fixture_get(fx, i)->io),
				 RS_OK);
}

struct following {
	unsigned who, leader;
};

/* Server `who` follows server `leader` (indexes). */
static bool follows(struct raft_fixture *fx, void *arg)
{
	const struct following *w = arg;
	struct raft *r = raft_fixture_get(fx, w->who);
	raft_id id;
	const char *address;

	raft_leader(r, &id, &address);
	return raft_state(r) == RAFT_FOLLOWER &&
	       id == raft_fixture_get(fx, w->leader)->id;
}

struct outcome {
	bool committed_without_holder; /* L committed N+1, 0 holds E0 there */
	bool converged;                /* 0 holds L's entry at N+1 in the end */
};

static struct outcome run(bool guarded)
{
	struct raft_apply req0, req1;
	struct outcome out = {0};
	struct raft *r0, *rl;
	raft_index n;
	unsigned leader, other;

	plainfix_start(&f, N_SERVERS, wrap, &guarded);
	raft_fixture_step_until_elapsed(&f, 300);
	r0 = raft_fixture_get(&f, 0);
	n = raft_last_index(r0);
	ck_assert_uint_eq(raft_fixture_get(&f, 1)->commit_index, n);

	/* 0, cut off, appends E0 at n + 1. */
	plainfix_cut(&f, 0, 1);
	plainfix_cut(&f, 0, 2);
	plainfix_apply_one(&f, 0, &req0);
	raft_fixture_step_until_elapsed(&f, 50);
	ck_assert_uint_eq(r0->last_stored, n + 1);

	/* 1 and 2 elect a leader L, which appends nothing yet. */
	leader = plainfix_step_until_new_leader(&f, 0, 5000);
	ck_assert_uint_lt(leader, N_SERVERS);
	other = leader == 1 ? 2 : 1;
	rl = raft_fixture_get(&f, leader);
	ck_assert_uint_eq(raft_last_index(rl), n);

	/* L hears 0 again, slowly; the third node is cut off from both. */
	plainfix_cut(&f, leader, other);
	raft_fixture_set_network_latency(&f, 0, 100);
	plainfix_heal(&f, 0, leader);
	ck_assert(raft_fixture_step_until(
		&f, follows, &(struct following){0, leader}, 1000));
	/* 0 answered L's heartbeat; its answer is on the way.  L appends. */
	plainfix_apply_one(&f, leader, &req1);
	ck_assert_uint_eq(raft_last_index(rl), n + 1);

	for (unsigned ms = 0; ms < 2000; ms += 5) {
		raft_fixture_step_until_elapsed(&f, 5);
		if (rl->commit_index >= n + 1 &&
		    raftinfo_term_at(r0, n + 1) != raftinfo_term_at(rl, n + 1))
			out.committed_without_holder = true;
	}
	out.converged =
		raftinfo_term_at(r0, n + 1) == raftinfo_term_at(rl, n + 1) &&
		r0->commit_index >= n + 1;
	raft_fixture_close(&f);
	return out;
}

START_TEST(test_answer_past_the_match_is_capped)
{
	struct outcome with = run(true), without = run(false);

	ck_assert_msg(!with.committed_without_holder,
		      "guarded: the leader committed an entry the follower "
		      "it counted does not hold");
	ck_assert_msg(with.converged, "guarded: the follower did not catch up");
	/* c-raft alone: the answer's extra index is taken as a match. */
	ck_assert(without.committed_without_holder);
	ck_assert(!without.converged);
}
END_TEST

/* ---- an answer written across a term change ---- */

#define N_WIDE 5u
#define F_IDX 1u /* the follower with the slow disk */

struct term_outcome {
	bool counted_without_holder; /* L2's match for F covers N+1, F holds E */
	bool converged;              /* F holds L2's entry at N+1 in the end */
	uint64_t dropped;
};

/*
 * Five servers.  Leader 0, cut off from 2, 3 and 4, sends E at N+1 to F
 * (server 1), whose disk takes 10 s; 0 dies.  2, 3 and 4 elect L2 while F
 * is cut off; F then hears L2's heartbeat (nothing past N) and follows it,
 * and L2 appends its own X at N+1, which reaches everyone but F.  F's
 * write of E completes: c-raft 0.15 answers L2 with L2's term and index
 * N+1, and L2 takes F for a holder of X.
 */
static struct term_outcome run_term_change(bool guarded)
{
	struct raft_apply req0, req1;
	struct term_outcome out = {0};
	struct raft *rf, *rl;
	raft_index n, m;
	unsigned leader;

	plainfix_start(&f, N_WIDE, wrap, &guarded);
	raft_fixture_step_until_elapsed(&f, 300);
	rf = raft_fixture_get(&f, F_IDX);
	n = raft_last_index(raft_fixture_get(&f, 0));
	ck_assert_uint_eq(rf->commit_index, n);
	/* F never stands: it only follows */
	raft_fixture_set_randomized_election_timeout(&f, F_IDX, 100000);

	for (unsigned j = 2; j < N_WIDE; j++)
		plainfix_cut(&f, 0, j);
	raft_fixture_set_disk_latency(&f, F_IDX, 10000);
	plainfix_apply_one(&f, 0, &req0);
	raft_fixture_step_until_elapsed(&f, 50);
	ck_assert_uint_eq(raft_last_index(rf), n + 1);
	ck_assert_uint_eq(raftinfo_last_stored(rf), n);
	raft_fixture_kill(&f, 0);

	for (unsigned j = 2; j < N_WIDE; j++)
		plainfix_cut(&f, F_IDX, j);
	leader = plainfix_step_until_new_leader(&f, 0, 5000);
	ck_assert_uint_ge(leader, 2);
	ck_assert_uint_lt(leader, N_WIDE);
	rl = raft_fixture_get(&f, leader);
	ck_assert_uint_eq(raft_last_index(rl), n);

	plainfix_heal(&f, F_IDX, leader);
	ck_assert(raft_fixture_step_until(
		&f, follows, &(struct following){F_IDX, leader}, 1000));
	ck_assert_uint_eq(raftinfo_last_stored(rf), n); /* E still written */
	raft_fixture_saturate(&f, leader, F_IDX); /* F's answers still go */
	plainfix_apply_one(&f, leader, &req1);
	for (unsigned ms = 0; ms < 15000 && raftinfo_last_stored(rf) < n + 1;
	     ms += 5)
		raft_fixture_step_until_elapsed(&f, 5);
	ck_assert_uint_eq(raftinfo_last_stored(rf), n + 1);
	raft_fixture_step_until_elapsed(&f, 100); /* F's answer, if any */
	out.counted_without_holder =
		raftinfo_match_index(rl, F_IDX, &m) && m >= n + 1 &&
		raftinfo_term_at(rf, n + 1) != raftinfo_term_at(rl, n + 1);
	out.dropped = guarded ? raftmend_dropped_count(rf->io) : 0;

	raft_fixture_set_disk_latency(&f, F_IDX, 10);
	raft_fixture_desaturate(&f, leader, F_IDX);
	raft_fixture_step_until_elapsed(&f, 2000);
	out.converged = raftinfo_term_at(rf, n + 1) ==
				raftinfo_term_at(rl, n + 1) &&
			rf->commit_index >= n + 1;
	raft_fixture_close(&f);
	return out;
}

START_TEST(test_answer_across_a_term_is_dropped)
{
	struct term_outcome without = run_term_change(false);
	struct term_outcome with = run_term_change(true);

	ck_assert_msg(!with.counted_without_holder,
		      "guarded: the new leader took the follower for a holder "
		      "of its entry");
	ck_assert_uint_ge(with.dropped, 1);
	ck_assert_msg(with.converged, "guarded: the follower did not catch up");
	/* c-raft alone: the old leader's entry is claimed as the new one's */
	ck_assert(without.counted_without_holder);
	ck_assert(!without.converged);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftcap");
	TCase *tc = testutil_tcase(s, "fixture", NULL, NULL, 30);

	tcase_add_test(tc, test_answer_past_the_match_is_capped);
	tcase_add_test(tc, test_answer_across_a_term_is_dropped);
	return testutil_run_suite(s);
}
