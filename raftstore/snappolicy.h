/*
 * snappolicy: when a node takes a Raft snapshot, by the bytes of log it
 * has applied since the last one as well as by entries.
 *
 * A snapshot of this store rewrites the whole state (the MVCC image), so
 * its cost grows with the state; what it saves is the log it lets c-raft
 * drop (memory, disk, and the replay on restart), which grows with the
 * bytes applied.  c-raft 0.15 counts only entries, and an entry is one
 * proxy batch of 1 to 512 transactions, compressed (fsm.h): at a fixed
 * entry count a 200 MB state was rewritten every 55 MB of logged puts
 * (every 3 s under the put benchmark), whatever the log weighed.
 *
 * The rule: a snapshot is due once the entries applied since the last one
 * weigh at least
 *
 *     budget = min(max_log_bytes, max(SNAPPOLICY_MIN_LOG_BYTES, state / 2))
 *
 * where state is the size of the last image (written or restored; 0 before
 * the first), so a snapshot never costs more than about two bytes written
 * per byte of log it frees, and the log held in memory never passes
 * max_log_bytes.  c-raft's entry threshold stays as a cap on the number of
 * entries (barriers and configuration entries weigh almost nothing).
 *
 * Jitter (snappolicy_jitter).  Every replica applies the same entries, so
 * with one rule they all reach the budget, or c-raft's entry cap, at the
 * same entry and take their snapshots together: each encodes the whole
 * state on its loop and has it checksummed and compressed on a worker at
 * once.  On the three-node benchmark machine (2 vCPUs, 8 writers,
 * --snapshot-threshold 16384) that cost 1.7-2.9 commit gaps over 8 ms per
 * snapshot, up to 28 ms.  With jitter each snapshot cycle takes its own
 * random cut, up to a quarter, off both the budget and the entry cap, so
 * the replicas drift apart and stay apart (their phases take a random
 * walk): 0.3 gaps over 8 ms per snapshot, the worst 13-16 ms
 * (docs/architecture.md, "Replicas take their snapshots apart").  Neither
 * limit is ever exceeded; snapshots come at most a third more often.
 *
 * Pure bookkeeping, no I/O: the FSM feeds it (fsm.c) and turns "due" into
 * c-raft's threshold.
 */
#ifndef RS_SNAPPOLICY_H
#define RS_SNAPPOLICY_H

#include <stdbool.h>
#include <stdint.h>

/* The budget's floor (or max_log_bytes, if that is smaller).  A snapshot
 * has costs that do not shrink with the state: it closes the open log
 * segment, which stalled the node 30-50 ms until c-raft guard 11
 * (aiodefer.h), and writes and fsyncs a new file.  So a small state is
 * snapshotted at most once per 16 MiB of log; that much log in memory is
 * small beside the 64 MiB of watch history each node keeps anyway
 * (watch.h). */
#define SNAPPOLICY_MIN_LOG_BYTES (16u << 20)

/* The largest cut jitter takes off, in 1/SNAPPOLICY_CUT_ONE. */
#define SNAPPOLICY_CUT_ONE 65536u
#define SNAPPOLICY_CUT_MAX (SNAPPOLICY_CUT_ONE / 4)

struct snappolicy {
	uint64_t max_log_bytes;
	uint64_t log_bytes;     /* applied since the last snapshot began */
	uint64_t state_bytes;   /* the last image's size */
	uint64_t pending_bytes; /* counted before the snapshot under way */
	bool running;
	bool jitter;            /* snappolicy_jitter was called */
	uint64_t rng;           /* its generator */
	uint32_t cut;           /* this cycle's, 0..SNAPPOLICY_CUT_MAX - 1 */
};

void snappolicy_init(struct snappolicy *p, uint64_t max_log_bytes);

/* Jitter the budget and the entry cap (above), from seed on; each cycle
 * (from now, and from every snapshot begun or restored) takes a new cut. */
void snappolicy_jitter(struct snappolicy *p, uint64_t seed);

/* The bytes of log that make a snapshot due, now. */
uint64_t snappolicy_budget(const struct snappolicy *p);

/* max_entries less this cycle's cut, at least 1: c-raft's threshold. */
unsigned snappolicy_entry_cap(const struct snappolicy *p,
			      unsigned max_entries);

/* An entry of `bytes` was applied (or skipped: it is in the log all the
 * same).  True when a snapshot is due and none is under way. */
bool snappolicy_applied(struct snappolicy *p, uint64_t bytes);

/* A snapshot began: what was applied so far is in it; a new cycle. */
void snappolicy_begun(struct snappolicy *p);

/* The snapshot that began ended: written, with an image of image_bytes,
 * or not (the log it would have freed counts again). */
void snappolicy_ended(struct snappolicy *p, bool written,
		      uint64_t image_bytes);

/* The state was replaced by a snapshot of image_bytes (a restore); a new
 * cycle. */
void snappolicy_restored(struct snappolicy *p, uint64_t image_bytes);

#endif /* RS_SNAPPOLICY_H */
