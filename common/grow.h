/* Growing an array kept between uses (per classifier, per chunk slot). */
#ifndef CHAFF_GROW_H
#define CHAFF_GROW_H

#include <stdlib.h>

#include "chaff.h"

/* Room for n elements of size bytes at *p, whose capacity is *cap: the
 * first size asked for, then doubling, so a buffer reused for every
 * message stops growing once it fits the largest. CHAFF_OK or CHAFF_ENOMEM (then *p and
 * *cap are as they were). */
static inline int chaff_reserve(void **p, size_t *cap, size_t n, size_t size)
{
	if (n <= *cap)
		return CHAFF_OK;
	size_t c = *cap ? *cap : n;
	while (c < n)
		c *= 2;
	void *q = realloc(*p, c * size);
	if (!q)
		return CHAFF_ENOMEM;
	*p = q;
	*cap = c;
	return CHAFF_OK;
}

#endif
