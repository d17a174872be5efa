/*
 * raftfix: a c-raft raft_fixture cluster whose servers run raftstore's own
 * state machine (fsm.c) over real stores, for the unit tests of the fsm,
 * the proxy, the service and the director.
 *
 * Each server gets a temporary directory, a store in it (Raft-log
 * settings: no fsync, applied on accept, as coordinator/node.c opens it)
 * and an fsm whose callbacks count what they saw.  One libuv loop owns the
 * stores (and the proxies of the tests); raftfix_step_until interleaves
 * raft_fixture_step with turns of that loop, so that journal writes and
 * deferred completions make progress while c-raft's simulated clock runs.
 * c-raft's side is deterministic: the same calls give the same Raft events
 * in the same order on every run.  What runs on the loop's timers and
 * sockets (the proxy's wall-clock versions, the director's ticks, TCP)
 * follows the real clock; raftfix_wait bounds such waits in real time.
 *
 * An fsm fatal error fails the running test (ck_abort_msg).
 */
#ifndef RS_RAFTFIX_H
#define RS_RAFTFIX_H

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/fsm.h"
#include "raftstore/proxy.h"
#include "storage/store.h"

#define RAFTFIX_SERVERS_MAX 5

/* One server's state machine and store, and what its callbacks saw. */
struct raftfix_replica {
	unsigned index;
	char *dir;
	struct store *store;
	struct fsm fsm;
	uv_loop_t *loop;
	unsigned applied_calls;
	unsigned restored_calls;
	uint64_t restored_version;
	unsigned fenced_calls;
	uint64_t fenced_version;      /* of the last fenced batch */
	uint64_t fenced_batch_epoch;  /* its epoch */
	uint64_t fenced_current_epoch; /* the epoch that fenced it */
	/* Optional, for a test's service: called after the counters. */
	fsm_applied_fn applied_hook;
	fsm_restored_fn restored_hook;
	void *hook_ctx;
};

struct raftfix {
	uv_loop_t loop;
	struct raft_fixture fx;
	unsigned n;
	bool raft_closed;
	struct raftfix_replica reps[RAFTFIX_SERVERS_MAX];
};

/* Open n stores and fsms, grow, guard (raftmend_install and
 * raftcommit_install on each server, as the node does, unless
 * raftfix_unmended), bootstrap and start the fixture, and elect server 0. */
extern bool raftfix_unmended;
void raftfix_start(struct raftfix *c, unsigned n);
/* Close the fixture (c-raft fails its pending requests), if not closed
 * yet; then the stores, check the loop closes cleanly and remove the
 * directories.  Whatever else runs on the loop must be closing by then. */
void raftfix_stop(struct raftfix *c);
/* Close only the fixture: for tests that close their own users of the
 * rafts (a proxy) after c-raft, as the node does. */
void raftfix_close_raft(struct raftfix *c);

/* A proxy over server i's raft and store (options o), made the ready
 * leader's proxy: proxy_set_leader(true), then stepped until its
 * leadership barrier has landed.  Server i must lead. */
struct proxy *raftfix_proxy_ready(struct raftfix *c, unsigned i,
				  const struct proxy_options *o);
/* Commit the entry that allocates `epoch` through p (proxy_allocate_epoch,
 * no mutations), stepping until it is applied on p's server; returns its
 * version.  p keeps stamping its old epoch. */
uint64_t raftfix_proxy_allocate_epoch(struct raftfix *c, struct proxy *p,
				      uint64_t epoch);
/* As a director's recovery leaves it: `epoch` allocated, stamped on every
 * batch, client commits accepted. */
void raftfix_proxy_recovered(struct raftfix *c, struct proxy *p,
			     uint64_t epoch);
/* Close c-raft, then the proxy, as the node shuts down (c-raft fails what
 * it still holds; the proxy answers it).  Returns once the proxy is freed;
 * raftfix_stop comes after. */
void raftfix_proxy_close(struct raftfix *c, struct proxy *p);

/* (Re)open r's store from its directory and initialise its fsm in place
 * (the raft instance keeps pointing at it).  The store must be closed. */
void raftfix_replica_open(struct raftfix_replica *r);
/* Close r's store after its journal writes finish (store_close would fail
 * the queued ones with RS_ECLOSED, which the fsm treats as fatal). */
void raftfix_replica_close(struct raftfix_replica *r);

struct raft *raftfix_raft(struct raftfix *c, unsigned i);

/* Step the fixture (running the loop between steps) until stop returns
 * true or max_ms of fixture time pass; returns whether stop became true. */
bool raftfix_step_until(struct raftfix *c, bool (*stop)(void *arg),
			void *arg, unsigned max_ms);
/* Step until done(arg) is true or real_ms of wall-clock time pass, for
 * waits on the loop's timers and sockets (whose clock is the real one,
 * while the fixture's runs as fast as the CPU); returns done(arg). */
bool raftfix_wait(struct raftfix *c, bool (*done)(void *arg), void *arg,
		  unsigned real_ms);
/* Step until every server i with mask bit (1u << i) set has applied
 * `index`; fails the test after max_ms. */
void raftfix_step_until_applied(struct raftfix *c, unsigned mask,
				raft_index index, unsigned max_ms);
/* Every server's bit. */
unsigned raftfix_all(const struct raftfix *c);

/* An entry payload (fsm.h) of `kind` at version and epoch: one MUT_SET of
 * key = val (none if key is NULL).  Owned by the caller (raft_free). */
struct raft_buffer raftfix_entry(uint8_t kind, uint64_t version,
				 uint64_t epoch, const char *key,
				 const char *val);

/* Every live key of r's store at its applied version, as
 * "key=value@version\n" lines in key order, or "key=value\n" without
 * with_versions (malloc'ed).  A store restored from a snapshot reports the
 * snapshot's version for every key (mvcc.h), so replicas that caught up
 * that way compare equal only without versions. */
char *raftfix_dump(struct raftfix_replica *r, bool with_versions);
/* Assert key's value in r's store at its applied version (NULL: absent). */
void raftfix_expect(struct raftfix_replica *r, const char *key,
		    const char *want);

#endif /* RS_RAFTFIX_H */
