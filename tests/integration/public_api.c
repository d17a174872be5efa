/*
 * public_api: the promises of include/raftstore.h, checked call by call
 * against a running cluster through libraftstore.so (linked as a program
 * outside the tree would link it: the public header only).
 *
 * tests/integration/test_public_api.py starts a three-node cluster and
 * runs this with RS_API_ENDPOINTS set; each Check test uses its own keys
 * (prefixed by the test's name), so the tests do not see each other.
 * `public_api watch-until-error` is the second mode: it watches a prefix,
 * prints "event VERSION" per event, and prints "ended CODE" when the watch
 * ends (the driver kills the node under it).
 */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "include/raftstore.h"
#include "tests/unit/testutil.h"

static struct raftstore *db;

static const char *endpoints(void)
{
	const char *e = getenv("RS_API_ENDPOINTS");

	ck_assert_msg(e != NULL, "RS_API_ENDPOINTS is not set");
	return e;
}

static void setup(void)
{
	char errmsg[RAFTSTORE_ERRMSG_SIZE];

	ck_assert_int_eq(raftstore_open(&db, endpoints(), 10000, errmsg),
			 RAFTSTORE_OK);
}

static void teardown(void)
{
	raftstore_close(db);
	db = NULL;
}

#define CK_OK(call)                                                        \
	do {                                                               \
		int rv_ = (call);                                          \
		ck_assert_msg(rv_ == RAFTSTORE_OK, "%s: %s (%s)", #call,   \
			      raftstore_strerror(rv_), raftstore_errmsg(db)); \
	} while (0)

static uint64_t put_str(const char *key, const char *value)
{
	uint64_t version = 0;

	CK_OK(raftstore_put(db, key, strlen(key), value, strlen(value),
			    &version));
	ck_assert_uint_gt(version, 0);
	return version;
}

START_TEST(test_open_rejects_bad_endpoints)
{
	char errmsg[RAFTSTORE_ERRMSG_SIZE] = "";
	struct raftstore *bad = (struct raftstore *)1;

	ck_assert_int_eq(raftstore_open(&bad, "127.0.0.1:7101,nohost", 0,
					errmsg),
			 RAFTSTORE_EINVAL);
	ck_assert_ptr_null(bad);
	ck_assert_msg(strstr(errmsg, "nohost") != NULL, "%s", errmsg);
	ck_assert_int_eq(raftstore_open(&bad, NULL, 0, NULL), RAFTSTORE_EINVAL);
	ck_assert_str_eq(raftstore_strerror(RAFTSTORE_ECONFLICT),
			 "transaction conflict");
	ck_assert_str_eq(raftstore_version(), PACKAGE_VERSION);
}
END_TEST

START_TEST(test_get_put_delete)
{
	static const char key[] = "gpd/k\0with nul";
	static const char val[] = "v\0\xff bytes";
	struct raftstore_value v;
	uint64_t put_version, del_version;

	ck_assert_int_eq(raftstore_get(db, key, sizeof key - 1,
				       RAFTSTORE_LINEARIZABLE, &v),
			 RAFTSTORE_ENOTFOUND);
	ck_assert_ptr_null(v.data);
	ck_assert_uint_gt(v.read_version, 0);

	CK_OK(raftstore_put(db, key, sizeof key - 1, val, sizeof val - 1,
			    &put_version));
	/* Linearizable: the next read sees it, exactly, with its version. */
	CK_OK(raftstore_get(db, key, sizeof key - 1, RAFTSTORE_LINEARIZABLE,
			    &v));
	ck_assert_uint_eq(v.len, sizeof val - 1);
	ck_assert_mem_eq(v.data, val, sizeof val - 1);
	ck_assert_int_eq(((char *)v.data)[v.len], '\0');
	ck_assert_uint_eq(v.version, put_version);
	ck_assert_uint_ge(v.read_version, put_version);
	raftstore_free(v.data);

	CK_OK(raftstore_delete(db, key, sizeof key - 1, &del_version));
	ck_assert_uint_gt(del_version, put_version);
	ck_assert_int_eq(raftstore_get(db, key, sizeof key - 1,
				       RAFTSTORE_LINEARIZABLE, &v),
			 RAFTSTORE_ENOTFOUND);
	ck_assert_uint_ge(v.read_version, del_version);
	/* Deleting what is not there still commits. */
	CK_OK(raftstore_delete(db, key, sizeof key - 1, &put_version));
	ck_assert_uint_gt(put_version, del_version);
	ck_assert_str_eq(raftstore_errmsg(db), "");
}
END_TEST

START_TEST(test_empty_value_and_serializable_read)
{
	struct raftstore_value v;
	uint64_t version;

	CK_OK(raftstore_put(db, "empty/k", 7, "", 0, &version));
	CK_OK(raftstore_get(db, "empty/k", 7, RAFTSTORE_LINEARIZABLE, &v));
	ck_assert_uint_eq(v.len, 0);
	ck_assert_ptr_nonnull(v.data);
	ck_assert_str_eq(v.data, "");
	raftstore_free(v.data);
	/* Serializable may be stale on a follower, but never ahead of what
	 * the node has applied, and says which version it read at. */
	for (int i = 0; i < 100; i++) {
		int rv = raftstore_get(db, "empty/k", 7, RAFTSTORE_SERIALIZABLE,
				       &v);
		ck_assert_msg(rv == RAFTSTORE_OK || rv == RAFTSTORE_ENOTFOUND,
			      "%s", raftstore_errmsg(db));
		ck_assert_uint_gt(v.read_version, 0);
		raftstore_free(v.data);
		if (rv == RAFTSTORE_OK && v.read_version >= version)
			return;
	}
	ck_abort_msg("a serializable read never caught up");
}
END_TEST

START_TEST(test_limits_are_refused_before_sending)
{
	size_t big = 1024 * 1024 + 1;
	char *buf = calloc(1, big);

	ck_assert_ptr_nonnull(buf);
	memset(buf, 'k', big);
	ck_assert_int_eq(raftstore_put(db, "", 0, "v", 1, NULL),
			 RAFTSTORE_EINVAL);
	ck_assert_int_eq(raftstore_put(db, buf, 10241, "v", 1, NULL),
			 RAFTSTORE_ETOOLARGE);
	ck_assert_msg(strstr(raftstore_errmsg(db), "10240") != NULL, "%s",
		      raftstore_errmsg(db));
	ck_assert_int_eq(raftstore_put(db, "lim/k", 5, buf, big, NULL),
			 RAFTSTORE_ETOOLARGE);
	ck_assert_int_eq(raftstore_get(db, buf, 10241, RAFTSTORE_LINEARIZABLE,
				       &(struct raftstore_value){0}),
			 RAFTSTORE_ETOOLARGE);
	ck_assert_int_eq(raftstore_get(db, "k", 1, 7,
				       &(struct raftstore_value){0}),
			 RAFTSTORE_EINVAL);
	free(buf);
}
END_TEST

/* n keys "PREFIXNNNNN" = "vNNNNN", in one transaction. */
static uint64_t fill(const char *prefix, int n)
{
	struct raftstore_txn *txn;
	uint64_t version;
	char key[64], val[16];

	CK_OK(raftstore_txn_begin(db, &txn));
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "%s%05d", prefix, i);
		snprintf(val, sizeof val, "v%05d", i);
		CK_OK(raftstore_txn_put(txn, key, strlen(key), val,
					strlen(val)));
	}
	CK_OK(raftstore_txn_commit(txn, &version));
	raftstore_txn_free(txn);
	return version;
}

START_TEST(test_range_pages_into_one_snapshot)
{
	struct raftstore_range r;
	uint64_t version = fill("rng/", 2500);
	char key[64];

	/* 2500 rows is three pages of 1000. */
	CK_OK(raftstore_range(db, "rng/", 4, "rng0", 4, 0,
			      RAFTSTORE_LINEARIZABLE, &r));
	ck_assert_uint_eq(r.count, 2500);
	ck_assert(!r.more);
	ck_assert_uint_ge(r.read_version, version);
	for (size_t i = 0; i < r.count; i++) {
		snprintf(key, sizeof key, "rng/%05zu", i);
		ck_assert_uint_eq(r.kvs[i].key_len, strlen(key));
		ck_assert_mem_eq(r.kvs[i].key, key, strlen(key));
		ck_assert_uint_eq(r.kvs[i].version, version);
	}
	ck_assert_str_eq(r.kvs[2499].value, "v02499");
	raftstore_range_free(&r);
	raftstore_range_free(&r); /* twice is safe */

	CK_OK(raftstore_range(db, "rng/", 4, "rng0", 4, 1200,
			      RAFTSTORE_LINEARIZABLE, &r));
	ck_assert_uint_eq(r.count, 1200);
	ck_assert(r.more);
	raftstore_range_free(&r);

	/* Empty end: to the end of the key space (here: past rng/). */
	CK_OK(raftstore_range(db, "rng/02498", 9, "", 0, 0,
			      RAFTSTORE_LINEARIZABLE, &r));
	ck_assert_uint_ge(r.count, 2);
	ck_assert_mem_eq(r.kvs[1].key, "rng/02499", 9);
	raftstore_range_free(&r);
}
END_TEST

START_TEST(test_txn_conflict_and_retry)
{
	struct raftstore_txn *a, *b;
	struct raftstore_value v;
	uint64_t version;

	put_str("cf/k", "0");
	CK_OK(raftstore_txn_begin(db, &a));
	CK_OK(raftstore_txn_get(a, "cf/k", 4, &v));
	raftstore_free(v.data);
	/* b reads and writes the same key and commits first. */
	CK_OK(raftstore_txn_begin(db, &b));
	CK_OK(raftstore_txn_get(b, "cf/k", 4, &v));
	ck_assert_str_eq(v.data, "0");
	raftstore_free(v.data);
	CK_OK(raftstore_txn_put(b, "cf/k", 4, "b", 1));
	CK_OK(raftstore_txn_commit(b, &version));
	raftstore_txn_free(b);
	/* a read before b's commit: it must not commit, nor write. */
	CK_OK(raftstore_txn_put(a, "cf/k", 4, "a", 1));
	CK_OK(raftstore_txn_put(a, "cf/other", 8, "a", 1));
	ck_assert_int_eq(raftstore_txn_commit(a, NULL), RAFTSTORE_ECONFLICT);
	ck_assert_int_eq(raftstore_txn_commit(a, NULL), RAFTSTORE_EINVAL);
	ck_assert_int_eq(raftstore_txn_put(a, "cf/k", 4, "a", 1),
			 RAFTSTORE_EINVAL);
	raftstore_txn_free(a);
	CK_OK(raftstore_get(db, "cf/k", 4, RAFTSTORE_LINEARIZABLE, &v));
	ck_assert_str_eq(v.data, "b");
	ck_assert_uint_eq(v.version, version);
	raftstore_free(v.data);
	ck_assert_int_eq(raftstore_get(db, "cf/other", 8,
				       RAFTSTORE_LINEARIZABLE, &v),
			 RAFTSTORE_ENOTFOUND);
}
END_TEST

START_TEST(test_txn_reads_a_snapshot_and_checks_only_what_it_read)
{
	struct raftstore_txn *t;
	struct raftstore_value v;
	uint64_t version;

	put_str("snap/read", "old");
	put_str("snap/unread", "x");
	CK_OK(raftstore_txn_begin(db, &t));
	put_str("snap/unread", "changed"); /* not read by t */
	put_str("snap/read2", "new");      /* after t's read version */
	CK_OK(raftstore_txn_get(t, "snap/read", 9, &v));
	ck_assert_str_eq(v.data, "old");
	raftstore_free(v.data);
	/* Reads are at the read version: the later write is not seen. */
	ck_assert_int_eq(raftstore_txn_get(t, "snap/read2", 10, &v),
			 RAFTSTORE_ENOTFOUND);
	CK_OK(raftstore_txn_delete(t, "snap/unread", 11));
	/* snap/read2 was read (as absent) and written since: conflict. */
	ck_assert_int_eq(raftstore_txn_commit(t, NULL), RAFTSTORE_ECONFLICT);
	raftstore_txn_free(t);

	CK_OK(raftstore_txn_begin(db, &t));
	CK_OK(raftstore_txn_get(t, "snap/read", 9, &v));
	raftstore_free(v.data);
	put_str("snap/unread", "changed again");
	CK_OK(raftstore_txn_delete(t, "snap/unread", 11));
	CK_OK(raftstore_txn_commit(t, &version));
	raftstore_txn_free(t);
	ck_assert_int_eq(raftstore_get(db, "snap/unread", 11,
				       RAFTSTORE_LINEARIZABLE, &v),
			 RAFTSTORE_ENOTFOUND);
	ck_assert_uint_ge(v.read_version, version);

	/* A transaction without writes commits nothing, at its read
	 * version. */
	CK_OK(raftstore_txn_begin(db, &t));
	CK_OK(raftstore_txn_get(t, "snap/read", 9, &v));
	raftstore_free(v.data);
	CK_OK(raftstore_txn_commit(t, &version));
	ck_assert_uint_eq(version, v.read_version);
	raftstore_txn_free(t);
}
END_TEST

START_TEST(test_txn_range_conflicts_only_inside_what_was_read)
{
	struct raftstore_txn *t;
	struct raftstore_range r;

	fill("tr/", 20);
	/* t reads the first 5 rows: [tr/, tr/00004 + 0x00). */
	CK_OK(raftstore_txn_begin(db, &t));
	CK_OK(raftstore_txn_range(t, "tr/", 3, "tr0", 3, 5, &r));
	ck_assert_uint_eq(r.count, 5);
	ck_assert(r.more);
	raftstore_range_free(&r);
	put_str("tr/00010", "outside");
	CK_OK(raftstore_txn_put(t, "tr/sum", 6, "5", 1));
	CK_OK(raftstore_txn_commit(t, NULL));
	raftstore_txn_free(t);

	CK_OK(raftstore_txn_begin(db, &t));
	CK_OK(raftstore_txn_range(t, "tr/", 3, "tr0", 3, 5, &r));
	raftstore_range_free(&r);
	put_str("tr/00003", "inside");
	CK_OK(raftstore_txn_put(t, "tr/sum", 6, "6", 1));
	ck_assert_int_eq(raftstore_txn_commit(t, NULL), RAFTSTORE_ECONFLICT);
	raftstore_txn_free(t);
}
END_TEST

struct watched {
	uint64_t versions[8];
	char lines[8][64];
	int n, stop_after;
};

static int watch_record(void *ctx, const struct raftstore_event *ev)
{
	struct watched *w = ctx;

	ck_assert_int_lt(w->n, 8);
	ck_assert_uint_eq(ev->count, 1);
	w->versions[w->n] = ev->version;
	snprintf(w->lines[w->n], sizeof w->lines[0], "%d %.*s %.*s",
		 (int)ev->mutations[0].type, (int)ev->mutations[0].key_len,
		 (const char *)ev->mutations[0].key,
		 (int)ev->mutations[0].value_len,
		 ev->mutations[0].value ? (const char *)ev->mutations[0].value
					: "");
	return ++w->n == w->stop_after;
}

START_TEST(test_watch_replays_in_order_and_stops)
{
	struct watched w = {.stop_after = 3};
	uint64_t v1 = put_str("w/a", "1");
	uint64_t v2 = put_str("wx", "outside the range");
	uint64_t v3, v4;

	CK_OK(raftstore_delete(db, "w/a", 3, &v3));
	v4 = put_str("w/b", "2");
	CK_OK(raftstore_watch(db, "w/", 2, "w0", 2, v1, watch_record, &w));
	ck_assert_int_eq(w.n, 3);
	ck_assert_uint_eq(w.versions[0], v1);
	ck_assert_uint_eq(w.versions[1], v3);
	ck_assert_uint_eq(w.versions[2], v4);
	ck_assert_uint_gt(v3, v2);
	ck_assert_str_eq(w.lines[0], "1 w/a 1");
	ck_assert_str_eq(w.lines[1], "2 w/a ");
	ck_assert_str_eq(w.lines[2], "1 w/b 2");
	ck_assert_int_eq(raftstore_watch(db, "w/", 2, "w0", 2, v1, NULL, NULL),
			 RAFTSTORE_EINVAL);
}
END_TEST

START_TEST(test_status_of_any_and_of_each_node)
{
	char *json;

	CK_OK(raftstore_status(db, -1, &json));
	ck_assert_msg(json[0] == '{' && strstr(json, "\"role\"") != NULL,
		      "%s", json);
	raftstore_free(json);
	CK_OK(raftstore_status(db, 0, &json));
	ck_assert_msg(strstr(json, "\"id\"") != NULL, "%s", json);
	raftstore_free(json);
	ck_assert_int_eq(raftstore_status(db, 100, &json), RAFTSTORE_EINVAL);
	ck_assert_ptr_null(json);
}
END_TEST

START_TEST(test_unreachable_cluster_fails_within_the_timeout)
{
	char errmsg[RAFTSTORE_ERRMSG_SIZE];
	struct raftstore *dead;
	struct raftstore_value v;
	struct timespec t0, t1;
	int rv;

	/* Port 1 on loopback: nothing listens there. */
	CK_OK(raftstore_open(&dead, "127.0.0.1:1", 500, errmsg));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rv = raftstore_get(dead, "k", 1, RAFTSTORE_LINEARIZABLE, &v);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(rv == RAFTSTORE_EUNAVAILABLE || rv == RAFTSTORE_ETIMEOUT,
		      "%s", raftstore_strerror(rv));
	ck_assert_msg(strstr(raftstore_errmsg(dead), "127.0.0.1:1") != NULL,
		      "%s", raftstore_errmsg(dead));
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
	/* A write that never reached a node did not commit: not unknown. */
	rv = raftstore_put(dead, "k", 1, "v", 1, NULL);
	ck_assert_msg(rv == RAFTSTORE_EUNAVAILABLE || rv == RAFTSTORE_ETIMEOUT,
		      "%s", raftstore_strerror(rv));
	raftstore_close(dead);
}
END_TEST

static int raise_sigpipe(void *ctx, const struct raftstore_event *ev)
{
	(void)ctx;
	(void)ev;
	raise(SIGPIPE);
	return 1;
}

/* A SIGPIPE during a call (as a write to a closed connection raises)
 * must not kill a program that kept the default disposition, and must not
 * be left pending for later. */
START_TEST(test_sigpipe_during_a_call_does_not_kill)
{
	uint64_t version = put_str("pipe/k", "v");
	sigset_t pending;

	ck_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	CK_OK(raftstore_watch(db, "pipe/", 5, "pipe0", 5, version,
			      raise_sigpipe, NULL));
	ck_assert_int_eq(sigpending(&pending), 0);
	ck_assert_int_eq(sigismember(&pending, SIGPIPE), 0);
	put_str("pipe/k", "still alive");
}
END_TEST

static int watch_print(void *ctx, const struct raftstore_event *ev)
{
	(void)ctx;
	printf("event %" PRIu64 "\n", ev->version);
	fflush(stdout);
	return 0;
}

/* Watch "kill/" from a first put, printing events until the watch ends. */
static int watch_until_error(void)
{
	const char *e = getenv("RS_API_ENDPOINTS"); /* no ck_* outside a test */
	char errmsg[RAFTSTORE_ERRMSG_SIZE] = "RS_API_ENDPOINTS is not set";
	uint64_t version;
	int rv;

	if (e == NULL || raftstore_open(&db, e, 10000, errmsg) != RAFTSTORE_OK ||
	    raftstore_put(db, "kill/k", 6, "v", 1, &version) != RAFTSTORE_OK) {
		fprintf(stderr, "public_api: %s\n",
			db != NULL ? raftstore_errmsg(db) : errmsg);
		return 2;
	}
	rv = raftstore_watch(db, "kill/", 5, "kill0", 5, version, watch_print,
			     NULL);
	printf("ended %s\n", raftstore_strerror(rv));
	raftstore_close(db);
	return 0;
}

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc > 1 && strcmp(argv[1], "watch-until-error") == 0)
		return watch_until_error();
	s = suite_create("public_api");
	tc = testutil_tcase(s, "api", setup, teardown, 60);
	tcase_add_test(tc, test_open_rejects_bad_endpoints);
	tcase_add_test(tc, test_get_put_delete);
	tcase_add_test(tc, test_empty_value_and_serializable_read);
	tcase_add_test(tc, test_limits_are_refused_before_sending);
	tcase_add_test(tc, test_range_pages_into_one_snapshot);
	tcase_add_test(tc, test_txn_conflict_and_retry);
	tcase_add_test(tc, test_txn_reads_a_snapshot_and_checks_only_what_it_read);
	tcase_add_test(tc, test_txn_range_conflicts_only_inside_what_was_read);
	tcase_add_test(tc, test_watch_replays_in_order_and_stops);
	tcase_add_test(tc, test_status_of_any_and_of_each_node);
	tcase_add_test(tc, test_unreachable_cluster_fails_within_the_timeout);
	tcase_add_test(tc, test_sigpipe_during_a_call_does_not_kill);
	return testutil_run_suite(s);
}
