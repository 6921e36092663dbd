/*
 * The bulk heap (cli/bulkheap.c) changes glibc's heap under a running
 * process: it must never touch memory that is in use. Each case runs in a
 * child process of its own, since the setup happens once per process:
 *  - the heap's free top starting exactly on a 2 MB boundary (its header
 *    there must survive);
 *  - a block written before the setup keeping its bytes;
 *  - another thread growing and shrinking blocks of the same heap all
 *    through the setup (as training's workers may), many times over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

enum { HUGE = 2 << 20 };

/* Runs fn in a child: true when it exited 0 (a heap assertion aborts). */
static bool in_child(int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn());
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Large blocks allocated, written and checked after the setup. */
static int heap_still_works(void)
{
	for (int i = 0; i < 64; i++) {
		char *p = malloc(300000);
		if (!p)
			return 3;
		memset(p, i, 300000);
		if (p[299999] != (char)i)
			return 4;
	}
	return 0;
}

static int top_on_boundary(void)
{
	/* blocks up to 4 MB from the heap, as the setup will have it */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	/* the setup reads this file first: its FILE and buffer, freed once
	 * here, are reused then and leave the free top where it is */
	FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
	int mode;
	if (f) {
		if (fscanf(f, "%d", &mode) != 1)
			mode = 0;
		fclose(f);
	}
	for (int i = 0; i < 4; i++) {
		uintptr_t top = (uintptr_t)sbrk(0) - mallinfo2().keepcost;
		size_t gap = (HUGE - top % HUGE) % HUGE;
		if (gap == 0)
			break;
		if (gap < 64)
			gap += HUGE;
		void *volatile b = malloc(gap - 16); /* a chunk's header: 16 bytes */
		(void)b;
	}
	uintptr_t top = (uintptr_t)sbrk(0) - mallinfo2().keepcost;
	if (top % HUGE != 0) { /* the case is not set up: say so, and fail */
		fprintf(stderr, "the free top (%#lx) is not on a 2 MB boundary\n",
		        (unsigned long)top);
		return 8;
	}
	cli_bulk_heap();
	if (mallinfo2().keepcost == 0)
		return 5; /* the free top's header was wiped */
	return heap_still_works();
}

static void test_top_on_a_boundary(void **state)
{
	(void)state;
	assert_true(in_child(top_on_boundary));
}

static int block_before_kept(void)
{
	unsigned char *p = malloc(1 << 20);
	if (!p)
		return 3;
	for (size_t i = 0; i < 1 << 20; i++)
		p[i] = (unsigned char)(i * 7);
	cli_bulk_heap();
	for (size_t i = 0; i < 1 << 20; i++)
		if (p[i] != (unsigned char)(i * 7))
			return 6;
	return heap_still_works();
}

static void test_block_written_before_is_kept(void **state)
{
	(void)state;
	assert_true(in_child(block_before_kept));
}

enum { BLOCKS = 64 };
static char *blocks[BLOCKS];
static atomic_bool stop, corrupt;

/* Grows blocks of the main heap into its free top and checks them. */
static void *churn(void *arg)
{
	(void)arg;
	for (unsigned k = 0; !atomic_load(&stop); k++) {
		unsigned i = k % BLOCKS;
		size_t n = 300000 + (k % 7) * 40000;
		char *q = realloc(blocks[i], n);
		if (!q)
			continue;
		memset(q, 0x5a, n);
		for (size_t j = 0; j < n; j += 4096)
			if (q[j] != 0x5a)
				atomic_store(&corrupt, true);
		if (q[n - 1] != 0x5a)
			atomic_store(&corrupt, true);
		blocks[i] = realloc(q, 64);
	}
	return NULL;
}

static int with_another_thread(void)
{
	for (int i = 0; i < BLOCKS; i++)
		blocks[i] = malloc(64);
	pthread_t th;
	if (pthread_create(&th, NULL, churn, NULL) != 0)
		return 0;
	usleep(1000 + (unsigned)(getpid() % 7) * 300);
	cli_bulk_heap();
	usleep(10000);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	return atomic_load(&corrupt) ? 7 : heap_still_works();
}

static void test_another_thread_allocating(void **state)
{
	(void)state;
	int failed = 0;
	for (int i = 0; i < 150; i++)
		failed += !in_child(with_another_thread);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_top_on_a_boundary),
	        cmocka_unit_test(test_block_written_before_is_kept),
	        cmocka_unit_test(test_another_thread_allocating),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
