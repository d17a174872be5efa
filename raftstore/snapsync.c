/* snapsync: see snapsync.h. */
#include "raftstore/snapsync.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "raftstore/lib/fdname.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"

/* raft_uv's temporary name of a snapshot being written (UvFsMakeFile: its
 * TMP_FILE_PREFIX and UV__SNAPSHOT_TEMPLATE); the ".meta" file beside it
 * is a few dozen bytes and stays under SNAPSYNC_MIN_BYTES. */
#define SNAPSYNC_PREFIX "tmp-snapshot-"

typedef int (*fsync_fn)(int fd);

static struct {
	pthread_once_t once;
	fsync_fn real;
	pthread_mutex_t mu; /* guards dir, enabled and the stats */
	bool enabled;
	struct fdname_dir dir;
	struct snapsync_stats st;
	unsigned fault_delay_ms;
} snapsync = {
	.once = PTHREAD_ONCE_INIT,
	.mu = PTHREAD_MUTEX_INITIALIZER,
};

static void snapsync_find_real(void)
{
	snapsync.real = (fsync_fn)dlsym(RTLD_NEXT, "fsync");
}

int snapsync_enable(const char *raft_dir, char *errmsg)
{
	struct fdname_dir d;

	if (fdname_dir_set(&d, raft_dir, errmsg) != RS_OK)
		return RS_EINVAL;
	pthread_mutex_lock(&snapsync.mu);
	snapsync.dir = d;
	snapsync.enabled = true;
	pthread_mutex_unlock(&snapsync.mu);
	return RS_OK;
}

void snapsync_disable(void)
{
	pthread_mutex_lock(&snapsync.mu);
	snapsync.enabled = false;
	pthread_mutex_unlock(&snapsync.mu);
}

void snapsync_set_fault_delay_ms(unsigned ms)
{
	pthread_mutex_lock(&snapsync.mu);
	snapsync.fault_delay_ms = ms;
	pthread_mutex_unlock(&snapsync.mu);
}

/* The fault hook: a snapshot file of the directory, of any size, waits. */
static void snapsync_fault_delay(int fd)
{
	char buf[PATH_MAX];
	const char *name;
	unsigned ms;
	struct timespec ts;

	pthread_mutex_lock(&snapsync.mu);
	ms = snapsync.fault_delay_ms;
	name = ms > 0 && snapsync.enabled
		       ? fdname_in_dir(&snapsync.dir, fd, buf)
		       : NULL;
	pthread_mutex_unlock(&snapsync.mu);
	if (name == NULL ||
	    strncmp(name, SNAPSYNC_PREFIX, strlen(SNAPSYNC_PREFIX)) != 0)
		return;
	pthread_mutex_lock(&snapsync.mu);
	snapsync.st.fault_delays++;
	pthread_mutex_unlock(&snapsync.mu);
	log_warn("fault.snapshot_sync_delayed", "file=%s ms=%u", name, ms);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void snapsync_get_stats(struct snapsync_stats *st)
{
	pthread_mutex_lock(&snapsync.mu);
	*st = snapsync.st;
	pthread_mutex_unlock(&snapsync.mu);
}

/* The size of fd's file if it is a snapshot being written into the
 * enabled Raft directory and large enough to pace (its name then in
 * *name, pointing into buf, PATH_MAX bytes); 0 otherwise. */
static off_t snapsync_wanted(int fd, char *buf, const char **name_out)
{
	const char *name;
	struct stat sb;

	pthread_mutex_lock(&snapsync.mu);
	name = snapsync.enabled ? fdname_in_dir(&snapsync.dir, fd, buf) : NULL;
	pthread_mutex_unlock(&snapsync.mu);
	if (name == NULL ||
	    strncmp(name, SNAPSYNC_PREFIX, strlen(SNAPSYNC_PREFIX)) != 0 ||
	    fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size < (off_t)SNAPSYNC_MIN_BYTES)
		return 0;
	*name_out = name;
	return sb.st_size;
}

static uint64_t snapsync_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Rest SNAPSYNC_REST times as long as a piece took (at most
 * SNAPSYNC_REST_MAX_NS); the time rested is added to *rested_ns. */
static void snapsync_rest(uint64_t piece_ns, uint64_t *rested_ns)
{
	uint64_t ns = piece_ns * SNAPSYNC_REST;
	struct timespec nap;

	if (ns > SNAPSYNC_REST_MAX_NS)
		ns = SNAPSYNC_REST_MAX_NS;
	nap.tv_sec = (time_t)(ns / 1000000000u);
	nap.tv_nsec = (long)(ns % 1000000000u);
	while (nanosleep(&nap, &nap) != 0 && errno == EINTR)
		;
	*rested_ns += ns;
}

/* Write [0, size) of fd's file back one piece at a time, each waited for
 * and followed by a rest.  0, ENOTSUP if sync_file_range is not there for
 * this file (nothing was written back through it), or the errno of the
 * piece that failed. */
static int snapsync_write_back(int fd, off_t size, uint64_t *chunks,
			       uint64_t *rested_ns)
{
	const unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE |
			       SYNC_FILE_RANGE_WRITE |
			       SYNC_FILE_RANGE_WAIT_AFTER;

	for (off_t off = 0; off < size;) {
		off_t len = size - off < (off_t)SNAPSYNC_CHUNK
				    ? size - off
				    : (off_t)SNAPSYNC_CHUNK;
		uint64_t t0 = snapsync_now_ns();
		if (sync_file_range(fd, off, len, flags) != 0) {
			int err = errno;
			if (err == EINTR)
				continue;
			if (off == 0 &&
			    (err == EINVAL || err == ENOSYS || err == ESPIPE))
				return ENOTSUP;
			return err;
		}
		(*chunks)++;
		off += len;
		if (off < size)
			snapsync_rest(snapsync_now_ns() - t0, rested_ns);
	}
	return 0;
}

/* libc's own, for libuv (raft_uv's snapshot files) and everything else in
 * the daemon: 0, or -1 with errno. */
int fsync(int fd)
{
	char buf[PATH_MAX];
	const char *name = NULL;
	uint64_t t0, t1, write_back_ns, chunks = 0, rested_ns = 0;
	off_t size;
	int paced, rv, err;

	pthread_once(&snapsync.once, snapsync_find_real);
	if (snapsync.real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	snapsync_fault_delay(fd);
	size = snapsync_wanted(fd, buf, &name);
	if (size == 0) {
		pthread_mutex_lock(&snapsync.mu);
		snapsync.st.passed++;
		pthread_mutex_unlock(&snapsync.mu);
		return snapsync.real(fd);
	}
	t0 = snapsync_now_ns();
	paced = snapsync_write_back(fd, size, &chunks, &rested_ns);
	write_back_ns = snapsync_now_ns() - t0;
	/* libc's fsync in every case: the metadata, the disk's cache, and
	 * whatever was written after the fstat. */
	t1 = snapsync_now_ns();
	rv = snapsync.real(fd);
	err = errno;
	if (paced == 0 || paced == ENOTSUP)
		log_info("raft.snapshot_synced",
			 "file=%s bytes=%lld pieces=%llu paced=%s "
			 "write_back_ms=%.1f rested_ms=%.1f fsync_ms=%.1f%s",
			 name, (long long)size, (unsigned long long)chunks,
			 paced == 0 ? "yes" : "no", (double)write_back_ns / 1e6,
			 (double)rested_ns / 1e6,
			 (double)(snapsync_now_ns() - t1) / 1e6,
			 rv == 0 ? "" : " fsync=failed");
	else
		log_warn("raft.snapshot_write_back_failed",
			 "file=%s bytes=%lld offset=%llu error=\"%s\" "
			 "effect=\"the snapshot is not written\"", name,
			 (long long)size,
			 (unsigned long long)chunks * SNAPSYNC_CHUNK,
			 strerror(paced));
	pthread_mutex_lock(&snapsync.mu);
	snapsync.st.chunks += chunks;
	if (paced == 0) {
		snapsync.st.paced++;
		snapsync.st.bytes += (uint64_t)size;
	} else if (paced == ENOTSUP) {
		snapsync.st.unsupported++;
	} else {
		snapsync.st.failed++;
	}
	pthread_mutex_unlock(&snapsync.mu);
	if (paced != 0 && paced != ENOTSUP) {
		/* fsync may not see the error the piece consumed */
		errno = paced;
		return -1;
	}
	errno = err;
	return rv;
}

static double snapsync_read_paced(void *ctx)
{
	struct snapsync_stats st;

	(void)ctx;
	snapsync_get_stats(&st);
	return (double)st.paced;
}

static double snapsync_read_failed(void *ctx)
{
	struct snapsync_stats st;

	(void)ctx;
	snapsync_get_stats(&st);
	return (double)st.failed;
}

int snapsync_metrics_register(struct metrics *ms)
{
	if (metrics_counter_fn(ms, "raftstore_raft_snapshots_paced_total",
			       "Raft snapshot files written back in pieces "
			       "before their fsync (c-raft guard 20)",
			       snapsync_read_paced, NULL) == NULL ||
	    metrics_counter_fn(ms,
			       "raftstore_raft_snapshot_pacing_failures_total",
			       "Raft snapshot write-backs that failed (the "
			       "fsync fails; raft_uv reports an I/O error)",
			       snapsync_read_failed, NULL) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
