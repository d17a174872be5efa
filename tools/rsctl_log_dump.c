/*
 * rsctl log dump: every batch in the journal, one line each.
 *
 * As text, keys and values are quoted and escaped (rsctl_put_quoted) and
 * cut so that one huge value stays a short line; as NDJSON (--json), each
 * line is one document built with the JSON layer, byte strings one code
 * point per byte, never cut.  --from and --to bound the versions: the
 * journal replays from --from, and the replay stops at the first batch
 * past --to.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"
#include "tools/rsctl_log.h"

/* Text dump: bytes shown of a key or value before it is cut with "...". */
#define LOG_TEXT_KEY_MAX 256u
#define LOG_TEXT_VALUE_MAX 64u

static void log_dump_text(FILE *f, const struct batch *b)
{
	struct mutation m;
	size_t pos = 0;

	fprintf(f, "version=%" PRIu64 " epoch=%" PRIu64 " count=%" PRIu32,
		b->version, b->epoch, b->count);
	while (batch_next(b, &pos, &m)) {
		switch (m.type) {
		case MUT_SET:
			fputs(" set ", f);
			rsctl_put_quoted(f, m.key, m.key_len, LOG_TEXT_KEY_MAX);
			fputc('=', f);
			rsctl_put_quoted(f, m.val, m.val_len,
					 LOG_TEXT_VALUE_MAX);
			break;
		case MUT_CLEAR:
			fputs(" del ", f);
			rsctl_put_quoted(f, m.key, m.key_len, LOG_TEXT_KEY_MAX);
			break;
		case MUT_CLEAR_RANGE:
			fputs(" clear-range [", f);
			rsctl_put_quoted(f, m.key, m.key_len, LOG_TEXT_KEY_MAX);
			fputc(',', f);
			rsctl_put_quoted(f, m.val, m.val_len, LOG_TEXT_KEY_MAX);
			fputc(')', f);
			break;
		}
	}
	fputc('\n', f);
}

/* One batch as a line of NDJSON; an exit code. */
static int log_dump_json(const struct batch *b)
{
	json_t *muts = json_array();
	struct mutation m;
	size_t pos = 0;

	while (muts != NULL && batch_next(b, &pos, &m)) {
		json_t *o = json_object();
		if (o == NULL || rsctl_json_mutation(o, &m) != RS_OK ||
		    rs_json_push(muts, o) != RS_OK) {
			json_decref(o);
			json_decref(muts);
			muts = NULL; /* json_pack below fails: out of memory */
		}
	}
	return rsctl_print_json(json_pack("{s:o,s:o,s:o,s:o}", "version",
					  rs_json_u64(b->version), "epoch",
					  rs_json_u64(b->epoch), "count",
					  rs_json_u64(b->count), "mutations",
					  muts),
				"log dump");
}

struct log_dump {
	const struct log_args *args;
	uint64_t printed;
	bool stopped; /* passed --to: the replay was cut short on purpose */
};

static int log_dump_fn(void *ctx, const struct batch *b)
{
	struct log_dump *dump = ctx;

	/* journal_open replays only versions above from - 1. */
	assert(b->version >= dump->args->from);
	if (b->version > dump->args->to) {
		dump->stopped = true;
		return RS_ESHUTDOWN; /* stops journal_open; see log_dump_run */
	}
	if (!dump->args->json)
		log_dump_text(stdout, b);
	else if (log_dump_json(b) != RSCTL_EXIT_OK)
		return RS_ENOMEM; /* said why; stops journal_open */
	dump->printed++;
	return RS_OK;
}

int log_dump_run(const struct log_args *a, const struct log_dirs *d)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct journal_report r;
	struct log_dump dump;
	int rv;

	assert(a->from <= a->to);
	if (!d->have_journal) {
		rsctl_errorf("%s: no journal directory", d->arg);
		return RSCTL_EXIT_FAIL;
	}
	memset(&dump, 0, sizeof dump);
	dump.args = a;
	rv = log_journal_replay(d, a->from > 0 ? a->from - 1 : 0, log_dump_fn,
				&dump, &r, errmsg);
	if (rv == RS_ESHUTDOWN && dump.stopped)
		rv = RS_OK;
	if (fflush(stdout) != 0) {
		rsctl_errorf("write to stdout: %s", strerror(errno));
		return RSCTL_EXIT_FAIL;
	}
	if (r.torn && rv == RS_OK && !dump.stopped)
		log_print_torn(stderr, d, &r);
	if (rv != RS_OK) {
		log_print_journal_error(stderr, d, &r, rv, errmsg);
		return RSCTL_EXIT_FAIL;
	}
	return RSCTL_EXIT_OK;
}
