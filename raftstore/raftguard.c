/*
 * raftguard: the HELLO exchange around raft_uv_tcp (see raftguard.h for the
 * rules and the format).
 *
 * Each connection being checked is a "shake".  An outbound shake lives from
 * transport->connect until c-raft's connect callback has fired and its
 * handles are closed; an inbound one from the wrapped accept callback until
 * its handles are closed.  Its timer and (on failure) its stream are closed
 * asynchronously; the shake is freed by the last close callback, and the
 * guard's own close callback fires once the inner transport is closed and
 * no shake is left, as raft_uv_transport->close requires.
 *
 * Reads go into the shake's message buffer through an alloc callback that
 * offers exactly the bytes still missing, and stop (uv_read_stop) once the
 * message is complete: whatever the peer sends after it stays in the socket
 * for c-raft.
 *
 * An accepted connection handed to c-raft becomes a "watch" (see
 * raftguard.h): c-raft reads it, through a read callback of the guard's
 * that calls c-raft's and then looks at the outcome.  The guard never
 * reads or writes such a stream itself: libuv makes a stream unwritable
 * after a read error, and a write c-raft cannot make fails a whole receive
 * (c-raft 0.15 then stops: RAFT_UNAVAILABLE).  c-raft owns the stream's
 * data pointer, so the callback finds its watch by the stream's address in
 * one list of the process (every guard runs on its loop's thread, and
 * raftstore has one loop).  c-raft closes an accepted stream inside its
 * read callback, where the watch ends, or when it closes altogether, when
 * the guard drops its watches; a stale watch (its address reused by a new
 * stream) is replaced, its stream pointer compared, never followed.
 */
#include "raftstore/raftguard.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/log.h"

static const uint8_t raftguard_magic[8] = "RSHELLO";

#define CRC_OFFSET (RAFTGUARD_MSG_SIZE - 4)
#define HEX_SIZE (2 * RAFTGUARD_CLUSTER_ID_SIZE + 1)

void raftguard_msg_encode(const struct raftguard_msg *m,
			  uint8_t out[RAFTGUARD_MSG_SIZE])
{
	assert(m->kind >= RAFTGUARD_KIND_HELLO &&
	       m->kind <= RAFTGUARD_KIND_REFUSED);
	memcpy(out, raftguard_magic, sizeof raftguard_magic);
	rs_put_u32(out + 8, RAFTGUARD_VERSION);
	rs_put_u32(out + 12, m->kind);
	memcpy(out + 16, m->cluster_id, RAFTGUARD_CLUSTER_ID_SIZE);
	rs_put_u64(out + 32, m->from_id);
	rs_put_u64(out + 40, m->to_id);
	rs_put_u32(out + CRC_OFFSET, crc32c(out, CRC_OFFSET));
}

int raftguard_msg_decode(const uint8_t in[RAFTGUARD_MSG_SIZE],
			 struct raftguard_msg *m, char *errmsg)
{
	uint32_t version, kind;

	if (memcmp(in, raftguard_magic, sizeof raftguard_magic) != 0) {
		rs_errmsg_printf(errmsg, "bad magic (not a raftstore HELLO)");
		return RS_ECORRUPT;
	}
	if (rs_get_u32(in + CRC_OFFSET) != crc32c(in, CRC_OFFSET)) {
		rs_errmsg_printf(errmsg, "bad CRC");
		return RS_ECORRUPT;
	}
	version = rs_get_u32(in + 8);
	if (version != RAFTGUARD_VERSION) {
		rs_errmsg_printf(errmsg, "HELLO version %u, this node speaks %u",
				 version, RAFTGUARD_VERSION);
		return RS_EFORMAT;
	}
	kind = rs_get_u32(in + 12);
	if (kind < RAFTGUARD_KIND_HELLO || kind > RAFTGUARD_KIND_REFUSED) {
		rs_errmsg_printf(errmsg, "unknown HELLO kind %u", kind);
		return RS_EPROTO;
	}
	m->kind = kind;
	memcpy(m->cluster_id, in + 16, RAFTGUARD_CLUSTER_ID_SIZE);
	m->from_id = rs_get_u64(in + 32);
	m->to_id = rs_get_u64(in + 40);
	return RS_OK;
}

/* ------------------------------------------------------------------ */
/* The rules                                                            */
/* ------------------------------------------------------------------ */

static bool cluster_id_is_zero(const uint8_t id[RAFTGUARD_CLUSTER_ID_SIZE])
{
	static const uint8_t zero[RAFTGUARD_CLUSTER_ID_SIZE];
	return memcmp(id, zero, sizeof zero) == 0;
}

static const char *cluster_hex(const uint8_t id[RAFTGUARD_CLUSTER_ID_SIZE],
			       char out[HEX_SIZE])
{
	bytes_hex_encode(id, RAFTGUARD_CLUSTER_ID_SIZE, out);
	out[HEX_SIZE - 1] = '\0';
	return out;
}

/* Rule 1 (after the decoder's checks) on the peer's message m, which came
 * from the node that the transport says is peer_id (the id dialed, or the
 * one in raft_uv_tcp's handshake). */
static int judge_ids(const struct raftguard_peer_ops *ops,
		     const struct raftguard_msg *m, uint64_t peer_id,
		     char *reason)
{
	if (m->to_id != ops->self_id) {
		rs_errmsg_printf(reason, "addressed to node %llu, this is "
				 "node %llu", (unsigned long long)m->to_id,
				 (unsigned long long)ops->self_id);
		return RS_EPROTO;
	}
	if (m->from_id != peer_id) {
		rs_errmsg_printf(reason, "HELLO from node %llu on a connection "
				 "of node %llu", (unsigned long long)m->from_id,
				 (unsigned long long)peer_id);
		return RS_EPROTO;
	}
	if (!ops->is_member(ops->ctx, m->from_id)) {
		rs_errmsg_printf(reason, "node %llu is not a member",
				 (unsigned long long)m->from_id);
		return RS_EPROTO;
	}
	if (m->from_id == ops->self_id) {
		/* c-raft never dials itself: a second node with this id. */
		rs_errmsg_printf(reason, "HELLO from node %llu, this node's own "
				 "id", (unsigned long long)m->from_id);
		return RS_EPROTO;
	}
	return RS_OK;
}

/* Rules 1 to 5 on m.  RS_OK to accept (after adopting m's cluster ID if
 * rule 3 says so) or an error with reason set. */
static int judge(struct raftguard *g, const struct raftguard_msg *m,
		 uint64_t peer_id, char *reason)
{
	const struct raftguard_peer_ops *ops = &g->ops;
	uint8_t self[RAFTGUARD_CLUSTER_ID_SIZE];
	char hex[HEX_SIZE];
	uint64_t founder;
	int rv;

	rv = judge_ids(ops, m, peer_id, reason);
	if (rv != RS_OK)
		return rv;
	ops->cluster_id(ops->ctx, self);
	if (cluster_id_is_zero(m->cluster_id))
		return RS_OK; /* rules 4 and 5 */
	if (!cluster_id_is_zero(self)) {
		if (memcmp(self, m->cluster_id, sizeof self) == 0)
			return RS_OK;
		rs_errmsg_printf(reason, "another cluster");
		return RS_EPROTO;
	}
	founder = ops->founder(ops->ctx);
	if (m->from_id != founder) {
		rs_errmsg_printf(reason, "cluster ID unknown here and node %llu "
				 "is not the founder (node %llu)",
				 (unsigned long long)m->from_id,
				 (unsigned long long)founder);
		return RS_EPROTO;
	}
	rv = ops->adopt(ops->ctx, m->cluster_id, reason);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(reason, "adopt the founder's cluster ID");
		return rv;
	}
	g->stats.adopted++;
	log_info("raft.cluster_adopted", "cluster=%s founder=%llu",
		 cluster_hex(m->cluster_id, hex), (unsigned long long)founder);
	return RS_OK;
}

/* ------------------------------------------------------------------ */
/* Watches: accepted connections in c-raft's hands                      */
/* ------------------------------------------------------------------ */

struct raftguard_watch {
	struct raftguard *g;
	uint64_t peer_id;
	struct uv_stream_s *stream;
	uv_read_cb craft_read_cb; /* c-raft's, which the guard's calls first */
	bool carried;             /* c-raft has read Raft bytes from it */
	struct raftguard_watch *next;
};

static struct raftguard_watch *watches; /* of every guard in the process */

static struct raftguard_watch **watch_slot(const struct uv_stream_s *stream)
{
	struct raftguard_watch **p;

	for (p = &watches; *p != NULL; p = &(*p)->next)
		if ((*p)->stream == stream)
			return p;
	return NULL;
}

/* c-raft's read callback, then the guard's look at what it read: c-raft
 * closes the stream on EOF, a read error or bad data, and then the watch
 * ends, reported if the peer ended a connection that carried Raft
 * messages (a probe, closed by the prober after its HELLO, carried none). */
static void watch_read_cb(uv_stream_t *stream, ssize_t nread,
			  const uv_buf_t *buf)
{
	struct raftguard_watch **slot = watch_slot(stream), *w;
	struct raftguard *g;
	bool peer_ended = nread == UV_EOF || nread == UV_ECONNRESET;

	assert(slot != NULL); /* only watched streams have this callback */
	w = *slot;
	w->craft_read_cb(stream, nread, buf);
	if (nread > 0)
		w->carried = true;
	if (!uv_is_closing((uv_handle_t *)stream))
		return;
	slot = watch_slot(stream); /* the list may have changed meanwhile */
	assert(slot != NULL && *slot == w);
	*slot = w->next;
	g = w->g;
	if (peer_ended && w->carried && !g->closing) {
		g->stats.peers_closed++;
		log_info("raft.peer_closed", "peer_id=%llu conn=in error=%s",
			 (unsigned long long)w->peer_id, uv_err_name((int)nread));
		if (g->ops.peer_closed != NULL)
			g->ops.peer_closed(g->ops.ctx, w->peer_id);
	}
	free(w);
}

/* Watch stream, which c-raft accepted from peer_id and reads.  Without
 * memory, or if c-raft did not take it, it is only not watched. */
static void watch_start(struct raftguard *g, uint64_t peer_id,
			struct uv_stream_s *stream)
{
	struct raftguard_watch **slot, *w;

	if (uv_is_closing((uv_handle_t *)stream) || stream->read_cb == NULL)
		return;
	/* a watch on this address is of a stream c-raft closed and freed */
	while ((slot = watch_slot(stream)) != NULL) {
		w = *slot;
		*slot = w->next;
		free(w);
	}
	w = malloc(sizeof *w);
	if (w == NULL) {
		log_debug("raft.peer_not_watched", "peer_id=%llu",
			  (unsigned long long)peer_id);
		return;
	}
	*w = (struct raftguard_watch){.g = g, .peer_id = peer_id,
				      .stream = stream,
				      .craft_read_cb = stream->read_cb,
				      .next = watches};
	watches = w;
	stream->read_cb = watch_read_cb;
}

static void watch_drop_all(const struct raftguard *g)
{
	struct raftguard_watch **p = &watches, *w;

	while ((w = *p) != NULL) {
		if (w->g == g) {
			*p = w->next;
			free(w);
		} else {
			p = &w->next;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Outbound watches: connections this node dialed, in c-raft's hands    */
/* ------------------------------------------------------------------ */

/* c-raft only writes to a connection it dialed and learns that the peer
 * ended it only when a write fails; the first write after the peer's FIN
 * still succeeds (the peer's kernel answers it with a reset), so that
 * message is lost without an error (c-raft guard 16).  The guard watches
 * such a connection through a duplicate of its descriptor (never through
 * c-raft's libuv stream: a read error there would make the stream
 * unwritable, and c-raft 0.15 would then fail every send to that peer
 * without ever reconnecting).  When the peer ends it, the guard shuts
 * down the sending side, so c-raft's next write fails at once, c-raft
 * reconnects, and raftresend sends the message again. */
static void guard_maybe_closed(struct raftguard *g);

struct raftguard_outwatch {
	struct raftguard *g;
	uint64_t peer_id;
	int fd; /* the duplicate; -1 once closed */
	uv_poll_t poll;
	struct raftguard_outwatch *next;
};

static void outwatch_closed_cb(uv_handle_t *h)
{
	struct raftguard_outwatch *w = h->data;
	struct raftguard *g = w->g;

	assert(g->outwatch_handles > 0);
	g->outwatch_handles--;
	free(w);
	guard_maybe_closed(g);
}

/* Unlink w, stop watching and close the duplicate (c-raft's descriptor
 * keeps the connection open, or, if it closed its own already, this ends
 * the connection). */
static void outwatch_end(struct raftguard_outwatch *w)
{
	struct raftguard_outwatch **p;

	for (p = &w->g->outwatches; *p != w; p = &(*p)->next)
		assert(*p != NULL);
	*p = w->next;
	uv_close((uv_handle_t *)&w->poll, outwatch_closed_cb);
	close(w->fd); /* the poll stopped in uv_close */
	w->fd = -1;
}

static void outwatch_cb(uv_poll_t *poll, int status, int events)
{
	struct raftguard_outwatch *w = poll->data;
	char sink[256];
	const char *how = "EOF";
	ssize_t n;

	(void)events;
	if (status < 0) {
		/* libuv says UV_EBADF for POLLERR: the socket's own error
		 * (a reset, mostly) tells more. */
		int err = 0;
		socklen_t len = sizeof err;

		how = uv_err_name(status);
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
		    err != 0)
			how = uv_err_name(uv_translate_sys_error(err));
	} else {
		/* c-raft never reads what a peer sends here: drop it, a
		 * bounded amount per wake-up (the poll fires again). */
		for (unsigned i = 0;; i++) {
			n = recv(w->fd, sink, sizeof sink, MSG_DONTWAIT);
			if (n > 0 && i < 16)
				continue;
			if (n > 0)
				return;
			if (n == 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			how = uv_err_name(uv_translate_sys_error(errno));
			break;
		}
	}
	/* The peer ended it (or it broke): c-raft's next write must fail
	 * rather than vanish. */
	(void)shutdown(w->fd, SHUT_WR);
	w->g->stats.outbound_ended++;
	log_info("raft.peer_closed", "peer_id=%llu conn=out error=%s "
		 "effect=\"the next message reconnects and is resent\"",
		 (unsigned long long)w->peer_id, how);
	outwatch_end(w);
}

/* Watch stream, which this node dialed to peer_id and c-raft now owns.
 * c-raft keeps one connection per peer, so an older watch of the same
 * peer is of a connection c-raft closed: it ends here.  Without memory or
 * a descriptor the connection is only not watched. */
static void outwatch_start(struct raftguard *g, uint64_t peer_id,
			   struct uv_stream_s *stream)
{
	struct raftguard_outwatch *w, *next;
	uv_os_fd_t fd;
	int rv;

	for (w = g->outwatches; w != NULL; w = next) {
		next = w->next;
		if (w->peer_id == peer_id)
			outwatch_end(w);
	}
	if (uv_is_closing((uv_handle_t *)stream) ||
	    uv_fileno((uv_handle_t *)stream, &fd) != 0)
		return;
	w = malloc(sizeof *w);
	if (w == NULL)
		goto fail;
	*w = (struct raftguard_outwatch){.g = g, .peer_id = peer_id};
	w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (w->fd < 0) {
		free(w);
		goto fail;
	}
	rv = uv_poll_init_socket(stream->loop, &w->poll, w->fd);
	if (rv == 0) {
		w->poll.data = w;
		rv = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT,
				   outwatch_cb);
		g->outwatch_handles++;
		w->next = g->outwatches;
		g->outwatches = w;
		if (rv != 0)
			outwatch_end(w);
	} else {
		close(w->fd);
		free(w);
	}
	if (rv == 0)
		return;
fail:
	log_debug("raft.peer_not_watched", "peer_id=%llu conn=out",
		  (unsigned long long)peer_id);
}

static void outwatch_end_all(struct raftguard *g)
{
	while (g->outwatches != NULL)
		outwatch_end(g->outwatches);
}

/* ------------------------------------------------------------------ */
/* Shakes                                                               */
/* ------------------------------------------------------------------ */

enum shake_state {
	SHAKE_CONNECTING, /* outbound, inner->connect in progress */
	SHAKE_EXCHANGING, /* stream and timer live, messages in flight */
	SHAKE_CLOSING,    /* waiting for handles to close */
};

struct raftguard_shake {
	struct raftguard *g;
	struct raftguard_shake *prev, *next;
	enum shake_state state;
	bool outbound;
	uint64_t peer_id;
	char *peer_address; /* as dialed, or as c-raft's handshake claims */
	char remote[64];    /* the socket's peer, "" until connected */
	struct uv_stream_s *stream;
	uv_timer_t timer;
	uv_write_t write;
	bool write_pending;
	bool read_done;
	bool refusing;	   /* inbound: writing the refused reply */
	unsigned closing_handles;
	int status;	   /* outbound: for c-raft's connect callback */
	size_t nread;
	uint8_t out[RAFTGUARD_MSG_SIZE];
	uint8_t in[RAFTGUARD_MSG_SIZE];
	struct raft_uv_connect inner_req;  /* outbound */
	struct raft_uv_connect *req;	   /* outbound: c-raft's, or probe_req */
	struct raft_uv_connect probe_req;  /* a probe's own (raftguard_probe) */
};

/* Close callback of a stream no shake holds. */
static void stream_free_cb(uv_handle_t *h)
{
	raft_free(h);
}

static void guard_maybe_closed(struct raftguard *g)
{
	if (g->closing && !g->inner_open && g->shakes == NULL &&
	    g->outwatch_handles == 0 && g->close_cb != NULL) {
		raft_uv_transport_close_cb cb = g->close_cb;
		g->close_cb = NULL;
		cb(&g->transport);
	}
}

static struct raftguard_shake *shake_new(struct raftguard *g, bool outbound,
					 uint64_t peer_id, const char *address)
{
	struct raftguard_shake *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->peer_address = strdup(address);
	if (s->peer_address == NULL) {
		free(s);
		return NULL;
	}
	s->g = g;
	s->outbound = outbound;
	s->peer_id = peer_id;
	s->state = outbound ? SHAKE_CONNECTING : SHAKE_EXCHANGING;
	s->next = g->shakes;
	if (g->shakes != NULL)
		g->shakes->prev = s;
	g->shakes = s;
	return s;
}

/* The end of a shake: c-raft hears of a failed outbound one now (its
 * request stays valid until then), then the memory goes. */
static void shake_free(struct raftguard_shake *s)
{
	struct raftguard *g = s->g;

	assert(s->closing_handles == 0);
	if (s->outbound && s->status != 0)
		s->req->cb(s->req, NULL, s->status);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		g->shakes = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s->peer_address);
	free(s);
	guard_maybe_closed(g);
}

static void shake_handle_closed(uv_handle_t *h)
{
	struct raftguard_shake *s = h->data;

	assert(s->state == SHAKE_CLOSING && s->closing_handles > 0);
	if (h == (uv_handle_t *)s->stream) {
		raft_free(s->stream); /* raft_uv_tcp allocated it */
		s->stream = NULL;
	}
	if (--s->closing_handles == 0)
		shake_free(s);
}

/* Close the timer and, unless c-raft now owns it, the stream. */
static void shake_close(struct raftguard_shake *s, bool close_stream)
{
	assert(s->state == SHAKE_EXCHANGING);
	s->state = SHAKE_CLOSING;
	s->closing_handles = 1;
	uv_close((uv_handle_t *)&s->timer, shake_handle_closed);
	if (close_stream) {
		s->closing_handles++;
		uv_read_stop(s->stream);
		uv_close((uv_handle_t *)s->stream, shake_handle_closed);
	}
}

/* The log level of a refusal: warn for the first of its kind in
 * RAFTGUARD_LOG_INTERVAL_MS (*repeated then says how many were
 * logged at debug since the last warn), debug for the others. */
static enum log_level refusal_level(struct raftguard_shake *s,
				    const char *reason, unsigned *repeated)
{
	struct raftguard_log_slot *slot, *oldest = NULL;
	uint64_t now_ms = uv_now(s->stream->loop);
	uint32_t crc = crc32c(reason, strlen(reason));

	for (unsigned i = 0; i < RAFTGUARD_LOG_SLOTS; i++) {
		slot = &s->g->log_slots[i];
		if (slot->used && slot->peer_id == s->peer_id &&
		    slot->outbound == s->outbound && slot->reason_crc == crc)
			break;
		if (oldest == NULL || !slot->used ||
		    (oldest->used && slot->logged_ms < oldest->logged_ms))
			oldest = slot;
		slot = NULL;
	}
	if (slot != NULL && now_ms - slot->logged_ms < RAFTGUARD_LOG_INTERVAL_MS) {
		slot->repeated++;
		return LOG_DEBUG;
	}
	if (slot == NULL) {
		slot = oldest;
		slot->repeated = 0;
	}
	*repeated = slot->repeated;
	*slot = (struct raftguard_log_slot){.peer_id = s->peer_id,
					    .reason_crc = crc,
					    .outbound = s->outbound,
					    .used = true,
					    .logged_ms = now_ms};
	return LOG_WARN;
}

static void log_refusal(struct raftguard_shake *s,
			const struct raftguard_msg *m, const char *reason)
{
	struct raftguard *g = s->g;
	uint8_t self[RAFTGUARD_CLUSTER_ID_SIZE];
	char self_hex[HEX_SIZE], peer_hex[HEX_SIZE] = "", quoted[RS_ERRMSG_SIZE + 16];
	unsigned repeated = 0;
	enum log_level level;

	assert(s->stream != NULL);
	g->ops.cluster_id(g->ops.ctx, self);
	if (m != NULL)
		cluster_hex(m->cluster_id, peer_hex);
	g->stats.refused++;
	rs_errmsg_printf(g->stats.last_refusal, "%s %s (node %llu, %s): %s",
			 s->outbound ? "to" : "from", s->peer_address,
			 (unsigned long long)s->peer_id, s->remote, reason);
	level = refusal_level(s, reason, &repeated);
	log_event(level, "raft.peer_refused", "peer=%s remote=%s peer_id=%llu "
		  "conn=%s peer_cluster=%s cluster=%s reason=%s repeated=%u",
		  s->peer_address, s->remote, (unsigned long long)s->peer_id,
		  s->outbound ? "out" : "in", peer_hex,
		  cluster_hex(self, self_hex),
		  log_quote(quoted, sizeof quoted, reason), repeated);
}

/* A failed shake: logged, counted, closed; c-raft hears RAFT_NOCONNECTION
 * for an outbound one once its handles are closed. */
static void shake_refuse(struct raftguard_shake *s,
			 const struct raftguard_msg *m, const char *reason)
{
	log_refusal(s, m, reason);
	s->status = RAFT_NOCONNECTION;
	shake_close(s, true);
}

static void shake_timer_cb(uv_timer_t *t)
{
	struct raftguard_shake *s = t->data;
	char reason[RS_ERRMSG_SIZE];

	assert(s->state == SHAKE_EXCHANGING);
	if (s->refusing) { /* already counted; the peer does not read */
		shake_close(s, true);
		return;
	}
	rs_errmsg_printf(reason, "no %s within %u ms (%zu of %d bytes read)",
			 s->outbound ? "HELLO reply" : "HELLO",
			 s->g->hello_timeout_ms, s->nread, RAFTGUARD_MSG_SIZE);
	shake_refuse(s, NULL, reason);
}

static void shake_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct raftguard_shake *s = h->data;

	(void)suggested;
	assert(s->nread < RAFTGUARD_MSG_SIZE);
	/* Exactly what is missing: not one c-raft byte more. */
	buf->base = (char *)s->in + s->nread;
	buf->len = RAFTGUARD_MSG_SIZE - s->nread;
}

static void shake_write_cb(uv_write_t *w, int status);
static void shake_read_cb(uv_stream_t *stream, ssize_t nread,
			  const uv_buf_t *buf);

static int shake_write(struct raftguard_shake *s, uint32_t kind)
{
	struct raftguard_msg m = {.kind = kind,
				  .from_id = s->g->ops.self_id,
				  .to_id = s->peer_id};
	uv_buf_t buf = uv_buf_init((char *)s->out, sizeof s->out);
	int rv;

	assert(!s->write_pending);
	s->g->ops.cluster_id(s->g->ops.ctx, m.cluster_id);
	raftguard_msg_encode(&m, s->out);
	s->write.data = s;
	rv = uv_write(&s->write, s->stream, &buf, 1, shake_write_cb);
	if (rv == 0)
		s->write_pending = true;
	return rv;
}

/* "IP:port" of the stream's peer into out ("?" if unknown): c-raft's
 * handshake gives only the address the peer claims. */
static void remote_address(struct uv_stream_s *stream, char *out, size_t size)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	int len = sizeof ss;
	char ip[INET_ADDRSTRLEN];

	snprintf(out, size, "?");
	if (stream->type != UV_TCP ||
	    uv_tcp_getpeername((uv_tcp_t *)stream, (struct sockaddr *)&ss,
			       &len) != 0 ||
	    ss.ss_family != AF_INET || uv_ip4_name(in4, ip, sizeof ip) != 0)
		return;
	snprintf(out, size, "%s:%u", ip, (unsigned)ntohs(in4->sin_port));
}

/* Start the exchange on a connected stream (either direction). */
static int shake_start(struct raftguard_shake *s, struct uv_stream_s *stream)
{
	int rv;

	assert(s->state == SHAKE_EXCHANGING);
	remote_address(stream, s->remote, sizeof s->remote);
	s->stream = stream;
	stream->data = s;
	s->timer.data = s;
	rv = uv_timer_init(stream->loop, &s->timer);
	assert(rv == 0);
	rv = uv_timer_start(&s->timer, shake_timer_cb, s->g->hello_timeout_ms, 0);
	assert(rv == 0);
	if (s->outbound) {
		rv = shake_write(s, RAFTGUARD_KIND_HELLO);
		if (rv != 0)
			return rv;
	}
	return uv_read_start(stream, shake_alloc_cb, shake_read_cb);
}

/* raft_uv_tcp 0.15 leaves Nagle's algorithm on.  A Raft connection carries
 * messages one way only (each node sends on its own outbound connection,
 * and replies come back on the peer's), so the receiver's kernel never has
 * data to carry an ACK and delays it up to 40 ms, while Nagle holds the
 * sender's next small message (an AppendEntries result) until that ACK:
 * with one follower left, every such hold stalled every commit for ~40 ms
 * (issue 13's follower benchmark).  Raft messages go out at once. */
static void raftguard_nodelay(struct uv_stream_s *stream, uint64_t peer_id,
			      bool outbound)
{
	int rv;

	if (stream->type != UV_TCP)
		return;
	rv = uv_tcp_nodelay((uv_tcp_t *)stream, 1);
	if (rv != 0)
		log_warn("raft.nodelay_failed", "peer_id=%llu conn=%s error=\"%s\"",
			 (unsigned long long)peer_id, outbound ? "out" : "in",
			 uv_strerror(rv));
}

/* Both sides said yes (outbound: our HELLO written, the ok reply read and
 * judged; inbound: the ok reply written): c-raft gets the stream. */
static void shake_hand_over(struct raftguard_shake *s)
{
	struct raftguard *g = s->g;
	struct uv_stream_s *stream = s->stream;

	assert(!s->write_pending && s->read_done);
	g->stats.accepted++;
	log_debug("raft.peer_accepted", "peer=%s peer_id=%llu conn=%s",
		  s->peer_address, (unsigned long long)s->peer_id,
		  s->outbound ? "out" : "in");
	stream->data = NULL;
	shake_close(s, false);
	s->stream = NULL;
	raftguard_nodelay(stream, s->peer_id, s->outbound);
	if (s->outbound) {
		bool craft = s->req != &s->probe_req;

		s->req->cb(s->req, stream, 0);
		if (craft && !g->closing)
			outwatch_start(g, s->peer_id, stream);
	} else {
		g->accept_cb(&g->transport, s->peer_id, s->peer_address, stream);
		watch_start(g, s->peer_id, stream);
	}
}

static void shake_write_cb(uv_write_t *w, int status)
{
	struct raftguard_shake *s = w->data;
	char reason[RS_ERRMSG_SIZE];

	assert(s->write_pending);
	s->write_pending = false;
	if (s->state != SHAKE_EXCHANGING)
		return; /* closed under the write (timeout, guard closing) */
	if (s->refusing) {
		s->status = RAFT_NOCONNECTION;
		shake_close(s, true);
		return;
	}
	if (status != 0) {
		rs_errmsg_printf(reason, "write %s: %s",
				 s->outbound ? "HELLO" : "HELLO reply",
				 uv_strerror(status));
		shake_refuse(s, NULL, reason);
		return;
	}
	if (s->read_done)
		shake_hand_over(s);
}

/* Refuse an inbound peer: the refused reply (with this node's identity)
 * first, so the connector can log why; shake_write_cb then closes. */
static void inbound_refuse(struct raftguard_shake *s,
			   const struct raftguard_msg *m, const char *reason)
{
	log_refusal(s, m, reason);
	s->refusing = true;
	if (shake_write(s, RAFTGUARD_KIND_REFUSED) != 0) {
		s->status = RAFT_NOCONNECTION;
		shake_close(s, true);
	}
}

static void inbound_judge(struct raftguard_shake *s,
			  const struct raftguard_msg *m)
{
	char reason[RS_ERRMSG_SIZE];
	int rv;

	if (m->kind != RAFTGUARD_KIND_HELLO) {
		rs_errmsg_printf(reason, "expected a HELLO, got kind %u", m->kind);
		inbound_refuse(s, m, reason);
		return;
	}
	if (judge(s->g, m, s->peer_id, reason) != RS_OK) {
		inbound_refuse(s, m, reason);
		return;
	}
	rv = shake_write(s, RAFTGUARD_KIND_REPLY_OK);
	if (rv != 0) { /* else shake_write_cb hands the stream over */
		rs_errmsg_printf(reason, "write HELLO reply: %s", uv_strerror(rv));
		shake_refuse(s, m, reason);
	}
}

static void outbound_judge(struct raftguard_shake *s,
			   const struct raftguard_msg *m)
{
	char reason[RS_ERRMSG_SIZE];

	if (m->kind == RAFTGUARD_KIND_REFUSED) {
		shake_refuse(s, m, "refused by the peer (see its log)");
		return;
	}
	if (m->kind != RAFTGUARD_KIND_REPLY_OK) {
		rs_errmsg_printf(reason, "expected a HELLO reply, got kind %u",
				 m->kind);
		shake_refuse(s, m, reason);
		return;
	}
	if (judge(s->g, m, s->peer_id, reason) != RS_OK) {
		shake_refuse(s, m, reason);
		return;
	}
	if (!s->write_pending)
		shake_hand_over(s);
}

static void shake_read_cb(uv_stream_t *stream, ssize_t nread,
			  const uv_buf_t *buf)
{
	struct raftguard_shake *s = stream->data;
	struct raftguard_msg m;
	char reason[RS_ERRMSG_SIZE];

	(void)buf;
	assert(s->state == SHAKE_EXCHANGING);
	if (nread == 0)
		return;
	if (nread < 0) {
		rs_errmsg_printf(reason, "read %s: %s (%zu of %d bytes read)",
				 s->outbound ? "HELLO reply" : "HELLO",
				 uv_strerror((int)nread), s->nread,
				 RAFTGUARD_MSG_SIZE);
		shake_refuse(s, NULL, reason);
		return;
	}
	assert((size_t)nread <= RAFTGUARD_MSG_SIZE - s->nread);
	s->nread += (size_t)nread;
	if (s->nread < RAFTGUARD_MSG_SIZE)
		return;
	uv_read_stop(stream);
	s->read_done = true;
	if (raftguard_msg_decode(s->in, &m, reason) != RS_OK) {
		rs_errmsg_wrapf(reason, "decode %s",
				s->outbound ? "HELLO reply" : "HELLO");
		if (s->outbound)
			shake_refuse(s, NULL, reason);
		else
			inbound_refuse(s, NULL, reason);
		return;
	}
	if (s->outbound)
		outbound_judge(s, &m);
	else
		inbound_judge(s, &m);
}

/* ------------------------------------------------------------------ */
/* The transport                                                        */
/* ------------------------------------------------------------------ */

static void inner_connect_cb(struct raft_uv_connect *inner_req,
			     struct uv_stream_s *stream, int status)
{
	struct raftguard_shake *s = inner_req->data;
	char reason[RS_ERRMSG_SIZE];
	int rv;

	assert(s->state == SHAKE_CONNECTING);
	if (status == 0 && s->g->closing) {
		/* Not expected of raft_uv_tcp, but the stream is ours. */
		uv_close((uv_handle_t *)stream, stream_free_cb);
		status = RAFT_CANCELED;
	}
	if (status != 0) {
		s->status = status;
		shake_free(s);
		return;
	}
	s->state = SHAKE_EXCHANGING;
	rv = shake_start(s, stream);
	if (rv != 0) {
		rs_errmsg_printf(reason, "start HELLO: %s", uv_strerror(rv));
		shake_refuse(s, NULL, reason);
	}
}

static int guard_connect(struct raft_uv_transport *t,
			 struct raft_uv_connect *req, raft_id id,
			 const char *address, raft_uv_connect_cb cb)
{
	struct raftguard *g = t->impl;
	struct raftguard_shake *s;
	int rv;

	assert(!g->closing);
	s = shake_new(g, true, id, address);
	if (s == NULL) {
		snprintf(t->errmsg, sizeof t->errmsg, "out of memory");
		return RAFT_NOMEM;
	}
	s->req = req;
	req->cb = cb;
	s->inner_req.data = s;
	rv = g->inner->connect(g->inner, &s->inner_req, id, address,
			       inner_connect_cb);
	if (rv != 0) {
		snprintf(t->errmsg, sizeof t->errmsg, "%s", g->inner->errmsg);
		s->status = 0; /* c-raft hears rv, not a callback */
		shake_free(s);
	}
	return rv;
}

static void inner_accept_cb(struct raft_uv_transport *inner, raft_id id,
			    const char *address, struct uv_stream_s *stream)
{
	struct raftguard *g = inner->data;
	struct raftguard_shake *s;
	char reason[RS_ERRMSG_SIZE];
	int rv;

	assert(!g->closing);
	s = shake_new(g, false, id, address);
	if (s == NULL) {
		log_error("raft.peer_refused", "peer=%s peer_id=%llu "
			  "reason=\"out of memory\"", address,
			  (unsigned long long)id);
		uv_close((uv_handle_t *)stream, stream_free_cb);
		return;
	}
	rv = shake_start(s, stream);
	if (rv != 0) {
		rs_errmsg_printf(reason, "start reading HELLO: %s",
				 uv_strerror(rv));
		shake_refuse(s, NULL, reason);
	}
}

static int guard_init(struct raft_uv_transport *t, raft_id id,
		      const char *address)
{
	struct raftguard *g = t->impl;
	int rv;

	assert(g->address == NULL);
	if (id != g->ops.self_id) {
		snprintf(t->errmsg, sizeof t->errmsg, "raft id %llu but the "
			 "cluster guard was set up for node %llu",
			 (unsigned long long)id,
			 (unsigned long long)g->ops.self_id);
		return RAFT_INVALID;
	}
	g->address = strdup(address);
	if (g->address == NULL)
		return RAFT_NOMEM;
	rv = g->inner->init(g->inner, id, address);
	if (rv != 0) {
		snprintf(t->errmsg, sizeof t->errmsg, "%s", g->inner->errmsg);
		return rv;
	}
	g->inner_open = true;
	return 0;
}

static int guard_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct raftguard *g = t->impl;
	int rv;

	g->accept_cb = cb;
	rv = g->inner->listen(g->inner, inner_accept_cb);
	if (rv != 0)
		snprintf(t->errmsg, sizeof t->errmsg, "%s", g->inner->errmsg);
	return rv;
}

static void inner_closed_cb(struct raft_uv_transport *inner)
{
	struct raftguard *g = inner->data;

	assert(g->closing && g->inner_open);
	g->inner_open = false;
	guard_maybe_closed(g);
}

/* The end of a probe: a connection both sides accepted is closed at once
 * (the peer's c-raft sees an inbound stream end, which it expects). */
static void probe_done_cb(struct raft_uv_connect *req,
			  struct uv_stream_s *stream, int status)
{
	struct raftguard *g = req->data;

	(void)status;
	assert(g->probes > 0);
	g->probes--;
	if (stream != NULL)
		uv_close((uv_handle_t *)stream, stream_free_cb);
}

int raftguard_probe(struct raftguard *g, uint64_t peer_id,
		    const char *address)
{
	struct raftguard_shake *s;
	int rv;

	if (g->closing)
		return RS_ECLOSED;
	s = shake_new(g, true, peer_id, address);
	if (s == NULL)
		return RS_ENOMEM;
	s->probe_req.data = g;
	s->probe_req.cb = probe_done_cb;
	s->req = &s->probe_req;
	s->inner_req.data = s;
	g->probes++;
	rv = g->inner->connect(g->inner, &s->inner_req, peer_id, address,
			       inner_connect_cb);
	if (rv != 0) {
		g->probes--;
		s->status = 0; /* no callback: the caller hears rv */
		shake_free(s);
		return RS_EIO;
	}
	return RS_OK;
}

static void guard_close(struct raft_uv_transport *t,
			raft_uv_transport_close_cb cb)
{
	struct raftguard *g = t->impl;
	struct raftguard_shake *s, *next;

	assert(!g->closing);
	g->closing = true;
	g->close_cb = cb;
	/* c-raft closed its streams already (raft_uv closes its clients
	 * first): the duplicates go now, so that the peers see the end. */
	outwatch_end_all(g);
	/* Outbound shakes still connecting hear RAFT_CANCELED from inner;
	 * the others are closed here and tell c-raft so themselves. */
	for (s = g->shakes; s != NULL; s = next) {
		next = s->next;
		if (s->state == SHAKE_EXCHANGING) {
			s->status = RAFT_CANCELED;
			shake_close(s, true);
		}
	}
	if (g->inner_open)
		g->inner->close(g->inner, inner_closed_cb);
	else
		guard_maybe_closed(g);
}

int raftguard_init(struct raftguard *g, struct raft_uv_transport *inner,
		   const struct raftguard_peer_ops *ops, char *errmsg)
{
	if (ops->self_id == 0 || ops->is_member == NULL ||
	    ops->founder == NULL || ops->cluster_id == NULL ||
	    ops->adopt == NULL) {
		rs_errmsg_printf(errmsg, "cluster guard: node id and every "
				 "peer callback are required");
		return RS_EINVAL;
	}
	memset(g, 0, sizeof *g); /* transport.data is raft_uv_init's to set */
	g->transport.impl = g;
	g->transport.init = guard_init;
	g->transport.listen = guard_listen;
	g->transport.connect = guard_connect;
	g->transport.close = guard_close;
	g->inner = inner;
	g->ops = *ops;
	g->hello_timeout_ms = RAFTGUARD_HELLO_TIMEOUT_MS;
	inner->data = g;
	return RS_OK;
}

void raftguard_set_hello_timeout(struct raftguard *g, unsigned ms)
{
	assert(ms > 0);
	g->hello_timeout_ms = ms;
}

void raftguard_close(struct raftguard *g)
{
	assert(g->shakes == NULL && !g->inner_open &&
	       g->outwatches == NULL && g->outwatch_handles == 0);
	watch_drop_all(g);
	free(g->address);
	g->address = NULL;
}
