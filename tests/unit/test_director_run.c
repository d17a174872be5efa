/*
 * Tests of the director itself (director/director.h), running on a
 * one-node cluster: a real store, c-raft with its libuv backend on a
 * temporary directory, the state machine and the commit proxy, all on one
 * loop, as the node wires them.  The director's env is the test interface:
 * its event and exited callbacks tell the test what happened, and its
 * system_txn_fault makes the system transaction fail as it is submitted,
 * before anything is proposed.
 *
 * What they check (the seed's third success metric): a system transaction
 * that fails before commit (refused, in conflict, leadership lost) makes
 * the director exit with a reason that says so, nothing of that
 * transaction is persisted, and the next epoch's director succeeds and is
 * the one whose layout is stored.  The director reads its env's faults only
 * in a build configured with --enable-fault-hooks; without it only the
 * fault-free case runs, and the program says the others were skipped.
 */
#include <check.h>
#include <inttypes.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "director/director.h"
#include "director/tsl.h"
#include "raftstore/fsm.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/proxy.h"
#include "raftstore/raftio.h"
#include "storage/store.h"
#include "tests/unit/testutil.h"

#define RIG_NODE_ID 1u
#define RIG_WAIT_MS 10000u /* longest wait for one director's outcome */

/* One node: everything the director's env points at. */
struct rig {
	uv_loop_t loop;
	char *dir;
	struct store *store;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct fsm fsm;
	struct raft raft;
	struct proxy *proxy;
	struct director_registry registry;
	struct director *director;
	uv_timer_t poll;       /* role changes, as the node polls them */
	uv_timer_t watchdog;   /* ends a run that never finishes */
	bool leader;
	bool ready;            /* the proxy's leadership barrier is done */
	/* what the running director reported */
	bool persisted;
	bool exited;
	bool timed_out;
	uint64_t persisted_epoch;
	char reason[256];      /* as the exited callback got it */
	char exit_phase[32];   /* the director_exit event's members */
	char exit_reason[256];
	unsigned closed;
};

static struct rig rig;

static void rig_fatal(void *ctx, const char *msg)
{
	(void)ctx;
	ck_abort_msg("state machine failed: %s", msg);
}

/* The director's events: the members object is ours (the env's contract). */
static void rig_event(void *ctx, const char *name, json_t *members)
{
	struct rig *r = ctx;
	const char *s;

	ck_assert_ptr_nonnull(members);
	if (strcmp(name, DIRECTOR_EV_LAYOUT_PERSISTED) == 0) {
		r->persisted = true;
		ck_assert_int_eq(rs_json_get_u64(members, "epoch",
						 &r->persisted_epoch, NULL), RS_OK);
		uv_stop(&r->loop);
	} else if (strcmp(name, DIRECTOR_EV_DIRECTOR_EXIT) == 0) {
		ck_assert_int_eq(rs_json_get_str(members, "phase", &s, NULL, NULL),
				 RS_OK);
		snprintf(r->exit_phase, sizeof r->exit_phase, "%s", s);
		ck_assert_int_eq(rs_json_get_str(members, "reason", &s, NULL,
						 NULL), RS_OK);
		snprintf(r->exit_reason, sizeof r->exit_reason, "%s", s);
	}
	json_decref(members);
}

static void rig_exited(void *ctx, const char *reason)
{
	struct rig *r = ctx;

	ck_assert(!r->exited);
	r->exited = true;
	snprintf(r->reason, sizeof r->reason, "%s", reason);
	uv_stop(&r->loop);
}

static void rig_ready(void *ctx)
{
	struct rig *r = ctx;
	r->ready = true;
	uv_stop(&r->loop);
}

static const char *rig_no_leader_addr(void *ctx)
{
	(void)ctx;
	return NULL; /* only ever asked on a follower */
}

static void rig_poll_tick(uv_timer_t *t)
{
	struct rig *r = t->data;
	bool leader = raft_state(&r->raft) == RAFT_LEADER;

	if (leader != r->leader) {
		r->leader = leader;
		proxy_set_leader(r->proxy, leader);
	}
}

static void rig_watchdog_tick(uv_timer_t *t)
{
	struct rig *r = t->data;
	r->timed_out = true;
	uv_stop(&r->loop);
}

/* Run the loop until a callback stops it; fails the test after
 * RIG_WAIT_MS. */
static void rig_run(struct rig *r)
{
	r->timed_out = false;
	uv_timer_start(&r->watchdog, rig_watchdog_tick, RIG_WAIT_MS, 0);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	uv_timer_stop(&r->watchdog);
	ck_assert_msg(!r->timed_out, "nothing happened in %u ms", RIG_WAIT_MS);
}

static void rig_open_raft(struct rig *r, const char *raft_dir)
{
	struct raft_configuration conf;

	ck_assert_int_eq(raft_uv_tcp_init(&r->transport, &r->loop), 0);
	ck_assert_int_eq(raft_uv_init(&r->io, &r->loop, raft_dir, &r->transport),
			 0);
	/* As the node does: among others, raft_uv 0.15's close callback then
	 * reaches c-raft once (raftio.h). */
	raftio_guard_install(&r->io, &r->loop, raft_dir, rig_fatal, r);
	fsm_init(&r->fsm, r->store, NULL, NULL, rig_fatal, r);
	ck_assert_int_eq(raft_init(&r->raft, &r->io, &r->fsm.raft, RIG_NODE_ID,
				   "127.0.0.1:0"), 0);
	r->raft.data = r;
	raft_configuration_init(&conf);
	ck_assert_int_eq(raft_configuration_add(&conf, RIG_NODE_ID, "127.0.0.1:0",
						RAFT_VOTER), 0);
	ck_assert_int_eq(raft_bootstrap(&r->raft, &conf), 0);
	raft_configuration_close(&conf);
	/* A lone voter elects itself at start. */
	ck_assert_int_eq(raft_start(&r->raft), 0);
}

/* A one-node cluster whose proxy is the ready leader. */
static void rig_setup(void)
{
	struct rig *r = &rig;
	char errmsg[RS_ERRMSG_SIZE];
	struct store_options so = {.sync = JOURNAL_SYNC_NONE,
				   .apply_on_accept = true};
	struct store_open_report rep;
	struct proxy_options po = {.batch_count_max = 16,
				   .batch_delay_us = 100,
				   .on_ready = rig_ready,
				   .leader_addr = rig_no_leader_addr,
				   .ctx = r};
	char *store_dir, *raft_dir;

	memset(r, 0, sizeof *r);
	ck_assert_int_eq(uv_loop_init(&r->loop), 0);
	r->dir = testutil_tmpdir("director-run");
	store_dir = testutil_path(r->dir, "store");
	raft_dir = testutil_path(r->dir, "raft");
	ck_assert_int_eq(mkdir(raft_dir, 0700), 0);
	so.dir = store_dir;
	ck_assert_msg(store_open(&r->store, &r->loop, &so, &rep, errmsg) == RS_OK,
		      "%s", errmsg);
	rig_open_raft(r, raft_dir);
	ck_assert_int_eq(proxy_create(&r->proxy, &r->loop, &r->raft, r->store,
				      &po), RS_OK);
	uv_timer_init(&r->loop, &r->watchdog);
	r->watchdog.data = r;
	uv_timer_init(&r->loop, &r->poll);
	r->poll.data = r;
	uv_timer_start(&r->poll, rig_poll_tick, 0, 5);
	rig_run(r);
	ck_assert(r->leader && r->ready);
	free(store_dir);
	free(raft_dir);
}

static void rig_closed(void *arg)
{
	((struct rig *)arg)->closed++;
}

static void rig_store_closed(void *arg)
{
	rig_closed(arg);
}

static void rig_proxy_closed(void *arg)
{
	struct rig *r = arg;

	raft_uv_close(&r->io);
	raft_uv_tcp_close(&r->transport);
	store_close(r->store, rig_store_closed, r);
}

static void rig_raft_closed(struct raft *raft)
{
	struct rig *r = raft->data;
	proxy_close(r->proxy, rig_proxy_closed, r);
}

/* Close in the node's order; the loop must close cleanly. */
static void rig_teardown(void)
{
	struct rig *r = &rig;

	if (r->director != NULL)
		director_stop(r->director);
	uv_close((uv_handle_t *)&r->poll, NULL);
	uv_close((uv_handle_t *)&r->watchdog, NULL);
	raft_close(&r->raft, rig_raft_closed);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	ck_assert_uint_eq(r->closed, 1);
	ck_assert_int_eq(uv_loop_close(&r->loop), 0);
	testutil_rmtree(r->dir);
	free(r->dir);
}

/* Start the next director, as the node does after an exit, and run until
 * it has persisted its layout or exited. */
static void rig_director(struct rig *r, enum director_txn_fault fault)
{
	struct director_env env = {
		.loop = &r->loop,
		.raft = &r->raft,
		.store = r->store,
		.proxy = r->proxy,
		.registry = &r->registry,
		.node_id = RIG_NODE_ID,
		.client_addr = "127.0.0.1:1",
		.current_epoch = r->fsm.epoch,
		.coordinators = "1=127.0.0.1:0/127.0.0.1:1",
		.failure_ms = 1000,
		.recruit_wait_ms = 50,
		.persist_timeout_ms = 5000,
		.system_txn_fault = fault,
		.event = rig_event,
		.exited = rig_exited,
		.ctx = r,
	};

	if (r->director != NULL)
		director_stop(r->director);
	ck_assert_int_eq(director_registry_update(&r->registry, RIG_NODE_ID,
						  "127.0.0.1:0", "127.0.0.1:1",
						  TSL_CAP_ALL, 0,
						  uv_now(&r->loop)), RS_OK);
	r->persisted = r->exited = false;
	r->reason[0] = r->exit_phase[0] = r->exit_reason[0] = '\0';
	r->director = director_start(&env);
	rig_run(r);
}

static bool rig_has(const struct rig *r, const char *key)
{
	const uint8_t *val;
	uint32_t len;

	return store_get(r->store, key, strlen(key),
			 store_applied_version(r->store), &val, &len,
			 NULL) == RS_OK;
}

static void rig_stored_layout(const struct rig *r, struct tsl *out)
{
	const uint8_t *val;
	uint32_t len;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(store_get(r->store, DIRECTOR_KEY_LAYOUT,
				   strlen(DIRECTOR_KEY_LAYOUT),
				   store_applied_version(r->store), &val, &len,
				   NULL), RS_OK);
	ck_assert_msg(tsl_decode(val, len, out, errmsg) == RS_OK, "%s", errmsg);
}

/* ---- tests ---- */

/* The rig itself: with no fault, the first director persists epoch 1. */
START_TEST(test_director_persists_epoch_1)
{
	struct tsl t;

	rig_director(&rig, DIRECTOR_TXN_FAULT_NONE);
	ck_assert(rig.persisted && !rig.exited);
	ck_assert_uint_eq(rig.persisted_epoch, 1);
	rig_stored_layout(&rig, &t);
	ck_assert_uint_eq(t.epoch, 1);
	ck_assert_uint_eq(t.director.node_id, RIG_NODE_ID);
	ck_assert(rig_has(&rig, DIRECTOR_KEY_LAST_RECOVERY));
}
END_TEST

#ifdef RS_FAULT_HOOKS
static uint64_t rig_stored_epoch(const struct rig *r)
{
	const uint8_t *val;
	uint32_t len;

	ck_assert_int_eq(store_get(r->store, DIRECTOR_KEY_EPOCH,
				   strlen(DIRECTOR_KEY_EPOCH),
				   store_applied_version(r->store), &val, &len,
				   NULL), RS_OK);
	ck_assert_uint_eq(len, 8);
	return rs_get_u64(val);
}

static const struct {
	enum director_txn_fault fault;
	const char *how; /* the reason's words for it */
} txn_faults[] = {
	{DIRECTOR_TXN_FAULT_REFUSE, "before commit: refused"},
	{DIRECTOR_TXN_FAULT_CONFLICT, "before commit: in conflict"},
	{DIRECTOR_TXN_FAULT_LEADERSHIP, "before commit: leadership lost"},
};

/* Each pre-commit failure of the first recovery: the director of epoch 1
 * exits saying how, no layout and no last_recovery exist (only its epoch
 * allocation committed), and the director of epoch 2 persists. */
START_TEST(test_txn_fails_before_commit_next_epoch_succeeds)
{
	struct tsl t;
	char want[128];

	rig_director(&rig, txn_faults[_i].fault);
	ck_assert(rig.exited && !rig.persisted);
	snprintf(want, sizeof want, "system transaction failed %s (epoch 1)",
		 txn_faults[_i].how);
	ck_assert_msg(strncmp(rig.reason, want, strlen(want)) == 0,
		      "reason \"%s\", want \"%s...\"", rig.reason, want);
	ck_assert_str_eq(rig.exit_phase, "persisting");
	ck_assert_str_eq(rig.exit_reason, rig.reason);
	ck_assert(!rig_has(&rig, DIRECTOR_KEY_LAYOUT));
	ck_assert(!rig_has(&rig, DIRECTOR_KEY_LAST_RECOVERY));
	ck_assert(!rig_has(&rig, DIRECTOR_KEY_COORDINATORS));
	ck_assert_uint_eq(rig.fsm.epoch, 1);
	ck_assert_uint_eq(rig_stored_epoch(&rig), 1);

	rig_director(&rig, DIRECTOR_TXN_FAULT_NONE);
	ck_assert(rig.persisted && !rig.exited);
	ck_assert_uint_eq(rig.persisted_epoch, 2);
	ck_assert_uint_eq(rig_stored_epoch(&rig), 2);
	rig_stored_layout(&rig, &t);
	ck_assert_uint_eq(t.epoch, 2);
	ck_assert(rig_has(&rig, DIRECTOR_KEY_LAST_RECOVERY));
}
END_TEST

/* A failure of a later recovery leaves the earlier layout in place
 * untouched; the one after it replaces it. */
START_TEST(test_txn_fails_keeps_previous_layout)
{
	struct tsl before, after;

	rig_director(&rig, DIRECTOR_TXN_FAULT_NONE);
	ck_assert(rig.persisted);
	rig_stored_layout(&rig, &before);
	rig_director(&rig, txn_faults[_i].fault);
	ck_assert(rig.exited);
	rig_stored_layout(&rig, &after);
	ck_assert(tsl_equal(&before, &after));
	ck_assert_uint_eq(after.epoch, 1);
	rig_director(&rig, DIRECTOR_TXN_FAULT_NONE);
	ck_assert(rig.persisted);
	ck_assert_uint_eq(rig.persisted_epoch, 3);
	rig_stored_layout(&rig, &after);
	ck_assert_uint_eq(after.epoch, 3);
}
END_TEST

START_TEST(test_txn_fault_names)
{
	static const char *const names[] = {"refuse", "conflict", "leadership"};
	enum director_txn_fault k = DIRECTOR_TXN_FAULT_NONE;

	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(director_txn_fault_parse(names[i], &k), RS_OK);
		ck_assert_int_eq(k, txn_faults[i].fault);
	}
	k = DIRECTOR_TXN_FAULT_NONE;
	ck_assert_int_eq(director_txn_fault_parse("", &k), RS_EINVAL);
	ck_assert_int_eq(director_txn_fault_parse("refused", &k), RS_EINVAL);
	ck_assert_int_eq(director_txn_fault_parse("none", &k), RS_EINVAL);
	ck_assert_int_eq(k, DIRECTOR_TXN_FAULT_NONE);
}
END_TEST
#endif /* RS_FAULT_HOOKS */

int main(void)
{
	Suite *s = suite_create("director_run");
	TCase *tr = testutil_tcase(s, "running", rig_setup, rig_teardown, 60);

	tcase_add_test(tr, test_director_persists_epoch_1);
#ifdef RS_FAULT_HOOKS
	tcase_add_loop_test(tr, test_txn_fails_before_commit_next_epoch_succeeds,
			    0, 3);
	tcase_add_loop_test(tr, test_txn_fails_keeps_previous_layout, 0, 3);
	TCase *tn = tcase_create("names");
	tcase_add_test(tn, test_txn_fault_names);
	suite_add_tcase(s, tn);
#else
	fprintf(stderr, "test_director_run: built without --enable-fault-hooks: "
			"the system transaction fault tests are skipped\n");
#endif
	return testutil_run_suite(s);
}
