/*
 * chaos_final: `rschaos final`, run after the chaos run and the final
 * restart of the cluster: it reads back every key the workload wrote
 * under P/u/ and appends them to the history, for `rschaos check` to
 * verify that every acknowledged unique write survived.
 *
 * It appends only to a complete history: the first line must be a meta
 * line of format 1 with a usable prefix, and the last an end line whose
 * line count and CRC-32C match the bytes before it; anything else is left
 * alone.  The keys are read in one snapshot (the first page
 * linearizable, the rest at its read version), retried while the cluster
 * comes back, until a deadline.  Then a final line and a new end line go
 * through the history writer (chaos_histfile.h), whose checksum continues
 * from the bytes already in the file, and the file is fsynced.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftstore/client.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tools/chaos.h"
#include "tools/chaos_cmd.h"
#include "tools/chaos_histfile.h"

#define FINAL_TIMEOUT_MS_DEFAULT 30000u
#define FINAL_OP_TIMEOUT_MS_MAX 5000u
#define FINAL_RETRY_MS 250u
#define FINAL_PAGE_ROWS WIRE_RANGE_LIMIT_DEFAULT

struct final_args {
	const char *endpoints;
	const char *out;
	uint64_t timeout_ms;
	bool help;
};

/* The history as found, before final appends to it. */
struct final_hist {
	char *data;
	size_t len;
	uint64_t lines;
	char prefix[CHAOS_HISTFILE_PREFIX_MAX + 1];
};

static void final_help(FILE *f)
{
	fprintf(f,
"Usage: rschaos final --endpoints H:P,... --out FILE [--timeout-ms MS]\n"
"After a chaos run: read every key under P/u/ (P is the prefix in FILE's\n"
"meta line) with a linearizable range read, paged at one read version, and\n"
"append a \"final\" line with them and an end line to FILE.  Reads are\n"
"retried while the cluster comes back, until --timeout-ms (default %u).\n"
"FILE must end with a valid end line (a complete load section); a cut or\n"
"damaged history is left alone.\n\n"
"Exit codes: 0 appended, 2 bad arguments, FILE unreadable, truncated or\n"
"not writable, or the keys could not be read in time.\n",
		FINAL_TIMEOUT_MS_DEFAULT);
}

static int final_parse(int argc, char **argv, struct final_args *a)
{
	const char *v = NULL;
	int rv;

	memset(a, 0, sizeof *a);
	a->timeout_ms = FINAL_TIMEOUT_MS_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			a->help = true;
			return CHAOS_EXIT_OK;
		}
		if ((rv = chaos_cmd_str_opt("final", argc, argv, &i,
					    "--endpoints", &a->endpoints)) == -1 &&
		    (rv = chaos_cmd_str_opt("final", argc, argv, &i, "--out",
					    &a->out)) == -1 &&
		    (rv = chaos_cmd_str_opt("final", argc, argv, &i,
					    "--timeout-ms", &v)) == CHAOS_EXIT_OK)
			rv = chaos_cmd_num_opt("final", "--timeout-ms", v, 1,
					       24u * 3600u * 1000u,
					       &a->timeout_ms);
		if (rv == -1)
			return chaos_cmd_usage_errorf("final", "unknown "
						      "argument '%s'", argv[i]);
		if (rv != CHAOS_EXIT_OK)
			return rv;
	}
	if (a->endpoints == NULL)
		return chaos_cmd_usage_errorf("final",
					      "--endpoints is required");
	if (a->out == NULL)
		return chaos_cmd_usage_errorf("final", "--out is required");
	return CHAOS_EXIT_OK;
}

static int final_slurp(const char *path, struct final_hist *h)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1u << 16, got;

	if (f == NULL)
		return errno;
	h->data = malloc(cap);
	h->len = 0;
	while (h->data != NULL &&
	       (got = fread(h->data + h->len, 1, cap - h->len, f)) > 0) {
		h->len += got;
		if (h->len == cap) {
			char *p = realloc(h->data, cap *= 2);
			if (p == NULL)
				free(h->data);
			h->data = p;
		}
	}
	if (h->data == NULL || ferror(f)) {
		int err = h->data == NULL ? ENOMEM : errno ? errno : EIO;
		fclose(f);
		return err;
	}
	fclose(f);
	assert(h->len < cap);
	return 0;
}

/* The meta line (line 1): the prefix. */
static bool final_meta(struct final_hist *h, size_t len, char *why,
		       size_t size)
{
	json_error_t jerr;
	json_t *meta = json_loadb(h->data, len, 0, &jerr);
	const char *prefix = json_string_value(json_object_get(meta, "prefix"));
	json_int_t format = json_integer_value(json_object_get(meta, "format"));
	bool ok = false;

	if (meta == NULL)
		snprintf(why, size, "line 1 is not JSON: %s", jerr.text);
	else if (!json_is_string(json_object_get(meta, "kind")) ||
		 strcmp(json_string_value(json_object_get(meta, "kind")),
			"meta") != 0)
		snprintf(why, size, "line 1 is not a meta line");
	else if (format != CHAOS_HISTFILE_FORMAT)
		snprintf(why, size, "format %lld, not %d", (long long)format,
			 CHAOS_HISTFILE_FORMAT);
	else if (prefix == NULL || prefix[0] == '\0' ||
		 strlen(prefix) > CHAOS_HISTFILE_PREFIX_MAX ||
		 strchr(prefix, '\\'))
		snprintf(why, size, "the meta line has no usable prefix");
	else
		ok = true;
	if (ok)
		snprintf(h->prefix, sizeof h->prefix, "%s", prefix);
	json_decref(meta);
	return ok;
}

/* The last line must be an end line that matches what precedes it. */
static bool final_end_ok(const struct final_hist *h, size_t start,
			 char *why, size_t size)
{
	json_t *end = json_loadb(h->data + start, h->len - start - 1, 0, NULL);
	const char *kind = json_string_value(json_object_get(end, "kind"));
	const char *crc = json_string_value(json_object_get(end, "crc32c"));
	json_int_t lines = json_integer_value(json_object_get(end, "lines"));
	char want[9];
	bool ok;

	snprintf(want, sizeof want, "%08" PRIx32, crc32c(h->data, start));
	ok = kind != NULL && strcmp(kind, "end") == 0 && crc != NULL &&
	     strcmp(crc, want) == 0 && lines >= 0 &&
	     (uint64_t)lines == h->lines - 1;
	if (!ok)
		snprintf(why, size, "line %" PRIu64 " is not a valid end line "
			 "(the history is truncated or corrupt)", h->lines);
	json_decref(end);
	return ok;
}

/* Read FILE and check it: a meta line first, a valid end line last. */
static int final_load_hist(const char *path, struct final_hist *h)
{
	char why[256];
	size_t first_len, last_start = 0;
	int err = final_slurp(path, h);

	if (err != 0) {
		fprintf(stderr, "rschaos final: --out %s: %s\n", path,
			strerror(err));
		return CHAOS_EXIT_USAGE;
	}
	h->lines = 0;
	for (size_t i = 0; i < h->len; i++)
		if (h->data[i] == '\n') {
			h->lines++;
			if (i + 1 < h->len)
				last_start = i + 1;
		}
	first_len = h->len > 0 ? strcspn(h->data, "\n") : 0;
	if (h->len == 0 || h->data[h->len - 1] != '\n' || h->lines < 2)
		snprintf(why, sizeof why, "%s", h->len == 0 ? "empty"
					      : "the last line is cut or missing");
	else if (final_meta(h, first_len, why, sizeof why) &&
		 final_end_ok(h, last_start, why, sizeof why))
		return CHAOS_EXIT_OK;
	fprintf(stderr, "rschaos final: --out %s: %s; nothing appended\n",
		path, why);
	return CHAOS_EXIT_USAGE;
}

/* One page's rows into keys; *next is where the next page starts. */
static bool final_page(const struct rs_result *res, json_t *keys,
		       uint8_t *next, size_t *next_len)
{
	char k[CHAOS_HISTFILE_KEY_MAX + 64], v[CHAOS_HISTFILE_VALUE_TEXT_MAX];
	const struct rs_kv *last;

	for (size_t i = 0; i < res->n_kvs; i++) {
		chaos_histfile_text(k, sizeof k, res->kvs[i].key,
				    res->kvs[i].key_len);
		chaos_histfile_text(v, sizeof v, res->kvs[i].val,
				    res->kvs[i].val_len);
		json_object_set_new(keys, k, json_string(v));
	}
	if (!res->more || res->n_kvs == 0)
		return false;
	last = &res->kvs[res->n_kvs - 1];
	assert(last->key_len < RS_KEY_SIZE_MAX);
	/* The first key after the last one: itself and a 0 byte. */
	memcpy(next, last->key, last->key_len);
	next[last->key_len] = 0;
	*next_len = last->key_len + 1;
	return true;
}

/* Every key under prefix_u, one snapshot: the first page linearizable,
 * the rest at its read version.  RS_OK, or the failing status with
 * errmsg set. */
static int final_read_keys(struct rs_sync *s, const char *prefix_u,
			   json_t *keys, uint64_t *read_unix_us, char *errmsg)
{
	size_t plen = strlen(prefix_u), begin_len = plen;
	uint8_t *begin = malloc(RS_KEY_SIZE_MAX + 1);
	char end[CHAOS_HISTFILE_PREFIX_MAX + 8];
	uint64_t version = 0;
	bool more = true;
	int rv = RS_OK;

	if (begin == NULL)
		return RS_ENOMEM;
	assert(plen > 0 && prefix_u[plen - 1] == '/' && plen < sizeof end);
	memcpy(begin, prefix_u, plen);
	memcpy(end, prefix_u, plen);
	end[plen - 1] = '/' + 1; /* "P/u0": just past every "P/u/..." */
	*read_unix_us = chaos_cmd_unix_us();
	while (more && rv == RS_OK) {
		struct rs_result res;
		rv = rs_sync_range(s, begin, begin_len, end, plen,
				   FINAL_PAGE_ROWS,
				   version == 0 ? WIRE_READ_LINEARIZABLE
						: WIRE_READ_AT_VERSION,
				   version, &res);
		if (rv != RS_OK)
			snprintf(errmsg, RS_ERRMSG_SIZE, "%s: %s",
				 rs_strerror(rv), res.message);
		else if (version == 0)
			version = res.version;
		if (rv == RS_OK)
			more = final_page(&res, keys, begin, &begin_len);
		rs_result_free(&res);
	}
	free(begin);
	return rv;
}

static void final_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Read until it works or the timeout passes.  NULL when it did not. */
static json_t *final_read_retrying(const struct final_args *a,
				   const char *prefix_u, uint64_t *read_unix_us)
{
	uint64_t deadline = chaos_cmd_mono_us() + a->timeout_ms * 1000u;
	char errmsg[RS_ERRMSG_SIZE] = "no attempt made";
	unsigned attempt = 0;

	for (;;) {
		uint64_t now = chaos_cmd_mono_us(), left_ms;
		struct rs_client_options o = {.endpoints = a->endpoints};
		struct rs_sync *s;
		json_t *keys;
		int rv;
		if (now >= deadline)
			break;
		left_ms = (deadline - now + 999) / 1000;
		o.op_timeout_ms = (unsigned)(left_ms < FINAL_OP_TIMEOUT_MS_MAX
						     ? left_ms
						     : FINAL_OP_TIMEOUT_MS_MAX);
		if (rs_sync_open(&s, &o, errmsg) != RS_OK)
			break; /* a bad endpoint list: retrying will not help */
		keys = json_object();
		rv = keys ? final_read_keys(s, prefix_u, keys, read_unix_us,
					    errmsg)
			  : RS_ENOMEM;
		rs_sync_close(s);
		if (rv == RS_OK)
			return keys;
		json_decref(keys);
		fprintf(stderr, "final: attempt %u: %s\n", ++attempt, errmsg);
		if (chaos_cmd_mono_us() + FINAL_RETRY_MS * 1000u >= deadline)
			break;
		final_sleep_ms(FINAL_RETRY_MS);
	}
	fprintf(stderr, "rschaos final: could not read %s from --endpoints %s "
		"within %" PRIu64 " ms; last error: %s\n", prefix_u, a->endpoints,
		a->timeout_ms, errmsg);
	return NULL;
}

static int final_append(const char *path, struct final_hist *h,
			const char *prefix_u, json_t *keys,
			uint64_t read_unix_us)
{
	struct chaos_histfile out = {.path = path, .lines = h->lines};
	size_t n = json_object_size(keys);
	json_t *line;

	out.crc = crc32c(h->data, h->len);
	out.f = fopen(path, "ab");
	if (out.f == NULL) {
		fprintf(stderr, "rschaos final: --out %s: %s\n", path,
			strerror(errno));
		json_decref(keys);
		return CHAOS_EXIT_USAGE;
	}
	line = json_pack("{s:s, s:s, s:o, s:o}", "kind", "final", "prefix",
			 prefix_u, "read_unix_us", rs_json_u64(read_unix_us),
			 "keys", keys);
	if (line == NULL)
		out.err = ENOMEM;
	else
		chaos_histfile_line(&out, line);
	if (chaos_histfile_close(&out) != 0) {
		fprintf(stderr, "rschaos final: --out %s: write: %s\n", path,
			strerror(out.err));
		return CHAOS_EXIT_USAGE;
	}
	fprintf(stderr, "final: %zu keys under %s; appended to %s\n", n,
		prefix_u, path);
	return CHAOS_EXIT_OK;
}

int chaos_final_main(int argc, char **argv)
{
	struct final_args a;
	struct final_hist h = {0};
	char prefix_u[CHAOS_HISTFILE_PREFIX_MAX + 8];
	uint64_t read_unix_us = 0;
	json_t *keys;
	int rv = final_parse(argc, argv, &a);

	if (rv != CHAOS_EXIT_OK || a.help) {
		if (a.help)
			final_help(stdout);
		return rv;
	}
	signal(SIGPIPE, SIG_IGN);
	rv = chaos_cmd_check_endpoints("final", a.endpoints);
	if (rv == CHAOS_EXIT_OK)
		rv = final_load_hist(a.out, &h);
	if (rv != CHAOS_EXIT_OK)
		goto out;
	snprintf(prefix_u, sizeof prefix_u, "%s/u/", h.prefix);
	keys = final_read_retrying(&a, prefix_u, &read_unix_us);
	rv = keys == NULL ? CHAOS_EXIT_USAGE
			  : final_append(a.out, &h, prefix_u, keys, read_unix_us);
out:
	free(h.data);
	return rv;
}
