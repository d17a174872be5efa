/*
 * mvcc image: the full live state at one version, as checkpoints and Raft
 * snapshots carry it (mvcc.h draws the format).
 *
 * Encoding sizes the image first and reserves it once.  Loading checks the
 * whole image before it touches the index, so a bad image leaves the index
 * as it was; then it rebuilds the tree in key order, appending at the right
 * edge, with the image version as the base of the window.
 */
#include "storage/mvcc.h"

#include <assert.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "storage/mvcc_internal.h"

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
	(void)start; /* only read by assert() */
	return RS_OK;
}

struct mvcc_image_step {
	struct rs_buf *out;
	const uint8_t *last; /* the last key appended, in the index */
	uint32_t last_len;
	int rv;
};

static int mvcc_image_step_visit(void *ctx, const uint8_t *key,
				 uint32_t key_len, const uint8_t *val,
				 uint32_t val_len, uint64_t found_version)
{
	struct mvcc_image_step *st = ctx;
	struct rs_buf *out = st->out;
	int rv;

	(void)found_version;
	rv = rs_buf_reserve(out, 8 + (size_t)key_len + val_len);
	if (rv != RS_OK) {
		st->rv = rv;
		return 1;
	}
	rs_buf_put_u32(out, key_len);
	rs_buf_append(out, key, key_len);
	rs_buf_put_u32(out, val_len);
	rs_buf_append(out, val, val_len);
	st->last = key;
	st->last_len = key_len;
	return 0;
}

int mvcc_image_encode_step(const struct mvcc *m, uint64_t version,
			   struct rs_buf *cursor, size_t max_keys,
			   struct rs_buf *out, bool *done)
{
	uint8_t begin[RS_KEY_SIZE_MAX + 1];
	size_t begin_len = 0;
	struct mvcc_image_step st = {.out = out, .rv = RS_OK};
	bool more = false;
	int rv;

	assert(m != NULL && cursor != NULL && out != NULL && done != NULL);
	assert(max_keys > 0 && cursor->len <= RS_KEY_SIZE_MAX);
	if (cursor->len > 0) { /* just after the cursor: cursor + "\0" */
		memcpy(begin, cursor->data, cursor->len);
		begin[cursor->len] = 0;
		begin_len = cursor->len + 1;
	}
	rv = mvcc_range(m, begin, begin_len, NULL, 0, version, max_keys,
			mvcc_image_step_visit, &st, &more);
	if (rv == RS_OK)
		rv = st.rv;
	if (rv == RS_OK && st.last != NULL) {
		cursor->len = 0;
		rv = rs_buf_append(cursor, st.last, st.last_len);
	}
	if (rv != RS_OK)
		return rv;
	*done = !more;
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

