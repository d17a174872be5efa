/*
 * fuzz_tsl: the layout codec (director/tsl.h), both forms.
 *
 * Every input is tried as both forms:
 *   consolidated  the whole input, as tsl_decode reads the value of
 *                 "\xff/system/layout";
 *   decomposed    u8 key_len | key | value: one entry, as
 *                 tsl_entry_decode reads a "\xff/system/layout/..." pair.
 * Invariants, from tsl.h's guarantees: a decoded layout validates, encodes
 * back to exactly the input (the encoding is canonical) and decodes again
 * to an equal layout; its decomposed entries each decode and match it;
 * its JSON form parses.  A decoded entry's key parses to the kind it
 * holds and re-formats to the same bytes.  Copies with the frame CRC
 * recomputed are decoded too.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "director/tsl.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tests/fuzz/fuzz.h"

/* The decomposed entries of a layout, copied out of tsl_decompose. */
struct entries {
	struct tsl_kv kvs[TSL_ENTRIES_MAX];
	size_t n;
};

static int collect_entry(void *ctx, const uint8_t *key, size_t key_len,
			 const uint8_t *val, size_t val_len)
{
	struct entries *e = ctx;
	struct tsl_entry entry;
	struct tsl_kv *kv;

	FUZZ_CHECK(e->n < TSL_ENTRIES_MAX);
	FUZZ_CHECK(tsl_entry_decode(key, key_len, val, val_len, &entry, NULL) ==
		   RS_OK);
	kv = &e->kvs[e->n++];
	kv->key = fuzz_dup(key, key_len);
	kv->key_len = key_len;
	kv->val = fuzz_dup(val, val_len);
	kv->val_len = val_len;
	return 0;
}

static void check_decomposed(const struct tsl *t)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct entries *e = calloc(1, sizeof *e);

	FUZZ_CHECK(e != NULL);
	FUZZ_CHECK(tsl_decompose(t, collect_entry, e, errmsg) == RS_OK);
	FUZZ_CHECK(e->n == 2u + t->commit_proxy_count + t->resolver_count +
				   t->log_count + t->storage_count +
				   t->service_count);
	FUZZ_CHECK(tsl_decomposed_matches(t, e->kvs, e->n, errmsg) == RS_OK);
	for (size_t i = 0; i < e->n; i++) {
		free((void *)e->kvs[i].key);
		free((void *)e->kvs[i].val);
	}
	free(e);
}

static void check_json(const struct tsl *t)
{
	struct rs_buf out;
	json_t *doc = NULL;
	int rv;

	rs_buf_init(&out);
	rv = tsl_to_json(t, &out);
	FUZZ_CHECK(rv == RS_OK || rv == RS_ETOOLARGE);
	if (rv == RS_OK) {
		FUZZ_CHECK(rs_json_parse_object(out.data, out.len, &doc, NULL) ==
			   RS_OK);
		json_decref(doc);
	}
	rs_buf_free(&out);
}

static void fuzz_consolidated(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct tsl *t = malloc(2 * sizeof *t);
	struct rs_buf out;

	FUZZ_CHECK(t != NULL);
	if (tsl_decode(data, size, &t[0], errmsg) == RS_OK) {
		FUZZ_CHECK(tsl_validate(&t[0], errmsg) == RS_OK);
		rs_buf_init(&out);
		FUZZ_CHECK(tsl_encode(&t[0], &out, errmsg) == RS_OK);
		FUZZ_CHECK(out.len == size);
		FUZZ_CHECK(memcmp(out.data, data, size) == 0);
		FUZZ_CHECK(tsl_decode(out.data, out.len, &t[1], errmsg) == RS_OK);
		FUZZ_CHECK(tsl_equal(&t[0], &t[1]));
		FUZZ_CHECK(!tsl_diff(&t[0], &t[1], errmsg));
		rs_buf_free(&out);
		check_decomposed(&t[0]);
		check_json(&t[0]);
	}
	free(t);
}

static void fuzz_entry(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	uint8_t key[TSL_KEY_SIZE_MAX];
	struct tsl_entry entry;
	enum tsl_kind kind;
	uint64_t id;
	size_t key_len;

	if (size < 1 || data[0] > size - 1)
		return;
	key_len = data[0];
	if (tsl_entry_decode(data + 1, key_len, data + 1 + key_len,
			     size - 1 - key_len, &entry, errmsg) != RS_OK)
		return;
	FUZZ_CHECK(tsl_key_parse(data + 1, key_len, &kind, &id, errmsg) ==
		   RS_OK);
	FUZZ_CHECK(kind == entry.kind);
	FUZZ_CHECK(tsl_kind_name(kind) != NULL);
	FUZZ_CHECK(tsl_key_format(kind, id, key) == key_len);
	FUZZ_CHECK(memcmp(key, data + 1, key_len) == 0);
}

/* The frame's CRC (offset 16: CRC-32C of the body after the 20-byte
 * header, `length` bytes from offset 12) when the body fits. */
static bool fix_frame_crc(uint8_t *p, size_t n)
{
	uint32_t length, crc;

	if (n < TSL_HEADER_SIZE)
		return false;
	length = rs_get_u32(p + 12);
	if (length > n - TSL_HEADER_SIZE)
		return false;
	crc = crc32c(p + TSL_HEADER_SIZE, length);
	if (rs_get_u32(p + 16) == crc)
		return false;
	rs_put_u32(p + 16, crc);
	return true;
}

static void fuzz_both(const uint8_t *data, size_t size)
{
	fuzz_consolidated(data, size);
	fuzz_entry(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed = fuzz_dup(data, size);

	fuzz_both(data, size);
	if (fix_frame_crc(fixed, size))
		fuzz_consolidated(fixed, size);
	memcpy(fixed, data, size);
	if (size > 0 && data[0] <= size - 1 &&
	    fix_frame_crc(fixed + 1 + data[0], size - 1 - data[0]))
		fuzz_entry(fixed, size);
	free(fixed);
	return 0;
}
