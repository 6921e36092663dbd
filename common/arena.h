/*
 * A bump allocator for per-message work. Allocation is a pointer increment;
 * chaff_arena_reset() makes all of it reusable at once, so tokenizing a
 * message costs no malloc per token once the arena has grown to fit.
 */
#ifndef CHAFF_ARENA_H
#define CHAFF_ARENA_H

#include <stddef.h>

struct chaff_arena_block;

struct chaff_arena {
	struct chaff_arena_block *head; /* block being filled */
	struct chaff_arena_block *spare; /* emptied blocks kept for reuse */
	size_t keep;                    /* bytes of spare blocks kept on reset */
};

void chaff_arena_init(struct chaff_arena *a);
void chaff_arena_free(struct chaff_arena *a);
/* Forgets every allocation; keeps up to a->keep bytes of blocks. */
void chaff_arena_reset(struct chaff_arena *a);
/* n bytes aligned to 8, or NULL when out of memory. */
void *chaff_arena_alloc(struct chaff_arena *a, size_t n);
/* Grows the most recent allocation p (of old bytes) to n bytes, in place
 * when it fits, else by copying. Returns NULL when out of memory. */
void *chaff_arena_grow(struct chaff_arena *a, void *p, size_t old, size_t n);

#endif
