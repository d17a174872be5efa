/*
 * fuzz_journal: journal segment files (storage/journal.h), header and
 * records, as journal_open reads them at start-up.
 *
 * The input is one segment file.  It is written to a directory of its
 * own, named after the seq its header claims (seg-<seq>.rsj; seq 1 when
 * the header is too short), and opened read-only, once failing on
 * corruption and once in recover mode.  Invariants: replayed versions
 * strictly increase and each batch validates; on success the report's
 * counts agree with what was replayed and its offsets lie inside the
 * file.  A copy with the header CRC and every record CRC recomputed is
 * opened as well.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "storage/journal.h"
#include "tests/fuzz/fuzz.h"

struct replayed {
	uint64_t records;
	uint64_t last_version;
};

static int on_batch(void *ctx, const struct batch *b)
{
	struct replayed *r = ctx;

	FUZZ_CHECK(b->version > r->last_version);
	FUZZ_CHECK(batch_body_validate(b->body.data, b->body.len, NULL) ==
		   RS_OK);
	r->records++;
	r->last_version = b->version;
	return 0;
}

static void open_journal(const char *dir, size_t size, bool recover)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct journal_options opts = {
		.dir = dir, .recover = recover, .read_only = true,
	};
	struct journal_report report;
	struct replayed seen = {0, 0};
	struct journal *j = NULL;
	int rv;

	memset(&report, 0, sizeof report);
	rv = journal_open(&j, NULL, &opts, 0, on_batch, &seen, &report, errmsg);
	if (rv != RS_OK) {
		FUZZ_CHECK(j == NULL);
		return;
	}
	FUZZ_CHECK(j != NULL);
	FUZZ_CHECK(report.segments <= 1);
	FUZZ_CHECK(report.records == seen.records);
	FUZZ_CHECK(seen.records == 0 || report.last_version == seen.last_version);
	FUZZ_CHECK(report.bytes <= size);
	FUZZ_CHECK(!report.torn || report.torn_offset <= size);
	FUZZ_CHECK(!report.torn || report.torn_offset + report.torn_bytes <= size);
	FUZZ_CHECK(journal_last_version(j) >= seen.last_version);
	journal_close_sync(j);
}

static void fuzz_segment(const uint8_t *data, size_t size)
{
	static char last[64];
	uint64_t seq = 1;
	char name[64];
	const char *dir = fuzz_dir();

	if (size >= 24 && rs_get_u64(data + 16) != 0)
		seq = rs_get_u64(data + 16);
	snprintf(name, sizeof name, "seg-%016" PRIx64 ".rsj", seq);
	if (last[0] != '\0' && strcmp(last, name) != 0) {
		char path[4096];

		snprintf(path, sizeof path, "%s/%s", dir, last);
		unlink(path);
	}
	snprintf(last, sizeof last, "%s", name);
	fuzz_dir_file(name, data, size);
	open_journal(dir, size, false);
	/* The read-only open changed nothing: the file is still the input,
	 * so recover mode sees the same bytes. */
	open_journal(dir, size, true);
}

/* Header CRC (CRC-32C of bytes [0, 32) at offset 32), then the records. */
static bool fix_crcs(uint8_t *data, size_t size)
{
	bool changed = false;

	if (size < JOURNAL_HEADER_SIZE)
		return false;
	changed = rs_get_u32(data + 32) != crc32c(data, 32);
	rs_put_u32(data + 32, crc32c(data, 32));
	changed |= fuzz_fix_records(data + JOURNAL_HEADER_SIZE,
				    size - JOURNAL_HEADER_SIZE);
	return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_with_fixed_crcs(data, size, fuzz_segment, fix_crcs);
	return 0;
}
