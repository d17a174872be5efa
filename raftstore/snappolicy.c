/* snappolicy: see snappolicy.h. */
#include "raftstore/snappolicy.h"

#include <string.h>

void snappolicy_init(struct snappolicy *p, uint64_t max_log_bytes)
{
	memset(p, 0, sizeof *p);
	p->max_log_bytes = max_log_bytes;
}

uint64_t snappolicy_budget(const struct snappolicy *p)
{
	uint64_t b = p->state_bytes / 2;

	if (b < SNAPPOLICY_MIN_LOG_BYTES)
		b = SNAPPOLICY_MIN_LOG_BYTES;
	return b < p->max_log_bytes ? b : p->max_log_bytes;
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
}
