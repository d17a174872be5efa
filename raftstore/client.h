/*
 * client: the raftstore client library, on libuv, with a blocking wrapper.
 *
 * A client holds connections to the cluster's client endpoints.  Any node
 * accepts every request (a follower's commit proxy forwards to the leader),
 * but the client prefers the leader: on connect it asks STATUS and, when a
 * node names a leader, moves there.  Requests are pipelined by request id on
 * each connection.
 *
 * Retries: a request that fails with a retryable error (rs_error_retryable:
 * conflict is NOT retried by the library since the transaction must be
 * re-read; too old, unavailable, not leader, recovering, timed out are) or
 * whose connection fails before it was written, is retried with exponential
 * backoff (10 ms doubling to 500 ms, jittered) until op_timeout_ms has
 * passed.  A connection failure, or a node answering unavailable, not
 * leader, recovering or shutting down, first moves the client to the next
 * endpoint; other retries stay where they are.  A COMMIT whose connection
 * fails after it was written completes with RS_EUNKNOWN: it may or may not
 * have committed, and repeating it blindly could commit it twice.  Server
 * statuses are trusted: a COMMIT the server refused with a retryable status
 * is retried.  A node's RS_ESHUTDOWN is retried elsewhere for every request
 * but a COMMIT, which gets it back.
 *
 * Thread model: one loop; the async API must be called on it.  The blocking
 * API (rs_sync_*) runs a private loop per handle and must not be used from
 * inside another loop's callback.
 */
#ifndef RS_CLIENT_H
#define RS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/wire.h"

#define RS_CLIENT_ENDPOINTS_MAX 16

struct rs_client_options {
	const char *endpoints;  /* "host:port,host:port,..." (required) */
	unsigned op_timeout_ms; /* per operation, retries included; 0 = 10000 */
	unsigned connections;   /* connections to the chosen node; 0 = 1 */
	bool no_leader_pref;    /* stay on endpoints in the given order */
	/* Give up at once, with RS_EUNAVAILABLE naming each endpoint and its
	 * error, once a connect to every endpoint has failed (refused,
	 * unreachable) with none working since: for tools, where a cluster
	 * that is down should say so in milliseconds, not after the
	 * timeout.  Off: keep retrying until op_timeout_ms. */
	bool fail_fast;
};

/* One key/value from a range read; memory owned by the result (one block
 * with the array, freed by rs_result_free). */
struct rs_kv {
	uint8_t *key;
	uint32_t key_len;
	uint8_t *val;
	uint32_t val_len;
	uint64_t version;
};

struct rs_result {
	int status;          /* 0 or an rs_error code */
	char message[256];   /* server's or client's explanation when not 0 */
	uint64_t version;    /* read version (GET/RANGE/GRV) or commit version */
	bool found;          /* GET */
	uint64_t found_version;
	uint64_t node_id, term; /* TERM: the answering node and its term */
	uint8_t read_mode;   /* GET/RANGE: echo of the mode served */
	/* GET value; STATUS/MEMBERS json.  A NUL byte follows the data (not
	 * counted in len), so json can be printed as a string. */
	struct rs_buf value;
	struct rs_kv *kvs;   /* RANGE */
	size_t n_kvs;
	bool more;
	/* WATCH events: version and the mutations (a batch body) */
	struct batch event;
	/* WATCH: the server said it started (so a final RS_EUNAVAILABLE is a
	 * connection lost mid-watch: resume from the last version + 1) */
	bool watch_started;
	/* Which endpoint answered (or was last tried); points into the
	 * client, valid until it is freed.  NULL if none was reached. */
	const char *endpoint;
};

/* init never fails and allocates nothing; free releases everything a
 * result holds and leaves it initialised (safe to call twice). */
void rs_result_init(struct rs_result *r);
void rs_result_free(struct rs_result *r);

struct rs_client;
struct rs_op;
typedef void (*rs_op_cb)(struct rs_op *op);

/* Caller-owned; stays alive until cb (for WATCH: until the final cb, the one
 * with result.status != 0, or until rs_client_watch_cancel returns).  The
 * submit functions rs_result_init op->result themselves; after cb the
 * caller owns it and frees it with rs_result_free (before reusing op). */
struct rs_op {
	void *data;
	struct rs_result result;
	/* private */
	rs_op_cb cb;
	struct rs_client *client;
	struct rs_buf request; /* the encoded frame, kept for retries */
	uint8_t type;
	uint8_t state;         /* enum client_op_state (client_internal.h) */
	int target;            /* endpoint index for rs_client_info, or -1 */
	uint64_t request_id;   /* kept across retries */
	uint64_t deadline_ms;  /* loop time */
	unsigned attempt;
	bool written;          /* the whole frame reached the socket */
	struct rs_op *next;    /* on a connection's list or the backoff list */
	struct rs_op *prev;
	struct rs_op *id_next; /* in its connection's index by request id */
	uv_timer_t *backoff;   /* deadline and backoff timer */
	void *conn;            /* struct client_conn, while on one */
	void *write;           /* struct client_write in progress, or NULL */
};

/* Parses the endpoints (RS_EINVAL with errmsg, RS_ERRMSG_SIZE bytes or
 * NULL, naming the bad one; connections is at most 256) and connects
 * lazily, on the first op. */
int rs_client_create(struct rs_client **out, uv_loop_t *loop,
		     const struct rs_client_options *o, char *errmsg);
/* Fails outstanding ops with RS_ESHUTDOWN (a COMMIT already sent: with
 * RS_EUNKNOWN), ends watches the same way, closes connections and frees;
 * cb (may be NULL) runs on the loop when every handle is closed.  May be
 * called from an op callback; c must not be used after it. */
void rs_client_close(struct rs_client *c, void (*cb)(void *arg), void *arg);

/* Async operations.  A synchronous error return (RS_EINVAL, RS_ETOOLARGE,
 * RS_ENOMEM, RS_ESHUTDOWN once closing) means cb will not run.  Otherwise cb
 * runs exactly once, never from inside the submit call (WATCH: once per
 * event, the last one with a non-zero status).  The request is written when
 * the loop next runs, before it waits for I/O: every request submitted in
 * one turn of the loop leaves in one write per connection.
 *
 * Deadline: a read or GRV that is still unanswered at op_timeout_ms ends
 * with RS_ETIMEOUT, or RS_EUNAVAILABLE when the last attempt could not
 * reach a node; the message names the endpoints and the last error.  A
 * COMMIT whose frame was sent and never answered ends with RS_EUNKNOWN. */
int rs_client_get(struct rs_client *c, struct rs_op *op, const void *key,
		  size_t key_len, enum wire_read_mode mode,
		  uint64_t read_version, rs_op_cb cb);
int rs_client_range(struct rs_client *c, struct rs_op *op, const void *begin,
		    size_t begin_len, const void *end, size_t end_len,
		    uint32_t limit, enum wire_read_mode mode,
		    uint64_t read_version, rs_op_cb cb);
int rs_client_grv(struct rs_client *c, struct rs_op *op, rs_op_cb cb);
/* ranges: n read-conflict ranges; mutations is a batch (version/epoch
 * ignored).  Both are copied. */
int rs_client_commit(struct rs_client *c, struct rs_op *op,
		     uint64_t read_version, const struct wire_bytes *begins,
		     const struct wire_bytes *ends, uint32_t n_ranges,
		     const struct batch *mutations, rs_op_cb cb);
/* STATUS or MEMBERS (type) of one endpoint (index into the endpoint list;
 * retried on that endpoint only), or of whichever node answers when
 * index < 0.  The json lands in result.value. */
int rs_client_info(struct rs_client *c, struct rs_op *op, uint8_t type,
		   int endpoint_index, rs_op_cb cb);
/* A watch runs on a pooled connection beside other ops and watches (many
 * watches share one connection).  The server's "started" answer is not
 * reported; each event calls cb with status 0, result.version and
 * result.event (version and mutations; reused by the next event).  The
 * watch ends with one cb with a non-zero status: the server's (e.g.
 * RS_ECOMPACTED), RS_EUNAVAILABLE if its connection fails once started
 * (resume from the last version seen + 1), or the deadline rules above if
 * it never started. */
/* REGISTER (node -> director heartbeat); body is the request body of
 * wire.h, copied.  The reply's JSON lands in result.value. */
int rs_client_register(struct rs_client *c, struct rs_op *op,
		       const struct rs_buf *body, rs_op_cb cb);
/* MEMBER_CHANGE (rsctl members add/promote/remove): answered by the
 * leader (others say not leader, and the client moves on), with a JSON
 * document in result.value.  Like a COMMIT, an answer lost after the frame
 * was written ends with RS_EUNKNOWN. */
int rs_client_member_change(struct rs_client *c, struct rs_op *op,
			    const struct wire_member_change_req *req,
			    rs_op_cb cb);
/* TERM (leader -> member, readquorum.h): the answering node's id and
 * current Raft term land in result.node_id and result.term. */
int rs_client_term(struct rs_client *c, struct rs_op *op,
		   const struct wire_term_req *req, rs_op_cb cb);
int rs_client_watch(struct rs_client *c, struct rs_op *op, const void *begin,
		    size_t begin_len, const void *end, size_t end_len,
		    uint64_t from_version, rs_op_cb cb);
/* Ends a watch silently: no further cb, op is free when this returns (also
 * from inside its own event cb).  A watch that was sent is stopped at the
 * server with a WATCH_CANCEL on its connection, which stays open for the
 * others; one not yet written is only dropped.  A no-op on a watch that has
 * already ended. */
void rs_client_watch_cancel(struct rs_client *c, struct rs_op *op);

/* The list grows when a node names a leader that is not on it.  Names are
 * as given ("localhost:7001"); NULL for i out of range. */
unsigned rs_client_endpoint_count(const struct rs_client *c);
const char *rs_client_endpoint(const struct rs_client *c, unsigned i);

/* ---- blocking wrapper ---- */

struct rs_sync;

/* errmsg: RS_ERRMSG_SIZE bytes or NULL; names a bad endpoint.  Nothing
 * connects until the first call. */
int rs_sync_open(struct rs_sync **out, const struct rs_client_options *o,
		 char *errmsg);
/* Closes the client, runs the private loop until every handle is closed,
 * closes the loop and frees s. */
void rs_sync_close(struct rs_sync *s);
/* The client inside (for rs_client_endpoint and friends; its async calls
 * only make progress while an rs_sync_* call runs the loop). */
struct rs_client *rs_sync_client(struct rs_sync *s);

/* Each blocks until the op completes, fills *res (rs_result_init'ed by the
 * callee; caller frees with rs_result_free) and returns res->status, which
 * is also set (with a message) for a synchronous error. */
int rs_sync_get(struct rs_sync *s, const void *key, size_t key_len,
		enum wire_read_mode mode, uint64_t read_version,
		struct rs_result *res);
int rs_sync_range(struct rs_sync *s, const void *begin, size_t begin_len,
		  const void *end, size_t end_len, uint32_t limit,
		  enum wire_read_mode mode, uint64_t read_version,
		  struct rs_result *res);
int rs_sync_grv(struct rs_sync *s, struct rs_result *res);
int rs_sync_commit(struct rs_sync *s, uint64_t read_version,
		   const struct wire_bytes *begins, const struct wire_bytes *ends,
		   uint32_t n_ranges, const struct batch *mutations,
		   struct rs_result *res);
int rs_sync_info(struct rs_sync *s, uint8_t type, int endpoint_index,
		 struct rs_result *res);
int rs_sync_member_change(struct rs_sync *s,
			  const struct wire_member_change_req *req,
			  struct rs_result *res);
/* Calls fn for each event until fn returns non-zero or the watch ends;
 * returns the final status (0 if fn stopped it). */
int rs_sync_watch(struct rs_sync *s, const void *begin, size_t begin_len,
		  const void *end, size_t end_len, uint64_t from_version,
		  int (*fn)(void *ctx, const struct rs_result *ev), void *ctx);

#endif /* RS_CLIENT_H */
