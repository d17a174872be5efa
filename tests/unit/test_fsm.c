/*
 * Tests of the state machine (raftstore/fsm.c) on c-raft's deterministic
 * raft_fixture: three servers, each with its own fsm over its own store
 * (tests/unit/raftfix.h).
 *
 *  - batches committed through the log apply identically on every replica;
 *  - fencing: a leader deposed under epoch 1 that wins again after epoch 2
 *    was committed proposes an epoch-1 batch; every replica skips it, the
 *    same way, reports it to the proposer as fenced, and no store changes;
 *  - idempotence: an entry applied again, or the whole log replayed over a
 *    reopened store, changes nothing, and a replay from scratch repeats
 *    every fencing decision;
 *  - snapshots: a follower that was down while the leader compacted its log
 *    catches up by installing the snapshot and ends with the same store and
 *    the same epoch (so it fences as the others do);
 *  - a follower with a snapshot that a leader without one sends the log
 *    from index 1: c-raft 0.15 turns unavailable, the mend (raftmend.h)
 *    lets it catch up.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftstore/fsm.h"
#include "raftstore/lib/crc32c.h"
#include "storage/mvcc.h"
#include "raftstore/raftcall.h"
#include "raftstore/raftmend.h"
#include "tests/unit/raftfix.h"
#include "tests/unit/testutil.h"

#define N 3
#define WAIT_MS 20000
#define PROPOSALS_MAX 64
#define EPOCH_KEY "\xff/epoch"

static struct raftfix c;

/* One raft_apply of ours and its outcome. */
struct proposal {
	struct raft_apply req;
	raft_index index;
	bool done;
	int status;
	void *result;
};

static struct proposal props[PROPOSALS_MAX];
/* A copy of every entry proposed, in log order, for the replay tests. */
static struct raft_buffer entries[PROPOSALS_MAX];
static unsigned n_props;

static void setup(void)
{
	raftfix_unmended = false;
	raftfix_start(&c, N);
	n_props = 0;
}

/* c-raft as it is, without raftmend (the node never runs it so). */
static void setup_unmended(void)
{
	raftfix_unmended = true;
	raftfix_start(&c, N);
	n_props = 0;
}

static void teardown(void)
{
	raftfix_stop(&c);
	for (unsigned i = 0; i < n_props; i++)
		free(entries[i].base);
}

static void proposal_done(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;

	raftcall_cb_enter("test apply callback");
	ck_assert_msg(!p->done, "apply callback ran twice");
	p->done = true;
	p->status = status;
	p->result = result;
	raftcall_cb_leave();
}

/* Propose an entry on server `leader` (one SET of key = val). */
static struct proposal *propose(unsigned leader, uint8_t kind,
				uint64_t version, uint64_t epoch,
				const char *key, const char *val)
{
	struct raft_buffer buf = raftfix_entry(kind, version, epoch, key, val);
	struct raft *r = raftfix_raft(&c, leader);
	struct proposal *p;

	ck_assert_uint_lt(n_props, PROPOSALS_MAX);
	ck_assert_int_eq(raft_state(r), RAFT_LEADER);
	p = &props[n_props];
	memset(p, 0, sizeof *p);
	entries[n_props].base = malloc(buf.len);
	ck_assert_ptr_nonnull(entries[n_props].base);
	memcpy(entries[n_props].base, buf.base, buf.len);
	entries[n_props].len = buf.len;
	n_props++;
	p->req.data = p;
	ck_assert_int_eq(raftcall_apply(r, &p->req, &buf, 1, proposal_done), 0);
	p->index = raft_last_index(r);
	return p;
}

static bool proposal_answered(void *arg)
{
	return ((struct proposal *)arg)->done;
}

/* Propose and wait until the servers in mask applied it; the proposer's
 * callback must have reported success. */
static struct proposal *commit_on(unsigned leader, unsigned mask,
				  uint8_t kind, uint64_t version,
				  uint64_t epoch, const char *key,
				  const char *val)
{
	struct proposal *p = propose(leader, kind, version, epoch, key, val);

	ck_assert(raftfix_step_until(&c, proposal_answered, p, WAIT_MS));
	ck_assert_int_eq(p->status, 0);
	raftfix_step_until_applied(&c, mask, p->index, WAIT_MS);
	return p;
}

static struct proposal *commit(unsigned leader, uint8_t kind,
			       uint64_t version, uint64_t epoch,
			       const char *key, const char *val)
{
	return commit_on(leader, raftfix_all(&c), kind, version, epoch, key,
			 val);
}

/* Every replica holds exactly `want` ("key=value@version" lines, or
 * without versions). */
static void expect_all_hold(const char *want, bool with_versions)
{
	for (unsigned i = 0; i < N; i++) {
		char *got = raftfix_dump(&c.reps[i], with_versions);
		ck_assert_msg(strcmp(got, want) == 0,
			      "server %u holds:\n%s\nwant:\n%s", i, got, want);
		free(got);
	}
}

static void expect_all_dumps(const char *want)
{
	expect_all_hold(want, true);
}

/* Move leadership from the current leader to server `next`. */
static void move_leader(unsigned next)
{
	raft_fixture_depose(&c.fx);
	ck_assert(raft_fixture_step_until_has_no_leader(&c.fx, WAIT_MS));
	raft_fixture_elect(&c.fx, next);
	ck_assert_uint_eq(raft_fixture_leader_index(&c.fx), next);
}

START_TEST(test_batches_apply_on_every_replica)
{
	struct proposal *p;

	p = commit(0, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	ck_assert_ptr_null(p->result);
	commit(0, FSM_ENTRY_BATCH, 20, 1, "a", "x");
	commit(0, FSM_ENTRY_BATCH, 30, 1, "b", "y");
	p = commit(0, FSM_ENTRY_BATCH, 40, 1, "a", "z");
	ck_assert_ptr_null(p->result);

	expect_all_dumps("a=z@40\nb=y@30\n" EPOCH_KEY "=1@10\n");
	for (unsigned i = 0; i < N; i++) {
		struct raftfix_replica *r = &c.reps[i];
		ck_assert_uint_eq(r->fsm.applied_entries, 4);
		ck_assert_uint_eq(r->applied_calls, 4);
		ck_assert_uint_eq(r->fsm.fenced_entries, 0);
		ck_assert_uint_eq(r->fsm.skipped_entries, 0);
		ck_assert_uint_eq(r->fsm.epoch, 1);
		ck_assert_uint_eq(store_applied_version(r->store), 40);
		ck_assert_uint_eq(store_applied_epoch(r->store), 1);
	}
}
END_TEST

/* A batch with no epoch allocated yet is fenced unless it carries the
 * store's initial epoch: the very first director must allocate. */
START_TEST(test_batch_before_any_epoch_needs_epoch_zero)
{
	struct proposal *p;

	p = commit(0, FSM_ENTRY_BATCH, 10, 1, "a", "x");
	ck_assert_ptr_eq(p->result, fsm_result_fenced());
	p = commit(0, FSM_ENTRY_BATCH, 20, 0, "a", "y");
	ck_assert_ptr_null(p->result);
	expect_all_dumps("a=y@20\n");
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(c.reps[i].fsm.fenced_entries, 1);
		ck_assert_uint_eq(c.reps[i].fenced_version, 10);
	}
}
END_TEST

/* The deposed leader comes back after a newer epoch was committed by
 * another leader and proposes with the epoch it still has. */
START_TEST(test_stale_epoch_batch_fenced_on_every_replica)
{
	struct proposal *p;
	char *before;

	commit(0, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	commit(0, FSM_ENTRY_BATCH, 20, 1, "k", "old");
	move_leader(1);
	commit(1, FSM_ENTRY_EPOCH, 30, 2, EPOCH_KEY, "2");
	move_leader(0);
	before = raftfix_dump(&c.reps[0], true);

	p = commit(0, FSM_ENTRY_BATCH, 40, 1, "k", "stale");
	ck_assert_int_eq(p->status, 0); /* committed to the log ... */
	ck_assert_ptr_eq(p->result, fsm_result_fenced()); /* ... not applied */
	expect_all_dumps(before);
	for (unsigned i = 0; i < N; i++) {
		struct raftfix_replica *r = &c.reps[i];
		raftfix_expect(r, "k", "old");
		ck_assert_uint_eq(store_accepted_version(r->store), 30);
		ck_assert_uint_eq(r->fsm.fenced_entries, 1);
		ck_assert_uint_eq(r->fenced_calls, 1);
		ck_assert_uint_eq(r->fenced_version, 40);
		ck_assert_uint_eq(r->fenced_batch_epoch, 1);
		ck_assert_uint_eq(r->fenced_current_epoch, 2);
		ck_assert_uint_eq(r->fsm.applied_entries, 3);
	}

	/* An epoch not above the current one, and a batch of an epoch never
	 * allocated, are fenced too; the current epoch still writes. */
	p = commit(0, FSM_ENTRY_EPOCH, 50, 2, EPOCH_KEY, "2 again");
	ck_assert_ptr_eq(p->result, fsm_result_fenced());
	p = commit(0, FSM_ENTRY_BATCH, 60, 3, "k", "future");
	ck_assert_ptr_eq(p->result, fsm_result_fenced());
	p = commit(0, FSM_ENTRY_BATCH, 70, 2, "k", "new");
	ck_assert_ptr_null(p->result);
	expect_all_dumps("k=new@70\n" EPOCH_KEY "=2@30\n");
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(c.reps[i].fsm.fenced_entries, 3);
		ck_assert_uint_eq(c.reps[i].fsm.epoch, 2);
	}
	free(before);
}
END_TEST

/* Server 2 is down through the whole epoch change and the stale batch;
 * revived, it receives the log in one go and decides as the others did. */
START_TEST(test_lagging_replica_fences_the_same_way)
{
	struct raftfix_replica *lagging = &c.reps[2];
	struct proposal *p;

	commit(0, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	raft_fixture_kill(&c.fx, 2);
	commit_on(0, 0x3, FSM_ENTRY_BATCH, 20, 1, "k", "old");
	move_leader(1);
	commit_on(1, 0x3, FSM_ENTRY_EPOCH, 30, 2, EPOCH_KEY, "2");
	move_leader(0);
	p = commit_on(0, 0x3, FSM_ENTRY_BATCH, 40, 1, "k", "stale");
	ck_assert_ptr_eq(p->result, fsm_result_fenced());
	ck_assert_uint_eq(lagging->fsm.epoch, 1);
	ck_assert_uint_eq(lagging->fsm.fenced_entries, 0);

	raft_fixture_revive(&c.fx, 2);
	commit(0, FSM_ENTRY_BATCH, 50, 2, "j", "new");
	ck_assert_uint_eq(lagging->fsm.restores, 0); /* from the log */
	ck_assert_uint_eq(lagging->fsm.fenced_entries, 1);
	ck_assert_uint_eq(lagging->fenced_version, 40);
	ck_assert_uint_eq(lagging->fenced_current_epoch, 2);
	ck_assert_uint_eq(lagging->fsm.epoch, 2);
	expect_all_dumps("j=new@50\nk=old@20\n" EPOCH_KEY "=2@30\n");
}
END_TEST

/* The stale batch was proposed before the new epoch and reached the other
 * servers, but its leader lost leadership before it was committed; the new
 * leader commits it ahead of its own epoch entry: log order decides, so it
 * applies everywhere (fencing is by position in the log, not by time). */
START_TEST(test_fencing_follows_log_order)
{
	struct proposal *stale, *p;

	commit(0, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	/* Followers receive the entry but their acknowledgements are lost. */
	raft_fixture_saturate(&c.fx, 1, 0);
	raft_fixture_saturate(&c.fx, 2, 0);
	stale = propose(0, FSM_ENTRY_BATCH, 20, 1, "k", "in flight");
	ck_assert(raft_fixture_step_until_state_is(&c.fx, 0, RAFT_FOLLOWER,
						   WAIT_MS));
	raft_fixture_desaturate(&c.fx, 1, 0);
	raft_fixture_desaturate(&c.fx, 2, 0);
	ck_assert(raft_fixture_step_until_has_no_leader(&c.fx, WAIT_MS));
	raft_fixture_elect(&c.fx, 1);
	ck_assert(stale->done);
	ck_assert_int_ne(stale->status, 0); /* the proposer never learns */

	p = commit(1, FSM_ENTRY_EPOCH, 30, 2, EPOCH_KEY, "2");
	ck_assert_ptr_null(p->result);
	raftfix_step_until_applied(&c, raftfix_all(&c), p->index, WAIT_MS);
	expect_all_dumps("k=in flight@20\n" EPOCH_KEY "=2@30\n");
	for (unsigned i = 0; i < N; i++)
		ck_assert_uint_eq(c.reps[i].fsm.fenced_entries, 0);
}
END_TEST

/* Apply every recorded entry to r's fsm, as c-raft does when it replays
 * its log; returns how many came back fenced. */
static unsigned replay(struct raftfix_replica *r, unsigned from, unsigned to)
{
	unsigned fenced = 0;

	for (unsigned i = from; i < to; i++) {
		struct raft_buffer buf = entries[i];
		void *result = NULL;
		int rv = r->fsm.raft.apply(&r->fsm.raft, &buf, &result);
		ck_assert_int_eq(rv, 0);
		if (result == fsm_result_fenced())
			fenced++;
		else
			ck_assert_ptr_null(result);
	}
	return fenced;
}

/* The log of the fencing scenario, committed on all three servers. */
static void commit_fenced_history(void)
{
	commit(0, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	commit(0, FSM_ENTRY_BATCH, 20, 1, "k", "one");
	commit(0, FSM_ENTRY_EPOCH, 30, 2, EPOCH_KEY, "2");
	commit(0, FSM_ENTRY_BATCH, 40, 1, "k", "stale");
	commit(0, FSM_ENTRY_BATCH, 50, 2, "j", "two");
	ck_assert_uint_eq(c.reps[0].fsm.fenced_entries, 1);
}

#define HISTORY "j=two@50\nk=one@20\n" EPOCH_KEY "=2@30\n"

START_TEST(test_entry_applied_again_changes_nothing)
{
	commit_fenced_history();
	expect_all_dumps(HISTORY);
	for (unsigned i = 0; i < N; i++) {
		struct raftfix_replica *r = &c.reps[i];
		ck_assert_uint_eq(replay(r, 0, n_props), 0);
		ck_assert_uint_eq(r->fsm.skipped_entries, n_props);
		ck_assert_uint_eq(r->fsm.applied_entries, 4);
		ck_assert_uint_eq(r->applied_calls, 4);
		ck_assert_uint_eq(r->fsm.fenced_entries, 1);
		ck_assert_uint_eq(store_accepted_version(r->store), 50);
	}
	expect_all_dumps(HISTORY);
}
END_TEST

/* Restart: the store reopens from its journal, the fsm takes its epoch
 * from it, and c-raft's replay of the log changes nothing. */
START_TEST(test_replay_after_reopen_changes_nothing)
{
	struct raftfix_replica *r = &c.reps[2];

	commit_fenced_history();
	raftfix_replica_close(r);
	raftfix_replica_open(r);
	ck_assert_uint_eq(store_applied_version(r->store), 50);
	ck_assert_uint_eq(r->fsm.epoch, 2);
	ck_assert_uint_eq(replay(r, 0, n_props), 0);
	ck_assert_uint_eq(r->fsm.skipped_entries, n_props);
	ck_assert_uint_eq(r->fsm.applied_entries, 0);
	expect_all_dumps(HISTORY);
}
END_TEST

/* A replica rebuilt from an empty store, restarted half-way through the
 * replay, takes every fencing decision the live replicas took. */
START_TEST(test_replay_from_scratch_repeats_fencing)
{
	struct raftfix_replica *r = &c.reps[2];

	commit_fenced_history();
	raftfix_replica_close(r);
	testutil_rmtree(r->dir);
	free(r->dir);
	r->dir = testutil_tmpdir("raftfix");
	raftfix_replica_open(r);
	ck_assert_uint_eq(store_applied_version(r->store), 0);
	ck_assert_uint_eq(replay(r, 0, 3), 0); /* up to epoch 2 */
	raftfix_replica_close(r);
	raftfix_replica_open(r);
	ck_assert_uint_eq(r->fsm.epoch, 2);
	ck_assert_uint_eq(replay(r, 0, n_props), 1); /* the stale batch */
	ck_assert_uint_eq(r->fsm.skipped_entries, 3);
	ck_assert_uint_eq(r->fsm.fenced_entries, 1);
	ck_assert_uint_eq(r->fenced_version, 40);
	ck_assert_uint_eq(r->fsm.applied_entries, 1);
	expect_all_dumps(HISTORY);
}
END_TEST

/* ---- snapshots ---- */

/* The version r reports as having written key. */
static uint64_t written_at(struct raftfix_replica *r, const char *key)
{
	const uint8_t *val;
	uint32_t len;
	uint64_t found = 0;

	ck_assert_int_eq(store_get(r->store, key, strlen(key),
				   store_applied_version(r->store), &val, &len,
				   &found),
			 RS_OK);
	return found;
}

START_TEST(test_follower_catches_up_by_snapshot)
{
	struct raftfix_replica *lagging = &c.reps[2];
	char key[16], val[16];
	struct proposal *p;

	for (unsigned i = 0; i < N; i++) {
		raft_set_snapshot_threshold(raftfix_raft(&c, i), 4);
		raft_set_snapshot_trailing(raftfix_raft(&c, i), 1);
	}
	/* Down before the epoch too: it must come with the snapshot. */
	raft_fixture_kill(&c.fx, 2);
	commit_on(0, 0x3, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	for (unsigned i = 0; i < 12; i++) {
		snprintf(key, sizeof key, "k%02u", i % 5);
		snprintf(val, sizeof val, "v%u", i);
		commit_on(0, 0x3, FSM_ENTRY_BATCH, 20 + 10 * i, 1, key, val);
	}
	ck_assert_uint_ge(c.reps[0].fsm.snapshots, 1);
	ck_assert_uint_eq(lagging->fsm.applied_entries, 0);
	ck_assert_uint_eq(lagging->fsm.epoch, 0);

	raft_fixture_revive(&c.fx, 2);
	raftfix_step_until_applied(&c, raftfix_all(&c),
				   raft_last_index(raftfix_raft(&c, 0)),
				   WAIT_MS);
	ck_assert_uint_eq(lagging->fsm.restores, 1);
	ck_assert_uint_eq(lagging->restored_calls, 1);
	ck_assert_uint_ge(lagging->restored_version, 20);
	ck_assert_uint_eq(store_applied_version(lagging->store), 130);
	ck_assert_uint_eq(lagging->fsm.epoch, 1);
	ck_assert_uint_eq(store_applied_epoch(lagging->store), 1);
	expect_all_hold("k00=v10\nk01=v11\nk02=v7\nk03=v8\nk04=v9\n" EPOCH_KEY
			"=1\n",
			false);
	/* What the log applied keeps its versions; what the snapshot brought
	 * carries the snapshot's (mvcc.h). */
	for (unsigned i = 0; i < 2; i++) {
		char *got = raftfix_dump(&c.reps[i], true);
		ck_assert_str_eq(got, "k00=v10@120\nk01=v11@130\nk02=v7@90\n"
				      "k03=v8@100\nk04=v9@110\n" EPOCH_KEY
				      "=1@10\n");
		free(got);
	}
	ck_assert_uint_eq(written_at(lagging, "k02"),
			  lagging->restored_version);

	/* The epoch came with the snapshot: the restored replica fences as
	 * the others do. */
	p = commit(0, FSM_ENTRY_BATCH, 200, 0, "k00", "epoch zero");
	ck_assert_ptr_eq(p->result, fsm_result_fenced());
	ck_assert_uint_eq(lagging->fsm.fenced_entries, 1);
	raftfix_expect(lagging, "k00", "v10");
}
END_TEST

/* A snapshot at or below what the store holds is not installed again; a
 * damaged one is refused. */
START_TEST(test_restore_of_older_or_damaged_snapshot)
{
	struct raftfix_replica *r = &c.reps[1];
	struct raft_buffer *bufs = NULL;
	struct raft_buffer copy;
	unsigned n = 0;

	commit(0, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	commit(0, FSM_ENTRY_BATCH, 20, 1, "a", "x");
	ck_assert_int_eq(c.reps[0].fsm.raft.snapshot(&c.reps[0].fsm.raft, &bufs,
						      &n),
			 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(rs_get_u64((uint8_t *)bufs[0].base + 16), 20);
	ck_assert_uint_eq(rs_get_u64((uint8_t *)bufs[0].base + 24), 1);

	copy.len = bufs[0].len;
	copy.base = raft_malloc(copy.len);
	memcpy(copy.base, bufs[0].base, copy.len);
	ck_assert_int_eq(r->fsm.raft.restore(&r->fsm.raft, &copy), 0);
	ck_assert_uint_eq(r->fsm.restores, 0);
	ck_assert_uint_eq(r->restored_calls, 0);

	((uint8_t *)bufs[0].base)[FSM_SNAPSHOT_HEADER] ^= 0x01;
	ck_assert_int_eq(r->fsm.raft.restore(&r->fsm.raft, &bufs[0]),
			 RAFT_MALFORMED);
	ck_assert_uint_eq(r->fsm.restores, 0);
	expect_all_dumps("a=x@20\n" EPOCH_KEY "=1@10\n");
	raft_free(bufs[0].base);
	raft_free(bufs);
}
END_TEST

/* ---- a follower with a snapshot, a leader without one (raftmend.h) ---- */

static bool raft_is_unavailable(void *arg)
{
	return raft_state(arg) == RAFT_UNAVAILABLE;
}

/* Server 1 compacts its log (entry 1 gone), servers 0 and 2 do not.  Then
 * server 2 takes over while it cannot reach server 1, so its first message
 * to it fails and its next index for it falls to match + 1 = 1: once they
 * are reconnected it sends server 1 the whole log from index 1, previous
 * index 0 (c-raft guard 12).  Returns the new leader's last index. */
static raft_index follower_with_snapshot_meets_leader_without(void)
{
	struct raft *f = raftfix_raft(&c, 1), *l = raftfix_raft(&c, 2);
	char key[16], val[16];

	for (unsigned i = 0; i < N; i++) {
		raft_set_snapshot_threshold(raftfix_raft(&c, i),
					    i == 1 ? 4 : 100000);
		raft_set_snapshot_trailing(raftfix_raft(&c, i), 1);
		/* as the node runs: server 1, cut off from the new leader,
		 * must not bump its term */
		raft_set_pre_vote(raftfix_raft(&c, i), true);
	}
	commit(0, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	for (unsigned i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "k%02u", i % 3);
		snprintf(val, sizeof val, "v%u", i);
		commit(0, FSM_ENTRY_BATCH, 20 + 10 * i, 1, key, val);
	}
	ck_assert_uint_ge(c.reps[1].fsm.snapshots, 1);
	ck_assert_uint_gt(f->log.offset, 0);
	ck_assert_uint_eq(l->log.snapshot.last_index, 0);
	ck_assert_uint_eq(raftfix_raft(&c, 0)->log.snapshot.last_index, 0);

	raft_fixture_disconnect(&c.fx, 1, 2);
	raft_fixture_disconnect(&c.fx, 2, 1);
	raft_fixture_depose(&c.fx);
	raft_fixture_elect(&c.fx, 2);
	ck_assert_int_eq(raft_state(l), RAFT_LEADER);
	/* progress[1] is server 1's (configuration order: ids 1, 2, 3) */
	ck_assert_uint_eq(l->leader_state.progress[1].match_index, 0);
	ck_assert_uint_eq(l->leader_state.progress[1].next_index, 1);
	/* Server 1 heard no leader while the election ran: restart its
	 * election timer, so that the new leader reaches it first. */
	f->election_timer_start = f->io->time(f->io);
	raft_fixture_reconnect(&c.fx, 1, 2);
	raft_fixture_reconnect(&c.fx, 2, 1);
	return raft_last_index(l);
}

/* The bug the mend is for, as c-raft 0.15 has it: the follower fails the
 * append ("No log entries found at index 1") and turns unavailable, or
 * its error path crashes the process (as it does in the fixture).  Either
 * way the test's process exits with UNMENDED_EXIT once c-raft has said
 * why.  (If a c-raft update fixes it, this test fails, and guard 12 can
 * go.) */
#define UNMENDED_EXIT 43
#define UNMENDED_WANT "No log entries found at index 1"

static struct raft *unmended_follower;

/* Exit without the teardown (c-raft's state may be broken), but leave no
 * directories behind. */
static void unmended_exit(int code)
{
	for (unsigned i = 0; i < N; i++)
		testutil_rmtree(c.reps[i].dir);
	_exit(code);
}

static void unmended_crashed(int sig)
{
	(void)sig;
	unmended_exit(strstr(raft_errmsg(unmended_follower), UNMENDED_WANT) !=
				      NULL
			      ? UNMENDED_EXIT
			      : UNMENDED_EXIT + 1);
}

START_TEST(test_unmended_follower_with_snapshot_stops)
{
	struct raft *f = raftfix_raft(&c, 1);

	unmended_follower = f;
	follower_with_snapshot_meets_leader_without();
	signal(SIGSEGV, unmended_crashed);
	signal(SIGABRT, unmended_crashed);
	ck_assert(raftfix_step_until(&c, raft_is_unavailable, f, WAIT_MS));
	ck_assert_ptr_nonnull(strstr(raft_errmsg(f), UNMENDED_WANT));
	ck_assert_uint_eq(raftmend_count(f->io), 0);
	unmended_exit(UNMENDED_EXIT);
}
END_TEST

static raft_index matched_last;

/* Has the new leader (server 2) matched server 1 up to matched_last? */
static bool leader_matched_server_1(void *arg)
{
	struct raft *l = arg;

	return raft_state(l) == RAFT_LEADER &&
	       l->leader_state.progress[1].match_index >= matched_last;
}

/* With the mend, the follower answers from its snapshot on, stays a
 * follower, takes what the new leader commits and ends with its store. */
START_TEST(test_mended_follower_with_snapshot_catches_up)
{
	struct raft *f = raftfix_raft(&c, 1);
	struct proposal *p;

	matched_last = follower_with_snapshot_meets_leader_without();
	ck_assert(raftfix_step_until(&c, leader_matched_server_1,
				     raftfix_raft(&c, 2), WAIT_MS));
	ck_assert_uint_ge(raftmend_count(f->io), 1);
	ck_assert_int_eq(raft_state(f), RAFT_FOLLOWER);
	/* and the new leader goes on replicating to it */
	p = commit(2, FSM_ENTRY_BATCH, 200, 1, "k00", "after");
	ck_assert_int_eq(p->status, 0);
	ck_assert_int_eq(raft_state(f), RAFT_FOLLOWER);
	expect_all_hold("k00=after\nk01=v7\nk02=v5\n" EPOCH_KEY "=1\n", false);
}
END_TEST

/* ---- fail-stop ---- */

#define FATAL_EXIT 42
#define FATAL_WANT "undecodable entry"

/* As the node's fatal path: _exit, so no atexit work runs (LeakSanitizer
 * would report the cluster the test leaves behind).  The exit code says
 * whether the message named the cause. */
static void exit_fatal(void *ctx, const char *msg)
{
	(void)ctx;
	for (unsigned i = 0; i < N; i++)
		testutil_rmtree(c.reps[i].dir);
	_exit(strstr(msg, FATAL_WANT) != NULL ? FATAL_EXIT : FATAL_EXIT + 1);
}

/* Apply entry `which` of a committed batch, damaged by flip(), on server
 * 1: the fsm must stop the process, never skip the entry. */
static void apply_damaged(void (*flip)(struct raft_buffer *buf))
{
	struct raftfix_replica *r = &c.reps[1];
	struct raft_buffer buf;
	void *result = NULL;

	commit(0, FSM_ENTRY_EPOCH, 10, 1, EPOCH_KEY, "1");
	buf = raftfix_entry(FSM_ENTRY_BATCH, 20, 1, "k", "v");
	flip(&buf);
	r->fsm.on_fatal = exit_fatal;
	r->fsm.raft.apply(&r->fsm.raft, &buf, &result);
	raft_free(buf.base);
	_exit(FATAL_EXIT + 2); /* applied or skipped: wrong */
}

static void flip_body_bit(struct raft_buffer *buf)
{
	((uint8_t *)buf->base)[buf->len - 9] ^= 0x10;
}

/* The entry ends in the value "v", so a zero last byte is padding. */
static void flip_padding(struct raft_buffer *buf)
{
	ck_assert_uint_eq(((uint8_t *)buf->base)[buf->len - 1], 0);
	((uint8_t *)buf->base)[buf->len - 1] = 0xff;
}

static void flip_kind(struct raft_buffer *buf)
{
	((uint8_t *)buf->base)[1] = 9;
}

START_TEST(test_damaged_entry_stops_the_process)
{
	apply_damaged(flip_body_bit);
}
END_TEST

START_TEST(test_dirty_padding_stops_the_process)
{
	apply_damaged(flip_padding);
}
END_TEST

START_TEST(test_unknown_kind_stops_the_process)
{
	apply_damaged(flip_kind);
}
END_TEST

/* ---- snapshots in steps (fsm_snapshot.c), on a real loop and thread ---- */

static uv_loop_t steps_loop;
static struct store *steps_store;
static struct fsm steps_fsm;
static char *steps_dir;

static void steps_fatal(void *ctx, const char *msg)
{
	(void)ctx;
	ck_abort_msg("fsm fatal error: %s", msg);
}

static void steps_setup(void)
{
	struct store_options so = {.sync = JOURNAL_SYNC_NONE,
				   .apply_on_accept = true};
	struct store_open_report rep;
	char errmsg[RS_ERRMSG_SIZE];

	steps_dir = testutil_tmpdir("fsm-steps");
	so.dir = steps_dir;
	ck_assert_int_eq(uv_loop_init(&steps_loop), 0);
	ck_assert_msg(store_open(&steps_store, &steps_loop, &so, &rep, errmsg) ==
			      RS_OK, "%s", errmsg);
	fsm_init(&steps_fsm, steps_store, NULL, NULL, steps_fatal, NULL);
	ck_assert_int_eq(fsm_snapshots_in_steps(&steps_fsm, &steps_loop), RS_OK);
	ck_assert_int_eq(steps_fsm.raft.version, 3);
}

static void steps_closed(void *arg)
{
	*(bool *)arg = true;
}

static void steps_teardown(void)
{
	bool done = false;

	fsm_close(&steps_fsm);
	uv_run(&steps_loop, UV_RUN_DEFAULT);
	store_close(steps_store, steps_closed, &done);
	while (!done)
		uv_run(&steps_loop, UV_RUN_ONCE);
	ck_assert_int_eq(uv_loop_close(&steps_loop), 0);
	testutil_rmtree(steps_dir);
	free(steps_dir);
}

/* One batch at version v: keys key-<from>..key-<from+n-1> = "<tag>-<i>",
 * and, if del is not NULL, a clear of that key, applied through the fsm. */
static void steps_apply(uint64_t v, unsigned from, unsigned n,
			const char *tag, const char *del)
{
	struct batch b;
	struct raft_buffer buf = {NULL, 0};
	char key[32], val[128];
	void *result = NULL;

	batch_init(&b);
	b.version = v;
	b.epoch = 0;
	for (unsigned i = from; i < from + n; i++) {
		int kl = snprintf(key, sizeof key, "key-%07u", i);
		int vl = snprintf(val, sizeof val, "%s-%u-%0*u", tag, i, 60, i);
		ck_assert_int_eq(batch_set(&b, key, (size_t)kl, val, (size_t)vl,
					   NULL), RS_OK);
	}
	if (del != NULL)
		ck_assert_int_eq(batch_clear(&b, del, strlen(del), NULL), RS_OK);
	ck_assert_int_eq(fsm_entry_encode(&b, FSM_ENTRY_BATCH, &buf), RS_OK);
	batch_free(&b);
	ck_assert_int_eq(steps_fsm.raft.apply(&steps_fsm.raft, &buf, &result), 0);
	ck_assert_ptr_null(result);
	raft_free(buf.base);
}

struct steps_worker {
	pthread_t thread;
	struct raft_buffer *bufs;
	unsigned n_bufs;
	int rv;
	volatile bool finished;
};

static void *steps_worker_main(void *arg)
{
	struct steps_worker *w = arg;

	w->rv = steps_fsm.raft.snapshot_async(&steps_fsm.raft, &w->bufs,
					       &w->n_bufs);
	__atomic_store_n(&w->finished, true, __ATOMIC_SEQ_CST);
	return NULL;
}

/* c-raft's order: snapshot on the loop, snapshot_async on a worker, which
 * the test runs while it applies more batches between loop turns. */
static void steps_take(struct steps_worker *w, unsigned *turns,
		       void (*between)(unsigned turn))
{
	struct raft_buffer *bufs = NULL;
	unsigned n_bufs = 7;

	ck_assert_int_eq(steps_fsm.raft.snapshot(&steps_fsm.raft, &bufs,
						 &n_bufs), 0);
	ck_assert_ptr_null(bufs);
	ck_assert_uint_eq(n_bufs, 0);
	memset(w, 0, sizeof *w);
	ck_assert_int_eq(pthread_create(&w->thread, NULL, steps_worker_main, w),
			 0);
	for (*turns = 0; !__atomic_load_n(&w->finished, __ATOMIC_SEQ_CST);
	     (*turns)++) {
		if (between != NULL)
			between(*turns);
		uv_run(&steps_loop, UV_RUN_NOWAIT);
	}
	ck_assert_int_eq(pthread_join(w->thread, NULL), 0);
}

static void steps_writes_between(unsigned turn)
{
	char del[32];

	/* Overwrite keys before and after wherever the encoding is, add new
	 * ones at both ends, delete one: none of it is in the image. */
	snprintf(del, sizeof del, "key-%07u", 1000 + turn);
	steps_apply(200000 + turn, turn * 7 % 20000, 50, "later", del);
	steps_apply(400000 + turn, 30000 + turn * 3, 3, "new", NULL);
}

/* The image is the state at the snapshot's version, byte for byte what a
 * one-go encoding at that version gives, though batches went on applying
 * while it was encoded over many loop turns. */
START_TEST(test_snapshot_in_steps_is_the_state_at_its_version)
{
	struct steps_worker w;
	struct rs_buf want;
	const uint8_t *p;
	unsigned turns;
	uint64_t v;

	for (unsigned i = 0; i < 20; i++) /* 20,000 keys of ~80 bytes */
		steps_apply(1000 + i, i * 1000, 1000, "first", NULL);
	v = store_accepted_version(steps_store);
	ck_assert_uint_eq(v, 1019);
	steps_take(&w, &turns, steps_writes_between);
	ck_assert_int_eq(w.rv, 0);
	ck_assert_uint_eq(w.n_bufs, 1);
	ck_assert_uint_gt(turns, 1); /* it took more than one turn */
	ck_assert_uint_gt(steps_fsm.snap.steps, 1);
	p = w.bufs[0].base;
	ck_assert_mem_eq(p, FSM_SNAPSHOT_MAGIC, 8);
	ck_assert_uint_eq(rs_get_u32(p + 8), FSM_SNAPSHOT_FORMAT);
	ck_assert_uint_eq(rs_get_u64(p + 16), v);
	ck_assert_uint_eq(rs_get_u32(p + 12),
			  crc32c(p + FSM_SNAPSHOT_HEADER,
				 w.bufs[0].len - FSM_SNAPSHOT_HEADER));
	rs_buf_init(&want);
	ck_assert_int_eq(mvcc_image_encode(store_index(steps_store), v, &want),
			 RS_OK);
	ck_assert_uint_eq(w.bufs[0].len - FSM_SNAPSHOT_HEADER, want.len);
	ck_assert(memcmp(p + FSM_SNAPSHOT_HEADER, want.data, want.len) == 0);
	/* ... and not the state now. */
	want.len = 0;
	ck_assert_int_eq(mvcc_image_encode(store_index(steps_store),
					   store_accepted_version(steps_store),
					   &want), RS_OK);
	ck_assert(w.bufs[0].len - FSM_SNAPSHOT_HEADER != want.len ||
		  memcmp(p + FSM_SNAPSHOT_HEADER, want.data, want.len) != 0);
	rs_buf_free(&want);
	ck_assert_int_eq(steps_fsm.raft.snapshot_finalize(&steps_fsm.raft,
							  &w.bufs, &w.n_bufs),
			 0);
	ck_assert_uint_eq(steps_fsm.snapshots, 1);
	ck_assert(!steps_fsm.snap.running);
	/* The image (over 1 MiB) goes to a worker to be freed; the loop
	 * keeps nothing of it (teardown runs the loop dry; ASan checks that
	 * the worker freed it). */
	ck_assert_uint_eq(steps_fsm.snap.frees_off_loop, 1);
	ck_assert_ptr_null(steps_fsm.snap.img.data);
}
END_TEST

static void steps_slide_window(unsigned turn)
{
	if (turn == 0) /* 6,000,000 versions later: the image's is gone */
		steps_apply(1019 + 6000000, 0, 1, "far", NULL);
}

/* The snapshot's version leaves the read window before the encoding is
 * over: c-raft is told RAFT_BUSY (it takes another later), nothing leaks,
 * and the next snapshot works. */
START_TEST(test_snapshot_in_steps_out_of_window_is_busy)
{
	struct steps_worker w;
	unsigned turns;

	for (unsigned i = 0; i < 20; i++)
		steps_apply(1000 + i, i * 1000, 1000, "first", NULL);
	steps_take(&w, &turns, steps_slide_window);
	ck_assert_int_eq(w.rv, RAFT_BUSY);
	ck_assert_int_eq(steps_fsm.raft.snapshot_finalize(&steps_fsm.raft,
							  &w.bufs, &w.n_bufs),
			 0);
	ck_assert_uint_eq(steps_fsm.snapshots, 0);
	steps_take(&w, &turns, NULL);
	ck_assert_int_eq(w.rv, 0);
	ck_assert_uint_eq(rs_get_u64((uint8_t *)w.bufs[0].base + 16),
			  store_accepted_version(steps_store));
	ck_assert_int_eq(steps_fsm.raft.snapshot_finalize(&steps_fsm.raft,
							  &w.bufs, &w.n_bufs),
			 0);
	ck_assert_uint_eq(steps_fsm.snapshots, 1);
}
END_TEST

/* ---- snapshots by bytes of log (snappolicy.h) ---- */

START_TEST(test_policy_budget)
{
	struct snappolicy p;

	snappolicy_init(&p, 64u << 20);
	ck_assert_uint_eq(snappolicy_budget(&p), SNAPPOLICY_MIN_LOG_BYTES);
	snappolicy_restored(&p, 100u << 20); /* half the state */
	ck_assert_uint_eq(snappolicy_budget(&p), 50u << 20);
	snappolicy_restored(&p, 1u << 30); /* capped */
	ck_assert_uint_eq(snappolicy_budget(&p), 64u << 20);
	snappolicy_init(&p, 1u << 20); /* a cap below the floor wins */
	ck_assert_uint_eq(snappolicy_budget(&p), 1u << 20);
}
END_TEST

START_TEST(test_policy_due_running_and_failed)
{
	struct snappolicy p;

	snappolicy_init(&p, 1000);
	ck_assert(!snappolicy_applied(&p, 600));
	ck_assert(snappolicy_applied(&p, 400)); /* 1000: due */
	snappolicy_begun(&p);
	ck_assert_uint_eq(p.log_bytes, 0);
	/* Not while one is under way, however much is applied. */
	ck_assert(!snappolicy_applied(&p, 5000));
	/* It failed: what it would have freed counts again. */
	snappolicy_ended(&p, false, 0);
	ck_assert_uint_eq(p.log_bytes, 6000);
	ck_assert(snappolicy_applied(&p, 1));
	snappolicy_begun(&p);
	snappolicy_ended(&p, true, 300);
	ck_assert_uint_eq(p.log_bytes, 0);
	ck_assert_uint_eq(p.state_bytes, 300);
	ck_assert(!snappolicy_applied(&p, 999));
	/* A restore starts the count over. */
	snappolicy_restored(&p, 10);
	ck_assert_uint_eq(p.log_bytes, 0);
	ck_assert(!snappolicy_applied(&p, 999));
	ck_assert(snappolicy_applied(&p, 1));
}
END_TEST

/* Jitter: each cycle's budget and entry cap lose a cut below a quarter,
 * never more, never an increase; cuts differ between cycles and between
 * seeds (so replicas drift apart); begun and restored draw, a failed
 * snapshot keeps its cycle's cut. */
START_TEST(test_policy_jitter)
{
	struct snappolicy p, q;
	const uint64_t full = 64u << 20;
	unsigned distinct_cycles = 0, distinct_seeds = 0;
	uint64_t lo = full, hi = 0;

	snappolicy_init(&p, full);
	snappolicy_restored(&p, 1u << 30); /* budget capped at 64 MiB */
	ck_assert_uint_eq(snappolicy_budget(&p), full);
	ck_assert_uint_eq(snappolicy_entry_cap(&p, 65536), 65536);
	snappolicy_jitter(&p, 42);
	for (unsigned i = 0; i < 400; i++) {
		uint64_t b = snappolicy_budget(&p);
		unsigned cap = snappolicy_entry_cap(&p, 65536);

		ck_assert_uint_le(b, full);
		ck_assert_uint_gt(b, full - full / 4);
		ck_assert_uint_le(cap, 65536);
		ck_assert_uint_gt(cap, 65536 - 65536 / 4);
		lo = b < lo ? b : lo;
		hi = b > hi ? b : hi;
		snappolicy_begun(&p); /* a new cycle, a new cut */
		b = snappolicy_budget(&p);
		snappolicy_ended(&p, false, 0); /* failed: the same cut */
		ck_assert_uint_eq(snappolicy_budget(&p), b);
		snappolicy_begun(&p);
		snappolicy_ended(&p, true, 1u << 30);
		distinct_cycles += snappolicy_budget(&p) != b;
	}
	/* The cuts spread over the range: 400 draws below a quarter. */
	ck_assert_uint_lt(lo, full - full / 5);
	ck_assert_uint_gt(hi, full - full / 20);
	ck_assert_uint_gt(distinct_cycles, 390);
	/* A restore draws too. */
	{
		uint64_t b = snappolicy_budget(&p);
		unsigned same = 0;
		for (unsigned i = 0; i < 50; i++) {
			snappolicy_restored(&p, 1u << 30);
			same += snappolicy_budget(&p) == b;
			b = snappolicy_budget(&p);
		}
		ck_assert_uint_lt(same, 3);
	}
	/* Seeds differ: other cuts. */
	for (uint64_t seed = 1; seed <= 50; seed++) {
		snappolicy_init(&p, full);
		snappolicy_init(&q, full);
		snappolicy_jitter(&p, seed);
		snappolicy_jitter(&q, seed + 1000);
		distinct_seeds += snappolicy_budget(&p) != snappolicy_budget(&q);
	}
	ck_assert_uint_gt(distinct_seeds, 45);
	/* Tiny limits stay at least 1. */
	snappolicy_init(&p, 1);
	snappolicy_jitter(&p, 7);
	for (unsigned i = 0; i < 100; i++, snappolicy_begun(&p)) {
		ck_assert_uint_eq(snappolicy_budget(&p), 1);
		ck_assert_uint_eq(snappolicy_entry_cap(&p, 1), 1);
		ck_assert_uint_ge(snappolicy_entry_cap(&p, 3), 2);
	}
}
END_TEST

/* On c-raft: every replica takes its snapshot right after the entry that
 * brings the log since the last one to the budget, and between snapshots
 * c-raft's threshold is the entry cap; the cap still works alone. */
START_TEST(test_snapshots_come_by_bytes_of_log)
{
	char key[16], val[300];
	uint64_t model_log = 0;
	unsigned model_snaps = 0;
	const uint64_t budget = 2000;
	uint64_t rnd = testutil_seed();

	val[sizeof val - 1] = '\0';
	for (unsigned i = 0; i < N; i++)
		fsm_snapshot_by_bytes(&c.reps[i].fsm, raftfix_raft(&c, i),
				      budget, 1000);
	for (unsigned i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "k%02u", i);
		/* Values of 50..299 bytes that do not compress (an entry is
		 * LZ4-compressed when that makes it smaller): entries of
		 * unequal weight. */
		for (unsigned j = 0; j < sizeof val - 1; j++) {
			rnd = rnd * 6364136223846793005u + 1442695040888963407u;
			val[j] = (char)('!' + (rnd >> 33) % 90);
		}
		val[50 + (i * 37) % 250] = '\0';
		commit(0, i == 0 ? FSM_ENTRY_EPOCH : FSM_ENTRY_BATCH,
		       10 * (i + 1), 1, key, val);
		model_log += entries[n_props - 1].len;
		if (model_log >= budget) {
			model_snaps++;
			model_log = 0;
		}
		for (unsigned r = 0; r < N; r++) {
			ck_assert_uint_eq(c.reps[r].fsm.snapshots, model_snaps);
			ck_assert_uint_eq(fsm_log_bytes(&c.reps[r].fsm),
					  model_log);
			ck_assert_uint_eq(raftfix_raft(&c, r)->snapshot.threshold,
					  1000);
		}
	}
	ck_assert_uint_ge(model_snaps, 2);
	/* A cap of 4 entries and a budget never reached: by entries. */
	for (unsigned i = 0; i < N; i++)
		fsm_snapshot_by_bytes(&c.reps[i].fsm, raftfix_raft(&c, i),
				      1u << 30, 4);
	for (unsigned i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "e%02u", i);
		commit(0, FSM_ENTRY_BATCH, 300 + 10 * i, 1, key, "v");
	}
	for (unsigned r = 0; r < N; r++)
		ck_assert_uint_ge(c.reps[r].fsm.snapshots, model_snaps + 1);
}
END_TEST

/* On c-raft with jitter: each replica's threshold is its cut cap, and the
 * replicas, seeded differently, take their snapshots at different entries
 * (without jitter all three take each one at the same entry, above). */
START_TEST(test_jittered_replicas_snapshot_apart)
{
	char key[16];
	uint64_t last[N] = {0}, at[N][64];
	unsigned n_at[N] = {0}, apart = 0;

	for (unsigned i = 0; i < N; i++) {
		fsm_snapshot_by_bytes(&c.reps[i].fsm, raftfix_raft(&c, i),
				      1u << 30, 16);
		fsm_snapshot_jitter(&c.reps[i].fsm, 1000 + i);
		ck_assert_uint_le(raftfix_raft(&c, i)->snapshot.threshold, 16);
		ck_assert_uint_gt(raftfix_raft(&c, i)->snapshot.threshold, 12);
	}
	for (unsigned e = 0; e < 60; e++) {
		snprintf(key, sizeof key, "j%03u", e);
		commit(0, e == 0 ? FSM_ENTRY_EPOCH : FSM_ENTRY_BATCH,
		       10 * (e + 1), 1, key, "v");
		for (unsigned r = 0; r < N; r++) {
			if (c.reps[r].fsm.snapshots != last[r] && n_at[r] < 64)
				at[r][n_at[r]++] = e;
			last[r] = c.reps[r].fsm.snapshots;
			ck_assert_uint_le(raftfix_raft(&c, r)->snapshot.threshold, 16);
		}
	}
	for (unsigned r = 0; r < N; r++)
		ck_assert_uint_ge(n_at[r], 3); /* every 13..16 entries */
	/* Compare the first three snapshots of replicas 0 and 1, 0 and 2. */
	for (unsigned r = 1; r < N; r++)
		for (unsigned k = 0; k < 3; k++)
			apart += at[0][k] != at[r][k];
	ck_assert_uint_ge(apart, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fsm");
	TCase *tc = testutil_tcase(s, "apply", setup, teardown, 30);

	tcase_add_test(tc, test_batches_apply_on_every_replica);
	tcase_add_test(tc, test_batch_before_any_epoch_needs_epoch_zero);
	tc = testutil_tcase(s, "fencing", setup, teardown, 30);
	tcase_add_test(tc, test_stale_epoch_batch_fenced_on_every_replica);
	tcase_add_test(tc, test_fencing_follows_log_order);
	tcase_add_test(tc, test_lagging_replica_fences_the_same_way);
	tc = testutil_tcase(s, "idempotence", setup, teardown, 30);
	tcase_add_test(tc, test_entry_applied_again_changes_nothing);
	tcase_add_test(tc, test_replay_after_reopen_changes_nothing);
	tcase_add_test(tc, test_replay_from_scratch_repeats_fencing);
	tc = testutil_tcase(s, "snapshot", setup, teardown, 30);
	tcase_add_test(tc, test_follower_catches_up_by_snapshot);
	tcase_add_test(tc, test_restore_of_older_or_damaged_snapshot);
	tcase_add_test(tc, test_snapshots_come_by_bytes_of_log);
	tcase_add_test(tc, test_jittered_replicas_snapshot_apart);
	tcase_add_test(tc, test_mended_follower_with_snapshot_catches_up);
	tc = testutil_tcase(s, "unmended", setup_unmended, teardown, 30);
	tcase_add_exit_test(tc, test_unmended_follower_with_snapshot_stops,
			    UNMENDED_EXIT);
	tc = testutil_tcase(s, "policy", NULL, NULL, 30);
	tcase_add_test(tc, test_policy_budget);
	tcase_add_test(tc, test_policy_due_running_and_failed);
	tcase_add_test(tc, test_policy_jitter);
	tc = testutil_tcase(s, "snapshot-steps", steps_setup, steps_teardown, 30);
	tcase_add_test(tc, test_snapshot_in_steps_is_the_state_at_its_version);
	tcase_add_test(tc, test_snapshot_in_steps_out_of_window_is_busy);
	tc = testutil_tcase(s, "fail-stop", setup, NULL, 30);
	tcase_add_exit_test(tc, test_damaged_entry_stops_the_process,
			    FATAL_EXIT);
	tcase_add_exit_test(tc, test_dirty_padding_stops_the_process,
			    FATAL_EXIT);
	tcase_add_exit_test(tc, test_unknown_kind_stops_the_process,
			    FATAL_EXIT);
	return testutil_run_suite(s);
}
