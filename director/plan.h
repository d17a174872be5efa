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
};

bool plan_member_live(const struct plan_member *m, uint64_t self_id,
		      uint64_t now_ms, unsigned failure_ms);

enum plan_recruit { PLAN_RECRUIT_WAIT = 0, PLAN_RECRUIT_PROCEED };

/*
 * RECRUITING: PROCEED once each of the n_servers Raft configuration ids
 * (every role, as the director passes them) is a live member, or when
 * now_ms has reached deadline_ms; else WAIT.  n <= PLAN_MEMBERS_MAX.
 */
enum plan_recruit plan_recruit_ready(const struct plan_member *members,
				     unsigned n, const uint64_t *servers,
				     unsigned n_servers, uint64_t now_ms,
				     unsigned failure_ms, uint64_t deadline_ms,
				     uint64_t self_id);

/* What the layout is built from.  Borrowed pointers, only read. */
struct plan_input {
	uint64_t epoch;             /* also the layout id; >= 1 */
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
};

/*
 * LAYOUT: fill *out (reset first) with the layout of this recovery:
 *  - id and epoch = in->epoch; the director and the sequencer (id 1) on
 *    the node itself, at its member's client address;
 *  - min(resolvers, TSL_COMPONENTS_MAX) resolvers on the node itself,
 *    resolver i of n owning first bytes [256 i / n, 256 (i + 1) / n);
 *  - commit proxies: the node itself first (always, even for 0 desired),
 *    then live members in registry order up to the desired count;
 *  - logs: the live voters; storage: the live members;
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
	uint64_t applied_version;   /* the local store's */
	uint64_t now_ms;
	unsigned failure_ms;
	uint64_t lag_versions;      /* more than this behind has failed */
	bool config_changed;        /* \xff/system/config/ written since */
};

enum plan_verdict {
	PLAN_HEALTHY = 0,
	PLAN_HEARTBEAT_LOST,        /* node_id, amount = heartbeat age (ms) */
	PLAN_APPLY_LAG,             /* node_id, amount = versions behind */
	PLAN_NODE_BACK,             /* node_id: live but not recruited */
	PLAN_CONFIG_CHANGED
};

struct plan_finding {
	enum plan_verdict verdict;
	uint64_t node_id;
	uint64_t amount;
	char reason[PLAN_REASON_SIZE]; /* the director's exit reason, or "" */
};

/*
 * The first finding, in the director's priority: members in registry
 * order, and for each a lost heartbeat (recruited, not live), then apply
 * lag (recruited, not itself), then a node back (live, not recruited);
 * only then a configuration change.  *out is always written.
 */
enum plan_verdict plan_monitor(const struct plan_monitor_input *in,
			       struct plan_finding *out);

#endif /* RS_PLAN_H */
