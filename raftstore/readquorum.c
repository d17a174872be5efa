/* readquorum: see readquorum.h. */
#include "raftstore/readquorum.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/client.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"

/* A member that failed or refused is not asked for this long. */
#define READQUORUM_REST_MS 1000u
/* A member of another term (it will catch up, or this node steps down). */
#define READQUORUM_TERM_REST_MS 10u

struct rq_peer {
	struct readquorum *rq;
	uint64_t id;
	char addr[64];
	struct rs_client *client;
	struct rs_op op;
	bool inflight;
	uint64_t sent_stamp;  /* of the question in flight */
	raft_term sent_term;
	uint64_t confirmed;   /* stamp of the last confirming question */
	uint64_t rest_until;  /* loop time (ms): not asked before */
	bool failing;         /* logged as failing, not yet recovered */
};

struct readquorum {
	uv_loop_t *loop;
	struct raft *raft;
	struct readquorum_options o;
	raft_term term;
	uint64_t clock;  /* the last stamp handed out */
	uint64_t want;   /* the newest read's stamp */
	struct rq_peer **peers;
	unsigned n_peers;
	bool closing;
	unsigned closes_pending;
	void (*close_cb)(void *arg);
	void *close_arg;
	struct readquorum_stats st;
};

enum readquorum_verdict readquorum_count(const struct raft_configuration *c,
					 uint64_t self_id,
					 const uint64_t *ids,
					 const uint64_t *confirmed,
					 const bool *usable, unsigned n,
					 uint64_t stamp)
{
	unsigned voters = 0, yes = 0, maybe = 0;

	for (unsigned i = 0; i < c->n; i++) {
		const struct raft_server *s = &c->servers[i];
		if (s->role != RAFT_VOTER)
			continue;
		voters++;
		if (s->id == self_id) {
			yes++;
			continue;
		}
		for (unsigned j = 0; j < n; j++) {
			if (ids[j] != s->id)
				continue;
			if (confirmed[j] > stamp)
				yes++;
			else if (usable[j])
				maybe++;
			break;
		}
	}
	if (voters == 0)
		return READQUORUM_UNAVAILABLE;
	if (yes >= voters / 2 + 1)
		return READQUORUM_CONFIRMED;
	return yes + maybe >= voters / 2 + 1 ? READQUORUM_WAIT
					      : READQUORUM_UNAVAILABLE;
}

int readquorum_create(struct readquorum **out, uv_loop_t *loop,
		      struct raft *raft, const struct readquorum_options *o)
{
	struct readquorum *rq = calloc(1, sizeof *rq);

	if (rq == NULL)
		return RS_ENOMEM;
	assert(o->peer_addr != NULL && o->cluster_id != NULL &&
	       o->on_progress != NULL && o->self_id != 0);
	rq->loop = loop;
	rq->raft = raft;
	rq->o = *o;
	if (rq->o.timeout_ms == 0)
		rq->o.timeout_ms = 1000;
	*out = rq;
	return RS_OK;
}

static struct rq_peer *rq_peer_find(struct readquorum *rq, uint64_t id)
{
	for (unsigned i = 0; i < rq->n_peers; i++)
		if (rq->peers[i]->id == id)
			return rq->peers[i];
	return NULL;
}

static struct rq_peer *rq_peer_get(struct readquorum *rq, uint64_t id)
{
	struct rq_peer *p = rq_peer_find(rq, id), **grown;

	if (p != NULL)
		return p;
	p = calloc(1, sizeof *p);
	grown = realloc(rq->peers, (rq->n_peers + 1) * sizeof *grown);
	if (p == NULL || grown == NULL) {
		free(p);
		if (grown != NULL)
			rq->peers = grown;
		return NULL;
	}
	rq->peers = grown;
	p->rq = rq;
	p->id = id;
	rq->peers[rq->n_peers++] = p;
	return p;
}

/* A member failed or did not confirm: rest it, log the first failure. */
static void rq_peer_rest(struct rq_peer *p, unsigned ms, const char *why)
{
	char q[RS_ERRMSG_SIZE];

	p->rest_until = uv_now(p->rq->loop) + ms;
	p->rq->st.refused++;
	if (p->failing || ms < READQUORUM_REST_MS)
		return;
	p->failing = true;
	log_warn("readquorum.peer_failed", "peer=%llu addr=%s reason=%s "
		 "rest_ms=%u", (unsigned long long)p->id, p->addr,
		 log_quote(q, sizeof q, why), ms);
}

static void rq_ask(struct readquorum *rq, struct rq_peer *p);

static void rq_answered(struct rs_op *op)
{
	struct rq_peer *p = op->data;
	struct readquorum *rq = p->rq;
	const struct rs_result *res = &op->result;
	char why[RS_ERRMSG_SIZE];

	p->inflight = false;
	if (rq->closing) {
		rs_result_free(&op->result);
		rs_buf_free(&op->request);
		return;
	}
	if (res->status != RS_OK) {
		snprintf(why, sizeof why, "%s: %s", rs_strerror(res->status),
			 res->message);
		rq_peer_rest(p, READQUORUM_REST_MS, why);
	} else if (res->node_id != p->id) {
		snprintf(why, sizeof why, "node %llu answered at this address",
			 (unsigned long long)res->node_id);
		rq_peer_rest(p, READQUORUM_REST_MS, why);
	} else if (res->term != p->sent_term || p->sent_term != rq->term) {
		rq_peer_rest(p, READQUORUM_TERM_REST_MS, "another term");
	} else {
		if (p->sent_stamp > p->confirmed)
			p->confirmed = p->sent_stamp;
		rq->st.answers++;
		if (p->failing)
			log_info("readquorum.peer_recovered", "peer=%llu addr=%s",
				 (unsigned long long)p->id, p->addr);
		p->failing = false;
	}
	rs_result_free(&op->result);
	rs_buf_free(&op->request);
	if (p->confirmed <= rq->want)
		rq_ask(rq, p);
	rq->o.on_progress(rq->o.ctx);
}

static void rq_client_closed(void *arg)
{
	struct readquorum *rq = arg;

	assert(rq->closes_pending > 0);
	if (--rq->closes_pending > 0 || !rq->closing)
		return;
	for (unsigned i = 0; i < rq->n_peers; i++)
		free(rq->peers[i]);
	free(rq->peers);
	if (rq->close_cb != NULL)
		rq->close_cb(rq->close_arg);
	free(rq);
}

/* Point p's client at addr (a member's address can change with a
 * membership change); false if it cannot be used now. */
static bool rq_peer_connect(struct readquorum *rq, struct rq_peer *p,
			    const char *addr)
{
	struct rs_client_options co = {.op_timeout_ms = rq->o.timeout_ms,
				       .no_leader_pref = true};
	char errmsg[RS_ERRMSG_SIZE];

	if (p->client != NULL && strcmp(p->addr, addr) == 0)
		return true;
	if (p->client != NULL) {
		rq->closes_pending++;
		rs_client_close(p->client, rq_client_closed, rq);
		p->client = NULL;
	}
	snprintf(p->addr, sizeof p->addr, "%s", addr);
	co.endpoints = p->addr;
	if (rs_client_create(&p->client, rq->loop, &co, errmsg) != RS_OK) {
		p->client = NULL;
		rq_peer_rest(p, READQUORUM_REST_MS, errmsg);
		return false;
	}
	return true;
}

static void rq_ask(struct readquorum *rq, struct rq_peer *p)
{
	uint8_t cluster[WIRE_CLUSTER_ID_SIZE];
	struct wire_term_req req = {.cluster_id = {cluster, sizeof cluster},
				    .leader_id = rq->o.self_id,
				    .term = rq->term};
	const char *addr;

	if (p->inflight || rq->term == 0 || rq->closing ||
	    uv_now(rq->loop) < p->rest_until)
		return;
	addr = rq->o.peer_addr(rq->o.ctx, p->id);
	if (addr == NULL) {
		rq_peer_rest(p, READQUORUM_REST_MS, "no client address known");
		return;
	}
	if (!rq_peer_connect(rq, p, addr))
		return;
	rq->o.cluster_id(rq->o.ctx, cluster);
	memset(&p->op, 0, sizeof p->op);
	p->op.data = p;
	p->sent_stamp = ++rq->clock;
	p->sent_term = rq->term;
	if (rs_client_term(p->client, &p->op, &req, rq_answered) != RS_OK) {
		rs_buf_free(&p->op.request);
		rq_peer_rest(p, READQUORUM_REST_MS, "could not send TERM");
		return;
	}
	p->inflight = true;
	rq->st.questions++;
}

/* Ask every voter whose last confirming answer is not newer than stamp
 * (rq_ask skips those with a question out or resting). */
static void rq_ask_voters(struct readquorum *rq, uint64_t stamp)
{
	const struct raft_configuration *c = raftinfo_configuration(rq->raft);

	for (unsigned i = 0; i < c->n; i++) {
		const struct raft_server *s = &c->servers[i];
		struct rq_peer *p;

		if (s->role != RAFT_VOTER || s->id == rq->o.self_id)
			continue;
		p = rq_peer_get(rq, s->id);
		if (p != NULL && p->confirmed <= stamp)
			rq_ask(rq, p);
	}
}

uint64_t readquorum_arrive(struct readquorum *rq)
{
	uint64_t stamp = rq->clock;

	rq->want = stamp;
	rq_ask_voters(rq, stamp);
	return stamp;
}

enum readquorum_verdict readquorum_check(struct readquorum *rq,
					 uint64_t stamp)
{
	enum { MAX = 16 };
	uint64_t ids[MAX], confirmed[MAX];
	bool usable[MAX];
	unsigned n = 0;

	if (rq->term == 0 || rq->closing ||
	    raftinfo_state(rq->raft) != RAFT_LEADER ||
	    raftinfo_term(rq->raft) != rq->term)
		return READQUORUM_UNAVAILABLE;
	/* A member whose rest ended since it was last asked is asked now, so
	 * that WAIT always means a question is out (its answer, or its
	 * timeout, calls on_progress). */
	rq_ask_voters(rq, stamp);
	for (unsigned i = 0; i < rq->n_peers && n < MAX; i++) {
		const struct rq_peer *p = rq->peers[i];
		ids[n] = p->id;
		confirmed[n] = p->confirmed;
		usable[n] = p->inflight;
		n++;
	}
	return readquorum_count(raftinfo_configuration(rq->raft),
				rq->o.self_id, ids, confirmed, usable, n, stamp);
}

void readquorum_set_term(struct readquorum *rq, raft_term term)
{
	if (term == rq->term)
		return;
	rq->term = term;
	/* Answers of the old term must not count: an answer in flight is
	 * checked against the term it was asked in. */
	for (unsigned i = 0; i < rq->n_peers; i++) {
		rq->peers[i]->confirmed = 0;
		rq->peers[i]->rest_until = 0;
	}
}

void readquorum_get_stats(const struct readquorum *rq,
			  struct readquorum_stats *st)
{
	*st = rq->st;
}

void readquorum_close(struct readquorum *rq, void (*cb)(void *arg),
		      void *arg)
{
	assert(!rq->closing);
	rq->closing = true;
	rq->close_cb = cb;
	rq->close_arg = arg;
	rq->closes_pending++; /* held until every client is asked to close */
	for (unsigned i = 0; i < rq->n_peers; i++) {
		if (rq->peers[i]->client == NULL)
			continue;
		rq->closes_pending++;
		rs_client_close(rq->peers[i]->client, rq_client_closed, rq);
		rq->peers[i]->client = NULL;
	}
	rq_client_closed(rq);
}
