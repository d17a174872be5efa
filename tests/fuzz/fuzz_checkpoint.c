/*
 * fuzz_checkpoint: checkpoint files (storage/checkpoint.h), as
 * checkpoint_read verifies and decodes them at start-up.
 *
 * checkpoint_read only reads files, so the input goes into an in-memory
 * file (fuzz_file) and is read by its path.  Invariants: a file that
 * verifies reports its own size and the image size it decoded; a read
 * without an image returns the same verdict and header as one with it.
 * A copy with the header, chunk and trailer CRCs recomputed is read too,
 * which lets the fuzzer reach the LZ4 chunks behind the checksums.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "storage/checkpoint.h"
#include "tests/fuzz/fuzz.h"

#define CHUNK_HEADER_SIZE 12u
#define TRAILER_SIZE 8u

static void fuzz_read(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct checkpoint_info info, verify_info;
	struct rs_buf image;
	const char *path = fuzz_file(data, size);
	int rv, verified;

	rs_buf_init(&image);
	memset(&info, 0, sizeof info);
	memset(&verify_info, 0, sizeof verify_info);
	rv = checkpoint_read(path, &info, &image, errmsg);
	verified = checkpoint_read(path, &verify_info, NULL, errmsg);
	FUZZ_CHECK(rv == verified);
	if (rv == RS_OK) {
		FUZZ_CHECK(info.file_size == size);
		FUZZ_CHECK(info.raw_size == image.len);
		FUZZ_CHECK(verify_info.raw_size == image.len);
		FUZZ_CHECK(info.version == verify_info.version &&
			   info.epoch == verify_info.epoch &&
			   info.key_count == verify_info.key_count &&
			   info.chunk_count == verify_info.chunk_count);
		FUZZ_CHECK(image.len <= (uint64_t)info.chunk_count *
						CHECKPOINT_CHUNK_RAW);
	} else {
		FUZZ_CHECK(image.len == 0);
	}
	rs_buf_free(&image);
}

static bool fix_u32(uint8_t *p, uint32_t v)
{
	bool changed = rs_get_u32(p) != v;

	rs_put_u32(p, v);
	return changed;
}

/* Header CRC, then each declared chunk's CRC as far as the chunks fit,
 * then the trailer's CRC over everything before it. */
static bool fix_crcs(uint8_t *data, size_t size)
{
	bool changed;
	uint32_t chunks;
	size_t pos = CHECKPOINT_HEADER_SIZE;

	if (size < CHECKPOINT_HEADER_SIZE)
		return false;
	changed = fix_u32(data + 44, crc32c(data, 44));
	chunks = rs_get_u32(data + 40);
	for (uint32_t i = 0; i < chunks && size - pos >= CHUNK_HEADER_SIZE; i++) {
		uint32_t comp_len = rs_get_u32(data + pos + 4);

		if (comp_len > size - pos - CHUNK_HEADER_SIZE)
			return changed;
		changed |= fix_u32(data + pos + 8,
				   crc32c(data + pos + CHUNK_HEADER_SIZE,
					  comp_len));
		pos += CHUNK_HEADER_SIZE + (size_t)comp_len;
	}
	if (size - pos >= TRAILER_SIZE)
		changed |= fix_u32(data + pos + 4, crc32c(data, pos + 4));
	return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_with_fixed_crcs(data, size, fuzz_read, fix_crcs);
	return 0;
}
