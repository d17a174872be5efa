/*
 * plainfix: c-raft's in-memory cluster (raft_fixture) with state machines
 * that apply nothing (and snapshot a byte), for the unit tests of what raftstore does to c-raft
 * itself (raftinfo, raftcall, rafttick, raftcap, raftcommit, ...).
 * raftfix.h is the one whose servers run raftstore's own state machine.
 */
#ifndef RS_PLAINFIX_H
#define RS_PLAINFIX_H

struct raft_fixture;

#define PLAINFIX_SERVERS_MAX 5

/* A cluster of n voters (ids 1..n), started at time 0 with server 0
 * elected.  before_start, if not NULL, runs for each server once it is
 * grown and before the start (to set options, wrap its io).  f is zeroed
 * first; close it with raft_fixture_close.  n <= PLAINFIX_SERVERS_MAX;
 * one cluster at a time per process (Check forks each test). */
void plainfix_start(struct raft_fixture *f, unsigned n,
		    void (*before_start)(struct raft_fixture *f, unsigned i,
					 void *arg),
		    void *arg);

/* Step until a server other than `dead` leads, for at most max_ms of the
 * fixture's time; its index, or n if none did. */
unsigned plainfix_step_until_new_leader(struct raft_fixture *f,
					unsigned dead, unsigned max_ms);

/* Cut both directions between servers i and j (messages held back), or
 * heal them. */
void plainfix_cut(struct raft_fixture *f, unsigned i, unsigned j);
void plainfix_heal(struct raft_fixture *f, unsigned i, unsigned j);

/* raft_apply an 8-byte command on server i, which must lead; req must
 * live until c-raft is done with it (no callback). */
struct raft_apply;
void plainfix_apply_one(struct raft_fixture *f, unsigned i,
			struct raft_apply *req);

#endif /* RS_PLAINFIX_H */
