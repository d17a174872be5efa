/*
 * rafttick: see rafttick.h.
 */
#include "raftstore/rafttick.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

#include "raftstore/ioslot.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"

struct rafttick {
	struct raft_io *io; /* NULL: a free slot */
	int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		     raft_io_recv_cb recv);
	raft_io_tick_cb tick; /* c-raft's, from start */
	unsigned tick_ms;
	bool holding; /* an install's candidacy held, logged */
	uint64_t held; /* ticks held back during installs (guard 22) */
};

static struct rafttick raftticks[RAFTTICK_IO_MAX];

_Static_assert(offsetof(struct rafttick, io) == 0, "ioslot.h: io comes first");

static struct rafttick *rafttick_of(const struct raft_io *io)
{
	return ioslot_find(raftticks, RAFTTICK_IO_MAX, sizeof raftticks[0],
			   io);
}

unsigned rafttick_pace_ms(unsigned heartbeat_timeout_ms)
{
	unsigned pace = heartbeat_timeout_ms / 10;

	return pace > 0 ? pace : 1;
}

/* Guard 22: a follower that installs a snapshot does not stand.  c-raft
 * 0.15 would convert to candidate on this tick and, once the put
 * completes, answer the leader through its follower fields, which a
 * candidate's overlay (a union in struct raft). */
static void rafttick_tick(struct raft_io *io)
{
	struct rafttick *t = rafttick_of(io);
	struct raft *r = io->data;

	assert(t != NULL && t->tick != NULL && r != NULL);
	if (raftinfo_installing_snapshot(r) &&
	    raftinfo_election_timer_expired(r)) {
		t->held++;
		if (!t->holding)
			log_info("raft.candidacy_held", "term=%llu reason=\"this "
				 "follower is installing a snapshot\"",
				 (unsigned long long)raftinfo_term(r));
		t->holding = true;
		return;
	}
	t->holding = false;
	t->tick(io);
}

/* c-raft's msecs is its heartbeat timeout: replaced by the pace. */
static int rafttick_start(struct raft_io *io, unsigned msecs,
			  raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct rafttick *t = rafttick_of(io);

	(void)msecs;
	assert(t != NULL && t->start != NULL && tick != NULL);
	t->tick = tick;
	return t->start(io, t->tick_ms, rafttick_tick, recv);
}

uint64_t rafttick_held_count(const struct raft_io *io)
{
	const struct rafttick *t = io != NULL ? rafttick_of(io) : NULL;

	return t != NULL ? t->held : 0;
}

static double rafttick_read_held(void *ctx)
{
	return (double)rafttick_held_count(ctx);
}

int rafttick_metrics_register(struct raft_io *io, struct metrics *ms)
{
	assert(rafttick_of(io) != NULL);
	if (metrics_counter_fn(ms, "raftstore_raft_candidacy_held_ticks_total",
			       "Ticks on which this follower's election timer "
			       "had run out while it installed a snapshot, "
			       "held back from c-raft (c-raft guard 22)",
			       rafttick_read_held, io) == NULL)
		return RS_EINVAL;
	return RS_OK;
}

int rafttick_install(struct raft_io *io, unsigned tick_ms)
{
	struct rafttick *t = rafttick_of(io);

	assert(io != NULL && io->start != NULL && tick_ms > 0);
	if (t != NULL && io->start == rafttick_start) {
		t->tick_ms = tick_ms; /* wrapped already: keep the original */
		t->held = 0;
		return RS_OK;
	}
	if (t == NULL)
		t = rafttick_of(NULL);
	if (t == NULL)
		return RS_ETOOLARGE;
	*t = (struct rafttick){.io = io, .start = io->start,
			       .tick_ms = tick_ms};
	io->start = rafttick_start;
	return RS_OK;
}
