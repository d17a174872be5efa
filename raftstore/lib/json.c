/*
 * json: jansson with the project's conventions (see json.h).
 */
#include "raftstore/lib/json.h"

#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/rs_error.h"

json_t *rs_json_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t extra = 0;
	json_t *s;
	char *u;
	size_t j = 0;

	for (size_t i = 0; i < n; i++)
		extra += b[i] >= 0x80;
	if (extra == 0)
		return json_stringn_nocheck(n ? p : "", n);
	/* Latin-1 to UTF-8: a byte >= 0x80 is the two-byte code point U+00XX. */
	u = malloc(n + extra);
	if (u == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (b[i] < 0x80) {
			u[j++] = (char)b[i];
		} else {
			u[j++] = (char)(0xc0 | (b[i] >> 6));
			u[j++] = (char)(0x80 | (b[i] & 0x3f));
		}
	}
	s = json_stringn_nocheck(u, j);
	free(u);
	return s;
}

json_t *rs_json_u64(uint64_t v)
{
	if (v > (uint64_t)INT64_MAX)
		return NULL;
	return json_integer((json_int_t)v);
}

int rs_json_set(json_t *obj, const char *key, json_t *value)
{
	if (value == NULL)
		return RS_ENOMEM;
	return json_object_set_new(obj, key, value) == 0 ? RS_OK : RS_ENOMEM;
}

int rs_json_set_u64(json_t *obj, const char *key, uint64_t v)
{
	if (v > (uint64_t)INT64_MAX)
		return RS_ETOOLARGE;
	return rs_json_set(obj, key, json_integer((json_int_t)v));
}

int rs_json_set_i64(json_t *obj, const char *key, int64_t v)
{
	return rs_json_set(obj, key, json_integer((json_int_t)v));
}

int rs_json_set_bool(json_t *obj, const char *key, int v)
{
	return rs_json_set(obj, key, json_boolean(v));
}

int rs_json_set_str(json_t *obj, const char *key, const char *s)
{
	return rs_json_set(obj, key, rs_json_bytes(s, strlen(s)));
}

int rs_json_set_bytes(json_t *obj, const char *key, const void *p, size_t n)
{
	return rs_json_set(obj, key, rs_json_bytes(p, n));
}

int rs_json_push(json_t *array, json_t *value)
{
	if (value == NULL)
		return RS_ENOMEM;
	return json_array_append_new(array, value) == 0 ? RS_OK : RS_ENOMEM;
}

static size_t rs_json_flags(enum rs_json_style style)
{
	size_t f = JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;

	return f | (style == RS_JSON_PRETTY ? JSON_INDENT(2) : JSON_COMPACT);
}

char *rs_json_dump(const json_t *v, enum rs_json_style style)
{
	return json_dumps(v, rs_json_flags(style));
}

static int rs_json_dump_cb(const char *p, size_t n, void *data)
{
	return rs_buf_append(data, p, n) == RS_OK ? 0 : -1;
}

int rs_json_dump_buf(const json_t *v, enum rs_json_style style,
		     struct rs_buf *out)
{
	size_t before = out->len;

	if (json_dump_callback(v, rs_json_dump_cb, out, rs_json_flags(style))) {
		out->len = before;
		return RS_ENOMEM;
	}
	return RS_OK;
}

int rs_json_parse(const void *text, size_t n, json_t **out, char *errmsg)
{
	json_error_t je;
	json_t *v = json_loadb(text, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			       &je);

	if (v == NULL) {
		rs_errmsg_printf(errmsg, "line %d column %d: %s", je.line,
				 je.column, je.text);
		return RS_EPROTO;
	}
	*out = v;
	return RS_OK;
}

int rs_json_parse_object(const void *text, size_t n, json_t **out,
			 char *errmsg)
{
	json_t *v;
	int rv = rs_json_parse(text, n, &v, errmsg);

	if (rv != RS_OK)
		return rv;
	if (!json_is_object(v)) {
		json_decref(v);
		rs_errmsg_printf(errmsg, "expected a JSON object");
		return RS_EPROTO;
	}
	*out = v;
	return RS_OK;
}

/* The member, or RS_ENOTFOUND with the message. */
static int rs_json_member(const json_t *obj, const char *key, json_t **out,
			  char *errmsg)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	if (v == NULL) {
		rs_errmsg_printf(errmsg, "missing member \"%s\"", key);
		return RS_ENOTFOUND;
	}
	*out = v;
	return RS_OK;
}

static int rs_json_wrong(char *errmsg, const char *key, const char *want)
{
	rs_errmsg_printf(errmsg, "member \"%s\": expected %s", key, want);
	return RS_EPROTO;
}

int rs_json_get_u64(const json_t *obj, const char *key, uint64_t *out,
		    char *errmsg)
{
	json_t *v;
	int rv = rs_json_member(obj, key, &v, errmsg);

	if (rv != RS_OK)
		return rv;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return rs_json_wrong(errmsg, key, "an unsigned integer");
	*out = (uint64_t)json_integer_value(v);
	return RS_OK;
}

int rs_json_get_i64(const json_t *obj, const char *key, int64_t *out,
		    char *errmsg)
{
	json_t *v;
	int rv = rs_json_member(obj, key, &v, errmsg);

	if (rv != RS_OK)
		return rv;
	if (!json_is_integer(v))
		return rs_json_wrong(errmsg, key, "an integer");
	*out = (int64_t)json_integer_value(v);
	return RS_OK;
}

int rs_json_get_bool(const json_t *obj, const char *key, int *out,
		     char *errmsg)
{
	json_t *v;
	int rv = rs_json_member(obj, key, &v, errmsg);

	if (rv != RS_OK)
		return rv;
	if (!json_is_boolean(v))
		return rs_json_wrong(errmsg, key, "true or false");
	*out = json_is_true(v);
	return RS_OK;
}

int rs_json_get_str(const json_t *obj, const char *key, const char **out,
		    size_t *len, char *errmsg)
{
	json_t *v;
	int rv = rs_json_member(obj, key, &v, errmsg);

	if (rv != RS_OK)
		return rv;
	if (!json_is_string(v))
		return rs_json_wrong(errmsg, key, "a string");
	if (len == NULL && strlen(json_string_value(v)) != json_string_length(v))
		return rs_json_wrong(errmsg, key, "a string without NUL");
	*out = json_string_value(v);
	if (len != NULL)
		*len = json_string_length(v);
	return RS_OK;
}

int rs_json_bytes_value(const json_t *s, struct rs_buf *out, char *errmsg)
{
	const uint8_t *u;
	size_t n, before = out->len;

	if (!json_is_string(s)) {
		rs_errmsg_printf(errmsg, "expected a string");
		return RS_EPROTO;
	}
	u = (const uint8_t *)json_string_value(s);
	n = json_string_length(s);
	if (rs_buf_reserve(out, n) != RS_OK)
		return RS_ENOMEM;
	/* jansson hands back valid UTF-8: a lead byte 0xc2/0xc3 is U+0080 to
	 * U+00FF; any other lead byte >= 0x80 is a code point above U+00FF. */
	for (size_t i = 0; i < n; i++) {
		if (u[i] < 0x80) {
			out->data[out->len++] = u[i];
		} else if ((u[i] == 0xc2 || u[i] == 0xc3) && i + 1 < n) {
			out->data[out->len++] =
				(uint8_t)(((u[i] & 0x03) << 6) | (u[i + 1] & 0x3f));
			i++;
		} else {
			out->len = before;
			rs_errmsg_printf(errmsg,
					 "byte string holds a character above "
					 "U+00FF at byte %zu",
					 i);
			return RS_EPROTO;
		}
	}
	return RS_OK;
}

int rs_json_get_bytes(const json_t *obj, const char *key, struct rs_buf *out,
		      char *errmsg)
{
	json_t *v;
	int rv = rs_json_member(obj, key, &v, errmsg);

	if (rv != RS_OK)
		return rv;
	rv = rs_json_bytes_value(v, out, errmsg);
	if (rv != RS_OK)
		rs_errmsg_wrapf(errmsg, "member \"%s\"", key);
	return rv;
}

int rs_json_get_array(const json_t *obj, const char *key, json_t **out,
		      char *errmsg)
{
	json_t *v;
	int rv = rs_json_member(obj, key, &v, errmsg);

	if (rv != RS_OK)
		return rv;
	if (!json_is_array(v))
		return rs_json_wrong(errmsg, key, "an array");
	*out = v;
	return RS_OK;
}

int rs_json_get_object(const json_t *obj, const char *key, json_t **out,
		       char *errmsg)
{
	json_t *v;
	int rv = rs_json_member(obj, key, &v, errmsg);

	if (rv != RS_OK)
		return rv;
	if (!json_is_object(v))
		return rs_json_wrong(errmsg, key, "an object");
	*out = v;
	return RS_OK;
}
