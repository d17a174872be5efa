/*
 * audit_open: opening the audit log (coordinator/audit.h, "Recovery at
 * open" in docs/audit.md).
 *
 * Open lists <dir>/audit, reads the newest file and checks every line with
 * the reader everyone uses (audit_line_parse), resumes the seq after the
 * last valid line (searching older files while none is found), cuts a torn
 * last line and fsyncs the cut, and creates the first file of a new log.
 * A bad line elsewhere is corruption: warned about and left in place, never
 * changed.  A valid line naming another node fails the open.  All of it
 * blocks and runs once, at start-up, before the loop owns anything.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/audit_internal.h"
#include "raftstore/lib/json.h"
#include "storage/fileio.h"

/* Corrupt lines warned about one by one, per file, at open. */
#define AUDIT_WARN_LINES_MAX 10u

void audit_free(struct audit *a)
{
	if (a->fd >= 0)
		fileio_close(a->fd);
	rs_buf_free(&a->pending.buf);
	rs_buf_free(&a->flight.buf);
	free(a->files);
	free(a->dir);
	free(a);
}

int audit_files_reserve(struct audit *a, unsigned n)
{
	uint64_t *files;
	unsigned cap;

	if (n <= a->files_cap)
		return RS_OK;
	cap = a->files_cap ? a->files_cap * 2 : 16;
	while (cap < n)
		cap *= 2;
	files = realloc(a->files, cap * sizeof *files);
	if (files == NULL)
		return RS_ENOMEM;
	a->files = files;
	a->files_cap = cap;
	return RS_OK;
}

static int audit_u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* Every audit-*.ndjson file, ascending; other names are left alone. */
static int audit_list(struct audit *a, char *errmsg)
{
	struct dirent *e;
	uint64_t num;
	int rv = RS_OK;
	DIR *dp = opendir(a->dir);

	if (dp == NULL)
		return rs_errmsg_errno(errmsg, errno, "list %s", a->dir);
	while (rv == RS_OK && (e = readdir(dp)) != NULL) {
		if (!audit_file_name_parse(e->d_name, &num))
			continue;
		rv = audit_files_reserve(a, a->nfiles + 1);
		if (rv == RS_OK)
			a->files[a->nfiles++] = num;
	}
	closedir(dp);
	if (rv != RS_OK)
		rs_errmsg_printf(errmsg, "list %s: out of memory", a->dir);
	else if (a->nfiles > 0)
		qsort(a->files, a->nfiles, sizeof *a->files, audit_u64_cmp);
	return rv;
}

/*
 * Where the valid data of the active file ends: after its last LF, less
 * any final lines holding a NUL (a write whose later pages reached the disk
 * and earlier ones did not; the writer never writes a NUL).
 */
static size_t audit_valid_end(const uint8_t *p, size_t len)
{
	size_t end = len, start;

	while (end > 0 && p[end - 1] != '\n')
		end--;
	while (end > 0) {
		start = end - 1;
		while (start > 0 && p[start - 1] != '\n')
			start--;
		if (memchr(p + start, '\0', end - 1 - start) == NULL)
			break;
		end = start;
	}
	assert(end <= len);
	assert(end == 0 || p[end - 1] == '\n');
	return end;
}

/* What reading the newest files found. */
struct audit_scan {
	bool found;       /* a valid line */
	uint64_t max_seq; /* the highest seq of a valid line */
};

static void audit_warn_line(struct audit *a, const char *name,
			    uint64_t lineno, size_t off, const char *why,
			    uint64_t nth)
{
	if (nth <= AUDIT_WARN_LINES_MAX)
		audit_logf(a,
			   "%s/%s: line %" PRIu64 " (offset %zu): %s: corrupt "
			   "line left in place; readers skip it",
			   a->dir, name, lineno, off, why);
	else if (nth == AUDIT_WARN_LINES_MAX + 1)
		audit_logf(a, "%s/%s: more corrupt lines; not listing them",
			   a->dir, name);
}

/* Check every line of p[0, len); the last one may lack its LF only in an
 * older file (a torn tail that was never cut: corrupt). */
static int audit_scan_lines(struct audit *a, const char *name,
			    const uint8_t *p, size_t len,
			    struct audit_scan *sc, char *errmsg)
{
	char why[RS_ERRMSG_SIZE];
	struct audit_line l;
	uint64_t lineno = 0, bad = 0;
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *nl = memchr(p + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (p + pos)) : len - pos;
		int rv = audit_line_parse((const char *)p + pos, n, &l, NULL,
					  NULL, why);
		lineno++;
		if (rv == RS_OK && nl == NULL) {
			rv = RS_ECORRUPT;
			snprintf(why, sizeof why, "no line feed");
		}
		if (rv != RS_OK) {
			audit_warn_line(a, name, lineno, pos, why, ++bad);
		} else if (l.node != a->node_id) {
			rs_errmsg_printf(errmsg,
					 "%s/%s: line %" PRIu64 " is node %" PRIu64
					 "'s, not node %" PRIu64 "'s",
					 a->dir, name, lineno, l.node,
					 a->node_id);
			return RS_EINVAL;
		} else {
			sc->found = true;
			if (l.seq > sc->max_seq)
				sc->max_seq = l.seq;
		}
		pos += n + 1;
	}
	a->report.corrupt_lines += bad;
	return RS_OK;
}

/* Open the active file and cut its torn tail (valid data ends at end). */
static int audit_open_active(struct audit *a, uint64_t num, size_t end,
			     size_t len, char *errmsg)
{
	char path[PATH_MAX];
	int rv;

	assert(a->fd < 0 && end <= len);
	audit_file_path(path, a, num);
	rv = fileio_open(path, O_RDWR, &a->fd, errmsg);
	if (rv == RS_OK && end < len) {
		rv = fileio_truncate(a->fd, (off_t)end, errmsg);
		if (rv == RS_OK)
			rv = fileio_fsync(a->fd, errmsg);
		if (rv != RS_OK)
			rs_errmsg_wrapf(errmsg, "cut torn tail of %s", path);
	}
	if (rv != RS_OK)
		return rv;
	a->size = end;
	if (end < len) {
		a->report.torn = true;
		audit_file_name(a->report.torn_file,
				sizeof a->report.torn_file, num);
		a->report.torn_offset = end;
		a->report.torn_bytes = len - end;
		audit_logf(a, "%s: torn last line (%zu bytes at offset %zu) "
			      "truncated",
			   path, len - end, end);
	}
	return RS_OK;
}

/* Read file files[i]; the newest one (active) also gets its fd and its
 * torn tail cut, after every check passed. */
static int audit_scan_file(struct audit *a, unsigned i, bool active,
			   struct audit_scan *sc, char *errmsg)
{
	char name[AUDIT_FILE_NAME_MAX], path[PATH_MAX];
	uint8_t *data;
	size_t len, end;
	int rv;

	assert(i < a->nfiles);
	audit_file_name(name, sizeof name, a->files[i]);
	audit_file_path(path, a, a->files[i]);
	rv = fileio_read_all(path, &data, &len, errmsg);
	if (rv != RS_OK)
		return rv;
	end = active ? audit_valid_end(data, len) : len;
	rv = audit_scan_lines(a, name, data, end, sc, errmsg);
	free(data);
	if (rv == RS_OK && active)
		rv = audit_open_active(a, a->files[i], end, len, errmsg);
	return rv;
}

/* Resume after the last valid line: the newest file, then older ones
 * while none has held a valid line yet. */
static int audit_recover(struct audit *a, char *errmsg)
{
	struct audit_scan sc = {0};
	unsigned i = a->nfiles - 1;
	int rv;

	assert(a->nfiles > 0);
	rv = audit_scan_file(a, i, true, &sc, errmsg);
	while (rv == RS_OK && !sc.found && i-- > 0)
		rv = audit_scan_file(a, i, false, &sc, errmsg);
	if (rv != RS_OK)
		return rv;
	if (!sc.found && a->report.corrupt_lines > 0)
		audit_logf(a, "%s: no valid line in any file; seq restarts at 1",
			   a->dir);
	a->stats.last_seq = sc.max_seq;
	a->stats.durable_seq = sc.max_seq;
	a->report.last_seq = sc.max_seq;
	assert(a->fd >= 0);
	return RS_OK;
}

static int audit_create_first(struct audit *a, char *errmsg)
{
	char path[PATH_MAX];
	int rv;

	assert(a->nfiles == 0 && a->fd < 0);
	rv = audit_files_reserve(a, 1);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "out of memory");
		return rv;
	}
	audit_file_path(path, a, 1);
	rv = fileio_open(path, O_RDWR | O_CREAT | O_EXCL, &a->fd, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(a->dir, errmsg);
	if (rv != RS_OK)
		return rv;
	a->files[a->nfiles++] = 1;
	a->size = 0;
	return RS_OK;
}

static int audit_alloc(struct audit **out, uv_loop_t *loop, const char *dir,
		       uint64_t node_id, const struct audit_options *o,
		       char *errmsg)
{
	struct audit *a = calloc(1, sizeof *a);
	int n;

	if (a == NULL) {
		rs_errmsg_printf(errmsg, "out of memory");
		return RS_ENOMEM;
	}
	sm_init(&a->sm, &audit_sm, AUDIT_IDLE);
	a->fd = -1;
	a->loop = loop;
	a->node_id = node_id;
	if (o != NULL)
		a->opts = *o;
	else
		audit_options_init(&a->opts);
	rs_buf_init(&a->pending.buf);
	rs_buf_init(&a->flight.buf);
	a->pending.fd = a->pending.new_fd = -1;
	a->flight.fd = a->flight.new_fd = -1;
	n = asprintf(&a->dir, "%s/%s", dir, AUDIT_DIR_NAME);
	if (n < 0 || n >= PATH_MAX - (int)AUDIT_FILE_NAME_MAX) {
		if (n < 0)
			a->dir = NULL;
		audit_free(a);
		rs_errmsg_printf(errmsg, "%s: path too long", dir);
		return n < 0 ? RS_ENOMEM : RS_EINVAL;
	}
	*out = a;
	return RS_OK;
}

void audit_options_init(struct audit_options *o)
{
	assert(o != NULL);
	memset(o, 0, sizeof *o);
	o->fsync_delay_ms = AUDIT_FSYNC_DELAY_MS_DEFAULT;
	o->rotate_size_bytes = AUDIT_ROTATE_SIZE_BYTES_DEFAULT;
	o->keep_files = AUDIT_KEEP_FILES_DEFAULT;
}

/* Record the cut torn tail in the log itself (audit.h). */
static void audit_record_torn(struct audit *a)
{
	json_t *extra = json_object();

	assert(a->report.torn);
	/* Out of memory leaves a member out; the event still goes. */
	rs_json_set_str(extra, "file", a->report.torn_file);
	rs_json_set_u64(extra, "offset", a->report.torn_offset);
	rs_json_set_u64(extra, "bytes", a->report.torn_bytes);
	audit_event(a, AUDIT_EV_TAIL_TRUNCATED, extra);
}

int audit_open(struct audit **out, uv_loop_t *loop, const char *dir,
	       uint64_t node_id, const struct audit_options *o, char *errmsg)
{
	char scratch[RS_ERRMSG_SIZE];
	struct audit *a;
	int rv;

	assert(out != NULL && loop != NULL && dir != NULL);
	*out = NULL;
	if (errmsg == NULL)
		errmsg = scratch;
	errmsg[0] = '\0';
	if (node_id > (uint64_t)INT64_MAX) {
		rs_errmsg_printf(errmsg,
				 "open audit log in %s: node id %" PRIu64
				 " is above 2^63-1, the largest a line holds",
				 dir, node_id);
		return RS_EINVAL;
	}
	rv = audit_alloc(&a, loop, dir, node_id, o, errmsg);
	if (rv != RS_OK)
		return rv;
	/* The data dir's entry for audit/ must survive a crash too. */
	rv = fileio_mkdir(a->dir, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(dir, errmsg);
	if (rv == RS_OK)
		rv = audit_list(a, errmsg);
	a->report.files = a->nfiles;
	if (rv == RS_OK)
		rv = a->nfiles > 0 ? audit_recover(a, errmsg)
				   : audit_create_first(a, errmsg);
	if (rv != RS_OK)
		goto err_free;
	rv = uv_timer_init(loop, &a->timer);
	assert(rv == 0); /* cannot fail on a live loop */
	a->timer.data = a;
	if (a->report.torn)
		audit_record_torn(a);
	*out = a;
	return RS_OK;

err_free:
	rs_errmsg_wrapf(errmsg, "open audit log %s", a->dir);
	audit_free(a);
	return rv;
}
