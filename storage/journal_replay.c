/*
 * journal open: verify, replay, repair (journal_open in journal.h).
 *
 * Open reads each segment whole, verifies and replays it, and only then
 * decides what to cut (a torn tail; in recover mode everything from the first
 * bad record).  Files are changed last and newest first, so that a crash in
 * the middle of an open leaves a journal the next open repairs the same way.
 */
#include "storage/journal.h"

#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "storage/fileio.h"
#include "storage/journal_internal.h"
#include "storage/record.h"

/* The smallest payload record_parse accepts: version, epoch, body count. */
#define JOURNAL_PAYLOAD_MIN 20u

static bool journal_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
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
