/* batch: see batch.h. */
#include "raftstore/lib/batch.h"

#include <assert.h>
#include <stdio.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"

/* Size of one encoded mutation. */
static size_t batch_mut_size(size_t a_len, size_t b_len)
{
	return 1 + 4 + a_len + 4 + b_len;
}

void batch_init(struct batch *b)
{
	b->version = 0;
	b->epoch = 0;
	b->count = 0;
	rs_buf_init(&b->body);
}

void batch_free(struct batch *b)
{
	rs_buf_free(&b->body);
	batch_init(b);
}

void batch_reset(struct batch *b)
{
	b->version = 0;
	b->epoch = 0;
	b->count = 0;
	b->body.len = 0;
}

static int batch_push(struct batch *b, enum mutation_type type,
		      const void *a, size_t a_len, const void *v, size_t v_len,
		      char *errmsg)
{
	size_t need = batch_mut_size(a_len, v_len);
	size_t start = b->body.len;
	int rv;

	if (b->body.len == 0) {
		/* Reserve the count field first. */
		rv = rs_buf_put_u32(&b->body, 0);
		if (rv != RS_OK)
			return rv;
		start = 4;
	}
	if (b->body.len + need > RS_BATCH_SIZE_MAX) {
		if (errmsg != NULL)
			rs_errmsg_printf(errmsg,
					 "batch of %zu bytes exceeds the %u-byte limit",
					 b->body.len + need, RS_BATCH_SIZE_MAX);
		if (b->count == 0)
			b->body.len = 0;
		return RS_ETOOLARGE;
	}
	rv = rs_buf_reserve(&b->body, need);
	if (rv != RS_OK) {
		if (b->count == 0)
			b->body.len = 0;
		return rv;
	}
	rs_buf_put_u8(&b->body, (uint8_t)type);
	rs_buf_put_u32(&b->body, (uint32_t)a_len);
	rs_buf_append(&b->body, a, a_len);
	rs_buf_put_u32(&b->body, (uint32_t)v_len);
	rs_buf_append(&b->body, v, v_len);
	b->count++;
	rs_put_u32(b->body.data, b->count);
	assert(b->body.len == start + need);
	(void)start;
	return RS_OK;
}

static int batch_check_key(const char *what, size_t len, bool allow_empty,
			   char *errmsg)
{
	if (len > RS_KEY_SIZE_MAX) {
		if (errmsg != NULL)
			rs_errmsg_printf(errmsg,
					 "%s of %zu bytes exceeds the %u-byte key limit",
					 what, len, RS_KEY_SIZE_MAX);
		return RS_ETOOLARGE;
	}
	if (len == 0 && !allow_empty) {
		if (errmsg != NULL)
			rs_errmsg_printf(errmsg, "%s is empty", what);
		return RS_EINVAL;
	}
	return RS_OK;
}

int batch_set(struct batch *b, const void *key, size_t key_len,
	      const void *val, size_t val_len, char *errmsg)
{
	int rv = batch_check_key("key", key_len, false, errmsg);
	if (rv != RS_OK)
		return rv;
	if (val_len > RS_VALUE_SIZE_MAX) {
		if (errmsg != NULL)
			rs_errmsg_printf(errmsg,
					 "value of %zu bytes exceeds the %u-byte value limit",
					 val_len, RS_VALUE_SIZE_MAX);
		return RS_ETOOLARGE;
	}
	return batch_push(b, MUT_SET, key, key_len, val, val_len, errmsg);
}

int batch_clear(struct batch *b, const void *key, size_t key_len, char *errmsg)
{
	int rv = batch_check_key("key", key_len, false, errmsg);
	if (rv != RS_OK)
		return rv;
	return batch_push(b, MUT_CLEAR, key, key_len, NULL, 0, errmsg);
}

int batch_clear_range(struct batch *b, const void *begin, size_t begin_len,
		      const void *end, size_t end_len, char *errmsg)
{
	int rv = batch_check_key("range begin", begin_len, true, errmsg);
	if (rv == RS_OK)
		rv = batch_check_key("range end", end_len, false, errmsg);
	if (rv != RS_OK)
		return rv;
	if (bytes_compare(begin, begin_len, end, end_len) >= 0) {
		if (errmsg != NULL)
			rs_errmsg_printf(errmsg, "range end is not after begin");
		return RS_EINVAL;
	}
	return batch_push(b, MUT_CLEAR_RANGE, begin, begin_len, end, end_len,
			  errmsg);
}

/* Validate one mutation at body[*pos]; advances *pos. */
static int batch_validate_one(const uint8_t *body, size_t len, size_t *pos,
			      uint32_t index, char *errmsg)
{
	size_t p = *pos;
	uint8_t type;
	uint32_t a_len, b_len;

#define BATCH_BAD(...)                                                       \
	do {                                                                 \
		if (errmsg != NULL) {                                        \
			rs_errmsg_printf(errmsg, __VA_ARGS__);               \
			rs_errmsg_wrapf(errmsg, "mutation %u at body offset %zu", \
					index, *pos);                        \
		}                                                            \
		return RS_ECORRUPT;                                          \
	} while (0)

	if (len - p < 5)
		BATCH_BAD("truncated header");
	type = body[p];
	a_len = rs_get_u32(body + p + 1);
	p += 5;
	if (type < MUT_SET || type > MUT_CLEAR_RANGE)
		BATCH_BAD("unknown type %u", type);
	if (a_len > RS_KEY_SIZE_MAX || (a_len == 0 && type != MUT_CLEAR_RANGE))
		BATCH_BAD("bad key length %u", a_len);
	if (len - p < (size_t)a_len + 4)
		BATCH_BAD("truncated key");
	b_len = rs_get_u32(body + p + a_len);
	p += (size_t)a_len + 4;
	if ((type == MUT_SET && b_len > RS_VALUE_SIZE_MAX) ||
	    (type == MUT_CLEAR && b_len != 0) ||
	    (type == MUT_CLEAR_RANGE && (b_len == 0 || b_len > RS_KEY_SIZE_MAX)))
		BATCH_BAD("bad value length %u", b_len);
	if (len - p < b_len)
		BATCH_BAD("truncated value");
	if (type == MUT_CLEAR_RANGE &&
	    bytes_compare(body + *pos + 5, a_len, body + p, b_len) >= 0)
		BATCH_BAD("range end is not after begin");
#undef BATCH_BAD
	*pos = p + b_len;
	return RS_OK;
}

int batch_body_validate(const uint8_t *body, size_t len, char *errmsg)
{
	uint32_t count;
	size_t pos = 4;

	if (len < 4 || len > RS_BATCH_SIZE_MAX) {
		if (errmsg != NULL)
			rs_errmsg_printf(errmsg, "batch body length %zu out of range",
					 len);
		return RS_ECORRUPT;
	}
	count = rs_get_u32(body);
	for (uint32_t i = 0; i < count; i++) {
		int rv = batch_validate_one(body, len, &pos, i, errmsg);
		if (rv != RS_OK)
			return rv;
	}
	if (pos != len) {
		if (errmsg != NULL)
			rs_errmsg_printf(errmsg,
					 "%zu trailing bytes after %u mutations",
					 len - pos, count);
		return RS_ECORRUPT;
	}
	return RS_OK;
}

int batch_load_body(struct batch *b, const uint8_t *body, size_t len)
{
	int rv;
	assert(len >= 4);
	b->body.len = 0;
	rv = rs_buf_append(&b->body, body, len);
	if (rv != RS_OK)
		return rv;
	b->count = rs_get_u32(body);
	return RS_OK;
}

bool batch_next(const struct batch *b, size_t *pos, struct mutation *m)
{
	const uint8_t *p;

	if (*pos == 0)
		*pos = 4;
	if (b->body.len <= 4 || *pos >= b->body.len)
		return false;
	p = b->body.data + *pos;
	m->type = (enum mutation_type)p[0];
	m->key_len = rs_get_u32(p + 1);
	m->key = p + 5;
	m->val_len = rs_get_u32(p + 5 + m->key_len);
	m->val = m->type == MUT_CLEAR ? NULL : p + 9 + m->key_len;
	*pos += 9 + (size_t)m->key_len + m->val_len;
	assert(*pos <= b->body.len);
	assert(m->type >= MUT_SET && m->type <= MUT_CLEAR_RANGE);
	return true;
}
