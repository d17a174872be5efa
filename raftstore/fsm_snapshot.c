/*
 * fsm_snapshot: Raft snapshots encoded in steps (fsm.h).
 *
 * c-raft 0.15 (raft_fsm version 3) takes a snapshot in three calls:
 * `snapshot` on the loop, `snapshot_async` on a libuv worker thread, and
 * `snapshot_finalize` on the loop once the snapshot is written.  Encoding
 * the whole MVCC image inside `snapshot` stalled the loop, and with it
 * every commit of the node, for 80-470 ms per snapshot at 50-200 MB of
 * state; the index is the loop's alone (mvcc.h), so the worker cannot
 * read it either.  So:
 *
 *   snapshot        fixes the version (the store's accepted version, which
 *                   is what c-raft's snapshot index has applied) and the
 *                   epoch, and starts an idle handle;
 *   idle            encodes at that version, about a millisecond of keys
 *                   per loop turn, while the loop goes on applying batches
 *                   (mvcc_image_encode_step); then marks the job done;
 *   snapshot_async  waits for done on the worker, then checksums the image
 *                   and writes the header in front of it (no copy);
 *   finalize        frees the image: a large one on a worker, since
 *                   giving 70-200 MB back to the kernel (munmap) held
 *                   the leader's loop, and every commit, about 6 ms per
 *                   snapshot (`perf record -a` over the largest commit
 *                   gaps of a steady put run).
 *
 * The image is byte for byte what mvcc_image_encode gives at that version.
 * If the version leaves the store's read window before the encoding ends
 * (a 5 s window, a very large state on a very busy loop), the snapshot
 * fails with RAFT_BUSY and c-raft takes another at its next applied entry.
 */
#include "raftstore/fsm.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/freelater.h"
#include "raftstore/raftcall.h"
#include "raftstore/raftinfo.h"
#include "storage/mvcc.h"

/* An image this large or larger is freed on a worker (finalize, above). */
#define FSM_SNAP_FREE_OFF_LOOP (1u << 20)

/* Loop time each step may take, and keys per mvcc_image_encode_step. */
#define FSM_SNAP_STEP_NS 1000000u
#define FSM_SNAP_PAGE 256u

static void fsm_snap_finish(struct fsm *f, int status)
{
	uv_idle_stop(&f->snap.idle);
	pthread_mutex_lock(&f->snap.mu);
	f->snap.status = status;
	f->snap.done = true;
	pthread_cond_signal(&f->snap.cv);
	pthread_mutex_unlock(&f->snap.mu);
}

static void fsm_snap_step(uv_idle_t *idle)
{
	struct fsm *f = idle->data;
	struct mvcc *m = store_index(f->store);
	uint64_t t0 = uv_hrtime();
	bool done = false;
	int rv;

	assert(f->snap.running && !f->snap.done);
	do {
		rv = mvcc_image_encode_step(m, f->snap.version, &f->snap.cursor,
					    FSM_SNAP_PAGE, &f->snap.img, &done);
	} while (rv == RS_OK && !done && uv_hrtime() - t0 < FSM_SNAP_STEP_NS);
	f->snap.steps++;
	if (rv == RS_OK && !done)
		return;
	if (rv != RS_OK)
		log_warn("fsm.snapshot_failed", "version=%llu error=\"%s\" "
			 "action=\"c-raft takes another later\"",
			 (unsigned long long)f->snap.version, rs_strerror(rv));
	else
		log_info("fsm.snapshot_encoded", "version=%llu bytes=%zu "
			 "steps=%llu duration_ms=%llu",
			 (unsigned long long)f->snap.version, f->snap.img.len,
			 (unsigned long long)f->snap.steps,
			 (unsigned long long)((uv_hrtime() - f->snap.start_ns) /
					      1000000u));
	fsm_snap_finish(f, rv);
}

/* c-raft's `snapshot`, on the loop: start the job. */
static int fsm_snap_begin(struct raft_fsm *rf, struct raft_buffer *bufs[],
			  unsigned *n_bufs)
{
	struct fsm *f = rf->data;
	static const uint8_t header_room[FSM_SNAPSHOT_HEADER];

	raftcall_cb_enter("fsm snapshot");
	*bufs = NULL;
	*n_bufs = 0;
	if (f->snap.running) { /* c-raft takes one at a time; be safe */
		raftcall_cb_leave();
		return RAFT_BUSY;
	}
	f->snap.version = store_accepted_version(f->store);
	f->snap.epoch = store_applied_epoch(f->store);
	rs_buf_init(&f->snap.img);
	rs_buf_init(&f->snap.cursor);
	/* Room for about the last image and an eighth more: a large buffer
	 * is not copied as it grows (and realloc moves big ones by mremap). */
	if (rs_buf_reserve(&f->snap.img, FSM_SNAPSHOT_HEADER +
					 f->snap.last_bytes +
					 f->snap.last_bytes / 8) != RS_OK ||
	    rs_buf_append(&f->snap.img, header_room, sizeof header_room) !=
		    RS_OK) {
		rs_buf_free(&f->snap.img);
		raftcall_cb_leave();
		return RAFT_NOMEM;
	}
	f->snap.running = true;
	f->snap.done = false;
	f->snap.status = RS_OK;
	f->snap.steps = 0;
	f->snap.start_ns = uv_hrtime();
	if (f->by_bytes.raft != NULL) {
		f->snap.log_snapshot_before =
			raftinfo_log_base(f->by_bytes.raft).snapshot_index;
		log_info("fsm.snapshot_begin", "version=%llu log_bytes=%llu "
			 "budget=%llu state_bytes=%llu",
			 (unsigned long long)f->snap.version,
			 (unsigned long long)f->by_bytes.policy.log_bytes,
			 (unsigned long long)snappolicy_budget(
				 &f->by_bytes.policy),
			 (unsigned long long)f->by_bytes.policy.state_bytes);
	}
	fsm_snapshot_policy_begun(f);
	uv_idle_start(&f->snap.idle, fsm_snap_step);
	raftcall_cb_leave();
	return 0;
}

/* c-raft's `snapshot_async`, on a worker thread: wait for the loop's
 * encoding, then make the buffer.  Reads only the image, which the loop
 * no longer touches once done is set. */
static int fsm_snap_wait(struct raft_fsm *rf, struct raft_buffer *bufs[],
			 unsigned *n_bufs)
{
	struct fsm *f = rf->data;
	uint8_t *p;
	int status;

	pthread_mutex_lock(&f->snap.mu);
	while (!f->snap.done)
		pthread_cond_wait(&f->snap.cv, &f->snap.mu);
	status = f->snap.status;
	pthread_mutex_unlock(&f->snap.mu);
	if (status != RS_OK)
		return status == RS_ENOMEM ? RAFT_NOMEM : RAFT_BUSY;
	p = f->snap.img.data;
	fsm_snapshot_header(p, f->snap.img.len - FSM_SNAPSHOT_HEADER,
			    f->snap.version, f->snap.epoch);
	f->snap.buf.base = p;
	f->snap.buf.len = f->snap.img.len;
	*bufs = &f->snap.buf;
	*n_bufs = 1;
	return 0;
}

/* Free the image, a large one on a libuv worker. */
static void fsm_snap_free_img(struct fsm *f)
{
	void **img;

	if (f->snap.img.cap >= FSM_SNAP_FREE_OFF_LOOP &&
	    (img = malloc(sizeof *img)) != NULL) {
		img[0] = f->snap.img.data;
		if (freelater_queue(f->snap.idle.loop, img, 1) == RS_OK) {
			rs_buf_init(&f->snap.img);
			f->snap.frees_off_loop++;
			return;
		}
		free(img);
	}
	rs_buf_free(&f->snap.img);
}

/* Log how a snapshot ended: c-raft 0.15 calls finalize after it compacted
 * its log behind a stored snapshot, and also when the snapshot or its put
 * failed; the log's snapshot index tells which. */
static void fsm_snap_log_end(struct fsm *f)
{
	struct raftinfo_log_base b;

	if (f->by_bytes.raft == NULL || !f->snap.running)
		return;
	b = raftinfo_log_base(f->by_bytes.raft);
	log_info("fsm.snapshot_done", "version=%llu outcome=%s "
		 "log_snapshot_index=%llu log_offset=%llu",
		 (unsigned long long)f->snap.version,
		 f->snap.status == RS_OK &&
				 b.snapshot_index > f->snap.log_snapshot_before
			 ? "stored"
			 : "abandoned",
		 (unsigned long long)b.snapshot_index,
		 (unsigned long long)b.offset);
}

/* c-raft's `snapshot_finalize`, on the loop: the snapshot was written (or
 * abandoned).  An encoding still under way (c-raft gave up before its
 * worker ran) is stopped first. */
static int fsm_snap_end(struct raft_fsm *rf, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	struct fsm *f = rf->data;

	if (f->snap.running && !f->snap.done)
		fsm_snap_finish(f, RS_ESHUTDOWN);
	fsm_snap_log_end(f);
	if (f->snap.status == RS_OK && f->snap.running) {
		f->snap.last_bytes = f->snap.img.len - FSM_SNAPSHOT_HEADER;
		f->snapshots++;
		fsm_snapshot_policy_ended(f, true, f->snap.last_bytes);
	} else if (f->snap.running) {
		fsm_snapshot_policy_ended(f, false, 0);
	}
	fsm_snap_free_img(f);
	rs_buf_free(&f->snap.cursor);
	f->snap.running = false;
	f->snap.done = false;
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

int fsm_snapshots_in_steps(struct fsm *f, uv_loop_t *loop)
{
	assert(f != NULL && loop != NULL && !f->snap.enabled);
	if (pthread_mutex_init(&f->snap.mu, NULL) != 0)
		return RS_ENOMEM;
	if (pthread_cond_init(&f->snap.cv, NULL) != 0) {
		pthread_mutex_destroy(&f->snap.mu);
		return RS_ENOMEM;
	}
	uv_idle_init(loop, &f->snap.idle);
	f->snap.idle.data = f;
	f->snap.enabled = true;
	f->raft.version = 3;
	f->raft.snapshot = fsm_snap_begin;
	f->raft.snapshot_async = fsm_snap_wait;
	f->raft.snapshot_finalize = fsm_snap_end;
	return RS_OK;
}

static void fsm_snap_idle_closed(uv_handle_t *h)
{
	(void)h;
}

void fsm_close(struct fsm *f)
{
	if (!f->snap.enabled)
		return;
	if (f->snap.running) { /* c-raft closed without finalizing it */
		uv_idle_stop(&f->snap.idle);
		rs_buf_free(&f->snap.img);
		rs_buf_free(&f->snap.cursor);
		f->snap.running = false;
	}
	uv_close((uv_handle_t *)&f->snap.idle, fsm_snap_idle_closed);
	pthread_cond_destroy(&f->snap.cv);
	pthread_mutex_destroy(&f->snap.mu);
	f->snap.enabled = false;
}
