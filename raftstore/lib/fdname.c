/* fdname: see fdname.h. */
#include "raftstore/lib/fdname.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftstore/lib/rs_error.h"

int fdname_dir_set(struct fdname_dir *d, const char *dir, char *errmsg)
{
	if (dir == NULL || realpath(dir, d->path) == NULL) {
		rs_errmsg_printf(errmsg, "resolve the directory %s: %s",
				 dir != NULL ? dir : "(none)",
				 dir != NULL ? strerror(errno) : "no path");
		d->path[0] = '\0';
		d->len = 0;
		return RS_EINVAL;
	}
	d->len = strlen(d->path);
	return RS_OK;
}

const char *fdname_in_dir(const struct fdname_dir *d, int fd, char *buf)
{
	char link[64];
	ssize_t n;
	const char *name;

	if (d->len == 0 || fd < 0)
		return NULL;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, buf, PATH_MAX - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if ((size_t)n <= d->len + 1 || memcmp(buf, d->path, d->len) != 0 ||
	    buf[d->len] != '/')
		return NULL;
	name = buf + d->len + 1;
	return strchr(name, '/') == NULL ? name : NULL;
}
