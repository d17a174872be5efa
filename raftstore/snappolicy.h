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

struct snappolicy {
	uint64_t max_log_bytes;
	uint64_t log_bytes;     /* applied since the last snapshot began */
	uint64_t state_bytes;   /* the last image's size */
	uint64_t pending_bytes; /* counted before the snapshot under way */
	bool running;
};

void snappolicy_init(struct snappolicy *p, uint64_t max_log_bytes);

/* The bytes of log that make a snapshot due, now. */
uint64_t snappolicy_budget(const struct snappolicy *p);

/* An entry of `bytes` was applied (or skipped: it is in the log all the
 * same).  True when a snapshot is due and none is under way. */
bool snappolicy_applied(struct snappolicy *p, uint64_t bytes);

/* A snapshot began: what was applied so far is in it. */
void snappolicy_begun(struct snappolicy *p);

/* The snapshot that began ended: written, with an image of image_bytes,
 * or not (the log it would have freed counts again). */
void snappolicy_ended(struct snappolicy *p, bool written,
		      uint64_t image_bytes);

/* The state was replaced by a snapshot of image_bytes (a restore). */
void snappolicy_restored(struct snappolicy *p, uint64_t image_bytes);

#endif /* RS_SNAPPOLICY_H */
