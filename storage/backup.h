/*
 * backup: the snapshot file of `rsctl snapshot save`: every key of a
 * cluster (user keys and the \xff system space) at one version, in a form
 * that is checked end to end before anything is restored from it
 * (docs/backup-format.md).
 *
 * Format version 1.  All integers little-endian.
 *
 * Header (64 bytes):
 *   0   8  magic          "RSBACKUP"
 *   8   4  format         BACKUP_FORMAT_VERSION (1)
 *   12  4  flags          0
 *   16  8  version        every key is as of this commit version
 *   24  8  epoch          the director epoch at `version` (the value of
 *                         \xff/system/epoch in the data; 0 if absent)
 *   32  8  created_ms     Unix time of the save, milliseconds
 *   40 16  cluster_id     the source cluster's ID (all zero: not known)
 *   56  4  reserved       0
 *   60  4  crc32c         of bytes 0..59
 * Chunks, zero or more, each:
 *   0   4  tag            "RSBC"
 *   4   4  payload_len    1 .. BACKUP_CHUNK_PAYLOAD_MAX
 *   8   4  entries        key/value entries in the payload (>= 1)
 *   12  4  crc32c         of bytes 0..11 and the payload
 *   16  .. payload        entries as in an MVCC image (storage/mvcc.h):
 *                         key_len u32 | key | val_len u32 | val, keys
 *                         strictly increasing across the whole file
 * Trailer (40 bytes), then the end of the file:
 *   0   4  tag            "RSBT"
 *   4   4  chunks         number of chunks
 *   8   8  keys           number of entries in all chunks
 *   16  8  image_bytes    sum of the payload lengths
 *   24  8  version        the header's version again
 *   32  4  image_crc32c   CRC-32C of all payloads concatenated (the image)
 *   36  4  crc32c         of trailer bytes 0..35
 *
 * Guarantees: the writer writes FILE.tmp, fsyncs it, renames it to FILE
 * and fsyncs the directory, so FILE is either absent or complete.  The
 * decoder checks every byte (checksums, structure, key order and limits,
 * counts against the trailer, no byte after it) and names the offset and
 * the fault; a truncated file always lacks its trailer, so it is refused.
 */
#ifndef RS_BACKUP_H
#define RS_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "raftstore/lib/buf.h"

#define BACKUP_MAGIC "RSBACKUP"
#define BACKUP_FORMAT_VERSION 1u
#define BACKUP_HEADER_SIZE 64u
#define BACKUP_CHUNK_HEAD_SIZE 16u
#define BACKUP_TRAILER_SIZE 40u
#define BACKUP_CHUNK_TAG "RSBC"
#define BACKUP_TRAILER_TAG "RSBT"
#define BACKUP_CLUSTER_ID_SIZE 16u
/* The writer closes a chunk once its payload reaches this size. */
#define BACKUP_CHUNK_PAYLOAD_TARGET (1u << 20)
/* A chunk holds at most the target plus one maximal entry; the decoder
 * refuses more. */
#define BACKUP_CHUNK_PAYLOAD_MAX (4u << 20)

struct backup_header {
	uint32_t format;
	uint64_t version;
	uint64_t epoch;
	uint64_t created_ms;
	uint8_t cluster_id[BACKUP_CLUSTER_ID_SIZE];
};

/* What a verified file holds. */
struct backup_info {
	struct backup_header header;
	uint32_t chunks;
	uint64_t keys;
	uint64_t image_bytes;
	uint32_t image_crc;
	uint64_t file_bytes;
};

/* Called for each entry, in key order, while decoding; non-zero stops the
 * decode, which then returns that value. */
typedef int (*backup_entry_fn)(void *ctx, const uint8_t *key, uint32_t key_len,
			       const uint8_t *val, uint32_t val_len);

/*
 * Verify and decode a whole file held in data[0..len).  RS_OK with *info
 * filled; RS_ECORRUPT (checksum, structure, order, a count, truncation) or
 * RS_EFORMAT (unknown format version) with errmsg (RS_ERRMSG_SIZE bytes,
 * may be NULL) naming the byte offset and the fault.  fn (may be NULL) sees
 * each entry as it is checked, so a caller that must not act on a bad file
 * collects what fn gives and uses it only after RS_OK.  Pure: no I/O.
 */
int backup_decode(const uint8_t *data, size_t len, struct backup_info *info,
		  backup_entry_fn fn, void *ctx, char *errmsg);

/* Read FILE whole and backup_decode it; errmsg names the file. */
int backup_read_file(const char *path, uint8_t **data, size_t *len,
		     struct backup_info *info, backup_entry_fn fn, void *ctx,
		     char *errmsg);

/* Streaming writer.  Blocks on the disk (a tool, not the loop). */
struct backup_writer {
	char path[4096];
	char tmp_path[4100];
	int fd;
	off_t off;
	struct backup_header header;
	struct rs_buf chunk; /* the open chunk: head placeholder + payload */
	uint32_t chunk_entries;
	uint32_t chunks;
	uint64_t keys;
	uint64_t image_bytes;
	uint32_t image_crc;
	struct rs_buf last_key;
};

/* Create path.tmp (replacing a stale one).  h->format is ignored (the
 * writer writes BACKUP_FORMAT_VERSION); h->epoch may be changed until
 * finish (backup_writer_set_epoch). */
int backup_writer_open(struct backup_writer *w, const char *path,
		       const struct backup_header *h, char *errmsg);
/* Add one entry; keys must come strictly increasing, within the limits of
 * batch.h (RS_EINVAL naming the fault otherwise).  I/O errors as fileio. */
int backup_writer_add(struct backup_writer *w, const uint8_t *key,
		      uint32_t key_len, const uint8_t *val, uint32_t val_len,
		      char *errmsg);
void backup_writer_set_epoch(struct backup_writer *w, uint64_t epoch);
/* Write the last chunk, the trailer and the header, fsync, rename to the
 * final path, fsync its directory.  On error the temp file is removed.
 * *info (may be NULL) describes what was written. */
int backup_writer_finish(struct backup_writer *w, struct backup_info *info,
			 char *errmsg);
/* Give up: close and remove the temp file. */
void backup_writer_abort(struct backup_writer *w);

#endif /* RS_BACKUP_H */
