/*
 * Charset converters are opened once per tokenizer and charset, never per
 * message: iconv_open is wrapped (-Wl,--wrap=iconv_open) and counted.
 */
#include "test_util.h"

#include <iconv.h>

iconv_t __real_iconv_open(const char *to, const char *from);
iconv_t __wrap_iconv_open(const char *to, const char *from);

static int opens;

iconv_t __wrap_iconv_open(const char *to, const char *from)
{
	opens++;
	return __real_iconv_open(to, from);
}

static void test_opened_once_per_charset(void **state)
{
	(void)state;
	static const char koi8[] = "Subject: a\nContent-Type: text/plain; charset=koi8-r\n\n"
	                           "\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2\n";
	static const char latin2[] = "Subject: b\nContent-Type: text/plain; charset=iso-8859-2\n\n"
	                             "\xbf\xf3\xb3w zolw\n";
	chaff_tokenizer *tok;
	assert_int_equal(chaff_tokenizer_new(NULL, &tok), CHAFF_OK);
	opens = 0;
	for (int i = 0; i < 10; i++) {
		struct chaff_tokens tk;
		const char *m = i % 2 ? latin2 : koi8;
		size_t n = i % 2 ? sizeof(latin2) - 1 : sizeof(koi8) - 1;
		assert_int_equal(chaff_tokenize(tok, m, n, &tk), CHAFF_OK);
		assert_token(tk, i % 2 ? "żółw" : "привет");
	}
	assert_int_equal(opens, 2);
	chaff_tokenizer_free(tok);
	/* a second tokenizer (another thread's) opens its own */
	assert_int_equal(chaff_tokenizer_new(NULL, &tok), CHAFF_OK);
	struct chaff_tokens tk;
	assert_int_equal(chaff_tokenize(tok, koi8, sizeof(koi8) - 1, &tk), CHAFF_OK);
	assert_int_equal(chaff_tokenize(tok, koi8, sizeof(koi8) - 1, &tk), CHAFF_OK);
	assert_int_equal(opens, 3);
	chaff_tokenizer_free(tok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opened_once_per_charset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
