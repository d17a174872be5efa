/*
 * Tests for checkpoint: round trips (empty, small, multi-chunk), crash
 * safety of the write (faults at every open, write, fsync and rename; a
 * leftover .tmp), damage sweeps (a small checkpoint cut at every offset and
 * with every bit flipped; the chunk boundaries of a multi-chunk one),
 * fallback to an older checkpoint, format versions, listing and pruning.
 *
 * The sweep fixtures are built once in main() so that each forked sweep
 * iteration only copies bytes, instead of paying for two fsynced
 * checkpoint writes.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "tests/unit/testutil.h"

#define MIB (1024u * 1024u)

static char *tdir; /* a fresh directory per test */

static void setup(void)
{
	fileio_fault_reset();
	tdir = testutil_tmpdir("ckpt");
}

static void teardown(void)
{
	fileio_fault_reset();
	testutil_rmtree(tdir);
	free(tdir);
	tdir = NULL;
}

/* ---- helpers ---- */

/*
 * Fill b (initialised here) with len bytes of "pseudo-random-ish" data:
 * runs of key/value-like text from a small vocabulary (compresses well)
 * mixed with runs of random bytes (does not), so LZ4 has real work in both
 * directions.
 */
static int fill_image(struct rs_buf *b, size_t len, uint64_t seed)
{
	static const char *const words[] = { "key/", "users/", "value=",
					     "config.", "true;", "0123456789" };
	uint64_t st = seed ? seed : 1;

	rs_buf_init(b);
	if (rs_buf_reserve(b, len) != RS_OK)
		return RS_ENOMEM;
	while (b->len < len) {
		uint64_t r = testutil_rand(&st);
		size_t run = 1 + (size_t)(r >> 40) % 64, i;
		if (r % 4 != 0) {
			const char *w = words[(r >> 8) % 6];
			run = strlen(w);
			if (run > len - b->len)
				run = len - b->len;
			rs_buf_append(b, w, run);
			continue;
		}
		for (i = 0; i < run && b->len < len; i++) {
			uint8_t byte = (uint8_t)(testutil_rand(&st) >> 56);
			rs_buf_append(b, &byte, 1);
		}
	}
	return RS_OK;
}

static void make_image(struct rs_buf *b, size_t len, uint64_t seed)
{
	ck_assert_int_eq(fill_image(b, len, seed), RS_OK);
	ck_assert_uint_eq(b->len, len);
}

static char *ckpt_name(uint64_t version, const char *suffix)
{
	char name[64];
	snprintf(name, sizeof name, "ckpt-%016" PRIx64 ".rsc%s", version,
		 suffix);
	return testutil_path(tdir, name);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static bool version_exists(uint64_t version, const char *suffix)
{
	char *p = ckpt_name(version, suffix);
	bool e = exists(p);
	free(p);
	return e;
}

static void write_ok(uint64_t version, const struct rs_buf *img)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	int rv = checkpoint_write(tdir, version, version * 10, version + 1,
				  img->data, img->len, errmsg);
	ck_assert_msg(rv == RS_OK, "write %" PRIu64 ": %s", version, errmsg);
}

/* Write a small distinct image at version. */
static void write_small(uint64_t version)
{
	struct rs_buf img;
	make_image(&img, 200 + version, version);
	write_ok(version, &img);
	rs_buf_free(&img);
}

/* load_latest must return `version` with exactly `img`, having skipped
 * `skipped` newer ones. */
static void expect_latest(uint64_t version, const struct rs_buf *img,
			  unsigned skipped)
{
	struct checkpoint_load_report rep;
	struct checkpoint_info info;
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_buf got;
	int rv;

	rs_buf_init(&got);
	rv = checkpoint_load_latest(tdir, &info, &got, &rep, errmsg);
	ck_assert_msg(rv == RS_OK, "load: %s", errmsg);
	ck_assert_uint_eq(info.version, version);
	ck_assert_uint_eq(rep.skipped, skipped);
	if (img != NULL) {
		ck_assert_uint_eq(got.len, img->len);
		ck_assert(img->len == 0 ||
			  memcmp(got.data, img->data, img->len) == 0);
	}
	rs_buf_free(&got);
}

static void expect_latest_small(uint64_t version, unsigned skipped)
{
	struct rs_buf img;
	make_image(&img, 200 + version, version);
	expect_latest(version, &img, skipped);
	rs_buf_free(&img);
}

/* Read path, expecting failure; returns the code, errmsg filled. */
static int read_bad(const char *path, char *errmsg)
{
	struct rs_buf got;
	int rv;

	rs_buf_init(&got);
	rs_buf_append(&got, "stale", 5);
	rv = checkpoint_read(path, NULL, &got, errmsg);
	ck_assert_msg(rv != RS_OK, "%s: damaged file read back as valid",
		      path);
	ck_assert_uint_eq(got.len, 0); /* no partial image handed out */
	ck_assert_msg(strstr(errmsg, path) != NULL, "errmsg '%s' lacks %s",
		      errmsg, path);
	rs_buf_free(&got);
	return rv;
}

static void assert_contains(const char *s, const char *sub)
{
	ck_assert_msg(strstr(s, sub) != NULL, "'%s' lacks '%s'", s, sub);
}

/* ---- round trips ---- */

/* Image sizes around the chunk boundary, and the multi-chunk 3.5 MiB. */
static const size_t roundtrip_sizes[] = {
	0, 1, 200, CHECKPOINT_CHUNK_RAW - 1, CHECKPOINT_CHUNK_RAW,
	CHECKPOINT_CHUNK_RAW + 1, 3 * MIB + MIB / 2,
};

START_TEST(test_roundtrip)
{
	size_t len = roundtrip_sizes[_i];
	uint32_t chunks = (uint32_t)((len + CHECKPOINT_CHUNK_RAW - 1) /
				     CHECKPOINT_CHUNK_RAW);
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct checkpoint_info info;
	struct rs_buf img, got;
	char *path = ckpt_name(0x1234, "");

	make_image(&img, len, testutil_seed() + _i);
	write_ok(0x1234, &img);
	rs_buf_init(&got);
	rs_buf_append(&got, "junk", 4); /* must be reset, not appended to */
	ck_assert_msg(checkpoint_read(path, &info, &got, errmsg) == RS_OK,
		      "%s", errmsg);
	ck_assert_str_eq(info.name, "ckpt-0000000000001234.rsc");
	ck_assert_uint_eq(info.version, 0x1234);
	ck_assert_uint_eq(info.epoch, 0x1234 * 10);
	ck_assert_uint_eq(info.key_count, 0x1235);
	ck_assert_uint_eq(info.chunk_count, chunks);
	ck_assert_uint_eq(info.raw_size, len);
	ck_assert_uint_eq(got.len, len);
	ck_assert(len == 0 || memcmp(got.data, img.data, len) == 0);
	ck_assert(!version_exists(0x1234, ".tmp"));
	/* Verifying without decoding gives the same answer. */
	ck_assert_int_eq(checkpoint_read(path, NULL, NULL, errmsg), RS_OK);
	expect_latest(0x1234, &img, 0);
	rs_buf_free(&got);
	rs_buf_free(&img);
	free(path);
}
END_TEST

START_TEST(test_empty_image_layout)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct checkpoint_info info;
	char *path = ckpt_name(7, "");
	size_t len;
	uint8_t *bytes;

	ck_assert_int_eq(checkpoint_write(tdir, 7, 2, 0, NULL, 0, errmsg),
			 RS_OK);
	bytes = testutil_read_file(path, &len);
	/* Header and trailer, nothing else. */
	ck_assert_uint_eq(len, CHECKPOINT_HEADER_SIZE + 8);
	ck_assert_mem_eq(bytes, CHECKPOINT_MAGIC, 8);
	ck_assert_uint_eq(rs_get_u32(bytes + 8), CHECKPOINT_FORMAT_VERSION);
	ck_assert_uint_eq(rs_get_u64(bytes + 16), 7);
	ck_assert_uint_eq(rs_get_u32(bytes + 40), 0);
	ck_assert_uint_eq(rs_get_u32(bytes + 44), crc32c(bytes, 44));
	ck_assert_mem_eq(bytes + 48, "CKPT", 4);
	ck_assert_uint_eq(rs_get_u32(bytes + 52), crc32c(bytes, 52));
	ck_assert_int_eq(checkpoint_read(path, &info, NULL, errmsg), RS_OK);
	ck_assert_uint_eq(info.chunk_count, 0);
	ck_assert_uint_eq(info.key_count, 0);
	ck_assert_uint_eq(info.file_size, len);
	free(bytes);
	free(path);
}
END_TEST

START_TEST(test_write_existing_version)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	int rv;

	write_small(5);
	rv = checkpoint_write(tdir, 5, 0, 0, (const uint8_t *)"x", 1, errmsg);
	ck_assert_int_eq(rv, RS_EEXIST);
	assert_contains(errmsg, "ckpt-0000000000000005.rsc");
	expect_latest_small(5, 0);
}
END_TEST

/* A successful write leaves nothing for a crash to take away: the file was
 * fsynced and so was its directory entry. */
START_TEST(test_write_is_durable)
{
	fileio_track_start();
	write_small(3);
	ck_assert_uint_eq(fileio_crash_simulate(), 0);
	expect_latest_small(3, 0);
}
END_TEST

/* ---- crash between write and rename; leftover tmp ---- */

START_TEST(test_rename_fault)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_buf img;
	int rv;

	write_small(1);
	make_image(&img, 5000, 2);
	fileio_fault_set(FIO_OP_RENAME, 1, EIO);
	rv = checkpoint_write(tdir, 2, 0, 0, img.data, img.len, errmsg);
	ck_assert_int_eq(rv, RS_EIO);
	assert_contains(errmsg, "rename");
	assert_contains(errmsg, "ckpt-0000000000000002.rsc.tmp");
	ck_assert(!version_exists(2, ""));
	ck_assert(!version_exists(2, ".tmp"));
	expect_latest_small(1, 0);
	/* The failure left nothing behind that blocks a retry. */
	write_ok(2, &img);
	expect_latest(2, &img, 0);
	rs_buf_free(&img);
}
END_TEST

START_TEST(test_leftover_tmp)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	char *tmp = ckpt_name(9, ".tmp");
	char *other = testutil_path(tdir, "notes.tmp");
	uint8_t junk[4096];
	uint64_t oldest;

	write_small(1);
	testutil_write_file(tmp, "garbage, a crash cut me", 23);
	testutil_write_file(other, "not ours", 8);
	expect_latest_small(1, 0);
	ck_assert_int_eq(checkpoint_prune(tdir, 3, &oldest, errmsg), RS_OK);
	ck_assert_uint_eq(oldest, 1);
	ck_assert(!exists(tmp));
	ck_assert(exists(other)); /* only our own leftovers are removed */
	expect_latest_small(1, 0);
	/* A longer leftover of the very version being written is replaced,
	 * not overwritten in place with its tail left behind. */
	free(tmp);
	tmp = ckpt_name(2, ".tmp");
	memset(junk, 0xab, sizeof junk);
	testutil_write_file(tmp, junk, sizeof junk);
	write_small(2);
	expect_latest_small(2, 0);
	free(tmp);
	free(other);
}
END_TEST

/* ---- I/O faults during the write ---- */

struct fault_case {
	enum fileio_op op;
	unsigned nth;
	int err;
	const char *in_msg; /* the step the message must name */
};

/* The write of a two-chunk image makes: open (existence check), open
 * (tmp), write x4 (header, chunk 0, chunk 1, trailer), fsync (file),
 * rename, fsync (directory). */
static const struct fault_case fault_cases[] = {
	{ FIO_OP_OPEN, 1, EIO, "open" },
	{ FIO_OP_OPEN, 2, EACCES, "open" },
	{ FIO_OP_WRITE, 1, ENOSPC, "header" },
	{ FIO_OP_WRITE, 2, ENOSPC, "chunk 0" },
	{ FIO_OP_WRITE, 3, ENOSPC, "chunk 1" },
	{ FIO_OP_WRITE, 4, EIO, "trailer" },
	{ FIO_OP_FSYNC, 1, ENOSPC, "fsync" },
	{ FIO_OP_RENAME, 1, EIO, "rename" },
	{ FIO_OP_FSYNC, 2, EIO, "fsync directory" },
};

START_TEST(test_write_fault)
{
	const struct fault_case *fc = &fault_cases[_i];
	char errmsg[RS_ERRMSG_SIZE] = "";
	unsigned long before;
	struct rs_buf img;
	int rv;

	write_small(1);
	make_image(&img, CHECKPOINT_CHUNK_RAW + 1000, 77);
	before = fileio_op_count(fc->op);
	fileio_fault_set(fc->op, fc->nth, fc->err);
	rv = checkpoint_write(tdir, 2, 0, 0, img.data, img.len, errmsg);
	ck_assert_uint_ge(fileio_op_count(fc->op), before + fc->nth);
	ck_assert_int_eq(rv, rs_error_from_errno(fc->err));
	assert_contains(errmsg, "ckpt-0000000000000002.rsc");
	assert_contains(errmsg, fc->in_msg);
	assert_contains(errmsg, strerror(fc->err));
	ck_assert(!version_exists(2, ""));
	ck_assert(!version_exists(2, ".tmp"));
	expect_latest_small(1, 0);
	fileio_fault_reset();
	write_ok(2, &img);
	expect_latest(2, &img, 0);
	rs_buf_free(&img);
}
END_TEST

/* ---- damage sweeps over a small checkpoint ---- */

/* Built in main(): an older valid checkpoint and the one to damage. */
static struct rs_buf sweep_old, sweep_new;

/* Lay the two sweep files down without fsyncs; return the damaged one's
 * path. */
static char *sweep_lay(const uint8_t *new_bytes, size_t new_len)
{
	char *old = ckpt_name(1, "");
	char *path = ckpt_name(2, "");

	testutil_write_file(old, sweep_old.data, sweep_old.len);
	testutil_write_file(path, new_bytes, new_len);
	free(old);
	return path;
}

/* Each sweep iteration covers SWEEP_STRIDE consecutive offsets: a fork per
 * offset would cost more (under ASan) than the checks themselves. */
#define SWEEP_STRIDE 16
#define SWEEP_ITERATIONS \
	((int)((sweep_new.len + SWEEP_STRIDE - 1) / SWEEP_STRIDE))

static size_t sweep_end(int i)
{
	size_t end = (size_t)(i + 1) * SWEEP_STRIDE;
	return end < sweep_new.len ? end : sweep_new.len;
}

/* Cut at every offset: always torn, and load falls back to version 1. */
START_TEST(test_sweep_truncate)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	char *path;

	for (size_t at = (size_t)_i * SWEEP_STRIDE; at < sweep_end(_i); at++) {
		path = sweep_lay(sweep_new.data, at);
		ck_assert_msg(read_bad(path, errmsg) == RS_ETORN,
			      "cut at %zu: %s", at, errmsg);
		free(path);
	}
	expect_latest_small(1, 1);
}
END_TEST

/* Flip each bit of each byte: always rejected, never read back as valid. */
START_TEST(test_sweep_bitflip)
{
	char errmsg[RS_ERRMSG_SIZE];
	uint8_t *bytes = malloc(sweep_new.len);
	int rv;

	ck_assert_ptr_nonnull(bytes);
	memcpy(bytes, sweep_new.data, sweep_new.len);
	for (size_t at = (size_t)_i * SWEEP_STRIDE; at < sweep_end(_i); at++) {
		for (int bit = 0; bit < 8; bit++) {
			char *path;
			bytes[at] ^= (uint8_t)(1u << bit);
			path = sweep_lay(bytes, sweep_new.len);
			bytes[at] ^= (uint8_t)(1u << bit);
			rv = read_bad(path, errmsg);
			ck_assert_msg(rv == RS_ECORRUPT || rv == RS_ETORN ||
					      rv == RS_EFORMAT,
				      "byte %zu bit %d: %s", at, bit,
				      rs_strerror(rv));
			free(path);
		}
	}
	expect_latest_small(1, 1);
	free(bytes);
}
END_TEST

/* Each check names what failed, and runs before the whole-file CRC would
 * catch the same damage. */
static const struct {
	size_t at;    /* offset of the u32 to patch in the sweep file */
	uint32_t xor; /* what to flip in it */
	int want;
	const char *msg;
} damage_cases[] = {
	{ 0, 0x1, RS_ECORRUPT, "header: bad magic" },
	{ 16, 0x1, RS_ECORRUPT, "header: checksum mismatch" },
	{ 48, 0x10000000, RS_ECORRUPT, "chunk 0 at offset 48: raw length" },
	{ 48, 0x1, RS_ECORRUPT, "chunk 0 at offset 48: decodes to" },
	{ 52, 0x10000000, RS_ECORRUPT, "chunk 0 at offset 48: compressed len" },
	{ 52, 0x100, RS_ETORN, "chunk 0 data at offset 60: needs" },
	{ 56, 0x1, RS_ECORRUPT, "chunk 0 at offset 48: checksum mismatch" },
	{ 64, 0x1, RS_ECORRUPT, "chunk 0 at offset 48: checksum mismatch" },
};

START_TEST(test_damage_messages)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint8_t *bytes = malloc(sweep_new.len);
	size_t at = damage_cases[_i].at;
	char *path;

	memcpy(bytes, sweep_new.data, sweep_new.len);
	rs_put_u32(bytes + at, rs_get_u32(bytes + at) ^ damage_cases[_i].xor);
	path = sweep_lay(bytes, sweep_new.len);
	ck_assert_int_eq(read_bad(path, errmsg), damage_cases[_i].want);
	assert_contains(errmsg, damage_cases[_i].msg);
	free(path);
	free(bytes);
}
END_TEST

/* The trailer is checked last: magic, then the CRC of everything. */
START_TEST(test_trailer_damage)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint8_t *bytes = malloc(sweep_new.len);
	size_t trailer = sweep_new.len - 8;
	char *path;

	memcpy(bytes, sweep_new.data, sweep_new.len);
	bytes[trailer] ^= 1;
	path = sweep_lay(bytes, sweep_new.len);
	ck_assert_int_eq(read_bad(path, errmsg), RS_ECORRUPT);
	assert_contains(errmsg, "trailer at offset");
	assert_contains(errmsg, "bad magic");
	free(path);
	bytes[trailer] ^= 1;
	bytes[trailer + 7] ^= 0x80;
	path = sweep_lay(bytes, sweep_new.len);
	ck_assert_int_eq(read_bad(path, errmsg), RS_ECORRUPT);
	assert_contains(errmsg, "file checksum mismatch");
	free(path);
	free(bytes);
}
END_TEST

/* Garbage after a complete file is corruption, not a longer file. */
START_TEST(test_trailing_garbage)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint8_t *bytes = malloc(sweep_new.len + 1);
	char *path;

	memcpy(bytes, sweep_new.data, sweep_new.len);
	bytes[sweep_new.len] = 0;
	path = sweep_lay(bytes, sweep_new.len + 1);
	ck_assert_int_eq(read_bad(path, errmsg), RS_ECORRUPT);
	assert_contains(errmsg, "after the trailer");
	free(path);
	free(bytes);
}
END_TEST

/* ---- damage at the chunk boundaries of a multi-chunk checkpoint ---- */

/* Offsets of each chunk header, then of the trailer, parsed from bytes. */
static unsigned chunk_offsets(const uint8_t *bytes, size_t len,
			      uint64_t *off, unsigned max)
{
	uint32_t count = rs_get_u32(bytes + 40);
	uint64_t at = CHECKPOINT_HEADER_SIZE;

	ck_assert_uint_lt(count, max);
	for (uint32_t i = 0; i < count; i++) {
		off[i] = at;
		at += 12 + rs_get_u32(bytes + at + 4);
		ck_assert_uint_le(at, len);
	}
	off[count] = at; /* the trailer */
	ck_assert_uint_eq(at + 8, len);
	return count;
}

/* Cut at and around each boundary; flip a data byte of each chunk and
 * expect the message to name that chunk. */
START_TEST(test_multichunk_damage)
{
	char errmsg[RS_ERRMSG_SIZE], want[32];
	uint64_t off[8];
	struct rs_buf img;
	size_t len;
	uint8_t *bytes;
	char *path = ckpt_name(2, "");
	unsigned n;

	/* Mostly zeros: the file stays small (about 10 KiB) however often
	 * it is cut and rewritten below. */
	rs_buf_init(&img);
	ck_assert_int_eq(rs_buf_reserve(&img, 2 * MIB + 4096), RS_OK);
	memset(img.data, 0, 2 * MIB + 4096);
	img.len = 2 * MIB + 4096;
	for (size_t i = 0; i < img.len; i += 4093)
		img.data[i] = (uint8_t)(i >> 3);
	write_ok(2, &img);
	bytes = testutil_read_file(path, &len);
	n = chunk_offsets(bytes, len, off, 8);
	ck_assert_uint_eq(n, 3);
	for (unsigned k = 0; k <= n; k++) {
		for (uint64_t cut = off[k] - 3; cut < off[k] + 16; cut++) {
			if (cut >= len)
				break;
			testutil_write_file(path, bytes, (size_t)cut);
			ck_assert_int_eq(read_bad(path, errmsg), RS_ETORN);
		}
	}
	for (unsigned k = 0; k < n; k++) {
		bytes[off[k] + 12 + 5] ^= 0x10;
		testutil_write_file(path, bytes, len);
		ck_assert_int_eq(read_bad(path, errmsg), RS_ECORRUPT);
		snprintf(want, sizeof want, "chunk %u at offset %" PRIu64, k,
			 off[k]);
		assert_contains(errmsg, want);
		bytes[off[k] + 12 + 5] ^= 0x10;
	}
	rs_buf_free(&img);
	free(bytes);
	free(path);
}
END_TEST

/* ---- fallback and reports ---- */

static void flip_byte(uint64_t version, size_t at)
{
	char *path = ckpt_name(version, "");
	size_t len;
	uint8_t *bytes = testutil_read_file(path, &len);

	ck_assert_uint_lt(at, len);
	bytes[at] ^= 0x01;
	testutil_write_file(path, bytes, len);
	free(bytes);
	free(path);
}

START_TEST(test_fallback_to_older)
{
	struct checkpoint_load_report rep;
	struct checkpoint_info info;
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_buf got;

	write_small(1);
	write_small(2);
	write_small(3);
	flip_byte(3, CHECKPOINT_HEADER_SIZE + 12 + 3); /* chunk 0 data */
	rs_buf_init(&got);
	ck_assert_int_eq(
		checkpoint_load_latest(tdir, &info, &got, &rep, errmsg), RS_OK);
	ck_assert_uint_eq(info.version, 2);
	ck_assert_uint_eq(rep.skipped, 1);
	assert_contains(rep.skipped_error, "ckpt-0000000000000003.rsc");
	assert_contains(rep.skipped_error, "chunk 0");
	flip_byte(2, 20); /* header */
	expect_latest_small(1, 2);
	rs_buf_free(&got);
}
END_TEST

START_TEST(test_all_corrupt)
{
	struct checkpoint_load_report rep;
	struct checkpoint_info info;
	char errmsg[RS_ERRMSG_SIZE] = "";
	int rv;

	write_small(1);
	write_small(2);
	flip_byte(1, 0);
	flip_byte(2, 60);
	rv = checkpoint_load_latest(tdir, &info, NULL, &rep, errmsg);
	ck_assert_int_eq(rv, RS_ECORRUPT);
	ck_assert_uint_eq(rep.skipped, 2);
	assert_contains(errmsg, "all 2 checkpoints");
	assert_contains(errmsg, "ckpt-0000000000000002.rsc");
}
END_TEST

START_TEST(test_load_none)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct checkpoint_info info;
	char *tmp = ckpt_name(4, ".tmp");

	ck_assert_int_eq(checkpoint_load_latest(tdir, &info, NULL, NULL,
						errmsg),
			 RS_ENOTFOUND);
	testutil_write_file(tmp, "x", 1); /* a tmp is not a checkpoint */
	ck_assert_int_eq(checkpoint_load_latest(tdir, &info, NULL, NULL,
						errmsg),
			 RS_ENOTFOUND);
	assert_contains(errmsg, "no checkpoint in");
	free(tmp);
	tmp = testutil_path(tdir, "missing");
	ck_assert_int_eq(checkpoint_load_latest(tmp, &info, NULL, NULL,
						errmsg),
			 RS_ENOTFOUND);
	assert_contains(errmsg, tmp);
	free(tmp);
}
END_TEST

/* A valid file under another version's name is not that version. */
START_TEST(test_name_header_mismatch)
{
	struct checkpoint_load_report rep;
	struct checkpoint_info info;
	char errmsg[RS_ERRMSG_SIZE] = "";
	char *from = ckpt_name(1, "");
	char *to = ckpt_name(9, "");
	size_t len;
	uint8_t *bytes;

	write_small(1);
	bytes = testutil_read_file(from, &len);
	testutil_write_file(to, bytes, len);
	ck_assert_int_eq(
		checkpoint_load_latest(tdir, &info, NULL, &rep, errmsg), RS_OK);
	ck_assert_uint_eq(info.version, 1);
	ck_assert_uint_eq(rep.skipped, 1);
	assert_contains(rep.skipped_error, "does not match");
	free(bytes);
	free(from);
	free(to);
}
END_TEST

/* ---- format version ---- */

/* Patch the u32 at `at` in version's header and, if asked, fix the CRC. */
static void patch_header(uint64_t version, size_t at, uint32_t v, bool fix)
{
	char *path = ckpt_name(version, "");
	size_t len;
	uint8_t *bytes = testutil_read_file(path, &len);

	rs_put_u32(bytes + at, v);
	if (fix)
		rs_put_u32(bytes + 44, crc32c(bytes, 44));
	testutil_write_file(path, bytes, len);
	free(bytes);
	free(path);
}

START_TEST(test_unknown_format_version)
{
	struct checkpoint_load_report rep;
	struct checkpoint_info info;
	char errmsg[RS_ERRMSG_SIZE] = "";
	char *path = ckpt_name(2, "");

	write_small(1);
	write_small(2);
	patch_header(2, 8, 2, true);
	ck_assert_int_eq(read_bad(path, errmsg), RS_EFORMAT);
	assert_contains(errmsg, "format version 2");
	ck_assert_int_eq(
		checkpoint_load_latest(tdir, &info, NULL, &rep, errmsg), RS_OK);
	ck_assert_uint_eq(info.version, 1);
	assert_contains(rep.skipped_error, "format version 2");
	/* A later version may move the CRC: the version is checked first. */
	patch_header(2, 8, 77, false);
	ck_assert_int_eq(read_bad(path, errmsg), RS_EFORMAT);
	assert_contains(errmsg, "format version 77");
	patch_header(2, 8, CHECKPOINT_FORMAT_VERSION, false);
	patch_header(2, 12, 0x4, true); /* unknown flag */
	ck_assert_int_eq(read_bad(path, errmsg), RS_EFORMAT);
	assert_contains(errmsg, "flags 0x4");
	free(path);
}
END_TEST

/* ---- list and prune ---- */

START_TEST(test_list)
{
	static const char *const files[] = {
		"ckpt-0000000000000003.rsc", "ckpt-0000000000000001.rsc",
		"ckpt-000000000000000a.rsc", "ckpt-0000000000000007.rsc.tmp",
		"ckpt-000000000000000A.rsc", "ckpt-000000000000000g.rsc",
		"ckpt-0000000000000002.rsc.bak", "ckpt-00000000000002.rsc",
		"seg-0000000000000001.rsj", "ckpt-.rsc",
	};
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct checkpoint_info *list;
	char *missing = testutil_path(tdir, "nope");
	unsigned n;

	ck_assert_int_eq(checkpoint_list(tdir, &list, &n, errmsg), RS_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char *p = testutil_path(tdir, files[i]);
		testutil_write_file(p, "", 0);
		free(p);
	}
	ck_assert_int_eq(checkpoint_list(tdir, &list, &n, errmsg), RS_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(list[0].version, 10);
	ck_assert_str_eq(list[0].name, "ckpt-000000000000000a.rsc");
	ck_assert_uint_eq(list[1].version, 3);
	ck_assert_uint_eq(list[2].version, 1);
	free(list);
	ck_assert_int_eq(checkpoint_list(missing, &list, &n, errmsg),
			 RS_ENOTFOUND);
	assert_contains(errmsg, missing);
	free(missing);
}
END_TEST

START_TEST(test_prune)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct checkpoint_info *list;
	char *tmp = ckpt_name(99, ".tmp");
	uint64_t oldest = 42;
	unsigned long fsyncs;
	unsigned n;

	ck_assert_int_eq(checkpoint_prune(tdir, 2, &oldest, errmsg), RS_OK);
	ck_assert_uint_eq(oldest, 0);
	for (uint64_t v = 1; v <= 5; v++)
		write_small(v);
	testutil_write_file(tmp, "x", 1);
	ck_assert_int_eq(checkpoint_prune(tdir, 0, &oldest, errmsg), RS_EINVAL);
	fsyncs = fileio_op_count(FIO_OP_FSYNC);
	ck_assert_int_eq(checkpoint_prune(tdir, 2, &oldest, errmsg), RS_OK);
	ck_assert_uint_eq(oldest, 4);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_FSYNC), fsyncs + 1);
	ck_assert(!exists(tmp));
	ck_assert_int_eq(checkpoint_list(tdir, &list, &n, errmsg), RS_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(list[0].version, 5);
	ck_assert_uint_eq(list[1].version, 4);
	free(list);
	/* Nothing left to delete: no directory fsync either. */
	ck_assert_int_eq(checkpoint_prune(tdir, 2, &oldest, errmsg), RS_OK);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_FSYNC), fsyncs + 1);
	ck_assert_int_eq(checkpoint_prune(tdir, 10, &oldest, errmsg), RS_OK);
	ck_assert_uint_eq(oldest, 4);
	expect_latest_small(5, 0);
	free(tmp);
}
END_TEST

START_TEST(test_prune_faults)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint64_t oldest;

	for (uint64_t v = 1; v <= 3; v++)
		write_small(v);
	fileio_fault_set(FIO_OP_UNLINK, 1, EIO);
	ck_assert_int_eq(checkpoint_prune(tdir, 1, &oldest, errmsg), RS_EIO);
	assert_contains(errmsg, "prune checkpoints in");
	assert_contains(errmsg, "unlink");
	fileio_fault_set(FIO_OP_FSYNC, 1, EIO);
	ck_assert_int_eq(checkpoint_prune(tdir, 1, &oldest, errmsg), RS_EIO);
	assert_contains(errmsg, "fsync directory");
	ck_assert_int_eq(checkpoint_prune(tdir, 1, &oldest, errmsg), RS_OK);
	ck_assert_uint_eq(oldest, 3);
	expect_latest_small(3, 0);
}
END_TEST

/* ---- main ---- */

/* Build the sweep files (as write_small would) in a scratch directory.
 * This runs outside any test, where Check forbids even a passing
 * ck_assert, so failures abort instead. */
static void sweep_build(void)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	const char *base = getenv("TMPDIR");
	char dir[2048], path[4096];
	struct rs_buf img;

	snprintf(dir, sizeof dir, "%s/rs-ckpt-sweep-XXXXXX",
		 base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	for (uint64_t v = 1; v <= 2; v++) {
		struct rs_buf *out = v == 1 ? &sweep_old : &sweep_new;
		snprintf(path, sizeof path, "%s/ckpt-%016" PRIx64 ".rsc", dir,
			 v);
		if (fill_image(&img, 200 + v, v) != RS_OK ||
		    checkpoint_write(dir, v, v * 10, v + 1, img.data, img.len,
				     errmsg) != RS_OK ||
		    fileio_read_all(path, &out->data, &out->len, errmsg) !=
			    RS_OK) {
			fprintf(stderr, "sweep_build: %s\n", errmsg);
			abort();
		}
		out->cap = out->len;
		rs_buf_free(&img);
		unlink(path); /* not testutil_rmtree: it uses ck_assert */
	}
	rmdir(dir);
}

static TCase *tcase(Suite *s, const char *name)
{
	return testutil_tcase(s, name, setup, teardown, 60);
}

static Suite *checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase(s, "roundtrip");
	tcase_add_loop_test(tc, test_roundtrip, 0,
			    sizeof roundtrip_sizes / sizeof roundtrip_sizes[0]);
	tcase_add_test(tc, test_empty_image_layout);
	tcase_add_test(tc, test_write_existing_version);
	tcase_add_test(tc, test_write_is_durable);
	tc = tcase(s, "crash");
	tcase_add_test(tc, test_rename_fault);
	tcase_add_test(tc, test_leftover_tmp);
	tcase_add_loop_test(tc, test_write_fault, 0,
			    sizeof fault_cases / sizeof fault_cases[0]);
	tc = tcase(s, "damage");
	tcase_add_loop_test(tc, test_sweep_truncate, 0, SWEEP_ITERATIONS);
	tcase_add_loop_test(tc, test_sweep_bitflip, 0, SWEEP_ITERATIONS);
	tcase_add_loop_test(tc, test_damage_messages, 0,
			    sizeof damage_cases / sizeof damage_cases[0]);
	tcase_add_test(tc, test_trailer_damage);
	tcase_add_test(tc, test_trailing_garbage);
	tcase_add_test(tc, test_multichunk_damage);
	tc = tcase(s, "load");
	tcase_add_test(tc, test_fallback_to_older);
	tcase_add_test(tc, test_all_corrupt);
	tcase_add_test(tc, test_load_none);
	tcase_add_test(tc, test_name_header_mismatch);
	tcase_add_test(tc, test_unknown_format_version);
	tc = tcase(s, "dir");
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_prune);
	tcase_add_test(tc, test_prune_faults);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	sweep_build();
	sr = srunner_create(checkpoint_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rs_buf_free(&sweep_old);
	rs_buf_free(&sweep_new);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
