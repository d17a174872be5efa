/*
 * fileio: the storage engine's only door to the file system.
 *
 * Every open, write, fsync, rename, truncate and unlink of the journal and the
 * checkpoints goes through here, so that tests can inject faults and crashes:
 *
 *  - Fault countdown: fileio_fault_set(FIO_OP_WRITE, 3, ENOSPC) makes the
 *    third write from now fail with ENOSPC (once).  Modelled on SQLite's
 *    test_syscall.c and c-raft's test/lib/fault.h.
 *  - Crash simulation: with tracking on, fileio remembers, per path, how many
 *    bytes were durable at the last fsync.  fileio_crash_simulate() truncates
 *    every tracked file to that size, dropping writes that were never
 *    fsynced (as LevelDB's fault_injection_test does), and removes files
 *    created since their directory was last fsynced.
 *
 * All functions return RS_OK or an rs_error code, with errmsg (RS_ERRMSG_SIZE
 * bytes, may be NULL) naming the path and the operation.  EINTR is retried and
 * short writes are completed.  Thread-safe: the journal calls these from libuv
 * thread-pool workers.  All of them block: call them off the event loop,
 * except at start-up.
 */
#ifndef RS_FILEIO_H
#define RS_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum fileio_op {
	FIO_OP_OPEN = 0,
	FIO_OP_WRITE, /* fileio_pwrite */
	FIO_OP_FSYNC, /* fileio_fsync and fileio_fsync_dir */
	FIO_OP_RENAME,
	FIO_OP_TRUNCATE,
	FIO_OP_UNLINK,
	FIO_OP_READ,
	FIO_OP__COUNT
};

/* O_RDONLY or O_RDWR|O_CREAT etc.; mode 0644 for creates. */
int fileio_open(const char *path, int flags, int *fd, char *errmsg);
int fileio_close(int fd);
/* Write all n bytes at off. */
int fileio_pwrite(int fd, const void *buf, size_t n, off_t off, char *errmsg);
/* Read up to n bytes at off; *got is what was read (short only at EOF). */
int fileio_pread(int fd, void *buf, size_t n, off_t off, size_t *got,
		 char *errmsg);
int fileio_fsync(int fd, char *errmsg);
/* Start writing [off, off + n) back to disk and return without waiting
 * (sync_file_range, SYNC_FILE_RANGE_WRITE): keeps dirty data from piling
 * up for one large flush later.  It makes nothing durable and reports no
 * write error of the data (fileio_fsync still does). */
int fileio_start_writeback(int fd, off_t off, off_t n, char *errmsg);
/* Open the directory, fsync it, close it. */
int fileio_fsync_dir(const char *dir, char *errmsg);
int fileio_rename(const char *from, const char *to, char *errmsg);
int fileio_truncate(int fd, off_t len, char *errmsg);
int fileio_unlink(const char *path, char *errmsg);
/* Size of an open file. */
int fileio_size(int fd, off_t *size, char *errmsg);
/* Read a whole file into a malloc'ed buffer (caller frees). */
int fileio_read_all(const char *path, uint8_t **data, size_t *len,
		    char *errmsg);
/* mkdir -p for one level; RS_OK if it already exists as a directory. */
int fileio_mkdir(const char *path, char *errmsg);

/* ---- fault injection (tests only; no effect unless set) ---- */

/* The nth call (1 = the next) to op fails with errno err.  n = 0 disarms. */
void fileio_fault_set(enum fileio_op op, unsigned n, int err);
/* Disarm every fault and stop tracking. */
void fileio_fault_reset(void);
/* Number of calls made to op since the last reset. */
unsigned long fileio_op_count(enum fileio_op op);

/* Start remembering durable sizes for crash simulation. */
void fileio_track_start(void);
/* Drop everything not fsynced since tracking started; see the file comment.
 * Files must be closed first.  Returns the number of bytes dropped. */
uint64_t fileio_crash_simulate(void);

#endif /* RS_FILEIO_H */
