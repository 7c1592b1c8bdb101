/*
 * gendata.h — deterministic, pg_dump-like SQL text: the one generator behind `dre bench`, build/dre-gendump
 * (tests, the demo, bench/ scripts), so that every figure and every test sees the same bytes.
 *
 * The dump has 300 tables of different widths (ints, timestamps, words, uuids, numerics) in COPY blocks, each
 * about size/300 bytes, so the whole stream is a little longer than size (the last rows and the COPY
 * terminators run past it). With next_day the same dump comes out with one table in ten edited: a few rows
 * changed, inserted or deleted, spread through the table, as a day of OLTP traffic would leave it; everything
 * else is byte-identical. The output depends only on (size, seed, next_day), and is pinned byte for byte: the
 * tests and the README's figures were measured on it.
 */
#ifndef DRE_GENDATA_H
#define DRE_GENDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Receives the stream in pieces: returns 0 for more, 1 when it has had enough (the generator stops early and
 * returns 0), or a negative error code, which the generator returns. */
typedef int (*gendata_sink)(void *arg, const void *data, size_t len);

/* The whole stream for (size, seed, next_day), in pieces of at most 64 KiB. */
int gendata_dump(uint64_t size, uint64_t seed, bool next_day, gendata_sink sink, void *arg);

/* The whole stream to fd (what dre-gendump prints); DRE_EIO naming what when a write fails. */
int gendata_dump_fd(int fd, uint64_t size, uint64_t seed, bool next_day, const char *what);

/* Exactly len bytes: the start of the stream generated for size = len. */
int gendata_dump_fill(uint8_t *buf, size_t len, uint64_t seed, bool next_day);

#endif
