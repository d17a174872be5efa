/*
 * rsctl get, put and del: one key, one request.
 *
 * get reads linearizably (or, with --serializable, at the answering node's
 * applied version) and prints the value raw, or with --json an object that
 * also gives the version that wrote it and the one the read was served at.
 * put and del commit a batch of one mutation with no read-conflict ranges,
 * a blind write that cannot conflict; put's VALUE "-" is all of stdin.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_kv.h"

/* The one key a command works on (its KEY argument, as given), and how
 * its messages name the request. */
struct kv_target {
	const uint8_t *key;
	size_t key_len;
	char text[KV_MSG_KEY_CELL];      /* the key, escaped and cut */
	char what[KV_MSG_KEY_CELL + 16]; /* "<verb> '<text>'" */
};

static void kv_target_init(struct kv_target *t, const struct kv_args *a,
			   const char *verb)
{
	assert(a->n_pos >= 1);
	t->key = (const uint8_t *)a->pos[0];
	t->key_len = strlen(a->pos[0]);
	snprintf(t->what, sizeof t->what, "%s '%s'", verb,
		 kv_key_text(t->text, t->key, t->key_len));
}

/* Print a value that was found: raw, or the --json object. */
static int kv_get_print(const struct kv_args *a, const struct kv_target *t,
			const struct rs_result *res)
{
	assert(res->found);
	if (!a->cluster.json) {
		fwrite(res->value.data, 1, res->value.len, stdout);
		fputc('\n', stdout);
		return RSCTL_EXIT_OK;
	}
	return rsctl_print_json(
		json_pack("{s:o,s:o,s:o,s:o,s:b}", "key",
			  rs_json_bytes(t->key, t->key_len), "value",
			  rs_json_bytes(res->value.data, res->value.len),
			  "version", rs_json_u64(res->found_version),
			  "read_version", rs_json_u64(res->version),
			  "serializable",
			  res->read_mode == WIRE_READ_SERIALIZABLE),
		t->what);
}

int kv_get_run(struct kv_args *a, const char *help_cmd)
{
	struct kv_target t;
	struct rs_result res;
	struct rs_sync *s;
	int rv;

	kv_target_init(&t, a, "get");
	rv = kv_check_key(help_cmd, "KEY", t.key, t.key_len);
	if (rv == RSCTL_EXIT_OK)
		rv = rsctl_cluster_open(&a->cluster, help_cmd, &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (rs_sync_get(s, t.key, t.key_len,
			a->serializable ? WIRE_READ_SERIALIZABLE
					: WIRE_READ_LINEARIZABLE,
			0, &res) != RS_OK) {
		rv = rsctl_fail(t.what, &res);
	} else if (!res.found) {
		rsctl_errorf("key '%s' not found", t.text);
		rv = RSCTL_EXIT_FAIL;
	} else {
		rv = kv_get_print(a, &t, &res);
	}
	rs_result_free(&res);
	rs_sync_close(s);
	return rv;
}

/* Commit a batch with no reads (it cannot conflict) and report it. */
static int kv_commit_blind(const struct kv_args *a, const char *help_cmd,
			   const char *verb, const struct batch *b)
{
	struct kv_target t;
	struct rs_result res;
	struct rs_sync *s;
	int rv;

	assert(b->count == 1);
	kv_target_init(&t, a, verb);
	rv = rsctl_cluster_open(&a->cluster, help_cmd, &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (rs_sync_commit(s, 0, NULL, NULL, 0, b, &res) != RS_OK) {
		rv = rsctl_fail(t.what, &res);
	} else if (a->cluster.json) {
		rv = rsctl_print_json(
			json_pack("{s:o,s:o}", "key",
				  rs_json_bytes(t.key, t.key_len), "version",
				  rs_json_u64(res.version)),
			t.what);
	} else {
		printf("OK version=%" PRIu64 "\n", res.version);
	}
	rs_result_free(&res);
	rs_sync_close(s);
	return rv;
}

/* All of stdin, as the value: up to RS_VALUE_SIZE_MAX bytes, and one more
 * to tell that it is too long.  *out is malloc'd (caller frees). */
static int kv_read_stdin_value(const char *help_cmd, uint8_t **out,
			       size_t *len)
{
	size_t cap = RS_VALUE_SIZE_MAX + 1, n = 0, got;
	uint8_t *buf = malloc(cap);

	if (buf == NULL) {
		rsctl_errorf("out of memory");
		return RSCTL_EXIT_FAIL;
	}
	while (n < cap && (got = fread(buf + n, 1, cap - n, stdin)) > 0)
		n += got;
	if (ferror(stdin)) {
		rsctl_errorf("read stdin: %s", strerror(errno));
		free(buf);
		return RSCTL_EXIT_FAIL;
	}
	if (n > RS_VALUE_SIZE_MAX) {
		free(buf);
		return rsctl_usage_errorf(help_cmd,
					  "the value on stdin is over the "
					  "%u-byte value limit",
					  RS_VALUE_SIZE_MAX);
	}
	*out = buf;
	*len = n;
	return RSCTL_EXIT_OK;
}

int kv_put_run(struct kv_args *a, const char *help_cmd)
{
	char errmsg[RS_ERRMSG_SIZE];
	const char *key = a->pos[0];
	uint8_t *val = (uint8_t *)a->pos[1], *owned = NULL;
	size_t val_len = strlen(a->pos[1]);
	struct batch b;
	int rv;

	rv = kv_check_key(help_cmd, "KEY", key, strlen(key));
	if (rv == RSCTL_EXIT_OK && strcmp(a->pos[1], "-") == 0) {
		rv = kv_read_stdin_value(help_cmd, &owned, &val_len);
		val = owned;
	}
	if (rv == RSCTL_EXIT_OK)
		rv = kv_check_value(help_cmd, val_len);
	if (rv != RSCTL_EXIT_OK)
		goto out;
	batch_init(&b);
	if (batch_set(&b, key, strlen(key), val, val_len, errmsg) != RS_OK)
		rv = rsctl_usage_errorf(help_cmd, "%s", errmsg);
	else
		rv = kv_commit_blind(a, help_cmd, "put", &b);
	batch_free(&b);
out:
	free(owned);
	return rv;
}

int kv_del_run(struct kv_args *a, const char *help_cmd)
{
	char errmsg[RS_ERRMSG_SIZE];
	const char *key = a->pos[0];
	struct batch b;
	int rv;

	rv = kv_check_key(help_cmd, "KEY", key, strlen(key));
	if (rv != RSCTL_EXIT_OK)
		return rv;
	batch_init(&b);
	if (batch_clear(&b, key, strlen(key), errmsg) != RS_OK)
		rv = rsctl_usage_errorf(help_cmd, "%s", errmsg);
	else
		rv = kv_commit_blind(a, help_cmd, "del", &b);
	batch_free(&b);
	return rv;
}
