/*
 * raftresend: a Raft message whose write failed is sent once more
 * (docs/architecture.md, c-raft guard 16).
 *
 * raft_uv 0.15 keeps one outbound connection per peer and notices that it
 * broke only when a write on it fails; it then reconnects, but the message
 * of that write is lost: c-raft gets RAFT_IOERR in the send callback and
 * never sends it again.  A lost AppendEntries costs the leader a heartbeat
 * (it probes again); a lost RequestVote or its answer costs a whole
 * election round.  raftguard (guard 16's other half) makes the first write
 * to a peer that ended the connection fail instead of vanishing; this
 * wrapper of the backend's send then hands the same message to the backend
 * once more, which queues it until the new connection is up, and reports
 * to c-raft the outcome of that second try.
 *
 * Raft allows it: a message may be delayed or duplicated, and each is
 * judged by its term and indexes when it arrives.  The copy is shallow:
 * the entries or snapshot data a message points to stay c-raft's until
 * its callback, which the wrapper calls only once the last try is over.
 * A message is tried at most twice; nothing is resent once the backend
 * closes (c-raft 0.15 asserts on a send to a closing raft_uv).  Without
 * memory for its request a message goes out unguarded.  Runs on the io's
 * loop; never blocks.
 *
 * Install before anything that rewrites messages on their way out
 * (raftmend's reply cap): the resend must send what the backend was given.
 */
#ifndef RS_RAFTRESEND_H
#define RS_RAFTRESEND_H

#include <raft.h>
#include <stdint.h>

struct metrics;

/* How many raft_io instances one process may wrap (a node has one; the
 * unit tests a few). */
#define RAFTRESEND_IO_MAX 8

/* Wrap io's send and close.  Installing on the same io again resets the
 * count.  RS_OK, or RS_ETOOLARGE when RAFTRESEND_IO_MAX ios are wrapped. */
int raftresend_install(struct raft_io *io);

/* Messages sent a second time since the install (0 for an io not
 * wrapped). */
uint64_t raftresend_count(const struct raft_io *io);

/* raftstore_raft_messages_resent_total.  RS_OK or RS_EINVAL. */
int raftresend_metrics_register(struct raft_io *io, struct metrics *ms);

#endif /* RS_RAFTRESEND_H */
