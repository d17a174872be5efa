/*
 * raftseg: check c-raft's segment files before c-raft opens them, and cut
 * a torn tail of an open segment so that c-raft 0.15 can load it.
 *
 * Why: c-raft 0.15 (Debian's libraft 0.15.0) mishandles damaged open
 * segments. A file cut inside a batch makes raft_start free the segment's
 * buffer twice (SIGABRT, "double free or corruption"). A batch that fails its
 * checksum is dropped silently, together with every batch after it, even
 * when valid, acknowledged entries follow. And with auto-recovery on (0.15's
 * default) a corrupt closed segment, or an open segment with a bad format
 * field, is renamed away with every open segment after it, also silently.
 *
 * Guarantees:
 *  - raftseg_check_dir() only reads (O_RDONLY) and changes nothing.
 *  - It applies the project's recovery rule (docs/storage-format.md,
 *    "c-raft's segments, as raftstore checks them"): a tail that a crash
 *    could have left is TORN and may be cut; anything else is CORRUPT and is
 *    never cut. A tail is torn only if the bad batch is the last thing in
 *    the file (zeros after the end it claims, or the end of the file) and
 *    cutting it drops no batch that still passes its checksums.
 *  - raftseg_repair() changes only the open segments the report marks
 *    needs_repair, only by truncating each at the end of its last valid
 *    batch (or to 0 bytes when it has none), then fsyncs each file and the
 *    directory and reads the files back to verify them.
 *  - After a check that returns RS_OK, or a repair that returns RS_OK, every
 *    open segment is one that c-raft 0.15 loads completely: it ends at the
 *    end of the file exactly after a valid batch, or with at least 16 zero
 *    bytes after one (c-raft then sees an entry count of 0 and stops there).
 *
 * Format (c-raft 0.15.0, src/uv_segment.c and src/uv_encoding.c; learned
 * from that source and checked on files written by the library). All
 * integers are little-endian.
 *
 * File names, in the raft directory:
 *   "%016llu-%016llu"  a closed segment: the indexes of its first and last
 *                      entries, both in the name.
 *   "open-%llu"        an open segment: a counter. c-raft loads the closed
 *                      segments by index, then the open ones by counter,
 *                      and an open segment's first index is one past the
 *                      previous segment's last entry (past the snapshot's
 *                      index, or 1, when it comes first).
 *
 * Segment file:
 *   offset  size
 *   0       8     format version: RAFTSEG_FORMAT (1). 0 in an open segment
 *                 that c-raft created and preallocated but never wrote.
 *   8       ...   batches, back to back.
 *
 * Batch (n entries), at offset b (a multiple of 8 while every payload is
 * padded to 8 bytes, as raftstore's are):
 *   b+0     4     crc_header: checksum of bytes [b+8, b+16+16n)
 *   b+4     4     crc_data: checksum of the data section
 *   b+8     8     n, the entry count: 1 <= n <= RAFTSEG_ENTRIES_MAX
 *   b+16    16*n  entry headers, one per entry:
 *                   +0   8  term
 *                   +8   1  type: 1 command, 2 barrier, 3 configuration
 *                   +9   3  unused (the writer does not clear them)
 *                   +12  4  len: the payload's size in bytes
 *   b+16+16n  D   data: the payloads back to back, D = the sum of the lens.
 *                 The 0.15 reader skips no padding between payloads, so an
 *                 entry whose len is not a multiple of 8 breaks every batch
 *                 after it (raftstore pads every entry; see architecture.md
 *                 "c-raft 0.15 guards"). This module reads as c-raft does.
 *   The next batch starts at b + 16 + 16n + D.
 *
 * End of a segment:
 *   closed  the file ends exactly after its last batch, and it holds
 *           last - first + 1 entries.
 *   open    c-raft preallocates it with zeros and writes whole blocks, so
 *           its last batch is followed by zeros, or by the end of the file
 *           (after a crash that cut it, or a previous repair). c-raft reads
 *           16 bytes of preamble (the two checksums and n) at each batch
 *           boundary: fewer than 16 bytes left, even zeros, is a "short
 *           read" error for it (and a double free when a batch preceded).
 *
 * Checksum: CRC-32 with polynomial 0x04C11DB7, processed most significant
 * bit first (not reflected), initial value 0 and no final XOR (libiberty's
 * crc32 as c-raft calls it). Check value: crc("123456789") = 0x89A1897F.
 */
#ifndef RS_RAFTSEG_H
#define RS_RAFTSEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The c-raft release whose format this module reads. */
#define RAFTSEG_CRAFT_VERSION "0.15.0"
/* The segment format version c-raft 0.15 writes (its UV__DISK_FORMAT). */
#define RAFTSEG_FORMAT 1
#define RAFTSEG_FORMAT_SIZE 8
/* crc_header, crc_data and n. */
#define RAFTSEG_PREAMBLE_SIZE 16
#define RAFTSEG_ENTRY_HEADER_SIZE 16
/* c-raft's bound on n: its largest segment (8 MiB) over 32 bytes. */
#define RAFTSEG_SEGMENT_SIZE_MAX (8u * 1024 * 1024)
#define RAFTSEG_ENTRIES_MAX (RAFTSEG_SEGMENT_SIZE_MAX / 32)

#define RAFTSEG_NAME_SIZE 64
#define RAFTSEG_WHY_SIZE 200

enum raftseg_verdict {
	RAFTSEG_CLEAN = 0, /* valid batches, then EOF or zeros */
	RAFTSEG_TORN,	   /* a tail a crash could leave: may be cut */
	RAFTSEG_CORRUPT	   /* anything else: never cut */
};

/* What the check found in one segment file. */
struct raftseg_info {
	char name[RAFTSEG_NAME_SIZE]; /* file name in the directory */
	bool is_open;
	uint64_t counter;     /* open-N: N */
	uint64_t first_index; /* index of the first entry; 0 = not known */
	uint64_t end_index;   /* closed: from the name; open: of the last
				 valid entry (first_index - 1 if none) */
	uint64_t size_bytes;  /* file size when checked */

	enum raftseg_verdict verdict;
	bool unused;	   /* open, never written: empty or all zeros */
	bool needs_repair; /* open, and c-raft 0.15 cannot load it as it is:
			      torn, or clean with a short zero tail */
	uint32_t batches;  /* valid batches, from the start */
	uint64_t entries;  /* entries in them */
	uint64_t valid_end;  /* byte after the last valid batch (8 when no
				batch; 0 when the format field is not valid) */
	uint64_t bad_offset; /* where the problem starts; size_bytes if none */
	uint32_t bad_batch;  /* 1-based number of the batch there */
	uint64_t bad_index;  /* index of the first entry not valid there
				(first_index + entries); 0 if not known */
	char why[RAFTSEG_WHY_SIZE]; /* what is wrong; "" when clean */

	/* Set by raftseg_repair, which leaves verdict CLEAN, needs_repair
	 * false and size_bytes the new size, but bad_offset, bad_batch,
	 * bad_index and why still saying what was cut. */
	bool repaired;
	uint64_t cut_bytes; /* bytes the repair cut */
};

struct raftseg_report {
	struct raftseg_info *segs; /* closed by index, then open by counter */
	size_t n;
	enum raftseg_verdict verdict; /* the worst of all segments */
	size_t repairs;		      /* segments with needs_repair */
	uint64_t snapshot_index;      /* the newest snapshot's, 0 if none */
};

/*
 * Check every segment file in the raft directory dir, reading only.
 * Blocks (reads every segment; call it before raft_start, off any loop).
 *
 * Returns:
 *   RS_OK       every segment is clean and c-raft 0.15 loads it as it is;
 *   RS_ETORN    no segment is corrupt, but rep->repairs open segments need
 *               raftseg_repair() first; errmsg names the first one;
 *   RS_ECORRUPT a segment is corrupt; errmsg names the first one: file,
 *               byte offset, entry index, batch and reason;
 *   RS_EIO, RS_ENOMEM, ... the check could not run (errmsg says why).
 * For the first three rep is filled and the caller frees it with
 * raftseg_report_free(); otherwise rep is left empty. errmsg is
 * RS_ERRMSG_SIZE bytes and may be NULL.
 */
int raftseg_check_dir(const char *dir, struct raftseg_report *rep,
		      char *errmsg);

/*
 * Cut the torn tails that raftseg_check_dir() found in dir (every segment
 * with needs_repair): truncate each such open segment at valid_end (to 0
 * bytes when it has no valid batch, since c-raft 0.15 refuses an open
 * segment that holds only its format field), fsync it, then fsync dir,
 * then read each one back and verify it is clean. Updates rep (repaired,
 * cut_bytes, size_bytes, verdict, repairs). Blocks.
 *
 * Refuses, touching nothing, a report with a corrupt segment (RS_ECORRUPT)
 * and a file whose size changed since the check (RS_EINVAL). An I/O error
 * (RS_EIO, RS_ENOSPC, ...) may leave some segments cut and others not: a
 * new check then tells which. RS_OK when nothing needed a repair.
 */
int raftseg_repair(const char *dir, struct raftseg_report *rep,
		   char *errmsg);

/* Free what a check put in rep and empty it; safe on an empty report. */
void raftseg_report_free(struct raftseg_report *rep);

/*
 * Check one segment's content, data[0..len), in memory. Reads
 * info->is_open, info->first_index and, for a closed segment,
 * info->end_index (an entry count check when first_index != 0); fills
 * every field from verdict to why, and size_bytes. Pure: no I/O, no
 * allocation. Returns info->verdict.
 */
enum raftseg_verdict raftseg_scan(const uint8_t *data, size_t len,
				  struct raftseg_info *info);

/* "clean", "torn" or "corrupt". */
const char *raftseg_verdict_name(enum raftseg_verdict v);

/* c-raft 0.15's segment checksum (see above), continuing from crc. */
uint32_t raftseg_crc32(uint32_t crc, const void *p, size_t n);

#endif /* RS_RAFTSEG_H */
