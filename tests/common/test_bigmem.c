/* Growing buffers: struct chaff_buf from malloc to a mapping of its own,
 * and chaff_big_grow, keep what they hold. */
#include "test_util.h"

#include "common/bigmem.h"

/* Fills b's first n bytes with a pattern that tells every offset apart. */
static void fill(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(i * 7 + i / 4096);
}

static bool holds(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (char)(i * 7 + i / 4096))
			return false;
	return true;
}

static void test_buf_grows_and_keeps(void **state)
{
	(void)state;
	struct chaff_buf b = {0};
	assert_int_equal(chaff_buf_reserve(&b, 100, 0, 64), CHAFF_OK);
	assert_int_equal(b.cap, 128);
	assert_false(b.mapped);
	fill(b.p, 128);
	/* up to CHAFF_BUF_SMALL from malloc */
	assert_int_equal(chaff_buf_reserve(&b, CHAFF_BUF_SMALL, 128, 64), CHAFF_OK);
	assert_int_equal(b.cap, CHAFF_BUF_SMALL);
	assert_false(b.mapped);
	assert_true(holds(b.p, 128));
	fill(b.p, CHAFF_BUF_SMALL);
	/* beyond it, a mapping: the kept bytes are copied over once */
	assert_int_equal(chaff_buf_reserve(&b, CHAFF_BUF_SMALL + 1, CHAFF_BUF_SMALL, 64), CHAFF_OK);
	assert_true(b.mapped);
	assert_int_equal(b.cap, 2 * CHAFF_BUF_SMALL);
	assert_true(holds(b.p, CHAFF_BUF_SMALL));
	fill(b.p, b.cap);
	/* and it grows by moving pages: everything still there */
	size_t had = b.cap;
	assert_int_equal(chaff_buf_reserve(&b, 5 * CHAFF_BUF_SMALL, had, 64), CHAFF_OK);
	assert_int_equal(b.cap, 8 * CHAFF_BUF_SMALL);
	assert_true(holds(b.p, had));
	memset(b.p + had, 1, b.cap - had); /* the new part is writable */
	/* room already there: nothing moves */
	char *p = b.p;
	assert_int_equal(chaff_buf_reserve(&b, 10, 10, 64), CHAFF_OK);
	assert_ptr_equal(b.p, p);
	chaff_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.cap, 0);
	assert_false(b.mapped);
	/* an emptied buffer starts again from malloc */
	assert_int_equal(chaff_buf_reserve(&b, 10, 0, 64), CHAFF_OK);
	assert_false(b.mapped);
	chaff_buf_free(&b);
}

static void test_buf_refuses_the_impossible(void **state)
{
	(void)state;
	struct chaff_buf b = {0};
	assert_int_equal(chaff_buf_reserve(&b, 1000, 0, 64), CHAFF_OK);
	fill(b.p, 1000);
	char *p = b.p;
	assert_int_equal(chaff_buf_reserve(&b, SIZE_MAX, 1000, 64), CHAFF_ENOMEM);
	assert_ptr_equal(b.p, p);
	assert_int_equal(b.cap, 1024);
	assert_true(holds(b.p, 1000));
	chaff_buf_free(&b);
	chaff_buf_free(&b); /* twice: harmless */
}

static void test_big_grow(void **state)
{
	(void)state;
	size_t n = 3u << 20;
	char *p = chaff_big_alloc(n);
	assert_non_null(p);
	fill(p, n);
	char *q = chaff_big_grow(p, n, 40u << 20);
	assert_non_null(q);
	assert_true(holds(q, n));
	memset(q + n, 2, (40u << 20) - n);
	/* shrinking is not growing: the same block back */
	assert_ptr_equal(chaff_big_grow(q, 40u << 20, 1u << 20), q);
	chaff_big_free(q, 40u << 20);
	/* small blocks grow by a copy */
	p = chaff_big_alloc(1000);
	fill(p, 1000);
	q = chaff_big_grow(p, 1000, 5u << 20);
	assert_non_null(q);
	assert_true(holds(q, 1000));
	chaff_big_free(q, 5u << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_buf_grows_and_keeps),
	        cmocka_unit_test(test_buf_refuses_the_impossible),
	        cmocka_unit_test(test_big_grow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
