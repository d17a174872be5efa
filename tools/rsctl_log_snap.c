/*
 * rsctl log, a data dir's snapshots (rsctl_log_raft.h): every
 * snapshot-T-I-MS.meta in DIR/raft and its data file, checked without
 * loading the data whole.
 *
 * c-raft 0.15's format, learned from its src/uv_snapshot.c,
 * src/configuration.c and src/compress.c (all integers little-endian):
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
 *
 * Guarantees: files are opened O_RDONLY; memory stays bounded (the .meta
 * file is at most 1 MiB + 32 bytes; the data file streams through in
 * 64 KiB blocks).  A .meta without its data is a crash's trace (c-raft
 * writes the .meta first and ignores it alone); any other fault is
 * corrupt, with the byte offset where it is known.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/fsm.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "storage/fileio.h"
#include "tools/rsctl_log_raft.h"

#define LOG_SNAP_META_HEADER 32u
#define LOG_SNAP_CONF_MAX (1024u * 1024u) /* c-raft's bound */
#define LOG_STREAM_BLOCK (64u * 1024u)
#define LOG_LZ4F_MAGIC 0x184D2204u
/* c-raft's server roles (raft.h: RAFT_STANDBY, RAFT_VOTER, RAFT_SPARE). */
#define LOG_ROLE_VOTER 1u
#define LOG_ROLE_MAX 2u

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
		log_raft_find(r, "CORRUPT", false, path, NULL, true, base,
			  "configuration: %s", conf[0] != 1 ?
			  "encoding format is not 1" : "cut short");
		return false;
	}
	n = rs_get_u64(conf + 1);
	if (n == 0 || n > len / 10) { /* id, one address byte, NUL, role */
		log_raft_find(r, "CORRUPT", false, path, NULL, true, base + 1,
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
			log_raft_find(r, "CORRUPT", false, path, NULL, true,
				  base + at,
				  "configuration: server %" PRIu64 " of %" PRIu64
				  " is cut short, has id 0 or a known id, or "
				  "an unknown role", i + 1, n);
	}
	free(ids);
	if (ok && len - pos >= 8) {
		log_raft_find(r, "CORRUPT", false, path, NULL, true, base + pos,
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
		log_raft_find(r, "CORRUPT", false, path, NULL, true,
			  s->meta_size < LOG_SNAP_META_HEADER ? s->meta_size
							      : 0,
			  "%" PRIu64 " bytes: not a header of %u and a "
			  "configuration of 1..%u bytes", s->meta_size,
			  LOG_SNAP_META_HEADER, LOG_SNAP_CONF_MAX);
		return false;
	}
	rv = fileio_read_all(path, &data, &len, errmsg);
	if (rv != RS_OK || len < LOG_SNAP_META_HEADER) {
		log_raft_find(r, "ERROR", false, path, NULL, false, 0, "%s",
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
		log_raft_find(r, "FORMAT", false, path, NULL, true, 0,
			  "format version %" PRIu64 ", c-raft "
			  RAFTSEG_CRAFT_VERSION " writes %u", format,
			  LOG_CRAFT_FORMAT);
	else if (conf_len == 0 || conf_len != len - LOG_SNAP_META_HEADER)
		log_raft_find(r, "CORRUPT", false, path, NULL, true, 24,
			  "configuration length %" PRIu64 ", but %zu bytes "
			  "follow the header", conf_len,
			  len - LOG_SNAP_META_HEADER);
	else if ((crc = raftseg_crc32(crc, data + LOG_SNAP_META_HEADER,
				      conf_len)) != crc_field)
		log_raft_find(r, "CORRUPT", false, path, NULL, true, 8,
			  "checksum mismatch: stored %08" PRIx64
			  ", computed %08" PRIx32, crc_field, crc);
	else if (s->conf_index == 0 || s->conf_index > s->index)
		log_raft_find(r, "CORRUPT", false, path, NULL, true, 16,
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
		log_raft_find(r, "CORRUPT", false, path, NULL, !s->compressed, 0,
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
	log_raft_find(r, "CORRUPT", false, path, NULL, !s->compressed,
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
			log_raft_find(r, "CORRUPT", false, path, NULL, true,
				  off + pos,
				  "bytes after the end of the LZ4 frame");
			return false;
		}
		*hint = LZ4F_decompress(dctx, out, &n_out, in + pos, &n_in,
					NULL);
		if (LZ4F_isError(*hint)) {
			/* LZ4F does not say where in the block it failed. */
			log_raft_find(r, "CORRUPT", false, path, NULL, false, 0,
				  "LZ4 frame: %s, in bytes %" PRIu64 "..%" PRIu64,
				  LZ4F_getErrorName(*hint), off + pos,
				  off + got - 1);
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
		log_raft_find(r, "ERROR", false, path, NULL, true, off, "%s",
			  errmsg);
		ok = false;
	}
	if (ok && dctx != NULL && hint != 0) {
		log_raft_find(r, "CORRUPT", false, path, NULL, true, off,
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

	assert(strlen(s->meta) > 5); /* snapshot-T-I-MS.meta */
	snprintf(name, sizeof name, "%.*s", (int)(strlen(s->meta) - 5),
		 s->meta);
	log_file_path(path, r->d->raft, name);
	s->data_size = log_file_size(path);
	if (s->data_size == 0) {
		s->orphan = true;
		log_raft_find(r, "TORN", true, r->d->raft, s->meta, false, 0,
			  "its data file %s is missing or empty: a snapshot "
			  "a crash interrupted; c-raft ignores it", name);
		return false;
	}
	if (fileio_open(path, O_RDONLY, &fd, errmsg) != RS_OK) {
		log_raft_find(r, "ERROR", false, path, NULL, false, 0, "%s",
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
		log_raft_find(r, "ERROR", false, r->d->raft, NULL, false, 0,
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

void log_raft_check_snapshots(struct log_raft *r)
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

void log_raft_inspect_snapshots(const struct log_raft *r)
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
