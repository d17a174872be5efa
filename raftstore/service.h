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
 *  - STATUS/MEMBERS: JSON produced by the node (callbacks).
 *
 * Malformed requests get RS_EPROTO and the connection is closed; requests
 * over a limit get RS_ETOOLARGE and the connection stays open.
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

struct service_options {
	unsigned read_timeout_ms; /* 0 = 5000 */
	/* Return malloc'ed JSON; the service frees it. */
	char *(*status_json)(void *ctx);
	char *(*members_json)(void *ctx);
	/* Registration: return malloc'ed JSON, or NULL with *status set (e.g.
	 * RS_ENOTLEADER when no director runs here). */
	char *(*registration)(void *ctx, const struct service_registration *r,
			      int *status);
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

/* The fsm applied a batch / installed a snapshot. */
void service_applied(struct service *s, const struct batch *b);
void service_restored(struct service *s, uint64_t version);

struct service_stats {
	uint64_t gets, ranges, commits, grvs, watches, errors, protocol_errors;
	unsigned waiting_reads;
};
void service_get_stats(const struct service *s, struct service_stats *st);

#endif /* RS_SERVICE_H */
