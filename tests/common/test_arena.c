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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alignment_and_isolation),
		cmocka_unit_test(test_big_allocations),
		cmocka_unit_test(test_bytes_and_trim),
		cmocka_unit_test(test_reset_reuses_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
