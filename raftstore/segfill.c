/* segfill: see segfill.h. */
#include "raftstore/segfill.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftstore/lib/fdname.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"

/* Zeros written per pwrite: large enough for few calls, small enough that
 * the kernel writes it back in pieces between the log's own writes. */
#define SEGFILL_CHUNK (256u * 1024u)

typedef int (*posix_fallocate_fn)(int fd, off_t offset, off_t len);

static const unsigned char segfill_zeros[SEGFILL_CHUNK];

static struct {
	pthread_once_t once;
	posix_fallocate_fn real;
	pthread_mutex_t mu; /* guards dir and the stats */
	bool enabled;
	struct fdname_dir dir;
	struct segfill_stats st;
} segfill = {
	.once = PTHREAD_ONCE_INIT,
	.mu = PTHREAD_MUTEX_INITIALIZER,
};

static void segfill_find_real(void)
{
	segfill.real = (posix_fallocate_fn)dlsym(RTLD_NEXT, "posix_fallocate");
}

int segfill_enable(const char *raft_dir, char *errmsg)
{
	struct fdname_dir d;

	if (fdname_dir_set(&d, raft_dir, errmsg) != RS_OK)
		return RS_EINVAL;
	pthread_mutex_lock(&segfill.mu);
	segfill.dir = d;
	segfill.enabled = true;
	pthread_mutex_unlock(&segfill.mu);
	return RS_OK;
}

void segfill_disable(void)
{
	pthread_mutex_lock(&segfill.mu);
	segfill.enabled = false;
	pthread_mutex_unlock(&segfill.mu);
}

void segfill_get_stats(struct segfill_stats *st)
{
	pthread_mutex_lock(&segfill.mu);
	*st = segfill.st;
	pthread_mutex_unlock(&segfill.mu);
}

/* "open-" and one or more digits: a segment raft_uv prepares. */
static bool segfill_is_open_name(const char *name)
{
	size_t i = 5;

	if (strncmp(name, "open-", 5) != 0 || name[i] == '\0')
		return false;
	for (; name[i] != '\0'; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

/* Is fd an open segment of the enabled Raft directory? */
static bool segfill_wanted(int fd)
{
	char buf[PATH_MAX];
	const char *name;
	bool wanted;

	pthread_mutex_lock(&segfill.mu);
	name = segfill.enabled ? fdname_in_dir(&segfill.dir, fd, buf) : NULL;
	wanted = name != NULL && segfill_is_open_name(name);
	pthread_mutex_unlock(&segfill.mu);
	return wanted;
}

/* Write zeros over [offset, offset + len) of fd's file, through a
 * descriptor of its own (fd is O_DIRECT and O_DSYNC: one synchronous write
 * per chunk), then fdatasync.  0 or an errno value. */
static int segfill_zero(int fd, off_t offset, off_t len)
{
	char link[64];
	off_t done = 0;
	int wfd, rv = 0;

	assert(offset >= 0 && len > 0);
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	wfd = open(link, O_WRONLY | O_CLOEXEC);
	if (wfd < 0)
		return errno;
	while (done < len && rv == 0) {
		size_t want = len - done < (off_t)SEGFILL_CHUNK
				      ? (size_t)(len - done)
				      : SEGFILL_CHUNK;
		ssize_t w = pwrite(wfd, segfill_zeros, want, offset + done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rv = w < 0 ? errno : EIO;
		else
			done += w;
	}
	if (rv == 0 && fdatasync(wfd) != 0)
		rv = errno;
	close(wfd);
	assert(rv != 0 || done == len);
	return rv;
}

/* libc's own, for raft_uv; glibc returns an error number (errno is not
 * set), and so does this. */
int posix_fallocate(int fd, off_t offset, off_t len)
{
	int rv;

	pthread_once(&segfill.once, segfill_find_real);
	if (segfill.real == NULL)
		return ENOSYS;
	rv = segfill.real(fd, offset, len);
	if (rv != 0 || len <= 0 || !segfill_wanted(fd)) {
		pthread_mutex_lock(&segfill.mu);
		segfill.st.passed++;
		pthread_mutex_unlock(&segfill.mu);
		return rv;
	}
	rv = segfill_zero(fd, offset, len);
	pthread_mutex_lock(&segfill.mu);
	if (rv == 0) {
		segfill.st.filled++;
		segfill.st.bytes += (uint64_t)len;
	} else {
		segfill.st.failed++;
	}
	pthread_mutex_unlock(&segfill.mu);
	return rv;
}

static double segfill_read_filled(void *ctx)
{
	struct segfill_stats st;

	(void)ctx;
	segfill_get_stats(&st);
	return (double)st.filled;
}

static double segfill_read_failed(void *ctx)
{
	struct segfill_stats st;

	(void)ctx;
	segfill_get_stats(&st);
	return (double)st.failed;
}

int segfill_metrics_register(struct metrics *ms)
{
	if (metrics_counter_fn(ms, "raftstore_raft_segments_filled_total",
			       "Raft log segments written with zeros when "
			       "prepared (c-raft guard 13)",
			       segfill_read_filled, NULL) == NULL ||
	    metrics_counter_fn(ms, "raftstore_raft_segment_fill_failures_total",
			       "Raft log segments whose fill failed (raft_uv "
			       "then reports an I/O error)",
			       segfill_read_failed, NULL) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
