/*
 * Tests for the audit log: lines read back as valid JSON in the documented
 * form, seq continuity across reopens, torn tails cut at every offset and
 * zero-filled, corrupt lines left in place, rotation and retention, fsync
 * batching, write/fsync/rotation/unlink faults, dropped unsynced writes,
 * the fail-fast flush, and the line parser that readers share.
 *
 * The lines are read back here with jansson and checked member by member
 * (order, types, ASCII only), apart from audit_line_parse's checks, so
 * that a mistake shared by the writer and the reader cannot hide.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "coordinator/audit.h"
#include "director/director.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "storage/fileio.h"
#include "tests/unit/testutil.h"

#define NODE 7u
#define LINES_MAX 4096
#define LOG_MAX 8192

static char *tdir;  /* the node data directory of the running test */
static char *adir;  /* tdir/audit */
static uv_loop_t tloop;
static char logbuf[LOG_MAX]; /* what the log callback said */
static unsigned log_calls;

static void setup(void)
{
	fileio_fault_reset();
	tdir = testutil_tmpdir("audit");
	adir = testutil_path(tdir, "audit");
	ck_assert_int_eq(uv_loop_init(&tloop), 0);
	logbuf[0] = '\0';
	log_calls = 0;
}

static void teardown(void)
{
	fileio_fault_reset();
	/* Every test must leave nothing running on its loop. */
	ck_assert_int_eq(uv_loop_close(&tloop), 0);
	testutil_rmtree(tdir);
	free(adir);
	free(tdir);
}

static void log_cb(void *arg, const char *msg)
{
	size_t n = strlen(logbuf);

	(void)arg;
	log_calls++;
	snprintf(logbuf + n, sizeof logbuf - n, "%s\n", msg);
}

static struct audit_options opts(unsigned delay_ms, uint64_t rotate,
				 unsigned keep)
{
	struct audit_options o;

	audit_options_init(&o);
	o.fsync_delay_ms = delay_ms;
	o.rotate_size_bytes = rotate;
	o.keep_files = keep;
	o.log_fn = log_cb;
	return o;
}

static struct audit *open_log(const struct audit_options *o)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct audit *a = NULL;

	ck_assert_msg(audit_open(&a, &tloop, tdir, NODE, o, errmsg) == RS_OK,
		      "audit_open: %s", errmsg);
	ck_assert_ptr_nonnull(a);
	return a;
}

struct close_result {
	bool called;
	int status;
};

static void close_cb(void *arg, int status)
{
	struct close_result *r = arg;
	r->called = true;
	r->status = status;
}

/* Close and run the loop to the end; returns the close status. */
static int close_log(struct audit *a)
{
	struct close_result r = {0};

	audit_close(a, close_cb, &r);
	uv_run(&tloop, UV_RUN_DEFAULT);
	ck_assert(r.called);
	return r.status;
}

/* {key: v}, to give to audit_event. */
static json_t *members_u64(const char *key, uint64_t v)
{
	json_t *o = json_object();

	ck_assert_int_eq(rs_json_set_u64(o, key, v), RS_OK);
	return o;
}

/* {key: s}, s a byte string of n bytes. */
static json_t *members_bytes(const char *key, const char *s, size_t n)
{
	json_t *o = json_object();

	ck_assert_int_eq(rs_json_set_bytes(o, key, s, n), RS_OK);
	return o;
}

/* Queue n events "ev_test" with i = first.. first+n-1. */
static void emit(struct audit *a, unsigned first, unsigned n)
{
	for (unsigned i = first; i < first + n; i++)
		ck_assert_int_eq(audit_event(a, "ev_test", members_u64("i", i)),
				 RS_OK);
}

static char *file_path(uint64_t num)
{
	char name[AUDIT_FILE_NAME_MAX];
	audit_file_name(name, sizeof name, num);
	return testutil_path(adir, name);
}

/* The audit file numbers in adir, ascending. */
static unsigned list_files(uint64_t *nums, unsigned max)
{
	DIR *d = opendir(adir);
	struct dirent *e;
	unsigned n = 0;
	uint64_t v;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		if (!audit_file_name_parse(e->d_name, &v))
			continue;
		ck_assert_uint_lt(n, max);
		nums[n++] = v;
	}
	closedir(d);
	for (unsigned i = 1; i < n; i++) /* insertion sort */
		for (unsigned j = i; j > 0 && nums[j - 1] > nums[j]; j--) {
			v = nums[j];
			nums[j] = nums[j - 1];
			nums[j - 1] = v;
		}
	return n;
}

static size_t file_size(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return (size_t)st.st_size;
}

/* ---- reading a line back, apart from audit_line_parse ---- */

struct tj_member {
	char key[64];
	bool is_u64;   /* an integer >= 0 */
	uint64_t u64;  /* its value */
	bool is_str;
	char str[512]; /* the decoded bytes (U+00NN is byte NN), if a string */
};

/* One member; false if it does not fit or is a string that is not bytes. */
static bool tj_member(struct tj_member *m, const char *key, const json_t *v)
{
	struct rs_buf b;
	bool ok = true;

	memset(m, 0, sizeof *m);
	if (strlen(key) >= sizeof m->key)
		return false;
	strcpy(m->key, key);
	m->is_u64 = json_is_integer(v) && json_integer_value(v) >= 0;
	m->u64 = m->is_u64 ? (uint64_t)json_integer_value(v) : 0;
	m->is_str = json_is_string(v);
	if (!m->is_str)
		return true;
	rs_buf_init(&b);
	ok = rs_json_bytes_value(v, &b, NULL) == RS_OK && b.len < sizeof m->str;
	if (ok && b.len > 0) /* memcpy from NULL is undefined even for 0 */
		memcpy(m->str, b.data, b.len);
	rs_buf_free(&b);
	return ok;
}

/*
 * A whole line as one object, read with jansson but checked here, apart
 * from audit_line_parse: ASCII only, no control character but DEL (so no
 * CR, LF or NUL), and up to max members in their order.  -1 if invalid.
 */
static int tj_line(const char *line, size_t len, struct tj_member *m, int max)
{
	const char *key;
	json_t *obj, *v;
	int n = 0;

	for (size_t i = 0; i < len; i++)
		if (line[i] < 0x20 || (unsigned char)line[i] >= 0x80)
			return -1;
	if (rs_json_parse_object(line, len, &obj, NULL) != RS_OK)
		return -1;
	json_object_foreach(obj, key, v) {
		if (n >= max || !tj_member(&m[n], key, v)) {
			n = -1;
			break;
		}
		n++;
	}
	json_decref(obj);
	return n;
}

static const struct tj_member *tj_get(const struct tj_member *m, int n,
				      const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(m[i].key, key) == 0)
			return &m[i];
	return NULL;
}

static uint64_t tj_u64(const struct tj_member *m)
{
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(m->is_u64, "member %s: not a u64", m->key);
	return m->u64;
}

static bool ts_ok(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (strlen(s) != sizeof pat - 1)
		return false;
	for (size_t i = 0; i < sizeof pat - 1; i++)
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return false;
	return true;
}

/* ---- reading the whole log back ---- */

struct line {
	char text[1024];
	uint64_t file;
	uint64_t seq;
	char event[AUDIT_EVENT_NAME_MAX + 1];
	char first_extra[64]; /* key of the first extra member */
	int64_t i;            /* its "i", or -1 */
};

static struct line lines[LINES_MAX];

/*
 * Every line of every file, checked: valid JSON by tj_line, the fixed
 * members first and in order, node NODE, seq strictly increasing by one
 * from first_seq (0: from the first line's), audit_line_parse agreeing.
 * Returns the count.
 */
static unsigned read_log(uint64_t first_seq)
{
	uint64_t nums[256];
	unsigned nfiles = list_files(nums, 256), count = 0;

	for (unsigned f = 0; f < nfiles; f++) {
		char *path = file_path(nums[f]);
		size_t len, pos = 0;
		char *data = (char *)testutil_read_file(path, &len);

		ck_assert_msg(len == 0 || data[len - 1] == '\n',
			      "%s: no final LF", path);
		while (pos < len) {
			char *nl = memchr(data + pos, '\n', len - pos);
			size_t n = (size_t)(nl - (data + pos));
			struct tj_member m[16];
			struct audit_line l;
			struct line *ln = &lines[count];
			int k = tj_line(data + pos, n, m, 16);

			ck_assert_msg(k >= 4, "%s: bad JSON: %.*s", path, (int)n,
				      data + pos);
			ck_assert_uint_lt(count, LINES_MAX);
			ck_assert_str_eq(m[0].key, "ts");
			ck_assert_str_eq(m[1].key, "node");
			ck_assert_str_eq(m[2].key, "seq");
			ck_assert_str_eq(m[3].key, "event");
			ck_assert_msg(ts_ok(m[0].str), "ts %s", m[0].str);
			ck_assert_uint_eq(tj_u64(&m[1]), NODE);
			ln->seq = tj_u64(&m[2]);
			if (first_seq == 0)
				first_seq = ln->seq;
			ck_assert_uint_eq(ln->seq, first_seq + count);
			ck_assert_uint_le(strlen(m[3].str), AUDIT_EVENT_NAME_MAX);
			memcpy(ln->event, m[3].str, strlen(m[3].str) + 1);
			memcpy(ln->first_extra, k > 4 ? m[4].key : "",
			       k > 4 ? strlen(m[4].key) + 1 : 1);
			ln->i = tj_get(m, k, "i") ? (int64_t)tj_u64(tj_get(m, k, "i"))
						  : -1;
			ck_assert_uint_lt(n, sizeof ln->text);
			memcpy(ln->text, data + pos, n);
			ln->text[n] = '\0';
			ln->file = nums[f];
			ck_assert_int_eq(audit_line_parse(data + pos, n, &l, NULL,
							  NULL, NULL),
					 RS_OK);
			ck_assert_uint_eq(l.seq, ln->seq);
			ck_assert_str_eq(l.event, ln->event);
			ck_assert_str_eq(l.ts, m[0].str);
			count++;
			pos += n + 1;
		}
		free(data);
		free(path);
	}
	return count;
}

/* ---- basic ---- */

START_TEST(test_new_log)
{
	struct audit *a = open_log(NULL);
	const struct audit_report *r = audit_open_report(a);
	char *path = file_path(1);

	ck_assert_uint_eq(r->files, 0);
	ck_assert_uint_eq(r->last_seq, 0);
	ck_assert(!r->torn);
	ck_assert_uint_eq(audit_last_seq(a), 0);
	ck_assert_int_eq(audit_failed(a), RS_OK);
	ck_assert_str_eq(audit_errmsg(a), "");
	ck_assert_uint_eq(file_size(path), 0);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(read_log(1), 0);
	free(path);
}
END_TEST

/* The members of an "escapes" event: s, i, ok and a nested object. */
static json_t *escapes_members(const char *str, unsigned i)
{
	json_t *o = members_bytes("s", str, strlen(str));
	json_t *nested = json_object(), *arr = json_array();

	ck_assert_int_eq(rs_json_set_u64(o, "i", i), RS_OK);
	ck_assert_int_eq(rs_json_set_bool(o, "ok", i % 2), RS_OK);
	ck_assert_int_eq(rs_json_push(arr, json_integer(1)), RS_OK);
	ck_assert_int_eq(rs_json_push(arr, json_real(2.5)), RS_OK);
	ck_assert_int_eq(rs_json_push(arr, json_real(-3e2)), RS_OK);
	ck_assert_int_eq(rs_json_push(arr, json_null()), RS_OK);
	ck_assert_int_eq(rs_json_set(nested, "a", arr), RS_OK);
	ck_assert_int_eq(rs_json_set(o, "nested", nested), RS_OK);
	return o;
}

START_TEST(test_append_read_back)
{
	struct audit_options o = opts(5, 0, 0);
	struct audit *a = open_log(&o);
	static const char *const strs[] = {
		"plain", "quote\" and \\ backslash", "line\nfeed\r\ttab",
		"\x01\x1f ctl", "high \xc3\xa9\xff bytes", "", "/slash/"};
	struct audit_stats st;
	unsigned n = sizeof strs / sizeof strs[0];

	for (unsigned i = 0; i < n; i++)
		ck_assert_int_eq(audit_event(a, "escapes",
					     escapes_members(strs[i], i)),
				 RS_OK);
	ck_assert_int_eq(audit_event(a, AUDIT_EV_ELECTION_WON,
				     members_u64("term", 3)),
			 RS_OK);
	ck_assert_int_eq(audit_event(a, AUDIT_EV_NODE_STOP, NULL), RS_OK);
	ck_assert_uint_eq(audit_last_seq(a), n + 2);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.events, n + 2);
	ck_assert_uint_eq(st.durable_seq, 0); /* nothing written yet */
	uv_run(&tloop, UV_RUN_DEFAULT);       /* the batch timer fires */
	audit_stats(a, &st);
	ck_assert_uint_eq(st.durable_seq, n + 2);
	ck_assert_uint_eq(st.batches, 1);
	ck_assert_int_eq(close_log(a), RS_OK);

	ck_assert_uint_eq(read_log(1), n + 2);
	for (unsigned i = 0; i < n; i++) {
		struct tj_member m[16];
		int k = tj_line(lines[i].text, strlen(lines[i].text), m, 16);
		ck_assert_int_eq(k, 8);
		ck_assert_str_eq(lines[i].event, "escapes");
		ck_assert_str_eq(m[4].key, "s");
		/* Bytes come back as U+00NN: the decoded string is the input. */
		ck_assert_str_eq(m[4].str, strs[i]);
		ck_assert_uint_eq(tj_u64(tj_get(m, k, "i")), i);
		ck_assert_str_eq(m[6].key, "ok");
		ck_assert_str_eq(m[7].key, "nested");
	}
	ck_assert(strstr(lines[0].text, ",\"nested\":{\"a\":[1,2.5,-300.0,"
					"null]}}") != NULL);
	ck_assert_str_eq(lines[n].event, "election_won");
	ck_assert(strstr(lines[n].text, ",\"event\":\"election_won\","
					"\"term\":3}") != NULL);
	ck_assert_str_eq(lines[n + 1].event, "node_stop");
	ck_assert(strstr(lines[n + 1].text, "\"event\":\"node_stop\"}") != NULL);
}
END_TEST

/* Collects the extra members audit_line_parse hands on. */
static void collect_cb(void *ctx, const char *key, const json_t *value)
{
	ck_assert_int_eq(rs_json_set(ctx, key, json_deep_copy(value)), RS_OK);
}

/* Members nested three deep, with every kind of escape in keys and
 * values, come back equal through the file and audit_line_parse. */
START_TEST(test_members_round_trip)
{
	static const char *const doc =
		"{\"who\":\"q\\\"b\\\\s/\\n\\t\\u0001\\u007f\",\"n\":-12,"
		"\"f\":0.125,\"t\":true,\"z\":null,\"e\":{},"
		"\"list\":[[],[{\"k\\\"ey\":[1,\"\\u00e9\",{\"deep\":false}]}]],"
		"\"key with \\u001f\":\"v\"}";
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	json_t *extra, *back = json_object();
	struct audit_line l;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_msg(rs_json_parse_object(doc, strlen(doc), &extra, errmsg) ==
			      RS_OK,
		      "%s", errmsg);
	json_incref(extra); /* audit_event takes one reference */
	ck_assert_int_eq(audit_event(a, "round_trip", extra), RS_OK);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(read_log(1), 1);
	ck_assert_msg(audit_line_parse(lines[0].text, strlen(lines[0].text), &l,
				       collect_cb, back, errmsg) == RS_OK,
		      "%s", errmsg);
	ck_assert_str_eq(l.event, "round_trip");
	ck_assert_msg(json_equal(extra, back), "%s", lines[0].text);
	/* In the order they were given, after the fixed members. */
	ck_assert_str_eq(lines[0].first_extra, "who");
	/* jansson leaves '/' and DEL (0x7f, ASCII) as they are. */
	ck_assert(strstr(lines[0].text, "\"event\":\"round_trip\",\"who\":"
					"\"q\\\"b\\\\s/\\n\\t\\u0001\x7f\",") != NULL);
	json_decref(extra);
	json_decref(back);
}
END_TEST

/* A byte >= 0x80 in a string member is written \u00XX (jansson writes the
 * hex in capitals) and reads back as that byte; the file is ASCII. */
START_TEST(test_high_bytes_escaped)
{
	static const char bytes[] = "\x80\xc3\xa9\xff";
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	struct rs_buf out;
	struct tj_member m[8];
	struct audit_line l;
	json_t *back = json_object();
	char *path = file_path(1), *data;
	size_t len;
	int k;

	ck_assert_int_eq(audit_event(a, "bytes",
				     members_bytes("b", bytes, sizeof bytes - 1)),
			 RS_OK);
	ck_assert_int_eq(close_log(a), RS_OK);
	data = (char *)testutil_read_file(path, &len);
	for (size_t i = 0; i < len; i++)
		ck_assert_msg((unsigned char)data[i] < 0x80, "byte %zu", i);
	free(data);
	ck_assert_uint_eq(read_log(1), 1);
	ck_assert(strstr(lines[0].text,
			 "\"b\":\"\\u0080\\u00C3\\u00A9\\u00FF\"}") !=
		  NULL);
	k = tj_line(lines[0].text, strlen(lines[0].text), m, 8);
	ck_assert_int_eq(k, 5);
	ck_assert_str_eq(m[4].str, bytes);
	/* And through audit_line_parse's members, to the layer's reader. */
	ck_assert_int_eq(audit_line_parse(lines[0].text, strlen(lines[0].text),
					  &l, collect_cb, back, NULL),
			 RS_OK);
	rs_buf_init(&out);
	ck_assert_int_eq(rs_json_get_bytes(back, "b", &out, NULL), RS_OK);
	ck_assert_uint_eq(out.len, sizeof bytes - 1);
	ck_assert(memcmp(out.data, bytes, out.len) == 0);
	rs_buf_free(&out);
	json_decref(back);
	free(path);
}
END_TEST

START_TEST(test_file_names)
{
	static const char *const bad[] = {
		"audit-1.ndjson", "audit-00000000.ndjson",
		"audit-000000001.ndjson", "audit-0000000x.ndjson",
		"audit-00000001.ndjson.tmp", "audit-00000001.json",
		"audit--0000001.ndjson", "audit-99999999999999999999.ndjson"};
	char name[AUDIT_FILE_NAME_MAX];
	uint64_t v;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!audit_file_name_parse(bad[i], &v), "%s", bad[i]);
	audit_file_name(name, sizeof name, 42);
	ck_assert_str_eq(name, "audit-00000042.ndjson");
	ck_assert(audit_file_name_parse(name, &v));
	ck_assert_uint_eq(v, 42);
	audit_file_name(name, sizeof name, 123456789012ull);
	ck_assert_str_eq(name, "audit-123456789012.ndjson");
	ck_assert(audit_file_name_parse(name, &v));
	ck_assert_uint_eq(v, 123456789012ull);
}
END_TEST

START_TEST(test_event_refused)
{
	/* The writer's own names, and issue 10's case: a director event
	 * naming the failed node "node" instead of "component_node". */
	static const char *const reserved[] = {
		"{\"seq\":9}", "{\"node\":1}", "{\"ts\":\"x\"}",
		"{\"event\":\"x\"}", "{\"v\":1}",
		"{\"epoch\":2,\"node\":1,\"cause\":\"heartbeat\"}"};
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	static char big[AUDIT_LINE_MAX];
	struct audit_stats st;
	unsigned refused = 0;

	memset(big, 'x', sizeof big - 1);
	ck_assert_int_eq(audit_event(a, "Bad", NULL), RS_EINVAL);
	ck_assert_int_eq(audit_event(a, "with space", NULL), RS_EINVAL);
	ck_assert_int_eq(audit_event(a, "", NULL), RS_EINVAL);
	ck_assert_int_eq(audit_event(a, "ok", json_array()), RS_EINVAL);
	ck_assert_int_eq(audit_event(a, "ok", json_string("a")), RS_EINVAL);
	refused += 5;
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
		json_t *extra;
		ck_assert_int_eq(rs_json_parse_object(reserved[i],
						      strlen(reserved[i]),
						      &extra, NULL),
				 RS_OK);
		logbuf[0] = '\0';
		ck_assert_msg(audit_event(a, "ok", extra) == RS_EINVAL,
			      "accepted: %s", reserved[i]);
		ck_assert_msg(strstr(logbuf, "is reserved") != NULL, "%s",
			      logbuf);
		refused++;
	}
	ck_assert(strstr(logbuf, "member \"node\" is reserved") != NULL);
	ck_assert_int_eq(audit_event(a, "ok", members_bytes("s", big,
							    sizeof big - 1)),
			 RS_ETOOLARGE);
	refused++;
	ck_assert_uint_eq(audit_last_seq(a), 0);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.rejected, refused);
	ck_assert_uint_eq(st.events, 0);
	/* Refusals use no seq: the next event is 1. */
	{
		json_t *extra = json_object();
		ck_assert_int_eq(rs_json_set(extra, "a", json_array()), RS_OK);
		ck_assert_int_eq(audit_event(a, "ok", extra), RS_OK);
	}
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(read_log(1), 1);
	ck_assert_str_eq(lines[0].event, "ok");
	ck_assert_str_eq(lines[0].first_extra, "a");
}
END_TEST

/* Every event kind the coordinator and the director emit, with the members
 * their call sites write (coordinator/node.c, director/director.c; the
 * director's always start with "epoch").  Each must be accepted: an event
 * the writer refuses is lost (issue 10: component_failure carried "node"
 * twice).  The integration harness also fails any test whose node logged
 * audit.event_refused, which catches a call site that drifts from here. */
static const struct {
	const char *name;
	const char *members; /* a JSON object */
} emitted_events[] = {
	{AUDIT_EV_NODE_START, "{\"pid\":123}"},
	{AUDIT_EV_NODE_STOP, "{\"exit_code\":0}"},
	{AUDIT_EV_ELECTION_WON, "{\"term\":3}"},
	{AUDIT_EV_LEADER_LOST, "{\"term\":3}"},
	{AUDIT_EV_FAIL_FAST, "{\"reason\":\"store write failed: EIO\"}"},
	{AUDIT_EV_TAIL_TRUNCATED,
	 "{\"file\":\"audit-00000001.ndjson\",\"offset\":100,\"bytes\":7}"},
	{DIRECTOR_EV_PHASE_START, "{\"epoch\":2,\"phase\":\"barrier\"}"},
	{DIRECTOR_EV_PHASE_END,
	 "{\"epoch\":2,\"phase\":\"barrier\",\"duration_ms\":1}"},
	{DIRECTOR_EV_EPOCH_ALLOCATED, "{\"epoch\":2,\"version\":17}"},
	{DIRECTOR_EV_RECOVERY_VERSION, "{\"epoch\":2,\"recovery_version\":17}"},
	{DIRECTOR_EV_PREVIOUS_LAYOUT_FENCED,
	 "{\"epoch\":2,\"layout_id\":1,\"previous_epoch\":1}"},
	{DIRECTOR_EV_LAYOUT_BUILT,
	 "{\"epoch\":2,\"layout_id\":2,\"storage\":3,\"logs\":3,"
	 "\"commit_proxies\":3,\"resolvers\":1}"},
	{DIRECTOR_EV_LAYOUT_PERSISTED,
	 "{\"epoch\":2,\"layout_id\":2,\"version\":18,\"recovery_ms\":40}"},
	{DIRECTOR_EV_LAYOUT_UPDATED,
	 "{\"epoch\":2,\"layout_id\":3,\"previous_layout_id\":2,"
	 "\"version\":19,\"storage\":2,\"logs\":2,\"commit_proxies\":2,"
	 "\"update_ms\":12,\"reason\":\"component failure: node 3 sent no "
	 "heartbeat for 1003 ms\"}"},
	{DIRECTOR_EV_COMPONENT_FAILURE,
	 "{\"epoch\":2,\"component_node\":1,\"cause\":\"heartbeat\","
	 "\"age_ms\":603}"},
	{DIRECTOR_EV_COMPONENT_FAILURE,
	 "{\"epoch\":2,\"component_node\":1,\"cause\":\"apply_lag\","
	 "\"lag_versions\":5000001}"},
	{DIRECTOR_EV_COMPONENT_FAILURE,
	 "{\"epoch\":2,\"component_node\":3,\"cause\":\"log_lag\","
	 "\"lag_entries\":10001}"},
	{DIRECTOR_EV_DIRECTOR_EXIT,
	 "{\"epoch\":2,\"phase\":\"monitoring\",\"reason\":\"component "
	 "failure: node 1 sent no heartbeat for 603 ms\"}"},
};

START_TEST(test_every_emitted_event_is_written)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	unsigned n = sizeof emitted_events / sizeof emitted_events[0];

	for (unsigned i = 0; i < n; i++) {
		const char *text = emitted_events[i].members;
		json_t *extra;
		ck_assert_int_eq(rs_json_parse_object(text, strlen(text),
						      &extra, NULL),
				 RS_OK);
		ck_assert_msg(audit_event(a, emitted_events[i].name, extra) ==
				      RS_OK,
			      "event %s refused", emitted_events[i].name);
	}
	ck_assert_uint_eq(audit_last_seq(a), n);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(read_log(1), n);
	for (unsigned i = 0; i < n; i++) {
		ck_assert_str_eq(lines[i].event, emitted_events[i].name);
		/* Stored as given, after the fixed members. */
		ck_assert(strstr(lines[i].text, emitted_events[i].members + 1) !=
			  NULL);
	}
}
END_TEST

START_TEST(test_seq_after_reopen)
{
	struct audit_options o = opts(0, 0, 0);
	unsigned total = 0;

	for (unsigned round = 0; round < 4; round++) {
		struct audit *a = open_log(&o);
		ck_assert_uint_eq(audit_open_report(a)->last_seq, total);
		ck_assert_uint_eq(audit_last_seq(a), total);
		emit(a, total, round + 3);
		total += round + 3;
		if (round % 2 == 1)
			uv_run(&tloop, UV_RUN_DEFAULT); /* flushed before close */
		ck_assert_int_eq(close_log(a), RS_OK);
	}
	ck_assert_uint_eq(read_log(1), total);
	for (unsigned i = 0; i < total; i++)
		ck_assert_int_eq(lines[i].i, (int64_t)i);
}
END_TEST

START_TEST(test_close_flushes_all)
{
	/* A delay far beyond the test: only close can write the batch. */
	struct audit_options o = opts(600000, 0, 0);
	struct audit *a;
	uint64_t dropped;

	fileio_track_start();
	a = open_log(&o);
	emit(a, 0, 50);
	ck_assert_int_eq(close_log(a), RS_OK);
	/* Everything was fsynced, file and directory entries too. */
	dropped = fileio_crash_simulate();
	ck_assert_uint_eq(dropped, 0);
	ck_assert_uint_eq(read_log(1), 50);
}
END_TEST

START_TEST(test_events_during_flush)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	struct audit_stats st;

	emit(a, 0, 10);
	/* The timer (0 ms) fires and the batch goes to the thread pool... */
	uv_run(&tloop, UV_RUN_NOWAIT);
	/* ...while these queue behind it, in order. */
	emit(a, 10, 10);
	uv_run(&tloop, UV_RUN_DEFAULT);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.durable_seq, 20);
	ck_assert_uint_eq(st.batches, 2);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(read_log(1), 20);
	for (unsigned i = 0; i < 20; i++)
		ck_assert_int_eq(lines[i].i, (int64_t)i);
}
END_TEST

#define TS "\"ts\":\"2026-11-22T05:00:00.123Z\""
/* Valid fixed members, for lines whose fault is elsewhere. */
#define FIXED TS ",\"node\":1,\"seq\":1,\"event\":\"e\""

START_TEST(test_line_parse)
{
	/* Each refused line, and a word its message must hold. */
	static const struct {
		const char *line;
		const char *why;
	} bad[] = {
		{"", "JSON"},
		{"[]", "object"},
		{"{}", "\"ts\""},
		{"{" TS ",\"node\":1,\"seq\":1}", "\"event\""},
		{"{\"ts\":\"2026-11-22T05:00:00Z\",\"node\":1,\"seq\":1,\"event\":\"e\"}",
		 "\"ts\""},
		{"{\"ts\":\"2026-13-22T05:00:00.123Z\",\"node\":1,\"seq\":1,\"event\":\"e\"}",
		 "\"ts\""},
		{"{" TS ",\"node\":-1,\"seq\":1,\"event\":\"e\"}", "\"node\""},
		{"{" TS ",\"node\":\"1\",\"seq\":1,\"event\":\"e\"}", "\"node\""},
		{"{" TS ",\"node\":1,\"seq\":0,\"event\":\"e\"}", "\"seq\""},
		{"{" TS ",\"node\":1,\"seq\":01,\"event\":\"e\"}", "column"},
		{"{" TS ",\"node\":1,\"seq\":1.5,\"event\":\"e\"}", "\"seq\""},
		{"{" TS ",\"node\":1,\"seq\":1,\"event\":\"E\"}", "\"event\""},
		{"{" TS ",\"node\":1,\"seq\":1,\"event\":7}", "\"event\""},
		{"{" TS ",\"node\":1,\"seq\":1,\"seq\":2,\"event\":\"e\"}",
		 "duplicate"},
		{"{" FIXED ",\"x\":1,\"x\":2}", "duplicate"},
		{"{" FIXED ",}", "column"},
		{"{" FIXED "} x", "column"},
		{"{" FIXED ",\"x\":tru}", "column"},
		{"{" FIXED ",\"x\":\"\\q\"}", "column"},
		{"{" FIXED ",\"v\":\"1\"}", "\"v\""},
		/* node and seq are JSON integers: at most 2^63-1 */
		{"{" TS ",\"node\":1,\"seq\":9223372036854775808,\"event\":\"e\"}",
		 "column"},
		{"{" TS ",\"node\":1,\"seq\":18446744073709551616,\"event\":\"e\"}",
		 "column"},
		/* NDJSON: no CR (nor NUL, LF) anywhere in a line */
		{"{" TS ",\"node\":1,\"seq\":1,\r\"event\":\"e\"}", "CR"},
		{"{" FIXED ",\"x\":\"a\rb\"}", "CR"},
		{"{" FIXED ",\"x\":\"a\nb\"}", "LF"},
		/* a raw byte >= 0x80 outside a string */
		{"{" FIXED ",\"x\":\xff}", "column"},
	};
	const char *good =
		" {\"event\":\"e_1\", \"x\":{\"y\":[true,false,null,\"s\"]},"
		"\"seq\":9223372036854775807,\"node\":0,\t"
		"\"ts\":\"1970-01-01T00:00:01.002Z\",\"z\":\"\\u00e9\","
		"\"raw\":\"\xe9\xff\"} ";
	const char *v2 = "{" FIXED ",\"v\":2}";
	const char *v1 = "{" FIXED ",\"v\":1}";
	struct audit_line l;
	char errmsg[RS_ERRMSG_SIZE];
	json_t *members = json_object();
	struct rs_buf raw;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errmsg[0] = '\0';
		ck_assert_msg(audit_line_parse(bad[i].line, strlen(bad[i].line),
					       &l, NULL, NULL,
					       errmsg) == RS_ECORRUPT,
			      "accepted: %s", bad[i].line);
		ck_assert_msg(strstr(errmsg, bad[i].why) != NULL,
			      "%s: message \"%s\" does not name %s",
			      bad[i].line, errmsg, bad[i].why);
	}
	ck_assert_msg(audit_line_parse(good, strlen(good), &l, collect_cb,
				       members, errmsg) == RS_OK,
		      "%s", errmsg);
	ck_assert_uint_eq(l.seq, (uint64_t)INT64_MAX);
	ck_assert_uint_eq(l.node, 0);
	ck_assert_int_eq(l.ts_ms, 1002);
	ck_assert_str_eq(l.ts, "1970-01-01T00:00:01.002Z");
	ck_assert_str_eq(l.event, "e_1");
	ck_assert(!l.has_version);
	/* Raw bytes >= 0x80 inside a string are taken as they are. */
	rs_buf_init(&raw);
	ck_assert_int_eq(rs_json_get_bytes(members, "raw", &raw, NULL), RS_OK);
	ck_assert_uint_eq(raw.len, 2);
	ck_assert(memcmp(raw.data, "\xe9\xff", 2) == 0);
	rs_buf_free(&raw);
	json_decref(members);
	ck_assert_int_eq(audit_line_parse(v2, strlen(v2), &l, NULL, NULL,
					  errmsg),
			 RS_EFORMAT);
	ck_assert(strstr(errmsg, "\"v\"") != NULL);
	ck_assert_int_eq(audit_line_parse(v1, strlen(v1), &l, NULL, NULL,
					  errmsg),
			 RS_OK);
	ck_assert(l.has_version);
}
END_TEST

struct members {
	char keys[256];
	char vals[256];
};

static void member_cb(void *ctx, const char *key, const json_t *value)
{
	struct members *m = ctx;
	size_t k = strlen(m->keys), v = strlen(m->vals);
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);

	ck_assert_ptr_nonnull(text);
	snprintf(m->keys + k, sizeof m->keys - k, "%s;", key);
	snprintf(m->vals + v, sizeof m->vals - v, "%s;", text);
	free(text);
}

START_TEST(test_line_parse_members)
{
	const char *line =
		"{\"ts\":\"2026-11-22T05:00:00.123Z\",\"node\":1,\"seq\":5,"
		"\"event\":\"election_won\",\"term\":3,\"who\":\"a\\\"b\","
		"\"l\":[1, 2],\"v\":1}";
	struct members m = {{0}, {0}};
	struct audit_line l;

	ck_assert_int_eq(audit_line_parse(line, strlen(line), &l, member_cb,
					  &m, NULL),
			 RS_OK);
	/* In order, reserved names left out; values as JSON. */
	ck_assert_str_eq(m.keys, "term;who;l;");
	ck_assert_str_eq(m.vals, "3;\"a\\\"b\";[1,2];");
	/* 2026-11-22 is day 20779 since 1970-01-01. */
	ck_assert_int_eq(l.ts_ms, ((int64_t)20779 * 86400 + 5 * 3600) * 1000 +
					  123);
}
END_TEST

/* ---- torn tails and corruption ---- */

/* Five events in one file; *start is where the last line begins. */
static char *build_five(size_t *len, size_t *start)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	char *path = file_path(1), *data;

	emit(a, 0, 5);
	ck_assert_int_eq(close_log(a), RS_OK);
	data = (char *)testutil_read_file(path, len);
	ck_assert(*len > 0 && data[*len - 1] == '\n');
	*start = *len - 1;
	while (*start > 0 && data[*start - 1] != '\n')
		(*start)--;
	free(path);
	return data;
}

/* Reopen after damage: the log resumes after seq `last`, and every line in
 * the file is then valid. */
static void reopen_expect(uint64_t last, bool torn, size_t torn_at)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	const struct audit_report *r = audit_open_report(a);

	ck_assert_uint_eq(r->last_seq, last);
	ck_assert_int_eq(r->torn, torn);
	if (torn) {
		char *path = file_path(1);
		ck_assert_uint_eq(r->torn_offset, torn_at);
		ck_assert_str_eq(r->torn_file, "audit-00000001.ndjson");
		ck_assert_uint_eq(file_size(path), torn_at);
		ck_assert(strstr(logbuf, "torn last line") != NULL);
		free(path);
	}
	emit(a, 100, 1);
	ck_assert_int_eq(close_log(a), RS_OK);
}

#define CUT_SWEEP 160 /* at least the length of the last line */

START_TEST(test_torn_every_cut)
{
	size_t len, start, cut;
	char *data = build_five(&len, &start);
	char *path = file_path(1);
	unsigned n;

	ck_assert_uint_le(len - start, CUT_SWEEP);
	cut = start + (size_t)_i;
	if (cut >= len) { /* past the end of the sweep for this line */
		free(data);
		free(path);
		return;
	}
	testutil_write_file(path, data, cut);
	reopen_expect(4, cut != start, start);
	n = read_log(1);
	if (cut != start) {
		/* seq 5 was torn; the truncation is itself recorded */
		ck_assert_uint_eq(n, 6);
		ck_assert_str_eq(lines[4].event, "audit_tail_truncated");
		ck_assert(strstr(lines[4].text,
				 "\"file\":\"audit-00000001.ndjson\"") != NULL);
		ck_assert_int_eq(lines[5].i, 100);
	} else {
		ck_assert_uint_eq(n, 5);
		ck_assert_int_eq(lines[4].i, 100);
	}
	free(data);
	free(path);
}
END_TEST

enum { ZERO_TAIL, ZERO_LINE, ZERO_PARTIAL, ZERO__COUNT };

START_TEST(test_torn_zero_fill)
{
	size_t len, start;
	char *data = build_five(&len, &start);
	char *path = file_path(1);
	char buf[8192];
	size_t n = len;

	memcpy(buf, data, len);
	if (_i == ZERO_TAIL) { /* the size grew, the data never came */
		memset(buf + n, 0, 4096);
		n += 4096;
	} else if (_i == ZERO_LINE) { /* a later page came, not the first */
		memset(buf + start, 0, 20);
		n = len;
	} else { /* a partial line, then zeros */
		memcpy(buf + n, "{\"ts\":\"20", 9);
		memset(buf + n + 9, 0, 100);
		n += 109;
	}
	testutil_write_file(path, buf, n);
	if (_i == ZERO_LINE)
		reopen_expect(4, true, start);
	else
		reopen_expect(5, true, len);
	free(data);
	free(path);
}
END_TEST

START_TEST(test_corrupt_middle_kept)
{
	size_t len, start, first_nl;
	char *data = build_five(&len, &start);
	char *path = file_path(1), *after;
	size_t after_len;
	struct audit_options o = opts(0, 0, 0);
	struct audit *a;

	/* Break line 2's closing brace: a complete line, not JSON. */
	first_nl = (size_t)((char *)memchr(data, '\n', len) - data);
	{
		char *nl2 = memchr(data + first_nl + 1, '\n', len - first_nl - 1);
		ck_assert(nl2[-1] == '}');
		nl2[-1] = ']';
	}
	testutil_write_file(path, data, len);
	a = open_log(&o);
	ck_assert_uint_eq(audit_open_report(a)->corrupt_lines, 1);
	ck_assert(!audit_open_report(a)->torn);
	ck_assert_uint_eq(audit_last_seq(a), 5);
	ck_assert(strstr(logbuf, "line 2") != NULL);
	ck_assert(strstr(logbuf, "corrupt line left in place") != NULL);
	emit(a, 5, 1);
	ck_assert_int_eq(close_log(a), RS_OK);
	/* Append-only: every old byte is still there, corrupt one too. */
	after = (char *)testutil_read_file(path, &after_len);
	ck_assert_uint_gt(after_len, len);
	ck_assert(memcmp(after, data, len) == 0);
	free(after);
	free(data);
	free(path);
}
END_TEST

START_TEST(test_corrupt_last_complete_line)
{
	size_t len, start;
	char *data = build_five(&len, &start);
	char *path = file_path(1);
	struct audit_options o = opts(0, 0, 0);
	struct audit *a;

	/* A complete last line that is not valid: corruption, not a tear. */
	data[start] = 'X';
	testutil_write_file(path, data, len);
	a = open_log(&o);
	ck_assert(!audit_open_report(a)->torn);
	ck_assert_uint_eq(audit_open_report(a)->corrupt_lines, 1);
	ck_assert_uint_eq(audit_last_seq(a), 4);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(file_size(path), len);
	free(data);
	free(path);
}
END_TEST

START_TEST(test_empty_newest_file)
{
	size_t len, start;
	char *data = build_five(&len, &start);
	char *p2 = file_path(2);
	struct audit_options o = opts(0, 0, 0);
	struct audit *a;
	uint64_t nums[4];

	/* A crash right after a rotation created file 2. */
	testutil_write_file(p2, "", 0);
	a = open_log(&o);
	ck_assert_uint_eq(audit_open_report(a)->files, 2);
	ck_assert_uint_eq(audit_last_seq(a), 5);
	emit(a, 5, 2);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(list_files(nums, 4), 2);
	ck_assert_uint_gt(file_size(p2), 0);
	ck_assert_uint_eq(read_log(1), 7);
	ck_assert_uint_eq(lines[5].file, 2);
	free(data);
	free(p2);
}
END_TEST

START_TEST(test_foreign_node)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	char errmsg[RS_ERRMSG_SIZE];

	emit(a, 0, 2);
	ck_assert_int_eq(close_log(a), RS_OK);
	a = (struct audit *)1;
	ck_assert_int_eq(audit_open(&a, &tloop, tdir, NODE + 1, &o, errmsg),
			 RS_EINVAL);
	ck_assert_ptr_null(a);
	ck_assert_msg(strstr(errmsg, "is node 7's, not node 8's") != NULL,
		      "%s", errmsg);
}
END_TEST

START_TEST(test_strangers_ignored)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a;
	char *odd = testutil_path(adir, "audit-1.ndjson");
	char *notes = testutil_path(adir, "notes.txt");

	ck_assert_int_eq(mkdir(adir, 0755), 0);
	testutil_write_file(odd, "garbage", 7);
	testutil_write_file(notes, "hello", 5);
	a = open_log(&o);
	ck_assert_uint_eq(audit_open_report(a)->files, 0);
	emit(a, 0, 1);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(file_size(odd), 7);
	ck_assert_uint_eq(file_size(notes), 5);
	ck_assert_uint_eq(read_log(1), 1);
	free(odd);
	free(notes);
}
END_TEST

START_TEST(test_missing_data_dir)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct audit *a;
	char *nowhere = testutil_path(tdir, "no/such");

	ck_assert_int_ne(audit_open(&a, &tloop, nowhere, NODE, NULL, errmsg),
			 RS_OK);
	ck_assert_ptr_null(a);
	ck_assert(strstr(errmsg, "no/such/audit") != NULL);
	free(nowhere);
}
END_TEST

/* ---- rotation and retention ---- */

/* rounds of 4 events, each round its own batch. */
static void emit_rounds(struct audit *a, unsigned rounds, unsigned *next)
{
	for (unsigned r = 0; r < rounds; r++) {
		emit(a, *next, 4);
		*next += 4;
		uv_run(&tloop, UV_RUN_DEFAULT);
	}
}

START_TEST(test_rotation_retention)
{
	struct audit_options o = opts(0, 1024, 3);
	struct audit *a = open_log(&o);
	struct audit_stats st;
	uint64_t nums[64];
	unsigned next = 0, n, count;

	emit_rounds(a, 60, &next);
	audit_stats(a, &st);
	ck_assert_int_eq(close_log(a), RS_OK);
	n = list_files(nums, 64);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_gt(st.rotations, 5);
	ck_assert_uint_eq(nums[2], st.rotations + 1);
	ck_assert_uint_eq(st.files_deleted, st.rotations + 1 - 3);
	for (unsigned i = 0; i < n; i++) {
		char *p = file_path(nums[i]);
		ck_assert_uint_eq(nums[i], nums[0] + i); /* consecutive */
		ck_assert_uint_le(file_size(p), 1024);   /* batches fit */
		free(p);
	}
	/* The files kept hold the newest events, seq without gaps. */
	count = read_log(0);
	ck_assert_uint_gt(count, 4);
	ck_assert_uint_gt(lines[0].seq, 1);
	ck_assert_uint_eq(lines[count - 1].seq, next);
	ck_assert_int_eq(lines[count - 1].i, (int64_t)next - 1);
	ck_assert_uint_eq(lines[0].file, nums[0]);
	/* Reopen: the seq goes on in the newest file. */
	a = open_log(&o);
	ck_assert_uint_eq(audit_last_seq(a), next);
	ck_assert_uint_eq(audit_open_report(a)->files, 3);
	emit(a, next, 1);
	ck_assert_int_eq(close_log(a), RS_OK);
	count = read_log(0); /* it may have rotated once more */
	ck_assert_uint_eq(lines[count - 1].seq, next + 1);
	ck_assert_uint_ge(lines[count - 1].file, nums[2]);
	ck_assert_uint_eq(list_files(nums, 64), 3);
}
END_TEST

START_TEST(test_keep_all_and_no_rotation)
{
	struct audit_options o = opts(0, _i == 0 ? 600 : 0, 0);
	struct audit *a = open_log(&o);
	uint64_t nums[64];
	unsigned next = 0, n;

	emit_rounds(a, 20, &next);
	ck_assert_int_eq(close_log(a), RS_OK);
	n = list_files(nums, 64);
	if (_i == 0)
		ck_assert_uint_gt(n, 5); /* rotating, none deleted */
	else
		ck_assert_uint_eq(n, 1); /* never rotating */
	ck_assert_uint_eq(nums[0], 1);
	ck_assert_uint_eq(read_log(1), 80);
}
END_TEST

START_TEST(test_big_batch_not_split)
{
	struct audit_options o = opts(0, 512, 0);
	struct audit *a = open_log(&o);
	uint64_t nums[8];
	unsigned next = 0;
	char *p2 = file_path(2);

	emit_rounds(a, 1, &next); /* file 1: one small batch */
	emit(a, next, 40);        /* one batch far over 512 bytes */
	next += 40;
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(list_files(nums, 8), 2);
	ck_assert_uint_gt(file_size(p2), 512); /* whole, in the new file */
	ck_assert_uint_eq(read_log(1), next);
	free(p2);
}
END_TEST

/* ---- batching and faults ---- */

START_TEST(test_fsync_batching)
{
	struct audit_options o = opts(50, 0, 0);
	struct audit *a = open_log(&o);
	unsigned long fsyncs = fileio_op_count(FIO_OP_FSYNC);
	unsigned long writes = fileio_op_count(FIO_OP_WRITE);
	struct audit_stats st;

	emit(a, 0, 1000); /* one loop turn */
	uv_run(&tloop, UV_RUN_DEFAULT);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.batches, 1);
	ck_assert_uint_eq(st.durable_seq, 1000);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_FSYNC) - fsyncs, 1);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_WRITE) - writes, 1);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_le(fileio_op_count(FIO_OP_FSYNC) - fsyncs, 2);
	ck_assert_uint_eq(read_log(1), 1000);
}
END_TEST

static const struct {
	enum fileio_op op;
	int err;
	int code;
} faults[] = {
	{FIO_OP_WRITE, ENOSPC, RS_ENOSPC},
	{FIO_OP_WRITE, EIO, RS_EIO},
	{FIO_OP_FSYNC, EIO, RS_EIO},
};

START_TEST(test_write_fault)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	struct audit_stats st;
	int code = faults[_i].code;

	emit(a, 0, 3);
	uv_run(&tloop, UV_RUN_DEFAULT); /* seq 1..3 durable */
	fileio_fault_set(faults[_i].op, 1, faults[_i].err);
	emit(a, 3, 10);
	uv_run(&tloop, UV_RUN_DEFAULT);
	ck_assert_int_eq(audit_failed(a), code);
	ck_assert_msg(strstr(audit_errmsg(a),
			     "append to audit-00000001.ndjson") != NULL,
		      "%s", audit_errmsg(a));
	ck_assert(strstr(logbuf, "audit log failed") != NULL);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.failures, 1);
	ck_assert_uint_eq(st.dropped, 10);
	ck_assert_uint_eq(st.durable_seq, 3);
	/* Fail-stop: later events are refused with the same error. */
	ck_assert_int_eq(audit_event(a, "ev_test", NULL), code);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.dropped, 11);
	ck_assert_int_eq(close_log(a), code);
	/* Reopen recovers: after 3, or after 13 if the unsynced write did
	 * land (fsync fault). */
	reopen_expect(faults[_i].op == FIO_OP_FSYNC ? 13 : 3, false, 0);
}
END_TEST

START_TEST(test_crash_drops_unsynced)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a;
	uint64_t dropped;

	fileio_track_start();
	a = open_log(&o);
	emit(a, 0, 4);
	uv_run(&tloop, UV_RUN_DEFAULT); /* durable */
	fileio_fault_set(FIO_OP_FSYNC, 1, EIO);
	emit(a, 4, 4); /* written, never fsynced */
	uv_run(&tloop, UV_RUN_DEFAULT);
	ck_assert_int_eq(audit_failed(a), RS_EIO);
	ck_assert_int_eq(close_log(a), RS_EIO);
	dropped = fileio_crash_simulate();
	ck_assert_uint_gt(dropped, 0);
	fileio_fault_reset();
	reopen_expect(4, false, 0);
	ck_assert_uint_eq(read_log(1), 5);
}
END_TEST

START_TEST(test_rotation_fault)
{
	struct audit_options o = opts(0, 256, 0);
	struct audit *a = open_log(&o);
	unsigned next = 0;
	uint64_t nums[8];

	emit_rounds(a, 1, &next);
	/* The next batch rotates: its create fails. */
	fileio_fault_set(FIO_OP_OPEN, 1, EMFILE);
	emit(a, next, 4);
	uv_run(&tloop, UV_RUN_DEFAULT);
	ck_assert_int_ne(audit_failed(a), RS_OK);
	ck_assert(strstr(audit_errmsg(a), "rotate") != NULL);
	ck_assert_int_ne(close_log(a), RS_OK);
	ck_assert_uint_eq(list_files(nums, 8), 1);
	reopen_expect(next, false, 0);
}
END_TEST

START_TEST(test_unlink_fault_is_a_warning)
{
	struct audit_options o = opts(0, 300, 2);
	struct audit *a = open_log(&o);
	struct audit_stats st;
	unsigned next = 0;
	uint64_t nums[16];

	emit_rounds(a, 2, &next); /* fill file 1, rotate to 2 */
	fileio_fault_set(FIO_OP_UNLINK, 1, EACCES);
	emit_rounds(a, 2, &next); /* rotation to 3 cannot delete 1 */
	ck_assert_int_eq(audit_failed(a), RS_OK);
	audit_stats(a, &st);
	ck_assert_uint_ge(st.failures, 1);
	ck_assert(strstr(logbuf, "retention") != NULL);
	emit_rounds(a, 6, &next); /* the next rotations catch up */
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(list_files(nums, 16), 2);
}
END_TEST

START_TEST(test_pending_overflow_fails)
{
	struct audit_options o = opts(600000, 0, 0);
	struct audit *a = open_log(&o);
	static char big[48 * 1024];
	int rv = RS_OK;
	unsigned i;

	memset(big, 'y', sizeof big - 1);
	/* A disk that never answers: the queue must not grow forever. */
	for (i = 0; i < 200 && rv == RS_OK; i++)
		rv = audit_event(a, "big", members_bytes("s", big,
							 sizeof big - 1));
	ck_assert_int_eq(rv, RS_ETOOLARGE);
	ck_assert_uint_lt(i, 200);
	ck_assert_int_eq(audit_failed(a), RS_ETOOLARGE);
	ck_assert_int_eq(close_log(a), RS_ETOOLARGE);
	ck_assert_uint_eq(read_log(1), 0);
}
END_TEST

START_TEST(test_closed_refuses)
{
	struct audit_options o = opts(0, 0, 0);
	struct audit *a = open_log(&o);
	struct close_result r = {0};

	emit(a, 0, 1);
	audit_close(a, close_cb, &r);
	ck_assert_int_eq(audit_event(a, "late", NULL), RS_ECLOSED);
	uv_run(&tloop, UV_RUN_DEFAULT);
	ck_assert(r.called);
	ck_assert_int_eq(r.status, RS_OK);
	ck_assert_uint_eq(read_log(1), 1);
}
END_TEST

/* ---- the fail-fast path ---- */

START_TEST(test_flush_sync_queued)
{
	struct audit_options o = opts(600000, 0, 0); /* the timer never fires */
	struct audit *a;
	unsigned long fsyncs;
	struct audit_stats st;
	static const char why[] = "journal: fsync: I/O error";

	fileio_track_start();
	a = open_log(&o);
	emit(a, 0, 5);
	ck_assert_int_eq(audit_event(a, AUDIT_EV_FAIL_FAST,
				     members_bytes("reason", why,
						   sizeof why - 1)),
			 RS_OK);
	fsyncs = fileio_op_count(FIO_OP_FSYNC);
	ck_assert_int_eq(audit_flush_sync(a), RS_OK);
	ck_assert_uint_eq(fileio_op_count(FIO_OP_FSYNC) - fsyncs, 1);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.durable_seq, 6);
	/* Sealed: nothing more is taken. */
	ck_assert_int_eq(audit_event(a, "late", NULL), RS_ESHUTDOWN);
	ck_assert_int_eq(audit_failed(a), RS_OK);
	/* On disk before the loop ran at all. */
	ck_assert_uint_eq(read_log(1), 6);
	ck_assert_str_eq(lines[5].event, "fail_fast");
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(fileio_crash_simulate(), 0);
	ck_assert_uint_eq(read_log(1), 6);
}
END_TEST

/* _i = 1: the batch in flight also rotates. */
START_TEST(test_flush_sync_in_flight)
{
	struct audit_options o = opts(0, _i ? 300 : 0, 0);
	struct audit *a = open_log(&o);
	unsigned next = 0;
	uint64_t nums[4];

	emit_rounds(a, 1, &next);
	emit(a, next, 4); /* the next batch... */
	next += 4;
	uv_run(&tloop, UV_RUN_NOWAIT); /* ...goes to the thread pool */
	emit(a, next, 3);
	next += 3;
	ck_assert_int_eq(audit_flush_sync(a), RS_OK);
	/* Everything, in order, without running the loop again. */
	ck_assert_uint_eq(read_log(1), next);
	ck_assert_uint_eq(list_files(nums, 4), _i ? 2 : 1);
	ck_assert_uint_eq(lines[next - 1].file, _i ? 2 : 1);
	ck_assert_int_eq(close_log(a), RS_OK);
	ck_assert_uint_eq(read_log(1), next);
	reopen_expect(next, false, 0);
}
END_TEST

START_TEST(test_flush_sync_failed)
{
	struct audit_options o = opts(600000, 0, 0);
	struct audit *a = open_log(&o);

	emit(a, 0, 2);
	fileio_fault_set(FIO_OP_WRITE, 1, ENOSPC);
	ck_assert_int_eq(audit_flush_sync(a), RS_ENOSPC);
	ck_assert_int_eq(audit_failed(a), RS_ENOSPC);
	ck_assert(strstr(audit_errmsg(a), "flush") != NULL);
	ck_assert_int_eq(close_log(a), RS_ENOSPC);
	ck_assert_uint_eq(read_log(1), 0);
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
	return testutil_tcase(s, name, setup, teardown, 60);
}

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase(s, "basic");

	tcase_add_test(tc, test_new_log);
	tcase_add_test(tc, test_append_read_back);
	tcase_add_test(tc, test_members_round_trip);
	tcase_add_test(tc, test_high_bytes_escaped);
	tcase_add_test(tc, test_file_names);
	tcase_add_test(tc, test_event_refused);
	tcase_add_test(tc, test_every_emitted_event_is_written);
	tcase_add_test(tc, test_seq_after_reopen);
	tcase_add_test(tc, test_close_flushes_all);
	tcase_add_test(tc, test_events_during_flush);
	tcase_add_test(tc, test_closed_refuses);
	tcase_add_test(tc, test_line_parse);
	tcase_add_test(tc, test_line_parse_members);
	tc = tcase(s, "recovery");
	tcase_add_loop_test(tc, test_torn_every_cut, 0, CUT_SWEEP);
	tcase_add_loop_test(tc, test_torn_zero_fill, 0, ZERO__COUNT);
	tcase_add_test(tc, test_corrupt_middle_kept);
	tcase_add_test(tc, test_corrupt_last_complete_line);
	tcase_add_test(tc, test_empty_newest_file);
	tcase_add_test(tc, test_foreign_node);
	tcase_add_test(tc, test_strangers_ignored);
	tcase_add_test(tc, test_missing_data_dir);
	tc = tcase(s, "files");
	tcase_add_test(tc, test_rotation_retention);
	tcase_add_loop_test(tc, test_keep_all_and_no_rotation, 0, 2);
	tcase_add_test(tc, test_big_batch_not_split);
	tc = tcase(s, "faults");
	tcase_add_test(tc, test_fsync_batching);
	tcase_add_loop_test(tc, test_write_fault, 0,
			    (int)(sizeof faults / sizeof faults[0]));
	tcase_add_test(tc, test_crash_drops_unsynced);
	tcase_add_test(tc, test_rotation_fault);
	tcase_add_test(tc, test_unlink_fault_is_a_warning);
	tcase_add_test(tc, test_pending_overflow_fails);
	tc = tcase(s, "fail-fast");
	tcase_add_test(tc, test_flush_sync_queued);
	tcase_add_loop_test(tc, test_flush_sync_in_flight, 0, 2);
	tcase_add_test(tc, test_flush_sync_failed);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
