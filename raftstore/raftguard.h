/*
 * raftguard: the cluster-ID handshake on every Raft connection, as a
 * raft_uv_transport that wraps c-raft's own TCP transport (raft_uv_tcp).
 *
 * c-raft 0.15 accepts any peer that speaks its protocol: a node holding
 * another cluster's data joins silently and its log wins or loses like any
 * other (issue 12).  The guard puts one fixed-size HELLO from the connecting
 * side and one fixed-size reply from the accepting side on each new
 * connection, after raft_uv_tcp's own handshake and before any byte is handed
 * to c-raft, and checks them by the rules of the cluster identity design
 * (docs/protocol.md §10, "Raft connection HELLO"):
 *
 *  1. bad magic, version, kind or CRC, a to_id that is not this node, or a
 *     from_id that is not a member, is this node's own, or is not the peer
 *     dialed/announced: refuse;
 *  2. both cluster IDs non-zero: they must be equal;
 *  3. this node's ID zero, the peer's not: adopt it (ops->adopt, durable)
 *     only if the peer is the founder (lowest member id); else refuse;
 *  4. this node's ID non-zero, the peer's zero: accept;
 *  5. both zero: accept.
 *
 * A refused connection is closed, logged (event=raft.peer_refused with the
 * peer's address, ids and both cluster IDs; the same refusal at most once
 * per RAFTGUARD_LOG_INTERVAL_MS at warn level) and counted; c-raft never
 * sees it (an outbound one completes with RAFT_NOCONNECTION, and c-raft
 * retries on its own timer).  The acceptor writes a "refused" reply before
 * closing, so the connector can log why.  An acceptor hands its stream to
 * c-raft once its ok reply is written; if the connector then refuses the
 * reply (rule 3 on its side), it closes without writing, so still no Raft
 * message crosses.
 *
 * Once c-raft reads a connection a peer dialed (a leader's to this
 * follower carries its AppendEntries), the guard sees how each read ends:
 * when the peer ends a connection that carried Raft messages (EOF or a
 * reset, which the peer's kernel sends the moment its process dies or
 * closes its Raft side, well before any election timeout), the guard logs
 * it (event=raft.peer_closed) and tells the node (ops->peer_closed), which
 * may then hold its election sooner (docs/architecture.md, c-raft guard
 * 8).  A silent peer (stopped, partitioned) ends no connection and is
 * never reported: that is for the election timeout to notice.
 *
 * A connection this node dialed (c-raft only writes to those) is watched
 * through a duplicate of its descriptor: when the peer ends it, the guard
 * shuts down its sending side (event=raft.peer_closed conn=out), so that
 * c-raft's next message there fails and reconnects instead of being lost
 * without an error (c-raft guard 16; raftresend sends it again).
 *
 * Everything runs on the loop of the wrapped transport: nothing blocks but
 * ops->adopt (one durable write of the node's identity, once in its life).
 * A peer has hello_timeout_ms (default 5 s) to complete the exchange.  The
 * guard reads exactly the message's size, so no c-raft byte after it is
 * consumed.
 *
 * Wiring, in a node:
 *
 *   raft_uv_tcp_init(&tcp, loop);
 *   raftguard_init(&guard, &tcp, &ops, errmsg);
 *   raft_uv_init(&io, loop, raft_dir, &guard.transport);
 *   raft_init(&raft, &io, &fsm, ops.self_id, raft_addr); ... raft_start
 *   ...
 *   raft_close(&raft, cb);   then, in cb or after it:
 *   raft_uv_close(&io); raftguard_close(&guard); raft_uv_tcp_close(&tcp);
 */
#ifndef RS_RAFTGUARD_H
#define RS_RAFTGUARD_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>

#include "raftstore/lib/rs_error.h"

/*
 * The HELLO and its replies, all RAFTGUARD_MSG_SIZE bytes, little-endian:
 *
 *   offset size field
 *        0    8 magic "RSHELLO\0"
 *        8    4 version (RAFTGUARD_VERSION = 1)
 *       12    4 kind (enum raftguard_kind)
 *       16   16 cluster_id of the sender (all zero = not yet known)
 *       32    8 from_id: the sender's node id
 *       40    8 to_id: the node id the sender means to talk to
 *       48    4 crc32c of bytes 0..47
 */
#define RAFTGUARD_MSG_SIZE 52
#define RAFTGUARD_VERSION 1
#define RAFTGUARD_CLUSTER_ID_SIZE 16
#define RAFTGUARD_HELLO_TIMEOUT_MS 5000
/* The same refusal (peer, direction, reason) is logged at warn level at
 * most once per interval, with the count of repeats since; the others go
 * to debug.  Every one is counted in the stats. */
#define RAFTGUARD_LOG_INTERVAL_MS 10000
#define RAFTGUARD_LOG_SLOTS 8

enum raftguard_kind {
	RAFTGUARD_KIND_HELLO = 1,
	RAFTGUARD_KIND_REPLY_OK = 2,
	RAFTGUARD_KIND_REFUSED = 3,
};

struct raftguard_msg {
	uint32_t kind;
	uint8_t cluster_id[RAFTGUARD_CLUSTER_ID_SIZE];
	uint64_t from_id;
	uint64_t to_id;
};

/* Write m (with the current version) into out. */
void raftguard_msg_encode(const struct raftguard_msg *m,
			  uint8_t out[RAFTGUARD_MSG_SIZE]);
/* Decode in; RS_OK, or RS_ECORRUPT (magic, CRC) / RS_EFORMAT (version) /
 * RS_EPROTO (kind) with errmsg saying which.  m is filled only on RS_OK. */
int raftguard_msg_decode(const uint8_t in[RAFTGUARD_MSG_SIZE],
			 struct raftguard_msg *m, char *errmsg);

/* What the guard asks of the node.  Every callback runs on the loop. */
struct raftguard_peer_ops {
	void *ctx;
	uint64_t self_id;
	bool (*is_member)(void *ctx, uint64_t id);
	uint64_t (*founder)(void *ctx); /* lowest member id */
	void (*cluster_id)(void *ctx, uint8_t out[RAFTGUARD_CLUSTER_ID_SIZE]);
	/* Durably adopt id (the node's cluster ID is zero); RS_OK, or an
	 * error with errmsg (RS_ERRMSG_SIZE) set, and the peer is refused. */
	int (*adopt)(void *ctx, const uint8_t id[RAFTGUARD_CLUSTER_ID_SIZE],
		     char *errmsg);
	/* Optional (NULL: not told).  peer_id ended a connection it had
	 * dialed to this node and sent Raft messages on (EOF or a reset,
	 * never a timeout): its process most likely died. */
	void (*peer_closed)(void *ctx, uint64_t peer_id);
};

struct raftguard_shake;
struct raftguard_outwatch;

/* For metrics and tests. */
struct raftguard_stats {
	uint64_t accepted; /* connections handed to c-raft */
	uint64_t refused;  /* handshakes that failed, for any reason */
	uint64_t adopted;  /* cluster IDs adopted (rule 3) */
	uint64_t peers_closed; /* peer_closed reports */
	uint64_t outbound_ended; /* dialed connections the peer ended */
	char last_refusal[RS_ERRMSG_SIZE]; /* "" until the first refusal */
};

/* One remembered refusal, for the log's rate limit. */
struct raftguard_log_slot {
	uint64_t peer_id;
	uint32_t reason_crc;
	bool outbound;
	bool used;
	uint64_t logged_ms; /* loop time of its last warn line */
	unsigned repeated;  /* refusals since, logged at debug */
};

struct raftguard {
	/* What the caller passes to raft_uv_init (its impl is the guard;
	 * its data belongs to raft_uv). */
	struct raft_uv_transport transport;
	/* private */
	struct raft_uv_transport *inner;
	struct raftguard_peer_ops ops;
	char *address; /* this node's, for logs (from init) */
	raft_uv_accept_cb accept_cb;
	raft_uv_transport_close_cb close_cb;
	struct raftguard_shake *shakes; /* handshakes in progress */
	struct raftguard_outwatch *outwatches; /* dialed, in c-raft's hands */
	unsigned outwatch_handles; /* their polls, open or closing */
	unsigned hello_timeout_ms;
	bool closing;
	bool inner_open; /* inner->close not completed */
	struct raftguard_log_slot log_slots[RAFTGUARD_LOG_SLOTS];
	struct raftguard_stats stats;
	unsigned probes; /* raftguard_probe exchanges in flight */
};

/* Wrap inner, an initialised raft_uv_tcp transport (raft_uv_tcp_init) that
 * nothing else uses; &g->transport is what the caller passes to
 * raft_uv_init.  ops is copied; ops->self_id must be the id later given to
 * raft_init.  inner->data is the guard's from now on.  RS_OK or RS_EINVAL
 * (ops incomplete) with errmsg set. */
int raftguard_init(struct raftguard *g, struct raft_uv_transport *inner,
		   const struct raftguard_peer_ops *ops, char *errmsg);

/* Bound the wait for the peer's message, for connections opened from now
 * on (tests use less than the default). */
void raftguard_set_hello_timeout(struct raftguard *g, unsigned ms);

/* One HELLO exchange with peer_id at address, outside c-raft: the
 * connection is closed as soon as both sides accepted.  A node whose
 * cluster ID is zero probes the founder with it, so that it learns the ID
 * (rule 3) without waiting for c-raft to connect there: a zero follower
 * refuses its leader until then.  RS_OK (the outcome is the usual: adopted,
 * refused and logged, or failed to connect), RS_ECLOSED, RS_ENOMEM, or
 * RS_EIO when the connect could not start.  g->probes counts those in
 * flight.  Only after c-raft started the transport. */
int raftguard_probe(struct raftguard *g, uint64_t peer_id,
		    const char *address);

/* Release what raftguard_init allocated, once c-raft has closed the
 * transport (after raft_close's callback, with raft_uv_close); the caller
 * then releases inner (raft_uv_tcp_close). */
void raftguard_close(struct raftguard *g);

static inline const struct raftguard_stats *
raftguard_stats(const struct raftguard *g)
{
	return &g->stats;
}

#endif /* RS_RAFTGUARD_H */
