/*
 * gen_corpus: write the seed corpora of the fuzz targets from the
 * project's own encoders, so every seed is an input the decoders accept
 * (plus a few cut or damaged ones where the decoder has a path for them).
 *
 *   tests/fuzz/gen_corpus DIR    writes DIR/<target>/seed-<what>
 *
 * Seeds are deterministic: running it again rewrites the same files.
 * Crash regressions live next to the seeds (crash-*) and are never
 * written by this program.  docs/fuzzing.md says when to rerun it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp */
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/http.h"
#include "coordinator/identity.h"
#include "director/tsl.h"
#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/json.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/fsm.h"
#include "raftstore/raftguard.h"
#include "raftstore/raftseg.h"
#include "raftstore/wire.h"
#include "storage/backup.h"
#include "storage/checkpoint.h"
#include "storage/journal.h"
#include "storage/record.h"

static const char *out_dir;

static void die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s\n", what);
	exit(1);
}

static void check(int rv, const char *what)
{
	if (rv != RS_OK)
		die(what);
}

static void seed(const char *target, const char *name, const void *p,
		 size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", out_dir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof path, "%s/%s/seed-%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
		die(path);
}

static void seed_buf(const char *target, const char *name,
		     const struct rs_buf *b)
{
	seed(target, name, b->data, b->len);
}

/* A batch of every mutation kind; `big` adds a compressible value so the
 * record encoder picks LZ4. */
static void sample_batch(struct batch *b, uint64_t version, bool big)
{
	static uint8_t value[4096];

	batch_init(b);
	b->version = version;
	b->epoch = 3;
	check(batch_set(b, "alpha", 5, "one", 3, NULL), "batch_set");
	check(batch_clear(b, "beta", 4, NULL), "batch_clear");
	check(batch_clear_range(b, "", 0, "\x01", 1, NULL), "clear_range");
	check(batch_clear_range(b, "k0", 2, "k9", 2, NULL), "clear_range");
	if (big) {
		memset(value, 'v', sizeof value);
		check(batch_set(b, "\xff/bin", 5, value, sizeof value, NULL),
		      "batch_set");
	}
}

/* ---- wire ---- */

static void gen_wire(void)
{
	struct wire_bytes begins[2] = {{(const uint8_t *)"a", 1},
				       {(const uint8_t *)"m", 1}};
	struct wire_bytes ends[2] = {{(const uint8_t *)"c", 1},
				     {(const uint8_t *)"", 0}};
	struct wire_get_req get = {WIRE_READ_AT_VERSION, 42,
				   {(const uint8_t *)"key", 3}};
	struct wire_range_req range = {WIRE_READ_SERIALIZABLE, 0,
				       {(const uint8_t *)"a", 1},
				       {(const uint8_t *)"z", 1}, 100};
	struct wire_watch_req watch = {{(const uint8_t *)"w", 1},
				       {(const uint8_t *)"", 0}, 7};
	struct rs_buf b, stream;
	struct batch batch;
	size_t start;

	rs_buf_init(&b);
	rs_buf_init(&stream);
	check(wire_encode_get(&b, 1, &get), "get");
	seed_buf("wire", "get", &b);
	rs_buf_append(&stream, b.data, b.len);
	b.len = 0;
	check(wire_encode_range(&b, 2, &range), "range");
	seed_buf("wire", "range", &b);
	rs_buf_append(&stream, b.data, b.len);
	b.len = 0;
	sample_batch(&batch, 0, false);
	check(wire_encode_commit(&b, 3, 41, begins, ends, 2, &batch), "commit");
	seed_buf("wire", "commit", &b);
	rs_buf_append(&stream, b.data, b.len);
	batch_free(&batch);
	b.len = 0;
	check(wire_encode_watch(&b, 4, &watch), "watch");
	seed_buf("wire", "watch", &b);
	b.len = 0;
	check(wire_encode_simple(&b, 5, WIRE_GRV), "grv");
	seed_buf("wire", "grv", &b);
	rs_buf_append(&stream, b.data, b.len);
	b.len = 0;
	check(wire_encode_simple(&b, 6, WIRE_STATUS), "status");
	seed_buf("wire", "status", &b);
	b.len = 0;
	check(wire_encode_simple(&b, 7, WIRE_MEMBERS), "members");
	seed_buf("wire", "members", &b);
	b.len = 0;
	{
		struct wire_member_change_req add = {
			WIRE_MEMBER_ADD, 4,
			{(const uint8_t *)"127.0.0.1:7004", 14},
			{(const uint8_t *)"127.0.0.1:7104", 14}};

		check(wire_encode_member_change(&b, 10, &add), "member_change");
		seed_buf("wire", "member_change", &b);
		b.len = 0;
	}
	check(wire_encode_watch_cancel(&b, 11, 4), "watch_cancel");
	seed_buf("wire", "watch_cancel", &b);
	b.len = 0;
	{
		struct wire_term_req term = {
			{(const uint8_t *)"0123456789abcdef", 16}, 2, 17};

		check(wire_encode_term(&b, 12, &term), "term");
		seed_buf("wire", "term", &b);
		b.len = 0;
	}
	/* REGISTER, as the client builds it (raftstore/client.c). */
	start = wire_frame_begin(&b, WIRE_REGISTER, 0, 8);
	wire_put_u64(&b, 2);
	wire_put_bytes(&b, "127.0.0.1:7001", 14);
	wire_put_bytes(&b, "127.0.0.1:8001", 14);
	wire_put_u32(&b, 7);
	wire_put_u64(&b, 99);
	check(wire_frame_end(&b, start), "register");
	seed_buf("wire", "register", &b);
	b.len = 0;
	check(wire_encode_status(&b, WIRE_COMMIT | WIRE_RESPONSE, 3,
				 RS_ECONFLICT, "conflict on key a"),
	      "status response");
	seed_buf("wire", "response-error", &b);
	b.len = 0;
	/* A watch event: status | message | version | mutations. */
	sample_batch(&batch, 0, false);
	start = wire_frame_begin(&b, WIRE_WATCH | WIRE_RESPONSE,
				 WIRE_FLAG_MORE, 4);
	wire_put_status(&b, RS_OK, NULL);
	wire_put_u64(&b, 12);
	wire_put_bytes(&b, batch.body.data, batch.body.len);
	check(wire_frame_end(&b, start), "watch event");
	seed_buf("wire", "watch-event", &b);
	batch_free(&batch);
	b.len = 0;
	/* A GET response: mode | read_version | found | version | value. */
	start = wire_frame_begin(&b, WIRE_GET | WIRE_RESPONSE, 0, 1);
	wire_put_status(&b, RS_OK, NULL);
	wire_put_u8(&b, WIRE_READ_LINEARIZABLE);
	wire_put_u64(&b, 42);
	wire_put_u8(&b, 1);
	wire_put_u64(&b, 40);
	wire_put_bytes(&b, "value", 5);
	check(wire_frame_end(&b, start), "get response");
	seed_buf("wire", "get-response", &b);
	seed_buf("wire", "stream", &stream);
	/* A stream whose last frame is cut short. */
	seed("wire", "stream-torn", stream.data, stream.len - 3);
	rs_buf_free(&b);
	rs_buf_free(&stream);
}

/* ---- journal records and segments ---- */

static void gen_records(struct rs_buf *run)
{
	struct batch batch;
	struct rs_buf b;

	rs_buf_init(&b);
	for (uint64_t v = 1; v <= 3; v++) {
		sample_batch(&batch, v, v == 2);
		b.len = 0;
		check(record_encode_batch(&batch, &b), "record");
		rs_buf_append(run, b.data, b.len);
		batch_free(&batch);
		if (v == 1)
			seed_buf("record", "raw", &b);
		if (v == 2)
			seed_buf("record", "lz4", &b);
	}
	batch_init(&batch);
	batch.version = 4;
	b.len = 0;
	check(record_encode_batch(&batch, &b), "record");
	seed_buf("record", "empty-batch", &b);
	rs_buf_append(run, b.data, b.len);
	batch_free(&batch);
	seed_buf("record", "run", run);
	rs_buf_free(&b);
}

static void segment_header(uint8_t *h, uint64_t seq, uint64_t prev)
{
	memset(h, 0, JOURNAL_HEADER_SIZE);
	memcpy(h, JOURNAL_MAGIC, 8);
	rs_put_u32(h + 8, JOURNAL_FORMAT_VERSION);
	rs_put_u64(h + 16, seq);
	rs_put_u64(h + 24, prev);
	rs_put_u32(h + 32, crc32c(h, 32));
}

static void gen_journal(const struct rs_buf *run)
{
	struct rs_buf seg;
	uint8_t h[JOURNAL_HEADER_SIZE];
	static const uint8_t zeros[64];

	rs_buf_init(&seg);
	segment_header(h, 1, 0);
	seed("journal", "header-only", h, sizeof h);
	rs_buf_append(&seg, h, sizeof h);
	rs_buf_append(&seg, run->data, run->len);
	seed_buf("journal", "segment", &seg);
	seed("journal", "segment-torn", seg.data, seg.len - 5);
	rs_buf_append(&seg, zeros, sizeof zeros);
	seed_buf("journal", "segment-zero-tail", &seg);
	seg.len = 0;
	segment_header(h, 2, 0);
	rs_buf_append(&seg, h, sizeof h);
	rs_buf_append(&seg, run->data, run->len);
	seed_buf("journal", "segment-seq2", &seg);
	rs_buf_free(&seg);
}

/* ---- images and checkpoints ---- */

static void image_put(struct rs_buf *img, const char *key, uint32_t key_len,
		      const void *val, uint32_t val_len)
{
	rs_buf_put_u32(img, key_len);
	rs_buf_append(img, key, key_len);
	rs_buf_put_u32(img, val_len);
	rs_buf_append(img, val, val_len);
}

static void read_file(const char *path, struct rs_buf *out)
{
	FILE *f = fopen(path, "rb");
	uint8_t chunk[4096];
	size_t n;

	if (f == NULL)
		die(path);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rs_buf_append(out, chunk, n);
	fclose(f);
}

static void gen_checkpoint(const char *name, uint64_t version,
			   const struct rs_buf *img, unsigned keys)
{
	char errmsg[RS_ERRMSG_SIZE];
	char dir[] = "/tmp/rs-gen-corpus-XXXXXX";
	char path[4096];
	struct rs_buf file;

	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	check(checkpoint_write(dir, version, 2, keys, img->data, img->len,
			       errmsg),
	      errmsg);
	snprintf(path, sizeof path, "%s/ckpt-%016" PRIx64 ".rsc", dir, version);
	rs_buf_init(&file);
	read_file(path, &file);
	seed_buf("checkpoint", name, &file);
	if (keys > 0)
		seed("checkpoint", "torn", file.data, file.len / 2);
	unlink(path);
	rmdir(dir);
	rs_buf_free(&file);
}

static void gen_images(void)
{
	static uint8_t big[8192];
	struct rs_buf img;

	rs_buf_init(&img);
	seed("image", "empty", "", 0);
	image_put(&img, "a", 1, "1", 1);
	image_put(&img, "b", 1, "", 0);
	image_put(&img, "b\x00", 2, "two", 3);
	image_put(&img, "\xff/system/layout", 15, "x", 1);
	seed_buf("image", "small", &img);
	gen_checkpoint("small", 9, &img, 4);
	memset(big, 'z', sizeof big);
	image_put(&img, "\xff\xff", 2, big, sizeof big);
	seed_buf("image", "big-value", &img);
	gen_checkpoint("big-value", 10, &img, 5);
	img.len = 0;
	gen_checkpoint("empty", 1, &img, 0);
	rs_buf_free(&img);
}

/* ---- layouts ---- */

static void tsl_sample(struct tsl *t, unsigned nodes)
{
	tsl_init(t);
	t->id = 0x1122334455667788ull;
	t->epoch = 7;
	t->recovery_version = 1234;
	t->service_count = nodes;
	for (unsigned i = 0; i < nodes; i++) {
		t->services[i].node_id = i + 1;
		snprintf(t->services[i].addr, TSL_ADDR_SIZE, "10.0.0.%u:7000",
			 i + 1);
		t->services[i].capabilities = TSL_CAP_ALL;
		t->services[i].status = i == 2 ? TSL_STATUS_DOWN : TSL_STATUS_UP;
		t->services[i].heartbeat_age_ms = 100 * i;
	}
	t->director.node_id = 1;
	snprintf(t->director.addr, TSL_ADDR_SIZE, "10.0.0.1:7100");
	t->sequencer = (struct tsl_component){.id = 1, .node_id = 1};
	snprintf(t->sequencer.addr, TSL_ADDR_SIZE, "10.0.0.1:7200");
	t->commit_proxy_count = 2;
	for (unsigned i = 0; i < 2; i++) {
		t->commit_proxies[i] =
			(struct tsl_component){.id = 100 + i, .node_id = 1 + i};
		snprintf(t->commit_proxies[i].addr, TSL_ADDR_SIZE,
			 "node-%u.example:74%02u", 1 + i, i);
	}
	t->resolver_count = 2;
	t->resolvers[0].c = (struct tsl_component){.id = 300, .node_id = 1};
	snprintf(t->resolvers[0].c.addr, TSL_ADDR_SIZE, "[fd00::1]:7300");
	t->resolvers[0].range.end_len = 1;
	t->resolvers[0].range.end[0] = 'm';
	t->resolvers[1].c = (struct tsl_component){.id = 301, .node_id = nodes};
	snprintf(t->resolvers[1].c.addr, TSL_ADDR_SIZE, "10.0.0.%u:7301",
		 nodes);
	t->resolvers[1].range.begin_len = 1;
	t->resolvers[1].range.begin[0] = 'm';
	t->log_count = nodes;
	t->storage_count = nodes;
	for (unsigned i = 0; i < nodes; i++) {
		t->logs[i] = (struct tsl_component){.id = i + 1, .node_id = i + 1};
		snprintf(t->logs[i].addr, TSL_ADDR_SIZE, "10.0.0.%u:7500", i + 1);
		t->storage[i] =
			(struct tsl_component){.id = 2000 + i, .node_id = i + 1};
		snprintf(t->storage[i].addr, TSL_ADDR_SIZE, "10.0.0.%u:7600",
			 i + 1);
	}
}

static int seed_entry(void *ctx, const uint8_t *key, size_t key_len,
		      const uint8_t *val, size_t val_len)
{
	unsigned *n = ctx;
	struct rs_buf b;
	char name[32];

	rs_buf_init(&b);
	rs_buf_put_u8(&b, (uint8_t)key_len);
	rs_buf_append(&b, key, key_len);
	rs_buf_append(&b, val, val_len);
	snprintf(name, sizeof name, "entry-%02u", (*n)++);
	seed_buf("tsl", name, &b);
	rs_buf_free(&b);
	return 0;
}

static void gen_tsl(void)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct tsl *t = malloc(sizeof *t);
	struct rs_buf b;
	unsigned n = 0;

	if (t == NULL)
		die("out of memory");
	rs_buf_init(&b);
	tsl_sample(t, 3);
	check(tsl_encode(t, &b, errmsg), errmsg);
	seed_buf("tsl", "layout-3", &b);
	check(tsl_decompose(t, seed_entry, &n, errmsg), errmsg);
	b.len = 0;
	check(tsl_to_json(t, &b), "tsl_to_json");
	seed_buf("json", "layout", &b);
	b.len = 0;
	tsl_sample(t, 5);
	check(tsl_encode(t, &b, errmsg), errmsg);
	seed_buf("tsl", "layout-5", &b);
	rs_buf_free(&b);
	free(t);
}

/* ---- audit lines and JSON documents ---- */

static void seed_json(const char *target, const char *name, json_t *doc)
{
	struct rs_buf b;

	rs_buf_init(&b);
	check(rs_json_dump_buf(doc, RS_JSON_COMPACT, &b), "json dump");
	seed_buf(target, name, &b);
	json_decref(doc);
}

static json_t *audit_doc(uint64_t seq, const char *event)
{
	json_t *o = json_object();

	check(rs_json_set_str(o, "ts", "2026-11-22T05:00:00.123Z"), "ts");
	check(rs_json_set_u64(o, "node", 1), "node");
	check(rs_json_set_u64(o, "seq", seq), "seq");
	check(rs_json_set_str(o, "event", event), "event");
	return o;
}

static void gen_audit_json(void)
{
	static const char pretty[] =
		"{\n  \"a\": [1, 2],\n  \"b\": \"\\u00ff\"\n}";
	json_t *o, *a;

	seed_json("audit", "node-start", audit_doc(1, "node_start"));
	o = audit_doc(2, "election_won");
	check(rs_json_set_u64(o, "term", 3), "term");
	check(rs_json_set_bytes(o, "addr", "\xff\x00\x7f", 3), "bytes");
	seed_json("audit", "election-won", o);
	o = audit_doc(3, "audit_tail_truncated");
	check(rs_json_set_u64(o, "v", 1), "v");
	check(rs_json_set(o, "detail", json_object()), "detail");
	seed_json("audit", "with-version", o);

	o = json_object();
	check(rs_json_set_u64(o, "id", 1), "id");
	check(rs_json_set_i64(o, "delta", -5), "delta");
	check(rs_json_set_bool(o, "leader", 1), "leader");
	check(rs_json_set_bytes(o, "key", "\x00\x01\xfe\xff", 4), "key");
	check(rs_json_set_str(o, "name", "n\xc3\xa9"), "name");
	a = json_array();
	check(rs_json_push(a, rs_json_u64(9223372036854775807ull)), "push");
	check(rs_json_push(a, json_real(1.5)), "push");
	check(rs_json_push(a, json_null()), "push");
	check(rs_json_set(o, "list", a), "list");
	seed_json("json", "status", o);
	seed("json", "pretty", pretty, sizeof pretty - 1);
}

/* ---- config files ---- */

static void gen_config(void)
{
	static const char full[] =
		"# a node's settings\n"
		"id = 2\n"
		"data-dir = /var/lib/raftstore/n2\n"
		"raft-addr = 127.0.0.1:7002\n"
		"client-addr = 127.0.0.1:8002\n"
		"metrics-addr = 127.0.0.1:9002\n"
		"initial-cluster = 1=127.0.0.1:7001/127.0.0.1:8001,"
		"2=127.0.0.1:7002/127.0.0.1:8002,3=[::1]:7003/[::1]:8003\n"
		"election-timeout-ms = 1000\n"
		"heartbeat-timeout-ms = 100\n"
		"snapshot-threshold = 1024\n"
		"snapshot-trailing = 128\n"
		"batch-count-max = 64\n"
		"batch-delay-us = 200\n"
		"log-level = debug\n"
		"linearizable-reads = barrier\n"
		"ignore-bad-layout = false\n";
	static const char cluster[] =
		"1=node1:7001/node1:8001,2=node2:7002/node2:8002";

	seed("config", "full", full, sizeof full - 1);
	seed("config", "minimal", "id = 1\n  data-dir=/d  \n", 23);
	seed("config", "cluster", cluster, sizeof cluster - 1);
}

/* ---- c-raft segments ---- */

/* One batch of n 8-byte command entries at term 2. */
static void raft_batch(struct rs_buf *b, unsigned n)
{
	size_t start = b->len;
	uint8_t entry[RAFTSEG_ENTRY_HEADER_SIZE];
	uint32_t crc;

	rs_buf_put_u32(b, 0);
	rs_buf_put_u32(b, 0);
	rs_buf_put_u64(b, n);
	for (unsigned i = 0; i < n; i++) {
		memset(entry, 0, sizeof entry);
		rs_put_u64(entry, 2);
		entry[8] = 1;
		rs_put_u32(entry + 12, 8);
		rs_buf_append(b, entry, sizeof entry);
	}
	for (unsigned i = 0; i < n; i++)
		rs_buf_append(b, "payload!", 8);
	crc = raftseg_crc32(0, b->data + start + 8,
			    8 + RAFTSEG_ENTRY_HEADER_SIZE * (size_t)n);
	rs_put_u32(b->data + start, crc);
	crc = raftseg_crc32(0, b->data + start + 16 + 16 * (size_t)n, 8 * n);
	rs_put_u32(b->data + start + 4, crc);
}

static void raft_segment(const char *name, bool is_open, uint64_t first,
			 uint64_t end, unsigned zeros, size_t cut)
{
	struct rs_buf b;

	rs_buf_init(&b);
	rs_buf_put_u8(&b, is_open ? 1 : 0);
	rs_buf_put_u64(&b, first);
	rs_buf_put_u64(&b, end);
	rs_buf_put_u64(&b, RAFTSEG_FORMAT);
	raft_batch(&b, 1);
	raft_batch(&b, 2);
	for (unsigned i = 0; i < zeros; i++)
		rs_buf_put_u8(&b, 0);
	seed("raftseg", name, b.data, b.len - cut);
	rs_buf_free(&b);
}

static void gen_raftseg(void)
{
	raft_segment("closed", false, 1, 3, 0, 0);
	raft_segment("open", true, 4, 0, 32, 0);
	raft_segment("open-torn", true, 4, 0, 0, 5);
	raft_segment("open-short-zeros", true, 1, 0, 8, 0);
}

/* ---- Raft HELLO, identity file ---- */

static const uint8_t sample_cluster_id[16] = {
	0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0xa5,
};

static void seed_hello(const char *name, uint32_t kind, bool known,
		       uint64_t from, uint64_t to, size_t extra)
{
	struct raftguard_msg m = {.kind = kind, .from_id = from, .to_id = to};
	uint8_t buf[RAFTGUARD_MSG_SIZE + 8];

	if (known)
		memcpy(m.cluster_id, sample_cluster_id, sizeof m.cluster_id);
	raftguard_msg_encode(&m, buf);
	/* What c-raft sends next: its own handshake's protocol version. */
	memset(buf + RAFTGUARD_MSG_SIZE, 0, 8);
	buf[RAFTGUARD_MSG_SIZE] = 1;
	seed("hello", name, buf, RAFTGUARD_MSG_SIZE + extra);
}

static void gen_hello(void)
{
	uint8_t buf[RAFTGUARD_MSG_SIZE];
	struct raftguard_msg m = {.kind = RAFTGUARD_KIND_HELLO,
				  .from_id = 2, .to_id = 1};

	seed_hello("hello", RAFTGUARD_KIND_HELLO, true, 2, 1, 0);
	seed_hello("hello-unknown-cluster", RAFTGUARD_KIND_HELLO, false, 3, 1,
		   0);
	seed_hello("reply-ok", RAFTGUARD_KIND_REPLY_OK, true, 1, 2, 0);
	seed_hello("refused", RAFTGUARD_KIND_REFUSED, false, 1, 2, 0);
	seed_hello("hello-then-raft", RAFTGUARD_KIND_HELLO, true, 2, 1, 8);
	/* A damaged one: the CRC no longer matches. */
	raftguard_msg_encode(&m, buf);
	buf[33] ^= 0x40;
	seed("hello", "bad-crc", buf, sizeof buf);
}

static void gen_identity(void)
{
	struct identity id = {.node_id = 3};
	uint8_t buf[IDENTITY_SIZE + 4];

	identity_encode(&id, buf);
	seed("identity", "unknown-cluster", buf, IDENTITY_SIZE);
	memcpy(id.cluster_id, sample_cluster_id, sizeof id.cluster_id);
	identity_encode(&id, buf);
	seed("identity", "known-cluster", buf, IDENTITY_SIZE);
	seed("identity", "torn", buf, IDENTITY_SIZE / 2);
	/* A later version, 4 bytes longer: refused as a version. */
	rs_put_u32(buf + 8, IDENTITY_FORMAT_VERSION + 1);
	memset(buf + IDENTITY_SIZE, 0, 4);
	seed("identity", "version-2", buf, IDENTITY_SIZE + 4);
}

/* ---- REGISTER bodies and the client's answers ---- */

static void register_body(struct rs_buf *b, uint64_t id, const char *raft,
			  const char *client, uint64_t applied)
{
	wire_put_u64(b, id);
	wire_put_bytes(b, raft, strlen(raft));
	wire_put_bytes(b, client, strlen(client));
	wire_put_u32(b, TSL_CAP_ALL);
	wire_put_u64(b, applied);
}

static void gen_register(void)
{
	struct rs_buf b;

	rs_buf_init(&b);
	register_body(&b, 2, "127.0.0.1:7002", "127.0.0.1:8002", 99);
	seed_buf("register", "member", &b);
	b.len = 0;
	register_body(&b, 7, "[fd00::7]:7007", "node-7.example:8007", 0);
	seed_buf("register", "stranger", &b);
	b.len = 0;
	register_body(&b, 1, "", "", 1);
	seed_buf("register", "empty-addrs", &b);
	rs_buf_free(&b);
}

/* One seed of the client target: the request type, then the answer's
 * body (its head and the typed fields put by fill). */
static void seed_answer(const char *name, uint8_t type, int status,
			const char *msg, const struct rs_buf *fields)
{
	struct rs_buf b;

	rs_buf_init(&b);
	rs_buf_put_u8(&b, type);
	wire_put_status(&b, status, msg);
	if (fields != NULL)
		rs_buf_append(&b, fields->data, fields->len);
	seed_buf("client", name, &b);
	rs_buf_free(&b);
}

/* GET and RANGE answers start alike: mode | read_version | found/more. */
static void answer_head(struct rs_buf *f, uint8_t mode, uint64_t version,
			uint8_t flag)
{
	wire_put_u8(f, mode);
	wire_put_u64(f, version);
	wire_put_u8(f, flag);
}

static void gen_client(void)
{
	static const char status_doc[] =
		"{\"id\":1,\"leader_client_addr\":\"127.0.0.1:8001\"}";
	struct rs_buf f;

	rs_buf_init(&f);
	answer_head(&f, WIRE_READ_LINEARIZABLE, 42, 1);
	wire_put_u64(&f, 40);
	wire_put_bytes(&f, "value", 5);
	seed_answer("get", WIRE_GET, RS_OK, NULL, &f);
	f.len = 0;
	answer_head(&f, WIRE_READ_SERIALIZABLE, 50, 1);
	wire_put_u32(&f, 2);
	wire_put_bytes(&f, "a", 1);
	wire_put_bytes(&f, "1", 1);
	wire_put_u64(&f, 10);
	wire_put_bytes(&f, "b\xff", 2);
	wire_put_bytes(&f, "", 0);
	wire_put_u64(&f, 11);
	seed_answer("range", WIRE_RANGE, RS_OK, NULL, &f);
	f.len = 0;
	answer_head(&f, WIRE_READ_AT_VERSION, 50, 0);
	wire_put_u32(&f, 0);
	seed_answer("range-empty", WIRE_RANGE, RS_OK, NULL, &f);
	f.len = 0;
	wire_put_u64(&f, 77);
	seed_answer("grv", WIRE_GRV, RS_OK, NULL, &f);
	seed_answer("commit", WIRE_COMMIT, RS_OK, NULL, &f);
	f.len = 0;
	wire_put_bytes(&f, status_doc, sizeof status_doc - 1);
	seed_answer("status", WIRE_STATUS, RS_OK, NULL, &f);
	seed_answer("register", WIRE_REGISTER, RS_OK, NULL, &f);
	seed_answer("member-change", WIRE_MEMBER_CHANGE, RS_OK, NULL, &f);
	f.len = 0;
	wire_put_u64(&f, 3);
	wire_put_u64(&f, 17);
	seed_answer("term", WIRE_TERM, RS_OK, NULL, &f);
	seed_answer("refused", WIRE_COMMIT, RS_ECONFLICT, "conflict on key a",
		    NULL);
	rs_buf_free(&f);
}

/* ---- HTTP request heads ---- */

static void seed_text(const char *target, const char *name, const char *s)
{
	seed(target, name, s, strlen(s));
}

static void gen_http(void)
{
	char *big;

	seed_text("http", "get-metrics",
		  "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
		  "User-Agent: Prometheus/2.45\r\nAccept: text/plain\r\n\r\n");
	seed_text("http", "head-status-query",
		  "\r\nHEAD /status?pretty=1 HTTP/1.0\nX-A:\tb\n\n");
	seed_text("http", "absolute-form",
		  "GET http://localhost:9001/metrics HTTP/1.1\r\n\r\n");
	seed_text("http", "http2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
	seed_text("http", "partial", "GET /metrics HTTP/1.1\r\nHost: a");
	seed_text("http", "bad-header", "POST / HTTP/1.1\r\nBad Header: x\r\n\r\n");
	seed_text("http", "pipelined",
		  "GET /metrics HTTP/1.1\r\n\r\nGET /status HTTP/1.1\r\n\r\n");
	/* A target longer than the head may be: also makes libFuzzer try
	 * inputs past HTTP_HEAD_SIZE_MAX (its length limit follows the
	 * longest seed). */
	big = malloc(HTTP_HEAD_SIZE_MAX + 32);
	if (big == NULL)
		die("out of memory");
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', HTTP_HEAD_SIZE_MAX);
	memcpy(big + 5 + HTTP_HEAD_SIZE_MAX, " HTTP/1.1\r\n\r\n", 13);
	seed("http", "too-large", big, HTTP_HEAD_SIZE_MAX + 18);
	free(big);
}

/* ---- Raft entry payloads ---- */

static void seed_entry_payload(const char *name, const struct batch *b,
			       uint8_t kind)
{
	struct raft_buffer out;

	check(fsm_entry_encode(b, kind, &out), "fsm_entry_encode");
	seed("entry", name, out.base, out.len);
	raft_free(out.base);
}

static void gen_entries(void)
{
	struct batch batch;

	sample_batch(&batch, 7, false);
	seed_entry_payload("batch", &batch, FSM_ENTRY_BATCH);
	batch_free(&batch);
	sample_batch(&batch, 8, true);
	seed_entry_payload("batch-lz4", &batch, FSM_ENTRY_BATCH);
	batch_free(&batch);
	batch_init(&batch);
	batch.version = 9;
	batch.epoch = 4;
	seed_entry_payload("epoch", &batch, FSM_ENTRY_EPOCH);
	batch_free(&batch);
}

/* Snapshot files (storage/backup.h): empty, a few keys and a system key,
 * and the same cut inside its trailer.  (Several chunks need over 1 MiB:
 * the unit test covers them, and the fuzzer builds them from these.) */
static void gen_backup_file(const char *name, unsigned keys, uint32_t vlen,
			    size_t cut)
{
	char errmsg[RS_ERRMSG_SIZE], key[32];
	char dir[] = "/tmp/rs-gen-corpus-XXXXXX";
	char path[4096];
	struct backup_header h = {.version = 1000, .epoch = 2, .created_ms = 1};
	struct backup_writer w;
	uint8_t val[64];
	struct rs_buf file;

	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(path, sizeof path, "%s/snap", dir);
	check(backup_writer_open(&w, path, &h, errmsg), errmsg);
	for (unsigned i = 0; i < keys; i++) {
		int n = snprintf(key, sizeof key, "key-%04u", i);
		memset(val, 'a' + (int)(i % 26), vlen);
		check(backup_writer_add(&w, (uint8_t *)key, (uint32_t)n, val, vlen,
					errmsg),
		      errmsg);
	}
	if (keys > 0)
		check(backup_writer_add(&w, (const uint8_t *)"\xff/system/epoch", 14,
					(const uint8_t *)"\2\0\0\0\0\0\0\0", 8,
					errmsg),
		      errmsg);
	check(backup_writer_finish(&w, NULL, errmsg), errmsg);
	rs_buf_init(&file);
	read_file(path, &file);
	seed("backup", name, file.data, file.len - cut);
	unlink(path);
	rmdir(dir);
	rs_buf_free(&file);
}

static void gen_backup(void)
{
	gen_backup_file("empty", 0, 0, 0);
	gen_backup_file("small", 5, 3, 0);
	gen_backup_file("torn", 5, 3, 7);
}

int main(int argc, char **argv)
{
	struct rs_buf run;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
		die(out_dir);
	rs_buf_init(&run);
	gen_wire();
	gen_records(&run);
	gen_journal(&run);
	gen_images();
	gen_tsl();
	gen_audit_json();
	gen_config();
	gen_raftseg();
	gen_hello();
	gen_identity();
	gen_register();
	gen_client();
	gen_http();
	gen_entries();
	gen_backup();
	rs_buf_free(&run);
	return 0;
}
