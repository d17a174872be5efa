/*
 * rs_error: the project's one error enum and its message helpers.
 *
 * Every fallible function in raftstore returns 0 (RS_OK) or a positive code
 * from this enum.  Where the caller needs detail, the object (or an explicit
 * `char *errmsg` argument of RS_ERRMSG_SIZE bytes) carries a message, and each
 * layer prefixes its own context, so a final message reads like
 * "open journal /d/journal: segment 3 (seg-0000000000000003.rsj): read header: short read".
 *
 * libuv reports negative codes and libc uses errno: convert at the boundary
 * with rs_error_from_errno().
 *
 * The numeric values travel on the wire (docs/protocol.md), so the table is
 * append-only: never reorder or remove an entry.
 */
#ifndef RS_ERROR_H
#define RS_ERROR_H

#include <stddef.h>

#define RS_ERRMSG_SIZE 512

/* X(name, string) */
#define RS_ERROR_TABLE(X)                                                     \
	X(RS_OK, "ok")                                                        \
	X(RS_ENOMEM, "out of memory")                                         \
	X(RS_EIO, "I/O error")                                                \
	X(RS_ENOSPC, "no space left on device")                               \
	X(RS_ECORRUPT, "data corrupt")                                        \
	X(RS_ETORN, "torn write")                                             \
	X(RS_EFORMAT, "unsupported format version")                           \
	X(RS_ETOOLARGE, "too large")                                          \
	X(RS_ETOOOLD, "version too old")                                      \
	X(RS_EFUTURE, "version not yet applied")                              \
	X(RS_ENOTFOUND, "not found")                                          \
	X(RS_EINVAL, "invalid argument")                                      \
	X(RS_EEXIST, "already exists")                                        \
	X(RS_ECLOSED, "closed")                                               \
	X(RS_EFAILED, "failed by an earlier error")                           \
	X(RS_EVERSION, "version not increasing")                              \
	X(RS_EGAP, "missing records")                                         \
	X(RS_ESHUTDOWN, "shutting down")                                     \
	X(RS_ECONFLICT, "transaction conflict")                              \
	X(RS_EUNAVAILABLE, "cluster unavailable")                            \
	X(RS_EUNKNOWN, "commit result unknown")                              \
	X(RS_EPROTO, "protocol error")                                       \
	X(RS_ENOTLEADER, "not the leader")                                   \
	X(RS_ERECOVERING, "recovering")                                      \
	X(RS_ECOMPACTED, "watch version compacted")                          \
	X(RS_ETIMEOUT, "timed out")

enum rs_error {
#define RS__ENUM(name, str) name,
	RS_ERROR_TABLE(RS__ENUM)
#undef RS__ENUM
	RS__ERROR_COUNT
};

/* The fixed string of a code ("data corrupt"); never NULL. */
const char *rs_strerror(int code);
/* The code's name ("RS_ECORRUPT"; "RS_?" for an unknown code). */
const char *rs_error_name(int code);

/* Errors a client may retry (with backoff): conflict, too old, unavailable,
 * not leader, recovering, timed out.  Not RS_EUNKNOWN: a commit whose
 * outcome is unknown must not be blindly repeated. */
int rs_error_retryable(int code);

/* Map an errno value (positive, as in errno) to a code. */
int rs_error_from_errno(int err);

/* Format into errmsg (RS_ERRMSG_SIZE bytes), replacing its content.  All
 * three accept errmsg == NULL and then only compute the return value. */
void rs_errmsg_printf(char *errmsg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefix errmsg with "<formatted>: ", keeping the inner message. */
void rs_errmsg_wrapf(char *errmsg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Set errmsg to "<formatted>: <strerror(errno)>" and return the code. */
int rs_errmsg_errno(char *errmsg, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* RS_ERROR_H */
