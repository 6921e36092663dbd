#include "bigmem.h"

#include <sys/mman.h>

void *chaff_big_alloc(size_t n)
{
	if (n == 0)
		n = 1;
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, n, MADV_HUGEPAGE); /* advice only: without THP, 4 KB pages */
	return p;
}

void *chaff_big_realloc(void *p, size_t old, size_t n)
{
	if (!p)
		return chaff_big_alloc(n);
	void *q = mremap(p, old, n, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return NULL;
	madvise(q, n, MADV_HUGEPAGE);
	return q;
}

void chaff_big_free(void *p, size_t n)
{
	if (p)
		munmap(p, n ? n : 1);
}
