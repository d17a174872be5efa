/*
 * rafttick: see rafttick.h.
 */
#include "raftstore/rafttick.h"

#include <assert.h>
#include <stddef.h>

#include "raftstore/lib/rs_error.h"

struct rafttick {
	struct raft_io *io; /* NULL: a free slot */
	int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		     raft_io_recv_cb recv);
	unsigned tick_ms;
};

static struct rafttick raftticks[RAFTTICK_IO_MAX];

static struct rafttick *rafttick_of(const struct raft_io *io)
{
	for (unsigned i = 0; i < RAFTTICK_IO_MAX; i++)
		if (raftticks[i].io == io)
			return &raftticks[i];
	return NULL;
}

unsigned rafttick_pace_ms(unsigned heartbeat_timeout_ms)
{
	unsigned pace = heartbeat_timeout_ms / 10;

	return pace > 0 ? pace : 1;
}

/* c-raft's msecs is its heartbeat timeout: replaced by the pace. */
static int rafttick_start(struct raft_io *io, unsigned msecs,
			  raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct rafttick *t = rafttick_of(io);

	(void)msecs;
	assert(t != NULL && t->start != NULL);
	return t->start(io, t->tick_ms, tick, recv);
}

int rafttick_install(struct raft_io *io, unsigned tick_ms)
{
	struct rafttick *t = rafttick_of(io);

	assert(io != NULL && io->start != NULL && tick_ms > 0);
	if (t != NULL && io->start == rafttick_start) {
		t->tick_ms = tick_ms; /* wrapped already: keep the original */
		return RS_OK;
	}
	if (t == NULL)
		t = rafttick_of(NULL);
	if (t == NULL)
		return RS_ETOOLARGE;
	t->io = io;
	t->start = io->start;
	t->tick_ms = tick_ms;
	io->start = rafttick_start;
	return RS_OK;
}
