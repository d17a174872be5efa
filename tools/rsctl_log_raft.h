/*
 * rsctl_log_raft: internal header of the Raft side of `rsctl log` on a
 * data dir (rsctl_log.h declares what verify and inspect call), split by
 * concern around it:
 *
 *   rsctl_log_raft.c   findings, segments (raftseg), metadata1/2, the
 *                      identity, DIR/LOCK, and the printing
 *   rsctl_log_snap.c   snapshots: the .meta file and the data file
 *
 * Every check reads only; each problem it finds becomes a finding
 * (log_raft_find), printed later by log_raft_print_problems.
 */
#ifndef RS_RSCTL_LOG_RAFT_H
#define RS_RSCTL_LOG_RAFT_H

#include <stdbool.h>
#include <stdint.h>

#include "coordinator/identity.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftseg.h"
#include "tools/rsctl_log.h"

#define LOG_CRAFT_FORMAT 1u /* c-raft 0.15's UV__DISK_FORMAT */
#define LOG_NAME_MAX 256

struct log_finding {
	const char *label;  /* CORRUPT, FORMAT, TORN, ERROR, NOTE */
	bool crash_trace;   /* cleared by the next start; see the top */
	bool note;          /* not a problem at all: never counted */
	bool at;            /* offset is known */
	uint64_t offset;
	char path[LOG_PATH_MAX];
	char what[RS_ERRMSG_SIZE];
};

struct log_metadata {
	char name[16];
	bool present;
	bool valid;
	uint64_t size;
	uint64_t version;
	uint64_t term;
	uint64_t vote;
};

struct log_snapshot {
	char meta[LOG_NAME_MAX]; /* snapshot-T-I-MS.meta */
	uint64_t term, index, stamp;
	bool valid;
	bool orphan;		/* data file missing or empty */
	uint64_t meta_size;
	uint64_t conf_index;
	uint64_t servers, voters;
	uint64_t data_size;
	bool compressed;
	uint64_t image_bytes;   /* after the RSSNAP header */
	uint64_t version, epoch; /* of the state in it */
};

struct log_raft {
	const struct log_dirs *d;
	int seg_rv; /* raftseg_check_dir's */
	struct raftseg_report segs;
	struct log_metadata md[2];
	int md_used; /* the one c-raft would use: 0, 1, or -1 */
	struct log_snapshot *snaps;
	size_t nsnaps;
	int ident_rv;
	struct identity ident;
	struct log_finding *finds;
	size_t nfinds;
	bool oom;
};

/* Add a finding: LABEL (CORRUPT, FORMAT, TORN, ERROR or NOTE) about
 * dir/file (or dir alone when file is NULL), at byte offset if at is set.
 * crash: a trace the next start clears (counted by verify only).  Out of
 * memory sets r->oom. */
void log_raft_find(struct log_raft *r, const char *label, bool crash,
		   const char *dir, const char *file, bool at, uint64_t offset,
		   const char *fmt, ...) __attribute__((format(printf, 8, 9)));

/* Check every snapshot in DIR/raft (rsctl_log_snap.c). */
void log_raft_check_snapshots(struct log_raft *r);

/* inspect's lines about the snapshots (rsctl_log_snap.c). */
void log_raft_inspect_snapshots(const struct log_raft *r);

#endif /* RS_RSCTL_LOG_RAFT_H */
