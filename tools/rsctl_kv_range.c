/*
 * rsctl range: the keys in [BEGIN, END), or under a prefix, in key order.
 *
 * The listing is read page by page (KV_PAGE_ROWS rows a request), every
 * page after the first at the first page's read version, so it is one
 * consistent snapshot however many pages it takes.  The text table is
 * printed as the pages come; the --json document is one object holding
 * every row, printed once the last page is in.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_kv.h"

/* Rows asked for per RANGE request (the server's default page). */
#define KV_PAGE_ROWS WIRE_RANGE_LIMIT_DEFAULT
/* Bytes of a key or value shown in the range table before "...". */
#define KV_TABLE_KEY_MAX 64u
#define KV_TABLE_VALUE_MAX 48u
/* Room for the escaped, cut text of either (4 chars a byte, "...", NUL). */
#define KV_TABLE_CELL (4u * KV_TABLE_KEY_MAX + 4u)

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
	json_t *kvs;           /* --json: every row so far */
	bool json_failed;      /* --json: a row could not be added */
};

static void kv_range_head(struct kv_range *r, const struct rs_result *res)
{
	char cell[KV_TABLE_CELL];
	size_t i, n;

	if (r->args->cluster.json) {
		assert(r->kvs == NULL);
		r->kvs = json_array(); /* NULL: the first push fails */
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
		json_t *row = json_pack("{s:o,s:o,s:o}", "key",
					rs_json_bytes(kv->key, kv->key_len),
					"value",
					rs_json_bytes(kv->val, kv->val_len),
					"version", rs_json_u64(kv->version));
		if (rs_json_push(r->kvs, row) != RS_OK)
			r->json_failed = true;
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

/* The end of the listing: the --json document, or the note that --limit
 * cut the table short.  Returns an exit code. */
static int kv_range_tail(struct kv_range *r)
{
	json_t *kvs = r->kvs;

	if (r->args->cluster.json) {
		r->kvs = NULL; /* json_pack steals it, even when it fails */
		if (r->json_failed) {
			json_decref(kvs);
			kvs = NULL; /* so that json_pack fails: out of memory */
		}
		return rsctl_print_json(
			json_pack("{s:o,s:o,s:o,s:b}", "read_version",
				  rs_json_u64(r->read_version), "kvs", kvs,
				  "count", rs_json_u64(r->printed), "more",
				  r->more),
			"range");
	}
	if (r->more)
		rsctl_errorf("range: stopped at --limit %" PRIu64
			     "; more keys follow",
			     r->args->limit);
	return RSCTL_EXIT_OK;
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
		rv = kv_range_tail(r);
	return rv;
}

int kv_range_run(struct kv_args *a, const char *help_cmd)
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
	/* The system key space only on request: it is the director's. */
	if (!a->system && begin_len > 0 && r->begin[0] == 0xff)
		rv = rsctl_usage_errorf(help_cmd, "BEGIN is in the system key "
						  "space (\\xff...): add "
						  "--system to list it");
	else if (!a->system &&
		 (r->end_len == 0 ||
		  bytes_compare(r->end, r->end_len, (const uint8_t *)"\xff",
				1) > 0)) {
		r->end[0] = 0xff;
		r->end_len = 1;
	}
	if (rv == RSCTL_EXIT_OK && r->end_len > 0 &&
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
	json_decref(r->kvs); /* a read failed after the first page */
	free(r);
	return rv;
}
