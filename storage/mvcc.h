/*
 * mvcc: the in-memory ordered multi-version index.
 *
 * Maps each key to its recent versions, newest first: values and tombstones
 * (a clear, or a clear-range that covered the key).  Reads at any version in
 * the window [oldest, latest] see exactly the state after the last batch at
 * or below that version.  Range reads return keys in byte order, with a
 * limit, so callers can paginate.
 *
 * The window: oldest = max(base, latest - window_versions), where base is 0
 * for a new index (version 0 is the empty state, so every version from 0 is
 * readable until the window slides past it) and the image version after
 * mvcc_image_load (nothing below an image is known).  Below oldest a version
 * is unreadable ("version too old"), and entries no readable version can see
 * are pruned as writes touch their keys and by mvcc_prune_step().  Memory
 * target: at most twice the raw key and value bytes for small keys (see the
 * storage benchmark).
 *
 * Not thread-safe: one loop owns it.  Allocation failure aborts the process
 * with a message (a half-applied batch would be worse than a crash: the
 * journal replays it on restart).
 */
#ifndef RS_MVCC_H
#define RS_MVCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"

struct mvcc;

/* window_versions: how far below the latest version reads stay possible.
 * Never returns NULL (allocation failure aborts). */
struct mvcc *mvcc_create(uint64_t window_versions);
void mvcc_destroy(struct mvcc *m);

/* Apply every mutation of b at b->version.  RS_EVERSION if b->version is not
 * above mvcc_latest_version(); the index is unchanged then.  b must be valid
 * (built by the batch builders, or checked by batch_body_validate). */
int mvcc_apply(struct mvcc *m, const struct batch *b);

/*
 * Read key at version.  RS_OK with *val and *val_len pointing into the index
 * (valid until the next apply or prune); RS_ENOTFOUND if absent or deleted;
 * RS_ETOOOLD below mvcc_oldest_version(); RS_EFUTURE above latest.
 * *found_version, if non-NULL, is the version that wrote the value.
 */
int mvcc_get(const struct mvcc *m, const void *key, size_t key_len,
	     uint64_t version, const uint8_t **val, uint32_t *val_len,
	     uint64_t *found_version);

/* Called for each live key in [begin, end) at the read version; return
 * non-zero to stop early (mvcc_range then returns RS_OK).  It must not apply
 * to or prune the index. */
typedef int (*mvcc_range_fn)(void *ctx, const uint8_t *key, uint32_t key_len,
			     const uint8_t *val, uint32_t val_len,
			     uint64_t found_version);

/*
 * Visit live keys in [begin, end) at version, in byte order, at most `limit`
 * of them (0 = no limit).  end == NULL means "to the end of the key space".
 * *more, if non-NULL, says whether live keys remain after the last visited
 * (resume from that key + "\0").  Errors as mvcc_get.
 */
int mvcc_range(const struct mvcc *m, const void *begin, size_t begin_len,
	       const void *end, size_t end_len, uint64_t version, size_t limit,
	       mvcc_range_fn fn, void *ctx, bool *more);

uint64_t mvcc_latest_version(const struct mvcc *m);
uint64_t mvcc_oldest_version(const struct mvcc *m);

/* Sweep up to `budget` keys from an internal cursor, dropping versions below
 * the window and keys whose only remaining entry is an old tombstone.
 * Returns the number of entries freed.  Call from an idle/timer handle so
 * pruning is chunked.  A step stops at the end of the key space; the next
 * one starts over from the beginning. */
size_t mvcc_prune_step(struct mvcc *m, size_t budget);

/* Live keys at the latest version. */
uint64_t mvcc_key_count(const struct mvcc *m);
/* Bytes allocated by the index (keys, values, nodes, malloc overhead
 * estimated from malloc_usable_size). */
uint64_t mvcc_memory_bytes(const struct mvcc *m);

/*
 * Image: the full live state at `version`, the format checkpoints and Raft
 * snapshots carry:  repeated { key_len u32 | key | val_len u32 | val } in
 * key order (little-endian lengths; keys strictly increasing, 1 to
 * RS_KEY_SIZE_MAX bytes; values up to RS_VALUE_SIZE_MAX).  The format has
 * no count or terminator: an image cut between two entries is a valid
 * shorter image, so its container must carry the length or a checksum.
 *
 * mvcc_image_encode appends to out (errors as mvcc_get, or RS_ENOMEM with
 * out unchanged).  mvcc_image_load checks the whole image first (structure,
 * order and limits: RS_ECORRUPT with errmsg, if non-NULL, naming the entry
 * index and byte offset, and the index unchanged); then it replaces the
 * index content with the image as of `version`, whatever the index held:
 * latest = oldest = version, and reads report `version` as the version
 * that wrote each value.  *key_count, if non-NULL, gets the number of keys.
 */
int mvcc_image_encode(const struct mvcc *m, uint64_t version,
		      struct rs_buf *out);
int mvcc_image_load(struct mvcc *m, uint64_t version, const uint8_t *image,
		    size_t len, uint64_t *key_count, char *errmsg);

/*
 * The same image in steps, so that the loop that owns the index can encode
 * a large one a little at a time while it goes on applying batches: each
 * step appends the entries of at most max_keys live keys after *cursor
 * (exclusive; an empty cursor starts at the first key), as they are at
 * `version`, and moves *cursor to the last key appended; *done once no live
 * key follows.  Batches applied between steps change nothing in the image,
 * as long as `version` stays in the window (else RS_ETOOOLD: start over at
 * a newer version).  The steps' outputs, concatenated, are byte for byte
 * mvcc_image_encode's.  Errors as mvcc_get, or RS_ENOMEM.
 */
int mvcc_image_encode_step(const struct mvcc *m, uint64_t version,
			   struct rs_buf *cursor, size_t max_keys,
			   struct rs_buf *out, bool *done);

/* Verify every internal invariant: tree shape and order, version chains,
 * the key count and the memory count.  O(n), no allocation; for tests and
 * debugging.  RS_ECORRUPT with errmsg (if non-NULL) naming the first
 * violation. */
int mvcc_check(const struct mvcc *m, char *errmsg);

#endif /* RS_MVCC_H */
