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
 *
 * A change the leader refuses (another change in progress, an id or
 * address in use, the last voter) exits 1 with its reason; one whose
 * outcome is unknown (the leader went away mid-change) exits 3.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/client.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl.h"

struct mc_args {
	struct rsctl_cluster_args cl;
	uint8_t op;
	uint64_t id;
	const char *raft_addr, *client_addr;
};

static void mc_help(void)
{
	printf(
"Usage: rsctl members list [options]\n"
"       rsctl members add ID RAFT_HOST:PORT CLIENT_HOST:PORT [options]\n"
"       rsctl members promote ID [options]\n"
"       rsctl members remove ID [options]\n"
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
"         leader first moves leadership to another voter.\n"
"\n"
"One change at a time: the leader refuses a change while another runs or\n"
"while a spare waits to be promoted, and says why.\n"
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
	const char *help_cmd = "rsctl members --help";
	const char *sub = argv[1];
	const char *pos[3];
	unsigned n_pos = 0, want;
	int rv;

	rsctl_cluster_args_init(&a->cl);
	a->op = strcmp(sub, "add") == 0       ? WIRE_MEMBER_ADD
		: strcmp(sub, "promote") == 0 ? WIRE_MEMBER_PROMOTE
					      : WIRE_MEMBER_REMOVE;
	want = a->op == WIRE_MEMBER_ADD ? 3 : 1;
	for (int i = 2; i < argc; i++) {
		if (rsctl_is_help(argv[i])) {
			mc_help();
			return -1;
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
	a->raft_addr = want == 3 ? pos[1] : "";
	a->client_addr = want == 3 ? pos[2] : "";
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

int rsctl_members_change_run(int argc, char **argv)
{
	struct mc_args a;
	struct wire_member_change_req req;
	struct rs_result res;
	struct rs_sync *s;
	json_t *doc = NULL;
	char errmsg[RS_ERRMSG_SIZE];
	int rv = mc_parse(argc, argv, &a);

	if (rv < 0)
		return RSCTL_EXIT_OK; /* --help */
	if (rv != RSCTL_EXIT_OK)
		return rv;
	rv = rsctl_cluster_open(&a.cl, "rsctl members --help", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	req = (struct wire_member_change_req){
		.op = a.op,
		.node_id = a.id,
		.raft_addr = {(const uint8_t *)a.raft_addr,
			      (uint32_t)strlen(a.raft_addr)},
		.client_addr = {(const uint8_t *)a.client_addr,
				(uint32_t)strlen(a.client_addr)},
	};
	if (rs_sync_member_change(s, &req, &res) != RS_OK) {
		rv = res.status == RS_EINVAL || res.status == RS_EEXIST ||
				     res.status == RS_ENOTFOUND
			     ? (rsctl_errorf("members %s: %s", argv[1],
					     res.message),
				RSCTL_EXIT_FAIL)
			     : rsctl_fail(argv[1], &res);
	} else if (rs_json_parse_object(res.value.data, res.value.len, &doc,
					errmsg) != RS_OK) {
		rsctl_errorf("members %s: answer from %s: %s", argv[1],
			     res.endpoint ? res.endpoint : "?", errmsg);
		rv = RSCTL_EXIT_FAIL;
	} else if (a.cl.json) {
		rv = rsctl_print_json(doc, "members");
		doc = NULL;
	} else {
		mc_print(&a, doc);
	}
	json_decref(doc);
	rs_result_free(&res);
	rs_sync_close(s);
	return rv;
}
