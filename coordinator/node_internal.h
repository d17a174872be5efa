/*
 * node_internal: the node's state and the functions its files share.
 *
 * The node is split by concern around this header, one file each:
 *   node.c           wiring: creates the modules in order, connects their
 *                    callbacks, follows c-raft's role, stops them in
 *                    reverse order
 *   node_start.c     start-up decisions and checks (the data-dir lock and
 *                    identity, cold or warm, members, Raft segments, Raft
 *                    configuration, stored layout, why Raft did not start)
 *   node_director.c  the control plane: runs and restarts the director on
 *                    the leader, takes registrations, sends heartbeats
 *   node_status.c    the STATUS and MEMBERS documents (and GET /status)
 *   node_members.c   membership changes (add, promote, remove) on the
 *                    leader; every node's members follow the stored key
 *   node_join.c      a new node joining a running cluster (--join)
 *
 * Nothing here is for other modules: node.h is the node's interface.
 * Everything runs on the node's one loop thread.
 */
#ifndef RS_NODE_INTERNAL_H
#define RS_NODE_INTERNAL_H

#include <limits.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "coordinator/config.h"
#include "coordinator/identity.h"
#include "coordinator/node.h"
#include "director/director.h"
#include "raftstore/client.h"
#include "raftstore/fsm.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/metrics.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/proxy.h"
#include "raftstore/server.h"
#include "raftstore/wire.h"
#include "raftstore/raftguard.h"
#include "raftstore/service.h"

/* The one membership change in progress (node_members.c). */
struct node_change {
	int step;             /* enum change_step; 0 = idle */
	uint8_t op;           /* enum wire_member_op */
	uint64_t id;
	char raft_addr[CONFIG_ADDR_MAX];
	char client_addr[CONFIG_ADDR_MAX];
	struct server_req *req; /* the client's request; NULL once answered */
	bool key_written, raft_done;
	int status;           /* the last step's outcome (from its callback) */
	char msg[RS_ERRMSG_SIZE];
	struct proxy_txn txn; /* the system transaction writing the members */
	struct raft_change raft_req;
	struct raft_transfer transfer_req;
	uv_timer_t timer;     /* runs the next step from the loop */
};

/* A new node asking to be promoted (node_join.c). */
struct node_join {
	bool active;          /* --join, and not yet a voter */
	bool inflight;
	uint64_t last_ms;     /* last promotion request sent */
	struct rs_client *client;
	struct rs_op op;
	bool cluster_known;   /* cluster_id below came from the endpoints */
	uint8_t cluster_id[IDENTITY_CLUSTER_ID_SIZE];
};

struct node {
	uv_loop_t loop;
	struct config cfg;
	int lock_fd;                /* DIR/LOCK, flock'ed for the process' life */
	struct identity identity;   /* DIR/identity as loaded or written */
	char store_dir[PATH_MAX + 16];
	char raft_dir[PATH_MAX + 16];
	struct config_peer peers[CONFIG_PEERS_MAX];
	unsigned n_peers;
	bool peers_from_flags; /* --initial-cluster, not storage or --join */
	struct store *store;
	struct fsm fsm;
	struct raft_uv_transport transport; /* c-raft's TCP, wrapped by guard */
	struct raftguard guard; /* the cluster-ID HELLO (never moves) */
	uint64_t probe_ms;      /* loop time of the last founder probe */
	struct raft_io io;
	struct raft raft;
	bool raft_started;
	struct proxy *proxy;
	struct watch_hub *hub;
	struct service *service;
	struct server *server;
	uv_signal_t sigterm, sigint;
	uv_timer_t role_timer;
	int role;
	raft_id leader_id;
	/* a fast election after the leader's connection closed (node.c) */
	bool fast_election;     /* the shortened election timeout is set */
	raft_id fast_election_leader;
	uint64_t fast_election_ms; /* loop time the close was seen */
	uint64_t leader_changes;
	uint64_t start_ms;
	/* control plane */
	struct director_registry registry;
	struct director *director;
	uv_timer_t director_timer; /* restart after an exit, with backoff */
	uv_timer_t quiesce_timer;  /* shutdown: wait for c-raft to answer */
	uint64_t quiesce_deadline_ms;
	unsigned director_backoff_ms;
	unsigned persist_faults;   /* RS_FAULT_PERSIST_FAILURES (tests) */
	enum director_phase hold_phase; /* RS_FAULT_HOLD_PHASE=phase:ms */
	unsigned hold_ms;
	enum director_txn_fault txn_fault; /* RS_FAULT_SYSTEM_TXN=kind:N */
	unsigned txn_faults;               /* directors it still fails */
	uint64_t director_starts;
	struct rs_client *reg_client; /* heartbeats to the leader */
	char reg_addr[64];
	struct rs_op reg_op;
	bool reg_inflight;
	unsigned reg_not_member; /* heartbeats refused in a row: not a member */
	bool was_voter;          /* this node has been a voter since it started */
	uint64_t last_heartbeat_ms;
	char coordinators[1024];
	struct node_change change;
	struct node_join join;
	/* observability: each module registers and updates its own metrics;
	 * these are the ones of the node's own concerns */
	struct audit *audit;
	struct http *http;
	struct metrics *metrics;
	struct metric *m_has_leader, *m_leader_changes; /* node.c */
	struct metric *m_recoveries, *m_recovery_seconds; /* node_director.c */
	struct metric *m_fsync_audit; /* node.c, fed by the audit log */
	bool stopping;
	int exit_code;
};

/* ---- node.c ---- */

/* A clean shutdown (exit 0), as SIGTERM does, for why. */
void node_shutdown(struct node *n, const char *why);
/* Log, record in the audit log, and _exit(NODE_EXIT_FAILURE). */
void node_fatal(void *ctx, const char *msg);
/* The member with this id, or NULL. */
const struct config_peer *node_peer(const struct node *n, raft_id id);
/* The leader's client address, or NULL if unknown or this node
 * (proxy_options.leader_addr). */
const char *node_leader_addr(void *ctx);
/* A member's client address, NULL if unknown (proxy_options.peer_addr). */
const char *node_peer_client_addr(void *ctx, uint64_t id);
/* This node's cluster ID, all zero while unknown (the Raft guard's
 * handshake and proxy_options.cluster_id). */
void node_cluster_id(void *ctx, uint8_t out[16]);
/* director_env.event: audit the director's event, then tell the control
 * plane (node_director_event). */
void node_event(void *ctx, const char *name, json_t *members);
/* raftguard_peer_ops.peer_closed: the connection to peer ended (EOF or a
 * reset).  If peer is this follower's leader, elect sooner. */
void node_peer_closed(struct node *n, raft_id peer);
/* Whether leader is the one whose connection this follower saw end, with
 * nothing heard from a leader since (raftvote's callback, guard 17). */
bool node_leader_gone(void *ctx, raft_id leader);

/* ---- node_start.c ---- */

/* Create the data dir if absent and lock DIR/LOCK (flock, exclusive, not
 * waiting) before any other file in it is touched; write our PID into it.
 * NODE_EXIT_MISMATCH naming the dir and the holder's PID if another
 * process holds it. */
int node_lock_data_dir(struct node *n, char *errmsg);
/* Read DIR/identity into n->identity if it exists (*found): its node id
 * must be --id.  NODE_EXIT_MISMATCH on a bad file or another id. */
int node_load_identity(struct node *n, bool *found, char *errmsg);
/* No identity file yet: write one.  Cold start: this node's id, and a new
 * cluster ID if it is the founder (lowest id of the members).  Warm start
 * (a dir made before identity files): --id and an unknown cluster ID. */
int node_create_identity(struct node *n, bool cold, char *errmsg);
/* Store a cluster ID learned from the founder durably, then use it
 * (n->identity).  RS_OK if it is already the node's; RS_EEXIST if the node
 * has another; RS_EINVAL for all zero; a write error leaves n->identity
 * as it was. */
/* While the cluster ID is unknown, ask the founder for it (rate-limited;
 * called from the role tick). */
void node_probe_founder(struct node *n);
int node_adopt_cluster_id(struct node *n,
			  const uint8_t id[IDENTITY_CLUSTER_ID_SIZE],
			  char *errmsg);
/* Open the store, logging what recovery found. */
int node_open_store(struct node *n, char *errmsg);
/* Cold or warm start, and the members (n->peers); checks this node is one
 * of them.  NODE_EXIT_* on refusal. */
int node_decide(struct node *n, bool *cold, char *errmsg);
/* Warm start: the stored layout must decode (or --ignore-bad-layout). */
int node_check_layout(struct node *n, char *errmsg);
/* Warm start: check (and cut a torn tail of) c-raft's segments. */
int node_check_raft_segments(struct node *n, char *errmsg);
/* raft_uv and raft_init over n->fsm (initialised by the caller), the
 * timeouts, and on a cold start the bootstrap configuration. */
int node_init_raft(struct node *n, bool cold, char *errmsg);
/* raft_start returned rv: errmsg says why, with c-raft's own message
 * (raft, I/O or transport, whichever has one).  A listener that cannot be
 * bound is NODE_EXIT_MISMATCH (the flags name an address in use), any
 * other failure NODE_EXIT_FAILURE. */
int node_raft_start_failed(struct node *n, int rv, char *errmsg);
/* After raft_start: c-raft's configuration names the given members. */
int node_check_raft_config(struct node *n, char *errmsg);

/* ---- node_director.c ---- */

/* The leader's proxy is ready (proxy_options.on_ready): recover. */
void node_director_leader_ready(void *ctx);
/* Stop the director, and any pending restart (leadership lost). */
void node_director_drop(struct node *n);
/* The director emitted an event (already audited by the caller). */
void node_director_event(struct node *n, const char *name);
/* service_options.registration: record a member's heartbeat. */
char *node_registration(void *ctx, const struct service_registration *r,
			int *status);
/* Every role tick: register with the leader, at most every half heartbeat
 * interval. */
void node_heartbeat(struct node *n);
/* raftstore_epoch, raftstore_recoveries_total and
 * raftstore_recovery_duration_seconds.  RS_OK or RS_EINVAL. */
int node_director_metrics_register(struct node *n);

/* The members changed, so the layout must: a monitoring director writes
 * a layout update at once (no new epoch); one still recovering, whose
 * layout may name a removed member, is stopped and the next one (next
 * epoch) starts after the shortest backoff. */
void node_director_members_changed(struct node *n, const char *why);

/* ---- node_members.c ---- */

/* Set the members (n->peers, n->coordinators) from a list in config
 * syntax; RS_EINVAL with errmsg if it does not parse. */
int node_members_set(struct node *n, const char *list, char *errmsg);
/* Re-read \xff/system/coordinators (after a snapshot install). */
void node_members_reload(struct node *n);
/* The fsm applied b: reload the members if it wrote the key. */
void node_members_applied(struct node *n, const struct batch *b);
/* A stored member or a server of c-raft's configuration (a change may be
 * known to one before the other). */
bool node_is_member(struct node *n, uint64_t id);
/* id is in c-raft's configuration (the latest, committed or not). */
bool node_in_raft_config(struct node *n, uint64_t id);
/* A voter of c-raft's configuration. */
bool node_is_voter(struct node *n, uint64_t id);
/* service_options.member_change (leader only; one at a time). */
void node_member_change(void *ctx, struct server_req *req,
			const struct wire_member_change_req *m);
int node_members_init(struct node *n);
/* Shutdown: answer a change in flight, close the timer. */
void node_members_stop(struct node *n);
/* After the proxy closed: free the system transaction. */
void node_members_close(struct node *n);

/* ---- node_join.c ---- */

/* --join on a data dir with no members recorded: ask the endpoints for
 * the cluster ID and the members; this node must be one of them (added
 * with rsctl members add).  Sets n->peers and n->join.cluster_id.
 * NODE_EXIT_* on refusal, errmsg naming the endpoints. */
int node_join_fetch(struct node *n, char *errmsg);
/* Every role tick: until this node is a voter, ask the leader (through
 * the --join endpoints) to promote it, at most once a second. */
void node_join_tick(struct node *n);
void node_join_stop(struct node *n);

/* ---- node_status.c ---- */

/* [{id, raft_addr, client_addr, role, leader}]: c-raft's configuration,
 * then the stored members it lacks ("pending"); NULL when out of memory. */
json_t *node_members_array(struct node *n);

/* service_options.status_json / members_json: malloc'ed JSON, NULL when
 * out of memory. */
char *node_status_json(void *ctx);
char *node_members_json(void *ctx);
/* service_options.members: c-raft's configuration, with the client
 * addresses of n->peers (the same members as MEMBERS lists). */
unsigned node_gate_members(void *ctx, struct service_member *out,
			   unsigned max);
/* GET /status (http_route). */
int node_status_body(void *ctx, struct rs_buf *body);
/* GET /health: {"health":true,"reason":""}, or RS_EUNAVAILABLE (503) with
 * health false and the reason: storage failed, no leader known, applied
 * more than 1000 entries behind the commit index, or (leader) the
 * director not accepting. */
int node_health_body(void *ctx, struct rs_buf *body);

#endif /* RS_NODE_INTERNAL_H */
