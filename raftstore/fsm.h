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
 * c-raft LZ4-compresses snapshots on disk and on the wire.  Encoding the
 * image runs on the loop (see docs/architecture.md for the cost).  A restore
 * whose version is not above the store's is skipped (the store already has
 * it, e.g. on restart); otherwise it replaces the store (store_restore).
 */
#ifndef RS_FSM_H
#define RS_FSM_H

#include <raft.h>
#include <stdint.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/metrics.h"
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
};

void fsm_init(struct fsm *f, struct store *store, fsm_applied_fn applied,
	      fsm_restored_fn restored, fsm_fatal_fn fatal, void *ctx);

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
