/*
 * config: raftstored's settings, from flags and an optional config file.
 *
 * Every flag --name VALUE can also be a line `name = VALUE` in the file given
 * by --config; flags win over the file.  Parsing never exits or prints: it
 * returns RS_EINVAL with a message naming the flag, the file and line, or
 * the bad value, and the caller prints it (exit code 2).
 */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_PEERS_MAX 7
#define CONFIG_ADDR_MAX 64

struct config_peer {
	uint64_t id;
	char raft_addr[CONFIG_ADDR_MAX];   /* host:port */
	char client_addr[CONFIG_ADDR_MAX]; /* host:port */
};

struct config {
	uint64_t id;
	char data_dir[PATH_MAX];
	char raft_addr[CONFIG_ADDR_MAX];
	char client_addr[CONFIG_ADDR_MAX];
	char metrics_addr[CONFIG_ADDR_MAX]; /* empty: no HTTP endpoint */
	struct config_peer peers[CONFIG_PEERS_MAX];
	unsigned n_peers; /* 0: not given (warm start reads storage) */
	char join[512];   /* --join: client endpoints of the cluster to join */
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned snapshot_threshold; /* at most this many entries between snapshots */
	unsigned snapshot_log_mib;   /* ... or this many MiB of log (snappolicy.h) */
	unsigned snapshot_trailing;  /* entries kept after a snapshot */
	unsigned batch_count_max;    /* commit proxy: txns per batch */
	unsigned batch_delay_us;     /* commit proxy: max wait to fill one */
	unsigned client_frame_timeout_ms; /* a partial frame's time to finish */
	unsigned max_client_connections;  /* served at once; more are refused */
	char log_level[16];
	bool ignore_bad_layout; /* let recovery replace an undecodable layout */
	bool read_barrier; /* --linearizable-reads barrier (default quorum) */
	bool help;    /* --help was given: print usage, exit 0 */
	bool version; /* --version was given */
};

/* Defaults for everything (no id, no dirs). */
void config_defaults(struct config *c);

/* Parse argv (flags and --config FILE).  RS_OK or RS_EINVAL + errmsg. */
int config_parse(struct config *c, int argc, char **argv, char *errmsg);

/* Parse "1=h:p/h:p,2=h:p/h:p" into peers. */
int config_parse_cluster(const char *s, struct config_peer *peers,
			 unsigned *n, char *errmsg);
/* Render peers back in the same syntax. */
void config_format_cluster(const struct config_peer *peers, unsigned n,
			   char *out, size_t size);

/* Cross-checks after parsing: id set, data dir set, this node's addresses
 * filled from (and consistent with) the cluster list, timeouts sane.  Every
 * address (of --initial-cluster, --raft-addr, --client-addr,
 * --metrics-addr) is HOST:PORT with an IPv4 HOST and a port in 1..65535;
 * client and metrics addresses may also say "localhost", --metrics-addr
 * also [IPV6]:PORT and :PORT.  No name is resolved, so a bad one is
 * refused here, before the data dir is touched. */
int config_validate(struct config *c, char *errmsg);

void config_usage(FILE *f);

#endif /* RS_CONFIG_H */
