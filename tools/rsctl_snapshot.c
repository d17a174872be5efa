/*
 * rsctl snapshot: the dispatcher, `save` and `status` (rsctl_snapshot.h).
 *
 * save reads every key, the \xff system space included, with RANGE
 * requests of up to WIRE_RANGE_LIMIT_MAX rows: the first linearizable (its
 * read version V is the snapshot's version: every commit acknowledged
 * before the save began is in it), every later page at V exactly, so the
 * file is the state after the last commit <= V, whatever commits while it
 * runs.  Nothing is pinned on the server: V stays readable while it is in
 * the node's MVCC window (5,000,000 versions, 5 s of commits, by default);
 * if the window slides past V before the last page (RS_ETOOOLD), the save
 * starts over at a new version, at most SNAP_SAVE_ATTEMPTS times.  Each
 * page is one short read on the node's loop (docs/backup-format.md, "Why
 * paged reads").
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "director/director.h"
#include "raftstore/client.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "storage/backup.h"
#include "tools/rsctl_kv.h"
#include "tools/rsctl_snapshot.h"

#define SNAP_SAVE_ATTEMPTS 3
#define SNAP_PAGE_ROWS WIRE_RANGE_LIMIT_MAX

/* ---- save ---- */

struct snap_save {
	struct backup_writer w;
	uint8_t begin[RS_KEY_SIZE_MAX]; /* the next page starts here */
	size_t begin_len;
	uint64_t version; /* 0 until the first page */
};

static uint64_t snap_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* The answering node's cluster ID (STATUS), all zero if it is not known. */
static void snap_source_cluster(struct rs_sync *s, uint8_t out[16])
{
	struct rs_result res;
	json_t *doc = NULL;
	const char *hex = NULL;
	size_t len = 0;

	memset(out, 0, BACKUP_CLUSTER_ID_SIZE);
	if (rs_sync_info(s, WIRE_STATUS, -1, &res) == RS_OK &&
	    rs_json_parse_object(res.value.data, res.value.len, &doc, NULL) == RS_OK &&
	    rs_json_get_str(doc, "cluster_id", &hex, &len, NULL) == RS_OK &&
	    len == 2 * BACKUP_CLUSTER_ID_SIZE) {
		for (size_t i = 0; i < BACKUP_CLUSTER_ID_SIZE; i++) {
			int hi = bytes_hex_digit_value(hex[2 * i]);
			int lo = bytes_hex_digit_value(hex[2 * i + 1]);
			out[i] = hi < 0 || lo < 0 ? 0 : (uint8_t)(hi << 4 | lo);
		}
	}
	json_decref(doc);
	rs_result_free(&res);
}

/* Write one page's rows; *done when the key space is exhausted. */
static int snap_save_page(struct snap_save *sv, const struct rs_result *res,
			  bool *done, char *errmsg)
{
	const struct rs_kv *kv;
	int rv;

	for (size_t i = 0; i < res->n_kvs; i++) {
		kv = &res->kvs[i];
		if (kv->key_len == strlen(DIRECTOR_KEY_EPOCH) && kv->val_len == 8 &&
		    memcmp(kv->key, DIRECTOR_KEY_EPOCH, kv->key_len) == 0)
			backup_writer_set_epoch(&sv->w, rs_get_u64(kv->val));
		rv = backup_writer_add(&sv->w, kv->key, kv->key_len, kv->val,
				       kv->val_len, errmsg);
		if (rv != RS_OK)
			return rv;
	}
	*done = !res->more || res->n_kvs == 0;
	if (!*done) {
		kv = &res->kvs[res->n_kvs - 1];
		*done = !kv_key_after(kv->key, kv->key_len, sv->begin,
				      &sv->begin_len);
	}
	return RS_OK;
}

/* One attempt: every page at one version into a new temp file.  An exit
 * code; *too_old when the window passed the version (start over). */
static int snap_save_once(struct rs_sync *s, const char *path,
			  const struct backup_header *h, bool *too_old,
			  struct backup_info *info)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct snap_save *sv = calloc(1, sizeof *sv);
	struct rs_result res;
	bool done = false;
	int rv;

	if (sv == NULL) {
		rsctl_errorf("snapshot save: out of memory");
		return RSCTL_EXIT_FAIL;
	}
	*too_old = false;
	rv = backup_writer_open(&sv->w, path, h, errmsg);
	while (rv == RS_OK && !done) {
		rs_sync_range(s, sv->begin, sv->begin_len, NULL, 0, SNAP_PAGE_ROWS,
			      sv->version == 0 ? WIRE_READ_LINEARIZABLE
					       : WIRE_READ_AT_VERSION,
			      sv->version, &res);
		if (res.status != RS_OK) {
			*too_old = res.status == RS_ETOOOLD;
			if (*too_old)
				rsctl_errorf("snapshot save: version %" PRIu64 " left the "
					     "nodes' read window after %" PRIu64 " keys",
					     sv->version, sv->w.keys);
			rv = *too_old ? RSCTL_EXIT_FAIL
				      : rsctl_fail("snapshot save: read", &res);
			rs_result_free(&res);
			backup_writer_abort(&sv->w);
			free(sv);
			return rv;
		}
		if (sv->version == 0)
			sv->w.header.version = sv->version = res.version;
		rv = snap_save_page(sv, &res, &done, errmsg);
		rs_result_free(&res);
	}
	if (rv == RS_OK)
		rv = backup_writer_finish(&sv->w, info, errmsg);
	else
		backup_writer_abort(&sv->w);
	free(sv);
	if (rv != RS_OK) {
		rsctl_errorf("snapshot save: %s: %s", path, errmsg);
		return RSCTL_EXIT_FAIL;
	}
	return RSCTL_EXIT_OK;
}

static int snap_save_report(const char *path, const struct backup_info *in,
			    bool json)
{
	json_t *o;

	if (!json) {
		printf("saved %s: version %" PRIu64 ", %" PRIu64 " keys, %" PRIu64
		       " bytes\n", path, in->header.version, in->keys,
		       in->file_bytes);
		return RSCTL_EXIT_OK;
	}
	o = json_object();
	if (o != NULL &&
	    (rs_json_set_str(o, "file", path) != RS_OK ||
	     rs_json_set_u64(o, "version", in->header.version) != RS_OK ||
	     rs_json_set_u64(o, "keys", in->keys) != RS_OK ||
	     rs_json_set_u64(o, "file_bytes", in->file_bytes) != RS_OK)) {
		json_decref(o);
		o = NULL;
	}
	return rsctl_print_json(o, "snapshot save");
}

static const char snap_save_usage[] =
	"Usage: rsctl snapshot save FILE [options]\n\n"
	"Write every key of the cluster (the \\xff system keys included) as of\n"
	"one commit version to FILE, while writes go on.  The version is a\n"
	"linearizable read version: every commit acknowledged before the save\n"
	"began is in the file, and no commit above it.  FILE is written as\n"
	"FILE.tmp, fsynced and renamed, so it is complete or absent.  If the\n"
	"nodes' read window passes the version before the last page is read, the\n"
	"save starts over at a new version (3 attempts).\n\n"
	"Options:\n";

static int snap_save_run(int argc, char **argv)
{
	struct rsctl_cluster_args a;
	struct backup_header h;
	struct backup_info info;
	struct rs_sync *s;
	const char *path = NULL;
	bool too_old = true;
	int rv;

	rsctl_cluster_args_init(&a);
	for (int i = 1; i < argc; i++) {
		if (rsctl_is_help(argv[i])) {
			fputs(snap_save_usage, stdout);
			rsctl_cluster_help_opts(stdout);
			return RSCTL_EXIT_OK;
		}
		rv = rsctl_cluster_parse_opt(argc, argv, &i, "rsctl snapshot save", &a);
		if (rv >= 0 && rv != RSCTL_EXIT_OK)
			return rv;
		if (rv < 0 && (argv[i][0] == '-' || path != NULL))
			return rsctl_usage_errorf("rsctl snapshot save",
						  "unexpected argument '%s'", argv[i]);
		if (rv < 0)
			path = argv[i];
	}
	if (path == NULL)
		return rsctl_usage_errorf("rsctl snapshot save", "missing FILE");
	rv = rsctl_cluster_open(&a, "rsctl snapshot save", &s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	memset(&h, 0, sizeof h);
	h.created_ms = snap_now_ms();
	snap_source_cluster(s, h.cluster_id);
	for (int n = 0; n < SNAP_SAVE_ATTEMPTS && too_old; n++) {
		if (n > 0)
			rsctl_errorf("snapshot save: starting over (attempt %d of %d)",
				     n + 1, SNAP_SAVE_ATTEMPTS);
		rv = snap_save_once(s, path, &h, &too_old, &info);
	}
	rs_sync_close(s);
	if (rv != RSCTL_EXIT_OK)
		return rv;
	return snap_save_report(path, &info, a.json);
}

/* ---- status ---- */

static void snap_cluster_hex(const struct backup_info *in,
			     char hex[2 * BACKUP_CLUSTER_ID_SIZE + 1])
{
	bytes_hex_encode(in->header.cluster_id, BACKUP_CLUSTER_ID_SIZE, hex);
	hex[2 * BACKUP_CLUSTER_ID_SIZE] = '\0';
}

static json_t *snap_status_json(const char *path, const struct backup_info *in)
{
	char hex[2 * BACKUP_CLUSTER_ID_SIZE + 1];
	json_t *o = json_object();

	snap_cluster_hex(in, hex);
	if (o != NULL &&
	    (rs_json_set_str(o, "file", path) != RS_OK ||
	     rs_json_set_u64(o, "format", in->header.format) != RS_OK ||
	     rs_json_set_u64(o, "version", in->header.version) != RS_OK ||
	     rs_json_set_u64(o, "epoch", in->header.epoch) != RS_OK ||
	     rs_json_set_u64(o, "created_ms", in->header.created_ms) != RS_OK ||
	     rs_json_set_str(o, "cluster_id", hex) != RS_OK ||
	     rs_json_set_u64(o, "keys", in->keys) != RS_OK ||
	     rs_json_set_u64(o, "chunks", in->chunks) != RS_OK ||
	     rs_json_set_u64(o, "data_bytes", in->image_bytes) != RS_OK ||
	     rs_json_set_u64(o, "file_bytes", in->file_bytes) != RS_OK ||
	     rs_json_set_bool(o, "checksum_ok", 1) != RS_OK)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static void snap_status_text(const char *path, const struct backup_info *in)
{
	char hex[2 * BACKUP_CLUSTER_ID_SIZE + 1];

	snap_cluster_hex(in, hex);
	printf("file:        %s\n"
	       "format:      %" PRIu32 "\n"
	       "version:     %" PRIu64 "\n"
	       "epoch:       %" PRIu64 "\n"
	       "created_ms:  %" PRIu64 "\n"
	       "cluster_id:  %s\n"
	       "keys:        %" PRIu64 "\n"
	       "chunks:      %" PRIu32 "\n"
	       "data_bytes:  %" PRIu64 "\n"
	       "file_bytes:  %" PRIu64 "\n"
	       "checksum:    ok\n",
	       path, in->header.format, in->header.version, in->header.epoch,
	       in->header.created_ms, hex, in->keys, in->chunks,
	       in->image_bytes, in->file_bytes);
}

static const char snap_status_usage[] =
	"Usage: rsctl snapshot status FILE [--json]\n\n"
	"Verify every checksum, count and key of a snapshot file and describe\n"
	"it: format, version, epoch, source cluster ID, keys, sizes.  A file\n"
	"that fails any check is reported with the offset and the fault, and\n"
	"the exit code is 1.\n";

static int snap_status_run(int argc, char **argv)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct backup_info info;
	const char *path = NULL;
	bool json = false;
	uint8_t *data;
	size_t len;
	int rv;

	for (int i = 1; i < argc; i++) {
		if (rsctl_is_help(argv[i])) {
			fputs(snap_status_usage, stdout);
			return RSCTL_EXIT_OK;
		}
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] == '-' || path != NULL)
			return rsctl_usage_errorf("rsctl snapshot status",
						  "unexpected argument '%s'", argv[i]);
		else
			path = argv[i];
	}
	if (path == NULL)
		return rsctl_usage_errorf("rsctl snapshot status", "missing FILE");
	rv = backup_read_file(path, &data, &len, &info, NULL, NULL, errmsg);
	if (rv != RS_OK) {
		rsctl_errorf("snapshot status: %s", errmsg);
		return rv == RS_ENOTFOUND ? RSCTL_EXIT_USAGE : RSCTL_EXIT_FAIL;
	}
	free(data);
	if (json)
		return rsctl_print_json(snap_status_json(path, &info),
					"snapshot status");
	snap_status_text(path, &info);
	return RSCTL_EXIT_OK;
}

/* ---- dispatch ---- */

static void snap_help(FILE *f)
{
	fprintf(f,
		"Usage: rsctl snapshot <command> ...\n\n"
		"Back up a live cluster to one file, and start a new cluster from it.\n\n"
		"Commands:\n"
		"  save FILE [--endpoints ...]   write every key at one version to FILE\n"
		"  status FILE [--json]          verify FILE and describe it\n"
		"  restore FILE --data-dir DIR --id N --initial-cluster LIST\n"
		"                                write node N's data dir of a new cluster\n"
		"                                from FILE (run it once per node)\n\n"
		"Each command takes --help.  File format: docs/backup-format.md.\n"
		"Exit codes: 0 success, 1 failure (a corrupt file), 2 usage error\n"
		"(bad arguments, a missing file, a data dir that is not empty), 3 the\n"
		"cluster is unreachable.\n");
}

int rsctl_snapshot_run(int argc, char **argv)
{
	if (argc < 2) {
		rsctl_errorf("snapshot: missing command");
		snap_help(stderr);
		return RSCTL_EXIT_USAGE;
	}
	if (rsctl_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		snap_help(stdout);
		return RSCTL_EXIT_OK;
	}
	if (strcmp(argv[1], "save") == 0)
		return snap_save_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return snap_status_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "restore") == 0)
		return snap_restore_run(argc - 1, argv + 1);
	return rsctl_usage_errorf("rsctl snapshot", "unknown command '%s'",
				  argv[1]);
}
