/* identity: see identity.h. */
#include "coordinator/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/crc32c.h"
#include "raftstore/lib/rs_error.h"
#include "storage/fileio.h"

#define IDENTITY_OFF_VERSION 8u
#define IDENTITY_OFF_FLAGS 12u
#define IDENTITY_OFF_NODE 16u
#define IDENTITY_OFF_CLUSTER 24u
#define IDENTITY_OFF_CRC 40u

void identity_encode(const struct identity *id, uint8_t *buf)
{
	memcpy(buf, IDENTITY_MAGIC, 8);
	rs_put_u32(buf + IDENTITY_OFF_VERSION, IDENTITY_FORMAT_VERSION);
	rs_put_u32(buf + IDENTITY_OFF_FLAGS, 0);
	rs_put_u64(buf + IDENTITY_OFF_NODE, id->node_id);
	memcpy(buf + IDENTITY_OFF_CLUSTER, id->cluster_id,
	       IDENTITY_CLUSTER_ID_SIZE);
	rs_put_u32(buf + IDENTITY_OFF_CRC, crc32c(buf, IDENTITY_OFF_CRC));
}

int identity_decode(const uint8_t *buf, size_t len, struct identity *out,
		    char *errmsg)
{
	uint32_t version = len >= IDENTITY_OFF_FLAGS
				   ? rs_get_u32(buf + IDENTITY_OFF_VERSION) : 0;

	/* A later version may have another size: say so, not "corrupt". */
	if (len != IDENTITY_SIZE && len >= IDENTITY_OFF_FLAGS &&
	    memcmp(buf, IDENTITY_MAGIC, 8) == 0 &&
	    version > IDENTITY_FORMAT_VERSION) {
		rs_errmsg_printf(errmsg, "format version %u (%zu bytes), this "
					 "raftstored reads only version %u",
				 version, len, IDENTITY_FORMAT_VERSION);
		return RS_EFORMAT;
	}
	if (len != IDENTITY_SIZE) {
		rs_errmsg_printf(errmsg, "%zu bytes, expected %u", len,
				 IDENTITY_SIZE);
		return RS_ECORRUPT;
	}
	if (memcmp(buf, IDENTITY_MAGIC, 8) != 0) {
		rs_errmsg_printf(errmsg, "bad magic (not an identity file)");
		return RS_ECORRUPT;
	}
	if (rs_get_u32(buf + IDENTITY_OFF_CRC) != crc32c(buf, IDENTITY_OFF_CRC)) {
		rs_errmsg_printf(errmsg, "checksum mismatch (stored %08x, "
					 "computed %08x)",
				 rs_get_u32(buf + IDENTITY_OFF_CRC),
				 crc32c(buf, IDENTITY_OFF_CRC));
		return RS_ECORRUPT;
	}
	if (version != IDENTITY_FORMAT_VERSION) {
		rs_errmsg_printf(errmsg, "format version %u, this raftstored "
					 "reads only version %u",
				 version, IDENTITY_FORMAT_VERSION);
		return RS_EFORMAT;
	}
	if (rs_get_u32(buf + IDENTITY_OFF_FLAGS) != 0) {
		rs_errmsg_printf(errmsg, "unknown flags %08x",
				 rs_get_u32(buf + IDENTITY_OFF_FLAGS));
		return RS_ECORRUPT;
	}
	out->node_id = rs_get_u64(buf + IDENTITY_OFF_NODE);
	if (out->node_id == 0) {
		rs_errmsg_printf(errmsg, "node id 0");
		return RS_ECORRUPT;
	}
	memcpy(out->cluster_id, buf + IDENTITY_OFF_CLUSTER,
	       IDENTITY_CLUSTER_ID_SIZE);
	return RS_OK;
}

static void identity_path(char *out, size_t size, const char *data_dir,
			  const char *suffix)
{
	snprintf(out, size, "%s/%s%s", data_dir, IDENTITY_FILE, suffix);
}

int identity_read(const char *data_dir, struct identity *out, char *errmsg)
{
	char path[PATH_MAX + 32];
	uint8_t *data = NULL;
	size_t len = 0;
	struct stat st;
	int rv;

	identity_path(path, sizeof path, data_dir, "");
	if (stat(path, &st) != 0 && errno == ENOENT) {
		rs_errmsg_printf(errmsg, "identity file %s: not found", path);
		return RS_ENOTFOUND;
	}
	rv = fileio_read_all(path, &data, &len, errmsg);
	if (rv != RS_OK)
		return RS_EIO;
	rv = identity_decode(data, len, out, errmsg);
	free(data);
	if (rv != RS_OK)
		rs_errmsg_wrapf(errmsg, "identity file %s", path);
	return rv;
}

int identity_write(const char *data_dir, const struct identity *id,
		   char *errmsg)
{
	char tmp[PATH_MAX + 32], path[PATH_MAX + 32];
	uint8_t buf[IDENTITY_SIZE];
	int fd, rv;

	identity_path(tmp, sizeof tmp, data_dir, ".tmp");
	identity_path(path, sizeof path, data_dir, "");
	identity_encode(id, buf);
	rv = fileio_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, &fd, errmsg);
	if (rv != RS_OK)
		goto err;
	rv = fileio_pwrite(fd, buf, sizeof buf, 0, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync(fd, errmsg);
	fileio_close(fd);
	if (rv == RS_OK)
		rv = fileio_rename(tmp, path, errmsg);
	if (rv == RS_OK)
		rv = fileio_fsync_dir(data_dir, errmsg);
	if (rv == RS_OK)
		return RS_OK;
err:
	rs_errmsg_wrapf(errmsg, "write identity file %s", path);
	return rv;
}

bool identity_cluster_known(const struct identity *id)
{
	for (unsigned i = 0; i < IDENTITY_CLUSTER_ID_SIZE; i++)
		if (id->cluster_id[i] != 0)
			return true;
	return false;
}

void identity_cluster_hex(const struct identity *id,
			  char out[IDENTITY_CLUSTER_HEX_SIZE])
{
	out[0] = '\0';
	if (!identity_cluster_known(id))
		return;
	for (unsigned i = 0; i < IDENTITY_CLUSTER_ID_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", id->cluster_id[i]);
}

int identity_new_cluster_id(uint8_t out[IDENTITY_CLUSTER_ID_SIZE],
			    char *errmsg)
{
	struct identity probe;
	size_t got = 0;

	do {
		while (got < IDENTITY_CLUSTER_ID_SIZE) {
			ssize_t r = getrandom(out + got,
					      IDENTITY_CLUSTER_ID_SIZE - got, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return rs_errmsg_errno(errmsg, errno,
						       "draw a cluster ID "
						       "(getrandom)");
			got += (size_t)r;
		}
		memcpy(probe.cluster_id, out, IDENTITY_CLUSTER_ID_SIZE);
		got = 0; /* all zero means "unknown": draw again */
	} while (!identity_cluster_known(&probe));
	return RS_OK;
}
