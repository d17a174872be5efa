/* watch: see watch.h.  History is a FIFO of batch copies. */
#include "raftstore/watch.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"

#define WATCH_HISTORY_DEFAULT (64u * 1024u * 1024u)

struct watch_entry {
	struct batch b;
	struct watch_entry *next;
};

struct watch_hub {
	struct watch_entry *head, *tail;
	size_t bytes;
	size_t max_bytes;
	uint64_t oldest; /* history covers versions > oldest */
	uint64_t latest;
	struct watcher *watchers;
};

struct watch_hub *watch_hub_create(uint64_t start_version, size_t max_bytes)
{
	struct watch_hub *h = calloc(1, sizeof *h);
	if (h == NULL)
		abort();
	h->max_bytes = max_bytes ? max_bytes : WATCH_HISTORY_DEFAULT;
	h->oldest = h->latest = start_version;
	return h;
}

static void watch_drop_oldest(struct watch_hub *h)
{
	struct watch_entry *e = h->head;
	assert(e != NULL);
	h->head = e->next;
	if (h->head == NULL)
		h->tail = NULL;
	h->bytes -= e->b.body.len + sizeof *e;
	h->oldest = e->b.version;
	batch_free(&e->b);
	free(e);
}

void watch_hub_destroy(struct watch_hub *h)
{
	assert(h->watchers == NULL);
	while (h->head != NULL)
		watch_drop_oldest(h);
	free(h);
}

void watch_hub_reset(struct watch_hub *h, uint64_t version)
{
	while (h->head != NULL)
		watch_drop_oldest(h);
	h->oldest = h->latest = version;
}

/* key in [begin, end)?  end_len 0 means unbounded. */
static bool watch_in(const uint8_t *k, size_t kl, const uint8_t *b, size_t bl,
		     const uint8_t *e, size_t el)
{
	return bytes_compare(k, kl, b, bl) >= 0 &&
	       (el == 0 || bytes_compare(k, kl, e, el) < 0);
}

/* Fill out with the mutations of b inside [begin, end); true if any. */
static bool watch_filter(const struct batch *b, const uint8_t *begin,
			 uint32_t begin_len, const uint8_t *end,
			 uint32_t end_len, struct batch *out)
{
	struct mutation m;
	size_t pos = 0;

	batch_reset(out);
	out->version = b->version;
	out->epoch = b->epoch;
	while (batch_next(b, &pos, &m)) {
		if (m.type != MUT_CLEAR_RANGE) {
			if (!watch_in(m.key, m.key_len, begin, begin_len, end, end_len))
				continue;
			if (m.type == MUT_SET)
				batch_set(out, m.key, m.key_len, m.val, m.val_len, NULL);
			else
				batch_clear(out, m.key, m.key_len, NULL);
			continue;
		}
		/* Clip [m.key, m.val) to [begin, end). */
		const uint8_t *lo = m.key, *hi = m.val;
		uint32_t lol = m.key_len, hil = m.val_len;
		if (bytes_compare(lo, lol, begin, begin_len) < 0)
			lo = begin, lol = begin_len;
		if (end_len > 0 && bytes_compare(hi, hil, end, end_len) > 0)
			hi = end, hil = end_len;
		if (bytes_compare(lo, lol, hi, hil) < 0)
			batch_clear_range(out, lo, lol, hi, hil, NULL);
	}
	return out->count > 0;
}

static void watch_deliver(struct watcher *w, const struct batch *b)
{
	struct batch f;

	if (b->version <= w->delivered)
		return; /* exactly once, even across history and live */
	batch_init(&f);
	if (watch_filter(b, w->begin.data, (uint32_t)w->begin.len, w->end.data,
			 (uint32_t)w->end.len, &f))
		w->deliver(w, &f);
	w->delivered = b->version;
	batch_free(&f);
}

void watch_hub_applied(struct watch_hub *h, const struct batch *b)
{
	struct watch_entry *e = calloc(1, sizeof *e);
	struct watcher *w, *next;

	assert(b->version > h->latest);
	if (e == NULL)
		abort();
	batch_init(&e->b);
	e->b.version = b->version;
	e->b.epoch = b->epoch;
	if (b->body.len > 0 && batch_load_body(&e->b, b->body.data,
					       b->body.len) != RS_OK)
		abort();
	if (h->tail != NULL)
		h->tail->next = e;
	else
		h->head = e;
	h->tail = e;
	h->bytes += e->b.body.len + sizeof *e;
	h->latest = b->version;
	while (h->bytes > h->max_bytes && h->head != h->tail)
		watch_drop_oldest(h);
	for (w = h->watchers; w != NULL; w = next) {
		next = w->next; /* deliver may remove w */
		watch_deliver(w, b);
	}
}

int watch_add(struct watch_hub *h, struct watcher *w, const uint8_t *begin,
	      uint32_t begin_len, const uint8_t *end, uint32_t end_len,
	      uint64_t from_version, watch_deliver_fn deliver)
{
	if (from_version == 0)
		from_version = h->latest + 1;
	if (from_version <= h->oldest)
		return RS_ECOMPACTED;
	rs_buf_init(&w->begin);
	rs_buf_init(&w->end);
	if (rs_buf_append(&w->begin, begin, begin_len) != RS_OK ||
	    rs_buf_append(&w->end, end, end_len) != RS_OK)
		abort();
	w->deliver = deliver;
	w->delivered = from_version - 1;
	for (struct watch_entry *e = h->head; e != NULL; e = e->next)
		watch_deliver(w, &e->b);
	w->prev = NULL;
	w->next = h->watchers;
	if (h->watchers != NULL)
		h->watchers->prev = w;
	h->watchers = w;
	return RS_OK;
}

void watch_remove(struct watch_hub *h, struct watcher *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		h->watchers = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	rs_buf_free(&w->begin);
	rs_buf_free(&w->end);
}

uint64_t watch_hub_oldest(const struct watch_hub *h)
{
	return h->oldest + 1;
}

struct watcher *watch_hub_first(const struct watch_hub *h)
{
	return h->watchers;
}
