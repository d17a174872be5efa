/*
 * rsbench: raftstore's benchmark driver.  It prints figures; it asserts
 * nothing.  Subcommands:
 *
 *   rsbench storage [--dir D] [--quick]
 *       journal appends/s and MB/s with fsync on (100 B and 1 KiB records,
 *       1 and 64 closed-loop appenders), replay speed for 1M records, and
 *       index memory for 1M keys (16-byte keys, 256-byte values).
 *   rsbench fill --dir D [--records N] [--segment-size BYTES]
 *       create a store holding N batches with a checkpoint half way, for
 *       tests and demos of `rsctl log`.
 *   rsbench cluster --endpoints H:P,... [--op put|get|sget] ...
 *       closed-loop load on a running cluster (tools/rsbench_cluster.c).
 *   rsbench watch --endpoints H:P,... --watchers W --rate R ...
 *       watch fan-out: delivery rate and latency, nothing lost or
 *       reordered (tools/rsbench_watch.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/lib/rs_error.h"
#include "storage/journal.h"
#include "storage/mvcc.h"
#include "storage/store.h"
#include "tools/rsbench.h"

#define EXIT_USAGE 2

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rv, const char *errmsg)
{
	fprintf(stderr, "rsbench: %s: %s%s%s\n", what, rs_strerror(rv),
		errmsg && *errmsg ? ": " : "", errmsg ? errmsg : "");
	exit(1);
}

static void rm_rf(const char *path)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "rsbench: could not remove %s\n", path);
}

/* ---- journal append benchmark ---- */

struct appender {
	struct journal_append_req req;
	struct append_bench *bench;
};

struct append_bench {
	struct journal *j;
	struct batch batch;
	uint64_t next_version;
	uint64_t done;
	uint64_t target;
	uint64_t issued;
	int error;
};

static void append_issue(struct appender *a);

static void append_done(struct journal_append_req *req, int status)
{
	struct appender *a = req->data;
	struct append_bench *b = a->bench;
	if (status != RS_OK && b->error == 0)
		b->error = status;
	b->done++;
	append_issue(a);
}

static void append_issue(struct appender *a)
{
	struct append_bench *b = a->bench;
	int rv;
	if (b->issued >= b->target || b->error)
		return;
	b->batch.version = ++b->next_version;
	a->req.data = a;
	rv = journal_append(b->j, &a->req, &b->batch, append_done);
	if (rv != RS_OK)
		die("journal_append", rv, NULL);
	b->issued++;
}

/* One run: `appenders` closed-loop clients appending `record_bytes` values
 * for `seconds`; prints a line. */
static void bench_append(const char *base, size_t record_bytes, int appenders,
			 double seconds)
{
	char dir[4096], errmsg[RS_ERRMSG_SIZE];
	struct journal_options jo = {.dir = dir, .sync = JOURNAL_SYNC_FSYNC};
	struct journal_report rep;
	struct append_bench b = {0};
	struct appender *as = calloc((size_t)appenders, sizeof *as);
	uv_loop_t loop;
	uint8_t *val = malloc(record_bytes);
	double t0, t;
	int rv;

	snprintf(dir, sizeof dir, "%s/append-%zu-%d", base, record_bytes,
		 appenders);
	uv_loop_init(&loop);
	rv = journal_open(&b.j, &loop, &jo, 0, NULL, NULL, &rep, errmsg);
	if (rv != RS_OK)
		die("journal_open", rv, errmsg);
	for (size_t i = 0; i < record_bytes; i++)
		val[i] = (uint8_t)(rand() & 0xff); /* incompressible */
	batch_init(&b.batch);
	/* A 16-byte key plus the value; record_bytes is the value size. */
	batch_set(&b.batch, "bench-key-000001", 16, val, record_bytes, NULL);
	b.target = UINT64_MAX;
	t0 = now_s();
	for (int i = 0; i < appenders; i++) {
		as[i].bench = &b;
		append_issue(&as[i]);
	}
	while ((t = now_s()) - t0 < seconds && !b.error)
		uv_run(&loop, UV_RUN_ONCE);
	b.target = b.issued; /* stop issuing, drain */
	while (b.done < b.issued)
		uv_run(&loop, UV_RUN_ONCE);
	t = now_s() - t0;
	if (b.error)
		die("append", b.error, NULL);
	printf("append  fsync=on  value=%5zuB  appenders=%3d  %9.0f records/s  "
	       "%7.1f MB/s  (%" PRIu64 " records in %.2fs)\n",
	       record_bytes, appenders, (double)b.done / t,
	       (double)b.done * (double)(record_bytes + 16 + 9 + 16 + 14) / t / 1e6,
	       b.done, t);
	journal_close(b.j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	batch_free(&b.batch);
	free(val);
	free(as);
	rm_rf(dir);
}

/* ---- replay benchmark ---- */

static int count_replay(void *ctx, const struct batch *b)
{
	(*(uint64_t *)ctx)++;
	(void)b;
	return 0;
}

static void fill_appended(struct journal_append_req *req, int status)
{
	if (status != RS_OK)
		die("journal append", status, NULL);
	(void)req;
}

static void fill_journal(const char *dir, uint64_t records)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct journal_options jo = {.dir = dir, .sync = JOURNAL_SYNC_NONE};
	struct journal_report rep;
	struct journal *j;
	struct journal_append_req *reqs;
	struct batch b;
	uv_loop_t loop;
	uint8_t key[16], val[100];
	const uint64_t chunk = 10000;

	uv_loop_init(&loop);
	if (journal_open(&j, &loop, &jo, 0, NULL, NULL, &rep, errmsg) != RS_OK)
		die("journal_open", RS_EIO, errmsg);
	reqs = calloc(chunk, sizeof *reqs);
	memset(val, 'v', sizeof val);
	batch_init(&b);
	for (uint64_t v = 1; v <= records;) {
		for (uint64_t i = 0; i < chunk && v <= records; i++, v++) {
			batch_reset(&b);
			b.version = v;
			snprintf((char *)key, sizeof key, "k%014" PRIu64, v);
			memcpy(val, &v, sizeof v);
			batch_set(&b, key, 16, val, sizeof val, NULL);
			if (journal_append(j, &reqs[i], &b, fill_appended) != RS_OK)
				die("journal_append", RS_EIO, NULL);
		}
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	journal_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	batch_free(&b);
	free(reqs);
}

static void bench_replay(const char *base, uint64_t records)
{
	char dir[4096], errmsg[RS_ERRMSG_SIZE];
	struct journal_options jo = {.dir = dir, .read_only = true};
	struct journal_report rep;
	struct journal *j;
	uint64_t n = 0;
	double t0, t;

	snprintf(dir, sizeof dir, "%s/replay", base);
	fill_journal(dir, records);
	/* Drop the page cache's advantage?  We cannot as non-root portable;
	 * the figure is for a warm cache, which is what a restart sees for a
	 * recently written journal. */
	t0 = now_s();
	if (journal_open(&j, NULL, &jo, 0, count_replay, &n, &rep, errmsg) !=
	    RS_OK)
		die("journal_open", RS_EIO, errmsg);
	t = now_s() - t0;
	journal_close_sync(j);
	printf("replay  %" PRIu64 " records (16B keys, 100B values, %.0f MB): "
	       "%.2fs  %9.0f records/s  (verify, decode)\n",
	       n, (double)rep.bytes / 1e6, t, (double)n / t);
	rm_rf(dir);
}

/* ---- index memory ---- */

static void bench_index(uint64_t keys)
{
	struct mvcc *m = mvcc_create(1000000);
	struct batch b;
	uint8_t key[16], val[256];
	struct mallinfo2 before = mallinfo2(), after;
	double t0 = now_s(), t;
	const uint64_t per_batch = 100;
	uint64_t v = 0;

	memset(val, 'x', sizeof val);
	batch_init(&b);
	for (uint64_t i = 0; i < keys;) {
		batch_reset(&b);
		b.version = ++v;
		for (uint64_t k = 0; k < per_batch && i < keys; k++, i++) {
			/* Spread keys (not sequential) like hashed ids. */
			uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull;
			memcpy(key, &h, 8);
			memcpy(key + 8, &i, 8);
			memcpy(val, &i, 8);
			batch_set(&b, key, 16, val, sizeof val, NULL);
		}
		if (mvcc_apply(m, &b) != RS_OK)
			die("mvcc_apply", RS_EINVAL, NULL);
	}
	t = now_s() - t0;
	after = mallinfo2();
	double raw = (double)keys * (16 + 256);
	double mem = (double)mvcc_memory_bytes(m);
	double heap = (double)(after.uordblks + after.hblkhd) -
		      (double)(before.uordblks + before.hblkhd);
	printf("index   %" PRIu64 " keys (16B keys, 256B values): raw %.1f MB, "
	       "index %.1f MB (%.2fx raw), heap growth %.1f MB (%.2fx raw); "
	       "load %.2fs\n",
	       mvcc_key_count(m), raw / 1e6, mem / 1e6, mem / raw, heap / 1e6,
	       heap / raw, t);
	batch_free(&b);
	mvcc_destroy(m);
}

static int cmd_storage(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, 0, 'd'},
					     {"quick", no_argument, 0, 'q'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	const char *base = NULL;
	char tmpl[] = "/tmp/rsbench-XXXXXX";
	int quick = 0, c;
	double secs;
	uint64_t n;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': base = optarg; break;
		case 'q': quick = 1; break;
		case 'h':
			printf("usage: rsbench storage [--dir DIR] [--quick]\n");
			return 0;
		default: return EXIT_USAGE;
		}
	}
	if (base == NULL && (base = mkdtemp(tmpl)) == NULL) {
		perror("rsbench: mkdtemp");
		return 1;
	}
	secs = quick ? 0.5 : 3.0;
	n = quick ? 100000 : 1000000;
	printf("rsbench storage: dir %s, %ld cores\n", base,
	       sysconf(_SC_NPROCESSORS_ONLN));
	bench_append(base, 100, 1, secs);
	bench_append(base, 1024, 1, secs);
	bench_append(base, 100, 64, secs);
	bench_append(base, 1024, 64, secs);
	bench_replay(base, n);
	bench_index(n);
	if (base == tmpl)
		rm_rf(base);
	return 0;
}

/* ---- fill: a store with known content ---- */

struct fill_wait {
	int done;
	int status;
};

static void fill_apply_cb(struct store_apply_req *req, int status)
{
	struct fill_wait *w = req->data;
	w->done = 1;
	w->status = status;
}

static void fill_ckpt_cb(void *arg, int status, uint64_t version)
{
	struct fill_wait *w = arg;
	(void)version;
	w->done = 1;
	w->status = status;
}

static void fill_one(struct store *s, uv_loop_t *loop, uint64_t v)
{
	struct store_apply_req req;
	struct fill_wait w = {0, 0};
	struct batch b;
	char k[32], val[64];
	int rv;

	batch_init(&b);
	b.version = v;
	b.epoch = 1 + v / 100;
	snprintf(k, sizeof k, "key/%06" PRIu64, v % 50);
	snprintf(val, sizeof val, "value-%" PRIu64, v);
	batch_set(&b, k, strlen(k), val, strlen(val), NULL);
	if (v % 7 == 0) {
		snprintf(k, sizeof k, "key/%06" PRIu64, (v + 3) % 50);
		batch_clear(&b, k, strlen(k), NULL);
	}
	req.data = &w;
	rv = store_apply(s, &req, &b, fill_apply_cb);
	if (rv != RS_OK)
		die("store_apply", rv, NULL);
	while (!w.done)
		uv_run(loop, UV_RUN_ONCE);
	if (w.status != RS_OK)
		die("store_apply", w.status, NULL);
	batch_free(&b);
}

static int cmd_fill(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, 0, 'd'},
		{"records", required_argument, 0, 'n'},
		{"segment-size", required_argument, 0, 's'},
		{0, 0, 0, 0}};
	struct store_options so = {.sync = JOURNAL_SYNC_FSYNC};
	struct store_open_report rep;
	struct fill_wait w = {0, 0};
	char errmsg[RS_ERRMSG_SIZE];
	struct store *s;
	uv_loop_t loop;
	uint64_t n = 200;
	int c, rv;

	so.segment_size_max = 4096;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': so.dir = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 's': so.segment_size_max = strtoull(optarg, NULL, 10); break;
		default: return EXIT_USAGE;
		}
	}
	if (so.dir == NULL || n == 0) {
		fprintf(stderr, "usage: rsbench fill --dir DIR [--records N] "
				"[--segment-size BYTES]\n");
		return EXIT_USAGE;
	}
	uv_loop_init(&loop);
	rv = store_open(&s, &loop, &so, &rep, errmsg);
	if (rv != RS_OK)
		die("open", rv, errmsg);
	uint64_t base = store_applied_version(s);
	for (uint64_t v = 1; v <= n; v++) {
		fill_one(s, &loop, base + v);
		if (v == n / 2) {
			store_checkpoint(s, fill_ckpt_cb, &w);
			while (!w.done)
				uv_run(&loop, UV_RUN_ONCE);
			if (w.status != RS_OK)
				die("checkpoint", w.status,
				    store_checkpoint_errmsg(s));
		}
	}
	printf("filled %s: versions %" PRIu64 "..%" PRIu64 "\n", so.dir,
	       base + 1, base + n);
	store_close(s, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rsbench COMMAND [OPTIONS]\n"
		"  storage [--dir DIR] [--quick]   storage engine figures\n"
		"  fill --dir DIR [--records N] [--segment-size BYTES]\n"
		"                                  create a store with test data\n"
		"  cluster --endpoints H:P,... [--op put|get|sget] [--clients N]\n"
		"          [--conns M] [--duration S] [--keys K] [--count N]\n"
		"          [--idle N] [--server-pids PID,...] [--timeout-ms MS]\n"
		"          [--timeline FILE]\n"
		"                                  closed-loop load on a cluster\n"
		"  watch --endpoints H:P,... [--watchers W] [--rate R] [--conns C]\n"
		"          [--duration S] [--prefix P] [--server-pids PID,...]\n"
		"                                  watch fan-out, checked deliveries\n"
		"exit codes: 0 ok, 1 failure, 2 usage error\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "storage") == 0)
		return cmd_storage(argc - 1, argv + 1);
	if (strcmp(argv[1], "fill") == 0)
		return cmd_fill(argc - 1, argv + 1);
	if (strcmp(argv[1], "cluster") == 0)
		return rsbench_cluster(argc - 1, argv + 1);
	if (strcmp(argv[1], "watch") == 0)
		return rsbench_watch(argc - 1, argv + 1);
	fprintf(stderr, "rsbench: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
