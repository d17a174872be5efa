/*
 * rsctl watch: the changes to a key or under a prefix, as they commit.
 *
 * watch runs the async API on a private loop rather than rs_sync_watch,
 * because SIGINT has to reach a loop that may be waiting for an event that
 * never comes: a uv_signal_t on that loop cancels the watch and closes the
 * client, and the loop closes cleanly.  Each commit's mutations are printed
 * one line each (text, or one JSON object a line) and flushed at once, so
 * a pipe sees every event as it happens.
 *
 * The watch survives its node: when its connection fails once started,
 * it starts again on the next endpoint from the version after the last
 * event it printed, so nothing is lost or printed twice (a history the
 * nodes no longer keep is RS_ECOMPACTED, exit 1, with what to do).  To
 * give "from the next commit" the same guarantee, a watch without --from
 * first asks for a read version and watches from the version after it.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_kv.h"

struct kv_watch {
	uv_loop_t loop;
	struct rs_client *client;
	struct rs_op op;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	const struct kv_args *args;
	uint64_t commits;      /* events seen */
	uint64_t last_version; /* of the last event, 0 before any */
	uint64_t from;         /* where the current watch started */
	unsigned resumes;      /* watches started again after a failure */
	const char *begin;
	uint8_t end[RS_KEY_SIZE_MAX];
	size_t end_len;
	int status;            /* how the watch ended; RS_OK if we ended it */
	char message[sizeof ((struct rs_result *)0)->message];
	bool stopping;
	bool closed;
	bool out_failed; /* stdout could not take an event */
};

static void kv_watch_closed(void *arg)
{
	struct kv_watch *w = arg;

	assert(w->stopping && !w->closed);
	w->closed = true;
}

/* End everything: the watch must be over or cancelled already, so that
 * closing the client does not call back into it. */
static void kv_watch_stop(struct kv_watch *w)
{
	if (w->stopping)
		return;
	w->stopping = true;
	uv_close((uv_handle_t *)&w->sigint, NULL);
	uv_close((uv_handle_t *)&w->sigterm, NULL);
	rs_client_close(w->client, kv_watch_closed, w);
}

static void kv_watch_signal(uv_signal_t *h, int signum)
{
	struct kv_watch *w = h->data;

	(void)signum;
	rs_client_watch_cancel(w->client, &w->op);
	rs_result_free(&w->op.result);
	w->status = RS_OK; /* asked to stop: a clean end */
	kv_watch_stop(w);
}

static void kv_watch_print_text(uint64_t version, const struct mutation *m)
{
	printf("version=%" PRIu64 " ", version);
	switch (m->type) {
	case MUT_SET:
		fputs("set ", stdout);
		rsctl_put_text(stdout, m->key, m->key_len, 0);
		fputc('=', stdout);
		rsctl_put_text(stdout, m->val, m->val_len, 0);
		break;
	case MUT_CLEAR:
		fputs("del ", stdout);
		rsctl_put_text(stdout, m->key, m->key_len, 0);
		break;
	case MUT_CLEAR_RANGE:
		fputs("clear-range [", stdout);
		rsctl_put_text(stdout, m->key, m->key_len, 0);
		fputs(", ", stdout);
		rsctl_put_text(stdout, m->val, m->val_len, 0);
		fputc(')', stdout);
		break;
	}
	fputc('\n', stdout);
}

/* One mutation as a line of NDJSON; false if it cannot be written. */
static bool kv_watch_print_json(uint64_t version, const struct mutation *m)
{
	json_t *ev = json_pack("{s:o}", "version", rs_json_u64(version));

	if (ev != NULL && rsctl_json_mutation(ev, m) != RS_OK) {
		json_decref(ev);
		ev = NULL;
	}
	return rsctl_print_json(ev, "watch") == RSCTL_EXIT_OK;
}

/* One commit: a line per mutation, flushed, so that a pipe sees each
 * event as it happens. */
static bool kv_watch_print(const struct kv_watch *w,
			   const struct rs_result *ev)
{
	struct mutation m;
	size_t pos = 0;

	assert(ev->event.version == ev->version);
	while (batch_next(&ev->event, &pos, &m)) {
		if (!w->args->cluster.json)
			kv_watch_print_text(ev->version, &m);
		else if (!kv_watch_print_json(ev->version, &m))
			return false;
	}
	return fflush(stdout) == 0;
}

static void kv_watch_cb(struct rs_op *op);

/* Start (or start again) the watch from w->from. */
static void kv_watch_submit(struct kv_watch *w)
{
	int rv;

	memset(&w->op, 0, sizeof w->op);
	w->op.data = w;
	rv = rs_client_watch(w->client, &w->op, w->begin, strlen(w->begin),
			     w->end, w->end_len, w->from, kv_watch_cb);
	if (rv != RS_OK) {
		w->status = rv;
		snprintf(w->message, sizeof w->message, "%s", rs_strerror(rv));
		kv_watch_stop(w);
	}
}

/* An op's final failure ends the watch with its status and message. */
static void kv_watch_failed(struct kv_watch *w, struct rs_op *op)
{
	w->status = op->result.status;
	memcpy(w->message, op->result.message, sizeof w->message);
	rs_result_free(&op->result);
	kv_watch_stop(w);
}

/* The read version for a watch without --from: watch from after it. */
static void kv_watch_got_version(struct rs_op *op)
{
	struct kv_watch *w = op->data;

	if (op->result.status != RS_OK) {
		kv_watch_failed(w, op);
		return;
	}
	w->from = op->result.version + 1;
	rs_result_free(&op->result);
	kv_watch_submit(w);
}

static void kv_watch_cb(struct rs_op *op)
{
	struct kv_watch *w = op->data;

	assert(op == &w->op && !w->stopping);
	if (op->result.status == RS_EUNAVAILABLE && op->result.watch_started) {
		/* started, then its connection failed: go on elsewhere */
		if (w->last_version > 0)
			w->from = w->last_version + 1;
		w->resumes++;
		fprintf(stderr, "rsctl: watch: %s; resuming from version %"
				PRIu64 " on another endpoint\n",
			op->result.message, w->from);
		rs_result_free(&op->result);
		kv_watch_submit(w);
		return;
	}
	if (op->result.status != RS_OK) {
		/* The final callback: the op is over and ours again. */
		kv_watch_failed(w, op);
		return;
	}
	assert(op->result.version > w->last_version);
	w->last_version = op->result.version;
	w->commits++;
	if (!kv_watch_print(w, &op->result))
		w->out_failed = true;
	if (w->out_failed ||
	    (w->args->count > 0 && w->commits >= w->args->count)) {
		rs_client_watch_cancel(w->client, op);
		rs_result_free(&op->result);
		w->status = RS_OK;
		kv_watch_stop(w);
	}
}

/* The range a watch covers: the key, or every key under the prefix. */
static void kv_watch_range(const struct kv_args *a, uint8_t *end,
			   size_t *end_len)
{
	const uint8_t *p = (const uint8_t *)(a->watch_prefix != NULL
						     ? a->watch_prefix
						     : a->pos[0]);
	size_t len = strlen((const char *)p);

	if (a->watch_prefix != NULL)
		kv_prefix_end(p, len, end, end_len);
	else
		kv_key_after(p, len, end, end_len);
}

/* Set up the loop, the client, the signals and the watch. */
static int kv_watch_start(struct kv_watch *w, const char *help_cmd)
{
	const struct kv_args *a = w->args;
	const char *begin = a->watch_prefix ? a->watch_prefix : a->pos[0];
	uint8_t end[RS_KEY_SIZE_MAX];
	size_t end_len;
	int rv;

	kv_watch_range(a, end, &end_len);
	rv = rsctl_cluster_create(&a->cluster, help_cmd, "watch", &w->loop,
				  &w->client);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	uv_signal_init(&w->loop, &w->sigint);
	uv_signal_init(&w->loop, &w->sigterm);
	w->sigint.data = w->sigterm.data = w;
	uv_signal_start(&w->sigint, kv_watch_signal, SIGINT);
	uv_signal_start(&w->sigterm, kv_watch_signal, SIGTERM);
	w->begin = begin;
	memcpy(w->end, end, end_len);
	w->end_len = end_len;
	w->from = a->from;
	if (w->from != 0) {
		kv_watch_submit(w);
		return RSCTL_EXIT_OK;
	}
	w->op.data = w;
	rv = rs_client_grv(w->client, &w->op, kv_watch_got_version);
	if (rv != RS_OK) {
		w->status = rv;
		snprintf(w->message, sizeof w->message, "%s", rs_strerror(rv));
		kv_watch_stop(w);
	}
	return RSCTL_EXIT_OK;
}

/* How the watch ended, as an exit code. */
static int kv_watch_result(const struct kv_watch *w)
{
	struct rs_result res;
	int rv;

	if (w->out_failed) {
		rsctl_errorf("write to stdout: %s", strerror(errno));
		return RSCTL_EXIT_FAIL;
	}
	if (w->status == RS_OK)
		return RSCTL_EXIT_OK;
	if (w->status == RS_ECOMPACTED) {
		rsctl_errorf("watch: the history from version %" PRIu64
			     " is compacted (%s); re-read the keys (rsctl "
			     "get or range --json gives a read_version) and "
			     "watch again with --from read_version+1",
			     w->last_version ? w->last_version + 1
					     : w->args->from,
			     w->message);
		return RSCTL_EXIT_FAIL;
	}
	rs_result_init(&res);
	res.status = w->status;
	memcpy(res.message, w->message, sizeof res.message);
	/* The client's message may say "watch ended: why" already. */
	if (strncmp(w->message, "watch", 5) == 0) {
		rsctl_errorf("%s (%s)", w->message, rs_strerror(w->status));
		rv = rsctl_exit_for(w->status);
	} else {
		rv = rsctl_fail("watch", &res);
	}
	if (w->last_version > 0)
		rsctl_errorf("watch: the last event was version %" PRIu64
			     "; resume with --from %" PRIu64,
			     w->last_version, w->last_version + 1);
	return rv;
}

int kv_watch_run(struct kv_args *a, const char *help_cmd)
{
	struct kv_watch *w;
	int rv;

	if ((a->watch_prefix != NULL) == (a->n_pos == 1))
		return rsctl_usage_errorf(help_cmd,
					  "give either KEY or --prefix P");
	if (a->n_pos == 1)
		rv = kv_check_key(help_cmd, "KEY", a->pos[0],
				  strlen(a->pos[0]));
	else if (strlen(a->watch_prefix) > RS_KEY_SIZE_MAX)
		rv = rsctl_usage_errorf(help_cmd, "the prefix is over the "
						  "%u-byte key limit",
					RS_KEY_SIZE_MAX);
	else
		rv = RSCTL_EXIT_OK;
	if (rv != RSCTL_EXIT_OK)
		return rv;
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		rsctl_errorf("out of memory");
		return RSCTL_EXIT_FAIL;
	}
	w->args = a;
	rv = kv_watch_start(w, help_cmd);
	if (rv == RSCTL_EXIT_OK) {
		uv_run(&w->loop, UV_RUN_DEFAULT);
		assert(w->closed);
		rv = uv_loop_close(&w->loop);
		assert(rv == 0); /* every handle is closed */
		rv = kv_watch_result(w);
	}
	free(w);
	return rv;
}
