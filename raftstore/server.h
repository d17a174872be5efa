/*
 * server: the client listener.  Transport only: it accepts connections,
 * cuts the byte stream into frames (wire.h), hands each request to a
 * handler, and writes replies, coalescing the replies of one loop turn into
 * one write per connection.
 *
 * A frame that does not parse gets one RS_EPROTO reply naming the problem,
 * then the connection is closed; the process and the data are untouched.
 *
 * Requests outlive nothing: a handler that answers later holds a
 * server_req, which keeps its connection's memory alive (reference count)
 * even if the peer disconnects; replies to a closed connection are dropped.
 *
 * Limits (docs/protocol.md, "Limits of the client port"):
 *  - A frame must arrive whole within frame_timeout_ms of its first byte.
 *    A connection stuck in a partial frame gets one RS_ETIMEOUT reply
 *    (request id 0) and is closed.  A connection idle between frames (a
 *    watch, a pooled client) is never closed for it.
 *  - At most max_connections connections are served at once.  One over the
 *    cap gets one RS_EUNAVAILABLE reply (request id 0, "too many client
 *    connections (N)") and is closed; nothing it sends is read as a
 *    request.
 *  - A connection to be closed after a reply (any of the above, or a
 *    protocol error) is closed outright if the reply has not gone out
 *    frame_timeout_ms later: a peer that does not read cannot hold it.
 */
#ifndef RS_SERVER_H
#define RS_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/wire.h"

struct server;
struct server_conn;

/* One request in flight; owned by the handler until server_req_done. */
struct server_req {
	struct server_conn *conn;
	uint64_t id;
	uint8_t type;
	uint64_t start_ns; /* uv_hrtime() when it was reserved (metrics) */
	void *data; /* for the handler */
};

/* Handle one frame.  The frame's memory is valid only during the call: the
 * handler decodes (copying what it keeps) and either replies at once or
 * keeps the server_req (from server_req_new) for later. */
typedef void (*server_handle_fn)(void *ctx, struct server_conn *conn,
				 const struct wire_frame *f);
/* A connection went away: cancel its watches etc. */
typedef void (*server_closed_fn)(void *ctx, struct server_conn *conn);

#define SERVER_FRAME_TIMEOUT_MS_DEFAULT 10000u
#define SERVER_MAX_CONNECTIONS_DEFAULT 1024u

struct server_options {
	unsigned frame_timeout_ms; /* 0: SERVER_FRAME_TIMEOUT_MS_DEFAULT */
	unsigned max_connections;  /* 0: SERVER_MAX_CONNECTIONS_DEFAULT */
};

/* Listen on addr ("host:port", IPv4).  o may be NULL (the defaults).  If
 * the process may not open max_connections descriptors (RLIMIT_NOFILE),
 * the soft limit is raised towards the hard one; if it stays too low a
 * warning says so (event=client.fd_limit) and the server starts anyway. */
int server_start(struct server **out, uv_loop_t *loop, const char *addr,
		 const struct server_options *o, server_handle_fn handle,
		 server_closed_fn closed, void *ctx, char *errmsg);
/* Stop listening and close every connection; cb runs when all is closed.
 * Requests still held (server_req) stay valid after cb: replies to them
 * are discarded, and the server's memory is freed with the last of them
 * (server_req_done). */
void server_stop(struct server *s, void (*cb)(void *arg), void *arg);

/* Connections served now (those refused over the cap not counted). */
unsigned server_connection_count(const struct server *s);

/* Register the server's metrics in ms and keep them current from then on:
 * raftstore_client_connections (gauge),
 * raftstore_client_connections_refused_total (over the cap) and
 * raftstore_client_frame_timeouts_total.  Counts made before the call are
 * carried over.  ms must outlive the server, and the gauge must not be
 * read once server_stop was called (the node stops its HTTP endpoint
 * first).  RS_OK, or RS_EINVAL with metrics_errmsg(ms) saying why. */
int server_metrics_register(struct server *s, struct metrics *ms);

/* Reserve a request for a later reply (adds a connection reference). */
struct server_req *server_req_new(struct server_conn *conn,
				  const struct wire_frame *f);
/* Release a request (drops the reference). */
void server_req_done(struct server_req *r);

/* Reply building: begin a response frame for (conn, id, type) in the
 * connection's output buffer and return it for wire_put_*; end seals it.
 * Replies to dead connections go to a scratch buffer and are dropped. */
struct rs_buf *server_reply_begin(struct server_conn *conn, uint64_t id,
				  uint8_t type, uint16_t flags, size_t *start);
void server_reply_end(struct server_conn *conn, size_t start);
/* Shorthand: a reply with only a status and message. */
void server_reply_status(struct server_conn *conn, uint64_t id, uint8_t type,
			 int status, const char *message);

/* Replies sent since the start, and the writes (uv_write calls) that
 * carried them: replies per write shows how well they coalesce. */
void server_write_counts(const struct server *s, uint64_t *writes,
			 uint64_t *replies);

/* Close a connection after flushing what is queued (protocol errors). */
void server_conn_close(struct server_conn *conn);
bool server_conn_alive(const struct server_conn *conn);
/* Per-connection slot for the handler (watch lists). */
void **server_conn_data(struct server_conn *conn);
/* Pending output bytes, for back-pressure on watches. */
size_t server_conn_pending(const struct server_conn *conn);
/* The peer as "ip:port" for logs ("" if unknown), and its IPv4 address:
 * false if the peer is not IPv4 or could not be read. */
const char *server_conn_peer(const struct server_conn *conn);
bool server_conn_peer_ip(const struct server_conn *conn, struct in_addr *ip);

#endif /* RS_SERVER_H */
