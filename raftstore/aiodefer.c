/* aiodefer: see aiodefer.h. */
#include "raftstore/aiodefer.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "raftstore/lib/rs_error.h"

/* Contexts waiting for the thread; one more falls back to the loop. */
#define AIODEFER_QUEUE 64u

typedef long (*syscall_fn)(long number, ...);

static struct {
	pthread_once_t once;
	syscall_fn real;
	atomic_bool enabled;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* work queued, or work done */
	unsigned long queue[AIODEFER_QUEUE];
	unsigned head, count;
	bool busy;              /* the thread is inside a destroy */
	struct aiodefer_stats st;
	pthread_t thread;
} aiodefer = {
	.once = PTHREAD_ONCE_INIT,
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static void aiodefer_find_real(void)
{
	aiodefer.real = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
}

/* libc's syscall(2), with all six argument registers passed on. */
static long aiodefer_real(long number, long a, long b, long c, long d, long e,
			  long f)
{
	pthread_once(&aiodefer.once, aiodefer_find_real);
	if (aiodefer.real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return aiodefer.real(number, a, b, c, d, e, f);
}

static void *aiodefer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&aiodefer.mu);
	for (;;) {
		unsigned long ctx;
		long rv;

		while (aiodefer.count == 0)
			pthread_cond_wait(&aiodefer.cv, &aiodefer.mu);
		ctx = aiodefer.queue[aiodefer.head];
		aiodefer.head = (aiodefer.head + 1) % AIODEFER_QUEUE;
		aiodefer.count--;
		aiodefer.busy = true;
		pthread_mutex_unlock(&aiodefer.mu);
		rv = aiodefer_real(SYS_io_destroy, (long)ctx, 0, 0, 0, 0, 0);
		pthread_mutex_lock(&aiodefer.mu);
		aiodefer.busy = false;
		aiodefer.st.destroyed++;
		if (rv != 0)
			aiodefer.st.failed++;
		pthread_cond_broadcast(&aiodefer.cv);
	}
	return NULL;
}

/* Queue ctx for the thread; false when the queue is full. */
static bool aiodefer_push(unsigned long ctx)
{
	bool queued = false;

	pthread_mutex_lock(&aiodefer.mu);
	if (aiodefer.count < AIODEFER_QUEUE) {
		aiodefer.queue[(aiodefer.head + aiodefer.count) %
			       AIODEFER_QUEUE] = ctx;
		aiodefer.count++;
		aiodefer.st.deferred++;
		queued = true;
		pthread_cond_broadcast(&aiodefer.cv);
	}
	pthread_mutex_unlock(&aiodefer.mu);
	return queued;
}

long syscall(long number, ...)
{
	long a[6];
	va_list ap;

	/* As libc's own syscall(2) does: six argument words, whatever the
	 * call takes (the unused ones are never looked at by the kernel). */
	va_start(ap, number);
	for (unsigned i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_io_destroy &&
	    atomic_load_explicit(&aiodefer.enabled, memory_order_acquire) &&
	    aiodefer_push((unsigned long)a[0]))
		return 0;
	return aiodefer_real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int aiodefer_enable(char *errmsg)
{
	sigset_t all, old;
	int rv;

	if (atomic_load(&aiodefer.enabled))
		return RS_OK;
	/* The thread takes no signals: the loop's handlers stay the only
	 * ones that run. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rv = pthread_create(&aiodefer.thread, NULL, aiodefer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "start the io_destroy thread: %s",
				 strerror(rv));
		return RS_ENOMEM;
	}
	pthread_detach(aiodefer.thread);
	atomic_store_explicit(&aiodefer.enabled, true, memory_order_release);
	return RS_OK;
}

void aiodefer_get_stats(struct aiodefer_stats *st)
{
	pthread_mutex_lock(&aiodefer.mu);
	*st = aiodefer.st;
	pthread_mutex_unlock(&aiodefer.mu);
}

void aiodefer_drain(void)
{
	pthread_mutex_lock(&aiodefer.mu);
	while (aiodefer.count > 0 || aiodefer.busy)
		pthread_cond_wait(&aiodefer.cv, &aiodefer.mu);
	pthread_mutex_unlock(&aiodefer.mu);
}
