/*
 * crc32c: CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the
 * checksum of every journal record, checkpoint chunk and file header.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once, at
 * first use) and a portable slicing-by-8 table otherwise; both give identical
 * results.  Thread-safe.
 */
#ifndef RS_CRC32C_H
#define RS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of p[0..n), continuing from `crc` (pass 0 to start).  The value is
 * the standard one: crc32c_extend(0, "123456789", 9) == 0xE3069283. */
uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n);

static inline uint32_t crc32c(const void *p, size_t n)
{
	return crc32c_extend(0, p, n);
}

/* Force the portable fallback (for tests that compare both paths). */
uint32_t crc32c_extend_portable(uint32_t crc, const void *p, size_t n);

#endif /* RS_CRC32C_H */
