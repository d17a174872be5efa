/*
 * client_public: the installed client API (include/raftstore.h) on the
 * blocking wrapper of raftstore/client.h.
 *
 * This file is the only one that includes the public header: it turns the
 * public calls into rs_sync_* calls, copies results into the public
 * structures (which share no type with the internal ones), and keeps each
 * handle's last error message.  Transactions buffer their read-conflict
 * ranges and mutations here and send them in one COMMIT.  Only the
 * raftstore_* symbols are exported from libraftstore.so (Makefile.am,
 * -export-symbols-regex).
 */
#include "include/raftstore.h"

#include <assert.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/client.h"
#include "raftstore/lib/batch.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/wire.h"

/* The public codes are the wire's: check every one against rs_error.h. */
#define PUBLIC_CODE_MATCHES(pub, internal) \
	_Static_assert((int)(pub) == (int)(internal), #pub " == " #internal)
PUBLIC_CODE_MATCHES(RAFTSTORE_OK, RS_OK);
PUBLIC_CODE_MATCHES(RAFTSTORE_ENOMEM, RS_ENOMEM);
PUBLIC_CODE_MATCHES(RAFTSTORE_EIO, RS_EIO);
PUBLIC_CODE_MATCHES(RAFTSTORE_ENOSPC, RS_ENOSPC);
PUBLIC_CODE_MATCHES(RAFTSTORE_ECORRUPT, RS_ECORRUPT);
PUBLIC_CODE_MATCHES(RAFTSTORE_ETORN, RS_ETORN);
PUBLIC_CODE_MATCHES(RAFTSTORE_EFORMAT, RS_EFORMAT);
PUBLIC_CODE_MATCHES(RAFTSTORE_ETOOLARGE, RS_ETOOLARGE);
PUBLIC_CODE_MATCHES(RAFTSTORE_ETOOOLD, RS_ETOOOLD);
PUBLIC_CODE_MATCHES(RAFTSTORE_EFUTURE, RS_EFUTURE);
PUBLIC_CODE_MATCHES(RAFTSTORE_ENOTFOUND, RS_ENOTFOUND);
PUBLIC_CODE_MATCHES(RAFTSTORE_EINVAL, RS_EINVAL);
PUBLIC_CODE_MATCHES(RAFTSTORE_EEXIST, RS_EEXIST);
PUBLIC_CODE_MATCHES(RAFTSTORE_ECLOSED, RS_ECLOSED);
PUBLIC_CODE_MATCHES(RAFTSTORE_EFAILED, RS_EFAILED);
PUBLIC_CODE_MATCHES(RAFTSTORE_EVERSION, RS_EVERSION);
PUBLIC_CODE_MATCHES(RAFTSTORE_EGAP, RS_EGAP);
PUBLIC_CODE_MATCHES(RAFTSTORE_ESHUTDOWN, RS_ESHUTDOWN);
PUBLIC_CODE_MATCHES(RAFTSTORE_ECONFLICT, RS_ECONFLICT);
PUBLIC_CODE_MATCHES(RAFTSTORE_EUNAVAILABLE, RS_EUNAVAILABLE);
PUBLIC_CODE_MATCHES(RAFTSTORE_EUNKNOWN, RS_EUNKNOWN);
PUBLIC_CODE_MATCHES(RAFTSTORE_EPROTO, RS_EPROTO);
PUBLIC_CODE_MATCHES(RAFTSTORE_ENOTLEADER, RS_ENOTLEADER);
PUBLIC_CODE_MATCHES(RAFTSTORE_ERECOVERING, RS_ERECOVERING);
PUBLIC_CODE_MATCHES(RAFTSTORE_ECOMPACTED, RS_ECOMPACTED);
PUBLIC_CODE_MATCHES(RAFTSTORE_ETIMEOUT, RS_ETIMEOUT);
PUBLIC_CODE_MATCHES(RAFTSTORE_ERRMSG_SIZE, RS_ERRMSG_SIZE);
PUBLIC_CODE_MATCHES(RAFTSTORE_LINEARIZABLE, WIRE_READ_LINEARIZABLE);
PUBLIC_CODE_MATCHES(RAFTSTORE_SERIALIZABLE, WIRE_READ_SERIALIZABLE);
PUBLIC_CODE_MATCHES(RAFTSTORE_MUT_SET, MUT_SET);
PUBLIC_CODE_MATCHES(RAFTSTORE_MUT_CLEAR, MUT_CLEAR);
PUBLIC_CODE_MATCHES(RAFTSTORE_MUT_CLEAR_RANGE, MUT_CLEAR_RANGE);

/* Rows asked for per RANGE request (the server's default page). */
#define PUBLIC_RANGE_PAGE WIRE_RANGE_LIMIT_DEFAULT

struct raftstore {
	struct rs_sync *sync;
	char errmsg[RS_ERRMSG_SIZE];
	/* A watch event's mutations, reused from event to event. */
	struct raftstore_mutation *muts;
	size_t muts_cap;
};

/* Read-conflict ranges are kept as offsets into `keys`, which moves as
 * it grows. */
struct txn_range {
	size_t begin_at, begin_len;
	size_t end_at, end_len;
};

struct raftstore_txn {
	struct raftstore *db;
	uint64_t read_version;
	struct rs_buf keys;
	struct txn_range *ranges;
	uint32_t n_ranges, ranges_cap;
	struct batch writes;
	bool committed;
};

/* SIGPIPE: libuv writes to sockets with writev, which raises SIGPIPE when
 * the node has closed the connection, and SIGPIPE kills a process by
 * default.  A library must not change the process's disposition, so each
 * call that runs the loop blocks SIGPIPE on the calling thread while it
 * runs, and discards what it raised before restoring the mask (one that
 * was pending before the call is left alone). */
struct pipe_guard {
	sigset_t old;
	bool was_pending;
};

static void pipe_guard_enter(struct pipe_guard *g)
{
	sigset_t pipe, pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	g->was_pending = sigpending(&pending) == 0 &&
			 sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
}

static void pipe_guard_leave(const struct pipe_guard *g)
{
	static const struct timespec now = {0, 0};
	sigset_t pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	if (!g->was_pending)
		while (sigtimedwait(&pipe, NULL, &now) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

const char *raftstore_version(void)
{
	return PACKAGE_VERSION;
}

const char *raftstore_strerror(int code)
{
	return rs_strerror(code);
}

void raftstore_free(void *p)
{
	free(p);
}

/* Record a call's outcome in the handle: "" on success, else the given
 * message (or the code's text when there is none). */
static int public_status(struct raftstore *db, int code, const char *message)
{
	if (code == RS_OK)
		db->errmsg[0] = '\0';
	else if (message != NULL && message[0] != '\0')
		snprintf(db->errmsg, sizeof db->errmsg, "%s", message);
	else
		snprintf(db->errmsg, sizeof db->errmsg, "%s", rs_strerror(code));
	return code;
}

static int public_failf(struct raftstore *db, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int public_failf(struct raftstore *db, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

static int public_check_key(struct raftstore *db, size_t key_len)
{
	if (key_len == 0)
		return public_failf(db, RS_EINVAL, "empty key");
	if (key_len > RS_KEY_SIZE_MAX)
		return public_failf(db, RS_ETOOLARGE,
				    "key of %zu bytes is over the %u-byte limit",
				    key_len, RS_KEY_SIZE_MAX);
	return RS_OK;
}

int raftstore_open(struct raftstore **out, const char *endpoints,
		   unsigned timeout_ms, char *errmsg)
{
	struct rs_client_options o = {.endpoints = endpoints,
				      .op_timeout_ms = timeout_ms};
	struct raftstore *db;
	int rv;

	*out = NULL;
	if (endpoints == NULL) {
		rs_errmsg_printf(errmsg, "no endpoints given");
		return RS_EINVAL;
	}
	db = calloc(1, sizeof *db);
	if (db == NULL) {
		rs_errmsg_printf(errmsg, "%s", rs_strerror(RS_ENOMEM));
		return RS_ENOMEM;
	}
	rv = rs_sync_open(&db->sync, &o, errmsg);
	if (rv != RS_OK) {
		free(db);
		return rv;
	}
	*out = db;
	return RS_OK;
}

void raftstore_close(struct raftstore *db)
{
	struct pipe_guard g;

	if (db == NULL)
		return;
	pipe_guard_enter(&g);
	rs_sync_close(db->sync);
	pipe_guard_leave(&g);
	free(db->muts);
	free(db);
}

const char *raftstore_errmsg(const struct raftstore *db)
{
	return db->errmsg;
}

/* ---- single keys ---- */

/* Move a GET result into *out: the value's buffer is adopted, not
 * copied. */
static int public_take_value(struct raftstore *db, struct rs_result *res,
			     struct raftstore_value *out)
{
	out->read_version = res->version;
	if (!res->found) {
		rs_result_free(res);
		return public_failf(db, RS_ENOTFOUND, "key not found");
	}
	if (res->value.data == NULL) { /* an empty value: still a C string */
		out->data = calloc(1, 1);
		if (out->data == NULL) {
			rs_result_free(res);
			return public_status(db, RS_ENOMEM, NULL);
		}
	} else {
		out->data = res->value.data;
		out->len = res->value.len;
		rs_buf_init(&res->value);
	}
	out->version = res->found_version;
	rs_result_free(res);
	return public_status(db, RS_OK, NULL);
}

static int public_get(struct raftstore *db, const void *key, size_t key_len,
		      enum wire_read_mode mode, uint64_t read_version,
		      struct raftstore_value *out)
{
	struct rs_result res;
	struct pipe_guard g;
	int rv;

	memset(out, 0, sizeof *out);
	rv = public_check_key(db, key_len);
	if (rv != RS_OK)
		return rv;
	pipe_guard_enter(&g);
	rv = rs_sync_get(db->sync, key, key_len, mode, read_version, &res);
	pipe_guard_leave(&g);
	if (rv != RS_OK) {
		rv = public_status(db, res.status, res.message);
		rs_result_free(&res);
		return rv;
	}
	return public_take_value(db, &res, out);
}

int raftstore_get(struct raftstore *db, const void *key, size_t key_len,
		  enum raftstore_read_mode mode, struct raftstore_value *out)
{
	if (mode != RAFTSTORE_LINEARIZABLE && mode != RAFTSTORE_SERIALIZABLE) {
		memset(out, 0, sizeof *out);
		return public_failf(db, RS_EINVAL, "unknown read mode %d",
				    (int)mode);
	}
	return public_get(db, key, key_len, (enum wire_read_mode)mode, 0, out);
}

/* Send one commit; *version gets its version on success. */
static int public_commit(struct raftstore *db, uint64_t read_version,
			 const struct wire_bytes *begins,
			 const struct wire_bytes *ends, uint32_t n_ranges,
			 const struct batch *writes, uint64_t *version)
{
	struct rs_result res;
	struct pipe_guard g;
	int rv;

	pipe_guard_enter(&g);
	rv = rs_sync_commit(db->sync, read_version, begins, ends, n_ranges,
			    writes, &res);
	pipe_guard_leave(&g);
	if (rv == RS_OK && version != NULL)
		*version = res.version;
	rv = public_status(db, rv, res.message);
	rs_result_free(&res);
	return rv;
}

/* The result of a batch builder, which wrote db->errmsg only for
 * RS_ETOOLARGE. */
static int public_built(struct raftstore *db, int built)
{
	if (built == RS_OK || built == RS_ETOOLARGE)
		return built;
	return public_status(db, built, NULL);
}

/* A one-mutation commit without reads; `built` says whether the builder
 * could add the mutation to b. */
static int public_blind_write(struct raftstore *db, const struct batch *b,
			      int built, uint64_t *version)
{
	if (built != RS_OK)
		return public_built(db, built);
	return public_commit(db, 0, NULL, NULL, 0, b, version);
}

int raftstore_put(struct raftstore *db, const void *key, size_t key_len,
		  const void *value, size_t value_len, uint64_t *version)
{
	struct batch b;
	int rv = public_check_key(db, key_len);

	if (rv != RS_OK)
		return rv;
	batch_init(&b);
	rv = public_blind_write(db, &b,
				batch_set(&b, key, key_len, value, value_len,
					  db->errmsg),
				version);
	batch_free(&b);
	return rv;
}

int raftstore_delete(struct raftstore *db, const void *key, size_t key_len,
		     uint64_t *version)
{
	struct batch b;
	int rv = public_check_key(db, key_len);

	if (rv != RS_OK)
		return rv;
	batch_init(&b);
	rv = public_blind_write(db, &b, batch_clear(&b, key, key_len, db->errmsg),
				version);
	batch_free(&b);
	return rv;
}

/* ---- ranges ---- */

void raftstore_range_free(struct raftstore_range *r)
{
	free(r->kvs);
	memset(r, 0, sizeof *r);
}

/* Copy the rows of every page into one block: the array, then each key
 * and value (each followed by a NUL, so text prints as a C string). */
static int public_range_pack(const struct rs_result *pages, size_t n_pages,
			     struct raftstore_range *out)
{
	size_t rows = 0, bytes = 0;
	uint8_t *at;

	for (size_t p = 0; p < n_pages; p++)
		for (size_t i = 0; i < pages[p].n_kvs; i++) {
			rows++;
			bytes += pages[p].kvs[i].key_len +
				 pages[p].kvs[i].val_len + 2;
		}
	out->count = rows;
	if (rows == 0)
		return RS_OK;
	out->kvs = malloc(rows * sizeof *out->kvs + bytes);
	if (out->kvs == NULL)
		return RS_ENOMEM;
	at = (uint8_t *)(out->kvs + rows);
	rows = 0;
	for (size_t p = 0; p < n_pages; p++)
		for (size_t i = 0; i < pages[p].n_kvs; i++) {
			const struct rs_kv *kv = &pages[p].kvs[i];
			struct raftstore_kv *o = &out->kvs[rows++];
			memcpy(at, kv->key, kv->key_len);
			at[kv->key_len] = 0;
			o->key = at;
			o->key_len = kv->key_len;
			at += kv->key_len + 1;
			memcpy(at, kv->val, kv->val_len);
			at[kv->val_len] = 0;
			o->value = at;
			o->value_len = kv->val_len;
			at += kv->val_len + 1;
			o->version = kv->version;
		}
	return RS_OK;
}

/* Page through [begin, end): the first page with `mode` (and
 * read_version, for AT_VERSION), the next ones at the first page's read
 * version.  A page continues after the previous one's last key. */
static int public_range(struct raftstore *db, const void *begin,
			size_t begin_len, const void *end, size_t end_len,
			size_t limit, enum wire_read_mode mode,
			uint64_t read_version, struct raftstore_range *out)
{
	struct rs_result *pages = NULL;
	size_t n_pages = 0, rows = 0;
	struct rs_buf from;
	bool more = true;
	int rv = RS_OK;

	memset(out, 0, sizeof *out);
	rs_buf_init(&from);
	if (begin_len > RS_KEY_SIZE_MAX || end_len > RS_KEY_SIZE_MAX)
		return public_failf(db, RS_ETOOLARGE,
				    "a range bound is over the %u-byte key limit",
				    RS_KEY_SIZE_MAX);
	if (rs_buf_append(&from, begin, begin_len) != RS_OK)
		return public_status(db, RS_ENOMEM, NULL);
	while (rv == RS_OK && more && (limit == 0 || rows < limit)) {
		size_t want = limit == 0 || limit - rows > PUBLIC_RANGE_PAGE
				      ? PUBLIC_RANGE_PAGE
				      : limit - rows;
		struct rs_result *grown =
			realloc(pages, (n_pages + 1) * sizeof *pages);
		struct rs_result *page;
		struct pipe_guard g;
		int got;

		if (grown == NULL) {
			rv = public_status(db, RS_ENOMEM, NULL);
			break;
		}
		pages = grown;
		page = &pages[n_pages++];
		pipe_guard_enter(&g);
		got = rs_sync_range(db->sync, from.data, from.len, end, end_len,
				    (uint32_t)want, mode, read_version, page);
		pipe_guard_leave(&g);
		if (got != RS_OK) {
			rv = public_status(db, page->status, page->message);
			break;
		}
		if (n_pages == 1) {
			out->read_version = read_version = page->version;
			mode = WIRE_READ_AT_VERSION;
		}
		rows += page->n_kvs;
		more = page->more && page->n_kvs > 0;
		if (more) { /* the next page starts after the last key + 0x00 */
			const struct rs_kv *last = &page->kvs[page->n_kvs - 1];
			from.len = 0;
			if (rs_buf_append(&from, last->key, last->key_len) != RS_OK ||
			    rs_buf_put_u8(&from, 0) != RS_OK)
				rv = public_status(db, RS_ENOMEM, NULL);
		}
	}
	if (rv == RS_OK) {
		out->more = more;
		rv = public_status(db, public_range_pack(pages, n_pages, out),
				   NULL);
	}
	for (size_t p = 0; p < n_pages; p++)
		rs_result_free(&pages[p]);
	free(pages);
	rs_buf_free(&from);
	if (rv != RS_OK)
		memset(out, 0, sizeof *out);
	return rv;
}

int raftstore_range(struct raftstore *db, const void *begin, size_t begin_len,
		    const void *end, size_t end_len, size_t limit,
		    enum raftstore_read_mode mode, struct raftstore_range *out)
{
	if (mode != RAFTSTORE_LINEARIZABLE && mode != RAFTSTORE_SERIALIZABLE) {
		memset(out, 0, sizeof *out);
		return public_failf(db, RS_EINVAL, "unknown read mode %d",
				    (int)mode);
	}
	return public_range(db, begin, begin_len, end, end_len, limit,
			    (enum wire_read_mode)mode, 0, out);
}

/* ---- transactions ---- */

int raftstore_txn_begin(struct raftstore *db, struct raftstore_txn **out)
{
	struct raftstore_txn *txn;
	struct rs_result res;
	struct pipe_guard g;
	int rv;

	*out = NULL;
	txn = calloc(1, sizeof *txn);
	if (txn == NULL)
		return public_status(db, RS_ENOMEM, NULL);
	pipe_guard_enter(&g);
	rv = rs_sync_grv(db->sync, &res);
	pipe_guard_leave(&g);
	if (rv != RS_OK) {
		rv = public_status(db, rv, res.message);
		rs_result_free(&res);
		free(txn);
		return rv;
	}
	txn->db = db;
	txn->read_version = res.version;
	rs_result_free(&res);
	rs_buf_init(&txn->keys);
	batch_init(&txn->writes);
	*out = txn;
	return public_status(db, RS_OK, NULL);
}

void raftstore_txn_free(struct raftstore_txn *txn)
{
	if (txn == NULL)
		return;
	rs_buf_free(&txn->keys);
	free(txn->ranges);
	batch_free(&txn->writes);
	free(txn);
}

/* Remember [begin, end) (end_len 0: to the end of the key space) for the
 * commit's conflict check; with end_zero, end is followed by a 0x00 byte
 * (the range of exactly one key, or up to and including a last key). */
static int txn_add_read(struct raftstore_txn *txn, const void *begin,
			size_t begin_len, const void *end, size_t end_len,
			bool end_zero)
{
	struct txn_range *r;
	size_t at = txn->keys.len;

	if (txn->n_ranges == WIRE_READ_RANGES_MAX)
		return public_failf(txn->db, RS_ETOOLARGE,
				    "a transaction reads at most %u keys or "
				    "ranges", WIRE_READ_RANGES_MAX);
	if (txn->n_ranges == txn->ranges_cap) {
		uint32_t cap = txn->ranges_cap ? txn->ranges_cap * 2 : 8;
		struct txn_range *grown =
			realloc(txn->ranges, cap * sizeof *grown);
		if (grown == NULL)
			return public_status(txn->db, RS_ENOMEM, NULL);
		txn->ranges = grown;
		txn->ranges_cap = cap;
	}
	if (rs_buf_append(&txn->keys, begin, begin_len) != RS_OK ||
	    rs_buf_append(&txn->keys, end, end_len) != RS_OK ||
	    (end_zero && rs_buf_put_u8(&txn->keys, 0) != RS_OK)) {
		txn->keys.len = at;
		return public_status(txn->db, RS_ENOMEM, NULL);
	}
	r = &txn->ranges[txn->n_ranges++];
	r->begin_at = at;
	r->begin_len = begin_len;
	r->end_at = at + begin_len;
	r->end_len = end_len + (end_zero ? 1 : 0);
	return RS_OK;
}

int raftstore_txn_get(struct raftstore_txn *txn, const void *key,
		      size_t key_len, struct raftstore_value *out)
{
	int rv = public_get(txn->db, key, key_len, WIRE_READ_AT_VERSION,
			    txn->read_version, out);

	if (rv == RS_OK || rv == RS_ENOTFOUND) {
		int added = txn_add_read(txn, key, key_len, key, key_len, true);
		if (added != RS_OK) {
			free(out->data);
			memset(out, 0, sizeof *out);
			return added;
		}
	}
	return rv;
}

int raftstore_txn_range(struct raftstore_txn *txn, const void *begin,
			size_t begin_len, const void *end, size_t end_len,
			size_t limit, struct raftstore_range *out)
{
	int rv = public_range(txn->db, begin, begin_len, end, end_len, limit,
			      WIRE_READ_AT_VERSION, txn->read_version, out);

	if (rv != RS_OK)
		return rv;
	if (out->more) { /* read up to and including the last row */
		const struct raftstore_kv *last = &out->kvs[out->count - 1];
		rv = txn_add_read(txn, begin, begin_len, last->key,
				  last->key_len, true);
	} else {
		rv = txn_add_read(txn, begin, begin_len, end, end_len, false);
	}
	if (rv != RS_OK)
		raftstore_range_free(out);
	return rv;
}

static int txn_writable(struct raftstore_txn *txn, size_t key_len)
{
	if (txn->committed)
		return public_failf(txn->db, RS_EINVAL,
				    "the transaction has already committed");
	return public_check_key(txn->db, key_len);
}

int raftstore_txn_put(struct raftstore_txn *txn, const void *key,
		      size_t key_len, const void *value, size_t value_len)
{
	int rv = txn_writable(txn, key_len);

	if (rv == RS_OK)
		rv = public_built(txn->db,
				  batch_set(&txn->writes, key, key_len, value,
					    value_len, txn->db->errmsg));
	return rv == RS_OK ? public_status(txn->db, RS_OK, NULL) : rv;
}

int raftstore_txn_delete(struct raftstore_txn *txn, const void *key,
			 size_t key_len)
{
	int rv = txn_writable(txn, key_len);

	if (rv == RS_OK)
		rv = public_built(txn->db, batch_clear(&txn->writes, key,
							key_len,
							txn->db->errmsg));
	return rv == RS_OK ? public_status(txn->db, RS_OK, NULL) : rv;
}

int raftstore_txn_commit(struct raftstore_txn *txn, uint64_t *version)
{
	struct wire_bytes *begins, *ends;
	int rv;

	if (txn->committed)
		return public_failf(txn->db, RS_EINVAL,
				    "the transaction has already committed");
	txn->committed = true;
	if (txn->writes.count == 0) { /* its reads were one snapshot already */
		if (version != NULL)
			*version = txn->read_version;
		return public_status(txn->db, RS_OK, NULL);
	}
	begins = calloc(txn->n_ranges + 1, sizeof *begins);
	ends = calloc(txn->n_ranges + 1, sizeof *ends);
	if (begins == NULL || ends == NULL) {
		free(begins);
		free(ends);
		txn->committed = false;
		return public_status(txn->db, RS_ENOMEM, NULL);
	}
	for (uint32_t i = 0; i < txn->n_ranges; i++) {
		const struct txn_range *r = &txn->ranges[i];
		begins[i].p = txn->keys.data + r->begin_at;
		begins[i].len = (uint32_t)r->begin_len;
		ends[i].p = txn->keys.data + r->end_at;
		ends[i].len = (uint32_t)r->end_len;
	}
	rv = public_commit(txn->db, txn->read_version, begins, ends,
			   txn->n_ranges, &txn->writes, version);
	free(begins);
	free(ends);
	return rv;
}

/* ---- watches ---- */

struct public_watch {
	struct raftstore *db;
	raftstore_watch_fn fn;
	void *ctx;
	int failed; /* RS_ENOMEM while decoding an event */
};

/* Decode one event's batch into the handle's mutation array and hand it
 * to the caller's function. */
static int public_watch_event(void *arg, const struct rs_result *ev)
{
	struct public_watch *w = arg;
	struct raftstore *db = w->db;
	struct raftstore_event out = {.version = ev->version};
	struct mutation m;
	size_t pos = 0;

	if (ev->event.count > db->muts_cap) {
		struct raftstore_mutation *grown =
			realloc(db->muts, ev->event.count * sizeof *grown);
		if (grown == NULL) {
			w->failed = RS_ENOMEM;
			return 1;
		}
		db->muts = grown;
		db->muts_cap = ev->event.count;
	}
	while (out.count < ev->event.count && batch_next(&ev->event, &pos, &m)) {
		struct raftstore_mutation *o = &db->muts[out.count++];
		o->type = (enum raftstore_mutation_type)m.type;
		o->key = m.key;
		o->key_len = m.key_len;
		o->value = m.val;
		o->value_len = m.val_len;
	}
	out.mutations = db->muts;
	return w->fn(w->ctx, &out);
}

int raftstore_watch(struct raftstore *db, const void *begin, size_t begin_len,
		    const void *end, size_t end_len, uint64_t from_version,
		    raftstore_watch_fn fn, void *ctx)
{
	struct public_watch w = {.db = db, .fn = fn, .ctx = ctx};
	struct pipe_guard g;
	int rv;

	if (fn == NULL)
		return public_failf(db, RS_EINVAL, "watch without a function");
	pipe_guard_enter(&g);
	rv = rs_sync_watch(db->sync, begin, begin_len, end, end_len,
			   from_version, public_watch_event, &w);
	pipe_guard_leave(&g);
	if (rv == RS_OK && w.failed != RS_OK)
		rv = w.failed;
	if (rv == RS_EUNAVAILABLE)
		return public_failf(db, rv,
				    "watch: connection lost or no node "
				    "reachable; watch again from the last "
				    "version seen + 1");
	return public_status(db, rv, NULL);
}

/* ---- status ---- */

int raftstore_status(struct raftstore *db, int node, char **json)
{
	struct rs_result res;
	struct pipe_guard g;
	int rv;

	*json = NULL;
	if (node >= 0 && (unsigned)node >= rs_client_endpoint_count(
						   rs_sync_client(db->sync)))
		return public_failf(db, RS_EINVAL,
				    "node %d: there are only %u endpoints", node,
				    rs_client_endpoint_count(
					    rs_sync_client(db->sync)));
	pipe_guard_enter(&g);
	rv = rs_sync_info(db->sync, WIRE_STATUS, node, &res);
	pipe_guard_leave(&g);
	if (rv == RS_OK) {
		/* The result keeps a NUL after the JSON: adopt its buffer. */
		*json = (char *)res.value.data;
		rs_buf_init(&res.value);
		if (*json == NULL)
			rv = RS_EPROTO;
	}
	rv = public_status(db, rv, res.message);
	rs_result_free(&res);
	return rv;
}
