/* libFuzzer target: any bytes as an SMTP or LMTP client's side of the
 * conversation, cut into reads of varying size the way a socket delivers
 * them. The state machine must neither crash nor leak, and must use every
 * byte it is offered once its messages are finished. */
#include <stddef.h>
#include <stdint.h>

#include "serve/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* The first byte picks the mode and the read size. */
	static const char *domains[] = { "example.org" };
	struct smtp_config cfg = { .hostname = "fuzz", .lmtp = data[0] & 1, .max_size = 4096,
		                   .max_rcpt = 8, .max_errors = 50, .domains = domains,
		                   .ndomains = (data[0] & 2) ? 1 : 0, .learn_spam = "spam@",
		                   .learn_ham = "ham@example.org" };
	size_t chunk = 1 + (data[0] >> 2);
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	struct smtp_session s;
	smtp_init(&s, &cfg);
	smtp_greet(&s);
	struct buf in = { 0 };
	size_t off = 0;
	while (off < n || in.len) {
		size_t take = n - off < chunk ? n - off : chunk;
		buf_add(&in, p + off, take);
		off += take;
		enum smtp_event ev;
		size_t used = smtp_feed(&s, in.p, in.len, &ev);
		buf_consume(&in, used);
		if (ev == SMTP_MESSAGE) {
			smtp_finish_all(&s, "250 2.0.0 Ok");
			continue;
		}
		if (ev == SMTP_CLOSE)
			break;
		s.out.len = 0;
		if (take == 0)
			break; /* the input ended inside a line */
	}
	buf_free(&in);
	smtp_free(&s);
	return 0;
}
