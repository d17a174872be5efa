/* bytes: see bytes.h. */
#include "raftstore/lib/bytes.h"

#include <assert.h>

static const char bytes_hex_digits[] = "0123456789abcdef";

void bytes_hex_encode(const void *p, size_t n, char *out)
{
	const uint8_t *b = p;

	assert(p != NULL || n == 0);
	assert(out != NULL || n == 0);
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = bytes_hex_digits[b[i] >> 4];
		out[2 * i + 1] = bytes_hex_digits[b[i] & 15];
	}
}

int bytes_hex_digit_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool bytes_hex_parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	assert(s != NULL && out != NULL);
	assert(n >= 1 && n <= 16); /* more would overflow 64 bits */
	for (size_t i = 0; i < n; i++) {
		int d = bytes_hex_digit_value((unsigned char)s[i]);
		if (d < 0 || (s[i] >= 'A' && s[i] <= 'F'))
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

uint64_t bytes_hash(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}
