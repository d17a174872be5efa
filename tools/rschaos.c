/* rschaos: see chaos.h.  This file only dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "tools/chaos.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} rschaos_commands[] = {
	{"load", chaos_load_main, "run the workload and record its history"},
	{"final", chaos_final_main,
	 "read back the unique keys and append them to the history"},
	{"check", chaos_check_main, "check a recorded history"},
};

static void rschaos_usage(FILE *f)
{
	fprintf(f, "Usage: rschaos COMMAND [OPTIONS]  (COMMAND --help for more)\n"
		   "The engine of tools/chaos.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof rschaos_commands / sizeof rschaos_commands[0];
	     i++)
		fprintf(f, "  %-6s %s\n", rschaos_commands[i].name,
			rschaos_commands[i].summary);
	fprintf(f, "\nExit codes: 0 ok, 1 a check failed, 2 usage or harness "
		   "error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		rschaos_usage(stderr);
		return CHAOS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		rschaos_usage(stdout);
		return CHAOS_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof rschaos_commands / sizeof rschaos_commands[0];
	     i++)
		if (strcmp(argv[1], rschaos_commands[i].name) == 0)
			return rschaos_commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "rschaos: unknown command '%s'\n", argv[1]);
	rschaos_usage(stderr);
	return CHAOS_EXIT_USAGE;
}
