/*
 * journal segment files: their names, their header, their creation and
 * the listing of a directory (journal.h draws the header).
 *
 * Only the canonical name seg-<seq:016x>.rsj is a segment, so that one seq
 * has one file.  A segment is created with its header and made durable,
 * file and directory entry, before any record goes to it; an existing file
 * is never overwritten.  Listing reads no record.
 */
#include "storage/journal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftstore/lib/bytes.h"
#include "raftstore/lib/crc32c.h"
#include "storage/fileio.h"
#include "storage/journal_internal.h"

_Static_assert(JOURNAL_HEADER_SIZE == 40, "the header drawn in journal.h");
_Static_assert(sizeof(JOURNAL_MAGIC) - 1 == 8, "8-byte magic");

/* ---- names ---- */

void journal_seg_name(char *out, size_t size, uint64_t seq)
{
	int n = snprintf(out, size, "seg-%016" PRIx64 ".rsj", seq);
	assert(n == JOURNAL_NAME_LEN);
	(void)n;
}

/* dir/name; journal_open and journal_list_segments check dir's length. */
void journal_path(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	assert(n > 0 && n < PATH_MAX);
	(void)n;
}

bool journal_dir_ok(const char *dir, char *errmsg)
{
	if (dir != NULL && dir[0] != '\0' &&
	    strlen(dir) + 1 + JOURNAL_NAME_LEN < PATH_MAX)
		return true;
	rs_errmsg_printf(errmsg, "bad journal directory name");
	return false;
}

/* ---- segment header ---- */

static void journal_header_encode(uint8_t *h, uint64_t seq,
				  uint64_t prev_version)
{
	assert(seq > 0);
	memset(h, 0, JOURNAL_HEADER_SIZE);
	memcpy(h, JOURNAL_MAGIC, 8);
	rs_put_u32(h + JOURNAL_OFF_FORMAT, JOURNAL_FORMAT_VERSION);
	rs_put_u64(h + JOURNAL_OFF_SEQ, seq);
	rs_put_u64(h + JOURNAL_OFF_PREV, prev_version);
	rs_put_u32(h + JOURNAL_OFF_CRC, crc32c(h, JOURNAL_OFF_CRC));
	assert(rs_get_u64(h + JOURNAL_OFF_SEQ) == seq);
}

/*
 * Check a full header against the segment's name.  The format version is
 * checked before the checksum so that a newer format whose header differs
 * is reported as such (RS_EFORMAT), not as damage.  *bad_offset is the
 * field at fault.
 */
int journal_header_decode(const uint8_t *h, uint64_t seq,
			  uint64_t *prev_version, uint64_t *bad_offset,
			  char *errmsg)
{
	uint32_t format = rs_get_u32(h + JOURNAL_OFF_FORMAT);

	assert(h != NULL && prev_version != NULL);
	assert(seq > 0); /* names with seq 0 are never listed */
	*bad_offset = 0;
	if (memcmp(h, JOURNAL_MAGIC, 8) != 0) {
		rs_errmsg_printf(errmsg, "bad segment magic");
		return RS_ECORRUPT;
	}
	*bad_offset = JOURNAL_OFF_FORMAT;
	if (format != JOURNAL_FORMAT_VERSION) {
		rs_errmsg_printf(errmsg,
				 "format version %u is not supported (this build "
				 "reads version %u)",
				 format, JOURNAL_FORMAT_VERSION);
		return RS_EFORMAT;
	}
	*bad_offset = JOURNAL_OFF_CRC;
	if (rs_get_u32(h + JOURNAL_OFF_CRC) != crc32c(h, JOURNAL_OFF_CRC)) {
		rs_errmsg_printf(errmsg, "segment header checksum mismatch");
		return RS_ECORRUPT;
	}
	*bad_offset = JOURNAL_OFF_FLAGS;
	if (rs_get_u32(h + JOURNAL_OFF_FLAGS) != 0) {
		rs_errmsg_printf(errmsg, "unknown segment header flags 0x%x",
				 rs_get_u32(h + JOURNAL_OFF_FLAGS));
		return RS_EFORMAT;
	}
	/* Not covered by the checksum: zero is the only check there is. */
	*bad_offset = JOURNAL_OFF_RESERVED;
	if (rs_get_u32(h + JOURNAL_OFF_RESERVED) != 0) {
		rs_errmsg_printf(errmsg, "reserved header bytes are not zero");
		return RS_ECORRUPT;
	}
	*bad_offset = JOURNAL_OFF_SEQ;
	if (rs_get_u64(h + JOURNAL_OFF_SEQ) != seq) {
		rs_errmsg_printf(errmsg, "header seq %" PRIx64
				 " does not match the file name",
				 rs_get_u64(h + JOURNAL_OFF_SEQ));
		return RS_ECORRUPT;
	}
	*prev_version = rs_get_u64(h + JOURNAL_OFF_PREV);
	return RS_OK;
}

/*
 * Create segment seq with its header and make it durable: the file, then
 * its directory entry, so that records written to it can never be lost with
 * the file.  O_EXCL: an existing file of that name is never overwritten.
 * Blocks.  On failure a partial file may remain; open treats a short or
 * zero header in the last segment as torn and removes it.
 */
int journal_segment_create(const char *dir, uint64_t seq,
			   uint64_t prev_version, int *fd, char *errmsg)
{
	uint8_t h[JOURNAL_HEADER_SIZE];
	char name[JOURNAL_NAME_LEN + 1];
	char path[PATH_MAX];
	int rv;

	assert(dir != NULL && fd != NULL);
	journal_seg_name(name, sizeof name, seq);
	journal_path(path, dir, name);
	journal_header_encode(h, seq, prev_version);
	rv = fileio_open(path, O_RDWR | O_CREAT | O_EXCL, fd, errmsg);
	if (rv != RS_OK)
		goto err;
	rv = fileio_pwrite(*fd, h, sizeof h, 0, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync(*fd, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(dir, errmsg);
	if (rv != RS_OK)
		goto err_close;
	assert(*fd >= 0);
	return RS_OK;
err_close:
	fileio_close(*fd);
err:
	*fd = -1;
	rs_errmsg_wrapf(errmsg, "create segment %s", name);
	return rv;
}

/* ---- listing ---- */

/* Accept only the canonical name, so that one seq has one file. */
static bool journal_name_parse(const char *name, uint64_t *seq)
{
	uint64_t v = 0;

	assert(name != NULL && seq != NULL);
	if (strlen(name) != JOURNAL_NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
	    strcmp(name + 20, ".rsj") != 0)
		return false;
	if (!bytes_hex_parse_u64(name + 4, 16, &v))
		return false;
	*seq = v;
	return v > 0;
}


static int journal_list_add(struct journal_list *l, DIR *d, const char *name,
			    uint64_t seq, char *errmsg)
{
	struct journal_segment_info *info;
	struct stat st;

	assert(l->n <= l->cap);
	if (fstatat(dirfd(d), name, &st, 0) != 0)
		return rs_errmsg_errno(errmsg, errno, "stat %s", name);
	if (!S_ISREG(st.st_mode))
		return RS_OK;
	if (l->n == l->cap) {
		unsigned cap = l->cap > 0 ? l->cap * 2 : 16;
		info = realloc(l->segs, cap * sizeof *info);
		if (info == NULL)
			return RS_ENOMEM;
		l->segs = info;
		l->cap = cap;
	}
	info = &l->segs[l->n++];
	memset(info, 0, sizeof *info);
	snprintf(info->name, sizeof info->name, "%s", name);
	info->seq = seq;
	info->size = (uint64_t)st.st_size;
	assert(l->n <= l->cap);
	return RS_OK;
}

static int journal_info_cmp(const void *a, const void *b)
{
	const struct journal_segment_info *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The segment files of dir in seq order, without reading them. */
int journal_list_dir(const char *dir, struct journal_list *l,
		     char *errmsg)
{
	struct dirent *e;
	uint64_t seq;
	DIR *d;
	int rv = RS_OK;

	assert(dir != NULL && l != NULL);
	memset(l, 0, sizeof *l);
	d = opendir(dir);
	if (d == NULL)
		return rs_errmsg_errno(errmsg, errno, "list %s", dir);
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (e == NULL) {
			if (errno != 0)
				rv = rs_errmsg_errno(errmsg, errno, "list %s", dir);
			break;
		}
		if (journal_name_parse(e->d_name, &seq))
			rv = journal_list_add(l, d, e->d_name, seq, errmsg);
		if (rv != RS_OK)
			break;
	}
	closedir(d);
	if (rv != RS_OK) {
		free(l->segs);
		memset(l, 0, sizeof *l);
		return rv;
	}
	if (l->n > 1)
		qsort(l->segs, l->n, sizeof *l->segs, journal_info_cmp);
	/* Canonical names: one file per seq, so the order is strict. */
	for (unsigned i = 1; i < l->n; i++)
		assert(l->segs[i - 1].seq < l->segs[i].seq);
	return RS_OK;
}

/* Fill info->prev_version from the header if it is valid; 0 otherwise. */
static int journal_peek_prev(const char *dir,
			     struct journal_segment_info *info, char *errmsg)
{
	uint8_t h[JOURNAL_HEADER_SIZE];
	char path[PATH_MAX];
	char scratch[RS_ERRMSG_SIZE];
	uint64_t bad_offset;
	size_t got;
	int fd, rv;

	assert(info != NULL && info->seq > 0);
	assert(dir != NULL);
	journal_path(path, dir, info->name);
	rv = fileio_open(path, O_RDONLY, &fd, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = fileio_pread(fd, h, sizeof h, 0, &got, errmsg);
	fileio_close(fd);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "%s", path);
		return rv;
	}
	if (got != sizeof h || journal_header_decode(h, info->seq,
						     &info->prev_version,
						     &bad_offset, scratch) != RS_OK)
		info->prev_version = 0;
	return RS_OK;
}

int journal_list_segments(const char *dir, struct journal_segment_info **segs,
			  unsigned *n, char *errmsg)
{
	char scratch[RS_ERRMSG_SIZE];
	struct journal_list l;
	int rv = RS_EINVAL;

	assert(segs != NULL && n != NULL);
	if (errmsg == NULL)
		errmsg = scratch;
	*segs = NULL;
	*n = 0;
	if (journal_dir_ok(dir, errmsg))
		rv = journal_list_dir(dir, &l, errmsg);
	for (unsigned i = 0; rv == RS_OK && i < l.n; i++)
		rv = journal_peek_prev(dir, &l.segs[i], errmsg);
	if (rv != RS_OK) {
		if (rv != RS_EINVAL)
			free(l.segs);
		rs_errmsg_wrapf(errmsg, "list journal %s", dir ? dir : "(null)");
		return rv;
	}
	*segs = l.segs;
	*n = l.n;
	assert(*n == 0 || *segs != NULL);
	return RS_OK;
}
