/*
 * metrics: see metrics.h.
 *
 * A family is one metric name (one HELP and TYPE block); its series are the
 * label sets registered under it.  Series are allocated one by one so that
 * a struct metric never moves.  Histogram buckets are counted
 * non-cumulatively and summed up while rendering, which keeps
 * metrics_observe to one increment.  Registration searches linearly: it
 * happens a few dozen times per process, and updates never search.
 */
#include "raftstore/lib/metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"

const double metrics_buckets_seconds[METRICS_BUCKETS_SECONDS_COUNT] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1,    0.25,  0.5,    1,     2.5,  5,     10};

const double metrics_buckets_bytes[METRICS_BUCKETS_BYTES_COUNT] = {
	64,      256,      1024,      4096,      16384,   65536,
	262144,  1048576,  4194304,   16777216,  67108864};

struct metric_family;

struct metric {
	struct metric_family *family;
	char *labels; /* rendered: k="v",k2="v2"; "" for none */
	uint64_t counter;
	double gauge;
	metrics_read_fn read; /* NULL, or the value at render time (gauges,
			       * counters of values kept elsewhere) */
	void *read_ctx;
	uint64_t *buckets; /* n_bounds + 1, the last one is +Inf */
	uint64_t count;
	double sum;
};

struct metric_family {
	enum metric_type type;
	char *name;
	char *help; /* NULL: no HELP line */
	double *bounds;
	size_t n_bounds;
	struct metric **series;
	size_t n_series;
};

struct metrics {
	struct metric_family **families;
	size_t n_families;
	char errmsg[RS_ERRMSG_SIZE];
};

static const char *const metrics_type_names[] = {
	[METRIC_COUNTER] = "counter",
	[METRIC_GAUGE] = "gauge",
	[METRIC_HISTOGRAM] = "histogram",
};

static const char *const metrics_hist_suffixes[] = {"_bucket", "_sum",
						    "_count"};

/* ---- validation ---- */

static bool metrics_name_char(char c, bool first, bool colon_ok)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (c == ':')
		return colon_ok;
	return !first && c >= '0' && c <= '9';
}

/* Metric names allow ':', label names do not. */
static bool metrics_name_valid(const char *s, bool colon_ok)
{
	assert(s != NULL);
	if (*s == '\0')
		return false;
	for (size_t i = 0; s[i] != '\0'; i++)
		if (!metrics_name_char(s[i], i == 0, colon_ok))
			return false;
	return true;
}

static int metrics_labels_check(struct metrics *ms, enum metric_type type,
				const char *const *labels)
{
	for (size_t i = 0; labels != NULL && labels[i] != NULL; i += 2) {
		const char *k = labels[i];

		if (labels[i + 1] == NULL) {
			rs_errmsg_printf(ms->errmsg, "label '%s' has no value", k);
			return RS_EINVAL;
		}
		if (!metrics_name_valid(k, false) || strncmp(k, "__", 2) == 0 ||
		    (type == METRIC_HISTOGRAM && strcmp(k, "le") == 0)) {
			rs_errmsg_printf(ms->errmsg, "invalid label name '%s'", k);
			return RS_EINVAL;
		}
		for (size_t j = 0; j < i; j += 2) {
			if (strcmp(labels[j], k) == 0) {
				rs_errmsg_printf(ms->errmsg, "label '%s' given twice", k);
				return RS_EINVAL;
			}
		}
	}
	return RS_OK;
}

static int metrics_bounds_check(struct metrics *ms, const double *bounds,
				size_t n_bounds)
{
	if (n_bounds > 0 && bounds == NULL) {
		rs_errmsg_printf(ms->errmsg, "bucket bounds missing");
		return RS_EINVAL;
	}
	for (size_t i = 0; i < n_bounds; i++) {
		if (!isfinite(bounds[i])) {
			rs_errmsg_printf(ms->errmsg, "bucket bound %zu is not finite",
					 i);
			return RS_EINVAL;
		}
		if (i > 0 && !(bounds[i] > bounds[i - 1])) {
			rs_errmsg_printf(ms->errmsg, "bucket bounds not increasing at "
						     "%zu", i);
			return RS_EINVAL;
		}
	}
	return RS_OK;
}

/* ---- rendering helpers ---- */

/* Escape '\\', newline and (if quote) '"' as the format asks. */
static int metrics_put_escaped(struct rs_buf *out, const char *s, bool quote)
{
	int rv = RS_OK;

	for (; *s != '\0' && rv == RS_OK; s++) {
		if (*s == '\\')
			rv = rs_buf_append(out, "\\\\", 2);
		else if (*s == '\n')
			rv = rs_buf_append(out, "\\n", 2);
		else if (*s == '"' && quote)
			rv = rs_buf_append(out, "\\\"", 2);
		else
			rv = rs_buf_append(out, s, 1);
	}
	return rv;
}

static int metrics_put_str(struct rs_buf *out, const char *s)
{
	return rs_buf_append(out, s, strlen(s));
}

/* Integers below 1e17 in full; other values in the shortest "%g" that
 * reads back as v.  The decimal point is forced to '.' whatever
 * LC_NUMERIC says, since the format is fixed. */
static void metrics_format_double(char *s, size_t size, double v)
{
	assert(size >= 32);
	if (isnan(v)) {
		snprintf(s, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(s, size, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v > -1e17 && v < 1e17 && (double)(int64_t)v == v) {
		snprintf(s, size, "%.0f", v); /* "10", not "1e+01" */
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(s, size, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
	for (char *p = s; *p != '\0'; p++)
		if (!(*p >= '0' && *p <= '9') && *p != 'e' && *p != '-' &&
		    *p != '+')
			*p = '.';
}

static int metrics_put_double(struct rs_buf *out, double v)
{
	char s[40];

	metrics_format_double(s, sizeof s, v);
	return metrics_put_str(out, s);
}

static int metrics_put_u64(struct rs_buf *out, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof s, "%" PRIu64, v);
	return metrics_put_str(out, s);
}

/* "k=\"v\",k2=\"v2\"" for a validated label list, NUL-terminated. */
static char *metrics_labels_render(const char *const *labels)
{
	struct rs_buf b;
	int rv = RS_OK;

	rs_buf_init(&b);
	for (size_t i = 0; labels != NULL && labels[i] != NULL && rv == RS_OK;
	     i += 2) {
		if (i > 0)
			rv = rs_buf_append(&b, ",", 1);
		if (rv == RS_OK)
			rv = metrics_put_str(&b, labels[i]);
		if (rv == RS_OK)
			rv = rs_buf_append(&b, "=\"", 2);
		if (rv == RS_OK)
			rv = metrics_put_escaped(&b, labels[i + 1], true);
		if (rv == RS_OK)
			rv = rs_buf_append(&b, "\"", 1);
	}
	if (rv == RS_OK)
		rv = rs_buf_append(&b, "", 1);
	if (rv != RS_OK) {
		rs_buf_free(&b);
		return NULL;
	}
	assert(b.len > 0 && b.data[b.len - 1] == '\0');
	return (char *)b.data;
}

/* ---- registry ---- */

int metrics_new(struct metrics **out)
{
	struct metrics *ms = calloc(1, sizeof *ms);

	assert(out != NULL);
	if (ms == NULL)
		return RS_ENOMEM;
	*out = ms;
	return RS_OK;
}

static void metrics_series_free(struct metric *m)
{
	free(m->labels);
	free(m->buckets);
	free(m);
}

static void metrics_family_free(struct metric_family *f)
{
	for (size_t i = 0; i < f->n_series; i++)
		metrics_series_free(f->series[i]);
	free(f->series);
	free(f->name);
	free(f->help);
	free(f->bounds);
	free(f);
}

void metrics_free(struct metrics *ms)
{
	if (ms == NULL)
		return;
	for (size_t i = 0; i < ms->n_families; i++)
		metrics_family_free(ms->families[i]);
	free(ms->families);
	free(ms);
}

static struct metric_family *metrics_find(const struct metrics *ms,
					  const char *name, size_t len)
{
	for (size_t i = 0; i < ms->n_families; i++) {
		struct metric_family *f = ms->families[i];
		if (strlen(f->name) == len && memcmp(f->name, name, len) == 0)
			return f;
	}
	return NULL;
}

/* Is some family called exactly name + suffix? */
static bool metrics_find_suffixed(const struct metrics *ms, const char *name,
				  const char *suffix)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < ms->n_families; i++) {
		const char *fn = ms->families[i]->name;
		if (strncmp(fn, name, len) == 0 && strcmp(fn + len, suffix) == 0)
			return true;
	}
	return false;
}

/* A histogram "h" writes h_bucket, h_sum and h_count: no other family may
 * be called that, and a histogram may not be named so that its series
 * would take an existing family's name. */
static bool metrics_name_clash(const struct metrics *ms, enum metric_type type,
			       const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < 3; i++) {
		const char *sfx = metrics_hist_suffixes[i];
		size_t sl = strlen(sfx);
		struct metric_family *f;

		if (len > sl && strcmp(name + len - sl, sfx) == 0) {
			f = metrics_find(ms, name, len - sl);
			if (f != NULL && f->type == METRIC_HISTOGRAM)
				return true;
		}
		if (type == METRIC_HISTOGRAM &&
		    metrics_find_suffixed(ms, name, sfx))
			return true;
	}
	return false;
}

static bool metrics_same_text(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* An existing family must agree with a new registration in all but
 * labels. */
static int metrics_family_match(struct metrics *ms, struct metric_family *f,
				enum metric_type type, const char *help,
				const double *bounds, size_t n_bounds)
{
	if (f->type != type) {
		rs_errmsg_printf(ms->errmsg, "metric %s: registered as a %s, not "
					     "a %s", f->name,
				 metrics_type_names[f->type],
				 metrics_type_names[type]);
		return RS_EEXIST;
	}
	if (!metrics_same_text(f->help, help)) {
		rs_errmsg_printf(ms->errmsg, "metric %s: registered with another "
					     "help text", f->name);
		return RS_EEXIST;
	}
	if (type == METRIC_HISTOGRAM &&
	    (f->n_bounds != n_bounds ||
	     (n_bounds > 0 &&
	      memcmp(f->bounds, bounds, n_bounds * sizeof *bounds) != 0))) {
		rs_errmsg_printf(ms->errmsg, "metric %s: registered with other "
					     "bucket bounds", f->name);
		return RS_EEXIST;
	}
	return RS_OK;
}

static struct metric_family *metrics_family_new(enum metric_type type,
						const char *name,
						const char *help,
						const double *bounds,
						size_t n_bounds)
{
	struct metric_family *f = calloc(1, sizeof *f);

	if (f == NULL)
		return NULL;
	f->type = type;
	f->name = strdup(name);
	f->help = help != NULL ? strdup(help) : NULL;
	f->n_bounds = type == METRIC_HISTOGRAM ? n_bounds : 0;
	if (f->n_bounds > 0) {
		f->bounds = malloc(n_bounds * sizeof *bounds);
		if (f->bounds != NULL)
			memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
	}
	if (f->name == NULL || (help != NULL && f->help == NULL) ||
	    (f->n_bounds > 0 && f->bounds == NULL)) {
		metrics_family_free(f);
		return NULL;
	}
	return f;
}

/* Append a new series with the given rendered labels (taken over). */
static struct metric *metrics_series_add(struct metric_family *f,
					 char *labels)
{
	struct metric *m = calloc(1, sizeof *m);
	struct metric **v;

	if (m == NULL)
		goto err;
	if (f->type == METRIC_HISTOGRAM) {
		m->buckets = calloc(f->n_bounds + 1, sizeof *m->buckets);
		if (m->buckets == NULL)
			goto err_m;
	}
	v = realloc(f->series, (f->n_series + 1) * sizeof *v);
	if (v == NULL)
		goto err_buckets;
	f->series = v;
	m->family = f;
	m->labels = labels;
	f->series[f->n_series++] = m;
	return m;

err_buckets:
	free(m->buckets);
err_m:
	free(m);
err:
	free(labels);
	return NULL;
}

static int metrics_args_check(struct metrics *ms, enum metric_type type,
			      const char *name, const char *const *labels,
			      const double *bounds, size_t n_bounds)
{
	if (name == NULL || !metrics_name_valid(name, true)) {
		rs_errmsg_printf(ms->errmsg, "invalid metric name '%s'",
				 name != NULL ? name : "(null)");
		return RS_EINVAL;
	}
	if (metrics_labels_check(ms, type, labels) != RS_OK ||
	    (type == METRIC_HISTOGRAM &&
	     metrics_bounds_check(ms, bounds, n_bounds) != RS_OK)) {
		rs_errmsg_wrapf(ms->errmsg, "metric %s", name);
		return RS_EINVAL;
	}
	return RS_OK;
}

/* Find or create the family for a registration that passed the checks. */
static struct metric_family *metrics_family_get(struct metrics *ms,
						enum metric_type type,
						const char *name,
						const char *help,
						const double *bounds,
						size_t n_bounds, bool *created)
{
	struct metric_family *f = metrics_find(ms, name, strlen(name));
	struct metric_family **v;

	*created = false;
	if (f != NULL)
		return metrics_family_match(ms, f, type, help, bounds, n_bounds) ==
				       RS_OK
			       ? f
			       : NULL;
	if (metrics_name_clash(ms, type, name)) {
		rs_errmsg_printf(ms->errmsg, "metric %s: name clashes with a "
					     "histogram's series", name);
		return NULL;
	}
	v = realloc(ms->families, (ms->n_families + 1) * sizeof *v);
	if (v == NULL)
		goto err_nomem;
	ms->families = v;
	f = metrics_family_new(type, name, help, bounds, n_bounds);
	if (f == NULL)
		goto err_nomem;
	ms->families[ms->n_families++] = f;
	*created = true;
	return f;

err_nomem:
	rs_errmsg_printf(ms->errmsg, "metric %s: out of memory", name);
	return NULL;
}

/* metrics_register; *series_created tells a new series from a found one. */
static struct metric *metrics_register_series(struct metrics *ms,
					      enum metric_type type,
					      const char *name, const char *help,
					      const char *const *labels,
					      const double *bounds,
					      size_t n_bounds,
					      bool *series_created)
{
	struct metric_family *f;
	struct metric *m;
	char *rendered;
	bool created;

	assert(ms != NULL);
	assert(type == METRIC_COUNTER || type == METRIC_GAUGE ||
	       type == METRIC_HISTOGRAM);
	*series_created = false;
	if (metrics_args_check(ms, type, name, labels, bounds, n_bounds) != RS_OK)
		return NULL;
	rendered = metrics_labels_render(labels);
	if (rendered == NULL) {
		rs_errmsg_printf(ms->errmsg, "metric %s: out of memory", name);
		return NULL;
	}
	f = metrics_family_get(ms, type, name, help, bounds, n_bounds, &created);
	if (f == NULL) {
		free(rendered);
		return NULL;
	}
	for (size_t i = 0; i < f->n_series; i++) {
		if (strcmp(f->series[i]->labels, rendered) == 0) {
			free(rendered);
			return f->series[i];
		}
	}
	m = metrics_series_add(f, rendered);
	if (m == NULL) {
		rs_errmsg_printf(ms->errmsg, "metric %s: out of memory", name);
		if (created) { /* undo, so that a failure changes nothing */
			ms->n_families--;
			metrics_family_free(f);
		}
		return NULL;
	}
	assert(m->family == f && f->n_series > 0);
	*series_created = true;
	return m;
}

struct metric *metrics_register(struct metrics *ms, enum metric_type type,
				const char *name, const char *help,
				const char *const *labels, const double *bounds,
				size_t n_bounds)
{
	bool created;

	return metrics_register_series(ms, type, name, help, labels, bounds,
				       n_bounds, &created);
}

/* A gauge or counter whose value read(ctx) gives at render time. */
static struct metric *metrics_register_fn(struct metrics *ms,
					  enum metric_type type,
					  const char *name, const char *help,
					  metrics_read_fn read, void *ctx)
{
	struct metric *m;
	bool created;

	assert(read != NULL);
	m = metrics_register_series(ms, type, name, help, NULL, NULL, 0,
				    &created);
	if (m == NULL)
		return NULL;
	if (created) {
		m->read = read;
		m->read_ctx = ctx;
	}
	if (m->read != read || m->read_ctx != ctx) {
		rs_errmsg_printf(ms->errmsg, "metric %s: already registered with "
					     "another value source", name);
		return NULL;
	}
	assert(m->family->type == type);
	return m;
}

struct metric *metrics_gauge_fn(struct metrics *ms, const char *name,
				const char *help, metrics_read_fn read,
				void *ctx)
{
	return metrics_register_fn(ms, METRIC_GAUGE, name, help, read, ctx);
}

struct metric *metrics_counter_fn(struct metrics *ms, const char *name,
				  const char *help, metrics_read_fn read,
				  void *ctx)
{
	return metrics_register_fn(ms, METRIC_COUNTER, name, help, read, ctx);
}

struct metric *metrics_counter(struct metrics *ms, const char *name,
			       const char *help)
{
	return metrics_register(ms, METRIC_COUNTER, name, help, NULL, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *ms, const char *name,
			     const char *help)
{
	return metrics_register(ms, METRIC_GAUGE, name, help, NULL, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *ms, const char *name,
				 const char *help, const double *bounds,
				 size_t n_bounds)
{
	return metrics_register(ms, METRIC_HISTOGRAM, name, help, NULL, bounds,
				n_bounds);
}

const char *metrics_errmsg(const struct metrics *ms)
{
	return ms->errmsg;
}

/* ---- updates and reads ---- */

void metrics_add(struct metric *m, uint64_t v)
{
	assert(m != NULL && m->family->type == METRIC_COUNTER && m->read == NULL);
	m->counter += v;
}

void metrics_inc(struct metric *m)
{
	metrics_add(m, 1);
}

void metrics_gauge_set(struct metric *m, double v)
{
	assert(m != NULL && m->family->type == METRIC_GAUGE && m->read == NULL);
	m->gauge = v;
}

void metrics_gauge_add(struct metric *m, double delta)
{
	assert(m != NULL && m->family->type == METRIC_GAUGE && m->read == NULL);
	m->gauge += delta;
}

void metrics_observe(struct metric *m, double v)
{
	const struct metric_family *f;
	size_t i = 0;

	assert(m != NULL && m->family->type == METRIC_HISTOGRAM);
	f = m->family;
	/* NaN compares false with everything and lands in +Inf. */
	while (i < f->n_bounds && !(v <= f->bounds[i]))
		i++;
	assert(i <= f->n_bounds);
	m->buckets[i]++;
	m->count++;
	m->sum += v;
}

uint64_t metrics_counter_get(const struct metric *m)
{
	assert(m != NULL && m->family->type == METRIC_COUNTER);
	return m->read != NULL ? (uint64_t)m->read(m->read_ctx) : m->counter;
}

double metrics_gauge_get(const struct metric *m)
{
	assert(m != NULL && m->family->type == METRIC_GAUGE);
	return m->read != NULL ? m->read(m->read_ctx) : m->gauge;
}

uint64_t metrics_histogram_count(const struct metric *m)
{
	assert(m != NULL && m->family->type == METRIC_HISTOGRAM);
	return m->count;
}

double metrics_histogram_sum(const struct metric *m)
{
	assert(m != NULL && m->family->type == METRIC_HISTOGRAM);
	return m->sum;
}

/* ---- rendering ---- */

/* "<name><suffix>{<labels>[,<extra>]} " */
static int metrics_put_series(struct rs_buf *out, const struct metric *m,
			      const char *suffix, const char *extra)
{
	bool braces = m->labels[0] != '\0' || extra != NULL;
	int rv = metrics_put_str(out, m->family->name);

	if (rv == RS_OK)
		rv = metrics_put_str(out, suffix);
	if (rv == RS_OK && braces) {
		rv = metrics_put_str(out, "{");
		if (rv == RS_OK)
			rv = metrics_put_str(out, m->labels);
		if (rv == RS_OK && extra != NULL && m->labels[0] != '\0')
			rv = metrics_put_str(out, ",");
		if (rv == RS_OK && extra != NULL)
			rv = metrics_put_str(out, extra);
		if (rv == RS_OK)
			rv = metrics_put_str(out, "}");
	}
	if (rv == RS_OK)
		rv = metrics_put_str(out, " ");
	return rv;
}

static int metrics_render_histogram(struct rs_buf *out, const struct metric *m)
{
	const struct metric_family *f = m->family;
	uint64_t cumulative = 0;
	char le[64], num[40];
	int rv = RS_OK;

	for (size_t i = 0; i <= f->n_bounds && rv == RS_OK; i++) {
		if (i < f->n_bounds)
			metrics_format_double(num, sizeof num, f->bounds[i]);
		else
			snprintf(num, sizeof num, "+Inf");
		snprintf(le, sizeof le, "le=\"%s\"", num);
		cumulative += m->buckets[i];
		rv = metrics_put_series(out, m, "_bucket", le);
		if (rv == RS_OK)
			rv = metrics_put_u64(out, cumulative);
		if (rv == RS_OK)
			rv = metrics_put_str(out, "\n");
	}
	assert(rv != RS_OK || cumulative == m->count);
	if (rv == RS_OK)
		rv = metrics_put_series(out, m, "_sum", NULL);
	if (rv == RS_OK)
		rv = metrics_put_double(out, m->sum);
	if (rv == RS_OK)
		rv = metrics_put_str(out, "\n");
	if (rv == RS_OK)
		rv = metrics_put_series(out, m, "_count", NULL);
	if (rv == RS_OK)
		rv = metrics_put_u64(out, m->count);
	if (rv == RS_OK)
		rv = metrics_put_str(out, "\n");
	return rv;
}

static int metrics_render_series(struct rs_buf *out, const struct metric *m)
{
	int rv;

	if (m->family->type == METRIC_HISTOGRAM)
		return metrics_render_histogram(out, m);
	rv = metrics_put_series(out, m, "", NULL);
	if (rv == RS_OK && m->family->type == METRIC_COUNTER && m->read != NULL)
		rv = metrics_put_double(out, m->read(m->read_ctx));
	else if (rv == RS_OK && m->family->type == METRIC_COUNTER)
		rv = metrics_put_u64(out, m->counter);
	else if (rv == RS_OK)
		rv = metrics_put_double(out, metrics_gauge_get(m));
	if (rv == RS_OK)
		rv = metrics_put_str(out, "\n");
	return rv;
}

static int metrics_render_family(struct rs_buf *out,
				 const struct metric_family *f)
{
	int rv = RS_OK;

	assert(f->n_series > 0);
	if (f->help != NULL) {
		rv = metrics_put_str(out, "# HELP ");
		if (rv == RS_OK)
			rv = metrics_put_str(out, f->name);
		if (rv == RS_OK)
			rv = metrics_put_str(out, " ");
		if (rv == RS_OK)
			rv = metrics_put_escaped(out, f->help, false);
		if (rv == RS_OK)
			rv = metrics_put_str(out, "\n");
	}
	if (rv == RS_OK)
		rv = metrics_put_str(out, "# TYPE ");
	if (rv == RS_OK)
		rv = metrics_put_str(out, f->name);
	if (rv == RS_OK)
		rv = metrics_put_str(out, " ");
	if (rv == RS_OK)
		rv = metrics_put_str(out, metrics_type_names[f->type]);
	if (rv == RS_OK)
		rv = metrics_put_str(out, "\n");
	for (size_t i = 0; i < f->n_series && rv == RS_OK; i++)
		rv = metrics_render_series(out, f->series[i]);
	return rv;
}

int metrics_render_prometheus(const struct metrics *ms, struct rs_buf *out)
{
	size_t start;
	int rv = RS_OK;

	assert(ms != NULL && out != NULL);
	start = out->len;
	for (size_t i = 0; i < ms->n_families && rv == RS_OK; i++)
		rv = metrics_render_family(out, ms->families[i]);
	if (rv != RS_OK)
		out->len = start;
	assert(rv != RS_OK || out->len >= start);
	return rv;
}
