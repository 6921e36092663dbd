#include "bigmem.h"

#include "chaff.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A 2 MB page only backs a 2 MB-aligned stretch: arrays of 1 MB and more
 * are mapped on that alignment, in whole 2 MB units, so that all of them
 * can be. Smaller ones are mapped as they are. */
enum { HUGE = 2u << 20 };

static size_t span(size_t n)
{
	if (n == 0)
		return 1;
	return n < HUGE / 2 ? n : (n + HUGE - 1) / HUGE * HUGE;
}

void *chaff_big_alloc(size_t n)
{
	size_t len = span(n);
	if (len < HUGE) {
		void *p =
		        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	char *p =
	        mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	size_t head = (HUGE - (uintptr_t)p % HUGE) % HUGE;
	if (head)
		munmap(p, head);
	if (HUGE - head)
		munmap(p + head + len, HUGE - head);
	madvise(p + head, len, MADV_HUGEPAGE); /* advice only: without THP, 4 KB pages */
	return p + head;
}

void *chaff_big_realloc(void *p, size_t old, size_t n)
{
	if (!p)
		return chaff_big_alloc(n);
	if (span(n) == span(old)) {
		if (n > old) /* the part given back by a shrink may hold old data */
			memset((char *)p + old, 0, n - old);
		return p;
	}
	void *q = chaff_big_alloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	chaff_big_free(p, old);
	return q;
}

void *chaff_big_grow(void *p, size_t old, size_t n)
{
	if (!p)
		return chaff_big_alloc(n);
	if (span(n) <= span(old))
		return p;
#ifdef MREMAP_MAYMOVE
	if (span(old) >= HUGE) { /* a whole mapping of its own, from chaff_big_alloc */
		void *q = mremap(p, span(old), span(n), MREMAP_MAYMOVE);
		if (q == MAP_FAILED)
			return NULL;
		madvise(q, span(n), MADV_HUGEPAGE); /* advice only */
		return q;
	}
#endif
	return chaff_big_realloc(p, old, n);
}

void chaff_big_advise(void *p, size_t n)
{
	uintptr_t a = ((uintptr_t)p + HUGE - 1) / HUGE * HUGE;
	uintptr_t b = ((uintptr_t)p + n) / HUGE * HUGE;
	if (b > a)
		madvise((void *)a, b - a, MADV_HUGEPAGE); /* without THP, 4 KB pages */
}

void chaff_big_free(void *p, size_t n)
{
	if (p)
		munmap(p, span(n));
}

int chaff_big_reserve(void **p, size_t *cap, size_t n, size_t size, size_t first)
{
	if (n <= *cap)
		return CHAFF_OK;
	size_t c = *cap ? *cap : first;
	while (c < n)
		c *= 2;
	void *q = chaff_big_realloc(*p, *cap * size, c * size);
	if (!q)
		return CHAFF_ENOMEM;
	*p = q;
	*cap = c;
	return CHAFF_OK;
}

int chaff_buf_reserve(struct chaff_buf *b, size_t n, size_t keep, size_t first)
{
	if (b->cap >= n)
		return CHAFF_OK;
	size_t cap = b->cap ? b->cap : first;
	while (cap < n) {
		if (cap > SIZE_MAX / 2)
			return CHAFF_ENOMEM;
		cap *= 2;
	}
	char *q;
	if (cap <= CHAFF_BUF_SMALL) {
		q = realloc(b->p, cap);
	} else if (b->mapped) {
		q = chaff_big_grow(b->p, b->cap, cap);
	} else {
		q = chaff_big_alloc(cap);
		if (q) {
			if (keep) /* (an empty buffer has no p to copy from) */
				memcpy(q, b->p, keep);
			free(b->p);
		}
	}
	if (!q)
		return CHAFF_ENOMEM;
	b->p = q;
	b->cap = cap;
	b->mapped = cap > CHAFF_BUF_SMALL;
	return CHAFF_OK;
}

void chaff_buf_free(struct chaff_buf *b)
{
	if (b->mapped)
		chaff_big_free(b->p, b->cap);
	else
		free(b->p);
	*b = (struct chaff_buf){0};
}
