/*
 * journal: see journal.h.
 *
 * Threads.  The loop thread owns everything in struct journal except the
 * group in flight (j->flight), which belongs to the thread-pool worker from
 * uv_queue_work() until the after-work callback; the worker also reads the
 * fields that never change after open (dir, sync).  libuv's work queue hands
 * the group over and back with a happens-before edge, so there is no lock.
 *
 * Open reads each segment whole, verifies and replays it, and only then
 * decides what to cut (a torn tail; in recover mode everything from the first
 * bad record).  Files are changed last and newest first, so that a crash in
 * the middle of an open leaves a journal the next open repairs the same way.
 */
#include "storage/journal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"
#include "storage/fileio.h"
#include "storage/record.h"

_Static_assert(JOURNAL_HEADER_SIZE == 40, "the header drawn in journal.h");
_Static_assert(sizeof(JOURNAL_MAGIC) - 1 == 8, "8-byte magic");

#define JOURNAL_NAME_LEN 24 /* "seg-" + 16 hex digits + ".rsj" */
/* The smallest payload record_parse accepts: version, epoch, body count. */
#define JOURNAL_PAYLOAD_MIN 20u
/* Header field offsets, for messages and reports. */
#define JOURNAL_OFF_FORMAT 8u
#define JOURNAL_OFF_FLAGS 12u
#define JOURNAL_OFF_SEQ 16u
#define JOURNAL_OFF_PREV 24u
#define JOURNAL_OFF_CRC 32u
#define JOURNAL_OFF_RESERVED 36u

/* ---- the journal object and its state machine ---- */

enum journal_state {
	JOURNAL_IDLE,    /* no job in the thread pool; nothing pending */
	JOURNAL_WRITING, /* a group is in the thread pool */
	JOURNAL_CLOSING, /* the close job is in the thread pool */
	JOURNAL_CLOSED,  /* being freed */
	JOURNAL_STATE__COUNT
};

__attribute__((unused)) /* only read by assert() */
static const bool journal_transitions[JOURNAL_STATE__COUNT]
				     [JOURNAL_STATE__COUNT] = {
	[JOURNAL_IDLE] = {[JOURNAL_WRITING] = true,
			  [JOURNAL_CLOSING] = true,
			  [JOURNAL_CLOSED] = true},
	[JOURNAL_WRITING] = {[JOURNAL_IDLE] = true},
	[JOURNAL_CLOSING] = {[JOURNAL_CLOSED] = true},
};

/* What the journal knows about one segment it keeps. */
struct journal_seg {
	uint64_t seq;
	uint64_t prev_version; /* from the header */
	uint64_t last_version; /* of its last record; prev_version if none */
	uint64_t size;         /* header and valid records */
};

/*
 * One group commit: requests and their encoded records, in order.  Filled
 * on the loop; the worker writes buf and sets the results; the after-work
 * callback reads them back on the loop.
 */
struct journal_group {
	struct journal_append_req *head;
	struct journal_append_req *tail;
	struct rs_buf buf;
	uint64_t last_version; /* of the last request */
	/* inputs for the worker, set when the group starts */
	int fd;
	uint64_t offset;
	bool rotate;
	uint64_t new_seq;
	uint64_t new_prev_version;
	/* results of the worker */
	int status;
	int new_fd; /* >= 0 if a new segment was created */
	char errmsg[RS_ERRMSG_SIZE];
};

struct journal {
	uv_loop_t *loop;
	char *dir;
	uint64_t segment_size_max;
	enum journal_sync sync;
	bool read_only;
	enum journal_state state;
	bool close_requested;
	void (*close_cb)(void *arg);
	void *close_arg;
	int failed; /* 0, or what every append completes with from now on */
	char failed_msg[RS_ERRMSG_SIZE];
	uint64_t last_version; /* last accepted, or found on open */
	struct journal_seg *segs; /* seq order; the last one is active */
	unsigned nsegs;
	unsigned segs_cap;
	int fd; /* the active segment; -1 when read-only */
	struct journal_group pending; /* queued, not started */
	struct journal_group flight;  /* in the thread pool */
	uv_work_t work;
};

static void journal_set_state(struct journal *j, enum journal_state to)
{
	assert(to < JOURNAL_STATE__COUNT);
	assert(journal_transitions[j->state][to]);
	j->state = to;
}

/* ---- small helpers ---- */

static void journal_seg_name(char *out, size_t size, uint64_t seq)
{
	int n = snprintf(out, size, "seg-%016" PRIx64 ".rsj", seq);
	assert(n == JOURNAL_NAME_LEN);
	(void)n;
}

/* dir/name; journal_open and journal_list_segments check dir's length. */
static void journal_path(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	assert(n > 0 && n < PATH_MAX);
	(void)n;
}

static bool journal_dir_ok(const char *dir, char *errmsg)
{
	if (dir != NULL && dir[0] != '\0' &&
	    strlen(dir) + 1 + JOURNAL_NAME_LEN < PATH_MAX)
		return true;
	rs_errmsg_printf(errmsg, "bad journal directory name");
	return false;
}

static bool journal_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static int journal_segs_reserve(struct journal *j)
{
	struct journal_seg *segs;
	unsigned cap;

	assert(j->nsegs <= j->segs_cap);
	if (j->nsegs < j->segs_cap)
		return RS_OK;
	cap = j->segs_cap > 0 ? j->segs_cap * 2 : 8;
	segs = realloc(j->segs, cap * sizeof *segs);
	if (segs == NULL)
		return RS_ENOMEM;
	j->segs = segs;
	j->segs_cap = cap;
	assert(j->nsegs < j->segs_cap);
	return RS_OK;
}

/* ---- segment header ---- */

static void journal_header_encode(uint8_t *h, uint64_t seq,
				  uint64_t prev_version)
{
	assert(seq > 0);
	memset(h, 0, JOURNAL_HEADER_SIZE);
	memcpy(h, JOURNAL_MAGIC, 8);
	rs_put_u32(h + JOURNAL_OFF_FORMAT, JOURNAL_FORMAT_VERSION);
	rs_put_u64(h + JOURNAL_OFF_SEQ, seq);
	rs_put_u64(h + JOURNAL_OFF_PREV, prev_version);
	rs_put_u32(h + JOURNAL_OFF_CRC, crc32c(h, JOURNAL_OFF_CRC));
	assert(rs_get_u64(h + JOURNAL_OFF_SEQ) == seq);
}

/*
 * Check a full header against the segment's name.  The format version is
 * checked before the checksum so that a newer format whose header differs
 * is reported as such (RS_EFORMAT), not as damage.  *bad_offset is the
 * field at fault.
 */
static int journal_header_decode(const uint8_t *h, uint64_t seq,
				 uint64_t *prev_version, uint64_t *bad_offset,
				 char *errmsg)
{
	uint32_t format = rs_get_u32(h + JOURNAL_OFF_FORMAT);

	assert(h != NULL && prev_version != NULL);
	assert(seq > 0); /* names with seq 0 are never listed */
	*bad_offset = 0;
	if (memcmp(h, JOURNAL_MAGIC, 8) != 0) {
		rs_errmsg_printf(errmsg, "bad segment magic");
		return RS_ECORRUPT;
	}
	*bad_offset = JOURNAL_OFF_FORMAT;
	if (format != JOURNAL_FORMAT_VERSION) {
		rs_errmsg_printf(errmsg,
				 "format version %u is not supported (this build "
				 "reads version %u)",
				 format, JOURNAL_FORMAT_VERSION);
		return RS_EFORMAT;
	}
	*bad_offset = JOURNAL_OFF_CRC;
	if (rs_get_u32(h + JOURNAL_OFF_CRC) != crc32c(h, JOURNAL_OFF_CRC)) {
		rs_errmsg_printf(errmsg, "segment header checksum mismatch");
		return RS_ECORRUPT;
	}
	*bad_offset = JOURNAL_OFF_FLAGS;
	if (rs_get_u32(h + JOURNAL_OFF_FLAGS) != 0) {
		rs_errmsg_printf(errmsg, "unknown segment header flags 0x%x",
				 rs_get_u32(h + JOURNAL_OFF_FLAGS));
		return RS_EFORMAT;
	}
	/* Not covered by the checksum: zero is the only check there is. */
	*bad_offset = JOURNAL_OFF_RESERVED;
	if (rs_get_u32(h + JOURNAL_OFF_RESERVED) != 0) {
		rs_errmsg_printf(errmsg, "reserved header bytes are not zero");
		return RS_ECORRUPT;
	}
	*bad_offset = JOURNAL_OFF_SEQ;
	if (rs_get_u64(h + JOURNAL_OFF_SEQ) != seq) {
		rs_errmsg_printf(errmsg, "header seq %" PRIx64
				 " does not match the file name",
				 rs_get_u64(h + JOURNAL_OFF_SEQ));
		return RS_ECORRUPT;
	}
	*prev_version = rs_get_u64(h + JOURNAL_OFF_PREV);
	return RS_OK;
}

/*
 * Create segment seq with its header and make it durable: the file, then
 * its directory entry, so that records written to it can never be lost with
 * the file.  O_EXCL: an existing file of that name is never overwritten.
 * Blocks.  On failure a partial file may remain; open treats a short or
 * zero header in the last segment as torn and removes it.
 */
static int journal_segment_create(const char *dir, uint64_t seq,
				  uint64_t prev_version, int *fd, char *errmsg)
{
	uint8_t h[JOURNAL_HEADER_SIZE];
	char name[JOURNAL_NAME_LEN + 1];
	char path[PATH_MAX];
	int rv;

	assert(dir != NULL && fd != NULL);
	journal_seg_name(name, sizeof name, seq);
	journal_path(path, dir, name);
	journal_header_encode(h, seq, prev_version);
	rv = fileio_open(path, O_RDWR | O_CREAT | O_EXCL, fd, errmsg);
	if (rv != RS_OK)
		goto err;
	rv = fileio_pwrite(*fd, h, sizeof h, 0, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync(*fd, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(dir, errmsg);
	if (rv != RS_OK)
		goto err_close;
	assert(*fd >= 0);
	return RS_OK;
err_close:
	fileio_close(*fd);
err:
	*fd = -1;
	rs_errmsg_wrapf(errmsg, "create segment %s", name);
	return rv;
}

/* ---- listing ---- */

/* Accept only the canonical name, so that one seq has one file. */
static bool journal_name_parse(const char *name, uint64_t *seq)
{
	uint64_t v = 0;

	assert(name != NULL && seq != NULL);
	if (strlen(name) != JOURNAL_NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
	    strcmp(name + 20, ".rsj") != 0)
		return false;
	if (!bytes_hex_parse_u64(name + 4, 16, &v))
		return false;
	*seq = v;
	return v > 0;
}

struct journal_list {
	struct journal_segment_info *segs;
	unsigned n;
	unsigned cap;
};

static int journal_list_add(struct journal_list *l, DIR *d, const char *name,
			    uint64_t seq, char *errmsg)
{
	struct journal_segment_info *info;
	struct stat st;

	assert(l->n <= l->cap);
	if (fstatat(dirfd(d), name, &st, 0) != 0)
		return rs_errmsg_errno(errmsg, errno, "stat %s", name);
	if (!S_ISREG(st.st_mode))
		return RS_OK;
	if (l->n == l->cap) {
		unsigned cap = l->cap > 0 ? l->cap * 2 : 16;
		info = realloc(l->segs, cap * sizeof *info);
		if (info == NULL)
			return RS_ENOMEM;
		l->segs = info;
		l->cap = cap;
	}
	info = &l->segs[l->n++];
	memset(info, 0, sizeof *info);
	snprintf(info->name, sizeof info->name, "%s", name);
	info->seq = seq;
	info->size = (uint64_t)st.st_size;
	assert(l->n <= l->cap);
	return RS_OK;
}

static int journal_info_cmp(const void *a, const void *b)
{
	const struct journal_segment_info *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The segment files of dir in seq order, without reading them. */
static int journal_list_dir(const char *dir, struct journal_list *l,
			    char *errmsg)
{
	struct dirent *e;
	uint64_t seq;
	DIR *d;
	int rv = RS_OK;

	assert(dir != NULL && l != NULL);
	memset(l, 0, sizeof *l);
	d = opendir(dir);
	if (d == NULL)
		return rs_errmsg_errno(errmsg, errno, "list %s", dir);
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (e == NULL) {
			if (errno != 0)
				rv = rs_errmsg_errno(errmsg, errno, "list %s", dir);
			break;
		}
		if (journal_name_parse(e->d_name, &seq))
			rv = journal_list_add(l, d, e->d_name, seq, errmsg);
		if (rv != RS_OK)
			break;
	}
	closedir(d);
	if (rv != RS_OK) {
		free(l->segs);
		memset(l, 0, sizeof *l);
		return rv;
	}
	if (l->n > 1)
		qsort(l->segs, l->n, sizeof *l->segs, journal_info_cmp);
	/* Canonical names: one file per seq, so the order is strict. */
	for (unsigned i = 1; i < l->n; i++)
		assert(l->segs[i - 1].seq < l->segs[i].seq);
	return RS_OK;
}

/* Fill info->prev_version from the header if it is valid; 0 otherwise. */
static int journal_peek_prev(const char *dir,
			     struct journal_segment_info *info, char *errmsg)
{
	uint8_t h[JOURNAL_HEADER_SIZE];
	char path[PATH_MAX];
	char scratch[RS_ERRMSG_SIZE];
	uint64_t bad_offset;
	size_t got;
	int fd, rv;

	assert(info != NULL && info->seq > 0);
	assert(dir != NULL);
	journal_path(path, dir, info->name);
	rv = fileio_open(path, O_RDONLY, &fd, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = fileio_pread(fd, h, sizeof h, 0, &got, errmsg);
	fileio_close(fd);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "%s", path);
		return rv;
	}
	if (got != sizeof h || journal_header_decode(h, info->seq,
						     &info->prev_version,
						     &bad_offset, scratch) != RS_OK)
		info->prev_version = 0;
	return RS_OK;
}

int journal_list_segments(const char *dir, struct journal_segment_info **segs,
			  unsigned *n, char *errmsg)
{
	char scratch[RS_ERRMSG_SIZE];
	struct journal_list l;
	int rv = RS_EINVAL;

	assert(segs != NULL && n != NULL);
	if (errmsg == NULL)
		errmsg = scratch;
	*segs = NULL;
	*n = 0;
	if (journal_dir_ok(dir, errmsg))
		rv = journal_list_dir(dir, &l, errmsg);
	for (unsigned i = 0; rv == RS_OK && i < l.n; i++)
		rv = journal_peek_prev(dir, &l.segs[i], errmsg);
	if (rv != RS_OK) {
		if (rv != RS_EINVAL)
			free(l.segs);
		rs_errmsg_wrapf(errmsg, "list journal %s", dir ? dir : "(null)");
		return rv;
	}
	*segs = l.segs;
	*n = l.n;
	assert(*n == 0 || *segs != NULL);
	return RS_OK;
}

/* ---- the write path: group commit ---- */

static void journal_work_cb(uv_work_t *w);
static void journal_after_work_cb(uv_work_t *w, int status);
static void journal_close_start(struct journal *j);

/* An empty group that keeps buf's allocation. */
static void journal_group_reset(struct journal_group *g, struct rs_buf buf)
{
	memset(g, 0, sizeof *g);
	buf.len = 0;
	g->buf = buf;
	g->fd = -1;
	g->new_fd = -1;
}

/* Complete every request of g, in order.  A callback may append (to the
 * pending group, never to g) or close the journal. */
static void journal_group_complete(struct journal_group *g, int status)
{
	struct journal_append_req *req = g->head;
	uint64_t prev = 0;

	g->head = NULL;
	g->tail = NULL;
	while (req != NULL) {
		struct journal_append_req *next = req->next;
		assert(req->version > prev);
		assert(req->cb != NULL);
		prev = req->version;
		req->status = status;
		req->cb(req, status);
		req = next;
	}
	(void)prev;
}

/* Rotate before this group if the active segment holds records and the
 * group would push it past the limit.  A group is never split, so a segment
 * exceeds segment_size_max by at most one group. */
static bool journal_should_rotate(struct journal *j,
				  const struct journal_group *g)
{
	const struct journal_seg *active = &j->segs[j->nsegs - 1];

	assert(j->nsegs > 0);
	assert(active->size >= JOURNAL_HEADER_SIZE);
	if (g->status != RS_OK || active->size == JOURNAL_HEADER_SIZE ||
	    active->size + g->buf.len <= j->segment_size_max)
		return false;
	/* Reserve the slot now, as the after-work callback must not fail.
	 * Without one, write on: a long segment beats a failed journal. */
	return journal_segs_reserve(j) == RS_OK;
}

/* Hand the pending group to the thread pool. */
static void journal_group_start(struct journal *j)
{
	struct journal_group *g = &j->flight;
	const struct journal_seg *active = &j->segs[j->nsegs - 1];
	struct rs_buf spare = g->buf;
	int rv;

	assert(j->state == JOURNAL_IDLE && !j->close_requested);
	assert(j->pending.head != NULL && j->nsegs > 0);
	*g = j->pending;
	journal_group_reset(&j->pending, spare);
	g->status = j->failed; /* a failed journal only delivers its error */
	g->fd = j->fd;
	g->offset = active->size;
	g->new_seq = active->seq + 1;
	g->new_prev_version = active->last_version;
	g->new_fd = -1;
	g->errmsg[0] = '\0';
	g->rotate = journal_should_rotate(j, g);
	journal_set_state(j, JOURNAL_WRITING);
	j->work.data = j;
	rv = uv_queue_work(j->loop, &j->work, journal_work_cb,
			   journal_after_work_cb);
	assert(rv == 0); /* fails only for a NULL work callback */
	(void)rv;
}

/* Worker: make the old segment durable, then start the next one. */
static int journal_rotate(struct journal *j, struct journal_group *g)
{
	int rv = RS_OK;

	assert(g->rotate && g->new_fd == -1);
	assert(g->fd >= 0);
	/* Under JOURNAL_SYNC_NONE the old tail may still be in the page
	 * cache.  A crash that kept the new segment (its header is fsynced)
	 * but lost that tail would break the chain, so sync it first.  Under
	 * JOURNAL_SYNC_FSYNC every group already was. */
	if (j->sync != JOURNAL_SYNC_FSYNC)
		rv = fileio_fsync(g->fd, g->errmsg);
	if (rv == RS_OK)
		rv = journal_segment_create(j->dir, g->new_seq,
					    g->new_prev_version, &g->new_fd,
					    g->errmsg);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(g->errmsg, "rotate");
		return rv;
	}
	fileio_close(g->fd); /* nothing more goes to the old segment */
	return RS_OK;
}

/* Worker: one pwrite for the whole group and, if asked, one fsync. */
static void journal_work_cb(uv_work_t *w)
{
	struct journal *j = w->data;
	struct journal_group *g = &j->flight;
	uint64_t off = g->offset, seq = g->new_seq - 1;
	char name[JOURNAL_NAME_LEN + 1];
	int fd = g->fd;

	assert(g->head != NULL);
	assert(g->status != RS_OK || g->buf.len > 0);
	if (g->status != RS_OK)
		return; /* failed before: the group only carries the error */
	if (g->rotate)
		g->status = journal_rotate(j, g);
	if (g->rotate && g->status == RS_OK) {
		fd = g->new_fd;
		off = JOURNAL_HEADER_SIZE;
		seq = g->new_seq;
	}
	if (g->status == RS_OK)
		g->status = fileio_pwrite(fd, g->buf.data, g->buf.len,
					  (off_t)off, g->errmsg);
	if (g->status == RS_OK && j->sync == JOURNAL_SYNC_FSYNC)
		g->status = fileio_fsync(fd, g->errmsg);
	if (g->status != RS_OK) {
		journal_seg_name(name, sizeof name, seq);
		rs_errmsg_wrapf(g->errmsg, "journal %s: append to %s", j->dir,
				name);
	}
}

/* Loop: take in what the worker did to the files. */
static void journal_group_account(struct journal *j, struct journal_group *g)
{
	struct journal_seg *active;

	assert(j->nsegs > 0);
	if (g->new_fd >= 0) {
		/* Rotated, even if the write after it failed. */
		assert(g->rotate && j->nsegs < j->segs_cap);
		j->segs[j->nsegs++] = (struct journal_seg){
			.seq = g->new_seq,
			.prev_version = g->new_prev_version,
			.last_version = g->new_prev_version,
			.size = JOURNAL_HEADER_SIZE,
		};
		j->fd = g->new_fd;
	}
	active = &j->segs[j->nsegs - 1];
	if (g->status == RS_OK) {
		active->size += g->buf.len;
		active->last_version = g->last_version;
		assert(active->last_version > active->prev_version);
	} else if (j->failed == RS_OK) {
		j->failed = g->status;
		memcpy(j->failed_msg, g->errmsg, sizeof j->failed_msg);
	}
}

static void journal_after_work_cb(uv_work_t *w, int status)
{
	struct journal *j = w->data;
	struct journal_group *g = &j->flight;

	assert(status == 0); /* the journal never cancels its work */
	assert(j->state == JOURNAL_WRITING);
	(void)status;
	journal_group_account(j, g);
	/* Still WRITING during the callbacks, so that their appends queue
	 * behind the ones already pending instead of jumping ahead. */
	journal_group_complete(g, g->status);
	journal_group_reset(g, g->buf);
	journal_set_state(j, JOURNAL_IDLE);
	if (j->close_requested)
		journal_close_start(j);
	else if (j->pending.head != NULL)
		journal_group_start(j);
}

/* Debug-only twin of the checks on open: what goes to the disk must read
 * back as the record that was meant. */
__attribute__((unused)) static bool
journal_record_ok(const uint8_t *p, size_t len, uint64_t version)
{
	struct record_view v;
	char errmsg[RS_ERRMSG_SIZE];

	return record_parse(p, len, &v, errmsg) == RS_OK &&
	       v.total_len == len && v.version == version;
}

int journal_append(struct journal *j, struct journal_append_req *req,
		   const struct batch *b, journal_append_cb cb)
{
	struct journal_group *g = &j->pending;
	size_t start = g->buf.len;
	int rv;

	assert(req != NULL && b != NULL && cb != NULL);
	assert(j->state != JOURNAL_CLOSED);
	if (j->read_only || j->loop == NULL)
		return RS_EINVAL;
	if (j->close_requested)
		return RS_ECLOSED;
	if (b->version <= j->last_version)
		return RS_EVERSION;
	if (j->failed == RS_OK) {
		/* Encode now: the caller may free b on return. */
		rv = record_encode_batch(b, &g->buf);
		if (rv != RS_OK)
			return rv;
		assert(journal_record_ok(g->buf.data + start,
					 g->buf.len - start, b->version));
	}
	(void)start;
	req->cb = cb;
	req->next = NULL;
	req->version = b->version;
	req->status = RS_OK;
	if (g->tail != NULL)
		g->tail->next = req;
	else
		g->head = req;
	g->tail = req;
	g->last_version = b->version;
	j->last_version = b->version;
	if (j->state == JOURNAL_IDLE)
		journal_group_start(j);
	return RS_OK;
}

uint64_t journal_last_version(const struct journal *j)
{
	assert(j != NULL);
	return j->last_version;
}

unsigned journal_segment_count(const struct journal *j)
{
	assert(j != NULL);
	return j->nsegs;
}

const char *journal_errmsg(const struct journal *j)
{
	assert(j != NULL);
	return j->failed_msg;
}

/* ---- retention ---- */

int journal_retain(struct journal *j, uint64_t covered_version, unsigned keep,
		   char *errmsg)
{
	char scratch[RS_ERRMSG_SIZE];
	char name[JOURNAL_NAME_LEN + 1];
	char path[PATH_MAX];
	unsigned covered = 0, drop, i;
	int rv = RS_OK;

	assert(j != NULL && j->nsegs > 0);
	assert(j->state != JOURNAL_CLOSED);
	if (errmsg == NULL)
		errmsg = scratch;
	if (j->read_only)
		return RS_EINVAL;
	/* The last segment is active (a group in flight writes it). */
	while (covered + 1 < j->nsegs &&
	       j->segs[covered].last_version <= covered_version)
		covered++;
	drop = covered > keep ? covered - keep : 0;
	/* Oldest first: a crash part-way leaves an unbroken chain. */
	for (i = 0; i < drop && rv == RS_OK; i++) {
		journal_seg_name(name, sizeof name, j->segs[i].seq);
		journal_path(path, j->dir, name);
		rv = fileio_unlink(path, errmsg);
	}
	if (rv != RS_OK) {
		i--; /* that one is still there */
		rs_errmsg_wrapf(errmsg, "journal %s: retain", j->dir);
	}
	memmove(j->segs, j->segs + i, (j->nsegs - i) * sizeof *j->segs);
	j->nsegs -= i;
	assert(j->nsegs >= 1);
	return rv;
}

/* ---- close ---- */

static void journal_free(struct journal *j)
{
	rs_buf_free(&j->pending.buf);
	rs_buf_free(&j->flight.buf);
	free(j->segs);
	free(j->dir);
	free(j);
}

/* Worker: closing can block (NFS flushes on close). */
static void journal_close_work_cb(uv_work_t *w)
{
	struct journal *j = w->data;

	assert(j->state == JOURNAL_CLOSING);
	if (j->fd >= 0)
		fileio_close(j->fd);
	j->fd = -1;
}

static void journal_close_after_cb(uv_work_t *w, int status)
{
	struct journal *j = w->data;
	void (*cb)(void *arg) = j->close_cb;
	void *arg = j->close_arg;

	assert(status == 0);
	assert(j->fd == -1);
	(void)status;
	journal_set_state(j, JOURNAL_CLOSED);
	journal_free(j);
	if (cb != NULL)
		cb(arg);
}

static void journal_close_start(struct journal *j)
{
	int rv;

	assert(j->state == JOURNAL_IDLE);
	assert(j->close_requested);
	/* close_requested is set, so appends from these callbacks are
	 * refused synchronously and the pending group stays empty. */
	journal_group_complete(&j->pending, RS_ECLOSED);
	journal_set_state(j, JOURNAL_CLOSING);
	j->work.data = j;
	rv = uv_queue_work(j->loop, &j->work, journal_close_work_cb,
			   journal_close_after_cb);
	assert(rv == 0);
	(void)rv;
}

void journal_close(struct journal *j, void (*cb)(void *arg), void *arg)
{
	assert(j != NULL && j->loop != NULL);
	assert(!j->close_requested);
	j->close_requested = true;
	j->close_cb = cb;
	j->close_arg = arg;
	/* Otherwise the group in flight continues the close when done. */
	if (j->state == JOURNAL_IDLE)
		journal_close_start(j);
}

void journal_close_sync(struct journal *j)
{
	if (j == NULL)
		return;
	assert(j->state == JOURNAL_IDLE && !j->close_requested);
	assert(j->pending.head == NULL);
	journal_set_state(j, JOURNAL_CLOSED);
	if (j->fd >= 0)
		fileio_close(j->fd);
	journal_free(j);
}

/* ---- open: verify, replay, repair ---- */

/* Open-time state.  j->segs grows as segments verify; when the scan stops,
 * files list[j->nsegs, n) are to be deleted and the last kept one cut to
 * its valid size. */
struct journal_scan {
	struct journal *j;
	const struct journal_options *opts;
	uint64_t from_version;
	journal_replay_fn replay;
	void *ctx;
	struct journal_report *report;
	char *errmsg;
	struct journal_list list; /* sizes become the lengths actually read */
	struct batch batch;       /* decode target, reused */
	uint64_t last_version;    /* last good record, or the chain's base */
	bool stop;                /* a torn tail or a recovery ended the scan */
};

/* A problem found by the scan. */
struct journal_bad {
	unsigned seg;
	uint64_t offset; /* in the file */
	uint64_t len;    /* of the file */
	int code;        /* RS_ECORRUPT, RS_EFORMAT or RS_EGAP */
	bool torn;       /* the trace of a crash: cut, no error */
	bool whole;      /* the header is bad: the whole file goes */
};

static int journal_seg_push(struct journal_scan *s, unsigned i,
			    uint64_t prev_version)
{
	struct journal *j = s->j;
	int rv = journal_segs_reserve(j);

	assert(i < s->list.n);
	if (rv != RS_OK)
		return rv;
	j->segs[j->nsegs++] = (struct journal_seg){
		.seq = s->list.segs[i].seq,
		.prev_version = prev_version,
		.last_version = prev_version,
		.size = JOURNAL_HEADER_SIZE,
	};
	s->report->segments = j->nsegs;
	s->report->bytes += JOURNAL_HEADER_SIZE;
	assert(s->report->segments == j->nsegs);
	return RS_OK;
}

/* Sum of the sizes of the files after segment i. */
static uint64_t journal_scan_size_after(const struct journal_scan *s,
					unsigned i)
{
	uint64_t sum = 0;
	for (unsigned k = i + 1; k < s->list.n; k++)
		sum += s->list.segs[k].size;
	return sum;
}

/*
 * Decide about a problem; errmsg holds the reason.  A torn tail and, in
 * recover mode, a corruption end the scan (RS_OK, s->stop set); anything
 * else fails the open with errmsg naming file, offset and version.
 */
static int journal_scan_bad(struct journal_scan *s, const struct journal_bad *bad)
{
	struct journal_report *r = s->report;
	const char *name = s->list.segs[bad->seg].name;
	uint64_t keep = bad->whole ? 0 : bad->offset;

	assert(bad->code != RS_OK && bad->offset <= bad->len);
	assert(!bad->torn || bad->seg + 1 == s->list.n);
	s->stop = true;
	if (bad->torn) {
		r->torn = true;
		snprintf(r->torn_file, sizeof r->torn_file, "%s", name);
		r->torn_offset = keep;
		r->torn_bytes = bad->len - keep;
		return RS_OK;
	}
	snprintf(r->bad_file, sizeof r->bad_file, "%s", name);
	r->bad_offset = bad->offset;
	r->bad_after_version = s->last_version;
	rs_errmsg_wrapf(s->errmsg, "%s: offset %" PRIu64 " (after version %"
			PRIu64 ")", name, bad->offset, s->last_version);
	if (!s->opts->recover || bad->code != RS_ECORRUPT)
		return bad->code;
	r->recovered = true;
	r->recovered_bytes = bad->len - keep +
			     journal_scan_size_after(s, bad->seg);
	r->recovered_segments = s->list.n - bad->seg - (bad->whole ? 0 : 1);
	return RS_OK;
}

static int journal_scan_header(struct journal_scan *s, unsigned i,
			       const uint8_t *data, size_t len)
{
	struct journal_bad bad = {.seg = i, .len = len, .whole = true};
	uint64_t prev = 0;

	assert(i < s->list.n);
	if (len < JOURNAL_HEADER_SIZE || journal_all_zero(data, len)) {
		/* What a crash while creating a segment leaves behind. */
		bad.code = RS_ECORRUPT;
		bad.torn = i + 1 == s->list.n;
		rs_errmsg_printf(s->errmsg, "segment header %s (%zu bytes)",
				 len < JOURNAL_HEADER_SIZE ? "cut short"
							   : "all zero",
				 len);
		return journal_scan_bad(s, &bad);
	}
	bad.code = journal_header_decode(data, s->list.segs[i].seq, &prev,
					 &bad.offset, s->errmsg);
	if (bad.code == RS_OK && i > 0 && prev != s->last_version) {
		bad.code = RS_EGAP;
		bad.offset = JOURNAL_OFF_PREV;
		rs_errmsg_printf(s->errmsg,
				 "prev_version %" PRIu64 " does not follow %s, "
				 "which ends at version %" PRIu64
				 ": records are missing",
				 prev, s->list.segs[i - 1].name, s->last_version);
	}
	if (bad.code != RS_OK)
		return journal_scan_bad(s, &bad);
	if (i == 0)
		s->last_version = prev; /* the chain's base */
	assert(prev == s->last_version);
	return journal_seg_push(s, i, prev);
}

/* Does a valid record start anywhere in data[from, len)?  The cheap
 * filters (type, length, a version above the last good one) spare the
 * checksum at almost every offset. */
static bool journal_valid_record_after(const uint8_t *data, size_t len,
				       size_t from, uint64_t last_version)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct record_view v;

	assert(data != NULL);
	assert(from > 0 && from <= len);
	for (size_t p = from;
	     p + RECORD_HEADER_SIZE + JOURNAL_PAYLOAD_MIN <= len; p++) {
		const uint8_t *r = data + p;
		uint32_t plen = rs_get_u32(r + 4);

		if (r[8] != RECORD_BATCH && r[8] != RECORD_BATCH_LZ4)
			continue;
		if (plen < JOURNAL_PAYLOAD_MIN ||
		    plen > len - p - RECORD_HEADER_SIZE)
			continue;
		if (rs_get_u64(r + RECORD_HEADER_SIZE) <= last_version)
			continue;
		if (record_parse(r, len - p, &v, errmsg) == RS_OK)
			return true;
	}
	return false;
}

/*
 * Is the bad record at off the trace of an interrupted write?  Only if it
 * runs past the end of the file, or only zeros follow it; and, so that a
 * corrupted length field cannot pass for a torn write, only if no valid
 * record follows anywhere after it.
 */
static bool journal_tail_is_torn(const uint8_t *data, size_t len, size_t off,
				 uint64_t last_version)
{
	assert(off < len);
	assert(data != NULL);
	if (len - off >= RECORD_HEADER_SIZE) {
		uint64_t end = (uint64_t)off + RECORD_HEADER_SIZE +
			       rs_get_u32(data + off + 4);
		if (end <= len && !journal_all_zero(data + end, len - end))
			return false;
	}
	return !journal_valid_record_after(data, len, off + 1, last_version);
}

enum journal_verdict {
	JOURNAL_REC_OK,
	JOURNAL_REC_BAD_FRAME,   /* record_parse refused it: maybe torn */
	JOURNAL_REC_BAD_CONTENT, /* checksum good, content wrong: never torn */
};

static int journal_scan_replay(struct journal_scan *s)
{
	int rv;

	assert(s->batch.version == s->last_version);
	if (s->replay == NULL || s->batch.version <= s->from_version)
		return RS_OK;
	rv = s->replay(s->ctx, &s->batch);
	if (rv != RS_OK)
		rs_errmsg_printf(s->errmsg, "replay of version %" PRIu64
				 " failed: %s", s->batch.version,
				 rs_strerror(rv));
	assert(rv >= 0);
	return rv;
}

/* Verify, decode and replay the record at p.  Returns a hard error (the
 * replay's, RS_ENOMEM) or RS_OK with *verdict saying what the record is. */
static int journal_scan_record(struct journal_scan *s, const uint8_t *p,
			       size_t avail, size_t *total,
			       enum journal_verdict *verdict)
{
	struct record_view v;
	int rv;

	assert(avail > 0 && total != NULL);
	*verdict = JOURNAL_REC_BAD_FRAME;
	rv = record_parse(p, avail, &v, s->errmsg);
	if (rv == RS_ETORN)
		rs_errmsg_printf(s->errmsg, "record cut short by the end of "
				 "the file (%zu bytes left)", avail);
	if (rv != RS_OK)
		return RS_OK;
	*verdict = JOURNAL_REC_BAD_CONTENT;
	if (v.version <= s->last_version) {
		rs_errmsg_printf(s->errmsg, "version %" PRIu64
				 " does not increase", v.version);
		return RS_OK;
	}
	rv = record_decode_batch(&v, &s->batch, s->errmsg);
	if (rv == RS_ECORRUPT)
		return RS_OK;
	if (rv != RS_OK)
		return rv;
	assert(s->batch.version == v.version && v.total_len <= avail);
	*verdict = JOURNAL_REC_OK;
	*total = v.total_len;
	s->last_version = v.version;
	return journal_scan_replay(s);
}

static void journal_scan_count(struct journal_scan *s, size_t total)
{
	struct journal_report *r = s->report;
	struct journal_seg *seg = &s->j->segs[s->j->nsegs - 1];

	assert(s->last_version > seg->last_version);
	seg->size += total;
	seg->last_version = s->last_version;
	if (r->records++ == 0)
		r->first_version = s->last_version;
	r->last_version = s->last_version;
	r->bytes += total;
	assert(r->last_version >= r->first_version);
}

static int journal_scan_records(struct journal_scan *s, unsigned i,
				const uint8_t *data, size_t len)
{
	enum journal_verdict verdict = JOURNAL_REC_OK;
	struct journal_bad bad = {.seg = i, .len = len, .code = RS_ECORRUPT};
	size_t off = JOURNAL_HEADER_SIZE, total = 0;
	int rv;

	assert(s->j->nsegs > 0 && s->j->segs[s->j->nsegs - 1].seq ==
					   s->list.segs[i].seq);
	while (off < len) {
		rv = journal_scan_record(s, data + off, len - off, &total,
					 &verdict);
		if (rv != RS_OK)
			return rv;
		if (verdict != JOURNAL_REC_OK)
			break;
		off += total;
		journal_scan_count(s, total);
	}
	if (off == len)
		return RS_OK;
	assert(off < len);
	bad.offset = off;
	bad.torn = verdict == JOURNAL_REC_BAD_FRAME && i + 1 == s->list.n &&
		   journal_tail_is_torn(data, len, off, s->last_version);
	return journal_scan_bad(s, &bad);
}

static int journal_scan_segment(struct journal_scan *s, unsigned i)
{
	struct journal_segment_info *info = &s->list.segs[i];
	char path[PATH_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	int rv;

	assert(i < s->list.n && !s->stop);
	journal_path(path, s->j->dir, info->name);
	rv = fileio_read_all(path, &data, &len, s->errmsg);
	if (rv != RS_OK)
		return rv;
	info->size = len;
	rv = journal_scan_header(s, i, data, len);
	if (rv == RS_OK && !s->stop)
		rv = journal_scan_records(s, i, data, len);
	free(data);
	assert(rv != RS_OK || s->j->nsegs <= i + 1);
	return rv;
}

/* Delete list[j->nsegs, n), newest first, so that a crash part-way still
 * leaves an unbroken chain; then make the deletions durable. */
static int journal_scan_delete(struct journal_scan *s)
{
	struct journal *j = s->j;
	char path[PATH_MAX];
	unsigned k;
	int rv = RS_OK;

	assert(!s->opts->read_only);
	assert(j->nsegs <= s->list.n);
	for (k = s->list.n; k > j->nsegs && rv == RS_OK; k--) {
		journal_path(path, j->dir, s->list.segs[k - 1].name);
		rv = fileio_unlink(path, s->errmsg);
	}
	if (rv == RS_OK && s->list.n > j->nsegs)
		rv = fileio_fsync_dir(j->dir, s->errmsg);
	return rv;
}

/*
 * Open the last kept segment for appending, cut to its valid size, and
 * fsync it even if nothing was cut: a process that crashed under
 * JOURNAL_SYNC_NONE may have left records only in the page cache.  They
 * were just replayed, and a rotation under JOURNAL_SYNC_FSYNC does not sync
 * the old segment again, so they must be durable from here on.
 */
static int journal_scan_open_active(struct journal_scan *s)
{
	struct journal *j = s->j;
	const struct journal_seg *seg = &j->segs[j->nsegs - 1];
	const struct journal_segment_info *info = &s->list.segs[j->nsegs - 1];
	char path[PATH_MAX];
	int rv;

	assert(info->seq == seg->seq);
	assert(seg->size <= info->size);
	journal_path(path, j->dir, info->name);
	rv = fileio_open(path, O_RDWR, &j->fd, s->errmsg);
	if (rv == RS_OK && seg->size < info->size)
		rv = fileio_truncate(j->fd, (off_t)seg->size, s->errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync(j->fd, s->errmsg);
	if (rv != RS_OK)
		rs_errmsg_wrapf(s->errmsg, "open %s for appending (%" PRIu64
				" valid bytes)", info->name, seg->size);
	return rv;
}

/* No segment is left: start the chain at from_version, which the caller
 * vouches for (its checkpoint), so the chain stays honest about the past. */
static int journal_scan_create_first(struct journal_scan *s)
{
	struct journal *j = s->j;
	uint64_t seq = s->list.n > 0 ? s->list.segs[0].seq : 1;
	int rv;

	assert(j->nsegs == 0 && j->fd == -1);
	rv = journal_segs_reserve(j);
	if (rv == RS_OK)
		rv = journal_segment_create(j->dir, seq, s->from_version, &j->fd,
					    s->errmsg);
	if (rv != RS_OK)
		return rv;
	j->segs[j->nsegs++] = (struct journal_seg){
		.seq = seq,
		.prev_version = s->from_version,
		.last_version = s->from_version,
		.size = JOURNAL_HEADER_SIZE,
	};
	s->last_version = s->from_version;
	s->report->segments = j->nsegs;
	s->report->bytes += JOURNAL_HEADER_SIZE;
	assert(j->nsegs == 1 && j->fd >= 0);
	return RS_OK;
}

/* Carry out what the scan decided.  Read-only: nothing. */
static int journal_scan_apply(struct journal_scan *s)
{
	int rv;

	assert(s->j->fd == -1);
	if (s->opts->read_only)
		return RS_OK;
	rv = journal_scan_delete(s);
	if (rv == RS_OK && s->j->nsegs == 0)
		rv = journal_scan_create_first(s);
	else if (rv == RS_OK)
		rv = journal_scan_open_active(s);
	/* A writable journal always ends with an open active segment. */
	assert(rv != RS_OK || (s->j->nsegs > 0 && s->j->fd >= 0));
	return rv;
}

static int journal_alloc(struct journal **out, uv_loop_t *loop,
			 const struct journal_options *opts, char *errmsg)
{
	struct journal *j = calloc(1, sizeof *j);

	assert(opts != NULL && opts->dir != NULL);
	if (j == NULL || (j->dir = strdup(opts->dir)) == NULL) {
		free(j);
		rs_errmsg_printf(errmsg, "out of memory");
		return RS_ENOMEM;
	}
	/* Trailing slashes would only make paths differ from fileio's. */
	for (size_t n = strlen(j->dir); n > 1 && j->dir[n - 1] == '/'; n--)
		j->dir[n - 1] = '\0';
	j->loop = loop;
	j->segment_size_max = opts->segment_size_max > 0 ?
				      opts->segment_size_max :
				      JOURNAL_SEGMENT_SIZE_DEFAULT;
	j->sync = opts->sync;
	j->read_only = opts->read_only;
	j->state = JOURNAL_IDLE;
	j->fd = -1;
	journal_group_reset(&j->pending, j->pending.buf);
	journal_group_reset(&j->flight, j->flight.buf);
	assert(j->fd == -1 && j->nsegs == 0);
	*out = j;
	return RS_OK;
}

static int journal_scan_run(struct journal_scan *s)
{
	int rv = RS_OK;

	assert(s->j != NULL && s->report != NULL);
	if (!s->opts->read_only)
		rv = fileio_mkdir(s->j->dir, s->errmsg);
	if (rv == RS_OK)
		rv = journal_list_dir(s->j->dir, &s->list, s->errmsg);
	for (unsigned i = 0; rv == RS_OK && i < s->list.n && !s->stop; i++)
		rv = journal_scan_segment(s, i);
	if (rv == RS_OK)
		rv = journal_scan_apply(s);
	if (rv == RS_OK)
		s->j->last_version = s->last_version;
	assert(rv != RS_OK || s->report->segments == s->j->nsegs);
	return rv;
}

int journal_open(struct journal **out, uv_loop_t *loop,
		 const struct journal_options *opts, uint64_t from_version,
		 journal_replay_fn replay, void *ctx,
		 struct journal_report *report, char *errmsg)
{
	struct journal_scan s;
	struct journal *j = NULL;
	int rv;

	assert(out != NULL && opts != NULL);
	assert(report != NULL && errmsg != NULL);
	*out = NULL;
	memset(report, 0, sizeof *report);
	errmsg[0] = '\0';
	if (!journal_dir_ok(opts->dir, errmsg) ||
	    (loop == NULL && !opts->read_only)) {
		if (errmsg[0] == '\0')
			rs_errmsg_printf(errmsg, "a writable journal needs a loop");
		return RS_EINVAL;
	}
	rv = journal_alloc(&j, loop, opts, errmsg);
	if (rv != RS_OK)
		goto err;
	memset(&s, 0, sizeof s);
	s = (struct journal_scan){.j = j, .opts = opts,
				  .from_version = from_version,
				  .replay = replay, .ctx = ctx,
				  .report = report, .errmsg = errmsg};
	batch_init(&s.batch);
	rv = journal_scan_run(&s);
	batch_free(&s.batch);
	free(s.list.segs);
	if (rv != RS_OK)
		goto err_free;
	errmsg[0] = '\0'; /* a torn tail or a recovery is not an error */
	*out = j;
	return RS_OK;
err_free:
	if (j->fd >= 0)
		fileio_close(j->fd);
	journal_free(j);
err:
	rs_errmsg_wrapf(errmsg, "open journal %s", opts->dir);
	return rv;
}
