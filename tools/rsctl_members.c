/*
 * rsctl members add | promote | remove: membership changes.
 *
 * Each sends one MEMBER_CHANGE request (docs/protocol.md §11); the client
 * carries it to the leader, which makes the change (one at a time) and
 * answers when it is done, with the members after it.  `members list` is
 * in rsctl_cluster.c.
 *
 *   add ID RAFT CLIENT  record the member and add it to Raft as a spare;
 *                       then start it with raftstored --join, and it asks
 *                       to be promoted itself once it runs
 *   promote ID          make a spare a voter once it has caught up (what
 *                       the joining node asks for; for an operator who
 *                       wants to retry it by hand)
 *   remove ID           take the member out of Raft, then out of the
 *                       record; removing the leader moves leadership first
 *   rebuild ID --data-dir DIR
 *                       the way back for a node whose files are damaged
 *                       (it refuses to start): with the node stopped,
 *                       remove it, move DIR aside (kept, never deleted),
 *                       add it again with the same id and addresses; it
 *                       then starts with --join on an empty DIR and is
 *                       rebuilt from the others (a snapshot, then the log)
 *
 * A change the leader refuses (another change in progress, an id or
 * address in use, the last voter) exits 1 with its reason; one whose
 * outcome is unknown (the leader went away mid-change) exits 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/identity.h"
#include "storage/fileio.h"

#include "raftstore/client.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl.h"

/* rebuild is not a frame of its own: remove, then add (op stays 0). */
#define MC_REBUILD 0u

struct mc_args {
	struct rsctl_cluster_args cl;
	uint8_t op;
	uint64_t id;
	const char *raft_addr, *client_addr;
	const char *data_dir; /* rebuild */
};

static void mc_help(void)
{
	printf(
"Usage: rsctl members list [options]\n"
"       rsctl members add ID RAFT_HOST:PORT CLIENT_HOST:PORT [options]\n"
"       rsctl members promote ID [options]\n"
"       rsctl members remove ID [options]\n"
"       rsctl members rebuild ID --data-dir DIR [--raft-addr A --client-addr B]\n"
"                             [options]\n"
"\n"
"list     the members (see rsctl members list --help).\n"
"add      records a new member and adds it to Raft as a spare: it votes in\n"
"         nothing and costs no quorum.  Then start it on an empty data dir:\n"
"           raftstored --id ID --data-dir DIR --raft-addr RAFT \\\n"
"                      --client-addr CLIENT --join ENDPOINTS\n"
"         It catches up (a snapshot, then the log) and is promoted to voter.\n"
"         Running the same add again finishes one that was cut short.\n"
"promote  makes a spare a voter once the leader has caught it up; the\n"
"         joining node asks for this itself.\n"
"remove   takes a member out of Raft, then out of the record.  Removing the\n"
"         leader first moves leadership to another voter.  The removed node\n"
"         stops by itself (exit 0) once the leader refuses its heartbeats.\n"
"rebuild  the way back for a node whose files are damaged (it refuses to\n"
"         start).  Run it on the node's machine with the node stopped: it\n"
"         removes the member, moves DIR aside to DIR.rebuilt-TIME (kept, never\n"
"         deleted), adds the member again with the same id and addresses,\n"
"         and prints the raftstored --join command that starts it on an\n"
"         empty DIR, to be rebuilt from the others.  Running it again after\n"
"         an interruption goes on where it stopped; once the member is gone\n"
"         from the cluster, give its addresses with --raft-addr and\n"
"         --client-addr.\n"
"\n"
"One change at a time: the leader refuses a change while another runs or\n"
"while a spare waits to be promoted, and says why.\n"
"\n"
"--json prints the leader's answer: {\"op\":\"add|promote|remove\",\"id\":N,\n"
"\"role\":R,\"members\":[...]} with the members as members list --json\n"
"gives them (rebuild: the answer of its add).\n"
"\n"
"Options:\n");
	rsctl_cluster_help_opts(stdout);
	printf("\nExit codes:\n"
	       "  0  the change is made (or there was nothing to change)\n"
	       "  1  the leader refused it; the message says why\n"
	       "  2  usage error: bad arguments or endpoints\n"
	       "  3  no leader answered, or its outcome is unknown (check "
	       "with\n"
	       "     rsctl members list)\n");
}

static int mc_parse(int argc, char **argv, struct mc_args *a)
{
	const char *help_cmd = "rsctl members";
	const char *sub = argv[1];
	const char *pos[3];
	unsigned n_pos = 0, want;
	int rv;

	if (rsctl_is_help(sub)) {
		mc_help();
		return -1;
	}
	rsctl_cluster_args_init(&a->cl);
	a->op = strcmp(sub, "add") == 0       ? WIRE_MEMBER_ADD
		: strcmp(sub, "promote") == 0 ? WIRE_MEMBER_PROMOTE
		: strcmp(sub, "remove") == 0  ? WIRE_MEMBER_REMOVE
					      : MC_REBUILD;
	want = a->op == WIRE_MEMBER_ADD ? 3 : 1;
	a->raft_addr = a->client_addr = "";
	a->data_dir = NULL;
	for (int i = 2; i < argc; i++) {
		const char **slot = NULL;
		bool missing = false;
		const char *v;

		if (rsctl_is_help(argv[i])) {
			mc_help();
			return -1;
		}
		if (a->op == MC_REBUILD) {
			static const char *const flags[] = {
				"--data-dir", "--raft-addr", "--client-addr"};
			const char **slots[] = {&a->data_dir, &a->raft_addr,
						&a->client_addr};

			for (unsigned f = 0; f < 3 && slot == NULL && !missing;
			     f++) {
				v = cliopt_value(argc, argv, &i, flags[f],
						 &missing);
				if (missing)
					return rsctl_usage_errorf(
						help_cmd, "%s needs a value",
						flags[f]);
				if (v != NULL) {
					slot = slots[f];
					*slot = v;
				}
			}
			if (slot != NULL)
				continue;
		}
		rv = rsctl_cluster_parse_opt(argc, argv, &i, help_cmd, &a->cl);
		if (rv > RSCTL_EXIT_OK)
			return rv;
		if (rv == RSCTL_EXIT_OK)
			continue;
		if (argv[i][0] == '-' || n_pos == want)
			return rsctl_usage_errorf(help_cmd, "%s '%s'",
						  argv[i][0] == '-'
							  ? "unknown option"
							  : "unexpected argument",
						  argv[i]);
		pos[n_pos++] = argv[i];
	}
	if (n_pos < want)
		return rsctl_usage_errorf(help_cmd, "members %s needs %s", sub,
					  want == 3 ? "ID RAFT_HOST:PORT "
						      "CLIENT_HOST:PORT"
						    : "ID");
	if (!cliopt_parse_u64(pos[0], &a->id) || a->id == 0 ||
	    a->id > 1000000)
		return rsctl_usage_errorf(help_cmd, "'%s' is not a node id "
						    "(1..1000000)", pos[0]);
	if (want == 3) {
		a->raft_addr = pos[1];
		a->client_addr = pos[2];
	}
	if (a->op == MC_REBUILD && (a->data_dir == NULL || !a->data_dir[0]))
		return rsctl_usage_errorf(help_cmd, "members rebuild needs "
						    "--data-dir DIR (the node's)");
	if (strlen(a->raft_addr) > WIRE_MEMBER_ADDR_MAX ||
	    strlen(a->client_addr) > WIRE_MEMBER_ADDR_MAX)
		return rsctl_usage_errorf(help_cmd, "an address is longer than "
						    "%u bytes",
					  WIRE_MEMBER_ADDR_MAX);
	return RSCTL_EXIT_OK;
}

/* The text line for a change that worked. */
static void mc_print(const struct mc_args *a, const json_t *doc)
{
	const char *role = "?";

	rs_json_get_str(doc, "role", &role, NULL, NULL);
	switch (a->op) {
	case WIRE_MEMBER_ADD:
		printf("node %" PRIu64 " added (%s); start it with:\n"
		       "  raftstored --id %" PRIu64 " --data-dir DIR --raft-addr "
		       "%s --client-addr %s --join %s\n",
		       a->id, role, a->id, a->raft_addr, a->client_addr,
		       a->cl.endpoints);
		break;
	case WIRE_MEMBER_PROMOTE:
		printf("node %" PRIu64 " is a %s\n", a->id, role);
		break;
	default:
		printf("node %" PRIu64 " removed\n", a->id);
	}
}

/* One MEMBER_CHANGE; *doc is the answer (caller releases).  Returns an
 * exit code, the failure printed. */
static int mc_send(struct rs_sync *s, const char *what, uint8_t op,
		   uint64_t id, const char *raft_addr, const char *client_addr,
		   json_t **doc)
{
	struct wire_member_change_req req = {
		.op = op,
		.node_id = id,
		.raft_addr = {(const uint8_t *)raft_addr,
			      (uint32_t)strlen(raft_addr)},
		.client_addr = {(const uint8_t *)client_addr,
				(uint32_t)strlen(client_addr)},
	};
	struct rs_result res;
	char errmsg[RS_ERRMSG_SIZE];
	int rv = RSCTL_EXIT_OK;

	*doc = NULL;
	if (rs_sync_member_change(s, &req, &res) != RS_OK) {
		if (res.status == RS_EINVAL || res.status == RS_EEXIST ||
		    res.status == RS_ENOTFOUND) {
			rsctl_errorf("members %s: %s", what, res.message);
			rv = RSCTL_EXIT_FAIL;
		} else {
			rv = rsctl_fail(what, &res);
		}
	} else if (rs_json_parse_object(res.value.data, res.value.len, doc,
					errmsg) != RS_OK) {
		rsctl_errorf("members %s: answer from %s: %s", what,
			     res.endpoint ? res.endpoint : "?", errmsg);
		rv = RSCTL_EXIT_FAIL;
	}
	rs_result_free(&res);
	return rv;
}

/* ---- rebuild ---- */

/* The node must not run: take DIR/LOCK as raftstored does (flock), and
 * hold it until the process exits.  An exit code. */
static int mc_lock(const char *dir)
{
	char path[PATH_MAX + 8], pid[32] = "";
	int fd;

	snprintf(path, sizeof path, "%s/LOCK", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return RSCTL_EXIT_OK; /* never started, or already moved */
	if (fd < 0) {
		rsctl_errorf("members rebuild: open %s: %s", path,
			     strerror(errno));
		return RSCTL_EXIT_FAIL;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t got = pread(fd, pid, sizeof pid - 1, 0);

		pid[got > 0 ? got : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		rsctl_errorf("members rebuild: %s is in use by a running "
			     "raftstored (pid %s); stop it first", dir,
			     pid[0] ? pid : "?");
		close(fd);
		return RSCTL_EXIT_FAIL;
	}
	return RSCTL_EXIT_OK; /* fd stays open: the lock is held */
}

/* The member's entry in the cluster's MEMBERS answer: fills raft/client
 * (if empty) and *found; counts the voters other than id. */
static int mc_lookup(struct rs_sync *s, const struct mc_args *a,
		     char *raft, char *client, bool *found,
		     unsigned *other_voters)
{
	struct rs_result res;
	json_t *arr = NULL, *m;
	char errmsg[RS_ERRMSG_SIZE];
	size_t i;
	int rv;

	*found = false;
	*other_voters = 0;
	if (rs_sync_info(s, WIRE_MEMBERS, -1, &res) != RS_OK) {
		rv = rsctl_fail("members rebuild", &res);
		rs_result_free(&res);
		return rv;
	}
	rv = rs_json_parse(res.value.data, res.value.len, &arr, errmsg);
	rs_result_free(&res);
	if (rv != RS_OK || !json_is_array(arr)) {
		rsctl_errorf("members rebuild: MEMBERS answer: %s",
			     rv ? errmsg : "not an array");
		json_decref(arr);
		return RSCTL_EXIT_FAIL;
	}
	json_array_foreach(arr, i, m) {
		const char *r = "", *c = "", *role = "";
		uint64_t id = 0;

		rs_json_get_u64(m, "id", &id, NULL);
		rs_json_get_str(m, "raft_addr", &r, NULL, NULL);
		rs_json_get_str(m, "client_addr", &c, NULL, NULL);
		rs_json_get_str(m, "role", &role, NULL, NULL);
		if (id != a->id) {
			*other_voters += strcmp(role, "voter") == 0;
			continue;
		}
		*found = true;
		if (!raft[0])
			snprintf(raft, WIRE_MEMBER_ADDR_MAX + 1, "%s", r);
		if (!client[0])
			snprintf(client, WIRE_MEMBER_ADDR_MAX + 1, "%s", c);
	}
	json_decref(arr);
	return RSCTL_EXIT_OK;
}

/* Move DIR to DIR.rebuilt-<UTC time>, durably; *moved names it. */
static int mc_move_aside(const char *dir, char *moved, size_t size)
{
	char parent[PATH_MAX], stamp[32], errmsg[RS_ERRMSG_SIZE];
	const char *slash;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(moved, size, "%s.rebuilt-%s", dir, stamp);
	if (rename(dir, moved) != 0) {
		rsctl_errorf("members rebuild: move %s to %s: %s", dir, moved,
			     strerror(errno));
		return RSCTL_EXIT_FAIL;
	}
	slash = strrchr(dir, '/');
	snprintf(parent, sizeof parent, "%.*s",
		 slash == NULL ? 1 : slash == dir ? 1 : (int)(slash - dir),
		 slash == NULL ? "." : dir);
	if (fileio_fsync_dir(parent, errmsg) != RS_OK)
		rsctl_errorf("members rebuild: warning: %s", errmsg);
	return RSCTL_EXIT_OK;
}

static int mc_rebuild(const struct mc_args *a, struct rs_sync *s)
{
	char raft[WIRE_MEMBER_ADDR_MAX + 1], client[WIRE_MEMBER_ADDR_MAX + 1];
	char moved[PATH_MAX + 64] = "", errmsg[RS_ERRMSG_SIZE];
	struct identity ident;
	struct stat st;
	unsigned others;
	bool found;
	json_t *doc;
	int rv;

	snprintf(raft, sizeof raft, "%s", a->raft_addr);
	snprintf(client, sizeof client, "%s", a->client_addr);
	if (stat(a->data_dir, &st) == 0) {
		rv = mc_lock(a->data_dir);
		if (rv != RSCTL_EXIT_OK)
			return rv;
		rv = identity_read(a->data_dir, &ident, errmsg);
		if (rv == RS_OK && ident.node_id != a->id) {
			rsctl_errorf("members rebuild: %s belongs to node %" PRIu64
				     ", not %" PRIu64, a->data_dir,
				     ident.node_id, a->id);
			return RSCTL_EXIT_FAIL;
		}
		if (rv != RS_OK && rv != RS_ENOTFOUND)
			printf("note: %s (the id given, %" PRIu64 ", is used)\n",
			       errmsg, a->id);
	}
	rv = mc_lookup(s, a, raft, client, &found, &others);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (!raft[0] || !client[0]) {
		rsctl_errorf("members rebuild: node %" PRIu64 " is not a member "
			     "any more; give its addresses with --raft-addr "
			     "and --client-addr", a->id);
		return RSCTL_EXIT_FAIL;
	}
	if (found && others == 0) {
		rsctl_errorf("members rebuild: node %" PRIu64 " is the only "
			     "voter; there is nothing to rebuild it from "
			     "(restore a backup instead)", a->id);
		return RSCTL_EXIT_FAIL;
	}
	if (found) {
		rv = mc_send(s, "rebuild", WIRE_MEMBER_REMOVE, a->id, "", "",
			     &doc);
		json_decref(doc);
		if (rv != RSCTL_EXIT_OK)
			return rv;
		printf("node %" PRIu64 " removed from the cluster\n", a->id);
	}
	if (stat(a->data_dir, &st) == 0) {
		rv = mc_move_aside(a->data_dir, moved, sizeof moved);
		if (rv != RSCTL_EXIT_OK)
			return rv;
		printf("%s moved to %s (kept; delete it once the node is "
		       "back)\n", a->data_dir, moved);
	}
	rv = mc_send(s, "rebuild", WIRE_MEMBER_ADD, a->id, raft, client, &doc);
	if (rv == RSCTL_EXIT_OK && a->cl.json)
		return rsctl_print_json(doc, "members");
	json_decref(doc);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	printf("node %" PRIu64 " added again (spare); start it on an empty "
	       "data dir with:\n"
	       "  raftstored --id %" PRIu64 " --data-dir %s --raft-addr %s "
	       "--client-addr %s --join %s\n",
	       a->id, a->id, a->data_dir, raft, client, a->cl.endpoints);
	return RSCTL_EXIT_OK;
}

int rsctl_members_change_run(int argc, char **argv)
{
	struct mc_args a;
	struct rs_sync *s;
	json_t *doc = NULL;
	int rv = mc_parse(argc, argv, &a);

	if (rv < 0)
		return RSCTL_EXIT_OK; /* --help */
	if (rv != RSCTL_EXIT_OK)
		return rv;
	rv = rsctl_cluster_open(&a.cl, "rsctl members --help", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (a.op == MC_REBUILD) {
		rv = mc_rebuild(&a, s);
	} else {
		rv = mc_send(s, argv[1], a.op, a.id, a.raft_addr,
			     a.client_addr, &doc);
		if (rv == RSCTL_EXIT_OK && a.cl.json) {
			rv = rsctl_print_json(doc, "members");
			doc = NULL;
		} else if (rv == RSCTL_EXIT_OK) {
			mc_print(&a, doc);
		}
	}
	json_decref(doc);
	rs_sync_close(s);
	return rv;
}
