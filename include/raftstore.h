/*
 * raftstore.h: the C client library of raftstore, a replicated
 * configuration store.  This is the installed, public header: it stands
 * alone (only the C standard headers) and is the whole API of
 * libraftstore.so; link with `pkg-config --cflags --libs raftstore`.
 *
 * The calls block: each sends its request to the cluster, waits for the
 * answer and returns a code, 0 (RAFTSTORE_OK) or one of the RAFTSTORE_E*
 * values below.  After a failed call raftstore_errmsg() says why, naming
 * the endpoints and the last error.
 *
 * Guarantees shared by every call (the per-call comments add to them):
 *
 * - Retries.  Every node accepts every request (a follower forwards
 *   commits to the leader), but the library prefers the leader: on its
 *   first request it asks a node for its STATUS and moves to the leader
 *   that node names.  A request that a node refuses as unavailable, not
 *   leader, recovering or timed out, or whose connection fails before the
 *   request was written, is retried with exponential backoff (10 ms
 *   doubling to 500 ms, jittered), moving to the next endpoint where that
 *   helps, until the handle's timeout has passed; the call then returns
 *   RAFTSTORE_EUNAVAILABLE when no node could be reached, else
 *   RAFTSTORE_ETIMEOUT, and raftstore_errmsg names the endpoints and the
 *   last error.  A read refused by a node that is shutting down is retried
 *   on another.  Other errors are returned at once.
 *
 * - Unknown results.  A write (put, delete, a transaction's commit) whose
 *   request reached a node and whose answer never came back returns
 *   RAFTSTORE_EUNKNOWN: it may or may not have committed.  The library does
 *   not repeat it, since that could apply it twice; read the keys to find
 *   out.  The same holds for a write refused with RAFTSTORE_ESHUTDOWN (its
 *   node began shutting down; the protocol does not promise that it was
 *   not applied).  A write that returns any other error did not commit.
 *
 * - Conflicts.  RAFTSTORE_ECONFLICT is never retried by the library: the
 *   transaction's reads are stale, so it must be run again from
 *   raftstore_txn_begin.  Nor is RAFTSTORE_ETOOOLD (a read at a version
 *   the node no longer keeps): read again at a newer version.
 *
 * - Versions.  Every commit gets a version, a 64-bit number that grows with
 *   every commit of the cluster; a read is served at a version and sees
 *   exactly the commits up to it.
 *
 * - Keys are 1..10240 bytes and values 0..1048576 bytes (any bytes, not
 *   only text); larger ones are refused with RAFTSTORE_ETOOLARGE before
 *   anything is sent.  Keys order bytewise (memcmp, shorter first).  Keys
 *   starting with the byte 0xff are the cluster's system keys.
 *
 * Threads: a handle and its transactions are used by one thread at a time;
 * separate handles are independent and may be used from separate threads.
 * A handle holds its connections open between calls.
 *
 * Signals: writing to a connection a node has closed raises SIGPIPE,
 * which kills a process by default.  Each call blocks SIGPIPE on the
 * calling thread while it runs and discards the SIGPIPEs raised meanwhile;
 * the process's signal dispositions are not changed.
 */
#ifndef RAFTSTORE_H
#define RAFTSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes.  The values are those of the wire protocol and never
 * change; new codes may be added at the end. */
enum {
	RAFTSTORE_OK = 0,
	RAFTSTORE_ENOMEM = 1,        /* out of memory */
	RAFTSTORE_EIO = 2,           /* I/O error (on a node) */
	RAFTSTORE_ENOSPC = 3,        /* a node's disk is full */
	RAFTSTORE_ECORRUPT = 4,      /* data corrupt */
	RAFTSTORE_ETORN = 5,         /* torn write (node storage) */
	RAFTSTORE_EFORMAT = 6,       /* unsupported format version */
	RAFTSTORE_ETOOLARGE = 7,     /* key, value or transaction too large */
	RAFTSTORE_ETOOOLD = 8,       /* read version no longer kept */
	RAFTSTORE_EFUTURE = 9,       /* version not yet applied */
	RAFTSTORE_ENOTFOUND = 10,    /* the key does not exist */
	RAFTSTORE_EINVAL = 11,       /* invalid argument */
	RAFTSTORE_EEXIST = 12,       /* already exists */
	RAFTSTORE_ECLOSED = 13,      /* closed */
	RAFTSTORE_EFAILED = 14,      /* failed by an earlier error */
	RAFTSTORE_EVERSION = 15,     /* version not increasing */
	RAFTSTORE_EGAP = 16,         /* missing records */
	RAFTSTORE_ESHUTDOWN = 17,    /* the node is shutting down */
	RAFTSTORE_ECONFLICT = 18,    /* transaction conflict: run it again */
	RAFTSTORE_EUNAVAILABLE = 19, /* no node could serve the request */
	RAFTSTORE_EUNKNOWN = 20,     /* the write may or may not have committed */
	RAFTSTORE_EPROTO = 21,       /* protocol error */
	RAFTSTORE_ENOTLEADER = 22,   /* not the leader */
	RAFTSTORE_ERECOVERING = 23,  /* the cluster is recovering */
	RAFTSTORE_ECOMPACTED = 24,   /* watch history no longer kept */
	RAFTSTORE_ETIMEOUT = 25      /* timed out */
};

/* Bytes for the errmsg argument of raftstore_open. */
#define RAFTSTORE_ERRMSG_SIZE 512

/* How a read is served. */
enum raftstore_read_mode {
	/* The read sees every commit acknowledged before the call started:
	 * the node first gets a read version the leader has confirmed. */
	RAFTSTORE_LINEARIZABLE = 0,
	/* Served at once at the answering node's applied version, which may
	 * be stale on a follower.  Cheaper; the result's read_version says
	 * which version was used. */
	RAFTSTORE_SERIALIZABLE = 1
};

struct raftstore;     /* a handle on one cluster */
struct raftstore_txn; /* one transaction */

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *raftstore_version(void);

/* The fixed text of a code ("transaction conflict"); never NULL. */
const char *raftstore_strerror(int code);

/* Frees memory the library returned (values, status JSON).  NULL is a
 * no-op. */
void raftstore_free(void *p);

/* ---- handles ---- */

/* Creates a handle on the cluster whose nodes' client addresses are
 * `endpoints`, "HOST:PORT,HOST:PORT,..." (HOST an IPv4 address or
 * localhost; at most 16).  timeout_ms bounds each request of every later
 * call, retries included (0: 10000 ms).  Nothing connects until the first call, so this
 * fails only on bad arguments (RAFTSTORE_EINVAL, with errmsg naming the bad
 * endpoint) or RAFTSTORE_ENOMEM.  errmsg: RAFTSTORE_ERRMSG_SIZE bytes, or
 * NULL.  On failure *out is NULL. */
int raftstore_open(struct raftstore **out, const char *endpoints,
		   unsigned timeout_ms, char *errmsg);

/* Closes the connections and frees the handle.  A transaction of the
 * handle must be freed first.  NULL is a no-op. */
void raftstore_close(struct raftstore *db);

/* The explanation of the last failed call on db ("" after a success).
 * Valid until the next call on db. */
const char *raftstore_errmsg(const struct raftstore *db);

/* ---- single-key reads and writes ---- */

/* A value read from the cluster.  data is malloc'd and followed by a NUL
 * byte that len does not count (so text values print as C strings); free
 * it with raftstore_free. */
struct raftstore_value {
	void *data;
	size_t len;
	uint64_t version;      /* the commit that wrote the value */
	uint64_t read_version; /* the version the read was served at */
};

/* Reads key.  RAFTSTORE_OK fills *out; RAFTSTORE_ENOTFOUND means the key
 * does not exist at out->read_version (out->data is then NULL).  Retried
 * as described at the top; a read changes nothing, so any error is safe to
 * retry by calling again. */
int raftstore_get(struct raftstore *db, const void *key, size_t key_len,
		  enum raftstore_read_mode mode, struct raftstore_value *out);

/* Sets key to value, whatever it held ("blind" write: no read, so it never
 * conflicts).  Linearizable: once it returns RAFTSTORE_OK, every read that
 * starts later sees this value or a later one.  *version (may be NULL) gets
 * the commit version.  RAFTSTORE_EUNKNOWN: see the top of this file. */
int raftstore_put(struct raftstore *db, const void *key, size_t key_len,
		  const void *value, size_t value_len, uint64_t *version);

/* Deletes key, as raftstore_put writes it.  Deleting a key that does not
 * exist is not an error (it still commits and gets a version). */
int raftstore_delete(struct raftstore *db, const void *key, size_t key_len,
		     uint64_t *version);

/* ---- range reads ---- */

/* One key and its value, inside a raftstore_range result. */
struct raftstore_kv {
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	uint64_t version; /* the commit that wrote the value */
};

struct raftstore_range {
	struct raftstore_kv *kvs; /* in key order; freed by raftstore_range_free */
	size_t count;
	bool more;             /* limit stopped the listing before its end */
	uint64_t read_version; /* every row is as of this version */
};

/* Lists the keys in [begin, end) in key order, with their values.  An
 * empty end (end_len 0) runs to the end of the key space; begin may be
 * empty.  limit caps the rows (0: no cap).  The listing is read in pages
 * (up to 1000 rows each), every page at the first page's read version, so
 * the whole result is one consistent snapshot; a later page fails with
 * RAFTSTORE_ETOOOLD if that version is no longer kept (call again).  mode
 * applies to the first page.  On success free *out with
 * raftstore_range_free; on failure *out is empty. */
int raftstore_range(struct raftstore *db, const void *begin, size_t begin_len,
		    const void *end, size_t end_len, size_t limit,
		    enum raftstore_read_mode mode, struct raftstore_range *out);

/* Frees what a range result holds and empties it (safe to call twice). */
void raftstore_range_free(struct raftstore_range *r);

/* ---- transactions ---- */

/* Optimistic, serializable transactions.  begin takes a read version that
 * the leader has confirmed (so the transaction sees every commit
 * acknowledged before begin started); the transaction's reads are all
 * served at that version, and its puts and deletes are buffered in the
 * transaction.  Commit sends them in one atomic commit, checked against the
 * keys and ranges the transaction read: if any commit after the read
 * version wrote into them, commit returns RAFTSTORE_ECONFLICT, nothing is
 * written, and the caller runs the whole transaction again from begin
 * (the library does not).  Reads do not see the transaction's own
 * buffered writes. */
int raftstore_txn_begin(struct raftstore *db, struct raftstore_txn **out);

/* Reads key at the transaction's read version and adds it to the keys the
 * commit checks.  As raftstore_get otherwise (RAFTSTORE_ENOTFOUND: absent;
 * RAFTSTORE_ETOOOLD: the read version is no longer kept, begin again). */
int raftstore_txn_get(struct raftstore_txn *txn, const void *key,
		      size_t key_len, struct raftstore_value *out);

/* Lists [begin, end) at the transaction's read version, as
 * raftstore_range does, and adds the range it read to what the commit
 * checks (up to the last row returned when limit cut it short). */
int raftstore_txn_range(struct raftstore_txn *txn, const void *begin,
			size_t begin_len, const void *end, size_t end_len,
			size_t limit, struct raftstore_range *out);

/* Buffer a write; nothing is sent before commit.  RAFTSTORE_ETOOLARGE for
 * a key or value over its limit, or a transaction over 10 MiB. */
int raftstore_txn_put(struct raftstore_txn *txn, const void *key,
		      size_t key_len, const void *value, size_t value_len);
int raftstore_txn_delete(struct raftstore_txn *txn, const void *key,
			 size_t key_len);

/* Commits the buffered writes atomically, if nothing the transaction read
 * changed after its read version.  RAFTSTORE_OK: committed, *version (may
 * be NULL) is its commit version (for a transaction without writes,
 * nothing is sent and *version is the read version).  RAFTSTORE_ECONFLICT:
 * nothing was written; begin again.  RAFTSTORE_EUNKNOWN: see the top of
 * this file.  Retried as raftstore_put.  A transaction commits at most
 * once: later calls return RAFTSTORE_EINVAL. */
int raftstore_txn_commit(struct raftstore_txn *txn, uint64_t *version);

/* Frees the transaction (committed or not; an uncommitted one writes
 * nothing).  NULL is a no-op. */
void raftstore_txn_free(struct raftstore_txn *txn);

/* ---- watches ---- */

enum raftstore_mutation_type {
	RAFTSTORE_MUT_SET = 1,        /* key set to value */
	RAFTSTORE_MUT_CLEAR = 2,      /* key deleted */
	RAFTSTORE_MUT_CLEAR_RANGE = 3 /* keys in [key, value) deleted */
};

struct raftstore_mutation {
	enum raftstore_mutation_type type;
	const void *key; /* key, or the range's begin */
	size_t key_len;
	const void *value; /* value, or the range's end; NULL for CLEAR */
	size_t value_len;
};

/* One commit's changes inside the watched range (a clear-range is clipped
 * to it).  Valid only during the callback. */
struct raftstore_event {
	uint64_t version;
	size_t count;
	const struct raftstore_mutation *mutations;
};

/* Returns 0 to go on watching, non-zero to stop.  It must not call the
 * library with the watching handle. */
typedef int (*raftstore_watch_fn)(void *ctx, const struct raftstore_event *ev);

/* Calls fn for each commit that changes a key in [begin, end) (empty end:
 * to the end of the key space), in version order, each exactly once, from
 * version from_version on (0: from the next commit; an older version
 * replays the retained history since it).  Blocks until fn returns
 * non-zero (then returns RAFTSTORE_OK) or the watch ends with an error:
 * RAFTSTORE_ECOMPACTED when from_version is older than the history the
 * node keeps (read the range and watch again from its read version + 1),
 * or RAFTSTORE_EUNAVAILABLE when the watch's connection failed after it
 * started: it is not resumed by the library; watch again from the last
 * version fn saw + 1 to continue with nothing lost or repeated.  Getting
 * the watch started is retried as a read; once started it has no
 * deadline. */
int raftstore_watch(struct raftstore *db, const void *begin, size_t begin_len,
		    const void *end, size_t end_len, uint64_t from_version,
		    raftstore_watch_fn fn, void *ctx);

/* ---- status ---- */

/* The STATUS of one node as a JSON object (docs/protocol.md section 9:
 * id, cluster_id, role, term, leader_id, commit_index, applied_index,
 * applied_version, health, ...), NUL-terminated, malloc'd: free it with
 * raftstore_free.  node is an index into the endpoints given to
 * raftstore_open (retried on that node only), or -1 for whichever node
 * answers first.  Not linearizable: a node's own view at that moment. */
int raftstore_status(struct raftstore *db, int node, char **json);

#ifdef __cplusplus
}
#endif

#endif /* RAFTSTORE_H */
