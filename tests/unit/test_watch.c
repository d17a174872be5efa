/*
 * Tests of the watch hub (raftstore/watch.c): registration from the next
 * change or from a past version, delivery in version order with none lost
 * and none repeated across the replay of history and live changes,
 * filtering to the watched range (clear-ranges clipped to it), refusal of
 * a start version older than the retained history (RS_ECOMPACTED), the
 * reset after a snapshot install, and cancellation, also from inside a
 * delivery.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/watch.h"
#include "tests/unit/testutil.h"

#define SEEN_MAX 4096

/* A watcher and what it was given, as text: one line per change,
 * "version: mutation; mutation; ..." with "set k=v", "clear k" and
 * "clear [b,e)". */
struct rec {
	struct watcher w;
	struct watch_hub *hub;
	unsigned changes;
	uint64_t last_version;
	bool remove_self_after_one;
	char seen[SEEN_MAX];
};

static void rec_printf(struct rec *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rec_printf(struct rec *r, const char *fmt, ...)
{
	size_t used = strlen(r->seen);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->seen + used, SEEN_MAX - used, fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && (size_t)n < SEEN_MAX - used);
}

static void deliver(struct watcher *w, const struct batch *b)
{
	struct rec *r = w->data;
	struct mutation m;
	size_t pos = 0;

	ck_assert_msg(b->version > r->last_version,
		      "version %llu delivered after %llu",
		      (unsigned long long)b->version,
		      (unsigned long long)r->last_version);
	ck_assert_uint_gt(b->count, 0);
	r->last_version = b->version;
	r->changes++;
	rec_printf(r, "%llu:", (unsigned long long)b->version);
	while (batch_next(b, &pos, &m)) {
		const char *k = (const char *)m.key, *v = (const char *)m.val;
		if (m.type == MUT_SET)
			rec_printf(r, " set %.*s=%.*s;", (int)m.key_len, k,
				   (int)m.val_len, v);
		else if (m.type == MUT_CLEAR)
			rec_printf(r, " clear %.*s;", (int)m.key_len, k);
		else
			rec_printf(r, " clear [%.*s,%.*s);", (int)m.key_len, k,
				   (int)m.val_len, v);
	}
	rec_printf(r, "\n");
	if (r->remove_self_after_one)
		watch_remove(r->hub, w);
}

/* Batch at version with "set k=v" / "clear k" / "range b e" items. */
static void apply(struct watch_hub *h, uint64_t version, const char *items)
{
	char copy[256], *save = NULL;
	struct batch b;

	batch_init(&b);
	b.version = version;
	b.epoch = 1;
	snprintf(copy, sizeof copy, "%s", items);
	for (char *op = strtok_r(copy, " ", &save); op != NULL;
	     op = strtok_r(NULL, " ", &save)) {
		char *a = strtok_r(NULL, " ", &save);
		ck_assert_ptr_nonnull(a);
		if (strcmp(op, "set") == 0) {
			char *eq = strchr(a, '=');
			ck_assert_ptr_nonnull(eq);
			int rv = batch_set(&b, a, (size_t)(eq - a), eq + 1,
					   strlen(eq + 1), NULL);
			ck_assert_int_eq(rv, RS_OK);
		} else if (strcmp(op, "clear") == 0) {
			ck_assert_int_eq(batch_clear(&b, a, strlen(a), NULL),
					 RS_OK);
		} else {
			char *e = strtok_r(NULL, " ", &save);
			ck_assert_str_eq(op, "range");
			ck_assert_ptr_nonnull(e);
			ck_assert_int_eq(batch_clear_range(&b, a, strlen(a), e,
							   strlen(e), NULL),
					 RS_OK);
		}
	}
	watch_hub_applied(h, &b);
	batch_free(&b);
}

/* Watch [begin, end) ("" end: unbounded) from from_version. */
static int watch(struct watch_hub *h, struct rec *r, const char *begin,
		 const char *end, uint64_t from_version)
{
	memset(r, 0, sizeof *r);
	r->w.data = r;
	r->hub = h;
	return watch_add(h, &r->w, (const uint8_t *)begin,
			 (uint32_t)strlen(begin), (const uint8_t *)end,
			 (uint32_t)strlen(end), from_version, deliver);
}

/* End every live watch, then free the hub. */
static void hub_done(struct watch_hub *h)
{
	struct watcher *w;

	while ((w = watch_hub_first(h)) != NULL)
		watch_remove(h, w);
	ck_assert_ptr_null(watch_hub_first(h));
	watch_hub_destroy(h);
}

START_TEST(test_from_next_change_sees_only_new_ones)
{
	struct watch_hub *h = watch_hub_create(100, 0);
	struct rec r;

	apply(h, 101, "set a=1");
	ck_assert_int_eq(watch(h, &r, "a", "z", 0), RS_OK);
	ck_assert_uint_eq(r.changes, 0);
	apply(h, 102, "set b=2");
	apply(h, 105, "set a=3 clear b");
	ck_assert_str_eq(r.seen, "102: set b=2;\n105: set a=3; clear b;\n");
	hub_done(h);
}
END_TEST

/* From a past version: the retained history first, then live changes,
 * in version order, each exactly once. */
START_TEST(test_history_then_live_in_order)
{
	struct watch_hub *h = watch_hub_create(0, 0);
	struct rec r;

	apply(h, 1, "set a=1");
	apply(h, 2, "set a=2");
	apply(h, 3, "set b=3");
	ck_assert_int_eq(watch(h, &r, "a", "", 2), RS_OK);
	ck_assert_str_eq(r.seen, "2: set a=2;\n3: set b=3;\n");
	apply(h, 4, "set c=4");
	ck_assert_str_eq(r.seen, "2: set a=2;\n3: set b=3;\n4: set c=4;\n");
	ck_assert_uint_eq(r.changes, 3);
	hub_done(h);
}
END_TEST

/* Only mutations inside [begin, end) are delivered; a batch with none is
 * not delivered at all; a clear-range is clipped to the watched range. */
START_TEST(test_range_filter_and_clipping)
{
	struct watch_hub *h = watch_hub_create(0, 0);
	struct rec app, all;

	ck_assert_int_eq(watch(h, &app, "app/", "app0", 0), RS_OK);
	ck_assert_int_eq(watch(h, &all, "", "", 0), RS_OK);
	apply(h, 1, "set app/x=1 set apq=2 set ap=3 set app0=4");
	apply(h, 2, "set other=5");
	apply(h, 3, "range a b");
	apply(h, 4, "range app/m q clear app/x");
	apply(h, 5, "range 0 app/");
	ck_assert_str_eq(app.seen, "1: set app/x=1;\n"
				   "3: clear [app/,app0);\n"
				   "4: clear [app/m,app0); clear app/x;\n");
	ck_assert_uint_eq(app.changes, 3);
	ck_assert_uint_eq(all.changes, 5);
	ck_assert_str_eq(all.seen,
			 "1: set app/x=1; set apq=2; set ap=3; set app0=4;\n"
			 "2: set other=5;\n3: clear [a,b);\n"
			 "4: clear [app/m,q); clear app/x;\n"
			 "5: clear [0,app/);\n");
	hub_done(h);
}
END_TEST

/* A change inside the range but at a version the watch already passed
 * (from_version) is not delivered again. */
START_TEST(test_from_version_skips_earlier_history)
{
	struct watch_hub *h = watch_hub_create(0, 0);
	struct rec r;

	apply(h, 10, "set k=1");
	apply(h, 20, "set k=2");
	apply(h, 30, "set k=3");
	ck_assert_int_eq(watch(h, &r, "k", "l", 21), RS_OK);
	ck_assert_str_eq(r.seen, "30: set k=3;\n");
	hub_done(h);
}
END_TEST

/* With a small budget the oldest batches are dropped: a start version
 * below what is kept is refused (nothing delivered, the hub unchanged);
 * the oldest servable one works. */
START_TEST(test_compacted_start_refused)
{
	struct watch_hub *h = watch_hub_create(0, 1);
	struct rec old, oldest;
	uint64_t first;

	for (uint64_t v = 1; v <= 10; v++)
		apply(h, v, "set k=x");
	first = watch_hub_oldest(h);
	ck_assert_uint_gt(first, 1); /* history was dropped ... */
	ck_assert_uint_le(first, 10); /* ... but the newest is kept */
	ck_assert_int_eq(watch(h, &old, "", "", first - 1), RS_ECOMPACTED);
	ck_assert_uint_eq(old.changes, 0);
	ck_assert_ptr_null(watch_hub_first(h));
	ck_assert_int_eq(watch(h, &oldest, "", "", first), RS_OK);
	ck_assert_uint_eq(oldest.changes, 10 - first + 1);
	ck_assert_uint_eq(oldest.last_version, 10);
	hub_done(h);
}
END_TEST

/* After a snapshot install the history is gone: only versions after the
 * snapshot can be watched. */
START_TEST(test_reset_drops_history)
{
	struct watch_hub *h = watch_hub_create(0, 0);
	struct rec before, after;

	apply(h, 1, "set a=1");
	apply(h, 2, "set a=2");
	watch_hub_reset(h, 50);
	ck_assert_uint_eq(watch_hub_oldest(h), 51);
	ck_assert_int_eq(watch(h, &before, "", "", 2), RS_ECOMPACTED);
	ck_assert_int_eq(watch(h, &after, "", "", 51), RS_OK);
	ck_assert_uint_eq(after.changes, 0);
	apply(h, 51, "set a=51");
	ck_assert_str_eq(after.seen, "51: set a=51;\n");
	hub_done(h);
}
END_TEST

START_TEST(test_removed_watch_gets_nothing)
{
	struct watch_hub *h = watch_hub_create(0, 0);
	struct rec a, b, c;

	ck_assert_int_eq(watch(h, &a, "", "", 0), RS_OK);
	ck_assert_int_eq(watch(h, &b, "", "", 0), RS_OK);
	ck_assert_int_eq(watch(h, &c, "", "", 0), RS_OK);
	apply(h, 1, "set k=1");
	watch_remove(h, &b.w); /* the middle of the list */
	apply(h, 2, "set k=2");
	ck_assert_uint_eq(a.changes, 2);
	ck_assert_uint_eq(b.changes, 1);
	ck_assert_uint_eq(c.changes, 2);
	hub_done(h);
}
END_TEST

/* A watcher may end itself from its delivery (the service does when a
 * client falls behind); the others still get the change. */
START_TEST(test_remove_self_during_delivery)
{
	struct watch_hub *h = watch_hub_create(0, 0);
	struct rec quitter, stayer, other;

	ck_assert_int_eq(watch(h, &stayer, "", "", 0), RS_OK);
	ck_assert_int_eq(watch(h, &quitter, "", "", 0), RS_OK);
	ck_assert_int_eq(watch(h, &other, "", "", 0), RS_OK);
	quitter.remove_self_after_one = true;
	apply(h, 1, "set k=1");
	apply(h, 2, "set k=2");
	ck_assert_uint_eq(quitter.changes, 1);
	ck_assert_uint_eq(stayer.changes, 2);
	ck_assert_uint_eq(other.changes, 2);
	hub_done(h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("watch");
	TCase *tc = testutil_tcase(s, "delivery", NULL, NULL, 10);

	tcase_add_test(tc, test_from_next_change_sees_only_new_ones);
	tcase_add_test(tc, test_history_then_live_in_order);
	tcase_add_test(tc, test_range_filter_and_clipping);
	tcase_add_test(tc, test_from_version_skips_earlier_history);
	tc = testutil_tcase(s, "history", NULL, NULL, 10);
	tcase_add_test(tc, test_compacted_start_refused);
	tcase_add_test(tc, test_reset_drops_history);
	tc = testutil_tcase(s, "cancel", NULL, NULL, 10);
	tcase_add_test(tc, test_removed_watch_gets_nothing);
	tcase_add_test(tc, test_remove_self_during_delivery);
	return testutil_run_suite(s);
}
