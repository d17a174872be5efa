/* Tests for the resolver: conflict rules, the window, and a randomized
 * comparison against a brute-force model. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/resolver.h"
#include "tests/unit/testutil.h"

/* ---- helpers: keys as C strings (no NULs) unless a length is given ---- */

static int check_range_n(const struct resolver *r, uint64_t rv,
			 const void *b, uint32_t b_len, const void *e,
			 uint32_t e_len)
{
	const uint8_t *begins[1] = {b};
	const uint8_t *ends[1] = {e};
	return resolver_check(r, rv, begins, &b_len, ends, &e_len, 1);
}

static int check_range(const struct resolver *r, uint64_t rv, const char *b,
		       const char *e)
{
	return check_range_n(r, rv, b, (uint32_t)strlen(b), e,
			     (uint32_t)strlen(e));
}

/* Point read of k: [k, k + "\0"). */
static int check_point(const struct resolver *r, uint64_t rv, const char *k)
{
	uint8_t end[64];
	uint32_t len = (uint32_t)strlen(k);

	ck_assert_uint_lt(len, sizeof(end));
	memcpy(end, k, len);
	end[len] = 0;
	return check_range_n(r, rv, k, len, end, len + 1);
}

static void rec_key(struct resolver *r, uint64_t v, const char *k)
{
	resolver_record_key(r, v, (const uint8_t *)k, (uint32_t)strlen(k));
}

static void rec_range(struct resolver *r, uint64_t v, const char *b,
		      const char *e)
{
	resolver_record_range(r, v, (const uint8_t *)b, (uint32_t)strlen(b),
			      (const uint8_t *)e, (uint32_t)strlen(e));
}

/* ---- fixed cases ---- */

START_TEST(test_nothing_newer)
{
	struct resolver *r = resolver_create(100);

	ck_assert_uint_eq(resolver_oldest_version(r), 0);
	ck_assert_int_eq(check_point(r, 0, "k"), RS_OK);
	rec_key(r, 5, "k");
	rec_range(r, 5, "a", "z");
	ck_assert_int_eq(check_point(r, 5, "k"), RS_OK);
	ck_assert_int_eq(check_point(r, 9, "k"), RS_OK);
	ck_assert_int_eq(check_range(r, 6, "", ""), RS_OK);
	ck_assert_int_eq(resolver_check(r, 1, NULL, NULL, NULL, NULL, 0),
			 RS_OK);
	ck_assert_uint_eq(resolver_size(r), 2);
	resolver_destroy(r);
}
END_TEST

START_TEST(test_point_write_after_read)
{
	struct resolver *r = resolver_create(100);

	rec_key(r, 10, "k");
	ck_assert_int_eq(check_point(r, 9, "k"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 0, "k"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 9, "k2"), RS_OK);
	ck_assert_int_eq(check_point(r, 9, ""), RS_OK);
	ck_assert_int_eq(check_point(r, 9, "j"), RS_OK);
	/* Equal version: the read saw the write. */
	ck_assert_int_eq(check_point(r, 10, "k"), RS_OK);
	resolver_destroy(r);
}
END_TEST

START_TEST(test_many_ranges_one_hit)
{
	struct resolver *r = resolver_create(100);
	const uint8_t *b[3] = {(const uint8_t *)"a", (const uint8_t *)"m",
			       (const uint8_t *)"x"};
	const uint8_t *e[3] = {(const uint8_t *)"b", (const uint8_t *)"m\0",
			       (const uint8_t *)"y"};
	uint32_t bl[3] = {1, 1, 1}, el[3] = {1, 2, 1};

	rec_key(r, 10, "x1");
	ck_assert_int_eq(resolver_check(r, 9, b, bl, e, el, 2), RS_OK);
	ck_assert_int_eq(resolver_check(r, 9, b, bl, e, el, 3),
			 RS_ECONFLICT);
	rec_key(r, 11, "m");
	ck_assert_int_eq(resolver_check(r, 10, b, bl, e, el, 2),
			 RS_ECONFLICT);
	resolver_destroy(r);
}
END_TEST

START_TEST(test_range_read_point_write)
{
	struct resolver *r = resolver_create(100);

	rec_key(r, 10, "b");
	ck_assert_int_eq(check_range(r, 9, "a", "c"), RS_ECONFLICT);
	ck_assert_int_eq(check_range(r, 9, "b", "c"), RS_ECONFLICT);
	ck_assert_int_eq(check_range(r, 9, "a", "b"), RS_OK); /* half-open */
	ck_assert_int_eq(check_range(r, 9, "ba", "c"), RS_OK);
	ck_assert_int_eq(check_range(r, 9, "c", "a"), RS_OK); /* empty */
	ck_assert_int_eq(check_range(r, 9, "a", ""), RS_ECONFLICT); /* to end */
	ck_assert_int_eq(check_range(r, 9, "c", ""), RS_OK);
	ck_assert_int_eq(check_range(r, 9, "", "b\x01"), RS_ECONFLICT);
	ck_assert_int_eq(check_range(r, 10, "a", "c"), RS_OK);
	resolver_destroy(r);
}
END_TEST

START_TEST(test_point_read_in_clear_range)
{
	struct resolver *r = resolver_create(100);

	rec_range(r, 10, "b", "d");
	ck_assert_int_eq(check_point(r, 9, "b"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 9, "c"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 9, "czzz"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 9, "d"), RS_OK);
	ck_assert_int_eq(check_point(r, 9, "a"), RS_OK);
	ck_assert_int_eq(check_point(r, 10, "c"), RS_OK);
	rec_range(r, 11, "x", ""); /* to the end of the key space */
	ck_assert_int_eq(check_point(r, 10, "zzz"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 10, "c"), RS_OK);
	/* Point writes after the range do not hide it. */
	rec_key(r, 12, "q");
	ck_assert_int_eq(check_point(r, 9, "c"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 11, "zzz"), RS_OK);
	resolver_destroy(r);
}
END_TEST

START_TEST(test_range_vs_range)
{
	struct resolver *r = resolver_create(100);

	rec_range(r, 10, "b", "d");
	ck_assert_int_eq(check_range(r, 9, "c", "e"), RS_ECONFLICT);
	ck_assert_int_eq(check_range(r, 9, "a", "c"), RS_ECONFLICT);
	ck_assert_int_eq(check_range(r, 9, "a", "z"), RS_ECONFLICT);
	ck_assert_int_eq(check_range(r, 9, "bb", "bc"), RS_ECONFLICT);
	/* Adjacent half-open ranges do not overlap, on either side. */
	ck_assert_int_eq(check_range(r, 9, "d", "e"), RS_OK);
	ck_assert_int_eq(check_range(r, 9, "a", "b"), RS_OK);
	/* A shorter prefix sorts first: "a" < "a\0" < "b". */
	ck_assert_int_eq(check_range_n(r, 9, "a", 1, "b\0", 2), RS_ECONFLICT);
	ck_assert_int_eq(check_range(r, 9, "d", ""), RS_OK);
	ck_assert_int_eq(check_range(r, 9, "cz", ""), RS_ECONFLICT);
	/* Empty ranges are not kept and conflict with nothing. */
	rec_range(r, 11, "m", "m");
	rec_range(r, 11, "n", "m");
	ck_assert_uint_eq(resolver_size(r), 1);
	ck_assert_int_eq(check_range(r, 10, "a", ""), RS_OK);
	resolver_destroy(r);
}
END_TEST

START_TEST(test_too_old)
{
	struct resolver *r = resolver_create(10);

	rec_key(r, 50, "a");
	rec_key(r, 100, "b");
	resolver_prune(r);
	ck_assert_uint_eq(resolver_oldest_version(r), 90);
	ck_assert_uint_eq(resolver_size(r), 1);
	ck_assert_int_eq(check_point(r, 89, "zz"), RS_ETOOOLD);
	/* A blind write has nothing to check, so it is never too old. */
	ck_assert_int_eq(resolver_check(r, 89, NULL, NULL, NULL, NULL, 0),
			 RS_OK);
	ck_assert_int_eq(check_point(r, 90, "b"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 90, "a"), RS_OK);

	resolver_reset(r, 200);
	ck_assert_uint_eq(resolver_oldest_version(r), 200);
	ck_assert_uint_eq(resolver_size(r), 0);
	ck_assert_int_eq(check_point(r, 199, "b"), RS_ETOOOLD);
	ck_assert_int_eq(check_point(r, 200, "b"), RS_OK);
	rec_key(r, 201, "b");
	ck_assert_int_eq(check_point(r, 200, "b"), RS_ECONFLICT);
	/* Prune never lowers oldest below the reset point. */
	resolver_prune(r);
	ck_assert_uint_eq(resolver_oldest_version(r), 200);
	resolver_destroy(r);
}
END_TEST

START_TEST(test_prune_keeps_newer_hash_entry)
{
	struct resolver *r = resolver_create(10);

	rec_key(r, 5, "k");
	rec_key(r, 50, "k");
	rec_key(r, 50, "k"); /* twice in one batch */
	rec_key(r, 55, "x");
	resolver_prune(r); /* cut 45: drops k@5 only */
	ck_assert_uint_eq(resolver_oldest_version(r), 45);
	ck_assert_uint_eq(resolver_size(r), 3);
	ck_assert_int_eq(check_point(r, 49, "k"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 50, "k"), RS_OK);
	ck_assert_int_eq(check_point(r, 50, "x"), RS_ECONFLICT);

	rec_key(r, 58, "y");
	rec_key(r, 70, "z");
	resolver_prune(r); /* cut 60: drops both k@50, x@55 and y@58 */
	ck_assert_uint_eq(resolver_size(r), 1);
	ck_assert_int_eq(check_point(r, 60, "k"), RS_OK);
	ck_assert_int_eq(check_point(r, 60, "z"), RS_ECONFLICT);
	rec_key(r, 71, "k"); /* k is back in the hash */
	ck_assert_int_eq(check_point(r, 70, "k"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 71, "k"), RS_OK);
	resolver_destroy(r);
}
END_TEST

START_TEST(test_prune_mid_window_key)
{
	struct resolver *r = resolver_create(10);

	rec_key(r, 5, "k");
	rec_key(r, 12, "k");
	rec_key(r, 20, "x");
	resolver_prune(r); /* cut 10: k@5 dropped, k@12 must still conflict */
	ck_assert_uint_eq(resolver_oldest_version(r), 10);
	ck_assert_int_eq(check_point(r, 11, "k"), RS_ECONFLICT);
	ck_assert_int_eq(check_range(r, 11, "a", "z"), RS_ECONFLICT);
	ck_assert_int_eq(check_point(r, 12, "k"), RS_OK);
	resolver_destroy(r);
}
END_TEST

/* Many distinct keys through a small window: exercises hash growth and
 * backward-shift deletion across long probe runs. */
START_TEST(test_many_keys)
{
	const uint64_t n = 50000, window = 1000;
	struct resolver *r = resolver_create(window);
	char key[32];

	for (uint64_t v = 1; v <= n; v++) {
		snprintf(key, sizeof(key), "key-%llu", (unsigned long long)v);
		rec_key(r, v, key);
		if (v % 97 == 0)
			resolver_prune(r);
	}
	resolver_prune(r);
	ck_assert_uint_eq(resolver_oldest_version(r), n - window);
	ck_assert_uint_eq(resolver_size(r), window + 1);
	for (uint64_t v = 1; v <= n; v++) {
		uint64_t rv = v > n - window ? v - 1 : n - window;
		int want = v > n - window ? RS_ECONFLICT : RS_OK;
		snprintf(key, sizeof(key), "key-%llu", (unsigned long long)v);
		ck_assert_msg(check_point(r, rv, key) == want, "key %s", key);
		if (v > n - window)
			ck_assert_int_eq(check_point(r, v, key), RS_OK);
	}
	resolver_destroy(r);
}
END_TEST

/* ---- randomized comparison with a brute-force model ---- */

#define MODEL_KEY_MAX 4

struct model_key {
	uint8_t b[MODEL_KEY_MAX + 1];
	uint32_t len;
	bool inf; /* an empty end: past every key */
};

struct model_write {
	uint64_t version;
	struct model_key begin, end;
};

struct model {
	struct model_write *w;
	size_t n, cap;
	uint64_t oldest, newest, window;
};

/* Independent of the resolver's comparison: ordering by lexicographic
 * byte-by-byte walk. */
static int model_cmp(const struct model_key *a, const struct model_key *b)
{
	if (a->inf || b->inf)
		return (int)a->inf - (int)b->inf;
	for (uint32_t i = 0;; i++) {
		if (i == a->len || i == b->len)
			return (i < b->len) ? -1 : (i < a->len) ? 1 : 0;
		if (a->b[i] != b->b[i])
			return a->b[i] < b->b[i] ? -1 : 1;
	}
}

/* [b1,e1) and [b2,e2) share a key iff max(begins) < min(ends). */
static bool model_overlap(const struct model_key *b1,
			  const struct model_key *e1,
			  const struct model_key *b2,
			  const struct model_key *e2)
{
	const struct model_key *lo = model_cmp(b1, b2) >= 0 ? b1 : b2;
	const struct model_key *hi = model_cmp(e1, e2) <= 0 ? e1 : e2;
	return model_cmp(lo, hi) < 0;
}

static void model_rand_key(uint64_t *st, struct model_key *k)
{
	static const uint8_t alphabet[4] = {0x00, 0x01, 'a', 0xff};

	k->len = (uint32_t)(testutil_rand(st) % MODEL_KEY_MAX);
	k->inf = false;
	for (uint32_t i = 0; i < k->len; i++)
		k->b[i] = alphabet[testutil_rand(st) % 4];
}

/* The range [k, k + "\0") as an end key. */
static void model_point_end(const struct model_key *k, struct model_key *e)
{
	*e = *k;
	e->b[e->len++] = 0;
}

static void model_add(struct model *m, uint64_t v, const struct model_key *b,
		      const struct model_key *e)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->w = realloc(m->w, m->cap * sizeof(*m->w));
		ck_assert_ptr_nonnull(m->w);
	}
	m->w[m->n].version = v;
	m->w[m->n].begin = *b;
	m->w[m->n].end = *e;
	m->n++;
	m->newest = v;
}

static int model_check(const struct model *m, uint64_t rv,
		       const struct model_key *b, const struct model_key *e,
		       uint32_t n)
{
	if (n == 0)
		return RS_OK; /* a blind write never conflicts */
	if (rv < m->oldest)
		return RS_ETOOOLD;
	for (size_t i = 0; i < m->n; i++) {
		if (m->w[i].version <= rv)
			continue; /* full scan: no reliance on version order */
		for (uint32_t j = 0; j < n; j++)
			if (model_overlap(&m->w[i].begin, &m->w[i].end, &b[j],
					  &e[j]))
				return RS_ECONFLICT;
	}
	return RS_OK;
}

/* Writes the resolver should still hold: the non-empty ones at or above
 * the last prune's cut. */
static size_t model_size(const struct model *m, uint64_t cut)
{
	size_t count = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->w[i].version >= cut &&
		    model_cmp(&m->w[i].begin, &m->w[i].end) < 0)
			count++;
	return count;
}

static void random_record(struct resolver *r, struct model *m, uint64_t *st,
			  uint64_t v)
{
	struct model_key b, e;

	model_rand_key(st, &b);
	if (testutil_rand(st) % 4 != 0) {
		model_point_end(&b, &e);
		resolver_record_key(r, v, b.b, b.len);
	} else {
		model_rand_key(st, &e);
		e.inf = e.len == 0;
		resolver_record_range(r, v, b.b, b.len, e.b, e.len);
	}
	model_add(m, v, &b, &e);
}

static void random_check(struct resolver *r, struct model *m, uint64_t *st,
			 uint64_t seed, int step)
{
	struct model_key b[4], e[4];
	const uint8_t *bp[4], *ep[4];
	uint32_t bl[4], el[4];
	uint32_t n = (uint32_t)(testutil_rand(st) % 5);
	uint64_t back = testutil_rand(st) % (m->window + 8);
	uint64_t rv = m->newest > back ? m->newest - back : 0;

	for (uint32_t i = 0; i < n; i++) {
		model_rand_key(st, &b[i]);
		if (testutil_rand(st) % 2 == 0) {
			model_point_end(&b[i], &e[i]);
		} else {
			model_rand_key(st, &e[i]);
			e[i].inf = e[i].len == 0;
		}
		bp[i] = b[i].b, bl[i] = b[i].len;
		ep[i] = e[i].b, el[i] = e[i].len;
	}
	int got = resolver_check(r, rv, bp, bl, ep, el, n);
	int want = model_check(m, rv, b, e, n);
	ck_assert_msg(got == want,
		      "seed=%llu step=%d window=%llu rv=%llu n=%u: got %s, "
		      "want %s",
		      (unsigned long long)seed, step,
		      (unsigned long long)m->window, (unsigned long long)rv, n,
		      rs_strerror(got), rs_strerror(want));
}

/* Drop what the resolver must have dropped, so the brute force stays
 * cheap: a read at rv >= oldest never looks at a write below oldest. */
static void model_compact(struct model *m)
{
	size_t k = 0;

	if (m->n <= 4096 || m->w[0].version >= m->oldest)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (m->w[i].version >= m->oldest)
			m->w[k++] = m->w[i];
	m->n = k;
}

static const uint64_t random_windows[] = {0, 3, 40, 100000};

START_TEST(test_random_vs_model)
{
	uint64_t seed = testutil_seed();
	uint64_t st = seed ^ (uint64_t)(_i + 1) * 0x9e3779b97f4a7c15ull;
	struct model m = {.window = random_windows[_i]};
	struct resolver *r = resolver_create(m.window);
	uint64_t v = 1, cut = 0;

	for (int step = 0; step < 30000; step++) {
		uint64_t op = testutil_rand(&st) % 100;
		if (op < 45) {
			v += testutil_rand(&st) % 3; /* 0: same batch */
			random_record(r, &m, &st, v);
		} else if (op < 90) {
			random_check(r, &m, &st, seed, step);
		} else if (op < 99) {
			resolver_prune(r);
			cut = m.newest > m.window ? m.newest - m.window : 0;
			m.oldest = cut > m.oldest ? cut : m.oldest;
		} else if (testutil_rand(&st) % 20 == 0) {
			v += testutil_rand(&st) % 10;
			resolver_reset(r, v);
			m.n = 0;
			m.oldest = m.newest = cut = v;
		}
		ck_assert_msg(resolver_oldest_version(r) == m.oldest,
			      "seed=%llu step=%d: oldest %llu want %llu",
			      (unsigned long long)seed, step,
			      (unsigned long long)resolver_oldest_version(r),
			      (unsigned long long)m.oldest);
		if (op >= 90 || step % 64 == 0) /* O(model) per call */
			ck_assert_msg(resolver_size(r) == model_size(&m, cut),
				      "seed=%llu step=%d: size %zu want %zu",
				      (unsigned long long)seed, step,
				      resolver_size(r), model_size(&m, cut));
		model_compact(&m);
	}
	resolver_destroy(r);
	free(m.w);
}
END_TEST

static Suite *resolver_suite(void)
{
	Suite *s = suite_create("resolver");
	TCase *tc = tcase_create("rules");
	TCase *tr = tcase_create("random");

	tcase_add_test(tc, test_nothing_newer);
	tcase_add_test(tc, test_point_write_after_read);
	tcase_add_test(tc, test_many_ranges_one_hit);
	tcase_add_test(tc, test_range_read_point_write);
	tcase_add_test(tc, test_point_read_in_clear_range);
	tcase_add_test(tc, test_range_vs_range);
	tcase_add_test(tc, test_too_old);
	tcase_add_test(tc, test_prune_keeps_newer_hash_entry);
	tcase_add_test(tc, test_prune_mid_window_key);
	tcase_add_test(tc, test_many_keys);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	tcase_add_loop_test(tr, test_random_vs_model, 0,
			    (int)(sizeof(random_windows) /
				  sizeof(random_windows[0])));
	tcase_set_timeout(tr, 30);
	suite_add_tcase(s, tr);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(resolver_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
