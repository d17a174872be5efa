/* Tests for snapsync: once enabled on a directory, an fsync of a large
 * "tmp-snapshot-..." file there is preceded by a write-back in pieces of
 * SNAPSYNC_CHUNK (counted), and the file is intact; every other fsync
 * (small, another name, another directory, disabled) passes straight
 * through; libc's errors come back unchanged.  And the binding that
 * matters: c-raft's own raft_uv, writing a snapshot, gets it paced. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/snapsync.h"
#include "tests/unit/raftuvrig.h"
#include "tests/unit/testutil.h"

static char *dir;

static void setup(void)
{
	dir = testutil_tmpdir("snapsync");
	snapsync_disable();
}

static void teardown(void)
{
	snapsync_disable();
	testutil_rmtree(dir);
	free(dir);
}

/* Bytes that compress to nothing less (raft_uv may compress). */
static unsigned char *noise(size_t len)
{
	unsigned char *p = malloc(len);
	uint64_t x = 0x9e3779b97f4a7c15ull;

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
	return p;
}

/* Create d/name holding data[0, len), written (buffered) but not synced. */
static int create(const char *d, const char *name, const unsigned char *data,
		  size_t len)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/%s", d, name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	return fd;
}

/* fsync of fd leaves the counters moved by exactly paced/passed. */
static void expect_fsync(int fd, int paced, int passed)
{
	struct snapsync_stats before, after;

	snapsync_get_stats(&before);
	ck_assert_int_eq(fsync(fd), 0);
	snapsync_get_stats(&after);
	ck_assert_uint_eq(after.paced, before.paced + (uint64_t)paced);
	ck_assert_uint_eq(after.passed, before.passed + (uint64_t)passed);
	ck_assert_uint_eq(after.failed, before.failed);
}

START_TEST(test_snapshot_file_paced)
{
	char errmsg[RS_ERRMSG_SIZE];
	const size_t len = 3 * 1024 * 1024 + 100; /* 13 pieces, the last short */
	unsigned char *data = noise(len), *back = malloc(len);
	struct snapsync_stats before, after;
	int fd;

	ck_assert_int_eq(snapsync_enable(dir, errmsg), RS_OK);
	fd = create(dir, "tmp-snapshot-1-2-3", data, len);
	snapsync_get_stats(&before);
	ck_assert_int_eq(fsync(fd), 0);
	snapsync_get_stats(&after);
	ck_assert_uint_eq(after.paced, before.paced + 1);
	ck_assert_uint_eq(after.unsupported, before.unsupported);
	ck_assert_uint_eq(after.failed, before.failed);
	ck_assert_uint_eq(after.passed, before.passed);
	ck_assert_uint_eq(after.bytes, before.bytes + len);
	ck_assert_uint_eq(after.chunks,
			  before.chunks +
				  (len + SNAPSYNC_CHUNK - 1) / SNAPSYNC_CHUNK);
	ck_assert_int_eq(pread(fd, back, len, 0), (ssize_t)len);
	ck_assert_int_eq(memcmp(back, data, len), 0);
	close(fd);
	free(data);
	free(back);
}
END_TEST

START_TEST(test_others_pass_through)
{
	char errmsg[RS_ERRMSG_SIZE], sub[512];
	const size_t big = 2 * SNAPSYNC_MIN_BYTES;
	unsigned char *data = noise(big);
	int fd, pipefd[2];

	/* disabled: even a large snapshot file */
	fd = create(dir, "tmp-snapshot-1-1-1", data, big);
	expect_fsync(fd, 0, 1);
	close(fd);

	ck_assert_int_eq(snapsync_enable(dir, errmsg), RS_OK);
	/* its .meta beside it, and anything under the minimum */
	fd = create(dir, "tmp-snapshot-1-2-3.meta", data, 48);
	expect_fsync(fd, 0, 1);
	close(fd);
	fd = create(dir, "tmp-snapshot-1-2-4", data, SNAPSYNC_MIN_BYTES - 1);
	expect_fsync(fd, 0, 1);
	close(fd);
	/* another name: a snapshot already renamed, a segment, the metadata */
	fd = create(dir, "snapshot-1-2-5", data, big);
	expect_fsync(fd, 0, 1);
	close(fd);
	fd = create(dir, "open-1", data, big);
	expect_fsync(fd, 0, 1);
	close(fd);
	/* another directory, even below this one */
	snprintf(sub, sizeof sub, "%s/sub", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	fd = create(sub, "tmp-snapshot-1-2-6", data, big);
	expect_fsync(fd, 0, 1);
	close(fd);
	/* the directory itself */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	expect_fsync(fd, 0, 1);
	close(fd);
	/* disabled again */
	snapsync_disable();
	fd = create(dir, "tmp-snapshot-1-2-7", data, big);
	expect_fsync(fd, 0, 1);
	close(fd);
	free(data);

	/* libc's errors, unchanged */
	ck_assert_int_eq(snapsync_enable(dir, errmsg), RS_OK);
	errno = 0;
	ck_assert_int_eq(fsync(-1), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(pipe(pipefd), 0);
	errno = 0;
	ck_assert_int_eq(fsync(pipefd[0]), -1);
	ck_assert_int_eq(errno, EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);

	/* a directory that is not there: named, and the last one kept */
	ck_assert_int_eq(snapsync_enable("/nonexistent/raft", errmsg),
			 RS_EINVAL);
	ck_assert_ptr_nonnull(strstr(errmsg, "/nonexistent/raft"));
	data = noise(big);
	fd = create(dir, "tmp-snapshot-1-2-8", data, big);
	expect_fsync(fd, 1, 0);
	close(fd);
	free(data);
}
END_TEST

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The fault hook (tools/chaos kill-leader-during-install): any snapshot
 * file of the directory waits, small ones too; nothing else does. */
static uint64_t fault_delays(void)
{
	struct snapsync_stats st;

	snapsync_get_stats(&st);
	return st.fault_delays;
}

START_TEST(test_fault_delay)
{
	char errmsg[RS_ERRMSG_SIZE];
	unsigned char *data = noise(100);
	struct timespec t0;
	uint64_t n0 = fault_delays();
	int snap, other;

	ck_assert_int_eq(snapsync_enable(dir, errmsg), RS_OK);
	snapsync_set_fault_delay_ms(200);
	snap = create(dir, "tmp-snapshot-1-2-3.meta", data, 100);
	other = create(dir, "open-1", data, 100);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_fsync(snap, 0, 1);
	ck_assert_double_ge(ms_since(&t0), 200.0);
	ck_assert_uint_eq(fault_delays(), n0 + 1);
	expect_fsync(other, 0, 1);
	ck_assert_uint_eq(fault_delays(), n0 + 1);
	snapsync_set_fault_delay_ms(0);
	expect_fsync(snap, 0, 1);
	ck_assert_uint_eq(fault_delays(), n0 + 1);
	close(snap);
	close(other);
	free(data);
}
END_TEST

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
	*(int *)req->data = status == 0 ? 1 : 2;
}

/* raft_uv itself, writing a snapshot of a bootstrapped log: its fsync of
 * the snapshot file reaches snapsync, which paces it. */
START_TEST(test_raft_uv_snapshot_paced)
{
	char errmsg[RS_ERRMSG_SIZE];
	const size_t len = 2 * 1024 * 1024;
	struct raftuvrig r;
	struct snapsync_stats before, after;
	struct raft_snapshot snap;
	struct raft_buffer buf;
	struct raft_io_snapshot_put req;
	int put = 0; /* 1: done, 2: failed */

	ck_assert_int_eq(snapsync_enable(dir, errmsg), RS_OK);
	raftuvrig_open(&r, dir, 0, false);
	memset(&snap, 0, sizeof snap);
	snap.index = 1;
	snap.term = 1;
	snap.configuration = r.conf;
	snap.configuration_index = 1;
	buf.len = len;
	buf.base = noise(len);
	snap.bufs = &buf;
	snap.n_bufs = 1;
	snapsync_get_stats(&before);
	req.data = &put;
	ck_assert_int_eq(r.io.snapshot_put(&r.io, 8, &req, &snap, put_cb), 0);
	while (put == 0)
		uv_run(&r.loop, UV_RUN_ONCE);
	ck_assert_int_eq(put, 1);
	snapsync_get_stats(&after);
	ck_assert_uint_eq(after.paced, before.paced + 1);
	ck_assert_uint_ge(after.bytes, before.bytes + len);
	ck_assert_uint_eq(after.failed, before.failed);
	free(buf.base);
	raftuvrig_close(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snapsync");
	TCase *tc = testutil_tcase(s, "pace", setup, teardown, 30);

	tcase_add_test(tc, test_snapshot_file_paced);
	tcase_add_test(tc, test_others_pass_through);
	tcase_add_test(tc, test_fault_delay);
	tcase_add_test(tc, test_raft_uv_snapshot_paced);
	return testutil_run_suite(s);
}
