/*
 * Tests for raftstore/raftseg: c-raft 0.15's segment files, checked and
 * repaired before c-raft opens them.
 *
 * The segments are real. Before the suite runs, a single-node c-raft
 * (raft_uv on a temporary directory, TCP transport on an ephemeral port)
 * applies IMG_ENTRIES entries of 8..512 bytes, some several to a batch,
 * with 64 KiB segments so that the image has closed segments as well. The
 * directory is copied while the node still runs, once every apply has
 * completed: that is what a crash leaves behind, open-N segments included
 * (a clean raft_close would close them all). Every test works on its own
 * copy of that image (the checked fixture).
 *
 * The tests carry their own decoder and their own bitwise checksum ("td_"
 * below), written from the format drawn in raftseg.h rather than from
 * raftseg.c, so that the document, the module and the files c-raft wrote
 * are checked against one another.
 *
 * Cuts: the open segment is cut at every byte offset from 0 to 40 bytes
 * past its data, in memory (raftseg_scan); and at about 50 offsets through
 * the files (around the format field and around the boundaries of five
 * batches), each then repaired, started with raft_start and read back.
 * Flips: every bit of the last, a middle and the first batch, and of the
 * format field; every bit of the first and last batches of a closed
 * segment and one bit in 64 in between.
 *
 * What c-raft 0.15 does with the same damage without the module is shown
 * by the "craft" test case, in child processes (it aborts).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <raft.h>
#include <raft/uv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/raftseg.h"
#include "storage/fileio.h"
#include "tests/unit/testutil.h"

#define IMG_ENTRIES 300
#define IMG_SEGMENT_SIZE (64 * 1024)
#define IMG_BATCHES_MAX 512
#define IMG_NAMES_MAX 16
#define CUTS_MAX 56 /* 2 + 5 * 10 + 2 */

/* ------------------------------------------------------------------ */
/* The test's own reading of the format (raftseg.h)                     */
/* ------------------------------------------------------------------ */

static uint32_t td_crc(const uint8_t *p, size_t n)
{
	uint32_t c = 0;

	for (size_t i = 0; i < n; i++) {
		c ^= (uint32_t)p[i] << 24;
		for (int b = 0; b < 8; b++)
			c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
	}
	return c;
}

static uint64_t td_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t td_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Walk the batches of a whole segment, checking both checksums of each:
 * the number of batches; ends[k] is where batch k+1 ends, counts[k] its
 * entries. Stops at the end of the file or at an entry count of 0. */
static size_t td_walk(const uint8_t *d, size_t len, size_t *ends,
		      unsigned *counts, size_t max)
{
	size_t off = 8, nb = 0;

	ck_assert_uint_ge(len, 8);
	ck_assert_uint_eq(td_u64(d), 1);
	while (off + 16 <= len && td_u64(d + off + 8) != 0) {
		uint64_t n = td_u64(d + off + 8), data = 0;
		size_t head = 16 + 16 * n;
		for (uint64_t i = 0; i < n; i++)
			data += td_u32(d + off + 16 + 16 * i + 12);
		ck_assert_uint_eq(td_crc(d + off + 8, head - 8), td_u32(d + off));
		ck_assert_uint_eq(td_crc(d + off + head, data), td_u32(d + off + 4));
		ck_assert_uint_lt(nb, max);
		off += head + data;
		ends[nb] = off;
		counts[nb++] = (unsigned)n;
	}
	return nb;
}

/* ------------------------------------------------------------------ */
/* Entries: what the image's node applied                               */
/* ------------------------------------------------------------------ */

static size_t entry_len(uint64_t seq)
{
	return 8 * (1 + (seq * 2654435761u >> 7) % 64); /* 8..512 */
}

static void entry_fill(uint64_t seq, uint8_t *p, size_t len)
{
	for (size_t j = 0; j < len; j++)
		p[j] = (uint8_t)(seq * 131 + j * 7 + (j >> 3));
	memcpy(p, &seq, sizeof seq);
}

/* Entry index (1 = the bootstrap configuration) as c-raft loaded it. */
static void entry_verify(raft_index index, const struct raft_entry *e)
{
	uint8_t want[512];
	uint64_t seq = index - 2;

	if (index == 1) {
		ck_assert_int_eq(e->type, RAFT_CHANGE);
		return;
	}
	ck_assert_int_eq(e->type, RAFT_COMMAND);
	ck_assert_uint_eq(e->buf.len, entry_len(seq));
	entry_fill(seq, want, e->buf.len);
	ck_assert_msg(memcmp(e->buf.base, want, e->buf.len) == 0,
		      "entry %llu: payload differs", (unsigned long long)index);
}

/* ------------------------------------------------------------------ */
/* A c-raft node on a directory                                         */
/* ------------------------------------------------------------------ */

struct tnode {
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raft raft;
	unsigned done;
	int status;
};

static int tnode_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
			   void **result)
{
	*result = NULL;
	return 0;
}

static void tnode_open(struct tnode *t, const char *dir, size_t segment_size)
{
	memset(t, 0, sizeof *t);
	if (uv_loop_init(&t->loop) != 0 ||
	    raft_uv_tcp_init(&t->transport, &t->loop) != 0 ||
	    raft_uv_init(&t->io, &t->loop, dir, &t->transport) != 0) {
		fprintf(stderr, "raft_uv on %s failed\n", dir);
		abort();
	}
	if (segment_size)
		raft_uv_set_segment_size(&t->io, segment_size);
	t->fsm.version = 1;
	t->fsm.apply = tnode_fsm_apply;
	if (raft_init(&t->raft, &t->io, &t->fsm, 1, "127.0.0.1:0") != 0)
		abort();
	t->raft.data = t;
}

static void tnode_close_cb(struct raft *r)
{
	((struct tnode *)r->data)->done++;
}

/* Close everything; the loop must close cleanly. */
static void tnode_close(struct tnode *t)
{
	t->done = 0;
	raft_close(&t->raft, tnode_close_cb);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	if (t->done != 1)
		abort();
	raft_uv_close(&t->io);
	raft_uv_tcp_close(&t->transport);
	if (uv_loop_close(&t->loop) != 0)
		abort();
}

/* raft_start on dir: c-raft's result, and its last index when it started. */
static int tnode_start(const char *dir, raft_index *last, char *msg)
{
	struct tnode t;
	int rv;

	tnode_open(&t, dir, 0);
	rv = raft_start(&t.raft);
	*last = rv == 0 ? raft_last_index(&t.raft) : 0;
	if (msg != NULL)
		snprintf(msg, RAFT_ERRMSG_BUF_SIZE, "%s", rv ? raft_errmsg(&t.raft) : "");
	tnode_close(&t);
	return rv;
}

static void tnode_io_closed(struct raft_io *io)
{
	(void)io;
}

/* Free what io->load returned: entries share their batches. */
static void entries_free(struct raft_entry *entries, size_t n)
{
	void *batch = NULL;

	for (size_t i = 0; i < n; i++)
		if (entries[i].batch != batch)
			raft_free(batch = entries[i].batch);
	raft_free(entries);
}

/* Load dir's log with raft_uv alone and verify every entry in it; the
 * number of entries. */
static size_t tnode_load_verify(const char *dir)
{
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_snapshot *snap = NULL;
	struct raft_entry *entries = NULL;
	raft_index start = 0;
	raft_term term;
	raft_id vote;
	size_t n = 0;

	memset(&io, 0, sizeof io);
	memset(&transport, 0, sizeof transport);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(raft_uv_tcp_init(&transport, &loop), 0);
	ck_assert_int_eq(raft_uv_init(&io, &loop, dir, &transport), 0);
	ck_assert_int_eq(io.init(&io, 1, "127.0.0.1:0"), 0);
	ck_assert_msg(io.load(&io, &term, &vote, &snap, &start, &entries, &n) == 0,
		      "load %s: %s", dir, io.errmsg);
	ck_assert_ptr_null(snap);
	ck_assert_uint_eq(start, 1);
	for (size_t i = 0; i < n; i++)
		entry_verify(start + i, &entries[i]);
	entries_free(entries, n);
	io.close(&io, tnode_io_closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	raft_uv_close(&io);
	raft_uv_tcp_close(&transport);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	return n;
}

/* ------------------------------------------------------------------ */
/* The image                                                            */
/* ------------------------------------------------------------------ */

static struct img {
	char *dir;			 /* the crash image */
	char open_name[256];		 /* its open segment with data */
	uint8_t *open;			 /* that segment's bytes */
	size_t open_len;		 /* its (preallocated) size */
	size_t ends[IMG_BATCHES_MAX + 1]; /* ends[0] = 8; ends[k]: batch k */
	unsigned counts[IMG_BATCHES_MAX + 1]; /* counts[k]: batch k's entries */
	size_t nb;			 /* batches in it */
	uint64_t open_first;		 /* index of its first entry */
	uint64_t last_index;		 /* of the whole log */
	char closed_big[256];		 /* the largest closed segment */
	size_t cuts[CUTS_MAX];		 /* offsets test_cut_repair uses */
	int ncuts;
} img;

static void img_apply_cb(struct raft_apply *req, int status, void *result)
{
	struct tnode *t = req->data;

	if (status != 0)
		t->status = status;
	t->done++;
	free(req);
}

/* Apply entries seq.. (n of them) in one request: one batch. */
static void img_apply(struct tnode *t, uint64_t seq, unsigned n)
{
	struct raft_buffer bufs[4];
	struct raft_apply *req = malloc(sizeof *req);

	if (req == NULL || n > 4)
		abort();
	for (unsigned i = 0; i < n; i++) {
		bufs[i].len = entry_len(seq + i);
		bufs[i].base = raft_malloc(bufs[i].len);
		if (bufs[i].base == NULL)
			abort();
		entry_fill(seq + i, bufs[i].base, bufs[i].len);
	}
	req->data = t;
	if (raft_apply(&t->raft, req, bufs, n, img_apply_cb) != 0)
		abort();
}

static void img_wait(struct tnode *t, unsigned want)
{
	while (t->done < want)
		uv_run(&t->loop, UV_RUN_ONCE);
	if (t->status != 0)
		abort();
}

/* Copy one file; no Check calls (it runs in img_run's child too). */
static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[8192];
	size_t n;

	if (in == NULL || out == NULL)
		abort();
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			abort();
	if (ferror(in) || fclose(out) != 0)
		abort();
	fclose(in);
}

static void copy_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *e;
	char src[4096], dst[4096];

	if (d == NULL)
		abort();
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(src, sizeof src, "%s/%s", from, e->d_name);
		snprintf(dst, sizeof dst, "%s/%s", to, e->d_name);
		copy_file(src, dst);
	}
	closedir(d);
}

/* Run the node and take the crash image. */
static void img_run(const char *run)
{
	struct raft_configuration conf;
	struct tnode t;
	uint64_t seq = 0;
	unsigned reqs = 0;

	tnode_open(&t, run, IMG_SEGMENT_SIZE);
	raft_configuration_init(&conf);
	if (raft_configuration_add(&conf, 1, "127.0.0.1:0", RAFT_VOTER) != 0 ||
	    raft_bootstrap(&t.raft, &conf) != 0 || raft_start(&t.raft) != 0 ||
	    raft_state(&t.raft) != RAFT_LEADER)
		abort();
	raft_configuration_close(&conf);
	while (seq < IMG_ENTRIES) {
		unsigned n = reqs % 5 == 2 ? 3 : 1;
		n = seq + n > IMG_ENTRIES ? 1 : n;
		img_apply(&t, seq, n);
		seq += n;
		if (++reqs % 16 == 0) /* let some writes go out alone */
			img_wait(&t, reqs);
	}
	img_wait(&t, reqs);
	copy_dir(run, img.dir);
	tnode_close(&t);
}

/* Decode the image with td_walk: the open segment with data, the closed
 * segments' checksums, the indexes. */
static void img_decode(void)
{
	DIR *d = opendir(img.dir);
	struct dirent *e;
	uint64_t closed_end = 0;
	size_t big = 0;

	while ((e = readdir(d)) != NULL) {
		unsigned long long a, b;
		char *p = testutil_path(img.dir, e->d_name);
		size_t len, ends[IMG_BATCHES_MAX];
		unsigned counts[IMG_BATCHES_MAX];
		uint8_t *data = NULL;
		if (sscanf(e->d_name, "%llu-%llu", &a, &b) == 2) {
			data = testutil_read_file(p, &len);
			td_walk(data, len, ends, counts, IMG_BATCHES_MAX);
			closed_end = b > closed_end ? b : closed_end;
			if (len > big) {
				big = len;
				snprintf(img.closed_big, sizeof img.closed_big, "%s", e->d_name);
			}
		} else if (strncmp(e->d_name, "open-", 5) == 0) {
			data = testutil_read_file(p, &len);
			if (len >= 8 && td_u64(data) == 1) {
				ck_assert_ptr_null(img.open); /* exactly one */
				snprintf(img.open_name, sizeof img.open_name, "%s", e->d_name);
				img.open = data, img.open_len = len, data = NULL;
			}
		}
		free(data);
		free(p);
	}
	closedir(d);
	ck_assert_ptr_nonnull(img.open);
	img.ends[0] = 8;
	img.nb = td_walk(img.open, img.open_len, img.ends + 1, img.counts + 1,
			 IMG_BATCHES_MAX);
	img.open_first = closed_end + 1;
	img.last_index = closed_end;
	for (size_t k = 1; k <= img.nb; k++)
		img.last_index += img.counts[k];
}

/* Entries in the open segment's first k batches. */
static uint64_t img_entries(size_t k)
{
	uint64_t n = 0;
	for (size_t i = 1; i <= k; i++)
		n += img.counts[i];
	return n;
}

/* The cut offsets for test_cut_repair: around the format field, at and
 * around the boundaries of some batches, and after the last one. */
static void img_pick_cuts(void)
{
	const size_t picks[] = {1, 2, img.nb / 2, img.nb - 1, img.nb};
	const size_t deltas[] = {1, 7, 8, 15, 16, 17, 24, 40};
	size_t data_end = img.ends[img.nb];

	img.cuts[img.ncuts++] = 3;
	img.cuts[img.ncuts++] = 8;
	for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++) {
		size_t start = img.ends[picks[i] - 1], end = img.ends[picks[i]];
		img.cuts[img.ncuts++] = start;
		for (size_t j = 0; j < sizeof deltas / sizeof deltas[0]; j++)
			if (start + deltas[j] < end)
				img.cuts[img.ncuts++] = start + deltas[j];
		img.cuts[img.ncuts++] = end - 1;
	}
	img.cuts[img.ncuts++] = data_end + 8;  /* a short zero tail */
	img.cuts[img.ncuts++] = data_end + 16; /* a zero preamble */
	if (img.ncuts > CUTS_MAX)
		abort();
}

static void img_build(void)
{
	char *run = testutil_tmpdir("raftseg-run");

	int status;
	pid_t pid;

	img.dir = testutil_tmpdir("raftseg-img");
	/* In a child: libuv's thread pool must not exist in the process that
	 * Check forks the tests from (its exit handler crashes in them). */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		img_run(run);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the image's node failed (status %d)", status);
	testutil_rmtree(run);
	free(run);
	img_decode();
	ck_assert_uint_ge(img.nb, 20);
	img_pick_cuts();
	fprintf(stderr, "image: %s holds %zu batches (%" PRIu64 " entries) in "
		"bytes 8..%zu of %zu; last index %" PRIu64 "; %d cuts through "
		"the files\n", img.open_name, img.nb, img_entries(img.nb),
		img.ends[img.nb], img.open_len, img.last_index, img.ncuts);
}

/* ------------------------------------------------------------------ */
/* Fixture and helpers                                                  */
/* ------------------------------------------------------------------ */

static char *dir;

static void setup(void)
{
	dir = testutil_tmpdir("raftseg");
	copy_dir(img.dir, dir);
}

static void teardown(void)
{
	testutil_rmtree(dir);
	free(dir);
	dir = NULL;
}

static char *seg_path(const char *name)
{
	return testutil_path(dir, name);
}

static void seg_write(const char *name, const uint8_t *data, size_t len)
{
	char *p = seg_path(name);
	testutil_write_file(p, data, len);
	free(p);
}

/* A copy of the open segment's bytes (caller frees). */
static uint8_t *open_copy(void)
{
	uint8_t *d = malloc(img.open_len);
	ck_assert_ptr_nonnull(d);
	memcpy(d, img.open, img.open_len);
	return d;
}

/* The same with one bit flipped. */
static uint8_t *open_flipped(size_t bit)
{
	uint8_t *d = open_copy();
	d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	return d;
}

static enum raftseg_verdict scan_open(const uint8_t *d, size_t len,
				      struct raftseg_info *info)
{
	memset(info, 0, sizeof *info);
	ck_assert_uint_lt(strlen(img.open_name), sizeof info->name);
	memcpy(info->name, img.open_name, strlen(img.open_name) + 1);
	info->is_open = true;
	info->first_index = img.open_first;
	return raftseg_scan(d, len, info);
}

static const struct raftseg_info *rep_find(const struct raftseg_report *rep,
					   const char *name)
{
	for (size_t i = 0; i < rep->n; i++)
		if (strcmp(rep->segs[i].name, name) == 0)
			return &rep->segs[i];
	ck_abort_msg("no segment %s in the report", name);
	return NULL;
}

/* Check, repair, check again, start c-raft and read the log back: it must
 * hold exactly want_last entries, all of them intact. */
static void repair_and_start(uint64_t want_last)
{
	struct raftseg_report rep;
	char errmsg[RS_ERRMSG_SIZE] = "", msg[RAFT_ERRMSG_BUF_SIZE];
	raft_index last = 0;
	int rv = raftseg_check_dir(dir, &rep, errmsg);

	ck_assert_msg(rv == RS_OK || rv == RS_ETORN, "check: %s", errmsg);
	ck_assert_int_eq(raftseg_repair(dir, &rep, errmsg), RS_OK);
	ck_assert_uint_eq(rep.repairs, 0);
	raftseg_report_free(&rep);
	ck_assert_msg(raftseg_check_dir(dir, &rep, errmsg) == RS_OK,
		      "after repair: %s", errmsg);
	raftseg_report_free(&rep);
	ck_assert_msg(tnode_start(dir, &last, msg) == 0, "raft_start: %s", msg);
	ck_assert_uint_eq(last, want_last);
	ck_assert_uint_eq(tnode_load_verify(dir), want_last);
}

/* ------------------------------------------------------------------ */
/* The checksum and the clean image                                     */
/* ------------------------------------------------------------------ */

START_TEST(test_crc)
{
	uint64_t rng = testutil_seed();
	uint8_t buf[512];

	ck_assert_uint_eq(raftseg_crc32(0, "123456789", 9), 0x89A1897Fu);
	ck_assert_uint_eq(td_crc((const uint8_t *)"123456789", 9), 0x89A1897Fu);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)testutil_rand(&rng);
	for (size_t len = 0; len <= 300; len++) {
		size_t at = len % 8, split = len / 3;
		uint32_t whole = raftseg_crc32(0, buf + at, len);
		ck_assert_uint_eq(whole, td_crc(buf + at, len));
		ck_assert_uint_eq(raftseg_crc32(raftseg_crc32(0, buf + at, split),
						buf + at + split, len - split),
				  whole);
	}
}
END_TEST

/* The clean image: every segment clean, indexes right; nothing changed. */
START_TEST(test_clean_image)
{
	struct raftseg_report rep;
	char errmsg[RS_ERRMSG_SIZE] = "";
	const struct raftseg_info *o;
	size_t closed = 0, unused = 0;

	fileio_fault_reset();
	ck_assert_msg(raftseg_check_dir(dir, &rep, errmsg) == RS_OK, "%s", errmsg);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_WRITE) +
				  fileio_op_count(FIO_OP_TRUNCATE) +
				  fileio_op_count(FIO_OP_FSYNC),
			  0);
	ck_assert_int_eq(rep.verdict, RAFTSEG_CLEAN);
	ck_assert_uint_eq(rep.repairs, 0);
	for (size_t i = 0; i < rep.n; i++) {
		const struct raftseg_info *s = &rep.segs[i];
		ck_assert_int_eq(s->verdict, RAFTSEG_CLEAN);
		ck_assert_str_eq(s->why, "");
		if (!s->is_open) {
			closed++;
			ck_assert_uint_eq(s->entries, s->end_index - s->first_index + 1);
			ck_assert_uint_eq(s->valid_end, s->size_bytes);
			ck_assert(i == 0 || rep.segs[i - 1].end_index + 1 == s->first_index);
		}
		unused += s->unused;
	}
	ck_assert_uint_ge(closed, 2);
	ck_assert_uint_ge(unused, 1);
	o = rep_find(&rep, img.open_name);
	ck_assert_uint_eq(o->batches, img.nb);
	ck_assert_uint_eq(o->entries, img_entries(img.nb));
	ck_assert_uint_eq(o->valid_end, img.ends[img.nb]);
	ck_assert_uint_eq(o->first_index, img.open_first);
	ck_assert_uint_eq(o->end_index, img.last_index);
	ck_assert(!o->unused && !o->needs_repair);
	raftseg_report_free(&rep);
	repair_and_start(img.last_index); /* a no-op repair; all entries load */
}
END_TEST

/* ------------------------------------------------------------------ */
/* Cuts                                                                 */
/* ------------------------------------------------------------------ */

/* Where the batch holding offset c starts: k with ends[k] <= c < ends[k+1]
 * (k = nb past the data). */
static size_t batch_before(size_t c)
{
	size_t k = 0;
	while (k < img.nb && img.ends[k + 1] <= c)
		k++;
	return k;
}

/* The verdict at a cut at every offset from 0 to past the data, in
 * memory: torn, or clean at a batch boundary; never corrupt. */
START_TEST(test_cut_every_offset)
{
	size_t data_end = img.ends[img.nb];

	for (size_t c = 0; c <= data_end + 40; c++) {
		struct raftseg_info info;
		size_t k = batch_before(c);
		enum raftseg_verdict v = scan_open(img.open, c, &info);
		bool boundary = c >= 8 && img.ends[k] == c;

		ck_assert_msg(v != RAFTSEG_CORRUPT, "cut at %zu: %s", c, info.why);
		ck_assert_uint_eq(info.size_bytes, c);
		if (c == 0) {
			ck_assert(v == RAFTSEG_CLEAN && info.unused && !info.needs_repair);
		} else if (c < 8) {
			ck_assert(v == RAFTSEG_TORN && info.needs_repair);
			ck_assert_uint_eq(info.valid_end, 0);
		} else if (boundary || c >= data_end) {
			ck_assert_msg(v == RAFTSEG_CLEAN, "cut at %zu: %s", c, info.why);
			ck_assert_uint_eq(info.batches, k);
			/* c-raft reads 16 bytes at a boundary: fewer fail */
			ck_assert(info.needs_repair ==
				  (k == 0 || (c > data_end && c < data_end + 16)));
		} else {
			ck_assert_msg(v == RAFTSEG_TORN, "cut at %zu: %s", c, info.why);
			ck_assert(info.needs_repair);
			ck_assert_uint_eq(info.batches, k);
			ck_assert_uint_eq(info.bad_offset, img.ends[k]);
			ck_assert_uint_eq(info.bad_batch, k + 1);
		}
		if (c >= 8) {
			ck_assert_uint_eq(info.valid_end, img.ends[k]);
			ck_assert_uint_eq(info.entries, img_entries(k));
		}
	}
}
END_TEST

/* A cut through the files, repaired: c-raft starts and every entry before
 * the cut is there, intact. */
START_TEST(test_cut_repair)
{
	size_t c, k;
	char *p;

	if (_i >= img.ncuts)
		return; /* fewer cuts than slots: small batches */
	c = img.cuts[_i];
	k = batch_before(c);
	p = seg_path(img.open_name);
	ck_assert_int_eq(truncate(p, (off_t)c), 0);
	free(p);
	repair_and_start(img.open_first - 1 + img_entries(k));
}
END_TEST

/* What check_dir reports for a cut, and what the repair does on disk. */
START_TEST(test_cut_report)
{
	struct raftseg_report rep;
	char errmsg[RS_ERRMSG_SIZE] = "", want[64];
	size_t k = img.nb / 2, c = img.ends[k] + 20;
	char *p = seg_path(img.open_name);
	const struct raftseg_info *o;
	struct stat st;

	ck_assert_int_eq(truncate(p, (off_t)c), 0);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ETORN);
	snprintf(want, sizeof want, "torn tail at byte %zu (entry %" PRIu64 ",",
		 img.ends[k], img.open_first + img_entries(k));
	ck_assert_msg(strstr(errmsg, want) && strstr(errmsg, img.open_name) &&
			      strstr(errmsg, dir),
		      "%s", errmsg);
	o = rep_find(&rep, img.open_name);
	ck_assert(o->verdict == RAFTSEG_TORN && o->needs_repair);
	fileio_fault_reset();
	ck_assert_int_eq(raftseg_repair(dir, &rep, errmsg), RS_OK);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_TRUNCATE), 1);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_FSYNC), 2); /* file, dir */
	ck_assert(o->repaired && o->verdict == RAFTSEG_CLEAN && !o->needs_repair);
	ck_assert_uint_eq(o->cut_bytes, c - img.ends[k]);
	ck_assert_uint_eq(o->size_bytes, img.ends[k]);
	/* the report still says what was cut, for the log */
	ck_assert_uint_eq(o->bad_offset, img.ends[k]);
	ck_assert_uint_eq(o->bad_index, img.open_first + img_entries(k));
	ck_assert_msg(strstr(o->why, "cut short") != NULL, "%s", o->why);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq((size_t)st.st_size, img.ends[k]);
	raftseg_report_free(&rep);
	free(p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Flipped bits                                                         */
/* ------------------------------------------------------------------ */

/* Is byte o, in the batch that starts at start, part of its count or of
 * an entry's length: the fields that say where the batch ends? */
static bool in_length_field(size_t start, size_t o)
{
	size_t n = img.counts[batch_before(start) + 1];

	if (o >= start + 8 && o < start + 16)
		return true;
	for (size_t i = 0; i < n; i++)
		if (o >= start + 16 + 16 * i + 12 && o < start + 16 + 16 * i + 16)
			return true;
	return false;
}

/* Every bit of the last batch: never clean; torn (only zeros follow it),
 * except that a flip in a count or a length may move where the batch says
 * it ends, or make the count impossible: then it is corrupt. */
START_TEST(test_flip_last_batch)
{
	size_t start = img.ends[img.nb - 1], end = img.ends[img.nb];
	size_t torn = 0, length_bits = 0;

	for (size_t bit = start * 8; bit < end * 8; bit++) {
		struct raftseg_info info;
		uint8_t *d = open_flipped(bit);
		enum raftseg_verdict v = scan_open(d, img.open_len, &info);
		bool length = in_length_field(start, bit / 8);

		ck_assert_msg(v == RAFTSEG_TORN || (length && v == RAFTSEG_CORRUPT),
			      "bit %zu: %s: %s", bit, raftseg_verdict_name(v), info.why);
		ck_assert_uint_eq(info.bad_offset, start);
		ck_assert_uint_eq(info.entries, img_entries(img.nb - 1));
		ck_assert(info.needs_repair == (v == RAFTSEG_TORN));
		torn += v == RAFTSEG_TORN;
		length_bits += length;
		free(d);
	}
	ck_assert_uint_ge(torn, (end - start) * 8 - length_bits);
}
END_TEST

/* The same through the files: repaired, c-raft loads all the rest. */
START_TEST(test_flip_last_repair)
{
	size_t start = img.ends[img.nb - 1], end = img.ends[img.nb];
	uint8_t *d = open_flipped(((start + end) / 2) * 8 + 5);

	seg_write(img.open_name, d, img.open_len);
	free(d);
	repair_and_start(img.last_index - img.counts[img.nb]);
}
END_TEST

/* Every bit of a middle batch, and of the first: corrupt, at that batch. */
START_TEST(test_flip_middle_batch)
{
	const size_t picks[] = {img.nb / 2, 1};

	for (size_t i = 0; i < 2; i++) {
		size_t k = picks[i], start = img.ends[k - 1], end = img.ends[k];
		for (size_t bit = start * 8; bit < end * 8; bit++) {
			struct raftseg_info info;
			uint8_t *d = open_flipped(bit);
			enum raftseg_verdict v = scan_open(d, img.open_len, &info);
			ck_assert_msg(v == RAFTSEG_CORRUPT, "batch %zu bit %zu: %s: %s",
				      k, bit, raftseg_verdict_name(v), info.why);
			ck_assert(!info.needs_repair);
			ck_assert_uint_eq(info.bad_offset, start);
			ck_assert_uint_eq(info.bad_batch, k);
			ck_assert_uint_eq(info.bad_index, img.open_first + img_entries(k - 1));
			free(d);
		}
	}
}
END_TEST

/* A middle flip through the files: the message names file, offset and
 * index; the repair refuses and changes nothing. */
START_TEST(test_flip_middle_report)
{
	struct raftseg_report rep;
	char errmsg[RS_ERRMSG_SIZE] = "", want[400];
	size_t k = img.nb / 2, start = img.ends[k - 1];
	uint8_t *d = open_flipped((start + 40) * 8 + 1), *after;
	char *p = seg_path(img.open_name);
	size_t len;

	seg_write(img.open_name, d, img.open_len);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ECORRUPT);
	snprintf(want, sizeof want, "%s: corrupt at byte %zu (entry %" PRIu64
		 ", batch %zu)", img.open_name, start,
		 img.open_first + img_entries(k - 1), k);
	ck_assert_msg(strstr(errmsg, want) != NULL, "%s\nwant %s", errmsg, want);
	ck_assert_int_eq(rep.verdict, RAFTSEG_CORRUPT);
	ck_assert_int_eq(raftseg_repair(dir, &rep, errmsg), RS_ECORRUPT);
	ck_assert_msg(strstr(errmsg, "repair refused") != NULL, "%s", errmsg);
	after = testutil_read_file(p, &len);
	ck_assert(len == img.open_len && memcmp(after, d, len) == 0);
	raftseg_report_free(&rep);
	free(after);
	free(p);
	free(d);
}
END_TEST

/* The format field of the open segment: any flip is corrupt. */
START_TEST(test_flip_format)
{
	for (size_t bit = 0; bit < 64; bit++) {
		struct raftseg_info info;
		uint8_t *d = open_flipped(bit);
		ck_assert_msg(scan_open(d, img.open_len, &info) == RAFTSEG_CORRUPT,
			      "bit %zu: %s", bit, info.why);
		ck_assert_uint_eq(info.bad_offset, 0);
		free(d);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Garbage, closed segments, the directory's rules                      */
/* ------------------------------------------------------------------ */

/* Non-zero bytes after the valid data: corrupt, at the data's end. */
START_TEST(test_garbage_after)
{
	size_t data_end = img.ends[img.nb];
	uint64_t rng = testutil_seed();
	const size_t at[] = {0, 0, 0, 100, 4000};
	const size_t lens[] = {64, 16, 24, 1, 8};

	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		struct raftseg_info info;
		uint8_t *d = open_copy();
		size_t o = data_end + at[i];
		ck_assert_uint_le(o + lens[i], img.open_len);
		for (size_t j = 0; j < lens[i]; j++)
			d[o + j] = (uint8_t)(testutil_rand(&rng) | 0x80);
		if (i == 2)
			memcpy(d + o, "garbage after valid data", 24);
		ck_assert_msg(scan_open(d, img.open_len, &info) == RAFTSEG_CORRUPT,
			      "garbage %zu: %s", i, info.why);
		ck_assert_uint_eq(info.bad_offset, data_end);
		ck_assert_uint_eq(info.entries, img_entries(img.nb));
		free(d);
	}
}
END_TEST

/* A last batch that fails its header checksum, and non-zero bytes past
 * where it says it ends: not a torn write. Zeros there: torn. */
START_TEST(test_garbage_after_bad_batch)
{
	size_t start = img.ends[img.nb - 1], data_end = img.ends[img.nb];
	struct raftseg_info info;
	uint8_t *d = open_flipped(start * 8 + 3); /* crc_header */

	ck_assert_int_eq(scan_open(d, img.open_len, &info), RAFTSEG_TORN);
	d[data_end + 300] = 0x5A;
	ck_assert_msg(scan_open(d, img.open_len, &info) == RAFTSEG_CORRUPT, "%s",
		      info.why);
	ck_assert_uint_eq(info.bad_offset, start);
	ck_assert_msg(strstr(info.why, "where it says it ends") != NULL, "%s",
		      info.why);
	free(d);
}
END_TEST

/* Checksums only, where the next batch would start, zeros after: what a
 * write leaves when the sector holding the entry count never made it. */
START_TEST(test_preamble_checksums_only)
{
	struct raftseg_info info;
	uint8_t *d = open_copy();
	size_t data_end = img.ends[img.nb];

	memset(d + data_end, 0xA5, 8);
	ck_assert_int_eq(scan_open(d, img.open_len, &info), RAFTSEG_TORN);
	ck_assert_uint_eq(info.valid_end, data_end);
	free(d);
}
END_TEST

static uint8_t *closed_read(size_t *len)
{
	char *p = seg_path(img.closed_big);
	uint8_t *d = testutil_read_file(p, len);
	free(p);
	return d;
}

static enum raftseg_verdict scan_closed(const uint8_t *d, size_t len,
					struct raftseg_info *info)
{
	unsigned long long a, b;

	memset(info, 0, sizeof *info);
	ck_assert_int_eq(sscanf(img.closed_big, "%llu-%llu", &a, &b), 2);
	info->first_index = a;
	info->end_index = b;
	return raftseg_scan(d, len, info);
}

/* A closed segment: flips (every bit of the first and last batches, and a
 * sample in between), cuts and trailing zeros are all corrupt. */
START_TEST(test_closed_damage)
{
	struct raftseg_info info;
	size_t len, ends[IMG_BATCHES_MAX], nb;
	unsigned counts[IMG_BATCHES_MAX];
	uint8_t *d = closed_read(&len), *z;
	uint64_t rng = testutil_seed();

	ck_assert_int_eq(scan_closed(d, len, &info), RAFTSEG_CLEAN);
	nb = td_walk(d, len, ends, counts, IMG_BATCHES_MAX);
	ck_assert_uint_eq(ends[nb - 1], len);
	for (size_t bit = 0; bit < len * 8; bit++) {
		bool edge = bit < ends[0] * 8 || bit >= ends[nb - 2] * 8;
		if (!edge && testutil_rand(&rng) % 64 != 0)
			continue;
		d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_msg(scan_closed(d, len, &info) == RAFTSEG_CORRUPT,
			      "bit %zu: %s", bit, info.why);
		ck_assert(!info.needs_repair);
		d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t c = 0; c < len; c += 1 + c / 4)
		ck_assert_int_eq(scan_closed(d, c, &info), RAFTSEG_CORRUPT);
	z = calloc(1, len + 64);
	memcpy(z, d, len);
	ck_assert_int_eq(scan_closed(z, len + 64, &info), RAFTSEG_CORRUPT);
	ck_assert_uint_eq(info.bad_offset, len);
	free(z);
	free(d);
}
END_TEST

/* Through the files: a flip in a closed segment, and a closed segment
 * whose name claims one entry more than it holds. */
START_TEST(test_closed_report)
{
	struct raftseg_report rep;
	char errmsg[RS_ERRMSG_SIZE] = "", name[64];
	unsigned long long a, b;
	size_t len;
	uint8_t *d = closed_read(&len);
	char *from, *to;

	d[len / 2] ^= 0x10;
	seg_write(img.closed_big, d, len);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ECORRUPT);
	ck_assert_msg(strstr(errmsg, img.closed_big) != NULL, "%s", errmsg);
	ck_assert_int_eq(rep_find(&rep, img.closed_big)->verdict, RAFTSEG_CORRUPT);
	raftseg_report_free(&rep);
	d[len / 2] ^= 0x10;
	seg_write(img.closed_big, d, len);
	sscanf(img.closed_big, "%llu-%llu", &a, &b);
	snprintf(name, sizeof name, "%016llu-%016llu", a - 1, b);
	from = seg_path(img.closed_big);
	to = seg_path(name);
	ck_assert_int_eq(rename(from, to), 0);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ECORRUPT);
	ck_assert_msg(strstr(errmsg, "its name says") != NULL, "%s", errmsg);
	raftseg_report_free(&rep);
	free(from);
	free(to);
	free(d);
}
END_TEST

/* Closed segments must follow one another: two that hold the same index
 * (raftio.h: a truncation c-raft 0.15 lost) and indexes missing between
 * two past the last snapshot are corrupt; missing ones below it are not. */
START_TEST(test_closed_sequence)
{
	struct raftseg_report rep;
	char errmsg[RS_ERRMSG_SIZE] = "", name[64], shifted[64];
	unsigned long long a, b;
	size_t len, ends[IMG_BATCHES_MAX], nb;
	unsigned counts[IMG_BATCHES_MAX];
	uint8_t *d = closed_read(&len);
	char *p;

	ck_assert_int_eq(sscanf(img.closed_big, "%llu-%llu", &a, &b), 2);
	nb = td_walk(d, len, ends, counts, IMG_BATCHES_MAX);
	ck_assert_uint_ge(nb, 3);
	/* A valid segment holding the first two batches' entries again. */
	snprintf(name, sizeof name, "%016llu-%016llu", a,
		 a + counts[0] + counts[1] - 1);
	seg_write(name, d, ends[1]);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ECORRUPT);
	ck_assert_msg(strstr(errmsg, "two versions of the log") != NULL &&
			      strstr(errmsg, img.closed_big) != NULL &&
			      strstr(errmsg, name) != NULL,
		      "%s", errmsg);
	raftseg_report_free(&rep);
	p = seg_path(name);
	ck_assert_int_eq(unlink(p), 0);
	free(p);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_OK);
	raftseg_report_free(&rep);

	/* The same entries again one index past the end: b+1 is missing. */
	snprintf(shifted, sizeof shifted, "%016llu-%016llu", b + 2,
		 b + 2 + (b - a));
	seg_write(shifted, d, len);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ECORRUPT);
	snprintf(name, sizeof name, "entries %llu..%llu are missing", b + 1,
		 b + 1);
	ck_assert_msg(strstr(errmsg, name) != NULL &&
			      strstr(errmsg, shifted) != NULL,
		      "%s", errmsg);
	raftseg_report_free(&rep);
	/* A snapshot covers them: c-raft starts after it. */
	snprintf(name, sizeof name, "snapshot-1-%llu-1.meta", b + 1);
	seg_write(name, (const uint8_t *)"", 0);
	ck_assert_msg(raftseg_check_dir(dir, &rep, errmsg) == RS_OK, "%s", errmsg);
	ck_assert_int_eq(rep_find(&rep, shifted)->verdict, RAFTSEG_CLEAN);
	raftseg_report_free(&rep);
	free(d);
}
END_TEST

/* The name of the open segment after the one with data: open-N+1. */
static void next_open_name(char *buf, size_t size)
{
	unsigned long long n;
	ck_assert_int_eq(sscanf(img.open_name, "open-%llu", &n), 1);
	snprintf(buf, size, "open-%llu", n + 1);
}

/* Only the last open segment with data may be torn; none before it may be
 * unused. */
START_TEST(test_open_order)
{
	struct raftseg_report rep;
	char errmsg[RS_ERRMSG_SIZE] = "", next[64];
	uint8_t *zero = calloc(1, img.open_len);

	next_open_name(next, sizeof next);
	seg_write(next, img.open, img.open_len); /* data in open-N+1 */
	seg_write(img.open_name, img.open, img.ends[3] + 20); /* torn open-N */
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ECORRUPT);
	ck_assert_msg(strstr(errmsg, img.open_name) && strstr(errmsg, next),
		      "%s", errmsg);
	raftseg_report_free(&rep);
	seg_write(img.open_name, zero, img.open_len); /* unused open-N */
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ECORRUPT);
	ck_assert_msg(strstr(errmsg, "holds no entry") != NULL, "%s", errmsg);
	ck_assert_int_eq(rep_find(&rep, next)->verdict, RAFTSEG_CLEAN);
	raftseg_report_free(&rep);
	/* a full segment may end with 8 zero bytes: to be cut, not refused */
	memcpy(zero, img.open, img.ends[img.nb]);
	seg_write(img.open_name, zero, img.ends[img.nb] + 8);
	ck_assert_msg(raftseg_check_dir(dir, &rep, errmsg) == RS_ETORN, "%s",
		      errmsg);
	ck_assert_msg(strstr(errmsg, "unloadable tail") != NULL, "%s", errmsg);
	ck_assert_int_eq(raftseg_repair(dir, &rep, errmsg), RS_OK);
	ck_assert_uint_eq(rep_find(&rep, img.open_name)->size_bytes,
			  img.ends[img.nb]);
	raftseg_report_free(&rep);
	free(zero);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Repair: I/O errors and a file that changed                           */
/* ------------------------------------------------------------------ */

START_TEST(test_repair_errors)
{
	struct raftseg_report rep;
	char errmsg[RS_ERRMSG_SIZE] = "";
	size_t c = img.ends[5] + 30;

	seg_write(img.open_name, img.open, c);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ETORN);
	fileio_fault_set(FIO_OP_FSYNC, 1, EIO);
	ck_assert_int_eq(raftseg_repair(dir, &rep, errmsg), RS_EIO);
	ck_assert_msg(strstr(errmsg, img.open_name) != NULL, "%s", errmsg);
	fileio_fault_reset();
	raftseg_report_free(&rep);
	/* the cut went through, its fsync did not: a new check tells */
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_OK);
	raftseg_report_free(&rep);

	seg_write(img.open_name, img.open, c);
	ck_assert_int_eq(raftseg_check_dir(dir, &rep, errmsg), RS_ETORN);
	seg_write(img.open_name, img.open, c + 1); /* changed since */
	ck_assert_int_eq(raftseg_repair(dir, &rep, errmsg), RS_EINVAL);
	ck_assert_msg(strstr(errmsg, "check again") != NULL, "%s", errmsg);
	raftseg_report_free(&rep);
}
END_TEST

/* ------------------------------------------------------------------ */
/* What c-raft 0.15 does without the module (children: it aborts)       */
/* ------------------------------------------------------------------ */

/* Run raft_start on dir in a child: "started N", "refused" or "killed by
 * signal S", for the message. */
static const char *craft_child(char *out, size_t size, raft_index *last)
{
	int fds[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		raft_index l = 0;
		int rv, null = open("/dev/null", O_WRONLY);
		close(fds[0]);
		if (null >= 0)
			dup2(null, STDERR_FILENO); /* glibc's or ASan's report */
		rv = tnode_start(dir, &l, NULL);
		if (write(fds[1], &l, sizeof l) != (ssize_t)sizeof l)
			_exit(3);
		_exit(rv == 0 ? 0 : 1);
	}
	close(fds[1]);
	*last = 0;
	if (read(fds[0], last, sizeof *last) != (ssize_t)sizeof *last)
		*last = 0;
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		snprintf(out, size, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, size, WEXITSTATUS(status) == 0 ? "started" : "refused");
	return out;
}

/* Canary: a cut inside a batch after another batch kills raft_start; a
 * middle flip loses every later entry silently. If c-raft changes, these
 * say so (and the guard can be revisited). */
START_TEST(test_craft_unguarded)
{
	char *p = seg_path(img.open_name), out[64];
	raft_index last;
	size_t k = img.nb / 2;
	uint8_t *d;

	ck_assert_int_eq(truncate(p, (off_t)(img.ends[3] + 20)), 0);
	craft_child(out, sizeof out, &last);
	fprintf(stderr, "c-raft on a cut open segment: %s\n", out);
	ck_assert_msg(strcmp(out, "started") != 0, "c-raft now starts: %s", out);
	d = open_flipped((img.ends[k - 1] + 40) * 8 + 1);
	seg_write(img.open_name, d, img.open_len);
	craft_child(out, sizeof out, &last);
	fprintf(stderr, "c-raft on a middle flip: %s, last index %llu of %llu\n",
		out, (unsigned long long)last, (unsigned long long)img.last_index);
	ck_assert_msg(strcmp(out, "started") != 0 ||
			      last == img.open_first - 1 + img_entries(k - 1),
		      "%s at %llu", out, (unsigned long long)last);
	free(d);
	free(p);
}
END_TEST

/* Once, in Check's parent process, before the first test case. */
static void img_setup(void)
{
	if (img.dir == NULL)
		img_build();
}

static void img_teardown(void)
{
}

/* Remove the image (a flat directory) outside any test. */
static void img_remove(void)
{
	DIR *d = img.dir ? opendir(img.dir) : NULL;
	struct dirent *e;
	char path[4096];

	while (d != NULL && (e = readdir(d)) != NULL) {
		snprintf(path, sizeof path, "%s/%s", img.dir, e->d_name);
		if (e->d_name[0] != '.')
			unlink(path);
	}
	if (d != NULL) {
		closedir(d);
		rmdir(img.dir);
	}
	free(img.dir);
	free(img.open);
}

static TCase *img_tcase(Suite *s, const char *name)
{
	TCase *tc = testutil_tcase(s, name, setup, teardown, 60);
	tcase_add_unchecked_fixture(tc, img_setup, img_teardown);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("raftseg");
	TCase *tc;
	int rv;

	tc = img_tcase(s, "scan");
	tcase_add_test(tc, test_crc);
	tcase_add_test(tc, test_clean_image);
	tcase_add_test(tc, test_cut_every_offset);
	tcase_add_test(tc, test_flip_last_batch);
	tcase_add_test(tc, test_flip_middle_batch);
	tcase_add_test(tc, test_flip_format);
	tcase_add_test(tc, test_garbage_after);
	tcase_add_test(tc, test_garbage_after_bad_batch);
	tcase_add_test(tc, test_preamble_checksums_only);
	tcase_add_test(tc, test_closed_damage);
	tc = img_tcase(s, "dir");
	tcase_add_loop_test(tc, test_cut_repair, 0, CUTS_MAX);
	tcase_add_test(tc, test_cut_report);
	tcase_add_test(tc, test_flip_last_repair);
	tcase_add_test(tc, test_flip_middle_report);
	tcase_add_test(tc, test_closed_report);
	tcase_add_test(tc, test_closed_sequence);
	tcase_add_test(tc, test_open_order);
	tcase_add_test(tc, test_repair_errors);
	tc = img_tcase(s, "craft");
	tcase_add_test(tc, test_craft_unguarded);
	rv = testutil_run_suite(s);
	img_remove();
	return rv;
}
