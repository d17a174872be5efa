/* Tests for sm: moves the table allows, an abort (SIGABRT) for one it does
 * not and for tables that cannot be right, names and range checks. */
#include <check.h>
#include <signal.h>

#include "raftstore/lib/sm.h"
#include "tests/unit/testutil.h"

enum door { DOOR_OPEN, DOOR_CLOSED, DOOR_LOCKED, DOOR__COUNT };

static const struct sm_state door_states[] = {
	[DOOR_OPEN] = {"open", SM_TO(DOOR_CLOSED)},
	[DOOR_CLOSED] = {"closed", SM_TO(DOOR_OPEN) | SM_TO(DOOR_LOCKED)},
	[DOOR_LOCKED] = {"locked", SM_TO(DOOR_CLOSED)},
};
static const struct sm_def door_sm = SM_DEF("door", door_states);

START_TEST(test_allowed_moves)
{
	struct sm m;

	ck_assert_uint_eq(door_sm.count, DOOR__COUNT);
	sm_init(&m, &door_sm, DOOR_OPEN);
	ck_assert_uint_eq(sm_state(&m), DOOR_OPEN);
	sm_move(&m, DOOR_CLOSED);
	sm_move(&m, DOOR_LOCKED);
	ck_assert_uint_eq(sm_state(&m), DOOR_LOCKED);
	sm_move(&m, DOOR_CLOSED);
	sm_move(&m, DOOR_OPEN);
	ck_assert_uint_eq(sm_state(&m), DOOR_OPEN);
}
END_TEST

/* The table is the whole truth: every pair is asked, self-moves included. */
START_TEST(test_can_move_matches_table)
{
	for (unsigned f = 0; f < DOOR__COUNT; f++)
		for (unsigned t = 0; t < DOOR__COUNT; t++)
			ck_assert_int_eq(sm_can_move(&door_sm, f, t),
					 (door_states[f].next >> t) & 1);
	ck_assert(!sm_can_move(&door_sm, DOOR__COUNT, DOOR_OPEN));
	ck_assert(!sm_can_move(&door_sm, DOOR_OPEN, 31));
	ck_assert_str_eq(sm_state_name(&door_sm, DOOR_LOCKED), "locked");
	ck_assert_str_eq(sm_state_name(&door_sm, 7), "?");
}
END_TEST

START_TEST(test_bad_move_aborts)
{
	struct sm m;

	sm_init(&m, &door_sm, DOOR_OPEN);
	sm_move(&m, DOOR_LOCKED); /* open -> locked is not in the table */
}
END_TEST

START_TEST(test_self_move_aborts_unless_declared)
{
	struct sm m;

	sm_init(&m, &door_sm, DOOR_CLOSED);
	sm_move(&m, DOOR_CLOSED);
}
END_TEST

START_TEST(test_check_move_outside_an_sm)
{
	sm_check_move(&door_sm, DOOR_LOCKED, DOOR_CLOSED); /* allowed */
	sm_check_move(&door_sm, DOOR_LOCKED, DOOR_OPEN);
}
END_TEST

START_TEST(test_bad_initial_state_aborts)
{
	struct sm m;

	sm_init(&m, &door_sm, DOOR__COUNT);
}
END_TEST

static const struct sm_state wild_states[] = {
	{"a", SM_TO(1)},
	{"b", SM_TO(5)}, /* no state 5 */
};
static const struct sm_def wild_sm = SM_DEF("wild", wild_states);

START_TEST(test_table_to_nowhere_aborts)
{
	struct sm m;

	sm_init(&m, &wild_sm, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sm");
	TCase *tc = tcase_create("moves");
	tcase_add_test(tc, test_allowed_moves);
	tcase_add_test(tc, test_can_move_matches_table);
	tcase_add_test_raise_signal(tc, test_bad_move_aborts, SIGABRT);
	tcase_add_test_raise_signal(tc, test_self_move_aborts_unless_declared,
				    SIGABRT);
	tcase_add_test_raise_signal(tc, test_check_move_outside_an_sm, SIGABRT);
	tcase_add_test_raise_signal(tc, test_bad_initial_state_aborts, SIGABRT);
	tcase_add_test_raise_signal(tc, test_table_to_nowhere_aborts, SIGABRT);
	suite_add_tcase(s, tc);
	return testutil_run_suite(s);
}
