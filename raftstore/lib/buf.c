/* buf: see buf.h. */
#include "raftstore/lib/buf.h"

#include <assert.h>
#include <stdlib.h>

#include "raftstore/lib/rs_error.h"

void rs_buf_init(struct rs_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void rs_buf_free(struct rs_buf *b)
{
	free(b->data);
	rs_buf_init(b);
}

int rs_buf_reserve(struct rs_buf *b, size_t extra)
{
	size_t need = b->len + extra;
	size_t cap = b->cap ? b->cap : 64;
	uint8_t *p;

	assert(b->len <= b->cap);
	if (need < b->len)
		return RS_ENOMEM; /* overflow */
	if (need <= b->cap)
		return RS_OK;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	p = realloc(b->data, cap);
	if (p == NULL)
		return RS_ENOMEM;
	b->data = p;
	b->cap = cap;
	return RS_OK;
}

int rs_buf_append(struct rs_buf *b, const void *p, size_t n)
{
	int rv = rs_buf_reserve(b, n);
	if (rv != RS_OK)
		return rv;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return RS_OK;
}

int rs_buf_put_u8(struct rs_buf *b, uint8_t v)
{
	return rs_buf_append(b, &v, 1);
}

int rs_buf_put_u32(struct rs_buf *b, uint32_t v)
{
	uint8_t p[4];
	rs_put_u32(p, v);
	return rs_buf_append(b, p, sizeof p);
}

int rs_buf_put_u64(struct rs_buf *b, uint64_t v)
{
	uint8_t p[8];
	rs_put_u64(p, v);
	return rs_buf_append(b, p, sizeof p);
}
