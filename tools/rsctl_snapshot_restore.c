/*
 * rsctl snapshot restore: one node's data dir of a new cluster, from a
 * snapshot file (rsctl_snapshot.h).
 *
 * The restored state is a c-raft snapshot, the way a node that installs a
 * snapshot from its leader holds it: DIR/raft gets a c-raft 0.15 snapshot
 * at index 2, term 2, whose configuration is --initial-cluster (all
 * voters) and whose data is the state machine's snapshot (raftstore/fsm.h,
 * "RSSNAP": the image at the file's version and epoch), and metadata1 with
 * term 2.  On its first start the node finds Raft state (a warm start, so
 * nothing is bootstrapped), c-raft loads the snapshot and the state
 * machine restores the store from it.  DIR/identity names node N and,
 * for the founder (the lowest id of --initial-cluster), a fresh cluster
 * ID; the other nodes learn it from the founder as on any first start.
 *
 * What is kept and what is not (docs/operations.md): every user key and
 * \xff/system/config/ and \xff/system/epoch as of the file's version;
 * \xff/system/coordinators is replaced by --initial-cluster; the old
 * cluster's layout (\xff/system/layout and \xff/system/layout/...) and
 * \xff/system/last_recovery, which name its nodes, are dropped (the new
 * cluster's first director writes its own).  The old cluster ID is not
 * carried over.
 *
 * Nothing is created before the whole file has been verified and the
 * image built, and a data dir that exists and is not empty is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <raft.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coordinator/config.h"
#include "coordinator/identity.h"
#include "director/director.h"
#include "director/tsl.h"
#include "raftstore/fsm.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftseg.h"
#include "storage/backup.h"
#include "storage/fileio.h"
#include "tools/rsctl_snapshot.h"

#define SNAP_HELP "rsctl snapshot restore"
/* c-raft 0.15's on-disk format version (UV__DISK_FORMAT). */
#define SNAP_RAFT_DISK_FORMAT 1u
/* The snapshot stands for the log up to this entry, of this term.  Not
 * (1, 1): that is the configuration entry a cold start bootstraps, so a
 * node started empty next to restored ones would match the leader's log
 * at index 1 and never receive the snapshot; at (2, 2) its log does not
 * match, and its leader sends it the snapshot. */
#define SNAP_RAFT_INDEX 2u
#define SNAP_RAFT_TERM 2u

struct snap_restore {
	const char *file;
	const char *data_dir;
	uint64_t id;
	struct config_peer peers[CONFIG_PEERS_MAX];
	unsigned n_peers;
	char coordinators[CONFIG_PEERS_MAX * (2 * CONFIG_ADDR_MAX + 32)];
	struct rs_buf snap; /* RSSNAP header, then the image */
	bool coordinators_written;
	uint64_t keys_kept;
	uint64_t keys_dropped;
};

/* ---- the image ---- */

static bool snap_key_is(const uint8_t *k, uint32_t len, const char *name)
{
	return len == strlen(name) && memcmp(k, name, len) == 0;
}

/* Keys that name the old cluster's nodes: not restored. */
static bool snap_key_dropped(const uint8_t *k, uint32_t len)
{
	size_t n = strlen(TSL_KEY_PREFIX);

	return snap_key_is(k, len, DIRECTOR_KEY_LAYOUT) ||
	       snap_key_is(k, len, DIRECTOR_KEY_LAST_RECOVERY) ||
	       snap_key_is(k, len, DIRECTOR_KEY_COORDINATORS) ||
	       (len >= n && memcmp(k, TSL_KEY_PREFIX, n) == 0);
}

static int snap_put_entry(struct rs_buf *b, const void *k, uint32_t klen,
			  const void *v, uint32_t vlen)
{
	if (rs_buf_put_u32(b, klen) != RS_OK || rs_buf_append(b, k, klen) != RS_OK ||
	    rs_buf_put_u32(b, vlen) != RS_OK || rs_buf_append(b, v, vlen) != RS_OK)
		return RS_ENOMEM;
	return RS_OK;
}

static int snap_put_coordinators(struct snap_restore *r)
{
	r->coordinators_written = true;
	return snap_put_entry(&r->snap, DIRECTOR_KEY_COORDINATORS,
			      (uint32_t)strlen(DIRECTOR_KEY_COORDINATORS),
			      r->coordinators, (uint32_t)strlen(r->coordinators));
}

/* backup_entry_fn: copy what is kept, in key order, with the new
 * coordinators in their place. */
static int snap_collect(void *ctx, const uint8_t *key, uint32_t key_len,
			const uint8_t *val, uint32_t val_len)
{
	struct snap_restore *r = ctx;
	const char *coord = DIRECTOR_KEY_COORDINATORS;

	if (!r->coordinators_written &&
	    bytes_compare(key, key_len, coord, strlen(coord)) >= 0 &&
	    snap_put_coordinators(r) != RS_OK)
		return RS_ENOMEM;
	if (snap_key_dropped(key, key_len)) {
		r->keys_dropped++;
		return RS_OK;
	}
	r->keys_kept++;
	return snap_put_entry(&r->snap, key, key_len, val, val_len) == RS_OK
		       ? RS_OK
		       : RS_ENOMEM;
}

/* Verify the file whole and build the state machine snapshot from it. */
static int snap_build(struct snap_restore *r, struct backup_info *info,
		      char *errmsg)
{
	uint8_t head[FSM_SNAPSHOT_HEADER] = {0};
	uint8_t *data;
	size_t len;
	int rv;

	if (rs_buf_append(&r->snap, head, sizeof head) != RS_OK)
		return RS_ENOMEM;
	rv = backup_read_file(r->file, &data, &len, info, snap_collect, r, errmsg);
	if (rv != RS_OK)
		return rv;
	free(data);
	if (!r->coordinators_written && snap_put_coordinators(r) != RS_OK)
		return RS_ENOMEM;
	memcpy(r->snap.data, FSM_SNAPSHOT_MAGIC, 8);
	rs_put_u32(r->snap.data + 8, FSM_SNAPSHOT_FORMAT);
	rs_put_u32(r->snap.data + 12, crc32c(r->snap.data + FSM_SNAPSHOT_HEADER,
					     r->snap.len - FSM_SNAPSHOT_HEADER));
	rs_put_u64(r->snap.data + 16, info->header.version);
	rs_put_u64(r->snap.data + 24, info->header.epoch);
	return RS_OK;
}

/* ---- c-raft's files ---- */

/* Write dir/name durably as a new file: name.tmp, fsync, rename. */
static int snap_write_file(const char *dir, const char *name,
			   const struct raft_buffer *bufs, unsigned n,
			   char *errmsg)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	off_t off = 0;
	int fd, rv;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	rv = fileio_open(tmp, O_WRONLY | O_CREAT | O_EXCL, &fd, errmsg);
	if (rv != RS_OK)
		return rv;
	for (unsigned i = 0; i < n && rv == RS_OK; i++) {
		rv = fileio_pwrite(fd, bufs[i].base, bufs[i].len, off, errmsg);
		off += (off_t)bufs[i].len;
	}
	if (rv == RS_OK)
		rv = fileio_fsync(fd, errmsg);
	fileio_close(fd);
	if (rv == RS_OK)
		rv = fileio_rename(tmp, path, errmsg);
	if (rv != RS_OK)
		fileio_unlink(tmp, NULL);
	return rv;
}

/* The snapshot's metadata file: format, crc, configuration index and
 * length (u64 each), then the encoded configuration.  The crc is c-raft's
 * segment checksum (raftseg.h) of the last two fields and the
 * configuration. */
static int snap_write_meta(const struct snap_restore *r, const char *dir,
			   const char *name, char *errmsg)
{
	struct raft_configuration conf;
	struct raft_buffer enc = {NULL, 0}, bufs[2];
	uint8_t head[32];
	int rv = 0;

	raft_configuration_init(&conf);
	for (unsigned i = 0; i < r->n_peers && rv == 0; i++)
		rv = raft_configuration_add(&conf, r->peers[i].id,
					    r->peers[i].raft_addr, RAFT_VOTER);
	if (rv == 0)
		rv = raft_configuration_encode(&conf, &enc);
	raft_configuration_close(&conf);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "encode the Raft configuration: %s",
				 raft_strerror(rv));
		return RS_ENOMEM;
	}
	rs_put_u64(head, SNAP_RAFT_DISK_FORMAT);
	rs_put_u64(head + 16, SNAP_RAFT_INDEX);
	rs_put_u64(head + 24, enc.len);
	rs_put_u64(head + 8, raftseg_crc32(raftseg_crc32(0, head + 16, 16),
					   enc.base, enc.len));
	bufs[0] = (struct raft_buffer){head, sizeof head};
	bufs[1] = enc;
	rv = snap_write_file(dir, name, bufs, 2, errmsg);
	raft_free(enc.base);
	return rv;
}

/* DIR/raft: the snapshot, its metadata, and metadata1 (its term, no vote). */
static int snap_write_raft(const struct snap_restore *r, const char *raft_dir,
			   uint64_t stamp, char *errmsg)
{
	char name[128], meta[160];
	uint8_t md[32];
	struct raft_buffer b = {r->snap.data, r->snap.len};
	int rv;

	snprintf(name, sizeof name, "snapshot-%u-%u-%" PRIu64, SNAP_RAFT_TERM,
		 SNAP_RAFT_INDEX, stamp);
	snprintf(meta, sizeof meta, "%s.meta", name);
	rv = snap_write_file(raft_dir, name, &b, 1, errmsg);
	if (rv == RS_OK)
		rv = snap_write_meta(r, raft_dir, meta, errmsg);
	rs_put_u64(md, SNAP_RAFT_DISK_FORMAT);
	rs_put_u64(md + 8, 1);  /* metadata version: the first write */
	rs_put_u64(md + 16, SNAP_RAFT_TERM);
	rs_put_u64(md + 24, 0); /* voted for nobody */
	b = (struct raft_buffer){md, sizeof md};
	if (rv == RS_OK)
		rv = snap_write_file(raft_dir, "metadata1", &b, 1, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(raft_dir, errmsg);
	return rv;
}

/* ---- the data dir ---- */

/* A data dir to be created needs its parent (only one level is made):
 * say so before the file is read, not after. */
static int snap_check_parent(const char *dir, char *errmsg)
{
	char parent[PATH_MAX];
	struct stat st;

	snprintf(parent, sizeof parent, "%s", dir);
	if (stat(dirname(parent), &st) == 0 && S_ISDIR(st.st_mode))
		return RS_OK;
	snprintf(parent, sizeof parent, "%s", dir);
	rs_errmsg_printf(errmsg, "cannot create data dir %s: %s is not an "
				 "existing directory", dir, dirname(parent));
	return RS_EEXIST;
}

/* RS_OK if dir is absent (with its parent there) or empty; RS_EEXIST if
 * it holds anything or cannot be created. */
static int snap_check_dir(const char *dir, char *errmsg)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rv = RS_OK;

	if (d == NULL && errno == ENOENT)
		return snap_check_parent(dir, errmsg);
	if (d == NULL)
		return rs_errmsg_errno(errmsg, errno, "open data dir %s", dir);
	while (rv == RS_OK && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			rs_errmsg_printf(errmsg, "data dir %s is not empty (it holds "
						 "%s); restore only into a new or "
						 "empty directory", dir, e->d_name);
			rv = RS_EEXIST;
		}
	closedir(d);
	return rv;
}

static bool snap_is_founder(const struct snap_restore *r)
{
	for (unsigned i = 0; i < r->n_peers; i++)
		if (r->peers[i].id < r->id)
			return false;
	return true;
}

/* Create the data dir's content; errors leave what was written (named in
 * errmsg) for the operator to remove. */
static int snap_write_dir(const struct snap_restore *r,
			  const struct backup_info *info, char *errmsg)
{
	char raft_dir[PATH_MAX], parent[PATH_MAX];
	struct identity id;
	int rv;

	memset(&id, 0, sizeof id);
	id.node_id = r->id;
	if (snap_is_founder(r) &&
	    (rv = identity_new_cluster_id(id.cluster_id, errmsg)) != RS_OK)
		return rv;
	snprintf(raft_dir, sizeof raft_dir, "%s/raft", r->data_dir);
	snprintf(parent, sizeof parent, "%s", r->data_dir);
	rv = fileio_mkdir(r->data_dir, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(dirname(parent), errmsg);
	if (rv == RS_OK)
		rv = fileio_mkdir(raft_dir, errmsg);
	if (rv == RS_OK)
		rv = snap_write_raft(r, raft_dir, info->header.created_ms, errmsg);
	/* Last: a dir without its identity is one a node refuses to use as
	 * a restored one (it would start with no cluster ID). */
	if (rv == RS_OK)
		rv = identity_write(r->data_dir, &id, errmsg);
	return rv;
}

/* ---- the command ---- */

static const char snap_restore_usage[] =
	"Usage: rsctl snapshot restore FILE --data-dir DIR --id N\n"
	"                              --initial-cluster ID=RAFT/CLIENT,...\n\n"
	"Write node N's data dir of a NEW cluster from a snapshot file.  Run it\n"
	"once per node with the same FILE and --initial-cluster, then start each\n"
	"node as usual with the same flags:\n"
	"  raftstored --id N --data-dir DIR --initial-cluster LIST\n"
	"The nodes hold every key of FILE at its version, under a new cluster ID\n"
	"(the lowest id draws it).  \\xff/system/coordinators becomes LIST; the old\n"
	"layout and last_recovery keys are dropped (the first director writes\n"
	"new ones); configuration parameters and the epoch are kept.\n\n"
	"The whole file is verified first: a corrupt or truncated FILE is refused\n"
	"(exit 1) and nothing is written.  DIR must not exist or be empty (exit 2\n"
	"otherwise).\n";

/* The flag values as given, before they are checked. */
struct snap_restore_flags {
	const char *data_dir;
	const char *id;
	const char *cluster;
};

/* Take the flag at argv[*i] if it is one of restore's: 1 if taken, 0 if
 * it is none of them, or an exit code (after printing why). */
static int snap_restore_flag(int argc, char **argv, int *i,
			     struct snap_restore_flags *f)
{
	const struct {
		const char *name;
		const char **value;
	} flags[] = {{"--data-dir", &f->data_dir},
		     {"--id", &f->id},
		     {"--initial-cluster", &f->cluster}};
	const char *v;
	bool missing;

	for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
		v = cliopt_value(argc, argv, i, flags[k].name, &missing);
		if (missing)
			return -rsctl_usage_errorf(SNAP_HELP, "%s needs a value",
						   flags[k].name);
		if (v != NULL) {
			*flags[k].value = v;
			return 1;
		}
	}
	return 0;
}

/* Check the flags' values into r; an exit code. */
static int snap_restore_check(struct snap_restore *r,
			      const struct snap_restore_flags *f)
{
	char errmsg[RS_ERRMSG_SIZE] = "";

	if (r->file == NULL || f->data_dir == NULL || f->id == NULL ||
	    f->cluster == NULL)
		return rsctl_usage_errorf(SNAP_HELP, "FILE, --data-dir, --id and "
					  "--initial-cluster are all required");
	r->data_dir = f->data_dir;
	if (!cliopt_parse_u64(f->id, &r->id) || r->id == 0)
		return rsctl_usage_errorf(SNAP_HELP, "--id: '%s' is not a node id "
					  "(1 or more)", f->id);
	if (config_parse_cluster(f->cluster, r->peers, &r->n_peers, errmsg) != RS_OK)
		return rsctl_usage_errorf(SNAP_HELP, "%s", errmsg);
	for (unsigned i = 0; i < r->n_peers; i++)
		if (r->peers[i].id == r->id) {
			config_format_cluster(r->peers, r->n_peers, r->coordinators,
					      sizeof r->coordinators);
			return RSCTL_EXIT_OK;
		}
	return rsctl_usage_errorf(SNAP_HELP, "--id %" PRIu64 " is not a member of "
				  "--initial-cluster", r->id);
}

/* An exit code, or -1 after printing --help. */
static int snap_restore_args(struct snap_restore *r, int argc, char **argv)
{
	struct snap_restore_flags f = {NULL, NULL, NULL};
	int rv;

	for (int i = 1; i < argc; i++) {
		if (rsctl_is_help(argv[i])) {
			fputs(snap_restore_usage, stdout);
			return -1;
		}
		rv = snap_restore_flag(argc, argv, &i, &f);
		if (rv < 0)
			return -rv;
		if (rv == 1)
			continue;
		if (argv[i][0] == '-' || r->file != NULL)
			return rsctl_usage_errorf(SNAP_HELP, "unexpected argument '%s'",
						  argv[i]);
		r->file = argv[i];
	}
	return snap_restore_check(r, &f);
}

static int snap_restore(struct snap_restore *r)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct backup_info info;
	int rv = snap_check_dir(r->data_dir, errmsg);

	if (rv != RS_OK) {
		rsctl_errorf("snapshot restore: %s", errmsg);
		return rv == RS_EEXIST ? RSCTL_EXIT_USAGE : RSCTL_EXIT_FAIL;
	}
	rv = snap_build(r, &info, errmsg);
	if (rv != RS_OK) {
		rsctl_errorf("snapshot restore: %s; nothing was written to %s",
			     rv == RS_ENOMEM && errmsg[0] == '\0' ? "out of memory"
								   : errmsg,
			     r->data_dir);
		return rv == RS_ENOTFOUND ? RSCTL_EXIT_USAGE : RSCTL_EXIT_FAIL;
	}
	rv = snap_write_dir(r, &info, errmsg);
	if (rv != RS_OK) {
		rsctl_errorf("snapshot restore: %s (%s may hold a partial restore: "
			     "remove it before trying again)", errmsg, r->data_dir);
		return RSCTL_EXIT_FAIL;
	}
	printf("restored %s into %s: node %" PRIu64 ", version %" PRIu64 ", %" PRIu64
	       " keys; coordinators set to --initial-cluster, %" PRIu64 " old "
	       "system keys dropped or replaced\n",
	       r->file, r->data_dir, r->id, info.header.version, r->keys_kept + 1,
	       r->keys_dropped);
	return RSCTL_EXIT_OK;
}

int snap_restore_run(int argc, char **argv)
{
	struct snap_restore *r = calloc(1, sizeof *r);
	int rv;

	if (r == NULL) {
		rsctl_errorf("snapshot restore: out of memory");
		return RSCTL_EXIT_FAIL;
	}
	rs_buf_init(&r->snap);
	rv = snap_restore_args(r, argc, argv);
	if (rv == RSCTL_EXIT_OK)
		rv = snap_restore(r);
	else if (rv < 0)
		rv = RSCTL_EXIT_OK; /* --help */
	rs_buf_free(&r->snap);
	free(r);
	return rv;
}
