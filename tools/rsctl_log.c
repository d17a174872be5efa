/*
 * rsctl log: offline reading of a node's storage files.
 *
 *   rsctl log verify  DIR   check every journal record and every checkpoint
 *   rsctl log inspect DIR   segments, checkpoints, and the latest state
 *   rsctl log dump    DIR   one line per batch, as text or NDJSON
 *
 * DIR is a node's data dir (raft/, and store/ once the node ran: verify
 * and inspect then also check the Raft log and the identity,
 * rsctl_log_raft.c), a store directory (journal/ and checkpoints/ inside,
 * store.h) or a journal directory (seg-*.rsj files).  All three are
 * strictly read-only: the journal is opened with read_only set (a torn
 * tail is reported, never truncated), checkpoints and c-raft's files are
 * only read, and nothing is created.  The test
 * tests/integration/rsctl_log.sh checks that every file stays
 * byte-identical.
 *
 * A torn tail fails `verify` (an operator asked whether the files are
 * intact, and they are not), but only draws a note from `inspect` and
 * `dump`: it is the normal trace of a crash, which opening the store repairs.
 *
 * This file holds the arguments, finding DIR's files, the journal and
 * checkpoint readers the subcommands share (tools/rsctl_log.h), and the
 * help; each subcommand lives in rsctl_log_<name>.c.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_log.h"

/* ---- arguments ---- */

enum {
	LOG_OPT_RANGE = 1u << 0, /* --from V --to V */
	LOG_OPT_JSON = 1u << 1,  /* --json */
};

struct log_subcommand {
	const char *name;
	const char *synopsis;
	const char *summary;
	const char *help;  /* details after the synopsis */
	const char *exits; /* what exit codes 0 and 1 mean for it */
	unsigned opts;     /* LOG_OPT_* accepted */
	int (*run)(const struct log_args *a, const struct log_dirs *d);
};

/* Parse one "--from"/"--to" at argv[*i].  Returns -1 if argv[*i] is neither,
 * else an exit code. */
static int log_parse_range_opt(int argc, char **argv, int *i,
			       const char *help_cmd, struct log_args *a)
{
	static const char *const names[] = {"--from", "--to"};
	uint64_t *dst[] = {&a->from, &a->to};
	bool missing;
	int k;

	for (k = 0; k < 2; k++) {
		const char *v;

		v = cliopt_value(argc, argv, i, names[k], &missing);
		if (missing)
			return rsctl_usage_errorf(help_cmd,
						  "%s needs a version",
						  names[k]);
		if (v == NULL)
			continue;
		if (!cliopt_parse_u64(v, dst[k]))
			return rsctl_usage_errorf(
				help_cmd, "%s: '%s' is not a version number",
				names[k], v);
		return RSCTL_EXIT_OK;
	}
	return -1;
}

static int log_parse_args(int argc, char **argv, unsigned opts,
			  const char *help_cmd, struct log_args *a)
{
	bool options_done = false;
	int i, rv;

	memset(a, 0, sizeof *a);
	a->to = UINT64_MAX;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (a->dir != NULL)
				return rsctl_usage_errorf(
					help_cmd, "unexpected argument '%s'",
					arg);
			a->dir = arg;
		} else if (strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (rsctl_is_help(arg)) {
			a->help = true;
			return RSCTL_EXIT_OK;
		} else if ((opts & LOG_OPT_JSON) &&
			   strcmp(arg, "--json") == 0) {
			a->json = true;
		} else if ((opts & LOG_OPT_RANGE) &&
			   (rv = log_parse_range_opt(argc, argv, &i, help_cmd,
						     a)) >= 0) {
			if (rv != RSCTL_EXIT_OK)
				return rv;
		} else {
			return rsctl_usage_errorf(help_cmd,
						  "unknown option '%s'", arg);
		}
	}
	if (a->dir == NULL)
		return rsctl_usage_errorf(help_cmd, "missing DIR");
	if (a->from > a->to)
		return rsctl_usage_errorf(help_cmd,
					  "--from %" PRIu64
					  " is above --to %" PRIu64,
					  a->from, a->to);
	return RSCTL_EXIT_OK;
}

/* ---- finding the files ---- */

static bool log_join(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, LOG_PATH_MAX, "%s/%s", dir, name);
	return n > 0 && n < LOG_PATH_MAX;
}

static bool log_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool log_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Whether dir holds a seg-*.rsj file.  Scans names only, so that a corrupt
 * header is left for verify to report rather than hiding the directory. */
static bool log_has_segments(const char *dir)
{
	struct dirent *e;
	bool found = false;
	DIR *dp = opendir(dir);

	if (dp == NULL)
		return false;
	while (!found && (e = readdir(dp)) != NULL)
		found = strncmp(e->d_name, "seg-", 4) == 0 &&
			log_has_suffix(e->d_name, ".rsj");
	closedir(dp);
	return found;
}

/* A node's data dir (raftstored --data-dir): DIR/store is its store
 * directory and DIR/raft c-raft's.  DIR/raft marks a data dir: a node
 * creates both at its first start, but `rsctl snapshot restore` writes
 * only DIR/raft (and DIR/identity), and a store dir never holds a raft/.
 * Sets d->raft to DIR/raft in any case, or to "" when the path is too
 * long. */
static bool log_resolve_data_dir(const char *arg, struct log_dirs *d)
{
	char store[LOG_PATH_MAX];

	if (!log_join(d->raft, arg, "raft") || !log_join(store, arg, "store") ||
	    !log_join(d->journal, store, "journal") ||
	    !log_join(d->checkpoints, store, "checkpoints")) {
		d->raft[0] = '\0';
		return false;
	}
	d->data_dir = log_is_dir(d->raft);
	if (!d->data_dir)
		return false;
	d->store = true;
	d->have_journal = log_is_dir(d->journal);
	d->have_checkpoints = log_is_dir(d->checkpoints);
	return true;
}

static int log_resolve(const char *arg, const char *help_cmd,
		       struct log_dirs *d)
{
	struct stat st;

	memset(d, 0, sizeof *d);
	d->arg = arg;
	if (stat(arg, &st) != 0)
		return rsctl_usage_errorf(help_cmd, "%s: %s", arg,
					  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return rsctl_usage_errorf(help_cmd, "%s: not a directory", arg);
	if (log_resolve_data_dir(arg, d))
		return RSCTL_EXIT_OK;
	if (d->raft[0] == '\0' || !log_join(d->journal, arg, "journal") ||
	    !log_join(d->checkpoints, arg, "checkpoints"))
		return rsctl_usage_errorf(help_cmd, "%s: path too long", arg);
	d->have_journal = log_is_dir(d->journal);
	d->have_checkpoints = log_is_dir(d->checkpoints);
	d->store = d->have_journal || d->have_checkpoints;
	d->raft[0] = '\0'; /* a store dir has no Raft log */
	if (d->store)
		return RSCTL_EXIT_OK;
	if (!log_has_segments(arg))
		return rsctl_usage_errorf(
			help_cmd,
			"%s: neither a data dir (no raft/ inside), "
			"a store directory (no journal/ or checkpoints/ "
			"inside) nor a journal directory (no seg-*.rsj files)",
			arg);
	assert(strlen(arg) < LOG_PATH_MAX); /* log_join succeeded above */
	strcpy(d->journal, arg);
	d->checkpoints[0] = '\0';
	d->have_journal = true;
	return RSCTL_EXIT_OK;
}

/* The report names files by name or by path; always show a path. */
void log_file_path(char *out, const char *dir, const char *file)
{
	if (strchr(file, '/') != NULL || !log_join(out, dir, file))
		snprintf(out, LOG_PATH_MAX, "%s", file);
}

/* ---- the journal ---- */

/* Open the journal read-only, replaying every batch above `from` into fn,
 * and close it again.  Blocks. */
int log_journal_replay(const struct log_dirs *d, uint64_t from,
		       journal_replay_fn fn, void *ctx,
		       struct journal_report *report, char *errmsg)
{
	struct journal_options opts;
	struct journal *j = NULL;
	int rv;

	assert(d->have_journal);
	memset(&opts, 0, sizeof opts);
	opts.dir = d->journal;
	opts.sync = JOURNAL_SYNC_NONE;
	opts.read_only = true; /* the whole point: never truncate */
	memset(report, 0, sizeof *report);
	errmsg[0] = '\0';
	rv = journal_open(&j, NULL, &opts, from, fn, ctx, report, errmsg);
	if (rv == RS_OK) {
		assert(j != NULL);
		journal_close_sync(j);
	}
	return rv;
}

/* The first word of a problem line, by error code. */
const char *log_problem_label(int rv)
{
	switch (rv) {
	case RS_ECORRUPT: return "CORRUPT";
	case RS_ETORN: return "CORRUPT"; /* a cut checkpoint: never usable */
	case RS_EGAP: return "GAP";
	case RS_EFORMAT: return "FORMAT";
	default: return "ERROR";
	}
}

/* "s" or "", to say "1 segment" and "2 segments". */
const char *log_plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

void log_print_journal_error(FILE *f, const struct log_dirs *d,
			     const struct journal_report *r, int rv,
			     const char *errmsg)
{
	char path[LOG_PATH_MAX];

	assert(rv != RS_OK);
	if (r->bad_file[0] == '\0') {
		fprintf(f, "ERROR    journal %s: %s (%s)\n", d->journal,
			errmsg, rs_strerror(rv));
		return;
	}
	log_file_path(path, d->journal, r->bad_file);
	fprintf(f, "%-8s %s at offset %" PRIu64, log_problem_label(rv), path,
		r->bad_offset);
	if (r->bad_after_version > 0)
		fprintf(f, " (last good record: version %" PRIu64 ")\n",
			r->bad_after_version);
	else
		fprintf(f, " (no good record before it)\n");
	fprintf(f, "         %s (%s)\n", errmsg, rs_strerror(rv));
}

void log_print_torn(FILE *f, const struct log_dirs *d,
		    const struct journal_report *r)
{
	char path[LOG_PATH_MAX];

	assert(r->torn);
	log_file_path(path, d->journal, r->torn_file);
	/* A crash while creating a segment leaves a short or zeroed header;
	 * the store then deletes the whole file (journal.h). */
	if (r->torn_offset < JOURNAL_HEADER_SIZE) {
		fprintf(f,
			"TORN     %s at offset %" PRIu64
			": torn tail, a partial segment header (%" PRIu64
			" bytes) after the last good record (version %" PRIu64
			"); opening the store deletes the file\n",
			path, r->torn_offset, r->torn_bytes, r->last_version);
		return;
	}
	fprintf(f,
		"TORN     %s at offset %" PRIu64 ": torn tail, %" PRIu64
		" bytes of a partial record after the last good record "
		"(version %" PRIu64 "); opening the store truncates them\n",
		path, r->torn_offset, r->torn_bytes, r->last_version);
}


void log_count_batch(struct log_count *c, const struct batch *b)
{
	struct mutation m;
	size_t pos = 0;
	uint32_t n = 0;

	while (batch_next(b, &pos, &m))
		n++;
	if (c->bad_what == NULL && c->records > 0 &&
	    b->version <= c->last_version) {
		c->bad_what = "version not above the previous record's";
		c->bad_version = b->version;
	}
	if (c->bad_what == NULL && n != b->count) {
		c->bad_what = "mutation count differs from the batch header";
		c->bad_version = b->version;
	}
	if (c->records == 0)
		c->first_version = b->version;
	c->records++;
	c->mutations += n;
	c->last_version = b->version;
}

int log_count_fn(void *ctx, const struct batch *b)
{
	log_count_batch(ctx, b);
	return RS_OK;
}

/* ---- checkpoints ---- */

uint64_t log_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Read and fully check one checkpoint as the store would load it:
 * checksums (checkpoint_read), the header's version against the file name,
 * then the image's structure and key count (mvcc_image_load).  errmsg names
 * the file.  On success, if keep is non-NULL, *keep receives the loaded
 * index (the caller destroys it). */
int log_checkpoint_check(const char *path,
			 const struct checkpoint_info *listed,
			 struct checkpoint_info *info, struct mvcc **keep,
			 char *errmsg)
{
	struct rs_buf image;
	struct mvcc *m;
	uint64_t keys = 0;
	int rv;

	rs_buf_init(&image);
	rv = checkpoint_read(path, info, &image, errmsg);
	if (rv != RS_OK)
		goto err_image; /* errmsg already names the file */
	if (info->version != listed->version) {
		rs_errmsg_printf(errmsg, "header version %" PRIu64
				 " does not match the name", info->version);
		rv = RS_ECORRUPT;
		goto err_wrap;
	}
	m = mvcc_create(LOG_MVCC_WINDOW);
	rv = mvcc_image_load(m, info->version, image.data, image.len, &keys,
			     errmsg);
	if (rv == RS_OK && keys != info->key_count) {
		rs_errmsg_printf(errmsg,
				 "image holds %" PRIu64
				 " keys, header says %" PRIu64,
				 keys, info->key_count);
		rv = RS_ECORRUPT;
	}
	if (rv != RS_OK || keep == NULL)
		mvcc_destroy(m);
	else
		*keep = m;
	assert(rv != RS_OK || info->version == listed->version);
err_wrap:
	if (rv != RS_OK)
		rs_errmsg_wrapf(errmsg, "checkpoint %s", path);
err_image:
	rs_buf_free(&image);
	return rv;
}

/* ---- the group ---- */

static const struct log_subcommand log_subcommands[] = {
	{"verify", "rsctl log verify DIR",
	 "check every journal record and every checkpoint",
	 "Reads every journal record (checksum, framing, version order) and\n"
	 "every checkpoint (header, chunks, trailer, image structure), and\n"
	 "checks that the newest valid checkpoint and the journal together\n"
	 "cover every version.  Prints each problem with its file and byte\n"
	 "offset and the version of the last good record, then a summary.\n"
	 "A torn tail (a partial record at the end of the last segment, left\n"
	 "by a crash) counts as a problem here.\n"
	 "Given a data dir, it also checks the Raft log in DIR/raft: every\n"
	 "segment (header, checksums, entry counts; a torn tail of an open\n"
	 "segment is reported as such), metadata1 and metadata2 (format,\n"
	 "version counter, term), every snapshot (the .meta file's header,\n"
	 "checksum and configuration; the data file's LZ4 frame and the\n"
	 "checksum of the image in it), and DIR/identity.\n",
	 "  0  every record, checkpoint and file is valid and they cover every "
	 "version\n"
	 "  1  a corrupt record, checkpoint or file, a torn tail, a gap, or a "
	 "read\n"
	 "     error\n",
	 0, log_verify_run},
	{"inspect", "rsctl log inspect DIR",
	 "describe segments, checkpoints and the latest state",
	 "Lists segments (name, seq, prev_version, size) and checkpoints\n"
	 "(version, epoch, keys, size, valid or corrupt), counts records and\n"
	 "their version range, and rebuilds the latest state (newest valid\n"
	 "checkpoint plus the journal after it) to report its live keys and\n"
	 "key and value bytes.  Given a data dir, it then lists the Raft log's\n"
	 "segments (indexes, batches, entries, size, status), metadata1 and\n"
	 "metadata2 (version, term, vote), the snapshots (index, term,\n"
	 "configuration, the state's version) and the identity (node, cluster),\n"
	 "checked as verify checks them, and prints each problem after them.\n"
	 "A torn tail (or a metadata file cut short, or a snapshot without its\n"
	 "data) is shown but is not a failure: the next start clears it.\n",
	 "  0  everything read is valid (a torn tail is allowed)\n"
	 "  1  something is corrupt or unreadable, or the latest state cannot "
	 "be\n"
	 "     rebuilt (the rest is still printed)\n",
	 0, log_inspect_run},
	{"dump", "rsctl log dump DIR [--from V] [--to V] [--json]",
	 "print the journal's batches, one per line",
	 "One line per batch with version in [--from, --to] (inclusive):\n"
	 "version, epoch, mutation count and the mutations.  Text form: keys\n"
	 "and values in double quotes, printable ASCII as is, '\"' and '\\'\n"
	 "backslash-escaped, other bytes as \\xNN; keys longer than 256 and\n"
	 "values longer than 64 bytes are cut, followed by ...(N bytes).\n"
	 "--json prints one JSON object per line (NDJSON), never cut:\n"
	 "  {\"version\":V,\"epoch\":E,\"count\":N,\"mutations\":[\n"
	 "    {\"op\":\"set\",\"key\":K,\"value\":V} |\n"
	 "    {\"op\":\"del\",\"key\":K} |\n"
	 "    {\"op\":\"clear-range\",\"begin\":B,\"end\":E}]}\n"
	 "where each byte of a key or value is the code point of the same\n"
	 "number (U+0000..U+00FF), so encoding a string as Latin-1 gives back\n"
	 "the exact bytes.  A torn tail is noted on stderr, not a failure.\n"
	 "Given a data dir, it dumps the store's journal (DIR/store/journal);\n"
	 "the Raft log is not dumped (verify and inspect check it).\n",
	 "  0  every valid batch in range was printed (a torn tail is "
	 "allowed)\n"
	 "  1  a corrupt record or read error stopped the dump; the batches "
	 "before\n"
	 "     it were printed\n",
	 LOG_OPT_RANGE | LOG_OPT_JSON, log_dump_run},
};

#define LOG_SUBCOMMAND_COUNT \
	(sizeof log_subcommands / sizeof log_subcommands[0])

static void log_help_dir(FILE *f)
{
	fprintf(f,
		"DIR is a node's data dir (raftstored --data-dir: holding "
		"raft/, and\n"
		"store/ once the node ran), a store directory (holding "
		"journal/ and\n"
		"checkpoints/) or a journal directory (holding seg-*.rsj "
		"files).\n"
		"Nothing is ever written: a torn tail is reported, not "
		"truncated.\n"
		"The files of a running node may be read, but may change "
		"meanwhile:\n"
		"a record or entry being written then reads as a torn tail, "
		"and a\n"
		"file renamed or deleted in between as a read error.  For a "
		"definite\n"
		"answer, stop the node or read a copy.\n\n");
}

/* The log commands never contact a node, so they never exit 3. */
static void log_help_exits(FILE *f, const char *exits)
{
	assert(exits != NULL);
	fprintf(f, "Exit codes:\n%s  %d  usage error: bad arguments, or DIR "
		   "missing or not a data,\n"
		   "     store or journal directory\n",
		exits, RSCTL_EXIT_USAGE);
}

static void log_help(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: rsctl log <verify|inspect|dump> DIR [options]\n"
		   "       rsctl log <verify|inspect|dump> --help\n\n"
		   "Read a node's storage files offline.\n\n");
	for (i = 0; i < LOG_SUBCOMMAND_COUNT; i++)
		fprintf(f, "  %s\n      %s\n", log_subcommands[i].synopsis,
			log_subcommands[i].summary);
	fprintf(f, "\n");
	log_help_dir(f);
	log_help_exits(f, "  0  success\n"
			  "  1  corrupt or unreadable data (verify: also a "
			  "torn tail or a gap);\n"
			  "     each command's --help says exactly\n");
}

static void log_subcommand_help(const struct log_subcommand *sc)
{
	printf("Usage: %s\n\n%s\n", sc->synopsis, sc->help);
	log_help_dir(stdout);
	log_help_exits(stdout, sc->exits);
}

int rsctl_log_run(int argc, char **argv)
{
	const struct log_subcommand *sc = NULL;
	char help_cmd[64];
	struct log_args a;
	struct log_dirs d;
	size_t i;
	int rv;

	assert(argc >= 1 && strcmp(argv[0], "log") == 0);
	if (argc < 2)
		return rsctl_usage_errorf("rsctl log",
					  "missing subcommand "
					  "(verify, inspect or dump)");
	if (rsctl_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		log_help(stdout);
		return RSCTL_EXIT_OK;
	}
	for (i = 0; i < LOG_SUBCOMMAND_COUNT && sc == NULL; i++)
		if (strcmp(argv[1], log_subcommands[i].name) == 0)
			sc = &log_subcommands[i];
	if (sc == NULL)
		return rsctl_usage_errorf("rsctl log",
					  "unknown log subcommand '%s'",
					  argv[1]);
	snprintf(help_cmd, sizeof help_cmd, "rsctl log %s", sc->name);
	rv = log_parse_args(argc - 1, argv + 1, sc->opts, help_cmd, &a);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (a.help) {
		log_subcommand_help(sc);
		return RSCTL_EXIT_OK;
	}
	rv = log_resolve(a.dir, help_cmd, &d);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	return sc->run(&a, &d);
}

