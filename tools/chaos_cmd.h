/*
 * chaos_cmd: what the two rschaos commands that talk to a cluster,
 * `load` (chaos_load.c) and `final` (chaos_final.c), share: their usage
 * errors and option parsing, in the same words and with the same exit
 * codes (chaos.h), the up-front check of --endpoints, and the clocks.
 *
 * A usage error is printed to stderr as "rschaos CMD: what (see rschaos
 * CMD --help)" and returns CHAOS_EXIT_USAGE.  Single-threaded.
 */
#ifndef RS_CHAOS_CMD_H
#define RS_CHAOS_CMD_H

#include <stdint.h>

/* Print a usage error of command cmd ("load", "final"); returns
 * CHAOS_EXIT_USAGE. */
int chaos_cmd_usage_errorf(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The whole number v of option flag into *out, if within [min, max]: an
 * exit code (a usage error, *out untouched, if not). */
int chaos_cmd_num_opt(const char *cmd, const char *flag, const char *v,
		      uint64_t min, uint64_t max, uint64_t *out);

/* A string option at argv[*i] ("--flag V" or "--flag=V"; *i moves past a
 * separate V) into *out: -1 if argv[*i] is not `flag`, else an exit code
 * (a usage error if the value is missing or empty). */
int chaos_cmd_str_opt(const char *cmd, int argc, char **argv, int *i,
		      const char *flag, const char **out);

/* Refuse a bad endpoint list before anything is created: a client on a
 * loop of its own parses it (and connects to nothing).  Blocks briefly;
 * an exit code. */
int chaos_cmd_check_endpoints(const char *cmd, const char *endpoints);

/* Microseconds on CLOCK_MONOTONIC, and since the Unix epoch. */
uint64_t chaos_cmd_mono_us(void);
uint64_t chaos_cmd_unix_us(void);

#endif /* RS_CHAOS_CMD_H */
