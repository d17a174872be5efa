/* node: see node.h. */
#include "coordinator/node.h"

#include <assert.h>
#include <inttypes.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "coordinator/audit.h"
#include "coordinator/http.h"
#include "director/director.h"
#include "director/tsl.h"
#include "raftstore/fsm.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/proxy.h"
#include "raftstore/raftcall.h"
#include "raftstore/raftio.h"
#include "raftstore/raftseg.h"
#include "raftstore/server.h"
#include "raftstore/service.h"
#include "raftstore/watch.h"
#include "storage/fileio.h"
#include "storage/store.h"

#define NODE_ROLE_POLL_MS 20u

struct node {
	uv_loop_t loop;
	struct config cfg;
	char store_dir[PATH_MAX + 16];
	char raft_dir[PATH_MAX + 16];
	struct config_peer peers[CONFIG_PEERS_MAX];
	unsigned n_peers;
	struct store *store;
	struct fsm fsm;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft raft;
	bool raft_started;
	struct proxy *proxy;
	struct watch_hub *hub;
	struct service *service;
	struct server *server;
	uv_signal_t sigterm, sigint;
	uv_timer_t role_timer;
	int role;
	raft_id leader_id;
	uint64_t leader_changes;
	uint64_t start_ms;
	/* control plane */
	struct director_registry registry;
	struct director *director;
	uv_timer_t director_timer; /* restart after an exit, with backoff */
	uv_timer_t quiesce_timer;  /* shutdown: wait for c-raft to answer */
	uint64_t quiesce_deadline_ms;
	unsigned director_backoff_ms;
	unsigned persist_faults;   /* RS_FAULT_PERSIST_FAILURES (tests) */
	enum director_phase hold_phase; /* RS_FAULT_HOLD_PHASE=phase:ms */
	unsigned hold_ms;
	uint64_t director_starts;
	struct rs_client *reg_client; /* heartbeats to the leader */
	char reg_addr[64];
	struct rs_op reg_op;
	bool reg_inflight;
	uint64_t last_heartbeat_ms;
	char coordinators[1024];
	/* observability */
	struct audit *audit;
	struct http *http;
	struct metrics *metrics;
	struct metric *m_has_leader, *m_leader_changes, *m_epoch, *m_recoveries,
		*m_recovery_seconds, *m_commits, *m_conflicts, *m_batches,
		*m_batch_txns, *m_batch_size, *m_batch_bytes, *m_apply_lag,
		*m_fsync_audit, *m_storage_bytes, *m_fenced;
	bool stopping;
	int exit_code;
};

static const char *node_role_name(int state)
{
	switch (state) {
	case RAFT_LEADER: return "leader";
	case RAFT_FOLLOWER: return "follower";
	case RAFT_CANDIDATE: return "candidate";
	default: return "unavailable";
	}
}

static void node_fatal(void *ctx, const char *msg)
{
	struct node *n = ctx;
	char q[RS_ERRMSG_SIZE + 64];

	log_error("node.fatal", "reason=%s action=exit",
		  log_quote(q, sizeof q, msg));
	/* Record the exit durably before going: a synchronous flush on the
	 * loop thread, the one place where blocking is the right call. */
	if (n != NULL && n->audit != NULL && !audit_failed(n->audit)) {
		json_t *extra = json_object();
		rs_json_set_str(extra, "reason", msg);
		audit_event(n->audit, AUDIT_EV_FAIL_FAST, extra);
		audit_flush_sync(n->audit);
	}
	_exit(NODE_EXIT_FAILURE);
}

static const struct config_peer *node_peer(const struct node *n, raft_id id)
{
	for (unsigned i = 0; i < n->n_peers; i++)
		if (n->peers[i].id == id)
			return &n->peers[i];
	return NULL;
}

/* ---- callbacks from the transaction system ---- */

static void node_applied(void *ctx, const struct batch *b)
{
	struct node *n = ctx;
	service_applied(n->service, b);
}

static void node_restored(void *ctx, uint64_t version)
{
	struct node *n = ctx;
	log_info("fsm.restored", "version=%" PRIu64, version);
	service_restored(n->service, version);
}

static void node_fenced(void *ctx, const struct batch *b, uint64_t epoch)
{
	(void)ctx;
	log_warn("fsm.fenced", "version=%" PRIu64 " batch_epoch=%" PRIu64
		 " current_epoch=%" PRIu64, b->version, b->epoch, epoch);
}

static const char *node_leader_addr(void *ctx)
{
	struct node *n = ctx;
	const struct config_peer *p;

	if (n->leader_id == 0 || n->leader_id == n->cfg.id)
		return NULL;
	p = node_peer(n, n->leader_id);
	return p ? p->client_addr : NULL;
}

static void node_director_start(struct node *n);

static void node_batch(void *ctx, unsigned txns, size_t bytes)
{
	struct node *n = ctx;
	metrics_observe(n->m_batch_size, txns);
	metrics_observe(n->m_batch_bytes, (double)bytes);
}

/* One event with one integer member (out of memory leaves it out). */
static void node_audit_int(struct node *n, const char *name, const char *key,
			   int64_t v)
{
	json_t *extra = json_object();

	rs_json_set_i64(extra, key, v);
	audit_event(n->audit, name, extra);
}

static void node_event(void *ctx, const char *name, json_t *members)
{
	struct node *n = ctx;
	int rv = RS_OK;

	if (n->audit != NULL)
		rv = audit_event(n->audit, name, members);
	else
		json_decref(members);

	if (rv != RS_OK)
		log_warn("audit.event_refused", "name=%s error=%s", name,
			 rs_strerror(rv));
	if (strcmp(name, DIRECTOR_EV_LAYOUT_PERSISTED) == 0 && n->director != NULL) {
		n->director_backoff_ms = 0; /* a success resets the backoff */
		metrics_inc(n->m_recoveries);
		metrics_observe(n->m_recovery_seconds,
				(double)director_recovery_ms(n->director) / 1000.0);
	}
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
		.hold_phase = n->hold_phase,
		.hold_ms = n->hold_ms,
		.event = node_event,
		.exited = node_director_exited,
		.ctx = n,
	};

	assert(n->director == NULL);
	if (n->persist_faults > 0)
		n->persist_faults--;
	n->director_starts++;
	n->director = director_start(&env);
}

/* The leader's proxy is ready (leadership barrier done): recover. */
static void node_leader_ready(void *ctx)
{
	struct node *n = ctx;
	if (n->director == NULL && !uv_is_active((uv_handle_t *)&n->director_timer))
		node_director_start(n);
}

/* ---- status ---- */

/* Append printf output to a growing string. */
static void node_appendf(struct rs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void node_appendf(struct rs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int need;

	va_start(ap, fmt);
	need = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (need < 0 || rs_buf_reserve(b, (size_t)need + 1) != RS_OK)
		abort();
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)need + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)need;
}

static void node_members_into(struct node *n, struct rs_buf *b)
{
	const struct raft_configuration *conf = &n->raft.configuration;

	node_appendf(b, "[");
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *sv = &conf->servers[i];
		const struct config_peer *p = node_peer(n, sv->id);
		node_appendf(b,
			     "%s{\"id\":%llu,\"raft_addr\":\"%s\","
			     "\"client_addr\":\"%s\",\"role\":\"%s\","
			     "\"leader\":%s}",
			     i ? "," : "", (unsigned long long)sv->id, sv->address,
			     p ? p->client_addr : "",
			     sv->role == RAFT_VOTER     ? "voter"
			     : sv->role == RAFT_STANDBY ? "standby"
							: "spare",
			     sv->id == n->leader_id ? "true" : "false");
	}
	node_appendf(b, "]");
}

static char *node_status_json(void *ctx)
{
	struct node *n = ctx;
	struct proxy_stats ps;
	struct service_stats ss;
	struct rs_buf b;
	const char *leader_client = node_leader_addr(n);
	const char *err = store_errmsg(n->store);

	if (n->leader_id == n->cfg.id)
		leader_client = n->cfg.client_addr;
	proxy_get_stats(n->proxy, &ps);
	service_get_stats(n->service, &ss);
	rs_buf_init(&b);
	node_appendf(&b,
		     "{\"id\":%llu,\"raft_addr\":\"%s\",\"client_addr\":\"%s\","
		     "\"role\":\"%s\",\"term\":%llu,\"leader_id\":%llu,"
		     "\"leader_client_addr\":\"%s\",\"commit_index\":%llu,"
		     "\"applied_index\":%llu,\"applied_version\":%" PRIu64 ","
		     "\"storage_bytes\":%" PRIu64 ",\"keys\":%" PRIu64 ","
		     "\"health\":\"%s\",\"proxy\":\"%s\",\"leader_changes\":%" PRIu64
		     ",\"uptime_s\":%" PRIu64 ",\"commits\":%" PRIu64
		     ",\"conflicts\":%" PRIu64 ",\"batches\":%" PRIu64
		     ",\"connections\":%u,\"members\":",
		     (unsigned long long)n->cfg.id, n->cfg.raft_addr,
		     n->cfg.client_addr, node_role_name(raft_state(&n->raft)),
		     (unsigned long long)n->raft.current_term,
		     (unsigned long long)n->leader_id,
		     leader_client ? leader_client : "",
		     (unsigned long long)n->raft.commit_index,
		     (unsigned long long)n->raft.last_applied,
		     store_applied_version(n->store), store_disk_bytes(n->store),
		     mvcc_key_count(store_index(n->store)),
		     err[0] ? "failed" : "ok", ps.state, n->leader_changes,
		     (uv_now(&n->loop) - n->start_ms) / 1000, ps.commits,
		     ps.conflicts, ps.batches, server_connection_count(n->server));
	node_members_into(n, &b);
	node_appendf(&b, ",\"fenced\":%" PRIu64 ",\"accepting\":%s,",
		     n->fsm.fenced_entries, ps.accepting ? "true" : "false");
	if (n->director != NULL)
		director_status_fields(n->director, &b);
	else
		node_appendf(&b, "\"epoch\":%" PRIu64 ",\"director_phase\":\"%s\"",
			     n->fsm.epoch, n->role == RAFT_LEADER ? "restarting"
								   : "none");
	node_appendf(&b, "}");
	rs_buf_put_u8(&b, 0);
	return (char *)b.data;
}

static char *node_members_json(void *ctx)
{
	struct node *n = ctx;
	struct rs_buf b;

	rs_buf_init(&b);
	node_members_into(n, &b);
	rs_buf_put_u8(&b, 0);
	return (char *)b.data;
}

/* ---- registration and heartbeats ---- */

static void node_director_drop(struct node *n)
{
	uv_timer_stop(&n->director_timer);
	n->director_backoff_ms = 0;
	if (n->director != NULL) {
		director_stop(n->director);
		n->director = NULL;
	}
}

static char *node_registration(void *ctx, const struct service_registration *r,
			       int *status)
{
	struct node *n = ctx;
	char raft_addr[64], client_addr[64];
	char *json;

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
	json = malloc(96);
	if (json == NULL)
		abort();
	snprintf(json, 96, "{\"epoch\":%llu,\"director\":%llu}",
		 (unsigned long long)n->fsm.epoch, (unsigned long long)n->cfg.id);
	return json;
}

static void node_heartbeat_done(struct rs_op *op)
{
	struct node *n = op->data;
	n->reg_inflight = false;
	rs_result_free(&op->result);
	rs_buf_free(&op->request);
}

/* Every heartbeat interval: register with the director (the leader). The
 * leader records itself directly. */
static void node_heartbeat(struct node *n)
{
	const struct config_peer *leader;
	struct rs_client_options co = {.op_timeout_ms = 1000,
				       .no_leader_pref = true};
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t now = uv_now(&n->loop);
	struct rs_buf body;

	director_registry_update(&n->registry, n->cfg.id, n->cfg.raft_addr,
				 n->cfg.client_addr, TSL_CAP_ALL,
				 store_applied_version(n->store), now);
	if (n->role == RAFT_LEADER || n->leader_id == 0 || n->reg_inflight ||
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

/* ---- Raft role ---- */

static void node_role_tick(uv_timer_t *t)
{
	struct node *n = t->data;
	int state = raft_state(&n->raft);
	raft_id leader = 0;
	const char *addr = NULL;

	raft_leader(&n->raft, &leader, &addr);
	if (leader != n->leader_id) {
		log_info("raft.leader_changed", "leader=%llu previous=%llu term=%llu",
			 (unsigned long long)leader,
			 (unsigned long long)n->leader_id,
			 (unsigned long long)n->raft.current_term);
		n->leader_id = leader;
		n->leader_changes++;
		proxy_leader_moved(n->proxy);
	}
	if (state != n->role) {
		log_info("raft.role", "role=%s previous=%s term=%llu",
			 node_role_name(state), node_role_name(n->role),
			 (unsigned long long)n->raft.current_term);
		if (state == RAFT_LEADER) {
			log_info("raft.election_won", "term=%llu",
				 (unsigned long long)n->raft.current_term);
			node_audit_int(n, AUDIT_EV_ELECTION_WON, "term",
				       (int64_t)n->raft.current_term);
		} else if (n->role == RAFT_LEADER) {
			log_info("raft.leadership_lost", "term=%llu",
				 (unsigned long long)n->raft.current_term);
			node_audit_int(n, AUDIT_EV_LEADER_LOST, "term",
				       (int64_t)n->raft.current_term);
		}
		n->role = state;
		proxy_set_leader(n->proxy, state == RAFT_LEADER);
		if (state != RAFT_LEADER)
			node_director_drop(n);
	}
	node_heartbeat(n);
	if (audit_failed(n->audit))
		node_fatal(n, audit_errmsg(n->audit));
}

/* ---- shutdown ---- */

static void node_handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void node_audit_closed(void *arg, int status)
{
	struct node *n = arg;
	if (status != RS_OK)
		n->exit_code = NODE_EXIT_FAILURE;
	metrics_free(n->metrics);
	log_info("node.stopped", "exit_code=%d", n->exit_code);
	uv_close((uv_handle_t *)&n->sigterm, node_handle_closed);
	uv_close((uv_handle_t *)&n->sigint, node_handle_closed);
}

static void node_store_closed(void *arg)
{
	struct node *n = arg;
	node_audit_int(n, AUDIT_EV_NODE_STOP, "exit_code", n->exit_code);
	audit_close(n->audit, node_audit_closed, n);
}

static void node_proxy_closed(void *arg)
{
	struct node *n = arg;
	service_destroy(n->service);
	watch_hub_destroy(n->hub);
	raft_uv_close(&n->io);
	raft_uv_tcp_close(&n->transport);
	store_close(n->store, node_store_closed, n);
}

static void node_raft_closed(struct raft *r)
{
	struct node *n = r->data;
	raftcall_cb_enter("raft close callback");
	proxy_close(n->proxy, node_proxy_closed, n);
	raftcall_cb_leave();
}

/* Longest wait for c-raft to answer what we asked before closing it. */
#define NODE_QUIESCE_MS 2000u

static void node_quiesce_tick(uv_timer_t *t)
{
	struct node *n = t->data;

	if (!proxy_idle(n->proxy) &&
	    uv_now(&n->loop) < n->quiesce_deadline_ms)
		return;
	if (!proxy_idle(n->proxy))
		log_warn("node.quiesce_timeout", "waited_ms=%u", NODE_QUIESCE_MS);
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, node_handle_closed);
	raft_close(&n->raft, node_raft_closed);
}

/* The client port is closed: let the batches and barriers already in
 * c-raft finish (bounded) before closing it.  c-raft 0.15 crashed, rarely,
 * when a leader under load was closed with requests in flight; with the
 * port closed no new ones come, so the wait is short. */
static void node_server_stopped(void *arg)
{
	struct node *n = arg;

	n->quiesce_deadline_ms = uv_now(&n->loop) + NODE_QUIESCE_MS;
	uv_timer_start(&n->quiesce_timer, node_quiesce_tick, 0, 5);
}

static void node_stop(struct node *n, const char *why)
{
	if (n->stopping)
		return;
	n->stopping = true;
	raftio_guard_quiet();
	log_info("node.stopping", "reason=%s", why);
	uv_timer_stop(&n->role_timer);
	uv_close((uv_handle_t *)&n->role_timer, node_handle_closed);
	node_director_drop(n);
	uv_close((uv_handle_t *)&n->director_timer, node_handle_closed);
	if (n->reg_client != NULL)
		rs_client_close(n->reg_client, NULL, NULL);
	n->reg_client = NULL;
	if (n->http != NULL)
		http_stop(n->http, NULL, NULL);
	n->http = NULL;
	server_stop(n->server, node_server_stopped, n);
}

static void node_signal(uv_signal_t *h, int signum)
{
	struct node *n = h->data;
	node_stop(n, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start-up ---- */

static bool node_raft_state_exists(const char *dir)
{
	char p[PATH_MAX + 16];
	struct stat st;
	snprintf(p, sizeof p, "%s/metadata1", dir);
	if (stat(p, &st) == 0)
		return true;
	snprintf(p, sizeof p, "%s/metadata2", dir);
	return stat(p, &st) == 0;
}

static bool node_same_cluster(const struct config_peer *a, unsigned na,
			      const struct config_peer *b, unsigned nb)
{
	if (na != nb)
		return false;
	for (unsigned i = 0; i < na; i++) {
		bool found = false;
		for (unsigned j = 0; j < nb; j++)
			if (a[i].id == b[j].id &&
			    strcmp(a[i].raft_addr, b[j].raft_addr) == 0 &&
			    strcmp(a[i].client_addr, b[j].client_addr) == 0)
				found = true;
		if (!found)
			return false;
	}
	return true;
}

/* Members: from storage if recorded there, checked against the flags. */
static int node_members(struct node *n, char *errmsg)
{
	const uint8_t *val;
	uint32_t len;
	char list[2048];
	struct config_peer stored[CONFIG_PEERS_MAX];
	unsigned n_stored = 0;
	int rv = store_get(n->store, NODE_KEY_COORDINATORS,
			   strlen(NODE_KEY_COORDINATORS),
			   store_applied_version(n->store), &val, &len, NULL);

	if (rv != RS_OK) {
		memcpy(n->peers, n->cfg.peers, sizeof n->peers);
		n->n_peers = n->cfg.n_peers;
		return RS_OK;
	}
	snprintf(list, sizeof list, "%.*s", (int)len, (const char *)val);
	if (config_parse_cluster(list, stored, &n_stored, errmsg) != RS_OK) {
		rs_errmsg_wrapf(errmsg, "stored key \\xff/system/coordinators "
					"does not decode");
		return NODE_EXIT_MISMATCH;
	}
	if (n->cfg.n_peers > 0 &&
	    !node_same_cluster(stored, n_stored, n->cfg.peers, n->cfg.n_peers)) {
		rs_errmsg_printf(errmsg,
				 "--initial-cluster differs from the members stored in "
				 "%s (\\xff/system/coordinators = %s); drop the flag or "
				 "use the stored members",
				 n->store_dir, list);
		return NODE_EXIT_MISMATCH;
	}
	memcpy(n->peers, stored, sizeof n->peers);
	n->n_peers = n_stored;
	return RS_OK;
}

/* Check that this node is one of the members, with these addresses. */
static int node_check_self(struct node *n, char *errmsg)
{
	const struct config_peer *me = node_peer(n, n->cfg.id);

	if (me == NULL) {
		rs_errmsg_printf(errmsg, "node id %llu is not a member of the cluster "
					 "recorded in %s",
				 (unsigned long long)n->cfg.id, n->cfg.data_dir);
		return NODE_EXIT_MISMATCH;
	}
	if ((n->cfg.raft_addr[0] && strcmp(n->cfg.raft_addr, me->raft_addr)) ||
	    (n->cfg.client_addr[0] && strcmp(n->cfg.client_addr, me->client_addr))) {
		rs_errmsg_printf(errmsg, "addresses %s/%s differ from the recorded "
					 "%s/%s for node %llu",
				 n->cfg.raft_addr, n->cfg.client_addr, me->raft_addr,
				 me->client_addr, (unsigned long long)n->cfg.id);
		return NODE_EXIT_MISMATCH;
	}
	snprintf(n->cfg.raft_addr, sizeof n->cfg.raft_addr, "%s", me->raft_addr);
	snprintf(n->cfg.client_addr, sizeof n->cfg.client_addr, "%s",
		 me->client_addr);
	return RS_OK;
}

static int node_open_store(struct node *n, char *errmsg)
{
	struct store_options so = {.dir = n->store_dir,
				   .sync = JOURNAL_SYNC_NONE,
				   .apply_on_accept = true};
	struct store_open_report rep;
	int rv;

	rv = store_open(&n->store, &n->loop, &so, &rep, errmsg);
	if (rv != RS_OK)
		return rv;
	if (rep.journal.torn)
		log_warn("store.torn_tail", "file=%s offset=%" PRIu64
			 " bytes_cut=%" PRIu64,
			 rep.journal.torn_file, rep.journal.torn_offset,
			 rep.journal.torn_bytes);
	if (rep.checkpoint.skipped > 0)
		log_warn("store.checkpoint_skipped", "count=%u reason=\"%s\"",
			 rep.checkpoint.skipped, rep.checkpoint.skipped_error);
	log_info("store.opened", "dir=%s applied_version=%" PRIu64
		 " checkpoint=%" PRIu64 " replayed=%" PRIu64,
		 n->store_dir, rep.applied_version, rep.checkpoint_version,
		 rep.replayed);
	return RS_OK;
}

static int node_bootstrap(struct node *n, char *errmsg)
{
	struct raft_configuration conf;
	int rv;

	raft_configuration_init(&conf);
	for (unsigned i = 0; i < n->n_peers; i++) {
		rv = raft_configuration_add(&conf, n->peers[i].id,
					    n->peers[i].raft_addr, RAFT_VOTER);
		if (rv != 0)
			break;
	}
	if (rv == 0)
		rv = raft_bootstrap(&n->raft, &conf);
	raft_configuration_close(&conf);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "bootstrap Raft in %s: %s", n->raft_dir,
				 raft_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	log_info("raft.bootstrapped", "members=%u", n->n_peers);
	return RS_OK;
}

/* Log what raftseg found wrong in one segment (and what it cut). */
static void node_log_raft_segment(const struct raftseg_info *s)
{
	char q[RAFTSEG_WHY_SIZE + 64];

	log_quote(q, sizeof q, s->why);
	if (s->repaired)
		log_warn("raft.torn_tail", "file=%s offset=%" PRIu64
			 " bytes_cut=%" PRIu64 " entries_kept=%" PRIu64
			 " first_lost_index=%" PRIu64 " reason=%s", s->name,
			 s->size_bytes, s->cut_bytes, s->entries, s->bad_index, q);
	else if (s->verdict == RAFTSEG_CORRUPT)
		log_error("raft.segment_corrupt", "file=%s offset=%" PRIu64
			  " index=%" PRIu64 " batch=%" PRIu32 " entries_valid=%"
			  PRIu64 " reason=%s", s->name, s->bad_offset,
			  s->bad_index, s->bad_batch, s->entries, q);
}

/* c-raft 0.15 aborts on a cut open segment and silently drops damaged
 * ones (docs/storage-format.md, "c-raft's segments, as raftstore checks
 * them"): check the segments before raft_start, cut a torn tail, refuse
 * anything else. */
static int node_check_raft_segments(struct node *n, char *errmsg)
{
	struct raftseg_report rep;
	int rv = raftseg_check_dir(n->raft_dir, &rep, errmsg);

	if (rv == RS_ETORN)
		rv = raftseg_repair(n->raft_dir, &rep, errmsg);
	if (rv == RS_OK || rv == RS_ECORRUPT)
		for (size_t i = 0; i < rep.n; i++)
			node_log_raft_segment(&rep.segs[i]);
	raftseg_report_free(&rep);
	return rv == RS_OK ? RS_OK : NODE_EXIT_FAILURE;
}

static int node_init_raft(struct node *n, bool cold, char *errmsg)
{
	const struct config *c = &n->cfg;
	int rv;

	rv = raft_uv_tcp_init(&n->transport, &n->loop);
	if (rv == 0)
		rv = raft_uv_init(&n->io, &n->loop, n->raft_dir, &n->transport);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "init Raft I/O in %s: %s", n->raft_dir,
				 raft_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	raft_uv_set_snapshot_compression(&n->io, true);
	/* never rename damaged segments away silently: raftseg refuses them */
	raft_uv_set_auto_recovery(&n->io, false);
	/* c-raft does not stop on a failed log write (#321): we do. */
	raftio_guard_install(&n->io, n->raft_dir, node_fatal, n);
	fsm_init(&n->fsm, n->store, node_applied, node_restored, node_fatal, n);
	n->fsm.on_fenced = node_fenced;
	rv = raft_init(&n->raft, &n->io, &n->fsm.raft, c->id, c->raft_addr);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "init Raft: %s", raft_errmsg(&n->raft));
		return NODE_EXIT_FAILURE;
	}
	n->raft.data = n;
	raft_set_election_timeout(&n->raft, c->election_timeout_ms);
	raft_set_heartbeat_timeout(&n->raft, c->heartbeat_timeout_ms);
	raft_set_snapshot_threshold(&n->raft, c->snapshot_threshold);
	raft_set_snapshot_trailing(&n->raft, c->snapshot_trailing);
	raft_set_pre_vote(&n->raft, true);
	/* c-raft 0.15 drops an InstallSnapshot that arrives while the follower
	 * takes its own snapshot (RAFT_BUSY) and the leader only resends after
	 * this timeout (30 s by default): keep it short. */
	raft_set_install_snapshot_timeout(&n->raft,
					  c->election_timeout_ms * 5 > 2000
						  ? c->election_timeout_ms * 5
						  : 2000);
	return cold ? node_bootstrap(n, errmsg) : RS_OK;
}

static int node_decide(struct node *n, bool *cold, char *errmsg)
{
	bool raft_state = node_raft_state_exists(n->raft_dir);
	uint64_t applied = store_applied_version(n->store);
	int rv;

	if (!raft_state && applied > 0) {
		rs_errmsg_printf(errmsg,
				 "%s holds data up to version %" PRIu64 " but %s has no "
				 "Raft state; refusing to start a new cluster over it",
				 n->store_dir, applied, n->raft_dir);
		return NODE_EXIT_MISMATCH;
	}
	*cold = !raft_state;
	rv = node_members(n, errmsg);
	if (rv != RS_OK)
		return rv;
	if (n->n_peers == 0) {
		rs_errmsg_printf(errmsg, *cold ? "--initial-cluster is required on a "
						 "cold start (empty data dir)"
					       : "the cluster members are not "
						 "recorded in %s yet; pass "
						 "--initial-cluster",
				 n->store_dir);
		return *cold ? NODE_EXIT_USAGE : NODE_EXIT_MISMATCH;
	}
	log_info("node.start_mode", "mode=%s applied_version=%" PRIu64,
		 *cold ? "cold" : "warm", applied);
	return node_check_self(n, errmsg);
}

/* After raft_start: the configuration c-raft loaded from disk must name the
 * same servers (ids and Raft addresses) as the members we were given. */
static int node_check_raft_config(struct node *n, char *errmsg)
{
	const struct raft_configuration *conf = &n->raft.configuration;
	bool same = conf->n == n->n_peers;

	for (unsigned i = 0; same && i < conf->n; i++) {
		const struct config_peer *p = node_peer(n, conf->servers[i].id);
		same = p != NULL && strcmp(p->raft_addr, conf->servers[i].address) == 0;
	}
	if (!same) {
		char mine[1024];
		config_format_cluster(n->peers, n->n_peers, mine, sizeof mine);
		rs_errmsg_printf(errmsg,
				 "the members %s differ from the Raft configuration "
				 "stored in %s (%u servers, first id %llu at %s)",
				 mine, n->raft_dir, conf->n,
				 conf->n ? (unsigned long long)conf->servers[0].id : 0,
				 conf->n ? conf->servers[0].address : "-");
		return NODE_EXIT_MISMATCH;
	}
	return RS_OK;
}

static void node_metrics_create(struct node *n)
{
	struct metrics *m;

	if (metrics_new(&n->metrics) != RS_OK)
		abort();
	m = n->metrics;
	n->m_has_leader = metrics_gauge(m, "raftstore_has_leader",
					"1 if this node knows a Raft leader");
	n->m_leader_changes = metrics_counter(m, "raftstore_leader_changes_total",
					      "Leader changes seen by this node");
	n->m_epoch = metrics_gauge(m, "raftstore_epoch",
				   "Highest epoch allocated (state machine)");
	n->m_recoveries = metrics_counter(m, "raftstore_recoveries_total",
					  "Recoveries completed by directors here");
	n->m_recovery_seconds = metrics_histogram(
		m, "raftstore_recovery_duration_seconds",
		"Director start to accepting commits", metrics_buckets_seconds,
		METRICS_BUCKETS_SECONDS_COUNT);
	n->m_commits = metrics_counter(m, "raftstore_commits_total",
				       "Transactions committed by this leader");
	n->m_conflicts = metrics_counter(m, "raftstore_conflicts_total",
					 "Transactions aborted by the resolver");
	n->m_batches = metrics_counter(m, "raftstore_batches_total",
				       "Batches proposed to Raft by this leader");
	n->m_batch_txns = metrics_gauge(m, "raftstore_last_batch_transactions",
					"Transactions in the last batch proposed");
	static const double txns_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
	n->m_batch_size = metrics_histogram(m, "raftstore_batch_transactions",
					    "Transactions per batch proposed",
					    txns_bounds, 10);
	n->m_batch_bytes = metrics_histogram(m, "raftstore_batch_bytes",
					     "Raft entry bytes per batch",
					     metrics_buckets_bytes,
					     METRICS_BUCKETS_BYTES_COUNT);
	static const char *const audit_label[] = {"file", "audit", NULL};
	n->m_fsync_audit = metrics_register(
		m, METRIC_HISTOGRAM, "raftstore_fsync_duration_seconds",
		"fsync durations of this node's own files (the Raft log's are "
		"c-raft's and not observable)",
		audit_label, metrics_buckets_seconds, METRICS_BUCKETS_SECONDS_COUNT);
	n->m_apply_lag = metrics_gauge(m, "raftstore_apply_lag_entries",
				       "Raft commit index minus applied index");
	n->m_storage_bytes = metrics_gauge(m, "raftstore_storage_bytes",
					   "Journal and checkpoint bytes on disk");
	n->m_fenced = metrics_counter(m, "raftstore_fenced_entries_total",
				      "Entries skipped for an older epoch");
}

/* Counters mirror totals kept elsewhere: add the difference. */
static void node_counter_set(struct metric *c, uint64_t total)
{
	uint64_t cur = metrics_counter_get(c);
	if (total > cur)
		metrics_add(c, total - cur);
}

static int node_metrics_body(void *ctx, struct rs_buf *body)
{
	struct node *n = ctx;
	struct proxy_stats ps;

	proxy_get_stats(n->proxy, &ps);
	metrics_gauge_set(n->m_has_leader, n->leader_id != 0);
	node_counter_set(n->m_leader_changes, n->leader_changes);
	metrics_gauge_set(n->m_epoch, (double)n->fsm.epoch);
	node_counter_set(n->m_commits, ps.commits);
	node_counter_set(n->m_conflicts, ps.conflicts);
	node_counter_set(n->m_batches, ps.batches);
	metrics_gauge_set(n->m_batch_txns, (double)ps.last_batch_txns);
	metrics_gauge_set(n->m_apply_lag,
			  (double)(n->raft.commit_index - n->raft.last_applied));
	metrics_gauge_set(n->m_storage_bytes, (double)store_disk_bytes(n->store));
	node_counter_set(n->m_fenced, n->fsm.fenced_entries);
	return metrics_render_prometheus(n->metrics, body);
}

static char *node_status_json(void *ctx);

static int node_status_body(void *ctx, struct rs_buf *body)
{
	char *json = node_status_json(ctx);
	int rv = rs_buf_append(body, json, strlen(json));
	free(json);
	return rv;
}

static int node_start_http(struct node *n, char *errmsg)
{
	static const struct http_route routes[] = {
		{"/metrics", HTTP_CONTENT_TYPE_PROMETHEUS, node_metrics_body},
		{"/status", HTTP_CONTENT_TYPE_JSON, node_status_body},
	};
	struct http_config hc = {.routes = routes, .n_routes = 2, .ctx = n};

	if (n->cfg.metrics_addr[0] == '\0')
		return RS_OK;
	return http_start(&n->http, &n->loop, n->cfg.metrics_addr, &hc, errmsg);
}

/* Warm start: the stored layout (the next director's input) must decode.
 * A layout that does not is never silently replaced, unless the operator
 * says so with --ignore-bad-layout. */
static int node_check_layout(struct node *n, char *errmsg)
{
	const uint8_t *val;
	uint32_t len;
	uint64_t written = 0;
	struct tsl t;
	char inner[RS_ERRMSG_SIZE];
	int rv = store_get(n->store, DIRECTOR_KEY_LAYOUT,
			   strlen(DIRECTOR_KEY_LAYOUT),
			   store_applied_version(n->store), &val, &len, &written);

	if (rv != RS_OK)
		return RS_OK; /* none yet */
	rv = tsl_decode(val, len, &t, inner);
	if (rv == RS_OK)
		return RS_OK;
	if (n->cfg.ignore_bad_layout) {
		log_warn("node.bad_layout_ignored", "key=\"\\xff/system/layout\" "
			 "version=%" PRIu64 " error=\"%s\"", written, inner);
		return RS_OK;
	}
	rs_errmsg_printf(errmsg,
			 "stored key \\xff/system/layout (written at version %" PRIu64
			 ") does not decode: %s; refusing to start (pass "
			 "--ignore-bad-layout to let the next recovery replace it)",
			 written, inner);
	return NODE_EXIT_MISMATCH;
}

static void node_audit_fsync(void *arg, double seconds)
{
	struct node *n = arg;
	metrics_observe(n->m_fsync_audit, seconds);
}

static int node_setup(struct node *n, char *errmsg)
{
	struct audit_options ao;
	struct proxy_options po = {.batch_count_max = n->cfg.batch_count_max,
				   .batch_delay_us = n->cfg.batch_delay_us,
				   .on_ready = node_leader_ready,
				   .leader_addr = node_leader_addr,
				   .on_batch = node_batch,
				   .ctx = n};
	struct service_options so = {.status_json = node_status_json,
				     .members_json = node_members_json,
				     .registration = node_registration,
				     .ctx = n};
	bool cold = false;
	int rv;

	snprintf(n->store_dir, sizeof n->store_dir, "%s/store", n->cfg.data_dir);
	snprintf(n->raft_dir, sizeof n->raft_dir, "%s/raft", n->cfg.data_dir);
	if (fileio_mkdir(n->cfg.data_dir, errmsg) != RS_OK ||
	    fileio_mkdir(n->raft_dir, errmsg) != RS_OK)
		return NODE_EXIT_FAILURE;
	node_metrics_create(n);
	audit_options_init(&ao);
	ao.on_fsync = node_audit_fsync;
	ao.fsync_arg = n;
	if (audit_open(&n->audit, &n->loop, n->cfg.data_dir, n->cfg.id, &ao,
		       errmsg) != RS_OK)
		return NODE_EXIT_FAILURE;
	node_audit_int(n, AUDIT_EV_NODE_START, "pid", (int64_t)getpid());
	if (node_open_store(n, errmsg) != RS_OK)
		return NODE_EXIT_FAILURE;
	rv = node_decide(n, &cold, errmsg);
	if (rv == RS_OK)
		rv = node_check_layout(n, errmsg);
	config_format_cluster(n->peers, n->n_peers, n->coordinators,
			      sizeof n->coordinators);
	if (rv == RS_OK && !cold)
		rv = node_check_raft_segments(n, errmsg);
	if (rv == RS_OK)
		rv = node_init_raft(n, cold, errmsg);
	if (rv != RS_OK)
		return rv;
	proxy_create(&n->proxy, &n->loop, &n->raft, n->store, &po);
	n->hub = watch_hub_create(store_applied_version(n->store), 0);
	n->service = service_create(&n->loop, n->store, n->proxy, n->hub, &so);
	rv = raft_start(&n->raft);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "start Raft from %s: %s", n->raft_dir,
				 raft_errmsg(&n->raft));
		return NODE_EXIT_FAILURE;
	}
	n->raft_started = true;
	rv = node_check_raft_config(n, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = server_start(&n->server, &n->loop, n->cfg.client_addr,
			  service_handle, service_conn_closed, n->service, errmsg);
	if (rv == RS_OK)
		rv = node_start_http(n, errmsg);
	return rv == RS_OK ? RS_OK : NODE_EXIT_FAILURE;
}

/* RS_FAULT_HOLD_PHASE=<phase>:<ms> (tests): every director pauses at the
 * start of that phase, so a test can kill the leader inside it. */
static void node_parse_hold(struct node *n, const char *v)
{
	char name[32];
	unsigned ms;

	if (v == NULL || sscanf(v, "%31[a-z]:%u", name, &ms) != 2)
		return;
	for (int p = DIRECTOR_EPOCH; p < DIRECTOR_EXITED; p++)
		if (strcmp(name, director_phase_name((enum director_phase)p)) == 0) {
			n->hold_phase = (enum director_phase)p;
			n->hold_ms = ms;
			log_warn("node.fault_hold_phase", "phase=%s ms=%u", name, ms);
		}
}

int node_run(const struct config *cfg)
{
	static struct node node; /* one per process; big (struct raft) */
	struct node *n = &node;
	char errmsg[RS_ERRMSG_SIZE] = "";
	int rv;

	n->cfg = *cfg;
	n->role = RAFT_UNAVAILABLE;
	log_set_node(cfg->id);
	log_set_level((enum log_level)log_level_parse(cfg->log_level));
	uv_loop_init(&n->loop);
	n->start_ms = uv_now(&n->loop);
	uv_timer_init(&n->loop, &n->director_timer);
	n->director_timer.data = n;
	uv_timer_init(&n->loop, &n->quiesce_timer);
	n->quiesce_timer.data = n;
	node_parse_hold(n, getenv("RS_FAULT_HOLD_PHASE"));
	if (getenv("RS_FAULT_PERSIST_FAILURES") != NULL)
		n->persist_faults =
			(unsigned)strtoul(getenv("RS_FAULT_PERSIST_FAILURES"), NULL, 10);
	rv = node_setup(n, errmsg);
	if (rv != RS_OK) {
		char q[RS_ERRMSG_SIZE + 64];
		log_error("node.start_failed", "error=%s",
			  log_quote(q, sizeof q, errmsg));
		fprintf(stderr, "raftstored: %s\n", errmsg);
		return rv; /* the process exits: no orderly teardown needed */
	}
	log_info("node.started", "raft_addr=%s client_addr=%s data_dir=%s",
		 n->cfg.raft_addr, n->cfg.client_addr, n->cfg.data_dir);
	uv_signal_init(&n->loop, &n->sigterm);
	uv_signal_init(&n->loop, &n->sigint);
	n->sigterm.data = n->sigint.data = n;
	uv_signal_start(&n->sigterm, node_signal, SIGTERM);
	uv_signal_start(&n->sigint, node_signal, SIGINT);
	uv_timer_init(&n->loop, &n->role_timer);
	n->role_timer.data = n;
	uv_timer_start(&n->role_timer, node_role_tick, NODE_ROLE_POLL_MS,
		       NODE_ROLE_POLL_MS);
	uv_run(&n->loop, UV_RUN_DEFAULT);
	rv = uv_loop_close(&n->loop);
	if (rv != 0)
		log_warn("node.loop_not_closed", "error=%s", uv_strerror(rv));
	return n->exit_code;
}
