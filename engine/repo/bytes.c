#include "engine/repo/bytes.h"

#include <stdlib.h>

#include "store/err.h"

bool buf_reserve(buf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (b->len + extra <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void buf_put(buf *b, const void *p, size_t n)
{
	if (n == 0 || !buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void buf_u8(buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

void buf_u16(buf *b, uint16_t v)
{
	uint8_t t[2];
	put_le16(t, v);
	buf_put(b, t, 2);
}

void buf_u32(buf *b, uint32_t v)
{
	uint8_t t[4];
	put_le32(t, v);
	buf_put(b, t, 4);
}

void buf_u64(buf *b, uint64_t v)
{
	uint8_t t[8];
	put_le64(t, v);
	buf_put(b, t, 8);
}

void buf_str16(buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n > UINT16_MAX)
		n = UINT16_MAX;
	buf_u16(b, (uint16_t)n);
	buf_put(b, s, n);
}

int buf_check(const buf *b, const char *what)
{
	if (b->failed)
		return err_set(DRE_ENOMEM, "cannot allocate memory for %s", what);
	return 0;
}

void buf_free(buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

bool array_room(void *items_ptr, size_t *cap, size_t n, size_t size, size_t first)
{
	void *items;
	if (n < *cap)
		return true;
	size_t grown = *cap ? *cap * 2 : first;
	memcpy(&items, items_ptr, sizeof items); /* items_ptr may point to any object pointer type */
	/* cppcheck-suppress memleakOnRealloc ; items is a copy: *items_ptr still holds the block on failure */
	items = realloc(items, grown * size);
	if (items == NULL)
		return false;
	memcpy(items_ptr, &items, sizeof items);
	*cap = grown;
	return true;
}

const uint8_t *rd_take(rd *r, size_t n)
{
	if (r->failed || r->len - r->off < n) {
		r->failed = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t rd_u8(rd *r)
{
	const uint8_t *p = rd_take(r, 1);
	return p ? p[0] : 0;
}

uint16_t rd_u16(rd *r)
{
	const uint8_t *p = rd_take(r, 2);
	return p ? get_le16(p) : 0;
}

uint32_t rd_u32(rd *r)
{
	const uint8_t *p = rd_take(r, 4);
	return p ? get_le32(p) : 0;
}

uint64_t rd_u64(rd *r)
{
	const uint8_t *p = rd_take(r, 8);
	return p ? get_le64(p) : 0;
}

char *rd_str16(rd *r)
{
	uint16_t n = rd_u16(r);
	const uint8_t *p = rd_take(r, n);
	if (p == NULL || memchr(p, 0, n) != NULL) {
		r->failed = true;
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (s == NULL) {
		r->failed = true;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}
