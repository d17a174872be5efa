/*
 * rschaos check: see chaos_check.h for what it guarantees.
 *
 * The pieces, in file order:
 *   - the checks of a whole history: each register key through
 *     chaos_lin.h, then the shrinking of the keys that fail, then the
 *     unique writes against the keys read back after the final restart;
 *   - the report (text, or one JSON object with --json);
 *   - the command line, and chaos_check_main.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftstore/lib/rs_error.h"
#include "tools/chaos.h"
#include "tools/cliopt.h"
#include "tools/chaos_check.h"
#include "tools/chaos_history.h"
#include "tools/chaos_lin.h"

void chaos_check_options_init(struct chaos_check_options *o)
{
	chaos_lin_limits_init(&o->limits);
	o->shrink_ms_max = CHAOS_CHECK_SHRINK_MS_DEFAULT;
}

/* ------------------------------------------------------------------ */
/* The checks of a whole history                                       */
/* ------------------------------------------------------------------ */

static int cc_strcmp_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static struct chaos_check_violation *
cc_violation_add(struct chaos_check_report *r,
		 enum chaos_check_violation_type type, const char *key,
		 const char *value, const char *found)
{
	struct chaos_check_violation *v;

	v = realloc(r->violations, (r->violation_count + 1) * sizeof *v);
	if (v == NULL)
		return NULL;
	r->violations = v;
	v = &r->violations[r->violation_count++];
	*v = (struct chaos_check_violation){.type = type, .key = key,
					     .value = value, .found = found};
	return v;
}

static size_t cc_violations_of(const struct chaos_check_report *r,
			       enum chaos_check_violation_type type)
{
	size_t n = 0;

	for (size_t i = 0; i < r->violation_count; i++)
		n += r->violations[i].type == type;
	return n;
}

static void cc_count(const struct chaos_history *h,
		     struct chaos_check_report *r)
{
	for (size_t i = 0; i < h->op_count; i++) {
		const struct chaos_history_op *op = &h->ops[i];

		assert((unsigned)op->f < CHAOS_HISTORY_F_COUNT);
		assert((unsigned)op->result < CHAOS_HISTORY_RESULT_COUNT);
		r->by_result[op->result]++;
		r->by_f[op->f][op->result]++;
	}
	r->ops = h->op_count;
}

/* By key, then as the shrinker orders ops (chaos_lin_invoke_cmp). */
static int cc_opref_cmp(const void *a, const void *b)
{
	const struct chaos_history_op *x =
		*(const struct chaos_history_op *const *)a;
	const struct chaos_history_op *y =
		*(const struct chaos_history_op *const *)b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : chaos_lin_invoke_cmp(x, y);
}

/* The register ops of h (read, write, cas), sorted by cc_opref_cmp. */
static int cc_register_ops(const struct chaos_history *h,
			   const struct chaos_history_op ***out, size_t *n)
{
	const struct chaos_history_op **refs;
	size_t k = 0;

	refs = malloc((h->op_count + 1) * sizeof *refs);
	if (refs == NULL)
		return RS_ENOMEM;
	for (size_t i = 0; i < h->op_count; i++)
		if (h->ops[i].f != CHAOS_HISTORY_UNIQUE)
			refs[k++] = &h->ops[i];
	qsort(refs, k, sizeof *refs, cc_opref_cmp);
	*out = refs;
	*n = k;
	return RS_OK;
}

/* Checks one key's ops refs[0..n) (tmp has room for n ops). */
static int cc_check_group(const struct chaos_history *h,
			  const struct chaos_check_options *o,
			  const struct chaos_history_op **refs, size_t n,
			  struct chaos_history_op *tmp,
			  struct chaos_check_report *r)
{
	struct chaos_lin_stats st;
	struct chaos_check_violation *v;
	enum chaos_lin_verdict verdict;
	int rv;

	for (size_t i = 0; i < n; i++)
		tmp[i] = *refs[i];
	rv = chaos_lin_check_key(tmp, n, &o->limits, &verdict, &st);
	if (rv != RS_OK)
		return rv;
	r->keys++;
	r->steps += st.steps;
	r->unknown_pruned += st.unknown_pruned;
	r->unknown_bounded += st.unknown_bounded;
	if (verdict == CHAOS_LIN_LINEARIZABLE) {
		r->keys_linearizable++;
	} else if (verdict == CHAOS_LIN_BUDGET_EXHAUSTED) {
		const char **k = realloc(r->budget_keys, (r->budget_count + 1) *
							 sizeof *k);
		if (k == NULL)
			return RS_ENOMEM;
		r->budget_keys = k;
		k[r->budget_count++] = refs[0]->key;
	} else {
		v = cc_violation_add(r, CHAOS_CHECK_V_LINEARIZABILITY,
				     refs[0]->key, NULL, NULL);
		if (v == NULL || (v->ops = malloc(n * sizeof *v->ops)) == NULL)
			return RS_ENOMEM;
		for (size_t i = 0; i < n; i++)
			v->ops[i] = (size_t)(refs[i] - h->ops);
		v->op_count = v->key_op_count = n;
	}
	return RS_OK;
}

/* Replaces each linearizability violation's ops (all of its key's) by the
 * smallest failing sub-history found; the time is shared out evenly. */
static int cc_shrink_all(const struct chaos_history *h,
			 const struct chaos_check_options *o,
			 struct chaos_check_report *r,
			 struct chaos_history_op *tmp)
{
	uint64_t deadline_us = chaos_lin_deadline_us(o->shrink_ms_max);
	size_t left = cc_violations_of(r, CHAOS_CHECK_V_LINEARIZABILITY);

	for (size_t i = 0; i < r->violation_count && left > 0; i++) {
		struct chaos_check_violation *v = &r->violations[i];
		uint64_t now = chaos_lin_now_us();
		uint64_t ms = now < deadline_us ? (deadline_us - now) / 1000 / left
						: 0;
		size_t *keep, *all, kept = 0;
		int rv;

		if (v->type != CHAOS_CHECK_V_LINEARIZABILITY)
			continue;
		left--;
		keep = malloc(v->op_count * sizeof *keep);
		all = malloc(v->op_count * sizeof *all);
		if (keep == NULL || all == NULL) {
			free(keep);
			free(all);
			return RS_ENOMEM;
		}
		memcpy(all, v->ops, v->op_count * sizeof *all);
		for (size_t j = 0; j < v->op_count; j++)
			tmp[j] = h->ops[all[j]];
		rv = chaos_lin_shrink(tmp, v->op_count, &o->limits, ms, keep,
				      &kept);
		for (size_t j = 0; rv == RS_OK && j < kept; j++)
			v->ops[j] = all[keep[j]];
		v->op_count = rv == RS_OK ? kept : v->op_count;
		free(keep);
		free(all);
		if (rv != RS_OK)
			return rv;
	}
	return RS_OK;
}

static int cc_check_keys(const struct chaos_history *h,
			 const struct chaos_check_options *o,
			 struct chaos_check_report *r)
{
	const struct chaos_history_op **refs;
	struct chaos_history_op *tmp;
	size_t n, a, b;
	int rv;

	if ((rv = cc_register_ops(h, &refs, &n)) != RS_OK)
		return rv;
	tmp = malloc((n + 1) * sizeof *tmp);
	if (tmp == NULL) {
		free(refs);
		return RS_ENOMEM;
	}
	for (a = 0; a < n && rv == RS_OK; a = b) {
		for (b = a + 1; b < n && strcmp(refs[a]->key, refs[b]->key) == 0;
		     b++)
			;
		rv = cc_check_group(h, o, refs + a, b - a, tmp, r);
	}
	if (rv == RS_OK)
		rv = cc_shrink_all(h, o, r, tmp);
	free(tmp);
	free(refs);
	return rv;
}

/* Every acknowledged unique write reads back, with its value. */
static int cc_check_acknowledged(const struct chaos_history *h,
				 struct chaos_check_report *r)
{
	for (size_t i = 0; i < h->op_count; i++) {
		const struct chaos_history_op *op = &h->ops[i];
		const struct chaos_history_final_key *fk;

		if (op->f != CHAOS_HISTORY_UNIQUE ||
		    op->result != CHAOS_HISTORY_OK)
			continue;
		r->unique_acknowledged++;
		fk = chaos_history_final_find(h, op->key);
		if (fk != NULL && cc_strcmp_null(fk->value, op->value) == 0)
			continue;
		if (cc_violation_add(r, fk ? CHAOS_CHECK_V_UNIQUE_CHANGED
					   : CHAOS_CHECK_V_UNIQUE_MISSING,
				     op->key, op->value,
				     fk ? fk->value : NULL) == NULL)
			return RS_ENOMEM;
	}
	return RS_OK;
}

static int cc_unique_cmp(const void *a, const void *b)
{
	const struct chaos_history_op *x =
		*(const struct chaos_history_op *const *)a;
	const struct chaos_history_op *y =
		*(const struct chaos_history_op *const *)b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : cc_strcmp_null(x->value, y->value);
}

/* The first of w[0..n) (sorted by cc_unique_cmp) whose key is >= key. */
static size_t cc_unique_lower(const struct chaos_history_op *const *w, size_t n,
			      const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(w[mid]->key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether fk is a phantom: no unique op that did or may have taken effect
 * wrote this value to this key.  A key that an acknowledged op wrote with
 * another value is not one: cc_check_acknowledged reports it already. */
static bool cc_is_phantom(const struct chaos_history_op *const *w, size_t n,
			  const struct chaos_history_final_key *fk)
{
	bool acknowledged = false;

	for (size_t i = cc_unique_lower(w, n, fk->key);
	     i < n && strcmp(w[i]->key, fk->key) == 0; i++) {
		if (cc_strcmp_null(w[i]->value, fk->value) == 0)
			return false;
		acknowledged |= w[i]->result == CHAOS_HISTORY_OK;
	}
	return !acknowledged;
}

/* Every key read back was written, with that value, by a unique op that
 * did or may have taken effect. */
static int cc_check_phantoms(const struct chaos_history *h,
			     struct chaos_check_report *r)
{
	const struct chaos_history_op **w =
		malloc((h->op_count + 1) * sizeof *w);
	size_t n = 0;
	int rv = RS_OK;

	if (w == NULL)
		return RS_ENOMEM;
	for (size_t i = 0; i < h->op_count; i++)
		if (h->ops[i].f == CHAOS_HISTORY_UNIQUE &&
		    h->ops[i].result != CHAOS_HISTORY_FAIL)
			w[n++] = &h->ops[i];
	qsort(w, n, sizeof *w, cc_unique_cmp);
	for (size_t i = 0; i < h->final_count && rv == RS_OK; i++) {
		const struct chaos_history_final_key *fk = &h->final_keys[i];

		if (cc_is_phantom(w, n, fk) &&
		    cc_violation_add(r, CHAOS_CHECK_V_PHANTOM, fk->key,
				     fk->value, NULL) == NULL)
			rv = RS_ENOMEM;
	}
	free(w);
	return rv;
}

void chaos_check_report_free(struct chaos_check_report *r)
{
	for (size_t i = 0; i < r->violation_count; i++)
		free(r->violations[i].ops);
	free(r->violations);
	free(r->budget_keys);
	memset(r, 0, sizeof *r);
}

int chaos_check_run(const struct chaos_history *h,
		    const struct chaos_check_options *o,
		    struct chaos_check_report *r)
{
	uint64_t start_us = chaos_lin_now_us();
	int rv;

	assert(h != NULL && o != NULL && r != NULL);
	memset(r, 0, sizeof *r);
	cc_count(h, r);
	rv = cc_check_keys(h, o, r);
	r->unique_checked = h->has_final;
	r->final_keys = h->final_count;
	if (rv == RS_OK && h->has_final)
		rv = cc_check_acknowledged(h, r);
	if (rv == RS_OK && h->has_final)
		rv = cc_check_phantoms(h, r);
	if (rv != RS_OK) {
		chaos_check_report_free(r);
		return rv;
	}
	r->outcome = r->violation_count > 0 ? CHAOS_CHECK_OUTCOME_FAIL
		     : r->budget_count > 0  ? CHAOS_CHECK_OUTCOME_UNKNOWN
					    : CHAOS_CHECK_OUTCOME_PASS;
	assert(r->keys == r->keys_linearizable + r->budget_count +
				  cc_violations_of(r, CHAOS_CHECK_V_LINEARIZABILITY));
	r->check_us = chaos_lin_now_us() - start_us;
	return RS_OK;
}

int chaos_check_exit_code(const struct chaos_check_report *r)
{
	switch (r->outcome) {
	case CHAOS_CHECK_OUTCOME_PASS:
		return CHAOS_EXIT_OK;
	case CHAOS_CHECK_OUTCOME_FAIL:
		return CHAOS_EXIT_VIOLATION;
	default:
		return CHAOS_EXIT_USAGE;
	}
}

/* ------------------------------------------------------------------ */
/* The report                                                          */
/* ------------------------------------------------------------------ */

static const char *const cc_outcome_names[] = {"PASS", "FAIL", "UNKNOWN"};
static const char *const cc_violation_names[] = {
	"linearizability", "unique_missing", "unique_changed", "phantom"};

/* The violation in one sentence (malloc'ed), or NULL if out of memory. */
static char *cc_violation_message(const struct chaos_check_violation *v)
{
	const char *val = v->value ? v->value : "null";
	char *s = NULL;
	int n;

	switch (v->type) {
	case CHAOS_CHECK_V_LINEARIZABILITY:
		n = asprintf(&s, "key %s is not linearizable", v->key);
		break;
	case CHAOS_CHECK_V_UNIQUE_MISSING:
		n = asprintf(&s, "acknowledged unique write %s=%s is missing "
				 "after the final restart", v->key, val);
		break;
	case CHAOS_CHECK_V_UNIQUE_CHANGED:
		n = asprintf(&s, "acknowledged unique write %s=%s reads back "
				 "as %s after the final restart",
			     v->key, val, v->found ? v->found : "null");
		break;
	default:
		n = asprintf(&s, "final key %s=%s was never written by a "
				 "unique op (phantom)", v->key, val);
	}
	return n < 0 ? NULL : s;
}

static void cc_put_value(FILE *out, const char *v)
{
	if (v == NULL)
		fputs("null", out);
	else
		fprintf(out, "\"%s\"", v);
}

/* "client 3  cas  P/k/0 "a"->"b" (observed "c")  [1.000, 2.500] ms  fail" */
static void cc_print_op(FILE *out, const struct chaos_history_op *op)
{
	fprintf(out, "    client %-3" PRIu64 " %-6s %s ", op->client,
		chaos_history_f_name(op->f), op->key);
	if (op->f == CHAOS_HISTORY_READ) {
		fputs("-> ", out);
		cc_put_value(out, op->result == CHAOS_HISTORY_OK ? op->value
							       : NULL);
	} else if (op->f == CHAOS_HISTORY_CAS) {
		cc_put_value(out, op->expect);
		fputs(" -> ", out);
		cc_put_value(out, op->value);
		if (op->has_observed) {
			fputs(" (observed ", out);
			cc_put_value(out, op->observed);
			fputc(')', out);
		}
	} else {
		fputs(":= ", out);
		cc_put_value(out, op->value);
	}
	fprintf(out, "  [%.3f, %.3f] ms  %s  (id %" PRIu64 ")\n",
		(double)op->invoke_us / 1000.0, (double)op->complete_us / 1000.0,
		chaos_history_result_name(op->result), op->id);
}

static void cc_print_counts(FILE *out, const struct chaos_check_report *r)
{
	fprintf(out, "ops: %zu (ok %zu, fail %zu, unknown %zu)\n", r->ops,
		r->by_result[CHAOS_HISTORY_OK],
		r->by_result[CHAOS_HISTORY_FAIL],
		r->by_result[CHAOS_HISTORY_UNKNOWN]);
	for (unsigned f = 0; f < CHAOS_HISTORY_F_COUNT; f++) {
		const size_t *c = r->by_f[f];
		fprintf(out, "  %-7s %zu (ok %zu, fail %zu, unknown %zu)\n",
			chaos_history_f_name(f), c[0] + c[1] + c[2], c[0], c[1],
			c[2]);
	}
	fprintf(out, "keys: %zu checked, %zu linearizable, %zu not, %zu out of "
		     "budget (%" PRIu64 " search steps; unknown writes/cas: "
		     "%zu never observed and pruned, %zu bounded by their "
		     "first observer)\n",
		r->keys, r->keys_linearizable,
		cc_violations_of(r, CHAOS_CHECK_V_LINEARIZABILITY),
		r->budget_count, r->steps, r->unknown_pruned,
		r->unknown_bounded);
	if (r->unique_checked)
		fprintf(out, "unique writes: %zu acknowledged, %zu keys read "
			     "back after the final restart\n",
			r->unique_acknowledged, r->final_keys);
	else
		fputs("unique writes: not checked (no final line)\n", out);
	fprintf(out, "time: parse %.3f s, check %.3f s\n",
		(double)r->parse_us / 1e6, (double)r->check_us / 1e6);
}

static int cc_print_text(FILE *out, const struct chaos_history *h,
			 const struct chaos_check_report *r)
{
	cc_print_counts(out, r);
	for (size_t i = 0; i < r->violation_count; i++) {
		const struct chaos_check_violation *v = &r->violations[i];
		char *msg = cc_violation_message(v);

		if (msg == NULL)
			return RS_ENOMEM;
		fprintf(out, "violation: %s", msg);
		free(msg);
		if (v->type == CHAOS_CHECK_V_LINEARIZABILITY)
			fprintf(out, "; smallest failing sub-history found "
				     "(%zu of its %zu ops):",
				v->op_count, v->key_op_count);
		fputc('\n', out);
		for (size_t j = 0; j < v->op_count; j++)
			cc_print_op(out, &h->ops[v->ops[j]]);
	}
	for (size_t i = 0; i < r->budget_count; i++)
		fprintf(out, "unknown: search budget exhausted for key %s\n",
			r->budget_keys[i]);
	fprintf(out, "verdict: %s\n", cc_outcome_names[r->outcome]);
	return ferror(out) ? RS_EIO : RS_OK;
}

static json_t *cc_json_op(const struct chaos_history_op *op)
{
	json_t *j = json_pack("{s:I,s:I,s:s,s:s,s:s?,s:I,s:I,s:s}", "id",
			      (json_int_t)op->id, "client",
			      (json_int_t)op->client, "f",
			      chaos_history_f_name(op->f), "key", op->key,
			      "value", op->value, "invoke_us",
			      (json_int_t)op->invoke_us, "complete_us",
			      (json_int_t)op->complete_us, "result",
			      chaos_history_result_name(op->result));

	if (j != NULL && op->f == CHAOS_HISTORY_CAS)
		json_object_set_new(j, "expect", op->expect
							 ? json_string(op->expect)
							 : json_null());
	if (j != NULL && op->has_observed)
		json_object_set_new(j, "observed",
				    op->observed ? json_string(op->observed)
						 : json_null());
	return j;
}

static json_t *cc_json_violation(const struct chaos_history *h,
				 const struct chaos_check_violation *v)
{
	char *msg = cc_violation_message(v);
	json_t *j = NULL, *ops;

	if (msg != NULL)
		j = json_pack("{s:s,s:s,s:s}", "type",
			      cc_violation_names[v->type], "key", v->key,
			      "message", msg);
	free(msg);
	if (j == NULL || v->type != CHAOS_CHECK_V_LINEARIZABILITY) {
		if (j != NULL)
			json_object_set_new(j, "value", json_pack("s?", v->value));
		if (j != NULL && v->type == CHAOS_CHECK_V_UNIQUE_CHANGED)
			json_object_set_new(j, "found", json_pack("s?", v->found));
		return j;
	}
	ops = json_array();
	for (size_t i = 0; ops != NULL && i < v->op_count; i++)
		json_array_append_new(ops, cc_json_op(&h->ops[v->ops[i]]));
	json_object_set_new(j, "key_ops", json_integer((json_int_t)v->key_op_count));
	if (ops == NULL || json_object_set_new(j, "ops", ops) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *cc_json_by_f(const struct chaos_check_report *r)
{
	json_t *j = json_object();

	for (unsigned f = 0; j != NULL && f < CHAOS_HISTORY_F_COUNT; f++) {
		const size_t *c = r->by_f[f];
		json_object_set_new(j, chaos_history_f_name(f),
				    json_pack("{s:I,s:I,s:I,s:I}", "total",
					      (json_int_t)(c[0] + c[1] + c[2]),
					      "ok", (json_int_t)c[0], "fail",
					      (json_int_t)c[1], "unknown",
					      (json_int_t)c[2]));
	}
	return j;
}

static json_t *cc_json_lists(const struct chaos_history *h,
			     const struct chaos_check_report *r)
{
	json_t *v = json_array(), *u = json_array();

	for (size_t i = 0; v != NULL && i < r->violation_count; i++)
		json_array_append_new(v, cc_json_violation(h, &r->violations[i]));
	for (size_t i = 0; u != NULL && i < r->budget_count; i++)
		json_array_append_new(
			u, json_pack("{s:s,s:s+}", "key", r->budget_keys[i],
				     "message",
				     "unknown: search budget exhausted for key ",
				     r->budget_keys[i]));
	return json_pack("{s:o*,s:o*}", "violations", v, "inconclusive", u);
}

static int cc_print_json(FILE *out, const struct chaos_history *h,
			 const struct chaos_check_report *r)
{
	json_t *j = json_pack(
		"{s:I,s:I,s:I,s:I,s:o*,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I}",
		"ops", (json_int_t)r->ops, "ok",
		(json_int_t)r->by_result[CHAOS_HISTORY_OK], "fail",
		(json_int_t)r->by_result[CHAOS_HISTORY_FAIL], "unknown",
		(json_int_t)r->by_result[CHAOS_HISTORY_UNKNOWN], "by_f",
		cc_json_by_f(r), "keys", (json_int_t)r->keys,
		"keys_linearizable", (json_int_t)r->keys_linearizable, "steps",
		(json_int_t)r->steps, "unique_checked", r->unique_checked,
		"unique_acknowledged", (json_int_t)r->unique_acknowledged,
		"final_keys", (json_int_t)r->final_keys, "unknown_pruned",
		(json_int_t)r->unknown_pruned, "parse_us",
		(json_int_t)r->parse_us, "check_us", (json_int_t)r->check_us);
	json_t *lists = cc_json_lists(h, r);
	int rv = RS_ENOMEM;

	if (j != NULL && lists != NULL &&
	    json_object_update(j, lists) == 0 &&
	    json_object_set_new(j, "verdict",
				json_string(cc_outcome_names[r->outcome])) == 0) {
		rv = json_dumpf(j, out, JSON_COMPACT) == 0 ? RS_OK : RS_EIO;
		fputc('\n', out);
	}
	json_decref(lists);
	json_decref(j);
	return rv == RS_OK && ferror(out) ? RS_EIO : rv;
}

int chaos_check_report_print(FILE *out, const struct chaos_history *h,
			     const struct chaos_check_report *r, bool json)
{
	assert((unsigned)r->outcome < 3);
	return json ? cc_print_json(out, h, r) : cc_print_text(out, h, r);
}

/* ------------------------------------------------------------------ */
/* rschaos check                                                       */
/* ------------------------------------------------------------------ */

static const char cc_usage[] =
	"Usage: rschaos check [OPTIONS] HISTORY\n"
	"\n"
	"Checks a chaos history (NDJSON, format 1; see docs/chaos.md):\n"
	"  - every line is parsed, and every end line's line count and CRC-32C\n"
	"    are verified; the history must end with a valid end line;\n"
	"  - each register key (read, write, cas ops) is checked for\n"
	"    linearizability as a register that starts absent: an ok op takes\n"
	"    effect once within its interval; an unknown write or cas at any\n"
	"    time after its invoke, or never; a failed one never, except that a\n"
	"    failed cas that observed a value counts as a read of it; reads\n"
	"    that are not ok are ignored;\n"
	"  - if the history has a final line: every acknowledged (ok) unique\n"
	"    write must read back with its value, and every key read back must\n"
	"    have been written with that value by a unique op (ok or unknown);\n"
	"    without a final line this check is skipped, and the report says so.\n"
	"For a key that is not linearizable it prints the smallest failing\n"
	"sub-history it finds (greedy delta debugging, within --shrink-ms).\n"
	"\n"
	"Options:\n"
	"  --json             print the report as one JSON object: ops, ok,\n"
	"                     fail, unknown, by_f, keys, violations[],\n"
	"                     inconclusive[], unique_checked, verdict, ...\n"
	"  --max-steps N      search budget per key, in steps (default "
	"200000000)\n"
	"  --max-memory-mb N  memory budget per key's search (default 1024)\n"
	"  --shrink-ms N      time for shrinking, all keys together (default "
	"5000)\n"
	"  -h, --help         show this help\n"
	"\n"
	"Exit codes: 0 every check passed (verdict PASS); 1 a violation was\n"
	"found (verdict FAIL); 2 bad arguments, a history that cannot be read,\n"
	"is malformed, truncated or corrupt, or a key whose search ran out of\n"
	"budget with no violation found (verdict UNKNOWN: never a pass).\n"
	"When the history cannot be read or parsed, the reason goes to stderr\n"
	"(\"rschaos: HISTORY line N: ...\") and nothing to stdout, even with\n"
	"--json.\n";

struct cc_args {
	const char *path;
	bool json;
	bool help;
	struct chaos_check_options opt;
};

static int cc_usage_error(const char *fmt, const char *arg)
{
	fputs("rschaos check: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n(rschaos check --help for usage)\n", stderr);
	return CHAOS_EXIT_USAGE;
}

/* A numeric option at argv[*i] ("--name N" or "--name=N"): 1 if it was
 * parsed, 0 if argv[*i] is not `name`, or an exit code (> 1) on error. */
static int cc_opt_u64(int argc, char **argv, int *i, const char *name,
		      uint64_t min, uint64_t *out)
{
	size_t n = strlen(name);
	const char *arg = argv[*i], *v;

	if (strncmp(arg, name, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
		return 0;
	if (arg[n] == '=')
		v = arg + n + 1;
	else if (*i + 1 < argc)
		v = argv[++*i];
	else
		return cc_usage_error("%s needs a number", name);
	if (!cliopt_parse_u64(v, out) || *out < min)
		return cc_usage_error("bad number for %s", name);
	return 1;
}

static int cc_parse_numeric(int argc, char **argv, int *i, struct cc_args *a)
{
	uint64_t mb = 0;
	int rv;

	if ((rv = cc_opt_u64(argc, argv, i, "--max-steps", 1,
			     &a->opt.limits.steps_max)) != 0 ||
	    (rv = cc_opt_u64(argc, argv, i, "--shrink-ms", 0,
			     &a->opt.shrink_ms_max)) != 0)
		return rv;
	rv = cc_opt_u64(argc, argv, i, "--max-memory-mb", 1, &mb);
	if (rv == 1 && mb > SIZE_MAX / 2 / (1u << 20))
		return cc_usage_error("%s is too large", "--max-memory-mb");
	if (rv == 1)
		a->opt.limits.memory_bytes_max = (size_t)mb << 20;
	return rv;
}

static int cc_args_parse(int argc, char **argv, struct cc_args *a)
{
	bool options_done = false;

	memset(a, 0, sizeof *a);
	chaos_check_options_init(&a->opt);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		int rv;

		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (a->path != NULL)
				return cc_usage_error("unexpected argument '%s'",
						      arg);
			a->path = arg;
		} else if (strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			a->help = true;
			return CHAOS_EXIT_OK;
		} else if (strcmp(arg, "--json") == 0) {
			a->json = true;
		} else if ((rv = cc_parse_numeric(argc, argv, &i, a)) != 1) {
			return rv != 0 ? rv
				       : cc_usage_error("unknown option '%s'", arg);
		}
	}
	if (a->path == NULL)
		return cc_usage_error("%s", "missing HISTORY");
	return CHAOS_EXIT_OK;
}

int chaos_check_main(int argc, char **argv)
{
	struct chaos_history h;
	struct chaos_check_report r;
	struct cc_args a;
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t start_us = chaos_lin_now_us();
	int rv;

	if ((rv = cc_args_parse(argc, argv, &a)) != CHAOS_EXIT_OK || a.help) {
		if (a.help)
			fputs(cc_usage, stdout);
		return rv;
	}
	rv = chaos_history_parse_file(a.path, &h, errmsg);
	if (rv != RS_OK) {
		fprintf(stderr, "rschaos: %s%s%s\n", a.path,
			rv == RS_EINVAL ? " " : ": ", errmsg);
		return CHAOS_EXIT_USAGE;
	}
	rv = chaos_check_run(&h, &a.opt, &r);
	if (rv != RS_OK) {
		fprintf(stderr, "rschaos: %s: check: %s\n", a.path,
			rs_strerror(rv));
		chaos_history_free(&h);
		return CHAOS_EXIT_USAGE;
	}
	r.parse_us = r.check_us > 0 ? chaos_lin_now_us() - start_us - r.check_us : 0;
	rv = chaos_check_report_print(stdout, &h, &r, a.json);
	if (rv == RS_OK)
		rv = chaos_check_exit_code(&r);
	else
		rv = CHAOS_EXIT_USAGE;
	chaos_check_report_free(&r);
	chaos_history_free(&h);
	return rv;
}
