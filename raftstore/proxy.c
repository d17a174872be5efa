/* proxy: see proxy.h. */
#include "raftstore/proxy.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "raftstore/fsm.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftcall.h"
#include "raftstore/raftinfo.h"
#include "raftstore/readquorum.h"
#include "raftstore/resolver.h"

enum proxy_state { PROXY_FOLLOWER, PROXY_STARTING, PROXY_READY };
static const char *const proxy_state_names[] = {"follower", "starting",
						"ready"};

/* One proposed batch: its Raft request and the transactions in it. */
struct proxy_flight {
	struct raft_apply req;
	struct proxy *proxy;
	struct proxy_txn *txns;
	uint64_t version;
	proxy_epoch_cb epoch_cb; /* an epoch allocation, not transactions */
	void *epoch_arg;
	/* c-raft's answer, recorded in its callback, acted on from the loop */
	int status;
	bool fenced;
	struct proxy_flight *landed_next;
};

struct proxy_barrier {
	struct raft_barrier req;
	struct proxy *proxy;
	struct proxy_grv *waiters; /* NULL for the leadership barrier */
	uint64_t generation;
	raft_term term; /* c-raft's term when it was proposed */
	bool startup;
	int status; /* c-raft's answer, acted on from the loop */
	struct proxy_barrier *landed_next;
};

struct proxy {
	uv_loop_t *loop;
	struct raft *raft;
	struct store *store;
	struct proxy_options o;
	enum proxy_state state;
	uint64_t generation; /* bumped on every role change */
	struct resolver *resolver;
	uint64_t last_version;
	uint64_t epoch;
	bool accepting;
	struct proxy_txn *q_head, *q_tail; /* leader: waiting to flush */
	unsigned q_len;
	uv_timer_t flush_timer;
	bool flush_armed;
	struct proxy_grv *grv_head, *grv_tail; /* waiting for a barrier */
	struct readquorum *rq;                  /* NULL: barriers only */
	struct proxy_grv *rq_head, *rq_tail;    /* waiting for the quorum */
	bool barrier_inflight;
	uv_timer_t retry_timer; /* re-run a failed leadership barrier */
	struct rs_client *fwd;
	char fwd_addr[64];
	/* c-raft's answers, queued by its callbacks: never act inside them */
	struct proxy_flight *landed_head, *landed_tail;
	struct proxy_barrier *blanded_head, *blanded_tail;
	/* completions run from a zero timer, never inside proxy_commit */
	struct proxy_txn *done_head, *done_tail;
	struct proxy_grv *gdone_head, *gdone_tail;
	uv_timer_t done_timer;
	bool closing;
	unsigned handles_open;
	unsigned flights;
	void (*close_cb)(void *arg);
	void *close_arg;
	struct proxy_stats st;
	/* proxy_metrics_register: all NULL until then */
	struct metric *m_commits, *m_conflicts, *m_batches, *m_batch_txns,
		*m_batch_size, *m_batch_bytes, *m_grv_quorum, *m_grv_barrier;
};

/* ---- small helpers ---- */

static uint64_t proxy_now_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* The sequencer. */
static uint64_t proxy_next_version(struct proxy *p)
{
	uint64_t now = proxy_now_us();
	uint64_t v = now > p->last_version ? now : p->last_version + 1;
	assert(v > p->last_version);
	p->last_version = v;
	return v;
}

void proxy_txn_init(struct proxy_txn *t)
{
	memset(t, 0, sizeof *t);
	rs_buf_init(&t->ranges);
	batch_init(&t->muts);
	rs_result_init(&t->op.result);
}

void proxy_txn_free(struct proxy_txn *t)
{
	rs_buf_free(&t->ranges);
	batch_free(&t->muts);
	rs_result_free(&t->op.result);
	rs_buf_free(&t->op.request);
	free(t->fwd_begins);
	free(t->fwd_ends);
	t->fwd_begins = t->fwd_ends = NULL;
}

int proxy_txn_add_range(struct proxy_txn *t, const uint8_t *begin,
			uint32_t begin_len, const uint8_t *end,
			uint32_t end_len)
{
	int rv = rs_buf_reserve(&t->ranges, 8 + (size_t)begin_len + end_len);
	if (rv != RS_OK)
		return rv;
	rs_buf_put_u32(&t->ranges, begin_len);
	rs_buf_append(&t->ranges, begin, begin_len);
	rs_buf_put_u32(&t->ranges, end_len);
	rs_buf_append(&t->ranges, end, end_len);
	t->n_ranges++;
	return RS_OK;
}

/* Decode the i-th..n ranges into arrays (for the resolver and forwarding). */
static int proxy_txn_ranges(struct proxy_txn *t, const uint8_t **b,
			    uint32_t *bl, const uint8_t **e, uint32_t *el)
{
	size_t pos = 0;
	for (uint32_t i = 0; i < t->n_ranges; i++) {
		bl[i] = rs_get_u32(t->ranges.data + pos);
		b[i] = t->ranges.data + pos + 4;
		pos += 4 + bl[i];
		el[i] = rs_get_u32(t->ranges.data + pos);
		e[i] = t->ranges.data + pos + 4;
		pos += 4 + el[i];
	}
	assert(pos == t->ranges.len);
	return RS_OK;
}

/* ---- deferred completion ---- */

static void proxy_process_landed(struct proxy *p);

/* Runs from the loop: first what c-raft answered (which may propose again),
 * then the completions owed to callers. */
static void proxy_done_tick(uv_timer_t *timer)
{
	struct proxy *p = timer->data;

	proxy_process_landed(p);
	while (p->done_head != NULL) {
		struct proxy_txn *t = p->done_head;
		p->done_head = t->next;
		if (p->done_head == NULL)
			p->done_tail = NULL;
		t->next = NULL;
		t->cb(t, t->status, t->version, t->message);
	}
	while (p->gdone_head != NULL) {
		struct proxy_grv *g = p->gdone_head;
		p->gdone_head = g->next;
		if (p->gdone_head == NULL)
			p->gdone_tail = NULL;
		g->next = NULL;
		g->cb(g, g->status, g->version);
	}
}

static void proxy_arm_done(struct proxy *p)
{
	if (!uv_is_active((uv_handle_t *)&p->done_timer))
		uv_timer_start(&p->done_timer, proxy_done_tick, 0, 0);
}

static void proxy_txn_finish(struct proxy *p, struct proxy_txn *t, int status,
			     uint64_t version, const char *message)
{
	t->status = status;
	t->version = version;
	t->message = message;
	t->next = NULL;
	if (p->done_tail != NULL)
		p->done_tail->next = t;
	else
		p->done_head = t;
	p->done_tail = t;
	if (status == RS_OK) {
		p->st.commits++;
		if (p->m_commits != NULL)
			metrics_inc(p->m_commits);
	} else if (status == RS_ECONFLICT) {
		p->st.conflicts++;
		if (p->m_conflicts != NULL)
			metrics_inc(p->m_conflicts);
	}
	else if (status == RS_ETOOOLD)
		p->st.too_old++;
	else if (status == RS_EUNKNOWN)
		p->st.unknown++;
	proxy_arm_done(p);
}

/* Append g to the list *head..*tail (the proxy's read-version queues). */
static void proxy_grv_append(struct proxy_grv **head, struct proxy_grv **tail,
			     struct proxy_grv *g)
{
	g->next = NULL;
	if (*tail != NULL)
		(*tail)->next = g;
	else
		*head = g;
	*tail = g;
}

static void proxy_grv_finish(struct proxy *p, struct proxy_grv *g, int status,
			     uint64_t version)
{
	g->status = status;
	g->version = version;
	proxy_grv_append(&p->gdone_head, &p->gdone_tail, g);
	proxy_arm_done(p);
}

/* Answer every read version waiting in *head..*tail with status. */
static void proxy_grv_fail_list(struct proxy *p, struct proxy_grv **head,
				struct proxy_grv **tail, int status)
{
	while (*head != NULL) {
		struct proxy_grv *g = *head;
		*head = g->next;
		proxy_grv_finish(p, g, status, 0);
	}
	*tail = NULL;
}

static void proxy_fail_queue(struct proxy *p, int status, const char *msg)
{
	while (p->q_head != NULL) {
		struct proxy_txn *t = p->q_head;
		p->q_head = t->next;
		proxy_txn_finish(p, t, status, 0, msg);
	}
	p->q_tail = NULL;
	p->q_len = 0;
	proxy_grv_fail_list(p, &p->grv_head, &p->grv_tail, status);
	proxy_grv_fail_list(p, &p->rq_head, &p->rq_tail, status);
}

/* ---- leader: resolve, sequence, propose ---- */

static int proxy_raft_status(int raft_status)
{
	switch (raft_status) {
	case 0:
		return RS_OK;
	case RAFT_NOTLEADER:
		return RS_ENOTLEADER;
	default: /* leadership lost, shutdown, I/O: it may still commit */
		return RS_EUNKNOWN;
	}
}

static void proxy_flush(struct proxy *p);

/* What c-raft answered for one flight, acted on from the loop. */
static void proxy_flight_landed(struct proxy *p, struct proxy_flight *fl)
{
	int rs = proxy_raft_status(fl->status);
	const char *msg = rs == RS_OK ? NULL
			  : rs == RS_EUNKNOWN
				  ? "leadership was lost after the batch was proposed"
				  : "not the leader";

	if (rs == RS_OK && fl->fenced) {
		rs = RS_ERECOVERING;
		msg = "fenced: a newer epoch began before this batch applied";
		p->st.fenced++;
	}
	if (fl->epoch_cb != NULL) {
		fl->epoch_cb(fl->epoch_arg, rs, rs == RS_OK ? fl->version : 0);
		assert(p->flights > 0);
		p->flights--;
		free(fl);
		return;
	}

	while (fl->txns != NULL) {
		struct proxy_txn *t = fl->txns;
		fl->txns = t->next;
		proxy_txn_finish(p, t, rs, rs == RS_OK ? fl->version : 0, msg);
	}
	assert(p->flights > 0);
	p->flights--;
	free(fl);
	if (p->q_head != NULL && p->state == PROXY_READY && !p->closing)
		proxy_flush(p);
}

/* c-raft's apply callback: record the answer and queue the flight; the
 * work (answers, the next proposal) runs from the loop (raftcall.h). */
static void proxy_applied(struct raft_apply *req, int status, void *result)
{
	struct proxy_flight *fl = req->data;
	struct proxy *p = fl->proxy;

	raftcall_cb_enter("proxy apply callback");
	fl->status = status;
	fl->fenced = status == 0 && result == fsm_result_fenced();
	fl->landed_next = NULL;
	if (p->landed_tail != NULL)
		p->landed_tail->landed_next = fl;
	else
		p->landed_head = fl;
	p->landed_tail = fl;
	proxy_arm_done(p);
	raftcall_cb_leave();
}

/* Append t's mutations to b and record them in the resolver at version. */
static int proxy_add_txn(struct proxy *p, struct batch *b, struct proxy_txn *t,
			 uint64_t version)
{
	struct mutation m;
	size_t pos = 0;
	int rv = RS_OK;

	if (batch_body_len(b) + batch_body_len(&t->muts) > RS_BATCH_SIZE_MAX)
		return RS_ETOOLARGE;
	while (rv == RS_OK && batch_next(&t->muts, &pos, &m)) {
		if (m.type == MUT_SET) {
			rv = batch_set(b, m.key, m.key_len, m.val, m.val_len, NULL);
			resolver_record_key(p->resolver, version, m.key, m.key_len);
		} else if (m.type == MUT_CLEAR) {
			rv = batch_clear(b, m.key, m.key_len, NULL);
			resolver_record_key(p->resolver, version, m.key, m.key_len);
		} else {
			rv = batch_clear_range(b, m.key, m.key_len, m.val, m.val_len,
					       NULL);
			resolver_record_range(p->resolver, version, m.key,
					      m.key_len, m.val, m.val_len);
		}
	}
	return rv;
}

static int proxy_resolve(struct proxy *p, struct proxy_txn *t)
{
	const uint8_t *b[64], *e[64];
	uint32_t bl[64], el[64];
	const uint8_t **bp = b, **ep = e;
	uint32_t *blp = bl, *elp = el;
	int rv;

	if (t->n_ranges > 64) {
		bp = malloc(t->n_ranges * sizeof *bp);
		ep = malloc(t->n_ranges * sizeof *ep);
		blp = malloc(t->n_ranges * sizeof *blp);
		elp = malloc(t->n_ranges * sizeof *elp);
		if (!bp || !ep || !blp || !elp)
			abort();
	}
	proxy_txn_ranges(t, bp, blp, ep, elp);
	rv = resolver_check(p->resolver, t->read_version, bp, blp, ep, elp,
			    t->n_ranges);
	if (bp != b) {
		free(bp);
		free(ep);
		free(blp);
		free(elp);
	}
	return rv;
}

/* One batch proposed: the metrics, when registered. */
static void proxy_count_batch(struct proxy *p, unsigned txns, size_t bytes)
{
	if (p->m_batches == NULL)
		return;
	assert(p->m_batch_txns != NULL && p->m_batch_size != NULL);
	metrics_inc(p->m_batches);
	metrics_gauge_set(p->m_batch_txns, (double)txns);
	metrics_observe(p->m_batch_size, txns);
	metrics_observe(p->m_batch_bytes, (double)bytes);
}

/* Take up to batch_count_max queued txns into one flight. */
static void proxy_flush(struct proxy *p)
{
	struct proxy_flight *fl;
	struct proxy_txn **tail, *t;
	struct raft_buffer buf = {NULL, 0};
	struct batch b;
	unsigned taken = 0;
	int rv;

	if (p->state != PROXY_READY || p->q_head == NULL)
		return;
	fl = calloc(1, sizeof *fl);
	if (fl == NULL)
		abort();
	fl->proxy = p;
	fl->version = proxy_next_version(p);
	tail = &fl->txns;
	batch_init(&b);
	while ((t = p->q_head) != NULL && taken < p->o.batch_count_max) {
		rv = proxy_resolve(p, t);
		if (rv == RS_OK && batch_body_len(&b) + batch_body_len(&t->muts) >
					   RS_BATCH_SIZE_MAX && taken > 0)
			break; /* full: the rest goes in the next batch */
		p->q_head = t->next;
		p->q_len--;
		taken++;
		if (rv == RS_OK)
			rv = proxy_add_txn(p, &b, t, fl->version);
		if (rv != RS_OK) {
			proxy_txn_finish(p, t, rv, 0,
					 rv == RS_ECONFLICT ? "read keys changed since "
							      "the read version"
					 : rv == RS_ETOOOLD ? "transaction too old"
							    : "transaction rejected");
			continue;
		}
		t->next = NULL;
		*tail = t;
		tail = &t->next;
	}
	if (p->q_head == NULL)
		p->q_tail = NULL;
	resolver_prune(p->resolver);
	if (fl->txns == NULL) {
		batch_free(&b);
		free(fl);
		return;
	}
	b.version = fl->version;
	b.epoch = p->epoch;
	rv = fsm_entry_encode(&b, FSM_ENTRY_BATCH, &buf);
	batch_free(&b);
	fl->req.data = fl;
	p->flights++;
	p->st.batches++;
	p->st.last_batch_txns = taken;
	proxy_count_batch(p, taken, buf.len);
	if (rv == RS_OK)
		rv = raftcall_apply(p->raft, &fl->req, &buf, 1, proxy_applied);
	if (rv != 0) {
		raft_free(buf.base);
		/* Never proposed: safe to retry elsewhere. */
		fl->status = RAFT_NOTLEADER;
		proxy_flight_landed(p, fl);
	}
	if (p->q_head != NULL)
		proxy_flush(p);
}

static void proxy_flush_tick(uv_timer_t *timer)
{
	struct proxy *p = timer->data;
	p->flush_armed = false;
	proxy_flush(p);
}

static void proxy_enqueue(struct proxy *p, struct proxy_txn *t)
{
	t->next = NULL;
	if (p->q_tail != NULL)
		p->q_tail->next = t;
	else
		p->q_head = t;
	p->q_tail = t;
	p->q_len++;
	if (p->state != PROXY_READY)
		return; /* flushed when the leader is ready */
	/* Adaptive batching: with nothing in flight waiting cannot help, so go
	 * now; otherwise gather until a flight lands, the count is reached,
	 * or the delay passes. */
	if (p->q_len >= p->o.batch_count_max || p->flights == 0) {
		proxy_flush(p);
	} else if (!p->flush_armed) {
		/* libuv timers are in milliseconds: round the delay up. */
		uint64_t ms = (p->o.batch_delay_us + 999) / 1000;
		p->flush_armed = true;
		uv_timer_start(&p->flush_timer, proxy_flush_tick, ms, 0);
	}
}

/* ---- read versions and leadership barriers ---- */

static void proxy_start_barrier(struct proxy *p, bool startup);

/* Queue g for the next barrier round. */
static void proxy_grv_wait_barrier(struct proxy *p, struct proxy_grv *g)
{
	proxy_grv_append(&p->grv_head, &p->grv_tail, g);
	if (p->state == PROXY_READY && !p->barrier_inflight)
		proxy_start_barrier(p, false);
}

/* Answer the reads the quorum confirmed, in arrival order; hand the rest
 * to the barrier once the quorum cannot answer (readquorum.h). */
static void proxy_rq_progress(struct proxy *p)
{
	while (p->rq_head != NULL) {
		struct proxy_grv *g = p->rq_head;
		enum readquorum_verdict v = readquorum_check(p->rq, g->stamp);

		if (v == READQUORUM_WAIT)
			return;
		p->rq_head = g->next;
		if (p->rq_head == NULL)
			p->rq_tail = NULL;
		if (v == READQUORUM_CONFIRMED) {
			p->st.grv_quorum++;
			if (p->m_grv_quorum != NULL)
				metrics_inc(p->m_grv_quorum);
			proxy_grv_finish(p, g, RS_OK,
					 store_accepted_version(p->store));
		} else {
			p->st.grv_fallbacks++;
			proxy_grv_wait_barrier(p, g);
		}
	}
}

static void proxy_rq_on_progress(void *ctx)
{
	proxy_rq_progress(ctx);
}

/* readquorum's questions, put to the proxy's owner. */
static const char *proxy_rq_peer_addr(void *ctx, uint64_t id)
{
	struct proxy *p = ctx;
	return p->o.peer_addr(p->o.ctx, id);
}

static void proxy_rq_cluster_id(void *ctx, uint8_t out[16])
{
	struct proxy *p = ctx;
	p->o.cluster_id(p->o.ctx, out);
}

static void proxy_become_ready(struct proxy *p)
{
	uint64_t v = store_accepted_version(p->store);

	p->state = PROXY_READY;
	if (p->last_version < v)
		p->last_version = v;
	resolver_reset(p->resolver, v);
	log_info("proxy.ready", "version=%llu queued=%u",
		 (unsigned long long)v, p->q_len);
	if (p->o.on_ready != NULL)
		p->o.on_ready(p->o.ctx);
	proxy_flush(p);
}

static void proxy_retry_tick(uv_timer_t *timer)
{
	struct proxy *p = timer->data;
	if (p->state == PROXY_STARTING && !p->barrier_inflight)
		proxy_start_barrier(p, true);
}

/* What c-raft answered for one barrier, acted on from the loop. */
static void proxy_barrier_landed(struct proxy *p, struct proxy_barrier *br)
{
	bool current = br->generation == p->generation && !p->closing;
	uint64_t v = store_accepted_version(p->store);
	int status = br->status;

	p->barrier_inflight = false;
	while (br->waiters != NULL) {
		struct proxy_grv *g = br->waiters;
		br->waiters = g->next;
		if (status == 0 && current) {
			p->st.grv_barrier++;
			if (p->m_grv_barrier != NULL)
				metrics_inc(p->m_grv_barrier);
		}
		proxy_grv_finish(p, g, status == 0 && current ? RS_OK : RS_ENOTLEADER,
				 v);
	}
	/* The barrier is an entry of br->term, committed and applied: reads
	 * may be confirmed by the quorum of that term (readquorum.h).  Any
	 * barrier will do, so a leader that c-raft deposed and re-elected
	 * between two role polls (its proxy never left READY) gets its quorum
	 * back with the first read that fell back to a barrier. */
	if (current && status == 0 && p->rq != NULL &&
	    raftinfo_state(p->raft) == RAFT_LEADER &&
	    raftinfo_term(p->raft) == br->term)
		readquorum_set_term(p->rq, br->term);
	if (current && br->startup) {
		if (status == 0)
			proxy_become_ready(p);
		else /* still leader per the last role poll: try again soon */
			uv_timer_start(&p->retry_timer, proxy_retry_tick, 50, 0);
	}
	free(br);
	if (current && p->state == PROXY_READY && p->grv_head != NULL)
		proxy_start_barrier(p, false);
}

/* c-raft's barrier callback: record and queue, nothing more (raftcall.h). */
static void proxy_barrier_done(struct raft_barrier *req, int status)
{
	struct proxy_barrier *br = req->data;
	struct proxy *p = br->proxy;

	raftcall_cb_enter("proxy barrier callback");
	br->status = status;
	br->landed_next = NULL;
	if (p->blanded_tail != NULL)
		p->blanded_tail->landed_next = br;
	else
		p->blanded_head = br;
	p->blanded_tail = br;
	proxy_arm_done(p);
	raftcall_cb_leave();
}

static void proxy_process_landed(struct proxy *p)
{
	while (p->landed_head != NULL) {
		struct proxy_flight *fl = p->landed_head;
		p->landed_head = fl->landed_next;
		if (p->landed_head == NULL)
			p->landed_tail = NULL;
		proxy_flight_landed(p, fl);
	}
	while (p->blanded_head != NULL) {
		struct proxy_barrier *br = p->blanded_head;
		p->blanded_head = br->landed_next;
		if (p->blanded_head == NULL)
			p->blanded_tail = NULL;
		proxy_barrier_landed(p, br);
	}
}

static void proxy_start_barrier(struct proxy *p, bool startup)
{
	struct proxy_barrier *br = calloc(1, sizeof *br);
	int rv;

	if (br == NULL)
		abort();
	br->proxy = p;
	br->generation = p->generation;
	br->term = raftinfo_term(p->raft);
	br->startup = startup;
	if (!startup) { /* take every waiting request into this round */
		br->waiters = p->grv_head;
		p->grv_head = p->grv_tail = NULL;
		p->st.grv_rounds++;
	}
	br->req.data = br;
	p->barrier_inflight = true;
	rv = raftcall_barrier(p->raft, &br->req, proxy_barrier_done);
	if (rv != 0) {
		log_warn("proxy.barrier_failed", "error=\"%s\"", raft_strerror(rv));
		br->status = rv;
		proxy_barrier_landed(p, br);
	}
}

void proxy_set_leader(struct proxy *p, bool leader)
{
	bool was = p->state != PROXY_FOLLOWER;

	if (leader == was || p->closing)
		return;
	p->generation++;
	if (p->rq != NULL)
		readquorum_set_term(p->rq, 0);
	p->accepting = false; /* until this leader's director has recovered */
	if (leader) {
		p->state = PROXY_STARTING;
		proxy_start_barrier(p, true);
		return;
	}
	p->state = PROXY_FOLLOWER;
	uv_timer_stop(&p->flush_timer);
	p->flush_armed = false;
	/* Queued here but never proposed: the client may retry. */
	proxy_fail_queue(p, RS_ENOTLEADER, "leadership moved before the "
					   "transaction was proposed");
}

/* ---- follower: forwarding to the leader ---- */

static struct rs_client *proxy_forwarder(struct proxy *p)
{
	const char *addr = p->o.leader_addr(p->o.ctx);
	struct rs_client_options co = {.op_timeout_ms = 3000,
				       .connections = 1,
				       .no_leader_pref = true};
	char errmsg[RS_ERRMSG_SIZE];

	if (addr == NULL)
		return NULL;
	if (p->fwd != NULL && strcmp(addr, p->fwd_addr) == 0)
		return p->fwd;
	proxy_leader_moved(p);
	co.endpoints = addr;
	if (rs_client_create(&p->fwd, p->loop, &co, errmsg) != RS_OK) {
		log_warn("proxy.forward_failed", "leader=%s error=\"%s\"", addr,
			 errmsg);
		p->fwd = NULL;
		return NULL;
	}
	snprintf(p->fwd_addr, sizeof p->fwd_addr, "%s", addr);
	return p->fwd;
}

void proxy_leader_moved(struct proxy *p)
{
	if (p->fwd == NULL)
		return;
	/* Outstanding forwarded ops complete with RS_ESHUTDOWN. */
	rs_client_close(p->fwd, NULL, NULL);
	p->fwd = NULL;
	p->fwd_addr[0] = '\0';
}

/* A forwarded request that died with our own client: unknown if sent. */
static int proxy_forward_status(const struct rs_op *op, int status)
{
	if (status == RS_ESHUTDOWN)
		return op->written ? RS_EUNKNOWN : RS_ENOTLEADER;
	return status;
}

static void proxy_forwarded_commit(struct rs_op *op)
{
	struct proxy_txn *t = op->data;
	struct proxy *p = t->proxy;
	int status = proxy_forward_status(op, op->result.status);

	proxy_txn_finish(p, t, status, status == RS_OK ? op->result.version : 0,
			 status == RS_OK ? NULL : "forwarded to the leader");
}

static void proxy_forward_commit(struct proxy *p, struct proxy_txn *t)
{
	struct rs_client *c = proxy_forwarder(p);
	const uint8_t **b, **e;
	uint32_t *bl, *el;
	int rv;

	if (c == NULL) {
		proxy_txn_finish(p, t, RS_EUNAVAILABLE, 0, "no leader known");
		return;
	}
	t->fwd_begins = calloc(t->n_ranges + 1, sizeof *t->fwd_begins);
	t->fwd_ends = calloc(t->n_ranges + 1, sizeof *t->fwd_ends);
	b = calloc(t->n_ranges + 1, sizeof *b);
	e = calloc(t->n_ranges + 1, sizeof *e);
	bl = calloc(t->n_ranges + 1, sizeof *bl);
	el = calloc(t->n_ranges + 1, sizeof *el);
	if (!t->fwd_begins || !t->fwd_ends || !b || !e || !bl || !el)
		abort();
	proxy_txn_ranges(t, b, bl, e, el);
	for (uint32_t i = 0; i < t->n_ranges; i++) {
		t->fwd_begins[i] = (struct wire_bytes){b[i], bl[i]};
		t->fwd_ends[i] = (struct wire_bytes){e[i], el[i]};
	}
	free(b);
	free(e);
	free(bl);
	free(el);
	t->op.data = t;
	p->st.forwarded++;
	rv = rs_client_commit(c, &t->op, t->read_version, t->fwd_begins,
			      t->fwd_ends, t->n_ranges, &t->muts,
			      proxy_forwarded_commit);
	if (rv != RS_OK)
		proxy_txn_finish(p, t, rv, 0, "could not forward to the leader");
}

/* A read version changes nothing: when the link to the leader drops, the
 * caller may simply ask again (RS_ENOTLEADER), never RS_EUNKNOWN. */
static void proxy_forwarded_grv(struct rs_op *op)
{
	struct proxy_grv *g = op->data;
	int status = op->result.status == RS_ESHUTDOWN ? RS_ENOTLEADER
						       : op->result.status;
	proxy_grv_finish(g->proxy, g, status, op->result.version);
}

/* ---- public entry points ---- */

void proxy_commit(struct proxy *p, struct proxy_txn *t, proxy_txn_cb cb)
{
	assert(cb != NULL);
	t->cb = cb;
	t->proxy = p;
	if (p->closing) {
		proxy_txn_finish(p, t, RS_ESHUTDOWN, 0, "node shutting down");
		return;
	}
	if (p->state == PROXY_FOLLOWER) {
		proxy_forward_commit(p, t);
	} else if (!p->accepting && !t->system) {
		p->st.recovering++;
		proxy_txn_finish(p, t, RS_ERECOVERING, 0,
				 "the director is recovering the transaction system");
	} else {
		proxy_enqueue(p, t);
	}
}

void proxy_set_epoch(struct proxy *p, uint64_t epoch)
{
	assert(epoch >= p->epoch);
	p->epoch = epoch;
}

void proxy_set_accepting(struct proxy *p, bool accepting)
{
	p->accepting = accepting;
	if (!accepting) {
		/* Queued client transactions were never proposed. */
		struct proxy_txn **pp = &p->q_head, *t;
		p->q_tail = NULL;
		while ((t = *pp) != NULL) {
			if (t->system) {
				p->q_tail = t;
				pp = &t->next;
				continue;
			}
			*pp = t->next;
			p->q_len--;
			proxy_txn_finish(p, t, RS_ERECOVERING,
					 0, "the director is recovering the "
					    "transaction system");
		}
	}
}

void proxy_set_batching(struct proxy *p, unsigned count_max, unsigned delay_us)
{
	assert(count_max > 0);
	p->o.batch_count_max = count_max;
	p->o.batch_delay_us = delay_us;
}

void proxy_get_batching(const struct proxy *p, unsigned *count_max,
			unsigned *delay_us)
{
	*count_max = p->o.batch_count_max;
	*delay_us = p->o.batch_delay_us;
}

int proxy_allocate_epoch(struct proxy *p, uint64_t epoch,
			 const struct batch *muts, proxy_epoch_cb cb, void *arg)
{
	struct proxy_flight *fl;
	struct raft_buffer buf = {NULL, 0};
	struct batch b;
	int rv;

	if (p->state != PROXY_READY)
		return RS_ENOTLEADER;
	fl = calloc(1, sizeof *fl);
	if (fl == NULL)
		return RS_ENOMEM;
	batch_init(&b);
	if (muts->body.len > 0 &&
	    batch_load_body(&b, muts->body.data, muts->body.len) != RS_OK)
		abort();
	fl->proxy = p;
	fl->version = proxy_next_version(p);
	fl->epoch_cb = cb;
	fl->epoch_arg = arg;
	fl->req.data = fl;
	b.version = fl->version;
	b.epoch = epoch;
	rv = fsm_entry_encode(&b, FSM_ENTRY_EPOCH, &buf);
	batch_free(&b);
	if (rv == RS_OK)
		rv = raftcall_apply(p->raft, &fl->req, &buf, 1, proxy_applied);
	if (rv != 0) {
		raft_free(buf.base);
		free(fl);
		return rv == RS_ENOMEM ? rv : RS_ENOTLEADER;
	}
	p->flights++;
	return RS_OK;
}

void proxy_grv(struct proxy *p, struct proxy_grv *g, proxy_grv_cb cb)
{
	struct rs_client *c;

	g->cb = cb;
	g->proxy = p;
	g->next = NULL;
	p->st.grv_requests++;
	if (p->closing) {
		proxy_grv_finish(p, g, RS_ESHUTDOWN, 0);
		return;
	}
	if (p->state == PROXY_FOLLOWER) {
		c = proxy_forwarder(p);
		g->op.data = g;
		rs_result_init(&g->op.result);
		if (c == NULL || rs_client_grv(c, &g->op, proxy_forwarded_grv) != 0)
			proxy_grv_finish(p, g, RS_EUNAVAILABLE, 0);
		return;
	}
	if (p->state == PROXY_READY && p->rq != NULL) {
		/* proxy_rq_progress answers it, or hands it to the barrier when
		 * the quorum cannot */
		g->stamp = readquorum_arrive(p->rq);
		proxy_grv_append(&p->rq_head, &p->rq_tail, g);
		proxy_rq_progress(p);
		return;
	}
	proxy_grv_wait_barrier(p, g);
}

int proxy_create(struct proxy **out, uv_loop_t *loop, struct raft *raft,
		 struct store *store, const struct proxy_options *o)
{
	struct proxy *p = calloc(1, sizeof *p);

	if (p == NULL)
		return RS_ENOMEM;
	p->loop = loop;
	p->raft = raft;
	p->store = store;
	p->o = *o;
	if (p->o.batch_count_max == 0)
		p->o.batch_count_max = 512;
	if (p->o.resolver_window_versions == 0)
		p->o.resolver_window_versions = 5000000;
	p->resolver = resolver_create(p->o.resolver_window_versions);
	uv_timer_init(loop, &p->flush_timer);
	uv_timer_init(loop, &p->retry_timer);
	uv_timer_init(loop, &p->done_timer);
	p->flush_timer.data = p->retry_timer.data = p->done_timer.data = p;
	if (o->self_id != 0 && o->peer_addr != NULL && o->cluster_id != NULL &&
	    !o->read_barrier) {
		struct readquorum_options ro = {.self_id = o->self_id,
						.peer_addr = proxy_rq_peer_addr,
						.cluster_id = proxy_rq_cluster_id,
						.on_progress = proxy_rq_on_progress,
						.ctx = p};
		if (readquorum_create(&p->rq, loop, raft, &ro) != RS_OK)
			p->rq = NULL; /* barriers only: slower, as safe */
	}
	*out = p;
	return RS_OK;
}

static void proxy_closed_one(struct proxy *p)
{
	if (--p->handles_open > 0)
		return;
	resolver_destroy(p->resolver);
	void (*cb)(void *) = p->close_cb;
	void *arg = p->close_arg;
	free(p);
	if (cb != NULL)
		cb(arg);
}

static void proxy_handle_closed(uv_handle_t *h)
{
	proxy_closed_one(h->data);
}

static void proxy_rq_closed(void *arg)
{
	proxy_closed_one(arg);
}

bool proxy_idle(const struct proxy *p)
{
	return p->flights == 0 && !p->barrier_inflight &&
	       p->landed_head == NULL && p->blanded_head == NULL;
}

void proxy_close(struct proxy *p, void (*cb)(void *arg), void *arg)
{
	/* Raft is closed first, so every flight has had its callback; act on
	 * the answers still queued. */
	p->closing = true;
	proxy_process_landed(p);
	assert(p->flights == 0);
	p->close_cb = cb;
	p->close_arg = arg;
	proxy_fail_queue(p, RS_ESHUTDOWN, "node shutting down");
	proxy_leader_moved(p);
	proxy_done_tick(&p->done_timer); /* answer everyone before closing */
	p->handles_open = p->rq != NULL ? 4 : 3;
	uv_close((uv_handle_t *)&p->flush_timer, proxy_handle_closed);
	uv_close((uv_handle_t *)&p->retry_timer, proxy_handle_closed);
	uv_close((uv_handle_t *)&p->done_timer, proxy_handle_closed);
	if (p->rq != NULL)
		readquorum_close(p->rq, proxy_rq_closed, p);
}

void proxy_get_stats(const struct proxy *p, struct proxy_stats *st)
{
	*st = p->st;
	st->state = proxy_state_names[p->state];
	st->epoch = p->epoch;
	st->accepting = p->accepting;
}

int proxy_metrics_register(struct proxy *p, struct metrics *ms)
{
	static const double txns_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
	struct metric *commits, *conflicts, *batches, *txns, *size, *bytes;

	assert(p != NULL && ms != NULL);
	commits = metrics_counter(ms, "raftstore_commits_total",
				  "Transactions committed by this leader");
	conflicts = metrics_counter(ms, "raftstore_conflicts_total",
				    "Transactions aborted by the resolver");
	batches = metrics_counter(ms, "raftstore_batches_total",
				  "Batches proposed to Raft by this leader");
	txns = metrics_gauge(ms, "raftstore_last_batch_transactions",
			     "Transactions in the last batch proposed");
	size = metrics_histogram(ms, "raftstore_batch_transactions",
				 "Transactions per batch proposed", txns_bounds,
				 sizeof txns_bounds / sizeof txns_bounds[0]);
	bytes = metrics_histogram(ms, "raftstore_batch_bytes",
				  "Raft entry bytes per batch",
				  metrics_buckets_bytes, METRICS_BUCKETS_BYTES_COUNT);
	static const char *const quorum_l[] = {"path", "quorum", NULL};
	static const char *const barrier_l[] = {"path", "barrier", NULL};
	static const char grv_help[] = "Linearizable read versions answered by "
		"this leader, by how it proved its leadership";
	struct metric *gq = metrics_register(ms, METRIC_COUNTER,
		"raftstore_read_versions_total", grv_help, quorum_l, NULL, 0);
	struct metric *gb = metrics_register(ms, METRIC_COUNTER,
		"raftstore_read_versions_total", grv_help, barrier_l, NULL, 0);
	if (!commits || !conflicts || !batches || !txns || !size || !bytes ||
	    !gq || !gb)
		return RS_EINVAL;
	metrics_add(gq, p->st.grv_quorum);
	metrics_add(gb, p->st.grv_barrier);
	p->m_grv_quorum = gq;
	p->m_grv_barrier = gb;
	metrics_add(commits, p->st.commits);
	metrics_add(conflicts, p->st.conflicts);
	metrics_add(batches, p->st.batches);
	metrics_gauge_set(txns, (double)p->st.last_batch_txns);
	p->m_commits = commits;
	p->m_conflicts = conflicts;
	p->m_batches = batches;
	p->m_batch_txns = txns;
	p->m_batch_size = size;
	p->m_batch_bytes = bytes;
	return RS_OK;
}
