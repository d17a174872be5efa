/*
 * audit_internal: what the audit log's files share (coordinator/audit.h is
 * the module's contract and the line format).
 *
 * The module is split by concern around this header:
 *
 *   audit.c       the writer: audit_event builds and checks a line, batches
 *                 go to the thread pool (pwrite, fsync, rotation,
 *                 retention), the fail-fast flush, close, accessors
 *   audit_open.c  open: list the files, resume the seq, cut a torn tail,
 *                 create the first file
 *   audit_line.c  the line format: file names, timestamps, the names the
 *                 writer reserves, and the strict line reader
 *                 (audit_line_parse) that the writer, open and
 *                 `rsctl events` all use
 *
 * Threads: see audit.c's file comment; struct audit is the loop thread's
 * except the batch in flight.
 */
#ifndef RS_AUDIT_INTERNAL_H
#define RS_AUDIT_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "coordinator/audit.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/lib/sm.h"

enum audit_state {
	AUDIT_IDLE,     /* nothing queued, no timer, no job */
	AUDIT_ARMED,    /* lines queued; the batch timer runs */
	AUDIT_FLUSHING, /* a batch is in the thread pool */
	AUDIT_CLOSING,  /* the close job, then the timer handle's close */
	AUDIT_CLOSED,   /* being freed */
	AUDIT_STATE__COUNT
};
/* Its table (audit.c). */
extern const struct sm_def audit_sm;

/* Lines queued together, and what the worker did with them. */
struct audit_batch {
	struct rs_buf buf;
	uint64_t events;   /* lines in buf */
	uint64_t last_seq; /* of the last line */
	/* inputs for the worker, set when the batch starts */
	int fd;
	uint64_t offset;
	bool rotate;
	uint64_t new_file;     /* the file number a rotation creates */
	unsigned unlink_count; /* oldest files retention deletes */
	/* results of the worker */
	int status;
	int new_fd;
	unsigned unlinked;
	uint64_t fsync_ns; /* how long the batch's fsync took */
	char errmsg[RS_ERRMSG_SIZE];
	char warnmsg[RS_ERRMSG_SIZE]; /* a retention failure: not fatal */
};

struct audit {
	uv_loop_t *loop;
	char *dir; /* <data-dir>/audit */
	uint64_t node_id;
	struct audit_options opts;
	struct sm sm; /* enum audit_state; the table is audit_sm */
	bool close_requested;
	bool sealed; /* audit_flush_sync ran: nothing more is written */
	audit_close_cb close_cb;
	void *close_arg;
	int failed;
	char failed_msg[RS_ERRMSG_SIZE];
	uint64_t *files; /* file numbers, ascending; the last is active */
	unsigned nfiles;
	unsigned files_cap;
	int fd;        /* the active file */
	uint64_t size; /* of the active file */
	struct audit_batch pending;
	struct audit_batch flight;
	atomic_bool flight_done; /* the worker finished with the flight */
	uv_timer_t timer;
	uv_work_t work;
	struct audit_report report;
	struct audit_stats stats;
};

/* ---- audit.c ---- */

/* A warning or error through opts.log_fn (or stderr), on the loop. */
void audit_logf(const struct audit *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* <dir>/<name of file_num> into out (PATH_MAX bytes); the length was
 * checked at open. */
void audit_file_path(char *out, const struct audit *a, uint64_t file_num);

/* ---- audit_open.c ---- */

/* Close the fd and free everything (the loop holds nothing of a's). */
void audit_free(struct audit *a);

/* Room for n file numbers in a->files; RS_ENOMEM leaves it as it was. */
int audit_files_reserve(struct audit *a, unsigned n);

/* ---- audit_line.c ---- */

/* The current UTC time in the line's form; out holds AUDIT_TS_LEN + 1. */
void audit_ts_now(char *out);

/* name is an event name: [a-z0-9_]{1,AUDIT_EVENT_NAME_MAX}. */
bool audit_event_name_ok(const char *name, size_t len);

/* key is one of the names the writer sets itself (ts, node, seq, event,
 * v), which an event's own members may not use. */
bool audit_member_reserved(const char *key);

#endif /* RS_AUDIT_INTERNAL_H */
