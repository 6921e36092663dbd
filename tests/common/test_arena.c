/* The per-message arena: alignment, growth in place, reset and reuse. */
#include "test_util.h"

#include "common/arena.h"

static void test_alignment_and_isolation(void **state)
{
	(void)state;
	struct chaff_arena a;
	chaff_arena_init(&a);
	char *p[100];
	for (int i = 0; i < 100; i++) {
		p[i] = chaff_arena_alloc(&a, (size_t)i + 1);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % 8, 0);
		memset(p[i], i, (size_t)i + 1);
	}
	for (int i = 0; i < 100; i++)
		for (int k = 0; k <= i; k++)
			assert_int_equal((unsigned char)p[i][k], i);
	chaff_arena_free(&a);
}

static void test_big_allocations(void **state)
{
	(void)state;
	struct chaff_arena a;
	chaff_arena_init(&a);
	char *small = chaff_arena_alloc(&a, 10);
	char *big = chaff_arena_alloc(&a, 10u << 20);
	assert_non_null(small);
	assert_non_null(big);
	memset(big, 1, 10u << 20);
	char *after = chaff_arena_alloc(&a, 10);
	assert_non_null(after);
	assert_int_equal(big[(10u << 20) - 1], 1);
	/* The 10 MiB block is beyond the keep budget: reset releases it, and
	 * the arena still serves small and big requests afterwards. */
	chaff_arena_reset(&a);
	assert_non_null(chaff_arena_alloc(&a, 10));
	assert_non_null(chaff_arena_alloc(&a, 5u << 20));
	chaff_arena_free(&a);
}

static void test_bytes_and_trim(void **state)
{
	(void)state;
	struct chaff_arena a;
	chaff_arena_init(&a);
	char *p = chaff_arena_bytes(&a, 3);
	memcpy(p, "abc", 3);
	char *q = chaff_arena_bytes(&a, 100);
	assert_ptr_equal(q, p + 3); /* text is packed, not aligned */
	chaff_arena_trim(&a, q, 5);  /* keep 5 of the 100 bytes */
	char *r = chaff_arena_bytes(&a, 1);
	assert_ptr_equal(r, q + 5);
	/* an aligned allocation after unaligned text is aligned again */
	void *al = chaff_arena_alloc(&a, 8);
	assert_int_equal((uintptr_t)al % 8, 0);
	assert_memory_equal(p, "abc", 3);
	chaff_arena_free(&a);
}

static void test_reset_reuses_memory(void **state)
{
	(void)state;
	struct chaff_arena a;
	chaff_arena_init(&a);
	char *first = chaff_arena_alloc(&a, 100);
	chaff_arena_reset(&a);
	char *again = chaff_arena_alloc(&a, 100);
	assert_ptr_equal(first, again);
	chaff_arena_free(&a);
}

/* Marks nest: a release gives back what came after its mark, blocks of
 * their own included, and keeps what came before, which the arena goes
 * on filling. held and peak count the blocks' bytes. */
static void test_mark_and_release(void **state)
{
	(void)state;
	struct chaff_arena a;
	chaff_arena_init(&a);
	struct chaff_arena_mark empty = chaff_arena_mark(&a);
	char *keep = chaff_arena_alloc(&a, 100);
	assert_non_null(keep);
	memset(keep, 7, 100);
	struct chaff_arena_mark outer = chaff_arena_mark(&a);
	char *x = chaff_arena_alloc(&a, 50);
	struct chaff_arena_mark inner = chaff_arena_mark(&a);
	for (int i = 0; i < 8; i++) /* 8 MiB: past the keep budget */
		memset(chaff_arena_alloc(&a, 1u << 20), 1, 1u << 20);
	size_t big = a.held;
	assert_true(big >= 8u << 20);
	assert_true(a.peak >= big);
	chaff_arena_release(&a, inner);
	assert_true(a.held < big);
	/* the next allocation comes right after x, in the same block */
	char *y = chaff_arena_alloc(&a, 8);
	assert_ptr_equal(y, x + 56);
	chaff_arena_release(&a, outer);
	assert_ptr_equal(chaff_arena_alloc(&a, 50), x);
	for (int k = 0; k < 100; k++)
		assert_int_equal(keep[k], 7);
	chaff_arena_release(&a, empty);
	assert_null(a.head);
	assert_true(a.peak >= big);
	assert_non_null(chaff_arena_alloc(&a, 10));
	chaff_arena_free(&a);
	assert_int_equal(a.held, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_alignment_and_isolation),
	        cmocka_unit_test(test_big_allocations),
	        cmocka_unit_test(test_bytes_and_trim),
	        cmocka_unit_test(test_reset_reuses_memory),
	        cmocka_unit_test(test_mark_and_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
