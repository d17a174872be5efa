/*
 * rsbench cluster: a closed-loop load generator on the client library.
 *
 * --clients closed loops share --conns connections (the client library
 * spreads requests round-robin) on one libuv loop.  Each loop issues one
 * request, waits for the reply, records its latency and issues the next.
 * Output is one line, in the same format as tools/etcdbench, so the two
 * can be printed side by side:
 *
 *   RESULT system=raftstore op=put clients=64 ops=... secs=... ops_per_s=...
 *          p50_ms=... p99_ms=... p999_ms=... client_cpu_s=... errors=...
 *
 * Operations: put (16-byte distinct keys, 256-byte values), get
 * (linearizable), sget (serializable) over --keys preloaded keys.  A
 * value is one byte repeated and a counter, which the proxy's and the
 * snapshot's LZ4 shrink about thirtyfold, or with --values random bytes
 * that do not shrink at all (a state of tokens or certificates).
 *
 * --idle N holds N idle connections to the leader open during the run
 * (each has answered one read version; rsbench_net.c).  With --idle or
 * --server-pids the line ends with the servers' summed RSS after the run,
 * with the idle connections open before it, and the difference the idle
 * connections made, per connection:
 *
 *          idle=N server_rss_kib=... idle_rss_kib=... kib_per_idle_conn=...
 *
 * --timeline FILE (opened before the run) writes every completed request,
 * in completion order, for outage analysis (scripts/bench-recovery.py):
 *
 *   # rsbench timeline v1: done_mono_ns latency_us status
 *   <CLOCK_MONOTONIC ns at completion> <latency in us> <ok or RS_E... name>
 *
 * SIGINT or SIGTERM ends the run early: no new request is issued, the ones
 * in flight complete (or time out, --timeout-ms), and the figures so far
 * are printed and written as for a full run.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "raftstore/client.h"
#include "tools/cliopt.h"
#include "tools/rsbench.h"

#define BENCH_KEY_LEN 16
#define BENCH_VALUE_LEN 256

struct bench;

struct bench_client {
	struct rs_op op;
	struct bench *b;
	uint64_t started_ns;
	uint64_t seq;
	unsigned id;
};

/* One completed request, kept for --timeline. */
struct bench_event {
	uint64_t done_ns;
	uint32_t latency_us;
	int32_t status;
};

struct bench {
	uv_loop_t loop;
	uv_signal_t sigint, sigterm;
	struct rs_client *client;
	const char *op;
	unsigned clients;
	uint64_t keys;
	uint64_t count_max; /* 0: run for duration */
	uint64_t issued, done, errors;
	uint64_t end_ns;
	bool stopping;
	bool stop_on_error; /* the preload: one error ends it */
	double *lat_ms;
	size_t n_lat, cap_lat;
	bool timeline;         /* keep events[] */
	struct bench_event *events;
	size_t n_events, cap_events;
	struct batch batch;
	uint8_t value[BENCH_VALUE_LEN];
	bool random_values;    /* --values random */
	uint64_t rng;
	char prefix[8];
	int last_error;
	char last_message[256];
};

static uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --values random: the value's bytes from the generator (what LZ4 cannot
 * shrink: tokens, hashes, certificates). */
static void bench_fill_random(struct bench *b)
{
	for (size_t i = 0; i < BENCH_VALUE_LEN; i += sizeof b->rng) {
		b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t x = b->rng ^ (b->rng >> 29);
		memcpy(b->value + i, &x,
		       BENCH_VALUE_LEN - i < sizeof x ? BENCH_VALUE_LEN - i
						      : sizeof x);
	}
}

static void bench_key(const struct bench *b, uint64_t i, char *key)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%s%015" PRIu64, b->prefix, i);
	/* Exactly 16 bytes: the prefix plus the low digits of i. */
	size_t pl = strlen(b->prefix);
	memcpy(key, b->prefix, pl);
	memcpy(key + pl, tmp + strlen(tmp) - (BENCH_KEY_LEN - pl),
	       BENCH_KEY_LEN - pl);
}

static void bench_issue(struct bench_client *c);

static void bench_done(struct rs_op *op)
{
	struct bench_client *c = op->data;
	struct bench *b = c->b;
	int st = op->result.status;
	uint64_t done_ns = bench_now_ns();

	b->done++;
	if (b->timeline) {
		if (b->n_events == b->cap_events) {
			b->cap_events = b->cap_events ? b->cap_events * 2 : 1 << 16;
			b->events = realloc(b->events,
					    b->cap_events * sizeof *b->events);
			if (b->events == NULL)
				abort();
		}
		uint64_t lat_us = (done_ns - c->started_ns) / 1000;
		b->events[b->n_events++] = (struct bench_event){
			.done_ns = done_ns,
			.latency_us = lat_us > UINT32_MAX ? UINT32_MAX
							  : (uint32_t)lat_us,
			.status = st == RS_ENOTFOUND ? 0 : st};
	}
	if (st != RS_OK && !(st == RS_ENOTFOUND)) {
		b->errors++;
		b->last_error = st;
		if (b->stop_on_error)
			b->stopping = true;
		snprintf(b->last_message, sizeof b->last_message, "%s",
			 op->result.message);
	} else {
		if (b->n_lat == b->cap_lat) {
			b->cap_lat = b->cap_lat ? b->cap_lat * 2 : 1 << 16;
			b->lat_ms = realloc(b->lat_ms, b->cap_lat * sizeof *b->lat_ms);
			if (b->lat_ms == NULL)
				abort();
		}
		b->lat_ms[b->n_lat++] = (double)(done_ns - c->started_ns) / 1e6;
	}
	rs_result_free(&op->result);
	rs_buf_free(&op->request);
	bench_issue(c);
}

static void bench_issue(struct bench_client *c)
{
	struct bench *b = c->b;
	char key[BENCH_KEY_LEN];
	int rv;

	if (b->stopping || (b->count_max && b->issued >= b->count_max) ||
	    (!b->count_max && bench_now_ns() >= b->end_ns))
		return;
	b->issued++;
	memset(&c->op, 0, sizeof c->op);
	c->op.data = c;
	rs_result_init(&c->op.result);
	c->started_ns = bench_now_ns();
	if (strcmp(b->op, "put") == 0) {
		bench_key(b, b->issued, key);
		if (b->random_values)
			bench_fill_random(b);
		memcpy(b->value, &b->issued, sizeof b->issued);
		batch_reset(&b->batch);
		batch_set(&b->batch, key, BENCH_KEY_LEN, b->value, BENCH_VALUE_LEN,
			  NULL);
		rv = rs_client_commit(b->client, &c->op, 0, NULL, NULL, 0,
				      &b->batch, bench_done);
	} else {
		b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
		bench_key(b, 1 + (b->rng >> 33) % b->keys, key);
		rv = rs_client_get(b->client, &c->op, key, BENCH_KEY_LEN,
				   strcmp(b->op, "sget") == 0 ? WIRE_READ_SERIALIZABLE
							      : WIRE_READ_LINEARIZABLE,
				   0, bench_done);
	}
	if (rv != RS_OK) {
		fprintf(stderr, "rsbench: request failed to start: %s\n",
			rs_strerror(rv));
		exit(1);
	}
}

static int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double bench_pct(const struct bench *b, double p)
{
	size_t i;
	if (b->n_lat == 0)
		return 0;
	i = (size_t)(p * (double)(b->n_lat - 1) + 0.5);
	return b->lat_ms[i];
}

/* Run one phase to completion; returns elapsed seconds. */
static double bench_run(struct bench *b, const char *op, double duration_s,
			uint64_t count)
{
	struct bench_client *cs = calloc(b->clients, sizeof *cs);
	uint64_t t0 = bench_now_ns();

	if (cs == NULL)
		abort();
	b->op = op;
	b->issued = b->done = b->errors = 0;
	b->n_lat = 0;
	b->count_max = count;
	b->stopping = false;
	b->end_ns = t0 + (uint64_t)(duration_s * 1e9);
	for (unsigned i = 0; i < b->clients; i++) {
		cs[i].b = b;
		cs[i].id = i;
		bench_issue(&cs[i]);
	}
	while (b->done < b->issued)
		uv_run(&b->loop, UV_RUN_ONCE);
	free(cs);
	return (double)(bench_now_ns() - t0) / 1e9;
}

static void bench_closed(void *arg)
{
	(void)arg;
}

/* SIGINT/SIGTERM: issue nothing more; bench_run returns once the requests
 * in flight are done. */
static void bench_on_signal(uv_signal_t *h, int signum)
{
	struct bench *b = h->data;
	(void)signum;
	b->stopping = true;
}

static void bench_signals(struct bench *b, bool on)
{
	uv_signal_t *hs[2] = {&b->sigint, &b->sigterm};
	int sigs[2] = {SIGINT, SIGTERM};
	for (int i = 0; i < 2; i++) {
		if (on) {
			uv_signal_init(&b->loop, hs[i]);
			hs[i]->data = b;
			uv_signal_start(hs[i], bench_on_signal, sigs[i]);
			uv_unref((uv_handle_t *)hs[i]);
		} else {
			uv_close((uv_handle_t *)hs[i], NULL);
		}
	}
}

/* --timeline: the events, one line each, to f (opened before the run, so
 * that a bad path fails at once); closes f.  False with errno set. */
static bool bench_write_timeline(const struct bench *b, FILE *f)
{
	int saved;

	fprintf(f, "# rsbench timeline v1: done_mono_ns latency_us status\n");
	for (size_t i = 0; i < b->n_events; i++)
		fprintf(f, "%" PRIu64 " %" PRIu32 " %s\n", b->events[i].done_ns,
			b->events[i].latency_us,
			b->events[i].status == RS_OK
				? "ok"
				: rs_error_name(b->events[i].status));
	if (fflush(f) != 0 || ferror(f)) {
		saved = errno ? errno : EIO;
		fclose(f);
		errno = saved;
		return false;
	}
	return fclose(f) == 0;
}

int rsbench_cluster(int argc, char **argv)
{
	static const struct option opts[] = {
		{"endpoints", required_argument, 0, 'e'},
		{"op", required_argument, 0, 'o'},
		{"clients", required_argument, 0, 'c'},
		{"conns", required_argument, 0, 'n'},
		{"duration", required_argument, 0, 'd'},
		{"keys", required_argument, 0, 'k'},
		{"count", required_argument, 0, 'C'},
		{"prefix", required_argument, 0, 'p'},
		{"idle", required_argument, 0, 'i'},
		{"server-pids", required_argument, 0, 'P'},
		{"timeline", required_argument, 0, 'T'},
		{"timeout-ms", required_argument, 0, 't'},
		{"values", required_argument, 0, 'V'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	struct rs_client_options co = {.op_timeout_ms = 10000};
	struct bench b;
	const char *op = "put", *prefix = NULL, *server_pids = NULL;
	const char *timeline = NULL;
	FILE *timeline_f = NULL;
	uint64_t timeout_ms = 10000;
	int rc;
	struct rb_idle *idle = NULL;
	unsigned n_idle = 0;
	long long rss_before = -1, rss_idle = -1;
	char leader[64];
	double duration = 10, secs, cpu0;
	uint64_t count = 0;
	char errmsg[RS_ERRMSG_SIZE];
	int c;

	memset(&b, 0, sizeof b);
	b.clients = 1;
	b.keys = 10000;
	b.rng = 0x853c49e6748fea9bull;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e': co.endpoints = optarg; break;
		case 'o': op = optarg; break;
		case 'c': b.clients = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'n': co.connections = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': duration = strtod(optarg, NULL); break;
		case 'k': b.keys = strtoull(optarg, NULL, 10); break;
		case 'C': count = strtoull(optarg, NULL, 10); break;
		case 'p': prefix = optarg; break;
		case 'i': n_idle = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'P': server_pids = optarg; break;
		case 'T': timeline = optarg; break;
		case 'V':
			if (strcmp(optarg, "random") != 0 &&
			    strcmp(optarg, "repeat") != 0) {
				fprintf(stderr, "rsbench cluster: --values '%s': "
						"want repeat or random\n", optarg);
				return 2;
			}
			b.random_values = strcmp(optarg, "random") == 0;
			break;
		case 't':
			if (!cliopt_parse_u64(optarg, &timeout_ms) ||
			    timeout_ms == 0 || timeout_ms > 3600000) {
				fprintf(stderr, "rsbench cluster: --timeout-ms '%s': "
						"want 1..3600000\n", optarg);
				return 2;
			}
			break;
		case 'h':
			printf("usage: rsbench cluster --endpoints H:P,... [--op put|get|sget]\n"
			       "  [--clients N] [--conns M] [--duration S] [--keys K]\n"
			       "  [--count N] [--prefix P] [--idle N] [--server-pids PID,...]\n"
			       "  [--timeout-ms MS] [--timeline FILE] [--values repeat|random]\n"
			       "--timeout-ms: per request, retries included (10000)\n"
			       "--values: what a put's 256 bytes hold: repeat (one byte\n"
			       "  and a counter, which compresses; default) or random\n"
			       "  (incompressible)\n"
			       "--timeline: write each completed request: done_mono_ns\n"
			       "  latency_us status (ok, or the error's name: RS_ETIMEOUT)\n"
			       "SIGINT/SIGTERM end the run early; the figures so far are printed.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (co.endpoints == NULL || b.clients == 0 || b.keys == 0 ||
	    (strcmp(op, "put") && strcmp(op, "get") && strcmp(op, "sget"))) {
		fprintf(stderr, "rsbench cluster: --endpoints is required; --op is "
				"put, get or sget; counts must be positive\n");
		return 2;
	}
	if (co.connections == 0)
		co.connections = b.clients < 8 ? b.clients : 8;
	snprintf(b.prefix, sizeof b.prefix, "%s",
		 prefix ? prefix : strcmp(op, "put") == 0 ? "k" : "r");
	memset(b.value, 'v', sizeof b.value);
	co.op_timeout_ms = (unsigned)timeout_ms;
	b.timeline = timeline != NULL;
	if (timeline != NULL && (timeline_f = fopen(timeline, "w")) == NULL) {
		fprintf(stderr, "rsbench cluster: --timeline %s: %s\n", timeline,
			strerror(errno));
		return 1;
	}
	batch_init(&b.batch);
	uv_loop_init(&b.loop);
	if (rs_client_create(&b.client, &b.loop, &co, errmsg) != RS_OK) {
		fprintf(stderr, "rsbench cluster: %s\n", errmsg);
		rc = 1;
		goto out_loop;
	}
	if (strcmp(op, "put") != 0) { /* preload the keys that get reads */
		/* Stop at the first failure: each could take the whole
		 * --timeout-ms, and there are --keys of them. */
		b.stop_on_error = true;
		bench_run(&b, "put", 0, b.keys);
		b.stop_on_error = false;
		if (b.errors > 0) {
			fprintf(stderr, "rsbench cluster: preload failed: %s: %s\n",
				rs_strerror(b.last_error), b.last_message);
			rc = 1;
			goto out;
		}
	}
	rss_before = server_pids ? rb_rss_kib(server_pids) : -1;
	if (n_idle > 0) {
		rb_raise_fd_limit();
		if (rb_find_leader(b.client, &b.loop, leader, sizeof leader, NULL,
				   errmsg) != RS_OK ||
		    rb_idle_open(&idle, &b.loop, leader, n_idle, errmsg) != RS_OK) {
			/* connections half open: exit without closing them */
			fprintf(stderr, "rsbench cluster: %s\n", errmsg);
			return 1;
		}
		fprintf(stderr, "rsbench cluster: %u idle connections open to %s\n",
			n_idle, leader);
	}
	rss_idle = server_pids ? rb_rss_kib(server_pids) : -1;
	cpu0 = rb_self_cpu_s();
	bench_signals(&b, true);
	secs = bench_run(&b, op, duration, count);
	bench_signals(&b, false);
	double cpu = rb_self_cpu_s() - cpu0;
	qsort(b.lat_ms, b.n_lat, sizeof *b.lat_ms, bench_cmp);
	printf("RESULT system=raftstore op=%s clients=%u ops=%zu secs=%.2f "
	       "ops_per_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
	       "client_cpu_s=%.2f errors=%" PRIu64,
	       op, b.clients, b.n_lat, secs, (double)b.n_lat / secs,
	       bench_pct(&b, 0.50), bench_pct(&b, 0.99), bench_pct(&b, 0.999),
	       cpu, b.errors);
	if (n_idle > 0 || server_pids != NULL)
		printf(" idle=%u server_rss_kib=%lld idle_rss_kib=%lld "
		       "kib_per_idle_conn=%.1f", n_idle,
		       server_pids ? rb_rss_kib(server_pids) : -1, rss_idle,
		       n_idle > 0 && rss_before >= 0 && rss_idle >= 0
			       ? (double)(rss_idle - rss_before) / n_idle
			       : 0.0);
	printf("\n");
	if (b.errors > 0)
		fprintf(stderr, "rsbench cluster: %" PRIu64 " errors, last: %s: %s\n",
			b.errors, rs_strerror(b.last_error), b.last_message);
	rc = b.n_lat == 0 ? 1 : 0;
	if (timeline_f != NULL) {
		bool ok = bench_write_timeline(&b, timeline_f);
		timeline_f = NULL;
		if (!ok) {
			fprintf(stderr, "rsbench cluster: --timeline %s: %s\n",
				timeline, strerror(errno));
			rc = 1;
		}
	}
out:
	if (idle != NULL)
		rb_idle_close(idle, &b.loop);
	rs_client_close(b.client, bench_closed, NULL);
out_loop:
	uv_run(&b.loop, UV_RUN_DEFAULT);
	uv_loop_close(&b.loop);
	batch_free(&b.batch);
	free(b.lat_ms);
	free(b.events);
	if (timeline_f != NULL)
		fclose(timeline_f);
	return rc;
}
