/*
 * chaos_history: see chaos_history.h for what it guarantees.
 *
 * The pieces, in file order:
 *   - the names of op kinds and results, shared by parser and reports;
 *   - the history's strings: a pool that keeps one copy of each;
 *   - the parser (jansson, one json_loadb per line, rolling CRC-32C over
 *     the bytes that each end line vouches for);
 *   - reading a history from a file.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tools/chaos_history.h"

static const char *const ch_f_names[CHAOS_HISTORY_F_COUNT] = {
	"read", "write", "cas", "unique"};
static const char *const ch_result_names[CHAOS_HISTORY_RESULT_COUNT] = {
	"ok", "fail", "unknown"};

const char *chaos_history_f_name(enum chaos_history_f f)
{
	assert((unsigned)f < CHAOS_HISTORY_F_COUNT);
	return ch_f_names[f];
}

const char *chaos_history_result_name(enum chaos_history_result r)
{
	assert((unsigned)r < CHAOS_HISTORY_RESULT_COUNT);
	return ch_result_names[r];
}

/* ------------------------------------------------------------------ */
/* The history's strings                                               */
/* ------------------------------------------------------------------ */

struct chaos_history_pool {
	char **slots;
	size_t cap, count;
};

static void ch_pool_free(struct chaos_history_pool *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->cap; i++)
		free(p->slots[i]);
	free(p->slots);
	free(p);
}

static int ch_pool_grow(struct chaos_history_pool *p)
{
	size_t cap = p->cap ? p->cap * 2 : 1024;
	char **slots = calloc(cap, sizeof *slots);

	if (slots == NULL)
		return RS_ENOMEM;
	for (size_t i = 0; i < p->cap; i++) {
		size_t j;
		if (p->slots[i] == NULL)
			continue;
		j = bytes_hash(p->slots[i], strlen(p->slots[i])) & (cap - 1);
		while (slots[j] != NULL)
			j = (j + 1) & (cap - 1);
		slots[j] = p->slots[i];
	}
	free(p->slots);
	p->slots = slots;
	p->cap = cap;
	return RS_OK;
}

/* The pool's copy of s[0..n) (one copy per distinct string), or NULL if
 * out of memory. */
static const char *ch_pool_intern(struct chaos_history_pool *p, const char *s,
				  size_t n)
{
	size_t i;

	if ((p->count + 1) * 2 > p->cap && ch_pool_grow(p) != RS_OK)
		return NULL;
	for (i = bytes_hash(s, n) & (p->cap - 1); p->slots[i] != NULL;
	     i = (i + 1) & (p->cap - 1))
		if (strncmp(p->slots[i], s, n) == 0 && p->slots[i][n] == '\0')
			return p->slots[i];
	p->slots[i] = malloc(n + 1);
	if (p->slots[i] == NULL)
		return NULL;
	memcpy(p->slots[i], s, n);
	p->slots[i][n] = '\0';
	p->count++;
	return p->slots[i];
}

/* ------------------------------------------------------------------ */
/* The parser                                                          */
/* ------------------------------------------------------------------ */

struct ch_idline {
	uint64_t id;
	size_t line;
};

struct ch_parser {
	struct chaos_history *h;
	size_t line;         /* 1-based number of the line being read */
	uint32_t crc;        /* CRC-32C of every byte before that line */
	bool seen_final;
	bool last_was_end;
	size_t ops_cap;
	struct ch_idline *ids; /* op id and line, for the duplicate check */
	char *errmsg;
};

enum {
	CH_REQUIRED = 1u << 0,
	CH_NULLABLE = 1u << 1,
};

static int ch_vfail(struct ch_parser *p, int code, const char *fmt,
		    va_list ap)
{
	int n;

	if (code == RS_ECORRUPT)
		n = snprintf(p->errmsg, RS_ERRMSG_SIZE,
			     "history truncated or corrupt at line %zu: ",
			     p->line);
	else
		n = snprintf(p->errmsg, RS_ERRMSG_SIZE, "line %zu: ", p->line);
	assert(n > 0 && n < RS_ERRMSG_SIZE);
	vsnprintf(p->errmsg + n, RS_ERRMSG_SIZE - (size_t)n, fmt, ap);
	return code;
}

/* A line that breaks the format: RS_EINVAL, "line N: ...". */
static int ch_fail(struct ch_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int ch_fail(struct ch_parser *p, const char *fmt, ...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt);
	rv = ch_vfail(p, RS_EINVAL, fmt, ap);
	va_end(ap);
	return rv;
}

/* Bytes that the end lines do not vouch for: RS_ECORRUPT. */
static int ch_corrupt(struct ch_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int ch_corrupt(struct ch_parser *p, const char *fmt, ...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt);
	rv = ch_vfail(p, RS_ECORRUPT, fmt, ap);
	va_end(ap);
	return rv;
}

static int ch_nomem(struct ch_parser *p)
{
	snprintf(p->errmsg, RS_ERRMSG_SIZE, "line %zu: out of memory", p->line);
	return RS_ENOMEM;
}

/* An optional field is left untouched when absent. */
static int ch_field_u64(struct ch_parser *p, json_t *o, const char *name,
			unsigned flags, uint64_t *out)
{
	char msg[RS_ERRMSG_SIZE];
	int rv = rs_json_get_u64(o, name, out, msg);

	if (rv == RS_ENOTFOUND && !(flags & CH_REQUIRED))
		return RS_OK;
	return rv == RS_OK ? RS_OK : ch_fail(p, "%s", msg);
}

/* *out is the pool's copy, or NULL for JSON null or an absent field;
 * *present (may be NULL) says whether the field was there. */
static int ch_field_str(struct ch_parser *p, json_t *o, const char *name,
			unsigned flags, const char **out, bool *present)
{
	json_t *v = json_object_get(o, name);
	char msg[RS_ERRMSG_SIZE];
	const char *s;
	int rv;

	*out = NULL;
	if (present != NULL)
		*present = v != NULL;
	if (v == NULL && !(flags & CH_REQUIRED))
		return RS_OK;
	if (json_is_null(v) && (flags & CH_NULLABLE))
		return RS_OK;
	rv = rs_json_get_str(o, name, &s, NULL, msg);
	if (rv != RS_OK)
		return ch_fail(p, "%s%s", msg,
			       rv == RS_EPROTO && (flags & CH_NULLABLE)
				       ? " or null"
				       : "");
	*out = ch_pool_intern(p->h->pool, s, strlen(s));
	return *out == NULL ? ch_nomem(p) : RS_OK;
}

/* The index of the field's string in names[0..count). */
static int ch_field_enum(struct ch_parser *p, json_t *o, const char *name,
			 const char *const *names, unsigned count,
			 unsigned *out)
{
	char msg[RS_ERRMSG_SIZE];
	const char *s;

	if (rs_json_get_str(o, name, &s, NULL, msg) != RS_OK)
		return ch_fail(p, "%s", msg);
	for (unsigned i = 0; i < count; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return RS_OK;
		}
	return ch_fail(p, "member \"%s\" has unknown value \"%s\"", name, s);
}

static int ch_parse_meta(struct ch_parser *p, json_t *o)
{
	uint64_t format = 0, unused = 0;
	const char *s;
	int rv;

	if ((rv = ch_field_u64(p, o, "format", CH_REQUIRED, &format)))
		return rv;
	if (format != CHAOS_HISTORY_FORMAT)
		return ch_fail(p, "history format %" PRIu64
				  " is not the one this checker reads (%d)",
			       format, CHAOS_HISTORY_FORMAT);
	if ((rv = ch_field_str(p, o, "prefix", CH_REQUIRED, &p->h->prefix,
			       NULL)) ||
	    (rv = ch_field_u64(p, o, "seed", 0, &p->h->seed)) ||
	    (rv = ch_field_u64(p, o, "clients", 0, &unused)) ||
	    (rv = ch_field_u64(p, o, "keys", 0, &unused)) ||
	    (rv = ch_field_u64(p, o, "start_unix_us", 0, &unused)) ||
	    (rv = ch_field_str(p, o, "endpoints", 0, &s, NULL)))
		return rv;
	return RS_OK;
}

/* value, expect and observed, as op->f and op->result require them. */
static int ch_parse_op_values(struct ch_parser *p, json_t *o,
			      struct chaos_history_op *op)
{
	bool ok = op->result == CHAOS_HISTORY_OK;
	int rv;

	switch (op->f) {
	case CHAOS_HISTORY_READ: /* the value is only meaningful when ok */
		return ch_field_str(p, o, "value",
				    CH_NULLABLE | (ok ? CH_REQUIRED : 0u),
				    &op->value, NULL);
	case CHAOS_HISTORY_CAS:
		if ((rv = ch_field_str(p, o, "expect",
				       CH_REQUIRED | CH_NULLABLE, &op->expect,
				       NULL)) ||
		    (rv = ch_field_str(p, o, "observed", CH_NULLABLE,
				       &op->observed, &op->has_observed)))
			return rv;
		if (op->has_observed && op->result != CHAOS_HISTORY_FAIL)
			return ch_fail(p, "\"observed\" on a cas whose result "
					  "is not \"fail\"");
		/* fall through */
	default:
		return ch_field_str(p, o, "value", CH_REQUIRED, &op->value,
				    NULL);
	}
}

static int ch_op_append(struct ch_parser *p, const struct chaos_history_op *op)
{
	struct chaos_history *h = p->h;

	if (h->op_count == p->ops_cap) {
		size_t cap = p->ops_cap ? p->ops_cap * 2 : 1024;
		struct chaos_history_op *ops =
			realloc(h->ops, cap * sizeof *ops);
		struct ch_idline *ids = realloc(p->ids, cap * sizeof *ids);

		if (ops != NULL)
			h->ops = ops;
		if (ids != NULL)
			p->ids = ids;
		if (ops == NULL || ids == NULL)
			return ch_nomem(p);
		p->ops_cap = cap;
	}
	p->ids[h->op_count] = (struct ch_idline){op->id, p->line};
	h->ops[h->op_count++] = *op;
	return RS_OK;
}

static int ch_parse_op(struct ch_parser *p, json_t *o)
{
	struct chaos_history_op op = {0};
	unsigned f = 0, result = 0;
	uint64_t version = 0;
	const char *error;
	int rv;

	if ((rv = ch_field_u64(p, o, "id", CH_REQUIRED, &op.id)) ||
	    (rv = ch_field_u64(p, o, "client", CH_REQUIRED, &op.client)) ||
	    (rv = ch_field_enum(p, o, "f", ch_f_names, CHAOS_HISTORY_F_COUNT,
				&f)) ||
	    (rv = ch_field_enum(p, o, "result", ch_result_names,
				CHAOS_HISTORY_RESULT_COUNT, &result)) ||
	    (rv = ch_field_str(p, o, "key", CH_REQUIRED, &op.key, NULL)) ||
	    (rv = ch_field_u64(p, o, "invoke_us", CH_REQUIRED,
			       &op.invoke_us)) ||
	    (rv = ch_field_u64(p, o, "complete_us", CH_REQUIRED,
			       &op.complete_us)) ||
	    (rv = ch_field_str(p, o, "error", 0, &error, NULL)) ||
	    (rv = ch_field_u64(p, o, "version", 0, &version)))
		return rv;
	op.f = (enum chaos_history_f)f;
	op.result = (enum chaos_history_result)result;
	if ((rv = ch_parse_op_values(p, o, &op)))
		return rv;
	if (op.key[0] == '\0')
		return ch_fail(p, "member \"key\" is empty");
	if (op.complete_us < op.invoke_us)
		return ch_fail(p, "complete_us %" PRIu64
				  " is before invoke_us %" PRIu64,
			       op.complete_us, op.invoke_us);
	return ch_op_append(p, &op);
}

static int ch_final_key_cmp(const void *a, const void *b)
{
	const struct chaos_history_final_key *x = a, *y = b;
	return strcmp(x->key, y->key);
}

static int ch_parse_final_keys(struct ch_parser *p, json_t *keys)
{
	struct chaos_history *h = p->h;
	const char *k;
	json_t *v;

	h->final_keys = malloc((json_object_size(keys) + 1) *
			       sizeof *h->final_keys);
	if (h->final_keys == NULL)
		return ch_nomem(p);
	json_object_foreach(keys, k, v) {
		struct chaos_history_final_key *fk =
			&h->final_keys[h->final_count];

		if (!json_is_string(v))
			return ch_fail(p, "final key \"%s\": value is not a "
					  "string", k);
		fk->key = ch_pool_intern(h->pool, k, strlen(k));
		fk->value = ch_pool_intern(h->pool, json_string_value(v),
					   strlen(json_string_value(v)));
		if (fk->key == NULL || fk->value == NULL)
			return ch_nomem(p);
		h->final_count++;
	}
	assert(h->final_count == json_object_size(keys));
	qsort(h->final_keys, h->final_count, sizeof *h->final_keys,
	      ch_final_key_cmp);
	return RS_OK;
}

static int ch_parse_final(struct ch_parser *p, json_t *o)
{
	char msg[RS_ERRMSG_SIZE];
	uint64_t unused = 0;
	json_t *keys;
	int rv;

	if (p->seen_final)
		return ch_fail(p, "a second final line");
	if (!p->last_was_end)
		return ch_corrupt(p, "the final line does not follow an end "
				     "line (the load section is not sealed)");
	if ((rv = ch_field_str(p, o, "prefix", CH_REQUIRED,
			       &p->h->final_prefix, NULL)) ||
	    (rv = ch_field_u64(p, o, "read_unix_us", 0, &unused)))
		return rv;
	if (rs_json_get_object(o, "keys", &keys, msg) != RS_OK)
		return ch_fail(p, "%s", msg);
	p->seen_final = true;
	p->h->has_final = true;
	return ch_parse_final_keys(p, keys);
}

static bool ch_parse_hex32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (s == NULL || strlen(s) != 8 || !bytes_hex_parse_u64(s, 8, &v))
		return false;
	assert(v <= UINT32_MAX);
	*out = (uint32_t)v;
	return true;
}

static int ch_parse_end(struct ch_parser *p, json_t *o)
{
	uint64_t lines = 0;
	uint32_t crc = 0;
	const char *hex;
	int rv;

	if ((rv = ch_field_u64(p, o, "lines", CH_REQUIRED, &lines)) ||
	    (rv = ch_field_str(p, o, "crc32c", CH_REQUIRED, &hex, NULL)))
		return rv;
	if (!ch_parse_hex32(hex, &crc))
		return ch_fail(p, "member \"crc32c\" is not 8 lowercase hex "
				  "digits");
	if (lines != p->line - 1)
		return ch_corrupt(p, "the end line counts %" PRIu64
				     " lines before it, there are %zu",
				  lines, p->line - 1);
	if (crc != p->crc)
		return ch_corrupt(p, "the end line's crc32c is %08" PRIx32
				     ", the %zu lines before it give %08" PRIx32,
				  crc, p->line - 1, p->crc);
	return RS_OK;
}

static const char *const ch_kind_names[] = {"meta", "op", "final", "end"};
enum ch_line_kind { CH_LINE_META, CH_LINE_OP, CH_LINE_FINAL, CH_LINE_END };

static int ch_parse_object(struct ch_parser *p, json_t *o)
{
	unsigned kind = 0;
	int rv;

	if ((rv = ch_field_enum(p, o, "kind", ch_kind_names, 4, &kind)))
		return rv;
	if (p->line == 1 && kind != CH_LINE_META)
		return ch_fail(p, "the first line is not the meta line");
	switch (kind) {
	case CH_LINE_META:
		if (p->line != 1)
			return ch_fail(p, "a meta line after the first line");
		rv = ch_parse_meta(p, o);
		break;
	case CH_LINE_OP:
		if (p->seen_final)
			return ch_fail(p, "an op line after the final line");
		rv = ch_parse_op(p, o);
		break;
	case CH_LINE_FINAL:
		rv = ch_parse_final(p, o);
		break;
	default:
		rv = ch_parse_end(p, o);
	}
	p->last_was_end = kind == CH_LINE_END;
	return rv;
}

static int ch_parse_line(struct ch_parser *p, const char *s, size_t n)
{
	char msg[RS_ERRMSG_SIZE];
	json_t *o;
	int rv;

	if (rs_json_parse(s, n, &o, msg) != RS_OK)
		return ch_fail(p, "malformed JSON: %s", msg);
	if (!json_is_object(o))
		rv = ch_fail(p, "not a JSON object");
	else
		rv = ch_parse_object(p, o);
	json_decref(o);
	return rv;
}

static int ch_idline_cmp(const void *a, const void *b)
{
	const struct ch_idline *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int ch_check_ids(struct ch_parser *p)
{
	size_t n = p->h->op_count;

	qsort(p->ids, n, sizeof *p->ids, ch_idline_cmp);
	for (size_t i = 1; i < n; i++)
		if (p->ids[i].id == p->ids[i - 1].id) {
			p->line = p->ids[i].line;
			return ch_fail(p, "duplicate op id %" PRIu64
					  " (first on line %zu)",
				       p->ids[i].id, p->ids[i - 1].line);
		}
	return RS_OK;
}

static int ch_parse_lines(struct ch_parser *p, const char *data, size_t len)
{
	size_t off = 0;
	int rv;

	while (off < len) {
		const char *s = data + off;
		const char *nl = memchr(s, '\n', len - off);

		p->line++;
		if (nl == NULL)
			return ch_corrupt(p, "the last line is cut short (no "
					     "newline)");
		if ((rv = ch_parse_line(p, s, (size_t)(nl - s))))
			return rv;
		p->crc = crc32c_extend(p->crc, s, (size_t)(nl - s) + 1);
		off += (size_t)(nl - s) + 1;
	}
	assert(off == len);
	p->h->line_count = p->line;
	if (!p->last_was_end) {
		p->line++;
		return p->line == 1
			       ? ch_corrupt(p, "the history is empty")
			       : ch_corrupt(p, "no end line after line %zu",
					    p->line - 1);
	}
	return ch_check_ids(p);
}

int chaos_history_parse(const void *data, size_t len, struct chaos_history *h,
			char *errmsg)
{
	struct ch_parser p = {.h = h, .errmsg = errmsg};
	int rv;

	assert(data != NULL || len == 0);
	memset(h, 0, sizeof *h);
	errmsg[0] = '\0';
	h->pool = calloc(1, sizeof *h->pool);
	if (h->pool == NULL)
		return ch_nomem(&p);
	rv = ch_parse_lines(&p, data, len);
	free(p.ids);
	if (rv != RS_OK) {
		chaos_history_free(h);
		return rv;
	}
	assert(h->prefix != NULL && h->line_count >= 2);
	return RS_OK;
}

void chaos_history_free(struct chaos_history *h)
{
	free(h->ops);
	free(h->final_keys);
	ch_pool_free(h->pool);
	memset(h, 0, sizeof *h);
}

const struct chaos_history_final_key *
chaos_history_final_find(const struct chaos_history *h, const char *key)
{
	struct chaos_history_final_key k = {.key = key};

	return bsearch(&k, h->final_keys, h->final_count, sizeof k,
		       ch_final_key_cmp);
}

/* Reads the whole file; on failure returns the errno value (ENOMEM too). */
static int ch_read_file(const char *path, char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	char *buf = NULL, *bigger;
	int err = 0;

	if (f == NULL)
		return errno;
	for (;;) {
		bigger = realloc(buf, cap);
		if (bigger == NULL) {
			err = ENOMEM;
			break;
		}
		buf = bigger;
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		cap *= 2;
	}
	if (err == 0 && ferror(f))
		err = errno ? errno : EIO;
	fclose(f);
	if (err != 0) {
		free(buf);
		return err;
	}
	*data = buf;
	*len = n;
	return 0;
}

int chaos_history_parse_file(const char *path, struct chaos_history *h,
			     char *errmsg)
{
	char *data = NULL;
	size_t len = 0;
	int err, rv;

	memset(h, 0, sizeof *h);
	errno = 0;
	err = ch_read_file(path, &data, &len);
	if (err != 0) {
		snprintf(errmsg, RS_ERRMSG_SIZE, "read: %s", strerror(err));
		return err == ENOMEM ? RS_ENOMEM : RS_EIO;
	}
	rv = chaos_history_parse(data, len, h, errmsg);
	free(data);
	return rv;
}
