/*
 * fuzz_raftseg: c-raft 0.15 segment files as raftstore checks them before
 * c-raft opens them (raftstore/raftseg.h, raftseg_scan).
 *
 * The first 17 bytes of the input choose how the segment is named: byte
 * 0 bit 0 = open segment, then first_index u64 and end_index u64 (the
 * closed segment's name, swapped if first > end); the rest is the
 * file's content.  Invariants:
 * every offset the scan reports lies inside the content, a clean verdict
 * that needs no repair points at no problem, any other verdict says why,
 * a corrupt segment is never marked for repair, and scanning only the valid prefix [0, valid_end) of an open
 * segment finds it clean (what raftseg_repair relies on).
 */
#include <string.h>

#include "raftstore/lib/buf.h"
#include "raftstore/raftseg.h"
#include "tests/fuzz/fuzz.h"

#define NAME_BYTES 17u

static void scan(const uint8_t *data, size_t len, bool is_open,
		 uint64_t first, uint64_t end, struct raftseg_info *info)
{
	memset(info, 0, sizeof *info);
	info->is_open = is_open;
	info->first_index = first;
	info->end_index = end;
	FUZZ_CHECK(raftseg_scan(data, len, info) == info->verdict);
	FUZZ_CHECK(raftseg_verdict_name(info->verdict) != NULL);
	FUZZ_CHECK(info->size_bytes == len);
	FUZZ_CHECK(info->valid_end <= len);
	FUZZ_CHECK(info->bad_offset <= len);
	FUZZ_CHECK(memchr(info->why, '\0', sizeof info->why) != NULL);
	if (info->verdict == RAFTSEG_CLEAN && !info->needs_repair)
		FUZZ_CHECK(info->bad_offset == len);
	if (info->verdict != RAFTSEG_CLEAN)
		FUZZ_CHECK(info->why[0] != '\0');
	if (info->verdict == RAFTSEG_CORRUPT)
		FUZZ_CHECK(!info->needs_repair);
	if (info->verdict == RAFTSEG_TORN)
		FUZZ_CHECK(is_open && info->needs_repair);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct raftseg_info info, cut;
	bool is_open;
	uint64_t first, end;

	if (size < NAME_BYTES)
		return 0;
	is_open = (data[0] & 1) != 0;
	first = rs_get_u64(data + 1);
	end = rs_get_u64(data + 9);
	if (!is_open && first > end) { /* a name c-raft never lists */
		uint64_t swap = first;

		first = end;
		end = swap;
	}
	data += NAME_BYTES;
	size -= NAME_BYTES;
	scan(data, size, is_open, first, end, &info);
	if (!is_open || info.verdict != RAFTSEG_TORN || info.valid_end <= 8)
		return 0;
	scan(data, info.valid_end, true, first, 0, &cut);
	FUZZ_CHECK(cut.verdict == RAFTSEG_CLEAN && !cut.needs_repair);
	FUZZ_CHECK(cut.batches == info.batches && cut.entries == info.entries);
	return 0;
}
