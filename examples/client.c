/*
 * A short program on libraftstore (include/raftstore.h): put, get, a
 * transaction that increments a counter, a range, and a watch that replays
 * the changes it made.  Build it against the installed library with
 *
 *   cc -o client client.c $(pkg-config --cflags --libs raftstore)
 *
 * and run it as `./client [ENDPOINTS]` (default 127.0.0.1:7101, the
 * example raftstored.conf's node).  It exits 0 if every step worked.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raftstore.h>

#define PREFIX "example/"
#define PREFIX_END "example0" /* '/' + 1: the end of every PREFIX key */

static int fail(struct raftstore *db, const char *what, int rv)
{
	fprintf(stderr, "client: %s: %s (%s)\n", what, raftstore_strerror(rv),
		raftstore_errmsg(db));
	raftstore_close(db);
	return 1;
}

/* Read the counter, add one, write it back; run again on a conflict
 * (another client incremented it in between). */
static int increment(struct raftstore *db, const char *key, uint64_t *version,
		     long *value)
{
	for (;;) {
		struct raftstore_txn *txn;
		struct raftstore_value v;
		char text[32];
		int rv = raftstore_txn_begin(db, &txn);

		if (rv != RAFTSTORE_OK)
			return rv;
		rv = raftstore_txn_get(txn, key, strlen(key), &v);
		if (rv != RAFTSTORE_OK && rv != RAFTSTORE_ENOTFOUND) {
			raftstore_txn_free(txn);
			return rv;
		}
		*value = rv == RAFTSTORE_OK ? strtol(v.data, NULL, 10) + 1 : 1;
		raftstore_free(v.data);
		snprintf(text, sizeof text, "%ld", *value);
		rv = raftstore_txn_put(txn, key, strlen(key), text, strlen(text));
		if (rv == RAFTSTORE_OK)
			rv = raftstore_txn_commit(txn, version);
		raftstore_txn_free(txn);
		if (rv != RAFTSTORE_ECONFLICT)
			return rv;
	}
}

struct seen {
	int events;
};

static int print_event(void *ctx, const struct raftstore_event *ev)
{
	struct seen *seen = ctx;

	for (size_t i = 0; i < ev->count; i++) {
		const struct raftstore_mutation *m = &ev->mutations[i];
		printf("watch: version %" PRIu64 " %s %.*s", ev->version,
		       m->type == RAFTSTORE_MUT_SET     ? "set"
		       : m->type == RAFTSTORE_MUT_CLEAR ? "delete"
							: "clear-range",
		       (int)m->key_len, (const char *)m->key);
		if (m->type == RAFTSTORE_MUT_SET)
			printf(" = %.*s", (int)m->value_len,
			       (const char *)m->value);
		printf("\n");
	}
	return ++seen->events == 3; /* stop after the three commits below */
}

int main(int argc, char **argv)
{
	const char *endpoints = argc > 1 ? argv[1] : "127.0.0.1:7101";
	char errmsg[RAFTSTORE_ERRMSG_SIZE];
	struct raftstore *db;
	struct raftstore_value v;
	struct raftstore_range r;
	struct seen seen = {0};
	uint64_t first, version;
	long counter;
	char *status;
	int rv;

	printf("libraftstore %s\n", raftstore_version());
	rv = raftstore_open(&db, endpoints, 5000, errmsg);
	if (rv != RAFTSTORE_OK) {
		fprintf(stderr, "client: %s\n", errmsg);
		return 1;
	}

	rv = raftstore_put(db, PREFIX "greeting", strlen(PREFIX "greeting"),
			   "hello", 5, &first);
	if (rv != RAFTSTORE_OK)
		return fail(db, "put", rv);
	printf("put: " PREFIX "greeting = hello at version %" PRIu64 "\n",
	       first);

	rv = raftstore_get(db, PREFIX "greeting", strlen(PREFIX "greeting"),
			   RAFTSTORE_LINEARIZABLE, &v);
	if (rv != RAFTSTORE_OK)
		return fail(db, "get", rv);
	printf("get: " PREFIX "greeting = %s (written at %" PRIu64 ")\n",
	       (char *)v.data, v.version);
	raftstore_free(v.data);

	rv = increment(db, PREFIX "counter", &version, &counter);
	if (rv != RAFTSTORE_OK)
		return fail(db, "increment", rv);
	printf("txn: " PREFIX "counter = %ld at version %" PRIu64 "\n",
	       counter, version);

	rv = raftstore_range(db, PREFIX, strlen(PREFIX), PREFIX_END,
			     strlen(PREFIX_END), 0, RAFTSTORE_LINEARIZABLE, &r);
	if (rv != RAFTSTORE_OK)
		return fail(db, "range", rv);
	for (size_t i = 0; i < r.count; i++)
		printf("range: %.*s = %.*s\n", (int)r.kvs[i].key_len,
		       (const char *)r.kvs[i].key, (int)r.kvs[i].value_len,
		       (const char *)r.kvs[i].value);
	raftstore_range_free(&r);

	rv = raftstore_delete(db, PREFIX "greeting", strlen(PREFIX "greeting"),
			      &version);
	if (rv != RAFTSTORE_OK)
		return fail(db, "delete", rv);
	printf("delete: " PREFIX "greeting at version %" PRIu64 "\n", version);

	/* Replay the three commits above from the first one's version. */
	rv = raftstore_watch(db, PREFIX, strlen(PREFIX), PREFIX_END,
			     strlen(PREFIX_END), first, print_event, &seen);
	if (rv != RAFTSTORE_OK)
		return fail(db, "watch", rv);

	rv = raftstore_status(db, -1, &status);
	if (rv != RAFTSTORE_OK)
		return fail(db, "status", rv);
	printf("status: %s\n", status);
	raftstore_free(status);

	raftstore_close(db);
	return 0;
}
