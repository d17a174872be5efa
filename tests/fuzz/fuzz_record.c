/*
 * fuzz_record: the journal's record codec (storage/record.h).
 *
 * The input is a run of records as a segment holds them after its
 * header.  Each is parsed and decoded into a batch (inflating the LZ4
 * form) until one is torn or refused.  Invariants: a parsed record lies
 * inside the input; its batch body validates; encoding the decoded batch
 * gives a record that parses and decodes to the same version, epoch and
 * body.  A copy with every record's masked CRC recomputed is decoded too.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "storage/record.h"
#include "tests/fuzz/fuzz.h"

static void check_reencode(const struct batch *b)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct record_view v;
	struct batch again;
	struct rs_buf out;

	rs_buf_init(&out);
	batch_init(&again);
	FUZZ_CHECK(record_encode_batch(b, &out) == RS_OK);
	FUZZ_CHECK(record_parse(out.data, out.len, &v, errmsg) == RS_OK);
	FUZZ_CHECK(v.total_len == out.len);
	FUZZ_CHECK(record_decode_batch(&v, &again, errmsg) == RS_OK);
	FUZZ_CHECK(again.version == b->version && again.epoch == b->epoch);
	FUZZ_CHECK(again.count == b->count);
	FUZZ_CHECK(again.body.len == b->body.len);
	FUZZ_CHECK(memcmp(again.body.data, b->body.data, b->body.len) == 0);
	batch_free(&again);
	rs_buf_free(&out);
}

static void fuzz_records(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct record_view v;
	struct batch b;
	size_t pos = 0;

	batch_init(&b);
	while (record_parse(data + pos, size - pos, &v, errmsg) == RS_OK) {
		FUZZ_CHECK(v.total_len == RECORD_HEADER_SIZE + (size_t)v.payload_len);
		FUZZ_CHECK(v.total_len <= size - pos);
		FUZZ_CHECK(v.payload == data + pos + RECORD_HEADER_SIZE);
		if (record_decode_batch(&v, &b, errmsg) == RS_OK) {
			FUZZ_CHECK(batch_body_validate(b.body.data, b.body.len,
						       errmsg) == RS_OK);
			check_reencode(&b);
		}
		pos += v.total_len;
	}
	batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_with_fixed_crcs(data, size, fuzz_records, fuzz_fix_records);
	return 0;
}
