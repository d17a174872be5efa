/*
 * rsctl get, put, del, range, txn and watch: the arguments, the help
 * screens, and the entry points (rsctl.h).  What each command does lives
 * in its own file around tools/rsctl_kv.h:
 *
 *   rsctl get KEY                  linearizable (or --serializable) read
 *   rsctl put KEY VALUE            blind write; VALUE "-" reads stdin
 *   rsctl del KEY                  blind clear
 *   rsctl range BEGIN [END]        every key in [BEGIN, END), paged
 *   rsctl txn --if-... --put ...   compare, then write, atomically
 *   rsctl watch KEY | --prefix P   the changes, as they commit
 *
 * Here: one option parser for all six (each command's table row says which
 * options it takes), the txn steps given as flags, the key checks and the
 * key arithmetic (prefix end, next key) the commands share.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_kv.h"

/* ---- arguments ---- */

enum {
	KV_OPT_SERIALIZABLE = 1u << 0, /* --serializable */
	KV_OPT_PREFIX_FLAG = 1u << 1,  /* --prefix (BEGIN is a prefix) */
	KV_OPT_LIMIT = 1u << 2,        /* --limit N */
	KV_OPT_WATCH = 1u << 3,        /* --prefix P --from V --count N */
	KV_OPT_TXN = 1u << 4,          /* --if-... --put --del --stdin */
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

int kv_op_add(struct kv_args *a, enum kv_op_type type, const void *key,
	      size_t key_len, const void *val, size_t val_len,
	      uint64_t version)
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

const char *kv_key_text(char *out, const void *key, size_t len)
{
	rsctl_text(out, KV_MSG_KEY_CELL, key, len, KV_MSG_KEY_MAX);
	return out;
}

int kv_check_key(const char *help_cmd, const char *what, const void *key,
		 size_t len)
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

int kv_check_value(const char *help_cmd, size_t len)
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
	if ((cmd->opts & KV_OPT_PREFIX_FLAG) && strcmp(arg, "--system") == 0) {
		a->system = true;
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
bool kv_prefix_end(const uint8_t *p, size_t len, uint8_t *out,
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
bool kv_key_after(const uint8_t *k, size_t len, uint8_t *out,
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
	"range", "rsctl range BEGIN [END] [--prefix] [--system] [--limit N] "
	"[options]",
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
	"where more is true if --limit stopped the listing before its end.\n"
	"The system key space (keys from \\xff on: the director's layout, "
	"members,\n"
	"configuration) is left out unless --system is given.\n",
	"  --prefix     list the keys that start with BEGIN (no END then)\n"
	"  --system     include the system key space (\\xff...)\n"
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
