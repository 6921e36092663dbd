/*
 * Hostile messages cost bounded time and memory, and each limit is
 * reported. ctest gives this file a time limit; nothing here times itself.
 */
#include "test_util.h"

#include "tokenizer/tok.h"

TEST_DEFAULT_TOKENIZER

static struct chaff_tokens run(const char *msg, size_t len)
{
	struct chaff_tokens tk;
	assert_int_equal(chaff_tokenize(tok, msg, len, &tk), CHAFF_OK);
	struct chaff_limits l;
	chaff_limits_default(&l);
	assert_true(tk.count <= l.max_tokens + 6); /* + one limit: token each */
	return tk;
}

static void test_megabyte_header_line(void **state)
{
	(void)state;
	size_t n = 1u << 20;
	char *msg = malloc(n + 64);
	memcpy(msg, "Subject: ", 9);
	for (size_t i = 9; i < n; i++)
		msg[i] = (i % 7 == 0) ? ' ' : 'a' + (char)(i % 26);
	memcpy(msg + n, "\n\nbody\n", 8);
	struct chaff_tokens tk = run(msg, n + 7);
	assert_true(tk.limits_hit & CHAFF_LIMIT_HEADER);
	assert_token(tk, "limit:header");
	assert_token(tk, "body");
	free(msg);
}

static void test_ten_thousand_nested_parts(void **state)
{
	(void)state;
	size_t cap = 10000 * 80 + 100, o = 0;
	char *msg = malloc(cap);
	for (int i = 0; i < 10000; i++)
		o += (size_t)snprintf(msg + o, cap - o,
		                      "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	o += (size_t)snprintf(msg + o, cap - o, "\ndeepest\n");
	struct chaff_tokens tk = run(msg, o);
	assert_true(tk.limits_hit & CHAFF_LIMIT_DEPTH);
	assert_token(tk, "limit:depth");
	assert_no_token(tk, "deepest");
	free(msg);
}

static void test_ten_thousand_sibling_parts(void **state)
{
	(void)state;
	size_t cap = 10000 * 40 + 100, o = 0;
	char *msg = malloc(cap);
	o += (size_t)snprintf(msg, cap, "Content-Type: multipart/mixed; boundary=s\n\n");
	for (int i = 0; i < 10000; i++)
		o += (size_t)snprintf(msg + o, cap - o, "--s\n\nword%d\n", i);
	struct chaff_tokens tk = run(msg, o);
	assert_true(tk.limits_hit & CHAFF_LIMIT_PARTS);
	assert_token(tk, "word1");
	assert_no_token(tk, "word9999");
	free(msg);
}

static void test_hundred_megabyte_message(void **state)
{
	(void)state;
	size_t n = 100u << 20;
	char *msg = malloc(n);
	memcpy(msg, "Subject: big\n\n", 14);
	for (size_t i = 14; i < n; i++)
		msg[i] = (i % 8 == 0) ? '\n' : 'a' + (char)(i % 5);
	struct chaff_tokens tk = run(msg, n);
	assert_true(tk.limits_hit & CHAFF_LIMIT_MESSAGE);
	assert_true(tk.limits_hit & CHAFF_LIMIT_PART_BYTES);
	free(msg);
}

static void test_base64_of_all_padding(void **state)
{
	(void)state;
	size_t n = 10u << 20;
	char *msg = malloc(n);
	const char *h = "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n";
	size_t hl = strlen(h);
	memcpy(msg, h, hl);
	memset(msg + hl, '=', n - hl);
	struct chaff_tokens tk = run(msg, n);
	assert_int_equal(test_count(&tk, "ct:text/plain"), 1);
	assert_true(tk.count < 10);
	free(msg);
}

static void test_token_cap(void **state)
{
	(void)state;
	size_t n = 4u << 20;
	char *msg = malloc(n);
	memcpy(msg, "\n", 1);
	for (size_t i = 1; i < n; i++)
		msg[i] = (i % 4 == 0) ? ' ' : 'a' + (char)((i / 4) % 26);
	struct chaff_tokens tk = run(msg, n);
	assert_true(tk.limits_hit & CHAFF_LIMIT_TOKENS);
	assert_token(tk, "limit:tokens");
	free(msg);
}

static void test_unclosed_constructs(void **state)
{
	(void)state;
	/* an unclosed comment, quote, script and encoded word each end at the
	 * end of their input, without reading past it */
	const char *msgs[] = {
		"Content-Type: text/html\n\nbefore <!-- never closed",
		"Content-Type: text/html\n\n<a href=\"http://x.example.com/ never closed",
		"Content-Type: text/html\n\n<script>never closed",
		"Subject: =?utf-8?B?never",
		"Content-Type: multipart/mixed; boundary=\"unclosed\n\n--unclosed\n\nx\n",
		"Content-Type: text/plain; charset=utf-8\n\n\xf0\x9f",
		"",
		"\n",
		"Subject:",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		run(msgs[i], strlen(msgs[i]));
}

/* Each message in a buffer of exactly its size, so that a read one byte
 * past the end is caught by ASan (a string literal would hide it behind
 * its NUL). Found by the fuzzer: a message ending in '&' inside HTML. */
static void test_exact_size_buffers(void **state)
{
	(void)state;
	const char *msgs[] = {
		"Content-Type: text/html\n\n&",
		"Content-Type: text/html\n\n&#",
		"Content-Type: text/html\n\n&#x",
		"Content-Type: text/html\n\n<",
		"Content-Type: text/html\n\n<a href=",
		"Content-Type: text/html\n\n<!--",
		"Content-Type: text/plain; charset=\"",
		"Subject: =?",
		"Content-Type: multipart/mixed; boundary=b\n\n--b",
		"From: a@",
		"Received: from [",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		size_t n = strlen(msgs[i]);
		char *m = malloc(n);
		memcpy(m, msgs[i], n);
		run(m, n);
		free(m);
	}
}

/* max_token_len is checked against the scanner's 256-byte word buffer:
 * above it a tokenizer is refused; at it a 256-byte word is kept whole and
 * a longer one, even 70,000 bytes, becomes its length class. */
static void test_token_length_setting(void **state)
{
	(void)state;
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	chaff_tokenizer *t = NULL;
	cfg.limits.max_token_len = 257;
	assert_int_equal(chaff_tokenizer_new(&cfg, &t), CHAFF_EINVAL);
	cfg.limits.max_token_len = 256;
	assert_int_equal(chaff_tokenizer_new(&cfg, &t), CHAFF_OK);
	size_t n = 70000;
	char *msg = malloc(n + 400);
	size_t o = (size_t)sprintf(msg, "Subject: x\n\n");
	memset(msg + o, 'a', 256);
	o += 256;
	msg[o++] = ' ';
	memset(msg + o, 'b', n);
	o += n;
	msg[o++] = '\n';
	struct chaff_tokens tk;
	assert_int_equal(chaff_tokenize(t, msg, o, &tk), CHAFF_OK);
	bool whole = false, long_class = false;
	for (size_t i = 0; i < tk.count; i++) {
		whole |= tk.items[i].len == 256 && tk.items[i].text[0] == 'a';
		long_class |= strcmp(tk.items[i].text, "long:b:70000") == 0;
	}
	assert_true(whole);
	assert_true(long_class);
	free(msg);
	chaff_tokenizer_free(t);
}

/* Every limit is a setting: a depth of 2 stops at the third level, the
 * other limits left at their defaults, and a part limit of 3 at the fourth
 * part. */
static void test_limit_settings(void **state)
{
	(void)state;
	static const char nested[] = "Content-Type: multipart/mixed; boundary=a\n\n--a\n"
	                             "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
	                             "Content-Type: multipart/mixed; boundary=c\n\n--c\n"
	                             "\ndeepest\n--c--\n--b--\n--a--\n";
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	cfg.limits.max_mime_depth = 2;
	chaff_tokenizer *t = NULL;
	assert_int_equal(chaff_tokenizer_new(&cfg, &t), CHAFF_OK);
	struct chaff_tokens tk;
	assert_int_equal(chaff_tokenize(t, nested, sizeof(nested) - 1, &tk), CHAFF_OK);
	assert_true(tk.limits_hit & CHAFF_LIMIT_DEPTH);
	assert_token(tk, "limit:depth");
	assert_no_token(tk, "deepest");
	chaff_tokenizer_free(t);
	/* the default depth reads it */
	tk = run(nested, sizeof(nested) - 1);
	assert_token(tk, "deepest");
	assert_false(tk.limits_hit & CHAFF_LIMIT_DEPTH);
	static const char parts[] = "Content-Type: multipart/mixed; boundary=p\n\n"
	                            "--p\n\none\n--p\n\ntwo\n--p\n\nthree\n--p\n\nfour\n--p--\n";
	chaff_tokenizer_config_default(&cfg);
	cfg.limits.max_parts = 3;
	assert_int_equal(chaff_tokenizer_new(&cfg, &t), CHAFF_OK);
	assert_int_equal(chaff_tokenize(t, parts, sizeof(parts) - 1, &tk), CHAFF_OK);
	assert_true(tk.limits_hit & CHAFF_LIMIT_PARTS);
	assert_token(tk, "two");
	assert_no_token(tk, "four");
	chaff_tokenizer_free(t);
}

/* Four megabytes of "www.a," and of "http://a,", read whole as one part:
 * each URL's search for a user-info '@' is bounded, so the run costs
 * linear time, about a second. Unbounded, each URL read the rest of the
 * run again: 25 s for one megabyte here, and sixteen times that for four,
 * far past the time ctest gives this file. */
static void test_url_runs(void **state)
{
	(void)state;
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	cfg.limits.max_part_bytes = 4u << 20;
	chaff_tokenizer *t;
	assert_int_equal(chaff_tokenizer_new(&cfg, &t), CHAFF_OK);
	static const char *const units[] = {"www.a,", "http://a,", "http://a%b!c;d="};
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		size_t ul = strlen(units[u]), n = 4u << 20;
		char *msg = malloc(n + ul + 32);
		size_t o = (size_t)sprintf(msg, "Subject: x\n\n");
		while (o < n)
			o += (size_t)sprintf(msg + o, "%s", units[u]);
		struct chaff_tokens tk;
		assert_int_equal(chaff_tokenize(t, msg, o, &tk), CHAFF_OK);
		assert_true(tk.count > 0);
		assert_false(tk.limits_hit & CHAFF_LIMIT_PART_BYTES); /* all of it was read */
		free(msg);
	}
	chaff_tokenizer_free(t);
}

/* A 20 MB attachment is never decoded: its type and name are its only
 * tokens, and no part limit is hit (nothing of it was read as text). */
static void test_large_attachment(void **state)
{
	(void)state;
	size_t n = 20u << 20;
	char *msg = malloc(n + 512);
	size_t o = (size_t)sprintf(msg, "Subject: report\nContent-Type: multipart/mixed; boundary=z\n\n"
	                                "--z\nContent-Type: text/plain\n\nsee attached\n--z\n"
	                                "Content-Type: application/pdf; name=\"big.pdf\"\n"
	                                "Content-Transfer-Encoding: base64\n\n");
	for (size_t i = 0; i < n; i++)
		msg[o++] = (i % 77 == 76) ? '\n' : "QUJDRGVmZ2hpams"[i % 15];
	o += (size_t)sprintf(msg + o, "\n--z--\n");
	struct chaff_tokens tk = run(msg, o);
	assert_true(tk.count < 30);
	assert_int_equal(tk.limits_hit, 0);
	assert_token(tk, "fname:big.pdf");
	assert_token(tk, "fext:pdf");
	assert_token(tk, "attached");
	free(msg);
}

/* A message may open only so many charset converters (each loads a
 * module; cycling through more charsets than the cache holds once cost
 * an open per encoded word): past the eighth, a charset not yet cached is
 * read as undeclared text, while the cached ones keep converting. */
static void test_charset_opens(void **state)
{
	(void)state;
	static const char msg[] = "X-A: =?CP1250?q?pr=E1ce?=\n"
	                          "X-B: =?CP1251?q?x=E1?=\n"
	                          "X-C: =?CP1253?q?x=E1?=\n"
	                          "X-D: =?CP1254?q?x=E1?=\n"
	                          "X-E: =?CP1255?q?x=E1?=\n"
	                          "X-F: =?CP1256?q?x=E1?=\n"
	                          "X-G: =?CP1257?q?x=E1?=\n"
	                          "X-H: =?ISO-8859-2?q?x=E1?=\n"
	                          "Subject: =?KOI8-R?q?=F3=D4=CF=D0?=\n"
	                          "X-I: =?CP1250?q?n=E1vod?=\n"
	                          "\nbody\n";
	struct chaff_tokens tk = run(msg, sizeof(msg) - 1);
	assert_token(tk, "x-a:práce");
	assert_token(tk, "subj:óôïð"); /* KOI8-R, the ninth: read as Windows-1252 */
	assert_no_token(tk, "subj:стоп");
	assert_token(tk, "x-i:návod"); /* CP1250 again: cached, converted */
	/* KOI8-R cached by a message before makes no difference: a message's
	 * tokens never depend on the ones before it */
	static const char koi[] = "Subject: =?KOI8-R?q?=F3=D4=CF=D0?=\n\nx\n";
	tk = run(koi, sizeof(koi) - 1);
	assert_token(tk, "subj:стоп");
	tk = run(msg, sizeof(msg) - 1);
	assert_token(tk, "subj:óôïð");
	assert_no_token(tk, "subj:стоп");
}

/* TSCII writes up to nine bytes of UTF-8 for one byte: the converter's
 * output grows past four bytes a byte instead of stopping there. */
static void test_expanding_charset(void **state)
{
	(void)state;
	char msg[256];
	size_t o = (size_t)sprintf(msg, "Content-Type: text/plain; charset=tscii\n\n");
	memset(msg + o, 0x87, 100);
	o += 100;
	o += (size_t)sprintf(msg + o, " lastword\n");
	struct chaff_tokens tk = run(msg, o);
	assert_token(tk, "lastword");
}

/* A whole part's worth (1 MiB) of a byte TSCII writes as twelve bytes
 * of UTF-8: its text is cut at four times the part limit, the limit is
 * noted, and the part after it is read. (The room had doubled as the text
 * grew, 28 MB for the part; ASan catches a write past the room.) */
static void test_expanding_charset_part(void **state)
{
	(void)state;
	size_t n = 1u << 20, o = 0;
	char *msg = malloc(n + 512);
	o += (size_t)sprintf(msg, "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
	                          "Content-Type: text/plain; charset=tscii\n\n");
	memset(msg + o, 0x82, n);
	o += n;
	o += (size_t)sprintf(msg + o, "\n--b\nContent-Type: text/plain\n\nafterword\n--b--\n");
	struct chaff_tokens tk = run(msg, o);
	assert_true(tk.limits_hit & CHAFF_LIMIT_PART_BYTES);
	assert_token(tk, "afterword");
	free(msg);
}

/* Encoded words in a charset that writes more than four bytes of UTF-8
 * per byte fill the decoded header to its room and no further (ASan
 * builds catch a write past it); the rest of the message is read. */
static void test_expanding_encoded_words(void **state)
{
	(void)state;
	/* base64 of 45 bytes 0x82: TSCII writes 12 bytes of UTF-8 for each */
	static const char word[] = "=?TSCII?B?goKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKC?=";
	size_t cap = 64 * sizeof(word) + 64, o = 0;
	char *msg = malloc(cap);
	o += (size_t)sprintf(msg, "Subject: ");
	for (int i = 0; i < 60; i++)
		o += (size_t)sprintf(msg + o, "%s ", word);
	o += (size_t)sprintf(msg + o, "\n\nbody\n");
	struct chaff_tokens tk = run(msg, o);
	assert_true(tk.limits_hit & CHAFF_LIMIT_HEADER);
	assert_token(tk, "body");
	free(msg);
}

/* message/rfc822 parts sent quoted-printable, nested: each level decodes
 * at most a part's worth (1 MiB), not a copy of all it holds. */
static void test_nested_encoded_messages(void **state)
{
	(void)state;
	static const char level[] =
	        "Content-Type: message/rfc822\nContent-Transfer-Encoding: quoted-printable\n\n";
	size_t body = 4u << 20, o = 0;
	char *msg = malloc(19 * sizeof(level) + body + 64);
	for (int i = 0; i < 19; i++) {
		memcpy(msg + o, level, sizeof(level) - 1);
		o += sizeof(level) - 1;
	}
	o += (size_t)sprintf(msg + o, "Subject: deepest\n\n");
	memset(msg + o, 'x', body);
	o += body;
	struct chaff_tokens tk = run(msg, o);
	assert_true(tk.limits_hit & CHAFF_LIMIT_PART_BYTES);
	assert_token(tk, "subj:deepest");
	free(msg);
}

/* Many text parts that each grow in conversion (Windows-1252 0x80 is the
 * euro sign, three bytes of UTF-8): each part's decoded and converted
 * text is given back when the part is done, so the working memory is one
 * part's, not the sum of all 24 (18 MB). */
static void test_parts_give_back_their_memory(void **state)
{
	(void)state;
	enum { PARTS = 24, PART = 256 << 10 };
	size_t cap = (size_t)PARTS * (PART + 128) + 256;
	char *msg = malloc(cap);
	assert_non_null(msg);
	size_t n = (size_t)sprintf(msg,
	                           "Subject: parts\nContent-Type: multipart/mixed; boundary=b\n\n");
	for (int i = 0; i < PARTS; i++) {
		n += (size_t)sprintf(msg + n,
		                     "--b\nContent-Type: text/plain; charset=windows-1252\n\n");
		memset(msg + n, 0x80, PART);
		n += PART;
		msg[n++] = '\n';
	}
	n += (size_t)sprintf(msg + n, "--b--\n");
	chaff_tokenizer *fresh;
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	assert_int_equal(chaff_tokenizer_new(&cfg, &fresh), CHAFF_OK);
	struct chaff_tokens tk;
	assert_int_equal(chaff_tokenize(fresh, msg, n, &tk), CHAFF_OK);
	assert_true(tk.count > 0);
	assert_true(fresh->scratch.peak < 4u << 20);
	chaff_tokenizer_free(fresh);
	free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_megabyte_header_line),
	        cmocka_unit_test(test_ten_thousand_nested_parts),
	        cmocka_unit_test(test_ten_thousand_sibling_parts),
	        cmocka_unit_test(test_hundred_megabyte_message),
	        cmocka_unit_test(test_base64_of_all_padding),
	        cmocka_unit_test(test_token_cap),
	        cmocka_unit_test(test_unclosed_constructs),
	        cmocka_unit_test(test_exact_size_buffers),
	        cmocka_unit_test(test_token_length_setting),
	        cmocka_unit_test(test_limit_settings),
	        cmocka_unit_test(test_large_attachment),
	        cmocka_unit_test(test_url_runs),
	        cmocka_unit_test(test_charset_opens),
	        cmocka_unit_test(test_expanding_charset),
	        cmocka_unit_test(test_expanding_charset_part),
	        cmocka_unit_test(test_expanding_encoded_words),
	        cmocka_unit_test(test_nested_encoded_messages),
	        cmocka_unit_test(test_parts_give_back_their_memory),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
