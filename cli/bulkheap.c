/*
 * The heap of a bulk run: when a command has many messages ahead of it,
 * the C library's heap is set up for a large, short-lived process.
 *
 * On the virtual machines this filter is measured on, a page of memory
 * costs most the first time the process touches it (about 3 to 4 ms per
 * megabyte in 4 KB pages, about 2 in 2 MB pages; see "The first touch of
 * memory" in docs/performance.md), and training a mailbox touches 20 to
 * 30 MB: the tokenizers' arenas, the chunks of messages, LMDB's dirty
 * pages, the batch's tables. Backing the heap with 2 MB pages took about
 * a sixth off training on one core and a quarter on two. The settings:
 *  - the heap grows once by a step of 64 MB of address space (pages are
 *    still only backed when touched), and that stretch is advised to use
 *    2 MB pages; later growth is in the usual small steps, unadvised;
 *  - blocks up to 4 MB (a chunk of messages) come from the heap rather
 *    than from mappings of their own, and freed memory is kept for reuse
 *    instead of being given back;
 *  - the worker threads allocate from the same heap instead of arenas of
 *    their own in 4 KB pages (they allocate little, and seldom).
 * Commands call it once a run is plainly a bulk one: training (or
 * listing the tokens of) named files of 2 MB or more from the start (one
 * such message included), otherwise after 16 messages. A single message of ordinary size, as
 * procmail or a Sieve filter hands it over, never gets here. A process
 * under a data or address-space limit, or on a system that does not
 * overcommit, keeps the usual heap: the 64 MB step would count against
 * the limit. So does any C library other than glibc.
 */
#include "cli.h"
#include "common/bigmem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>

enum {
	STEP = 64 << 20,             /* the one large growth (address space) */
	LARGE = 4 << 20,             /* blocks from here up are mapped */
	PROBE = 1 << 20,             /* an allocation that makes the heap grow */
	DEFAULT_TOP_PAD = 128 << 10, /* glibc's own step */
	HUGE_PAGE = 2 << 20
};

/* True when reserving a 64 MB step could make a later allocation fail. */
static bool limited(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
		return true;
	if (getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
		return true;
	FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
	int mode = 0;
	if (f) {
		if (fscanf(f, "%d", &mode) != 1)
			mode = 0;
		fclose(f);
	}
	return mode == 2;
}

/* The block below the first 2 MB boundary: kept for good, and reachable
 * from here (a leak checker sees no leak). */
static void *filler;

/* The allocation that made the heap grow wrote the free top's header
 * 1 MB in, before the advice, and a 2 MB page can go nowhere a 4 KB page
 * already is: the first advised stretch would have 4 KB pages only. A
 * block is taken from the free top, the 2 MB stretches wholly inside it
 * are given back (to come again as 2 MB pages on their first touch), and
 * the block is freed. Only memory this block owns is given back: worker
 * threads may be allocating from the same heap meanwhile. */
static void give_back_first_pages(void)
{
	size_t n = 3 << 20; /* below LARGE: from the heap, not a mapping */
	char *volatile b = malloc(n); /* volatile: the pair is not elided */
	if (!b)
		return;
	uintptr_t a = ((uintptr_t)b + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	uintptr_t e = ((uintptr_t)b + n) / HUGE_PAGE * HUGE_PAGE;
	if (e > a)
		madvise((void *)a, e - a, MADV_DONTNEED);
	free(b);
}

void cli_bulk_heap(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	if (limited())
		return;
	/* glibc returns 0 for a setting it refuses: then nothing more */
	if (!mallopt(M_ARENA_MAX, 1) || !mallopt(M_MMAP_THRESHOLD, LARGE) ||
	    !mallopt(M_TRIM_THRESHOLD, 2 * STEP) || !mallopt(M_TOP_PAD, STEP))
		return;
	/* The stretch from the free top to the next 2 MB boundary can only
	 * have 4 KB pages, and the run would fill it first, at about 14
	 * microseconds a page here (classifying the corpus faulted it in
	 * page by page, nearly 500 times). A block that reaches up to the
	 * boundary is taken and never used: it costs address space, not
	 * memory. Then one allocation larger than the free top makes the heap
	 * grow by the step, and the heap from the boundary up is advised.
	 * When the heap did not grow (another allocator serves malloc, as
	 * under the sanitizers), nothing is advised. Worker threads may be
	 * allocating meanwhile (a run found to be bulk after some messages):
	 * they can only make the filler miss the boundary. */
	char *lo = sbrk(0);
	size_t keep = mallinfo2().keepcost; /* the free top's size; 0 under sanitizers */
	uintptr_t top = (uintptr_t)lo - (keep < (uintptr_t)lo ? keep : 0);
	char *from = (char *)((top + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
	if (lo != (char *)-1 && keep && (uintptr_t)from - top > 64 << 10)
		filler = malloc((uintptr_t)from - top - 64); /* 64: its header */
	void *volatile probe = malloc(PROBE); /* volatile: the pair is not elided */
	char *hi = sbrk(0);
	free(probe);
	mallopt(M_TOP_PAD, DEFAULT_TOP_PAD);
	if (probe && lo != (char *)-1 && hi != (char *)-1 && hi > lo && hi > from) {
		chaff_big_advise(from, (size_t)(hi - from) / HUGE_PAGE * HUGE_PAGE);
		give_back_first_pages();
	}
}
#else
void cli_bulk_heap(void)
{
}
#endif
