/*
 * json: the project's one JSON layer, on libjansson.
 *
 * Every JSON document raftstore reads or writes (node status, the members
 * list, the layout, audit events, rsctl's --json output, the chaos history)
 * goes through jansson's parser and writer; nothing is scanned or printed by
 * hand.  This module adds the conventions jansson leaves open:
 *
 *   - Byte strings (keys, values, addresses read off the wire) are JSON
 *     strings with one code point per byte, U+0000..U+00FF, written as
 *     \u00XX outside printable ASCII (docs/layout-format.md, "JSON").  A
 *     reader gets the bytes back exactly; a code point above U+00FF is
 *     refused, never truncated.
 *   - Unsigned integers are JSON integers up to 2^63-1 (jansson's range); a
 *     larger value is refused with RS_ETOOLARGE rather than rounded.
 *   - Output is compact (or indented, on request), ASCII only, members in
 *     the order they were set.
 *   - Parsing rejects duplicate members and trailing data, and an error
 *     names the line, column and jansson's reason; a member's error names
 *     the member.
 *
 * Builders return 0 or an rs_error code and steal nothing on failure except
 * where said.  Getters never allocate except into a caller's rs_buf.
 */
#ifndef RS_JSON_H
#define RS_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "raftstore/lib/buf.h"

/* Output shapes for rs_json_dump / rs_json_dump_buf. */
enum rs_json_style {
	RS_JSON_COMPACT = 0, /* one line: {"a":1,"b":[2,3]} */
	RS_JSON_PRETTY = 1,  /* two-space indent, one member per line */
};

/* ---- building ---- */

/* A JSON string holding bytes p[0..n), one code point per byte.  NULL only
 * when out of memory.  p may be NULL when n is 0. */
json_t *rs_json_bytes(const void *p, size_t n);

/* A JSON integer for v; NULL when v > 2^63-1 or out of memory. */
json_t *rs_json_u64(uint64_t v);

/* obj[key] = value, stealing the reference to value.  value may be NULL
 * (the failed result of a constructor): then RS_ENOMEM.  Keys are C strings
 * chosen by the program, never user bytes. */
int rs_json_set(json_t *obj, const char *key, json_t *value);

/* Shorthands for rs_json_set with the constructors above and jansson's. */
int rs_json_set_u64(json_t *obj, const char *key, uint64_t v);
int rs_json_set_i64(json_t *obj, const char *key, int64_t v);
int rs_json_set_bool(json_t *obj, const char *key, int v);
int rs_json_set_str(json_t *obj, const char *key, const char *s);
int rs_json_set_bytes(json_t *obj, const char *key, const void *p, size_t n);

/* Append value to array, stealing it; NULL value gives RS_ENOMEM. */
int rs_json_push(json_t *array, json_t *value);

/* ---- writing ---- */

/* The document (an object, an array or a bare value such as one member's)
 * as a NUL-terminated string (malloc'd; free()), no trailing newline.  NULL
 * when out of memory. */
char *rs_json_dump(const json_t *v, enum rs_json_style style);

/* Append the document to out, without a NUL or newline. */
int rs_json_dump_buf(const json_t *v, enum rs_json_style style,
		     struct rs_buf *out);

/* ---- reading ---- */

/* Parse text[0..n) as one JSON document.  On failure returns RS_EPROTO with
 * errmsg "line L column C: <reason>" (errmsg may be NULL). */
int rs_json_parse(const void *text, size_t n, json_t **out, char *errmsg);

/* As rs_json_parse, and the document must be an object. */
int rs_json_parse_object(const void *text, size_t n, json_t **out,
			 char *errmsg);

/* Member getters on an object.  Each returns 0, RS_ENOTFOUND when the
 * member is absent ("missing member \"key\""), or RS_EPROTO when it has the
 * wrong type ("member \"key\": expected ...").  *out is set only on 0. */
int rs_json_get_u64(const json_t *obj, const char *key, uint64_t *out,
		    char *errmsg);
int rs_json_get_i64(const json_t *obj, const char *key, int64_t *out,
		    char *errmsg);
int rs_json_get_bool(const json_t *obj, const char *key, int *out,
		     char *errmsg);
/* The string's UTF-8 bytes, valid while obj lives; *len may be NULL.  A
 * string holding a NUL is refused unless len is given. */
int rs_json_get_str(const json_t *obj, const char *key, const char **out,
		    size_t *len, char *errmsg);
/* A byte string (one code point per byte), appended to out. */
int rs_json_get_bytes(const json_t *obj, const char *key, struct rs_buf *out,
		      char *errmsg);
/* An array or object member, borrowed. */
int rs_json_get_array(const json_t *obj, const char *key, json_t **out,
		      char *errmsg);
int rs_json_get_object(const json_t *obj, const char *key, json_t **out,
		       char *errmsg);

/* The bytes of a JSON string value (one code point per byte), appended to
 * out.  RS_EPROTO when s is not a string or holds a code point > U+00FF. */
int rs_json_bytes_value(const json_t *s, struct rs_buf *out, char *errmsg);

#endif /* RS_JSON_H */
