/*
 * Searching text for two bytes in a row ("Fr" of an mbox's "From ", the
 * "\n-" of a MIME boundary line, the "=?" of an encoded word): the first
 * byte alone is too common to stop at, so with SSE2 the pair is tested
 * at sixteen or thirty-two places at a time.
 */
#ifndef CHAFF_FINDPAIR_H
#define CHAFF_FINDPAIR_H

#include <stddef.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The first a immediately followed by b in [s, end), or NULL. */
static inline const char *chaff_find_pair(const char *s, const char *end, char a, char b)
{
#ifdef __SSE2__
	const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b);
	for (; end - s >= 33; s += 32) { /* 32 places a turn, then 16 */
		__m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)s);
		__m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)(s + 1));
		__m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
		__m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(s + 17));
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a0, va),
		                                                       _mm_cmpeq_epi8(b0, vb))) |
		             (unsigned)_mm_movemask_epi8(
		                     _mm_and_si128(_mm_cmpeq_epi8(a1, va), _mm_cmpeq_epi8(b1, vb)))
		                     << 16;
		if (m)
			return s + __builtin_ctz(m);
	}
	for (; end - s >= 17; s += 16) {
		__m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)s);
		__m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)(s + 1));
		unsigned m = (unsigned)_mm_movemask_epi8(
		        _mm_and_si128(_mm_cmpeq_epi8(a0, va), _mm_cmpeq_epi8(b0, vb)));
		if (m)
			return s + __builtin_ctz(m);
	}
#endif
	for (; end - s >= 2; s++)
		if (s[0] == a && s[1] == b)
			return s;
	return NULL;
}

#endif
