/*
 * A message's distinct token hashes: an open-addressing set in a buffer
 * kept between messages, small enough to stay in the core's cache. Cheaper
 * than sorting the tokens to find repeats (a sort with a comparison call
 * per step was a quarter of scoring).
 */
#ifndef CHAFF_HASHSET_H
#define CHAFF_HASHSET_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "grow.h"

struct hashset {
	uint64_t *slot; /* 0 marks a free place ... */
	size_t cap, mask;
	bool zero; /* ... so hash 0 is kept here */
};

/* Empties the set, with room for n hashes: CHAFF_OK or CHAFF_ENOMEM. */
static inline int hashset_clear(struct hashset *s, size_t n)
{
	size_t want = 64;
	while (want < 2 * n)
		want *= 2;
	size_t cap = s->cap;
	if (want > cap && chaff_reserve((void **)&s->slot, &cap, want, sizeof(*s->slot)))
		return CHAFF_ENOMEM;
	s->cap = cap;
	s->mask = want - 1;
	s->zero = false;
	memset(s->slot, 0, want * sizeof(*s->slot));
	return CHAFF_OK;
}

/* Adds h; true when it was not there yet. */
static inline bool hashset_add(struct hashset *s, uint64_t h)
{
	if (h == 0) {
		bool fresh = !s->zero;
		s->zero = true;
		return fresh;
	}
	size_t i = (size_t)(h ^ h >> 32) & s->mask;
	while (s->slot[i] && s->slot[i] != h)
		i = (i + 1) & s->mask;
	if (s->slot[i])
		return false;
	s->slot[i] = h;
	return true;
}

#endif
