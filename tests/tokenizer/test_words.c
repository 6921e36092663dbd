/* The word scanner: folding, joiners, length classes, spaceless scripts,
 * URLs, addresses and word pairs, through the public API. */
#include "test_util.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static chaff_tokenizer *tok, *pairs_tok;

static int setup(void **state)
{
	(void)state;
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	cfg.flags |= CHAFF_TOK_PAIRS;
	if (chaff_tokenizer_new(NULL, &tok) != CHAFF_OK)
		return -1;
	return chaff_tokenizer_new(&cfg, &pairs_tok);
}

static int teardown(void **state)
{
	(void)state;
	chaff_tokenizer_free(tok);
	chaff_tokenizer_free(pairs_tok);
	return 0;
}

/* A one-part UTF-8 message around body. */
static struct chaff_tokens body(chaff_tokenizer *t, const char *text)
{
	static char msg[200000];
	snprintf(msg, sizeof(msg),
	         "Subject: x\nContent-Type: text/plain; charset=utf-8\n\n%s\n", text);
	return test_tokenize(t, msg);
}

static void test_folding_and_joiners(void **state)
{
	(void)state;
	struct chaff_tokens tk = body(tok, "FREE Free free DON'T e-mail 1.5 foo_bar $100 a I x");
	assert_int_equal(test_count(&tk, "free"), 3);
	assert_token(tk, "don't");
	assert_token(tk, "e-mail");
	assert_token(tk, "1.5");
	assert_token(tk, "foo_bar");
	assert_token(tk, "$100");
	assert_no_token(tk, "a");
	assert_no_token(tk, "i");
	tk = body(tok, "end. next -dash- 'quote' trailing. ...dots");
	assert_token(tk, "end");
	assert_token(tk, "dash");
	assert_token(tk, "quote");
	assert_token(tk, "dots");
	assert_no_token(tk, "end.");
	assert_no_token(tk, "'quote'");
}

static void test_unicode_folding(void **state)
{
	(void)state;
	struct chaff_tokens tk = body(tok, "\xc3\x89" "COLE \xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2 Stra\xc3\x9f" "e");
	assert_token(tk, "\xc3\xa9" "cole");
	assert_token(tk, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	assert_token(tk, "stra\xc3\x9f" "e");
	/* a combining accent stays inside its word */
	tk = body(tok, "cafe\xcc\x81 ok");
	assert_token(tk, "cafe\xcc\x81");
}

static void test_long_words(void **state)
{
	(void)state;
	char w[200];
	memset(w, 'x', 57);
	w[57] = '\0';
	struct chaff_tokens tk = body(tok, w);
	assert_token(tk, "long:x:50");
	memset(w, 'Q', 40);
	w[40] = '\0';
	tk = body(tok, w); /* exactly the limit is still a word */
	assert_int_equal(test_count(&tk, "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"), 1);
	/* Words far past the 256 bytes kept of a word, of every length
	 * around the sixteen-byte steps of the scanner, and one larger than
	 * the arena's blocks: counted for their length class, and (under the
	 * sanitizers) not a byte written past their token's room. Words of a
	 * few hundred bytes stay inside an arena block, where only ASan sees
	 * an overrun. */
	static char big[100000 + 64];
	for (size_t n = 250; n < 330; n++) {
		memset(big, 'a', n);
		strcpy(big + n, " tail-word after");
		tk = body(tok, big);
		char want[24];
		snprintf(want, sizeof(want), "long:a:%zu", n / 10 * 10);
		assert_token(tk, want);
		assert_token(tk, "tail-word");
	}
	/* a long word in a header keeps the header's prefix and origin */
	tk = test_tokenize(tok, "Subject: Supercalifragilisticexpialidocious-extraordinarily\n\nbody\n");
	assert_token(tk, "subj:long:s:50");
	assert_no_token(tk, "long:s:50");
	for (size_t i = 0; i < tk.count; i++)
		if (strncmp(tk.items[i].text, "subj:", 5) == 0)
			assert_int_equal(tk.items[i].origin, CHAFF_ORIGIN_HEADER);
	memset(big, 'b', 100000);
	strcpy(big + 100000, " the end");
	tk = body(tok, big);
	assert_token(tk, "long:b:100000");
	assert_token(tk, "end");
}

static void test_spaceless_scripts(void **state)
{
	(void)state;
	/* 東京都 → 東京 京都; ひらがな → pairs; a lone 字 stays whole */
	struct chaff_tokens tk = body(tok, "\xe6\x9d\xb1\xe4\xba\xac\xe9\x83\xbd tokyo \xe5\xad\x97");
	assert_token(tk, "\xe6\x9d\xb1\xe4\xba\xac");
	assert_token(tk, "\xe4\xba\xac\xe9\x83\xbd");
	assert_no_token(tk, "\xe6\x9d\xb1\xe4\xba\xac\xe9\x83\xbd");
	assert_token(tk, "\xe5\xad\x97");
	assert_token(tk, "tokyo");
	/* Thai: สวัสดี */
	tk = body(tok, "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1");
	assert_token(tk, "\xe0\xb8\xaa\xe0\xb8\xa7");
	assert_token(tk, "\xe0\xb8\xa7\xe0\xb8\xb1");
}

static void test_urls(void **state)
{
	(void)state;
	struct chaff_tokens tk =
		body(tok, "see http://user:pw@A.B.Example.COM:8080/Buy/Now?x=1 or www.shop.example.org/x "
		          "and https://10.1.2.3/p");
	assert_token(tk, "url:a.b.example.com");
	assert_token(tk, "url:b.example.com");
	assert_token(tk, "url:example.com");
	assert_no_token(tk, "url:com");
	assert_token(tk, "buy");
	assert_token(tk, "now");
	assert_no_token(tk, "8080");
	assert_no_token(tk, "user");
	assert_no_token(tk, "http");
	assert_token(tk, "url:www.shop.example.org");
	assert_token(tk, "url:example.org");
	assert_token(tk, "url:10.1.2.3");
	assert_no_token(tk, "url:1.2.3");
	/* a NUL (here decoded from quoted-printable) does not end the
	 * user-info: the host is the one after the '@', as tokenizer 5 has
	 * always read it */
	tk = test_tokenize(tok, "Content-Transfer-Encoding: quoted-printable\n\n"
	                        "http://a=00b@c.de\n");
	assert_token(tk, "url:c.de");
	assert_no_token(tk, "url:a");
	assert_no_token(tk, "email:b@c.de");
}

static void test_addresses(void **state)
{
	(void)state;
	struct chaff_tokens tk = body(tok, "write to Sales.Team+x@Mail.Example.co.uk today");
	assert_token(tk, "email:sales.team+x@mail.example.co.uk");
	assert_token(tk, "email:@mail.example.co.uk");
	assert_token(tk, "email:@example.co.uk");
	assert_token(tk, "email:@co.uk");
	assert_no_token(tk, "sales.team");
	assert_token(tk, "today");
	/* no dot, no address */
	tk = body(tok, "root@localhost here");
	assert_token(tk, "root");
	assert_token(tk, "localhost");
}

static void test_word_pairs(void **state)
{
	(void)state;
	struct chaff_tokens tk = body(pairs_tok, "buy cheap pills now");
	assert_token(tk, "cheap 1 pills");
	assert_token(tk, "buy 2 pills");
	assert_token(tk, "buy 3 now");
	assert_token(tk, "pills 1 now");
	tk = body(tok, "buy cheap pills now");
	assert_no_token(tk, "cheap 1 pills");
	/* pairs never span into headers: the subject's last word is not
	 * paired with the body's first (nor are a header's words paired) */
	tk = test_tokenize(pairs_tok,
	                   "Subject: xyz wonder\nContent-Type: text/plain\n\nalpha beta\n");
	assert_token(tk, "subj:xyz");
	assert_token(tk, "alpha 1 beta");
	assert_no_token(tk, "wonder 1 alpha");
	assert_no_token(tk, "xyz 1 wonder");
}

static void test_hashes_follow_seed(void **state)
{
	(void)state;
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	cfg.seed = 42;
	chaff_tokenizer *seeded;
	assert_int_equal(chaff_tokenizer_new(&cfg, &seeded), CHAFF_OK);
	struct chaff_tokens a = body(tok, "hello");
	uint64_t h0 = a.items[a.count - 1].hash;
	struct chaff_tokens b = body(seeded, "hello");
	assert_string_equal(b.items[b.count - 1].text, "hello");
	assert_true(b.items[b.count - 1].hash != h0);
	chaff_tokenizer_free(seeded);
}

/* Every token's hash is XXH3-64 of its text with the seed, whatever its
 * length, and chaff_tokenize_text() gives the same tokens with no hashes.
 * Tokens of 3 to 256 letters (XXH3's cases for 1-3, 4-8, 9-16, 17-128,
 * 129-240 bytes and longer), and prefixed header tokens up to 261 bytes,
 * under three seeds. */
static void test_hashes_are_xxh3(void **state)
{
	(void)state;
	static const uint64_t seeds[] = {0, 42, 0x9E3779B97F4A7C15u};
	static char msg[80000];
	size_t n = (size_t)snprintf(msg, sizeof(msg), "Subject: ");
	for (size_t len = 1; len <= 256; len += 51) {
		for (size_t i = 0; i < len; i++)
			msg[n++] = (char)('a' + (len + i) % 26);
		msg[n++] = ' ';
	}
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\nContent-Type: text/plain\n\n");
	for (size_t len = 1; len <= 256; len++) {
		for (size_t i = 0; i < len; i++)
			msg[n++] = (char)('a' + (len * 7 + i * 3) % 26);
		msg[n++] = ' ';
	}
	msg[n] = '\0';
	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		struct chaff_tokenizer_config cfg;
		chaff_tokenizer_config_default(&cfg);
		cfg.seed = seeds[s];
		cfg.limits.max_token_len = 256;
		chaff_tokenizer *t;
		assert_int_equal(chaff_tokenizer_new(&cfg, &t), CHAFF_OK);
		struct chaff_tokens tk = test_tokenize(t, msg);
		size_t lens[300] = {0};
		for (size_t i = 0; i < tk.count; i++) {
			const struct chaff_token *k = &tk.items[i];
			assert_true(k->hash == XXH3_64bits_withSeed(k->text, k->len, seeds[s]));
			if (k->len < 300)
				lens[k->len]++;
		}
		for (size_t len = 3; len <= 256; len++) /* shorter words are dropped */
			assert_true(lens[len] > 0);
		assert_true(lens[261] > 0); /* "subj:" and 256 letters */
		/* the text-only call: the same tokens, every hash 0 */
		uint64_t *hashes = malloc(tk.count * sizeof(*hashes));
		assert_non_null(hashes);
		size_t count = tk.count;
		for (size_t i = 0; i < count; i++)
			hashes[i] = tk.items[i].hash;
		struct chaff_tokens tx;
		assert_int_equal(chaff_tokenize_text(t, msg, n, &tx), CHAFF_OK);
		assert_int_equal(tx.count, count);
		for (size_t i = 0; i < count; i++) {
			assert_true(tx.items[i].hash == 0);
			assert_true(XXH3_64bits_withSeed(tx.items[i].text, tx.items[i].len,
			                                 seeds[s]) == hashes[i]);
		}
		/* and hashing again after it */
		tk = test_tokenize(t, msg);
		assert_int_equal(tk.count, count);
		for (size_t i = 0; i < count; i++)
			assert_true(tk.items[i].hash == hashes[i]);
		free(hashes);
		chaff_tokenizer_free(t);
	}
}

/* Letters that lower-casing keeps apart fold to one; a host ends before
 * the typography after it but keeps letters of other scripts; declared
 * UTF-8 with a stray bad byte stays UTF-8; numeric entities read all their
 * digits. */
static void test_folding_hosts_and_stray_bytes(void **state)
{
	(void)state;
	struct chaff_tokens tk = body(tok, "ΣΟΦΟΣ σοφος µm μm ſuper");
	assert_int_equal(test_count(&tk, "σοφοσ"), 2);
	assert_int_equal(test_count(&tk, "μm"), 2);
	assert_int_equal(test_count(&tk, "super"), 1);
	tk = body(tok, "see \u201chttp://www.example.com\u201d or http://shop.example.org\u00a0today, "
	               "joe@example.com\u201d and http://m\u00fcnchen.example.de/x");
	assert_token(tk, "url:www.example.com");
	assert_token(tk, "url:shop.example.org");
	assert_token(tk, "today");
	assert_token(tk, "email:@example.com");
	assert_token(tk, "url:m\u00fcnchen.example.de");
	tk = body(tok, "http://\u0939\u093f\u0928\u094d\u0926\u0940.example.in/x k\u0131rm\u0131z\u0131 KIRMIZI");
	assert_token(tk, "url:\u0939\u093f\u0928\u094d\u0926\u0940.example.in"); /* vowel signs */
	assert_token(tk, "k\u0131rm\u0131z\u0131"); /* dotless i stays */
	assert_token(tk, "kirmizi");
	/* an invisible mark after a host does not change its tokens */
	tk = body(tok, "http://www.spam-shop.com\u034f/buy and http://www.spam-shop.com\ufe0f/x");
	assert_int_equal(test_count(&tk, "url:www.spam-shop.com"), 2);
	assert_no_token(tk, "url:www.example.com\u201d");
	tk = body(tok, "caf\xc3\xa9 na\xc3\xafve \xff gr\xc3\xbc\xc3\x9f");
	assert_token(tk, "café");
	assert_token(tk, "naïve");
	assert_token(tk, "grüß");
	static const char html[] = "Content-Type: text/html\n\n<p>&#00000000065;BC "
	                           "&#99999999999;qrs</p>\n";
	tk = test_tokenize(tok, html);
	assert_token(tk, "abc");
	assert_token(tk, "qrs");
	assert_no_token(tk, "999qrs");
}

/* The scanner reads text in 32-byte windows, each byte classified once
 * for its window: every kind of word gives the same tokens at each place
 * of a window, the whole word inside it or reaching past its end. */
static void test_window_offsets(void **state)
{
	(void)state;
	static const char *const words[] = {
	        "cheap",
	        "don't",
	        "abc.def",
	        "3.14159",
	        "e-mail",
	        "x.y",
	        "ab",
	        "end.",
	        "trailing-",
	        "two..dots",
	        "word_with_underscore",
	        "next:colon",
	        "10:30",
	        "$100",
	        "caf\xc3\xa9",
	        "foo-\xc3\xa9t\xc3\xa9",
	        "mid\xe2\x80\x8bword",
	        "joe@example.com",
	        "http://www.example.com/x",
	        "www.site.org/path",
	        "AbCdEfGhIjKlMnOpQrStUvWxYz0123",
	        "AbCdEfGhIjKlMnOpQrStUvWxYz01234",
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
	        "abcdefghijklmnopqrstuvwxyz012.abcd",
	        "averyveryverylongwordthatgoespastthirtytwobytes",
	};
	static const char after[] = " and then some more plain words to read";
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		char buf[160];
		char *want[16];
		size_t nwant = 0;
		for (size_t k = 0; k < 2 * 32 + 2; k++) {
			memset(buf, ' ', k);
			snprintf(buf + k, sizeof(buf) - k, "%s%s", words[w], after);
			struct chaff_tokens tk = body(tok, buf);
			if (k == 0) {
				assert_true(tk.count <= 16);
				for (size_t i = 0; i < tk.count; i++)
					want[nwant++] = strdup(tk.items[i].text);
				continue;
			}
			if (tk.count != nwant)
				fail_msg("'%s' at %zu: %zu tokens, not %zu", words[w], k, tk.count,
				         nwant);
			for (size_t i = 0; i < nwant; i++)
				if (strcmp(tk.items[i].text, want[i]) != 0)
					fail_msg("'%s' at %zu: '%s', not '%s'", words[w], k,
					         tk.items[i].text, want[i]);
		}
		for (size_t i = 0; i < nwant; i++)
			free(want[i]);
	}
	struct chaff_tokens tk = body(tok, "   don't abc.def 3.14159 e-mail x.y end. ab ");
	assert_token(tk, "don't");
	assert_token(tk, "abc.def");
	assert_token(tk, "3.14159");
	assert_token(tk, "e-mail");
	assert_token(tk, "end");
	assert_no_token(tk, "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_folding_and_joiners),
	        cmocka_unit_test(test_unicode_folding),
	        cmocka_unit_test(test_long_words),
	        cmocka_unit_test(test_spaceless_scripts),
	        cmocka_unit_test(test_urls),
	        cmocka_unit_test(test_addresses),
	        cmocka_unit_test(test_word_pairs),
	        cmocka_unit_test(test_hashes_follow_seed),
	        cmocka_unit_test(test_hashes_are_xxh3),
	        cmocka_unit_test(test_folding_hosts_and_stray_bytes),
	        cmocka_unit_test(test_window_offsets),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
