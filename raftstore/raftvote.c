/*
 * raftvote: see raftvote.h.
 */
#include "raftstore/raftvote.h"

#include <assert.h>
#include <stddef.h>

#include "raftstore/ioslot.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"

struct raftvote {
	struct raft_io *io; /* NULL: a free slot */
	struct raft *r;
	int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		     raft_io_recv_cb recv);
	raft_io_recv_cb recv; /* c-raft's, from start */
	raftvote_leader_gone_fn leader_gone;
	void *ctx;
	uint64_t unblocked;
};

static struct raftvote raftvotes[RAFTVOTE_IO_MAX];

_Static_assert(offsetof(struct raftvote, io) == 0, "ioslot.h: io comes first");

static struct raftvote *raftvote_of(const struct raft_io *io)
{
	return ioslot_find(raftvotes, RAFTVOTE_IO_MAX, sizeof raftvotes[0],
			   io);
}

static void raftvote_recv(struct raft_io *io, struct raft_message *msg)
{
	struct raftvote *v = raftvote_of(io);
	struct raft_request_vote *rv = &msg->request_vote;
	raft_id leader;

	assert(v != NULL && v->recv != NULL);
	/* Not while installing a snapshot (guard 22): a vote would move the
	 * term and forget the leader the install's answer goes to. */
	if (msg->type == RAFT_IO_REQUEST_VOTE && !rv->disrupt_leader &&
	    raftinfo_state(v->r) == RAFT_FOLLOWER &&
	    !raftinfo_installing_snapshot(v->r) &&
	    (leader = raftinfo_leader(v->r)) != 0 &&
	    leader != msg->server_id && v->leader_gone(v->ctx, leader)) {
		rv->disrupt_leader = true;
		v->unblocked++;
		log_info("raft.vote_unblocked", "candidate=%llu term=%llu "
			 "pre_vote=%s leader=%llu reason=\"the leader's "
			 "connection ended\"",
			 (unsigned long long)rv->candidate_id,
			 (unsigned long long)rv->term,
			 rv->pre_vote ? "true" : "false",
			 (unsigned long long)leader);
	}
	v->recv(io, msg);
}

static int raftvote_start(struct raft_io *io, unsigned msecs,
			  raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct raftvote *v = raftvote_of(io);

	assert(v != NULL && v->start != NULL && recv != NULL);
	v->recv = recv;
	return v->start(io, msecs, tick, raftvote_recv);
}

int raftvote_install(struct raft_io *io, struct raft *r,
		     raftvote_leader_gone_fn leader_gone, void *ctx)
{
	struct raftvote *v = raftvote_of(io);

	assert(io != NULL && io->start != NULL && r != NULL &&
	       leader_gone != NULL);
	if (v != NULL && io->start == raftvote_start) {
		/* Wrapped already: keep the original start. */
		v->r = r;
		v->leader_gone = leader_gone;
		v->ctx = ctx;
		v->unblocked = 0;
		return RS_OK;
	}
	if (v == NULL)
		v = raftvote_of(NULL);
	if (v == NULL)
		return RS_ETOOLARGE;
	*v = (struct raftvote){.io = io, .r = r, .start = io->start,
			       .leader_gone = leader_gone, .ctx = ctx};
	io->start = raftvote_start;
	return RS_OK;
}

uint64_t raftvote_count(const struct raft_io *io)
{
	const struct raftvote *v = io != NULL ? raftvote_of(io) : NULL;

	return v != NULL ? v->unblocked : 0;
}

static double raftvote_read_count(void *ctx)
{
	return (double)raftvote_count(ctx);
}

int raftvote_metrics_register(struct raft_io *io, struct metrics *ms)
{
	assert(raftvote_of(io) != NULL);
	if (metrics_counter_fn(ms, "raftstore_raft_votes_unblocked_total",
			       "Vote requests this follower judged although it "
			       "knew a leader, because that leader's connection "
			       "had ended (c-raft guard 17)",
			       raftvote_read_count, io) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
