/*
 * freelater: free memory on a libuv worker, so that a large block or many
 * small ones do not hold the event loop.
 *
 * free() of a 70 MB snapshot image takes the loop ~17 ms (the munmap), and
 * 60,000 small frees ~15-20 ms; a loop that stands still that long stalls
 * every commit it takes part in.  freelater_queue hands a list of
 * pointers to the loop's thread pool, which frees each and then the list.
 * Memory is freed a little later, never leaked: a request the pool
 * cancels (the loop closing) frees in its after-callback, on the loop.
 */
#ifndef RS_FREELATER_H
#define RS_FREELATER_H

#include <stddef.h>
#include <uv.h>

/* Free ptrs[0..n) (NULLs allowed) and then ptrs itself, all from malloc,
 * on a worker of loop; call on loop's thread.  RS_OK: ptrs is owned from
 * now on.  RS_ENOMEM or RS_EIO (the pool refused): nothing was freed and
 * the caller still owns ptrs. */
int freelater_queue(uv_loop_t *loop, void **ptrs, size_t n);

#endif /* RS_FREELATER_H */
