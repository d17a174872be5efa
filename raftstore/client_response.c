/*
 * client_response: turning a server's answer into an op's result.
 *
 * A malformed answer (bad counts, trailing bytes, an unknown read mode)
 * is a protocol error that fails the connection, and the op is retried.
 * A range is checked whole before anything is allocated, and its result
 * is one block holding the array and every key and value.  GET values and STATUS/MEMBERS/REGISTER documents
 * are copied with a NUL after them, so a document prints as a string;
 * the client does not interpret them.
 *
 * Refusals.  A refusal the server sends is returned, or retried when it is
 * retryable (see client.h); unavailable, not leader, recovering and
 * shutting down also move the client to the next endpoint.
 */
#include "raftstore/client_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static int client_set_value(struct rs_result *res, struct wire_bytes b)
{
	assert(b.p != NULL || b.len == 0);
	res->value.len = 0;
	if (rs_buf_reserve(&res->value, (size_t)b.len + 1) != RS_OK)
		return RS_ENOMEM;
	rs_buf_append(&res->value, b.p, b.len);
	res->value.data[res->value.len] = '\0';
	assert(res->value.len == b.len);
	return RS_OK;
}

static int client_decode_get(struct rs_result *res, struct wire_reader *r)
{
	uint8_t mode = wire_get_u8(r);
	uint64_t read_version = wire_get_u64(r);
	uint8_t found = wire_get_u8(r);
	uint64_t found_version = wire_get_u64(r);
	struct wire_bytes val = wire_get_bytes(r, RS_VALUE_SIZE_MAX);

	assert(res != NULL);
	if (!wire_reader_done(r) || found > 1 || mode > WIRE_READ_AT_VERSION)
		return RS_EPROTO;
	res->read_mode = mode;
	res->version = read_version;
	res->found = found != 0;
	res->found_version = found_version;
	assert(r->pos == r->len);
	return client_set_value(res, val);
}

/* First pass: check every row and size the block that holds them all. */
static int client_range_scan(struct wire_reader scan, uint32_t n,
			     size_t *bytes)
{
	*bytes = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wire_bytes k = wire_get_bytes(&scan, RS_KEY_SIZE_MAX);
		struct wire_bytes v = wire_get_bytes(&scan, RS_VALUE_SIZE_MAX);
		wire_get_u64(&scan);
		*bytes += (size_t)k.len + v.len;
	}
	assert(scan.pos <= scan.len);
	assert(*bytes <= scan.len);
	return wire_reader_done(&scan) ? RS_OK : RS_EPROTO;
}

static int client_decode_range(struct rs_result *res, struct wire_reader *r)
{
	uint8_t mode = wire_get_u8(r);
	uint64_t read_version = wire_get_u64(r);
	uint8_t more = wire_get_u8(r);
	uint32_t n = wire_get_u32(r);
	size_t bytes;
	uint8_t *at;

	/* A row takes at least 16 bytes, so a count the body cannot hold is
	 * refused before it sizes an allocation. */
	if (r->failed || more > 1 || mode > WIRE_READ_AT_VERSION ||
	    n > (r->len - r->pos) / 16 || client_range_scan(*r, n, &bytes) != RS_OK)
		return RS_EPROTO;
	free(res->kvs);
	res->kvs = NULL;
	res->n_kvs = 0;
	if (n > 0) {
		res->kvs = malloc(n * sizeof *res->kvs + bytes);
		if (res->kvs == NULL)
			return RS_ENOMEM;
	}
	/* No rows: kvs stays NULL, and NULL + 0 is undefined in C. */
	at = n > 0 ? (uint8_t *)(res->kvs + n) : NULL;
	for (uint32_t i = 0; i < n; i++) {
		struct rs_kv *kv = &res->kvs[i];
		struct wire_bytes k = wire_get_bytes(r, RS_KEY_SIZE_MAX);
		struct wire_bytes v = wire_get_bytes(r, RS_VALUE_SIZE_MAX);
		kv->version = wire_get_u64(r);
		kv->key = at;
		kv->key_len = k.len;
		memcpy(at, k.p, k.len);
		at += k.len;
		kv->val = at;
		kv->val_len = v.len;
		if (v.len > 0)
			memcpy(at, v.p, v.len);
		at += v.len;
	}
	assert(wire_reader_done(r));
	assert(n == 0 || at == (uint8_t *)(res->kvs + n) + bytes);
	res->n_kvs = n;
	res->more = more != 0;
	res->read_mode = mode;
	res->version = read_version;
	return RS_OK;
}

int client_decode_result(uint8_t type, struct wire_reader *r,
			 struct rs_result *res)
{
	struct wire_bytes json;

	assert(!r->failed);
	switch (type) {
	case WIRE_GET:
		return client_decode_get(res, r);
	case WIRE_RANGE:
		return client_decode_range(res, r);
	case WIRE_GRV:
	case WIRE_COMMIT:
		res->version = wire_get_u64(r);
		return wire_reader_done(r) ? RS_OK : RS_EPROTO;
	case WIRE_STATUS:
	case WIRE_MEMBERS:
	case WIRE_REGISTER:
	case WIRE_MEMBER_CHANGE:
		json = wire_get_bytes(r, UINT32_MAX);
		if (!wire_reader_done(r))
			return RS_EPROTO;
		return client_set_value(res, json);
	case WIRE_TERM:
		res->node_id = wire_get_u64(r);
		res->term = wire_get_u64(r);
		return wire_reader_done(r) ? RS_OK : RS_EPROTO;
	default:
		assert(false);
		return RS_EPROTO;
	}
}

/* RS_OK, RS_EPROTO (malformed: the connection is unusable) or RS_ENOMEM. */
static int client_decode(struct rs_op *op, struct wire_reader *r)
{
	assert(op->request.len > WIRE_HEADER_SIZE || op->type >= WIRE_GRV);
	return client_decode_result(op->type, r, &op->result);
}

/* Whether to try a server's refusal again.  A conflict cannot succeed
 * until the transaction re-reads, and "unknown" means exactly that, so
 * neither is repeated.  A node shutting down sends reads elsewhere; a
 * COMMIT it refused is returned, as the protocol does not promise that it
 * was not applied. */
static bool client_refusal_retryable(const struct rs_op *op, int status)
{
	assert(status != RS_OK);
	assert((op->type >= WIRE_GET && op->type <= WIRE_MEMBERS) ||
	       op->type == WIRE_REGISTER || op->type == WIRE_MEMBER_CHANGE ||
	       op->type == WIRE_TERM);
	if (status == RS_ESHUTDOWN)
		return !client_op_changes_state(op);
	/* Conflict and too-old are the application's to retry (with a fresh
	 * read version); resending the same request cannot succeed. */
	return status != RS_ECONFLICT && status != RS_ETOOOLD &&
	       rs_error_retryable(status);
}

void client_op_refused(struct client_conn *conn, struct rs_op *op,
		       int status, struct wire_bytes msg)
{
	struct rs_client *c = conn->client;
	char text[sizeof op->result.message];

	assert(status != RS_OK);
	assert(op->conn == conn);
	client_msg_text(msg, status, text, sizeof text);
	if (!client_refusal_retryable(op, status)) {
		client_op_msgf(op, "%s", text);
		client_op_finish(op, status);
		return;
	}
	client_op_msgf(op, "%s: %s", c->eps[conn->endpoint].name, text);
	if (status == RS_EUNAVAILABLE || status == RS_ENOTLEADER ||
	    status == RS_ERECOVERING || status == RS_ESHUTDOWN)
		client_rotate(c, conn->endpoint);
	client_op_retry(op, status);
}

void client_op_response(struct client_conn *conn, struct rs_op *op,
			const struct wire_frame *f)
{
	struct wire_reader r;
	struct wire_bytes msg;
	int status, rv;

	assert(op->conn == conn);
	assert(op->state == CLIENT_OP_SENT);
	if (wire_decode_response_head(f, &r, &status, &msg) != RS_OK) {
		client_conn_fail(conn, RS_EPROTO, "protocol error: malformed %s response",
				 wire_type_name(op->type));
		return;
	}
	op->result.endpoint = conn->client->eps[conn->endpoint].name;
	if (status != RS_OK) {
		client_op_refused(conn, op, status, msg);
		return;
	}
	rv = client_decode(op, &r);
	if (rv == RS_EPROTO) {
		client_conn_fail(conn, RS_EPROTO, "protocol error: malformed %s response",
				 wire_type_name(op->type));
		return;
	}
	if (rv != RS_OK)
		client_op_msgf(op, "%s response: %s", wire_type_name(op->type),
			       rs_strerror(rv));
	client_op_finish(op, rv);
}
