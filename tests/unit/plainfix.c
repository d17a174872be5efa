/* plainfix: see plainfix.h. */
#include "tests/unit/plainfix.h"

#include <check.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <string.h>

static int plainfix_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
			  void **result)
{
	(void)fsm, (void)buf;
	*result = NULL;
	return 0;
}

/* A snapshot of nothing: one byte, so that c-raft can take and install
 * snapshots (only past its threshold, 1024 entries unless a test lowers
 * it). */
static int plainfix_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			     unsigned *n_bufs)
{
	(void)fsm;
	*bufs = raft_malloc(sizeof **bufs);
	if (*bufs == NULL)
		return RAFT_NOMEM;
	(*bufs)[0].len = 1;
	(*bufs)[0].base = raft_malloc(1);
	if ((*bufs)[0].base == NULL) {
		raft_free(*bufs);
		return RAFT_NOMEM;
	}
	*(char *)(*bufs)[0].base = 's';
	*n_bufs = 1;
	return 0;
}

static int plainfix_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	(void)fsm;
	raft_free(buf->base);
	return 0;
}

/* c-raft keeps a pointer to each server's fsm: one set for the process
 * (one fixture at a time; Check forks each test). */
static struct raft_fsm plainfix_fsms[PLAINFIX_SERVERS_MAX];

void plainfix_start(struct raft_fixture *f, unsigned n,
		    void (*before_start)(struct raft_fixture *f, unsigned i,
					 void *arg),
		    void *arg)
{
	struct raft_configuration conf;

	ck_assert_uint_le(n, PLAINFIX_SERVERS_MAX);
	memset(plainfix_fsms, 0, sizeof plainfix_fsms);
	memset(f, 0, sizeof *f);
	ck_assert_int_eq(raft_fixture_initialize(f), 0);
	for (unsigned i = 0; i < n; i++) {
		plainfix_fsms[i].version = 1;
		plainfix_fsms[i].apply = plainfix_apply;
		plainfix_fsms[i].snapshot = plainfix_snapshot;
		plainfix_fsms[i].restore = plainfix_restore;
		ck_assert_int_eq(raft_fixture_grow(f, &plainfix_fsms[i]), 0);
		if (before_start != NULL)
			before_start(f, i, arg);
	}
	raft_configuration_init(&conf);
	ck_assert_int_eq(raft_fixture_configuration(f, n, &conf), 0);
	ck_assert_int_eq(raft_fixture_bootstrap(f, &conf), 0);
	raft_configuration_close(&conf);
	ck_assert_int_eq(raft_fixture_start(f), 0);
	raft_fixture_elect(f, 0);
	ck_assert_int_eq(raft_state(raft_fixture_get(f, 0)), RAFT_LEADER);
}

/* A server other than *dead leads. */
static bool plainfix_new_leader(struct raft_fixture *f, void *dead)
{
	for (unsigned i = 0; i < raft_fixture_n(f); i++)
		if (i != *(unsigned *)dead &&
		    raft_state(raft_fixture_get(f, i)) == RAFT_LEADER)
			return true;
	return false;
}

unsigned plainfix_step_until_new_leader(struct raft_fixture *f,
					unsigned dead, unsigned max_ms)
{
	unsigned n = raft_fixture_n(f);

	if (!raft_fixture_step_until(f, plainfix_new_leader, &dead, max_ms))
		return n;
	for (unsigned i = 0; i < n; i++)
		if (i != dead && raft_state(raft_fixture_get(f, i)) == RAFT_LEADER)
			return i;
	return n;
}

void plainfix_cut(struct raft_fixture *f, unsigned i, unsigned j)
{
	raft_fixture_saturate(f, i, j);
	raft_fixture_saturate(f, j, i);
}

void plainfix_heal(struct raft_fixture *f, unsigned i, unsigned j)
{
	raft_fixture_desaturate(f, i, j);
	raft_fixture_desaturate(f, j, i);
}

void plainfix_apply_one(struct raft_fixture *f, unsigned i,
			struct raft_apply *req)
{
	struct raft_buffer buf = {.len = 8};

	buf.base = raft_malloc(buf.len);
	ck_assert_ptr_nonnull(buf.base);
	memset(buf.base, 'e', buf.len);
	ck_assert_int_eq(raft_apply(raft_fixture_get(f, i), req, &buf, 1,
				    NULL), 0);
}
