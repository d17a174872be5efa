/* raftcall: see raftcall.h. */
#include "raftstore/raftcall.h"

#include <assert.h>
#include <stdlib.h>

#include "raftstore/lib/log.h"

static unsigned raftcall_depth;
static const char *raftcall_where; /* the outermost callback running */

void raftcall_cb_enter(const char *what)
{
	assert(what != NULL);
	if (raftcall_depth++ == 0)
		raftcall_where = what;
}

void raftcall_cb_leave(void)
{
	assert(raftcall_depth > 0);
	if (--raftcall_depth == 0)
		raftcall_where = NULL;
}

bool raftcall_in_callback(void)
{
	return raftcall_depth > 0;
}

/* A request from inside a callback would corrupt c-raft: stop here, with
 * the evidence, rather than later with a wild pointer. */
static void raftcall_check(const char *request)
{
	if (raftcall_depth == 0)
		return;
	log_error("raft.reentry", "request=%s callback=\"%s\" "
		  "reason=\"a c-raft request from inside a c-raft callback\"",
		  request, raftcall_where);
	abort();
}

int raftcall_apply(struct raft *r, struct raft_apply *req,
		   const struct raft_buffer bufs[], unsigned n,
		   raft_apply_cb cb)
{
	assert(r != NULL && req != NULL && n > 0);
	raftcall_check("raft_apply");
	return raft_apply(r, req, bufs, n, cb);
}

int raftcall_barrier(struct raft *r, struct raft_barrier *req,
		     raft_barrier_cb cb)
{
	assert(r != NULL && req != NULL);
	raftcall_check("raft_barrier");
	return raft_barrier(r, req, cb);
}
