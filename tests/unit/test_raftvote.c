/*
 * Tests of raftvote (c-raft guard 17) on c-raft's in-memory cluster
 * (raft_fixture): the leader dies, survivor 1's election timer ends first
 * and survivor 2's 300 ms later.  Without the guard, 2 refuses 1 while it
 * still knows its leader, and the election waits for 2's own timer; with
 * it, 2, told that its leader's connection ended, judges 1's requests and
 * 1 wins at once.  A follower whose leader is not gone still refuses (the
 * callback decides), and the other checks of a vote stand (a candidate
 * with a shorter log is refused either way).
 */
#include <check.h>
#include <raft.h>
#include <raft/fixture.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"
#include "raftstore/raftvote.h"
#include "tests/unit/plainfix.h"
#include "tests/unit/testutil.h"

#define N_SERVERS 3u
#define FIRST_MS 300u
#define APART_MS 300u

static struct raft_fixture f;
static bool gone[N_SERVERS]; /* what each server's callback says */
static unsigned gone_calls;

static bool leader_gone(void *ctx, raft_id leader)
{
	unsigned i = (unsigned)(uintptr_t)ctx;

	ck_assert_uint_eq(leader, 1); /* server 0 led */
	gone_calls++;
	return gone[i];
}

static void wrap(struct raft_fixture *fx, unsigned i, void *arg)
{
	struct raft *r = raft_fixture_get(fx, i);

	(void)arg;
	raft_set_pre_vote(r, true);
	ck_assert_int_eq(raftvote_install(r->io, r, leader_gone,
					  (void *)(uintptr_t)i), RS_OK);
}

static void draw(unsigned i, unsigned ms)
{
	raft_fixture_set_randomized_election_timeout(&f, i, ms);
	raftinfo_redraw_election_timer(raft_fixture_get(&f, i));
}

/* Kill the leader, give the survivors timers FIRST_MS and FIRST_MS +
 * APART_MS from their last heartbeat (unless it is dead already),
 * and step until one leads: its
 * index; *after gets how long after survivor 1's timer end it won. */
static unsigned failover(raft_time *after)
{
	raft_time end;
	unsigned leader;

	if (raft_fixture_alive(&f, 0)) {
		raft_fixture_step_until_elapsed(&f, 250);
		raft_fixture_kill(&f, 0);
	}
	draw(1, FIRST_MS);
	draw(2, FIRST_MS + APART_MS);
	end = raftinfo_election_timer_start(raft_fixture_get(&f, 1)) + FIRST_MS;
	leader = plainfix_step_until_new_leader(&f, 0, 10000);
	ck_assert_uint_lt(leader, N_SERVERS);
	ck_assert_uint_ge(raft_fixture_time(&f), end);
	*after = raft_fixture_time(&f) - end;
	return leader;
}

START_TEST(test_first_survivor_wins_when_the_leader_is_gone)
{
	raft_time after;

	memset(gone, 0, sizeof gone);
	plainfix_start(&f, N_SERVERS, wrap, NULL);
	gone[2] = true;
	ck_assert_uint_eq(failover(&after), 1);
	ck_assert_uint_lt(after, APART_MS / 2);
	ck_assert_uint_ge(raftvote_count(raft_fixture_get(&f, 2)->io), 1);
	ck_assert_uint_eq(raftvote_count(raft_fixture_get(&f, 1)->io), 0);
	raft_fixture_close(&f);
}
END_TEST

/* The same, 2's leader not gone: refused until 2's own timer ends. */
START_TEST(test_leader_not_gone_still_refuses)
{
	raft_time after;

	memset(gone, 0, sizeof gone);
	gone_calls = 0;
	plainfix_start(&f, N_SERVERS, wrap, NULL);
	failover(&after);
	ck_assert_uint_ge(after, APART_MS);
	ck_assert_uint_ge(gone_calls, 1); /* asked, and said no */
	ck_assert_uint_eq(raftvote_count(raft_fixture_get(&f, 2)->io), 0);
	raft_fixture_close(&f);
}
END_TEST

/* A candidate whose log lacks an entry the other survivor holds is
 * refused even when that survivor's leader is gone: the guard skips only
 * the "I have a leader" refusal.  Survivor 1 is cut off from the leader
 * while it commits an entry with 2, then stands first. */
START_TEST(test_shorter_log_still_refused)
{
	struct raft_apply req;
	struct raft_buffer buf;
	raft_time after;
	unsigned leader;

	memset(gone, 0, sizeof gone);
	plainfix_start(&f, N_SERVERS, wrap, NULL);
	raft_fixture_saturate(&f, 0, 1);
	raft_fixture_saturate(&f, 1, 0);
	buf.len = 8;
	buf.base = raft_malloc(buf.len);
	memset(buf.base, 'x', buf.len);
	ck_assert_int_eq(raft_apply(raft_fixture_get(&f, 0), &req, &buf, 1,
				    NULL), 0);
	ck_assert(raft_fixture_step_until_applied(
		&f, 2, raft_last_index(raft_fixture_get(&f, 0)), 2000));
	ck_assert_uint_lt(raft_last_index(raft_fixture_get(&f, 1)),
			  raft_last_index(raft_fixture_get(&f, 2)));
	raft_fixture_kill(&f, 0); /* before 1 catches up */
	raft_fixture_desaturate(&f, 0, 1);
	raft_fixture_desaturate(&f, 1, 0);
	gone[1] = gone[2] = true;
	leader = failover(&after);
	ck_assert_uint_eq(leader, 2);
	ck_assert_uint_ge(raftvote_count(raft_fixture_get(&f, 2)->io), 1);
	raft_fixture_close(&f);
}
END_TEST

START_TEST(test_install_again_and_limit)
{
	struct raft_io ios[RAFTVOTE_IO_MAX + 1];
	struct raft r;
	int (*start)(struct raft_io *, unsigned, raft_io_tick_cb,
		     raft_io_recv_cb);

	memset(gone, 0, sizeof gone);
	plainfix_start(&f, N_SERVERS, wrap, NULL);
	start = raft_fixture_get(&f, 1)->io->start;
	ck_assert_int_eq(raftvote_install(raft_fixture_get(&f, 1)->io,
					  raft_fixture_get(&f, 1), leader_gone,
					  (void *)(uintptr_t)1), RS_OK);
	ck_assert_ptr_eq((void *)raft_fixture_get(&f, 1)->io->start,
			 (void *)start);
	raft_fixture_close(&f);

	memset(ios, 0, sizeof ios);
	for (unsigned i = 0; i < RAFTVOTE_IO_MAX + 1; i++)
		ios[i].start = start; /* any non-NULL start */
	for (unsigned i = 0; i < RAFTVOTE_IO_MAX - N_SERVERS; i++)
		ck_assert_int_eq(raftvote_install(&ios[i], &r, leader_gone,
						  NULL), RS_OK);
	ck_assert_int_eq(raftvote_install(&ios[RAFTVOTE_IO_MAX], &r,
					  leader_gone, NULL), RS_ETOOLARGE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftvote");
	TCase *tc = testutil_tcase(s, "fixture", NULL, NULL, 30);

	tcase_add_test(tc, test_first_survivor_wins_when_the_leader_is_gone);
	tcase_add_test(tc, test_leader_not_gone_still_refuses);
	tcase_add_test(tc, test_shorter_log_still_refused);
	tcase_add_test(tc, test_install_again_and_limit);
	return testutil_run_suite(s);
}
