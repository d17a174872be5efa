/*
 * journal append: the write path, group commit (journal.h describes it).
 *
 * journal_append encodes the batch at once into the pending group, on the
 * loop.  One group at a time is in the thread pool (j->flight): the worker
 * rotates first if the group would push the active segment past its limit,
 * then writes the whole group with one pwrite and, under JOURNAL_SYNC_FSYNC,
 * one fsync (under JOURNAL_SYNC_NONE, a start of write-back every
 * JOURNAL_WRITEBACK_BYTES instead).  Back on the loop the after-work callback takes in what the
 * worker did and completes the requests in order; meanwhile new requests
 * have formed the next group.  The first failure makes the journal fail
 * for good.  Why each fsync is where it is: see journal_rotate.
 */
#include "storage/journal.h"

#include <assert.h>
#include <string.h>

#include "raftstore/lib/buf.h"
#include "storage/fileio.h"
#include "storage/journal_internal.h"
#include "storage/record.h"

/* ---- the write path: group commit ---- */

static void journal_work_cb(uv_work_t *w);
static void journal_after_work_cb(uv_work_t *w, int status);

/* An empty group that keeps buf's allocation. */
void journal_group_reset(struct journal_group *g, struct rs_buf buf)
{
	memset(g, 0, sizeof *g);
	buf.len = 0;
	g->buf = buf;
	g->fd = -1;
	g->new_fd = -1;
}

/* Complete every request of g, in order.  A callback may append (to the
 * pending group, never to g) or close the journal. */
void journal_group_complete(struct journal_group *g, int status)
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

	/* A close may be requested: it waits for this group (journal_close). */
	assert(sm_state(&j->sm) == JOURNAL_IDLE);
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
	sm_move(&j->sm, JOURNAL_WRITING);
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

/* Worker, JOURNAL_SYNC_NONE: the group was written at [start, end) of
 * segment seq; once JOURNAL_WRITEBACK_BYTES of the segment have been
 * written since the last start, start their write-back (no wait).  A
 * failure is only a lost hint: the rotation's fsync reports any write
 * error. */
static void journal_start_writeback(struct journal *j, struct journal_group *g,
				    int fd, uint64_t seq, uint64_t start,
				    uint64_t end)
{
	char ignored[RS_ERRMSG_SIZE];

	if (j->wb_seq != seq) {
		j->wb_seq = seq;
		j->wb_off = start;
	}
	if (end - j->wb_off < JOURNAL_WRITEBACK_BYTES)
		return;
	if (fileio_start_writeback(fd, (off_t)j->wb_off,
				   (off_t)(end - j->wb_off), ignored) == RS_OK)
		g->writeback_bytes += end - j->wb_off;
	j->wb_off = end;
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
	else if (g->status == RS_OK)
		journal_start_writeback(j, g, fd, seq, off, off + g->buf.len);
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
	j->writeback_bytes += g->writeback_bytes;
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
	assert(sm_state(&j->sm) == JOURNAL_WRITING);
	(void)status;
	journal_group_account(j, g);
	/* Still WRITING during the callbacks, so that their appends queue
	 * behind the ones already pending instead of jumping ahead. */
	journal_group_complete(g, g->status);
	journal_group_reset(g, g->buf);
	sm_move(&j->sm, JOURNAL_IDLE);
	/* A close waits for every append accepted before it: the store's
	 * owner (the Raft state machine) treats a lost write as fatal. */
	if (j->pending.head != NULL)
		journal_group_start(j);
	else if (j->close_requested)
		journal_close_start(j);
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
	assert(sm_state(&j->sm) != JOURNAL_CLOSED);
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
	if (sm_state(&j->sm) == JOURNAL_IDLE)
		journal_group_start(j);
	return RS_OK;
}

