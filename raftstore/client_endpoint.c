/*
 * client_endpoint: the endpoint list, and which endpoint the client uses.
 *
 * The list is parsed once from the options ("host:port,...", IPv4 or
 * localhost, no resolver so nothing blocks the loop) and grows when a node
 * names a leader that is not on it.  Pooled connections all go to one
 * endpoint, c->cur.  A connection failure, or a node refusing as
 * unavailable, not leader, recovering or shutting down, rotates c->cur to
 * the next endpoint (once per failure, however many connections saw it).
 *
 * Leader preference.  The first pooled connection up on a new endpoint
 * sends STATUS; pooled connections hold their ops until the answer, then
 * either all move to the leader it names or all start sending.  A redirect
 * is trusted without asking the leader again, so two nodes naming each
 * other cannot bounce the client forever.  The answer is read with the
 * JSON layer (raftstore/lib/json.h); a document that is not a JSON object,
 * or whose leader member is not a string, fails the connection with a
 * protocol error that names the node and the member.
 */
#include "raftstore/client_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/json.h"

/* The STATUS member naming the leader's client endpoint. */
#define CLIENT_LEADER_FIELD "leader_client_addr"

static int client_endpoint_parse(const char *s, size_t len,
				 struct client_endpoint *ep, char *errmsg)
{
	char text[CLIENT_NAME_MAX];
	char *colon, *end;
	const char *host;
	unsigned long port;

	assert(s != NULL && ep != NULL);
	if (len == 0 || len >= sizeof text)
		goto err_form;
	memcpy(text, s, len);
	text[len] = '\0';
	colon = strrchr(text, ':');
	if (colon == NULL || colon == text)
		goto err_form;
	*colon = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port == 0 ||
	    port > 65535) {
		rs_errmsg_printf(errmsg, "endpoint \"%.*s\": bad port \"%s\"",
				 (int)len, s, colon + 1);
		return RS_EINVAL;
	}
	/* No resolver on purpose: a lookup would block the loop, and
	 * "localhost" is the only name worth knowing. */
	host = strcmp(text, "localhost") == 0 ? "127.0.0.1" : text;
	if (uv_ip4_addr(host, (int)port, &ep->addr) != 0) {
		rs_errmsg_printf(errmsg, "endpoint \"%.*s\": host \"%s\" is not an IPv4 address or localhost",
				 (int)len, s, text);
		return RS_EINVAL;
	}
	memcpy(ep->name, s, len);
	ep->name[len] = '\0';
	assert(ep->addr.sin_family == AF_INET);
	return RS_OK;
err_form:
	rs_errmsg_printf(errmsg, "endpoint \"%.*s\": not HOST:PORT", (int)len, s);
	return RS_EINVAL;
}

int client_endpoints_parse(struct rs_client *c, const char *list,
			   char *errmsg)
{
	const char *p = list;

	assert(c->n_eps == 0);
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		const char *s = p;
		size_t len = n;
		int rv;

		while (len > 0 && *s == ' ')
			s++, len--;
		while (len > 0 && s[len - 1] == ' ')
			len--;
		if (c->n_eps == RS_CLIENT_ENDPOINTS_MAX) {
			rs_errmsg_printf(errmsg, "endpoint \"%.*s\": more than %u endpoints",
					 (int)len, s, RS_CLIENT_ENDPOINTS_MAX);
			return RS_EINVAL;
		}
		rv = client_endpoint_parse(s, len, &c->eps[c->n_eps], errmsg);
		if (rv != RS_OK)
			return rv;
		c->n_eps++;
		p += n;
		if (*p == ',' && *++p == '\0') {
			rs_errmsg_printf(errmsg, "endpoints \"%s\": empty entry at the end",
					 list);
			return RS_EINVAL;
		}
	}
	if (c->n_eps == 0) {
		rs_errmsg_printf(errmsg, "no endpoints given");
		return RS_EINVAL;
	}
	assert(c->n_eps <= RS_CLIENT_ENDPOINTS_MAX);
	return RS_OK;
}

const char *client_endpoint_list(const struct rs_client *c, char *out,
				 size_t size)
{
	size_t at = 0;

	assert(size > 0);
	out[0] = '\0';
	for (unsigned i = 0; i < c->n_eps && at < size; i++) {
		int n = snprintf(out + at, size - at, "%s%s", i ? ", " : "",
				 c->eps[i].name);
		if (n < 0)
			break;
		at += (size_t)n;
	}
	assert(strlen(out) < size);
	return out;
}

/* Index of the leader a node named, added to the list if new; -1 if it
 * names none, or one this client cannot use. */
static int client_leader_index(struct rs_client *c, const char *addr)
{
	struct client_endpoint ep;

	assert(c->n_eps > 0 && c->n_eps <= RS_CLIENT_ENDPOINTS_MAX);
	if (addr[0] == '\0' ||
	    client_endpoint_parse(addr, strlen(addr), &ep, NULL) != RS_OK)
		return -1;
	for (unsigned i = 0; i < c->n_eps; i++)
		if (c->eps[i].addr.sin_addr.s_addr == ep.addr.sin_addr.s_addr &&
		    c->eps[i].addr.sin_port == ep.addr.sin_port)
			return (int)i;
	if (c->n_eps == RS_CLIENT_ENDPOINTS_MAX)
		return -1;
	c->eps[c->n_eps] = ep;
	assert(ep.addr.sin_family == AF_INET);
	return (int)c->n_eps++;
}

void client_leader_recheck(struct rs_client *c)
{
	assert(c->n_pool > 0);
	if (c->closing || c->leader_checked || c->leader_checking)
		return;
	for (unsigned i = 0; i < c->n_pool; i++) {
		struct client_conn *conn = c->pool[i];
		if (conn != NULL && sm_state(&conn->sm) == CLIENT_CONN_READY) {
			client_leader_check(conn);
			return;
		}
	}
	assert(!c->leader_checking);
}

static void client_pool_flush(struct rs_client *c)
{
	assert(c->leader_checked);
	assert(!c->closing);
	for (unsigned i = 0; i < c->n_pool; i++)
		if (c->pool[i] != NULL)
			client_conn_flush(c->pool[i]);
}

void client_leader_check(struct client_conn *conn)
{
	struct rs_client *c = conn->client;
	struct rs_buf frame;

	assert(conn->pooled && conn->status_id == 0);
	assert(!c->leader_checked && !c->leader_checking);
	rs_buf_init(&frame);
	if (wire_encode_simple(&frame, c->next_id, WIRE_STATUS) != RS_OK) {
		client_conn_fail(conn, RS_ENOMEM, "leader check: out of memory");
		return;
	}
	conn->status_id = c->next_id++;
	c->leader_checking = true;
	sm_move(&conn->sm, CLIENT_CONN_CHECKING);
	client_write_owned(conn, &frame, "leader check");
}

/* Take a pooled connection out of the pool: no new ops, closes once its
 * answers are in and its running watches have ended (or were cancelled);
 * its unwritten ops go to `moved`. */
static void client_pool_retire(struct rs_client *c, unsigned slot,
			       struct client_oplist *moved)
{
	struct client_conn *conn = c->pool[slot];
	struct rs_op *op, *next;

	if (conn == NULL)
		return;
	assert(conn->pooled && conn->slot == slot);
	c->pool[slot] = NULL;
	conn->pooled = false;
	conn->retired = true;
	for (op = conn->ops.head; op != NULL; op = next) {
		next = op->next;
		if (op->state != CLIENT_OP_QUEUED)
			continue;
		client_conn_remove_op(conn, op);
		op->conn = NULL;
		client_list_push(moved, op);
	}
	client_conn_maybe_close(conn);
	assert(c->pool[slot] == NULL);
}

static void client_switch(struct rs_client *c, unsigned to, bool checked)
{
	struct client_oplist moved = {NULL, NULL, 0};
	struct rs_op *op;

	assert(to < c->n_eps && !c->closing);
	assert(!c->switching);
	c->switching = true;
	c->cur = to;
	c->leader_checked = checked || c->no_leader_pref;
	c->leader_checking = false;
	for (unsigned i = 0; i < c->n_pool; i++)
		client_pool_retire(c, i, &moved);
	while ((op = moved.head) != NULL) {
		client_list_remove(&moved, op);
		if (c->closing) { /* an op callback closed the client */
			client_op_msgf(op, "client closed");
			client_op_finish(op, RS_ESHUTDOWN);
		} else if (client_op_dispatch(op) != RS_OK) {
			client_op_msgf(op, "connect: out of memory");
			client_op_finish(op, RS_ENOMEM);
		}
	}
	c->switching = false;
}

/* Move on from an endpoint that failed.  Only the first failure counts:
 * the other connections to it fail too and must not move the client on
 * again (nor, inside a switch, recurse). */
void client_rotate(struct rs_client *c, unsigned from)
{
	assert(from < c->n_eps);
	assert(c->cur < c->n_eps);
	if (c->closing || c->switching || from != c->cur || c->n_eps < 2)
		return;
	client_switch(c, (c->cur + 1) % c->n_eps, false);
}

/* The leader a STATUS document names, into addr ("" for none).  The
 * document is the node status object (docs/protocol.md, "STATUS"): a JSON
 * object whose leader member, when present, is a string.  Without the
 * member it names no leader, as the preference is only a hint; a name too
 * long for an endpoint is one this client cannot use, so it names none
 * either.  RS_EPROTO with errmsg for anything else, and addr stays "". */
static int client_status_doc_leader(const void *text, size_t len, char *addr,
				    size_t size, char *errmsg)
{
	const char *name;
	json_t *doc;
	int rv;

	assert(size > 0);
	assert(text != NULL || len == 0);
	addr[0] = '\0';
	rv = rs_json_parse_object(text, len, &doc, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = rs_json_get_str(doc, CLIENT_LEADER_FIELD, &name, NULL, errmsg);
	if (rv == RS_OK && strlen(name) < size)
		memcpy(addr, name, strlen(name) + 1);
	json_decref(doc);
	assert(strlen(addr) < size);
	return rv == RS_ENOTFOUND ? RS_OK : rv;
}

int client_status_leader(const struct wire_frame *f, char *addr, size_t size,
			 char *errmsg)
{
	struct wire_reader r;
	struct wire_bytes msg, json;
	int status, rv;

	assert(size > 0);
	addr[0] = '\0';
	if (f->type != (WIRE_STATUS | WIRE_RESPONSE) ||
	    wire_decode_response_head(f, &r, &status, &msg) != RS_OK)
		goto err_frame;
	if (status != RS_OK)
		return RS_OK;
	json = wire_get_bytes(&r, UINT32_MAX);
	if (!wire_reader_done(&r))
		goto err_frame;
	rv = client_status_doc_leader(json.p, json.len, addr, size, errmsg);
	if (rv != RS_OK)
		rs_errmsg_wrapf(errmsg, "STATUS document");
	return rv;
err_frame:
	rs_errmsg_printf(errmsg, "malformed STATUS response");
	return RS_EPROTO;
}

void client_leader_reply(struct client_conn *conn,
			 const struct wire_frame *f)
{
	struct rs_client *c = conn->client;
	bool current = conn->pooled && conn->endpoint == c->cur;
	char addr[CLIENT_NAME_MAX], errmsg[RS_ERRMSG_SIZE];
	int leader = -1;

	assert(sm_state(&conn->sm) == CLIENT_CONN_CHECKING);
	assert(f->request_id == conn->status_id);
	if (client_status_leader(f, addr, sizeof addr, errmsg) != RS_OK) {
		client_conn_fail(conn, RS_EPROTO, "protocol error: %s", errmsg);
		return;
	}
	conn->status_id = 0;
	sm_move(&conn->sm, CLIENT_CONN_READY);
	if (current) {
		c->leader_checking = false;
		leader = client_leader_index(c, addr);
	}
	if (current && leader >= 0 && (unsigned)leader != c->cur) {
		client_switch(c, (unsigned)leader, true);
	} else if (current) {
		c->leader_checked = true;
		client_pool_flush(c);
	}
	client_conn_maybe_close(conn);
}
