/* Tests for bytes: the key order (shorter prefix first, unsigned bytes,
 * empty keys, a result that is exactly -1, 0 or 1) and hex both ways. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "tests/unit/testutil.h"

struct key {
	const char *s;
	size_t len;
};

#define KEY(lit) { lit, sizeof lit - 1 }

/* Strictly increasing in the project's key order. */
static const struct key sorted[] = {
	KEY(""),	 KEY("\x00"),	  KEY("\x00\x00"), KEY("\x00\xff"),
	KEY("\x01"),	 KEY("a"),	  KEY("a\x00"),	   KEY("a\x01"),
	KEY("ab"),	 KEY("abc"),	  KEY("b"),	   KEY("\x7f"),
	KEY("\x80"),	 KEY("\xfe\xff"), KEY("\xff"),	   KEY("\xff\x00"),
	KEY("\xff\xff"),
};
#define SORTED_N (sizeof sorted / sizeof sorted[0])

START_TEST(test_compare_sorted_table)
{
	for (size_t i = 0; i < SORTED_N; i++) {
		for (size_t j = 0; j < SORTED_N; j++) {
			int want = i < j ? -1 : i > j;
			int got = bytes_compare(sorted[i].s, sorted[i].len,
						sorted[j].s, sorted[j].len);
			ck_assert_msg(got == want, "keys %zu and %zu: %d, want %d",
				      i, j, got, want);
		}
	}
}
END_TEST

START_TEST(test_compare_prefix_shorter_first)
{
	ck_assert_int_eq(bytes_compare("ab", 2, "abc", 3), -1);
	ck_assert_int_eq(bytes_compare("abc", 3, "ab", 2), 1);
	/* Only the first a_len bytes count, whatever follows them. */
	ck_assert_int_eq(bytes_compare("abX", 2, "abY", 2), 0);
	ck_assert_int_eq(bytes_compare("a\x00", 2, "a", 1), 1);
}
END_TEST

/* Bytes are unsigned: 0xff sorts after 0x00 and after 0x7f. */
START_TEST(test_compare_unsigned_bytes)
{
	const uint8_t lo[] = {0x00}, mid[] = {0x7f}, hi[] = {0xff};

	ck_assert_int_eq(bytes_compare(lo, 1, hi, 1), -1);
	ck_assert_int_eq(bytes_compare(hi, 1, lo, 1), 1);
	ck_assert_int_eq(bytes_compare(mid, 1, hi, 1), -1);
	ck_assert_int_eq(bytes_compare(hi, 1, hi, 1), 0);
}
END_TEST

/* An empty key may be NULL, and sorts before every other key. */
START_TEST(test_compare_empty)
{
	ck_assert_int_eq(bytes_compare(NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(bytes_compare(NULL, 0, "", 0), 0);
	ck_assert_int_eq(bytes_compare(NULL, 0, "\x00", 1), -1);
	ck_assert_int_eq(bytes_compare("\x00", 1, NULL, 0), 1);
}
END_TEST

/* The sign agrees with memcmp on equal lengths, on random keys. */
START_TEST(test_compare_random_matches_memcmp)
{
	uint64_t st = testutil_seed();

	for (int round = 0; round < 10000; round++) {
		uint8_t a[4], b[4];
		for (int i = 0; i < 4; i++) {
			/* A small alphabet, so that long common prefixes occur. */
			a[i] = (uint8_t)(testutil_rand(&st) % 3 * 0x7f);
			b[i] = (uint8_t)(testutil_rand(&st) % 3 * 0x7f);
		}
		int m = memcmp(a, b, 4);
		int want = m < 0 ? -1 : m > 0;
		ck_assert_int_eq(bytes_compare(a, 4, b, 4), want);
		ck_assert_int_eq(bytes_compare(b, 4, a, 4), -want);
	}
}
END_TEST

START_TEST(test_hex_encode)
{
	const uint8_t in[] = {0x00, 0x09, 0x0a, 0x7f, 0x80, 0xab, 0xff};
	char out[2 * sizeof in + 1];

	memset(out, '#', sizeof out);
	bytes_hex_encode(in, sizeof in, out);
	ck_assert_mem_eq(out, "00090a7f80abff", 2 * sizeof in);
	ck_assert_int_eq(out[2 * sizeof in], '#'); /* no NUL, no overrun */
	bytes_hex_encode(NULL, 0, NULL);
}
END_TEST

START_TEST(test_hex_digit_value)
{
	const char digits[] = "0123456789abcdef", upper[] = "ABCDEF";

	for (int v = 0; v < 16; v++)
		ck_assert_int_eq(bytes_hex_digit_value(digits[v]), v);
	for (int v = 0; v < 6; v++)
		ck_assert_int_eq(bytes_hex_digit_value(upper[v]), 10 + v);
	for (int c = -128; c < 256; c++) {
		if (strchr("0123456789abcdefABCDEF", c) != NULL && c != 0)
			continue;
		ck_assert_msg(bytes_hex_digit_value(c) == -1, "char %d", c);
	}
}
END_TEST

/* Every byte value survives encode then decode. */
START_TEST(test_hex_round_trip)
{
	for (int c = 0; c < 256; c++) {
		uint8_t b = (uint8_t)c;
		char h[2];
		bytes_hex_encode(&b, 1, h);
		int hi = bytes_hex_digit_value(h[0]);
		int lo = bytes_hex_digit_value(h[1]);
		ck_assert_int_eq(hi << 4 | lo, c);
	}
}
END_TEST

START_TEST(test_hex_parse_u64)
{
	uint64_t v = 7;

	ck_assert(bytes_hex_parse_u64("0000000000000000", 16, &v));
	ck_assert_uint_eq(v, 0);
	ck_assert(bytes_hex_parse_u64("ffffffffffffffff", 16, &v));
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert(bytes_hex_parse_u64("0123456789abcdef", 16, &v));
	ck_assert_uint_eq(v, 0x0123456789abcdefull);
	ck_assert(bytes_hex_parse_u64("e3069283", 8, &v));
	ck_assert_uint_eq(v, 0xe3069283u);
	/* Only n chars are read: what follows does not matter. */
	ck_assert(bytes_hex_parse_u64("1fZ", 2, &v));
	ck_assert_uint_eq(v, 0x1f);
}
END_TEST

/* Anything but lowercase digits is refused and leaves *out alone. */
START_TEST(test_hex_parse_u64_refuses)
{
	static const char *const bad[] = {"000000000000000A", "00000000000000g0",
					  "0000000 00000000", "-000000000000000",
					  "0x00000000000000"};
	uint64_t v = 42;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(!bytes_hex_parse_u64(bad[i], 16, &v), "%s", bad[i]);
		ck_assert_uint_eq(v, 42);
	}
	ck_assert(!bytes_hex_parse_u64("12\0" "4", 4, &v)); /* a NUL inside */
	ck_assert_uint_eq(v, 42);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bytes");
	TCase *tc = tcase_create("compare");
	tcase_add_test(tc, test_compare_sorted_table);
	tcase_add_test(tc, test_compare_prefix_shorter_first);
	tcase_add_test(tc, test_compare_unsigned_bytes);
	tcase_add_test(tc, test_compare_empty);
	tcase_add_test(tc, test_compare_random_matches_memcmp);
	suite_add_tcase(s, tc);
	tc = tcase_create("hex");
	tcase_add_test(tc, test_hex_encode);
	tcase_add_test(tc, test_hex_digit_value);
	tcase_add_test(tc, test_hex_round_trip);
	tcase_add_test(tc, test_hex_parse_u64);
	tcase_add_test(tc, test_hex_parse_u64_refuses);
	suite_add_tcase(s, tc);
	return testutil_run_suite(s);
}
