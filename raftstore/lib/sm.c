/* sm: see sm.h. */
#include "raftstore/lib/sm.h"

#include <stdlib.h>

#include "raftstore/lib/log.h"

/* A table that cannot be right: more than 32 states, a state without a
 * name, or a move to a state that does not exist. */
static void sm_check_def(const struct sm_def *def)
{
	uint32_t all = def->count >= 32 ? UINT32_MAX : SM_TO(def->count) - 1;

	if (def->count == 0 || def->count > 32)
		goto bad;
	for (unsigned i = 0; i < def->count; i++)
		if (def->states[i].name == NULL || (def->states[i].next & ~all))
			goto bad;
	return;
bad:
	log_error("sm.bad_table", "machine=%s states=%u", def->machine,
		  def->count);
	abort();
}

void sm_init(struct sm *m, const struct sm_def *def, unsigned initial)
{
	sm_check_def(def);
	if (initial >= def->count) {
		log_error("sm.bad_state", "machine=%s state=%u", def->machine,
			  initial);
		abort();
	}
	m->def = def;
	m->state = initial;
}

bool sm_can_move(const struct sm_def *def, unsigned from, unsigned to)
{
	if (from >= def->count || to >= def->count)
		return false;
	return (def->states[from].next & SM_TO(to)) != 0;
}

const char *sm_state_name(const struct sm_def *def, unsigned state)
{
	return state < def->count ? def->states[state].name : "?";
}

void sm_check_move(const struct sm_def *def, unsigned from, unsigned to)
{
	if (sm_can_move(def, from, to))
		return;
	log_error("sm.bad_transition", "machine=%s from=%s to=%s",
		  def->machine, sm_state_name(def, from),
		  sm_state_name(def, to));
	abort();
}

void sm_move(struct sm *m, unsigned to)
{
	sm_check_move(m->def, m->state, to);
	m->state = to;
}
