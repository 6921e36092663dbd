/*
 * The verdict headers (cli/tag.c): X-Spam-Level's stars agree with the
 * verdict at the cutoff's edge, and the headers go where the tokenizer's
 * header block ends.
 */
#include "test_util.h"

#include "cli/tag.h"

struct sink {
	char buf[4096];
	size_t n;
};

static int put(void *user, const char *p, size_t n)
{
	struct sink *s = user;
	if (s->n + n >= sizeof(s->buf))
		return -1;
	memcpy(s->buf + s->n, p, n);
	s->n += n;
	s->buf[s->n] = '\0';
	return 0;
}

/* The X-Spam-Level value chaff writes for this score. */
static const char *level(double score, double cutoff, enum chaff_verdict v, struct sink *s)
{
	static const char msg[] = "Subject: s\n\nbody\n";
	struct chaff_score sc = {.score = score, .spam_cutoff = cutoff, .ham_cutoff = 0, .verdict = v};
	s->n = 0;
	assert_int_equal(cli_tag_message(msg, sizeof(msg) - 1, &sc, put, s), 0);
	char *l = strstr(s->buf, "X-Spam-Level: ");
	assert_non_null(l);
	l += strlen("X-Spam-Level: ");
	l[strcspn(l, "\n")] = '\0';
	return l;
}

static void test_stars_follow_the_verdict(void **state)
{
	(void)state;
	struct sink s;
	/* a hair below the cutoff is not spam: four stars, not five */
	assert_string_equal(level(0.6 - 1e-12, 0.6, CHAFF_VERDICT_UNSURE, &s), "****");
	assert_string_equal(level(0.9990606653, 0.9990606654, CHAFF_VERDICT_UNSURE, &s), "****");
	/* at the cutoff it is: five */
	assert_string_equal(level(0.6, 0.6, CHAFF_VERDICT_SPAM, &s), "*****");
	assert_string_equal(level(0.3, 0.6, CHAFF_VERDICT_HAM, &s), "**");
	assert_string_equal(level(1.0, 0.1, CHAFF_VERDICT_SPAM, &s),
	                    "**************************************************");
	/* a cutoff of 0 calls everything spam */
	assert_string_equal(level(0.0, 0.0, CHAFF_VERDICT_SPAM, &s),
	                    "**************************************************");
}

/* The message with the headers added, and where the first of them is. */
static const char *tagged(const char *msg, struct sink *s)
{
	struct chaff_score sc = {.score = 0.1, .spam_cutoff = 0.6, .ham_cutoff = 0.3,
	                         .verdict = CHAFF_VERDICT_HAM};
	s->n = 0;
	assert_int_equal(cli_tag_message(msg, strlen(msg), &sc, put, s), 0);
	const char *h = strstr(s->buf, "X-Spam-Status: ");
	assert_non_null(h);
	return h;
}

static void test_headers_where_the_tokenizer_ends_the_block(void **state)
{
	(void)state;
	struct sink s;
	const char *h = tagged("Subject: s\nFrom: a@b\n\nbody\n", &s);
	assert_int_equal(h - s.buf, strlen("Subject: s\nFrom: a@b\n"));
	assert_non_null(strstr(s.buf, "X-Chaff-Verdict: ham\n\nbody\n"));
	/* an odd line before the blank line: before it, nothing added after */
	h = tagged("Subject: s\nodd line\nX-Spam-Status: Yes, forged\nFrom: a@b\n\nbody\n", &s);
	assert_int_equal(h - s.buf, strlen("Subject: s\n"));
	assert_non_null(strstr(s.buf, "X-Chaff-Verdict: ham\nodd line\nFrom: a@b\n\nbody\n"));
	assert_null(strstr(s.buf, "forged"));
	/* no blank line at all: a blank line after the new headers */
	h = tagged("Subject: s\nbody text: here\nmore\n", &s);
	assert_int_equal(h - s.buf, strlen("Subject: s\n"));
	assert_non_null(strstr(s.buf, "X-Chaff-Verdict: ham\n\nbody text: here\nmore\n"));
	/* a line led by white space where the block ends stays out of the
	 * new headers, blank line or not: it would continue the last one */
	tagged(" ham\nSubject: s\n\nbody\n", &s);
	assert_non_null(strstr(s.buf, "X-Chaff-Verdict: ham\n\n ham\nSubject: s\n\nbody\n"));
	/* ... and what follows is body, copied as it is */
	tagged(" ham\nX-Spam-Status: Yes\n\nbody\n", &s);
	assert_non_null(
	        strstr(s.buf, "X-Chaff-Verdict: ham\n\n ham\nX-Spam-Status: Yes\n\nbody\n"));
	tagged("\tham\nSubject: s\nbody\n", &s);
	assert_non_null(strstr(s.buf, "X-Chaff-Verdict: ham\n\n\tham\nSubject: s\nbody\n"));
	tagged("From x  Mon Jan  1 00:00:00 2000\n\tham\nSubject: a\n\nb\n", &s);
	assert_non_null(strstr(s.buf, "X-Chaff-Verdict: ham\n\n\tham\nSubject: a\n\nb\n"));
	/* an 8-bit byte in a name is no field, for the tokenizer either */
	h = tagged("Subject: s\nN\xc3\xa4me: x\n\nbody\n", &s);
	assert_int_equal(h - s.buf, strlen("Subject: s\n"));
}

/* The tagged copy of a message is the same message to the digest, for
 * any layout of its header block: odd lines, continuations, earlier
 * verdict headers before and after them, CRLF, no blank line, no final
 * line end (random layouts from a fixed seed). */
static struct sink big;
static int put_big(void *user, const char *p, size_t n)
{
	(void)user;
	if (big.n + n >= sizeof(big.buf))
		return -1;
	memcpy(big.buf + big.n, p, n);
	big.n += n;
	return 0;
}

static void test_tagged_copy_is_the_same_message(void **state)
{
	(void)state;
	static const char *const parts[] = {
	        "From: a@b\n",
	        "Subject: hi\n",
	        "odd line\n",
	        " cont\n",
	        "\tham\n",
	        "X-Spam-Flag: YES\n",
	        "X-Chaff-Score: 1\n",
	        " folded\n",
	        "X-Spam-Status : No\n",
	        "text: here\n",
	        "\n",
	        "\r\n",
	        "body words\n",
	        ">From x\n",
	        "plain\n",
	        "\n\n",
	        "odd crlf\r\n",
	        "X-Spam-Level: **\r\n",
	        " c2\r\n",
	        "Subject: s\r\n",
	};
	const size_t np = sizeof(parts) / sizeof(parts[0]);
	struct chaff_score sc = {
	        .score = 0.9, .spam_cutoff = 0.6, .ham_cutoff = 0.3, .verdict = CHAFF_VERDICT_SPAM};
	unsigned long x = 12345;
	for (int t = 0; t < 20000; t++) {
		char msg[1024];
		size_t ml = 0;
		x = x * 6364136223846793005ul + 1442695040888963407ul;
		int k = (int)(x >> 60) % 9;
		for (int i = 0; i < k; i++) {
			x = x * 6364136223846793005ul + 1442695040888963407ul;
			const char *p = parts[(x >> 33) % np];
			memcpy(msg + ml, p, strlen(p));
			ml += strlen(p);
		}
		if ((x >> 20) % 4 == 0 && ml)
			ml--; /* no final line end */
		big.n = 0;
		assert_int_equal(cli_tag_message(msg, ml, &sc, put_big, NULL), 0);
		struct chaff_digest a, b;
		chaff_message_digest(msg, ml, &a);
		chaff_message_digest(big.buf, big.n, &b);
		if (memcmp(&a, &b, sizeof(a)) != 0)
			fail_msg("layout %d: the tagged copy is another message: %.*s", t, (int)ml,
			         msg);
	}
}

static size_t writes;
static int count_writes(void *user, const char *p, size_t n)
{
	(void)user;
	(void)p;
	(void)n;
	writes++;
	return 0;
}

/* The lines kept go out in runs: a header of 100,000 continuation lines,
 * with a forged verdict field inside the block, is a handful of writes
 * (it was one system call a line in chaff filter). */
static void test_kept_lines_written_in_runs(void **state)
{
	(void)state;
	enum { LINES = 100000 };
	char *msg = malloc(LINES * 4 + 256);
	assert_non_null(msg);
	size_t n = (size_t)sprintf(msg, "Subject: s\nX-Long: a\n");
	for (int i = 0; i < LINES; i++)
		n += (size_t)sprintf(msg + n, " c\n");
	n += (size_t)sprintf(msg + n, "X-Spam-Flag: YES\nTo: t\n\nbody\n");
	struct chaff_score sc = {
	        .score = 0.1, .spam_cutoff = 0.6, .ham_cutoff = 0.3, .verdict = CHAFF_VERDICT_HAM};
	writes = 0;
	assert_int_equal(cli_tag_message(msg, n, &sc, count_writes, NULL), 0);
	assert_true(writes <= 6);
	free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stars_follow_the_verdict),
	        cmocka_unit_test(test_headers_where_the_tokenizer_ends_the_block),
	        cmocka_unit_test(test_tagged_copy_is_the_same_message),
	        cmocka_unit_test(test_kept_lines_written_in_runs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
