/*
 * Tests for the transaction system layout codec (director/tsl.h).
 *
 * Besides round trips, the tests carry their own encoder, written from
 * docs/layout-format.md rather than from tsl.c ("tb_" below).  It checks
 * that the document and the code agree byte for byte, and it writes the
 * malformed layouts tsl_encode refuses to write, sealed with a correct crc
 * so that the decoder's field checks (not just the crc) are exercised.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strndup, asprintf */
#endif
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "director/tsl.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "tests/unit/testutil.h"

static const uint8_t doc_magic[8] = {0x52, 0x53, 0x54, 0x53, 0x4c, 0x0d, 0x0a, 0x00};
static const uint8_t doc_entry_magic[8] = {0x52, 0x53, 0x54, 0x53, 0x43, 0x0d, 0x0a, 0x00};

/* ------------------------------------------------------------------ */
/* Building layouts                                                     */
/* ------------------------------------------------------------------ */

static void addr_set(char *dst, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void addr_set(char *dst, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, TSL_ADDR_SIZE, fmt, ap);
	va_end(ap);
}

static void range_set(struct tsl_range *r, const void *b, uint32_t blen,
		      const void *e, uint32_t elen)
{
	r->begin_len = blen;
	r->end_len = elen;
	if (blen)
		memcpy(r->begin, b, blen);
	if (elen)
		memcpy(r->end, e, elen);
}

/* Split keys for n resolvers: n-1 strictly increasing keys of up to
 * key_max bytes (first byte orders them, the rest is any bytes). */
static void build_resolvers(struct tsl *t, unsigned n, unsigned nodes,
			    uint64_t *rng, uint32_t key_max)
{
	uint8_t keys[TSL_COMPONENTS_MAX][TSL_RANGE_KEY_MAX];
	uint32_t lens[TSL_COMPONENTS_MAX];

	for (unsigned i = 0; i + 1 < n; i++) {
		lens[i] = key_max ? key_max : 1 + (uint32_t)(testutil_rand(rng) % 24);
		keys[i][0] = (uint8_t)(0x10 + i * 15);
		for (uint32_t j = 1; j < lens[i]; j++)
			keys[i][j] = (uint8_t)testutil_rand(rng);
	}
	t->resolver_count = n;
	for (unsigned i = 0; i < n; i++) {
		struct tsl_resolver *r = &t->resolvers[i];
		r->c.id = 300 + i;
		r->c.node_id = 1 + i % nodes;
		addr_set(r->c.addr, "10.0.0.%u:%u", 1 + i % nodes, 7300 + i);
		range_set(&r->range, i ? keys[i - 1] : NULL, i ? lens[i - 1] : 0,
			  i + 1 < n ? keys[i] : NULL, i + 1 < n ? lens[i] : 0);
	}
}

static void build_services(struct tsl *t, unsigned nodes, uint64_t *rng)
{
	t->service_count = nodes;
	for (unsigned i = 0; i < nodes; i++) {
		struct tsl_service *s = &t->services[i];
		s->node_id = i + 1;
		addr_set(s->addr, "10.0.0.%u:7000", i + 1);
		s->capabilities = i < 3 ? TSL_CAP_ALL
				 : (uint32_t)testutil_rand(rng) & TSL_CAP_ALL;
		s->status = i % 4 == 3 ? TSL_STATUS_DOWN : TSL_STATUS_UP;
		s->heartbeat_age_ms = testutil_rand(rng) % 100000;
	}
}

/* A valid layout over `nodes` nodes (>= 1).  rng NULL: fixed content. */
static void build_layout(struct tsl *t, unsigned nodes, unsigned proxies,
			 unsigned resolvers, unsigned logs, unsigned storage,
			 uint64_t *rng)
{
	uint64_t fixed = 42;

	if (rng == NULL)
		rng = &fixed;
	tsl_init(t);
	t->id = 0x1122334455667788ull;
	t->epoch = 7;
	t->recovery_version = 123456789;
	build_services(t, nodes, rng);
	t->director.node_id = 1;
	addr_set(t->director.addr, "10.0.0.1:7100");
	t->sequencer = (struct tsl_component){.id = 1, .node_id = 1};
	addr_set(t->sequencer.addr, "10.0.0.1:7200");
	t->commit_proxy_count = proxies;
	for (unsigned i = 0; i < proxies; i++) {
		t->commit_proxies[i] = (struct tsl_component){.id = 100 + i,
							      .node_id = 1 + i % nodes};
		addr_set(t->commit_proxies[i].addr, "node-%u.example:%u", 1 + i % nodes, 7400 + i);
	}
	build_resolvers(t, resolvers, nodes, rng, 0);
	t->log_count = logs;
	for (unsigned i = 0; i < logs; i++) {
		t->logs[i] = (struct tsl_component){.id = i + 1, .node_id = i + 1};
		addr_set(t->logs[i].addr, "[fd00::%x]:%u", i + 1, 7500 + i);
	}
	t->storage_count = storage;
	for (unsigned i = 0; i < storage; i++) {
		t->storage[i] = (struct tsl_component){.id = 2000 + i, .node_id = nodes - i};
		addr_set(t->storage[i].addr, "10.0.0.%u:7600", nodes - i);
	}
}

static void build_sample(struct tsl *t)
{
	build_layout(t, 5, 3, 3, 3, 5, NULL);
}

/* Every array full, every addr 63 bytes, every split key 256 bytes. */
static void build_max(struct tsl *t)
{
	uint64_t rng = 7;
	char host[TSL_ADDR_SIZE];

	build_layout(t, TSL_SERVICES_MAX, TSL_COMPONENTS_MAX, 0,
		     TSL_COMPONENTS_MAX, TSL_COMPONENTS_MAX, &rng);
	build_resolvers(t, TSL_COMPONENTS_MAX, TSL_SERVICES_MAX, &rng,
			TSL_RANGE_KEY_MAX);
	memset(host, 'h', sizeof host);
	host[TSL_ADDR_LEN_MAX - 6] = '\0';
	for (unsigned i = 0; i < TSL_COMPONENTS_MAX; i++) {
		addr_set(t->commit_proxies[i].addr, "%s:%05u", host, 10000 + i);
		addr_set(t->resolvers[i].c.addr, "%s:%05u", host, 20000 + i);
		addr_set(t->logs[i].addr, "%s:%05u", host, 30000 + i);
		addr_set(t->storage[i].addr, "%s:%05u", host, 40000 + i);
	}
	for (unsigned i = 0; i < TSL_SERVICES_MAX; i++)
		addr_set(t->services[i].addr, "%s:%05u", host, 50000 + i);
	addr_set(t->director.addr, "%s:%05u", host, 60000);
	addr_set(t->sequencer.addr, "%s:%05u", host, 60001);
}

/* ------------------------------------------------------------------ */
/* The document's encoder                                               */
/* ------------------------------------------------------------------ */

static void tb_u8(struct rs_buf *b, uint8_t v)
{
	ck_assert_int_eq(rs_buf_put_u8(b, v), RS_OK);
}

static void tb_u16(struct rs_buf *b, uint32_t v)
{
	tb_u8(b, (uint8_t)v);
	tb_u8(b, (uint8_t)(v >> 8));
}

static void tb_u32(struct rs_buf *b, uint32_t v)
{
	ck_assert_int_eq(rs_buf_put_u32(b, v), RS_OK);
}

static void tb_u64(struct rs_buf *b, uint64_t v)
{
	ck_assert_int_eq(rs_buf_put_u64(b, v), RS_OK);
}

/* u16 length, then the bytes (at most `have` of them are real). */
static void tb_str(struct rs_buf *b, const void *p, uint32_t len, uint32_t have)
{
	tb_u16(b, len);
	ck_assert_int_eq(rs_buf_append(b, p, len < have ? len : have), RS_OK);
}

static void tb_addr(struct rs_buf *b, const char *addr)
{
	uint32_t n = (uint32_t)strnlen(addr, TSL_ADDR_SIZE);
	tb_str(b, addr, n, n);
}

static void tb_component(struct rs_buf *b, const struct tsl_component *c)
{
	tb_u64(b, c->id);
	tb_u64(b, c->node_id);
	tb_addr(b, c->addr);
}

static void tb_range(struct rs_buf *b, const struct tsl_range *r)
{
	tb_str(b, r->begin, r->begin_len, TSL_RANGE_KEY_MAX);
	tb_str(b, r->end, r->end_len, TSL_RANGE_KEY_MAX);
}

static void tb_service(struct rs_buf *b, const struct tsl_service *s)
{
	tb_u64(b, s->node_id);
	tb_addr(b, s->addr);
	tb_u32(b, s->capabilities);
	tb_u8(b, s->status);
	tb_u64(b, s->heartbeat_age_ms);
}

static uint32_t tb_min(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static void tb_array(struct rs_buf *b, const struct tsl_component *a, uint32_t n)
{
	tb_u32(b, n);
	for (uint32_t i = 0; i < tb_min(n, TSL_COMPONENTS_MAX); i++)
		tb_component(b, &a[i]);
}

/* The body of any struct tsl, valid or not (counts as given; at most the
 * array's entries follow). */
static void tb_body(struct rs_buf *b, const struct tsl *t)
{
	tb_u64(b, t->id);
	tb_u64(b, t->epoch);
	tb_u64(b, t->recovery_version);
	tb_u64(b, t->director.node_id);
	tb_addr(b, t->director.addr);
	tb_component(b, &t->sequencer);
	tb_array(b, t->commit_proxies, t->commit_proxy_count);
	tb_u32(b, t->resolver_count);
	for (uint32_t i = 0; i < tb_min(t->resolver_count, TSL_COMPONENTS_MAX); i++) {
		tb_component(b, &t->resolvers[i].c);
		tb_range(b, &t->resolvers[i].range);
	}
	tb_array(b, t->logs, t->log_count);
	tb_array(b, t->storage, t->storage_count);
	tb_u32(b, t->service_count);
	for (uint32_t i = 0; i < tb_min(t->service_count, TSL_SERVICES_MAX); i++)
		tb_service(b, &t->services[i]);
}

/* magic | version | length | crc32c(body) | body */
static void tb_seal(struct rs_buf *out, const uint8_t *magic, uint32_t version,
		    const uint8_t *body, size_t len)
{
	out->len = 0;
	ck_assert_int_eq(rs_buf_append(out, magic, 8), RS_OK);
	tb_u32(out, version);
	tb_u32(out, (uint32_t)len);
	tb_u32(out, crc32c(body, len));
	ck_assert_int_eq(rs_buf_append(out, body, len), RS_OK);
}

/* Decode the document encoding of t; returns the code, message in errmsg. */
static int tb_decode(const struct tsl *t, char *errmsg)
{
	struct rs_buf body, enc;
	struct tsl out;
	int rv;

	rs_buf_init(&body);
	rs_buf_init(&enc);
	tb_body(&body, t);
	tb_seal(&enc, doc_magic, 1, body.data, body.len);
	rv = tsl_decode(enc.data, enc.len, &out, errmsg);
	rs_buf_free(&body);
	rs_buf_free(&enc);
	return rv;
}

static void encode_ok(const struct tsl *t, struct rs_buf *out)
{
	char errmsg[RS_ERRMSG_SIZE] = "";

	rs_buf_init(out);
	ck_assert_msg(tsl_encode(t, out, errmsg) == RS_OK, "encode: %s", errmsg);
}

#define ck_assert_msg_has(errmsg, want)                                       \
	ck_assert_msg(strstr((errmsg), (want)) != NULL,                       \
		      "message \"%s\" lacks \"%s\"", (errmsg), (want))

/* ------------------------------------------------------------------ */
/* Round trips and the document                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_roundtrip_sample)
{
	struct tsl in, out;
	struct rs_buf buf, again;
	char errmsg[RS_ERRMSG_SIZE] = "";

	build_sample(&in);
	encode_ok(&in, &buf);
	ck_assert_msg(tsl_decode(buf.data, buf.len, &out, errmsg) == RS_OK, "%s", errmsg);
	ck_assert(tsl_equal(&in, &out));
	ck_assert(!tsl_diff(&in, &out, errmsg));
	/* Canonical: the decoded layout encodes to the same bytes. */
	encode_ok(&out, &again);
	ck_assert_uint_eq(again.len, buf.len);
	ck_assert_mem_eq(again.data, buf.data, buf.len);
	rs_buf_free(&buf);
	rs_buf_free(&again);
}
END_TEST

/* Random layouts of every shape, seeded. */
START_TEST(test_roundtrip_random)
{
	uint64_t rng = testutil_seed() | 1;
	struct tsl in, out;
	struct rs_buf buf;
	char errmsg[RS_ERRMSG_SIZE] = "";

	rs_buf_init(&buf);
	for (int iter = 0; iter < 300; iter++) {
		unsigned nodes = 1 + (unsigned)(testutil_rand(&rng) % TSL_SERVICES_MAX);
		unsigned cap = nodes < TSL_COMPONENTS_MAX ? nodes : TSL_COMPONENTS_MAX;
		build_layout(&in, nodes,
			     (unsigned)(testutil_rand(&rng) % (TSL_COMPONENTS_MAX + 1)),
			     (unsigned)(testutil_rand(&rng) % (TSL_COMPONENTS_MAX + 1)),
			     (unsigned)(testutil_rand(&rng) % (cap + 1)),
			     (unsigned)(testutil_rand(&rng) % (cap + 1)), &rng);
		in.id = testutil_rand(&rng);
		in.epoch = 1 + testutil_rand(&rng) % UINT64_MAX;
		in.recovery_version = testutil_rand(&rng);
		buf.len = 0;
		ck_assert_msg(tsl_encode(&in, &buf, errmsg) == RS_OK, "iter %d: %s", iter, errmsg);
		ck_assert_uint_le(buf.len, TSL_ENCODED_SIZE_MAX);
		ck_assert_msg(tsl_decode(buf.data, buf.len, &out, errmsg) == RS_OK,
			      "iter %d: %s", iter, errmsg);
		ck_assert_msg(!tsl_diff(&in, &out, errmsg), "iter %d: %s differs", iter, errmsg);
	}
	rs_buf_free(&buf);
}
END_TEST

START_TEST(test_roundtrip_limits)
{
	struct tsl in, out, empty;
	struct rs_buf buf;
	char errmsg[RS_ERRMSG_SIZE] = "";

	build_max(&in);
	encode_ok(&in, &buf);
	/* Only the first begin and the last end may not be full (empty). */
	ck_assert_uint_eq(buf.len, TSL_ENCODED_SIZE_MAX - 2 * TSL_RANGE_KEY_MAX);
	ck_assert_msg(tsl_decode(buf.data, buf.len, &out, errmsg) == RS_OK, "%s", errmsg);
	ck_assert(tsl_equal(&in, &out));

	/* The smallest layout: one node, nothing but director and sequencer. */
	build_layout(&empty, 1, 0, 0, 0, 0, NULL);
	buf.len = 0;
	ck_assert_int_eq(tsl_encode(&empty, &buf, errmsg), RS_OK);
	ck_assert_int_eq(tsl_decode(buf.data, buf.len, &out, errmsg), RS_OK);
	ck_assert(tsl_equal(&empty, &out));
	rs_buf_free(&buf);
}
END_TEST

/* tsl_encode writes exactly what docs/layout-format.md describes. */
START_TEST(test_doc_format)
{
	struct tsl t;
	struct rs_buf enc, body, doc;

	build_sample(&t);
	encode_ok(&t, &enc);
	rs_buf_init(&body);
	rs_buf_init(&doc);
	tb_body(&body, &t);
	tb_seal(&doc, doc_magic, 1, body.data, body.len);
	ck_assert_uint_eq(enc.len, doc.len);
	ck_assert_mem_eq(enc.data, doc.data, doc.len);
	ck_assert_mem_eq(enc.data, TSL_MAGIC, TSL_MAGIC_SIZE);
	ck_assert_uint_eq(TSL_FORMAT_VERSION, 1);
	/* Appending keeps what was in the buffer. */
	enc.len = 0;
	ck_assert_int_eq(rs_buf_append(&enc, "xyz", 3), RS_OK);
	ck_assert_int_eq(tsl_encode(&t, &enc, NULL), RS_OK);
	ck_assert_mem_eq(enc.data, "xyz", 3);
	ck_assert_mem_eq(enc.data + 3, doc.data, doc.len);
	rs_buf_free(&enc);
	rs_buf_free(&body);
	rs_buf_free(&doc);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Damage                                                               */
/* ------------------------------------------------------------------ */

START_TEST(test_truncate_every_offset)
{
	struct tsl t, out;
	struct rs_buf buf;
	char errmsg[RS_ERRMSG_SIZE];

	build_sample(&t);
	encode_ok(&t, &buf);
	for (size_t cut = 0; cut < buf.len; cut++) {
		/* A fresh copy of exactly `cut` bytes so ASan sees any overread. */
		uint8_t *p = malloc(cut ? cut : 1);
		ck_assert_ptr_nonnull(p);
		memcpy(p, buf.data, cut);
		errmsg[0] = '\0';
		ck_assert_int_eq(tsl_decode(p, cut, &out, errmsg), RS_ECORRUPT);
		ck_assert_msg_has(errmsg, "truncated in ");
		ck_assert_uint_eq(out.epoch, 0); /* reset on error */
		free(p);
	}
	rs_buf_free(&buf);
}
END_TEST

/* A body cut short but sealed with a matching length and crc: the decoder
 * must name the field it was reading. */
START_TEST(test_truncate_resealed)
{
	struct tsl t, out;
	struct rs_buf body, enc;
	char errmsg[RS_ERRMSG_SIZE];
	size_t at;

	build_sample(&t);
	rs_buf_init(&body);
	rs_buf_init(&enc);
	tb_body(&body, &t);
	for (size_t cut = 0; cut < body.len; cut++) {
		tb_seal(&enc, doc_magic, 1, body.data, cut);
		errmsg[0] = '\0';
		ck_assert_int_eq(tsl_decode(enc.data, enc.len, &out, errmsg), RS_ECORRUPT);
		ck_assert_msg(strncmp(errmsg, "truncated in ", 13) == 0,
			      "cut %zu: %s", cut, errmsg);
	}
	/* One byte into commit_proxies[2]'s address. */
	at = 24 + 8 + 2 + strlen(t.director.addr) + 18 + strlen(t.sequencer.addr) + 4;
	at += 18 + strlen(t.commit_proxies[0].addr) + 18 + strlen(t.commit_proxies[1].addr);
	at += 18 + 1;
	tb_seal(&enc, doc_magic, 1, body.data, at);
	ck_assert_int_eq(tsl_decode(enc.data, enc.len, &out, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "truncated in commit_proxies[2].addr");
	tb_seal(&enc, doc_magic, 1, body.data, 10);
	ck_assert_int_eq(tsl_decode(enc.data, enc.len, &out, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "truncated in epoch");
	rs_buf_free(&body);
	rs_buf_free(&enc);
}
END_TEST

START_TEST(test_bitflip_every_bit)
{
	struct tsl t, out;
	struct rs_buf buf;
	char errmsg[RS_ERRMSG_SIZE];

	build_sample(&t);
	encode_ok(&t, &buf);
	for (size_t i = 0; i < buf.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int want = i >= 8 && i < 12 ? RS_EFORMAT : RS_ECORRUPT;
			buf.data[i] ^= (uint8_t)(1u << bit);
			errmsg[0] = '\0';
			ck_assert_msg(tsl_decode(buf.data, buf.len, &out, errmsg) == want,
				      "byte %zu bit %d: %s", i, bit, errmsg);
			ck_assert(errmsg[0] != '\0');
			buf.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_int_eq(tsl_decode(buf.data, buf.len, &out, errmsg), RS_OK);
	rs_buf_free(&buf);
}
END_TEST

/* Random damage to the body, resealed so the crc passes: the decoder may
 * only accept what it would itself write. */
START_TEST(test_resealed_garbage)
{
	uint64_t rng = testutil_seed() | 1;
	struct tsl t, out;
	struct rs_buf body, enc, again;
	char errmsg[RS_ERRMSG_SIZE];

	build_sample(&t);
	rs_buf_init(&body);
	rs_buf_init(&enc);
	rs_buf_init(&again);
	tb_body(&body, &t);
	for (int iter = 0; iter < 5000; iter++) {
		uint8_t *p = malloc(body.len);
		int flips = 1 + (int)(testutil_rand(&rng) % 4), rv;
		ck_assert_ptr_nonnull(p);
		memcpy(p, body.data, body.len);
		for (int f = 0; f < flips; f++)
			p[testutil_rand(&rng) % body.len] = (uint8_t)testutil_rand(&rng);
		tb_seal(&enc, doc_magic, 1, p, body.len - testutil_rand(&rng) % 3);
		rv = tsl_decode(enc.data, enc.len, &out, errmsg);
		ck_assert(rv == RS_OK || rv == RS_ECORRUPT);
		if (rv == RS_OK) {
			again.len = 0;
			ck_assert_int_eq(tsl_encode(&out, &again, errmsg), RS_OK);
			ck_assert_uint_eq(again.len, enc.len);
			ck_assert_mem_eq(again.data, enc.data, enc.len);
		}
		free(p);
	}
	rs_buf_free(&body);
	rs_buf_free(&enc);
	rs_buf_free(&again);
}
END_TEST

START_TEST(test_header_errors)
{
	static const uint32_t versions[] = {0, 2, 3, 0xffffffffu};
	struct tsl t, out;
	struct rs_buf buf;
	char errmsg[RS_ERRMSG_SIZE], want[64];

	build_sample(&t);
	encode_ok(&t, &buf);
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		rs_put_u32(buf.data + 8, versions[i]);
		ck_assert_int_eq(tsl_decode(buf.data, buf.len, &out, errmsg), RS_EFORMAT);
		snprintf(want, sizeof want, "version %u ", versions[i]);
		ck_assert_msg_has(errmsg, want);
	}
	rs_put_u32(buf.data + 8, TSL_FORMAT_VERSION);
	buf.data[0] = 'X';
	ck_assert_int_eq(tsl_decode(buf.data, buf.len, &out, errmsg), RS_ECORRUPT);
	ck_assert_msg_has(errmsg, "bad magic");
	buf.data[0] = 'R';
	/* A decomposed entry is not a layout. */
	memcpy(buf.data, TSL_ENTRY_MAGIC, TSL_MAGIC_SIZE);
	ck_assert_int_eq(tsl_decode(buf.data, buf.len, &out, errmsg), RS_ECORRUPT);
	memcpy(buf.data, TSL_MAGIC, TSL_MAGIC_SIZE);
	rs_put_u32(buf.data + 12, TSL_BODY_SIZE_MAX + 1);
	ck_assert_int_eq(tsl_decode(buf.data, buf.len, &out, errmsg), RS_ECORRUPT);
	ck_assert_msg_has(errmsg, "exceeds the maximum");
	rs_put_u32(buf.data + 12, (uint32_t)(buf.len - TSL_HEADER_SIZE));
	ck_assert_int_eq(rs_buf_put_u8(&buf, 0), RS_OK);
	ck_assert_int_eq(tsl_decode(buf.data, buf.len, &out, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "1 bytes after the body");
	ck_assert_int_eq(tsl_decode(buf.data, buf.len - 1, &out, errmsg), RS_OK);
	buf.data[TSL_HEADER_SIZE] ^= 1;
	ck_assert_int_eq(tsl_decode(buf.data, buf.len - 1, &out, errmsg), RS_ECORRUPT);
	ck_assert_msg_has(errmsg, "crc mismatch");
	ck_assert_int_eq(tsl_decode(NULL, 0, &out, errmsg), RS_ECORRUPT);
	ck_assert_int_eq(tsl_decode(buf.data, buf.len - 1, &out, NULL), RS_ECORRUPT);
	rs_buf_free(&buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Field validation, on both sides                                      */
/* ------------------------------------------------------------------ */

struct bad_case {
	const char *want; /* substring of the message */
	void (*mutate)(struct tsl *t);
};

static void m_epoch(struct tsl *t) { t->epoch = 0; }
static void m_director_node(struct tsl *t) { t->director.node_id = 0; }
static void m_addr_empty(struct tsl *t) { t->commit_proxies[1].addr[0] = '\0'; }
static void m_addr_noport(struct tsl *t) { addr_set(t->commit_proxies[1].addr, "host"); }
static void m_addr_port0(struct tsl *t) { addr_set(t->commit_proxies[1].addr, "host:0"); }
static void m_addr_port_big(struct tsl *t) { addr_set(t->commit_proxies[1].addr, "host:65536"); }
static void m_addr_space(struct tsl *t) { addr_set(t->commit_proxies[1].addr, "ho st:1"); }
static void m_addr_quote(struct tsl *t) { addr_set(t->services[0].addr, "a\"b:1"); }
static void m_addr_long(struct tsl *t) { memset(t->commit_proxies[1].addr, '7', TSL_ADDR_SIZE); }
static void m_count(struct tsl *t) { t->commit_proxy_count = TSL_COMPONENTS_MAX + 1; }
static void m_count_svc(struct tsl *t) { t->service_count = TSL_SERVICES_MAX + 1; }
static void m_dup_id(struct tsl *t) { t->logs[1].id = t->logs[0].id; }
static void m_log_node(struct tsl *t) { t->logs[1].node_id = t->logs[0].node_id; }
static void m_store_node(struct tsl *t) { t->storage[2].node_id = t->storage[0].node_id; }

static void m_end_before(struct tsl *t)
{
	/* resolvers[1] = [k1, k2): make its end sort before k1 (and keep the
	 * next range continuing from it, so only this rule breaks). */
	range_set(&t->resolvers[1].range, "m", 1, "a", 1);
	range_set(&t->resolvers[0].range, NULL, 0, "m", 1);
	range_set(&t->resolvers[2].range, "a", 1, NULL, 0);
}

static void m_range_empty(struct tsl *t)
{
	range_set(&t->resolvers[1].range, "m", 1, "m", 1);
	range_set(&t->resolvers[0].range, NULL, 0, "m", 1);
	range_set(&t->resolvers[2].range, "m", 1, NULL, 0);
}

static void m_first_begin(struct tsl *t) { range_set(&t->resolvers[0].range, "\0", 1, t->resolvers[0].range.end, t->resolvers[0].range.end_len); }
static void m_gap(struct tsl *t) { t->resolvers[2].range.begin[0]++; }
static void m_last_end(struct tsl *t) { range_set(&t->resolvers[2].range, t->resolvers[2].range.begin, t->resolvers[2].range.begin_len, "\xff\xff", 2); }
static void m_after_end(struct tsl *t) { t->resolvers[1].range.end_len = 0; }
static void m_key_long(struct tsl *t) { t->resolvers[1].range.begin_len = TSL_RANGE_KEY_MAX + 44; }
static void m_caps(struct tsl *t) { t->services[0].capabilities = 0x40; }
static void m_status(struct tsl *t) { t->services[2].status = 0; }
static void m_status9(struct tsl *t) { t->services[2].status = 9; }
static void m_svc_dup(struct tsl *t) { t->services[1].node_id = t->services[0].node_id; }
static void m_svc_zero(struct tsl *t) { t->services[4].node_id = 0; }
static void m_unregistered(struct tsl *t) { t->storage[1].node_id = 99; }
static void m_dir_unregistered(struct tsl *t) { t->director.node_id = 77; }

static const struct bad_case bad_cases[] = {
	{"epoch: 0 is not an epoch", m_epoch},
	{"director.node_id: 0 is not a node id", m_director_node},
	{"commit_proxies[1].addr: empty", m_addr_empty},
	{"commit_proxies[1].addr: \"host\" is not host:port", m_addr_noport},
	{"commit_proxies[1].addr: \"host:0\" is not host:port", m_addr_port0},
	{"commit_proxies[1].addr: \"host:65536\" is not host:port", m_addr_port_big},
	{"commit_proxies[1].addr: byte 0x20 at 2", m_addr_space},
	{"services[0].addr: byte 0x22 at 1", m_addr_quote},
	{"commit_proxies[1].addr: 64 bytes, at most 63", m_addr_long},
	{"commit_proxies.count: 17, at most 16", m_count},
	{"services.count: 65, at most 64", m_count_svc},
	{"logs[1].id: 1 duplicates logs[0]", m_dup_id},
	{"logs[1].node_id: node 1 already runs logs[0]", m_log_node},
	{"storage[2].node_id: node 5 already runs storage[0]", m_store_node},
	{"resolvers[1].range: end before begin", m_end_before},
	{"resolvers[1].range: empty (end equals begin)", m_range_empty},
	{"resolvers[0].range: begin is not empty", m_first_begin},
	{"resolvers[2].range: begin is not resolvers[1]'s end", m_gap},
	{"resolvers[2].range: end is not empty", m_last_end},
	{"resolvers[2].range: begin is not resolvers[1]'s end", m_after_end},
	{"resolvers[1].range.begin: 300 bytes, at most 256", m_key_long},
	{"services[0].capabilities: unknown bits 0x40", m_caps},
	{"services[2].status: 0 is neither up (1) nor down (2)", m_status},
	{"services[2].status: 9 is neither", m_status9},
	{"services[1].node_id: 1 duplicates services[0]", m_svc_dup},
	{"services[4].node_id: 0 is not a node id", m_svc_zero},
	{"storage[1].node_id: 99 is not a registered service", m_unregistered},
	{"director.node_id: 77 is not a registered service", m_dir_unregistered},
};
#define BAD_CASES ((int)(sizeof bad_cases / sizeof bad_cases[0]))

static int ignore_kv(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v,
		     size_t vl)
{
	(void)ctx, (void)k, (void)kl, (void)v, (void)vl;
	return 0;
}

/* _i indexes bad_cases: the encoder refuses, the decoder (given the
 * document's encoding of the same layout, correctly sealed) rejects, and
 * both say the same thing. */
START_TEST(test_bad_field)
{
	const struct bad_case *c = &bad_cases[_i];
	struct tsl t;
	struct rs_buf buf;
	char errmsg[RS_ERRMSG_SIZE] = "";

	build_sample(&t);
	ck_assert_int_eq(tsl_validate(&t, errmsg), RS_OK);
	c->mutate(&t);
	ck_assert_int_eq(tsl_validate(&t, errmsg), RS_EINVAL);
	ck_assert_msg_has(errmsg, c->want);
	rs_buf_init(&buf);
	ck_assert_int_eq(rs_buf_append(&buf, "xyz", 3), RS_OK);
	errmsg[0] = '\0';
	ck_assert_int_eq(tsl_encode(&t, &buf, errmsg), RS_EINVAL);
	ck_assert_msg_has(errmsg, c->want);
	ck_assert_uint_eq(buf.len, 3); /* unchanged */
	ck_assert_int_eq(tsl_decompose(&t, ignore_kv, NULL, errmsg), RS_EINVAL);
	ck_assert_msg_has(errmsg, c->want);
	errmsg[0] = '\0';
	ck_assert_int_eq(tb_decode(&t, errmsg), RS_ECORRUPT);
	ck_assert_msg_has(errmsg, c->want);
	rs_buf_free(&buf);
}
END_TEST

/* Strings the struct cannot hold, written straight into a sealed body. */
START_TEST(test_bad_wire_strings)
{
	struct tsl t, out;
	struct rs_buf body, enc;
	char errmsg[RS_ERRMSG_SIZE];
	uint8_t *hit;

	build_sample(&t);
	rs_buf_init(&body);
	rs_buf_init(&enc);
	tb_body(&body, &t);
	hit = memmem(body.data, body.len, "node-2.example:7401", 19);
	ck_assert_ptr_nonnull(hit);
	hit[4] = '\0';
	tb_seal(&enc, doc_magic, 1, body.data, body.len);
	ck_assert_int_eq(tsl_decode(enc.data, enc.len, &out, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "commit_proxies[1].addr: contains a NUL byte");
	hit[4] = '2';
	/* A length far past the end must be refused before it is used. */
	hit[-2] = 0xff, hit[-1] = 0xff;
	tb_seal(&enc, doc_magic, 1, body.data, body.len);
	ck_assert_int_eq(tsl_decode(enc.data, enc.len, &out, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "commit_proxies[1].addr: 65535 bytes, at most 63");
	hit[-2] = 19, hit[-1] = 0;
	tb_seal(&enc, doc_magic, 1, body.data, body.len);
	ck_assert_int_eq(tsl_decode(enc.data, enc.len, &out, errmsg), RS_OK);
	/* Bytes after the last service, inside a well-sealed body. */
	ck_assert_int_eq(rs_buf_put_u8(&body, 0), RS_OK);
	tb_seal(&enc, doc_magic, 1, body.data, body.len);
	ck_assert_int_eq(tsl_decode(enc.data, enc.len, &out, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "1 bytes after services");
	rs_buf_free(&body);
	rs_buf_free(&enc);
}
END_TEST

START_TEST(test_diff_names_field)
{
	struct tsl a, b;
	char what[RS_ERRMSG_SIZE];

	build_sample(&a);
	b = a;
	ck_assert(tsl_equal(&a, &b));
	/* Bytes past the NUL or the key length do not count. */
	b.logs[0].addr[TSL_ADDR_SIZE - 1] = 'x';
	b.resolvers[0].range.begin[5] = 9;
	ck_assert(tsl_equal(&a, &b));
	b.resolvers[1].range.end[0] ^= 1;
	ck_assert(tsl_diff(&a, &b, what));
	ck_assert_str_eq(what, "resolvers[1].range.end");
	b = a;
	b.services[3].heartbeat_age_ms++;
	ck_assert(tsl_diff(&a, &b, what));
	ck_assert_str_eq(what, "services[3].heartbeat_age_ms");
	b = a;
	b.storage_count--;
	ck_assert(tsl_diff(&a, &b, what));
	ck_assert_str_eq(what, "storage.count");
	b = a;
	b.epoch++;
	ck_assert(tsl_diff(&a, &b, what));
	ck_assert_str_eq(what, "epoch");
	b = a;
	b.director.addr[0] = '9';
	ck_assert(tsl_diff(&a, &b, what));
	ck_assert_str_eq(what, "director.addr");
	ck_assert(!tsl_equal(&a, &b));
}
END_TEST

/* ------------------------------------------------------------------ */
/* JSON                                                                 */
/* ------------------------------------------------------------------ */

/* Structure outside strings is balanced, and strings close.  The text is
 * ASCII without control characters; DEL (0x7f) needs no escape in JSON and
 * jansson writes it as is. */
static void check_json_shape(const char *s, size_t n)
{
	int depth = 0;
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		ck_assert_msg((unsigned char)c >= 0x20 && (unsigned char)c <= 0x7f,
			      "raw byte 0x%02x at %zu", (unsigned char)c, i);
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			ck_assert_int_ge(--depth, 0);
	}
	ck_assert(!in_str);
	ck_assert_int_eq(depth, 0);
}

static const char json_script[] =
	"import json, sys\n"
	"d = json.load(open(sys.argv[1]))\n"
	"exp = [l.split() for l in open(sys.argv[2])]\n"
	"assert d['format_version'] == 1\n"
	"assert d['id'] == int(exp[0][0]) and d['epoch'] == int(exp[0][1])\n"
	"assert len(d['commit_proxies']) == 16 and len(d['services']) == 64\n"
	"assert d['services'][0]['status'] == 'up'\n"
	"assert 'log' in d['services'][0]['capabilities']\n"
	"rs = d['resolvers']\n"
	"assert len(rs) == len(exp) - 1\n"
	"for r, e in zip(rs, exp[1:]):\n"
	"    assert r['begin'].encode('latin-1').hex() == (e[0] if e[0] != '-' else ''), r\n"
	"    assert r['end'].encode('latin-1').hex() == (e[1] if e[1] != '-' else ''), r\n"
	"print('json ok')\n";

static void hex_line(FILE *f, const uint8_t *p, uint32_t n)
{
	if (n == 0)
		fputc('-', f);
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

/* Parse with python3's json module when it is installed. */
static void check_json_python(const struct tsl *t, const struct rs_buf *json)
{
	char *dir = testutil_tmpdir("tsljson");
	char *jpath = testutil_path(dir, "layout.json");
	char *epath = testutil_path(dir, "expect.txt");
	char *spath = testutil_path(dir, "check.py");
	char *cmd;
	FILE *f;
	int status;

	testutil_write_file(jpath, json->data, json->len);
	testutil_write_file(spath, json_script, strlen(json_script));
	f = fopen(epath, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%llu %llu\n", (unsigned long long)t->id, (unsigned long long)t->epoch);
	for (uint32_t i = 0; i < t->resolver_count; i++) {
		hex_line(f, t->resolvers[i].range.begin, t->resolvers[i].range.begin_len);
		fputc(' ', f);
		hex_line(f, t->resolvers[i].range.end, t->resolvers[i].range.end_len);
		fputc('\n', f);
	}
	fclose(f);
	ck_assert_int_ge(asprintf(&cmd, "python3 %s %s %s >/dev/null", spath, jpath, epath), 0);
	status = system(cmd);
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 127)
		fprintf(stderr, "test_tsl: python3 not found, JSON parse check skipped\n");
	else
		ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "python3 json check failed (status %d), see %s", status, jpath);
	free(cmd);
	testutil_rmtree(dir);
	free(jpath), free(epath), free(spath), free(dir);
}

START_TEST(test_json)
{
	struct tsl t;
	struct rs_buf json;
	char *s;

	build_max(&t);
	/* Bytes that need escaping, in split keys. */
	memcpy(t.resolvers[1].range.begin + 1, "\"\\\n\t\x01\x7f\x80\xff", 8);
	memcpy(t.resolvers[0].range.end + 1, "\"\\\n\t\x01\x7f\x80\xff", 8);
	ck_assert_int_eq(tsl_validate(&t, NULL), RS_OK);
	rs_buf_init(&json);
	ck_assert_int_eq(tsl_to_json(&t, &json), RS_OK);
	check_json_shape((const char *)json.data, json.len);
	s = strndup((const char *)json.data, json.len);
	ck_assert_msg_has(s, "{\"format_version\":1,\"id\":1234605616436508552,\"epoch\":7,");
	ck_assert_msg_has(s, "\"recovery_version\":123456789");
	ck_assert_msg_has(s, "\"director\":{\"node_id\":1,\"addr\":\"hhh");
	ck_assert_msg_has(s, "\"commit_proxies\":[{\"id\":100,");
	/* jansson's spelling: \n and \t short, hex digits in capitals, DEL as
	 * is (JSON does not escape it). */
	ck_assert_msg_has(s, "\\\"\\\\\\n\\t\\u0001\x7f\\u0080\\u00FF");
	ck_assert_msg_has(s, "\"capabilities\":[\"log\",\"storage\",\"commit_proxy\",\"resolver\",\"sequencer\",\"director\"],\"capability_bits\":63,\"status\":\"up\"");
	ck_assert_msg_has(s, "\"status\":\"down\"");
	free(s);
	check_json_python(&t, &json);

	/* Invalid layouts still print valid JSON. */
	t.services[0].status = 9;
	json.len = 0;
	ck_assert_int_eq(tsl_to_json(&t, &json), RS_OK);
	check_json_shape((const char *)json.data, json.len);
	s = strndup((const char *)json.data, json.len);
	ck_assert_msg_has(s, "\"status\":\"invalid\"");
	free(s);

	/* A u64 past the JSON layer's integers is refused, not rounded, and
	 * leaves out as it was. */
	json.len = 0;
	rs_buf_put_u8(&json, '#');
	t.services[63].heartbeat_age_ms = (uint64_t)INT64_MAX + 1;
	ck_assert_int_eq(tsl_to_json(&t, &json), RS_ETOOLARGE);
	ck_assert_uint_eq(json.len, 1);
	t.services[63].heartbeat_age_ms = INT64_MAX;
	ck_assert_int_eq(tsl_to_json(&t, &json), RS_OK);
	ck_assert_int_eq(json.data[0], '#');
	rs_buf_free(&json);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Decomposed form                                                      */
/* ------------------------------------------------------------------ */

struct kvset {
	size_t n;
	uint8_t key[TSL_ENTRIES_MAX + 4][TSL_KEY_SIZE_MAX];
	size_t key_len[TSL_ENTRIES_MAX + 4];
	uint8_t val[TSL_ENTRIES_MAX + 4][TSL_ENTRY_SIZE_MAX + 8];
	size_t val_len[TSL_ENTRIES_MAX + 4];
	struct tsl_kv kv[TSL_ENTRIES_MAX + 4];
};

static void kvset_put(struct kvset *s, const uint8_t *k, size_t kl,
		      const uint8_t *v, size_t vl)
{
	ck_assert_uint_lt(s->n, TSL_ENTRIES_MAX + 4);
	ck_assert_uint_le(kl, TSL_KEY_SIZE_MAX);
	ck_assert_uint_le(vl, TSL_ENTRY_SIZE_MAX + 8);
	memcpy(s->key[s->n], k, kl);
	memcpy(s->val[s->n], v, vl);
	s->key_len[s->n] = kl;
	s->val_len[s->n] = vl;
	s->n++;
}

static int kvset_fn(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v,
		    size_t vl)
{
	kvset_put(ctx, k, kl, v, vl);
	return 0;
}

/* Refresh the borrowed view (after any change to the set). */
static const struct tsl_kv *kvset_view(struct kvset *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->kv[i] = (struct tsl_kv){s->key[i], s->key_len[i], s->val[i], s->val_len[i]};
	return s->kv;
}

static struct kvset *decompose(const struct tsl *t)
{
	struct kvset *s = calloc(1, sizeof *s);
	char errmsg[RS_ERRMSG_SIZE] = "";

	ck_assert_ptr_nonnull(s);
	ck_assert_msg(tsl_decompose(t, kvset_fn, s, errmsg) == RS_OK, "%s", errmsg);
	return s;
}

static size_t kvset_find(const struct kvset *s, enum tsl_kind kind, uint64_t id)
{
	uint8_t key[TSL_KEY_SIZE_MAX];
	size_t n = tsl_key_format(kind, id, key);

	for (size_t i = 0; i < s->n; i++)
		if (s->key_len[i] == n && memcmp(s->key[i], key, n) == 0)
			return i;
	ck_abort_msg("no key for %s %llu", tsl_kind_name(kind), (unsigned long long)id);
	return 0;
}

static int matches(const struct tsl *t, struct kvset *s, char *errmsg)
{
	errmsg[0] = '\0';
	return tsl_decomposed_matches(t, kvset_view(s), s->n, errmsg);
}

START_TEST(test_keys)
{
	uint8_t key[TSL_KEY_SIZE_MAX];
	enum tsl_kind kind;
	uint64_t id;
	char errmsg[RS_ERRMSG_SIZE];
	size_t n;
	static const char *const bad[] = {
		"\xff/system/layout/log/000000000000000A",  /* upper case */
		"\xff/system/layout/log/00000000000000a",   /* 15 digits */
		"\xff/system/layout/log/00000000000000000a", /* 17 digits */
		"\xff/system/layout/logs/000000000000000a",
		"\xff/system/layout/log000000000000000a",
		"\xff/system/layout//000000000000000a",
		"\xff/system/layout/",
		"\xff/system/layout",
		"\xff/system/layoutx/log/000000000000000a",
		"/system/layout/log/000000000000000a",
		"",
	};

	n = tsl_key_format(TSL_KIND_COMMIT_PROXY, UINT64_MAX, key);
	ck_assert_uint_eq(n, 45);
	ck_assert_mem_eq(key, "\xff/system/layout/commit_proxy/ffffffffffffffff", n);
	n = tsl_key_format(TSL_KIND_LOG, 10, key);
	ck_assert_mem_eq(key, "\xff/system/layout/log/000000000000000a", n);
	ck_assert_int_eq(tsl_key_parse(key, n, &kind, &id, errmsg), RS_OK);
	ck_assert_int_eq(kind, TSL_KIND_LOG);
	ck_assert_uint_eq(id, 10);
	for (int k = TSL_KIND_DIRECTOR; k <= TSL_KIND_SERVICE; k++) {
		n = tsl_key_format((enum tsl_kind)k, 0x0123456789abcdefull, key);
		ck_assert_int_eq(tsl_key_parse(key, n, &kind, &id, errmsg), RS_OK);
		ck_assert_int_eq(kind, k);
		ck_assert_uint_eq(id, 0x0123456789abcdefull);
	}
	ck_assert_ptr_null(tsl_kind_name((enum tsl_kind)0));
	ck_assert_ptr_null(tsl_kind_name((enum tsl_kind)8));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errmsg[0] = '\0';
		ck_assert_msg(tsl_key_parse((const uint8_t *)bad[i], strlen(bad[i]), &kind,
					    &id, errmsg) == RS_ECORRUPT, "bad[%zu] accepted", i);
		ck_assert_msg_has(errmsg, "key ");
	}
	ck_assert_int_eq(tsl_key_parse((const uint8_t *)bad[0], strlen(bad[0]), &kind, &id, errmsg),
			 RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "key \\xff/system/layout/log/000000000000000A: "
				 "not <component>/<16 lowercase hex digits>");
}
END_TEST

START_TEST(test_decompose_roundtrip)
{
	struct tsl t;
	struct kvset *s;
	struct tsl_entry e;
	char errmsg[RS_ERRMSG_SIZE];
	size_t i;

	build_sample(&t);
	s = decompose(&t);
	ck_assert_uint_eq(s->n, 2 + 3 + 3 + 3 + 5 + 5);
	for (i = 0; i < s->n; i++) {
		ck_assert_msg(tsl_entry_decode(s->key[i], s->key_len[i], s->val[i],
					       s->val_len[i], &e, errmsg) == RS_OK, "%s", errmsg);
		ck_assert_uint_eq(e.layout_id, t.id);
		ck_assert_uint_eq(e.epoch, t.epoch);
	}
	/* Layout order: director first, then the sequencer. */
	ck_assert_int_eq(tsl_entry_decode(s->key[0], s->key_len[0], s->val[0], s->val_len[0], &e, errmsg), RS_OK);
	ck_assert_int_eq(e.kind, TSL_KIND_DIRECTOR);
	ck_assert_uint_eq(e.recovery_version, t.recovery_version);
	ck_assert_str_eq(e.director.addr, t.director.addr);
	i = kvset_find(s, TSL_KIND_RESOLVER, t.resolvers[1].c.id);
	ck_assert_int_eq(tsl_entry_decode(s->key[i], s->key_len[i], s->val[i], s->val_len[i], &e, errmsg), RS_OK);
	ck_assert_int_eq(e.kind, TSL_KIND_RESOLVER);
	ck_assert_str_eq(e.component.addr, t.resolvers[1].c.addr);
	ck_assert_uint_eq(e.range.end_len, t.resolvers[1].range.end_len);
	ck_assert_mem_eq(e.range.end, t.resolvers[1].range.end, e.range.end_len);
	i = kvset_find(s, TSL_KIND_SERVICE, 4);
	ck_assert_int_eq(tsl_entry_decode(s->key[i], s->key_len[i], s->val[i], s->val_len[i], &e, errmsg), RS_OK);
	ck_assert_uint_eq(e.service.status, TSL_STATUS_DOWN);
	ck_assert_uint_eq(e.service.heartbeat_age_ms, t.services[3].heartbeat_age_ms);
	ck_assert_int_eq(matches(&t, s, errmsg), RS_OK);
	/* Any order will do. */
	for (i = 0; i < s->n / 2; i++) {
		struct tsl_kv tmp;
		kvset_view(s);
		tmp = s->kv[i], s->kv[i] = s->kv[s->n - 1 - i], s->kv[s->n - 1 - i] = tmp;
	}
	ck_assert_int_eq(tsl_decomposed_matches(&t, s->kv, s->n, errmsg), RS_OK);
	free(s);

	build_max(&t);
	s = decompose(&t);
	ck_assert_uint_eq(s->n, TSL_ENTRIES_MAX);
	ck_assert_int_eq(matches(&t, s, errmsg), RS_OK);
	free(s);
}
END_TEST

/* The entry value is what the document says. */
START_TEST(test_entry_doc_format)
{
	struct tsl t;
	struct kvset *s;
	struct rs_buf body, doc;
	size_t i;

	build_sample(&t);
	s = decompose(&t);
	rs_buf_init(&body);
	rs_buf_init(&doc);
	tb_u64(&body, t.id);
	tb_u64(&body, t.epoch);
	tb_u8(&body, 4);
	tb_component(&body, &t.resolvers[2].c);
	tb_range(&body, &t.resolvers[2].range);
	tb_seal(&doc, doc_entry_magic, 1, body.data, body.len);
	i = kvset_find(s, TSL_KIND_RESOLVER, t.resolvers[2].c.id);
	ck_assert_uint_eq(s->val_len[i], doc.len);
	ck_assert_mem_eq(s->val[i], doc.data, doc.len);
	body.len = 0;
	tb_u64(&body, t.id);
	tb_u64(&body, t.epoch);
	tb_u8(&body, 1);
	tb_u64(&body, t.director.node_id);
	tb_addr(&body, t.director.addr);
	tb_u64(&body, t.recovery_version);
	tb_seal(&doc, doc_entry_magic, 1, body.data, body.len);
	ck_assert_mem_eq(s->key[0], "\xff/system/layout/director/0000000000000001", s->key_len[0]);
	ck_assert_uint_eq(s->val_len[0], doc.len);
	ck_assert_mem_eq(s->val[0], doc.data, doc.len);
	rs_buf_free(&body);
	rs_buf_free(&doc);
	free(s);
}
END_TEST

START_TEST(test_decomposed_missing)
{
	struct tsl t;
	struct kvset *s;
	char errmsg[RS_ERRMSG_SIZE];

	build_sample(&t);
	s = decompose(&t);
	for (size_t drop = 0; drop < s->n; drop++) {
		struct tsl_kv kv[TSL_ENTRIES_MAX];
		size_t m = 0;
		kvset_view(s);
		for (size_t i = 0; i < s->n; i++)
			if (i != drop)
				kv[m++] = s->kv[i];
		ck_assert_int_eq(tsl_decomposed_matches(&t, kv, m, errmsg), RS_ECORRUPT);
		ck_assert_msg_has(errmsg, "missing key \\xff/system/layout/");
	}
	s->n = 0;
	ck_assert_int_eq(matches(&t, s, errmsg), RS_ECORRUPT);
	/* Key order: commit_proxy sorts first. */
	ck_assert_str_eq(errmsg, "missing key \\xff/system/layout/commit_proxy/0000000000000064");
	free(s);
}
END_TEST

START_TEST(test_decomposed_extra)
{
	struct tsl t;
	struct kvset *s;
	char errmsg[RS_ERRMSG_SIZE];
	uint8_t key[TSL_KEY_SIZE_MAX];
	size_t n, i;

	build_sample(&t);
	s = decompose(&t);
	/* A log that is not in the layout, with a well-formed value. */
	i = kvset_find(s, TSL_KIND_LOG, 1);
	n = tsl_key_format(TSL_KIND_LOG, 0xff, key);
	kvset_put(s, key, n, s->val[i], s->val_len[i]);
	ck_assert_int_eq(matches(&t, s, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "extra key \\xff/system/layout/log/00000000000000ff");
	s->n--;
	/* The consolidated key is not part of the decomposed form. */
	kvset_put(s, (const uint8_t *)"\xff/system/layout", 15, (const uint8_t *)"x", 1);
	ck_assert_int_eq(matches(&t, s, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "extra key \\xff/system/layout");
	s->n--;
	/* The same key twice. */
	i = kvset_find(s, TSL_KIND_STORAGE, 2001);
	kvset_put(s, s->key[i], s->key_len[i], s->val[i], s->val_len[i]);
	ck_assert_int_eq(matches(&t, s, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "duplicate key \\xff/system/layout/storage/00000000000007d1");
	s->n--;
	ck_assert_int_eq(matches(&t, s, errmsg), RS_OK);
	free(s);
}
END_TEST

START_TEST(test_decomposed_changed)
{
	struct tsl t, t2;
	struct kvset *s, *s2;
	char errmsg[RS_ERRMSG_SIZE];
	size_t i, j;

	build_sample(&t);
	s = decompose(&t);
	/* log 2 moved to another address. */
	t2 = t;
	addr_set(t2.logs[1].addr, "10.9.9.9:7501");
	s2 = decompose(&t2);
	i = kvset_find(s, TSL_KIND_LOG, 2);
	j = kvset_find(s2, TSL_KIND_LOG, 2);
	memcpy(s->val[i], s2->val[j], s2->val_len[j]);
	s->val_len[i] = s2->val_len[j];
	ck_assert_int_eq(matches(&t, s, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "key \\xff/system/layout/log/0000000000000002: value differs in addr");
	/* ... and the layout it came from matches it in turn. */
	free(s2);
	t2 = t;
	t2.logs[1] = (struct tsl_component){.id = 2, .node_id = 2};
	addr_set(t2.logs[1].addr, "10.9.9.9:7501");
	ck_assert_int_eq(matches(&t2, s, errmsg), RS_OK);
	free(s);

	/* A service's status. */
	s = decompose(&t);
	t2 = t;
	t2.services[0].status = TSL_STATUS_DOWN;
	ck_assert_int_eq(matches(&t2, s, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "key \\xff/system/layout/service/0000000000000001: value differs in status");
	/* The director's recovery version. */
	t2 = t;
	t2.recovery_version++;
	ck_assert_int_eq(matches(&t2, s, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "key \\xff/system/layout/director/0000000000000001: value differs in recovery_version");
	/* A resolver's range. */
	t2 = t;
	t2.resolvers[0].range.end[0]++;
	t2.resolvers[1].range.begin[0]++;
	ck_assert_int_eq(matches(&t2, s, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "key \\xff/system/layout/resolver/000000000000012c: value differs in range.end");
	/* Stale keys from the previous epoch, though nothing moved. */
	t2 = t;
	t2.epoch++;
	ck_assert_int_eq(matches(&t2, s, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "key \\xff/system/layout/commit_proxy/0000000000000064: epoch is 7, expected 8");
	t2 = t;
	t2.id = 5;
	ck_assert_int_eq(matches(&t2, s, errmsg), RS_ECORRUPT);
	ck_assert_msg_has(errmsg, "layout_id is 1234605616436508552, expected 5");
	/* A damaged value names the key and the damage. */
	i = kvset_find(s, TSL_KIND_STORAGE, 2003);
	s->val[i][s->val_len[i] - 1] ^= 0x10;
	ck_assert_int_eq(matches(&t, s, errmsg), RS_ECORRUPT);
	ck_assert_msg_has(errmsg, "key \\xff/system/layout/storage/00000000000007d3: crc mismatch");
	/* An invalid layout is the caller's error. */
	t2 = t;
	t2.epoch = 0;
	ck_assert_int_eq(matches(&t2, s, errmsg), RS_EINVAL);
	free(s);
}
END_TEST

START_TEST(test_entry_damage)
{
	struct tsl t;
	struct kvset *s;
	struct tsl_entry e;
	char errmsg[RS_ERRMSG_SIZE];
	uint8_t key[TSL_KEY_SIZE_MAX], *v;
	size_t i, j, n, vl;

	build_sample(&t);
	s = decompose(&t);
	i = kvset_find(s, TSL_KIND_RESOLVER, t.resolvers[1].c.id);
	v = s->val[i];
	vl = s->val_len[i];
	for (size_t cut = 0; cut < vl; cut++) {
		uint8_t *p = malloc(cut ? cut : 1);
		memcpy(p, v, cut);
		ck_assert_int_eq(tsl_entry_decode(s->key[i], s->key_len[i], p, cut, &e, errmsg), RS_ECORRUPT);
		ck_assert_msg_has(errmsg, "truncated in ");
		free(p);
	}
	for (j = 0; j < vl; j++) {
		for (int bit = 0; bit < 8; bit++) {
			int want = j >= 8 && j < 12 ? RS_EFORMAT : RS_ECORRUPT;
			v[j] ^= (uint8_t)(1u << bit);
			ck_assert_msg(tsl_entry_decode(s->key[i], s->key_len[i], v, vl, &e, errmsg) == want,
				      "byte %zu bit %d: %s", j, bit, errmsg);
			v[j] ^= (uint8_t)(1u << bit);
		}
	}
	rs_put_u32(v + 8, 2);
	ck_assert_int_eq(tsl_entry_decode(s->key[i], s->key_len[i], v, vl, &e, errmsg), RS_EFORMAT);
	ck_assert_msg_has(errmsg, "unknown layout entry format version 2");
	rs_put_u32(v + 8, 1);
	/* A consolidated layout is not an entry. */
	memcpy(v, TSL_MAGIC, TSL_MAGIC_SIZE);
	ck_assert_int_eq(tsl_entry_decode(s->key[i], s->key_len[i], v, vl, &e, errmsg), RS_ECORRUPT);
	ck_assert_msg_has(errmsg, "bad magic");
	memcpy(v, TSL_ENTRY_MAGIC, TSL_MAGIC_SIZE);
	ck_assert_int_eq(tsl_entry_decode(s->key[i], s->key_len[i], v, vl, &e, errmsg), RS_OK);

	/* Right value, wrong key: another kind, another id. */
	j = kvset_find(s, TSL_KIND_LOG, 2);
	n = tsl_key_format(TSL_KIND_STORAGE, 2, key);
	ck_assert_int_eq(tsl_entry_decode(key, n, s->val[j], s->val_len[j], &e, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "kind: 5 (log), but the key names storage");
	ck_assert_int_eq(e.kind, 0);
	n = tsl_key_format(TSL_KIND_LOG, 3, key);
	ck_assert_int_eq(tsl_entry_decode(key, n, s->val[j], s->val_len[j], &e, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "log.id: 0000000000000002, but the key names 0000000000000003");
	n = tsl_key_format(TSL_KIND_SERVICE, 9, key);
	j = kvset_find(s, TSL_KIND_SERVICE, 2);
	ck_assert_int_eq(tsl_entry_decode(key, n, s->val[j], s->val_len[j], &e, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "service.node_id: 0000000000000002, but the key names 0000000000000009");
	free(s);
}
END_TEST

/* Entries whose own fields are wrong, sealed correctly. */
START_TEST(test_entry_bad_fields)
{
	struct tsl t;
	struct rs_buf body, doc;
	struct tsl_entry e;
	char errmsg[RS_ERRMSG_SIZE];
	uint8_t key[TSL_KEY_SIZE_MAX];
	size_t n;
	struct tsl_range r;

	build_sample(&t);
	rs_buf_init(&body);
	rs_buf_init(&doc);
	/* Resolver with end before begin. */
	tb_u64(&body, t.id);
	tb_u64(&body, t.epoch);
	tb_u8(&body, TSL_KIND_RESOLVER);
	tb_component(&body, &t.resolvers[1].c);
	range_set(&r, "z", 1, "a", 1);
	tb_range(&body, &r);
	tb_seal(&doc, doc_entry_magic, 1, body.data, body.len);
	n = tsl_key_format(TSL_KIND_RESOLVER, t.resolvers[1].c.id, key);
	ck_assert_int_eq(tsl_entry_decode(key, n, doc.data, doc.len, &e, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "resolver.range: end before begin");
	/* Unknown kind byte. */
	body.data[16] = 0;
	tb_seal(&doc, doc_entry_magic, 1, body.data, body.len);
	ck_assert_int_eq(tsl_entry_decode(key, n, doc.data, doc.len, &e, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "kind: 0 (unknown), but the key names resolver");
	/* Epoch 0, and a trailing byte. */
	body.len = 0;
	tb_u64(&body, t.id);
	tb_u64(&body, 0);
	tb_u8(&body, TSL_KIND_LOG);
	tb_component(&body, &t.logs[0]);
	tb_seal(&doc, doc_entry_magic, 1, body.data, body.len);
	n = tsl_key_format(TSL_KIND_LOG, t.logs[0].id, key);
	ck_assert_int_eq(tsl_entry_decode(key, n, doc.data, doc.len, &e, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "epoch: 0 is not an epoch");
	rs_put_u64(body.data + 8, 7);
	tb_u8(&body, 0);
	tb_seal(&doc, doc_entry_magic, 1, body.data, body.len);
	ck_assert_int_eq(tsl_entry_decode(key, n, doc.data, doc.len, &e, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "1 bytes after the log entry");
	body.len--;
	tb_seal(&doc, doc_entry_magic, 1, body.data, body.len);
	ck_assert_int_eq(tsl_entry_decode(key, n, doc.data, doc.len, &e, errmsg), RS_OK);
	ck_assert_str_eq(e.component.addr, t.logs[0].addr);
	rs_buf_free(&body);
	rs_buf_free(&doc);
}
END_TEST

static int stop_at_third(void *ctx, const uint8_t *k, size_t kl,
			 const uint8_t *v, size_t vl)
{
	int *calls = ctx;
	(void)k, (void)kl, (void)v, (void)vl;
	return ++*calls == 3 ? RS_EIO : 0;
}

START_TEST(test_decompose_stops)
{
	struct tsl t;
	int calls = 0;

	build_sample(&t);
	ck_assert_int_eq(tsl_decompose(&t, stop_at_third, &calls, NULL), RS_EIO);
	ck_assert_int_eq(calls, 3);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tsl");
	TCase *tc = tcase_create("codec");
	TCase *td = tcase_create("decomposed");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip_sample);
	tcase_add_test(tc, test_roundtrip_random);
	tcase_add_test(tc, test_roundtrip_limits);
	tcase_add_test(tc, test_doc_format);
	tcase_add_test(tc, test_truncate_every_offset);
	tcase_add_test(tc, test_truncate_resealed);
	tcase_add_test(tc, test_bitflip_every_bit);
	tcase_add_test(tc, test_resealed_garbage);
	tcase_add_test(tc, test_header_errors);
	tcase_add_loop_test(tc, test_bad_field, 0, BAD_CASES);
	tcase_add_test(tc, test_bad_wire_strings);
	tcase_add_test(tc, test_diff_names_field);
	tcase_add_test(tc, test_json);
	suite_add_tcase(s, tc);
	tcase_set_timeout(td, 60);
	tcase_add_test(td, test_keys);
	tcase_add_test(td, test_decompose_roundtrip);
	tcase_add_test(td, test_entry_doc_format);
	tcase_add_test(td, test_decomposed_missing);
	tcase_add_test(td, test_decomposed_extra);
	tcase_add_test(td, test_decomposed_changed);
	tcase_add_test(td, test_entry_damage);
	tcase_add_test(td, test_entry_bad_fields);
	tcase_add_test(td, test_decompose_stops);
	suite_add_tcase(s, td);
	return testutil_run_suite(s);
}
