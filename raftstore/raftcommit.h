/*
 * raftcommit: a leader commits what Raft's rule allows, no more and no
 * later (docs/architecture.md, c-raft guard 21).
 *
 * Raft's rule (Figure 3.1): a leader sets its commit index to the highest
 * N held by a majority of the voters (their match indexes, its own being
 * what it stored) for which the entry at N is of the leader's current
 * term.  c-raft 0.15 departs from it twice, both fixed upstream in 0.17.1:
 *
 *  - on a follower's AppendEntries result it asks whether a majority holds
 *    the leader's own last stored index, not the follower's.  A leader
 *    that stored its next batch before the answer for the previous one
 *    arrived (the usual case under load: its own write does not wait for
 *    the network) does not commit that previous batch; it commits only
 *    when an answer finds the leader's disk behind or level with it, and
 *    under a steady stream of batches that can take many round trips;
 *  - it never checks the term, so a leader elected over an older term's
 *    uncommitted tail commits that tail as soon as one follower holds it
 *    (Figure 8 of the Raft paper: a later leader that lacks the tail can
 *    still be elected and overwrite an entry already applied and
 *    acknowledged).  The director's first barrier narrows the window but
 *    does not close it: every answer before that barrier is stored counts.
 *
 * raftcommit_install wraps the backend's receive and append:
 *
 *  - an AppendEntries result that reaches a leader (not a rejection, in
 *    its term): the commit index Raft's rule gives once c-raft has taken
 *    the result's index as the follower's match, capped at what the
 *    leader stored itself (a 0.15 follower takes min(leader's commit, its
 *    last stored) as its commit index, which would move a deposed
 *    leader's commit index back), is worked out first; for
 *    the length of c-raft's handling, its last stored index reads as that
 *    index (or as the current commit index when the rule gives nothing
 *    new), the one value c-raft's commit check reads it for; then it is
 *    put back.  c-raft's own progress record of the leader, not
 *    last_stored, is what counts the leader's vote, so the vote stays
 *    true;
 *  - a leader's own append of entries of an older term (written while it
 *    led before, completed after it was elected again): c-raft counts
 *    them when the write completes; for that callback the other voters'
 *    match indexes read as at most the commit index, so no count can
 *    reach past it, and are put back after.
 *
 * Nothing else changes: what is stored, sent, or voted.  A commit index
 * only moves where Raft allows it, earlier than c-raft 0.15 would in the
 * first case, and not at all in the second.  Runs on the io's loop; never
 * blocks; one small allocation per append a leader makes.
 */
#ifndef RS_RAFTCOMMIT_H
#define RS_RAFTCOMMIT_H

#include <raft.h>
#include <stdint.h>

struct metrics;

/* How many raft_io instances one process may wrap (a node has one; the
 * unit tests' fixtures a few). */
#define RAFTCOMMIT_IO_MAX 8

/* The highest index held by a majority of n voters whose match indexes
 * are match[0..n-1] (sorted in place, highest first): the
 * (n / 2 + 1)-th highest.  0 when n is 0. */
raft_index raftcommit_majority_index(raft_index *match, unsigned n);

/* Wrap io's start and append (after raft_init, before raft_start) so that
 * r, the raft over io, commits as above.  Installing on the same io again
 * resets the counts.  RS_OK, or RS_ETOOLARGE when RAFTCOMMIT_IO_MAX ios
 * are wrapped already. */
int raftcommit_install(struct raft_io *io, struct raft *r);

/* Since the install: answers on which the leader committed further than
 * c-raft 0.15 would have; answers and appends on which c-raft would have
 * committed an older term's entry by counting, and did not. */
uint64_t raftcommit_advanced_count(const struct raft_io *io);
uint64_t raftcommit_held_count(const struct raft_io *io);

/* raftstore_raft_commits_advanced_total and
 * raftstore_raft_old_term_commits_held_total.  RS_OK or RS_EINVAL. */
int raftcommit_metrics_register(struct raft_io *io, struct metrics *ms);

#endif /* RS_RAFTCOMMIT_H */
