/*
 * chaos_cmd: what rschaos load and final share; see chaos_cmd.h.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <uv.h>

#include "raftstore/client.h"
#include "raftstore/lib/rs_error.h"
#include "tools/chaos.h"
#include "tools/chaos_cmd.h"
#include "tools/cliopt.h"

int chaos_cmd_usage_errorf(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rschaos %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see rschaos %s --help)\n", cmd);
	return CHAOS_EXIT_USAGE;
}

int chaos_cmd_num_opt(const char *cmd, const char *flag, const char *v,
		      uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (!cliopt_parse_u64(v, &n) || n < min || n > max)
		return chaos_cmd_usage_errorf(cmd, "%s: '%s' is not a whole "
					      "number from %" PRIu64
					      " to %" PRIu64, flag, v, min,
					      max);
	*out = n;
	return CHAOS_EXIT_OK;
}

/* A string option at argv[*i] into *out: -1 if argv[*i] is not `flag`,
 * else an exit code. */
int chaos_cmd_str_opt(const char *cmd, int argc, char **argv, int *i,
		      const char *flag, const char **out)
{
	bool missing;
	const char *v = cliopt_value(argc, argv, i, flag, &missing);

	if (missing || (v != NULL && v[0] == '\0'))
		return chaos_cmd_usage_errorf(cmd, "%s needs a value", flag);
	if (v == NULL)
		return -1;
	*out = v;
	return CHAOS_EXIT_OK;
}

/* Refuse a bad endpoint list before anything is created: a client on a
 * loop of its own parses it (and connects to nothing). */
int chaos_cmd_check_endpoints(const char *cmd, const char *endpoints)
{
	struct rs_client_options o = {.endpoints = endpoints};
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_client *rc;
	uv_loop_t loop;
	int rv;

	if (uv_loop_init(&loop) != 0)
		return chaos_cmd_usage_errorf(cmd,
					      "cannot create an event loop");
	rv = rs_client_create(&rc, &loop, &o, errmsg);
	if (rv == RS_OK) {
		rs_client_close(rc, NULL, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_close(&loop) != 0)
		assert(false); /* every handle was closed */
	if (rv != RS_OK)
		return chaos_cmd_usage_errorf(cmd, "--endpoints: %s",
					      errmsg[0] ? errmsg
							: rs_strerror(rv));
	return CHAOS_EXIT_OK;
}

uint64_t chaos_cmd_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t chaos_cmd_unix_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}
