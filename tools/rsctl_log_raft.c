/*
 * rsctl log, the rest of a data dir: what verify and inspect check besides
 * the store when DIR is a node's data dir (rsctl_log.h).
 *
 *   DIR/raft/<segments>   c-raft 0.15's Raft log, checked by raftseg (the
 *                         same check raftstored runs before raft_start):
 *                         headers, checksums, entry counts, torn tails
 *   DIR/raft/metadata1,2  c-raft's term and vote files (below)
 *   DIR/raft/snapshot-T-I-MS.meta and snapshot-T-I-MS
 *                         c-raft's snapshots (rsctl_log_snap.c)
 *   DIR/identity          identity_read (coordinator/identity.h)
 *
 * Guarantees: every file is opened O_RDONLY and nothing is created,
 * renamed, cut or deleted; memory stays bounded (a segment is read
 * whole, as raftstored reads it: 1 MiB, or one batch of at most 10 MiB
 * that outgrew it; a snapshot's data is streamed in blocks).  Each problem becomes a finding naming the file and,
 * where one is known, the byte offset.  Findings that are the normal trace
 * of a crash, which raftstored or c-raft clear at the next start (a torn
 * tail of an open segment, a metadata file cut short, a snapshot whose
 * data file is missing or empty), are marked as such: verify counts them,
 * inspect only notes them.
 *
 * A node that runs while this reads may append to, close or delete its
 * segments and rewrite a metadata file: a tail being written reads as
 * torn, and a file renamed in between reads as an error.  Only the files
 * of a stopped node (or a copy) give a definite answer; when DIR/LOCK
 * names a running raftstored, a NOTE line says so (never counted).
 *
 * c-raft 0.15's metadata format, learned from its src/uv_metadata.c (all
 * integers little-endian):
 *
 *   metadataN (32 bytes; no checksum)
 *     0  u64  format: 1
 *     8  u64  version: a counter, +1 at every write; odd ones go to
 *             metadata1, even ones to metadata2, and c-raft uses the
 *             file with the higher one (both equal: it refuses to start)
 *     16 u64  term
 *     24 u64  voted for (a server id, 0 for none)
 *   A file shorter than 32 bytes is a write a crash cut short: c-raft
 *   deletes it at start.  Longer, format not 1 or version 0: it refuses.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coordinator/identity.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftseg.h"
#include "storage/fileio.h"
#include "tools/rsctl_log_raft.h"

#define LOG_METADATA_SIZE 32u
#define LOG_LOCK_FILE "LOCK" /* a node's lock: docs/storage-format.md */

/* ---- findings ---- */

void log_raft_find(struct log_raft *r, const char *label, bool crash,
		   const char *dir, const char *file, bool at, uint64_t offset,
		   const char *fmt, ...)
{
	struct log_finding *f;
	va_list ap;

	f = realloc(r->finds, (r->nfinds + 1) * sizeof *f);
	if (f == NULL) {
		r->oom = true;
		return;
	}
	r->finds = f;
	f = &r->finds[r->nfinds++];
	f->label = label;
	f->crash_trace = crash;
	f->note = strcmp(label, "NOTE") == 0;
	f->at = at;
	f->offset = offset;
	if (file != NULL)
		log_file_path(f->path, dir, file);
	else
		snprintf(f->path, sizeof f->path, "%s", dir);
	va_start(ap, fmt);
	vsnprintf(f->what, sizeof f->what, fmt, ap);
	va_end(ap);
}

/* ---- segments ---- */

static void raft_check_segments(struct log_raft *r)
{
	char errmsg[RS_ERRMSG_SIZE];
	const char *dir = r->d->raft;

	r->seg_rv = raftseg_check_dir(dir, &r->segs, errmsg);
	if (r->seg_rv != RS_OK && r->seg_rv != RS_ETORN &&
	    r->seg_rv != RS_ECORRUPT) {
		log_raft_find(r, "ERROR", false, dir, NULL, false, 0, "%s (%s)",
			  errmsg, rs_strerror(r->seg_rv));
		return;
	}
	for (size_t i = 0; i < r->segs.n; i++) {
		const struct raftseg_info *s = &r->segs.segs[i];
		char entry[48] = "entry index unknown";

		if (s->bad_index != 0)
			snprintf(entry, sizeof entry, "entry %" PRIu64,
				 s->bad_index);
		if (s->verdict == RAFTSEG_CORRUPT)
			log_raft_find(r, "CORRUPT", false, dir, s->name, true,
				  s->bad_offset,
				  "%s, batch %" PRIu32 ": %s; %" PRIu32
				  " valid batches (%" PRIu64
				  " entries) before it",
				  entry, s->bad_batch, s->why, s->batches,
				  s->entries);
		else if (s->needs_repair)
			log_raft_find(r, "TORN", true, dir, s->name, true,
				  s->bad_offset,
				  "torn tail (%s, batch %" PRIu32 "): %s; %" PRIu32
				  " valid batches (%" PRIu64
				  " entries) before it; raftstored cuts the "
				  "file at byte %" PRIu64 " when it starts",
				  entry, s->bad_batch, s->why, s->batches,
				  s->entries, s->batches > 0 ? s->valid_end : 0);
	}
}

/* ---- metadata1, metadata2 ---- */

/* Read and check one file alone; the pair is checked after. */
static void raft_check_metadata_file(struct log_raft *r, unsigned n)
{
	struct log_metadata *m = &r->md[n - 1];
	const char *dir = r->d->raft;
	char errmsg[RS_ERRMSG_SIZE];
	char path[LOG_PATH_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t format;
	struct stat st;
	int rv;

	snprintf(m->name, sizeof m->name, "metadata%u", n);
	log_file_path(path, dir, m->name);
	if (stat(path, &st) != 0) {
		if (errno != ENOENT)
			log_raft_find(r, "ERROR", false, path, NULL, false, 0,
				  "%s", strerror(errno));
		return;
	}
	m->present = true;
	m->size = (uint64_t)st.st_size;
	if (m->size > LOG_METADATA_SIZE) {
		log_raft_find(r, "CORRUPT", false, path, NULL, true,
			  LOG_METADATA_SIZE,
			  "%" PRIu64 " bytes, c-raft writes %u (it refuses "
			  "to start)", m->size, LOG_METADATA_SIZE);
		return;
	}
	if (m->size < LOG_METADATA_SIZE) {
		log_raft_find(r, "TORN", true, path, NULL, true, m->size,
			  "%" PRIu64 " of %u bytes: a write a crash cut "
			  "short; c-raft deletes the file when it starts",
			  m->size, LOG_METADATA_SIZE);
		return;
	}
	rv = fileio_read_all(path, &data, &len, errmsg);
	if (rv != RS_OK || len != LOG_METADATA_SIZE) {
		log_raft_find(r, "ERROR", false, path, NULL, false, 0, "%s",
			  rv != RS_OK ? errmsg : "changed size while read");
		free(data);
		return;
	}
	format = rs_get_u64(data);
	m->version = rs_get_u64(data + 8);
	m->term = rs_get_u64(data + 16);
	m->vote = rs_get_u64(data + 24);
	free(data);
	if (format != LOG_CRAFT_FORMAT)
		log_raft_find(r, "FORMAT", false, path, NULL, true, 0,
			  "format version %" PRIu64 ", c-raft "
			  RAFTSEG_CRAFT_VERSION " writes %u", format,
			  LOG_CRAFT_FORMAT);
	else if (m->version == 0)
		log_raft_find(r, "CORRUPT", false, path, NULL, true, 8,
			  "version 0 (c-raft refuses to start)");
	else if (m->version % 2 != n % 2)
		log_raft_find(r, "CORRUPT", false, path, NULL, true, 8,
			  "version %" PRIu64 " is %s, but c-raft writes %s "
			  "versions to metadata%u", m->version,
			  n == 1 ? "even" : "odd", n == 1 ? "even" : "odd",
			  n == 1 ? 2 : 1);
	else
		m->valid = true;
}

static void raft_check_metadata(struct log_raft *r)
{
	const struct log_metadata *m1 = &r->md[0], *m2 = &r->md[1];
	const struct log_metadata *newer, *older;
	char path[LOG_PATH_MAX];

	raft_check_metadata_file(r, 1);
	raft_check_metadata_file(r, 2);
	r->md_used = m1->valid ? 0 : m2->valid ? 1 : -1;
	if (!m1->valid || !m2->valid)
		return;
	/* Parity makes equal versions impossible between two valid files. */
	assert(m1->version != m2->version);
	r->md_used = m1->version > m2->version ? 0 : 1;
	newer = &r->md[r->md_used];
	older = &r->md[1 - r->md_used];
	if (newer->term >= older->term)
		return;
	log_file_path(path, r->d->raft, newer->name);
	log_raft_find(r, "CORRUPT", false, path, NULL, true, 16,
		  "term %" PRIu64 " at version %" PRIu64 ", below %s's term "
		  "%" PRIu64 " at version %" PRIu64 ": c-raft never lowers "
		  "its term",
		  newer->term, newer->version, older->name, older->term,
		  older->version);
}

/* ---- a running node ---- */

/* DIR/LOCK holds the PID of the raftstored that locked the data dir
 * (docs/storage-format.md); the lock goes with the process, the file
 * stays.  Returns that PID if the process runs and is a raftstored, else
 * 0.  Only reads: taking the lock to test it could make a node starting
 * meanwhile refuse to. */
static long raft_running_node(const char *data_dir)
{
	char path[LOG_PATH_MAX], comm[64];
	long pid = 0;
	FILE *f;

	log_file_path(path, data_dir, LOG_LOCK_FILE);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 0)
		pid = 0;
	fclose(f);
	if (pid == 0)
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/comm", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(comm, sizeof comm, f) == NULL ||
	    strstr(comm, "raftstored") == NULL)
		pid = 0;
	fclose(f);
	return pid;
}

/* ---- the whole ---- */

struct log_raft *log_raft_check(const struct log_dirs *d)
{
	char errmsg[RS_ERRMSG_SIZE];
	char path[LOG_PATH_MAX];
	struct log_raft *r;
	long pid;

	assert(d->data_dir);
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		rsctl_errorf("log: out of memory");
		return NULL;
	}
	r->d = d;
	r->md_used = -1;
	pid = raft_running_node(d->arg);
	if (pid != 0)
		log_raft_find(r, "NOTE", false, d->arg, LOG_LOCK_FILE, false, 0,
			  "raftstored (pid %ld) runs on this data dir: its files "
			  "may change while they are read, so a torn tail or a "
			  "read error may be a write in flight", pid);
	raft_check_segments(r);
	raft_check_metadata(r);
	log_raft_check_snapshots(r);
	r->ident_rv = identity_read(d->arg, &r->ident, errmsg);
	if (r->ident_rv != RS_OK && r->ident_rv != RS_ENOTFOUND) {
		log_file_path(path, d->arg, IDENTITY_FILE);
		log_raft_find(r, log_problem_label(r->ident_rv), false, path, NULL,
			  false, 0, "%s (%s)", errmsg,
			  rs_strerror(r->ident_rv));
	}
	if (r->oom) {
		rsctl_errorf("log: out of memory");
		log_raft_free(r);
		return NULL;
	}
	return r;
}

void log_raft_free(struct log_raft *r)
{
	if (r == NULL)
		return;
	raftseg_report_free(&r->segs);
	free(r->snaps);
	free(r->finds);
	free(r);
}

/* ---- printing ---- */

unsigned log_raft_print_problems(const struct log_raft *r, bool crash_traces)
{
	unsigned counted = 0;

	for (size_t i = 0; i < r->nfinds; i++) {
		const struct log_finding *f = &r->finds[i];

		if (f->at)
			printf("%-8s %s at offset %" PRIu64 ": %s\n", f->label,
			       f->path, f->offset, f->what);
		else
			printf("%-8s %s: %s\n", f->label, f->path, f->what);
		counted += !f->note && (crash_traces || !f->crash_trace);
	}
	return counted;
}

/* The entry indexes the segments hold: [*lo, *hi], or false if none. */
static bool raft_entry_range(const struct log_raft *r, uint64_t *lo,
			     uint64_t *hi)
{
	*lo = *hi = 0;
	for (size_t i = 0; i < r->segs.n; i++) {
		const struct raftseg_info *s = &r->segs.segs[i];
		if (s->entries == 0 || s->first_index == 0)
			continue;
		if (*lo == 0)
			*lo = s->first_index;
		*hi = s->first_index + s->entries - 1;
	}
	return *lo != 0;
}

static void raft_print_identity_line(const struct log_raft *r)
{
	char hex[IDENTITY_CLUSTER_HEX_SIZE];

	if (r->ident_rv == RS_ENOTFOUND) {
		printf("absent (a node writes it at its first start)\n");
		return;
	}
	if (r->ident_rv != RS_OK) {
		printf("%s (see above)\n", rs_strerror(r->ident_rv));
		return;
	}
	identity_cluster_hex(&r->ident, hex);
	printf("node %" PRIu64 ", cluster %s\n", r->ident.node_id,
	       hex[0] != '\0' ? hex : "not yet known");
}

static void raft_print_metadata_used(const struct log_raft *r)
{
	const struct log_metadata *m;

	if (r->md_used < 0) {
		printf("%s\n", r->md[0].present || r->md[1].present
				       ? "no valid file (see above)"
				       : "none: no Raft state yet");
		return;
	}
	m = &r->md[r->md_used];
	printf("term %" PRIu64 ", voted for %" PRIu64 " (%s, version %" PRIu64
	       ")\n", m->term, m->vote, m->name, m->version);
}

void log_raft_print_summary(const struct log_raft *r)
{
	const struct log_dirs *d = r->d;
	uint64_t lo, hi;

	printf("raft         %s: %zu segment%s", d->raft, r->segs.n,
	       log_plural(r->segs.n));
	if (raft_entry_range(r, &lo, &hi))
		printf(", entries %" PRIu64 "..%" PRIu64, lo, hi);
	printf(", %zu snapshot%s", r->nsnaps, log_plural(r->nsnaps));
	if (r->nsnaps > 0)
		printf(" (newest at index %" PRIu64 ")",
		       r->snaps[r->nsnaps - 1].index);
	printf("\nmetadata     %s: ", d->raft);
	raft_print_metadata_used(r);
	printf("identity     %s/%s: ", d->arg, IDENTITY_FILE);
	raft_print_identity_line(r);
}

static void raft_inspect_segments(const struct log_raft *r)
{
	printf("  %-34s %12s %12s %8s %8s %10s status\n", "segment",
	       "first_index", "last_index", "batches", "entries", "size");
	for (size_t i = 0; i < r->segs.n; i++) {
		const struct raftseg_info *s = &r->segs.segs[i];
		char first[24] = "-", last[24] = "-";

		if (s->first_index != 0 && s->entries > 0) {
			snprintf(first, sizeof first, "%" PRIu64,
				 s->first_index);
			snprintf(last, sizeof last, "%" PRIu64,
				 s->first_index + s->entries - 1);
		}
		printf("  %-34s %12s %12s %8" PRIu32 " %8" PRIu64 " %10" PRIu64
		       " %s", s->name, first, last, s->batches, s->entries,
		       s->size_bytes,
		       s->needs_repair ? "torn"
				       : raftseg_verdict_name(s->verdict));
		if (s->verdict != RAFTSEG_CLEAN || s->needs_repair)
			printf(" at byte %" PRIu64, s->bad_offset);
		printf("%s\n", s->unused ? " (unused)" : "");
	}
	if (r->segs.n == 0)
		printf("  no segments\n");
}

static void raft_inspect_metadata(const struct log_raft *r)
{
	for (int i = 0; i < 2; i++) {
		const struct log_metadata *m = &r->md[i];
		printf("  %-12s ", m->name);
		if (!m->present)
			printf("absent\n");
		else if (!m->valid)
			printf("%" PRIu64 " bytes, not valid (see below)\n",
			       m->size);
		else
			printf("version %" PRIu64 ", term %" PRIu64
			       ", voted for %" PRIu64 "%s\n",
			       m->version, m->term, m->vote,
			       r->md_used == i ? " (in use)" : "");
	}
}

void log_raft_print_inspect(const struct log_raft *r)
{
	const struct log_dirs *d = r->d;

	printf("raft %s\n", d->raft);
	if (r->seg_rv == RS_OK || r->seg_rv == RS_ETORN ||
	    r->seg_rv == RS_ECORRUPT)
		raft_inspect_segments(r);
	else
		printf("  segments: cannot be checked (see below)\n");
	raft_inspect_metadata(r);
	log_raft_inspect_snapshots(r);
	printf("identity %s/%s: ", d->arg, IDENTITY_FILE);
	raft_print_identity_line(r);
}
