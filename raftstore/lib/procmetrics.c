/* procmetrics: see procmetrics.h. */
#include "raftstore/lib/procmetrics.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "raftstore/lib/rs_error.h"

static double proc_cpu_seconds(void *ctx)
{
	struct rusage ru;

	(void)ctx;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return NAN;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Field i (0: size, 1: resident) of /proc/self/statm, in bytes. */
static double proc_statm(unsigned i)
{
	unsigned long v[2];
	FILE *f = fopen("/proc/self/statm", "r");
	int got;

	if (f == NULL)
		return NAN;
	got = fscanf(f, "%lu %lu", &v[0], &v[1]);
	fclose(f);
	if (got != 2)
		return NAN;
	return (double)v[i] * (double)sysconf(_SC_PAGESIZE);
}

static double proc_rss(void *ctx)
{
	(void)ctx;
	return proc_statm(1);
}

static double proc_vsize(void *ctx)
{
	(void)ctx;
	return proc_statm(0);
}

static double proc_open_fds(void *ctx)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	double n = 0;

	(void)ctx;
	if (d == NULL)
		return NAN;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static double proc_max_fds(void *ctx)
{
	struct rlimit rl;

	(void)ctx;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return NAN;
	return (double)rl.rlim_cur;
}

/* Boot time (/proc/stat btime) plus the process' start in clock ticks
 * since boot (/proc/self/stat field 22). */
double procmetrics_start_time(void)
{
	char buf[1024], *p;
	unsigned long long btime = 0, start = 0;
	FILE *f = fopen("/proc/stat", "r");
	size_t got;
	int field;

	if (f == NULL)
		return NAN;
	while (fgets(buf, sizeof buf, f) != NULL)
		if (sscanf(buf, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	f = fopen("/proc/self/stat", "r");
	if (f == NULL || btime == 0) {
		if (f != NULL)
			fclose(f);
		return NAN;
	}
	got = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[got] = '\0';
	/* the command name (field 2) may hold spaces: count after its ')' */
	p = strrchr(buf, ')');
	if (p == NULL)
		return NAN;
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
		return NAN;
	return (double)btime + (double)start / (double)sysconf(_SC_CLK_TCK);
}

static double proc_start_time(void *ctx)
{
	static double start = -1;

	(void)ctx;
	if (start < 0)
		start = procmetrics_start_time();
	return start;
}

int procmetrics_register(struct metrics *ms)
{
	if (metrics_counter_fn(ms, "process_cpu_seconds_total",
			       "Total user and system CPU time spent in seconds",
			       proc_cpu_seconds, NULL) == NULL ||
	    metrics_gauge_fn(ms, "process_resident_memory_bytes",
			     "Resident memory size in bytes", proc_rss,
			     NULL) == NULL ||
	    metrics_gauge_fn(ms, "process_virtual_memory_bytes",
			     "Virtual memory size in bytes", proc_vsize,
			     NULL) == NULL ||
	    metrics_gauge_fn(ms, "process_open_fds",
			     "Number of open file descriptors", proc_open_fds,
			     NULL) == NULL ||
	    metrics_gauge_fn(ms, "process_max_fds",
			     "Maximum number of open file descriptors",
			     proc_max_fds, NULL) == NULL ||
	    metrics_gauge_fn(ms, "process_start_time_seconds",
			     "Start time of the process since unix epoch in "
			     "seconds",
			     proc_start_time, NULL) == NULL)
		return RS_EINVAL;
	return RS_OK;
}
