/*
 * node: see node.h.  This file wires the modules together: it creates them
 * in order (node_setup), connects their callbacks, tells them what c-raft's
 * role and leader are (node_role_tick), and stops them in reverse order
 * (node_stop).  The concerns it wires are in node_start.c, node_director.c
 * and node_status.c, around node_internal.h.  Each module registers and
 * updates its own metrics; the node registers its own (leader, audit
 * fsyncs, storage bytes) and only orders the registrations, which is the
 * order /metrics lists them in.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/audit.h"
#include "coordinator/http.h"
#include "coordinator/node_internal.h"
#include "coordinator/sdnotify.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/procmetrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/proxy.h"
#include "raftstore/raftcall.h"
#include "raftstore/raftinfo.h"
#include "raftstore/raftio.h"
#include "raftstore/raftheap.h"
#include "raftstore/raftmend.h"
#include "raftstore/raftresend.h"
#include "raftstore/raftcommit.h"
#include "raftstore/rafttick.h"
#include "raftstore/raftvote.h"
#include "raftstore/segfill.h"
#include "raftstore/snapsync.h"
#include "raftstore/server.h"
#include "raftstore/watch.h"
#include "storage/fileio.h"
#include "storage/store.h"

#define NODE_ROLE_POLL_MS 20u

void node_fatal(void *ctx, const char *msg)
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

const struct config_peer *node_peer(const struct node *n, raft_id id)
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
	node_members_applied(n, b);
	service_applied(n->service, b);
}

static void node_restored(void *ctx, uint64_t version)
{
	struct node *n = ctx;
	log_info("fsm.restored", "version=%" PRIu64, version);
	node_members_reload(n);
	service_restored(n->service, version);
}

static void node_fenced(void *ctx, const struct batch *b, uint64_t epoch)
{
	(void)ctx;
	log_warn("fsm.fenced", "version=%" PRIu64 " batch_epoch=%" PRIu64
		 " current_epoch=%" PRIu64, b->version, b->epoch, epoch);
}

const char *node_peer_client_addr(void *ctx, uint64_t id)
{
	const struct config_peer *p = node_peer(ctx, (raft_id)id);

	return p != NULL ? p->client_addr : NULL;
}

const char *node_leader_addr(void *ctx)
{
	struct node *n = ctx;

	if (n->leader_id == 0 || n->leader_id == n->cfg.id)
		return NULL;
	return node_peer_client_addr(n, n->leader_id);
}

void node_cluster_id(void *ctx, uint8_t out[16])
{
	const struct node *n = ctx;

	memcpy(out, n->identity.cluster_id, IDENTITY_CLUSTER_ID_SIZE);
}

/* service_options.term: a leader's TERM question (readquorum.h).  The
 * term is c-raft's now, after the frame arrived.  A question from another
 * cluster is refused when both IDs are known. */
static int node_term_answer(void *ctx, const struct wire_term_req *m,
			    uint64_t *node_id, uint64_t *term, char *errmsg)
{
	struct node *n = ctx;
	static const uint8_t unknown[IDENTITY_CLUSTER_ID_SIZE];

	if (!n->raft_started) {
		rs_errmsg_printf(errmsg, "node %llu: Raft is not running",
				 (unsigned long long)n->cfg.id);
		return RS_EUNAVAILABLE;
	}
	if (identity_cluster_known(&n->identity) &&
	    memcmp(m->cluster_id.p, unknown, sizeof unknown) != 0 &&
	    memcmp(m->cluster_id.p, n->identity.cluster_id,
		   IDENTITY_CLUSTER_ID_SIZE) != 0) {
		rs_errmsg_printf(errmsg, "node %llu: TERM from node %llu of "
				 "another cluster (cluster ID differs)",
				 (unsigned long long)n->cfg.id,
				 (unsigned long long)m->leader_id);
		return RS_EINVAL;
	}
	*node_id = n->cfg.id;
	*term = raftinfo_term(&n->raft);
	return RS_OK;
}

/* One event with one integer member (out of memory leaves it out). */
static void node_audit_int(struct node *n, const char *name, const char *key,
			   int64_t v)
{
	json_t *extra = json_object();

	rs_json_set_i64(extra, key, v);
	audit_event(n->audit, name, extra);
}

void node_event(void *ctx, const char *name, json_t *members)
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
	node_director_event(n, name);
}

/* ---- leader failover: a fast election when the leader's process dies ----
 *
 * c-raft 0.15 elects a new leader only once a majority has timed out on its
 * own: a follower that still knows a leader refuses every (pre-)vote, so a
 * crash costs the later of two draws in [T, 2T] (docs/architecture.md,
 * c-raft guard 8).  A dead process's kernel closes its connections at
 * once: when its leader's connection to it ends (raftguard), a follower
 * sets a short election timeout and draws its running timer again from it,
 * so both followers campaign within a few heartbeats.  A silent leader
 * (stopped, partitioned) closes nothing and still costs the full timeout.
 * Pre-vote keeps a wrong guess harmless: a live leader's other followers
 * refuse, and its heartbeats keep this one a follower.  The configured
 * timeout comes back once this node leads or hears from a leader. */

/* The short timeout, in heartbeats. */
#define NODE_FAST_ELECTION_HEARTBEATS 2u

/* The election timeout for a fast election: a few heartbeats, at most half
 * the configured one (so that no draw from it is later than one from the
 * configured), and more than one heartbeat (so that a live leader's
 * heartbeats still arrive in time); 0 if no such value exists. */
static unsigned node_fast_election_timeout(const struct node *n)
{
	unsigned hb = n->cfg.heartbeat_timeout_ms;
	unsigned fast = NODE_FAST_ELECTION_HEARTBEATS * hb;

	if (fast > n->cfg.election_timeout_ms / 2)
		fast = n->cfg.election_timeout_ms / 2;
	return fast > hb ? fast : 0;
}

void node_peer_closed(struct node *n, raft_id peer)
{
	unsigned fast = node_fast_election_timeout(n);

	if (!n->raft_started || n->stopping || fast == 0 ||
	    raftinfo_state(&n->raft) != RAFT_FOLLOWER ||
	    raftinfo_leader(&n->raft) != peer)
		return;
	n->fast_election = true;
	n->fast_election_leader = peer;
	n->fast_election_ms = uv_now(&n->loop);
	raft_set_election_timeout(&n->raft, fast);
	raftinfo_redraw_election_timer(&n->raft);
	log_info("raft.fast_election", "leader=%llu term=%llu "
		 "election_timeout_ms=%u reason=\"the leader's connection "
		 "closed\"", (unsigned long long)peer,
		 (unsigned long long)raftinfo_term(&n->raft), fast);
}

bool node_leader_gone(void *ctx, raft_id leader)
{
	struct node *n = ctx;

	return n->fast_election && n->fast_election_leader == leader &&
	       raftinfo_election_timer_start(&n->raft) <= n->fast_election_ms;
}

/* Back to the configured election timeout once a leader is known again:
 * this node leads, or follows one it heard from since the close. */
static void node_fast_election_end(struct node *n, int state, raft_id leader)
{
	if (!n->fast_election || state == RAFT_CANDIDATE)
		return;
	if (state == RAFT_FOLLOWER &&
	    (leader == 0 || raftinfo_election_timer_start(&n->raft) <=
				    n->fast_election_ms))
		return;
	n->fast_election = false;
	raft_set_election_timeout(&n->raft, n->cfg.election_timeout_ms);
	raftinfo_redraw_election_timer(&n->raft);
	log_info("raft.fast_election_done", "leader=%llu previous=%llu "
		 "after_ms=%llu election_timeout_ms=%u",
		 (unsigned long long)leader,
		 (unsigned long long)n->fast_election_leader,
		 (unsigned long long)(uv_now(&n->loop) - n->fast_election_ms),
		 n->cfg.election_timeout_ms);
}

/* ---- Raft role ---- */

/* c-raft's role and leader, polled: tell the proxy and the control plane
 * what changed. */
static void node_role_tick(uv_timer_t *t)
{
	struct node *n = t->data;
	int state = raftinfo_state(&n->raft);
	raft_id leader = raftinfo_leader(&n->raft);
	unsigned long long term = raftinfo_term(&n->raft);

	if (leader != n->leader_id) {
		log_info("raft.leader_changed", "leader=%llu previous=%llu term=%llu",
			 (unsigned long long)leader,
			 (unsigned long long)n->leader_id, term);
		n->leader_id = leader;
		n->leader_changes++;
		metrics_gauge_set(n->m_has_leader, leader != 0);
		metrics_inc(n->m_leader_changes);
		proxy_leader_moved(n->proxy);
	}
	if (state != n->role) {
		log_info("raft.role", "role=%s previous=%s term=%llu",
			 raftinfo_state_name(state), raftinfo_state_name(n->role),
			 term);
		/* c-raft 0.15 turns unavailable for good when a message or a
		 * tick fails inside it (an allocation, a metadata write): it
		 * then neither votes nor replicates, and the node would linger
		 * holding its data dir.  Fail stop, so that it is restarted. */
		if (state == RAFT_UNAVAILABLE && !n->stopping) {
			char why[RS_ERRMSG_SIZE];
			const char *m = raft_errmsg(&n->raft);

			/* c-raft often leaves its own message empty; the last
			 * I/O error raft_uv recorded is then the likely cause */
			if (m[0] == '\0')
				m = n->io.errmsg[0] ? n->io.errmsg : "no message";
			snprintf(why, sizeof why, "Raft stopped (c-raft became "
				 "unavailable as %s in term %llu): %s",
				 raftinfo_state_name(n->role), term, m);
			node_fatal(n, why);
		}
		if (state == RAFT_LEADER) {
			log_info("raft.election_won", "term=%llu", term);
			node_audit_int(n, AUDIT_EV_ELECTION_WON, "term",
				       (int64_t)term);
		} else if (n->role == RAFT_LEADER) {
			log_info("raft.leadership_lost", "term=%llu", term);
			node_audit_int(n, AUDIT_EV_LEADER_LOST, "term",
				       (int64_t)term);
		}
		n->role = state;
		proxy_set_leader(n->proxy, state == RAFT_LEADER);
		if (state != RAFT_LEADER)
			node_director_drop(n);
	}
	node_fast_election_end(n, state, leader);
	node_heartbeat(n);
	if (n->stopping) /* the heartbeat found this node removed */
		return;
	node_join_tick(n);
	node_probe_founder(n);
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
	node_members_close(n);
	watch_hub_destroy(n->hub);
	raft_uv_close(&n->io);
	fsm_close(&n->fsm);
	raftguard_close(&n->guard);
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

/* Tell systemd (a Type=notify unit) the node's state; a failure is only
 * logged. */
static void node_notify(const char *state)
{
	char errmsg[RS_ERRMSG_SIZE], q[RS_ERRMSG_SIZE + 64];

	if (sdnotify_send(state, errmsg) != RS_OK)
		log_warn("node.notify_failed", "state=%s error=%s", state,
			 log_quote(q, sizeof q, errmsg));
}

static void node_stop(struct node *n, const char *why)
{
	if (n->stopping)
		return;
	n->stopping = true;
	raftio_guard_quiet();
	log_info("node.stopping", "reason=%s", why);
	node_notify("STOPPING=1");
	uv_timer_stop(&n->role_timer);
	uv_close((uv_handle_t *)&n->role_timer, node_handle_closed);
	node_director_drop(n);
	uv_close((uv_handle_t *)&n->director_timer, node_handle_closed);
	node_members_stop(n);
	node_join_stop(n);
	if (n->reg_client != NULL)
		rs_client_close(n->reg_client, NULL, NULL);
	n->reg_client = NULL;
	if (n->http != NULL)
		http_stop(n->http, NULL, NULL);
	n->http = NULL;
	server_stop(n->server, node_server_stopped, n);
}

void node_shutdown(struct node *n, const char *why)
{
	node_stop(n, why);
}

static void node_signal(uv_signal_t *h, int signum)
{
	struct node *n = h->data;
	node_stop(n, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start-up ---- */

static int node_metrics_body(void *ctx, struct rs_buf *body)
{
	const struct node *n = ctx;
	return metrics_render_prometheus(n->metrics, body);
}

static int node_start_http(struct node *n, char *errmsg)
{
	static const struct http_route routes[] = {
		{"/metrics", HTTP_CONTENT_TYPE_PROMETHEUS, node_metrics_body},
		{"/status", HTTP_CONTENT_TYPE_JSON, node_status_body},
		{"/health", HTTP_CONTENT_TYPE_JSON, node_health_body},
	};
	struct http_config hc = {.routes = routes, .n_routes = 3, .ctx = n};

	if (n->cfg.metrics_addr[0] == '\0')
		return RS_OK;
	return http_start(&n->http, &n->loop, n->cfg.metrics_addr, &hc, errmsg);
}

static void node_audit_fsync(void *arg, double seconds)
{
	struct node *n = arg;
	/* registered once the modules exist; a fatal flush may come first */
	if (n->m_fsync_audit != NULL)
		metrics_observe(n->m_fsync_audit, seconds);
}

static double node_storage_bytes(void *ctx)
{
	const struct node *n = ctx;
	return (double)store_disk_bytes(n->store);
}

/* raftstore_build_info{version, fault_hooks} 1 */
static int node_build_info_register(struct metrics *m)
{
#ifdef RS_FAULT_HOOKS
	static const char *const labels[] = {"version", PACKAGE_VERSION,
					     "fault_hooks", "yes", NULL};
#else
	static const char *const labels[] = {"version", PACKAGE_VERSION,
					     "fault_hooks", "no", NULL};
#endif
	struct metric *info = metrics_register(
		m, METRIC_GAUGE, "raftstore_build_info",
		"Always 1; the labels say which build runs", labels, NULL, 0);

	if (info == NULL)
		return RS_EINVAL;
	metrics_gauge_set(info, 1);
	return RS_OK;
}

/* The node's own metrics and each module's, registered in the order
 * /metrics lists them. */
static int node_metrics_register(struct node *n, char *errmsg)
{
	static const char *const audit_label[] = {"file", "audit", NULL};
	struct metrics *m;
	int rv;

	assert(n->proxy != NULL && n->store != NULL);
	if (metrics_new(&n->metrics) != RS_OK) {
		rs_errmsg_printf(errmsg, "create the metrics registry: out of memory");
		return RS_ENOMEM;
	}
	m = n->metrics;
	n->m_has_leader = metrics_gauge(m, "raftstore_has_leader",
					"1 if this node knows a Raft leader");
	n->m_leader_changes = metrics_counter(m, "raftstore_leader_changes_total",
					      "Leader changes seen by this node");
	rv = n->m_has_leader && n->m_leader_changes ? RS_OK : RS_EINVAL;
	if (rv == RS_OK)
		rv = node_director_metrics_register(n);
	if (rv == RS_OK)
		rv = proxy_metrics_register(n->proxy, m);
	if (rv == RS_OK)
		rv = service_metrics_register(n->service, m);
	if (rv == RS_OK)
		n->m_fsync_audit = metrics_register(
			m, METRIC_HISTOGRAM, "raftstore_fsync_duration_seconds",
			"fsync durations of this node's own files (the Raft log's: "
			"raftstore_raft_append_duration_seconds)", audit_label,
			metrics_buckets_seconds, METRICS_BUCKETS_SECONDS_COUNT);
	if (rv == RS_OK && n->m_fsync_audit == NULL)
		rv = RS_EINVAL;
	if (rv == RS_OK)
		rv = raftinfo_metrics_register(&n->raft, m);
	if (rv == RS_OK &&
	    metrics_gauge_fn(m, "raftstore_storage_bytes",
			     "Journal and checkpoint bytes on disk",
			     node_storage_bytes, n) == NULL)
		rv = RS_EINVAL;
	if (rv == RS_OK)
		rv = fsm_metrics_register(&n->fsm, m);
	if (rv == RS_OK)
		rv = raftio_metrics_register(m);
	if (rv == RS_OK)
		rv = raftmend_metrics_register(&n->io, m);
	if (rv == RS_OK)
		rv = raftresend_metrics_register(&n->io, m);
	if (rv == RS_OK)
		rv = raftvote_metrics_register(&n->io, m);
	if (rv == RS_OK)
		rv = rafttick_metrics_register(&n->io, m);
	if (rv == RS_OK)
		rv = raftcommit_metrics_register(&n->io, m);
	if (rv == RS_OK)
		rv = segfill_metrics_register(m);
	if (rv == RS_OK)
		rv = snapsync_metrics_register(m);
	if (rv == RS_OK)
		rv = raftheap_metrics_register(m);
	if (rv == RS_OK)
		rv = node_build_info_register(m);
	if (rv == RS_OK)
		rv = procmetrics_register(m);
	if (rv != RS_OK)
		rs_errmsg_printf(errmsg, "register metrics: %s", metrics_errmsg(m));
	return rv;
}

/* Storage, Raft and the transaction system are open: create the client
 * side, start Raft, then listen. */
static int node_setup_modules(struct node *n, char *errmsg)
{
	struct proxy_options po = {.batch_count_max = n->cfg.batch_count_max,
				   .batch_delay_us = n->cfg.batch_delay_us,
				   .on_ready = node_director_leader_ready,
				   .leader_addr = node_leader_addr,
				   .self_id = n->cfg.id,
				   .peer_addr = node_peer_client_addr,
				   .cluster_id = node_cluster_id,
				   .read_barrier = n->cfg.read_barrier,
				   .ctx = n};
	struct service_options so = {.status_json = node_status_json,
				     .members_json = node_members_json,
				     .registration = node_registration,
				     .members = node_gate_members,
				     .member_change = node_member_change,
				     .term = node_term_answer,
				     .ctx = n};
	struct server_options sopt = {
		.frame_timeout_ms = n->cfg.client_frame_timeout_ms,
		.max_connections = n->cfg.max_client_connections};
	int rv;

	if (proxy_create(&n->proxy, &n->loop, &n->raft, n->store, &po) != RS_OK) {
		rs_errmsg_printf(errmsg, "create the commit proxy: out of memory");
		return NODE_EXIT_FAILURE;
	}
	n->hub = watch_hub_create(store_applied_version(n->store), 0);
	n->service = service_create(&n->loop, n->store, n->proxy, n->hub, &so);
	if (node_metrics_register(n, errmsg) != RS_OK)
		return NODE_EXIT_FAILURE;
	rv = raft_start(&n->raft);
	if (rv != 0)
		return node_raft_start_failed(n, rv, errmsg);
	n->raft_started = true;
	rv = node_check_raft_config(n, errmsg);
	if (rv != RS_OK)
		return rv;
	n->join.active = n->cfg.join[0] != '\0' && !node_is_voter(n, n->cfg.id);
	rv = server_start(&n->server, &n->loop, n->cfg.client_addr, &sopt,
			  service_handle, service_conn_closed, n->service, errmsg);
	if (rv == RS_OK &&
	    (rv = server_metrics_register(n->server, n->metrics)) != RS_OK)
		rs_errmsg_printf(errmsg, "register metrics: %s",
				 metrics_errmsg(n->metrics));
	if (rv == RS_OK)
		rv = node_start_http(n, errmsg);
	/* RS_EIO: an address that cannot be bound (in use, not ours): the
	 * flags' fault, refused as such */
	if (rv == RS_EIO)
		return NODE_EXIT_MISMATCH;
	return rv == RS_OK ? RS_OK : NODE_EXIT_FAILURE;
}

/* The data dir is ours (locked) and, if it says whose it is, this node's:
 * only then is anything in it created, read or changed. */
static int node_claim_data_dir(struct node *n, bool *have_identity,
			       char *errmsg)
{
	struct stat st;
	int rv;

	/* Neither Raft state nor a store: a cold start, which needs the
	 * members.  Say so before anything is created, so that the corrected
	 * command starts clean. */
	if (n->cfg.n_peers == 0 && !n->cfg.join[0] &&
	    stat(n->raft_dir, &st) != 0 &&
	    stat(n->store_dir, &st) != 0) {
		rs_errmsg_printf(errmsg, "--initial-cluster is required on a "
					 "cold start (%s has no Raft state)",
				 n->cfg.data_dir);
		return NODE_EXIT_USAGE;
	}
	/* Joining with a new data dir: learn the cluster first, so that a
	 * node that was not added leaves nothing behind. */
	if (n->cfg.join[0] && stat(n->raft_dir, &st) != 0 &&
	    stat(n->store_dir, &st) != 0) {
		rv = node_join_fetch(n, errmsg);
		if (rv != RS_OK)
			return rv;
	}
	rv = node_lock_data_dir(n, errmsg);

	if (rv == RS_OK)
		rv = node_load_identity(n, have_identity, errmsg);
	if (rv == RS_OK && fileio_mkdir(n->raft_dir, errmsg) != RS_OK)
		rv = NODE_EXIT_FAILURE;
	return rv;
}

static int node_setup(struct node *n, char *errmsg)
{
	struct audit_options ao;
	bool cold = false, have_identity = false;
	int rv;

	snprintf(n->store_dir, sizeof n->store_dir, "%s/store", n->cfg.data_dir);
	snprintf(n->raft_dir, sizeof n->raft_dir, "%s/raft", n->cfg.data_dir);
	rv = node_claim_data_dir(n, &have_identity, errmsg);
	if (rv != RS_OK)
		return rv;
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
	if (rv == RS_OK && !have_identity)
		rv = node_create_identity(n, cold, errmsg);
	if (rv == RS_OK && !cold)
		rv = node_check_raft_segments(n, errmsg);
	if (rv != RS_OK)
		return rv;
	fsm_init(&n->fsm, n->store, node_applied, node_restored, node_fatal, n);
	n->fsm.on_fenced = node_fenced;
	/* Snapshots must not stall the loop (fsm.h). */
	if (fsm_snapshots_in_steps(&n->fsm, &n->loop) != RS_OK) {
		rs_errmsg_printf(errmsg, "snapshots: out of memory");
		return RS_ENOMEM;
	}
	rv = node_init_raft(n, cold, errmsg);
	return rv == RS_OK ? node_setup_modules(n, errmsg) : rv;
}

#ifdef RS_FAULT_HOOKS
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

/* RS_FAULT_SYSTEM_TXN=refuse|conflict|leadership[:N] (tests): the system
 * transaction of this node's first N directors (default 1) fails as it is
 * submitted, before commit (director.h, enum director_txn_fault). */
static void node_parse_txn_fault(struct node *n, const char *v)
{
	char name[32];
	unsigned count = 1;
	int got;

	if (v == NULL)
		return;
	got = sscanf(v, "%31[a-z]:%u", name, &count);
	if (got < 1 || director_txn_fault_parse(name, &n->txn_fault) != RS_OK) {
		log_warn("node.fault_system_txn_ignored", "value=\"%s\"", v);
		return;
	}
	n->txn_faults = count;
	log_warn("node.fault_system_txn", "kind=%s count=%u", name, count);
}

/* The test-only fault hooks, from the environment (configure
 * --enable-fault-hooks compiles them in). */
static void node_read_fault_hooks(struct node *n)
{
	node_parse_hold(n, getenv("RS_FAULT_HOLD_PHASE"));
	node_parse_txn_fault(n, getenv("RS_FAULT_SYSTEM_TXN"));
	if (getenv("RS_FAULT_PERSIST_FAILURES") != NULL)
		n->persist_faults =
			(unsigned)strtoul(getenv("RS_FAULT_PERSIST_FAILURES"), NULL, 10);
}
#else
static void node_read_fault_hooks(struct node *n)
{
	(void)n;
}
#endif

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
	node_members_init(n);
	node_read_fault_hooks(n);
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
	node_notify("READY=1");
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
