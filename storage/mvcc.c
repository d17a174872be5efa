/*
 * mvcc: the index object (see mvcc.h for the contract, and mvcc_internal.h
 * for how the module is split and how the index is built).
 *
 * Every byte the index allocates goes through mvcc_alloc and mvcc_free, so
 * that m->mem_bytes is exactly what malloc handed out (mvcc_check verifies
 * it); running out of memory aborts, as mvcc.h explains.  Destroying the
 * index frees the whole tree and checks that the count comes back to the
 * struct alone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* malloc_usable_size */
#endif
#include "storage/mvcc.h"

#include <assert.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/mvcc_internal.h"

/* ---- allocation ---- */

void *mvcc_alloc(struct mvcc *m, size_t size)
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

void mvcc_free(struct mvcc *m, void *p)
{
	size_t size;

	assert(p != NULL);
	size = malloc_usable_size(p) + MVCC_MALLOC_OVERHEAD;
	assert(m->mem_bytes >= size);
	m->mem_bytes -= size;
	free(p);
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
void mvcc_clear(struct mvcc *m)
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

/* ---- counters ---- */

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
