/*
 * rsctl_kv: internal header of the key-value commands (get, put, del,
 * range, txn, watch), which talk to a running cluster through the client
 * library (raftstore/client.h).
 *
 * The commands are split by concern, around this header:
 *
 *   rsctl_kv.c          arguments, the key helpers, help screens, and the
 *                       rsctl_<cmd>_run entry points (rsctl.h)
 *   rsctl_kv_getput.c   get, put and del: one key, one request
 *   rsctl_kv_range.c    range: a listing, page by page, at one version
 *   rsctl_kv_txn.c      txn: steps from stdin, compare, commit, retry
 *   rsctl_kv_watch.c    watch: the changes, as they commit
 *
 * Keys and values are bytes.  On the command line they are taken as given;
 * in `txn --stdin` lines \xNN stands for any byte.  Text output escapes
 * them (rsctl_put_text), --json output is built as a json_t with byte
 * strings from rs_json_bytes (byte N is code point U+00NN) and written by
 * rsctl_print_json, and `get` prints the value raw.
 *
 * Nothing here is used outside tools/rsctl_kv*.c.
 */
#ifndef RS_RSCTL_KV_H
#define RS_RSCTL_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftstore/client.h"
#include "tools/rsctl.h"

/* Bytes of a key shown in a message. */
#define KV_MSG_KEY_MAX 100u
#define KV_MSG_KEY_CELL (4u * KV_MSG_KEY_MAX + 4u)

/* The steps of a txn, in the order of kv_op_names (rsctl_kv_txn.c). */
enum kv_op_type {
	KV_IF_VALUE,
	KV_IF_VERSION,
	KV_IF_ABSENT,
	KV_PUT,
	KV_DEL,
};

/* One step of a txn.  key and val are owned copies (one block each). */
struct kv_op {
	enum kv_op_type type;
	uint8_t *key;
	size_t key_len;
	uint8_t *val; /* KV_IF_VALUE, KV_PUT; NULL otherwise */
	size_t val_len;
	uint64_t version; /* KV_IF_VERSION: the found_version wanted */
};

/* A command's parsed arguments (rsctl_kv.c fills them). */
struct kv_args {
	struct rsctl_cluster_args cluster;
	const char *pos[2]; /* positional arguments, as given */
	unsigned n_pos;
	bool help;
	bool serializable;
	bool prefix;              /* range --prefix */
	const char *watch_prefix; /* watch --prefix P */
	bool stdin_ops;           /* txn --stdin */
	uint64_t limit;           /* range: 0 = all */
	uint64_t from;            /* watch: 0 = the next commit */
	bool system;              /* range: include \xff... (--system) */
	uint64_t count;           /* watch: 0 = until stopped */
	struct kv_op *ops;        /* txn, in the order given */
	size_t n_ops;
	size_t cap_ops;
};

/* ---- shared by the commands (rsctl_kv.c) ---- */

/* Append copies of key and val as a new step to a->ops: RS_OK or
 * RS_ENOMEM (a->ops unchanged). */
int kv_op_add(struct kv_args *a, enum kv_op_type type, const void *key,
	      size_t key_len, const void *val, size_t val_len,
	      uint64_t version);

/* A key for a message: escaped and cut (KV_MSG_KEY_CELL bytes of out). */
const char *kv_key_text(char *out, const void *key, size_t len);

/* Usage errors (exit 2) for an empty or oversized key, or an oversized
 * value; `what` names the key in the message ("KEY", "--put"). */
int kv_check_key(const char *help_cmd, const char *what, const void *key,
		 size_t len);
int kv_check_value(const char *help_cmd, size_t len);

/* The first key after every key that starts with p[0..len): false if there
 * is none (p is empty or all 0xff), and the range then runs to the end of
 * the key space, which the wire spells as an empty end.  out holds
 * RS_KEY_SIZE_MAX bytes. */
bool kv_prefix_end(const uint8_t *p, size_t len, uint8_t *out,
		   size_t *out_len);

/* The first key after k (k and a 0 byte, or the prefix end of k when k has
 * the maximum length); false if k is the last possible key. */
bool kv_key_after(const uint8_t *k, size_t len, uint8_t *out,
		  size_t *out_len);

/* ---- the commands: each returns an rsctl_exit code ---- */

int kv_get_run(struct kv_args *a, const char *help_cmd);   /* _getput.c */
int kv_put_run(struct kv_args *a, const char *help_cmd);   /* _getput.c */
int kv_del_run(struct kv_args *a, const char *help_cmd);   /* _getput.c */
int kv_range_run(struct kv_args *a, const char *help_cmd); /* _range.c */
int kv_txn_run(struct kv_args *a, const char *help_cmd);   /* _txn.c */
int kv_watch_run(struct kv_args *a, const char *help_cmd); /* _watch.c */

#endif /* RS_RSCTL_KV_H */
