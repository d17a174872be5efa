/*
 * Tests for the director's decisions (director/plan.h); the director
 * itself runs in test_director_run.c.
 *
 * Every test builds a cluster as plain data (members with a heartbeat
 * time and an applied version, the Raft ids, a clock) and checks one
 * phase's decision.  Faults are injected by editing that data: a member
 * that never sent a heartbeat, one whose heartbeat is just too old, a
 * replica behind, a full registry, node ids and addresses at the layout's
 * limits.  No loop, no Raft, no store, no sleeps: the clock is a number.
 * The reason texts are checked word for word, since the node logs and
 * audits them and the integration tests grep them.
 */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director/plan.h"
#include "director/tsl.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "tests/unit/testutil.h"

#define NOW 1000000u
#define FAILURE_MS 1000u
#define LAG_VERSIONS 5000000u
#define LOG_LAG_ENTRIES 10000u
#define EPOCH 7u
#define APPLIED_AT_LAYOUT 20000000u
#define LAYOUT_ID 9u
#define RECOVERY_VERSION 4242u

/* ------------------------------------------------------------------ */
/* Building clusters                                                    */
/* ------------------------------------------------------------------ */

struct cluster {
	struct plan_member m[PLAN_MEMBERS_MAX];
	unsigned n;
	uint64_t voters[PLAN_SERVERS_MAX];
	unsigned n_voters;
	uint64_t self_id;
	uint64_t now_ms;
};

static void cl_init(struct cluster *c, uint64_t self_id)
{
	memset(c, 0, sizeof *c);
	c->self_id = self_id;
	c->now_ms = NOW;
}

/* A member heard from at last_seen_ms (0: never), a voter if asked. */
static struct plan_member *cl_add(struct cluster *c, uint64_t id,
				  uint64_t last_seen_ms, bool voter)
{
	struct plan_member *m = &c->m[c->n++];

	ck_assert_uint_le(c->n, PLAN_MEMBERS_MAX);
	memset(m, 0, sizeof *m);
	m->node_id = id;
	snprintf(m->client_addr, sizeof m->client_addr, "n%" PRIu64 ".test:7001",
		 id);
	m->capabilities = TSL_CAP_ALL;
	m->last_seen_ms = last_seen_ms;
	if (voter)
		c->voters[c->n_voters++] = id;
	return m;
}

static struct plan_member *cl_get(struct cluster *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->m[i].node_id == id)
			return &c->m[i];
	ck_abort_msg("no member %" PRIu64, id);
	return NULL;
}

/* Self (1) and two others, all live voters, in registry order 1, 2, 3. */
static void cl_three(struct cluster *c)
{
	cl_init(c, 1);
	cl_add(c, 1, NOW - 5, true);
	cl_add(c, 2, NOW - 10, true);
	cl_add(c, 3, NOW - 20, true);
}

static struct plan_input cl_input(const struct cluster *c, uint64_t proxies,
				  uint64_t resolvers)
{
	struct plan_input in = {
		.layout_id = LAYOUT_ID,
		.epoch = EPOCH,
		.recovery_version = RECOVERY_VERSION,
		.self_id = c->self_id,
		.members = c->m,
		.n_members = c->n,
		.voters = c->voters,
		.n_voters = c->n_voters,
		.commit_proxies = proxies,
		.resolvers = resolvers,
		.now_ms = c->now_ms,
		.failure_ms = FAILURE_MS,
	};
	return in;
}

/* Every layout the plan makes must validate and survive the codec. */
static void layout_check_valid(const struct tsl *t)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_buf enc;
	struct tsl back;

	ck_assert_msg(tsl_validate(t, errmsg) == RS_OK, "validate: %s", errmsg);
	rs_buf_init(&enc);
	ck_assert_int_eq(tsl_encode(t, &enc, errmsg), RS_OK);
	ck_assert_msg(tsl_decode(enc.data, enc.len, &back, errmsg) == RS_OK,
		      "decode: %s", errmsg);
	ck_assert_msg(!tsl_diff(t, &back, errmsg), "round trip: %s", errmsg);
	rs_buf_free(&enc);
}

static void cl_layout(const struct cluster *c, uint64_t proxies,
		      uint64_t resolvers, struct tsl *t)
{
	struct plan_input in = cl_input(c, proxies, resolvers);

	plan_build_layout(t, &in);
	layout_check_valid(t);
}

/* Node ids of a component array, in order, e.g. "1,3,2". */
static const char *ids_of(const struct tsl_component *arr, uint32_t n,
			  char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (uint32_t i = 0; i < n && len < size; i++) {
		ck_assert_uint_eq(arr[i].id, i + 1);
		len += (size_t)snprintf(out + len, size - len, "%s%" PRIu64,
					i ? "," : "", arr[i].node_id);
	}
	return out;
}

#define ck_assert_ids(arr, n, expect)                                         \
	do {                                                                   \
		char ids_buf_[256];                                            \
		ck_assert_str_eq(ids_of(arr, n, ids_buf_, sizeof ids_buf_),   \
				 expect);                                      \
	} while (0)

static const struct tsl_service *service_of(const struct tsl *t, uint64_t id)
{
	for (uint32_t i = 0; i < t->service_count; i++)
		if (t->services[i].node_id == id)
			return &t->services[i];
	ck_abort_msg("no service for node %" PRIu64, id);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The transition table                                                 */
/* ------------------------------------------------------------------ */

/* expect[from][to], written out by hand from director.h's diagram. */
static const char *const expect_transition[PLAN__PHASES] = {
	/*             to: I E B L R Y P A M X */
	[PLAN_IDLE] = "0100000001",
	[PLAN_EPOCH] = "0010000001",
	[PLAN_BARRIER] = "0001000001",
	[PLAN_LOCKING] = "0000100001",
	[PLAN_RECRUITING] = "0000010001",
	[PLAN_LAYOUT] = "0000001001",
	[PLAN_PERSISTING] = "0000000101",
	[PLAN_ACCEPTING] = "0000000011",
	[PLAN_MONITORING] = "0000000001",
	[PLAN_EXITED] = "0000000000",
};

/* Loop over `from`; every `to`, and one past the enum both ways. */
START_TEST(test_transition_row)
{
	enum plan_phase from = (enum plan_phase)_i;

	for (unsigned to = 0; to < PLAN__PHASES; to++)
		ck_assert_msg(plan_transition_allowed(from, (enum plan_phase)to) ==
				      (expect_transition[from][to] == '1'),
			      "from %d to %u", _i, to);
	ck_assert(!plan_transition_allowed(from, PLAN__PHASES));
	ck_assert(!plan_transition_allowed(PLAN__PHASES, from));
}
END_TEST

START_TEST(test_transition_paths)
{
	/* The recovery path, then a failure out of MONITORING. */
	for (unsigned p = PLAN_IDLE; p < PLAN_MONITORING; p++)
		ck_assert(plan_transition_allowed(p, p + 1));
	ck_assert(plan_transition_allowed(PLAN_MONITORING, PLAN_EXITED));
	/* No skipping, no going back, no staying, no way out of EXITED. */
	ck_assert(!plan_transition_allowed(PLAN_LOCKING, PLAN_LAYOUT));
	ck_assert(!plan_transition_allowed(PLAN_MONITORING, PLAN_RECRUITING));
	ck_assert(!plan_transition_allowed(PLAN_PERSISTING, PLAN_PERSISTING));
	ck_assert(!plan_transition_allowed(PLAN_EXITED, PLAN_EXITED));
	ck_assert(!plan_transition_allowed(PLAN_EXITED, PLAN_IDLE));
	ck_assert(!plan_transition_allowed(PLAN_EXITED, PLAN_EPOCH));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Liveness and recruitment                                             */
/* ------------------------------------------------------------------ */

START_TEST(test_live_boundaries)
{
	struct plan_member m = {.node_id = 2, .last_seen_ms = NOW - FAILURE_MS};

	ck_assert(!plan_member_live(&m, 1, NOW, FAILURE_MS));
	m.last_seen_ms = NOW - FAILURE_MS + 1;
	ck_assert(plan_member_live(&m, 1, NOW, FAILURE_MS));
	m.last_seen_ms = NOW;
	ck_assert(plan_member_live(&m, 1, NOW, FAILURE_MS));
	m.last_seen_ms = 0; /* never heard from */
	ck_assert(!plan_member_live(&m, 1, NOW, FAILURE_MS));
	ck_assert(!plan_member_live(&m, 1, FAILURE_MS / 2, FAILURE_MS));
	/* The node itself, whatever its heartbeat says. */
	ck_assert(plan_member_live(&m, 2, NOW, FAILURE_MS));
	m.last_seen_ms = 1;
	ck_assert(plan_member_live(&m, 2, NOW, FAILURE_MS));
}
END_TEST

/* Every server a voter; quorum_at 0 means "never before the deadline". */
static enum plan_recruit recruit_q(const struct cluster *c,
				   const uint64_t *servers, unsigned n_servers,
				   unsigned n_voters, uint64_t now_ms,
				   uint64_t quorum_at_ms, uint64_t deadline_ms)
{
	struct plan_recruit_input in = {
		.members = c->m,
		.n_members = c->n,
		.servers = servers,
		.n_servers = n_servers,
		.voters = servers,
		.n_voters = n_voters,
		.now_ms = now_ms,
		.failure_ms = FAILURE_MS,
		.quorum_at_ms = quorum_at_ms ? quorum_at_ms : UINT64_MAX,
		.deadline_ms = deadline_ms,
		.self_id = c->self_id,
	};
	return plan_recruit_ready(&in);
}

static enum plan_recruit recruit(const struct cluster *c,
				 const uint64_t *servers, unsigned n_servers,
				 uint64_t now_ms, uint64_t deadline_ms)
{
	return recruit_q(c, servers, n_servers, n_servers, now_ms, 0,
			 deadline_ms);
}

/* From quorum_at, a live majority of the voters will do; before it, and
 * without a majority, the wait goes on to the deadline. */
START_TEST(test_recruit_majority_after_grace)
{
	static const uint64_t servers[] = {1, 2, 3, 4, 5};
	struct cluster c;

	cl_init(&c, 1);
	cl_add(&c, 1, NOW, true);
	cl_add(&c, 2, NOW, true); /* 3, 4 and 5 silent: no majority */
	ck_assert_int_eq(recruit_q(&c, servers, 5, 5, NOW + 10, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	cl_add(&c, 3, NOW, true); /* 3 of 5 */
	ck_assert_int_eq(recruit_q(&c, servers, 5, 5, NOW, NOW + 4, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	ck_assert_int_eq(recruit_q(&c, servers, 5, 5, NOW + 3, NOW + 4,
				   NOW + 500),
			 PLAN_RECRUIT_WAIT);
	ck_assert_int_eq(recruit_q(&c, servers, 5, 5, NOW + 4, NOW + 4,
				   NOW + 500),
			 PLAN_RECRUIT_PROCEED);
	/* Only voters make the majority: with 1..3 voters and 4, 5 spares,
	 * two live voters are enough; with one live voter of three, not. */
	ck_assert_int_eq(recruit_q(&c, servers, 5, 3, NOW + 4, NOW + 4,
				   NOW + 500),
			 PLAN_RECRUIT_PROCEED);
	cl_init(&c, 1);
	cl_add(&c, 1, NOW, true);
	cl_add(&c, 4, NOW, true);
	cl_add(&c, 5, NOW, true);
	ck_assert_int_eq(recruit_q(&c, servers, 5, 3, NOW + 4, NOW + 4,
				   NOW + 500),
			 PLAN_RECRUIT_WAIT);
}
END_TEST

START_TEST(test_recruit_waits_for_every_server)
{
	static const uint64_t servers[] = {1, 2, 3};
	struct cluster c;

	cl_init(&c, 1);
	cl_add(&c, 1, NOW, true);
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	cl_add(&c, 3, NOW - 1, true);
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	cl_add(&c, 2, NOW - 2, true);
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW + 500),
			 PLAN_RECRUIT_PROCEED);
}
END_TEST

START_TEST(test_recruit_deadline)
{
	static const uint64_t servers[] = {1, 2, 3};
	struct cluster c;

	cl_init(&c, 1);
	cl_add(&c, 1, NOW, true);
	cl_add(&c, 2, NOW, true); /* 3 never registers */
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	ck_assert_int_eq(recruit(&c, servers, 3, NOW + 499, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	ck_assert_int_eq(recruit(&c, servers, 3, NOW + 500, NOW + 500),
			 PLAN_RECRUIT_PROCEED);
	ck_assert_int_eq(recruit(&c, servers, 3, NOW + 9999, NOW + 500),
			 PLAN_RECRUIT_PROCEED);
	/* A zero wait (deadline already passed) proceeds at once. */
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW), PLAN_RECRUIT_PROCEED);
}
END_TEST

START_TEST(test_recruit_self_always_live)
{
	static const uint64_t servers[] = {1, 2};
	struct cluster c;

	cl_init(&c, 1);
	cl_add(&c, 1, 0, true); /* fault: self never stamped a heartbeat */
	cl_add(&c, 2, NOW - 1, true);
	ck_assert_int_eq(recruit(&c, servers, 2, NOW, NOW + 500),
			 PLAN_RECRUIT_PROCEED);
	cl_get(&c, 1)->last_seen_ms = 1; /* and a very old one */
	ck_assert_int_eq(recruit(&c, servers, 2, NOW, NOW + 500),
			 PLAN_RECRUIT_PROCEED);
	/* Self counts as a registered member, so it must be one. */
	cl_init(&c, 1);
	cl_add(&c, 2, NOW - 1, true);
	ck_assert_int_eq(recruit(&c, servers, 2, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
}
END_TEST

START_TEST(test_recruit_silent_member)
{
	static const uint64_t servers[] = {1, 2, 3};
	struct cluster c;

	cl_init(&c, 1);
	cl_add(&c, 1, NOW, true);
	cl_add(&c, 2, NOW, true);
	cl_add(&c, 3, 0, true); /* registered, yet never heard from */
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	cl_get(&c, 3)->last_seen_ms = NOW - FAILURE_MS; /* just too old */
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	cl_get(&c, 3)->last_seen_ms = NOW - FAILURE_MS + 1;
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW + 500),
			 PLAN_RECRUIT_PROCEED);
}
END_TEST

START_TEST(test_recruit_only_servers_count)
{
	static const uint64_t servers[] = {1, 2, 3};
	struct cluster c;

	cl_init(&c, 1);
	cl_add(&c, 1, NOW, true);
	cl_add(&c, 4, NOW, false); /* live, but not in the configuration */
	cl_add(&c, 5, NOW, false);
	ck_assert_int_eq(recruit(&c, servers, 3, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
	/* An empty configuration has nobody to wait for. */
	ck_assert_int_eq(recruit(&c, NULL, 0, NOW, NOW + 500),
			 PLAN_RECRUIT_PROCEED);
}
END_TEST

START_TEST(test_recruit_full_registry)
{
	uint64_t servers[PLAN_MEMBERS_MAX];
	struct cluster c;

	cl_init(&c, 1);
	for (unsigned i = 0; i < PLAN_MEMBERS_MAX; i++) {
		cl_add(&c, i + 1, NOW - i, true);
		servers[i] = i + 1;
	}
	ck_assert_int_eq(recruit(&c, servers, PLAN_MEMBERS_MAX, NOW, NOW + 500),
			 PLAN_RECRUIT_PROCEED);
	cl_get(&c, PLAN_MEMBERS_MAX)->last_seen_ms = 0;
	ck_assert_int_eq(recruit(&c, servers, PLAN_MEMBERS_MAX, NOW, NOW + 500),
			 PLAN_RECRUIT_WAIT);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The layout                                                           */
/* ------------------------------------------------------------------ */

START_TEST(test_layout_three_nodes)
{
	struct cluster c;
	struct tsl t;

	cl_three(&c);
	cl_layout(&c, 3, 1, &t);
	ck_assert_uint_eq(t.id, LAYOUT_ID);
	ck_assert_uint_eq(t.epoch, EPOCH);
	ck_assert_uint_eq(t.recovery_version, RECOVERY_VERSION);
	ck_assert_uint_eq(t.director.node_id, 1);
	ck_assert_str_eq(t.director.addr, "n1.test:7001");
	ck_assert_uint_eq(t.sequencer.id, 1);
	ck_assert_uint_eq(t.sequencer.node_id, 1);
	ck_assert_str_eq(t.sequencer.addr, "n1.test:7001");
	ck_assert_uint_eq(t.resolver_count, 1);
	ck_assert_uint_eq(t.resolvers[0].c.id, 1);
	ck_assert_uint_eq(t.resolvers[0].c.node_id, 1);
	ck_assert_uint_eq(t.resolvers[0].range.begin_len, 0);
	ck_assert_uint_eq(t.resolvers[0].range.end_len, 0);
	ck_assert_ids(t.commit_proxies, t.commit_proxy_count, "1,2,3");
	ck_assert_ids(t.logs, t.log_count, "1,2,3");
	ck_assert_ids(t.storage, t.storage_count, "1,2,3");
	ck_assert_str_eq(t.storage[2].addr, "n3.test:7001");
	ck_assert_uint_eq(t.service_count, 3);
	for (uint64_t id = 1; id <= 3; id++) {
		const struct tsl_service *s = service_of(&t, id);
		ck_assert_uint_eq(s->status, TSL_STATUS_UP);
		ck_assert_uint_eq(s->capabilities, TSL_CAP_ALL);
	}
	ck_assert_uint_eq(service_of(&t, 1)->heartbeat_age_ms, 5);
	ck_assert_uint_eq(service_of(&t, 3)->heartbeat_age_ms, 20);
}
END_TEST

START_TEST(test_layout_silent_members_down)
{
	struct cluster c;
	struct tsl t;

	cl_init(&c, 1);
	cl_add(&c, 1, NOW, true);
	cl_add(&c, 2, 0, true);                    /* never heard from */
	cl_add(&c, 3, NOW - FAILURE_MS - 500, true); /* heartbeat too old */
	cl_add(&c, 4, NOW - FAILURE_MS + 1, true); /* just in time */
	cl_layout(&c, 5, 1, &t);
	ck_assert_uint_eq(t.service_count, 4);
	ck_assert_uint_eq(service_of(&t, 2)->status, TSL_STATUS_DOWN);
	ck_assert_uint_eq(service_of(&t, 2)->heartbeat_age_ms, 0);
	ck_assert_uint_eq(service_of(&t, 3)->status, TSL_STATUS_DOWN);
	ck_assert_uint_eq(service_of(&t, 3)->heartbeat_age_ms, FAILURE_MS + 500);
	ck_assert_uint_eq(service_of(&t, 4)->status, TSL_STATUS_UP);
	ck_assert_uint_eq(service_of(&t, 4)->heartbeat_age_ms, FAILURE_MS - 1);
	ck_assert_ids(t.storage, t.storage_count, "1,4");
	ck_assert_ids(t.logs, t.log_count, "1,4");
	ck_assert_ids(t.commit_proxies, t.commit_proxy_count, "1,4");
}
END_TEST

START_TEST(test_layout_all_others_silent)
{
	struct cluster c;
	struct tsl t;

	cl_init(&c, 1);
	cl_add(&c, 2, 0, true);
	cl_add(&c, 1, 0, true); /* fault: self never stamped either */
	cl_add(&c, 3, 0, true);
	cl_layout(&c, 3, 2, &t);
	ck_assert_ids(t.storage, t.storage_count, "1");
	ck_assert_ids(t.logs, t.log_count, "1");
	ck_assert_ids(t.commit_proxies, t.commit_proxy_count, "1");
	ck_assert_uint_eq(t.resolver_count, 2);
	ck_assert_uint_eq(service_of(&t, 1)->status, TSL_STATUS_UP);
	ck_assert_uint_eq(service_of(&t, 1)->heartbeat_age_ms, 0);
	ck_assert_uint_eq(service_of(&t, 2)->status, TSL_STATUS_DOWN);
	ck_assert_uint_eq(service_of(&t, 3)->status, TSL_STATUS_DOWN);
	/* Services keep registry order. */
	ck_assert_uint_eq(t.services[0].node_id, 2);
	ck_assert_uint_eq(t.services[1].node_id, 1);
}
END_TEST

START_TEST(test_layout_non_voter)
{
	struct cluster c;
	struct tsl t;

	cl_three(&c);
	cl_add(&c, 4, NOW, false); /* live, stores data, not a Raft voter */
	cl_layout(&c, 4, 1, &t);
	ck_assert_ids(t.logs, t.log_count, "1,2,3");
	ck_assert_ids(t.storage, t.storage_count, "1,2,3,4");
	ck_assert_ids(t.commit_proxies, t.commit_proxy_count, "1,2,3,4");
	/* A voter the registry does not know gets no log. */
	c.voters[c.n_voters++] = 99;
	cl_layout(&c, 4, 1, &t);
	ck_assert_ids(t.logs, t.log_count, "1,2,3");
}
END_TEST

/* A layout update (in->lag given) recruits only the live members within
 * the lag limits, by the rule monitoring judges them with; a lagging live
 * member stays an UP service.  A recovery (no limits) takes every live
 * one and lets the persist wait catch them up. */
START_TEST(test_layout_update_leaves_out_lagging)
{
	const struct plan_lag_limits lag = {APPLIED_AT_LAYOUT, LAG_VERSIONS,
					    LOG_LAG_ENTRIES};
	struct plan_input in;
	struct cluster c;
	struct tsl t;

	cl_three(&c);
	cl_add(&c, 4, NOW, true);
	cl_add(&c, 5, NOW - FAILURE_MS, true); /* down */
	for (unsigned i = 0; i < c.n; i++)
		c.m[i].applied_version = APPLIED_AT_LAYOUT;
	cl_get(&c, 1)->applied_version = 0; /* self: never judged */
	cl_get(&c, 1)->log_lag_entries = LOG_LAG_ENTRIES + 1;
	cl_get(&c, 2)->applied_version = APPLIED_AT_LAYOUT - LAG_VERSIONS - 1;
	cl_get(&c, 4)->log_lag_entries = LOG_LAG_ENTRIES + 1;
	in = cl_input(&c, 5, 1);
	in.lag = &lag;
	plan_build_layout(&t, &in);
	layout_check_valid(&t);
	ck_assert_ids(t.storage, t.storage_count, "1,3");
	ck_assert_ids(t.logs, t.log_count, "1,3");
	ck_assert_ids(t.commit_proxies, t.commit_proxy_count, "1,3");
	ck_assert_uint_eq(service_of(&t, 2)->status, TSL_STATUS_UP);
	ck_assert_uint_eq(service_of(&t, 4)->status, TSL_STATUS_UP);
	ck_assert_uint_eq(service_of(&t, 5)->status, TSL_STATUS_DOWN);
	/* At the limits, recruited. */
	cl_get(&c, 2)->applied_version = APPLIED_AT_LAYOUT - LAG_VERSIONS;
	cl_get(&c, 4)->log_lag_entries = LOG_LAG_ENTRIES;
	plan_build_layout(&t, &in);
	ck_assert_ids(t.storage, t.storage_count, "1,2,3,4");
	/* A recovery recruits every live member. */
	cl_get(&c, 2)->applied_version = 0;
	cl_layout(&c, 5, 1, &t);
	ck_assert_ids(t.storage, t.storage_count, "1,2,3,4");
}
END_TEST

/* Loop over the desired count, 0..6, with three live nodes registered in
 * the order 3, 1, 2: the node itself first, then registry order. */
START_TEST(test_layout_proxies)
{
	static const char *const expect[] = {"1", "1", "1,3", "1,3,2",
					     "1,3,2", "1,3,2", "1,3,2"};
	struct cluster c;
	struct tsl t;

	cl_init(&c, 1);
	cl_add(&c, 3, NOW, true);
	cl_add(&c, 1, NOW, true);
	cl_add(&c, 2, NOW, true);
	cl_layout(&c, (uint64_t)_i, 1, &t);
	ck_assert_ids(t.commit_proxies, t.commit_proxy_count, expect[_i]);
	for (uint32_t i = 0; i < t.commit_proxy_count; i++)
		ck_assert_str_eq(t.commit_proxies[i].addr,
				 cl_get(&c, t.commit_proxies[i].node_id)->client_addr);
}
END_TEST

/* Which resolver owns keys starting with byte b? */
static unsigned resolver_owner(const struct tsl *t, unsigned b,
			       unsigned *owners)
{
	unsigned owner = 0;

	*owners = 0;
	for (uint32_t i = 0; i < t->resolver_count; i++) {
		const struct tsl_range *r = &t->resolvers[i].range;
		bool after_begin = r->begin_len == 0 || b >= r->begin[0];
		bool before_end = r->end_len == 0 || b < r->end[0];
		if (after_begin && before_end) {
			owner = i;
			(*owners)++;
		}
	}
	return owner;
}

/* Loop over the desired count, 0..17 (16 is the limit). */
START_TEST(test_layout_resolvers)
{
	unsigned n = _i > (int)TSL_COMPONENTS_MAX ? TSL_COMPONENTS_MAX
						  : (unsigned)_i;
	unsigned owners, last = 0;
	struct cluster c;
	struct tsl t;

	cl_three(&c);
	cl_layout(&c, 3, (uint64_t)_i, &t);
	ck_assert_uint_eq(t.resolver_count, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct tsl_range *r = &t.resolvers[i].range;
		ck_assert_uint_eq(t.resolvers[i].c.id, i + 1);
		ck_assert_uint_eq(t.resolvers[i].c.node_id, 1);
		ck_assert_uint_eq(r->begin_len, i == 0 ? 0 : 1);
		ck_assert_uint_eq(r->end_len, i + 1 == n ? 0 : 1);
		if (i > 0) {
			ck_assert_uint_eq(r->begin[0], 256 * i / n);
			ck_assert_mem_eq(r->begin, t.resolvers[i - 1].range.end, 1);
		}
	}
	/* Every first byte has exactly one owner, owners never go back. */
	for (unsigned b = 0; n > 0 && b < 256; b++) {
		unsigned o = resolver_owner(&t, b, &owners);
		ck_assert_msg(owners == 1, "byte %u: %u owners", b, owners);
		ck_assert_uint_ge(o, last);
		last = o;
	}
	ck_assert_uint_eq(last, n ? n - 1 : 0);
}
END_TEST

START_TEST(test_layout_full_registry)
{
	struct cluster c;
	struct tsl t;

	cl_init(&c, 5);
	for (unsigned i = 0; i < PLAN_MEMBERS_MAX; i++)
		cl_add(&c, i + 1, NOW - i, true);
	cl_layout(&c, TSL_COMPONENTS_MAX, TSL_COMPONENTS_MAX, &t);
	ck_assert_uint_eq(t.service_count, PLAN_MEMBERS_MAX);
	ck_assert_uint_eq(t.storage_count, TSL_COMPONENTS_MAX);
	ck_assert_uint_eq(t.log_count, TSL_COMPONENTS_MAX);
	ck_assert_uint_eq(t.commit_proxy_count, TSL_COMPONENTS_MAX);
	ck_assert_uint_eq(t.resolver_count, TSL_COMPONENTS_MAX);
	ck_assert_uint_eq(t.commit_proxies[0].node_id, 5);
	/* Asking for more than the layout holds is clamped, not an error. */
	cl_layout(&c, 1000, UINT64_MAX, &t);
	ck_assert_uint_eq(t.commit_proxy_count, TSL_COMPONENTS_MAX);
	ck_assert_uint_eq(t.resolver_count, TSL_COMPONENTS_MAX);
	/* Half of them silent. */
	for (unsigned i = 1; i < PLAN_MEMBERS_MAX; i += 2)
		c.m[i].last_seen_ms = i % 4 == 1 ? 0 : NOW - FAILURE_MS;
	cl_layout(&c, 1000, 1, &t);
	ck_assert_uint_eq(t.service_count, PLAN_MEMBERS_MAX);
	ck_assert_ids(t.storage, t.storage_count, "1,3,5,7,9,11,13,15");
	ck_assert_ids(t.logs, t.log_count, "1,3,5,7,9,11,13,15");
	ck_assert_ids(t.commit_proxies, t.commit_proxy_count,
		      "5,1,3,7,9,11,13,15");
}
END_TEST

START_TEST(test_layout_node_id_limits)
{
	struct cluster c;
	struct tsl t;
	struct plan_member *m;

	cl_init(&c, UINT64_MAX);
	cl_add(&c, 1, NOW, true);
	cl_add(&c, UINT64_MAX, NOW, true);
	m = cl_add(&c, UINT64_MAX - 1, NOW, false);
	/* The longest address a layout takes: 63 bytes. */
	memset(m->client_addr, 'h', TSL_ADDR_LEN_MAX - 6);
	memcpy(m->client_addr + TSL_ADDR_LEN_MAX - 6, ":65535", 7);
	ck_assert_uint_eq(strlen(m->client_addr), TSL_ADDR_LEN_MAX);
	cl_layout(&c, 3, 1, &t);
	ck_assert_uint_eq(t.director.node_id, UINT64_MAX);
	ck_assert_uint_eq(t.sequencer.node_id, UINT64_MAX);
	ck_assert_ids(t.commit_proxies, t.commit_proxy_count,
		      "18446744073709551615,1,18446744073709551614");
	ck_assert_ids(t.logs, t.log_count, "1,18446744073709551615");
	ck_assert_str_eq(t.storage[2].addr, m->client_addr);
	ck_assert_str_eq(service_of(&t, UINT64_MAX - 1)->addr, m->client_addr);
}
END_TEST

START_TEST(test_layout_bad_address)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct cluster c;
	struct tsl t;
	struct plan_input in;

	/* A member that registered without a port: the plan copies it, and
	 * validation (so the director) refuses the layout. */
	cl_three(&c);
	snprintf(cl_get(&c, 3)->client_addr, PLAN_ADDR_SIZE, "n3.test");
	in = cl_input(&c, 3, 1);
	plan_build_layout(&t, &in);
	ck_assert_int_eq(tsl_validate(&t, errmsg), RS_EINVAL);
	ck_assert_ptr_nonnull(strstr(errmsg, "addr"));
	/* Even when it is down: services list every member. */
	cl_get(&c, 3)->last_seen_ms = 0;
	in = cl_input(&c, 3, 1);
	plan_build_layout(&t, &in);
	ck_assert_int_eq(tsl_validate(&t, errmsg), RS_EINVAL);
}
END_TEST

START_TEST(test_layout_resets_output)
{
	struct cluster c;
	struct tsl t, fresh;
	struct plan_input in;

	cl_three(&c);
	in = cl_input(&c, 2, 3);
	memset(&t, 0xab, sizeof t);
	plan_build_layout(&t, &in);
	tsl_init(&fresh);
	plan_build_layout(&fresh, &in);
	ck_assert_mem_eq(&t, &fresh, sizeof t);
	layout_check_valid(&t);
}
END_TEST

/* A random cluster: n members (self among them), mixed heartbeats. */
static void random_cluster(struct cluster *c, uint64_t *rng)
{
	unsigned n = 1 + (unsigned)(testutil_rand(rng) % PLAN_MEMBERS_MAX);
	unsigned self = (unsigned)(testutil_rand(rng) % n);
	static const uint64_t ages[] = {0, 1, FAILURE_MS - 1, FAILURE_MS,
					FAILURE_MS + 1, NOW};

	cl_init(c, 0);
	for (unsigned i = 0; i < n; i++) {
		uint64_t id = testutil_rand(rng) % 4 == 0
				      ? UINT64_MAX - i
				      : 1 + i * 1000 + testutil_rand(rng) % 1000;
		uint64_t age = ages[testutil_rand(rng) % 6];
		cl_add(c, id, testutil_rand(rng) % 5 == 0 ? 0 : NOW - age,
		       testutil_rand(rng) % 3 != 0);
		if (i == self)
			c->self_id = id;
	}
}

/* The plan's rules, restated the slow way, on many random clusters. */
START_TEST(test_layout_random)
{
	uint64_t rng = 0x5eed5eedULL; /* fixed: the test is deterministic */

	for (unsigned iter = 0; iter < 2000; iter++) {
		struct cluster c;
		struct tsl t;
		uint64_t proxies = testutil_rand(&rng) % 20;
		uint64_t resolvers = testutil_rand(&rng) % 20;
		uint32_t live = 0, voters = 0, want;

		random_cluster(&c, &rng);
		cl_layout(&c, proxies, resolvers, &t);
		for (unsigned i = 0; i < c.n; i++) {
			const struct plan_member *m = &c.m[i];
			bool up = m->node_id == c.self_id ||
				  (m->last_seen_ms && NOW - m->last_seen_ms < FAILURE_MS);
			bool voter = false;
			for (unsigned v = 0; v < c.n_voters; v++)
				voter |= c.voters[v] == m->node_id;
			ck_assert_uint_eq(t.services[i].node_id, m->node_id);
			ck_assert_uint_eq(t.services[i].status,
					  up ? TSL_STATUS_UP : TSL_STATUS_DOWN);
			if (up)
				ck_assert_uint_eq(t.storage[live++].node_id, m->node_id);
			if (up && voter)
				ck_assert_uint_eq(t.logs[voters++].node_id, m->node_id);
		}
		ck_assert_uint_eq(t.storage_count, live);
		ck_assert_uint_eq(t.log_count, voters);
		want = proxies < live ? (uint32_t)proxies : live;
		ck_assert_uint_eq(t.commit_proxy_count, want ? want : 1);
		ck_assert_uint_eq(t.commit_proxies[0].node_id, c.self_id);
		ck_assert_uint_eq(t.resolver_count, resolvers < 16 ? resolvers : 16);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Persistence                                                          */
/* ------------------------------------------------------------------ */

#define PERSIST_VERSION 100u
#define PERSIST_TIMEOUT_MS 5000u

static enum plan_persist persisted(const struct cluster *c, const struct tsl *t,
				   uint64_t now_ms, char *reason)
{
	struct plan_persist_input in = {
		.layout = t,
		.members = c->m,
		.n_members = c->n,
		.persist_version = PERSIST_VERSION,
		.now_ms = now_ms,
		.deadline_ms = NOW + PERSIST_TIMEOUT_MS,
		.timeout_ms = PERSIST_TIMEOUT_MS,
	};
	return plan_persisted(&in, reason);
}

/* Three live nodes recruited; every one has applied the transaction. */
static void persist_setup(struct cluster *c, struct tsl *t)
{
	cl_three(c);
	cl_layout(c, 3, 1, t);
	for (unsigned i = 0; i < c->n; i++)
		c->m[i].applied_version = PERSIST_VERSION;
}

START_TEST(test_persist_done)
{
	char reason[PLAN_REASON_SIZE] = "junk";
	struct cluster c;
	struct tsl t;

	persist_setup(&c, &t);
	cl_get(&c, 2)->applied_version = PERSIST_VERSION + 50; /* ahead is fine */
	ck_assert_int_eq(persisted(&c, &t, NOW, reason), PLAN_PERSIST_DONE);
	ck_assert_str_eq(reason, "");
	/* Done is done, even past the deadline. */
	ck_assert_int_eq(persisted(&c, &t, NOW + PERSIST_TIMEOUT_MS * 2, reason),
			 PLAN_PERSIST_DONE);
}
END_TEST

START_TEST(test_persist_waits)
{
	char reason[PLAN_REASON_SIZE] = "junk";
	struct cluster c;
	struct tsl t;

	persist_setup(&c, &t);
	cl_get(&c, 3)->applied_version = PERSIST_VERSION - 1;
	ck_assert_int_eq(persisted(&c, &t, NOW, reason), PLAN_PERSIST_WAIT);
	ck_assert_str_eq(reason, "");
	ck_assert_int_eq(persisted(&c, &t, NOW + PERSIST_TIMEOUT_MS - 1, reason),
			 PLAN_PERSIST_WAIT);
	/* The node itself counts too (the director puts its store's applied
	 * version in its member). */
	persist_setup(&c, &t);
	cl_get(&c, 1)->applied_version = 0;
	ck_assert_int_eq(persisted(&c, &t, NOW, reason), PLAN_PERSIST_WAIT);
}
END_TEST

START_TEST(test_persist_fails_after_deadline)
{
	char reason[PLAN_REASON_SIZE];
	struct cluster c;
	struct tsl t;

	persist_setup(&c, &t);
	cl_get(&c, 3)->applied_version = 90;
	ck_assert_int_eq(persisted(&c, &t, NOW + PERSIST_TIMEOUT_MS, reason),
			 PLAN_PERSIST_FAIL);
	ck_assert_str_eq(reason, "system transaction at version 100 not applied "
				 "on node 3 within 5000 ms (applied 90)");
	/* Two behind: the first in storage order is named. */
	cl_get(&c, 2)->applied_version = 0;
	ck_assert_int_eq(persisted(&c, &t, NOW + PERSIST_TIMEOUT_MS + 1, reason),
			 PLAN_PERSIST_FAIL);
	ck_assert_str_eq(reason, "system transaction at version 100 not applied "
				 "on node 2 within 5000 ms (applied 0)");
}
END_TEST

START_TEST(test_persist_only_storage_counts)
{
	char reason[PLAN_REASON_SIZE];
	struct cluster c;
	struct tsl t;

	/* Node 4 was down at layout time, node 5 registered afterwards:
	 * neither holds a replica of this layout, so neither is waited for. */
	cl_three(&c);
	cl_add(&c, 4, 0, true);
	cl_layout(&c, 3, 1, &t);
	cl_add(&c, 5, NOW, true);
	for (unsigned i = 0; i < 3; i++)
		c.m[i].applied_version = PERSIST_VERSION;
	ck_assert_int_eq(persisted(&c, &t, NOW + PERSIST_TIMEOUT_MS, reason),
			 PLAN_PERSIST_DONE);
}
END_TEST

/* A storage node removed from the cluster while its layout was being
 * written is not waited for (the next update drops it). */
START_TEST(test_persist_skips_a_removed_member)
{
	char reason[PLAN_REASON_SIZE];
	struct cluster c;
	struct tsl t;

	persist_setup(&c, &t);
	cl_get(&c, 3)->applied_version = 0;
	ck_assert_int_eq(persisted(&c, &t, NOW, reason), PLAN_PERSIST_WAIT);
	c.n--; /* node 3 leaves the registry */
	ck_assert_int_eq(persisted(&c, &t, NOW + PERSIST_TIMEOUT_MS, reason),
			 PLAN_PERSIST_DONE);
}
END_TEST

START_TEST(test_persist_full_registry)
{
	char reason[PLAN_REASON_SIZE];
	struct cluster c;
	struct tsl t;

	cl_init(&c, 1);
	for (unsigned i = 0; i < PLAN_MEMBERS_MAX; i++)
		cl_add(&c, i + 1, NOW, true)->applied_version = PERSIST_VERSION;
	cl_layout(&c, 3, 1, &t);
	ck_assert_int_eq(persisted(&c, &t, NOW, reason), PLAN_PERSIST_DONE);
	cl_get(&c, PLAN_MEMBERS_MAX)->applied_version = 7;
	ck_assert_int_eq(persisted(&c, &t, NOW + PERSIST_TIMEOUT_MS, reason),
			 PLAN_PERSIST_FAIL);
	ck_assert_str_eq(reason, "system transaction at version 100 not applied "
				 "on node 16 within 5000 ms (applied 7)");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Monitoring                                                           */
/* ------------------------------------------------------------------ */

#define APPLIED 10000000u

struct monitor_fixture {
	struct cluster c;
	struct tsl t;
	bool config_changed;
};

/* Three recruited nodes, then node 4 registered but down at layout time;
 * everyone is up to date and heard from just now. */
static void monitor_setup(struct monitor_fixture *f)
{
	memset(f, 0, sizeof *f);
	cl_three(&f->c);
	cl_add(&f->c, 4, 0, true);
	cl_layout(&f->c, 3, 1, &f->t);
	ck_assert_uint_eq(f->t.storage_count, 3);
	for (unsigned i = 0; i < f->c.n; i++)
		f->c.m[i].applied_version = APPLIED;
	for (unsigned i = 0; i < 3; i++)
		f->c.m[i].last_seen_ms = NOW - 50;
	f->c.now_ms = NOW;
}

static enum plan_verdict monitor(const struct monitor_fixture *f,
				 struct plan_finding *out)
{
	struct plan_monitor_input in = {
		.members = f->c.m,
		.n_members = f->c.n,
		.layout = &f->t,
		.self_id = f->c.self_id,
		.now_ms = f->c.now_ms,
		.failure_ms = FAILURE_MS,
		.lag = {APPLIED, LAG_VERSIONS, LOG_LAG_ENTRIES},
		.config_changed = f->config_changed,
	};
	enum plan_verdict v = plan_monitor(&in, out);

	ck_assert_int_eq(v, out->verdict);
	return v;
}

static void expect_finding(const struct monitor_fixture *f,
			   enum plan_verdict v, uint64_t node_id,
			   uint64_t amount, const char *reason)
{
	struct plan_finding out;

	memset(&out, 0x5a, sizeof out);
	ck_assert_int_eq(monitor(f, &out), v);
	ck_assert_uint_eq(out.node_id, node_id);
	ck_assert_uint_eq(out.amount, amount);
	ck_assert_str_eq(out.reason, reason);
}

START_TEST(test_monitor_healthy)
{
	struct monitor_fixture f;

	monitor_setup(&f);
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
	/* Up to the limits, still healthy. */
	f.c.m[1].last_seen_ms = NOW - FAILURE_MS + 1;
	f.c.m[2].applied_version = APPLIED - LAG_VERSIONS;
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
}
END_TEST

START_TEST(test_monitor_heartbeat_lost)
{
	struct monitor_fixture f;

	monitor_setup(&f);
	cl_get(&f.c, 2)->last_seen_ms = NOW - 1500;
	expect_finding(&f, PLAN_HEARTBEAT_LOST, 2, 1500,
		       "component failure: node 2 sent no heartbeat for 1500 ms");
	cl_get(&f.c, 2)->last_seen_ms = NOW - FAILURE_MS;
	expect_finding(&f, PLAN_HEARTBEAT_LOST, 2, FAILURE_MS,
		       "component failure: node 2 sent no heartbeat for 1000 ms");
}
END_TEST

START_TEST(test_monitor_apply_lag)
{
	struct monitor_fixture f;

	monitor_setup(&f);
	cl_get(&f.c, 3)->applied_version = APPLIED - LAG_VERSIONS - 1;
	expect_finding(&f, PLAN_APPLY_LAG, 3, LAG_VERSIONS + 1,
		       "component failure: node 3 is 5000001 versions behind");
	cl_get(&f.c, 3)->applied_version = 0;
	expect_finding(&f, PLAN_APPLY_LAG, 3, APPLIED,
		       "component failure: node 3 is 10000000 versions behind");
}
END_TEST

START_TEST(test_monitor_self_never_fails)
{
	struct monitor_fixture f;

	/* Self's heartbeat and applied version are not what decide. */
	monitor_setup(&f);
	cl_get(&f.c, 1)->last_seen_ms = 0;
	cl_get(&f.c, 1)->applied_version = 0;
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
}
END_TEST

START_TEST(test_monitor_readmission)
{
	struct monitor_fixture f;

	monitor_setup(&f);
	/* Node 4 was down at layout time; still silent is no finding. */
	cl_get(&f.c, 4)->last_seen_ms = NOW - FAILURE_MS;
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
	cl_get(&f.c, 4)->last_seen_ms = NOW - 1;
	expect_finding(&f, PLAN_NODE_BACK, 4, 0,
		       "node 4 is back: re-admitting it");
	/* A member new to the registry is "back" too, once it has caught
	 * up: recruiting it earlier would only find it lagging next. */
	monitor_setup(&f);
	cl_add(&f.c, 9, NOW, false);
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
	cl_get(&f.c, 9)->applied_version = APPLIED - LAG_VERSIONS - 1;
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
	cl_get(&f.c, 9)->applied_version = APPLIED - LAG_VERSIONS;
	expect_finding(&f, PLAN_NODE_BACK, 9, 0,
		       "node 9 is back: re-admitting it");
	/* Its Raft log counts too. */
	cl_get(&f.c, 9)->log_lag_entries = LOG_LAG_ENTRIES + 1;
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
	cl_get(&f.c, 9)->log_lag_entries = LOG_LAG_ENTRIES;
	expect_finding(&f, PLAN_NODE_BACK, 9, 0,
		       "node 9 is back: re-admitting it");
}
END_TEST

START_TEST(test_monitor_log_lag)
{
	struct monitor_fixture f;

	monitor_setup(&f);
	cl_get(&f.c, 2)->log_lag_entries = LOG_LAG_ENTRIES;
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
	cl_get(&f.c, 2)->log_lag_entries = LOG_LAG_ENTRIES + 1;
	expect_finding(&f, PLAN_LOG_LAG, 2, LOG_LAG_ENTRIES + 1,
		       "component failure: the log on node 2 is 10001 entries "
		       "behind the leader");
	/* Apply lag is named first on the same node. */
	cl_get(&f.c, 2)->applied_version = 0;
	expect_finding(&f, PLAN_APPLY_LAG, 2, APPLIED,
		       "component failure: node 2 is 10000000 versions behind");
	/* The node itself is never behind. */
	monitor_setup(&f);
	cl_get(&f.c, 1)->log_lag_entries = LOG_LAG_ENTRIES * 9;
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
}
END_TEST

/* A member removed from the cluster leaves the registry; the layout that
 * still names it, as storage or only as a (down) service, is out of date. */
START_TEST(test_monitor_node_gone)
{
	struct monitor_fixture f;

	monitor_setup(&f);
	f.c.m[2] = f.c.m[3]; /* node 3 (storage) removed: registry 1, 2, 4 */
	f.c.n--;
	expect_finding(&f, PLAN_NODE_GONE, 3, 0,
		       "node 3 left the cluster: dropping it from the layout");
	monitor_setup(&f);
	f.c.n--; /* node 4, down and a service only, removed */
	expect_finding(&f, PLAN_NODE_GONE, 4, 0,
		       "node 4 left the cluster: dropping it from the layout");
	/* A member's own finding comes first, and the configuration last. */
	f.config_changed = true;
	cl_get(&f.c, 2)->last_seen_ms = NOW - 2000;
	expect_finding(&f, PLAN_HEARTBEAT_LOST, 2, 2000,
		       "component failure: node 2 sent no heartbeat for 2000 ms");
	cl_get(&f.c, 2)->last_seen_ms = NOW;
	expect_finding(&f, PLAN_NODE_GONE, 4, 0,
		       "node 4 left the cluster: dropping it from the layout");
}
END_TEST

/* Only a configuration change ends the epoch; every follower finding is
 * repaired by a layout update. */
START_TEST(test_verdict_needs_epoch)
{
	ck_assert(!plan_verdict_needs_epoch(PLAN_HEALTHY));
	ck_assert(!plan_verdict_needs_epoch(PLAN_HEARTBEAT_LOST));
	ck_assert(!plan_verdict_needs_epoch(PLAN_APPLY_LAG));
	ck_assert(!plan_verdict_needs_epoch(PLAN_LOG_LAG));
	ck_assert(!plan_verdict_needs_epoch(PLAN_NODE_BACK));
	ck_assert(!plan_verdict_needs_epoch(PLAN_NODE_GONE));
	ck_assert(plan_verdict_needs_epoch(PLAN_CONFIG_CHANGED));
}
END_TEST

START_TEST(test_monitor_config_changed)
{
	struct monitor_fixture f;

	monitor_setup(&f);
	f.config_changed = true;
	expect_finding(&f, PLAN_CONFIG_CHANGED, 0, 0,
		       "configuration changed under \\xff/system/config/");
}
END_TEST

/* Loop: several faults at once; the director's order decides. */
START_TEST(test_monitor_priority)
{
	struct monitor_fixture f;

	monitor_setup(&f);
	f.config_changed = true;
	switch (_i) {
	case 0: /* heartbeat before lag, on one node */
		cl_get(&f.c, 2)->last_seen_ms = NOW - 2000;
		cl_get(&f.c, 2)->applied_version = 0;
		expect_finding(&f, PLAN_HEARTBEAT_LOST, 2, 2000,
			       "component failure: node 2 sent no heartbeat "
			       "for 2000 ms");
		break;
	case 1: /* registry order before kind: lag on 2, heartbeat on 3 */
		cl_get(&f.c, 2)->applied_version = 0;
		cl_get(&f.c, 3)->last_seen_ms = NOW - 2000;
		expect_finding(&f, PLAN_APPLY_LAG, 2, APPLIED,
			       "component failure: node 2 is 10000000 versions "
			       "behind");
		break;
	case 2: /* node 4 back, but node 3 (earlier) lost */
		cl_get(&f.c, 4)->last_seen_ms = NOW;
		cl_get(&f.c, 3)->last_seen_ms = NOW - 2000;
		expect_finding(&f, PLAN_HEARTBEAT_LOST, 3, 2000,
			       "component failure: node 3 sent no heartbeat "
			       "for 2000 ms");
		break;
	case 3: /* a returning node listed first wins over a later loss */
		f.c.m[0] = f.c.m[3]; /* registry order 4, 2, 3, 1 */
		f.c.m[3] = (struct plan_member){.node_id = 1, .last_seen_ms = NOW};
		cl_get(&f.c, 4)->last_seen_ms = NOW;
		cl_get(&f.c, 3)->last_seen_ms = NOW - 2000;
		expect_finding(&f, PLAN_NODE_BACK, 4, 0,
			       "node 4 is back: re-admitting it");
		break;
	case 4: /* any node finding before the configuration */
		cl_get(&f.c, 4)->last_seen_ms = NOW;
		expect_finding(&f, PLAN_NODE_BACK, 4, 0,
			       "node 4 is back: re-admitting it");
		break;
	}
}
END_TEST

START_TEST(test_monitor_full_registry)
{
	struct monitor_fixture f;

	memset(&f, 0, sizeof f);
	cl_init(&f.c, 1);
	for (unsigned i = 0; i < PLAN_MEMBERS_MAX; i++)
		cl_add(&f.c, i + 1, NOW - 1, true)->applied_version = APPLIED;
	cl_layout(&f.c, 3, 1, &f.t);
	expect_finding(&f, PLAN_HEALTHY, 0, 0, "");
	cl_get(&f.c, PLAN_MEMBERS_MAX)->last_seen_ms = NOW - FAILURE_MS;
	expect_finding(&f, PLAN_HEARTBEAT_LOST, 16, FAILURE_MS,
		       "component failure: node 16 sent no heartbeat for 1000 ms");
}
END_TEST

/* ---- a failed system transaction ---- */

static const struct {
	int status;
	enum plan_txn_failure kind;
} txn_statuses[] = {
	{RS_ECONFLICT, PLAN_TXN_CONFLICT},   {RS_ETOOOLD, PLAN_TXN_CONFLICT},
	{RS_ENOTLEADER, PLAN_TXN_LEADERSHIP}, {RS_EUNAVAILABLE, PLAN_TXN_LEADERSHIP},
	{RS_EUNKNOWN, PLAN_TXN_UNKNOWN},     {RS_ERECOVERING, PLAN_TXN_REFUSED},
	{RS_ESHUTDOWN, PLAN_TXN_REFUSED},    {RS_ETOOLARGE, PLAN_TXN_REFUSED},
	{RS_EINVAL, PLAN_TXN_REFUSED},
};

START_TEST(test_txn_failure_kind)
{
	ck_assert_int_eq(plan_txn_failure_kind(txn_statuses[_i].status),
			 txn_statuses[_i].kind);
}
END_TEST

START_TEST(test_txn_failure_reasons)
{
	char reason[PLAN_REASON_SIZE];

	plan_txn_failure_reason(7, RS_ECONFLICT, "read keys changed", reason);
	ck_assert_str_eq(reason, "system transaction failed before commit: in "
				 "conflict (epoch 7): transaction conflict: read "
				 "keys changed");
	plan_txn_failure_reason(7, RS_ENOTLEADER, NULL, reason);
	ck_assert_str_eq(reason, "system transaction failed before commit: "
				 "leadership lost (epoch 7): not the leader");
	plan_txn_failure_reason(8, RS_ERECOVERING, "fenced", reason);
	ck_assert_str_eq(reason, "system transaction failed before commit: "
				 "refused (epoch 8): recovering: fenced");
	plan_txn_failure_reason(9, RS_EUNKNOWN, NULL, reason);
	ck_assert_str_eq(reason, "system transaction failed after it was "
				 "proposed: leadership lost, outcome unknown "
				 "(epoch 9): commit result unknown");
}
END_TEST

/* A long message is cut, never overrun. */
START_TEST(test_txn_failure_reason_truncates)
{
	char message[2 * PLAN_REASON_SIZE];
	char reason[PLAN_REASON_SIZE + 1];

	memset(message, 'm', sizeof message - 1);
	message[sizeof message - 1] = '\0';
	reason[PLAN_REASON_SIZE] = 'X';
	plan_txn_failure_reason(UINT64_MAX, RS_EIO, message, reason);
	ck_assert_uint_eq(strlen(reason), PLAN_REASON_SIZE - 1);
	ck_assert_int_eq(reason[PLAN_REASON_SIZE], 'X');
}
END_TEST

int main(void)
{
	Suite *s = suite_create("director");
	TCase *tt = tcase_create("transitions");
	TCase *tr = tcase_create("recruitment");
	TCase *tl = tcase_create("layout");
	TCase *tp = tcase_create("persistence");
	TCase *tm = tcase_create("monitoring");

	tcase_add_loop_test(tt, test_transition_row, 0, PLAN__PHASES);
	tcase_add_test(tt, test_transition_paths);
	suite_add_tcase(s, tt);
	tcase_add_test(tr, test_live_boundaries);
	tcase_add_test(tr, test_recruit_waits_for_every_server);
	tcase_add_test(tr, test_recruit_deadline);
	tcase_add_test(tr, test_recruit_majority_after_grace);
	tcase_add_test(tr, test_recruit_self_always_live);
	tcase_add_test(tr, test_recruit_silent_member);
	tcase_add_test(tr, test_recruit_only_servers_count);
	tcase_add_test(tr, test_recruit_full_registry);
	suite_add_tcase(s, tr);
	tcase_set_timeout(tl, 60);
	tcase_add_test(tl, test_layout_three_nodes);
	tcase_add_test(tl, test_layout_silent_members_down);
	tcase_add_test(tl, test_layout_all_others_silent);
	tcase_add_test(tl, test_layout_non_voter);
	tcase_add_test(tl, test_layout_update_leaves_out_lagging);
	tcase_add_loop_test(tl, test_layout_proxies, 0, 7);
	tcase_add_loop_test(tl, test_layout_resolvers, 0, 18);
	tcase_add_test(tl, test_layout_full_registry);
	tcase_add_test(tl, test_layout_node_id_limits);
	tcase_add_test(tl, test_layout_bad_address);
	tcase_add_test(tl, test_layout_resets_output);
	tcase_add_test(tl, test_layout_random);
	suite_add_tcase(s, tl);
	tcase_add_test(tp, test_persist_done);
	tcase_add_test(tp, test_persist_waits);
	tcase_add_test(tp, test_persist_fails_after_deadline);
	tcase_add_test(tp, test_persist_only_storage_counts);
	tcase_add_test(tp, test_persist_skips_a_removed_member);
	tcase_add_test(tp, test_persist_full_registry);
	tcase_add_loop_test(tp, test_txn_failure_kind, 0,
			    sizeof txn_statuses / sizeof txn_statuses[0]);
	tcase_add_test(tp, test_txn_failure_reasons);
	tcase_add_test(tp, test_txn_failure_reason_truncates);
	suite_add_tcase(s, tp);
	tcase_add_test(tm, test_monitor_healthy);
	tcase_add_test(tm, test_monitor_heartbeat_lost);
	tcase_add_test(tm, test_monitor_apply_lag);
	tcase_add_test(tm, test_monitor_self_never_fails);
	tcase_add_test(tm, test_monitor_readmission);
	tcase_add_test(tm, test_monitor_log_lag);
	tcase_add_test(tm, test_monitor_node_gone);
	tcase_add_test(tm, test_verdict_needs_epoch);
	tcase_add_test(tm, test_monitor_config_changed);
	tcase_add_loop_test(tm, test_monitor_priority, 0, 5);
	tcase_add_test(tm, test_monitor_full_registry);
	suite_add_tcase(s, tm);

	return testutil_run_suite(s);
}
