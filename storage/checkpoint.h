/*
 * checkpoint: full snapshots of the store at one version.
 *
 * A checkpoint file ckpt-<version:016x>.rsc holds an mvcc image (mvcc.h) cut
 * into chunks of up to CHECKPOINT_CHUNK_RAW bytes, each LZ4-compressed and
 * checksummed, so a checkpoint is written and read in bounded memory chunks
 * and a flipped bit names the chunk it hit.
 *
 * File header (48 bytes, little-endian):
 *
 *   offset 0   u8[8] magic          "RSCKPT\r\n"
 *   offset 8   u32   format_version CHECKPOINT_FORMAT_VERSION (1)
 *   offset 12  u32   flags          0
 *   offset 16  u64   version        state is as of this batch version
 *   offset 24  u64   epoch          epoch of that batch
 *   offset 32  u64   key_count
 *   offset 40  u32   chunk_count
 *   offset 44  u32   crc            CRC-32C of bytes [0, 44)
 *
 * Then chunk_count chunks:  raw_len u32 | comp_len u32 | crc u32 | data,
 * where crc is CRC-32C of the compressed data and data decodes to raw_len
 * bytes.  Then a trailer: u32 magic 0x54504b43 ("CKPT") | u32 CRC-32C of every
 * preceding byte of the file.  A file is valid only if header, every chunk
 * and the trailer verify, and nothing follows the trailer.
 *
 * Writing is crash-safe: the data goes to ckpt-<version>.rsc.tmp, which is
 * fsynced, renamed over the final name, and then the directory is fsynced.
 * A leftover .tmp file is never read and is removed by checkpoint_prune.
 * All functions block (file I/O): run them on the thread pool, or at
 * start-up.
 */
#ifndef RS_CHECKPOINT_H
#define RS_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "rs_error.h"

#define CHECKPOINT_FORMAT_VERSION 1u
#define CHECKPOINT_HEADER_SIZE 48u
#define CHECKPOINT_MAGIC "RSCKPT\r\n"
#define CHECKPOINT_CHUNK_RAW (1024u * 1024u)
#define CHECKPOINT_KEEP_DEFAULT 3u

struct checkpoint_info {
	char name[64];
	uint64_t version;
	uint64_t epoch;
	uint64_t key_count;
	uint32_t chunk_count;
	uint64_t file_size;
	uint64_t raw_size; /* image bytes, once verified */
};

/* Write image (an mvcc image at version) as a checkpoint in dir, crash-safe
 * as described above.  RS_EEXIST if that version already has a checkpoint. */
int checkpoint_write(const char *dir, uint64_t version, uint64_t epoch,
		     uint64_t key_count, const uint8_t *image, size_t len,
		     char *errmsg);

/* Verify one file completely; if image is non-NULL, decode the image into it
 * (rs_buf, reset first).  RS_ECORRUPT / RS_EFORMAT / RS_ETORN (file ends
 * early) with errmsg naming the file, and the chunk or offset. */
int checkpoint_read(const char *path, struct checkpoint_info *info,
		    struct rs_buf *image, char *errmsg);

/* List ckpt-*.rsc in dir, newest version first (malloc'ed; caller frees).
 * Only names are parsed; contents are not checked. */
int checkpoint_list(const char *dir, struct checkpoint_info **list,
		    unsigned *n, char *errmsg);

/* What checkpoint_load_latest skipped on its way to a valid checkpoint. */
struct checkpoint_load_report {
	unsigned skipped; /* corrupt newer checkpoints passed over */
	char skipped_error[RS_ERRMSG_SIZE]; /* why the newest one was skipped */
};

/*
 * Load the newest valid checkpoint in dir into image and info.  A corrupt
 * newer one is skipped (and reported) in favour of an older valid one.
 * RS_ENOTFOUND if dir has no checkpoint at all (a fresh store: not an
 * error for the caller); RS_ECORRUPT if every one is bad.
 */
int checkpoint_load_latest(const char *dir, struct checkpoint_info *info,
			   struct rs_buf *image,
			   struct checkpoint_load_report *report, char *errmsg);

/* Keep the newest `keep` checkpoints; delete older ones and any *.tmp.
 * *oldest_kept is set to the version of the oldest kept (0 if none). */
int checkpoint_prune(const char *dir, unsigned keep, uint64_t *oldest_kept,
		     char *errmsg);

#endif /* RS_CHECKPOINT_H */
