/*
 * procmetrics: the process_* families every Prometheus client exports, for
 * this process, read from Linux's /proc and getrusage at render time.
 *
 *   process_cpu_seconds_total      user + system CPU time (counter)
 *   process_resident_memory_bytes  resident set size
 *   process_virtual_memory_bytes   virtual memory size
 *   process_open_fds               open file descriptors
 *   process_max_fds                the soft limit on them
 *   process_start_time_seconds     start time, seconds since the epoch
 *
 * A value that cannot be read renders as NaN (never a guess).  Reading
 * costs a few small /proc reads per scrape; nothing runs between scrapes.
 */
#ifndef RS_PROCMETRICS_H
#define RS_PROCMETRICS_H

#include "raftstore/lib/metrics.h"

/* Register the families in ms.  RS_OK, or RS_EINVAL with
 * metrics_errmsg(ms) saying why. */
int procmetrics_register(struct metrics *ms);

/* The start time as process_start_time_seconds reports it (NaN if /proc
 * cannot tell), for tests. */
double procmetrics_start_time(void);

#endif /* RS_PROCMETRICS_H */
