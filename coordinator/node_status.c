/*
 * node_status: the node's STATUS and MEMBERS documents (node_internal.h),
 * built with the JSON layer (raftstore/lib/json.h).
 *
 * STATUS is one object whose members, order and types docs/protocol.md §9
 * describes; MEMBERS is its "members" array alone.  Both are read from the
 * modules' own accessors at the moment of the request; c-raft's state comes
 * through raftinfo.  Nothing is cached, nothing is changed.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/json.h"
#include "coordinator/node_internal.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/proxy.h"
#include "raftstore/raftinfo.h"
#include "raftstore/server.h"
#include "storage/store.h"

/* One member's object; NULL when out of memory. */
static json_t *node_member_object(uint64_t id, const char *raft_addr,
				  const char *client_addr, const char *role,
				  bool leader)
{
	json_t *m = json_object();
	int bad = m == NULL;

	bad = bad || rs_json_set_u64(m, "id", id) != RS_OK;
	bad = bad || rs_json_set_str(m, "raft_addr", raft_addr) != RS_OK;
	bad = bad || rs_json_set_str(m, "client_addr", client_addr) != RS_OK;
	bad = bad || rs_json_set_str(m, "role", role) != RS_OK;
	bad = bad || rs_json_set_bool(m, "leader", leader) != RS_OK;
	if (bad) {
		json_decref(m);
		return NULL;
	}
	return m;
}

json_t *node_members_array(struct node *n)
{
	const struct raft_configuration *conf = raftinfo_configuration(&n->raft);
	json_t *a = json_array();
	bool bad = a == NULL;

	for (unsigned i = 0; !bad && i < conf->n; i++) {
		const struct raft_server *sv = &conf->servers[i];
		const struct config_peer *p = node_peer(n, sv->id);

		bad = rs_json_push(a, node_member_object(
					      sv->id, sv->address,
					      p ? p->client_addr : "",
					      raftinfo_server_role_name(sv->role),
					      sv->id == n->leader_id)) != RS_OK;
	}
	/* Recorded, not (or no longer) in Raft: a change cut short. */
	for (unsigned i = 0; !bad && i < n->n_peers; i++) {
		const struct config_peer *p = &n->peers[i];
		bool in_raft = false;

		for (unsigned j = 0; j < conf->n; j++)
			in_raft = in_raft || conf->servers[j].id == p->id;
		if (!in_raft)
			bad = rs_json_push(a, node_member_object(
						      p->id, p->raft_addr,
						      p->client_addr, "pending",
						      false)) != RS_OK;
	}
	if (bad) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* No director here: the state machine's epoch, and "restarting" (leader,
 * between directors) or "none". */
static int node_status_no_director(struct node *n, json_t *doc)
{
	int rv = rs_json_set_u64(doc, "epoch", n->fsm.epoch);

	if (rv == RS_OK)
		rv = rs_json_set_str(doc, "director_phase",
				     n->role == RAFT_LEADER ? "restarting" : "none");
	return rv;
}

/* The director's members ("epoch", "director_phase", "phase_ms", ...), or
 * those of "no director". */
static int node_status_director(struct node *n, json_t *doc)
{
	if (n->director == NULL)
		return node_status_no_director(n, doc);
	return director_status_fields(n->director, doc);
}

/* Members id, cluster_id .. connections, in the order of docs/protocol.md
 * §9. */
static int node_status_head(struct node *n, json_t *doc)
{
	struct proxy_stats ps;
	const char *leader_client = n->leader_id == n->cfg.id
					    ? n->cfg.client_addr
					    : node_leader_addr(n);
	char cluster[IDENTITY_CLUSTER_HEX_SIZE];
	int bad = 0;

	proxy_get_stats(n->proxy, &ps);
	identity_cluster_hex(&n->identity, cluster);
	bad |= rs_json_set_u64(doc, "id", n->cfg.id) != RS_OK;
	bad |= rs_json_set_str(doc, "cluster_id", cluster) != RS_OK;
	bad |= rs_json_set_str(doc, "raft_addr", n->cfg.raft_addr) != RS_OK;
	bad |= rs_json_set_str(doc, "client_addr", n->cfg.client_addr) != RS_OK;
	bad |= rs_json_set_str(doc, "role", raftinfo_state_name(raftinfo_state(
						    &n->raft))) != RS_OK;
	bad |= rs_json_set_u64(doc, "term", raftinfo_term(&n->raft)) != RS_OK;
	bad |= rs_json_set_u64(doc, "leader_id", n->leader_id) != RS_OK;
	bad |= rs_json_set_str(doc, "leader_client_addr",
			       leader_client ? leader_client : "") != RS_OK;
	bad |= rs_json_set_u64(doc, "commit_index",
			       raftinfo_commit_index(&n->raft)) != RS_OK;
	bad |= rs_json_set_u64(doc, "applied_index",
			       raftinfo_applied_index(&n->raft)) != RS_OK;
	bad |= rs_json_set_u64(doc, "applied_version",
			       store_applied_version(n->store)) != RS_OK;
	bad |= rs_json_set_u64(doc, "storage_bytes",
			       store_disk_bytes(n->store)) != RS_OK;
	bad |= rs_json_set_u64(doc, "keys",
			       mvcc_key_count(store_index(n->store))) != RS_OK;
	bad |= rs_json_set_str(doc, "health", store_errmsg(n->store)[0]
						      ? "failed" : "ok") != RS_OK;
	bad |= rs_json_set_str(doc, "proxy", ps.state) != RS_OK;
	bad |= rs_json_set_u64(doc, "leader_changes", n->leader_changes) != RS_OK;
	bad |= rs_json_set_u64(doc, "uptime_s",
			       (uv_now(&n->loop) - n->start_ms) / 1000) != RS_OK;
	bad |= rs_json_set_u64(doc, "commits", ps.commits) != RS_OK;
	bad |= rs_json_set_u64(doc, "conflicts", ps.conflicts) != RS_OK;
	bad |= rs_json_set_u64(doc, "batches", ps.batches) != RS_OK;
	bad |= rs_json_set_u64(doc, "reads_quorum", ps.grv_quorum) != RS_OK;
	bad |= rs_json_set_u64(doc, "reads_barrier", ps.grv_barrier) != RS_OK;
	bad |= rs_json_set_u64(doc, "connections",
			       server_connection_count(n->server)) != RS_OK;
	return bad ? RS_ENOMEM : RS_OK;
}

/* The whole STATUS object; NULL when out of memory. */
static json_t *node_status_doc(struct node *n)
{
	json_t *doc = json_object();
	struct proxy_stats ps;
	int rv;

	if (doc == NULL)
		return NULL;
	proxy_get_stats(n->proxy, &ps);
	rv = node_status_head(n, doc);
	if (rv == RS_OK)
		rv = rs_json_set(doc, "members", node_members_array(n));
	if (rv == RS_OK)
		rv = rs_json_set_u64(doc, "fenced", n->fsm.fenced_entries);
	if (rv == RS_OK)
		rv = rs_json_set_bool(doc, "accepting", ps.accepting);
	if (rv == RS_OK)
		rv = node_status_director(n, doc);
	if (rv != RS_OK) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* A built document as malloc'ed compact text, releasing it; NULL in, or
 * out of memory, gives NULL. */
static char *node_json_text(json_t *doc)
{
	char *json = doc ? rs_json_dump(doc, RS_JSON_COMPACT) : NULL;

	json_decref(doc);
	return json;
}

char *node_status_json(void *ctx)
{
	return node_json_text(node_status_doc(ctx));
}

char *node_members_json(void *ctx)
{
	return node_json_text(node_members_array(ctx));
}

unsigned node_gate_members(void *ctx, struct service_member *out,
			   unsigned max)
{
	struct node *n = ctx;
	const struct raft_configuration *conf = raftinfo_configuration(&n->raft);

	for (unsigned i = 0; i < conf->n && i < max; i++) {
		const struct config_peer *p = node_peer(n, conf->servers[i].id);

		out[i].id = conf->servers[i].id;
		out[i].raft_addr = conf->servers[i].address;
		out[i].client_addr = p ? p->client_addr : "";
	}
	return conf->n;
}

int node_status_body(void *ctx, struct rs_buf *body)
{
	json_t *doc = node_status_doc(ctx);
	int rv = doc ? rs_json_dump_buf(doc, RS_JSON_COMPACT, body) : RS_ENOMEM;

	json_decref(doc);
	return rv;
}

/* ---- GET /health ---- */

/* Apply lag (Raft entries committed, not yet applied here) above which a
 * node is not healthy: it serves reads from an old state. */
#define NODE_HEALTH_LAG_MAX 1000u

/* Why this node is not healthy, or "" (reason: RS_ERRMSG_SIZE bytes). */
static void node_health_reason(struct node *n, char *reason)
{
	raft_index commit = raftinfo_commit_index(&n->raft);
	raft_index applied = raftinfo_applied_index(&n->raft);

	reason[0] = '\0';
	if (store_errmsg(n->store)[0] != '\0')
		rs_errmsg_printf(reason, "storage failed: %s",
				 store_errmsg(n->store));
	else if (n->leader_id == 0)
		rs_errmsg_printf(reason, "no Raft leader known");
	else if (commit > applied && commit - applied > NODE_HEALTH_LAG_MAX)
		rs_errmsg_printf(reason, "applying: %llu entries behind the "
					 "commit index",
				 (unsigned long long)(commit - applied));
	else if (n->role == RAFT_LEADER &&
		 (n->director == NULL || !director_accepting(n->director)))
		rs_errmsg_printf(reason, "leader: the director is recovering "
					 "(phase %s)",
				 n->director != NULL
					 ? director_phase_name(
						   director_phase(n->director))
					 : "restarting");
}

int node_health_body(void *ctx, struct rs_buf *body)
{
	struct node *n = ctx;
	char reason[RS_ERRMSG_SIZE];
	json_t *doc = json_object();
	int rv = doc != NULL ? RS_OK : RS_ENOMEM;

	node_health_reason(n, reason);
	if (rv == RS_OK)
		rv = rs_json_set_bool(doc, "health", reason[0] == '\0');
	if (rv == RS_OK)
		rv = rs_json_set_str(doc, "reason", reason);
	if (rv == RS_OK)
		rv = rs_json_dump_buf(doc, RS_JSON_COMPACT, body);
	json_decref(doc);
	if (rv != RS_OK)
		return rv;
	return reason[0] == '\0' ? RS_OK : RS_EUNAVAILABLE;
}
