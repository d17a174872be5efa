/* cliopt: see cliopt.h. */
#include "tools/cliopt.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool cliopt_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull accepts leading space and a minus sign; we do not. */
	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (uint64_t)v;
	return true;
}

const char *cliopt_value(int argc, char **argv, int *i, const char *name,
			 bool *missing)
{
	size_t n = strlen(name);
	const char *arg;

	assert(n > 2 && strncmp(name, "--", 2) == 0);
	assert(*i >= 0 && *i < argc);
	arg = argv[*i];
	*missing = false;
	if (strncmp(arg, name, n) != 0)
		return NULL;
	if (arg[n] == '=')
		return arg + n + 1;
	if (arg[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	*i += 1;
	return argv[*i];
}
