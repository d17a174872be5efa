/*
 * mvcc reads: get and range at a version in the window (mvcc.h).
 *
 * Reads never change the index.  A read at a version sees, for each key,
 * the newest entry at or below it (mvcc_live_at); a range walks the leaves
 * in key order from the first key >= begin, so it costs one descent and
 * then the keys it passes.
 */
#include "storage/mvcc.h"

#include <assert.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "storage/mvcc_internal.h"

/* ---- reads ---- */

int mvcc_check_version(const struct mvcc *m, uint64_t version)
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
