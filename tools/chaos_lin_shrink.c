/*
 * chaos_lin_shrink: chaos_lin_shrink (chaos_lin.h), the shrinker of a
 * key's history that chaos_lin_check_key finds not linearizable.
 *
 * Greedy delta debugging, in order: drop the ops the model ignores (no
 * check needed), cut from the front and then the back by bisection (a
 * fast start: a failing check costs about as much as the history before
 * the failure), then drop chunks of halving size and finally single ops
 * while what is left still fails.  Every candidate is checked with
 * chaos_lin_check_key itself, so what is kept is not linearizable by the
 * same rules; the op model and value interning are shared with it through
 * chaos_lin_internal.h.  The result stays in invoke order
 * (chaos_lin_invoke_cmp) and the whole is bounded by a time budget.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "tools/chaos_history.h"
#include "tools/chaos_lin.h"
#include "tools/chaos_lin_internal.h"

/*
 * Every sub-history tried is closed: an op that observes a value (a read,
 * a cas's expect, a failed cas's observed value) stays only with the op
 * that wrote it, when the full history has exactly one.  So removing ops
 * also removes, transitively, every op that observed what they wrote.
 * Without this the shrinker would turn every stale read into "a read of a
 * value never written", which is smaller but hides what went wrong.
 */
struct cl_shrink {
	const struct chaos_history_op *ops;
	size_t n;
	struct chaos_history_op *tmp; /* scratch, n ops */
	size_t *cur;                /* the failing sub-history kept so far */
	size_t cur_n;
	size_t *trial;              /* scratch, n indices */
	size_t *dep_start;          /* op i's observers are */
	size_t *deps;               /* deps[dep_start[i]..dep_start[i + 1]) */
	size_t *queue;              /* scratch, n indices */
	bool *in;                   /* scratch, n flags, all false between uses */
	struct chaos_lin_limits lim;
	uint64_t deadline_us;
	int err;
};

static bool cl_shrink_done(const struct cl_shrink *sh)
{
	return sh->err != RS_OK || chaos_lin_now_us() > sh->deadline_us;
}

/* The value op observes (NULL if none), and whether op writes one. */
static const char *cl_op_observes(const struct chaos_history_op *op,
				  bool *writes)
{
	*writes = (op->f == CHAOS_HISTORY_WRITE ||
		   op->f == CHAOS_HISTORY_CAS) &&
		  op->result != CHAOS_HISTORY_FAIL;
	if (op->f == CHAOS_HISTORY_READ && op->result == CHAOS_HISTORY_OK)
		return op->value;
	if (op->f != CHAOS_HISTORY_CAS)
		return NULL;
	if (op->result == CHAOS_HISTORY_FAIL)
		return op->has_observed ? op->observed : NULL;
	return op->expect;
}

/* needs[i]: the one writer of what op i observes, or SIZE_MAX. */
static int cl_shrink_needs(struct cl_shrink *sh, size_t *needs)
{
	size_t *writer = malloc((3 * sh->n + 1) * sizeof *writer);
	struct cl_vmap vm;
	bool w;

	if (writer == NULL || cl_vmap_init(&vm, 3 * sh->n) != RS_OK) {
		free(writer);
		return RS_ENOMEM;
	}
	for (size_t i = 0; i <= 3 * sh->n; i++)
		writer[i] = SIZE_MAX;
	for (size_t i = 0; i < sh->n; i++) {
		int32_t v = cl_vmap_id(&vm, sh->ops[i].value);
		cl_op_observes(&sh->ops[i], &w);
		if (w && v != 0) /* SIZE_MAX - 1: more than one writer */
			writer[v] = writer[v] == SIZE_MAX ? i : SIZE_MAX - 1;
	}
	for (size_t i = 0; i < sh->n; i++) {
		int32_t v = cl_vmap_id(&vm, cl_op_observes(&sh->ops[i], &w));
		needs[i] = v != 0 && writer[v] < SIZE_MAX - 1 && writer[v] != i
				   ? writer[v]
				   : SIZE_MAX;
	}
	cl_vmap_free(&vm);
	free(writer);
	return RS_OK;
}

/* The reverse of needs, as lists: op i's observers. */
static int cl_shrink_deps(struct cl_shrink *sh)
{
	size_t *needs = malloc((sh->n + 1) * sizeof *needs);
	int rv = needs == NULL ? RS_ENOMEM : cl_shrink_needs(sh, needs);

	if (rv != RS_OK) {
		free(needs);
		return rv;
	}
	for (size_t i = 0; i < sh->n; i++)
		if (needs[i] != SIZE_MAX)
			sh->dep_start[needs[i] + 1]++;
	for (size_t i = 0; i < sh->n; i++)
		sh->dep_start[i + 1] += sh->dep_start[i];
	for (size_t i = 0; i < sh->n; i++) /* queue: next free slot per op */
		sh->queue[i] = sh->dep_start[i];
	for (size_t i = 0; i < sh->n; i++)
		if (needs[i] != SIZE_MAX)
			sh->deps[sh->queue[needs[i]]++] = i;
	assert(sh->n == 0 || sh->queue[sh->n - 1] == sh->dep_start[sh->n]);
	free(needs);
	return RS_OK;
}

/* trial = cur without cur[a..b) and whatever observed what those wrote,
 * transitively; returns its length.  Keeps cur's order. */
static size_t cl_shrink_without(struct cl_shrink *sh, size_t a, size_t b)
{
	size_t head = 0, tail = 0, k = 0;

	assert(a <= b && b <= sh->cur_n);
	for (size_t i = 0; i < sh->cur_n; i++)
		sh->in[sh->cur[i]] = i < a || i >= b;
	for (size_t i = a; i < b; i++)
		sh->queue[tail++] = sh->cur[i];
	while (head < tail) {
		size_t x = sh->queue[head++];
		for (size_t j = sh->dep_start[x]; j < sh->dep_start[x + 1]; j++)
			if (sh->in[sh->deps[j]]) {
				sh->in[sh->deps[j]] = false;
				sh->queue[tail++] = sh->deps[j];
			}
	}
	for (size_t i = 0; i < sh->cur_n; i++) {
		if (sh->in[sh->cur[i]])
			sh->trial[k++] = sh->cur[i];
		sh->in[sh->cur[i]] = false;
	}
	assert(tail <= sh->n && k + tail >= b - a);
	return k;
}

/* Whether ops[idx[0..k)] is found not linearizable. */
static bool cl_shrink_fails(struct cl_shrink *sh, const size_t *idx, size_t k)
{
	enum chaos_lin_verdict v;
	int rv;

	for (size_t i = 0; i < k; i++)
		sh->tmp[i] = sh->ops[idx[i]];
	rv = chaos_lin_check_key(sh->tmp, k, &sh->lim, &v, NULL);
	if (rv != RS_OK)
		sh->err = rv;
	return rv == RS_OK && v == CHAOS_LIN_NOT_LINEARIZABLE;
}

/* Keeps cur without cur[a..b) (see cl_shrink_without) if it still fails. */
static bool cl_shrink_try(struct cl_shrink *sh, size_t a, size_t b)
{
	size_t k = cl_shrink_without(sh, a, b);

	if (k == 0 || !cl_shrink_fails(sh, sh->trial, k))
		return false;
	memcpy(sh->cur, sh->trial, k * sizeof *sh->cur);
	sh->cur_n = k;
	return true;
}

/* Ops the model ignores cannot matter, and observe nothing another op
 * wrote: they go first, without a check. */
static void cl_shrink_relevant(struct cl_shrink *sh)
{
	struct cl_vmap vm;
	struct cl_mop m;
	size_t k = 0;

	if (cl_vmap_init(&vm, 3 * sh->cur_n) != RS_OK) {
		sh->err = RS_ENOMEM;
		return;
	}
	for (size_t i = 0; i < sh->cur_n; i++)
		if (cl_model_op(&sh->ops[sh->cur[i]], 0, &vm, &m))
			sh->cur[k++] = sh->cur[i];
	cl_vmap_free(&vm);
	assert(k > 0); /* the history fails, so something is left */
	sh->cur_n = k;
}

/* The shortest failing prefix (by invoke), found by bisection.  Failure
 * need not be monotone in the prefix, but only cuts seen to fail are kept:
 * the bisections are a fast start for cl_shrink_chunks, not a proof. */
static void cl_shrink_prefix(struct cl_shrink *sh)
{
	size_t lo = 0, hi = sh->cur_n; /* a prefix of lo ops passes, hi fails */

	while (hi - lo > 1 && !cl_shrink_done(sh)) {
		size_t mid = lo + (hi - lo) / 2;
		size_t cur_n = sh->cur_n;

		if (!cl_shrink_try(sh, mid, cur_n)) {
			lo = mid;
			continue;
		}
		/* Observers of the cut went too, so the prefix kept may be
		 * shorter than mid, even than lo. */
		hi = sh->cur_n;
		lo = lo < hi ? lo : hi - 1;
	}
}

/* The longest failing cut from the front, by bisection.  It comes first
 * because a failing check costs about as much as the history before the
 * failure: the search has to exhaust it. */
static void cl_shrink_front(struct cl_shrink *sh)
{
	size_t lo = 0, hi = sh->cur_n; /* cutting lo ops fails, hi does not */

	while (hi - lo > 1 && !cl_shrink_done(sh)) {
		size_t mid = lo + (hi - lo) / 2;

		if (!cl_shrink_try(sh, 0, mid)) {
			hi = mid;
			continue;
		}
		/* The cut ops are gone (and their observers): what was at hi
		 * is now at most at hi - mid. */
		hi = hi - mid > 1 ? hi - mid : 1;
		hi = hi < sh->cur_n ? hi : sh->cur_n;
		lo = 0;
	}
}

/* Greedy delta debugging: drop chunks of halving size while the rest still
 * fails, then single ops until none can go. */
static void cl_shrink_chunks(struct cl_shrink *sh)
{
	size_t chunk = sh->cur_n / 2;
	bool changed;

	while (chunk >= 1 && !cl_shrink_done(sh)) {
		changed = false;
		for (size_t i = 0; i < sh->cur_n && !cl_shrink_done(sh);) {
			size_t end = i + chunk < sh->cur_n ? i + chunk : sh->cur_n;

			if (cl_shrink_try(sh, i, end))
				changed = true;
			else
				i = end;
		}
		if (chunk > 1)
			chunk = chunk / 2 < sh->cur_n ? chunk / 2 : sh->cur_n;
		else if (!changed)
			break;
	}
}

int chaos_lin_invoke_cmp(const struct chaos_history_op *x,
			 const struct chaos_history_op *y)
{
	if (x->invoke_us != y->invoke_us)
		return x->invoke_us < y->invoke_us ? -1 : 1;
	if (x->complete_us != y->complete_us)
		return x->complete_us < y->complete_us ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

struct cl_opidx {
	const struct chaos_history_op *op;
	size_t i;
};

static int cl_opidx_cmp(const void *a, const void *b)
{
	const struct cl_opidx *x = a, *y = b;
	int c = chaos_lin_invoke_cmp(x->op, y->op);

	return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

/* Sorts idx[0..n) (indices into ops) by invoke time. */
static int cl_sort_idx(const struct chaos_history_op *ops, size_t *idx,
		       size_t n)
{
	struct cl_opidx *v = malloc((n ? n : 1) * sizeof *v);

	if (v == NULL)
		return RS_ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = (struct cl_opidx){&ops[idx[i]], idx[i]};
	qsort(v, n, sizeof *v, cl_opidx_cmp);
	for (size_t i = 0; i < n; i++)
		idx[i] = v[i].i;
	free(v);
	return RS_OK;
}

int chaos_lin_shrink(const struct chaos_history_op *ops, size_t n,
		     const struct chaos_lin_limits *lim,
		     uint64_t time_ms_max, size_t *keep, size_t *keep_count)
{
	struct cl_shrink sh = {.ops = ops, .n = n, .lim = *lim, .cur = keep,
			       .cur_n = n};
	size_t m = n ? n : 1;

	sh.deadline_us = chaos_lin_deadline_us(time_ms_max);
	sh.tmp = malloc(m * sizeof *sh.tmp);
	sh.trial = malloc(m * sizeof *sh.trial);
	sh.dep_start = calloc(m + 1, sizeof *sh.dep_start);
	sh.deps = malloc(m * sizeof *sh.deps);
	sh.queue = malloc(m * sizeof *sh.queue);
	sh.in = calloc(m, sizeof *sh.in);
	for (size_t i = 0; i < n; i++)
		keep[i] = i;
	if (sh.tmp == NULL || sh.trial == NULL || sh.dep_start == NULL ||
	    sh.deps == NULL || sh.queue == NULL || sh.in == NULL ||
	    cl_shrink_deps(&sh) != RS_OK || cl_sort_idx(ops, keep, n) != RS_OK) {
		sh.err = RS_ENOMEM;
		goto out;
	}
	if (!cl_shrink_fails(&sh, keep, n))
		goto out;
	cl_shrink_relevant(&sh);
	cl_shrink_front(&sh);
	cl_shrink_prefix(&sh);
	cl_shrink_chunks(&sh);
	/* Still in invoke order: every step keeps the order of cur. */
	for (size_t i = 1; i < sh.cur_n; i++)
		assert(chaos_lin_invoke_cmp(&ops[keep[i - 1]],
					    &ops[keep[i]]) <= 0);
out:
	*keep_count = sh.cur_n;
	assert(*keep_count <= n);
	free(sh.tmp);
	free(sh.trial);
	free(sh.dep_start);
	free(sh.deps);
	free(sh.queue);
	free(sh.in);
	return sh.err;
}
