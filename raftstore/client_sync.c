/*
 * client_sync: the blocking wrapper (rs_sync_*), on the async API.
 *
 * Each handle runs a private loop and its own client; a call submits one
 * op and runs the loop until that op's callback has run, so nothing of
 * the client runs between calls.  A watch the caller stops is cancelled
 * on its pooled connection, and the call returns once the cancel's answer
 * is read (or the op timeout passed), so that no unread answer is left on
 * that connection to hide its close from the next call (sync_begin).  The
 * wrapper uses only client.h, except for an assertion on the op's final
 * state and that wait for the cancel.
 */
#include "raftstore/client_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rs_sync {
	uv_loop_t loop;
	struct rs_client *client;
};

/* One blocking call: the op and what its callback reports. */
struct sync_call {
	struct rs_op op;
	uv_loop_t *loop;
	bool done;
	int status;
	int (*fn)(void *ctx, const struct rs_result *ev);
	void *ctx;
};

/* Every completion stops the loop: an op finished by its timer runs
 * before the loop polls, and UV_RUN_ONCE would then block in the poll for
 * as long as an idle connection stays quiet. */
static void sync_op_done(struct rs_op *op)
{
	struct sync_call *call = op->data;

	assert(&call->op == op);
	assert(!call->done);
	call->done = true;
	uv_stop(call->loop);
}

static void sync_closed(void *arg)
{
	struct rs_sync *s = arg;

	assert(s->client != NULL);
	s->client = NULL;
	uv_stop(&s->loop);
}

static void sync_run(struct rs_sync *s, const bool *done)
{
	assert(s != NULL && done != NULL);
	while (!*done) {
		int alive = uv_run(&s->loop, UV_RUN_ONCE);
		/* An op in flight holds a timer, so the loop cannot run dry
		 * before the op is done. */
		assert(alive || *done);
		(void)alive;
	}
}

/* Before submitting: let the loop see what arrived while nobody ran it.
 * A server may have closed an idle connection meanwhile; finding out now
 * sends the op to a fresh one instead of writing it into a dead socket,
 * which for a COMMIT would make its outcome unknown. */
static void sync_begin(struct rs_sync *s, struct sync_call *call)
{
	assert(s != NULL && call != NULL);
	memset(call, 0, sizeof *call);
	call->op.data = call;
	call->loop = &s->loop;
	uv_run(&s->loop, UV_RUN_NOWAIT);
	assert(!call->done);
}

/* Run `call` (submitted with result rv) to completion into *res. */
static int sync_finish(struct rs_sync *s, struct sync_call *call, int rv,
		       struct rs_result *res)
{
	assert(s != NULL && res != NULL);
	if (rv != RS_OK) {
		rs_result_init(res);
		res->status = rv;
		snprintf(res->message, sizeof res->message, "%s",
			 rs_strerror(rv));
		return rv;
	}
	sync_run(s, &call->done);
	*res = call->op.result; /* the caller owns it now */
	assert(res->status == call->op.result.status);
	return res->status;
}

int rs_sync_open(struct rs_sync **out, const struct rs_client_options *o,
		 char *errmsg)
{
	struct rs_sync *s;
	int rv;

	assert(out != NULL && o != NULL);
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return RS_ENOMEM;
	rv = uv_loop_init(&s->loop);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "loop init: %s", uv_strerror(rv));
		rv = RS_EIO;
		goto err_free;
	}
	rv = rs_client_create(&s->client, &s->loop, o, errmsg);
	if (rv != RS_OK)
		goto err_loop;
	*out = s;
	return RS_OK;
err_loop:
	if (uv_loop_close(&s->loop) != 0)
		assert(false); /* nothing was opened on it */
err_free:
	free(s);
	return rv;
}

void rs_sync_close(struct rs_sync *s)
{
	int rv;

	assert(s != NULL && s->client != NULL);
	rs_client_close(s->client, sync_closed, s);
	/* Every handle is closing, so the loop runs dry once they are. */
	uv_run(&s->loop, UV_RUN_DEFAULT);
	assert(s->client == NULL);
	rv = uv_loop_close(&s->loop);
	assert(rv == 0); /* every handle is closed */
	(void)rv;
	free(s);
}

struct rs_client *rs_sync_client(struct rs_sync *s)
{
	assert(s != NULL);
	return s->client;
}

int rs_sync_get(struct rs_sync *s, const void *key, size_t key_len,
		enum wire_read_mode mode, uint64_t read_version,
		struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_get(s->client, &call.op, key, key_len,
					 mode, read_version, sync_op_done),
			   res);
}

int rs_sync_range(struct rs_sync *s, const void *begin, size_t begin_len,
		  const void *end, size_t end_len, uint32_t limit,
		  enum wire_read_mode mode, uint64_t read_version,
		  struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_range(s->client, &call.op, begin,
					   begin_len, end, end_len, limit,
					   mode, read_version, sync_op_done),
			   res);
}

int rs_sync_grv(struct rs_sync *s, struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_grv(s->client, &call.op, sync_op_done),
			   res);
}

int rs_sync_commit(struct rs_sync *s, uint64_t read_version,
		   const struct wire_bytes *begins, const struct wire_bytes *ends,
		   uint32_t n_ranges, const struct batch *mutations,
		   struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_commit(s->client, &call.op, read_version,
					    begins, ends, n_ranges, mutations,
					    sync_op_done),
			   res);
}

int rs_sync_info(struct rs_sync *s, uint8_t type, int endpoint_index,
		 struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_info(s->client, &call.op, type,
					  endpoint_index, sync_op_done),
			   res);
}

int rs_sync_member_change(struct rs_sync *s,
			  const struct wire_member_change_req *req,
			  struct rs_result *res)
{
	struct sync_call call;

	sync_begin(s, &call);
	return sync_finish(s, &call,
			   rs_client_member_change(s->client, &call.op, req,
						   sync_op_done),
			   res);
}

static void sync_watch_event(struct rs_op *op)
{
	struct sync_call *call = op->data;

	assert(&call->op == op);
	assert(!call->done);
	if (op->result.status != RS_OK) {
		call->status = op->result.status;
		call->done = true;
		uv_stop(call->loop);
	} else if (call->fn(call->ctx, &op->result) != 0) {
		rs_client_watch_cancel(op->client, op);
		call->status = RS_OK;
		call->done = true;
		uv_stop(call->loop);
	}
}

static void sync_late(uv_timer_t *t)
{
	*(bool *)t->data = true;
	uv_stop(t->loop);
}

/* Read the answers to the watch's cancel, for at most the op timeout. */
static void sync_cancel_answered(struct rs_sync *s)
{
	uv_timer_t timer;
	bool late = false;

	if (!client_watch_cancels_pending(s->client))
		return;
	if (uv_timer_init(&s->loop, &timer) != 0)
		return;
	timer.data = &late;
	uv_timer_start(&timer, sync_late, s->client->op_timeout_ms, 0);
	while (!late && client_watch_cancels_pending(s->client))
		uv_run(&s->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&s->loop, UV_RUN_NOWAIT); /* the timer is on this stack */
}

int rs_sync_watch(struct rs_sync *s, const void *begin, size_t begin_len,
		  const void *end, size_t end_len, uint64_t from_version,
		  int (*fn)(void *ctx, const struct rs_result *ev), void *ctx)
{
	struct sync_call call;
	int rv;

	assert(s != NULL && fn != NULL);
	sync_begin(s, &call);
	call.fn = fn;
	call.ctx = ctx;
	rv = rs_client_watch(s->client, &call.op, begin, begin_len, end,
			     end_len, from_version, sync_watch_event);
	if (rv != RS_OK)
		return rv;
	sync_run(s, &call.done);
	assert(call.op.state == CLIENT_OP_DONE);
	rs_result_free(&call.op.result);
	sync_cancel_answered(s);
	return call.status;
}
