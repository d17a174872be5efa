/* ioslot: see ioslot.h. */
#include "raftstore/ioslot.h"

void *ioslot_find(void *slots, unsigned n, size_t size,
		  const struct raft_io *io)
{
	char *p = slots;

	for (unsigned i = 0; i < n; i++, p += size)
		if (*(struct raft_io **)(void *)p == io)
			return p;
	return NULL;
}
