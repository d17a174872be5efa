/*
 * readquorum: proof that this node was still the Raft leader after a
 * linearizable read arrived, with no write to the Raft log.
 *
 * The proxy's first answer to a read version was a c-raft barrier: an
 * entry appended, replicated and fsynced on a majority, per batch of
 * reads.  That is correct and costs a disk flush on every node.  Raft's
 * ReadIndex (the thesis, section 6.4) needs only a round of messages: this
 * module asks every voter, over the client port (wire.h TERM), for its
 * Raft term now.
 *
 * The rule.  Let L be the leader of term T, whose proxy has committed an
 * entry of term T (its startup barrier), so that everything committed by an
 * earlier leader is applied on L.  A read arrives at L at moment a.  If a
 * majority of the voters each had term T at some moment at or after a (L
 * itself at a; a member when it answered a TERM question sent after a),
 * then no leader of a later term was elected before a: its majority would
 * share a member with this one, and that member would have had to vote in
 * the later term, raising its term above T, before a (c-raft stores a term
 * and a vote before it answers a vote request, and a term never goes back).
 * So every write acknowledged before a was committed in a term up to T,
 * is in L's log and applied on L: L's applied state answers the read.
 *
 * Moments are a counter, not clocks: each read takes the counter's value
 * when it arrives (readquorum_arrive) and each question the next value
 * when it is sent; an answer with term T confirms every read whose value
 * is below its question's.  Each member has at most one question in
 * flight; reads that arrive meanwhile wait for the next one, so a burst of
 * reads costs one round per member.
 *
 * What it never does: count an answer from another node than the one
 * asked (the answer names its node id), from another cluster (the
 * question carries the cluster ID and the member refuses a foreign one),
 * or of another term; count this node when it is not a voter; or confirm
 * anything after readquorum_set_term(0), or once c-raft's term or role is
 * no longer the one set.  When no majority can answer (members down, or of
 * an older version that does not know TERM: each failure rests that member
 * for a second), readquorum_check says READQUORUM_UNAVAILABLE and the
 * caller uses the barrier, which is never less safe.
 *
 * Loop thread only; not inside c-raft's callbacks.
 */
#ifndef RS_READQUORUM_H
#define RS_READQUORUM_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/metrics.h"

struct readquorum_options {
	uint64_t self_id;
	/* A member's client address ("host:port"), or NULL if unknown. */
	const char *(*peer_addr)(void *ctx, uint64_t id);
	/* This cluster's ID (16 bytes; all zero while unknown). */
	void (*cluster_id)(void *ctx, uint8_t out[16]);
	/* An answer came (or a member failed): check the waiting reads. */
	void (*on_progress)(void *ctx);
	unsigned timeout_ms; /* per question, retries included; 0 = 1000 */
	void *ctx;
};

struct readquorum;

int readquorum_create(struct readquorum **out, uv_loop_t *loop,
		      struct raft *raft, const struct readquorum_options *o);
/* Stops asking, closes the connections and frees; cb (may be NULL) on the
 * loop once every handle is closed.  No on_progress after this call. */
void readquorum_close(struct readquorum *rq, void (*cb)(void *arg),
		      void *arg);

/* This node is the leader of `term` and an entry of that term is
 * committed (0: not the leader).  Forgets every answer of another term. */
void readquorum_set_term(struct readquorum *rq, raft_term term);

/* A read arrived now: its stamp.  Asks the members whose last confirming
 * answer is older. */
uint64_t readquorum_arrive(struct readquorum *rq);

enum readquorum_verdict {
	READQUORUM_WAIT,       /* not yet: an answer that may confirm is due */
	READQUORUM_CONFIRMED,  /* serve at the applied state */
	READQUORUM_UNAVAILABLE /* cannot confirm: use the barrier */
};
/* Verdicts are monotone in the stamp: if a read is confirmed, so is every
 * read with a smaller stamp. */
enum readquorum_verdict readquorum_check(struct readquorum *rq,
					 uint64_t stamp);

struct readquorum_stats {
	uint64_t questions;  /* TERM frames sent */
	uint64_t answers;    /* answers that confirmed (term matched) */
	uint64_t refused;    /* failures and answers that did not confirm */
};
void readquorum_get_stats(const struct readquorum *rq,
			  struct readquorum_stats *st);

/*
 * The counting rule alone, for tests: with the configuration's voters,
 * self_id and, per member i of ids[0..n), confirmed[i] (the stamp of its
 * last confirming question, 0 if none) and usable[i] (a question to it is
 * out, so it may still answer):
 * CONFIRMED if a majority of voters confirmed after stamp (self counts
 * when it is a voter), UNAVAILABLE if even every usable member would not
 * make one, WAIT otherwise.
 */
enum readquorum_verdict readquorum_count(const struct raft_configuration *c,
					 uint64_t self_id,
					 const uint64_t *ids,
					 const uint64_t *confirmed,
					 const bool *usable, unsigned n,
					 uint64_t stamp);

#endif /* RS_READQUORUM_H */
