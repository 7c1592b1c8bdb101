/*
 * bytes.h — little-endian encoding helpers and a growable byte buffer for building objects.
 * All multi-byte integers in dre's formats are little-endian (format-spec.md §Conventions).
 */
#ifndef DRE_BYTES_H
#define DRE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* A growable buffer for writing objects; on allocation failure it latches `failed` and ignores further
 * writes, so encoders check once at the end (buf_check). */
typedef struct buf {
	uint8_t *data;
	size_t len, cap;
	bool failed;
} buf;

bool buf_reserve(buf *b, size_t extra);
void buf_put(buf *b, const void *p, size_t n);
void buf_u8(buf *b, uint8_t v);
void buf_u16(buf *b, uint16_t v);
void buf_u32(buf *b, uint32_t v);
void buf_u64(buf *b, uint64_t v);
void buf_str16(buf *b, const char *s); /* u16 length + bytes; caller keeps strings ≤ 65535 bytes */
int buf_check(const buf *b, const char *what);
void buf_free(buf *b);

/*
 * Makes room for element n of a doubling array: items_ptr is the address of the array pointer (any element
 * type), *cap its capacity in elements of size bytes; the first allocation holds `first`. False when memory
 * runs out (the array is then unchanged).
 */
bool array_room(void *items_ptr, size_t *cap, size_t n, size_t size, size_t first);

/* A bounds-checked reader: every get fails (latches `failed`) past the end instead of reading out of bounds,
 * so decoders of untrusted bytes check once (rd_check) and name the object there. */
typedef struct rd {
	const uint8_t *p;
	size_t len, off;
	bool failed;
} rd;

static inline rd rd_make(const uint8_t *p, size_t len)
{
	rd r = {p, len, 0, false};
	return r;
}
const uint8_t *rd_take(rd *r, size_t n); /* NULL when fewer than n bytes remain */
uint8_t rd_u8(rd *r);
uint16_t rd_u16(rd *r);
uint32_t rd_u32(rd *r);
uint64_t rd_u64(rd *r);
/* A u16-length string, copied into a malloc'd NUL-terminated string (NULL on failure or embedded NUL). */
char *rd_str16(rd *r);

#endif
