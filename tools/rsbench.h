/* rsbench: subcommands implemented outside rsbench.c, and what they share
 * (tools/rsbench_net.c). */
#ifndef RS_RSBENCH_H
#define RS_RSBENCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftstore/lib/buf.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/wire.h"

/* `rsbench cluster ...`: closed-loop load on a running cluster. */
int rsbench_cluster(int argc, char **argv);
/* `rsbench watch ...`: watch fan-out, delivery latency, loss and order. */
int rsbench_watch(int argc, char **argv);

/* ---- rsbench_net.c ---- */

/* A raw protocol connection.  The caller sets data, on_frame, on_fail
 * (may be NULL) and on_closed (may be NULL) before rb_conn_open. */
struct rb_conn {
	void *data;
	/* Every complete frame the server sends, in order. */
	void (*on_frame)(struct rb_conn *c, const struct wire_frame *f);
	/* Once, when the connection breaks (why names the cause); the caller
	 * still closes it. */
	void (*on_fail)(struct rb_conn *c, int status, const char *why);
	/* After rb_conn_close, when c may be freed. */
	void (*on_closed)(struct rb_conn *c);
	/* private */
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	struct rs_buf in;  /* bytes read, not yet a whole frame */
	struct rs_buf out; /* frames sent before the connection was up */
	bool connected, failed, closing;
};

/* "host:port" ("localhost" or an IPv4 address) -> addr; RS_EINVAL if not. */
int rb_endpoint_addr(const char *name, struct sockaddr_in *addr);
/* Starts connecting; frames sent meanwhile go out once connected. */
int rb_conn_open(struct rb_conn *c, uv_loop_t *loop,
		 const struct sockaddr_in *addr);
/* Sends whole frames (copied). */
int rb_conn_send(struct rb_conn *c, const struct rs_buf *frames);
void rb_conn_close(struct rb_conn *c);

struct rs_client;
/* A read version through c, run to completion on loop: the version, and
 * the endpoint that answered (the leader, as the client moves there on
 * connect) in name. */
int rb_find_leader(struct rs_client *c, uv_loop_t *loop, char *name,
		   size_t size, uint64_t *version, char *errmsg);

/* n connections to endpoint, each having answered one read version when
 * this returns (it runs loop).  *out is set even on failure (errmsg says
 * how many failed and why); close it with rb_idle_close, which runs loop
 * until every connection is closed. */
struct rb_idle;
int rb_idle_open(struct rb_idle **out, uv_loop_t *loop, const char *endpoint,
		 unsigned n, char *errmsg);
void rb_idle_close(struct rb_idle *idle, uv_loop_t *loop);

/* Summed VmRSS in KiB of the processes in pids ("1,2,3"); -1 if one of
 * them cannot be read. */
long long rb_rss_kib(const char *pids);

/* Summed user+system CPU seconds of the processes in pids since they
 * started; -1 if one cannot be read. */
double rb_servers_cpu_s(const char *pids);
/* This process's user+system CPU seconds. */
double rb_self_cpu_s(void);

/* Thousands of sockets: take the whole hard limit of descriptors. */
void rb_raise_fd_limit(void);

#endif /* RS_RSBENCH_H */
