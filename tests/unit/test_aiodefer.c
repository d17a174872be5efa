/* Tests for aiodefer: every system call but io_destroy goes through
 * unchanged (arguments, result, errno); io_destroy is synchronous until
 * aiodefer_enable, and after it returns at once while its thread destroys
 * the context (and counts a context the kernel refuses). */
#include <check.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "raftstore/aiodefer.h"
#include "raftstore/lib/rs_error.h"
#include "tests/unit/testutil.h"

static aio_context_t ctx_new(void)
{
	aio_context_t ctx = 0;

	ck_assert_int_eq(syscall(SYS_io_setup, 8, &ctx), 0);
	ck_assert_uint_ne(ctx, 0);
	return ctx;
}

/* Whether the kernel still knows ctx (io_getevents answers EINVAL once it
 * is destroyed). */
static bool ctx_alive(aio_context_t ctx)
{
	struct io_event ev;
	struct timespec zero = {0, 0};
	long rv = syscall(SYS_io_getevents, ctx, 0, 1, &ev, &zero);

	ck_assert(rv == 0 || (rv == -1 && errno == EINVAL));
	return rv == 0;
}

START_TEST(test_other_calls_pass_through)
{
	int fds[2];
	char buf[8] = "";

	ck_assert_int_eq(syscall(SYS_getpid), getpid());
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(syscall(SYS_write, fds[1], "abc", 3), 3);
	ck_assert_int_eq(syscall(SYS_read, fds[0], buf, sizeof buf), 3);
	ck_assert_str_eq(buf, "abc");
	close(fds[0]);
	close(fds[1]);
	/* an error comes back as -1 and errno */
	errno = 0;
	ck_assert_int_eq(syscall(SYS_close, -1), -1);
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(test_destroy_deferred_once_enabled)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct aiodefer_stats st;
	aio_context_t ctx;

	/* Before: the call is made there and then. */
	ctx = ctx_new();
	ck_assert(ctx_alive(ctx));
	ck_assert_int_eq(syscall(SYS_io_destroy, ctx), 0);
	ck_assert(!ctx_alive(ctx));
	aiodefer_get_stats(&st);
	ck_assert_uint_eq(st.deferred, 0);

	/* After: handed to the thread, which destroys it. */
	ck_assert_int_eq(aiodefer_enable(errmsg), RS_OK);
	ck_assert_int_eq(aiodefer_enable(errmsg), RS_OK); /* once is enough */
	ctx = ctx_new();
	ck_assert_int_eq(syscall(SYS_io_destroy, ctx), 0);
	aiodefer_drain();
	aiodefer_get_stats(&st);
	ck_assert_uint_eq(st.deferred, 1);
	ck_assert_uint_eq(st.destroyed, 1);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert(!ctx_alive(ctx));

	/* Many at once, more than the queue holds: every one destroyed, the
	 * overflow there and then. */
	aio_context_t many[100];
	for (unsigned i = 0; i < 100; i++)
		many[i] = ctx_new();
	for (unsigned i = 0; i < 100; i++)
		ck_assert_int_eq(syscall(SYS_io_destroy, many[i]), 0);
	aiodefer_drain();
	for (unsigned i = 0; i < 100; i++)
		ck_assert(!ctx_alive(many[i]));
	aiodefer_get_stats(&st);
	ck_assert_uint_ge(st.deferred, 1 + 64);
	ck_assert_uint_eq(st.destroyed, st.deferred);
	ck_assert_uint_eq(st.failed, 0);

	/* A context the kernel does not know: 0 at once, counted as failed. */
	ck_assert_int_eq(syscall(SYS_io_destroy, ctx), 0);
	aiodefer_drain();
	aiodefer_get_stats(&st);
	ck_assert_uint_eq(st.failed, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("aiodefer");
	TCase *tc = testutil_tcase(s, "syscall", NULL, NULL, 30);

	tcase_add_test(tc, test_other_calls_pass_through);
	tcase_add_test(tc, test_destroy_deferred_once_enabled);
	return testutil_run_suite(s);
}
