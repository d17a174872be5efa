/*
 * plan: the director's decisions, as pure functions (director.h has the
 * phases).
 *
 * The director (director.c) does the I/O: it reads the loop clock, the
 * registry, the Raft configuration and the store, and commits through the
 * proxy.  Each phase's decision lives here instead: plain data in, a
 * decision out.  So a test can put the cluster in any state (a silent
 * member, a full registry, a node id at the limits) and check the decision
 * without a loop, Raft or a store.
 *
 * What it guarantees:
 *  - No I/O, no clock, no allocation, no global state; every function is
 *    reentrant and deterministic.  Nothing here includes libuv or raft.
 *  - The decisions and the reason texts are exactly the director's: the
 *    node logs, audits and exits with them, and integration tests grep
 *    them ("component failure", "is back").
 *
 * Liveness, used by every phase: the node itself is always live; any other
 * member is live when it has sent a heartbeat (last_seen_ms != 0) less than
 * failure_ms ago.
 */
#ifndef RS_PLAN_H
#define RS_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "director/tsl.h"
#include "raftstore/lib/sm.h"

#define PLAN_MEMBERS_MAX 16u   /* = DIRECTOR_REGISTRY_MAX */
#define PLAN_SERVERS_MAX 64u   /* Raft configuration servers passed in */
#define PLAN_ADDR_SIZE 64u
#define PLAN_REASON_SIZE 256u  /* a reason, NUL included */

/* The director's phases, in director.h's order (director.c asserts that
 * enum director_phase has the same values). */
enum plan_phase {
	PLAN_IDLE = 0,
	PLAN_EPOCH,
	PLAN_BARRIER,
	PLAN_LOCKING,
	PLAN_RECRUITING,
	PLAN_LAYOUT,
	PLAN_PERSISTING,
	PLAN_ACCEPTING,
	PLAN_MONITORING,
	PLAN_EXITED,
	PLAN__PHASES
};

/* True if the director may go from `from` to `to`: each phase to the next
 * one up to MONITORING, and any phase but EXITED to EXITED.  False for a
 * value outside the enum. */
bool plan_transition_allowed(enum plan_phase from, enum plan_phase to);
/* The same table, with the phases' names, for a struct sm (the director
 * moves through it with sm_move). */
extern const struct sm_def plan_sm;

/* One registry member as the director saw it at one instant. */
struct plan_member {
	uint64_t node_id;                  /* never 0 */
	char client_addr[PLAN_ADDR_SIZE];  /* NUL-terminated */
	uint32_t capabilities;             /* TSL_CAP_* */
	uint64_t applied_version;          /* for the node itself: the local
					    * store's, not its last heartbeat's */
	uint64_t last_seen_ms;             /* last heartbeat, 0 = never */
	uint64_t log_lag_entries;          /* how far its Raft log is behind
					    * the leader's last index; 0 when
					    * not judged (not a voter, or the
					    * leader's view is still new) */
};

bool plan_member_live(const struct plan_member *m, uint64_t self_id,
		      uint64_t now_ms, unsigned failure_ms);

/* How far behind a member may be and still hold a component.  The node
 * itself is never behind. */
struct plan_lag_limits {
	uint64_t applied_version;   /* the local store's */
	uint64_t versions;          /* more than this many behind is lagging */
	uint64_t log_entries;       /* more than this many Raft entries
				     * behind is lagging */
};

enum plan_recruit { PLAN_RECRUIT_WAIT = 0, PLAN_RECRUIT_PROCEED };

/* RECRUITING: what the decision is made from.  Borrowed, only read. */
struct plan_recruit_input {
	const struct plan_member *members;
	unsigned n_members;         /* <= PLAN_MEMBERS_MAX */
	const uint64_t *servers;    /* the Raft configuration's ids (every
				     * role, as the director passes them) */
	unsigned n_servers;
	const uint64_t *voters;     /* of them, the voters */
	unsigned n_voters;
	uint64_t now_ms;
	unsigned failure_ms;
	uint64_t quorum_at_ms;      /* from here a live majority will do */
	uint64_t deadline_ms;       /* from here anything will */
	uint64_t self_id;
};

/*
 * RECRUITING: PROCEED once every server is a live member; or, from
 * quorum_at_ms, once a majority of the voters are (the others, if they
 * are alive, come back through a layout update, which costs no epoch);
 * or when deadline_ms is reached.  Else WAIT.
 */
enum plan_recruit plan_recruit_ready(const struct plan_recruit_input *in);

/* What the layout is built from.  Borrowed pointers, only read. */
struct plan_input {
	uint64_t layout_id;         /* the layout's version (tsl.id) */
	uint64_t epoch;             /* >= 1 */
	uint64_t recovery_version;
	uint64_t self_id;           /* must be one of members */
	const struct plan_member *members; /* registry order */
	unsigned n_members;         /* <= PLAN_MEMBERS_MAX */
	const uint64_t *voters;     /* the Raft voters' ids */
	unsigned n_voters;
	uint64_t commit_proxies;    /* desired */
	uint64_t resolvers;         /* desired */
	uint64_t now_ms;
	unsigned failure_ms;
	/* NULL: every live member is recruited (a recovery, whose persist
	 * wait lets a lagging one catch up).  Else only the live members
	 * within these limits (a layout update inside an epoch: the same rule
	 * as plan_monitor's, so an update never re-recruits a node that
	 * monitoring would find lagging at once). */
	const struct plan_lag_limits *lag;
};

/*
 * LAYOUT: fill *out (reset first) with the layout of this recovery or
 * update:
 *  - id = in->layout_id, epoch = in->epoch; the director and the
 *    sequencer (id 1) on the node itself, at its member's client address;
 *  - min(resolvers, TSL_COMPONENTS_MAX) resolvers on the node itself,
 *    resolver i of n owning first bytes [256 i / n, 256 (i + 1) / n);
 *  - commit proxies: the node itself first (always, even for 0 desired),
 *    then recruited members in registry order up to the desired count;
 *  - logs: the recruited voters; storage: the recruited members
 *    (recruited = live, and within in->lag when given);
 *  - services: every member, UP or DOWN, with its heartbeat age (0 for a
 *    member never heard from).
 * Component ids are 1.. within each array.  The result is not validated:
 * a member's malformed address makes tsl_validate fail on it.
 */
void plan_build_layout(struct tsl *out, const struct plan_input *in);

/* PERSISTING: what the storage replicas have applied. */
struct plan_persist_input {
	const struct tsl *layout;
	const struct plan_member *members; /* holds every storage node */
	unsigned n_members;
	uint64_t persist_version;   /* the system transaction's version */
	uint64_t now_ms;
	uint64_t deadline_ms;
	unsigned timeout_ms;        /* for the reason only */
};

/* A storage node that is no longer a member (removed while the layout
 * was being written) is not waited for: the next layout update drops it. */
enum plan_persist {
	PLAN_PERSIST_DONE = 0,      /* every storage replica applied it */
	PLAN_PERSIST_WAIT,
	PLAN_PERSIST_FAIL           /* reason names the first lagging node */
};

/* reason (PLAN_REASON_SIZE bytes) is written on FAIL, emptied otherwise. */
enum plan_persist plan_persisted(const struct plan_persist_input *in,
				 char *reason);

/*
 * PERSISTING: why the system transaction failed, from the status the
 * commit path answered.  Every kind ends the director (it never repairs in
 * place); the next epoch's director writes the system keys anew.
 */
enum plan_txn_failure {
	PLAN_TXN_REFUSED = 0, /* the proxy or Raft refused it, or it was
			       * fenced: nothing of it was applied */
	PLAN_TXN_CONFLICT,    /* the resolver: a conflict, or too old */
	PLAN_TXN_LEADERSHIP,  /* leadership lost before it was proposed */
	PLAN_TXN_UNKNOWN      /* leadership lost after it was proposed: it
			       * may still commit, under the old epoch */
};

enum plan_txn_failure plan_txn_failure_kind(int status);

/* The director's exit reason (PLAN_REASON_SIZE bytes) for a system
 * transaction of `epoch` that failed with status (not RS_OK) and the
 * commit path's message (may be NULL).  It starts "system transaction
 * failed", then says whether it failed before commit and how. */
void plan_txn_failure_reason(uint64_t epoch, int status, const char *message,
			     char *reason);

/* MONITORING: one look at the recruited cluster. */
struct plan_monitor_input {
	const struct plan_member *members; /* registry order */
	unsigned n_members;
	const struct tsl *layout;   /* recruited = in layout->storage */
	uint64_t self_id;
	uint64_t now_ms;
	unsigned failure_ms;
	struct plan_lag_limits lag; /* beyond these a member has failed */
	bool config_changed;        /* \xff/system/config/ written since */
};

/*
 * What monitoring found, and what it costs.  Only PLAN_CONFIG_CHANGED
 * ends the epoch (the resolvers and batching are set up by a recovery).
 * Every node finding is a follower's (the node itself never fails here:
 * its own loss is a leadership change) and is repaired in place by a
 * layout update, a system transaction in the same epoch
 * (plan_verdict_needs_epoch).
 */
enum plan_verdict {
	PLAN_HEALTHY = 0,
	PLAN_HEARTBEAT_LOST,        /* node_id, amount = heartbeat age (ms) */
	PLAN_APPLY_LAG,             /* node_id, amount = versions behind */
	PLAN_LOG_LAG,               /* node_id, amount = Raft entries behind */
	PLAN_NODE_BACK,             /* node_id: live, caught up, not recruited */
	PLAN_NODE_GONE,             /* node_id: in the layout, no longer a
				     * member (removed from the cluster) */
	PLAN_CONFIG_CHANGED
};

/* True for the verdicts that need a new epoch, false for those a layout
 * update inside the epoch repairs (and for PLAN_HEALTHY). */
bool plan_verdict_needs_epoch(enum plan_verdict v);

struct plan_finding {
	enum plan_verdict verdict;
	uint64_t node_id;
	uint64_t amount;
	char reason[PLAN_REASON_SIZE]; /* the director's exit reason, or "" */
};

/*
 * The first finding, in the director's priority: members in registry
 * order, and for each a lost heartbeat (recruited, not live), then apply
 * lag, then log lag (recruited, not itself, beyond in->lag), then a node
 * back (live, within in->lag, not recruited); then a node of the layout
 * (storage or services) that is no longer a member; only then a
 * configuration change.  *out is always written.
 */
enum plan_verdict plan_monitor(const struct plan_monitor_input *in,
			       struct plan_finding *out);

#endif /* RS_PLAN_H */
