/*
 * rsctl snapshot: back up a live cluster to one file and restore a new
 * cluster from it (docs/backup-format.md, docs/operations.md).
 *
 *   save     rsctl_snapshot.c: every key at one read version, read page by
 *            page from a live node, into a snapshot file (storage/backup.h)
 *   status   rsctl_snapshot.c: verify a file and describe it
 *   restore  rsctl_snapshot_restore.c: verify a file whole, then write one
 *            node's data dir as the starting state of a new cluster
 */
#ifndef RS_RSCTL_SNAPSHOT_H
#define RS_RSCTL_SNAPSHOT_H

#include "tools/rsctl.h"

/* `rsctl snapshot restore ...`, argv[0] = "restore"; an rsctl_exit code. */
int snap_restore_run(int argc, char **argv);

#endif /* RS_RSCTL_SNAPSHOT_H */
