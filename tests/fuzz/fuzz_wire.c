/*
 * fuzz_wire: the client and node-to-node protocol (raftstore/wire.h).
 *
 * The input is a byte stream as a connection delivers it: frames are
 * parsed one after the other, as the server and the client do, until one
 * is torn or refused.  Every frame goes to every request decoder (they
 * must refuse a frame of another type) and to the response head decoder;
 * a watch event's typed fields are read as the client reads them.
 * Invariants: a parsed frame lies inside the input; a decoded request
 * re-encodes to exactly the frame it came from (the encoding is
 * canonical); what a decoder returns points inside the body.  A copy of
 * the stream with every frame's CRC recomputed is decoded as well.
 */
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/wire.h"
#include "tests/fuzz/fuzz.h"

static void check_inside(const struct wire_frame *f, struct wire_bytes b)
{
	FUZZ_CHECK(b.len == 0 ||
		   (b.p >= f->body && b.p + b.len <= f->body + f->body_len));
}

/* A request decoded from f must encode back to f's bytes exactly (only
 * frames without flags: the request encoders set none). */
static void check_same_frame(const uint8_t *frame,
			     const struct wire_frame *f, struct rs_buf *out,
			     int encoded)
{
	if (f->flags != 0)
		return;
	FUZZ_CHECK(encoded == RS_OK);
	FUZZ_CHECK(out->len == f->total_len);
	FUZZ_CHECK(memcmp(out->data, frame, f->total_len) == 0);
}

static void fuzz_get(const uint8_t *frame, const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_get_req m;
	struct rs_buf out;

	if (wire_decode_get(f, &m, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(f->type == WIRE_GET);
	check_inside(f, m.key);
	rs_buf_init(&out);
	check_same_frame(frame, f, &out,
			 wire_encode_get(&out, f->request_id, &m));
	rs_buf_free(&out);
}

static void fuzz_range(const uint8_t *frame, const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_range_req m;
	struct rs_buf out;

	if (wire_decode_range(f, &m, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(f->type == WIRE_RANGE);
	FUZZ_CHECK(m.limit <= WIRE_RANGE_LIMIT_MAX);
	check_inside(f, m.begin);
	check_inside(f, m.end);
	rs_buf_init(&out);
	check_same_frame(frame, f, &out,
			 wire_encode_range(&out, f->request_id, &m));
	rs_buf_free(&out);
}

static void fuzz_watch(const uint8_t *frame, const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_watch_req m;
	struct rs_buf out;

	if (wire_decode_watch(f, &m, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(f->type == WIRE_WATCH);
	check_inside(f, m.begin);
	check_inside(f, m.end);
	rs_buf_init(&out);
	check_same_frame(frame, f, &out,
			 wire_encode_watch(&out, f->request_id, &m));
	rs_buf_free(&out);
}

static void fuzz_watch_cancel(const uint8_t *frame,
			      const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t watch_id;
	struct rs_buf out;

	if (wire_decode_watch_cancel(f, &watch_id, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(f->type == WIRE_WATCH_CANCEL);
	FUZZ_CHECK(f->body_len == 8);
	FUZZ_CHECK(watch_id == rs_get_u64(f->body));
	rs_buf_init(&out);
	check_same_frame(frame, f, &out,
			 wire_encode_watch_cancel(&out, f->request_id, watch_id));
	rs_buf_free(&out);
}

static void fuzz_term(const uint8_t *frame, const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_term_req m;
	struct rs_buf out;

	if (wire_decode_term(f, &m, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(f->type == WIRE_TERM);
	FUZZ_CHECK(m.cluster_id.len == WIRE_CLUSTER_ID_SIZE);
	FUZZ_CHECK(m.leader_id != 0);
	check_inside(f, m.cluster_id);
	rs_buf_init(&out);
	check_same_frame(frame, f, &out,
			 wire_encode_term(&out, f->request_id, &m));
	rs_buf_free(&out);
}

static void fuzz_member_change(const uint8_t *frame,
			       const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_member_change_req m;
	struct rs_buf out;

	if (wire_decode_member_change(f, &m, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(f->type == WIRE_MEMBER_CHANGE);
	FUZZ_CHECK(m.op >= WIRE_MEMBER_ADD && m.op <= WIRE_MEMBER_REMOVE);
	FUZZ_CHECK(m.node_id != 0);
	FUZZ_CHECK(m.raft_addr.len <= WIRE_MEMBER_ADDR_MAX &&
		   m.client_addr.len <= WIRE_MEMBER_ADDR_MAX);
	check_inside(f, m.raft_addr);
	check_inside(f, m.client_addr);
	rs_buf_init(&out);
	check_same_frame(frame, f, &out,
			 wire_encode_member_change(&out, f->request_id, &m));
	rs_buf_free(&out);
}

/* Walk the read ranges and the mutations of a decoded commit as the
 * server does, then encode the same request again. */
static void fuzz_commit(const uint8_t *frame, const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_commit_req m;
	struct wire_bytes *begins, *ends;
	struct mutation mut;
	struct batch b;
	struct rs_buf out;
	uint32_t n = 0;
	size_t pos = 0;

	if (wire_decode_commit(f, &m, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(f->type == WIRE_COMMIT);
	FUZZ_CHECK(m.n_ranges <= WIRE_READ_RANGES_MAX);
	check_inside(f, m.mutations);
	begins = calloc(m.n_ranges + 1u, sizeof *begins);
	ends = calloc(m.n_ranges + 1u, sizeof *ends);
	FUZZ_CHECK(begins != NULL && ends != NULL);
	while (wire_commit_next_range(&m, &pos, &begins[n], &ends[n])) {
		FUZZ_CHECK(n < m.n_ranges);
		check_inside(f, begins[n]);
		check_inside(f, ends[n]);
		n++;
	}
	FUZZ_CHECK(n == m.n_ranges);
	FUZZ_CHECK(batch_body_validate(m.mutations.p, m.mutations.len,
				       errmsg) == RS_OK);
	batch_init(&b);
	FUZZ_CHECK(batch_load_body(&b, m.mutations.p, m.mutations.len) ==
		   RS_OK);
	pos = 0;
	while (batch_next(&b, &pos, &mut))
		FUZZ_CHECK(pos <= b.body.len);
	rs_buf_init(&out);
	check_same_frame(frame, f, &out,
			 wire_encode_commit(&out, f->request_id,
					    m.read_version, begins, ends, n,
					    &b));
	rs_buf_free(&out);
	batch_free(&b);
	free(begins);
	free(ends);
}

static void fuzz_empty(const uint8_t *frame, const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct rs_buf out;

	if (wire_decode_empty(f, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(f->body_len == 0);
	/* Any type may come without a body; these are the ones sent so. */
	if (f->type != WIRE_GRV && f->type != WIRE_STATUS &&
	    f->type != WIRE_MEMBERS)
		return;
	rs_buf_init(&out);
	check_same_frame(frame, f, &out,
			 wire_encode_simple(&out, f->request_id, f->type));
	rs_buf_free(&out);
}

/* The response head, and a watch event's fields as the client reads
 * them: version u64 | mutations bytes (a batch body). */
static void fuzz_response(const struct wire_frame *f)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_reader r;
	struct wire_bytes message, mutations;
	int status;

	if (wire_decode_response_head(f, &r, &status, &message) != RS_OK)
		return;
	FUZZ_CHECK((f->type & WIRE_RESPONSE) != 0);
	FUZZ_CHECK(status >= 0);
	check_inside(f, message);
	if (f->type != (WIRE_WATCH | WIRE_RESPONSE) ||
	    (f->flags & WIRE_FLAG_MORE) == 0 || status != RS_OK)
		return;
	(void)wire_get_u64(&r);
	mutations = wire_get_bytes(&r, RS_BATCH_SIZE_MAX);
	if (!wire_reader_done(&r))
		return;
	check_inside(f, mutations);
	(void)batch_body_validate(mutations.p, mutations.len, errmsg);
}

static void fuzz_stream(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_frame f;
	size_t pos = 0;

	while (wire_frame_parse(data + pos, size - pos, &f, errmsg) == RS_OK) {
		const uint8_t *frame = data + pos;

		FUZZ_CHECK(f.total_len <= size - pos);
		FUZZ_CHECK(f.total_len == WIRE_HEADER_SIZE + (size_t)f.body_len);
		FUZZ_CHECK(f.body == frame + WIRE_HEADER_SIZE);
		FUZZ_CHECK(wire_type_name(f.type) != NULL);
		fuzz_get(frame, &f);
		fuzz_range(frame, &f);
		fuzz_watch(frame, &f);
		fuzz_watch_cancel(frame, &f);
		fuzz_member_change(frame, &f);
		fuzz_term(frame, &f);
		fuzz_commit(frame, &f);
		fuzz_empty(frame, &f);
		fuzz_response(&f);
		pos += f.total_len;
	}
}

/* Recompute the CRC of every frame whose length fits in the input; true
 * if any byte changed. */
static bool fix_crcs(uint8_t *data, size_t size)
{
	bool changed = false;
	size_t pos = 0;

	while (size - pos >= 8) {
		uint32_t length = rs_get_u32(data + pos);
		uint32_t crc;

		if (length < WIRE_HEADER_SIZE - 4 || length > size - pos - 4)
			break;
		crc = crc32c(data + pos + 8, length - 4);
		changed |= rs_get_u32(data + pos + 4) != crc;
		rs_put_u32(data + pos + 4, crc);
		pos += 4 + (size_t)length;
	}
	return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_with_fixed_crcs(data, size, fuzz_stream, fix_crcs);
	return 0;
}
