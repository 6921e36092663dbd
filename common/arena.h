/*
 * A bump allocator for per-message work. Allocation is a pointer increment;
 * chaff_arena_reset() makes all of it reusable at once, so tokenizing a
 * message costs no malloc per token once the arena has grown to fit.
 */
#ifndef CHAFF_ARENA_H
#define CHAFF_ARENA_H

#include <stddef.h>

struct chaff_arena_block {
	struct chaff_arena_block *next;
	size_t size; /* usable bytes in data */
	size_t used;
	_Alignas(8) unsigned char data[];
};

struct chaff_arena {
	struct chaff_arena_block *head;  /* block being filled */
	struct chaff_arena_block *spare; /* emptied blocks kept for reuse */
	size_t keep;                     /* bytes of spare blocks kept on reset */
	size_t held, peak;               /* bytes of blocks held now, and at most */
};

void chaff_arena_init(struct chaff_arena *a);
void chaff_arena_free(struct chaff_arena *a);
/* Forgets every allocation; keeps up to a->keep bytes of blocks. */
void chaff_arena_reset(struct chaff_arena *a);
/* n bytes aligned to 8, or NULL when out of memory. */
void *chaff_arena_alloc(struct chaff_arena *a, size_t n);
/* The slow path of chaff_arena_bytes: a new block. */
void *chaff_arena_bytes_slow(struct chaff_arena *a, size_t n);

/* Where an arena stands: chaff_arena_release() gives back everything
 * allocated after it, keeping what came before (marks nest like a
 * stack). */
struct chaff_arena_mark {
	struct chaff_arena_block *head;
	size_t used;
};

static inline struct chaff_arena_mark chaff_arena_mark(const struct chaff_arena *a)
{
	return (struct chaff_arena_mark){a->head, a->head ? a->head->used : 0};
}

void chaff_arena_release(struct chaff_arena *a, struct chaff_arena_mark m);

/* n bytes with no alignment, for text. Inline: it runs once per token. */
static inline char *chaff_arena_bytes(struct chaff_arena *a, size_t n)
{
	struct chaff_arena_block *b = a->head;
	if (b && b->size - b->used >= n) {
		char *p = (char *)b->data + b->used;
		b->used += n;
		return p;
	}
	return chaff_arena_bytes_slow(a, n);
}

/* Gives back the tail of the most recent allocation p, keeping n bytes. */
static inline void chaff_arena_trim(struct chaff_arena *a, void *p, size_t n)
{
	struct chaff_arena_block *b = a->head;
	b->used = (size_t)((unsigned char *)p - b->data) + n;
}

#endif
