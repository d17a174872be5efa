/*
 * journal: the append-only log of applied batches.
 *
 * The journal is a directory of segment files, seg-<seq:016x>.rsj, each a
 * header followed by records (record.h).  Versions strictly increase across
 * the whole journal.  Segments chain: each header records the last version of
 * the segment before it, so a missing segment is detected on open.
 *
 * Segment header (40 bytes, little-endian):
 *
 *   offset 0   u8[8] magic          "RSJRNL\r\n"
 *   offset 8   u32   format_version JOURNAL_FORMAT_VERSION (1)
 *   offset 12  u32   flags          0
 *   offset 16  u64   seq            segment sequence number (file name)
 *   offset 24  u64   prev_version   last version of the previous segment;
 *                                   for the first segment of a new journal,
 *                                   the from_version it was opened with
 *                                   (0 for a fresh store)
 *   offset 32  u32   crc            CRC-32C of bytes [0, 32)
 *   offset 36  u32   reserved       0
 *
 * Appends (journal_append) are asynchronous and group-committed: requests
 * queue on the event loop; one thread-pool job writes every queued record
 * with one pwrite and, under JOURNAL_SYNC_FSYNC, one fsync (under
 * JOURNAL_SYNC_NONE, a start of write-back each JOURNAL_WRITEBACK_BYTES),
 * then completes all of them in order.  Requests that arrive meanwhile form the next group.
 * Nothing on the loop thread blocks on the disk.  A group is never split:
 * before a group that would push the active segment past segment_size_max,
 * the worker makes it durable (fsync under JOURNAL_SYNC_NONE) and starts a
 * new one (header, fsync, fsync of the directory), so a crash never keeps a
 * segment without the end of the one before it, and a segment exceeds the
 * limit by at most one group.
 *
 * Failure is fail-stop: after a write, fsync or rotation error the journal is
 * "failed"; the failing group and every later append complete with that
 * error (RS_EIO, RS_ENOSPC) and the caller must close and reopen.  Reopening
 * finds the last fully written record (a partial write is a torn tail).
 *
 * Open verifies every record (see journal_open).  Thread model: one loop.
 */
#ifndef RS_JOURNAL_H
#define RS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/rs_error.h"

#define JOURNAL_FORMAT_VERSION 1u
#define JOURNAL_HEADER_SIZE 40u
#define JOURNAL_MAGIC "RSJRNL\r\n"
#define JOURNAL_SEGMENT_SIZE_DEFAULT (64u * 1024u * 1024u)

/* Under JOURNAL_SYNC_NONE, each time this much more of the active segment
 * is written the worker starts its write-back to disk, without waiting
 * for it (sync_file_range).  Without it a segment's data stayed in the
 * page cache until the rotation's fsync (or the kernel's 30 s expiry) and
 * went to the disk at once: 55-60 MB in one burst, on the disk every Raft
 * log append waits on (a 330 ms commit gap in docs/architecture.md's
 * measurement).  Durability is unchanged: that fsync still comes. */
#define JOURNAL_WRITEBACK_BYTES (1024u * 1024u)

enum journal_sync {
	JOURNAL_SYNC_FSYNC = 0, /* durable when the callback fires (default) */
	JOURNAL_SYNC_NONE,      /* written to the OS only; another source of
				   truth (the Raft log) covers crashes */
};

struct journal_options {
	const char *dir;           /* the journal directory; created if absent */
	uint64_t segment_size_max; /* rotate past this; 0 = default */
	enum journal_sync sync;
	bool recover;   /* truncate at the first bad record instead of failing
			   with RS_ECORRUPT (RS_EFORMAT, RS_EGAP still fail) */
	bool read_only; /* never change a file: no truncation, no appends;
			   torn/recovered are then reported as would-be */
};

/* What open found and did.  Filled even when open fails, as far as it got. */
struct journal_report {
	unsigned segments;
	uint64_t records;
	uint64_t first_version; /* 0 if empty */
	uint64_t last_version;  /* 0 if empty */
	uint64_t bytes;         /* total bytes of valid records and headers */
	/* A torn tail: the last segment ended in a partial or zero-padded
	 * record, or its header was short or all zero (the file is then
	 * deleted; torn_offset 0).  torn_offset is where valid data ends.
	 * File names here are names within opts->dir. */
	bool torn;
	char torn_file[256];
	uint64_t torn_offset;
	uint64_t torn_bytes; /* bytes cut (or, read-only, that would be) */
	/* recover mode: what was dropped after the first bad record. */
	bool recovered;
	uint64_t recovered_bytes;
	unsigned recovered_segments; /* whole segments deleted */
	/* The first problem found, for errors: file, offset, version of the
	 * last good record before it. */
	char bad_file[256];
	uint64_t bad_offset;
	uint64_t bad_after_version;
};

/* Called for every valid batch with version > from_version, in order.  The
 * batch is only valid during the call.  A non-zero return stops the open
 * with that code.  If the open fails, batches before the problem have
 * already been replayed: the caller discards them. */
typedef int (*journal_replay_fn)(void *ctx, const struct batch *b);

struct journal;

/*
 * Open (or create) the journal and replay it.  Blocks: call at start-up.
 * Errors, with errmsg naming file, offset and version:
 *   RS_ECORRUPT  a bad record that is not a torn tail (unless opts->recover);
 *   RS_EFORMAT   a segment header with an unknown format version;
 *   RS_EGAP      the segment chain is broken;
 *   RS_EIO/...   file system errors.
 * Torn tail (last segment only): a record cut short at EOF, or a bad record
 * followed only by zeros, provided no valid record (version above the last
 * good one) starts anywhere after it.  It is not an error: it is truncated
 * (unless read_only) and reported.  Every record is decoded, not only those
 * replayed.  A writable open fsyncs the active segment, so what was
 * replayed is durable even if an earlier process ran under
 * JOURNAL_SYNC_NONE.  loop may be NULL for read-only use (no appends then).
 * On success errmsg is empty; *out is NULL on failure.
 */
int journal_open(struct journal **out, uv_loop_t *loop,
		 const struct journal_options *opts, uint64_t from_version,
		 journal_replay_fn replay, void *ctx,
		 struct journal_report *report, char *errmsg);

struct journal_append_req;
typedef void (*journal_append_cb)(struct journal_append_req *req, int status);

/* Caller-owned request; must stay alive until its callback. */
struct journal_append_req {
	void *data; /* for the caller */
	/* private */
	journal_append_cb cb;
	struct journal_append_req *next;
	uint64_t version;
	int status;
};

/*
 * Queue batch b for appending.  b->version must exceed every version appended
 * before (RS_EVERSION otherwise); b is encoded at once and may be freed on
 * return.  The callback runs on the loop once the group holding it is written
 * (and fsynced, under JOURNAL_SYNC_FSYNC), with 0 or the journal's failure.
 * A synchronous error return means the callback will not run.
 */
int journal_append(struct journal *j, struct journal_append_req *req,
		   const struct batch *b, journal_append_cb cb);

/* Last version accepted by journal_append (or found on open: the last
 * record's, else the chain's base, the first segment's prev_version). */
uint64_t journal_last_version(const struct journal *j);

/* What made the journal fail ("" if it has not): the file, the operation
 * and the system's message.  Owned by j. */
const char *journal_errmsg(const struct journal *j);

/*
 * Retention: delete segments whose records are all <= covered_version (a
 * checkpoint exists at or after it), keeping the newest `keep` of those.
 * The active segment is never deleted.  Runs synchronously: unlinks only,
 * oldest first, so an interrupted retention leaves an unbroken chain.
 */
int journal_retain(struct journal *j, uint64_t covered_version, unsigned keep,
		   char *errmsg);

/* Number of segment files, for status and tests. */
unsigned journal_segment_count(const struct journal *j);

/* Bytes whose write-back the journal started early (JOURNAL_WRITEBACK_BYTES;
 * completed groups only), for tests. */
uint64_t journal_writeback_bytes(const struct journal *j);

/* Write every append accepted so far (the group in flight and the queued
 * ones, as one more group), then free.  cb (may be NULL) runs on the loop
 * when done.  Appends after this call are refused with RS_ECLOSED. */
void journal_close(struct journal *j, void (*cb)(void *arg), void *arg);

/* Read-only journals (loop == NULL) close synchronously with this.  Also
 * valid for a writable journal with no append queued or in flight. */
void journal_close_sync(struct journal *j);

/* ---- reading without opening (rsctl log) ---- */

struct journal_segment_info {
	char name[64];
	uint64_t seq;
	uint64_t prev_version; /* 0 if the header is short or invalid */
	uint64_t size;
};

/* List segment files in seq order (malloc'ed array; caller frees). */
int journal_list_segments(const char *dir, struct journal_segment_info **segs,
			  unsigned *n, char *errmsg);

#endif /* RS_JOURNAL_H */
