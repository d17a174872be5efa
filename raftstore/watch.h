/*
 * watch: change feeds on a key range, from a version, with none lost and
 * none repeated.
 *
 * The hub keeps the most recent applied batches in memory (up to a byte
 * budget), so a watch can start in the past: watch_add(from_version = V)
 * first replays every retained change at version >= V, then delivers new
 * ones as they are applied, in version order, each exactly once.  A client
 * resumes after a disconnect with V = last version seen + 1.  If V is older
 * than the retained history, the watch is refused with RS_ECOMPACTED, and
 * the client must re-read the range and start again from the read version.
 *
 * Only the mutations inside the watched range are delivered; a clear-range
 * is clipped to it.  Not thread-safe: owned by the node's loop.
 */
#ifndef RS_WATCH_H
#define RS_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"

struct watcher;
/* One change: the filtered mutations of the batch at b->version. */
typedef void (*watch_deliver_fn)(struct watcher *w, const struct batch *b);

struct watcher {
	void *data;
	/* private */
	struct rs_buf begin;
	struct rs_buf end; /* empty: to the end of the key space */
	watch_deliver_fn deliver;
	struct watcher *prev, *next;
	uint64_t delivered; /* last version delivered */
};

struct watch_hub;

/* start_version: the node's applied version now (history begins after it).
 * max_bytes: history budget (0 = 64 MiB). */
struct watch_hub *watch_hub_create(uint64_t start_version, size_t max_bytes);
/* Watchers must have been removed. */
void watch_hub_destroy(struct watch_hub *h);

/* A batch was applied: keep it and deliver it to matching watchers. */
void watch_hub_applied(struct watch_hub *h, const struct batch *b);
/* The state was replaced (snapshot install): history before version is
 * gone; live watchers that have not reached it are ended by the caller. */
void watch_hub_reset(struct watch_hub *h, uint64_t version);

/*
 * Start w on [begin, end) from from_version (0 = from the next change).
 * Replays retained history synchronously through deliver, then w is live.
 * RS_ECOMPACTED if from_version is below the history (nothing delivered).
 */
int watch_add(struct watch_hub *h, struct watcher *w, const uint8_t *begin,
	      uint32_t begin_len, const uint8_t *end, uint32_t end_len,
	      uint64_t from_version, watch_deliver_fn deliver);
void watch_remove(struct watch_hub *h, struct watcher *w);

/* The first live watcher (iterate with ->next), to end them all. */
struct watcher *watch_hub_first(const struct watch_hub *h);

/* Oldest from_version still servable. */
uint64_t watch_hub_oldest(const struct watch_hub *h);

#endif /* RS_WATCH_H */
