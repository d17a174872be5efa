/*
 * journal internals: what storage/journal*.c share, and nothing else may use.
 *
 * The journal is split by concern around this header:
 *   journal.c          the object: state machine, segment table, retention,
 *                      accessors and close;
 *   journal_segment.c  segment files: names, the header, creation, listing;
 *   journal_append.c   the write path: group commit in the thread pool;
 *   journal_replay.c   open: verify, replay and repair (torn tails, recovery).
 * journal.h holds the contract and the on-disk header.
 *
 * Threads.  The loop thread owns everything in struct journal except the
 * group in flight (j->flight), which belongs to the thread-pool worker from
 * uv_queue_work() until the after-work callback; the worker also reads the
 * fields that never change after open (dir, sync).  libuv's work queue hands
 * the group over and back with a happens-before edge, so there is no lock.
 */
#ifndef RS_JOURNAL_INTERNAL_H
#define RS_JOURNAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/lib/sm.h"
#include "storage/journal.h"

#define JOURNAL_NAME_LEN 24 /* "seg-" + 16 hex digits + ".rsj" */
/* Header field offsets, for messages and reports. */
#define JOURNAL_OFF_FORMAT 8u
#define JOURNAL_OFF_FLAGS 12u
#define JOURNAL_OFF_SEQ 16u
#define JOURNAL_OFF_PREV 24u
#define JOURNAL_OFF_CRC 32u
#define JOURNAL_OFF_RESERVED 36u

/* ---- the journal object and its state machine ---- */

enum journal_state {
	JOURNAL_IDLE,    /* no job in the thread pool; nothing pending */
	JOURNAL_WRITING, /* a group is in the thread pool */
	JOURNAL_CLOSING, /* the close job is in the thread pool */
	JOURNAL_CLOSED,  /* being freed */
	JOURNAL_STATE__COUNT
};

/* What the journal knows about one segment it keeps. */
struct journal_seg {
	uint64_t seq;
	uint64_t prev_version; /* from the header */
	uint64_t last_version; /* of its last record; prev_version if none */
	uint64_t size;         /* header and valid records */
};

/*
 * One group commit: requests and their encoded records, in order.  Filled
 * on the loop; the worker writes buf and sets the results; the after-work
 * callback reads them back on the loop.
 */
struct journal_group {
	struct journal_append_req *head;
	struct journal_append_req *tail;
	struct rs_buf buf;
	uint64_t last_version; /* of the last request */
	/* inputs for the worker, set when the group starts */
	int fd;
	uint64_t offset;
	bool rotate;
	uint64_t new_seq;
	uint64_t new_prev_version;
	/* results of the worker */
	int status;
	int new_fd; /* >= 0 if a new segment was created */
	uint64_t writeback_bytes; /* handed to the disk early (JOURNAL_SYNC_NONE) */
	char errmsg[RS_ERRMSG_SIZE];
};

struct journal {
	uv_loop_t *loop;
	char *dir;
	uint64_t segment_size_max;
	enum journal_sync sync;
	bool read_only;
	struct sm sm; /* enum journal_state; the table is in journal.c */
	bool close_requested;
	void (*close_cb)(void *arg);
	void *close_arg;
	int failed; /* 0, or what every append completes with from now on */
	char failed_msg[RS_ERRMSG_SIZE];
	uint64_t last_version; /* last accepted, or found on open */
	struct journal_seg *segs; /* seq order; the last one is active */
	unsigned nsegs;
	unsigned segs_cap;
	int fd; /* the active segment; -1 when read-only */
	struct journal_group pending; /* queued, not started */
	struct journal_group flight;  /* in the thread pool */
	uv_work_t work;
	/* The worker's alone (one group at a time): where in which segment the
	 * early write-back has reached (journal_append.c). */
	uint64_t wb_seq;
	uint64_t wb_off;
	uint64_t writeback_bytes; /* the loop's sum of the groups' */
};

/* Room for one more entry in j->segs: RS_OK or RS_ENOMEM. */
int journal_segs_reserve(struct journal *j);
/* A journal object for opts, with no segment yet (journal_open fills it). */
int journal_alloc(struct journal **out, uv_loop_t *loop,
		  const struct journal_options *opts, char *errmsg);
/* Free j and its buffers; the caller has closed j->fd. */
void journal_free(struct journal *j);
/* Complete what is pending with RS_ECLOSED and close in the thread pool;
 * j is IDLE and close_requested is set. */
void journal_close_start(struct journal *j);

/* ---- segment files (journal_segment.c) ---- */

void journal_seg_name(char *out, size_t size, uint64_t seq);
void journal_path(char *out, const char *dir, const char *name);
bool journal_dir_ok(const char *dir, char *errmsg);
int journal_header_decode(const uint8_t *h, uint64_t seq,
			  uint64_t *prev_version, uint64_t *bad_offset,
			  char *errmsg);
int journal_segment_create(const char *dir, uint64_t seq,
			   uint64_t prev_version, int *fd, char *errmsg);

struct journal_list {
	struct journal_segment_info *segs;
	unsigned n;
	unsigned cap;
};

int journal_list_dir(const char *dir, struct journal_list *l, char *errmsg);

/* ---- the write path (journal_append.c) ---- */

void journal_group_reset(struct journal_group *g, struct rs_buf buf);
void journal_group_complete(struct journal_group *g, int status);

#endif /* RS_JOURNAL_INTERNAL_H */
