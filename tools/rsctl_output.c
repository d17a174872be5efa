/*
 * rsctl output: how every command shows bytes and prints JSON.
 *
 * Keys and values are bytes.  As text they are shown unquoted, printable
 * ASCII as is except a backslash (doubled), every other byte as \xNN, and
 * optionally cut with "..." so that one huge value stays a short line.  As
 * JSON they are strings with one code point per byte (rs_json_bytes, so a
 * reader decodes them with Latin-1), never cut.
 *
 * Every --json document is built as a json_t and written by
 * rsctl_print_json: compact, one document per line, so NDJSON streams
 * (watch, log dump) and single documents (get, status) come out alike.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raftstore/lib/batch.h"
#include "raftstore/lib/bytes.h"
#include "raftstore/lib/rs_error.h"
#include "tools/rsctl.h"

/* One byte as display text into out (at least 4 bytes); returns its
 * length.  quoted: '"' is escaped too, as inside double quotes. */
static size_t out_text_byte(char *out, uint8_t c, bool quoted)
{
	if (c == '\\' || (quoted && c == '"')) {
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	bytes_hex_encode(&c, 1, out + 2);
	return 4;
}

size_t rsctl_text(char *out, size_t size, const uint8_t *p, size_t len,
		  size_t max)
{
	size_t at = 0, i;

	assert(size > 4 && (p != NULL || len == 0));
	for (i = 0; i < len; i++) {
		char e[4];
		size_t n = out_text_byte(e, p[i], false);
		/* Keep room for "..." and the NUL in case more follows. */
		if ((max > 0 && i >= max) || at + n + 4 > size)
			break;
		memcpy(out + at, e, n);
		at += n;
	}
	if (i < len) {
		assert(at + 4 <= size);
		memcpy(out + at, "...", 3);
		at += 3;
	}
	out[at] = '\0';
	assert(at < size);
	return at;
}

void rsctl_put_text(FILE *f, const uint8_t *p, size_t len, size_t max)
{
	size_t n = max > 0 && max < len ? max : len, i;

	assert(p != NULL || len == 0);
	for (i = 0; i < n; i++) {
		char e[4];
		fwrite(e, 1, out_text_byte(e, p[i], false), f);
	}
	if (n < len)
		fputs("...", f);
}

void rsctl_put_quoted(FILE *f, const uint8_t *p, size_t len, size_t max)
{
	size_t n = len < max ? len : max, i;

	assert(max > 0 && (p != NULL || len == 0));
	fputc('"', f);
	for (i = 0; i < n; i++) {
		char e[4];
		fwrite(e, 1, out_text_byte(e, p[i], true), f);
	}
	fputc('"', f);
	if (n < len)
		fprintf(f, "...(%zu bytes)", len);
}

int rsctl_print_json(json_t *doc, const char *what)
{
	char *text = doc != NULL ? rs_json_dump(doc, RS_JSON_COMPACT) : NULL;

	json_decref(doc);
	if (text == NULL) {
		rsctl_errorf("%s: out of memory writing JSON", what);
		return RSCTL_EXIT_FAIL;
	}
	assert(strchr(text, '\n') == NULL); /* compact: one line */
	fputs(text, stdout);
	fputc('\n', stdout);
	free(text);
	return RSCTL_EXIT_OK;
}

const char *rsctl_mutation_name(const struct mutation *m)
{
	switch (m->type) {
	case MUT_CLEAR:
		return "del";
	case MUT_CLEAR_RANGE:
		return "clear-range";
	default:
		return "set";
	}
}

int rsctl_json_mutation(json_t *obj, const struct mutation *m)
{
	const char *a = "key", *b = "value";
	int rv;

	assert(json_is_object(obj));
	if (m->type == MUT_CLEAR) {
		b = NULL;
	} else if (m->type == MUT_CLEAR_RANGE) {
		a = "begin";
		b = "end";
	}
	rv = rs_json_set_str(obj, "op", rsctl_mutation_name(m));
	if (rv == RS_OK)
		rv = rs_json_set_bytes(obj, a, m->key, m->key_len);
	if (rv == RS_OK && b != NULL)
		rv = rs_json_set_bytes(obj, b, m->val, m->val_len);
	return rv;
}
