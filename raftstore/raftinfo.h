/*
 * raftinfo: the one place that reads c-raft's struct raft.
 *
 * Written against c-raft 0.15.0 (Debian libraft-dev).  Where c-raft has a
 * function, this module calls it: raft_state() for the role, raft_leader()
 * for the leader, raft_last_applied() for the applied index.  c-raft 0.15
 * has no function for the rest, so these fields of struct raft are read
 * here, and nowhere else in raftstore, so that an upgrade that moves them
 * changes this file only:
 *
 *   current_term    logged on role changes; STATUS "term"
 *   commit_index    STATUS "commit_index"; the apply-lag gauge
 *   configuration   STATUS/MEMBERS "members"; the start-up check of the
 *                   stored configuration against the given members; the
 *                   director's list of servers
 *   configuration_index, configuration_uncommitted_index
 *                   whether that configuration is committed (a node that
 *                   is not in a committed one was removed)
 *   leader_state.progress[i].match_index
 *                   the director's log-lag check (leader only: c-raft frees
 *                   the progress array when it steps down)
 *   election_timer_start
 *                   whether a follower heard from a leader since a moment
 *                   (the fast election after a leader's connection closed)
 *   log.offset, log.snapshot.last_index, log.snapshot.last_term
 *                   the mend of an AppendEntries that reaches below the
 *                   snapshot (raftmend, c-raft guard 12)
 *
 *   last_stored, log entries' terms
 *                   the leader's commit rule (raftcommit, c-raft guard 21)
 *   snapshot.put, follower_state.randomized_election_timeout
 *                   whether a follower installs a snapshot, and would stand
 *                   (rafttick, raftvote: c-raft guard 22)
 *
 * and three are written, because c-raft 0.15 has no function for them:
 *
 *   follower_state / candidate_state.randomized_election_timeout
 *                   the length of the running election timer, drawn again
 *                   when the node changes its election timeout
 *                   (raftinfo_redraw_election_timer)
 *   last_stored, leader_state.progress[i].match_index
 *                   set for the length of one c-raft call and put back,
 *                   so that c-raft's commit check asks Raft's question
 *                   (raftcommit, c-raft guard 21)
 *
 * Every other function only reads; none blocks; call them from the loop
 * thread, outside c-raft's callbacks or inside.
 */
#ifndef RS_RAFTINFO_H
#define RS_RAFTINFO_H

#include <raft.h>
#include <stdbool.h>

#include "raftstore/lib/metrics.h"

/* The role, as c-raft reports it (RAFT_LEADER, ...). */
int raftinfo_state(struct raft *r);
/* "leader", "follower", "candidate" or "unavailable" (any other state). */
const char *raftinfo_state_name(int state);
/* The leader this node knows, 0 if none. */
raft_id raftinfo_leader(struct raft *r);

raft_term raftinfo_term(const struct raft *r);
raft_index raftinfo_commit_index(const struct raft *r);
raft_index raftinfo_applied_index(struct raft *r);

/* The configuration c-raft currently uses (committed or not).  Borrowed:
 * valid until the next turn of the loop. */
const struct raft_configuration *raftinfo_configuration(const struct raft *r);
/* Whether that configuration is committed as far as this node knows (a
 * follower may not have learned the commit of the latest one yet). */
bool raftinfo_configuration_committed(const struct raft *r);
/* "voter", "standby" or "spare" (c-raft's RAFT_VOTER, ...). */
const char *raftinfo_server_role_name(int role);

/* The highest log index known to be replicated on the i-th server of the
 * configuration.  Only while this node is the leader: false otherwise, or
 * when i is out of range. */
bool raftinfo_match_index(struct raft *r, unsigned i, raft_index *out);

/* The highest index this node's own log holds durably (c-raft's
 * last_stored), and its setter for raftcommit (see there: set only for
 * the length of one c-raft call, then put back). */
raft_index raftinfo_last_stored(const struct raft *r);
void raftinfo_set_last_stored(struct raft *r, raft_index index);

/* Leader only: set the match index of the i-th server of the
 * configuration (raftcommit: lowered for one c-raft call, then put back).
 * false, with nothing set, when not leading or i is out of range. */
bool raftinfo_set_match_index(struct raft *r, unsigned i, raft_index index);

/* Whether this follower is installing a leader's snapshot (c-raft's
 * put under way, its last stored index reset to 0 for it). */
bool raftinfo_installing_snapshot(const struct raft *r);

/* Follower or candidate: whether its running election timer has run out
 * (c-raft converts to candidate on its next tick); false in other roles. */
bool raftinfo_election_timer_expired(struct raft *r);

/* The term of the entry at index: from the in-memory log, or the last
 * snapshot's term at its index; 0 when this node knows neither. */
raft_term raftinfo_term_at(const struct raft *r, raft_index index);

/* When the running election timer started (c-raft's loop time, ms): for a
 * follower, its last AppendEntries or InstallSnapshot from a leader, a vote
 * it granted, or its last role change; for a candidate, its last round. */
raft_time raftinfo_election_timer_start(const struct raft *r);

/* The in-memory log's last snapshot (index and term; 0 and 0 when there
 * is none) and offset: the index before the first entry the log still
 * holds (at most the snapshot's index; below it by the trailing entries
 * kept). */
struct raftinfo_log_base {
	raft_index snapshot_index;
	raft_term snapshot_term;
	raft_index offset;
};
struct raftinfo_log_base raftinfo_log_base(const struct raft *r);

/* Follower or candidate: draw the running election timer's length again
 * from the election timeout now set, as c-raft does when it starts the
 * timer (uniform in [T, 2T], io->random), keeping its start.  Needed after
 * raft_set_election_timeout, which in c-raft 0.15 sets only the baseline
 * of the next draw (at a role change or a new election round): the running
 * timer keeps its length, and a follower's keeps it across heartbeats,
 * which move only its start.  Does nothing in another role. */
void raftinfo_redraw_election_timer(struct raft *r);

/* Register raftstore_apply_lag_entries (commit index minus applied index),
 * raftstore_raft_term, raftstore_raft_commit_index,
 * raftstore_raft_applied_index and raftstore_is_leader, read from r at
 * every render.  r must outlive ms.  RS_OK, or RS_EINVAL
 * with metrics_errmsg(ms) saying why. */
int raftinfo_metrics_register(struct raft *r, struct metrics *ms);

#endif /* RS_RAFTINFO_H */
