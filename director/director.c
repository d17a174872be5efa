/* director: see director.h. */
#include "director/director.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director/plan.h"
#include "director/tsl.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftcall.h"
#include "raftstore/raftinfo.h"

#define DIRECTOR_TICK_MS 20u
#define DIRECTOR_MONITOR_MS 100u
/* Recruiting looks this often whether every server is live, and proceeds
 * with a live majority of the voters this long after it began: a live
 * follower acknowledges the leader's entries within a round trip of the
 * others, a dead one never will. */
#define DIRECTOR_RECRUIT_TICK_MS 2u
#define DIRECTOR_RECRUIT_GRACE_MS 4u
/* A replica this many versions (about 5 s) behind has failed. */
#define DIRECTOR_LAG_VERSIONS 5000000ull
/* A log this many entries behind the leader has failed. */
#define DIRECTOR_LOG_LAG_ENTRIES 10000u
/* Log progress is judged only after this many failure timeouts of
 * monitoring: a new leader's match indexes start at 0. */
#define DIRECTOR_LOG_GRACE_TIMEOUTS 5u

struct director {
	struct director_env env;
	struct sm sm; /* enum director_phase, on plan.c's table */
	uint64_t epoch;
	uint64_t recovery_version;
	uint64_t persist_version;  /* the recovery's system transaction */
	uint64_t phase_start_ms;
	uint64_t recovery_start_ms;
	uint64_t recovery_ms;
	uint64_t phase_ms[DIRECTOR__PHASES];
	uint64_t wait_deadline_ms;
	uint64_t quorum_at_ms;     /* recruiting: a majority may go from here */
	raft_index recruit_index;  /* the commit index after the barrier */
	uint64_t layout_id;        /* of the recovery's layout: one more than
				    * the previous layout's, at least epoch */
	uint64_t proxies_wanted;   /* desired counts, read once per epoch */
	uint64_t resolvers_wanted;
	struct tsl layout;         /* the one in force (persisted) */
	struct tsl next;           /* the one a layout update is writing */
	bool updating;             /* a layout update is in flight */
	uint64_t update_version;   /* its system transaction's version */
	uint64_t update_start_ms;
	char update_reason[256];
	uv_timer_t timer;
	struct raft_barrier barrier;
	struct raft_barrier nudge;
	bool nudging;
	struct proxy_txn txn;
	unsigned pending; /* callbacks we still owe a visit */
	bool stopped;
	bool timer_open;
	void (*held)(struct director *d); /* RS_FAULT_HOLD_PHASE */
	char reason[256];
};

/* The transition table and the other decisions live in plan.c, which
 * cannot include director.h (it pulls in libuv and raft); its copies of
 * the phases and limits must match. */
_Static_assert(PLAN_IDLE == (int)DIRECTOR_IDLE &&
		       PLAN_EPOCH == (int)DIRECTOR_EPOCH &&
		       PLAN_BARRIER == (int)DIRECTOR_BARRIER &&
		       PLAN_LOCKING == (int)DIRECTOR_LOCKING &&
		       PLAN_RECRUITING == (int)DIRECTOR_RECRUITING &&
		       PLAN_LAYOUT == (int)DIRECTOR_LAYOUT &&
		       PLAN_PERSISTING == (int)DIRECTOR_PERSISTING &&
		       PLAN_ACCEPTING == (int)DIRECTOR_ACCEPTING &&
		       PLAN_MONITORING == (int)DIRECTOR_MONITORING &&
		       PLAN_EXITED == (int)DIRECTOR_EXITED &&
		       PLAN__PHASES == (int)DIRECTOR__PHASES,
	       "plan_phase mirrors director_phase");
_Static_assert(PLAN_MEMBERS_MAX == DIRECTOR_REGISTRY_MAX,
	       "plan holds the whole registry");
_Static_assert(PLAN_ADDR_SIZE ==
		       sizeof(((struct director_member *)0)->client_addr),
	       "member addresses copy whole");
_Static_assert(PLAN_REASON_SIZE == sizeof(((struct director *)0)->reason),
	       "a plan reason fits the director's");

const char *director_phase_name(enum director_phase p)
{
	return sm_state_name(&plan_sm, (unsigned)p);
}

/* The phase the director is in (its struct sm holds it). */
static enum director_phase director_phase_now(const struct director *d)
{
	return (enum director_phase)sm_state(&d->sm);
}

/* ---- registry ---- */

/* The member with that id, or NULL. */
static const struct director_member *
director_registry_find(const struct director_registry *r, uint64_t node_id)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->m[i].node_id == node_id)
			return &r->m[i];
	return NULL;
}

int director_registry_update(struct director_registry *r, uint64_t node_id,
			     const char *raft_addr, const char *client_addr,
			     uint32_t caps, uint64_t applied_version,
			     uint64_t now_ms)
{
	struct director_member *m =
		(struct director_member *)director_registry_find(r, node_id);

	assert(node_id != 0);
	if (m == NULL) {
		if (r->n == DIRECTOR_REGISTRY_MAX)
			return RS_ETOOLARGE;
		m = &r->m[r->n++];
		memset(m, 0, sizeof *m);
		m->node_id = node_id;
	}
	snprintf(m->raft_addr, sizeof m->raft_addr, "%s", raft_addr);
	snprintf(m->client_addr, sizeof m->client_addr, "%s", client_addr);
	m->capabilities = caps;
	m->applied_version = applied_version;
	m->last_seen_ms = now_ms;
	return RS_OK;
}

int director_registry_seed(struct director_registry *r, uint64_t node_id,
			   const char *raft_addr, const char *client_addr)
{
	if (director_registry_find(r, node_id) != NULL)
		return RS_OK;
	return director_registry_update(r, node_id, raft_addr, client_addr,
					TSL_CAP_ALL, 0, 0);
}

void director_registry_remove(struct director_registry *r, uint64_t node_id)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->m[i].node_id == node_id) {
			memmove(&r->m[i], &r->m[i + 1],
				(r->n - i - 1) * sizeof r->m[0]);
			r->n--;
			return;
		}
}

enum director_phase director_phase(const struct director *d)
{
	return director_phase_now(d);
}

bool director_accepting(const struct director *d)
{
	enum director_phase p = director_phase_now(d);

	return p == DIRECTOR_ACCEPTING || p == DIRECTOR_MONITORING;
}

/* How many entries the Raft log of a voter is behind the leader's last
 * index (c-raft's match index), or 0 while it is not judged: before
 * DIRECTOR_LOG_GRACE_TIMEOUTS of monitoring, for the node itself, for a
 * non-voter, or when this node is not the leader. */
static uint64_t director_log_lag(const struct director *d, uint64_t node_id)
{
	struct raft *r = d->env.raft;
	const struct raft_configuration *c;
	raft_index last, match;

	if (director_phase_now(d) != DIRECTOR_MONITORING ||
	    node_id == d->env.node_id || raft_state(r) != RAFT_LEADER ||
	    uv_now(d->env.loop) - d->phase_start_ms <
		    (uint64_t)DIRECTOR_LOG_GRACE_TIMEOUTS * d->env.failure_ms)
		return 0;
	c = raftinfo_configuration(r);
	last = raft_last_index(r);
	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].id == node_id &&
		    c->servers[i].role == RAFT_VOTER &&
		    raftinfo_match_index(r, i, &match) && match < last)
			return last - match;
	return 0;
}

/* The registry as plan.c sees it, at this instant.  The node's own
 * applied version is the store's: fresher than its last heartbeat. */
static unsigned director_snapshot(const struct director *d,
				  struct plan_member *out)
{
	const struct director_registry *reg = d->env.registry;

	assert(reg->n <= PLAN_MEMBERS_MAX);
	for (unsigned i = 0; i < reg->n; i++) {
		const struct director_member *m = &reg->m[i];
		struct plan_member *p = &out[i];

		p->node_id = m->node_id;
		memcpy(p->client_addr, m->client_addr, sizeof p->client_addr);
		p->capabilities = m->capabilities;
		p->applied_version = m->node_id == d->env.node_id
					     ? store_applied_version(d->env.store)
					     : m->applied_version;
		p->last_seen_ms = m->last_seen_ms;
		p->log_lag_entries = director_log_lag(d, m->node_id);
	}
	return reg->n;
}

/* The ids of the Raft configuration: all of them, or only the voters. */
static unsigned director_servers(const struct director *d, uint64_t *ids,
				 bool voters_only)
{
	const struct raft_configuration *c = raftinfo_configuration(d->env.raft);
	unsigned n = 0;

	assert(c->n <= PLAN_SERVERS_MAX);
	for (unsigned i = 0; i < c->n; i++)
		if (!voters_only || c->servers[i].role == RAFT_VOTER)
			ids[n++] = c->servers[i].id;
	return n;
}

/* ---- lifecycle ---- */

/* Hand an event to the node: "epoch", then members (taken over; NULL for
 * none).  Out of memory leaves members out; the event still goes. */
static void director_event(struct director *d, const char *name,
			   json_t *members)
{
	json_t *all = json_object();

	assert(json_object_get(members, "epoch") == NULL);
	if (rs_json_set_u64(all, "epoch", d->epoch) == RS_OK &&
	    members != NULL && json_object_update(all, members) != 0)
		log_warn("director.event_incomplete", "name=%s", name);
	json_decref(members);
	if (d->env.event != NULL)
		d->env.event(d->env.ctx, name, all);
	else
		json_decref(all);
}

/* The members of a component_failure event after "epoch".  The failed
 * node is "component_node": "node" is the audit line's own. */
static json_t *director_failure_members(uint64_t node_id, const char *cause,
					const char *amount_key, uint64_t amount)
{
	json_t *m = json_object();

	rs_json_set_u64(m, "component_node", node_id);
	rs_json_set_str(m, "cause", cause);
	rs_json_set_u64(m, amount_key, amount);
	return m;
}

/* The members of a phase event. */
static json_t *director_phase_members(enum director_phase phase)
{
	json_t *m = json_object();

	rs_json_set_str(m, "phase", director_phase_name(phase));
	return m;
}

static void director_enter(struct director *d, enum director_phase next)
{
	uint64_t now = uv_now(d->env.loop);
	uint64_t took = now - d->phase_start_ms;
	enum director_phase from = director_phase_now(d);
	json_t *ev;

	if (from != DIRECTOR_IDLE) {
		d->phase_ms[from] = took;
		log_info("director.phase_end", "epoch=%" PRIu64 " phase=%s "
			 "duration_ms=%" PRIu64,
			 d->epoch, director_phase_name(from), took);
		ev = director_phase_members(from);
		rs_json_set_u64(ev, "duration_ms", took);
		director_event(d, DIRECTOR_EV_PHASE_END, ev);
	}
	sm_move(&d->sm, next);
	d->phase_start_ms = now;
	if (next != DIRECTOR_EXITED) {
		log_info("director.phase_start", "epoch=%" PRIu64 " phase=%s",
			 d->epoch, director_phase_name(next));
		director_event(d, DIRECTOR_EV_PHASE_START,
			       director_phase_members(next));
	}
}

static void director_free_if_done(struct director *d)
{
	if (d->stopped && d->pending == 0 && !d->timer_open) {
		proxy_txn_free(&d->txn);
		free(d);
	}
}

static void director_timer_closed(uv_handle_t *h)
{
	struct director *d = h->data;
	d->timer_open = false;
	director_free_if_done(d);
}

/* Fail fast: record the reason, stop accepting, tell the node. */
static void director_fail(struct director *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void director_fail(struct director *d, const char *fmt, ...)
{
	char q[320];
	json_t *ev;
	va_list ap;

	if (director_phase_now(d) == DIRECTOR_EXITED || d->stopped)
		return;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof d->reason, fmt, ap);
	va_end(ap);
	proxy_set_accepting(d->env.proxy, false);
	uv_timer_stop(&d->timer);
	log_warn("director.exit", "epoch=%" PRIu64 " phase=%s reason=%s",
		 d->epoch, director_phase_name(director_phase_now(d)),
		 log_quote(q, sizeof q, d->reason));
	ev = director_phase_members(director_phase_now(d));
	rs_json_set_str(ev, "reason", d->reason);
	director_event(d, DIRECTOR_EV_DIRECTOR_EXIT, ev);
	director_enter(d, DIRECTOR_EXITED);
	d->env.exited(d->env.ctx, d->reason);
}

void director_stop(struct director *d)
{
	if (d->stopped)
		return;
	d->stopped = true;
	if (director_phase_now(d) != DIRECTOR_EXITED)
		proxy_set_accepting(d->env.proxy, false);
	if (d->timer_open)
		uv_close((uv_handle_t *)&d->timer, director_timer_closed);
	director_free_if_done(d);
}

uint64_t director_recovery_ms(const struct director *d)
{
	return d->recovery_ms;
}

/* A callback we were owed arrived: false if the director is gone. */
static bool director_back(struct director *d)
{
	assert(d->pending > 0);
	d->pending--;
	if (d->stopped) {
		director_free_if_done(d);
		return false;
	}
	return director_phase_now(d) != DIRECTOR_EXITED;
}

#ifdef RS_FAULT_HOOKS
/* Test hook (RS_FAULT_HOLD_PHASE): pause at the start of the env's hold
 * phase for hold_ms, on the timer, so a test can kill the leader while the
 * director is in that phase.  The loop keeps running meanwhile. */
static void director_held_tick(uv_timer_t *t)
{
	struct director *d = t->data;
	void (*fn)(struct director *) = d->held;

	d->held = NULL;
	if (fn != NULL && director_phase_now(d) != DIRECTOR_EXITED && !d->stopped)
		fn(d);
}

static bool director_hold(struct director *d, void (*fn)(struct director *))
{
	if (d->env.hold_ms == 0 || d->env.hold_phase != director_phase_now(d))
		return false;
	log_info("director.hold", "epoch=%" PRIu64 " phase=%s hold_ms=%u",
		 d->epoch, director_phase_name(director_phase_now(d)), d->env.hold_ms);
	d->held = fn;
	uv_timer_start(&d->timer, director_held_tick, d->env.hold_ms, 0);
	return true;
}
#else
/* The test hooks are compiled in only by configure --enable-fault-hooks. */
static bool director_hold(struct director *d, void (*fn)(struct director *))
{
	(void)d, (void)fn;
	return false;
}
#endif

static uint64_t director_config_u64(struct director *d, const char *param,
				    uint64_t dflt)
{
	char key[128], buf[32];
	const uint8_t *val;
	uint32_t len;
	int n = snprintf(key, sizeof key, "%s%s", DIRECTOR_CONFIG_PREFIX, param);
	char *end;
	unsigned long long v;

	if (store_get(d->env.store, key, (size_t)n,
		      store_applied_version(d->env.store), &val, &len,
		      NULL) != RS_OK ||
	    len == 0 || len >= sizeof buf)
		return dflt;
	memcpy(buf, val, len);
	buf[len] = '\0';
	v = strtoull(buf, &end, 10);
	return *end == '\0' && v > 0 ? v : dflt;
}

/* ---- phases 1-3: epoch, barrier, locking ---- */

static void director_recruit_tick(uv_timer_t *t);

static void director_lock(struct director *d);

static void director_locking(struct director *d)
{
	director_enter(d, DIRECTOR_LOCKING);
	if (!director_hold(d, director_lock))
		director_lock(d);
}

static void director_lock(struct director *d)
{
	const uint8_t *val;
	uint32_t len;
	struct tsl prev;
	char errmsg[RS_ERRMSG_SIZE];
	unsigned first;
	json_t *ev;

	/* From here every batch carries the new epoch; the state machine
	 * already fences the older ones, so the previous layout's sequencer
	 * and proxies cannot write any more. */
	proxy_set_epoch(d->env.proxy, d->epoch);
	d->layout_id = d->epoch;
	if (store_get(d->env.store, DIRECTOR_KEY_LAYOUT,
		      strlen(DIRECTOR_KEY_LAYOUT),
		      store_applied_version(d->env.store), &val, &len,
		      NULL) == RS_OK) {
		if (tsl_decode(val, len, &prev, errmsg) == RS_OK) {
			/* Layout ids keep rising across epochs: updates inside
			 * an epoch take ids beyond it. */
			if (prev.id >= d->layout_id)
				d->layout_id = prev.id + 1;
			ev = json_object();
			rs_json_set_u64(ev, "layout_id", prev.id);
			rs_json_set_u64(ev, "previous_epoch", prev.epoch);
			director_event(d, DIRECTOR_EV_PREVIOUS_LAYOUT_FENCED,
				       ev);
		} else {
			log_warn("director.previous_layout_unreadable",
				 "error=\"%s\"", errmsg);
		}
	}
	director_enter(d, DIRECTOR_RECRUITING);
	first = d->env.hold_phase == DIRECTOR_RECRUITING ? d->env.hold_ms : 0;
	if (first > 0)
		log_info("director.hold", "epoch=%" PRIu64 " phase=recruiting "
			 "hold_ms=%u", d->epoch, first);
	d->wait_deadline_ms = uv_now(d->env.loop) + first + d->env.recruit_wait_ms;
	d->quorum_at_ms = uv_now(d->env.loop) + first + DIRECTOR_RECRUIT_GRACE_MS;
	uv_timer_start(&d->timer, director_recruit_tick, first,
		       DIRECTOR_RECRUIT_TICK_MS);
}

/* c-raft's callback: the work after it makes no c-raft request
 * (raftcall.h guards that). */
static void director_barrier_done(struct raft_barrier *req, int status)
{
	struct director *d = req->data;

	raftcall_cb_enter("director recovery barrier callback");
	if (!director_back(d)) {
		raftcall_cb_leave();
		return;
	}
	if (status != 0) {
		director_fail(d, "recovery barrier failed: %s", raft_strerror(status));
	} else {
		json_t *ev = json_object();

		d->recovery_version = store_accepted_version(d->env.store);
		d->recruit_index = raftinfo_commit_index(d->env.raft);
		rs_json_set_u64(ev, "recovery_version",
				d->recovery_version);
		director_event(d, DIRECTOR_EV_RECOVERY_VERSION, ev);
		director_locking(d);
	}
	raftcall_cb_leave();
}

static void director_start_barrier(struct director *d)
{
	int rv;

	d->barrier.data = d;
	rv = raftcall_barrier(d->env.raft, &d->barrier, director_barrier_done);
	if (rv != 0) {
		director_fail(d, "recovery barrier: %s", raft_strerror(rv));
		return;
	}
	d->pending++;
}

static void director_epoch_done(void *arg, int status, uint64_t version)
{
	struct director *d = arg;
	json_t *ev;

	if (!director_back(d))
		return;
	if (status != RS_OK) {
		director_fail(d, "epoch %" PRIu64 " allocation failed: %s", d->epoch,
			      rs_strerror(status));
		return;
	}
	log_info("director.epoch_allocated", "epoch=%" PRIu64 " version=%" PRIu64,
		 d->epoch, version);
	ev = json_object();
	rs_json_set_u64(ev, "version", version);
	director_event(d, DIRECTOR_EV_EPOCH_ALLOCATED, ev);
	director_enter(d, DIRECTOR_BARRIER);
	if (!director_hold(d, director_start_barrier))
		director_start_barrier(d);
}

static void director_propose_epoch(struct director *d)
{
	struct batch muts;
	uint8_t epoch_le[8];
	int rv;

	batch_init(&muts);
	rs_put_u64(epoch_le, d->epoch);
	batch_set(&muts, DIRECTOR_KEY_EPOCH, strlen(DIRECTOR_KEY_EPOCH), epoch_le,
		  sizeof epoch_le, NULL);
	rv = proxy_allocate_epoch(d->env.proxy, d->epoch, &muts,
				  director_epoch_done, d);
	batch_free(&muts);
	if (rv != RS_OK)
		director_fail(d, "propose epoch %" PRIu64 ": %s", d->epoch,
			      rs_strerror(rv));
	else
		d->pending++;
}

struct director *director_start(const struct director_env *env)
{
	struct director *d = calloc(1, sizeof *d);

	if (d == NULL)
		abort();
	sm_init(&d->sm, &plan_sm, DIRECTOR_IDLE);
	d->env = *env;
	d->epoch = env->current_epoch + 1;
	proxy_txn_init(&d->txn);
	uv_timer_init(env->loop, &d->timer);
	d->timer.data = d;
	d->timer_open = true;
	d->recovery_start_ms = d->phase_start_ms = uv_now(env->loop);
	director_enter(d, DIRECTOR_EPOCH);
	if (!director_hold(d, director_propose_epoch))
		director_propose_epoch(d);
	return d;
}

/* ---- phases 4-5: recruitment and the layout ---- */

/* How far behind a follower may be and still hold components. */
static struct plan_lag_limits director_lag_limits(const struct director *d)
{
	struct plan_lag_limits lag = {
		.applied_version = store_applied_version(d->env.store),
		.versions = DIRECTOR_LAG_VERSIONS,
		.log_entries = DIRECTOR_LOG_LAG_ENTRIES,
	};
	return lag;
}

/* Build a layout of this epoch into *out with the desired counts of the
 * recovery: every live member for a recovery (lag NULL), only those
 * within the limits for an update. */
static void director_plan_layout(struct director *d, struct tsl *out,
				 uint64_t layout_id,
				 const struct plan_lag_limits *lag)
{
	struct plan_member members[PLAN_MEMBERS_MAX];
	uint64_t voters[PLAN_SERVERS_MAX];
	struct plan_input in = {
		.layout_id = layout_id,
		.epoch = d->epoch,
		.recovery_version = d->recovery_version,
		.self_id = d->env.node_id,
		.members = members,
		.n_members = director_snapshot(d, members),
		.voters = voters,
		.n_voters = director_servers(d, voters, true),
		.commit_proxies = d->proxies_wanted,
		.resolvers = d->resolvers_wanted,
		.now_ms = uv_now(d->env.loop),
		.failure_ms = d->env.failure_ms,
		.lag = lag,
	};

	plan_build_layout(out, &in);
}

/* The recovery's layout.  The desired counts are read now, from the
 * applied state, and kept for the epoch's layout updates: a change of
 * them is a configuration change, which ends the epoch. */
static void director_build_layout(struct director *d)
{
	d->proxies_wanted = director_config_u64(d, "commit_proxies", 3);
	d->resolvers_wanted = director_config_u64(d, "resolvers", 1);
	director_plan_layout(d, &d->layout, d->layout_id, NULL);
}

static void director_persist(struct director *d);

/* Recruit once every voter has registered, or when the wait runs out. */
static void director_make_layout(struct director *d);

/*
 * What Raft already knows: a voter whose log holds everything committed
 * when the recovery barrier completed (its match index) answered this
 * leader within the last round trips, so it is live now, even if its first
 * registration with this leader is still on its way.  Its registry entry
 * (seeded by the node with the member's addresses) counts as seen now;
 * until its own registration says otherwise, its applied version is taken
 * to be the recovery version, which its log holds.
 */
static void director_note_raft_acks(struct director *d)
{
	struct raft *r = d->env.raft;
	const struct raft_configuration *c = raftinfo_configuration(r);
	struct director_registry *reg = d->env.registry;
	uint64_t now = uv_now(d->env.loop);
	raft_index match;

	for (unsigned i = 0; i < c->n; i++) {
		struct director_member *m = (struct director_member *)
			director_registry_find(reg, c->servers[i].id);
		if (m == NULL || m->node_id == d->env.node_id ||
		    c->servers[i].role != RAFT_VOTER ||
		    !raftinfo_match_index(r, i, &match) ||
		    match < d->recruit_index)
			continue;
		m->last_seen_ms = now;
		if (m->applied_version < d->recovery_version)
			m->applied_version = d->recovery_version;
	}
}

static void director_recruit_tick(uv_timer_t *timer)
{
	struct director *d = timer->data;
	uint64_t now = uv_now(d->env.loop);
	struct plan_member members[PLAN_MEMBERS_MAX];
	unsigned n;
	uint64_t servers[PLAN_SERVERS_MAX], voters[PLAN_SERVERS_MAX];
	unsigned n_servers = director_servers(d, servers, false);
	unsigned n_voters = director_servers(d, voters, true);
	struct plan_recruit_input in;

	director_note_raft_acks(d);
	n = director_snapshot(d, members);
	in = (struct plan_recruit_input){
		.members = members,
		.n_members = n,
		.servers = servers,
		.n_servers = n_servers,
		.voters = voters,
		.n_voters = n_voters,
		.now_ms = now,
		.failure_ms = d->env.failure_ms,
		.quorum_at_ms = d->quorum_at_ms,
		.deadline_ms = d->wait_deadline_ms,
		.self_id = d->env.node_id,
	};
	if (plan_recruit_ready(&in) == PLAN_RECRUIT_WAIT)
		return;
	uv_timer_stop(timer);
	director_enter(d, DIRECTOR_LAYOUT);
	if (!director_hold(d, director_make_layout))
		director_make_layout(d);
}

static void director_make_layout(struct director *d)
{
	char errmsg[RS_ERRMSG_SIZE];
	json_t *ev;

	director_build_layout(d);
	if (tsl_validate(&d->layout, errmsg) != RS_OK) {
		director_fail(d, "layout does not validate: %s", errmsg);
		return;
	}
	ev = json_object();
	rs_json_set_u64(ev, "layout_id", d->layout.id);
	rs_json_set_u64(ev, "storage", d->layout.storage_count);
	rs_json_set_u64(ev, "logs", d->layout.log_count);
	rs_json_set_u64(ev, "commit_proxies", d->layout.commit_proxy_count);
	rs_json_set_u64(ev, "resolvers", d->layout.resolver_count);
	director_event(d, DIRECTOR_EV_LAYOUT_BUILT, ev);
	director_persist(d);
}

/* ---- phases 6-8: persistence, accepting, monitoring ---- */

static int director_put_kv(void *ctx, const uint8_t *key, size_t key_len,
			   const uint8_t *val, size_t val_len)
{
	struct batch *b = ctx;
	return batch_set(b, key, key_len, val, val_len, NULL);
}

static int director_put_str(struct batch *b, const char *key, const char *val)
{
	return batch_set(b, key, strlen(key), val, strlen(val), NULL);
}

/* \xff/system/last_recovery: who recovered which epoch, and how fast
 * (docs/layout-format.md), as one compact JSON object. */
static int director_put_last_recovery(struct director *d, struct batch *b)
{
	json_t *o = json_object();
	char *text = NULL;
	int rv = o ? RS_OK : RS_ENOMEM;

	if (rv == RS_OK)
		rv = rs_json_set_u64(o, "epoch", d->epoch);
	if (rv == RS_OK)
		rv = rs_json_set_u64(o, "director", d->env.node_id);
	if (rv == RS_OK)
		rv = rs_json_set_u64(o, "recovery_version", d->recovery_version);
	if (rv == RS_OK)
		rv = rs_json_set_u64(o, "layout_id", d->layout.id);
	if (rv == RS_OK)
		rv = rs_json_set_u64(o, "recruited_ms",
				     uv_now(d->env.loop) - d->recovery_start_ms);
	if (rv == RS_OK && (text = rs_json_dump(o, RS_JSON_COMPACT)) == NULL)
		rv = RS_ENOMEM;
	if (rv == RS_OK)
		rv = director_put_str(b, DIRECTOR_KEY_LAST_RECOVERY, text);
	free(text);
	json_decref(o);
	return rv;
}

/* A layout in both forms: \xff/system/layout and the decomposed keys,
 * whose range is rewritten whole so the older layout's keys go. */
static int director_put_layout(struct batch *b, const struct tsl *t,
			       char *errmsg)
{
	struct rs_buf enc;
	int rv;

	rs_buf_init(&enc);
	rv = tsl_encode(t, &enc, errmsg);
	if (rv == RS_OK)
		rv = batch_clear_range(b, "\xff/system/layout/", 17,
				       "\xff/system/layout0", 17, errmsg);
	if (rv == RS_OK)
		rv = batch_set(b, DIRECTOR_KEY_LAYOUT, strlen(DIRECTOR_KEY_LAYOUT),
			       enc.data, enc.len, errmsg);
	if (rv == RS_OK)
		rv = tsl_decompose(t, director_put_kv, b, errmsg);
	rs_buf_free(&enc);
	return rv;
}

/* The system transaction: every system key of this recovery at once. */
static int director_build_txn(struct director *d, char *errmsg)
{
	struct batch *b = &d->txn.muts;
	uint8_t epoch_le[8];
	char buf[512], key[128];
	static const char *const params[] = {"commit_proxies", "resolvers",
					     "batch_count_max", "batch_delay_us"};
	unsigned bcount, bdelay;
	uint64_t dflt[4] = {3, 1, 0, 0};
	int rv;

	rv = director_put_layout(b, &d->layout, errmsg);
	rs_put_u64(epoch_le, d->epoch);
	if (rv == RS_OK)
		rv = batch_set(b, DIRECTOR_KEY_EPOCH, strlen(DIRECTOR_KEY_EPOCH),
			       epoch_le, sizeof epoch_le, errmsg);
	if (rv == RS_OK)
		rv = director_put_str(b, DIRECTOR_KEY_COORDINATORS,
				      d->env.coordinators);
	/* The batching defaults are this node's flags; the stored values,
	 * once set, win (applied in director_accept). */
	proxy_get_batching(d->env.proxy, &bcount, &bdelay);
	dflt[2] = bcount;
	dflt[3] = bdelay;
	for (unsigned i = 0; rv == RS_OK && i < 4; i++) {
		snprintf(key, sizeof key, "%s%s", DIRECTOR_CONFIG_PREFIX, params[i]);
		snprintf(buf, sizeof buf, "%" PRIu64,
			 director_config_u64(d, params[i], dflt[i]));
		rv = director_put_str(b, key, buf);
	}
	if (rv == RS_OK)
		rv = director_put_last_recovery(d, b);
	return rv;
}

static void director_monitor_tick(uv_timer_t *t);

static void director_accept(struct director *d)
{
	unsigned count, delay;
	json_t *ev;

	director_enter(d, DIRECTOR_ACCEPTING);
	proxy_get_batching(d->env.proxy, &count, &delay);
	proxy_set_batching(d->env.proxy,
			   (unsigned)director_config_u64(d, "batch_count_max", count),
			   (unsigned)director_config_u64(d, "batch_delay_us", delay));
	proxy_set_accepting(d->env.proxy, true);
	d->recovery_ms = uv_now(d->env.loop) - d->recovery_start_ms;
	log_info("director.layout_persisted", "epoch=%" PRIu64 " layout_id=%" PRIu64
		 " version=%" PRIu64 " recovery_ms=%" PRIu64,
		 d->epoch, d->layout.id, d->persist_version, d->recovery_ms);
	ev = json_object();
	rs_json_set_u64(ev, "layout_id", d->layout.id);
	rs_json_set_u64(ev, "version", d->persist_version);
	rs_json_set_u64(ev, "recovery_ms", d->recovery_ms);
	director_event(d, DIRECTOR_EV_LAYOUT_PERSISTED, ev);
	director_enter(d, DIRECTOR_MONITORING);
	uv_timer_start(&d->timer, director_monitor_tick, DIRECTOR_MONITOR_MS,
		       DIRECTOR_MONITOR_MS);
}

static void director_update_done(struct director *d);

/* Wait until every storage replica of the layout being written (the
 * recovery's, or an update's) has applied it. */
static void director_persist_tick(uv_timer_t *timer)
{
	struct director *d = timer->data;
	struct plan_member members[PLAN_MEMBERS_MAX];
	struct plan_persist_input in = {
		.layout = d->updating ? &d->next : &d->layout,
		.members = members,
		.n_members = director_snapshot(d, members),
		.persist_version = d->updating ? d->update_version
					       : d->persist_version,
		.now_ms = uv_now(d->env.loop),
		.deadline_ms = d->wait_deadline_ms,
		.timeout_ms = d->env.persist_timeout_ms,
	};
	char reason[PLAN_REASON_SIZE];

	switch (plan_persisted(&in, reason)) {
	case PLAN_PERSIST_WAIT:
		return;
	case PLAN_PERSIST_FAIL:
		director_fail(d, "%s", reason);
		return;
	case PLAN_PERSIST_DONE:
		break;
	}
	uv_timer_stop(timer);
	if (d->updating)
		director_update_done(d);
	else
		director_accept(d);
}

static void director_nudge_done(struct raft_barrier *req, int status)
{
	struct director *d = req->data;
	(void)status; /* only a hint; the persist wait decides */
	raftcall_cb_enter("director nudge barrier callback");
	d->nudging = false;
	director_back(d);
	raftcall_cb_leave();
}

/* Followers learn a commit index with the next AppendEntries; a barrier
 * entry sends one now instead of at the next heartbeat.  One at a time. */
static void director_nudge(struct director *d)
{
	if (d->nudging)
		return;
	d->nudge.data = d;
	if (raftcall_barrier(d->env.raft, &d->nudge, director_nudge_done) == 0) {
		d->nudging = true;
		d->pending++;
	}
}

/* The system transaction failed before it was applied: exit (never repair
 * in place) with a reason that says how, so the next epoch's director,
 * which writes every system key anew, is the one that persists. */
static void director_txn_failed(struct director *d, int status,
				const char *message)
{
	char reason[PLAN_REASON_SIZE];

	assert(status != RS_OK);
	plan_txn_failure_reason(d->epoch, status, message, reason);
	director_fail(d, "%s", reason);
}

static void director_persisted(struct proxy_txn *t, int status,
			       uint64_t version, const char *message)
{
	struct director *d = t->data;

	if (!director_back(d))
		return;
	if (status != RS_OK) {
		director_txn_failed(d, status, message);
		return;
	}
#ifdef RS_FAULT_HOOKS
	if (d->env.persist_failures > 0) {
		/* test fault RS_FAULT_PERSIST_FAILURES: a failure after commit */
		director_fail(d, "system transaction failed: committed at version "
			      "%" PRIu64 ", reported as %s (test fault)",
			      version, rs_strerror(RS_EIO));
		return;
	}
#endif
	if (!d->updating) {
		/* Committed, so durable on a majority of the Raft logs, and
		 * applied by this node's storage (the commit proxy answers
		 * after that).  The other storage replicas apply it from
		 * their logs like any write; monitoring holds them to it. */
		d->persist_version = version;
		director_accept(d);
		return;
	}
	/* An update keeps persist_version: configuration writes are looked
	 * for from the recovery's on (director_config_changed). */
	d->update_version = version;
	director_nudge(d);
	d->wait_deadline_ms = uv_now(d->env.loop) + d->env.persist_timeout_ms;
	uv_timer_start(&d->timer, director_persist_tick, 0, DIRECTOR_TICK_MS);
}

#ifdef RS_FAULT_HOOKS
/* The statuses and messages the commit path gives for each kind of test
 * fault (director_txn_fault), indexed by kind. */
static const struct {
	const char *name;
	int status;
	const char *message;
} director_txn_faults[DIRECTOR_TXN_FAULT__KINDS] = {
	[DIRECTOR_TXN_FAULT_REFUSE] = {"refuse", RS_EINVAL,
		"the commit proxy refused it (test fault RS_FAULT_SYSTEM_TXN)"},
	[DIRECTOR_TXN_FAULT_CONFLICT] = {"conflict", RS_ECONFLICT,
		"read keys changed since the read version (test fault "
		"RS_FAULT_SYSTEM_TXN)"},
	[DIRECTOR_TXN_FAULT_LEADERSHIP] = {"leadership", RS_ENOTLEADER,
		"leadership moved before the transaction was proposed (test "
		"fault RS_FAULT_SYSTEM_TXN)"},
};

int director_txn_fault_parse(const char *name, enum director_txn_fault *out)
{
	for (int k = DIRECTOR_TXN_FAULT_NONE + 1; k < DIRECTOR_TXN_FAULT__KINDS; k++)
		if (strcmp(name, director_txn_faults[k].name) == 0) {
			*out = (enum director_txn_fault)k;
			return RS_OK;
		}
	return RS_EINVAL;
}

/* The test fault's answer, from the loop as the proxy's would be. */
static void director_txn_fault_tick(uv_timer_t *timer)
{
	struct director *d = timer->data;
	enum director_txn_fault k = d->env.system_txn_fault;

	assert(k > DIRECTOR_TXN_FAULT_NONE && k < DIRECTOR_TXN_FAULT__KINDS);
	assert(director_phase_now(d) == DIRECTOR_PERSISTING);
	director_txn_failed(d, director_txn_faults[k].status,
			    director_txn_faults[k].message);
}
#endif /* RS_FAULT_HOOKS */

static void director_persist_commit(struct director *d);

static void director_persist(struct director *d)
{
	director_enter(d, DIRECTOR_PERSISTING);
	if (!director_hold(d, director_persist_commit))
		director_persist_commit(d);
}

/* Commit d->txn as a system transaction; director_persisted hears how it
 * went.  Returns false if it failed at once (the director has exited). */
static bool director_submit(struct director *d, uint64_t read_version)
{
	/* A follower's proxy would forward it to the new leader: a deposed
	 * director's system transaction must not go anywhere. */
	if (raft_state(d->env.raft) != RAFT_LEADER) {
		director_txn_failed(d, RS_ENOTLEADER, "this node is no longer "
				    "the Raft leader");
		return false;
	}
#ifdef RS_FAULT_HOOKS
	/* A director with this fault fails its recovery's transaction, so it
	 * never gets to a layout update. */
	if (d->env.system_txn_fault != DIRECTOR_TXN_FAULT_NONE) {
		uv_timer_start(&d->timer, director_txn_fault_tick, 0, 0);
		return true;
	}
#endif
	d->txn.data = d;
	d->txn.system = true;
	d->txn.read_version = read_version;
	d->pending++;
	proxy_commit(d->env.proxy, &d->txn, director_persisted);
	return true;
}

static void director_persist_commit(struct director *d)
{
	char errmsg[RS_ERRMSG_SIZE];

	if (director_build_txn(d, errmsg) != RS_OK) {
		director_fail(d, "build the system transaction: %s", errmsg);
		return;
	}
	director_submit(d, d->recovery_version);
}

struct director_config_scan {
	uint64_t after;
	bool changed;
};

static int director_config_seen(void *ctx, const uint8_t *key,
				uint32_t key_len, const uint8_t *val,
				uint32_t val_len, uint64_t found_version)
{
	struct director_config_scan *s = ctx;
	(void)key, (void)key_len, (void)val, (void)val_len;
	if (found_version > s->after)
		s->changed = true;
	return s->changed;
}

/* Has anything under DIRECTOR_CONFIG_PREFIX been written since the
 * recovery's system transaction (which wrote them all)?  Not since a
 * layout update's: a write seen by no tick before the update (a follower's
 * finding comes first) must still end the epoch. */
static bool director_config_changed(struct director *d, uint64_t applied)
{
	struct director_config_scan scan = {d->persist_version, false};

	store_range(d->env.store, DIRECTOR_CONFIG_PREFIX,
		    strlen(DIRECTOR_CONFIG_PREFIX), "\xff/system/config0", 17,
		    applied, 0, director_config_seen, &scan, NULL);
	return scan.changed;
}

/* The members of a component_failure event for a monitoring finding,
 * or NULL if the finding is not a component's failure. */
static json_t *director_finding_failure(const struct plan_finding *f)
{
	switch (f->verdict) {
	case PLAN_HEARTBEAT_LOST:
		return director_failure_members(f->node_id, "heartbeat",
						"age_ms", f->amount);
	case PLAN_APPLY_LAG:
		return director_failure_members(f->node_id, "apply_lag",
						"lag_versions", f->amount);
	case PLAN_LOG_LAG:
		return director_failure_members(f->node_id, "log_lag",
						"lag_entries", f->amount);
	default:
		return NULL;
	}
}

/*
 * Repair in place: write a new layout of this epoch, with the members
 * recruited as they are now, by a system transaction.  The proxy keeps
 * accepting and the epoch stays: nothing in flight depends on a
 * follower's components (its proxy only forwards to this one, its log
 * and storage are Raft's to catch up).  A failure of the transaction
 * still ends the director.
 */
static void director_update_layout(struct director *d, const char *reason)
{
	struct plan_lag_limits lag = director_lag_limits(d);
	char errmsg[RS_ERRMSG_SIZE], q[320];

	uv_timer_stop(&d->timer);
	snprintf(d->update_reason, sizeof d->update_reason, "%s", reason);
	log_warn("director.layout_update", "epoch=%" PRIu64 " layout_id=%"
		 PRIu64 " reason=%s", d->epoch, d->layout.id + 1,
		 log_quote(q, sizeof q, reason));
	director_plan_layout(d, &d->next, d->layout.id + 1, &lag);
	if (tsl_validate(&d->next, errmsg) != RS_OK) {
		director_fail(d, "layout update does not validate: %s", errmsg);
		return;
	}
	proxy_txn_free(&d->txn);
	proxy_txn_init(&d->txn);
	if (director_put_layout(&d->txn.muts, &d->next, errmsg) != RS_OK) {
		director_fail(d, "build the layout update: %s", errmsg);
		return;
	}
	d->update_start_ms = uv_now(d->env.loop);
	d->updating = director_submit(d, lag.applied_version);
}

/* Every storage replica of the update has applied it: it is in force. */
static void director_update_done(struct director *d)
{
	uint64_t took = uv_now(d->env.loop) - d->update_start_ms;
	uint64_t previous = d->layout.id;
	json_t *ev = json_object();

	d->layout = d->next;
	d->updating = false;
	log_info("director.layout_updated", "epoch=%" PRIu64 " layout_id=%"
		 PRIu64 " version=%" PRIu64 " storage=%u update_ms=%" PRIu64,
		 d->epoch, d->layout.id, d->update_version,
		 (unsigned)d->layout.storage_count, took);
	rs_json_set_u64(ev, "layout_id", d->layout.id);
	rs_json_set_u64(ev, "previous_layout_id", previous);
	rs_json_set_u64(ev, "version", d->update_version);
	rs_json_set_u64(ev, "storage", d->layout.storage_count);
	rs_json_set_u64(ev, "logs", d->layout.log_count);
	rs_json_set_u64(ev, "commit_proxies", d->layout.commit_proxy_count);
	rs_json_set_u64(ev, "update_ms", took);
	rs_json_set_str(ev, "reason", d->update_reason);
	director_event(d, DIRECTOR_EV_LAYOUT_UPDATED, ev);
	uv_timer_start(&d->timer, director_monitor_tick, DIRECTOR_MONITOR_MS,
		       DIRECTOR_MONITOR_MS);
}

/* Heartbeats, apply and log lag of every recruited node, returning and
 * removed nodes, and configuration changes.  A follower's finding is
 * repaired by a layout update; a configuration change ends the epoch. */
static void director_monitor_tick(uv_timer_t *timer)
{
	struct director *d = timer->data;
	struct plan_member members[PLAN_MEMBERS_MAX];
	uint64_t applied = store_applied_version(d->env.store);
	struct plan_monitor_input in = {
		.members = members,
		.n_members = director_snapshot(d, members),
		.layout = &d->layout,
		.self_id = d->env.node_id,
		.now_ms = uv_now(d->env.loop),
		.failure_ms = d->env.failure_ms,
		.lag = director_lag_limits(d),
		.config_changed = director_config_changed(d, applied),
	};
	struct plan_finding f;
	json_t *failure;
	char q[320];

	assert(!d->updating);
	if (plan_monitor(&in, &f) == PLAN_HEALTHY)
		return;
	failure = director_finding_failure(&f);
	if (failure != NULL) {
		log_warn("director.component_failure", "epoch=%" PRIu64
			 " node=%" PRIu64 " reason=%s", d->epoch, f.node_id,
			 log_quote(q, sizeof q, f.reason));
		director_event(d, DIRECTOR_EV_COMPONENT_FAILURE, failure);
	}
	if (plan_verdict_needs_epoch(f.verdict))
		director_fail(d, "%s", f.reason);
	else
		director_update_layout(d, f.reason);
}

bool director_check_now(struct director *d)
{
	if (d->stopped || director_phase_now(d) != DIRECTOR_MONITORING)
		return false;
	/* An update in flight: the look after it sees the change. */
	if (!d->updating)
		director_monitor_tick(&d->timer);
	return true;
}

int director_status_fields(const struct director *d, json_t *doc)
{
	int rv = rs_json_set_u64(doc, "epoch", d->epoch);

	if (rv == RS_OK)
		rv = rs_json_set_str(doc, "director_phase",
				     director_phase_name(director_phase_now(d)));
	if (rv == RS_OK)
		rv = rs_json_set_u64(doc, "phase_ms",
				     uv_now(d->env.loop) - d->phase_start_ms);
	if (rv == RS_OK)
		rv = rs_json_set_u64(doc, "recovery_ms", d->recovery_ms);
	if (rv == RS_OK)
		rv = rs_json_set_u64(doc, "layout_id", d->layout.id);
	if (rv == RS_OK)
		rv = rs_json_set_str(doc, "director_exit", d->reason);
	return rv;
}
