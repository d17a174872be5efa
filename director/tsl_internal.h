/*
 * tsl_internal: what the layout's files share inside director/ (tsl.h is
 * the public side).  tsl.c validates and compares, tsl_codec.c owns the
 * binary frame and the field writers and readers, tsl_entry.c builds the
 * decomposed form from both, tsl_json.c prints a layout.
 *
 * The writers assume the caller reserved room for the largest body
 * (tsl_frame_begin), so they cannot fail; they assert it.  The readers
 * never read past r->len and, when the input ends inside a field, say so
 * in r->errmsg as "truncated in <where>.<field>" (RS_ECORRUPT).  The
 * checks answer RS_EINVAL with errmsg naming "<where>.<field>".
 */
#ifndef RS_TSL_INTERNAL_H
#define RS_TSL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "director/tsl.h"
#include "raftstore/lib/buf.h"

/* Room for a field path such as "commit_proxies[15]". */
#define TSL_WHERE_SIZE 48

bool tsl_bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b,
		  size_t blen);

/* ---- checks of single fields, as tsl_validate makes them (tsl.c) ---- */

int tsl_check_addr(const char *addr, const char *where, char *errmsg);
int tsl_check_node_id(uint64_t node_id, const char *where, char *errmsg);
int tsl_check_component(const struct tsl_component *c, const char *where,
			char *errmsg);
/* The range on its own: bounded and non-empty. */
int tsl_check_range(const struct tsl_range *r, const char *where,
		    char *errmsg);
int tsl_check_service(const struct tsl_service *s, const char *where,
		      char *errmsg);

/* ---- comparison (tsl.c): the first differing field's name, or NULL ---- */

const char *tsl_node_diff(const struct tsl_node *a, const struct tsl_node *b);
const char *tsl_component_diff(const struct tsl_component *a,
			       const struct tsl_component *b);
const char *tsl_range_diff(const struct tsl_range *a,
			   const struct tsl_range *b);
const char *tsl_service_diff(const struct tsl_service *a,
			     const struct tsl_service *b);

/* ---- the frame (tsl_codec.c) ---- */

/* Reserve a frame of up to body_max body bytes; *start is where it
 * begins.  RS_ENOMEM leaves out unchanged. */
int tsl_frame_begin(struct rs_buf *out, size_t body_max, size_t *start);
/* Fill in the header of the frame begun at start around what was written
 * since: magic, version, length and CRC-32C of the body. */
void tsl_frame_end(struct rs_buf *out, size_t start, const char *magic,
		   uint32_t version, size_t body_max);
/* Check the 20-byte frame around a body: magic, version (RS_EFORMAT),
 * length, crc, and that p[0..n) is exactly one frame (RS_ECORRUPT).
 * `what` names the value in messages. */
int tsl_frame_open(const uint8_t *p, size_t n, const char *magic,
		   uint32_t version, size_t body_max, const char *what,
		   const uint8_t **body, size_t *body_len, char *errmsg);

/* ---- field writers (tsl_codec.c) ---- */

void tsl_wr_u8(struct rs_buf *b, uint8_t v);
void tsl_wr_u64(struct rs_buf *b, uint64_t v);
void tsl_wr_node(struct rs_buf *b, const struct tsl_node *n);
void tsl_wr_component(struct rs_buf *b, const struct tsl_component *c);
void tsl_wr_range(struct rs_buf *b, const struct tsl_range *r);
void tsl_wr_service(struct rs_buf *b, const struct tsl_service *s);

/* ---- field readers (tsl_codec.c) ---- */

/* A body being read: p[pos..len); errmsg (may be NULL) gets the error. */
struct tsl_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
	char *errmsg;
};

int tsl_rd_u8(struct tsl_rd *r, const char *where, const char *field,
	      uint8_t *v);
int tsl_rd_u64(struct tsl_rd *r, const char *where, const char *field,
	       uint64_t *v);
int tsl_rd_node(struct tsl_rd *r, const char *where, struct tsl_node *n);
int tsl_rd_component(struct tsl_rd *r, const char *where,
		     struct tsl_component *c);
int tsl_rd_range(struct tsl_rd *r, const char *where, struct tsl_range *g);
int tsl_rd_service(struct tsl_rd *r, const char *where,
		   struct tsl_service *s);

#endif /* RS_TSL_INTERNAL_H */
