/*
 * resolver: optimistic conflict detection on the leader.
 *
 * The resolver remembers what every committed (or in-flight) batch wrote,
 * for a window of recent versions.  A transaction that read at read_version
 * conflicts if any key or range it read was written by a batch with a
 * version above read_version.  A read_version older than the window cannot
 * be checked and gets RS_ETOOOLD ("transaction too old"), which the client
 * retries with a fresh read version.
 *
 * Writes are recorded per batch with resolver_record_* as the leader builds
 * each batch, in version order.  Point writes are looked up through a hash
 * of key -> last write version; range reads scan only the writes newer
 * than the transaction's read version (a short list in practice: read
 * versions are milliseconds old), so a check costs O(point reads +
 * writes since read_version).
 *
 * Not thread-safe; owned by the leader's loop.  Allocation failure aborts.
 */
#ifndef RS_RESOLVER_H
#define RS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct resolver;

/* window_versions: how far back read versions are still checkable.  A new
 * resolver checks every read version (oldest is 0).  Never returns NULL. */
struct resolver *resolver_create(uint64_t window_versions);
void resolver_destroy(struct resolver *r);

/* Forget everything and start at `version`: read versions below it are too
 * old from now on, and later records must use versions >= `version`.
 * Called when a new leader starts resolving (it does not know what the
 * previous leader accepted after its own recovery point). */
void resolver_reset(struct resolver *r, uint64_t version);

/*
 * Check one transaction's read set.  ranges are n pairs [begin, end);
 * a point read of key k is the range [k, k + "\0").  Keys order byte-wise,
 * a shorter prefix first.  An empty end means "to the end of the key
 * space", as in a WIRE_RANGE read; any other range with begin >= end is
 * empty and conflicts with nothing.  Returns RS_OK (no conflict),
 * RS_ECONFLICT, or RS_ETOOOLD (read_version < resolver_oldest_version()).
 * A blind write (n == 0) read nothing, so it is RS_OK at any read version,
 * as in FoundationDB.  Does not record anything.  A write
 * at exactly read_version does not conflict: the read saw it.
 */
int resolver_check(const struct resolver *r, uint64_t read_version,
		   const uint8_t *const *begins, const uint32_t *begin_lens,
		   const uint8_t *const *ends, const uint32_t *end_lens,
		   uint32_t n);

/* Record writes at `version` (>= every version recorded before; several
 * calls may share one version: one batch).  Copies the keys.  A range with
 * an empty end reaches the end of the key space; any other empty range is
 * not kept (it cannot conflict) but still advances the newest version. */
void resolver_record_key(struct resolver *r, uint64_t version,
			 const uint8_t *key, uint32_t key_len);
void resolver_record_range(struct resolver *r, uint64_t version,
			   const uint8_t *begin, uint32_t begin_len,
			   const uint8_t *end, uint32_t end_len);

/* Drop writes older than newest - window (call after recording), and raise
 * the oldest checkable version to newest - window (never lowers it). */
void resolver_prune(struct resolver *r);

/* Oldest read version that can still be checked. */
uint64_t resolver_oldest_version(const struct resolver *r);
/* Entries held, for status and tests. */
size_t resolver_size(const struct resolver *r);

#endif /* RS_RESOLVER_H */
