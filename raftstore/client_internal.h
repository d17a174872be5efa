/*
 * client_internal: the client library's shared internals (see client.h for
 * the API).  Only raftstore/client*.c include this header, and the tests
 * that look inside the client (tests/unit/test_client.c, the fuzz target).
 *
 * The library is split by concern, each file owning one part of the state
 * below and calling the others through the functions declared here:
 *
 *   client.c           the client's lifetime and the submit functions
 *   client_op.c        an op's life: dispatch, deadline, retry, finish
 *   client_conn.c      connections: connect, write frames, read and route
 *   client_endpoint.c  the endpoint list and the choice of the leader
 *   client_response.c  decoding answers into results; the refusal rule
 *   client_watch.c     watches: start, events, cancel (WATCH_CANCEL)
 *   client_sync.c      the blocking wrapper, on the async API only
 *
 * Ownership.  The client owns its connections (struct client_conn), a pool
 * of per-op timers and the list of ops waiting out a backoff.  Every live op
 * is in exactly one place: on one connection's list (queued, sent or
 * watching; a pooled connection carries watches and other ops alike) or on
 * the backoff list.  Finishing an op takes it off, returns
 * its timer and then, as the very last step, runs its callback, which may
 * free or reuse the op, submit more, or close the client.
 *
 * Connections and ops are explicit state machines (raftstore/lib/sm.h):
 * a connection moves with sm_move on its struct sm, an op with
 * client_op_set_state; both abort on a transition their table does not
 * allow (client_conn.c, client_op.c).
 */
#ifndef RS_CLIENT_INTERNAL_H
#define RS_CLIENT_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/client.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/lib/sm.h"
#include "raftstore/wire.h"

/* "255.255.255.255:65535" and "localhost:65535" fit with room to spare. */
#define CLIENT_NAME_MAX 32u

struct client_endpoint {
	char name[CLIENT_NAME_MAX]; /* as given, or as a node named it */
	struct sockaddr_in addr;
	/* fail_fast: the last connect to it failed (since any connect last
	 * worked), and why */
	bool down;
	char down_why[64];
};

struct client_oplist {
	struct rs_op *head;
	struct rs_op *tail;
	unsigned n;
};

/* Transitions: client_conn.c. */
enum client_conn_state {
	CLIENT_CONN_CONNECTING, /* uv_tcp_connect in progress */
	CLIENT_CONN_CHECKING,   /* connected; the leader STATUS is in flight */
	CLIENT_CONN_READY,      /* connected; sends (pooled: once checked) */
	CLIENT_CONN_CLOSING,    /* uv_close in progress; ops wait for its cb */
	CLIENT_CONN__COUNT
};

/* Transitions: client_op.c.  Stored in rs_op.state. */
enum client_op_state {
	CLIENT_OP_IDLE,     /* being submitted */
	CLIENT_OP_QUEUED,   /* on a connection, not written yet */
	CLIENT_OP_SENT,     /* uv_write issued; waiting for the answer */
	CLIENT_OP_WATCHING, /* a started watch receiving events */
	CLIENT_OP_BACKOFF,  /* on the backoff list, its timer running */
	CLIENT_OP_DONE,     /* final cb run (or cancelled) */
	CLIENT_OP__COUNT
};

struct client_conn {
	struct rs_client *client;
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	struct sm sm; /* enum client_conn_state; table in client_conn.c */
	unsigned endpoint;
	unsigned slot;      /* index in c->pool while pooled */
	bool pooled;        /* in c->pool, to c->cur */
	bool retired;       /* takes no new ops; closes once idle */
	bool targeted;      /* serves STATUS/MEMBERS of a named endpoint */
	uint64_t status_id; /* the leader check in flight, or 0 */
	unsigned cancels;   /* WATCH_CANCELs written, not yet answered */
	struct client_oplist ops;
	/* The same ops by request id (chained, a power of two of buckets,
	 * at least twice ops.n once grown): a frame finds its op at once,
	 * with thousands of watches on the connection. */
	struct rs_op **by_id;
	unsigned by_id_cap;
	struct rs_buf rbuf; /* received, not yet parsed */
	int fail_status;
	char fail_msg[RS_ERRMSG_SIZE + CLIENT_NAME_MAX + 8];
	struct client_conn *prev;
	struct client_conn *next;
};

/* One frame of a write.  libuv reads from the frame until the write
 * callback, so an op that moves on meanwhile hands its frame over to
 * `frame` instead of freeing it.  An op's `write` points here. */
struct client_write_part {
	struct rs_op *op;    /* NULL once the op has moved on */
	struct rs_buf frame; /* bytes libuv writes that no op owns, if any */
};

/* Frames handed to libuv in one uv_write (one writev): every op a
 * connection had queued when it was flushed, or one frame no op owns. */
struct client_write {
	uv_write_t req;
	struct client_conn *conn;
	unsigned n;
	struct client_write_part parts[];
};

struct client_timer {
	uv_timer_t timer; /* first: an op's uv_timer_t * is this struct */
	struct rs_client *client;
	struct rs_op *op; /* NULL while in the free pool */
	struct client_timer *next_free;
};

struct rs_client {
	uv_loop_t *loop;
	struct client_endpoint eps[RS_CLIENT_ENDPOINTS_MAX];
	unsigned n_eps;
	unsigned cur; /* the endpoint pooled connections go to */
	bool fail_fast; /* rs_client_options.fail_fast */
	unsigned op_timeout_ms;
	unsigned n_pool;
	bool no_leader_pref;
	bool leader_checked;  /* cur needs no (more) STATUS check */
	bool leader_checking; /* a pooled connection's STATUS is in flight */
	bool switching;       /* inside client_switch: no nested rotation */
	bool closing;
	struct client_conn **pool; /* n_pool slots, NULL when empty */
	unsigned rr;
	struct client_conn *conns; /* every connection not yet freed */
	struct client_oplist backoff;
	struct client_timer *timers_free;
	uint64_t next_id;
	uint64_t rand_state;
	unsigned n_handles; /* open libuv handles; freed at 0 once closing */
	uv_timer_t anchor;  /* closed last, so close's cb runs on the loop */
	/* Ops queued on ready connections are written when the loop is about
	 * to wait for I/O, each connection's in one uv_write: the answers to
	 * one read that start the next ops cost one system call, not one
	 * each (client_conn.c). */
	uv_prepare_t flusher;
	bool flush_armed;
	uint64_t writes;         /* uv_writes issued (for tests) */
	uint64_t frames_written; /* frames they carried */
	void (*close_cb)(void *arg);
	void *close_arg;
};

/* ---- client.c ---- */

/* One libuv handle of c's is closed; frees c once it was the last one and
 * the client is closing. */
void client_handle_gone(struct rs_client *c);

/* ---- client_op.c ---- */

void client_op_set_state(struct rs_op *op, enum client_op_state to);
void client_list_push(struct client_oplist *l, struct rs_op *op);
void client_list_remove(struct client_oplist *l, struct rs_op *op);
/* Sets op's result message (an argument may be that message itself). */
void client_op_msgf(struct rs_op *op, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A server's message as a C string; its code's name if it sent none. */
void client_msg_text(struct wire_bytes msg, int status, char *out,
		     size_t size);
/* Close the pooled timers no op holds (the client is closing; a timer an
 * op holds closes when the op finishes). */
void client_timers_close(struct rs_client *c);

/* Whether the op changes the cluster (COMMIT, MEMBER_CHANGE): once its
 * frame is written, a lost answer means its outcome is unknown
 * (RS_EUNKNOWN), never a blind resend. */
static inline bool client_op_changes_state(const struct rs_op *op)
{
	return op->type == WIRE_COMMIT || op->type == WIRE_MEMBER_CHANGE;
}

/* First half of every submit: checks and initialises op (cb not run on
 * failure).  Second half: `encoded` is the encoder's result; on success
 * the op is on its way and its deadline runs. */
int client_op_prepare(struct rs_client *c, struct rs_op *op, uint8_t type,
		      rs_op_cb cb);
int client_op_launch(struct rs_op *op, int encoded);
/* Put the op on a connection.  Fails only for memory; never finishes the
 * op (a connection that fails at once deals with it from its close cb). */
int client_op_dispatch(struct rs_op *op);
/* fail_fast: a connect to endpoint i failed (why) or one worked (NULL). */
void client_endpoint_connect_result(struct rs_client *c, unsigned i,
				    const char *why);
/* fail_fast and every endpoint's last connect failed: the message naming
 * each and its error, into out; else false. */
bool client_all_down(const struct rs_client *c, char *out, size_t size);
/* Try again after a backoff; the result message says what went wrong. */
void client_op_retry(struct rs_op *op, int status);
/* The op's connection closed under it (conn's fail_msg says why). */
void client_op_conn_lost(struct rs_op *op, struct client_conn *conn);
/* Everything but the callback: after this the op is not the client's. */
void client_op_release(struct rs_op *op);
/* Release, set the result's status, then run the callback (last). */
void client_op_finish(struct rs_op *op, int status);

/* ---- client_conn.c ---- */


/* A connection to endpoint, not connecting yet; NULL when out of memory. */
struct client_conn *client_conn_new(struct rs_client *c, unsigned endpoint);
void client_conn_connect(struct client_conn *conn);
void client_conn_close(struct client_conn *conn);
/* Close a retired connection once nothing waits on it. */
void client_conn_maybe_close(struct client_conn *conn);
/* Close a connection that went wrong; its ops are dealt with in the close
 * callback.  A failure with work on it moves the client to the next
 * endpoint; an idle connection the server dropped does not. */
void client_conn_fail(struct client_conn *conn, int status, const char *fmt,
		      ...) __attribute__((format(printf, 3, 4)));
bool client_conn_may_send(const struct client_conn *conn);
/* Write every op queued on the connection, if it may send now, in one
 * uv_write.  Queued ops are always the tail of conn->ops (an op is queued
 * only by being appended), so this costs the queued ops, not the
 * connection's watches.  Out of memory or a failed write fails conn. */
void client_conn_flush(struct client_conn *conn);
/* An op was queued on a connection that may send: flush c's connections
 * before the loop next waits for I/O. */
void client_flush_soon(struct rs_client *c);
/* The flusher's prepare handle: opened with the client, closed by
 * rs_client_close. */
void client_flusher_init(struct rs_client *c);
void client_flusher_close(struct rs_client *c);
/* Write a frame no op owns (a leader check, a watch cancel): the write
 * takes frame's bytes (frame is left empty).  0 once the write started;
 * otherwise non-zero and conn fails with a message starting with `what`. */
int client_write_owned(struct client_conn *conn, struct rs_buf *frame,
		       const char *what);

/* ---- client_endpoint.c ---- */

/* Parses "host:port,..." into c's list (RS_EINVAL naming the bad entry). */
int client_endpoints_parse(struct rs_client *c, const char *list,
			   char *errmsg);
/* "a, b, c" into out: messages about giving up say where the client
 * looked.  Returns out. */
const char *client_endpoint_list(const struct rs_client *c, char *out,
				 size_t size);
/* Move on from an endpoint that failed (only the first failure counts). */
void client_rotate(struct rs_client *c, unsigned from);
/* Ask the leader STATUS on a pooled connection that just connected. */
void client_leader_check(struct client_conn *conn);
/* The connection that asked STATUS failed without moving the client: ask
 * on another one, or pooled ops would wait for an answer never coming.
 * With none connected yet, the next to connect asks. */
void client_leader_recheck(struct rs_client *c);
/* Leader address from a STATUS answer into addr[0..size) ("" if none).
 * A node that cannot say (error status) names none.  RS_EPROTO with errmsg
 * if the answer or its document is malformed.  Exposed for the fuzz
 * target (tests/fuzz/fuzz_client.c). */
int client_status_leader(const struct wire_frame *f, char *addr, size_t size,
			 char *errmsg);
/* The answer to the leader check arrived on conn. */
void client_leader_reply(struct client_conn *conn, const struct wire_frame *f);

/* ---- client_response.c ---- */

/* A response frame for a sent op (not a watch): decode, then finish,
 * retry, or fail the connection for a malformed answer. */
void client_op_response(struct client_conn *conn, struct rs_op *op,
			const struct wire_frame *f);
/* Decode the body of an RS_OK answer to a request of type (GET, RANGE,
 * GRV, COMMIT, STATUS, MEMBERS or REGISTER; r just past the response
 * head, not failed) into res: RS_OK, RS_EPROTO (malformed, or bytes left
 * over) or RS_ENOMEM.  What res held before is replaced or kept as the
 * type says; free it with rs_result_free.  Exposed for the fuzz target
 * (tests/fuzz/fuzz_client.c). */
int client_decode_result(uint8_t type, struct wire_reader *r,
			 struct rs_result *res);
/* The server refused op with a status: finish it or retry it. */
void client_op_refused(struct client_conn *conn, struct rs_op *op,
		       int status, struct wire_bytes msg);

/* Put op on conn's list of ops (at the tail) and in its index, or take it
 * off both; client_conn_op finds one by request id (NULL if none).  The
 * index grows as it must; out of memory it stays as it is (longer chains,
 * still correct). */
void client_conn_add_op(struct client_conn *conn, struct rs_op *op);
void client_conn_remove_op(struct client_conn *conn, struct rs_op *op);
struct rs_op *client_conn_op(const struct client_conn *conn, uint64_t id);

/* ---- client_watch.c ---- */

/* A frame for a watch op: its start, an event, or its end. */
void client_watch_frame(struct client_conn *conn, struct rs_op *op,
			const struct wire_frame *f);
/* Whether a WATCH_CANCEL of c's waits for its answer on an open
 * connection (the blocking wrapper reads it before returning, so that an
 * unread answer cannot hide a connection the server closed). */
bool client_watch_cancels_pending(const struct rs_client *c);

#endif /* RS_CLIENT_INTERNAL_H */
