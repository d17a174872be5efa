/* tsl: see tsl.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include "director/tsl.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"

/* Room for a field path such as "commit_proxies[15]". */
#define TSL_WHERE_SIZE 48

static const char *const tsl_kind_names[] = {
	NULL, "director", "sequencer", "commit_proxy", "resolver",
	"log", "storage", "service",
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

const char *tsl_kind_name(enum tsl_kind kind)
{
	if ((int)kind < TSL_KIND_DIRECTOR || (int)kind > TSL_KIND_SERVICE)
		return NULL;
	return tsl_kind_names[kind];
}

void tsl_init(struct tsl *t)
{
	memset(t, 0, sizeof *t);
}

static bool tsl_bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b,
			 size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* A key for a message: printable ASCII as is, anything else as \xNN. */
static void tsl_key_text(const uint8_t *key, size_t len, char *out,
			 size_t cap)
{
	size_t o = 0, i;

	assert(cap >= 8);
	for (i = 0; i < len && o + 5 < cap; i++) {
		if (key[i] >= 0x20 && key[i] < 0x7f && key[i] != '\\')
			out[o++] = (char)key[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", key[i]);
	}
	if (i < len && o + 4 <= cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* ------------------------------------------------------------------ */
/* Validation                                                           */
/* ------------------------------------------------------------------ */

static bool tsl_addr_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c != '\0' && strchr(".-_:[]%", c) != NULL);
}

static int tsl_check_addr(const char *addr, const char *where, char *errmsg)
{
	size_t len = strnlen(addr, TSL_ADDR_SIZE), i;
	const char *colon;
	unsigned long port = 0;

	if (len == TSL_ADDR_SIZE) { /* no NUL: at least this long */
		rs_errmsg_printf(errmsg, "%s.addr: %u bytes, at most %u", where,
				 TSL_ADDR_SIZE, TSL_ADDR_LEN_MAX);
		return RS_EINVAL;
	}
	if (len == 0) {
		rs_errmsg_printf(errmsg, "%s.addr: empty", where);
		return RS_EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (!tsl_addr_char(addr[i])) {
			rs_errmsg_printf(errmsg, "%s.addr: byte 0x%02x at %zu is not allowed in host:port",
					 where, (uint8_t)addr[i], i);
			return RS_EINVAL;
		}
	}
	colon = strrchr(addr, ':');
	if (colon != NULL && colon > addr && colon[1] != '\0' &&
	    strlen(colon + 1) <= 5 && strspn(colon + 1, "0123456789") == strlen(colon + 1))
		port = strtoul(colon + 1, NULL, 10);
	if (port == 0 || port > 65535) {
		rs_errmsg_printf(errmsg, "%s.addr: \"%s\" is not host:port (port 1-65535)",
				 where, addr);
		return RS_EINVAL;
	}
	return RS_OK;
}

static int tsl_check_node_id(uint64_t node_id, const char *where,
			     char *errmsg)
{
	if (node_id != 0)
		return RS_OK;
	rs_errmsg_printf(errmsg, "%s.node_id: 0 is not a node id", where);
	return RS_EINVAL;
}

static int tsl_check_component(const struct tsl_component *c,
			       const char *where, char *errmsg)
{
	int rv = tsl_check_node_id(c->node_id, where, errmsg);

	if (rv == RS_OK)
		rv = tsl_check_addr(c->addr, where, errmsg);
	return rv;
}

/* The range on its own: bounded and non-empty. */
static int tsl_check_range(const struct tsl_range *r, const char *where,
			   char *errmsg)
{
	if (r->begin_len > TSL_RANGE_KEY_MAX || r->end_len > TSL_RANGE_KEY_MAX) {
		rs_errmsg_printf(errmsg, "%s.range.%s: %u bytes, at most %u", where,
				 r->begin_len > TSL_RANGE_KEY_MAX ? "begin" : "end",
				 r->begin_len > TSL_RANGE_KEY_MAX ? r->begin_len : r->end_len,
				 TSL_RANGE_KEY_MAX);
		return RS_EINVAL;
	}
	if (r->end_len == 0)
		return RS_OK;
	int c = bytes_compare(r->end, r->end_len, r->begin, r->begin_len);
	if (c < 0) {
		rs_errmsg_printf(errmsg, "%s.range: end before begin", where);
		return RS_EINVAL;
	}
	if (c == 0) {
		rs_errmsg_printf(errmsg, "%s.range: empty (end equals begin)", where);
		return RS_EINVAL;
	}
	return RS_OK;
}

static int tsl_check_service(const struct tsl_service *s, const char *where,
			     char *errmsg)
{
	int rv = tsl_check_node_id(s->node_id, where, errmsg);

	if (rv == RS_OK)
		rv = tsl_check_addr(s->addr, where, errmsg);
	if (rv != RS_OK)
		return rv;
	if (s->capabilities & ~TSL_CAP_ALL) {
		rs_errmsg_printf(errmsg, "%s.capabilities: unknown bits 0x%x", where,
				 s->capabilities & ~TSL_CAP_ALL);
		return RS_EINVAL;
	}
	if (s->status != TSL_STATUS_UP && s->status != TSL_STATUS_DOWN) {
		rs_errmsg_printf(errmsg, "%s.status: %u is neither up (%u) nor down (%u)",
				 where, s->status, TSL_STATUS_UP, TSL_STATUS_DOWN);
		return RS_EINVAL;
	}
	return RS_OK;
}

static int tsl_check_count(uint32_t count, uint32_t max, const char *name,
			   char *errmsg)
{
	if (count <= max)
		return RS_OK;
	rs_errmsg_printf(errmsg, "%s.count: %u, at most %u", name, count, max);
	return RS_EINVAL;
}

/* An array of components: each valid, ids unique, and (for per-node roles)
 * node_ids unique. */
static int tsl_check_array(const struct tsl_component *a, uint32_t n,
			   const char *name, bool one_per_node, char *errmsg)
{
	char where[TSL_WHERE_SIZE];
	uint32_t i, j;

	assert(n <= TSL_SERVICES_MAX);
	for (i = 0; i < n; i++) {
		snprintf(where, sizeof where, "%s[%u]", name, i);
		if (tsl_check_component(&a[i], where, errmsg) != RS_OK)
			return RS_EINVAL;
		for (j = 0; j < i; j++) {
			if (a[j].id == a[i].id) {
				rs_errmsg_printf(errmsg, "%s.id: %" PRIu64 " duplicates %s[%u]",
						 where, a[i].id, name, j);
				return RS_EINVAL;
			}
			if (one_per_node && a[j].node_id == a[i].node_id) {
				rs_errmsg_printf(errmsg, "%s.node_id: node %" PRIu64 " already runs %s[%u]",
						 where, a[i].node_id, name, j);
				return RS_EINVAL;
			}
		}
	}
	return RS_OK;
}

/* Resolver ranges, in order, cover the key space exactly once. */
static int tsl_check_resolvers(const struct tsl *t, char *errmsg)
{
	struct tsl_component comps[TSL_COMPONENTS_MAX];
	char where[TSL_WHERE_SIZE];
	uint32_t i;

	assert(t->resolver_count <= TSL_COMPONENTS_MAX); /* tsl_check_counts */
	for (i = 0; i < t->resolver_count; i++) {
		const struct tsl_range *r = &t->resolvers[i].range;
		const struct tsl_range *prev = i > 0 ? &t->resolvers[i - 1].range : NULL;

		snprintf(where, sizeof where, "resolvers[%u]", i);
		if (tsl_check_range(r, where, errmsg) != RS_OK)
			return RS_EINVAL;
		if (prev == NULL && r->begin_len != 0) {
			rs_errmsg_printf(errmsg, "%s.range: begin is not empty (the first resolver starts the key space)", where);
			return RS_EINVAL;
		}
		if (prev != NULL && !tsl_bytes_eq(r->begin, r->begin_len, prev->end, prev->end_len)) {
			rs_errmsg_printf(errmsg, "%s.range: begin is not resolvers[%u]'s end (gap or overlap)",
					 where, i - 1);
			return RS_EINVAL;
		}
		if (i + 1 == t->resolver_count && r->end_len != 0) {
			rs_errmsg_printf(errmsg, "%s.range: end is not empty (the last resolver ends the key space)", where);
			return RS_EINVAL;
		}
		comps[i] = t->resolvers[i].c;
	}
	return tsl_check_array(comps, t->resolver_count, "resolvers", false, errmsg);
}

static int tsl_check_services(const struct tsl *t, char *errmsg)
{
	char where[TSL_WHERE_SIZE];
	uint32_t i, j;

	for (i = 0; i < t->service_count; i++) {
		snprintf(where, sizeof where, "services[%u]", i);
		if (tsl_check_service(&t->services[i], where, errmsg) != RS_OK)
			return RS_EINVAL;
		for (j = 0; j < i; j++) {
			if (t->services[j].node_id == t->services[i].node_id) {
				rs_errmsg_printf(errmsg, "%s.node_id: %" PRIu64 " duplicates services[%u]",
						 where, t->services[i].node_id, j);
				return RS_EINVAL;
			}
		}
	}
	return RS_OK;
}

static bool tsl_has_service(const struct tsl *t, uint64_t node_id)
{
	for (uint32_t i = 0; i < t->service_count; i++)
		if (t->services[i].node_id == node_id)
			return true;
	return false;
}

static int tsl_check_ref(const struct tsl *t, uint64_t node_id,
			 const char *name, uint32_t i, char *errmsg)
{
	char where[TSL_WHERE_SIZE];

	if (tsl_has_service(t, node_id))
		return RS_OK;
	if (i == UINT32_MAX)
		snprintf(where, sizeof where, "%s", name);
	else
		snprintf(where, sizeof where, "%s[%u]", name, i);
	rs_errmsg_printf(errmsg, "%s.node_id: %" PRIu64 " is not a registered service",
			 where, node_id);
	return RS_EINVAL;
}

/* Every component runs on a node listed in services. */
static int tsl_check_refs(const struct tsl *t, char *errmsg)
{
	int rv = tsl_check_ref(t, t->director.node_id, "director", UINT32_MAX, errmsg);
	uint32_t i;

	if (rv == RS_OK)
		rv = tsl_check_ref(t, t->sequencer.node_id, "sequencer", UINT32_MAX, errmsg);
	for (i = 0; rv == RS_OK && i < t->commit_proxy_count; i++)
		rv = tsl_check_ref(t, t->commit_proxies[i].node_id, "commit_proxies", i, errmsg);
	for (i = 0; rv == RS_OK && i < t->resolver_count; i++)
		rv = tsl_check_ref(t, t->resolvers[i].c.node_id, "resolvers", i, errmsg);
	for (i = 0; rv == RS_OK && i < t->log_count; i++)
		rv = tsl_check_ref(t, t->logs[i].node_id, "logs", i, errmsg);
	for (i = 0; rv == RS_OK && i < t->storage_count; i++)
		rv = tsl_check_ref(t, t->storage[i].node_id, "storage", i, errmsg);
	return rv;
}

static int tsl_check_counts(const struct tsl *t, char *errmsg)
{
	int rv = tsl_check_count(t->commit_proxy_count, TSL_COMPONENTS_MAX,
				 "commit_proxies", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_count(t->resolver_count, TSL_COMPONENTS_MAX, "resolvers", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_count(t->log_count, TSL_COMPONENTS_MAX, "logs", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_count(t->storage_count, TSL_COMPONENTS_MAX, "storage", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_count(t->service_count, TSL_SERVICES_MAX, "services", errmsg);
	return rv;
}

int tsl_validate(const struct tsl *t, char *errmsg)
{
	int rv;

	assert(t != NULL);
	if (t->epoch == 0) {
		rs_errmsg_printf(errmsg, "epoch: 0 is not an epoch");
		return RS_EINVAL;
	}
	rv = tsl_check_counts(t, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_node_id(t->director.node_id, "director", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_addr(t->director.addr, "director", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_component(&t->sequencer, "sequencer", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_array(t->commit_proxies, t->commit_proxy_count,
				     "commit_proxies", false, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_resolvers(t, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_array(t->logs, t->log_count, "logs", true, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_array(t->storage, t->storage_count, "storage", true,
				     errmsg);
	if (rv == RS_OK)
		rv = tsl_check_services(t, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_refs(t, errmsg);
	assert(rv == RS_OK || rv == RS_EINVAL);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Writing (into a buffer reserved up front, so no step can fail)        */
/* ------------------------------------------------------------------ */

static void wr_u8(struct rs_buf *b, uint8_t v)
{
	assert(b->cap - b->len >= 1);
	b->data[b->len++] = v;
}

static void wr_u16(struct rs_buf *b, uint16_t v)
{
	assert(b->cap - b->len >= 2);
	b->data[b->len++] = (uint8_t)v;
	b->data[b->len++] = (uint8_t)(v >> 8);
}

static void wr_u32(struct rs_buf *b, uint32_t v)
{
	assert(b->cap - b->len >= 4);
	rs_put_u32(b->data + b->len, v);
	b->len += 4;
}

static void wr_u64(struct rs_buf *b, uint64_t v)
{
	assert(b->cap - b->len >= 8);
	rs_put_u64(b->data + b->len, v);
	b->len += 8;
}

static void wr_bytes(struct rs_buf *b, const void *p, size_t n)
{
	assert(n <= UINT16_MAX && b->cap - b->len >= 2 + n);
	wr_u16(b, (uint16_t)n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void wr_addr(struct rs_buf *b, const char *addr)
{
	wr_bytes(b, addr, strnlen(addr, TSL_ADDR_LEN_MAX));
}

static void wr_node(struct rs_buf *b, const struct tsl_node *n)
{
	wr_u64(b, n->node_id);
	wr_addr(b, n->addr);
}

static void wr_component(struct rs_buf *b, const struct tsl_component *c)
{
	wr_u64(b, c->id);
	wr_u64(b, c->node_id);
	wr_addr(b, c->addr);
}

static void wr_range(struct rs_buf *b, const struct tsl_range *r)
{
	wr_bytes(b, r->begin, r->begin_len);
	wr_bytes(b, r->end, r->end_len);
}

static void wr_service(struct rs_buf *b, const struct tsl_service *s)
{
	wr_u64(b, s->node_id);
	wr_addr(b, s->addr);
	wr_u32(b, s->capabilities);
	wr_u8(b, s->status);
	wr_u64(b, s->heartbeat_age_ms);
}

/* Reserve a frame of up to body_max body bytes; returns its start. */
static int tsl_frame_begin(struct rs_buf *out, size_t body_max, size_t *start)
{
	if (rs_buf_reserve(out, TSL_HEADER_SIZE + body_max) != RS_OK)
		return RS_ENOMEM;
	*start = out->len;
	out->len += TSL_HEADER_SIZE;
	return RS_OK;
}

static void tsl_frame_end(struct rs_buf *out, size_t start, const char *magic,
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

	wr_u64(b, t->id);
	wr_u64(b, t->epoch);
	wr_u64(b, t->recovery_version);
	wr_node(b, &t->director);
	wr_component(b, &t->sequencer);
	wr_u32(b, t->commit_proxy_count);
	for (i = 0; i < t->commit_proxy_count; i++)
		wr_component(b, &t->commit_proxies[i]);
	wr_u32(b, t->resolver_count);
	for (i = 0; i < t->resolver_count; i++) {
		wr_component(b, &t->resolvers[i].c);
		wr_range(b, &t->resolvers[i].range);
	}
	wr_u32(b, t->log_count);
	for (i = 0; i < t->log_count; i++)
		wr_component(b, &t->logs[i]);
	wr_u32(b, t->storage_count);
	for (i = 0; i < t->storage_count; i++)
		wr_component(b, &t->storage[i]);
	wr_u32(b, t->service_count);
	for (i = 0; i < t->service_count; i++)
		wr_service(b, &t->services[i]);
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

struct tsl_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
	char *errmsg;
};

/* Claim n bytes for where.field, or say that the input ends inside it. */
static int rd_take(struct tsl_rd *r, size_t n, const char *where,
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

static int rd_u8(struct tsl_rd *r, const char *where, const char *field,
		 uint8_t *v)
{
	const uint8_t *p;
	int rv = rd_take(r, 1, where, field, &p);

	if (rv == RS_OK)
		*v = p[0];
	return rv;
}

static int rd_u32(struct tsl_rd *r, const char *where, const char *field,
		  uint32_t *v)
{
	const uint8_t *p;
	int rv = rd_take(r, 4, where, field, &p);

	if (rv == RS_OK)
		*v = rs_get_u32(p);
	return rv;
}

static int rd_u64(struct tsl_rd *r, const char *where, const char *field,
		  uint64_t *v)
{
	const uint8_t *p;
	int rv = rd_take(r, 8, where, field, &p);

	if (rv == RS_OK)
		*v = rs_get_u64(p);
	return rv;
}

/* A u16-length string of at most max bytes into dst; *len gets its length. */
static int rd_bytes(struct tsl_rd *r, const char *where, const char *field,
		    uint8_t *dst, uint32_t *len, size_t max)
{
	const uint8_t *p;
	uint32_t n;
	int rv = rd_take(r, 2, where, field, &p);

	if (rv != RS_OK)
		return rv;
	n = (uint32_t)p[0] | (uint32_t)p[1] << 8;
	if (n > max) {
		rs_errmsg_printf(r->errmsg, "%s.%s: %u bytes, at most %zu", where,
				 field, n, max);
		return RS_ECORRUPT;
	}
	rv = rd_take(r, n, where, field, &p);
	if (rv != RS_OK)
		return rv;
	if (n > 0)
		memcpy(dst, p, n);
	*len = n;
	return RS_OK;
}

static int rd_addr(struct tsl_rd *r, const char *where, char *addr)
{
	uint32_t n;
	int rv = rd_bytes(r, where, "addr", (uint8_t *)addr, &n, TSL_ADDR_LEN_MAX);

	if (rv != RS_OK)
		return rv;
	addr[n] = '\0';
	if (memchr(addr, '\0', n) != NULL) {
		rs_errmsg_printf(r->errmsg, "%s.addr: contains a NUL byte", where);
		return RS_ECORRUPT;
	}
	return RS_OK;
}

static int rd_node(struct tsl_rd *r, const char *where, struct tsl_node *n)
{
	int rv = rd_u64(r, where, "node_id", &n->node_id);

	return rv == RS_OK ? rd_addr(r, where, n->addr) : rv;
}

static int rd_component(struct tsl_rd *r, const char *where,
			struct tsl_component *c)
{
	int rv = rd_u64(r, where, "id", &c->id);

	if (rv == RS_OK)
		rv = rd_u64(r, where, "node_id", &c->node_id);
	return rv == RS_OK ? rd_addr(r, where, c->addr) : rv;
}

static int rd_range(struct tsl_rd *r, const char *where, struct tsl_range *g)
{
	int rv = rd_bytes(r, where, "range.begin", g->begin, &g->begin_len,
			  TSL_RANGE_KEY_MAX);

	if (rv == RS_OK)
		rv = rd_bytes(r, where, "range.end", g->end, &g->end_len,
			      TSL_RANGE_KEY_MAX);
	return rv;
}

static int rd_service(struct tsl_rd *r, const char *where,
		      struct tsl_service *s)
{
	int rv = rd_u64(r, where, "node_id", &s->node_id);

	if (rv == RS_OK)
		rv = rd_addr(r, where, s->addr);
	if (rv == RS_OK)
		rv = rd_u32(r, where, "capabilities", &s->capabilities);
	if (rv == RS_OK)
		rv = rd_u8(r, where, "status", &s->status);
	if (rv == RS_OK)
		rv = rd_u64(r, where, "heartbeat_age_ms", &s->heartbeat_age_ms);
	return rv;
}

static int rd_count(struct tsl_rd *r, const char *name, uint32_t max,
		    uint32_t *count)
{
	int rv = rd_u32(r, name, "count", count);

	if (rv == RS_OK && *count > max) {
		rs_errmsg_printf(r->errmsg, "%s.count: %u, at most %u", name,
				 *count, max);
		rv = RS_ECORRUPT;
	}
	return rv;
}

/* count x component for one of the plain component arrays. */
static int rd_array(struct tsl_rd *r, const char *name, uint32_t *count,
		    struct tsl_component *a)
{
	char where[TSL_WHERE_SIZE];
	int rv = rd_count(r, name, TSL_COMPONENTS_MAX, count);

	for (uint32_t i = 0; rv == RS_OK && i < *count; i++) {
		snprintf(where, sizeof where, "%s[%u]", name, i);
		rv = rd_component(r, where, &a[i]);
	}
	return rv;
}

static int rd_resolvers_and_rest(struct tsl_rd *r, struct tsl *t)
{
	char where[TSL_WHERE_SIZE];
	uint32_t i;
	int rv = rd_count(r, "resolvers", TSL_COMPONENTS_MAX, &t->resolver_count);

	for (i = 0; rv == RS_OK && i < t->resolver_count; i++) {
		snprintf(where, sizeof where, "resolvers[%u]", i);
		rv = rd_component(r, where, &t->resolvers[i].c);
		if (rv == RS_OK)
			rv = rd_range(r, where, &t->resolvers[i].range);
	}
	if (rv == RS_OK)
		rv = rd_array(r, "logs", &t->log_count, t->logs);
	if (rv == RS_OK)
		rv = rd_array(r, "storage", &t->storage_count, t->storage);
	if (rv == RS_OK)
		rv = rd_count(r, "services", TSL_SERVICES_MAX, &t->service_count);
	for (i = 0; rv == RS_OK && i < t->service_count; i++) {
		snprintf(where, sizeof where, "services[%u]", i);
		rv = rd_service(r, where, &t->services[i]);
	}
	return rv;
}

static int tsl_read_body(struct tsl_rd *r, struct tsl *t)
{
	int rv = rd_u64(r, "", "id", &t->id);

	if (rv == RS_OK)
		rv = rd_u64(r, "", "epoch", &t->epoch);
	if (rv == RS_OK)
		rv = rd_u64(r, "", "recovery_version", &t->recovery_version);
	if (rv == RS_OK)
		rv = rd_node(r, "director", &t->director);
	if (rv == RS_OK)
		rv = rd_component(r, "sequencer", &t->sequencer);
	if (rv == RS_OK)
		rv = rd_array(r, "commit_proxies", &t->commit_proxy_count,
			      t->commit_proxies);
	if (rv == RS_OK)
		rv = rd_resolvers_and_rest(r, t);
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
static int tsl_frame_open(const uint8_t *p, size_t n, const char *magic,
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

/* ------------------------------------------------------------------ */
/* Comparison                                                           */
/* ------------------------------------------------------------------ */

static bool tsl_addr_eq(const char *a, const char *b)
{
	return strncmp(a, b, TSL_ADDR_SIZE) == 0;
}

/* Each returns the first differing field's name, or NULL if equal. */
static const char *tsl_node_diff(const struct tsl_node *a,
				 const struct tsl_node *b)
{
	if (a->node_id != b->node_id)
		return "node_id";
	return tsl_addr_eq(a->addr, b->addr) ? NULL : "addr";
}

static const char *tsl_component_diff(const struct tsl_component *a,
				      const struct tsl_component *b)
{
	if (a->id != b->id)
		return "id";
	if (a->node_id != b->node_id)
		return "node_id";
	return tsl_addr_eq(a->addr, b->addr) ? NULL : "addr";
}

static const char *tsl_range_diff(const struct tsl_range *a,
				  const struct tsl_range *b)
{
	if (!tsl_bytes_eq(a->begin, a->begin_len, b->begin, b->begin_len))
		return "range.begin";
	if (!tsl_bytes_eq(a->end, a->end_len, b->end, b->end_len))
		return "range.end";
	return NULL;
}

static const char *tsl_service_diff(const struct tsl_service *a,
				    const struct tsl_service *b)
{
	if (a->node_id != b->node_id)
		return "node_id";
	if (!tsl_addr_eq(a->addr, b->addr))
		return "addr";
	if (a->capabilities != b->capabilities)
		return "capabilities";
	if (a->status != b->status)
		return "status";
	return a->heartbeat_age_ms != b->heartbeat_age_ms ? "heartbeat_age_ms" : NULL;
}

static bool tsl_diff_found(char *what, const char *name, uint32_t i,
			   const char *field)
{
	if (what == NULL)
		return true;
	if (i == UINT32_MAX)
		snprintf(what, RS_ERRMSG_SIZE, "%s%s%s", name, field ? "." : "",
			 field ? field : "");
	else
		snprintf(what, RS_ERRMSG_SIZE, "%s[%u].%s", name, i, field);
	return true;
}

static bool tsl_diff_array(const struct tsl_component *a,
			   const struct tsl_component *b, uint32_t na,
			   uint32_t nb, const char *name, char *what)
{
	const char *f;

	if (na != nb)
		return tsl_diff_found(what, name, UINT32_MAX, "count");
	for (uint32_t i = 0; i < na; i++)
		if ((f = tsl_component_diff(&a[i], &b[i])) != NULL)
			return tsl_diff_found(what, name, i, f);
	return false;
}

static bool tsl_diff_tail(const struct tsl *a, const struct tsl *b, char *what)
{
	const char *f;
	uint32_t i;

	if (a->resolver_count != b->resolver_count)
		return tsl_diff_found(what, "resolvers", UINT32_MAX, "count");
	for (i = 0; i < a->resolver_count; i++) {
		f = tsl_component_diff(&a->resolvers[i].c, &b->resolvers[i].c);
		if (f == NULL)
			f = tsl_range_diff(&a->resolvers[i].range, &b->resolvers[i].range);
		if (f != NULL)
			return tsl_diff_found(what, "resolvers", i, f);
	}
	if (tsl_diff_array(a->logs, b->logs, a->log_count, b->log_count, "logs", what) ||
	    tsl_diff_array(a->storage, b->storage, a->storage_count,
			   b->storage_count, "storage", what))
		return true;
	if (a->service_count != b->service_count)
		return tsl_diff_found(what, "services", UINT32_MAX, "count");
	for (i = 0; i < a->service_count; i++)
		if ((f = tsl_service_diff(&a->services[i], &b->services[i])) != NULL)
			return tsl_diff_found(what, "services", i, f);
	return false;
}

bool tsl_diff(const struct tsl *a, const struct tsl *b, char *what)
{
	const char *f;

	if (a->id != b->id)
		return tsl_diff_found(what, "id", UINT32_MAX, NULL);
	if (a->epoch != b->epoch)
		return tsl_diff_found(what, "epoch", UINT32_MAX, NULL);
	if (a->recovery_version != b->recovery_version)
		return tsl_diff_found(what, "recovery_version", UINT32_MAX, NULL);
	if ((f = tsl_node_diff(&a->director, &b->director)) != NULL)
		return tsl_diff_found(what, "director", UINT32_MAX, f);
	if ((f = tsl_component_diff(&a->sequencer, &b->sequencer)) != NULL)
		return tsl_diff_found(what, "sequencer", UINT32_MAX, f);
	if (tsl_diff_array(a->commit_proxies, b->commit_proxies,
			   a->commit_proxy_count, b->commit_proxy_count,
			   "commit_proxies", what))
		return true;
	return tsl_diff_tail(a, b, what);
}

bool tsl_equal(const struct tsl *a, const struct tsl *b)
{
	return !tsl_diff(a, b, NULL);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */
/* ------------------------------------------------------------------ */

/* Appends that stop at the first failure; rv reports it. */
struct tsl_jw {
	struct rs_buf *b;
	int rv;
};

static void jw_raw(struct tsl_jw *w, const char *s)
{
	if (w->rv == RS_OK)
		w->rv = rs_buf_append(w->b, s, strlen(s));
}

static void jw_str(struct tsl_jw *w, const uint8_t *p, size_t n)
{
	char e[7] = "\\u00";

	jw_raw(w, "\"");
	for (size_t i = 0; i < n && w->rv == RS_OK; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\') {
			jw_raw(w, c == '"' ? "\\\"" : "\\\\");
		} else if (c >= 0x20 && c < 0x7f) {
			w->rv = rs_buf_put_u8(w->b, c);
		} else {
			bytes_hex_encode(&c, 1, e + 4);
			jw_raw(w, e);
		}
	}
	jw_raw(w, "\"");
}

static void jw_num(struct tsl_jw *w, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof s, "%" PRIu64, v);
	jw_raw(w, s);
}

/* ,"name":v */
static void jw_u64(struct tsl_jw *w, const char *name, uint64_t v)
{
	jw_raw(w, ",\"");
	jw_raw(w, name);
	jw_raw(w, "\":");
	jw_num(w, v);
}

static void jw_addr(struct tsl_jw *w, const char *addr)
{
	jw_raw(w, ",\"addr\":");
	jw_str(w, (const uint8_t *)addr, strnlen(addr, TSL_ADDR_SIZE));
}

static void jw_component(struct tsl_jw *w, const struct tsl_component *c,
			 const struct tsl_range *r)
{
	jw_raw(w, "{\"id\":");
	jw_num(w, c->id);
	jw_u64(w, "node_id", c->node_id);
	jw_addr(w, c->addr);
	if (r != NULL) {
		jw_raw(w, ",\"begin\":");
		jw_str(w, r->begin, r->begin_len < TSL_RANGE_KEY_MAX ? r->begin_len : TSL_RANGE_KEY_MAX);
		jw_raw(w, ",\"end\":");
		jw_str(w, r->end, r->end_len < TSL_RANGE_KEY_MAX ? r->end_len : TSL_RANGE_KEY_MAX);
	}
	jw_raw(w, "}");
}

static void jw_array(struct tsl_jw *w, const char *name,
		     const struct tsl_component *a, uint32_t n)
{
	char s[64];

	snprintf(s, sizeof s, ",\"%s\":[", name);
	jw_raw(w, s);
	for (uint32_t i = 0; i < n && i < TSL_COMPONENTS_MAX; i++) {
		if (i > 0)
			jw_raw(w, ",");
		jw_component(w, &a[i], NULL);
	}
	jw_raw(w, "]");
}

static void jw_service(struct tsl_jw *w, const struct tsl_service *s)
{
	static const char *const caps[] = {
		"log", "storage", "commit_proxy", "resolver", "sequencer", "director",
	};
	bool first = true;

	jw_raw(w, "{\"node_id\":");
	jw_num(w, s->node_id);
	jw_addr(w, s->addr);
	jw_raw(w, ",\"capabilities\":[");
	for (unsigned bit = 0; bit < sizeof caps / sizeof caps[0]; bit++) {
		if (!(s->capabilities & (1u << bit)))
			continue;
		jw_raw(w, first ? "\"" : ",\"");
		jw_raw(w, caps[bit]);
		jw_raw(w, "\"");
		first = false;
	}
	jw_raw(w, "]");
	jw_u64(w, "capability_bits", s->capabilities);
	jw_raw(w, s->status == TSL_STATUS_UP ? ",\"status\":\"up\"" :
		  s->status == TSL_STATUS_DOWN ? ",\"status\":\"down\"" :
		  ",\"status\":\"invalid\"");
	jw_u64(w, "heartbeat_age_ms", s->heartbeat_age_ms);
	jw_raw(w, "}");
}

static void jw_body(struct tsl_jw *w, const struct tsl *t)
{
	uint32_t i;

	jw_raw(w, "{\"format_version\":");
	jw_num(w, TSL_FORMAT_VERSION);
	jw_u64(w, "id", t->id);
	jw_u64(w, "epoch", t->epoch);
	jw_u64(w, "recovery_version", t->recovery_version);
	jw_raw(w, ",\"director\":{\"node_id\":");
	jw_num(w, t->director.node_id);
	jw_addr(w, t->director.addr);
	jw_raw(w, "},\"sequencer\":");
	jw_component(w, &t->sequencer, NULL);
	jw_array(w, "commit_proxies", t->commit_proxies, t->commit_proxy_count);
	jw_raw(w, ",\"resolvers\":[");
	for (i = 0; i < t->resolver_count && i < TSL_COMPONENTS_MAX; i++) {
		if (i > 0)
			jw_raw(w, ",");
		jw_component(w, &t->resolvers[i].c, &t->resolvers[i].range);
	}
	jw_raw(w, "]");
	jw_array(w, "logs", t->logs, t->log_count);
	jw_array(w, "storage", t->storage, t->storage_count);
	jw_raw(w, ",\"services\":[");
	for (i = 0; i < t->service_count && i < TSL_SERVICES_MAX; i++) {
		if (i > 0)
			jw_raw(w, ",");
		jw_service(w, &t->services[i]);
	}
	jw_raw(w, "]}");
}

int tsl_to_json(const struct tsl *t, struct rs_buf *out)
{
	struct tsl_jw w = {.b = out, .rv = RS_OK};
	size_t start = out->len;

	assert(t != NULL);
	jw_body(&w, t);
	if (w.rv != RS_OK)
		out->len = start;
	assert(w.rv != RS_OK || out->len > start);
	return w.rv;
}

/* ------------------------------------------------------------------ */
/* Decomposed keys and entries                                          */
/* ------------------------------------------------------------------ */

#define TSL_KEY_PREFIX_LEN (sizeof TSL_KEY_PREFIX - 1)
#define TSL_KEY_ID_DIGITS 16u
/* Room for a key printed by tsl_key_text. */
#define TSL_KEY_TEXT_SIZE 128

size_t tsl_key_format(enum tsl_kind kind, uint64_t id, uint8_t *key)
{
	const char *name = tsl_kind_name(kind);
	int n;

	assert(name != NULL);
	n = snprintf((char *)key, TSL_KEY_SIZE_MAX, TSL_KEY_PREFIX "%s/%016" PRIx64,
		     name, id);
	assert(n > 0 && (size_t)n < TSL_KEY_SIZE_MAX);
	return (size_t)n;
}

static int tsl_kind_from_name(const uint8_t *p, size_t n, enum tsl_kind *kind)
{
	for (int k = TSL_KIND_DIRECTOR; k <= TSL_KIND_SERVICE; k++) {
		if (strlen(tsl_kind_names[k]) == n && memcmp(tsl_kind_names[k], p, n) == 0) {
			*kind = (enum tsl_kind)k;
			return RS_OK;
		}
	}
	return RS_ECORRUPT;
}

int tsl_key_parse(const uint8_t *key, size_t len, enum tsl_kind *kind,
		  uint64_t *id, char *errmsg)
{
	char text[TSL_KEY_TEXT_SIZE];
	const uint8_t *rest;
	size_t rest_len, name_len;
	uint64_t v = 0;

	assert(key != NULL || len == 0);
	tsl_key_text(key, len, text, sizeof text);
	if (len < TSL_KEY_PREFIX_LEN || memcmp(key, TSL_KEY_PREFIX, TSL_KEY_PREFIX_LEN) != 0) {
		rs_errmsg_printf(errmsg, "key %s: not under \\xff/system/layout/", text);
		return RS_ECORRUPT;
	}
	rest = key + TSL_KEY_PREFIX_LEN;
	rest_len = len - TSL_KEY_PREFIX_LEN;
	if (rest_len < TSL_KEY_ID_DIGITS + 2 || rest[rest_len - TSL_KEY_ID_DIGITS - 1] != '/')
		goto err_shape;
	name_len = rest_len - TSL_KEY_ID_DIGITS - 1;
	if (tsl_kind_from_name(rest, name_len, kind) != RS_OK)
		goto err_shape;
	if (!bytes_hex_parse_u64((const char *)rest + name_len + 1,
				 TSL_KEY_ID_DIGITS, &v))
		goto err_shape;
	*id = v;
	return RS_OK;
err_shape:
	rs_errmsg_printf(errmsg, "key %s: not <component>/<16 lowercase hex digits>", text);
	return RS_ECORRUPT;
}

static uint32_t tsl_kind_count(const struct tsl *t, enum tsl_kind kind)
{
	switch (kind) {
	case TSL_KIND_COMMIT_PROXY: return t->commit_proxy_count;
	case TSL_KIND_RESOLVER: return t->resolver_count;
	case TSL_KIND_LOG: return t->log_count;
	case TSL_KIND_STORAGE: return t->storage_count;
	case TSL_KIND_SERVICE: return t->service_count;
	default: return 1; /* director, sequencer */
	}
}

/* Write entry i of kind's payload; return the id its key carries. */
static uint64_t tsl_write_payload(struct rs_buf *b, const struct tsl *t,
				  enum tsl_kind kind, uint32_t i)
{
	const struct tsl_component *c;

	assert(i < tsl_kind_count(t, kind));
	switch (kind) {
	case TSL_KIND_DIRECTOR:
		wr_node(b, &t->director);
		wr_u64(b, t->recovery_version);
		return t->director.node_id;
	case TSL_KIND_SERVICE:
		wr_service(b, &t->services[i]);
		return t->services[i].node_id;
	case TSL_KIND_RESOLVER:
		wr_component(b, &t->resolvers[i].c);
		wr_range(b, &t->resolvers[i].range);
		return t->resolvers[i].c.id;
	case TSL_KIND_SEQUENCER: c = &t->sequencer; break;
	case TSL_KIND_COMMIT_PROXY: c = &t->commit_proxies[i]; break;
	case TSL_KIND_LOG: c = &t->logs[i]; break;
	default: c = &t->storage[i]; break;
	}
	wr_component(b, c);
	return c->id;
}

struct tsl_emit {
	const struct tsl *t;
	struct rs_buf val;
	int (*fn)(void *ctx, const uint8_t *key, size_t key_len,
		  const uint8_t *val, size_t val_len);
	void *ctx;
};

static int tsl_emit_one(struct tsl_emit *e, enum tsl_kind kind, uint32_t i)
{
	uint8_t key[TSL_KEY_SIZE_MAX];
	size_t start, key_len;
	uint64_t id;

	e->val.len = 0;
	if (tsl_frame_begin(&e->val, TSL_ENTRY_BODY_SIZE_MAX, &start) != RS_OK)
		return RS_ENOMEM;
	wr_u64(&e->val, e->t->id);
	wr_u64(&e->val, e->t->epoch);
	wr_u8(&e->val, (uint8_t)kind);
	id = tsl_write_payload(&e->val, e->t, kind, i);
	tsl_frame_end(&e->val, start, TSL_ENTRY_MAGIC, TSL_ENTRY_FORMAT_VERSION,
		      TSL_ENTRY_BODY_SIZE_MAX);
	key_len = tsl_key_format(kind, id, key);
	assert(e->val.len <= TSL_ENTRY_SIZE_MAX);
	return e->fn(e->ctx, key, key_len, e->val.data, e->val.len);
}

int tsl_decompose(const struct tsl *t,
		  int (*fn)(void *ctx, const uint8_t *key, size_t key_len,
			    const uint8_t *val, size_t val_len),
		  void *ctx, char *errmsg)
{
	struct tsl_emit e = {.t = t, .fn = fn, .ctx = ctx};
	int rv;

	assert(fn != NULL);
	rv = tsl_validate(t, errmsg);
	if (rv != RS_OK)
		return rv;
	rs_buf_init(&e.val);
	for (int k = TSL_KIND_DIRECTOR; rv == RS_OK && k <= TSL_KIND_SERVICE; k++)
		for (uint32_t i = 0; rv == RS_OK && i < tsl_kind_count(t, (enum tsl_kind)k); i++)
			rv = tsl_emit_one(&e, (enum tsl_kind)k, i);
	if (rv == RS_ENOMEM)
		rs_errmsg_printf(errmsg, "decompose layout: out of memory");
	rs_buf_free(&e.val);
	return rv;
}

static int rd_payload(struct tsl_rd *r, struct tsl_entry *e, const char *where)
{
	int rv;

	switch (e->kind) {
	case TSL_KIND_DIRECTOR:
		rv = rd_node(r, where, &e->director);
		return rv == RS_OK ? rd_u64(r, where, "recovery_version",
					    &e->recovery_version) : rv;
	case TSL_KIND_SERVICE:
		return rd_service(r, where, &e->service);
	case TSL_KIND_RESOLVER:
		rv = rd_component(r, where, &e->component);
		return rv == RS_OK ? rd_range(r, where, &e->range) : rv;
	default:
		return rd_component(r, where, &e->component);
	}
}

static uint64_t tsl_entry_id(const struct tsl_entry *e)
{
	if (e->kind == TSL_KIND_DIRECTOR)
		return e->director.node_id;
	if (e->kind == TSL_KIND_SERVICE)
		return e->service.node_id;
	return e->component.id;
}

/* The entry's own fields, as tsl_validate checks them in a layout. */
static int tsl_check_entry(const struct tsl_entry *e, const char *where,
			   char *errmsg)
{
	int rv;

	if (e->epoch == 0) {
		rs_errmsg_printf(errmsg, "epoch: 0 is not an epoch");
		return RS_EINVAL;
	}
	switch (e->kind) {
	case TSL_KIND_DIRECTOR:
		rv = tsl_check_node_id(e->director.node_id, where, errmsg);
		return rv == RS_OK ? tsl_check_addr(e->director.addr, where, errmsg) : rv;
	case TSL_KIND_SERVICE:
		return tsl_check_service(&e->service, where, errmsg);
	case TSL_KIND_RESOLVER:
		rv = tsl_check_component(&e->component, where, errmsg);
		return rv == RS_OK ? tsl_check_range(&e->range, where, errmsg) : rv;
	default:
		return tsl_check_component(&e->component, where, errmsg);
	}
}

/* Body of a verified entry frame, against the key's kind and id. */
static int tsl_read_entry(struct tsl_rd *r, enum tsl_kind kind, uint64_t id,
			  struct tsl_entry *e)
{
	const char *name = tsl_kind_name(kind);
	uint8_t k = 0;
	int rv = rd_u64(r, "", "layout_id", &e->layout_id);

	if (rv == RS_OK)
		rv = rd_u64(r, "", "epoch", &e->epoch);
	if (rv == RS_OK)
		rv = rd_u8(r, "", "kind", &k);
	if (rv != RS_OK)
		return rv;
	if (k != (uint8_t)kind) {
		rs_errmsg_printf(r->errmsg, "kind: %u (%s), but the key names %s", k,
				 tsl_kind_name((enum tsl_kind)k) ? tsl_kind_name((enum tsl_kind)k) : "unknown",
				 name);
		return RS_ECORRUPT;
	}
	e->kind = kind;
	rv = rd_payload(r, e, name);
	if (rv == RS_OK && r->pos != r->len) {
		rs_errmsg_printf(r->errmsg, "%zu bytes after the %s entry", r->len - r->pos, name);
		return RS_ECORRUPT;
	}
	if (rv == RS_OK && tsl_entry_id(e) != id) {
		rs_errmsg_printf(r->errmsg, "%s.%s: %016" PRIx64 ", but the key names %016" PRIx64,
				 name, kind == TSL_KIND_DIRECTOR || kind == TSL_KIND_SERVICE ? "node_id" : "id",
				 tsl_entry_id(e), id);
		return RS_ECORRUPT;
	}
	if (rv == RS_OK && tsl_check_entry(e, name, r->errmsg) != RS_OK)
		rv = RS_ECORRUPT;
	return rv;
}

int tsl_entry_decode(const uint8_t *key, size_t key_len, const uint8_t *val,
		     size_t val_len, struct tsl_entry *out, char *errmsg)
{
	struct tsl_rd r = {.errmsg = errmsg};
	enum tsl_kind kind;
	uint64_t id;
	int rv;

	assert(key != NULL && (val != NULL || val_len == 0));
	memset(out, 0, sizeof *out);
	rv = tsl_key_parse(key, key_len, &kind, &id, errmsg);
	if (rv == RS_OK)
		rv = tsl_frame_open(val, val_len, TSL_ENTRY_MAGIC, TSL_ENTRY_FORMAT_VERSION,
				    TSL_ENTRY_BODY_SIZE_MAX, "layout entry", &r.p,
				    &r.len, errmsg);
	if (rv == RS_OK)
		rv = tsl_read_entry(&r, kind, id, out);
	if (rv != RS_OK)
		memset(out, 0, sizeof *out);
	assert(rv != RS_OK || out->kind == kind);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Cross-check of the decomposed form                                   */
/* ------------------------------------------------------------------ */

/* The expected entries, gathered into one buffer (offsets, since the
 * buffer moves as it grows). */
struct tsl_collect {
	struct rs_buf bytes;
	size_t n;
	size_t off[TSL_ENTRIES_MAX][4]; /* key off, key len, val off, val len */
};

static int tsl_collect_fn(void *ctx, const uint8_t *key, size_t key_len,
			  const uint8_t *val, size_t val_len)
{
	struct tsl_collect *c = ctx;
	size_t *o = c->off[c->n];

	assert(c->n < TSL_ENTRIES_MAX);
	o[0] = c->bytes.len;
	o[1] = key_len;
	if (rs_buf_append(&c->bytes, key, key_len) != RS_OK)
		return RS_ENOMEM;
	o[2] = c->bytes.len;
	o[3] = val_len;
	if (rs_buf_append(&c->bytes, val, val_len) != RS_OK)
		return RS_ENOMEM;
	c->n++;
	return RS_OK;
}

static int tsl_kv_cmp(const void *a, const void *b)
{
	const struct tsl_kv *x = a, *y = b;

	return bytes_compare(x->key, x->key_len, y->key, y->key_len);
}

/* What differs between two decoded entries of one key. */
static void tsl_entry_diff(const struct tsl_entry *want,
			   const struct tsl_entry *got, char *out, size_t cap)
{
	const char *f = NULL;

	if (want->layout_id != got->layout_id) {
		snprintf(out, cap, "layout_id is %" PRIu64 ", expected %" PRIu64,
			 got->layout_id, want->layout_id);
		return;
	}
	if (want->epoch != got->epoch) {
		snprintf(out, cap, "epoch is %" PRIu64 ", expected %" PRIu64,
			 got->epoch, want->epoch);
		return;
	}
	assert(want->kind == got->kind);
	if (want->kind == TSL_KIND_DIRECTOR) {
		f = tsl_node_diff(&want->director, &got->director);
		if (f == NULL && want->recovery_version != got->recovery_version)
			f = "recovery_version";
	} else if (want->kind == TSL_KIND_SERVICE) {
		f = tsl_service_diff(&want->service, &got->service);
	} else {
		f = tsl_component_diff(&want->component, &got->component);
		if (f == NULL && want->kind == TSL_KIND_RESOLVER)
			f = tsl_range_diff(&want->range, &got->range);
	}
	snprintf(out, cap, "value differs in %s", f ? f : "its encoding");
}

static int tsl_value_mismatch(const struct tsl_kv *want,
			      const struct tsl_kv *got, char *errmsg)
{
	struct tsl_entry we, ge;
	char text[TSL_KEY_TEXT_SIZE];
	char detail[RS_ERRMSG_SIZE];
	bool ok;

	tsl_key_text(got->key, got->key_len, text, sizeof text);
	if (tsl_entry_decode(got->key, got->key_len, got->val, got->val_len, &ge,
			     errmsg) != RS_OK) {
		rs_errmsg_wrapf(errmsg, "key %s", text);
		return RS_ECORRUPT;
	}
	ok = tsl_entry_decode(want->key, want->key_len, want->val, want->val_len,
			      &we, detail) == RS_OK;
	assert(ok); /* tsl_decompose wrote it */
	(void)ok;
	tsl_entry_diff(&we, &ge, detail, sizeof detail);
	rs_errmsg_printf(errmsg, "key %s: %s", text, detail);
	return RS_ECORRUPT;
}

static int tsl_kv_report(const char *what, const struct tsl_kv *kv,
			 char *errmsg)
{
	char text[TSL_KEY_TEXT_SIZE];

	tsl_key_text(kv->key, kv->key_len, text, sizeof text);
	rs_errmsg_printf(errmsg, "%s key %s", what, text);
	return RS_ECORRUPT;
}

/* Merge two key-sorted lists; report the first difference. */
static int tsl_match_sorted(const struct tsl_kv *want, size_t nw,
			    const struct tsl_kv *got, size_t ng, char *errmsg)
{
	size_t i = 0, j = 0;
	int c;

	while (i < nw || j < ng) {
		if (j > 0 && j < ng && tsl_kv_cmp(&got[j - 1], &got[j]) == 0)
			return tsl_kv_report("duplicate", &got[j], errmsg);
		c = i == nw ? 1 : j == ng ? -1 : tsl_kv_cmp(&want[i], &got[j]);
		if (c < 0)
			return tsl_kv_report("missing", &want[i], errmsg);
		if (c > 0)
			return tsl_kv_report("extra", &got[j], errmsg);
		if (!tsl_bytes_eq(want[i].val, want[i].val_len, got[j].val, got[j].val_len))
			return tsl_value_mismatch(&want[i], &got[j], errmsg);
		i++;
		j++;
	}
	assert(i == nw && j == ng);
	return RS_OK;
}

int tsl_decomposed_matches(const struct tsl *t, const struct tsl_kv *kvs,
			   size_t n, char *errmsg)
{
	struct tsl_collect *c;
	struct tsl_kv want[TSL_ENTRIES_MAX];
	struct tsl_kv *got = NULL;
	int rv = RS_ENOMEM;

	assert(kvs != NULL || n == 0);
	c = calloc(1, sizeof *c);
	if (c == NULL || (n > 0 && (got = malloc(n * sizeof *got)) == NULL))
		goto err_nomem;
	rv = tsl_decompose(t, tsl_collect_fn, c, errmsg);
	if (rv != RS_OK)
		goto out;
	for (size_t i = 0; i < c->n; i++)
		want[i] = (struct tsl_kv){c->bytes.data + c->off[i][0], c->off[i][1],
					  c->bytes.data + c->off[i][2], c->off[i][3]};
	qsort(want, c->n, sizeof want[0], tsl_kv_cmp);
	if (n > 0) {
		memcpy(got, kvs, n * sizeof *got);
		qsort(got, n, sizeof *got, tsl_kv_cmp);
	}
	rv = tsl_match_sorted(want, c->n, got, n, errmsg);
	goto out;
err_nomem:
	rs_errmsg_printf(errmsg, "cross-check layout: out of memory");
out:
	free(got);
	if (c != NULL)
		rs_buf_free(&c->bytes);
	free(c);
	return rv;
}
