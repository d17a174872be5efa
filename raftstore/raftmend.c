/*
 * raftmend: see raftmend.h.
 *
 * The reply cap works because c-raft 0.15 answers an AppendEntries that
 * needs no write (a heartbeat, or entries it already holds) from inside
 * its receive callback (recv_append_entries.c): the send wrapper caps an
 * AppendEntries result to the mended message's sender while the wrapped
 * receive callback runs, and only then.  An answer that follows a write
 * comes later, from c-raft's append callback, and reports what the write
 * stored, past the mended previous index as in any other append; c-raft
 * starts that write inside the same receive callback (replicationAppend),
 * so the append wrapper tags it with the message's term there, and the
 * send wrapper drops its answer if the term moved on by the callback.
 */
#include "raftstore/raftmend.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/ioslot.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"

struct raftmend {
	struct raft_io *io; /* NULL: a free slot */
	int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		     raft_io_recv_cb recv);
	int (*send)(struct raft_io *io, struct raft_io_send *req,
		    const struct raft_message *message, raft_io_send_cb cb);
	raft_io_recv_cb recv; /* c-raft's, from start */
	int (*append)(struct raft_io *io, struct raft_io_append *req,
		      const struct raft_entry entries[], unsigned n,
		      raft_io_append_cb cb);
	/* While c-raft handles a mended message: cap its reply to cap_to. */
	bool capping;
	raft_id cap_to;
	raft_index cap;
	raft_term cap_term; /* that message's term */
	/* While c-raft's callback for a write a message asked for runs: the
	 * message's term (its answer is dropped if the term moved on). */
	bool answering;
	raft_term answer_term;
	uint64_t mended;
	uint64_t capped;  /* replies lowered to the cap (guards 12, 18) */
	uint64_t dropped; /* answers of an older term's write (guard 18) */
};

/* A follower's write of a message's entries, passed on. */
struct raftmend_op {
	struct raft_io_append inner;
	struct raft_io_append *outer;
	raft_io_append_cb cb;
	struct raftmend *m;
	raft_term term;
};

static struct raftmend raftmends[RAFTMEND_IO_MAX];

_Static_assert(offsetof(struct raftmend, io) == 0, "ioslot.h: io comes first");

static struct raftmend *raftmend_of(const struct raft_io *io)
{
	return ioslot_find(raftmends, RAFTMEND_IO_MAX, sizeof raftmends[0],
			   io);
}

/* Is batch b referenced by one of entries[from, n)?  Entries of one
 * message share batches in runs (raft_uv: one batch per message), so the
 * walk compares once per run. */
static bool batch_kept(const struct raft_entry *entries, unsigned from,
		       unsigned n, const void *b)
{
	const void *run = NULL;

	for (unsigned j = from; j < n; j++) {
		if (entries[j].batch == run)
			continue;
		run = entries[j].batch;
		if (run == b)
			return true;
	}
	return false;
}

/* Free the batches of entries[0, k) that no entry of [k, n) references. */
static void drop_entries(struct raft_entry *entries, unsigned k, unsigned n)
{
	void *freed = NULL;

	assert(k <= n);
	for (unsigned j = 0; j < k; j++) {
		void *b = entries[j].batch;
		if (b == NULL || b == freed || batch_kept(entries, k, n, b))
			continue;
		raft_free(b);
		freed = b;
	}
}

enum raftmend_outcome raftmend_append_entries(raft_index snapshot_index,
					      raft_term snapshot_term,
					      raft_index log_offset,
					      struct raft_append_entries *a,
					      raft_index *cap)
{
	raft_index prev = a->prev_log_index;
	unsigned n = a->n_entries;
	raft_index k;
	raft_term term_at_s;

	assert(log_offset <= snapshot_index);
	assert(n == 0 || a->entries != NULL);
	/* c-raft handles a previous entry it holds, and previous index 0
	 * while it holds entry 1 (offset 0: trailing entries back to it);
	 * what it mishandles is a previous index below the snapshot whose
	 * entry, or whose next one at 0, it no longer holds. */
	if (snapshot_index == 0 || prev >= snapshot_index ||
	    prev > log_offset || log_offset == 0)
		return RAFTMEND_UNTOUCHED;
	k = snapshot_index - prev; /* entries of the message at or below S */
	*cap = prev + n > snapshot_index ? prev + n : snapshot_index;
	if (a->leader_commit > *cap)
		a->leader_commit = *cap;
	a->prev_log_index = snapshot_index;
	if (n > k) {
		term_at_s = a->entries[k - 1].term;
		drop_entries(a->entries, (unsigned)k, n);
		memmove(a->entries, a->entries + k,
			(n - (size_t)k) * sizeof a->entries[0]);
		a->n_entries = n - (unsigned)k;
		a->prev_log_term = term_at_s;
		assert(a->n_entries > 0);
		return RAFTMEND_TRIMMED;
	}
	a->prev_log_term = n == k ? a->entries[k - 1].term : snapshot_term;
	if (n > 0) {
		drop_entries(a->entries, n, n);
		raft_free(a->entries);
	}
	a->entries = NULL;
	a->n_entries = 0;
	assert(a->prev_log_term != 0);
	return RAFTMEND_HEARTBEAT;
}

static void raftmend_recv(struct raft_io *io, struct raft_message *msg)
{
	struct raftmend *m = raftmend_of(io);
	const struct raft *r = io->data;
	struct raftinfo_log_base base;
	raft_index prev, cap = 0;
	unsigned n;

	assert(m != NULL && m->recv != NULL && r != NULL);
	if (msg->type != RAFT_IO_APPEND_ENTRIES) {
		m->recv(io, msg);
		return;
	}
	prev = msg->append_entries.prev_log_index;
	n = msg->append_entries.n_entries;
	base = raftinfo_log_base(r);
	if (raftmend_append_entries(base.snapshot_index, base.snapshot_term,
				    base.offset, &msg->append_entries,
				    &cap) == RAFTMEND_UNTOUCHED) {
		/* Guard 18: what this message let c-raft check. */
		m->capping = true;
		m->cap_to = msg->server_id;
		m->cap = prev + n;
		m->cap_term = msg->append_entries.term;
		m->recv(io, msg);
		m->capping = false;
		return;
	}
	m->mended++;
	log_info("raft.append_mended",
		 "peer_id=%llu prev_index=%llu entries=%u snapshot_index=%llu "
		 "first_held=%llu kept=%u reply_cap=%llu",
		 (unsigned long long)msg->server_id, (unsigned long long)prev,
		 n, (unsigned long long)base.snapshot_index,
		 (unsigned long long)base.offset + 1,
		 msg->append_entries.n_entries, (unsigned long long)cap);
	m->capping = true;
	m->cap_to = msg->server_id;
	m->cap = cap;
	m->cap_term = msg->append_entries.term;
	m->recv(io, msg);
	m->capping = false;
}

static int raftmend_send(struct raft_io *io, struct raft_io_send *req,
			 const struct raft_message *message, raft_io_send_cb cb)
{
	struct raftmend *m = raftmend_of(io);
	struct raft_message capped;

	assert(m != NULL && m->send != NULL);
	if (message->type == RAFT_IO_APPEND_ENTRIES_RESULT &&
	    (message->server_id == 0 || message->server_address == NULL)) {
		/* c-raft 0.15 answers a snapshot install (or a write) to the
		 * leader it knows; a term that moved on meanwhile left none,
		 * and raft_uv would read the null address (guard 22). */
		m->dropped++;
		log_info("raft.reply_dropped", "peer_id=0 reason=\"no leader "
			 "known to answer\"");
		return RAFT_CANCELED;
	}
	if (m->answering &&
	    message->type == RAFT_IO_APPEND_ENTRIES_RESULT &&
	    raftinfo_term(io->data) != m->answer_term) {
		/* c-raft answers with its new term and its last stored
		 * index: entries of the old term's leader, claimed as the
		 * new one's.  Not sent (c-raft frees the request). */
		m->dropped++;
		log_info("raft.reply_dropped",
			 "peer_id=%llu last_log_index=%llu message_term=%llu "
			 "term=%llu reason=\"the entries written came from an "
			 "earlier term's leader\"",
			 (unsigned long long)message->server_id,
			 (unsigned long long)
				 message->append_entries_result.last_log_index,
			 (unsigned long long)m->answer_term,
			 (unsigned long long)raftinfo_term(io->data));
		return RAFT_CANCELED;
	}
	if (!m->capping || message->type != RAFT_IO_APPEND_ENTRIES_RESULT ||
	    message->server_id != m->cap_to ||
	    message->append_entries_result.rejected != 0 ||
	    message->append_entries_result.last_log_index <= m->cap)
		return m->send(io, req, message, cb);
	/* Both backends copy or encode the message before send returns. */
	capped = *message;
	capped.append_entries_result.last_log_index = m->cap;
	m->capped++;
	log_info("raft.reply_capped", "peer_id=%llu last_log_index=%llu "
		 "reported=%llu reason=\"entries past what the leader's "
		 "message matched are not known to be the leader's\"",
		 (unsigned long long)message->server_id,
		 (unsigned long long)message->append_entries_result.last_log_index,
		 (unsigned long long)m->cap);
	return m->send(io, req, &capped, cb);
}

static void raftmend_append_done(struct raft_io_append *inner, int status)
{
	struct raftmend_op *op =
		(struct raftmend_op *)((char *)inner -
				       offsetof(struct raftmend_op, inner));
	struct raftmend *m = op->m;
	struct raft_io_append *outer = op->outer;
	raft_io_append_cb cb = op->cb;
	raft_term term = op->term;

	free(op);
	if (cb == NULL)
		return;
	assert(!m->answering);
	m->answering = true;
	m->answer_term = term;
	cb(outer, status);
	m->answering = false;
}

/* c-raft writes a message's entries from inside its receive callback
 * (replicationAppend), and answers from the write's callback: remember
 * the message's term for that answer. */
static int raftmend_append(struct raft_io *io, struct raft_io_append *req,
			   const struct raft_entry entries[], unsigned n,
			   raft_io_append_cb cb)
{
	struct raftmend *m = raftmend_of(io);
	struct raftmend_op *op;
	int rv;

	assert(m != NULL && m->append != NULL);
	if (!m->capping) /* a leader's own entries */
		return m->append(io, req, entries, n, cb);
	op = calloc(1, sizeof *op);
	if (op == NULL)
		return RAFT_NOMEM;
	op->outer = req;
	op->cb = cb;
	op->m = m;
	op->term = m->cap_term;
	op->inner.data = req->data;
	req->cb = cb;
	rv = m->append(io, &op->inner, entries, n, raftmend_append_done);
	if (rv != 0)
		free(op);
	return rv;
}

static int raftmend_start(struct raft_io *io, unsigned msecs,
			  raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct raftmend *m = raftmend_of(io);

	assert(m != NULL && m->start != NULL && recv != NULL);
	m->recv = recv;
	return m->start(io, msecs, tick, raftmend_recv);
}

int raftmend_install(struct raft_io *io)
{
	struct raftmend *m = raftmend_of(io);

	assert(io != NULL && io->start != NULL && io->send != NULL &&
	       io->append != NULL);
	if (m != NULL && io->start == raftmend_start) {
		/* Wrapped already: keep the originals. */
		m->mended = 0;
		m->capped = 0;
		m->dropped = 0;
		m->capping = false;
		m->answering = false;
		return RS_OK;
	}
	if (m == NULL)
		m = raftmend_of(NULL);
	if (m == NULL)
		return RS_ETOOLARGE;
	memset(m, 0, sizeof *m);
	m->io = io;
	m->start = io->start;
	m->send = io->send;
	m->append = io->append;
	io->start = raftmend_start;
	io->send = raftmend_send;
	io->append = raftmend_append;
	return RS_OK;
}

uint64_t raftmend_count(const struct raft_io *io)
{
	const struct raftmend *m = io != NULL ? raftmend_of(io) : NULL;

	return m != NULL ? m->mended : 0;
}

uint64_t raftmend_capped_count(const struct raft_io *io)
{
	const struct raftmend *m = io != NULL ? raftmend_of(io) : NULL;

	return m != NULL ? m->capped : 0;
}

uint64_t raftmend_dropped_count(const struct raft_io *io)
{
	const struct raftmend *m = io != NULL ? raftmend_of(io) : NULL;

	return m != NULL ? m->dropped : 0;
}

static double raftmend_read_dropped(void *ctx)
{
	return (double)raftmend_dropped_count(ctx);
}

static double raftmend_read_capped(void *ctx)
{
	return (double)raftmend_capped_count(ctx);
}

static double raftmend_read_count(void *ctx)
{
	return (double)raftmend_count(ctx);
}

int raftmend_metrics_register(struct raft_io *io, struct metrics *ms)
{
	assert(raftmend_of(io) != NULL);
	if (metrics_counter_fn(ms, "raftstore_raft_appends_mended_total",
			       "AppendEntries that reached below this node's "
			       "snapshot, mended before c-raft saw them "
			       "(c-raft guard 12)",
			       raftmend_read_count, io) == NULL)
		return RS_EINVAL;
	if (metrics_counter_fn(ms, "raftstore_raft_replies_capped_total",
			       "AppendEntries results this follower lowered to "
			       "the last index the leader's message matched "
			       "(c-raft guard 18)",
			       raftmend_read_capped, io) == NULL)
		return RS_EINVAL;
	if (metrics_counter_fn(ms, "raftstore_raft_replies_dropped_total",
			       "AppendEntries results this follower did not "
			       "send: their entries' write completed after the "
			       "term changed (c-raft guard 18)",
			       raftmend_read_dropped, io) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
