/*
 * wire: the client and node-to-node protocol of raftstore (version 1).
 *
 * Everything on a client connection, and everything a follower's commit
 * proxy sends to the leader, is a frame:
 *
 *   offset 0   u32  length      bytes after this field (16 + body length);
 *                               at most WIRE_FRAME_MAX
 *   offset 4   u32  crc         CRC-32C of bytes [8, 4 + length)
 *   offset 8   u8   version     WIRE_VERSION (1)
 *   offset 9   u8   type        enum wire_type; responses set WIRE_RESPONSE
 *   offset 10  u16  flags       0 (WIRE_FLAG_MORE on watch events)
 *   offset 12  u64  request_id  chosen by the requester, echoed in replies
 *   offset 20  ...  body        per type, below
 *
 * Integers are little-endian.  Byte strings are `u32 len | bytes`.  Every
 * response body starts with `u32 status` (an rs_error code: 0 = ok) and
 * `bytes message` (empty when ok); the typed fields follow only when the
 * status is 0.
 *
 * A frame that fails any check (length, crc, version, type, or a body that
 * does not decode exactly) is a protocol error: the server answers with one
 * RS_EPROTO response naming the problem (request id 0 if unknown), then
 * closes the connection.  No data is touched.
 *
 * Request bodies:
 *   GET       mode u8 | read_version u64 | key bytes
 *   RANGE     mode u8 | read_version u64 | begin bytes | end bytes |
 *             limit u32           (end empty = to the end of the key space)
 *   GRV       (empty)             get a linearizable read version
 *   COMMIT    read_version u64 | n_ranges u32 | n_ranges x (begin bytes,
 *             end bytes) | mutations bytes (a batch body, batch.h)
 *   WATCH     begin bytes | end bytes | from_version u64
 *   WATCH_CANCEL  watch_id u64    the request id of a WATCH sent earlier on
 *             this connection: the server stops it (no event for it after
 *             this answer, and no final WATCH frame)
 *   STATUS    (empty)
 *   MEMBERS   (empty)
 *   REGISTER  node_id u64 | raft_addr bytes | client_addr bytes |
 *             capabilities u32 | applied_version u64     node->director,
 *             sent every heartbeat interval; registers and heartbeats
 *   TERM      cluster_id bytes (16) | leader_id u64 | term u64
 *             leader->member: "what is your Raft term now?", the quorum
 *             check of a linearizable read (readquorum.h); the member
 *             samples its term after the frame arrives
 * Response bodies after status and message:
 *   GET       mode u8 | read_version u64 | found u8 | found_version u64 |
 *             value bytes
 *   RANGE     mode u8 | read_version u64 | more u8 | n u32 | n x (key bytes,
 *             value bytes, version u64)
 *             (mode echoes the read mode served, so a serializable answer
 *             is marked as such)
 *   GRV       read_version u64
 *   COMMIT    commit_version u64
 *   WATCH     one response with no fields (the watch started), then events:
 *             frames of type WATCH|RESPONSE with flags WIRE_FLAG_MORE and
 *             body status | message | version u64 | mutations bytes
 *             (only the mutations inside the watched range).  A non-zero
 *             status (e.g. RS_ECOMPACTED) ends the watch.
 *   STATUS    json bytes  (the node's status object, docs/protocol.md)
 *   MEMBERS   json bytes
 *   REGISTER  json bytes  ({"epoch":E,"director":ID}; RS_ENOTLEADER when
 *             this node runs no director)
 *   WATCH_CANCEL  nothing; RS_ENOTFOUND when this connection runs no watch
 *             with that id (it ended already, or never existed)
 *   TERM      node_id u64 | term u64  (the answering node and its current
 *             Raft term; RS_EINVAL when the cluster ID is not its own)
 *
 * Type 8 is reserved and never reused: it named a FORWARD frame (a batch
 * of transactions, node->leader) that was never built.  It passes
 * wire_frame_parse, and a node answers it as a type it does not serve
 * (RS_EPROTO).
 *
 * Read modes: WIRE_READ_LINEARIZABLE (the server gets a read version
 * confirmed by the leader), WIRE_READ_SERIALIZABLE (served at the node's
 * applied version at once; the response says so by echoing the mode), and
 * WIRE_READ_AT_VERSION (at read_version, waiting until it is applied).
 */
#ifndef RS_WIRE_H
#define RS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"

#define WIRE_VERSION 1u
#define WIRE_HEADER_SIZE 20u
/* A maximal transaction (10 MiB of mutations) plus read ranges. */
#define WIRE_FRAME_MAX (12u * 1024u * 1024u)
#define WIRE_RESPONSE 0x80u
#define WIRE_FLAG_MORE 0x1u
/* Read-conflict ranges per transaction. */
#define WIRE_READ_RANGES_MAX 10000u

enum wire_type {
	WIRE_GET = 1,
	WIRE_RANGE = 2,
	WIRE_GRV = 3,
	WIRE_COMMIT = 4,
	WIRE_WATCH = 5,
	WIRE_STATUS = 6,
	WIRE_MEMBERS = 7,
	/* 8 is reserved (the unbuilt FORWARD frame): never reuse it. */
	WIRE_REGISTER = 9,
	WIRE_MEMBER_CHANGE = 10,
	WIRE_WATCH_CANCEL = 11,
	WIRE_TERM = 12,
};
#define WIRE_TYPE_LAST WIRE_TERM

enum wire_read_mode {
	WIRE_READ_LINEARIZABLE = 0,
	WIRE_READ_SERIALIZABLE = 1,
	WIRE_READ_AT_VERSION = 2,
};

/* A byte string pointing into a frame (or the caller's memory). */
struct wire_bytes {
	const uint8_t *p;
	uint32_t len;
};

struct wire_frame {
	uint8_t type; /* including WIRE_RESPONSE */
	uint16_t flags;
	uint64_t request_id;
	const uint8_t *body;
	uint32_t body_len;
	size_t total_len; /* bytes the frame occupies in the input */
};

/*
 * Find one complete frame at p[0..avail).  RS_OK fills *f; RS_ETORN means
 * more bytes are needed; RS_EPROTO (errmsg says why: too large, bad crc,
 * unknown version, type or flag bit) means the stream is unusable.  The
 * length is judged from the first 4 bytes, before waiting for the rest.
 * Never reads past avail; *f points into p.
 */
int wire_frame_parse(const uint8_t *p, size_t avail, struct wire_frame *f,
		     char *errmsg);

/* Frame building: begin writes a header placeholder into out and returns
 * its offset; end fills length and crc.  Body fields are appended between
 * them with the wire_put_* helpers.  If begin cannot allocate it leaves out
 * unchanged and returns WIRE_FRAME_NOMEM, which end answers with RS_ENOMEM.
 * end returns RS_ETOOLARGE for a frame over WIRE_FRAME_MAX and then cuts
 * out back to `start`, so out never ends in half a frame. */
#define WIRE_FRAME_NOMEM SIZE_MAX
size_t wire_frame_begin(struct rs_buf *out, uint8_t type, uint16_t flags,
			uint64_t request_id);
int wire_frame_end(struct rs_buf *out, size_t start);

int wire_put_u8(struct rs_buf *out, uint8_t v);
int wire_put_u32(struct rs_buf *out, uint32_t v);
int wire_put_u64(struct rs_buf *out, uint64_t v);
int wire_put_bytes(struct rs_buf *out, const void *p, size_t len);
/* status u32 | message bytes: the head of every response. */
int wire_put_status(struct rs_buf *out, int status, const char *message);

/* A bounds-checked reader over a body.  After any failed get, `failed` is
 * set and every later get fails too, so decoders check once at the end. */
struct wire_reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool failed;
};

void wire_reader_init(struct wire_reader *r, const uint8_t *p, size_t len);
uint8_t wire_get_u8(struct wire_reader *r);
uint32_t wire_get_u32(struct wire_reader *r);
uint64_t wire_get_u64(struct wire_reader *r);
/* Bytes of at most max_len; longer is a failure. */
struct wire_bytes wire_get_bytes(struct wire_reader *r, uint32_t max_len);
/* True if nothing failed and every byte was consumed. */
bool wire_reader_done(const struct wire_reader *r);

/* ---- typed messages ---- */

struct wire_get_req {
	uint8_t mode;
	uint64_t read_version;
	struct wire_bytes key;
};

struct wire_range_req {
	uint8_t mode;
	uint64_t read_version;
	struct wire_bytes begin;
	struct wire_bytes end; /* len 0: to the end of the key space */
	uint32_t limit;        /* 0: server default (WIRE_RANGE_LIMIT_DEFAULT) */
};
#define WIRE_RANGE_LIMIT_DEFAULT 1000u
#define WIRE_RANGE_LIMIT_MAX 10000u

struct wire_commit_req {
	uint64_t read_version;
	uint32_t n_ranges;
	const uint8_t *ranges; /* n_ranges x (begin bytes, end bytes), encoded */
	size_t ranges_len;
	struct wire_bytes mutations; /* a batch body, validated on decode */
};

struct wire_watch_req {
	struct wire_bytes begin;
	struct wire_bytes end; /* len 0: to the end of the key space */
	uint64_t from_version;
};

/* MEMBER_CHANGE: add a member (as a spare), promote a spare to voter, or
 * remove a member.  Addresses are "host:port" (at most
 * WIRE_MEMBER_ADDR_MAX bytes), given for ADD only (empty otherwise). */
enum wire_member_op {
	WIRE_MEMBER_ADD = 1,
	WIRE_MEMBER_PROMOTE = 2,
	WIRE_MEMBER_REMOVE = 3,
};
#define WIRE_MEMBER_ADDR_MAX 63u

struct wire_member_change_req {
	uint8_t op;
	uint64_t node_id;
	struct wire_bytes raft_addr;
	struct wire_bytes client_addr;
};

/* TERM: a leader asks a member for its current Raft term. */
#define WIRE_CLUSTER_ID_SIZE 16u
struct wire_term_req {
	struct wire_bytes cluster_id; /* exactly WIRE_CLUSTER_ID_SIZE bytes */
	uint64_t leader_id;           /* the asking node (> 0) */
	uint64_t term;                /* its term when it asked */
};

/* Each decoder checks the whole body (limits from batch.h: keys, values,
 * transaction size) and returns RS_OK, RS_ETOOLARGE (a limit, named in
 * errmsg) or RS_EPROTO (malformed, errmsg says which field). */
int wire_decode_get(const struct wire_frame *f, struct wire_get_req *m,
		    char *errmsg);
int wire_decode_range(const struct wire_frame *f, struct wire_range_req *m,
		      char *errmsg);
int wire_decode_commit(const struct wire_frame *f, struct wire_commit_req *m,
		       char *errmsg);
int wire_decode_watch(const struct wire_frame *f, struct wire_watch_req *m,
		      char *errmsg);
/* WATCH_CANCEL: the request id of the watch to stop (exactly 8 bytes). */
int wire_decode_watch_cancel(const struct wire_frame *f, uint64_t *watch_id,
			     char *errmsg);
/* Also checks: a known op, node_id > 0, addresses present for ADD only. */
int wire_decode_member_change(const struct wire_frame *f,
			      struct wire_member_change_req *m, char *errmsg);

/* Also checks: a 16-byte cluster ID, leader_id > 0. */
int wire_decode_term(const struct wire_frame *f, struct wire_term_req *m,
		     char *errmsg);

/* GRV, STATUS and MEMBERS requests carry no body: RS_EPROTO (errmsg says
 * how many bytes trail) if this one does. */
int wire_decode_empty(const struct wire_frame *f, char *errmsg);

/* Iterate the read-conflict ranges of a decoded commit (already checked). */
bool wire_commit_next_range(const struct wire_commit_req *m, size_t *pos,
			    struct wire_bytes *begin, struct wire_bytes *end);

/* Encoders for requests (client side).  Each appends one whole frame. */
int wire_encode_get(struct rs_buf *out, uint64_t id,
		    const struct wire_get_req *m);
int wire_encode_range(struct rs_buf *out, uint64_t id,
		      const struct wire_range_req *m);
int wire_encode_simple(struct rs_buf *out, uint64_t id, uint8_t type);
/* ranges: n pairs begin/end as wire_bytes arrays. */
int wire_encode_commit(struct rs_buf *out, uint64_t id, uint64_t read_version,
		       const struct wire_bytes *begins,
		       const struct wire_bytes *ends, uint32_t n_ranges,
		       const struct batch *mutations);
int wire_encode_watch(struct rs_buf *out, uint64_t id,
		      const struct wire_watch_req *m);
int wire_encode_member_change(struct rs_buf *out, uint64_t id,
			      const struct wire_member_change_req *m);
int wire_encode_watch_cancel(struct rs_buf *out, uint64_t id,
			     uint64_t watch_id);
int wire_encode_term(struct rs_buf *out, uint64_t id,
		     const struct wire_term_req *m);

/* A response with no typed fields: type | WIRE_RESPONSE, status and
 * message (forced empty when status is 0).  Used for every error reply,
 * including the RS_EPROTO sent before closing, and for "watch started". */
int wire_encode_status(struct rs_buf *out, uint8_t type, uint64_t id,
		       int status, const char *message);

/* "GET", "COMMIT", ... for logs; "?" for an unknown type.  Ignores the
 * WIRE_RESPONSE bit.  Never NULL. */
const char *wire_type_name(uint8_t type);

/* Response decoding: the common head.  On RS_OK, *status and message are
 * set and r is positioned at the typed fields. */
int wire_decode_response_head(const struct wire_frame *f,
			      struct wire_reader *r, int *status,
			      struct wire_bytes *message);

#endif /* RS_WIRE_H */
