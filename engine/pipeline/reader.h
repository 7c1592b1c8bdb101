/*
 * reader.h — fills buffers from input files and pipes.
 *
 * Regular files are read through io_uring (liburing) with several positional reads in flight; pipes and
 * anything not seekable use read(2). When io_uring cannot be set up (old kernel, seccomp, DRE_NO_IO_URING=1 in
 * the environment) every read goes through read(2)/pread(2): slower, same results, and reader_backend() says
 * which one is active so push can report it.
 *
 * One reader belongs to one thread.
 */
#ifndef DRE_READER_H
#define DRE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct reader reader;

int reader_new(reader **out);
void reader_free(reader *rd);
const char *reader_backend(const reader *rd);

/*
 * Reads from fd into buf until cap bytes are there or the input ends. Regular files are read at *pos (advanced
 * by what was read); other fds at their current position. *got = bytes read, *eof = the input ended.
 * name is used in error messages.
 */
int reader_fill(reader *rd, int fd, bool regular, uint64_t *pos, uint8_t *buf, size_t cap, size_t *got, bool *eof,
		const char *name);

#endif
