/*
 * audit_line: the audit log's line format (coordinator/audit.h): file
 * names, timestamps, the member names the writer reserves, and the strict
 * reader of one line.
 *
 * The reader is the only one there is: the writer parses every line it
 * builds before queueing it, open parses every line it reads back, and
 * `rsctl events` skips what it refuses, so the writer cannot queue a line
 * that a reader would skip.  JSON itself is jansson's, through
 * raftstore/lib/json.h; this file adds what NDJSON and the format ask for
 * on top (no NUL, CR or LF in a line; the fixed members and their forms;
 * the version).  It has no state and does no I/O.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coordinator/audit_internal.h"
#include "raftstore/lib/json.h"

/* ---- names ---- */

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

bool audit_event_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > AUDIT_EVENT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	return true;
}

bool audit_member_reserved(const char *key)
{
	static const char *const names[] = {"ts", "node", "seq", "event",
					    "v"};

	assert(key != NULL);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(names[i], key) == 0)
			return true;
	return false;
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

void audit_ts_now(char *out)
{
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (tm.tm_year < 0 || tm.tm_year + 1900 > 9999)
		memset(&tm, 0, sizeof tm); /* a clock this wrong: 1900 */
	/* Unsigned and reduced, so the compiler sees every field's width. */
	n = snprintf(out, AUDIT_TS_LEN + 1, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
		     (unsigned)(tm.tm_year + 1900) % 10000u,
		     (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
		     (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
		     (unsigned)tm.tm_sec % 100u,
		     (unsigned)(ts.tv_nsec / 1000000) % 1000u);
	assert(n == (int)AUDIT_TS_LEN);
	(void)n;
}

/* ---- reading a line ---- */

/* The bytes NDJSON and the format forbid in a line: NUL, CR and LF (so the
 * only whitespace left between tokens is space and tab).  *high says
 * whether a byte >= 0x80 was seen. */
static int audit_line_bytes_check(const char *p, size_t len, bool *high,
				  char *errmsg)
{
	static const char *const names[] = {['\0'] = "NUL", ['\n'] = "LF",
					    ['\r'] = "CR"};

	*high = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\0' || c == '\n' || c == '\r') {
			rs_errmsg_printf(errmsg, "byte %zu: %s in the line", i,
					 names[c]);
			return RS_ECORRUPT;
		}
		*high |= c >= 0x80;
	}
	return RS_OK;
}

/*
 * The writer escapes every byte >= 0x80, but a reader accepts one inside a
 * string as it is, read the way the project reads byte strings: byte N is
 * U+00NN (raftstore/lib/json.h).  jansson reads UTF-8, so such a line is
 * re-encoded first; a byte >= 0x80 outside a string stays an error.
 * Returns a malloc'd copy, or NULL when out of memory.
 */
static char *audit_line_latin1_to_utf8(const char *p, size_t len,
				       size_t *out_len)
{
	char *u = malloc(2 * len + 1);
	size_t j = 0;

	if (u == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x80) {
			u[j++] = (char)c;
		} else {
			u[j++] = (char)(0xc0 | (c >> 6));
			u[j++] = (char)(0x80 | (c & 0x3f));
		}
	}
	assert(j <= 2 * len);
	*out_len = j;
	return u;
}

/* The line as a JSON object, with the checks above. */
static int audit_line_load(const char *p, size_t len, json_t **obj,
			   char *errmsg)
{
	char *utf8 = NULL;
	bool high;
	int rv = audit_line_bytes_check(p, len, &high, errmsg);

	if (rv != RS_OK)
		return rv;
	if (high) {
		utf8 = audit_line_latin1_to_utf8(p, len, &len);
		if (utf8 == NULL) {
			rs_errmsg_printf(errmsg, "out of memory");
			return RS_ENOMEM;
		}
		p = utf8;
	}
	rv = rs_json_parse_object(p, len, obj, errmsg);
	free(utf8);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "not one JSON object");
		return RS_ECORRUPT;
	}
	return RS_OK;
}

/* ts, node, seq and event, each there once (jansson refuses a duplicate
 * member) and of its form. */
static int audit_line_fixed(const json_t *obj, struct audit_line *out,
			    char *errmsg)
{
	const char *ts, *event;
	size_t ts_len, event_len;
	int rv = rs_json_get_str(obj, "ts", &ts, &ts_len, errmsg);

	if (rv == RS_OK && !audit_ts_parse(ts, ts_len, &out->ts_ms)) {
		rs_errmsg_printf(errmsg, "member \"ts\": not "
					 "YYYY-MM-DDTHH:MM:SS.mmmZ");
		rv = RS_ECORRUPT;
	}
	if (rv == RS_OK)
		rv = rs_json_get_u64(obj, "node", &out->node, errmsg);
	if (rv == RS_OK)
		rv = rs_json_get_u64(obj, "seq", &out->seq, errmsg);
	if (rv == RS_OK && out->seq == 0) {
		rs_errmsg_printf(errmsg, "member \"seq\": 0 (seqs start at 1)");
		rv = RS_ECORRUPT;
	}
	if (rv == RS_OK)
		rv = rs_json_get_str(obj, "event", &event, &event_len, errmsg);
	if (rv == RS_OK && !audit_event_name_ok(event, event_len)) {
		rs_errmsg_printf(errmsg, "member \"event\": not a name of "
					 "[a-z0-9_]");
		rv = RS_ECORRUPT;
	}
	if (rv != RS_OK)
		return RS_ECORRUPT; /* missing or of the wrong type, too */
	memcpy(out->ts, ts, AUDIT_TS_LEN);
	out->ts[AUDIT_TS_LEN] = '\0';
	memcpy(out->event, event, event_len);
	out->event[event_len] = '\0';
	return RS_OK;
}

/* An optional "v": an unsigned integer, and this reader knows only 1. */
static int audit_line_version(const json_t *obj, struct audit_line *out,
			      char *errmsg)
{
	uint64_t v;

	if (json_object_get(obj, "v") == NULL)
		return RS_OK;
	if (rs_json_get_u64(obj, "v", &v, errmsg) != RS_OK)
		return RS_ECORRUPT;
	out->has_version = true;
	if (v != AUDIT_FORMAT_VERSION) {
		rs_errmsg_printf(errmsg,
				 "unknown format version (\"v\":%" PRIu64 ")",
				 v);
		return RS_EFORMAT;
	}
	return RS_OK;
}

int audit_line_parse(const char *p, size_t len, struct audit_line *out,
		     audit_member_fn fn, void *ctx, char *errmsg)
{
	const char *key;
	json_t *obj, *value;
	int rv;

	assert(p != NULL || len == 0);
	assert(out != NULL);
	memset(out, 0, sizeof *out);
	rv = audit_line_load(p != NULL ? p : "", len, &obj, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = audit_line_fixed(obj, out, errmsg);
	if (rv == RS_OK)
		rv = audit_line_version(obj, out, errmsg);
	if (rv == RS_OK && fn != NULL) {
		assert(out->seq >= 1 && out->event[0] != '\0');
		json_object_foreach(obj, key, value) {
			if (!audit_member_reserved(key))
				fn(ctx, key, value);
		}
	}
	json_decref(obj);
	return rv;
}
