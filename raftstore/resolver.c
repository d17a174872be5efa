/*
 * resolver: see resolver.h.
 *
 * Structure:
 *   - A FIFO of writes in version order, kept as a ring indexed by an
 *     ever-growing sequence number: write `seq` lives in
 *     writes[seq & (writes_cap - 1)] for head <= seq < tail.  Each entry
 *     owns one malloc'ed copy of its bytes (begin, then end for a range).
 *   - A second ring holding the sequence numbers of the range writes only.
 *     A point read must also look at ranges that cover its key; clear-range
 *     writes are rare, so walking just those (newest first, stopping at the
 *     read version) keeps a point read O(1 + recent range writes) instead of
 *     O(all recent writes).
 *   - An open-addressing hash (linear probing, backward-shift deletion, no
 *     tombstones) from key to the newest version that point-wrote it.  A
 *     slot does not copy the key: it points at the bytes of the newest FIFO
 *     entry for that key.
 *
 * Hash invariant: a slot for key k holds the version v of the newest point
 * write of k, and its key pointer is the bytes of a live FIFO entry at
 * version v.  Pruning drops every entry below a cut-off, oldest first, and
 * removes k's slot when it drops an entry of k whose version equals the
 * slot's.  All entries sharing a version are dropped in the same prune, and
 * the slot is removed at the first of them, so it never points at freed
 * bytes nor at a dropped write.
 *
 * Key order is byte-wise with a shorter prefix first.  An empty end key
 * means "to the end of the key space" (see resolver.h).
 */
#include "raftstore/resolver.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"

#define RESOLVER_RING_MIN 64u
#define RESOLVER_HASH_MIN 64u

/* One recorded write: key [bytes, bytes + begin_len), or for a range also
 * the end key at bytes + begin_len. */
struct resolver_write {
	uint64_t version;
	uint8_t *bytes;
	uint32_t begin_len;
	uint32_t end_len;
	bool is_range;
};

struct resolver_slot {
	const uint8_t *key; /* NULL: empty slot */
	uint64_t hash;
	uint64_t version;
	uint32_t key_len;
};

struct resolver {
	uint64_t window_versions;
	uint64_t oldest_version;
	uint64_t newest_version;

	struct resolver_write *writes;
	size_t writes_cap; /* power of two, or 0 before the first write */
	uint64_t head;
	uint64_t tail;

	uint64_t *ranges; /* sequence numbers of range writes */
	size_t ranges_cap;
	uint64_t ranges_head;
	uint64_t ranges_tail;

	struct resolver_slot *slots;
	size_t slots_cap; /* power of two */
	size_t slots_used;
};

static void *resolver_alloc(size_t size)
{
	void *p = malloc(size);

	if (p == NULL) {
		/* See resolver.h: the leader cannot resolve without memory, and
		 * answering "no conflict" by mistake would break isolation. */
		fprintf(stderr, "resolver: out of memory allocating %zu bytes\n",
			size);
		abort();
	}
	return p;
}

/* ---- keys ---- */

/* key < end, where an empty end is past every key. */
static bool resolver_below_end(const uint8_t *key, uint32_t key_len,
			       const uint8_t *end, uint32_t end_len)
{
	return end_len == 0 || bytes_compare(key, key_len, end, end_len) < 0;
}

/* [begin, end) is exactly one key: end == begin + "\0". */
static bool resolver_is_point(const uint8_t *begin, uint32_t begin_len,
			      const uint8_t *end, uint32_t end_len)
{
	if ((uint64_t)end_len != (uint64_t)begin_len + 1 ||
	    end[begin_len] != 0)
		return false;
	return begin_len == 0 || memcmp(begin, end, begin_len) == 0;
}

static uint64_t resolver_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Eight bytes per multiply, then murmur3's finalizer so that the low bits
 * used by the power-of-two table depend on every input byte. */
static uint64_t resolver_hash(const uint8_t *key, uint32_t key_len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ key_len;
	uint64_t w;

	while (key_len >= 8) {
		memcpy(&w, key, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
		key += 8;
		key_len -= 8;
	}
	w = 0;
	if (key_len > 0)
		memcpy(&w, key, key_len);
	return resolver_mix(h ^ w);
}

/* ---- hash table ---- */

/* The slot holding key, or the empty slot where it would go.  Terminates
 * because the load factor stays below 3/4. */
static size_t resolver_find(const struct resolver *r, const uint8_t *key,
			    uint32_t key_len, uint64_t hash)
{
	size_t mask = r->slots_cap - 1;
	size_t i = (size_t)hash & mask;

	assert(r->slots_used < r->slots_cap);
	for (;;) {
		const struct resolver_slot *s = &r->slots[i];
		if (s->key == NULL)
			return i;
		if (s->hash == hash && s->key_len == key_len &&
		    (key_len == 0 || memcmp(s->key, key, key_len) == 0))
			return i;
		i = (i + 1) & mask;
	}
}

static void resolver_hash_init(struct resolver *r, size_t cap)
{
	assert(cap >= RESOLVER_HASH_MIN && (cap & (cap - 1)) == 0);
	r->slots = resolver_alloc(cap * sizeof(*r->slots));
	memset(r->slots, 0, cap * sizeof(*r->slots));
	r->slots_cap = cap;
	r->slots_used = 0;
	assert(r->slots[cap - 1].key == NULL);
}

static void resolver_hash_grow(struct resolver *r)
{
	struct resolver_slot *old = r->slots;
	size_t old_cap = r->slots_cap;
	size_t used = r->slots_used;

	(void)used; /* only asserted */
	assert(old_cap * 2 > old_cap);
	resolver_hash_init(r, old_cap * 2);
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].key == NULL)
			continue;
		size_t j = resolver_find(r, old[i].key, old[i].key_len,
					 old[i].hash);
		assert(r->slots[j].key == NULL); /* keys are unique */
		r->slots[j] = old[i];
		r->slots_used++;
	}
	assert(r->slots_used == used);
	free(old);
}

/* Point key (whose bytes belong to the FIFO entry just pushed) at version. */
static void resolver_hash_put(struct resolver *r, const uint8_t *key,
			      uint32_t key_len, uint64_t version)
{
	uint64_t hash = resolver_hash(key, key_len);
	size_t i;

	if ((r->slots_used + 1) * 4 > r->slots_cap * 3)
		resolver_hash_grow(r);
	i = resolver_find(r, key, key_len, hash);
	if (r->slots[i].key == NULL) {
		r->slots[i].hash = hash;
		r->slots[i].key_len = key_len;
		r->slots_used++;
	}
	assert(r->slots[i].key == NULL || r->slots[i].version <= version);
	/* Re-point at the newest entry: the older one may be pruned first. */
	r->slots[i].key = key;
	r->slots[i].version = version;
	assert(r->slots_used < r->slots_cap);
}

/* Empty slot i and shift later members of its probe run back into the
 * hole, so lookups never need tombstones. */
static void resolver_hash_delete(struct resolver *r, size_t i)
{
	size_t mask = r->slots_cap - 1;
	size_t j = i;

	assert(r->slots[i].key != NULL);
	assert(r->slots_used > 0);
	for (;;) {
		j = (j + 1) & mask;
		if (r->slots[j].key == NULL)
			break;
		size_t home = (size_t)r->slots[j].hash & mask;
		/* Move j into the hole unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			r->slots[i] = r->slots[j];
			i = j;
		}
	}
	r->slots[i].key = NULL;
	r->slots_used--;
}

/* A point write of key at version is being dropped from the FIFO. */
static void resolver_hash_forget(struct resolver *r, const uint8_t *key,
				 uint32_t key_len, uint64_t version)
{
	uint64_t hash = resolver_hash(key, key_len);
	size_t i = resolver_find(r, key, key_len, hash);

	if (r->slots[i].key == NULL)
		return; /* an earlier entry at this version removed it */
	assert(r->slots[i].version >= version);
	if (r->slots[i].version == version)
		resolver_hash_delete(r, i);
	assert(r->slots_used < r->slots_cap);
}

/* ---- rings ---- */

/* Double a ring of elem-sized items, keeping each live sequence number
 * seq at index seq & (cap - 1). */
static void *resolver_ring_grow(void *items, size_t elem, size_t *cap,
				uint64_t head, uint64_t tail)
{
	size_t old_cap = *cap;
	size_t new_cap = old_cap ? old_cap * 2 : RESOLVER_RING_MIN;
	uint8_t *n;

	assert(tail - head == old_cap);
	if (new_cap < old_cap || new_cap > SIZE_MAX / elem) {
		fprintf(stderr, "resolver: ring of %zu entries too large\n",
			old_cap);
		abort();
	}
	n = resolver_alloc(new_cap * elem);
	for (uint64_t s = head; s < tail; s++)
		memcpy(n + (s & (new_cap - 1)) * elem,
		       (uint8_t *)items + (s & (old_cap - 1)) * elem, elem);
	free(items);
	*cap = new_cap;
	assert(tail - head < new_cap);
	return n;
}

static struct resolver_write *resolver_at(const struct resolver *r,
					  uint64_t seq)
{
	assert(seq >= r->head && seq < r->tail);
	return &r->writes[seq & (r->writes_cap - 1)];
}

/* Append an entry at version with a fresh copy of len bytes. */
static struct resolver_write *resolver_push(struct resolver *r,
					    uint64_t version, size_t len)
{
	struct resolver_write *w;

	assert(version >= r->newest_version); /* header: version order */
	if (r->tail - r->head == r->writes_cap)
		r->writes = resolver_ring_grow(r->writes, sizeof(*r->writes),
					       &r->writes_cap, r->head,
					       r->tail);
	w = &r->writes[r->tail & (r->writes_cap - 1)];
	r->tail++;
	memset(w, 0, sizeof(*w));
	w->version = version;
	w->bytes = resolver_alloc(len > 0 ? len : 1);
	r->newest_version = version;
	assert(resolver_at(r, r->tail - 1) == w);
	return w;
}

static void resolver_drop_head(struct resolver *r)
{
	struct resolver_write *w = resolver_at(r, r->head);

	if (w->is_range) {
		assert(r->ranges_head < r->ranges_tail);
		assert(r->ranges[r->ranges_head & (r->ranges_cap - 1)] ==
		       r->head);
		r->ranges_head++;
	} else {
		resolver_hash_forget(r, w->bytes, w->begin_len, w->version);
	}
	free(w->bytes);
	w->bytes = NULL;
	r->head++;
}

/* ---- public ---- */

struct resolver *resolver_create(uint64_t window_versions)
{
	struct resolver *r = resolver_alloc(sizeof(*r));

	memset(r, 0, sizeof(*r));
	r->window_versions = window_versions;
	resolver_hash_init(r, RESOLVER_HASH_MIN);
	assert(r->oldest_version == 0 && r->newest_version == 0);
	assert(resolver_size(r) == 0);
	return r;
}

static void resolver_clear(struct resolver *r)
{
	while (r->head < r->tail)
		resolver_drop_head(r);
	assert(r->slots_used == 0);
	assert(r->ranges_head == r->ranges_tail);
	free(r->writes);
	free(r->ranges);
	free(r->slots);
	r->writes = NULL;
	r->ranges = NULL;
	r->slots = NULL;
	r->writes_cap = r->ranges_cap = r->slots_cap = 0;
}

void resolver_destroy(struct resolver *r)
{
	if (r == NULL)
		return;
	resolver_clear(r);
	free(r);
}

void resolver_reset(struct resolver *r, uint64_t version)
{
	assert(r != NULL);
	/* Also drops the memory a burst may have grown the tables to. */
	resolver_clear(r);
	resolver_hash_init(r, RESOLVER_HASH_MIN);
	r->head = r->tail = 0;
	r->ranges_head = r->ranges_tail = 0;
	r->oldest_version = version;
	r->newest_version = version;
	assert(resolver_size(r) == 0);
}

void resolver_record_key(struct resolver *r, uint64_t version,
			 const uint8_t *key, uint32_t key_len)
{
	struct resolver_write *w;

	assert(r != NULL);
	assert(key != NULL || key_len == 0);
	w = resolver_push(r, version, key_len);
	if (key_len > 0)
		memcpy(w->bytes, key, key_len);
	w->begin_len = key_len;
	resolver_hash_put(r, w->bytes, key_len, version);
	assert(!w->is_range && r->slots_used > 0);
}

void resolver_record_range(struct resolver *r, uint64_t version,
			   const uint8_t *begin, uint32_t begin_len,
			   const uint8_t *end, uint32_t end_len)
{
	struct resolver_write *w;

	assert(r != NULL);
	assert((begin != NULL || begin_len == 0) &&
	       (end != NULL || end_len == 0));
	assert(version >= r->newest_version);
	if (!resolver_below_end(begin, begin_len, end, end_len)) {
		/* Empty: conflicts with nothing, so keep nothing.  The
		 * overlap tests below rely on recorded ranges being
		 * non-empty. */
		r->newest_version = version;
		return;
	}
	w = resolver_push(r, version, (size_t)begin_len + end_len);
	if (begin_len > 0)
		memcpy(w->bytes, begin, begin_len);
	if (end_len > 0)
		memcpy(w->bytes + begin_len, end, end_len);
	w->begin_len = begin_len;
	w->end_len = end_len;
	w->is_range = true;
	if (r->ranges_tail - r->ranges_head == r->ranges_cap)
		r->ranges = resolver_ring_grow(r->ranges, sizeof(*r->ranges),
					       &r->ranges_cap, r->ranges_head,
					       r->ranges_tail);
	r->ranges[r->ranges_tail & (r->ranges_cap - 1)] = r->tail - 1;
	r->ranges_tail++;
	assert(r->ranges_tail - r->ranges_head <= r->tail - r->head);
}

void resolver_prune(struct resolver *r)
{
	uint64_t cut;

	assert(r != NULL);
	cut = r->newest_version > r->window_versions
		      ? r->newest_version - r->window_versions
		      : 0;
	while (r->head < r->tail && resolver_at(r, r->head)->version < cut)
		resolver_drop_head(r);
	/* Reads at cut or above see every write newer than themselves. */
	if (cut > r->oldest_version)
		r->oldest_version = cut;
	assert(r->head == r->tail ||
	       resolver_at(r, r->head)->version >= r->oldest_version);
	assert(r->oldest_version <= r->newest_version);
}

/* ---- check ---- */

/* Does a write newer than rv cover key?  Uses the hash for point writes and
 * walks only the range writes newer than rv. */
static bool resolver_point_conflicts(const struct resolver *r, uint64_t rv,
				     const uint8_t *key, uint32_t key_len)
{
	uint64_t hash = resolver_hash(key, key_len);
	const struct resolver_slot *s =
		&r->slots[resolver_find(r, key, key_len, hash)];

	if (s->key != NULL && s->version > rv)
		return true;
	for (uint64_t i = r->ranges_tail; i > r->ranges_head; i--) {
		uint64_t seq = r->ranges[(i - 1) & (r->ranges_cap - 1)];
		const struct resolver_write *w = resolver_at(r, seq);
		assert(w->is_range);
		if (w->version <= rv)
			break;
		if (bytes_compare(w->bytes, w->begin_len, key, key_len) <= 0 &&
		    resolver_below_end(key, key_len, w->bytes + w->begin_len,
				       w->end_len))
			return true;
	}
	return false;
}

/* Does write w overlap the non-empty read range [b, e)? */
static bool resolver_overlaps(const struct resolver_write *w,
			      const uint8_t *b, uint32_t b_len,
			      const uint8_t *e, uint32_t e_len)
{
	const uint8_t *wb = w->bytes;

	if (!w->is_range)
		return bytes_compare(b, b_len, wb, w->begin_len) <= 0 &&
		       resolver_below_end(wb, w->begin_len, e, e_len);
	assert(resolver_below_end(wb, w->begin_len, wb + w->begin_len,
				  w->end_len));
	return resolver_below_end(wb, w->begin_len, e, e_len) &&
	       resolver_below_end(b, b_len, wb + w->begin_len, w->end_len);
}

static bool resolver_range_conflicts(const struct resolver *r, uint64_t rv,
				     const uint8_t *b, uint32_t b_len,
				     const uint8_t *e, uint32_t e_len)
{
	for (uint64_t s = r->tail; s > r->head; s--) {
		const struct resolver_write *w = resolver_at(r, s - 1);
		if (w->version <= rv)
			break; /* versions only decrease from here */
		if (resolver_overlaps(w, b, b_len, e, e_len))
			return true;
	}
	return false;
}

int resolver_check(const struct resolver *r, uint64_t read_version,
		   const uint8_t *const *begins, const uint32_t *begin_lens,
		   const uint8_t *const *ends, const uint32_t *end_lens,
		   uint32_t n)
{
	assert(r != NULL);
	assert(n == 0 || (begins != NULL && begin_lens != NULL &&
			  ends != NULL && end_lens != NULL));
	/* A blind write (no reads) cannot conflict, whatever its age. */
	if (n == 0)
		return RS_OK;
	if (read_version < r->oldest_version)
		return RS_ETOOOLD;
	if (read_version >= r->newest_version)
		return RS_OK; /* nothing recorded above read_version */
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *b = begins[i], *e = ends[i];
		uint32_t b_len = begin_lens[i], e_len = end_lens[i];
		bool hit;

		assert((b != NULL || b_len == 0) && (e != NULL || e_len == 0));
		if (!resolver_below_end(b, b_len, e, e_len))
			continue; /* empty range reads nothing */
		if (resolver_is_point(b, b_len, e, e_len))
			hit = resolver_point_conflicts(r, read_version, b,
						       b_len);
		else
			hit = resolver_range_conflicts(r, read_version, b,
						       b_len, e, e_len);
		if (hit)
			return RS_ECONFLICT;
	}
	return RS_OK;
}

uint64_t resolver_oldest_version(const struct resolver *r)
{
	assert(r != NULL);
	return r->oldest_version;
}

size_t resolver_size(const struct resolver *r)
{
	assert(r != NULL);
	assert(r->tail >= r->head);
	return (size_t)(r->tail - r->head);
}
