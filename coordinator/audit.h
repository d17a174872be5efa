/*
 * audit: the node's append-only log of control-plane events (NDJSON).
 *
 * Each node appends one JSON object per line to files in <data-dir>/audit/:
 *
 *   audit-<file:08d>.ndjson   file numbers count up from 1 by one per
 *                             rotation; the highest is being appended to
 *
 * A line (format version AUDIT_FORMAT_VERSION, 1) is, in this member order:
 *
 *   {"ts":"2026-11-22T05:00:00.123Z","node":1,"seq":42,"event":"election_won"
 *    ,<extra members>}\n
 *
 *   ts     UTC wall-clock time of audit_event(), milliseconds, always 24
 *          characters (YYYY-MM-DDTHH:MM:SS.mmmZ)
 *   node   the node id given to audit_open
 *   seq    1, 2, 3, ...: per node, strictly increasing by one across files
 *          and restarts (open resumes after the last valid line)
 *   event  [a-z0-9_]{1,64}; the catalogue is below and in docs/audit.md
 *   extra  members chosen by the event, in the order it set them; the
 *          names ts, node, seq, event and v are reserved.  A later format
 *          would add "v":2; a reader meeting a "v" other than 1 refuses
 *          the line.
 *
 * node and seq are JSON integers, so at most 2^63-1 (jansson's range;
 * audit_open refuses a larger node id).  A line is at most AUDIT_LINE_MAX
 * bytes, holds no NUL, CR or LF before its final LF, and is ASCII: it is
 * written by jansson (raftstore/lib/json.h), compact, with the control
 * characters below 0x20 and every code point >= 0x80 escaped (\u00E9),
 * so a byte string member (rs_json_set_bytes: byte N is U+00NN) reads
 * back exactly.
 * There is no checksum: validity is "one complete, well-formed JSON object
 * with the fields above", so a flipped bit inside a string goes unseen.
 *
 * Guarantees:
 *  - Append-only.  A written line is never changed; the only cuts are a torn
 *    tail at open (below) and the deletion of whole old files (retention).
 *  - Batched durability.  audit_event writes the line into memory; a timer
 *    (fsync_delay_ms) hands everything queued to the libuv thread pool,
 *    which writes it with one pwrite and one fsync.  The loop never blocks
 *    on the disk.  audit_close writes and fsyncs whatever is queued.
 *  - Rotation by size: before a batch that would take a non-empty file past
 *    rotate_size_bytes, the worker starts the next file (created, directory
 *    fsynced).  A batch is never split, so only a single batch larger than
 *    the limit makes a file exceed it.  Every batch is fsynced, so a file
 *    is complete before the next one exists.  Retention then deletes the
 *    oldest files beyond keep_files.
 *  - Recovery at open: the last line of the newest file, if it lacks its LF
 *    or holds a NUL (pages of a write that never reached the disk), is a
 *    torn write: it is truncated, reported (audit_open_report, the log
 *    callback) and recorded as an "audit_tail_truncated" event.  A bad line
 *    anywhere else is corruption: left as it is, warned about, and skipped
 *    by readers.
 *  - Fail-stop: after a write, fsync or rotation error the log is "failed":
 *    the error is logged and counted, audit_failed() returns it, queued and
 *    later events are dropped (counted) and audit_event returns the error.
 *    The node treats this as fatal; reopening recovers.
 *
 * Thread model: one libuv loop; every function runs on its thread.  All
 * file I/O goes through fileio (fault injection in tests).
 */
#ifndef RS_AUDIT_H
#define RS_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/rs_error.h"

#define AUDIT_FORMAT_VERSION 1u
#define AUDIT_DIR_NAME "audit"
#define AUDIT_FSYNC_DELAY_MS_DEFAULT 50u
#define AUDIT_ROTATE_SIZE_BYTES_DEFAULT (16u * 1024u * 1024u)
#define AUDIT_KEEP_FILES_DEFAULT 8u
#define AUDIT_LINE_MAX (64u * 1024u) /* LF included */
/* Queued, not yet handed to a worker: past this the log fails (a disk that
 * stopped answering must not grow the heap without bound). */
#define AUDIT_PENDING_MAX (4u * 1024u * 1024u)
#define AUDIT_TS_LEN 24u         /* "2026-11-22T05:00:00.123Z" */
#define AUDIT_EVENT_NAME_MAX 64u
#define AUDIT_FILE_NAME_MAX 64u

/* ---- event catalogue (docs/audit.md lists their members) ----
 * AUDIT_EV_TAIL_TRUNCATED is emitted by this module, the others by the
 * coordinator; the director's own names are DIRECTOR_EV_* in
 * director/director.h. */
#define AUDIT_EV_NODE_START "node_start"
#define AUDIT_EV_NODE_STOP "node_stop"
#define AUDIT_EV_ELECTION_WON "election_won"
#define AUDIT_EV_LEADER_LOST "leader_lost"
#define AUDIT_EV_FAIL_FAST "fail_fast"
#define AUDIT_EV_TAIL_TRUNCATED "audit_tail_truncated"

/* Where warnings and errors go: one line, no trailing newline.  Called on
 * the loop thread. */
typedef void (*audit_log_fn)(void *arg, const char *msg);

struct audit_options {
	unsigned fsync_delay_ms;    /* queue this long before a batch; 0 = the
				       next loop iteration */
	uint64_t rotate_size_bytes; /* 0 = never rotate */
	unsigned keep_files;        /* files kept, the active one included;
				       0 = never delete */
	audit_log_fn log_fn;        /* NULL: "audit: <msg>" on stderr */
	void *log_arg;
	/* Each successful batch fsync's duration, on the loop (metrics). */
	void (*on_fsync)(void *arg, double seconds);
	void *fsync_arg;
};

/* What open found and did. */
struct audit_report {
	unsigned files;          /* audit files found (before any created) */
	uint64_t last_seq;       /* resumed after this; 0 for a new log */
	bool torn;               /* a torn last line was truncated */
	char torn_file[AUDIT_FILE_NAME_MAX];
	uint64_t torn_offset;    /* where the valid data now ends */
	uint64_t torn_bytes;     /* bytes cut */
	uint64_t corrupt_lines;  /* bad lines left in place, in the files
				    read (newest back to one with a valid
				    line); not counting the torn one */
};

struct audit_stats {
	uint64_t events;        /* accepted (given a seq) since open */
	uint64_t dropped;       /* accepted or offered, never written: the
				   log had failed */
	uint64_t rejected;      /* refused as invalid or too large */
	uint64_t batches;       /* pwrite+fsync jobs that succeeded */
	uint64_t bytes_written;
	uint64_t rotations;
	uint64_t files_deleted; /* by retention */
	uint64_t failures;      /* write/fsync/rotation errors (fail-stop: 0
				   or 1) plus retention unlink errors */
	uint64_t last_seq;      /* last given out */
	uint64_t durable_seq;   /* last known written and fsynced */
};

struct audit;

/* Defaults: 50 ms, 16 MiB, 8 files, stderr. */
void audit_options_init(struct audit_options *o);

/*
 * Open (or create) the audit log of data directory `dir`: the files are in
 * <dir>/audit, created if absent (dir itself must exist).  Blocks: reads
 * the newest file, truncates a torn tail, creates the first file of a new
 * log: call at start-up.  o == NULL means audit_options_init's defaults.
 * Errors (errmsg, RS_ERRMSG_SIZE bytes, names the file):
 *   RS_EINVAL   a valid line names another node (a foreign directory), or
 *               node_id is above 2^63-1;
 *   RS_EIO, RS_ENOSPC, ...  file system errors.
 * Corrupt lines are warned about and do not fail the open.  On failure
 * *out is NULL and nothing was left on the loop.
 */
int audit_open(struct audit **out, uv_loop_t *loop, const char *dir,
	       uint64_t node_id, const struct audit_options *o, char *errmsg);

/*
 * Queue one event.  extra holds the event's own members (NULL: none); the
 * call takes it over (steals the reference), whatever it returns.  Build
 * it with json_object() and the rs_json_set_* of raftstore/lib/json.h,
 * e.g.
 *     json_t *extra = json_object();
 *     rs_json_set_u64(extra, "term", term);
 *     audit_event(a, AUDIT_EV_ELECTION_WON, extra);
 * (out of memory there leaves a member, or all of them, out).  Byte
 * strings go in with rs_json_set_bytes or rs_json_set_str.  The whole line
 * is written and parsed back before it is queued; nothing is queued and no
 * seq is used when that fails:
 *   RS_EINVAL     bad event name, extra not an object, or a member of it
 *                 with a reserved name (ts, node, seq, event, v);
 *   RS_ETOOLARGE  the line would exceed AUDIT_LINE_MAX;
 *   RS_ENOMEM     out of memory;
 *   RS_ECLOSED    audit_close was called;
 *   the failure code of a failed log (RS_EIO, RS_ENOSPC, ...).
 * A refusal is logged (log_fn) with its reason.  Never blocks.  Durable
 * about fsync_delay_ms later (plus the disk's time; audit_stats'
 * durable_seq tells), or at audit_close.
 */
int audit_event(struct audit *a, const char *event, json_t *extra);

/*
 * Last words, for a process about to exit on a fatal error: write and fsync
 * every queued line now, from the loop thread, blocking (waiting up to 5 s
 * for a batch already in flight to finish first).  Never rotates.  The log
 * is then sealed: later events return RS_ESHUTDOWN (counted as dropped);
 * only audit_close or the exit may follow.  Returns RS_OK when every
 * accepted event is durable, else the log's failure, the write or fsync
 * error, or RS_ETIMEOUT (the log is then failed).
 *     audit_event(a, AUDIT_EV_FAIL_FAST, extra_with_reason);
 *     audit_flush_sync(a);
 *     _exit(1);
 */
int audit_flush_sync(struct audit *a);

typedef void (*audit_close_cb)(void *arg, int status);

/*
 * Write and fsync everything queued, close the file and free a.  cb (may be
 * NULL) runs on the loop afterwards with RS_OK, or the error that failed
 * the log; a is gone by then.  Events offered after this return RS_ECLOSED.
 */
void audit_close(struct audit *a, audit_close_cb cb, void *arg);

/* 0, or the error that failed the log (fatal for the node). */
int audit_failed(const struct audit *a);
/* The failure's message ("" while not failed). */
const char *audit_errmsg(const struct audit *a);
uint64_t audit_last_seq(const struct audit *a);
const struct audit_report *audit_open_report(const struct audit *a);
void audit_stats(const struct audit *a, struct audit_stats *out);

/* ---- reading (rsctl events, tests): no state, no I/O ---- */

/* The fixed members of one line. */
struct audit_line {
	char ts[AUDIT_TS_LEN + 1];
	int64_t ts_ms; /* ts as milliseconds since 1970-01-01T00:00:00Z */
	uint64_t node;
	uint64_t seq;
	char event[AUDIT_EVENT_NAME_MAX + 1];
	bool has_version; /* a "v" member was there (and was 1) */
};

/* One extra member: its name as jansson decoded it (UTF-8, no NUL) and
 * its value, both valid only during the call.  A string value holding a
 * byte string is read back with rs_json_bytes_value. */
typedef void (*audit_member_fn)(void *ctx, const char *key,
				const json_t *value);

/*
 * Check one line (p, len: without its LF) and fill *out.  Valid: exactly
 * one JSON object (RFC 8259, read by jansson; no member name twice at any
 * depth; whitespace only space and tab, as no NUL, CR or LF is allowed)
 * with ts, node, seq (>= 1) and event as above, in any order, node and
 * seq at most 2^63-1, and no "v" other than 1.  Bytes >= 0x80 inside
 * strings are accepted as they are (byte N read as U+00NN).  On success,
 * fn (may be NULL) is then called for each other top-level member in
 * order.  Returns RS_OK, RS_EFORMAT (a "v" this reader does not know),
 * RS_ECORRUPT or RS_ENOMEM; errmsg (may be NULL) says what is wrong: the
 * byte, the column or the member.
 */
int audit_line_parse(const char *p, size_t len, struct audit_line *out,
		     audit_member_fn fn, void *ctx, char *errmsg);

/* "audit-00000042.ndjson" for 42 (more digits past 99999999). */
void audit_file_name(char *out, size_t size, uint64_t file_num);
/* The number of a file name of that form (8 or more digits, no sign, not
 * 0, no extra leading zeros); false for any other name. */
bool audit_file_name_parse(const char *name, uint64_t *file_num);

#endif /* RS_AUDIT_H */
