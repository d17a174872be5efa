/* Tests for segfill: once enabled on a directory, posix_fallocate on one of
 * its open segments ("open-N") leaves the range written with zeros (no
 * extent the filesystem reports unwritten, where it reports extents at
 * all); every other call passes straight through to libc (the range stays
 * allocated only); libc's errors come back unchanged.  And the binding
 * that matters: c-raft's own raft_uv, preparing its open segments in a
 * directory, gets them filled. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/lib/rs_error.h"
#include "raftstore/segfill.h"
#include "tests/unit/raftuvrig.h"
#include "tests/unit/testutil.h"

#define LEN (1024 * 1024)

static char *dir;

static void setup(void)
{
	dir = testutil_tmpdir("segfill");
	segfill_disable();
}

static void teardown(void)
{
	segfill_disable();
	testutil_rmtree(dir);
	free(dir);
}

static int create(const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_DSYNC | O_CLOEXEC,
		  0600);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* How many of fd's extents the filesystem reports unwritten; -1 if it
 * reports none at all (FIEMAP unsupported, as on tmpfs). */
static int unwritten_extents(int fd)
{
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[32];
	} q;
	int n = 0;

	memset(&q, 0, sizeof q);
	q.fm.fm_length = FIEMAP_MAX_OFFSET;
	q.fm.fm_flags = FIEMAP_FLAG_SYNC;
	q.fm.fm_extent_count = 32;
	if (ioctl(fd, FS_IOC_FIEMAP, &q.fm) != 0 || q.fm.fm_mapped_extents == 0)
		return -1;
	for (unsigned i = 0; i < q.fm.fm_mapped_extents; i++)
		n += (q.fm.fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN) != 0;
	return n;
}

static void expect_zeros(int fd, off_t len)
{
	static unsigned char buf[LEN];
	char link[64];
	int rfd;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	rfd = open(link, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_eq(pread(rfd, buf, sizeof buf, 0), len);
	for (off_t i = 0; i < len; i++)
		ck_assert_uint_eq(buf[i], 0);
	close(rfd);
}

START_TEST(test_open_segment_filled)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct segfill_stats before, after;
	struct stat st;
	int fd, ref;

	ck_assert_int_eq(segfill_enable(dir, errmsg), RS_OK);
	fd = create("open-17");
	segfill_get_stats(&before);
	ck_assert_int_eq(posix_fallocate(fd, 0, LEN), 0);
	segfill_get_stats(&after);
	ck_assert_uint_eq(after.filled, before.filled + 1);
	ck_assert_uint_eq(after.bytes, before.bytes + LEN);
	ck_assert_uint_eq(after.failed, before.failed);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, LEN);
	expect_zeros(fd, LEN);
	/* where libc's allocation leaves extents unwritten (ext4, XFS), the
	 * filled segment has none */
	ref = create("ref");
	ck_assert_int_eq(posix_fallocate(ref, 0, LEN), 0);
	if (unwritten_extents(ref) > 0)
		ck_assert_int_eq(unwritten_extents(fd), 0);
	else
		fprintf(stderr, "test_segfill: %s reports no unwritten extents "
				"after fallocate: extents not compared\n", dir);
	close(ref);
	close(fd);
}
END_TEST

/* Other names in the directory, and any file while disabled: libc's
 * allocation only (where the filesystem allocates unwritten extents, they
 * stay unwritten). */
START_TEST(test_others_pass_through)
{
	static const char *names[] = {"open-", "open-1x", "opened-1", "x-open-1",
				      "0000000000000001-0000000000000009",
				      ".probe", "metadata1"};
	char errmsg[RS_ERRMSG_SIZE];
	struct segfill_stats before, after;
	int fd;

	ck_assert_int_eq(segfill_enable(dir, errmsg), RS_OK);
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
		segfill_get_stats(&before);
		fd = create(names[i]);
		ck_assert_int_eq(posix_fallocate(fd, 0, LEN), 0);
		segfill_get_stats(&after);
		ck_assert_uint_eq(after.filled, before.filled);
		ck_assert_uint_eq(after.passed, before.passed + 1);
		close(fd);
	}
	segfill_disable();
	segfill_get_stats(&before);
	fd = create("open-2");
	ck_assert_int_eq(posix_fallocate(fd, 0, LEN), 0);
	segfill_get_stats(&after);
	ck_assert_uint_eq(after.filled, before.filled);
	ck_assert_uint_eq(after.passed, before.passed + 1);
	close(fd);
}
END_TEST

START_TEST(test_errors_come_back)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct segfill_stats before, after;
	int fd;

	ck_assert_int_eq(segfill_enable(dir, errmsg), RS_OK);
	segfill_get_stats(&before);
	ck_assert_int_eq(posix_fallocate(-1, 0, LEN), EBADF);
	fd = create("open-3");
	ck_assert_int_eq(posix_fallocate(fd, 0, -1), EINVAL);
	close(fd);
	segfill_get_stats(&after);
	ck_assert_uint_eq(after.filled, before.filled);
	ck_assert_uint_eq(after.failed, before.failed);

	ck_assert_int_eq(segfill_enable("/nonexistent/raft", errmsg),
			 RS_EINVAL);
	ck_assert_ptr_nonnull(strstr(errmsg, "/nonexistent/raft"));
}
END_TEST

static void appended_cb(struct raft_io_append *req, int status)
{
	*(int *)req->data = status == 0 ? 1 : 2;
}

/* raft_uv itself, preparing the open segments of a bootstrapped log: its
 * posix_fallocate calls reach segfill, and the segments are written. */
START_TEST(test_raft_uv_segments_filled)
{
	char errmsg[RS_ERRMSG_SIZE], path[512];
	struct raftuvrig r;
	struct segfill_stats before, after;
	struct raft_entry entry;
	struct raft_io_append req;
	int appended = 0; /* 1: done, 2: failed */
	int fd;

	ck_assert_int_eq(segfill_enable(dir, errmsg), RS_OK);
	segfill_get_stats(&before);
	raftuvrig_open(&r, dir, LEN, true);
	/* raft_uv prepares its open segments for its first append */
	entry.term = 1;
	entry.type = RAFT_COMMAND;
	entry.buf.len = 8;
	entry.buf.base = raft_calloc(1, 8);
	entry.batch = NULL;
	req.data = &appended;
	ck_assert_int_eq(r.io.append(&r.io, &req, &entry, 1, appended_cb), 0);
	while (appended == 0)
		uv_run(&r.loop, UV_RUN_ONCE);
	ck_assert_int_eq(appended, 1);
	raft_free(entry.buf.base);
	/* the segment the entry went to (raft_uv closes it into a closed
	 * segment at its close) */
	snprintf(path, sizeof path, "%s/open-1", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_le(unwritten_extents(fd), 0);
	close(fd);
	raftuvrig_close(&r);
	segfill_get_stats(&after);
	ck_assert_uint_ge(after.filled, before.filled + 1);
	ck_assert_uint_eq(after.failed, before.failed);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("segfill");
	TCase *tc = testutil_tcase(s, "fill", setup, teardown, 30);

	tcase_add_test(tc, test_open_segment_filled);
	tcase_add_test(tc, test_others_pass_through);
	tcase_add_test(tc, test_errors_come_back);
	tcase_add_test(tc, test_raft_uv_segments_filled);
	return testutil_run_suite(s);
}
