/*
 * sdnotify: tell systemd how the node is doing (the sd_notify protocol,
 * without libsystemd).
 *
 * When systemd runs raftstored as a Type=notify service it sets
 * $NOTIFY_SOCKET to an AF_UNIX datagram socket (a path, or an abstract
 * name written with a leading '@'); a state such as "READY=1" is one
 * datagram sent to it.  Without $NOTIFY_SOCKET (not under systemd, or
 * Type=simple) nothing is sent.  Failures only return a code: the node
 * runs the same whether systemd heard it or not.
 */
#ifndef RS_SDNOTIFY_H
#define RS_SDNOTIFY_H

/* Send `state` ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET.  0 if it
 * was sent or there is no socket; otherwise an rs_error code with errmsg
 * (RS_ERRMSG_SIZE bytes or NULL) naming the socket. */
int sdnotify_send(const char *state, char *errmsg);

#endif /* RS_SDNOTIFY_H */
