/*
 * mvcc internals: what storage/mvcc*.c share, and nothing else may use.
 *
 * The index is split by concern around this header:
 *   mvcc.c        the object: memory accounting, create, clear, destroy
 *                 and the counters;
 *   mvcc_tree.c   the B+tree: keys and slices, descent, insertion, removal;
 *   mvcc_chain.c  version chains: entries, visibility at a version, trimming;
 *   mvcc_read.c   reads at a version: get and range;
 *   mvcc_write.c  writes: apply a batch, clear-range and pruning sweeps;
 *   mvcc_image.c  the image: encode and load;
 *   mvcc_check.c  the self-check of every invariant.
 * mvcc.h holds the contract.
 *
 * Structure: a B+tree from key to a version chain.
 *
 *   - Leaves hold up to MVCC_LEAF_MAX sorted slots {slice, key}, and are
 *     linked both ways in key order for range scans.  A key record holds
 *     the key bytes and its chain.
 *   - Inner nodes hold up to MVCC_INNER_MAX children and the separators
 *     between them: child i holds the keys k with sep[i-1] <= k < sep[i].
 *     Separators are short copies (the shortest prefix of the right side's
 *     first key that is above the left side's last key), owned by the node,
 *     so freeing a key never leaves a dangling separator.
 *   - Every key and separator is also stored as a "slice": its first 8
 *     bytes as a big-endian integer.  Slices order like the keys, so a
 *     binary search compares integers in one contiguous array and touches
 *     the key bytes only when two slices tie.
 *
 * The window: oldest = max(base, latest - window_versions), where base is 0
 * for a fresh index (version 0 is the empty state, so every version from 0
 * up is readable until the window slides) and the image version after
 * mvcc_image_load (there is no history below an image).  An entry is
 * unreadable once a newer entry is at or below oldest.
 */
#ifndef RS_MVCC_INTERNAL_H
#define RS_MVCC_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/mvcc.h"

/* 32 slots of 16 bytes: a leaf is one 544-byte malloc chunk. */
#define MVCC_LEAF_MAX 32u
#define MVCC_INNER_MAX 32u
/* A node below a quarter full is merged into a sibling when they fit. */
#define MVCC_LEAF_MIN (MVCC_LEAF_MAX / 4)
#define MVCC_INNER_MIN (MVCC_INNER_MAX / 4)
/* Merging keeps fanout above ~12, so 24 levels is far beyond memory. */
#define MVCC_DEPTH_MAX 24
/* val_len of a tombstone; real values are at most RS_VALUE_SIZE_MAX. */
#define MVCC_TOMBSTONE UINT32_MAX
/* glibc's per-chunk header, which malloc_usable_size does not count. */
#define MVCC_MALLOC_OVERHEAD sizeof(size_t)

struct mvcc_entry {
	struct mvcc_entry *older; /* circular: the oldest's older is newest */
	struct mvcc_entry *newer; /* circular: the newest's newer is oldest */
	uint64_t version;
	uint32_t val_len; /* MVCC_TOMBSTONE for a tombstone */
	uint8_t val[];
};

struct mvcc_key {
	struct mvcc_entry *newest; /* never NULL while in the tree */
	uint32_t len;
	uint8_t bytes[];
};

struct mvcc_sep {
	uint32_t len;
	uint8_t bytes[];
};

struct mvcc_leaf {
	struct mvcc_leaf *prev, *next; /* key order */
	uint32_t count;
	uint64_t slices[MVCC_LEAF_MAX];
	struct mvcc_key *keys[MVCC_LEAF_MAX];
};

struct mvcc_inner {
	uint32_t count; /* children; count - 1 separators */
	uint64_t slices[MVCC_INNER_MAX - 1];
	struct mvcc_sep *seps[MVCC_INNER_MAX - 1];
	void *children[MVCC_INNER_MAX]; /* leaves at the last inner level */
};

struct mvcc {
	void *root;  /* a leaf when depth == 0 */
	int depth;   /* inner levels above the leaves */
	uint64_t window_versions;
	uint64_t base;	 /* lowest version with known state */
	uint64_t latest; /* last applied batch version */
	uint64_t oldest; /* lowest readable version */
	uint64_t key_count;
	uint64_t mem_bytes;
	/* Where mvcc_prune_step resumes: a copy, as the key may be freed. */
	uint8_t *prune_key;
	uint32_t prune_len, prune_cap;
};

/* A search key with its slice computed once. */
struct mvcc_probe {
	const uint8_t *key;
	size_t len;
	uint64_t slice;
};

/* The descent to a leaf: inner[d] and the child index taken there, the
 * leaf, and the first slot >= the probe (count if none). */
struct mvcc_path {
	struct mvcc_inner *inner[MVCC_DEPTH_MAX];
	uint32_t idx[MVCC_DEPTH_MAX];
	struct mvcc_leaf *leaf;
	uint32_t pos;
};

/* ---- keys (inline: on every search path) ---- */

/* The first 8 bytes, zero-padded, big-endian: slice(a) < slice(b) implies
 * a < b, and equal slices say nothing. */
static inline uint64_t mvcc_slice(const uint8_t *key, size_t len)
{
	uint64_t s = 0;

	for (size_t i = 0; i < 8; i++)
		s = s << 8 | (i < len ? key[i] : 0);
	return s;
}

static inline void mvcc_probe_init(struct mvcc_probe *p, const void *key,
				   size_t len)
{
	assert(key != NULL || len == 0);
	p->key = key;
	p->len = len;
	p->slice = mvcc_slice(p->key, len);
}

/* ---- the object (mvcc.c) ---- */

/* malloc that counts into m->mem_bytes; aborts when out of memory. */
void *mvcc_alloc(struct mvcc *m, size_t size);
void mvcc_free(struct mvcc *m, void *p);
/* Back to an empty tree (versions are left to the caller). */
void mvcc_clear(struct mvcc *m);

/* ---- the tree (mvcc_tree.c) ---- */

struct mvcc_leaf *mvcc_leaf_new(struct mvcc *m);
/* Descend to the leaf slot of the probe: the first key >= it. */
void mvcc_seek(const struct mvcc *m, const struct mvcc_probe *p,
	       struct mvcc_path *path);
/* The key at the path's slot if it equals the probe, else NULL. */
struct mvcc_key *mvcc_path_match(const struct mvcc_path *path,
				 const struct mvcc_probe *p);
/* Insert a new key for the probe at the path (from mvcc_seek, no match). */
struct mvcc_key *mvcc_insert(struct mvcc *m, struct mvcc_path *path,
			     const struct mvcc_probe *p);
/* Remove slot pos of l (its key already freed); the caller rebalances. */
void mvcc_leaf_cut(struct mvcc_leaf *l, uint32_t pos);
/* The node at level lvl of the path lost entries: free or merge it, and
 * carry on upwards.  The path is stale afterwards. */
void mvcc_rebalance(struct mvcc *m, struct mvcc_path *path, int lvl);

/* ---- version chains (mvcc_chain.c) ---- */

static inline bool mvcc_is_tombstone(const struct mvcc_entry *e)
{
	return e->val_len == MVCC_TOMBSTONE;
}

static inline bool mvcc_key_live(const struct mvcc_key *k)
{
	return k->newest != NULL && !mvcc_is_tombstone(k->newest);
}

struct mvcc_entry *mvcc_entry_new(struct mvcc *m, uint64_t version,
				  const uint8_t *val, uint32_t val_len);
/* Make e the newest entry of k. */
void mvcc_chain_push(struct mvcc_key *k, struct mvcc_entry *e);
/* Unlink e from k's chain and free it. */
void mvcc_chain_drop(struct mvcc *m, struct mvcc_key *k, struct mvcc_entry *e);
/* The live entry a read at version sees, or NULL. */
const struct mvcc_entry *mvcc_live_at(const struct mvcc_key *k,
				      uint64_t version);
/* Drop what no readable version can see; returns the entries freed. */
size_t mvcc_chain_trim(struct mvcc *m, struct mvcc_key *k);
/* Trim the key in slot pos; if nothing is left, free it and cut its slot
 * (returns true).  Adds the entries freed to *freed if non-NULL. */
bool mvcc_trim_slot(struct mvcc *m, struct mvcc_leaf *l, uint32_t pos,
		    size_t *freed);
/* Delete the live key in slot pos at the latest version and trim it;
 * returns true if its slot was cut. */
bool mvcc_delete_slot(struct mvcc *m, struct mvcc_leaf *l, uint32_t pos);

/* ---- reads (mvcc_read.c) ---- */

/* RS_OK if version is readable: RS_ETOOOLD below oldest, RS_EFUTURE above
 * latest. */
int mvcc_check_version(const struct mvcc *m, uint64_t version);

#endif /* RS_MVCC_INTERNAL_H */
