/*
 * Tests for the identity file (coordinator/identity.h): a round trip
 * through the file, the bytes as docs/storage-format.md draws them, every
 * cut and every bit flip refused with a message naming the file, an
 * unknown version refused as such, a write fault leaving the old file,
 * fresh cluster IDs that are known and differ, and the node's adoption of
 * a learned cluster ID (node_adopt_cluster_id, which the Raft handshake
 * calls).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/identity.h"
#include "coordinator/node_internal.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "storage/fileio.h"
#include "tests/unit/testutil.h"

static char *tdir;
static char *tfile; /* tdir/identity */

static void setup(void)
{
	fileio_fault_reset();
	tdir = testutil_tmpdir("identity");
	tfile = testutil_path(tdir, IDENTITY_FILE);
}

static void teardown(void)
{
	fileio_fault_reset();
	testutil_rmtree(tdir);
	free(tfile);
	free(tdir);
}

static struct identity sample(void)
{
	struct identity id = {.node_id = 3};
	for (unsigned i = 0; i < IDENTITY_CLUSTER_ID_SIZE; i++)
		id.cluster_id[i] = (uint8_t)(0xa0 + i);
	return id;
}

/* The file must be refused with code want and a message naming it. */
static void assert_refused(int want)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct identity got;
	int rv = identity_read(tdir, &got, errmsg);

	ck_assert_msg(rv == want, "code %d (%s), wanted %d: %s", rv,
		      rs_strerror(rv), want, errmsg);
	ck_assert_msg(strstr(errmsg, tfile) != NULL, "no file name in: %s",
		      errmsg);
}

START_TEST(test_round_trip)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct identity id = sample(), got;
	char hex[IDENTITY_CLUSTER_HEX_SIZE];

	ck_assert_int_eq(identity_read(tdir, &got, errmsg), RS_ENOTFOUND);
	ck_assert_int_eq(identity_write(tdir, &id, errmsg), RS_OK);
	memset(&got, 0, sizeof got);
	ck_assert_int_eq(identity_read(tdir, &got, errmsg), RS_OK);
	ck_assert_uint_eq(got.node_id, 3);
	ck_assert_mem_eq(got.cluster_id, id.cluster_id, sizeof id.cluster_id);
	ck_assert(identity_cluster_known(&got));
	identity_cluster_hex(&got, hex);
	ck_assert_str_eq(hex, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
	/* Rewritten with an unknown cluster ID: read back as unknown, "". */
	memset(id.cluster_id, 0, sizeof id.cluster_id);
	ck_assert_int_eq(identity_write(tdir, &id, errmsg), RS_OK);
	ck_assert_int_eq(identity_read(tdir, &got, errmsg), RS_OK);
	ck_assert(!identity_cluster_known(&got));
	identity_cluster_hex(&got, hex);
	ck_assert_str_eq(hex, "");
	/* No temp file is left behind. */
	char *tmp = testutil_path(tdir, IDENTITY_FILE ".tmp");
	ck_assert_int_eq(access(tmp, F_OK), -1);
	free(tmp);
}
END_TEST

/* The layout of docs/storage-format.md, byte by byte. */
START_TEST(test_documented_layout)
{
	struct identity id = sample();
	uint8_t buf[IDENTITY_SIZE];

	identity_encode(&id, buf);
	ck_assert_mem_eq(buf, "RSIDENT\0", 8);
	ck_assert_uint_eq(rs_get_u32(buf + 8), 1);
	ck_assert_uint_eq(rs_get_u32(buf + 12), 0);
	ck_assert_uint_eq(rs_get_u64(buf + 16), 3);
	ck_assert_mem_eq(buf + 24, id.cluster_id, 16);
	ck_assert_uint_eq(rs_get_u32(buf + 40), crc32c(buf, 40));
}
END_TEST

START_TEST(test_every_cut_refused)
{
	struct identity id = sample();
	uint8_t buf[IDENTITY_SIZE + 1];

	identity_encode(&id, buf);
	for (size_t len = 0; len < IDENTITY_SIZE; len++) {
		testutil_write_file(tfile, buf, len);
		assert_refused(RS_ECORRUPT);
	}
	buf[IDENTITY_SIZE] = 0; /* one byte too many */
	testutil_write_file(tfile, buf, sizeof buf);
	assert_refused(RS_ECORRUPT);
}
END_TEST

START_TEST(test_every_bit_flip_refused)
{
	struct identity id = sample();
	uint8_t good[IDENTITY_SIZE], bad[IDENTITY_SIZE];

	identity_encode(&id, good);
	for (unsigned bit = 0; bit < IDENTITY_SIZE * 8; bit++) {
		memcpy(bad, good, sizeof bad);
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		testutil_write_file(tfile, bad, sizeof bad);
		assert_refused(RS_ECORRUPT);
	}
}
END_TEST

/* A well-formed file of a later version: refused as such, naming it. */
START_TEST(test_unknown_version_refused)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct identity id = sample(), got;
	uint8_t buf[IDENTITY_SIZE];

	identity_encode(&id, buf);
	rs_put_u32(buf + 8, 2);
	rs_put_u32(buf + 40, crc32c(buf, 40));
	testutil_write_file(tfile, buf, sizeof buf);
	ck_assert_int_eq(identity_read(tdir, &got, errmsg), RS_EFORMAT);
	ck_assert_ptr_nonnull(strstr(errmsg, tfile));
	ck_assert_ptr_nonnull(strstr(errmsg, "format version 2"));
	/* ... also when that version is longer */
	uint8_t longer[IDENTITY_SIZE + 8] = {0};
	memcpy(longer, buf, sizeof buf);
	testutil_write_file(tfile, longer, sizeof longer);
	ck_assert_int_eq(identity_read(tdir, &got, errmsg), RS_EFORMAT);
	ck_assert_ptr_nonnull(strstr(errmsg, tfile));
	ck_assert_ptr_nonnull(strstr(errmsg, "format version 2 (52 bytes)"));
}
END_TEST

/* A node id of 0 is no node: refused even with a good checksum. */
START_TEST(test_zero_node_refused)
{
	struct identity id = sample();
	uint8_t buf[IDENTITY_SIZE];

	id.node_id = 0;
	identity_encode(&id, buf);
	testutil_write_file(tfile, buf, sizeof buf);
	assert_refused(RS_ECORRUPT);
}
END_TEST

/* A failed write (at the write, the fsync, the rename) leaves the old file
 * as it was and says which file. */
START_TEST(test_write_fault_keeps_old_file)
{
	static const enum fileio_op ops[] = {FIO_OP_WRITE, FIO_OP_FSYNC,
					     FIO_OP_RENAME};
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct identity old = sample(), next = sample(), got;

	next.node_id = 9;
	ck_assert_int_eq(identity_write(tdir, &old, errmsg), RS_OK);
	fileio_fault_set(ops[_i], 1, EIO);
	ck_assert_int_ne(identity_write(tdir, &next, errmsg), RS_OK);
	ck_assert_ptr_nonnull(strstr(errmsg, tfile));
	ck_assert_int_eq(identity_read(tdir, &got, errmsg), RS_OK);
	ck_assert_uint_eq(got.node_id, old.node_id);
}
END_TEST

START_TEST(test_new_cluster_ids_known_and_distinct)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct identity a = {.node_id = 1}, b = {.node_id = 1};

	ck_assert_int_eq(identity_new_cluster_id(a.cluster_id, errmsg), RS_OK);
	ck_assert_int_eq(identity_new_cluster_id(b.cluster_id, errmsg), RS_OK);
	ck_assert(identity_cluster_known(&a) && identity_cluster_known(&b));
	ck_assert(memcmp(a.cluster_id, b.cluster_id, sizeof a.cluster_id) != 0);
}
END_TEST

/* A node that learns the cluster ID stores it before using it; an ID it
 * already has is never replaced by another, nor by zero. */
START_TEST(test_node_adopts_cluster_id_once)
{
	static struct node n; /* big (struct raft): not on the stack */
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct identity learned = sample(), other = sample(), got;
	uint8_t zero[IDENTITY_CLUSTER_ID_SIZE] = {0};

	memset(&n, 0, sizeof n);
	snprintf(n.cfg.data_dir, sizeof n.cfg.data_dir, "%s", tdir);
	n.cfg.id = n.identity.node_id = 2;
	ck_assert_int_eq(identity_write(tdir, &n.identity, errmsg), RS_OK);

	ck_assert_int_eq(node_adopt_cluster_id(&n, zero, errmsg), RS_EINVAL);
	ck_assert_int_eq(node_adopt_cluster_id(&n, learned.cluster_id, errmsg),
			 RS_OK);
	ck_assert_mem_eq(n.identity.cluster_id, learned.cluster_id, 16);
	ck_assert_int_eq(identity_read(tdir, &got, errmsg), RS_OK);
	ck_assert_uint_eq(got.node_id, 2);
	ck_assert_mem_eq(got.cluster_id, learned.cluster_id, 16);
	/* the same again is a no-op success; another is refused */
	ck_assert_int_eq(node_adopt_cluster_id(&n, learned.cluster_id, errmsg),
			 RS_OK);
	other.cluster_id[0] ^= 1;
	ck_assert_int_eq(node_adopt_cluster_id(&n, other.cluster_id, errmsg),
			 RS_EEXIST);
	ck_assert_ptr_nonnull(strstr(errmsg, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"));
	ck_assert_int_eq(identity_read(tdir, &got, errmsg), RS_OK);
	ck_assert_mem_eq(got.cluster_id, learned.cluster_id, 16);
	/* a failed write leaves the node's view as it was */
	memset(n.identity.cluster_id, 0, 16);
	ck_assert_int_eq(identity_write(tdir, &n.identity, errmsg), RS_OK);
	fileio_fault_set(FIO_OP_FSYNC, 1, EIO);
	ck_assert_int_ne(node_adopt_cluster_id(&n, learned.cluster_id, errmsg),
			 RS_OK);
	ck_assert(!identity_cluster_known(&n.identity));
}
END_TEST

static Suite *identity_suite(void)
{
	Suite *s = suite_create("identity");
	TCase *tc = testutil_tcase(s, "file", setup, teardown, 30);

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_documented_layout);
	tcase_add_test(tc, test_every_cut_refused);
	tcase_add_test(tc, test_every_bit_flip_refused);
	tcase_add_test(tc, test_unknown_version_refused);
	tcase_add_test(tc, test_zero_node_refused);
	tcase_add_loop_test(tc, test_write_fault_keeps_old_file, 0, 3);
	tcase_add_test(tc, test_new_cluster_ids_known_and_distinct);
	tc = testutil_tcase(s, "node", setup, teardown, 30);
	tcase_add_test(tc, test_node_adopts_cluster_id_once);
	return s;
}

int main(void)
{
	return testutil_run_suite(identity_suite());
}
