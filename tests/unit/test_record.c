/* Tests for batch building/validation and the journal record codec. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/rs_error.h"
#include "storage/record.h"
#include "tests/unit/testutil.h"

static void build_sample(struct batch *b, size_t value_len)
{
	uint8_t *val = malloc(value_len + 1);
	ck_assert_ptr_nonnull(val);
	for (size_t i = 0; i < value_len; i++)
		val[i] = (uint8_t)('a' + i % 7); /* compressible */
	batch_init(b);
	b->version = 42;
	b->epoch = 7;
	ck_assert_int_eq(batch_set(b, "k1", 2, val, value_len, NULL), RS_OK);
	ck_assert_int_eq(batch_clear(b, "k2", 2, NULL), RS_OK);
	ck_assert_int_eq(batch_clear_range(b, "a", 1, "b", 1, NULL), RS_OK);
	free(val);
}

static void check_sample(const struct batch *b, size_t value_len)
{
	struct mutation m;
	size_t pos = 0;
	ck_assert_uint_eq(b->version, 42);
	ck_assert_uint_eq(b->epoch, 7);
	ck_assert_uint_eq(b->count, 3);
	ck_assert(batch_next(b, &pos, &m));
	ck_assert_int_eq(m.type, MUT_SET);
	ck_assert_uint_eq(m.key_len, 2);
	ck_assert_mem_eq(m.key, "k1", 2);
	ck_assert_uint_eq(m.val_len, value_len);
	ck_assert(batch_next(b, &pos, &m));
	ck_assert_int_eq(m.type, MUT_CLEAR);
	ck_assert_ptr_null(m.val);
	ck_assert(batch_next(b, &pos, &m));
	ck_assert_int_eq(m.type, MUT_CLEAR_RANGE);
	ck_assert_mem_eq(m.val, "b", 1);
	ck_assert(!batch_next(b, &pos, &m));
}

/* _i: 0 = raw (small), 1 = lz4 (large compressible value) */
START_TEST(test_roundtrip)
{
	size_t value_len = _i ? 4000 : 10;
	struct batch in, out;
	struct rs_buf buf;
	struct record_view v;
	char errmsg[RS_ERRMSG_SIZE];

	build_sample(&in, value_len);
	rs_buf_init(&buf);
	ck_assert_int_eq(record_encode_batch(&in, &buf), RS_OK);
	ck_assert_int_eq(record_parse(buf.data, buf.len, &v, errmsg), RS_OK);
	ck_assert_uint_eq(v.type, _i ? RECORD_BATCH_LZ4 : RECORD_BATCH);
	ck_assert_uint_eq(v.total_len, buf.len);
	ck_assert_uint_eq(v.version, 42);
	batch_init(&out);
	ck_assert_int_eq(record_decode_batch(&v, &out, errmsg), RS_OK);
	check_sample(&out, value_len);
	ck_assert_uint_eq(out.body.len, in.body.len);
	ck_assert_mem_eq(out.body.data, in.body.data, in.body.len);
	batch_free(&in);
	batch_free(&out);
	rs_buf_free(&buf);
}
END_TEST

START_TEST(test_empty_batch)
{
	struct batch in, out;
	struct rs_buf buf;
	struct record_view v;
	char errmsg[RS_ERRMSG_SIZE];

	batch_init(&in);
	in.version = 1;
	rs_buf_init(&buf);
	ck_assert_int_eq(record_encode_batch(&in, &buf), RS_OK);
	ck_assert_int_eq(record_parse(buf.data, buf.len, &v, errmsg), RS_OK);
	batch_init(&out);
	ck_assert_int_eq(record_decode_batch(&v, &out, errmsg), RS_OK);
	ck_assert_uint_eq(out.count, 0);
	batch_free(&in);
	batch_free(&out);
	rs_buf_free(&buf);
}
END_TEST

/* Every prefix is torn; every single bit flip is detected. */
START_TEST(test_truncate_and_flip)
{
	struct batch in;
	struct rs_buf buf;
	struct record_view v;
	char errmsg[RS_ERRMSG_SIZE];

	build_sample(&in, _i ? 4000 : 10);
	rs_buf_init(&buf);
	ck_assert_int_eq(record_encode_batch(&in, &buf), RS_OK);
	for (size_t cut = 0; cut < buf.len; cut++) {
		int rv = record_parse(buf.data, cut, &v, errmsg);
		ck_assert_msg(rv == RS_ETORN, "cut at %zu gave %d", cut, rv);
	}
	for (size_t i = 0; i < buf.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf.data[i] ^= (uint8_t)(1u << bit);
			int rv = record_parse(buf.data, buf.len, &v, errmsg);
			ck_assert_msg(rv == RS_ECORRUPT || rv == RS_ETORN,
				      "flip byte %zu bit %d accepted", i, bit);
			buf.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	batch_free(&in);
	rs_buf_free(&buf);
}
END_TEST

START_TEST(test_limits)
{
	struct batch b;
	char errmsg[RS_ERRMSG_SIZE];
	size_t big = RS_VALUE_SIZE_MAX + 1;
	uint8_t *val = calloc(1, big);

	batch_init(&b);
	ck_assert_int_eq(batch_set(&b, val, RS_KEY_SIZE_MAX + 1, "v", 1, errmsg),
			 RS_ETOOLARGE);
	ck_assert_ptr_nonnull(strstr(errmsg, "key limit"));
	ck_assert_int_eq(batch_set(&b, "k", 1, val, big, errmsg), RS_ETOOLARGE);
	ck_assert_ptr_nonnull(strstr(errmsg, "value limit"));
	ck_assert_int_eq(batch_set(&b, "", 0, "v", 1, errmsg), RS_EINVAL);
	ck_assert_int_eq(batch_clear_range(&b, "b", 1, "a", 1, errmsg), RS_EINVAL);
	/* Nine 1 MiB values fit in the 10 MiB batch limit; a tenth does not. */
	int rv = RS_OK, n = 0;
	while (rv == RS_OK) {
		rv = batch_set(&b, "k", 1, val, RS_VALUE_SIZE_MAX, errmsg);
		n += rv == RS_OK;
	}
	ck_assert_int_eq(rv, RS_ETOOLARGE);
	ck_assert_int_eq(n, 9);
	ck_assert_uint_eq(b.count, 9);
	ck_assert_int_eq(batch_body_validate(b.body.data, b.body.len, errmsg),
			 RS_OK);
	batch_free(&b);
	free(val);
}
END_TEST

START_TEST(test_validate_rejects)
{
	struct batch b;
	char errmsg[RS_ERRMSG_SIZE];

	build_sample(&b, 10);
	/* Wrong count, unknown type, truncated: all refused by name. */
	b.body.data[0] = 4;
	ck_assert_int_eq(batch_body_validate(b.body.data, b.body.len, errmsg),
			 RS_ECORRUPT);
	b.body.data[0] = 3;
	b.body.data[4] = 9;
	ck_assert_int_eq(batch_body_validate(b.body.data, b.body.len, errmsg),
			 RS_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(errmsg, "unknown type 9"));
	b.body.data[4] = MUT_SET;
	for (size_t cut = 0; cut < b.body.len; cut++)
		ck_assert_int_eq(batch_body_validate(b.body.data, cut, errmsg),
				 RS_ECORRUPT);
	ck_assert_int_eq(batch_body_validate(b.body.data, b.body.len, errmsg),
			 RS_OK);
	batch_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_roundtrip, 0, 2);
	tcase_add_test(tc, test_empty_batch);
	tcase_add_loop_test(tc, test_truncate_and_flip, 0, 2);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_validate_rejects);
	suite_add_tcase(s, tc);
	return testutil_run_suite(s);
}
