#include "engine/pipeline/reader.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/err.h"

#define READER_DEPTH 8
#define READER_PIECE (1u << 20) /* one read request; large enough to amortise the syscall, small enough to overlap */

struct reader {
	struct io_uring ring;
	bool uring;
};

int reader_new(reader **out)
{
	reader *rd = calloc(1, sizeof *rd);
	if (rd == NULL)
		return err_set(DRE_ENOMEM, "cannot allocate the reader");
	const char *off = getenv("DRE_NO_IO_URING");
	if (off == NULL || *off == '\0' || strcmp(off, "0") == 0)
		rd->uring = io_uring_queue_init(READER_DEPTH, &rd->ring, 0) == 0;
	*out = rd;
	return 0;
}

void reader_free(reader *rd)
{
	if (rd == NULL)
		return;
	if (rd->uring)
		io_uring_queue_exit(&rd->ring);
	free(rd);
}

const char *reader_backend(const reader *rd)
{
	return rd->uring ? "io_uring" : "read(2)";
}

static int fill_plain(int fd, bool regular, uint64_t *pos, uint8_t *buf, size_t cap, size_t *got, bool *eof,
		      const char *name)
{
	size_t n = 0;
	*eof = false;
	while (n < cap) {
		ssize_t r = regular ? pread(fd, buf + n, cap - n, (off_t)*pos) : read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return err_sys("cannot read %s", name);
		}
		if (r == 0) {
			*eof = true;
			break;
		}
		n += (size_t)r;
		if (regular)
			*pos += (uint64_t)r;
	}
	*got = n;
	return 0;
}

/*
 * Returns 1 (nothing read) when io_uring cannot serve the file, after switching the reader to pread.
 * Splits [0, cap) into pieces and keeps up to READER_DEPTH reads in flight. The data is usable up to the first
 * short piece: a short read of a regular file means the end of it (or a concurrent truncation, handled the same
 * way by the next call, which then reads 0).
 */
static int fill_uring(reader *rd, int fd, uint64_t *pos, uint8_t *buf, size_t cap, size_t *got, bool *eof,
		      const char *name)
{
	size_t npieces = (cap + READER_PIECE - 1) / READER_PIECE;
	size_t submitted = 0, completed = 0, contiguous_end = SIZE_MAX;
	int first_err = 0;
	uint32_t piece_got[64];

	if (npieces > 64)
		npieces = 64, cap = 64 * (size_t)READER_PIECE;
	while (completed < npieces) {
		while (submitted < npieces && submitted - completed < READER_DEPTH && first_err == 0 &&
		       contiguous_end == SIZE_MAX) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);
			if (sqe == NULL)
				break;
			size_t off = submitted * READER_PIECE;
			size_t len = cap - off < READER_PIECE ? cap - off : READER_PIECE;
			io_uring_prep_read(sqe, fd, buf + off, (unsigned)len, *pos + off);
			io_uring_sqe_set_data64(sqe, submitted);
			submitted++;
		}
		if (submitted == completed)
			break; /* stopped submitting after an error or a short piece */
		int rc = io_uring_submit_and_wait(&rd->ring, 1);
		if (rc < 0 && rc != -EINTR) {
			errno = -rc;
			return err_sys("cannot read %s (io_uring)", name);
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&rd->ring, head, cqe)
		{
			size_t i = (size_t)io_uring_cqe_get_data64(cqe);
			size_t len = cap - i * READER_PIECE < READER_PIECE ? cap - i * READER_PIECE : READER_PIECE;
			if (cqe->res < 0) {
				if (first_err == 0)
					first_err = -cqe->res;
				piece_got[i] = 0;
			} else {
				piece_got[i] = (uint32_t)cqe->res;
				if ((size_t)cqe->res < len && i * READER_PIECE + (size_t)cqe->res < contiguous_end)
					contiguous_end = i * READER_PIECE + (size_t)cqe->res;
			}
			seen++;
		}
		io_uring_cq_advance(&rd->ring, seen);
		completed += seen;
	}
	if (first_err == EINVAL || first_err == EOPNOTSUPP || first_err == ENOSYS) {
		/* the ring exists but cannot read this file (an old kernel, an odd file system): use pread */
		rd->uring = false;
		*got = 0;
		*eof = false;
		return 1;
	}
	if (first_err != 0) {
		errno = first_err;
		return err_sys("cannot read %s", name);
	}
	size_t n = 0;
	for (size_t i = 0; i < completed; i++) {
		n += piece_got[i];
		if (n != (i + 1) * READER_PIECE)
			break;
	}
	if (n > cap)
		n = cap;
	*got = n;
	*pos += n;
	*eof = n == 0;
	return 0;
}

int reader_fill(reader *rd, int fd, bool regular, uint64_t *pos, uint8_t *buf, size_t cap, size_t *got, bool *eof,
		const char *name)
{
	if (!regular || !rd->uring)
		return fill_plain(fd, regular, pos, buf, cap, got, eof, name);
	size_t total = 0;
	*eof = false;
	while (total < cap && !*eof) {
		size_t n = 0;
		int rc = fill_uring(rd, fd, pos, buf + total, cap - total, &n, eof, name);
		TRY(rc);
		if (rc == 1) { /* io_uring turned out unusable: the rest through pread */
			TRY(fill_plain(fd, true, pos, buf + total, cap - total, &n, eof, name));
			total += n;
			break;
		}
		total += n;
	}
	*got = total;
	return 0;
}
