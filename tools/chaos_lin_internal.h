/*
 * chaos_lin_internal: what the two halves of the linearizability checker
 * share, and nothing outside them may use.
 *
 * chaos_lin.c is the check of one key (the model, its reductions and the
 * search); chaos_lin_shrink.c is the shrinker, which runs that check on
 * sub-histories and needs the same reading of an op: which value it
 * writes, which it observes, and whether the model looks at it at all.
 * Both go through the value interning and the model op defined here, so
 * that the shrinker never judges an op differently from the check.
 */
#ifndef RS_CHAOS_LIN_INTERNAL_H
#define RS_CHAOS_LIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/chaos_history.h"

/* Values of one key, interned to 1..count (0 is absent).  The strings are
 * borrowed: they must outlive the map. */
struct cl_vmap {
	const char **strs; /* slot -> string, NULL for a free slot */
	int32_t *ids;
	size_t cap;        /* a power of two, at least twice what is put in */
	int32_t count;
};

/* An empty map with room for strings_max distinct strings.  RS_OK or
 * RS_ENOMEM (then nothing to free). */
int cl_vmap_init(struct cl_vmap *m, size_t strings_max);

void cl_vmap_free(struct cl_vmap *m);

/* The id of s (NULL: 0), interning it if new.  Never fails: the table was
 * sized for it. */
int32_t cl_vmap_id(struct cl_vmap *m, const char *s);

enum cl_kind { CL_READ, CL_WRITE, CL_CAS };

/* An op as the register model sees it. */
struct cl_mop {
	uint64_t invoke_us;
	uint64_t return_us; /* meaningless when optional */
	size_t src;         /* index in the caller's ops */
	int32_t expect;     /* cas */
	int32_t value;      /* read: required; write, cas: new */
	uint8_t kind;
	bool optional;      /* may be left out; has no return event */
};

/* The model op of op (ops[i] of the caller; its values interned in vm), or
 * false if it has none: the model ignores it (see chaos_lin_check_key). */
bool cl_model_op(const struct chaos_history_op *op, size_t i,
		 struct cl_vmap *vm, struct cl_mop *m);

#endif /* RS_CHAOS_LIN_INTERNAL_H */
