/* raftuvrig: see raftuvrig.h. */
#include "tests/unit/raftuvrig.h"

#include <check.h>

void raftuvrig_open(struct raftuvrig *r, const char *dir,
			   size_t segment_size, bool compress_snapshots)
{
	raft_term term;
	raft_id vote;
	struct raft_snapshot *snap;
	raft_index start;
	struct raft_entry *entries;
	size_t n;

	ck_assert_int_eq(uv_loop_init(&r->loop), 0);
	ck_assert_int_eq(raft_uv_tcp_init(&r->transport, &r->loop), 0);
	ck_assert_int_eq(raft_uv_init(&r->io, &r->loop, dir, &r->transport),
			 0);
	if (segment_size > 0)
		raft_uv_set_segment_size(&r->io, segment_size);
	raft_uv_set_snapshot_compression(&r->io, compress_snapshots);
	ck_assert_int_eq(r->io.init(&r->io, 1, "127.0.0.1:9"), 0);
	raft_configuration_init(&r->conf);
	ck_assert_int_eq(raft_configuration_add(&r->conf, 1, "127.0.0.1:9",
						RAFT_VOTER),
			 0);
	ck_assert_int_eq(r->io.bootstrap(&r->io, &r->conf), 0);
	ck_assert_int_eq(r->io.load(&r->io, &term, &vote, &snap, &start,
				    &entries, &n),
			 0);
	ck_assert_ptr_null(snap);
	for (size_t i = 0; i < n; i++)
		raft_free(entries[i].batch);
	raft_free(entries);
}

static void raftuvrig_closed(struct raft_io *io)
{
	*(bool *)io->data = true;
}

void raftuvrig_close(struct raftuvrig *r)
{
	bool closed = false;

	raft_configuration_close(&r->conf);
	r->io.data = &closed;
	r->io.close(&r->io, raftuvrig_closed);
	while (!closed)
		uv_run(&r->loop, UV_RUN_ONCE);
	raft_uv_tcp_close(&r->transport);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&r->loop), 0);
}
