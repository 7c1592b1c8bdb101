/*
 * producer.h — a program whose standard output is backed up: `push NAME -- CMD`, and pg_dump and pg_dumpall
 * for `pg-dump`. Its standard error stays the caller's, so the program's own messages reach the user.
 *
 * Its exit status decides whether what it wrote is recorded: a program that dies half way writes a stream that
 * looks whole, so only status 0 counts.
 */
#ifndef DRE_PRODUCER_H
#define DRE_PRODUCER_H

#include <stdbool.h>
#include <sys/types.h>

#include "engine/pipeline/meter.h"

typedef struct producer {
	pid_t pid;
	int fd;           /* reads its standard output */
	const char *name; /* argv[0], for messages */
	meter clock;      /* since it was started */
} producer;

/* Starts argv. A program that cannot be run (not found, not executable) is DRE_EPRODUCER naming it and the
 * cause, not an empty stream. env (NULL: none) holds "NAME=VALUE" strings the program gets on top of dre's own
 * environment: a secret such as PGPASSWORD goes there, never into argv, which every user can read in /proc. */
int producer_start(char *const argv[], char *const env[], producer *out);

/* Closes its pipe and waits for it. With stop set (the caller gave up reading) it is sent SIGTERM first, so it
 * is not left blocked on a full pipe. 0 when it exited with status 0; DRE_EPRODUCER with its status or signal
 * otherwise. *seconds (may be NULL) gets how long it ran. */
int producer_wait(producer *p, bool stop, double *seconds);

#endif
