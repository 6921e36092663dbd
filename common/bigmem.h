/*
 * Large arrays (a training batch's token hashes and count table) in
 * anonymous memory the kernel is asked to back with 2 MB pages. Touching
 * fresh memory costs a page fault per 4 KB page, and on virtual machines a
 * fault is dear: the first training of a corpus spent a fifth of its
 * single writer's time in them. Sizes are the caller's to remember.
 */
#ifndef CHAFF_BIGMEM_H
#define CHAFF_BIGMEM_H

#include <stdbool.h>
#include <stddef.h>

/* n zeroed bytes, or NULL. */
void *chaff_big_alloc(size_t n);
/* Grows (or shrinks) p from old to n bytes, keeping the contents; the new
 * part is zeroed. NULL on failure, p untouched. A move copies. */
void *chaff_big_realloc(void *p, size_t old, size_t n);
/* The same for a buffer whose contents past old need not be zero and that
 * only grows: on Linux the pages are moved (mremap), not copied, so
 * growing a buffer of a hundred megabytes neither copies it nor holds it
 * twice. NULL on failure, p untouched. */
void *chaff_big_grow(void *p, size_t old, size_t n);
void chaff_big_free(void *p, size_t n);
/* A byte buffer for a message, or for a stretch of input: from malloc up
 * to CHAFF_BUF_SMALL bytes, then a mapping of its own that grows by
 * moving pages (chaff_big_grow) and is backed by 2 MB pages. Grown by
 * realloc, a 100 MB message was copied at each doubling and faulted in
 * 4 KB at a time. Zero-initialised is empty. */
enum { CHAFF_BUF_SMALL = 4 << 20 };
struct chaff_buf {
	char *p;
	size_t cap;
	bool mapped;
};
/* Room for n bytes, the first keep of them kept; an empty buffer starts
 * at first bytes (> 0) and doubles. CHAFF_OK or CHAFF_ENOMEM (then the
 * buffer is as it was). */
int chaff_buf_reserve(struct chaff_buf *b, size_t n, size_t keep, size_t first);
void chaff_buf_free(struct chaff_buf *b);
/* Asks for 2 MB pages for the whole 2 MB units inside [p, p + n), memory
 * allocated some other way (the heap of a bulk run); advice only. */
void chaff_big_advise(void *p, size_t n);
/* Room for n elements of size bytes at *p, whose capacity is *cap
 * elements: first elements at first, then doubling, as chaff_reserve
 * (common/grow.h) does for malloc'd arrays. CHAFF_OK or CHAFF_ENOMEM
 * (then *p and *cap are as they were). */
int chaff_big_reserve(void **p, size_t *cap, size_t n, size_t size, size_t first);

#endif
