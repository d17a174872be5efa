/* record: see record.h. */
#include "storage/record.h"

#include <assert.h>
#include <lz4.h>
#include <stdlib.h>

#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"

#define RECORD_MASK_DELTA 0xa282ead8u
/* version + epoch */
#define RECORD_FIXED 16u

/* The masking of the stored crc (record.h) and its inverse. */
static uint32_t record_crc_mask(uint32_t crc)
{
	return ((crc >> 15) | (crc << 17)) + RECORD_MASK_DELTA;
}

static uint32_t record_crc_unmask(uint32_t masked)
{
	uint32_t rot = masked - RECORD_MASK_DELTA;
	return (rot >> 17) | (rot << 15);
}

/* Compress body into out (after a raw_len field) if that saves space;
 * returns the payload length used, or 0 if the raw form should be used. */
static size_t record_try_lz4(const uint8_t *body, size_t body_len,
			     struct rs_buf *out)
{
	int bound, n;

	/* Tiny bodies never shrink enough to pay for the raw_len field. */
	if (body_len < 64)
		return 0;
	bound = LZ4_compressBound((int)body_len);
	if (bound <= 0 || rs_buf_reserve(out, (size_t)bound + 4) != RS_OK)
		return 0;
	n = LZ4_compress_default((const char *)body,
				 (char *)out->data + out->len + 4,
				 (int)body_len, bound);
	if (n <= 0 || (size_t)n + 4 >= body_len)
		return 0;
	rs_put_u32(out->data + out->len, (uint32_t)body_len);
	return (size_t)n + 4;
}

int record_encode_batch(const struct batch *b, struct rs_buf *out)
{
	static const uint8_t empty_body[4] = {0, 0, 0, 0};
	const uint8_t *body = b->body.len ? b->body.data : empty_body;
	size_t body_len = batch_body_len(b);
	size_t start = out->len;
	size_t tail_len;
	uint8_t type = RECORD_BATCH;
	uint8_t *hdr;
	uint32_t crc;

	if (body_len > RS_BATCH_SIZE_MAX)
		return RS_ETOOLARGE;
	if (rs_buf_reserve(out, RECORD_HEADER_SIZE + RECORD_FIXED) != RS_OK)
		return RS_ENOMEM;
	out->len += RECORD_HEADER_SIZE;
	rs_buf_put_u64(out, b->version);
	rs_buf_put_u64(out, b->epoch);
	tail_len = record_try_lz4(body, body_len, out);
	if (tail_len > 0) {
		type = RECORD_BATCH_LZ4;
		out->len += tail_len;
	} else if (rs_buf_append(out, body, body_len) != RS_OK) {
		out->len = start;
		return RS_ENOMEM;
	}
	hdr = out->data + start;
	rs_put_u32(hdr + 4, (uint32_t)(out->len - start - RECORD_HEADER_SIZE));
	hdr[8] = type;
	crc = crc32c_extend(0, hdr + 8, out->len - start - 8);
	rs_put_u32(hdr, record_crc_mask(crc));
	assert(out->len - start - RECORD_HEADER_SIZE <= RECORD_PAYLOAD_MAX);
	return RS_OK;
}

int record_parse(const uint8_t *p, size_t avail, struct record_view *v,
		 char *errmsg)
{
	uint32_t stored, actual;

	memset(v, 0, sizeof *v);
	if (avail < RECORD_HEADER_SIZE)
		return RS_ETORN;
	v->payload_len = rs_get_u32(p + 4);
	v->type = p[8];
	if (v->payload_len > RECORD_PAYLOAD_MAX) {
		rs_errmsg_printf(errmsg, "record length %u exceeds the maximum %u",
				 v->payload_len, RECORD_PAYLOAD_MAX);
		return RS_ECORRUPT;
	}
	if (avail - RECORD_HEADER_SIZE < v->payload_len)
		return RS_ETORN;
	stored = record_crc_unmask(rs_get_u32(p));
	actual = crc32c_extend(0, p + 8, 1 + (size_t)v->payload_len);
	if (stored != actual) {
		rs_errmsg_printf(errmsg, "checksum mismatch (stored %08x, computed %08x)",
				 stored, actual);
		return RS_ECORRUPT;
	}
	if ((v->type != RECORD_BATCH && v->type != RECORD_BATCH_LZ4) ||
	    v->payload_len < RECORD_FIXED + 4) {
		rs_errmsg_printf(errmsg, "bad record type %u or length %u",
				 v->type, v->payload_len);
		return RS_ECORRUPT;
	}
	v->payload = p + RECORD_HEADER_SIZE;
	v->version = rs_get_u64(v->payload);
	v->epoch = rs_get_u64(v->payload + 8);
	v->total_len = RECORD_HEADER_SIZE + (size_t)v->payload_len;
	return RS_OK;
}

static int record_inflate(const struct record_view *v, struct batch *b,
			  char *errmsg)
{
	const uint8_t *src = v->payload + RECORD_FIXED + 4;
	size_t src_len = v->payload_len - RECORD_FIXED - 4;
	uint32_t raw_len = rs_get_u32(v->payload + RECORD_FIXED);
	int n;

	if (raw_len < 4 || raw_len > RS_BATCH_SIZE_MAX) {
		rs_errmsg_printf(errmsg, "compressed body claims %u bytes", raw_len);
		return RS_ECORRUPT;
	}
	b->body.len = 0;
	if (rs_buf_reserve(&b->body, raw_len) != RS_OK)
		return RS_ENOMEM;
	n = LZ4_decompress_safe((const char *)src, (char *)b->body.data,
				(int)src_len, (int)raw_len);
	if (n < 0 || (uint32_t)n != raw_len) {
		rs_errmsg_printf(errmsg, "lz4 body does not decode to %u bytes",
				 raw_len);
		return RS_ECORRUPT;
	}
	b->body.len = raw_len;
	return RS_OK;
}

int record_decode_batch(const struct record_view *v, struct batch *b,
			char *errmsg)
{
	int rv;

	assert(v->payload != NULL);
	batch_reset(b);
	if (v->type == RECORD_BATCH_LZ4) {
		rv = record_inflate(v, b, errmsg);
	} else {
		b->body.len = 0;
		rv = rs_buf_append(&b->body, v->payload + RECORD_FIXED,
				   v->payload_len - RECORD_FIXED);
	}
	if (rv != RS_OK)
		goto err;
	rv = batch_body_validate(b->body.data, b->body.len, errmsg);
	if (rv != RS_OK)
		goto err;
	b->count = rs_get_u32(b->body.data);
	b->version = v->version;
	b->epoch = v->epoch;
	return RS_OK;
err:
	batch_reset(b);
	return rv;
}
