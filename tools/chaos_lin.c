/*
 * chaos_lin: the check of one key, chaos_lin_check_key; see chaos_lin.h
 * for what it guarantees.  The shrinker is in chaos_lin_shrink.c, and
 * shares the value interning and the model op through
 * chaos_lin_internal.h.
 *
 * The pieces, in file order:
 *   - the model: each op of a key becomes a "model op" (read, write or
 *     cas over values interned to small ints, 0 = absent), or nothing;
 *   - two reductions of unknown ops (prune the never observed, bound the
 *     observed ones), each proved sound where it is applied;
 *   - the search: Wing & Gong's algorithm over a doubly linked list of call
 *     and return events, with Lowe's cache of (set of linearized ops,
 *     register state), an explicit stack (no recursion), reads taken as
 *     forced moves, and moves refused that would strand an op still
 *     waiting to observe the current value (both proved where they are).
 *
 * Every shortcut is an equivalence: it never turns a history that has a
 * linearization into one that has none, nor the reverse.  The test
 * (tests/unit/test_chaos_check.c) holds the search to a brute force over
 * every order and every subset of unknown ops.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "tools/chaos_history.h"
#include "tools/chaos_lin.h"
#include "tools/chaos_lin_internal.h"

void chaos_lin_limits_init(struct chaos_lin_limits *l)
{
	l->steps_max = CHAOS_LIN_STEPS_MAX_DEFAULT;
	l->memory_bytes_max = CHAOS_LIN_MEMORY_BYTES_MAX_DEFAULT;
}

uint64_t chaos_lin_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t chaos_lin_deadline_us(uint64_t ms)
{
	uint64_t now = chaos_lin_now_us();

	if (ms > (UINT64_MAX - now) / 1000)
		return UINT64_MAX;
	return now + ms * 1000;
}

static uint64_t cl_mix64(uint64_t x)
{
	/* splitmix64's finalizer: every input bit reaches every output bit. */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* ------------------------------------------------------------------ */
/* Values of one key, interned to 1..count (0 is absent)               */
/* ------------------------------------------------------------------ */

int cl_vmap_init(struct cl_vmap *m, size_t strings_max)
{
	m->cap = 16;
	while (m->cap < 2 * strings_max + 2)
		m->cap *= 2;
	m->strs = calloc(m->cap, sizeof *m->strs);
	m->ids = calloc(m->cap, sizeof *m->ids);
	m->count = 0;
	if (m->strs == NULL || m->ids == NULL) {
		free(m->strs);
		free(m->ids);
		return RS_ENOMEM;
	}
	return RS_OK;
}

void cl_vmap_free(struct cl_vmap *m)
{
	free(m->strs);
	free(m->ids);
}

/* The id of s (NULL: 0).  Never fails: the table was sized for it. */
int32_t cl_vmap_id(struct cl_vmap *m, const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	i = (size_t)bytes_hash(s, strlen(s)) & (m->cap - 1);
	while (m->strs[i] != NULL) {
		if (strcmp(m->strs[i], s) == 0)
			return m->ids[i];
		i = (i + 1) & (m->cap - 1);
	}
	assert((size_t)m->count + 1 < m->cap / 2 + 1);
	m->strs[i] = s;
	m->ids[i] = ++m->count;
	return m->count;
}

/* ------------------------------------------------------------------ */
/* The model                                                           */
/* ------------------------------------------------------------------ */

/* The model op of ops[i], or false if it has none (see chaos_lin_check_key). */
bool cl_model_op(const struct chaos_history_op *op, size_t i,
		 struct cl_vmap *vm, struct cl_mop *m)
{
	memset(m, 0, sizeof *m);
	m->invoke_us = op->invoke_us;
	m->return_us = op->complete_us;
	m->src = i;
	m->optional = op->result == CHAOS_HISTORY_UNKNOWN;
	switch (op->f) {
	case CHAOS_HISTORY_READ:
		m->kind = CL_READ;
		m->value = cl_vmap_id(vm, op->value);
		return op->result == CHAOS_HISTORY_OK;
	case CHAOS_HISTORY_WRITE:
		m->kind = CL_WRITE;
		m->value = cl_vmap_id(vm, op->value);
		return op->result != CHAOS_HISTORY_FAIL;
	case CHAOS_HISTORY_CAS:
		if (op->result == CHAOS_HISTORY_FAIL) {
			/* It saw `observed`: a read over its interval. */
			m->kind = CL_READ;
			m->value = cl_vmap_id(vm, op->observed);
			return op->has_observed;
		}
		m->kind = CL_CAS;
		m->expect = cl_vmap_id(vm, op->expect);
		m->value = cl_vmap_id(vm, op->value);
		return true;
	default:
		return false;
	}
}

/* The register: whether m may take effect in `state`, and what follows. */
static bool cl_apply(const struct cl_mop *m, int32_t state, int32_t *next)
{
	switch (m->kind) {
	case CL_READ:
		*next = state;
		return state == m->value;
	case CL_WRITE:
		*next = m->value;
		return true;
	default:
		assert(m->kind == CL_CAS);
		*next = m->value;
		return state == m->expect;
	}
}

/*
 * Reductions of unknown ("optional") writes and cas.  Unknown ops never
 * return, so each one stays a candidate at every later point of the search,
 * and the cache sees a distinct set for every combination of them that has
 * been applied and overwritten: 2^U.  Two rewrites remove almost all of
 * them; each maps a history H to one that is linearizable exactly when H
 * is.  Write v for the op's new value, and call "observers of v" the reads
 * of v (including failed cas that observed v) and the cas expecting v.
 *
 * 1. Prune: an optional op O whose v (not absent) has no observer, ok or
 *    unknown, is removed.  If H' = H - O has a linearization, so has H: O
 *    is optional and may be left out.  If H has a linearization S that
 *    contains O, take O out of S.  Ops before O are untouched.  Between O
 *    and the next op that changes the state (a write, or a cas that
 *    applies), the state was v; the ops there could only be reads of v or
 *    cas expecting v, and there are none, so O is directly followed in S by
 *    a write, by a cas, or by nothing.  A cas right after O expects v: none
 *    does.  A write does not look at the state, and from it on the states
 *    are as before.  So S - O is legal, and removing an op keeps real-time
 *    order: it linearizes H'.  Removing other ops only removes observers,
 *    so the condition, checked once on H, still holds after each removal.
 *
 * 2. Bound: an optional op O that is the only op producing v (and v is not
 *    absent, which the initial state also produces), where some required
 *    ops observe v (ok reads of v, failed cas that observed v, ok cas
 *    expecting v), becomes required, with a return at t = the earliest
 *    return among them (only if t >= O's invoke).  If H' has a
 *    linearization, it satisfies all of H's constraints (H' only adds
 *    one).  If H has a linearization S: let R be the observer returning at
 *    t; R is in S, needs state v, and only O produces v, so O is in S
 *    before R.  Every op invoked after t follows R in real time, hence
 *    follows O in S, which is the one new constraint: S linearizes H'.
 *    Removing ops (rule 1) never adds producers, and never removes required
 *    observers, so the rules can be decided on H together.
 *
 * Each rule maps a history to an equivalent one, so they may be applied
 * again to the result: a cas that becomes required is a required observer
 * of its expect, and a pruned cas no longer observes anything.
 */
struct cl_vinfo {
	uint64_t observed_min_us; /* earliest return of a required observer */
	uint32_t producers;
	bool observed;            /* by any op */
	bool required_observer;
};

static void cl_vinfo_note(struct cl_vinfo *vi, const struct cl_mop *m)
{
	int32_t seen = m->kind == CL_READ ? m->value : m->expect;
	struct cl_vinfo *o;

	if (m->kind != CL_READ)
		vi[m->value].producers++;
	if (m->kind == CL_WRITE)
		return;
	o = &vi[seen];
	o->observed = true;
	if (m->optional)
		return;
	if (!o->required_observer || m->return_us < o->observed_min_us)
		o->observed_min_us = m->return_us;
	o->required_observer = true;
}

/* One pass of the two rules over mops[0..*n), deciding every op on the
 * history as it was at the start of the pass (sound: see above).  Pruned
 * ops are removed in place.  Returns the number of ops changed. */
static size_t cl_reduce_pass(struct cl_mop *mops, size_t *n,
			     struct cl_vinfo *vi, int32_t values,
			     struct chaos_lin_stats *st)
{
	size_t out = 0, changed = 0;

	memset(vi, 0, ((size_t)values + 1) * sizeof *vi);
	for (size_t i = 0; i < *n; i++)
		cl_vinfo_note(vi, &mops[i]);
	for (size_t i = 0; i < *n; i++) {
		struct cl_mop *m = &mops[i];
		const struct cl_vinfo *v = &vi[m->value];

		if (m->optional && m->value != 0 && !v->observed) {
			st->unknown_pruned++;
			changed++;
			continue;
		}
		if (m->optional && m->value != 0 && v->producers == 1 &&
		    v->required_observer && v->observed_min_us >= m->invoke_us) {
			m->optional = false;
			m->return_us = v->observed_min_us;
			st->unknown_bounded++;
			changed++;
		}
		mops[out++] = *m;
	}
	assert(out <= *n && changed >= *n - out);
	*n = out;
	return changed;
}

/* Applies the rules until nothing changes, so that chains resolve: an
 * unknown write seen only by an unknown cas goes once the cas has been
 * pruned, and is bounded once the cas has been.  Each pass changes an
 * optional op, so there are at most (optional ops + 1) passes. */
static int cl_reduce(struct cl_mop *mops, size_t *n, int32_t values,
		     struct chaos_lin_stats *st)
{
	struct cl_vinfo *vi = calloc((size_t)values + 1, sizeof *vi);

	if (vi == NULL)
		return RS_ENOMEM;
	while (cl_reduce_pass(mops, n, vi, values, st) > 0)
		;
	free(vi);
	return RS_OK;
}

/* Required ops first (their bits come first), each part by invoke time. */
static int cl_mop_cmp(const void *a, const void *b)
{
	const struct cl_mop *x = a, *y = b;

	if (x->optional != y->optional)
		return x->optional ? 1 : -1;
	if (x->invoke_us != y->invoke_us)
		return x->invoke_us < y->invoke_us ? -1 : 1;
	return x->src < y->src ? -1 : x->src > y->src;
}

/* ------------------------------------------------------------------ */
/* The search                                                          */
/* ------------------------------------------------------------------ */

/*
 * A cache entry stores the set of linearized ops compactly.  Required ops
 * are numbered by invoke time, so the set is nearly a prefix of them: the
 * words below `lo` are all ones and are not stored, nor are the all-zero
 * words after the last non-zero one.  The optional ops' words follow.
 * Equal sets have equal encodings, so comparing encodings compares sets.
 */
struct cl_centry {
	uint64_t hash; /* 0: a free slot */
	uint64_t off;  /* of the stored words in the arena */
	int32_t state;
	uint32_t lo;   /* first required word that is not all ones */
	uint32_t n;    /* stored words */
};

struct cl_frame {
	uint32_t op;
	int32_t state; /* before op */
};

struct cl_search {
	const struct cl_mop *mops;
	uint32_t n, required;  /* ops [0, required) have a return event */
	uint32_t *prev, *next; /* event list; node 0 is the head */
	uint32_t *ev_op;       /* node -> op */
	uint8_t *ev_call;      /* node -> 1 for a call, 0 for a return */
	uint32_t *call_node, *ret_node; /* op -> node (ret_node 0: none) */
	uint64_t *zobrist;     /* op -> random word; a set hashes to the xor */
	uint64_t *bits;        /* the linearized set */
	uint32_t words, req_words;
	struct cl_frame *stack;
	uint32_t depth;
	struct cl_centry *slots;
	size_t slot_cap, slot_count;
	uint64_t *arena;
	size_t arena_len, arena_cap;
	uint32_t *observers_left; /* value -> required observers not in yet */
	uint32_t *producers_left; /* value -> producers not in yet */
	uint64_t steps, steps_max;
	size_t mem, mem_max;
	bool over; /* memory budget reached */
	int err;   /* RS_ENOMEM */
};

/* malloc that counts against the budget; NULL sets over or err. */
static void *cl_alloc(struct cl_search *s, size_t bytes)
{
	void *p;

	if (s->mem + bytes > s->mem_max) {
		s->over = true;
		return NULL;
	}
	p = calloc(1, bytes ? bytes : 1);
	if (p == NULL)
		s->err = RS_ENOMEM;
	else
		s->mem += bytes;
	return p;
}

static uint32_t cl_bit(const struct cl_search *s, uint32_t op)
{
	assert(op < s->n);
	return op < s->required ? op : s->req_words * 64 + (op - s->required);
}

static void cl_bit_flip(struct cl_search *s, uint32_t op)
{
	uint32_t b = cl_bit(s, op);
	s->bits[b / 64] ^= 1ull << (b % 64);
}

static void cl_unlink(struct cl_search *s, uint32_t x)
{
	s->next[s->prev[x]] = s->next[x];
	s->prev[s->next[x]] = s->prev[x];
}

static void cl_relink(struct cl_search *s, uint32_t x)
{
	s->next[s->prev[x]] = x;
	s->prev[s->next[x]] = x;
}

/* Lifting removes an op's events; unlifting, in the reverse order of the
 * lifts (the stack guarantees it), puts them back (dancing links). */
static void cl_lift(struct cl_search *s, uint32_t op)
{
	cl_unlink(s, s->call_node[op]);
	if (s->ret_node[op] != 0)
		cl_unlink(s, s->ret_node[op]);
}

static void cl_unlift(struct cl_search *s, uint32_t op)
{
	if (s->ret_node[op] != 0)
		cl_relink(s, s->ret_node[op]);
	cl_relink(s, s->call_node[op]);
}

/* The span of required words to store (see struct cl_centry). */
static void cl_span(const struct cl_search *s, uint32_t *lo, uint32_t *len)
{
	uint32_t a = 0, b = s->req_words;

	while (a < b && s->bits[a] == ~0ull)
		a++;
	while (b > a && s->bits[b - 1] == 0)
		b--;
	*lo = a;
	*len = b - a;
}

static bool cl_centry_eq(const struct cl_search *s, const struct cl_centry *e,
			 int32_t state, uint32_t lo, uint32_t len)
{
	const uint64_t *w = s->arena + e->off;
	uint32_t opt = s->words - s->req_words;

	return e->state == state && e->lo == lo && e->n == len + opt &&
	       memcmp(w, s->bits + lo, (size_t)len * 8) == 0 &&
	       memcmp(w + len, s->bits + s->req_words, (size_t)opt * 8) == 0;
}

static int cl_slots_grow(struct cl_search *s)
{
	size_t cap = s->slot_cap ? s->slot_cap * 2 : 1024;
	struct cl_centry *slots = cl_alloc(s, cap * sizeof *slots);

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < s->slot_cap; i++) {
		size_t j;
		if (s->slots[i].hash == 0)
			continue;
		j = (size_t)s->slots[i].hash & (cap - 1);
		while (slots[j].hash != 0)
			j = (j + 1) & (cap - 1);
		slots[j] = s->slots[i];
	}
	free(s->slots);
	s->mem -= s->slot_cap * sizeof *slots;
	s->slots = slots;
	s->slot_cap = cap;
	return 0;
}

static int cl_arena_reserve(struct cl_search *s, size_t words)
{
	size_t cap = s->arena_cap ? s->arena_cap : 4096;
	uint64_t *a;

	if (s->arena_len + words <= s->arena_cap)
		return 0;
	while (cap < s->arena_len + words)
		cap *= 2;
	if (s->mem + (cap - s->arena_cap) * 8 > s->mem_max) {
		s->over = true;
		return -1;
	}
	a = realloc(s->arena, cap * 8);
	if (a == NULL) {
		s->err = RS_ENOMEM;
		return -1;
	}
	s->mem += (cap - s->arena_cap) * 8;
	s->arena = a;
	s->arena_cap = cap;
	return 0;
}

/* Adds (the current set, state): 1 if new, 0 if seen before, -1 if out of
 * budget or memory. */
static int cl_cache_add(struct cl_search *s, uint64_t zob, int32_t state)
{
	uint64_t h = zob ^ cl_mix64((uint64_t)(uint32_t)state);
	uint32_t lo, len, opt = s->words - s->req_words;
	size_t i;
	struct cl_centry *e;

	h = h ? h : 1;
	cl_span(s, &lo, &len);
	if ((s->slot_count + 1) * 2 > s->slot_cap && cl_slots_grow(s) < 0)
		return -1;
	for (i = (size_t)h & (s->slot_cap - 1); s->slots[i].hash != 0;
	     i = (i + 1) & (s->slot_cap - 1))
		if (s->slots[i].hash == h &&
		    cl_centry_eq(s, &s->slots[i], state, lo, len))
			return 0;
	if (cl_arena_reserve(s, (size_t)len + opt) < 0)
		return -1;
	e = &s->slots[i];
	*e = (struct cl_centry){.hash = h, .off = s->arena_len, .state = state,
				.lo = lo, .n = len + opt};
	memcpy(s->arena + s->arena_len, s->bits + lo, (size_t)len * 8);
	memcpy(s->arena + s->arena_len + len, s->bits + s->req_words,
	       (size_t)opt * 8);
	s->arena_len += (size_t)len + opt;
	s->slot_count++;
	assert(cl_centry_eq(s, e, state, lo, len));
	return 1;
}

struct cl_event {
	uint64_t t;
	uint32_t op;
	uint8_t is_return;
};

/* By time; at equal times calls first, so that touching intervals
 * overlap (the permissive reading of closed intervals). */
static int cl_event_cmp(const void *a, const void *b)
{
	const struct cl_event *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->is_return != y->is_return)
		return x->is_return - y->is_return;
	return x->op < y->op ? -1 : x->op > y->op;
}

static int cl_events_link(struct cl_search *s)
{
	uint32_t count = s->n + s->required, k = 0;
	struct cl_event *ev = malloc(((size_t)count + 1) * sizeof *ev);

	if (ev == NULL)
		return RS_ENOMEM;
	for (uint32_t i = 0; i < s->n; i++) {
		ev[k++] = (struct cl_event){s->mops[i].invoke_us, i, 0};
		if (i < s->required)
			ev[k++] = (struct cl_event){s->mops[i].return_us, i, 1};
	}
	assert(k == count);
	qsort(ev, count, sizeof *ev, cl_event_cmp);
	for (uint32_t j = 0; j <= count; j++) {
		s->prev[j] = j == 0 ? count : j - 1;
		s->next[j] = j == count ? 0 : j + 1;
	}
	for (uint32_t j = 0; j < count; j++) {
		s->ev_op[j + 1] = ev[j].op;
		s->ev_call[j + 1] = !ev[j].is_return;
		if (ev[j].is_return)
			s->ret_node[ev[j].op] = j + 1;
		else
			s->call_node[ev[j].op] = j + 1;
	}
	free(ev);
	return RS_OK;
}

static void cl_search_free(struct cl_search *s)
{
	free(s->prev);
	free(s->next);
	free(s->ev_op);
	free(s->ev_call);
	free(s->call_node);
	free(s->ret_node);
	free(s->zobrist);
	free(s->bits);
	free(s->stack);
	free(s->observers_left);
	free(s->producers_left);
	free(s->slots);
	free(s->arena);
}

/* The value op needs to see, if it is a required observer; else -1. */
static int32_t cl_observes(const struct cl_search *s, uint32_t op)
{
	const struct cl_mop *m = &s->mops[op];

	if (m->kind == CL_READ)
		return m->value;
	return m->kind == CL_CAS && op < s->required ? m->expect : -1;
}

/* Counts op in (delta -1) or out (+1) of observers_left, producers_left. */
static void cl_count_move(struct cl_search *s, uint32_t op, int delta)
{
	int32_t seen = cl_observes(s, op);

	if (seen >= 0)
		s->observers_left[seen] += (uint32_t)delta;
	if (s->mops[op].kind != CL_READ)
		s->producers_left[s->mops[op].value] += (uint32_t)delta;
}

/*
 * Whether moving the register from `state` to `next` by op strands an
 * observer: a required op that still has to see `state` when nothing left
 * can produce it again.  No linearization extends such a prefix, so the
 * move is refused.  This is what keeps a write from being tried before the
 * reads of the value it overwrites, even reads not invoked yet.
 */
static bool cl_strands(const struct cl_search *s, uint32_t op, int32_t state,
		       int32_t next)
{
	uint32_t waiting = s->observers_left[state];

	if (next == state || s->producers_left[state] > 0)
		return false;
	return waiting > (cl_observes(s, op) == state ? 1u : 0u);
}

static int cl_search_alloc(struct cl_search *s, int32_t values)
{
	size_t n = s->n, nodes = n + s->required + 1;

	s->prev = cl_alloc(s, nodes * 4);
	s->next = cl_alloc(s, nodes * 4);
	s->ev_op = cl_alloc(s, nodes * 4);
	s->ev_call = cl_alloc(s, nodes);
	s->call_node = cl_alloc(s, n * 4);
	s->ret_node = cl_alloc(s, n * 4);
	s->zobrist = cl_alloc(s, n * 8);
	s->bits = cl_alloc(s, ((size_t)s->words + 1) * 8);
	s->stack = cl_alloc(s, n * sizeof *s->stack);
	s->observers_left = cl_alloc(s, ((size_t)values + 1) * 4);
	s->producers_left = cl_alloc(s, ((size_t)values + 1) * 4);
	return s->err || s->over ? -1 : 0;
}

/* Sets up the search of mops[0..n) (values 0..values), of which the first
 * `required` have returns.  Returns RS_OK; on RS_ENOMEM or s->over nothing
 * is left to run (cl_search_free still applies). */
static int cl_search_init(struct cl_search *s, const struct cl_mop *mops,
			  uint32_t n, uint32_t required, int32_t values,
			  const struct chaos_lin_limits *lim)
{
	memset(s, 0, sizeof *s);
	s->mops = mops;
	s->n = n;
	s->required = required;
	s->req_words = (required + 63) / 64;
	s->words = s->req_words + (n - required + 63) / 64;
	s->steps_max = lim->steps_max;
	s->mem_max = lim->memory_bytes_max;
	if (cl_search_alloc(s, values) < 0)
		return s->err;
	for (uint32_t i = 0; i < n; i++) {
		assert(mops[i].value <= values && mops[i].expect <= values);
		s->zobrist[i] = cl_mix64(0x5eedull * (i + 1));
		cl_count_move(s, i, +1);
	}
	if (cl_events_link(s) != RS_OK)
		return s->err = RS_ENOMEM;
	return RS_OK;
}

/* Tries to linearize op now: 1 if done, 0 if illegal or explored before,
 * -1 if out of budget or memory. */
static int cl_try(struct cl_search *s, uint32_t op, int32_t *state,
		  uint64_t *zob)
{
	int32_t next;
	int rv;

	if (!cl_apply(&s->mops[op], *state, &next) ||
	    cl_strands(s, op, *state, next))
		return 0;
	cl_bit_flip(s, op);
	rv = cl_cache_add(s, *zob ^ s->zobrist[op], next);
	if (rv <= 0) {
		cl_bit_flip(s, op);
		return rv;
	}
	assert(s->depth < s->n);
	s->stack[s->depth++] = (struct cl_frame){op, *state};
	*zob ^= s->zobrist[op];
	*state = next;
	cl_lift(s, op);
	cl_count_move(s, op, -1);
	return 1;
}

static uint32_t cl_pop(struct cl_search *s, int32_t *state, uint64_t *zob)
{
	struct cl_frame f;

	assert(s->depth > 0);
	f = s->stack[--s->depth];
	cl_unlift(s, f.op);
	cl_count_move(s, f.op, +1);
	cl_bit_flip(s, f.op);
	*zob ^= s->zobrist[f.op];
	*state = f.state;
	return f.op;
}

/*
 * Wing & Gong: walk the events; at a call, try to linearize its op and
 * restart from the head; at a return of an op not yet linearized, undo the
 * last choice and go on after it.  Done when every required op is in.
 *
 * Reads are forced moves.  Say the walk can reach read R's call after the
 * prefix P (so every op that returned before R was invoked is in P), and R
 * may follow P (the state is R's value).  If some linearization P.X.R.Y
 * exists, then so does P.R.X.Y: R changes nothing, so X and Y see the
 * states they saw, and no op of X had to precede R.  So after each move
 * the search first takes every read it can reach whose value is the
 * state, tries nothing else in their place, and when P.R fails (or was
 * seen to fail before), P fails: it backs up past the reads at once.
 * Without this, each write tried too early would be explored again for
 * every way of leaving reads out.
 */
struct cl_walk {
	int32_t state;
	uint64_t zob;  /* the hash of the linearized set */
	uint32_t left; /* required ops not yet linearized */
};

enum cl_step { CL_GO, CL_BACK, CL_DONE, CL_OUT };

/* Takes the reachable reads of the current state (see above). */
static enum cl_step cl_take_reads(struct cl_search *s, struct cl_walk *w)
{
	uint32_t node = s->next[0];

	while (node != 0 && s->ev_call[node]) {
		uint32_t op = s->ev_op[node];
		int rv;

		if (++s->steps > s->steps_max)
			return CL_OUT;
		if (s->mops[op].kind != CL_READ || s->mops[op].value != w->state) {
			node = s->next[node];
			continue;
		}
		rv = cl_try(s, op, &w->state, &w->zob);
		if (rv < 0)
			return CL_OUT;
		if (rv == 0)
			return CL_BACK; /* P.R was explored and failed */
		w->left -= op < s->required;
		node = s->next[s->prev[node]]; /* node itself is lifted */
	}
	assert(node != 0 || w->left == 0);
	return w->left == 0 ? CL_DONE : CL_GO;
}

/* Tries the other ops from node on, in event order. */
static enum cl_step cl_walk_from(struct cl_search *s, struct cl_walk *w,
				 uint32_t node)
{
	for (;;) {
		uint32_t op;
		int rv;

		if (++s->steps > s->steps_max)
			return CL_OUT;
		assert(node != 0); /* a required op's return is still ahead */
		if (!s->ev_call[node])
			return CL_BACK;
		op = s->ev_op[node];
		rv = s->mops[op].kind == CL_READ ? 0
						 : cl_try(s, op, &w->state, &w->zob);
		if (rv < 0)
			return CL_OUT;
		if (rv > 0) {
			w->left -= op < s->required;
			return cl_take_reads(s, w);
		}
		node = s->next[node];
	}
}

/* Undoes the last choice that was not forced; false if there is none.
 * *node is where the walk goes on. */
static bool cl_backtrack(struct cl_search *s, struct cl_walk *w,
			 uint32_t *node)
{
	uint32_t op;

	do {
		if (s->depth == 0)
			return false;
		op = cl_pop(s, &w->state, &w->zob);
		w->left += op < s->required;
	} while (s->mops[op].kind == CL_READ);
	*node = s->next[s->call_node[op]];
	return true;
}

static enum chaos_lin_verdict cl_search_run(struct cl_search *s)
{
	struct cl_walk w = {.left = s->required};
	enum cl_step step = cl_take_reads(s, &w);
	uint32_t node = 0;

	for (;;) {
		switch (step) {
		case CL_DONE:
			assert(s->depth >= s->required);
			return CHAOS_LIN_LINEARIZABLE;
		case CL_OUT:
			return CHAOS_LIN_BUDGET_EXHAUSTED;
		case CL_BACK:
			if (!cl_backtrack(s, &w, &node))
				return CHAOS_LIN_NOT_LINEARIZABLE;
			break;
		default:
			node = s->next[0];
		}
		step = cl_walk_from(s, &w, node);
	}
}

/* ------------------------------------------------------------------ */
/* One key                                                             */
/* ------------------------------------------------------------------ */

/* The model ops of ops[0..n), reduced and sorted, in *mops_out; their
 * values are 0..*values. */
static int cl_model_build(const struct chaos_history_op *ops, size_t n,
			  struct cl_mop **mops_out, size_t *count,
			  uint32_t *required, int32_t *values,
			  struct chaos_lin_stats *st)
{
	struct cl_vmap vm;
	struct cl_mop *mops = malloc((n ? n : 1) * sizeof *mops);
	size_t k = 0;
	int rv;

	if (mops == NULL || cl_vmap_init(&vm, 3 * n) != RS_OK) {
		free(mops);
		return RS_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		k += cl_model_op(&ops[i], i, &vm, &mops[k]);
	rv = cl_reduce(mops, &k, vm.count, st);
	*values = vm.count;
	cl_vmap_free(&vm);
	if (rv != RS_OK) {
		free(mops);
		return rv;
	}
	qsort(mops, k, sizeof *mops, cl_mop_cmp);
	*required = 0;
	while (*required < k && !mops[*required].optional)
		(*required)++;
	*mops_out = mops;
	*count = k;
	return RS_OK;
}

int chaos_lin_check_key(const struct chaos_history_op *ops, size_t n,
			const struct chaos_lin_limits *lim,
			enum chaos_lin_verdict *verdict,
			struct chaos_lin_stats *stats)
{
	struct chaos_lin_stats st = {0};
	struct cl_search s;
	struct cl_mop *mops;
	size_t count;
	uint32_t required;
	int32_t values;
	int rv;

	assert(lim != NULL && verdict != NULL);
	if (n >= UINT32_MAX / 4)
		return RS_ETOOLARGE; /* the search indexes events in 32 bits */
	rv = cl_model_build(ops, n, &mops, &count, &required, &values, &st);
	if (rv != RS_OK)
		return rv;
	rv = cl_search_init(&s, mops, (uint32_t)count, required, values, lim);
	if (rv == RS_OK)
		*verdict = s.over ? CHAOS_LIN_BUDGET_EXHAUSTED
				  : cl_search_run(&s);
	if (rv == RS_OK && s.err != RS_OK)
		rv = s.err;
	st.ops_searched = count;
	st.steps = s.steps;
	st.memory_bytes = s.mem;
	cl_search_free(&s);
	free(mops);
	if (stats != NULL)
		*stats = st;
	return rv;
}
