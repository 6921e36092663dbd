/* A growable byte buffer: the SMTP front end's input, output and message
 * bodies. Growth doubles, so appending is amortised O(1). */
#ifndef CHAFF_SERVE_BUF_H
#define CHAFF_SERVE_BUF_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *p;
	size_t len, cap;
};

/* Room for n more bytes; false when out of memory (nothing changed). */
static inline bool buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n) {
		if (cap > (size_t)-1 / 2)
			return false;
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p)
		return false;
	b->p = p;
	b->cap = cap;
	return true;
}

static inline bool buf_add(struct buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n))
		return false;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return true;
}

static inline bool buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* Drops the first n bytes. */
static inline void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static inline void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){ 0 };
}

#endif
