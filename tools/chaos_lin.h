/*
 * chaos_lin: the linearizability check of one register key, for
 * `rschaos check` (chaos_check.h).
 *
 * Is a key's history linearizable?  Each key is checked on its own
 * (P-compositionality), as a register that starts absent, with reads,
 * writes and compare-and-sets.  The search is Wing & Gong's with Lowe's
 * memoisation; the reductions applied before it are proved sound in
 * chaos_lin.c.  A key is called linearizable only when a linearization was
 * found, and not linearizable only when the search ran to the end without
 * finding one; when the step or memory budget runs out the answer is
 * CHAOS_LIN_BUDGET_EXHAUSTED, never success.  A history found not
 * linearizable can be shrunk to a smaller one that still is not.
 *
 * Nothing here keeps global state or does I/O; all of it is
 * single-threaded and allocates with malloc.
 */
#ifndef RS_CHAOS_LIN_H
#define RS_CHAOS_LIN_H

#include <stddef.h>
#include <stdint.h>

#include "tools/chaos_history.h"

enum chaos_lin_verdict {
	CHAOS_LIN_LINEARIZABLE,
	CHAOS_LIN_NOT_LINEARIZABLE,
	CHAOS_LIN_BUDGET_EXHAUSTED,
};

#define CHAOS_LIN_STEPS_MAX_DEFAULT 200000000ull
#define CHAOS_LIN_MEMORY_BYTES_MAX_DEFAULT ((size_t)1 << 30)

/* The budget of one key's search.  A step is one visit of an event of the
 * search; memory counts the search's own tables and cache. */
struct chaos_lin_limits {
	uint64_t steps_max;
	size_t memory_bytes_max;
};

/* What one key's search did (for reports and tests). */
struct chaos_lin_stats {
	size_t ops_searched;      /* ops left for the search */
	size_t unknown_pruned;    /* unknown writes/cas removed (never seen) */
	size_t unknown_bounded;   /* unknown ops given a return (seen) */
	uint64_t steps;
	size_t memory_bytes;
};

/* Sets the defaults above. */
void chaos_lin_limits_init(struct chaos_lin_limits *l);

/* Checks ops[0..n) as the history of one register that starts absent (the
 * key fields are not looked at; unique ops are ignored).  Rules: ok ops
 * take effect once within [invoke_us, complete_us]; unknown writes and cas
 * at any time after invoke_us, or never; failed writes and cas never, but
 * a failed cas with has_observed is a read of `observed` over its interval;
 * reads that are not ok are ignored.  Equal times count as overlapping.
 * Blocks for as long as the search runs (bounded by *lim).  Returns RS_OK
 * with *verdict set; RS_ENOMEM; or RS_ETOOLARGE for a billion ops or more
 * (*verdict undefined on error).  stats may be NULL. */
int chaos_lin_check_key(const struct chaos_history_op *ops, size_t n,
			const struct chaos_lin_limits *lim,
			enum chaos_lin_verdict *verdict,
			struct chaos_lin_stats *stats);

/* Shrinks a history of one key that chaos_lin_check_key finds not
 * linearizable to a smaller one that still is not (greedy delta
 * debugging), spending at most about time_ms_max (plus one check).  An op
 * that observes a value keeps the op that wrote it, when exactly one other
 * op did, so that a stale read shrinks to the writes and the read, not to
 * "a read of a value never written".  keep must have room for n indices;
 * on RS_OK keep[0..*keep_count) are indices into ops, in invoke order
 * (chaos_lin_invoke_cmp), of a sub-history that is not linearizable.  If
 * ops[0..n) is not found to fail to begin with, all n are kept.  Returns
 * RS_OK or an error of chaos_lin_check_key (then *keep_count is still set,
 * the kept ops may not fail). */
int chaos_lin_shrink(const struct chaos_history_op *ops, size_t n,
		     const struct chaos_lin_limits *lim, uint64_t time_ms_max,
		     size_t *keep, size_t *keep_count);

/* The order of chaos_lin_shrink's result: by invoke time, then completion
 * time, then id.  Returns <0, 0 or >0, as strcmp. */
int chaos_lin_invoke_cmp(const struct chaos_history_op *x,
			 const struct chaos_history_op *y);

/* CLOCK_MONOTONIC in microseconds, and now + ms saturating (a huge budget
 * means no deadline): the time budgets of the search and the shrinker. */
uint64_t chaos_lin_now_us(void);
uint64_t chaos_lin_deadline_us(uint64_t ms);

#endif /* RS_CHAOS_LIN_H */
