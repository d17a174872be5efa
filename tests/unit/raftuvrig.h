/*
 * raftuvrig: c-raft's own raft_uv on a directory, for the unit tests of
 * what the daemon interposes under it (segfill, snapsync): a bootstrapped
 * one-voter log, loaded and ready for an append or a snapshot put.
 */
#ifndef RS_RAFTUVRIG_H
#define RS_RAFTUVRIG_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct raftuvrig {
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_configuration conf; /* server 1, "127.0.0.1:9", a voter */
};

/* A loop, a TCP transport and raft_uv on dir, initialised as server 1,
 * bootstrapped with conf, its log loaded (and the entries freed):
 * ready for an append or a snapshot put.  segment_size 0 keeps raft_uv's
 * own.  Aborts the test on failure. */
void raftuvrig_open(struct raftuvrig *r, const char *dir,
			   size_t segment_size, bool compress_snapshots);
/* Close the io (running the loop until it has) and the rest. */
void raftuvrig_close(struct raftuvrig *r);

#endif /* RS_RAFTUVRIG_H */
