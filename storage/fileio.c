/*
 * fileio: see fileio.h.
 *
 * Crash simulation keeps a small table of tracked files: for each, the size
 * that was durable at its last fsync and whether its directory entry is
 * durable (the file existed before tracking began, or its directory was
 * fsynced after it was created or renamed into place).  Only appends are
 * modelled: an overwrite inside the durable prefix is not undone, which is
 * all the journal and checkpoints need (they never overwrite).
 */
#include "storage/fileio.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raftstore/lib/rs_error.h"

#define FILEIO_TRACK_MAX 256
#define FILEIO_FD_MAX 4096

struct fileio_fault {
	unsigned countdown; /* 0 = disarmed */
	int err;
	unsigned long calls;
};

struct fileio_tracked {
	char path[PATH_MAX];
	uint64_t durable_size;
	bool entry_durable; /* directory entry survives a crash */
	bool used;
};

static pthread_mutex_t fileio_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fileio_fault fileio_faults[FIO_OP__COUNT];
static bool fileio_tracking;
static struct fileio_tracked fileio_tracked[FILEIO_TRACK_MAX];
static int fileio_fd_slot[FILEIO_FD_MAX]; /* fd -> tracked index + 1 */

/* Count the call and return the injected errno, or 0. */
static int fileio_fault_hit(enum fileio_op op)
{
	int err = 0;
	struct fileio_fault *f = &fileio_faults[op];

	pthread_mutex_lock(&fileio_lock);
	f->calls++;
	if (f->countdown > 0 && --f->countdown == 0)
		err = f->err;
	pthread_mutex_unlock(&fileio_lock);
	return err;
}

void fileio_fault_set(enum fileio_op op, unsigned n, int err)
{
	assert(op < FIO_OP__COUNT);
	pthread_mutex_lock(&fileio_lock);
	fileio_faults[op].countdown = n;
	fileio_faults[op].err = err;
	pthread_mutex_unlock(&fileio_lock);
}

void fileio_fault_reset(void)
{
	pthread_mutex_lock(&fileio_lock);
	memset(fileio_faults, 0, sizeof fileio_faults);
	memset(fileio_tracked, 0, sizeof fileio_tracked);
	memset(fileio_fd_slot, 0, sizeof fileio_fd_slot);
	fileio_tracking = false;
	pthread_mutex_unlock(&fileio_lock);
}

unsigned long fileio_op_count(enum fileio_op op)
{
	unsigned long n;
	assert(op < FIO_OP__COUNT);
	pthread_mutex_lock(&fileio_lock);
	n = fileio_faults[op].calls;
	pthread_mutex_unlock(&fileio_lock);
	return n;
}

void fileio_track_start(void)
{
	pthread_mutex_lock(&fileio_lock);
	fileio_tracking = true;
	pthread_mutex_unlock(&fileio_lock);
}

/* Find or add the tracked entry for path; lock held. */
static struct fileio_tracked *fileio_track_find(const char *path, bool add)
{
	struct fileio_tracked *free_slot = NULL;
	for (int i = 0; i < FILEIO_TRACK_MAX; i++) {
		struct fileio_tracked *t = &fileio_tracked[i];
		if (t->used && strcmp(t->path, path) == 0)
			return t;
		if (!t->used && free_slot == NULL)
			free_slot = t;
	}
	if (!add || free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof *free_slot);
	snprintf(free_slot->path, sizeof free_slot->path, "%s", path);
	free_slot->used = true;
	return free_slot;
}

static void fileio_track_open(const char *path, int fd, bool existed)
{
	struct stat st;
	struct fileio_tracked *t;

	pthread_mutex_lock(&fileio_lock);
	if (fileio_tracking && fd >= 0 && fd < FILEIO_FD_MAX) {
		t = fileio_track_find(path, true);
		if (t != NULL) {
			bool known = t->durable_size > 0 || t->entry_durable;
			if (!known) {
				t->entry_durable = existed;
				t->durable_size = existed && fstat(fd, &st) == 0 ?
							  (uint64_t)st.st_size : 0;
			}
			fileio_fd_slot[fd] = (int)(t - fileio_tracked) + 1;
		}
	}
	pthread_mutex_unlock(&fileio_lock);
}

int fileio_open(const char *path, int flags, int *fd, char *errmsg)
{
	int err = fileio_fault_hit(FIO_OP_OPEN);
	bool existed = access(path, F_OK) == 0;

	if (err != 0)
		return rs_errmsg_errno(errmsg, err, "open %s", path);
	do {
		*fd = open(path, flags | O_CLOEXEC, 0644);
	} while (*fd < 0 && errno == EINTR);
	if (*fd < 0)
		return rs_errmsg_errno(errmsg, errno, "open %s", path);
	fileio_track_open(path, *fd, existed);
	return RS_OK;
}

int fileio_close(int fd)
{
	pthread_mutex_lock(&fileio_lock);
	if (fd >= 0 && fd < FILEIO_FD_MAX)
		fileio_fd_slot[fd] = 0;
	pthread_mutex_unlock(&fileio_lock);
	return close(fd) == 0 ? RS_OK : rs_error_from_errno(errno);
}

int fileio_pwrite(int fd, const void *buf, size_t n, off_t off, char *errmsg)
{
	const uint8_t *p = buf;
	int err = fileio_fault_hit(FIO_OP_WRITE);

	if (err != 0)
		return rs_errmsg_errno(errmsg, err, "write %zu bytes at offset %lld",
				       n, (long long)off);
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return rs_errmsg_errno(errmsg, errno,
					       "write %zu bytes at offset %lld", n,
					       (long long)off);
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return RS_OK;
}

int fileio_pread(int fd, void *buf, size_t n, off_t off, size_t *got,
		 char *errmsg)
{
	uint8_t *p = buf;
	int err = fileio_fault_hit(FIO_OP_READ);

	*got = 0;
	if (err != 0)
		return rs_errmsg_errno(errmsg, err, "read at offset %lld",
				       (long long)off);
	while (n > 0) {
		ssize_t r = pread(fd, p, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return rs_errmsg_errno(errmsg, errno, "read at offset %lld",
					       (long long)off);
		if (r == 0)
			break;
		p += r;
		n -= (size_t)r;
		off += r;
		*got += (size_t)r;
	}
	return RS_OK;
}

int fileio_start_writeback(int fd, off_t off, off_t n, char *errmsg)
{
	if (sync_file_range(fd, off, n, SYNC_FILE_RANGE_WRITE) != 0)
		return rs_errmsg_errno(errmsg, errno, "start write-back");
	return RS_OK;
}

int fileio_fsync(int fd, char *errmsg)
{
	struct stat st;
	int err = fileio_fault_hit(FIO_OP_FSYNC);

	if (err != 0)
		return rs_errmsg_errno(errmsg, err, "fsync");
	if (fsync(fd) != 0)
		return rs_errmsg_errno(errmsg, errno, "fsync");
	pthread_mutex_lock(&fileio_lock);
	if (fd >= 0 && fd < FILEIO_FD_MAX && fileio_fd_slot[fd] > 0 &&
	    fstat(fd, &st) == 0)
		fileio_tracked[fileio_fd_slot[fd] - 1].durable_size =
			(uint64_t)st.st_size;
	pthread_mutex_unlock(&fileio_lock);
	return RS_OK;
}

/* Every tracked file directly inside dir now has a durable entry. */
static void fileio_track_dir_synced(const char *dir)
{
	size_t n = strlen(dir);
	pthread_mutex_lock(&fileio_lock);
	for (int i = 0; i < FILEIO_TRACK_MAX; i++) {
		struct fileio_tracked *t = &fileio_tracked[i];
		if (t->used && strncmp(t->path, dir, n) == 0 &&
		    t->path[n] == '/' && strchr(t->path + n + 1, '/') == NULL)
			t->entry_durable = true;
	}
	pthread_mutex_unlock(&fileio_lock);
}

int fileio_fsync_dir(const char *dir, char *errmsg)
{
	int fd, rv;
	int err = fileio_fault_hit(FIO_OP_FSYNC);

	if (err != 0)
		return rs_errmsg_errno(errmsg, err, "fsync directory %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return rs_errmsg_errno(errmsg, errno, "open directory %s", dir);
	rv = fsync(fd) == 0 ? RS_OK
			    : rs_errmsg_errno(errmsg, errno, "fsync directory %s",
					      dir);
	close(fd);
	if (rv == RS_OK)
		fileio_track_dir_synced(dir);
	return rv;
}

int fileio_rename(const char *from, const char *to, char *errmsg)
{
	int err = fileio_fault_hit(FIO_OP_RENAME);
	struct fileio_tracked *t;

	if (err != 0)
		return rs_errmsg_errno(errmsg, err, "rename %s to %s", from, to);
	if (rename(from, to) != 0)
		return rs_errmsg_errno(errmsg, errno, "rename %s to %s", from, to);
	pthread_mutex_lock(&fileio_lock);
	if (fileio_tracking) {
		t = fileio_track_find(from, false);
		uint64_t size = t ? t->durable_size : 0;
		if (t != NULL)
			t->used = false;
		t = fileio_track_find(to, true);
		if (t != NULL) {
			t->durable_size = size;
			t->entry_durable = false; /* until the dir is fsynced */
		}
	}
	pthread_mutex_unlock(&fileio_lock);
	return RS_OK;
}

int fileio_truncate(int fd, off_t len, char *errmsg)
{
	int err = fileio_fault_hit(FIO_OP_TRUNCATE);
	if (err != 0)
		return rs_errmsg_errno(errmsg, err, "truncate to %lld bytes",
				       (long long)len);
	while (ftruncate(fd, len) != 0) {
		if (errno != EINTR)
			return rs_errmsg_errno(errmsg, errno,
					       "truncate to %lld bytes",
					       (long long)len);
	}
	return RS_OK;
}

int fileio_unlink(const char *path, char *errmsg)
{
	int err = fileio_fault_hit(FIO_OP_UNLINK);
	if (err != 0)
		return rs_errmsg_errno(errmsg, err, "unlink %s", path);
	if (unlink(path) != 0)
		return rs_errmsg_errno(errmsg, errno, "unlink %s", path);
	pthread_mutex_lock(&fileio_lock);
	struct fileio_tracked *t = fileio_track_find(path, false);
	if (t != NULL)
		t->used = false;
	pthread_mutex_unlock(&fileio_lock);
	return RS_OK;
}

int fileio_size(int fd, off_t *size, char *errmsg)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return rs_errmsg_errno(errmsg, errno, "stat");
	*size = st.st_size;
	return RS_OK;
}

int fileio_read_all(const char *path, uint8_t **data, size_t *len,
		    char *errmsg)
{
	int fd, rv;
	off_t size;
	size_t got;
	uint8_t *buf;

	*data = NULL;
	*len = 0;
	rv = fileio_open(path, O_RDONLY, &fd, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = fileio_size(fd, &size, errmsg);
	if (rv != RS_OK)
		goto err_close;
	buf = malloc((size_t)size + 1);
	if (buf == NULL) {
		rv = RS_ENOMEM;
		rs_errmsg_printf(errmsg, "read %s: out of memory", path);
		goto err_close;
	}
	rv = fileio_pread(fd, buf, (size_t)size, 0, &got, errmsg);
	if (rv != RS_OK) {
		free(buf);
		rs_errmsg_wrapf(errmsg, "%s", path);
		goto err_close;
	}
	*data = buf;
	*len = got;
err_close:
	fileio_close(fd);
	return rv;
}

int fileio_mkdir(const char *path, char *errmsg)
{
	struct stat st;
	if (mkdir(path, 0755) == 0)
		return RS_OK;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return RS_OK;
	if (errno == EEXIST)
		return rs_errmsg_errno(errmsg, ENOTDIR, "mkdir %s", path);
	return rs_errmsg_errno(errmsg, errno, "mkdir %s", path);
}

uint64_t fileio_crash_simulate(void)
{
	uint64_t dropped = 0;
	struct stat st;

	pthread_mutex_lock(&fileio_lock);
	for (int i = 0; i < FILEIO_TRACK_MAX; i++) {
		struct fileio_tracked *t = &fileio_tracked[i];
		if (!t->used || stat(t->path, &st) != 0)
			continue;
		if (!t->entry_durable) {
			dropped += (uint64_t)st.st_size;
			unlink(t->path);
		} else if ((uint64_t)st.st_size > t->durable_size) {
			dropped += (uint64_t)st.st_size - t->durable_size;
			if (truncate(t->path, (off_t)t->durable_size) != 0)
				abort(); /* a test harness that cannot cut is broken */
		}
		t->used = false;
	}
	fileio_tracking = false;
	pthread_mutex_unlock(&fileio_lock);
	return dropped;
}
