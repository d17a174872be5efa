/*
 * node_director: the node's control plane (node_internal.h).
 *
 * On the leader, once its proxy is ready, a director runs recovery and then
 * monitors (director.h); a follower's loss, return or removal is a layout
 * update of the monitoring director, not a new one.  When one exits, the
 * next (next epoch) starts after a doubling backoff, 50 ms up to 2 s,
 * reset by a recovery that persisted its layout; leadership lost stops it.  Every node registers
 * with the leader's director once per half heartbeat interval (the leader
 * records itself directly); the leader answers registrations with its
 * epoch and id ({"epoch":E,"director":ID}, docs/protocol.md).
 *
 * Its metrics: raftstore_epoch (the state machine's), and the recoveries
 * completed here with their durations.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/node_internal.h"
#include "director/tsl.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"
#include "raftstore/proxy.h"
#include "raftstore/wire.h"
#include "storage/store.h"

static void node_director_exited(void *ctx, const char *reason);

static void node_director_start(struct node *n)
{
	struct director_env env = {
		.loop = &n->loop,
		.raft = &n->raft,
		.store = n->store,
		.proxy = n->proxy,
		.registry = &n->registry,
		.node_id = n->cfg.id,
		.client_addr = n->cfg.client_addr,
		.current_epoch = n->fsm.epoch,
		.coordinators = n->coordinators,
		.failure_ms = n->cfg.election_timeout_ms,
		/* Live members re-register within two heartbeats of a new
		 * leader; a dead one never will, so do not wait longer. */
		.recruit_wait_ms = 3 * n->cfg.heartbeat_timeout_ms,
		.persist_timeout_ms = 5000,
		.persist_failures = n->persist_faults,
		.system_txn_fault = n->txn_faults > 0 ? n->txn_fault
						      : DIRECTOR_TXN_FAULT_NONE,
		.hold_phase = n->hold_phase,
		.hold_ms = n->hold_ms,
		.event = node_event,
		.exited = node_director_exited,
		.ctx = n,
	};

	assert(n->director == NULL);
	/* Every member in the registry, never heard from unless it has
	 * registered: the director may recruit one on Raft's word before its
	 * first registration arrives (director.h, RECRUITING). */
	for (unsigned i = 0; i < n->n_peers; i++)
		if (director_registry_seed(&n->registry, n->peers[i].id,
					   n->peers[i].raft_addr,
					   n->peers[i].client_addr) != RS_OK)
			log_warn("node.registry_full", "node=%" PRIu64,
				 n->peers[i].id);
	if (n->persist_faults > 0)
		n->persist_faults--;
	if (n->txn_faults > 0)
		n->txn_faults--;
	n->director_starts++;
	n->director = director_start(&env);
}

static void node_director_tick(uv_timer_t *t)
{
	struct node *n = t->data;
	if (n->director != NULL) {
		director_stop(n->director);
		n->director = NULL;
	}
	struct proxy_stats st;

	proxy_get_stats(n->proxy, &st);
	if (!n->stopping && n->role == RAFT_LEADER &&
	    strcmp(st.state, "ready") == 0)
		node_director_start(n);
}

/* The director failed fast: the next one (next epoch) starts after a
 * bounded, doubling backoff. */
static void node_director_exited(void *ctx, const char *reason)
{
	struct node *n = ctx;
	n->director_backoff_ms = n->director_backoff_ms ? n->director_backoff_ms * 2
							: 50;
	if (n->director_backoff_ms > 2000)
		n->director_backoff_ms = 2000;
	log_info("node.director_restart", "in_ms=%u reason=\"%s\"",
		 n->director_backoff_ms, reason);
	uv_timer_start(&n->director_timer, node_director_tick,
		       n->director_backoff_ms, 0);
}

void node_director_members_changed(struct node *n, const char *why)
{
	if (n->director == NULL || n->stopping || n->role != RAFT_LEADER)
		return;
	if (director_check_now(n->director)) {
		log_info("node.director_check", "reason=\"%s\"", why);
		return;
	}
	director_stop(n->director);
	n->director = NULL;
	log_info("node.director_restart", "in_ms=0 reason=\"%s\"", why);
	uv_timer_start(&n->director_timer, node_director_tick, 0, 0);
}

/* The leader's proxy is ready (leadership barrier done): recover. */
void node_director_leader_ready(void *ctx)
{
	struct node *n = ctx;
	if (n->director == NULL && !uv_is_active((uv_handle_t *)&n->director_timer))
		node_director_start(n);
}

void node_director_drop(struct node *n)
{
	uv_timer_stop(&n->director_timer);
	n->director_backoff_ms = 0;
	if (n->director != NULL) {
		director_stop(n->director);
		n->director = NULL;
	}
}

/* The registration answer, {"epoch":E,"director":ID}; NULL when out of
 * memory. */
static char *node_registration_reply(const struct node *n)
{
	json_t *doc = json_object();
	char *json = NULL;
	int bad = doc == NULL;

	bad = bad || rs_json_set_u64(doc, "epoch", n->fsm.epoch) != RS_OK;
	bad = bad || rs_json_set_u64(doc, "director", n->cfg.id) != RS_OK;
	if (!bad)
		json = rs_json_dump(doc, RS_JSON_COMPACT);
	json_decref(doc);
	return json;
}

char *node_registration(void *ctx, const struct service_registration *r,
			int *status)
{
	struct node *n = ctx;
	char raft_addr[64], client_addr[64];
	char *json;

	assert(n != NULL && r != NULL && status != NULL);
	if (n->role != RAFT_LEADER) {
		*status = RS_ENOTLEADER;
		return NULL;
	}
	snprintf(raft_addr, sizeof raft_addr, "%.*s", (int)r->raft_addr.len,
		 (const char *)r->raft_addr.p);
	snprintf(client_addr, sizeof client_addr, "%.*s", (int)r->client_addr.len,
		 (const char *)r->client_addr.p);
	if (director_registry_update(&n->registry, r->node_id, raft_addr,
				     client_addr, r->capabilities,
				     r->applied_version,
				     uv_now(&n->loop)) != RS_OK) {
		*status = RS_ETOOLARGE;
		return NULL;
	}
	json = node_registration_reply(n);
	if (json == NULL)
		*status = RS_ENOMEM;
	return json;
}

/* Heartbeats the leader refused in a row as from a non-member before this
 * node concludes it was removed from the cluster. */
#define NODE_REMOVED_AFTER 3u

static void node_heartbeat_done(struct rs_op *op)
{
	struct node *n = op->data;
	char q[sizeof op->result.message + 8];

	n->reg_inflight = false;
	/* A voter (only voters register) that the leader does not count as a
	 * member was removed: stop, as the operator would, rather than call
	 * elections the others refuse. */
	if (op->result.status == RS_EINVAL &&
	    strstr(op->result.message, SERVICE_NOT_MEMBER_TEXT) != NULL)
		n->reg_not_member++;
	else
		n->reg_not_member = 0;
	if (n->reg_not_member == NODE_REMOVED_AFTER) {
		log_warn("node.removed", "reason=%s", log_quote(q, sizeof q,
			 op->result.message));
		node_shutdown(n, "removed from the cluster");
	}
	rs_result_free(&op->result);
	rs_buf_free(&op->request);
}

/* Every heartbeat interval: register with the director (the leader). The
 * leader records itself directly. */
void node_heartbeat(struct node *n)
{
	const struct config_peer *leader;
	struct rs_client_options co = {.op_timeout_ms = 1000,
				       .no_leader_pref = true};
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t now = uv_now(&n->loop);
	struct rs_buf body;
	bool voter = node_is_voter(n, n->cfg.id), removed;

	director_registry_update(&n->registry, n->cfg.id, n->cfg.raft_addr,
				 n->cfg.client_addr, TSL_CAP_ALL,
				 store_applied_version(n->store), now);
	/* A joining node registers once it votes: the director recruits
	 * every live registered member into the layout.  A voter that has
	 * since left c-raft's configuration goes on registering: the
	 * configuration it saw may not be committed, and the leader's
	 * refusal is what tells it that it was removed (node_heartbeat_done).
	 * c-raft may or may not show a removed node its removal, depending
	 * on when the leader stops replicating to it. */
	if (voter)
		n->was_voter = true;
	removed = n->was_voter && !node_in_raft_config(n, n->cfg.id);
	/* Out of a committed configuration: removed for good, whether or not
	 * a leader is known (a leader that removed itself steps down and no
	 * longer hears from the next one). */
	if (removed && raftinfo_configuration_committed(&n->raft)) {
		log_warn("node.removed", "reason=\"this node is not in the "
			 "committed Raft configuration\"");
		node_shutdown(n, "removed from the cluster");
		return;
	}
	if (n->role == RAFT_LEADER || n->leader_id == 0 || n->reg_inflight ||
	    (!voter && !removed) ||
	    now - n->last_heartbeat_ms < n->cfg.heartbeat_timeout_ms / 2)
		return;
	leader = node_peer(n, n->leader_id);
	if (leader == NULL)
		return;
	if (n->reg_client != NULL && strcmp(n->reg_addr, leader->client_addr)) {
		rs_client_close(n->reg_client, NULL, NULL);
		n->reg_client = NULL;
	}
	co.endpoints = leader->client_addr;
	if (n->reg_client == NULL &&
	    rs_client_create(&n->reg_client, &n->loop, &co, errmsg) != RS_OK)
		return;
	snprintf(n->reg_addr, sizeof n->reg_addr, "%s", leader->client_addr);
	rs_buf_init(&body);
	rs_buf_put_u64(&body, n->cfg.id);
	wire_put_bytes(&body, n->cfg.raft_addr, strlen(n->cfg.raft_addr));
	wire_put_bytes(&body, n->cfg.client_addr, strlen(n->cfg.client_addr));
	rs_buf_put_u32(&body, TSL_CAP_ALL);
	rs_buf_put_u64(&body, store_applied_version(n->store));
	memset(&n->reg_op, 0, sizeof n->reg_op);
	n->reg_op.data = n;
	if (rs_client_register(n->reg_client, &n->reg_op, &body,
			       node_heartbeat_done) == RS_OK) {
		n->reg_inflight = true;
		n->last_heartbeat_ms = now;
	}
	rs_buf_free(&body);
}

void node_director_event(struct node *n, const char *name)
{
	if (strcmp(name, DIRECTOR_EV_LAYOUT_PERSISTED) != 0 || n->director == NULL)
		return;
	assert(n->m_recoveries != NULL && n->m_recovery_seconds != NULL);
	n->director_backoff_ms = 0; /* a success resets the backoff */
	metrics_inc(n->m_recoveries);
	metrics_observe(n->m_recovery_seconds,
			(double)director_recovery_ms(n->director) / 1000.0);
}

/* The highest epoch allocated, as the state machine applied it. */
static double node_director_epoch(void *ctx)
{
	const struct node *n = ctx;
	return (double)n->fsm.epoch;
}

/* The director's phase as its number (director.h's enum: 0 idle, 1 epoch,
 * ... 7 accepting, 8 monitoring, 9 exited); -1 where no director runs. */
static double node_director_phase(void *ctx)
{
	const struct node *n = ctx;

	return n->director != NULL ? (double)director_phase(n->director) : -1;
}

int node_director_metrics_register(struct node *n)
{
	struct metrics *m = n->metrics;

	assert(m != NULL);
	if (metrics_gauge_fn(m, "raftstore_epoch",
			     "Highest epoch allocated (state machine)",
			     node_director_epoch, n) == NULL ||
	    metrics_gauge_fn(m, "raftstore_director_phase",
			     "The director's phase on this node: -1 none (a "
			     "follower), 0 idle, 1 epoch, 2 barrier, 3 locking, 4 "
			     "recruiting, 5 layout, 6 persisting, 7 accepting, 8 "
			     "monitoring, 9 exited",
			     node_director_phase, n) == NULL)
		return RS_EINVAL;
	n->m_recoveries = metrics_counter(m, "raftstore_recoveries_total",
					  "Recoveries completed by directors here");
	n->m_recovery_seconds = metrics_histogram(
		m, "raftstore_recovery_duration_seconds",
		"Director start to accepting commits", metrics_buckets_seconds,
		METRICS_BUCKETS_SECONDS_COUNT);
	return n->m_recoveries && n->m_recovery_seconds ? RS_OK : RS_EINVAL;
}
