/*
 * journal: the journal object (see journal.h for the contract, and
 * journal_internal.h for how the module is split and who owns what).
 *
 * This file holds the object's life cycle: its allocation, the state
 * machine every change of state is checked against, the table of kept
 * segments, the accessors, retention and close.  Close waits for the group
 * in flight, writes what is still pending as one more group, and closes
 * the active segment in the thread pool, as closing can block.
 */
#include "storage/journal.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "storage/fileio.h"
#include "storage/journal_internal.h"

static const struct sm_state journal_states[JOURNAL_STATE__COUNT] = {
	[JOURNAL_IDLE] = {"idle", SM_TO(JOURNAL_WRITING) |
					  SM_TO(JOURNAL_CLOSING) |
					  SM_TO(JOURNAL_CLOSED)},
	[JOURNAL_WRITING] = {"writing", SM_TO(JOURNAL_IDLE)},
	[JOURNAL_CLOSING] = {"closing", SM_TO(JOURNAL_CLOSED)},
	[JOURNAL_CLOSED] = {"closed", 0},
};
static const struct sm_def journal_sm = SM_DEF("journal", journal_states);

int journal_segs_reserve(struct journal *j)
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

int journal_alloc(struct journal **out, uv_loop_t *loop,
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
	sm_init(&j->sm, &journal_sm, JOURNAL_IDLE);
	j->fd = -1;
	j->wb_seq = UINT64_MAX; /* no segment written back yet */
	journal_group_reset(&j->pending, j->pending.buf);
	journal_group_reset(&j->flight, j->flight.buf);
	assert(j->fd == -1 && j->nsegs == 0);
	*out = j;
	return RS_OK;
}

uint64_t journal_last_version(const struct journal *j)
{
	assert(j != NULL);
	return j->last_version;
}

uint64_t journal_writeback_bytes(const struct journal *j)
{
	assert(j != NULL);
	return j->writeback_bytes;
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
	assert(sm_state(&j->sm) != JOURNAL_CLOSED);
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

void journal_free(struct journal *j)
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

	assert(sm_state(&j->sm) == JOURNAL_CLOSING);
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
	sm_move(&j->sm, JOURNAL_CLOSED);
	journal_free(j);
	if (cb != NULL)
		cb(arg);
}

void journal_close_start(struct journal *j)
{
	int rv;

	assert(sm_state(&j->sm) == JOURNAL_IDLE);
	assert(j->close_requested);
	/* Every accepted append was written (the pending group is empty), and
	 * close_requested refuses new ones synchronously. */
	assert(j->pending.head == NULL);
	sm_move(&j->sm, JOURNAL_CLOSING);
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
	if (sm_state(&j->sm) == JOURNAL_IDLE)
		journal_close_start(j);
}

void journal_close_sync(struct journal *j)
{
	if (j == NULL)
		return;
	assert(sm_state(&j->sm) == JOURNAL_IDLE && !j->close_requested);
	assert(j->pending.head == NULL);
	sm_move(&j->sm, JOURNAL_CLOSED);
	if (j->fd >= 0)
		fileio_close(j->fd);
	journal_free(j);
}
