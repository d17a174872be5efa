/*
 * rsctl get, put, del, range, txn and watch: keys and values on a running
 * cluster, through the client library (raftstore/client.h).
 *
 *   rsctl get KEY                  linearizable (or --serializable) read
 *   rsctl put KEY VALUE            blind write; VALUE "-" reads stdin
 *   rsctl del KEY                  blind clear
 *   rsctl range BEGIN [END]        every key in [BEGIN, END), paged
 *   rsctl txn --if-... --put ...   compare, then write, atomically
 *   rsctl watch KEY | --prefix P   the changes, as they commit
 *
 * Keys and values are bytes.  On the command line they are taken as given;
 * in `txn --stdin` lines \xNN stands for any byte.  Text output escapes
 * them (rsctl_put_text), --json output maps byte N to code point U+00NN
 * (rsctl_put_json), and `get` prints the value raw.
 *
 * Consistency.  A range spanning several pages reads every page at the
 * first page's read version, so the listing is one snapshot.  txn reads
 * its compared keys at one read version (GRV) and commits with those keys
 * as read-conflict ranges: if any of them changed after the read version
 * the commit fails with RS_ECONFLICT, and the whole transaction (reads
 * included) runs again, at most KV_TXN_RETRIES_MAX more times.
 *
 * watch runs the async API on a private loop rather than rs_sync_watch,
 * because SIGINT has to reach a loop that may be waiting for an event that
 * never comes: a uv_signal_t on that loop cancels the watch and closes the
 * client, and the loop closes cleanly.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "raftstore/client.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl.h"

/* Rows asked for per RANGE request (the server's default page). */
#define KV_PAGE_ROWS WIRE_RANGE_LIMIT_DEFAULT
/* Bytes of a key or value shown in the range table before "...". */
#define KV_TABLE_KEY_MAX 64u
#define KV_TABLE_VALUE_MAX 48u
/* Room for the escaped, cut text of either (4 chars a byte, "...", NUL). */
#define KV_TABLE_CELL (4u * KV_TABLE_KEY_MAX + 4u)
/* Bytes of a key shown in a message. */
#define KV_MSG_KEY_MAX 100u
#define KV_MSG_KEY_CELL (4u * KV_MSG_KEY_MAX + 4u)
/* txn: retries after a conflict, and the backoff between them. */
#define KV_TXN_RETRIES_MAX 10u
#define KV_TXN_BACKOFF_MIN_MS 10u
#define KV_TXN_BACKOFF_MAX_MS 500u

/* ---- arguments ---- */

enum {
	KV_OPT_SERIALIZABLE = 1u << 0, /* --serializable */
	KV_OPT_PREFIX_FLAG = 1u << 1,  /* --prefix (BEGIN is a prefix) */
	KV_OPT_LIMIT = 1u << 2,        /* --limit N */
	KV_OPT_WATCH = 1u << 3,        /* --prefix P --from V --count N */
	KV_OPT_TXN = 1u << 4,          /* --if-... --put --del --stdin */
};

enum kv_op_type {
	KV_IF_VALUE,
	KV_IF_VERSION,
	KV_IF_ABSENT,
	KV_PUT,
	KV_DEL,
};

static const char *const kv_op_names[] = {
	[KV_IF_VALUE] = "if-value", [KV_IF_VERSION] = "if-version",
	[KV_IF_ABSENT] = "if-absent", [KV_PUT] = "put", [KV_DEL] = "del"};

/* One step of a txn.  key and val are owned copies (one block each). */
struct kv_op {
	enum kv_op_type type;
	uint8_t *key;
	size_t key_len;
	uint8_t *val; /* KV_IF_VALUE, KV_PUT; NULL otherwise */
	size_t val_len;
	uint64_t version; /* KV_IF_VERSION: the found_version wanted */
};

struct kv_args {
	struct rsctl_cluster_args cluster;
	const char *pos[2]; /* positional arguments, as given */
	unsigned n_pos;
	bool help;
	bool serializable;
	bool prefix;              /* range --prefix */
	const char *watch_prefix; /* watch --prefix P */
	bool stdin_ops;           /* txn --stdin */
	uint64_t limit;           /* range: 0 = all */
	uint64_t from;            /* watch: 0 = the next commit */
	uint64_t count;           /* watch: 0 = until stopped */
	struct kv_op *ops;        /* txn, in the order given */
	size_t n_ops;
	size_t cap_ops;
};

struct kv_command {
	const char *name;
	const char *synopsis;
	const char *help;  /* details after the synopsis */
	const char *opts_help; /* the command's own options, or "" */
	const char *exits; /* exit codes 0 and 1 as they apply */
	const char *unavailable; /* exit code 3, if not the usual text */
	const char *pos_names[2];
	unsigned min_pos;
	unsigned max_pos;
	unsigned opts; /* KV_OPT_* accepted */
	int (*run)(struct kv_args *a, const char *help_cmd);
};

static void kv_args_free(struct kv_args *a)
{
	size_t i;

	for (i = 0; i < a->n_ops; i++) {
		free(a->ops[i].key);
		free(a->ops[i].val);
	}
	free(a->ops);
	a->ops = NULL;
	a->n_ops = a->cap_ops = 0;
}

/* Copies of key and val into a new op at the end of a->ops. */
static int kv_op_add(struct kv_args *a, enum kv_op_type type,
		     const void *key, size_t key_len, const void *val,
		     size_t val_len, uint64_t version)
{
	struct kv_op *op;

	assert(key_len > 0 && (val != NULL || val_len == 0));
	if (a->n_ops == a->cap_ops) {
		size_t cap = a->cap_ops ? 2 * a->cap_ops : 8;
		struct kv_op *ops = realloc(a->ops, cap * sizeof *ops);
		if (ops == NULL)
			return RS_ENOMEM;
		a->ops = ops;
		a->cap_ops = cap;
	}
	op = &a->ops[a->n_ops];
	memset(op, 0, sizeof *op);
	op->type = type;
	op->version = version;
	op->key = malloc(key_len);
	op->val = type == KV_IF_VALUE || type == KV_PUT ? malloc(val_len + 1)
							: NULL;
	if (op->key == NULL ||
	    ((type == KV_IF_VALUE || type == KV_PUT) && op->val == NULL)) {
		free(op->key);
		free(op->val);
		return RS_ENOMEM;
	}
	memcpy(op->key, key, key_len);
	op->key_len = key_len;
	if (op->val != NULL && val_len > 0)
		memcpy(op->val, val, val_len);
	op->val_len = val_len;
	a->n_ops++;
	return RS_OK;
}

/* A key for a message: escaped and cut (KV_MSG_KEY_CELL bytes of out). */
static const char *kv_key_text(char *out, const void *key, size_t len)
{
	rsctl_text(out, KV_MSG_KEY_CELL, key, len, KV_MSG_KEY_MAX);
	return out;
}

static int kv_check_key(const char *help_cmd, const char *what,
			const void *key, size_t len)
{
	char text[KV_MSG_KEY_CELL];

	if (len == 0)
		return rsctl_usage_errorf(help_cmd, "%s is empty", what);
	if (len > RS_KEY_SIZE_MAX)
		return rsctl_usage_errorf(help_cmd,
					  "%s '%s' has %zu bytes, over the "
					  "%u-byte key limit",
					  what, kv_key_text(text, key, len),
					  len, RS_KEY_SIZE_MAX);
	return RSCTL_EXIT_OK;
}

static int kv_check_value(const char *help_cmd, size_t len)
{
	if (len > RS_VALUE_SIZE_MAX)
		return rsctl_usage_errorf(help_cmd,
					  "a value of %zu bytes is over the "
					  "%u-byte value limit",
					  len, RS_VALUE_SIZE_MAX);
	return RSCTL_EXIT_OK;
}

/* Add the txn step of a flag's value: "KEY=VALUE" (split at the first
 * '='), "KEY=VERSION" (at the last, so a key may hold '=') or "KEY". */
static int kv_txn_flag(struct kv_args *a, enum kv_op_type type,
		       const char *flag, const char *v, const char *help_cmd)
{
	const char *eq = type == KV_IF_VERSION ? strrchr(v, '=')
			 : type == KV_IF_ABSENT || type == KV_DEL
				 ? NULL
				 : strchr(v, '=');
	size_t key_len = eq != NULL ? (size_t)(eq - v) : strlen(v);
	const char *val = eq != NULL ? eq + 1 : NULL;
	uint64_t version = 0;
	int rv;

	if (eq == NULL && type != KV_IF_ABSENT && type != KV_DEL)
		return rsctl_usage_errorf(help_cmd, "%s '%s': missing '='",
					  flag, v);
	rv = kv_check_key(help_cmd, flag, v, key_len);
	if (rv == RSCTL_EXIT_OK && val != NULL)
		rv = kv_check_value(help_cmd, strlen(val));
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (type == KV_IF_VERSION && !cliopt_parse_u64(val, &version))
		return rsctl_usage_errorf(help_cmd,
					  "%s '%s': '%s' is not a version",
					  flag, v, val);
	if (type == KV_IF_VERSION)
		val = NULL;
	if (kv_op_add(a, type, v, key_len, val, val ? strlen(val) : 0,
		      version) != RS_OK) {
		rsctl_errorf("out of memory");
		return RSCTL_EXIT_FAIL;
	}
	return RSCTL_EXIT_OK;
}

/* A u64 option value ("--limit N"), stored in *out. */
static int kv_u64_opt(const char *help_cmd, const char *flag, const char *v,
		      uint64_t *out)
{
	if (!cliopt_parse_u64(v, out))
		return rsctl_usage_errorf(help_cmd,
					  "%s: '%s' is not a whole number",
					  flag, v);
	return RSCTL_EXIT_OK;
}

/* The txn flags.  -1 if argv[*i] is none of them, else an exit code. */
static int kv_parse_txn_opt(int argc, char **argv, int *i,
			    const char *help_cmd, struct kv_args *a)
{
	static const struct {
		const char *flag;
		enum kv_op_type type;
	} flags[] = {{"--if-value", KV_IF_VALUE},
		     {"--if-version", KV_IF_VERSION},
		     {"--if-absent", KV_IF_ABSENT},
		     {"--put", KV_PUT},
		     {"--del", KV_DEL}};
	size_t k;
	bool missing;

	if (strcmp(argv[*i], "--stdin") == 0) {
		a->stdin_ops = true;
		return RSCTL_EXIT_OK;
	}
	for (k = 0; k < sizeof flags / sizeof flags[0]; k++) {
		const char *v = cliopt_value(argc, argv, i, flags[k].flag,
						&missing);
		if (missing)
			return rsctl_usage_errorf(help_cmd, "%s needs a value",
						  flags[k].flag);
		if (v != NULL)
			return kv_txn_flag(a, flags[k].type, flags[k].flag, v,
					   help_cmd);
	}
	return -1;
}

/* The watch flags.  -1 if argv[*i] is none of them, else an exit code. */
static int kv_parse_watch_opt(int argc, char **argv, int *i,
			      const char *help_cmd, struct kv_args *a)
{
	const char *v;
	bool missing;

	v = cliopt_value(argc, argv, i, "--prefix", &missing);
	if (missing)
		return rsctl_usage_errorf(help_cmd, "--prefix needs a prefix");
	if (v != NULL) {
		a->watch_prefix = v;
		return RSCTL_EXIT_OK;
	}
	v = cliopt_value(argc, argv, i, "--from", &missing);
	if (missing)
		return rsctl_usage_errorf(help_cmd, "--from needs a version");
	if (v != NULL)
		return kv_u64_opt(help_cmd, "--from", v, &a->from);
	v = cliopt_value(argc, argv, i, "--count", &missing);
	if (missing)
		return rsctl_usage_errorf(help_cmd, "--count needs a number");
	if (v == NULL)
		return -1;
	if (kv_u64_opt(help_cmd, "--count", v, &a->count) != RSCTL_EXIT_OK)
		return RSCTL_EXIT_USAGE;
	if (a->count == 0)
		return rsctl_usage_errorf(help_cmd, "--count must be at least 1");
	return RSCTL_EXIT_OK;
}

/* A command's own option at argv[*i]: -1 if none, else an exit code. */
static int kv_parse_opt(const struct kv_command *cmd, int argc, char **argv,
			int *i, const char *help_cmd, struct kv_args *a)
{
	const char *arg = argv[*i], *v;
	bool missing;

	if ((cmd->opts & KV_OPT_SERIALIZABLE) &&
	    strcmp(arg, "--serializable") == 0) {
		a->serializable = true;
		return RSCTL_EXIT_OK;
	}
	if ((cmd->opts & KV_OPT_PREFIX_FLAG) && strcmp(arg, "--prefix") == 0) {
		a->prefix = true;
		return RSCTL_EXIT_OK;
	}
	if (cmd->opts & KV_OPT_LIMIT) {
		v = cliopt_value(argc, argv, i, "--limit", &missing);
		if (missing)
			return rsctl_usage_errorf(help_cmd,
						  "--limit needs a number");
		if (v != NULL)
			return kv_u64_opt(help_cmd, "--limit", v, &a->limit);
	}
	if (cmd->opts & KV_OPT_WATCH)
		return kv_parse_watch_opt(argc, argv, i, help_cmd, a);
	if (cmd->opts & KV_OPT_TXN)
		return kv_parse_txn_opt(argc, argv, i, help_cmd, a);
	return -1;
}

static int kv_parse(const struct kv_command *cmd, int argc, char **argv,
		    const char *help_cmd, struct kv_args *a)
{
	bool options_done = false;
	int i, rv;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (a->n_pos == cmd->max_pos)
				return rsctl_usage_errorf(
					help_cmd, "unexpected argument '%s'",
					arg);
			a->pos[a->n_pos++] = arg;
		} else if (strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (rsctl_is_help(arg)) {
			a->help = true;
			return RSCTL_EXIT_OK;
		} else if ((rv = rsctl_cluster_parse_opt(argc, argv, &i,
							 help_cmd,
							 &a->cluster)) >= 0 ||
			   (rv = kv_parse_opt(cmd, argc, argv, &i, help_cmd,
					      a)) >= 0) {
			if (rv != RSCTL_EXIT_OK)
				return rv;
		} else {
			return rsctl_usage_errorf(help_cmd,
						  "unknown option '%s'", arg);
		}
	}
	assert(a->n_pos <= cmd->max_pos && cmd->max_pos <= 2);
	if (a->n_pos < cmd->min_pos)
		return rsctl_usage_errorf(help_cmd, "missing %s",
					  cmd->pos_names[a->n_pos]);
	return RSCTL_EXIT_OK;
}

/* ---- keys ---- */

/* The first key after every key that starts with p[0..len): p without its
 * trailing 0xff bytes, last byte plus one.  False if there is none (p is
 * empty or all 0xff): such a range runs to the end of the key space, which
 * the wire spells as an empty end.  out holds RS_KEY_SIZE_MAX bytes. */
static bool kv_prefix_end(const uint8_t *p, size_t len, uint8_t *out,
			  size_t *out_len)
{
	assert(len <= RS_KEY_SIZE_MAX);
	while (len > 0 && p[len - 1] == 0xff)
		len--;
	*out_len = 0;
	if (len == 0)
		return false;
	memcpy(out, p, len);
	out[len - 1]++;
	*out_len = len;
	assert(out[len - 1] != 0);
	return true;
}

/* The first key after k: k followed by a 0 byte, unless k already has the
 * maximum length (no longer key exists), then the first key after every
 * key starting with k.  False if k is the last possible key. */
static bool kv_key_after(const uint8_t *k, size_t len, uint8_t *out,
			 size_t *out_len)
{
	assert(len > 0 && len <= RS_KEY_SIZE_MAX);
	if (len == RS_KEY_SIZE_MAX)
		return kv_prefix_end(k, len, out, out_len);
	memcpy(out, k, len);
	out[len] = 0;
	*out_len = len + 1;
	return true;
}

/* ---- get, put, del ---- */

static int kv_get_run(struct kv_args *a, const char *help_cmd)
{
	const uint8_t *key = (const uint8_t *)a->pos[0];
	size_t key_len = strlen(a->pos[0]);
	char what[KV_MSG_KEY_CELL + 16], text[KV_MSG_KEY_CELL];
	struct rs_result res;
	struct rs_sync *s;
	int rv;

	rv = kv_check_key(help_cmd, "KEY", key, key_len);
	if (rv == RSCTL_EXIT_OK)
		rv = rsctl_cluster_open(&a->cluster, help_cmd, &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	snprintf(what, sizeof what, "get '%s'",
		 kv_key_text(text, key, key_len));
	if (rs_sync_get(s, key, key_len,
			a->serializable ? WIRE_READ_SERIALIZABLE
					: WIRE_READ_LINEARIZABLE,
			0, &res) != RS_OK) {
		rv = rsctl_fail(what, &res);
	} else if (!res.found) {
		rsctl_errorf("key '%s' not found", text);
		rv = RSCTL_EXIT_FAIL;
	} else if (a->cluster.json) {
		fputs("{\"key\":", stdout);
		rsctl_put_json(stdout, key, key_len);
		fputs(",\"value\":", stdout);
		rsctl_put_json(stdout, res.value.data, res.value.len);
		printf(",\"version\":%" PRIu64 ",\"read_version\":%" PRIu64
		       ",\"serializable\":%s}\n",
		       res.found_version, res.version,
		       res.read_mode == WIRE_READ_SERIALIZABLE ? "true"
							       : "false");
	} else {
		fwrite(res.value.data, 1, res.value.len, stdout);
		fputc('\n', stdout);
	}
	rs_result_free(&res);
	rs_sync_close(s);
	return rv;
}

/* Commit a batch with no reads (it cannot conflict) and report it. */
static int kv_commit_blind(const struct kv_args *a, const char *help_cmd,
			   const char *verb, const struct batch *b)
{
	const uint8_t *key = (const uint8_t *)a->pos[0];
	size_t key_len = strlen(a->pos[0]);
	char what[KV_MSG_KEY_CELL + 16], text[KV_MSG_KEY_CELL];
	struct rs_result res;
	struct rs_sync *s;
	int rv;

	assert(b->count == 1);
	rv = rsctl_cluster_open(&a->cluster, help_cmd, &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	snprintf(what, sizeof what, "%s '%s'", verb,
		 kv_key_text(text, key, key_len));
	if (rs_sync_commit(s, 0, NULL, NULL, 0, b, &res) != RS_OK) {
		rv = rsctl_fail(what, &res);
	} else if (a->cluster.json) {
		fputs("{\"key\":", stdout);
		rsctl_put_json(stdout, key, key_len);
		printf(",\"version\":%" PRIu64 "}\n", res.version);
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

static int kv_put_run(struct kv_args *a, const char *help_cmd)
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

static int kv_del_run(struct kv_args *a, const char *help_cmd)
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

/* ---- range ---- */

struct kv_range {
	const struct kv_args *args;
	uint8_t begin[RS_KEY_SIZE_MAX]; /* the next page starts here */
	size_t begin_len;
	uint8_t end[RS_KEY_SIZE_MAX]; /* empty: the end of the key space */
	size_t end_len;
	bool started;          /* the first page is in */
	uint64_t read_version; /* the first page's; every page reads at it */
	uint64_t printed;
	bool more;             /* the last page said more rows follow */
	int key_width;         /* text columns, fixed by the first page */
	int value_width;
};

static void kv_range_head(struct kv_range *r, const struct rs_result *res)
{
	char cell[KV_TABLE_CELL];
	size_t i, n;

	if (r->args->cluster.json) {
		printf("{\"read_version\":%" PRIu64 ",\"kvs\":[",
		       r->read_version);
		return;
	}
	r->key_width = 3;   /* "KEY" */
	r->value_width = 5; /* "VALUE" */
	for (i = 0; i < res->n_kvs; i++) {
		n = rsctl_text(cell, sizeof cell, res->kvs[i].key,
			       res->kvs[i].key_len, KV_TABLE_KEY_MAX);
		r->key_width = (int)n > r->key_width ? (int)n : r->key_width;
		n = rsctl_text(cell, sizeof cell, res->kvs[i].val,
			       res->kvs[i].val_len, KV_TABLE_VALUE_MAX);
		r->value_width = (int)n > r->value_width ? (int)n
							 : r->value_width;
	}
	printf("%-*s  %-*s  %s\n", r->key_width, "KEY", r->value_width,
	       "VALUE", "VERSION");
}

static void kv_range_row(struct kv_range *r, const struct rs_kv *kv)
{
	char key[KV_TABLE_CELL], val[KV_TABLE_CELL];

	if (r->args->cluster.json) {
		fputs(r->printed == 0 ? "\n  {\"key\":" : ",\n  {\"key\":",
		      stdout);
		rsctl_put_json(stdout, kv->key, kv->key_len);
		fputs(",\"value\":", stdout);
		rsctl_put_json(stdout, kv->val, kv->val_len);
		printf(",\"version\":%" PRIu64 "}", kv->version);
	} else {
		rsctl_text(key, sizeof key, kv->key, kv->key_len,
			   KV_TABLE_KEY_MAX);
		rsctl_text(val, sizeof val, kv->val, kv->val_len,
			   KV_TABLE_VALUE_MAX);
		printf("%-*s  %-*s  %" PRIu64 "\n", r->key_width, key,
		       r->value_width, val, kv->version);
	}
	r->printed++;
}

/* Print one page and move r->begin past its last key.  False when there
 * is nothing more to ask for. */
static bool kv_range_page(struct kv_range *r, const struct rs_result *res)
{
	const struct rs_kv *last;
	size_t i;

	assert(res->status == RS_OK);
	if (!r->started) {
		r->started = true;
		r->read_version = res->version;
		kv_range_head(r, res);
	}
	for (i = 0; i < res->n_kvs; i++)
		kv_range_row(r, &res->kvs[i]);
	r->more = res->more;
	if (!res->more || res->n_kvs == 0)
		return false; /* done (a server never says more with 0 rows) */
	if (r->args->limit > 0 && r->printed >= r->args->limit)
		return false;
	last = &res->kvs[res->n_kvs - 1];
	if (kv_key_after(last->key, last->key_len, r->begin, &r->begin_len))
		return true;
	r->more = false; /* that was the last possible key */
	return false;
}

static void kv_range_tail(const struct kv_range *r)
{
	if (r->args->cluster.json) {
		printf("%s],\"count\":%" PRIu64 ",\"more\":%s}\n",
		       r->printed > 0 ? "\n" : "", r->printed,
		       r->more ? "true" : "false");
		return;
	}
	if (r->more)
		rsctl_errorf("range: stopped at --limit %" PRIu64
			     "; more keys follow",
			     r->args->limit);
}

static int kv_range_fetch(struct kv_range *r, struct rs_sync *s)
{
	struct rs_result res;
	bool next = true;
	int rv = RSCTL_EXIT_OK;

	while (next) {
		uint64_t left = r->args->limit - r->printed;
		uint32_t rows = r->args->limit == 0 || left > KV_PAGE_ROWS
					? KV_PAGE_ROWS
					: (uint32_t)left;
		bool first = !r->started;
		assert(rows > 0);
		if (rs_sync_range(s, r->begin, r->begin_len, r->end,
				  r->end_len, rows,
				  first ? WIRE_READ_LINEARIZABLE
					: WIRE_READ_AT_VERSION,
				  r->read_version, &res) != RS_OK) {
			rv = rsctl_fail("range", &res);
			next = false;
		} else {
			next = kv_range_page(r, &res);
		}
		rs_result_free(&res);
	}
	if (rv == RSCTL_EXIT_OK)
		kv_range_tail(r);
	return rv;
}

static int kv_range_run(struct kv_args *a, const char *help_cmd)
{
	struct kv_range *r;
	size_t begin_len = strlen(a->pos[0]);
	int rv;

	if (a->prefix && a->n_pos == 2)
		return rsctl_usage_errorf(help_cmd,
					  "--prefix takes no END (the prefix "
					  "sets it)");
	if (begin_len > RS_KEY_SIZE_MAX ||
	    (a->n_pos == 2 && strlen(a->pos[1]) > RS_KEY_SIZE_MAX))
		return rsctl_usage_errorf(help_cmd,
					  "a key is over the %u-byte limit",
					  RS_KEY_SIZE_MAX);
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		rsctl_errorf("out of memory");
		return RSCTL_EXIT_FAIL;
	}
	r->args = a;
	memcpy(r->begin, a->pos[0], begin_len);
	r->begin_len = begin_len;
	if (a->prefix) {
		kv_prefix_end(r->begin, begin_len, r->end, &r->end_len);
	} else if (a->n_pos == 2) {
		r->end_len = strlen(a->pos[1]);
		memcpy(r->end, a->pos[1], r->end_len);
	}
	rv = RSCTL_EXIT_OK;
	if (r->end_len > 0 &&
	    bytes_compare(r->begin, r->begin_len, r->end, r->end_len) >= 0)
		rv = rsctl_usage_errorf(help_cmd,
					"END must sort after BEGIN (an empty "
					"END means the end of the key space)");
	if (rv == RSCTL_EXIT_OK) {
		struct rs_sync *s;
		rv = rsctl_cluster_open(&a->cluster, help_cmd, &s);
		if (rv == RSCTL_EXIT_OK) {
			rv = kv_range_fetch(r, s);
			rs_sync_close(s);
		}
	}
	free(r);
	return rv;
}

/* ---- txn ---- */

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

static void kv_txn_print_failed(const struct kv_txn *t,
				uint64_t read_version)
{
	unsigned i;

	assert(t->n_failed > 0);
	printf("{\"succeeded\":false,\"read_version\":%" PRIu64
	       ",\"failed\":[", read_version);
	for (i = 0; i < t->n_failed; i++) {
		const struct kv_failure *f = &t->failed[i];
		printf("%s{\"compare\":\"%s\",\"key\":", i > 0 ? "," : "",
		       kv_op_names[f->op->type]);
		rsctl_put_json(stdout, f->op->key, f->op->key_len);
		printf(",\"found\":%s,\"version\":%" PRIu64 "}",
		       f->found ? "true" : "false", f->found_version);
	}
	printf("]}\n");
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

static void kv_txn_ok(const struct kv_txn *t, uint64_t version,
		      bool committed)
{
	if (t->args->cluster.json)
		printf("{\"succeeded\":true,\"version\":%" PRIu64
		       ",\"committed\":%s,\"attempts\":%u}\n",
		       version, committed ? "true" : "false", t->attempts);
	else
		printf("OK version=%" PRIu64 "\n", version);
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
	if (t->n_failed > 0) {
		if (t->args->cluster.json)
			kv_txn_print_failed(t, read_version);
		return RSCTL_EXIT_FAIL;
	}
	if (t->mutations.count == 0) {
		/* Read-only: the compares held at a linearizable version,
		 * and there is nothing to write. */
		kv_txn_ok(t, read_version, false);
		return RSCTL_EXIT_OK;
	}
	switch (rs_sync_commit(s, read_version, t->begins, t->ends,
			       t->n_ranges, &t->mutations, &res)) {
	case RS_OK:
		kv_txn_ok(t, res.version, true);
		rv = RSCTL_EXIT_OK;
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

static int kv_txn_run(struct kv_args *a, const char *help_cmd)
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

/* ---- watch ---- */

struct kv_watch {
	uv_loop_t loop;
	struct rs_client *client;
	struct rs_op op;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	const struct kv_args *args;
	uint64_t commits;      /* events seen */
	uint64_t last_version; /* of the last event, 0 before any */
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

static void kv_watch_print_json(uint64_t version, const struct mutation *m)
{
	printf("{\"version\":%" PRIu64 ",\"op\":", version);
	switch (m->type) {
	case MUT_SET:
		fputs("\"set\",\"key\":", stdout);
		rsctl_put_json(stdout, m->key, m->key_len);
		fputs(",\"value\":", stdout);
		rsctl_put_json(stdout, m->val, m->val_len);
		break;
	case MUT_CLEAR:
		fputs("\"del\",\"key\":", stdout);
		rsctl_put_json(stdout, m->key, m->key_len);
		break;
	case MUT_CLEAR_RANGE:
		fputs("\"clear-range\",\"begin\":", stdout);
		rsctl_put_json(stdout, m->key, m->key_len);
		fputs(",\"end\":", stdout);
		rsctl_put_json(stdout, m->val, m->val_len);
		break;
	}
	fputs("}\n", stdout);
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
		if (w->args->cluster.json)
			kv_watch_print_json(ev->version, &m);
		else
			kv_watch_print_text(ev->version, &m);
	}
	return fflush(stdout) == 0;
}

static void kv_watch_cb(struct rs_op *op)
{
	struct kv_watch *w = op->data;

	assert(op == &w->op && !w->stopping);
	if (op->result.status != RS_OK) {
		/* The final callback: the op is over and ours again. */
		w->status = op->result.status;
		memcpy(w->message, op->result.message, sizeof w->message);
		rs_result_free(&op->result);
		kv_watch_stop(w);
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
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_client_options o;
	uint8_t end[RS_KEY_SIZE_MAX];
	size_t end_len;
	int rv;

	rsctl_cluster_client_options(&a->cluster, &o);
	kv_watch_range(a, end, &end_len);
	if (uv_loop_init(&w->loop) != 0) {
		rsctl_errorf("watch: cannot create an event loop");
		return RSCTL_EXIT_FAIL;
	}
	rv = rs_client_create(&w->client, &w->loop, &o, errmsg);
	if (rv != RS_OK) {
		uv_loop_close(&w->loop);
		if (rv == RS_EINVAL)
			return rsctl_usage_errorf(help_cmd, "--endpoints: %s",
						  errmsg);
		rsctl_errorf("watch: open client: %s", rs_strerror(rv));
		return RSCTL_EXIT_FAIL;
	}
	uv_signal_init(&w->loop, &w->sigint);
	uv_signal_init(&w->loop, &w->sigterm);
	w->sigint.data = w->sigterm.data = w;
	uv_signal_start(&w->sigint, kv_watch_signal, SIGINT);
	uv_signal_start(&w->sigterm, kv_watch_signal, SIGTERM);
	w->op.data = w;
	rv = rs_client_watch(w->client, &w->op, begin, strlen(begin), end,
			     end_len, a->from, kv_watch_cb);
	if (rv != RS_OK) {
		w->status = rv;
		snprintf(w->message, sizeof w->message, "%s",
			 rs_strerror(rv));
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

static int kv_watch_run(struct kv_args *a, const char *help_cmd)
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

/* ---- the commands ---- */

/* Exit code 3 of the commands that commit. */
#define KV_EXIT_COMMIT_UNAVAILABLE                                           \
	"  3  unavailable, or the commit result is unknown (it may or may "   \
	"not have\n"                                                         \
	"     been applied: check before running it again)\n"

static const struct kv_command kv_get = {
	"get", "rsctl get KEY [--serializable] [options]",
	"Prints the value of KEY, raw (exactly its bytes), and a newline.  "
	"The read\n"
	"is linearizable: it sees every write acknowledged before it "
	"started.\n"
	"--json prints\n"
	"  {\"key\":K,\"value\":V,\"version\":FOUND_VERSION,"
	"\"read_version\":R,\"serializable\":B}\n"
	"where version is the commit that wrote the value and read_version "
	"the\n"
	"version the read was served at.\n",
	"  --serializable\n"
	"               read at once at the answering node's applied "
	"version, which\n"
	"               may be stale on a follower, instead of asking the "
	"leader\n",
	"  0  the key was found and printed\n"
	"  1  the key does not exist (\"rsctl: key 'K' not found\" on "
	"stderr)\n",
	NULL,
	{"KEY", NULL}, 1, 1, KV_OPT_SERIALIZABLE, kv_get_run};

static const struct kv_command kv_put = {
	"put", "rsctl put KEY VALUE [options]",
	"Sets KEY to VALUE and prints \"OK version=N\", N being the commit "
	"version.\n"
	"VALUE \"-\" reads the value from stdin, byte for byte (a final "
	"newline\n"
	"included).  A VALUE that starts with '-' goes after \"--\": "
	"rsctl put -- k -1\n"
	"--json prints {\"key\":K,\"version\":N}.\n",
	"",
	"  0  committed\n",
	KV_EXIT_COMMIT_UNAVAILABLE,
	{"KEY", "VALUE"}, 2, 2, 0, kv_put_run};

static const struct kv_command kv_del = {
	"del", "rsctl del KEY [options]",
	"Deletes KEY and prints \"OK version=N\".  Deleting a key that does "
	"not exist\n"
	"is not an error (it still commits).  --json prints "
	"{\"key\":K,\"version\":N}.\n",
	"",
	"  0  committed\n",
	KV_EXIT_COMMIT_UNAVAILABLE,
	{"KEY", NULL}, 1, 1, 0, kv_del_run};

static const struct kv_command kv_range = {
	"range", "rsctl range BEGIN [END] [--prefix] [--limit N] [options]",
	"Lists the keys in [BEGIN, END) in key order as a table KEY VALUE "
	"VERSION\n"
	"(VERSION: the commit that wrote the value).  Keys and values are "
	"escaped\n"
	"(\\xNN for a byte that is not printable ASCII, \\\\ for a "
	"backslash) and cut\n"
	"with \"...\" after 64 and 48 bytes.  Without END, the range runs to "
	"the end of\n"
	"the key space; an empty BEGIN (\"\") starts at its beginning.  The "
	"listing\n"
	"is read page by page, every page at the first page's read "
	"version, so it\n"
	"is one consistent snapshot.\n"
	"--json prints, never cut:\n"
	"  {\"read_version\":R,\"kvs\":[{\"key\":K,\"value\":V,"
	"\"version\":N},...],\n"
	"   \"count\":C,\"more\":B}\n"
	"where more is true if --limit stopped the listing before its end.\n",
	"  --prefix     list the keys that start with BEGIN (no END then)\n"
	"  --limit N    stop after N keys (0, the default: all of them)\n",
	"  0  listed (possibly nothing)\n"
	"  1  a read failed, e.g. a later page's read version is no longer "
	"kept\n",
	NULL,
	{"BEGIN", "END"}, 1, 2, KV_OPT_PREFIX_FLAG | KV_OPT_LIMIT,
	kv_range_run};

static const struct kv_command kv_txn = {
	"txn", "rsctl txn [STEPS] [--stdin] [options]",
	"Checks every compare, then applies every put and del, atomically.  "
	"The\n"
	"compared keys are read at one read version; if any compare fails, "
	"nothing\n"
	"is written and each failure is reported (\"rsctl: compare failed: "
	"...\").\n"
	"Otherwise the writes commit, unless a compared key changed after "
	"the read\n"
	"version: then the whole transaction runs again (reads included), "
	"up to 10\n"
	"more times.  Prints \"OK version=N\" (with no put or del: the read "
	"version).\n\n"
	"Steps, in any number and order:\n"
	"  --if-value KEY=VALUE    KEY exists and holds VALUE (split at the "
	"first =)\n"
	"  --if-version KEY=N      KEY was last written at version N; 0 means "
	"KEY\n"
	"                          does not exist (split at the last =)\n"
	"  --if-absent KEY         KEY does not exist\n"
	"  --put KEY=VALUE         set KEY (split at the first =)\n"
	"  --del KEY               delete KEY\n"
	"--stdin reads more steps, one per line, after those given as "
	"flags:\n"
	"  if-value KEY VALUE | if-version KEY N | if-absent KEY | put KEY "
	"VALUE |\n"
	"  del KEY\n"
	"Fields are separated by blanks; VALUE is the rest of the line.  In "
	"these\n"
	"lines \\xNN stands for any byte (a space, '=', a newline) and \\\\ "
	"for a\n"
	"backslash.  Blank lines and lines starting with # are skipped.\n\n"
	"--json prints {\"succeeded\":true,\"version\":N,\"committed\":B,"
	"\"attempts\":A}\n"
	"or, when a compare failed, {\"succeeded\":false,\"read_version\":R,\n"
	"\"failed\":[{\"compare\":\"if-...\",\"key\":K,\"found\":B,"
	"\"version\":N},...]}.\n",
	"  --stdin      read steps from stdin (see above)\n",
	"  0  the compares held and the writes committed\n"
	"  1  a compare failed (nothing was written), or the transaction "
	"conflicted\n"
	"     on every attempt\n",
	KV_EXIT_COMMIT_UNAVAILABLE,
	{NULL, NULL}, 0, 0, KV_OPT_TXN, kv_txn_run};

static const struct kv_command kv_watch = {
	"watch", "rsctl watch KEY | --prefix P [--from V] [--count N] "
		 "[options]",
	"Prints each change to KEY, or to the keys starting with P (\"\" "
	"for all), as\n"
	"it commits, one line per mutation:\n"
	"  version=V set KEY=VALUE\n"
	"  version=V del KEY\n"
	"  version=V clear-range [BEGIN, END)\n"
	"with keys and values escaped as in range (never cut).  --json "
	"prints one\n"
	"object per line (NDJSON): {\"version\":V,\"op\":\"set\",\"key\":K,"
	"\"value\":X},\n"
	"{\"version\":V,\"op\":\"del\",\"key\":K} or\n"
	"{\"version\":V,\"op\":\"clear-range\",\"begin\":B,\"end\":E}.\n"
	"Runs until interrupted (SIGINT or SIGTERM: exit 0), or --count "
	"commits.\n"
	"--timeout-ms bounds getting the watch started, not how long it "
	"runs.\n",
	"  --prefix P   watch every key that starts with P\n"
	"  --from V     start at version V, inclusive, to replay the "
	"changes since;\n"
	"               default 0: from the next commit\n"
	"  --count N    stop after the changes of N commits (a commit "
	"touching\n"
	"               several watched keys prints a line for each)\n",
	"  0  interrupted, or --count commits were printed\n"
	"  1  the history since --from is compacted: re-read the keys and "
	"watch\n"
	"     again from the read version + 1\n",
	"  3  the cluster is unavailable, or the watch's connection failed "
	"(the\n"
	"     message says which --from resumes without a gap)\n",
	{"KEY", NULL}, 0, 1, KV_OPT_WATCH, kv_watch_run};

static void kv_help(const struct kv_command *cmd)
{
	printf("Usage: %s\n\n%s\nOptions:\n%s", cmd->synopsis, cmd->help,
	       cmd->opts_help);
	rsctl_cluster_help_opts(stdout);
	printf("\nExit codes:\n%s", cmd->exits);
	printf("  %d  usage error: bad arguments or endpoints, or a key or "
	       "value\n"
	       "     over its size limit\n",
	       RSCTL_EXIT_USAGE);
	if (cmd->unavailable != NULL)
		printf("%s", cmd->unavailable);
	else
		printf("  %d  unavailable: no node answered within "
		       "--timeout-ms\n",
		       RSCTL_EXIT_UNAVAILABLE);
}

static int kv_main(const struct kv_command *cmd, int argc, char **argv)
{
	struct kv_args a;
	char help_cmd[32];
	int rv;

	assert(argc >= 1 && strcmp(argv[0], cmd->name) == 0);
	assert(cmd->min_pos <= cmd->max_pos);
	snprintf(help_cmd, sizeof help_cmd, "rsctl %s", cmd->name);
	memset(&a, 0, sizeof a);
	rsctl_cluster_args_init(&a.cluster);
	rv = kv_parse(cmd, argc, argv, help_cmd, &a);
	if (rv == RSCTL_EXIT_OK && a.help)
		kv_help(cmd);
	else if (rv == RSCTL_EXIT_OK)
		rv = cmd->run(&a, help_cmd);
	kv_args_free(&a);
	return rv;
}

int rsctl_get_run(int argc, char **argv)
{
	return kv_main(&kv_get, argc, argv);
}

int rsctl_put_run(int argc, char **argv)
{
	return kv_main(&kv_put, argc, argv);
}

int rsctl_del_run(int argc, char **argv)
{
	return kv_main(&kv_del, argc, argv);
}

int rsctl_range_run(int argc, char **argv)
{
	return kv_main(&kv_range, argc, argv);
}

int rsctl_txn_run(int argc, char **argv)
{
	return kv_main(&kv_txn, argc, argv);
}

int rsctl_watch_run(int argc, char **argv)
{
	return kv_main(&kv_watch, argc, argv);
}
