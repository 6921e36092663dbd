/* Transfer decoders, charset conversion and RFC 2047 words, one by one. */
#include "test_util.h"

#include "tokenizer/tok.h"

TEST_DEFAULT_TOKENIZER

#define SPAN_EQ(sp, lit)                                                        \
	do {                                                                    \
		struct span s_ = (sp);                                          \
		if (s_.n != sizeof(lit) - 1 || memcmp(s_.p, lit, s_.n) != 0)    \
			fail_msg("got '%.*s', want '%s'", (int)s_.n, s_.p, lit); \
	} while (0)

static struct span b64(const char *s, size_t cap, bool *more)
{
	return tok_base64(tok, s, strlen(s), cap, more);
}

static void test_base64(void **state)
{
	(void)state;
	bool more;
	SPAN_EQ(b64("SGVsbG8gd29ybGQ=", 100, &more), "Hello world");
	assert_false(more);
	/* white space, line breaks and stray characters are skipped */
	SPAN_EQ(b64("SGVs\r\nbG8g!!d29y bGQ=", 100, &more), "Hello world");
	/* missing padding still yields the last bytes */
	SPAN_EQ(b64("SGVsbG8gd29ybGQ", 100, &more), "Hello world");
	SPAN_EQ(b64("SGk", 100, &more), "Hi");
	/* all padding is nothing, not an error */
	SPAN_EQ(b64("========", 100, &more), "");
	/* padding inside: pieces encoded apart and joined decode as pieces */
	SPAN_EQ(b64("aGVsbG8=\nd29ybGQ=", 100, &more), "helloworld");
	SPAN_EQ(b64("SGk=SGk=", 100, &more), "HiHi");
	/* the cap stops decoding and says so */
	SPAN_EQ(b64("SGVsbG8gd29ybGQ=", 6, &more), "Hello ");
	assert_true(more);
}

static struct span qp(const char *s, size_t cap, bool *more)
{
	return tok_qp(tok, s, strlen(s), cap, more);
}

static void test_quoted_printable(void **state)
{
	(void)state;
	bool more;
	SPAN_EQ(qp("caf=C3=A9", 100, &more), "caf\xc3\xa9");
	SPAN_EQ(qp("caf=c3=a9", 100, &more), "caf\xc3\xa9"); /* lower-case hex */
	SPAN_EQ(qp("soft=\nbreak", 100, &more), "softbreak");
	SPAN_EQ(qp("soft=\r\nbreak", 100, &more), "softbreak");
	SPAN_EQ(qp("soft= \t\nbreak", 100, &more), "softbreak");
	SPAN_EQ(qp("bad=ZZescape", 100, &more), "bad=ZZescape");
	SPAN_EQ(qp("end=", 100, &more), "end");
	SPAN_EQ(qp("end=4", 100, &more), "end=4");
	SPAN_EQ(qp("abcdef", 3, &more), "abc");
	assert_true(more);
}

static struct span conv(const char *cs, const char *s)
{
	return tok_to_utf8(tok, cs, cs ? strlen(cs) : 0, s, strlen(s));
}

static void test_charsets(void **state)
{
	(void)state;
	SPAN_EQ(conv("iso-8859-1", "caf\xe9"), "caf\xc3\xa9");
	SPAN_EQ(conv("\"Latin1\"", "caf\xe9"), "caf\xc3\xa9");
	/* Latin-1 labels read 0x80..0x9F as Windows-1252 */
	SPAN_EQ(conv("iso-8859-1", "\x93quoted\x94"), "\xe2\x80\x9cquoted\xe2\x80\x9d");
	SPAN_EQ(conv("koi8-r", "\xd0\xd2\xc9\xd7\xc5\xd4"), "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	SPAN_EQ(conv("windows-1251", "\xef\xf0\xe8"), "\xd0\xbf\xd1\x80\xd0\xb8");
	/* gb2312 is read as GB18030: a GB18030-only four-byte sequence works */
	SPAN_EQ(conv("gb2312", "\xc4\xe3\xba\xc3"), "\xe4\xbd\xa0\xe5\xa5\xbd");
	SPAN_EQ(conv("gb2312", "\x81\x30\x81\x30"), "\xc2\x80");
	SPAN_EQ(conv("ks_c_5601-1987", "\xc7\xd1"), "\xed\x95\x9c");
	SPAN_EQ(conv("shift_jis", "\x93\xfa\x96\x7b"), "\xe6\x97\xa5\xe6\x9c\xac");
	SPAN_EQ(conv("iso-2022-jp", "\x1b$BF|K\\\x1b(B"), "\xe6\x97\xa5\xe6\x9c\xac");
	SPAN_EQ(conv("big5", "\xa4\xa4\xa4\xe5"), "\xe4\xb8\xad\xe6\x96\x87");
	SPAN_EQ(conv("utf8", "caf\xc3\xa9"), "caf\xc3\xa9");
	/* unknown name: valid UTF-8 stays, anything else is Windows-1252 */
	SPAN_EQ(conv("x-unheard-of", "caf\xc3\xa9"), "caf\xc3\xa9");
	SPAN_EQ(conv("x-unheard-of", "caf\xe9"), "caf\xc3\xa9");
	SPAN_EQ(conv(NULL, "caf\xe9"), "caf\xc3\xa9");
	/* mislabelled UTF-8 declared as UTF-8 but holding Latin-1 */
	SPAN_EQ(conv("utf-8", "caf\xe9"), "caf\xc3\xa9");
	/* a byte the converter rejects becomes a space; words around survive */
	SPAN_EQ(conv("shift_jis", "abc\xff" "def"), "abc def");
	/* a rejected byte that ends an ISO-2022 text: nothing past it is
	 * read (the copy is exactly as long as the text, so that the
	 * sanitizer build sees a read past it) */
	static const char last[] = "ab\x1b(I~";
	char *exact = malloc(sizeof(last) - 1);
	assert_non_null(exact);
	memcpy(exact, last, sizeof(last) - 1);
	struct span sp = tok_to_utf8(tok, "iso-2022-jp", 11, exact, sizeof(last) - 1);
	assert_true(sp.n >= 2 && memcmp(sp.p, "ab", 2) == 0);
	free(exact);
}

/* Names iconv does not know do not use up a message's charsets: after
 * eight bogus ones in the Subject, the body's koi8-r is still read. */
static void test_bogus_charsets_spare_the_real_one(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "Subject: =?x1?Q?=E9?= =?x2?Q?=E9?= =?x3?Q?=E9?= =?x4?Q?=E9?= =?x5?Q?=E9?= "
		     "=?x6?Q?=E9?= =?x7?Q?=E9?= =?x8?Q?=E9?= =?x9?Q?=E9?=\n"
		     "Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n");
	assert_token(tk, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
}

static struct span w2047(const char *s)
{
	return tok_decode_2047(tok, s, strlen(s));
}

static void test_rfc2047(void **state)
{
	(void)state;
	SPAN_EQ(w2047("=?utf-8?B?Y2Fmw6k=?="), "caf\xc3\xa9");
	SPAN_EQ(w2047("=?ISO-8859-1?Q?caf=E9_au_lait?="), "caf\xc3\xa9 au lait");
	SPAN_EQ(w2047("Re: =?utf-8?q?caf=C3=A9?= now"), "Re: caf\xc3\xa9 now");
	/* adjacent words join, even through a split multi-byte character */
	SPAN_EQ(w2047("=?utf-8?Q?caf=C3?= =?utf-8?Q?=A9?="), "caf\xc3\xa9");
	SPAN_EQ(w2047("=?utf-8?B?SGVs?=\r\n =?utf-8?B?bG8=?="), "Hello");
	/* language suffix (RFC 2231) */
	SPAN_EQ(w2047("=?utf-8*en?Q?hi?="), "hi");
	/* malformed words stay as text */
	SPAN_EQ(w2047("=?utf-8?X?abc?="), "=?utf-8?X?abc?=");
	SPAN_EQ(w2047("=?utf-8?Q?unterminated"), "=?utf-8?Q?unterminated");
	SPAN_EQ(w2047("a =?koi8-r?B?0NLJ18XU?= b"), "a \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_quoted_printable),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_rfc2047),
		/* last: the direct calls above share a message's charset
		 * counts, which a whole message leaves behind */
		cmocka_unit_test(test_bogus_charsets_spare_the_real_one),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
