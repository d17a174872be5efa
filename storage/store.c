/*
 * store: see store.h.
 *
 * Checkpoints are cut without stopping the loop: the image is encoded in
 * chunks of STORE_CKPT_CHUNK_KEYS keys per idle-callback turn, reading at the
 * pinned checkpoint version (the MVCC window keeps it readable meanwhile),
 * then compressed and written on the thread pool.
 */
#include "storage/store.h"

#include <assert.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/fileio.h"

#define STORE_WINDOW_DEFAULT 5000000ull
#define STORE_SEGMENTS_KEEP_DEFAULT 2u
#define STORE_CKPT_CHUNK_KEYS 4096u
/* Pruning visits up to 200,000 keys a second, in ticks of at most
 * STORE_PRUNE_TICK_KEYS keys and STORE_PRUNE_TICK_NS of the loop.  (One
 * step of 20,000 keys every 100 ms held a loaded node's loop 2-4 ms at a
 * time: a commit gap of its own, seen with perf in issue 13's follower
 * benchmark.) */
#define STORE_PRUNE_INTERVAL_MS 10u
#define STORE_PRUNE_TICK_KEYS 2048u
#define STORE_PRUNE_CHUNK_KEYS 256u
#define STORE_PRUNE_TICK_NS 250000u
_Static_assert(STORE_PRUNE_TICK_KEYS % STORE_PRUNE_CHUNK_KEYS == 0,
	       "a prune tick is whole chunks");

struct store_ckpt {
	bool running;
	uint64_t version;
	uint64_t epoch;
	uint64_t key_count;
	struct rs_buf image;
	struct rs_buf resume_key; /* last key encoded, to resume after */
	bool started;
	uv_idle_t idle;
	uv_work_t work;
	int status;
	uint64_t oldest_kept;
	char errmsg[RS_ERRMSG_SIZE];
	store_checkpoint_cb cb;
	void *arg;
};

struct store {
	uv_loop_t *loop;
	struct store_options opts;
	char journal_dir[PATH_MAX];
	char ckpt_dir[PATH_MAX];
	struct journal *journal;
	struct mvcc *mvcc;
	uint64_t applied_version;
	uint64_t applied_epoch;
	uint64_t accepted_version;
	unsigned inflight; /* batches in the journal queue */
	int failed; /* 0, or the error that stopped the store */
	char errmsg[RS_ERRMSG_SIZE];
	uv_timer_t prune_timer;
	struct store_ckpt ckpt;
	/* Serializes checkpoint-directory writers: the thread-pool checkpoint
	 * and a snapshot restore on the loop (rare: a lagging replica). */
	pthread_mutex_t ckpt_dir_lock;
	unsigned handles_open; /* closing: handles still to close */
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

/* ---- open ---- */

static int store_replay(void *ctx, const struct batch *b)
{
	struct store *s = ctx;
	int rv = mvcc_apply(s->mvcc, b);
	if (rv != RS_OK)
		return rv;
	s->applied_version = b->version;
	s->applied_epoch = b->epoch;
	return RS_OK;
}

static int store_load_checkpoint(struct store *s,
				 struct store_open_report *report,
				 char *errmsg)
{
	struct checkpoint_info info;
	struct rs_buf image;
	uint64_t keys;
	int rv;

	rs_buf_init(&image);
	rv = checkpoint_load_latest(s->ckpt_dir, &info, &image,
				    &report->checkpoint, errmsg);
	if (rv == RS_ENOTFOUND) {
		rs_buf_free(&image);
		return RS_OK;
	}
	if (rv == RS_OK)
		rv = mvcc_image_load(s->mvcc, info.version, image.data, image.len,
				     &keys, errmsg);
	rs_buf_free(&image);
	if (rv != RS_OK)
		return rv;
	report->checkpoint_used = true;
	report->checkpoint_version = info.version;
	s->applied_version = info.version;
	s->applied_epoch = info.epoch;
	return RS_OK;
}

/* The journal must reach back to the checkpoint: its first segment must
 * start at or before the checkpoint version. */
static int store_check_chain(struct store *s, uint64_t from, char *errmsg)
{
	struct journal_segment_info *segs = NULL;
	unsigned n = 0;
	int rv = journal_list_segments(s->journal_dir, &segs, &n, errmsg);

	if (rv != RS_OK)
		return rv;
	if (n > 0 && segs[0].prev_version > from) {
		rs_errmsg_printf(errmsg,
				 "journal %s starts after version %llu (segment %s) but the "
				 "newest usable checkpoint is at version %llu: records between "
				 "them are missing",
				 s->journal_dir,
				 (unsigned long long)segs[0].prev_version,
				 segs[0].name, (unsigned long long)from);
		rv = RS_EGAP;
	}
	free(segs);
	return rv;
}

static int store_open_dirs(struct store *s, const char *dir, char *errmsg)
{
	int rv = fileio_mkdir(dir, errmsg);
	if (rv == RS_OK)
		rv = fileio_mkdir(s->journal_dir, errmsg);
	if (rv == RS_OK)
		rv = fileio_mkdir(s->ckpt_dir, errmsg);
	return rv;
}

static void store_apply_defaults(struct store_options *o)
{
	if (o->segments_keep == 0)
		o->segments_keep = STORE_SEGMENTS_KEEP_DEFAULT;
	if (o->checkpoints_keep == 0)
		o->checkpoints_keep = CHECKPOINT_KEEP_DEFAULT;
	if (o->window_versions == 0)
		o->window_versions = STORE_WINDOW_DEFAULT;
	if (o->segment_size_max == 0)
		o->segment_size_max = JOURNAL_SEGMENT_SIZE_DEFAULT;
}

static void store_prune_tick(uv_timer_t *t)
{
	struct store *s = t->data;
	uint64_t start = uv_hrtime();
	unsigned visited = 0;

	do {
		mvcc_prune_step(s->mvcc, STORE_PRUNE_CHUNK_KEYS);
		visited += STORE_PRUNE_CHUNK_KEYS;
	} while (visited < STORE_PRUNE_TICK_KEYS &&
		 uv_hrtime() - start < STORE_PRUNE_TICK_NS);
	assert(visited <= STORE_PRUNE_TICK_KEYS);
}

int store_open(struct store **out, uv_loop_t *loop,
	       const struct store_options *opts,
	       struct store_open_report *report, char *errmsg)
{
	struct journal_options jo;
	struct store *s;
	int rv;

	assert(loop != NULL && opts != NULL && opts->dir != NULL);
	memset(report, 0, sizeof *report);
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return RS_ENOMEM;
	s->loop = loop;
	s->opts = *opts;
	pthread_mutex_init(&s->ckpt_dir_lock, NULL);
	store_apply_defaults(&s->opts);
	snprintf(s->journal_dir, sizeof s->journal_dir, "%s/journal", opts->dir);
	snprintf(s->ckpt_dir, sizeof s->ckpt_dir, "%s/checkpoints", opts->dir);
	s->mvcc = mvcc_create(s->opts.window_versions);
	rv = store_open_dirs(s, opts->dir, errmsg);
	if (rv == RS_OK)
		rv = store_load_checkpoint(s, report, errmsg);
	if (rv == RS_OK)
		rv = store_check_chain(s, s->applied_version, errmsg);
	if (rv != RS_OK)
		goto err;
	jo = (struct journal_options){.dir = s->journal_dir,
				      .segment_size_max = s->opts.segment_size_max,
				      .sync = s->opts.sync,
				      .recover = s->opts.recover};
	rv = journal_open(&s->journal, loop, &jo, s->applied_version,
			  store_replay, s, &report->journal, errmsg);
	if (rv != RS_OK)
		goto err;
	report->replayed = report->journal.records;
	s->accepted_version = s->applied_version;
	if (journal_last_version(s->journal) > s->accepted_version)
		s->accepted_version = journal_last_version(s->journal);
	report->applied_version = s->applied_version;
	uv_timer_init(loop, &s->prune_timer);
	s->prune_timer.data = s;
	uv_timer_start(&s->prune_timer, store_prune_tick,
		       STORE_PRUNE_INTERVAL_MS, STORE_PRUNE_INTERVAL_MS);
	uv_unref((uv_handle_t *)&s->prune_timer);
	*out = s;
	return RS_OK;
err:
	rs_errmsg_wrapf(errmsg, "open store %s", opts->dir);
	mvcc_destroy(s->mvcc);
	free(s);
	return rv;
}

/* ---- apply ---- */

static void store_journal_done(struct journal_append_req *jreq, int status)
{
	struct store_apply_req *req = jreq->data;
	struct store *s = req->store;
	int rv;

	if (status == RS_OK && s->failed == 0 && !s->opts.apply_on_accept) {
		rv = mvcc_apply(s->mvcc, req->batch);
		/* The journal already ordered versions: a refusal here is a
		 * bug, not an input error. */
		assert(rv == RS_OK);
		(void)rv;
		s->applied_version = req->batch->version;
		s->applied_epoch = req->batch->epoch;
	} else if (status != RS_OK && s->failed == 0) {
		s->failed = status;
		rs_errmsg_printf(s->errmsg,
				 "journal %s failed at version %llu: %s; the store "
				 "refuses writes until it is reopened",
				 s->journal_dir,
				 (unsigned long long)req->batch->version,
				 rs_strerror(status));
	}
	assert(s->inflight > 0);
	s->inflight--;
	req->cb(req, status != RS_OK ? status : (s->failed ? RS_EFAILED : 0));
}

/* apply_on_accept: the index moves with the accepted version. */
static void store_apply_now(struct store *s, const struct batch *b)
{
	int rv = mvcc_apply(s->mvcc, b);
	assert(rv == RS_OK);
	(void)rv;
	s->applied_version = b->version;
	s->applied_epoch = b->epoch;
}

int store_apply(struct store *s, struct store_apply_req *req,
		struct batch *b, store_apply_cb cb)
{
	int rv;

	assert(req != NULL && b != NULL && cb != NULL);
	if (s->failed != 0 || s->closing)
		return s->closing ? RS_ECLOSED : RS_EFAILED;
	if (b->version <= s->accepted_version) {
		rs_errmsg_printf(s->errmsg,
				 "batch version %llu is not above the last accepted %llu",
				 (unsigned long long)b->version,
				 (unsigned long long)s->accepted_version);
		return RS_EVERSION;
	}
	if (b->body.len > 0) {
		rv = batch_body_validate(b->body.data, b->body.len, s->errmsg);
		if (rv != RS_OK)
			return rv;
	}
	req->store = s;
	req->batch = b;
	req->cb = cb;
	req->jreq.data = req;
	rv = journal_append(s->journal, &req->jreq, b, store_journal_done);
	if (rv != RS_OK) {
		rs_errmsg_printf(s->errmsg, "append version %llu to journal: %s",
				 (unsigned long long)b->version, rs_strerror(rv));
		return rv;
	}
	s->accepted_version = b->version;
	s->inflight++;
	if (s->opts.apply_on_accept)
		store_apply_now(s, b);
	assert(s->accepted_version >= s->applied_version);
	return RS_OK;
}

/* ---- reads and accessors ---- */

int store_get(const struct store *s, const void *key, size_t key_len,
	      uint64_t version, const uint8_t **val, uint32_t *val_len,
	      uint64_t *found_version)
{
	return mvcc_get(s->mvcc, key, key_len, version, val, val_len,
			found_version);
}

int store_range(const struct store *s, const void *begin, size_t begin_len,
		const void *end, size_t end_len, uint64_t version,
		size_t limit, mvcc_range_fn fn, void *ctx, bool *more)
{
	return mvcc_range(s->mvcc, begin, begin_len, end, end_len, version,
			  limit, fn, ctx, more);
}

uint64_t store_applied_version(const struct store *s)
{
	return s->applied_version;
}

uint64_t store_applied_epoch(const struct store *s)
{
	return s->applied_epoch;
}

uint64_t store_accepted_version(const struct store *s)
{
	return s->accepted_version;
}

struct mvcc *store_index(struct store *s)
{
	return s->mvcc;
}

const char *store_errmsg(const struct store *s)
{
	return s->failed ? s->errmsg : "";
}

static uint64_t store_dir_bytes(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	uint64_t total = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) <
			    (int)sizeof path &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

uint64_t store_disk_bytes(const struct store *s)
{
	return store_dir_bytes(s->journal_dir) + store_dir_bytes(s->ckpt_dir);
}

/* ---- checkpoints ---- */

static int store_ckpt_add(void *ctx, const uint8_t *key, uint32_t key_len,
			  const uint8_t *val, uint32_t val_len,
			  uint64_t found_version)
{
	struct store_ckpt *c = ctx;
	int rv = rs_buf_reserve(&c->image, 8 + (size_t)key_len + val_len);

	(void)found_version;
	if (rv != RS_OK)
		return rv;
	rs_buf_put_u32(&c->image, key_len);
	rs_buf_append(&c->image, key, key_len);
	rs_buf_put_u32(&c->image, val_len);
	rs_buf_append(&c->image, val, val_len);
	c->key_count++;
	c->resume_key.len = 0;
	return rs_buf_append(&c->resume_key, key, key_len);
}

static void store_ckpt_finish(struct store *s, int status)
{
	struct store_ckpt *c = &s->ckpt;
	store_checkpoint_cb cb = c->cb;

	assert(c->running);
	rs_buf_free(&c->image);
	rs_buf_free(&c->resume_key);
	c->running = false;
	if (cb != NULL)
		cb(c->arg, status, c->version);
}

static void store_ckpt_work(uv_work_t *w)
{
	struct store *s = w->data;
	struct store_ckpt *c = &s->ckpt;

	pthread_mutex_lock(&s->ckpt_dir_lock);
	c->status = checkpoint_write(s->ckpt_dir, c->version, c->epoch,
				     c->key_count, c->image.data, c->image.len,
				     c->errmsg);
	if (c->status == RS_OK)
		c->status = checkpoint_prune(s->ckpt_dir, s->opts.checkpoints_keep,
					     &c->oldest_kept, c->errmsg);
	pthread_mutex_unlock(&s->ckpt_dir_lock);
}

static void store_close_continue(struct store *s);

static void store_ckpt_after_work(uv_work_t *w, int uv_status)
{
	struct store *s = w->data;
	struct store_ckpt *c = &s->ckpt;
	int status = uv_status != 0 ? RS_ECLOSED : c->status;

	/* Segments are only dropped once the oldest kept checkpoint covers
	 * them, so falling back to any kept checkpoint still replays. */
	if (status == RS_OK && c->oldest_kept > 0 && s->failed == 0)
		status = journal_retain(s->journal, c->oldest_kept,
					s->opts.segments_keep, c->errmsg);
	store_ckpt_finish(s, status);
	if (s->closing)
		store_close_continue(s);
}

static void store_ckpt_step(uv_idle_t *idle)
{
	struct store *s = idle->data;
	struct store_ckpt *c = &s->ckpt;
	bool more = false;
	int rv;

	if (c->started)
		rv = rs_buf_put_u8(&c->resume_key, 0); /* first key after it */
	else
		rv = RS_OK;
	if (rv == RS_OK)
		rv = mvcc_range(s->mvcc, c->resume_key.data, c->resume_key.len,
				NULL, 0, c->version, STORE_CKPT_CHUNK_KEYS,
				store_ckpt_add, c, &more);
	c->started = true;
	if (rv == RS_OK && more)
		return;
	uv_idle_stop(idle);
	if (rv != RS_OK) {
		rs_errmsg_printf(c->errmsg, "encode checkpoint at version %llu: %s",
				 (unsigned long long)c->version, rs_strerror(rv));
		store_ckpt_finish(s, rv);
		return;
	}
	c->work.data = s;
	uv_queue_work(s->loop, &c->work, store_ckpt_work, store_ckpt_after_work);
}

int store_checkpoint(struct store *s, store_checkpoint_cb cb, void *arg)
{
	struct store_ckpt *c = &s->ckpt;

	if (s->closing)
		return RS_ECLOSED;
	if (c->running)
		return RS_EEXIST;
	c->running = true;
	c->started = false;
	c->version = s->applied_version;
	c->epoch = s->applied_epoch;
	c->key_count = 0;
	c->oldest_kept = 0;
	c->status = RS_OK;
	c->errmsg[0] = '\0';
	c->cb = cb;
	c->arg = arg;
	rs_buf_init(&c->image);
	rs_buf_init(&c->resume_key);
	if (c->idle.loop == NULL) { /* first checkpoint: the handle is lazy */
		uv_idle_init(s->loop, &c->idle);
		c->idle.data = s;
	}
	uv_idle_start(&c->idle, store_ckpt_step);
	return RS_OK;
}

const char *store_checkpoint_errmsg(const struct store *s)
{
	return s->ckpt.errmsg;
}

int store_restore(struct store *s, uint64_t version, uint64_t epoch,
		  const uint8_t *image, size_t len, char *errmsg)
{
	uint64_t keys = 0, oldest = 0;
	struct mvcc *fresh;
	int rv;

	/* With apply_on_accept, in-flight journal writes no longer touch the
	 * index, so they may finish after the swap. */
	bool busy = s->inflight > 0 && !s->opts.apply_on_accept;

	if (s->failed || busy || version <= s->accepted_version) {
		rs_errmsg_printf(errmsg,
				 "restore to version %llu refused (accepted %llu, "
				 "%u in flight%s)",
				 (unsigned long long)version,
				 (unsigned long long)s->accepted_version,
				 s->inflight, s->failed ? ", store failed" : "");
		return s->failed ? RS_EFAILED : RS_EVERSION;
	}
	fresh = mvcc_create(s->opts.window_versions);
	rv = mvcc_image_load(fresh, version, image, len, &keys, errmsg);
	pthread_mutex_lock(&s->ckpt_dir_lock);
	if (rv == RS_OK)
		rv = checkpoint_write(s->ckpt_dir, version, epoch, keys, image,
				      len, errmsg);
	if (rv == RS_OK)
		rv = checkpoint_prune(s->ckpt_dir, s->opts.checkpoints_keep,
				      &oldest, errmsg);
	pthread_mutex_unlock(&s->ckpt_dir_lock);
	if (rv != RS_OK) {
		mvcc_destroy(fresh);
		rs_errmsg_wrapf(errmsg, "restore store %s to version %llu",
				s->opts.dir, (unsigned long long)version);
		return rv;
	}
	if (s->ckpt.running && uv_is_active((uv_handle_t *)&s->ckpt.idle)) {
		/* A checkpoint still reading the old index: abandon it. */
		uv_idle_stop(&s->ckpt.idle);
		rs_errmsg_printf(s->ckpt.errmsg, "superseded by a restore");
		store_ckpt_finish(s, RS_ECLOSED);
	}
	mvcc_destroy(s->mvcc);
	s->mvcc = fresh;
	s->applied_version = s->accepted_version = version;
	s->applied_epoch = epoch;
	return RS_OK;
}

/* ---- close ---- */

static void store_journal_closed(void *arg)
{
	struct store *s = arg;
	void (*cb)(void *) = s->close_cb;
	void *cb_arg = s->close_arg;

	mvcc_destroy(s->mvcc);
	pthread_mutex_destroy(&s->ckpt_dir_lock);
	free(s);
	if (cb != NULL)
		cb(cb_arg);
}

static void store_handle_closed(uv_handle_t *h)
{
	struct store *s = h->data;
	assert(s->handles_open > 0);
	if (--s->handles_open == 0)
		journal_close(s->journal, store_journal_closed, s);
}

/* Runs once nothing of a checkpoint is on the thread pool. */
static void store_close_continue(struct store *s)
{
	struct store_ckpt *c = &s->ckpt;

	assert(s->closing);
	if (c->running && uv_is_active((uv_handle_t *)&c->idle)) {
		uv_idle_stop(&c->idle);
		rs_errmsg_printf(c->errmsg, "store closed");
		store_ckpt_finish(s, RS_ECLOSED);
	}
	if (c->running)
		return; /* the work's after-callback calls us again */
	s->handles_open = 1;
	uv_close((uv_handle_t *)&s->prune_timer, store_handle_closed);
	if (c->idle.loop != NULL) {
		s->handles_open++;
		uv_close((uv_handle_t *)&c->idle, store_handle_closed);
	}
}

void store_close(struct store *s, void (*cb)(void *arg), void *arg)
{
	assert(!s->closing);
	s->closing = true;
	s->close_cb = cb;
	s->close_arg = arg;
	store_close_continue(s);
}
