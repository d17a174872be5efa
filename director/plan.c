/* plan: see plan.h. */
#include "director/plan.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"

/* ---- the transition table ---- */

/* For each phase its name and the phases it may go to.  Recovery only
 * moves forward, one phase at a time; any phase may fail fast. */
static const struct sm_state plan_phases[PLAN__PHASES] = {
	[PLAN_IDLE] = {"idle", SM_TO(PLAN_EPOCH) | SM_TO(PLAN_EXITED)},
	[PLAN_EPOCH] = {"epoch", SM_TO(PLAN_BARRIER) | SM_TO(PLAN_EXITED)},
	[PLAN_BARRIER] = {"barrier", SM_TO(PLAN_LOCKING) | SM_TO(PLAN_EXITED)},
	[PLAN_LOCKING] = {"locking", SM_TO(PLAN_RECRUITING) | SM_TO(PLAN_EXITED)},
	[PLAN_RECRUITING] = {"recruiting", SM_TO(PLAN_LAYOUT) | SM_TO(PLAN_EXITED)},
	[PLAN_LAYOUT] = {"layout", SM_TO(PLAN_PERSISTING) | SM_TO(PLAN_EXITED)},
	[PLAN_PERSISTING] = {"persisting",
			     SM_TO(PLAN_ACCEPTING) | SM_TO(PLAN_EXITED)},
	[PLAN_ACCEPTING] = {"accepting",
			    SM_TO(PLAN_MONITORING) | SM_TO(PLAN_EXITED)},
	[PLAN_MONITORING] = {"monitoring", SM_TO(PLAN_EXITED)},
	[PLAN_EXITED] = {"exited", 0},
};
const struct sm_def plan_sm = SM_DEF("director", plan_phases);

bool plan_transition_allowed(enum plan_phase from, enum plan_phase to)
{
	return sm_can_move(&plan_sm, (unsigned)from, (unsigned)to);
}

/* ---- members ---- */

bool plan_member_live(const struct plan_member *m, uint64_t self_id,
		      uint64_t now_ms, unsigned failure_ms)
{
	if (m->node_id == self_id)
		return true;
	return m->last_seen_ms != 0 && now_ms - m->last_seen_ms < failure_ms;
}

/* Why a live member may not hold a component: PLAN_APPLY_LAG or
 * PLAN_LOG_LAG with *amount, or PLAN_HEALTHY.  The node itself is never
 * behind. */
static enum plan_verdict plan_member_behind(const struct plan_member *m,
					    uint64_t self_id,
					    const struct plan_lag_limits *lag,
					    uint64_t *amount)
{
	if (m->node_id == self_id)
		return PLAN_HEALTHY;
	if (m->applied_version + lag->versions < lag->applied_version) {
		*amount = lag->applied_version - m->applied_version;
		return PLAN_APPLY_LAG;
	}
	if (m->log_lag_entries > lag->log_entries) {
		*amount = m->log_lag_entries;
		return PLAN_LOG_LAG;
	}
	return PLAN_HEALTHY;
}

/* The member with that id, or NULL. */
static const struct plan_member *
plan_member_find(const struct plan_member *members, unsigned n,
		 uint64_t node_id)
{
	for (unsigned i = 0; i < n; i++)
		if (members[i].node_id == node_id)
			return &members[i];
	return NULL;
}

static bool plan_has_id(const uint64_t *ids, unsigned n, uint64_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* ---- recruitment ---- */

static unsigned plan_count_live(const struct plan_recruit_input *in,
				const uint64_t *ids, unsigned n_ids)
{
	unsigned live = 0;

	for (unsigned i = 0; i < n_ids; i++) {
		const struct plan_member *m =
			plan_member_find(in->members, in->n_members, ids[i]);
		live += m != NULL && plan_member_live(m, in->self_id, in->now_ms,
						      in->failure_ms);
	}
	return live;
}

enum plan_recruit plan_recruit_ready(const struct plan_recruit_input *in)
{
	unsigned live;

	assert(in->n_members <= PLAN_MEMBERS_MAX);
	assert(in->servers != NULL || in->n_servers == 0);
	assert(in->voters != NULL || in->n_voters == 0);
	live = plan_count_live(in, in->servers, in->n_servers);
	assert(live <= in->n_servers);
	if (live == in->n_servers || in->now_ms >= in->deadline_ms)
		return PLAN_RECRUIT_PROCEED;
	if (in->now_ms >= in->quorum_at_ms &&
	    plan_count_live(in, in->voters, in->n_voters) > in->n_voters / 2)
		return PLAN_RECRUIT_PROCEED;
	return PLAN_RECRUIT_WAIT;
}

/* ---- the layout ---- */

static void plan_component_set(struct tsl_component *c, uint64_t id,
			       const struct plan_member *m)
{
	c->id = id;
	c->node_id = m->node_id;
	snprintf(c->addr, sizeof c->addr, "%s", m->client_addr);
}

/* Append to an array of components; ids are 1, 2, ... */
static void plan_add_component(struct tsl_component *arr, uint32_t *n,
			       const struct plan_member *m)
{
	assert(*n < TSL_COMPONENTS_MAX);
	plan_component_set(&arr[*n], *n + 1, m);
	(*n)++;
}

/* Resolver i of n owns first bytes [256 i / n, 256 (i + 1) / n). */
static void plan_resolver_range(struct tsl_range *r, unsigned i, unsigned n)
{
	assert(i < n && n <= 256);
	memset(r, 0, sizeof *r);
	if (i > 0) {
		r->begin[0] = (uint8_t)(256 * i / n);
		r->begin_len = 1;
	}
	if (i + 1 < n) {
		r->end[0] = (uint8_t)(256 * (i + 1) / n);
		r->end_len = 1;
	}
}

/* What runs on the node itself: director, sequencer, the resolvers (they
 * run beside the sequencer) and the first commit proxy. */
static void plan_layout_self(struct tsl *t, const struct plan_input *in,
			     const struct plan_member *self)
{
	uint64_t resolvers = in->resolvers;

	t->id = in->layout_id;
	t->epoch = in->epoch;
	t->recovery_version = in->recovery_version;
	t->director.node_id = in->self_id;
	snprintf(t->director.addr, sizeof t->director.addr, "%s",
		 self->client_addr);
	t->sequencer.id = 1;
	t->sequencer.node_id = in->self_id;
	snprintf(t->sequencer.addr, sizeof t->sequencer.addr, "%s",
		 self->client_addr);
	if (resolvers > TSL_COMPONENTS_MAX)
		resolvers = TSL_COMPONENTS_MAX;
	/* Not plan_add_component: each resolver's component is a single
	 * struct inside its tsl_resolver, not an array to append to. */
	for (unsigned i = 0; i < resolvers; i++) {
		plan_component_set(&t->resolvers[i].c, i + 1, self);
		plan_resolver_range(&t->resolvers[i].range, i,
				    (unsigned)resolvers);
	}
	t->resolver_count = (uint32_t)resolvers;
	plan_add_component(t->commit_proxies, &t->commit_proxy_count, self);
}

/* One member: its service entry, and its components if it is recruited
 * (live, and within the lag limits when the input has them). */
static void plan_layout_member(struct tsl *t, const struct plan_input *in,
			       const struct plan_member *m,
			       const struct plan_member *self)
{
	bool live = plan_member_live(m, in->self_id, in->now_ms, in->failure_ms);
	struct tsl_service *s = &t->services[t->service_count++];
	uint64_t behind;

	assert(t->service_count <= TSL_SERVICES_MAX);
	s->node_id = m->node_id;
	snprintf(s->addr, sizeof s->addr, "%s", m->client_addr);
	s->capabilities = m->capabilities;
	s->status = live ? TSL_STATUS_UP : TSL_STATUS_DOWN;
	s->heartbeat_age_ms = m->last_seen_ms ? in->now_ms - m->last_seen_ms : 0;
	if (!live || (in->lag != NULL &&
		      plan_member_behind(m, in->self_id, in->lag, &behind) !=
			      PLAN_HEALTHY))
		return;
	if (m != self && t->commit_proxy_count < in->commit_proxies &&
	    t->commit_proxy_count < TSL_COMPONENTS_MAX)
		plan_add_component(t->commit_proxies, &t->commit_proxy_count, m);
	if (plan_has_id(in->voters, in->n_voters, m->node_id))
		plan_add_component(t->logs, &t->log_count, m);
	plan_add_component(t->storage, &t->storage_count, m);
}

void plan_build_layout(struct tsl *out, const struct plan_input *in)
{
	const struct plan_member *self =
		plan_member_find(in->members, in->n_members, in->self_id);

	assert(self != NULL);
	assert(in->n_members <= PLAN_MEMBERS_MAX);
	tsl_init(out);
	plan_layout_self(out, in, self);
	for (unsigned i = 0; i < in->n_members; i++)
		plan_layout_member(out, in, &in->members[i], self);
	assert(out->service_count == in->n_members);
	assert(out->storage_count >= 1 && out->commit_proxy_count >= 1);
}

/* ---- persistence ---- */

enum plan_persist plan_persisted(const struct plan_persist_input *in,
				 char *reason)
{
	const struct tsl *t = in->layout;

	reason[0] = '\0';
	for (unsigned i = 0; i < t->storage_count; i++) {
		const struct plan_member *m = plan_member_find(
			in->members, in->n_members, t->storage[i].node_id);

		if (m == NULL || m->applied_version >= in->persist_version)
			continue; /* removed meanwhile, or has it */
		if (in->now_ms < in->deadline_ms)
			return PLAN_PERSIST_WAIT;
		snprintf(reason, PLAN_REASON_SIZE,
			 "system transaction at version %" PRIu64
			 " not applied on node %" PRIu64 " within %u ms"
			 " (applied %" PRIu64 ")",
			 in->persist_version, m->node_id, in->timeout_ms,
			 m->applied_version);
		return PLAN_PERSIST_FAIL;
	}
	return PLAN_PERSIST_DONE;
}

/* ---- monitoring ---- */

enum plan_txn_failure plan_txn_failure_kind(int status)
{
	assert(status != RS_OK);
	switch (status) {
	case RS_ECONFLICT:
	case RS_ETOOOLD:
		return PLAN_TXN_CONFLICT;
	case RS_ENOTLEADER:
	case RS_EUNAVAILABLE:
		return PLAN_TXN_LEADERSHIP;
	case RS_EUNKNOWN:
		return PLAN_TXN_UNKNOWN;
	default:
		return PLAN_TXN_REFUSED;
	}
}

void plan_txn_failure_reason(uint64_t epoch, int status, const char *message,
			     char *reason)
{
	static const char *const how[] = {
		[PLAN_TXN_REFUSED] = "before commit: refused",
		[PLAN_TXN_CONFLICT] = "before commit: in conflict",
		[PLAN_TXN_LEADERSHIP] = "before commit: leadership lost",
		[PLAN_TXN_UNKNOWN] = "after it was proposed: leadership lost, "
				     "outcome unknown",
	};
	enum plan_txn_failure kind = plan_txn_failure_kind(status);

	snprintf(reason, PLAN_REASON_SIZE,
		 "system transaction failed %s (epoch %" PRIu64 "): %s%s%s",
		 how[kind], epoch, rs_strerror(status), message ? ": " : "",
		 message ? message : "");
	assert(strncmp(reason, "system transaction failed", 25) == 0);
}

static bool plan_in_storage(const struct tsl *t, uint64_t id)
{
	for (unsigned i = 0; i < t->storage_count; i++)
		if (t->storage[i].node_id == id)
			return true;
	return false;
}

bool plan_verdict_needs_epoch(enum plan_verdict v)
{
	return v == PLAN_CONFIG_CHANGED;
}

/* Record a finding with the director's wording for it. */
static enum plan_verdict plan_found(struct plan_finding *out,
				    enum plan_verdict v, uint64_t node_id,
				    uint64_t amount)
{
	char *r = out->reason;

	out->verdict = v;
	out->node_id = node_id;
	out->amount = amount;
	r[0] = '\0';
	if (v == PLAN_HEARTBEAT_LOST)
		snprintf(r, PLAN_REASON_SIZE, "component failure: node %" PRIu64
			 " sent no heartbeat for %" PRIu64 " ms", node_id, amount);
	else if (v == PLAN_APPLY_LAG)
		snprintf(r, PLAN_REASON_SIZE, "component failure: node %" PRIu64
			 " is %" PRIu64 " versions behind", node_id, amount);
	else if (v == PLAN_LOG_LAG)
		snprintf(r, PLAN_REASON_SIZE, "component failure: the log on node "
			 "%" PRIu64 " is %" PRIu64 " entries behind the leader",
			 node_id, amount);
	else if (v == PLAN_NODE_BACK)
		snprintf(r, PLAN_REASON_SIZE, "node %" PRIu64 " is back: "
			 "re-admitting it", node_id);
	else if (v == PLAN_NODE_GONE)
		snprintf(r, PLAN_REASON_SIZE, "node %" PRIu64 " left the cluster:"
			 " dropping it from the layout", node_id);
	else if (v == PLAN_CONFIG_CHANGED)
		snprintf(r, PLAN_REASON_SIZE,
			 "configuration changed under \\xff/system/config/");
	return v;
}

static enum plan_verdict plan_check_member(const struct plan_monitor_input *in,
					   const struct plan_member *m,
					   struct plan_finding *out)
{
	bool live = plan_member_live(m, in->self_id, in->now_ms, in->failure_ms);
	bool recruited = plan_in_storage(in->layout, m->node_id);
	uint64_t amount = 0;
	enum plan_verdict behind;

	if (recruited && !live)
		return plan_found(out, PLAN_HEARTBEAT_LOST, m->node_id,
				  in->now_ms - m->last_seen_ms);
	if (!live)
		return PLAN_HEALTHY;
	behind = plan_member_behind(m, in->self_id, &in->lag, &amount);
	if (recruited && behind != PLAN_HEALTHY)
		return plan_found(out, behind, m->node_id, amount);
	/* A returning node catches up first: recruiting it earlier would
	 * only make the next look find it lagging. */
	if (!recruited && behind == PLAN_HEALTHY)
		return plan_found(out, PLAN_NODE_BACK, m->node_id, 0);
	return PLAN_HEALTHY;
}

/* A node the layout names (storage or services) that is no longer a
 * member, or 0. */
static uint64_t plan_layout_gone(const struct plan_monitor_input *in)
{
	const struct tsl *t = in->layout;

	for (unsigned i = 0; i < t->storage_count; i++)
		if (!plan_member_find(in->members, in->n_members,
				      t->storage[i].node_id))
			return t->storage[i].node_id;
	for (unsigned i = 0; i < t->service_count; i++)
		if (!plan_member_find(in->members, in->n_members,
				      t->services[i].node_id))
			return t->services[i].node_id;
	return 0;
}

enum plan_verdict plan_monitor(const struct plan_monitor_input *in,
			       struct plan_finding *out)
{
	uint64_t gone;

	assert(in->n_members <= PLAN_MEMBERS_MAX);
	assert(in->layout != NULL);
	for (unsigned i = 0; i < in->n_members; i++)
		if (plan_check_member(in, &in->members[i], out) != PLAN_HEALTHY)
			return out->verdict;
	gone = plan_layout_gone(in);
	if (gone != 0)
		return plan_found(out, PLAN_NODE_GONE, gone, 0);
	if (in->config_changed)
		return plan_found(out, PLAN_CONFIG_CHANGED, 0, 0);
	return plan_found(out, PLAN_HEALTHY, 0, 0);
}
