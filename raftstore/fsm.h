/*
 * fsm: the Raft state machine; c-raft's raft_fsm over the storage engine.
 *
 * Every Raft command entry is one batch.  Entry payload (version 1):
 *
 *   offset 0  u8   format   FSM_ENTRY_FORMAT (1)
 *   offset 1  u8   kind     FSM_ENTRY_BATCH (1)
 *   offset 2  ...  record   one journal record (record.h): crc, length,
 *                           type, version, epoch, body
 *   then      0-7  zeros    padding to a multiple of 8 bytes (c-raft 0.15
 *                           needs it: see docs/architecture.md)
 *
 * so an entry is checksummed end to end by the same code as the journal.
 *
 * Fencing by epoch.  Every batch carries the epoch of the director that
 * sequenced it.  An FSM_ENTRY_EPOCH entry allocates a new epoch and must
 * carry a higher epoch than any before it.  From then on every batch of an
 * older epoch is skipped on every replica, deterministically, so a deposed
 * director can never write.  Skipped entries report FSM_RESULT_FENCED to
 * the proposer.
 *
 * Apply is idempotent by version: an entry whose version is at or below the
 * store's accepted version is skipped, so replaying the Raft log after a
 * restart (c-raft re-applies from its last snapshot) never applies twice.
 * An entry that does not decode, or a store that fails, stops the process
 * (fail-stop: c-raft 0.15 cannot be trusted to step down on a broken
 * state machine, see the design brief on upstream bug #321).
 *
 * Snapshots are the store's MVCC image at the accepted version:
 *
 *   offset 0   u8[8] magic    "RSSNAP\r\n"
 *   offset 8   u32   format   FSM_SNAPSHOT_FORMAT (1)
 *   offset 12  u32   crc      CRC-32C of the image
 *   offset 16  u64   version
 *   offset 24  u64   epoch
 *   offset 32  ...   image    (mvcc.h)
 *
 * c-raft LZ4-compresses snapshots on disk and on the wire.  With
 * fsm_snapshots_in_steps (the node), the image is encoded on the loop a
 * millisecond at a time while batches go on applying (mvcc_image_encode_
 * step at the snapshot's version), and c-raft's worker thread waits for it
 * and checksums it (fsm_snapshot.c): a snapshot of hundreds of MB stalls
 * no commit.  Without it (the raft_fixture tests, whose "worker" is the
 * loop's own thread) the image is encoded at once on the loop.  A restore
 * whose version is not above the store's is skipped (the store already has
 * it, e.g. on restart); otherwise it replaces the store (store_restore).
 */
#ifndef RS_FSM_H
#define RS_FSM_H

#include <pthread.h>
#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/snappolicy.h"
#include "storage/store.h"

#define FSM_ENTRY_FORMAT 1u
#define FSM_ENTRY_BATCH 1u
#define FSM_ENTRY_EPOCH 2u /* a director's epoch allocation */
#define FSM_SNAPSHOT_FORMAT 1u
#define FSM_SNAPSHOT_MAGIC "RSSNAP\r\n"
#define FSM_SNAPSHOT_HEADER 32u

/* Called after each batch is applied to the store (not for skipped ones). */
typedef void (*fsm_applied_fn)(void *ctx, const struct batch *b);
/* Called when the state was replaced by a snapshot. */
typedef void (*fsm_restored_fn)(void *ctx, uint64_t version);
/* Called when an entry is fenced (skipped for its epoch). */
typedef void (*fsm_fenced_fn)(void *ctx, const struct batch *b,
			      uint64_t current_epoch);
/* Called on a fatal state machine error; must not return. */
typedef void (*fsm_fatal_fn)(void *ctx, const char *msg);

struct fsm {
	struct raft_fsm raft; /* handed to raft_init */
	struct store *store;
	fsm_applied_fn on_applied;
	fsm_restored_fn on_restored;
	fsm_fatal_fn on_fatal;
	fsm_fenced_fn on_fenced; /* optional; set after fsm_init */
	void *ctx;
	uint64_t epoch; /* the highest epoch allocated (applied) */
	uint64_t fenced_entries;
	uint64_t applied_entries;
	uint64_t skipped_entries;
	uint64_t snapshots;
	uint64_t restores;
	struct metric *m_fenced; /* fsm_metrics_register; NULL until then */
	/* Snapshots by bytes of log (fsm_snapshot_by_bytes); raft NULL: by
	 * c-raft's entry threshold alone. */
	struct {
		struct raft *raft;
		unsigned max_entries;
		struct snappolicy policy;
	} by_bytes;
	/* A snapshot encoded in steps (fsm_snapshot.c).  The loop owns all
	 * of it but `done` and `status`, which the mutex guards, until done;
	 * then c-raft's worker reads img and fills buf, and the loop touches
	 * nothing until c-raft's finalize. */
	struct {
		bool enabled;   /* fsm_snapshots_in_steps was called */
		bool running;   /* from c-raft's snapshot to its finalize */
		bool done;      /* encoding over (status says how) */
		int status;     /* RS_OK or why the encoding failed */
		uint64_t version, epoch;
		struct rs_buf img;    /* header room, then the image */
		struct rs_buf cursor; /* the last key encoded */
		uint64_t start_ns, steps;
		uint64_t frees_off_loop; /* images a worker freed (or frees) */
		uint64_t last_bytes;  /* the previous image's size */
		uint64_t log_snapshot_before; /* by_bytes.raft's log's
					       * snapshot index at begin */
		struct raft_buffer buf; /* what c-raft gets */
		pthread_mutex_t mu;
		pthread_cond_t cv;
		uv_idle_t idle;
	} snap;
};

void fsm_init(struct fsm *f, struct store *store, fsm_applied_fn applied,
	      fsm_restored_fn restored, fsm_fatal_fn fatal, void *ctx);

/* Write the snapshot header (above) in front of the image_len bytes of
 * image at p + FSM_SNAPSHOT_HEADER: magic, format, the image's CRC-32C,
 * version and epoch. */
void fsm_snapshot_header(uint8_t *p, size_t image_len, uint64_t version,
			 uint64_t epoch);

/* Tell the snapshot policy (fsm_snapshot_by_bytes) that a snapshot began,
 * and that it ended, written with an image of image_bytes or not.  Both
 * snapshot paths call them; nothing happens without the policy. */
void fsm_snapshot_policy_begun(struct fsm *f);
void fsm_snapshot_policy_ended(struct fsm *f, bool written,
			       uint64_t image_bytes);

/* Take snapshots in steps on loop (the loop the store runs on), as the
 * top of this file says.  Before raft_start; fsm_close before the loop
 * closes.  RS_OK, or RS_ENOMEM. */
int fsm_snapshots_in_steps(struct fsm *f, uv_loop_t *loop);
/* Release what fsm_snapshots_in_steps made (after raft_close's callback:
 * c-raft has finalized any snapshot by then). */
void fsm_close(struct fsm *f);

/* Take r's snapshots by bytes of log as well as by entries (snappolicy.h):
 * between snapshots c-raft's threshold is max_entries; once the entries
 * applied since the last snapshot weigh the policy's budget (at most
 * max_log_bytes), it is set so that c-raft takes one after this entry.
 * After raft_init, before raft_start. */
void fsm_snapshot_by_bytes(struct fsm *f, struct raft *r,
			   uint64_t max_log_bytes, unsigned max_entries);
/* Jitter those limits per snapshot cycle, from seed (snappolicy.h: so that
 * the replicas do not all take their snapshots at once).  After
 * fsm_snapshot_by_bytes. */
void fsm_snapshot_jitter(struct fsm *f, uint64_t seed);
/* The policy's view of the log and the state: for STATUS and the logs. */
uint64_t fsm_log_bytes(const struct fsm *f);

/* Register raftstore_fenced_entries_total (fenced_entries) in ms and count
 * it from then on, fencings made before the call included.  ms must outlive
 * f.  RS_OK, or RS_EINVAL with metrics_errmsg(ms) saying why. */
int fsm_metrics_register(struct fsm *f, struct metrics *ms);

/* Encode batch b as an entry payload of `kind` into a raft_malloc'ed
 * buffer. */
int fsm_entry_encode(const struct batch *b, uint8_t kind,
		     struct raft_buffer *out);

/* Decode an entry payload (verifying the record's checksum and the
 * padding) into b (batch_init'ed) and *kind: RS_OK, or RS_EFORMAT
 * (unknown format or kind) / the record's error (record.h; a cut record
 * is RS_ECORRUPT) with errmsg.  Exposed for the fuzz target
 * (tests/fuzz/fuzz_entry.c). */
int fsm_entry_decode(const struct raft_buffer *buf, struct batch *b,
		     uint8_t *kind, char *errmsg);

/* The raft_apply result of an entry that fencing skipped. */
void *fsm_result_fenced(void);

#endif /* RS_FSM_H */
