/*
 * rsctl: command dispatcher.  `rsctl <command> [args]` looks the command up
 * in rsctl_commands and hands it the rest of argv.  New command groups
 * (get/put/del/range/txn/watch/status/members) add a row to the table and a
 * rsctl_<group>.c file; nothing else here changes.
 *
 * Also the helpers every group shares (rsctl.h): diagnostics, the option
 * scanner and number parsing.
 */
#include "tools/rsctl.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct rsctl_command rsctl_commands[] = {
	{"log", "read, verify and dump a node's storage files (offline)",
	 rsctl_log_run},
	{"get", "read one key's value", rsctl_get_run},
	{"put", "set one key to a value", rsctl_put_run},
	{"del", "delete one key", rsctl_del_run},
	{"range", "list the keys in a range or under a prefix",
	 rsctl_range_run},
	{"txn", "compare keys, then put and delete atomically", rsctl_txn_run},
	{"watch", "print the changes to a key or a prefix as they commit",
	 rsctl_watch_run},
	{"status", "show every node's role, term, indexes and health",
	 rsctl_status_run},
	{"members", "list, add, promote or remove the cluster's members",
	 rsctl_members_run},
	{"events", "print nodes' audit events merged by time (offline)",
	 rsctl_events_run},
	{"layout", "show the transaction system layout the director persisted",
	 rsctl_layout_run},
	{"config", "get, set or list configuration parameters (set: recovery)",
	 rsctl_config_run},
	{"snapshot", "back up the cluster to a file, restore a new cluster from it",
	 rsctl_snapshot_run},
};

#define RSCTL_COMMAND_COUNT \
	(sizeof rsctl_commands / sizeof rsctl_commands[0])

/* The exit codes, for `rsctl --help`. */
static void rsctl_print_exit_codes(FILE *f)
{
	fprintf(f,
		"Exit codes:\n"
		"  %d  success\n"
		"  %d  failure: not found, compare failed, or data corrupt\n"
		"  %d  usage error: bad arguments, missing directory\n"
		"  %d  unavailable: cluster or node unreachable, or commit result unknown\n",
		RSCTL_EXIT_OK, RSCTL_EXIT_FAIL, RSCTL_EXIT_USAGE,
		RSCTL_EXIT_UNAVAILABLE);
}

void rsctl_errorf(const char *fmt, ...)
{
	va_list ap;

	fputs("rsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int rsctl_usage_errorf(const char *help_cmd, const char *fmt, ...)
{
	va_list ap;

	assert(help_cmd != NULL);
	fputs("rsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", help_cmd);
	return RSCTL_EXIT_USAGE;
}

bool rsctl_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void rsctl_help(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: rsctl [global options] <command> [arguments]\n"
		   "       rsctl <command> --help\n"
		   "       rsctl --version\n\n"
		   "Admin tool for raftstore.\n\n"
		   "Commands:\n");
	for (i = 0; i < RSCTL_COMMAND_COUNT; i++)
		fprintf(f, "  %-8s %s\n", rsctl_commands[i].name,
			rsctl_commands[i].summary);
	fprintf(f, "\nGlobal options (of the commands that talk to a cluster), "
		   "before or after\nthe command: --endpoints HOST:PORT,... "
		   "--timeout-ms N --json\n-w json|table (--write-out; json "
		   "is --json, table the default).\n\n");
	rsctl_print_exit_codes(f);
}

/* The options every cluster command takes may also come before the
 * command, as etcdctl users type them (rsctl --endpoints X get k): they
 * are moved after it.  -w/--write-out json|table is --json or nothing,
 * wherever it is.  Returns an exit code, or -1 to go on with *argv
 * rewritten (static storage; argv[0] is the command). */
#define RSCTL_ARGS_MAX 256

static int rsctl_reorder(int *argc, char ***argv)
{
	static char *out[RSCTL_ARGS_MAX + 1];
	char **in = *argv;
	int n_in = *argc, n = 0, n_global = 0, i = 1, first;
	char *global[RSCTL_ARGS_MAX];

	if (n_in > RSCTL_ARGS_MAX)
		return rsctl_usage_errorf("rsctl", "too many arguments (%d)",
					  n_in);
	/* leading options, up to the command */
	while (i < n_in && in[i][0] == '-' && !rsctl_is_help(in[i])) {
		bool takes = strcmp(in[i], "--endpoints") == 0 ||
			     strcmp(in[i], "--timeout-ms") == 0 ||
			     strcmp(in[i], "-w") == 0 ||
			     strcmp(in[i], "--write-out") == 0;
		bool flag = strcmp(in[i], "--json") == 0 ||
			    strncmp(in[i], "--endpoints=", 12) == 0 ||
			    strncmp(in[i], "--timeout-ms=", 13) == 0 ||
			    strncmp(in[i], "--write-out=", 12) == 0;

		if (!takes && !flag)
			return rsctl_usage_errorf("rsctl", "unknown option '%s' "
							   "before the command",
						  in[i]);
		if (takes && i + 1 >= n_in)
			return rsctl_usage_errorf("rsctl", "%s needs a value",
						  in[i]);
		global[n_global++] = in[i++];
		if (takes)
			global[n_global++] = in[i++];
	}
	if (i >= n_in)
		return rsctl_usage_errorf("rsctl", "missing command");
	first = i;
	out[n++] = in[first];
	for (i = first + 1; i < n_in; i++)
		out[n++] = in[i];
	for (i = 0; i < n_global; i++)
		out[n++] = global[i];
	/* -w json|table, anywhere */
	for (i = 1; i < n; i++) {
		const char *w = NULL;
		int used = 1;

		if ((strcmp(out[i], "-w") == 0 ||
		     strcmp(out[i], "--write-out") == 0) && i + 1 < n) {
			w = out[i + 1];
			used = 2;
		} else if (strncmp(out[i], "--write-out=", 12) == 0) {
			w = out[i] + 12;
		}
		if (w == NULL)
			continue;
		if (strcmp(w, "json") != 0 && strcmp(w, "table") != 0)
			return rsctl_usage_errorf("rsctl", "-w: '%s' is not json "
							   "or table", w);
		if (strcmp(w, "json") == 0)
			out[i++] = "--json", used--;
		memmove(&out[i], &out[i + used], (size_t)(n - i - used) *
						     sizeof out[0]);
		n -= used;
		i--;
	}
	out[n] = NULL;
	*argc = n;
	*argv = out;
	return -1;
}

static const struct rsctl_command *rsctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < RSCTL_COMMAND_COUNT; i++)
		if (strcmp(rsctl_commands[i].name, name) == 0)
			return &rsctl_commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct rsctl_command *cmd;
	int rv;

	if (argc < 2) {
		rsctl_errorf("missing command");
		rsctl_help(stderr);
		return RSCTL_EXIT_USAGE;
	}
	if (rsctl_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		rsctl_help(stdout);
		return RSCTL_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("rsctl %s\n", PACKAGE_VERSION);
		return RSCTL_EXIT_OK;
	}
	rv = rsctl_reorder(&argc, &argv);
	if (rv >= 0)
		return rv;
	cmd = rsctl_find(argv[0]);
	if (cmd == NULL)
		return rsctl_usage_errorf("rsctl", "unknown command '%s'",
					  argv[0]);
	rv = cmd->run(argc, argv);
	assert(rv >= RSCTL_EXIT_OK && rv <= RSCTL_EXIT_UNAVAILABLE);
	/* A full disk or closed pipe on stdout must not look like success. */
	if (fflush(stdout) != 0 && rv == RSCTL_EXIT_OK) {
		rsctl_errorf("write to stdout: %s", strerror(errno));
		rv = RSCTL_EXIT_FAIL;
	}
	return rv;
}
