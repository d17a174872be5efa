/* fsm: see fsm.h. */
#include "raftstore/fsm.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftcall.h"
#include "storage/record.h"

struct fsm_apply {
	struct store_apply_req req;
	struct batch batch;
	struct fsm *fsm;
};

static char fsm_fenced_marker;

void *fsm_result_fenced(void)
{
	return &fsm_fenced_marker;
}

int fsm_entry_encode(const struct batch *b, uint8_t kind,
		     struct raft_buffer *out)
{
	struct rs_buf buf;
	int rv;

	assert(kind == FSM_ENTRY_BATCH || kind == FSM_ENTRY_EPOCH);
	rs_buf_init(&buf);
	rv = rs_buf_put_u8(&buf, FSM_ENTRY_FORMAT);
	if (rv == RS_OK)
		rv = rs_buf_put_u8(&buf, kind);
	if (rv == RS_OK)
		rv = record_encode_batch(b, &buf);
	/* Pad to 8 bytes: c-raft 0.15's open-segment loader does not skip the
	 * padding its writer adds, so an unaligned entry truncates the log on
	 * the next start (docs/architecture.md, "c-raft 0.15 guards"). */
	while (rv == RS_OK && buf.len % 8 != 0)
		rv = rs_buf_put_u8(&buf, 0);
	if (rv != RS_OK) {
		rs_buf_free(&buf);
		return rv;
	}
	out->base = raft_malloc(buf.len);
	if (out->base == NULL) {
		rs_buf_free(&buf);
		return RS_ENOMEM;
	}
	memcpy(out->base, buf.data, buf.len);
	out->len = buf.len;
	rs_buf_free(&buf);
	return RS_OK;
}

static bool fsm_padding_ok(const uint8_t *p, size_t n)
{
	if (n >= 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Check an entry's framing and its record's checksum, without decoding
 * the batch: *v tells its version. */
static int fsm_entry_parse(const struct raft_buffer *buf,
			   struct record_view *v, uint8_t *kind, char *errmsg)
{
	const uint8_t *p = buf->base;
	int rv;

	if (buf->len < 2 || p[0] != FSM_ENTRY_FORMAT ||
	    (p[1] != FSM_ENTRY_BATCH && p[1] != FSM_ENTRY_EPOCH)) {
		rs_errmsg_printf(errmsg, "entry of %zu bytes has unknown format %u "
					 "or kind %u",
				 buf->len, buf->len ? p[0] : 0,
				 buf->len > 1 ? p[1] : 0);
		return RS_EFORMAT;
	}
	rv = record_parse(p + 2, buf->len - 2, v, errmsg);
	if (rv == RS_OK && !fsm_padding_ok(p + 2 + v->total_len,
					   buf->len - 2 - v->total_len)) {
		rs_errmsg_printf(errmsg, "%zu bytes after the record are not "
					 "zero padding to 8 bytes",
				 buf->len - 2 - v->total_len);
		rv = RS_ECORRUPT;
	}
	if (rv == RS_ETORN) {
		rs_errmsg_printf(errmsg, "entry record is cut short");
		rv = RS_ECORRUPT;
	}
	*kind = p[1];
	return rv;
}

int fsm_entry_decode(const struct raft_buffer *buf, struct batch *b,
		     uint8_t *kind, char *errmsg)
{
	struct record_view v;
	int rv = fsm_entry_parse(buf, &v, kind, errmsg);

	if (rv == RS_OK)
		rv = record_decode_batch(&v, b, errmsg);
	return rv;
}

/* Whether fencing skips this entry; an epoch entry also advances it. */
static bool fsm_fence(struct fsm *f, const struct batch *b, uint8_t kind)
{
	if (kind == FSM_ENTRY_EPOCH) {
		if (b->epoch <= f->epoch)
			return true; /* epochs only ever increase */
		f->epoch = b->epoch;
		return false;
	}
	/* A batch of an older epoch, or of one never allocated. */
	return b->epoch != f->epoch;
}

static void fsm_fatal(struct fsm *f, const char *fmt, int rv, const char *msg)
{
	char line[RS_ERRMSG_SIZE + 128];
	snprintf(line, sizeof line, fmt, rs_strerror(rv), msg);
	f->on_fatal(f->ctx, line);
	abort(); /* on_fatal must not return */
}

static void fsm_applied_cb(struct store_apply_req *req, int status)
{
	struct fsm_apply *a = req->data;
	struct fsm *f = a->fsm;

	if (status != RS_OK)
		fsm_fatal(f, "store write failed: %s: %s", status,
			  store_errmsg(f->store));
	batch_free(&a->batch);
	free(a);
}

void fsm_snapshot_by_bytes(struct fsm *f, struct raft *r,
			   uint64_t max_log_bytes, unsigned max_entries)
{
	assert(r != NULL && max_entries > 0);
	f->by_bytes.raft = r;
	f->by_bytes.max_entries = max_entries;
	snappolicy_init(&f->by_bytes.policy, max_log_bytes);
	raft_set_snapshot_threshold(r, f->by_bytes.max_entries);
}

/* c-raft's threshold back to the entry cap, less this cycle's cut. */
static void fsm_threshold_to_cap(struct fsm *f)
{
	raft_set_snapshot_threshold(
		f->by_bytes.raft,
		snappolicy_entry_cap(&f->by_bytes.policy, f->by_bytes.max_entries));
}

void fsm_snapshot_jitter(struct fsm *f, uint64_t seed)
{
	assert(f->by_bytes.raft != NULL);
	snappolicy_jitter(&f->by_bytes.policy, seed);
	fsm_threshold_to_cap(f);
}

uint64_t fsm_log_bytes(const struct fsm *f)
{
	return f->by_bytes.policy.log_bytes;
}

/* Every entry applied weighs on the log, skipped and fenced ones too.  A
 * threshold of 1 makes c-raft take a snapshot once this apply returns
 * (any entry applied since the last one is enough). */
static void fsm_count_log(struct fsm *f, size_t bytes)
{
	if (f->by_bytes.raft != NULL &&
	    snappolicy_applied(&f->by_bytes.policy, bytes))
		raft_set_snapshot_threshold(f->by_bytes.raft, 1);
}

void fsm_snapshot_policy_begun(struct fsm *f)
{
	if (f->by_bytes.raft == NULL)
		return;
	snappolicy_begun(&f->by_bytes.policy);
	fsm_threshold_to_cap(f);
}

void fsm_snapshot_policy_ended(struct fsm *f, bool written,
			       uint64_t image_bytes)
{
	if (f->by_bytes.raft != NULL)
		snappolicy_ended(&f->by_bytes.policy, written, image_bytes);
}

static int fsm_apply_body(struct raft_fsm *rf, const struct raft_buffer *buf,
			  void **result)
{
	struct fsm *f = rf->data;
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct fsm_apply *a = calloc(1, sizeof *a);
	struct record_view view;
	uint8_t kind = 0;
	int rv;

	*result = NULL;
	if (a == NULL)
		fsm_fatal(f, "apply: %s%s", RS_ENOMEM, "");
	fsm_count_log(f, buf->len);
	a->fsm = f;
	batch_init(&a->batch);
	/* A replay after a restart skips what the store already has without
	 * decompressing it (up to --snapshot-log-mib of log). */
	rv = fsm_entry_parse(buf, &view, &kind, errmsg);
	if (rv == RS_OK && view.version <= store_accepted_version(f->store)) {
		f->skipped_entries++;
		free(a);
		return 0;
	}
	if (rv == RS_OK)
		rv = record_decode_batch(&view, &a->batch, errmsg);
	if (rv != RS_OK)
		fsm_fatal(f, "apply: undecodable entry: %s: %s", rv, errmsg);
	if (fsm_fence(f, &a->batch, kind)) {
		f->fenced_entries++;
		if (f->m_fenced != NULL)
			metrics_inc(f->m_fenced);
		if (f->on_fenced != NULL)
			f->on_fenced(f->ctx, &a->batch, f->epoch);
		*result = fsm_result_fenced();
		batch_free(&a->batch);
		free(a);
		return 0;
	}
	a->req.data = a;
	rv = store_apply(f->store, &a->req, &a->batch, fsm_applied_cb);
	if (rv != RS_OK)
		fsm_fatal(f, "apply: store refused batch: %s: %s", rv,
			  store_errmsg(f->store));
	f->applied_entries++;
	if (f->on_applied != NULL)
		f->on_applied(f->ctx, &a->batch);
	return 0;
}

void fsm_snapshot_header(uint8_t *p, size_t image_len, uint64_t version,
			 uint64_t epoch)
{
	memcpy(p, FSM_SNAPSHOT_MAGIC, 8);
	rs_put_u32(p + 8, FSM_SNAPSHOT_FORMAT);
	rs_put_u32(p + 12, crc32c(p + FSM_SNAPSHOT_HEADER, image_len));
	rs_put_u64(p + 16, version);
	rs_put_u64(p + 24, epoch);
}

static int fsm_snapshot_body(struct raft_fsm *rf, struct raft_buffer *bufs[],
			     unsigned *n_bufs)
{
	struct fsm *f = rf->data;
	struct rs_buf img;
	uint8_t *base;
	uint64_t version = store_accepted_version(f->store);
	int rv;

	rs_buf_init(&img);
	rv = mvcc_image_encode(store_index(f->store), version, &img);
	if (rv != RS_OK) {
		rs_buf_free(&img);
		return RAFT_NOMEM;
	}
	*bufs = raft_malloc(sizeof **bufs);
	base = raft_malloc(FSM_SNAPSHOT_HEADER + img.len);
	if (*bufs == NULL || base == NULL) {
		raft_free(*bufs);
		raft_free(base);
		rs_buf_free(&img);
		return RAFT_NOMEM;
	}
	if (img.len > 0)
		memcpy(base + FSM_SNAPSHOT_HEADER, img.data, img.len);
	fsm_snapshot_header(base, img.len, version,
			    store_applied_epoch(f->store));
	(*bufs)[0].base = base;
	(*bufs)[0].len = FSM_SNAPSHOT_HEADER + img.len;
	*n_bufs = 1;
	fsm_snapshot_policy_begun(f);
	fsm_snapshot_policy_ended(f, true, img.len);
	rs_buf_free(&img);
	f->snapshots++;
	return 0;
}

static int fsm_restore_body(struct raft_fsm *rf, struct raft_buffer *buf)
{
	struct fsm *f = rf->data;
	const uint8_t *p = buf->base;
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t version, epoch;
	int rv;

	if (buf->len < FSM_SNAPSHOT_HEADER ||
	    memcmp(p, FSM_SNAPSHOT_MAGIC, 8) != 0 ||
	    rs_get_u32(p + 8) != FSM_SNAPSHOT_FORMAT ||
	    rs_get_u32(p + 12) != crc32c(p + FSM_SNAPSHOT_HEADER,
					 buf->len - FSM_SNAPSHOT_HEADER))
		return RAFT_MALFORMED;
	version = rs_get_u64(p + 16);
	epoch = rs_get_u64(p + 24);
	if (f->by_bytes.raft != NULL) {
		snappolicy_restored(&f->by_bytes.policy,
				    buf->len - FSM_SNAPSHOT_HEADER);
		fsm_threshold_to_cap(f);
	}
	if (version > store_accepted_version(f->store)) {
		rv = store_restore(f->store, version, epoch,
				   p + FSM_SNAPSHOT_HEADER,
				   buf->len - FSM_SNAPSHOT_HEADER, errmsg);
		if (rv != RS_OK)
			fsm_fatal(f, "restore snapshot: %s: %s", rv, errmsg);
		f->restores++;
		f->epoch = epoch;
		if (f->on_restored != NULL)
			f->on_restored(f->ctx, version);
	}
	raft_free(buf->base);
	return 0;
}

/* The hooks c-raft calls, inside its own state changes: guarded, so that
 * nothing they trigger can make a c-raft request (raftcall.h). */
static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf,
		     void **result)
{
	int rv;

	raftcall_cb_enter("fsm apply");
	rv = fsm_apply_body(rf, buf, result);
	raftcall_cb_leave();
	return rv;
}

static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	int rv;

	raftcall_cb_enter("fsm snapshot");
	rv = fsm_snapshot_body(rf, bufs, n_bufs);
	raftcall_cb_leave();
	return rv;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
	int rv;

	raftcall_cb_enter("fsm restore");
	rv = fsm_restore_body(rf, buf);
	raftcall_cb_leave();
	return rv;
}

void fsm_init(struct fsm *f, struct store *store, fsm_applied_fn applied,
	      fsm_restored_fn restored, fsm_fatal_fn fatal, void *ctx)
{
	assert(store != NULL && fatal != NULL);
	memset(f, 0, sizeof *f);
	f->store = store;
	f->on_applied = applied;
	f->on_restored = restored;
	f->on_fatal = fatal;
	f->ctx = ctx;
	/* The epoch as of the state the store holds; replaying the log from
	 * there reproduces every fencing decision exactly. */
	f->epoch = store_applied_epoch(store);
	f->raft.version = 1;
	f->raft.data = f;
	f->raft.apply = fsm_apply;
	f->raft.snapshot = fsm_snapshot;
	f->raft.restore = fsm_restore;
}

int fsm_metrics_register(struct fsm *f, struct metrics *ms)
{
	struct metric *fenced;

	assert(f != NULL && ms != NULL);
	fenced = metrics_counter(ms, "raftstore_fenced_entries_total",
				 "Entries skipped for an older epoch");
	if (fenced == NULL)
		return RS_EINVAL;
	metrics_add(fenced, f->fenced_entries);
	f->m_fenced = fenced;
	return RS_OK;
}
