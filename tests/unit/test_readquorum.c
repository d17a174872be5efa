/*
 * Tests of readquorum: the leader of c-raft's in-memory cluster (server 0,
 * id 1, of three voters) asks two fake members, real TCP servers on
 * loopback that answer TERM as each test tells them (at once, held until
 * released, with another term or node id, or refused).
 *
 * What must hold: a read is confirmed only by a majority of answers to
 * questions sent after it arrived (an answer to a question already out
 * when it arrived does not count, and a new question goes out for it);
 * an answer of another term or from another node never counts; a member
 * that refuses is rested and the other makes the majority; with none
 * left the verdict is UNAVAILABLE (the caller's barrier); a new term
 * forgets every answer; and the counting rule itself, over voters only.
 */
#include <check.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"
#include "raftstore/readquorum.h"
#include "raftstore/server.h"
#include "raftstore/wire.h"
#include "tests/unit/plainfix.h"
#include "tests/unit/testutil.h"

enum fake_mode { FAKE_ANSWER, FAKE_HOLD, FAKE_REFUSE };

struct fake {
	struct server *srv;
	char addr[32];
	enum fake_mode mode;
	uint64_t node_id;  /* what it answers as */
	uint64_t term;     /* 0: the leader's term from the question */
	struct server_req *held[16];
	uint64_t held_term[16];
	unsigned n_held;
	unsigned asked;
	uint64_t last_leader_id;
};

static struct raft_fixture f;
static uv_loop_t loop;
static struct fake fakes[2]; /* members 2 and 3 */
static struct readquorum *rq;
static unsigned progress;
static bool rq_closed;
static unsigned servers_stopped;

static void fake_answer(struct server_conn *conn, uint64_t id,
			const struct fake *fk, uint64_t asked_term)
{
	size_t start;
	struct rs_buf *out = server_reply_begin(conn, id, WIRE_TERM, 0, &start);

	wire_put_status(out, RS_OK, NULL);
	wire_put_u64(out, fk->node_id);
	wire_put_u64(out, fk->term != 0 ? fk->term : asked_term);
	server_reply_end(conn, start);
}

static void fake_handle(void *ctx, struct server_conn *conn,
			const struct wire_frame *fr)
{
	struct fake *fk = ctx;
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_term_req m;

	ck_assert_int_eq(fr->type, WIRE_TERM);
	ck_assert_int_eq(wire_decode_term(fr, &m, errmsg), RS_OK);
	fk->asked++;
	fk->last_leader_id = m.leader_id;
	switch (fk->mode) {
	case FAKE_REFUSE:
		server_reply_status(conn, fr->request_id, WIRE_TERM, RS_EPROTO,
				    "request type 12 is not served");
		break;
	case FAKE_HOLD:
		ck_assert_uint_lt(fk->n_held, 16);
		fk->held_term[fk->n_held] = m.term;
		fk->held[fk->n_held++] = server_req_new(conn, fr);
		break;
	default:
		fake_answer(conn, fr->request_id, fk, m.term);
	}
}

static void fake_closed(void *ctx, struct server_conn *conn)
{
	(void)ctx;
	(void)conn;
}

/* Answer everything fk holds. */
static void fake_release(struct fake *fk)
{
	for (unsigned i = 0; i < fk->n_held; i++) {
		fake_answer(fk->held[i]->conn, fk->held[i]->id, fk,
			    fk->held_term[i]);
		server_req_done(fk->held[i]);
	}
	fk->n_held = 0;
}

static const char *peer_addr(void *ctx, uint64_t id)
{
	(void)ctx;
	return id == 2 || id == 3 ? fakes[id - 2].addr : NULL;
}

static void cluster_id(void *ctx, uint8_t out[16])
{
	(void)ctx;
	memset(out, 0xab, 16);
}

static void on_progress(void *ctx)
{
	(void)ctx;
	progress++;
}

static struct raft *leader(void)
{
	return raft_fixture_get(&f, 0);
}

static void setup(void)
{
	struct readquorum_options o = {.self_id = 1,
				       .peer_addr = peer_addr,
				       .cluster_id = cluster_id,
				       .on_progress = on_progress};
	char errmsg[RS_ERRMSG_SIZE];

	plainfix_start(&f, 3, NULL, NULL);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	memset(fakes, 0, sizeof fakes);
	for (unsigned i = 0; i < 2; i++) {
		int rv = RS_EIO;
		fakes[i].node_id = i + 2;
		for (unsigned a = 0; a < 5 && rv != RS_OK; a++) {
			snprintf(fakes[i].addr, sizeof fakes[i].addr,
				 "127.0.0.1:%d", testutil_free_port());
			rv = server_start(&fakes[i].srv, &loop, fakes[i].addr,
					  NULL, fake_handle, fake_closed,
					  &fakes[i], errmsg);
		}
		ck_assert_int_eq(rv, RS_OK);
	}
	progress = 0;
	rq_closed = false;
	servers_stopped = 0;
	ck_assert_int_eq(readquorum_create(&rq, &loop, leader(), &o), RS_OK);
	readquorum_set_term(rq, raftinfo_term(leader()));
}

static void set_closed(void *arg)
{
	*(bool *)arg = true;
}

static void server_stopped(void *arg)
{
	(void)arg;
	servers_stopped++;
}

static void teardown(void)
{
	for (unsigned i = 0; i < 2; i++)
		fake_release(&fakes[i]);
	readquorum_close(rq, set_closed, &rq_closed);
	for (unsigned i = 0; i < 2; i++)
		server_stop(fakes[i].srv, server_stopped, NULL);
	while (!rq_closed || servers_stopped < 2)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	raft_fixture_close(&f);
}

static void timed_out(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Run the loop until *counter reaches want (fails after 5 s). */
static void run_until(const unsigned *counter, unsigned want)
{
	bool expired = false;
	uv_timer_t t;

	uv_timer_init(&loop, &t);
	t.data = &expired;
	uv_timer_start(&t, timed_out, 5000, 0);
	while (*counter < want && !expired)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_msg(*counter >= want, "waited 5 s for %u, have %u", want,
		      *counter);
}

/* Run the loop for ms of real time. */
static void run_for(unsigned ms)
{
	bool expired = false;
	uv_timer_t t;

	uv_timer_init(&loop, &t);
	t.data = &expired;
	uv_timer_start(&t, timed_out, ms, 0);
	while (!expired)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
}

START_TEST(test_majority_confirms)
{
	uint64_t s = readquorum_arrive(rq);
	struct readquorum_stats st;

	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_WAIT);
	run_until(&progress, 2);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_CONFIRMED);
	ck_assert_uint_eq(fakes[0].asked, 1);
	ck_assert_uint_eq(fakes[1].asked, 1);
	ck_assert_uint_eq(fakes[0].last_leader_id, 1);
	readquorum_get_stats(rq, &st);
	ck_assert_uint_eq(st.questions, 2);
	ck_assert_uint_eq(st.answers, 2);
	ck_assert_uint_eq(st.refused, 0);
}
END_TEST

/* The heart of it: an answer sampled before a read arrived says nothing
 * about a leader elected before that read. */
START_TEST(test_earlier_question_does_not_confirm_a_later_read)
{
	uint64_t s1, s2;

	fakes[0].mode = fakes[1].mode = FAKE_HOLD;
	s1 = readquorum_arrive(rq);
	run_until(&fakes[0].asked, 1);
	run_until(&fakes[1].asked, 1);
	s2 = readquorum_arrive(rq); /* the questions are out already */
	ck_assert_uint_gt(s2, s1);
	run_for(20);
	ck_assert_uint_eq(fakes[0].asked, 1); /* one question each in flight */
	ck_assert_uint_eq(fakes[1].asked, 1);
	fake_release(&fakes[0]);
	fake_release(&fakes[1]);
	run_until(&progress, 2);
	ck_assert_int_eq(readquorum_check(rq, s1), READQUORUM_CONFIRMED);
	ck_assert_int_eq(readquorum_check(rq, s2), READQUORUM_WAIT);
	/* s2 needs newer answers: a second question went out to each */
	run_until(&fakes[0].asked, 2);
	run_until(&fakes[1].asked, 2);
	fakes[0].mode = fakes[1].mode = FAKE_ANSWER;
	fake_release(&fakes[0]);
	run_until(&progress, 3);
	ck_assert_int_eq(readquorum_check(rq, s2), READQUORUM_CONFIRMED);
}
END_TEST

START_TEST(test_other_term_or_node_never_counts)
{
	struct readquorum_stats st;
	uint64_t s;

	fakes[0].term = raftinfo_term(leader()) + 1; /* a newer leader's */
	fakes[1].node_id = 7;                         /* not who was asked */
	s = readquorum_arrive(rq);
	run_until(&progress, 2);
	/* Neither answer counts, however often member 2 (rested 10 ms for
	 * its other term) is asked again: checked over 150 ms, so that no
	 * timing (a slow run under valgrind) decides it. */
	for (int i = 0; i < 10; i++) {
		ck_assert_int_ne(readquorum_check(rq, s), READQUORUM_CONFIRMED);
		run_for(15);
	}
	ck_assert_uint_ge(fakes[0].asked, 2);
	ck_assert_uint_eq(fakes[1].asked, 1); /* rested for 1 s */
	readquorum_get_stats(rq, &st);
	ck_assert_uint_eq(st.answers, 0);
	ck_assert_uint_ge(st.refused, 3);
}
END_TEST

START_TEST(test_one_refusing_member_leaves_a_majority)
{
	uint64_t s;
	struct readquorum_stats st;

	fakes[0].mode = FAKE_REFUSE; /* as a node that does not know TERM */
	s = readquorum_arrive(rq);
	run_until(&progress, 2);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_CONFIRMED);
	/* the refusing member rests: a new read does not ask it again */
	s = readquorum_arrive(rq);
	run_until(&progress, 3);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_CONFIRMED);
	ck_assert_uint_eq(fakes[0].asked, 1);
	ck_assert_uint_eq(fakes[1].asked, 2);
	readquorum_get_stats(rq, &st);
	ck_assert_uint_eq(st.refused, 1);
	/* both refuse: nothing can confirm, the caller uses its barrier */
	fakes[1].mode = FAKE_REFUSE;
	s = readquorum_arrive(rq);
	run_until(&progress, 4);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_UNAVAILABLE);
}
END_TEST

START_TEST(test_unreachable_member_leaves_a_majority)
{
	uint64_t s;

	snprintf(fakes[0].addr, sizeof fakes[0].addr, "127.0.0.1:%d",
		 testutil_free_port()); /* nothing listens there */
	s = readquorum_arrive(rq);
	run_until(&progress, 1);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_CONFIRMED);
}
END_TEST

START_TEST(test_new_term_forgets_answers)
{
	raft_term t = raftinfo_term(leader());
	uint64_t s = readquorum_arrive(rq);

	run_until(&progress, 2);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_CONFIRMED);
	readquorum_set_term(rq, 0);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_UNAVAILABLE);
	readquorum_set_term(rq, t);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_WAIT);
	/* a term c-raft is not in confirms nothing */
	readquorum_set_term(rq, t + 1);
	s = readquorum_arrive(rq);
	run_until(&progress, 4);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_UNAVAILABLE);
}
END_TEST

START_TEST(test_follower_confirms_nothing)
{
	uint64_t s;

	/* server 0 loses its leadership: a follower never confirms */
	raft_fixture_depose(&f);
	ck_assert_int_ne(raft_state(leader()), RAFT_LEADER);
	s = readquorum_arrive(rq);
	run_for(30);
	ck_assert_int_eq(readquorum_check(rq, s), READQUORUM_UNAVAILABLE);
}
END_TEST

/* The counting rule over a configuration with a spare and a standby. */
START_TEST(test_count_rule)
{
	struct raft_configuration c;
	uint64_t ids[] = {2, 3, 4, 5};
	uint64_t conf[] = {0, 0, 0, 0};
	bool usable[] = {true, true, true, true};

	raft_configuration_init(&c);
	ck_assert_int_eq(raft_configuration_add(&c, 1, "a", RAFT_VOTER), 0);
	ck_assert_int_eq(raft_configuration_add(&c, 2, "b", RAFT_VOTER), 0);
	ck_assert_int_eq(raft_configuration_add(&c, 3, "c", RAFT_VOTER), 0);
	ck_assert_int_eq(raft_configuration_add(&c, 4, "d", RAFT_SPARE), 0);
	ck_assert_int_eq(raft_configuration_add(&c, 5, "e", RAFT_STANDBY), 0);
	/* self alone: 1 of 3 */
	ck_assert_int_eq(readquorum_count(&c, 1, ids, conf, usable, 4, 10),
			 READQUORUM_WAIT);
	/* non-voters' answers do not count */
	conf[2] = conf[3] = 11;
	ck_assert_int_eq(readquorum_count(&c, 1, ids, conf, usable, 4, 10),
			 READQUORUM_WAIT);
	/* an answer to a question sent at the read's own stamp is too old */
	conf[0] = 10;
	ck_assert_int_eq(readquorum_count(&c, 1, ids, conf, usable, 4, 10),
			 READQUORUM_WAIT);
	conf[0] = 11;
	ck_assert_int_eq(readquorum_count(&c, 1, ids, conf, usable, 4, 10),
			 READQUORUM_CONFIRMED);
	/* self not a voter: two members needed */
	ck_assert_int_eq(readquorum_count(&c, 4, ids, conf, usable, 4, 10),
			 READQUORUM_WAIT);
	usable[1] = false;
	ck_assert_int_eq(readquorum_count(&c, 4, ids, conf, usable, 4, 10),
			 READQUORUM_UNAVAILABLE);
	/* a member not in ids is not usable */
	conf[0] = 0;
	usable[1] = true;
	ck_assert_int_eq(readquorum_count(&c, 1, ids, conf, usable, 1, 10),
			 READQUORUM_WAIT);
	usable[0] = false;
	ck_assert_int_eq(readquorum_count(&c, 1, ids, conf, usable, 1, 10),
			 READQUORUM_UNAVAILABLE);
	raft_configuration_close(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("readquorum");
	TCase *tc = tcase_create("readquorum");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_majority_confirms);
	tcase_add_test(tc, test_earlier_question_does_not_confirm_a_later_read);
	tcase_add_test(tc, test_other_term_or_node_never_counts);
	tcase_add_test(tc, test_one_refusing_member_leaves_a_majority);
	tcase_add_test(tc, test_unreachable_member_leaves_a_majority);
	tcase_add_test(tc, test_new_term_forgets_answers);
	tcase_add_test(tc, test_follower_confirms_nothing);
	tcase_add_test(tc, test_count_rule);
	suite_add_tcase(s, tc);
	return testutil_run_suite(s);
}
