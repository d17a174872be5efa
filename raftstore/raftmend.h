/*
 * raftmend: mend an AppendEntries that reaches below this node's snapshot
 * before c-raft sees it, and keep every answer to what the message matched
 * (docs/architecture.md, c-raft guards 12 and 18).
 *
 * c-raft 0.15 mishandles an AppendEntries whose previous index lies below
 * the first entry a follower still holds after a snapshot.  With previous
 * index 0 (a leader that holds its whole log and whose next index for this
 * follower fell to 1) it skips the log-matching check, finds none of the
 * entries in the log, appends them all after the follower's last entry,
 * then looks for them at index 1, fails ("No log entries found at index
 * 1") and turns unavailable for good.  With a previous index from 1 up to
 * the snapshot's first missing entry it rejects, and the leader steps its
 * next index down by one per round trip, until it reaches 0 again.
 *
 * Every entry at or below the snapshot's index S is committed (a node
 * snapshots only what it applied, and installs only a leader's snapshot),
 * and every leader of the message's term or a later one holds those same
 * entries (Raft's leader completeness).  So the mend drops them and moves
 * the previous index up to S:
 *
 *  - entries past S remain: prev = S with the leader's own term for S
 *    (from the entry dropped last), the rest shifted to the front;
 *  - none remain: the message becomes a heartbeat at S, with the leader's
 *    term for S if the message carried it, else the snapshot's term.
 *
 * c-raft then checks the term at S against its snapshot: a mismatch is a
 * broken invariant, and c-raft stops (which the node turns into its
 * fail-stop), as it should.  A mended message also never claims more than
 * it carried: the leader's commit index it passes on is capped at
 * cap = max(S, prev + n), and so is the last log index of the reply c-raft
 * sends while handling it (c-raft answers a heartbeat with its last stored
 * index, which past S the leader has not checked).
 *
 * Every other AppendEntries gets the same cap on its answer, at prev + n
 * (c-raft guard 18): c-raft 0.15 answers a message it needs not write
 * with its last stored index, and a follower that holds entries of an
 * older term past what the message matched (a deposed leader's tail,
 * never committed) then reports them as the new leader's.  The leader
 * takes that as its match index (capped only by its own last index, which
 * by then may include new entries at those indexes): it may count the
 * follower toward committing an entry the follower does not hold, and
 * it ignores the follower's later rejections as stale, so the follower
 * never catches up.  prev + n is what Raft says to report: the entries
 * the message showed to match.
 *
 * An answer that follows a write has the same flaw across a term: c-raft
 * answers from the write's callback with its current term and its last
 * stored index, and a write of an old leader's entries that completes
 * after this node heard a new leader's heartbeat (a slow disk, a fast
 * election) so claims them as the new leader's, which then counts this
 * node toward its own entries at those indexes.  Such an answer is not
 * sent (as upstream does from 0.17.1, 35479fc); the new leader's next
 * message gets a true one.
 *
 * What the mend leaves alone: every other message; an AppendEntries whose
 * previous entry the follower holds, or with previous index 0 while it
 * still holds entry 1 (c-raft handles both); a node without a snapshot.
 * Entries dropped are freed with their batches (a batch still referenced
 * by a kept entry is kept).  Runs on the io's loop; never
 * blocks.
 */
#ifndef RS_RAFTMEND_H
#define RS_RAFTMEND_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

/* How many raft_io instances one process may mend (a node has one; the
 * unit tests' fixtures up to RAFTFIX_SERVERS_MAX). */
#define RAFTMEND_IO_MAX 8

enum raftmend_outcome {
	RAFTMEND_UNTOUCHED = 0,
	RAFTMEND_TRIMMED,   /* entries at or below S dropped, the rest kept */
	RAFTMEND_HEARTBEAT, /* every entry dropped: a heartbeat at S */
};

/* The follower's side of the mend, pure: snapshot_index/term and
 * log_offset (the index before its first held entry) are the follower's
 * (struct raft_log).  Changes *a in place when it reaches below the
 * snapshot (see the top of this file), freeing what it drops; *cap is then
 * the last index the message vouches for.  Returns what it did. */
enum raftmend_outcome raftmend_append_entries(raft_index snapshot_index,
					      raft_term snapshot_term,
					      raft_index log_offset,
					      struct raft_append_entries *a,
					      raft_index *cap);

/* Wrap io's start, send and append, after raft_init (which sets io->data to the
 * raft instance) and before raft_start.  Installing on the same io again
 * replaces the earlier install.  RS_OK, or RS_ETOOLARGE when
 * RAFTMEND_IO_MAX ios are installed already. */
int raftmend_install(struct raft_io *io);

/* Messages mended on io since its install (0 for an io never installed). */
uint64_t raftmend_count(const struct raft_io *io);

/* AppendEntries results lowered to the cap since the install (guards 12
 * and 18). */
uint64_t raftmend_capped_count(const struct raft_io *io);

/* AppendEntries results not sent since the install: a write's answer
 * after the term moved on (guard 18). */
uint64_t raftmend_dropped_count(const struct raft_io *io);

struct metrics;
/* Register raftstore_raft_appends_mended_total,
 * raftstore_raft_replies_capped_total and
 * raftstore_raft_replies_dropped_total for io (installed).  io must
 * outlive the registry's use.  RS_OK, or RS_EINVAL with
 * metrics_errmsg(ms). */
int raftmend_metrics_register(struct raft_io *io, struct metrics *ms);

#endif /* RS_RAFTMEND_H */
