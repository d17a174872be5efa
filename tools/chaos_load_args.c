/*
 * chaos_load_args: the command line of `rschaos load`; see
 * chaos_load_args.h.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/chaos.h"
#include "tools/chaos_cmd.h"
#include "tools/chaos_histfile.h"
#include "tools/chaos_load_args.h"

#define LOAD_DURATION_S_DEFAULT 30.0
#define LOAD_DURATION_S_MAX (7.0 * 24 * 3600)
#define LOAD_CLIENTS_DEFAULT 8u
#define LOAD_CLIENTS_MAX 1024u
#define LOAD_KEYS_DEFAULT 5u
#define LOAD_KEYS_MAX 100000u
#define LOAD_OP_TIMEOUT_MS_DEFAULT 2000u
#define LOAD_OP_TIMEOUT_MS_MAX 600000u

void chaos_load_args_help(FILE *f)
{
	fprintf(f,
"Usage: rschaos load --endpoints H:P,... --out FILE [OPTIONS]\n"
"Run the chaos workload against a cluster and record its history in FILE\n"
"(NDJSON, format 1: a meta line, one line per completed op, an end line\n"
"with the line count and CRC-32C; FILE is replaced).\n\n"
"N clients on one event loop, each with its own connection and one op at a\n"
"time: 40%% linearizable reads and 25%% writes of the register keys\n"
"P/k/0..K-1, 20%% compare-and-set on them (a linearizable read, then a\n"
"write that conflicts if the key changed since), 15%% writes of new keys\n"
"P/u/C-SEQ.  Every value written is unique (\"C-SEQ\").  Each op is recorded\n"
"as ok, fail (certainly not applied) or unknown (may have been applied).\n"
"A client sleeps 20-50 ms after an op that failed or ended unknown (but\n"
"not after a cas mismatch or conflict); the run goes on through outages.\n"
"Progress goes to stderr every second.\n\n"
"Options:\n"
"  --endpoints LIST     client endpoints, HOST:PORT,... (required)\n"
"  --out FILE           the history to write (required)\n"
"  --duration S         seconds to run, may be fractional (default 30)\n"
"  --clients N          logical clients, 1..%u (default %u)\n"
"  --keys K             register keys, 1..%u (default %u)\n"
"  --seed N             PRNG seed, 0..2^63-1 (default: from the clock;\n"
"                       printed, and recorded in the meta line)\n"
"  --prefix P           key prefix, printable ASCII without spaces, up to %u\n"
"                       bytes (default chaos-<seed>-<unix time>)\n"
"  --op-timeout-ms MS   per request, retries included (default %u)\n"
"  --help               this text\n\n"
"At the end of --duration no new op starts, and the outstanding ones get\n"
"up to twice --op-timeout-ms plus 1 s to answer.  SIGINT or SIGTERM end\n"
"the run early the same way, with up to %u ms (a second signal: at\n"
"once).  Ops still unanswered then are recorded as unknown (writes) or\n"
"fail (reads), and the history is closed normally.\n\n"
"Exit codes: 0 the run completed (whatever the cluster did), 2 bad\n"
"arguments or FILE could not be written.\n",
		LOAD_CLIENTS_MAX, LOAD_CLIENTS_DEFAULT, LOAD_KEYS_MAX,
		LOAD_KEYS_DEFAULT, CHAOS_HISTFILE_PREFIX_MAX,
		LOAD_OP_TIMEOUT_MS_DEFAULT, LOAD_SIGNAL_GRACE_MS);
}

static int load_check_prefix(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > CHAOS_HISTFILE_PREFIX_MAX)
		return chaos_cmd_usage_errorf("load", "--prefix: must have 1 "
					      "to %u bytes",
					      CHAOS_HISTFILE_PREFIX_MAX);
	for (size_t i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '\\')
			return chaos_cmd_usage_errorf("load", "--prefix '%s': "
						      "only printable ASCII, "
						      "no spaces or "
						      "backslashes", p);
	return CHAOS_EXIT_OK;
}

static int load_parse_duration(const char *v, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || !(d > 0) ||
	    d > LOAD_DURATION_S_MAX)
		return chaos_cmd_usage_errorf("load", "--duration: '%s' is "
					      "not a number of seconds above "
					      "0", v);
	*out = d;
	return CHAOS_EXIT_OK;
}

/* One option at argv[*i]: an exit code, or -1 if it is not a load option. */
static int load_parse_opt(int argc, char **argv, int *i,
			  struct chaos_load_args *a)
{
	static const struct {
		const char *flag;
		uint64_t min, max;
		size_t off;
	} nums[] = {
		{"--clients", 1, LOAD_CLIENTS_MAX,
		 offsetof(struct chaos_load_args, clients)},
		{"--keys", 1, LOAD_KEYS_MAX,
		 offsetof(struct chaos_load_args, keys)},
		{"--seed", 0, INT64_MAX,
		 offsetof(struct chaos_load_args, seed)},
		{"--op-timeout-ms", 1, LOAD_OP_TIMEOUT_MS_MAX,
		 offsetof(struct chaos_load_args, op_timeout_ms)},
	};
	const char *v = NULL;
	int rv;

	for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
		rv = chaos_cmd_str_opt("load", argc, argv, i, nums[k].flag, &v);
		if (rv == -1)
			continue;
		if (rv != CHAOS_EXIT_OK)
			return rv;
		a->seed_given |= strcmp(nums[k].flag, "--seed") == 0;
		return chaos_cmd_num_opt("load", nums[k].flag, v, nums[k].min,
					 nums[k].max,
					 (uint64_t *)((char *)a + nums[k].off));
	}
	if ((rv = chaos_cmd_str_opt("load", argc, argv, i, "--endpoints",
				    &a->endpoints)) != -1 ||
	    (rv = chaos_cmd_str_opt("load", argc, argv, i, "--out",
				    &a->out)) != -1)
		return rv;
	if ((rv = chaos_cmd_str_opt("load", argc, argv, i, "--prefix",
				    &v)) != -1) {
		a->prefix = v;
		return rv == CHAOS_EXIT_OK ? load_check_prefix(v) : rv;
	}
	if ((rv = chaos_cmd_str_opt("load", argc, argv, i, "--duration",
				    &v)) != -1)
		return rv == CHAOS_EXIT_OK ? load_parse_duration(v, &a->duration_s)
					   : rv;
	return -1;
}

int chaos_load_args_parse(int argc, char **argv, struct chaos_load_args *a)
{
	int rv;

	memset(a, 0, sizeof *a);
	a->duration_s = LOAD_DURATION_S_DEFAULT;
	a->clients = LOAD_CLIENTS_DEFAULT;
	a->keys = LOAD_KEYS_DEFAULT;
	a->op_timeout_ms = LOAD_OP_TIMEOUT_MS_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			a->help = true;
			return CHAOS_EXIT_OK;
		}
		rv = load_parse_opt(argc, argv, &i, a);
		if (rv == -1)
			return chaos_cmd_usage_errorf("load", "unknown "
						      "argument '%s'", argv[i]);
		if (rv != CHAOS_EXIT_OK)
			return rv;
	}
	if (a->endpoints == NULL)
		return chaos_cmd_usage_errorf("load",
					      "--endpoints is required");
	if (a->out == NULL)
		return chaos_cmd_usage_errorf("load", "--out is required");
	assert(a->clients >= 1 && a->keys >= 1 && a->op_timeout_ms >= 1);
	return CHAOS_EXIT_OK;
}
