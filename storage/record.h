/*
 * record: the journal's record format (LevelDB-style framing).
 *
 * A record is a 9-byte header followed by its payload:
 *
 *   offset 0   u32  crc     CRC-32C over [type, payload], masked (see below)
 *   offset 4   u32  length  payload length in bytes
 *   offset 8   u8   type    RECORD_BATCH or RECORD_BATCH_LZ4
 *   offset 9   ...  payload
 *
 * Payload of RECORD_BATCH:      version u64 | epoch u64 | body
 * Payload of RECORD_BATCH_LZ4:  version u64 | epoch u64 | raw_len u32 |
 *                               LZ4 block of the body (raw_len bytes decoded)
 *
 * The body is batch.h's encoding.  The encoder picks the LZ4 form only when it
 * is smaller.  The stored crc is masked as in LevelDB
 * ((crc >> 15 | crc << 17) + 0xa282ead8) so that a record that embeds the CRC
 * of other data does not accidentally verify.  All integers little-endian.
 * The record layer has no version of its own: the segment header carries the
 * journal format version (journal.h).
 */
#ifndef RS_RECORD_H
#define RS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"

#define RECORD_HEADER_SIZE 9u
#define RECORD_BATCH 1u
#define RECORD_BATCH_LZ4 2u
/* Largest payload we accept: a maximal batch that did not compress. */
#define RECORD_PAYLOAD_MAX (RS_BATCH_SIZE_MAX + 64u)

/* Append the record for batch b to out.  Fails with RS_ETOOLARGE if the body
 * exceeds RS_BATCH_SIZE_MAX, RS_ENOMEM; on failure out is unchanged. */
int record_encode_batch(const struct batch *b, struct rs_buf *out);

/* What record_parse found at one offset. */
struct record_view {
	uint8_t type;
	uint32_t payload_len;
	const uint8_t *payload;
	uint64_t version; /* from the payload; valid when parse returned RS_OK */
	uint64_t epoch;
	size_t total_len; /* header + payload */
};

/*
 * Parse and verify the record at p[0..avail).
 *  RS_OK       complete, checksum good, type known, payload long enough.
 *  RS_ETORN    fewer than header+length bytes are available (a record cut
 *              short); *v has type and payload_len filled if the header fit.
 *  RS_ECORRUPT checksum mismatch, unknown type, or impossible length; errmsg
 *              says which.
 * Never reads past p + avail.
 */
int record_parse(const uint8_t *p, size_t avail, struct record_view *v,
		 char *errmsg);

/* Decode a verified record into a batch (decompressing if needed).  The body
 * is validated with batch_body_validate.  RS_ECORRUPT with errmsg on bad
 * content; b is reset first and holds the batch on success. */
int record_decode_batch(const struct record_view *v, struct batch *b,
			char *errmsg);

#endif /* RS_RECORD_H */
