/*
 * A message's training identity. Relays add Received, Delivered-To and
 * filter headers, mailbox software adds its own, and a mail client saves
 * with CRLF or LF: none of that should make a re-delivered or re-saved copy
 * a new message. So the digest covers the body with line ends normalised
 * (and trailing blank lines dropped),
 * and only the headers an author writes (From, To, Cc, Subject, Date,
 * Message-ID), with folding white space normalised.
 */
#include "tok.h"

static bool identity_header(const char *name, size_t n)
{
	return TOK_IEQ(name, n, "from") || TOK_IEQ(name, n, "to") || TOK_IEQ(name, n, "cc") ||
	       TOK_IEQ(name, n, "subject") || TOK_IEQ(name, n, "date") ||
	       TOK_IEQ(name, n, "message-id");
}

/* Feeds a header value with every run of white space (line breaks
 * included) as one space, so folding and line ends do not count. */
static void feed_squeezed(XXH3_state_t *st, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			continue;
		if (i > run)
			XXH3_128bits_update(st, s + run, i - run);
		while (i + 1 < n && (s[i + 1] == ' ' || s[i + 1] == '\t' || s[i + 1] == '\r' ||
		                     s[i + 1] == '\n'))
			i++;
		XXH3_128bits_update(st, " ", 1);
		run = i + 1;
	}
	if (n > run)
		XXH3_128bits_update(st, s + run, n - run);
}

/* Feeds text without the '\r' of each CRLF, so line ends do not count. */
static void feed_lf(XXH3_state_t *st, const char *s, size_t n)
{
	const char *q = s, *e = s + n, *cr;
	while ((cr = memchr(q, '\r', (size_t)(e - q))) != NULL) {
		bool crlf = cr + 1 < e && cr[1] == '\n';
		XXH3_128bits_update(st, q, (size_t)(cr - q) + !crlf);
		q = cr + 1;
	}
	XXH3_128bits_update(st, q, (size_t)(e - q));
}

/* True when a line of s is "From " after one or more '>'. Looks at each
 * 'F' (a search for line starts, or for ">", costs several times more on
 * HTML and on text of short lines). */
static bool quoted_from(const char *s, size_t n)
{
	const char *p = s, *e = s + n;
	while ((p = memchr(p, 'F', (size_t)(e - p))) != NULL) {
		if (p > s && p[-1] == '>' && e - p >= 5 && memcmp(p, "From ", 5) == 0) {
			const char *a = p - 1;
			while (a > s && a[-1] == '>')
				a--;
			if (a == s || a[-1] == '\n')
				return true;
		}
		p++;
	}
	return false;
}

/* Feeds a body as feed_lf does, with a line ">From ", quoted by any number
 * of '>', fed as "From ": mbox formats quote such lines differently
 * (mboxo, mboxrd) and a message file with an envelope line may not quote
 * them at all, and a copy of a message should not become another message
 * by the way it was stored. Bodies with no line starting '>' take the
 * straight path. */
static void feed_body(XXH3_state_t *st, const char *s, size_t n)
{
	if (!quoted_from(s, n)) {
		feed_lf(st, s, n);
		return;
	}
	const char *q = s, *e = s + n, *run = s;
	while (q < e) {
		const char *a = q;
		while (a < e && *a == '>')
			a++;
		if (a > q && e - a >= 5 && memcmp(a, "From ", 5) == 0) {
			feed_lf(st, run, (size_t)(q - run));
			run = a;
		}
		const char *nl = memchr(q, '\n', (size_t)(e - q));
		q = nl ? nl + 1 : e;
	}
	feed_lf(st, run, (size_t)(e - run));
}

void chaff_message_digest(const void *msg, size_t len, struct chaff_digest *out)
{
	if (!out)
		return;
	if (!msg)
		len = 0;
	const char *p = msg ? msg : "", *end = p + len;
	XXH3_state_t st;
	XXH3_128bits_reset(&st);
	if (len >= 5 && memcmp(p, "From ", 5) == 0) {
		const char *nl = memchr(p, '\n', len);
		p = nl ? nl + 1 : end;
	}
	/* Headers: name, then the unfolded value. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le == p || (le == p + 1 && *p == '\r')) {
			p = nl ? nl + 1 : end;
			break;
		}
		/* the header block ends where the tokenizer ends it: a copy
		 * that gained a blank line there (chaff filter adds one) is
		 * the same message */
		const char *colon, *ne = tok_field(p, le, &colon);
		if (!ne)
			break;
		/* the header's extent: its continuation lines too */
		const char *next = nl ? nl + 1 : end;
		while (next < end && (*next == ' ' || *next == '\t')) {
			const char *n2 = memchr(next, '\n', (size_t)(end - next));
			next = n2 ? n2 + 1 : end;
		}
		if (identity_header(p, (size_t)(ne - p))) {
			for (const char *c = p; c < ne; c++) {
				char lc = tok_lc(*c);
				XXH3_128bits_update(&st, &lc, 1);
			}
			XXH3_128bits_update(&st, ":", 1);
			const char *v = colon + 1;
			size_t vn = (size_t)(next - v);
			while (vn && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')) {
				v++;
				vn--;
			}
			while (vn && (v[vn - 1] == '\n' || v[vn - 1] == '\r' || v[vn - 1] == ' ' ||
			              v[vn - 1] == '\t'))
				vn--;
			feed_squeezed(&st, v, vn);
			XXH3_128bits_update(&st, "\n", 1);
		}
		p = next;
	}
	XXH3_128bits_update(&st, "\n", 1);
	/* Trailing line ends and blanks do not count: an mbox adds a blank
	 * line after each message, a saved file may or may not end in one. */
	while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	feed_body(&st, p, (size_t)(end - p));
	XXH128_hash_t h = XXH3_128bits_digest(&st);
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, h);
	memcpy(out->bytes, c.digest, sizeof(out->bytes));
}
