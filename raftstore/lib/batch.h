/*
 * batch: one applied batch of mutations at one version, and its encoding.
 *
 * A batch is what the journal stores and the state machine applies: a commit
 * version, the epoch of the director that sequenced it, and an ordered list
 * of mutations (set key value, clear key, clear range [begin, end)).  The
 * mutations are kept in their encoded form in `body`, so a decoded batch
 * points into the buffer it was read from and encoding is free.
 *
 * Body encoding (little-endian):
 *
 *   +---------+----------------------------------------------+
 *   | count   | count x mutation                             |
 *   | u32     |                                              |
 *   +---------+----------------------------------------------+
 *   mutation: type u8 | a_len u32 | a bytes | b_len u32 | b bytes
 *     MUT_SET:         a = key,   b = value
 *     MUT_CLEAR:       a = key,   b empty (b_len = 0)
 *     MUT_CLEAR_RANGE: a = begin, b = end (end > begin, byte order)
 *
 * Limits (checked by the builders and by batch_body_validate): keys up to
 * RS_KEY_SIZE_MAX, values up to RS_VALUE_SIZE_MAX, a body up to
 * RS_BATCH_SIZE_MAX.  Empty keys are allowed for clear-range begin only.
 */
#ifndef RS_BATCH_H
#define RS_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/buf.h"

#define RS_KEY_SIZE_MAX (10u * 1024u)
#define RS_VALUE_SIZE_MAX (1024u * 1024u)
#define RS_BATCH_SIZE_MAX (10u * 1024u * 1024u)

enum mutation_type {
	MUT_SET = 1,
	MUT_CLEAR = 2,
	MUT_CLEAR_RANGE = 3,
};

/* A view of one mutation; pointers point into the batch body. */
struct mutation {
	enum mutation_type type;
	const uint8_t *key; /* key, or begin of a range */
	uint32_t key_len;
	const uint8_t *val; /* value, or end of a range; NULL for MUT_CLEAR */
	uint32_t val_len;
};

struct batch {
	uint64_t version;
	uint64_t epoch;
	uint32_t count;     /* number of mutations */
	struct rs_buf body; /* encoded body; count is kept in body[0..4) */
};

/* An empty batch (count 0) at version 0, epoch 0.  Never fails. */
void batch_init(struct batch *b);
void batch_free(struct batch *b);
/* Back to empty, keeping the allocation. */
void batch_reset(struct batch *b);

/* Builders copy key and value into the body.  RS_ETOOLARGE (with errmsg, if
 * non-NULL, naming the limit) leaves the batch unchanged; so does RS_ENOMEM. */
int batch_set(struct batch *b, const void *key, size_t key_len,
	      const void *val, size_t val_len, char *errmsg);
int batch_clear(struct batch *b, const void *key, size_t key_len, char *errmsg);
int batch_clear_range(struct batch *b, const void *begin, size_t begin_len,
		      const void *end, size_t end_len, char *errmsg);

/* Check an encoded body completely: structure, lengths, limits, types, and
 * that the count matches.  RS_ECORRUPT with a message naming the mutation
 * index and the problem.  Does not allocate. */
int batch_body_validate(const uint8_t *body, size_t len, char *errmsg);

/* Adopt an encoded body (already validated) by copying it into b->body. */
int batch_load_body(struct batch *b, const uint8_t *body, size_t len);

/* Iterate mutations: `*pos` starts at 0; returns true and fills *m while
 * there is one.  Only for validated bodies (asserts on structure). */
bool batch_next(const struct batch *b, size_t *pos, struct mutation *m);

/* Encoded size of the body in bytes. */
static inline size_t batch_body_len(const struct batch *b)
{
	return b->body.len < 4 ? 4 : b->body.len;
}

#endif /* RS_BATCH_H */
