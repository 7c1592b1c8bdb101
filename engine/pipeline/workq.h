/*
 * workq.h — a pool of worker threads that take jobs in submission order, run them in parallel, and hand them
 * back to the owning thread in the same order. Both pipelines are built on it: push (input buffers → chunk IDs
 * and packs) and restore (chunk lists → plaintext).
 *
 * The owner submits at most `depth` jobs that it has not taken back yet; it owns the job memory and recycles a
 * job once workq_next() returns it. The first failure, in a worker or reported by the owner with workq_fail(),
 * stops the pool: workers take no further jobs, and workq_next()/workq_finish() return that failure with its
 * message. Jobs are opaque (void *) to the pool.
 */
#ifndef DRE_WORKQ_H
#define DRE_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

typedef struct workq workq;

/* Runs one job on a worker thread; ctx is that worker's own context (its compression and cipher state). */
typedef int (*workq_run_fn)(void *ctx, void *job);
/* Runs once on each worker when the pool finishes without a failure (push flushes its last pack here). */
typedef int (*workq_exit_fn)(void *ctx);

#define WORKQ_MAX_WORKERS 64

/* How many workers to start for a requested count: that count when > 0, else one per online CPU; at most
 * WORKQ_MAX_WORKERS. */
int workq_workers(int requested);

/* Starts nworkers threads. Worker i's context is the i-th element of the array ctxs of ctx_size-byte
 * elements (ctxs may be NULL when the jobs need none). exit_fn may be NULL. */
int workq_start(workq **out, int nworkers, void *ctxs, size_t ctx_size, workq_run_fn run, workq_exit_fn exit_fn,
		size_t depth);

/* Queues a job; the owner must not have more than depth jobs outstanding. */
int workq_submit(workq *q, void *job);

/* The oldest outstanding job once it is done: 1 with *job set; 0 when there is none (no job outstanding, or
 * with wait = false, the oldest is still running); <0 after a failure. */
int workq_next(workq *q, bool wait, void **job);

/* Jobs submitted and not yet taken back by workq_next. */
size_t workq_outstanding(workq *q);

/* Stops the pool on a failure the owner found; the current err_msg() is kept as the pool's message. */
void workq_fail(workq *q, int code);

/* Lets the workers drain the queue, runs exit_fn on each (only when nothing failed), joins them, and frees
 * the pool. Returns the first failure, or 0. Jobs still outstanding are not returned: take them first. */
int workq_finish(workq *q);

/* The owner's way out: fails the pool first when rc < 0 (so workers stop at once and skip exit_fn), then
 * finishes it; returns rc, or the pool's failure when rc is 0. *q is NULL afterwards; NULL is allowed. */
int workq_close(workq **q, int rc);

#endif
