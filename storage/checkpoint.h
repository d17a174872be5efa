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
 * where crc is CRC-32C of the compressed data (comp_len bytes) and data
 * decodes to raw_len bytes, 1 <= raw_len <= CHECKPOINT_CHUNK_RAW and
 * 1 <= comp_len <= LZ4_compressBound(CHECKPOINT_CHUNK_RAW).  The writer
 * fills every chunk but the last; an empty image has no chunks.  Then a
 * trailer: u32 magic 0x54504b43 ("CKPT") | u32 CRC-32C of every preceding
 * byte of the file (trailer magic included).  A file is valid only if
 * header, every chunk and the trailer verify, and nothing follows the
 * trailer.  docs/storage-format.md draws the layout byte by byte.
 *
 * Writing is crash-safe: the data goes to ckpt-<version>.rsc.tmp, which is
 * fsynced, renamed over the final name, and then the directory is fsynced.
 * A leftover .tmp file is never read and is removed by checkpoint_prune.
 * Writes and prunes of one directory must not run concurrently (prune
 * deletes every .tmp, including one being written); reads may run at any
 * time.  All functions block (file I/O): run them on the thread pool, or
 * at start-up.  Every errmsg argument is required (RS_ERRMSG_SIZE bytes).
 */
#ifndef RS_CHECKPOINT_H
#define RS_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"

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

/*
 * Write image (an mvcc image at version) as a checkpoint in dir, crash-safe
 * as described above.  RS_EEXIST if that version already has a checkpoint;
 * RS_ETOOLARGE if the image needs more than 2^32-1 chunks.  On any error no
 * file of that version is left behind, so a retry can follow: the .tmp is
 * removed (best effort), and if only the final directory fsync failed the
 * renamed file is unlinked too (its content was fsynced, so a crash that
 * loses the unlink leaves a valid checkpoint, never a bad one).  errmsg
 * names the path and the step ("header", "chunk 3", "fsync", "rename").
 */
int checkpoint_write(const char *dir, uint64_t version, uint64_t epoch,
		     uint64_t key_count, const uint8_t *image, size_t len,
		     char *errmsg);

/*
 * Verify one file completely; if image is non-NULL, decode the image into it
 * (rs_buf, reset first: len = 0, memory kept).  info may be NULL; it gets
 * the header fields, file_size and raw_size (name is the path's last
 * component).  Memory: one compressed chunk (and one raw chunk when image
 * is NULL) besides the image.  Errors, with errmsg naming the file and the
 * chunk index and offset, and image->len reset to 0:
 *   RS_EFORMAT   format version not CHECKPOINT_FORMAT_VERSION (the message
 *                gives the version found; checked before the header CRC,
 *                since another version may lay the header out differently),
 *                or unknown flags;
 *   RS_ETORN     the file ends before the structure it declares does (a
 *                cut file, or a damaged length field pointing past the end);
 *   RS_ECORRUPT  bad magic, a CRC mismatch, a length out of range, a chunk
 *                that does not decode to raw_len, bytes after the trailer;
 *   RS_EIO etc.  from fileio (open, read).
 * A checkpoint is only ever renamed into place whole, so callers treat
 * RS_ETORN like RS_ECORRUPT: the file is not usable.
 */
int checkpoint_read(const char *path, struct checkpoint_info *info,
		    struct rs_buf *image, char *errmsg);

/* List ckpt-<16 lowercase hex digits>.rsc in dir, newest version first
 * (malloc'ed, caller frees; NULL when *n is 0).  Only names are parsed
 * (name and version are set, the rest is 0); contents are not checked.
 * .tmp files and other names are ignored.  RS_ENOTFOUND if dir is missing. */
int checkpoint_list(const char *dir, struct checkpoint_info **list,
		    unsigned *n, char *errmsg);

/* What checkpoint_load_latest skipped on its way to a valid checkpoint. */
struct checkpoint_load_report {
	unsigned skipped; /* corrupt newer checkpoints passed over */
	char skipped_error[RS_ERRMSG_SIZE]; /* why the newest one was skipped */
};

/*
 * Load the newest valid checkpoint in dir into image and info.  A corrupt
 * newer one is skipped (and reported) in favour of an older valid one; so
 * is one whose header version disagrees with its name.  Any read error
 * skips a file except RS_ENOMEM, which is returned at once.  image may be
 * NULL (verify only); report may be NULL.  RS_ENOTFOUND if dir has no
 * checkpoint at all, or does not exist (a fresh store: not an error for
 * the caller); RS_ECORRUPT if every one is bad (report->skipped is then the
 * count, and errmsg carries the newest one's error).
 *
 * Falling back is only sound if the journal still holds the batches after
 * the older checkpoint: truncate the journal no further than the
 * oldest_kept that checkpoint_prune reports.
 */
int checkpoint_load_latest(const char *dir, struct checkpoint_info *info,
			   struct rs_buf *image,
			   struct checkpoint_load_report *report, char *errmsg);

/*
 * Keep the newest `keep` (>= 1, else RS_EINVAL) checkpoints; delete older
 * ones and every leftover ckpt-*.rsc.tmp (other files are left alone), then
 * fsync dir if anything was deleted.  Goes by names only: a corrupt newest
 * file still counts as kept.  *oldest_kept is set to the version of the
 * oldest kept (0 if none).  On an unlink error the remaining deletions are
 * not attempted, but those done are still made durable.
 */
int checkpoint_prune(const char *dir, unsigned keep, uint64_t *oldest_kept,
		     char *errmsg);

#endif /* RS_CHECKPOINT_H */
