/*
 * chaos_histfile: the writer of a chaos history; see chaos_histfile.h for
 * the format's lines and what the writer guarantees.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/json.h"
#include "tools/chaos_histfile.h"

/* Write obj (consumed) as one line.  A write error is kept in h->err and
 * reported at the end: the run goes on, the history is then unusable. */
void chaos_histfile_line(struct chaos_histfile *h, json_t *obj)
{
	char *s;
	size_t n;

	assert(h->f != NULL && obj != NULL);
	assert(json_is_string(json_object_get(obj, "kind")));
	s = rs_json_dump(obj, RS_JSON_COMPACT);
	json_decref(obj);
	if (s == NULL) {
		h->err = h->err ? h->err : ENOMEM;
		return;
	}
	n = strlen(s);
	assert(n > 2 && memchr(s, '\n', n) == NULL);
	h->crc = crc32c_extend(h->crc, s, n);
	h->crc = crc32c_extend(h->crc, "\n", 1);
	h->lines++;
	if ((fwrite(s, 1, n, h->f) != n || fputc('\n', h->f) == EOF) &&
	    h->err == 0)
		h->err = errno ? errno : EIO;
	free(s);
}

void chaos_histfile_flush(struct chaos_histfile *h)
{
	if (fflush(h->f) != 0 && h->err == 0)
		h->err = errno ? errno : EIO;
}

/* The end line, then flush, fsync and close.  0, or an errno. */
int chaos_histfile_close(struct chaos_histfile *h)
{
	char crc[9];
	json_t *end;

	snprintf(crc, sizeof crc, "%08" PRIx32, h->crc);
	end = json_pack("{s:s, s:o, s:s}", "kind", "end", "lines",
			rs_json_u64(h->lines), "crc32c", crc);
	if (end == NULL)
		h->err = h->err ? h->err : ENOMEM;
	else
		chaos_histfile_line(h, end);
	chaos_histfile_flush(h);
	if (fsync(fileno(h->f)) != 0 && h->err == 0)
		h->err = errno;
	if (fclose(h->f) != 0 && h->err == 0)
		h->err = errno;
	h->f = NULL;
	return h->err;
}

void chaos_histfile_text(char *out, size_t size, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t at = 0, i;

	assert(size >= 8);
	for (i = 0; i < len && at + 5 < size - 3; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
			out[at++] = (char)b[i];
		else
			at += (size_t)snprintf(out + at, size - at, "\\x%02x",
					       b[i]);
	}
	if (i < len)
		at += (size_t)snprintf(out + at, size - at, "...");
	out[at] = '\0';
	assert(at < size);
}
