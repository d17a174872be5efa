/* config: see config.h. */
#include "coordinator/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	c->election_timeout_ms = 1000;
	c->heartbeat_timeout_ms = 100;
	c->snapshot_threshold = 65536;
	c->snapshot_log_mib = 64;
	c->snapshot_trailing = 2048;
	c->batch_count_max = 512;
	c->batch_delay_us = 500;
	c->client_frame_timeout_ms = 10000;
	c->max_client_connections = 1024;
	snprintf(c->log_level, sizeof c->log_level, "info");
}

/* Hosts are used without a resolver, as the client library's endpoints
 * are (raftstore/client_endpoint.c): an IPv4 address or "localhost". */
static bool config_host_ok(const char *host)
{
	struct in_addr a;
	return strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, &a) == 1;
}

/* Split "host:port" and check both; RS_EINVAL names the address. */
static int config_split_addr(const char *addr, char *host, size_t host_size,
			     int *port, char *errmsg)
{
	const char *colon = strrchr(addr, ':');
	char *end;
	long p;

	if (colon == NULL || colon == addr || (size_t)(colon - addr) >= host_size) {
		rs_errmsg_printf(errmsg, "address '%s' is not HOST:PORT", addr);
		return RS_EINVAL;
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] == '\0' || p < 1 || p > 65535) {
		rs_errmsg_printf(errmsg, "address '%s' has a bad port", addr);
		return RS_EINVAL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	*port = (int)p;
	if (!config_host_ok(host)) {
		rs_errmsg_printf(errmsg, "address '%s': host '%s' is not an IPv4 "
					 "address or localhost (names are not "
					 "resolved)", addr, host);
		return RS_EINVAL;
	}
	return RS_OK;
}

/* A Raft address: HOST:PORT with an IPv4 HOST.  c-raft 0.15 parses it with
 * uv_ip4_addr and resolves no name, not even localhost: a name fails only
 * at raft_start, after the bootstrap wrote it into the Raft state. */
static int config_check_raft_addr(const char *addr, char *errmsg)
{
	char host[CONFIG_ADDR_MAX];
	int port, rv = config_split_addr(addr, host, sizeof host, &port, errmsg);

	if (rv == RS_OK && strcmp(host, "localhost") == 0) {
		rs_errmsg_printf(errmsg, "Raft address '%s': host must be an IPv4 "
					 "address (c-raft resolves no name; use "
					 "127.0.0.1)", addr);
		rv = RS_EINVAL;
	}
	return rv;
}

/* --metrics-addr as the HTTP listener takes it (coordinator/http.h):
 * HOST:PORT as above, ":PORT" (every IPv4 interface) or "[IPV6]:PORT". */
static int config_check_metrics_addr(const char *addr, char *errmsg)
{
	char host[CONFIG_ADDR_MAX], port_form[CONFIG_ADDR_MAX + 16];
	const char *port_part = addr; /* ":PORT" */
	struct in6_addr a6;
	int port;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		size_t n = close ? (size_t)(close - addr - 1) : sizeof host;

		if (n >= sizeof host)
			goto bad;
		snprintf(host, sizeof host, "%.*s", (int)n, addr + 1);
		if (inet_pton(AF_INET6, host, &a6) != 1)
			goto bad;
		port_part = close + 1;
	} else if (addr[0] != ':') {
		return config_split_addr(addr, host, sizeof host, &port, errmsg);
	}
	/* the port alone, checked as any HOST:PORT's is */
	snprintf(port_form, sizeof port_form, "127.0.0.1%s", port_part);
	if (port_part[0] == ':' &&
	    config_split_addr(port_form, host, sizeof host, &port, NULL) == RS_OK)
		return RS_OK;
bad:
	rs_errmsg_printf(errmsg, "address '%s' is not HOST:PORT, [IPV6]:PORT or "
				 ":PORT with a port in 1..65535", addr);
	return RS_EINVAL;
}

static int config_parse_uint(const char *name, const char *s, unsigned min,
			     unsigned max, unsigned *out, char *errmsg)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *s == '\0' || *s == '-' || v < min ||
	    v > max) {
		rs_errmsg_printf(errmsg, "--%s: '%s' is not a number in %u..%u",
				 name, s, min, max);
		return RS_EINVAL;
	}
	*out = (unsigned)v;
	return RS_OK;
}

static int config_copy(const char *name, const char *v, char *dst,
		       size_t size, char *errmsg)
{
	if (strlen(v) >= size || *v == '\0') {
		rs_errmsg_printf(errmsg, "--%s: value '%s' is empty or too long",
				 name, v);
		return RS_EINVAL;
	}
	memcpy(dst, v, strlen(v) + 1);
	return RS_OK;
}

/* --join HOST:PORT,...: each a client address, checked as such. */
static int config_parse_join(const char *v, char *dst, size_t size,
			     char *errmsg)
{
	char list[512], host[CONFIG_ADDR_MAX], *save = NULL, *ep;
	int port;

	if (config_copy("join", v, dst, size, errmsg) != RS_OK)
		return RS_EINVAL;
	snprintf(list, sizeof list, "%s", v);
	for (ep = strtok_r(list, ",", &save); ep != NULL;
	     ep = strtok_r(NULL, ",", &save))
		if (config_split_addr(ep, host, sizeof host, &port, errmsg)) {
			rs_errmsg_wrapf(errmsg, "--join");
			return RS_EINVAL;
		}
	return RS_OK;
}

/* One peer "ID=RAFT/CLIENT". */
static int config_parse_peer(const char *item, struct config_peer *p,
			     char *errmsg)
{
	char buf[256], host[CONFIG_ADDR_MAX], *eq, *slash, *end;
	int port;

	if (strlen(item) >= sizeof buf)
		goto bad;
	strcpy(buf, item);
	eq = strchr(buf, '=');
	slash = eq ? strchr(eq, '/') : NULL;
	if (eq == NULL || slash == NULL)
		goto bad;
	*eq = *slash = '\0';
	errno = 0;
	p->id = strtoull(buf, &end, 10);
	if (errno != 0 || *end != '\0' || p->id == 0 || buf[0] == '-')
		goto bad;
	if (strlen(eq + 1) >= CONFIG_ADDR_MAX || strlen(slash + 1) >= CONFIG_ADDR_MAX)
		goto bad;
	strcpy(p->raft_addr, eq + 1);
	strcpy(p->client_addr, slash + 1);
	if (config_check_raft_addr(p->raft_addr, errmsg) ||
	    config_split_addr(p->client_addr, host, sizeof host, &port, errmsg)) {
		rs_errmsg_wrapf(errmsg, "--initial-cluster entry '%s'", item);
		return RS_EINVAL;
	}
	return RS_OK;
bad:
	rs_errmsg_printf(errmsg,
			 "--initial-cluster entry '%s' is not ID=RAFTHOST:PORT/CLIENTHOST:PORT",
			 item);
	return RS_EINVAL;
}

int config_parse_cluster(const char *s, struct config_peer *peers,
			 unsigned *n, char *errmsg)
{
	char buf[2048], *save = NULL, *item;
	int rv;

	*n = 0;
	if (strlen(s) >= sizeof buf || *s == '\0') {
		rs_errmsg_printf(errmsg, "--initial-cluster is empty or too long");
		return RS_EINVAL;
	}
	strcpy(buf, s);
	for (item = strtok_r(buf, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		if (*n == CONFIG_PEERS_MAX) {
			rs_errmsg_printf(errmsg, "--initial-cluster has more than %d nodes",
					 CONFIG_PEERS_MAX);
			return RS_EINVAL;
		}
		rv = config_parse_peer(item, &peers[*n], errmsg);
		if (rv != RS_OK)
			return rv;
		for (unsigned i = 0; i < *n; i++) {
			if (peers[i].id == peers[*n].id ||
			    strcmp(peers[i].raft_addr, peers[*n].raft_addr) == 0 ||
			    strcmp(peers[i].client_addr, peers[*n].client_addr) == 0) {
				rs_errmsg_printf(errmsg,
						 "--initial-cluster: node %llu repeats an id or "
						 "address of node %llu",
						 (unsigned long long)peers[*n].id,
						 (unsigned long long)peers[i].id);
				return RS_EINVAL;
			}
		}
		(*n)++;
	}
	return RS_OK;
}

void config_format_cluster(const struct config_peer *peers, unsigned n,
			   char *out, size_t size)
{
	size_t o = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < n && o < size; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%llu=%s/%s",
				      i ? "," : "",
				      (unsigned long long)peers[i].id,
				      peers[i].raft_addr, peers[i].client_addr);
}

/* Apply one setting by its long name. */
static int config_set(struct config *c, const char *name, const char *v,
		      char *errmsg)
{
	unsigned u;
	int rv;

	if (strcmp(name, "id") == 0) {
		rv = config_parse_uint(name, v, 1, 1000000, &u, errmsg);
		c->id = u;
		return rv;
	}
	if (strcmp(name, "data-dir") == 0)
		return config_copy(name, v, c->data_dir, sizeof c->data_dir, errmsg);
	if (strcmp(name, "raft-addr") == 0)
		return config_copy(name, v, c->raft_addr, sizeof c->raft_addr, errmsg);
	if (strcmp(name, "client-addr") == 0)
		return config_copy(name, v, c->client_addr, sizeof c->client_addr,
				   errmsg);
	if (strcmp(name, "metrics-addr") == 0)
		return config_copy(name, v, c->metrics_addr, sizeof c->metrics_addr,
				   errmsg);
	if (strcmp(name, "initial-cluster") == 0)
		return config_parse_cluster(v, c->peers, &c->n_peers, errmsg);
	if (strcmp(name, "join") == 0)
		return config_parse_join(v, c->join, sizeof c->join, errmsg);
	if (strcmp(name, "election-timeout-ms") == 0)
		return config_parse_uint(name, v, 50, 60000, &c->election_timeout_ms,
					 errmsg);
	if (strcmp(name, "heartbeat-timeout-ms") == 0)
		return config_parse_uint(name, v, 10, 10000,
					 &c->heartbeat_timeout_ms, errmsg);
	if (strcmp(name, "snapshot-threshold") == 0)
		return config_parse_uint(name, v, 16, 10000000,
					 &c->snapshot_threshold, errmsg);
	if (strcmp(name, "snapshot-log-mib") == 0)
		return config_parse_uint(name, v, 1, 65536, &c->snapshot_log_mib,
					 errmsg);
	if (strcmp(name, "snapshot-trailing") == 0)
		return config_parse_uint(name, v, 0, 10000000,
					 &c->snapshot_trailing, errmsg);
	if (strcmp(name, "batch-count-max") == 0)
		return config_parse_uint(name, v, 1, 100000, &c->batch_count_max,
					 errmsg);
	if (strcmp(name, "batch-delay-us") == 0)
		return config_parse_uint(name, v, 0, 1000000, &c->batch_delay_us,
					 errmsg);
	if (strcmp(name, "client-frame-timeout-ms") == 0)
		return config_parse_uint(name, v, 10, 3600000,
					 &c->client_frame_timeout_ms, errmsg);
	if (strcmp(name, "max-client-connections") == 0)
		return config_parse_uint(name, v, 1, 1000000,
					 &c->max_client_connections, errmsg);
	if (strcmp(name, "ignore-bad-layout") == 0) {
		if (strcmp(v, "true") && strcmp(v, "false")) {
			rs_errmsg_printf(errmsg, "--ignore-bad-layout: '%s' is not "
						 "true or false", v);
			return RS_EINVAL;
		}
		c->ignore_bad_layout = strcmp(v, "true") == 0;
		return RS_OK;
	}
	if (strcmp(name, "linearizable-reads") == 0) {
		if (strcmp(v, "quorum") && strcmp(v, "barrier")) {
			rs_errmsg_printf(errmsg, "--linearizable-reads: '%s' is not "
						 "quorum or barrier", v);
			return RS_EINVAL;
		}
		c->read_barrier = strcmp(v, "barrier") == 0;
		return RS_OK;
	}
	if (strcmp(name, "log-level") == 0) {
		if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") &&
		    strcmp(v, "error")) {
			rs_errmsg_printf(errmsg, "--log-level: '%s' is not debug, info, "
						 "warn or error", v);
			return RS_EINVAL;
		}
		return config_copy(name, v, c->log_level, sizeof c->log_level, errmsg);
	}
	rs_errmsg_printf(errmsg, "unknown setting '%s' (see --help)", name);
	return RS_EINVAL;
}

static char *config_trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int config_load_file(struct config *c, const char *path, char *errmsg)
{
	char line[4096], *eq, *name;
	FILE *f = fopen(path, "r");
	int lineno = 0, rv = RS_OK;

	if (f == NULL) {
		rs_errmsg_errno(errmsg, errno, "--config %s", path);
		return RS_EINVAL;
	}
	while (rv == RS_OK && fgets(line, sizeof line, f) != NULL) {
		lineno++;
		name = config_trim(line);
		if (*name == '\0' || *name == '#')
			continue;
		eq = strchr(name, '=');
		if (eq == NULL) {
			rs_errmsg_printf(errmsg, "expected 'name = value'");
			rv = RS_EINVAL;
			break;
		}
		*eq = '\0';
		rv = config_set(c, config_trim(name), config_trim(eq + 1), errmsg);
	}
	fclose(f);
	if (rv != RS_OK)
		rs_errmsg_wrapf(errmsg, "config file %s line %d", path, lineno);
	return rv;
}

/* Flags are "--name value" or "--name=value". */
static int config_parse_flag(struct config *c, int argc, char **argv, int *i,
			     char *errmsg)
{
	char name[64];
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '='), *v;

	if ((size_t)(eq ? eq - arg : (long)strlen(arg)) >= sizeof name) {
		rs_errmsg_printf(errmsg, "unknown flag '%s'", argv[*i]);
		return RS_EINVAL;
	}
	snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - arg : (long)strlen(arg)),
		 arg);
	if (eq != NULL) {
		v = eq + 1;
	} else if (*i + 1 < argc) {
		v = argv[++*i];
	} else {
		rs_errmsg_printf(errmsg, "flag --%s needs a value", name);
		return RS_EINVAL;
	}
	return config_set(c, name, v, errmsg);
}

int config_parse(struct config *c, int argc, char **argv, char *errmsg)
{
	int rv;

	/* The file first, so flags override it. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			rv = config_load_file(c, argv[i + 1], errmsg);
			if (rv != RS_OK)
				return rv;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			rv = config_load_file(c, argv[i] + 9, errmsg);
			if (rv != RS_OK)
				return rv;
		}
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			c->help = true;
			return RS_OK;
		}
		if (strcmp(argv[i], "--version") == 0) {
			c->version = true;
			return RS_OK;
		}
		if (strcmp(argv[i], "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0)
			continue;
		if (strncmp(argv[i], "--", 2) != 0) {
			rs_errmsg_printf(errmsg, "unexpected argument '%s'", argv[i]);
			return RS_EINVAL;
		}
		rv = config_parse_flag(c, argc, argv, &i, errmsg);
		if (rv != RS_OK)
			return rv;
	}
	return RS_OK;
}

/* Fill or check one of this node's addresses against its cluster entry. */
static int config_match_addr(const char *flag, char *mine, const char *listed,
			     uint64_t id, char *errmsg)
{
	if (*mine == '\0') {
		strcpy(mine, listed);
		return RS_OK;
	}
	if (strcmp(mine, listed) != 0) {
		rs_errmsg_printf(errmsg,
				 "--%s %s conflicts with --initial-cluster, which gives "
				 "node %llu the address %s",
				 flag, mine, (unsigned long long)id, listed);
		return RS_EINVAL;
	}
	return RS_OK;
}

int config_validate(struct config *c, char *errmsg)
{
	const struct config_peer *me = NULL;
	char host[CONFIG_ADDR_MAX];
	int port, rv;

	if (c->id == 0 || c->data_dir[0] == '\0') {
		rs_errmsg_printf(errmsg, "--id and --data-dir are required");
		return RS_EINVAL;
	}
	for (unsigned i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == c->id)
			me = &c->peers[i];
	if (c->join[0] && c->n_peers > 0) {
		rs_errmsg_printf(errmsg, "--join and --initial-cluster exclude "
					 "each other: --initial-cluster starts a new "
					 "cluster, --join joins a running one");
		return RS_EINVAL;
	}
	if (c->join[0] && (c->raft_addr[0] == '\0' || c->client_addr[0] == '\0')) {
		rs_errmsg_printf(errmsg, "--join needs --raft-addr and --client-addr "
					 "(the addresses given to rsctl members add)");
		return RS_EINVAL;
	}
	if (c->n_peers > 0 && me == NULL) {
		rs_errmsg_printf(errmsg, "--id %llu is not in --initial-cluster",
				 (unsigned long long)c->id);
		return RS_EINVAL;
	}
	if (me != NULL) {
		rv = config_match_addr("raft-addr", c->raft_addr, me->raft_addr,
				       c->id, errmsg);
		if (rv == RS_OK)
			rv = config_match_addr("client-addr", c->client_addr,
					       me->client_addr, c->id, errmsg);
		if (rv != RS_OK)
			return rv;
	}
	if (c->raft_addr[0] && config_check_raft_addr(c->raft_addr, errmsg)) {
		rs_errmsg_wrapf(errmsg, "--raft-addr");
		return RS_EINVAL;
	}
	if (c->client_addr[0] && config_split_addr(c->client_addr, host,
						    sizeof host, &port, errmsg)) {
		rs_errmsg_wrapf(errmsg, "--client-addr");
		return RS_EINVAL;
	}
	if (c->metrics_addr[0] &&
	    config_check_metrics_addr(c->metrics_addr, errmsg) != RS_OK) {
		rs_errmsg_wrapf(errmsg, "--metrics-addr");
		return RS_EINVAL;
	}
	if (c->heartbeat_timeout_ms * 2 > c->election_timeout_ms) {
		rs_errmsg_printf(errmsg,
				 "--heartbeat-timeout-ms %u must be at most half of "
				 "--election-timeout-ms %u",
				 c->heartbeat_timeout_ms, c->election_timeout_ms);
		return RS_EINVAL;
	}
	return RS_OK;
}

void config_usage(FILE *f)
{
	fprintf(f,
"usage: raftstored --id N --data-dir DIR [--initial-cluster LIST] [options]\n"
"       raftstored --id N --data-dir DIR --raft-addr A --client-addr B\n"
"                  --join ENDPOINTS [options]\n"
"\n"
"Runs one raftstore node.  Every flag can also be a line `name = value` in\n"
"the file given by --config FILE; flags override the file.\n"
"\n"
"  --id N                     this node's id (1..1000000), required\n"
"  --data-dir DIR             storage and Raft state, required; created if absent\n"
"  --initial-cluster LIST     ID=RAFTHOST:PORT/CLIENTHOST:PORT,... every node of\n"
"                             the cluster.  Required on a cold start (empty data\n"
"                             dir); on a warm start the node reads the members\n"
"                             from its storage (the flag, if given, is ignored\n"
"                             with a warning when the members have changed).\n"
"  --join HOST:PORT,...       join a running cluster: client endpoints of its\n"
"                             nodes.  Run `rsctl members add N RAFT CLIENT`\n"
"                             first; on an empty data dir the node learns the\n"
"                             cluster ID and members from the endpoints, gets\n"
"                             a snapshot and the log, then asks to become a\n"
"                             voter.  Needs --raft-addr and --client-addr.\n"
"  --raft-addr HOST:PORT      Raft listen address (default: from the list)\n"
"  --client-addr HOST:PORT    client listen address (default: from the list)\n"
"  --metrics-addr HOST:PORT   serve HTTP GET /metrics (Prometheus text),\n"
"                             /status (JSON) and /health (200, or 503 with\n"
"                             the reason) there (default: off)\n"
"  --election-timeout-ms N    Raft election timeout (default 1000)\n"
"  --heartbeat-timeout-ms N   Raft heartbeat interval, and the pace of\n"
"                             reconnects to a peer (default 100)\n"
"  --snapshot-log-mib N       take a Raft snapshot once the log since the last\n"
"                             one weighs half the state, at least 16 MiB and\n"
"                             at most N MiB (1..65536, default 64)\n"
"  --snapshot-threshold N     ... or once it holds N entries, whichever comes\n"
"                             first (16..10000000, default 65536); each\n"
"                             cycle, a random cut of up to a quarter off\n"
"                             both limits, so nodes snapshot apart\n"
"  --snapshot-trailing N      entries kept behind a snapshot (default 2048)\n"
"  --batch-count-max N        commit proxy: transactions per batch (default 512)\n"
"  --batch-delay-us N         commit proxy: wait to fill a batch (default 500)\n"
"  --client-frame-timeout-ms N\n"
"                             close a client connection whose request frame\n"
"                             has not arrived whole N ms after its first byte\n"
"                             (10..3600000, default 10000); a connection idle\n"
"                             between frames (a watch) is never closed for it\n"
"  --max-client-connections N client connections served at once (1..1000000,\n"
"                             default 1024); one more gets the error \"too many\n"
"                             client connections (N)\" and is closed\n"
"  --linearizable-reads HOW   how the leader proves a linearizable read's\n"
"                             version: quorum (a majority of voters answers\n"
"                             a TERM question with the leader's term; no log\n"
"                             write) or barrier (a Raft entry, replicated and\n"
"                             fsynced); quorum falls back to barrier when no\n"
"                             majority can answer (default quorum)\n"
"  --log-level LEVEL          debug, info, warn or error (default info)\n"
"  --ignore-bad-layout true   start even if the stored layout does not decode;\n"
"                             the next recovery replaces it (default false)\n"
"  --config FILE              read settings from FILE\n"
"  --help, --version\n"
"\n"
"Addresses are used exactly as given: HOST is an IPv4 address (client and\n"
"metrics addresses may also say localhost; no other name is resolved, and\n"
"--metrics-addr also takes [IPV6]:PORT and :PORT);\n"
"use 127.0.0.1 (the examples' choice) to stay on loopback.\n"
"\n"
"Logs go to stderr, one logfmt line per event; control-plane events\n"
"(elections, epochs, recovery phases, failures) are also appended to\n"
"DIR/audit/*.ndjson (read them with `rsctl events DIR`).\n"
"SIGTERM or SIGINT shuts the node down cleanly.\n"
"\n"
"The data dir is locked (DIR/LOCK holds the PID) while the node runs, and\n"
"DIR/identity records the node id and the cluster ID it belongs to.\n"
"\n"
"exit codes: 0 clean shutdown, 1 runtime failure (storage, Raft, a fatal\n"
"state machine error), 2 bad flags or configuration (nothing is written to\n"
"the data dir), 3 refused to start: the data dir is in use by another\n"
"raftstored, belongs to another node (--id) or does not match the flags\n"
"(members), its identity file is damaged, or a listen address is in use.\n");
}
