/*
 * node_members: membership changes, one at a time (node_internal.h).
 *
 * The members live in two places that must agree: the store's
 * \xff/system/coordinators (ids with both addresses; what a warm start
 * reads back) and c-raft's configuration (ids, Raft addresses and roles).
 * Every change keeps one invariant: the Raft configuration names no server
 * the stored members lack.  So a member is written to the key before
 * c-raft hears of it, and leaves the key only after it left the Raft
 * configuration:
 *
 *   add      key += member (system transaction), then raft_add: a spare,
 *            which votes for nothing and costs no quorum
 *   promote  raft_assign(voter): c-raft first catches the spare up
 *            (snapshot, then log) in rounds, then commits the new
 *            configuration; a spare that does not answer is given up with
 *            an error, and nothing else changed
 *   remove   raft_remove, then key -= member; removing the leader first
 *            transfers leadership and answers "not leader", so the
 *            client's retry reaches the new leader, which does it
 *
 * A change cut short (leadership lost, a crash between the two steps)
 * leaves a member in the key that the Raft configuration lacks: `rsctl
 * members list` shows it "pending", and running the same add again, or a
 * remove, finishes it.  Changes run on the leader only, while its director
 * accepts; a second change while one runs, or while a spare waits to be
 * promoted, is refused with the reason.
 *
 * Every node (not only the leader) reloads its members when it applies
 * the key or installs a snapshot, so the Raft handshake, the internal-frame
 * gate and the client addresses follow the change.
 *
 * c-raft's callbacks only record the outcome; the next step runs from the
 * loop (raftcall.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/node_internal.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftcall.h"
#include "raftstore/raftinfo.h"
#include "storage/store.h"

enum change_step {
	CHANGE_IDLE = 0,
	CHANGE_WRITE_KEY, /* the system transaction is in flight */
	CHANGE_RAFT,      /* the Raft configuration change is in flight */
};

static const char *change_op_name(uint8_t op)
{
	switch (op) {
	case WIRE_MEMBER_ADD:
		return "add";
	case WIRE_MEMBER_PROMOTE:
		return "promote";
	default:
		return "remove";
	}
}

/* The server with this id in c-raft's configuration, or NULL. */
static const struct raft_server *change_server(struct node *n, uint64_t id)
{
	const struct raft_configuration *c = raftinfo_configuration(&n->raft);

	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].id == id)
			return &c->servers[i];
	return NULL;
}

static unsigned change_voters(struct node *n)
{
	const struct raft_configuration *c = raftinfo_configuration(&n->raft);
	unsigned v = 0;

	for (unsigned i = 0; i < c->n; i++)
		v += c->servers[i].role == RAFT_VOTER;
	return v;
}

/* ---- the members, reloaded from the store ---- */

int node_members_set(struct node *n, const char *list, char *errmsg)
{
	struct config_peer peers[CONFIG_PEERS_MAX];
	unsigned np = 0;

	if (config_parse_cluster(list, peers, &np, errmsg) != RS_OK)
		return RS_EINVAL;
	memcpy(n->peers, peers, sizeof peers);
	n->n_peers = np;
	config_format_cluster(n->peers, n->n_peers, n->coordinators,
			      sizeof n->coordinators);
	return RS_OK;
}

/* Read the key at the store's applied version; a change logs once. */
void node_members_reload(struct node *n)
{
	const uint8_t *val;
	uint32_t len;
	char list[sizeof n->coordinators], errmsg[RS_ERRMSG_SIZE];

	if (store_get(n->store, NODE_KEY_COORDINATORS,
		      strlen(NODE_KEY_COORDINATORS),
		      store_applied_version(n->store), &val, &len,
		      NULL) != RS_OK ||
	    len >= sizeof list)
		return;
	snprintf(list, sizeof list, "%.*s", (int)len, (const char *)val);
	if (strcmp(list, n->coordinators) == 0)
		return;
	if (node_members_set(n, list, errmsg) != RS_OK) {
		log_error("members.bad_key", "key=\"\\xff/system/coordinators\" "
			  "error=\"%s\"", errmsg);
		return;
	}
	log_info("members.changed", "members=%s", n->coordinators);
}

void node_members_applied(struct node *n, const struct batch *b)
{
	size_t pos = 0, klen = strlen(NODE_KEY_COORDINATORS);
	struct mutation m;

	while (batch_next(b, &pos, &m))
		if (m.key_len == klen && m.key[0] == 0xff &&
		    memcmp(m.key, NODE_KEY_COORDINATORS, klen) == 0) {
			node_members_reload(n);
			return;
		}
}

bool node_is_member(struct node *n, uint64_t id)
{
	return node_peer(n, (raft_id)id) != NULL ||
	       (n->raft_started && change_server(n, id) != NULL);
}

bool node_in_raft_config(struct node *n, uint64_t id)
{
	return n->raft_started && change_server(n, id) != NULL;
}

bool node_is_voter(struct node *n, uint64_t id)
{
	const struct raft_server *s =
		n->raft_started ? change_server(n, id) : NULL;

	return s != NULL && s->role == RAFT_VOTER;
}

/* ---- answering ---- */

/* Answer the change's request (if it still has one) and go idle. */
static void change_end(struct node *n, int status, const char *text)
{
	struct node_change *c = &n->change;
	struct server_req *req = c->req;

	c->req = NULL;
	c->step = CHANGE_IDLE;
	if (req != NULL)
		service_answer(req, status, text);
}

static void change_fail(struct node *n, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void change_fail(struct node *n, int status, const char *fmt, ...)
{
	struct node_change *c = &n->change;
	char msg[RS_ERRMSG_SIZE], q[RS_ERRMSG_SIZE + 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_warn("members.change_failed", "op=%s node=%" PRIu64 " reason=%s",
		 change_op_name(c->op), c->id, log_quote(q, sizeof q, msg));
	change_end(n, status, msg);
}

/* {"op", "id", "role", "members": [...]} after a change that worked. */
static void change_done(struct node *n)
{
	struct node_change *c = &n->change;
	const struct raft_server *s = change_server(n, c->id);
	const char *role = s ? raftinfo_server_role_name(s->role) : "removed";
	json_t *doc = json_object();
	char *text = NULL;
	int bad = doc == NULL;

	bad = bad || rs_json_set_str(doc, "op", change_op_name(c->op)) != RS_OK;
	bad = bad || rs_json_set_u64(doc, "id", c->id) != RS_OK;
	bad = bad || rs_json_set_str(doc, "role", role) != RS_OK;
	bad = bad || rs_json_set(doc, "members", node_members_array(n)) != RS_OK;
	if (!bad)
		text = rs_json_dump(doc, RS_JSON_COMPACT);
	json_decref(doc);
	log_info("members.changed_raft", "op=%s node=%" PRIu64 " role=%s",
		 change_op_name(c->op), c->id, role);
	if (text == NULL) {
		change_end(n, RS_ENOMEM, "member change done; answer: out of memory");
		return;
	}
	change_end(n, RS_OK, text);
	free(text);
}

/* ---- the steps ---- */

static void change_next(struct node *n);

/* c-raft's and the proxy's callbacks record the outcome; this runs the
 * next step from the loop. */
static void change_timer_cb(uv_timer_t *t)
{
	change_next(t->data);
}

static void change_schedule(struct node *n, int status, const char *msg)
{
	struct node_change *c = &n->change;

	if (c->step == CHANGE_IDLE || n->stopping)
		return; /* answered already (shutdown) */
	c->status = status;
	snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "");
	uv_timer_start(&c->timer, change_timer_cb, 0, 0);
}

static void change_raft_cb(struct raft_change *req, int status)
{
	struct node *n = req->data;

	raftcall_cb_enter("member change callback");
	change_schedule(n, status, status ? raft_strerror(status) : NULL);
	raftcall_cb_leave();
}

static void change_key_cb(struct proxy_txn *t, int status, uint64_t version,
			  const char *message)
{
	struct node *n = t->data;

	(void)version;
	change_schedule(n, status, message);
}

/* The system transaction: \xff/system/coordinators = list. */
static int change_write_key(struct node *n, const struct config_peer *peers,
			    unsigned np)
{
	struct node_change *c = &n->change;
	char list[sizeof n->coordinators], errmsg[RS_ERRMSG_SIZE];
	int rv;

	config_format_cluster(peers, np, list, sizeof list);
	proxy_txn_free(&c->txn);
	proxy_txn_init(&c->txn);
	c->txn.data = n;
	c->txn.system = true;
	c->txn.read_version = store_applied_version(n->store);
	rv = batch_set(&c->txn.muts, NODE_KEY_COORDINATORS,
		       strlen(NODE_KEY_COORDINATORS), list, strlen(list),
		       errmsg);
	if (rv != RS_OK)
		return rv;
	c->step = CHANGE_WRITE_KEY;
	c->key_written = true;
	log_info("members.write", "op=%s node=%" PRIu64 " members=%s",
		 change_op_name(c->op), c->id, list);
	proxy_commit(n->proxy, &c->txn, change_key_cb);
	return RS_OK;
}

/* The Raft step of the change; c-raft's refusal fails it at once. */
static void change_raft(struct node *n)
{
	struct node_change *c = &n->change;
	int rv;

	c->step = CHANGE_RAFT;
	c->raft_done = true;
	c->raft_req.data = n;
	switch (c->op) {
	case WIRE_MEMBER_ADD:
		rv = raftcall_add(&n->raft, &c->raft_req, c->id, c->raft_addr,
				  change_raft_cb);
		break;
	case WIRE_MEMBER_PROMOTE:
		rv = raftcall_assign(&n->raft, &c->raft_req, c->id, RAFT_VOTER,
				     change_raft_cb);
		break;
	default:
		rv = raftcall_remove(&n->raft, &c->raft_req, c->id,
				     change_raft_cb);
	}
	if (rv != 0)
		change_fail(n, RS_EINVAL, "Raft refused the %s of node %" PRIu64
					  ": %s", change_op_name(c->op), c->id,
			    raft_errmsg(&n->raft)[0] ? raft_errmsg(&n->raft)
						     : raft_strerror(rv));
}

/* Remove: the members without c->id. */
static int change_write_without(struct node *n)
{
	struct config_peer rest[CONFIG_PEERS_MAX];
	unsigned nr = 0;

	for (unsigned i = 0; i < n->n_peers; i++)
		if (n->peers[i].id != n->change.id)
			rest[nr++] = n->peers[i];
	return change_write_key(n, rest, nr);
}

static void change_next(struct node *n)
{
	struct node_change *c = &n->change;
	enum change_step was = c->step;

	if (was == CHANGE_IDLE)
		return; /* ended already (shutdown) */
	if (c->status != 0) {
		change_fail(n, was == CHANGE_RAFT ? RS_EUNAVAILABLE : c->status,
			    "%s of node %" PRIu64 ": %s failed: %s%s",
			    change_op_name(c->op), c->id,
			    was == CHANGE_RAFT ? "the Raft configuration change"
					       : "writing the members",
			    c->msg,
			    c->op == WIRE_MEMBER_ADD && c->key_written
				    ? " (the member is recorded but not in Raft: "
				      "run the same add again, or remove it)"
				    : "");
		return;
	}
	if (c->op == WIRE_MEMBER_ADD && was == CHANGE_WRITE_KEY) {
		change_raft(n);
		return;
	}
	if (c->op == WIRE_MEMBER_REMOVE && was == CHANGE_RAFT &&
	    node_peer(n, c->id) != NULL) {
		if (change_write_without(n) != RS_OK)
			change_fail(n, RS_ENOMEM, "remove: out of memory");
		return;
	}
	if (c->op == WIRE_MEMBER_REMOVE) {
		director_registry_remove(&n->registry, c->id);
		/* the layout must lose the node now, not after a timeout */
		node_director_members_changed(n, "member removed");
	}
	change_done(n);
}

/* ---- the checks, then the first step ---- */

static int change_check_add(struct node *n, const struct config_peer *p,
			    char *why)
{
	const struct config_peer *old = node_peer(n, p->id);
	const struct raft_configuration *conf = raftinfo_configuration(&n->raft);

	if (old != NULL && (strcmp(old->raft_addr, p->raft_addr) ||
			    strcmp(old->client_addr, p->client_addr))) {
		rs_errmsg_printf(why, "node %" PRIu64 " is already a member, at "
				      "%s/%s", p->id, old->raft_addr,
				 old->client_addr);
		return RS_EEXIST;
	}
	if (old != NULL && change_server(n, p->id) != NULL) {
		rs_errmsg_printf(why, "node %" PRIu64 " is already a member (%s)",
				 p->id, raftinfo_server_role_name(
						change_server(n, p->id)->role));
		return RS_EEXIST;
	}
	for (unsigned i = 0; i < n->n_peers; i++)
		if (n->peers[i].id != p->id &&
		    (strcmp(n->peers[i].raft_addr, p->raft_addr) == 0 ||
		     strcmp(n->peers[i].client_addr, p->client_addr) == 0 ||
		     strcmp(n->peers[i].raft_addr, p->client_addr) == 0 ||
		     strcmp(n->peers[i].client_addr, p->raft_addr) == 0)) {
			rs_errmsg_printf(why, "an address of %s/%s is node %"
					      PRIu64 "'s", p->raft_addr,
					 p->client_addr, n->peers[i].id);
			return RS_EEXIST;
		}
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].role != RAFT_VOTER) {
			rs_errmsg_printf(why, "node %llu is still joining (%s, not "
					      "yet a voter): start it with --join, "
					      "or remove it, first",
					 (unsigned long long)conf->servers[i].id,
					 raftinfo_server_role_name(
						 conf->servers[i].role));
			return RS_EINVAL;
		}
	if (old == NULL && n->n_peers >= CONFIG_PEERS_MAX) {
		rs_errmsg_printf(why, "the cluster has %u members, the most "
				      "raftstore supports", n->n_peers);
		return RS_EINVAL;
	}
	return RS_OK;
}

static void change_start_add(struct node *n, const struct config_peer *p)
{
	struct config_peer next[CONFIG_PEERS_MAX];
	unsigned nn = n->n_peers;

	if (node_peer(n, p->id) != NULL) { /* written before: resume */
		change_raft(n);
		return;
	}
	memcpy(next, n->peers, sizeof next);
	next[nn++] = *p;
	if (change_write_key(n, next, nn) != RS_OK)
		change_fail(n, RS_ENOMEM, "add: out of memory");
}

static void change_transfer_cb(struct raft_transfer *req)
{
	(void)req;
}

/* Removing the leader: hand leadership to an up-to-date voter, and say
 * "not leader" so the client retries the remove there. */
static void change_remove_leader(struct node *n)
{
	struct node_change *c = &n->change;
	int rv;

	if (change_voters(n) < 2) {
		change_fail(n, RS_EINVAL, "node %" PRIu64 " is the only voter; "
					  "it cannot be removed", c->id);
		return;
	}
	rv = raftcall_transfer(&n->raft, &c->transfer_req, 0,
			       change_transfer_cb);
	if (rv != 0) {
		change_fail(n, RS_EUNAVAILABLE, "node %" PRIu64 " is the leader "
						"and leadership could not be "
						"transferred: %s; retry",
			    c->id, raft_strerror(rv));
		return;
	}
	log_info("members.transfer", "reason=\"remove the leader\" node=%" PRIu64,
		 c->id);
	change_end(n, RS_ENOTLEADER,
		   "this node is the one to remove: leadership is moving to "
		   "another voter; the remove goes on there");
}

static void change_start_remove(struct node *n)
{
	struct node_change *c = &n->change;
	const struct raft_server *s = change_server(n, c->id);

	if (s == NULL && node_peer(n, c->id) == NULL) {
		change_fail(n, RS_ENOTFOUND, "node %" PRIu64 " is not a member",
			    c->id);
		return;
	}
	if (c->id == n->cfg.id) {
		change_remove_leader(n);
		return;
	}
	if (s != NULL && s->role == RAFT_VOTER && change_voters(n) < 2) {
		change_fail(n, RS_EINVAL, "node %" PRIu64 " is the only voter",
			    c->id);
		return;
	}
	if (s != NULL)
		change_raft(n);
	else if (change_write_without(n) != RS_OK) /* pending: key only */
		change_fail(n, RS_ENOMEM, "remove: out of memory");
}

static void change_start_promote(struct node *n)
{
	struct node_change *c = &n->change;
	const struct raft_server *s = change_server(n, c->id);

	if (s == NULL) {
		change_fail(n, RS_ENOTFOUND, "node %" PRIu64 " is not in the Raft "
					     "configuration (rsctl members add "
					     "it first)", c->id);
		return;
	}
	if (s->role == RAFT_VOTER) {
		change_done(n);
		return;
	}
	change_raft(n);
}

/* service_options.member_change */
void node_member_change(void *ctx, struct server_req *req,
			const struct wire_member_change_req *m)
{
	struct node *n = ctx;
	struct node_change *c = &n->change;
	struct config_peer p = {.id = m->node_id};
	char why[RS_ERRMSG_SIZE], entry[3 * CONFIG_ADDR_MAX];
	unsigned np = 0;
	int rv;

	if (req == NULL)
		return; /* out of memory: the client times out */
	if (n->role != RAFT_LEADER) {
		service_answer(req, RS_ENOTLEADER, "member changes are made by "
						   "the leader");
		return;
	}
	if (c->step != CHANGE_IDLE) {
		rs_errmsg_printf(why, "another member change is in progress (%s "
				      "of node %" PRIu64 "); one at a time",
				 change_op_name(c->op), c->id);
		service_answer(req, RS_EINVAL, why);
		return;
	}
	if (n->director == NULL || !director_accepting(n->director)) {
		service_answer(req, RS_ERECOVERING, "the director is recovering "
						    "the transaction system");
		return;
	}
	if (m->op == WIRE_MEMBER_ADD) {
		snprintf(entry, sizeof entry, "%" PRIu64 "=%.*s/%.*s", m->node_id,
			 (int)m->raft_addr.len, (const char *)m->raft_addr.p,
			 (int)m->client_addr.len, (const char *)m->client_addr.p);
		rv = config_parse_cluster(entry, &p, &np, why);
		if (rv == RS_OK)
			rv = change_check_add(n, &p, why);
		if (rv != RS_OK) {
			service_answer(req, rv == RS_EEXIST ? RS_EEXIST : RS_EINVAL,
				       why);
			return;
		}
	}
	c->op = m->op;
	c->id = m->node_id;
	snprintf(c->raft_addr, sizeof c->raft_addr, "%s", p.raft_addr);
	snprintf(c->client_addr, sizeof c->client_addr, "%s", p.client_addr);
	c->req = req;
	c->key_written = c->raft_done = false;
	c->status = 0;
	c->step = CHANGE_RAFT; /* busy from here; each start sets its step */
	log_info("members.change", "op=%s node=%" PRIu64 " raft_addr=%s "
		 "client_addr=%s", change_op_name(c->op), c->id,
		 c->raft_addr[0] ? c->raft_addr : "-",
		 c->client_addr[0] ? c->client_addr : "-");
	switch (c->op) {
	case WIRE_MEMBER_ADD:
		change_start_add(n, &p);
		break;
	case WIRE_MEMBER_PROMOTE:
		change_start_promote(n);
		break;
	default:
		change_start_remove(n);
	}
}

int node_members_init(struct node *n)
{
	memset(&n->change, 0, sizeof n->change);
	proxy_txn_init(&n->change.txn);
	n->change.timer.data = n;
	return uv_timer_init(&n->loop, &n->change.timer) == 0 ? RS_OK
							       : RS_EIO;
}

void node_members_stop(struct node *n)
{
	uv_timer_stop(&n->change.timer);
	uv_close((uv_handle_t *)&n->change.timer, NULL);
	if (n->change.step != CHANGE_IDLE)
		change_end(n, RS_ESHUTDOWN, "the node is shutting down; the "
					    "member change may or may not "
					    "have been made");
}

void node_members_close(struct node *n)
{
	proxy_txn_free(&n->change.txn);
}
