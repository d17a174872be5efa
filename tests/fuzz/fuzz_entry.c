/*
 * fuzz_entry: a Raft command entry's payload as the state machine applies
 * it (raftstore/fsm.h, fsm_entry_decode): format and kind bytes, one
 * journal record, zero padding.  Every follower decodes what its leader
 * replicated, and every node what its own Raft log replays.
 *
 * The input is one payload.  It is decoded as it is and again with its
 * record's checksum recomputed, so mutations reach the batch behind it.
 * Invariants, from fsm.h: a refused payload says why; an accepted one has
 * a known kind, at most 7 bytes of padding after its record, a batch
 * whose body validates, and encodes (fsm_entry_encode) to a payload of a
 * multiple of 8 bytes that decodes to the same kind, version, epoch and
 * mutations.
 */
#include <stdlib.h>
#include <string.h>

#include "raftstore/fsm.h"
#include "raftstore/lib/batch.h"
#include "raftstore/lib/rs_error.h"
#include "storage/record.h"
#include "tests/fuzz/fuzz.h"

static void check_reencode(const struct batch *b, uint8_t kind)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct raft_buffer out = {NULL, 0};
	struct batch again;
	uint8_t kind_again = 0;

	FUZZ_CHECK(fsm_entry_encode(b, kind, &out) == RS_OK);
	FUZZ_CHECK(out.len % 8 == 0);
	batch_init(&again);
	FUZZ_CHECK(fsm_entry_decode(&out, &again, &kind_again, errmsg) ==
		   RS_OK);
	FUZZ_CHECK(kind_again == kind);
	FUZZ_CHECK(again.version == b->version && again.epoch == b->epoch);
	FUZZ_CHECK(again.count == b->count);
	FUZZ_CHECK(again.body.len == b->body.len &&
		   memcmp(again.body.data, b->body.data, b->body.len) == 0);
	batch_free(&again);
	raft_free(out.base);
}

static void decode(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint8_t *copy = fuzz_dup(data, size);
	struct raft_buffer buf = {copy, size};
	struct record_view v;
	struct batch b;
	uint8_t kind = 0;
	int rv;

	batch_init(&b);
	rv = fsm_entry_decode(&buf, &b, &kind, errmsg);
	if (rv != RS_OK) {
		FUZZ_CHECK(errmsg[0] != '\0');
		goto out;
	}
	FUZZ_CHECK(data[0] == FSM_ENTRY_FORMAT);
	FUZZ_CHECK(kind == FSM_ENTRY_BATCH || kind == FSM_ENTRY_EPOCH);
	FUZZ_CHECK(record_parse(data + 2, size - 2, &v, errmsg) == RS_OK);
	FUZZ_CHECK(size - 2 - v.total_len < 8);
	FUZZ_CHECK(batch_body_validate(b.body.data, b.body.len, NULL) ==
		   RS_OK);
	check_reencode(&b, kind);
out:
	batch_free(&b);
	free(copy);
}

static bool fix_record(uint8_t *data, size_t size)
{
	return size > 2 && fuzz_fix_records(data + 2, size - 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_with_fixed_crcs(data, size, decode, fix_record);
	return 0;
}
