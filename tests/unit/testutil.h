/*
 * testutil: helpers shared by the Check unit tests.
 *
 * Temporary directories live under $TMPDIR (default /tmp) and are removed
 * with their content by testutil_rmtree.  The random seed comes from
 * $RS_TEST_SEED when set, else from the clock; tests print it on failure so
 * a run can be repeated.
 */
#ifndef RS_TESTUTIL_H
#define RS_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Create a fresh directory "<tmp>/rs-<tag>-XXXXXX"; returns a malloc'ed
 * path.  Aborts the test on failure. */
char *testutil_tmpdir(const char *tag);
/* rm -rf path (only ever used on testutil_tmpdir results). */
void testutil_rmtree(const char *path);
/* Join a directory and a name into a malloc'ed path. */
char *testutil_path(const char *dir, const char *name);
/* The seed for randomized tests (prints "seed=N" to stderr once). */
uint64_t testutil_seed(void);
/* xorshift64* PRNG. */
uint64_t testutil_rand(uint64_t *state);
/* Run every test of s (forking per test, as Check does by default; CK_FORK
 * in the environment still applies), free the runner, and return the
 * process exit status: EXIT_SUCCESS only if every test passed. */
int testutil_run_suite(Suite *s);

/* A test case added to s with the checked fixture (setup, teardown) and a
 * timeout in seconds. */
TCase *testutil_tcase(Suite *s, const char *name, void (*setup)(void),
		      void (*teardown)(void), double timeout_s);

/* A loopback port nothing listens on now (bound, then released). */
int testutil_free_port(void);

/* Read/write a whole file (aborts on failure). */
uint8_t *testutil_read_file(const char *path, size_t *len);
void testutil_write_file(const char *path, const void *data, size_t len);

#endif /* RS_TESTUTIL_H */
