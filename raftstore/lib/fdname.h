/*
 * fdname: which file of a directory a descriptor is open on.
 *
 * The daemon's interposers (segfill, snapsync) see only a descriptor from
 * raft_uv and act on the files of the node's Raft directory alone.  The
 * kernel names a descriptor's file by its canonical path in
 * /proc/self/fd, so the directory is resolved once with realpath and each
 * descriptor's path compared with it.  No allocation; safe on any thread
 * (the caller guards a shared fdname_dir).
 */
#ifndef RS_FDNAME_H
#define RS_FDNAME_H

#include <limits.h>
#include <stddef.h>

struct fdname_dir {
	char path[PATH_MAX]; /* canonical */
	size_t len;
};

/* Resolve dir (an existing directory) into d.  RS_OK, or RS_EINVAL with
 * errmsg naming dir and the reason. */
int fdname_dir_set(struct fdname_dir *d, const char *dir, char *errmsg);

/* The name of fd's file if it is an entry of d itself (not of a
 * subdirectory), pointing into buf (PATH_MAX bytes); NULL otherwise (or
 * if fd is not open, or on a pipe or a socket). */
const char *fdname_in_dir(const struct fdname_dir *d, int fd, char *buf);

#endif /* RS_FDNAME_H */
