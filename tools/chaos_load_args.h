/*
 * chaos_load_args: the command line of `rschaos load` (chaos_load.c):
 * its options, their defaults and bounds, and its --help text.
 *
 * Parsing is strict: an unknown argument, a missing or empty value, or a
 * number out of its bounds is a usage error (chaos_cmd.h) and nothing
 * runs.  Single-threaded; prints only usage errors and the help text.
 */
#ifndef RS_CHAOS_LOAD_ARGS_H
#define RS_CHAOS_LOAD_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* How long outstanding ops may still answer after a signal (--help says
 * so). */
#define LOAD_SIGNAL_GRACE_MS 1000u

struct chaos_load_args {
	const char *endpoints;
	const char *out;
	const char *prefix; /* NULL: chaos-<seed>-<unixtime> */
	double duration_s;
	uint64_t clients;
	uint64_t keys;
	uint64_t seed;
	bool seed_given;
	uint64_t op_timeout_ms;
	bool help;
};

/* argv[1..argc) (argv[0] is "load") into *a, defaults first.  An exit code
 * (chaos.h): CHAOS_EXIT_OK with a->help set when --help was asked for
 * (nothing else is then checked), else with --endpoints and --out set and
 * every number within its bounds. */
int chaos_load_args_parse(int argc, char **argv, struct chaos_load_args *a);

/* The --help text. */
void chaos_load_args_help(FILE *f);

#endif /* RS_CHAOS_LOAD_ARGS_H */
