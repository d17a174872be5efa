/*
 * Tests of the commit proxy (raftstore/proxy.c) on the leader of a
 * three-server raft_fixture whose servers run the real fsm and stores
 * (tests/unit/raftfix.h):
 *
 *  - batching: transactions queued while a batch is in flight go together
 *    in the next Raft entry, under one commit version;
 *  - the resolver's verdicts reach the clients: conflicts (also between two
 *    transactions of one batch) and too-old read versions, and a rejected
 *    transaction writes nothing;
 *  - read versions: requests waiting on one barrier share the next one;
 *  - leadership lost with requests in flight: each request completes
 *    exactly once, with RS_EUNKNOWN if it was proposed (it may still
 *    commit, and the test shows a case where it does) and RS_ENOTLEADER if
 *    it was not; no completion runs inside a c-raft callback, and the
 *    proxy never calls c-raft from one (raftcall.h aborts if it does);
 *  - a batch fenced by a newer epoch completes with RS_ERECOVERING.
 */
#include <check.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/proxy.h"
#include "raftstore/raftcall.h"
#include "tests/unit/raftfix.h"
#include "tests/unit/testutil.h"

#define N 3
#define WAIT_MS 20000
#define BATCH_MAX 4
/* Long enough never to fire: batches leave when the one in flight lands
 * or the count is reached, which the fixture's clock decides. */
#define BATCH_DELAY_US 30000000u
/* Versions are wall-clock microseconds: a window of a minute keeps every
 * read version of a test checkable, however slow the machine. */
#define WINDOW_VERSIONS 60000000u

static struct raftfix c;
static struct proxy *proxy;

/* A transaction and everything its callback saw. */
struct txn {
	struct proxy_txn t;
	unsigned calls;
	int status;
	uint64_t version;
};

#define TXNS_MAX 16
static struct txn *live_txns[TXNS_MAX];
static unsigned n_txns;

struct grv {
	struct proxy_grv g;
	unsigned calls;
	int status;
	uint64_t version;
};

static const char *no_leader_addr(void *ctx)
{
	(void)ctx;
	return NULL;
}

static void txn_done(struct proxy_txn *t, int status, uint64_t version,
		     const char *message)
{
	struct txn *x = t->data;

	(void)message;
	ck_assert_msg(!raftcall_in_callback(),
		      "a transaction completed inside a c-raft callback");
	x->calls++;
	x->status = status;
	x->version = version;
}

static void grv_done(struct proxy_grv *g, int status, uint64_t version)
{
	struct grv *x = g->data;

	ck_assert_msg(!raftcall_in_callback(),
		      "a read version completed inside a c-raft callback");
	x->calls++;
	x->status = status;
	x->version = version;
}

/* A transaction writing key = val (if key), having read [read_key,
 * read_key + "\0") at read_version (if read_key). */
static void txn_init(struct txn *x, const char *key, const char *val,
		     uint64_t read_version, const char *read_key)
{
	memset(x, 0, sizeof *x);
	proxy_txn_init(&x->t);
	ck_assert_uint_lt(n_txns, TXNS_MAX);
	live_txns[n_txns++] = x;
	x->t.data = x;
	x->t.read_version = read_version;
	if (key != NULL)
		ck_assert_int_eq(batch_set(&x->t.muts, key, strlen(key), val,
					   strlen(val), NULL),
				 RS_OK);
	if (read_key != NULL) {
		uint32_t len = (uint32_t)strlen(read_key);
		uint8_t end[64];
		ck_assert_uint_lt(len, sizeof end);
		memcpy(end, read_key, len);
		end[len] = 0;
		ck_assert_int_eq(proxy_txn_add_range(&x->t,
						     (const uint8_t *)read_key,
						     len, end, len + 1),
				 RS_OK);
	}
}

/* Free every transaction the test initialised (at its end: they live on
 * its stack). */
static void txns_free(void)
{
	while (n_txns > 0)
		proxy_txn_free(&live_txns[--n_txns]->t);
}

static void commit(struct txn *x)
{
	proxy_commit(proxy, &x->t, txn_done);
	ck_assert_uint_eq(x->calls, 0); /* never from inside proxy_commit */
}

static bool txn_answered(void *arg)
{
	return ((struct txn *)arg)->calls > 0;
}

static void wait_txn(struct txn *x)
{
	ck_assert(raftfix_step_until(&c, txn_answered, x, WAIT_MS));
}

static bool grv_answered(void *arg)
{
	return ((struct grv *)arg)->calls > 0;
}

static uint64_t read_version(void)
{
	struct grv g;

	memset(&g, 0, sizeof g);
	g.g.data = &g;
	proxy_grv(proxy, &g.g, grv_done);
	ck_assert(raftfix_step_until(&c, grv_answered, &g, WAIT_MS));
	ck_assert_int_eq(g.status, RS_OK);
	return g.version;
}

/* Server 0 leads; its proxy is READY and accepting at epoch 1, as after
 * its director's recovery. */
static void setup(void)
{
	struct proxy_options o = {.batch_count_max = BATCH_MAX,
				  .batch_delay_us = BATCH_DELAY_US,
				  .resolver_window_versions = WINDOW_VERSIONS,
				  .leader_addr = no_leader_addr};

	raftfix_start(&c, N);
	n_txns = 0;
	proxy = raftfix_proxy_ready(&c, 0, &o);
	raftfix_proxy_recovered(&c, proxy, 1);
}

/* As the node: c-raft first, then the proxy, then the stores. */
static void teardown(void)
{
	if (proxy != NULL)
		raftfix_proxy_close(&c, proxy);
	raftfix_stop(&c);
}

/* Every server applies all that server 0's log holds. */
static void settle(void)
{
	raftfix_step_until_applied(&c, raftfix_all(&c),
				   raft_last_index(raftfix_raft(&c, 0)),
				   WAIT_MS);
}

static struct proxy_stats stats(void)
{
	struct proxy_stats st;

	proxy_get_stats(proxy, &st);
	return st;
}

/* ---- batching ---- */

/* n batches proposed so far, the last one of `last` transactions. */
static void expect_batches(uint64_t n, uint64_t last)
{
	struct proxy_stats st = stats();

	ck_assert_uint_eq(st.batches, n);
	ck_assert_uint_eq(st.last_batch_txns, last);
}

START_TEST(test_queued_transactions_share_one_entry)
{
	struct txn first, queued[3];
	raft_index before = raft_last_index(raftfix_raft(&c, 0));

	txn_init(&first, "a", "0", 0, NULL);
	commit(&first); /* nothing in flight: proposed at once */
	expect_batches(1, 1);
	txn_init(&queued[0], "b", "1", 0, NULL);
	txn_init(&queued[1], "c", "2", 0, NULL);
	txn_init(&queued[2], "d", "3", 0, NULL);
	for (unsigned i = 0; i < 3; i++)
		commit(&queued[i]);
	ck_assert_uint_eq(raft_last_index(raftfix_raft(&c, 0)), before + 1);

	wait_txn(&queued[2]);
	settle();
	ck_assert_uint_eq(raft_last_index(raftfix_raft(&c, 0)), before + 2);
	ck_assert_int_eq(first.status, RS_OK);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_uint_eq(queued[i].calls, 1);
		ck_assert_int_eq(queued[i].status, RS_OK);
		ck_assert_uint_eq(queued[i].version, queued[0].version);
	}
	ck_assert_uint_gt(queued[0].version, first.version);
	expect_batches(2, 3); /* the epoch's entry is not one */
	ck_assert_uint_eq(stats().commits, 4);
	for (unsigned i = 0; i < N; i++) {
		raftfix_expect(&c.reps[i], "b", "1");
		raftfix_expect(&c.reps[i], "d", "3");
		ck_assert_uint_eq(store_applied_version(c.reps[i].store),
				  queued[0].version);
	}
	txns_free();
}
END_TEST

/* batch_count_max queued transactions leave at once, without waiting for
 * the batch in flight to land. */
START_TEST(test_full_batch_leaves_at_once)
{
	struct txn first, queued[BATCH_MAX + 1];
	raft_index before = raft_last_index(raftfix_raft(&c, 0));

	txn_init(&first, "a", "0", 0, NULL);
	commit(&first);
	for (unsigned i = 0; i < BATCH_MAX + 1; i++) {
		txn_init(&queued[i], "k", "v", 0, NULL);
		commit(&queued[i]);
	}
	ck_assert_uint_eq(raft_last_index(raftfix_raft(&c, 0)), before + 2);
	expect_batches(2, BATCH_MAX);
	wait_txn(&queued[BATCH_MAX]);
	expect_batches(3, 1);
	ck_assert_uint_eq(queued[0].version, queued[BATCH_MAX - 1].version);
	ck_assert_uint_gt(queued[BATCH_MAX].version, queued[0].version);
	for (unsigned i = 0; i < BATCH_MAX + 1; i++) {
		ck_assert_uint_eq(queued[i].calls, 1);
		ck_assert_int_eq(queued[i].status, RS_OK);
	}
	txns_free();
}
END_TEST

/* ---- the resolver's verdicts ---- */

START_TEST(test_conflict_after_a_newer_write)
{
	uint64_t rv = read_version();
	struct txn w, late, fresh, blind;

	txn_init(&w, "k", "first", rv, "k");
	commit(&w);
	wait_txn(&w);
	ck_assert_int_eq(w.status, RS_OK);
	ck_assert_uint_gt(w.version, rv);

	txn_init(&late, "k", "lost", rv, "k"); /* read k before w wrote it */
	commit(&late);
	wait_txn(&late);
	ck_assert_int_eq(late.status, RS_ECONFLICT);
	ck_assert_uint_eq(late.version, 0);

	txn_init(&fresh, "k", "second", w.version, "k"); /* read w's write */
	commit(&fresh);
	txn_init(&blind, "j", "blind", rv, NULL); /* read nothing */
	commit(&blind);
	wait_txn(&blind);
	ck_assert_int_eq(fresh.status, RS_OK);
	ck_assert_int_eq(blind.status, RS_OK);
	settle();
	for (unsigned i = 0; i < N; i++)
		raftfix_expect(&c.reps[i], "k", "second");
	ck_assert_uint_eq(stats().conflicts, 1);
	ck_assert_uint_eq(late.calls, 1);
	txns_free();
}
END_TEST

/* Two transactions of one batch: the later one read what the earlier one
 * writes, so it conflicts; the earlier one commits. */
START_TEST(test_conflict_inside_one_batch)
{
	uint64_t rv = read_version();
	struct txn first, writer, reader;

	txn_init(&first, "a", "0", rv, NULL);
	commit(&first); /* in flight: the next two queue together */
	txn_init(&writer, "k", "w", rv, NULL);
	txn_init(&reader, "r", "x", rv, "k");
	commit(&writer);
	commit(&reader);
	wait_txn(&reader);
	wait_txn(&writer);
	ck_assert_int_eq(writer.status, RS_OK);
	ck_assert_int_eq(reader.status, RS_ECONFLICT);
	expect_batches(2, 2); /* both taken into one batch */
	settle();
	for (unsigned i = 0; i < N; i++) {
		raftfix_expect(&c.reps[i], "k", "w");
		raftfix_expect(&c.reps[i], "r", NULL);
	}
	txns_free();
}
END_TEST

/* Once a batch is resolved, a read version more than WINDOW_VERSIONS
 * behind it cannot be checked. */
START_TEST(test_too_old_read_version)
{
	uint64_t rv = read_version();
	struct txn w, old, old_blind;

	txn_init(&w, "a", "0", rv, NULL);
	commit(&w);
	wait_txn(&w);
	ck_assert_int_eq(w.status, RS_OK);
	ck_assert_uint_gt(w.version, 2 * WINDOW_VERSIONS);

	txn_init(&old, "k", "old", w.version - 2 * WINDOW_VERSIONS, "k");
	commit(&old);
	txn_init(&old_blind, "j", "blind", 1, NULL);
	commit(&old_blind);
	wait_txn(&old_blind);
	wait_txn(&old);
	ck_assert_int_eq(old.status, RS_ETOOOLD);
	ck_assert_int_eq(old_blind.status, RS_OK);
	ck_assert_uint_eq(stats().too_old, 1);
	settle();
	for (unsigned i = 0; i < N; i++) {
		raftfix_expect(&c.reps[i], "k", NULL);
		raftfix_expect(&c.reps[i], "j", "blind");
	}
	txns_free();
}
END_TEST

/* ---- read versions ---- */

START_TEST(test_waiting_read_versions_share_a_barrier)
{
	struct grv g[3];
	struct txn w;

	txn_init(&w, "a", "0", 0, NULL);
	commit(&w);
	wait_txn(&w);
	memset(g, 0, sizeof g);
	for (unsigned i = 0; i < 3; i++) {
		g[i].g.data = &g[i];
		proxy_grv(proxy, &g[i].g, grv_done);
	}
	ck_assert(raftfix_step_until(&c, grv_answered, &g[2], WAIT_MS));
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_uint_eq(g[i].calls, 1);
		ck_assert_int_eq(g[i].status, RS_OK);
		ck_assert_uint_ge(g[i].version, w.version);
	}
	/* The first started a round; the two that waited shared the next. */
	ck_assert_uint_eq(stats().grv_rounds, 2);
	ck_assert_uint_eq(stats().grv_requests, 3);
	txns_free();
}
END_TEST

/* ---- leadership loss ---- */

static void lose_acks(void)
{
	for (unsigned i = 1; i < N; i++)
		raft_fixture_saturate(&c.fx, i, 0);
}

static void restore_acks(void)
{
	for (unsigned i = 1; i < N; i++)
		raft_fixture_desaturate(&c.fx, i, 0);
}

static void barrier_done(struct raft_barrier *req, int status)
{
	*(int *)req->data = status;
}

/* Whoever leads next commits an entry of its term, and so everything
 * before it in its log. */
static void commit_barrier_on_new_leader(void)
{
	struct raft_barrier br;
	int status = -1;
	struct raft *leader;

	ck_assert(raft_fixture_step_until_has_leader(&c.fx, WAIT_MS));
	leader = raftfix_raft(&c, raft_fixture_leader_index(&c.fx));
	br.data = &status;
	ck_assert_int_eq(raftcall_barrier(leader, &br, barrier_done), 0);
	raftfix_step_until_applied(&c, raftfix_all(&c), raft_last_index(leader),
				   WAIT_MS);
	ck_assert_int_eq(status, 0);
}

/* The followers received the proposed batch, but the leader never heard
 * back and stepped down: c-raft fails the request, the proxy answers
 * RS_EUNKNOWN, and the queued ones (never proposed) RS_ENOTLEADER.  The
 * next leader then commits the batch: "unknown" was the right answer. */
START_TEST(test_leadership_lost_with_requests_in_flight)
{
	struct txn proposed, queued[2];
	struct grv g;
	struct proxy_stats st;

	lose_acks();
	txn_init(&proposed, "p", "1", 0, NULL);
	commit(&proposed);
	txn_init(&queued[0], "q0", "1", 0, NULL);
	txn_init(&queued[1], "q1", "1", 0, NULL);
	commit(&queued[0]);
	commit(&queued[1]);
	memset(&g, 0, sizeof g);
	g.g.data = &g;
	proxy_grv(proxy, &g.g, grv_done);

	ck_assert(raft_fixture_step_until_state_is(&c.fx, 0, RAFT_FOLLOWER,
						   WAIT_MS));
	ck_assert(raftfix_step_until(&c, txn_answered, &queued[1], WAIT_MS));
	ck_assert(raftfix_step_until(&c, grv_answered, &g, WAIT_MS));
	/* The role poll comes later than c-raft's answers. */
	proxy_set_leader(proxy, false);
	raftfix_step_until(&c, txn_answered, &proposed, WAIT_MS);

	ck_assert_int_eq(proposed.status, RS_EUNKNOWN);
	ck_assert_int_eq(queued[0].status, RS_ENOTLEADER);
	ck_assert_int_eq(queued[1].status, RS_ENOTLEADER);
	ck_assert_int_eq(g.status, RS_ENOTLEADER);
	ck_assert(proxy_idle(proxy));
	st = stats();
	ck_assert_uint_eq(st.unknown, 1);
	ck_assert_str_eq(st.state, "follower");

	restore_acks();
	commit_barrier_on_new_leader();
	for (unsigned i = 0; i < N; i++) {
		raftfix_expect(&c.reps[i], "p", "1");
		raftfix_expect(&c.reps[i], "q0", NULL);
	}
	ck_assert_uint_eq(proposed.calls, 1);
	ck_assert_uint_eq(queued[0].calls, 1);
	ck_assert_uint_eq(queued[1].calls, 1);
	ck_assert_uint_eq(g.calls, 1);
	txns_free();
}
END_TEST

/* The role poll sees the loss first: what is queued fails at once with
 * RS_ENOTLEADER, what c-raft holds later with RS_EUNKNOWN.  The leader
 * was cut off entirely, so the batch is lost: "unknown" again, since the
 * proxy cannot tell the two cases apart. */
START_TEST(test_role_change_seen_before_raft_answers)
{
	struct txn proposed, queued;

	for (unsigned i = 1; i < N; i++) {
		raft_fixture_disconnect(&c.fx, 0, i);
		raft_fixture_disconnect(&c.fx, i, 0);
	}
	txn_init(&proposed, "p", "1", 0, NULL);
	commit(&proposed);
	txn_init(&queued, "q", "1", 0, NULL);
	commit(&queued);
	proxy_set_leader(proxy, false);
	ck_assert(raftfix_step_until(&c, txn_answered, &queued, WAIT_MS));
	ck_assert_int_eq(queued.status, RS_ENOTLEADER);
	ck_assert_uint_eq(proposed.calls, 0);
	ck_assert(!proxy_idle(proxy));

	ck_assert(raftfix_step_until(&c, txn_answered, &proposed, WAIT_MS));
	ck_assert_int_eq(proposed.status, RS_EUNKNOWN);
	ck_assert(proxy_idle(proxy));
	for (unsigned i = 1; i < N; i++) {
		raft_fixture_reconnect(&c.fx, 0, i);
		raft_fixture_reconnect(&c.fx, i, 0);
	}
	ck_assert_uint_eq(queued.calls, 1);
	ck_assert_uint_eq(proposed.calls, 1);
	txns_free();
}
END_TEST

/* A proxy that stays a follower with no leader known: nothing to forward
 * to, so RS_EUNAVAILABLE; a leader not yet accepting refuses clients but
 * lets system transactions through. */
START_TEST(test_follower_and_recovering_answers)
{
	struct txn client, system_txn, orphan;

	proxy_set_accepting(proxy, false);
	txn_init(&client, "c", "1", 0, NULL);
	commit(&client);
	txn_init(&system_txn, "\xff/system", "1", 0, NULL);
	system_txn.t.system = true;
	commit(&system_txn);
	wait_txn(&system_txn);
	wait_txn(&client);
	ck_assert_int_eq(client.status, RS_ERECOVERING);
	ck_assert_int_eq(system_txn.status, RS_OK);

	proxy_set_leader(proxy, false);
	txn_init(&orphan, "o", "1", 0, NULL);
	commit(&orphan);
	wait_txn(&orphan);
	ck_assert_int_eq(orphan.status, RS_EUNAVAILABLE);
	txns_free();
}
END_TEST

/* The node shuts down with a batch in c-raft and more queued: c-raft
 * closes first and fails what it holds (unknown: it may have committed),
 * then the proxy answers what it never proposed; each exactly once. */
START_TEST(test_shutdown_answers_every_request_once)
{
	struct txn proposed, queued;
	struct grv g;

	txn_init(&proposed, "p", "1", 0, NULL);
	commit(&proposed);
	txn_init(&queued, "q", "1", 0, NULL);
	commit(&queued);
	memset(&g, 0, sizeof g);
	g.g.data = &g;
	proxy_grv(proxy, &g.g, grv_done);
	ck_assert(!proxy_idle(proxy));

	raftfix_proxy_close(&c, proxy);
	proxy = NULL;
	ck_assert_uint_eq(proposed.calls, 1);
	ck_assert_int_eq(proposed.status, RS_EUNKNOWN);
	ck_assert_uint_eq(queued.calls, 1);
	ck_assert_int_eq(queued.status, RS_ESHUTDOWN);
	ck_assert_uint_eq(g.calls, 1);
	ck_assert_int_eq(g.status, RS_ENOTLEADER);
	txns_free();
}
END_TEST

/* ---- fencing ---- */

/* A newer epoch was allocated, but this proxy still stamps its batches
 * with the old one: the state machine fences them on every replica and
 * the client learns it was not applied. */
START_TEST(test_fenced_batch_reports_recovering)
{
	struct txn stale, current;

	raftfix_proxy_allocate_epoch(&c, proxy, 2);
	txn_init(&stale, "k", "stale", 0, NULL);
	commit(&stale);
	wait_txn(&stale);
	ck_assert_int_eq(stale.status, RS_ERECOVERING);
	ck_assert_uint_eq(stats().fenced, 1);

	proxy_set_epoch(proxy, 2);
	txn_init(&current, "k", "current", 0, NULL);
	commit(&current);
	wait_txn(&current);
	ck_assert_int_eq(current.status, RS_OK);
	settle();
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(c.reps[i].fsm.fenced_entries, 1);
		raftfix_expect(&c.reps[i], "k", "current");
	}
	txns_free();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = testutil_tcase(s, "batching", setup, teardown, 30);

	log_set_level(LOG_WARN); /* every setup logs proxy.ready */

	tcase_add_test(tc, test_queued_transactions_share_one_entry);
	tcase_add_test(tc, test_full_batch_leaves_at_once);
	tc = testutil_tcase(s, "resolver", setup, teardown, 30);
	tcase_add_test(tc, test_conflict_after_a_newer_write);
	tcase_add_test(tc, test_conflict_inside_one_batch);
	tcase_add_test(tc, test_too_old_read_version);
	tcase_add_test(tc, test_waiting_read_versions_share_a_barrier);
	tc = testutil_tcase(s, "leadership", setup, teardown, 30);
	tcase_add_test(tc, test_leadership_lost_with_requests_in_flight);
	tcase_add_test(tc, test_role_change_seen_before_raft_answers);
	tcase_add_test(tc, test_follower_and_recovering_answers);
	tcase_add_test(tc, test_shutdown_answers_every_request_once);
	tc = testutil_tcase(s, "fencing", setup, teardown, 30);
	tcase_add_test(tc, test_fenced_batch_reports_recovering);
	return testutil_run_suite(s);
}
