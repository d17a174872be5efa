/* Tests for crc32c: published vectors (RFC 3720 B.4 and the "check" value),
 * incremental use, and agreement of the hardware and portable paths. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/crc32c.h"
#include "tests/unit/testutil.h"

START_TEST(test_check_value)
{
	ck_assert_uint_eq(crc32c("123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c_extend_portable(0, "123456789", 9),
			  0xE3069283u);
	ck_assert_uint_eq(crc32c("", 0), 0u);
}
END_TEST

/* RFC 3720 (iSCSI) appendix B.4 vectors. */
START_TEST(test_rfc3720)
{
	uint8_t buf[32];
	memset(buf, 0, sizeof buf);
	ck_assert_uint_eq(crc32c(buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof buf);
	ck_assert_uint_eq(crc32c(buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(crc32c(buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	ck_assert_uint_eq(crc32c(buf, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_incremental_and_paths_agree)
{
	uint64_t st = testutil_seed();
	size_t n = 4099;
	uint8_t *buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)testutil_rand(&st);
	uint32_t whole = crc32c(buf, n);
	ck_assert_uint_eq(crc32c_extend_portable(0, buf, n), whole);
	/* Every split point and every misalignment gives the same value. */
	for (size_t cut = 0; cut <= 64; cut++) {
		uint32_t c = crc32c_extend(0, buf, cut);
		ck_assert_uint_eq(crc32c_extend(c, buf + cut, n - cut), whole);
	}
	for (size_t off = 1; off < 9; off++)
		ck_assert_uint_eq(crc32c(buf + off, n - off),
				  crc32c_extend_portable(0, buf + off, n - off));
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_check_value);
	tcase_add_test(tc, test_rfc3720);
	tcase_add_test(tc, test_incremental_and_paths_agree);
	suite_add_tcase(s, tc);
	return testutil_run_suite(s);
}
