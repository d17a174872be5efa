/* wire: see wire.h. */
#include "raftstore/wire.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"

/* The length field counts everything after itself, so the smallest legal
 * value is the rest of the header with an empty body. */
#define WIRE_LENGTH_MIN (WIRE_HEADER_SIZE - 4u)
#define WIRE_TYPE_MASK 0x7fu
#define WIRE_FLAGS_KNOWN WIRE_FLAG_MORE

static const char *const wire_type_names[] = {
	"?", "GET", "RANGE", "GRV", "COMMIT", "WATCH", "STATUS", "MEMBERS",
	"?" /* 8: reserved */, "REGISTER", "MEMBER_CHANGE", "WATCH_CANCEL",
	"TERM",
};

const char *wire_type_name(uint8_t type)
{
	unsigned t = type & WIRE_TYPE_MASK;

	if (t < WIRE_GET || t > WIRE_TYPE_LAST)
		return wire_type_names[0];
	return wire_type_names[t];
}

/* ---- frames ---- */

/* The header checks that need the whole frame; version and crc matched. */
static int wire_frame_fill(const uint8_t *p, uint32_t length,
			   struct wire_frame *f, char *errmsg)
{
	uint8_t type = p[9];
	uint16_t flags = (uint16_t)(p[10] | p[11] << 8);
	unsigned t = type & WIRE_TYPE_MASK;

	assert(length >= WIRE_LENGTH_MIN && length <= WIRE_FRAME_MAX);
	assert(p[8] == WIRE_VERSION);
	if (t < WIRE_GET || t > WIRE_TYPE_LAST) {
		rs_errmsg_printf(errmsg, "unknown frame type 0x%02x", type);
		return RS_EPROTO;
	}
	/* An unknown flag may change how the body reads; guessing is worse
	 * than refusing. */
	if ((flags & ~WIRE_FLAGS_KNOWN) != 0) {
		rs_errmsg_printf(errmsg, "unknown frame flags 0x%04x", flags);
		return RS_EPROTO;
	}
	f->type = type;
	f->flags = flags;
	f->request_id = rs_get_u64(p + 12);
	f->body = p + WIRE_HEADER_SIZE;
	f->body_len = length - WIRE_LENGTH_MIN;
	f->total_len = 4 + (size_t)length;
	return RS_OK;
}

/* Version, then crc, of a frame that is all present.  Version first: a
 * newer peer may checksum differently, and "unsupported version" is the
 * message that helps its operator. */
static int wire_frame_verify(const uint8_t *p, uint32_t length, char *errmsg)
{
	uint32_t stored, actual;

	assert(length >= WIRE_LENGTH_MIN);
	if (p[8] != WIRE_VERSION) {
		rs_errmsg_printf(errmsg, "unsupported wire version %u (this node speaks %u)",
				 p[8], WIRE_VERSION);
		return RS_EPROTO;
	}
	stored = rs_get_u32(p + 4);
	actual = crc32c(p + 8, (size_t)length - 4);
	if (stored != actual) {
		rs_errmsg_printf(errmsg,
				 "frame checksum mismatch (stored %08x, computed %08x)",
				 stored, actual);
		return RS_EPROTO;
	}
	return RS_OK;
}

int wire_frame_parse(const uint8_t *p, size_t avail, struct wire_frame *f,
		     char *errmsg)
{
	uint32_t length;
	int rv;

	assert(f != NULL);
	assert(p != NULL || avail == 0);
	memset(f, 0, sizeof *f);
	if (avail < 4)
		return RS_ETORN;
	length = rs_get_u32(p);
	/* Judge the length now: a peer announcing 4 GiB must be cut off
	 * before we buffer any of it. */
	if (length < WIRE_LENGTH_MIN || length > WIRE_FRAME_MAX) {
		rs_errmsg_printf(errmsg, "frame length %u outside [%u, %u]",
				 length, WIRE_LENGTH_MIN, WIRE_FRAME_MAX);
		return RS_EPROTO;
	}
	if (avail - 4 < length)
		return RS_ETORN;
	rv = wire_frame_verify(p, length, errmsg);
	if (rv == RS_OK)
		rv = wire_frame_fill(p, length, f, errmsg);
	if (rv != RS_OK)
		return rv; /* fill writes *f only on success: still zeroed */
	assert(f->total_len <= avail);
	assert(f->total_len == WIRE_HEADER_SIZE + (size_t)f->body_len);
	return RS_OK;
}

size_t wire_frame_begin(struct rs_buf *out, uint8_t type, uint16_t flags,
			uint64_t request_id)
{
	size_t start = out->len;
	uint8_t *hdr;

	assert((type & WIRE_TYPE_MASK) >= WIRE_GET &&
	       (type & WIRE_TYPE_MASK) <= WIRE_TYPE_LAST);
	assert((flags & ~WIRE_FLAGS_KNOWN) == 0);
	if (rs_buf_reserve(out, WIRE_HEADER_SIZE) != RS_OK)
		return WIRE_FRAME_NOMEM;
	hdr = out->data + start;
	rs_put_u32(hdr, 0); /* length and crc: filled by wire_frame_end */
	rs_put_u32(hdr + 4, 0);
	hdr[8] = WIRE_VERSION;
	hdr[9] = type;
	hdr[10] = (uint8_t)flags;
	hdr[11] = (uint8_t)(flags >> 8);
	rs_put_u64(hdr + 12, request_id);
	out->len += WIRE_HEADER_SIZE;
	return start;
}

int wire_frame_end(struct rs_buf *out, size_t start)
{
	size_t length;
	uint8_t *hdr;

	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	assert(start + WIRE_HEADER_SIZE <= out->len);
	length = out->len - start - 4;
	if (length > WIRE_FRAME_MAX) {
		out->len = start;
		return RS_ETOOLARGE;
	}
	hdr = out->data + start;
	/* Catches an end paired with the wrong begin. */
	assert(hdr[8] == WIRE_VERSION);
	rs_put_u32(hdr, (uint32_t)length);
	rs_put_u32(hdr + 4, crc32c(hdr + 8, length - 4));
	assert(rs_get_u32(hdr) >= WIRE_LENGTH_MIN);
	return RS_OK;
}

/* ---- put helpers ---- */

int wire_put_u8(struct rs_buf *out, uint8_t v)
{
	return rs_buf_put_u8(out, v);
}

int wire_put_u32(struct rs_buf *out, uint32_t v)
{
	return rs_buf_put_u32(out, v);
}

int wire_put_u64(struct rs_buf *out, uint64_t v)
{
	return rs_buf_put_u64(out, v);
}

int wire_put_bytes(struct rs_buf *out, const void *p, size_t len)
{
	size_t before = out->len;

	assert(p != NULL || len == 0);
	if (len > UINT32_MAX)
		return RS_ETOOLARGE;
	/* Reserve both parts first so a failure leaves out unchanged. */
	if (rs_buf_reserve(out, 4 + len) != RS_OK)
		return RS_ENOMEM;
	rs_buf_put_u32(out, (uint32_t)len);
	rs_buf_append(out, p, len);
	assert(out->len == before + 4 + len);
	(void)before; /* only the assertion reads it */
	return RS_OK;
}

int wire_put_status(struct rs_buf *out, int status, const char *message)
{
	size_t before = out->len;
	size_t msg_len;
	int rv;

	assert(status >= 0 && status < RS__ERROR_COUNT);
	/* The protocol promises an empty message with ok; a stale errmsg
	 * left in a caller's buffer must not leak out. */
	if (status == RS_OK || message == NULL)
		message = "";
	msg_len = strlen(message);
	rv = rs_buf_reserve(out, 8 + msg_len);
	if (rv != RS_OK)
		return rv;
	rs_buf_put_u32(out, (uint32_t)status);
	rv = wire_put_bytes(out, message, msg_len);
	assert(rv == RS_OK);
	assert(out->len == before + 8 + msg_len);
	(void)before;
	return rv;
}

/* ---- reader ---- */

void wire_reader_init(struct wire_reader *r, const uint8_t *p, size_t len)
{
	assert(r != NULL);
	assert(p != NULL || len == 0);
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->failed = false;
}

/* True (and consumes n) if n bytes remain; else marks the reader failed. */
static bool wire_reader_take(struct wire_reader *r, size_t n)
{
	assert(r->pos <= r->len);
	if (r->failed || r->len - r->pos < n) {
		r->failed = true;
		return false;
	}
	r->pos += n;
	return true;
}

uint8_t wire_get_u8(struct wire_reader *r)
{
	if (!wire_reader_take(r, 1))
		return 0;
	return r->p[r->pos - 1];
}

uint32_t wire_get_u32(struct wire_reader *r)
{
	if (!wire_reader_take(r, 4))
		return 0;
	return rs_get_u32(r->p + r->pos - 4);
}

uint64_t wire_get_u64(struct wire_reader *r)
{
	if (!wire_reader_take(r, 8))
		return 0;
	return rs_get_u64(r->p + r->pos - 8);
}

struct wire_bytes wire_get_bytes(struct wire_reader *r, uint32_t max_len)
{
	struct wire_bytes b = {NULL, 0};
	size_t at = r->pos;
	uint32_t len = wire_get_u32(r);

	if (r->failed)
		return b;
	if (len > max_len || !wire_reader_take(r, len)) {
		r->failed = true;
		r->pos = at; /* a failed reader never points past its data */
		return b;
	}
	b.p = r->p + r->pos - len;
	b.len = len;
	assert(r->pos <= r->len);
	return b;
}

bool wire_reader_done(const struct wire_reader *r)
{
	assert(r->pos <= r->len);
	return !r->failed && r->pos == r->len;
}

/* ---- typed decoding ---- */

/* Decoding state: the reader plus the first error, so that each decoder
 * reads its fields in a straight line and reports once, at the end.  The
 * first failure wins because later fields read from a failed reader only
 * say "truncated", which would hide the real cause. */
struct wire_dec {
	struct wire_reader r;
	int rv;
	char *errmsg;
};

__attribute__((format(printf, 3, 4))) static void
wire_dec_fail(struct wire_dec *d, int rv, const char *fmt, ...)
{
	char msg[RS_ERRMSG_SIZE];
	va_list ap;

	assert(rv == RS_EPROTO || rv == RS_ETOOLARGE);
	d->r.failed = true;
	if (d->rv != RS_OK)
		return;
	d->rv = rv;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rs_errmsg_printf(d->errmsg, "%s", msg);
}

static size_t wire_dec_left(const struct wire_dec *d)
{
	return d->r.len - d->r.pos;
}

static void wire_dec_start(struct wire_dec *d, const struct wire_frame *f,
			   uint8_t type, char *errmsg)
{
	assert(f != NULL);
	assert(f->body != NULL || f->body_len == 0);
	wire_reader_init(&d->r, f->body, f->body_len);
	d->rv = RS_OK;
	d->errmsg = errmsg;
	/* The server dispatches on the type, but a peer may send a request
	 * type with the response bit set; that is its error, not ours. */
	if (f->type != type)
		wire_dec_fail(d, RS_EPROTO, "frame type 0x%02x is not a %s request",
			      f->type, wire_type_name(type));
}

/* Reject trailing bytes, prefix the message with the request name, and
 * leave *m zeroed on error so that nothing half-decoded is used. */
static int wire_dec_finish(struct wire_dec *d, uint8_t type, void *m,
			   size_t m_size)
{
	if (d->rv == RS_OK && wire_dec_left(d) != 0)
		wire_dec_fail(d, RS_EPROTO, "%zu trailing bytes after the body",
			      wire_dec_left(d));
	if (d->rv != RS_OK) {
		rs_errmsg_wrapf(d->errmsg, "%s request", wire_type_name(type));
		memset(m, 0, m_size);
		return d->rv;
	}
	assert(wire_reader_done(&d->r));
	return RS_OK;
}

static void wire_dec_need(struct wire_dec *d, const char *field, size_t n)
{
	if (d->rv == RS_OK && wire_dec_left(d) < n)
		wire_dec_fail(d, RS_EPROTO, "%s: truncated (%zu of %zu bytes)",
			      field, wire_dec_left(d), n);
}

static uint8_t wire_dec_u8(struct wire_dec *d, const char *field)
{
	wire_dec_need(d, field, 1);
	return wire_get_u8(&d->r);
}

static uint32_t wire_dec_u32(struct wire_dec *d, const char *field)
{
	wire_dec_need(d, field, 4);
	return wire_get_u32(&d->r);
}

static uint64_t wire_dec_u64(struct wire_dec *d, const char *field)
{
	wire_dec_need(d, field, 8);
	return wire_get_u64(&d->r);
}

/* A length-prefixed field.  A length that runs past the body is malformed
 * (RS_EPROTO); one that is present but over `max` is a size limit
 * (RS_ETOOLARGE), which tells a client its data, not its code, is wrong. */
static struct wire_bytes wire_dec_bytes(struct wire_dec *d, const char *field,
					uint32_t max, const char *limit)
{
	struct wire_bytes none = {NULL, 0}, b;
	uint32_t len;

	wire_dec_need(d, field, 4);
	if (d->rv != RS_OK)
		return none;
	len = rs_get_u32(d->r.p + d->r.pos);
	if (len > wire_dec_left(d) - 4) {
		wire_dec_fail(d, RS_EPROTO, "%s: %u bytes declared, only %zu remain",
			      field, len, wire_dec_left(d) - 4);
		return none;
	}
	if (len > max) {
		wire_dec_fail(d, RS_ETOOLARGE, "%s of %u bytes exceeds the %u-byte %s",
			      field, len, max, limit);
		return none;
	}
	b = wire_get_bytes(&d->r, max);
	assert(!d->r.failed && b.len == len);
	return b;
}

static struct wire_bytes wire_dec_key(struct wire_dec *d, const char *field,
				      bool allow_empty)
{
	struct wire_bytes b = wire_dec_bytes(d, field, RS_KEY_SIZE_MAX,
					     "key limit (RS_KEY_SIZE_MAX)");

	if (d->rv == RS_OK && b.len == 0 && !allow_empty)
		wire_dec_fail(d, RS_EPROTO, "%s: empty", field);
	return b;
}

static uint8_t wire_dec_mode(struct wire_dec *d)
{
	uint8_t mode = wire_dec_u8(d, "mode");

	if (d->rv == RS_OK && mode > WIRE_READ_AT_VERSION)
		wire_dec_fail(d, RS_EPROTO, "mode: unknown read mode %u", mode);
	return mode;
}

int wire_decode_get(const struct wire_frame *f, struct wire_get_req *m,
		    char *errmsg)
{
	struct wire_dec d;

	assert(m != NULL);
	wire_dec_start(&d, f, WIRE_GET, errmsg);
	m->mode = wire_dec_mode(&d);
	m->read_version = wire_dec_u64(&d, "read_version");
	m->key = wire_dec_key(&d, "key", false);
	return wire_dec_finish(&d, WIRE_GET, m, sizeof *m);
}

int wire_decode_range(const struct wire_frame *f, struct wire_range_req *m,
		      char *errmsg)
{
	struct wire_dec d;

	assert(m != NULL);
	wire_dec_start(&d, f, WIRE_RANGE, errmsg);
	m->mode = wire_dec_mode(&d);
	m->read_version = wire_dec_u64(&d, "read_version");
	m->begin = wire_dec_key(&d, "begin", true);
	m->end = wire_dec_key(&d, "end", true);
	m->limit = wire_dec_u32(&d, "limit");
	if (d.rv == RS_OK && m->limit > WIRE_RANGE_LIMIT_MAX)
		wire_dec_fail(&d, RS_ETOOLARGE,
			      "limit of %u rows exceeds the %u-row range limit (WIRE_RANGE_LIMIT_MAX)",
			      m->limit, WIRE_RANGE_LIMIT_MAX);
	return wire_dec_finish(&d, WIRE_RANGE, m, sizeof *m);
}

int wire_decode_watch(const struct wire_frame *f, struct wire_watch_req *m,
		      char *errmsg)
{
	struct wire_dec d;

	assert(m != NULL);
	wire_dec_start(&d, f, WIRE_WATCH, errmsg);
	m->begin = wire_dec_key(&d, "begin", true);
	m->end = wire_dec_key(&d, "end", true);
	m->from_version = wire_dec_u64(&d, "from_version");
	return wire_dec_finish(&d, WIRE_WATCH, m, sizeof *m);
}

int wire_decode_watch_cancel(const struct wire_frame *f, uint64_t *watch_id,
			     char *errmsg)
{
	struct wire_dec d;

	assert(watch_id != NULL);
	wire_dec_start(&d, f, WIRE_WATCH_CANCEL, errmsg);
	*watch_id = wire_dec_u64(&d, "watch_id");
	return wire_dec_finish(&d, WIRE_WATCH_CANCEL, watch_id, sizeof *watch_id);
}

int wire_decode_member_change(const struct wire_frame *f,
			      struct wire_member_change_req *m, char *errmsg)
{
	struct wire_dec d;
	bool add;

	assert(m != NULL);
	wire_dec_start(&d, f, WIRE_MEMBER_CHANGE, errmsg);
	m->op = wire_dec_u8(&d, "op");
	m->node_id = wire_dec_u64(&d, "node_id");
	m->raft_addr = wire_dec_bytes(&d, "raft_addr", WIRE_MEMBER_ADDR_MAX,
				      "address limit");
	m->client_addr = wire_dec_bytes(&d, "client_addr", WIRE_MEMBER_ADDR_MAX,
					"address limit");
	add = m->op == WIRE_MEMBER_ADD;
	if (d.rv == RS_OK && (m->op < WIRE_MEMBER_ADD || m->op > WIRE_MEMBER_REMOVE))
		wire_dec_fail(&d, RS_EPROTO, "op: unknown value %u", m->op);
	else if (d.rv == RS_OK && m->node_id == 0)
		wire_dec_fail(&d, RS_EPROTO, "node_id: 0 is not a node id");
	else if (d.rv == RS_OK &&
		 ((m->raft_addr.len > 0) != add || (m->client_addr.len > 0) != add))
		wire_dec_fail(&d, RS_EPROTO, "addresses: %s",
			      add ? "ADD needs both" : "only ADD carries them");
	return wire_dec_finish(&d, WIRE_MEMBER_CHANGE, m, sizeof *m);
}

int wire_decode_term(const struct wire_frame *f, struct wire_term_req *m,
		     char *errmsg)
{
	struct wire_dec d;

	assert(m != NULL);
	wire_dec_start(&d, f, WIRE_TERM, errmsg);
	m->cluster_id = wire_dec_bytes(&d, "cluster_id", WIRE_CLUSTER_ID_SIZE,
				       "cluster ID size");
	m->leader_id = wire_dec_u64(&d, "leader_id");
	m->term = wire_dec_u64(&d, "term");
	if (d.rv == RS_OK && m->cluster_id.len != WIRE_CLUSTER_ID_SIZE)
		wire_dec_fail(&d, RS_EPROTO, "cluster_id: %u bytes, not %u",
			      m->cluster_id.len, WIRE_CLUSTER_ID_SIZE);
	else if (d.rv == RS_OK && m->leader_id == 0)
		wire_dec_fail(&d, RS_EPROTO, "leader_id: 0 is not a node id");
	return wire_dec_finish(&d, WIRE_TERM, m, sizeof *m);
}

int wire_decode_empty(const struct wire_frame *f, char *errmsg)
{
	assert(f != NULL);
	assert(f->body != NULL || f->body_len == 0);
	if (f->body_len != 0) {
		rs_errmsg_printf(errmsg, "%s request: %u trailing bytes after the body",
				 wire_type_name(f->type), f->body_len);
		return RS_EPROTO;
	}
	return RS_OK;
}

/* batch_body_validate calls every problem corruption.  A client that sent
 * an oversized key or value deserves RS_ETOOLARGE, so look for the first
 * mutation whose (present) key or value breaks a size limit.  Anything
 * malformed is left for the validator to name. */
static int wire_mutation_limits(const uint8_t *p, size_t len, char *msg)
{
	uint32_t count = len >= 4 ? rs_get_u32(p) : 0;
	size_t pos = 4;

	assert(p != NULL || len == 0);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t type;
		uint32_t a_len, b_len, b_max;

		if (len - pos < 5)
			return RS_OK;
		type = p[pos];
		a_len = rs_get_u32(p + pos + 1);
		pos += 5;
		if ((type != MUT_SET && type != MUT_CLEAR &&
		     type != MUT_CLEAR_RANGE) ||
		    len - pos < (size_t)a_len + 4)
			return RS_OK;
		if (a_len > RS_KEY_SIZE_MAX) {
			rs_errmsg_printf(msg, "mutation %u: key of %u bytes exceeds the %u-byte key limit (RS_KEY_SIZE_MAX)",
					 i, a_len, RS_KEY_SIZE_MAX);
			return RS_ETOOLARGE;
		}
		b_len = rs_get_u32(p + pos + a_len);
		pos += (size_t)a_len + 4;
		b_max = type == MUT_SET ? RS_VALUE_SIZE_MAX : RS_KEY_SIZE_MAX;
		if (len - pos < b_len)
			return RS_OK;
		if (type != MUT_CLEAR && b_len > b_max) {
			rs_errmsg_printf(msg, "mutation %u: %s of %u bytes exceeds the %u-byte %s",
					 i, type == MUT_SET ? "value" : "range end",
					 b_len, b_max, type == MUT_SET ?
					 "value limit (RS_VALUE_SIZE_MAX)" :
					 "key limit (RS_KEY_SIZE_MAX)");
			return RS_ETOOLARGE;
		}
		pos += b_len;
	}
	assert(pos <= len || count == 0);
	return RS_OK;
}

static void wire_dec_mutations(struct wire_dec *d, struct wire_bytes b)
{
	char msg[RS_ERRMSG_SIZE];

	if (d->rv != RS_OK)
		return;
	if (batch_body_validate(b.p, b.len, msg) == RS_OK)
		return;
	if (wire_mutation_limits(b.p, b.len, msg) == RS_ETOOLARGE)
		wire_dec_fail(d, RS_ETOOLARGE, "mutations: %s", msg);
	else
		wire_dec_fail(d, RS_EPROTO, "mutations: %s", msg);
	assert(d->rv != RS_OK);
}

/* n_ranges: each range takes at least 8 bytes (two empty strings), so a
 * count the body cannot hold is malformed before it is too large. */
static uint32_t wire_dec_range_count(struct wire_dec *d)
{
	uint32_t n = wire_dec_u32(d, "n_ranges");

	if (d->rv != RS_OK)
		return 0;
	if (n > wire_dec_left(d) / 8) {
		wire_dec_fail(d, RS_EPROTO, "n_ranges: %u ranges declared, only %zu bytes remain",
			      n, wire_dec_left(d));
		return 0;
	}
	if (n > WIRE_READ_RANGES_MAX) {
		wire_dec_fail(d, RS_ETOOLARGE, "n_ranges of %u exceeds the %u-range read-conflict limit (WIRE_READ_RANGES_MAX)",
			      n, WIRE_READ_RANGES_MAX);
		return 0;
	}
	return n;
}

int wire_decode_commit(const struct wire_frame *f, struct wire_commit_req *m,
		       char *errmsg)
{
	struct wire_dec d;
	char field[64];
	size_t start;

	assert(m != NULL);
	wire_dec_start(&d, f, WIRE_COMMIT, errmsg);
	m->read_version = wire_dec_u64(&d, "read_version");
	m->n_ranges = wire_dec_range_count(&d);
	start = d.r.pos;
	for (uint32_t i = 0; i < m->n_ranges && d.rv == RS_OK; i++) {
		snprintf(field, sizeof field, "read range %u begin", i);
		wire_dec_key(&d, field, true);
		snprintf(field, sizeof field, "read range %u end", i);
		wire_dec_key(&d, field, true);
	}
	m->ranges = d.r.p + start;
	m->ranges_len = d.r.pos - start;
	m->mutations = wire_dec_bytes(&d, "mutations", RS_BATCH_SIZE_MAX,
				      "transaction limit (RS_BATCH_SIZE_MAX)");
	wire_dec_mutations(&d, m->mutations);
	return wire_dec_finish(&d, WIRE_COMMIT, m, sizeof *m);
}

bool wire_commit_next_range(const struct wire_commit_req *m, size_t *pos,
			    struct wire_bytes *begin, struct wire_bytes *end)
{
	struct wire_reader r;

	assert(m != NULL && pos != NULL);
	assert(*pos <= m->ranges_len);
	if (*pos >= m->ranges_len)
		return false;
	wire_reader_init(&r, m->ranges, m->ranges_len);
	r.pos = *pos;
	*begin = wire_get_bytes(&r, RS_KEY_SIZE_MAX);
	*end = wire_get_bytes(&r, RS_KEY_SIZE_MAX);
	/* wire_decode_commit checked every range. */
	assert(!r.failed);
	*pos = r.pos;
	return true;
}

/* ---- encoding ---- */

/* Finish a frame started at `start`: on any earlier error or a failing end,
 * cut out back to start so no half frame is ever left behind. */
static int wire_encode_finish(struct rs_buf *out, size_t start, int rv)
{
	assert(start != WIRE_FRAME_NOMEM);
	assert(start <= out->len);
	if (rv == RS_OK)
		rv = wire_frame_end(out, start);
	if (rv != RS_OK)
		out->len = start;
	return rv;
}

int wire_encode_simple(struct rs_buf *out, uint64_t id, uint8_t type)
{
	size_t start;

	assert(out != NULL);
	assert(type == WIRE_GRV || type == WIRE_STATUS || type == WIRE_MEMBERS);
	start = wire_frame_begin(out, type, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	return wire_encode_finish(out, start, RS_OK);
}

int wire_encode_status(struct rs_buf *out, uint8_t type, uint64_t id,
		       int status, const char *message)
{
	size_t start;

	assert(out != NULL);
	assert(status >= 0 && status < RS__ERROR_COUNT);
	start = wire_frame_begin(out, type | WIRE_RESPONSE, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	return wire_encode_finish(out, start,
				  wire_put_status(out, status, message));
}

/* Keys the encoder would send must be keys the decoder accepts, so a
 * client fails fast and locally instead of after a round trip. */
static int wire_check_key(struct wire_bytes k, bool allow_empty)
{
	assert(k.p != NULL || k.len == 0);
	if (k.len > RS_KEY_SIZE_MAX)
		return RS_ETOOLARGE;
	if (k.len == 0 && !allow_empty)
		return RS_EINVAL;
	return RS_OK;
}

int wire_encode_get(struct rs_buf *out, uint64_t id,
		    const struct wire_get_req *m)
{
	size_t start;
	int rv;

	assert(out != NULL && m != NULL);
	if (m->mode > WIRE_READ_AT_VERSION)
		return RS_EINVAL;
	rv = wire_check_key(m->key, false);
	if (rv != RS_OK)
		return rv;
	start = wire_frame_begin(out, WIRE_GET, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	rv = wire_put_u8(out, m->mode);
	if (rv == RS_OK)
		rv = wire_put_u64(out, m->read_version);
	if (rv == RS_OK)
		rv = wire_put_bytes(out, m->key.p, m->key.len);
	return wire_encode_finish(out, start, rv);
}

int wire_encode_member_change(struct rs_buf *out, uint64_t id,
			      const struct wire_member_change_req *m)
{
	size_t start;
	int rv;

	assert(out != NULL && m != NULL);
	if (m->raft_addr.len > WIRE_MEMBER_ADDR_MAX ||
	    m->client_addr.len > WIRE_MEMBER_ADDR_MAX)
		return RS_ETOOLARGE;
	start = wire_frame_begin(out, WIRE_MEMBER_CHANGE, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	rv = wire_put_u8(out, m->op);
	if (rv == RS_OK)
		rv = wire_put_u64(out, m->node_id);
	if (rv == RS_OK)
		rv = wire_put_bytes(out, m->raft_addr.p, m->raft_addr.len);
	if (rv == RS_OK)
		rv = wire_put_bytes(out, m->client_addr.p, m->client_addr.len);
	return wire_encode_finish(out, start, rv);
}

int wire_encode_range(struct rs_buf *out, uint64_t id,
		      const struct wire_range_req *m)
{
	size_t start;
	int rv;

	assert(out != NULL && m != NULL);
	if (m->mode > WIRE_READ_AT_VERSION)
		return RS_EINVAL;
	if (m->limit > WIRE_RANGE_LIMIT_MAX)
		return RS_ETOOLARGE;
	rv = wire_check_key(m->begin, true);
	if (rv == RS_OK)
		rv = wire_check_key(m->end, true);
	if (rv != RS_OK)
		return rv;
	start = wire_frame_begin(out, WIRE_RANGE, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	rv = wire_put_u8(out, m->mode);
	if (rv == RS_OK)
		rv = wire_put_u64(out, m->read_version);
	if (rv == RS_OK)
		rv = wire_put_bytes(out, m->begin.p, m->begin.len);
	if (rv == RS_OK)
		rv = wire_put_bytes(out, m->end.p, m->end.len);
	if (rv == RS_OK)
		rv = wire_put_u32(out, m->limit);
	return wire_encode_finish(out, start, rv);
}

int wire_encode_watch(struct rs_buf *out, uint64_t id,
		      const struct wire_watch_req *m)
{
	size_t start;
	int rv;

	assert(out != NULL && m != NULL);
	rv = wire_check_key(m->begin, true);
	if (rv == RS_OK)
		rv = wire_check_key(m->end, true);
	if (rv != RS_OK)
		return rv;
	start = wire_frame_begin(out, WIRE_WATCH, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	rv = wire_put_bytes(out, m->begin.p, m->begin.len);
	if (rv == RS_OK)
		rv = wire_put_bytes(out, m->end.p, m->end.len);
	if (rv == RS_OK)
		rv = wire_put_u64(out, m->from_version);
	return wire_encode_finish(out, start, rv);
}

int wire_encode_watch_cancel(struct rs_buf *out, uint64_t id,
			     uint64_t watch_id)
{
	size_t start;

	assert(out != NULL);
	start = wire_frame_begin(out, WIRE_WATCH_CANCEL, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	return wire_encode_finish(out, start, wire_put_u64(out, watch_id));
}

int wire_encode_term(struct rs_buf *out, uint64_t id,
		     const struct wire_term_req *m)
{
	size_t start;
	int rv;

	assert(out != NULL && m != NULL);
	if (m->cluster_id.len != WIRE_CLUSTER_ID_SIZE || m->leader_id == 0)
		return RS_EINVAL;
	start = wire_frame_begin(out, WIRE_TERM, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	rv = wire_put_bytes(out, m->cluster_id.p, m->cluster_id.len);
	if (rv == RS_OK)
		rv = wire_put_u64(out, m->leader_id);
	if (rv == RS_OK)
		rv = wire_put_u64(out, m->term);
	return wire_encode_finish(out, start, rv);
}

static int wire_put_ranges(struct rs_buf *out, const struct wire_bytes *begins,
			   const struct wire_bytes *ends, uint32_t n)
{
	int rv = wire_put_u32(out, n);

	assert(n == 0 || (begins != NULL && ends != NULL));
	for (uint32_t i = 0; i < n && rv == RS_OK; i++) {
		rv = wire_check_key(begins[i], true);
		if (rv == RS_OK)
			rv = wire_check_key(ends[i], true);
		if (rv == RS_OK)
			rv = wire_put_bytes(out, begins[i].p, begins[i].len);
		if (rv == RS_OK)
			rv = wire_put_bytes(out, ends[i].p, ends[i].len);
	}
	return rv;
}

int wire_encode_commit(struct rs_buf *out, uint64_t id, uint64_t read_version,
		       const struct wire_bytes *begins,
		       const struct wire_bytes *ends, uint32_t n_ranges,
		       const struct batch *mutations)
{
	/* A batch nobody added to has no body yet; send its encoded form. */
	static const uint8_t empty_body[4] = {0, 0, 0, 0};
	const uint8_t *body = empty_body;
	size_t body_len = sizeof empty_body;
	size_t start;
	int rv;

	assert(out != NULL);
	if (mutations != NULL && mutations->body.len > 0) {
		body = mutations->body.data;
		body_len = mutations->body.len;
	}
	/* Checked right before it is sent, as the server will on receipt. */
	assert(batch_body_validate(body, body_len, NULL) == RS_OK ||
	       body_len > RS_BATCH_SIZE_MAX);
	if (n_ranges > WIRE_READ_RANGES_MAX || body_len > RS_BATCH_SIZE_MAX)
		return RS_ETOOLARGE;
	start = wire_frame_begin(out, WIRE_COMMIT, 0, id);
	if (start == WIRE_FRAME_NOMEM)
		return RS_ENOMEM;
	rv = wire_put_u64(out, read_version);
	if (rv == RS_OK)
		rv = wire_put_ranges(out, begins, ends, n_ranges);
	if (rv == RS_OK)
		rv = wire_put_bytes(out, body, body_len);
	return wire_encode_finish(out, start, rv);
}

/* ---- responses ---- */

int wire_decode_response_head(const struct wire_frame *f,
			      struct wire_reader *r, int *status,
			      struct wire_bytes *message)
{
	uint32_t s;

	assert(f != NULL && r != NULL);
	assert(status != NULL && message != NULL);
	*status = RS_OK;
	message->p = NULL;
	message->len = 0;
	wire_reader_init(r, f->body, f->body_len);
	if ((f->type & WIRE_RESPONSE) == 0)
		return RS_EPROTO;
	s = wire_get_u32(r);
	*message = wire_get_bytes(r, UINT32_MAX);
	/* Codes a newer server adds are passed through (the table is
	 * append-only); only a value no int can hold is malformed. */
	if (r->failed || s > INT_MAX) {
		message->p = NULL;
		message->len = 0;
		return RS_EPROTO;
	}
	*status = (int)s;
	return RS_OK;
}
