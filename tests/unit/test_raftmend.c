/*
 * Tests of raftmend_append_entries, the follower's mend of an
 * AppendEntries that reaches below its snapshot (c-raft guard 12), on
 * messages built here: what it leaves alone, what it trims, when it makes
 * a heartbeat, the caps, and the batches it frees (run under the
 * sanitizers, a batch freed twice or never shows).  The end-to-end case, on
 * c-raft's fixture with and without the mend, is in test_fsm ("snapshot",
 * "unmended").
 */
#include <check.h>
#include <raft.h>
#include <string.h>

#include "raftstore/raftmend.h"
#include "tests/unit/testutil.h"

#define SNAP_INDEX 10
#define SNAP_TERM 3
#define OFFSET 8 /* two trailing entries held: 9 and 10 */

/* An AppendEntries from prev + 1 to prev + n, entry i of term
 * term_of(index), its payload one byte (the index), in batches of
 * per_batch entries. */
static struct raft_append_entries message(raft_index prev, unsigned n,
					  unsigned per_batch)
{
	struct raft_append_entries a = {0};

	a.term = 5;
	a.prev_log_index = prev;
	a.prev_log_term = prev == 0 ? 0 : (prev <= SNAP_INDEX ? SNAP_TERM : 4);
	a.leader_commit = prev + n + 5;
	a.n_entries = n;
	if (n == 0)
		return a;
	a.entries = raft_calloc(n, sizeof a.entries[0]);
	ck_assert_ptr_nonnull(a.entries);
	for (unsigned j = 0; j < n; j++) {
		raft_index index = prev + 1 + j;
		if (j % per_batch == 0) {
			a.entries[j].batch = raft_malloc(per_batch);
			ck_assert_ptr_nonnull(a.entries[j].batch);
		} else {
			a.entries[j].batch = a.entries[j - 1].batch;
		}
		a.entries[j].term = index <= SNAP_INDEX ? SNAP_TERM : 4;
		a.entries[j].type = RAFT_COMMAND;
		a.entries[j].buf.base =
			(char *)a.entries[j].batch + j % per_batch;
		*(unsigned char *)a.entries[j].buf.base = (unsigned char)index;
		a.entries[j].buf.len = 1;
	}
	return a;
}

/* What c-raft does with a message it took: free each batch once, then the
 * array (entryBatchesDestroy). */
static void release(struct raft_append_entries *a)
{
	void *batch = NULL;

	for (unsigned j = 0; j < a->n_entries; j++) {
		if (a->entries[j].batch != batch) {
			batch = a->entries[j].batch;
			raft_free(batch);
		}
	}
	raft_free(a->entries);
}

static enum raftmend_outcome mend(struct raft_append_entries *a,
				  raft_index *cap)
{
	return raftmend_append_entries(SNAP_INDEX, SNAP_TERM, OFFSET, a, cap);
}

START_TEST(test_untouched)
{
	struct raft_append_entries a;
	raft_index cap = 77;

	/* the previous entry is held (a trailing one, or past the snapshot) */
	a = message(9, 4, 4);
	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_UNTOUCHED);
	ck_assert_uint_eq(a.prev_log_index, 9);
	ck_assert_uint_eq(a.n_entries, 4);
	ck_assert_uint_eq(a.leader_commit, 18);
	release(&a);
	a = message(SNAP_INDEX, 2, 2);
	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_UNTOUCHED);
	release(&a);
	a = message(12, 0, 1);
	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_UNTOUCHED);
	/* from index 1 while entry 1 is still held (trailing back to it) */
	a = message(0, 12, 4);
	ck_assert_int_eq(raftmend_append_entries(SNAP_INDEX, SNAP_TERM, 0, &a,
						 &cap),
			 RAFTMEND_UNTOUCHED);
	ck_assert_uint_eq(a.n_entries, 12);
	release(&a);
	/* no snapshot */
	a = message(0, 3, 3);
	ck_assert_int_eq(raftmend_append_entries(0, 0, 0, &a, &cap),
			 RAFTMEND_UNTOUCHED);
	ck_assert_uint_eq(a.prev_log_index, 0);
	ck_assert_uint_eq(a.n_entries, 3);
	release(&a);
	ck_assert_uint_eq(cap, 77);
}
END_TEST

/* The log from index 1, past the snapshot: entries 11..15 stay, in order,
 * after the leader's entry 10, whose term becomes the previous term. */
START_TEST(test_trimmed_from_index_1)
{
	struct raft_append_entries a = message(0, 15, 15);
	raft_index cap = 0;

	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_TRIMMED);
	ck_assert_uint_eq(a.prev_log_index, SNAP_INDEX);
	ck_assert_uint_eq(a.prev_log_term, SNAP_TERM);
	ck_assert_uint_eq(a.n_entries, 5);
	for (unsigned j = 0; j < 5; j++) {
		ck_assert_uint_eq(*(unsigned char *)a.entries[j].buf.base,
				  SNAP_INDEX + 1 + j);
		ck_assert_uint_eq(a.entries[j].term, 4);
	}
	ck_assert_uint_eq(cap, 15);
	ck_assert_uint_eq(a.leader_commit, 15); /* was 20 */
	release(&a);
}
END_TEST

/* Batches of three: those holding only dropped entries are freed by the
 * mend, the one shared with a kept entry by c-raft (release). */
START_TEST(test_trimmed_frees_dropped_batches_once)
{
	struct raft_append_entries a = message(2, 12, 3);
	raft_index cap = 0;

	/* entries 3..14 in batches [3,5] [6,8] [9,11] [12,14] */
	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_TRIMMED);
	ck_assert_uint_eq(a.n_entries, 4);
	ck_assert_uint_eq(*(unsigned char *)a.entries[0].buf.base, 11);
	ck_assert_ptr_eq(a.entries[0].batch,
			 (char *)a.entries[0].buf.base - 2);
	ck_assert_ptr_ne(a.entries[0].batch, a.entries[1].batch);
	ck_assert_uint_eq(cap, 14);
	release(&a);
}
END_TEST

/* Every entry at or below the snapshot: a heartbeat at it, with the
 * snapshot's term, claiming no more than the snapshot. */
START_TEST(test_heartbeat_below_snapshot)
{
	struct raft_append_entries a = message(0, 6, 2);
	raft_index cap = 0;

	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_HEARTBEAT);
	ck_assert_uint_eq(a.prev_log_index, SNAP_INDEX);
	ck_assert_uint_eq(a.prev_log_term, SNAP_TERM);
	ck_assert_uint_eq(a.n_entries, 0);
	ck_assert_ptr_null(a.entries);
	ck_assert_uint_eq(cap, SNAP_INDEX);
	ck_assert_uint_eq(a.leader_commit, SNAP_INDEX); /* was 11 */

	/* an empty one from index 0, and one from a missing index */
	a = message(0, 0, 1);
	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_HEARTBEAT);
	ck_assert_uint_eq(a.prev_log_index, SNAP_INDEX);
	ck_assert_uint_eq(a.prev_log_term, SNAP_TERM);
	ck_assert_uint_eq(a.leader_commit, 5);
	a = message(OFFSET, 1, 1);
	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_HEARTBEAT);
	ck_assert_uint_eq(a.prev_log_index, SNAP_INDEX);
}
END_TEST

/* Ending at the snapshot's index: the heartbeat carries the leader's own
 * term for it, for c-raft to check against the snapshot's. */
START_TEST(test_heartbeat_at_snapshot_keeps_leaders_term)
{
	struct raft_append_entries a = message(4, 6, 6);
	raft_index cap = 0;

	a.entries[5].term = 2; /* a leader that disagrees about entry 10 */
	ck_assert_int_eq(mend(&a, &cap), RAFTMEND_HEARTBEAT);
	ck_assert_uint_eq(a.prev_log_index, SNAP_INDEX);
	ck_assert_uint_eq(a.prev_log_term, 2);
	ck_assert_uint_eq(cap, SNAP_INDEX);
}
END_TEST

static int fake_start(struct raft_io *io, unsigned msecs,
		      raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	(void)io, (void)msecs, (void)tick, (void)recv;
	return 0;
}

static int fake_send(struct raft_io *io, struct raft_io_send *req,
		     const struct raft_message *message, raft_io_send_cb cb)
{
	(void)io, (void)req, (void)message, (void)cb;
	return 0;
}

static int fake_append(struct raft_io *io, struct raft_io_append *req,
		       const struct raft_entry entries[], unsigned n,
		       raft_io_append_cb cb)
{
	(void)io, (void)req, (void)entries, (void)n, (void)cb;
	return 0;
}

START_TEST(test_install_limit)
{
	struct raft_io ios[RAFTMEND_IO_MAX + 1];
	int (*start)(struct raft_io *, unsigned, raft_io_tick_cb,
		     raft_io_recv_cb) = fake_start;
	int (*send)(struct raft_io *, struct raft_io_send *,
		    const struct raft_message *, raft_io_send_cb) = fake_send;

	memset(ios, 0, sizeof ios);
	for (unsigned i = 0; i <= RAFTMEND_IO_MAX; i++) {
		ios[i].start = start;
		ios[i].send = send;
		ios[i].append = fake_append;
	}
	for (unsigned i = 0; i < RAFTMEND_IO_MAX; i++) {
		ck_assert_int_eq(raftmend_install(&ios[i]), 0);
		ck_assert_ptr_ne(ios[i].start, start);
		ck_assert_ptr_ne(ios[i].send, send);
		ck_assert_ptr_ne(ios[i].append, fake_append);
	}
	ck_assert_int_ne(raftmend_install(&ios[RAFTMEND_IO_MAX]), 0);
	ck_assert_ptr_eq(ios[RAFTMEND_IO_MAX].start, start);
	/* again on an io it wraps: still wraps once */
	start = ios[0].start;
	ck_assert_int_eq(raftmend_install(&ios[0]), 0);
	ck_assert_ptr_eq(ios[0].start, start);
	ck_assert_uint_eq(raftmend_count(&ios[0]), 0);
	ck_assert_uint_eq(raftmend_count(&ios[RAFTMEND_IO_MAX]), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("raftmend");
	TCase *tc = testutil_tcase(s, "mend", NULL, NULL, 10);

	tcase_add_test(tc, test_untouched);
	tcase_add_test(tc, test_trimmed_from_index_1);
	tcase_add_test(tc, test_trimmed_frees_dropped_batches_once);
	tcase_add_test(tc, test_heartbeat_below_snapshot);
	tcase_add_test(tc, test_heartbeat_at_snapshot_keeps_leaders_term);
	tcase_add_test(tc, test_install_limit);
	return testutil_run_suite(s);
}
