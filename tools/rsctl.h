/*
 * rsctl: the raftstore admin tool, shared declarations.
 *
 * rsctl is a dispatcher (rsctl.c) over command groups, each in its own file
 * (rsctl_log.c for `rsctl log ...`).  Every command returns one of the exit
 * codes below, which are part of the tool's interface: scripts test them, so
 * a code never changes meaning.  Commands write results to stdout and
 * diagnostics to stderr, prefixed with "rsctl: ".
 */
#ifndef RS_RSCTL_H
#define RS_RSCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "raftstore/lib/json.h"
#include "tools/cliopt.h"

/* Exit codes: the contract with scripts. */
enum rsctl_exit {
	RSCTL_EXIT_OK = 0,          /* success */
	RSCTL_EXIT_FAIL = 1,        /* not found, compare failed, corrupt */
	RSCTL_EXIT_USAGE = 2,       /* bad arguments, missing directory */
	RSCTL_EXIT_UNAVAILABLE = 3, /* cluster or node unreachable */
};

/* One command group: `rsctl <name> ...`.  run gets argv with argv[0] being
 * the group name and returns an rsctl_exit code. */
struct rsctl_command {
	const char *name;
	const char *summary; /* one line, for `rsctl --help` */
	int (*run)(int argc, char **argv);
};

/* Print "rsctl: <formatted>\n" to stderr. */
void rsctl_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error: print "rsctl: <formatted>" and a hint naming `help_cmd`
 * (e.g. "rsctl log dump --help") to stderr; returns RSCTL_EXIT_USAGE. */
int rsctl_usage_errorf(const char *help_cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True for "-h" and "--help". */
bool rsctl_is_help(const char *arg);

/* Options and numbers: cliopt_value and cliopt_parse_u64 (tools/cliopt.h). */

/* Command groups. */
int rsctl_log_run(int argc, char **argv);
int rsctl_events_run(int argc, char **argv); /* rsctl_events.c */
/* rsctl_layout.c: `rsctl layout` and `rsctl config`, the director's
 * system keys on a running cluster. */
int rsctl_layout_run(int argc, char **argv);
int rsctl_config_run(int argc, char **argv);
/* rsctl_snapshot*.c: `rsctl snapshot save|status|restore`. */
int rsctl_snapshot_run(int argc, char **argv);

/* ---- cluster commands ----
 *
 * They talk to a running cluster through the client library
 * (raftstore/client.h): get, put, del, range, txn and watch live in
 * rsctl_kv*.c (around tools/rsctl_kv.h), status and members in
 * rsctl_cluster.c, which also holds what they share below. */
int rsctl_get_run(int argc, char **argv);
int rsctl_put_run(int argc, char **argv);
int rsctl_del_run(int argc, char **argv);
int rsctl_range_run(int argc, char **argv);
int rsctl_txn_run(int argc, char **argv);
int rsctl_watch_run(int argc, char **argv);
int rsctl_status_run(int argc, char **argv);
int rsctl_members_run(int argc, char **argv);
/* rsctl_members.c: members add | promote | remove (argv[1]). */
int rsctl_members_change_run(int argc, char **argv);

struct mutation;
struct rs_client;
struct rs_result;
struct rs_sync;

#define RSCTL_ENDPOINTS_ENV "RSCTL_ENDPOINTS"
#define RSCTL_ENDPOINTS_DEFAULT "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
#define RSCTL_TIMEOUT_MS_DEFAULT 10000u

/* The options every cluster command takes. */
struct rsctl_cluster_args {
	const char *endpoints; /* --endpoints, $RSCTL_ENDPOINTS or default */
	unsigned timeout_ms;   /* --timeout-ms: per operation, retries included */
	bool timeout_set;      /* --timeout-ms was given */
	bool json;             /* --json */
	/* Not an option: a command that asks the nodes themselves (status,
	 * layout) sets it so that the client asks the endpoints in the order
	 * given and never moves to the leader. */
	bool no_leader_pref;
};

/* Defaults: endpoints from the environment if set and not empty. */
void rsctl_cluster_args_init(struct rsctl_cluster_args *a);

/* Parse one common option at argv[*i]: -1 if it is none of them, else an
 * exit code (RSCTL_EXIT_USAGE after printing why). */
int rsctl_cluster_parse_opt(int argc, char **argv, int *i,
			    const char *help_cmd, struct rsctl_cluster_args *a);

/* The "Options:" lines of the common options, for help screens. */
void rsctl_cluster_help_opts(FILE *f);

/* Open a blocking client (connects lazily, so this fails only for a bad
 * endpoint list, reported as a usage error).  Returns an exit code. */
int rsctl_cluster_open(const struct rsctl_cluster_args *a,
		       const char *help_cmd, struct rs_sync **out);

/* The same for the async API: initialize *loop and create a client on it.
 * On failure (an exit code, the message naming `what`) the loop is closed
 * again. */
int rsctl_cluster_create(const struct rsctl_cluster_args *a,
			 const char *help_cmd, const char *what,
			 uv_loop_t *loop, struct rs_client **out);

/* The exit code for an rs_error status: 3 for unavailable, timed out,
 * unknown outcome, not leader, recovering, shutting down, or a connection
 * that failed; 2 for a request refused as too large or invalid; else 1. */
int rsctl_exit_for(int status);

/* Print "rsctl: <what>: <message> (<error name>)" for a failed request and
 * return rsctl_exit_for(res->status). */
int rsctl_fail(const char *what, const struct rs_result *res);

/* ---- output (rsctl_output.c) ---- */

/* Bytes for display, unquoted: printable ASCII as is except '\\' (doubled),
 * every other byte as \xNN.  Cut after max bytes with "..." (max 0: never
 * cut). */
void rsctl_put_text(FILE *f, const uint8_t *p, size_t len, size_t max);
/* The same into out (size > 4), cut to fit; returns strlen(out). */
size_t rsctl_text(char *out, size_t size, const uint8_t *p, size_t len,
		  size_t max);
/* Bytes in double quotes, as `log dump` shows them: as rsctl_put_text,
 * and '"' escaped as \" too.  Cut after max (> 0) bytes with "...(N
 * bytes)" after the closing quote, so a 1 MiB value stays a short line. */
void rsctl_put_quoted(FILE *f, const uint8_t *p, size_t len, size_t max);

/* Write doc to stdout as one line of compact JSON and a newline, and
 * release it (doc is stolen).  Byte strings in it are built with
 * rs_json_bytes: byte N is code point U+00NN, so Latin-1 gives the exact
 * bytes back.  doc may be NULL, the failed result of building it: then, as
 * when the dump runs out of memory, "rsctl: <what>: out of memory ..." goes
 * to stderr and the result is RSCTL_EXIT_FAIL; else RSCTL_EXIT_OK. */
int rsctl_print_json(json_t *doc, const char *what);

/* The one name every rsctl output gives each mutation type (text and
 * JSON "op", `watch` and `log dump` alike), the names of the commands
 * that make them: "set", "del", "clear-range". */
const char *rsctl_mutation_name(const struct mutation *m);

/* Add a mutation's members to the object obj, in this order: "op"
 * (rsctl_mutation_name), then "key" and "value" (set), "key" (del), or
 * "begin" and "end" (clear-range), every byte string through
 * rs_json_bytes.  RS_OK or RS_ENOMEM. */
int rsctl_json_mutation(json_t *obj, const struct mutation *m);

#endif /* RS_RSCTL_H */
