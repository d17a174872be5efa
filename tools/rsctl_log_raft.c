/*
 * rsctl log, the rest of a data dir: what verify and inspect check besides
 * the store when DIR is a node's data dir (rsctl_log.h).
 *
 *   DIR/raft/<segments>   c-raft 0.15's Raft log, checked by raftseg (the
 *                         same check raftstored runs before raft_start):
 *                         headers, checksums, entry counts, torn tails
 *   DIR/raft/metadata1,2  c-raft's term and vote files (below)
 *   DIR/raft/snapshot-T-I-MS.meta and snapshot-T-I-MS
 *                         c-raft's snapshots (below)
 *   DIR/identity          identity_read (coordinator/identity.h)
 *
 * Guarantees: every file is opened O_RDONLY and nothing is created,
 * renamed, cut or deleted; memory stays bounded (a segment is at most
 * 8 MiB and is read whole, as raftstored reads it; a snapshot's data is
 * streamed in blocks).  Each problem becomes a finding naming the file and,
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
 * c-raft 0.15's formats, learned from its src/uv_metadata.c,
 * src/uv_snapshot.c, src/configuration.c and src/compress.c (all integers
 * little-endian):
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
 *
 *   snapshot-T-I-MS.meta (written first, then the data file)
 *     0  u64  format: 1
 *     8  u64  crc: c-raft's segment checksum (raftseg.h) of bytes 16..31
 *             and the configuration (the upper 32 bits are 0)
 *     16 u64  index of the configuration's entry
 *     24 u64  length L of the configuration: 1..1 MiB
 *     32 L    configuration: u8 format 1, u64 n, then n times { u64 id,
 *             address NUL-terminated, u8 role (0 standby, 1 voter,
 *             2 spare) }, padded to a multiple of 8 bytes
 *   snapshot-T-I-MS (c-raft ignores a .meta whose data file is missing or
 *   empty): an LZ4 frame with a content checksum (raftstored turns
 *   compression on), or the raw data (as rsctl snapshot restore writes
 *   it); either way the state machine's snapshot, raftstore/fsm.h's
 *   "RSSNAP" header with the CRC-32C of the image.  The frame and the
 *   image are checked as they stream through, not loaded whole; the
 *   image's structure is not checked (that needs the whole index).
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coordinator/identity.h"
#include "raftstore/fsm.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftseg.h"
#include "storage/fileio.h"
#include "tools/rsctl_log.h"

#define LOG_CRAFT_FORMAT 1u /* c-raft 0.15's UV__DISK_FORMAT */
#define LOG_METADATA_SIZE 32u
#define LOG_SNAP_META_HEADER 32u
#define LOG_SNAP_CONF_MAX (1024u * 1024u) /* c-raft's bound */
#define LOG_NAME_MAX 256
#define LOG_STREAM_BLOCK (64u * 1024u)
#define LOG_LZ4F_MAGIC 0x184D2204u
#define LOG_LOCK_FILE "LOCK" /* a node's lock: docs/storage-format.md */
/* c-raft's server roles (raft.h: RAFT_STANDBY, RAFT_VOTER, RAFT_SPARE). */
#define LOG_ROLE_VOTER 1u
#define LOG_ROLE_MAX 2u

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

/* ---- findings ---- */

static void raft_find(struct log_raft *r, const char *label, bool crash,
		      const char *dir, const char *file, bool at,
		      uint64_t offset, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
static void raft_find(struct log_raft *r, const char *label, bool crash,
		      const char *dir, const char *file, bool at,
		      uint64_t offset, const char *fmt, ...)
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
		raft_find(r, "ERROR", false, dir, NULL, false, 0, "%s (%s)",
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
			raft_find(r, "CORRUPT", false, dir, s->name, true,
				  s->bad_offset,
				  "%s, batch %" PRIu32 ": %s; %" PRIu32
				  " valid batches (%" PRIu64
				  " entries) before it",
				  entry, s->bad_batch, s->why, s->batches,
				  s->entries);
		else if (s->needs_repair)
			raft_find(r, "TORN", true, dir, s->name, true,
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
			raft_find(r, "ERROR", false, path, NULL, false, 0,
				  "%s", strerror(errno));
		return;
	}
	m->present = true;
	m->size = (uint64_t)st.st_size;
	if (m->size > LOG_METADATA_SIZE) {
		raft_find(r, "CORRUPT", false, path, NULL, true,
			  LOG_METADATA_SIZE,
			  "%" PRIu64 " bytes, c-raft writes %u (it refuses "
			  "to start)", m->size, LOG_METADATA_SIZE);
		return;
	}
	if (m->size < LOG_METADATA_SIZE) {
		raft_find(r, "TORN", true, path, NULL, true, m->size,
			  "%" PRIu64 " of %u bytes: a write a crash cut "
			  "short; c-raft deletes the file when it starts",
			  m->size, LOG_METADATA_SIZE);
		return;
	}
	rv = fileio_read_all(path, &data, &len, errmsg);
	if (rv != RS_OK || len != LOG_METADATA_SIZE) {
		raft_find(r, "ERROR", false, path, NULL, false, 0, "%s",
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
		raft_find(r, "FORMAT", false, path, NULL, true, 0,
			  "format version %" PRIu64 ", c-raft "
			  RAFTSEG_CRAFT_VERSION " writes %u", format,
			  LOG_CRAFT_FORMAT);
	else if (m->version == 0)
		raft_find(r, "CORRUPT", false, path, NULL, true, 8,
			  "version 0 (c-raft refuses to start)");
	else if (m->version % 2 != n % 2)
		raft_find(r, "CORRUPT", false, path, NULL, true, 8,
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
	raft_find(r, "CORRUPT", false, path, NULL, true, 16,
		  "term %" PRIu64 " at version %" PRIu64 ", below %s's term "
		  "%" PRIu64 " at version %" PRIu64 ": c-raft never lowers "
		  "its term",
		  newer->term, newer->version, older->name, older->term,
		  older->version);
}

/* ---- snapshots ---- */

/* A run of decimal digits at *s, as c-raft's %llu reads a file name. */
static bool raft_name_u64(const char **s, uint64_t *v)
{
	const char *p = *s;

	*v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (*v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		*v = *v * 10 + (uint64_t)(*p - '0');
	}
	if (p == *s)
		return false;
	*s = p;
	return true;
}

/* "snapshot-T-I-MS" followed by ".meta" (*meta) or nothing. */
static bool raft_snapshot_name(const char *name, struct log_snapshot *s,
			       bool *meta)
{
	const char *p = name;

	if (strncmp(p, "snapshot-", 9) != 0 || strlen(name) >= LOG_NAME_MAX)
		return false;
	p += 9;
	if (!raft_name_u64(&p, &s->term) || *p++ != '-' ||
	    !raft_name_u64(&p, &s->index) || *p++ != '-' ||
	    !raft_name_u64(&p, &s->stamp))
		return false;
	*meta = strcmp(p, ".meta") == 0;
	return *meta || *p == '\0';
}

/* c-raft's order: term, then index, then timestamp. */
static int raft_snapshot_order(const void *a, const void *b)
{
	const struct log_snapshot *x = a, *y = b;

	if (x->term != y->term)
		return x->term < y->term ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return x->stamp < y->stamp ? -1 : x->stamp > y->stamp;
}

/* The encoded configuration at conf[0..len): servers and voters, or a
 * finding at its offset in the .meta file. */
static bool raft_decode_configuration(struct log_raft *r, const char *path,
				      const uint8_t *conf, size_t len,
				      struct log_snapshot *s)
{
	const uint64_t base = LOG_SNAP_META_HEADER;
	size_t pos = 9;
	uint64_t n, *ids;
	bool ok = true;

	if (conf[0] != 1 || len < 9) {
		raft_find(r, "CORRUPT", false, path, NULL, true, base,
			  "configuration: %s", conf[0] != 1 ?
			  "encoding format is not 1" : "cut short");
		return false;
	}
	n = rs_get_u64(conf + 1);
	if (n == 0 || n > len / 10) { /* id, one address byte, NUL, role */
		raft_find(r, "CORRUPT", false, path, NULL, true, base + 1,
			  "configuration: %" PRIu64 " servers in %zu bytes", n,
			  len);
		return false;
	}
	ids = calloc(n, sizeof *ids);
	if (ids == NULL) {
		r->oom = true;
		return false;
	}
	for (uint64_t i = 0; ok && i < n; i++) {
		const uint8_t *nul;
		size_t at = pos;

		nul = pos + 8 < len ? memchr(conf + pos + 8, 0, len - pos - 8)
				    : NULL;
		ok = nul != NULL && (size_t)(nul - conf) + 1 < len;
		if (ok) {
			ids[i] = rs_get_u64(conf + pos);
			pos = (size_t)(nul - conf) + 1;
			ok = ids[i] != 0 && conf[pos] <= LOG_ROLE_MAX;
			s->voters += conf[pos] == LOG_ROLE_VOTER;
			pos++;
		}
		for (uint64_t j = 0; ok && j < i; j++)
			ok = ids[j] != ids[i];
		if (!ok)
			raft_find(r, "CORRUPT", false, path, NULL, true,
				  base + at,
				  "configuration: server %" PRIu64 " of %" PRIu64
				  " is cut short, has id 0 or a known id, or "
				  "an unknown role", i + 1, n);
	}
	free(ids);
	if (ok && len - pos >= 8) {
		raft_find(r, "CORRUPT", false, path, NULL, true, base + pos,
			  "configuration: %zu bytes after the last server",
			  len - pos);
		ok = false;
	}
	s->servers = n;
	return ok;
}

/* The .meta file: header, checksum, configuration. */
static bool raft_check_snapshot_meta(struct log_raft *r,
				     struct log_snapshot *s)
{
	char errmsg[RS_ERRMSG_SIZE];
	char path[LOG_PATH_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t format, crc_field, conf_len;
	uint32_t crc;
	bool ok = false;
	int rv;

	log_file_path(path, r->d->raft, s->meta);
	s->meta_size = log_file_size(path);
	if (s->meta_size < LOG_SNAP_META_HEADER ||
	    s->meta_size > LOG_SNAP_META_HEADER + LOG_SNAP_CONF_MAX) {
		raft_find(r, "CORRUPT", false, path, NULL, true,
			  s->meta_size < LOG_SNAP_META_HEADER ? s->meta_size
							      : 0,
			  "%" PRIu64 " bytes: not a header of %u and a "
			  "configuration of 1..%u bytes", s->meta_size,
			  LOG_SNAP_META_HEADER, LOG_SNAP_CONF_MAX);
		return false;
	}
	rv = fileio_read_all(path, &data, &len, errmsg);
	if (rv != RS_OK || len < LOG_SNAP_META_HEADER) {
		raft_find(r, "ERROR", false, path, NULL, false, 0, "%s",
			  rv != RS_OK ? errmsg : "changed size while read");
		free(data);
		return false;
	}
	format = rs_get_u64(data);
	crc_field = rs_get_u64(data + 8);
	s->conf_index = rs_get_u64(data + 16);
	conf_len = rs_get_u64(data + 24);
	crc = raftseg_crc32(0, data + 16, 16);
	if (format != LOG_CRAFT_FORMAT)
		raft_find(r, "FORMAT", false, path, NULL, true, 0,
			  "format version %" PRIu64 ", c-raft "
			  RAFTSEG_CRAFT_VERSION " writes %u", format,
			  LOG_CRAFT_FORMAT);
	else if (conf_len == 0 || conf_len != len - LOG_SNAP_META_HEADER)
		raft_find(r, "CORRUPT", false, path, NULL, true, 24,
			  "configuration length %" PRIu64 ", but %zu bytes "
			  "follow the header", conf_len,
			  len - LOG_SNAP_META_HEADER);
	else if ((crc = raftseg_crc32(crc, data + LOG_SNAP_META_HEADER,
				      conf_len)) != crc_field)
		raft_find(r, "CORRUPT", false, path, NULL, true, 8,
			  "checksum mismatch: stored %08" PRIx64
			  ", computed %08" PRIx32, crc_field, crc);
	else if (s->conf_index == 0 || s->conf_index > s->index)
		raft_find(r, "CORRUPT", false, path, NULL, true, 16,
			  "configuration index %" PRIu64 ", not in 1..%" PRIu64
			  " (the snapshot's index)", s->conf_index, s->index);
	else
		ok = raft_decode_configuration(r, path,
					       data + LOG_SNAP_META_HEADER,
					       (size_t)conf_len, s);
	free(data);
	return ok;
}

/* The state machine's snapshot as it streams: RSSNAP header, CRC-32C. */
struct log_image {
	uint8_t header[FSM_SNAPSHOT_HEADER];
	uint64_t got; /* bytes seen, header included */
	uint32_t crc;
};

static void raft_image_feed(struct log_image *im, const uint8_t *p, size_t n)
{
	while (n > 0 && im->got < FSM_SNAPSHOT_HEADER) {
		im->header[im->got++] = *p++;
		n--;
	}
	im->crc = crc32c_extend(im->crc, p, n);
	im->got += n;
}

/* Judge the image once the stream ended: a finding on the data file. */
static bool raft_image_check(struct log_raft *r, const char *path,
			     const struct log_image *im,
			     struct log_snapshot *s)
{
	const char *where = s->compressed ? "decompressed " : "";

	if (im->got < FSM_SNAPSHOT_HEADER ||
	    memcmp(im->header, FSM_SNAPSHOT_MAGIC, 8) != 0 ||
	    rs_get_u32(im->header + 8) != FSM_SNAPSHOT_FORMAT) {
		raft_find(r, "CORRUPT", false, path, NULL, !s->compressed, 0,
			  "%sdata: no raftstore snapshot header (\"RSSNAP\", "
			  "format %u, %u bytes)", where, FSM_SNAPSHOT_FORMAT,
			  FSM_SNAPSHOT_HEADER);
		return false;
	}
	s->version = rs_get_u64(im->header + 16);
	s->epoch = rs_get_u64(im->header + 24);
	s->image_bytes = im->got - FSM_SNAPSHOT_HEADER;
	if (im->crc == rs_get_u32(im->header + 12))
		return true;
	raft_find(r, "CORRUPT", false, path, NULL, !s->compressed,
		  FSM_SNAPSHOT_HEADER,
		  "%sdata: image checksum mismatch (CRC-32C of %" PRIu64
		  " bytes from byte %u): stored %08" PRIx32 ", computed %08"
		  PRIx32, where, s->image_bytes, FSM_SNAPSHOT_HEADER,
		  rs_get_u32(im->header + 12), im->crc);
	return false;
}

/* Feed in[0..got), read at file offset off, to the image: through LZ4F
 * when the file is a frame (*dctx), as is otherwise.  *hint is what LZ4F
 * last returned: 0 once the frame ended.  False with a finding. */
static bool raft_feed_block(struct log_raft *r, const char *path,
			    LZ4F_dctx *dctx, const uint8_t *in, size_t got,
			    uint64_t off, size_t *hint, struct log_image *im)
{
	static uint8_t out[LOG_STREAM_BLOCK]; /* rsctl is single-threaded */
	size_t pos = 0;

	if (dctx == NULL) {
		raft_image_feed(im, in, got);
		return true;
	}
	while (pos < got) {
		size_t n_out = sizeof out, n_in = got - pos;

		if (*hint == 0) {
			raft_find(r, "CORRUPT", false, path, NULL, true,
				  off + pos,
				  "bytes after the end of the LZ4 frame");
			return false;
		}
		*hint = LZ4F_decompress(dctx, out, &n_out, in + pos, &n_in,
					NULL);
		if (LZ4F_isError(*hint)) {
			raft_find(r, "CORRUPT", false, path, NULL, true,
				  off + pos, "LZ4 frame: %s",
				  LZ4F_getErrorName(*hint));
			return false;
		}
		raft_image_feed(im, out, n_out);
		pos += n_in;
	}
	return true;
}

/* Stream the data file, block by block, into the image check.  False
 * with a finding. */
static bool raft_stream_data(struct log_raft *r, const char *path, int fd,
			     struct log_snapshot *s, struct log_image *im)
{
	static uint8_t in[LOG_STREAM_BLOCK]; /* rsctl is single-threaded */
	char errmsg[RS_ERRMSG_SIZE];
	LZ4F_dctx *dctx = NULL;
	uint64_t off = 0;
	size_t hint = 1, got = 0;
	bool ok = true;
	int rv = RS_OK;

	while (ok && (rv = fileio_pread(fd, in, sizeof in, (off_t)off, &got,
					errmsg)) == RS_OK && got > 0) {
		if (off == 0 && got >= 4 && rs_get_u32(in) == LOG_LZ4F_MAGIC) {
			s->compressed = true;
			if (LZ4F_isError(LZ4F_createDecompressionContext(
				    &dctx, LZ4F_VERSION))) {
				r->oom = true;
				return false;
			}
		}
		ok = raft_feed_block(r, path, dctx, in, got, off, &hint, im);
		off += got;
	}
	if (ok && rv != RS_OK) {
		raft_find(r, "ERROR", false, path, NULL, true, off, "%s",
			  errmsg);
		ok = false;
	}
	if (ok && dctx != NULL && hint != 0) {
		raft_find(r, "CORRUPT", false, path, NULL, true, off,
			  "LZ4 frame cut short by the end of the file");
		ok = false;
	}
	if (dctx != NULL)
		LZ4F_freeDecompressionContext(dctx);
	return ok;
}

/* The data file: present, not empty, its frame and image intact. */
static bool raft_check_snapshot_data(struct log_raft *r,
				     struct log_snapshot *s)
{
	char errmsg[RS_ERRMSG_SIZE];
	char name[LOG_NAME_MAX], path[LOG_PATH_MAX];
	struct log_image im;
	bool ok;
	int fd;

	snprintf(name, sizeof name, "%.*s", (int)(strlen(s->meta) - 5),
		 s->meta);
	log_file_path(path, r->d->raft, name);
	s->data_size = log_file_size(path);
	if (s->data_size == 0) {
		s->orphan = true;
		raft_find(r, "TORN", true, r->d->raft, s->meta, false, 0,
			  "its data file %s is missing or empty: a snapshot "
			  "a crash interrupted; c-raft ignores it", name);
		return false;
	}
	if (fileio_open(path, O_RDONLY, &fd, errmsg) != RS_OK) {
		raft_find(r, "ERROR", false, path, NULL, false, 0, "%s",
			  errmsg);
		return false;
	}
	memset(&im, 0, sizeof im);
	ok = raft_stream_data(r, path, fd, s, &im) &&
	     raft_image_check(r, path, &im, s);
	fileio_close(fd);
	return ok;
}

static int raft_list_snapshots(struct log_raft *r)
{
	DIR *dp = opendir(r->d->raft);
	struct log_snapshot s;
	struct dirent *e;
	bool meta;

	if (dp == NULL) {
		raft_find(r, "ERROR", false, r->d->raft, NULL, false, 0,
			  "list snapshots: %s", strerror(errno));
		return RS_EIO;
	}
	while ((e = readdir(dp)) != NULL) {
		struct log_snapshot *grown;
		memset(&s, 0, sizeof s);
		if (!raft_snapshot_name(e->d_name, &s, &meta) || !meta)
			continue;
		grown = realloc(r->snaps, (r->nsnaps + 1) * sizeof *grown);
		if (grown == NULL) {
			r->oom = true;
			break;
		}
		snprintf(s.meta, sizeof s.meta, "%s", e->d_name);
		r->snaps = grown;
		r->snaps[r->nsnaps++] = s;
	}
	closedir(dp);
	if (r->nsnaps > 0)
		qsort(r->snaps, r->nsnaps, sizeof *r->snaps,
		      raft_snapshot_order);
	return RS_OK;
}

static void raft_check_snapshots(struct log_raft *r)
{
	if (raft_list_snapshots(r) != RS_OK)
		return;
	for (size_t i = 0; i < r->nsnaps; i++) {
		struct log_snapshot *s = &r->snaps[i];
		/* The data first: c-raft skips a .meta without its data. */
		bool data = raft_check_snapshot_data(r, s);
		s->valid = !s->orphan && raft_check_snapshot_meta(r, s) && data;
	}
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
		raft_find(r, "NOTE", false, d->arg, LOG_LOCK_FILE, false, 0,
			  "raftstored (pid %ld) runs on this data dir: its files "
			  "may change while they are read, so a torn tail or a "
			  "read error may be a write in flight", pid);
	raft_check_segments(r);
	raft_check_metadata(r);
	raft_check_snapshots(r);
	r->ident_rv = identity_read(d->arg, &r->ident, errmsg);
	if (r->ident_rv != RS_OK && r->ident_rv != RS_ENOTFOUND) {
		log_file_path(path, d->arg, IDENTITY_FILE);
		raft_find(r, log_problem_label(r->ident_rv), false, path, NULL,
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

static void raft_inspect_snapshots(const struct log_raft *r)
{
	for (size_t i = 0; i < r->nsnaps; i++) {
		const struct log_snapshot *s = &r->snaps[i];
		printf("  %s\n    term %" PRIu64 ", index %" PRIu64, s->meta,
		       s->term, s->index);
		if (!s->valid) {
			printf(", %s (see below)\n",
			       s->orphan ? "unfinished" : "not valid");
			continue;
		}
		printf(", configuration at index %" PRIu64 ": %" PRIu64
		       " server%s, %" PRIu64 " voter%s\n", s->conf_index,
		       s->servers, log_plural(s->servers), s->voters,
		       log_plural(s->voters));
		printf("    data %" PRIu64 " bytes%s: state at version %" PRIu64
		       ", epoch %" PRIu64 ", image %" PRIu64 " bytes, valid\n",
		       s->data_size, s->compressed ? " (LZ4)" : "",
		       s->version, s->epoch, s->image_bytes);
	}
	if (r->nsnaps == 0)
		printf("  no snapshots\n");
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
	raft_inspect_snapshots(r);
	printf("identity %s/%s: ", d->arg, IDENTITY_FILE);
	raft_print_identity_line(r);
}
