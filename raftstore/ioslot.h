/*
 * ioslot: the slot table every c-raft guard that wraps a raft_io keeps
 * (raftcommit, raftmend, raftresend, rafttick, raftvote): a fixed array
 * of per-io structs, each beginning with the struct raft_io * it wraps
 * (NULL for a free slot), looked up by that pointer.  A handful of slots,
 * so a walk; on the io's loop, like the guards.
 */
#ifndef RS_IOSLOT_H
#define RS_IOSLOT_H

#include <raft.h>
#include <stddef.h>

/* The slot of slots[0, n) (each `size` bytes, its first member a
 * struct raft_io *) that wraps io, or with io NULL the first free one;
 * NULL if none. */
void *ioslot_find(void *slots, unsigned n, size_t size,
		  const struct raft_io *io);

#endif /* RS_IOSLOT_H */
