/*
 * Tests for the chaos history checker: the one-key linearizability search
 * (tools/chaos_lin.h), the history parser (tools/chaos_history.h) and the
 * checks, report and command of a whole history (tools/chaos_check.h).
 *
 * Besides hand-written histories that are and are not linearizable, the
 * tests carry a brute-force checker ("bf_" below), written from the rules
 * in chaos_lin.h rather than from chaos_lin.c: it tries every subset of
 * the unknown ops and every order consistent with real time.  Thousands of
 * small random histories must get the same answer from both, which also
 * checks the reductions chaos_lin.c applies before its search.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream */
#endif
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "tests/unit/testutil.h"
#include "tools/chaos.h"
#include "tools/chaos_check.h"
#include "tools/chaos_history.h"
#include "tools/chaos_lin.h"

/* ------------------------------------------------------------------ */
/* Building histories of one key                                        */
/* ------------------------------------------------------------------ */

#define H_MAX 64

struct h {
	struct chaos_history_op ops[H_MAX];
	size_t n;
};

static struct chaos_history_op *h_add(struct h *h, uint64_t client,
				      enum chaos_history_f f, uint64_t inv,
				      uint64_t comp,
				      enum chaos_history_result result)
{
	struct chaos_history_op *op;

	ck_assert_uint_lt(h->n, H_MAX);
	op = &h->ops[h->n];
	*op = (struct chaos_history_op){.id = h->n, .client = client, .f = f,
					.result = result, .key = "P/k/0",
					.invoke_us = inv, .complete_us = comp};
	h->n++;
	return op;
}

static void h_write(struct h *h, uint64_t client, const char *v, uint64_t inv,
		    uint64_t comp, enum chaos_history_result result)
{
	h_add(h, client, CHAOS_HISTORY_WRITE, inv, comp, result)->value = v;
}

static void h_read(struct h *h, uint64_t client, const char *v, uint64_t inv,
		   uint64_t comp)
{
	h_add(h, client, CHAOS_HISTORY_READ, inv, comp, CHAOS_HISTORY_OK)
		->value = v;
}

static struct chaos_history_op *h_cas(struct h *h, uint64_t client,
				      const char *expect, const char *v,
				      uint64_t inv, uint64_t comp,
				      enum chaos_history_result result)
{
	struct chaos_history_op *op =
		h_add(h, client, CHAOS_HISTORY_CAS, inv, comp, result);
	op->expect = expect;
	op->value = v;
	return op;
}

static struct chaos_lin_limits limits_default(void)
{
	struct chaos_lin_limits l;
	chaos_lin_limits_init(&l);
	return l;
}

static enum chaos_lin_verdict verdict_of(const struct chaos_history_op *ops,
					 size_t n)
{
	struct chaos_lin_limits l = limits_default();
	enum chaos_lin_verdict v;

	ck_assert_int_eq(chaos_lin_check_key(ops, n, &l, &v, NULL), RS_OK);
	return v;
}

#define ck_assert_linearizable(h) \
	ck_assert_int_eq(verdict_of((h)->ops, (h)->n), CHAOS_LIN_LINEARIZABLE)
#define ck_assert_not_linearizable(h)                  \
	ck_assert_int_eq(verdict_of((h)->ops, (h)->n), \
			 CHAOS_LIN_NOT_LINEARIZABLE)

/* ------------------------------------------------------------------ */
/* Histories that are linearizable                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_empty)
{
	struct h h = {0};

	ck_assert_linearizable(&h);
	h_read(&h, 0, NULL, 0, 1); /* the register starts absent */
	ck_assert_linearizable(&h);
}
END_TEST

START_TEST(test_sequential)
{
	struct h h = {0};

	h_read(&h, 0, NULL, 0, 10);
	h_write(&h, 0, "a", 20, 30, CHAOS_HISTORY_OK);
	h_read(&h, 1, "a", 40, 50);
	h_cas(&h, 1, "a", "b", 60, 70, CHAOS_HISTORY_OK);
	h_read(&h, 0, "b", 80, 90);
	h_cas(&h, 0, "a", "c", 100, 110, CHAOS_HISTORY_FAIL)->has_observed =
		true;
	h.ops[h.n - 1].observed = "b";
	h_write(&h, 1, "d", 120, 130, CHAOS_HISTORY_OK);
	h_read(&h, 0, "d", 140, 150);
	ck_assert_linearizable(&h);
}
END_TEST

START_TEST(test_concurrent)
{
	struct h h = {0};

	/* Two overlapping writes: readers after both may see either one,
	 * but then all later reads must agree. */
	h_write(&h, 0, "a", 0, 50, CHAOS_HISTORY_OK);
	h_write(&h, 1, "b", 10, 60, CHAOS_HISTORY_OK);
	h_read(&h, 2, "a", 20, 30); /* a lands first, b overwrites later */
	h_read(&h, 2, "b", 70, 80);
	ck_assert_linearizable(&h);

	h.n = 0;
	h_write(&h, 0, "a", 0, 50, CHAOS_HISTORY_OK);
	h_write(&h, 1, "b", 10, 60, CHAOS_HISTORY_OK);
	h_read(&h, 2, "b", 20, 30); /* b first, a last */
	h_read(&h, 2, "a", 70, 80);
	h_read(&h, 3, "a", 65, 90);
	ck_assert_linearizable(&h);

	/* Touching intervals overlap: a read that starts the microsecond
	 * a write ends may still see the value before it. */
	h.n = 0;
	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_read(&h, 1, NULL, 10, 20);
	ck_assert_linearizable(&h);
}
END_TEST

START_TEST(test_unknown_took_effect)
{
	struct chaos_lin_limits l = limits_default();
	struct chaos_lin_stats st;
	enum chaos_lin_verdict v;
	struct h h = {0};

	/* An unknown write applied long after its client gave up. */
	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_write(&h, 1, "b", 20, 30, CHAOS_HISTORY_UNKNOWN);
	h_write(&h, 0, "c", 40, 50, CHAOS_HISTORY_OK);
	h_read(&h, 2, "c", 60, 70);
	h_read(&h, 2, "b", 80, 90);
	ck_assert_int_eq(chaos_lin_check_key(h.ops, h.n, &l, &v, &st), RS_OK);
	ck_assert_int_eq(v, CHAOS_LIN_LINEARIZABLE);
	ck_assert_uint_eq(st.unknown_bounded, 1);
	/* An unknown cas that applied. */
	h_cas(&h, 1, "b", "d", 100, 110, CHAOS_HISTORY_UNKNOWN);
	h_read(&h, 0, "d", 120, 130);
	ck_assert_linearizable(&h);
}
END_TEST

START_TEST(test_unknown_did_not)
{
	struct chaos_lin_limits l = limits_default();
	struct chaos_lin_stats st;
	enum chaos_lin_verdict v;
	struct h h = {0};

	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_write(&h, 1, "b", 20, 30, CHAOS_HISTORY_UNKNOWN);
	h_cas(&h, 1, "a", "x", 35, 36, CHAOS_HISTORY_UNKNOWN);
	h_read(&h, 2, "a", 40, 50);
	h_read(&h, 2, "a", 1000, 1010);
	ck_assert_int_eq(chaos_lin_check_key(h.ops, h.n, &l, &v, &st), RS_OK);
	ck_assert_int_eq(v, CHAOS_LIN_LINEARIZABLE);
	ck_assert_uint_eq(st.unknown_pruned, 2); /* b and x never seen */
	/* A failed write and a read that did not succeed mean nothing. */
	h_write(&h, 0, "f", 1020, 1030, CHAOS_HISTORY_FAIL);
	h_add(&h, 1, CHAOS_HISTORY_READ, 1040, 1050, CHAOS_HISTORY_UNKNOWN)
		->value = "nonsense";
	h_cas(&h, 1, "zz", "y", 1060, 1070,
	      CHAOS_HISTORY_FAIL); /* no observed */
	h_read(&h, 2, "a", 1080, 1090);
	ck_assert_linearizable(&h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Histories that are not                                               */
/* ------------------------------------------------------------------ */

START_TEST(test_stale_read)
{
	struct h h = {0};

	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_write(&h, 0, "b", 20, 30, CHAOS_HISTORY_OK);
	h_read(&h, 1, "a", 40, 50);
	ck_assert_not_linearizable(&h);
}
END_TEST

START_TEST(test_lost_write)
{
	struct h h = {0};

	/* b was acknowledged, but every read after it still sees a. */
	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_read(&h, 2, "a", 12, 14);
	h_write(&h, 1, "b", 20, 30, CHAOS_HISTORY_OK);
	h_read(&h, 2, "a", 40, 50);
	h_read(&h, 0, "a", 60, 70);
	ck_assert_not_linearizable(&h);
	/* It is fine if b is still in flight when the reads happen. */
	h.ops[2].complete_us = 80;
	ck_assert_linearizable(&h);
}
END_TEST

START_TEST(test_cas_twice)
{
	struct h h = {0};

	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_cas(&h, 1, "a", "b", 20, 40, CHAOS_HISTORY_OK);
	h_cas(&h, 2, "a", "c", 25, 45, CHAOS_HISTORY_OK);
	ck_assert_not_linearizable(&h);
	/* With one of them unknown, it simply did not apply. */
	h.ops[2].result = CHAOS_HISTORY_UNKNOWN;
	ck_assert_linearizable(&h);
	/* A cas that failed having observed a value is a read of it. */
	h.n = 1;
	h_cas(&h, 1, "x", "b", 20, 40, CHAOS_HISTORY_FAIL)->has_observed = true;
	h.ops[1].observed = "zz";
	ck_assert_not_linearizable(&h);
	h.ops[1].observed = "a";
	ck_assert_linearizable(&h);
}
END_TEST

START_TEST(test_read_never_written)
{
	struct h h = {0};

	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_read(&h, 1, "q", 5, 50);
	ck_assert_not_linearizable(&h);
	/* A failed write never happened, however its value got there. */
	h.n = 0;
	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_FAIL);
	h_read(&h, 1, "a", 20, 30);
	ck_assert_not_linearizable(&h);
	/* Nor can an unknown write be seen before it was sent. */
	h.n = 0;
	h_read(&h, 1, "a", 0, 10);
	h_write(&h, 0, "a", 20, 30, CHAOS_HISTORY_UNKNOWN);
	ck_assert_not_linearizable(&h);
	/* A read of absent after a write completed. */
	h.n = 0;
	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_read(&h, 1, NULL, 20, 30);
	ck_assert_not_linearizable(&h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The budget                                                           */
/* ------------------------------------------------------------------ */

static void build_chain(struct h *h, size_t writes)
{
	static char vals[H_MAX][24];

	h->n = 0;
	for (size_t i = 0; i < writes; i++) {
		snprintf(vals[i], sizeof vals[i], "v%zu", i);
		h_write(h, i % 3, vals[i], 10 * i, 10 * i + 15,
			CHAOS_HISTORY_OK);
		h_read(h, 3, vals[i], 10 * i + 16, 10 * i + 17);
	}
}

START_TEST(test_budget)
{
	struct chaos_lin_limits l = limits_default();
	enum chaos_lin_verdict v;
	struct h h;

	build_chain(&h, 20);
	l.steps_max = 5;
	ck_assert_int_eq(chaos_lin_check_key(h.ops, h.n, &l, &v, NULL), RS_OK);
	ck_assert_int_eq(v, CHAOS_LIN_BUDGET_EXHAUSTED);
	l = limits_default();
	l.memory_bytes_max = 100;
	ck_assert_int_eq(chaos_lin_check_key(h.ops, h.n, &l, &v, NULL), RS_OK);
	ck_assert_int_eq(v, CHAOS_LIN_BUDGET_EXHAUSTED);
	l = limits_default();
	ck_assert_int_eq(chaos_lin_check_key(h.ops, h.n, &l, &v, NULL), RS_OK);
	ck_assert_int_eq(v, CHAOS_LIN_LINEARIZABLE);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The brute force                                                      */
/* ------------------------------------------------------------------ */

#define BF_MAX 7

struct bf_op {
	enum chaos_history_f f; /* read, write or cas */
	const char *expect, *value;
	bool optional;
	uint64_t inv, ret;
};

static bool bf_eq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* The rules of chaos_lin.h, one op at a time. */
static size_t bf_model(const struct chaos_history_op *ops, size_t n,
		       struct bf_op *m)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct chaos_history_op *op = &ops[i];
		struct bf_op b = {op->f, op->expect, op->value,
				  op->result == CHAOS_HISTORY_UNKNOWN,
				  op->invoke_us, op->complete_us};

		if (op->f == CHAOS_HISTORY_READ &&
		    op->result != CHAOS_HISTORY_OK)
			continue;
		if (op->f == CHAOS_HISTORY_WRITE &&
		    op->result == CHAOS_HISTORY_FAIL)
			continue;
		if (op->f == CHAOS_HISTORY_CAS &&
		    op->result == CHAOS_HISTORY_FAIL) {
			if (!op->has_observed)
				continue;
			b = (struct bf_op){CHAOS_HISTORY_READ, NULL,
					   op->observed, false, op->invoke_us,
					   op->complete_us};
		}
		m[k++] = b;
	}
	return k;
}

static bool bf_step(const struct bf_op *o, const char *state,
		    const char **next)
{
	*next = o->f == CHAOS_HISTORY_READ ? state : o->value;
	if (o->f == CHAOS_HISTORY_READ)
		return bf_eq(state, o->value);
	return o->f == CHAOS_HISTORY_WRITE || bf_eq(state, o->expect);
}

/* Can the ops in `chosen` not yet `placed` follow, in some order? */
static bool bf_dfs(const struct bf_op *m, size_t k, unsigned chosen,
		   unsigned placed, const char *state)
{
	if (placed == chosen)
		return true;
	for (size_t i = 0; i < k; i++) {
		const char *next;
		bool blocked = false;

		if (!(chosen >> i & 1) || (placed >> i & 1))
			continue;
		for (size_t j = 0; j < k; j++)
			if (j != i && (chosen >> j & 1) && !(placed >> j & 1) &&
			    !m[j].optional && m[j].ret < m[i].inv)
				blocked = true; /* j must come before i */
		if (blocked || !bf_step(&m[i], state, &next))
			continue;
		if (bf_dfs(m, k, chosen, placed | 1u << i, next))
			return true;
	}
	return false;
}

static bool bf_linearizable(const struct chaos_history_op *ops, size_t n)
{
	struct bf_op m[BF_MAX];
	size_t k = bf_model(ops, n, m);
	unsigned required = 0, optional = 0;

	for (size_t i = 0; i < k; i++)
		*(m[i].optional ? &optional : &required) |= 1u << i;
	/* Every subset of the optional ops: enumerate submasks. */
	for (unsigned sub = optional;; sub = (sub - 1) & optional) {
		if (bf_dfs(m, k, required | sub, 0, NULL))
			return true;
		if (sub == 0)
			return false;
	}
}

struct rh { /* a random history */
	struct chaos_history_op ops[BF_MAX];
	char vals[BF_MAX][24];
	size_t n;
};

static uint64_t rnd(uint64_t *rng, uint64_t n)
{
	return testutil_rand(rng) % n;
}

/* A value to observe: absent, any op's value, or one nobody wrote. */
static const char *rh_pick(struct rh *h, uint64_t *rng)
{
	uint64_t r = rnd(rng, h->n + 2);
	return r == h->n ? NULL : r == h->n + 1 ? "bogus" : h->vals[r];
}

/* Ops with random intervals; per client one at a time. */
static void rh_intervals(struct rh *h, uint64_t *rng)
{
	uint64_t t[3];
	unsigned clients = 2 + (unsigned)rnd(rng, 2);

	for (unsigned c = 0; c < 3; c++)
		t[c] = rnd(rng, 5);
	h->n = 1 + rnd(rng, BF_MAX);
	for (size_t i = 0; i < h->n; i++) {
		struct chaos_history_op *op = &h->ops[i];
		unsigned c = (unsigned)rnd(rng, clients);

		snprintf(h->vals[i], sizeof h->vals[i], "v%zu", i);
		*op = (struct chaos_history_op){
			.id = i, .client = c, .key = "k", .value = h->vals[i]};
		/* Values are unique in real runs; the checker must not rely
		 * on it, so some repeat and some are null. */
		if (rnd(rng, 5) == 0)
			op->value = rnd(rng, 4) ? h->vals[rnd(rng, i + 1)] : NULL;
		op->invoke_us = t[c] + rnd(rng, 4);
		op->complete_us = op->invoke_us + rnd(rng, 8);
		t[c] = op->complete_us + rnd(rng, 2);
		op->f = (enum chaos_history_f)rnd(rng, 3);
	}
}

static enum chaos_history_result rh_result(uint64_t *rng)
{
	uint64_t r = rnd(rng, 10);
	return r < 6 ? CHAOS_HISTORY_OK : r < 8 ? CHAOS_HISTORY_FAIL
						: CHAOS_HISTORY_UNKNOWN;
}

/* Mode 0: every observed value random (mostly not linearizable). */
static void rh_random(struct rh *h, uint64_t *rng)
{
	for (size_t i = 0; i < h->n; i++) {
		struct chaos_history_op *op = &h->ops[i];

		op->result = rh_result(rng);
		if (op->f == CHAOS_HISTORY_READ)
			op->value = rh_pick(h, rng);
		if (op->f != CHAOS_HISTORY_CAS)
			continue;
		op->expect = rh_pick(h, rng);
		op->has_observed =
			op->result == CHAOS_HISTORY_FAIL && rnd(rng, 2);
		op->observed = op->has_observed ? rh_pick(h, rng) : NULL;
	}
}

/* Applies op at its linearization point; `state` is the register. */
static void rh_apply(struct chaos_history_op *op, const char **state,
		     uint64_t *rng, struct rh *h)
{
	bool took;

	op->result = rh_result(rng);
	if (op->f == CHAOS_HISTORY_READ) {
		op->value = *state;
		return;
	}
	took = op->result == CHAOS_HISTORY_OK ||
	       (op->result == CHAOS_HISTORY_UNKNOWN && rnd(rng, 2));
	if (op->f == CHAOS_HISTORY_CAS) {
		op->expect = rnd(rng, 3) ? *state : rh_pick(h, rng);
		if (!bf_eq(op->expect, *state)) {
			took = false;
			if (op->result == CHAOS_HISTORY_OK)
				op->result = CHAOS_HISTORY_FAIL;
		}
		op->has_observed =
			op->result == CHAOS_HISTORY_FAIL && rnd(rng, 2);
		op->observed = *state;
	}
	if (took)
		*state = op->value;
}

/* Mode 1: a real register, then maybe one op damaged. */
static void rh_simulated(struct rh *h, uint64_t *rng)
{
	uint64_t lp[BF_MAX];
	size_t order[BF_MAX];
	const char *state = NULL;

	for (size_t i = 0; i < h->n; i++) {
		const struct chaos_history_op *op = &h->ops[i];
		lp[i] = op->invoke_us * 2 +
			rnd(rng, 2 * (op->complete_us - op->invoke_us) + 1);
		order[i] = i;
	}
	for (size_t i = 1; i < h->n; i++) /* sort by linearization point */
		for (size_t j = i; j > 0 && lp[order[j - 1]] > lp[order[j]]; j--) {
			size_t t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (size_t i = 0; i < h->n; i++)
		rh_apply(&h->ops[order[i]], &state, rng, h);
	if (rnd(rng, 3) == 0) {
		struct chaos_history_op *op = &h->ops[rnd(rng, h->n)];
		if (op->f == CHAOS_HISTORY_READ)
			op->value = rh_pick(h, rng);
		else
			op->result = rh_result(rng);
	}
}

/* Whether each kept op that observes a value keeps its writer, when the
 * whole history has exactly one and it is another op (chaos_lin_shrink's
 * promise). */
static bool closed(const struct chaos_history_op *ops, size_t n,
		   const size_t *keep, size_t kept)
{
	for (size_t i = 0; i < kept; i++) {
		const struct chaos_history_op *op = &ops[keep[i]];
		struct bf_op m;
		size_t writers = 0, writer = 0;
		bool found = false;
		const char *seen;

		if (bf_model(op, 1, &m) == 0 || m.f == CHAOS_HISTORY_WRITE)
			continue;
		seen = m.f == CHAOS_HISTORY_READ ? m.value : m.expect;
		for (size_t j = 0; seen != NULL && j < n; j++)
			if (ops[j].f != CHAOS_HISTORY_READ &&
			    ops[j].result != CHAOS_HISTORY_FAIL &&
			    bf_eq(ops[j].value, seen)) {
				writers++;
				writer = j;
			}
		for (size_t j = 0; j < kept; j++)
			found |= keep[j] == writer;
		if (writers == 1 && writer != keep[i] && !found)
			return false;
	}
	return true;
}

START_TEST(test_brute_force)
{
	uint64_t rng = testutil_seed() ^ 0xb7e1ull;
	struct chaos_lin_limits l = limits_default();
	size_t counts[2] = {0, 0};

	for (int iter = 0; iter < 20000; iter++) {
		struct rh h;
		enum chaos_lin_verdict v;
		bool want;
		size_t keep[BF_MAX], kept;

		rh_intervals(&h, &rng);
		if (iter % 2)
			rh_simulated(&h, &rng);
		else
			rh_random(&h, &rng);
		want = bf_linearizable(h.ops, h.n);
		ck_assert_int_eq(chaos_lin_check_key(h.ops, h.n, &l, &v, NULL),
				 RS_OK);
		ck_assert_msg(v == (want ? CHAOS_LIN_LINEARIZABLE
					 : CHAOS_LIN_NOT_LINEARIZABLE),
			      "iteration %d: checker %d, brute force %d", iter,
			      (int)v, (int)want);
		counts[want]++;
		if (want)
			continue;
		/* The shrinker's answer must fail by the brute force too. */
		ck_assert_int_eq(chaos_lin_shrink(h.ops, h.n, &l, 1000, keep,
						  &kept), RS_OK);
		ck_assert_uint_ge(kept, 1);
		ck_assert(closed(h.ops, h.n, keep, kept));
		{
			struct chaos_history_op sub[BF_MAX];
			for (size_t i = 0; i < kept; i++)
				sub[i] = h.ops[keep[i]];
			ck_assert(!bf_linearizable(sub, kept));
		}
	}
	fprintf(stderr, "brute force: %zu linearizable, %zu not\n", counts[1],
		counts[0]);
	ck_assert_uint_gt(counts[0], 2000);
	ck_assert_uint_gt(counts[1], 2000);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The shrinker                                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_shrink)
{
	struct chaos_lin_limits l = limits_default();
	static char vals[20][24];
	struct h h = {0};
	size_t keep[H_MAX], kept;
	struct chaos_history_op sub[H_MAX];

	/* 20 overlapping writes, each read back; then a read of v3. */
	for (size_t i = 0; i < 20; i++) {
		snprintf(vals[i], sizeof vals[i], "v%zu", i);
		h_write(&h, i % 2, vals[i], 100 * i, 100 * i + 60,
			CHAOS_HISTORY_OK);
		h_read(&h, 2, vals[i], 100 * i + 70, 100 * i + 90);
	}
	h_read(&h, 3, vals[3], 2005, 2010);
	h_write(&h, 0, "late", 2100, 2200, CHAOS_HISTORY_OK);
	ck_assert_not_linearizable(&h);
	ck_assert_int_eq(chaos_lin_shrink(h.ops, h.n, &l, 5000, keep, &kept),
			 RS_OK);
	ck_assert_uint_lt(kept, h.n);
	for (size_t i = 0; i < kept; i++) {
		sub[i] = h.ops[keep[i]];
		if (i > 0) /* in invoke order */
			ck_assert_uint_le(sub[i - 1].invoke_us, sub[i].invoke_us);
	}
	ck_assert_int_eq(verdict_of(sub, kept), CHAOS_LIN_NOT_LINEARIZABLE);
	/* The stale read, the write it saw and one that came after. */
	ck_assert_uint_eq(kept, 3);
	ck_assert_str_eq(sub[0].value, "v3");
	ck_assert_int_eq(sub[0].f, CHAOS_HISTORY_WRITE);
	ck_assert_int_eq(sub[1].f, CHAOS_HISTORY_WRITE);
	ck_assert_int_eq(sub[2].f, CHAOS_HISTORY_READ);
	ck_assert_str_eq(sub[2].value, "v3");
	/* A history that does not fail is kept whole. */
	h.n -= 2;
	ck_assert_int_eq(chaos_lin_shrink(h.ops, h.n, &l, 5000, keep, &kept),
			 RS_OK);
	ck_assert_uint_eq(kept, h.n);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Performance                                                          */
/* ------------------------------------------------------------------ */

#define PERF_OPS 50000
#define PERF_CLIENTS 16

struct perf {
	struct chaos_history_op *ops;
	char (*vals)[24];
	uint64_t *lp;
	const char **recent; /* per key, the last 16 values written */
	size_t keys;
};

static int perf_lp_cmp(const void *a, const void *b, void *arg)
{
	const uint64_t *lp = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return lp[x] < lp[y] ? -1 : lp[x] > lp[y];
}

/* Per client, one op at a time, with random durations and think times. */
static void perf_intervals(struct perf *p, uint64_t *rng)
{
	uint64_t t[PERF_CLIENTS];

	for (size_t c = 0; c < PERF_CLIENTS; c++)
		t[c] = rnd(rng, 1000);
	for (size_t i = 0; i < PERF_OPS; i++) {
		struct chaos_history_op *op = &p->ops[i];
		size_t c = i % PERF_CLIENTS;
		uint64_t r = rnd(rng, 10), dur = 200 + rnd(rng, 5000);

		snprintf(p->vals[i], sizeof p->vals[i], "%zu-%zu", c, i);
		*op = (struct chaos_history_op){
			.id = i, .client = c, .value = p->vals[i],
			.f = r < 5 ? CHAOS_HISTORY_READ
			     : r < 8 ? CHAOS_HISTORY_WRITE : CHAOS_HISTORY_CAS,
			.invoke_us = t[c], .complete_us = t[c] + dur};
		p->lp[i] = t[c] + rnd(rng, dur + 1);
		t[c] += dur + rnd(rng, 500);
	}
}

/* The register of op's key, at op's linearization point. */
static void perf_apply(struct perf *p, struct chaos_history_op *op,
		       const char **state, uint64_t *rng)
{
	uint64_t r = rnd(rng, 1000);
	bool took = true;

	if (op->f == CHAOS_HISTORY_READ) {
		op->result = r < 970   ? CHAOS_HISTORY_OK
			     : r < 985 ? CHAOS_HISTORY_FAIL
				       : CHAOS_HISTORY_UNKNOWN;
		op->value = op->result == CHAOS_HISTORY_OK ? *state : NULL;
		return;
	}
	op->result = r < 15 ? CHAOS_HISTORY_UNKNOWN
		     : r < 25 ? CHAOS_HISTORY_FAIL : CHAOS_HISTORY_OK;
	took = op->result == CHAOS_HISTORY_OK ||
	       (op->result == CHAOS_HISTORY_UNKNOWN && rnd(rng, 2));
	if (op->f == CHAOS_HISTORY_CAS) {
		op->expect = rnd(rng, 10) < 7 ? *state
			     : p->recent[(op->key[4] - '0') * 16 + rnd(rng, 16)];
		if (!bf_eq(op->expect, *state)) {
			took = false;
			op->result = op->result == CHAOS_HISTORY_UNKNOWN
					     ? op->result : CHAOS_HISTORY_FAIL;
			op->has_observed = op->result == CHAOS_HISTORY_FAIL;
			op->observed = *state;
		}
	}
	if (took) {
		*state = op->value;
		p->recent[(op->key[4] - '0') * 16 + rnd(rng, 16)] = op->value;
	}
}

/* Makes a read late in the history return a value overwritten 50 ms
 * before it started: the check must fail, and shrink it, to at most
 * ops_max ops (the shrinker has a time budget: only the 10-key history is
 * held to a small number, lest a slow machine fail the test). */
static void perf_stale_read(struct perf *p, struct chaos_history *h,
			    const struct chaos_check_options *o, size_t ops_max)
{
	struct chaos_history_op *r = NULL, *w = NULL;
	struct chaos_check_report rep;
	struct timespec t0, t1;

	for (size_t i = PERF_OPS / 2; r == NULL && i < PERF_OPS; i++)
		if (p->ops[i].f == CHAOS_HISTORY_READ &&
		    p->ops[i].result == CHAOS_HISTORY_OK)
			r = &p->ops[i];
	ck_assert_ptr_nonnull(r);
	for (size_t i = (size_t)(r - p->ops); w == NULL && i-- > 0;)
		if (p->ops[i].f == CHAOS_HISTORY_WRITE &&
		    p->ops[i].key == r->key &&
		    p->ops[i].result == CHAOS_HISTORY_OK &&
		    p->ops[i].complete_us + 50000 < r->invoke_us)
			w = &p->ops[i];
	ck_assert_ptr_nonnull(w);
	r->value = w->value;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(chaos_check_run(h, o, &rep), RS_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(rep.outcome, CHAOS_CHECK_OUTCOME_FAIL);
	ck_assert_uint_eq(rep.violation_count, 1);
	fprintf(stderr, "perf: stale read found and shrunk to %zu of %zu ops: "
			"%.3f s\n",
		rep.violations[0].op_count, rep.violations[0].key_op_count,
		(double)(t1.tv_sec - t0.tv_sec) +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	ck_assert_uint_lt(rep.violations[0].op_count,
			  rep.violations[0].key_op_count);
	ck_assert_uint_le(rep.violations[0].op_count, ops_max);
	chaos_check_report_free(&rep);
}

START_TEST(test_perf_50k)
{
	static const char *keys[] = {"P/k/0", "P/k/1", "P/k/2", "P/k/3",
				     "P/k/4", "P/k/5", "P/k/6", "P/k/7",
				     "P/k/8", "P/k/9"};
	uint64_t rng = testutil_seed() ^ 0x50000ull;
	struct perf p = {.keys = _i == 0 ? 10 : 1};
	struct chaos_history h = {0};
	struct chaos_check_options o;
	struct chaos_check_report r;
	const char *state[10] = {NULL};
	size_t *order = malloc(PERF_OPS * sizeof *order);
	struct timespec t0, t1;

	p.ops = calloc(PERF_OPS, sizeof *p.ops);
	p.vals = calloc(PERF_OPS, sizeof *p.vals);
	p.lp = calloc(PERF_OPS, sizeof *p.lp);
	p.recent = calloc(10 * 16, sizeof *p.recent);
	ck_assert(order && p.ops && p.vals && p.lp && p.recent);
	perf_intervals(&p, &rng);
	for (size_t i = 0; i < PERF_OPS; i++) {
		p.ops[i].key = keys[rnd(&rng, p.keys)];
		order[i] = i;
	}
	qsort_r(order, PERF_OPS, sizeof *order, perf_lp_cmp, p.lp);
	for (size_t i = 0; i < PERF_OPS; i++) {
		struct chaos_history_op *op = &p.ops[order[i]];
		perf_apply(&p, op, &state[op->key[4] - '0'], &rng);
	}
	h.ops = p.ops;
	h.op_count = PERF_OPS;
	chaos_check_options_init(&o);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(chaos_check_run(&h, &o, &r), RS_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr,
		"perf: %d ops, %zu keys, %zu unknown (%zu pruned, %zu bounded), "
		"%" PRIu64 " steps: %.3f s\n",
		PERF_OPS, r.keys, r.by_result[CHAOS_HISTORY_UNKNOWN],
		r.unknown_pruned, r.unknown_bounded, r.steps,
		(double)(t1.tv_sec - t0.tv_sec) +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	ck_assert_int_eq(r.outcome, CHAOS_CHECK_OUTCOME_PASS);
	ck_assert_uint_eq(r.keys, p.keys);
	ck_assert_uint_gt(r.by_result[CHAOS_HISTORY_UNKNOWN], 200);
	chaos_check_report_free(&r);
	perf_stale_read(&p, &h, &o, _i == 0 ? 5 : SIZE_MAX);
	free(order);
	free(p.ops);
	free(p.vals);
	free(p.lp);
	free(p.recent);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Whole histories: unique writes, the report                           */
/* ------------------------------------------------------------------ */

static struct chaos_history_final_key finals[8];

static void hist_init(struct chaos_history *hist, struct h *h)
{
	memset(hist, 0, sizeof *hist);
	hist->ops = h->ops;
	hist->op_count = h->n;
	hist->prefix = "P";
	hist->final_keys = finals;
}

static void h_unique(struct h *h, const char *key, const char *v,
		     enum chaos_history_result result)
{
	struct chaos_history_op *op =
		h_add(h, 5, CHAOS_HISTORY_UNIQUE, 0, 1, result);
	op->key = key;
	op->value = v;
}

static struct chaos_check_report run_report(const struct chaos_history *hist)
{
	struct chaos_check_options o;
	struct chaos_check_report r;

	chaos_check_options_init(&o);
	ck_assert_int_eq(chaos_check_run(hist, &o, &r), RS_OK);
	return r;
}

START_TEST(test_unique)
{
	struct chaos_history hist;
	struct chaos_check_report r;
	struct h h = {0};

	h_unique(&h, "P/u/0-1", "0-1", CHAOS_HISTORY_OK);      /* survives */
	h_unique(&h, "P/u/0-2", "0-2", CHAOS_HISTORY_OK);      /* lost */
	h_unique(&h, "P/u/0-3", "0-3", CHAOS_HISTORY_OK);      /* changed */
	h_unique(&h, "P/u/1-1", "1-1", CHAOS_HISTORY_UNKNOWN); /* either way */
	h_unique(&h, "P/u/1-2", "1-2", CHAOS_HISTORY_UNKNOWN);
	h_unique(&h, "P/u/1-3", "1-3", CHAOS_HISTORY_FAIL);    /* phantom */
	hist_init(&hist, &h);
	hist.has_final = true;
	finals[0] = (struct chaos_history_final_key){"P/u/0-1", "0-1"};
	finals[1] = (struct chaos_history_final_key){"P/u/0-3", "x"};
	finals[2] = (struct chaos_history_final_key){"P/u/1-1", "1-1"};
	finals[3] = (struct chaos_history_final_key){"P/u/1-3", "1-3"};
	finals[4] = (struct chaos_history_final_key){"P/u/9-9", "9-9"};
	hist.final_count = 5;
	r = run_report(&hist);
	ck_assert(r.unique_checked);
	ck_assert_uint_eq(r.unique_acknowledged, 3);
	ck_assert_uint_eq(r.violation_count, 4);
	ck_assert_int_eq(r.violations[0].type, CHAOS_CHECK_V_UNIQUE_MISSING);
	ck_assert_str_eq(r.violations[0].key, "P/u/0-2");
	ck_assert_int_eq(r.violations[1].type, CHAOS_CHECK_V_UNIQUE_CHANGED);
	ck_assert_str_eq(r.violations[1].found, "x");
	ck_assert_int_eq(r.violations[2].type, CHAOS_CHECK_V_PHANTOM);
	ck_assert_str_eq(r.violations[2].key, "P/u/1-3");
	ck_assert_int_eq(r.violations[3].type, CHAOS_CHECK_V_PHANTOM);
	ck_assert_str_eq(r.violations[3].key, "P/u/9-9");
	ck_assert_int_eq(r.outcome, CHAOS_CHECK_OUTCOME_FAIL);
	ck_assert_int_eq(chaos_check_exit_code(&r), CHAOS_EXIT_VIOLATION);
	chaos_check_report_free(&r);
	/* Without a final line nothing is checked, and nothing fails. */
	hist.has_final = false;
	hist.final_count = 0;
	r = run_report(&hist);
	ck_assert(!r.unique_checked);
	ck_assert_uint_eq(r.violation_count, 0);
	ck_assert_int_eq(r.outcome, CHAOS_CHECK_OUTCOME_PASS);
	chaos_check_report_free(&r);
}
END_TEST

static char *print_report(const struct chaos_history *hist,
			  const struct chaos_check_report *r, bool json)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(chaos_check_report_print(f, hist, r, json), RS_OK);
	fclose(f);
	return text;
}

START_TEST(test_report)
{
	struct chaos_history hist;
	struct chaos_check_report r;
	struct h h = {0};
	json_error_t je;
	json_t *j, *v;
	char *text;

	h_write(&h, 0, "a", 0, 10, CHAOS_HISTORY_OK);
	h_write(&h, 0, "b", 20, 30, CHAOS_HISTORY_OK);
	h_read(&h, 1, "a", 40, 50);
	h_write(&h, 1, "c", 60, 70, CHAOS_HISTORY_UNKNOWN);
	h_add(&h, 2, CHAOS_HISTORY_READ, 0, 5, CHAOS_HISTORY_OK)->key = "P/k/1";
	hist_init(&hist, &h);
	r = run_report(&hist);
	ck_assert_uint_eq(r.keys, 2);
	ck_assert_uint_eq(r.keys_linearizable, 1);
	ck_assert_uint_eq(r.violation_count, 1);
	ck_assert_uint_eq(r.violations[0].op_count, 3);
	ck_assert_uint_eq(r.violations[0].key_op_count, 4);
	text = print_report(&hist, &r, false);
	ck_assert_ptr_nonnull(strstr(text, "violation: key P/k/0 is not "
					   "linearizable"));
	ck_assert_ptr_nonnull(strstr(text, "unique writes: not checked (no "
					   "final line)\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nverdict: FAIL\n"));
	free(text);
	text = print_report(&hist, &r, true);
	j = json_loads(text, 0, &je);
	ck_assert_msg(j != NULL, "%s: %s", je.text, text);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "ops")), 5);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "unknown")), 1);
	v = json_object_get(json_object_get(j, "by_f"), "write");
	ck_assert_int_eq(json_integer_value(json_object_get(v, "total")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "keys")), 2);
	ck_assert(json_is_false(json_object_get(j, "unique_checked")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "verdict")), "FAIL");
	v = json_array_get(json_object_get(j, "violations"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(v, "type")),
			 "linearizability");
	ck_assert_int_eq(json_array_size(json_object_get(v, "ops")), 3);
	json_decref(j);
	free(text);
	chaos_check_report_free(&r);
}
END_TEST

START_TEST(test_report_budget)
{
	struct chaos_history hist;
	struct chaos_check_options o;
	struct chaos_check_report r;
	struct h h;
	char *text;

	build_chain(&h, 10);
	hist_init(&hist, &h);
	chaos_check_options_init(&o);
	o.limits.steps_max = 3;
	ck_assert_int_eq(chaos_check_run(&hist, &o, &r), RS_OK);
	ck_assert_uint_eq(r.budget_count, 1);
	ck_assert_int_eq(r.outcome, CHAOS_CHECK_OUTCOME_UNKNOWN);
	ck_assert_int_eq(chaos_check_exit_code(&r), CHAOS_EXIT_USAGE);
	text = print_report(&hist, &r, false);
	ck_assert_ptr_nonnull(strstr(text, "unknown: search budget exhausted "
					   "for key P/k/0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nverdict: UNKNOWN\n"));
	ck_assert_ptr_null(strstr(text, "PASS"));
	free(text);
	text = print_report(&hist, &r, true);
	ck_assert_ptr_nonnull(strstr(text, "\"inconclusive\":[{\"key\":\"P/k/0\","
					   "\"message\":\"unknown: search budget "
					   "exhausted for key P/k/0\"}]"));
	ck_assert_ptr_nonnull(strstr(text, "\"verdict\":\"UNKNOWN\""));
	free(text);
	chaos_check_report_free(&r);
	/* A violation elsewhere is definite: FAIL, whatever the budget. */
	h_read(&h, 0, "never", 0, 1);
	h.ops[h.n - 1].key = "P/k/1";
	hist.op_count = h.n;
	ck_assert_int_eq(chaos_check_run(&hist, &o, &r), RS_OK);
	ck_assert_uint_eq(r.budget_count, 1);
	ck_assert_uint_eq(r.violation_count, 1);
	ck_assert_int_eq(r.outcome, CHAOS_CHECK_OUTCOME_FAIL);
	chaos_check_report_free(&r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Parsing                                                              */
/* ------------------------------------------------------------------ */

struct hb {
	char *data;
	size_t len;
	size_t lines;
};

static void hb_add(struct hb *b, const char *line)
{
	size_t n = strlen(line);

	b->data = realloc(b->data, b->len + n + 2);
	ck_assert_ptr_nonnull(b->data);
	memcpy(b->data + b->len, line, n);
	b->data[b->len + n] = '\n';
	b->len += n + 1;
	b->data[b->len] = '\0';
	b->lines++;
}

static void hb_end(struct hb *b)
{
	char line[128];

	snprintf(line, sizeof line,
		 "{\"kind\":\"end\",\"lines\":%zu,\"crc32c\":\"%08x\"}",
		 b->lines, crc32c(b->data, b->len));
	hb_add(b, line);
}

/* The lines of a good history; "END" marks where end lines go. */
static const char *const good_lines[] = {
	"{\"kind\":\"meta\",\"format\":1,\"seed\":7,\"clients\":2,\"keys\":1,"
	"\"prefix\":\"P\",\"start_unix_us\":1700000000000000,\"endpoints\":"
	"\"a:1,b:2\"}",
	"{\"kind\":\"op\",\"id\":1,\"client\":0,\"f\":\"write\",\"key\":"
	"\"P/k/0\",\"value\":\"0-1\",\"invoke_us\":0,\"complete_us\":10,"
	"\"result\":\"ok\",\"version\":5}",
	"{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\",\"key\":\"P/k/0\","
	"\"value\":\"0-1\",\"invoke_us\":20,\"complete_us\":30,\"result\":\"ok\","
	"\"version\":5}",
	"{\"kind\":\"op\",\"id\":3,\"client\":1,\"f\":\"unique\",\"key\":"
	"\"P/u/1-3\",\"value\":\"1-3\",\"invoke_us\":31,\"complete_us\":40,"
	"\"result\":\"ok\",\"version\":6}",
	"{\"kind\":\"op\",\"id\":4,\"client\":0,\"f\":\"cas\",\"key\":\"P/k/0\","
	"\"expect\":\"0-1\",\"value\":\"0-4\",\"invoke_us\":35,\"complete_us\":"
	"50,\"result\":\"ok\",\"version\":7}",
	"{\"kind\":\"op\",\"id\":5,\"client\":1,\"f\":\"cas\",\"key\":\"P/k/0\","
	"\"expect\":null,\"value\":\"1-5\",\"observed\":\"0-4\",\"invoke_us\":"
	"60,\"complete_us\":70,\"result\":\"fail\",\"error\":\"compare failed\","
	"\"version\":0}",
	"{\"kind\":\"op\",\"id\":6,\"client\":0,\"f\":\"write\",\"key\":"
	"\"P/k/0\",\"value\":\"0-6\",\"invoke_us\":80,\"complete_us\":90,"
	"\"result\":\"unknown\",\"error\":\"commit result unknown\","
	"\"version\":0}",
	"{\"kind\":\"op\",\"id\":7,\"client\":1,\"f\":\"read\",\"key\":\"P/k/0\","
	"\"value\":null,\"invoke_us\":95,\"complete_us\":99,\"result\":\"fail\","
	"\"error\":\"timed out\",\"version\":0}",
	"END",
	"{\"kind\":\"final\",\"prefix\":\"P/u/\",\"read_unix_us\":1,\"keys\":"
	"{\"P/u/1-3\":\"1-3\"}}",
	"END",
};
#define GOOD_LINES (sizeof good_lines / sizeof good_lines[0])

/* good_lines with line `at` (0-based, before end lines are counted in)
 * replaced by `with` (NULL: no change; "" removes it). */
static struct hb build(size_t at, const char *with)
{
	struct hb b = {0};

	for (size_t i = 0; i < GOOD_LINES; i++) {
		const char *line = i == at && with != NULL ? with : good_lines[i];
		if (strcmp(line, "END") == 0)
			hb_end(&b);
		else if (line[0] != '\0')
			hb_add(&b, line);
	}
	return b;
}

START_TEST(test_parse_good)
{
	struct hb b = build(SIZE_MAX, NULL);
	struct chaos_history h;
	struct chaos_check_report r;
	char errmsg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(chaos_history_parse(b.data, b.len, &h, errmsg), RS_OK);
	ck_assert_uint_eq(h.op_count, 7);
	ck_assert_uint_eq(h.line_count, 11);
	ck_assert_str_eq(h.prefix, "P");
	ck_assert_uint_eq(h.seed, 7);
	ck_assert(h.has_final);
	ck_assert_uint_eq(h.final_count, 1);
	ck_assert_str_eq(h.final_keys[0].value, "1-3");
	ck_assert_ptr_null(h.ops[4].expect);
	ck_assert(h.ops[4].has_observed);
	ck_assert_str_eq(h.ops[4].observed, "0-4");
	ck_assert_int_eq(h.ops[5].result, CHAOS_HISTORY_UNKNOWN);
	/* Equal strings are one copy. */
	ck_assert_ptr_eq(h.ops[0].key, h.ops[1].key);
	r = run_report(&h);
	ck_assert_int_eq(r.outcome, CHAOS_CHECK_OUTCOME_PASS);
	ck_assert_uint_eq(r.keys, 1);
	ck_assert_uint_eq(r.unique_acknowledged, 1);
	chaos_check_report_free(&r);
	chaos_history_free(&h);
	free(b.data);
}
END_TEST

START_TEST(test_parse_file)
{
	char *dir = testutil_tmpdir("chaos");
	char *path = testutil_path(dir, "history.ndjson");
	struct hb b = build(SIZE_MAX, NULL);
	struct chaos_history h;
	char errmsg[RS_ERRMSG_SIZE];

	testutil_write_file(path, b.data, b.len);
	ck_assert_int_eq(chaos_history_parse_file(path, &h, errmsg), RS_OK);
	ck_assert_uint_eq(h.op_count, 7);
	chaos_history_free(&h);
	/* One byte changed in an op line: valid JSON, wrong crc. */
	strstr(b.data, "\"0-6\"")[3] = '7';
	testutil_write_file(path, b.data, b.len);
	ck_assert_int_eq(chaos_history_parse_file(path, &h, errmsg),
			 RS_ECORRUPT);
	ck_assert_msg(strncmp(errmsg, "history truncated or corrupt at line 9: ",
			      40) == 0, "%s", errmsg);
	ck_assert_ptr_nonnull(strstr(errmsg, "crc32c"));
	/* Cut short. */
	testutil_write_file(path, b.data, b.len / 2);
	ck_assert_int_eq(chaos_history_parse_file(path, &h, errmsg),
			 RS_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(errmsg, "history truncated or corrupt"));
	ck_assert_int_eq(chaos_history_parse_file("/nonexistent/h", &h, errmsg),
			 RS_EIO);
	free(b.data);
	testutil_rmtree(dir);
	free(path);
	free(dir);
}
END_TEST

/* Every prefix fails, but the one that ends with the load's end line. */
START_TEST(test_parse_truncated)
{
	struct hb b = build(SIZE_MAX, NULL);
	struct hb load = {0};
	char errmsg[RS_ERRMSG_SIZE];

	for (size_t i = 0; i < GOOD_LINES && strcmp(good_lines[i], "END"); i++)
		hb_add(&load, good_lines[i]);
	hb_end(&load);
	ck_assert_int_eq(memcmp(load.data, b.data, load.len), 0);
	for (size_t len = 0; len < b.len; len++) {
		struct chaos_history h;
		int rv = chaos_history_parse(b.data, len, &h, errmsg);

		if (len == load.len) {
			ck_assert_int_eq(rv, RS_OK);
			ck_assert(!h.has_final);
			chaos_history_free(&h);
			continue;
		}
		ck_assert_msg(rv == RS_ECORRUPT || rv == RS_EINVAL,
			      "prefix %zu: %d", len, rv);
		ck_assert_ptr_null(h.ops);
	}
	free(load.data);
	free(b.data);
}
END_TEST

START_TEST(test_parse_bitflip)
{
	struct hb b = build(SIZE_MAX, NULL);
	char errmsg[RS_ERRMSG_SIZE];

	for (size_t bit = 0; bit < b.len * 8; bit++) {
		struct chaos_history h;
		int rv;

		b.data[bit / 8] ^= (char)(1 << (bit % 8));
		rv = chaos_history_parse(b.data, b.len, &h, errmsg);
		ck_assert_msg(rv == RS_ECORRUPT || rv == RS_EINVAL,
			      "bit %zu: %d", bit, rv);
		b.data[bit / 8] ^= (char)(1 << (bit % 8));
	}
	free(b.data);
}
END_TEST

static const struct {
	size_t at;        /* index into good_lines */
	const char *with; /* the line put there */
	size_t line;      /* the line number reported */
	const char *msg;  /* in the message */
} bad[] = {
	{2, "{\"kind\":\"op\",\"id\":2", 3, "malformed JSON"},
	{2, "", 0, NULL}, /* (fine: a line removed) */
	{2, "[1,2]", 3, "not a JSON object"},
	{2, "{\"kind\":\"nope\"}", 3, "unknown value \"nope\""},
	{2, "{\"id\":2}", 3, "missing member \"kind\""},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\",\"value\":"
	    "null,\"invoke_us\":20,\"complete_us\":30,\"result\":\"ok\"}",
	 3, "missing member \"key\""},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":\"1\",\"f\":\"read\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 3, "member \"client\": expected an unsigned integer"},
	{2, "{\"kind\":\"op\",\"id\":-2,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 3, "member \"id\": expected an unsigned integer"},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"delete\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 3, "member \"f\" has unknown value \"delete\""},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"maybe\"}",
	 3, "member \"result\" has unknown value \"maybe\""},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"k\",\"invoke_us\":20,\"complete_us\":30,\"result\":\"ok\"}",
	 3, "missing member \"value\""},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"write\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 3, "member \"value\": expected a string"},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"write\",\"key\":"
	    "\"k\",\"value\":\"a\\u0000b\",\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 3, "NUL"},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"cas\",\"key\":"
	    "\"k\",\"value\":\"x\",\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 3, "missing member \"expect\""},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"cas\",\"key\":"
	    "\"k\",\"expect\":1,\"value\":\"x\",\"invoke_us\":20,"
	    "\"complete_us\":30,\"result\":\"ok\"}",
	 3, "member \"expect\": expected a string or null"},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"cas\",\"key\":"
	    "\"k\",\"expect\":null,\"value\":\"x\",\"observed\":\"y\","
	    "\"invoke_us\":20,\"complete_us\":30,\"result\":\"ok\"}",
	 3, "\"observed\" on a cas whose result is not \"fail\""},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":19,"
	    "\"result\":\"ok\"}",
	 3, "complete_us 19 is before invoke_us 20"},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 3, "member \"key\" is empty"},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\",\"version\":\"x\"}",
	 3, "member \"version\": expected an unsigned integer"},
	{2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"k\",\"key\":\"k\",\"value\":null,\"invoke_us\":20,"
	    "\"complete_us\":30,\"result\":\"ok\"}",
	 3, "malformed JSON: line 1 column 57: duplicate object key"},
	{2, "{\"kind\":\"op\",\"id\":6,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 7, "duplicate op id 6 (first on line 3)"},
	{2, "{\"kind\":\"meta\",\"format\":1,\"prefix\":\"P\"}", 3,
	 "a meta line after the first line"},
	{0, "{\"kind\":\"meta\",\"format\":2,\"prefix\":\"P\"}", 1,
	 "history format 2 is not the one this checker reads (1)"},
	{0, "{\"kind\":\"meta\",\"format\":1}", 1, "missing member \"prefix\""},
	{0, "", 1, "the first line is not the meta line"},
	{2, "{\"kind\":\"end\",\"lines\":2,\"crc32c\":\"ABCDEF01\"}", 3,
	 "member \"crc32c\" is not 8 lowercase hex digits"},
	{9, "{\"kind\":\"final\",\"prefix\":\"P/u/\",\"keys\":{\"P/u/1\":1}}",
	 10, "final key \"P/u/1\": value is not a string"},
	{9, "{\"kind\":\"final\",\"prefix\":\"P/u/\",\"keys\":[]}", 10,
	 "member \"keys\": expected an object"},
	{9, "{\"kind\":\"op\",\"id\":9,\"client\":1,\"f\":\"read\",\"key\":"
	    "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	    "\"result\":\"ok\"}",
	 0, NULL}, /* an op where final was: fine, no final */
	{10, "{\"kind\":\"op\",\"id\":9,\"client\":1,\"f\":\"read\",\"key\":"
	     "\"k\",\"value\":null,\"invoke_us\":20,\"complete_us\":30,"
	     "\"result\":\"ok\"}",
	 11, "an op line after the final line"},
};
#define BAD_CASES ((int)(sizeof bad / sizeof bad[0]))

START_TEST(test_parse_bad)
{
	struct hb b = build(bad[_i].at, bad[_i].with);
	struct chaos_history h;
	char errmsg[RS_ERRMSG_SIZE], want[64];
	int rv = chaos_history_parse(b.data, b.len, &h, errmsg);

	if (bad[_i].msg == NULL) {
		ck_assert_msg(rv == RS_OK, "case %d: %s", _i, errmsg);
		chaos_history_free(&h);
		free(b.data);
		return;
	}
	ck_assert_msg(rv == RS_EINVAL, "case %d: %d %s", _i, rv, errmsg);
	snprintf(want, sizeof want, "line %zu: ", bad[_i].line);
	ck_assert_msg(strncmp(errmsg, want, strlen(want)) == 0 &&
			      strstr(errmsg, bad[_i].msg) != NULL,
		      "case %d: got \"%s\", want \"%s...%s\"", _i, errmsg, want,
		      bad[_i].msg);
	free(b.data);
}
END_TEST

START_TEST(test_parse_sections)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct chaos_history h;
	struct hb b = {0};

	/* A final line with no end line before it: the load is unsealed. */
	hb_add(&b, good_lines[0]);
	hb_add(&b, good_lines[1]);
	hb_add(&b, good_lines[9]);
	hb_end(&b);
	ck_assert_int_eq(chaos_history_parse(b.data, b.len, &h, errmsg),
			 RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "history truncated or corrupt at line 3: the "
				 "final line does not follow an end line (the "
				 "load section is not sealed)");
	free(b.data);
	/* An end line that miscounts. */
	b = build(SIZE_MAX, NULL);
	b.len = 0;
	b.lines = 0;
	hb_add(&b, good_lines[0]);
	hb_add(&b, "{\"kind\":\"end\",\"lines\":2,\"crc32c\":\"00000000\"}");
	ck_assert_int_eq(chaos_history_parse(b.data, b.len, &h, errmsg),
			 RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "history truncated or corrupt at line 2: the "
				 "end line counts 2 lines before it, there are 1");
	/* Empty, and no end line at all. */
	ck_assert_int_eq(chaos_history_parse("", 0, &h, errmsg), RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "history truncated or corrupt at line 1: the "
				 "history is empty");
	b.len = strlen(good_lines[0]) + 1;
	ck_assert_int_eq(chaos_history_parse(b.data, b.len, &h, errmsg),
			 RS_ECORRUPT);
	ck_assert_str_eq(errmsg, "history truncated or corrupt at line 2: no "
				 "end line after line 1");
	free(b.data);
}
END_TEST

/* ------------------------------------------------------------------ */
/* rschaos check                                                        */
/* ------------------------------------------------------------------ */

/* Runs chaos_check_main with stdout in a file; returns its exit code and
 * what it printed (malloc'ed) in *out. */
static int run_main(const char *dir, char **out, int argc, ...)
{
	char *argv[8], *path = testutil_path(dir, "stdout");
	va_list ap;
	size_t len;
	int saved, fd, rv;

	ck_assert_int_lt(argc, 8);
	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	fflush(stdout);
	saved = dup(1);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert(saved >= 0 && fd >= 0 && dup2(fd, 1) == 1);
	rv = chaos_check_main(argc, argv);
	fflush(stdout);
	ck_assert_int_eq(dup2(saved, 1), 1);
	close(fd);
	close(saved);
	*out = (char *)testutil_read_file(path, &len);
	*out = realloc(*out, len + 1);
	(*out)[len] = '\0';
	free(path);
	return rv;
}

START_TEST(test_main)
{
	char *dir = testutil_tmpdir("chaos-main");
	char *good = testutil_path(dir, "good.ndjson");
	char *failing = testutil_path(dir, "bad.ndjson");
	struct hb b = build(SIZE_MAX, NULL);
	char *out;

	testutil_write_file(good, b.data, b.len);
	free(b.data);
	b = build(2, "{\"kind\":\"op\",\"id\":2,\"client\":1,\"f\":\"read\","
		     "\"key\":\"P/k/0\",\"value\":\"nobody\",\"invoke_us\":20,"
		     "\"complete_us\":30,\"result\":\"ok\"}");
	testutil_write_file(failing, b.data, b.len);
	ck_assert_int_eq(run_main(dir, &out, 2, "check", good), CHAOS_EXIT_OK);
	ck_assert_ptr_nonnull(strstr(out, "\nverdict: PASS\n"));
	free(out);
	ck_assert_int_eq(run_main(dir, &out, 3, "check", "--json", failing),
			 CHAOS_EXIT_VIOLATION);
	ck_assert_ptr_nonnull(strstr(out, "\"verdict\":\"FAIL\""));
	free(out);
	ck_assert_int_eq(run_main(dir, &out, 4, "check", "--max-steps", "1", good),
			 CHAOS_EXIT_USAGE);
	ck_assert_ptr_nonnull(strstr(out, "\nverdict: UNKNOWN\n"));
	free(out);
	testutil_write_file(failing, b.data, b.len - 1); /* cut short */
	ck_assert_int_eq(run_main(dir, &out, 3, "check", "--json", failing),
			 CHAOS_EXIT_USAGE);
	ck_assert_str_eq(out, ""); /* the reason went to stderr */
	free(out);
	ck_assert_int_eq(run_main(dir, &out, 2, "check", "--help"), CHAOS_EXIT_OK);
	ck_assert_ptr_nonnull(strstr(out, "Usage: rschaos check"));
	free(out);
	ck_assert_int_eq(run_main(dir, &out, 3, "check", "--nope", good),
			 CHAOS_EXIT_USAGE);
	free(out);
	ck_assert_int_eq(run_main(dir, &out, 1, "check"), CHAOS_EXIT_USAGE);
	free(out);
	free(b.data);
	testutil_rmtree(dir);
	free(good);
	free(failing);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("chaos_check");
	TCase *tc;

	tc = testutil_tcase(s, "linearizable", NULL, NULL, 30);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_sequential);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_unknown_took_effect);
	tcase_add_test(tc, test_unknown_did_not);
	tc = testutil_tcase(s, "violations", NULL, NULL, 30);
	tcase_add_test(tc, test_stale_read);
	tcase_add_test(tc, test_lost_write);
	tcase_add_test(tc, test_cas_twice);
	tcase_add_test(tc, test_read_never_written);
	tcase_add_test(tc, test_budget);
	tcase_add_test(tc, test_shrink);
	tc = testutil_tcase(s, "brute_force", NULL, NULL, 300);
	tcase_add_test(tc, test_brute_force);
	tc = testutil_tcase(s, "perf", NULL, NULL, 300);
	tcase_add_loop_test(tc, test_perf_50k, 0, 2);
	tc = testutil_tcase(s, "history", NULL, NULL, 60);
	tcase_add_test(tc, test_unique);
	tcase_add_test(tc, test_report);
	tcase_add_test(tc, test_report_budget);
	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_file);
	tcase_add_test(tc, test_parse_truncated);
	tcase_add_test(tc, test_parse_bitflip);
	tcase_add_loop_test(tc, test_parse_bad, 0, BAD_CASES);
	tcase_add_test(tc, test_parse_sections);
	tcase_add_test(tc, test_main);
	return testutil_run_suite(s);
}
