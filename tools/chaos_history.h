/*
 * chaos_history: a chaos history as `rschaos check` reads it, and its
 * parser.
 *
 * It reads the NDJSON format of docs/chaos.md, version 1, into a struct
 * chaos_history: the ops in file order, the meta line's prefix and seed,
 * and the keys read back after the final restart.  Every string of a
 * parsed history is interned once in a pool that the history owns.
 *
 * Parsing is strict: a line that is malformed, of an unknown kind, or that
 * lacks a field the checker needs is an error, and so is a history whose
 * end lines are missing or disagree with the bytes before them (each end
 * line's line count and CRC-32C are verified).
 *
 * Nothing here keeps global state or does I/O except the functions that
 * say so; all of it is single-threaded and allocates with malloc.
 */
#ifndef RS_CHAOS_HISTORY_H
#define RS_CHAOS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The history format version this checker reads ("format" of the meta line). */
#define CHAOS_HISTORY_FORMAT 1

enum chaos_history_f {
	CHAOS_HISTORY_READ,
	CHAOS_HISTORY_WRITE,
	CHAOS_HISTORY_CAS,
	CHAOS_HISTORY_UNIQUE,
	CHAOS_HISTORY_F_COUNT
};

enum chaos_history_result {
	CHAOS_HISTORY_OK,      /* took effect / returned this value */
	CHAOS_HISTORY_FAIL,    /* definitely did not take effect */
	CHAOS_HISTORY_UNKNOWN, /* may take effect at any time after invoke */
	CHAOS_HISTORY_RESULT_COUNT
};

/* One operation, as an op line records it.  The strings are borrowed: a
 * parsed history owns them, a test may point them at literals.  A NULL
 * value, expect or observed is JSON null: the key is absent. */
struct chaos_history_op {
	uint64_t id;
	uint64_t client;
	enum chaos_history_f f;
	enum chaos_history_result result;
	const char *key;
	const char *value;    /* read: observed; write, cas, unique: written */
	const char *expect;   /* cas only */
	const char *observed; /* cas fail only, when has_observed */
	bool has_observed;
	uint64_t invoke_us;
	uint64_t complete_us; /* >= invoke_us */
};

/* The names used in the history and in reports ("read", "ok", ...). */
const char *chaos_history_f_name(enum chaos_history_f f);
const char *chaos_history_result_name(enum chaos_history_result r);

struct chaos_history_final_key {
	const char *key;
	const char *value;
};

struct chaos_history_pool; /* the history's strings */

/* A parsed history.  Owns everything it points to. */
struct chaos_history {
	struct chaos_history_op *ops; /* in file order (completion order) */
	size_t op_count;
	const char *prefix;           /* from the meta line */
	uint64_t seed;                /* from the meta line, 0 if absent */
	bool has_final;
	const char *final_prefix;
	struct chaos_history_final_key *final_keys; /* sorted by key */
	size_t final_count;
	size_t line_count;
	struct chaos_history_pool *pool;
};

/* Parses a history from data[0..len).  Returns RS_OK; RS_EINVAL for a
 * line that breaks the format (errmsg "line N: what is wrong"); RS_ECORRUPT
 * when an end line disagrees with the bytes before it or the history does
 * not end with one (errmsg "history truncated or corrupt at line N: ...");
 * or RS_ENOMEM.  errmsg has RS_ERRMSG_SIZE bytes.  On error *h is left
 * empty (nothing to free). */
int chaos_history_parse(const void *data, size_t len, struct chaos_history *h,
			char *errmsg);

/* Reads the file at path (blocking) and parses it as above; RS_EIO with
 * errmsg "read: <strerror>" if it cannot be read. */
int chaos_history_parse_file(const char *path, struct chaos_history *h,
			     char *errmsg);

/* Frees what a successful parse allocated; *h becomes empty. */
void chaos_history_free(struct chaos_history *h);

/* The final key named key (borrowed from h), or NULL if the final line
 * did not read it back. */
const struct chaos_history_final_key *
chaos_history_final_find(const struct chaos_history *h, const char *key);

#endif /* RS_CHAOS_HISTORY_H */
