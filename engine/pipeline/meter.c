#include "engine/pipeline/meter.h"

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

void meter_start(meter *m, const engine_hooks *hooks)
{
	m->hooks = hooks;
	clock_gettime(CLOCK_MONOTONIC, &m->t0);
	m->last = m->t0;
}

double meter_seconds(const meter *m)
{
	return seconds_since(&m->t0);
}

bool meter_due(meter *m, bool final)
{
	if (m->hooks == NULL || m->hooks->progress == NULL)
		return false;
	if (!final) {
		if (seconds_since(&m->last) < 0.5)
			return false;
		clock_gettime(CLOCK_MONOTONIC, &m->last);
	}
	return true;
}

int64_t meter_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return meter_timespec_ns(&t);
}
