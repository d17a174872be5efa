/* Tests for json: byte strings both ways (every byte value, refused code
 * points above U+00FF), the u64 range, compact and pretty output, parse
 * errors that name line and column, duplicate members refused, and the
 * member getters' errors. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "tests/unit/testutil.h"

/* Every byte value survives write, dump, parse and read back. */
START_TEST(test_bytes_round_trip_all_values)
{
	uint8_t all[256];
	json_t *o = json_object(), *back;
	struct rs_buf out;
	char *text;
	const char *want = "\\u00FF"; /* jansson spells escapes in capitals */

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	ck_assert_int_eq(rs_json_set_bytes(o, "k", all, sizeof all), RS_OK);
	text = rs_json_dump(o, RS_JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	for (const char *p = text; *p; p++) /* ASCII only */
		ck_assert_int_lt((unsigned char)*p, 0x80);
	ck_assert_ptr_nonnull(strstr(text, want));
	ck_assert_int_eq(rs_json_parse_object(text, strlen(text), &back, NULL),
			 RS_OK);
	rs_buf_init(&out);
	ck_assert_int_eq(rs_json_get_bytes(back, "k", &out, NULL), RS_OK);
	ck_assert_uint_eq(out.len, sizeof all);
	ck_assert_int_eq(memcmp(out.data, all, sizeof all), 0);
	rs_buf_free(&out);
	free(text);
	json_decref(back);
	json_decref(o);
}
END_TEST

/* Random byte strings, with their lengths, round-trip. */
START_TEST(test_bytes_round_trip_random)
{
	uint64_t st = testutil_seed();

	for (int round = 0; round < 2000; round++) {
		uint8_t b[40];
		size_t n = testutil_rand(&st) % sizeof b;
		json_t *s, *back;
		struct rs_buf out;
		char *text;

		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)testutil_rand(&st);
		s = json_array();
		ck_assert_int_eq(rs_json_push(s, rs_json_bytes(b, n)), RS_OK);
		text = rs_json_dump(s, RS_JSON_COMPACT);
		ck_assert_int_eq(rs_json_parse(text, strlen(text), &back, NULL),
				 RS_OK);
		rs_buf_init(&out);
		ck_assert_int_eq(rs_json_bytes_value(json_array_get(back, 0),
						     &out, NULL),
				 RS_OK);
		ck_assert_uint_eq(out.len, n);
		ck_assert(n == 0 || memcmp(out.data, b, n) == 0);
		rs_buf_free(&out);
		free(text);
		json_decref(back);
		json_decref(s);
	}
}
END_TEST

/* A character above U+00FF is not a byte: refused, the buffer untouched. */
START_TEST(test_bytes_refuses_wide_characters)
{
	const char *docs[] = {"{\"k\":\"a\\u0100\"}", "{\"k\":\"\\u20ac\"}",
			      "{\"k\":\"\xe2\x82\xac\"}",
			      "{\"k\":\"\\ud83d\\ude00\"}"};
	char msg[RS_ERRMSG_SIZE];

	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		json_t *o;
		struct rs_buf out;

		ck_assert_int_eq(rs_json_parse_object(docs[i], strlen(docs[i]),
						      &o, NULL),
				 RS_OK);
		rs_buf_init(&out);
		ck_assert_int_eq(rs_buf_append(&out, "x", 1), RS_OK);
		ck_assert_int_eq(rs_json_get_bytes(o, "k", &out, msg),
				 RS_EPROTO);
		ck_assert_uint_eq(out.len, 1);
		ck_assert_ptr_nonnull(strstr(msg, "member \"k\""));
		ck_assert_ptr_nonnull(strstr(msg, "U+00FF"));
		rs_buf_free(&out);
		json_decref(o);
	}
}
END_TEST

START_TEST(test_u64_range)
{
	json_t *o = json_object();
	uint64_t v = 0;
	char msg[RS_ERRMSG_SIZE];

	ck_assert_int_eq(rs_json_set_u64(o, "max", (uint64_t)INT64_MAX), RS_OK);
	ck_assert_int_eq(rs_json_set_u64(o, "big", (uint64_t)INT64_MAX + 1),
			 RS_ETOOLARGE);
	ck_assert_ptr_null(rs_json_u64(UINT64_MAX));
	ck_assert_int_eq(rs_json_get_u64(o, "max", &v, NULL), RS_OK);
	ck_assert_uint_eq(v, (uint64_t)INT64_MAX);
	ck_assert_int_eq(rs_json_set_i64(o, "neg", -1), RS_OK);
	v = 7;
	ck_assert_int_eq(rs_json_get_u64(o, "neg", &v, msg), RS_EPROTO);
	ck_assert_str_eq(msg, "member \"neg\": expected an unsigned integer");
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(rs_json_get_u64(o, "absent", &v, msg), RS_ENOTFOUND);
	ck_assert_str_eq(msg, "missing member \"absent\"");
	json_decref(o);
}
END_TEST

/* Members come out in the order they were set; compact has no spaces. */
START_TEST(test_dump_styles)
{
	json_t *o = json_object(), *a = json_array();
	struct rs_buf out;
	char *pretty;

	ck_assert_int_eq(rs_json_set_str(o, "z", "last-set-first"), RS_OK);
	ck_assert_int_eq(rs_json_set_bool(o, "a", 1), RS_OK);
	ck_assert_int_eq(rs_json_push(a, rs_json_u64(2)), RS_OK);
	ck_assert_int_eq(rs_json_set(o, "list", a), RS_OK);
	rs_buf_init(&out);
	ck_assert_int_eq(rs_buf_append(&out, ">", 1), RS_OK);
	ck_assert_int_eq(rs_json_dump_buf(o, RS_JSON_COMPACT, &out), RS_OK);
	ck_assert_uint_eq(out.len, 43);
	ck_assert_int_eq(memcmp(out.data,
				">{\"z\":\"last-set-first\",\"a\":true,\"list\":[2]}",
				out.len),
			 0);
	pretty = rs_json_dump(o, RS_JSON_PRETTY);
	ck_assert_str_eq(pretty, "{\n  \"z\": \"last-set-first\",\n  \"a\": "
				 "true,\n  \"list\": [\n    2\n  ]\n}");
	free(pretty);
	rs_buf_free(&out);
	ck_assert_int_eq(rs_json_set(o, "nomem", NULL), RS_ENOMEM);
	pretty = rs_json_dump(json_object_get(o, "z"), RS_JSON_COMPACT);
	ck_assert_str_eq(pretty, "\"last-set-first\""); /* a bare value */
	free(pretty);
	json_decref(o);
}
END_TEST

START_TEST(test_parse_errors_name_the_place)
{
	char msg[RS_ERRMSG_SIZE];
	json_t *v = NULL;

	ck_assert_int_eq(rs_json_parse("{\n\"a\":}", 7, &v, msg), RS_EPROTO);
	ck_assert_ptr_nonnull(strstr(msg, "line 2 column"));
	ck_assert_int_eq(rs_json_parse("{\"a\":1,\"a\":2}", 13, &v, msg),
			 RS_EPROTO);
	ck_assert_ptr_nonnull(strstr(msg, "duplicate"));
	ck_assert_int_eq(rs_json_parse("{} x", 4, &v, msg), RS_EPROTO);
	ck_assert_int_eq(rs_json_parse("", 0, &v, msg), RS_EPROTO);
	ck_assert_int_eq(rs_json_parse_object("[1]", 3, &v, msg), RS_EPROTO);
	ck_assert_str_eq(msg, "expected a JSON object");
	ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_getters_check_types)
{
	const char *doc = "{\"s\":\"a\\u0000b\",\"n\":3,\"b\":false,"
			  "\"a\":[],\"o\":{}}";
	char msg[RS_ERRMSG_SIZE];
	json_t *o, *x;
	const char *s;
	size_t len;
	int flag = 1;
	int64_t i;

	ck_assert_int_eq(rs_json_parse_object(doc, strlen(doc), &o, NULL), RS_OK);
	ck_assert_int_eq(rs_json_get_str(o, "s", &s, NULL, msg), RS_EPROTO);
	ck_assert_int_eq(rs_json_get_str(o, "s", &s, &len, msg), RS_OK);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(rs_json_get_str(o, "n", &s, NULL, msg), RS_EPROTO);
	ck_assert_str_eq(msg, "member \"n\": expected a string");
	ck_assert_int_eq(rs_json_get_bool(o, "b", &flag, NULL), RS_OK);
	ck_assert_int_eq(flag, 0);
	ck_assert_int_eq(rs_json_get_bool(o, "n", &flag, NULL), RS_EPROTO);
	ck_assert_int_eq(rs_json_get_i64(o, "n", &i, NULL), RS_OK);
	ck_assert_int_eq(i, 3);
	ck_assert_int_eq(rs_json_get_array(o, "a", &x, NULL), RS_OK);
	ck_assert_int_eq(rs_json_get_array(o, "o", &x, NULL), RS_EPROTO);
	ck_assert_int_eq(rs_json_get_object(o, "o", &x, NULL), RS_OK);
	ck_assert_int_eq(rs_json_get_object(o, "a", &x, NULL), RS_EPROTO);
	/* Getters on a non-object find nothing rather than crash. */
	ck_assert_int_eq(rs_json_get_i64(x, "n", &i, NULL), RS_ENOTFOUND);
	ck_assert_int_eq(rs_json_get_i64(json_array_get(o, 0), "n", &i, NULL),
			 RS_ENOTFOUND);
	json_decref(o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("bytes");
	tcase_add_test(tc, test_bytes_round_trip_all_values);
	tcase_add_test(tc, test_bytes_round_trip_random);
	tcase_add_test(tc, test_bytes_refuses_wide_characters);
	suite_add_tcase(s, tc);
	tc = tcase_create("document");
	tcase_add_test(tc, test_u64_range);
	tcase_add_test(tc, test_dump_styles);
	tcase_add_test(tc, test_parse_errors_name_the_place);
	tcase_add_test(tc, test_getters_check_types);
	suite_add_tcase(s, tc);
	return testutil_run_suite(s);
}
