/*
 * raftseg: see raftseg.h.
 *
 * A segment is walked batch by batch, as c-raft 0.15 reads it, until the
 * first place that is not a valid batch; that place and the bytes after it
 * decide the verdict. A bad batch whose header checksum cannot be trusted
 * has no trustworthy length, so "is this the tail?" is answered by looking
 * for any valid batch after it: finding one means that cutting here would
 * drop verifiable data, which only corruption can explain.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dirent, strnlen */
#endif
#include "raftstore/raftseg.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "storage/fileio.h"

_Static_assert(RAFTSEG_ENTRIES_MAX == 262144, "c-raft 0.15's bound on n");
_Static_assert(RAFTSEG_PREAMBLE_SIZE == 2 * 4 + 8, "two checksums and n");

/* The entry types c-raft 0.15 accepts (raft.h: RAFT_COMMAND..RAFT_CHANGE). */
#define RAFTSEG_TYPE_MIN 1
#define RAFTSEG_TYPE_MAX 3
/* Bytes the search for a valid batch may checksum before it gives up and
 * assumes one is there (the safe answer: corrupt, never cut). */
#define RAFTSEG_SEARCH_BUDGET ((size_t)256 << 20)

/* ------------------------------------------------------------------ */
/* Checksum: CRC-32, polynomial 0x04C11DB7, MSB first, init 0, no XOR   */
/* ------------------------------------------------------------------ */

/* crc_table[k][b]: the CRC register after byte b followed by k zero bytes
 * (slicing by 8). */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b << 24;
		for (int bit = 0; bit < 8; bit++)
			c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
		crc_table[0][b] = c;
	}
	for (int k = 1; k < 8; k++)
		for (uint32_t b = 0; b < 256; b++) {
			uint32_t c = crc_table[k - 1][b];
			crc_table[k][b] = (c << 8) ^ crc_table[0][c >> 24];
		}
	assert(crc_table[0][1] == 0x04C11DB7u);
}

static uint32_t crc_bytes(uint32_t crc, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		crc = (crc << 8) ^ crc_table[0][(crc >> 24) ^ p[i]];
	return crc;
}

uint32_t raftseg_crc32(uint32_t crc, const void *data, size_t n)
{
	const uint8_t *p = data;

	assert(p != NULL || n == 0);
	pthread_once(&crc_once, crc_init);
	for (; n >= 8; p += 8, n -= 8) {
		uint32_t a = crc ^ ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
				    (uint32_t)p[2] << 8 | p[3]);
		crc = crc_table[7][a >> 24] ^ crc_table[6][(a >> 16) & 0xff] ^
		      crc_table[5][(a >> 8) & 0xff] ^ crc_table[4][a & 0xff] ^
		      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		      crc_table[1][p[6]] ^ crc_table[0][p[7]];
	}
	return crc_bytes(crc, p, n);
}

/* ------------------------------------------------------------------ */
/* Walking the batches                                                  */
/* ------------------------------------------------------------------ */

/* Why the walk stopped at w->off. */
enum seg_stop {
	SEG_STOP_EOF,	     /* the file ends right after a batch */
	SEG_STOP_ZEROS,	     /* only zeros from here on */
	SEG_STOP_CUT,	     /* a batch cut short by EOF, as far as it can
				be checked (header verified, or only part
				of the preamble there) */
	SEG_STOP_CUT_HEADER, /* a batch header cut short by EOF: its n may
				be damaged */
	SEG_STOP_BAD_HEADER, /* header checksum mismatch */
	SEG_STOP_BAD_DATA,   /* header good, data checksum mismatch */
	SEG_STOP_IMPOSSIBLE  /* a field no write of c-raft's produces */
};

struct seg_walk {
	const uint8_t *data;
	size_t len;
	size_t off;	    /* start of the current batch */
	uint32_t batches;   /* valid batches before off */
	uint64_t entries;   /* their entries */
	uint64_t bad_end;   /* where the bad batch says it ends */
	enum seg_stop stop;
	char why[RAFTSEG_WHY_SIZE];
};

static bool all_zero(const uint8_t *p, size_t n)
{
	for (; n > 0 && ((uintptr_t)p & 7) != 0; p++, n--)
		if (*p != 0)
			return false;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		if (w != 0)
			return false;
	}
	for (; n > 0; p++, n--)
		if (*p != 0)
			return false;
	return true;
}

/* The length of data[0..len) without its trailing zeros. */
static size_t nonzero_end(const uint8_t *p, size_t len)
{
	uint64_t w;

	while (len >= 8 && (memcpy(&w, p + len - 8, 8), w == 0))
		len -= 8;
	while (len > 0 && p[len - 1] == 0)
		len--;
	return len;
}

/* Record why the walk stops; returns false (no batch here). */
static bool seg_stop_at(struct seg_walk *w, enum seg_stop stop,
			const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool seg_stop_at(struct seg_walk *w, enum seg_stop stop,
			const char *fmt, ...)
{
	va_list ap;

	w->stop = stop;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof w->why, fmt, ap);
	va_end(ap);
	return false;
}

/* The preamble at w->off, before any checksum: false if the walk stops. */
static bool seg_preamble(struct seg_walk *w, uint64_t *n)
{
	const uint8_t *b = w->data + w->off;
	size_t rest = w->len - w->off;

	if (rest == 0)
		return seg_stop_at(w, SEG_STOP_EOF, "%s", "");
	if (rest < RAFTSEG_PREAMBLE_SIZE)
		return all_zero(b, rest)
			       ? seg_stop_at(w, SEG_STOP_ZEROS,
					     "only %zu zero bytes follow the last "
					     "batch: c-raft 0.15 reads 16 and fails",
					     rest)
			       : seg_stop_at(w, SEG_STOP_CUT,
					     "batch preamble cut short by the end "
					     "of the file (%zu of 16 bytes)",
					     rest);
	*n = rs_get_u64(b + 8);
	if (*n == 0 && all_zero(b + 8, rest - 8))
		return all_zero(b, 8) ? seg_stop_at(w, SEG_STOP_ZEROS, "%s", "")
				      : seg_stop_at(w, SEG_STOP_CUT,
						    "batch preamble with "
						    "checksums only, zeros after");
	if (*n == 0)
		return seg_stop_at(w, SEG_STOP_IMPOSSIBLE,
				   "entry count 0 with non-zero bytes after it");
	if (*n > RAFTSEG_ENTRIES_MAX)
		return seg_stop_at(w, SEG_STOP_IMPOSSIBLE,
				   "entry count %" PRIu64 " over c-raft's bound %u",
				   *n, RAFTSEG_ENTRIES_MAX);
	return true;
}

/* The size of the data section that the entry headers of the batch at
 * w->off announce (trusted only once the header checksum is good). */
static uint64_t seg_data_len(const struct seg_walk *w, uint64_t n)
{
	const uint8_t *h = w->data + w->off + RAFTSEG_PREAMBLE_SIZE;
	uint64_t sum = 0;

	assert(n <= RAFTSEG_ENTRIES_MAX);
	for (uint64_t i = 0; i < n; i++, h += RAFTSEG_ENTRY_HEADER_SIZE)
		sum += rs_get_u32(h + 12);
	return sum;
}

/* The types of the entries of the batch at w->off, whose header checksum
 * is good. */
static bool seg_entry_types(struct seg_walk *w, uint64_t n)
{
	const uint8_t *h = w->data + w->off + RAFTSEG_PREAMBLE_SIZE;

	for (uint64_t i = 0; i < n; i++, h += RAFTSEG_ENTRY_HEADER_SIZE) {
		uint8_t type = h[8];
		if (type < RAFTSEG_TYPE_MIN || type > RAFTSEG_TYPE_MAX)
			return seg_stop_at(w, SEG_STOP_IMPOSSIBLE,
					   "entry %" PRIu64 " of the batch has "
					   "type %u under a good checksum",
					   i + 1, type);
	}
	return true;
}

/* Check the batch at w->off; step over it if it is valid. w->bad_end is
 * where the batch says it ends (the end of the file when even its header
 * is cut short). */
static bool seg_batch_next(struct seg_walk *w)
{
	const uint8_t *b = w->data + w->off;
	size_t rest = w->len - w->off;
	uint64_t n = 0, data_len;
	size_t head;

	assert(w->off <= w->len);
	w->bad_end = w->len;
	if (!seg_preamble(w, &n))
		return false;
	head = RAFTSEG_PREAMBLE_SIZE + (size_t)n * RAFTSEG_ENTRY_HEADER_SIZE;
	if (head > rest)
		return seg_stop_at(w, SEG_STOP_CUT_HEADER,
				   "header of a %" PRIu64 "-entry batch cut "
				   "short by the end of the file",
				   n);
	data_len = seg_data_len(w, n);
	w->bad_end = w->off + head + data_len;
	if (raftseg_crc32(0, b + 8, head - 8) != rs_get_u32(b))
		return seg_stop_at(w, SEG_STOP_BAD_HEADER,
				   "batch header checksum mismatch");
	if (!seg_entry_types(w, n))
		return false;
	if (data_len > rest - head)
		return seg_stop_at(w, SEG_STOP_CUT,
				   "batch data cut short by the end of the file "
				   "(%zu of %" PRIu64 " bytes)",
				   rest - head, data_len);
	if (raftseg_crc32(0, b + head, (size_t)data_len) != rs_get_u32(b + 4))
		return seg_stop_at(w, SEG_STOP_BAD_DATA,
				   "batch data checksum mismatch");
	w->off = (size_t)w->bad_end;
	w->batches++;
	w->entries += n;
	assert(w->off <= w->len);
	return true;
}

static void seg_walk(struct seg_walk *w, const uint8_t *data, size_t len)
{
	assert(len >= RAFTSEG_FORMAT_SIZE);
	memset(w, 0, sizeof *w);
	w->data = data;
	w->len = len;
	w->off = RAFTSEG_FORMAT_SIZE;
	while (seg_batch_next(w))
		;
	assert(w->off >= RAFTSEG_FORMAT_SIZE && w->off <= len);
}

/*
 * Does a batch with a good header checksum start anywhere in [from, len)?
 * 1 if one does, at *at; 0 if none; -1 if the search budget ran out. Every
 * offset is tried, not only multiples of 8: an unpadded entry shifts the
 * batches after it. The count and type filters spare the checksum almost
 * everywhere.
 */
static int seg_valid_batch_after(const uint8_t *data, size_t len, size_t from,
				 size_t *at)
{
	size_t budget = RAFTSEG_SEARCH_BUDGET;
	size_t nonzero = nonzero_end(data, len); /* n > 0 lies before it */

	assert(data != NULL && from >= RAFTSEG_FORMAT_SIZE);
	for (size_t p = from; p + 8 < nonzero &&
	     p + RAFTSEG_PREAMBLE_SIZE + RAFTSEG_ENTRY_HEADER_SIZE <= len; p++) {
		uint64_t n = rs_get_u64(data + p + 8);
		size_t head;
		uint8_t type;

		if (n == 0 || n > (len - p - RAFTSEG_PREAMBLE_SIZE) /
					  RAFTSEG_ENTRY_HEADER_SIZE)
			continue;
		type = data[p + RAFTSEG_PREAMBLE_SIZE + 8];
		if (type < RAFTSEG_TYPE_MIN || type > RAFTSEG_TYPE_MAX)
			continue;
		head = RAFTSEG_PREAMBLE_SIZE + (size_t)n * RAFTSEG_ENTRY_HEADER_SIZE;
		if (head > budget)
			return -1;
		budget -= head;
		if (raftseg_crc32(0, data + p + 8, head - 8) == rs_get_u32(data + p)) {
			*at = p;
			return 1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Verdicts                                                             */
/* ------------------------------------------------------------------ */

static void info_set(struct raftseg_info *info, enum raftseg_verdict v,
		     bool repair, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void info_set(struct raftseg_info *info, enum raftseg_verdict v,
		     bool repair, const char *fmt, ...)
{
	va_list ap;

	assert(!repair || info->is_open);
	info->verdict = v;
	info->needs_repair = repair;
	va_start(ap, fmt);
	vsnprintf(info->why, sizeof info->why, fmt, ap);
	va_end(ap);
}

/* Copy the walk's counts into info; bad_offset is where it stopped. */
static void info_from_walk(struct raftseg_info *info, const struct seg_walk *w)
{
	info->batches = w->batches;
	info->entries = w->entries;
	info->valid_end = w->off;
	info->bad_offset = w->off;
	info->bad_batch = w->batches + 1;
}

/* A bad batch whose header checksum fails: its length is a claim. Torn
 * only if the non-zero bytes end within that claim, and no valid batch
 * starts anywhere after it (a damaged count or length cannot hide one). */
static void seg_judge_untrusted(struct raftseg_info *info,
				const struct seg_walk *w)
{
	size_t at = 0, nonzero = nonzero_end(w->data, w->len);
	int found;

	assert(w->stop == SEG_STOP_BAD_HEADER || w->stop == SEG_STOP_CUT_HEADER);
	if (nonzero > w->bad_end) {
		info_set(info, RAFTSEG_CORRUPT, false,
			 "%s, non-zero bytes after where it says it ends "
			 "(byte %" PRIu64 ")", w->why, w->bad_end);
		return;
	}
	found = seg_valid_batch_after(w->data, w->len, w->off + 8, &at);
	if (found == 0)
		info_set(info, RAFTSEG_TORN, true, "%s, nothing valid after it",
			 w->why);
	else if (found > 0)
		info_set(info, RAFTSEG_CORRUPT, false,
			 "%s, yet a valid batch follows at byte %zu", w->why, at);
	else
		info_set(info, RAFTSEG_CORRUPT, false,
			 "%s; could not rule out valid batches after it", w->why);
}

static void seg_judge_open(struct raftseg_info *info, const struct seg_walk *w)
{
	switch (w->stop) {
	case SEG_STOP_EOF:
		if (w->batches == 0)
			info_set(info, RAFTSEG_CLEAN, true,
				 "only the format field: c-raft 0.15 fails to "
				 "read a first batch");
		else
			info_set(info, RAFTSEG_CLEAN, false, "%s", "");
		break;
	case SEG_STOP_ZEROS: /* a short run of zeros is a short read to c-raft */
		info_set(info, RAFTSEG_CLEAN,
			 w->len - w->off < RAFTSEG_PREAMBLE_SIZE, "%s", w->why);
		break;
	case SEG_STOP_CUT:
		info_set(info, RAFTSEG_TORN, true, "%s", w->why);
		break;
	case SEG_STOP_CUT_HEADER:
	case SEG_STOP_BAD_HEADER:
		seg_judge_untrusted(info, w);
		break;
	case SEG_STOP_BAD_DATA:
		assert(w->bad_end <= w->len);
		if (all_zero(w->data + w->bad_end, w->len - (size_t)w->bad_end))
			info_set(info, RAFTSEG_TORN, true, "%s, only zeros after it",
				 w->why);
		else
			info_set(info, RAFTSEG_CORRUPT, false,
				 "%s, non-zero bytes after it (from byte %" PRIu64 ")",
				 w->why, w->bad_end);
		break;
	case SEG_STOP_IMPOSSIBLE:
		info_set(info, RAFTSEG_CORRUPT, false, "%s", w->why);
		break;
	}
}

/* A closed segment must be whole, and hold the entries its name says. */
static void seg_judge_closed(struct raftseg_info *info, const struct seg_walk *w)
{
	uint64_t want = info->end_index - info->first_index + 1;

	if (w->stop != SEG_STOP_EOF)
		info_set(info, RAFTSEG_CORRUPT, false, "%s",
			 w->why[0] != '\0' ? w->why
					   : "zeros after the last batch");
	else if (w->batches == 0)
		info_set(info, RAFTSEG_CORRUPT, false, "no batch after the "
						       "format field");
	else if (info->first_index != 0 && w->entries != want)
		info_set(info, RAFTSEG_CORRUPT, false,
			 "holds %" PRIu64 " entries, its name says %" PRIu64,
			 w->entries, want);
	else
		info_set(info, RAFTSEG_CLEAN, false, "%s", "");
}

/* The format field; false when the verdict is already decided. */
static bool seg_format(const uint8_t *data, size_t len,
		       struct raftseg_info *info)
{
	uint64_t format;

	if (len < RAFTSEG_FORMAT_SIZE) {
		info->unused = info->is_open && len == 0;
		if (!info->is_open)
			info_set(info, RAFTSEG_CORRUPT, false,
				 "%zu bytes: no room for the format field", len);
		else if (len > 0)
			info_set(info, RAFTSEG_TORN, true, "format field cut "
				 "short by the end of the file (%zu of 8 bytes)",
				 len);
		return false;
	}
	format = rs_get_u64(data);
	if (format == RAFTSEG_FORMAT)
		return true;
	if (format != 0 || !info->is_open)
		info_set(info, RAFTSEG_CORRUPT, false, "format version %" PRIu64
			 ", c-raft " RAFTSEG_CRAFT_VERSION " writes %d",
			 format, RAFTSEG_FORMAT);
	else if (all_zero(data, len))
		info->unused = true;
	else /* a write that lost its first block? Data may be lost too */
		info_set(info, RAFTSEG_CORRUPT, false, "format field is 0, but "
			 "non-zero bytes follow (up to byte %zu)",
			 nonzero_end(data, len));
	return false;
}

enum raftseg_verdict raftseg_scan(const uint8_t *data, size_t len,
				  struct raftseg_info *info)
{
	struct seg_walk w;

	assert(info != NULL && (data != NULL || len == 0));
	assert(info->is_open || info->first_index <= info->end_index);
	info->size_bytes = len;
	info->unused = false;
	info->batches = 0;
	info->entries = 0;
	info->valid_end = 0;
	info->bad_offset = 0;
	info->bad_batch = 1;
	info_set(info, RAFTSEG_CLEAN, false, "%s", "");
	if (seg_format(data, len, info)) {
		seg_walk(&w, data, len);
		info_from_walk(info, &w);
		if (info->is_open)
			seg_judge_open(info, &w);
		else
			seg_judge_closed(info, &w);
	}
	if (info->verdict == RAFTSEG_CLEAN && !info->needs_repair)
		info->bad_offset = len;
	info->bad_index = info->first_index ? info->first_index + info->entries : 0;
	if (info->is_open && info->first_index != 0)
		info->end_index = info->first_index + info->entries - 1;
	assert(info->valid_end <= len && info->bad_offset <= len);
	assert(info->verdict == RAFTSEG_CLEAN || info->why[0] != '\0');
	return info->verdict;
}

const char *raftseg_verdict_name(enum raftseg_verdict v)
{
	switch (v) {
	case RAFTSEG_CLEAN:
		return "clean";
	case RAFTSEG_TORN:
		return "torn";
	case RAFTSEG_CORRUPT:
		return "corrupt";
	}
	return "?";
}

/* One line about a segment, e.g. "open-2: torn tail at byte 27215 (entry
 * 300, batch 91): batch cut short by the end of the file; 90 valid batches,
 * 299 entries, valid up to byte 26824". Always NUL-terminated. */
static void raftseg_describe(const struct raftseg_info *s, char *buf,
			     size_t size)
{
	const char *what = s->verdict == RAFTSEG_TORN	   ? "torn tail"
			   : s->verdict == RAFTSEG_CORRUPT ? "corrupt"
							   : "unloadable tail";
	char index[40] = "entry index unknown";

	assert(buf != NULL && size > 0);
	if (s->bad_index != 0)
		snprintf(index, sizeof index, "entry %" PRIu64, s->bad_index);
	if (s->verdict == RAFTSEG_CLEAN && !s->needs_repair)
		snprintf(buf, size, "%s: clean, %" PRIu32 " batches, %" PRIu64
			 " entries%s", s->name, s->batches, s->entries,
			 s->unused ? " (unused)" : "");
	else
		snprintf(buf, size, "%s: %s at byte %" PRIu64 " (%s, batch %"
			 PRIu32 "): %s; %" PRIu32 " valid batches, %" PRIu64
			 " entries, valid up to byte %" PRIu64, s->name, what,
			 s->bad_offset, index, s->bad_batch, s->why, s->batches,
			 s->entries, s->valid_end);
}

/* ------------------------------------------------------------------ */
/* The directory                                                        */
/* ------------------------------------------------------------------ */

/* Parse a run of 1..20 decimal digits at *s; false if there is none or it
 * overflows. */
static bool parse_u64(const char **s, uint64_t *v)
{
	const char *p = *s;

	*v = 0;
	for (; *p >= '0' && *p <= '9' && p - *s < 20; p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (*v > (UINT64_MAX - d) / 10)
			return false;
		*v = *v * 10 + d;
	}
	if (p == *s)
		return false;
	*s = p;
	return true;
}

/* "FIRST-END" (closed), "open-N" (open): as c-raft matches them. */
static bool name_parse(const char *name, struct raftseg_info *info)
{
	const char *p = name;

	memset(info, 0, sizeof *info);
	if (strnlen(name, RAFTSEG_NAME_SIZE) >= RAFTSEG_NAME_SIZE)
		return false;
	if (strncmp(name, "open-", 5) == 0) {
		p += 5;
		info->is_open = true;
		if (!parse_u64(&p, &info->counter) || *p != '\0')
			return false;
	} else if (!parse_u64(&p, &info->first_index) || *p++ != '-' ||
		   !parse_u64(&p, &info->end_index) || *p != '\0' ||
		   info->first_index == 0 ||
		   info->first_index > info->end_index) {
		return false;
	}
	memcpy(info->name, name, strlen(name) + 1); /* fits: checked above */
	return true;
}

/* "snapshot-TERM-INDEX-TIMESTAMP.meta": INDEX, or 0. */
static uint64_t snapshot_index_of(const char *name)
{
	const char *p = name;
	uint64_t term, index, ts;

	if (strncmp(p, "snapshot-", 9) != 0)
		return 0;
	p += 9;
	if (!parse_u64(&p, &term) || *p++ != '-' || !parse_u64(&p, &index) ||
	    *p++ != '-' || !parse_u64(&p, &ts) || strcmp(p, ".meta") != 0)
		return 0;
	return index;
}

static int report_push(struct raftseg_report *rep, const struct raftseg_info *s,
		       char *errmsg)
{
	/* A directory holds tens of segments: grow one at a time. */
	struct raftseg_info *segs = realloc(rep->segs, (rep->n + 1) * sizeof *segs);

	if (segs == NULL) {
		rs_errmsg_printf(errmsg, "list segments: out of memory");
		return RS_ENOMEM;
	}
	rep->segs = segs;
	rep->segs[rep->n++] = *s;
	return RS_OK;
}

static int seg_order(const void *a, const void *b)
{
	const struct raftseg_info *x = a, *y = b;

	if (x->is_open != y->is_open)
		return x->is_open ? 1 : -1;
	if (x->is_open)
		return x->counter < y->counter ? -1 : x->counter > y->counter;
	if (x->first_index != y->first_index)
		return x->first_index < y->first_index ? -1 : 1;
	return x->end_index < y->end_index ? -1 : x->end_index > y->end_index;
}

static int report_list(const char *dir, struct raftseg_report *rep,
		       char *errmsg)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct raftseg_info s;
	int rv = RS_OK;

	if (d == NULL)
		return rs_errmsg_errno(errmsg, errno, "open directory %s", dir);
	while (rv == RS_OK && (e = readdir(d)) != NULL) {
		uint64_t snap = snapshot_index_of(e->d_name);
		if (snap > rep->snapshot_index)
			rep->snapshot_index = snap;
		if (name_parse(e->d_name, &s))
			rv = report_push(rep, &s, errmsg);
	}
	closedir(d);
	if (rv == RS_OK && rep->n > 0)
		qsort(rep->segs, rep->n, sizeof *rep->segs, seg_order);
	return rv;
}

/* Read and scan one segment (reads only). */
static int seg_check_file(const char *dir, struct raftseg_info *s,
			  char *errmsg)
{
	char path[4096];
	uint8_t *data = NULL;
	size_t len = 0;
	int rv;

	if (snprintf(path, sizeof path, "%s/%s", dir, s->name) >= (int)sizeof path) {
		rs_errmsg_printf(errmsg, "path of %s in %s too long", s->name, dir);
		return RS_EINVAL;
	}
	rv = fileio_read_all(path, &data, &len, errmsg);
	if (rv != RS_OK)
		return rv;
	raftseg_scan(data, len, s);
	free(data);
	return RS_OK;
}

/* Scan every segment, giving each open one its first index: one past the
 * entries before it, as c-raft loads them. */
static int report_scan(const char *dir, struct raftseg_report *rep,
		       char *errmsg)
{
	uint64_t next = rep->snapshot_index + 1;

	for (size_t i = 0; i < rep->n; i++) {
		struct raftseg_info *s = &rep->segs[i];
		int rv;

		if (s->is_open)
			s->first_index = next;
		rv = seg_check_file(dir, s, errmsg);
		if (rv != RS_OK)
			return rv;
		next = s->is_open ? next + s->entries : s->end_index + 1;
	}
	return RS_OK;
}

static bool seg_holds_data(const struct raftseg_info *s)
{
	return s->entries > 0 || s->verdict != RAFTSEG_CLEAN;
}

/*
 * Open segments fill up in counter order, so only the last one that holds
 * data may end in a torn tail, and none before it may be without entries:
 * c-raft would load the entries after such a gap at the wrong indexes. A
 * short zero tail before it is fine: c-raft moves to the next segment when
 * a batch does not fit, and may leave 8 bytes.
 */
static void report_order_rules(struct raftseg_report *rep)
{
	size_t last = rep->n;

	for (size_t i = 0; i < rep->n; i++)
		if (rep->segs[i].is_open && seg_holds_data(&rep->segs[i]))
			last = i;
	if (last == rep->n)
		return; /* no open segment holds data */
	for (size_t i = 0; i < last; i++) {
		struct raftseg_info *s = &rep->segs[i];
		if (!s->is_open || s->verdict == RAFTSEG_CORRUPT)
			continue;
		if (s->verdict == RAFTSEG_TORN)
			info_set(s, RAFTSEG_CORRUPT, false,
				 "%s; but the later %s holds data", s->why,
				 rep->segs[last].name);
		else if (s->entries == 0) {
			info_set(s, RAFTSEG_CORRUPT, false,
				 "holds no entry, but the later %s does",
				 rep->segs[last].name);
			s->bad_offset = 0;
		}
	}
}

/*
 * Closed segments must follow one another.  When two hold the same index,
 * c-raft 0.15 loads whichever its listing puts last, silently, even older
 * entries that a truncation should have removed (raftio.h tells how a
 * truncation got lost), or refuses with "closed segment ... is past last
 * snapshot".  Nothing here can tell which version of the log this node
 * acknowledged, so two segments that hold one index are corruption, and
 * so are indexes missing between two past the last snapshot (c-raft
 * refuses those too, in words that do not say what is wrong).
 */
static void report_sequence_rules(struct raftseg_report *rep)
{
	const struct raftseg_info *prev = NULL;

	for (size_t i = 0; i < rep->n; i++) {
		struct raftseg_info *s = &rep->segs[i];
		if (s->is_open)
			break; /* closed ones sort first */
		if (prev != NULL && s->verdict != RAFTSEG_CORRUPT) {
			if (s->first_index <= prev->end_index) {
				uint64_t last = s->end_index < prev->end_index
							? s->end_index
							: prev->end_index;
				info_set(s, RAFTSEG_CORRUPT, false,
					 "holds entries %" PRIu64 "..%" PRIu64
					 " as %s does: two versions of the "
					 "log (a truncation not finished), "
					 "c-raft would load either",
					 s->first_index, last, prev->name);
				s->bad_offset = 0;
				s->bad_batch = 1;
				s->bad_index = s->first_index;
			} else if (s->first_index > prev->end_index + 1 &&
				   s->first_index > rep->snapshot_index + 1) {
				info_set(s, RAFTSEG_CORRUPT, false,
					 "entries %" PRIu64 "..%" PRIu64
					 " are missing between %s and it, past "
					 "the last snapshot (%" PRIu64 ")",
					 prev->end_index + 1,
					 s->first_index - 1, prev->name,
					 rep->snapshot_index);
				s->bad_offset = 0;
				s->bad_batch = 1;
				s->bad_index = prev->end_index + 1;
			}
		}
		prev = s;
	}
}

static void report_sum(struct raftseg_report *rep)
{
	rep->verdict = RAFTSEG_CLEAN;
	rep->repairs = 0;
	for (size_t i = 0; i < rep->n; i++) {
		const struct raftseg_info *s = &rep->segs[i];
		assert(!s->needs_repair || s->verdict != RAFTSEG_CORRUPT);
		if (s->verdict > rep->verdict)
			rep->verdict = s->verdict;
		rep->repairs += s->needs_repair;
	}
	assert(rep->verdict != RAFTSEG_TORN || rep->repairs > 0);
}

/* The first segment with the worst verdict, or needing a repair. */
static const struct raftseg_info *report_first(const struct raftseg_report *rep)
{
	for (size_t i = 0; i < rep->n; i++) {
		const struct raftseg_info *s = &rep->segs[i];
		if (rep->verdict == RAFTSEG_CORRUPT
			    ? s->verdict == RAFTSEG_CORRUPT
			    : s->needs_repair)
			return s;
	}
	return NULL;
}

/* RS_OK, RS_ETORN or RS_ECORRUPT for a summed report, with the message. */
static int report_result(const char *dir, const struct raftseg_report *rep,
			 char *errmsg)
{
	const struct raftseg_info *s = report_first(rep);
	char line[RS_ERRMSG_SIZE];

	if (s == NULL)
		return RS_OK;
	raftseg_describe(s, line, sizeof line);
	rs_errmsg_printf(errmsg, "raft segments in %s: %s", dir, line);
	return rep->verdict == RAFTSEG_CORRUPT ? RS_ECORRUPT : RS_ETORN;
}

int raftseg_check_dir(const char *dir, struct raftseg_report *rep,
		      char *errmsg)
{
	int rv;

	assert(dir != NULL && rep != NULL);
	memset(rep, 0, sizeof *rep);
	rv = report_list(dir, rep, errmsg);
	if (rv == RS_OK)
		rv = report_scan(dir, rep, errmsg);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "check raft segments in %s", dir);
		raftseg_report_free(rep);
		return rv;
	}
	report_order_rules(rep);
	report_sequence_rules(rep);
	report_sum(rep);
	return report_result(dir, rep, errmsg);
}

void raftseg_report_free(struct raftseg_report *rep)
{
	assert(rep != NULL);
	free(rep->segs);
	memset(rep, 0, sizeof *rep);
}

/* ------------------------------------------------------------------ */
/* Repair                                                               */
/* ------------------------------------------------------------------ */

/* Cut one open segment at its valid end (0 without a valid batch: c-raft
 * 0.15 deletes an empty open segment, but fails on one that holds only the
 * format field) and fsync it. */
static int seg_cut(const char *dir, struct raftseg_info *s, char *errmsg)
{
	uint64_t keep = s->batches > 0 ? s->valid_end : 0;
	char path[4096];
	off_t size;
	int fd, rv;

	assert(s->is_open && s->needs_repair && s->verdict != RAFTSEG_CORRUPT);
	assert(keep < s->size_bytes);
	snprintf(path, sizeof path, "%s/%s", dir, s->name);
	rv = fileio_open(path, O_RDWR, &fd, errmsg);
	if (rv != RS_OK)
		return rv;
	rv = fileio_size(fd, &size, errmsg);
	if (rv == RS_OK && (uint64_t)size != s->size_bytes) {
		rs_errmsg_printf(errmsg, "%s is %jd bytes, %" PRIu64 " when "
				 "checked: check again", path, (intmax_t)size,
				 s->size_bytes);
		rv = RS_EINVAL;
	}
	if (rv == RS_OK)
		rv = fileio_truncate(fd, (off_t)keep, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync(fd, errmsg);
	fileio_close(fd);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "cut %s at byte %" PRIu64, s->name, keep);
		return rv;
	}
	s->repaired = true;
	s->cut_bytes = s->size_bytes - keep;
	return RS_OK;
}

/* Read a cut segment back: it must now be clean, with what it had. The
 * report keeps saying what was cut (why, bad_offset, bad_index). */
static int seg_verify_cut(const char *dir, struct raftseg_info *s,
			  char *errmsg)
{
	struct raftseg_info after = *s;
	int rv = seg_check_file(dir, &after, errmsg);

	if (rv != RS_OK)
		return rv;
	assert(s->repaired && after.repaired);
	if (after.verdict != RAFTSEG_CLEAN || after.needs_repair ||
	    after.entries != s->entries || after.batches != s->batches) {
		char line[RS_ERRMSG_SIZE];
		raftseg_describe(&after, line, sizeof line);
		rs_errmsg_printf(errmsg, "read back after cutting %" PRIu64
				 " bytes: %s", s->cut_bytes, line);
		return RS_EIO;
	}
	s->size_bytes = after.size_bytes;
	s->verdict = RAFTSEG_CLEAN;
	s->needs_repair = false;
	return RS_OK;
}

int raftseg_repair(const char *dir, struct raftseg_report *rep, char *errmsg)
{
	size_t cut = 0;
	int rv = RS_OK;

	assert(dir != NULL && rep != NULL);
	if (rep->verdict == RAFTSEG_CORRUPT) {
		report_result(dir, rep, errmsg);
		rs_errmsg_wrapf(errmsg, "repair refused");
		return RS_ECORRUPT;
	}
	for (size_t i = 0; rv == RS_OK && i < rep->n; i++)
		if (rep->segs[i].needs_repair) {
			rv = seg_cut(dir, &rep->segs[i], errmsg);
			cut += rv == RS_OK;
		}
	if (rv == RS_OK && cut > 0) /* the sizes changed */
		rv = fileio_fsync_dir(dir, errmsg);
	for (size_t i = 0; rv == RS_OK && i < rep->n; i++)
		if (rep->segs[i].repaired)
			rv = seg_verify_cut(dir, &rep->segs[i], errmsg);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "repair raft segments in %s", dir);
		return rv;
	}
	report_sum(rep);
	assert(rep->repairs == 0 && rep->verdict == RAFTSEG_CLEAN);
	return RS_OK;
}
