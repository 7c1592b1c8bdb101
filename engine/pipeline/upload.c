#include "engine/pipeline/upload.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/testhook.h"
#include "store/err.h"

struct spare {
	uint8_t *data;
	size_t cap, len;
	pack_entry *entries;
	size_t entries_cap, n;
	uint8_t id[CRYPTO_ID_LEN];
	bool queued; /* holds a pack to put (else it is free) */
	pthread_t thread;
	uploader *u;
};

struct uploader {
	const repo *r;
	uploader_done_fn done;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a spare was queued, or shutdown */
	struct spare *spares;
	size_t nspares, started;
	bool shutdown;
	int err;
	char errmsg[1024];
};

/* Each thread owns one spare: it waits for that spare to be queued, puts it, and frees it again. */
static void *uploader_main(void *arg)
{
	struct spare *s = arg;
	uploader *u = s->u;
	pthread_mutex_lock(&u->mu);
	for (;;) {
		while (!s->queued && !u->shutdown)
			pthread_cond_wait(&u->cv, &u->mu);
		if (!s->queued || u->err != 0)
			break;
		pthread_mutex_unlock(&u->mu);
		char key[80];
		repo_pack_key(s->id, key);
		test_pause("upload-before-put");
		int rc = store_put(u->r->st, key, s->data, s->len, 0);
		if (rc == 0)
			test_pause("upload-after-put");
		if (rc == 0)
			rc = u->done(u->arg, s->id, s->entries, s->n, s->len);
		pthread_mutex_lock(&u->mu);
		if (rc < 0 && u->err == 0) {
			u->err = rc;
			snprintf(u->errmsg, sizeof u->errmsg, "%s", err_msg());
		}
		s->queued = false;
		pthread_cond_broadcast(&u->cv);
	}
	pthread_mutex_unlock(&u->mu);
	return NULL;
}

int uploader_start(uploader **out, const repo *r, size_t spares, size_t buffer_cap, uploader_done_fn done, void *arg)
{
	uploader *u = calloc(1, sizeof *u);
	if (u == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the uploader");
	*u = (uploader){.r = r, .done = done, .arg = arg, .nspares = spares};
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	u->spares = calloc(spares, sizeof *u->spares);
	int rc = u->spares ? 0 : err_set(DRE_ENOMEM, "cannot allocate the uploader");
	for (size_t i = 0; rc == 0 && i < spares; i++) {
		struct spare *s = &u->spares[i];
		s->u = u;
		s->cap = buffer_cap;
		s->data = store_buffer_alloc(buffer_cap); /* swapped with pack writers' buffers: aligned alike */
		if (s->data == NULL)
			rc = err_set(DRE_ENOMEM, "cannot allocate a %zu-byte upload buffer", buffer_cap);
		else if (pthread_create(&s->thread, NULL, uploader_main, s) != 0)
			rc = err_set(DRE_EIO, "cannot start an upload thread");
		else
			u->started++;
	}
	*out = u;
	if (rc < 0)
		return uploader_finish(out, rc);
	return 0;
}

int uploader_offer(uploader *u, pack_writer *pw, size_t total)
{
	pthread_mutex_lock(&u->mu);
	if (u->err != 0) {
		int rc = err_set(u->err, "%s", u->errmsg);
		pthread_mutex_unlock(&u->mu);
		return rc;
	}
	struct spare *s = NULL;
	for (size_t i = 0; i < u->nspares && s == NULL; i++)
		if (!u->spares[i].queued)
			s = &u->spares[i];
	if (s != NULL) {
		/* swap, not copy: the pack's buffers travel, the worker gets the spare's */
		uint8_t *d = s->data;
		size_t cap = s->cap;
		pack_entry *e = s->entries;
		size_t ecap = s->entries_cap;
		s->data = pw->data;
		s->cap = pw->cap;
		s->len = total;
		s->entries = pw->entries;
		s->entries_cap = pw->entries_cap;
		s->n = pw->n;
		memcpy(s->id, pw->id, CRYPTO_ID_LEN);
		pw->data = d;
		pw->cap = cap;
		pw->entries = e;
		pw->entries_cap = ecap;
		pw->n = 0;
		s->queued = true;
		pthread_cond_broadcast(&u->cv);
	}
	pthread_mutex_unlock(&u->mu);
	return s != NULL;
}

int uploader_finish(uploader **up, int rc)
{
	uploader *u = *up;
	if (u == NULL)
		return rc;
	pthread_mutex_lock(&u->mu);
	if (rc < 0 && u->err == 0)
		u->err = rc; /* queued packs are not put after a failure: nothing will name them */
	while (u->err == 0) {
		bool busy = false;
		for (size_t i = 0; i < u->nspares; i++)
			busy |= u->spares[i].queued;
		if (!busy)
			break;
		pthread_cond_wait(&u->cv, &u->mu);
	}
	u->shutdown = true;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
	for (size_t i = 0; i < u->started; i++)
		pthread_join(u->spares[i].thread, NULL);
	if (rc == 0 && u->err != 0)
		rc = err_set(u->err, "%s", u->errmsg);
	for (size_t i = 0; u->spares && i < u->nspares; i++) {
		free(u->spares[i].data);
		free(u->spares[i].entries);
	}
	free(u->spares);
	pthread_cond_destroy(&u->cv);
	pthread_mutex_destroy(&u->mu);
	free(u);
	*up = NULL;
	return rc;
}
