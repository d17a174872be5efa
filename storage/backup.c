/*
 * backup: the snapshot file codec (backup.h draws the format).
 *
 * The writer buffers one chunk in memory (about 1 MiB) and appends it to
 * the temp file when full; the header is written last, at offset 0, since
 * the epoch it carries is only known once the \xff/system/epoch entry has
 * gone by.  The decoder walks the file once, checking each chunk's CRC
 * before it parses the chunk, and the trailer's counts and image CRC
 * against what it saw.
 */
#include "storage/backup.h"

#include <assert.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "storage/fileio.h"

/* ---- header and trailer ---- */

static void backup_header_encode(const struct backup_header *h, uint8_t *p)
{
	memset(p, 0, BACKUP_HEADER_SIZE);
	memcpy(p, BACKUP_MAGIC, 8);
	rs_put_u32(p + 8, BACKUP_FORMAT_VERSION);
	rs_put_u64(p + 16, h->version);
	rs_put_u64(p + 24, h->epoch);
	rs_put_u64(p + 32, h->created_ms);
	memcpy(p + 40, h->cluster_id, BACKUP_CLUSTER_ID_SIZE);
	rs_put_u32(p + 60, crc32c(p, 60));
}

static int backup_header_decode(const uint8_t *p, size_t len,
				struct backup_header *h, char *errmsg)
{
	if (len < BACKUP_HEADER_SIZE) {
		rs_errmsg_printf(errmsg, "truncated: %zu bytes, shorter than the "
					 "%u-byte header", len, BACKUP_HEADER_SIZE);
		return RS_ECORRUPT;
	}
	if (memcmp(p, BACKUP_MAGIC, 8) != 0) {
		rs_errmsg_printf(errmsg, "not a raftstore snapshot file (bad magic)");
		return RS_ECORRUPT;
	}
	if (rs_get_u32(p + 60) != crc32c(p, 60)) {
		rs_errmsg_printf(errmsg, "header checksum mismatch (stored %08x, "
					 "computed %08x)", rs_get_u32(p + 60),
				 crc32c(p, 60));
		return RS_ECORRUPT;
	}
	h->format = rs_get_u32(p + 8);
	if (h->format != BACKUP_FORMAT_VERSION) {
		rs_errmsg_printf(errmsg, "unsupported format version %u (this rsctl "
					 "reads %u)", h->format, BACKUP_FORMAT_VERSION);
		return RS_EFORMAT;
	}
	if (rs_get_u32(p + 12) != 0 || rs_get_u32(p + 56) != 0) {
		rs_errmsg_printf(errmsg, "header flags or reserved field not zero");
		return RS_ECORRUPT;
	}
	h->version = rs_get_u64(p + 16);
	h->epoch = rs_get_u64(p + 24);
	h->created_ms = rs_get_u64(p + 32);
	memcpy(h->cluster_id, p + 40, BACKUP_CLUSTER_ID_SIZE);
	return RS_OK;
}

static void backup_trailer_encode(const struct backup_info *in, uint8_t *p)
{
	memcpy(p, BACKUP_TRAILER_TAG, 4);
	rs_put_u32(p + 4, in->chunks);
	rs_put_u64(p + 8, in->keys);
	rs_put_u64(p + 16, in->image_bytes);
	rs_put_u64(p + 24, in->header.version);
	rs_put_u32(p + 32, in->image_crc);
	rs_put_u32(p + 36, crc32c(p, 36));
}

/* The trailer at p must agree with what the chunks before it held. */
static int backup_trailer_check(const uint8_t *p, const struct backup_info *seen,
				size_t off, char *errmsg)
{
	const char *why = NULL;

	if (rs_get_u32(p + 36) != crc32c(p, 36))
		why = "checksum mismatch";
	else if (rs_get_u32(p + 4) != seen->chunks)
		why = "chunk count differs from the chunks in the file";
	else if (rs_get_u64(p + 8) != seen->keys)
		why = "key count differs from the entries in the file";
	else if (rs_get_u64(p + 16) != seen->image_bytes)
		why = "image size differs from the chunks in the file";
	else if (rs_get_u64(p + 24) != seen->header.version)
		why = "version differs from the header's";
	else if (rs_get_u32(p + 32) != seen->image_crc)
		why = "image checksum mismatch";
	if (why == NULL)
		return RS_OK;
	rs_errmsg_printf(errmsg, "trailer at offset %zu: %s", off, why);
	return RS_ECORRUPT;
}

/* ---- decoding ---- */

struct backup_cursor {
	const uint8_t *last_key; /* points into the file */
	uint32_t last_key_len;
	backup_entry_fn fn;
	void *ctx;
};

/* Parse and check the entries of one chunk's payload (its CRC passed). */
static int backup_payload_parse(const uint8_t *p, uint32_t len,
				uint32_t entries, struct backup_cursor *c,
				size_t base, char *errmsg)
{
	uint32_t at = 0, n = 0, klen, vlen;
	const char *why = NULL;
	int rv;

	while (why == NULL && at < len) {
		if (len - at < 4 || (klen = rs_get_u32(p + at)) == 0 ||
		    klen > RS_KEY_SIZE_MAX || len - at - 4 < klen + 4u)
			why = "bad or truncated key";
		else if (c->last_key != NULL &&
			 bytes_compare(c->last_key, c->last_key_len, p + at + 4,
				       klen) >= 0)
			why = "key not after the previous key";
		else if ((vlen = rs_get_u32(p + at + 4 + klen)) > RS_VALUE_SIZE_MAX ||
			 len - at - 8 - klen < vlen)
			why = "bad or truncated value";
		if (why != NULL)
			break;
		if (c->fn != NULL &&
		    (rv = c->fn(c->ctx, p + at + 4, klen, p + at + 8 + klen, vlen)) != 0)
			return rv;
		c->last_key = p + at + 4;
		c->last_key_len = klen;
		at += 8 + klen + vlen;
		n++;
	}
	if (why == NULL && n != entries)
		why = "entry count differs from the chunk head";
	if (why == NULL)
		return RS_OK;
	rs_errmsg_printf(errmsg, "entry %u at offset %zu: %s", n, base + at, why);
	return RS_ECORRUPT;
}

/* Check the chunk at data[off] and parse it; *off moves past it. */
static int backup_chunk_decode(const uint8_t *data, size_t len, size_t *off,
			       struct backup_info *seen, struct backup_cursor *c,
			       char *errmsg)
{
	const uint8_t *p = data + *off;
	uint32_t plen, entries, crc;
	int rv;

	assert(len - *off >= BACKUP_CHUNK_HEAD_SIZE);
	plen = rs_get_u32(p + 4);
	entries = rs_get_u32(p + 8);
	if (plen == 0 || plen > BACKUP_CHUNK_PAYLOAD_MAX || entries == 0) {
		rs_errmsg_printf(errmsg, "chunk %u at offset %zu: bad payload length "
					 "%u or entry count %u", seen->chunks, *off,
				 plen, entries);
		return RS_ECORRUPT;
	}
	if (len - *off - BACKUP_CHUNK_HEAD_SIZE < plen) {
		rs_errmsg_printf(errmsg, "truncated: the file ends at byte %zu, inside "
					 "chunk %u (at offset %zu, %u payload bytes); no "
					 "trailer", len, seen->chunks, *off, plen);
		return RS_ECORRUPT;
	}
	crc = crc32c_extend(crc32c(p, 12), p + BACKUP_CHUNK_HEAD_SIZE, plen);
	if (crc != rs_get_u32(p + 12)) {
		rs_errmsg_printf(errmsg, "chunk %u at offset %zu: checksum mismatch "
					 "(stored %08x, computed %08x)", seen->chunks,
				 *off, rs_get_u32(p + 12), crc);
		return RS_ECORRUPT;
	}
	rv = backup_payload_parse(p + BACKUP_CHUNK_HEAD_SIZE, plen, entries, c,
				  *off + BACKUP_CHUNK_HEAD_SIZE, errmsg);
	if (rv != RS_OK) {
		if (rv == RS_ECORRUPT)
			rs_errmsg_wrapf(errmsg, "chunk %u", seen->chunks);
		return rv;
	}
	seen->image_crc = crc32c_extend(seen->image_crc, p + BACKUP_CHUNK_HEAD_SIZE,
					plen);
	seen->image_bytes += plen;
	seen->keys += entries;
	seen->chunks++;
	*off += BACKUP_CHUNK_HEAD_SIZE + plen;
	return RS_OK;
}

int backup_decode(const uint8_t *data, size_t len, struct backup_info *info,
		  backup_entry_fn fn, void *ctx, char *errmsg)
{
	struct backup_cursor c = {NULL, 0, fn, ctx};
	struct backup_info seen;
	size_t off = BACKUP_HEADER_SIZE;
	int rv;

	assert(data != NULL || len == 0);
	memset(&seen, 0, sizeof seen);
	rv = backup_header_decode(data, len, &seen.header, errmsg);
	if (rv != RS_OK)
		return rv;
	for (;;) {
		if (len - off < 4 || (memcmp(data + off, BACKUP_CHUNK_TAG, 4) == 0 &&
				      len - off < BACKUP_CHUNK_HEAD_SIZE)) {
			rs_errmsg_printf(errmsg, "truncated: the file ends at byte %zu, "
						 "after %u complete chunks; no trailer",
					 len, seen.chunks);
			return RS_ECORRUPT;
		}
		if (memcmp(data + off, BACKUP_CHUNK_TAG, 4) != 0)
			break;
		rv = backup_chunk_decode(data, len, &off, &seen, &c, errmsg);
		if (rv != RS_OK)
			return rv;
	}
	if (memcmp(data + off, BACKUP_TRAILER_TAG, 4) != 0) {
		rs_errmsg_printf(errmsg, "offset %zu: neither a chunk nor the trailer "
					 "(bad tag)", off);
		return RS_ECORRUPT;
	}
	if (len - off < BACKUP_TRAILER_SIZE) {
		rs_errmsg_printf(errmsg, "truncated: the file ends at byte %zu, inside "
					 "the trailer (at offset %zu)", len, off);
		return RS_ECORRUPT;
	}
	rv = backup_trailer_check(data + off, &seen, off, errmsg);
	if (rv != RS_OK)
		return rv;
	off += BACKUP_TRAILER_SIZE;
	assert(off <= len);
	if (off != len) {
		rs_errmsg_printf(errmsg, "%zu bytes after the trailer (at offset %zu)",
				 len - off, off);
		return RS_ECORRUPT;
	}
	seen.file_bytes = len;
	*info = seen;
	return RS_OK;
}

int backup_read_file(const char *path, uint8_t **data, size_t *len,
		     struct backup_info *info, backup_entry_fn fn, void *ctx,
		     char *errmsg)
{
	int rv = fileio_read_all(path, data, len, errmsg);

	if (rv != RS_OK)
		return rv;
	rv = backup_decode(*data, *len, info, fn, ctx, errmsg);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "snapshot file %s", path);
		free(*data);
		*data = NULL;
		*len = 0;
	}
	return rv;
}

/* ---- writing ---- */

static int backup_chunk_reset(struct backup_writer *w)
{
	static const uint8_t head[BACKUP_CHUNK_HEAD_SIZE];

	w->chunk.len = 0;
	w->chunk_entries = 0;
	return rs_buf_append(&w->chunk, head, sizeof head);
}

/* pwrite, with the temp file named in errmsg (fileio names only the fd). */
static int backup_write_at(struct backup_writer *w, const void *p, size_t n,
			   off_t off, char *errmsg)
{
	int rv = fileio_pwrite(w->fd, p, n, off, errmsg);

	if (rv != RS_OK)
		rs_errmsg_wrapf(errmsg, "%s", w->tmp_path);
	return rv;
}

int backup_writer_open(struct backup_writer *w, const char *path,
		       const struct backup_header *h, char *errmsg)
{
	uint8_t zero[BACKUP_HEADER_SIZE] = {0};
	int rv;

	memset(w, 0, sizeof *w);
	w->fd = -1;
	if (strlen(path) >= sizeof w->path) {
		rs_errmsg_printf(errmsg, "path too long: %s", path);
		return RS_EINVAL;
	}
	snprintf(w->path, sizeof w->path, "%s", path);
	snprintf(w->tmp_path, sizeof w->tmp_path, "%s.tmp", path);
	w->header = *h;
	w->header.format = BACKUP_FORMAT_VERSION;
	rs_buf_init(&w->chunk);
	rs_buf_init(&w->last_key);
	if (backup_chunk_reset(w) != RS_OK) {
		rs_errmsg_printf(errmsg, "write %s: out of memory", path);
		return RS_ENOMEM;
	}
	rv = fileio_open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC, &w->fd,
			 errmsg);
	if (rv == RS_OK)
		rv = backup_write_at(w, zero, sizeof zero, 0, errmsg);
	if (rv != RS_OK) {
		backup_writer_abort(w);
		return rv;
	}
	w->off = BACKUP_HEADER_SIZE;
	return RS_OK;
}

/* Seal the open chunk (if it holds anything) and append it to the file. */
static int backup_chunk_flush(struct backup_writer *w, char *errmsg)
{
	uint8_t *p = w->chunk.data;
	uint32_t plen = (uint32_t)(w->chunk.len - BACKUP_CHUNK_HEAD_SIZE);
	int rv;

	if (w->chunk_entries == 0)
		return RS_OK;
	assert(plen > 0 && plen <= BACKUP_CHUNK_PAYLOAD_MAX);
	memcpy(p, BACKUP_CHUNK_TAG, 4);
	rs_put_u32(p + 4, plen);
	rs_put_u32(p + 8, w->chunk_entries);
	rs_put_u32(p + 12, crc32c_extend(crc32c(p, 12),
					 p + BACKUP_CHUNK_HEAD_SIZE, plen));
	rv = backup_write_at(w, p, w->chunk.len, w->off, errmsg);
	if (rv != RS_OK)
		return rv;
	w->off += (off_t)w->chunk.len;
	w->image_crc = crc32c_extend(w->image_crc, p + BACKUP_CHUNK_HEAD_SIZE,
				     plen);
	w->image_bytes += plen;
	w->chunks++;
	return backup_chunk_reset(w);
}

int backup_writer_add(struct backup_writer *w, const uint8_t *key,
		      uint32_t key_len, const uint8_t *val, uint32_t val_len,
		      char *errmsg)
{
	int rv;

	assert(w->fd >= 0 && w->off >= (off_t)BACKUP_HEADER_SIZE);
	assert(w->chunk.len >= BACKUP_CHUNK_HEAD_SIZE);
	if (key_len == 0 || key_len > RS_KEY_SIZE_MAX ||
	    val_len > RS_VALUE_SIZE_MAX) {
		rs_errmsg_printf(errmsg, "entry %llu: key of %u bytes or value of %u "
					 "bytes out of limits",
				 (unsigned long long)w->keys, key_len, val_len);
		return RS_EINVAL;
	}
	if (w->keys > 0 && bytes_compare(w->last_key.data, w->last_key.len, key,
					 key_len) >= 0) {
		rs_errmsg_printf(errmsg, "entry %llu: key not after the previous key",
				 (unsigned long long)w->keys);
		return RS_EINVAL;
	}
	w->last_key.len = 0;
	if (rs_buf_append(&w->last_key, key, key_len) != RS_OK ||
	    rs_buf_put_u32(&w->chunk, key_len) != RS_OK ||
	    rs_buf_append(&w->chunk, key, key_len) != RS_OK ||
	    rs_buf_put_u32(&w->chunk, val_len) != RS_OK ||
	    rs_buf_append(&w->chunk, val, val_len) != RS_OK) {
		rs_errmsg_printf(errmsg, "write %s: out of memory", w->path);
		return RS_ENOMEM;
	}
	w->chunk_entries++;
	w->keys++;
	if (w->chunk.len - BACKUP_CHUNK_HEAD_SIZE >= BACKUP_CHUNK_PAYLOAD_TARGET &&
	    (rv = backup_chunk_flush(w, errmsg)) != RS_OK)
		return rv;
	return RS_OK;
}

void backup_writer_set_epoch(struct backup_writer *w, uint64_t epoch)
{
	w->header.epoch = epoch;
}

/* Make the temp file durable under its final name. */
static int backup_writer_commit(struct backup_writer *w, char *errmsg)
{
	char dir[sizeof w->path];
	int rv = fileio_fsync(w->fd, errmsg);

	if (rv != RS_OK)
		rs_errmsg_wrapf(errmsg, "%s", w->tmp_path);
	fileio_close(w->fd);
	w->fd = -1;
	if (rv == RS_OK)
		rv = fileio_rename(w->tmp_path, w->path, errmsg);
	if (rv != RS_OK)
		return rv;
	snprintf(dir, sizeof dir, "%s", w->path);
	return fileio_fsync_dir(dirname(dir), errmsg);
}

/* Paired with the reader's checks: what is about to be written decodes
 * back to what the writer counted. */
static void backup_writer_check(const uint8_t *head, const uint8_t *trailer,
				const struct backup_info *out)
{
	struct backup_header h;

	assert(backup_header_decode(head, BACKUP_HEADER_SIZE, &h, NULL) == RS_OK);
	assert(h.version == out->header.version && h.epoch == out->header.epoch);
	assert(backup_trailer_check(trailer, out, 0, NULL) == RS_OK);
	(void)h; /* only read by assert() */
	(void)head;
	(void)trailer;
	(void)out;
}

int backup_writer_finish(struct backup_writer *w, struct backup_info *info,
			 char *errmsg)
{
	uint8_t head[BACKUP_HEADER_SIZE], trailer[BACKUP_TRAILER_SIZE];
	struct backup_info out;
	int rv = backup_chunk_flush(w, errmsg);

	memset(&out, 0, sizeof out);
	out.header = w->header;
	out.chunks = w->chunks;
	out.keys = w->keys;
	out.image_bytes = w->image_bytes;
	out.image_crc = w->image_crc;
	out.file_bytes = (uint64_t)w->off + BACKUP_TRAILER_SIZE;
	backup_trailer_encode(&out, trailer);
	backup_header_encode(&w->header, head);
	backup_writer_check(head, trailer, &out);
	if (rv == RS_OK)
		rv = backup_write_at(w, trailer, sizeof trailer, w->off, errmsg);
	if (rv == RS_OK)
		rv = backup_write_at(w, head, sizeof head, 0, errmsg);
	if (rv == RS_OK)
		rv = backup_writer_commit(w, errmsg);
	if (rv != RS_OK) {
		backup_writer_abort(w);
		return rv;
	}
	rs_buf_free(&w->chunk);
	rs_buf_free(&w->last_key);
	if (info != NULL)
		*info = out;
	return RS_OK;
}

void backup_writer_abort(struct backup_writer *w)
{
	if (w->fd >= 0)
		fileio_close(w->fd);
	w->fd = -1;
	if (w->tmp_path[0] != '\0')
		fileio_unlink(w->tmp_path, NULL);
	rs_buf_free(&w->chunk);
	rs_buf_free(&w->last_key);
}
