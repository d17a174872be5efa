/*
 * raftheap: see raftheap.h.
 */
#include "raftstore/raftheap.h"

#include <assert.h>
#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "raftstore/freelater.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"

/* The bracket of the thread that opened one. */
struct raftheap_defer {
	bool on;
	void **ptrs;
	size_t n, cap;
	struct raftheap_stats stats;
};

static _Thread_local struct raftheap_defer raftheap_defer;

/* Record ptr in this thread's list; false if there is no room. */
static bool raftheap_record(void *ptr)
{
	struct raftheap_defer *d = &raftheap_defer;

	if (d->n == d->cap) {
		size_t cap = d->cap != 0 ? d->cap * 2 : 4096;
		void **p = realloc(d->ptrs, cap * sizeof *p);

		if (p == NULL)
			return false;
		d->ptrs = p;
		d->cap = cap;
	}
	d->ptrs[d->n++] = ptr;
	return true;
}

static void *raftheap_malloc(void *data, size_t size)
{
	(void)data;
	return malloc(size);
}

static void raftheap_free(void *data, void *ptr)
{
	(void)data;
	if (ptr != NULL && raftheap_defer.on && raftheap_record(ptr))
		return;
	free(ptr);
}

static void *raftheap_calloc(void *data, size_t nmemb, size_t size)
{
	(void)data;
	return calloc(nmemb, size);
}

static void *raftheap_realloc(void *data, void *ptr, size_t size)
{
	(void)data;
	return realloc(ptr, size);
}

static void *raftheap_aligned_alloc(void *data, size_t alignment,
				    size_t size)
{
	(void)data;
	return aligned_alloc(alignment, size);
}

/* aligned_alloc's memory goes back through free(), as c-raft's own
 * default heap does it. */
static void raftheap_aligned_free(void *data, size_t alignment, void *ptr)
{
	(void)alignment;
	raftheap_free(data, ptr);
}

static struct raft_heap raftheap_heap = {
	.data = NULL,
	.malloc = raftheap_malloc,
	.free = raftheap_free,
	.calloc = raftheap_calloc,
	.realloc = raftheap_realloc,
	.aligned_alloc = raftheap_aligned_alloc,
	.aligned_free = raftheap_aligned_free,
};

void raftheap_install(void)
{
	raft_heap_set(&raftheap_heap);
}

void raftheap_defer_begin(void)
{
	assert(!raftheap_defer.on && raftheap_defer.n == 0);
	raftheap_defer.on = true;
}

void raftheap_defer_end(uv_loop_t *loop)
{
	struct raftheap_defer *d = &raftheap_defer;

	assert(d->on);
	d->on = false;
	if (d->n >= RAFTHEAP_DEFER_MIN &&
	    freelater_queue(loop, d->ptrs, d->n) == RS_OK) {
		d->stats.deferred += d->n;
		d->stats.lists++;
		d->ptrs = NULL; /* the worker's now */
		d->n = d->cap = 0;
		return;
	}
	for (size_t i = 0; i < d->n; i++)
		free(d->ptrs[i]);
	d->stats.freed_at_end += d->n;
	free(d->ptrs);
	d->ptrs = NULL;
	d->n = d->cap = 0;
}

struct raftheap_stats raftheap_stats(void)
{
	return raftheap_defer.stats;
}

static double raftheap_read_deferred(void *ctx)
{
	(void)ctx;
	return (double)raftheap_defer.stats.deferred;
}

int raftheap_metrics_register(struct metrics *ms)
{
	if (metrics_counter_fn(ms, "raftstore_raft_frees_deferred_total",
			       "c-raft's frees of log entries a snapshot "
			       "compacted, done on a worker thread instead of "
			       "the loop (c-raft guard 15)",
			       raftheap_read_deferred, NULL) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
