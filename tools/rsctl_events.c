/*
 * rsctl events: read the audit logs (coordinator/audit.h) of one or more
 * nodes and print their events merged by time.
 *
 *   rsctl events DIR... [--node N] [--since SEQ] [--event NAME] [--json]
 *                       [--follow]
 *
 * Strictly read-only: files are opened O_RDONLY (through fileio), only for
 * the time of one read, and nothing is created, locked or changed, so it is
 * safe on a running node.  tests/integration/rsctl_events.sh checks that
 * every file stays byte-identical.
 *
 * Each DIR is one stream, read file by file in file-number order and line
 * by line; the streams are merged by timestamp (then node, then seq), and a
 * stream's own order (file order, which is seq order) is never changed,
 * even if that node's clock stepped back.  A line is taken only once its LF
 * is there, so a line being written is never half-read.  Before reading a
 * file the directory is listed: if a newer file exists then, the writer
 * had finished this one (it fsyncs a file before starting the next), so
 * bytes without an LF at its end are a torn line, not one being written.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "coordinator/audit.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "storage/fileio.h"
#include "tools/rsctl.h"

#define EV_HELP_CMD "rsctl events"
#define EV_PATH_MAX 4096
/* A directory, '/', a file name. */
#define EV_FILE_PATH_MAX (EV_PATH_MAX + AUDIT_FILE_NAME_MAX + 1)
#define EV_FILTER_MAX 16
#define EV_POLL_MS 200
/* Unreadable lines warned about per stream, then only counted. */
#define EV_WARN_MAX 20u

struct ev_args {
	const char **dirs;
	int ndirs;
	uint64_t nodes[EV_FILTER_MAX];
	unsigned nnodes;
	const char *events[EV_FILTER_MAX];
	unsigned nevents;
	uint64_t since; /* seq >= since; 0 = all */
	bool json;
	bool follow;
	bool help;
};

/* One DIR: a position in its files and the next event to print. */
struct ev_stream {
	const char *arg; /* DIR as given */
	char dir[EV_PATH_MAX];
	uint64_t file;   /* the file being read; 0 before the first */
	uint64_t off;    /* file offset of buf[0] */
	char *buf;       /* the file from off to where it ended when read */
	size_t len;
	size_t pos;      /* parsed up to here */
	size_t cap;
	uint64_t lineno; /* lines taken from the current file */
	uint64_t last_seq;
	uint64_t warned;
	bool have_head;
	struct audit_line head;
	const char *head_text; /* in buf; valid until the next read */
	size_t head_len;
};

struct ev_run {
	const struct ev_args *args;
	uint64_t printed;
	uint64_t bad_lines;   /* unreadable lines skipped */
	uint64_t read_errors; /* files or directories that could not be read */
	bool header_done;
};

static volatile sig_atomic_t ev_stop;

/* ---- arguments ---- */

static int ev_parse_u64_opt(const char *name, const char *v, uint64_t *out)
{
	if (!cliopt_parse_u64(v, out))
		return rsctl_usage_errorf(EV_HELP_CMD,
					  "%s: '%s' is not a number", name, v);
	return RSCTL_EXIT_OK;
}

/* One option with a value at argv[*i]: -1 if it is none of them, else an
 * exit code. */
static int ev_parse_value_opt(int argc, char **argv, int *i,
			      struct ev_args *a)
{
	static const char *const names[] = {"--node", "--since", "--event"};
	bool missing;

	for (int k = 0; k < 3; k++) {
		const char *v = cliopt_value(argc, argv, i, names[k],
						&missing);
		if (missing)
			return rsctl_usage_errorf(EV_HELP_CMD, "%s needs a value",
						  names[k]);
		if (v == NULL)
			continue;
		if (k == 1)
			return ev_parse_u64_opt(names[k], v, &a->since);
		if ((k == 0 ? a->nnodes : a->nevents) >= EV_FILTER_MAX)
			return rsctl_usage_errorf(EV_HELP_CMD,
						  "%s: at most %d of them",
						  names[k], EV_FILTER_MAX);
		if (k == 0)
			return ev_parse_u64_opt(names[k], v,
						&a->nodes[a->nnodes++]);
		if (v[0] == '\0')
			return rsctl_usage_errorf(EV_HELP_CMD,
						  "--event needs a name");
		a->events[a->nevents++] = v;
		return RSCTL_EXIT_OK;
	}
	return -1;
}

static int ev_parse_args(int argc, char **argv, struct ev_args *a)
{
	bool options_done = false;
	int i, rv;

	memset(a, 0, sizeof *a);
	a->dirs = calloc((size_t)argc, sizeof *a->dirs);
	if (a->dirs == NULL) {
		rsctl_errorf("out of memory");
		return RSCTL_EXIT_FAIL;
	}
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			a->dirs[a->ndirs++] = arg;
		} else if (strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (rsctl_is_help(arg)) {
			a->help = true;
			return RSCTL_EXIT_OK;
		} else if (strcmp(arg, "--json") == 0) {
			a->json = true;
		} else if (strcmp(arg, "--follow") == 0) {
			a->follow = true;
		} else if ((rv = ev_parse_value_opt(argc, argv, &i, a)) >= 0) {
			if (rv != RSCTL_EXIT_OK)
				return rv;
		} else {
			return rsctl_usage_errorf(EV_HELP_CMD,
						  "unknown option '%s'", arg);
		}
	}
	if (a->ndirs == 0)
		return rsctl_usage_errorf(EV_HELP_CMD, "missing DIR");
	return RSCTL_EXIT_OK;
}

static bool ev_match(const struct ev_args *a, const struct audit_line *l)
{
	bool node_ok = a->nnodes == 0, event_ok = a->nevents == 0;

	for (unsigned i = 0; i < a->nnodes && !node_ok; i++)
		node_ok = a->nodes[i] == l->node;
	for (unsigned i = 0; i < a->nevents && !event_ok; i++)
		event_ok = strcmp(a->events[i], l->event) == 0;
	return node_ok && event_ok && l->seq >= a->since;
}

/* ---- finding the files ---- */

static bool ev_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The smallest audit file number above `after` in dir (0: none).  Names
 * only; the files are not opened. */
static int ev_next_file(const char *dir, uint64_t after, uint64_t *next,
			char *errmsg)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	uint64_t num;

	*next = 0;
	if (dp == NULL)
		return rs_errmsg_errno(errmsg, errno, "list %s", dir);
	while ((e = readdir(dp)) != NULL)
		if (audit_file_name_parse(e->d_name, &num) && num > after &&
		    (*next == 0 || num < *next))
			*next = num;
	closedir(dp);
	return RS_OK;
}

/* DIR is a data dir holding audit/, or an audit dir itself. */
static int ev_resolve(const char *arg, struct ev_stream *s)
{
	char errmsg[RS_ERRMSG_SIZE];
	const char *base = strrchr(arg, '/');
	uint64_t first;
	int n;

	struct stat st;

	memset(s, 0, sizeof *s);
	s->arg = arg;
	if (stat(arg, &st) != 0)
		return rsctl_usage_errorf(EV_HELP_CMD, "%s: %s", arg,
					  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return rsctl_usage_errorf(EV_HELP_CMD, "%s: not a directory",
					  arg);
	n = snprintf(s->dir, sizeof s->dir, "%s/%s", arg, AUDIT_DIR_NAME);
	if (n < 0 || (size_t)n >= sizeof s->dir - AUDIT_FILE_NAME_MAX)
		return rsctl_usage_errorf(EV_HELP_CMD, "%s: path too long",
					  arg);
	if (ev_is_dir(s->dir))
		return RSCTL_EXIT_OK;
	snprintf(s->dir, sizeof s->dir, "%s", arg);
	base = base != NULL ? base + 1 : arg;
	if (strcmp(base, AUDIT_DIR_NAME) == 0 ||
	    (ev_next_file(arg, 0, &first, errmsg) == RS_OK && first != 0))
		return RSCTL_EXIT_OK;
	return rsctl_usage_errorf(EV_HELP_CMD,
				  "%s: not a node data directory (no %s/ in "
				  "it) nor an audit directory (no "
				  "audit-*.ndjson files)",
				  arg, AUDIT_DIR_NAME);
}

/* ---- reading a stream ---- */

static void ev_switch(struct ev_stream *s, uint64_t file)
{
	assert(file > s->file);
	s->file = file;
	s->off = 0;
	s->len = 0;
	s->pos = 0;
	s->lineno = 0;
}

static void ev_file_path(char *out, const struct ev_stream *s)
{
	char name[AUDIT_FILE_NAME_MAX];
	audit_file_name(name, sizeof name, s->file);
	snprintf(out, EV_FILE_PATH_MAX, "%s/%s", s->dir, name);
}

/* Read the current file from where parsing stopped to its end: *grew is
 * how many bytes are new.  RS_ENOTFOUND if the file is gone. */
static int ev_read(struct ev_stream *s, size_t *grew, char *errmsg)
{
	char path[EV_FILE_PATH_MAX];
	uint64_t from = s->off + s->pos;
	size_t had = s->len - s->pos, got = 0, want;
	off_t size;
	int fd, rv;

	assert(s->file != 0 && s->pos <= s->len);
	*grew = 0;
	ev_file_path(path, s);
	rv = fileio_open(path, O_RDONLY, &fd, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = fileio_size(fd, &size, errmsg);
	if (rv == RS_OK && (uint64_t)size < from) {
		/* Cut below what was parsed: not by the writer, which only
		 * cuts a line without its LF.  Go on from the new end. */
		rsctl_errorf("%s: shrank to %lld bytes under the reader",
			     path, (long long)size);
		from = (uint64_t)size;
		had = 0;
	}
	want = rv == RS_OK ? (size_t)((uint64_t)size - from) : 0;
	if (rv == RS_OK && want > s->cap) {
		char *p = realloc(s->buf, want);
		if (p == NULL) {
			rv = RS_ENOMEM;
			rs_errmsg_printf(errmsg, "%s: out of memory", path);
		} else {
			s->buf = p;
			s->cap = want;
		}
	}
	if (rv == RS_OK && want > 0)
		rv = fileio_pread(fd, s->buf, want, (off_t)from, &got, errmsg);
	fileio_close(fd);
	if (rv != RS_OK)
		return rv;
	assert(got <= want);
	s->off = from;
	s->pos = 0;
	s->len = got;
	*grew = got > had ? got - had : 0;
	return RS_OK;
}

static void ev_warn_line(struct ev_stream *s, struct ev_run *r,
			 uint64_t off, const char *why)
{
	char name[AUDIT_FILE_NAME_MAX];

	r->bad_lines++;
	if (++s->warned > EV_WARN_MAX)
		return;
	audit_file_name(name, sizeof name, s->file);
	rsctl_errorf("%s/%s: line %" PRIu64 " (offset %" PRIu64
		     "): skipped unreadable line: %s%s",
		     s->dir, name, s->lineno, off, why,
		     s->warned == EV_WARN_MAX ? " (further ones only counted)"
					      : "");
}

/* Take the complete lines in buf until one is a valid event. */
static bool ev_take(struct ev_stream *s, struct ev_run *r)
{
	char why[RS_ERRMSG_SIZE];
	struct audit_line l;

	assert(s->pos <= s->len && !s->have_head);
	while (s->pos < s->len) {
		char *p = s->buf + s->pos;
		char *nl = memchr(p, '\n', s->len - s->pos);
		uint64_t off = s->off + s->pos;
		size_t n;

		if (nl == NULL)
			return false; /* wait for its LF */
		n = (size_t)(nl - p);
		s->pos += n + 1;
		s->lineno++;
		if (audit_line_parse(p, n, &l, NULL, NULL, why) != RS_OK) {
			ev_warn_line(s, r, off, why);
			continue;
		}
		if (s->last_seq != 0 && l.seq != s->last_seq + 1)
			rsctl_errorf("%s: node %" PRIu64 ": seq %" PRIu64
				     " follows %" PRIu64 " (events missing or "
				     "out of order)",
				     s->arg, l.node, l.seq, s->last_seq);
		s->last_seq = l.seq;
		s->head = l;
		s->head_text = p;
		s->head_len = n;
		assert(s->pos <= s->len && p[n] == '\n');
		return true;
	}
	return false;
}

/* The current file is done and `next` exists: what is left in it is a
 * torn line (see the file comment). */
static void ev_leave_file(struct ev_stream *s, struct ev_run *r, int read_rv,
			  const char *errmsg)
{
	char path[EV_FILE_PATH_MAX];

	ev_file_path(path, s);
	if (read_rv == RS_ENOTFOUND) {
		r->read_errors++;
		rsctl_errorf("%s: deleted before it was read to the end "
			     "(retention); events may be missing", path);
	} else if (read_rv != RS_OK) {
		r->read_errors++;
		rsctl_errorf("%s", errmsg);
	} else if (s->pos < s->len) {
		s->lineno++;
		ev_warn_line(s, r, s->off + s->pos,
			     "incomplete line at the end of a finished file");
	}
}

/* Move on: new data in the current file, or the next file.  False if
 * there is nothing more for now. */
static bool ev_advance(struct ev_stream *s, struct ev_run *r)
{
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t next;
	size_t grew = 0;
	int rv;

	/* List first: a file that has a successor was complete before. */
	rv = ev_next_file(s->dir, s->file, &next, errmsg);
	if (rv != RS_OK) {
		r->read_errors++;
		rsctl_errorf("%s", errmsg);
		return false;
	}
	assert(next == 0 || next > s->file);
	if (s->file == 0) {
		if (next != 0)
			ev_switch(s, next);
		return next != 0;
	}
	rv = ev_read(s, &grew, errmsg);
	if (rv == RS_OK && grew > 0)
		return true;
	if (next == 0) {
		if (rv != RS_OK && rv != RS_ENOTFOUND) {
			r->read_errors++;
			rsctl_errorf("%s", errmsg);
		}
		return false;
	}
	ev_leave_file(s, r, rv, errmsg);
	ev_switch(s, next);
	return true;
}

static bool ev_stream_next(struct ev_stream *s, struct ev_run *r)
{
	s->have_head = false;
	while (!s->have_head) {
		if (ev_take(s, r))
			s->have_head = true;
		else if (!ev_advance(s, r))
			return false;
	}
	return true;
}

/* ---- printing ---- */

/* A key printed bare when it is plain printable ASCII without '=' or a
 * space, else as its JSON string (a crafted file cannot put control
 * characters on the terminal). */
static bool ev_key_plain(const char *key)
{
	for (const char *p = key; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '=')
			return false;
	return *key != '\0';
}

/* A value as compact ASCII JSON text, as the writer stores it (malloc'd;
 * NULL when out of memory). */
static char *ev_value_text(const json_t *value)
{
	return rs_json_dump(value, RS_JSON_COMPACT);
}

/* One member as key=JSON. */
static void ev_member_print(void *ctx, const char *key, const json_t *value)
{
	bool *first = ctx;
	json_t *quoted = ev_key_plain(key) ? NULL : json_string(key);
	char *k = quoted != NULL ? ev_value_text(quoted) : NULL;
	char *v = ev_value_text(value);

	printf("%s%s=%s", *first ? "" : " ", k != NULL ? k : key,
	       v != NULL ? v : "(out of memory)");
	*first = false;
	free(v);
	free(k);
	json_decref(quoted);
}

static void ev_print(struct ev_run *r, const struct ev_stream *s)
{
	const struct audit_line *l = &s->head;
	struct audit_line again;
	bool first = true;
	int rv;

	assert(s->have_head);
	r->printed++;
	if (r->args->json) {
		fwrite(s->head_text, 1, s->head_len, stdout);
		putchar('\n');
		return;
	}
	if (!r->header_done) {
		printf("%-24s %4s %8s %-22s %s\n", "TIME", "NODE", "SEQ",
		       "EVENT", "DETAILS");
		r->header_done = true;
	}
	printf("%-24s %4" PRIu64 " %8" PRIu64 " %-22s ", l->ts, l->node,
	       l->seq, l->event);
	rv = audit_line_parse(s->head_text, s->head_len, &again,
			      ev_member_print, &first, NULL);
	assert(rv == RS_OK && again.seq == l->seq);
	(void)rv;
	putchar('\n');
}

/* a before b: time, then node, then seq. */
static bool ev_before(const struct audit_line *a, const struct audit_line *b)
{
	if (a->ts_ms != b->ts_ms)
		return a->ts_ms < b->ts_ms;
	if (a->node != b->node)
		return a->node < b->node;
	return a->seq < b->seq;
}

/* Print everything readable now, merged. */
static void ev_drain(struct ev_stream *ss, int n, struct ev_run *r)
{
	for (int i = 0; i < n; i++)
		if (!ss[i].have_head)
			ev_stream_next(&ss[i], r);
	for (;;) {
		int best = -1;
		for (int i = 0; i < n; i++)
			if (ss[i].have_head &&
			    (best < 0 || ev_before(&ss[i].head, &ss[best].head)))
				best = i;
		if (best < 0)
			return;
		/* Filter after merging, so that a filtered listing is always
		 * a subsequence of the full one. */
		if (ev_match(r->args, &ss[best].head))
			ev_print(r, &ss[best]);
		ev_stream_next(&ss[best], r);
	}
}

/* What a stream holds past its last LF once everything was read: a line
 * being written, or torn by a crash.  Not a failure. */
static void ev_note_partial(const struct ev_stream *s)
{
	char path[EV_FILE_PATH_MAX];

	if (s->file == 0 || s->pos >= s->len)
		return;
	ev_file_path(path, s);
	rsctl_errorf("note: %s: incomplete last line at offset %" PRIu64
		     " (%zu bytes): being written, or torn by a crash (the "
		     "node cuts it when it next opens the log)",
		     path, s->off + s->pos, s->len - s->pos);
}

/* ---- the command ---- */

static void ev_on_signal(int sig)
{
	(void)sig;
	ev_stop = 1;
}

static int ev_follow(struct ev_stream *ss, int n, struct ev_run *r)
{
	struct sigaction sa, old_int, old_term;
	struct timespec ts = {0, EV_POLL_MS * 1000000L};
	int rv = RSCTL_EXIT_OK;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ev_on_signal; /* no SA_RESTART: wake the sleep */
	sigemptyset(&sa.sa_mask);
	ev_stop = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	while (!ev_stop) {
		ev_drain(ss, n, r);
		if (fflush(stdout) != 0) {
			rsctl_errorf("write to stdout: %s", strerror(errno));
			rv = RSCTL_EXIT_FAIL;
			break;
		}
		nanosleep(&ts, NULL);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return rv;
}

static int ev_once(struct ev_stream *ss, int n, struct ev_run *r)
{
	ev_drain(ss, n, r);
	for (int i = 0; i < n; i++)
		ev_note_partial(&ss[i]);
	if (r->bad_lines > 0 || r->read_errors > 0)
		rsctl_errorf("%" PRIu64 " unreadable line%s skipped, %" PRIu64
			     " read error%s",
			     r->bad_lines, r->bad_lines == 1 ? "" : "s",
			     r->read_errors, r->read_errors == 1 ? "" : "s");
	if (r->printed == 0)
		rsctl_errorf("no events found%s",
			     r->args->nnodes || r->args->nevents ||
				     r->args->since
				     ? " (matching the filters)"
				     : "");
	return r->printed == 0 || r->bad_lines > 0 || r->read_errors > 0
		       ? RSCTL_EXIT_FAIL
		       : RSCTL_EXIT_OK;
}

static void ev_help(FILE *f)
{
	fprintf(f,
		"Usage: rsctl events DIR... [--node N] [--since SEQ] "
		"[--event NAME]\n"
		"                           [--json] [--follow]\n\n"
		"Print the audit events of one or more nodes, oldest first.\n\n"
		"Each DIR is a node's data directory (holding audit/) or an "
		"audit\n"
		"directory (holding audit-NNNNNNNN.ndjson files).  The files "
		"are only\n"
		"read (opened O_RDONLY), never created, locked or changed: "
		"safe on a\n"
		"running node.  docs/audit.md describes the format and the "
		"events.\n\n"
		"Options:\n"
		"  --node N      only events of node N (repeatable)\n"
		"  --since SEQ   only events with seq >= SEQ; seq counts per "
		"node\n"
		"  --event NAME  only events named NAME (repeatable)\n"
		"  --json        print each event as its line from the file "
		"(NDJSON)\n"
		"  --follow      then keep reading new lines, every %d ms and "
		"across\n"
		"                file rotation, until SIGINT or SIGTERM\n\n"
		"Output: a table TIME NODE SEQ EVENT DETAILS, DETAILS being "
		"the other\n"
		"members as key=value with the value as JSON.  The DIRs are "
		"merged by\n"
		"time (then node, then seq); each node's own events stay in "
		"seq order\n"
		"even if its clock stepped back.  With --follow, lines that "
		"arrive\n"
		"later are printed as they come.\n\n"
		"Lines that are not valid events are skipped with a warning "
		"naming\n"
		"the file, line and offset.  An incomplete last line in a "
		"node's\n"
		"newest file (being written, or left by a crash) is only "
		"noted, and\n"
		"so is a jump in a node's seq (events missing or out of "
		"order).\n\n",
		EV_POLL_MS);
	fprintf(f,
		"Exit codes:\n"
		"  %d  events were printed and every line was readable; with "
		"--follow,\n"
		"     stopped by SIGINT or SIGTERM\n"
		"  %d  no events found (after the filters), or unreadable "
		"lines or files\n"
		"     were skipped (the rest is printed)\n"
		"  %d  usage error: bad arguments, or a DIR missing or "
		"holding no audit\n"
		"     log\n",
		RSCTL_EXIT_OK, RSCTL_EXIT_FAIL, RSCTL_EXIT_USAGE);
}

int rsctl_events_run(int argc, char **argv)
{
	struct ev_stream *ss = NULL;
	struct ev_args a;
	struct ev_run r;
	int i, rv;

	assert(argc >= 1 && strcmp(argv[0], "events") == 0);
	rv = ev_parse_args(argc, argv, &a);
	if (rv == RSCTL_EXIT_OK && a.help)
		ev_help(stdout);
	if (rv != RSCTL_EXIT_OK || a.help)
		goto out;
	ss = calloc((size_t)a.ndirs, sizeof *ss);
	if (ss == NULL) {
		rsctl_errorf("out of memory");
		rv = RSCTL_EXIT_FAIL;
		goto out;
	}
	for (i = 0; i < a.ndirs && rv == RSCTL_EXIT_OK; i++)
		rv = ev_resolve(a.dirs[i], &ss[i]);
	if (rv != RSCTL_EXIT_OK)
		goto out;
	memset(&r, 0, sizeof r);
	r.args = &a;
	rv = a.follow ? ev_follow(ss, a.ndirs, &r) : ev_once(ss, a.ndirs, &r);
out:
	for (i = 0; ss != NULL && i < a.ndirs; i++)
		free(ss[i].buf);
	free(ss);
	free(a.dirs);
	return rv;
}
