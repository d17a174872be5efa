/*
 * Tests for the journal: group commit, reopen and replay, torn tails cut at
 * every offset, bit flips at every byte, garbage tails, corruption and
 * recovery, injected write/fsync faults, simulated crashes, rotation,
 * retention and the segment chain.
 *
 * Reference segments are built here from journal.h's drawing and
 * record_encode_batch, not by the journal, and one test checks that the
 * journal writes exactly those bytes, so the sweeps attack real files.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "storage/fileio.h"
#include "storage/journal.h"
#include "storage/record.h"
#include "tests/unit/testutil.h"

#define REF_RECORDS 5
#define COLLECT_MAX 512

static char *tdir; /* the journal directory of the running test */
static uv_loop_t tloop;

static void setup(void)
{
	fileio_fault_reset();
	tdir = testutil_tmpdir("journal");
	ck_assert_int_eq(uv_loop_init(&tloop), 0);
}

static void teardown(void)
{
	fileio_fault_reset();
	/* Every test must leave nothing running on its loop. */
	ck_assert_int_eq(uv_loop_close(&tloop), 0);
	testutil_rmtree(tdir);
	free(tdir);
}

/* ---- batches and reference segments ---- */

/* The batch at version v: a set derived from v; every fifth carries a
 * 2000-byte compressible value (an LZ4 record); every third a clear. */
static void make_batch(struct batch *b, uint64_t v)
{
	char key[32];
	uint8_t val[2000];
	size_t val_len = v % 5 == 0 ? sizeof val : 8;

	for (size_t i = 0; i < val_len; i++)
		val[i] = (uint8_t)(v % 5 == 0 ? 'a' + i % 7 : v * 31 + i);
	batch_init(b);
	b->version = v;
	b->epoch = v / 10 + 1;
	snprintf(key, sizeof key, "key-%llu", (unsigned long long)v);
	if (batch_set(b, key, strlen(key), val, val_len, NULL) != RS_OK)
		abort();
	if (v % 3 == 0 && batch_clear(b, "gone", 4, NULL) != RS_OK)
		abort();
}

static const char *seg_name(uint64_t seq)
{
	static char name[64];
	snprintf(name, sizeof name, "seg-%016llx.rsj", (unsigned long long)seq);
	return name;
}

static char *seg_path(uint64_t seq)
{
	return testutil_path(tdir, seg_name(seq));
}

static void ref_header(uint8_t *h, uint64_t seq, uint64_t prev,
		       uint32_t format)
{
	memset(h, 0, JOURNAL_HEADER_SIZE);
	memcpy(h, JOURNAL_MAGIC, 8);
	rs_put_u32(h + 8, format);
	rs_put_u64(h + 16, seq);
	rs_put_u64(h + 24, prev);
	rs_put_u32(h + 32, crc32c(h, 32));
}

/* Segment 1 holding versions 1..n; rec[k] is where record k starts,
 * rec[n] the end. */
struct ref {
	struct rs_buf buf;
	size_t rec[REF_RECORDS + 2];
	unsigned n;
};

static void ref_append(struct ref *r, uint64_t v)
{
	struct batch b;

	make_batch(&b, v);
	if (record_encode_batch(&b, &r->buf) != RS_OK)
		abort();
	batch_free(&b);
}

static void ref_build(struct ref *r)
{
	uint8_t h[JOURNAL_HEADER_SIZE];

	rs_buf_init(&r->buf);
	ref_header(h, 1, 0, JOURNAL_FORMAT_VERSION);
	if (rs_buf_append(&r->buf, h, sizeof h) != RS_OK)
		abort();
	r->n = REF_RECORDS;
	for (unsigned k = 0; k < r->n; k++) {
		r->rec[k] = r->buf.len;
		ref_append(r, k + 1);
	}
	r->rec[r->n] = r->buf.len;
}

static void write_seg(uint64_t seq, const void *data, size_t len)
{
	char *path = seg_path(seq);
	testutil_write_file(path, data, len);
	free(path);
}

static uint64_t file_size(uint64_t seq)
{
	struct stat st;
	char *path = seg_path(seq);
	int rv = stat(path, &st);
	free(path);
	return rv == 0 ? (uint64_t)st.st_size : UINT64_MAX;
}

/* ---- opening and replay ---- */

struct collect {
	uint64_t v[COLLECT_MAX];
	unsigned n;
	uint64_t fail_at; /* return RS_EINVAL at this version */
};

/* Every replayed batch must be exactly the one appended at its version. */
static int collect_fn(void *ctx, const struct batch *b)
{
	struct collect *c = ctx;
	struct batch want;

	make_batch(&want, b->version);
	ck_assert_uint_eq(b->epoch, want.epoch);
	ck_assert_uint_eq(b->count, want.count);
	ck_assert_uint_eq(b->body.len, want.body.len);
	ck_assert_mem_eq(b->body.data, want.body.data, want.body.len);
	batch_free(&want);
	if (c->fail_at == b->version)
		return RS_EINVAL;
	ck_assert_uint_lt(c->n, COLLECT_MAX);
	c->v[c->n++] = b->version;
	return RS_OK;
}

static struct journal_options jopts(void)
{
	return (struct journal_options){.dir = tdir,
					.sync = JOURNAL_SYNC_FSYNC};
}

static int jopen(struct journal **j, const struct journal_options *o,
		 uint64_t from, struct collect *c, struct journal_report *r,
		 char *errmsg)
{
	memset(c, 0, sizeof *c);
	return journal_open(j, o->read_only ? NULL : &tloop, o, from,
			    collect_fn, c, r, errmsg);
}

/* The replay saw exactly versions first..first+n-1. */
static void check_run(const struct collect *c, uint64_t first, unsigned n)
{
	ck_assert_uint_eq(c->n, n);
	for (unsigned i = 0; i < n; i++)
		ck_assert_uint_eq(c->v[i], first + i);
}

static void on_closed(void *arg)
{
	*(bool *)arg = true;
}

static void jclose(struct journal *j)
{
	bool done = false;
	journal_close(j, on_closed, &done);
	ck_assert(!done); /* the callback runs on the loop, later */
	uv_run(&tloop, UV_RUN_DEFAULT);
	ck_assert(done);
}

/* Open read-write, check the replay is 1..n with no torn tail, close. */
static void reopen_expect(unsigned n)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_msg(jopen(&j, &o, 0, &c, &r, errmsg) == RS_OK, "%s", errmsg);
	ck_assert(!r.torn && !r.recovered);
	check_run(&c, 1, n);
	ck_assert_uint_eq(r.records, n);
	jclose(j);
}

/* Open read-write, returning how many versions 1..k replayed (a prefix). */
static unsigned reopen_prefix(void)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_msg(jopen(&j, &o, 0, &c, &r, errmsg) == RS_OK, "%s", errmsg);
	check_run(&c, 1, c.n);
	ck_assert_uint_eq(journal_last_version(j), c.n);
	jclose(j);
	return c.n;
}

/* ---- appending ---- */

struct areq {
	struct journal_append_req req;
	int status;
	int order; /* completion order; -1 until completed */
};

static int completions;

static void areq_cb(struct journal_append_req *req, int status)
{
	struct areq *a = req->data;
	ck_assert_int_eq(a->order, -1);
	a->status = status;
	a->order = completions++;
}

/* Queue versions first.. at once (the batches are freed right away, as
 * the contract allows), run the loop until every callback ran. */
static void append_many(struct journal *j, uint64_t first, unsigned n,
			struct areq *a)
{
	struct batch b;

	for (unsigned i = 0; i < n; i++) {
		make_batch(&b, first + i);
		a[i].req.data = &a[i];
		a[i].order = -1;
		ck_assert_int_eq(journal_append(j, &a[i].req, &b, areq_cb),
				 RS_OK);
		batch_free(&b);
	}
	uv_run(&tloop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_ge(a[i].order, 0);
}

static int append_one(struct journal *j, uint64_t v)
{
	struct areq a;
	append_many(j, v, 1, &a);
	return a.status;
}

/* A fresh journal with versions 1..n, one append (and group) each. */
static void build_journal(const struct journal_options *o, unsigned n)
{
	struct journal *j;
	struct journal_report r;
	struct collect c;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_msg(jopen(&j, o, 0, &c, &r, errmsg) == RS_OK, "%s", errmsg);
	for (unsigned v = 1; v <= n; v++)
		ck_assert_int_eq(append_one(j, v), RS_OK);
	jclose(j);
}

/* ---- basic operation ---- */

START_TEST(test_create_empty)
{
	struct journal *j;
	struct journal_report r;
	struct collect c;
	struct journal_options o = jopts();
	char *sub = testutil_path(tdir, "sub");
	char errmsg[RS_ERRMSG_SIZE];

	o.dir = sub; /* created if absent */
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	ck_assert_str_eq(errmsg, "");
	ck_assert_uint_eq(r.segments, 1);
	ck_assert_uint_eq(r.records, 0);
	ck_assert_uint_eq(r.bytes, JOURNAL_HEADER_SIZE);
	ck_assert_uint_eq(journal_segment_count(j), 1);
	ck_assert_uint_eq(journal_last_version(j), 0);
	ck_assert_str_eq(journal_errmsg(j), "");
	jclose(j);
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	ck_assert_uint_eq(r.segments, 1);
	ck_assert(!r.torn);
	jclose(j);
	free(sub);
}
END_TEST

/* The journal writes exactly the bytes journal.h and record.h describe. */
START_TEST(test_bytes_match_reference)
{
	struct journal_options o = jopts();
	struct ref ref;
	uint8_t *data;
	size_t len;
	char *path = seg_path(1);

	ref_build(&ref);
	build_journal(&o, REF_RECORDS);
	data = testutil_read_file(path, &len);
	ck_assert_uint_eq(len, ref.buf.len);
	ck_assert_mem_eq(data, ref.buf.data, len);
	free(data);
	free(path);
	rs_buf_free(&ref.buf);
}
END_TEST

START_TEST(test_append_reopen)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct areq a[30];
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	for (uint64_t v = 1; v <= 10; v++)
		ck_assert_int_eq(append_one(j, v), RS_OK);
	append_many(j, 11, 30, a);
	for (int i = 0; i < 30; i++)
		ck_assert_int_eq(a[i].status, RS_OK);
	ck_assert_uint_eq(journal_last_version(j), 40);
	jclose(j);
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	check_run(&c, 1, 40);
	ck_assert_uint_eq(r.records, 40);
	ck_assert_uint_eq(r.first_version, 1);
	ck_assert_uint_eq(r.last_version, 40);
	ck_assert_uint_eq(r.bytes, file_size(1));
	ck_assert(!r.torn && !r.recovered);
	ck_assert_uint_eq(journal_last_version(j), 40);
	jclose(j);
}
END_TEST

START_TEST(test_group_commit)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct areq a[64];
	unsigned long fsyncs, writes;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	fsyncs = fileio_op_count(FIO_OP_FSYNC);
	writes = fileio_op_count(FIO_OP_WRITE);
	completions = 0;
	append_many(j, 1, 64, a);
	for (int i = 0; i < 64; i++) {
		ck_assert_int_eq(a[i].status, RS_OK);
		ck_assert_int_eq(a[i].order, i); /* completed in order */
		ck_assert_int_eq(a[i].req.status, RS_OK);
	}
	/* The first append goes alone; the other 63 queue behind it and
	 * form the second group: one pwrite and one fsync each. */
	fsyncs = fileio_op_count(FIO_OP_FSYNC) - fsyncs;
	writes = fileio_op_count(FIO_OP_WRITE) - writes;
	ck_assert_uint_le(fsyncs, 4);
	ck_assert_uint_le(writes, 4);
	jclose(j);
	reopen_expect(64);
}
END_TEST

/* No fsync at all under JOURNAL_SYNC_NONE (after creating the segment). */
START_TEST(test_sync_none)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct areq a[16];
	unsigned long fsyncs;
	char errmsg[RS_ERRMSG_SIZE];

	o.sync = JOURNAL_SYNC_NONE;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	fsyncs = fileio_op_count(FIO_OP_FSYNC);
	append_many(j, 1, 16, a);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_FSYNC), fsyncs);
	jclose(j);
	reopen_expect(16);
}
END_TEST

/* Under JOURNAL_SYNC_NONE the worker starts the write-back of each
 * JOURNAL_WRITEBACK_BYTES as the segment fills (all but the last MiB of
 * 3 MiB written); under JOURNAL_SYNC_FSYNC it has no reason to. */
static uint64_t append_large(enum journal_sync sync, uint64_t *written)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct areq a;
	struct batch b;
	static uint8_t val[256 * 1024];
	uint64_t x = 88172645463325252ull, wb;
	char errmsg[RS_ERRMSG_SIZE];

	o.sync = sync;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	*written = 0;
	for (uint64_t v = 1; v <= 12; v++) {
		for (size_t i = 0; i < sizeof val; i++) { /* LZ4 cannot shrink */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			val[i] = (uint8_t)x;
		}
		batch_init(&b);
		b.version = v;
		b.epoch = 1;
		ck_assert_int_eq(batch_set(&b, "big", 3, val, sizeof val, NULL),
				 RS_OK);
		a.req.data = &a;
		a.order = -1;
		ck_assert_int_eq(journal_append(j, &a.req, &b, areq_cb), RS_OK);
		batch_free(&b);
		uv_run(&tloop, UV_RUN_DEFAULT);
		ck_assert_int_eq(a.status, RS_OK);
		*written += sizeof val;
	}
	wb = journal_writeback_bytes(j);
	jclose(j);
	return wb;
}

START_TEST(test_sync_none_starts_write_back)
{
	uint64_t written, wb;

	wb = append_large(JOURNAL_SYNC_NONE, &written);
	ck_assert_uint_ge(wb, written - JOURNAL_WRITEBACK_BYTES);
	ck_assert_uint_le(wb, written + 1024); /* record headers */
}
END_TEST

START_TEST(test_sync_fsync_no_early_write_back)
{
	uint64_t written;

	ck_assert_uint_eq(append_large(JOURNAL_SYNC_FSYNC, &written), 0);
}
END_TEST

START_TEST(test_from_version)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	char errmsg[RS_ERRMSG_SIZE];

	build_journal(&o, 10);
	ck_assert_int_eq(jopen(&j, &o, 6, &c, &r, errmsg), RS_OK);
	check_run(&c, 7, 4);
	ck_assert_uint_eq(r.records, 10); /* all verified, four replayed */
	ck_assert_uint_eq(journal_last_version(j), 10);
	jclose(j);
}
END_TEST

/* A replay error stops the open with that code; nothing is left open. */
START_TEST(test_replay_error)
{
	struct journal *j = (struct journal *)&j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	char errmsg[RS_ERRMSG_SIZE];

	build_journal(&o, 5);
	memset(&c, 0, sizeof c);
	c.fail_at = 3;
	ck_assert_int_eq(journal_open(&j, &tloop, &o, 0, collect_fn, &c, &r,
				      errmsg),
			 RS_EINVAL);
	ck_assert_ptr_null(j);
	check_run(&c, 1, 2);
	ck_assert_ptr_nonnull(strstr(errmsg, "version 3"));
	reopen_expect(5);
}
END_TEST

/* A new journal starts its chain at from_version (the caller's checkpoint). */
START_TEST(test_new_journal_base)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct journal_segment_info *segs;
	struct collect c;
	struct batch b;
	struct areq a;
	unsigned n;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(jopen(&j, &o, 100, &c, &r, errmsg), RS_OK);
	ck_assert_uint_eq(journal_last_version(j), 100);
	make_batch(&b, 100);
	ck_assert_int_eq(journal_append(j, &a.req, &b, areq_cb), RS_EVERSION);
	batch_free(&b);
	ck_assert_int_eq(append_one(j, 101), RS_OK);
	jclose(j);
	ck_assert_int_eq(journal_list_segments(tdir, &segs, &n, errmsg), RS_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(segs[0].prev_version, 100);
	free(segs);
	ck_assert_int_eq(jopen(&j, &o, 100, &c, &r, errmsg), RS_OK);
	check_run(&c, 101, 1);
	jclose(j);
}
END_TEST

START_TEST(test_append_refused)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct batch b;
	struct areq a;
	char errmsg[RS_ERRMSG_SIZE];

	build_journal(&o, 3);
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	make_batch(&b, 3); /* not above the last version */
	ck_assert_int_eq(journal_append(j, &a.req, &b, areq_cb), RS_EVERSION);
	batch_free(&b);
	jclose(j);
	o.read_only = true;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	make_batch(&b, 4);
	ck_assert_int_eq(journal_append(j, &a.req, &b, areq_cb), RS_EINVAL);
	batch_free(&b);
	journal_close_sync(j);
	o.read_only = false;
	ck_assert_int_eq(journal_open(&j, NULL, &o, 0, NULL, NULL, &r, errmsg),
			 RS_EINVAL); /* writable needs a loop */
	reopen_expect(3);
}
END_TEST

/* Close writes the group in flight and every queued append; an append
 * after close is refused with RS_ECLOSED. */
START_TEST(test_close_pending)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct batch b;
	struct areq a[10], late = {0};
	bool done = false;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	for (int i = 0; i < 10; i++) {
		make_batch(&b, (uint64_t)i + 1);
		a[i].req.data = &a[i];
		a[i].order = -1;
		ck_assert_int_eq(journal_append(j, &a[i].req, &b, areq_cb),
				 RS_OK);
		batch_free(&b);
	}
	journal_close(j, on_closed, &done);
	make_batch(&b, 11);
	ck_assert_int_eq(journal_append(j, &late.req, &b, areq_cb), RS_ECLOSED);
	batch_free(&b);
	uv_run(&tloop, UV_RUN_DEFAULT);
	ck_assert(done);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(a[i].status, RS_OK);
	reopen_expect(10);
}
END_TEST

/* Callbacks may append (the next group) and close. */
static struct journal *chain_j;
static struct areq chain_reqs[8];
static int chain_refused;

static void chain_cb(struct journal_append_req *req, int status)
{
	struct areq *a = req->data;
	uint64_t next = req->version + 1;
	struct batch b;

	a->status = status;
	a->order = completions++;
	if (status != RS_OK || next > 8)
		return;
	if (next == 6) {
		journal_close(chain_j, NULL, NULL);
		make_batch(&b, next);
		chain_refused = journal_append(chain_j, &chain_reqs[next - 1].req,
					       &b, chain_cb);
		batch_free(&b);
		return;
	}
	make_batch(&b, next);
	chain_reqs[next - 1].req.data = &chain_reqs[next - 1];
	ck_assert_int_eq(journal_append(chain_j, &chain_reqs[next - 1].req, &b,
					chain_cb),
			 RS_OK);
	batch_free(&b);
}

START_TEST(test_append_from_callback)
{
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct batch b;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(jopen(&chain_j, &o, 0, &c, &r, errmsg), RS_OK);
	make_batch(&b, 1);
	chain_reqs[0].req.data = &chain_reqs[0];
	ck_assert_int_eq(journal_append(chain_j, &chain_reqs[0].req, &b,
					chain_cb),
			 RS_OK);
	batch_free(&b);
	uv_run(&tloop, UV_RUN_DEFAULT); /* closes itself at version 6 */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(chain_reqs[i].status, RS_OK);
	ck_assert_int_eq(chain_refused, RS_ECLOSED);
	reopen_expect(5);
}
END_TEST

/* ---- torn tails: cut the reference segment at every byte ---- */

static size_t ref_len; /* set in main(), for the sweep ranges */

/* Each sweep iteration covers SWEEP_CHUNK offsets: a forked process per
 * byte would cost more than the checks. */
#define SWEEP_CHUNK 8
#define SWEEP_ITERATIONS(len) ((int)(((len) + SWEEP_CHUNK - 1) / SWEEP_CHUNK))

/* Cut the reference segment to `cut` bytes, open, append, reopen. */
static void truncate_check(const struct ref *ref, size_t cut)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	unsigned k = 0;
	char errmsg[RS_ERRMSG_SIZE];

	o.sync = JOURNAL_SYNC_NONE; /* the cut itself is still fsynced */
	while (k < ref->n && ref->rec[k + 1] <= cut)
		k++;
	write_seg(1, ref->buf.data, cut);
	ck_assert_msg(jopen(&j, &o, 0, &c, &r, errmsg) == RS_OK, "cut %zu: %s",
		      cut, errmsg);
	check_run(&c, 1, k);
	ck_assert_uint_eq(r.segments, 1);
	if (cut < JOURNAL_HEADER_SIZE) {
		/* A header cut short: the segment was deleted and made anew. */
		ck_assert(r.torn);
		ck_assert_uint_eq(r.torn_offset, 0);
		ck_assert_uint_eq(r.torn_bytes, cut);
		ck_assert_uint_eq(file_size(1), JOURNAL_HEADER_SIZE);
	} else {
		ck_assert(r.torn == (cut != ref->rec[k]));
		if (r.torn) {
			ck_assert_str_eq(r.torn_file, seg_name(1));
			ck_assert_uint_eq(r.torn_offset, ref->rec[k]);
			ck_assert_uint_eq(r.torn_bytes, cut - ref->rec[k]);
		}
		ck_assert_uint_eq(file_size(1), ref->rec[k]);
	}
	ck_assert_uint_eq(journal_last_version(j), k);
	ck_assert_int_eq(append_one(j, k + 1), RS_OK);
	jclose(j);
	reopen_expect(k + 1);
}

/* Every cut from 0 to the full length: in the header, in any record, on a
 * record boundary. */
START_TEST(test_truncate_every_offset)
{
	struct ref ref;

	ref_build(&ref);
	for (size_t cut = (size_t)_i * SWEEP_CHUNK;
	     cut < (size_t)(_i + 1) * SWEEP_CHUNK && cut <= ref.buf.len; cut++)
		truncate_check(&ref, cut);
	rs_buf_free(&ref.buf);
}
END_TEST

/* ---- a bit flipped at every byte ---- */

/* Open a copy with one bit of byte `at` flipped and check the verdict:
 * flips before the last record are errors; flips in the last record are a
 * torn tail (a length field made shorter may also read as corruption);
 * never a success that replays anything but a correct prefix. */
static void flip_check(const struct ref *ref, size_t at, int bit, bool rw)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	size_t last = ref->rec[ref->n - 1];
	unsigned k = 0;
	char errmsg[RS_ERRMSG_SIZE];
	int rv;

	while (k < ref->n && ref->rec[k + 1] <= at)
		k++;
	ref->buf.data[at] ^= (uint8_t)(1u << bit);
	write_seg(1, ref->buf.data, ref->buf.len);
	ref->buf.data[at] ^= (uint8_t)(1u << bit);
	o.read_only = !rw;
	rv = jopen(&j, &o, 0, &c, &r, errmsg);
	if (at < JOURNAL_HEADER_SIZE) {
		ck_assert_msg(rv == RS_ECORRUPT || rv == RS_EFORMAT,
			      "byte %zu bit %d: %s", at, bit, rs_strerror(rv));
		ck_assert_ptr_nonnull(strstr(errmsg, seg_name(1)));
		ck_assert_uint_eq(c.n, 0);
		return;
	}
	if (at < last || (rv != RS_OK && at >= last + 4 && at < last + 8)) {
		ck_assert_msg(rv == RS_ECORRUPT, "byte %zu bit %d: %s", at, bit,
			      rs_strerror(rv));
		ck_assert_ptr_null(j);
		ck_assert_str_eq(r.bad_file, seg_name(1));
		ck_assert_uint_eq(r.bad_offset, ref->rec[k]);
		ck_assert_uint_eq(r.bad_after_version, k);
		check_run(&c, 1, k);
		return;
	}
	ck_assert_msg(rv == RS_OK, "byte %zu bit %d: %s", at, bit, errmsg);
	ck_assert(r.torn);
	ck_assert_uint_eq(r.torn_offset, last);
	check_run(&c, 1, ref->n - 1);
	if (!rw) {
		journal_close_sync(j);
		ck_assert_uint_eq(file_size(1), ref->buf.len); /* untouched */
		return;
	}
	ck_assert_uint_eq(file_size(1), last);
	ck_assert_int_eq(append_one(j, ref->n), RS_OK);
	jclose(j);
	reopen_expect(ref->n);
}

/* Every bit of every byte, read-only.  Read-write too (cut, append,
 * reopen) at a spread of bytes of the last record; the truncation sweep
 * already runs that path at every offset. */
START_TEST(test_bitflip_every_byte)
{
	struct ref ref;

	ref_build(&ref);
	for (size_t at = (size_t)_i * SWEEP_CHUNK;
	     at < (size_t)(_i + 1) * SWEEP_CHUNK && at < ref.buf.len; at++) {
		for (int bit = 0; bit < 8; bit++)
			flip_check(&ref, at, bit, false);
		size_t last = ref.rec[ref.n - 1];
		if (at >= last && ((at - last) % 9 == 0 || at + 1 == ref.buf.len))
			flip_check(&ref, at, (int)(at % 8), true);
	}
	rs_buf_free(&ref.buf);
}
END_TEST

/* ---- garbage after the last record ---- */

enum garbage_kind {
	GARBAGE_ZERO_1,      /* torn: less than a record header */
	GARBAGE_ZERO_9,      /* torn: a bad all-zero record, then nothing */
	GARBAGE_ZERO_4096,   /* torn: zeros to the end */
	GARBAGE_RANDOM_LONG, /* torn: claims more bytes than the file has */
	GARBAGE_RANDOM_SHORT, /* corrupt: a bad record, then non-zero bytes */
	GARBAGE_HOLE_THEN_RECORD, /* corrupt: zeros, then a valid record */
	GARBAGE_LONG_THEN_RECORD, /* corrupt: a length past the end of the
				     file, but a valid record after it */
	GARBAGE_OLD_VERSION, /* corrupt: a valid record, version not above */
	GARBAGE__COUNT
};

/* The reference segment with garbage of kind `kind` after record 5. */
static void garbage_build(struct ref *ref, int kind)
{
	uint64_t seed = testutil_seed() + (uint64_t)kind;
	uint8_t junk[4096];
	size_t n = sizeof junk;

	ref_build(ref);
	memset(junk, 0, sizeof junk);
	if (kind == GARBAGE_RANDOM_LONG || kind == GARBAGE_RANDOM_SHORT) {
		for (size_t i = 0; i < 200; i++)
			junk[i] = (uint8_t)(testutil_rand(&seed) | 1);
		n = 200;
		/* A length beyond the file, or one that fits (30 bytes). */
		rs_put_u32(junk + 4, kind == GARBAGE_RANDOM_LONG ? 0xfffff0u : 30);
	}
	if (kind == GARBAGE_ZERO_1 || kind == GARBAGE_ZERO_9)
		n = kind == GARBAGE_ZERO_1 ? 1 : 9;
	if (kind == GARBAGE_HOLE_THEN_RECORD)
		n = 100;
	if (kind == GARBAGE_LONG_THEN_RECORD) {
		rs_put_u32(junk + 4, 0xfffff0u); /* would be a cut-short record */
		junk[8] = RECORD_BATCH;
		n = RECORD_HEADER_SIZE;
	}
	if (kind != GARBAGE_OLD_VERSION &&
	    rs_buf_append(&ref->buf, junk, n) != RS_OK)
		abort();
	if (kind == GARBAGE_HOLE_THEN_RECORD || kind == GARBAGE_LONG_THEN_RECORD)
		ref_append(ref, 6);
	if (kind == GARBAGE_OLD_VERSION)
		ref_append(ref, 4);
}

START_TEST(test_garbage_tail)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct ref ref;
	size_t end;
	char errmsg[RS_ERRMSG_SIZE];
	int rv;

	garbage_build(&ref, _i);
	end = ref.rec[ref.n];
	write_seg(1, ref.buf.data, ref.buf.len);
	rv = jopen(&j, &o, 0, &c, &r, errmsg);
	check_run(&c, 1, REF_RECORDS);
	if (_i <= GARBAGE_RANDOM_LONG) {
		ck_assert_msg(rv == RS_OK, "kind %d: %s", _i, errmsg);
		ck_assert(r.torn);
		ck_assert_uint_eq(r.torn_offset, end);
		ck_assert_uint_eq(r.torn_bytes, ref.buf.len - end);
		ck_assert_uint_eq(file_size(1), end);
		ck_assert_int_eq(append_one(j, REF_RECORDS + 1), RS_OK);
		jclose(j);
		reopen_expect(REF_RECORDS + 1);
	} else {
		ck_assert_int_eq(rv, RS_ECORRUPT);
		ck_assert_uint_eq(r.bad_offset, end);
		ck_assert_uint_eq(r.bad_after_version, REF_RECORDS);
		ck_assert_uint_eq(file_size(1), ref.buf.len); /* untouched */
	}
	rs_buf_free(&ref.buf);
}
END_TEST

/* A valid record whose version does not increase is corruption, even as the
 * very last record: its checksum proves it was written that way. */
START_TEST(test_nonincreasing_version)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct ref ref;
	char errmsg[RS_ERRMSG_SIZE];

	garbage_build(&ref, GARBAGE_OLD_VERSION);
	write_seg(1, ref.buf.data, ref.buf.len);
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(errmsg, "does not increase"));
	o.recover = true;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	ck_assert(r.recovered && !r.torn);
	check_run(&c, 1, REF_RECORDS);
	jclose(j);
	reopen_expect(REF_RECORDS);
	rs_buf_free(&ref.buf);
}
END_TEST

/* ---- headers and the chain ---- */

START_TEST(test_bad_format_version)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct ref ref;
	char errmsg[RS_ERRMSG_SIZE];

	ref_build(&ref);
	ref_header(ref.buf.data, 1, 0, 2); /* a valid header of format 2 */
	write_seg(1, ref.buf.data, ref.buf.len);
	o.recover = true; /* recovery never deletes a newer format */
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_EFORMAT);
	ck_assert_ptr_nonnull(strstr(errmsg, seg_name(1)));
	ck_assert_ptr_nonnull(strstr(errmsg, "format version 2"));
	ck_assert_str_eq(r.bad_file, seg_name(1));
	ck_assert_uint_eq(file_size(1), ref.buf.len);
	rs_buf_free(&ref.buf);
}
END_TEST

START_TEST(test_bad_magic)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct ref ref;
	char errmsg[RS_ERRMSG_SIZE];

	ref_build(&ref);
	memcpy(ref.buf.data, "NOTAJRNL", 8);
	write_seg(1, ref.buf.data, ref.buf.len);
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(errmsg, seg_name(1)));
	ck_assert_ptr_nonnull(strstr(errmsg, "magic"));
	rs_buf_free(&ref.buf);
}
END_TEST

/* A journal of n segments, one record each (segment_size_max 1). */
static struct journal_options tiny_opts(void)
{
	struct journal_options o = jopts();
	o.segment_size_max = 1;
	return o;
}

START_TEST(test_missing_middle_segment)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = tiny_opts();
	struct collect c;
	char *path = seg_path(3);
	char errmsg[RS_ERRMSG_SIZE];

	build_journal(&o, 5);
	ck_assert_int_eq(unlink(path), 0);
	o.recover = true; /* a gap is not repaired by recovery */
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_EGAP);
	ck_assert_ptr_nonnull(strstr(errmsg, seg_name(2)));
	ck_assert_ptr_nonnull(strstr(errmsg, seg_name(4)));
	ck_assert_str_eq(r.bad_file, seg_name(4));
	ck_assert_uint_eq(r.bad_after_version, 2);
	free(path);
}
END_TEST

/* The last segment's header short or zero: a crash during rotation. */
START_TEST(test_torn_header)
{
	static const size_t sizes[] = {0, 1, 20, 39, 40, 300};
	struct journal *j;
	struct journal_report r;
	struct journal_options o = tiny_opts();
	struct collect c;
	uint8_t zeros[300] = {0};
	char errmsg[RS_ERRMSG_SIZE];

	build_journal(&o, 3);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		write_seg(4, zeros, sizes[i]);
		o.read_only = true; /* reported, left alone */
		ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
		ck_assert(r.torn);
		ck_assert_str_eq(r.torn_file, seg_name(4));
		ck_assert_uint_eq(r.torn_bytes, sizes[i]);
		ck_assert_uint_eq(file_size(4), sizes[i]);
		journal_close_sync(j);
		o.read_only = false;
		ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
		ck_assert(r.torn && r.torn_offset == 0);
		check_run(&c, 1, 3);
		ck_assert_uint_eq(journal_segment_count(j), 3);
		ck_assert_uint_eq(file_size(4), UINT64_MAX); /* deleted */
		jclose(j);
	}
	/* Anywhere but last, a short header is corruption. */
	write_seg(4, zeros, 20);
	write_seg(5, zeros, 20);
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(errmsg, seg_name(4)));
}
END_TEST

/* ---- corruption in the middle, and recovery ---- */

START_TEST(test_mid_corruption_recover)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = tiny_opts();
	struct collect c;
	char *path = seg_path(3);
	uint64_t size[7];
	uint8_t *data;
	size_t len;
	char errmsg[RS_ERRMSG_SIZE], want[64];

	build_journal(&o, 6);
	for (unsigned i = 1; i <= 6; i++)
		size[i] = file_size(i);
	data = testutil_read_file(path, &len);
	data[JOURNAL_HEADER_SIZE + 12] ^= 0x40; /* in record 3's payload */
	testutil_write_file(path, data, len);
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_ECORRUPT);
	snprintf(want, sizeof want, "offset %u", JOURNAL_HEADER_SIZE);
	ck_assert_ptr_nonnull(strstr(errmsg, seg_name(3)));
	ck_assert_ptr_nonnull(strstr(errmsg, want));
	ck_assert_ptr_nonnull(strstr(errmsg, "after version 2"));
	ck_assert_str_eq(r.bad_file, seg_name(3));
	ck_assert_uint_eq(r.bad_offset, JOURNAL_HEADER_SIZE);
	ck_assert_uint_eq(r.bad_after_version, 2);
	for (unsigned i = 1; i <= 6; i++)
		ck_assert_uint_eq(file_size(i), size[i]); /* nothing touched */
	o.recover = true;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	ck_assert(r.recovered && !r.torn);
	ck_assert_uint_eq(r.recovered_segments, 3);
	ck_assert_uint_eq(r.recovered_bytes, size[3] - JOURNAL_HEADER_SIZE +
						     size[4] + size[5] + size[6]);
	check_run(&c, 1, 2);
	ck_assert_uint_eq(journal_segment_count(j), 3);
	ck_assert_uint_eq(file_size(3), JOURNAL_HEADER_SIZE);
	ck_assert_uint_eq(file_size(4), UINT64_MAX);
	ck_assert_int_eq(append_one(j, 3), RS_OK);
	jclose(j);
	reopen_expect(3);
	free(data);
	free(path);
}
END_TEST

/* Corruption inside the last segment, with records after it. */
START_TEST(test_corruption_in_last_segment_recover)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct ref ref;
	char errmsg[RS_ERRMSG_SIZE];

	ref_build(&ref);
	ref.buf.data[ref.rec[1] + 2] ^= 1; /* record 2's checksum */
	write_seg(1, ref.buf.data, ref.buf.len);
	o.read_only = true;
	o.recover = true; /* read-only: report what would be cut */
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	ck_assert(r.recovered);
	ck_assert_uint_eq(r.recovered_bytes, ref.buf.len - ref.rec[1]);
	ck_assert_uint_eq(file_size(1), ref.buf.len);
	journal_close_sync(j);
	o.read_only = false;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	ck_assert(r.recovered && r.recovered_segments == 0);
	ck_assert_uint_eq(r.recovered_bytes, ref.buf.len - ref.rec[1]);
	check_run(&c, 1, 1);
	ck_assert_uint_eq(file_size(1), ref.rec[1]);
	jclose(j);
	reopen_expect(1);
	rs_buf_free(&ref.buf);
}
END_TEST

/* read_only never changes a file and works without a loop. */
START_TEST(test_read_only_untouched)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	struct ref ref;
	uint8_t *data;
	size_t len;
	char *path = seg_path(1);
	char errmsg[RS_ERRMSG_SIZE];

	ref_build(&ref);
	write_seg(1, ref.buf.data, ref.buf.len - 3); /* torn */
	o.read_only = true;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	ck_assert(r.torn);
	ck_assert_uint_eq(r.torn_bytes, ref.buf.len - 3 - ref.rec[4]);
	check_run(&c, 1, 4);
	ck_assert_uint_eq(journal_last_version(j), 4);
	journal_close_sync(j);
	data = testutil_read_file(path, &len);
	ck_assert_uint_eq(len, ref.buf.len - 3);
	ck_assert_mem_eq(data, ref.buf.data, len);
	free(data);
	free(path);
	path = testutil_path(tdir, "absent");
	o.dir = path;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_ENOTFOUND);
	free(path);
	rs_buf_free(&ref.buf);
}
END_TEST

/* ---- faults ---- */

/* _i: bit 0 picks the op (write, fsync), bit 1 the errno (EIO, ENOSPC),
 * bits 2.. the countdown N - 1. */
START_TEST(test_fault_countdown)
{
	enum fileio_op op = _i & 1 ? FIO_OP_FSYNC : FIO_OP_WRITE;
	int err = _i & 2 ? ENOSPC : EIO;
	unsigned n = (unsigned)(_i >> 2) + 1, k;
	struct journal *j;
	struct journal_report r;
	struct journal_options o = jopts();
	struct collect c;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	fileio_fault_set(op, n, err);
	for (uint64_t v = 1; v <= 6; v++)
		ck_assert_int_eq(append_one(j, v),
				 v < n ? RS_OK : rs_error_from_errno(err));
	ck_assert_int_eq(rs_error_from_errno(err),
			 err == ENOSPC ? RS_ENOSPC : RS_EIO);
	ck_assert_ptr_nonnull(strstr(journal_errmsg(j),
				     op == FIO_OP_WRITE ? "write" : "fsync"));
	jclose(j);
	fileio_fault_reset();
	/* A failed write leaves nothing; a failed fsync leaves the record
	 * in the file (written, never acknowledged).  Either is a prefix. */
	k = reopen_prefix();
	ck_assert_uint_eq(k, op == FIO_OP_WRITE ? n - 1 : n);
}
END_TEST

/* Faults while rotating: _i picks op (open, write, fsync), N and sync. */
START_TEST(test_fault_rotation)
{
	static const enum fileio_op ops[] = {FIO_OP_OPEN, FIO_OP_WRITE,
					     FIO_OP_FSYNC};
	unsigned n = (unsigned)(_i / 3) % 5 + 1, ok = 0, k;
	struct journal *j;
	struct journal_report r;
	struct journal_options o = tiny_opts();
	struct collect c;
	int first_err = RS_OK, st;
	char errmsg[RS_ERRMSG_SIZE];

	o.sync = _i >= 15 ? JOURNAL_SYNC_NONE : JOURNAL_SYNC_FSYNC;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	fileio_fault_set(ops[_i % 3], n, EIO);
	for (uint64_t v = 1; v <= 6; v++) {
		st = append_one(j, v);
		if (first_err == RS_OK && st == RS_OK)
			ok++;
		else if (first_err == RS_OK)
			first_err = st;
		ck_assert_int_eq(st, first_err); /* fail-stop */
	}
	jclose(j);
	fileio_fault_reset();
	k = reopen_prefix();
	ck_assert_uint_ge(k, ok);
	ck_assert_uint_le(k, ok + 1);
	o.sync = JOURNAL_SYNC_FSYNC;
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	ck_assert_int_eq(append_one(j, k + 1), RS_OK);
	jclose(j);
	reopen_expect(k + 1);
}
END_TEST

/* ---- crashes ---- */

/* Open again with sync and segment size of o, append versions from..10. */
static void append_session(struct journal_options o, uint64_t from)
{
	struct journal *j;
	struct journal_report r;
	struct collect c;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_msg(jopen(&j, &o, 0, &c, &r, errmsg) == RS_OK, "%s", errmsg);
	check_run(&c, 1, (unsigned)from - 1);
	for (uint64_t v = from; v <= 10; v++)
		ck_assert_int_eq(append_one(j, v), RS_OK);
	jclose(j);
}

/* _i: 0 FSYNC; 1 NONE; 2 FSYNC, then a NONE session; 3 NONE with
 * rotation; 4 a NONE session, then an FSYNC session that rotates (the
 * first session's records must be made durable by the second's open). */
START_TEST(test_crash_simulation)
{
	struct journal_options o = _i == 3 ? tiny_opts() : jopts();
	struct journal_segment_info *segs;
	unsigned n, expect;
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t dropped;

	fileio_track_start();
	o.sync = _i == 1 || _i >= 3 ? JOURNAL_SYNC_NONE : JOURNAL_SYNC_FSYNC;
	build_journal(&o, _i == 2 || _i == 4 ? 5 : 10);
	expect = _i == 1 ? 0 : _i == 2 ? 5 : 10;
	if (_i == 2) {
		o.sync = JOURNAL_SYNC_NONE;
		append_session(o, 6);
	}
	if (_i == 4) {
		o = tiny_opts();
		append_session(o, 6);
	}
	if (_i == 3) {
		/* Rotation synced every segment but the active one. */
		ck_assert_int_eq(journal_list_segments(tdir, &segs, &n, errmsg),
				 RS_OK);
		ck_assert_uint_eq(n, 10);
		expect = (unsigned)segs[n - 1].prev_version;
		free(segs);
	}
	dropped = fileio_crash_simulate();
	ck_assert(_i == 0 || _i == 4 ? dropped == 0 : dropped > 0);
	reopen_expect(expect);
}
END_TEST

/* ---- rotation and retention ---- */

START_TEST(test_rotation_retention)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = tiny_opts();
	struct journal_segment_info *segs;
	struct collect c;
	unsigned n;
	char errmsg[RS_ERRMSG_SIZE];

	build_journal(&o, 8);
	ck_assert_int_eq(journal_list_segments(tdir, &segs, &n, errmsg), RS_OK);
	ck_assert_uint_eq(n, 8);
	for (unsigned i = 0; i < n; i++) {
		ck_assert_uint_eq(segs[i].seq, i + 1);
		ck_assert_str_eq(segs[i].name, seg_name(i + 1));
		ck_assert_uint_eq(segs[i].prev_version, i); /* the chain */
		ck_assert_uint_gt(segs[i].size, JOURNAL_HEADER_SIZE);
	}
	free(segs);
	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	check_run(&c, 1, 8);
	ck_assert_uint_eq(r.segments, 8);
	/* Covered: segments 1..5; keep the newest two of those. */
	ck_assert_int_eq(journal_retain(j, 5, 2, errmsg), RS_OK);
	ck_assert_uint_eq(journal_segment_count(j), 5);
	ck_assert_uint_eq(file_size(3), UINT64_MAX);
	ck_assert_uint_ne(file_size(4), UINT64_MAX);
	/* Everything covered: only the active segment stays. */
	ck_assert_int_eq(journal_retain(j, UINT64_MAX, 0, errmsg), RS_OK);
	ck_assert_uint_eq(journal_segment_count(j), 1);
	ck_assert_uint_ne(file_size(8), UINT64_MAX);
	ck_assert_int_eq(append_one(j, 9), RS_OK); /* rotates to segment 9 */
	ck_assert_uint_eq(journal_segment_count(j), 2);
	jclose(j);
	ck_assert_int_eq(jopen(&j, &o, 7, &c, &r, errmsg), RS_OK);
	check_run(&c, 8, 2);
	ck_assert_uint_eq(r.first_version, 8);
	ck_assert_uint_eq(journal_last_version(j), 9);
	jclose(j);
}
END_TEST

/* One group larger than the limit is never split. */
START_TEST(test_rotation_group)
{
	struct journal *j;
	struct journal_report r;
	struct journal_options o = tiny_opts();
	struct collect c;
	struct areq a[20];
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(jopen(&j, &o, 0, &c, &r, errmsg), RS_OK);
	append_many(j, 1, 20, a);
	/* Group one (version 1) fills segment 1, group two (2..20) goes to
	 * segment 2 whole. */
	ck_assert_uint_eq(journal_segment_count(j), 2);
	jclose(j);
	reopen_expect(20);
}
END_TEST

START_TEST(test_list_ignores_strangers)
{
	static const char *strangers[] = {
		"seg-000000000000000A.rsj", "seg-1.rsj", "seg-0000000000000002.rsj~",
		"notes.txt", "seg-0000000000000000.rsj"};
	struct journal_options o = jopts();
	struct journal_segment_info *segs;
	unsigned n;
	char errmsg[RS_ERRMSG_SIZE];

	build_journal(&o, 2);
	for (size_t i = 0; i < sizeof strangers / sizeof strangers[0]; i++) {
		char *p = testutil_path(tdir, strangers[i]);
		testutil_write_file(p, "x", 1);
		free(p);
	}
	ck_assert_int_eq(journal_list_segments(tdir, &segs, &n, errmsg), RS_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(segs[0].size, file_size(1));
	free(segs);
	reopen_expect(2);
}
END_TEST

/* ---- runner ---- */

static TCase *tcase(Suite *s, const char *name)
{
	return testutil_tcase(s, name, setup, teardown, 60);
}

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase(s, "basic");

	tcase_add_test(tc, test_create_empty);
	tcase_add_test(tc, test_bytes_match_reference);
	tcase_add_test(tc, test_append_reopen);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_sync_none);
	tcase_add_test(tc, test_sync_none_starts_write_back);
	tcase_add_test(tc, test_sync_fsync_no_early_write_back);
	tcase_add_test(tc, test_from_version);
	tcase_add_test(tc, test_replay_error);
	tcase_add_test(tc, test_new_journal_base);
	tcase_add_test(tc, test_append_refused);
	tcase_add_test(tc, test_close_pending);
	tcase_add_test(tc, test_append_from_callback);
	tc = tcase(s, "torn");
	tcase_add_loop_test(tc, test_truncate_every_offset, 0,
			    SWEEP_ITERATIONS(ref_len + 1));
	tcase_add_loop_test(tc, test_bitflip_every_byte, 0,
			    SWEEP_ITERATIONS(ref_len));
	tcase_add_loop_test(tc, test_garbage_tail, 0, GARBAGE__COUNT);
	tcase_add_test(tc, test_nonincreasing_version);
	tc = tcase(s, "corrupt");
	tcase_add_test(tc, test_bad_format_version);
	tcase_add_test(tc, test_bad_magic);
	tcase_add_test(tc, test_missing_middle_segment);
	tcase_add_test(tc, test_torn_header);
	tcase_add_test(tc, test_mid_corruption_recover);
	tcase_add_test(tc, test_corruption_in_last_segment_recover);
	tcase_add_test(tc, test_read_only_untouched);
	tc = tcase(s, "faults");
	tcase_add_loop_test(tc, test_fault_countdown, 0, 16);
	tcase_add_loop_test(tc, test_fault_rotation, 0, 30);
	tcase_add_loop_test(tc, test_crash_simulation, 0, 5);
	tc = tcase(s, "segments");
	tcase_add_test(tc, test_rotation_retention);
	tcase_add_test(tc, test_rotation_group);
	tcase_add_test(tc, test_list_ignores_strangers);
	return s;
}

int main(void)
{
	struct ref ref;
	SRunner *sr;
	int failed;

	ref_build(&ref); /* the sweeps cover every byte of it */
	ref_len = ref.buf.len;
	rs_buf_free(&ref.buf);
	sr = srunner_create(journal_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
