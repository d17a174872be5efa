/*
 * rsbench_net: what the watch and idle-connection benchmarks need beyond
 * the client library.
 *
 *  - Raw protocol connections (struct rb_conn): a TCP stream that sends
 *    whole frames and hands every complete response frame to a callback.
 *    The client library carries its watches on its pooled connections
 *    (at most 256); these let the benchmarks spread watches over raw
 *    connections of their own choosing, measure the protocol without the
 *    library (as etcd's one gRPC stream per client is measured), and hold
 *    thousands of idle connections.  No retries, no leader search: the caller picks the
 *    node.
 *  - Idle connections (struct rb_idle): N raw connections to one node, each
 *    proven up by one answered read version, then left alone.
 *  - The leader's client endpoint, as the client library finds it.
 *  - The servers' resident memory (VmRSS from /proc/PID/status, summed)
 *    and CPU time (/proc/PID/stat), and this process's CPU time.
 *
 * One libuv loop; nothing here is thread-safe.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "raftstore/client.h"
#include "tools/rsbench.h"

#define RB_READ_CHUNK 65536u

struct rb_write {
	uv_write_t req;
	uv_buf_t buf;
	uint8_t data[];
};

int rb_endpoint_addr(const char *name, struct sockaddr_in *addr)
{
	char host[256];
	const char *colon = strrchr(name, ':');
	size_t hl;
	int port;

	if (colon == NULL || (hl = (size_t)(colon - name)) >= sizeof host)
		return RS_EINVAL;
	memcpy(host, name, hl);
	host[hl] = '\0';
	port = atoi(colon + 1);
	if (port <= 0 || port > 65535)
		return RS_EINVAL;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	return uv_ip4_addr(host, port, addr) == 0 ? RS_OK : RS_EINVAL;
}

static void rb_fail(struct rb_conn *c, int status, const char *what,
		    int uv_status)
{
	char why[160];

	if (c->failed || c->closing)
		return;
	c->failed = true;
	snprintf(why, sizeof why, "%s%s%s", what, uv_status ? ": " : "",
		 uv_status ? uv_strerror(uv_status) : "");
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (c->on_fail != NULL)
		c->on_fail(c, status, why);
}

static void rb_written(uv_write_t *req, int status)
{
	struct rb_write *w = (struct rb_write *)req;
	struct rb_conn *c = req->handle->data;

	free(w);
	if (status != 0 && status != UV_ECANCELED)
		rb_fail(c, RS_EUNAVAILABLE, "write", status);
}

static int rb_write_now(struct rb_conn *c, const uint8_t *p, size_t len)
{
	struct rb_write *w = malloc(sizeof *w + len);
	int rv;

	if (w == NULL)
		return RS_ENOMEM;
	memcpy(w->data, p, len);
	w->buf = uv_buf_init((char *)w->data, (unsigned)len);
	rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, rb_written);
	if (rv != 0) {
		free(w);
		rb_fail(c, RS_EUNAVAILABLE, "write", rv);
		return RS_EUNAVAILABLE;
	}
	return RS_OK;
}

static void rb_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct rb_conn *c = h->data;

	(void)hint;
	if (rs_buf_reserve(&c->in, RB_READ_CHUNK) != RS_OK) {
		*buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
		return;
	}
	*buf = uv_buf_init((char *)c->in.data + c->in.len,
			   (unsigned)(c->in.cap - c->in.len));
}

static void rb_parse(struct rb_conn *c)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct wire_frame f;
	size_t off = 0;
	int rv;

	while (!c->failed && !c->closing) {
		rv = wire_frame_parse(c->in.data + off, c->in.len - off, &f,
				      errmsg);
		if (rv == RS_ETORN)
			break;
		if (rv != RS_OK) {
			rb_fail(c, RS_EPROTO, errmsg, 0);
			return;
		}
		off += f.total_len;
		assert(off <= c->in.len);
		c->on_frame(c, &f);
	}
	memmove(c->in.data, c->in.data + off, c->in.len - off);
	c->in.len -= off;
	if (c->in.len == 0)
		rs_buf_free(&c->in); /* thousands of idle connections keep none */
}

static void rb_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rb_conn *c = s->data;

	(void)buf;
	if (nread == 0)
		return;
	if (nread < 0) {
		rb_fail(c, nread == UV_ENOBUFS ? RS_ENOMEM : RS_EUNAVAILABLE,
			nread == UV_EOF ? "connection closed by the server" : "read",
			nread == UV_EOF ? 0 : (int)nread);
		return;
	}
	assert((size_t)nread <= c->in.cap - c->in.len);
	c->in.len += (size_t)nread;
	rb_parse(c);
}

static void rb_connected(uv_connect_t *req, int status)
{
	struct rb_conn *c = req->handle->data;
	int rv;

	if (c->closing)
		return;
	if (status != 0) {
		rb_fail(c, RS_EUNAVAILABLE, "connect", status);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	rv = uv_read_start((uv_stream_t *)&c->tcp, rb_alloc, rb_read);
	if (rv != 0) {
		rb_fail(c, RS_EUNAVAILABLE, "start reading", rv);
		return;
	}
	c->connected = true;
	if (c->out.len > 0 &&
	    rb_write_now(c, c->out.data, c->out.len) == RS_OK)
		c->out.len = 0;
}

int rb_conn_open(struct rb_conn *c, uv_loop_t *loop,
		 const struct sockaddr_in *addr)
{
	int rv;

	rs_buf_init(&c->in);
	rs_buf_init(&c->out);
	c->connected = c->failed = c->closing = false;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	rv = uv_tcp_connect(&c->connect_req, &c->tcp,
			    (const struct sockaddr *)addr, rb_connected);
	if (rv != 0) {
		c->failed = true;
		return RS_EUNAVAILABLE;
	}
	return RS_OK;
}

int rb_conn_send(struct rb_conn *c, const struct rs_buf *frames)
{
	assert(frames->len > 0);
	if (c->failed || c->closing)
		return RS_EUNAVAILABLE;
	if (c->connected)
		return rb_write_now(c, frames->data, frames->len);
	return rs_buf_append(&c->out, frames->data, frames->len);
}

static void rb_closed(uv_handle_t *h)
{
	struct rb_conn *c = h->data;

	rs_buf_free(&c->in);
	rs_buf_free(&c->out);
	if (c->on_closed != NULL)
		c->on_closed(c);
}

void rb_conn_close(struct rb_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, rb_closed);
}

/* fn(pid) summed over the processes in pids ("1,2,3"); -1 if fn says -1
 * for one of them. */
static double rb_sum_pids(const char *pids, double (*fn)(long pid))
{
	double total = 0, one;

	for (const char *p = pids; p != NULL && *p != '\0';) {
		if ((one = fn(strtol(p, NULL, 10))) < 0)
			return -1;
		total += one;
		p = strchr(p, ',');
		if (p != NULL)
			p++;
	}
	return total;
}

static double rb_rss_kib_of(long pid)
{
	char path[64], line[256];
	double kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = (double)strtoll(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

long long rb_rss_kib(const char *pids)
{
	return (long long)rb_sum_pids(pids, rb_rss_kib_of);
}

static double rb_cpu_s_of(long pid)
{
	char path[64], line[1024], *end;
	unsigned long long utime, stime;
	FILE *f;
	bool ok;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fgets(line, sizeof line, f) != NULL;
	fclose(f);
	/* After "pid (comm)": state and 10 more fields, then utime and stime
	 * (fields 14 and 15 of proc(5)). */
	if (!ok || (end = strrchr(line, ')')) == NULL ||
	    sscanf(end + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			    "%llu %llu", &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double rb_servers_cpu_s(const char *pids)
{
	return rb_sum_pids(pids, rb_cpu_s_of);
}

/* ---- the leader ---- */

struct rb_grv {
	struct rs_op op;
	bool done;
};

static void rb_grv_done(struct rs_op *op)
{
	((struct rb_grv *)op->data)->done = true;
}

int rb_find_leader(struct rs_client *c, uv_loop_t *loop, char *name,
		   size_t size, uint64_t *version, char *errmsg)
{
	struct rb_grv g;
	int rv;

	memset(&g, 0, sizeof g);
	g.op.data = &g;
	rv = rs_client_grv(c, &g.op, rb_grv_done);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "read version: %s", rs_strerror(rv));
		return rv;
	}
	while (!g.done)
		uv_run(loop, UV_RUN_ONCE);
	rv = g.op.result.status;
	if (rv != RS_OK)
		rs_errmsg_printf(errmsg, "read version: %s", g.op.result.message);
	else if (g.op.result.endpoint == NULL)
		rv = RS_EUNAVAILABLE;
	else
		snprintf(name, size, "%s", g.op.result.endpoint);
	if (version != NULL)
		*version = g.op.result.version;
	rs_result_free(&g.op.result);
	rs_buf_free(&g.op.request);
	return rv;
}

/* ---- idle connections ---- */

struct rb_idle {
	struct rb_conn *conns;
	unsigned n, answered, failed, closing;
	char first_error[160];
};

static void rb_idle_frame(struct rb_conn *c, const struct wire_frame *f)
{
	struct rb_idle *idle = c->data;
	struct wire_reader r;
	struct wire_bytes msg;
	int status;

	if (f->request_id == 1 &&
	    wire_decode_response_head(f, &r, &status, &msg) == RS_OK &&
	    status == RS_OK) {
		idle->answered++;
		return;
	}
	idle->failed++;
	if (idle->first_error[0] == '\0')
		snprintf(idle->first_error, sizeof idle->first_error,
			 "unexpected answer to a read version (request %" PRIu64
			 ")", f->request_id);
}

static void rb_idle_fail(struct rb_conn *c, int status, const char *why)
{
	struct rb_idle *idle = c->data;

	(void)status;
	idle->failed++;
	if (idle->first_error[0] == '\0')
		snprintf(idle->first_error, sizeof idle->first_error, "%s", why);
}

static void rb_idle_closed(struct rb_conn *c)
{
	((struct rb_idle *)c->data)->closing--;
}

int rb_idle_open(struct rb_idle **out, uv_loop_t *loop, const char *endpoint,
		 unsigned n, char *errmsg)
{
	struct rb_idle *idle = calloc(1, sizeof *idle);
	struct sockaddr_in addr;
	struct rs_buf grv;
	int rv = RS_OK;

	if (idle == NULL || (idle->conns = calloc(n ? n : 1, sizeof *idle->conns)) == NULL)
		abort();
	*out = idle;
	if (rb_endpoint_addr(endpoint, &addr) != RS_OK) {
		rs_errmsg_printf(errmsg, "%s: not an IPv4 host:port", endpoint);
		return RS_EINVAL;
	}
	rs_buf_init(&grv);
	if (wire_encode_simple(&grv, 1, WIRE_GRV) != RS_OK)
		abort();
	for (idle->n = 0; idle->n < n; idle->n++) {
		struct rb_conn *c = &idle->conns[idle->n];
		c->data = idle;
		c->on_frame = rb_idle_frame;
		c->on_fail = rb_idle_fail;
		c->on_closed = rb_idle_closed;
		if (rb_conn_open(c, loop, &addr) != RS_OK ||
		    rb_conn_send(c, &grv) != RS_OK)
			rb_idle_fail(c, RS_EUNAVAILABLE, "cannot open a connection");
	}
	rs_buf_free(&grv);
	while (idle->answered + idle->failed < idle->n)
		uv_run(loop, UV_RUN_ONCE);
	assert(idle->answered <= idle->n);
	if (idle->failed > 0) {
		rs_errmsg_printf(errmsg, "%u of %u idle connections to %s failed; "
				 "first: %s", idle->failed, n, endpoint,
				 idle->first_error);
		rv = RS_EUNAVAILABLE;
	}
	return rv;
}

void rb_idle_close(struct rb_idle *idle, uv_loop_t *loop)
{
	idle->closing = idle->n;
	for (unsigned i = 0; i < idle->n; i++)
		rb_conn_close(&idle->conns[i]);
	while (idle->closing > 0)
		uv_run(loop, UV_RUN_ONCE);
	free(idle->conns);
	free(idle);
}

void rb_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

double rb_self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
