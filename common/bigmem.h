/*
 * Large arrays (a training batch's token hashes and count table) in
 * anonymous memory the kernel is asked to back with 2 MB pages. Touching
 * fresh memory costs a page fault per 4 KB page, and on virtual machines a
 * fault is dear: the first training of a corpus spent a fifth of its
 * single writer's time in them. Sizes are the caller's to remember.
 */
#ifndef CHAFF_BIGMEM_H
#define CHAFF_BIGMEM_H

#include <stddef.h>

/* n zeroed bytes, or NULL. */
void *chaff_big_alloc(size_t n);
/* Grows (or shrinks) p from old to n bytes, keeping the contents; the new
 * part is zeroed. NULL on failure, p untouched. A move copies. */
void *chaff_big_realloc(void *p, size_t old, size_t n);
void chaff_big_free(void *p, size_t n);
/* Asks for 2 MB pages for the whole 2 MB units inside [p, p + n), memory
 * allocated some other way (the heap of a bulk run); advice only. */
void chaff_big_advise(void *p, size_t n);
/* Room for n elements of size bytes at *p, whose capacity is *cap
 * elements: first elements at first, then doubling, as chaff_reserve
 * (common/grow.h) does for malloc'd arrays. CHAFF_OK or CHAFF_ENOMEM
 * (then *p and *cap are as they were). */
int chaff_big_reserve(void **p, size_t *cap, size_t n, size_t size, size_t first);

#endif
