/*
 * raftcall: the one door through which raftstore asks c-raft for work, and
 * the guard that keeps c-raft's callbacks from re-entering it.
 *
 * c-raft 0.15 runs our callbacks while it is in the middle of changing its
 * own state.  The sharpest case: when a leader steps down, clearLeader()
 * frees the progress array and then fails every pending apply and barrier,
 * calling each callback while r->state is still RAFT_LEADER.  A raft_apply()
 * or raft_barrier() issued from such a callback is accepted, appended to a
 * leader that no longer has its progress array, and crashes the node (the
 * isolated-leader SIGSEGV of issue 10).  The same holds for the FSM's apply,
 * snapshot and restore hooks and for the close callback.
 *
 * The rule this module enforces:
 *   - every c-raft callback of ours brackets its body with
 *     raftcall_cb_enter() / raftcall_cb_leave() and does no more than record
 *     the outcome; the work that follows runs later, from the loop;
 *   - every request to c-raft goes through raftcall_apply() or
 *     raftcall_barrier(), which abort with a log line naming the request
 *     when called inside a callback.  A new re-entry is therefore caught by
 *     the first test that reaches it, never left to a peer's timing.
 *
 * One event loop per process, so the depth counter is a plain static.
 */
#ifndef RS_RAFTCALL_H
#define RS_RAFTCALL_H

#include <raft.h>
#include <stdbool.h>

/* Mark entry to / exit from a c-raft callback.  `what` names the callback
 * for the abort message ("proxy apply callback"); pairs nest. */
void raftcall_cb_enter(const char *what);
void raftcall_cb_leave(void);

/* True while a c-raft callback of ours is running. */
bool raftcall_in_callback(void);

/* raft_apply / raft_barrier with the guard: same arguments, same return
 * codes, same ownership of req and bufs as c-raft's own.  Abort if called
 * from inside a c-raft callback. */
int raftcall_apply(struct raft *r, struct raft_apply *req,
		   const struct raft_buffer bufs[], unsigned n,
		   raft_apply_cb cb);
int raftcall_barrier(struct raft *r, struct raft_barrier *req,
		     raft_barrier_cb cb);
/* The configuration changes (raft_add, raft_assign, raft_remove) and
 * raft_transfer, with the same guard. */
int raftcall_add(struct raft *r, struct raft_change *req, raft_id id,
		 const char *address, raft_change_cb cb);
int raftcall_assign(struct raft *r, struct raft_change *req, raft_id id,
		    int role, raft_change_cb cb);
int raftcall_remove(struct raft *r, struct raft_change *req, raft_id id,
		    raft_change_cb cb);
int raftcall_transfer(struct raft *r, struct raft_transfer *req, raft_id id,
		      raft_transfer_cb cb);

#endif /* RS_RAFTCALL_H */
