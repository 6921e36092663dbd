#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { ARENA_MIN_BLOCK = 64 * 1024, ARENA_DEFAULT_KEEP = 4 * 1024 * 1024 };

void chaff_arena_init(struct chaff_arena *a)
{
	a->head = NULL;
	a->spare = NULL;
	a->keep = ARENA_DEFAULT_KEEP;
	a->held = a->peak = 0;
}

static void free_list(struct chaff_arena *a, struct chaff_arena_block *b)
{
	while (b) {
		struct chaff_arena_block *next = b->next;
		a->held -= b->size;
		free(b);
		b = next;
	}
}

void chaff_arena_free(struct chaff_arena *a)
{
	free_list(a, a->head);
	free_list(a, a->spare);
	a->head = a->spare = NULL;
}

/* The block b, emptied: kept as a spare within the keep budget, else
 * freed. */
static void give_back(struct chaff_arena *a, struct chaff_arena_block *b, size_t *kept)
{
	if (*kept + b->size <= a->keep) {
		b->used = 0;
		b->next = a->spare;
		a->spare = b;
		*kept += b->size;
	} else {
		a->held -= b->size;
		free(b);
	}
}

static size_t spare_bytes(const struct chaff_arena *a)
{
	size_t kept = 0;
	for (const struct chaff_arena_block *b = a->spare; b; b = b->next)
		kept += b->size;
	return kept;
}

/* Moves the used blocks to the spare list, dropping the ones beyond the
 * keep budget so that one huge message does not pin its memory forever. */
void chaff_arena_reset(struct chaff_arena *a)
{
	size_t kept = spare_bytes(a);
	struct chaff_arena_block *b = a->head;
	a->head = NULL;
	while (b) {
		struct chaff_arena_block *next = b->next;
		give_back(a, b, &kept);
		b = next;
	}
}

void chaff_arena_release(struct chaff_arena *a, struct chaff_arena_mark m)
{
	/* (most entities take no block of their own: no spare count then) */
	size_t kept = a->head != m.head ? spare_bytes(a) : 0;
	while (a->head && a->head != m.head) {
		struct chaff_arena_block *b = a->head;
		a->head = b->next;
		give_back(a, b, &kept);
	}
	if (a->head)
		a->head->used = m.used;
}

static struct chaff_arena_block *take_block(struct chaff_arena *a, size_t n)
{
	struct chaff_arena_block **pp = &a->spare;
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->size >= n) {
			struct chaff_arena_block *b = *pp;
			*pp = b->next;
			return b;
		}
	}
	size_t size = n < ARENA_MIN_BLOCK ? ARENA_MIN_BLOCK : n;
	if (size > SIZE_MAX - sizeof(struct chaff_arena_block))
		return NULL;
	struct chaff_arena_block *b = malloc(sizeof(*b) + size);
	if (!b)
		return NULL;
	b->size = size;
	b->used = 0;
	a->held += size;
	if (a->held > a->peak)
		a->peak = a->held;
	return b;
}

void *chaff_arena_alloc(struct chaff_arena *a, size_t n)
{
	size_t need = (n + 7) & ~(size_t)7;
	if (need < n)
		return NULL;
	struct chaff_arena_block *b = a->head;
	if (b)
		b->used = (b->used + 7) & ~(size_t)7; /* after unaligned text */
	if (b && b->used > b->size)
		b->used = b->size;
	if (!b || b->size - b->used < need) {
		/* A big request gets a block of its own sized to it; the
		 * current block stays in front for the small ones after it. */
		size_t want = need;
		if (b && want < b->size * 2 && want < ARENA_MIN_BLOCK * 16)
			want = b->size * 2 < ARENA_MIN_BLOCK * 16 ? b->size * 2
			                                          : ARENA_MIN_BLOCK * 16;
		if (want < need)
			want = need;
		struct chaff_arena_block *nb = take_block(a, want);
		if (!nb)
			return NULL;
		nb->next = a->head;
		a->head = nb;
		b = nb;
	}
	void *p = b->data + b->used;
	b->used += need;
	return p;
}

void *chaff_arena_bytes_slow(struct chaff_arena *a, size_t n)
{
	void *p = chaff_arena_alloc(a, n);
	if (p) /* text is packed: give back the alignment padding */
		chaff_arena_trim(a, p, n);
	return p;
}
