/*
 * Copies of a few bytes without a call: tokens and their prefixes are
 * mostly shorter than 16 bytes, and a call to memcpy for each costs more
 * than the copy.
 */
#ifndef CHAFF_SMALLCOPY_H
#define CHAFF_SMALLCOPY_H

#include <stddef.h>
#include <string.h>

/* Copies n bytes, by two overlapping moves of a fixed size when n is at
 * most 16; reads and writes only s[0..n) and d[0..n). */
static inline void chaff_copy_small(char *d, const char *s, size_t n)
{
	if (n > 16) {
		memcpy(d, s, n);
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

#endif
