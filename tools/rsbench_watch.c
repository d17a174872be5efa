/*
 * rsbench watch: watch fan-out on one prefix, measured from the write to
 * its delivery, with every delivery checked.
 *
 * W watchers watch [P, P+1) from the version just after setup; one writer
 * puts at a fixed rate R for S seconds (open loop: a slow commit does not
 * slow the writer), each a single key P%04u (K keys written round-robin)
 * whose value carries the write's sequence number and its send time.  Each
 * watcher takes the latency of each event as now - send time (so it is
 * write -> commit -> delivery; put_p50_ms says how much of it the commit
 * is) and checks that it sees every acknowledged write exactly once, in
 * commit-version order, at the version the writer was told.
 *
 * Connections: by default every watcher is a watch of the client library,
 * on a client of their own whose pooled connections (--lib-conns L, the
 * client's `connections`, default 1) carry all of them, as an application
 * would (mode=library, conns = L).  With --conns C the watchers are
 * spread over C raw protocol connections to the leader instead
 * (mode=raw), many watches per connection, which is what etcd's client
 * does (one gRPC stream per client).  Either way the writer has a client
 * and connection of its own.  Writer and watchers share one libuv loop
 * and one clock.
 *
 * Setup barrier: before the timed phase the writer puts P"ready" and waits
 * until every watcher has it, so connection setup never counts as delivery
 * latency.  With --server-pids the servers' summed RSS is read before the
 * watches start and after the barrier (their difference over W is the
 * memory per watcher), and their CPU time over the timed phase is
 * reported beside this process's own, so that the latencies can be laid
 * at the door of the side that was busy.
 *
 *   RESULT system=raftstore op=watch watchers=W conns=C rate=R writes=N
 *          write_errors=E events=X secs=T events_per_s=X/T p50_ms=...
 *          p99_ms=... p999_ms=... put_p50_ms=... lost=... reordered=...
 *          duplicated=... mismatched=... ended=... setup_s=...
 *          server_rss_kib=... kib_per_watcher=... server_cpu_s=...
 *          client_cpu_s=... mode=library|raw
 *
 * (one line).  lost counts (watcher, acknowledged write) pairs never
 * delivered; a watch that ended early counts in ended instead.  The
 * latency percentiles are over every delivery of every watcher.
 *
 * Exit status 1 when anything was lost, reordered, duplicated, delivered
 * at the wrong version, or a watch ended early.
 */
#include <assert.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/client.h"
#include "tools/rsbench.h"

#define WB_PREFIX_MAX 64
#define WB_VALUE_MIN 16 /* sequence number and send time */

struct wb;

struct wb_watcher {
	struct rs_op op;         /* library mode */
	struct wb_conn *conn;    /* raw mode */
	struct wb *b;
	uint8_t *seen;           /* bit per write sequence number */
	uint64_t last_version;
	uint64_t events;
	bool ready;              /* has seen the barrier key */
	bool ended;
};

struct wb_conn {
	struct rb_conn rc;
	struct wb *b;
	unsigned first, count; /* its watchers */
};

struct wb_put {
	struct rs_op op;
	struct wb *b;
	uint64_t seq;
	uint64_t sent_ns;
	uint64_t acked_ns;
	uint64_t version; /* commit version, once acknowledged */
	int status;
	bool done;
};

struct wb {
	uv_loop_t loop;
	struct rs_client *client;       /* the writer's */
	struct rs_client *watch_client; /* library mode: the watchers' */
	char leader[64];
	/* options */
	unsigned n_watchers, n_conns, n_keys;
	unsigned lib_conns; /* library mode: watch_client's connections */
	double rate, duration, drain_s, ready_timeout_s;
	size_t value_size;
	char prefix[WB_PREFIX_MAX + 1];
	size_t prefix_len;
	const char *server_pids;
	/* state */
	struct wb_watcher *ws;
	struct wb_conn *conns;
	unsigned n_ready, n_ended, conns_closing;
	struct wb_put *puts; /* [0] is the barrier */
	uint64_t n_writes, issued, acked, write_errors; /* timed writes */
	uint64_t max_version;
	uint64_t start_version; /* before the watches: they start after it */
	uint8_t *value;
	struct batch put_batch;
	uint64_t t0_ns, last_event_ns;
	uv_timer_t tick;
	struct batch scratch; /* raw mode: the event being checked */
	/* results */
	float *lat_ms;
	size_t n_lat, cap_lat;
	uint64_t reordered, duplicated, mismatched, out_of_range;
	char first_end[256];
	bool failed;
	double setup_s;                    /* watches started to barrier passed */
	double secs;                       /* first write to last delivery */
	double server_cpu_s, client_cpu_s; /* timed phase and drain */
	long long rss0_kib, rss1_kib;      /* before the watches, after setup */
};

static void wb_die(const char *what, const char *why)
{
	fprintf(stderr, "rsbench watch: %s: %s\n", what, why);
	exit(1);
}

static void wb_key(const struct wb *b, uint64_t seq, char *key, size_t *len)
{
	if (seq == 0)
		*len = (size_t)snprintf(key, WB_PREFIX_MAX + 16, "%sready",
					b->prefix);
	else
		*len = (size_t)snprintf(key, WB_PREFIX_MAX + 16, "%s%04u",
					b->prefix, (unsigned)(seq % b->n_keys));
}

/* ---- checking deliveries ---- */

static void wb_lat_add(struct wb *b, float ms)
{
	if (b->n_lat == b->cap_lat) {
		b->cap_lat = b->cap_lat ? b->cap_lat * 2 : 1 << 16;
		b->lat_ms = realloc(b->lat_ms, b->cap_lat * sizeof *b->lat_ms);
		if (b->lat_ms == NULL)
			abort();
	}
	b->lat_ms[b->n_lat++] = ms;
}

static void wb_check_set(struct wb_watcher *w, uint64_t version,
			 const struct mutation *m, uint64_t now)
{
	struct wb *b = w->b;
	uint64_t seq, sent;

	if (m->val_len < WB_VALUE_MIN) {
		b->out_of_range++;
		return;
	}
	seq = rs_get_u64(m->val);
	sent = rs_get_u64(m->val + 8);
	if (seq > b->n_writes) {
		b->out_of_range++;
		return;
	}
	if (w->seen[seq / 8] & (1u << (seq % 8))) {
		b->duplicated++;
		return;
	}
	w->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	assert(w->seen[seq / 8] & (1u << (seq % 8)));
	if (b->puts[seq].version != 0 && b->puts[seq].version != version)
		b->mismatched++;
	if (seq == 0) {
		w->ready = true;
		b->n_ready++;
		return;
	}
	w->events++;
	b->last_event_ns = now;
	wb_lat_add(b, (float)((double)(now - sent) / 1e6));
}

/* One event (one commit's mutations under the prefix) for w. */
static void wb_event(struct wb_watcher *w, const struct batch *ev)
{
	struct mutation m;
	size_t pos = 0;
	uint64_t now = uv_hrtime();

	if (ev->version <= w->last_version)
		w->b->reordered++;
	else
		w->last_version = ev->version;
	while (batch_next(ev, &pos, &m))
		if (m.type == MUT_SET)
			wb_check_set(w, ev->version, &m, now);
}

static void wb_watch_ended(struct wb_watcher *w, int status, const char *msg)
{
	struct wb *b = w->b;

	if (w->ended)
		return;
	w->ended = true;
	b->n_ended++;
	if (b->first_end[0] == '\0')
		snprintf(b->first_end, sizeof b->first_end, "%s: %s",
			 rs_strerror(status), msg);
}

/* ---- library mode: rs_client watches on the pooled connections ---- */

static void wb_lib_event(struct rs_op *op)
{
	struct wb_watcher *w = op->data;

	if (op->result.status != RS_OK) {
		wb_watch_ended(w, op->result.status, op->result.message);
		return;
	}
	wb_event(w, &op->result.event);
}

static void wb_lib_start(struct wb *b, uint64_t from)
{
	char end[WB_PREFIX_MAX];

	memcpy(end, b->prefix, b->prefix_len);
	end[b->prefix_len - 1]++;
	for (unsigned i = 0; i < b->n_watchers; i++) {
		struct wb_watcher *w = &b->ws[i];
		w->op.data = w;
		if (rs_client_watch(b->watch_client, &w->op, b->prefix,
				    b->prefix_len,
				    end, b->prefix_len, from, wb_lib_event) != RS_OK)
			wb_die("watch", "the client refused to start a watch");
	}
}

/* ---- raw mode: many watches per connection ---- */

static void wb_raw_frame(struct rb_conn *rc, const struct wire_frame *f)
{
	struct wb_conn *c = rc->data;
	struct wb *b = c->b;
	struct wb_watcher *w;
	struct wire_reader r;
	struct wire_bytes msg, muts;
	char text[256];
	int status;

	if (f->request_id < c->first + 1 ||
	    f->request_id > (uint64_t)c->first + c->count ||
	    f->type != (WIRE_WATCH | WIRE_RESPONSE) ||
	    wire_decode_response_head(f, &r, &status, &msg) != RS_OK) {
		snprintf(text, sizeof text, "unexpected frame type 0x%02x for "
			 "request %" PRIu64, f->type, f->request_id);
		wb_die(b->leader, text);
	}
	w = &b->ws[f->request_id - 1];
	assert(w->conn == c);
	if (status != RS_OK) {
		snprintf(text, sizeof text, "%.*s", (int)msg.len,
			 (const char *)msg.p);
		wb_watch_ended(w, status, text);
		return;
	}
	if (!(f->flags & WIRE_FLAG_MORE))
		return; /* started */
	b->scratch.version = wire_get_u64(&r);
	muts = wire_get_bytes(&r, RS_BATCH_SIZE_MAX);
	if (!wire_reader_done(&r) || muts.len < 4 ||
	    batch_body_validate(muts.p, muts.len, NULL) != RS_OK ||
	    batch_load_body(&b->scratch, muts.p, muts.len) != RS_OK)
		wb_die(b->leader, "malformed WATCH event");
	wb_event(w, &b->scratch);
}

static void wb_raw_fail(struct rb_conn *rc, int status, const char *why)
{
	struct wb_conn *c = rc->data;

	for (unsigned i = c->first; i < c->first + c->count; i++)
		wb_watch_ended(&c->b->ws[i], status, why);
}

static void wb_raw_closed(struct rb_conn *rc)
{
	struct wb_conn *c = rc->data;
	c->b->conns_closing--;
}

static void wb_raw_start(struct wb *b, uint64_t from)
{
	struct sockaddr_in addr;
	char end[WB_PREFIX_MAX];
	struct wire_watch_req m = {
		.begin = {(const uint8_t *)b->prefix, (uint32_t)b->prefix_len},
		.end = {(const uint8_t *)end, (uint32_t)b->prefix_len},
		.from_version = from};
	struct rs_buf frames;
	unsigned per = b->n_watchers / b->n_conns, extra = b->n_watchers % b->n_conns;
	unsigned next = 0;

	memcpy(end, b->prefix, b->prefix_len);
	end[b->prefix_len - 1]++;
	if (rb_endpoint_addr(b->leader, &addr) != RS_OK)
		wb_die(b->leader, "not an IPv4 host:port");
	b->conns = calloc(b->n_conns, sizeof *b->conns);
	if (b->conns == NULL)
		abort();
	rs_buf_init(&frames);
	for (unsigned i = 0; i < b->n_conns; i++) {
		struct wb_conn *c = &b->conns[i];
		c->b = b;
		c->first = next;
		c->count = per + (i < extra);
		next += c->count;
		c->rc.data = c;
		c->rc.on_frame = wb_raw_frame;
		c->rc.on_fail = wb_raw_fail;
		c->rc.on_closed = wb_raw_closed;
		frames.len = 0;
		for (unsigned j = c->first; j < c->first + c->count; j++) {
			b->ws[j].conn = c;
			if (wire_encode_watch(&frames, j + 1, &m) != RS_OK)
				abort();
		}
		if (rb_conn_open(&c->rc, &b->loop, &addr) != RS_OK ||
		    rb_conn_send(&c->rc, &frames) != RS_OK)
			wb_die(b->leader, "cannot open a connection");
	}
	rs_buf_free(&frames);
}

/* ---- the writer ---- */

static void wb_put_done(struct rs_op *op)
{
	struct wb_put *p = op->data;
	struct wb *b = p->b;

	assert(!p->done && p->seq <= b->n_writes);
	p->done = true;
	p->acked_ns = uv_hrtime();
	p->status = op->result.status;
	if (p->seq > 0)
		b->acked++;
	if (p->status == RS_OK) {
		p->version = op->result.version;
		if (p->version > b->max_version)
			b->max_version = p->version;
	} else {
		b->write_errors++;
		fprintf(stderr, "rsbench watch: put %" PRIu64 ": %s: %s\n", p->seq,
			rs_strerror(p->status), op->result.message);
	}
	rs_result_free(&op->result);
	rs_buf_free(&op->request);
}

static void wb_put(struct wb *b, uint64_t seq)
{
	struct wb_put *p = &b->puts[seq];
	char key[WB_PREFIX_MAX + 16];
	size_t key_len;
	int rv;

	assert(seq <= b->n_writes && p->b == NULL);
	wb_key(b, seq, key, &key_len);
	p->b = b;
	p->seq = seq;
	p->op.data = p;
	p->sent_ns = uv_hrtime();
	rs_put_u64(b->value, seq);
	rs_put_u64(b->value + 8, p->sent_ns);
	batch_reset(&b->put_batch);
	batch_set(&b->put_batch, key, key_len, b->value, b->value_size, NULL);
	rv = rs_client_commit(b->client, &p->op, 0, NULL, NULL, 0,
			      &b->put_batch, wb_put_done);
	if (rv != RS_OK)
		wb_die("put", rs_strerror(rv));
}

/* Every millisecond: issue the writes that are due by now, the first at
 * once, then one each 1/rate seconds. */
static void wb_tick(uv_timer_t *t)
{
	struct wb *b = t->data;
	double elapsed = (double)(uv_hrtime() - b->t0_ns) / 1e9;
	uint64_t due = (uint64_t)(elapsed * b->rate) + 1;

	if (due > b->n_writes)
		due = b->n_writes;
	while (b->issued < due)
		wb_put(b, ++b->issued);
	assert(b->issued <= b->n_writes);
	if (b->issued == b->n_writes)
		uv_timer_stop(t);
}

/* ---- the run ---- */

static void wb_run_until(struct wb *b, bool (*done)(const struct wb *b),
			 double timeout_s)
{
	uint64_t end = uv_hrtime() + (uint64_t)(timeout_s * 1e9);

	while (!done(b) && uv_hrtime() < end)
		uv_run(&b->loop, UV_RUN_ONCE);
}

static bool wb_barrier_done(const struct wb *b)
{
	return b->puts[0].done &&
	       (b->puts[0].status != RS_OK ||
		b->n_ready + b->n_ended >= b->n_watchers);
}

static bool wb_writes_done(const struct wb *b)
{
	return b->issued == b->n_writes && b->acked == b->n_writes;
}

static bool wb_all_delivered(const struct wb *b)
{
	for (unsigned i = 0; i < b->n_watchers; i++)
		if (!b->ws[i].ended && b->ws[i].last_version < b->max_version)
			return false;
	return true;
}

static int wb_cmp(const void *x, const void *y)
{
	float a = *(const float *)x, c = *(const float *)y;
	return a < c ? -1 : a > c;
}

static double wb_pct(const float *v, size_t n, double p)
{
	return n == 0 ? 0 : v[(size_t)(p * (double)(n - 1) + 0.5)];
}

static double wb_put_p50(const struct wb *b)
{
	float *l = malloc((b->n_writes + 1) * sizeof *l);
	size_t n = 0;
	double r;

	if (l == NULL)
		abort();
	for (uint64_t s = 1; s <= b->n_writes; s++)
		if (b->puts[s].status == RS_OK && b->puts[s].done)
			l[n++] = (float)((double)(b->puts[s].acked_ns -
						  b->puts[s].sent_ns) / 1e6);
	qsort(l, n, sizeof *l, wb_cmp);
	r = wb_pct(l, n, 0.5);
	free(l);
	return r;
}

/* Acknowledged writes a watcher never saw; a watcher that ended early is
 * counted in `ended`, not here. */
static uint64_t wb_lost(const struct wb *b)
{
	uint64_t lost = 0;

	for (unsigned i = 0; i < b->n_watchers; i++) {
		const struct wb_watcher *w = &b->ws[i];
		if (w->ended)
			continue;
		for (uint64_t s = 1; s <= b->n_writes; s++)
			if (b->puts[s].status == RS_OK &&
			    !(w->seen[s / 8] & (1u << (s % 8))))
				lost++;
	}
	return lost;
}

static void wb_closed(void *arg)
{
	(void)arg;
}

static void wb_stop(struct wb *b)
{
	if (b->n_conns == 0) {
		for (unsigned i = 0; i < b->n_watchers; i++)
			rs_client_watch_cancel(b->watch_client, &b->ws[i].op);
	} else {
		b->conns_closing = b->n_conns;
		for (unsigned i = 0; i < b->n_conns; i++)
			rb_conn_close(&b->conns[i].rc);
	}
	for (unsigned i = 0; i < b->n_watchers; i++) {
		if (b->n_conns == 0)
			rs_result_free(&b->ws[i].op.result);
		free(b->ws[i].seen);
	}
	if (b->watch_client != NULL)
		rs_client_close(b->watch_client, wb_closed, NULL);
	rs_client_close(b->client, wb_closed, NULL);
	uv_close((uv_handle_t *)&b->tick, NULL);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uv_loop_close(&b->loop);
}

static void wb_report(struct wb *b)
{
	uint64_t lost = wb_lost(b);
	double per = b->rss0_kib >= 0 && b->rss1_kib >= 0
			     ? (double)(b->rss1_kib - b->rss0_kib) /
				       (double)b->n_watchers
			     : 0;
	double secs = b->secs;

	qsort(b->lat_ms, b->n_lat, sizeof *b->lat_ms, wb_cmp);
	printf("RESULT system=raftstore op=watch watchers=%u conns=%u rate=%.0f "
	       "writes=%" PRIu64 " write_errors=%" PRIu64 " events=%zu secs=%.2f "
	       "events_per_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
	       "put_p50_ms=%.3f lost=%" PRIu64 " reordered=%" PRIu64
	       " duplicated=%" PRIu64 " mismatched=%" PRIu64 " ended=%u "
	       "setup_s=%.2f server_rss_kib=%lld kib_per_watcher=%.1f "
	       "server_cpu_s=%.2f client_cpu_s=%.2f mode=%s\n",
	       b->n_watchers, b->n_conns ? b->n_conns : b->lib_conns, b->rate,
	       b->n_writes, b->write_errors, b->n_lat, secs,
	       secs > 0 ? (double)b->n_lat / secs : 0,
	       wb_pct(b->lat_ms, b->n_lat, 0.50), wb_pct(b->lat_ms, b->n_lat, 0.99),
	       wb_pct(b->lat_ms, b->n_lat, 0.999), wb_put_p50(b), lost,
	       b->reordered, b->duplicated + b->out_of_range, b->mismatched,
	       b->n_ended, b->setup_s, b->rss1_kib, per, b->server_cpu_s,
	       b->client_cpu_s, b->n_conns ? "raw" : "library");
	if (b->n_ended > 0)
		fprintf(stderr, "rsbench watch: %u watches ended early; first: %s\n",
			b->n_ended, b->first_end);
	b->failed = lost || b->reordered || b->duplicated || b->out_of_range ||
		    b->mismatched || b->n_ended || b->n_lat == 0;
}

static void wb_usage(FILE *f)
{
	fprintf(f,
		"usage: rsbench watch --endpoints H:P,... [--watchers W] [--prefix P]\n"
		"  [--rate R] [--duration S] [--conns C] [--keys K] [--value-size B]\n"
		"  [--drain S] [--ready-timeout S] [--server-pids PID,...]\n"
		"  [--lib-conns L]\n"
		"  --conns 0 (default): one client-library watch per watcher, all\n"
		"  on the pooled connections of one client (--lib-conns L, its\n"
		"  `connections`, default 1, at most 256); C > 0: W watches spread\n"
		"  over C raw connections to the leader\n");
}

static int wb_options(struct wb *b, struct rs_client_options *co, int argc,
		      char **argv)
{
	static const struct option opts[] = {
		{"endpoints", required_argument, 0, 'e'},
		{"watchers", required_argument, 0, 'w'},
		{"prefix", required_argument, 0, 'p'},
		{"rate", required_argument, 0, 'r'},
		{"duration", required_argument, 0, 'd'},
		{"conns", required_argument, 0, 'c'},
		{"keys", required_argument, 0, 'k'},
		{"value-size", required_argument, 0, 'v'},
		{"drain", required_argument, 0, 'D'},
		{"ready-timeout", required_argument, 0, 'R'},
		{"server-pids", required_argument, 0, 'P'},
		{"lib-conns", required_argument, 0, 'L'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	const char *prefix = "w/";
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e': co->endpoints = optarg; break;
		case 'w': b->n_watchers = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': prefix = optarg; break;
		case 'r': b->rate = strtod(optarg, NULL); break;
		case 'd': b->duration = strtod(optarg, NULL); break;
		case 'c': b->n_conns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'k': b->n_keys = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'v': b->value_size = strtoul(optarg, NULL, 10); break;
		case 'D': b->drain_s = strtod(optarg, NULL); break;
		case 'R': b->ready_timeout_s = strtod(optarg, NULL); break;
		case 'P': b->server_pids = optarg; break;
		case 'L': b->lib_conns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': wb_usage(stdout); exit(0);
		default: return 2;
		}
	}
	if (co->endpoints == NULL || b->n_watchers == 0 || b->rate <= 0 ||
	    b->duration <= 0 || b->n_keys == 0 || b->n_keys > 10000 ||
	    b->value_size < WB_VALUE_MIN || b->value_size > 65536 ||
	    strlen(prefix) == 0 || strlen(prefix) > WB_PREFIX_MAX ||
	    (unsigned char)prefix[strlen(prefix) - 1] == 0xff ||
	    b->n_conns > b->n_watchers || b->lib_conns == 0 ||
	    b->lib_conns > 256) {
		fprintf(stderr, "rsbench watch: --endpoints is required; counts, "
				"rate and duration must be positive; keys at most "
				"10000; value size 16..65536; conns at most "
				"watchers; lib-conns 1..256; a prefix of 1..64 "
				"bytes\n");
		wb_usage(stderr);
		return 2;
	}
	snprintf(b->prefix, sizeof b->prefix, "%s", prefix);
	b->prefix_len = strlen(prefix);
	return 0;
}

/* Everything the run needs, sized by the options. */
static void wb_init(struct wb *b, const struct rs_client_options *co)
{
	char errmsg[RS_ERRMSG_SIZE];

	b->n_writes = (uint64_t)(b->rate * b->duration);
	if (b->n_writes == 0)
		b->n_writes = 1;
	b->ws = calloc(b->n_watchers, sizeof *b->ws);
	b->puts = calloc(b->n_writes + 1, sizeof *b->puts);
	b->value = malloc(b->value_size);
	if (b->ws == NULL || b->puts == NULL || b->value == NULL)
		abort();
	memset(b->value, 'v', b->value_size);
	for (unsigned i = 0; i < b->n_watchers; i++) {
		b->ws[i].b = b;
		b->ws[i].seen = calloc(b->n_writes / 8 + 1, 1);
		if (b->ws[i].seen == NULL)
			abort();
	}
	batch_init(&b->scratch);
	batch_init(&b->put_batch);
	uv_loop_init(&b->loop);
	uv_timer_init(&b->loop, &b->tick);
	b->tick.data = b;
	if (rs_client_create(&b->client, &b->loop, co, errmsg) != RS_OK)
		wb_die("client", errmsg);
	if (b->n_conns == 0) {
		struct rs_client_options wo = *co;

		wo.connections = b->lib_conns;
		if (rs_client_create(&b->watch_client, &b->loop, &wo, errmsg) !=
		    RS_OK)
			wb_die("client", errmsg);
	}
}

/* Start every watch and pass the barrier; false if some watcher never
 * started.  Reads the servers' RSS before and after. */
static bool wb_setup(struct wb *b, const char *endpoints)
{
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t t0;

	if (rb_find_leader(b->client, &b->loop, b->leader, sizeof b->leader,
			   &b->start_version, errmsg) != RS_OK)
		wb_die(endpoints, errmsg);
	b->rss0_kib = b->server_pids ? rb_rss_kib(b->server_pids) : -1;
	fprintf(stderr, "rsbench watch: %u watchers on %s (%u %s) from "
		"version %" PRIu64 ", %" PRIu64 " writes at %.0f/s\n",
		b->n_watchers, b->leader, b->n_conns ? b->n_conns : b->lib_conns,
		b->n_conns ? "raw connections" : "pooled library connections",
		b->start_version + 1, b->n_writes, b->rate);
	t0 = uv_hrtime();
	if (b->n_conns == 0)
		wb_lib_start(b, b->start_version + 1);
	else
		wb_raw_start(b, b->start_version + 1);
	wb_put(b, 0); /* the barrier */
	wb_run_until(b, wb_barrier_done, b->ready_timeout_s);
	b->setup_s = (double)(uv_hrtime() - t0) / 1e9;
	if (!wb_barrier_done(b) || b->puts[0].status != RS_OK) {
		fprintf(stderr, "rsbench watch: only %u of %u watchers started in "
			"%.0f s\n", b->n_ready, b->n_watchers, b->setup_s);
		return false;
	}
	assert(b->n_ready + b->n_ended == b->n_watchers);
	b->rss1_kib = b->server_pids ? rb_rss_kib(b->server_pids) : -1;
	fprintf(stderr, "rsbench watch: %u watchers ready in %.2f s\n",
		b->n_ready, b->setup_s);
	return true;
}

/* The writes at the fixed rate, and the wait for their last deliveries. */
static void wb_timed(struct wb *b)
{
	uint64_t end;

	b->server_cpu_s = b->server_pids ? rb_servers_cpu_s(b->server_pids) : 0;
	b->client_cpu_s = rb_self_cpu_s();
	b->t0_ns = uv_hrtime();
	uv_timer_start(&b->tick, wb_tick, 0, 1);
	wb_run_until(b, wb_writes_done, b->duration + 60);
	wb_run_until(b, wb_all_delivered, b->drain_s);
	b->client_cpu_s = rb_self_cpu_s() - b->client_cpu_s;
	b->server_cpu_s = b->server_pids
				  ? rb_servers_cpu_s(b->server_pids) - b->server_cpu_s
				  : -1;
	end = b->last_event_ns > b->t0_ns ? b->last_event_ns : uv_hrtime();
	b->secs = (double)(end - b->t0_ns) / 1e9;
	assert(b->issued <= b->n_writes && b->acked <= b->issued);
}

static void wb_free(struct wb *b)
{
	batch_free(&b->scratch);
	batch_free(&b->put_batch);
	free(b->lat_ms);
	free(b->conns);
	free(b->ws);
	free(b->puts);
	free(b->value);
	free(b);
}

int rsbench_watch(int argc, char **argv)
{
	struct rs_client_options co = {.op_timeout_ms = 60000, .connections = 1};
	struct wb *b = malloc(sizeof *b);
	int rv;

	if (b == NULL)
		abort();
	*b = (struct wb){.n_watchers = 100, .rate = 100, .duration = 10,
			 .n_keys = 16, .value_size = 64, .drain_s = 10,
			 .ready_timeout_s = 120, .lib_conns = 1};
	if ((rv = wb_options(b, &co, argc, argv)) != 0)
		return rv;
	rb_raise_fd_limit();
	wb_init(b, &co);
	if (!wb_setup(b, co.endpoints))
		return 1;
	wb_timed(b);
	wb_report(b);
	rv = b->failed ? 1 : 0;
	wb_stop(b);
	wb_free(b);
	return rv;
}
