/*
 * rsctl layout and rsctl config: the director's system keys on a running
 * cluster (design brief, "Control path").
 *
 *   rsctl layout [--decomposed]    the transaction system layout, decoded
 *   rsctl config get PARAM         one configuration parameter
 *   rsctl config set PARAM VALUE   change one; the director starts a
 *                                  recovery (a new epoch)
 *   rsctl config list              every parameter
 *
 * layout reads "\xff/system/layout" linearizably from the first endpoint
 * that answers, and stays there (no move to the leader), so
 * `--endpoints ONE` checks that node's own copy.  --decomposed then reads
 * every key under TSL_KEY_PREFIX at the read version of the first read
 * (WIRE_READ_AT_VERSION, every page), so both forms come from one snapshot
 * of one node, and cross-checks them with tsl_decomposed_matches.  Nothing
 * here writes except `config set`, which writes exactly one key,
 * "\xff/system/config/PARAM", as a blind commit.
 *
 * Every failure to decode or to agree is exit 1 with a message naming the
 * key and the versions involved; an unreachable cluster is exit 3.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "director/director.h"
#include "director/tsl.h"
#include "raftstore/client.h"
#include "raftstore/lib/batch.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl.h"

/* Keys read under TSL_KEY_PREFIX before giving up: far above the
 * TSL_ENTRIES_MAX a layout can have, so leftovers still get reported. */
#define LY_DECOMPOSED_MAX (8u * TSL_ENTRIES_MAX)
/* The exclusive end of the decomposed keys: '0' follows '/'. */
#define LY_PREFIX_END "\xff/system/layout0"
#define LY_KEY_TEXT "\\xff/system/layout"
#define CF_PREFIX_END "\xff/system/config0"
#define CF_VALUE_TEXT_MAX 64u
#define CF_NAME_MAX 128u

/* ---- options ---- */

struct ly_args {
	struct rsctl_cluster_args cluster;
	bool decomposed;
	const char *pos[3]; /* positional arguments, as given */
	unsigned n_pos;
};

/* Parse argv[first..): the common options, the flag `extra_flag` (may be
 * NULL) and up to max_pos positional arguments.  Returns an exit code, or
 * -1 after printing help. */
static int ly_parse(int argc, char **argv, int first, const char *help_cmd,
		    const char *extra_flag, unsigned max_pos,
		    void (*help)(void), struct ly_args *a)
{
	int i, rv;

	assert(first >= 1 && max_pos <= 3);
	memset(a, 0, sizeof *a);
	rsctl_cluster_args_init(&a->cluster);
	for (i = first; i < argc; i++) {
		if (rsctl_is_help(argv[i])) {
			help();
			return -1;
		}
		if (extra_flag != NULL && strcmp(argv[i], extra_flag) == 0) {
			a->decomposed = true;
			continue;
		}
		rv = rsctl_cluster_parse_opt(argc, argv, &i, help_cmd,
					     &a->cluster);
		if (rv > RSCTL_EXIT_OK)
			return rv;
		if (rv == RSCTL_EXIT_OK)
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return rsctl_usage_errorf(help_cmd,
						  "unknown option '%s'",
						  argv[i]);
		if (a->n_pos == max_pos)
			return rsctl_usage_errorf(help_cmd,
						  "unexpected argument '%s'",
						  argv[i]);
		a->pos[a->n_pos++] = argv[i];
	}
	return RSCTL_EXIT_OK;
}

/* ---- rsctl layout ---- */

/* Owned copies of the decomposed keys read (one block per pair). */
struct ly_kvs {
	struct tsl_kv *kv;
	size_t n;
	size_t cap;
};

static void ly_kvs_free(struct ly_kvs *k)
{
	for (size_t i = 0; i < k->n; i++)
		free((void *)k->kv[i].key); /* the value shares the block */
	free(k->kv);
	memset(k, 0, sizeof *k);
}

static int ly_kvs_add(struct ly_kvs *k, const struct rs_kv *in)
{
	uint8_t *block;

	assert(k->n <= k->cap);
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 64;
		struct tsl_kv *kv = realloc(k->kv, cap * sizeof *kv);
		if (kv == NULL)
			return RS_ENOMEM;
		k->kv = kv;
		k->cap = cap;
	}
	block = malloc((size_t)in->key_len + in->val_len + 1);
	if (block == NULL)
		return RS_ENOMEM;
	memcpy(block, in->key, in->key_len);
	if (in->val_len > 0)
		memcpy(block + in->key_len, in->val, in->val_len);
	k->kv[k->n] = (struct tsl_kv){block, in->key_len,
				      block + in->key_len, in->val_len};
	k->n++;
	return RS_OK;
}

/* A blocking client that stays on the endpoints in the order given. */
static int ly_open(const struct rsctl_cluster_args *a, const char *help_cmd,
		   struct rs_sync **out)
{
	struct rsctl_cluster_args stay = *a;

	stay.no_leader_pref = true;
	return rsctl_cluster_open(&stay, help_cmd, out);
}

/* Every key in [begin, end) at `version` (AT_VERSION, every page at that
 * version) into kvs; an exit code.  version 0: the first page is read
 * linearizably and *version is set to its read version. */
static int ly_range_all(struct rs_sync *s, const char *what,
			const uint8_t *begin, size_t begin_len,
			const uint8_t *end, size_t end_len, uint64_t *version,
			struct ly_kvs *kvs)
{
	uint8_t next[RS_KEY_SIZE_MAX + 1];
	size_t next_len = begin_len;
	struct rs_result res;
	bool more = true;
	int rv = RSCTL_EXIT_OK;

	assert(begin_len <= RS_KEY_SIZE_MAX && kvs->n == 0);
	memcpy(next, begin, begin_len);
	while (more && rv == RSCTL_EXIT_OK) {
		enum wire_read_mode mode = *version == 0 ? WIRE_READ_LINEARIZABLE
							 : WIRE_READ_AT_VERSION;
		if (rs_sync_range(s, next, next_len, end, end_len, 0, mode,
				  *version, &res) != RS_OK) {
			rv = rsctl_fail(what, &res);
			rs_result_free(&res);
			break;
		}
		if (*version == 0)
			*version = res.version;
		if (res.version != *version) { /* every page, one snapshot */
			rsctl_errorf("%s: asked for version %" PRIu64 ", "
				     "served at %" PRIu64, what, *version,
				     res.version);
			rv = RSCTL_EXIT_FAIL;
		}
		for (size_t i = 0; i < res.n_kvs && rv == RSCTL_EXIT_OK; i++) {
			if (kvs->n == LY_DECOMPOSED_MAX) {
				rsctl_errorf("%s: more than %u keys", what,
					     LY_DECOMPOSED_MAX);
				rv = RSCTL_EXIT_FAIL;
			} else if (ly_kvs_add(kvs, &res.kvs[i]) != RS_OK) {
				rsctl_errorf("%s: out of memory", what);
				rv = RSCTL_EXIT_FAIL;
			}
		}
		more = res.more && res.n_kvs > 0;
		if (more) { /* resume just after the last key: key + "\0" */
			const struct rs_kv *last = &res.kvs[res.n_kvs - 1];
			assert(last->key_len <= RS_KEY_SIZE_MAX);
			memcpy(next, last->key, last->key_len);
			next[last->key_len] = 0;
			next_len = (size_t)last->key_len + 1;
		}
		rs_result_free(&res);
	}
	return rv;
}

static const char *const ly_cap_names[] = {"log", "storage", "commit_proxy",
				     "resolver", "sequencer", "director"};

static void ly_print_caps(uint32_t caps)
{
	const char *sep = "";

	for (unsigned i = 0; i < 6; i++)
		if (caps & (1u << i)) {
			printf("%s%s", sep, ly_cap_names[i]);
			sep = ",";
		}
	if (caps == 0)
		printf("none");
}

static void ly_print_components(const char *title,
				const struct tsl_component *c, uint32_t n)
{
	printf("%s (%" PRIu32 "):\n", title, n);
	for (uint32_t i = 0; i < n; i++)
		printf("  id %" PRIu64 "  node %" PRIu64 "  %s\n", c[i].id,
		       c[i].node_id, c[i].addr);
}

static void ly_print_range(const struct tsl_range *r)
{
	printf("keys [\"");
	rsctl_put_text(stdout, r->begin, r->begin_len, 0);
	if (r->end_len == 0) {
		printf("\", end)");
		return;
	}
	printf("\", \"");
	rsctl_put_text(stdout, r->end, r->end_len, 0);
	printf("\")");
}

static void ly_print_text(const struct tsl *t, const struct rs_result *res,
			  const struct ly_kvs *kvs, bool decomposed)
{
	printf("layout:            id %" PRIu64 ", epoch %" PRIu64 "\n"
	       "written at:        version %" PRIu64 "\n"
	       "read at:           version %" PRIu64 " from %s\n"
	       "director:          node %" PRIu64 "  %s\n"
	       "recovery version:  %" PRIu64 "\n"
	       "sequencer:         id %" PRIu64 "  node %" PRIu64 "  %s\n",
	       t->id, t->epoch, res->found_version, res->version,
	       res->endpoint != NULL ? res->endpoint : "?", t->director.node_id,
	       t->director.addr, t->recovery_version, t->sequencer.id,
	       t->sequencer.node_id, t->sequencer.addr);
	ly_print_components("commit proxies", t->commit_proxies,
			    t->commit_proxy_count);
	printf("resolvers (%" PRIu32 "):\n", t->resolver_count);
	for (uint32_t i = 0; i < t->resolver_count; i++) {
		const struct tsl_resolver *r = &t->resolvers[i];
		printf("  id %" PRIu64 "  node %" PRIu64 "  %s  ", r->c.id,
		       r->c.node_id, r->c.addr);
		ly_print_range(&r->range);
		printf("\n");
	}
	ly_print_components("logs", t->logs, t->log_count);
	ly_print_components("storage", t->storage, t->storage_count);
	printf("services (%" PRIu32 "):\n", t->service_count);
	for (uint32_t i = 0; i < t->service_count; i++) {
		const struct tsl_service *s = &t->services[i];
		printf("  node %" PRIu64 "  %s  %s  heartbeat %" PRIu64
		       " ms before the layout  capabilities ",
		       s->node_id, s->addr,
		       s->status == TSL_STATUS_UP     ? "up"
		       : s->status == TSL_STATUS_DOWN ? "down"
						      : "invalid",
		       s->heartbeat_age_ms);
		ly_print_caps(s->capabilities);
		printf("\n");
	}
	if (decomposed)
		printf("decomposed:        %zu keys under %s/, all match\n",
		       kvs->n, LY_KEY_TEXT);
}

/* Decode the consolidated value in res; an exit code. */
static int ly_decode(const struct rs_result *res, struct tsl *t)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	int rv;

	if (!res->found) {
		rsctl_errorf("no layout has been persisted yet (%s not found "
			     "at version %" PRIu64 " on %s)",
			     LY_KEY_TEXT, res->version,
			     res->endpoint != NULL ? res->endpoint : "?");
		return RSCTL_EXIT_FAIL;
	}
	rv = tsl_decode(res->value.data, res->value.len, t, errmsg);
	if (rv != RS_OK) {
		rsctl_errorf("%s (written at version %" PRIu64 ", read at "
			     "version %" PRIu64 " from %s) does not decode: "
			     "%s (%s)",
			     LY_KEY_TEXT, res->found_version, res->version,
			     res->endpoint != NULL ? res->endpoint : "?", errmsg,
			     rs_strerror(rv));
		return RSCTL_EXIT_FAIL;
	}
	assert(t->epoch >= 1);
	return RSCTL_EXIT_OK;
}

/* Read the decomposed keys at res->version and compare; an exit code. */
static int ly_check_decomposed(struct rs_sync *s, const struct tsl *t,
			       const struct rs_result *res,
			       struct ly_kvs *kvs)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	uint64_t version = res->version;
	int rv;

	assert(version > 0);
	rv = ly_range_all(s, "read the decomposed layout",
			  (const uint8_t *)TSL_KEY_PREFIX, strlen(TSL_KEY_PREFIX),
			  (const uint8_t *)LY_PREFIX_END, strlen(LY_PREFIX_END),
			  &version, kvs);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	assert(version == res->version);
	rv = tsl_decomposed_matches(t, kvs->kv, kvs->n, errmsg);
	if (rv != RS_OK) {
		rsctl_errorf("the decomposed keys under %s/ disagree with %s "
			     "(layout %" PRIu64 ", epoch %" PRIu64 ", both read "
			     "at version %" PRIu64 " from %s): %s",
			     LY_KEY_TEXT, LY_KEY_TEXT, t->id, t->epoch, version,
			     res->endpoint != NULL ? res->endpoint : "?", errmsg);
		return RSCTL_EXIT_FAIL;
	}
	return RSCTL_EXIT_OK;
}

static int ly_print_json(const struct tsl *t)
{
	struct rs_buf out;
	int rv;

	rs_buf_init(&out);
	rv = tsl_to_json(t, &out);
	if (rv != RS_OK) {
		rsctl_errorf("layout %" PRIu64 ": print as JSON: %s", t->id,
			     rs_strerror(rv));
		rs_buf_free(&out);
		return RSCTL_EXIT_FAIL;
	}
	fwrite(out.data, 1, out.len, stdout);
	fputc('\n', stdout);
	rs_buf_free(&out);
	return RSCTL_EXIT_OK;
}

static int ly_layout(const struct ly_args *a)
{
	static struct tsl t; /* about 19 KiB */
	struct ly_kvs kvs = {NULL, 0, 0};
	struct rs_result res;
	struct rs_sync *s;
	int rv;

	rv = ly_open(&a->cluster, "rsctl layout", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (rs_sync_get(s, DIRECTOR_KEY_LAYOUT, strlen(DIRECTOR_KEY_LAYOUT),
			WIRE_READ_LINEARIZABLE, 0, &res) != RS_OK) {
		rv = rsctl_fail("read " LY_KEY_TEXT, &res);
		goto err_res;
	}
	rv = ly_decode(&res, &t);
	if (rv == RSCTL_EXIT_OK && a->decomposed)
		rv = ly_check_decomposed(s, &t, &res, &kvs);
	if (rv == RSCTL_EXIT_OK && a->cluster.json)
		rv = ly_print_json(&t);
	else if (rv == RSCTL_EXIT_OK)
		ly_print_text(&t, &res, &kvs, a->decomposed);
	ly_kvs_free(&kvs);
err_res:
	rs_result_free(&res);
	rs_sync_close(s);
	return rv;
}

static void ly_help(void)
{
	printf("Usage: rsctl layout [--decomposed] [options]\n\n"
	       "Reads the transaction system layout the director persisted "
	       "in its last\n"
	       "recovery (%s, linearizable) and prints it: layout id and "
	       "epoch,\n"
	       "the versions it was written and read at, the director, the "
	       "recovery\n"
	       "version, each component (sequencer, commit proxies, resolvers "
	       "with their\n"
	       "key ranges, logs, storage) with its node and address, and "
	       "the services\n"
	       "with their status.  The read is served by the first endpoint "
	       "that\n"
	       "answers, without moving to the leader: --endpoints HOST:PORT "
	       "checks\n"
	       "that node's copy.\n\n"
	       "  --decomposed  also read every key under %s/ at the "
	       "same\n"
	       "                read version and check that they are exactly "
	       "the\n"
	       "                decomposed form of the layout\n"
	       "  --json        print the layout as one JSON object\n"
	       "                (docs/layout-format.md names the fields)\n\n"
	       "Options:\n",
	       LY_KEY_TEXT, LY_KEY_TEXT);
	rsctl_cluster_help_opts(stdout);
	printf("\nExit codes:\n"
	       "  0  the layout was read and decodes (and, with --decomposed, "
	       "its\n"
	       "     decomposed keys agree)\n"
	       "  1  no layout has been persisted yet, it does not decode, or "
	       "the\n"
	       "     decomposed keys disagree; the message names the key and "
	       "versions\n"
	       "  2  usage error: bad arguments or endpoints\n"
	       "  3  unavailable: no node answered\n");
}

int rsctl_layout_run(int argc, char **argv)
{
	struct ly_args a;
	int rv;

	assert(argc >= 1);
	rv = ly_parse(argc, argv, 1, "rsctl layout", "--decomposed", 0,
		      ly_help, &a);
	if (rv != RSCTL_EXIT_OK)
		return rv < 0 ? RSCTL_EXIT_OK : rv;
	return ly_layout(&a);
}

/* ---- rsctl config ---- */

struct cf_param {
	const char *name;
	uint64_t max;
	const char *what;
};

static const struct cf_param cf_params[] = {
	{"commit_proxies", TSL_COMPONENTS_MAX,
	 "commit proxies the director recruits (default 3)"},
	{"resolvers", TSL_COMPONENTS_MAX,
	 "resolvers, each owning a key range (default 1)"},
	{"batch_count_max", 100000,
	 "transactions per proxy batch (default 512)"},
	{"batch_delay_us", 1000000,
	 "wait to fill a batch, in us (default 500)"},
};

#define CF_PARAM_COUNT (sizeof cf_params / sizeof cf_params[0])

static const struct cf_param *cf_find(const char *name, size_t len)
{
	for (size_t i = 0; i < CF_PARAM_COUNT; i++)
		if (strlen(cf_params[i].name) == len &&
		    memcmp(cf_params[i].name, name, len) == 0)
			return &cf_params[i];
	return NULL;
}

static void cf_help(void)
{
	printf("Usage: rsctl config get PARAM [options]\n"
	       "       rsctl config set PARAM VALUE [options]\n"
	       "       rsctl config list [options]\n\n"
	       "Reads and changes the cluster's configuration parameters, "
	       "stored as\n"
	       "decimal text under \\xff/system/config/PARAM.\n\n"
	       "  get   print the value, or \"(default)\" when none is "
	       "stored\n"
	       "  set   store VALUE, a whole number in 1..max.  Setting a "
	       "parameter\n"
	       "        STARTS A RECOVERY: the director sees the change, "
	       "exits, and the\n"
	       "        next one runs with a new epoch and a new layout; "
	       "until it\n"
	       "        accepts, commits are refused with the retryable "
	       "\"recovering\"\n"
	       "  list  print every parameter (and any other key stored under "
	       "the prefix)\n\n"
	       "Parameters:\n");
	for (size_t i = 0; i < CF_PARAM_COUNT; i++)
		printf("  %-16s 1..%-8" PRIu64 " %s\n", cf_params[i].name,
		       cf_params[i].max, cf_params[i].what);
	printf("Every recovery reads them, applies them, and writes their "
	       "values back in\n"
	       "its system transaction, so after the first recovery all four "
	       "are stored\n"
	       "even if never set.  The batching defaults are the leader's "
	       "raftstored\n"
	       "--batch-count-max and --batch-delay-us; a stored value wins.\n\n"
	       "--json: get prints {\"param\":P,\"value\":V|null,\"version\":N}"
	       " (version 0\n"
	       "when not stored), set prints {\"param\":P,\"value\":V,"
	       "\"version\":N}, list prints\n"
	       "{\"read_version\":N,\"params\":[{\"param\":P,\"value\":V|null}"
	       ",...]}, where a\n"
	       "key under the prefix that names no parameter above has "
	       "\"unknown\":true.\n\nOptions:\n");
	rsctl_cluster_help_opts(stdout);
	printf("\nExit codes:\n"
	       "  0  success\n"
	       "  1  the cluster refused the write\n"
	       "  2  usage error: unknown subcommand or PARAM, VALUE not a "
	       "whole number\n"
	       "     in range, bad arguments or endpoints\n"
	       "  3  unavailable: no node answered, or the result of set is "
	       "unknown\n");
}

static int cf_key(char *key, const char *param)
{
	int n = snprintf(key, CF_NAME_MAX + 32, "%s%s", DIRECTOR_CONFIG_PREFIX,
			 param);
	assert(n > 0 && (size_t)n < CF_NAME_MAX + 32);
	return n;
}

/* A stored value for display: its text, cut at CF_VALUE_TEXT_MAX. */
static void cf_print_value(const uint8_t *p, size_t len)
{
	rsctl_put_text(stdout, p, len, CF_VALUE_TEXT_MAX);
}

/* A stored value for --json: the byte string, or null when not stored. */
static json_t *cf_json_value(const uint8_t *p, size_t len, bool found)
{
	return found ? rs_json_bytes(p, len) : json_null();
}

static int cf_get(const struct ly_args *a, const struct cf_param *p)
{
	char key[CF_NAME_MAX + 32], what[CF_NAME_MAX + 32];
	int n = cf_key(key, p->name), rv = RSCTL_EXIT_OK;
	struct rs_result res;
	struct rs_sync *s;

	rv = rsctl_cluster_open(&a->cluster, "rsctl config", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	snprintf(what, sizeof what, "config get %s", p->name);
	if (rs_sync_get(s, key, (size_t)n, WIRE_READ_LINEARIZABLE, 0, &res) !=
	    RS_OK) {
		rv = rsctl_fail(what, &res);
	} else if (a->cluster.json) {
		rv = rsctl_print_json(
			json_pack("{s:s,s:o,s:o}", "param", p->name, "value",
				  cf_json_value(res.value.data, res.value.len,
						res.found),
				  "version",
				  rs_json_u64(res.found ? res.found_version
							: 0)),
			what);
	} else if (res.found) {
		cf_print_value(res.value.data, res.value.len);
		printf("\n");
	} else {
		printf("(default)\n");
	}
	rs_result_free(&res);
	rs_sync_close(s);
	return rv;
}

static int cf_set(const struct ly_args *a, const struct cf_param *p,
		  const char *value)
{
	char key[CF_NAME_MAX + 32], text[24], what[CF_NAME_MAX + 32];
	char errmsg[RS_ERRMSG_SIZE];
	int n = cf_key(key, p->name), rv;
	struct rs_result res;
	struct rs_sync *s;
	struct batch b;
	uint64_t v;

	if (!cliopt_parse_u64(value, &v) || v == 0 || v > p->max)
		return rsctl_usage_errorf("rsctl config",
					  "%s: '%s' is not a whole number in "
					  "1..%" PRIu64,
					  p->name, value, p->max);
	snprintf(text, sizeof text, "%" PRIu64, v); /* canonical: no "007" */
	rv = rsctl_cluster_open(&a->cluster, "rsctl config", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	batch_init(&b);
	if (batch_set(&b, key, (size_t)n, text, strlen(text), errmsg) != RS_OK) {
		rsctl_errorf("config set %s: %s", p->name, errmsg);
		rv = RSCTL_EXIT_FAIL;
		goto err_batch;
	}
	snprintf(what, sizeof what, "config set %s", p->name);
	if (rs_sync_commit(s, 0, NULL, NULL, 0, &b, &res) != RS_OK)
		rv = rsctl_fail(what, &res);
	else if (a->cluster.json)
		rv = rsctl_print_json(json_pack("{s:s,s:s,s:o}", "param",
						p->name, "value", text,
						"version",
						rs_json_u64(res.version)),
				      what);
	else
		printf("OK %s=%s version=%" PRIu64 " (a recovery with a new "
		       "epoch follows)\n", p->name, text, res.version);
	rs_result_free(&res);
err_batch:
	batch_free(&b);
	rs_sync_close(s);
	return rv;
}

/* The stored pair for param among kvs, or NULL. */
static const struct tsl_kv *cf_lookup(const struct ly_kvs *kvs,
				      const char *param)
{
	size_t plen = strlen(DIRECTOR_CONFIG_PREFIX), n = strlen(param);

	for (size_t i = 0; i < kvs->n; i++)
		if (kvs->kv[i].key_len == plen + n &&
		    memcmp(kvs->kv[i].key + plen, param, n) == 0)
			return &kvs->kv[i];
	return NULL;
}

/* One row of the text listing. */
static void cf_list_row(const uint8_t *name, size_t name_len,
			const struct tsl_kv *kv, bool known)
{
	char text[4 * CF_NAME_MAX + 4];

	rsctl_text(text, sizeof text, name, name_len, CF_NAME_MAX);
	printf("%-16s  ", text);
	if (kv != NULL)
		cf_print_value(kv->val, kv->val_len);
	else
		printf("(default)");
	printf("%s\n", known ? "" : "  (not a parameter rsctl knows)");
}

/* One parameter: a row of the table (params NULL) or an element of the
 * --json "params" array; false when out of memory. */
static bool cf_list_one(json_t *params, const uint8_t *name, size_t name_len,
			const struct tsl_kv *kv, bool known)
{
	json_t *o;

	if (params == NULL) {
		cf_list_row(name, name_len, kv, known);
		return true;
	}
	o = json_pack("{s:o,s:o}", "param", rs_json_bytes(name, name_len),
		      "value",
		      cf_json_value(kv ? kv->val : NULL, kv ? kv->val_len : 0,
				    kv != NULL));
	if (o != NULL && !known &&
	    rs_json_set_bool(o, "unknown", 1) != RS_OK) {
		json_decref(o);
		o = NULL;
	}
	return rs_json_push(params, o) == RS_OK;
}

/* Every parameter rsctl knows, in its order, then any other stored under
 * the prefix, in key order: a table, or one --json document. */
static int cf_list_print(const struct ly_args *a, const struct ly_kvs *kvs,
			 uint64_t version)
{
	size_t plen = strlen(DIRECTOR_CONFIG_PREFIX), i;
	json_t *params = a->cluster.json ? json_array() : NULL;
	bool ok = !a->cluster.json || params != NULL;

	for (i = 0; i < CF_PARAM_COUNT && ok; i++)
		ok = cf_list_one(params, (const uint8_t *)cf_params[i].name,
				 strlen(cf_params[i].name),
				 cf_lookup(kvs, cf_params[i].name), true);
	for (i = 0; i < kvs->n && ok; i++) {
		const struct tsl_kv *kv = &kvs->kv[i];
		size_t n = kv->key_len - plen;
		assert(kv->key_len > plen); /* the range starts after it */
		if (cf_find((const char *)kv->key + plen, n) != NULL)
			continue; /* listed above */
		ok = cf_list_one(params, kv->key + plen, n, kv, false);
	}
	if (!a->cluster.json)
		return RSCTL_EXIT_OK;
	if (!ok) {
		json_decref(params);
		params = NULL; /* json_pack below fails: out of memory */
	}
	return rsctl_print_json(json_pack("{s:o,s:o}", "read_version",
					  rs_json_u64(version), "params",
					  params),
				"config list");
}

static int cf_list(const struct ly_args *a)
{
	struct ly_kvs kvs = {NULL, 0, 0};
	size_t plen = strlen(DIRECTOR_CONFIG_PREFIX);
	uint64_t version = 0;
	struct rs_sync *s;
	int rv;

	rv = rsctl_cluster_open(&a->cluster, "rsctl config", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	rv = ly_range_all(s, "config list",
			  (const uint8_t *)DIRECTOR_CONFIG_PREFIX, plen,
			  (const uint8_t *)CF_PREFIX_END, strlen(CF_PREFIX_END),
			  &version, &kvs);
	if (rv == RSCTL_EXIT_OK)
		rv = cf_list_print(a, &kvs, version);
	ly_kvs_free(&kvs);
	rs_sync_close(s);
	return rv;
}

int rsctl_config_run(int argc, char **argv)
{
	static const unsigned npos[] = {1, 2, 0}; /* get, set, list */
	static const char *const subs[] = {"get", "set", "list"};
	const struct cf_param *p = NULL;
	struct ly_args a;
	unsigned sub;
	int rv;

	assert(argc >= 1);
	if (argc < 2)
		return rsctl_usage_errorf("rsctl config",
					  "missing subcommand (get, set or list)");
	if (rsctl_is_help(argv[1])) {
		cf_help();
		return RSCTL_EXIT_OK;
	}
	for (sub = 0; sub < 3 && strcmp(argv[1], subs[sub]) != 0; sub++)
		;
	if (sub == 3)
		return rsctl_usage_errorf("rsctl config",
					  "unknown config subcommand '%s'",
					  argv[1]);
	rv = ly_parse(argc, argv, 2, "rsctl config", NULL, npos[sub], cf_help,
		      &a);
	if (rv != RSCTL_EXIT_OK)
		return rv < 0 ? RSCTL_EXIT_OK : rv;
	if (a.n_pos < npos[sub])
		return rsctl_usage_errorf("rsctl config", "config %s needs %s",
					  subs[sub],
					  sub == 1 ? "PARAM VALUE" : "PARAM");
	if (sub == 2)
		return cf_list(&a);
	p = cf_find(a.pos[0], strlen(a.pos[0]));
	if (p == NULL)
		return rsctl_usage_errorf("rsctl config",
					  "unknown parameter '%s' (one of "
					  "commit_proxies, resolvers, "
					  "batch_count_max, batch_delay_us)",
					  a.pos[0]);
	return sub == 0 ? cf_get(&a, p) : cf_set(&a, p, a.pos[1]);
}
