/*
 * store: the node's storage engine, the one object the rest of raftstore
 * uses.  It ties the journal, the checkpoints and the MVCC index together:
 *
 *   <dir>/journal/      segments of applied batches (journal.h)
 *   <dir>/checkpoints/  full snapshots (checkpoint.h)
 *
 * Open loads the newest valid checkpoint and replays the journal after it,
 * so the index holds exactly the batches that reached the journal.
 *
 * Apply order: a batch is validated, appended to the journal, and only when
 * the journal reports it written (and fsynced, per policy) is it applied to
 * the index and the applied version advanced; then the caller's callback
 * runs.  So readers never see a batch that a crash could lose, and on a
 * journal failure the index stays consistent with the disk and every later
 * apply fails until the store is reopened (fail-stop).
 *
 * Apply is idempotent by version: a batch at or below the highest version
 * accepted is refused with RS_EVERSION, never applied twice.
 *
 * Reads (store_get, store_range) are synchronous, from memory, at a version
 * in the MVCC window.  One loop owns the store.
 */
#ifndef RS_STORE_H
#define RS_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/rs_error.h"
#include "storage/checkpoint.h"
#include "storage/journal.h"
#include "storage/mvcc.h"

struct store_options {
	const char *dir;
	enum journal_sync sync;     /* default JOURNAL_SYNC_FSYNC */
	uint64_t segment_size_max;  /* 0 = JOURNAL_SEGMENT_SIZE_DEFAULT */
	unsigned segments_keep;     /* covered segments kept; default 2 */
	unsigned checkpoints_keep;  /* 0 = CHECKPOINT_KEEP_DEFAULT */
	uint64_t window_versions;   /* MVCC read window; 0 = default 5,000,000 */
	bool recover;               /* journal recover mode (journal.h) */
	/* Apply to the index when a batch is accepted, not when the journal
	 * completes.  For callers whose batches are already durable elsewhere
	 * (the Raft log): reads see a batch at once, and a journal failure
	 * still fails the store. */
	bool apply_on_accept;
};

struct store_open_report {
	struct journal_report journal;
	struct checkpoint_load_report checkpoint;
	bool checkpoint_used;
	uint64_t checkpoint_version;
	uint64_t replayed;      /* batches replayed from the journal */
	uint64_t applied_version;
};

struct store;

/* Open or create.  Blocks (start-up).  errmsg names the file on failure. */
int store_open(struct store **out, uv_loop_t *loop,
	       const struct store_options *opts,
	       struct store_open_report *report, char *errmsg);

struct store_apply_req;
typedef void (*store_apply_cb)(struct store_apply_req *req, int status);

struct store_apply_req {
	void *data; /* for the caller */
	/* private */
	struct journal_append_req jreq;
	struct store *store;
	struct batch *batch;
	store_apply_cb cb;
};

/*
 * Apply batch b.  The journal encodes b at once, but the index applies it
 * only when the journal completes, so b must stay valid (and unchanged)
 * until the callback runs; the caller owns it and frees it afterwards.
 * Synchronous errors (the callback will not run, errmsg of the store says
 * why): RS_EVERSION (not above the last accepted version), RS_ECORRUPT /
 * RS_ETOOLARGE (invalid batch), RS_EFAILED (the store failed earlier).  The
 * callback gets 0 or the journal's error, which also fails the store.
 */
int store_apply(struct store *s, struct store_apply_req *req,
		struct batch *b, store_apply_cb cb);

/*
 * Replace the whole state with an mvcc image at `version` (a Raft snapshot
 * install).  Writes it as a checkpoint first (crash-safe; this blocks on
 * the disk, which only happens when a replica has fallen behind the log),
 * then loads it into the index.  Only allowed when nothing is in flight and
 * version is above the accepted version (RS_EVERSION otherwise).
 */
int store_restore(struct store *s, uint64_t version, uint64_t epoch,
		  const uint8_t *image, size_t len, char *errmsg);

/* Reads: as mvcc_get / mvcc_range. */
int store_get(const struct store *s, const void *key, size_t key_len,
	      uint64_t version, const uint8_t **val, uint32_t *val_len,
	      uint64_t *found_version);
int store_range(const struct store *s, const void *begin, size_t begin_len,
		const void *end, size_t end_len, uint64_t version,
		size_t limit, mvcc_range_fn fn, void *ctx, bool *more);

/* Highest version applied to the index (visible to reads). */
uint64_t store_applied_version(const struct store *s);
uint64_t store_applied_epoch(const struct store *s);
/* Highest version accepted (journal queue included). */
uint64_t store_accepted_version(const struct store *s);

struct mvcc *store_index(struct store *s);

/*
 * Write a checkpoint of the applied state.  The image is encoded on the loop
 * (memory copy), compressed and written on the thread pool; then old
 * checkpoints and covered journal segments are pruned per the options.
 * cb gets 0 or an error (the store keeps working either way).  At most one
 * checkpoint runs at a time (RS_EEXIST if one is running).
 */
typedef void (*store_checkpoint_cb)(void *arg, int status, uint64_t version);
int store_checkpoint(struct store *s, store_checkpoint_cb cb, void *arg);
/* Why the last checkpoint failed (empty if it did not). */
const char *store_checkpoint_errmsg(const struct store *s);

/* Bytes of journal and checkpoint files, for status. */
uint64_t store_disk_bytes(const struct store *s);

/* The last error message of a failed store (empty if healthy). */
const char *store_errmsg(const struct store *s);

/* Finish in-flight writes and free everything; cb runs on the loop. */
void store_close(struct store *s, void (*cb)(void *arg), void *arg);

#endif /* RS_STORE_H */
