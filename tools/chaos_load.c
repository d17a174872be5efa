/*
 * chaos_load: `rschaos load`, the workload, which writes a chaos history
 * (its meta line, an op line per completed operation and its end line)
 * through the history writer, chaos_histfile.h; `rschaos final` appends to
 * it afterwards (chaos_final.c).  Its command line is chaos_load_args.c.
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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "raftstore/client.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tools/chaos.h"
#include "tools/chaos_cmd.h"
#include "tools/chaos_histfile.h"
#include "tools/chaos_load_args.h"

/* After an op that did not succeed: a down cluster must not become a hot
 * loop, and clients failed by one event should not come back in step. */
#define LOAD_PAUSE_MS_MIN 20u
#define LOAD_PAUSE_MS_MAX 50u
/* Consecutive unsuccessful ops before a client gets a fresh rs_client. */
#define LOAD_RECREATE_AFTER 8u
/* Values a client remembers, for stale cas expectations. */
#define LOAD_SEEN_MAX 8u
/* Percent of cas ops that expect a remembered (maybe stale) value. */
#define LOAD_CAS_STALE_PCT 25u
#define LOAD_ERROR_TEXT_MAX 320u
#define LOAD_STDIO_BUF (1u << 20)

/* ---- small helpers ---- */

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
	char s[CHAOS_HISTFILE_VALUE_TEXT_MAX];
};

/* The op a client is running, and then its line. */
struct load_rec {
	enum load_f f;
	uint64_t id;
	unsigned key_index; /* register ops */
	char key[CHAOS_HISTFILE_KEY_MAX];
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
	struct chaos_load_args a;
	char prefix[CHAOS_HISTFILE_PREFIX_MAX + 1];
	struct rs_client_options copts;
	enum load_state state;
	uv_loop_t loop;
	uv_timer_t tick;   /* progress and flush, every second */
	uv_timer_t end;    /* the duration, then the drain bound */
	uv_signal_t sigint;
	uv_signal_t sigterm;
	struct load_client *cs;
	struct chaos_histfile hist;
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
	uint64_t now = chaos_cmd_mono_us();

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
	chaos_histfile_text(msg, sizeof msg, message, strlen(message));
	if (msg[0] == '\0' || strcmp(msg, code) == 0)
		snprintf(r->error, sizeof r->error, "%s%s", what, code);
	else
		snprintf(r->error, sizeof r->error, "%s%s: %s", what, code, msg);
}

static void load_val_set(struct load_val *v, const void *p, size_t len)
{
	v->null = false;
	chaos_histfile_text(v->s, sizeof v->s, p, len);
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
		chaos_histfile_line(&l->hist, line);
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
	uint8_t end[CHAOS_HISTFILE_KEY_MAX + 1];
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
	chaos_histfile_flush(&l->hist);
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
			 "meta", "format", CHAOS_HISTFILE_FORMAT, "seed",
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
	chaos_histfile_line(&l->hist, meta);
	chaos_histfile_flush(&l->hist);
	if (l->hist.err != 0) {
		fprintf(stderr, "rschaos load: --out %s: %s\n", l->a.out,
			strerror(l->hist.err));
		fclose(l->hist.f);
		return CHAOS_EXIT_USAGE;
	}
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
	if (chaos_histfile_close(&l->hist) != 0) {
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
	rv = chaos_load_args_parse(argc, argv, &l->a);
	if (rv != CHAOS_EXIT_OK || l->a.help) {
		if (l->a.help)
			chaos_load_args_help(stdout);
		goto out;
	}
	rv = chaos_cmd_check_endpoints("load", l->a.endpoints);
	if (rv != CHAOS_EXIT_OK)
		goto out;
	/* A node killed mid-write must not kill us with it. */
	signal(SIGPIPE, SIG_IGN);
	l->start_unix_us = chaos_cmd_unix_us();
	l->start_mono_us = chaos_cmd_mono_us();
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
