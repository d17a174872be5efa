/*
 * fuzz_image: the MVCC image (storage/mvcc.h), the state that checkpoint
 * files and Raft snapshots from peers carry, loaded by mvcc_image_load.
 *
 * Invariants: a load either refuses the image and leaves the index as it
 * was (empty here), or takes it whole: the index then passes mvcc_check,
 * holds the reported key count, and encodes back to exactly the input
 * (an image is canonical: keys in order, no count, no padding).
 */
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "storage/mvcc.h"
#include "tests/fuzz/fuzz.h"

#define IMAGE_VERSION 7u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct mvcc *m = mvcc_create(16);
	struct rs_buf out;
	uint64_t keys = 0;

	FUZZ_CHECK(m != NULL);
	rs_buf_init(&out);
	if (mvcc_image_load(m, IMAGE_VERSION, data, size, &keys, errmsg) ==
	    RS_OK) {
		FUZZ_CHECK(mvcc_check(m, errmsg) == RS_OK);
		FUZZ_CHECK(mvcc_key_count(m) == keys);
		FUZZ_CHECK(mvcc_image_encode(m, IMAGE_VERSION, &out) == RS_OK);
		FUZZ_CHECK(out.len == size);
		FUZZ_CHECK(size == 0 || memcmp(out.data, data, size) == 0);
	} else {
		FUZZ_CHECK(mvcc_key_count(m) == 0);
	}
	rs_buf_free(&out);
	mvcc_destroy(m);
	return 0;
}
