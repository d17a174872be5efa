/*
 * fuzz_http: the request-head parser of the metrics port
 * (coordinator/http.h, http_parse), which reads whatever a peer sends to
 * --metrics-addr.
 *
 * The input is the byte stream of one connection.  It is parsed as the
 * server holds it (up to HTTP_HEAD_SIZE_MAX + 1 bytes, all it ever
 * keeps), and the server's way of reading is replayed twice: all the
 * bytes in one read, and every byte in a read of its own (parsing again
 * only when http_read_head would).  Invariants, from http.h: the answer
 * is one of the enum; MORE only within the size limit and TOO_LARGE only
 * past it; a complete head ends in LF within the limit, its method is a
 * token and its target has no space or control byte, both inside the
 * head, and the head alone parses to the same request while one byte
 * less of it needs more; and once the server answers, its answer does
 * not depend on how the stream was cut into reads ("the request head may
 * arrive in any number of pieces"; cut finer, it may answer later).
 */
#include <string.h>

#include "coordinator/http.h"
#include "tests/fuzz/fuzz.h"

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void check_done(const char *p, size_t n, const struct http_request *r)
{
	struct http_request again;

	FUZZ_CHECK(r->head_len > 0 && r->head_len <= n &&
		   r->head_len <= HTTP_HEAD_SIZE_MAX);
	FUZZ_CHECK(p[r->head_len - 1] == '\n');
	FUZZ_CHECK(r->method >= p && r->method_len > 0 &&
		   r->target == r->method + r->method_len + 1 &&
		   r->target_len > 0 &&
		   (size_t)(r->target - p) + r->target_len < r->head_len);
	for (size_t i = 0; i < r->method_len; i++)
		FUZZ_CHECK(tchar((unsigned char)r->method[i]));
	for (size_t i = 0; i < r->target_len; i++)
		FUZZ_CHECK(r->target[i] > 0x20 && r->target[i] < 0x7f);
	FUZZ_CHECK(http_parse(p, r->head_len, &again) == HTTP_PARSE_DONE);
	FUZZ_CHECK(memcmp(&again, r, sizeof again) == 0);
	FUZZ_CHECK(http_parse(p, r->head_len - 1, &again) == HTTP_PARSE_MORE);
}

/* Whether a byte can change http_parse's answer, as http_read_head
 * decides whether to parse again: a line end or another control byte. */
static bool can_change(unsigned char c)
{
	return (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f;
}

/* The server's answer after the stream came in reads of `step` bytes:
 * after each read it parses again if the read held a byte that can change
 * the answer or the head passed the limit, and stops at the first answer
 * that is not MORE. */
static enum http_parse_result served(const char *p, size_t n, size_t step)
{
	struct http_request r;
	size_t at = 0;

	while (at < n) {
		size_t end = n - at > step ? at + step : n;
		bool worth = end > HTTP_HEAD_SIZE_MAX;
		enum http_parse_result res;

		for (size_t i = at; i < end && !worth; i++)
			worth = can_change((unsigned char)p[i]);
		at = end;
		if (!worth)
			continue;
		res = http_parse(p, end, &r);
		if (res != HTTP_PARSE_MORE)
			return res;
	}
	return HTTP_PARSE_MORE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size < HTTP_HEAD_SIZE_MAX + 1 ? size : HTTP_HEAD_SIZE_MAX + 1;
	const char *p = (const char *)data;
	struct http_request r;
	enum http_parse_result res, piecewise;

	memset(&r, 0, sizeof r);
	res = http_parse(p, n, &r);
	switch (res) {
	case HTTP_PARSE_DONE:
		check_done(p, n, &r);
		break;
	case HTTP_PARSE_MORE:
		FUZZ_CHECK(n <= HTTP_HEAD_SIZE_MAX);
		break;
	case HTTP_PARSE_TOO_LARGE:
		FUZZ_CHECK(n > HTTP_HEAD_SIZE_MAX);
		break;
	case HTTP_PARSE_BAD:
	case HTTP_PARSE_VERSION:
		break;
	default:
		FUZZ_CHECK(!"an answer outside enum http_parse_result");
	}
	/* Byte by byte the server may answer later (a CR that is not before
	 * an LF makes http_parse say BAD, but the server parses again only at
	 * the next line end), never otherwise. */
	piecewise = served(p, n, 1);
	FUZZ_CHECK(piecewise == HTTP_PARSE_MORE || piecewise == served(p, n, n));
	return 0;
}
