/*
 * rsctl status, rsctl members, and what every cluster command shares.
 *
 *   rsctl status          STATUS of every endpoint, side by side
 *   rsctl members list    the Raft configuration, from whichever node answers
 *
 * Shared (declared in rsctl.h): the common options (--endpoints, --json,
 * --timeout-ms), opening a client, mapping an rs_error status to an exit
 * code, and printing bytes as text or as a JSON string.
 *
 * status asks every endpoint at once on a private loop with the async API,
 * not one after the other with rs_sync_info: an unreachable node costs the
 * whole --timeout-ms, and three of them in a row would cost it three times.
 *
 * The nodes answer STATUS and MEMBERS with JSON (docs/protocol.md §9).  Its
 * shape is known and small, so a reader of a few dozen lines that finds a
 * top-level field of an object, and walks an array, does the job; it skips
 * nested values it is not asked about, so the "id" inside "members" is never
 * mistaken for the node's own.
 */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/client.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl.h"

/* --timeout-ms: a day is already far past any sensible wait. */
#define CL_TIMEOUT_MS_MAX 86400000u
/* A table cell: room for a whole rs_result message. */
#define CL_CELL_SIZE 272u
#define CL_STATUS_COLS 12u
#define CL_MEMBERS_COLS 5u
/* Nesting the JSON reader follows before calling the input malformed. */
#define CJ_DEPTH_MAX 16u

/* ---- common options ---- */

void rsctl_cluster_args_init(struct rsctl_cluster_args *a)
{
	const char *env = getenv(RSCTL_ENDPOINTS_ENV);

	memset(a, 0, sizeof *a);
	a->endpoints = env != NULL && env[0] != '\0' ? env
						     : RSCTL_ENDPOINTS_DEFAULT;
	a->timeout_ms = RSCTL_TIMEOUT_MS_DEFAULT;
	a->json = false;
}

int rsctl_cluster_parse_opt(int argc, char **argv, int *i,
			    const char *help_cmd, struct rsctl_cluster_args *a)
{
	const char *v;
	uint64_t ms;
	bool missing;

	assert(*i < argc);
	if (strcmp(argv[*i], "--json") == 0) {
		a->json = true;
		return RSCTL_EXIT_OK;
	}
	v = cliopt_value(argc, argv, i, "--endpoints", &missing);
	if (missing)
		return rsctl_usage_errorf(help_cmd,
					  "--endpoints needs HOST:PORT,...");
	if (v != NULL) {
		if (v[0] == '\0')
			return rsctl_usage_errorf(help_cmd,
						  "--endpoints is empty");
		a->endpoints = v;
		return RSCTL_EXIT_OK;
	}
	v = cliopt_value(argc, argv, i, "--timeout-ms", &missing);
	if (missing)
		return rsctl_usage_errorf(help_cmd,
					  "--timeout-ms needs a number");
	if (v == NULL)
		return -1;
	if (!cliopt_parse_u64(v, &ms) || ms == 0 || ms > CL_TIMEOUT_MS_MAX)
		return rsctl_usage_errorf(help_cmd,
					  "--timeout-ms: '%s' is not a number "
					  "of milliseconds in 1..%u",
					  v, CL_TIMEOUT_MS_MAX);
	a->timeout_ms = (unsigned)ms;
	return RSCTL_EXIT_OK;
}

void rsctl_cluster_help_opts(FILE *f)
{
	fprintf(f,
		"  --endpoints HOST:PORT,...\n"
		"               client addresses of the nodes (IPv4 or "
		"localhost); default:\n"
		"               $%s if set, else\n"
		"               %s\n"
		"  --timeout-ms N\n"
		"               give up on a request after N ms, retries "
		"included\n"
		"               (default %u)\n"
		"  --json       machine-readable output; keys and values are "
		"JSON strings\n"
		"               whose code points U+0000..U+00FF are the bytes "
		"(decode\n"
		"               with Latin-1)\n"
		"  -h, --help   this text\n",
		RSCTL_ENDPOINTS_ENV, RSCTL_ENDPOINTS_DEFAULT,
		RSCTL_TIMEOUT_MS_DEFAULT);
}

void rsctl_cluster_client_options(const struct rsctl_cluster_args *a,
				  struct rs_client_options *o)
{
	assert(a->endpoints != NULL && a->timeout_ms > 0);
	memset(o, 0, sizeof *o);
	o->endpoints = a->endpoints;
	o->op_timeout_ms = a->timeout_ms;
	o->connections = 1;
	o->no_leader_pref = false;
}

int rsctl_cluster_open(const struct rsctl_cluster_args *a,
		       const char *help_cmd, struct rs_sync **out)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_client_options o;
	int rv;

	rsctl_cluster_client_options(a, &o);
	*out = NULL;
	rv = rs_sync_open(out, &o, errmsg);
	if (rv == RS_EINVAL)
		return rsctl_usage_errorf(help_cmd, "--endpoints: %s", errmsg);
	if (rv != RS_OK) {
		rsctl_errorf("open client: %s (%s)", errmsg, rs_strerror(rv));
		return RSCTL_EXIT_FAIL;
	}
	assert(*out != NULL);
	return RSCTL_EXIT_OK;
}

/* ---- errors ---- */

int rsctl_exit_for(int status)
{
	switch (status) {
	case RS_OK:
		return RSCTL_EXIT_OK;
	case RS_EUNAVAILABLE:
	case RS_ETIMEOUT:
	case RS_EUNKNOWN:
	case RS_ENOTLEADER:
	case RS_ERECOVERING:
	case RS_ESHUTDOWN:
		return RSCTL_EXIT_UNAVAILABLE;
	case RS_ETOOLARGE:
	case RS_EINVAL:
		return RSCTL_EXIT_USAGE;
	default:
		return RSCTL_EXIT_FAIL;
	}
}

int rsctl_fail(const char *what, const struct rs_result *res)
{
	assert(res->status != RS_OK);
	if (res->message[0] != '\0' &&
	    strcmp(res->message, rs_strerror(res->status)) != 0)
		rsctl_errorf("%s: %s (%s)", what, res->message,
			     rs_strerror(res->status));
	else
		rsctl_errorf("%s: %s", what, rs_strerror(res->status));
	return rsctl_exit_for(res->status);
}

/* ---- printing bytes ---- */

/* One byte as display text into out (at least 5 bytes); returns its
 * length. */
static size_t cl_text_byte(char *out, uint8_t c)
{
	if (c == '\\') {
		out[0] = out[1] = '\\';
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	bytes_hex_encode(&c, 1, out + 2);
	return 4;
}

size_t rsctl_text(char *out, size_t size, const uint8_t *p, size_t len,
		  size_t max)
{
	size_t at = 0, i;

	assert(size > 4 && (p != NULL || len == 0));
	for (i = 0; i < len; i++) {
		char e[4];
		size_t n = cl_text_byte(e, p[i]);
		/* Keep room for "..." and the NUL in case more follows. */
		if ((max > 0 && i >= max) || at + n + 4 > size)
			break;
		memcpy(out + at, e, n);
		at += n;
	}
	if (i < len) {
		assert(at + 4 <= size);
		memcpy(out + at, "...", 3);
		at += 3;
	}
	out[at] = '\0';
	assert(at < size);
	return at;
}

void rsctl_put_text(FILE *f, const uint8_t *p, size_t len, size_t max)
{
	size_t n = max > 0 && max < len ? max : len, i;

	assert(p != NULL || len == 0);
	for (i = 0; i < n; i++) {
		char e[4];
		fwrite(e, 1, cl_text_byte(e, p[i]), f);
	}
	if (n < len)
		fputs("...", f);
}

void rsctl_put_json(FILE *f, const uint8_t *p, size_t len)
{
	size_t i;

	assert(p != NULL || len == 0);
	fputc('"', f);
	for (i = 0; i < len; i++) {
		uint8_t c = p[i];
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c >= 0x20 && c < 0x7f) {
				fputc(c, f);
			} else {
				char e[6] = "\\u00";
				bytes_hex_encode(&c, 1, e + 4);
				fwrite(e, 1, sizeof e, f);
			}
		}
	}
	fputc('"', f);
}

/* ---- a JSON reader for the nodes' flat answers ---- */

struct cj_span {
	const char *p;
	size_t len;
};

static size_t cj_ws(const char *s, size_t len, size_t pos)
{
	while (pos < len && (s[pos] == ' ' || s[pos] == '\t' ||
			     s[pos] == '\n' || s[pos] == '\r'))
		pos++;
	return pos;
}

/* Just past the string that opens at s[pos] == '"'; 0 if it never ends. */
static size_t cj_skip_string(const char *s, size_t len, size_t pos)
{
	assert(pos < len && s[pos] == '"');
	for (pos++; pos < len; pos++) {
		if (s[pos] == '\\')
			pos++; /* whatever it escapes, it does not end us */
		else if (s[pos] == '"')
			return pos + 1;
	}
	return 0;
}

static size_t cj_skip_value(const char *s, size_t len, size_t pos,
			    unsigned depth);

/* Just past the object or array that opens at s[pos]; 0 if malformed. */
static size_t cj_skip_nested(const char *s, size_t len, size_t pos,
			     unsigned depth)
{
	char close = s[pos] == '{' ? '}' : ']';

	assert(s[pos] == '{' || s[pos] == '[');
	pos = cj_ws(s, len, pos + 1);
	if (pos < len && s[pos] == close)
		return pos + 1;
	while (pos < len) {
		if (close == '}') {
			if (s[pos] != '"' || (pos = cj_skip_string(s, len, pos)) == 0)
				return 0;
			pos = cj_ws(s, len, pos);
			if (pos >= len || s[pos] != ':')
				return 0;
			pos++;
		}
		pos = cj_skip_value(s, len, pos, depth + 1);
		if (pos == 0)
			return 0;
		pos = cj_ws(s, len, pos);
		if (pos < len && s[pos] == close)
			return pos + 1;
		if (pos >= len || s[pos] != ',')
			return 0;
		pos = cj_ws(s, len, pos + 1);
	}
	return 0;
}

/* Just past the value at or after s[pos] (leading space skipped); 0 if
 * malformed.  Numbers and literals are taken as a run of their
 * characters; what they say is checked by whoever reads them. */
static size_t cj_skip_value(const char *s, size_t len, size_t pos,
			    unsigned depth)
{
	size_t start;

	pos = cj_ws(s, len, pos);
	if (pos >= len || depth > CJ_DEPTH_MAX)
		return 0;
	if (s[pos] == '"')
		return cj_skip_string(s, len, pos);
	if (s[pos] == '{' || s[pos] == '[')
		return cj_skip_nested(s, len, pos, depth);
	start = pos;
	while (pos < len && strchr("+-.0123456789eEtruefalsn", s[pos]) != NULL)
		pos++;
	return pos > start ? pos : 0;
}

/* The value of the top-level member `key` of the object in s; false if s is
 * no object or has no such member.  Keys are compared as written (the ones
 * looked up need no escapes). */
static bool cj_field(const char *s, size_t len, const char *key,
		     struct cj_span *out)
{
	size_t klen = strlen(key), pos = cj_ws(s, len, 0);

	if (pos >= len || s[pos] != '{')
		return false;
	pos = cj_ws(s, len, pos + 1);
	while (pos < len && s[pos] == '"') {
		size_t kstart = pos + 1, vstart, kend = cj_skip_string(s, len, pos);
		if (kend == 0)
			return false;
		pos = cj_ws(s, len, kend);
		if (pos >= len || s[pos] != ':')
			return false;
		vstart = cj_ws(s, len, pos + 1);
		pos = cj_skip_value(s, len, vstart, 1);
		if (pos == 0)
			return false;
		if (kend - 1 - kstart == klen &&
		    memcmp(s + kstart, key, klen) == 0) {
			out->p = s + vstart;
			out->len = pos - vstart;
			return true;
		}
		pos = cj_ws(s, len, pos);
		if (pos >= len || s[pos] != ',')
			return false;
		pos = cj_ws(s, len, pos + 1);
	}
	return false;
}

static bool cj_u64(const char *s, size_t len, const char *key, uint64_t *out)
{
	char digits[24];
	struct cj_span v;

	if (!cj_field(s, len, key, &v) || v.len == 0 || v.len >= sizeof digits)
		return false;
	memcpy(digits, v.p, v.len);
	digits[v.len] = '\0';
	return cliopt_parse_u64(digits, out);
}

static bool cj_bool(const char *s, size_t len, const char *key, bool *out)
{
	struct cj_span v;

	if (!cj_field(s, len, key, &v))
		return false;
	if (v.len == 4 && memcmp(v.p, "true", 4) == 0)
		*out = true;
	else if (v.len == 5 && memcmp(v.p, "false", 5) == 0)
		*out = false;
	else
		return false;
	return true;
}

/* The ASCII character of the 4 hex digits at p; '?' for anything else. */
static char cj_hex4(const char *p)
{
	unsigned v = 0, i;

	for (i = 0; i < 4; i++) {
		int d = bytes_hex_digit_value(p[i]);
		if (d < 0)
			return '?';
		v = v << 4 | (unsigned)d;
	}
	return v > 0 && v < 0x80 ? (char)v : '?';
}

/* A string member into out (cut to fit).  The common escapes are decoded;
 * \uXXXX above ASCII, which the nodes never send, becomes '?'. */
static bool cj_str(const char *s, size_t len, const char *key, char *out,
		   size_t size)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	struct cj_span v;
	size_t i, at = 0;

	assert(size > 0);
	if (!cj_field(s, len, key, &v) || v.len < 2 || v.p[0] != '"')
		return false;
	for (i = 1; i + 1 < v.len && at + 1 < size; i++) {
		char c = v.p[i];
		const char *e;
		if (c == '\\' && v.p[i + 1] == 'u' && i + 6 < v.len) {
			c = cj_hex4(v.p + i + 2);
			i += 5;
		} else if (c == '\\' &&
			   (e = strchr(from, v.p[i + 1])) != NULL &&
			   v.p[i + 1] != '\0') {
			c = to[e - from];
			i++;
		}
		out[at++] = c;
	}
	out[at] = '\0';
	return true;
}

/* The next element of the array s, starting with *pos = 0; false at its
 * end, or with *bad set if s is no well-formed array. */
static bool cj_array_next(const char *s, size_t len, size_t *pos,
			  struct cj_span *elem, bool *bad)
{
	size_t at = cj_ws(s, len, *pos), end;

	*bad = true;
	if (*pos == 0) {
		if (at >= len || s[at] != '[')
			return false;
		at = cj_ws(s, len, at + 1);
		if (at < len && s[at] == ']') {
			*bad = false;
			return false;
		}
	} else if (at < len && s[at] == ']') {
		*bad = false;
		return false;
	} else if (at >= len || s[at] != ',') {
		return false;
	} else {
		at = cj_ws(s, len, at + 1);
	}
	end = cj_skip_value(s, len, at, 1);
	if (end == 0)
		return false;
	elem->p = s + at;
	elem->len = end - at;
	*pos = end;
	*bad = false;
	return true;
}

/* ---- tables ---- */

/* Columns padded to their widest cell, two spaces apart; the last one is
 * not padded, so a long message there does not widen the others. */
static void cl_table_print(FILE *f, const char *const *head, unsigned ncols,
			   char (*cells)[CL_CELL_SIZE], unsigned nrows)
{
	size_t width[CL_STATUS_COLS];
	unsigned r, c;

	assert(ncols > 0 && ncols <= CL_STATUS_COLS);
	for (c = 0; c < ncols; c++) {
		width[c] = strlen(head[c]);
		for (r = 0; r < nrows; r++) {
			size_t n = strlen(cells[r * ncols + c]);
			width[c] = n > width[c] ? n : width[c];
		}
	}
	for (r = 0; r <= nrows; r++)
		for (c = 0; c < ncols; c++) {
			const char *s = r == 0 ? head[c]
					       : cells[(r - 1) * ncols + c];
			if (c + 1 < ncols)
				fprintf(f, "%-*s  ", (int)width[c], s);
			else
				fprintf(f, "%s\n", s);
		}
}

static void cl_cell_u64(char *cell, const char *json, size_t len,
			const char *key)
{
	uint64_t v;

	if (cj_u64(json, len, key, &v))
		snprintf(cell, CL_CELL_SIZE, "%" PRIu64, v);
	else
		snprintf(cell, CL_CELL_SIZE, "?");
}

static void cl_cell_str(char *cell, const char *json, size_t len,
			const char *key)
{
	if (!cj_str(json, len, key, cell, CL_CELL_SIZE))
		snprintf(cell, CL_CELL_SIZE, "?");
	else if (cell[0] == '\0')
		snprintf(cell, CL_CELL_SIZE, "-");
}

static void cl_cell_bytes(char *cell, const char *json, size_t len,
			  const char *key)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	uint64_t v;
	double x;
	unsigned u = 0;

	if (!cj_u64(json, len, key, &v)) {
		snprintf(cell, CL_CELL_SIZE, "?");
		return;
	}
	if (v < 1024) {
		snprintf(cell, CL_CELL_SIZE, "%" PRIu64 " B", v);
		return;
	}
	for (x = (double)v / 1024; x >= 1024 && u + 1 < 4; u++)
		x /= 1024;
	snprintf(cell, CL_CELL_SIZE, "%.1f %s", x, units[u]);
}

/* ---- a private loop for concurrent requests ---- */

/* One STATUS request per endpoint, all in flight together. */
struct cl_probe {
	struct rs_op op;
	struct cl_status *st;
	bool done;
};

struct cl_status {
	uv_loop_t loop;
	struct rs_client *client; /* freed once closed */
	struct cl_probe probes[RS_CLIENT_ENDPOINTS_MAX];
	/* The endpoints' names, kept past the client. */
	char names[RS_CLIENT_ENDPOINTS_MAX][CL_CELL_SIZE];
	unsigned n;
	unsigned n_done;
	bool closed;
};

static void cl_status_closed(void *arg)
{
	struct cl_status *st = arg;

	assert(!st->closed && st->n_done == st->n);
	st->closed = true;
	st->client = NULL; /* freed */
}

static void cl_probe_done(struct cl_probe *p)
{
	struct cl_status *st = p->st;

	assert(!p->done && st->n_done < st->n);
	p->done = true;
	if (++st->n_done == st->n)
		rs_client_close(st->client, cl_status_closed, st);
}

static void cl_probe_cb(struct rs_op *op)
{
	cl_probe_done(op->data);
}

/* Ask every endpoint; blocks until all have answered or given up.  The
 * results stay in st->probes[i].op.result for the caller to free. */
static int cl_status_collect(struct cl_status *st,
			     const struct rsctl_cluster_args *a)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_client_options o;
	unsigned i;
	int rv;

	rsctl_cluster_client_options(a, &o);
	o.no_leader_pref = true; /* each probe stays on its endpoint */
	if (uv_loop_init(&st->loop) != 0) {
		rsctl_errorf("status: cannot create an event loop");
		return RSCTL_EXIT_FAIL;
	}
	rv = rs_client_create(&st->client, &st->loop, &o, errmsg);
	if (rv != RS_OK) {
		uv_loop_close(&st->loop);
		if (rv == RS_EINVAL)
			return rsctl_usage_errorf("rsctl status",
						  "--endpoints: %s", errmsg);
		rsctl_errorf("status: open client: %s", rs_strerror(rv));
		return RSCTL_EXIT_FAIL;
	}
	/* Read before any request: a leader's redirect may add to it. */
	st->n = rs_client_endpoint_count(st->client);
	assert(st->n > 0 && st->n <= RS_CLIENT_ENDPOINTS_MAX);
	for (i = 0; i < st->n; i++) {
		struct cl_probe *p = &st->probes[i];
		snprintf(st->names[i], sizeof st->names[i], "%s",
			 rs_client_endpoint(st->client, i));
		p->st = st;
		p->op.data = p;
		rv = rs_client_info(st->client, &p->op, WIRE_STATUS, (int)i,
				    cl_probe_cb);
		if (rv != RS_OK) { /* no callback will come: finish it here */
			rs_result_init(&p->op.result);
			p->op.result.status = rv;
			snprintf(p->op.result.message,
				 sizeof p->op.result.message, "%s",
				 rs_strerror(rv));
			cl_probe_done(p);
		}
	}
	uv_run(&st->loop, UV_RUN_DEFAULT);
	assert(st->closed && st->n_done == st->n);
	rv = uv_loop_close(&st->loop);
	assert(rv == 0); /* the client closed every handle it had */
	(void)rv;
	return RSCTL_EXIT_OK;
}

/* ---- status ---- */

static const char *const cl_status_head[CL_STATUS_COLS] = {
	"ID", "ADDRESS", "ROLE", "TERM", "LEADER", "EPOCH", "PHASE", "COMMIT",
	"APPLIED", "VERSION", "STORAGE", "HEALTH"};
#define CL_STATUS_HEALTH (CL_STATUS_COLS - 1u) /* last: a long message fits */

/* A usable answer: an object that names its role. */
static bool cl_status_ok(const struct rs_result *res, char *role,
			 size_t size)
{
	const char *json = (const char *)res->value.data;

	return res->status == RS_OK && res->value.len > 0 &&
	       cj_str(json, res->value.len, "role", role, size);
}

/* The ROLE shown for an endpoint without a usable answer. */
static const char *cl_status_failure(const struct rs_result *res)
{
	if (res->status == RS_OK)
		return "invalid"; /* answered, but not a status object */
	if (rsctl_exit_for(res->status) == RSCTL_EXIT_UNAVAILABLE)
		return "unreachable";
	return "error";
}

static const char *cl_status_message(const struct rs_result *res)
{
	return res->status != RS_OK ? res->message
				    : "the answer is not a status object";
}

/* On the leader: how long the last recovery took, after the phase
 * ("monitoring:210ms"; no space, so the column stays one word). */
static void cl_phase_took(char *cell, const char *json, size_t len)
{
	uint64_t ms;
	size_t n = strlen(cell);

	if (cj_u64(json, len, "recovery_ms", &ms) && ms > 0 &&
	    n + 24 < CL_CELL_SIZE)
		snprintf(cell + n, CL_CELL_SIZE - n, ":%" PRIu64 "ms", ms);
}

static void cl_status_row(char (*row)[CL_CELL_SIZE], const char *endpoint,
			  const struct rs_result *res)
{
	const char *json = (const char *)res->value.data;
	size_t len = res->value.len;
	char role[32];
	unsigned c;

	snprintf(row[1], CL_CELL_SIZE, "%s", endpoint);
	if (!cl_status_ok(res, role, sizeof role)) {
		for (c = 0; c < CL_STATUS_COLS; c++)
			if (c != 1)
				snprintf(row[c], CL_CELL_SIZE, "-");
		snprintf(row[2], CL_CELL_SIZE, "%s", cl_status_failure(res));
		snprintf(row[CL_STATUS_HEALTH], CL_CELL_SIZE, "%s",
			 cl_status_message(res));
		return;
	}
	cl_cell_u64(row[0], json, len, "id");
	snprintf(row[2], CL_CELL_SIZE, "%s", role);
	cl_cell_u64(row[3], json, len, "term");
	cl_cell_u64(row[4], json, len, "leader_id");
	/* The state machine's epoch on every node; the director's phase on
	 * the leader ("none" elsewhere). */
	cl_cell_u64(row[5], json, len, "epoch");
	cl_cell_str(row[6], json, len, "director_phase");
	cl_phase_took(row[6], json, len);
	cl_cell_u64(row[7], json, len, "commit_index");
	cl_cell_u64(row[8], json, len, "applied_index");
	cl_cell_u64(row[9], json, len, "applied_version");
	cl_cell_bytes(row[10], json, len, "storage_bytes");
	cl_cell_str(row[CL_STATUS_HEALTH], json, len, "health");
}

static void cl_status_print_json(const struct cl_status *st)
{
	unsigned i;

	printf("[");
	for (i = 0; i < st->n; i++) {
		const struct rs_result *res = &st->probes[i].op.result;
		const char *ep = st->names[i];
		char role[32];

		printf(i == 0 ? "\n  " : ",\n  ");
		if (cl_status_ok(res, role, sizeof role)) {
			/* The node's own object: fields are only ever added,
			 * and scripts should see them all. */
			fwrite(res->value.data, 1, res->value.len, stdout);
			continue;
		}
		printf("{\"endpoint\":");
		rsctl_put_json(stdout, (const uint8_t *)ep, strlen(ep));
		printf(",\"unreachable\":%s,\"error\":",
		       strcmp(cl_status_failure(res), "unreachable") == 0
			       ? "true"
			       : "false");
		rsctl_put_json(stdout, (const uint8_t *)rs_strerror(res->status),
			       strlen(rs_strerror(res->status)));
		printf(",\"message\":");
		rsctl_put_json(stdout, (const uint8_t *)cl_status_message(res),
			       strlen(cl_status_message(res)));
		printf("}");
	}
	printf("\n]\n");
}

static int cl_status_run(const struct rsctl_cluster_args *a)
{
	static char cells[RS_CLIENT_ENDPOINTS_MAX * CL_STATUS_COLS]
			 [CL_CELL_SIZE];
	struct cl_status *st = calloc(1, sizeof *st);
	unsigned i, answered = 0, leaders = 0;
	int rv;

	if (st == NULL) {
		rsctl_errorf("status: out of memory");
		return RSCTL_EXIT_FAIL;
	}
	rv = cl_status_collect(st, a);
	if (rv != RSCTL_EXIT_OK) {
		free(st);
		return rv;
	}
	for (i = 0; i < st->n; i++) {
		const struct rs_result *res = &st->probes[i].op.result;
		char role[32];
		if (cl_status_ok(res, role, sizeof role)) {
			answered++;
			leaders += strcmp(role, "leader") == 0;
		}
		cl_status_row(&cells[i * CL_STATUS_COLS], st->names[i], res);
	}
	if (a->json)
		cl_status_print_json(st);
	else
		cl_table_print(stdout, cl_status_head, CL_STATUS_COLS, cells,
			       st->n);
	rv = RSCTL_EXIT_OK;
	if (answered < st->n / 2 + 1) {
		rsctl_errorf("status: %u of %u endpoints answered, not a "
			     "majority", answered, st->n);
		rv = RSCTL_EXIT_UNAVAILABLE;
	} else if (leaders == 0) {
		rsctl_errorf("status: no node that answered is the leader");
		rv = RSCTL_EXIT_UNAVAILABLE;
	}
	for (i = 0; i < st->n; i++)
		rs_result_free(&st->probes[i].op.result);
	free(st);
	return rv;
}

/* ---- members ---- */

static const char *const cl_members_head[CL_MEMBERS_COLS] = {
	"ID", "RAFT_ADDR", "CLIENT_ADDR", "ROLE", "LEADER"};

/* Fill one table row per member; false if the answer is malformed. */
static bool cl_members_rows(const char *json, size_t len,
			    char (*cells)[CL_CELL_SIZE], unsigned max,
			    unsigned *n)
{
	struct cj_span m;
	size_t pos = 0;
	bool bad, leader;

	*n = 0;
	while (cj_array_next(json, len, &pos, &m, &bad)) {
		char (*row)[CL_CELL_SIZE];
		if (*n == max)
			return false;
		row = &cells[*n * CL_MEMBERS_COLS];
		cl_cell_u64(row[0], m.p, m.len, "id");
		cl_cell_str(row[1], m.p, m.len, "raft_addr");
		cl_cell_str(row[2], m.p, m.len, "client_addr");
		cl_cell_str(row[3], m.p, m.len, "role");
		snprintf(row[4], CL_CELL_SIZE, "%s",
			 !cj_bool(m.p, m.len, "leader", &leader) ? "?"
			 : leader				 ? "yes"
								 : "no");
		(*n)++;
	}
	return !bad;
}

static int cl_members_run(const struct rsctl_cluster_args *a)
{
	/* Raft configurations are small; more than this is not an answer. */
	enum { MEMBERS_MAX = 64 };
	static char cells[MEMBERS_MAX * CL_MEMBERS_COLS][CL_CELL_SIZE];
	struct rs_result res;
	struct rs_sync *s;
	unsigned n;
	int rv;

	rv = rsctl_cluster_open(a, "rsctl members list", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (rs_sync_info(s, WIRE_MEMBERS, -1, &res) != RS_OK) {
		rv = rsctl_fail("members", &res);
	} else if (!cl_members_rows((const char *)res.value.data,
				    res.value.len, cells, MEMBERS_MAX, &n)) {
		rsctl_errorf("members: malformed answer from %s: %.200s",
			     res.endpoint != NULL ? res.endpoint : "?",
			     (const char *)res.value.data);
		rv = RSCTL_EXIT_FAIL;
	} else if (a->json) {
		fwrite(res.value.data, 1, res.value.len, stdout);
		fputc('\n', stdout);
	} else {
		cl_table_print(stdout, cl_members_head, CL_MEMBERS_COLS, cells,
			       n);
	}
	rs_result_free(&res);
	rs_sync_close(s);
	return rv;
}

/* ---- the commands ---- */

struct cl_command {
	const char *name;     /* for "rsctl <name> --help" */
	const char *sub;      /* a required subcommand, or NULL */
	const char *synopsis;
	const char *help;
	const char *exits;
	int (*run)(const struct rsctl_cluster_args *a);
};

static const struct cl_command cl_status = {
	"status", NULL, "rsctl status [options]",
	"Asks every endpoint for its STATUS, all at once, and prints one row "
	"per\n"
	"endpoint: node id, the address asked, Raft role and term, the "
	"leader it\n"
	"knows, the epoch its state machine is in and the director's phase "
	"(on\n"
	"the leader: monitoring once recovered; \"none\" on followers), its "
	"commit\n"
	"and applied Raft indexes, the highest applied store version, bytes "
	"on\n"
	"disk, and storage health.  An endpoint that does not answer within\n"
	"--timeout-ms gets the role \"unreachable\" and the error in the "
	"HEALTH\n"
	"column.\n\n"
	"--json prints an array with one element per endpoint, in order: the "
	"node's\n"
	"status object as it sent it (docs/protocol.md section 9: id, "
	"client_addr,\n"
	"role, term, leader_id, commit_index, applied_index, "
	"applied_version,\n"
	"storage_bytes, health, ...), or for an endpoint without one\n"
	"  {\"endpoint\":E,\"unreachable\":B,\"error\":NAME,"
	"\"message\":TEXT}\n"
	"(unreachable is false for a node that answered with an error; its "
	"row\n"
	"then says \"error\" instead of \"unreachable\").\n",
	"  0  a majority of the endpoints answered and one of them is the "
	"leader\n"
	"  3  fewer answered, or none of them is the leader (the table is "
	"still\n"
	"     printed)\n",
	cl_status_run};

static const struct cl_command cl_members = {
	"members", "list", "rsctl members list [options]",
	"Lists the members of the Raft configuration, as the node that "
	"answers\n"
	"knows them (the client prefers the leader): id, Raft address, "
	"client\n"
	"address, role (voter, standby or spare), and whether it is the "
	"leader.\n"
	"--json prints the node's array as sent: objects with id, "
	"raft_addr,\n"
	"client_addr, role and leader.\n",
	"  0  success\n"
	"  1  the answer could not be read\n"
	"  3  no node answered\n",
	cl_members_run};

static void cl_help(const struct cl_command *cmd)
{
	printf("Usage: %s\n\n%s\nOptions:\n", cmd->synopsis, cmd->help);
	rsctl_cluster_help_opts(stdout);
	printf("\nExit codes:\n%s  %d  usage error: bad arguments or "
	       "endpoints\n",
	       cmd->exits, RSCTL_EXIT_USAGE);
}

static int cl_main(const struct cl_command *cmd, int argc, char **argv)
{
	struct rsctl_cluster_args a;
	char help_cmd[64];
	int i = 1, rv;

	assert(argc >= 1 && strcmp(argv[0], cmd->name) == 0);
	snprintf(help_cmd, sizeof help_cmd, "rsctl %s%s%s", cmd->name,
		 cmd->sub != NULL ? " " : "", cmd->sub != NULL ? cmd->sub : "");
	rsctl_cluster_args_init(&a);
	if (cmd->sub != NULL && argc >= 2 && !rsctl_is_help(argv[1])) {
		if (strcmp(argv[1], cmd->sub) != 0)
			return rsctl_usage_errorf(help_cmd,
						  "unknown %s subcommand '%s'",
						  cmd->name, argv[1]);
		i = 2;
	} else if (cmd->sub != NULL && argc < 2) {
		return rsctl_usage_errorf(help_cmd, "missing subcommand (%s)",
					  cmd->sub);
	}
	for (; i < argc; i++) {
		if (rsctl_is_help(argv[i])) {
			cl_help(cmd);
			return RSCTL_EXIT_OK;
		}
		rv = rsctl_cluster_parse_opt(argc, argv, &i, help_cmd, &a);
		if (rv > RSCTL_EXIT_OK)
			return rv;
		if (rv < 0)
			return rsctl_usage_errorf(help_cmd, "%s '%s'",
						  argv[i][0] == '-'
							  ? "unknown option"
							  : "unexpected argument",
						  argv[i]);
	}
	return cmd->run(&a);
}

int rsctl_status_run(int argc, char **argv)
{
	return cl_main(&cl_status, argc, argv);
}

int rsctl_members_run(int argc, char **argv)
{
	return cl_main(&cl_members, argc, argv);
}
