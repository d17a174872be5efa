/*
 * cliopt: the command-line pieces every tool here shares (rsctl, rschaos).
 *
 * One option scanner and one strict number parser, so that every tool
 * accepts `--name V` and `--name=V` alike and refuses the same malformed
 * numbers with the same rules.
 */
#ifndef RS_CLIOPT_H
#define RS_CLIOPT_H

#include <stdbool.h>
#include <stdint.h>

/* If argv[*i] is `name` (e.g. "--endpoints"), return its value: "--name=V"
 * or "--name V" (then *i moves past V); the result points into argv.  NULL
 * if argv[*i] is not `name` (*i unchanged), or if V is missing because
 * argv[*i] is the last argument (then *missing is set).  "--name=" gives
 * "": the caller judges V. */
const char *cliopt_value(int argc, char **argv, int *i, const char *name,
			 bool *missing);

/* Parse a whole decimal u64 ("12"; not "", NULL, "-1", " 1", "1x", or out
 * of range). */
bool cliopt_parse_u64(const char *s, uint64_t *out);

#endif /* RS_CLIOPT_H */
