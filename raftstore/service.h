/*
 * service: what a node does with each client request.  It sits between the
 * transport (server.h) and the transaction system (proxy.h, store.h,
 * watch.h):
 *
 *  - GET/RANGE: serializable reads are served at the node's applied version
 *    at once; linearizable reads first get a read version from the leader
 *    (proxy_grv), and at-version reads use the client's; both then wait
 *    until this node has applied that version (up to read_timeout_ms, then
 *    RS_ETIMEOUT) and read from the local store.
 *  - GRV: proxy_grv.
 *  - COMMIT: decoded, handed to the commit proxy, answered with its result.
 *  - WATCH: registered with the watch hub; events stream on the connection.
 *    A connection carries any number of watches; WATCH_CANCEL stops one of
 *    them (no final WATCH frame) and leaves the others running.
 *  - STATUS/MEMBERS: JSON produced by the node (callbacks).
 *  - MEMBER_CHANGE: handed to the node, which answers when the change is
 *    done (service_answer).
 *
 * Malformed requests get RS_EPROTO and the connection is closed; requests
 * over a limit get RS_ETOOLARGE and the connection stays open.
 *
 * Internal frames (those only nodes send: REGISTER) pass a gate first: the
 * node id they claim must be a member of this cluster, and the
 * connection's peer IP must be the IP of one of the members' Raft or
 * client addresses.  A refused frame gets RS_EINVAL with a message naming
 * why; the connection stays open.  This is no authentication (there is
 * none on the client port): it stops a misdirected client or a node of
 * another cluster on another host, not a forger on a member's host.
 * Forwarded transactions are not internal frames: a follower forwards
 * COMMIT and GRV exactly as a client sends them, with no more rights.
 */
#ifndef RS_SERVICE_H
#define RS_SERVICE_H

#include <stdint.h>
#include <uv.h>

#include "raftstore/proxy.h"
#include "raftstore/server.h"
#include "raftstore/watch.h"
#include "storage/store.h"

/* A node's registration heartbeat (WIRE_REGISTER). */
struct service_registration {
	uint64_t node_id;
	struct wire_bytes raft_addr;
	struct wire_bytes client_addr;
	uint32_t capabilities;
	uint64_t applied_version;
};

/* Decode a REGISTER request's body (docs/protocol.md): node_id u64 |
 * raft_addr bytes | client_addr bytes (each at most 255) | capabilities
 * u32 | applied_version u64, nothing after it, node_id not 0.  RS_OK with
 * *m pointing into f's body, or RS_EPROTO with errmsg.  Exposed for the
 * fuzz target (tests/fuzz/fuzz_register.c). */
int service_decode_register(const struct wire_frame *f,
			    struct service_registration *m, char *errmsg);

/* One member of this cluster, as the internal-frame gate sees it.  The
 * strings are "host:port" and need live only during the callback. */
struct service_member {
	uint64_t id;
	const char *raft_addr;
	const char *client_addr; /* "" if unknown */
};

struct service_options {
	unsigned read_timeout_ms; /* 0 = 5000 */
	/* Return malloc'ed JSON; the service frees it. */
	char *(*status_json)(void *ctx);
	char *(*members_json)(void *ctx);
	/* Registration: return malloc'ed JSON, or NULL with *status set (e.g.
	 * RS_ENOTLEADER when no director runs here). */
	char *(*registration)(void *ctx, const struct service_registration *r,
			      int *status);
	/* This cluster's members now: fill out[0..max) and return how many
	 * there are.  NULL: every internal frame is refused. */
	unsigned (*members)(void *ctx, struct service_member *out,
			    unsigned max);
	/* A member change: copy what is kept from m (it points into the
	 * frame), then answer req exactly once, now or later, with
	 * service_answer.  NULL: refused as not served here. */
	void (*member_change)(void *ctx, struct server_req *req,
			      const struct wire_member_change_req *m);
	/* A leader's TERM question (readquorum.h): this node's id and its
	 * Raft term as it stands now, or an error status with errmsg (e.g.
	 * RS_EINVAL: another cluster's ID).  NULL: refused as not served. */
	int (*term)(void *ctx, const struct wire_term_req *m,
		    uint64_t *node_id, uint64_t *term, char *errmsg);
	void *ctx;
};

struct service;

struct service *service_create(uv_loop_t *loop, struct store *store,
			       struct proxy *proxy, struct watch_hub *hub,
			       const struct service_options *o);
/* Answers waiting reads with RS_ESHUTDOWN and frees.  The server must have
 * been stopped first (its close callbacks removed the watches). */
void service_destroy(struct service *s);

/* server.h callbacks (ctx = the service). */
void service_handle(void *ctx, struct server_conn *conn,
		    const struct wire_frame *f);
void service_conn_closed(void *ctx, struct server_conn *conn);

/* The words of the gate's answer to a node id that is not a member; a node
 * whose own heartbeats get it knows it was removed. */
#define SERVICE_NOT_MEMBER_TEXT "is not a member of this cluster"

/* The internal-frame gate's rule: RS_OK if node_id is one of members[0..n)
 * and peer (IPv4) is the host of one of their addresses ("localhost"
 * counts as 127.0.0.1; a host name or a wildcard address matches nothing).
 * Otherwise RS_EINVAL with errmsg saying which half failed. */
int service_member_check(const struct service_member *members, unsigned n,
			 uint64_t node_id, const struct in_addr *peer,
			 char *errmsg);

/* Answer a request kept for later and release it: RS_OK with text (a JSON
 * document), or an error status with text as its message. */
void service_answer(struct server_req *req, int status, const char *text);

/* The fsm applied a batch / installed a snapshot. */
void service_applied(struct service *s, const struct batch *b);
void service_restored(struct service *s, uint64_t version);

struct service_stats {
	uint64_t gets, ranges, commits, grvs, watches, errors, protocol_errors;
	uint64_t watch_cancels; /* watches stopped by WATCH_CANCEL */
	uint64_t internal_refused; /* internal frames the gate refused */
	unsigned waiting_reads;
};
void service_get_stats(const struct service *s, struct service_stats *st);

/* Register raftstore_internal_frames_refused_total (internal frames the
 * gate refused) in ms and keep it current; counts made before the call are
 * carried over.  ms must outlive the service.  RS_OK, or RS_EINVAL with
 * metrics_errmsg(ms) saying why. */
int service_metrics_register(struct service *s, struct metrics *ms);

#endif /* RS_SERVICE_H */
