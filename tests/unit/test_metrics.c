/* Tests for metrics: the exact text of every type, name and label
 * validation, re-registration, histogram buckets, escaping and number
 * formatting.  No I/O and no loop: the registry is plain memory. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftstore/lib/metrics.h"
#include "raftstore/lib/procmetrics.h"
#include "raftstore/lib/rs_error.h"
#include "tests/unit/testutil.h"

static struct metrics *ms;
static struct rs_buf out;

static void setup(void)
{
	ck_assert_int_eq(metrics_new(&ms), RS_OK);
	rs_buf_init(&out);
}

static void teardown(void)
{
	metrics_free(ms);
	rs_buf_free(&out);
}

/* Render the registry and compare with the expected text, byte for byte. */
static void render_is(const char *want)
{
	out.len = 0;
	ck_assert_int_eq(metrics_render_prometheus(ms, &out), RS_OK);
	ck_assert_int_eq(rs_buf_append(&out, "", 1), RS_OK);
	ck_assert_str_eq((const char *)out.data, want);
}

/* ---- each type ---- */

START_TEST(test_empty)
{
	render_is("");
}
END_TEST

START_TEST(test_counter)
{
	struct metric *m = metrics_counter(ms, "rs_commits_total",
					   "Transactions committed.");
	ck_assert_ptr_nonnull(m);
	render_is("# HELP rs_commits_total Transactions committed.\n"
		  "# TYPE rs_commits_total counter\n"
		  "rs_commits_total 0\n");
	metrics_inc(m);
	metrics_add(m, 41);
	metrics_add(m, 18446744073709551000ull);
	ck_assert_uint_eq(metrics_counter_get(m), 18446744073709551042ull);
	render_is("# HELP rs_commits_total Transactions committed.\n"
		  "# TYPE rs_commits_total counter\n"
		  "rs_commits_total 18446744073709551042\n");
}
END_TEST

START_TEST(test_gauge)
{
	struct metric *g = metrics_gauge(ms, "rs_term", "Current Raft term.");
	struct metric *n = metrics_gauge(ms, "rs_lag_seconds", NULL);
	ck_assert_ptr_nonnull(g);
	ck_assert_ptr_nonnull(n);
	metrics_gauge_set(g, 7);
	metrics_gauge_set(n, 0.25);
	metrics_gauge_add(n, -1);
	ck_assert(metrics_gauge_get(n) == -0.75);
	render_is("# HELP rs_term Current Raft term.\n"
		  "# TYPE rs_term gauge\n"
		  "rs_term 7\n"
		  "# TYPE rs_lag_seconds gauge\n"
		  "rs_lag_seconds -0.75\n");
	/* i64 values up to 2^53 print exactly. */
	metrics_gauge_set(g, 9007199254740992.0);
	metrics_gauge_set(n, -123456789);
	render_is("# HELP rs_term Current Raft term.\n"
		  "# TYPE rs_term gauge\n"
		  "rs_term 9007199254740992\n"
		  "# TYPE rs_lag_seconds gauge\n"
		  "rs_lag_seconds -123456789\n");
}
END_TEST

/* Numbers: shortest text that reads back the same. */
/* A callback gauge reads its source at every render, never a stale copy;
 * re-registration must name the same source. */
static double read_bytes(void *ctx)
{
	return (double)*(const unsigned long long *)ctx;
}

START_TEST(test_gauge_callback)
{
	unsigned long long bytes = 1392, other = 7;
	struct metric *m = metrics_gauge_fn(ms, "rs_storage_bytes", "On disk.",
					    read_bytes, &bytes);

	ck_assert_ptr_nonnull(m);
	render_is("# HELP rs_storage_bytes On disk.\n"
		  "# TYPE rs_storage_bytes gauge\n"
		  "rs_storage_bytes 1392\n");
	bytes = 4096;
	ck_assert(metrics_gauge_get(m) == 4096.0);
	render_is("# HELP rs_storage_bytes On disk.\n"
		  "# TYPE rs_storage_bytes gauge\n"
		  "rs_storage_bytes 4096\n");
	ck_assert_ptr_eq(metrics_gauge_fn(ms, "rs_storage_bytes", "On disk.",
					  read_bytes, &bytes), m);
	ck_assert_ptr_null(metrics_gauge_fn(ms, "rs_storage_bytes", "On disk.",
					    read_bytes, &other));
	ck_assert_ptr_nonnull(strstr(metrics_errmsg(ms), "rs_storage_bytes"));
	/* a plain gauge of that name is another source */
	ck_assert_ptr_nonnull(metrics_gauge(ms, "rs_plain", NULL));
	ck_assert_ptr_null(metrics_gauge_fn(ms, "rs_plain", NULL, read_bytes,
					    &bytes));
	/* and a callback gauge under a counter's name is a type conflict */
	ck_assert_ptr_nonnull(metrics_counter(ms, "rs_c_total", NULL));
	ck_assert_ptr_null(metrics_gauge_fn(ms, "rs_c_total", NULL, read_bytes,
					    &bytes));
}
END_TEST

static const struct {
	double v;
	const char *text;
} number_cases[] = {
	{0, "0"},
	{1, "1"},
	{0.1, "0.1"},
	{0.0005, "0.0005"},
	{2.5, "2.5"},
	{1e6, "1000000"},
	{1e17, "1e+17"},
	{1e21, "1e+21"},
	{1234.5, "1234.5"},
	{-0.0, "-0"},
	{1e-7, "1e-07"},
	{123456789, "123456789"},
	{0.30000000000000004, "0.30000000000000004"},
	{1.0 / 3, "0.3333333333333333"},
	{-2.5e-300, "-2.5e-300"},
	{INFINITY, "+Inf"},
	{-INFINITY, "-Inf"},
	{NAN, "NaN"},
};

/* A counter read through a callback renders its double, typed counter. */
static double read_cpu(void *ctx)
{
	return *(const double *)ctx;
}

START_TEST(test_counter_callback)
{
	double cpu = 1.5;
	struct metric *c = metrics_counter_fn(ms, "rs_cpu_seconds_total",
					      "CPU.", read_cpu, &cpu);

	ck_assert_ptr_nonnull(c);
	render_is("# HELP rs_cpu_seconds_total CPU.\n"
		  "# TYPE rs_cpu_seconds_total counter\n"
		  "rs_cpu_seconds_total 1.5\n");
	cpu = 2;
	ck_assert_uint_eq(metrics_counter_get(c), 2);
	/* the same source again is the same metric; another is refused */
	ck_assert_ptr_eq(metrics_counter_fn(ms, "rs_cpu_seconds_total", "CPU.",
					    read_cpu, &cpu), c);
	ck_assert_ptr_null(metrics_counter_fn(ms, "rs_cpu_seconds_total",
					      "CPU.", read_cpu, NULL));
}
END_TEST

/* The process families are there, and their values are this process'. */
START_TEST(test_process_families)
{
	double start = procmetrics_start_time();

	ck_assert_int_eq(procmetrics_register(ms), RS_OK);
	out.len = 0;
	ck_assert_int_eq(metrics_render_prometheus(ms, &out), RS_OK);
	ck_assert_int_eq(rs_buf_append(&out, "", 1), RS_OK);
	for (unsigned i = 0; i < 6; i++) {
		static const char *const names[] = {
			"\nprocess_cpu_seconds_total ",
			"\nprocess_resident_memory_bytes ",
			"\nprocess_virtual_memory_bytes ",
			"\nprocess_open_fds ", "\nprocess_max_fds ",
			"\nprocess_start_time_seconds "};
		const char *at = strstr((const char *)out.data, names[i]);

		ck_assert_msg(at != NULL, "%s missing", names[i] + 1);
		ck_assert_msg(strncmp(at + strlen(names[i]), "NaN", 3) != 0,
			      "%s is NaN", names[i] + 1);
	}
	/* started within the last hour, not in the future */
	ck_assert(!isnan(start));
	ck_assert(start <= (double)time(NULL) + 1);
	ck_assert(start > (double)time(NULL) - 3600);
}
END_TEST

START_TEST(test_numbers)
{
	struct metric *g = metrics_gauge(ms, "g", NULL);
	char want[128];

	metrics_gauge_set(g, number_cases[_i].v);
	snprintf(want, sizeof want, "# TYPE g gauge\ng %s\n",
		 number_cases[_i].text);
	render_is(want);
	if (isfinite(number_cases[_i].v))
		ck_assert(strtod(number_cases[_i].text, NULL) ==
			  number_cases[_i].v);
}
END_TEST

START_TEST(test_histogram)
{
	static const double b[] = {0.1, 1, 10};
	struct metric *h = metrics_histogram(ms, "rs_op_seconds", "Op latency.",
					     b, 3);

	ck_assert_ptr_nonnull(h);
	render_is("# HELP rs_op_seconds Op latency.\n"
		  "# TYPE rs_op_seconds histogram\n"
		  "rs_op_seconds_bucket{le=\"0.1\"} 0\n"
		  "rs_op_seconds_bucket{le=\"1\"} 0\n"
		  "rs_op_seconds_bucket{le=\"10\"} 0\n"
		  "rs_op_seconds_bucket{le=\"+Inf\"} 0\n"
		  "rs_op_seconds_sum 0\n"
		  "rs_op_seconds_count 0\n");
	metrics_observe(h, 0.05); /* first bucket */
	metrics_observe(h, 1);    /* bounds are inclusive: le="1" */
	metrics_observe(h, 1.5);  /* le="10" */
	metrics_observe(h, 11);   /* only +Inf */
	metrics_observe(h, 0.2);  /* le="1" */
	ck_assert_uint_eq(metrics_histogram_count(h), 5);
	ck_assert(metrics_histogram_sum(h) == 0.05 + 1 + 1.5 + 11 + 0.2);
	render_is("# HELP rs_op_seconds Op latency.\n"
		  "# TYPE rs_op_seconds histogram\n"
		  "rs_op_seconds_bucket{le=\"0.1\"} 1\n"
		  "rs_op_seconds_bucket{le=\"1\"} 3\n"
		  "rs_op_seconds_bucket{le=\"10\"} 4\n"
		  "rs_op_seconds_bucket{le=\"+Inf\"} 5\n"
		  "rs_op_seconds_sum 13.75\n"
		  "rs_op_seconds_count 5\n");
}
END_TEST

/* The bucket lines never decrease and +Inf equals _count, whatever the
 * observations (random, with duplicates on the bounds). */
START_TEST(test_histogram_cumulative)
{
	struct metric *h = metrics_histogram(ms, "d", NULL,
					     metrics_buckets_seconds,
					     METRICS_BUCKETS_SECONDS_COUNT);
	uint64_t state = testutil_seed() | 1, prev = 0, n = 0;
	uint64_t want[METRICS_BUCKETS_SECONDS_COUNT + 1] = {0};
	char *line;

	for (int i = 0; i < 5000; i++) {
		uint64_t r = testutil_rand(&state);
		double v = (r % 3 == 0)
				   ? metrics_buckets_seconds[r % 14]
				   : (double)(r % 20000) / 1000.0;
		metrics_observe(h, v);
		for (size_t k = 0; k <= METRICS_BUCKETS_SECONDS_COUNT; k++)
			if (k == METRICS_BUCKETS_SECONDS_COUNT ||
			    v <= metrics_buckets_seconds[k])
				want[k]++;
	}
	out.len = 0;
	ck_assert_int_eq(metrics_render_prometheus(ms, &out), RS_OK);
	rs_buf_append(&out, "", 1);
	line = strstr((char *)out.data, "d_bucket");
	for (size_t k = 0; k <= METRICS_BUCKETS_SECONDS_COUNT; k++) {
		unsigned long long got;
		ck_assert_ptr_nonnull(line);
		ck_assert_int_eq(sscanf(strchr(line, '}') + 1, " %llu", &got), 1);
		ck_assert_uint_eq(got, want[k]);
		ck_assert_uint_ge(got, prev);
		prev = got;
		line = strstr(line + 1, "d_bucket");
		n++;
	}
	ck_assert_ptr_null(line);
	ck_assert_uint_eq(prev, 5000);
	ck_assert_uint_eq(metrics_histogram_count(h), 5000);
	ck_assert_ptr_nonnull(strstr((char *)out.data, "\nd_count 5000\n"));
	ck_assert_uint_eq(n, METRICS_BUCKETS_SECONDS_COUNT + 1);
}
END_TEST

START_TEST(test_histogram_default_bounds)
{
	metrics_histogram(ms, "s", NULL, metrics_buckets_seconds,
			  METRICS_BUCKETS_SECONDS_COUNT);
	metrics_histogram(ms, "b", NULL, metrics_buckets_bytes,
			  METRICS_BUCKETS_BYTES_COUNT);
	render_is("# TYPE s histogram\n"
		  "s_bucket{le=\"0.0005\"} 0\n"
		  "s_bucket{le=\"0.001\"} 0\n"
		  "s_bucket{le=\"0.0025\"} 0\n"
		  "s_bucket{le=\"0.005\"} 0\n"
		  "s_bucket{le=\"0.01\"} 0\n"
		  "s_bucket{le=\"0.025\"} 0\n"
		  "s_bucket{le=\"0.05\"} 0\n"
		  "s_bucket{le=\"0.1\"} 0\n"
		  "s_bucket{le=\"0.25\"} 0\n"
		  "s_bucket{le=\"0.5\"} 0\n"
		  "s_bucket{le=\"1\"} 0\n"
		  "s_bucket{le=\"2.5\"} 0\n"
		  "s_bucket{le=\"5\"} 0\n"
		  "s_bucket{le=\"10\"} 0\n"
		  "s_bucket{le=\"+Inf\"} 0\n"
		  "s_sum 0\n"
		  "s_count 0\n"
		  "# TYPE b histogram\n"
		  "b_bucket{le=\"64\"} 0\n"
		  "b_bucket{le=\"256\"} 0\n"
		  "b_bucket{le=\"1024\"} 0\n"
		  "b_bucket{le=\"4096\"} 0\n"
		  "b_bucket{le=\"16384\"} 0\n"
		  "b_bucket{le=\"65536\"} 0\n"
		  "b_bucket{le=\"262144\"} 0\n"
		  "b_bucket{le=\"1048576\"} 0\n"
		  "b_bucket{le=\"4194304\"} 0\n"
		  "b_bucket{le=\"16777216\"} 0\n"
		  "b_bucket{le=\"67108864\"} 0\n"
		  "b_bucket{le=\"+Inf\"} 0\n"
		  "b_sum 0\n"
		  "b_count 0\n");
}
END_TEST

START_TEST(test_histogram_edge)
{
	struct metric *h = metrics_histogram(ms, "h", NULL, NULL, 0);

	/* No bounds: only +Inf.  NaN counts there and poisons the sum, as
	 * in the Go client. */
	ck_assert_ptr_nonnull(h);
	metrics_observe(h, -INFINITY);
	metrics_observe(h, NAN);
	render_is("# TYPE h histogram\n"
		  "h_bucket{le=\"+Inf\"} 2\n"
		  "h_sum NaN\n"
		  "h_count 2\n");
}
END_TEST

/* ---- labels ---- */

START_TEST(test_labels)
{
	static const double b[] = {1};
	const char *l1[] = {"node", "1", "role", "voter", NULL};
	const char *l2[] = {"node", "2", "role", "voter", NULL};
	const char *l3[] = {"node", "1", NULL};
	struct metric *a = metrics_register(ms, METRIC_COUNTER, "c_total", "C.",
					    l1, NULL, 0);
	struct metric *bb = metrics_register(ms, METRIC_COUNTER, "c_total", "C.",
					     l2, NULL, 0);
	struct metric *h = metrics_register(ms, METRIC_HISTOGRAM, "h", NULL, l3,
					    b, 1);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(bb);
	ck_assert_ptr_ne(a, bb);
	ck_assert_ptr_eq(metrics_register(ms, METRIC_COUNTER, "c_total", "C.",
					  l1, NULL, 0),
			 a);
	metrics_add(a, 3);
	metrics_observe(h, 0.5);
	render_is("# HELP c_total C.\n"
		  "# TYPE c_total counter\n"
		  "c_total{node=\"1\",role=\"voter\"} 3\n"
		  "c_total{node=\"2\",role=\"voter\"} 0\n"
		  "# TYPE h histogram\n"
		  "h_bucket{node=\"1\",le=\"1\"} 1\n"
		  "h_bucket{node=\"1\",le=\"+Inf\"} 1\n"
		  "h_sum{node=\"1\"} 0.5\n"
		  "h_count{node=\"1\"} 1\n");
}
END_TEST

START_TEST(test_escaping)
{
	const char *l[] = {"path", "a\\b\"c\nd", NULL};

	ck_assert_ptr_nonnull(metrics_register(ms, METRIC_GAUGE, "g",
					       "back\\slash\nnew \"line\"", l,
					       NULL, 0));
	render_is("# HELP g back\\\\slash\\nnew \"line\"\n"
		  "# TYPE g gauge\n"
		  "g{path=\"a\\\\b\\\"c\\nd\"} 0\n");
}
END_TEST

/* ---- validation ---- */

static const char *const bad_names[] = {
	"", "1abc", "a-b", "a b", "a.b", "caf\xc3\xa9", "a\n", "{", "a\"",
};

START_TEST(test_bad_names)
{
	const char *name = bad_names[_i];

	ck_assert_ptr_null(metrics_counter(ms, name, "x"));
	ck_assert_ptr_nonnull(strstr(metrics_errmsg(ms), "invalid metric name"));
	ck_assert_ptr_null(metrics_gauge(ms, name, "x"));
	ck_assert_ptr_null(metrics_histogram(ms, name, "x", NULL, 0));
	render_is("");
}
END_TEST

START_TEST(test_good_names)
{
	const char *names[] = {"a", "_", ":", "A_b:c9", "rs:raft_term",
			       "__private"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		ck_assert_msg(metrics_counter(ms, names[i], NULL) != NULL, "%s: %s",
			      names[i], metrics_errmsg(ms));
	ck_assert_ptr_null(metrics_counter(ms, NULL, NULL));
}
END_TEST

static const struct {
	enum metric_type type;
	const char *labels[5];
	const char *err;
} bad_label_cases[] = {
	{METRIC_COUNTER, {"1x", "v", NULL}, "invalid label name '1x'"},
	{METRIC_COUNTER, {"a:b", "v", NULL}, "invalid label name 'a:b'"},
	{METRIC_COUNTER, {"", "v", NULL}, "invalid label name ''"},
	{METRIC_COUNTER, {"__name__", "v", NULL}, "invalid label name"},
	{METRIC_HISTOGRAM, {"le", "1", NULL}, "invalid label name 'le'"},
	{METRIC_COUNTER, {"a", "1", "a", "2", NULL}, "label 'a' given twice"},
	{METRIC_GAUGE, {"a", NULL}, "label 'a' has no value"},
};

START_TEST(test_bad_labels)
{
	ck_assert_ptr_null(metrics_register(ms, bad_label_cases[_i].type, "m",
					    NULL, bad_label_cases[_i].labels,
					    NULL, 0));
	ck_assert_msg(strstr(metrics_errmsg(ms), bad_label_cases[_i].err) != NULL,
		      "%s", metrics_errmsg(ms));
	ck_assert_ptr_nonnull(strstr(metrics_errmsg(ms), "metric m: "));
	render_is("");
}
END_TEST

START_TEST(test_le_on_counter)
{
	const char *l[] = {"le", "x", NULL};

	ck_assert_ptr_nonnull(
		metrics_register(ms, METRIC_COUNTER, "c", NULL, l, NULL, 0));
}
END_TEST

static const struct {
	double b[3];
	size_t n;
} bad_bounds_cases[] = {
	{{1, 1, 2}, 3},  {{2, 1, 3}, 3}, {{1, NAN, 3}, 3},
	{{1, INFINITY, 0}, 2}, {{-INFINITY, 1, 0}, 2},
};

START_TEST(test_bad_bounds)
{
	ck_assert_ptr_null(metrics_histogram(ms, "h", NULL,
					     bad_bounds_cases[_i].b,
					     bad_bounds_cases[_i].n));
	ck_assert_ptr_nonnull(strstr(metrics_errmsg(ms), "metric h: bucket"));
	ck_assert_ptr_null(metrics_histogram(ms, "h", NULL, NULL, 2));
	render_is("");
}
END_TEST

/* ---- re-registration ---- */

START_TEST(test_register_twice)
{
	static const double b1[] = {1, 2}, b2[] = {1, 3};
	struct metric *c = metrics_counter(ms, "c", "C.");
	struct metric *h = metrics_histogram(ms, "h", "H.", b1, 2);

	ck_assert_ptr_eq(metrics_counter(ms, "c", "C."), c);
	ck_assert_ptr_eq(metrics_histogram(ms, "h", "H.", b1, 2), h);

	ck_assert_ptr_null(metrics_gauge(ms, "c", "C."));
	ck_assert_str_eq(metrics_errmsg(ms),
			 "metric c: registered as a counter, not a gauge");
	ck_assert_ptr_null(metrics_counter(ms, "c", "Other."));
	ck_assert_str_eq(metrics_errmsg(ms),
			 "metric c: registered with another help text");
	ck_assert_ptr_null(metrics_counter(ms, "c", NULL));
	ck_assert_ptr_null(metrics_histogram(ms, "h", "H.", b2, 2));
	ck_assert_str_eq(metrics_errmsg(ms),
			 "metric h: registered with other bucket bounds");
	ck_assert_ptr_null(metrics_histogram(ms, "h", "H.", b1, 1));
	render_is("# HELP c C.\n# TYPE c counter\nc 0\n"
		  "# HELP h H.\n# TYPE h histogram\n"
		  "h_bucket{le=\"1\"} 0\nh_bucket{le=\"2\"} 0\n"
		  "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}
END_TEST

START_TEST(test_histogram_name_clash)
{
	ck_assert_ptr_nonnull(metrics_histogram(ms, "x", NULL, NULL, 0));
	ck_assert_ptr_null(metrics_counter(ms, "x_count", NULL));
	ck_assert_ptr_nonnull(strstr(metrics_errmsg(ms), "clashes"));
	ck_assert_ptr_null(metrics_gauge(ms, "x_sum", NULL));
	ck_assert_ptr_null(metrics_histogram(ms, "x_bucket", NULL, NULL, 0));

	ck_assert_ptr_nonnull(metrics_counter(ms, "y_sum", NULL));
	ck_assert_ptr_null(metrics_histogram(ms, "y", NULL, NULL, 0));
	ck_assert_ptr_nonnull(metrics_counter(ms, "z_counts", NULL));
	ck_assert_ptr_nonnull(metrics_histogram(ms, "z", NULL, NULL, 0));
	ck_assert_ptr_nonnull(metrics_counter(ms, "_count", NULL));
}
END_TEST

/* Families render in registration order; rendering appends. */
START_TEST(test_order_and_append)
{
	metrics_gauge(ms, "b", NULL);
	metrics_counter(ms, "a", NULL);
	ck_assert_int_eq(rs_buf_append(&out, "prefix\n", 7), RS_OK);
	ck_assert_int_eq(metrics_render_prometheus(ms, &out), RS_OK);
	ck_assert_int_eq(rs_buf_append(&out, "", 1), RS_OK);
	ck_assert_str_eq((const char *)out.data, "prefix\n"
						 "# TYPE b gauge\nb 0\n"
						 "# TYPE a counter\na 0\n");
}
END_TEST

START_TEST(test_many)
{
	char name[32];
	struct metric *m[300];

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "m%d_total", i);
		m[i] = metrics_counter(ms, name, "h");
		ck_assert_ptr_nonnull(m[i]);
		metrics_add(m[i], (uint64_t)i);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "m%d_total", i);
		ck_assert_ptr_eq(metrics_counter(ms, name, "h"), m[i]);
		ck_assert_uint_eq(metrics_counter_get(m[i]), (uint64_t)i);
	}
	out.len = 0;
	ck_assert_int_eq(metrics_render_prometheus(ms, &out), RS_OK);
	rs_buf_append(&out, "", 1);
	ck_assert_ptr_nonnull(strstr((char *)out.data, "\nm299_total 299\n"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_counter);
	tcase_add_test(tc, test_gauge);
	tcase_add_test(tc, test_gauge_callback);
	tcase_add_test(tc, test_counter_callback);
	tcase_add_test(tc, test_process_families);
	tcase_add_loop_test(tc, test_numbers, 0,
			    sizeof number_cases / sizeof number_cases[0]);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_histogram_cumulative);
	tcase_add_test(tc, test_histogram_default_bounds);
	tcase_add_test(tc, test_histogram_edge);
	tcase_add_test(tc, test_labels);
	tcase_add_test(tc, test_escaping);
	tcase_add_loop_test(tc, test_bad_names, 0,
			    sizeof bad_names / sizeof bad_names[0]);
	tcase_add_test(tc, test_good_names);
	tcase_add_loop_test(tc, test_bad_labels, 0,
			    sizeof bad_label_cases / sizeof bad_label_cases[0]);
	tcase_add_test(tc, test_le_on_counter);
	tcase_add_loop_test(tc, test_bad_bounds, 0,
			    sizeof bad_bounds_cases / sizeof bad_bounds_cases[0]);
	tcase_add_test(tc, test_register_twice);
	tcase_add_test(tc, test_histogram_name_clash);
	tcase_add_test(tc, test_order_and_append);
	tcase_add_test(tc, test_many);
	suite_add_tcase(s, tc);

	return testutil_run_suite(s);
}
