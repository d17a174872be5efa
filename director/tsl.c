/*
 * tsl: the layout itself: kinds, initialisation, validation and
 * comparison (see tsl.h).  The codecs live beside it, around
 * tsl_internal.h: tsl_codec.c (the consolidated binary form), tsl_entry.c
 * (the decomposed form) and tsl_json.c (JSON).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include "director/tsl.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director/tsl_internal.h"
#include "raftstore/lib/bytes.h"

static const char *const tsl_kind_names[] = {
	NULL, "director", "sequencer", "commit_proxy", "resolver",
	"log", "storage", "service",
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

const char *tsl_kind_name(enum tsl_kind kind)
{
	if ((int)kind < TSL_KIND_DIRECTOR || (int)kind > TSL_KIND_SERVICE)
		return NULL;
	return tsl_kind_names[kind];
}

void tsl_init(struct tsl *t)
{
	memset(t, 0, sizeof *t);
}

bool tsl_bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b,
		  size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* ------------------------------------------------------------------ */
/* Validation                                                           */
/* ------------------------------------------------------------------ */

static bool tsl_addr_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c != '\0' && strchr(".-_:[]%", c) != NULL);
}

int tsl_check_addr(const char *addr, const char *where, char *errmsg)
{
	size_t len = strnlen(addr, TSL_ADDR_SIZE), i;
	const char *colon;
	unsigned long port = 0;

	if (len == TSL_ADDR_SIZE) { /* no NUL: at least this long */
		rs_errmsg_printf(errmsg, "%s.addr: %u bytes, at most %u", where,
				 TSL_ADDR_SIZE, TSL_ADDR_LEN_MAX);
		return RS_EINVAL;
	}
	if (len == 0) {
		rs_errmsg_printf(errmsg, "%s.addr: empty", where);
		return RS_EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (!tsl_addr_char(addr[i])) {
			rs_errmsg_printf(errmsg, "%s.addr: byte 0x%02x at %zu is not allowed in host:port",
					 where, (uint8_t)addr[i], i);
			return RS_EINVAL;
		}
	}
	colon = strrchr(addr, ':');
	if (colon != NULL && colon > addr && colon[1] != '\0' &&
	    strlen(colon + 1) <= 5 && strspn(colon + 1, "0123456789") == strlen(colon + 1))
		port = strtoul(colon + 1, NULL, 10);
	if (port == 0 || port > 65535) {
		rs_errmsg_printf(errmsg, "%s.addr: \"%s\" is not host:port (port 1-65535)",
				 where, addr);
		return RS_EINVAL;
	}
	return RS_OK;
}

int tsl_check_node_id(uint64_t node_id, const char *where,
		      char *errmsg)
{
	if (node_id != 0)
		return RS_OK;
	rs_errmsg_printf(errmsg, "%s.node_id: 0 is not a node id", where);
	return RS_EINVAL;
}

int tsl_check_component(const struct tsl_component *c,
			const char *where, char *errmsg)
{
	int rv = tsl_check_node_id(c->node_id, where, errmsg);

	if (rv == RS_OK)
		rv = tsl_check_addr(c->addr, where, errmsg);
	return rv;
}

/* The range on its own: bounded and non-empty. */
int tsl_check_range(const struct tsl_range *r, const char *where,
		    char *errmsg)
{
	if (r->begin_len > TSL_RANGE_KEY_MAX || r->end_len > TSL_RANGE_KEY_MAX) {
		rs_errmsg_printf(errmsg, "%s.range.%s: %u bytes, at most %u", where,
				 r->begin_len > TSL_RANGE_KEY_MAX ? "begin" : "end",
				 r->begin_len > TSL_RANGE_KEY_MAX ? r->begin_len : r->end_len,
				 TSL_RANGE_KEY_MAX);
		return RS_EINVAL;
	}
	if (r->end_len == 0)
		return RS_OK;
	int c = bytes_compare(r->end, r->end_len, r->begin, r->begin_len);
	if (c < 0) {
		rs_errmsg_printf(errmsg, "%s.range: end before begin", where);
		return RS_EINVAL;
	}
	if (c == 0) {
		rs_errmsg_printf(errmsg, "%s.range: empty (end equals begin)", where);
		return RS_EINVAL;
	}
	return RS_OK;
}

int tsl_check_service(const struct tsl_service *s, const char *where,
		      char *errmsg)
{
	int rv = tsl_check_node_id(s->node_id, where, errmsg);

	if (rv == RS_OK)
		rv = tsl_check_addr(s->addr, where, errmsg);
	if (rv != RS_OK)
		return rv;
	if (s->capabilities & ~TSL_CAP_ALL) {
		rs_errmsg_printf(errmsg, "%s.capabilities: unknown bits 0x%x", where,
				 s->capabilities & ~TSL_CAP_ALL);
		return RS_EINVAL;
	}
	if (s->status != TSL_STATUS_UP && s->status != TSL_STATUS_DOWN) {
		rs_errmsg_printf(errmsg, "%s.status: %u is neither up (%u) nor down (%u)",
				 where, s->status, TSL_STATUS_UP, TSL_STATUS_DOWN);
		return RS_EINVAL;
	}
	return RS_OK;
}

static int tsl_check_count(uint32_t count, uint32_t max, const char *name,
			   char *errmsg)
{
	if (count <= max)
		return RS_OK;
	rs_errmsg_printf(errmsg, "%s.count: %u, at most %u", name, count, max);
	return RS_EINVAL;
}

/* An array of components: each valid, ids unique, and (for per-node roles)
 * node_ids unique. */
static int tsl_check_array(const struct tsl_component *a, uint32_t n,
			   const char *name, bool one_per_node, char *errmsg)
{
	char where[TSL_WHERE_SIZE];
	uint32_t i, j;

	assert(n <= TSL_SERVICES_MAX);
	for (i = 0; i < n; i++) {
		snprintf(where, sizeof where, "%s[%u]", name, i);
		if (tsl_check_component(&a[i], where, errmsg) != RS_OK)
			return RS_EINVAL;
		for (j = 0; j < i; j++) {
			if (a[j].id == a[i].id) {
				rs_errmsg_printf(errmsg, "%s.id: %" PRIu64 " duplicates %s[%u]",
						 where, a[i].id, name, j);
				return RS_EINVAL;
			}
			if (one_per_node && a[j].node_id == a[i].node_id) {
				rs_errmsg_printf(errmsg, "%s.node_id: node %" PRIu64 " already runs %s[%u]",
						 where, a[i].node_id, name, j);
				return RS_EINVAL;
			}
		}
	}
	return RS_OK;
}

/* Resolver ranges, in order, cover the key space exactly once. */
static int tsl_check_resolvers(const struct tsl *t, char *errmsg)
{
	struct tsl_component comps[TSL_COMPONENTS_MAX];
	char where[TSL_WHERE_SIZE];
	uint32_t i;

	assert(t->resolver_count <= TSL_COMPONENTS_MAX); /* tsl_check_counts */
	for (i = 0; i < t->resolver_count; i++) {
		const struct tsl_range *r = &t->resolvers[i].range;
		const struct tsl_range *prev = i > 0 ? &t->resolvers[i - 1].range : NULL;

		snprintf(where, sizeof where, "resolvers[%u]", i);
		if (tsl_check_range(r, where, errmsg) != RS_OK)
			return RS_EINVAL;
		if (prev == NULL && r->begin_len != 0) {
			rs_errmsg_printf(errmsg, "%s.range: begin is not empty (the first resolver starts the key space)", where);
			return RS_EINVAL;
		}
		if (prev != NULL && !tsl_bytes_eq(r->begin, r->begin_len, prev->end, prev->end_len)) {
			rs_errmsg_printf(errmsg, "%s.range: begin is not resolvers[%u]'s end (gap or overlap)",
					 where, i - 1);
			return RS_EINVAL;
		}
		if (i + 1 == t->resolver_count && r->end_len != 0) {
			rs_errmsg_printf(errmsg, "%s.range: end is not empty (the last resolver ends the key space)", where);
			return RS_EINVAL;
		}
		comps[i] = t->resolvers[i].c;
	}
	return tsl_check_array(comps, t->resolver_count, "resolvers", false, errmsg);
}

static int tsl_check_services(const struct tsl *t, char *errmsg)
{
	char where[TSL_WHERE_SIZE];
	uint32_t i, j;

	for (i = 0; i < t->service_count; i++) {
		snprintf(where, sizeof where, "services[%u]", i);
		if (tsl_check_service(&t->services[i], where, errmsg) != RS_OK)
			return RS_EINVAL;
		for (j = 0; j < i; j++) {
			if (t->services[j].node_id == t->services[i].node_id) {
				rs_errmsg_printf(errmsg, "%s.node_id: %" PRIu64 " duplicates services[%u]",
						 where, t->services[i].node_id, j);
				return RS_EINVAL;
			}
		}
	}
	return RS_OK;
}

static bool tsl_has_service(const struct tsl *t, uint64_t node_id)
{
	for (uint32_t i = 0; i < t->service_count; i++)
		if (t->services[i].node_id == node_id)
			return true;
	return false;
}

static int tsl_check_ref(const struct tsl *t, uint64_t node_id,
			 const char *name, uint32_t i, char *errmsg)
{
	char where[TSL_WHERE_SIZE];

	if (tsl_has_service(t, node_id))
		return RS_OK;
	if (i == UINT32_MAX)
		snprintf(where, sizeof where, "%s", name);
	else
		snprintf(where, sizeof where, "%s[%u]", name, i);
	rs_errmsg_printf(errmsg, "%s.node_id: %" PRIu64 " is not a registered service",
			 where, node_id);
	return RS_EINVAL;
}

/* Every component runs on a node listed in services. */
static int tsl_check_refs(const struct tsl *t, char *errmsg)
{
	int rv = tsl_check_ref(t, t->director.node_id, "director", UINT32_MAX, errmsg);
	uint32_t i;

	if (rv == RS_OK)
		rv = tsl_check_ref(t, t->sequencer.node_id, "sequencer", UINT32_MAX, errmsg);
	for (i = 0; rv == RS_OK && i < t->commit_proxy_count; i++)
		rv = tsl_check_ref(t, t->commit_proxies[i].node_id, "commit_proxies", i, errmsg);
	for (i = 0; rv == RS_OK && i < t->resolver_count; i++)
		rv = tsl_check_ref(t, t->resolvers[i].c.node_id, "resolvers", i, errmsg);
	for (i = 0; rv == RS_OK && i < t->log_count; i++)
		rv = tsl_check_ref(t, t->logs[i].node_id, "logs", i, errmsg);
	for (i = 0; rv == RS_OK && i < t->storage_count; i++)
		rv = tsl_check_ref(t, t->storage[i].node_id, "storage", i, errmsg);
	return rv;
}

static int tsl_check_counts(const struct tsl *t, char *errmsg)
{
	int rv = tsl_check_count(t->commit_proxy_count, TSL_COMPONENTS_MAX,
				 "commit_proxies", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_count(t->resolver_count, TSL_COMPONENTS_MAX, "resolvers", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_count(t->log_count, TSL_COMPONENTS_MAX, "logs", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_count(t->storage_count, TSL_COMPONENTS_MAX, "storage", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_count(t->service_count, TSL_SERVICES_MAX, "services", errmsg);
	return rv;
}

int tsl_validate(const struct tsl *t, char *errmsg)
{
	int rv;

	assert(t != NULL);
	if (t->epoch == 0) {
		rs_errmsg_printf(errmsg, "epoch: 0 is not an epoch");
		return RS_EINVAL;
	}
	rv = tsl_check_counts(t, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_node_id(t->director.node_id, "director", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_addr(t->director.addr, "director", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_component(&t->sequencer, "sequencer", errmsg);
	if (rv == RS_OK)
		rv = tsl_check_array(t->commit_proxies, t->commit_proxy_count,
				     "commit_proxies", false, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_resolvers(t, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_array(t->logs, t->log_count, "logs", true, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_array(t->storage, t->storage_count, "storage", true,
				     errmsg);
	if (rv == RS_OK)
		rv = tsl_check_services(t, errmsg);
	if (rv == RS_OK)
		rv = tsl_check_refs(t, errmsg);
	assert(rv == RS_OK || rv == RS_EINVAL);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Comparison                                                           */
/* ------------------------------------------------------------------ */

static bool tsl_addr_eq(const char *a, const char *b)
{
	return strncmp(a, b, TSL_ADDR_SIZE) == 0;
}

/* Each returns the first differing field's name, or NULL if equal. */
const char *tsl_node_diff(const struct tsl_node *a,
			  const struct tsl_node *b)
{
	if (a->node_id != b->node_id)
		return "node_id";
	return tsl_addr_eq(a->addr, b->addr) ? NULL : "addr";
}

const char *tsl_component_diff(const struct tsl_component *a,
			       const struct tsl_component *b)
{
	if (a->id != b->id)
		return "id";
	if (a->node_id != b->node_id)
		return "node_id";
	return tsl_addr_eq(a->addr, b->addr) ? NULL : "addr";
}

const char *tsl_range_diff(const struct tsl_range *a,
			   const struct tsl_range *b)
{
	if (!tsl_bytes_eq(a->begin, a->begin_len, b->begin, b->begin_len))
		return "range.begin";
	if (!tsl_bytes_eq(a->end, a->end_len, b->end, b->end_len))
		return "range.end";
	return NULL;
}

const char *tsl_service_diff(const struct tsl_service *a,
			     const struct tsl_service *b)
{
	if (a->node_id != b->node_id)
		return "node_id";
	if (!tsl_addr_eq(a->addr, b->addr))
		return "addr";
	if (a->capabilities != b->capabilities)
		return "capabilities";
	if (a->status != b->status)
		return "status";
	return a->heartbeat_age_ms != b->heartbeat_age_ms ? "heartbeat_age_ms" : NULL;
}

static bool tsl_diff_found(char *what, const char *name, uint32_t i,
			   const char *field)
{
	if (what == NULL)
		return true;
	if (i == UINT32_MAX)
		snprintf(what, RS_ERRMSG_SIZE, "%s%s%s", name, field ? "." : "",
			 field ? field : "");
	else
		snprintf(what, RS_ERRMSG_SIZE, "%s[%u].%s", name, i, field);
	return true;
}

static bool tsl_diff_array(const struct tsl_component *a,
			   const struct tsl_component *b, uint32_t na,
			   uint32_t nb, const char *name, char *what)
{
	const char *f;

	if (na != nb)
		return tsl_diff_found(what, name, UINT32_MAX, "count");
	for (uint32_t i = 0; i < na; i++)
		if ((f = tsl_component_diff(&a[i], &b[i])) != NULL)
			return tsl_diff_found(what, name, i, f);
	return false;
}

static bool tsl_diff_tail(const struct tsl *a, const struct tsl *b, char *what)
{
	const char *f;
	uint32_t i;

	if (a->resolver_count != b->resolver_count)
		return tsl_diff_found(what, "resolvers", UINT32_MAX, "count");
	for (i = 0; i < a->resolver_count; i++) {
		f = tsl_component_diff(&a->resolvers[i].c, &b->resolvers[i].c);
		if (f == NULL)
			f = tsl_range_diff(&a->resolvers[i].range, &b->resolvers[i].range);
		if (f != NULL)
			return tsl_diff_found(what, "resolvers", i, f);
	}
	if (tsl_diff_array(a->logs, b->logs, a->log_count, b->log_count, "logs", what) ||
	    tsl_diff_array(a->storage, b->storage, a->storage_count,
			   b->storage_count, "storage", what))
		return true;
	if (a->service_count != b->service_count)
		return tsl_diff_found(what, "services", UINT32_MAX, "count");
	for (i = 0; i < a->service_count; i++)
		if ((f = tsl_service_diff(&a->services[i], &b->services[i])) != NULL)
			return tsl_diff_found(what, "services", i, f);
	return false;
}

bool tsl_diff(const struct tsl *a, const struct tsl *b, char *what)
{
	const char *f;

	if (a->id != b->id)
		return tsl_diff_found(what, "id", UINT32_MAX, NULL);
	if (a->epoch != b->epoch)
		return tsl_diff_found(what, "epoch", UINT32_MAX, NULL);
	if (a->recovery_version != b->recovery_version)
		return tsl_diff_found(what, "recovery_version", UINT32_MAX, NULL);
	if ((f = tsl_node_diff(&a->director, &b->director)) != NULL)
		return tsl_diff_found(what, "director", UINT32_MAX, f);
	if ((f = tsl_component_diff(&a->sequencer, &b->sequencer)) != NULL)
		return tsl_diff_found(what, "sequencer", UINT32_MAX, f);
	if (tsl_diff_array(a->commit_proxies, b->commit_proxies,
			   a->commit_proxy_count, b->commit_proxy_count,
			   "commit_proxies", what))
		return true;
	return tsl_diff_tail(a, b, what);
}

bool tsl_equal(const struct tsl *a, const struct tsl *b)
{
	return !tsl_diff(a, b, NULL);
}
