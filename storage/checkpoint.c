/*
 * checkpoint: see checkpoint.h for the file format and the guarantees.
 *
 * Both directions stream: the writer compresses one chunk at a time into a
 * scratch buffer, and the reader verifies one chunk at a time, so neither
 * holds more than one chunk besides the image itself.  Both keep a running
 * CRC-32C of every byte they pass, which is what the trailer checks.
 */
#include "storage/checkpoint.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"
#include "storage/fileio.h"

#define CKPT_CHUNK_HEADER_SIZE 12u /* raw_len | comp_len | crc */
#define CKPT_TRAILER_SIZE 8u       /* magic | file crc */
#define CKPT_TRAILER_MAGIC 0x54504b43u /* "CKPT" little-endian */
#define CKPT_HEADER_CRC_OFFSET 44u
#define CKPT_MAGIC_SIZE 8u
#define CKPT_NAME_PREFIX "ckpt-"
#define CKPT_NAME_SUFFIX ".rsc"
#define CKPT_TMP_SUFFIX ".tmp"
#define CKPT_NAME_HEX 16u
#define CKPT_NAME_LEN (sizeof CKPT_NAME_PREFIX - 1 + CKPT_NAME_HEX + \
		       sizeof CKPT_NAME_SUFFIX - 1)

/* The largest compressed chunk a valid file can hold: what LZ4 may produce
 * for a full raw chunk.  Anything larger is a corrupt length field. */
#define CKPT_COMP_MAX ((uint32_t)LZ4_COMPRESSBOUND(CHECKPOINT_CHUNK_RAW))

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

/* Build dir/ckpt-<version>.rsc[suffix]; RS_EINVAL if it does not fit. */
static int ckpt_path(char *out, size_t size, const char *dir,
		     uint64_t version, const char *suffix, char *errmsg)
{
	int n;

	assert(out != NULL && dir != NULL && suffix != NULL);
	assert(size > 0);
	n = snprintf(out, size, "%s/" CKPT_NAME_PREFIX "%016" PRIx64
		     CKPT_NAME_SUFFIX "%s", dir, version, suffix);
	if (n < 0 || (size_t)n >= size) {
		rs_errmsg_printf(errmsg, "checkpoint path in %s: too long",
				 dir);
		return RS_EINVAL;
	}
	return RS_OK;
}

/*
 * Parse "ckpt-<16 lowercase hex>.rsc" (tmp false) or the same plus ".tmp"
 * (tmp true).  Only the exact spelling the writer uses is accepted, so that
 * two names can never map to the same version.
 */
static bool ckpt_parse_name(const char *name, bool tmp, uint64_t *version)
{
	size_t want = CKPT_NAME_LEN + (tmp ? sizeof CKPT_TMP_SUFFIX - 1 : 0);
	char check[CKPT_NAME_LEN + 1];
	const char *hex;
	uint64_t v = 0;

	assert(name != NULL && version != NULL);
	if (strlen(name) != want ||
	    strncmp(name, CKPT_NAME_PREFIX, sizeof CKPT_NAME_PREFIX - 1) != 0)
		return false;
	hex = name + sizeof CKPT_NAME_PREFIX - 1;
	if (strncmp(hex + CKPT_NAME_HEX, CKPT_NAME_SUFFIX,
		    sizeof CKPT_NAME_SUFFIX - 1) != 0)
		return false;
	if (tmp && strcmp(hex + CKPT_NAME_HEX + sizeof CKPT_NAME_SUFFIX - 1,
			  CKPT_TMP_SUFFIX) != 0)
		return false;
	if (!bytes_hex_parse_u64(hex, CKPT_NAME_HEX, &v))
		return false;
	*version = v;
	/* The writer's spelling of v must give back this very name. */
	snprintf(check, sizeof check, CKPT_NAME_PREFIX "%016" PRIx64
		 CKPT_NAME_SUFFIX, v);
	assert(strncmp(check, name, CKPT_NAME_LEN) == 0);
	(void)check; /* NDEBUG */
	return true;
}

static int ckpt_info_cmp_newest_first(const void *a, const void *b)
{
	const struct checkpoint_info *x = a, *y = b;
	return x->version < y->version ? 1 : x->version > y->version ? -1 : 0;
}

/* Append one parsed name to *list, growing it geometrically. */
static int ckpt_list_add(struct checkpoint_info **list, unsigned *n,
			 unsigned *cap, const char *name, uint64_t version)
{
	struct checkpoint_info *info;

	assert(*n <= *cap);
	assert(strlen(name) < sizeof info->name);
	if (*n == *cap) {
		unsigned ncap = *cap ? *cap * 2 : 8;
		info = realloc(*list, (size_t)ncap * sizeof *info);
		if (info == NULL)
			return RS_ENOMEM;
		*list = info;
		*cap = ncap;
	}
	info = &(*list)[(*n)++];
	memset(info, 0, sizeof *info);
	snprintf(info->name, sizeof info->name, "%s", name);
	info->version = version;
	return RS_OK;
}

/*
 * Collect the final files (tmp false) or the leftover temporaries (tmp true)
 * of dir, newest first.  Directory listing is not a fileio operation: there
 * is no fault to inject into reading names.
 */
static int ckpt_scan(const char *dir, bool tmp, struct checkpoint_info **list,
		     unsigned *n, char *errmsg)
{
	unsigned cap = 0;
	struct dirent *e;
	uint64_t version;
	DIR *d;
	int rv = RS_OK;

	assert(dir != NULL && list != NULL && n != NULL);
	*list = NULL;
	*n = 0;
	d = opendir(dir);
	if (d == NULL)
		return rs_errmsg_errno(errmsg, errno, "open directory %s", dir);
	while (rv == RS_OK && (e = readdir(d)) != NULL) {
		if (ckpt_parse_name(e->d_name, tmp, &version))
			rv = ckpt_list_add(list, n, &cap, e->d_name, version);
	}
	closedir(d);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "list %s: %s", dir, rs_strerror(rv));
		free(*list);
		*list = NULL;
		*n = 0;
		return rv;
	}
	if (*n > 1)
		qsort(*list, *n, sizeof **list, ckpt_info_cmp_newest_first);
	assert(*n == 0 || *list != NULL);
	return RS_OK;
}

int checkpoint_list(const char *dir, struct checkpoint_info **list,
		    unsigned *n, char *errmsg)
{
	assert(dir != NULL && errmsg != NULL);
	return ckpt_scan(dir, false, list, n, errmsg);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

struct ckpt_writer {
	const char *path; /* the .tmp file being written */
	int fd;
	uint64_t off;    /* where the next byte goes */
	uint32_t crc;    /* CRC-32C of bytes [0, off) */
	uint8_t *chunk;  /* chunk header + compressed data scratch */
	char *errmsg;
};

/* Append n bytes at the writer's offset, extending the running file CRC. */
static int ckpt_put(struct ckpt_writer *w, const void *p, size_t n,
		    const char *what)
{
	int rv;

	assert(w->fd >= 0);
	assert(n > 0);
	rv = fileio_pwrite(w->fd, p, n, (off_t)w->off, w->errmsg);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(w->errmsg, "%s", what);
		return rv;
	}
	w->crc = crc32c_extend(w->crc, p, n);
	w->off += n;
	return RS_OK;
}

static void ckpt_header_encode(uint8_t *h, uint64_t version, uint64_t epoch,
			       uint64_t key_count, uint32_t chunk_count)
{
	memcpy(h, CHECKPOINT_MAGIC, CKPT_MAGIC_SIZE);
	rs_put_u32(h + 8, CHECKPOINT_FORMAT_VERSION);
	rs_put_u32(h + 12, 0); /* flags */
	rs_put_u64(h + 16, version);
	rs_put_u64(h + 24, epoch);
	rs_put_u64(h + 32, key_count);
	rs_put_u32(h + 40, chunk_count);
	rs_put_u32(h + CKPT_HEADER_CRC_OFFSET,
		   crc32c(h, CKPT_HEADER_CRC_OFFSET));
	assert(rs_get_u32(h + 8) == CHECKPOINT_FORMAT_VERSION);
	assert(rs_get_u32(h + 40) == chunk_count);
}

/* Compress raw[0, raw_len) and append it as chunk `index`. */
static int ckpt_write_chunk(struct ckpt_writer *w, const uint8_t *raw,
			    uint32_t raw_len, uint32_t index)
{
	uint8_t *comp = w->chunk + CKPT_CHUNK_HEADER_SIZE;
	char what[64];
	int comp_len;

	assert(raw_len > 0 && raw_len <= CHECKPOINT_CHUNK_RAW);
	comp_len = LZ4_compress_default((const char *)raw, (char *)comp,
					(int)raw_len, (int)CKPT_COMP_MAX);
	/* LZ4 cannot fail with a compressBound-sized output; if it still
	 * does, the library is broken, and a clear error beats a bad file. */
	if (comp_len <= 0) {
		rs_errmsg_printf(w->errmsg, "chunk %" PRIu32 ": lz4 compress "
				 "failed", index);
		return RS_EIO;
	}
	assert((uint32_t)comp_len <= CKPT_COMP_MAX);
	rs_put_u32(w->chunk, raw_len);
	rs_put_u32(w->chunk + 4, (uint32_t)comp_len);
	rs_put_u32(w->chunk + 8, crc32c(comp, (size_t)comp_len));
	snprintf(what, sizeof what, "chunk %" PRIu32, index);
	return ckpt_put(w, w->chunk, CKPT_CHUNK_HEADER_SIZE + (size_t)comp_len,
			what);
}

/* Header, chunks and trailer: the whole content of the file. */
static int ckpt_write_body(struct ckpt_writer *w, uint64_t version,
			   uint64_t epoch, uint64_t key_count,
			   const uint8_t *image, size_t len)
{
	uint8_t header[CHECKPOINT_HEADER_SIZE];
	uint8_t trailer[CKPT_TRAILER_SIZE];
	uint32_t chunks = (uint32_t)((len + CHECKPOINT_CHUNK_RAW - 1) /
				     CHECKPOINT_CHUNK_RAW);
	int rv;

	assert(w->off == 0 && w->crc == 0);
	ckpt_header_encode(header, version, epoch, key_count, chunks);
	rv = ckpt_put(w, header, sizeof header, "header");
	for (uint32_t i = 0; rv == RS_OK && i < chunks; i++) {
		size_t at = (size_t)i * CHECKPOINT_CHUNK_RAW;
		size_t n = len - at;
		if (n > CHECKPOINT_CHUNK_RAW)
			n = CHECKPOINT_CHUNK_RAW;
		rv = ckpt_write_chunk(w, image + at, (uint32_t)n, i);
	}
	if (rv != RS_OK)
		return rv;
	rs_put_u32(trailer, CKPT_TRAILER_MAGIC);
	/* The file CRC covers the trailer magic too: every preceding byte. */
	rs_put_u32(trailer + 4, crc32c_extend(w->crc, trailer, 4));
	rv = ckpt_put(w, trailer, sizeof trailer, "trailer");
	assert(rv != RS_OK || w->off >= CHECKPOINT_HEADER_SIZE +
					 CKPT_TRAILER_SIZE);
	return rv;
}

/* RS_EEXIST if path exists.  This is a check, not a lock: callers already
 * serialise the writes to one directory (see checkpoint.h). */
static int ckpt_check_absent(const char *path, char *errmsg)
{
	int fd, rv;

	assert(path != NULL && errmsg != NULL);
	rv = fileio_open(path, O_RDONLY, &fd, errmsg);
	if (rv == RS_OK) {
		fileio_close(fd);
		rs_errmsg_printf(errmsg, "%s: %s", path,
				 rs_strerror(RS_EEXIST));
		return RS_EEXIST;
	}
	return rv == RS_ENOTFOUND ? RS_OK : rv;
}

/* Write and fsync the .tmp file; on error it is left for the caller to
 * remove. */
static int ckpt_write_tmp(const char *tmp, uint64_t version, uint64_t epoch,
			  uint64_t key_count, const uint8_t *image, size_t len,
			  char *errmsg)
{
	struct ckpt_writer w = { .path = tmp, .fd = -1, .errmsg = errmsg };
	int rv;

	assert(tmp != NULL && errmsg != NULL);
	assert(image != NULL || len == 0);
	w.chunk = malloc(CKPT_CHUNK_HEADER_SIZE + CKPT_COMP_MAX);
	if (w.chunk == NULL) {
		rs_errmsg_printf(errmsg, "%s", rs_strerror(RS_ENOMEM));
		return RS_ENOMEM;
	}
	/* O_TRUNC: a .tmp of the same version is a leftover of a crash. */
	rv = fileio_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, &w.fd, errmsg);
	if (rv != RS_OK)
		goto err_free;
	rv = ckpt_write_body(&w, version, epoch, key_count, image, len);
	if (rv != RS_OK)
		goto err_close;
	rv = fileio_fsync(w.fd, errmsg);
	if (rv != RS_OK)
		goto err_close;
	rv = fileio_close(w.fd);
	if (rv != RS_OK)
		rs_errmsg_printf(errmsg, "close: %s", rs_strerror(rv));
	free(w.chunk);
	return rv;

err_close:
	fileio_close(w.fd);
err_free:
	free(w.chunk);
	return rv;
}

/* Checks that need no file written: size, path lengths, no such version
 * yet.  Both path buffers are PATH_MAX bytes. */
static int ckpt_write_prepare(const char *dir, uint64_t version, size_t len,
			      char *final, char *tmp, char *errmsg)
{
	int rv;

	assert(final != NULL && tmp != NULL);
	if (len / CHECKPOINT_CHUNK_RAW >= UINT32_MAX) {
		rs_errmsg_printf(errmsg, "image of %zu bytes: %s", len,
				 rs_strerror(RS_ETOOLARGE));
		return RS_ETOOLARGE;
	}
	rv = ckpt_path(final, PATH_MAX, dir, version, "", errmsg);
	if (rv == RS_OK)
		rv = ckpt_path(tmp, PATH_MAX, dir, version, CKPT_TMP_SUFFIX,
			       errmsg);
	if (rv == RS_OK)
		rv = ckpt_check_absent(final, errmsg);
	assert(rv != RS_OK || strlen(tmp) > strlen(final));
	return rv;
}

int checkpoint_write(const char *dir, uint64_t version, uint64_t epoch,
		     uint64_t key_count, const uint8_t *image, size_t len,
		     char *errmsg)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	char ignored[RS_ERRMSG_SIZE]; /* cleanup errors lose to the first */
	int rv;

	assert(dir != NULL && errmsg != NULL);
	assert(image != NULL || len == 0);
	rv = ckpt_write_prepare(dir, version, len, final, tmp, errmsg);
	if (rv != RS_OK)
		goto err;
	rv = ckpt_write_tmp(tmp, version, epoch, key_count, image, len,
			    errmsg);
	if (rv != RS_OK)
		goto err_unlink_tmp;
	rv = fileio_rename(tmp, final, errmsg);
	if (rv != RS_OK)
		goto err_unlink_tmp;
	rv = fileio_fsync_dir(dir, errmsg);
	if (rv != RS_OK)
		goto err_unlink_final;
	return RS_OK;

err_unlink_final:
	/* The rename may or may not survive a crash: withdraw it, so that
	 * an error always means "no checkpoint at this version" and a retry
	 * does not meet RS_EEXIST.  Its content was fsynced, so were the
	 * unlink lost in a crash, what remains is still a valid file. */
	fileio_unlink(final, ignored);
	rs_errmsg_wrapf(errmsg, "write checkpoint %s", final);
	return rv;
err_unlink_tmp:
	fileio_unlink(tmp, ignored); /* best effort; prune retries */
	rs_errmsg_wrapf(errmsg, "write checkpoint %s", tmp);
	return rv;
err:
	rs_errmsg_wrapf(errmsg, "write checkpoint %" PRIu64 " in %s", version,
			dir);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

struct ckpt_reader {
	const char *path;
	int fd;
	uint64_t size;   /* file size at open */
	uint64_t off;    /* next byte to read */
	uint32_t crc;    /* CRC-32C of bytes [0, off) */
	uint8_t *comp;   /* one compressed chunk */
	uint8_t *raw;    /* one raw chunk, when the image is not wanted */
	char *errmsg;
};

/* Read exactly n bytes at the reader's offset.  A file too short to hold
 * them is RS_ETORN: the structure says more bytes must follow. */
static int ckpt_get(struct ckpt_reader *r, void *p, size_t n,
		    const char *what)
{
	size_t got;
	int rv;

	assert(r->fd >= 0 && n > 0);
	assert(r->off <= r->size);
	if (n > r->size - r->off) {
		rs_errmsg_printf(r->errmsg, "%s at offset %" PRIu64 ": needs "
				 "%zu bytes, file ends at %" PRIu64, what,
				 r->off, n, r->size);
		return RS_ETORN;
	}
	rv = fileio_pread(r->fd, p, n, (off_t)r->off, &got, r->errmsg);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(r->errmsg, "%s", what);
		return rv;
	}
	if (got != n) { /* shrank while we read it */
		rs_errmsg_printf(r->errmsg, "%s at offset %" PRIu64 ": short "
				 "read (%zu of %zu bytes)", what, r->off, got,
				 n);
		return RS_ETORN;
	}
	r->crc = crc32c_extend(r->crc, p, n);
	r->off += n;
	return RS_OK;
}

/* A file shorter than a header: torn if what is there is a magic prefix,
 * corrupt if it is not even that. */
static int ckpt_short_header(struct ckpt_reader *r)
{
	uint8_t head[CKPT_MAGIC_SIZE];
	size_t n = r->size < CKPT_MAGIC_SIZE ? (size_t)r->size
					     : CKPT_MAGIC_SIZE;
	size_t got = 0;

	assert(r->size < CHECKPOINT_HEADER_SIZE);
	assert(r->off == 0);
	if (n > 0 && fileio_pread(r->fd, head, n, 0, &got, r->errmsg) != RS_OK)
		got = 0; /* falls through to the torn report below */
	if (got > 0 && memcmp(head, CHECKPOINT_MAGIC, got) != 0) {
		rs_errmsg_printf(r->errmsg, "header: bad magic");
		return RS_ECORRUPT;
	}
	rs_errmsg_printf(r->errmsg, "header: file is %" PRIu64 " bytes, a "
			 "header needs %u", r->size, CHECKPOINT_HEADER_SIZE);
	return RS_ETORN;
}

/*
 * Read and verify the header.  The format version is checked before the
 * header CRC: a later version may lay the header out differently, and
 * "unsupported format version 2" is the useful answer for such a file.
 */
static int ckpt_read_header(struct ckpt_reader *r,
			    struct checkpoint_info *info)
{
	uint8_t h[CHECKPOINT_HEADER_SIZE];
	uint32_t format, flags;
	int rv;

	assert(r->off == 0);
	if (r->size < CHECKPOINT_HEADER_SIZE)
		return ckpt_short_header(r);
	rv = ckpt_get(r, h, sizeof h, "header");
	if (rv != RS_OK)
		return rv;
	if (memcmp(h, CHECKPOINT_MAGIC, CKPT_MAGIC_SIZE) != 0) {
		rs_errmsg_printf(r->errmsg, "header: bad magic");
		return RS_ECORRUPT;
	}
	format = rs_get_u32(h + 8);
	if (format != CHECKPOINT_FORMAT_VERSION) {
		rs_errmsg_printf(r->errmsg, "header: format version %" PRIu32
				 " (this build reads %u)", format,
				 CHECKPOINT_FORMAT_VERSION);
		return RS_EFORMAT;
	}
	if (rs_get_u32(h + CKPT_HEADER_CRC_OFFSET) !=
	    crc32c(h, CKPT_HEADER_CRC_OFFSET)) {
		rs_errmsg_printf(r->errmsg, "header: checksum mismatch");
		return RS_ECORRUPT;
	}
	flags = rs_get_u32(h + 12);
	if (flags != 0) {
		rs_errmsg_printf(r->errmsg, "header: unknown flags 0x%" PRIx32,
				 flags);
		return RS_EFORMAT;
	}
	info->version = rs_get_u64(h + 16);
	info->epoch = rs_get_u64(h + 24);
	info->key_count = rs_get_u64(h + 32);
	info->chunk_count = rs_get_u32(h + 40);
	assert(r->off == CHECKPOINT_HEADER_SIZE);
	return RS_OK;
}

/* Check a chunk header's lengths before anything trusts them. */
static int ckpt_check_chunk_lens(struct ckpt_reader *r, uint32_t index,
				 uint64_t at, uint32_t raw_len,
				 uint32_t comp_len)
{
	assert(r != NULL);
	assert(at >= CHECKPOINT_HEADER_SIZE);
	if (raw_len == 0 || raw_len > CHECKPOINT_CHUNK_RAW) {
		rs_errmsg_printf(r->errmsg, "chunk %" PRIu32 " at offset %"
				 PRIu64 ": raw length %" PRIu32 " out of "
				 "range", index, at, raw_len);
		return RS_ECORRUPT;
	}
	if (comp_len == 0 || comp_len > CKPT_COMP_MAX) {
		rs_errmsg_printf(r->errmsg, "chunk %" PRIu32 " at offset %"
				 PRIu64 ": compressed length %" PRIu32 " out "
				 "of range", index, at, comp_len);
		return RS_ECORRUPT;
	}
	return RS_OK;
}

/* Where chunk data decodes to: the end of the image, or scratch. */
static int ckpt_chunk_dest(struct ckpt_reader *r, struct rs_buf *image,
			   uint32_t raw_len, uint8_t **dst)
{
	assert(raw_len > 0 && raw_len <= CHECKPOINT_CHUNK_RAW);
	assert(dst != NULL);
	if (image == NULL) {
		if (r->raw == NULL)
			r->raw = malloc(CHECKPOINT_CHUNK_RAW);
		*dst = r->raw;
	} else {
		*dst = rs_buf_reserve(image, raw_len) == RS_OK
			       ? image->data + image->len
			       : NULL;
	}
	if (*dst == NULL) {
		rs_errmsg_printf(r->errmsg, "%s", rs_strerror(RS_ENOMEM));
		return RS_ENOMEM;
	}
	return RS_OK;
}

/* Read, verify and decode chunk `index`, appending it to image if wanted.
 * The CRC is checked before LZ4 sees the data. */
static int ckpt_read_chunk(struct ckpt_reader *r, uint32_t index,
			   struct rs_buf *image, uint64_t *raw_size)
{
	uint8_t ch[CKPT_CHUNK_HEADER_SIZE];
	uint64_t at = r->off;
	uint32_t raw_len, comp_len;
	uint8_t *dst;
	char what[64];
	int n, rv;

	assert(r->comp != NULL);
	assert(image == NULL || image->len == *raw_size);
	snprintf(what, sizeof what, "chunk %" PRIu32 " header", index);
	rv = ckpt_get(r, ch, sizeof ch, what);
	if (rv != RS_OK)
		return rv;
	raw_len = rs_get_u32(ch);
	comp_len = rs_get_u32(ch + 4);
	rv = ckpt_check_chunk_lens(r, index, at, raw_len, comp_len);
	if (rv != RS_OK)
		return rv;
	snprintf(what, sizeof what, "chunk %" PRIu32 " data", index);
	rv = ckpt_get(r, r->comp, comp_len, what);
	if (rv != RS_OK)
		return rv;
	if (crc32c(r->comp, comp_len) != rs_get_u32(ch + 8)) {
		rs_errmsg_printf(r->errmsg, "chunk %" PRIu32 " at offset %"
				 PRIu64 ": checksum mismatch", index, at);
		return RS_ECORRUPT;
	}
	rv = ckpt_chunk_dest(r, image, raw_len, &dst);
	if (rv != RS_OK)
		return rv;
	n = LZ4_decompress_safe((const char *)r->comp, (char *)dst,
				(int)comp_len, (int)raw_len);
	if (n < 0 || (uint32_t)n != raw_len) {
		rs_errmsg_printf(r->errmsg, "chunk %" PRIu32 " at offset %"
				 PRIu64 ": decodes to %d bytes, header says %"
				 PRIu32, index, at, n, raw_len);
		return RS_ECORRUPT;
	}
	if (image != NULL)
		image->len += raw_len;
	*raw_size += raw_len;
	assert(r->off == at + CKPT_CHUNK_HEADER_SIZE + comp_len);
	return RS_OK;
}

/* Trailer magic and file CRC, and nothing after them. */
static int ckpt_read_trailer(struct ckpt_reader *r)
{
	uint8_t t[CKPT_TRAILER_SIZE];
	uint64_t at = r->off;
	uint32_t want;
	int rv;

	assert(at >= CHECKPOINT_HEADER_SIZE);
	rv = ckpt_get(r, t, 4, "trailer");
	if (rv != RS_OK)
		return rv;
	want = r->crc; /* every byte before the CRC field */
	rv = ckpt_get(r, t + 4, 4, "trailer");
	if (rv != RS_OK)
		return rv;
	if (rs_get_u32(t) != CKPT_TRAILER_MAGIC) {
		rs_errmsg_printf(r->errmsg, "trailer at offset %" PRIu64
				 ": bad magic", at);
		return RS_ECORRUPT;
	}
	if (rs_get_u32(t + 4) != want) {
		rs_errmsg_printf(r->errmsg, "trailer at offset %" PRIu64
				 ": file checksum mismatch", at);
		return RS_ECORRUPT;
	}
	if (r->off != r->size) {
		rs_errmsg_printf(r->errmsg, "%" PRIu64 " unexpected bytes "
				 "after the trailer at offset %" PRIu64,
				 r->size - r->off, r->off);
		return RS_ECORRUPT;
	}
	assert(r->off == at + CKPT_TRAILER_SIZE);
	return RS_OK;
}

/* Everything after open: header, chunks, trailer. */
static int ckpt_read_body(struct ckpt_reader *r, struct checkpoint_info *info,
			  struct rs_buf *image)
{
	int rv;

	assert(r->fd >= 0 && info != NULL);
	rv = ckpt_read_header(r, info);
	if (rv != RS_OK)
		return rv;
	r->comp = malloc(CKPT_COMP_MAX);
	if (r->comp == NULL) {
		rs_errmsg_printf(r->errmsg, "%s", rs_strerror(RS_ENOMEM));
		return RS_ENOMEM;
	}
	for (uint32_t i = 0; rv == RS_OK && i < info->chunk_count; i++)
		rv = ckpt_read_chunk(r, i, image, &info->raw_size);
	if (rv == RS_OK)
		rv = ckpt_read_trailer(r);
	assert(rv != RS_OK || r->off == r->size);
	return rv;
}

/* The last path component, for info->name. */
static const char *ckpt_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash != NULL ? slash + 1 : path;
}

int checkpoint_read(const char *path, struct checkpoint_info *info,
		    struct rs_buf *image, char *errmsg)
{
	struct ckpt_reader r = { .path = path, .fd = -1, .errmsg = errmsg };
	struct checkpoint_info local;
	off_t size;
	int rv;

	assert(path != NULL && errmsg != NULL);
	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof *info);
	snprintf(info->name, sizeof info->name, "%s", ckpt_basename(path));
	if (image != NULL)
		image->len = 0;
	rv = fileio_open(path, O_RDONLY, &r.fd, errmsg);
	if (rv != RS_OK)
		goto err;
	rv = fileio_size(r.fd, &size, errmsg);
	if (rv != RS_OK)
		goto err_close;
	r.size = info->file_size = (uint64_t)size;
	rv = ckpt_read_body(&r, info, image);
	if (rv != RS_OK)
		goto err_close;
	fileio_close(r.fd);
	free(r.comp);
	free(r.raw);
	assert(image == NULL || image->len == info->raw_size);
	return RS_OK;

err_close:
	fileio_close(r.fd);
	free(r.comp);
	free(r.raw);
	if (image != NULL)
		image->len = 0; /* never hand out a partial image */
err:
	rs_errmsg_wrapf(errmsg, "checkpoint %s", path);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Loading and pruning                                                 */
/* ------------------------------------------------------------------ */

/* Read list entry e of dir; a header whose version disagrees with the name
 * is corrupt (the file was renamed by hand, or the header was damaged in a
 * way its CRC did not catch). */
static int ckpt_load_one(const char *dir, const struct checkpoint_info *e,
			 struct checkpoint_info *info, struct rs_buf *image,
			 char *errmsg)
{
	char path[PATH_MAX];
	int rv;

	assert(dir != NULL && e != NULL);
	if (snprintf(path, sizeof path, "%s/%s", dir, e->name) >=
	    (int)sizeof path) {
		rs_errmsg_printf(errmsg, "checkpoint %s in %s: path too long",
				 e->name, dir);
		return RS_EINVAL;
	}
	rv = checkpoint_read(path, info, image, errmsg);
	if (rv == RS_OK && info->version != e->version) {
		rs_errmsg_printf(errmsg, "checkpoint %s: header version %"
				 PRIu64 " does not match the name", path,
				 info->version);
		if (image != NULL)
			image->len = 0;
		rv = RS_ECORRUPT;
	}
	assert(rv != RS_OK || info->version == e->version);
	return rv;
}

/* Walk list newest first; the first that verifies wins. */
static int ckpt_load_first_valid(const char *dir,
				 const struct checkpoint_info *list,
				 unsigned n, struct checkpoint_info *info,
				 struct rs_buf *image,
				 struct checkpoint_load_report *report,
				 char *errmsg)
{
	char err[RS_ERRMSG_SIZE];
	int rv = RS_ECORRUPT;

	assert(n > 0 && list != NULL);
	for (unsigned i = 0; i < n; i++) {
		rv = ckpt_load_one(dir, &list[i], info, image, err);
		if (rv == RS_OK)
			return RS_OK;
		/* Out of memory says nothing about the file: do not fall
		 * back to an older state because of it. */
		if (rv == RS_ENOMEM) {
			memcpy(errmsg, err, RS_ERRMSG_SIZE);
			return rv;
		}
		if (report->skipped++ == 0)
			memcpy(report->skipped_error, err, RS_ERRMSG_SIZE);
	}
	assert(report->skipped == n);
	rs_errmsg_printf(errmsg, "all %u checkpoints are invalid, the newest: "
			 "%s", n, report->skipped_error);
	return RS_ECORRUPT;
}

int checkpoint_load_latest(const char *dir, struct checkpoint_info *info,
			   struct rs_buf *image,
			   struct checkpoint_load_report *report, char *errmsg)
{
	struct checkpoint_load_report local;
	struct checkpoint_info *list;
	unsigned n;
	int rv;

	assert(dir != NULL && info != NULL && errmsg != NULL);
	if (report == NULL)
		report = &local;
	memset(report, 0, sizeof *report);
	rv = checkpoint_list(dir, &list, &n, errmsg);
	if (rv != RS_OK)
		goto err;
	if (n == 0) {
		rs_errmsg_printf(errmsg, "no checkpoint in %s", dir);
		return RS_ENOTFOUND;
	}
	rv = ckpt_load_first_valid(dir, list, n, info, image, report, errmsg);
	free(list);
	if (rv != RS_OK)
		goto err;
	assert(report->skipped < n);
	return RS_OK;

err:
	rs_errmsg_wrapf(errmsg, "load checkpoint from %s", dir);
	return rv;
}

/* Unlink each entry of list[from, n) in dir. */
static int ckpt_unlink_all(const char *dir, const struct checkpoint_info *list,
			   unsigned from, unsigned n, char *errmsg)
{
	char path[PATH_MAX];
	int rv;

	assert(from <= n || n == 0);
	assert(list != NULL || n == 0);
	for (unsigned i = from; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, list[i].name);
		rv = fileio_unlink(path, errmsg);
		if (rv != RS_OK && rv != RS_ENOTFOUND)
			return rv;
	}
	return RS_OK;
}

int checkpoint_prune(const char *dir, unsigned keep, uint64_t *oldest_kept,
		     char *errmsg)
{
	struct checkpoint_info *list = NULL, *tmps = NULL;
	char ignored[RS_ERRMSG_SIZE]; /* the first error is the one to report */
	unsigned n = 0, ntmp = 0;
	int rv;

	assert(dir != NULL && oldest_kept != NULL && errmsg != NULL);
	*oldest_kept = 0;
	if (keep == 0) {
		rs_errmsg_printf(errmsg, "prune %s: keep must be at least 1",
				 dir);
		return RS_EINVAL;
	}
	rv = checkpoint_list(dir, &list, &n, errmsg);
	if (rv == RS_OK)
		rv = ckpt_scan(dir, true, &tmps, &ntmp, errmsg);
	if (rv != RS_OK)
		goto err;
	if (n > 0)
		*oldest_kept = list[(n < keep ? n : keep) - 1].version;
	rv = ckpt_unlink_all(dir, tmps, 0, ntmp, errmsg);
	if (rv == RS_OK && n > keep)
		rv = ckpt_unlink_all(dir, list, keep, n, errmsg);
	/* Even after a failed unlink, make the ones that worked durable. */
	if (ntmp > 0 || n > keep) {
		int srv = fileio_fsync_dir(dir, rv == RS_OK ? errmsg : ignored);
		rv = rv == RS_OK ? srv : rv;
	}
	if (rv != RS_OK)
		goto err;
	assert(n == 0 ||
	       *oldest_kept == list[(n < keep ? n : keep) - 1].version);
	free(list);
	free(tmps);
	return RS_OK;

err:
	free(list);
	free(tmps);
	rs_errmsg_wrapf(errmsg, "prune checkpoints in %s", dir);
	return rv;
}
