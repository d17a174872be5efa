/*
 * tsl_entry: the decomposed form of a layout: the key of each component,
 * its entry value (the tsl_codec frame around one component), and the
 * cross-check of a decomposed form against a consolidated layout (see
 * tsl.h).
 */
#include "director/tsl.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director/tsl_internal.h"
#include "raftstore/lib/bytes.h"

/* ------------------------------------------------------------------ */
/* Decomposed keys and entries                                          */
/* ------------------------------------------------------------------ */

#define TSL_KEY_PREFIX_LEN (sizeof TSL_KEY_PREFIX - 1)
#define TSL_KEY_ID_DIGITS 16u
/* Room for a key printed by tsl_key_text. */
#define TSL_KEY_TEXT_SIZE 128

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
		if (strlen(tsl_kind_name((enum tsl_kind)k)) == n &&
		    memcmp(tsl_kind_name((enum tsl_kind)k), p, n) == 0) {
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
		tsl_wr_node(b, &t->director);
		tsl_wr_u64(b, t->recovery_version);
		return t->director.node_id;
	case TSL_KIND_SERVICE:
		tsl_wr_service(b, &t->services[i]);
		return t->services[i].node_id;
	case TSL_KIND_RESOLVER:
		tsl_wr_component(b, &t->resolvers[i].c);
		tsl_wr_range(b, &t->resolvers[i].range);
		return t->resolvers[i].c.id;
	case TSL_KIND_SEQUENCER: c = &t->sequencer; break;
	case TSL_KIND_COMMIT_PROXY: c = &t->commit_proxies[i]; break;
	case TSL_KIND_LOG: c = &t->logs[i]; break;
	default: c = &t->storage[i]; break;
	}
	tsl_wr_component(b, c);
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
	tsl_wr_u64(&e->val, e->t->id);
	tsl_wr_u64(&e->val, e->t->epoch);
	tsl_wr_u8(&e->val, (uint8_t)kind);
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

static int tsl_rd_payload(struct tsl_rd *r, struct tsl_entry *e, const char *where)
{
	int rv;

	switch (e->kind) {
	case TSL_KIND_DIRECTOR:
		rv = tsl_rd_node(r, where, &e->director);
		return rv == RS_OK ? tsl_rd_u64(r, where, "recovery_version",
						&e->recovery_version) : rv;
	case TSL_KIND_SERVICE:
		return tsl_rd_service(r, where, &e->service);
	case TSL_KIND_RESOLVER:
		rv = tsl_rd_component(r, where, &e->component);
		return rv == RS_OK ? tsl_rd_range(r, where, &e->range) : rv;
	default:
		return tsl_rd_component(r, where, &e->component);
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
	int rv = tsl_rd_u64(r, "", "layout_id", &e->layout_id);

	if (rv == RS_OK)
		rv = tsl_rd_u64(r, "", "epoch", &e->epoch);
	if (rv == RS_OK)
		rv = tsl_rd_u8(r, "", "kind", &k);
	if (rv != RS_OK)
		return rv;
	if (k != (uint8_t)kind) {
		rs_errmsg_printf(r->errmsg, "kind: %u (%s), but the key names %s", k,
				 tsl_kind_name((enum tsl_kind)k) ? tsl_kind_name((enum tsl_kind)k) : "unknown",
				 name);
		return RS_ECORRUPT;
	}
	e->kind = kind;
	rv = tsl_rd_payload(r, e, name);
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
