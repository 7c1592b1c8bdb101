#include "engine/pipeline/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/err.h"

struct slot {
	void *job;
	bool done;
};

struct workq {
	pthread_mutex_t mu;
	pthread_cond_t cv_work; /* a job to take, or shutdown */
	pthread_cond_t cv_done; /* a job finished, or a failure */
	struct slot *ring;      /* submitted jobs in order: [head, tail) outstanding, [take, tail) not yet taken */
	size_t depth;
	size_t head, take, tail; /* monotonic counters; ring index is counter % depth */
	bool shutdown;
	int err;
	char errmsg[1024];
	workq_run_fn run;
	workq_exit_fn exit_fn;
	int nworkers;
	struct worker_arg {
		workq *q;
		void *ctx;
		pthread_t thread;
	} *workers;
};

static void fail_locked(workq *q, int code)
{
	if (q->err == 0) {
		q->err = code;
		snprintf(q->errmsg, sizeof q->errmsg, "%s", err_msg());
	}
	pthread_cond_broadcast(&q->cv_work);
	pthread_cond_broadcast(&q->cv_done);
}

void workq_fail(workq *q, int code)
{
	pthread_mutex_lock(&q->mu);
	fail_locked(q, code);
	pthread_mutex_unlock(&q->mu);
}

static void *worker_main(void *arg)
{
	struct worker_arg *w = arg;
	workq *q = w->q;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->take == q->tail && !q->shutdown && q->err == 0)
			pthread_cond_wait(&q->cv_work, &q->mu);
		if (q->err != 0 || q->take == q->tail)
			break;
		struct slot *s = &q->ring[q->take++ % q->depth];
		pthread_mutex_unlock(&q->mu);
		int rc = q->run(w->ctx, s->job);
		pthread_mutex_lock(&q->mu);
		if (rc < 0)
			fail_locked(q, rc);
		s->done = true;
		pthread_cond_broadcast(&q->cv_done);
	}
	bool clean = q->err == 0;
	pthread_mutex_unlock(&q->mu);
	if (clean && q->exit_fn != NULL) {
		int rc = q->exit_fn(w->ctx);
		if (rc < 0)
			workq_fail(q, rc);
	}
	return NULL;
}

int workq_workers(int requested)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int n = requested > 0 ? requested : (ncpu > 0 ? (int)ncpu : 1);
	return n < WORKQ_MAX_WORKERS ? n : WORKQ_MAX_WORKERS;
}

int workq_start(workq **out, int nworkers, void *ctxs, size_t ctx_size, workq_run_fn run, workq_exit_fn exit_fn,
		size_t depth)
{
	workq *q = calloc(1, sizeof *q);
	if (q == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the worker pool");
	q->ring = calloc(depth, sizeof *q->ring);
	q->workers = calloc((size_t)nworkers, sizeof *q->workers);
	if (q->ring == NULL || q->workers == NULL) {
		free(q->ring);
		free(q->workers);
		free(q);
		return err_set(DRE_ENOMEM, "cannot allocate the worker pool");
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv_work, NULL);
	pthread_cond_init(&q->cv_done, NULL);
	q->depth = depth;
	q->run = run;
	q->exit_fn = exit_fn;
	for (int i = 0; i < nworkers; i++) {
		q->workers[i].q = q;
		q->workers[i].ctx = ctxs ? (char *)ctxs + (size_t)i * ctx_size : NULL;
		int rc = pthread_create(&q->workers[i].thread, NULL, worker_main, &q->workers[i]);
		if (rc != 0) {
			errno = rc;
			workq_fail(q, err_sys("cannot start worker thread %d of %d", i + 1, nworkers));
			return workq_finish(q);
		}
		q->nworkers = i + 1;
	}
	*out = q;
	return 0;
}

int workq_submit(workq *q, void *job)
{
	pthread_mutex_lock(&q->mu);
	if (q->tail - q->head >= q->depth) {
		pthread_mutex_unlock(&q->mu);
		return err_set(DRE_EINVAL, "internal: more than %zu jobs outstanding", q->depth);
	}
	struct slot *s = &q->ring[q->tail++ % q->depth];
	s->job = job;
	s->done = false;
	pthread_cond_signal(&q->cv_work);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int workq_next(workq *q, bool wait, void **job)
{
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		if (q->err != 0) {
			rc = err_set(q->err, "%s", q->errmsg);
			break;
		}
		if (q->head == q->tail)
			break;
		struct slot *s = &q->ring[q->head % q->depth];
		if (s->done) {
			*job = s->job;
			q->head++;
			rc = 1;
			break;
		}
		if (!wait)
			break;
		pthread_cond_wait(&q->cv_done, &q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

size_t workq_outstanding(workq *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->tail - q->head;
	pthread_mutex_unlock(&q->mu);
	return n;
}

int workq_finish(workq *q)
{
	pthread_mutex_lock(&q->mu);
	q->shutdown = true;
	pthread_cond_broadcast(&q->cv_work);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->nworkers; i++)
		pthread_join(q->workers[i].thread, NULL);
	int rc = q->err != 0 ? err_set(q->err, "%s", q->errmsg) : 0;
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv_work);
	pthread_cond_destroy(&q->cv_done);
	free(q->ring);
	free(q->workers);
	free(q);
	return rc;
}

int workq_close(workq **q, int rc)
{
	if (*q == NULL)
		return rc;
	if (rc < 0)
		workq_fail(*q, rc);
	int qrc = workq_finish(*q);
	*q = NULL;
	return rc < 0 ? rc : qrc;
}
