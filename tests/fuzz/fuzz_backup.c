/*
 * fuzz_backup: snapshot files (storage/backup.h), as `rsctl snapshot
 * status` and `rsctl snapshot restore` verify them before anything is
 * restored.
 *
 * Invariants: a file that decodes reports its own size; the callback saw
 * exactly the reported key count, in strictly increasing key order, each
 * within the key and value limits, and the entries add up to the reported
 * image size; a callback that stops at the first entry ends the decode
 * with its own code.  A copy with every CRC and the trailer's counts
 * recomputed is decoded too, so the fuzzer reaches the entry parser
 * behind the checksums.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "storage/backup.h"
#include "tests/fuzz/fuzz.h"

struct walk {
	uint8_t last[RS_KEY_SIZE_MAX];
	uint32_t last_len;
	uint64_t keys;
	uint64_t bytes;
	bool stop_first;
};

static int walk_entry(void *ctx, const uint8_t *key, uint32_t key_len,
		      const uint8_t *val, uint32_t val_len)
{
	struct walk *w = ctx;

	(void)val;
	FUZZ_CHECK(key_len >= 1 && key_len <= RS_KEY_SIZE_MAX);
	FUZZ_CHECK(val_len <= RS_VALUE_SIZE_MAX);
	FUZZ_CHECK(w->keys == 0 ||
		   bytes_compare(w->last, w->last_len, key, key_len) < 0);
	memcpy(w->last, key, key_len);
	w->last_len = key_len;
	w->keys++;
	w->bytes += 8 + (uint64_t)key_len + val_len;
	return w->stop_first ? RS_EEXIST : 0;
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct backup_info info;
	struct walk *w = calloc(1, sizeof *w);
	int rv;

	FUZZ_CHECK(w != NULL);
	rv = backup_decode(data, size, &info, walk_entry, w, errmsg);
	if (rv == RS_OK) {
		FUZZ_CHECK(info.file_bytes == size);
		FUZZ_CHECK(info.keys == w->keys);
		FUZZ_CHECK(info.image_bytes == w->bytes);
		FUZZ_CHECK(info.header.format == BACKUP_FORMAT_VERSION);
		memset(w, 0, sizeof *w);
		w->stop_first = true;
		rv = backup_decode(data, size, &info, walk_entry, w, errmsg);
		FUZZ_CHECK(rv == (info.keys > 0 ? RS_EEXIST : RS_OK));
	} else {
		FUZZ_CHECK(rv == RS_ECORRUPT || rv == RS_EFORMAT);
	}
	free(w);
}

static bool fix_u32(uint8_t *p, uint32_t v)
{
	bool changed = rs_get_u32(p) != v;

	rs_put_u32(p, v);
	return changed;
}

static bool fix_u64(uint8_t *p, uint64_t v)
{
	bool changed = rs_get_u64(p) != v;

	rs_put_u64(p, v);
	return changed;
}

/* Header CRC; each chunk's CRC as far as the chunks fit; then the
 * trailer's counts, sizes, version, image CRC and its own CRC. */
static bool fix_crcs(uint8_t *d, size_t size)
{
	size_t pos = BACKUP_HEADER_SIZE;
	uint32_t chunks = 0, image_crc = 0, plen;
	uint64_t keys = 0, bytes = 0;
	bool changed;

	if (size < BACKUP_HEADER_SIZE)
		return false;
	changed = fix_u32(d + 60, crc32c(d, 60));
	while (size - pos >= BACKUP_CHUNK_HEAD_SIZE &&
	       memcmp(d + pos, BACKUP_CHUNK_TAG, 4) == 0) {
		plen = rs_get_u32(d + pos + 4);
		if (plen > size - pos - BACKUP_CHUNK_HEAD_SIZE)
			return changed;
		changed |= fix_u32(d + pos + 12,
				   crc32c_extend(crc32c(d + pos, 12),
						 d + pos + BACKUP_CHUNK_HEAD_SIZE, plen));
		image_crc = crc32c_extend(image_crc, d + pos + BACKUP_CHUNK_HEAD_SIZE,
					  plen);
		keys += rs_get_u32(d + pos + 8);
		bytes += plen;
		chunks++;
		pos += BACKUP_CHUNK_HEAD_SIZE + plen;
	}
	if (size - pos < BACKUP_TRAILER_SIZE)
		return changed;
	changed |= fix_u32(d + pos + 4, chunks);
	changed |= fix_u64(d + pos + 8, keys);
	changed |= fix_u64(d + pos + 16, bytes);
	changed |= fix_u64(d + pos + 24, rs_get_u64(d + 16));
	changed |= fix_u32(d + pos + 32, image_crc);
	changed |= fix_u32(d + pos + 36, crc32c(d + pos, 36));
	return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_with_fixed_crcs(data, size, fuzz_decode, fix_crcs);
	return 0;
}
