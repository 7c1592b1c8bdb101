/*
 * upload.h — pack uploads off the push workers' threads, for stores whose puts wait on the network (S3).
 *
 * A worker that has sealed a full pack offers it here. When one of the uploader's spare buffers is free, the
 * pack's buffers are swapped with it and an uploader thread puts the pack while the worker goes on compressing
 * into the spare; when none is free the offer is declined and the worker puts the pack itself, as it does on a
 * local store. So memory is the spares (one pack buffer each, as many as were asked for), and the requests in
 * flight are at most the workers plus the spares.
 *
 * Once a pack is durable, its done callback runs on the uploader thread (push records the pack's entries for
 * the index there). The first failure stops the uploader; later offers and uploader_finish return it.
 */
#ifndef DRE_UPLOAD_H
#define DRE_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "engine/repo/pack.h"

typedef struct uploader uploader;

/* Runs after pack id (its n entries, size bytes in the store) is durable. */
typedef int (*uploader_done_fn)(void *arg, const uint8_t id[CRYPTO_ID_LEN], const pack_entry *entries, size_t n,
				uint64_t size);

/* Starts spares uploader threads, each with one spare buffer sized like pw's. spares must be > 0. */
int uploader_start(uploader **out, const repo *r, size_t spares, size_t buffer_cap, uploader_done_fn done,
		   void *arg);

/* Takes the sealed pack in pw (total bytes, see pack_writer_seal) when a spare is free: returns 1, and pw holds
 * the spare's buffers (call pack_writer_reset next). Returns 0 when every spare is busy (pw is untouched), or
 * the failure of an earlier upload. */
int uploader_offer(uploader *u, pack_writer *pw, size_t total);

/* Waits for the uploads in flight (none are started after a failure, or when rc < 0), joins the threads and
 * frees everything. Returns rc when it is < 0, else the first upload failure, else 0. *u is NULL after; a NULL
 * *u is allowed. */
int uploader_finish(uploader **u, int rc);

#endif
