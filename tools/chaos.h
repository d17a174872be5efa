/*
 * rschaos: the engine of the chaos tool (tools/chaos drives it).
 *
 * Three subcommands, each in its own module:
 *   load   run the workload against a cluster and write the history
 *          (chaos_load.c);
 *   final  after the run, read back every unique key and append the
 *          result to the history (chaos_final.c);
 *   check  check a recorded history: linearizability per key and the
 *          survival of acknowledged unique writes (chaos_check.c).
 * The history is NDJSON, one operation per line; docs/chaos.md draws it.
 * Exit codes are the tool's contract with scripts.
 */
#ifndef RS_CHAOS_H
#define RS_CHAOS_H

enum chaos_exit {
	CHAOS_EXIT_OK = 0,        /* every check passed, or the command ran */
	CHAOS_EXIT_VIOLATION = 1, /* a check failed */
	CHAOS_EXIT_USAGE = 2,     /* bad arguments, unreadable input, harness */
};

/* Each gets argv with argv[0] the subcommand name; returns a chaos_exit. */
int chaos_load_main(int argc, char **argv);
int chaos_final_main(int argc, char **argv);
int chaos_check_main(int argc, char **argv);

#endif
