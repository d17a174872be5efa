/*
 * sm: the one way a module declares and moves through its states.
 *
 * A module names its states in an enum (0..count-1, at most 32) and writes
 * one table: for each state, its name and the states it may move to, as a
 * bit mask of SM_TO(state).  Its objects embed a struct sm and move only
 * with sm_move, so every transition in the program is checked against the
 * table it was declared with.
 *
 *   enum journal_state { JOURNAL_IDLE, JOURNAL_WRITING, ... };
 *   static const struct sm_state journal_states[] = {
 *           [JOURNAL_IDLE] = {"idle", SM_TO(JOURNAL_WRITING) | ...},
 *           [JOURNAL_WRITING] = {"writing", SM_TO(JOURNAL_IDLE)},
 *   };
 *   static const struct sm_def journal_sm = SM_DEF("journal", journal_states);
 *
 * A move the table does not allow is a bug in the program, not a runtime
 * condition: sm_move logs `event=sm.bad_transition machine=journal
 * from=writing to=closed` and aborts, in every build, so that the state an
 * object is in can always be trusted.  sm_can_move asks without moving, for
 * code that decides between paths.
 *
 * No allocation, no I/O except the log line before an abort; an sm is
 * used from one thread.
 */
#ifndef RS_SM_H
#define RS_SM_H

#include <stdbool.h>
#include <stdint.h>

#define SM_TO(state) (UINT32_C(1) << (state))

struct sm_state {
	const char *name; /* for logs and status: "idle", "writing" */
	uint32_t next;    /* SM_TO(s) for each state s this one may move to */
};

struct sm_def {
	const char *machine; /* "journal", "audit", "director" */
	const struct sm_state *states;
	unsigned count;
};

#define SM_DEF(machine, states)                                          \
	{ (machine), (states), (unsigned)(sizeof(states) / sizeof((states)[0])) }

struct sm {
	const struct sm_def *def;
	unsigned state;
};

/* Start m in state `initial` of def. */
void sm_init(struct sm *m, const struct sm_def *def, unsigned initial);

/* Move m to `to`, which m's table must allow from its current state. */
void sm_move(struct sm *m, unsigned to);

/* For a state kept outside a struct sm (a packed field of a public
 * struct): abort exactly as sm_move would unless def allows from -> to. */
void sm_check_move(const struct sm_def *def, unsigned from, unsigned to);

/* Whether def allows from -> to (false for states out of range). */
bool sm_can_move(const struct sm_def *def, unsigned from, unsigned to);

static inline unsigned sm_state(const struct sm *m)
{
	return m->state;
}

/* The name of a state of def, or "?" when out of range. */
const char *sm_state_name(const struct sm_def *def, unsigned state);

#endif /* RS_SM_H */
