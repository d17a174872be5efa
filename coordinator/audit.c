/*
 * audit: the writer of the audit log (see audit.h for the contract and the
 * line format, audit_internal.h for how the module is split).
 *
 * audit_event builds the line as a jansson object (the fixed members, then
 * the event's own), writes it with jansson (compact, ASCII only), parses
 * it back with the reader everyone uses and queues it; a timer hands the
 * queue to the thread pool as one batch: rotation, one pwrite, one fsync,
 * retention.  Also here: the fail-fast flush, close and the accessors.
 *
 * Threads.  The loop thread owns everything in struct audit except the
 * batch in flight (a->flight), which belongs to the thread-pool worker from
 * uv_queue_work() until the after-work callback.  The worker also reads
 * a->dir (fixed at open) and a->files[0..unlink_count) (changed only on the
 * loop, and only while no batch is in flight).  libuv's work queue orders
 * the hand-over both ways, so there is no lock.
 *
 * One exception, for the fail-fast path: audit_flush_sync waits on the loop
 * thread for the worker's flight_done flag (release/acquire), which
 * publishes the batch's results early; see there.
 *
 * Lines are checked twice: audit_event parses the line it built before
 * queueing it, and open parses every line it reads back.  The parser is the
 * one readers use (audit_line_parse), so the writer cannot queue a line
 * that `rsctl events` would skip.
 */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coordinator/audit_internal.h"
#include "raftstore/lib/json.h"
#include "storage/fileio.h"

/* audit_flush_sync: how long to wait for a batch in flight, in 1 ms naps. */
#define AUDIT_SYNC_WAIT_MS 5000

/* ---- the state machine, messages, paths ---- */

static const struct sm_state audit_states[AUDIT_STATE__COUNT] = {
	[AUDIT_IDLE] = {"idle", SM_TO(AUDIT_ARMED) | SM_TO(AUDIT_FLUSHING) |
					SM_TO(AUDIT_CLOSING)},
	[AUDIT_ARMED] = {"armed", SM_TO(AUDIT_FLUSHING) | SM_TO(AUDIT_IDLE)},
	[AUDIT_FLUSHING] = {"flushing", SM_TO(AUDIT_IDLE)},
	[AUDIT_CLOSING] = {"closing", SM_TO(AUDIT_CLOSED)},
	[AUDIT_CLOSED] = {"closed", 0},
};
const struct sm_def audit_sm = SM_DEF("audit", audit_states);

void audit_logf(const struct audit *a, const char *fmt, ...)
{
	char msg[2 * RS_ERRMSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (a->opts.log_fn != NULL)
		a->opts.log_fn(a->opts.log_arg, msg);
	else
		fprintf(stderr, "audit: %s\n", msg);
}

void audit_file_path(char *out, const struct audit *a, uint64_t file_num)
{
	char name[AUDIT_FILE_NAME_MAX];
	int n;

	audit_file_name(name, sizeof name, file_num);
	n = snprintf(out, PATH_MAX, "%s/%s", a->dir, name);
	assert(n > 0 && n < PATH_MAX); /* the dir was checked at open */
	(void)n;
}

/* ---- the write path: batches on the thread pool ---- */

static void audit_work_cb(uv_work_t *w);
static void audit_after_work_cb(uv_work_t *w, int status);
static void audit_close_start(struct audit *a);

/* An empty batch that keeps buf's allocation. */
static void audit_batch_reset(struct audit_batch *b, struct rs_buf buf)
{
	memset(b, 0, sizeof *b);
	buf.len = 0;
	b->buf = buf;
	b->fd = -1;
	b->new_fd = -1;
}

/* The log stops writing: remember why, say it once, drop what is queued. */
static void audit_fail(struct audit *a, int code, const char *msg)
{
	assert(code != RS_OK);
	if (a->failed != RS_OK)
		return;
	a->failed = code;
	snprintf(a->failed_msg, sizeof a->failed_msg, "%s", msg);
	a->stats.failures++;
	a->stats.dropped += a->pending.events;
	audit_logf(a, "%s (%s); audit log failed, %" PRIu64
		      " queued events dropped",
		   msg, rs_strerror(code), a->pending.events);
	audit_batch_reset(&a->pending, a->pending.buf);
}

/* Rotate before b if the active file holds data and b would take it past
 * the limit.  Never split a batch: a file exceeds the limit only by one. */
static bool audit_should_rotate(struct audit *a, const struct audit_batch *b)
{
	uint64_t limit = a->opts.rotate_size_bytes;

	if (limit == 0 || a->size == 0 || a->size + b->buf.len <= limit)
		return false;
	/* Reserve the slot now: the after-work callback must not fail.
	 * Without one, write on: a long file beats a failed log. */
	return audit_files_reserve(a, a->nfiles + 1) == RS_OK;
}

/* Hand the queued lines to the thread pool. */
static void audit_flush_start(struct audit *a)
{
	struct audit_batch *b = &a->flight;
	struct rs_buf spare = b->buf;
	unsigned keep = a->opts.keep_files;
	int rv;

	assert(sm_state(&a->sm) == AUDIT_IDLE || sm_state(&a->sm) == AUDIT_ARMED);
	assert(a->pending.buf.len > 0 && a->failed == RS_OK);
	*b = a->pending;
	audit_batch_reset(&a->pending, spare);
	b->fd = a->fd;
	b->offset = a->size;
	b->status = RS_OK;
	b->new_fd = -1;
	b->unlinked = 0;
	b->unlink_count = 0;
	b->errmsg[0] = '\0';
	b->warnmsg[0] = '\0';
	b->rotate = audit_should_rotate(a, b);
	b->new_file = a->files[a->nfiles - 1] + 1;
	if (b->rotate && keep > 0 && a->nfiles + 1 > keep)
		b->unlink_count = a->nfiles + 1 - keep;
	sm_move(&a->sm, AUDIT_FLUSHING);
	atomic_store_explicit(&a->flight_done, false, memory_order_relaxed);
	a->work.data = a;
	rv = uv_queue_work(a->loop, &a->work, audit_work_cb,
			   audit_after_work_cb);
	assert(rv == 0); /* fails only for a NULL work callback */
	(void)rv;
}

static void audit_timer_cb(uv_timer_t *t)
{
	struct audit *a = t->data;

	assert(sm_state(&a->sm) == AUDIT_ARMED);
	audit_flush_start(a);
}

/* From IDLE: start what is due. */
static void audit_kick(struct audit *a)
{
	int rv;

	assert(sm_state(&a->sm) == AUDIT_IDLE);
	if (a->pending.buf.len > 0 && a->close_requested) {
		audit_flush_start(a);
	} else if (a->pending.buf.len > 0) {
		rv = uv_timer_start(&a->timer, audit_timer_cb,
				    a->opts.fsync_delay_ms, 0);
		assert(rv == 0);
		(void)rv;
		sm_move(&a->sm, AUDIT_ARMED);
	} else if (a->close_requested) {
		audit_close_start(a);
	}
}

/* Worker: start file new_file; the old one is complete (every batch was
 * fsynced) and is closed once the new one's entry is durable. */
static int audit_rotate(struct audit *a, struct audit_batch *b)
{
	char path[PATH_MAX];
	int rv;

	assert(b->rotate && b->new_fd < 0);
	audit_file_path(path, a, b->new_file);
	rv = fileio_open(path, O_RDWR | O_CREAT | O_EXCL, &b->new_fd,
			 b->errmsg);
	if (rv == RS_OK) {
		rv = fileio_fsync_dir(a->dir, b->errmsg);
		if (rv != RS_OK) {
			fileio_close(b->new_fd);
			b->new_fd = -1;
		}
	}
	if (rv != RS_OK) {
		rs_errmsg_wrapf(b->errmsg, "rotate");
		return rv;
	}
	fileio_close(b->fd);
	return RS_OK;
}

/* Worker: delete the oldest files, oldest first, after the batch is
 * durable.  A failure is a warning: the files stay listed and the next
 * rotation tries again. */
static void audit_retain(struct audit *a, struct audit_batch *b)
{
	char path[PATH_MAX];
	int rv = RS_OK;

	assert(b->rotate && b->unlink_count < a->nfiles + 1);
	for (b->unlinked = 0; b->unlinked < b->unlink_count; b->unlinked++) {
		audit_file_path(path, a, a->files[b->unlinked]);
		rv = fileio_unlink(path, b->warnmsg);
		if (rv != RS_OK)
			break;
	}
	if (b->unlinked > 0 && rv == RS_OK)
		rv = fileio_fsync_dir(a->dir, b->warnmsg);
	if (rv != RS_OK)
		rs_errmsg_wrapf(b->warnmsg, "audit %s: retention", a->dir);
}

/* Worker: one pwrite and one fsync for the whole batch. */
static void audit_work_cb(uv_work_t *w)
{
	struct audit *a = w->data;
	struct audit_batch *b = &a->flight;
	uint64_t off = b->offset, num = b->new_file - 1;
	char name[AUDIT_FILE_NAME_MAX];
	int fd = b->fd;

	/* Paired with audit_line_check: whole lines, no NUL. */
	assert(b->buf.len > 0 && b->buf.data[b->buf.len - 1] == '\n');
	assert(memchr(b->buf.data, '\0', b->buf.len) == NULL);
	if (b->rotate) {
		b->status = audit_rotate(a, b);
		fd = b->new_fd;
		off = 0;
		num = b->new_file;
	}
	if (b->status == RS_OK)
		b->status = fileio_pwrite(fd, b->buf.data, b->buf.len,
					  (off_t)off, b->errmsg);
	if (b->status == RS_OK) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		b->status = fileio_fsync(fd, b->errmsg);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		b->fsync_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
			      (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
	}
	if (b->status != RS_OK) {
		audit_file_name(name, sizeof name, num);
		rs_errmsg_wrapf(b->errmsg, "audit %s: append to %s", a->dir,
				name);
	} else if (b->unlink_count > 0) {
		audit_retain(a, b);
	}
	atomic_store_explicit(&a->flight_done, true, memory_order_release);
}

/* Loop: take in what the worker did to the files. */
static void audit_batch_account(struct audit *a, struct audit_batch *b)
{
	if (b->new_fd >= 0) {
		/* Rotated, even if the write after it failed. */
		assert(b->rotate && a->nfiles < a->files_cap);
		a->files[a->nfiles++] = b->new_file;
		a->fd = b->new_fd;
		a->size = 0;
		a->stats.rotations++;
	}
	if (b->status != RS_OK) {
		a->stats.dropped += b->events;
		audit_fail(a, b->status, b->errmsg);
		return;
	}
	a->size += b->buf.len;
	a->stats.batches++;
	a->stats.bytes_written += b->buf.len;
	/* A sealing audit_flush_sync may have written later lines already. */
	assert(a->sealed || b->last_seq > a->stats.durable_seq);
	if (b->last_seq > a->stats.durable_seq)
		a->stats.durable_seq = b->last_seq;
	if (b->unlinked > 0) {
		assert(b->unlinked < a->nfiles);
		memmove(a->files, a->files + b->unlinked,
			(a->nfiles - b->unlinked) * sizeof *a->files);
		a->nfiles -= b->unlinked;
		a->stats.files_deleted += b->unlinked;
	}
	if (b->warnmsg[0] != '\0') {
		a->stats.failures++;
		audit_logf(a, "%s (old files kept; retried at the next "
			      "rotation)",
			   b->warnmsg);
	}
}

static void audit_after_work_cb(uv_work_t *w, int status)
{
	struct audit *a = w->data;
	struct audit_batch *b = &a->flight;

	assert(status == 0); /* the log never cancels its work */
	assert(sm_state(&a->sm) == AUDIT_FLUSHING);
	(void)status;
	if (b->status == RS_OK && a->opts.on_fsync != NULL)
		a->opts.on_fsync(a->opts.fsync_arg, (double)b->fsync_ns / 1e9);
	audit_batch_account(a, b);
	audit_batch_reset(b, b->buf);
	sm_move(&a->sm, AUDIT_IDLE);
	audit_kick(a);
}

/* The line as an object: the fixed members in the documented order, then
 * extra's in its own order.  RS_EINVAL when extra is not an object or uses
 * a reserved name; why says which. */
static int audit_line_build(const struct audit *a, uint64_t seq,
			    const char *event, json_t *extra, json_t **out,
			    char *why)
{
	char ts[AUDIT_TS_LEN + 1];
	const char *key;
	json_t *line, *value;
	int rv;

	if (extra != NULL && !json_is_object(extra)) {
		rs_errmsg_printf(why, "the extra members are not an object");
		return RS_EINVAL;
	}
	/* A caller's "v" would claim a format it did not choose. */
	json_object_foreach(extra, key, value) { /* none when extra is NULL */
		if (audit_member_reserved(key)) {
			rs_errmsg_printf(why, "member \"%s\" is reserved", key);
			return RS_EINVAL;
		}
	}
	audit_ts_now(ts);
	line = json_object();
	rv = rs_json_set_str(line, "ts", ts);
	if (rv == RS_OK)
		rv = rs_json_set_u64(line, "node", a->node_id);
	if (rv == RS_OK)
		rv = rs_json_set_u64(line, "seq", seq);
	if (rv == RS_OK)
		rv = rs_json_set_str(line, "event", event);
	if (rv == RS_OK && extra != NULL && json_object_update(line, extra))
		rv = RS_ENOMEM;
	if (rv != RS_OK) {
		json_decref(line);
		rs_errmsg_printf(why, "build the line: %s", rs_strerror(rv));
		return rv;
	}
	*out = line;
	return RS_OK;
}

/* Paired with the reader: the line just written reads back, as what was
 * built.  RS_EINVAL (why says what) if it does not. */
static int audit_line_check(const struct audit *a, const uint8_t *p,
			    size_t len, uint64_t seq, const char *event,
			    char *why)
{
	struct audit_line l;

	assert(len > 0 && p[len - 1] == '\n');
	if (len > AUDIT_LINE_MAX) {
		rs_errmsg_printf(why, "%zu bytes, more than %u", len,
				 AUDIT_LINE_MAX);
		return RS_ETOOLARGE;
	}
	if (audit_line_parse((const char *)p, len - 1, &l, NULL, NULL, why) !=
	    RS_OK)
		return RS_EINVAL;
	if (l.seq != seq || l.node != a->node_id || l.has_version ||
	    strcmp(l.event, event) != 0) {
		rs_errmsg_printf(why, "the line reads back differently");
		return RS_EINVAL;
	}
	return RS_OK;
}

/* Write the line for seq at the end of buf and check it; on failure buf
 * is as it was and the refusal is logged. */
static int audit_line_append(struct audit *a, struct rs_buf *buf,
			     uint64_t seq, const char *event, json_t *extra)
{
	char why[RS_ERRMSG_SIZE];
	size_t start = buf->len;
	json_t *line;
	int rv = audit_line_build(a, seq, event, extra, &line, why);

	if (rv == RS_OK) {
		rv = rs_json_dump_buf(line, RS_JSON_COMPACT, buf);
		if (rv == RS_OK)
			rv = rs_buf_append(buf, "\n", 1);
		if (rv != RS_OK)
			rs_errmsg_printf(why, "write as JSON: %s",
					 rs_strerror(rv));
		json_decref(line);
	}
	if (rv == RS_OK)
		rv = audit_line_check(a, buf->data + start, buf->len - start,
				      seq, event, why);
	if (rv != RS_OK) {
		audit_logf(a, "event %s refused: %s", event, why);
		buf->len = start;
	}
	return rv;
}

/* Whether the log takes an event now; counts what it refuses. */
static int audit_event_admit(struct audit *a, const char *event)
{
	assert(sm_state(&a->sm) != AUDIT_CLOSED);
	if (a->close_requested)
		return RS_ECLOSED;
	if (a->sealed) {
		a->stats.dropped++;
		return RS_ESHUTDOWN;
	}
	if (a->failed != RS_OK) {
		a->stats.dropped++;
		return a->failed;
	}
	if (!audit_event_name_ok(event, strlen(event))) {
		a->stats.rejected++;
		return RS_EINVAL;
	}
	return RS_OK;
}

int audit_event(struct audit *a, const char *event, json_t *extra)
{
	struct audit_batch *q = &a->pending;
	size_t before = q->buf.len;
	char msg[RS_ERRMSG_SIZE];
	int rv;

	assert(a != NULL && event != NULL);
	rv = audit_event_admit(a, event);
	if (rv == RS_OK) {
		rv = audit_line_append(a, &q->buf, a->stats.last_seq + 1, event,
				       extra);
		if (rv != RS_OK)
			a->stats.rejected++;
	}
	json_decref(extra);
	if (rv != RS_OK)
		return rv;
	q->events++;
	q->last_seq = ++a->stats.last_seq;
	a->stats.events++;
	if (q->buf.len > AUDIT_PENDING_MAX) {
		snprintf(msg, sizeof msg,
			 "audit %s: %zu bytes queued and not yet written (the "
			 "disk is not keeping up)",
			 a->dir, before);
		audit_fail(a, RS_ETOOLARGE, msg);
		return RS_ETOOLARGE;
	}
	if (sm_state(&a->sm) == AUDIT_IDLE)
		audit_kick(a);
	return RS_OK;
}

/* ---- the fail-fast path ---- */

/* Wait for the worker to be done with the flight; its results are then
 * ours to read (the after-work callback will still run, on the loop). */
static int audit_wait_flight(struct audit *a)
{
	struct timespec nap = {0, 1000000L};

	for (int i = 0; i < AUDIT_SYNC_WAIT_MS; i++) {
		if (atomic_load_explicit(&a->flight_done, memory_order_acquire))
			return RS_OK;
		nanosleep(&nap, NULL);
	}
	return RS_ETIMEOUT;
}

/* Where the queued lines go: after the flight if there is one. */
static int audit_sync_target(struct audit *a, int *fd, uint64_t *off)
{
	const struct audit_batch *b = &a->flight;
	int rv;

	*fd = a->fd;
	*off = a->size;
	if (sm_state(&a->sm) != AUDIT_FLUSHING)
		return RS_OK;
	rv = audit_wait_flight(a);
	if (rv != RS_OK)
		return rv;
	if (b->status != RS_OK)
		return b->status;
	*fd = b->new_fd >= 0 ? b->new_fd : a->fd;
	*off = (b->new_fd >= 0 ? 0 : b->offset) + b->buf.len;
	return RS_OK;
}

int audit_flush_sync(struct audit *a)
{
	struct audit_batch *q = &a->pending;
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t off;
	int fd, rv;

	assert(a != NULL && sm_state(&a->sm) != AUDIT_CLOSED);
	assert(!a->close_requested && !a->sealed);
	a->sealed = true;
	if (a->failed != RS_OK)
		return a->failed;
	if (sm_state(&a->sm) == AUDIT_ARMED) {
		uv_timer_stop(&a->timer);
		sm_move(&a->sm, AUDIT_IDLE);
	}
	rv = audit_sync_target(a, &fd, &off);
	if (rv == RS_OK && q->buf.len > 0) {
		rv = fileio_pwrite(fd, q->buf.data, q->buf.len, (off_t)off,
				   errmsg);
		if (rv == RS_OK)
			rv = fileio_fsync(fd, errmsg);
	}
	if (rv == RS_ETIMEOUT)
		snprintf(errmsg, sizeof errmsg, "a batch in flight did not "
						"finish");
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "audit %s: flush", a->dir);
		audit_fail(a, rv, errmsg);
		return rv;
	}
	if (q->events > 0)
		a->stats.durable_seq = q->last_seq;
	a->stats.bytes_written += q->buf.len;
	audit_batch_reset(q, q->buf);
	assert(a->stats.durable_seq == a->stats.last_seq);
	return RS_OK;
}

/* ---- close ---- */

static void audit_timer_closed_cb(uv_handle_t *h)
{
	struct audit *a = h->data;
	audit_close_cb cb = a->close_cb;
	void *arg = a->close_arg;
	int status = a->failed;

	assert(sm_state(&a->sm) == AUDIT_CLOSING && a->fd < 0);
	sm_move(&a->sm, AUDIT_CLOSED);
	audit_free(a);
	if (cb != NULL)
		cb(arg, status);
}

/* Worker: closing can block (NFS flushes on close). */
static void audit_close_work_cb(uv_work_t *w)
{
	struct audit *a = w->data;

	assert(sm_state(&a->sm) == AUDIT_CLOSING);
	if (a->fd >= 0)
		fileio_close(a->fd);
	a->fd = -1;
}

static void audit_close_after_cb(uv_work_t *w, int status)
{
	struct audit *a = w->data;

	assert(status == 0);
	assert(sm_state(&a->sm) == AUDIT_CLOSING);
	(void)status;
	uv_close((uv_handle_t *)&a->timer, audit_timer_closed_cb);
}

static void audit_close_start(struct audit *a)
{
	int rv;

	assert(sm_state(&a->sm) == AUDIT_IDLE && a->close_requested);
	assert(a->pending.buf.len == 0);
	sm_move(&a->sm, AUDIT_CLOSING);
	a->work.data = a;
	rv = uv_queue_work(a->loop, &a->work, audit_close_work_cb,
			   audit_close_after_cb);
	assert(rv == 0);
	(void)rv;
}

void audit_close(struct audit *a, audit_close_cb cb, void *arg)
{
	assert(a != NULL);
	assert(!a->close_requested);
	a->close_requested = true;
	a->close_cb = cb;
	a->close_arg = arg;
	if (sm_state(&a->sm) == AUDIT_ARMED) {
		uv_timer_stop(&a->timer);
		sm_move(&a->sm, AUDIT_IDLE);
	}
	/* Otherwise the batch in flight continues the close when done. */
	if (sm_state(&a->sm) == AUDIT_IDLE)
		audit_kick(a);
}

/* ---- accessors ---- */

int audit_failed(const struct audit *a)
{
	assert(a != NULL);
	return a->failed;
}

const char *audit_errmsg(const struct audit *a)
{
	assert(a != NULL);
	return a->failed_msg;
}

uint64_t audit_last_seq(const struct audit *a)
{
	assert(a != NULL);
	return a->stats.last_seq;
}

const struct audit_report *audit_open_report(const struct audit *a)
{
	assert(a != NULL);
	return &a->report;
}

void audit_stats(const struct audit *a, struct audit_stats *out)
{
	assert(a != NULL && out != NULL);
	*out = a->stats;
}
