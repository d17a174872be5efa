/* raftinfo: see raftinfo.h (c-raft 0.15.0's struct raft, read in one place). */
#include "raftstore/raftinfo.h"

#include <assert.h>

#include "raftstore/lib/rs_error.h"

int raftinfo_state(struct raft *r)
{
	assert(r != NULL);
	return raft_state(r);
}

const char *raftinfo_state_name(int state)
{
	switch (state) {
	case RAFT_LEADER: return "leader";
	case RAFT_FOLLOWER: return "follower";
	case RAFT_CANDIDATE: return "candidate";
	default: return "unavailable";
	}
}

raft_id raftinfo_leader(struct raft *r)
{
	raft_id id = 0;
	const char *address = NULL;

	assert(r != NULL);
	raft_leader(r, &id, &address);
	return id;
}

raft_term raftinfo_term(const struct raft *r)
{
	assert(r != NULL);
	return r->current_term;
}

raft_index raftinfo_commit_index(const struct raft *r)
{
	assert(r != NULL);
	return r->commit_index;
}

raft_index raftinfo_applied_index(struct raft *r)
{
	assert(r != NULL);
	return raft_last_applied(r);
}

const struct raft_configuration *raftinfo_configuration(const struct raft *r)
{
	assert(r != NULL);
	assert(r->configuration.n == 0 || r->configuration.servers != NULL);
	return &r->configuration;
}

bool raftinfo_configuration_committed(const struct raft *r)
{
	assert(r != NULL);
	return r->configuration_index != 0 &&
	       r->configuration_uncommitted_index == 0;
}

const char *raftinfo_server_role_name(int role)
{
	switch (role) {
	case RAFT_VOTER: return "voter";
	case RAFT_STANDBY: return "standby";
	default: return "spare";
	}
}

bool raftinfo_match_index(struct raft *r, unsigned i, raft_index *out)
{
	assert(r != NULL && out != NULL);
	/* the progress array exists only while leading, one slot per server */
	if (raft_state(r) != RAFT_LEADER || i >= r->configuration.n ||
	    r->leader_state.progress == NULL)
		return false;
	*out = r->leader_state.progress[i].match_index;
	return true;
}

bool raftinfo_set_match_index(struct raft *r, unsigned i, raft_index index)
{
	assert(r != NULL);
	if (raft_state(r) != RAFT_LEADER || i >= r->configuration.n ||
	    r->leader_state.progress == NULL)
		return false;
	r->leader_state.progress[i].match_index = index;
	return true;
}

raft_index raftinfo_last_stored(const struct raft *r)
{
	assert(r != NULL);
	return r->last_stored;
}

void raftinfo_set_last_stored(struct raft *r, raft_index index)
{
	assert(r != NULL);
	r->last_stored = index;
}

bool raftinfo_installing_snapshot(const struct raft *r)
{
	assert(r != NULL);
	/* c-raft 0.15's replicationInstallSnapshotBusy */
	return r->state == RAFT_FOLLOWER && r->last_stored == 0 &&
	       r->snapshot.put.data != NULL;
}

bool raftinfo_election_timer_expired(struct raft *r)
{
	unsigned timeout;

	assert(r != NULL);
	if (r->state == RAFT_FOLLOWER)
		timeout = r->follower_state.randomized_election_timeout;
	else if (r->state == RAFT_CANDIDATE)
		timeout = r->candidate_state.randomized_election_timeout;
	else
		return false;
	return r->io->time(r->io) - r->election_timer_start >= timeout;
}

raft_term raftinfo_term_at(const struct raft *r, raft_index index)
{
	const struct raft_log *l;
	size_t n;

	assert(r != NULL);
	l = &r->log;
	/* the ring holds entries offset + 1 .. offset + n, front to back */
	n = l->back >= l->front ? l->back - l->front
				: l->size - l->front + l->back;
	if (index > l->offset && index <= l->offset + n)
		return l->entries[(l->front + (index - l->offset - 1)) %
				  l->size].term;
	if (index != 0 && index == l->snapshot.last_index)
		return l->snapshot.last_term;
	return 0;
}

raft_time raftinfo_election_timer_start(const struct raft *r)
{
	assert(r != NULL);
	return r->election_timer_start;
}

struct raftinfo_log_base raftinfo_log_base(const struct raft *r)
{
	struct raftinfo_log_base b;

	assert(r != NULL);
	b.snapshot_index = r->log.snapshot.last_index;
	b.snapshot_term = r->log.snapshot.last_term;
	b.offset = r->log.offset;
	assert(b.offset <= b.snapshot_index || b.snapshot_index == 0);
	return b;
}

void raftinfo_redraw_election_timer(struct raft *r)
{
	unsigned base, timeout;

	assert(r != NULL);
	if (r->state != RAFT_FOLLOWER && r->state != RAFT_CANDIDATE)
		return;
	base = r->election_timeout;
	timeout = (unsigned)r->io->random(r->io, (int)base, 2 * (int)base);
	/* both roles keep the timer's length first in their state */
	if (r->state == RAFT_FOLLOWER)
		r->follower_state.randomized_election_timeout = timeout;
	else
		r->candidate_state.randomized_election_timeout = timeout;
}

static double raftinfo_apply_lag(void *ctx)
{
	struct raft *r = ctx;
	raft_index commit = raftinfo_commit_index(r);
	raft_index applied = raftinfo_applied_index(r);

	/* as unsigned, like the node always reported it */
	return (double)(commit - applied);
}

static double raftinfo_term_value(void *ctx)
{
	return (double)raftinfo_term(ctx);
}

static double raftinfo_commit_value(void *ctx)
{
	return (double)raftinfo_commit_index(ctx);
}

static double raftinfo_applied_value(void *ctx)
{
	return (double)raftinfo_applied_index(ctx);
}

static double raftinfo_is_leader(void *ctx)
{
	return raftinfo_state(ctx) == RAFT_LEADER ? 1.0 : 0.0;
}

int raftinfo_metrics_register(struct raft *r, struct metrics *ms)
{
	assert(r != NULL && ms != NULL);
	if (metrics_gauge_fn(ms, "raftstore_apply_lag_entries",
			     "Raft commit index minus applied index",
			     raftinfo_apply_lag, r) == NULL ||
	    metrics_gauge_fn(ms, "raftstore_raft_term", "Current Raft term",
			     raftinfo_term_value, r) == NULL ||
	    metrics_counter_fn(ms, "raftstore_raft_commit_index",
			       "Raft commit index known to this node",
			       raftinfo_commit_value, r) == NULL ||
	    metrics_counter_fn(ms, "raftstore_raft_applied_index",
			       "Raft index applied by this node's state machine",
			       raftinfo_applied_value, r) == NULL ||
	    metrics_gauge_fn(ms, "raftstore_is_leader",
			     "1 if this node is the Raft leader",
			     raftinfo_is_leader, r) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
