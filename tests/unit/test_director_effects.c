/*
 * Tests of what the director (director/director.c) does to the world, on
 * a three-server raft_fixture running the real fsm, stores and, on the
 * leader, the commit proxy (tests/unit/raftfix.h).  The test plays the
 * node: it keeps the registry's heartbeats fresh with each server's
 * applied version, and records the director's env callbacks.
 *
 *  - a successful recovery: the events in phase order, each carrying the
 *    epoch; the epoch committed and fencing on every replica; the system
 *    keys (layout, epoch, coordinators, config, last_recovery) on every
 *    replica; the proxy stamping the new epoch and accepting clients;
 *    exited never called;
 *  - leadership lost while the epoch is being allocated: one exit, in the
 *    epoch phase, with the reason; the proxy refuses clients; no system
 *    key written;
 *  - a storage replica that never applies the system transaction: the
 *    recovery accepts all the same, the layout durable on the two others;
 *  - a follower killed while the director monitors, then revived: each is
 *    a layout update in the same epoch (the node left out of storage and
 *    logs, its service down; then re-admitted), audited as the failure and
 *    the update, with the proxy accepting throughout and no exit.
 */
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director/director.h"
#include "director/tsl.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/proxy.h"
#include "tests/unit/raftfix.h"
#include "tests/unit/testutil.h"

#define N 3
#define EVENTS_MAX 64
#define COORDINATORS "1@127.0.0.1:9001,2@127.0.0.1:9002,3@127.0.0.1:9003"
/* The director's timers run on the loop's real clock. */
#define REAL_MS_MAX 8000u
/* Ample for the live replicas of a loaded machine (a layout update's
 * wait). */
#define PERSIST_TIMEOUT_MS 1000u

static struct raftfix c;
static struct proxy *proxy;
static struct director_registry registry;
static struct director *director;

/* What the director told the node. */
struct event {
	char name[32];
	json_t *fields; /* the members, owned */
};
static struct event events[EVENTS_MAX];
static unsigned n_events;
static unsigned exits;
static char exit_reason[256];
/* Servers whose heartbeats the test holds back (a killed node's). */
static bool silent[N];
static unsigned failure_ms;
/* The proxy stopped accepting at some point (checked on every event). */
static bool refused_meanwhile;
/* Each replica's applied version when the layout was reported persisted. */
static uint64_t applied_when_persisted[N];

static unsigned count_events(const char *name);
static bool accepting(void);

/* Takes members over, as the node's callback does. */
static void on_event(void *ctx, const char *name, json_t *members)
{
	void *first;
	struct event *e;

	(void)ctx;
	ck_assert_ptr_nonnull(members);
	ck_assert_uint_lt(n_events, EVENTS_MAX);
	first = json_object_iter(members);
	ck_assert_msg(first != NULL &&
			      strcmp(json_object_iter_key(first), "epoch") == 0,
		      "event %s does not start with the epoch", name);
	e = &events[n_events++];
	snprintf(e->name, sizeof e->name, "%s", name);
	e->fields = members;
	/* From the first layout persisted on, the proxy must accept. */
	if (count_events(DIRECTOR_EV_LAYOUT_PERSISTED) > 0 && !accepting())
		refused_meanwhile = true;
	if (strcmp(name, DIRECTOR_EV_LAYOUT_PERSISTED) == 0)
		for (unsigned i = 0; i < N; i++)
			applied_when_persisted[i] =
				store_applied_version(c.reps[i].store);
}

static void on_exited(void *ctx, const char *reason)
{
	(void)ctx;
	exits++;
	snprintf(exit_reason, sizeof exit_reason, "%s", reason);
}

static const char *no_leader_addr(void *ctx)
{
	(void)ctx;
	return NULL;
}

/* Every server's heartbeat, now, with its store's applied version. */
static void heartbeats(void)
{
	for (unsigned i = 0; i < N; i++) {
		char client[32], raft_addr[8];
		if (silent[i])
			continue;
		snprintf(client, sizeof client, "127.0.0.1:%u", 7001 + i);
		snprintf(raft_addr, sizeof raft_addr, "%u", i + 1);
		ck_assert_int_eq(director_registry_update(
					 &registry, i + 1, raft_addr, client,
					 TSL_CAP_ALL,
					 store_applied_version(c.reps[i].store),
					 uv_now(&c.loop)),
				 RS_OK);
	}
}

struct until {
	bool (*done)(void);
};

static bool heartbeat_until(void *arg)
{
	heartbeats();
	return ((struct until *)arg)->done();
}

/* Step the fixture and the loop, heartbeating, until done() (or fail). */
static void wait_for(bool (*done)(void), const char *what)
{
	struct until u = {done};

	ck_assert_msg(raftfix_wait(&c, heartbeat_until, &u, REAL_MS_MAX),
		      "timed out waiting for %s (%u events, %u exits: %s)",
		      what, n_events, exits, exit_reason);
}

static void setup(void)
{
	struct proxy_options o = {.leader_addr = no_leader_addr};

	raftfix_start(&c, N);
	memset(&registry, 0, sizeof registry);
	n_events = 0;
	exits = 0;
	exit_reason[0] = '\0';
	memset(silent, 0, sizeof silent);
	failure_ms = 5000;
	refused_meanwhile = false;
	director = NULL;
	proxy = raftfix_proxy_ready(&c, 0, &o);
	heartbeats();
}

static void teardown(void)
{
	if (director != NULL)
		director_stop(director);
	raftfix_proxy_close(&c, proxy);
	raftfix_stop(&c);
	for (unsigned i = 0; i < n_events; i++)
		json_decref(events[i].fields);
}

static void start_director(void)
{
	struct director_env env = {
		.loop = &c.loop,
		.raft = raftfix_raft(&c, 0),
		.store = c.reps[0].store,
		.proxy = proxy,
		.registry = &registry,
		.node_id = 1,
		.client_addr = "127.0.0.1:7001",
		.current_epoch = c.reps[0].fsm.epoch,
		.coordinators = COORDINATORS,
		.failure_ms = failure_ms,
		.recruit_wait_ms = 1000,
		.persist_timeout_ms = PERSIST_TIMEOUT_MS,
		.event = on_event,
		.exited = on_exited,
	};

	director = director_start(&env);
	ck_assert_ptr_nonnull(director);
}

/* ---- reading what was recorded ---- */

static unsigned count_events(const char *name)
{
	unsigned n = 0;

	for (unsigned i = 0; i < n_events; i++)
		n += strcmp(events[i].name, name) == 0;
	return n;
}

static const struct event *find_event(const char *name)
{
	for (unsigned i = 0; i < n_events; i++)
		if (strcmp(events[i].name, name) == 0)
			return &events[i];
	ck_abort_msg("no %s event", name);
	return NULL;
}

static uint64_t field_u64(const struct event *e, const char *key)
{
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t v = 0;

	ck_assert_msg(rs_json_get_u64(e->fields, key, &v, errmsg) == RS_OK,
		      "event %s: %s", e->name, errmsg);
	return v;
}

static const char *field_str(const struct event *e, const char *key)
{
	char errmsg[RS_ERRMSG_SIZE];
	const char *s = NULL;

	ck_assert_msg(rs_json_get_str(e->fields, key, &s, NULL, errmsg) ==
			      RS_OK,
		      "event %s: %s", e->name, errmsg);
	return s;
}

/* The phases entered, in order, as "epoch barrier ...". */
static void phases_started(char *out, size_t size)
{
	out[0] = '\0';
	for (unsigned i = 0; i < n_events; i++) {
		size_t used = strlen(out);
		if (strcmp(events[i].name, DIRECTOR_EV_PHASE_START) != 0)
			continue;
		snprintf(out + used, size - used, "%s%s", used ? " " : "",
			 field_str(&events[i], "phase"));
	}
}

static bool accepting(void)
{
	struct proxy_stats st;

	proxy_get_stats(proxy, &st);
	return st.accepting;
}

static bool monitoring(void)
{
	return count_events(DIRECTOR_EV_LAYOUT_PERSISTED) > 0 &&
	       count_events(DIRECTOR_EV_PHASE_START) == 8;
}

static bool exited(void)
{
	return exits > 0;
}

/* The value of key on replica r, or NULL; *len gets its length. */
static const uint8_t *system_value(unsigned r, const char *key,
				   uint32_t *len)
{
	struct store *s = c.reps[r].store;
	const uint8_t *val = NULL;
	int rv = store_get(s, key, strlen(key), store_applied_version(s), &val,
			   len, NULL);

	ck_assert(rv == RS_OK || rv == RS_ENOTFOUND);
	return rv == RS_OK ? val : NULL;
}

/* ---- a recovery that succeeds ---- */

static void expect_system_keys(unsigned r, uint64_t epoch)
{
	char errmsg[RS_ERRMSG_SIZE];
	const uint8_t *val;
	uint32_t len;
	struct tsl layout;
	json_t *last;
	uint64_t v = 0;

	val = system_value(r, DIRECTOR_KEY_EPOCH, &len);
	ck_assert_ptr_nonnull(val);
	ck_assert_uint_eq(len, 8);
	ck_assert_uint_eq(rs_get_u64(val), epoch);

	val = system_value(r, DIRECTOR_KEY_LAYOUT, &len);
	ck_assert_ptr_nonnull(val);
	ck_assert_msg(tsl_decode(val, len, &layout, errmsg) == RS_OK,
		      "server %u: layout: %s", r, errmsg);
	ck_assert_uint_eq(layout.epoch, epoch);
	ck_assert_uint_eq(layout.storage_count, N);
	ck_assert_uint_eq(layout.log_count, N);
	ck_assert_uint_eq(layout.id, field_u64(find_event(
					     DIRECTOR_EV_LAYOUT_PERSISTED),
					     "layout_id"));

	val = system_value(r, DIRECTOR_KEY_COORDINATORS, &len);
	ck_assert_ptr_nonnull(val);
	ck_assert_int_eq(len, strlen(COORDINATORS));
	ck_assert_int_eq(memcmp(val, COORDINATORS, len), 0);

	val = system_value(r, DIRECTOR_CONFIG_PREFIX "commit_proxies", &len);
	ck_assert_ptr_nonnull(val);
	ck_assert_int_eq(len, 1);
	ck_assert_int_eq(val[0], '3');

	val = system_value(r, DIRECTOR_KEY_LAST_RECOVERY, &len);
	ck_assert_ptr_nonnull(val);
	ck_assert_msg(rs_json_parse_object(val, len, &last, errmsg) == RS_OK,
		      "server %u: last_recovery: %s", r, errmsg);
	ck_assert_int_eq(rs_json_get_u64(last, "epoch", &v, NULL), RS_OK);
	ck_assert_uint_eq(v, epoch);
	ck_assert_int_eq(rs_json_get_u64(last, "director", &v, NULL), RS_OK);
	ck_assert_uint_eq(v, 1);
	json_decref(last);
}

START_TEST(test_recovery_writes_the_system_state)
{
	char phases[256];
	struct proxy_stats st;
	const struct event *e;

	start_director();
	wait_for(monitoring, "the director to reach monitoring");
	raftfix_step_until_applied(&c, raftfix_all(&c),
				   raft_last_index(raftfix_raft(&c, 0)), 10000);

	phases_started(phases, sizeof phases);
	ck_assert_str_eq(phases, "epoch barrier locking recruiting layout "
				 "persisting accepting monitoring");
	ck_assert_uint_eq(count_events(DIRECTOR_EV_PHASE_END), 7);
	ck_assert_uint_eq(count_events(DIRECTOR_EV_EPOCH_ALLOCATED), 1);
	ck_assert_uint_eq(count_events(DIRECTOR_EV_RECOVERY_VERSION), 1);
	ck_assert_uint_eq(count_events(DIRECTOR_EV_LAYOUT_BUILT), 1);
	ck_assert_uint_eq(count_events(DIRECTOR_EV_DIRECTOR_EXIT), 0);
	/* No earlier layout: nothing to report as fenced. */
	ck_assert_uint_eq(count_events(DIRECTOR_EV_PREVIOUS_LAYOUT_FENCED), 0);
	for (unsigned i = 0; i < n_events; i++)
		ck_assert_uint_eq(field_u64(&events[i], "epoch"), 1);
	e = find_event(DIRECTOR_EV_LAYOUT_BUILT);
	ck_assert_uint_eq(field_u64(e, "storage"), N);
	ck_assert_uint_ge(field_u64(find_event(DIRECTOR_EV_LAYOUT_PERSISTED),
				    "version"),
			  field_u64(find_event(DIRECTOR_EV_EPOCH_ALLOCATED),
				    "version"));
	ck_assert_uint_eq(exits, 0);

	proxy_get_stats(proxy, &st);
	ck_assert(st.accepting);
	ck_assert_uint_eq(st.epoch, 1);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(c.reps[i].fsm.epoch, 1);
		ck_assert_uint_eq(c.reps[i].fsm.fenced_entries, 0);
		expect_system_keys(i, 1);
	}
	/* It accepted once the layout was committed and applied here (the
	 * leader, server 0); the other replicas applied it from their logs. */
	e = find_event(DIRECTOR_EV_LAYOUT_PERSISTED);
	ck_assert_uint_ge(applied_when_persisted[0], field_u64(e, "version"));
}
END_TEST

/* A second director (the next leadership) reads the layout the first one
 * wrote, reports it fenced, and writes its own at the next epoch. */
START_TEST(test_next_recovery_fences_the_previous_layout)
{
	const struct event *e;
	uint64_t first_layout;

	start_director();
	wait_for(monitoring, "the first director");
	first_layout = field_u64(find_event(DIRECTOR_EV_LAYOUT_PERSISTED),
				 "layout_id");
	director_stop(director);
	ck_assert(!accepting());
	for (unsigned i = 0; i < n_events; i++)
		json_decref(events[i].fields);
	n_events = 0;

	start_director();
	wait_for(monitoring, "the second director");
	e = find_event(DIRECTOR_EV_PREVIOUS_LAYOUT_FENCED);
	ck_assert_uint_eq(field_u64(e, "epoch"), 2);
	ck_assert_uint_eq(field_u64(e, "previous_epoch"), 1);
	ck_assert_uint_eq(field_u64(e, "layout_id"), first_layout);
	raftfix_step_until_applied(&c, raftfix_all(&c),
				   raft_last_index(raftfix_raft(&c, 0)), 10000);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(c.reps[i].fsm.epoch, 2);
		expect_system_keys(i, 2);
	}
	ck_assert(accepting());
	ck_assert_uint_eq(exits, 0);
}
END_TEST

/* ---- a follower lost and back: layout updates, no new epoch ---- */

static bool one_update(void)
{
	return count_events(DIRECTOR_EV_LAYOUT_UPDATED) >= 1;
}

static bool two_updates(void)
{
	return count_events(DIRECTOR_EV_LAYOUT_UPDATED) >= 2;
}

/* The layout replica r has applied. */
static void layout_on(unsigned r, struct tsl *t)
{
	char errmsg[RS_ERRMSG_SIZE];
	uint32_t len;
	const uint8_t *val = system_value(r, DIRECTOR_KEY_LAYOUT, &len);

	ck_assert_ptr_nonnull(val);
	ck_assert_msg(tsl_decode(val, len, t, errmsg) == RS_OK,
		      "server %u: layout: %s", r, errmsg);
}

static const struct tsl_service *service_in(const struct tsl *t, uint64_t id)
{
	for (unsigned i = 0; i < t->service_count; i++)
		if (t->services[i].node_id == id)
			return &t->services[i];
	ck_abort_msg("no service %" PRIu64, id);
	return NULL;
}

/* The last event of that name. */
static const struct event *last_event(const char *name)
{
	for (unsigned i = n_events; i-- > 0;)
		if (strcmp(events[i].name, name) == 0)
			return &events[i];
	ck_abort_msg("no %s event", name);
	return NULL;
}

START_TEST(test_follower_lost_and_back_is_a_layout_update)
{
	uint64_t first;
	const struct event *e;
	struct tsl t;

	failure_ms = 400;
	start_director();
	wait_for(monitoring, "the director to reach monitoring");
	first = field_u64(find_event(DIRECTOR_EV_LAYOUT_PERSISTED), "layout_id");

	/* Server 3 dies: no heartbeats, no Raft. */
	raft_fixture_kill(&c.fx, 2);
	silent[2] = true;
	wait_for(one_update, "a layout update without node 3");
	e = find_event(DIRECTOR_EV_COMPONENT_FAILURE);
	ck_assert_uint_eq(field_u64(e, "component_node"), 3);
	ck_assert_str_eq(field_str(e, "cause"), "heartbeat");
	e = find_event(DIRECTOR_EV_LAYOUT_UPDATED);
	ck_assert_uint_eq(field_u64(e, "epoch"), 1);
	ck_assert_uint_eq(field_u64(e, "layout_id"), first + 1);
	ck_assert_uint_eq(field_u64(e, "previous_layout_id"), first);
	ck_assert_uint_eq(field_u64(e, "storage"), 2);
	ck_assert_uint_eq(field_u64(e, "logs"), 2);
	ck_assert(strncmp(field_str(e, "reason"), "component failure: node 3 "
			  "sent no heartbeat", 41) == 0);
	for (unsigned i = 0; i < 2; i++) {
		layout_on(i, &t);
		ck_assert_uint_eq(t.id, first + 1);
		ck_assert_uint_eq(t.epoch, 1);
		ck_assert_uint_eq(t.storage_count, 2);
		ck_assert_uint_eq(t.log_count, 2);
		ck_assert_uint_eq(service_in(&t, 3)->status, TSL_STATUS_DOWN);
		ck_assert_uint_eq(c.reps[i].fsm.epoch, 1);
	}

	/* It comes back: re-admitted by a second update, same epoch. */
	raft_fixture_revive(&c.fx, 2);
	silent[2] = false;
	wait_for(two_updates, "a layout update re-admitting node 3");
	e = last_event(DIRECTOR_EV_LAYOUT_UPDATED);
	ck_assert_uint_eq(field_u64(e, "epoch"), 1);
	ck_assert_uint_eq(field_u64(e, "layout_id"), first + 2);
	ck_assert_uint_eq(field_u64(e, "storage"), 3);
	ck_assert_str_eq(field_str(e, "reason"), "node 3 is back: re-admitting it");
	raftfix_step_until_applied(&c, raftfix_all(&c),
				   raft_last_index(raftfix_raft(&c, 0)), 10000);
	for (unsigned i = 0; i < N; i++) {
		layout_on(i, &t);
		ck_assert_uint_eq(t.id, first + 2);
		ck_assert_uint_eq(t.storage_count, 3);
		ck_assert_uint_eq(service_in(&t, 3)->status, TSL_STATUS_UP);
		ck_assert_uint_eq(c.reps[i].fsm.epoch, 1);
	}
	/* The epoch stayed, the proxy accepted throughout, nobody exited. */
	ck_assert_uint_eq(count_events(DIRECTOR_EV_EPOCH_ALLOCATED), 1);
	ck_assert_uint_eq(count_events(DIRECTOR_EV_LAYOUT_PERSISTED), 1);
	ck_assert_uint_eq(exits, 0);
	ck_assert(!refused_meanwhile);
	ck_assert(accepting());
}
END_TEST

/* ---- recoveries that fail ---- */

static void expect_one_exit_in(const char *phase, const char *reason_part)
{
	const struct event *e;

	ck_assert_uint_eq(exits, 1);
	ck_assert_msg(strstr(exit_reason, reason_part) != NULL,
		      "reason '%s' does not say '%s'", exit_reason,
		      reason_part);
	ck_assert_uint_eq(count_events(DIRECTOR_EV_DIRECTOR_EXIT), 1);
	e = find_event(DIRECTOR_EV_DIRECTOR_EXIT);
	ck_assert_str_eq(field_str(e, "phase"), phase);
	ck_assert_str_eq(field_str(e, "reason"), exit_reason);
	ck_assert_uint_eq(count_events(DIRECTOR_EV_LAYOUT_PERSISTED), 0);
	ck_assert(!accepting());
}

/* The followers receive the epoch entry but the leader never hears back:
 * it steps down, the allocation's outcome is unknown, the director ends. */
START_TEST(test_leadership_lost_during_epoch)
{
	for (unsigned i = 1; i < N; i++)
		raft_fixture_saturate(&c.fx, i, 0);
	start_director();
	wait_for(exited, "the director to exit");
	expect_one_exit_in("epoch", "epoch 1 allocation failed");
	ck_assert_uint_eq(count_events(DIRECTOR_EV_EPOCH_ALLOCATED), 0);
	ck_assert_int_ne(raft_state(raftfix_raft(&c, 0)), RAFT_LEADER);
	for (unsigned i = 0; i < N; i++) {
		uint32_t len;
		ck_assert_ptr_null(system_value(i, DIRECTOR_KEY_LAYOUT, &len));
		ck_assert_ptr_null(
			system_value(i, DIRECTOR_KEY_LAST_RECOVERY, &len));
	}
	/* Exited is final: more time changes nothing. */
	for (unsigned i = 1; i < N; i++)
		raft_fixture_desaturate(&c.fx, i, 0);
	raft_fixture_step_until_elapsed(&c.fx, 3000);
	ck_assert_uint_eq(exits, 1);
}
END_TEST

/* Server 3's heartbeats keep coming but its store is stuck (the fixture
 * has it down): it is recruited as storage and never applies the system
 * transaction, so the persist wait runs out. */
/* A storage replica that never applies the system transaction (killed,
 * its registry entry still fresh, so it is recruited) does not hold up the
 * recovery: the commit is durable on the two others, and the director
 * accepts and monitors. */
START_TEST(test_recovery_does_not_wait_for_a_stuck_replica)
{
	uint32_t len;
	struct proxy_stats st;

	raft_fixture_kill(&c.fx, 2);
	start_director();
	wait_for(monitoring, "the director to reach monitoring");
	ck_assert_uint_eq(exits, 0);
	ck_assert_uint_eq(field_u64(find_event(DIRECTOR_EV_LAYOUT_BUILT),
				    "storage"), N);
	proxy_get_stats(proxy, &st);
	ck_assert(st.accepting);
	ck_assert_ptr_nonnull(system_value(0, DIRECTOR_KEY_LAYOUT, &len));
	ck_assert_ptr_null(system_value(2, DIRECTOR_KEY_LAYOUT, &len));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("director_effects");
	TCase *tc = testutil_tcase(s, "recovery", setup, teardown, 30);

	log_set_level(LOG_WARN);
	tcase_add_test(tc, test_recovery_writes_the_system_state);
	tcase_add_test(tc, test_next_recovery_fences_the_previous_layout);
	tcase_add_test(tc, test_follower_lost_and_back_is_a_layout_update);
	tc = testutil_tcase(s, "failure", setup, teardown, 30);
	tcase_add_test(tc, test_leadership_lost_during_epoch);
	tcase_add_test(tc, test_recovery_does_not_wait_for_a_stuck_replica);
	return testutil_run_suite(s);
}
