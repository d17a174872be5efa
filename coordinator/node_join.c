/*
 * node_join: a new node joining a running cluster (node_internal.h).
 *
 * The operator first adds the member (`rsctl members add ID RAFT CLIENT`:
 * recorded, and a spare in c-raft's configuration), then starts it with
 * --join ENDPOINTS on an empty data dir.  Before anything is written, the
 * node asks the endpoints for STATUS: the cluster ID and the members, of
 * which it must be one with the same addresses (or it refuses to start,
 * saying what to run).  It stores the cluster ID in its identity file,
 * starts Raft with no configuration of its own (no bootstrap) and, until
 * its own configuration shows it a voter, asks the leader once a second to
 * promote it.  The leader's c-raft catches it up (snapshot, then log)
 * before it counts in any quorum, so a slow new node costs none.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/node_internal.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"

#define NODE_JOIN_RETRY_MS 1000u
/* A promotion waits for c-raft's catch-up rounds (a snapshot, then the
 * log): give it time before calling the answer lost. */
#define NODE_JOIN_OP_TIMEOUT_MS 60000u

/* 32 hex digits into 16 bytes; false if it is not that. */
static bool node_join_hex(const char *hex, uint8_t out[16])
{
	if (strlen(hex) != 32)
		return false;
	for (unsigned i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = (uint8_t)v;
	}
	return true;
}

/* The members of a STATUS document into n->peers; RS_EPROTO naming the
 * member that does not read. */
static int node_join_members(struct node *n, json_t *members, char *errmsg)
{
	size_t i;
	json_t *m;

	n->n_peers = 0;
	json_array_foreach (members, i, m) {
		struct config_peer *p = &n->peers[n->n_peers];
		const char *raft = NULL, *client = NULL;
		uint64_t id;

		if (n->n_peers == CONFIG_PEERS_MAX ||
		    rs_json_get_u64(m, "id", &id, errmsg) != RS_OK ||
		    rs_json_get_str(m, "raft_addr", &raft, NULL, errmsg) != RS_OK ||
		    rs_json_get_str(m, "client_addr", &client, NULL, errmsg) != RS_OK ||
		    strlen(raft) >= CONFIG_ADDR_MAX ||
		    strlen(client) >= CONFIG_ADDR_MAX) {
			rs_errmsg_wrapf(errmsg, "members[%zu]", i);
			return RS_EPROTO;
		}
		p->id = id;
		snprintf(p->raft_addr, sizeof p->raft_addr, "%s", raft);
		snprintf(p->client_addr, sizeof p->client_addr, "%s", client);
		n->n_peers++;
	}
	return RS_OK;
}

/* Read the cluster ID and the members out of one STATUS answer. */
static int node_join_read_status(struct node *n, const struct rs_result *res,
				 char *errmsg)
{
	json_t *doc = NULL, *members = NULL;
	const char *cluster = NULL;
	int rv = rs_json_parse_object(res->value.data, res->value.len, &doc, errmsg);

	if (rv == RS_OK)
		rv = rs_json_get_str(doc, "cluster_id", &cluster, NULL, errmsg);
	if (rv == RS_OK)
		rv = rs_json_get_array(doc, "members", &members, errmsg);
	if (rv == RS_OK && !node_join_hex(cluster, n->join.cluster_id)) {
		rs_errmsg_printf(errmsg, "the cluster ID is not known there yet "
					 "(\"%s\")", cluster);
		rv = RS_EINVAL;
	}
	if (rv == RS_OK)
		rv = node_join_members(n, members, errmsg);
	json_decref(doc);
	return rv;
}

int node_join_fetch(struct node *n, char *errmsg)
{
	struct rs_client_options co = {.endpoints = n->cfg.join,
				       .op_timeout_ms = 5000};
	struct rs_sync *s = NULL;
	struct rs_result res;
	const struct config_peer *me;
	char inner[RS_ERRMSG_SIZE] = "";
	int rv = rs_sync_open(&s, &co, inner);

	rs_result_init(&res);
	if (rv == RS_OK)
		rv = rs_sync_info(s, WIRE_STATUS, -1, &res);
	if (rv != RS_OK && inner[0] == '\0')
		snprintf(inner, sizeof inner, "%s", res.message);
	if (rv == RS_OK)
		rv = node_join_read_status(n, &res, inner);
	rs_result_free(&res);
	if (s != NULL)
		rs_sync_close(s);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "--join %s: %s", n->cfg.join, inner);
		return NODE_EXIT_FAILURE;
	}
	me = node_peer(n, n->cfg.id);
	if (me == NULL) {
		rs_errmsg_printf(errmsg, "--join %s: node %" PRIu64 " is not a member "
					 "of that cluster; add it first: rsctl "
					 "--endpoints %s members add %" PRIu64
					 " %s %s",
				 n->cfg.join, n->cfg.id, n->cfg.join, n->cfg.id,
				 n->cfg.raft_addr, n->cfg.client_addr);
		return NODE_EXIT_MISMATCH;
	}
	if (strcmp(me->raft_addr, n->cfg.raft_addr) ||
	    strcmp(me->client_addr, n->cfg.client_addr)) {
		rs_errmsg_printf(errmsg, "--join %s: node %" PRIu64 " was added with "
					 "the addresses %s/%s, not %s/%s",
				 n->cfg.join, n->cfg.id, me->raft_addr,
				 me->client_addr, n->cfg.raft_addr,
				 n->cfg.client_addr);
		return NODE_EXIT_MISMATCH;
	}
	n->join.cluster_known = true;
	config_format_cluster(n->peers, n->n_peers, n->coordinators,
			      sizeof n->coordinators);
	log_info("join.members", "endpoints=%s members=%s", n->cfg.join,
		 n->coordinators);
	return RS_OK;
}

/* ---- asking for the promotion ---- */

static void node_join_answered(struct rs_op *op)
{
	struct node *n = op->data;
	char q[sizeof op->result.message + 8];

	n->join.inflight = false;
	if (op->result.status == RS_OK)
		log_info("join.promoted", "node=%" PRIu64, n->cfg.id);
	else
		log_warn("join.promotion_refused", "node=%" PRIu64 " status=%s "
			 "reason=%s retry_ms=%u", n->cfg.id,
			 rs_strerror(op->result.status),
			 log_quote(q, sizeof q, op->result.message),
			 NODE_JOIN_RETRY_MS);
	rs_result_free(&op->result);
}

void node_join_tick(struct node *n)
{
	struct node_join *j = &n->join;
	struct rs_client_options co = {.endpoints = n->cfg.join,
				       .op_timeout_ms = NODE_JOIN_OP_TIMEOUT_MS};
	struct wire_member_change_req req = {.op = WIRE_MEMBER_PROMOTE,
					     .node_id = n->cfg.id};
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t now = uv_now(&n->loop);

	if (!j->active || j->inflight || n->stopping)
		return;
	if (node_is_voter(n, n->cfg.id)) {
		j->active = false;
		log_info("join.done", "node=%" PRIu64 " role=voter", n->cfg.id);
		return;
	}
	if (j->last_ms != 0 && now - j->last_ms < NODE_JOIN_RETRY_MS)
		return;
	if (j->client == NULL &&
	    rs_client_create(&j->client, &n->loop, &co, errmsg) != RS_OK) {
		log_warn("join.client_failed", "endpoints=%s error=\"%s\"",
			 n->cfg.join, errmsg);
		j->last_ms = now;
		return;
	}
	memset(&j->op, 0, sizeof j->op);
	j->op.data = n;
	j->last_ms = now;
	if (rs_client_member_change(j->client, &j->op, &req,
				    node_join_answered) == RS_OK) {
		j->inflight = true;
		log_info("join.promotion_asked", "node=%" PRIu64 " endpoints=%s",
			 n->cfg.id, n->cfg.join);
	}
}

void node_join_stop(struct node *n)
{
	if (n->join.client != NULL)
		rs_client_close(n->join.client, NULL, NULL);
	n->join.client = NULL;
	n->join.active = false;
}
