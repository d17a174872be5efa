/*
 * Tests of raftheap, c-raft's allocator whose frees a bracket puts off to a
 * libuv worker (c-raft guard 15): calls pass through outside a bracket;
 * inside, a freed block stays intact until the end (glibc would write its
 * free-list pointers over the first bytes at once; ASan would flag the
 * read), a long list goes to a worker, a short one is freed at the end,
 * and other threads' frees are not held.  ASan and valgrind check that
 * everything is freed in the end.  The bracket around c-raft's
 * snapshot-put callback is tested in test_raftio.
 */
#include <check.h>
#include <pthread.h>
#include <raft.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "raftstore/raftheap.h"
#include "tests/unit/testutil.h"

#define BLOCK 64
#define MANY 1000

static uv_loop_t loop;

static void setup(void)
{
	raftheap_install();
	ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	raft_heap_set_default();
}

static unsigned char *block(unsigned char fill)
{
	unsigned char *p = raft_malloc(BLOCK);

	ck_assert_ptr_nonnull(p);
	memset(p, fill, BLOCK);
	return p;
}

static void assert_intact(const unsigned char *p, unsigned char fill)
{
	for (unsigned i = 0; i < BLOCK; i++)
		ck_assert_uint_eq(p[i], fill);
}

START_TEST(test_passes_through)
{
	struct raftheap_stats before = raftheap_stats(), after;
	unsigned char *p = block(1);
	void *z = raft_calloc(4, 16);
	void *a = raft_aligned_alloc(4096, 8192);

	ck_assert_ptr_nonnull(z);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq((uintptr_t)a % 4096, 0);
	p = raft_realloc(p, 2 * BLOCK);
	ck_assert_ptr_nonnull(p);
	assert_intact(p, 1);
	raft_free(p);
	raft_free(z);
	raft_aligned_free(4096, a);
	raft_free(NULL);
	after = raftheap_stats();
	ck_assert_mem_eq(&before, &after, sizeof before);
}
END_TEST

/* Inside the bracket nothing is freed; the end hands the list to a
 * worker, whose frees the loop waits for in teardown. */
START_TEST(test_many_frees_go_to_a_worker)
{
	unsigned char *p[MANY];
	struct raftheap_stats s;

	for (unsigned i = 0; i < MANY; i++)
		p[i] = block((unsigned char)(i | 1));
	raftheap_defer_begin();
	for (unsigned i = 0; i < MANY; i++)
		raft_free(p[i]);
	raft_aligned_free(8, block(7)); /* the aligned path too */
	for (unsigned i = 0; i < MANY; i++)
		assert_intact(p[i], (unsigned char)(i | 1));
	s = raftheap_stats();
	ck_assert_uint_eq(s.deferred, 0);
	raftheap_defer_end(&loop);
	s = raftheap_stats();
	ck_assert_uint_eq(s.deferred, MANY + 1);
	ck_assert_uint_eq(s.lists, 1);
	ck_assert_uint_eq(s.freed_at_end, 0);
	/* a second bracket starts a new list */
	raftheap_defer_begin();
	for (unsigned i = 0; i < RAFTHEAP_DEFER_MIN; i++)
		raft_free(block(3));
	raftheap_defer_end(&loop);
	ck_assert_uint_eq(raftheap_stats().lists, 2);
}
END_TEST

START_TEST(test_few_frees_at_the_end)
{
	unsigned char *p[RAFTHEAP_DEFER_MIN - 1];
	struct raftheap_stats s;

	for (unsigned i = 0; i < RAFTHEAP_DEFER_MIN - 1; i++)
		p[i] = block(5);
	raftheap_defer_begin();
	for (unsigned i = 0; i < RAFTHEAP_DEFER_MIN - 1; i++)
		raft_free(p[i]);
	assert_intact(p[0], 5);
	raftheap_defer_end(&loop);
	s = raftheap_stats();
	ck_assert_uint_eq(s.lists, 0);
	ck_assert_uint_eq(s.deferred, 0);
	ck_assert_uint_eq(s.freed_at_end, RAFTHEAP_DEFER_MIN - 1);
	/* an empty bracket */
	raftheap_defer_begin();
	raftheap_defer_end(&loop);
	ck_assert_uint_eq(raftheap_stats().freed_at_end, RAFTHEAP_DEFER_MIN - 1);
}
END_TEST

static void *free_many(void *arg)
{
	struct raftheap_stats *out = arg;

	for (unsigned i = 0; i < MANY; i++)
		raft_free(block(9));
	*out = raftheap_stats();
	return NULL;
}

/* A bracket holds only its own thread's frees: c-raft's workers free
 * through the same heap. */
START_TEST(test_other_threads_pass_through)
{
	pthread_t t;
	struct raftheap_stats theirs, ours;

	raftheap_defer_begin();
	ck_assert_int_eq(pthread_create(&t, NULL, free_many, &theirs), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	raftheap_defer_end(&loop);
	ours = raftheap_stats();
	ck_assert_uint_eq(theirs.deferred + theirs.freed_at_end, 0);
	ck_assert_uint_eq(ours.deferred + ours.freed_at_end, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftheap");
	TCase *tc = testutil_tcase(s, "heap", setup, teardown, 10);

	tcase_add_test(tc, test_passes_through);
	tcase_add_test(tc, test_many_frees_go_to_a_worker);
	tcase_add_test(tc, test_few_frees_at_the_end);
	tcase_add_test(tc, test_other_threads_pass_through);
	return testutil_run_suite(s);
}
