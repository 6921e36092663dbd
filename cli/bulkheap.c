/*
 * The heap of a bulk run: when a command has thousands of messages ahead
 * of it, the C library's heap is set up for a large, short-lived process.
 *
 * On the virtual machines this filter is measured on, a page of memory
 * costs most the first time the process touches it (about 3 to 4 ms per
 * megabyte in 4 KB pages, about 2 in 2 MB pages; see docs/performance.md),
 * and training a mailbox touches 20 to 30 MB: the tokenizers' arenas, the
 * chunks of messages, LMDB's dirty pages, the batch's tables. Backing the
 * heap with 2 MB pages took about a sixth off training on one core and a
 * quarter on two. The settings:
 *  - the heap grows in steps of 64 MB of address space (pages are still
 *    only backed when touched), and that stretch is advised to use 2 MB
 *    pages;
 *  - blocks up to 64 MB come from that heap instead of mappings of their
 *    own, and freed memory stays for reuse rather than being given back;
 *  - the worker threads allocate from the same heap instead of arenas of
 *    their own in 4 KB pages (they allocate little, and seldom).
 * A single message (procmail, a Sieve filter) never gets here: a 2 MB page
 * would cost it more than the few small pages it touches.
 */
#include "cli.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
	PAD = 64 << 20,             /* heap growth step (address space) */
	HUGE_PAGE = 2 << 20,        /* the alignment 2 MB pages need */
	PROBE = 1 << 20,            /* an allocation that makes the heap grow */
	DEFAULT_TOP_PAD = 128 << 10 /* the C library's own step */
};

void cli_bulk_heap(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, PAD);
	mallopt(M_TRIM_THRESHOLD, 4 * PAD);
	mallopt(M_TOP_PAD, PAD);
	/* One allocation larger than the heap's free top makes it grow by a
	 * whole step now, and that stretch is the one advised. When the top
	 * already had room (or another allocator serves malloc, as under the
	 * sanitizers), the heap stays in small pages; nothing else changes. */
	char *lo = sbrk(0);
	void *volatile probe = malloc(PROBE); /* volatile: the pair is not elided */
	char *hi = sbrk(0);
	free(probe);
	if (!probe) { /* no room for the step: back to the usual one */
		mallopt(M_TOP_PAD, DEFAULT_TOP_PAD);
		return;
	}
	if (lo == (char *)-1 || hi == (char *)-1 || hi <= lo)
		return;
	uintptr_t a = ((uintptr_t)lo + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	uintptr_t b = (uintptr_t)hi & ~(uintptr_t)(HUGE_PAGE - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_HUGEPAGE); /* advice only: THP may be off */
}
