/*
 * meter.h — the clock of one push or restore: seconds since it started, and the pacing of progress reports
 * (at most two a second, plus the final one) for the hook cli/ passed in. Shared by both pipelines.
 */
#ifndef DRE_METER_H
#define DRE_METER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "engine/engine.h"

typedef struct meter {
	const engine_hooks *hooks;
	struct timespec t0, last;
} meter;

void meter_start(meter *m, const engine_hooks *hooks);
double meter_seconds(const meter *m);

/* True when a progress report is due now (there is a hook, and it is final or half a second has passed);
 * the caller then gathers its figures and calls hooks->progress with meter_seconds(). */
bool meter_due(meter *m, bool final);

/* The wall clock, ns since the epoch (UTC): what snapshots, WAL objects and base backups record. */
int64_t meter_now_ns(void);

/* A time as a count of ns (a file's mtime or ctime as node records keep it). */
static inline int64_t meter_timespec_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

#endif
