/*
 * mvcc: see mvcc.h.
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
 * Why a B+tree and not a skip list: the first version of this file was a
 * skip list; for 1M keys inserted in hashed order it spent ~3.3 us per
 * insert chasing pointers (a cache miss per node visited, ~30 visits per
 * search), over the apply budget.  The B+tree visits ~4 nodes and searches
 * each in a contiguous slice array, for about the same structure overhead
 * per key (~25 bytes).  The price is split and merge code, kept local
 * below.
 *
 * Version chains: each key's entries form a circular doubly linked list.
 * key->newest is the newest entry; newest->older walks back in time and
 * newest->newer wraps around to the oldest.  Newest-first makes reads at
 * recent versions O(1) once the key is found; the back links make pruning
 * from the old end O(1) per freed entry, which matters for a hot key with
 * thousands of versions inside the window.
 *
 * Chain invariants (mvcc_check verifies them):
 *   - a key in the tree has a non-empty chain;
 *   - versions strictly decrease from newest to oldest;
 *   - the oldest entry is never a tombstone (a tombstone with nothing older
 *     hides nothing: a read below it finds no entry either);
 *   - no two adjacent entries are both tombstones.
 *
 * Tree invariants: all leaves at depth m->depth; a leaf other than the root
 * is never empty; an inner root has at least 2 children.  A node that loses
 * entries and drops below a quarter full is merged into a sibling if the
 * two fit in one, so deletions cannot leave the tree sparse.
 *
 * The window: oldest = max(base, latest - window_versions), where base is 0
 * for a fresh index (version 0 is the empty state, so every version from 0
 * up is readable until the window slides) and the image version after
 * mvcc_image_load (there is no history below an image).  An entry is
 * unreadable once a newer entry is at or below oldest.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* malloc_usable_size */
#endif
#include "storage/mvcc.h"

#include <assert.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"

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

/* ---- allocation ---- */

static void *mvcc_alloc(struct mvcc *m, size_t size)
{
	void *p;

	assert(size > 0);
	p = malloc(size);
	if (p == NULL) {
		/* See mvcc.h: a half-applied batch is worse than a crash. */
		fprintf(stderr, "mvcc: out of memory allocating %zu bytes\n",
			size);
		abort();
	}
	m->mem_bytes += malloc_usable_size(p) + MVCC_MALLOC_OVERHEAD;
	assert(m->mem_bytes >= size);
	return p;
}

static void mvcc_free(struct mvcc *m, void *p)
{
	size_t size;

	assert(p != NULL);
	size = malloc_usable_size(p) + MVCC_MALLOC_OVERHEAD;
	assert(m->mem_bytes >= size);
	m->mem_bytes -= size;
	free(p);
}

/* ---- keys ---- */

/* The first 8 bytes, zero-padded, big-endian: slice(a) < slice(b) implies
 * a < b, and equal slices say nothing. */
static uint64_t mvcc_slice(const uint8_t *key, size_t len)
{
	uint64_t s = 0;

	for (size_t i = 0; i < 8; i++)
		s = s << 8 | (i < len ? key[i] : 0);
	return s;
}

static void mvcc_probe_init(struct mvcc_probe *p, const void *key,
			    size_t len)
{
	assert(key != NULL || len == 0);
	p->key = key;
	p->len = len;
	p->slice = mvcc_slice(p->key, len);
}

/* Compare with a stored key or separator.  Their bytes are read only when
 * the slices tie: each dereference is a likely cache miss. */
static int mvcc_probe_cmp_key(const struct mvcc_probe *p, uint64_t slice,
			      const struct mvcc_key *k)
{
	if (p->slice != slice)
		return p->slice < slice ? -1 : 1;
	return bytes_compare(p->key, p->len, k->bytes, k->len);
}

static int mvcc_probe_cmp_sep(const struct mvcc_probe *p, uint64_t slice,
			      const struct mvcc_sep *s)
{
	if (p->slice != slice)
		return p->slice < slice ? -1 : 1;
	return bytes_compare(p->key, p->len, s->bytes, s->len);
}

static struct mvcc_key *mvcc_key_new(struct mvcc *m,
				     const struct mvcc_probe *p)
{
	struct mvcc_key *k;

	assert(p->len > 0 && p->len <= RS_KEY_SIZE_MAX);
	k = mvcc_alloc(m, sizeof *k + p->len);
	k->newest = NULL;
	k->len = (uint32_t)p->len;
	memcpy(k->bytes, p->key, p->len);
	assert(mvcc_slice(k->bytes, k->len) == p->slice);
	return k;
}

/* A separator s with left < s <= right: the shortest prefix of right that
 * is above left (short separators compare fast and cost little). */
static struct mvcc_sep *mvcc_sep_new(struct mvcc *m, const struct mvcc_key *left,
				     const uint8_t *right, size_t right_len)
{
	size_t lcp = 0;
	struct mvcc_sep *s;

	assert(bytes_compare(left->bytes, left->len, right, right_len) < 0);
	while (lcp < left->len && lcp < right_len &&
	       left->bytes[lcp] == right[lcp])
		lcp++;
	assert(lcp < right_len);
	s = mvcc_alloc(m, sizeof *s + lcp + 1);
	s->len = (uint32_t)(lcp + 1);
	memcpy(s->bytes, right, lcp + 1);
	return s;
}

/* ---- descent ---- */

/* The child to follow: the number of separators <= the probe. */
static uint32_t mvcc_inner_find(const struct mvcc_inner *in,
				const struct mvcc_probe *p)
{
	uint32_t lo = 0, hi = in->count - 1;

	assert(in->count >= 1 && in->count <= MVCC_INNER_MAX);
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (mvcc_probe_cmp_sep(p, in->slices[mid], in->seps[mid]) < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	assert(lo < in->count);
	return lo;
}

/* The first slot whose key is >= the probe. */
static uint32_t mvcc_leaf_find(const struct mvcc_leaf *l,
			       const struct mvcc_probe *p)
{
	uint32_t lo = 0, hi = l->count;

	assert(l->count <= MVCC_LEAF_MAX);
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (mvcc_probe_cmp_key(p, l->slices[mid], l->keys[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	assert(lo <= l->count);
	return lo;
}

static void mvcc_seek(const struct mvcc *m, const struct mvcc_probe *p,
		      struct mvcc_path *path)
{
	void *node = m->root;

	assert(m->depth >= 0 && m->depth <= MVCC_DEPTH_MAX);
	for (int d = 0; d < m->depth; d++) {
		struct mvcc_inner *in = node;
		path->inner[d] = in;
		path->idx[d] = mvcc_inner_find(in, p);
		node = in->children[path->idx[d]];
	}
	path->leaf = node;
	path->pos = mvcc_leaf_find(path->leaf, p);
	/* Slices only: a key dereference here would cost a miss per seek. */
	assert(path->pos == path->leaf->count ||
	       p->slice <= path->leaf->slices[path->pos]);
}

/* The key at the path's slot if it equals the probe, else NULL. */
static struct mvcc_key *mvcc_path_match(const struct mvcc_path *path,
					const struct mvcc_probe *p)
{
	const struct mvcc_leaf *l = path->leaf;

	assert(path->pos <= l->count);
	if (path->pos == l->count ||
	    mvcc_probe_cmp_key(p, l->slices[path->pos], l->keys[path->pos]) != 0)
		return NULL;
	return l->keys[path->pos];
}

/* ---- insertion ---- */

static struct mvcc_inner *mvcc_inner_new(struct mvcc *m)
{
	struct mvcc_inner *in = mvcc_alloc(m, sizeof *in);

	in->count = 0;
	return in;
}

static struct mvcc_leaf *mvcc_leaf_new(struct mvcc *m)
{
	struct mvcc_leaf *l = mvcc_alloc(m, sizeof *l);

	l->prev = l->next = NULL;
	l->count = 0;
	return l;
}

/* Put (slice, sep) and child into in at child position at. */
static void mvcc_inner_put(struct mvcc_inner *in, uint32_t at, uint64_t slice,
			   struct mvcc_sep *sep, void *child)
{
	uint32_t n = in->count;

	assert(n < MVCC_INNER_MAX);
	assert(at >= 1 && at <= n);
	memmove(&in->children[at + 1], &in->children[at],
		(n - at) * sizeof in->children[0]);
	memmove(&in->seps[at], &in->seps[at - 1],
		(n - at) * sizeof in->seps[0]);
	memmove(&in->slices[at], &in->slices[at - 1],
		(n - at) * sizeof in->slices[0]);
	in->children[at] = child;
	in->seps[at - 1] = sep;
	in->slices[at - 1] = slice;
	in->count = n + 1;
}

/* Move children [from, count) of l, with the separators between them, to
 * the empty node r; returns the separator that was between them. */
static struct mvcc_sep *mvcc_inner_move(struct mvcc_inner *l, uint32_t from,
					struct mvcc_inner *r, uint64_t *slice)
{
	uint32_t n = l->count - from;

	assert(from >= 1 && from < l->count);
	assert(r->count == 0);
	memcpy(r->children, &l->children[from], n * sizeof r->children[0]);
	memcpy(r->seps, &l->seps[from], (n - 1) * sizeof r->seps[0]);
	memcpy(r->slices, &l->slices[from], (n - 1) * sizeof r->slices[0]);
	r->count = n;
	l->count = from;
	*slice = l->slices[from - 1];
	return l->seps[from - 1];
}

static void mvcc_root_grow(struct mvcc *m, uint64_t slice,
			   struct mvcc_sep *sep, void *right)
{
	struct mvcc_inner *root = mvcc_inner_new(m);

	assert(sep != NULL && right != NULL);
	if (m->depth == MVCC_DEPTH_MAX) {
		fprintf(stderr, "mvcc: tree deeper than %d levels\n",
			MVCC_DEPTH_MAX);
		abort();
	}
	root->children[0] = m->root;
	root->children[1] = right;
	root->seps[0] = sep;
	root->slices[0] = slice;
	root->count = 2;
	m->root = root;
	m->depth++;
	assert(m->depth <= MVCC_DEPTH_MAX);
}

/*
 * Add child `right` (with separator sep before it) just after the child
 * path->idx[d] of path->inner[d], splitting upwards as needed.  append:
 * the split is at the right edge of the key space, so the left node stays
 * full (sequential loads then pack nodes completely).
 */
static void mvcc_inner_add(struct mvcc *m, struct mvcc_path *path, int d,
			   uint64_t slice, struct mvcc_sep *sep, void *right,
			   bool append)
{
	struct mvcc_inner *in, *r;
	uint32_t at, keep;
	struct mvcc_sep *up;
	uint64_t up_slice;

	if (d < 0) {
		mvcc_root_grow(m, slice, sep, right);
		return;
	}
	in = path->inner[d];
	at = path->idx[d] + 1;
	if (in->count < MVCC_INNER_MAX) {
		mvcc_inner_put(in, at, slice, sep, right);
		return;
	}
	assert(!append || at == in->count);
	r = mvcc_inner_new(m);
	if (append) {
		/* r starts with the new child alone; sep goes up. */
		r->children[0] = right;
		r->count = 1;
		mvcc_inner_add(m, path, d - 1, slice, sep, r, true);
		return;
	}
	keep = MVCC_INNER_MAX / 2;
	up = mvcc_inner_move(in, keep, r, &up_slice);
	if (at <= keep)
		mvcc_inner_put(in, at, slice, sep, right);
	else
		mvcc_inner_put(r, at - keep, slice, sep, right);
	assert(in->count + r->count == MVCC_INNER_MAX + 1);
	mvcc_inner_add(m, path, d - 1, up_slice, up, r, false);
}

/* Split the full path->leaf; path->leaf/pos then say where the probe goes
 * (the rest of the path is stale). */
static void mvcc_leaf_split(struct mvcc *m, struct mvcc_path *path,
			    const struct mvcc_probe *p)
{
	struct mvcc_leaf *l = path->leaf, *r = mvcc_leaf_new(m);
	bool append = l->next == NULL && path->pos == l->count;
	uint32_t keep = append ? l->count : l->count / 2;
	struct mvcc_sep *sep;

	assert(l->count == MVCC_LEAF_MAX);
	r->count = l->count - keep;
	memcpy(r->slices, &l->slices[keep], r->count * sizeof r->slices[0]);
	memcpy(r->keys, &l->keys[keep], r->count * sizeof r->keys[0]);
	l->count = keep;
	r->prev = l;
	r->next = l->next;
	if (l->next != NULL)
		l->next->prev = r;
	l->next = r;
	/* The probe goes right when it lands at the cut, so then it is the
	 * first key on the right and the separator must not be above it. */
	if (path->pos == keep)
		sep = mvcc_sep_new(m, l->keys[keep - 1], p->key, p->len);
	else
		sep = mvcc_sep_new(m, l->keys[keep - 1], r->keys[0]->bytes,
				   r->keys[0]->len);
	mvcc_inner_add(m, path, m->depth - 1, mvcc_slice(sep->bytes, sep->len),
		       sep, r, append);
	if (path->pos >= keep) {
		path->leaf = r;
		path->pos -= keep;
	}
	assert(path->pos <= path->leaf->count);
}

/* Insert a new key for the probe at the path (from mvcc_seek, no match). */
static struct mvcc_key *mvcc_insert(struct mvcc *m, struct mvcc_path *path,
				    const struct mvcc_probe *p)
{
	struct mvcc_key *k = mvcc_key_new(m, p);
	struct mvcc_leaf *l;

	assert(mvcc_path_match(path, p) == NULL);
	if (path->leaf->count == MVCC_LEAF_MAX)
		mvcc_leaf_split(m, path, p);
	l = path->leaf;
	memmove(&l->slices[path->pos + 1], &l->slices[path->pos],
		(l->count - path->pos) * sizeof l->slices[0]);
	memmove(&l->keys[path->pos + 1], &l->keys[path->pos],
		(l->count - path->pos) * sizeof l->keys[0]);
	l->slices[path->pos] = p->slice;
	l->keys[path->pos] = k;
	l->count++;
	assert(l->count <= MVCC_LEAF_MAX);
	return k;
}

/* ---- removal ---- */

/* Detach child c of in and the separator beside it (the one before it, or
 * for child 0 the one after); returns that separator (NULL if in had one
 * child).  The caller frees or reuses both. */
static struct mvcc_sep *mvcc_inner_cut(struct mvcc_inner *in, uint32_t c)
{
	uint32_t s = c > 0 ? c - 1 : 0;
	struct mvcc_sep *sep = in->count > 1 ? in->seps[s] : NULL;

	assert(c < in->count);
	if (in->count > 1) {
		memmove(&in->seps[s], &in->seps[s + 1],
			(in->count - 2 - s) * sizeof in->seps[0]);
		memmove(&in->slices[s], &in->slices[s + 1],
			(in->count - 2 - s) * sizeof in->slices[0]);
	}
	memmove(&in->children[c], &in->children[c + 1],
		(in->count - 1 - c) * sizeof in->children[0]);
	in->count--;
	assert(in->count < MVCC_INNER_MAX);
	return sep;
}

/* Remove slot pos of l (its key already freed); rebalancing is left to
 * the caller, once it is done with the leaf. */
static void mvcc_leaf_cut(struct mvcc_leaf *l, uint32_t pos)
{
	assert(pos < l->count);
	memmove(&l->slices[pos], &l->slices[pos + 1],
		(l->count - 1 - pos) * sizeof l->slices[0]);
	memmove(&l->keys[pos], &l->keys[pos + 1],
		(l->count - 1 - pos) * sizeof l->keys[0]);
	l->count--;
	assert(l->count < MVCC_LEAF_MAX);
}

static void mvcc_leaf_unlink(struct mvcc_leaf *l)
{
	assert(l->prev == NULL || l->prev->next == l);
	assert(l->next == NULL || l->next->prev == l);
	if (l->prev != NULL)
		l->prev->next = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
}

/* Move all of r's slots to the end of l, its left neighbour. */
static void mvcc_leaf_join(struct mvcc_leaf *l, struct mvcc_leaf *r)
{
	assert(l->next == r && r->prev == l);
	assert(l->count + r->count <= MVCC_LEAF_MAX);
	memcpy(&l->slices[l->count], r->slices, r->count * sizeof r->slices[0]);
	memcpy(&l->keys[l->count], r->keys, r->count * sizeof r->keys[0]);
	l->count += r->count;
	r->count = 0;
	mvcc_leaf_unlink(r);
}

/* Move all of r's children to the end of l, with sep (taken from their
 * parent) between the two groups. */
static void mvcc_inner_join(struct mvcc_inner *l, struct mvcc_sep *sep,
			    uint64_t slice, struct mvcc_inner *r)
{
	uint32_t n = l->count;

	assert(n + r->count <= MVCC_INNER_MAX);
	assert(sep != NULL && n >= 1 && r->count >= 1);
	l->seps[n - 1] = sep;
	l->slices[n - 1] = slice;
	memcpy(&l->children[n], r->children, r->count * sizeof r->children[0]);
	memcpy(&l->seps[n], r->seps, (r->count - 1) * sizeof r->seps[0]);
	memcpy(&l->slices[n], r->slices, (r->count - 1) * sizeof r->slices[0]);
	l->count = n + r->count;
	r->count = 0;
}

static uint32_t mvcc_node_count(const void *node, bool leaf)
{
	return leaf ? ((const struct mvcc_leaf *)node)->count
		    : ((const struct mvcc_inner *)node)->count;
}

/* An inner root with one child hands the root to that child. */
static void mvcc_root_shrink(struct mvcc *m)
{
	while (m->depth > 0 && ((struct mvcc_inner *)m->root)->count == 1) {
		struct mvcc_inner *old = m->root;
		m->root = old->children[0];
		m->depth--;
		mvcc_free(m, old);
	}
	assert(m->depth == 0 || ((struct mvcc_inner *)m->root)->count >= 2);
	assert(m->root != NULL);
}

static void mvcc_rebalance(struct mvcc *m, struct mvcc_path *path, int lvl);

/* Free the empty child c of path->inner[d], then rebalance the parent. */
static void mvcc_drop_child(struct mvcc *m, struct mvcc_path *path, int d,
			    uint32_t c)
{
	struct mvcc_inner *p = path->inner[d];
	void *child = p->children[c];
	bool leaf = d == m->depth - 1;
	struct mvcc_sep *sep;

	assert(c < p->count);
	assert(mvcc_node_count(child, leaf) == 0);
	if (leaf)
		mvcc_leaf_unlink(child);
	mvcc_free(m, child);
	sep = mvcc_inner_cut(p, c);
	if (sep != NULL)
		mvcc_free(m, sep);
	mvcc_rebalance(m, path, d);
}

/* Merge child j + 1 of path->inner[d] into child j, then rebalance the
 * parent, which lost a child. */
static void mvcc_merge(struct mvcc *m, struct mvcc_path *path, int d,
		       uint32_t j)
{
	struct mvcc_inner *p = path->inner[d];
	void *left = p->children[j], *right = p->children[j + 1];
	uint64_t slice = p->slices[j];
	struct mvcc_sep *sep = mvcc_inner_cut(p, j + 1);

	assert(sep != NULL);
	if (d == m->depth - 1) {
		mvcc_leaf_join(left, right);
		mvcc_free(m, sep);
	} else {
		mvcc_inner_join(left, sep, slice, right);
	}
	mvcc_free(m, right);
	assert(p->children[j] == left);
	mvcc_rebalance(m, path, d);
}

/*
 * The node at level lvl of the path (the leaf at lvl == m->depth) lost
 * entries: free it if empty, merge it into a sibling if it is underfull
 * and they fit in one node, and carry on upwards.  The path is stale
 * afterwards.
 */
static void mvcc_rebalance(struct mvcc *m, struct mvcc_path *path, int lvl)
{
	bool leaf = lvl == m->depth;
	uint32_t max = leaf ? MVCC_LEAF_MAX : MVCC_INNER_MAX;
	struct mvcc_inner *p;
	void *node;
	uint32_t n, c;

	assert(lvl >= 0 && lvl <= m->depth);
	node = leaf ? (void *)path->leaf : (void *)path->inner[lvl];
	n = mvcc_node_count(node, leaf);
	if (lvl == 0) {
		mvcc_root_shrink(m); /* an empty root leaf stays */
		return;
	}
	p = path->inner[lvl - 1];
	c = path->idx[lvl - 1];
	assert(p->children[c] == node);
	if (n == 0)
		mvcc_drop_child(m, path, lvl - 1, c);
	else if (n >= (leaf ? MVCC_LEAF_MIN : MVCC_INNER_MIN))
		return;
	else if (c + 1 < p->count &&
		 n + mvcc_node_count(p->children[c + 1], leaf) <= max)
		mvcc_merge(m, path, lvl - 1, c);
	else if (c > 0 && n + mvcc_node_count(p->children[c - 1], leaf) <= max)
		mvcc_merge(m, path, lvl - 1, c - 1);
}

/* ---- version chains ---- */

static bool mvcc_is_tombstone(const struct mvcc_entry *e)
{
	return e->val_len == MVCC_TOMBSTONE;
}

static bool mvcc_key_live(const struct mvcc_key *k)
{
	return k->newest != NULL && !mvcc_is_tombstone(k->newest);
}

static struct mvcc_entry *mvcc_entry_new(struct mvcc *m, uint64_t version,
					 const uint8_t *val, uint32_t val_len)
{
	size_t bytes = val_len == MVCC_TOMBSTONE ? 0 : val_len;
	struct mvcc_entry *e;

	assert(val_len == MVCC_TOMBSTONE || val_len <= RS_VALUE_SIZE_MAX);
	e = mvcc_alloc(m, offsetof(struct mvcc_entry, val) + bytes);
	e->older = e->newer = e;
	e->version = version;
	e->val_len = val_len;
	if (bytes > 0)
		memcpy(e->val, val, bytes);
	return e;
}

/* Make e the newest entry of k. */
static void mvcc_chain_push(struct mvcc_key *k, struct mvcc_entry *e)
{
	struct mvcc_entry *h = k->newest;

	assert(h == NULL || h->version < e->version);
	assert(h == NULL || !(mvcc_is_tombstone(h) && mvcc_is_tombstone(e)));
	if (h != NULL) {
		struct mvcc_entry *oldest = h->newer;
		e->older = h;
		e->newer = oldest;
		h->newer = e;
		oldest->older = e;
	}
	k->newest = e;
}

/* Unlink e from k's chain and free it. */
static void mvcc_chain_drop(struct mvcc *m, struct mvcc_key *k,
			    struct mvcc_entry *e)
{
	assert(k->newest != NULL);
	if (e->older == e) {
		assert(k->newest == e);
		k->newest = NULL;
	} else {
		e->newer->older = e->older;
		e->older->newer = e->newer;
		if (k->newest == e)
			k->newest = e->older;
	}
	mvcc_free(m, e);
}

/* The live entry a read at version sees, or NULL. */
static const struct mvcc_entry *mvcc_live_at(const struct mvcc_key *k,
					     uint64_t version)
{
	const struct mvcc_entry *e = k->newest;

	assert(e != NULL);
	do {
		if (e->version <= version)
			return mvcc_is_tombstone(e) ? NULL : e;
		assert(e->older == k->newest || e->older->version < e->version);
		e = e->older;
	} while (e != k->newest);
	return NULL;
}

/*
 * Drop what no readable version can see: every entry older than the newest
 * one at or below oldest, then a tombstone left oldest.  Returns the
 * number of entries freed; the chain may end up empty.
 */
static size_t mvcc_chain_trim(struct mvcc *m, struct mvcc_key *k)
{
	struct mvcc_entry *tail;
	size_t freed = 0;

	assert(k->newest != NULL);
	for (;;) {
		tail = k->newest->newer;
		if (tail == k->newest || tail->newer->version > m->oldest)
			break;
		mvcc_chain_drop(m, k, tail);
		freed++;
	}
	if (mvcc_is_tombstone(tail)) {
		/* Only trimming exposes a tombstone at the old end. */
		assert(tail->version <= m->oldest);
		mvcc_chain_drop(m, k, tail);
		freed++;
	}
	assert(k->newest == NULL || !mvcc_is_tombstone(k->newest->newer));
	return freed;
}

/* Trim the key in slot pos; if nothing is left, free it and cut its slot
 * (returns true).  Adds the entries freed to *freed if non-NULL. */
static bool mvcc_trim_slot(struct mvcc *m, struct mvcc_leaf *l, uint32_t pos,
			   size_t *freed)
{
	struct mvcc_key *k = l->keys[pos];
	size_t n = k->newest != NULL ? mvcc_chain_trim(m, k) : 0;

	assert(pos < l->count);
	if (freed != NULL)
		*freed += n;
	if (k->newest != NULL)
		return false;
	assert(!mvcc_key_live(k));
	mvcc_free(m, k);
	mvcc_leaf_cut(l, pos);
	return true;
}

/* Delete the live key in slot pos at the latest version and trim it;
 * returns true if its slot was cut. */
static bool mvcc_delete_slot(struct mvcc *m, struct mvcc_leaf *l,
			     uint32_t pos)
{
	struct mvcc_key *k = l->keys[pos];

	assert(mvcc_key_live(k));
	assert(m->key_count > 0);
	m->key_count--;
	if (k->newest->version == m->latest) {
		/* Written earlier in this batch: once that write is undone the
		 * key is absent or already deleted, and a tombstone on top
		 * would be redundant. */
		mvcc_chain_drop(m, k, k->newest);
		if (k->newest == NULL || mvcc_is_tombstone(k->newest))
			return mvcc_trim_slot(m, l, pos, NULL);
	}
	mvcc_chain_push(k, mvcc_entry_new(m, m->latest, NULL, MVCC_TOMBSTONE));
	return mvcc_trim_slot(m, l, pos, NULL);
}

/* ---- sweeps: clear-range and pruning walk slots leaf by leaf ---- */

struct mvcc_sweep {
	const uint8_t *end; /* stop before this key; NULL: no bound */
	size_t end_len;
	size_t budget; /* slots left to visit */
	size_t freed;  /* entries freed so far */
	/* Act on one slot; returns true if it cut the slot. */
	bool (*fn)(struct mvcc *m, struct mvcc_leaf *l, uint32_t pos,
		   struct mvcc_sweep *sw);
};

/* Sweep the path's leaf from path->pos.  Returns the key to go on from
 * (still in the tree) or NULL at the end of the tree; *stop says whether
 * the bound or the budget was reached. */
static const struct mvcc_key *mvcc_sweep_leaf(struct mvcc *m,
					      struct mvcc_path *path,
					      struct mvcc_sweep *sw, bool *stop)
{
	struct mvcc_leaf *l = path->leaf;
	uint32_t pos = path->pos, before = l->count;
	const struct mvcc_key *next = NULL;

	assert(pos <= l->count);
	*stop = false;
	while (pos < l->count && !*stop) {
		const struct mvcc_key *k = l->keys[pos];
		if (sw->budget == 0 ||
		    (sw->end != NULL && bytes_compare(k->bytes, k->len, sw->end,
						      sw->end_len) >= 0)) {
			next = k;
			*stop = true;
		} else {
			sw->budget--;
			pos += sw->fn(m, l, pos, sw) ? 0 : 1;
		}
	}
	if (!*stop && l->next != NULL)
		next = l->next->keys[0]; /* leaves other than the root are never empty */
	if (l->count < before)
		mvcc_rebalance(m, path, m->depth); /* keys are not freed */
	assert(next == NULL || next->newest != NULL);
	return next;
}

static const struct mvcc_key *mvcc_sweep(struct mvcc *m,
					 const struct mvcc_probe *from,
					 struct mvcc_sweep *sw)
{
	struct mvcc_probe p = *from;
	struct mvcc_path path;
	const struct mvcc_key *next;
	bool stop;

	assert(sw->fn != NULL);
	assert(sw->end == NULL || sw->end_len > 0);
	for (;;) {
		mvcc_seek(m, &p, &path);
		next = mvcc_sweep_leaf(m, &path, sw, &stop);
		if (stop || next == NULL)
			return next;
		/* Seek again: rebalancing may have moved the next key. */
		mvcc_probe_init(&p, next->bytes, next->len);
	}
}

static bool mvcc_clear_slot(struct mvcc *m, struct mvcc_leaf *l,
			    uint32_t pos, struct mvcc_sweep *sw)
{
	(void)sw;
	if (mvcc_key_live(l->keys[pos]))
		return mvcc_delete_slot(m, l, pos);
	/* Dead keys stay as they are, but get trimmed while we pass. */
	return mvcc_trim_slot(m, l, pos, NULL);
}

static bool mvcc_prune_slot(struct mvcc *m, struct mvcc_leaf *l,
			    uint32_t pos, struct mvcc_sweep *sw)
{
	return mvcc_trim_slot(m, l, pos, &sw->freed);
}

/* ---- apply ---- */

static void mvcc_apply_set(struct mvcc *m, const struct mutation *mut)
{
	struct mvcc_probe p;
	struct mvcc_path path;
	struct mvcc_key *k;
	struct mvcc_entry *e;

	assert(mut->key_len > 0 && mut->val_len <= RS_VALUE_SIZE_MAX);
	mvcc_probe_init(&p, mut->key, mut->key_len);
	mvcc_seek(m, &p, &path);
	k = mvcc_path_match(&path, &p);
	if (k == NULL)
		k = mvcc_insert(m, &path, &p);
	if (!mvcc_key_live(k))
		m->key_count++;
	/* A second write to a key in one batch replaces the first. */
	if (k->newest != NULL && k->newest->version == m->latest)
		mvcc_chain_drop(m, k, k->newest);
	e = mvcc_entry_new(m, m->latest, mut->val, mut->val_len);
	mvcc_chain_push(k, e);
	mvcc_chain_trim(m, k); /* keeps e: a live newest entry stays */
	assert(k->newest == e);
}

static void mvcc_apply_clear(struct mvcc *m, const struct mutation *mut)
{
	struct mvcc_probe p;
	struct mvcc_path path;
	struct mvcc_key *k;
	uint64_t before;

	assert(mut->type == MUT_CLEAR && mut->key_len > 0);
	mvcc_probe_init(&p, mut->key, mut->key_len);
	mvcc_seek(m, &p, &path);
	k = mvcc_path_match(&path, &p);
	/* Clearing an absent or already deleted key changes nothing. */
	if (k == NULL || !mvcc_key_live(k))
		return;
	before = m->key_count;
	if (mvcc_delete_slot(m, path.leaf, path.pos))
		mvcc_rebalance(m, &path, m->depth);
	assert(m->key_count == before - 1);
}

static void mvcc_apply_clear_range(struct mvcc *m, const struct mutation *mut)
{
	struct mvcc_sweep sw = {.end = mut->val,
				.end_len = mut->val_len,
				.budget = SIZE_MAX,
				.fn = mvcc_clear_slot};
	struct mvcc_probe from;

	assert(mut->type == MUT_CLEAR_RANGE && mut->val != NULL);
	assert(mut->val_len > 0);
	mvcc_probe_init(&from, mut->key, mut->key_len);
	mvcc_sweep(m, &from, &sw);
}

static void mvcc_set_latest(struct mvcc *m, uint64_t version)
{
	assert(version >= m->latest);
	m->latest = version;
	m->oldest = version - m->base > m->window_versions
			    ? version - m->window_versions
			    : m->base;
	assert(m->oldest >= m->base && m->oldest <= m->latest);
}

int mvcc_apply(struct mvcc *m, const struct batch *b)
{
	struct mutation mut;
	size_t pos = 0;

	assert(m != NULL && b != NULL);
	if (b->version <= m->latest)
		return RS_EVERSION;
	mvcc_set_latest(m, b->version);
	while (batch_next(b, &pos, &mut)) {
		switch (mut.type) {
		case MUT_SET:
			mvcc_apply_set(m, &mut);
			break;
		case MUT_CLEAR:
			mvcc_apply_clear(m, &mut);
			break;
		case MUT_CLEAR_RANGE:
			mvcc_apply_clear_range(m, &mut);
			break;
		}
	}
	assert(m->latest == b->version);
	return RS_OK;
}

/* ---- life cycle ---- */

struct mvcc *mvcc_create(uint64_t window_versions)
{
	struct mvcc *m = calloc(1, sizeof *m);

	if (m == NULL) {
		fprintf(stderr, "mvcc: out of memory creating the index\n");
		abort();
	}
	m->mem_bytes = malloc_usable_size(m) + MVCC_MALLOC_OVERHEAD;
	m->window_versions = window_versions;
	m->root = mvcc_leaf_new(m);
	assert(m->depth == 0 && m->latest == 0 && m->oldest == 0);
	assert(m->key_count == 0 && m->prune_key == NULL);
	return m;
}

static void mvcc_free_key(struct mvcc *m, struct mvcc_key *k)
{
	while (k->newest != NULL)
		mvcc_chain_drop(m, k, k->newest);
	mvcc_free(m, k);
}

/* Free the subtree under node, at level lvl. */
static void mvcc_free_tree(struct mvcc *m, void *node, int lvl)
{
	assert(node != NULL && lvl <= m->depth);
	if (lvl == m->depth) {
		struct mvcc_leaf *l = node;
		for (uint32_t i = 0; i < l->count; i++)
			mvcc_free_key(m, l->keys[i]);
	} else {
		struct mvcc_inner *in = node;
		for (uint32_t i = 0; i < in->count; i++)
			mvcc_free_tree(m, in->children[i], lvl + 1);
		for (uint32_t i = 0; i + 1 < in->count; i++)
			mvcc_free(m, in->seps[i]);
	}
	mvcc_free(m, node);
}

/* Back to an empty tree (versions are left to the caller). */
static void mvcc_clear(struct mvcc *m)
{
	mvcc_free_tree(m, m->root, 0);
	m->depth = 0;
	m->root = mvcc_leaf_new(m);
	m->key_count = 0;
	m->prune_len = 0;
	assert(((struct mvcc_leaf *)m->root)->count == 0);
}

void mvcc_destroy(struct mvcc *m)
{
	if (m == NULL)
		return;
	mvcc_free_tree(m, m->root, 0);
	if (m->prune_key != NULL)
		mvcc_free(m, m->prune_key);
	assert(m->mem_bytes == malloc_usable_size(m) + MVCC_MALLOC_OVERHEAD);
	free(m);
}

/* ---- reads ---- */

static int mvcc_check_version(const struct mvcc *m, uint64_t version)
{
	assert(m->oldest <= m->latest);
	if (version < m->oldest)
		return RS_ETOOOLD;
	if (version > m->latest)
		return RS_EFUTURE;
	return RS_OK;
}

int mvcc_get(const struct mvcc *m, const void *key, size_t key_len,
	     uint64_t version, const uint8_t **val, uint32_t *val_len,
	     uint64_t *found_version)
{
	const struct mvcc_entry *e;
	const struct mvcc_key *k;
	struct mvcc_probe p;
	struct mvcc_path path;
	int rv;

	assert(m != NULL && val != NULL && val_len != NULL);
	rv = mvcc_check_version(m, version);
	if (rv != RS_OK)
		return rv;
	mvcc_probe_init(&p, key, key_len);
	mvcc_seek(m, &p, &path);
	k = mvcc_path_match(&path, &p);
	e = k != NULL ? mvcc_live_at(k, version) : NULL;
	if (e == NULL)
		return RS_ENOTFOUND;
	*val = e->val;
	*val_len = e->val_len;
	if (found_version != NULL)
		*found_version = e->version;
	assert(e->version <= version);
	return RS_OK;
}

int mvcc_range(const struct mvcc *m, const void *begin, size_t begin_len,
	       const void *end, size_t end_len, uint64_t version, size_t limit,
	       mvcc_range_fn fn, void *ctx, bool *more)
{
	const struct mvcc_entry *e;
	const struct mvcc_key *k;
	const struct mvcc_leaf *l;
	struct mvcc_probe p;
	struct mvcc_path path;
	size_t visited = 0;
	bool done = false;
	uint32_t pos;
	int rv;

	assert(m != NULL && fn != NULL);
	if (more != NULL)
		*more = false;
	rv = mvcc_check_version(m, version);
	if (rv != RS_OK)
		return rv;
	mvcc_probe_init(&p, begin, begin_len);
	mvcc_seek(m, &p, &path);
	for (l = path.leaf, pos = path.pos; l != NULL; l = l->next, pos = 0) {
		for (; pos < l->count; pos++) {
			k = l->keys[pos];
			if (end != NULL &&
			    bytes_compare(k->bytes, k->len, end, end_len) >= 0)
				return RS_OK;
			e = mvcc_live_at(k, version);
			if (e == NULL)
				continue;
			if (done) {
				/* A live key beyond the last one visited. */
				*more = true;
				return RS_OK;
			}
			visited++;
			done = fn(ctx, k->bytes, k->len, e->val, e->val_len,
				  e->version) != 0 ||
			       (limit > 0 && visited == limit);
			if (done && more == NULL)
				return RS_OK;
		}
	}
	assert(limit == 0 || visited <= limit);
	return RS_OK;
}

uint64_t mvcc_latest_version(const struct mvcc *m)
{
	return m->latest;
}

uint64_t mvcc_oldest_version(const struct mvcc *m)
{
	return m->oldest;
}

uint64_t mvcc_key_count(const struct mvcc *m)
{
	return m->key_count;
}

uint64_t mvcc_memory_bytes(const struct mvcc *m)
{
	return m->mem_bytes;
}

/* ---- pruning ---- */

/* Remember where the next step starts (len 0: at the beginning). */
static void mvcc_prune_save(struct mvcc *m, const struct mvcc_key *k)
{
	uint32_t len = k != NULL ? k->len : 0;

	assert(len <= RS_KEY_SIZE_MAX);
	if (len > m->prune_cap) {
		if (m->prune_key != NULL)
			mvcc_free(m, m->prune_key);
		m->prune_cap = len < 64 ? 64 : len;
		m->prune_key = mvcc_alloc(m, m->prune_cap);
	}
	if (len > 0)
		memcpy(m->prune_key, k->bytes, len);
	m->prune_len = len;
	assert(m->prune_len <= m->prune_cap);
}

size_t mvcc_prune_step(struct mvcc *m, size_t budget)
{
	struct mvcc_sweep sw = {.budget = budget, .fn = mvcc_prune_slot};
	struct mvcc_probe from;
	const struct mvcc_key *next;

	assert(m != NULL);
	assert(m->prune_len == 0 || m->prune_key != NULL);
	if (budget == 0)
		return 0;
	mvcc_probe_init(&from, m->prune_key, m->prune_len);
	next = mvcc_sweep(m, &from, &sw);
	/* At the end of the tree, the next step starts over. */
	mvcc_prune_save(m, next);
	return sw.freed;
}

/* ---- image ---- */

static const struct mvcc_leaf *mvcc_first_leaf(const struct mvcc *m)
{
	const void *node = m->root;

	for (int d = 0; d < m->depth; d++)
		node = ((const struct mvcc_inner *)node)->children[0];
	assert(((const struct mvcc_leaf *)node)->prev == NULL);
	return node;
}

static size_t mvcc_image_size(const struct mvcc *m, uint64_t version)
{
	const struct mvcc_leaf *l;
	const struct mvcc_entry *e;
	size_t size = 0;

	assert(m->oldest <= version && version <= m->latest);
	for (l = mvcc_first_leaf(m); l != NULL; l = l->next) {
		for (uint32_t i = 0; i < l->count; i++) {
			e = mvcc_live_at(l->keys[i], version);
			if (e != NULL)
				size += 8 + (size_t)l->keys[i]->len + e->val_len;
		}
	}
	return size;
}

int mvcc_image_encode(const struct mvcc *m, uint64_t version,
		      struct rs_buf *out)
{
	const struct mvcc_leaf *l;
	const struct mvcc_entry *e;
	const struct mvcc_key *k;
	size_t start, size;
	int rv;

	assert(m != NULL && out != NULL);
	start = out->len;
	rv = mvcc_check_version(m, version);
	if (rv != RS_OK)
		return rv;
	/* Size first: a large image is reserved once, not grown by doubling. */
	size = mvcc_image_size(m, version);
	rv = rs_buf_reserve(out, size);
	if (rv != RS_OK)
		return rv;
	for (l = mvcc_first_leaf(m); l != NULL; l = l->next) {
		for (uint32_t i = 0; i < l->count; i++) {
			k = l->keys[i];
			e = mvcc_live_at(k, version);
			if (e == NULL)
				continue;
			/* Reserved above: these appends cannot fail. */
			rs_buf_put_u32(out, k->len);
			rs_buf_append(out, k->bytes, k->len);
			rs_buf_put_u32(out, e->val_len);
			rs_buf_append(out, e->val, e->val_len);
		}
	}
	assert(out->len == start + size);
	return RS_OK;
}

struct mvcc_image_entry {
	const uint8_t *key;
	uint32_t key_len;
	const uint8_t *val;
	uint32_t val_len;
};

/* Parse the entry at image[*off], checking it against the previous key.
 * On corruption, errmsg (if non-NULL) says what is wrong. */
static int mvcc_image_next(const uint8_t *image, size_t len, size_t *off,
			   const struct mvcc_image_entry *prev,
			   struct mvcc_image_entry *ent, char *errmsg)
{
	size_t p = *off;
	const char *why = NULL;

	assert(p < len);
	if (len - p < 4) {
		why = "truncated key length";
		goto corrupt;
	}
	ent->key_len = rs_get_u32(image + p);
	ent->key = image + p + 4;
	if (ent->key_len == 0 || ent->key_len > RS_KEY_SIZE_MAX)
		why = "bad key length";
	else if (len - p - 4 < (size_t)ent->key_len + 4)
		why = "truncated key";
	else if (prev != NULL && bytes_compare(prev->key, prev->key_len,
					       ent->key, ent->key_len) >= 0)
		why = "key not after the previous key";
	if (why != NULL)
		goto corrupt;
	p += 4 + (size_t)ent->key_len;
	ent->val_len = rs_get_u32(image + p);
	ent->val = image + p + 4;
	if (ent->val_len > RS_VALUE_SIZE_MAX)
		why = "bad value length";
	else if (len - p - 4 < ent->val_len)
		why = "truncated value";
	if (why != NULL)
		goto corrupt;
	*off = p + 4 + ent->val_len;
	assert(*off <= len);
	return RS_OK;

corrupt:
	if (errmsg != NULL)
		rs_errmsg_printf(errmsg, "%s", why);
	return RS_ECORRUPT;
}

/* Validate the whole image before the index is touched. */
static int mvcc_image_check(const uint8_t *image, size_t len,
			    uint64_t *count, char *errmsg)
{
	struct mvcc_image_entry prev = {0}, ent;
	size_t off = 0;
	uint64_t i;
	int rv;

	assert(image != NULL || len == 0);
	for (i = 0; off < len; i++) {
		size_t at = off;
		rv = mvcc_image_next(image, len, &off, i > 0 ? &prev : NULL,
				     &ent, errmsg);
		if (rv != RS_OK) {
			if (errmsg != NULL)
				rs_errmsg_wrapf(errmsg,
						"image entry %llu at offset %zu",
						(unsigned long long)i, at);
			return rv;
		}
		prev = ent;
	}
	assert(off == len);
	*count = i;
	return RS_OK;
}

int mvcc_image_load(struct mvcc *m, uint64_t version, const uint8_t *image,
		    size_t len, uint64_t *key_count, char *errmsg)
{
	struct mvcc_image_entry ent;
	struct mvcc_probe p;
	struct mvcc_path path;
	struct mvcc_key *k;
	size_t off = 0;
	uint64_t count;
	int rv;

	assert(m != NULL);
	rv = mvcc_image_check(image, len, &count, errmsg);
	if (rv != RS_OK)
		return rv; /* the index is unchanged */
	mvcc_clear(m);
	/* No history below the image: it is the whole window for now. */
	m->base = m->latest = m->oldest = version;
	while (off < len) {
		rv = mvcc_image_next(image, len, &off, NULL, &ent, NULL);
		assert(rv == RS_OK);
		/* In key order, so each insert appends at the right edge. */
		mvcc_probe_init(&p, ent.key, ent.key_len);
		mvcc_seek(m, &p, &path);
		k = mvcc_insert(m, &path, &p);
		mvcc_chain_push(k, mvcc_entry_new(m, version, ent.val,
						  ent.val_len));
		m->key_count++;
	}
	assert(m->key_count == count);
	if (key_count != NULL)
		*key_count = count;
	return RS_OK;
}

/* ---- self-check ---- */

struct mvcc_check_ctx {
	const struct mvcc *m;
	const struct mvcc_leaf *last_leaf; /* in key order, so far */
	uint64_t live;
	uint64_t mem_bytes;
	char *errmsg;
};

#define MVCC_CHECK(ctx, cond, ...)                                           \
	do {                                                                 \
		if (!(cond)) {                                               \
			if ((ctx)->errmsg != NULL)                           \
				rs_errmsg_printf((ctx)->errmsg, __VA_ARGS__); \
			return RS_ECORRUPT;                                  \
		}                                                            \
	} while (0)

static void mvcc_check_mem(struct mvcc_check_ctx *ctx, const void *p)
{
	assert(p != NULL);
	ctx->mem_bytes += malloc_usable_size((void *)p) + MVCC_MALLOC_OVERHEAD;
}

static int mvcc_check_chain(struct mvcc_check_ctx *ctx,
			    const struct mvcc_key *k)
{
	const struct mvcc_entry *e = k->newest, *prev = NULL;

	MVCC_CHECK(ctx, e != NULL, "key with an empty chain");
	MVCC_CHECK(ctx, !mvcc_is_tombstone(e->newer), "tombstone at the old end");
	do {
		mvcc_check_mem(ctx, e);
		MVCC_CHECK(ctx, e->older->newer == e && e->newer->older == e,
			   "chain links broken");
		MVCC_CHECK(ctx, prev == NULL || e->version < prev->version,
			   "chain versions not decreasing");
		MVCC_CHECK(ctx, e->version <= ctx->m->latest,
			   "entry above the latest version");
		MVCC_CHECK(ctx, prev == NULL || !mvcc_is_tombstone(prev) ||
					!mvcc_is_tombstone(e),
			   "adjacent tombstones");
		prev = e;
		e = e->older;
	} while (e != k->newest);
	ctx->live += !mvcc_is_tombstone(k->newest);
	return RS_OK;
}

/* Keys of a node lie in [lo, hi); NULL bounds are open. */
struct mvcc_bounds {
	const uint8_t *lo, *hi;
	size_t lo_len, hi_len;
};

static bool mvcc_in_bounds(const struct mvcc_bounds *b, const uint8_t *key,
			   size_t len)
{
	return (b->lo == NULL ||
		bytes_compare(b->lo, b->lo_len, key, len) <= 0) &&
	       (b->hi == NULL || bytes_compare(key, len, b->hi, b->hi_len) < 0);
}

static int mvcc_check_leaf(struct mvcc_check_ctx *ctx,
			   const struct mvcc_leaf *l,
			   const struct mvcc_bounds *b)
{
	const struct mvcc_key *prev = NULL;
	int rv;

	mvcc_check_mem(ctx, l);
	MVCC_CHECK(ctx, l->count <= MVCC_LEAF_MAX, "leaf overfull");
	MVCC_CHECK(ctx, l->count > 0 || ctx->m->depth == 0, "empty leaf");
	MVCC_CHECK(ctx, l->prev == ctx->last_leaf, "leaf prev link wrong");
	MVCC_CHECK(ctx, ctx->last_leaf == NULL || ctx->last_leaf->next == l,
		   "leaf next link wrong");
	for (uint32_t i = 0; i < l->count; i++) {
		const struct mvcc_key *k = l->keys[i];
		mvcc_check_mem(ctx, k);
		MVCC_CHECK(ctx, k->len > 0 && k->len <= RS_KEY_SIZE_MAX,
			   "bad key length %u", k->len);
		MVCC_CHECK(ctx, l->slices[i] == mvcc_slice(k->bytes, k->len),
			   "stale key slice");
		MVCC_CHECK(ctx, mvcc_in_bounds(b, k->bytes, k->len),
			   "key outside its separators");
		MVCC_CHECK(ctx, prev == NULL ||
				bytes_compare(prev->bytes, prev->len,
					      k->bytes, k->len) < 0,
			   "keys out of order in a leaf");
		rv = mvcc_check_chain(ctx, k);
		if (rv != RS_OK)
			return rv;
		prev = k;
	}
	ctx->last_leaf = l;
	return RS_OK;
}

static int mvcc_check_node(struct mvcc_check_ctx *ctx, const void *node,
			   int lvl, const struct mvcc_bounds *b)
{
	const struct mvcc_inner *in = node;
	struct mvcc_bounds cb = *b;
	int rv;

	if (lvl == ctx->m->depth)
		return mvcc_check_leaf(ctx, node, b);
	mvcc_check_mem(ctx, in);
	MVCC_CHECK(ctx, in->count >= (lvl == 0 ? 2u : 1u) &&
				in->count <= MVCC_INNER_MAX,
		   "inner node with %u children at level %d", in->count, lvl);
	for (uint32_t i = 0; i < in->count; i++) {
		if (i + 1 < in->count) {
			const struct mvcc_sep *s = in->seps[i];
			mvcc_check_mem(ctx, s);
			MVCC_CHECK(ctx, in->slices[i] == mvcc_slice(s->bytes, s->len),
				   "stale separator slice");
			MVCC_CHECK(ctx, s->len > 0 && mvcc_in_bounds(b, s->bytes, s->len),
				   "separator out of order");
			cb.hi = s->bytes;
			cb.hi_len = s->len;
		} else {
			cb.hi = b->hi;
			cb.hi_len = b->hi_len;
		}
		rv = mvcc_check_node(ctx, in->children[i], lvl + 1, &cb);
		if (rv != RS_OK)
			return rv;
		cb.lo = cb.hi;
		cb.lo_len = cb.hi_len;
	}
	return RS_OK;
}

int mvcc_check(const struct mvcc *m, char *errmsg)
{
	struct mvcc_check_ctx ctx = {.m = m, .errmsg = errmsg};
	struct mvcc_bounds b = {0};
	int rv;

	assert(m != NULL);
	assert(m->root != NULL);
	mvcc_check_mem(&ctx, m);
	if (m->prune_key != NULL)
		mvcc_check_mem(&ctx, m->prune_key);
	MVCC_CHECK(&ctx, m->base <= m->oldest && m->oldest <= m->latest,
		   "versions out of order");
	rv = mvcc_check_node(&ctx, m->root, 0, &b);
	if (rv != RS_OK)
		return rv;
	MVCC_CHECK(&ctx, ctx.last_leaf->next == NULL, "last leaf has a next");
	MVCC_CHECK(&ctx, ctx.live == m->key_count,
		   "key count %llu but %llu live keys",
		   (unsigned long long)m->key_count,
		   (unsigned long long)ctx.live);
	MVCC_CHECK(&ctx, ctx.mem_bytes == m->mem_bytes,
		   "memory count %llu but %llu allocated",
		   (unsigned long long)m->mem_bytes,
		   (unsigned long long)ctx.mem_bytes);
	return RS_OK;
}
