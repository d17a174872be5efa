/*
 * fuzz: what the libFuzzer targets in tests/fuzz/ share.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput for one decoder of
 * bytes that come from outside the process (the wire, files in the data
 * dir, the config file).  The same file links two ways: with clang's
 * -fsanitize=fuzzer (scripts/fuzz.sh), and with replay.c, a plain main()
 * that feeds it every file of its corpus, so `make check` replays the
 * corpora and every crash regression input with the normal compiler.
 *
 * A target calls the decoder, and where the format promises more than "no
 * crash" (decode -> encode -> decode gives the same value; what a parse
 * reports lies inside the input) it checks that with FUZZ_CHECK, which
 * prints the broken rule and aborts, so libFuzzer records the input.
 *
 * Checksums would stop a fuzzer at the first byte it mutates, so targets
 * of checksummed formats also decode a copy of the input with every
 * checksum recomputed (the fuzz_fix_* helpers): the raw input exercises
 * the checks, the fixed copy everything behind them.
 */
#ifndef RS_FUZZ_H
#define RS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Print "file:line: invariant broken: what" and abort(). */
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

#define FUZZ_CHECK(cond)                                                     \
	do {                                                                 \
		if (!(cond))                                                 \
			fuzz_fail(__FILE__, __LINE__, #cond);                \
	} while (0)

/* A heap copy of data[0..size) of exactly size bytes (at least one byte
 * is allocated), so the sanitizers catch a read past its end.  Aborts
 * when out of memory.  Free with free(). */
uint8_t *fuzz_dup(const uint8_t *data, size_t size);

/* Put data[0..size) in an anonymous in-memory file (memfd, made once per
 * process) and return a path that opens it ("/proc/self/fd/N"), for
 * decoders that only read files.  Aborts if the file cannot be written. */
const char *fuzz_file(const uint8_t *data, size_t size);

/* Run decode(data, size); then, if fix changes a copy of the input
 * (recomputing its checksums), decode(copy, size) as well. */
void fuzz_with_fixed_crcs(const uint8_t *data, size_t size,
			  void (*decode)(const uint8_t *data, size_t size),
			  bool (*fix)(uint8_t *data, size_t size));

/* Recompute the masked CRC of each record (storage/record.h) in a run
 * of records, as far as their lengths fit in data; true if a byte
 * changed. */
bool fuzz_fix_records(uint8_t *data, size_t size);

/* A directory of its own for this process (under $TMPDIR, else /tmp),
 * made on first use; the files put in it are removed at exit. */
const char *fuzz_dir(void);

/* Write data[0..size) as the file name in fuzz_dir(), replacing it, and
 * return its path (valid until the next call).  Aborts on error. */
const char *fuzz_dir_file(const char *name, const uint8_t *data,
			  size_t size);

#endif /* RS_FUZZ_H */
