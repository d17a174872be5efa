/*
 * rsctl log verify: are a node's storage files intact?
 *
 * Reads every journal record (checksum, framing, version order, mutation
 * count), every checkpoint (checksums, header, image structure), and checks
 * that the newest valid checkpoint and the journal together cover every
 * version.  Given a data dir, it also checks the Raft log, its metadata and
 * snapshots, and the identity file (rsctl_log_raft.c).  Each problem is one
 * line naming its file and byte offset; a torn tail is a problem here,
 * unlike in inspect and dump, because the question asked is whether the
 * files are intact.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_log.h"

struct log_verify {
	unsigned problems;
	bool journal_stopped; /* the journal's scan ended at a problem */
	struct journal_report report;
	struct log_count count;
	struct journal_segment_info *segs;
	unsigned nsegs;
	unsigned checkpoints;
	unsigned checkpoints_valid;
	bool have_valid;
	uint64_t newest_valid; /* version of the newest valid checkpoint */
};

static void log_verify_journal(const struct log_dirs *d, struct log_verify *v)
{
	char errmsg[RS_ERRMSG_SIZE];
	int rv;

	rv = journal_list_segments(d->journal, &v->segs, &v->nsegs, errmsg);
	if (rv != RS_OK) {
		fprintf(stdout, "ERROR    journal %s: %s (%s)\n", d->journal,
			errmsg, rs_strerror(rv));
		v->problems++;
		v->segs = NULL;
		v->nsegs = 0;
	}
	rv = log_journal_replay(d, 0, log_count_fn, &v->count, &v->report,
				errmsg);
	if (rv != RS_OK) {
		log_print_journal_error(stdout, d, &v->report, rv, errmsg);
		v->problems++;
		v->journal_stopped = true;
	}
	if (v->report.torn) {
		log_print_torn(stdout, d, &v->report);
		v->problems++;
	}
	if (v->count.bad_what != NULL) {
		fprintf(stdout, "CORRUPT  journal %s: batch at version %" PRIu64
				": %s\n",
			d->journal, v->count.bad_version, v->count.bad_what);
		v->problems++;
	}
}

static void log_verify_checkpoints(const struct log_dirs *d,
				   struct log_verify *v)
{
	char errmsg[RS_ERRMSG_SIZE];
	char path[LOG_PATH_MAX];
	struct checkpoint_info *list = NULL, info;
	unsigned n = 0, i;
	int rv;

	rv = checkpoint_list(d->checkpoints, &list, &n, errmsg);
	if (rv != RS_OK) {
		fprintf(stdout, "ERROR    checkpoints %s: %s (%s)\n",
			d->checkpoints, errmsg, rs_strerror(rv));
		v->problems++;
		return;
	}
	v->checkpoints = n;
	for (i = 0; i < n; i++) {
		log_file_path(path, d->checkpoints, list[i].name);
		memset(&info, 0, sizeof info);
		rv = log_checkpoint_check(path, &list[i], &info, NULL, errmsg);
		if (rv != RS_OK) {
			fprintf(stdout, "%-8s %s (%s)\n", log_problem_label(rv),
				errmsg, rs_strerror(rv));
			v->problems++;
			continue;
		}
		v->checkpoints_valid++;
		if (!v->have_valid || info.version > v->newest_valid)
			v->newest_valid = info.version;
		v->have_valid = true;
	}
	free(list);
}

/* The store loads the newest valid checkpoint and replays the journal after
 * it.  The first segment's prev_version says which versions went before it
 * (in segments since deleted): if the checkpoint does not reach them, those
 * batches are gone. */
static void log_verify_coverage(const struct log_dirs *d, struct log_verify *v)
{
	uint64_t base = v->have_valid ? v->newest_valid : 0;
	uint64_t prev;

	if (v->nsegs == 0)
		return;
	prev = v->segs[0].prev_version;
	if (prev <= base)
		return;
	fprintf(stdout,
		"GAP      %s/%s starts after version %" PRIu64
		", but the newest valid checkpoint is at version %" PRIu64
		": the batches in between are in no file\n",
		d->journal, v->segs[0].name, prev, base);
	v->problems++;
}

static void log_verify_summary_journal(const struct log_dirs *d,
				       const struct log_verify *v)
{
	const struct log_count *c = &v->count;

	printf("journal      %s: %u segment%s, %" PRIu64 " record%s, %" PRIu64
	       " mutation%s",
	       d->journal, v->nsegs, log_plural(v->nsegs), c->records,
	       log_plural(c->records), c->mutations, log_plural(c->mutations));
	if (c->records > 0)
		printf(", versions %" PRIu64 "..%" PRIu64, c->first_version,
		       c->last_version);
	printf("%s\n", v->journal_stopped ? " before the first problem" : "");
}

static void log_verify_summary(const struct log_dirs *d,
			       const struct log_verify *v,
			       const struct log_raft *raft)
{
	if (d->have_journal)
		log_verify_summary_journal(d, v);
	else
		printf("journal      %s: absent\n", d->journal);
	if (!d->store)
		printf("checkpoints  not checked "
		       "(DIR is a journal directory)\n");
	else if (!d->have_checkpoints)
		printf("checkpoints  %s: absent\n", d->checkpoints);
	else if (v->checkpoints == 0)
		printf("checkpoints  %s: none\n", d->checkpoints);
	else if (v->have_valid)
		printf("checkpoints  %s: %u, %u valid, newest valid at "
		       "version %" PRIu64 "\n",
		       d->checkpoints, v->checkpoints, v->checkpoints_valid,
		       v->newest_valid);
	else
		printf("checkpoints  %s: %u, none valid\n", d->checkpoints,
		       v->checkpoints);
	if (raft != NULL)
		log_raft_print_summary(raft);
	if (v->problems == 0 && raft != NULL)
		printf("OK: every record, checkpoint, Raft log file and the "
		       "identity verified\n");
	else if (v->problems == 0)
		printf("OK: every record and checkpoint verified\n");
	else
		printf("FAILED: %u problem%s found\n", v->problems,
		       log_plural(v->problems));
}

int log_verify_run(const struct log_args *a, const struct log_dirs *d)
{
	struct log_raft *raft = NULL;
	struct log_verify v;

	assert(a->dir != NULL && d->arg == a->dir);
	memset(&v, 0, sizeof v);
	if (d->have_journal)
		log_verify_journal(d, &v);
	if (d->have_checkpoints)
		log_verify_checkpoints(d, &v);
	if (d->store)
		log_verify_coverage(d, &v);
	if (d->data_dir) {
		raft = log_raft_check(d);
		if (raft == NULL) {
			free(v.segs);
			return RSCTL_EXIT_FAIL;
		}
		v.problems += log_raft_print_problems(raft, true);
	}
	log_verify_summary(d, &v, raft);
	log_raft_free(raft);
	free(v.segs);
	return v.problems == 0 ? RSCTL_EXIT_OK : RSCTL_EXIT_FAIL;
}

