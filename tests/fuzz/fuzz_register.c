/*
 * fuzz_register: the REGISTER heartbeat body (raftstore/service.h,
 * service_decode_register), which any client-port connection can send,
 * and what the leader's director does with a decoded one
 * (coordinator/node_director.c, node_registration: the addresses cut to
 * its fields, then director_registry_update), plus the internal-frame
 * gate's member check on the id it claims.
 *
 * The input is the frame's body (the frame layer has the `wire` target).
 * Invariants, from service.h and docs/protocol.md: a refused body says
 * why with RS_EPROTO; an accepted one has node_id != 0, addresses of at
 * most 255 bytes inside the body, and encodes back, field by field as
 * node_heartbeat writes it, to exactly the body; the registry then holds
 * that node with its addresses (up to a NUL, cut to the field) and
 * numbers; the gate lets the id pass exactly when it is a member.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "director/director.h"
#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/service.h"
#include "raftstore/wire.h"
#include "tests/fuzz/fuzz.h"

static const struct service_member members[] = {
	{1, "127.0.0.1:7001", "127.0.0.1:8001"},
	{2, "127.0.0.2:7002", ""},
	{3, "localhost:7003", "127.0.0.3:8003"},
};
#define N_MEMBERS (sizeof members / sizeof members[0])

static bool bytes_inside(struct wire_bytes b, const uint8_t *p, size_t n)
{
	return b.len <= 255 && b.p != NULL && b.p >= p &&
	       (size_t)(b.p - p) + b.len <= n;
}

/* The body as node_heartbeat builds it. */
static void check_reencodes(const struct service_registration *m,
			    const uint8_t *data, size_t size)
{
	struct rs_buf b;

	rs_buf_init(&b);
	rs_buf_put_u64(&b, m->node_id);
	wire_put_bytes(&b, m->raft_addr.p, m->raft_addr.len);
	wire_put_bytes(&b, m->client_addr.p, m->client_addr.len);
	rs_buf_put_u32(&b, m->capabilities);
	rs_buf_put_u64(&b, m->applied_version);
	FUZZ_CHECK(b.len == size && memcmp(b.data, data, size) == 0);
	rs_buf_free(&b);
}

/* What node_registration does with it, and what the registry keeps. */
static void check_registry(const struct service_registration *m)
{
	static struct director_registry reg;
	char raft_addr[64], client_addr[64];
	const struct director_member *dm = NULL;

	memset(&reg, 0, sizeof reg);
	snprintf(raft_addr, sizeof raft_addr, "%.*s", (int)m->raft_addr.len,
		 (const char *)m->raft_addr.p);
	snprintf(client_addr, sizeof client_addr, "%.*s",
		 (int)m->client_addr.len, (const char *)m->client_addr.p);
	FUZZ_CHECK(director_registry_update(&reg, m->node_id, raft_addr,
					    client_addr, m->capabilities,
					    m->applied_version, 1) == RS_OK);
	for (unsigned i = 0; i < reg.n; i++)
		if (reg.m[i].node_id == m->node_id)
			dm = &reg.m[i];
	FUZZ_CHECK(reg.n == 1 && dm != NULL);
	FUZZ_CHECK(strcmp(dm->raft_addr, raft_addr) == 0);
	FUZZ_CHECK(strcmp(dm->client_addr, client_addr) == 0);
	FUZZ_CHECK(strlen(raft_addr) <= m->raft_addr.len &&
		   memcmp(raft_addr, m->raft_addr.p, strlen(raft_addr)) == 0);
	FUZZ_CHECK(dm->capabilities == m->capabilities);
	FUZZ_CHECK(dm->applied_version == m->applied_version);
}

static void check_gate(uint64_t node_id)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct in_addr peer = {htonl(INADDR_LOOPBACK)};
	bool member = false;
	int rv;

	for (size_t i = 0; i < N_MEMBERS; i++)
		member = member || members[i].id == node_id;
	rv = service_member_check(members, N_MEMBERS, node_id, &peer, errmsg);
	FUZZ_CHECK((rv == RS_OK) == member);
	FUZZ_CHECK(rv == RS_OK || errmsg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE] = "";
	struct wire_frame f = {
		.type = WIRE_REGISTER,
		.request_id = 1,
		.body = size > 0 ? data : NULL,
		.body_len = (uint32_t)size,
		.total_len = WIRE_HEADER_SIZE + size,
	};
	struct service_registration m;
	int rv;

	if (size > UINT32_MAX)
		return 0;
	rv = service_decode_register(&f, &m, errmsg);
	if (rv != RS_OK) {
		FUZZ_CHECK(rv == RS_EPROTO && errmsg[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(m.node_id != 0);
	FUZZ_CHECK(bytes_inside(m.raft_addr, data, size));
	FUZZ_CHECK(bytes_inside(m.client_addr, data, size));
	check_reencodes(&m, data, size);
	check_registry(&m);
	check_gate(m.node_id);
	return 0;
}
