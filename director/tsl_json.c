/*
 * tsl_json: a layout as one JSON object, for `rsctl layout --json`
 * (tsl.h, tsl_to_json; docs/layout-format.md, "JSON").
 *
 * Built with the project's JSON layer (raftstore/lib/json.h): members in
 * the documented order, u64 values as JSON integers, addresses and range
 * keys as byte strings (one code point per byte).  It prints any layout,
 * valid or not: counts past the array limits are cut to the limits, and a
 * status that is neither up nor down reads "invalid".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include "director/tsl.h"

#include <assert.h>
#include <string.h>

#include "raftstore/lib/json.h"

/* Capability names, bit 0 first (TSL_CAP_*). */
static const char *const tsl_json_caps[] = {
	"log", "storage", "commit_proxy", "resolver", "sequencer", "director",
};

static uint32_t tsl_json_min(uint32_t n, uint32_t max)
{
	return n < max ? n : max;
}

static int tsl_json_set_addr(json_t *o, const char *addr)
{
	return rs_json_set_bytes(o, "addr", addr, strnlen(addr, TSL_ADDR_SIZE));
}

/* A new object; RS_ENOMEM when jansson has no memory for it. */
static int tsl_json_object(json_t **out)
{
	*out = json_object();
	return *out != NULL ? RS_OK : RS_ENOMEM;
}

/* {"node_id","addr"}: the director. */
static int tsl_json_node(const struct tsl_node *n, json_t **out)
{
	int rv = tsl_json_object(out);

	if (rv == RS_OK)
		rv = rs_json_set_u64(*out, "node_id", n->node_id);
	if (rv == RS_OK)
		rv = tsl_json_set_addr(*out, n->addr);
	return rv;
}

/* {"id","node_id","addr"}, and "begin"/"end" for a resolver (r != NULL). */
static int tsl_json_component(const struct tsl_component *c,
			      const struct tsl_range *r, json_t **out)
{
	int rv = tsl_json_object(out);

	if (rv == RS_OK)
		rv = rs_json_set_u64(*out, "id", c->id);
	if (rv == RS_OK)
		rv = rs_json_set_u64(*out, "node_id", c->node_id);
	if (rv == RS_OK)
		rv = tsl_json_set_addr(*out, c->addr);
	if (rv == RS_OK && r != NULL)
		rv = rs_json_set_bytes(*out, "begin", r->begin,
				       tsl_json_min(r->begin_len, TSL_RANGE_KEY_MAX));
	if (rv == RS_OK && r != NULL)
		rv = rs_json_set_bytes(*out, "end", r->end,
				       tsl_json_min(r->end_len, TSL_RANGE_KEY_MAX));
	return rv;
}

/* The capability names of bits, in bit order. */
static int tsl_json_capabilities(uint32_t bits, json_t **out)
{
	int rv;

	*out = json_array();
	rv = *out != NULL ? RS_OK : RS_ENOMEM;
	for (unsigned bit = 0; rv == RS_OK && bit < sizeof tsl_json_caps /
						  sizeof tsl_json_caps[0]; bit++)
		if (bits & (1u << bit))
			rv = rs_json_push(*out, json_string(tsl_json_caps[bit]));
	return rv;
}

static const char *tsl_json_status(uint8_t status)
{
	return status == TSL_STATUS_UP     ? "up"
	       : status == TSL_STATUS_DOWN ? "down"
					   : "invalid";
}

static int tsl_json_service(const struct tsl_service *s, json_t **out)
{
	json_t *caps = NULL;
	int rv = tsl_json_object(out);

	if (rv == RS_OK)
		rv = rs_json_set_u64(*out, "node_id", s->node_id);
	if (rv == RS_OK)
		rv = tsl_json_set_addr(*out, s->addr);
	if (rv == RS_OK)
		rv = tsl_json_capabilities(s->capabilities, &caps);
	if (rv == RS_OK)
		rv = rs_json_set(*out, "capabilities", caps);
	else
		json_decref(caps);
	if (rv == RS_OK)
		rv = rs_json_set_u64(*out, "capability_bits", s->capabilities);
	if (rv == RS_OK)
		rv = rs_json_set_str(*out, "status", tsl_json_status(s->status));
	if (rv == RS_OK)
		rv = rs_json_set_u64(*out, "heartbeat_age_ms", s->heartbeat_age_ms);
	return rv;
}

/* obj[name] = the value a member builder made; the builder's own failure
 * wins, and what it built is released with it. */
static int tsl_json_set_built(json_t *obj, const char *name, int built,
			      json_t *value)
{
	if (built != RS_OK) {
		json_decref(value);
		return built;
	}
	return rs_json_set(obj, name, value);
}

/* Builds item i of a list member; arg is the list's array, if it has one. */
typedef int (*tsl_json_item_fn)(const struct tsl *t, const void *arg,
				uint32_t i, json_t **out);

static int tsl_json_plain_item(const struct tsl *t, const void *arg,
			       uint32_t i, json_t **out)
{
	(void)t;
	return tsl_json_component(&((const struct tsl_component *)arg)[i],
				  NULL, out);
}

static int tsl_json_resolver_item(const struct tsl *t, const void *arg,
				  uint32_t i, json_t **out)
{
	(void)arg;
	return tsl_json_component(&t->resolvers[i].c, &t->resolvers[i].range,
				  out);
}

static int tsl_json_service_item(const struct tsl *t, const void *arg,
				 uint32_t i, json_t **out)
{
	(void)arg;
	return tsl_json_service(&t->services[i], out);
}

/* obj[name] = [n items (at most max, the array's size)]. */
static int tsl_json_list(json_t *obj, const char *name, uint32_t n,
			 uint32_t max, tsl_json_item_fn fn, const struct tsl *t,
			 const void *arg)
{
	json_t *list = json_array(), *item;
	int rv = list != NULL ? RS_OK : RS_ENOMEM;

	n = tsl_json_min(n, max);
	for (uint32_t i = 0; rv == RS_OK && i < n; i++) {
		item = NULL;
		rv = fn(t, arg, i, &item);
		if (rv == RS_OK)
			rv = rs_json_push(list, item);
		else
			json_decref(item);
	}
	return tsl_json_set_built(obj, name, rv, list);
}

/* The members, in the documented order. */
static int tsl_json_members(const struct tsl *t, json_t *o)
{
	json_t *v = NULL;
	int rv = rs_json_set_u64(o, "format_version", TSL_FORMAT_VERSION);

	if (rv == RS_OK)
		rv = rs_json_set_u64(o, "id", t->id);
	if (rv == RS_OK)
		rv = rs_json_set_u64(o, "epoch", t->epoch);
	if (rv == RS_OK)
		rv = rs_json_set_u64(o, "recovery_version", t->recovery_version);
	if (rv == RS_OK) {
		rv = tsl_json_node(&t->director, &v);
		rv = tsl_json_set_built(o, "director", rv, v);
		v = NULL;
	}
	if (rv == RS_OK) {
		rv = tsl_json_component(&t->sequencer, NULL, &v);
		rv = tsl_json_set_built(o, "sequencer", rv, v);
	}
	if (rv == RS_OK)
		rv = tsl_json_list(o, "commit_proxies", t->commit_proxy_count,
				   TSL_COMPONENTS_MAX, tsl_json_plain_item, t,
				   t->commit_proxies);
	if (rv == RS_OK)
		rv = tsl_json_list(o, "resolvers", t->resolver_count,
				   TSL_COMPONENTS_MAX, tsl_json_resolver_item, t,
				   NULL);
	if (rv == RS_OK)
		rv = tsl_json_list(o, "logs", t->log_count, TSL_COMPONENTS_MAX,
				   tsl_json_plain_item, t, t->logs);
	if (rv == RS_OK)
		rv = tsl_json_list(o, "storage", t->storage_count,
				   TSL_COMPONENTS_MAX, tsl_json_plain_item, t,
				   t->storage);
	if (rv == RS_OK)
		rv = tsl_json_list(o, "services", t->service_count,
				   TSL_SERVICES_MAX, tsl_json_service_item, t, NULL);
	return rv;
}

int tsl_to_json(const struct tsl *t, struct rs_buf *out)
{
	size_t start = out->len;
	json_t *o = json_object();
	int rv = o != NULL ? RS_OK : RS_ENOMEM;

	assert(t != NULL);
	if (rv == RS_OK)
		rv = tsl_json_members(t, o);
	if (rv == RS_OK)
		rv = rs_json_dump_buf(o, RS_JSON_COMPACT, out);
	json_decref(o);
	if (rv != RS_OK)
		out->len = start;
	assert(rv != RS_OK || out->len > start);
	return rv;
}
