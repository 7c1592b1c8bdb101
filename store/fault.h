/*
 * fault.h — store faults for tests: DRE_TEST_STORE_FAULTS (the user's side is described in store.h).
 *
 * Two halves. store_open wraps the store it opened in a driver (store_fault_wrap) that counts operations,
 * delays some of them (latency), picks which of them get a fault and which, and writes the counts out at close.
 * The failures themselves are injected where they happen for real: the local driver asks store_fault_hit()
 * before each system call that can fail on a disk (creating a temporary file, pwrite, fsync, open, pread, stat,
 * opening a directory to list, unlink) and, when told to, fails that call with the errno a disk gives, or
 * transfers fewer bytes than asked (a legal short pwrite or pread).
 * Its own error paths then produce exactly the messages a real failure does. The S3 driver gets no injected
 * failures here: its faults (connection resets, 500, 503 SlowDown, cut bodies) come from a real HTTP proxy,
 * tests/s3/faultproxy.py.
 *
 * When the variable is unset nothing is wrapped and store_fault_hit is one load and a branch.
 */
#ifndef DRE_STORE_FAULT_H
#define DRE_STORE_FAULT_H

#include "store/store.h"

/* Where a local driver's system call can fail, and what may be injected there. */
enum store_fault_site {
	STORE_FAULT_CREATE,   /* creating an object's temporary file: EIO, ENOSPC */
	STORE_FAULT_WRITE,    /* pwrite: EIO, ENOSPC, or a short count */
	STORE_FAULT_SYNC,     /* fsync of an object's temporary file: EIO */
	STORE_FAULT_SYNC_DIR, /* fsync of a directory (a new one's parent, or after a rename or unlink): EIO */
	STORE_FAULT_OPEN,     /* opening an object to read it: EIO */
	STORE_FAULT_READ,     /* pread: EIO, or a short count */
	STORE_FAULT_STAT,     /* stat: EIO */
	STORE_FAULT_LIST,     /* opening the directory a listing starts from: EIO */
	STORE_FAULT_DELETE,   /* unlink: EIO */
};

/* store_fault_hit's answer when the call is to move fewer bytes than asked (and succeed). */
#define STORE_FAULT_SHORT (-1)

struct store_faults;

/* The parsed DRE_TEST_STORE_FAULTS, NULL when unset. Set once, under pthread_once, by the first
 * store_faults_load (store_open's first step), so every thread that is handed a store sees it. */
extern struct store_faults *store_faults_active;

/* Parses DRE_TEST_STORE_FAULTS the first time it is called (later calls give the same answer): 0 with
 * store_faults_active set (or NULL when the variable is unset), or DRE_EINVAL naming what is wrong in it. */
int store_faults_load(void);

/* The fault armed for this thread's current store operation, when it is for site (then it is used up). */
int store_fault_take(enum store_fault_site site);

/* Before a system call at site: 0 to make it, an errno value to fail it with instead, or STORE_FAULT_SHORT. */
static inline int store_fault_hit(enum store_fault_site site)
{
	return store_faults_active == NULL ? 0 : store_fault_take(site);
}

/* The length of a short transfer of n bytes: about half, whole STORE_DIRECT_ALIGN blocks when that is possible
 * (what a file opened with O_DIRECT returns); n itself when n is 1. */
static inline size_t store_fault_short(size_t n)
{
	size_t half = n / 2;
	if (half >= STORE_DIRECT_ALIGN)
		half &= ~(size_t)(STORE_DIRECT_ALIGN - 1);
	return half ? half : n;
}

/* Wraps inner (taking it over) in the counting, delaying driver; on failure inner is closed. */
int store_fault_wrap(store *inner, store **out);

#endif
