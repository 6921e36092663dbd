/*
 * The worker pool (cli/tokpool.c): a chunk is worked by the pool's
 * threads, whatever their number up to the 64 tokpool_cores() allows, and
 * the results are the same as one thread's.
 */
#include "test_util.h"

#include <unistd.h>

#include "cli/tokpool.h"

enum { MESSAGES = 64 };

static char msg[MESSAGES][4096];

static void make_messages(void)
{
	for (int i = 0; i < MESSAGES; i++)
		snprintf(msg[i], sizeof(msg[i]),
		         "From: a%d@example.org\nSubject: message %d\n\nwords of message number %d "
		         "and some more words after them\n",
		         i, i, i);
}

/* Runs a chunk of every message on a pool of threads threads, the caller
 * pausing before it joins in, so that the workers find the messages
 * first: how many of them were done by a worker, and the results' hashes
 * in *sum (order-sensitive). */
static int by_workers(unsigned threads, uint64_t *sum)
{
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	struct tokpool *p;
	assert_int_equal(tokpool_new(&p, &cfg, threads), CHAFF_OK);
	for (int i = 0; i < MESSAGES; i++)
		assert_int_equal(tokpool_add(p, msg[i], strlen(msg[i]), "m", CHAFF_SPAM), CHAFF_OK);
	assert_int_equal(tokpool_start(p), CHAFF_OK);
	usleep(200 * 1000);
	assert_int_equal(tokpool_wait(p), CHAFF_OK);
	int workers = 0;
	*sum = 0;
	for (int i = 0; i < MESSAGES; i++) {
		const struct tokpool_result *r = tokpool_result(p, (size_t)i);
		assert_int_equal(r->rc, CHAFF_OK);
		workers += r->thread != threads - 1;
		for (size_t k = 0; k < r->nhashes; k++)
			*sum = *sum * 31 + r->hashes[k];
	}
	tokpool_free(p);
	return workers;
}

static void test_every_thread_count_works(void **state)
{
	(void)state;
	make_messages();
	uint64_t one, sum;
	assert_int_equal(by_workers(1, &one), 0);
	static const unsigned counts[] = { 2, 3, 32, 33, 40, 64 };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		int w = by_workers(counts[i], &sum);
		if (w == 0)
			fail_msg("%u threads: every message done by the caller", counts[i]);
		assert_int_equal(sum, one);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_thread_count_works),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
