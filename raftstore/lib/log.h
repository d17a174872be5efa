/*
 * log: structured logging, one line per event, logfmt style:
 *
 *   ts=2026-11-22T04:58:00.123Z level=info node=1 event=raft.leader term=3
 *
 * The event name comes first after the fixed fields; the rest are key=value
 * pairs written by the caller's format string.  Values with spaces must be
 * quoted by the caller (use log_quote).  Lines go to stderr (or the file set
 * with log_open) with one write(2) each, so lines from one process never
 * interleave.
 */
#ifndef RS_LOG_H
#define RS_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_node(unsigned long long node_id);
void log_set_level(enum log_level level);
/* Parse "debug", "info", "warn", "error"; -1 if unknown. */
int log_level_parse(const char *s);

void log_event(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(ev, ...) log_event(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_event(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, ev, __VA_ARGS__)

/* Quote s for a logfmt value into buf ("..." with \" and \\ escaped,
 * control bytes as \xNN); returns buf. */
const char *log_quote(char *buf, size_t size, const char *s);

#endif /* RS_LOG_H */
