/*
 * tsl: the transaction system layout and its codecs.
 *
 * A layout (TSL) records, for one epoch, where each component of the
 * transaction system runs: the director, the sequencer, the commit proxies,
 * the resolvers (each owning a key range), the logs (the Raft voters), the
 * storage replicas, and the registered services (nodes) with their status.
 * The director builds one per recovery, and one per layout update inside
 * an epoch (a follower lost or back; director.h), with a rising id, and
 * commits it in a system transaction in two forms (design brief, "Control
 * path", step 6):
 *
 *   consolidated  "\xff/system/layout" = tsl_encode(t)
 *   decomposed    "\xff/system/layout/<component>/<id:016x>" = one entry
 *                 value per director, sequencer, commit proxy, resolver,
 *                 log, storage replica and service
 *
 * What it guarantees:
 *  - tsl_decode accepts exactly what tsl_encode produces from a layout that
 *    passes tsl_validate, and gives back an equal layout (tsl_equal).  The
 *    encoding is canonical: equal layouts encode to the same bytes.
 *  - A decoder never reads past its input, never trusts a length or a count
 *    before checking it, and rejects every truncation and every single-bit
 *    flip (RS_ECORRUPT, or RS_EFORMAT when the flip hits format_version).
 *  - Every error message names the field at fault, e.g.
 *    "resolvers[1].range: end before begin", "truncated in
 *    commit_proxies[2].addr", "crc mismatch (stored ..., computed ...)".
 *  - Nothing here does I/O or blocks.  A struct tsl is fixed-size (about
 *    19 KiB) and owns no heap memory: copy it by assignment, no free needed.
 *    Functions are reentrant; no global state.
 *
 * Consolidated value (all integers little-endian; docs/layout-format.md
 * draws it field by field):
 *
 *   offset 0   u8[8] magic           "RSTSL\r\n\0"  (TSL_MAGIC)
 *   offset 8   u32   format_version  TSL_FORMAT_VERSION (1)
 *   offset 12  u32   length          body length in bytes, <= TSL_BODY_SIZE_MAX
 *   offset 16  u32   crc             CRC-32C of the body (crc32c.h)
 *   offset 20  body, exactly `length` bytes; nothing may follow it:
 *
 *     u64 id | u64 epoch | u64 recovery_version
 *     node      director                       node_id u64 | addr str
 *     component sequencer                      id u64 | node_id u64 | addr str
 *     u32 count | count x component            commit_proxies
 *     u32 count | count x (component | begin key | end key)   resolvers
 *     u32 count | count x component            logs
 *     u32 count | count x component            storage
 *     u32 count | count x service              services
 *
 *   str = u16 len | len bytes (addr: 1..TSL_ADDR_LEN_MAX, no NUL)
 *   key = u16 len | len bytes (0..TSL_RANGE_KEY_MAX, any bytes)
 *   service = node_id u64 | addr str | capabilities u32 | status u8 |
 *             heartbeat_age_ms u64
 *
 * Decomposed entry value: the same 20-byte frame with magic "RSTSC\r\n\0"
 * (TSL_ENTRY_MAGIC) and TSL_ENTRY_FORMAT_VERSION (1), around the body
 *
 *     u64 layout_id | u64 epoch | u8 kind | payload
 *
 * where payload is, by kind: director = node | u64 recovery_version;
 * sequencer, commit_proxy, log, storage = component; resolver = component |
 * begin key | end key; service = service.  Carrying layout_id and epoch in
 * every entry makes a decomposed key left over from an older layout differ
 * from the current one even when its component did not move.
 *
 * Raise the version constants for any change in layout or meaning; a
 * decoder answers RS_EFORMAT for a version it does not know.
 */
#ifndef RS_TSL_H
#define RS_TSL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"

#define TSL_FORMAT_VERSION 1u
#define TSL_ENTRY_FORMAT_VERSION 1u
#define TSL_MAGIC "RSTSL\r\n\0"  /* 8 bytes; the literal's own NUL is not written */
#define TSL_ENTRY_MAGIC "RSTSC\r\n\0"
#define TSL_MAGIC_SIZE 8u
#define TSL_HEADER_SIZE 20u

/* Limits the encoder and the decoder both enforce. */
#define TSL_COMPONENTS_MAX 16u  /* per array: proxies, resolvers, logs, storage */
#define TSL_SERVICES_MAX 64u
#define TSL_ADDR_SIZE 64u       /* "host:port" plus its NUL */
#define TSL_ADDR_LEN_MAX (TSL_ADDR_SIZE - 1u)
#define TSL_RANGE_KEY_MAX 256u  /* bytes in a resolver range bound */

/* Encoded sizes at the limits; the encoder asserts it stays within them. */
#define TSL_NODE_SIZE_MAX (8u + 2u + TSL_ADDR_LEN_MAX)
#define TSL_COMPONENT_SIZE_MAX (16u + 2u + TSL_ADDR_LEN_MAX)
#define TSL_RESOLVER_SIZE_MAX (TSL_COMPONENT_SIZE_MAX + 4u + 2u * TSL_RANGE_KEY_MAX)
#define TSL_SERVICE_SIZE_MAX (8u + 2u + TSL_ADDR_LEN_MAX + 4u + 1u + 8u)
#define TSL_BODY_SIZE_MAX                                                     \
	(24u + TSL_NODE_SIZE_MAX + TSL_COMPONENT_SIZE_MAX + 5u * 4u +          \
	 3u * TSL_COMPONENTS_MAX * TSL_COMPONENT_SIZE_MAX +                    \
	 TSL_COMPONENTS_MAX * TSL_RESOLVER_SIZE_MAX +                          \
	 TSL_SERVICES_MAX * TSL_SERVICE_SIZE_MAX)
#define TSL_ENCODED_SIZE_MAX (TSL_HEADER_SIZE + TSL_BODY_SIZE_MAX)
#define TSL_ENTRY_BODY_SIZE_MAX (17u + TSL_RESOLVER_SIZE_MAX)
#define TSL_ENTRY_SIZE_MAX (TSL_HEADER_SIZE + TSL_ENTRY_BODY_SIZE_MAX)

/* Decomposed keys: TSL_KEY_PREFIX "<component>/<id as 16 lowercase hex>". */
#define TSL_KEY_PREFIX "\xff/system/layout/"
#define TSL_KEY_SIZE_MAX 48u /* longest key ("commit_proxy") is 45 bytes */
/* A layout has at most this many decomposed entries. */
#define TSL_ENTRIES_MAX (2u + 4u * TSL_COMPONENTS_MAX + TSL_SERVICES_MAX)

/* Service capabilities: which components a node may run.  A decoder
 * rejects any other bit (a new capability needs a new format version). */
#define TSL_CAP_LOG 0x01u          /* Raft voter */
#define TSL_CAP_STORAGE 0x02u
#define TSL_CAP_COMMIT_PROXY 0x04u
#define TSL_CAP_RESOLVER 0x08u
#define TSL_CAP_SEQUENCER 0x10u
#define TSL_CAP_DIRECTOR 0x20u
#define TSL_CAP_ALL 0x3fu

/* Service status.  0 is deliberately invalid so a forgotten field fails
 * validation instead of reading as "down". */
#define TSL_STATUS_UP 1u
#define TSL_STATUS_DOWN 2u

/* The kinds of decomposed entry; the values are stored (entry body). */
enum tsl_kind {
	TSL_KIND_DIRECTOR = 1,
	TSL_KIND_SEQUENCER = 2,
	TSL_KIND_COMMIT_PROXY = 3,
	TSL_KIND_RESOLVER = 4,
	TSL_KIND_LOG = 5,
	TSL_KIND_STORAGE = 6,
	TSL_KIND_SERVICE = 7
};

/* The node the director runs on. */
struct tsl_node {
	uint64_t node_id;          /* Raft node id, never 0 */
	char addr[TSL_ADDR_SIZE];  /* "host:port", NUL-terminated */
};

struct tsl_component {
	uint64_t id;               /* unique within its array */
	uint64_t node_id;          /* a registered service, never 0 */
	char addr[TSL_ADDR_SIZE];  /* "host:port", NUL-terminated */
};

/* A key range [begin, end); end_len == 0 means "to the end of the key
 * space".  Keys order byte-wise, a shorter prefix first (resolver.h). */
struct tsl_range {
	uint32_t begin_len;
	uint32_t end_len;
	uint8_t begin[TSL_RANGE_KEY_MAX];
	uint8_t end[TSL_RANGE_KEY_MAX];
};

struct tsl_resolver {
	struct tsl_component c;
	struct tsl_range range;
};

struct tsl_service {
	uint64_t node_id;          /* unique among services, never 0 */
	char addr[TSL_ADDR_SIZE];  /* the node's client address */
	uint32_t capabilities;     /* TSL_CAP_* bits */
	uint8_t status;            /* TSL_STATUS_UP or TSL_STATUS_DOWN */
	uint64_t heartbeat_age_ms; /* age of the last heartbeat when the
				    * layout was built (a snapshot, not live) */
};

struct tsl {
	uint64_t id;               /* opaque layout id, chosen by the director */
	uint64_t epoch;            /* >= 1 */
	struct tsl_node director;
	uint64_t recovery_version;
	struct tsl_component sequencer;
	uint32_t commit_proxy_count;
	uint32_t resolver_count;
	uint32_t log_count;
	uint32_t storage_count;
	uint32_t service_count;
	struct tsl_component commit_proxies[TSL_COMPONENTS_MAX];
	struct tsl_resolver resolvers[TSL_COMPONENTS_MAX];
	struct tsl_component logs[TSL_COMPONENTS_MAX];
	struct tsl_component storage[TSL_COMPONENTS_MAX];
	struct tsl_service services[TSL_SERVICES_MAX];
};

/* One decomposed entry, as tsl_entry_decode returns it.  Only the members
 * named for `kind` are meaningful; the others are zero. */
struct tsl_entry {
	enum tsl_kind kind;
	uint64_t layout_id;              /* tsl.id of the layout it came from */
	uint64_t epoch;                  /* tsl.epoch of that layout */
	struct tsl_node director;        /* DIRECTOR */
	uint64_t recovery_version;       /* DIRECTOR */
	struct tsl_component component;  /* SEQUENCER, COMMIT_PROXY, RESOLVER,
					  * LOG, STORAGE */
	struct tsl_range range;          /* RESOLVER */
	struct tsl_service service;      /* SERVICE */
};

/* A key-value pair, borrowed: the caller owns the bytes. */
struct tsl_kv {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *val;
	size_t val_len;
};

/* Zero every field (an empty layout, which does not validate: epoch 0). */
void tsl_init(struct tsl *t);

/*
 * Check every rule a stored layout must meet.  RS_OK, or RS_EINVAL with
 * errmsg (may be NULL) naming the first field at fault.  The rules:
 *  - epoch >= 1; every node_id != 0;
 *  - counts within the limits above;
 *  - every addr is 1..63 bytes of [A-Za-z0-9.-_:[]%], with a ":port" at the
 *    end, port 1..65535;
 *  - ids unique within each array; service node_ids unique; no two logs and
 *    no two storage replicas on one node;
 *  - resolver ranges are non-empty (begin < end, or end empty), listed in
 *    key order, and together cover the whole key space exactly once: the
 *    first begins at "", each begins where the previous ends, and the last
 *    ends at "" (to the end).  Zero resolvers is allowed;
 *  - services have only known capability bits and status UP or DOWN;
 *  - the director and every component run on a node listed in services.
 * Does not require any array to be non-empty, nor check capabilities
 * against the components a node runs.
 */
int tsl_validate(const struct tsl *t, char *errmsg);

/*
 * Append the consolidated encoding of t to out.  t is validated first:
 * RS_EINVAL with errmsg naming the field, or RS_ENOMEM.  On failure out is
 * unchanged.  The result is at most TSL_ENCODED_SIZE_MAX bytes.
 */
int tsl_encode(const struct tsl *t, struct rs_buf *out, char *errmsg);

/*
 * Decode and validate p[0..n), which must be exactly one encoded layout.
 *  RS_OK       *out holds the layout.
 *  RS_EFORMAT  the magic is right but format_version is not one this build
 *              reads; errmsg names the version found.
 *  RS_ECORRUPT anything else: short input ("truncated in header",
 *              "truncated in commit_proxies[2].addr"), bad magic, length
 *              over the limit, bytes after the body, crc mismatch, a count
 *              or string over its limit, or a rule of tsl_validate broken;
 *              errmsg names the field.
 * On error *out is reset with tsl_init.  errmsg may be NULL.
 */
int tsl_decode(const uint8_t *p, size_t n, struct tsl *out, char *errmsg);

/* Field-by-field comparison (bytes past an addr's NUL or a key's length do
 * not count). */
bool tsl_equal(const struct tsl *a, const struct tsl *b);

/* Like !tsl_equal, and when a and b differ, write the first differing
 * field's path ("resolvers[1].range.end", "services.count") into what
 * (RS_ERRMSG_SIZE bytes, may be NULL). */
bool tsl_diff(const struct tsl *a, const struct tsl *b, char *what);

/*
 * Append t as one JSON object to out (no trailing newline): format_version,
 * id, epoch, recovery_version, director, sequencer, commit_proxies,
 * resolvers (with "begin"/"end"), logs, storage, services (with
 * "capabilities" as names, "capability_bits", "status" "up"/"down"/
 * "invalid", "heartbeat_age_ms").  u64 values are JSON integers.  Strings
 * are byte strings of the JSON layer (raftstore/lib/json.h): one code point
 * per byte, so "\xff" reads back as U+00FF, the convention of rsctl's
 * --json.  Works on any layout, valid or not.  RS_ENOMEM, or RS_ETOOLARGE
 * for a u64 above 2^63-1 (the JSON layer's integers), leaves out unchanged.
 */
int tsl_to_json(const struct tsl *t, struct rs_buf *out);

/* "director", "sequencer", "commit_proxy", "resolver", "log", "storage",
 * "service"; NULL for a value outside the enum. */
const char *tsl_kind_name(enum tsl_kind kind);

/* Write the decomposed key of (kind, id) into key (TSL_KEY_SIZE_MAX bytes;
 * it starts with byte 0xff, and a NUL follows it that is not part of it)
 * and return its length.
 * The id is the component id, or the node_id for DIRECTOR and SERVICE. */
size_t tsl_key_format(enum tsl_kind kind, uint64_t id, uint8_t *key);

/* Parse a decomposed key.  Only the exact spelling tsl_key_format writes
 * is accepted (so no two keys name one entry); else RS_ECORRUPT. */
int tsl_key_parse(const uint8_t *key, size_t len, enum tsl_kind *kind,
		  uint64_t *id, char *errmsg);

/*
 * Yield every decomposed entry of t: fn(ctx, key, key_len, val, val_len)
 * once per entry, in layout order (director, sequencer, commit proxies,
 * resolvers, logs, storage, services), which is not key order.  The
 * buffers are valid only during the call.  A non-zero return from fn stops
 * the walk and is returned.  t is validated first (RS_EINVAL + errmsg);
 * RS_ENOMEM possible.  Exactly 2 + the sum of the five counts entries.
 */
int tsl_decompose(const struct tsl *t,
		  int (*fn)(void *ctx, const uint8_t *key, size_t key_len,
			    const uint8_t *val, size_t val_len),
		  void *ctx, char *errmsg);

/*
 * Decode one decomposed entry.  The key must parse (tsl_key_parse), the
 * value must verify as the entry frame (RS_EFORMAT for an unknown
 * TSL_ENTRY_FORMAT_VERSION, naming it), and its kind and id must be the
 * ones the key names.  The entry's own fields are checked as in
 * tsl_validate (addr, node_id, range); the layout-wide rules are not.
 * RS_ECORRUPT with errmsg otherwise; *out is zeroed on error.
 */
int tsl_entry_decode(const uint8_t *key, size_t key_len, const uint8_t *val,
		     size_t val_len, struct tsl_entry *out, char *errmsg);

/*
 * Cross-check a decomposed form against a consolidated layout: kvs (n
 * pairs, any order) must be exactly the entries tsl_decompose(t) yields,
 * byte for byte.  Pass every key read under TSL_KEY_PREFIX (not the
 * consolidated key itself).  RS_OK; RS_ECORRUPT naming the first mismatch
 * in key order ("missing key ...", "extra key ...", "duplicate key ...",
 * "key ...: epoch is 6, expected 7", "key ...: value differs in addr", or
 * the entry's decode error); RS_EINVAL if t itself does not validate;
 * RS_ENOMEM.  Keys in messages print 0xff and other non-printable bytes
 * as \xNN.
 */
int tsl_decomposed_matches(const struct tsl *t, const struct tsl_kv *kvs,
			   size_t n, char *errmsg);

#endif /* RS_TSL_H */
