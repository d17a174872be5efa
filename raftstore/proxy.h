/*
 * proxy: the commit proxy, and on the leader the sequencer and the
 * read-version service.
 *
 * Every node runs a proxy.  Transactions and read-version requests arrive
 * from the node's clients:
 *  - on a follower they are forwarded to the leader's client port, pipelined
 *    over one connection (the leader's proxy does the batching);
 *  - on the leader they queue until batch_count_max transactions are waiting
 *    or batch_delay_us has passed, then one flush resolves them in order
 *    (resolver.h), gives the survivors one commit version from the
 *    sequencer, and proposes their concatenated mutations as one Raft entry
 *    (fsm.h).  Each transaction is answered with that version, or with its
 *    conflict at once.
 *
 * The sequencer's versions are max(last + 1, wall clock in microseconds):
 * strictly increasing, roughly a million per second (so the MVCC window of
 * 5,000,000 versions is about five seconds), and a new leader starts above
 * everything it has applied after its leadership barrier.
 *
 * Read versions (GRV): the leader answers once a majority of the voters
 * has shown it was still the leader after the request arrived, by
 * answering a TERM question with its term (readquorum.h: no Raft log
 * write, no fsync); the reads that arrive while a question is out share
 * the next one.  Where that quorum cannot answer (members down or too old
 * to know TERM, or the option read_barrier), a c-raft barrier proves the
 * same, at the cost of a replicated entry; all requests waiting while one
 * barrier runs share the next one.  Either way the answer is the store's
 * accepted version then: everything committed before the request is
 * applied on the leader.
 *
 * Outcomes are never guessed.  A transaction the leader had proposed when
 * it lost leadership (or whose forwarded frame was written before the
 * connection to the leader failed) gets RS_EUNKNOWN.  One that was never
 * proposed gets RS_ENOTLEADER or RS_EUNAVAILABLE, both retryable.
 *
 * Leadership states: FOLLOWER -> STARTING (barrier in flight; requests
 * wait) -> READY -> FOLLOWER.  The node reports role changes with
 * proxy_set_leader().
 */
#ifndef RS_PROXY_H
#define RS_PROXY_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/client.h"
#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/metrics.h"
#include "storage/store.h"

struct proxy_options {
	unsigned batch_count_max;
	unsigned batch_delay_us;
	uint64_t resolver_window_versions;
	/* Called when the leader is READY (system writes may go in now). */
	void (*on_ready)(void *ctx);
	/* The leader's client address ("host:port"), or NULL if unknown or
	 * this node. */
	const char *(*leader_addr)(void *ctx);
	/* Linearizable reads confirmed by a quorum of TERM answers
	 * (readquorum.h) when self_id, peer_addr and cluster_id are all set
	 * and read_barrier is false; otherwise (or when the quorum cannot
	 * answer) by a c-raft barrier. */
	uint64_t self_id;
	const char *(*peer_addr)(void *ctx, uint64_t id);
	void (*cluster_id)(void *ctx, uint8_t out[16]);
	bool read_barrier;
	void *ctx;
};

struct proxy_txn;
typedef void (*proxy_txn_cb)(struct proxy_txn *t, int status,
			     uint64_t version, const char *message);

/* A transaction; the caller allocates it (proxy_txn_init) and frees it
 * (proxy_txn_free) after the callback. */
struct proxy_txn {
	void *data;
	uint64_t read_version;
	uint32_t n_ranges;
	struct rs_buf ranges; /* n_ranges x (u32 len, begin, u32 len, end) */
	struct batch muts;
	/* private */
	proxy_txn_cb cb;
	struct proxy *proxy;
	struct proxy_txn *next;
	struct rs_op op;
	struct wire_bytes *fwd_begins, *fwd_ends;
	bool system; /* the director's own: passes the recovering gate */
	int status;
	uint64_t version;
	const char *message;
};

void proxy_txn_init(struct proxy_txn *t);
void proxy_txn_free(struct proxy_txn *t);
/* Add a read-conflict range [begin, end). */
int proxy_txn_add_range(struct proxy_txn *t, const uint8_t *begin,
			uint32_t begin_len, const uint8_t *end,
			uint32_t end_len);

struct proxy_grv;
typedef void (*proxy_grv_cb)(struct proxy_grv *g, int status,
			     uint64_t version);
struct proxy_grv {
	void *data;
	/* private */
	proxy_grv_cb cb;
	struct proxy *proxy;
	struct proxy_grv *next;
	struct rs_op op;
	uint64_t stamp; /* readquorum_arrive's, while waiting for the quorum */
	int status;
	uint64_t version;
};

struct proxy;

int proxy_create(struct proxy **out, uv_loop_t *loop, struct raft *raft,
		 struct store *store, const struct proxy_options *o);
/* Fail everything queued (RS_ESHUTDOWN / RS_EUNKNOWN as appropriate) and
 * free; cb on the loop when done. */
/* True when nothing of ours is outstanding in c-raft: no proposed batch,
 * no barrier, no answer waiting to be acted on.  The node waits for this
 * (bounded) before raft_close, so that c-raft closes with no request of
 * ours in flight. */
bool proxy_idle(const struct proxy *p);
void proxy_close(struct proxy *p, void (*cb)(void *arg), void *arg);

/* The callback always runs later, never from inside this call. */
void proxy_commit(struct proxy *p, struct proxy_txn *t, proxy_txn_cb cb);
void proxy_grv(struct proxy *p, struct proxy_grv *g, proxy_grv_cb cb);

/*
 * Epochs (set by the director).  Every batch the leader proposes carries
 * the current epoch; until proxy_set_accepting(true), client commits get
 * RS_ERECOVERING (system transactions pass).  A batch the state machine
 * fences (a newer epoch began) completes with RS_ERECOVERING: it was not
 * applied anywhere.
 */
void proxy_set_epoch(struct proxy *p, uint64_t epoch);
void proxy_set_accepting(struct proxy *p, bool accepting);
/* Batching parameters (the director applies \xff/system/config/). */
void proxy_set_batching(struct proxy *p, unsigned count_max,
			unsigned delay_us);
void proxy_get_batching(const struct proxy *p, unsigned *count_max,
			unsigned *delay_us);

/* Propose the entry that allocates `epoch` (FSM_ENTRY_EPOCH), carrying
 * muts, with the next sequencer version.  cb gets 0 and the version once it
 * is applied locally, RS_ERECOVERING if fenced, or a Raft failure. */
typedef void (*proxy_epoch_cb)(void *arg, int status, uint64_t version);
int proxy_allocate_epoch(struct proxy *p, uint64_t epoch,
			 const struct batch *muts, proxy_epoch_cb cb,
			 void *arg);

/* The node saw its Raft role change (true: it is now the leader). */
void proxy_set_leader(struct proxy *p, bool leader);
/* The leader changed while this node follows: reconnect forwarding. */
void proxy_leader_moved(struct proxy *p);

struct proxy_stats {
	uint64_t commits, conflicts, too_old, unknown, batches, forwarded;
	uint64_t grv_rounds, grv_requests, fenced, recovering;
	/* read versions confirmed by the quorum of TERM answers; handed to a
	 * barrier because the quorum could not answer */
	uint64_t grv_quorum, grv_fallbacks;
	uint64_t grv_barrier; /* answered by a (non-startup) barrier */
	uint64_t epoch;
	bool accepting;
	uint64_t last_batch_txns;
	const char *state; /* "follower", "starting", "ready" */
};
void proxy_get_stats(const struct proxy *p, struct proxy_stats *st);

/* Register the proxy's metrics in ms and keep them current from then on:
 * raftstore_commits_total, raftstore_conflicts_total,
 * raftstore_batches_total (the proxy_stats counters of the same names),
 * raftstore_last_batch_transactions, and the histograms
 * raftstore_batch_transactions and raftstore_batch_bytes (transactions and
 * Raft entry bytes per batch proposed).  Counts made before the call are
 * carried over.  ms must outlive the proxy.  RS_OK, or RS_EINVAL with
 * metrics_errmsg(ms) saying why (the proxy then updates nothing). */
int proxy_metrics_register(struct proxy *p, struct metrics *ms);

#endif /* RS_PROXY_H */
