/*
 * node: one raftstore node (the raftstored process): storage, Raft, the
 * commit proxy, the client service and listener, wired on one libuv loop.
 *
 * Start-up first locks the data dir (DIR/LOCK) and reads DIR/identity: a
 * dir in use by another process, or one that belongs to another node,
 * exits 3 before any file is touched.  Then it decides "cold" or "warm"
 * from durable state only:
 *  - warm: <data-dir>/raft holds Raft metadata.  The members come from the
 *    store's \xff/system/coordinators key when it exists; --initial-cluster,
 *    if also given, must agree.
 *  - cold: no Raft metadata and an empty store.  Raft is bootstrapped from
 *    --initial-cluster (required then).  Every node of a new cluster
 *    bootstraps the same configuration, so start order does not matter.
 *  - a store with data but no Raft state is refused (exit 3): that is a
 *    lost or foreign Raft directory, never a reason to start a new cluster.
 *
 * Shutdown (SIGTERM/SIGINT) stops the listener, closes Raft, then the
 * proxy, then the store, and returns 0.  A storage or state machine failure
 * logs the reason and exits 1 at once (fail-stop).
 */
#ifndef RS_NODE_H
#define RS_NODE_H

#include "coordinator/config.h"

#define NODE_EXIT_OK 0
#define NODE_EXIT_FAILURE 1
#define NODE_EXIT_USAGE 2
#define NODE_EXIT_MISMATCH 3

#define NODE_KEY_COORDINATORS "\xff/system/coordinators"

/* Run the node until shutdown; returns the process exit code. */
int node_run(const struct config *cfg);

#endif /* RS_NODE_H */
