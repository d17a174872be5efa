/*
 * chaos_histfile: the writer of a chaos history, shared by its two
 * writers, `rschaos load` (chaos_load.c) and `rschaos final`
 * (chaos_final.c).
 *
 * The history is NDJSON (format 1; the contract with `rschaos check` and
 * tools/chaos): a meta line, one op line per completed operation, an end
 * line; `final` appends a final line and another end line.  An end line
 * carries the number of lines before it and the CRC-32C of every byte
 * before it, so a reader can tell a cut or damaged history.
 *
 * Every line goes through chaos_histfile_line, which keeps that count and
 * checksum, so an end line always states what precedes it.  Strings put in
 * a history are printable ASCII (chaos_histfile_text), within the sizes
 * below.  Single-threaded; blocking stdio.
 */
#ifndef RS_CHAOS_HISTFILE_H
#define RS_CHAOS_HISTFILE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The format version of the meta line. */
#define CHAOS_HISTFILE_FORMAT 1

/* The key prefix of a run (meta line "prefix"), and the keys under it. */
#define CHAOS_HISTFILE_PREFIX_MAX 128u
#define CHAOS_HISTFILE_KEY_MAX (CHAOS_HISTFILE_PREFIX_MAX + 32u)
/* Text of a value read back; a longer one is cut (and so matches no write,
 * as every value the writers write is far shorter). */
#define CHAOS_HISTFILE_VALUE_TEXT_MAX 96u

/* A history being written.  The caller opens f and sets path; lines and
 * crc start at 0 for a new file, or at those of the lines already in it
 * when appending. */
struct chaos_histfile {
	FILE *f;
	const char *path;
	uint64_t lines;
	uint32_t crc;
	int err; /* errno of the first failed write, 0 if none */
};

/* Write obj (consumed; a JSON object with a string "kind") as one line.
 * A write error is kept in h->err and reported at the end: the run goes
 * on, the history is then unusable. */
void chaos_histfile_line(struct chaos_histfile *h, json_t *obj);

/* fflush; an error goes to h->err. */
void chaos_histfile_flush(struct chaos_histfile *h);

/* The end line, then flush, fsync and close (h->f becomes NULL).  0, or
 * the errno of the first failure (also in h->err). */
int chaos_histfile_close(struct chaos_histfile *h);

/* Bytes p[0..len) as printable ASCII for the history, into out (size at
 * least 8): bytes are kept if printable and not a backslash, else written
 * \xNN; cut at size - 4 with "...".  What these tools write is kept as
 * is. */
void chaos_histfile_text(char *out, size_t size, const void *p, size_t len);

#endif /* RS_CHAOS_HISTFILE_H */
