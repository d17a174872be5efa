/*
 * replay: run a fuzz target over stored inputs, without libFuzzer.
 *
 * Linked with one fuzz_<name>.c as tests/fuzz/replay_<name>, it feeds
 * every regular file of tests/fuzz/corpus/<name>/ (under $top_srcdir, as
 * make check exports it; else the current directory) to
 * LLVMFuzzerTestOneInput, in name order, each in a heap block of exactly
 * its size.  Arguments, if given, name the files or directories to replay
 * instead.  A target aborts on a broken invariant and the sanitizers of a
 * --enable-sanitize build abort on a bad access, so the exit status is the
 * verdict; an empty corpus is an error too (nothing would be tested).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, scandir */
#endif
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *data;
	size_t got;

	if (f == NULL || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "replay: open %s: %s\n", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (data == NULL) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		fclose(f);
		return -1;
	}
	got = fread(data, 1, (size_t)st.st_size, f);
	fclose(f);
	if (got != (size_t)st.st_size) {
		fprintf(stderr, "replay: read %s: short read\n", path);
		free(data);
		return -1;
	}
	LLVMFuzzerTestOneInput(data, got);
	free(data);
	return 0;
}

static int select_visible(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Replay a file, or every file of a directory; returns the number of
 * inputs replayed, or -1. */
static long replay_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	long count = 0;
	int n;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path) == 0 ? 1 : -1;
	n = scandir(path, &names, select_visible, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *file;

		if (count >= 0 &&
		    asprintf(&file, "%s/%s", path, names[i]->d_name) >= 0) {
			count = replay_file(file) == 0 ? count + 1 : -1;
			free(file);
		} else {
			count = -1;
		}
		free(names[i]);
	}
	free(names);
	return count;
}

/* "replay_wire" (or libtool's "lt-replay_wire") -> "wire". */
static const char *target_name(const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	const char *name = base != NULL ? base + 1 : argv0;

	if (strncmp(name, "lt-", 3) == 0)
		name += 3;
	if (strncmp(name, "replay_", 7) == 0)
		name += 7;
	return name;
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir");
	long total = 0;
	char *dir;

	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			long n = replay_path(argv[i]);

			if (n < 0)
				return 1;
			total += n;
		}
		printf("replayed %ld inputs\n", total);
		return 0;
	}
	if (asprintf(&dir, "%s/tests/fuzz/corpus/%s", top ? top : ".",
		     target_name(argv[0])) < 0)
		return 1;
	total = replay_path(dir);
	if (total == 0)
		fprintf(stderr, "replay: %s holds no inputs\n", dir);
	else if (total > 0)
		printf("replayed %ld inputs from %s\n", total, dir);
	free(dir);
	return total > 0 ? 0 : 1;
}
