/*
 * mvcc check: verify every invariant of the index (mvcc_check in mvcc.h).
 *
 * One walk of the tree in key order checks node shape and separators, leaf
 * links and key order, each version chain, the live key count and the
 * memory count (recomputed from malloc_usable_size).  It allocates nothing
 * and reports the first violation.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* malloc_usable_size */
#endif
#include "storage/mvcc.h"

#include <assert.h>
#include <malloc.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "storage/mvcc_internal.h"

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
