/*
 * rsctl txn: compare keys, then put and delete, atomically.
 *
 * The steps come from flags (parsed in rsctl_kv.c) and, with --stdin, one
 * per line ("if-value KEY VALUE", \xNN for any byte).  txn reads its
 * compared keys at one read version (GRV) and commits with those keys as
 * read-conflict ranges: if any of them changed after the read version the
 * commit fails with RS_ECONFLICT, and the whole transaction (reads
 * included) runs again, at most KV_TXN_RETRIES_MAX more times, with a
 * jittered backoff so that two tools on the same keys do not retry in step.
 * A compare that does not hold writes nothing and is exit 1.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_kv.h"

/* Retries after a conflict, and the backoff between them. */
#define KV_TXN_RETRIES_MAX 10u
#define KV_TXN_BACKOFF_MIN_MS 10u
#define KV_TXN_BACKOFF_MAX_MS 500u

static const char *const kv_op_names[] = {
	[KV_IF_VALUE] = "if-value", [KV_IF_VERSION] = "if-version",
	[KV_IF_ABSENT] = "if-absent", [KV_PUT] = "put", [KV_DEL] = "del"};

/* The decoded bytes of a --stdin field: \xNN is byte NN and \\ a
 * backslash; any other backslash is an error.  *out is malloc'd, with room
 * for a NUL after the bytes. */
static bool kv_unescape(const char *s, size_t len, uint8_t **out,
			size_t *out_len)
{
	uint8_t *p = malloc(len + 1);
	size_t i, n = 0;

	if (p == NULL)
		return false;
	for (i = 0; i < len; i++) {
		int hi = i + 3 < len ? bytes_hex_digit_value(s[i + 2]) : -1;
		int lo = i + 3 < len ? bytes_hex_digit_value(s[i + 3]) : -1;
		if (s[i] != '\\') {
			p[n++] = (uint8_t)s[i];
		} else if (i + 1 < len && s[i + 1] == '\\') {
			p[n++] = '\\';
			i++;
		} else if (hi >= 0 && lo >= 0 && s[i + 1] == 'x') {
			p[n++] = (uint8_t)(hi << 4 | lo);
			i += 3;
		} else {
			free(p);
			return false;
		}
	}
	assert(n <= len);
	*out = p;
	*out_len = n;
	return true;
}

/* A decimal version from unescaped bytes (p has room for a NUL after). */
static bool kv_parse_version(uint8_t *p, size_t len, uint64_t *out)
{
	if (memchr(p, 0, len) != NULL)
		return false;
	p[len] = 0;
	return cliopt_parse_u64((const char *)p, out);
}

static size_t kv_blank_run(const char *s, size_t at, size_t len)
{
	while (at < len && (s[at] == ' ' || s[at] == '\t'))
		at++;
	return at;
}

static size_t kv_word_end(const char *s, size_t at, size_t len)
{
	while (at < len && s[at] != ' ' && s[at] != '\t')
		at++;
	return at;
}

/* One --stdin line (without its newline): "OP KEY [REST]". */
static int kv_txn_line(struct kv_args *a, const char *help_cmd,
		       unsigned lineno, const char *s, size_t len)
{
	size_t op_at = kv_blank_run(s, 0, len), op_end, key_at, key_end, rest;
	uint8_t *key = NULL, *val = NULL;
	size_t key_len = 0, val_len = 0;
	uint64_t version = 0;
	char word[16];
	unsigned t;
	int rv = RSCTL_EXIT_USAGE;

	op_end = kv_word_end(s, op_at, len);
	key_at = kv_blank_run(s, op_end, len);
	key_end = kv_word_end(s, key_at, len);
	rest = kv_blank_run(s, key_end, len);
	snprintf(word, sizeof word, "%.*s", (int)(op_end - op_at), s + op_at);
	for (t = 0; t <= KV_DEL && strcmp(word, kv_op_names[t]) != 0; t++)
		;
	if (t > KV_DEL)
		return rsctl_usage_errorf(help_cmd,
					  "stdin line %u: unknown step '%s'",
					  lineno, word);
	if (!kv_unescape(s + key_at, key_end - key_at, &key, &key_len) ||
	    !kv_unescape(s + rest, len - rest, &val, &val_len)) {
		rsctl_usage_errorf(help_cmd,
				   "stdin line %u: a backslash that is not "
				   "\\xNN or \\\\",
				   lineno);
		goto out;
	}
	if ((t == KV_IF_ABSENT || t == KV_DEL) && val_len > 0) {
		rsctl_usage_errorf(help_cmd, "stdin line %u: %s takes only a "
					     "key", lineno, word);
		goto out;
	}
	if (key_len == 0) {
		rsctl_usage_errorf(help_cmd, "stdin line %u: %s needs a key",
				   lineno, word);
		goto out;
	}
	if (t == KV_IF_VERSION && !kv_parse_version(val, val_len, &version)) {
		rsctl_usage_errorf(help_cmd, "stdin line %u: '%.*s' is not a "
					     "version", lineno,
				   (int)(len - rest), s + rest);
		goto out;
	}
	rv = kv_check_key(help_cmd, word, key, key_len);
	if (rv == RSCTL_EXIT_OK)
		rv = kv_check_value(help_cmd, val_len);
	if (rv == RSCTL_EXIT_OK &&
	    kv_op_add(a, t, key, key_len, val,
		      t == KV_IF_VALUE || t == KV_PUT ? val_len : 0,
		      version) != RS_OK) {
		rsctl_errorf("out of memory");
		rv = RSCTL_EXIT_FAIL;
	}
out:
	free(key);
	free(val);
	return rv;
}

/* Steps from stdin, after those of the flags.  Blank lines and lines
 * starting with '#' are skipped. */
static int kv_txn_read_stdin(struct kv_args *a, const char *help_cmd)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0;
	int rv = RSCTL_EXIT_OK;

	while (rv == RSCTL_EXIT_OK && (n = getline(&line, &cap, stdin)) >= 0) {
		size_t len = (size_t)n, at;
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		at = kv_blank_run(line, 0, len);
		if (at == len || line[at] == '#')
			continue;
		rv = kv_txn_line(a, help_cmd, lineno, line, len);
	}
	if (rv == RSCTL_EXIT_OK && ferror(stdin)) {
		rsctl_errorf("read stdin: %s", strerror(errno));
		rv = RSCTL_EXIT_FAIL;
	}
	free(line);
	return rv;
}

/* A compare that did not hold, for --json. */
struct kv_failure {
	const struct kv_op *op;
	bool found;
	uint64_t found_version;
};

/* What a txn sends: the mutations, and one read-conflict range per
 * compared key. */
struct kv_txn {
	const struct kv_args *args;
	struct batch mutations;
	struct wire_bytes *begins;
	struct wire_bytes *ends;
	uint8_t *ends_mem; /* the ends, one after another */
	uint32_t n_ranges;
	struct kv_failure *failed; /* n_ranges slots */
	unsigned n_failed;
	unsigned attempts;
};

static bool kv_is_compare(enum kv_op_type t)
{
	return t == KV_IF_VALUE || t == KV_IF_VERSION || t == KV_IF_ABSENT;
}

static void kv_txn_add_range(struct kv_txn *t, const struct kv_op *op,
			     const uint8_t *end, size_t end_len)
{
	struct wire_bytes *b = &t->begins[t->n_ranges];
	struct wire_bytes *e = &t->ends[t->n_ranges];

	assert(op->key_len <= RS_KEY_SIZE_MAX && end_len <= RS_KEY_SIZE_MAX);
	b->p = op->key;
	b->len = (uint32_t)op->key_len;
	e->p = end;
	e->len = (uint32_t)end_len;
	t->n_ranges++;
}

/* Build the mutations and the read-conflict ranges once; every attempt
 * sends the same. */
static int kv_txn_prepare(struct kv_txn *t, const char *help_cmd)
{
	const struct kv_args *a = t->args;
	char errmsg[RS_ERRMSG_SIZE];
	size_t i, n = 0, bytes = 0, at = 0;

	for (i = 0; i < a->n_ops; i++) {
		n += kv_is_compare(a->ops[i].type);
		bytes += kv_is_compare(a->ops[i].type) ? a->ops[i].key_len + 1
						       : 0;
	}
	if (n > WIRE_READ_RANGES_MAX)
		return rsctl_usage_errorf(help_cmd,
					  "%zu compares, over the limit of %u",
					  n, WIRE_READ_RANGES_MAX);
	t->begins = calloc(n + 1, sizeof *t->begins);
	t->ends = calloc(n + 1, sizeof *t->ends);
	t->ends_mem = malloc(bytes + 1);
	t->failed = calloc(n + 1, sizeof *t->failed);
	if (t->begins == NULL || t->ends == NULL || t->ends_mem == NULL ||
	    t->failed == NULL) {
		rsctl_errorf("out of memory");
		return RSCTL_EXIT_FAIL;
	}
	for (i = 0; i < a->n_ops; i++) {
		const struct kv_op *op = &a->ops[i];
		size_t end_len;
		int rv = RS_OK;
		if (kv_is_compare(op->type)) {
			/* [key, key + "\0"): exactly the key; an empty end
			 * (the last possible key) reaches the end. */
			kv_key_after(op->key, op->key_len, t->ends_mem + at,
				     &end_len);
			assert(end_len <= op->key_len + 1);
			kv_txn_add_range(t, op, t->ends_mem + at, end_len);
			at += end_len;
		} else if (op->type == KV_PUT) {
			rv = batch_set(&t->mutations, op->key, op->key_len,
				       op->val, op->val_len, errmsg);
		} else {
			rv = batch_clear(&t->mutations, op->key, op->key_len,
					 errmsg);
		}
		if (rv != RS_OK)
			return rsctl_usage_errorf(help_cmd, "%s", errmsg);
	}
	assert(t->n_ranges == n && at <= bytes);
	return RSCTL_EXIT_OK;
}

/* Whether op holds for what get returned; if not, say why in why. */
static bool kv_compare_holds(const struct kv_op *op,
			     const struct rs_result *res, char *why,
			     size_t size)
{
	char text[KV_MSG_KEY_CELL];

	switch (op->type) {
	case KV_IF_VALUE:
		if (res->found && res->value.len == op->val_len &&
		    memcmp(res->value.data, op->val, op->val_len) == 0)
			return true;
		if (!res->found)
			snprintf(why, size, "the key is absent");
		else
			snprintf(why, size, "the value is '%s'",
				 kv_key_text(text, res->value.data,
					     res->value.len));
		return false;
	case KV_IF_VERSION:
		if (res->found_version == op->version)
			return true;
		snprintf(why, size, "the version is %" PRIu64 ", not %" PRIu64,
			 res->found_version, op->version);
		return false;
	case KV_IF_ABSENT:
		if (!res->found)
			return true;
		snprintf(why, size, "the key exists (version %" PRIu64 ")",
			 res->found_version);
		return false;
	default:
		assert(false);
		return false;
	}
}

/* Read every compared key at read_version; each compare that does not
 * hold is reported on stderr and kept in t->failed. */
static int kv_txn_compare(struct kv_txn *t, struct rs_sync *s,
			  uint64_t read_version)
{
	const struct kv_args *a = t->args;
	char why[KV_MSG_KEY_CELL + 64], text[KV_MSG_KEY_CELL];
	size_t i;

	t->n_failed = 0;
	for (i = 0; i < a->n_ops; i++) {
		const struct kv_op *op = &a->ops[i];
		struct rs_result res;
		if (!kv_is_compare(op->type))
			continue;
		if (rs_sync_get(s, op->key, op->key_len, WIRE_READ_AT_VERSION,
				read_version, &res) != RS_OK) {
			int rv = rsctl_fail("txn: read", &res);
			rs_result_free(&res);
			return rv;
		}
		if (!kv_compare_holds(op, &res, why, sizeof why)) {
			assert(t->n_failed < t->n_ranges);
			t->failed[t->n_failed++] = (struct kv_failure){
				op, res.found, res.found_version};
			rsctl_errorf("compare failed: %s '%s': %s",
				     kv_op_names[op->type],
				     kv_key_text(text, op->key, op->key_len),
				     why);
		}
		rs_result_free(&res);
	}
	return RSCTL_EXIT_OK;
}

/* The --json report of the compares that failed; returns RSCTL_EXIT_FAIL,
 * the exit code of a failed compare. */
static int kv_txn_print_failed(const struct kv_txn *t, uint64_t read_version)
{
	json_t *failed = json_array();
	unsigned i;

	assert(t->n_failed > 0);
	for (i = 0; i < t->n_failed && failed != NULL; i++) {
		const struct kv_failure *f = &t->failed[i];
		json_t *o = json_pack("{s:s,s:o,s:b,s:o}", "compare",
				      kv_op_names[f->op->type], "key",
				      rs_json_bytes(f->op->key, f->op->key_len),
				      "found", f->found, "version",
				      rs_json_u64(f->found_version));
		if (rs_json_push(failed, o) != RS_OK) {
			json_decref(failed);
			failed = NULL; /* json_pack below fails: out of memory */
		}
	}
	/* Exit 1 whether or not the report could be written. */
	(void)rsctl_print_json(json_pack("{s:b,s:o,s:o}", "succeeded", 0,
					 "read_version",
					 rs_json_u64(read_version), "failed",
					 failed),
			       "txn");
	return RSCTL_EXIT_FAIL;
}

static void kv_txn_backoff(unsigned attempt)
{
	unsigned ms = KV_TXN_BACKOFF_MIN_MS << (attempt < 6 ? attempt : 6);
	struct timespec ts;

	ms = ms > KV_TXN_BACKOFF_MAX_MS ? KV_TXN_BACKOFF_MAX_MS : ms;
	/* Jitter over [ms/2, ms]: two tools conflicting on the same keys
	 * must not retry in step. */
	ms = ms / 2 + (unsigned)rand() % (ms / 2 + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Report success; returns an exit code (1 if --json cannot be written). */
static int kv_txn_ok(const struct kv_txn *t, uint64_t version,
		     bool committed)
{
	if (t->args->cluster.json)
		return rsctl_print_json(
			json_pack("{s:b,s:o,s:b,s:I}", "succeeded", 1,
				  "version", rs_json_u64(version), "committed",
				  committed, "attempts",
				  (json_int_t)t->attempts),
			"txn");
	printf("OK version=%" PRIu64 "\n", version);
	return RSCTL_EXIT_OK;
}

/* One try: GRV, compare, commit.  Returns an exit code, or -1 to try
 * again (a conflict, or a read version that grew too old). */
static int kv_txn_attempt(struct kv_txn *t, struct rs_sync *s)
{
	struct rs_result res;
	uint64_t read_version;
	int rv;

	t->attempts++;
	if (rs_sync_grv(s, &res) != RS_OK) {
		rv = rsctl_fail("txn: get read version", &res);
		rs_result_free(&res);
		return rv;
	}
	read_version = res.version;
	rs_result_free(&res);
	rv = kv_txn_compare(t, s, read_version);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (t->n_failed > 0)
		return t->args->cluster.json
			       ? kv_txn_print_failed(t, read_version)
			       : RSCTL_EXIT_FAIL;
	if (t->mutations.count == 0) {
		/* Read-only: the compares held at a linearizable version,
		 * and there is nothing to write. */
		return kv_txn_ok(t, read_version, false);
	}
	switch (rs_sync_commit(s, read_version, t->begins, t->ends,
			       t->n_ranges, &t->mutations, &res)) {
	case RS_OK:
		rv = kv_txn_ok(t, res.version, true);
		break;
	case RS_ECONFLICT:
	case RS_ETOOOLD:
		rv = -1;
		break;
	case RS_EUNKNOWN:
		rv = rsctl_fail("txn: commit result unknown", &res);
		assert(rv == RSCTL_EXIT_UNAVAILABLE);
		break;
	default:
		rv = rsctl_fail("txn: commit", &res);
		break;
	}
	rs_result_free(&res);
	return rv;
}

int kv_txn_run(struct kv_args *a, const char *help_cmd)
{
	struct kv_txn t;
	struct rs_sync *s = NULL;
	int rv = RSCTL_EXIT_OK;

	memset(&t, 0, sizeof t);
	t.args = a;
	batch_init(&t.mutations);
	if (a->stdin_ops)
		rv = kv_txn_read_stdin(a, help_cmd);
	if (rv == RSCTL_EXIT_OK && a->n_ops == 0)
		rv = rsctl_usage_errorf(help_cmd, "no steps: give --if-..., "
						  "--put or --del, or --stdin");
	if (rv == RSCTL_EXIT_OK)
		rv = kv_txn_prepare(&t, help_cmd);
	if (rv == RSCTL_EXIT_OK)
		rv = rsctl_cluster_open(&a->cluster, help_cmd, &s);
	if (rv != RSCTL_EXIT_OK)
		goto out;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	while ((rv = kv_txn_attempt(&t, s)) < 0) {
		if (t.attempts > KV_TXN_RETRIES_MAX) {
			rsctl_errorf("txn: conflicted on every one of %u "
				     "attempts; giving up",
				     t.attempts);
			rv = RSCTL_EXIT_FAIL;
			break;
		}
		kv_txn_backoff(t.attempts - 1);
	}
	rs_sync_close(s);
out:
	batch_free(&t.mutations);
	free(t.begins);
	free(t.ends);
	free(t.ends_mem);
	free(t.failed);
	return rv;
}
