/*
 * mvcc writes: apply a batch at a new latest version, and prune.
 *
 * A batch moves the window first, then applies its mutations in order; a
 * second write to a key in the same batch replaces the first.  Each write
 * trims the chains it touches.  Clear-range and pruning share one sweep
 * that walks slots leaf by leaf, seeks again after each leaf (rebalancing
 * may move keys) and stops at a bound or a budget, so pruning can run in
 * chunks from an idle handle.
 */
#include "storage/mvcc.h"

#include <assert.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "storage/mvcc_internal.h"

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
	(void)before; /* only read by assert() */
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
