/*
 * Tests of c-raft guard 21 (raftcommit: a leader commits by Raft's rule)
 * on c-raft's in-memory cluster (raft_fixture), each case run without and
 * with the guard so that the test shows it can fail.
 *
 * Steady load: the leader's disk is faster than the round trip to a
 * follower, so by the time a follower's answer for one entry arrives the
 * leader has stored the next.  c-raft 0.15 asks whether a majority holds
 * the leader's last stored index, which no answer ever does while entries
 * keep coming: the commit index stays behind.  With the guard it follows
 * the followers' answers.
 *
 * Figure 8 of the Raft paper, on three servers: leader 0 (term A), cut
 * off, stores E0 at N+1; 1 and 2 elect L, which, cut off in turn, stores
 * E1 at N+1 (term B > A) and dies; 0 and the third server S elect 0 (term
 * C), which sends S its E0.  c-raft 0.15 commits E0 as soon as S holds it,
 * by counting, though it is of term A: then 0 dies, L returns, S votes
 * for L (whose last term B is newer than S's A) and L overwrites the E0
 * that 0 applied (c-raft stops S, which finds a committed entry in
 * conflict).  With the guard, 0 commits nothing of an older term by
 * counting, and L's E1 wins cleanly.  Run twice: with E0's write done
 * before 0's second term (the answer path), and with 0's disk so slow
 * that E0 is stored only after S holds it in term C (the own-append
 * path).
 */
#include <check.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/raftcommit.h"
#include "raftstore/raftinfo.h"
#include "tests/unit/plainfix.h"
#include "tests/unit/testutil.h"

#define N_SERVERS 3u

static struct raft_fixture f;

static void wrap(struct raft_fixture *fx, unsigned i, void *guarded)
{
	if (*(const bool *)guarded)
		ck_assert_int_eq(raftcommit_install(raft_fixture_get(fx, i)->io,
						    raft_fixture_get(fx, i)),
				 RS_OK);
}

START_TEST(test_majority_index)
{
	raft_index one[] = {7};
	raft_index three[] = {4, 9, 6};
	raft_index four[] = {3, 8, 8, 1};
	raft_index five[] = {5, 1, 9, 2, 7};

	ck_assert_uint_eq(raftcommit_majority_index(NULL, 0), 0);
	ck_assert_uint_eq(raftcommit_majority_index(one, 1), 7);
	ck_assert_uint_eq(raftcommit_majority_index(three, 3), 6);
	/* four voters: three must hold it */
	ck_assert_uint_eq(raftcommit_majority_index(four, 4), 3);
	ck_assert_uint_eq(raftcommit_majority_index(five, 5), 5);
}
END_TEST

/* ---- steady load ---- */

#define LOAD_ENTRIES 200u
#define LOAD_EVERY_MS 5u

struct load_outcome {
	raft_index committed; /* entries committed while the load ran */
	raft_index max_lag;   /* most entries appended and not committed */
	uint64_t advanced;
};

static struct load_outcome run_load(bool guarded)
{
	struct raft_apply *reqs = calloc(LOAD_ENTRIES, sizeof *reqs);
	struct load_outcome out = {0};
	struct raft *r0;
	raft_index start;

	ck_assert_ptr_nonnull(reqs);
	plainfix_start(&f, N_SERVERS, wrap, &guarded);
	raft_fixture_step_until_elapsed(&f, 300);
	r0 = raft_fixture_get(&f, 0);
	start = raftinfo_commit_index(r0);
	ck_assert_uint_eq(start, raft_last_index(r0));
	/* the leader's disk answers in 1 ms, a round trip takes 30 ms plus
	 * the follower's 10 ms write */
	raft_fixture_set_disk_latency(&f, 0, 1);
	for (unsigned k = 0; k < LOAD_ENTRIES; k++) {
		raft_index lag;

		plainfix_apply_one(&f, 0, &reqs[k]);
		raft_fixture_step_until_elapsed(&f, LOAD_EVERY_MS);
		lag = raft_last_index(r0) - raftinfo_commit_index(r0);
		if (lag > out.max_lag)
			out.max_lag = lag;
	}
	out.committed = raftinfo_commit_index(r0) - start;
	out.advanced = guarded ? raftcommit_advanced_count(r0->io) : 0;
	/* once the load stops, both commit everything */
	raft_fixture_step_until_elapsed(&f, 200);
	ck_assert_uint_eq(raftinfo_commit_index(r0), raft_last_index(r0));
	raft_fixture_close(&f);
	free(reqs);
	return out;
}

START_TEST(test_commit_follows_answers_under_load)
{
	struct load_outcome without = run_load(false), with = run_load(true);

	/* a round trip is 8 entries; the answer path adds a few */
	ck_assert_msg(with.max_lag <= 12,
		      "guarded: %llu entries behind at most, want <= 12",
		      (unsigned long long)with.max_lag);
	ck_assert_uint_ge(with.committed, LOAD_ENTRIES - 12);
	ck_assert_uint_gt(with.advanced, 0);
	/* c-raft alone falls behind while the load lasts */
	ck_assert_msg(without.max_lag > 2 * with.max_lag,
		      "unguarded: %llu behind at most, guarded %llu",
		      (unsigned long long)without.max_lag,
		      (unsigned long long)with.max_lag);
	fprintf(stderr, "steady load: behind at most %llu entries unguarded, "
		"%llu guarded; committed while loaded %llu and %llu of %u\n",
		(unsigned long long)without.max_lag,
		(unsigned long long)with.max_lag,
		(unsigned long long)without.committed,
		(unsigned long long)with.committed, LOAD_ENTRIES);
}
END_TEST

/* ---- Figure 8 ---- */

struct fig8_outcome {
	bool committed_old; /* 0 committed E0 (term A) in term C */
	bool broken;        /* ...and S later lost it or stopped */
	bool e1_won;        /* S holds L's E1 at N+1, committed */
	uint64_t held;
};

static bool leads(struct raft_fixture *fx, void *i)
{
	return raft_state(raft_fixture_get(fx, *(unsigned *)i)) == RAFT_LEADER;
}

struct election {
	unsigned who;
	raft_term after;
};

/* who leads, in a term later than `after` */
static bool leads_after(struct raft_fixture *fx, void *arg)
{
	const struct election *e = arg;
	struct raft *r = raft_fixture_get(fx, e->who);

	return raft_state(r) == RAFT_LEADER && raftinfo_term(r) > e->after;
}

static struct fig8_outcome run_fig8(bool guarded, bool slow_disk)
{
	struct election elected;
	struct raft_apply req0, req1, req2;
	struct fig8_outcome out = {0};
	struct raft *r0, *rl, *rs;
	raft_index n;
	raft_term term_e0, term_e1;
	unsigned zero = 0, leader, other;

	plainfix_start(&f, N_SERVERS, wrap, &guarded);
	raft_fixture_step_until_elapsed(&f, 300);
	r0 = raft_fixture_get(&f, 0);
	n = raft_last_index(r0);
	ck_assert_uint_eq(raftinfo_commit_index(r0), n);

	/* 0, cut off, appends E0 at n + 1 (slowly written, or not). */
	plainfix_cut(&f, 0, 1);
	plainfix_cut(&f, 0, 2);
	if (slow_disk)
		raft_fixture_set_disk_latency(&f, 0, 5000);
	plainfix_apply_one(&f, 0, &req0);
	raft_fixture_set_disk_latency(&f, 0, 10);
	term_e0 = raftinfo_term_at(r0, n + 1);
	raft_fixture_step_until_elapsed(&f, 50);
	ck_assert_uint_eq(raftinfo_last_stored(r0), slow_disk ? n : n + 1);

	/* 1 and 2 elect L, which, cut off from S, stores E1 at n + 1. */
	leader = plainfix_step_until_new_leader(&f, 0, 5000);
	ck_assert_uint_lt(leader, N_SERVERS);
	other = leader == 1 ? 2 : 1;
	rl = raft_fixture_get(&f, leader);
	rs = raft_fixture_get(&f, other);
	plainfix_cut(&f, leader, other);
	ck_assert_uint_eq(raft_last_index(rl), n);
	plainfix_apply_one(&f, leader, &req1);
	raft_fixture_step_until_elapsed(&f, 50);
	term_e1 = raftinfo_term_at(rl, n + 1);
	ck_assert_uint_gt(term_e1, term_e0);
	ck_assert_uint_eq(raftinfo_last_stored(rl), n + 1);
	raft_fixture_kill(&f, leader);

	/* 0 and S elect 0, which sends S its E0. */
	plainfix_heal(&f, 0, other);
	ck_assert(raft_fixture_step_until(&f, leads, &zero, 10000));
	raft_fixture_step_until_elapsed(&f, slow_disk ? 6000 : 1000);
	ck_assert_uint_eq(raftinfo_last_stored(r0), n + 1);
	ck_assert_uint_eq(raftinfo_term_at(rs, n + 1), term_e0);
	out.committed_old = raftinfo_commit_index(r0) >= n + 1;
	/* (a wrapper's slot outlives its fixture: ask only when wrapped) */
	out.held = guarded ? raftcommit_held_count(r0->io) : 0;

	/* 0 dies; L returns (leading its old term until it hears S's), and
	 * S elects it. */
	elected.who = leader;
	elected.after = raftinfo_term(r0);
	raft_fixture_kill(&f, 0);
	raft_fixture_revive(&f, leader);
	plainfix_heal(&f, leader, other);
	if (!raft_fixture_step_until(&f, leads_after, &elected, 10000)) {
		out.broken = out.committed_old;
		raft_fixture_close(&f);
		return out;
	}
	plainfix_apply_one(&f, leader, &req2); /* of L's term: commits what precedes */
	raft_fixture_step_until_elapsed(&f, 1000);
	out.broken = out.committed_old &&
		     (raft_state(rs) == RAFT_UNAVAILABLE ||
		      raftinfo_term_at(rs, n + 1) != term_e0);
	out.e1_won = raft_state(rs) != RAFT_UNAVAILABLE &&
		     raftinfo_term_at(rs, n + 1) == term_e1 &&
		     raftinfo_commit_index(rs) >= n + 1;
	raft_fixture_close(&f);
	return out;
}

static void check_fig8(bool slow_disk)
{
	struct fig8_outcome without = run_fig8(false, slow_disk);
	struct fig8_outcome with = run_fig8(true, slow_disk);

	ck_assert_msg(!with.committed_old,
		      "guarded: an older term's entry committed by counting");
	ck_assert(!with.broken);
	ck_assert_msg(with.e1_won, "guarded: L's entry did not win");
	ck_assert_uint_gt(with.held, 0);
	/* c-raft alone commits E0 by counting, and loses it */
	ck_assert(without.committed_old);
	ck_assert(without.broken);
}

START_TEST(test_old_term_not_committed_on_an_answer)
{
	check_fig8(false);
}
END_TEST

START_TEST(test_old_term_not_committed_on_own_append)
{
	check_fig8(true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftcommit");
	TCase *tc = testutil_tcase(s, "fixture", NULL, NULL, 60);

	tcase_add_test(tc, test_majority_index);
	tcase_add_test(tc, test_commit_follows_answers_under_load);
	tcase_add_test(tc, test_old_term_not_committed_on_an_answer);
	tcase_add_test(tc, test_old_term_not_committed_on_own_append);
	return testutil_run_suite(s);
}
