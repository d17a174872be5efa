/*
 * fuzz_audit: one audit log line (coordinator/audit.h), as rsctl events
 * and audit_open's recovery read them with audit_line_parse.
 *
 * The input is one line without its LF.  Invariants, from audit.h: a line
 * that parses has seq >= 1, node and seq at most 2^63-1, an event name of
 * [a-z0-9_]{1,64}, a 24-character timestamp, and no NUL, CR or LF; every
 * extra member's name is a C string and none is reserved.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "coordinator/audit.h"
#include "raftstore/lib/rs_error.h"
#include "tests/fuzz/fuzz.h"

static const char *const reserved[] = {"ts", "node", "seq", "event", "v"};

static void check_member(void *ctx, const char *key, const json_t *value)
{
	unsigned *members = ctx;

	FUZZ_CHECK(key != NULL && value != NULL);
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		FUZZ_CHECK(strcmp(key, reserved[i]) != 0);
	(*members)++;
}

static bool event_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > AUDIT_EVENT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct audit_line line;
	unsigned members = 0;

	if (audit_line_parse((const char *)data, size, &line, check_member,
			     &members, errmsg) != RS_OK)
		return 0;
	FUZZ_CHECK(line.seq >= 1 && line.seq <= INT64_MAX);
	FUZZ_CHECK(line.node <= INT64_MAX);
	FUZZ_CHECK(event_name_ok(line.event));
	FUZZ_CHECK(strlen(line.ts) == AUDIT_TS_LEN);
	FUZZ_CHECK(memchr(data, '\0', size) == NULL);
	FUZZ_CHECK(memchr(data, '\n', size) == NULL);
	FUZZ_CHECK(memchr(data, '\r', size) == NULL);
	return 0;
}
