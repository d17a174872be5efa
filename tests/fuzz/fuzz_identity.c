/*
 * fuzz_identity: the identity file of a data dir (coordinator/identity.h),
 * which raftstored reads at every start, before it trusts anything else
 * in the dir.
 *
 * The input is the whole file.  It is decoded by identity_decode and read
 * from a directory of its own by identity_read (the path raftstored
 * takes), each as it is and again with its checksum recomputed, so
 * mutations reach the version, flags and ids behind it.  Invariants, from
 * identity.h: both agree (same code, same identity); a refused file says
 * why, with one of the codes the header names; an accepted one is exactly
 * IDENTITY_SIZE bytes and encodes back to exactly the input; its cluster
 * ID prints as 32 lowercase hex digits when known, as "" when not.
 */
#include <stdlib.h>
#include <string.h>

#include "coordinator/identity.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "tests/fuzz/fuzz.h"

#define IDENTITY_CRC_OFFSET (IDENTITY_SIZE - 4)

static void check_hex(const struct identity *id)
{
	char hex[IDENTITY_CLUSTER_HEX_SIZE];
	size_t n;

	memset(hex, 'x', sizeof hex);
	identity_cluster_hex(id, hex);
	n = strnlen(hex, sizeof hex);
	FUZZ_CHECK(n < sizeof hex);
	if (!identity_cluster_known(id)) {
		FUZZ_CHECK(n == 0);
		return;
	}
	FUZZ_CHECK(n == 2 * IDENTITY_CLUSTER_ID_SIZE);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((hex[i] >= '0' && hex[i] <= '9') ||
			   (hex[i] >= 'a' && hex[i] <= 'f'));
}

static void decode(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE] = "", read_errmsg[RS_ERRMSG_SIZE] = "";
	struct identity id, from_file;
	uint8_t again[IDENTITY_SIZE];
	int rv, read_rv;

	memset(&id, 0, sizeof id);
	memset(&from_file, 0, sizeof from_file);
	rv = identity_decode(data, size, &id, errmsg);
	fuzz_dir_file(IDENTITY_FILE, data, size);
	read_rv = identity_read(fuzz_dir(), &from_file, read_errmsg);
	FUZZ_CHECK(read_rv == rv);
	if (rv != RS_OK) {
		FUZZ_CHECK(rv == RS_ECORRUPT || rv == RS_EFORMAT);
		FUZZ_CHECK(errmsg[0] != '\0');
		FUZZ_CHECK(strstr(read_errmsg, IDENTITY_FILE) != NULL);
		return;
	}
	FUZZ_CHECK(size == IDENTITY_SIZE);
	FUZZ_CHECK(from_file.node_id == id.node_id);
	FUZZ_CHECK(memcmp(from_file.cluster_id, id.cluster_id,
			  IDENTITY_CLUSTER_ID_SIZE) == 0);
	identity_encode(&id, again);
	FUZZ_CHECK(memcmp(again, data, IDENTITY_SIZE) == 0);
	check_hex(&id);
}

static bool fix_crc(uint8_t *data, size_t size)
{
	uint32_t crc;

	if (size != IDENTITY_SIZE)
		return false;
	crc = crc32c(data, IDENTITY_CRC_OFFSET);
	if (rs_get_u32(data + IDENTITY_CRC_OFFSET) == crc)
		return false;
	rs_put_u32(data + IDENTITY_CRC_OFFSET, crc);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_with_fixed_crcs(data, size, decode, fix_crc);
	return 0;
}
