/* Header tokens, header by header (docs/tokens.md, "Header tokens"). */
#include "test_util.h"

TEST_DEFAULT_TOKENIZER

static void test_subject_and_unfolding(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(tok, "Subject: Cheap\n\tWatches =?utf-8?Q?f=C3=BCr?=\n =?utf-8?Q?_Sie?=\n\nbody\n");
	assert_token(tk, "subj:cheap");
	assert_token(tk, "subj:watches");
	assert_token(tk, "subj:f\xc3\xbcr");
	assert_token(tk, "subj:sie");
	assert_token(tk, "body");
	assert_no_token(tk, "cheap");
}

static void test_addresses(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "From: \"Joe Bloggs\" <Joe@Mail.Example.com>\n"
		     "To: a@x.org, \"B\" <b@y.net>\nCc: c@z.info\n"
		     "Reply-To: =?utf-8?B?U2FsZXM=?= <sales@deals.biz>\n"
		     "Return-Path: <bounce@mx.example.com>\n\nhi\n");
	assert_token(tk, "from:joe");
	assert_token(tk, "from:bloggs");
	assert_token(tk, "from:joe@mail.example.com");
	assert_token(tk, "from:@mail.example.com");
	assert_token(tk, "from:@example.com");
	assert_token(tk, "to:a@x.org");
	assert_token(tk, "to:@y.net");
	assert_token(tk, "to:c@z.info");
	assert_token(tk, "reply-to:sales");
	assert_token(tk, "reply-to:sales@deals.biz");
	assert_token(tk, "rpath:bounce@mx.example.com");
	assert_token(tk, "rpath:@example.com");
	tk = test_tokenize(tok, "Return-Path: <>\n\nhi\n");
	assert_token(tk, "rpath:<>");
}

static void test_received(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "Received: from relay.Mail.example.net (relay.mail.example.net [192.0.2.17])\n"
		     "\tby mx.example.org (Postfix 8.9.3/8.9.3) with ESMTP id 1A2B\n"
		     "Received: from [IPv6:2001:db8::1] by h.example.org\n\nhi\n");
	assert_token(tk, "rcvd:192.0.2.17");
	assert_token(tk, "rcvd:192.0.2");
	assert_token(tk, "rcvd:relay.mail.example.net");
	assert_token(tk, "rcvd:mail.example.net");
	assert_token(tk, "rcvd:example.net");
	assert_token(tk, "rcvd:mx.example.org");
	assert_token(tk, "rcvd:2001:db8::1");
	assert_no_token(tk, "rcvd:8.9.3");
	assert_no_token(tk, "rcvd:net");
}

static void test_ids_mailers_lists_auth(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(
		tok, "Message-ID: <abc.123@Host.Example.COM>\nX-Mailer: Foo Mailer 5.0\n"
		     "User-Agent: Mutt/1.5\nList-Id: Users <users.lists.example.org>\n"
		     "List-Unsubscribe: <mailto:u@example.org>\n"
		     "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=x;\n"
		     " dkim=FAIL header.d=y; dmarc=none\n"
		     "Received-SPF: softfail (domain of x)\nX-Whatever: 1\n\nhi\n");
	assert_token(tk, "msgid:host.example.com");
	assert_token(tk, "xm:foo");
	assert_token(tk, "xm:mailer");
	assert_token(tk, "xm:mutt");
	assert_token(tk, "list:id");
	assert_token(tk, "list:unsubscribe");
	assert_token(tk, "list-id:users");
	assert_token(tk, "auth:spf=pass");
	assert_token(tk, "auth:dkim=fail");
	assert_token(tk, "auth:dmarc=none");
	assert_token(tk, "auth:spf=softfail");
	assert_token(tk, "hdr:x-whatever");
	assert_no_token(tk, "msgid:none");
	tk = test_tokenize(tok, "Subject: no id\n\nhi\n");
	assert_token(tk, "msgid:none");
	/* verdicts in comments and quoted strings are not this host's: Gmail
	 * writes an earlier hop's into the comment of its arc=pass */
	tk = test_tokenize(
		tok, "Authentication-Results: mx.google.com;\n"
		     " arc=pass (i=1 spf=pass dkim=pass (nested dmarc=pass) \\) dmarc=none);\n"
		     " spf=softfail (domain of x does not designate) smtp.mailfrom=\"dkim=pass\";\n"
		     " dmarc=fail (p=REJECT arc=none) header.from=bank.example\n\nhi\n");
	assert_token(tk, "auth:arc=pass");
	assert_token(tk, "auth:spf=softfail");
	assert_token(tk, "auth:dmarc=fail");
	assert_no_token(tk, "auth:spf=pass");
	assert_no_token(tk, "auth:dkim=pass");
	assert_no_token(tk, "auth:dmarc=pass");
	assert_no_token(tk, "auth:dmarc=none");
	assert_no_token(tk, "auth:arc=none");
}

static void test_verdict_headers_skipped(void **state)
{
	(void)state;
	const char *msg = "X-Spam-Status: Yes, score=9.9\nX-Spam-Flag: YES\nX-Chaff-Score: 0.99\n"
	                  "Subject: s\n\nhi\n";
	struct chaff_tokens tk = test_tokenize(tok, msg);
	for (size_t i = 0; i < tk.count; i++) {
		assert_null(strstr(tk.items[i].text, "spam"));
		assert_null(strstr(tk.items[i].text, "chaff"));
	}
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	cfg.flags |= CHAFF_TOK_VERDICT_HEADERS;
	chaff_tokenizer *keep;
	assert_int_equal(chaff_tokenizer_new(&cfg, &keep), CHAFF_OK);
	tk = test_tokenize(keep, msg);
	assert_token(tk, "hdr:x-spam-status");
	chaff_tokenizer_free(keep);
}

static void test_no_headers_and_mbox_line(void **state)
{
	(void)state;
	struct chaff_tokens tk = test_tokenize(tok, "just some text, no headers\n");
	assert_token(tk, "just");
	assert_token(tk, "headers");
	tk = test_tokenize(tok, "From someone@example.com Mon Jan  1 00:00:00 2024\nSubject: hi there\n\nyo\n");
	assert_token(tk, "subj:there");
	assert_no_token(tk, "someone");
	assert_no_token(tk, "2024");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subject_and_unfolding),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_ids_mailers_lists_auth),
		cmocka_unit_test(test_verdict_headers_skipped),
		cmocka_unit_test(test_no_headers_and_mbox_line),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
