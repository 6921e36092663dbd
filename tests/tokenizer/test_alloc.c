/*
 * Allocation failure: for every N, the Nth allocation made while creating
 * a tokenizer and tokenizing messages fails. Each run must return an error
 * code or succeed, never crash, and leave no allocation behind.
 * malloc is replaced through glibc's __libc_* entry points, so this test
 * is not built with sanitizers, which own malloc themselves.
 */
#include "test_util.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static long fail_at = -1; /* fail the allocation with this number */
static long calls;
static long live;

static bool should_fail(void)
{
	return fail_at >= 0 && ++calls == fail_at;
}

__attribute__((visibility("default"))) void *malloc(size_t n)
{
	if (should_fail())
		return NULL;
	void *p = __libc_malloc(n);
	if (p)
		live++;
	return p;
}

__attribute__((visibility("default"))) void *calloc(size_t a, size_t b)
{
	if (should_fail())
		return NULL;
	void *p = __libc_calloc(a, b);
	if (p)
		live++;
	return p;
}

__attribute__((visibility("default"))) void *realloc(void *q, size_t n)
{
	if (should_fail())
		return NULL;
	void *p = __libc_realloc(q, n);
	if (p && !q)
		live++;
	return p;
}

__attribute__((visibility("default"))) void free(void *p)
{
	if (p)
		live--;
	__libc_free(p);
}

static const char *const messages[] = {
	"From: Joe <joe@example.com>\nSubject: =?utf-8?Q?caf=C3=A9?= deal\n"
	"Authentication-Results: mx.example.org; spf=pass; dkim=fail\n"
	"Received: from a.example.net ([192.0.2.1]) by b.example.org\n"
	"Content-Type: multipart/alternative; boundary=B\n\n--B\n"
	"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
	"SGVsbG8gd29ybGQsIGNoZWFwIHBpbGxzIGh0dHA6Ly9leGFtcGxlLmNvbS8=\n--B\n"
	"Content-Type: text/html; charset=windows-1252\n\n<p>Vi<!-- -->agra &eacute; "
	"<a href=\"http://x.example.com/\">here</a> \x93quoted\x94</p>\n--B--\n",
	"Subject: plain\n\nsome plain words and an address bob@example.org\n",
};

static int run_once(void)
{
	chaff_tokenizer *tok;
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	cfg.flags |= CHAFF_TOK_PAIRS;
	int rc = chaff_tokenizer_new(&cfg, &tok);
	if (rc != CHAFF_OK) {
		assert_true(rc == CHAFF_ENOMEM || rc == CHAFF_EPATTERN);
		return rc;
	}
	int worst = CHAFF_OK;
	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		struct chaff_tokens tk;
		rc = chaff_tokenize(tok, messages[i], strlen(messages[i]), &tk);
		assert_true(rc == CHAFF_OK || rc == CHAFF_ENOMEM);
		if (rc != CHAFF_OK)
			worst = rc;
	}
	chaff_tokenizer_free(tok);
	return worst;
}

static void test_every_allocation_fails_once(void **state)
{
	(void)state;
	/* One warm-up run lets libc set up whatever it keeps for good. */
	assert_int_equal(run_once(), CHAFF_OK);
	long n;
	for (n = 1; n < 100000; n++) {
		long before = live;
		calls = 0;
		fail_at = n;
		int rc = run_once();
		fail_at = -1;
		if (live != before)
			fail_msg("failing allocation %ld leaked %ld allocations", n, live - before);
		if (calls < n) { /* the run made fewer than n allocations */
			assert_int_equal(rc, CHAFF_OK);
			break;
		}
	}
	print_message("checked %ld allocation failures\n", n - 1);
	assert_true(n > 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_allocation_fails_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
