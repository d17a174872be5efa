/*
 * metrics: a process-wide registry of counters, gauges and histograms, and
 * their rendering in the Prometheus text exposition format, version 0.0.4.
 *
 * One registry serves one loop thread: nothing is locked, and every call
 * must come from the thread that owns the registry.
 *
 * Guarantees:
 *   - A metric is registered once, usually at startup; registering the same
 *     (name, labels) again returns the same struct metric, so modules need
 *     not coordinate.  Updates (metrics_add, metrics_observe, ...) are O(1)
 *     or O(buckets), never allocate, and cannot fail.
 *   - A struct metric stays valid until metrics_free; nothing is ever
 *     unregistered.
 *   - Gauges may be read through a callback at render time
 *     (metrics_gauge_fn) instead of being set.
 *   - Rendering is deterministic: families in the order they were first
 *     registered, series of one family in registration order, histogram
 *     buckets in increasing order.
 *
 * Output format (one family; "\n" line ends, no trailing spaces):
 *
 *   # HELP <name> <help, with \ as \\ and newline as \n>
 *   # TYPE <name> counter|gauge|histogram
 *   <name>{<labels>} <value>                    counter and gauge
 *   <name>_bucket{<labels>,le="<bound>"} <n>    histogram, cumulative,
 *   <name>_bucket{<labels>,le="+Inf"} <count>     one line per bound
 *   <name>_sum{<labels>} <sum>
 *   <name>_count{<labels>} <count>
 *
 * "{...}" is left out when a series has no labels; the HELP line when help
 * is NULL.  Label values are escaped (\\, \", \n).  Doubles are written
 * as integers when integral and below 1e17 ("10", "-3"), otherwise in the
 * shortest %g form that reads back to the same double ("0.0005", "2.5",
 * "1e+21"); NaN and infinities as NaN, +Inf, -Inf.  Counters and bucket
 * counts are unsigned integers.
 */
#ifndef RS_METRICS_H
#define RS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/buf.h"

struct metrics;
struct metric;

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* Bucket bounds (upper, inclusive; +Inf is implicit) for durations in
 * seconds: 0.5 ms to 10 s. */
#define METRICS_BUCKETS_SECONDS_COUNT 14
extern const double metrics_buckets_seconds[METRICS_BUCKETS_SECONDS_COUNT];
/* For sizes in bytes: 64 B to 64 MiB, powers of 4. */
#define METRICS_BUCKETS_BYTES_COUNT 11
extern const double metrics_buckets_bytes[METRICS_BUCKETS_BYTES_COUNT];

/* Create an empty registry.  RS_ENOMEM leaves *out untouched. */
int metrics_new(struct metrics **out);
/* Free the registry and every metric in it; NULL is a no-op. */
void metrics_free(struct metrics *ms);

/*
 * Register a metric, or find the one already registered under the same
 * name and labels.
 *
 *   name     [a-zA-Z_:][a-zA-Z0-9_:]*.  Counters should end in _total.
 *   help     one line of text for "# HELP", or NULL for none.  All series
 *            of one name share type, help and (histograms) bounds.
 *   labels   constant labels: NULL, or a NULL-terminated array of
 *            name/value pairs, {"node", "1", "role", "voter", NULL}.
 *            Names are [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", and
 *            not "le" on a histogram; values are UTF-8 text.  Two label
 *            sets are the same only if they list the same pairs in the same
 *            order.
 *   bounds   histograms only: n_bounds finite, strictly increasing upper
 *            bounds, without +Inf (always added).  n_bounds may be 0.
 *
 * The registry copies every string and the bounds.  Returns NULL, with a
 * message in metrics_errmsg(), for an invalid name, label or bounds, for
 * a conflict with an earlier registration (another type, help, or bounds
 * under the same name; or a name another histogram's _bucket, _sum or
 * _count series already uses, or the reverse), or if out of memory.  A
 * failed call leaves the registry as it was.
 */
struct metric *metrics_register(struct metrics *ms, enum metric_type type,
				const char *name, const char *help,
				const char *const *labels, const double *bounds,
				size_t n_bounds);

/* A gauge whose value is whatever read(ctx) returns when it is rendered or
 * read: for values another module already keeps (bytes on disk, an index),
 * so that nobody has to copy them in.  read must be cheap, must not touch
 * the registry, and ctx must stay valid while the registry may still be
 * rendered or read.  Registering the same
 * name again with the same read and ctx returns the same metric; with
 * another read or ctx, or over a plain gauge, it fails (NULL, errmsg). */
typedef double (*metrics_read_fn)(void *ctx);
struct metric *metrics_gauge_fn(struct metrics *ms, const char *name,
				const char *help, metrics_read_fn read,
				void *ctx);

/* The same for a counter whose value is kept elsewhere and only grows
 * (CPU seconds, an index); rendered as a double.  metrics_add on it is a
 * bug (assert). */
struct metric *metrics_counter_fn(struct metrics *ms, const char *name,
				  const char *help, metrics_read_fn read,
				  void *ctx);

/* Shorthands for metrics_register without labels. */
struct metric *metrics_counter(struct metrics *ms, const char *name,
			       const char *help);
struct metric *metrics_gauge(struct metrics *ms, const char *name,
			     const char *help);
struct metric *metrics_histogram(struct metrics *ms, const char *name,
				 const char *help, const double *bounds,
				 size_t n_bounds);

/* Why the last registration failed ("" if none has). */
const char *metrics_errmsg(const struct metrics *ms);

/* Updates.  Each asserts that m is non-NULL and of the right type (and,
 * for gauges, not read through a callback). */
void metrics_add(struct metric *counter, uint64_t v);
void metrics_inc(struct metric *counter);
void metrics_gauge_set(struct metric *gauge, double v);
void metrics_gauge_add(struct metric *gauge, double delta);
/* Count v in the first bucket whose bound is >= v (NaN: only in +Inf) and
 * add it to the sum. */
void metrics_observe(struct metric *histogram, double v);

/* Reads, for /status and tests. */
uint64_t metrics_counter_get(const struct metric *counter);
double metrics_gauge_get(const struct metric *gauge);
uint64_t metrics_histogram_count(const struct metric *histogram);
double metrics_histogram_sum(const struct metric *histogram);

/* Append the whole registry to out in the format above.  RS_ENOMEM
 * restores out->len to its value at entry. */
int metrics_render_prometheus(const struct metrics *ms, struct rs_buf *out);

#endif /* RS_METRICS_H */
