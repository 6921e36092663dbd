/* The MIME walk: boundaries, nesting, parameters, parts that are not text. */
#include "test_util.h"

TEST_DEFAULT_TOKENIZER

static void test_boundary_prefix_of_another(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "Content-Type: multipart/mixed; boundary=abc\n\npreamble words\n"
		     "--abc\nContent-Type: multipart/alternative; boundary=\"abcdef\"\n\n"
		     "--abcdef\nContent-Type: text/plain\n\ninnerone\n"
		     "--abcdef\nContent-Type: text/html\n\n<p>innertwo</p>\n--abcdef--\n"
		     "--abc\nContent-Type: text/plain\n\nouterthree\n--abc--\nepilogue words\n");
	assert_token(tk, "innerone");
	assert_token(tk, "innertwo");
	assert_token(tk, "outerthree");
	assert_no_token(tk, "preamble");
	assert_no_token(tk, "epilogue");
	assert_token(tk, "ct:multipart/alternative");
	assert_token(tk, "ct:text/html");
}

static void test_missing_boundaries(void **state)
{
	(void)state;
	/* no final boundary: the last part runs to the end */
	struct chaff_tokens tk = test_tokenize(
		tok, "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\n\nfirstpart\n"
		     "--b1\n\nlastpart unterminated\n");
	assert_token(tk, "firstpart");
	assert_token(tk, "lastpart");
	/* no boundary parameter: the first --line names it */
	tk = test_tokenize(tok, "Content-Type: multipart/mixed\n\n--zzz\n\nguessed\n--zzz--\nafter\n");
	assert_token(tk, "guessed");
	assert_no_token(tk, "zzz");
	assert_no_token(tk, "after");
	/* a boundary that never appears: the body is read as text */
	tk = test_tokenize(tok, "Content-Type: multipart/mixed; boundary=nope\n\nplainbody\n");
	assert_token(tk, "plainbody");
}

static void test_rfc2231_and_attachments(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "Content-Type: multipart/mixed; boundary=B\n\n--B\n"
		     "Content-Type: application/octet-stream; name*0=\"Big\"; name*1=\"Report.EXE\"\n"
		     "Content-Transfer-Encoding: base64\n\naGlkZGVud29yZA==\n--B\n"
		     "Content-Type: application/pdf\n"
		     "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\n\n"
		     "%PDF-1.4 pdfword\n--B--\n");
	assert_token(tk, "fname:bigreport.exe");
	assert_token(tk, "fext:exe");
	assert_token(tk, "fname:r\xc3\xa9sum\xc3\xa9.pdf");
	assert_token(tk, "fext:pdf");
	assert_token(tk, "ct:application/pdf");
	assert_no_token(tk, "hiddenword");
	assert_no_token(tk, "pdfword");
}

static void test_attached_message(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "Subject: outer\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
		     "Content-Type: message/rfc822\n\nSubject: Inner Title\n"
		     "From: x@inner.example\n\ninnerbody\n--B--\n");
	assert_token(tk, "subj:outer");
	assert_token(tk, "subj:inner");
	assert_token(tk, "subj:title");
	assert_token(tk, "from:x@inner.example");
	assert_token(tk, "innerbody");
}

/* chaff_attached_message: the forwarded message itself, found through
 * nested multiparts and decoded; none in a message without one. */
static void test_find_attached_message(void **state)
{
	(void)state;
	const char *inner;
	size_t n;
	static const char plain[] =
		"Subject: fwd\nContent-Type: multipart/mixed; boundary=A\n\n--A\n"
		"Content-Type: text/plain\n\nsee below\n--A\n"
		"Content-Type: multipart/alternative; boundary=B\n\n--B\n"
		"Content-Type: text/plain\n\nnot this\n--B\n"
		"Content-Type: message/rfc822\n\nSubject: Inner Title\n\ninnerbody\n--B--\n--A--\n";
	assert_int_equal(chaff_attached_message(tok, plain, sizeof(plain) - 1, &inner, &n),
	                 CHAFF_OK);
	assert_int_equal(n, strlen("Subject: Inner Title\n\ninnerbody\n"));
	assert_memory_equal(inner, "Subject: Inner Title\n\ninnerbody\n", n);
	static const char b64[] =
		"Subject: fwd\nContent-Type: multipart/mixed; boundary=A\n\n--A\n"
		"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogSW5uZXIgVGl0bGUKRnJvbTogeEBpbm5lci5leGFtcGxlCgppbm5lcmJvZHkK\n"
		"--A--\n";
	assert_int_equal(chaff_attached_message(tok, b64, sizeof(b64) - 1, &inner, &n), CHAFF_OK);
	assert_int_equal(n, 54);
	assert_memory_equal(inner, "Subject: Inner Title\nFrom: x@inner.example\n\ninnerbody\n", n);
	/* the encoding's name in capitals: decoded the same, found and
	 * tokenized alike */
	static const char b64up[] =
		"Subject: fwd\nContent-Type: multipart/mixed; boundary=A\n\n--A\n"
		"Content-Type: message/rfc822\nContent-Transfer-Encoding: BASE64\n\nU3ViamVjdDogSW5uZXIgVGl0bGUKRnJvbTogeEBpbm5lci5leGFtcGxlCgppbm5lcmJvZHkK\n"
		"--A--\n";
	assert_int_equal(chaff_attached_message(tok, b64up, sizeof(b64up) - 1, &inner, &n),
	                 CHAFF_OK);
	assert_int_equal(n, 54);
	assert_memory_equal(inner, "Subject: Inner Title\nFrom: x@inner.example\n\ninnerbody\n", n);
	struct chaff_tokens tk;
	assert_int_equal(chaff_tokenize(tok, b64up, sizeof(b64up) - 1, &tk), CHAFF_OK);
	assert_token(tk, "subj:inner");
	assert_token(tk, "innerbody");
	static const char none[] = "Subject: hi\nContent-Type: text/plain\n\nno attachment\n";
	assert_int_equal(chaff_attached_message(tok, none, sizeof(none) - 1, &inner, &n),
	                 CHAFF_ENOTFOUND);
	/* a whole message that is itself message/rfc822 */
	static const char whole[] = "Content-Type: message/rfc822\n\nSubject: x\n\ny\n";
	assert_int_equal(chaff_attached_message(tok, whole, sizeof(whole) - 1, &inner, &n),
	                 CHAFF_OK);
	assert_memory_equal(inner, "Subject: x\n\ny\n", n);
	/* a digest's part without a Content-Type is a message */
	static const char digest[] =
	        "Subject: d\nContent-Type: multipart/digest; boundary=D\n\n--D\n"
	        "\nSubject: in digest\n\nz\n--D--\n";
	assert_int_equal(chaff_attached_message(tok, digest, sizeof(digest) - 1, &inner, &n),
	                 CHAFF_OK);
	assert_int_equal(n, strlen("Subject: in digest\n\nz\n"));
	assert_memory_equal(inner, "Subject: in digest\n\nz\n", n);
	/* in any other multipart it is text */
	static const char mixed[] = "Subject: d\nContent-Type: multipart/mixed; boundary=D\n\n--D\n"
	                            "\nSubject: in digest\n\nz\n--D--\n";
	assert_int_equal(chaff_attached_message(tok, mixed, sizeof(mixed) - 1, &inner, &n),
	                 CHAFF_ENOTFOUND);
}

static void test_html_and_encodings(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "Content-Type: text/html; charset=iso-8859-1\n"
		     "Content-Transfer-Encoding: quoted-printable\n\n"
		     "<html><head><style>.x{stylew:1}</style><script>scriptw()</script></head>"
		     "<body>Vi<!-- c -->agra Ci<b>alis</b> <td>foo</td><td>bar</td> "
		     "caf=E9 &eacute;t&#233; &#x41;BC &amp;&nbsp;ok "
		     "<a href=3D\"http://Click.Example.com/x\">here</a> <img src=3D'http://img.example.net/i.gif'>"
		     "</body></html>\n");
	assert_token(tk, "viagra");
	assert_token(tk, "cialis");
	assert_token(tk, "foo");
	assert_token(tk, "bar");
	assert_no_token(tk, "foobar");
	assert_token(tk, "caf\xc3\xa9");
	assert_token(tk, "\xc3\xa9t\xc3\xa9");
	assert_token(tk, "abc");
	assert_token(tk, "url:click.example.com");
	assert_token(tk, "url:img.example.net");
	assert_no_token(tk, "stylew");
	assert_no_token(tk, "scriptw");
	assert_no_token(tk, "href");
}

/* What a browser hides without a break and what it decodes: bogus
 * comments join a word, character references inside a link name its host,
 * legacy entities need no semicolon, and a query's "&copy=" stays text. */
static void test_html_as_a_browser_reads_it(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "Content-Type: text/html\n\n"
		     "Vi<!x>agra Ci<?x?>alis Le</ x>vitra Xa</>nax "
		     "<a href=\"http://evil&#46;example&#46;com/\">a</a> "
		     "<a href='&#104;ttp://spam.example.net/'>b</a> "
		     "<a href=\"http://q.example.org/?a=1&copy=2\">c</a> "
		     "&nbspFREE caf&eacutes end</\n");
	assert_token(tk, "viagra");
	assert_token(tk, "cialis");
	assert_token(tk, "levitra");
	assert_token(tk, "xanax");
	assert_no_token(tk, "agra");
	assert_token(tk, "url:evil.example.com");
	assert_token(tk, "url:example.com");
	assert_token(tk, "url:spam.example.net");
	assert_token(tk, "url:q.example.org");
	assert_token(tk, "free");
	assert_no_token(tk, "nbspfree");
	assert_token(tk, "caf\xc3\xa9s");
	assert_token(tk, "end");
}

/* File names and extensions fold letters of every script, as the address
 * tokens do, so that a name in capitals is the same token. */
static void test_names_fold_every_script(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "From: <JOE@B\xc3\x9cRO.example.de>\n"
		     "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		     "Content-Type: application/zip; name=\"\xc3\x84NDERUNG.ZIP\"\n\nx\n--b\n"
		     "Content-Type: application/pdf;\n name*=utf-8''%D0%A1%D0%A7%D0%81%D0%A2.PDF\n\nx\n--b--\n");
	assert_token(tk, "from:joe@b\xc3\xbcro.example.de");
	assert_token(tk, "fname:\xc3\xa4nderung.zip");
	assert_token(tk, "fext:zip");
	assert_token(tk, "fname:\xd1\x81\xd1\x87\xd1\x91\xd1\x82.pdf");
	assert_token(tk, "fext:pdf");
}

/* Values a header gives whole hold no control characters in their tokens
 * ('?' in their place): printed one per line, an LF in a file name would
 * forge a line of output, an ESC steer the terminal. */
static void test_control_characters_in_values(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
	        tok,
	        "Content-Type: text/pl\033ain; charset=\"ut\001f\"\n"
	        "Content-Transfer-Encoding: 8b\177it\n"
	        "Content-Disposition: attachment; filename*=utf-8''x%0Aspam%1B%5B2J%C2%9B1m.exe\n"
	        "Message-ID: <a@b\xc2\x85"
	        "c\xc2\xa0"
	        "d>\n"
	        "\nhello\n");
	assert_token(tk, "ct:text/pl?ain");
	assert_token(tk, "charset:ut?f");
	assert_token(tk, "cte:8b?it");
	assert_token(tk, "fname:x?spam?[2j??1m.exe");
	/* C1 (U+0085) is a control; U+00A0 is not */
	assert_token(tk, "msgid:b??c\xc2\xa0"
	                 "d");
	assert_token(tk, "fext:exe");
	for (size_t i = 0; i < tk.count; i++)
		for (size_t k = 0; k < tk.items[i].len; k++) {
			unsigned char c = (unsigned char)tk.items[i].text[k];
			unsigned char d = (unsigned char)tk.items[i].text[k + 1];
			if (c < 0x20 || c == 0x7f || (c == 0xc2 && d >= 0x80 && d <= 0x9f))
				fail_msg("control character in token '%s'", tk.items[i].text);
		}
}

/* Boundary lines are found among lines that start with '-' but are none
 * (signatures, rules, a longer boundary), in CRLF text too, and at the
 * very start of the body. */
static void test_boundaries_among_dash_lines(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
	        tok, "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\nfirstpart\r\n"
	             "-- \r\nsignature words\r\n--zzz\r\n----------\r\n-\r\n"
	             "--zz\r\nContent-Type: text/plain\r\n\r\nsecondpart\r\n--zz--\r\n"
	             "epilogue words\r\n");
	assert_token(tk, "firstpart");
	assert_token(tk, "signature");
	assert_token(tk, "secondpart");
	assert_no_token(tk, "epilogue");
	assert_int_equal(test_count(&tk, "ct:text/plain"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_html_as_a_browser_reads_it),
	        cmocka_unit_test(test_names_fold_every_script),
	        cmocka_unit_test(test_boundary_prefix_of_another),
	        cmocka_unit_test(test_missing_boundaries),
	        cmocka_unit_test(test_rfc2231_and_attachments),
	        cmocka_unit_test(test_attached_message),
	        cmocka_unit_test(test_find_attached_message),
	        cmocka_unit_test(test_html_and_encodings),
	        cmocka_unit_test(test_control_characters_in_values),
	        cmocka_unit_test(test_boundaries_among_dash_lines),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
