/*
 * http: a minimal HTTP/1.1 server on libuv for --metrics-addr.
 *
 * It serves a fixed table of routes, each a path whose body a callback
 * renders on demand: GET /metrics, /status and /health in raftstored.  One
 * request per connection: every response carries "Connection: close", and
 * the server closes the connection once it is written.  Request bodies are
 * never read.
 *
 * Guarantees:
 *   - Nothing a peer sends can crash the process or grow memory beyond
 *     HTTP_HEAD_SIZE_MAX per connection (and HTTP_CONN_MAX connections).
 *   - The request head may arrive in any number of pieces.
 *   - Answers: 200 for GET or HEAD of a route; 404 for any other path (any
 *     method); 405 for another method on a route (with "Allow: GET, HEAD");
 *     400 for a malformed request line or header, a control byte in the
 *     head (what follows its blank line is never looked at, so the answer
 *     does not depend on how the bytes were cut into reads), or a head
 *     over HTTP_HEAD_SIZE_MAX; 505 for an HTTP major version other than 1;
 *     408 if a started request is not complete within the request timeout;
 *     503 with the route's body if its callback says unavailable; 500 if
 *     the route's callback fails.  Every answer then closes.
 *   - After the response the server half-closes and drains what the peer
 *     still sends (for at most HTTP_LINGER_MS), so a client that was
 *     still writing gets the response rather than a reset.
 *   - Everything runs on the loop thread; callbacks run inside libuv read
 *     callbacks and must not block.
 *
 * Matching: the path is the request target up to '?' (the query is
 * ignored), compared byte for byte (no percent-decoding).  An absolute-form
 * target ("http://host:port/metrics") is reduced to its path.
 */
#ifndef RS_HTTP_H
#define RS_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "raftstore/lib/buf.h"

#define HTTP_HEAD_SIZE_MAX 8192u  /* request line + headers + blank line */
#define HTTP_CONN_MAX 64u         /* more are accepted and closed at once */
#define HTTP_REQUEST_TIMEOUT_MS_DEFAULT 10000u /* accept to response sent */
#define HTTP_LINGER_MS 2000u      /* draining after the response */

#define HTTP_CONTENT_TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define HTTP_CONTENT_TYPE_JSON "application/json"

struct http;

/* Append the body of a response to body (empty on entry) and return RS_OK
 * (200); RS_EUNAVAILABLE sends the body as written with 503 Service
 * Unavailable (a health check saying why); any other code becomes a 500
 * with an empty body.  ctx is http_config.ctx. */
typedef int (*http_body_fn)(void *ctx, struct rs_buf *body);

struct http_route {
	const char *path;         /* "/metrics"; must outlive the server */
	const char *content_type; /* must outlive the server */
	http_body_fn body;
};

struct http_config {
	const struct http_route *routes; /* copied; strings are not */
	size_t n_routes;
	void *ctx;
	/* From accept to the response written; 0: the default. */
	unsigned request_timeout_ms;
};

/*
 * Listen on addr: "HOST:PORT", "[IPV6]:PORT" or ":PORT" (all IPv4
 * interfaces); HOST is a numeric address or "localhost".  PORT 0 picks a
 * free port (see http_port).  Does not block.
 *
 * Returns RS_OK and *out; RS_EINVAL if addr does not parse; RS_EIO if the
 * address cannot be bound or listened on (errmsg: "listen on ADDR:
 * address already in use"); RS_ENOMEM.  On RS_EIO a listener handle may
 * still be closing: run the loop before uv_loop_close.
 */
int http_start(struct http **out, uv_loop_t *loop, const char *addr,
	       const struct http_config *config, char *errmsg);

/* The port actually bound (useful with port 0); -1 if unknown. */
int http_port(const struct http *h);

/* Stop listening, close every connection (cancelling responses under
 * way) and free h; cb(arg) runs, from the loop, once every handle is
 * closed.  cb may be NULL. */
void http_stop(struct http *h, void (*cb)(void *arg), void *arg);

/* ---- internal, exposed for tests ---- */

enum http_parse_result {
	HTTP_PARSE_DONE,      /* a complete, well-formed head */
	HTTP_PARSE_MORE,      /* well-formed so far; need more bytes */
	HTTP_PARSE_BAD,       /* malformed: 400 */
	HTTP_PARSE_TOO_LARGE, /* no end within HTTP_HEAD_SIZE_MAX: 400 */
	HTTP_PARSE_VERSION,   /* HTTP/x.y with x != 1: 505 */
};

/* A parsed head; the pointers point into the parsed bytes. */
struct http_request {
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	size_t head_len; /* bytes up to and including the blank line */
};

/* Parse the head at the start of p[0..n).  Lines end in CRLF or a bare
 * LF; blank lines before the request line are skipped.  Pure: reads at most
 * min(n, HTTP_HEAD_SIZE_MAX + 1) bytes.  req is filled on DONE only. */
enum http_parse_result http_parse(const char *p, size_t n,
				  struct http_request *req);

#endif /* RS_HTTP_H */
