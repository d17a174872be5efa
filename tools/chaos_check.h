/*
 * chaos_check: the history checker behind `rschaos check` (chaos.h).
 *
 * It takes a parsed chaos history (chaos_history.h) and answers two
 * questions:
 *
 *   1. Is every register key linearizable?  Each key's ops go to
 *      chaos_lin_check_key (chaos_lin.h), and a key found not
 *      linearizable is shrunk to the smallest failing sub-history found.
 *      A key whose search ran out of budget makes the outcome UNKNOWN,
 *      never a pass.
 *   2. Did every acknowledged unique write survive the final restart, and
 *      is every key read back after it one that some unique op wrote?
 *
 * It reports the answers as text or as one JSON object, and
 * chaos_check_main is the `rschaos check` command.
 *
 * Nothing here keeps global state or does I/O except the functions that
 * say so; all of it is single-threaded and allocates with malloc.
 */
#ifndef RS_CHAOS_CHECK_H
#define RS_CHAOS_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/chaos_history.h"
#include "tools/chaos_lin.h"

enum chaos_check_violation_type {
	CHAOS_CHECK_V_LINEARIZABILITY, /* key not linearizable */
	CHAOS_CHECK_V_UNIQUE_MISSING,  /* acknowledged unique write absent */
	CHAOS_CHECK_V_UNIQUE_CHANGED,  /* ... present with another value */
	CHAOS_CHECK_V_PHANTOM,         /* final value no unique op wrote */
};

/* One violation.  Strings are borrowed from the history. */
struct chaos_check_violation {
	enum chaos_check_violation_type type;
	const char *key;
	const char *value; /* unique: the acknowledged value; phantom: read */
	const char *found; /* unique changed: the value read back */
	size_t *ops;       /* linearizability: the shrunk sub-history, as */
	size_t op_count;   /* indices into history->ops, in invoke order */
	size_t key_op_count; /* linearizability: ops of the key in all */
};

enum chaos_check_outcome {
	CHAOS_CHECK_OUTCOME_PASS,    /* every check ran to the end, passed */
	CHAOS_CHECK_OUTCOME_FAIL,    /* at least one violation */
	CHAOS_CHECK_OUTCOME_UNKNOWN, /* no violation; a key's budget ran out */
};

struct chaos_check_options {
	struct chaos_lin_limits limits; /* per key */
	uint64_t shrink_ms_max;         /* for all shrinking together */
};

#define CHAOS_CHECK_SHRINK_MS_DEFAULT 5000u

/* Sets the defaults. */
void chaos_check_options_init(struct chaos_check_options *o);

struct chaos_check_report {
	size_t ops;
	size_t by_result[CHAOS_HISTORY_RESULT_COUNT];
	size_t by_f[CHAOS_HISTORY_F_COUNT][CHAOS_HISTORY_RESULT_COUNT];
	size_t keys;              /* register keys checked */
	size_t keys_linearizable;
	uint64_t steps;           /* summed over keys */
	size_t unknown_pruned;    /* summed over keys */
	size_t unknown_bounded;
	bool unique_checked;      /* a final line was there */
	size_t unique_acknowledged;
	size_t final_keys;
	struct chaos_check_violation *violations;
	size_t violation_count;
	const char **budget_keys; /* keys whose search ran out of budget */
	size_t budget_count;
	uint64_t parse_us;        /* set by the caller, if it wants it shown */
	uint64_t check_us;
	enum chaos_check_outcome outcome;
};

/* Runs every check on h (blocking, CPU only).  Returns RS_OK with *r
 * filled (free it with chaos_check_report_free), or an error of
 * chaos_lin_check_key, leaving *r empty.  h must outlive *r. */
int chaos_check_run(const struct chaos_history *h,
		    const struct chaos_check_options *o,
		    struct chaos_check_report *r);

void chaos_check_report_free(struct chaos_check_report *r);

/* Writes the report as text (ending with "verdict: PASS|FAIL|UNKNOWN") or
 * as one JSON object.  Returns RS_OK, RS_ENOMEM or RS_EIO. */
int chaos_check_report_print(FILE *out, const struct chaos_history *h,
			     const struct chaos_check_report *r, bool json);

/* The exit code (chaos.h) that goes with a report's outcome. */
int chaos_check_exit_code(const struct chaos_check_report *r);

#endif /* RS_CHAOS_CHECK_H */
