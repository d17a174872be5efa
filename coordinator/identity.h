/*
 * identity: who a data dir belongs to, kept in DIR/identity.
 *
 * The file names the node the dir belongs to and the cluster it is part of
 * (a random 128-bit ID drawn by the cluster's founder, the lowest id of
 * --initial-cluster; all zero while a node has not yet learned it).  It is
 * fixed size, little-endian, checksummed (docs/storage-format.md,
 * "Identity file"):
 *
 *   0   8  magic "RSIDENT\0"
 *   8   4  format_version (1)
 *   12  4  flags (0)
 *   16  8  node_id
 *   24 16  cluster_id (all zero: not yet known)
 *   40  4  crc32c of bytes 0..39
 *
 * Guarantees: identity_write replaces the file atomically and durably
 * (temp, fsync, rename, fsync dir), so a reader sees the old file or the
 * new one, never a mix.  identity_read verifies every byte; a short, long,
 * damaged or unknown-version file is refused with a message naming the
 * file and the fault, and nothing here ever rewrites a bad file.
 */
#ifndef RS_IDENTITY_H
#define RS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDENTITY_FILE "identity"
#define IDENTITY_MAGIC "RSIDENT\0"
#define IDENTITY_FORMAT_VERSION 1u
#define IDENTITY_SIZE 44u
#define IDENTITY_CLUSTER_ID_SIZE 16u
#define IDENTITY_CLUSTER_HEX_SIZE (2u * IDENTITY_CLUSTER_ID_SIZE + 1u)

struct identity {
	uint64_t node_id;
	uint8_t cluster_id[IDENTITY_CLUSTER_ID_SIZE];
};

/* Read DIR/identity: RS_OK; RS_ENOTFOUND if absent; RS_ECORRUPT (wrong
 * size, magic, flags or checksum) or RS_EFORMAT (unknown version) naming
 * the file and the fault; RS_EIO if it cannot be read.  errmsg:
 * RS_ERRMSG_SIZE bytes or NULL. */
int identity_read(const char *data_dir, struct identity *out, char *errmsg);

/* Write DIR/identity durably: DIR/identity.tmp, fsync, rename, fsync DIR. */
int identity_write(const char *data_dir, const struct identity *id,
		   char *errmsg);

/* The cluster ID is known (not all zero). */
bool identity_cluster_known(const struct identity *id);

/* The cluster ID as 32 lowercase hex digits, or "" when unknown. */
void identity_cluster_hex(const struct identity *id,
			  char out[IDENTITY_CLUSTER_HEX_SIZE]);

/* A fresh random cluster ID from getrandom(2); never all zero. */
int identity_new_cluster_id(uint8_t out[IDENTITY_CLUSTER_ID_SIZE],
			    char *errmsg);

/* Encode into buf (IDENTITY_SIZE bytes) / decode from it, for the file
 * and for tests.  identity_decode's errmsg names the fault, not a file. */
void identity_encode(const struct identity *id, uint8_t *buf);
int identity_decode(const uint8_t *buf, size_t len, struct identity *out,
		    char *errmsg);

#endif /* RS_IDENTITY_H */
