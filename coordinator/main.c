/* raftstored: one raftstore node.  See coordinator/node.h and --help. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "coordinator/config.h"
#include "coordinator/node.h"
#include "raftstore/lib/rs_error.h"

int main(int argc, char **argv)
{
	struct config cfg;
	char errmsg[RS_ERRMSG_SIZE] = "";

	signal(SIGPIPE, SIG_IGN);
	config_defaults(&cfg);
	if (config_parse(&cfg, argc, argv, errmsg) != RS_OK) {
		fprintf(stderr, "raftstored: %s\nTry 'raftstored --help'.\n", errmsg);
		return NODE_EXIT_USAGE;
	}
	if (cfg.help) {
		config_usage(stdout);
		return NODE_EXIT_OK;
	}
	if (cfg.version) {
		printf("raftstored %s\n", PACKAGE_VERSION);
#ifdef RS_FAULT_HOOKS
		/* Tests that need a hook look for this line (docs/architecture.md,
		 * "Test hooks"). */
		printf("fault hooks: compiled in (RS_FAULT_*, test builds only)\n");
#endif
		return NODE_EXIT_OK;
	}
	if (config_validate(&cfg, errmsg) != RS_OK) {
		fprintf(stderr, "raftstored: %s\nTry 'raftstored --help'.\n", errmsg);
		return NODE_EXIT_USAGE;
	}
	return node_run(&cfg);
}
