/* service: see service.h. */
#include "raftstore/service.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"

#define SERVICE_SWEEP_MS 100u
/* A range answer stops (with more = 1) past this many bytes. */
#define SERVICE_RANGE_BYTES_MAX (8u * 1024u * 1024u)
/* A watcher whose connection has this much unsent output is ended. */
#define SERVICE_WATCH_BACKLOG_MAX (256u * 1024u * 1024u)
/* Members the internal-frame gate looks at (more than c-raft clusters have). */
#define SERVICE_MEMBERS_MAX 64u
/* Refused internal frames are logged at most this often (a node of another
 * cluster heartbeats every few tens of milliseconds); each is counted. */
#define SERVICE_REFUSED_LOG_MS 1000u

struct service {
	uv_loop_t *loop;
	struct store *store;
	struct proxy *proxy;
	struct watch_hub *hub;
	struct service_options o;
	struct svc_read *waiting; /* sorted by version */
	uv_timer_t sweep;
	struct service_stats st;
	uint64_t refused_logged_ms; /* last refusal logged */
	uint64_t refused_unlogged;  /* refusals since, not logged */
	struct metric *m_internal_refused; /* NULL until registered */
	/* requests by op and result, and their latency; NULL until
	 * registered (the counters: until first used) */
	struct metrics *metrics;
	struct metric *m_requests[WIRE_TYPE_LAST + 1][RS__ERROR_COUNT];
	struct metric *m_latency[WIRE_TYPE_LAST + 1];
	uint64_t handle_ns; /* when the frame being handled arrived */
	unsigned active_watches;
};

struct svc_read {
	struct service *svc;
	struct server_req *req;
	uint8_t mode;
	uint64_t version;
	uint64_t deadline_ms;
	struct rs_buf key; /* GET key, or RANGE begin */
	struct rs_buf end; /* RANGE end (empty: unbounded) */
	uint32_t limit;
	struct proxy_grv grv;
	struct svc_read *next;
};

struct svc_commit {
	struct server_req *req;
	struct proxy_txn txn;
};

struct svc_grv {
	struct server_req *req;
	struct proxy_grv grv;
};

struct svc_watch {
	struct watcher w;
	struct service *svc;
	struct server_conn *conn;
	uint64_t id;
	bool live; /* registered: history replay is over */
	struct svc_watch *next; /* the connection's watches */
};

/* ---- request metrics ---- */

/* "ok", or the status's name without RS_E, in lower case ("not_leader"
 * for RS_ENOTLEADER). */
static void svc_result_label(int status, char *out, size_t size)
{
	const char *name = status == RS_OK ? "ok" : rs_error_name(status);
	size_t i = 0;

	if (strncmp(name, "RS_E", 4) == 0)
		name += 4;
	for (; name[i] != '\0' && i + 1 < size; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

static void svc_op_label(uint8_t type, char *out, size_t size)
{
	const char *name = wire_type_name(type);
	size_t i = 0;

	for (; name[i] != '\0' && i + 1 < size; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

/* A finished request: counted by op and result, its latency observed. */
static void svc_count(struct service *s, uint8_t type, int status,
		      uint64_t start_ns)
{
	unsigned t = type & 0x7f;
	char op[24], result[32];

	if (s->metrics == NULL || t > WIRE_TYPE_LAST || status < 0 ||
	    status >= RS__ERROR_COUNT)
		return;
	if (s->m_requests[t][status] == NULL) {
		const char *labels[] = {"op", op, "result", result, NULL};

		svc_op_label((uint8_t)t, op, sizeof op);
		svc_result_label(status, result, sizeof result);
		s->m_requests[t][status] = metrics_register(
			s->metrics, METRIC_COUNTER, "raftstore_requests_total",
			"Client requests answered, by operation and result",
			labels, NULL, 0);
		if (s->m_requests[t][status] == NULL)
			return;
	}
	metrics_inc(s->m_requests[t][status]);
	if (s->m_latency[t] != NULL)
		metrics_observe(s->m_latency[t],
				(double)(uv_hrtime() - start_ns) / 1e9);
}

static void svc_req_count(struct server_req *req, int status)
{
	if (req->data != NULL)
		svc_count(req->data, req->type, status, req->start_ns);
}

/* server_req_new, with the service as the request's data (for counting). */
static struct server_req *svc_req_new(struct service *s,
				      struct server_conn *conn,
				      const struct wire_frame *f)
{
	struct server_req *r = server_req_new(conn, f);

	if (r != NULL)
		r->data = s;
	return r;
}

/* ---- reads ---- */

static void svc_read_free(struct svc_read *r)
{
	server_req_done(r->req);
	rs_buf_free(&r->key);
	rs_buf_free(&r->end);
	free(r);
}

static void svc_reply_error(struct server_req *req, int status,
			    const char *msg)
{
	svc_req_count(req, status);
	server_reply_status(req->conn, req->id, req->type, status,
			    msg ? msg : rs_strerror(status));
}

static void svc_serve_get(struct service *s, struct svc_read *r)
{
	const uint8_t *val = NULL;
	uint32_t len = 0;
	uint64_t found_version = 0;
	size_t start;
	struct rs_buf *out;
	int rv = store_get(s->store, r->key.data, r->key.len, r->version, &val,
			   &len, &found_version);

	if (rv != RS_OK && rv != RS_ENOTFOUND) {
		char msg[128];
		snprintf(msg, sizeof msg, "read at version %llu: %s",
			 (unsigned long long)r->version, rs_strerror(rv));
		svc_reply_error(r->req, rv, msg);
		return;
	}
	out = server_reply_begin(r->req->conn, r->req->id, WIRE_GET, 0, &start);
	wire_put_status(out, RS_OK, NULL);
	wire_put_u8(out, r->mode);
	wire_put_u64(out, r->version);
	wire_put_u8(out, rv == RS_OK);
	wire_put_u64(out, found_version);
	wire_put_bytes(out, val, rv == RS_OK ? len : 0);
	server_reply_end(r->req->conn, start);
	svc_req_count(r->req, RS_OK);
}

struct svc_range_ctx {
	struct rs_buf *out;
	uint32_t n;
	size_t bytes;
	bool cut; /* stopped for size */
};

static int svc_range_add(void *ctx, const uint8_t *key, uint32_t key_len,
			 const uint8_t *val, uint32_t val_len,
			 uint64_t found_version)
{
	struct svc_range_ctx *c = ctx;
	if (c->n > 0 && c->bytes + key_len + val_len > SERVICE_RANGE_BYTES_MAX) {
		c->cut = true;
		return 1;
	}
	wire_put_bytes(c->out, key, key_len);
	wire_put_bytes(c->out, val, val_len);
	wire_put_u64(c->out, found_version);
	c->n++;
	c->bytes += key_len + val_len + 16;
	return 0;
}

static void svc_serve_range(struct service *s, struct svc_read *r)
{
	struct rs_buf items;
	struct svc_range_ctx ctx = {&items, 0, 0, false};
	bool more = false;
	size_t start;
	struct rs_buf *out;
	int rv;

	rs_buf_init(&items);
	rv = store_range(s->store, r->key.data, r->key.len,
			 r->end.len ? r->end.data : NULL, r->end.len, r->version,
			 r->limit, svc_range_add, &ctx, &more);
	if (rv != RS_OK) {
		char msg[128];
		snprintf(msg, sizeof msg, "range at version %llu: %s",
			 (unsigned long long)r->version, rs_strerror(rv));
		svc_reply_error(r->req, rv, msg);
		rs_buf_free(&items);
		return;
	}
	out = server_reply_begin(r->req->conn, r->req->id, WIRE_RANGE, 0, &start);
	wire_put_status(out, RS_OK, NULL);
	wire_put_u8(out, r->mode);
	wire_put_u64(out, r->version);
	wire_put_u8(out, more || ctx.cut);
	wire_put_u32(out, ctx.n);
	rs_buf_append(out, items.data, items.len);
	server_reply_end(r->req->conn, start);
	svc_req_count(r->req, RS_OK);
	rs_buf_free(&items);
}

static void svc_serve(struct service *s, struct svc_read *r)
{
	if (r->req->type == WIRE_GET)
		svc_serve_get(s, r);
	else
		svc_serve_range(s, r);
	svc_read_free(r);
}

static void svc_wait_or_serve(struct service *s, struct svc_read *r)
{
	struct svc_read **pp = &s->waiting;

	if (store_applied_version(s->store) >= r->version) {
		svc_serve(s, r);
		return;
	}
	r->deadline_ms = uv_now(s->loop) + s->o.read_timeout_ms;
	while (*pp != NULL && (*pp)->version <= r->version)
		pp = &(*pp)->next;
	r->next = *pp;
	*pp = r;
	s->st.waiting_reads++;
}

static void svc_read_got_version(struct proxy_grv *g, int status,
				 uint64_t version)
{
	struct svc_read *r = g->data;

	if (status != RS_OK) {
		svc_reply_error(r->req, status, "get a read version from the leader");
		svc_read_free(r);
		return;
	}
	r->version = version;
	svc_wait_or_serve(r->svc, r);
}

static void svc_read_start(struct service *s, struct svc_read *r,
			   uint64_t read_version)
{
	switch (r->mode) {
	case WIRE_READ_SERIALIZABLE:
		r->version = store_applied_version(s->store);
		svc_serve(s, r);
		break;
	case WIRE_READ_AT_VERSION:
		r->version = read_version;
		svc_wait_or_serve(s, r);
		break;
	default:
		r->grv.data = r;
		proxy_grv(s->proxy, &r->grv, svc_read_got_version);
	}
}

static struct svc_read *svc_read_new(struct service *s,
				     struct server_conn *conn,
				     const struct wire_frame *f, uint8_t mode)
{
	struct svc_read *r = calloc(1, sizeof *r);
	if (r == NULL)
		abort();
	r->svc = s;
	r->mode = mode;
	r->req = svc_req_new(s, conn, f);
	if (r->req == NULL)
		abort();
	rs_buf_init(&r->key);
	rs_buf_init(&r->end);
	return r;
}

static void svc_get(struct service *s, struct server_conn *conn,
		    const struct wire_frame *f, struct wire_get_req *m)
{
	struct svc_read *r = svc_read_new(s, conn, f, m->mode);
	rs_buf_append(&r->key, m->key.p, m->key.len);
	s->st.gets++;
	svc_read_start(s, r, m->read_version);
}

static void svc_range(struct service *s, struct server_conn *conn,
		      const struct wire_frame *f, struct wire_range_req *m)
{
	struct svc_read *r = svc_read_new(s, conn, f, m->mode);
	rs_buf_append(&r->key, m->begin.p, m->begin.len);
	rs_buf_append(&r->end, m->end.p, m->end.len);
	r->limit = m->limit ? m->limit : WIRE_RANGE_LIMIT_DEFAULT;
	s->st.ranges++;
	svc_read_start(s, r, m->read_version);
}

/* ---- commits and read versions ---- */

static void svc_committed(struct proxy_txn *t, int status, uint64_t version,
			  const char *message)
{
	struct svc_commit *c = t->data;
	size_t start;
	struct rs_buf *out;

	if (status != RS_OK) {
		svc_reply_error(c->req, status, message);
	} else {
		out = server_reply_begin(c->req->conn, c->req->id, WIRE_COMMIT, 0,
					 &start);
		wire_put_status(out, RS_OK, NULL);
		wire_put_u64(out, version);
		server_reply_end(c->req->conn, start);
		svc_req_count(c->req, RS_OK);
	}
	server_req_done(c->req);
	proxy_txn_free(&c->txn);
	free(c);
}

#define SVC_SYSTEM_PREFIX "\xff"
#define SVC_CONFIG_PREFIX "\xff/system/config/"

static bool svc_in_config(const uint8_t *k, uint32_t len)
{
	size_t n = strlen(SVC_CONFIG_PREFIX);
	return len > n && memcmp(k, SVC_CONFIG_PREFIX, n) == 0;
}

/* Client transactions may not write the system key space (\xff...), which
 * the director owns, except the configuration parameters under
 * \xff/system/config/ (rsctl config set). */
static bool svc_system_write(const uint8_t *body, uint32_t len, char *errmsg)
{
	struct batch b;
	struct mutation m;
	size_t pos = 0;
	bool bad = false;

	batch_init(&b);
	if (len == 0 || batch_load_body(&b, body, len) != RS_OK)
		return false;
	while (!bad && batch_next(&b, &pos, &m)) {
		bool sys = m.key_len > 0 && m.key[0] == 0xff;
		/* A range reaches the system space iff its (exclusive) end is
		 * above "\xff". */
		if (m.type == MUT_CLEAR_RANGE)
			sys = sys || (m.val_len > 1 && m.val[0] == 0xff);
		bad = sys && (m.type == MUT_CLEAR_RANGE ||
			      !svc_in_config(m.key, m.key_len));
	}
	batch_free(&b);
	if (bad)
		rs_errmsg_printf(errmsg, "keys starting with \\xff are reserved for "
					 "the system (only \\xff/system/config/<param> "
					 "may be set)");
	return bad;
}

/* Only configuration parameters: such a transaction may pass while the
 * director is recovering, so a setting that breaks recovery can always be
 * set back. */
static bool svc_config_only(const struct batch *b)
{
	struct mutation m;
	size_t pos = 0;

	if (b->count == 0)
		return false;
	while (batch_next(b, &pos, &m))
		if (m.type == MUT_CLEAR_RANGE || !svc_in_config(m.key, m.key_len))
			return false;
	return true;
}

static void svc_commit(struct service *s, struct server_conn *conn,
		       const struct wire_frame *f, struct wire_commit_req *m)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct svc_commit *c;
	struct wire_bytes b, e;
	size_t pos = 0;

	if (svc_system_write(m->mutations.p, m->mutations.len, errmsg)) {
		svc_count(s, WIRE_COMMIT, RS_EINVAL, s->handle_ns);
		server_reply_status(conn, f->request_id, WIRE_COMMIT, RS_EINVAL,
				    errmsg);
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL)
		abort();
	c->req = svc_req_new(s, conn, f);
	if (c->req == NULL)
		abort();
	proxy_txn_init(&c->txn);
	c->txn.data = c;
	c->txn.read_version = m->read_version;
	while (wire_commit_next_range(m, &pos, &b, &e))
		proxy_txn_add_range(&c->txn, b.p, b.len, e.p, e.len);
	if (m->mutations.len > 0)
		batch_load_body(&c->txn.muts, m->mutations.p, m->mutations.len);
	c->txn.system = svc_config_only(&c->txn.muts);
	s->st.commits++;
	proxy_commit(s->proxy, &c->txn, svc_committed);
}

static void svc_grv_done(struct proxy_grv *g, int status, uint64_t version)
{
	struct svc_grv *q = g->data;
	size_t start;
	struct rs_buf *out;

	if (status != RS_OK) {
		svc_reply_error(q->req, status, "get a read version from the leader");
	} else {
		out = server_reply_begin(q->req->conn, q->req->id, WIRE_GRV, 0,
					 &start);
		wire_put_status(out, RS_OK, NULL);
		wire_put_u64(out, version);
		server_reply_end(q->req->conn, start);
		svc_req_count(q->req, RS_OK);
	}
	server_req_done(q->req);
	free(q);
}

static void svc_grv(struct service *s, struct server_conn *conn,
		    const struct wire_frame *f)
{
	struct svc_grv *q = calloc(1, sizeof *q);
	if (q == NULL)
		abort();
	q->req = svc_req_new(s, conn, f);
	if (q->req == NULL)
		abort();
	q->grv.data = q;
	s->st.grvs++;
	proxy_grv(s->proxy, &q->grv, svc_grv_done);
}

/* ---- watches ---- */

static void svc_watch_end(struct svc_watch *w, int status, const char *msg)
{
	struct svc_watch **pp = (struct svc_watch **)server_conn_data(w->conn);

	while (*pp != NULL && *pp != w)
		pp = &(*pp)->next;
	if (*pp == w)
		*pp = w->next;
	w->svc->active_watches--;
	if (status != RS_OK && server_conn_alive(w->conn))
		server_reply_status(w->conn, w->id, WIRE_WATCH, status, msg);
	watch_remove(w->svc->hub, &w->w);
	free(w);
}

static void svc_watch_event(struct watcher *wt, const struct batch *b)
{
	struct svc_watch *w = wt->data;
	size_t start;
	struct rs_buf *out;

	if (w->live && server_conn_pending(w->conn) > SERVICE_WATCH_BACKLOG_MAX) {
		/* The hub saved its next pointer: ending w here is safe. */
		svc_watch_end(w, RS_EUNAVAILABLE,
			      "watcher too slow: over 256 MiB of events unsent");
		return;
	}
	out = server_reply_begin(w->conn, w->id, WIRE_WATCH, WIRE_FLAG_MORE,
				 &start);
	wire_put_status(out, RS_OK, NULL);
	wire_put_u64(out, b->version);
	wire_put_bytes(out, b->body.data, b->body.len);
	server_reply_end(w->conn, start);
}

static void svc_watch(struct service *s, struct server_conn *conn,
		      const struct wire_frame *f, struct wire_watch_req *m)
{
	struct svc_watch *w, **head = (struct svc_watch **)server_conn_data(conn);
	char msg[160];
	int rv;

	if (m->from_version != 0 && m->from_version < watch_hub_oldest(s->hub)) {
		snprintf(msg, sizeof msg,
			 "version %llu is older than the retained history (oldest "
			 "%llu): re-read and watch from the read version",
			 (unsigned long long)m->from_version,
			 (unsigned long long)watch_hub_oldest(s->hub));
		svc_count(s, WIRE_WATCH, RS_ECOMPACTED, s->handle_ns);
		server_reply_status(conn, f->request_id, WIRE_WATCH, RS_ECOMPACTED,
				    msg);
		return;
	}
	w = calloc(1, sizeof *w);
	if (w == NULL)
		abort();
	w->svc = s;
	w->conn = conn;
	w->id = f->request_id;
	w->w.data = w;
	server_reply_status(conn, f->request_id, WIRE_WATCH, RS_OK, NULL);
	rv = watch_add(s->hub, &w->w, m->begin.p, m->begin.len, m->end.p,
		       m->end.len, m->from_version, svc_watch_event);
	assert(rv == RS_OK); /* compaction was checked above */
	(void)rv;
	w->live = true;
	w->next = *head;
	*head = w;
	s->st.watches++;
	s->active_watches++;
	svc_count(s, WIRE_WATCH, RS_OK, s->handle_ns);
}

/* WATCH_CANCEL: stop the connection's watch with that request id, with
 * no final WATCH frame; RS_ENOTFOUND if the connection runs none (it ended
 * already, or never existed).  Events go out as they are applied, so none
 * for the watch can follow this answer. */
static void svc_watch_cancel(struct service *s, struct server_conn *conn,
			     const struct wire_frame *f, uint64_t watch_id)
{
	struct svc_watch *w = *(struct svc_watch **)server_conn_data(conn);
	char msg[96];

	while (w != NULL && w->id != watch_id)
		w = w->next;
	if (w == NULL) {
		snprintf(msg, sizeof msg,
			 "no watch with request id %llu runs on this connection",
			 (unsigned long long)watch_id);
		svc_count(s, WIRE_WATCH_CANCEL, RS_ENOTFOUND, s->handle_ns);
		server_reply_status(conn, f->request_id, WIRE_WATCH_CANCEL,
				    RS_ENOTFOUND, msg);
		return;
	}
	svc_watch_end(w, RS_OK, NULL);
	s->st.watch_cancels++;
	svc_count(s, WIRE_WATCH_CANCEL, RS_OK, s->handle_ns);
	server_reply_status(conn, f->request_id, WIRE_WATCH_CANCEL, RS_OK, NULL);
}

void service_conn_closed(void *ctx, struct server_conn *conn)
{
	struct service *s = ctx;
	struct svc_watch **head = (struct svc_watch **)server_conn_data(conn);
	(void)s;
	while (*head != NULL)
		svc_watch_end(*head, RS_OK, NULL);
}

/* ---- dispatch ---- */

/* TERM: sampled here, after the frame arrived, as readquorum.h needs. */
static void svc_term(struct service *s, struct server_conn *conn,
		     const struct wire_frame *f, const struct wire_term_req *m)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint64_t node_id = 0, term = 0;
	size_t start;
	struct rs_buf *out;
	int status = RS_EPROTO;

	if (s->o.term != NULL)
		status = s->o.term(s->o.ctx, m, &node_id, &term, errmsg);
	else
		rs_errmsg_printf(errmsg, "TERM is not served by this node");
	svc_count(s, WIRE_TERM, status, s->handle_ns);
	if (status != RS_OK) {
		server_reply_status(conn, f->request_id, WIRE_TERM, status, errmsg);
		return;
	}
	out = server_reply_begin(conn, f->request_id, WIRE_TERM, 0, &start);
	wire_put_status(out, RS_OK, NULL);
	wire_put_u64(out, node_id);
	wire_put_u64(out, term);
	server_reply_end(conn, start);
}

static void svc_info(struct service *s, struct server_conn *conn,
		     const struct wire_frame *f)
{
	char *json = f->type == WIRE_STATUS ? s->o.status_json(s->o.ctx)
					    : s->o.members_json(s->o.ctx);
	size_t start;
	struct rs_buf *out;

	svc_count(s, f->type, json == NULL ? RS_ENOMEM : RS_OK, s->handle_ns);
	if (json == NULL) {
		server_reply_status(conn, f->request_id, f->type, RS_ENOMEM, NULL);
		return;
	}
	out = server_reply_begin(conn, f->request_id, f->type, 0, &start);
	wire_put_status(out, RS_OK, NULL);
	wire_put_bytes(out, json, strlen(json));
	server_reply_end(conn, start);
	free(json);
}

int service_decode_register(const struct wire_frame *f,
			    struct service_registration *m, char *errmsg)
{
	struct wire_reader r;

	wire_reader_init(&r, f->body, f->body_len);
	m->node_id = wire_get_u64(&r);
	m->raft_addr = wire_get_bytes(&r, 255);
	m->client_addr = wire_get_bytes(&r, 255);
	m->capabilities = wire_get_u32(&r);
	m->applied_version = wire_get_u64(&r);
	if (!wire_reader_done(&r) || m->node_id == 0) {
		rs_errmsg_printf(errmsg, "REGISTER request: malformed body");
		return RS_EPROTO;
	}
	return RS_OK;
}

/* The host of "host:port" as an IPv4 address; false for a name (other
 * than localhost), a wildcard or anything unparsable. */
static bool svc_addr_ip(const char *addr, struct in_addr *ip)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char host[64];

	if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
		return false;
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	if (uv_inet_pton(AF_INET, host, ip) != 0)
		return false;
	return ip->s_addr != htonl(INADDR_ANY);
}

static bool svc_member_has_ip(const struct service_member *m,
			      const struct in_addr *peer)
{
	struct in_addr ip;

	return (svc_addr_ip(m->raft_addr, &ip) && ip.s_addr == peer->s_addr) ||
	       (svc_addr_ip(m->client_addr, &ip) && ip.s_addr == peer->s_addr);
}

int service_member_check(const struct service_member *members, unsigned n,
			 uint64_t node_id, const struct in_addr *peer,
			 char *errmsg)
{
	bool is_member = false, ip_known = false;
	char peer_text[32] = "an unknown address";

	for (unsigned i = 0; i < n; i++) {
		is_member = is_member || members[i].id == node_id;
		ip_known = ip_known ||
			   (peer != NULL && svc_member_has_ip(&members[i], peer));
	}
	if (peer != NULL)
		uv_inet_ntop(AF_INET, peer, peer_text, sizeof peer_text);
	if (!is_member) {
		rs_errmsg_printf(errmsg, "node %llu " SERVICE_NOT_MEMBER_TEXT,
				 (unsigned long long)node_id);
		return RS_EINVAL;
	}
	if (!ip_known) {
		rs_errmsg_printf(errmsg, "node %llu is a member, but %s is not the "
					 "IP of any member's raft or client address",
				 (unsigned long long)node_id, peer_text);
		return RS_EINVAL;
	}
	return RS_OK;
}

/* Count, log (rate-limited) and answer an internal frame the gate
 * refused. */
static void svc_internal_refused(struct service *s, struct server_conn *conn,
				 const struct wire_frame *f, uint64_t node_id,
				 const char *why)
{
	char msg[RS_ERRMSG_SIZE], q[RS_ERRMSG_SIZE];
	uint64_t now = uv_now(s->loop);

	assert(f->type == WIRE_REGISTER && why[0] != '\0');
	s->st.internal_refused++;
	if (s->m_internal_refused != NULL)
		metrics_inc(s->m_internal_refused);
	if (s->refused_logged_ms == 0 ||
	    now - s->refused_logged_ms >= SERVICE_REFUSED_LOG_MS) {
		log_warn("client.internal_refused",
			 "peer=%s type=%s claimed_id=%llu reason=%s suppressed=%llu",
			 server_conn_peer(conn), wire_type_name(f->type),
			 (unsigned long long)node_id, log_quote(q, sizeof q, why),
			 (unsigned long long)s->refused_unlogged);
		s->refused_logged_ms = now == 0 ? 1 : now;
		s->refused_unlogged = 0;
	} else {
		s->refused_unlogged++;
	}
	rs_errmsg_printf(msg, "%s refused: %s (internal frames are accepted "
			      "only from this cluster's members)",
			 wire_type_name(f->type), why);
	svc_count(s, f->type, RS_EINVAL, s->handle_ns);
	server_reply_status(conn, f->request_id, f->type, RS_EINVAL, msg);
}

/* The internal-frame gate (service.h); true if the frame may pass. */
static bool svc_internal_allowed(struct service *s, struct server_conn *conn,
				 const struct wire_frame *f, uint64_t node_id)
{
	struct service_member members[SERVICE_MEMBERS_MAX];
	char errmsg[RS_ERRMSG_SIZE];
	struct in_addr peer;
	unsigned n = 0;

	if (s->o.members != NULL)
		n = s->o.members(s->o.ctx, members, SERVICE_MEMBERS_MAX);
	if (n > SERVICE_MEMBERS_MAX)
		n = SERVICE_MEMBERS_MAX;
	if (service_member_check(members, n, node_id,
				 server_conn_peer_ip(conn, &peer) ? &peer : NULL,
				 errmsg) == RS_OK)
		return true;
	svc_internal_refused(s, conn, f, node_id, errmsg);
	return false;
}

static void svc_register(struct service *s, struct server_conn *conn,
			 const struct wire_frame *f,
			 const struct service_registration *m)
{
	int status = RS_ENOTLEADER;
	char *json = s->o.registration ? s->o.registration(s->o.ctx, m, &status)
				       : NULL;
	size_t start;
	struct rs_buf *out;

	svc_count(s, f->type, json == NULL ? status : RS_OK, s->handle_ns);
	if (json == NULL) {
		server_reply_status(conn, f->request_id, f->type, status,
				    "no director runs on this node");
		return;
	}
	out = server_reply_begin(conn, f->request_id, f->type, 0, &start);
	wire_put_status(out, RS_OK, NULL);
	wire_put_bytes(out, json, strlen(json));
	server_reply_end(conn, start);
	free(json);
}

void service_answer(struct server_req *req, int status, const char *text)
{
	size_t start;
	struct rs_buf *out;

	assert(req != NULL);
	if (status != RS_OK) {
		svc_reply_error(req, status, text);
	} else {
		svc_req_count(req, RS_OK);
		out = server_reply_begin(req->conn, req->id, req->type, 0,
					 &start);
		wire_put_status(out, RS_OK, NULL);
		wire_put_bytes(out, text, strlen(text));
		server_reply_end(req->conn, start);
	}
	server_req_done(req);
}

static void svc_member_change(struct service *s, struct server_conn *conn,
			      const struct wire_frame *f,
			      const struct wire_member_change_req *m)
{
	if (s->o.member_change == NULL) {
		svc_count(s, f->type, RS_EINVAL, s->handle_ns);
		server_reply_status(conn, f->request_id, f->type, RS_EINVAL,
				    "member changes are not served here");
		return;
	}
	s->o.member_change(s->o.ctx, svc_req_new(s, conn, f), m);
}

/* A request that cannot be decoded.  Over-limit requests are answered and
 * the connection kept; anything malformed closes it. */
static void svc_bad_request(struct service *s, struct server_conn *conn,
			    const struct wire_frame *f, int rv,
			    const char *errmsg)
{
	s->st.errors++;
	svc_count(s, f->type, rv, s->handle_ns);
	server_reply_status(conn, f->request_id, f->type, rv, errmsg);
	if (rv != RS_ETOOLARGE) {
		s->st.protocol_errors++;
		log_warn("client.bad_request", "type=%u error=\"%s\"", f->type,
			 errmsg);
		server_conn_close(conn);
	}
}

void service_handle(void *ctx, struct server_conn *conn,
		    const struct wire_frame *f)
{
	struct service *s = ctx;
	char errmsg[RS_ERRMSG_SIZE] = "";
	union {
		struct wire_get_req get;
		struct wire_range_req range;
		struct wire_commit_req commit;
		struct wire_watch_req watch;
		uint64_t watch_id;
		struct service_registration reg;
		struct wire_member_change_req member;
		struct wire_term_req term;
	} m;
	int rv;

	s->handle_ns = uv_hrtime();

	switch (f->type) {
	case WIRE_GET:
		if ((rv = wire_decode_get(f, &m.get, errmsg)) == RS_OK)
			svc_get(s, conn, f, &m.get);
		break;
	case WIRE_RANGE:
		if ((rv = wire_decode_range(f, &m.range, errmsg)) == RS_OK)
			svc_range(s, conn, f, &m.range);
		break;
	case WIRE_COMMIT:
		if ((rv = wire_decode_commit(f, &m.commit, errmsg)) == RS_OK)
			svc_commit(s, conn, f, &m.commit);
		break;
	case WIRE_WATCH:
		if ((rv = wire_decode_watch(f, &m.watch, errmsg)) == RS_OK)
			svc_watch(s, conn, f, &m.watch);
		break;
	case WIRE_WATCH_CANCEL:
		rv = wire_decode_watch_cancel(f, &m.watch_id, errmsg);
		if (rv == RS_OK)
			svc_watch_cancel(s, conn, f, m.watch_id);
		break;
	case WIRE_REGISTER:
		rv = service_decode_register(f, &m.reg, errmsg);
		if (rv == RS_OK &&
		    svc_internal_allowed(s, conn, f, m.reg.node_id))
			svc_register(s, conn, f, &m.reg);
		break;
	case WIRE_MEMBER_CHANGE:
		rv = wire_decode_member_change(f, &m.member, errmsg);
		if (rv == RS_OK)
			svc_member_change(s, conn, f, &m.member);
		break;
	case WIRE_TERM:
		if ((rv = wire_decode_term(f, &m.term, errmsg)) == RS_OK)
			svc_term(s, conn, f, &m.term);
		break;
	case WIRE_GRV:
	case WIRE_STATUS:
	case WIRE_MEMBERS:
		rv = wire_decode_empty(f, errmsg);
		if (rv == RS_OK && f->type == WIRE_GRV)
			svc_grv(s, conn, f);
		else if (rv == RS_OK)
			svc_info(s, conn, f);
		break;
	default:
		rv = RS_EPROTO;
		rs_errmsg_printf(errmsg, "request type %u is not served", f->type);
	}
	if (rv != RS_OK)
		svc_bad_request(s, conn, f, rv, errmsg);
}

/* ---- applied versions, timeouts ---- */

void service_applied(struct service *s, const struct batch *b)
{
	uint64_t applied = store_applied_version(s->store);

	while (s->waiting != NULL && s->waiting->version <= applied) {
		struct svc_read *r = s->waiting;
		s->waiting = r->next;
		s->st.waiting_reads--;
		svc_serve(s, r);
	}
	watch_hub_applied(s->hub, b);
}

void service_restored(struct service *s, uint64_t version)
{
	struct svc_read *r;

	/* History before the snapshot is gone: end every watch (the clients
	 * re-read and resume), then serve the reads the snapshot satisfies. */
	struct watcher *w;
	char msg[160];

	snprintf(msg, sizeof msg,
		 "this node installed a snapshot at version %llu; re-read and "
		 "watch again from the read version",
		 (unsigned long long)version);
	while ((w = watch_hub_first(s->hub)) != NULL)
		svc_watch_end(w->data, RS_ECOMPACTED, msg);
	watch_hub_reset(s->hub, store_applied_version(s->store));
	while (s->waiting != NULL &&
	       s->waiting->version <= store_applied_version(s->store)) {
		r = s->waiting;
		s->waiting = r->next;
		s->st.waiting_reads--;
		svc_serve(s, r);
	}
}

static void svc_sweep(uv_timer_t *t)
{
	struct service *s = t->data;
	struct svc_read **pp = &s->waiting, *r;
	uint64_t now = uv_now(s->loop);
	char msg[160];

	while ((r = *pp) != NULL) {
		if (r->deadline_ms > now) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		s->st.waiting_reads--;
		snprintf(msg, sizeof msg,
			 "this node has not applied version %llu within %u ms "
			 "(applied %llu)",
			 (unsigned long long)r->version, s->o.read_timeout_ms,
			 (unsigned long long)store_applied_version(s->store));
		svc_reply_error(r->req, RS_ETIMEOUT, msg);
		svc_read_free(r);
	}
}

struct service *service_create(uv_loop_t *loop, struct store *store,
			       struct proxy *proxy, struct watch_hub *hub,
			       const struct service_options *o)
{
	struct service *s = calloc(1, sizeof *s);

	if (s == NULL)
		abort();
	s->loop = loop;
	s->store = store;
	s->proxy = proxy;
	s->hub = hub;
	s->o = *o;
	if (s->o.read_timeout_ms == 0)
		s->o.read_timeout_ms = 5000;
	uv_timer_init(loop, &s->sweep);
	s->sweep.data = s;
	uv_timer_start(&s->sweep, svc_sweep, SERVICE_SWEEP_MS, SERVICE_SWEEP_MS);
	return s;
}

static void svc_sweep_closed(uv_handle_t *h)
{
	free(h->data);
}

void service_destroy(struct service *s)
{
	while (s->waiting != NULL) {
		struct svc_read *r = s->waiting;
		s->waiting = r->next;
		svc_reply_error(r->req, RS_ESHUTDOWN, "node shutting down");
		svc_read_free(r);
	}
	uv_close((uv_handle_t *)&s->sweep, svc_sweep_closed);
}

void service_get_stats(const struct service *s, struct service_stats *st)
{
	*st = s->st;
}

static double svc_active_watches(void *ctx)
{
	return (double)((const struct service *)ctx)->active_watches;
}

int service_metrics_register(struct service *s, struct metrics *ms)
{
	assert(s->m_internal_refused == NULL);
	s->m_internal_refused = metrics_counter(
		ms, "raftstore_internal_frames_refused_total",
		"Internal frames (REGISTER) refused: not from a member of this "
		"cluster");
	if (s->m_internal_refused == NULL)
		return RS_EINVAL;
	metrics_add(s->m_internal_refused, s->st.internal_refused);
	for (unsigned t = WIRE_GET; t <= WIRE_TYPE_LAST; t++) {
		char op[24];
		const char *labels[] = {"op", op, NULL};

		if (strcmp(wire_type_name((uint8_t)t), "?") == 0)
			continue; /* reserved */
		svc_op_label((uint8_t)t, op, sizeof op);
		s->m_latency[t] = metrics_register(
			ms, METRIC_HISTOGRAM, "raftstore_request_duration_seconds",
			"Client request latency on this node, from arrival to "
			"answer (a watch: to started)",
			labels, metrics_buckets_seconds,
			METRICS_BUCKETS_SECONDS_COUNT);
		if (s->m_latency[t] == NULL)
			return RS_EINVAL;
	}
	if (metrics_gauge_fn(ms, "raftstore_watches",
			     "Watches active on this node",
			     svc_active_watches, s) == NULL)
		return RS_EINVAL;
	s->metrics = ms;
	return RS_OK;
}
