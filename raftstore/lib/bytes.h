/*
 * bytes: the project's one key order and one hex spelling.
 *
 * Every key in raftstore (the store's index, the mutation codec's ranges,
 * watches, the resolver, the layout's keys, rsctl) is ordered by
 * bytes_compare: unsigned bytes, first difference wins, and on a common
 * prefix the shorter key comes first, so "" < "\x00" < "a" < "a\x00" <
 * "b" < "\xff".  Hex is written in lowercase; names and keys the project
 * spells with "%016" PRIx64 are read back in lowercase only, so that one
 * number has one spelling.
 *
 * Pure functions: no allocation, no I/O, no state; thread-safe.
 */
#ifndef RS_BYTES_H
#define RS_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The order of a[0..a_len) and b[0..b_len): -1, 0 or 1.  A pointer may be
 * NULL only when its length is 0 (an empty key sorts before every other).
 * Inline because it sits under every probe of the store's index. */
static inline int bytes_compare(const void *a, size_t a_len, const void *b,
				size_t b_len)
{
	size_t n = a_len < b_len ? a_len : b_len;
	int c = n > 0 ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c < 0 ? -1 : 1;
	return (a_len > b_len) - (a_len < b_len);
}

/* Write the 2 * n lowercase hex digits of p[0..n) to out, high nibble
 * first.  out must have room for 2 * n chars; no NUL is added. */
void bytes_hex_encode(const void *p, size_t n, char *out);

/* The value (0 to 15) of one hex digit in either case, or -1 for any other
 * character, NUL included. */
int bytes_hex_digit_value(int c);

/* Parse exactly n (1 to 16) lowercase hex digits at s into *out, the most
 * significant first.  Returns false, leaving *out alone, if any of the n
 * chars is not one of 0-9 a-f (uppercase is refused: it is not the
 * canonical spelling). */
bool bytes_hex_parse_u64(const char *s, size_t n, uint64_t *out);

/* FNV-1a over n bytes: a fast, well-spread hash for in-memory tables
 * (not a checksum, not for anything an adversary chooses). */
uint64_t bytes_hash(const void *p, size_t n);

#endif /* RS_BYTES_H */
