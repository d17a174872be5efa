/*
 * freelater: see freelater.h.
 */
#include "raftstore/freelater.h"

#include <stdlib.h>

#include "raftstore/lib/rs_error.h"

struct freelater {
	uv_work_t work;
	void **ptrs;
	size_t n;
};

static void freelater_free_all(struct freelater *fl)
{
	for (size_t i = 0; i < fl->n; i++)
		free(fl->ptrs[i]);
	free(fl->ptrs);
	fl->ptrs = NULL;
	fl->n = 0;
}

static void freelater_work(uv_work_t *w)
{
	freelater_free_all(w->data);
}

static void freelater_done(uv_work_t *w, int status)
{
	struct freelater *fl = w->data;

	if (status != 0) /* cancelled: the work never ran */
		freelater_free_all(fl);
	free(fl);
}

int freelater_queue(uv_loop_t *loop, void **ptrs, size_t n)
{
	struct freelater *fl = malloc(sizeof *fl);

	if (fl == NULL)
		return RS_ENOMEM;
	fl->ptrs = ptrs;
	fl->n = n;
	fl->work.data = fl;
	if (uv_queue_work(loop, &fl->work, freelater_work, freelater_done) !=
	    0) {
		free(fl);
		return RS_EIO;
	}
	return RS_OK;
}
