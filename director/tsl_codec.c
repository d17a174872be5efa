/*
 * tsl_codec: the consolidated binary form of a layout, tsl_encode and
 * tsl_decode, and the primitives the decomposed entries share with it: the
 * 20-byte checksummed frame, and the field writers and readers
 * (tsl_internal.h).  tsl.h draws the format.
 *
 * Writers run in a buffer reserved up front for the largest body, so no
 * step can fail; readers claim each field's bytes before touching them and
 * name the field when the input ends inside it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include "director/tsl.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "director/tsl_internal.h"
#include "raftstore/lib/crc32c.h"

/* ------------------------------------------------------------------ */
/* Writing (into a buffer reserved up front, so no step can fail)        */
/* ------------------------------------------------------------------ */

void tsl_wr_u8(struct rs_buf *b, uint8_t v)
{
	assert(b->cap - b->len >= 1);
	b->data[b->len++] = v;
}

static void tsl_wr_u16(struct rs_buf *b, uint16_t v)
{
	assert(b->cap - b->len >= 2);
	b->data[b->len++] = (uint8_t)v;
	b->data[b->len++] = (uint8_t)(v >> 8);
}

static void tsl_wr_u32(struct rs_buf *b, uint32_t v)
{
	assert(b->cap - b->len >= 4);
	rs_put_u32(b->data + b->len, v);
	b->len += 4;
}

void tsl_wr_u64(struct rs_buf *b, uint64_t v)
{
	assert(b->cap - b->len >= 8);
	rs_put_u64(b->data + b->len, v);
	b->len += 8;
}

static void tsl_wr_bytes(struct rs_buf *b, const void *p, size_t n)
{
	assert(n <= UINT16_MAX && b->cap - b->len >= 2 + n);
	tsl_wr_u16(b, (uint16_t)n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void tsl_wr_addr(struct rs_buf *b, const char *addr)
{
	tsl_wr_bytes(b, addr, strnlen(addr, TSL_ADDR_LEN_MAX));
}

void tsl_wr_node(struct rs_buf *b, const struct tsl_node *n)
{
	tsl_wr_u64(b, n->node_id);
	tsl_wr_addr(b, n->addr);
}

void tsl_wr_component(struct rs_buf *b, const struct tsl_component *c)
{
	tsl_wr_u64(b, c->id);
	tsl_wr_u64(b, c->node_id);
	tsl_wr_addr(b, c->addr);
}

void tsl_wr_range(struct rs_buf *b, const struct tsl_range *r)
{
	tsl_wr_bytes(b, r->begin, r->begin_len);
	tsl_wr_bytes(b, r->end, r->end_len);
}

void tsl_wr_service(struct rs_buf *b, const struct tsl_service *s)
{
	tsl_wr_u64(b, s->node_id);
	tsl_wr_addr(b, s->addr);
	tsl_wr_u32(b, s->capabilities);
	tsl_wr_u8(b, s->status);
	tsl_wr_u64(b, s->heartbeat_age_ms);
}

/* Reserve a frame of up to body_max body bytes; returns its start. */
int tsl_frame_begin(struct rs_buf *out, size_t body_max, size_t *start)
{
	if (rs_buf_reserve(out, TSL_HEADER_SIZE + body_max) != RS_OK)
		return RS_ENOMEM;
	*start = out->len;
	out->len += TSL_HEADER_SIZE;
	return RS_OK;
}

void tsl_frame_end(struct rs_buf *out, size_t start, const char *magic,
		   uint32_t version, size_t body_max)
{
	uint8_t *hdr = out->data + start;
	size_t body_len = out->len - start - TSL_HEADER_SIZE;

	(void)body_max; /* only asserted */
	assert(body_len <= body_max);
	assert(body_len <= UINT32_MAX);
	memcpy(hdr, magic, TSL_MAGIC_SIZE);
	rs_put_u32(hdr + 8, version);
	rs_put_u32(hdr + 12, (uint32_t)body_len);
	rs_put_u32(hdr + 16, crc32c(hdr + TSL_HEADER_SIZE, body_len));
}

static void tsl_write_body(struct rs_buf *b, const struct tsl *t)
{
	uint32_t i;

	tsl_wr_u64(b, t->id);
	tsl_wr_u64(b, t->epoch);
	tsl_wr_u64(b, t->recovery_version);
	tsl_wr_node(b, &t->director);
	tsl_wr_component(b, &t->sequencer);
	tsl_wr_u32(b, t->commit_proxy_count);
	for (i = 0; i < t->commit_proxy_count; i++)
		tsl_wr_component(b, &t->commit_proxies[i]);
	tsl_wr_u32(b, t->resolver_count);
	for (i = 0; i < t->resolver_count; i++) {
		tsl_wr_component(b, &t->resolvers[i].c);
		tsl_wr_range(b, &t->resolvers[i].range);
	}
	tsl_wr_u32(b, t->log_count);
	for (i = 0; i < t->log_count; i++)
		tsl_wr_component(b, &t->logs[i]);
	tsl_wr_u32(b, t->storage_count);
	for (i = 0; i < t->storage_count; i++)
		tsl_wr_component(b, &t->storage[i]);
	tsl_wr_u32(b, t->service_count);
	for (i = 0; i < t->service_count; i++)
		tsl_wr_service(b, &t->services[i]);
}

int tsl_encode(const struct tsl *t, struct rs_buf *out, char *errmsg)
{
	size_t start;
	int rv;

	rv = tsl_validate(t, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = tsl_frame_begin(out, TSL_BODY_SIZE_MAX, &start);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "encode layout: out of memory");
		return rv;
	}
	tsl_write_body(out, t);
	tsl_frame_end(out, start, TSL_MAGIC, TSL_FORMAT_VERSION, TSL_BODY_SIZE_MAX);
	assert(out->len - start <= TSL_ENCODED_SIZE_MAX);
	return RS_OK;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */
/* ------------------------------------------------------------------ */

/* Claim n bytes for where.field, or say that the input ends inside it. */
static int tsl_rd_take(struct tsl_rd *r, size_t n, const char *where,
		       const char *field, const uint8_t **out)
{
	assert(r->pos <= r->len);
	if (r->len - r->pos < n) {
		rs_errmsg_printf(r->errmsg, "truncated in %s%s%s", where,
				 where[0] && field[0] ? "." : "", field);
		return RS_ECORRUPT;
	}
	*out = r->p + r->pos;
	r->pos += n;
	return RS_OK;
}

int tsl_rd_u8(struct tsl_rd *r, const char *where, const char *field,
	      uint8_t *v)
{
	const uint8_t *p;
	int rv = tsl_rd_take(r, 1, where, field, &p);

	if (rv == RS_OK)
		*v = p[0];
	return rv;
}

static int tsl_rd_u32(struct tsl_rd *r, const char *where, const char *field,
		      uint32_t *v)
{
	const uint8_t *p;
	int rv = tsl_rd_take(r, 4, where, field, &p);

	if (rv == RS_OK)
		*v = rs_get_u32(p);
	return rv;
}

int tsl_rd_u64(struct tsl_rd *r, const char *where, const char *field,
	       uint64_t *v)
{
	const uint8_t *p;
	int rv = tsl_rd_take(r, 8, where, field, &p);

	if (rv == RS_OK)
		*v = rs_get_u64(p);
	return rv;
}

/* A u16-length string of at most max bytes into dst; *len gets its length. */
static int tsl_rd_bytes(struct tsl_rd *r, const char *where, const char *field,
			uint8_t *dst, uint32_t *len, size_t max)
{
	const uint8_t *p;
	uint32_t n;
	int rv = tsl_rd_take(r, 2, where, field, &p);

	if (rv != RS_OK)
		return rv;
	n = (uint32_t)p[0] | (uint32_t)p[1] << 8;
	if (n > max) {
		rs_errmsg_printf(r->errmsg, "%s.%s: %u bytes, at most %zu", where,
				 field, n, max);
		return RS_ECORRUPT;
	}
	rv = tsl_rd_take(r, n, where, field, &p);
	if (rv != RS_OK)
		return rv;
	if (n > 0)
		memcpy(dst, p, n);
	*len = n;
	return RS_OK;
}

static int tsl_rd_addr(struct tsl_rd *r, const char *where, char *addr)
{
	uint32_t n;
	int rv = tsl_rd_bytes(r, where, "addr", (uint8_t *)addr, &n, TSL_ADDR_LEN_MAX);

	if (rv != RS_OK)
		return rv;
	addr[n] = '\0';
	if (memchr(addr, '\0', n) != NULL) {
		rs_errmsg_printf(r->errmsg, "%s.addr: contains a NUL byte", where);
		return RS_ECORRUPT;
	}
	return RS_OK;
}

int tsl_rd_node(struct tsl_rd *r, const char *where, struct tsl_node *n)
{
	int rv = tsl_rd_u64(r, where, "node_id", &n->node_id);

	return rv == RS_OK ? tsl_rd_addr(r, where, n->addr) : rv;
}

int tsl_rd_component(struct tsl_rd *r, const char *where,
		     struct tsl_component *c)
{
	int rv = tsl_rd_u64(r, where, "id", &c->id);

	if (rv == RS_OK)
		rv = tsl_rd_u64(r, where, "node_id", &c->node_id);
	return rv == RS_OK ? tsl_rd_addr(r, where, c->addr) : rv;
}

int tsl_rd_range(struct tsl_rd *r, const char *where, struct tsl_range *g)
{
	int rv = tsl_rd_bytes(r, where, "range.begin", g->begin, &g->begin_len,
			      TSL_RANGE_KEY_MAX);

	if (rv == RS_OK)
		rv = tsl_rd_bytes(r, where, "range.end", g->end, &g->end_len,
				  TSL_RANGE_KEY_MAX);
	return rv;
}

int tsl_rd_service(struct tsl_rd *r, const char *where,
		   struct tsl_service *s)
{
	int rv = tsl_rd_u64(r, where, "node_id", &s->node_id);

	if (rv == RS_OK)
		rv = tsl_rd_addr(r, where, s->addr);
	if (rv == RS_OK)
		rv = tsl_rd_u32(r, where, "capabilities", &s->capabilities);
	if (rv == RS_OK)
		rv = tsl_rd_u8(r, where, "status", &s->status);
	if (rv == RS_OK)
		rv = tsl_rd_u64(r, where, "heartbeat_age_ms", &s->heartbeat_age_ms);
	return rv;
}

static int tsl_rd_count(struct tsl_rd *r, const char *name, uint32_t max,
			uint32_t *count)
{
	int rv = tsl_rd_u32(r, name, "count", count);

	if (rv == RS_OK && *count > max) {
		rs_errmsg_printf(r->errmsg, "%s.count: %u, at most %u", name,
				 *count, max);
		rv = RS_ECORRUPT;
	}
	return rv;
}

/* count x component for one of the plain component arrays. */
static int tsl_rd_array(struct tsl_rd *r, const char *name, uint32_t *count,
			struct tsl_component *a)
{
	char where[TSL_WHERE_SIZE];
	int rv = tsl_rd_count(r, name, TSL_COMPONENTS_MAX, count);

	for (uint32_t i = 0; rv == RS_OK && i < *count; i++) {
		snprintf(where, sizeof where, "%s[%u]", name, i);
		rv = tsl_rd_component(r, where, &a[i]);
	}
	return rv;
}

static int tsl_rd_resolvers_and_rest(struct tsl_rd *r, struct tsl *t)
{
	char where[TSL_WHERE_SIZE];
	uint32_t i;
	int rv = tsl_rd_count(r, "resolvers", TSL_COMPONENTS_MAX, &t->resolver_count);

	for (i = 0; rv == RS_OK && i < t->resolver_count; i++) {
		snprintf(where, sizeof where, "resolvers[%u]", i);
		rv = tsl_rd_component(r, where, &t->resolvers[i].c);
		if (rv == RS_OK)
			rv = tsl_rd_range(r, where, &t->resolvers[i].range);
	}
	if (rv == RS_OK)
		rv = tsl_rd_array(r, "logs", &t->log_count, t->logs);
	if (rv == RS_OK)
		rv = tsl_rd_array(r, "storage", &t->storage_count, t->storage);
	if (rv == RS_OK)
		rv = tsl_rd_count(r, "services", TSL_SERVICES_MAX, &t->service_count);
	for (i = 0; rv == RS_OK && i < t->service_count; i++) {
		snprintf(where, sizeof where, "services[%u]", i);
		rv = tsl_rd_service(r, where, &t->services[i]);
	}
	return rv;
}

static int tsl_read_body(struct tsl_rd *r, struct tsl *t)
{
	int rv = tsl_rd_u64(r, "", "id", &t->id);

	if (rv == RS_OK)
		rv = tsl_rd_u64(r, "", "epoch", &t->epoch);
	if (rv == RS_OK)
		rv = tsl_rd_u64(r, "", "recovery_version", &t->recovery_version);
	if (rv == RS_OK)
		rv = tsl_rd_node(r, "director", &t->director);
	if (rv == RS_OK)
		rv = tsl_rd_component(r, "sequencer", &t->sequencer);
	if (rv == RS_OK)
		rv = tsl_rd_array(r, "commit_proxies", &t->commit_proxy_count,
				  t->commit_proxies);
	if (rv == RS_OK)
		rv = tsl_rd_resolvers_and_rest(r, t);
	if (rv == RS_OK && r->pos != r->len) {
		rs_errmsg_printf(r->errmsg, "%zu bytes after services",
				 r->len - r->pos);
		rv = RS_ECORRUPT;
	}
	return rv;
}

/*
 * Check the 20-byte frame around a body: magic, version, length, crc, and
 * that the input is exactly one frame.  `what` names the value in messages.
 */
int tsl_frame_open(const uint8_t *p, size_t n, const char *magic,
		   uint32_t version, size_t body_max, const char *what,
		   const uint8_t **body, size_t *body_len, char *errmsg)
{
	uint32_t found, length, stored, actual;

	if (n < TSL_HEADER_SIZE) {
		rs_errmsg_printf(errmsg, "truncated in header (%zu of %u bytes)",
				 n, TSL_HEADER_SIZE);
		return RS_ECORRUPT;
	}
	if (memcmp(p, magic, TSL_MAGIC_SIZE) != 0) {
		rs_errmsg_printf(errmsg, "bad magic (not a %s)", what);
		return RS_ECORRUPT;
	}
	found = rs_get_u32(p + 8);
	if (found != version) {
		rs_errmsg_printf(errmsg, "unknown %s format version %u (this build reads %u)",
				 what, found, version);
		return RS_EFORMAT;
	}
	length = rs_get_u32(p + 12);
	if (length > body_max) {
		rs_errmsg_printf(errmsg, "length %u exceeds the maximum %zu", length, body_max);
		return RS_ECORRUPT;
	}
	if (n - TSL_HEADER_SIZE < length) {
		rs_errmsg_printf(errmsg, "truncated in body (%zu of %u bytes)",
				 n - TSL_HEADER_SIZE, length);
		return RS_ECORRUPT;
	}
	if (n - TSL_HEADER_SIZE > length) {
		rs_errmsg_printf(errmsg, "%zu bytes after the body",
				 n - TSL_HEADER_SIZE - length);
		return RS_ECORRUPT;
	}
	stored = rs_get_u32(p + 16);
	actual = crc32c(p + TSL_HEADER_SIZE, length);
	if (stored != actual) {
		rs_errmsg_printf(errmsg, "crc mismatch (stored %08x, computed %08x)",
				 stored, actual);
		return RS_ECORRUPT;
	}
	*body = p + TSL_HEADER_SIZE;
	*body_len = length;
	return RS_OK;
}

int tsl_decode(const uint8_t *p, size_t n, struct tsl *out, char *errmsg)
{
	struct tsl_rd r = {.errmsg = errmsg};
	int rv;

	assert(p != NULL || n == 0);
	tsl_init(out);
	rv = tsl_frame_open(p, n, TSL_MAGIC, TSL_FORMAT_VERSION, TSL_BODY_SIZE_MAX,
			    "layout", &r.p, &r.len, errmsg);
	if (rv == RS_OK)
		rv = tsl_read_body(&r, out);
	/* The paired check: what we read must be a layout we would write. */
	if (rv == RS_OK && tsl_validate(out, errmsg) != RS_OK)
		rv = RS_ECORRUPT;
	if (rv != RS_OK)
		tsl_init(out);
	assert(rv != RS_OK || r.pos == r.len);
	return rv;
}
