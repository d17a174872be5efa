/*
 * fuzz_client: the client library's decoders of a server's answers
 * (raftstore/client_internal.h: wire_decode_response_head, then
 * client_decode_result), what every rs_client (rsctl, a node's REGISTER
 * heartbeat, a follower forwarding a transaction) does with the bytes a
 * server sends back.
 *
 * The input is the type byte of the request the answer is for (GET,
 * RANGE, GRV, COMMIT, STATUS, MEMBERS, REGISTER or MEMBER_CHANGE; other
 * inputs are skipped), then the answer frame's body (the frame layer has the `wire`
 * target).  Invariants, from client_internal.h and docs/protocol.md: a
 * refusal's message lies inside the body; a malformed answer is
 * RS_EPROTO; an accepted one encodes back, field by field, to exactly the
 * body after its head, its value has a NUL after it, a range's rows lie
 * in one block; decoding the same answer again into the result already
 * filled gives the same result (the client reuses results when it
 * retries).  The same bytes also go to the client's
 * leader check (client_status_leader), which reads STATUS answers: it
 * accepts only a STATUS answer that decodes (or a refusal, which names no
 * leader), and fills its address field with a terminated string, "" on
 * error.
 */
#include <stdlib.h>
#include <string.h>

#include "raftstore/client.h"
#include "raftstore/client_internal.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/wire.h"
#include "tests/fuzz/fuzz.h"

static const uint8_t request_types[] = {
	WIRE_GET,     WIRE_RANGE,    WIRE_GRV,           WIRE_COMMIT,
	WIRE_STATUS,  WIRE_MEMBERS,  WIRE_REGISTER,      WIRE_MEMBER_CHANGE,
	WIRE_TERM,
};
#define N_TYPES (sizeof request_types / sizeof request_types[0])

static void put_value(struct rs_buf *b, const struct rs_result *res)
{
	FUZZ_CHECK(res->value.data != NULL);
	FUZZ_CHECK(res->value.data[res->value.len] == '\0');
	wire_put_bytes(b, res->value.data, res->value.len);
}

static void put_range(struct rs_buf *b, const struct rs_result *res)
{
	const uint8_t *at = NULL;

	wire_put_u8(b, res->read_mode);
	wire_put_u64(b, res->version);
	wire_put_u8(b, res->more ? 1 : 0);
	wire_put_u32(b, (uint32_t)res->n_kvs);
	FUZZ_CHECK(res->n_kvs == 0 || res->kvs != NULL);
	if (res->n_kvs > 0)
		at = (const uint8_t *)(res->kvs + res->n_kvs);
	for (size_t i = 0; i < res->n_kvs; i++) {
		const struct rs_kv *kv = &res->kvs[i];

		/* Key then value, packed in order after the array. */
		FUZZ_CHECK(kv->key == at);
		FUZZ_CHECK(kv->val == at + kv->key_len);
		at += kv->key_len + kv->val_len;
		wire_put_bytes(b, kv->key, kv->key_len);
		wire_put_bytes(b, kv->val, kv->val_len);
		wire_put_u64(b, kv->version);
	}
}

/* The answer's body after its head, rebuilt from what was decoded. */
static void reencode(uint8_t type, const struct rs_result *res,
		     struct rs_buf *b)
{
	switch (type) {
	case WIRE_GET:
		FUZZ_CHECK(res->read_mode <= WIRE_READ_AT_VERSION);
		wire_put_u8(b, res->read_mode);
		wire_put_u64(b, res->version);
		wire_put_u8(b, res->found ? 1 : 0);
		wire_put_u64(b, res->found_version);
		put_value(b, res);
		break;
	case WIRE_RANGE:
		FUZZ_CHECK(res->read_mode <= WIRE_READ_AT_VERSION);
		put_range(b, res);
		break;
	case WIRE_GRV:
	case WIRE_COMMIT:
		wire_put_u64(b, res->version);
		break;
	case WIRE_TERM:
		wire_put_u64(b, res->node_id);
		wire_put_u64(b, res->term);
		break;
	default:
		put_value(b, res);
	}
}

/* Whether the answer decoded. */
static bool check_answer(uint8_t type, struct wire_reader head,
			 struct rs_result *res)
{
	const uint8_t *rest = head.p + head.pos;
	size_t rest_len = head.len - head.pos;
	struct wire_reader r = head;
	struct rs_buf b;
	int rv;

	rv = client_decode_result(type, &r, res);
	if (rv != RS_OK) {
		FUZZ_CHECK(rv == RS_EPROTO);
		return false;
	}
	FUZZ_CHECK(wire_reader_done(&r));
	rs_buf_init(&b);
	reencode(type, res, &b);
	FUZZ_CHECK(b.len == rest_len && memcmp(b.data, rest, rest_len) == 0);
	/* Again, into the result as it is now. */
	r = head;
	FUZZ_CHECK(client_decode_result(type, &r, res) == RS_OK);
	b.len = 0;
	reencode(type, res, &b);
	FUZZ_CHECK(b.len == rest_len && memcmp(b.data, rest, rest_len) == 0);
	rs_buf_free(&b);
	return true;
}

/* The client's leader check reads the same bytes as a STATUS answer. */
static void check_status_leader(const struct wire_frame *f, bool decodes)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	char addr[64];
	int rv;

	memset(addr, 'x', sizeof addr);
	rv = client_status_leader(f, addr, sizeof addr, errmsg);
	FUZZ_CHECK(memchr(addr, '\0', sizeof addr) != NULL);
	if (rv != RS_OK) {
		FUZZ_CHECK(rv == RS_EPROTO && errmsg[0] != '\0');
		FUZZ_CHECK(addr[0] == '\0');
		return;
	}
	FUZZ_CHECK(f->type == (WIRE_STATUS | WIRE_RESPONSE));
	FUZZ_CHECK(decodes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_frame f = {0};
	struct wire_reader head;
	struct wire_bytes msg;
	struct rs_result res;
	uint8_t type;
	int status;

	if (size < 1 || size - 1 > UINT32_MAX)
		return 0;
	type = data[0];
	if (memchr(request_types, type, N_TYPES) == NULL)
		return 0;
	f.type = type | WIRE_RESPONSE;
	f.request_id = 1;
	f.body = size > 1 ? data + 1 : NULL;
	f.body_len = (uint32_t)(size - 1);
	f.total_len = WIRE_HEADER_SIZE + f.body_len;
	if (wire_decode_response_head(&f, &head, &status, &msg) != RS_OK) {
		check_status_leader(&f, false);
		return 0;
	}
	if (status != RS_OK) {
		FUZZ_CHECK(msg.len == 0 ||
			   (msg.p >= f.body &&
			    (size_t)(msg.p - f.body) + msg.len <= f.body_len));
		check_status_leader(&f, true);
		return 0;
	}
	rs_result_init(&res);
	check_status_leader(&f, check_answer(type, head, &res));
	rs_result_free(&res);
	return 0;
}
