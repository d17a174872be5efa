/*
 * fuzz_util: the helpers of fuzz.h, shared by every fuzz target.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, mkdtemp */
#endif
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "storage/record.h"
#include "tests/fuzz/fuzz.h"

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

uint8_t *fuzz_dup(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size > 0 ? size : 1);

	if (copy == NULL)
		fuzz_fail(__FILE__, __LINE__, "out of memory");
	if (size > 0)
		memcpy(copy, data, size);
	return copy;
}

static void write_all(int fd, const uint8_t *data, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);

		if (n <= 0)
			fuzz_fail(__FILE__, __LINE__, "write of the input file");
		done += (size_t)n;
	}
}

const char *fuzz_file(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		fd = memfd_create("rs-fuzz-input", 0);
		if (fd < 0)
			fuzz_fail(__FILE__, __LINE__, "memfd_create");
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0)
		fuzz_fail(__FILE__, __LINE__, "ftruncate of the input file");
	write_all(fd, data, size);
	return path;
}

static char dir_path[PATH_MAX];

static void dir_remove(void)
{
	DIR *d = opendir(dir_path);
	struct dirent *e;
	char path[PATH_MAX + 256];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir_path);
}

const char *fuzz_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	if (dir_path[0] != '\0')
		return dir_path;
	snprintf(dir_path, sizeof dir_path, "%s/rs-fuzz-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir_path) == NULL)
		fuzz_fail(__FILE__, __LINE__, "mkdtemp");
	atexit(dir_remove);
	return dir_path;
}

const char *fuzz_dir_file(const char *name, const uint8_t *data, size_t size)
{
	static char path[PATH_MAX + 256];
	int fd;

	snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		fuzz_fail(__FILE__, __LINE__, "create of the input file");
	write_all(fd, data, size);
	close(fd);
	return path;
}

void fuzz_with_fixed_crcs(const uint8_t *data, size_t size,
			  void (*decode)(const uint8_t *data, size_t size),
			  bool (*fix)(uint8_t *data, size_t size))
{
	uint8_t *fixed = fuzz_dup(data, size);

	decode(data, size);
	if (fix(fixed, size))
		decode(fixed, size);
	free(fixed);
}

/* The masked CRC of storage/record.h: ((crc >> 15) | (crc << 17)) +
 * 0xa282ead8 over type and payload. */
static uint32_t record_masked_crc(const uint8_t *p, size_t n)
{
	uint32_t crc = crc32c(p, n);

	return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

bool fuzz_fix_records(uint8_t *data, size_t size)
{
	bool changed = false;
	size_t pos = 0;

	while (size - pos >= RECORD_HEADER_SIZE) {
		uint32_t len = rs_get_u32(data + pos + 4);
		uint32_t crc;

		if (len > size - pos - RECORD_HEADER_SIZE)
			break;
		crc = record_masked_crc(data + pos + 8, 1 + (size_t)len);
		changed |= rs_get_u32(data + pos) != crc;
		rs_put_u32(data + pos, crc);
		pos += RECORD_HEADER_SIZE + (size_t)len;
	}
	return changed;
}
