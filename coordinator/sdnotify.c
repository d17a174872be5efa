/* sdnotify: see sdnotify.h. */
#include "coordinator/sdnotify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "raftstore/lib/rs_error.h"

/* Fill *addr from $NOTIFY_SOCKET; the address length, or 0 if the value
 * cannot name a socket. */
static socklen_t sdnotify_addr(const char *path, struct sockaddr_un *addr)
{
	size_t len = strlen(path);

	if (len < 2 || (path[0] != '/' && path[0] != '@') ||
	    len >= sizeof addr->sun_path)
		return 0;
	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, path, len);
	if (path[0] == '@') /* abstract: a NUL byte first, not NUL-terminated */
		addr->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			   (path[0] == '/' ? 1 : 0));
}

int sdnotify_send(const char *state, char *errmsg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr;
	socklen_t addr_len;
	ssize_t sent;
	int fd, err;

	if (path == NULL || *path == '\0')
		return RS_OK;
	addr_len = sdnotify_addr(path, &addr);
	if (addr_len == 0) {
		rs_errmsg_printf(errmsg, "NOTIFY_SOCKET '%s' is not a socket "
					 "path or @abstract name", path);
		return RS_EINVAL;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rs_errmsg_errno(errmsg, errno, "NOTIFY_SOCKET %s: socket",
				       path);
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		      (const struct sockaddr *)&addr, addr_len);
	err = errno;
	close(fd);
	if (sent < 0)
		return rs_errmsg_errno(errmsg, err, "NOTIFY_SOCKET %s: send %s",
				       path, state);
	return RS_OK;
}
