/*
 * rsctl status, rsctl members, and what every cluster command shares.
 *
 *   rsctl status          STATUS of every endpoint, side by side
 *   rsctl members list    the Raft configuration, from whichever node answers
 *                         (add, promote and remove: rsctl_members.c)
 *
 * Shared (declared in rsctl.h): the common options (--endpoints, --json,
 * --timeout-ms), opening a client, and mapping an rs_error status to an
 * exit code.
 *
 * status asks every endpoint at once on a private loop with the async API,
 * not one after the other with rs_sync_info: an unreachable node costs the
 * whole --timeout-ms, and three of them in a row would cost it three times.
 *
 * The nodes answer STATUS and MEMBERS with JSON (docs/protocol.md §9), read
 * with rs_json_parse and the rs_json_get_* getters.  An answer that is not
 * the document it should be is reported with the endpoint that sent it and
 * the member that is wrong; a member a newer node adds is ignored, one an
 * older node lacks shows as "?" in the table.
 */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/client.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl.h"

/* --timeout-ms: a day is already far past any sensible wait. */
#define CL_TIMEOUT_MS_MAX 86400000u
/* A table cell: room for a whole rs_result message. */
#define CL_CELL_SIZE 272u
#define CL_STATUS_COLS 12u
#define CL_MEMBERS_COLS 5u

/* ---- common options ---- */

void rsctl_cluster_args_init(struct rsctl_cluster_args *a)
{
	const char *env = getenv(RSCTL_ENDPOINTS_ENV);

	memset(a, 0, sizeof *a);
	a->endpoints = env != NULL && env[0] != '\0' ? env
						     : RSCTL_ENDPOINTS_DEFAULT;
	a->timeout_ms = RSCTL_TIMEOUT_MS_DEFAULT;
	a->json = false;
}

int rsctl_cluster_parse_opt(int argc, char **argv, int *i,
			    const char *help_cmd, struct rsctl_cluster_args *a)
{
	const char *v;
	uint64_t ms;
	bool missing;

	assert(*i < argc);
	if (strcmp(argv[*i], "--json") == 0) {
		a->json = true;
		return RSCTL_EXIT_OK;
	}
	v = cliopt_value(argc, argv, i, "--endpoints", &missing);
	if (missing)
		return rsctl_usage_errorf(help_cmd,
					  "--endpoints needs HOST:PORT,...");
	if (v != NULL) {
		if (v[0] == '\0')
			return rsctl_usage_errorf(help_cmd,
						  "--endpoints is empty");
		a->endpoints = v;
		return RSCTL_EXIT_OK;
	}
	v = cliopt_value(argc, argv, i, "--timeout-ms", &missing);
	if (missing)
		return rsctl_usage_errorf(help_cmd,
					  "--timeout-ms needs a number");
	if (v == NULL)
		return -1;
	if (!cliopt_parse_u64(v, &ms) || ms == 0 || ms > CL_TIMEOUT_MS_MAX)
		return rsctl_usage_errorf(help_cmd,
					  "--timeout-ms: '%s' is not a number "
					  "of milliseconds in 1..%u",
					  v, CL_TIMEOUT_MS_MAX);
	a->timeout_ms = (unsigned)ms;
	a->timeout_set = true;
	return RSCTL_EXIT_OK;
}

void rsctl_cluster_help_opts(FILE *f)
{
	fprintf(f,
		"  --endpoints HOST:PORT,...\n"
		"               client addresses of the nodes (IPv4 or "
		"localhost); default:\n"
		"               $%s if set, else\n"
		"               %s\n"
		"  --timeout-ms N\n"
		"               give up on a request after N ms, retries "
		"included\n"
		"               (default %u)\n"
		"  --json       machine-readable output; keys and values are "
		"JSON strings\n"
		"               whose code points U+0000..U+00FF are the bytes "
		"(decode\n"
		"               with Latin-1)\n"
		"  -h, --help   this text\n",
		RSCTL_ENDPOINTS_ENV, RSCTL_ENDPOINTS_DEFAULT,
		RSCTL_TIMEOUT_MS_DEFAULT);
}

/* Client options for a; points into a, which must outlive their use. */
static void cl_client_options(const struct rsctl_cluster_args *a,
			      struct rs_client_options *o)
{
	assert(a->endpoints != NULL && a->timeout_ms > 0);
	memset(o, 0, sizeof *o);
	o->endpoints = a->endpoints;
	o->op_timeout_ms = a->timeout_ms;
	o->connections = 1;
	o->no_leader_pref = a->no_leader_pref;
	/* a cluster that is down says so at once, naming each endpoint */
	o->fail_fast = true;
}

int rsctl_cluster_open(const struct rsctl_cluster_args *a,
		       const char *help_cmd, struct rs_sync **out)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_client_options o;
	int rv;

	cl_client_options(a, &o);
	*out = NULL;
	rv = rs_sync_open(out, &o, errmsg);
	if (rv == RS_EINVAL)
		return rsctl_usage_errorf(help_cmd, "--endpoints: %s", errmsg);
	if (rv != RS_OK) {
		rsctl_errorf("open client: %s (%s)", errmsg, rs_strerror(rv));
		return RSCTL_EXIT_FAIL;
	}
	assert(*out != NULL);
	return RSCTL_EXIT_OK;
}

int rsctl_cluster_create(const struct rsctl_cluster_args *a,
			 const char *help_cmd, const char *what,
			 uv_loop_t *loop, struct rs_client **out)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct rs_client_options o;
	int rv;

	cl_client_options(a, &o);
	if (uv_loop_init(loop) != 0) {
		rsctl_errorf("%s: cannot create an event loop", what);
		return RSCTL_EXIT_FAIL;
	}
	rv = rs_client_create(out, loop, &o, errmsg);
	if (rv != RS_OK) {
		uv_loop_close(loop);
		if (rv == RS_EINVAL)
			return rsctl_usage_errorf(help_cmd, "--endpoints: %s",
						  errmsg);
		rsctl_errorf("%s: open client: %s", what, rs_strerror(rv));
		return RSCTL_EXIT_FAIL;
	}
	return RSCTL_EXIT_OK;
}

/* ---- errors ---- */

int rsctl_exit_for(int status)
{
	switch (status) {
	case RS_OK:
		return RSCTL_EXIT_OK;
	case RS_EUNAVAILABLE:
	case RS_ETIMEOUT:
	case RS_EUNKNOWN:
	case RS_ENOTLEADER:
	case RS_ERECOVERING:
	case RS_ESHUTDOWN:
		return RSCTL_EXIT_UNAVAILABLE;
	case RS_ETOOLARGE:
	case RS_EINVAL:
		return RSCTL_EXIT_USAGE;
	default:
		return RSCTL_EXIT_FAIL;
	}
}

int rsctl_fail(const char *what, const struct rs_result *res)
{
	assert(res->status != RS_OK);
	if (res->message[0] != '\0' &&
	    strcmp(res->message, rs_strerror(res->status)) != 0)
		rsctl_errorf("%s: %s (%s)", what, res->message,
			     rs_strerror(res->status));
	else
		rsctl_errorf("%s: %s", what, rs_strerror(res->status));
	return rsctl_exit_for(res->status);
}

/* ---- tables ---- */

/* Columns padded to their widest cell, two spaces apart; the last one is
 * not padded, so a long message there does not widen the others. */
static void cl_table_print(FILE *f, const char *const *head, unsigned ncols,
			   char (*cells)[CL_CELL_SIZE], unsigned nrows)
{
	size_t width[CL_STATUS_COLS];
	unsigned r, c;

	assert(ncols > 0 && ncols <= CL_STATUS_COLS);
	for (c = 0; c < ncols; c++) {
		width[c] = strlen(head[c]);
		for (r = 0; r < nrows; r++) {
			size_t n = strlen(cells[r * ncols + c]);
			width[c] = n > width[c] ? n : width[c];
		}
	}
	for (r = 0; r <= nrows; r++)
		for (c = 0; c < ncols; c++) {
			const char *s = r == 0 ? head[c]
					       : cells[(r - 1) * ncols + c];
			if (c + 1 < ncols)
				fprintf(f, "%-*s  ", (int)width[c], s);
			else
				fprintf(f, "%s\n", s);
		}
}

/* A member's getter failed: "?" in the cell, and a warning naming the
 * endpoint and the member when it is there but of the wrong type (one a
 * node does not send, RS_ENOTFOUND, is only "?"). */
static void cl_cell_unknown(char *cell, const char *endpoint, int rv,
			    const char *errmsg)
{
	assert(rv != RS_OK);
	snprintf(cell, CL_CELL_SIZE, "?");
	if (rv != RS_ENOTFOUND)
		rsctl_errorf("status: answer from %s: %s", endpoint, errmsg);
}

static void cl_cell_u64(char *cell, const json_t *doc, const char *key,
			const char *endpoint)
{
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t v;
	int rv = rs_json_get_u64(doc, key, &v, errmsg);

	if (rv == RS_OK)
		snprintf(cell, CL_CELL_SIZE, "%" PRIu64, v);
	else
		cl_cell_unknown(cell, endpoint, rv, errmsg);
}

/* A string member, cut to the cell; "-" when empty. */
static void cl_cell_str(char *cell, const json_t *doc, const char *key,
			const char *endpoint)
{
	char errmsg[RS_ERRMSG_SIZE];
	const char *v;
	int rv = rs_json_get_str(doc, key, &v, NULL, errmsg);

	if (rv != RS_OK)
		cl_cell_unknown(cell, endpoint, rv, errmsg);
	else
		snprintf(cell, CL_CELL_SIZE, "%s", v[0] != '\0' ? v : "-");
}

static void cl_cell_bytes(char *cell, const json_t *doc, const char *key,
			  const char *endpoint)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	char errmsg[RS_ERRMSG_SIZE];
	uint64_t v;
	double x;
	unsigned u = 0;
	int rv = rs_json_get_u64(doc, key, &v, errmsg);

	if (rv != RS_OK) {
		cl_cell_unknown(cell, endpoint, rv, errmsg);
		return;
	}
	if (v < 1024) {
		snprintf(cell, CL_CELL_SIZE, "%" PRIu64 " B", v);
		return;
	}
	for (x = (double)v / 1024; x >= 1024 && u + 1 < 4; u++)
		x /= 1024;
	snprintf(cell, CL_CELL_SIZE, "%.1f %s", x, units[u]);
}

/* A node's "cluster_id" for the text output: the 32 hex digits, "unknown"
 * when it has not learned it yet (""), "?" when the answer lacks it. */
static void cl_cluster_text(char *out, size_t size, const json_t *doc)
{
	const char *v;

	if (rs_json_get_str(doc, "cluster_id", &v, NULL, NULL) != RS_OK)
		snprintf(out, size, "?");
	else
		snprintf(out, size, "%s", v[0] != '\0' ? v : "unknown");
}

/* ---- a private loop for concurrent requests ---- */

/* One STATUS request per endpoint, all in flight together. */
struct cl_probe {
	struct rs_op op;
	struct cl_status *st;
	bool done;
	/* The answer read (cl_status_read): the node's status object, or
	 * NULL, with what is wrong with an answer in why. */
	json_t *doc;
	const char *role; /* doc's "role" */
	char why[RS_ERRMSG_SIZE];
};

struct cl_status {
	uv_loop_t loop;
	struct rs_client *client; /* freed once closed */
	struct cl_probe probes[RS_CLIENT_ENDPOINTS_MAX];
	/* The endpoints' names, kept past the client. */
	char names[RS_CLIENT_ENDPOINTS_MAX][CL_CELL_SIZE];
	unsigned n;
	unsigned n_done;
	bool closed;
};

static void cl_status_closed(void *arg)
{
	struct cl_status *st = arg;

	assert(!st->closed && st->n_done == st->n);
	st->closed = true;
	st->client = NULL; /* freed */
}

static void cl_probe_done(struct cl_probe *p)
{
	struct cl_status *st = p->st;

	assert(!p->done && st->n_done < st->n);
	p->done = true;
	if (++st->n_done == st->n)
		rs_client_close(st->client, cl_status_closed, st);
}

static void cl_probe_cb(struct rs_op *op)
{
	cl_probe_done(op->data);
}

/* Ask every endpoint; blocks until all have answered or given up.  The
 * results stay in st->probes[i].op.result for the caller to free. */
static int cl_status_collect(struct cl_status *st,
			     const struct rsctl_cluster_args *a)
{
	struct rsctl_cluster_args each = *a;
	unsigned i;
	int rv;

	each.no_leader_pref = true; /* each probe stays on its endpoint */
	rv = rsctl_cluster_create(&each, "rsctl status", "status", &st->loop,
				  &st->client);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	/* Read before any request: a leader's redirect may add to it. */
	st->n = rs_client_endpoint_count(st->client);
	assert(st->n > 0 && st->n <= RS_CLIENT_ENDPOINTS_MAX);
	for (i = 0; i < st->n; i++) {
		struct cl_probe *p = &st->probes[i];
		snprintf(st->names[i], sizeof st->names[i], "%s",
			 rs_client_endpoint(st->client, i));
		p->st = st;
		p->op.data = p;
		rv = rs_client_info(st->client, &p->op, WIRE_STATUS, (int)i,
				    cl_probe_cb);
		if (rv != RS_OK) { /* no callback will come: finish it here */
			rs_result_init(&p->op.result);
			p->op.result.status = rv;
			snprintf(p->op.result.message,
				 sizeof p->op.result.message, "%s",
				 rs_strerror(rv));
			cl_probe_done(p);
		}
	}
	uv_run(&st->loop, UV_RUN_DEFAULT);
	assert(st->closed && st->n_done == st->n);
	rv = uv_loop_close(&st->loop);
	assert(rv == 0); /* the client closed every handle it had */
	(void)rv;
	return RSCTL_EXIT_OK;
}

/* ---- status ---- */

static const char *const cl_status_head[CL_STATUS_COLS] = {
	"ID", "ADDRESS", "ROLE", "TERM", "LEADER", "EPOCH", "PHASE", "COMMIT",
	"APPLIED", "VERSION", "STORAGE", "HEALTH"};
#define CL_STATUS_HEALTH (CL_STATUS_COLS - 1u) /* last: a long message fits */

/* Read a probe's answer into p->doc and p->role: a usable answer is an
 * object that names its role.  Anything else leaves p->doc NULL, and an
 * answer that is not a status object says why in p->why. */
static void cl_status_read(struct cl_probe *p)
{
	const struct rs_result *res = &p->op.result;
	char errmsg[RS_ERRMSG_SIZE];
	json_t *doc;
	int rv;

	assert(p->doc == NULL);
	if (res->status != RS_OK)
		return;
	rv = rs_json_parse_object(res->value.data, res->value.len, &doc,
				  errmsg);
	if (rv == RS_OK) {
		rv = rs_json_get_str(doc, "role", &p->role, NULL, errmsg);
		if (rv == RS_OK)
			p->doc = doc;
		else
			json_decref(doc);
	}
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "the answer is not a status object");
		memcpy(p->why, errmsg, sizeof p->why);
	}
}

/* The ROLE shown for an endpoint without a usable answer. */
static const char *cl_status_failure(const struct cl_probe *p)
{
	if (p->op.result.status == RS_OK)
		return "invalid"; /* answered, but not a status object */
	if (rsctl_exit_for(p->op.result.status) == RSCTL_EXIT_UNAVAILABLE)
		return "unreachable";
	return "error";
}

static const char *cl_status_message(const struct cl_probe *p)
{
	return p->op.result.status != RS_OK ? p->op.result.message : p->why;
}

/* On the leader: how long the last recovery took, after the phase
 * ("monitoring:210ms"; no space, so the column stays one word). */
static void cl_phase_took(char *cell, const json_t *doc)
{
	uint64_t ms;
	size_t n = strlen(cell);

	if (rs_json_get_u64(doc, "recovery_ms", &ms, NULL) == RS_OK &&
	    ms > 0 && n + 24 < CL_CELL_SIZE)
		snprintf(cell + n, CL_CELL_SIZE - n, ":%" PRIu64 "ms", ms);
}

static void cl_status_row(char (*row)[CL_CELL_SIZE], const char *endpoint,
			  const struct cl_probe *p)
{
	const json_t *doc = p->doc;
	unsigned c;

	snprintf(row[1], CL_CELL_SIZE, "%s", endpoint);
	if (doc == NULL) {
		for (c = 0; c < CL_STATUS_COLS; c++)
			if (c != 1)
				snprintf(row[c], CL_CELL_SIZE, "-");
		snprintf(row[2], CL_CELL_SIZE, "%s", cl_status_failure(p));
		snprintf(row[CL_STATUS_HEALTH], CL_CELL_SIZE, "%s",
			 cl_status_message(p));
		return;
	}
	cl_cell_u64(row[0], doc, "id", endpoint);
	snprintf(row[2], CL_CELL_SIZE, "%s", p->role);
	cl_cell_u64(row[3], doc, "term", endpoint);
	cl_cell_u64(row[4], doc, "leader_id", endpoint);
	/* The state machine's epoch on every node; the director's phase on
	 * the leader ("none" elsewhere). */
	cl_cell_u64(row[5], doc, "epoch", endpoint);
	cl_cell_str(row[6], doc, "director_phase", endpoint);
	cl_phase_took(row[6], doc);
	cl_cell_u64(row[7], doc, "commit_index", endpoint);
	cl_cell_u64(row[8], doc, "applied_index", endpoint);
	cl_cell_u64(row[9], doc, "applied_version", endpoint);
	cl_cell_bytes(row[10], doc, "storage_bytes", endpoint);
	cl_cell_str(row[CL_STATUS_HEALTH], doc, "health", endpoint);
}

/* One element of the --json array: the node's own object (fields are only
 * ever added, and scripts should see them all), or for an endpoint without
 * one an object that says why. */
static json_t *cl_status_json(const struct cl_probe *p, const char *endpoint)
{
	const char *message = cl_status_message(p);
	/* An answer that is no status object is a protocol error, not "ok". */
	int status = p->op.result.status != RS_OK ? p->op.result.status
						  : RS_EPROTO;

	if (p->doc != NULL)
		return json_incref(p->doc);
	return json_pack("{s:o,s:b,s:s,s:o}", "endpoint",
			 rs_json_bytes(endpoint, strlen(endpoint)),
			 "unreachable",
			 strcmp(cl_status_failure(p), "unreachable") == 0,
			 "error", rs_strerror(status), "message",
			 rs_json_bytes(message, strlen(message)));
}

/* Print each answering node whose cluster text is (want) or is not (!want)
 * text, as " node ID (ENDPOINT) [CLUSTER]", comma-separated. */
static void cl_status_print_nodes(FILE *f, const struct cl_status *st,
				  const char *text, bool want, bool show_id)
{
	char id[CL_CELL_SIZE], who[CL_CELL_SIZE];
	bool first = true;

	for (unsigned i = 0; i < st->n; i++) {
		if (st->probes[i].doc == NULL)
			continue;
		cl_cluster_text(id, sizeof id, st->probes[i].doc);
		if ((strcmp(id, text) == 0) != want)
			continue;
		cl_cell_u64(who, st->probes[i].doc, "id", st->names[i]);
		fprintf(f, "%s node %s (%s)%s%s", first ? "" : ",", who,
			st->names[i], show_id ? " " : "", show_id ? id : "");
		first = false;
	}
}

/* Below the table: the cluster ID the nodes that answered report.  A node
 * that has not learned it yet is named as such; nodes that report
 * different IDs are each shown with theirs. */
static void cl_status_print_cluster(FILE *f, const struct cl_status *st)
{
	char known[CL_CELL_SIZE] = "", id[CL_CELL_SIZE];
	bool any = false, differ = false, unknown = false;

	for (unsigned i = 0; i < st->n; i++) {
		if (st->probes[i].doc == NULL)
			continue;
		any = true;
		cl_cluster_text(id, sizeof id, st->probes[i].doc);
		if (strcmp(id, "unknown") == 0) {
			unknown = true;
			continue;
		}
		if (known[0] != '\0' && strcmp(id, known) != 0)
			differ = true;
		if (known[0] == '\0')
			memcpy(known, id, sizeof known);
	}
	if (!any)
		return;
	if (differ) {
		fprintf(f, "cluster ID: the nodes differ:");
		cl_status_print_nodes(f, st, "", false, true);
	} else if (known[0] == '\0') {
		fprintf(f, "cluster ID: unknown (no node has it yet)");
	} else {
		fprintf(f, "cluster ID: %s", known);
		if (unknown) {
			fprintf(f, " (not yet learned by");
			cl_status_print_nodes(f, st, "unknown", true, false);
			fprintf(f, ")");
		}
	}
	fprintf(f, "\n");
}

static int cl_status_print_json(const struct cl_status *st)
{
	json_t *all = json_array();
	unsigned i;

	for (i = 0; i < st->n && all != NULL; i++)
		if (rs_json_push(all, cl_status_json(&st->probes[i],
						     st->names[i])) != RS_OK) {
			json_decref(all);
			all = NULL;
		}
	return rsctl_print_json(all, "status");
}

/* status asks every node at once; one that does not answer should not
 * hold the table up for the general default. */
#define CL_STATUS_TIMEOUT_MS 2000u

static int cl_status_run(const struct rsctl_cluster_args *given)
{
	struct rsctl_cluster_args args = *given;
	const struct rsctl_cluster_args *a = &args;
	static char cells[RS_CLIENT_ENDPOINTS_MAX * CL_STATUS_COLS]
			 [CL_CELL_SIZE];
	struct cl_status *st = calloc(1, sizeof *st);
	unsigned i, answered = 0, leaders = 0;
	int rv;

	if (st == NULL) {
		rsctl_errorf("status: out of memory");
		return RSCTL_EXIT_FAIL;
	}
	if (!args.timeout_set)
		args.timeout_ms = CL_STATUS_TIMEOUT_MS;
	rv = cl_status_collect(st, a);
	if (rv != RSCTL_EXIT_OK) {
		free(st);
		return rv;
	}
	for (i = 0; i < st->n; i++) {
		struct cl_probe *p = &st->probes[i];
		cl_status_read(p);
		if (p->doc != NULL) {
			answered++;
			leaders += strcmp(p->role, "leader") == 0;
		}
		cl_status_row(&cells[i * CL_STATUS_COLS], st->names[i], p);
	}
	if (a->json)
		rv = cl_status_print_json(st);
	else {
		cl_table_print(stdout, cl_status_head, CL_STATUS_COLS, cells,
			       st->n);
		cl_status_print_cluster(stdout, st);
	}
	if (rv != RSCTL_EXIT_OK) {
		/* the JSON could not be written: said so already */
	} else if (answered < st->n / 2 + 1) {
		rsctl_errorf("status: %u of %u endpoints answered, not a "
			     "majority", answered, st->n);
		rv = RSCTL_EXIT_UNAVAILABLE;
	} else if (leaders == 0) {
		rsctl_errorf("status: no node that answered is the leader");
		rv = RSCTL_EXIT_UNAVAILABLE;
	}
	for (i = 0; i < st->n; i++) {
		json_decref(st->probes[i].doc);
		rs_result_free(&st->probes[i].op.result);
	}
	free(st);
	return rv;
}

/* ---- members ---- */

static const char *const cl_members_head[CL_MEMBERS_COLS] = {
	"ID", "RAFT_ADDR", "CLIENT_ADDR", "ROLE", "LEADER"};

/* Fill a table row from one member object (docs/protocol.md §9: id,
 * raft_addr, client_addr, role, leader, all required).  Returns 0, or an
 * rs_error code with errmsg naming the member that is wrong. */
static int cl_members_row(const json_t *m, char (*row)[CL_CELL_SIZE],
			  char *errmsg)
{
	static const char *const strs[] = {"raft_addr", "client_addr", "role"};
	const char *s;
	uint64_t id;
	int leader, rv;
	unsigned c;

	if (!json_is_object(m)) {
		rs_errmsg_printf(errmsg, "expected an object");
		return RS_EPROTO;
	}
	rv = rs_json_get_u64(m, "id", &id, errmsg);
	for (c = 0; c < 3 && rv == RS_OK; c++) {
		rv = rs_json_get_str(m, strs[c], &s, NULL, errmsg);
		if (rv == RS_OK)
			snprintf(row[1 + c], CL_CELL_SIZE, "%s",
				 s[0] != '\0' ? s : "-");
	}
	if (rv == RS_OK)
		rv = rs_json_get_bool(m, "leader", &leader, errmsg);
	if (rv != RS_OK)
		return rv;
	snprintf(row[0], CL_CELL_SIZE, "%" PRIu64, id);
	snprintf(row[4], CL_CELL_SIZE, "%s", leader ? "yes" : "no");
	return RS_OK;
}

/* Read the MEMBERS answer: a JSON array of member objects, one table row
 * each.  Returns 0 with *doc set, or an rs_error code with errmsg naming
 * the element and the member that is wrong. */
static int cl_members_read(const struct rs_result *res, json_t **doc,
			   char (*cells)[CL_CELL_SIZE], unsigned max,
			   unsigned *n, char *errmsg)
{
	json_t *arr, *m;
	size_t i;
	int rv = rs_json_parse(res->value.data, res->value.len, &arr, errmsg);

	if (rv != RS_OK)
		return rv;
	if (!json_is_array(arr) || json_array_size(arr) > max) {
		rs_errmsg_printf(errmsg, "expected an array of at most %u "
					 "members", max);
		json_decref(arr);
		return RS_EPROTO;
	}
	json_array_foreach(arr, i, m) {
		rv = cl_members_row(m, &cells[i * CL_MEMBERS_COLS], errmsg);
		if (rv != RS_OK) {
			rs_errmsg_wrapf(errmsg, "members[%zu]", i);
			json_decref(arr);
			return rv;
		}
	}
	*n = (unsigned)json_array_size(arr);
	*doc = arr;
	return RS_OK;
}

/* Below the members table: the cluster ID of the node that answered,
 * from its STATUS (MEMBERS is the bare array, docs/protocol.md §9). */
static void cl_members_print_cluster(struct rs_sync *s, const char *endpoint)
{
	struct rs_client *c = rs_sync_client(s);
	char id[CL_CELL_SIZE] = "?", node[CL_CELL_SIZE] = "?";
	struct rs_result res;
	json_t *doc;
	unsigned i;

	for (i = 0; endpoint != NULL && i < rs_client_endpoint_count(c); i++)
		if (strcmp(rs_client_endpoint(c, i), endpoint) == 0)
			break;
	if (endpoint == NULL || i == rs_client_endpoint_count(c))
		return;
	if (rs_sync_info(s, WIRE_STATUS, (int)i, &res) == RS_OK &&
	    rs_json_parse_object(res.value.data, res.value.len, &doc,
				 NULL) == RS_OK) {
		cl_cluster_text(id, sizeof id, doc);
		cl_cell_u64(node, doc, "id", endpoint);
		json_decref(doc);
	}
	rs_result_free(&res);
	printf("cluster ID: %s (as node %s at %s knows it)\n", id, node,
	       endpoint);
}

static int cl_members_run(const struct rsctl_cluster_args *a)
{
	/* Raft configurations are small; more than this is not an answer. */
	enum { MEMBERS_MAX = 64 };
	static char cells[MEMBERS_MAX * CL_MEMBERS_COLS][CL_CELL_SIZE];
	char errmsg[RS_ERRMSG_SIZE];
	struct rs_result res;
	struct rs_sync *s;
	json_t *doc = NULL;
	unsigned n = 0;
	int rv;

	rv = rsctl_cluster_open(a, "rsctl members list", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	if (rs_sync_info(s, WIRE_MEMBERS, -1, &res) != RS_OK) {
		rv = rsctl_fail("members", &res);
	} else if (cl_members_read(&res, &doc, cells, MEMBERS_MAX, &n,
				   errmsg) != RS_OK) {
		rsctl_errorf("members: answer from %s: %s",
			     res.endpoint != NULL ? res.endpoint : "?",
			     errmsg);
		rv = RSCTL_EXIT_FAIL;
	} else if (a->json) {
		rv = rsctl_print_json(doc, "members");
		doc = NULL; /* stolen */
	} else {
		cl_table_print(stdout, cl_members_head, CL_MEMBERS_COLS, cells,
			       n);
		cl_members_print_cluster(s, res.endpoint);
	}
	json_decref(doc);
	rs_result_free(&res);
	rs_sync_close(s);
	return rv;
}

/* ---- the commands ---- */

struct cl_command {
	const char *name;     /* for "rsctl <name> --help" */
	const char *sub;      /* a required subcommand, or NULL */
	const char *synopsis;
	const char *help;
	const char *exits;
	int (*run)(const struct rsctl_cluster_args *a);
};

static const struct cl_command cl_status = {
	"status", NULL, "rsctl status [options]",
	"Asks every endpoint for its STATUS, all at once, and prints one row "
	"per\n"
	"endpoint: node id, the address asked, Raft role and term, the "
	"leader it\n"
	"knows, the epoch its state machine is in and the director's phase "
	"(on\n"
	"the leader: monitoring once recovered; \"none\" on followers), its "
	"commit\n"
	"and applied Raft indexes, the highest applied store version, bytes "
	"on\n"
	"disk, and storage health; below the table, the cluster ID the nodes\n"
	"report (each node's when they differ; \"unknown\" for a node that has "
	"not\n"
	"learned it yet).  An endpoint that does not answer within\n"
	"--timeout-ms (for status: 2000 unless given) gets the role "
	"\"unreachable\" and the error in the "
	"HEALTH\n"
	"column.\n\n"
	"--json prints an array with one element per endpoint, in order: the "
	"node's\n"
	"status object as it sent it (docs/protocol.md section 9: id, "
	"cluster_id,\n"
	"client_addr,\n"
	"role, term, leader_id, commit_index, applied_index, "
	"applied_version,\n"
	"storage_bytes, health, ...), or for an endpoint without one\n"
	"  {\"endpoint\":E,\"unreachable\":B,\"error\":NAME,"
	"\"message\":TEXT}\n"
	"(unreachable is false for a node that answered with an error; its "
	"row\n"
	"then says \"error\" instead of \"unreachable\").\n",
	"  0  a majority of the endpoints answered and one of them is the "
	"leader\n"
	"  3  fewer answered, or none of them is the leader (the table is "
	"still\n"
	"     printed)\n",
	cl_status_run};

static const struct cl_command cl_members = {
	"members", "list", "rsctl members list [options]",
	"Lists the members of the Raft configuration, as the node that "
	"answers\n"
	"knows them (the client prefers the leader): id, Raft address, "
	"client\n"
	"address, role (voter, standby or spare; \"pending\" for a member "
	"recorded\n"
	"but not in Raft, a change cut short: repeat the add or remove it), "
	"and\n"
	"whether it is the leader; below the table, the cluster ID of the "
	"node\n"
	"that answered (from its STATUS).\n"
	"Changes: rsctl members add|promote|remove (rsctl members add "
	"--help).\n"
	"--json prints the node's array as sent: objects with id, "
	"raft_addr,\n"
	"client_addr, role and leader.\n",
	"  0  success\n"
	"  1  the answer could not be read\n"
	"  3  no node answered\n",
	cl_members_run};

static void cl_help(const struct cl_command *cmd)
{
	printf("Usage: %s\n\n%s\nOptions:\n", cmd->synopsis, cmd->help);
	rsctl_cluster_help_opts(stdout);
	printf("\nExit codes:\n%s  %d  usage error: bad arguments or "
	       "endpoints\n",
	       cmd->exits, RSCTL_EXIT_USAGE);
}

static int cl_main(const struct cl_command *cmd, int argc, char **argv)
{
	struct rsctl_cluster_args a;
	char help_cmd[64];
	int i = 1, rv;

	assert(argc >= 1 && strcmp(argv[0], cmd->name) == 0);
	snprintf(help_cmd, sizeof help_cmd, "rsctl %s%s%s", cmd->name,
		 cmd->sub != NULL ? " " : "", cmd->sub != NULL ? cmd->sub : "");
	rsctl_cluster_args_init(&a);
	if (cmd->sub != NULL && argc >= 2 && !rsctl_is_help(argv[1])) {
		if (strcmp(argv[1], cmd->sub) != 0)
			return rsctl_usage_errorf(help_cmd,
						  "unknown %s subcommand '%s'",
						  cmd->name, argv[1]);
		i = 2;
	} else if (cmd->sub != NULL && argc < 2) {
		return rsctl_usage_errorf(help_cmd, "missing subcommand (%s)",
					  cmd->sub);
	}
	for (; i < argc; i++) {
		if (rsctl_is_help(argv[i])) {
			cl_help(cmd);
			return RSCTL_EXIT_OK;
		}
		rv = rsctl_cluster_parse_opt(argc, argv, &i, help_cmd, &a);
		if (rv > RSCTL_EXIT_OK)
			return rv;
		if (rv < 0)
			return rsctl_usage_errorf(help_cmd, "%s '%s'",
						  argv[i][0] == '-'
							  ? "unknown option"
							  : "unexpected argument",
						  argv[i]);
	}
	return cmd->run(&a);
}

int rsctl_status_run(int argc, char **argv)
{
	return cl_main(&cl_status, argc, argv);
}

int rsctl_members_run(int argc, char **argv)
{
	if (argc < 2)
		return rsctl_usage_errorf("rsctl members", "missing subcommand "
							  "(list, add, promote, "
							  "remove or rebuild)");
	if (rsctl_is_help(argv[1]) || (argc >= 2 && (strcmp(argv[1], "add") == 0 ||
			  strcmp(argv[1], "promote") == 0 ||
			  strcmp(argv[1], "remove") == 0 ||
			  strcmp(argv[1], "rebuild") == 0)))
		return rsctl_members_change_run(argc, argv);
	return cl_main(&cl_members, argc, argv);
}
