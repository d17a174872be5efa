/* snappolicy: see snappolicy.h. */
#include "raftstore/snappolicy.h"

#include <string.h>

void snappolicy_init(struct snappolicy *p, uint64_t max_log_bytes)
{
	memset(p, 0, sizeof *p);
	p->max_log_bytes = max_log_bytes;
}

/* A new cycle's cut (splitmix64). */
static void snappolicy_draw(struct snappolicy *p)
{
	uint64_t z;

	if (!p->jitter)
		return;
	z = (p->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	p->cut = (uint32_t)(z % SNAPPOLICY_CUT_MAX);
}

/* x less the cut: x * cut / SNAPPOLICY_CUT_ONE without overflow. */
static uint64_t snappolicy_less_cut(const struct snappolicy *p, uint64_t x)
{
	uint64_t off = x / SNAPPOLICY_CUT_ONE * p->cut +
		       x % SNAPPOLICY_CUT_ONE * p->cut / SNAPPOLICY_CUT_ONE;
	return x - off;
}

void snappolicy_jitter(struct snappolicy *p, uint64_t seed)
{
	p->jitter = true;
	p->rng = seed;
	snappolicy_draw(p);
}

uint64_t snappolicy_budget(const struct snappolicy *p)
{
	uint64_t b = p->state_bytes / 2;

	if (b < SNAPPOLICY_MIN_LOG_BYTES)
		b = SNAPPOLICY_MIN_LOG_BYTES;
	if (b > p->max_log_bytes)
		b = p->max_log_bytes;
	b = snappolicy_less_cut(p, b);
	return b > 0 ? b : 1;
}

unsigned snappolicy_entry_cap(const struct snappolicy *p,
			      unsigned max_entries)
{
	uint64_t cap = snappolicy_less_cut(p, max_entries);
	return cap > 0 ? (unsigned)cap : 1;
}

bool snappolicy_applied(struct snappolicy *p, uint64_t bytes)
{
	p->log_bytes += bytes;
	return !p->running && p->log_bytes >= snappolicy_budget(p);
}

void snappolicy_begun(struct snappolicy *p)
{
	p->pending_bytes = p->log_bytes;
	p->log_bytes = 0;
	p->running = true;
	snappolicy_draw(p);
}

void snappolicy_ended(struct snappolicy *p, bool written,
		      uint64_t image_bytes)
{
	if (!p->running)
		return;
	if (written)
		p->state_bytes = image_bytes;
	else
		p->log_bytes += p->pending_bytes;
	p->pending_bytes = 0;
	p->running = false;
}

void snappolicy_restored(struct snappolicy *p, uint64_t image_bytes)
{
	p->log_bytes = 0;
	p->state_bytes = image_bytes;
	snappolicy_draw(p);
}
