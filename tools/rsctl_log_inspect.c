/*
 * rsctl log inspect: what a node's storage files hold.
 *
 * Lists the journal's segments and the checkpoints, then rebuilds the
 * latest state the way the store would on open (the newest valid
 * checkpoint, then the journal replayed on top) and prints its version,
 * its live keys, and their key and value bytes.  Given a data dir, it then
 * describes the Raft log, its metadata and snapshots, and the identity
 * (rsctl_log_raft.c).  Anything corrupt makes it exit 1, as verify does;
 * a torn tail draws only a note: it is the normal trace of a crash, which
 * the next start repairs.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_log.h"

struct log_state {
	struct log_count count;
	struct mvcc *m;   /* NULL if the state cannot be rebuilt */
	uint64_t base;    /* version of the checkpoint the index starts at */
	uint64_t applied; /* journal batches applied on top */
	int apply_rv;
	uint64_t apply_version;
};

static int log_state_fn(void *ctx, const struct batch *b)
{
	struct log_state *s = ctx;

	log_count_batch(&s->count, b);
	if (s->m == NULL || b->version <= s->base)
		return RS_OK;
	s->apply_rv = mvcc_apply(s->m, b);
	if (s->apply_rv != RS_OK) {
		s->apply_version = b->version;
		return s->apply_rv;
	}
	s->applied++;
	assert(mvcc_latest_version(s->m) == b->version);
	return RS_OK;
}

static int log_inspect_segments(const struct log_dirs *d,
				uint64_t *first_prev, bool *any)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct journal_segment_info *segs = NULL;
	unsigned n = 0, i;
	int rv;

	*any = false;
	printf("journal %s\n", d->journal);
	rv = journal_list_segments(d->journal, &segs, &n, errmsg);
	if (rv != RS_OK) {
		printf("  cannot list segments: %s (%s)\n", errmsg,
		       rs_strerror(rv));
		return rv;
	}
	printf("  %-28s %10s %20s %12s\n", "segment", "seq", "prev_version",
	       "size");
	for (i = 0; i < n; i++)
		printf("  %-28s %10" PRIu64 " %20" PRIu64 " %12" PRIu64 "\n",
		       segs[i].name, segs[i].seq, segs[i].prev_version,
		       segs[i].size);
	if (n > 0) {
		*first_prev = segs[0].prev_version;
		*any = true;
	}
	free(segs);
	return RS_OK;
}

static void log_inspect_checkpoint_row(const char *path,
				       const struct checkpoint_info *listed,
				       struct log_state *s, unsigned *corrupt)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct checkpoint_info info;
	struct mvcc **keep = s->m == NULL ? &s->m : NULL;
	int rv;

	memset(&info, 0, sizeof info);
	rv = log_checkpoint_check(path, listed, &info, keep, errmsg);
	if (rv != RS_OK) {
		printf("  %-28s %20" PRIu64 " %8s %10s %12" PRIu64
		       " corrupt: %s\n",
		       listed->name, listed->version, "-", "-",
		       log_file_size(path), errmsg);
		(*corrupt)++;
		return;
	}
	printf("  %-28s %20" PRIu64 " %8" PRIu64 " %10" PRIu64 " %12" PRIu64
	       " valid%s\n",
	       listed->name, info.version, info.epoch, info.key_count,
	       log_file_size(path), keep != NULL ? " (newest valid)" : "");
	if (keep != NULL) {
		assert(s->m != NULL);
		s->base = info.version;
	}
}

/* List every checkpoint; the newest valid one is loaded into s->m. */
static unsigned log_inspect_checkpoints(const struct log_dirs *d,
					struct log_state *s)
{
	char errmsg[RS_ERRMSG_SIZE];
	char path[LOG_PATH_MAX];
	struct checkpoint_info *list = NULL;
	unsigned n = 0, i, corrupt = 0;
	int rv;

	assert(s->m == NULL);
	if (!d->store) {
		printf("checkpoints: none (DIR is a journal directory)\n");
		return 0;
	}
	printf("checkpoints %s\n", d->checkpoints);
	rv = d->have_checkpoints
		     ? checkpoint_list(d->checkpoints, &list, &n, errmsg)
		     : RS_OK;
	if (rv != RS_OK) {
		printf("  cannot list: %s (%s)\n", errmsg, rs_strerror(rv));
		return 1;
	}
	if (n == 0) {
		printf("  none\n");
		free(list);
		return 0;
	}
	printf("  %-28s %20s %8s %10s %12s status\n", "checkpoint", "version",
	       "epoch", "keys", "size");
	for (i = 0; i < n; i++) {
		log_file_path(path, d->checkpoints, list[i].name);
		log_inspect_checkpoint_row(path, &list[i], s, &corrupt);
	}
	free(list);
	return corrupt;
}

struct log_sum {
	uint64_t keys;
	uint64_t key_bytes;
	uint64_t value_bytes;
};

static int log_sum_fn(void *ctx, const uint8_t *key, uint32_t key_len,
		      const uint8_t *val, uint32_t val_len,
		      uint64_t found_version)
{
	struct log_sum *sum = ctx;

	sum->keys++;
	sum->key_bytes += key_len;
	sum->value_bytes += val_len;
	return 0;
}

static int log_inspect_print_state(const struct log_state *s)
{
	struct log_sum sum = {0, 0, 0};
	uint64_t latest = mvcc_latest_version(s->m);
	int rv = RS_OK;

	assert(s->m != NULL && latest >= s->base);
	if (latest > 0)
		rv = mvcc_range(s->m, "", 0, NULL, 0, latest, 0, log_sum_fn,
				&sum, NULL);
	if (rv != RS_OK) {
		printf("  cannot read the state: %s\n", rs_strerror(rv));
		return rv;
	}
	assert(sum.keys == mvcc_key_count(s->m));
	printf("state at version %" PRIu64 " (checkpoint %" PRIu64
	       " + %" PRIu64 " journal batches)\n",
	       latest, s->base, s->applied);
	printf("  live keys    %" PRIu64 "\n", sum.keys);
	printf("  key bytes    %" PRIu64 "\n", sum.key_bytes);
	printf("  value bytes  %" PRIu64 "\n", sum.value_bytes);
	return RS_OK;
}

static unsigned log_inspect_journal(const struct log_dirs *d,
				    struct log_state *s)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct journal_report r;
	int rv;

	rv = log_journal_replay(d, 0, log_state_fn, s, &r, errmsg);
	printf("  records %" PRIu64 ", mutations %" PRIu64, s->count.records,
	       s->count.mutations);
	if (s->count.records > 0)
		printf(", versions %" PRIu64 "..%" PRIu64,
		       s->count.first_version, s->count.last_version);
	printf(", %" PRIu64 " bytes%s\n", r.bytes,
	       rv != RS_OK ? " (before the first problem)" : "");
	if (r.torn)
		log_print_torn(stdout, d, &r);
	if (rv != RS_OK && s->apply_rv != RS_OK) {
		printf("  cannot apply the batch at version %" PRIu64
		       " to the checkpoint state: %s\n",
		       s->apply_version, rs_strerror(s->apply_rv));
		return 1;
	}
	if (rv != RS_OK) {
		log_print_journal_error(stdout, d, &r, rv, errmsg);
		return 1;
	}
	if (s->count.bad_what != NULL) { /* as verify reports it */
		printf("CORRUPT  journal %s: batch at version %" PRIu64
		       ": %s\n",
		       d->journal, s->count.bad_version, s->count.bad_what);
		return 1;
	}
	return 0;
}

/* A data dir's Raft log, metadata, snapshots and identity: described,
 * then each problem (a torn tail only as a note).  Returns the number of
 * problems. */
static unsigned log_inspect_raft(const struct log_dirs *d)
{
	struct log_raft *raft = log_raft_check(d);
	unsigned problems;

	if (raft == NULL)
		return 1;
	log_raft_print_inspect(raft);
	problems = log_raft_print_problems(raft, false);
	log_raft_free(raft);
	return problems;
}

int log_inspect_run(const struct log_args *a, const struct log_dirs *d)
{
	struct log_state s;
	uint64_t first_prev = 0;
	bool any_seg = false, rebuilt;
	unsigned problems = 0;

	assert(a->dir != NULL);
	memset(&s, 0, sizeof s);
	printf("%s %s\n",
	       d->data_dir ? "data dir"
	       : d->store  ? "store directory"
			   : "journal directory",
	       d->arg);
	problems += log_inspect_checkpoints(d, &s);
	if (s.m == NULL)
		s.m = mvcc_create(LOG_MVCC_WINDOW); /* no checkpoint: empty */
	rebuilt = true;
	if (d->have_journal &&
	    log_inspect_segments(d, &first_prev, &any_seg) != RS_OK)
		rebuilt = false;
	if (any_seg && first_prev > s.base) {
		printf("  the journal starts after version %" PRIu64
		       ", above the checkpoint it would follow "
		       "(version %" PRIu64
		       "): the batches in between are in no file\n",
		       first_prev, s.base);
		rebuilt = false;
		mvcc_destroy(s.m); /* replay must not apply across the gap */
		s.m = NULL;
	}
	if (d->have_journal && log_inspect_journal(d, &s) != 0)
		rebuilt = false;
	if (rebuilt && log_inspect_print_state(&s) != RS_OK)
		rebuilt = false;
	if (!rebuilt)
		printf("latest state: cannot be rebuilt (see above)\n");
	problems += rebuilt ? 0 : 1;
	if (s.m != NULL)
		mvcc_destroy(s.m);
	if (d->data_dir)
		problems += log_inspect_raft(d);
	return problems == 0 ? RSCTL_EXIT_OK : RSCTL_EXIT_FAIL;
}

