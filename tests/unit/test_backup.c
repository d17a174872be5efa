/*
 * Tests for the snapshot file codec (storage/backup.h): a round trip
 * through the writer and the decoder (empty, one chunk, many chunks), the
 * header and trailer bytes as docs/backup-format.md draws them, every cut
 * refused as truncated, every bit flip refused, an unknown format version
 * refused as such, a trailer that disagrees with the chunks refused even
 * with a valid checksum, keys out of order refused by the writer, a write
 * fault leaving no file behind, and a decode stopped by its callback.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "storage/backup.h"
#include "storage/fileio.h"
#include "tests/unit/testutil.h"

static char *tdir;
static char *tfile; /* tdir/snap */

static void setup(void)
{
	fileio_fault_reset();
	tdir = testutil_tmpdir("backup");
	tfile = testutil_path(tdir, "snap");
}

static void teardown(void)
{
	fileio_fault_reset();
	testutil_rmtree(tdir);
	free(tfile);
	free(tdir);
}

/* Whether tdir/name exists. */
static bool exists(const char *name)
{
	char *p = testutil_path(tdir, name);
	bool yes = access(p, F_OK) == 0;

	free(p);
	return yes;
}

static struct backup_header sample_header(void)
{
	struct backup_header h = {.version = 1000, .epoch = 7,
				  .created_ms = 1234567};
	for (unsigned i = 0; i < BACKUP_CLUSTER_ID_SIZE; i++)
		h.cluster_id[i] = (uint8_t)(0xc0 + i);
	return h;
}

/* Entry i: key "key-%08u", value of vlen bytes derived from i. */
static void entry(unsigned i, char *key, uint8_t *val, uint32_t vlen)
{
	snprintf(key, 16, "key-%08u", i);
	for (uint32_t j = 0; j < vlen; j++)
		val[j] = (uint8_t)(i * 31 + j);
}

/* Write n entries of vlen-byte values to tfile. */
static void write_file(unsigned n, uint32_t vlen, struct backup_info *info)
{
	char errmsg[RS_ERRMSG_SIZE] = "", key[16];
	struct backup_header h = sample_header();
	struct backup_writer w;
	uint8_t *val = malloc(vlen + 1);

	ck_assert_int_eq(backup_writer_open(&w, tfile, &h, errmsg), RS_OK);
	for (unsigned i = 0; i < n; i++) {
		entry(i, key, val, vlen);
		ck_assert_msg(backup_writer_add(&w, (uint8_t *)key, 12, val, vlen,
						errmsg) == RS_OK, "%s", errmsg);
	}
	backup_writer_set_epoch(&w, 9);
	ck_assert_msg(backup_writer_finish(&w, info, errmsg) == RS_OK, "%s",
		      errmsg);
	free(val);
}

/* write_file, then its bytes (the caller frees them). */
static uint8_t *written(unsigned n, uint32_t vlen, size_t *len)
{
	struct backup_info info;

	write_file(n, vlen, &info);
	return testutil_read_file(tfile, len);
}

struct seen {
	unsigned n;
	uint32_t vlen;
	unsigned stop_at; /* 0: never */
};

static int check_entry(void *ctx, const uint8_t *key, uint32_t key_len,
		       const uint8_t *val, uint32_t val_len)
{
	struct seen *s = ctx;
	char want_key[16];
	uint8_t *want_val = malloc(s->vlen + 1);

	entry(s->n, want_key, want_val, s->vlen);
	ck_assert_uint_eq(key_len, 12);
	ck_assert_mem_eq(key, want_key, 12);
	ck_assert_uint_eq(val_len, s->vlen);
	ck_assert(val_len == 0 || memcmp(val, want_val, val_len) == 0);
	free(want_val);
	s->n++;
	return s->stop_at != 0 && s->n == s->stop_at ? RS_EEXIST : 0;
}

/* Round trips: no key, one chunk, several chunks (values of 100 KiB). */
static const struct {
	unsigned n;
	uint32_t vlen;
	uint32_t chunks;
} trips[] = {{0, 0, 0}, {50, 10, 1}, {40, 100 * 1024, 4}};

START_TEST(test_round_trip)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct backup_info wrote, got;
	struct seen s = {0, trips[_i].vlen, 0};
	uint8_t *data;
	size_t len;

	write_file(trips[_i].n, trips[_i].vlen, &wrote);
	ck_assert(!exists("snap.tmp"));
	ck_assert_int_eq(backup_read_file(tfile, &data, &len, &got, check_entry,
					  &s, errmsg),
			 RS_OK);
	ck_assert_uint_eq(s.n, trips[_i].n);
	ck_assert_uint_eq(got.keys, trips[_i].n);
	ck_assert_uint_eq(got.chunks, trips[_i].chunks);
	ck_assert_uint_eq(got.file_bytes, len);
	ck_assert_uint_eq(wrote.file_bytes, len);
	ck_assert_uint_eq(got.image_bytes, wrote.image_bytes);
	ck_assert_uint_eq(got.image_crc, wrote.image_crc);
	ck_assert_uint_eq(got.header.version, 1000);
	ck_assert_uint_eq(got.header.epoch, 9);
	ck_assert_uint_eq(got.header.created_ms, 1234567);
	ck_assert_uint_eq(got.header.format, BACKUP_FORMAT_VERSION);
	ck_assert_uint_eq(got.header.cluster_id[15], 0xcf);
	free(data);
}
END_TEST

START_TEST(test_documented_layout)
{
	uint8_t *d;
	size_t len;

	d = written(3, 4, &len);
	/* header */
	ck_assert_mem_eq(d, "RSBACKUP", 8);
	ck_assert_uint_eq(rs_get_u32(d + 8), 1);
	ck_assert_uint_eq(rs_get_u32(d + 12), 0);
	ck_assert_uint_eq(rs_get_u64(d + 16), 1000);
	ck_assert_uint_eq(rs_get_u64(d + 24), 9);
	ck_assert_uint_eq(rs_get_u64(d + 32), 1234567);
	ck_assert_uint_eq(d[40], 0xc0);
	ck_assert_uint_eq(rs_get_u32(d + 60), crc32c(d, 60));
	/* one chunk: 3 entries of 4 + 12 + 4 + 4 bytes */
	ck_assert_mem_eq(d + 64, "RSBC", 4);
	ck_assert_uint_eq(rs_get_u32(d + 68), 72);
	ck_assert_uint_eq(rs_get_u32(d + 72), 3);
	ck_assert_uint_eq(rs_get_u32(d + 76),
			  crc32c_extend(crc32c(d + 64, 12), d + 80, 72));
	ck_assert_uint_eq(rs_get_u32(d + 80), 12);
	ck_assert_mem_eq(d + 84, "key-00000000", 12);
	ck_assert_uint_eq(rs_get_u32(d + 96), 4);
	/* trailer */
	ck_assert_uint_eq(len, 64 + 16 + 72 + 40);
	ck_assert_mem_eq(d + 152, "RSBT", 4);
	ck_assert_uint_eq(rs_get_u32(d + 156), 1);
	ck_assert_uint_eq(rs_get_u64(d + 160), 3);
	ck_assert_uint_eq(rs_get_u64(d + 168), 72);
	ck_assert_uint_eq(rs_get_u64(d + 176), 1000);
	ck_assert_uint_eq(rs_get_u32(d + 184), crc32c(d + 80, 72));
	ck_assert_uint_eq(rs_get_u32(d + 188), crc32c(d + 152, 36));
	free(d);
}
END_TEST

static void assert_refused(const uint8_t *d, size_t len, int want,
			   const char *why)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct backup_info info;
	int rv = backup_decode(d, len, &info, NULL, NULL, errmsg);

	ck_assert_msg(rv == want, "len %zu: code %d (%s), wanted %d: %s", len,
		      rv, rs_strerror(rv), want, errmsg);
	ck_assert_msg(why == NULL || strstr(errmsg, why) != NULL,
		      "len %zu: '%s' not in: %s", len, why, errmsg);
}

START_TEST(test_every_cut_refused)
{
	uint8_t *d;
	size_t len;

	d = written(20, 30, &len);
	for (size_t cut = 0; cut < len; cut++)
		assert_refused(d, cut, RS_ECORRUPT, "truncated");
	free(d);
}
END_TEST

START_TEST(test_every_bit_flip_refused)
{
	uint8_t *d;
	size_t len;

	d = written(5, 3, &len);
	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit++) {
			d[i] ^= (uint8_t)(1u << bit);
			assert_refused(d, len, RS_ECORRUPT, NULL);
			d[i] ^= (uint8_t)(1u << bit);
		}
	free(d);
}
END_TEST

START_TEST(test_unknown_version_refused)
{
	uint8_t *d;
	size_t len;

	d = written(2, 2, &len);
	rs_put_u32(d + 8, 2);
	rs_put_u32(d + 60, crc32c(d, 60));
	assert_refused(d, len, RS_EFORMAT, "unsupported format version 2");
	free(d);
}
END_TEST

/* A trailer with a valid checksum that disagrees with the chunks. */
START_TEST(test_trailer_must_agree)
{
	static const struct {
		size_t at;
		const char *why;
	} fields[] = {{4, "chunk count"}, {8, "key count"},
		      {16, "image size"}, {24, "version differs"},
		      {32, "image checksum"}};
	uint8_t *d, *t;
	size_t len;

	d = written(4, 5, &len);
	t = d + len - BACKUP_TRAILER_SIZE;
	t[fields[_i].at] ^= 1;
	rs_put_u32(t + 36, crc32c(t, 36));
	assert_refused(d, len, RS_ECORRUPT, fields[_i].why);
	free(d);
}
END_TEST

START_TEST(test_bytes_after_trailer_refused)
{
	uint8_t *d, *more;
	size_t len;

	d = written(2, 2, &len);
	more = calloc(1, len + 1);
	memcpy(more, d, len);
	assert_refused(more, len + 1, RS_ECORRUPT, "1 bytes after the trailer");
	free(more);
	free(d);
}
END_TEST

START_TEST(test_writer_refuses_bad_entries)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct backup_header h = sample_header();
	struct backup_writer w;

	ck_assert_int_eq(backup_writer_open(&w, tfile, &h, errmsg), RS_OK);
	ck_assert_int_eq(backup_writer_add(&w, (const uint8_t *)"b", 1, NULL, 0,
					   errmsg),
			 RS_OK);
	ck_assert_int_eq(backup_writer_add(&w, (const uint8_t *)"a", 1, NULL, 0,
					   errmsg),
			 RS_EINVAL);
	ck_assert_ptr_nonnull(strstr(errmsg, "not after the previous key"));
	ck_assert_int_eq(backup_writer_add(&w, (const uint8_t *)"b", 1, NULL, 0,
					   errmsg),
			 RS_EINVAL);
	ck_assert_int_eq(backup_writer_add(&w, (const uint8_t *)"c", 0, NULL, 0,
					   errmsg),
			 RS_EINVAL);
	backup_writer_abort(&w);
	ck_assert(!exists("snap.tmp"));
	ck_assert(!exists("snap"));
}
END_TEST

/* A failed write, fsync or rename leaves neither the file nor its temp. */
START_TEST(test_write_fault_leaves_nothing)
{
	static const enum fileio_op ops[] = {FIO_OP_WRITE, FIO_OP_FSYNC,
					     FIO_OP_RENAME};
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct backup_header h = sample_header();
	struct backup_writer w;

	ck_assert_int_eq(backup_writer_open(&w, tfile, &h, errmsg), RS_OK);
	ck_assert_int_eq(backup_writer_add(&w, (const uint8_t *)"k", 1,
					   (const uint8_t *)"v", 1, errmsg),
			 RS_OK);
	fileio_fault_set(ops[_i], 1, ops[_i] == FIO_OP_WRITE ? ENOSPC : EIO);
	ck_assert_int_ne(backup_writer_finish(&w, NULL, errmsg), RS_OK);
	ck_assert_ptr_nonnull(strstr(errmsg, tdir));
	ck_assert(!exists("snap.tmp"));
	ck_assert(!exists("snap"));
}
END_TEST

START_TEST(test_callback_stops_decode)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct backup_info info;
	struct seen s = {0, 8, 3};
	uint8_t *d;
	size_t len;

	d = written(10, 8, &len);
	ck_assert_int_eq(backup_decode(d, len, &info, check_entry, &s, errmsg),
			 RS_EEXIST);
	ck_assert_uint_eq(s.n, 3);
	free(d);
}
END_TEST

static Suite *backup_suite(void)
{
	Suite *s = suite_create("backup");
	TCase *tc = testutil_tcase(s, "codec", setup, teardown, 60);

	tcase_add_loop_test(tc, test_round_trip, 0,
			    (int)(sizeof trips / sizeof trips[0]));
	tcase_add_test(tc, test_documented_layout);
	tcase_add_test(tc, test_every_cut_refused);
	tcase_add_test(tc, test_every_bit_flip_refused);
	tcase_add_test(tc, test_unknown_version_refused);
	tcase_add_loop_test(tc, test_trailer_must_agree, 0, 5);
	tcase_add_test(tc, test_bytes_after_trailer_refused);
	tcase_add_test(tc, test_writer_refuses_bad_entries);
	tcase_add_loop_test(tc, test_write_fault_leaves_nothing, 0, 3);
	tcase_add_test(tc, test_callback_stops_decode);
	return s;
}

int main(void)
{
	return testutil_run_suite(backup_suite());
}
