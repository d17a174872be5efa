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

int raftcall_add(struct raft *r, struct raft_change *req, raft_id id,
		 const char *address, raft_change_cb cb)
{
	assert(r != NULL && req != NULL && id != 0 && address != NULL);
	raftcall_check("raft_add");
	return raft_add(r, req, id, address, cb);
}

int raftcall_assign(struct raft *r, struct raft_change *req, raft_id id,
		    int role, raft_change_cb cb)
{
	assert(r != NULL && req != NULL && id != 0);
	raftcall_check("raft_assign");
	return raft_assign(r, req, id, role, cb);
}

int raftcall_remove(struct raft *r, struct raft_change *req, raft_id id,
		    raft_change_cb cb)
{
	assert(r != NULL && req != NULL && id != 0);
	raftcall_check("raft_remove");
	return raft_remove(r, req, id, cb);
}

int raftcall_transfer(struct raft *r, struct raft_transfer *req, raft_id id,
		      raft_transfer_cb cb)
{
	assert(r != NULL && req != NULL);
	raftcall_check("raft_transfer");
	return raft_transfer(r, req, id, cb);
}
