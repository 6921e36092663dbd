/* The SMTP/LMTP state machine without sockets: bytes in, replies out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "serve/smtp.h"

struct fixture {
	struct smtp_config cfg;
	struct smtp_session s;
	const char *domains[1];
};

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	f.cfg = (struct smtp_config){ .hostname = "mx.test", .max_size = 1000, .max_rcpt = 3,
		                      .max_errors = 10, .learn_spam = "learn-spam@",
		                      .learn_ham = "ham@example.org" };
	smtp_init(&f.s, &f.cfg);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	smtp_free(&f->s);
	return 0;
}

/* Feeds all of text; returns the replies it produced (and clears them).
 * *ev receives the last event. Stops at a message event. */
static const char *feed(struct fixture *f, const char *text, enum smtp_event *ev, size_t *used)
{
	static char out[8192];
	size_t u = smtp_feed(&f->s, text, strlen(text), ev);
	if (used)
		*used = u;
	size_t n = f->s.out.len < sizeof(out) - 1 ? f->s.out.len : sizeof(out) - 1;
	memcpy(out, f->s.out.p, n);
	out[n] = '\0';
	f->s.out.len = 0;
	return out;
}

static const char *cmd(struct fixture *f, const char *text)
{
	enum smtp_event ev;
	return feed(f, text, &ev, NULL);
}

static void test_greeting_and_ehlo(void **state)
{
	struct fixture *f = *state;
	smtp_greet(&f->s);
	assert_string_equal(cmd(f, ""), "220 mx.test ESMTP chaff\r\n");
	assert_string_equal(cmd(f, "EHLO client\r\n"),
	                    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
	                    "250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n");
	assert_string_equal(cmd(f, "helo client\n"), "250 mx.test\r\n");
	assert_string_equal(cmd(f, "LHLO client\r\n"), "500 5.5.1 Error: this is SMTP, not LMTP\r\n");
	assert_string_equal(cmd(f, "EHLO\r\n"), "501 5.5.4 Syntax: EHLO hostname\r\n");
}

static void test_order_errors(void **state)
{
	struct fixture *f = *state;
	assert_string_equal(cmd(f, "MAIL FROM:<a@b>\r\n"),
	                    "503 5.5.1 Error: send HELO/EHLO first\r\n");
	cmd(f, "EHLO c\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<a@b>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
	assert_string_equal(cmd(f, "DATA\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<a@b>\r\n"), "250 2.1.0 Ok\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<a@b>\r\n"), "503 5.5.1 Error: nested MAIL command\r\n");
	assert_string_equal(cmd(f, "DATA\r\n"), "503 5.5.1 Error: need RCPT command\r\n");
	assert_string_equal(cmd(f, "RSET\r\n"), "250 2.0.0 Ok\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<a@b>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
}

static void test_mail_parameters(void **state)
{
	struct fixture *f = *state;
	cmd(f, "EHLO c\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<a@b> SIZE=1001\r\n"),
	                    "552 5.3.4 Message size exceeds fixed limit\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<a@b> FOO=1\r\n"),
	                    "555 5.5.4 Unsupported option: FOO\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<a@b> BODY=BINARYMIME\r\n"),
	                    "501 5.5.4 Unsupported BODY parameter\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:a@b c\r\n"), "555 5.5.4 Unsupported option: c\r\n");
	assert_string_equal(cmd(f, "MAIL TO:<a@b>\r\n"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<a b@c>\r\n"),
	                    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<@relay.example:a@b> SIZE=999 BODY=8BITMIME\r\n"),
	                    "250 2.1.0 Ok\r\n");
	assert_string_equal(f->s.from.p, "a@b");
	assert_true(f->s.body8);
	cmd(f, "RSET\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<>\r\n"), "250 2.1.0 Ok\r\n");
	assert_string_equal(f->s.from.p, "");
	assert_string_equal(cmd(f, "RCPT TO:<>\r\n"), "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
}

static void test_relay_and_learn(void **state)
{
	struct fixture *f = *state;
	f->domains[0] = "example.org";
	f->cfg.domains = f->domains;
	f->cfg.ndomains = 1;
	cmd(f, "EHLO c\r\nMAIL FROM:<a@b>\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<x@elsewhere.net>\r\n"),
	                    "550 5.7.1 <x@elsewhere.net>: Relaying denied\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<x@notexample.org>\r\n"),
	                    "550 5.7.1 <x@notexample.org>: Relaying denied\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<x%evil.net@example.org>\r\n"),
	                    "550 5.7.1 <x%evil.net@example.org>: Relaying denied\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<x@evil.net@example.org>\r\n"),
	                    "550 5.7.1 <x@evil.net@example.org>: Relaying denied\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<evil.net!x@example.org>\r\n"),
	                    "550 5.7.1 <evil.net!x@example.org>: Relaying denied\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<x@Mail.Example.ORG>\r\n"), "250 2.1.5 Ok\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<Postmaster>\r\n"), "250 2.1.5 Ok\r\n");
	/* a training address does not mix with others */
	assert_memory_equal(cmd(f, "RCPT TO:<learn-spam@anywhere.net>\r\n"), "550 5.5.1", 9);
	cmd(f, "RSET\r\nMAIL FROM:<a@b>\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<LEARN-SPAM@anywhere.net>\r\n"), "250 2.1.5 Ok\r\n");
	assert_int_equal(f->s.learn, SMTP_LEARN_SPAM);
	assert_memory_equal(cmd(f, "RCPT TO:<x@example.org>\r\n"), "550 5.5.1", 9);
	assert_memory_equal(cmd(f, "RCPT TO:<ham@example.org>\r\n"), "550 5.5.1", 9);
	cmd(f, "RSET\r\nMAIL FROM:<a@b>\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<ham@example.org>\r\n"), "250 2.1.5 Ok\r\n");
	assert_int_equal(f->s.learn, SMTP_LEARN_HAM);
	cmd(f, "RSET\r\nMAIL FROM:<a@b>\r\n");
	/* ham@ is a whole address: at another domain it is an ordinary one */
	assert_string_equal(cmd(f, "RCPT TO:<ham@sub.example.org>\r\n"), "250 2.1.5 Ok\r\n");
	assert_int_equal(f->s.learn, SMTP_LEARN_NONE);
}

static void test_recipient_limit(void **state)
{
	struct fixture *f = *state;
	cmd(f, "EHLO c\r\nMAIL FROM:<a@b>\r\n");
	for (int i = 0; i < 3; i++)
		assert_string_equal(cmd(f, "RCPT TO:<x@y>\r\n"), "250 2.1.5 Ok\r\n");
	assert_string_equal(cmd(f, "RCPT TO:<x@y>\r\n"), "452 4.5.3 Error: too many recipients\r\n");
	assert_int_equal(f->s.nrcpt, 3);
}

/* Pipelined commands, dot-unstuffing, a mix of CRLF and bare LF, and the
 * commands after the message left for later. */
static void test_pipelined_message(void **state)
{
	struct fixture *f = *state;
	const char *in = "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\n"
	                 "Subject: hi\r\n\r\n..leading dot\nplain\r\n.\r\nQUIT\r\n";
	enum smtp_event ev;
	size_t used;
	const char *out = feed(f, in, &ev, &used);
	assert_int_equal(ev, SMTP_MESSAGE);
	assert_non_null(strstr(out, "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 "));
	assert_string_equal(in + used, "QUIT\r\n");
	assert_int_equal(f->s.msg.len, strlen("Subject: hi\n\n.leading dot\nplain\n"));
	assert_memory_equal(f->s.msg.p, "Subject: hi\n\n.leading dot\nplain\n", f->s.msg.len);
	assert_string_equal(f->s.rcpt[1], "z@y");
	/* nothing more is taken until the message is finished */
	assert_int_equal(smtp_feed(&f->s, in + used, strlen(in + used), &ev), 0);
	smtp_finish_all(&f->s, "250 2.0.0 Ok: queued as X");
	assert_string_equal(cmd(f, ""), "250 2.0.0 Ok: queued as X\r\n");
	assert_int_equal(f->s.nrcpt, 0);
	assert_string_equal(feed(f, in + used, &ev, NULL), "221 2.0.0 Bye\r\n");
	assert_int_equal(ev, SMTP_CLOSE);
}

/* The message arriving one byte at a time, with bare LF ends. A lone dot
 * next to a bare LF is a line of the message, not its end (RFC 5321
 * 4.1.1.4): what follows it is not read as commands. */
static void test_byte_by_byte(void **state)
{
	struct fixture *f = *state;
	const char *in = "HELO c\nMAIL FROM:<a@b>\nRCPT TO:<x@y>\nDATA\nA: b\n\nbody\r\n.x\n\n.\n"
	                 "MAIL FROM:<evil@z>\r\n.\nRCPT TO:<v@y>\n.\r\nDATA\r\n.\r\n";
	const char *want = "A: b\n\nbody\nx\n\n.\nMAIL FROM:<evil@z>\n.\nRCPT TO:<v@y>\n.\nDATA\n";
	struct buf pending = { 0 };
	enum smtp_event ev = SMTP_NONE;
	for (const char *p = in; *p && ev != SMTP_MESSAGE; p++) {
		buf_add(&pending, p, 1);
		size_t u = smtp_feed(&f->s, pending.p, pending.len, &ev);
		buf_consume(&pending, u);
	}
	assert_int_equal(ev, SMTP_MESSAGE);
	assert_int_equal(pending.len, 0);
	assert_int_equal(f->s.msg.len, strlen(want));
	assert_memory_equal(f->s.msg.p, want, strlen(want));
	buf_free(&pending);
}

static void test_size_limit_in_data(void **state)
{
	struct fixture *f = *state;
	cmd(f, "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n");
	char line[101];
	memset(line, 'x', 98);
	memcpy(line + 98, "\r\n", 3);
	enum smtp_event ev;
	for (int i = 0; i < 20; i++) /* 2000 bytes against a limit of 1000 */
		feed(f, line, &ev, NULL);
	const char *out = feed(f, ".\r\n", &ev, NULL);
	assert_int_equal(ev, SMTP_NONE);
	assert_string_equal(out, "552 5.3.4 Message size exceeds fixed limit\r\n");
	assert_int_equal(f->s.in_mail, false);
	assert_string_equal(cmd(f, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

static void test_long_lines_and_errors(void **state)
{
	struct fixture *f = *state;
	f->cfg.max_errors = 5;
	char big[3000];
	memset(big, 'A', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	assert_string_equal(cmd(f, big), "500 5.5.2 Error: line too long\r\n");
	/* a long line arriving in pieces is refused once */
	enum smtp_event ev;
	size_t used;
	big[2500] = '\0';
	assert_string_equal(feed(f, big, &ev, &used), "500 5.5.2 Error: line too long\r\n");
	assert_int_equal(used, 2500);
	assert_string_equal(cmd(f, "AAAA\r\n"), "");
	assert_string_equal(cmd(f, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
	assert_string_equal(cmd(f, "VRFY x\r\n"),
	                    "252 2.0.0 Send some mail and it will be delivered or bounced\r\n");
	assert_string_equal(cmd(f, "EXPN x\r\n"), "502 5.5.2 Error: command not recognized\r\n");
	assert_string_equal(cmd(f, "XYZZYPLUGH\r\n"), "502 5.5.2 Error: command not recognized\r\n");
	/* four errors so far, five allowed */
	const char *out = feed(f, "BAD\r\nNOOP\r\n", &ev, NULL);
	assert_string_equal(out, "502 5.5.2 Error: command not recognized\r\n"
	                         "421 4.7.0 mx.test Error: too many errors\r\n");
	assert_int_equal(ev, SMTP_CLOSE);
}

/* BDAT: chunks of exact sizes, CRLF across a chunk boundary, no dot
 * handling, commands right after the last chunk. */
static void test_bdat(void **state)
{
	struct fixture *f = *state;
	enum smtp_event ev;
	size_t used;
	const char *in = "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n"
	                 "BDAT 13\r\nSubject: x\r\r\nBDAT 10 LAST\r\n\n.\r\nbody\r\rNOOP\r\n";
	const char *out = feed(f, in, &ev, &used);
	assert_int_equal(ev, SMTP_MESSAGE);
	assert_non_null(strstr(out, "250 2.0.0 Ok: 13 octets\r\n"));
	assert_string_equal(in + used, "NOOP\r\n");
	/* "Subject: x\r" + "\r\n" + "\n.\r\nbody\r\r": CRLF pairs become LF
	 * even across chunks, lone CRs stay, a dot line is just data */
	assert_int_equal(f->s.msg.len, 21);
	assert_memory_equal(f->s.msg.p, "Subject: x\r\n\n.\nbody\r\r", 21);
	smtp_finish_all(&f->s, "250 2.0.0 Ok");
	assert_string_equal(cmd(f, ""), "250 2.0.0 Ok\r\n");
	/* DATA after BDAT, and BDAT without a transaction: its bytes skipped */
	cmd(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n");
	assert_string_equal(cmd(f, "BDAT 3\r\nabc"), "250 2.0.0 Ok: 3 octets\r\n");
	assert_memory_equal(cmd(f, "DATA\r\n"), "503 5.5.1", 9);
	cmd(f, "RSET\r\n");
	assert_string_equal(cmd(f, "BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n"),
	                    "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n");
	/* a chunk past the size limit: read to its end, then 552 */
	cmd(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n");
	char big[1200];
	int k = snprintf(big, sizeof(big), "BDAT 1100 LAST\r\n");
	memset(big + k, 'x', 1100);
	big[k + 1100] = '\0';
	assert_string_equal(feed(f, big, &ev, NULL), "552 5.3.4 Message size exceeds fixed limit\r\n");
	assert_int_equal(ev, SMTP_NONE);
	/* a middle chunk past the limit ends the transaction there; the
	 * sender's next chunk is skipped */
	cmd(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n");
	k = snprintf(big, sizeof(big), "BDAT 1100\r\n");
	memset(big + k, 'x', 1100);
	big[k + 1100] = '\0';
	assert_string_equal(feed(f, big, &ev, NULL), "552 5.3.4 Message size exceeds fixed limit\r\n");
	assert_string_equal(cmd(f, "BDAT 2 LAST\r\nxyNOOP\r\n"),
	                    "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n");
	/* an empty last chunk ends the message at once */
	cmd(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n");
	feed(f, "BDAT 0 LAST\r\n", &ev, NULL);
	assert_int_equal(ev, SMTP_MESSAGE);
	assert_int_equal(f->s.msg.len, 0);
	smtp_finish_all(&f->s, "250 2.0.0 Ok");
	cmd(f, "");
	/* a count that cannot be read: no way to find the next command */
	assert_string_equal(feed(f, "BDAT lots\r\nNOOP\r\n", &ev, NULL),
	                    "501 5.5.4 Syntax: BDAT count [LAST]\r\n"
	                    "421 4.7.0 mx.test Error: cannot find the end of that chunk\r\n");
	assert_int_equal(ev, SMTP_CLOSE);
}

/* LAST is a word of its own: "BDAT 10LAST" is a count that cannot be read */
static void test_bdat_last_is_a_word(void **state)
{
	struct fixture *f = *state;
	enum smtp_event ev;
	cmd(f, "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n");
	assert_string_equal(feed(f, "BDAT 10LAST\r\n0123456789", &ev, NULL),
	                    "501 5.5.4 Syntax: BDAT count [LAST]\r\n"
	                    "421 4.7.0 mx.test Error: cannot find the end of that chunk\r\n");
	assert_int_equal(ev, SMTP_CLOSE);
}

static void test_lmtp(void **state)
{
	struct fixture *f = *state;
	f->cfg.lmtp = true;
	smtp_greet(&f->s);
	assert_string_equal(cmd(f, ""), "220 mx.test LMTP chaff\r\n");
	assert_string_equal(cmd(f, "EHLO c\r\n"), "500 5.5.1 Error: this is LMTP, send LHLO\r\n");
	assert_string_equal(cmd(f, "MAIL FROM:<a@b>\r\n"), "503 5.5.1 Error: send LHLO first\r\n");
	assert_memory_equal(cmd(f, "LHLO c\r\n"), "250-mx.test\r\n", 13);
	enum smtp_event ev;
	feed(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\nbody\r\n.\r\n", &ev,
	     NULL);
	assert_int_equal(ev, SMTP_MESSAGE);
	const char *replies[] = { "250 2.0.0 x ok", "452 4.2.2 z full" };
	smtp_finish(&f->s, replies);
	assert_string_equal(cmd(f, ""), "250 2.0.0 x ok\r\n452 4.2.2 z full\r\n");
	/* a message over the size limit: a refusal for every recipient */
	feed(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\n", &ev, NULL);
	char line[101];
	memset(line, 'x', 98);
	memcpy(line + 98, "\r\n", 3);
	for (int i = 0; i < 11; i++)
		feed(f, line, &ev, NULL);
	assert_string_equal(feed(f, ".\r\n", &ev, NULL),
	                    "552 5.3.4 Message size exceeds fixed limit\r\n"
	                    "552 5.3.4 Message size exceeds fixed limit\r\n");
	/* a middle BDAT chunk over the limit: one reply, as every middle chunk */
	feed(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\n", &ev, NULL);
	char big[1200];
	int k = snprintf(big, sizeof(big), "BDAT 1100\r\n");
	memset(big + k, 'x', 1100);
	memcpy(big + k + 1100, "NOOP\r\n", 7);
	assert_string_equal(feed(f, big, &ev, NULL),
	                    "552 5.3.4 Message size exceeds fixed limit\r\n250 2.0.0 Ok\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_greeting_and_ehlo, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bdat_last_is_a_word, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_order_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mail_parameters, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_relay_and_learn, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_recipient_limit, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pipelined_message, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_byte_by_byte, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_size_limit_in_data, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_long_lines_and_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bdat, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lmtp, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
