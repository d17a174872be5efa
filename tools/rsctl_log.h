/*
 * rsctl_log: internal header of `rsctl log`, offline reading of a node's
 * storage files, split by subcommand around it:
 *
 *   rsctl_log.c          arguments, finding DIR's files, the journal and
 *                        checkpoint readers the subcommands share, help,
 *                        and rsctl_log_run (rsctl.h)
 *   rsctl_log_verify.c   verify: every record and checkpoint, and coverage
 *   rsctl_log_inspect.c  inspect: segments, checkpoints, the latest state
 *   rsctl_log_dump.c     dump: one line per batch, as text or NDJSON
 *   rsctl_log_raft.c     the rest of a node's data dir, for verify and
 *                        inspect: c-raft's segments, metadata files and
 *                        snapshots in DIR/raft (rsctl_log_snap.c), and
 *                        DIR/identity; rsctl_log_raft.h is their header
 *
 * Everything here is read-only: the journal is opened with read_only set
 * and checkpoints are only read (rsctl_log.c's file-top comment says why
 * it matters).  Nothing here is used outside tools/rsctl_log*.c.
 */
#ifndef RS_RSCTL_LOG_H
#define RS_RSCTL_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "storage/checkpoint.h"
#include "storage/journal.h"
#include "storage/mvcc.h"
#include "tools/rsctl.h"

#define LOG_PATH_MAX 4096
/* The index only ever serves reads at its latest version here, so the
 * smallest window keeps memory at the size of the live state. */
#define LOG_MVCC_WINDOW 1u

struct log_args {
	const char *dir;
	bool help;
	bool json;
	uint64_t from; /* inclusive; 0 = from the start */
	uint64_t to;   /* inclusive; UINT64_MAX = to the end */
};

/* Where DIR's files are. */
struct log_dirs {
	const char *arg; /* DIR as given */
	bool store;      /* DIR is a store directory, not a journal directory
			    (or a data dir, whose store is DIR/store) */
	bool data_dir;   /* DIR is a node's data dir: raft/ (and store/) inside */
	bool have_journal;
	bool have_checkpoints;
	char journal[LOG_PATH_MAX];
	char checkpoints[LOG_PATH_MAX];
	char raft[LOG_PATH_MAX]; /* data dir only: DIR/raft */
};

/* What a replay saw, checked independently of the journal's own checks. */
struct log_count {
	uint64_t records;
	uint64_t mutations;
	uint64_t first_version;
	uint64_t last_version;
	uint64_t bad_version; /* first batch out of order or miscounted */
	const char *bad_what;
};

/* ---- shared by the subcommands (rsctl_log.c) ---- */

/* The report names files by name or by path; always show a path. */
void log_file_path(char *out, const char *dir, const char *file);

/* Open the journal read-only, replaying every batch above `from` into fn,
 * and close it again.  Blocks. */
int log_journal_replay(const struct log_dirs *d, uint64_t from,
		       journal_replay_fn fn, void *ctx,
		       struct journal_report *report, char *errmsg);

/* The first word of a problem line, by error code. */
const char *log_problem_label(int rv);

/* "s" or "", to say "1 segment" and "2 segments". */
const char *log_plural(uint64_t n);

/* The journal's failure rv, as problem lines naming the file, the offset
 * and the last good record. */
void log_print_journal_error(FILE *f, const struct log_dirs *d,
			     const struct journal_report *r, int rv,
			     const char *errmsg);

/* The note for a torn tail (r->torn): where, and what opening the store
 * will do about it. */
void log_print_torn(FILE *f, const struct log_dirs *d,
		    const struct journal_report *r);

/* Count one batch into c, noting the first one out of order or
 * miscounted; log_count_fn is the same as a journal_replay_fn. */
void log_count_batch(struct log_count *c, const struct batch *b);
int log_count_fn(void *ctx, const struct batch *b);

/* The size of the file at path, 0 if it cannot be read. */
uint64_t log_file_size(const char *path);

/* Read and fully check one checkpoint as the store would load it:
 * checksums (checkpoint_read), the header's version against the file name,
 * then the image's structure and key count (mvcc_image_load).  errmsg names
 * the file.  On success, if keep is non-NULL, *keep receives the loaded
 * index (the caller destroys it). */
int log_checkpoint_check(const char *path,
			 const struct checkpoint_info *listed,
			 struct checkpoint_info *info, struct mvcc **keep,
			 char *errmsg);

/* ---- the rest of a data dir (rsctl_log_raft.c) ---- */

/* What was found in DIR/raft and DIR/identity: every file read and
 * checked, nothing printed yet. */
struct log_raft;

/* Check a data dir's DIR/raft (c-raft's segments, metadata1/2 and
 * snapshots) and DIR/identity, reading only.  Blocks.  NULL only when out
 * of memory (said on stderr). */
struct log_raft *log_raft_check(const struct log_dirs *d);
void log_raft_free(struct log_raft *r);

/* Print one line per problem, naming the file and the byte offset.
 * Returns how many: corrupt or unreadable files, and, if crash_traces is
 * set, the traces a crash leaves and a start clears (a torn tail of an
 * open segment, a short metadata file, a snapshot without its data); with
 * crash_traces unset those are printed as notes and not counted. */
unsigned log_raft_print_problems(const struct log_raft *r, bool crash_traces);

/* verify's summary lines: the Raft log, its metadata, the identity. */
void log_raft_print_summary(const struct log_raft *r);

/* inspect's description: every segment, both metadata files, every
 * snapshot, and the identity. */
void log_raft_print_inspect(const struct log_raft *r);

/* ---- the subcommands: each returns an rsctl_exit code ---- */

int log_verify_run(const struct log_args *a, const struct log_dirs *d);
int log_inspect_run(const struct log_args *a, const struct log_dirs *d);
int log_dump_run(const struct log_args *a, const struct log_dirs *d);

#endif /* RS_RSCTL_LOG_H */
