/*
 * crc32c: see crc32c.h.
 *
 * The portable path is slicing-by-8 over tables built once at first use; the
 * hardware path uses the SSE4.2 crc32 instruction, 8 bytes at a time.  Both
 * compute the same reflected CRC with pre- and post-inversion.
 */
#include "raftstore/lib/crc32c.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc32c_table[8][256];
static int crc32c_have_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;
	while (n > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		n--;
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		n -= 8;
	}
	while (n > 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		n--;
	}
	return (uint32_t)c;
}

static int crc32c_cpu_has_sse42(void)
{
	unsigned eax, ebx, ecx, edx;
	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return 0;
	return (ecx & bit_SSE4_2) != 0;
}
#else
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	(void)crc, (void)p, (void)n;
	assert(0);
	return 0;
}
static int crc32c_cpu_has_sse42(void)
{
	return 0;
}
#endif

static void crc32c_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY_REFLECTED & (0u - (c & 1u)));
		crc32c_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = crc32c_table[0][i];
		for (int t = 1; t < 8; t++) {
			c = crc32c_table[0][c & 0xff] ^ (c >> 8);
			crc32c_table[t][i] = c;
		}
	}
	crc32c_have_hw = crc32c_cpu_has_sse42();
}

static uint32_t crc32c_sw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				   (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		c = crc32c_table[7][lo & 0xff] ^
		    crc32c_table[6][(lo >> 8) & 0xff] ^
		    crc32c_table[5][(lo >> 16) & 0xff] ^
		    crc32c_table[4][lo >> 24] ^ crc32c_table[3][p[4]] ^
		    crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^
		    crc32c_table[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n-- > 0)
		c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

uint32_t crc32c_extend_portable(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&crc32c_once, crc32c_init);
	assert(p != NULL || n == 0);
	return ~crc32c_sw(~crc, p, n);
}

uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&crc32c_once, crc32c_init);
	assert(p != NULL || n == 0);
	if (crc32c_have_hw)
		return ~crc32c_hw(~crc, p, n);
	return ~crc32c_sw(~crc, p, n);
}
