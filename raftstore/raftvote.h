/*
 * raftvote: a follower that saw its leader's connection end grants votes
 * as if it had no leader (docs/architecture.md, c-raft guard 17).
 *
 * c-raft 0.15 refuses every vote and pre-vote while it is a follower that
 * knows a leader (recvRequestVote: current_leader.id != 0, with no time
 * limit), and a follower forgets its leader only by standing itself.  So
 * after a leader's crash the first survivor to stand is refused by the
 * other until that one stands too, and the election ends with the later
 * of the two survivors' timers (guard 8 shortens both; this removes the
 * wait for the second).  etcd's raft refuses only within an election
 * timeout of hearing from its leader.
 *
 * raftvote_install wraps the backend's receive: a RequestVote (or
 * pre-vote) that reaches this node while the node's leader_gone callback
 * says its leader's connection ended (the node's fast election, guard 8)
 * reaches c-raft with disrupt_leader set, the flag c-raft itself sets for
 * a leadership transfer, whose only effect on the receiver is to skip
 * that refusal.  Every other check stands: the term, this node's own vote
 * in the term, the candidate's log against this node's.  So safety is
 * Raft's (one vote per term, the more complete log wins); what changes is
 * only that a survivor may win before the other's timer runs out.  If the
 * leader in fact lives (only a connection ended), its heartbeats reach
 * this node over a new connection within one heartbeat, and the node
 * stops saying so; until then a vote here may cost the leader its term,
 * as any election does.  Not while this follower installs a snapshot
 * (c-raft guard 22, as upstream 2a38d3d): c-raft's answer to the install
 * goes to the leader it knows, which a vote's new term would forget (a
 * null address, which raft_uv would read).  Runs on the io's loop; never
 * blocks.
 */
#ifndef RS_RAFTVOTE_H
#define RS_RAFTVOTE_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

struct metrics;

/* How many raft_io instances one process may wrap (a node has one; the
 * unit tests' fixtures a few). */
#define RAFTVOTE_IO_MAX 8

/* Whether this node, a follower of leader, saw that leader's connection
 * end and has not heard from a leader since.  On the loop. */
typedef bool (*raftvote_leader_gone_fn)(void *ctx, raft_id leader);

/* Wrap io's start (before raft_start) so that vote requests pass as above.
 * r is the node's raft (for its state and leader).  Installing on the same
 * io again replaces the callback and resets the count.  RS_OK, or
 * RS_ETOOLARGE when RAFTVOTE_IO_MAX ios are wrapped already. */
int raftvote_install(struct raft_io *io, struct raft *r,
		     raftvote_leader_gone_fn leader_gone, void *ctx);

/* Vote requests passed with disrupt_leader set since the install. */
uint64_t raftvote_count(const struct raft_io *io);

/* raftstore_raft_votes_unblocked_total.  RS_OK or RS_EINVAL. */
int raftvote_metrics_register(struct raft_io *io, struct metrics *ms);

#endif /* RS_RAFTVOTE_H */
