/*
 * Tests of rafttick (c-raft guard 14) on c-raft's own in-memory cluster
 * (raft_fixture), whose servers all start at time 0 and so tick together,
 * as the processes of a cluster started at once do: the pace reaches
 * c-raft's timers, and two survivors whose election timers run out between
 * the same two heartbeat ticks split the vote without it and elect a
 * leader in one round with it.  Each case is run both ways in the same
 * fixture setup, so that the unpaced run shows the test can fail.
 */
#include <check.h>
#include <raft.h>
#include <raft/fixture.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"
#include "raftstore/rafttick.h"
#include "tests/unit/plainfix.h"
#include "tests/unit/testutil.h"

#define N_SERVERS 3u
#define HEARTBEAT_MS 100u /* the fixture's default */
#define PACE_MS 10u

static struct raft_fixture f;

/* As a node: pre-vote on; paced: the io wrapped with PACE_MS. */
static void like_a_node(struct raft_fixture *fx, unsigned i, void *paced)
{
	raft_set_pre_vote(raft_fixture_get(fx, i), true);
	if (*(const bool *)paced)
		ck_assert_int_eq(rafttick_install(raft_fixture_get(fx, i)->io,
						  PACE_MS), RS_OK);
}

/* Three voters, server 0 (id 1) elected, all paced or none. */
static void start_cluster(bool paced)
{
	plainfix_start(&f, N_SERVERS, like_a_node, &paced);
	/* a few heartbeats, so the followers' timers start from one */
	raft_fixture_step_until_elapsed(&f, 3 * HEARTBEAT_MS + 5);
}

/* Give follower i the election timer `ms`, from its last heartbeat. */
static void draw(unsigned i, unsigned ms)
{
	raft_fixture_set_randomized_election_timeout(&f, i, ms);
	raftinfo_redraw_election_timer(raft_fixture_get(&f, i));
}

/* How late follower i's timer is seen: from its end (start + ms) to the
 * moment it stands. */
static raft_time lateness(unsigned i, unsigned ms)
{
	struct raft *r = raft_fixture_get(&f, i);
	raft_time end = raftinfo_election_timer_start(r) + ms;

	ck_assert(raft_fixture_step_until_state_is(&f, i, RAFT_CANDIDATE,
						   2000));
	ck_assert_uint_ge(raft_fixture_time(&f), end);
	return raft_fixture_time(&f) - end;
}

START_TEST(test_pace_ms)
{
	ck_assert_uint_eq(rafttick_pace_ms(100), 10);
	ck_assert_uint_eq(rafttick_pace_ms(1000), 100);
	ck_assert_uint_eq(rafttick_pace_ms(25), 2);
	ck_assert_uint_eq(rafttick_pace_ms(9), 1);
	ck_assert_uint_eq(rafttick_pace_ms(0), 1);
}
END_TEST

/* The leader goes quiet; follower 1's timer ends 1 ms after a heartbeat
 * tick.  Paced, it stands within PACE_MS of the end; unpaced, a whole
 * heartbeat tick later. */
static raft_time stand_lateness(bool paced)
{
	raft_time start, ms;

	start_cluster(paced);
	raft_fixture_kill(&f, 0);
	draw(2, 1900); /* out of the way */
	start = raftinfo_election_timer_start(raft_fixture_get(&f, 1));
	/* the first end at least 300 ms away that is 1 ms past a multiple
	 * of the heartbeat (the fixture's ticks, all started at time 0) */
	ms = 300 + (HEARTBEAT_MS + 1 - (start + 300) % HEARTBEAT_MS) %
			   HEARTBEAT_MS;
	ck_assert_uint_eq((start + ms) % HEARTBEAT_MS, 1);
	draw(1, (unsigned)ms);
	return lateness(1, (unsigned)ms);
}

START_TEST(test_pace_reaches_the_timers)
{
	raft_time paced = stand_lateness(true);

	raft_fixture_close(&f);
	ck_assert_uint_le(paced, PACE_MS);
	ck_assert_uint_ge(stand_lateness(false), HEARTBEAT_MS - PACE_MS);
	raft_fixture_close(&f);
}
END_TEST

/* The leader dies; both followers' timers end 40 ms apart, between the
 * same two heartbeat ticks.  The term of the next leader: paced, the
 * first round's (the first to stand is refused by the other, still a
 * follower, then grants its pre-vote); unpaced, both stand on one tick
 * and split the first round. */
static raft_term next_leaders_term(bool paced, raft_term *before)
{
	raft_time start, ms;
	unsigned leader;

	start_cluster(paced);
	*before = raftinfo_term(raft_fixture_get(&f, 1));
	raft_fixture_kill(&f, 0);
	start = raftinfo_election_timer_start(raft_fixture_get(&f, 1));
	ck_assert_uint_eq(raftinfo_election_timer_start(raft_fixture_get(&f, 2)),
			  start);
	ms = 200 + (HEARTBEAT_MS + 1 - (start + 200) % HEARTBEAT_MS) %
			   HEARTBEAT_MS;
	draw(1, (unsigned)ms);
	draw(2, (unsigned)ms + 40);
	leader = plainfix_step_until_new_leader(&f, 0, 10000);
	ck_assert_uint_lt(leader, N_SERVERS);
	return raftinfo_term(raft_fixture_get(&f, leader));
}

START_TEST(test_paced_survivors_do_not_split_the_vote)
{
	raft_term before, after;

	after = next_leaders_term(true, &before);
	raft_fixture_close(&f);
	ck_assert_uint_eq(after, before + 1);

	after = next_leaders_term(false, &before);
	raft_fixture_close(&f);
	ck_assert_uint_gt(after, before + 1);
}
END_TEST

static int no_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		    raft_io_recv_cb recv)
{
	(void)io, (void)msecs, (void)tick, (void)recv;
	return 0;
}

/* A second install changes the pace and keeps the original start; the
 * table has room for RAFTTICK_IO_MAX ios. */
/* ---- guard 22: no candidacy while a snapshot is installed ---- */

struct install_outcome {
	bool stood_while_installing; /* candidate with the put under way */
	bool leader_after;           /* 1 and 2 elect a leader after it */
	uint64_t held;
};

static bool installing(struct raft_fixture *fx, void *i)
{
	return raftinfo_installing_snapshot(
		raft_fixture_get(fx, *(unsigned *)i));
}

/*
 * Leader 0 compacts its log past what follower 1 holds, so 1 gets a
 * snapshot; 1's disk takes 3 s to store it, and 0 dies meanwhile.  1's
 * election timer runs out during the install.
 */
static struct install_outcome run_install(bool paced)
{
	struct raft_apply reqs[6];
	struct install_outcome out = {0};
	struct raft *r0, *r1;
	unsigned one = 1;

	start_cluster(paced);
	r0 = raft_fixture_get(&f, 0);
	r1 = raft_fixture_get(&f, 1);
	raft_set_snapshot_threshold(r0, 3);
	raft_set_snapshot_trailing(r0, 0);
	plainfix_cut(&f, 0, 1);
	for (unsigned k = 0; k < 6; k++)
		plainfix_apply_one(&f, 0, &reqs[k]);
	raft_fixture_step_until_elapsed(&f, 200);
	ck_assert_uint_gt(raftinfo_log_base(r0).snapshot_index,
			  raft_last_index(r1));

	raft_fixture_set_disk_latency(&f, 1, 3000);
	plainfix_heal(&f, 0, 1);
	ck_assert(raft_fixture_step_until(&f, installing, &one, 2000));
	raft_fixture_kill(&f, 0);
	for (unsigned ms = 0; ms < 4000 && raftinfo_installing_snapshot(r1);
	     ms += 5) {
		raft_fixture_step_until_elapsed(&f, 5);
		if (raft_state(r1) == RAFT_CANDIDATE &&
		    r1->snapshot.put.data != NULL)
			out.stood_while_installing = true;
	}
	out.held = paced ? rafttick_held_count(r1->io) : 0;
	raft_fixture_set_disk_latency(&f, 1, 10);
	for (unsigned ms = 0; ms < 10000 && !out.leader_after; ms += 5) {
		raft_fixture_step_until_elapsed(&f, 5);
		out.leader_after = raft_state(r1) == RAFT_LEADER ||
				   raft_state(raft_fixture_get(&f, 2)) ==
					   RAFT_LEADER;
	}
	raft_fixture_close(&f);
	return out;
}

START_TEST(test_no_candidacy_while_installing)
{
	struct install_outcome without = run_install(false);
	struct install_outcome with = run_install(true);

	ck_assert_msg(!with.stood_while_installing,
		      "guarded: stood while installing a snapshot");
	ck_assert_uint_gt(with.held, 0);
	ck_assert_msg(with.leader_after, "guarded: no leader after it");
	/* c-raft alone stands with the put under way */
	ck_assert(without.stood_while_installing);
}
END_TEST

START_TEST(test_install_again_and_limit)
{
	struct raft_io ios[RAFTTICK_IO_MAX + 1];
	int (*start)(struct raft_io *, unsigned, raft_io_tick_cb,
		     raft_io_recv_cb);
	start_cluster(true);
	start = raft_fixture_get(&f, 1)->io->start;
	ck_assert_int_eq(rafttick_install(raft_fixture_get(&f, 1)->io, 10),
			 RS_OK);
	ck_assert_ptr_eq((void *)raft_fixture_get(&f, 1)->io->start,
			 (void *)start);
	raft_fixture_close(&f);

	memset(ios, 0, sizeof ios);
	for (unsigned i = 0; i < RAFTTICK_IO_MAX + 1; i++)
		ios[i].start = no_start;
	/* the fixture's three slots stay taken (their ios are gone, as a
	 * node's never goes) */
	for (unsigned i = 0; i < RAFTTICK_IO_MAX - N_SERVERS; i++)
		ck_assert_int_eq(rafttick_install(&ios[i], 5), RS_OK);
	ck_assert_int_eq(rafttick_install(&ios[RAFTTICK_IO_MAX], 5),
			 RS_ETOOLARGE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rafttick");
	TCase *tc = testutil_tcase(s, "fixture", NULL, NULL, 30);

	tcase_add_test(tc, test_pace_ms);
	tcase_add_test(tc, test_pace_reaches_the_timers);
	tcase_add_test(tc, test_paced_survivors_do_not_split_the_vote);
	tcase_add_test(tc, test_no_candidacy_while_installing);
	tcase_add_test(tc, test_install_again_and_limit);
	return testutil_run_suite(s);
}
