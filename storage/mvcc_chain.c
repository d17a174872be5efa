/*
 * mvcc chains: each key's versions, and what a read at a version sees.
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
 */
#include "storage/mvcc.h"

#include <assert.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "storage/mvcc_internal.h"

/* ---- version chains ---- */

struct mvcc_entry *mvcc_entry_new(struct mvcc *m, uint64_t version,
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
void mvcc_chain_push(struct mvcc_key *k, struct mvcc_entry *e)
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
void mvcc_chain_drop(struct mvcc *m, struct mvcc_key *k,
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
const struct mvcc_entry *mvcc_live_at(const struct mvcc_key *k,
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
size_t mvcc_chain_trim(struct mvcc *m, struct mvcc_key *k)
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
bool mvcc_trim_slot(struct mvcc *m, struct mvcc_leaf *l, uint32_t pos,
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
bool mvcc_delete_slot(struct mvcc *m, struct mvcc_leaf *l,
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

