/*
 * raftcommit: see raftcommit.h.
 *
 * Why setting last_stored for one call is enough (c-raft 0.15,
 * replication.c): on an AppendEntries result, recvAppendEntriesResult
 * checks the term and passes the result to replicationUpdate, which moves
 * the follower's match index (progressMaybeUpdate), calls
 * replicationQuorum(r, r->last_stored), applies what is committed and
 * sends the follower more entries.  Only that call reads last_stored on a
 * leader's path: replicationQuorum(r, index) commits index when a
 * majority of voters' match indexes reach it, and returns at once when
 * index is at most the commit index.  The leader's own vote there is its
 * progress record, which c-raft sets from last_stored when its own append
 * completes; that record is left alone.  A leader's last_stored moves
 * only in its append callback, which never runs inside a receive.
 */
#include "raftstore/raftcommit.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>

#include "raftstore/ioslot.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"

struct raftcommit_held {
	raft_id id;
	raft_index match;
};

struct raftcommit {
	struct raft_io *io; /* NULL: a free slot */
	struct raft *r;
	int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		     raft_io_recv_cb recv);
	int (*append)(struct raft_io *io, struct raft_io_append *req,
		      const struct raft_entry entries[], unsigned n,
		      raft_io_append_cb cb);
	raft_io_recv_cb recv; /* c-raft's, from start */
	/* scratch, one entry per server of the configuration */
	raft_index *match;
	struct raftcommit_held *held;
	unsigned cap;
	raft_term held_logged; /* the last term a hold was logged in */
	uint64_t advanced;
	uint64_t held_count;
};

/* One append passed on: c-raft's request and callback, and the term of
 * the entries it writes. */
struct raftcommit_op {
	struct raft_io_append inner;
	struct raft_io_append *outer;
	raft_io_append_cb cb;
	struct raftcommit *c;
	raft_term term;
	unsigned n;
};

static struct raftcommit raftcommits[RAFTCOMMIT_IO_MAX];

_Static_assert(offsetof(struct raftcommit, io) == 0,
	       "ioslot.h: io comes first");

static struct raftcommit *raftcommit_of(const struct raft_io *io)
{
	return ioslot_find(raftcommits, RAFTCOMMIT_IO_MAX, sizeof raftcommits[0],
			   io);
}

static int cmp_desc(const void *a, const void *b)
{
	raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

raft_index raftcommit_majority_index(raft_index *match, unsigned n)
{
	if (n == 0)
		return 0;
	qsort(match, n, sizeof *match, cmp_desc);
	return match[n / 2];
}

/* Room for one entry per server of the configuration, or false. */
static bool scratch_fits(struct raftcommit *c, unsigned n)
{
	raft_index *match;
	struct raftcommit_held *held;

	if (n <= c->cap)
		return true;
	match = realloc(c->match, n * sizeof *match);
	if (match == NULL)
		return false;
	c->match = match;
	held = realloc(c->held, n * sizeof *held);
	if (held == NULL)
		return false;
	c->held = held;
	c->cap = n;
	return true;
}

static void log_hold(struct raftcommit *c, const char *when, raft_index index)
{
	raft_term term = raftinfo_term(c->r);

	c->held_count++;
	if (c->held_logged == term)
		return; /* once per term: the window repeats on every answer */
	c->held_logged = term;
	log_warn("raft.old_term_commit_held",
		 "term=%llu index=%llu entry_term=%llu commit_index=%llu "
		 "when=%s reason=\"an older term's entry is committed only "
		 "with one of this term\"",
		 (unsigned long long)term, (unsigned long long)index,
		 (unsigned long long)raftinfo_term_at(c->r, index),
		 (unsigned long long)raftinfo_commit_index(c->r), when);
}

/* The commit index Raft's rule gives once `from`'s match index is
 * `reported` (if higher), or the current commit index when it gives
 * nothing new.  Counts the answer as advanced or held. */
static raft_index rule_target(struct raftcommit *c, raft_id from,
			      raft_index reported)
{
	struct raft *r = c->r;
	const struct raft_configuration *conf = raftinfo_configuration(r);
	raft_index commit = raftinfo_commit_index(r);
	raft_index stored = raftinfo_last_stored(r);
	raft_index last = raft_last_index(r);
	raft_index target, would = commit;
	unsigned voters = 0, votes_stored = 0;
	bool moves = false; /* c-raft counts only when the match moves */

	if (reported > last)
		reported = last; /* as c-raft caps it */
	for (unsigned i = 0; i < conf->n; i++) {
		raft_index m;

		if (conf->servers[i].role != RAFT_VOTER)
			continue;
		if (!raftinfo_match_index(r, i, &m))
			m = 0;
		if (conf->servers[i].id == from && reported > m) {
			m = reported;
			moves = true;
		}
		c->match[voters++] = m;
		if (m >= stored)
			votes_stored++;
	}
	/* what c-raft 0.15 would do: count for its own last stored index */
	if (stored > commit && raftinfo_term_at(r, stored) != 0 &&
	    votes_stored > voters / 2)
		would = stored;
	target = raftcommit_majority_index(c->match, voters);
	/* Never past what this leader stored itself: a 0.15 follower sets its
	 * commit index to min(leader's, its last stored), which would move a
	 * deposed leader's commit index back (upstream d144504). */
	if (target > stored)
		target = stored;
	if (target <= commit ||
	    raftinfo_term_at(r, target) != raftinfo_term(r))
		target = commit; /* terms only grow along the log: none lower */
	if (!moves)
		return target; /* c-raft does not count at all */
	if (would > commit && raftinfo_term_at(r, would) < raftinfo_term(r))
		log_hold(c, "answer", would);
	else if (target > would)
		c->advanced++;
	return target;
}

static void raftcommit_recv(struct raft_io *io, struct raft_message *msg)
{
	struct raftcommit *c = raftcommit_of(io);
	const struct raft_append_entries_result *res;
	raft_index stored, target, now;

	assert(c != NULL && c->recv != NULL);
	res = &msg->append_entries_result;
	if (msg->type != RAFT_IO_APPEND_ENTRIES_RESULT || res->rejected != 0 ||
	    raftinfo_state(c->r) != RAFT_LEADER ||
	    res->term != raftinfo_term(c->r) ||
	    !scratch_fits(c, raftinfo_configuration(c->r)->n)) {
		c->recv(io, msg);
		return;
	}
	target = rule_target(c, msg->server_id, res->last_log_index);
	stored = raftinfo_last_stored(c->r);
	raftinfo_set_last_stored(c->r, target);
	c->recv(io, msg);
	/* Only a leader's append callback moves it, never inside a receive;
	 * were one to, keep what it added. */
	now = raftinfo_last_stored(c->r);
	assert(now == target);
	raftinfo_set_last_stored(c->r, now >= target ? stored + (now - target)
						     : now);
}

static int raftcommit_start(struct raft_io *io, unsigned msecs,
			    raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct raftcommit *c = raftcommit_of(io);

	assert(c != NULL && c->start != NULL && recv != NULL);
	c->recv = recv;
	return c->start(io, msecs, tick, raftcommit_recv);
}

/* A leader's own entries of an older term just stored: lower the other
 * voters' match indexes to the commit index for c-raft's count, so that
 * it cannot reach past it; how many were lowered. */
static unsigned hold_others(struct raftcommit *c, unsigned n_written)
{
	struct raft *r = c->r;
	const struct raft_configuration *conf = raftinfo_configuration(r);
	raft_index commit = raftinfo_commit_index(r);
	raft_index end = raftinfo_last_stored(r) + n_written;
	unsigned held = 0, voters = 0, votes = 0;

	for (unsigned i = 0; i < conf->n; i++) {
		raft_index m;

		if (conf->servers[i].role != RAFT_VOTER)
			continue;
		voters++;
		if (conf->servers[i].id == r->id) {
			votes++;
			continue;
		}
		if (!raftinfo_match_index(r, i, &m))
			continue;
		if (m >= end)
			votes++;
		if (m <= commit)
			continue;
		c->held[held++] = (struct raftcommit_held){conf->servers[i].id,
							   m};
		raftinfo_set_match_index(r, i, commit);
	}
	if (held > 0 && votes > voters / 2)
		log_hold(c, "own_append", end);
	return held;
}

/* Put back what hold_others lowered, where c-raft left it so. */
static void release_others(struct raftcommit *c, unsigned held,
			   raft_index lowered_to)
{
	struct raft *r = c->r;
	const struct raft_configuration *conf = raftinfo_configuration(r);

	for (unsigned k = 0; k < held; k++)
		for (unsigned i = 0; i < conf->n; i++) {
			raft_index m;

			if (conf->servers[i].id != c->held[k].id)
				continue;
			if (raftinfo_match_index(r, i, &m) && m == lowered_to)
				raftinfo_set_match_index(r, i,
							 c->held[k].match);
			break;
		}
}

static void append_done(struct raft_io_append *inner, int status)
{
	struct raftcommit_op *op =
		(struct raftcommit_op *)((char *)inner -
					 offsetof(struct raftcommit_op, inner));
	struct raftcommit *c = op->c;
	struct raft_io_append *outer = op->outer;
	raft_io_append_cb cb = op->cb;
	raft_term term = op->term;
	unsigned n = op->n, held;
	raft_index commit;

	free(op);
	if (cb == NULL)
		return;
	if (status != 0 || raftinfo_state(c->r) != RAFT_LEADER ||
	    term == 0 || term >= raftinfo_term(c->r) ||
	    !scratch_fits(c, raftinfo_configuration(c->r)->n)) {
		cb(outer, status);
		return;
	}
	commit = raftinfo_commit_index(c->r);
	held = hold_others(c, n);
	cb(outer, status);
	release_others(c, held, commit);
}

static int raftcommit_append(struct raft_io *io, struct raft_io_append *req,
			     const struct raft_entry entries[], unsigned n,
			     raft_io_append_cb cb)
{
	struct raftcommit *c = raftcommit_of(io);
	struct raftcommit_op *op;
	int rv;

	assert(c != NULL && c->append != NULL);
	/* Only a leader's own entries are counted when their write completes
	 * (a follower's write callback counts nothing): only those need the
	 * callback wrapped. */
	if (raftinfo_state(c->r) != RAFT_LEADER)
		return c->append(io, req, entries, n, cb);
	op = calloc(1, sizeof *op);
	if (op == NULL)
		return RAFT_NOMEM;
	op->outer = req;
	op->cb = cb;
	op->c = c;
	op->term = n > 0 ? entries[n - 1].term : 0;
	op->n = n;
	op->inner.data = req->data;
	req->cb = cb;
	rv = c->append(io, &op->inner, entries, n, append_done);
	if (rv != 0)
		free(op);
	return rv;
}

int raftcommit_install(struct raft_io *io, struct raft *r)
{
	struct raftcommit *c = raftcommit_of(io);

	assert(io != NULL && io->start != NULL && io->append != NULL &&
	       r != NULL);
	if (c != NULL && io->start == raftcommit_start) {
		/* Wrapped already: keep the originals. */
		c->r = r;
		c->advanced = 0;
		c->held_count = 0;
		c->held_logged = 0;
		return RS_OK;
	}
	if (c == NULL)
		c = raftcommit_of(NULL);
	if (c == NULL)
		return RS_ETOOLARGE;
	free(c->match);
	free(c->held);
	*c = (struct raftcommit){.io = io, .r = r, .start = io->start,
				 .append = io->append};
	io->start = raftcommit_start;
	io->append = raftcommit_append;
	return RS_OK;
}

uint64_t raftcommit_advanced_count(const struct raft_io *io)
{
	const struct raftcommit *c = io != NULL ? raftcommit_of(io) : NULL;

	return c != NULL ? c->advanced : 0;
}

uint64_t raftcommit_held_count(const struct raft_io *io)
{
	const struct raftcommit *c = io != NULL ? raftcommit_of(io) : NULL;

	return c != NULL ? c->held_count : 0;
}

static double read_advanced(void *ctx)
{
	return (double)raftcommit_advanced_count(ctx);
}

static double read_held(void *ctx)
{
	return (double)raftcommit_held_count(ctx);
}

int raftcommit_metrics_register(struct raft_io *io, struct metrics *ms)
{
	assert(raftcommit_of(io) != NULL);
	if (metrics_counter_fn(ms, "raftstore_raft_commits_advanced_total",
			       "AppendEntries results on which this leader "
			       "committed further than c-raft 0.15 would have "
			       "(c-raft guard 21)",
			       read_advanced, io) == NULL)
		return RS_EINVAL;
	if (metrics_counter_fn(ms, "raftstore_raft_old_term_commits_held_total",
			       "Times this leader did not commit an older "
			       "term's entry by counting replicas, as c-raft "
			       "0.15 would have (c-raft guard 21)",
			       read_held, io) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
