/*
 * buf: a growable byte buffer and little-endian field codecs.
 *
 * Every on-disk and on-wire integer in raftstore is little-endian; these
 * helpers are the one place that says so.  A buffer owns its memory; the
 * append functions grow it and return RS_ENOMEM if they cannot, leaving the
 * buffer as it was.
 */
#ifndef RS_BUF_H
#define RS_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rs_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void rs_buf_init(struct rs_buf *b);
void rs_buf_free(struct rs_buf *b);
/* Make room for at least `extra` more bytes. */
int rs_buf_reserve(struct rs_buf *b, size_t extra);
int rs_buf_append(struct rs_buf *b, const void *p, size_t n);
int rs_buf_put_u8(struct rs_buf *b, uint8_t v);
int rs_buf_put_u32(struct rs_buf *b, uint32_t v);
int rs_buf_put_u64(struct rs_buf *b, uint64_t v);

static inline void rs_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void rs_put_u64(uint8_t *p, uint64_t v)
{
	rs_put_u32(p, (uint32_t)v);
	rs_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t rs_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t rs_get_u64(const uint8_t *p)
{
	return (uint64_t)rs_get_u32(p) | (uint64_t)rs_get_u32(p + 4) << 32;
}

#endif /* RS_BUF_H */
