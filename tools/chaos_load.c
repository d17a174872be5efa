/*
 * chaos_load: `rschaos load` (the workload) and `rschaos final` (read back
 * the unique keys), the two writers of a chaos history.
 *
 * The history is NDJSON (format 1; the contract with `rschaos check` and
 * tools/chaos): a meta line, one op line per completed operation, an end
 * line; `final` appends a final line and another end line.  An end line
 * carries the number of lines before it and the CRC-32C of every byte
 * before it, so a reader can tell a cut or damaged history.
 *
 * load.  N logical clients on one libuv loop, each with an rs_client of
 * its own (so each fails over on its own) and one operation outstanding
 * at a time, issued back to back.  The mix, from a seeded PRNG per client:
 * 40% linearizable read of a register key P/k/i, 25% blind write of one,
 * 20% compare-and-set (linearizable read, then a SET whose read-conflict
 * range is that key at the read's version), 15% write of a new key P/u/C-SEQ.
 * Every value written is "C-SEQ" (client, per-client sequence), unique in
 * the run.  The cluster is being killed and partitioned meanwhile: a client
 * whose op failed or ended unknown sleeps 20-50 ms and goes on (not after
 * a cas mismatch or conflict, which a working cluster answers), and one
 * that keeps failing gets a fresh rs_client.  The run never ends early
 * because the cluster is down.
 *
 * Outcomes.  Each op line says ok, fail (definitely not applied) or unknown
 * (may have been applied); a wrong "fail" would make the checker report a
 * violation the store did not commit, so anything not known to be a refusal
 * is unknown (load_commit_result has the table).  A failed read is "fail",
 * which the checker ignores.
 *
 * Timing.  Times are microseconds on CLOCK_MONOTONIC since the start;
 * invoke_us is taken before the request is submitted and complete_us when
 * its callback runs, so the interval always contains the real one.  A cas
 * spans its read and its commit.
 *
 * Ending.  After --duration, or on SIGINT/SIGTERM, no new op starts; the
 * outstanding ones get a bounded time to answer (the library's own deadline
 * is --op-timeout-ms), then their clients are closed, which ends them with
 * the library's shutdown outcome (a sent commit: unknown).  Then the end
 * line is written and the file fsynced.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "raftstore/client.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tools/chaos.h"
#include "tools/cliopt.h"

#define HIST_FORMAT 1

#define LOAD_DURATION_S_DEFAULT 30.0
#define LOAD_DURATION_S_MAX (7.0 * 24 * 3600)
#define LOAD_CLIENTS_DEFAULT 8u
#define LOAD_CLIENTS_MAX 1024u
#define LOAD_KEYS_DEFAULT 5u
#define LOAD_KEYS_MAX 100000u
#define LOAD_OP_TIMEOUT_MS_DEFAULT 2000u
#define LOAD_OP_TIMEOUT_MS_MAX 600000u
/* After an op that did not succeed: a down cluster must not become a hot
 * loop, and clients failed by one event should not come back in step. */
#define LOAD_PAUSE_MS_MIN 20u
#define LOAD_PAUSE_MS_MAX 50u
/* Consecutive unsuccessful ops before a client gets a fresh rs_client. */
#define LOAD_RECREATE_AFTER 8u
/* How long outstanding ops may still answer after a signal. */
#define LOAD_SIGNAL_GRACE_MS 1000u
/* Values a client remembers, for stale cas expectations. */
#define LOAD_SEEN_MAX 8u
/* Percent of cas ops that expect a remembered (maybe stale) value. */
#define LOAD_CAS_STALE_PCT 25u
#define LOAD_PREFIX_MAX 128u
#define LOAD_KEY_MAX (LOAD_PREFIX_MAX + 32u)
/* Text of a value read back; a longer one is cut (and so matches no write,
 * as every value this tool writes is far shorter). */
#define LOAD_VALUE_TEXT_MAX 96u
#define LOAD_ERROR_TEXT_MAX 320u
#define LOAD_STDIO_BUF (1u << 20)

#define FINAL_TIMEOUT_MS_DEFAULT 30000u
#define FINAL_OP_TIMEOUT_MS_MAX 5000u
#define FINAL_RETRY_MS 250u
#define FINAL_PAGE_ROWS WIRE_RANGE_LIMIT_DEFAULT

/* ---- small helpers ---- */

static uint64_t load_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t load_unix_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* splitmix64: seeds each client's stream from the run's seed. */
static uint64_t load_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* xorshift64*: one client's stream; the state is never 0. */
static uint64_t load_rand(uint64_t *s)
{
	assert(*s != 0);
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static unsigned load_rand_below(uint64_t *s, unsigned n)
{
	assert(n > 0);
	return (unsigned)((load_rand(s) >> 11) % n);
}

/* Bytes as printable ASCII for the history: they are kept if printable
 * and not a backslash, else written \xNN; cut at size - 4 with "...".
 * What this tool writes is kept as is. */
static void load_text(char *out, size_t size, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t at = 0, i;

	assert(size >= 8);
	for (i = 0; i < len && at + 5 < size - 3; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
			out[at++] = (char)b[i];
		else
			at += (size_t)snprintf(out + at, size - at, "\\x%02x",
					       b[i]);
	}
	if (i < len)
		at += (size_t)snprintf(out + at, size - at, "...");
	out[at] = '\0';
	assert(at < size);
}

/* ---- the history file ---- */

/* A history being written: every byte goes through hist_line, which keeps
 * the line count and the CRC-32C that the end line states. */
struct hist {
	FILE *f;
	const char *path;
	uint64_t lines;
	uint32_t crc;
	int err; /* errno of the first failed write, 0 if none */
};

/* Write obj (consumed) as one line.  A write error is kept in h->err and
 * reported at the end: the run goes on, the history is then unusable. */
static void hist_line(struct hist *h, json_t *obj)
{
	char *s;
	size_t n;

	assert(h->f != NULL && obj != NULL);
	assert(json_is_string(json_object_get(obj, "kind")));
	s = rs_json_dump(obj, RS_JSON_COMPACT);
	json_decref(obj);
	if (s == NULL) {
		h->err = h->err ? h->err : ENOMEM;
		return;
	}
	n = strlen(s);
	assert(n > 2 && memchr(s, '\n', n) == NULL);
	h->crc = crc32c_extend(h->crc, s, n);
	h->crc = crc32c_extend(h->crc, "\n", 1);
	h->lines++;
	if ((fwrite(s, 1, n, h->f) != n || fputc('\n', h->f) == EOF) &&
	    h->err == 0)
		h->err = errno ? errno : EIO;
	free(s);
}

static void hist_flush(struct hist *h)
{
	if (fflush(h->f) != 0 && h->err == 0)
		h->err = errno ? errno : EIO;
}

/* The end line, then flush, fsync and close.  0, or an errno. */
static int hist_close(struct hist *h)
{
	char crc[9];
	json_t *end;

	snprintf(crc, sizeof crc, "%08" PRIx32, h->crc);
	end = json_pack("{s:s, s:o, s:s}", "kind", "end", "lines",
			rs_json_u64(h->lines), "crc32c", crc);
	if (end == NULL)
		h->err = h->err ? h->err : ENOMEM;
	else
		hist_line(h, end);
	hist_flush(h);
	if (fsync(fileno(h->f)) != 0 && h->err == 0)
		h->err = errno;
	if (fclose(h->f) != 0 && h->err == 0)
		h->err = errno;
	h->f = NULL;
	return h->err;
}

/* ---- arguments ---- */

/* The value of "--name V" or "--name=V" at argv[*i] (advancing *i past a
 * separate value); NULL if argv[*i] is another option.  A missing value
 * sets *missing. */
static int load_usage_errorf(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int load_usage_errorf(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rschaos %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see rschaos %s --help)\n", cmd);
	return CHAOS_EXIT_USAGE;
}

static int load_num_opt(const char *cmd, const char *flag, const char *v,
			uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (!cliopt_parse_u64(v, &n) || n < min || n > max)
		return load_usage_errorf(cmd, "%s: '%s' is not a whole number "
					 "from %" PRIu64 " to %" PRIu64,
					 flag, v, min, max);
	*out = n;
	return CHAOS_EXIT_OK;
}

struct load_args {
	const char *endpoints;
	const char *out;
	const char *prefix; /* NULL: chaos-<seed>-<unixtime> */
	double duration_s;
	uint64_t clients;
	uint64_t keys;
	uint64_t seed;
	bool seed_given;
	uint64_t op_timeout_ms;
	bool help;
};

static void load_help(FILE *f)
{
	fprintf(f,
"Usage: rschaos load --endpoints H:P,... --out FILE [OPTIONS]\n"
"Run the chaos workload against a cluster and record its history in FILE\n"
"(NDJSON, format 1: a meta line, one line per completed op, an end line\n"
"with the line count and CRC-32C; FILE is replaced).\n\n"
"N clients on one event loop, each with its own connection and one op at a\n"
"time: 40%% linearizable reads and 25%% writes of the register keys\n"
"P/k/0..K-1, 20%% compare-and-set on them (a linearizable read, then a\n"
"write that conflicts if the key changed since), 15%% writes of new keys\n"
"P/u/C-SEQ.  Every value written is unique (\"C-SEQ\").  Each op is recorded\n"
"as ok, fail (certainly not applied) or unknown (may have been applied).\n"
"A client sleeps 20-50 ms after an op that failed or ended unknown (but\n"
"not after a cas mismatch or conflict); the run goes on through outages.\n"
"Progress goes to stderr every second.\n\n"
"Options:\n"
"  --endpoints LIST     client endpoints, HOST:PORT,... (required)\n"
"  --out FILE           the history to write (required)\n"
"  --duration S         seconds to run, may be fractional (default 30)\n"
"  --clients N          logical clients, 1..%u (default %u)\n"
"  --keys K             register keys, 1..%u (default %u)\n"
"  --seed N             PRNG seed, 0..2^63-1 (default: from the clock;\n"
"                       printed, and recorded in the meta line)\n"
"  --prefix P           key prefix, printable ASCII without spaces, up to %u\n"
"                       bytes (default chaos-<seed>-<unix time>)\n"
"  --op-timeout-ms MS   per request, retries included (default %u)\n"
"  --help               this text\n\n"
"At the end of --duration no new op starts, and the outstanding ones get\n"
"up to twice --op-timeout-ms plus 1 s to answer.  SIGINT or SIGTERM end\n"
"the run early the same way, with up to %u ms (a second signal: at\n"
"once).  Ops still unanswered then are recorded as unknown (writes) or\n"
"fail (reads), and the history is closed normally.\n\n"
"Exit codes: 0 the run completed (whatever the cluster did), 2 bad\n"
"arguments or FILE could not be written.\n",
		LOAD_CLIENTS_MAX, LOAD_CLIENTS_DEFAULT, LOAD_KEYS_MAX,
		LOAD_KEYS_DEFAULT, LOAD_PREFIX_MAX, LOAD_OP_TIMEOUT_MS_DEFAULT,
		LOAD_SIGNAL_GRACE_MS);
}

static int load_check_prefix(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > LOAD_PREFIX_MAX)
		return load_usage_errorf("load", "--prefix: must have 1 to %u "
					 "bytes", LOAD_PREFIX_MAX);
	for (size_t i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '\\')
			return load_usage_errorf("load", "--prefix '%s': only "
						 "printable ASCII, no spaces or "
						 "backslashes", p);
	return CHAOS_EXIT_OK;
}

static int load_parse_duration(const char *v, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || !(d > 0) ||
	    d > LOAD_DURATION_S_MAX)
		return load_usage_errorf("load", "--duration: '%s' is not a "
					 "number of seconds above 0", v);
	*out = d;
	return CHAOS_EXIT_OK;
}

/* A string option at argv[*i] into *out: -1 if argv[*i] is not `flag`,
 * else an exit code. */
static int load_str_opt(const char *cmd, int argc, char **argv, int *i,
			const char *flag, const char **out)
{
	bool missing;
	const char *v = cliopt_value(argc, argv, i, flag, &missing);

	if (missing || (v != NULL && v[0] == '\0'))
		return load_usage_errorf(cmd, "%s needs a value", flag);
	if (v == NULL)
		return -1;
	*out = v;
	return CHAOS_EXIT_OK;
}

/* One option at argv[*i]: an exit code, or -1 if it is not a load option. */
static int load_parse_opt(int argc, char **argv, int *i, struct load_args *a)
{
	static const struct {
		const char *flag;
		uint64_t min, max;
		size_t off;
	} nums[] = {
		{"--clients", 1, LOAD_CLIENTS_MAX, offsetof(struct load_args, clients)},
		{"--keys", 1, LOAD_KEYS_MAX, offsetof(struct load_args, keys)},
		{"--seed", 0, INT64_MAX, offsetof(struct load_args, seed)},
		{"--op-timeout-ms", 1, LOAD_OP_TIMEOUT_MS_MAX,
		 offsetof(struct load_args, op_timeout_ms)},
	};
	const char *v = NULL;
	int rv;

	for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
		rv = load_str_opt("load", argc, argv, i, nums[k].flag, &v);
		if (rv == -1)
			continue;
		if (rv != CHAOS_EXIT_OK)
			return rv;
		a->seed_given |= strcmp(nums[k].flag, "--seed") == 0;
		return load_num_opt("load", nums[k].flag, v, nums[k].min,
				    nums[k].max,
				    (uint64_t *)((char *)a + nums[k].off));
	}
	if ((rv = load_str_opt("load", argc, argv, i, "--endpoints",
			       &a->endpoints)) != -1 ||
	    (rv = load_str_opt("load", argc, argv, i, "--out", &a->out)) != -1)
		return rv;
	if ((rv = load_str_opt("load", argc, argv, i, "--prefix", &v)) != -1) {
		a->prefix = v;
		return rv == CHAOS_EXIT_OK ? load_check_prefix(v) : rv;
	}
	if ((rv = load_str_opt("load", argc, argv, i, "--duration", &v)) != -1)
		return rv == CHAOS_EXIT_OK ? load_parse_duration(v, &a->duration_s)
					   : rv;
	return -1;
}

static int load_parse(int argc, char **argv, struct load_args *a)
{
	int rv;

	memset(a, 0, sizeof *a);
	a->duration_s = LOAD_DURATION_S_DEFAULT;
	a->clients = LOAD_CLIENTS_DEFAULT;
	a->keys = LOAD_KEYS_DEFAULT;
	a->op_timeout_ms = LOAD_OP_TIMEOUT_MS_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			a->help = true;
			return CHAOS_EXIT_OK;
		}
		rv = load_parse_opt(argc, argv, &i, a);
		if (rv == -1)
			return load_usage_errorf("load", "unknown argument '%s'",
						 argv[i]);
		if (rv != CHAOS_EXIT_OK)
			return rv;
	}
	if (a->endpoints == NULL)
		return load_usage_errorf("load", "--endpoints is required");
	if (a->out == NULL)
		return load_usage_errorf("load", "--out is required");
	assert(a->clients >= 1 && a->keys >= 1 && a->op_timeout_ms >= 1);
	return CHAOS_EXIT_OK;
}

/* ---- load: state ---- */

enum load_f { LOAD_F_READ, LOAD_F_WRITE, LOAD_F_CAS, LOAD_F_UNIQUE, LOAD_F__COUNT };
static const char *const load_f_names[] = {"read", "write", "cas", "unique"};
/* Percent of each, in enum order. */
static const unsigned load_f_pct[] = {40, 25, 20, 15};

enum load_result { LOAD_OK, LOAD_FAIL, LOAD_UNKNOWN, LOAD_RESULT__COUNT };
static const char *const load_result_names[] = {"ok", "fail", "unknown"};

/* A value as the history has it: text, or JSON null (absent). */
struct load_val {
	bool null;
	char s[LOAD_VALUE_TEXT_MAX];
};

/* The op a client is running, and then its line. */
struct load_rec {
	enum load_f f;
	uint64_t id;
	unsigned key_index; /* register ops */
	char key[LOAD_KEY_MAX];
	size_t key_len;
	struct load_val value;    /* written, or read */
	struct load_val expect;   /* cas */
	struct load_val observed; /* cas that found another value */
	bool has_observed;
	uint64_t read_version; /* cas: of its read */
	uint64_t invoke_us;
	uint64_t complete_us;
	enum load_result result;
	int status; /* the library's code behind a fail or unknown, or 0 */
	uint64_t version;
	char error[LOAD_ERROR_TEXT_MAX];
};

/* A client's life.  IDLE is only ever transient (between ops, on the
 * stack); DONE is final. */
enum lc_state {
	LC_IDLE,
	LC_READ,      /* a read's GET is outstanding */
	LC_CAS_READ,  /* a cas's GET is outstanding */
	LC_COMMIT,    /* a write's, unique write's or cas's COMMIT is */
	LC_PAUSE,     /* sleeping after an op that did not succeed */
	LC_DONE,      /* the run ended; nothing outstanding */
	LC__COUNT
};

static const bool lc_transitions[LC__COUNT][LC__COUNT] = {
	[LC_IDLE] = {[LC_READ] = true, [LC_CAS_READ] = true,
		     [LC_COMMIT] = true, [LC_PAUSE] = true, [LC_DONE] = true},
	[LC_READ] = {[LC_IDLE] = true, [LC_PAUSE] = true, [LC_DONE] = true},
	[LC_CAS_READ] = {[LC_COMMIT] = true, [LC_IDLE] = true,
			 [LC_PAUSE] = true, [LC_DONE] = true},
	[LC_COMMIT] = {[LC_IDLE] = true, [LC_PAUSE] = true, [LC_DONE] = true},
	[LC_PAUSE] = {[LC_IDLE] = true, [LC_DONE] = true},
};

struct load_seen {
	unsigned key_index;
	struct load_val v;
};

struct load;

struct load_client {
	struct load *load;
	unsigned id;
	enum lc_state state;
	struct rs_client *rc; /* NULL between a close and the next create */
	struct rs_op op;
	uv_timer_t pause;
	uint64_t rng;
	uint64_t seq;          /* of the values this client writes */
	unsigned bad_run;      /* unsuccessful ops in a row */
	struct batch batch;
	struct load_rec rec;
	struct load_seen seen[LOAD_SEEN_MAX]; /* ring of values read */
	unsigned n_seen;
};

/* The run's life: RUNNING issues ops; DRAINING waits for the outstanding
 * ones (bounded by the end timer); CLOSING closes every handle. */
enum load_state { LOAD_RUNNING, LOAD_DRAINING, LOAD_CLOSING, LOAD__COUNT };

static const bool load_transitions[LOAD__COUNT][LOAD__COUNT] = {
	[LOAD_RUNNING] = {[LOAD_DRAINING] = true},
	[LOAD_DRAINING] = {[LOAD_CLOSING] = true},
};

struct load {
	struct load_args a;
	char prefix[LOAD_PREFIX_MAX + 1];
	struct rs_client_options copts;
	enum load_state state;
	uv_loop_t loop;
	uv_timer_t tick;   /* progress and flush, every second */
	uv_timer_t end;    /* the duration, then the drain bound */
	uv_signal_t sigint;
	uv_signal_t sigterm;
	struct load_client *cs;
	struct hist hist;
	uint64_t start_mono_us;
	uint64_t start_unix_us;
	uint64_t next_id;
	unsigned live;       /* clients not DONE */
	unsigned rc_closing; /* rs_client closes not yet called back */
	uint64_t drain_due_ms; /* loop time the drain bound runs out */
	bool signalled;
	uint64_t counts[LOAD_F__COUNT][LOAD_RESULT__COUNT];
	uint64_t ops, ok, fail, unknown;
	uint64_t tick_ops;  /* ops at the last progress line */
	uint64_t tick_us;
	uint64_t recreated;
};

static void lc_set_state(struct load_client *c, enum lc_state to)
{
	assert(to < LC__COUNT);
	assert(lc_transitions[c->state][to]);
	(void)lc_transitions; /* for NDEBUG builds */
	c->state = to;
}

static void load_set_state(struct load *l, enum load_state to)
{
	assert(to < LOAD__COUNT);
	assert(load_transitions[l->state][to]);
	(void)load_transitions;
	l->state = to;
}

static uint64_t load_now_us(const struct load *l)
{
	uint64_t now = load_mono_us();

	assert(now >= l->start_mono_us);
	return now - l->start_mono_us;
}

/* ---- load: outcomes ---- */

/* What a COMMIT's status says about whether it was applied.
 *
 * fail: refusals the server gives before it proposes anything.
 *   RS_ECONFLICT and RS_ETOOOLD come from the resolver, before the batch is
 *   sequenced; RS_ENOTLEADER and RS_ERECOVERING are refusals of nodes that
 *   did not propose it (or a fenced batch the state machine skipped);
 *   RS_EINVAL and RS_ETOOLARGE refuse the request itself.  (The library
 *   retries not-leader and recovering, and returns invalid and too-large
 *   from the submit call, so only conflict and too-old normally get here.)
 * unknown: everything else.  RS_EUNKNOWN is the library saying so (a frame
 *   sent and never answered, a leader that lost its leadership after
 *   proposing).  RS_ESHUTDOWN for a commit is a node refusing while
 *   shutting down, which the protocol does not promise was not applied, or
 *   our own close.  RS_ETIMEOUT and RS_EUNAVAILABLE mean the deadline came
 *   while the commit was off the wire, after attempts that servers refused
 *   with retryable statuses or that were never sent: not applied if every
 *   refusal was truthful, but when in doubt it is unknown.  RS_ENOMEM,
 *   RS_EPROTO and codes not listed: unknown. */
static enum load_result load_commit_result(int status)
{
	switch (status) {
	case RS_OK:
		return LOAD_OK;
	case RS_ECONFLICT:
	case RS_ETOOOLD:
	case RS_ENOTLEADER:
	case RS_ERECOVERING:
	case RS_EINVAL:
	case RS_ETOOLARGE:
		return LOAD_FAIL;
	default:
		return LOAD_UNKNOWN;
	}
}

/* "<code text>: <message>", or the one when they are the same. */
static void load_error_text(struct load_rec *r, const char *what, int status,
			    const char *message)
{
	char msg[LOAD_ERROR_TEXT_MAX - 64]; /* room for what and code */
	const char *code = rs_strerror(status);

	assert(status != RS_OK);
	r->status = status;
	load_text(msg, sizeof msg, message, strlen(message));
	if (msg[0] == '\0' || strcmp(msg, code) == 0)
		snprintf(r->error, sizeof r->error, "%s%s", what, code);
	else
		snprintf(r->error, sizeof r->error, "%s%s: %s", what, code, msg);
}

static void load_val_set(struct load_val *v, const void *p, size_t len)
{
	v->null = false;
	load_text(v->s, sizeof v->s, p, len);
}

static bool load_val_eq(const struct load_val *a, const struct load_val *b)
{
	if (a->null || b->null)
		return a->null == b->null;
	return strcmp(a->s, b->s) == 0;
}

static json_t *load_val_json(const struct load_val *v)
{
	return v->null ? json_null() : json_string(v->s);
}

/* The op line of r.  Fields follow the format's order. */
static json_t *load_rec_json(const struct load_rec *r, unsigned client)
{
	json_t *o = json_object();

	assert(r->f < LOAD_F__COUNT && r->result < LOAD_RESULT__COUNT);
	assert(r->complete_us >= r->invoke_us);
	assert((r->result == LOAD_OK) == (r->error[0] == '\0'));
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "kind", json_string("op"));
	json_object_set_new(o, "id", rs_json_u64(r->id));
	json_object_set_new(o, "client", json_integer(client));
	json_object_set_new(o, "f", json_string(load_f_names[r->f]));
	json_object_set_new(o, "key", json_string(r->key));
	json_object_set_new(o, "value", load_val_json(&r->value));
	if (r->f == LOAD_F_CAS)
		json_object_set_new(o, "expect", load_val_json(&r->expect));
	if (r->has_observed)
		json_object_set_new(o, "observed", load_val_json(&r->observed));
	json_object_set_new(o, "invoke_us", rs_json_u64(r->invoke_us));
	json_object_set_new(o, "complete_us", rs_json_u64(r->complete_us));
	json_object_set_new(o, "result",
			    json_string(load_result_names[r->result]));
	if (r->result != LOAD_OK)
		json_object_set_new(o, "error", json_string(r->error));
	json_object_set_new(o, "version", rs_json_u64(r->version));
	return o;
}

static void load_count(struct load *l, const struct load_rec *r)
{
	l->counts[r->f][r->result]++;
	l->ops++;
	if (r->result == LOAD_OK)
		l->ok++;
	else if (r->result == LOAD_FAIL)
		l->fail++;
	else
		l->unknown++;
	assert(l->ops == l->ok + l->fail + l->unknown);
}

/* ---- load: clients ---- */

static void lc_issue(struct load_client *c);
static void load_client_done(struct load *l);

static void load_rc_closed(void *arg)
{
	struct load *l = arg;

	assert(l->rc_closing > 0);
	l->rc_closing--;
}

/* Close the client's rs_client (its outstanding op, if any, ends now with
 * the library's shutdown outcome, through the op's callback). */
static void lc_close_rc(struct load_client *c)
{
	struct rs_client *rc = c->rc;

	if (rc == NULL)
		return;
	c->rc = NULL; /* first: the op callback below must not use it */
	c->load->rc_closing++;
	rs_client_close(rc, load_rc_closed, c->load);
	assert(c->rc == NULL); /* the callback did not open another */
}

static int lc_open_rc(struct load_client *c, char *errmsg)
{
	assert(c->rc == NULL);
	assert(c->load->state == LOAD_RUNNING);
	return rs_client_create(&c->rc, &c->load->loop, &c->load->copts, errmsg);
}

static void lc_pause_done(uv_timer_t *t)
{
	struct load_client *c = t->data;

	assert(c->state == LC_PAUSE);
	if (c->load->state != LOAD_RUNNING) {
		lc_set_state(c, LC_DONE);
		load_client_done(c->load);
		return;
	}
	lc_set_state(c, LC_IDLE);
	lc_issue(c);
}

/* After an op's line is written: the next op, a pause (after trouble:
 * a down cluster must not become a hot loop), or the end.  A client in
 * trouble for several ops in a row starts over with a fresh rs_client, in
 * case the old one is stuck (say, on a leader that no longer is). */
static void lc_next(struct load_client *c, bool bad)
{
	struct load *l = c->load;

	assert(c->state == LC_IDLE || c->state == LC_READ ||
	       c->state == LC_CAS_READ || c->state == LC_COMMIT);
	c->bad_run = bad ? c->bad_run + 1 : 0;
	if (l->state != LOAD_RUNNING) {
		lc_set_state(c, LC_DONE);
		load_client_done(l);
		return;
	}
	if (c->bad_run >= LOAD_RECREATE_AFTER) {
		c->bad_run = 0;
		lc_close_rc(c);
		l->recreated++;
		/* A failed create leaves rc NULL; lc_issue tries again. */
		(void)lc_open_rc(c, NULL);
	}
	if (!bad) {
		lc_set_state(c, LC_IDLE);
		lc_issue(c);
		return;
	}
	lc_set_state(c, LC_PAUSE);
	uv_timer_start(&c->pause, lc_pause_done,
		       LOAD_PAUSE_MS_MIN +
			       load_rand_below(&c->rng, LOAD_PAUSE_MS_MAX -
							       LOAD_PAUSE_MS_MIN + 1),
		       0);
}

/* Whether an outcome says the cluster (or the client) is in trouble.  A
 * cas that found another value, or that conflicted, was answered by a
 * working cluster: pausing after it would only slow the run down. */
static bool load_trouble(const struct load_rec *r)
{
	if (r->result == LOAD_OK)
		return false;
	if (r->result == LOAD_UNKNOWN)
		return true;
	return r->status != RS_OK && r->status != RS_ECONFLICT &&
	       r->status != RS_ETOOOLD;
}

/* The op is over: write its line and go on. */
static void lc_complete(struct load_client *c, enum load_result result)
{
	struct load *l = c->load;
	struct load_rec *r = &c->rec;
	json_t *line;

	r->complete_us = load_now_us(l);
	r->result = result;
	if (result == LOAD_OK)
		r->error[0] = '\0';
	assert(result == LOAD_OK || r->error[0] != '\0');
	line = load_rec_json(r, c->id);
	if (line != NULL)
		hist_line(&l->hist, line);
	else if (l->hist.err == 0)
		l->hist.err = ENOMEM;
	load_count(l, r);
	lc_next(c, load_trouble(r));
}

static void lc_remember(struct load_client *c, unsigned key_index,
			const struct load_val *v)
{
	struct load_seen *s = &c->seen[c->n_seen % LOAD_SEEN_MAX];

	assert(key_index < c->load->a.keys);
	s->key_index = key_index;
	s->v = *v;
	c->n_seen++;
}

/* The value a cas expects: mostly what its read returned, so that it
 * often succeeds, sometimes a value this client saw earlier for the key,
 * which may be stale, so that mismatches happen. */
static void lc_cas_expect(struct load_client *c, const struct load_val *now,
			  struct load_val *expect)
{
	unsigned n = c->n_seen < LOAD_SEEN_MAX ? c->n_seen : LOAD_SEEN_MAX;
	unsigned pick, matches = 0;

	*expect = *now;
	if (load_rand_below(&c->rng, 100) >= LOAD_CAS_STALE_PCT)
		return;
	for (unsigned i = 0; i < n; i++)
		matches += c->seen[i].key_index == c->rec.key_index;
	if (matches == 0)
		return;
	pick = load_rand_below(&c->rng, matches);
	for (unsigned i = 0; i < n; i++)
		if (c->seen[i].key_index == c->rec.key_index && pick-- == 0) {
			*expect = c->seen[i].v;
			return;
		}
	assert(false);
}

/* ---- load: operations ---- */

static void lc_read_done(struct rs_op *op)
{
	struct load_client *c = op->data;
	struct rs_result *res = &op->result;

	assert(c->state == LC_READ && c->rec.f == LOAD_F_READ);
	if (res->status != RS_OK) {
		load_error_text(&c->rec, "", res->status, res->message);
		rs_result_free(res);
		lc_complete(c, LOAD_FAIL);
		return;
	}
	if (res->found)
		load_val_set(&c->rec.value, res->value.data, res->value.len);
	c->rec.version = res->version;
	rs_result_free(res);
	lc_remember(c, c->rec.key_index, &c->rec.value);
	lc_complete(c, LOAD_OK);
}

static void lc_commit_done(struct rs_op *op)
{
	struct load_client *c = op->data;
	struct rs_result *res = &op->result;
	enum load_result result = load_commit_result(res->status);

	assert(c->state == LC_COMMIT);
	assert(c->rec.f != LOAD_F_READ);
	if (result == LOAD_OK)
		c->rec.version = res->version;
	else
		load_error_text(&c->rec, c->rec.f == LOAD_F_CAS ? "commit: " : "",
				res->status, res->message);
	rs_result_free(res);
	lc_complete(c, result);
}

/* Send c->batch; ranges: 0, or 1 for a cas (its key at read_version). */
static int lc_commit(struct load_client *c, uint64_t read_version,
		     uint32_t ranges)
{
	uint8_t end[LOAD_KEY_MAX + 1];
	struct wire_bytes b, e;

	assert(ranges <= 1 && c->rc != NULL);
	assert(c->rec.key_len + 1 <= sizeof end);
	/* [key, key + "\0"): exactly the key (the range is copied). */
	memcpy(end, c->rec.key, c->rec.key_len);
	end[c->rec.key_len] = 0;
	b.p = (const uint8_t *)c->rec.key;
	b.len = (uint32_t)c->rec.key_len;
	e.p = end;
	e.len = (uint32_t)c->rec.key_len + 1;
	batch_reset(&c->batch);
	if (batch_set(&c->batch, c->rec.key, c->rec.key_len, c->rec.value.s,
		      strlen(c->rec.value.s), NULL) != RS_OK)
		return RS_ENOMEM;
	return rs_client_commit(c->rc, &c->op, read_version, &b, &e, ranges,
				&c->batch, lc_commit_done);
}

static void lc_cas_read_done(struct rs_op *op)
{
	struct load_client *c = op->data;
	struct rs_result *res = &op->result;
	struct load_val now = {.null = true};
	int rv;

	assert(c->state == LC_CAS_READ && c->rec.f == LOAD_F_CAS);
	if (res->status != RS_OK) {
		load_error_text(&c->rec, "read: ", res->status, res->message);
		rs_result_free(res);
		lc_complete(c, LOAD_FAIL);
		return;
	}
	if (res->found)
		load_val_set(&now, res->value.data, res->value.len);
	c->rec.read_version = res->version;
	rs_result_free(res);
	lc_cas_expect(c, &now, &c->rec.expect);
	lc_remember(c, c->rec.key_index, &now);
	if (!load_val_eq(&c->rec.expect, &now)) {
		c->rec.observed = now;
		c->rec.has_observed = true;
		snprintf(c->rec.error, sizeof c->rec.error,
			 "compare failed: the value differs from the expected");
		lc_complete(c, LOAD_FAIL);
		return;
	}
	if (c->load->state != LOAD_RUNNING || c->rc == NULL) {
		snprintf(c->rec.error, sizeof c->rec.error,
			 "the run ended before the commit was sent");
		lc_complete(c, LOAD_FAIL);
		return;
	}
	rv = lc_commit(c, c->rec.read_version, 1);
	if (rv != RS_OK) {
		load_error_text(&c->rec, "commit not sent: ", rv, "");
		lc_complete(c, LOAD_FAIL);
		return;
	}
	lc_set_state(c, LC_COMMIT);
}

/* A fresh record for the next op: its kind, key and (for writes) value. */
static void lc_choose(struct load_client *c)
{
	struct load *l = c->load;
	struct load_rec *r = &c->rec;
	unsigned roll = load_rand_below(&c->rng, 100), f = 0;
	int n;

	while (roll >= load_f_pct[f]) {
		roll -= load_f_pct[f];
		f++;
	}
	assert(f < LOAD_F__COUNT);
	memset(r, 0, sizeof *r);
	r->f = (enum load_f)f;
	r->id = l->next_id++;
	r->value.null = true;
	r->expect.null = true;
	if (r->f != LOAD_F_READ) {
		/* Every value written, or meant to be, is new. */
		snprintf(r->value.s, sizeof r->value.s, "%u-%" PRIu64, c->id,
			 ++c->seq);
		r->value.null = false;
	}
	if (r->f == LOAD_F_UNIQUE) {
		n = snprintf(r->key, sizeof r->key, "%s/u/%s", l->prefix,
			     r->value.s);
	} else {
		r->key_index = load_rand_below(&c->rng, (unsigned)l->a.keys);
		n = snprintf(r->key, sizeof r->key, "%s/k/%u", l->prefix,
			     r->key_index);
	}
	assert(n > 0 && (size_t)n < sizeof r->key);
	r->key_len = (size_t)n;
}

static void lc_issue(struct load_client *c)
{
	struct load_rec *r = &c->rec;
	int rv = RS_OK;

	assert(c->state == LC_IDLE);
	assert(c->load->state == LOAD_RUNNING);
	lc_choose(c);
	r->invoke_us = load_now_us(c->load);
	if (c->rc == NULL && lc_open_rc(c, NULL) != RS_OK)
		rv = RS_ENOMEM;
	else if (r->f == LOAD_F_READ || r->f == LOAD_F_CAS)
		rv = rs_client_get(c->rc, &c->op, r->key, r->key_len,
				   WIRE_READ_LINEARIZABLE, 0,
				   r->f == LOAD_F_READ ? lc_read_done
						       : lc_cas_read_done);
	else
		rv = lc_commit(c, 0, 0);
	if (rv != RS_OK) {
		/* Nothing was sent, and the callback will not run. */
		load_error_text(r, "not sent: ", rv, "");
		lc_complete(c, LOAD_FAIL);
		return;
	}
	lc_set_state(c, r->f == LOAD_F_READ  ? LC_READ
			: r->f == LOAD_F_CAS ? LC_CAS_READ
					     : LC_COMMIT);
}

/* ---- load: the run ---- */

static void load_progress(struct load *l, bool final)
{
	uint64_t now = load_now_us(l);
	uint64_t span = final ? now : now - l->tick_us;
	uint64_t ops = final ? l->ops : l->ops - l->tick_ops;
	double rate = span > 0 ? (double)ops * 1e6 / (double)span : 0;

	/* The per-second line is the orchestrator's to parse: keep it. */
	if (final)
		fprintf(stderr, "load: done t=%.1fs", (double)now / 1e6);
	else
		fprintf(stderr, "load: t=%" PRIu64 "s", (now + 500000) / 1000000);
	fprintf(stderr, " ops=%" PRIu64 " ok=%" PRIu64 " fail=%" PRIu64
		" unknown=%" PRIu64 " ops/s=%.0f\n", l->ops, l->ok, l->fail,
		l->unknown, rate);
	l->tick_ops = l->ops;
	l->tick_us = now;
}

static void load_tick(uv_timer_t *t)
{
	struct load *l = t->data;

	load_progress(l, false);
	hist_flush(&l->hist);
}

static void load_close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Every client is DONE: close every handle, so that the loop runs dry. */
static void load_close_all(struct load *l)
{
	assert(l->live == 0);
	load_set_state(l, LOAD_CLOSING);
	for (unsigned i = 0; i < l->a.clients; i++) {
		assert(l->cs[i].state == LC_DONE);
		lc_close_rc(&l->cs[i]);
		load_close_handle((uv_handle_t *)&l->cs[i].pause);
	}
	load_close_handle((uv_handle_t *)&l->tick);
	load_close_handle((uv_handle_t *)&l->end);
	load_close_handle((uv_handle_t *)&l->sigint);
	load_close_handle((uv_handle_t *)&l->sigterm);
}

static void load_client_done(struct load *l)
{
	assert(l->live > 0);
	assert(l->state == LOAD_DRAINING);
	if (--l->live == 0)
		load_close_all(l);
}

/* The drain bound: outstanding ops end now, through their clients'
 * close (a commit already sent: RS_EUNKNOWN). */
static void load_force_end(uv_timer_t *t)
{
	struct load *l = t->data;

	assert(l->state == LOAD_DRAINING);
	for (unsigned i = 0; i < l->a.clients && l->state == LOAD_DRAINING;
	     i++) {
		struct load_client *c = &l->cs[i];
		if (c->state == LC_READ || c->state == LC_CAS_READ ||
		    c->state == LC_COMMIT)
			lc_close_rc(c);
	}
	assert(l->state == LOAD_CLOSING);
}

/* Stop issuing.  Clients that are pausing are done now; the others are
 * when their op ends, or when bound_ms runs out. */
static void load_drain(struct load *l, uint64_t bound_ms)
{
	load_set_state(l, LOAD_DRAINING);
	l->drain_due_ms = uv_now(&l->loop) + bound_ms;
	uv_timer_start(&l->end, load_force_end, bound_ms, 0);
	for (unsigned i = 0; i < l->a.clients && l->live > 0; i++) {
		struct load_client *c = &l->cs[i];
		if (c->state != LC_PAUSE)
			continue;
		uv_timer_stop(&c->pause);
		lc_set_state(c, LC_DONE);
		load_client_done(l);
	}
	assert(l->state != LOAD_RUNNING);
}

static void load_duration_over(uv_timer_t *t)
{
	struct load *l = t->data;

	assert(l->state == LOAD_RUNNING);
	load_drain(l, 2 * l->a.op_timeout_ms + 1000);
}

/* The first signal drains with a short bound (shortening the one of a
 * run that already ended); a second one ends what is left at once. */
static void load_signal(uv_signal_t *s, int signum)
{
	struct load *l = s->data;
	bool again = l->signalled;
	uint64_t now = uv_now(&l->loop);

	fprintf(stderr, "load: %s: stopping\n", strsignal(signum));
	l->signalled = true;
	if (l->state == LOAD_RUNNING)
		load_drain(l, LOAD_SIGNAL_GRACE_MS);
	else if (l->state == LOAD_DRAINING && again)
		load_force_end(&l->end);
	else if (l->state == LOAD_DRAINING &&
		 now + LOAD_SIGNAL_GRACE_MS < l->drain_due_ms) {
		l->drain_due_ms = now + LOAD_SIGNAL_GRACE_MS;
		uv_timer_start(&l->end, load_force_end, LOAD_SIGNAL_GRACE_MS, 0);
	}
}

/* ---- load: setup and the command ---- */

static int load_open_hist(struct load *l)
{
	json_t *meta;

	l->hist.path = l->a.out;
	l->hist.f = fopen(l->a.out, "w");
	if (l->hist.f == NULL) {
		fprintf(stderr, "rschaos load: --out %s: %s\n", l->a.out,
			strerror(errno));
		return CHAOS_EXIT_USAGE;
	}
	setvbuf(l->hist.f, NULL, _IOFBF, LOAD_STDIO_BUF);
	meta = json_pack("{s:s, s:i, s:o, s:o, s:o, s:s, s:o, s:s}", "kind",
			 "meta", "format", HIST_FORMAT, "seed",
			 rs_json_u64(l->a.seed), "clients",
			 rs_json_u64(l->a.clients), "keys",
			 rs_json_u64(l->a.keys), "prefix", l->prefix,
			 "start_unix_us", rs_json_u64(l->start_unix_us),
			 "endpoints", l->a.endpoints);
	if (meta == NULL) {
		fprintf(stderr, "rschaos load: out of memory\n");
		fclose(l->hist.f);
		return CHAOS_EXIT_USAGE;
	}
	hist_line(&l->hist, meta);
	hist_flush(&l->hist);
	if (l->hist.err != 0) {
		fprintf(stderr, "rschaos load: --out %s: %s\n", l->a.out,
			strerror(l->hist.err));
		fclose(l->hist.f);
		return CHAOS_EXIT_USAGE;
	}
	return CHAOS_EXIT_OK;
}

/* Refuse a bad endpoint list before anything is created: a client on a
 * loop of its own parses it (and connects to nothing). */
static int load_check_endpoints(const char *cmd, const char *endpoints)
{
	struct rs_client_options o = {.endpoints = endpoints};
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_client *rc;
	uv_loop_t loop;
	int rv;

	if (uv_loop_init(&loop) != 0)
		return load_usage_errorf(cmd, "cannot create an event loop");
	rv = rs_client_create(&rc, &loop, &o, errmsg);
	if (rv == RS_OK) {
		rs_client_close(rc, NULL, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_close(&loop) != 0)
		assert(false); /* every handle was closed */
	if (rv != RS_OK)
		return load_usage_errorf(cmd, "--endpoints: %s",
					 errmsg[0] ? errmsg : rs_strerror(rv));
	return CHAOS_EXIT_OK;
}

/* The loop, its handles and the clients.  Out of memory is all that can
 * go wrong (the endpoints were checked), and then the process exits. */
static int load_setup(struct load *l)
{
	l->copts.endpoints = l->a.endpoints;
	l->copts.op_timeout_ms = (unsigned)l->a.op_timeout_ms;
	l->copts.connections = 1;
	l->cs = calloc(l->a.clients, sizeof *l->cs);
	if (l->cs == NULL || uv_loop_init(&l->loop) != 0) {
		fprintf(stderr, "rschaos load: out of memory\n");
		return CHAOS_EXIT_USAGE;
	}
	uv_timer_init(&l->loop, &l->tick);
	uv_timer_init(&l->loop, &l->end);
	uv_signal_init(&l->loop, &l->sigint);
	uv_signal_init(&l->loop, &l->sigterm);
	l->tick.data = l->end.data = l->sigint.data = l->sigterm.data = l;
	l->live = (unsigned)l->a.clients;
	for (unsigned i = 0; i < l->a.clients; i++) {
		struct load_client *c = &l->cs[i];
		c->load = l;
		c->id = i;
		c->op.data = c;
		c->rng = load_mix(l->a.seed ^ load_mix(i + 1)) | 1;
		batch_init(&c->batch);
		uv_timer_init(&l->loop, &c->pause);
		c->pause.data = c;
		/* On failure rc stays NULL and the first op tries again. */
		(void)lc_open_rc(c, NULL);
	}
	assert(l->state == LOAD_RUNNING);
	return CHAOS_EXIT_OK;
}

static void load_summary(const struct load *l)
{
	fprintf(stderr, "load:");
	for (unsigned f = 0; f < LOAD_F__COUNT; f++)
		fprintf(stderr, " %s=%" PRIu64 "/%" PRIu64 "/%" PRIu64,
			load_f_names[f], l->counts[f][LOAD_OK],
			l->counts[f][LOAD_FAIL], l->counts[f][LOAD_UNKNOWN]);
	fprintf(stderr, " (ok/fail/unknown) clients_recreated=%" PRIu64
		" seed=%" PRIu64 " prefix=%s out=%s\n",
		l->recreated, l->a.seed, l->prefix, l->a.out);
}

/* Run the loop until every handle is closed; then the history's end. */
static int load_run(struct load *l)
{
	int rv;

	uv_signal_start(&l->sigint, load_signal, SIGINT);
	uv_signal_start(&l->sigterm, load_signal, SIGTERM);
	uv_timer_start(&l->tick, load_tick, 1000, 1000);
	uv_timer_start(&l->end, load_duration_over,
		       (uint64_t)(l->a.duration_s * 1000.0 + 0.5), 0);
	for (unsigned i = 0; i < l->a.clients; i++)
		lc_issue(&l->cs[i]);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	assert(l->state == LOAD_CLOSING && l->rc_closing == 0);
	rv = uv_loop_close(&l->loop);
	assert(rv == 0);
	load_progress(l, true);
	load_summary(l);
	if (hist_close(&l->hist) != 0) {
		fprintf(stderr, "rschaos load: --out %s: write: %s\n",
			l->a.out, strerror(l->hist.err));
		return CHAOS_EXIT_USAGE;
	}
	return rv == 0 ? CHAOS_EXIT_OK : CHAOS_EXIT_USAGE;
}

int chaos_load_main(int argc, char **argv)
{
	struct load *l = calloc(1, sizeof *l);
	int rv;

	if (l == NULL)
		return CHAOS_EXIT_USAGE;
	rv = load_parse(argc, argv, &l->a);
	if (rv != CHAOS_EXIT_OK || l->a.help) {
		if (l->a.help)
			load_help(stdout);
		goto out;
	}
	rv = load_check_endpoints("load", l->a.endpoints);
	if (rv != CHAOS_EXIT_OK)
		goto out;
	/* A node killed mid-write must not kill us with it. */
	signal(SIGPIPE, SIG_IGN);
	l->start_unix_us = load_unix_us();
	l->start_mono_us = load_mono_us();
	if (!l->a.seed_given)
		l->a.seed = l->start_unix_us & INT64_MAX;
	if (l->a.prefix != NULL)
		snprintf(l->prefix, sizeof l->prefix, "%s", l->a.prefix);
	else
		snprintf(l->prefix, sizeof l->prefix, "chaos-%" PRIu64 "-%" PRIu64,
			 l->a.seed, l->start_unix_us / 1000000);
	rv = load_open_hist(l);
	if (rv == CHAOS_EXIT_OK)
		rv = load_setup(l);
	if (rv != CHAOS_EXIT_OK)
		goto out;
	fprintf(stderr, "load: seed=%" PRIu64 " prefix=%s clients=%" PRIu64
		" keys=%" PRIu64 " duration=%gs endpoints=%s out=%s\n",
		l->a.seed, l->prefix, l->a.clients, l->a.keys, l->a.duration_s,
		l->a.endpoints, l->a.out);
	rv = load_run(l);
	for (unsigned i = 0; i < l->a.clients; i++)
		batch_free(&l->cs[i].batch);
out:
	free(l->cs);
	free(l);
	return rv;
}

/* ---- final ---- */

struct final_args {
	const char *endpoints;
	const char *out;
	uint64_t timeout_ms;
	bool help;
};

/* The history as found, before final appends to it. */
struct final_hist {
	char *data;
	size_t len;
	uint64_t lines;
	char prefix[LOAD_PREFIX_MAX + 1];
};

static void final_help(FILE *f)
{
	fprintf(f,
"Usage: rschaos final --endpoints H:P,... --out FILE [--timeout-ms MS]\n"
"After a chaos run: read every key under P/u/ (P is the prefix in FILE's\n"
"meta line) with a linearizable range read, paged at one read version, and\n"
"append a \"final\" line with them and an end line to FILE.  Reads are\n"
"retried while the cluster comes back, until --timeout-ms (default %u).\n"
"FILE must end with a valid end line (a complete load section); a cut or\n"
"damaged history is left alone.\n\n"
"Exit codes: 0 appended, 2 bad arguments, FILE unreadable, truncated or\n"
"not writable, or the keys could not be read in time.\n",
		FINAL_TIMEOUT_MS_DEFAULT);
}

static int final_parse(int argc, char **argv, struct final_args *a)
{
	const char *v = NULL;
	int rv;

	memset(a, 0, sizeof *a);
	a->timeout_ms = FINAL_TIMEOUT_MS_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			a->help = true;
			return CHAOS_EXIT_OK;
		}
		if ((rv = load_str_opt("final", argc, argv, &i, "--endpoints",
				       &a->endpoints)) == -1 &&
		    (rv = load_str_opt("final", argc, argv, &i, "--out",
				       &a->out)) == -1 &&
		    (rv = load_str_opt("final", argc, argv, &i, "--timeout-ms",
				       &v)) == CHAOS_EXIT_OK)
			rv = load_num_opt("final", "--timeout-ms", v, 1,
					  24u * 3600u * 1000u, &a->timeout_ms);
		if (rv == -1)
			return load_usage_errorf("final", "unknown argument '%s'",
						 argv[i]);
		if (rv != CHAOS_EXIT_OK)
			return rv;
	}
	if (a->endpoints == NULL)
		return load_usage_errorf("final", "--endpoints is required");
	if (a->out == NULL)
		return load_usage_errorf("final", "--out is required");
	return CHAOS_EXIT_OK;
}

static int final_slurp(const char *path, struct final_hist *h)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1u << 16, got;

	if (f == NULL)
		return errno;
	h->data = malloc(cap);
	h->len = 0;
	while (h->data != NULL &&
	       (got = fread(h->data + h->len, 1, cap - h->len, f)) > 0) {
		h->len += got;
		if (h->len == cap) {
			char *p = realloc(h->data, cap *= 2);
			if (p == NULL)
				free(h->data);
			h->data = p;
		}
	}
	if (h->data == NULL || ferror(f)) {
		int err = h->data == NULL ? ENOMEM : errno ? errno : EIO;
		fclose(f);
		return err;
	}
	fclose(f);
	assert(h->len < cap);
	return 0;
}

/* The meta line (line 1): the prefix. */
static bool final_meta(struct final_hist *h, size_t len, char *why,
		       size_t size)
{
	json_error_t jerr;
	json_t *meta = json_loadb(h->data, len, 0, &jerr);
	const char *prefix = json_string_value(json_object_get(meta, "prefix"));
	json_int_t format = json_integer_value(json_object_get(meta, "format"));
	bool ok = false;

	if (meta == NULL)
		snprintf(why, size, "line 1 is not JSON: %s", jerr.text);
	else if (!json_is_string(json_object_get(meta, "kind")) ||
		 strcmp(json_string_value(json_object_get(meta, "kind")),
			"meta") != 0)
		snprintf(why, size, "line 1 is not a meta line");
	else if (format != HIST_FORMAT)
		snprintf(why, size, "format %lld, not %d", (long long)format,
			 HIST_FORMAT);
	else if (prefix == NULL || prefix[0] == '\0' ||
		 strlen(prefix) > LOAD_PREFIX_MAX || strchr(prefix, '\\'))
		snprintf(why, size, "the meta line has no usable prefix");
	else
		ok = true;
	if (ok)
		snprintf(h->prefix, sizeof h->prefix, "%s", prefix);
	json_decref(meta);
	return ok;
}

/* The last line must be an end line that matches what precedes it. */
static bool final_end_ok(const struct final_hist *h, size_t start,
			 char *why, size_t size)
{
	json_t *end = json_loadb(h->data + start, h->len - start - 1, 0, NULL);
	const char *kind = json_string_value(json_object_get(end, "kind"));
	const char *crc = json_string_value(json_object_get(end, "crc32c"));
	json_int_t lines = json_integer_value(json_object_get(end, "lines"));
	char want[9];
	bool ok;

	snprintf(want, sizeof want, "%08" PRIx32, crc32c(h->data, start));
	ok = kind != NULL && strcmp(kind, "end") == 0 && crc != NULL &&
	     strcmp(crc, want) == 0 && lines >= 0 &&
	     (uint64_t)lines == h->lines - 1;
	if (!ok)
		snprintf(why, size, "line %" PRIu64 " is not a valid end line "
			 "(the history is truncated or corrupt)", h->lines);
	json_decref(end);
	return ok;
}

/* Read FILE and check it: a meta line first, a valid end line last. */
static int final_load_hist(const char *path, struct final_hist *h)
{
	char why[256];
	size_t first_len, last_start = 0;
	int err = final_slurp(path, h);

	if (err != 0) {
		fprintf(stderr, "rschaos final: --out %s: %s\n", path,
			strerror(err));
		return CHAOS_EXIT_USAGE;
	}
	h->lines = 0;
	for (size_t i = 0; i < h->len; i++)
		if (h->data[i] == '\n') {
			h->lines++;
			if (i + 1 < h->len)
				last_start = i + 1;
		}
	first_len = h->len > 0 ? strcspn(h->data, "\n") : 0;
	if (h->len == 0 || h->data[h->len - 1] != '\n' || h->lines < 2)
		snprintf(why, sizeof why, "%s", h->len == 0 ? "empty"
					      : "the last line is cut or missing");
	else if (final_meta(h, first_len, why, sizeof why) &&
		 final_end_ok(h, last_start, why, sizeof why))
		return CHAOS_EXIT_OK;
	fprintf(stderr, "rschaos final: --out %s: %s; nothing appended\n",
		path, why);
	return CHAOS_EXIT_USAGE;
}

/* One page's rows into keys; *next is where the next page starts. */
static bool final_page(const struct rs_result *res, json_t *keys,
		       uint8_t *next, size_t *next_len)
{
	char k[LOAD_KEY_MAX + 64], v[LOAD_VALUE_TEXT_MAX];
	const struct rs_kv *last;

	for (size_t i = 0; i < res->n_kvs; i++) {
		load_text(k, sizeof k, res->kvs[i].key, res->kvs[i].key_len);
		load_text(v, sizeof v, res->kvs[i].val, res->kvs[i].val_len);
		json_object_set_new(keys, k, json_string(v));
	}
	if (!res->more || res->n_kvs == 0)
		return false;
	last = &res->kvs[res->n_kvs - 1];
	assert(last->key_len < RS_KEY_SIZE_MAX);
	/* The first key after the last one: itself and a 0 byte. */
	memcpy(next, last->key, last->key_len);
	next[last->key_len] = 0;
	*next_len = last->key_len + 1;
	return true;
}

/* Every key under prefix_u, one snapshot: the first page linearizable,
 * the rest at its read version.  RS_OK, or the failing status with
 * errmsg set. */
static int final_read_keys(struct rs_sync *s, const char *prefix_u,
			   json_t *keys, uint64_t *read_unix_us, char *errmsg)
{
	size_t plen = strlen(prefix_u), begin_len = plen;
	uint8_t *begin = malloc(RS_KEY_SIZE_MAX + 1);
	char end[LOAD_PREFIX_MAX + 8];
	uint64_t version = 0;
	bool more = true;
	int rv = RS_OK;

	if (begin == NULL)
		return RS_ENOMEM;
	assert(plen > 0 && prefix_u[plen - 1] == '/' && plen < sizeof end);
	memcpy(begin, prefix_u, plen);
	memcpy(end, prefix_u, plen);
	end[plen - 1] = '/' + 1; /* "P/u0": just past every "P/u/..." */
	*read_unix_us = load_unix_us();
	while (more && rv == RS_OK) {
		struct rs_result res;
		rv = rs_sync_range(s, begin, begin_len, end, plen,
				   FINAL_PAGE_ROWS,
				   version == 0 ? WIRE_READ_LINEARIZABLE
						: WIRE_READ_AT_VERSION,
				   version, &res);
		if (rv != RS_OK)
			snprintf(errmsg, RS_ERRMSG_SIZE, "%s: %s",
				 rs_strerror(rv), res.message);
		else if (version == 0)
			version = res.version;
		if (rv == RS_OK)
			more = final_page(&res, keys, begin, &begin_len);
		rs_result_free(&res);
	}
	free(begin);
	return rv;
}

static void final_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Read until it works or the timeout passes.  NULL when it did not. */
static json_t *final_read_retrying(const struct final_args *a,
				   const char *prefix_u, uint64_t *read_unix_us)
{
	uint64_t deadline = load_mono_us() + a->timeout_ms * 1000u;
	char errmsg[RS_ERRMSG_SIZE] = "no attempt made";
	unsigned attempt = 0;

	for (;;) {
		uint64_t now = load_mono_us(), left_ms;
		struct rs_client_options o = {.endpoints = a->endpoints};
		struct rs_sync *s;
		json_t *keys;
		int rv;
		if (now >= deadline)
			break;
		left_ms = (deadline - now + 999) / 1000;
		o.op_timeout_ms = (unsigned)(left_ms < FINAL_OP_TIMEOUT_MS_MAX
						     ? left_ms
						     : FINAL_OP_TIMEOUT_MS_MAX);
		if (rs_sync_open(&s, &o, errmsg) != RS_OK)
			break; /* a bad endpoint list: retrying will not help */
		keys = json_object();
		rv = keys ? final_read_keys(s, prefix_u, keys, read_unix_us,
					    errmsg)
			  : RS_ENOMEM;
		rs_sync_close(s);
		if (rv == RS_OK)
			return keys;
		json_decref(keys);
		fprintf(stderr, "final: attempt %u: %s\n", ++attempt, errmsg);
		if (load_mono_us() + FINAL_RETRY_MS * 1000u >= deadline)
			break;
		final_sleep_ms(FINAL_RETRY_MS);
	}
	fprintf(stderr, "rschaos final: could not read %s from --endpoints %s "
		"within %" PRIu64 " ms; last error: %s\n", prefix_u, a->endpoints,
		a->timeout_ms, errmsg);
	return NULL;
}

static int final_append(const char *path, struct final_hist *h,
			const char *prefix_u, json_t *keys,
			uint64_t read_unix_us)
{
	struct hist out = {.path = path, .lines = h->lines};
	size_t n = json_object_size(keys);
	json_t *line;

	out.crc = crc32c(h->data, h->len);
	out.f = fopen(path, "ab");
	if (out.f == NULL) {
		fprintf(stderr, "rschaos final: --out %s: %s\n", path,
			strerror(errno));
		json_decref(keys);
		return CHAOS_EXIT_USAGE;
	}
	line = json_pack("{s:s, s:s, s:o, s:o}", "kind", "final", "prefix",
			 prefix_u, "read_unix_us", rs_json_u64(read_unix_us),
			 "keys", keys);
	if (line == NULL)
		out.err = ENOMEM;
	else
		hist_line(&out, line);
	if (hist_close(&out) != 0) {
		fprintf(stderr, "rschaos final: --out %s: write: %s\n", path,
			strerror(out.err));
		return CHAOS_EXIT_USAGE;
	}
	fprintf(stderr, "final: %zu keys under %s; appended to %s\n", n,
		prefix_u, path);
	return CHAOS_EXIT_OK;
}

int chaos_final_main(int argc, char **argv)
{
	struct final_args a;
	struct final_hist h = {0};
	char prefix_u[LOAD_PREFIX_MAX + 8];
	uint64_t read_unix_us = 0;
	json_t *keys;
	int rv = final_parse(argc, argv, &a);

	if (rv != CHAOS_EXIT_OK || a.help) {
		if (a.help)
			final_help(stdout);
		return rv;
	}
	signal(SIGPIPE, SIG_IGN);
	rv = load_check_endpoints("final", a.endpoints);
	if (rv == CHAOS_EXIT_OK)
		rv = final_load_hist(a.out, &h);
	if (rv != CHAOS_EXIT_OK)
		goto out;
	snprintf(prefix_u, sizeof prefix_u, "%s/u/", h.prefix);
	keys = final_read_retrying(&a, prefix_u, &read_unix_us);
	rv = keys == NULL ? CHAOS_EXIT_USAGE
			  : final_append(a.out, &h, prefix_u, keys, read_unix_us);
out:
	free(h.data);
	return rv;
}
