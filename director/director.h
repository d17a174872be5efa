/*
 * director: recovers the transaction system after every leadership change,
 * then monitors it (design brief, "Control path").
 *
 * The node runs at most one director, on the Raft leader, started once the
 * leader's proxy is ready.  A director is an explicit state machine; each
 * phase is logged and audited with its duration:
 *
 *   IDLE -> EPOCH -> BARRIER -> LOCKING -> RECRUITING -> LAYOUT ->
 *   PERSISTING -> ACCEPTING -> MONITORING          (any -> EXITED)
 *
 *   EPOCH       commit an FSM_ENTRY_EPOCH entry: epoch = previous + 1.  It
 *               is a committed counter, not the Raft term.
 *   BARRIER     raft_barrier; the recovery version is the applied version.
 *   LOCKING     stamp the new epoch on every batch; the state machine now
 *               fences batches of older epochs on every replica.
 *   RECRUITING  place the sequencer, resolvers, commit proxies, logs and
 *               storage on live nodes, with desired counts from
 *               \xff/system/config/.  Live: registered within the failure
 *               timeout, or a voter whose Raft log holds everything
 *               committed at the barrier (its match index: it answered
 *               this leader just now).  It goes as soon as every member
 *               is live, or a majority of the voters a few ms after it
 *               began (a live straggler comes back by a layout update),
 *               or at the registration deadline.
 *   LAYOUT      build the TSL (director/tsl.h).
 *   PERSISTING  commit one system transaction through the commit proxy,
 *               resolver, log and storage, writing the layout (consolidated
 *               and decomposed), epoch, coordinators, config and
 *               last_recovery.  Its commit makes it durable on a majority
 *               of the logs and applied here; the other replicas apply it
 *               from their logs, and monitoring holds them to it.
 *   ACCEPTING   client commits are accepted from here on (before: the
 *               retryable RS_ERECOVERING).
 *   MONITORING  every 100 ms: heartbeats, apply and log lag of every
 *               recruited node, a returning node (re-admission), a removed
 *               member, config changes.
 *
 * A follower lost, lagging, back or removed costs no epoch: the director
 * stays in MONITORING and writes a layout update, a new layout of the same
 * epoch (layout id + 1) built from the members as they are now, by a
 * system transaction that client commits flow beside (the proxy keeps
 * accepting), and waits until every storage replica of it has applied it.
 * Nothing in flight depends on a follower's components: its commit proxy
 * forwards each transaction to this one, and its log and storage are
 * Raft's to catch up.  The sequencer, resolvers and batching live on the
 * leader, so only what changes them needs a new epoch: a leadership
 * change (this director stops) and a configuration change (it exits).
 *
 * Fail-fast: any other failure, a failed layout update included, or a
 * layout update not applied by every replica within persist_timeout_ms
 * makes the director exit with its reason; the node
 * starts the next director (next epoch) after a bounded backoff.
 */
#ifndef RS_DIRECTOR_H
#define RS_DIRECTOR_H

#include <jansson.h>
#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/buf.h"
#include "raftstore/proxy.h"
#include "storage/store.h"

#define DIRECTOR_KEY_EPOCH "\xff/system/epoch"
#define DIRECTOR_KEY_LAYOUT "\xff/system/layout"
#define DIRECTOR_KEY_COORDINATORS "\xff/system/coordinators"
#define DIRECTOR_KEY_LAST_RECOVERY "\xff/system/last_recovery"
#define DIRECTOR_CONFIG_PREFIX "\xff/system/config/"
#define DIRECTOR_REGISTRY_MAX 16

enum director_phase {
	DIRECTOR_IDLE = 0,
	DIRECTOR_EPOCH,
	DIRECTOR_BARRIER,
	DIRECTOR_LOCKING,
	DIRECTOR_RECRUITING,
	DIRECTOR_LAYOUT,
	DIRECTOR_PERSISTING,
	DIRECTOR_ACCEPTING,
	DIRECTOR_MONITORING,
	DIRECTOR_EXITED,
	DIRECTOR__PHASES
};

const char *director_phase_name(enum director_phase p);

/* What the node knows of each member: registration and heartbeats.  Owned
 * by the node, so it outlives directors. */
struct director_member {
	uint64_t node_id;
	char raft_addr[64];
	char client_addr[64];
	uint32_t capabilities;
	uint64_t applied_version;
	uint64_t last_seen_ms; /* loop time of the last heartbeat, 0 = never */
};

struct director_registry {
	struct director_member m[DIRECTOR_REGISTRY_MAX];
	unsigned n;
};

/* Record a heartbeat.  RS_ETOOLARGE if the registry is full. */
int director_registry_update(struct director_registry *r, uint64_t node_id,
			     const char *raft_addr, const char *client_addr,
			     uint32_t caps, uint64_t applied_version,
			     uint64_t now_ms);

/* Add a member never heard from (last_seen 0), with its addresses, unless
 * it is there already: the node seeds every member before a director
 * starts, so that one whose first registration is still on its way can be
 * recruited on Raft's word (director.c).  RS_ETOOLARGE if full. */
int director_registry_seed(struct director_registry *r, uint64_t node_id,
			   const char *raft_addr, const char *client_addr);

/* Forget a member (it was removed from the cluster): its old heartbeats
 * must not make it look live to the next layout.  No-op if absent. */
void director_registry_remove(struct director_registry *r, uint64_t node_id);

/*
 * Test faults of the system transaction, injected where the director
 * submits it: instead of going to the commit proxy it fails at once, as
 * the commit path fails it before commit, so nothing of it is proposed or
 * applied.  The director then exits like on the real failure.  Like every
 * test fault of the env (persist_failures, hold_phase), it acts only in a
 * build configured with --enable-fault-hooks (RS_FAULT_HOOKS).
 */
enum director_txn_fault {
	DIRECTOR_TXN_FAULT_NONE = 0,
	DIRECTOR_TXN_FAULT_REFUSE,     /* the commit proxy refuses it */
	DIRECTOR_TXN_FAULT_CONFLICT,   /* the resolver finds a conflict */
	DIRECTOR_TXN_FAULT_LEADERSHIP, /* leadership lost before proposing */
	DIRECTOR_TXN_FAULT__KINDS
};

#ifdef RS_FAULT_HOOKS
/* "refuse", "conflict" or "leadership" (the names of RS_FAULT_SYSTEM_TXN):
 * RS_OK and *out, or RS_EINVAL. */
int director_txn_fault_parse(const char *name, enum director_txn_fault *out);
#endif

struct director_env {
	uv_loop_t *loop;
	struct raft *raft;
	struct store *store;
	struct proxy *proxy;
	struct director_registry *registry;
	uint64_t node_id;
	const char *client_addr;
	uint64_t current_epoch;     /* the state machine's, at start */
	const char *coordinators;   /* the member list, config syntax */
	unsigned failure_ms;        /* heartbeat age that fails a node */
	unsigned recruit_wait_ms;   /* wait for registrations */
	unsigned persist_timeout_ms; /* a layout update's replica wait */
	unsigned persist_failures;  /* test fault: report a committed
				     * system transaction as failed */
	enum director_txn_fault system_txn_fault; /* test fault, above */
	enum director_phase hold_phase; /* test fault: pause at this phase's */
	unsigned hold_ms;               /* start for hold_ms (0 = never) */
	/* An audit/log event: name (DIRECTOR_EV_*) and its members, a JSON
	 * object always starting with "epoch", which the callee takes over
	 * (steals; it may be NULL when out of memory).  The audit log
	 * reserves "ts", "node", "seq", "event" and "v": a member naming
	 * another node is called "component_node". */
	void (*event)(void *ctx, const char *name, json_t *members);
	/* The director exited (reason is a sentence); the node restarts it. */
	void (*exited)(void *ctx, const char *reason);
	void *ctx;
};

/* The events the director emits (docs/audit.md lists their members). */
#define DIRECTOR_EV_PHASE_START "phase_start"
#define DIRECTOR_EV_PHASE_END "phase_end"
#define DIRECTOR_EV_EPOCH_ALLOCATED "epoch_allocated"
#define DIRECTOR_EV_RECOVERY_VERSION "recovery_version"
#define DIRECTOR_EV_PREVIOUS_LAYOUT_FENCED "previous_layout_fenced"
#define DIRECTOR_EV_LAYOUT_BUILT "layout_built"
#define DIRECTOR_EV_LAYOUT_PERSISTED "layout_persisted"
#define DIRECTOR_EV_LAYOUT_UPDATED "layout_updated"
#define DIRECTOR_EV_COMPONENT_FAILURE "component_failure"
#define DIRECTOR_EV_DIRECTOR_EXIT "director_exit"

struct director;

struct director *director_start(const struct director_env *env);
/* Stop without restart (leadership lost, shutdown).  Safe in any phase;
 * frees the director once its callbacks have drained (cb may be NULL). */
void director_stop(struct director *d);

/* Start to accepting of the last completed recovery, in ms (0 if none). */
uint64_t director_recovery_ms(const struct director *d);
/* True once the director accepts commits (ACCEPTING or MONITORING). */
bool director_accepting(const struct director *d);
/* The phase it is in now. */
enum director_phase director_phase(const struct director *d);
/* Look at the cluster now rather than at the next monitoring tick (a
 * member was removed): true if the director is monitoring, and so will
 * write the layout update itself; false while it is still recovering
 * (its layout may already name the member). */
bool director_check_now(struct director *d);
/* Set the director's members of the node's STATUS document (epoch,
 * director_phase, phase_ms, recovery_ms, layout_id, director_exit) in doc.
 * RS_OK, or RS_ENOMEM with some members set. */
int director_status_fields(const struct director *d, json_t *doc);

#endif /* RS_DIRECTOR_H */
