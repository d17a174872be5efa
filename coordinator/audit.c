/*
 * audit: see audit.h.
 *
 * Threads.  The loop thread owns everything in struct audit except the
 * batch in flight (a->flight), which belongs to the thread-pool worker from
 * uv_queue_work() until the after-work callback.  The worker also reads
 * a->dir (fixed at open) and a->files[0..unlink_count) (changed only on the
 * loop, and only while no batch is in flight).  libuv's work queue orders
 * the hand-over both ways, so there is no lock.
 *
 * One exception, for the fail-fast path: audit_flush_sync waits on the loop
 * thread for the worker's flight_done flag (release/acquire), which
 * publishes the batch's results early; see there.
 *
 * Lines are checked twice: audit_event parses the line it formatted before
 * queueing it, and open parses every line it reads back.  The parser is the
 * one readers use (audit_line_parse), so the writer cannot queue a line
 * that `rsctl events` would skip.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include "coordinator/audit.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <time.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/bytes.h"
#include "storage/fileio.h"

/* Corrupt lines warned about one by one, per file, at open. */
#define AUDIT_WARN_LINES_MAX 10u
/* JSON nesting a reader accepts inside one line. */
#define AUDIT_JSON_DEPTH_MAX 32
/* audit_flush_sync: how long to wait for a batch in flight, in 1 ms naps. */
#define AUDIT_SYNC_WAIT_MS 5000

/* ---- the object and its state machine ---- */

enum audit_state {
	AUDIT_IDLE,     /* nothing queued, no timer, no job */
	AUDIT_ARMED,    /* lines queued; the batch timer runs */
	AUDIT_FLUSHING, /* a batch is in the thread pool */
	AUDIT_CLOSING,  /* the close job, then the timer handle's close */
	AUDIT_CLOSED,   /* being freed */
	AUDIT_STATE__COUNT
};

__attribute__((unused)) /* only read by assert() */
static const bool audit_transitions[AUDIT_STATE__COUNT][AUDIT_STATE__COUNT] = {
	[AUDIT_IDLE] = {[AUDIT_ARMED] = true,
			[AUDIT_FLUSHING] = true,
			[AUDIT_CLOSING] = true},
	[AUDIT_ARMED] = {[AUDIT_FLUSHING] = true, [AUDIT_IDLE] = true},
	[AUDIT_FLUSHING] = {[AUDIT_IDLE] = true},
	[AUDIT_CLOSING] = {[AUDIT_CLOSED] = true},
};

/* Lines queued together, and what the worker did with them. */
struct audit_batch {
	struct rs_buf buf;
	uint64_t events;   /* lines in buf */
	uint64_t last_seq; /* of the last line */
	/* inputs for the worker, set when the batch starts */
	int fd;
	uint64_t offset;
	bool rotate;
	uint64_t new_file;     /* the file number a rotation creates */
	unsigned unlink_count; /* oldest files retention deletes */
	/* results of the worker */
	int status;
	int new_fd;
	unsigned unlinked;
	uint64_t fsync_ns; /* how long the batch's fsync took */
	char errmsg[RS_ERRMSG_SIZE];
	char warnmsg[RS_ERRMSG_SIZE]; /* a retention failure: not fatal */
};

struct audit {
	uv_loop_t *loop;
	char *dir; /* <data-dir>/audit */
	uint64_t node_id;
	struct audit_options opts;
	enum audit_state state;
	bool close_requested;
	bool sealed; /* audit_flush_sync ran: nothing more is written */
	audit_close_cb close_cb;
	void *close_arg;
	int failed;
	char failed_msg[RS_ERRMSG_SIZE];
	uint64_t *files; /* file numbers, ascending; the last is active */
	unsigned nfiles;
	unsigned files_cap;
	int fd;        /* the active file */
	uint64_t size; /* of the active file */
	struct audit_batch pending;
	struct audit_batch flight;
	atomic_bool flight_done; /* the worker finished with the flight */
	uv_timer_t timer;
	uv_work_t work;
	struct audit_report report;
	struct audit_stats stats;
};

static void audit_set_state(struct audit *a, enum audit_state to)
{
	assert(to < AUDIT_STATE__COUNT);
	assert(audit_transitions[a->state][to]);
	a->state = to;
}

static void audit_logf(const struct audit *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void audit_logf(const struct audit *a, const char *fmt, ...)
{
	char msg[2 * RS_ERRMSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (a->opts.log_fn != NULL)
		a->opts.log_fn(a->opts.log_arg, msg);
	else
		fprintf(stderr, "audit: %s\n", msg);
}

/* ---- names and paths ---- */

void audit_file_name(char *out, size_t size, uint64_t file_num)
{
	int n = snprintf(out, size, "audit-%08" PRIu64 ".ndjson", file_num);
	assert(n > 0 && (size_t)n < size);
	(void)n;
}

bool audit_file_name_parse(const char *name, uint64_t *file_num)
{
	static const char prefix[] = "audit-", suffix[] = ".ndjson";
	size_t len = strlen(name), digits;
	char canonical[AUDIT_FILE_NAME_MAX];
	uint64_t v = 0;
	const char *p;

	if (len < sizeof prefix - 1 + 8 + sizeof suffix - 1 ||
	    strncmp(name, prefix, sizeof prefix - 1) != 0 ||
	    strcmp(name + len - (sizeof suffix - 1), suffix) != 0)
		return false;
	digits = len - (sizeof prefix - 1) - (sizeof suffix - 1);
	if (digits > 20)
		return false;
	for (p = name + sizeof prefix - 1; digits > 0; p++, digits--) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	/* Only the names the writer gives: numbers from 1, and
	 * "audit-000000001.ndjson" is not file 1. */
	audit_file_name(canonical, sizeof canonical, v);
	if (v == 0 || strcmp(canonical, name) != 0)
		return false;
	*file_num = v;
	return true;
}

static void audit_file_path(char *out, const struct audit *a,
			    uint64_t file_num)
{
	char name[AUDIT_FILE_NAME_MAX];
	int n;

	audit_file_name(name, sizeof name, file_num);
	n = snprintf(out, PATH_MAX, "%s/%s", a->dir, name);
	assert(n > 0 && n < PATH_MAX); /* the dir was checked at open */
	(void)n;
}

/* ---- JSON: strings out, lines in ---- */

/* The JSON form of one byte; returns its length (1, 2 or 6). */
static size_t audit_json_escape(char *out, unsigned char c)
{
	static const char shorts[] = "\"\"\\\\\bb\ff\nn\rr\tt";
	const char *s;

	for (s = shorts; *s != '\0'; s += 2) {
		if ((unsigned char)s[0] == c) {
			out[0] = '\\';
			out[1] = s[1];
			return 2;
		}
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	memcpy(out, "\\u00", 4);
	bytes_hex_encode(&c, 1, out + 4);
	return 6;
}

size_t audit_json_str(char *out, size_t size, const char *s)
{
	size_t need = 2, used = 1;
	bool cut = false;
	char esc[6];

	assert(out != NULL && s != NULL);
	assert(size >= 3);
	out[0] = '"';
	for (; *s != '\0'; s++) {
		size_t n = audit_json_escape(esc, (unsigned char)*s);
		need += n;
		/* room for it, the closing quote and the NUL */
		if (!cut && used + n + 2 <= size) {
			memcpy(out + used, esc, n);
			used += n;
		} else {
			cut = true;
		}
	}
	out[used++] = '"';
	out[used] = '\0';
	assert(used < size && used <= need);
	return need;
}

/*
 * A small strict JSON scanner over one line.  It validates and measures,
 * never decodes: values are handed on as raw text.
 */
struct jscan {
	const char *p;
	size_t len;
	size_t pos;
	const char *why; /* the first problem */
};

static bool js_fail(struct jscan *s, const char *why)
{
	if (s->why == NULL)
		s->why = why;
	return false;
}

static bool js_at(const struct jscan *s, char c)
{
	return s->pos < s->len && s->p[s->pos] == c;
}

/* NDJSON: a line never holds CR or LF, so only space and tab separate. */
static void js_ws(struct jscan *s)
{
	while (js_at(s, ' ') || js_at(s, '\t'))
		s->pos++;
}

static bool js_hex4(struct jscan *s)
{
	for (int i = 0; i < 4; i++, s->pos++) {
		char c = s->pos < s->len ? s->p[s->pos] : '\0';
		if (bytes_hex_digit_value(c) < 0)
			return js_fail(s, "bad \\u escape");
	}
	return true;
}

static bool js_string(struct jscan *s)
{
	assert(js_at(s, '"'));
	s->pos++;
	while (s->pos < s->len) {
		unsigned char c = (unsigned char)s->p[s->pos++];
		if (c == '"')
			return true;
		if (c < 0x20)
			return js_fail(s, "control character in a string");
		if (c != '\\')
			continue;
		if (s->pos >= s->len)
			break;
		c = (unsigned char)s->p[s->pos++];
		if (c == 'u') {
			if (!js_hex4(s))
				return false;
		} else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
			return js_fail(s, "bad escape in a string");
		}
	}
	return js_fail(s, "unterminated string");
}

static size_t js_digits(struct jscan *s)
{
	size_t start = s->pos;
	while (s->pos < s->len && s->p[s->pos] >= '0' && s->p[s->pos] <= '9')
		s->pos++;
	return s->pos - start;
}

static bool js_number(struct jscan *s)
{
	if (js_at(s, '-'))
		s->pos++;
	if (js_at(s, '0'))
		s->pos++;
	else if (js_digits(s) == 0)
		return js_fail(s, "bad number");
	if (js_at(s, '.')) {
		s->pos++;
		if (js_digits(s) == 0)
			return js_fail(s, "bad number fraction");
	}
	if (js_at(s, 'e') || js_at(s, 'E')) {
		s->pos++;
		if (js_at(s, '+') || js_at(s, '-'))
			s->pos++;
		if (js_digits(s) == 0)
			return js_fail(s, "bad number exponent");
	}
	return true;
}

static bool js_literal(struct jscan *s, const char *word)
{
	size_t n = strlen(word);
	if (s->len - s->pos < n || memcmp(s->p + s->pos, word, n) != 0)
		return js_fail(s, "unexpected character");
	s->pos += n;
	return true;
}

static bool js_value(struct jscan *s, int depth);

/* An object or array body after its opening bracket. */
static bool js_container(struct jscan *s, int depth, char close)
{
	js_ws(s);
	if (js_at(s, close)) {
		s->pos++;
		return true;
	}
	for (;;) {
		js_ws(s);
		if (close == '}') {
			if (!js_at(s, '"'))
				return js_fail(s, "expected a member name");
			if (!js_string(s))
				return false;
			js_ws(s);
			if (!js_at(s, ':'))
				return js_fail(s, "expected ':'");
			s->pos++;
			js_ws(s);
		}
		if (!js_value(s, depth))
			return false;
		js_ws(s);
		if (js_at(s, close)) {
			s->pos++;
			return true;
		}
		if (!js_at(s, ','))
			return js_fail(s, close == '}' ? "expected ',' or '}'"
						       : "expected ',' or ']'");
		s->pos++;
	}
}

static bool js_value(struct jscan *s, int depth)
{
	char c = s->pos < s->len ? s->p[s->pos] : '\0';

	if (c == '"')
		return js_string(s);
	if (c == '-' || (c >= '0' && c <= '9'))
		return js_number(s);
	if (c == '{' || c == '[') {
		if (depth >= AUDIT_JSON_DEPTH_MAX)
			return js_fail(s, "nested too deep");
		s->pos++;
		return js_container(s, depth + 1, c == '{' ? '}' : ']');
	}
	if (c == 't')
		return js_literal(s, "true");
	if (c == 'f')
		return js_literal(s, "false");
	if (c == 'n')
		return js_literal(s, "null");
	return js_fail(s, s->pos < s->len ? "unexpected character"
					  : "unexpected end of line");
}

/* Called for each top-level member; false stops the scan (s->why set). */
typedef bool (*js_member_fn)(void *ctx, struct jscan *s, const char *key,
			     size_t key_len, const char *val, size_t val_len);

/* One member "key": value at s->pos, handed to fn. */
static bool js_member(struct jscan *s, js_member_fn fn, void *ctx)
{
	size_t k, k_len, v;

	if (!js_at(s, '"'))
		return js_fail(s, "expected a member name");
	k = s->pos + 1;
	if (!js_string(s))
		return false;
	k_len = s->pos - 1 - k;
	js_ws(s);
	if (!js_at(s, ':'))
		return js_fail(s, "expected ':'");
	s->pos++;
	js_ws(s);
	v = s->pos;
	if (!js_value(s, 1))
		return false;
	return fn(ctx, s, s->p + k, k_len, s->p + v, s->pos - v);
}

/* The line as one object, member by member. */
static bool js_top(struct jscan *s, js_member_fn fn, void *ctx)
{
	bool done;

	js_ws(s);
	if (!js_at(s, '{'))
		return js_fail(s, "not a JSON object");
	s->pos++;
	js_ws(s);
	done = js_at(s, '}');
	if (done)
		s->pos++;
	while (!done) {
		js_ws(s);
		if (!js_member(s, fn, ctx))
			return false;
		js_ws(s);
		done = js_at(s, '}');
		if (!done && !js_at(s, ','))
			return js_fail(s, "expected ',' or '}'");
		s->pos++;
	}
	js_ws(s);
	if (s->pos != s->len)
		return js_fail(s, "text after the object");
	return true;
}

/* ---- timestamps ---- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant). */
static int64_t audit_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool audit_ts_field(const char *p, int n, unsigned lo, unsigned hi,
			   unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = v;
	return v >= lo && v <= hi;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (exactly) to milliseconds since the epoch. */
static bool audit_ts_parse(const char *p, size_t len, int64_t *ms)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30,
					 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h, mi, s, f;

	if (len != AUDIT_TS_LEN || p[4] != '-' || p[7] != '-' ||
	    p[10] != 'T' || p[13] != ':' || p[16] != ':' || p[19] != '.' ||
	    p[23] != 'Z')
		return false;
	if (!audit_ts_field(p, 4, 0, 9999, &y) ||
	    !audit_ts_field(p + 5, 2, 1, 12, &mo) ||
	    !audit_ts_field(p + 8, 2, 1, mdays[mo - 1], &d) ||
	    !audit_ts_field(p + 11, 2, 0, 23, &h) ||
	    !audit_ts_field(p + 14, 2, 0, 59, &mi) ||
	    !audit_ts_field(p + 17, 2, 0, 60, &s) ||
	    !audit_ts_field(p + 20, 3, 0, 999, &f))
		return false;
	*ms = ((audit_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
	      (int64_t)s * 1000 + f;
	return true;
}

/* The current UTC time in the line's form; out holds AUDIT_TS_LEN + 1. */
static void audit_ts_now(char *out)
{
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (tm.tm_year < 0 || tm.tm_year + 1900 > 9999)
		memset(&tm, 0, sizeof tm); /* a clock this wrong: 1900 */
	n = snprintf(out, AUDIT_TS_LEN + 1, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		     (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		     tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		     tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
	assert(n == (int)AUDIT_TS_LEN);
	(void)n;
}

/* ---- parsing a line ---- */

enum {
	AUDIT_SEEN_TS = 1u << 0,
	AUDIT_SEEN_NODE = 1u << 1,
	AUDIT_SEEN_SEQ = 1u << 2,
	AUDIT_SEEN_EVENT = 1u << 3,
	AUDIT_SEEN_V = 1u << 4,
	AUDIT_SEEN_ALL = 0xfu, /* v is optional */
};

struct audit_parse {
	struct audit_line *out;
	unsigned seen;
	bool bad_version;
	audit_member_fn fn; /* the second pass */
	void *ctx;
};

static bool audit_u64(const char *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (len > 1 && p[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(p[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool audit_event_name_ok(const char *p, size_t len)
{
	if (len == 0 || len > AUDIT_EVENT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			return false;
	return true;
}

static unsigned audit_reserved(const char *key, size_t len)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {{"ts", AUDIT_SEEN_TS},     {"node", AUDIT_SEEN_NODE},
		     {"seq", AUDIT_SEEN_SEQ},   {"event", AUDIT_SEEN_EVENT},
		     {"v", AUDIT_SEEN_V}};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i].name) == len &&
		    memcmp(names[i].name, key, len) == 0)
			return names[i].bit;
	return 0;
}

/* First pass: the fixed members. */
static bool audit_parse_fixed(void *ctx, struct jscan *s, const char *key,
			      size_t key_len, const char *val, size_t val_len)
{
	struct audit_parse *ap = ctx;
	struct audit_line *l = ap->out;
	unsigned bit = audit_reserved(key, key_len);
	uint64_t v;
	bool ok = true;

	if (bit == 0)
		return true;
	if (ap->seen & bit)
		return js_fail(s, "a fixed member appears twice");
	ap->seen |= bit;
	if (bit == AUDIT_SEEN_TS) {
		ok = val_len == AUDIT_TS_LEN + 2 && val[0] == '"' &&
		     audit_ts_parse(val + 1, AUDIT_TS_LEN, &l->ts_ms);
		if (ok)
			memcpy(l->ts, val + 1, AUDIT_TS_LEN);
		return ok || js_fail(s, "\"ts\" is not YYYY-MM-DDTHH:MM:SS.mmmZ");
	}
	if (bit == AUDIT_SEEN_EVENT) {
		ok = val_len >= 2 && val[0] == '"' &&
		     audit_event_name_ok(val + 1, val_len - 2);
		if (ok)
			memcpy(l->event, val + 1, val_len - 2);
		return ok || js_fail(s, "\"event\" is not a name of [a-z0-9_]");
	}
	if (!audit_u64(val, val_len, &v))
		return js_fail(s, "a fixed number member is not an unsigned "
				  "integer");
	if (bit == AUDIT_SEEN_NODE)
		l->node = v;
	else if (bit == AUDIT_SEEN_SEQ)
		l->seq = v;
	else
		l->has_version = true;
	if (bit == AUDIT_SEEN_V)
		ap->bad_version = v != AUDIT_FORMAT_VERSION;
	return bit != AUDIT_SEEN_SEQ || v >= 1 || js_fail(s, "\"seq\" is 0");
}

/* Second pass: the others, to the caller. */
static bool audit_parse_extra(void *ctx, struct jscan *s, const char *key,
			      size_t key_len, const char *val, size_t val_len)
{
	struct audit_parse *ap = ctx;

	(void)s;
	if (audit_reserved(key, key_len) == 0)
		ap->fn(ap->ctx, key, key_len, val, val_len);
	return true;
}

int audit_line_parse(const char *p, size_t len, struct audit_line *out,
		     audit_member_fn fn, void *ctx, char *errmsg)
{
	struct jscan s = {.p = p, .len = len};
	struct audit_parse ap = {.out = out, .fn = fn, .ctx = ctx};

	assert(p != NULL || len == 0);
	assert(out != NULL);
	memset(out, 0, sizeof *out);
	if (!js_top(&s, audit_parse_fixed, &ap)) {
		rs_errmsg_printf(errmsg, "byte %zu: %s", s.pos, s.why);
		return RS_ECORRUPT;
	}
	if ((ap.seen & AUDIT_SEEN_ALL) != AUDIT_SEEN_ALL) {
		rs_errmsg_printf(errmsg, "missing \"%s\"",
				 !(ap.seen & AUDIT_SEEN_TS)     ? "ts"
				 : !(ap.seen & AUDIT_SEEN_NODE) ? "node"
				 : !(ap.seen & AUDIT_SEEN_SEQ)  ? "seq"
								: "event");
		return RS_ECORRUPT;
	}
	if (ap.bad_version) {
		rs_errmsg_printf(errmsg, "unknown format version (\"v\")");
		return RS_EFORMAT;
	}
	assert(out->seq >= 1 && out->event[0] != '\0');
	if (fn != NULL) {
		s = (struct jscan){.p = p, .len = len};
		js_top(&s, audit_parse_extra, &ap);
		assert(s.why == NULL);
	}
	return RS_OK;
}

/* ---- open: find the files, resume the seq, cut a torn tail ---- */

static void audit_free(struct audit *a)
{
	if (a->fd >= 0)
		fileio_close(a->fd);
	rs_buf_free(&a->pending.buf);
	rs_buf_free(&a->flight.buf);
	free(a->files);
	free(a->dir);
	free(a);
}

static int audit_files_reserve(struct audit *a, unsigned n)
{
	uint64_t *files;
	unsigned cap;

	if (n <= a->files_cap)
		return RS_OK;
	cap = a->files_cap ? a->files_cap * 2 : 16;
	while (cap < n)
		cap *= 2;
	files = realloc(a->files, cap * sizeof *files);
	if (files == NULL)
		return RS_ENOMEM;
	a->files = files;
	a->files_cap = cap;
	return RS_OK;
}

static int audit_u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* Every audit-*.ndjson file, ascending; other names are left alone. */
static int audit_list(struct audit *a, char *errmsg)
{
	struct dirent *e;
	uint64_t num;
	int rv = RS_OK;
	DIR *dp = opendir(a->dir);

	if (dp == NULL)
		return rs_errmsg_errno(errmsg, errno, "list %s", a->dir);
	while (rv == RS_OK && (e = readdir(dp)) != NULL) {
		if (!audit_file_name_parse(e->d_name, &num))
			continue;
		rv = audit_files_reserve(a, a->nfiles + 1);
		if (rv == RS_OK)
			a->files[a->nfiles++] = num;
	}
	closedir(dp);
	if (rv != RS_OK)
		rs_errmsg_printf(errmsg, "list %s: out of memory", a->dir);
	else if (a->nfiles > 0)
		qsort(a->files, a->nfiles, sizeof *a->files, audit_u64_cmp);
	return rv;
}

/*
 * Where the valid data of the active file ends: after its last LF, less
 * any final lines holding a NUL (a write whose later pages reached the disk
 * and earlier ones did not; the writer never writes a NUL).
 */
static size_t audit_valid_end(const uint8_t *p, size_t len)
{
	size_t end = len, start;

	while (end > 0 && p[end - 1] != '\n')
		end--;
	while (end > 0) {
		start = end - 1;
		while (start > 0 && p[start - 1] != '\n')
			start--;
		if (memchr(p + start, '\0', end - 1 - start) == NULL)
			break;
		end = start;
	}
	assert(end <= len);
	assert(end == 0 || p[end - 1] == '\n');
	return end;
}

/* What reading the newest files found. */
struct audit_scan {
	bool found;       /* a valid line */
	uint64_t max_seq; /* the highest seq of a valid line */
};

static void audit_warn_line(struct audit *a, const char *name,
			    uint64_t lineno, size_t off, const char *why,
			    uint64_t nth)
{
	if (nth <= AUDIT_WARN_LINES_MAX)
		audit_logf(a,
			   "%s/%s: line %" PRIu64 " (offset %zu): %s: corrupt "
			   "line left in place; readers skip it",
			   a->dir, name, lineno, off, why);
	else if (nth == AUDIT_WARN_LINES_MAX + 1)
		audit_logf(a, "%s/%s: more corrupt lines; not listing them",
			   a->dir, name);
}

/* Check every line of p[0, len); the last one may lack its LF only in an
 * older file (a torn tail that was never cut: corrupt). */
static int audit_scan_lines(struct audit *a, const char *name,
			    const uint8_t *p, size_t len,
			    struct audit_scan *sc, char *errmsg)
{
	char why[RS_ERRMSG_SIZE];
	struct audit_line l;
	uint64_t lineno = 0, bad = 0;
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *nl = memchr(p + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (p + pos)) : len - pos;
		int rv = audit_line_parse((const char *)p + pos, n, &l, NULL,
					  NULL, why);
		lineno++;
		if (rv == RS_OK && nl == NULL) {
			rv = RS_ECORRUPT;
			snprintf(why, sizeof why, "no line feed");
		}
		if (rv != RS_OK) {
			audit_warn_line(a, name, lineno, pos, why, ++bad);
		} else if (l.node != a->node_id) {
			rs_errmsg_printf(errmsg,
					 "%s/%s: line %" PRIu64 " is node %" PRIu64
					 "'s, not node %" PRIu64 "'s",
					 a->dir, name, lineno, l.node,
					 a->node_id);
			return RS_EINVAL;
		} else {
			sc->found = true;
			if (l.seq > sc->max_seq)
				sc->max_seq = l.seq;
		}
		pos += n + 1;
	}
	a->report.corrupt_lines += bad;
	return RS_OK;
}

/* Open the active file and cut its torn tail (valid data ends at end). */
static int audit_open_active(struct audit *a, uint64_t num, size_t end,
			     size_t len, char *errmsg)
{
	char path[PATH_MAX];
	int rv;

	assert(a->fd < 0 && end <= len);
	audit_file_path(path, a, num);
	rv = fileio_open(path, O_RDWR, &a->fd, errmsg);
	if (rv == RS_OK && end < len) {
		rv = fileio_truncate(a->fd, (off_t)end, errmsg);
		if (rv == RS_OK)
			rv = fileio_fsync(a->fd, errmsg);
		if (rv != RS_OK)
			rs_errmsg_wrapf(errmsg, "cut torn tail of %s", path);
	}
	if (rv != RS_OK)
		return rv;
	a->size = end;
	if (end < len) {
		a->report.torn = true;
		audit_file_name(a->report.torn_file,
				sizeof a->report.torn_file, num);
		a->report.torn_offset = end;
		a->report.torn_bytes = len - end;
		audit_logf(a, "%s: torn last line (%zu bytes at offset %zu) "
			      "truncated",
			   path, len - end, end);
	}
	return RS_OK;
}

/* Read file files[i]; the newest one (active) also gets its fd and its
 * torn tail cut, after every check passed. */
static int audit_scan_file(struct audit *a, unsigned i, bool active,
			   struct audit_scan *sc, char *errmsg)
{
	char name[AUDIT_FILE_NAME_MAX], path[PATH_MAX];
	uint8_t *data;
	size_t len, end;
	int rv;

	assert(i < a->nfiles);
	audit_file_name(name, sizeof name, a->files[i]);
	audit_file_path(path, a, a->files[i]);
	rv = fileio_read_all(path, &data, &len, errmsg);
	if (rv != RS_OK)
		return rv;
	end = active ? audit_valid_end(data, len) : len;
	rv = audit_scan_lines(a, name, data, end, sc, errmsg);
	free(data);
	if (rv == RS_OK && active)
		rv = audit_open_active(a, a->files[i], end, len, errmsg);
	return rv;
}

/* Resume after the last valid line: the newest file, then older ones
 * while none has held a valid line yet. */
static int audit_recover(struct audit *a, char *errmsg)
{
	struct audit_scan sc = {0};
	unsigned i = a->nfiles - 1;
	int rv;

	assert(a->nfiles > 0);
	rv = audit_scan_file(a, i, true, &sc, errmsg);
	while (rv == RS_OK && !sc.found && i-- > 0)
		rv = audit_scan_file(a, i, false, &sc, errmsg);
	if (rv != RS_OK)
		return rv;
	if (!sc.found && a->report.corrupt_lines > 0)
		audit_logf(a, "%s: no valid line in any file; seq restarts at 1",
			   a->dir);
	a->stats.last_seq = sc.max_seq;
	a->stats.durable_seq = sc.max_seq;
	a->report.last_seq = sc.max_seq;
	assert(a->fd >= 0);
	return RS_OK;
}

static int audit_create_first(struct audit *a, char *errmsg)
{
	char path[PATH_MAX];
	int rv;

	assert(a->nfiles == 0 && a->fd < 0);
	rv = audit_files_reserve(a, 1);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "out of memory");
		return rv;
	}
	audit_file_path(path, a, 1);
	rv = fileio_open(path, O_RDWR | O_CREAT | O_EXCL, &a->fd, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(a->dir, errmsg);
	if (rv != RS_OK)
		return rv;
	a->files[a->nfiles++] = 1;
	a->size = 0;
	return RS_OK;
}

static int audit_alloc(struct audit **out, uv_loop_t *loop, const char *dir,
		       uint64_t node_id, const struct audit_options *o,
		       char *errmsg)
{
	struct audit *a = calloc(1, sizeof *a);
	int n;

	if (a == NULL) {
		rs_errmsg_printf(errmsg, "out of memory");
		return RS_ENOMEM;
	}
	a->fd = -1;
	a->loop = loop;
	a->node_id = node_id;
	if (o != NULL)
		a->opts = *o;
	else
		audit_options_init(&a->opts);
	rs_buf_init(&a->pending.buf);
	rs_buf_init(&a->flight.buf);
	a->pending.fd = a->pending.new_fd = -1;
	a->flight.fd = a->flight.new_fd = -1;
	n = asprintf(&a->dir, "%s/%s", dir, AUDIT_DIR_NAME);
	if (n < 0 || n >= PATH_MAX - (int)AUDIT_FILE_NAME_MAX) {
		if (n < 0)
			a->dir = NULL;
		audit_free(a);
		rs_errmsg_printf(errmsg, "%s: path too long", dir);
		return n < 0 ? RS_ENOMEM : RS_EINVAL;
	}
	*out = a;
	return RS_OK;
}

void audit_options_init(struct audit_options *o)
{
	assert(o != NULL);
	memset(o, 0, sizeof *o);
	o->fsync_delay_ms = AUDIT_FSYNC_DELAY_MS_DEFAULT;
	o->rotate_size_bytes = AUDIT_ROTATE_SIZE_BYTES_DEFAULT;
	o->keep_files = AUDIT_KEEP_FILES_DEFAULT;
}

int audit_open(struct audit **out, uv_loop_t *loop, const char *dir,
	       uint64_t node_id, const struct audit_options *o, char *errmsg)
{
	char scratch[RS_ERRMSG_SIZE], jstr[2 * AUDIT_FILE_NAME_MAX];
	struct audit *a;
	int rv;

	assert(out != NULL && loop != NULL && dir != NULL);
	*out = NULL;
	if (errmsg == NULL)
		errmsg = scratch;
	errmsg[0] = '\0';
	rv = audit_alloc(&a, loop, dir, node_id, o, errmsg);
	if (rv != RS_OK)
		return rv;
	/* The data dir's entry for audit/ must survive a crash too. */
	rv = fileio_mkdir(a->dir, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(dir, errmsg);
	if (rv == RS_OK)
		rv = audit_list(a, errmsg);
	a->report.files = a->nfiles;
	if (rv == RS_OK)
		rv = a->nfiles > 0 ? audit_recover(a, errmsg)
				   : audit_create_first(a, errmsg);
	if (rv != RS_OK)
		goto err_free;
	rv = uv_timer_init(loop, &a->timer);
	assert(rv == 0); /* cannot fail on a live loop */
	a->timer.data = a;
	if (a->report.torn) {
		audit_json_str(jstr, sizeof jstr, a->report.torn_file);
		audit_event(a, AUDIT_EV_TAIL_TRUNCATED,
			    "\"file\":%s,\"offset\":%" PRIu64
			    ",\"bytes\":%" PRIu64,
			    jstr, a->report.torn_offset, a->report.torn_bytes);
	}
	*out = a;
	return RS_OK;

err_free:
	rs_errmsg_wrapf(errmsg, "open audit log %s", a->dir);
	audit_free(a);
	return rv;
}

/* ---- the write path: batches on the thread pool ---- */

static void audit_work_cb(uv_work_t *w);
static void audit_after_work_cb(uv_work_t *w, int status);
static void audit_close_start(struct audit *a);

/* An empty batch that keeps buf's allocation. */
static void audit_batch_reset(struct audit_batch *b, struct rs_buf buf)
{
	memset(b, 0, sizeof *b);
	buf.len = 0;
	b->buf = buf;
	b->fd = -1;
	b->new_fd = -1;
}

/* The log stops writing: remember why, say it once, drop what is queued. */
static void audit_fail(struct audit *a, int code, const char *msg)
{
	assert(code != RS_OK);
	if (a->failed != RS_OK)
		return;
	a->failed = code;
	snprintf(a->failed_msg, sizeof a->failed_msg, "%s", msg);
	a->stats.failures++;
	a->stats.dropped += a->pending.events;
	audit_logf(a, "%s (%s); audit log failed, %" PRIu64
		      " queued events dropped",
		   msg, rs_strerror(code), a->pending.events);
	audit_batch_reset(&a->pending, a->pending.buf);
}

/* Rotate before b if the active file holds data and b would take it past
 * the limit.  Never split a batch: a file exceeds the limit only by one. */
static bool audit_should_rotate(struct audit *a, const struct audit_batch *b)
{
	uint64_t limit = a->opts.rotate_size_bytes;

	if (limit == 0 || a->size == 0 || a->size + b->buf.len <= limit)
		return false;
	/* Reserve the slot now: the after-work callback must not fail.
	 * Without one, write on: a long file beats a failed log. */
	return audit_files_reserve(a, a->nfiles + 1) == RS_OK;
}

/* Hand the queued lines to the thread pool. */
static void audit_flush_start(struct audit *a)
{
	struct audit_batch *b = &a->flight;
	struct rs_buf spare = b->buf;
	unsigned keep = a->opts.keep_files;
	int rv;

	assert(a->state == AUDIT_IDLE || a->state == AUDIT_ARMED);
	assert(a->pending.buf.len > 0 && a->failed == RS_OK);
	*b = a->pending;
	audit_batch_reset(&a->pending, spare);
	b->fd = a->fd;
	b->offset = a->size;
	b->status = RS_OK;
	b->new_fd = -1;
	b->unlinked = 0;
	b->unlink_count = 0;
	b->errmsg[0] = '\0';
	b->warnmsg[0] = '\0';
	b->rotate = audit_should_rotate(a, b);
	b->new_file = a->files[a->nfiles - 1] + 1;
	if (b->rotate && keep > 0 && a->nfiles + 1 > keep)
		b->unlink_count = a->nfiles + 1 - keep;
	audit_set_state(a, AUDIT_FLUSHING);
	atomic_store_explicit(&a->flight_done, false, memory_order_relaxed);
	a->work.data = a;
	rv = uv_queue_work(a->loop, &a->work, audit_work_cb,
			   audit_after_work_cb);
	assert(rv == 0); /* fails only for a NULL work callback */
	(void)rv;
}

static void audit_timer_cb(uv_timer_t *t)
{
	struct audit *a = t->data;

	assert(a->state == AUDIT_ARMED);
	audit_flush_start(a);
}

/* From IDLE: start what is due. */
static void audit_kick(struct audit *a)
{
	int rv;

	assert(a->state == AUDIT_IDLE);
	if (a->pending.buf.len > 0 && a->close_requested) {
		audit_flush_start(a);
	} else if (a->pending.buf.len > 0) {
		rv = uv_timer_start(&a->timer, audit_timer_cb,
				    a->opts.fsync_delay_ms, 0);
		assert(rv == 0);
		(void)rv;
		audit_set_state(a, AUDIT_ARMED);
	} else if (a->close_requested) {
		audit_close_start(a);
	}
}

/* Worker: start file new_file; the old one is complete (every batch was
 * fsynced) and is closed once the new one's entry is durable. */
static int audit_rotate(struct audit *a, struct audit_batch *b)
{
	char path[PATH_MAX];
	int rv;

	assert(b->rotate && b->new_fd < 0);
	audit_file_path(path, a, b->new_file);
	rv = fileio_open(path, O_RDWR | O_CREAT | O_EXCL, &b->new_fd,
			 b->errmsg);
	if (rv == RS_OK) {
		rv = fileio_fsync_dir(a->dir, b->errmsg);
		if (rv != RS_OK) {
			fileio_close(b->new_fd);
			b->new_fd = -1;
		}
	}
	if (rv != RS_OK) {
		rs_errmsg_wrapf(b->errmsg, "rotate");
		return rv;
	}
	fileio_close(b->fd);
	return RS_OK;
}

/* Worker: delete the oldest files, oldest first, after the batch is
 * durable.  A failure is a warning: the files stay listed and the next
 * rotation tries again. */
static void audit_retain(struct audit *a, struct audit_batch *b)
{
	char path[PATH_MAX];
	int rv = RS_OK;

	assert(b->rotate && b->unlink_count < a->nfiles + 1);
	for (b->unlinked = 0; b->unlinked < b->unlink_count; b->unlinked++) {
		audit_file_path(path, a, a->files[b->unlinked]);
		rv = fileio_unlink(path, b->warnmsg);
		if (rv != RS_OK)
			break;
	}
	if (b->unlinked > 0 && rv == RS_OK)
		rv = fileio_fsync_dir(a->dir, b->warnmsg);
	if (rv != RS_OK)
		rs_errmsg_wrapf(b->warnmsg, "audit %s: retention", a->dir);
}

/* Worker: one pwrite and one fsync for the whole batch. */
static void audit_work_cb(uv_work_t *w)
{
	struct audit *a = w->data;
	struct audit_batch *b = &a->flight;
	uint64_t off = b->offset, num = b->new_file - 1;
	char name[AUDIT_FILE_NAME_MAX];
	int fd = b->fd;

	/* Paired with the parse in audit_eventv: whole lines, no NUL. */
	assert(b->buf.len > 0 && b->buf.data[b->buf.len - 1] == '\n');
	assert(memchr(b->buf.data, '\0', b->buf.len) == NULL);
	if (b->rotate) {
		b->status = audit_rotate(a, b);
		fd = b->new_fd;
		off = 0;
		num = b->new_file;
	}
	if (b->status == RS_OK)
		b->status = fileio_pwrite(fd, b->buf.data, b->buf.len,
					  (off_t)off, b->errmsg);
	if (b->status == RS_OK) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		b->status = fileio_fsync(fd, b->errmsg);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		b->fsync_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
			      (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
	}
	if (b->status != RS_OK) {
		audit_file_name(name, sizeof name, num);
		rs_errmsg_wrapf(b->errmsg, "audit %s: append to %s", a->dir,
				name);
	} else if (b->unlink_count > 0) {
		audit_retain(a, b);
	}
	atomic_store_explicit(&a->flight_done, true, memory_order_release);
}

/* Loop: take in what the worker did to the files. */
static void audit_batch_account(struct audit *a, struct audit_batch *b)
{
	if (b->new_fd >= 0) {
		/* Rotated, even if the write after it failed. */
		assert(b->rotate && a->nfiles < a->files_cap);
		a->files[a->nfiles++] = b->new_file;
		a->fd = b->new_fd;
		a->size = 0;
		a->stats.rotations++;
	}
	if (b->status != RS_OK) {
		a->stats.dropped += b->events;
		audit_fail(a, b->status, b->errmsg);
		return;
	}
	a->size += b->buf.len;
	a->stats.batches++;
	a->stats.bytes_written += b->buf.len;
	/* A sealing audit_flush_sync may have written later lines already. */
	assert(a->sealed || b->last_seq > a->stats.durable_seq);
	if (b->last_seq > a->stats.durable_seq)
		a->stats.durable_seq = b->last_seq;
	if (b->unlinked > 0) {
		assert(b->unlinked < a->nfiles);
		memmove(a->files, a->files + b->unlinked,
			(a->nfiles - b->unlinked) * sizeof *a->files);
		a->nfiles -= b->unlinked;
		a->stats.files_deleted += b->unlinked;
	}
	if (b->warnmsg[0] != '\0') {
		a->stats.failures++;
		audit_logf(a, "%s (old files kept; retried at the next "
			      "rotation)",
			   b->warnmsg);
	}
}

static void audit_after_work_cb(uv_work_t *w, int status)
{
	struct audit *a = w->data;
	struct audit_batch *b = &a->flight;

	assert(status == 0); /* the log never cancels its work */
	assert(a->state == AUDIT_FLUSHING);
	(void)status;
	if (b->status == RS_OK && a->opts.on_fsync != NULL)
		a->opts.on_fsync(a->opts.fsync_arg, (double)b->fsync_ns / 1e9);
	audit_batch_account(a, b);
	audit_batch_reset(b, b->buf);
	audit_set_state(a, AUDIT_IDLE);
	audit_kick(a);
}

/* Format the line for seq at the end of buf and check it; on failure buf
 * is as it was. */
static int audit_line_append(struct audit *a, struct rs_buf *buf,
			     uint64_t seq, const char *event,
			     const char *fmt, va_list ap)
{
	char head[256], ts[AUDIT_TS_LEN + 1], why[RS_ERRMSG_SIZE];
	size_t start = buf->len, hlen, total;
	struct audit_line l;
	va_list ap2;
	int n = 0, rv;

	audit_ts_now(ts);
	hlen = (size_t)snprintf(head, sizeof head,
				"{\"ts\":\"%s\",\"node\":%" PRIu64
				",\"seq\":%" PRIu64 ",\"event\":\"%s\"",
				ts, a->node_id, seq, event);
	assert(hlen < sizeof head);
	if (fmt != NULL) {
		va_copy(ap2, ap);
		n = vsnprintf(NULL, 0, fmt, ap2);
		va_end(ap2);
		if (n < 0)
			return RS_EINVAL;
	}
	total = hlen + (n > 0 ? 1 + (size_t)n : 0) + 2;
	if (total > AUDIT_LINE_MAX)
		return RS_ETOOLARGE;
	if (rs_buf_reserve(buf, total + 1) != RS_OK) /* + vsnprintf's NUL */
		return RS_ENOMEM;
	memcpy(buf->data + buf->len, head, hlen);
	buf->len += hlen;
	if (n > 0) {
		buf->data[buf->len++] = ',';
		vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, ap);
		buf->len += (size_t)n;
	}
	memcpy(buf->data + buf->len, "}\n", 2);
	buf->len += 2;
	assert(buf->len - start == total);
	rv = audit_line_parse((const char *)buf->data + start, total - 1, &l,
			      NULL, NULL, why);
	/* A caller's "v" would claim a format it did not choose. */
	if (rv != RS_OK || l.has_version || l.seq != seq ||
	    l.node != a->node_id ||
	    memchr(buf->data + start, '\0', total) != NULL) {
		audit_logf(a, "event %s refused: %s: %.*s", event,
			   rv != RS_OK ? why : "reserved member",
			   (int)(total - 1), (const char *)buf->data + start);
		buf->len = start;
		return RS_EINVAL;
	}
	return RS_OK;
}

/* audit_event with a va_list; the same contract (audit.h). */
static int audit_eventv(struct audit *a, const char *event,
			const char *fmt_fields, va_list ap)
	__attribute__((format(printf, 3, 0)));

static int audit_eventv(struct audit *a, const char *event,
			const char *fmt_fields, va_list ap)
{
	struct audit_batch *q = &a->pending;
	size_t before = q->buf.len;
	char msg[RS_ERRMSG_SIZE];
	int rv;

	assert(a != NULL && event != NULL);
	assert(a->state != AUDIT_CLOSED);
	if (a->close_requested)
		return RS_ECLOSED;
	if (a->sealed) {
		a->stats.dropped++;
		return RS_ESHUTDOWN;
	}
	if (a->failed != RS_OK) {
		a->stats.dropped++;
		return a->failed;
	}
	if (!audit_event_name_ok(event, strlen(event))) {
		a->stats.rejected++;
		return RS_EINVAL;
	}
	rv = audit_line_append(a, &q->buf, a->stats.last_seq + 1, event,
			       fmt_fields, ap);
	if (rv != RS_OK) {
		a->stats.rejected++;
		return rv;
	}
	q->events++;
	q->last_seq = ++a->stats.last_seq;
	a->stats.events++;
	if (q->buf.len > AUDIT_PENDING_MAX) {
		snprintf(msg, sizeof msg,
			 "audit %s: %zu bytes queued and not yet written (the "
			 "disk is not keeping up)",
			 a->dir, before);
		audit_fail(a, RS_ETOOLARGE, msg);
		return RS_ETOOLARGE;
	}
	if (a->state == AUDIT_IDLE)
		audit_kick(a);
	return RS_OK;
}

int audit_event(struct audit *a, const char *event, const char *fmt_fields,
		...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt_fields);
	rv = audit_eventv(a, event, fmt_fields, ap);
	va_end(ap);
	return rv;
}

/* ---- the fail-fast path ---- */

/* Wait for the worker to be done with the flight; its results are then
 * ours to read (the after-work callback will still run, on the loop). */
static int audit_wait_flight(struct audit *a)
{
	struct timespec nap = {0, 1000000L};

	for (int i = 0; i < AUDIT_SYNC_WAIT_MS; i++) {
		if (atomic_load_explicit(&a->flight_done, memory_order_acquire))
			return RS_OK;
		nanosleep(&nap, NULL);
	}
	return RS_ETIMEOUT;
}

/* Where the queued lines go: after the flight if there is one. */
static int audit_sync_target(struct audit *a, int *fd, uint64_t *off)
{
	const struct audit_batch *b = &a->flight;
	int rv;

	*fd = a->fd;
	*off = a->size;
	if (a->state != AUDIT_FLUSHING)
		return RS_OK;
	rv = audit_wait_flight(a);
	if (rv != RS_OK)
		return rv;
	if (b->status != RS_OK)
		return b->status;
	*fd = b->new_fd >= 0 ? b->new_fd : a->fd;
	*off = (b->new_fd >= 0 ? 0 : b->offset) + b->buf.len;
	return RS_OK;
}

int audit_flush_sync(struct audit *a)
{
	struct audit_batch *q = &a->pending;
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t off;
	int fd, rv;

	assert(a != NULL && a->state != AUDIT_CLOSED);
	assert(!a->close_requested && !a->sealed);
	a->sealed = true;
	if (a->failed != RS_OK)
		return a->failed;
	if (a->state == AUDIT_ARMED) {
		uv_timer_stop(&a->timer);
		audit_set_state(a, AUDIT_IDLE);
	}
	rv = audit_sync_target(a, &fd, &off);
	if (rv == RS_OK && q->buf.len > 0) {
		rv = fileio_pwrite(fd, q->buf.data, q->buf.len, (off_t)off,
				   errmsg);
		if (rv == RS_OK)
			rv = fileio_fsync(fd, errmsg);
	}
	if (rv == RS_ETIMEOUT)
		snprintf(errmsg, sizeof errmsg, "a batch in flight did not "
						"finish");
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "audit %s: flush", a->dir);
		audit_fail(a, rv, errmsg);
		return rv;
	}
	if (q->events > 0)
		a->stats.durable_seq = q->last_seq;
	a->stats.bytes_written += q->buf.len;
	audit_batch_reset(q, q->buf);
	assert(a->stats.durable_seq == a->stats.last_seq);
	return RS_OK;
}

/* ---- close ---- */

static void audit_timer_closed_cb(uv_handle_t *h)
{
	struct audit *a = h->data;
	audit_close_cb cb = a->close_cb;
	void *arg = a->close_arg;
	int status = a->failed;

	assert(a->state == AUDIT_CLOSING && a->fd < 0);
	audit_set_state(a, AUDIT_CLOSED);
	audit_free(a);
	if (cb != NULL)
		cb(arg, status);
}

/* Worker: closing can block (NFS flushes on close). */
static void audit_close_work_cb(uv_work_t *w)
{
	struct audit *a = w->data;

	assert(a->state == AUDIT_CLOSING);
	if (a->fd >= 0)
		fileio_close(a->fd);
	a->fd = -1;
}

static void audit_close_after_cb(uv_work_t *w, int status)
{
	struct audit *a = w->data;

	assert(status == 0);
	assert(a->state == AUDIT_CLOSING);
	(void)status;
	uv_close((uv_handle_t *)&a->timer, audit_timer_closed_cb);
}

static void audit_close_start(struct audit *a)
{
	int rv;

	assert(a->state == AUDIT_IDLE && a->close_requested);
	assert(a->pending.buf.len == 0);
	audit_set_state(a, AUDIT_CLOSING);
	a->work.data = a;
	rv = uv_queue_work(a->loop, &a->work, audit_close_work_cb,
			   audit_close_after_cb);
	assert(rv == 0);
	(void)rv;
}

void audit_close(struct audit *a, audit_close_cb cb, void *arg)
{
	assert(a != NULL);
	assert(!a->close_requested);
	a->close_requested = true;
	a->close_cb = cb;
	a->close_arg = arg;
	if (a->state == AUDIT_ARMED) {
		uv_timer_stop(&a->timer);
		audit_set_state(a, AUDIT_IDLE);
	}
	/* Otherwise the batch in flight continues the close when done. */
	if (a->state == AUDIT_IDLE)
		audit_kick(a);
}

/* ---- accessors ---- */

int audit_failed(const struct audit *a)
{
	assert(a != NULL);
	return a->failed;
}

const char *audit_errmsg(const struct audit *a)
{
	assert(a != NULL);
	return a->failed_msg;
}

uint64_t audit_last_seq(const struct audit *a)
{
	assert(a != NULL);
	return a->stats.last_seq;
}

const struct audit_report *audit_open_report(const struct audit *a)
{
	assert(a != NULL);
	return &a->report;
}

void audit_stats(const struct audit *a, struct audit_stats *out)
{
	assert(a != NULL && out != NULL);
	*out = a->stats;
}
