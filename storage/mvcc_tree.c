/*
 * mvcc tree: the B+tree from key to version chain (mvcc_internal.h draws
 * its nodes).
 *
 * Why a B+tree and not a skip list: the first version of the index was a
 * skip list; for 1M keys inserted in hashed order it spent ~3.3 us per
 * insert chasing pointers (a cache miss per node visited, ~30 visits per
 * search), over the apply budget.  The B+tree visits ~4 nodes and searches
 * each in a contiguous slice array, for about the same structure overhead
 * per key (~25 bytes).  The price is split and merge code, kept local
 * below.
 *
 * Tree invariants: all leaves at depth m->depth; a leaf other than the root
 * is never empty; an inner root has at least 2 children.  A node that loses
 * entries and drops below a quarter full is merged into a sibling if the
 * two fit in one, so deletions cannot leave the tree sparse.
 */
#include "storage/mvcc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "storage/mvcc_internal.h"

/* ---- keys ---- */

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

void mvcc_seek(const struct mvcc *m, const struct mvcc_probe *p,
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
struct mvcc_key *mvcc_path_match(const struct mvcc_path *path,
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

struct mvcc_leaf *mvcc_leaf_new(struct mvcc *m)
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
struct mvcc_key *mvcc_insert(struct mvcc *m, struct mvcc_path *path,
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
void mvcc_leaf_cut(struct mvcc_leaf *l, uint32_t pos)
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
void mvcc_rebalance(struct mvcc *m, struct mvcc_path *path, int lvl)
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

