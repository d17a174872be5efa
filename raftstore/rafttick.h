/*
 * rafttick: how often c-raft looks at its timers (docs/architecture.md,
 * c-raft guard 14).
 *
 * c-raft 0.15 asks its I/O backend for a tick every heartbeat timeout
 * (raft_start passes that to io->start) and looks at its timers only on a
 * tick: a follower's or candidate's election timer, the leader's
 * heartbeats, its check for a quorum.  So a timer that runs out is seen up
 * to one heartbeat late, and the processes of a cluster started together
 * tick together.  After a leader's crash both survivors draw their (fast)
 * election timers from the same last heartbeat; when the two draws fall
 * between the same two ticks, both stand on the same tick, grant each
 * other's pre-vote, vote for themselves, and the vote splits: another
 * round of 200-400 ms, and again while the draws keep falling together.
 *
 * rafttick_install wraps the backend's start so that c-raft ticks every
 * tick_ms instead.  c-raft measures its timers by the backend's clock
 * (io->time), not by counting ticks, so a faster tick changes when a
 * timer's end is seen, never its length: a leader still sends a heartbeat
 * once per heartbeat timeout and checks its quorum once per election
 * timeout.  What a tick costs is a look at a few fields (tick.c).
 *
 * It also holds back the tick of a follower that installs a leader's
 * snapshot once its election timer has run out (c-raft guard 22; upstream
 * 4fbd3c0, 0.17.1).  c-raft 0.15 would stand on that tick, and when the
 * snapshot's put completes it answers the leader through the follower's
 * fields of struct raft, which a candidate's state overlays: a garbage
 * peer id and address (raft_uv then reads the address).  Held, the
 * follower stands on the first tick after the install, if no leader was
 * heard by then.
 */
#ifndef RS_RAFTTICK_H
#define RS_RAFTTICK_H

#include <raft.h>
#include <stdint.h>

/* How many raft_io instances one process may wrap (a node has one; the
 * unit tests' fixtures a few). */
#define RAFTTICK_IO_MAX 8

/* The node's pace for a heartbeat timeout: a tenth of it, at least 1 ms. */
unsigned rafttick_pace_ms(unsigned heartbeat_timeout_ms);

/* Wrap io's start, before raft_start, so that c-raft ticks every tick_ms
 * (> 0).  Installing on the same io again changes the pace.  RS_OK, or
 * RS_ETOOLARGE when RAFTTICK_IO_MAX ios are wrapped already. */
int rafttick_install(struct raft_io *io, unsigned tick_ms);

/* Ticks held back since the install (guard 22). */
uint64_t rafttick_held_count(const struct raft_io *io);

/* raftstore_raft_candidacy_held_ticks_total.  RS_OK or RS_EINVAL. */
struct metrics;
int rafttick_metrics_register(struct raft_io *io, struct metrics *ms);

#endif /* RS_RAFTTICK_H */
