/*
 * Tests for the MVCC index: reads at versions, range reads and paging,
 * clear-range, the read window and pruning, images, and two randomized
 * runs against reference models (a small key space with every version
 * kept, and a large one that drives B+tree splits and merges).  Every
 * test ends with mvcc_check, which verifies the tree, the version chains,
 * the key count and the memory count.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "storage/mvcc.h"
#include "tests/unit/testutil.h"

/* ---- helpers ---- */

static void check_index(const struct mvcc *m)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	int rv = mvcc_check(m, errmsg);
	ck_assert_msg(rv == RS_OK, "mvcc_check: %s", errmsg);
}

static void apply_ok(struct mvcc *m, struct batch *b, uint64_t version)
{
	b->version = version;
	ck_assert_int_eq(mvcc_apply(m, b), RS_OK);
	ck_assert_uint_eq(mvcc_latest_version(m), version);
	batch_reset(b);
}

static void apply_set(struct mvcc *m, uint64_t version, const char *key,
		      const char *val)
{
	struct batch b;
	batch_init(&b);
	ck_assert_int_eq(batch_set(&b, key, strlen(key), val, strlen(val), NULL),
			 RS_OK);
	apply_ok(m, &b, version);
	batch_free(&b);
}

static void apply_clear(struct mvcc *m, uint64_t version, const char *key)
{
	struct batch b;
	batch_init(&b);
	ck_assert_int_eq(batch_clear(&b, key, strlen(key), NULL), RS_OK);
	apply_ok(m, &b, version);
	batch_free(&b);
}

static void apply_clear_range(struct mvcc *m, uint64_t version,
			      const char *begin, const char *end)
{
	struct batch b;
	batch_init(&b);
	ck_assert_int_eq(batch_clear_range(&b, begin, strlen(begin), end,
					   strlen(end), NULL),
			 RS_OK);
	apply_ok(m, &b, version);
	batch_free(&b);
}

/* Expect key to read as want (NULL: not found) at version. */
static void expect_get(const struct mvcc *m, const char *key, uint64_t version,
		       const char *want, uint64_t want_version)
{
	const uint8_t *val = NULL;
	uint32_t val_len = 0;
	uint64_t found = 0;
	int rv = mvcc_get(m, key, strlen(key), version, &val, &val_len, &found);

	if (want == NULL) {
		ck_assert_msg(rv == RS_ENOTFOUND, "get %s@%llu: %s", key,
			      (unsigned long long)version, rs_strerror(rv));
		return;
	}
	ck_assert_msg(rv == RS_OK, "get %s@%llu: %s", key,
		      (unsigned long long)version, rs_strerror(rv));
	ck_assert_uint_eq(val_len, strlen(want));
	ck_assert_mem_eq(val, want, val_len);
	ck_assert_uint_eq(found, want_version);
}

/* Memory figures come from malloc_usable_size, which depends on the heap's
 * history (a reused chunk can be a little larger than asked for), so two
 * indexes with equal content are compared with some slack. */
static void expect_mem_near(uint64_t got, uint64_t want, uint64_t slack)
{
	ck_assert_msg(got + slack >= want && got <= want + slack,
		      "memory %llu bytes, want %llu +- %llu",
		      (unsigned long long)got, (unsigned long long)want,
		      (unsigned long long)slack);
}

static int get_rv(const struct mvcc *m, const char *key, uint64_t version)
{
	const uint8_t *val;
	uint32_t val_len;
	return mvcc_get(m, key, strlen(key), version, &val, &val_len, NULL);
}

/* A range read's results, copied. */
struct tm_item {
	uint8_t key[64];
	uint32_t key_len;
	uint8_t val[128];
	uint32_t val_len;
	uint64_t version;
};

struct tm_list {
	struct tm_item *items;
	size_t n, cap;
	size_t stop_after; /* callback returns non-zero after this many; 0 never */
};

static int tm_collect(void *ctx, const uint8_t *key, uint32_t key_len,
		      const uint8_t *val, uint32_t val_len, uint64_t version)
{
	struct tm_list *l = ctx;
	struct tm_item *it;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->items = realloc(l->items, l->cap * sizeof *l->items);
		ck_assert_ptr_nonnull(l->items);
	}
	ck_assert_uint_le(key_len, sizeof it->key);
	ck_assert_uint_le(val_len, sizeof it->val);
	it = &l->items[l->n++];
	memcpy(it->key, key, key_len);
	it->key_len = key_len;
	if (val_len > 0)
		memcpy(it->val, val, val_len);
	it->val_len = val_len;
	it->version = version;
	return l->stop_after > 0 && l->n >= l->stop_after;
}

static void tm_list_reset(struct tm_list *l)
{
	l->n = 0;
	l->stop_after = 0;
}

/* Range over NUL-free string bounds (end NULL: to the end). */
static int range_str(const struct mvcc *m, const char *begin, const char *end,
		     uint64_t version, size_t limit, struct tm_list *out,
		     bool *more)
{
	return mvcc_range(m, begin, strlen(begin), end, end ? strlen(end) : 0,
			  version, limit, tm_collect, out, more);
}

static void expect_keys(const struct tm_list *l, const char *const *keys,
			size_t n)
{
	ck_assert_uint_eq(l->n, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(l->items[i].key_len, strlen(keys[i]));
		ck_assert_mem_eq(l->items[i].key, keys[i], strlen(keys[i]));
	}
}

/* ---- reads at versions ---- */

START_TEST(test_versions)
{
	struct mvcc *m = mvcc_create(1000);

	ck_assert_uint_eq(mvcc_latest_version(m), 0);
	ck_assert_uint_eq(mvcc_oldest_version(m), 0);
	expect_get(m, "a", 0, NULL, 0); /* version 0: the empty state */
	apply_set(m, 1, "a", "one");
	apply_set(m, 2, "a", "two");
	apply_clear(m, 3, "a");
	apply_set(m, 5, "b", ""); /* an empty value is a value */
	apply_set(m, 6, "a", "three");
	expect_get(m, "a", 0, NULL, 0);
	expect_get(m, "a", 1, "one", 1);
	expect_get(m, "a", 2, "two", 2);
	expect_get(m, "a", 3, NULL, 0);
	expect_get(m, "a", 4, NULL, 0);
	expect_get(m, "a", 5, NULL, 0);
	expect_get(m, "a", 6, "three", 6);
	expect_get(m, "b", 4, NULL, 0);
	expect_get(m, "b", 5, "", 5);
	expect_get(m, "b", 6, "", 5);
	expect_get(m, "c", 6, NULL, 0);
	expect_get(m, "", 6, NULL, 0);
	ck_assert_int_eq(get_rv(m, "a", 7), RS_EFUTURE);
	ck_assert_uint_eq(mvcc_key_count(m), 2);
	check_index(m);
	mvcc_destroy(m);
}
END_TEST

/* Several mutations of one key in one batch: the last one wins. */
START_TEST(test_same_batch)
{
	struct mvcc *m = mvcc_create(1000);
	struct batch b;

	batch_init(&b);
	apply_set(m, 1, "old", "o");
	ck_assert_int_eq(batch_set(&b, "a", 1, "1", 1, NULL), RS_OK);
	ck_assert_int_eq(batch_set(&b, "a", 1, "2", 1, NULL), RS_OK);
	ck_assert_int_eq(batch_set(&b, "new", 3, "n", 1, NULL), RS_OK);
	ck_assert_int_eq(batch_clear(&b, "new", 3, NULL), RS_OK);
	ck_assert_int_eq(batch_clear(&b, "old", 3, NULL), RS_OK);
	ck_assert_int_eq(batch_set(&b, "old", 3, "O", 1, NULL), RS_OK);
	apply_ok(m, &b, 2);
	expect_get(m, "a", 2, "2", 2);
	expect_get(m, "new", 2, NULL, 0);
	expect_get(m, "old", 2, "O", 2);
	expect_get(m, "old", 1, "o", 1);
	ck_assert_uint_eq(mvcc_key_count(m), 2);
	check_index(m);

	ck_assert_int_eq(batch_set(&b, "old", 3, "X", 1, NULL), RS_OK);
	ck_assert_int_eq(batch_clear_range(&b, "a", 1, "z", 1, NULL), RS_OK);
	ck_assert_int_eq(batch_set(&b, "m", 1, "M", 1, NULL), RS_OK);
	apply_ok(m, &b, 3);
	expect_get(m, "old", 3, NULL, 0);
	expect_get(m, "old", 2, "O", 2);
	expect_get(m, "a", 3, NULL, 0);
	expect_get(m, "m", 3, "M", 3);
	ck_assert_uint_eq(mvcc_key_count(m), 1);
	check_index(m);
	batch_free(&b);
	mvcc_destroy(m);
}
END_TEST

START_TEST(test_apply_version)
{
	struct mvcc *m = mvcc_create(10);
	struct batch b;
	uint64_t mem;

	batch_init(&b);
	ck_assert_int_eq(batch_set(&b, "k", 1, "v", 1, NULL), RS_OK);
	b.version = 0; /* not above the initial latest version */
	ck_assert_int_eq(mvcc_apply(m, &b), RS_EVERSION);
	b.version = 5;
	ck_assert_int_eq(mvcc_apply(m, &b), RS_OK);
	mem = mvcc_memory_bytes(m);
	ck_assert_int_eq(batch_set(&b, "k2", 2, "v", 1, NULL), RS_OK);
	b.version = 5;
	ck_assert_int_eq(mvcc_apply(m, &b), RS_EVERSION);
	b.version = 4;
	ck_assert_int_eq(mvcc_apply(m, &b), RS_EVERSION);
	/* Unchanged by the refused batches. */
	ck_assert_uint_eq(mvcc_latest_version(m), 5);
	ck_assert_uint_eq(mvcc_key_count(m), 1);
	ck_assert_uint_eq(mvcc_memory_bytes(m), mem);
	expect_get(m, "k2", 5, NULL, 0);
	check_index(m);
	batch_free(&b);
	mvcc_destroy(m);
}
END_TEST

/* ---- range reads ---- */

/* Keys in byte order: memcmp on the common prefix, then length. */
static const char *const order_keys[] = {"\x01", "a", "a\x01", "ab", "abc",
					 "b", "ba", "\x7f", "\xff", "\xff\xff"};
#define ORDER_N (sizeof order_keys / sizeof order_keys[0])

static struct mvcc *order_index(void)
{
	struct mvcc *m = mvcc_create(1000);
	struct batch b;

	/* Insert in reverse so the order comes from the index. */
	batch_init(&b);
	for (size_t i = ORDER_N; i-- > 0;)
		ck_assert_int_eq(batch_set(&b, order_keys[i], strlen(order_keys[i]),
					   order_keys[i], strlen(order_keys[i]), NULL),
				 RS_OK);
	apply_ok(m, &b, 1);
	batch_free(&b);
	return m;
}

START_TEST(test_range_order)
{
	struct mvcc *m = order_index();
	struct tm_list l = {0};
	bool more = true;

	ck_assert_int_eq(range_str(m, "", NULL, 1, 0, &l, &more), RS_OK);
	expect_keys(&l, order_keys, ORDER_N);
	ck_assert(!more);
	ck_assert_mem_eq(l.items[3].val, "ab", 2);
	ck_assert_uint_eq(l.items[3].version, 1);
	tm_list_reset(&l);
	ck_assert_int_eq(range_str(m, "a", "b", 1, 0, &l, &more), RS_OK);
	expect_keys(&l, order_keys + 1, 4);
	tm_list_reset(&l);
	ck_assert_int_eq(range_str(m, "ab", "ba", 1, 0, &l, NULL), RS_OK);
	expect_keys(&l, order_keys + 3, 3);
	tm_list_reset(&l);
	ck_assert_int_eq(range_str(m, "\xff", NULL, 1, 0, &l, NULL), RS_OK);
	expect_keys(&l, order_keys + 8, 2);
	tm_list_reset(&l);
	ck_assert_int_eq(mvcc_range(m, "a\x00", 2, "ab", 2, 1, 0, tm_collect, &l,
				    NULL),
			 RS_OK); /* "a\0" sorts between "a" and "a\1" */
	expect_keys(&l, order_keys + 2, 1);
	free(l.items);
	check_index(m);
	mvcc_destroy(m);
}
END_TEST

START_TEST(test_range_empty)
{
	struct mvcc *m = order_index();
	struct tm_list l = {0};
	bool more = true;

	ck_assert_int_eq(range_str(m, "b", "b", 1, 0, &l, &more), RS_OK);
	ck_assert_uint_eq(l.n, 0);
	ck_assert(!more);
	more = true;
	ck_assert_int_eq(range_str(m, "c", "a", 1, 0, &l, &more), RS_OK);
	ck_assert_uint_eq(l.n, 0);
	ck_assert(!more);
	ck_assert_int_eq(range_str(m, "abd", "b", 1, 0, &l, &more), RS_OK);
	ck_assert_uint_eq(l.n, 0); /* no key in between */
	ck_assert_int_eq(range_str(m, "\xff\xff\x01", NULL, 1, 0, &l, &more),
			 RS_OK);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(range_str(m, "", NULL, 0, 0, &l, &more), RS_OK);
	ck_assert_uint_eq(l.n, 0); /* nothing existed at version 0 */
	ck_assert_int_eq(range_str(m, "", NULL, 2, 0, &l, &more), RS_EFUTURE);
	ck_assert(!more);
	free(l.items);
	mvcc_destroy(m);
}
END_TEST

/* Page through 100 keys with every limit from 1 to 12, resuming from the
 * last key + "\0"; the pages must add up to the full scan. */
START_TEST(test_range_paging)
{
	struct mvcc *m = mvcc_create(1000);
	struct tm_list l = {0};
	struct batch b;
	char key[16];
	bool more;

	batch_init(&b);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "p%03d", i);
		ck_assert_int_eq(batch_set(&b, key, 4, key, 4, NULL), RS_OK);
	}
	apply_ok(m, &b, 1);
	for (size_t limit = 1; limit <= 12; limit++) {
		uint8_t begin[8] = "";
		size_t begin_len = 0, pages = 0;
		tm_list_reset(&l);
		do {
			size_t before = l.n;
			ck_assert_int_eq(mvcc_range(m, begin, begin_len, NULL, 0, 1,
						    limit, tm_collect, &l, &more),
					 RS_OK);
			ck_assert_uint_le(l.n - before, limit);
			ck_assert(more ? l.n - before == limit : l.n == 100);
			memcpy(begin, l.items[l.n - 1].key, 4);
			begin[4] = '\0';
			begin_len = 5;
			pages++;
		} while (more);
		ck_assert_uint_eq(l.n, 100);
		ck_assert_uint_eq(pages, (100 + limit - 1) / limit);
		for (int i = 0; i < 100; i++) {
			snprintf(key, sizeof key, "p%03d", i);
			ck_assert_mem_eq(l.items[i].key, key, 4);
		}
	}
	free(l.items);
	batch_free(&b);
	mvcc_destroy(m);
}
END_TEST

/* `more` counts only live keys; a callback can stop the scan early. */
START_TEST(test_range_more)
{
	struct mvcc *m = mvcc_create(1000);
	struct tm_list l = {0};
	bool more;

	apply_set(m, 1, "a", "1");
	apply_set(m, 2, "b", "2");
	apply_set(m, 3, "c", "3");
	apply_clear(m, 4, "b");
	apply_clear(m, 5, "c");
	ck_assert_int_eq(range_str(m, "", NULL, 5, 1, &l, &more), RS_OK);
	ck_assert_uint_eq(l.n, 1);
	ck_assert(!more); /* b and c are deleted at 5 */
	tm_list_reset(&l);
	ck_assert_int_eq(range_str(m, "", NULL, 3, 1, &l, &more), RS_OK);
	ck_assert(more); /* but live at 3 */
	tm_list_reset(&l);
	ck_assert_int_eq(range_str(m, "", "c", 3, 2, &l, &more), RS_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(!more); /* c is outside the range */
	tm_list_reset(&l);
	l.stop_after = 2;
	ck_assert_int_eq(range_str(m, "", NULL, 3, 0, &l, &more), RS_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(more);
	tm_list_reset(&l);
	l.stop_after = 3;
	ck_assert_int_eq(range_str(m, "", NULL, 3, 0, &l, &more), RS_OK);
	ck_assert_uint_eq(l.n, 3);
	ck_assert(!more);
	free(l.items);
	mvcc_destroy(m);
}
END_TEST

/* ---- clear range ---- */

START_TEST(test_clear_range)
{
	static const char *const kept[] = {"k00", "k01", "k02", "k03", "k04",
					   "k15", "k16", "k17", "k18", "k19"};
	struct mvcc *m = mvcc_create(1000);
	struct tm_list l = {0};
	struct batch b;
	char key[16];
	uint64_t mem;

	batch_init(&b);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "k%02d", i);
		ck_assert_int_eq(batch_set(&b, key, 3, "v", 1, NULL), RS_OK);
	}
	apply_ok(m, &b, 1);
	apply_clear_range(m, 2, "k05", "k15");
	ck_assert_uint_eq(mvcc_key_count(m), 10);
	ck_assert_int_eq(range_str(m, "", NULL, 2, 0, &l, NULL), RS_OK);
	expect_keys(&l, kept, 10);
	tm_list_reset(&l);
	ck_assert_int_eq(range_str(m, "", NULL, 1, 0, &l, NULL), RS_OK);
	ck_assert_uint_eq(l.n, 20); /* below the clear, all still there */
	expect_get(m, "k07", 1, "v", 1);
	expect_get(m, "k07", 2, NULL, 0);
	/* Written again later: visible from then on, not before. */
	apply_set(m, 3, "k07", "again");
	expect_get(m, "k07", 2, NULL, 0);
	expect_get(m, "k07", 3, "again", 3);
	ck_assert_uint_eq(mvcc_key_count(m), 11);
	/* Clearing what is absent or already deleted adds nothing. */
	mem = mvcc_memory_bytes(m);
	apply_clear_range(m, 4, "x", "y");
	apply_clear(m, 5, "nope");
	apply_clear(m, 6, "k08");
	ck_assert_uint_eq(mvcc_memory_bytes(m), mem);
	apply_clear_range(m, 7, "", "\xff");
	ck_assert_uint_eq(mvcc_key_count(m), 0);
	expect_get(m, "k07", 6, "again", 3);
	expect_get(m, "k00", 6, "v", 1);
	check_index(m);
	free(l.items);
	batch_free(&b);
	mvcc_destroy(m);
}
END_TEST

/* ---- the window and pruning ---- */

START_TEST(test_window_errors)
{
	struct mvcc *m = mvcc_create(10);
	struct rs_buf img;
	struct tm_list l = {0};

	rs_buf_init(&img);
	ck_assert_int_eq(get_rv(m, "a", 1), RS_EFUTURE);
	for (uint64_t v = 1; v <= 30; v++)
		apply_set(m, v, "a", "x");
	ck_assert_uint_eq(mvcc_oldest_version(m), 20);
	ck_assert_int_eq(get_rv(m, "a", 19), RS_ETOOOLD);
	ck_assert_int_eq(get_rv(m, "a", 0), RS_ETOOOLD);
	ck_assert_int_eq(get_rv(m, "a", 20), RS_OK);
	ck_assert_int_eq(get_rv(m, "a", 30), RS_OK);
	ck_assert_int_eq(get_rv(m, "a", 31), RS_EFUTURE);
	ck_assert_int_eq(range_str(m, "", NULL, 19, 0, &l, NULL), RS_ETOOOLD);
	ck_assert_int_eq(range_str(m, "", NULL, 31, 0, &l, NULL), RS_EFUTURE);
	ck_assert_int_eq(mvcc_image_encode(m, 19, &img), RS_ETOOOLD);
	ck_assert_int_eq(mvcc_image_encode(m, 31, &img), RS_EFUTURE);
	ck_assert_uint_eq(img.len, 0);
	ck_assert_uint_eq(l.n, 0);
	/* Versions may jump: the window is in versions, not batches. */
	apply_set(m, 1000, "a", "y");
	ck_assert_uint_eq(mvcc_oldest_version(m), 990);
	expect_get(m, "a", 990, "x", 30);
	check_index(m);
	rs_buf_free(&img);
	mvcc_destroy(m);
}
END_TEST

START_TEST(test_window_zero)
{
	struct mvcc *m = mvcc_create(0), *fresh = mvcc_create(0);

	apply_set(m, 1, "a", "1");
	apply_set(m, 2, "a", "2");
	ck_assert_uint_eq(mvcc_oldest_version(m), 2);
	ck_assert_int_eq(get_rv(m, "a", 1), RS_ETOOOLD);
	expect_get(m, "a", 2, "2", 2);
	apply_clear(m, 3, "a");
	expect_get(m, "a", 3, NULL, 0);
	/* Nothing can see the deleted key any more: it is gone at once. */
	expect_mem_near(mvcc_memory_bytes(m), mvcc_memory_bytes(fresh), 64);
	check_index(m);
	mvcc_destroy(fresh);
	mvcc_destroy(m);
}
END_TEST

/* A hot key written far more often than the window holds: reads across
 * the window stay right and its chain stays bounded. */
START_TEST(test_prune_on_write)
{
	struct mvcc *m = mvcc_create(5);
	uint64_t mem_early = 0;
	char val[16];

	for (uint64_t v = 1; v <= 2000; v++) {
		snprintf(val, sizeof val, "%llu", (unsigned long long)v);
		apply_set(m, v, "hot", val);
		for (uint64_t r = mvcc_oldest_version(m); r <= v; r++) {
			if (r == 0) { /* the empty state */
				expect_get(m, "hot", r, NULL, 0);
				continue;
			}
			snprintf(val, sizeof val, "%llu", (unsigned long long)r);
			expect_get(m, "hot", r, val, r);
		}
		if (v == 20)
			mem_early = mvcc_memory_bytes(m);
	}
	ck_assert_uint_le(mvcc_memory_bytes(m), mem_early + 64);
	check_index(m);
	mvcc_destroy(m);
}
END_TEST

static void fill_keys(struct mvcc *m, uint64_t version, int n)
{
	struct batch b;
	char key[16];

	batch_init(&b);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "key%05d", i);
		ck_assert_int_eq(batch_set(&b, key, strlen(key), "value", 5, NULL),
				 RS_OK);
	}
	apply_ok(m, &b, version);
	batch_free(&b);
}

START_TEST(test_prune_step)
{
	struct mvcc *m = mvcc_create(3);
	struct mvcc *empty = mvcc_create(3);
	uint64_t mem_full, mem_empty;
	size_t freed, total = 0;

	for (uint64_t v = 3; v <= 6; v++) /* the history zz gets below */
		apply_set(empty, v, "zz", "v");
	fill_keys(m, 1, 1000);
	apply_clear_range(m, 2, "key", "kez");
	apply_set(m, 3, "zz", "v");
	ck_assert_uint_eq(mvcc_key_count(m), 1);
	/* Still inside the window: the cleared values are readable. */
	ck_assert_uint_eq(mvcc_prune_step(m, 5000), 0);
	expect_get(m, "key00500", 1, "value", 1);
	for (uint64_t v = 4; v <= 6; v++)
		apply_set(m, v, "zz", "v");
	ck_assert_uint_eq(mvcc_oldest_version(m), 3);
	mem_full = mvcc_memory_bytes(m);
	ck_assert_uint_eq(mvcc_prune_step(m, 0), 0);
	/* Budget-bounded: 100 keys, each a value and a tombstone. */
	freed = mvcc_prune_step(m, 100);
	ck_assert_uint_eq(freed, 200);
	check_index(m);
	while ((freed = mvcc_prune_step(m, 77)) > 0)
		total += freed;
	ck_assert_uint_eq(total, 1800);
	ck_assert_uint_eq(mvcc_key_count(m), 1);
	expect_get(m, "key00500", 6, NULL, 0);
	expect_get(m, "zz", 6, "v", 6);
	mem_empty = mvcc_memory_bytes(empty);
	ck_assert_uint_lt(mvcc_memory_bytes(m), mem_full / 10);
	/* Back to the size of an index that only ever held zz (plus the
	 * prune cursor's buffer). */
	ck_assert_uint_le(mvcc_memory_bytes(m), mem_empty + 128);
	check_index(m);
	mvcc_destroy(empty);
	mvcc_destroy(m);
}
END_TEST

/* The prune cursor is a copy of a key: long keys, and a cursor key that
 * disappears between steps. */
START_TEST(test_prune_cursor)
{
	struct mvcc *m = mvcc_create(1);
	char *keys[10];
	struct batch b;

	batch_init(&b);
	for (int i = 0; i < 10; i++) {
		keys[i] = malloc(2001);
		ck_assert_ptr_nonnull(keys[i]);
		memset(keys[i], 'L', 2000);
		keys[i][1999] = (char)('0' + i);
		keys[i][2000] = '\0';
		ck_assert_int_eq(batch_set(&b, keys[i], 2000, "v", 1, NULL), RS_OK);
	}
	apply_ok(m, &b, 1);
	apply_clear_range(m, 2, "L", "M");
	apply_set(m, 3, "zz", "v"); /* oldest 2: the cleared values go */
	ck_assert_uint_eq(mvcc_prune_step(m, 1), 2); /* L..0; cursor at L..1 */
	/* Passing over L..1 and L..2, the clear trims them away. */
	apply_clear_range(m, 4, keys[1], keys[3]);
	ck_assert_uint_eq(mvcc_prune_step(m, 1), 2); /* L..3 */
	ck_assert_uint_eq(mvcc_prune_step(m, 100), 12); /* L..4 to L..9, zz */
	ck_assert_uint_eq(mvcc_prune_step(m, 100), 0);
	ck_assert_uint_eq(mvcc_key_count(m), 1);
	expect_get(m, "zz", 4, "v", 3);
	check_index(m);
	for (int i = 0; i < 10; i++)
		free(keys[i]);
	batch_free(&b);
	mvcc_destroy(m);
}
END_TEST

/* ---- tree shape ---- */

/* Fill n keys "t%07d" into m, inserted in a random order (seeded). */
static void shuffled_fill(struct mvcc *m, int n, uint64_t *rng)
{
	int *perm = malloc((size_t)n * sizeof *perm);
	struct batch b;
	char key[16];

	ck_assert_ptr_nonnull(perm);
	for (int i = 0; i < n; i++)
		perm[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(testutil_rand(rng) % (uint64_t)(i + 1)), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	batch_init(&b);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "t%07d", perm[i]);
		ck_assert_int_eq(batch_set(&b, key, 8, "v", 1, NULL), RS_OK);
		if (i % 64 == 63 || i == n - 1)
			apply_ok(m, &b, mvcc_latest_version(m) + 1);
	}
	batch_free(&b);
	free(perm);
}

/* Keys arriving in order (an image load, a replay) pack nodes full, at
 * every level: smaller than the same keys inserted shuffled. */
START_TEST(test_append_packs)
{
	struct mvcc *seq = mvcc_create(0), *shuffled = mvcc_create(0);
	uint64_t seed = testutil_seed(), rng = seed, keys;
	const int n = 40000;
	struct rs_buf img;

	shuffled_fill(shuffled, n, &rng);
	rs_buf_init(&img);
	ck_assert_int_eq(mvcc_image_encode(shuffled, mvcc_latest_version(shuffled),
					   &img),
			 RS_OK);
	ck_assert_int_eq(mvcc_image_load(seq, 1, img.data, img.len, &keys, NULL),
			 RS_OK);
	ck_assert_uint_eq(keys, n);
	check_index(seq);
	check_index(shuffled);
	ck_assert_msg(mvcc_memory_bytes(seq) < mvcc_memory_bytes(shuffled),
		      "seed=%llu: in order %llu bytes, shuffled %llu",
		      (unsigned long long)seed,
		      (unsigned long long)mvcc_memory_bytes(seq),
		      (unsigned long long)mvcc_memory_bytes(shuffled));
	rs_buf_free(&img);
	mvcc_destroy(seq);
	mvcc_destroy(shuffled);
}
END_TEST

/* Deleting 15 keys of every 16 must merge the thinned leaves: the tree
 * stays within 2x of a packed one holding the survivors (without merging
 * it would be ~5x: a leaf per survivor). */
START_TEST(test_merge_compacts)
{
	struct mvcc *m = mvcc_create(0), *packed = mvcc_create(0);
	uint64_t seed = testutil_seed(), rng = seed;
	const int n = 8192;
	struct rs_buf img;
	struct batch b;
	char key[16];

	shuffled_fill(m, n, &rng);
	batch_init(&b);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "t%07d", i);
		if (i % 16 != 0)
			ck_assert_int_eq(batch_clear(&b, key, 8, NULL), RS_OK);
		if (i % 256 == 255)
			apply_ok(m, &b, mvcc_latest_version(m) + 1);
	}
	ck_assert_uint_eq(mvcc_key_count(m), n / 16);
	check_index(m);
	rs_buf_init(&img);
	ck_assert_int_eq(mvcc_image_encode(m, mvcc_latest_version(m), &img), RS_OK);
	ck_assert_int_eq(mvcc_image_load(packed, 1, img.data, img.len, NULL, NULL),
			 RS_OK);
	ck_assert_msg(mvcc_memory_bytes(m) <= 2 * mvcc_memory_bytes(packed),
		      "seed=%llu: %llu bytes, packed %llu", (unsigned long long)seed,
		      (unsigned long long)mvcc_memory_bytes(m),
		      (unsigned long long)mvcc_memory_bytes(packed));
	rs_buf_free(&img);
	batch_free(&b);
	mvcc_destroy(packed);
	mvcc_destroy(m);
}
END_TEST

/* ---- images ---- */

/* The full live state at version, as a list. */
static void scan_all(const struct mvcc *m, uint64_t version,
		     struct tm_list *l)
{
	tm_list_reset(l);
	ck_assert_int_eq(mvcc_range(m, "", 0, NULL, 0, version, 0, tm_collect, l,
				    NULL),
			 RS_OK);
}

static void expect_same(const struct tm_list *a, const struct tm_list *b)
{
	ck_assert_uint_eq(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		ck_assert_uint_eq(a->items[i].key_len, b->items[i].key_len);
		ck_assert_mem_eq(a->items[i].key, b->items[i].key,
				 a->items[i].key_len);
		ck_assert_uint_eq(a->items[i].val_len, b->items[i].val_len);
		ck_assert_mem_eq(a->items[i].val, b->items[i].val,
				 a->items[i].val_len);
	}
}

static struct mvcc *image_source(void)
{
	struct mvcc *m = mvcc_create(100);

	fill_keys(m, 1, 300);
	apply_clear_range(m, 2, "key001", "key002");
	apply_set(m, 3, "a", "");
	apply_set(m, 4, "key00150", "back");
	apply_clear(m, 5, "key00299");
	return m;
}

START_TEST(test_image_roundtrip)
{
	struct mvcc *m = image_source();
	struct tm_list want = {0}, got = {0};
	char errmsg[RS_ERRMSG_SIZE];

	for (uint64_t v = 0; v <= 5; v++) {
		struct mvcc *copy = mvcc_create(100);
		struct rs_buf img;
		uint64_t keys = 99;
		rs_buf_init(&img);
		ck_assert_int_eq(rs_buf_append(&img, "hdr", 3), RS_OK);
		ck_assert_int_eq(mvcc_image_encode(m, v, &img), RS_OK);
		ck_assert_mem_eq(img.data, "hdr", 3); /* appended after */
		ck_assert_int_eq(mvcc_image_load(copy, v, img.data + 3, img.len - 3,
						 &keys, errmsg),
				 RS_OK);
		scan_all(m, v, &want);
		scan_all(copy, v, &got);
		expect_same(&want, &got);
		ck_assert_uint_eq(keys, want.n);
		ck_assert_uint_eq(mvcc_key_count(copy), want.n);
		ck_assert_uint_eq(mvcc_latest_version(copy), v);
		ck_assert_uint_eq(mvcc_oldest_version(copy), v);
		ck_assert_int_eq(get_rv(copy, "a", v + 1), RS_EFUTURE);
		if (v > 0)
			ck_assert_int_eq(get_rv(copy, "a", v - 1), RS_ETOOOLD);
		check_index(copy);
		/* It carries on from the image's version. */
		apply_set(copy, v + 1, "zzz", "z");
		expect_get(copy, "zzz", v + 1, "z", v + 1);
		rs_buf_free(&img);
		mvcc_destroy(copy);
	}
	free(want.items);
	free(got.items);
	mvcc_destroy(m);
}
END_TEST

/* Loading replaces whatever the index held. */
START_TEST(test_image_load_replaces)
{
	struct mvcc *m = image_source(), *dst = mvcc_create(100);
	struct mvcc *fresh = mvcc_create(100);
	struct tm_list got = {0};
	struct rs_buf img;
	uint64_t keys;

	rs_buf_init(&img);
	ck_assert_int_eq(mvcc_image_encode(m, 5, &img), RS_OK);
	fill_keys(dst, 7, 50);
	apply_set(dst, 8, "zzz", "gone soon");
	ck_assert_int_eq(mvcc_image_load(dst, 6, img.data, img.len, &keys, NULL),
			 RS_OK);
	ck_assert_int_eq(mvcc_image_load(fresh, 6, img.data, img.len, NULL, NULL),
			 RS_OK);
	ck_assert_uint_eq(mvcc_latest_version(dst), 6);
	expect_get(dst, "zzz", 6, NULL, 0);
	expect_mem_near(mvcc_memory_bytes(dst), mvcc_memory_bytes(fresh), 256);
	scan_all(dst, 6, &got);
	ck_assert_uint_eq(got.n, keys);
	/* An empty image empties the index. */
	ck_assert_int_eq(mvcc_image_load(dst, 9, NULL, 0, &keys, NULL), RS_OK);
	ck_assert_uint_eq(keys, 0);
	ck_assert_uint_eq(mvcc_key_count(dst), 0);
	check_index(dst);
	free(got.items);
	rs_buf_free(&img);
	mvcc_destroy(fresh);
	mvcc_destroy(dst);
	mvcc_destroy(m);
}
END_TEST

/* Cut at every offset: a cut inside an entry is corrupt (and leaves the
 * index as it was); a cut between entries is a valid shorter image, which
 * only the container (a checkpoint's key count and CRC) can tell. */
START_TEST(test_image_truncated)
{
	struct mvcc *m = image_source(), *dst = mvcc_create(100);
	char errmsg[RS_ERRMSG_SIZE];
	struct rs_buf img;
	size_t off = 0, boundaries = 0;
	uint64_t keys;

	rs_buf_init(&img);
	ck_assert_int_eq(mvcc_image_encode(m, 5, &img), RS_OK);
	apply_set(dst, 1, "sentinel", "s");
	for (size_t cut = 1; cut < img.len; cut++) {
		int rv;
		while (off < cut) /* the next entry boundary at or after cut */
			off += 8 + rs_get_u32(img.data + off) +
			       rs_get_u32(img.data + off + 4 + rs_get_u32(img.data + off));
		errmsg[0] = '\0';
		rv = mvcc_image_load(dst, 1, img.data, cut, &keys, errmsg);
		if (off == cut) {
			ck_assert_int_eq(rv, RS_OK);
			boundaries++;
			apply_set(dst, 2, "sentinel", "s");
			continue;
		}
		ck_assert_msg(rv == RS_ECORRUPT, "cut at %zu: %s", cut, rs_strerror(rv));
		ck_assert_msg(strstr(errmsg, "image entry ") != NULL &&
				      strstr(errmsg, "truncated") != NULL,
			      "cut at %zu: errmsg '%s'", cut, errmsg);
		expect_get(dst, "sentinel", mvcc_latest_version(dst), "s",
			   mvcc_latest_version(dst));
	}
	ck_assert_uint_eq(boundaries, mvcc_key_count(m) - 1);
	check_index(dst);
	rs_buf_free(&img);
	mvcc_destroy(dst);
	mvcc_destroy(m);
}
END_TEST

static void put_entry(struct rs_buf *b, const char *key, uint32_t key_len,
		      const char *val, uint32_t val_len)
{
	ck_assert_int_eq(rs_buf_put_u32(b, key_len), RS_OK);
	ck_assert_int_eq(rs_buf_append(b, key, key_len), RS_OK);
	ck_assert_int_eq(rs_buf_put_u32(b, val_len), RS_OK);
	ck_assert_int_eq(rs_buf_append(b, val, val_len), RS_OK);
}

/* Each case: two good entries, then a bad third one (entry 2 at offset
 * 20); the message must name that entry and offset. */
START_TEST(test_image_corrupt)
{
	static const char *const why[] = {
		"key not after", "key not after", "key not after",
		"bad key length", "bad key length", "bad value length"};
	struct mvcc *m = mvcc_create(100);
	char errmsg[RS_ERRMSG_SIZE], *big;
	struct rs_buf img;
	uint64_t keys = 77;
	int i = _i;

	big = calloc(1, RS_KEY_SIZE_MAX + 1);
	ck_assert_ptr_nonnull(big);
	rs_buf_init(&img);
	put_entry(&img, "b", 1, "1", 1);
	put_entry(&img, "c", 1, "22", 2); /* 10 + 11 bytes: entry 2 at 21 */
	switch (i) {
	case 0: put_entry(&img, "a", 1, "", 0); break;  /* out of order */
	case 1: put_entry(&img, "c", 1, "", 0); break;  /* duplicate */
	case 2: put_entry(&img, "b\xff", 2, "", 0); break; /* before "c" */
	case 3: put_entry(&img, "", 0, "", 0); break;   /* empty key */
	case 4: put_entry(&img, big, RS_KEY_SIZE_MAX + 1, "", 0); break;
	case 5:
		ck_assert_int_eq(rs_buf_put_u32(&img, 1), RS_OK);
		ck_assert_int_eq(rs_buf_append(&img, "d", 1), RS_OK);
		ck_assert_int_eq(rs_buf_put_u32(&img, RS_VALUE_SIZE_MAX + 1),
				 RS_OK);
		break;
	}
	ck_assert_int_eq(mvcc_image_load(m, 1, img.data, img.len, &keys, errmsg),
			 RS_ECORRUPT);
	ck_assert_msg(strstr(errmsg, "image entry 2 at offset 21") != NULL &&
			      strstr(errmsg, why[i]) != NULL,
		      "case %d: errmsg '%s'", i, errmsg);
	ck_assert_uint_eq(keys, 77);
	ck_assert_uint_eq(mvcc_key_count(m), 0);
	check_index(m);
	rs_buf_free(&img);
	free(big);
	mvcc_destroy(m);
}
END_TEST

/* ---- memory ---- */

/* The storage benchmark's shape (16-byte keys, 256-byte values), scaled
 * down: the index must stay within twice the raw bytes. */
START_TEST(test_memory_bound)
{
	struct mvcc *m = mvcc_create(1000);
	uint8_t key[16], val[256];
	uint64_t seed = testutil_seed(), rng = seed;
	struct batch b;
	const int n = 20000;
	double ratio;

	memset(val, 'v', sizeof val);
	batch_init(&b);
	for (int i = 0; i < n; i++) {
		uint64_t h = testutil_rand(&rng);
		memcpy(key, &h, 8);
		memcpy(key + 8, &i, sizeof i);
		memset(key + 8 + sizeof i, 0, 8 - sizeof i);
		ck_assert_int_eq(batch_set(&b, key, 16, val, 256, NULL), RS_OK);
		if (i % 100 == 99)
			apply_ok(m, &b, mvcc_latest_version(m) + 1);
	}
	ratio = (double)mvcc_memory_bytes(m) / (n * (16.0 + 256.0));
	ck_assert_msg(ratio <= 2.0, "seed=%llu: index is %.2fx raw",
		      (unsigned long long)seed, ratio);
	ck_assert_uint_eq(mvcc_key_count(m), n);
	check_index(m);
	batch_free(&b);
	mvcc_destroy(m);
}
END_TEST

/* ---- randomized: small key space, every version checked ---- */

#define RM_KEYS 24
#define RM_OPS 3000
#define RM_VMAX (3 * RM_OPS + 1)

/* Keys with shared prefixes, NULs and 0xff bytes, so that byte order
 * (memcmp, then length) and equal 8-byte slices both matter. */
static const struct {
	const char *s;
	size_t len;
} rm_keys[RM_KEYS] = {
	{"\x00", 1},       {"\x00\x00", 2},   {"a", 1},
	{"a\x00", 2},      {"a\x00\x01", 3},  {"ab", 2},
	{"abc", 3},        {"abcdefgh", 8},   {"abcdefgh\x00", 9},
	{"abcdefghi", 9},  {"abcdefgj", 8},   {"b", 1},
	{"ba", 2},         {"k1", 2},         {"k2", 2},
	{"k3", 2},         {"key/0001", 8},   {"key/0001/x", 10},
	{"key/0002", 8},   {"key/00020", 9},  {"z", 1},
	{"\x7f", 1},       {"\xff", 1},       {"\xff\xff", 2},
};

/* The reference: the value id of each key after each version (-1:
 * absent) and the version that wrote it. */
struct rm_model {
	int32_t val[RM_VMAX][RM_KEYS];
	uint64_t wrote[RM_VMAX][RM_KEYS];
	uint64_t latest, window;
	int order[RM_KEYS]; /* key indexes in byte order */
};

static int rm_order_cmp(const void *a, const void *b)
{
	int i = *(const int *)a, j = *(const int *)b;
	return bytes_compare(rm_keys[i].s, rm_keys[i].len, rm_keys[j].s,
			     rm_keys[j].len);
}

/* Value id -> bytes: varied lengths, some empty. */
static size_t rm_value(int32_t id, char *buf)
{
	size_t n = 0;
	if (id % 5 == 0)
		return 0;
	for (int r = 0; r <= id % 4; r++)
		n += (size_t)sprintf(buf + n, "v%d.", id);
	return n;
}

static uint64_t rm_oldest(const struct rm_model *md)
{
	return md->latest > md->window ? md->latest - md->window : 0;
}

/* A bound: a key of the set, a variation of one, or empty. */
static size_t rm_bound(uint64_t *rng, char *buf)
{
	int k = (int)(testutil_rand(rng) % RM_KEYS);
	size_t len = rm_keys[k].len;
	memcpy(buf, rm_keys[k].s, len);
	switch (testutil_rand(rng) % 4) {
	case 0: buf[len++] = '\0'; break; /* just after the key */
	case 1: len = testutil_rand(rng) % (len + 1); break; /* a prefix */
	default: break;
	}
	return len;
}

struct rm_run {
	struct rm_model *md;
	struct mvcc *m;
	uint64_t seed, rng;
	int step;
	int32_t next_id;
};

/* Add one random mutation to b and to the working state w. */
static void rm_mutate(struct rm_run *r, struct batch *b, int32_t *w,
		      uint64_t *wv, uint64_t version)
{
	char val[128], lo[16], hi[16];
	uint64_t x = testutil_rand(&r->rng) % 10;
	int k = (int)(testutil_rand(&r->rng) % RM_KEYS);

	if (x < 6) {
		int32_t id = r->next_id++;
		ck_assert_int_eq(batch_set(b, rm_keys[k].s, rm_keys[k].len, val,
					   rm_value(id, val), NULL), RS_OK);
		w[k] = id;
		wv[k] = version;
	} else if (x < 8) {
		ck_assert_int_eq(batch_clear(b, rm_keys[k].s, rm_keys[k].len, NULL),
				 RS_OK);
		w[k] = -1;
	} else {
		size_t lo_len = rm_bound(&r->rng, lo), hi_len = rm_bound(&r->rng, hi);
		if (bytes_compare(lo, lo_len, hi, hi_len) >= 0)
			return; /* not a valid range: skip this mutation */
		ck_assert_int_eq(batch_clear_range(b, lo, lo_len, hi, hi_len, NULL),
				 RS_OK);
		for (int i = 0; i < RM_KEYS; i++) {
			const char *s = rm_keys[i].s;
			size_t n = rm_keys[i].len;
			if (bytes_compare(s, n, lo, lo_len) >= 0 &&
			    bytes_compare(s, n, hi, hi_len) < 0)
				w[i] = -1;
		}
	}
}

/* One batch of 1-3 mutations, at a version 1-3 above the latest. */
static void rm_apply(struct rm_run *r)
{
	struct rm_model *md = r->md;
	uint64_t v = md->latest + 1 + testutil_rand(&r->rng) % 3;
	int n = 1 + (int)(testutil_rand(&r->rng) % 3);
	struct batch b;

	ck_assert_uint_lt(v, RM_VMAX);
	batch_init(&b);
	for (uint64_t u = md->latest + 1; u <= v; u++) {
		memcpy(md->val[u], md->val[md->latest], sizeof md->val[u]);
		memcpy(md->wrote[u], md->wrote[md->latest], sizeof md->wrote[u]);
	}
	for (int i = 0; i < n; i++)
		rm_mutate(r, &b, md->val[v], md->wrote[v], v);
	b.version = v;
	ck_assert_msg(mvcc_apply(r->m, &b) == RS_OK, "seed=%llu step %d",
		      (unsigned long long)r->seed, r->step);
	md->latest = v;
	batch_free(&b);
}

static uint64_t rm_live(const struct rm_model *md, uint64_t v)
{
	uint64_t n = 0;
	for (int i = 0; i < RM_KEYS; i++)
		n += md->val[v][i] >= 0;
	return n;
}

/* A version around the window, sometimes just outside it. */
static uint64_t rm_version(struct rm_run *r, int *want_rv)
{
	uint64_t lo = rm_oldest(r->md), hi = r->md->latest;
	uint64_t v = lo + testutil_rand(&r->rng) % (hi - lo + 1);
	uint64_t x = testutil_rand(&r->rng) % 10;

	if (x == 0 && lo > 0)
		v = lo - 1 - testutil_rand(&r->rng) % lo;
	else if (x == 1)
		v = hi + 1 + testutil_rand(&r->rng) % 3;
	*want_rv = v < lo ? RS_ETOOOLD : v > hi ? RS_EFUTURE : RS_OK;
	return v;
}

static void rm_check_get(struct rm_run *r)
{
	int k = (int)(testutil_rand(&r->rng) % RM_KEYS), want_rv;
	uint64_t v = rm_version(r, &want_rv), found = 0;
	const uint8_t *val;
	uint32_t val_len;
	char want[128];
	int rv = mvcc_get(r->m, rm_keys[k].s, rm_keys[k].len, v, &val, &val_len,
			  &found);
	int32_t id = want_rv == RS_OK ? r->md->val[v][k] : -1;

	if (want_rv == RS_OK && id < 0)
		want_rv = RS_ENOTFOUND;
	ck_assert_msg(rv == want_rv, "seed=%llu step %d: get key %d @%llu: %s, want %s",
		      (unsigned long long)r->seed, r->step, k,
		      (unsigned long long)v, rs_strerror(rv), rs_strerror(want_rv));
	if (rv != RS_OK)
		return;
	ck_assert_msg(val_len == rm_value(id, want) && memcmp(val, want, val_len) == 0 &&
			      found == r->md->wrote[v][k],
		      "seed=%llu step %d: get key %d @%llu: wrong value",
		      (unsigned long long)r->seed, r->step, k, (unsigned long long)v);
}

/* Compare a range read with the model: the first `limit` live keys in
 * [lo, hi) in byte order, and whether more remain. */
static void rm_check_range(struct rm_run *r, struct tm_list *l)
{
	char lo[16], hi[16], want[128];
	size_t lo_len = rm_bound(&r->rng, lo), hi_len = rm_bound(&r->rng, hi);
	bool open = testutil_rand(&r->rng) % 4 == 0, more = false, want_more = false;
	size_t limit = testutil_rand(&r->rng) % 6, n = 0;
	int want_rv, rv;
	uint64_t v = rm_version(r, &want_rv);

	tm_list_reset(l);
	rv = mvcc_range(r->m, lo, lo_len, open ? NULL : hi, hi_len, v, limit,
			tm_collect, l, &more);
	ck_assert_msg(rv == want_rv, "seed=%llu step %d: range @%llu: %s",
		      (unsigned long long)r->seed, r->step, (unsigned long long)v,
		      rs_strerror(rv));
	for (int j = 0; rv == RS_OK && j < RM_KEYS; j++) {
		int k = r->md->order[j];
		const char *key = rm_keys[k].s;
		size_t key_len = rm_keys[k].len;
		if (bytes_compare(key, key_len, lo, lo_len) < 0 ||
		    (!open && bytes_compare(key, key_len, hi, hi_len) >= 0) ||
		    r->md->val[v][k] < 0)
			continue;
		if (limit > 0 && n == limit) {
			want_more = true;
			break;
		}
		ck_assert_msg(n < l->n && l->items[n].key_len == rm_keys[k].len &&
				      memcmp(l->items[n].key, rm_keys[k].s, rm_keys[k].len) == 0 &&
				      l->items[n].val_len == rm_value(r->md->val[v][k], want) &&
				      memcmp(l->items[n].val, want, l->items[n].val_len) == 0 &&
				      l->items[n].version == r->md->wrote[v][k],
			      "seed=%llu step %d: range @%llu: item %zu wrong",
			      (unsigned long long)r->seed, r->step, (unsigned long long)v, n);
		n++;
	}
	ck_assert_msg(l->n == n && more == want_more,
		      "seed=%llu step %d: range @%llu: %zu items (want %zu), more %d",
		      (unsigned long long)r->seed, r->step, (unsigned long long)v, l->n,
		      n, more);
}

/* Encode at a readable version, load into a fresh index, compare. */
static void rm_check_image(struct rm_run *r, struct tm_list *a,
			   struct tm_list *b)
{
	uint64_t lo = rm_oldest(r->md), keys;
	uint64_t v = lo + testutil_rand(&r->rng) % (r->md->latest - lo + 1);
	struct mvcc *copy = mvcc_create(r->md->window);
	char errmsg[RS_ERRMSG_SIZE];
	struct rs_buf img;

	rs_buf_init(&img);
	ck_assert_int_eq(mvcc_image_encode(r->m, v, &img), RS_OK);
	ck_assert_msg(mvcc_image_load(copy, v, img.data, img.len, &keys, errmsg) ==
			      RS_OK,
		      "seed=%llu step %d: %s", (unsigned long long)r->seed, r->step,
		      errmsg);
	ck_assert_msg(keys == rm_live(r->md, v), "seed=%llu step %d: image keys",
		      (unsigned long long)r->seed, r->step);
	scan_all(r->m, v, a);
	scan_all(copy, v, b);
	expect_same(a, b);
	rs_buf_free(&img);
	mvcc_destroy(copy);
}

static void rm_step(struct rm_run *r, struct tm_list *a, struct tm_list *b)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint64_t x = testutil_rand(&r->rng) % 100;

	rm_apply(r);
	if (x < 10)
		mvcc_prune_step(r->m, 1 + testutil_rand(&r->rng) % 10);
	else if (x < 12)
		rm_check_image(r, a, b);
	for (int i = 0; i < 4; i++)
		rm_check_get(r);
	rm_check_range(r, a);
	ck_assert_msg(mvcc_key_count(r->m) == rm_live(r->md, r->md->latest) &&
			      mvcc_oldest_version(r->m) == rm_oldest(r->md),
		      "seed=%llu step %d: key count or oldest",
		      (unsigned long long)r->seed, r->step);
	ck_assert_msg(mvcc_check(r->m, errmsg) == RS_OK, "seed=%llu step %d: %s",
		      (unsigned long long)r->seed, r->step, errmsg);
}

static const uint64_t rm_windows[] = {0, 1, 4, 25, 1000000};

START_TEST(test_random_model)
{
	struct rm_run r = {0};
	struct tm_list a = {0}, b = {0};

	r.seed = testutil_seed() + (uint64_t)_i;
	r.rng = r.seed;
	r.md = calloc(1, sizeof *r.md);
	ck_assert_ptr_nonnull(r.md);
	r.md->window = rm_windows[_i];
	for (int k = 0; k < RM_KEYS; k++) {
		r.md->val[0][k] = -1;
		r.md->order[k] = k;
	}
	qsort(r.md->order, RM_KEYS, sizeof r.md->order[0], rm_order_cmp);
	r.m = mvcc_create(r.md->window);
	for (r.step = 0; r.step < RM_OPS; r.step++)
		rm_step(&r, &a, &b);
	mvcc_destroy(r.m);
	free(r.md);
	free(a.items);
	free(b.items);
}
END_TEST

/* ---- randomized: many keys, to drive tree splits and merges ---- */

#define RL_KEYS 20000
#define RL_SENTINEL "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"

/* Half the keys share an 8-byte prefix (so slices tie and the full key
 * decides), half start with hashed bytes. */
static size_t rl_key(uint32_t i, char *buf)
{
	if (i % 2 == 0)
		return (size_t)sprintf(buf, "keyspace/%08u", i);
	uint64_t h = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
	memcpy(buf, &h, 8);
	memcpy(buf + 8, &i, 4);
	return 12;
}

struct rl_run {
	struct mvcc *m;
	bool *live;
	uint64_t seed, rng, count;
};

/* A batch of up to 64 random sets and clears, sometimes a clear-range of
 * the shared-prefix keys. */
static void rl_batch(struct rl_run *r, int bias_set)
{
	struct batch b;
	char key[32], lo[32], hi[32];

	batch_init(&b);
	for (int j = 0; j < 64; j++) {
		uint32_t i = (uint32_t)(testutil_rand(&r->rng) % RL_KEYS);
		size_t len = rl_key(i, key);
		bool set = (int)(testutil_rand(&r->rng) % 100) < bias_set;
		if (set)
			ck_assert_int_eq(batch_set(&b, key, len, "v", 1, NULL), RS_OK);
		else
			ck_assert_int_eq(batch_clear(&b, key, len, NULL), RS_OK);
		r->count += set && !r->live[i];
		r->count -= !set && r->live[i];
		r->live[i] = set;
	}
	if (testutil_rand(&r->rng) % 8 == 0) {
		uint32_t i = (uint32_t)(testutil_rand(&r->rng) % RL_KEYS) & ~1u;
		uint32_t e = i + 2 * (uint32_t)(testutil_rand(&r->rng) % 2000);
		ck_assert_int_eq(batch_clear_range(&b, lo, rl_key(i, lo), hi,
						   (size_t)sprintf(hi, "keyspace/%08u", e + 1),
						   NULL), RS_OK);
		for (uint32_t k = i; k <= e && k < RL_KEYS; k += 2) {
			r->count -= r->live[k];
			r->live[k] = false;
		}
	}
	b.version = mvcc_latest_version(r->m) + 1;
	ck_assert_int_eq(mvcc_apply(r->m, &b), RS_OK);
	batch_free(&b);
}

static void rl_verify(struct rl_run *r)
{
	char errmsg[RS_ERRMSG_SIZE] = "", key[32];
	const uint8_t *val;
	uint32_t val_len;

	ck_assert_msg(mvcc_check(r->m, errmsg) == RS_OK, "seed=%llu: %s",
		      (unsigned long long)r->seed, errmsg);
	ck_assert_msg(mvcc_key_count(r->m) == r->count, "seed=%llu: count",
		      (unsigned long long)r->seed);
	for (uint32_t i = 0; i < RL_KEYS; i += 7) {
		size_t len = rl_key(i, key);
		int rv = mvcc_get(r->m, key, len, mvcc_latest_version(r->m), &val,
				  &val_len, NULL);
		ck_assert_msg(rv == (r->live[i] ? RS_OK : RS_ENOTFOUND),
			      "seed=%llu: key %u", (unsigned long long)r->seed, i);
	}
}

/* Grow, shrink by clears (set bias 10%), grow again, then clear all; the
 * tree must end as small as a fresh one. */
START_TEST(test_random_large)
{
	static const int phases[] = {90, 10, 70, 30};
	struct rl_run r = {0};
	struct mvcc *fresh = mvcc_create(2);

	r.seed = testutil_seed();
	r.rng = r.seed;
	r.live = calloc(RL_KEYS, sizeof *r.live);
	r.m = mvcc_create(2);
	for (size_t p = 0; p < sizeof phases / sizeof phases[0]; p++) {
		for (int n = 0; n < 400; n++) {
			rl_batch(&r, phases[p]);
			if (n % 16 == 0)
				mvcc_prune_step(r.m, 500);
		}
		rl_verify(&r);
	}
	/* Above every key: 9 bytes of 0xff; the sentinel is above that. */
	apply_clear_range(r.m, mvcc_latest_version(r.m) + 1, "",
			  "\xff\xff\xff\xff\xff\xff\xff\xff\xff");
	for (uint64_t v = 1; v <= 3; v++) {
		apply_set(r.m, mvcc_latest_version(r.m) + 1, RL_SENTINEL, "end");
		apply_set(fresh, v, RL_SENTINEL, "end");
	}
	while (mvcc_prune_step(r.m, 1000) > 0)
		;
	ck_assert_uint_eq(mvcc_key_count(r.m), 1);
	ck_assert_msg(mvcc_memory_bytes(r.m) <= mvcc_memory_bytes(fresh) + 128,
		      "seed=%llu: %llu bytes left", (unsigned long long)r.seed,
		      (unsigned long long)mvcc_memory_bytes(r.m));
	check_index(r.m);
	free(r.live);
	mvcc_destroy(fresh);
	mvcc_destroy(r.m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mvcc");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_versions);
	tcase_add_test(tc, test_same_batch);
	tcase_add_test(tc, test_apply_version);
	tcase_add_test(tc, test_range_order);
	tcase_add_test(tc, test_range_empty);
	tcase_add_test(tc, test_range_paging);
	tcase_add_test(tc, test_range_more);
	tcase_add_test(tc, test_clear_range);
	tcase_add_test(tc, test_window_errors);
	tcase_add_test(tc, test_window_zero);
	tcase_add_test(tc, test_prune_on_write);
	tcase_add_test(tc, test_prune_step);
	tcase_add_test(tc, test_prune_cursor);
	tcase_add_test(tc, test_append_packs);
	tcase_add_test(tc, test_merge_compacts);
	tcase_add_test(tc, test_image_roundtrip);
	tcase_add_test(tc, test_image_load_replaces);
	tcase_add_test(tc, test_image_truncated);
	tcase_add_loop_test(tc, test_image_corrupt, 0, 6);
	tcase_add_test(tc, test_memory_bound);
	tcase_add_loop_test(tc, test_random_model, 0,
			    (int)(sizeof rm_windows / sizeof rm_windows[0]));
	tcase_add_test(tc, test_random_large);
	suite_add_tcase(s, tc);
	return testutil_run_suite(s);
}
