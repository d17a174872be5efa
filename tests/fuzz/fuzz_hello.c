/*
 * fuzz_hello: the Raft connection HELLO and its replies
 * (raftstore/raftguard.h, raftguard_msg_decode), the first bytes any
 * peer that reaches the Raft port gets decoded.
 *
 * The guard reads exactly RAFTGUARD_MSG_SIZE bytes before it decodes, so
 * the input is those bytes: a shorter input never reaches the decoder and
 * is skipped, and bytes after them are c-raft's, not the guard's.  Each is
 * decoded as it is and again with its CRC recomputed, so mutations reach
 * the version, kind and ids behind the checksum.  Invariants, from
 * raftguard.h: a refused message leaves the output untouched and says
 * why, with one of the codes the header names; an accepted one has a known
 * kind and encodes back to exactly the bytes decoded.
 */
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftguard.h"
#include "tests/fuzz/fuzz.h"

#define HELLO_CRC_OFFSET (RAFTGUARD_MSG_SIZE - 4)

static void decode(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint8_t again[RAFTGUARD_MSG_SIZE];
	struct raftguard_msg m, untouched;
	int rv;

	FUZZ_CHECK(size == RAFTGUARD_MSG_SIZE);
	memset(&m, 0xa5, sizeof m);
	untouched = m;
	rv = raftguard_msg_decode(data, &m, errmsg);
	if (rv != RS_OK) {
		FUZZ_CHECK(rv == RS_ECORRUPT || rv == RS_EFORMAT ||
			   rv == RS_EPROTO);
		FUZZ_CHECK(errmsg[0] != '\0');
		FUZZ_CHECK(memcmp(&m, &untouched, sizeof m) == 0);
		return;
	}
	FUZZ_CHECK(m.kind >= RAFTGUARD_KIND_HELLO &&
		   m.kind <= RAFTGUARD_KIND_REFUSED);
	raftguard_msg_encode(&m, again);
	FUZZ_CHECK(memcmp(again, data, RAFTGUARD_MSG_SIZE) == 0);
}

static bool fix_crc(uint8_t *data, size_t size)
{
	uint32_t crc = crc32c(data, HELLO_CRC_OFFSET);

	FUZZ_CHECK(size == RAFTGUARD_MSG_SIZE);
	if (rs_get_u32(data + HELLO_CRC_OFFSET) == crc)
		return false;
	rs_put_u32(data + HELLO_CRC_OFFSET, crc);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg;

	if (size < RAFTGUARD_MSG_SIZE)
		return 0;
	/* A block of exactly the message, so a read past it is caught. */
	msg = fuzz_dup(data, RAFTGUARD_MSG_SIZE);
	fuzz_with_fixed_crcs(msg, RAFTGUARD_MSG_SIZE, decode, fix_crc);
	free(msg);
	return 0;
}
