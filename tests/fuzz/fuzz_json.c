/*
 * fuzz_json: the project's JSON layer (raftstore/lib/json.h): parsing and
 * the byte-string and integer conventions every reader relies on.
 *
 * Invariants: a document that parses dumps (compact and pretty) to text
 * that parses back to an equal document; a string that reads as a byte
 * string is rebuilt from those bytes as an equal string; every member
 * getter on an object either refuses or returns a value that rebuilds
 * the member (u64, i64, bool, bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tests/fuzz/fuzz.h"

static void check_dump(const json_t *doc, enum rs_json_style style)
{
	char errmsg[RS_ERRMSG_SIZE];
	char *text = rs_json_dump(doc, style);
	json_t *again = NULL;

	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(rs_json_parse(text, strlen(text), &again, errmsg) == RS_OK);
	FUZZ_CHECK(json_equal(doc, again));
	json_decref(again);
	free(text);
}

static void check_string(const json_t *s)
{
	struct rs_buf bytes;
	json_t *rebuilt;

	rs_buf_init(&bytes);
	if (rs_json_bytes_value(s, &bytes, NULL) == RS_OK) {
		rebuilt = rs_json_bytes(bytes.data, bytes.len);
		FUZZ_CHECK(rebuilt != NULL);
		FUZZ_CHECK(json_equal(s, rebuilt));
		json_decref(rebuilt);
	}
	rs_buf_free(&bytes);
}

/* Every getter on one member of obj. */
static void check_getters(const json_t *obj, const char *key,
			  const json_t *value)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct rs_buf bytes;
	uint64_t u;
	int64_t i;
	int b;
	const char *str;
	size_t len;
	json_t *sub;

	if (rs_json_get_u64(obj, key, &u, errmsg) == RS_OK) {
		json_t *v = rs_json_u64(u);

		FUZZ_CHECK(v != NULL && json_equal(v, value));
		json_decref(v);
	}
	if (rs_json_get_i64(obj, key, &i, errmsg) == RS_OK)
		FUZZ_CHECK(json_is_integer(value) &&
			   json_integer_value(value) == i);
	if (rs_json_get_bool(obj, key, &b, errmsg) == RS_OK)
		FUZZ_CHECK(json_is_boolean(value) && b == json_is_true(value));
	if (rs_json_get_str(obj, key, &str, &len, errmsg) == RS_OK)
		FUZZ_CHECK(len == json_string_length(value));
	if (rs_json_get_str(obj, key, &str, NULL, errmsg) == RS_OK)
		FUZZ_CHECK(strlen(str) == json_string_length(value));
	rs_buf_init(&bytes);
	if (rs_json_get_bytes(obj, key, &bytes, errmsg) == RS_OK)
		FUZZ_CHECK(bytes.len <= json_string_length(value));
	rs_buf_free(&bytes);
	if (rs_json_get_array(obj, key, &sub, errmsg) == RS_OK)
		FUZZ_CHECK(sub == value && json_is_array(sub));
	if (rs_json_get_object(obj, key, &sub, errmsg) == RS_OK)
		FUZZ_CHECK(sub == value && json_is_object(sub));
}

static void walk(const json_t *v)
{
	const char *key;
	json_t *member;
	size_t i;

	if (json_is_string(v)) {
		check_string(v);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, member)
			walk(member);
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, member) {
			check_getters(v, key, member);
			walk(member);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	json_t *doc = NULL;

	if (rs_json_parse(data, size, &doc, errmsg) != RS_OK) {
		FUZZ_CHECK(doc == NULL);
		return 0;
	}
	FUZZ_CHECK(doc != NULL);
	check_dump(doc, RS_JSON_COMPACT);
	check_dump(doc, RS_JSON_PRETTY);
	walk(doc);
	json_decref(doc);
	return 0;
}
