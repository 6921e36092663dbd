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

/* The hash's input is gathered here: a message's identity headers and a
 * CRLF body come in pieces of a few bytes, and each update of XXH3's
 * streaming state costs as much as hashing a few dozen bytes. Pieces are
 * copied together and the state updated once per full buffer; a long
 * piece goes straight to the state after what was gathered before it.
 * The hash is of the same bytes in the same order either way. */
struct feed {
	XXH3_state_t st;
	size_t n;
	char buf[512];
};

static void feed_flush(struct feed *f)
{
	if (f->n)
		XXH3_128bits_update(&f->st, f->buf, f->n);
	f->n = 0;
}

static void feed(struct feed *f, const char *s, size_t n)
{
	if (f->n + n > sizeof(f->buf)) {
		feed_flush(f);
		if (n > sizeof(f->buf) / 2) {
			XXH3_128bits_update(&f->st, s, n);
			return;
		}
	}
	memcpy(f->buf + f->n, s, n);
	f->n += n;
}

/* Feeds a header value with every run of white space (line breaks
 * included) as one space, so folding and line ends do not count. */
static void feed_squeezed(struct feed *f, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			continue;
		if (i > run)
			feed(f, s + run, i - run);
		while (i + 1 < n && (s[i + 1] == ' ' || s[i + 1] == '\t' || s[i + 1] == '\r' ||
		                     s[i + 1] == '\n'))
			i++;
		feed(f, " ", 1);
		run = i + 1;
	}
	if (n > run)
		feed(f, s + run, n - run);
}

/* Feeds text without the '\r' of each CRLF, so line ends do not count. */
static void feed_lf(struct feed *f, const char *s, size_t n)
{
	const char *q = s, *e = s + n, *cr;
	while ((cr = memchr(q, '\r', (size_t)(e - q))) != NULL) {
		bool crlf = cr + 1 < e && cr[1] == '\n';
		feed(f, q, (size_t)(cr - q) + !crlf);
		q = cr + 1;
	}
	feed(f, q, (size_t)(e - q));
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
static void feed_body(struct feed *f, const char *s, size_t n)
{
	if (!quoted_from(s, n)) {
		feed_lf(f, s, n);
		return;
	}
	const char *q = s, *e = s + n, *run = s;
	while (q < e) {
		const char *a = q;
		while (a < e && *a == '>')
			a++;
		if (a > q && e - a >= 5 && memcmp(a, "From ", 5) == 0) {
			feed_lf(f, run, (size_t)(q - run));
			run = a;
		}
		const char *nl = memchr(q, '\n', (size_t)(e - q));
		q = nl ? nl + 1 : e;
	}
	feed_lf(f, run, (size_t)(e - run));
}

int chaff_tagged_field(const char *line, size_t n)
{
	/* a field as the tokenizer reads one: the name, then the colon,
	 * which old syntax lets spaces precede ("X-Spam-Flag : YES") */
	const char *colon, *ne = line ? tok_field(line, line + n, &colon) : NULL;
	size_t k = ne ? (size_t)(ne - line) : 0;
	return ne && (TOK_IEQ(line, k, "x-spam-flag") || TOK_IEQ(line, k, "x-spam-status") ||
	              TOK_IEQ(line, k, "x-spam-level") || TOK_IPREFIX(line, k, "x-chaff-"));
}

/*
 * The body from p, where a header block ended at a line that is no field
 * (nor led by white space), up to the first blank line: chaff filter
 * removes its own fields there (and their continuation lines), since a
 * mail reader may still take them for header fields. The digest passes
 * over the same lines, so that a message and its tagged copy are one
 * message. The lines kept are fed in two passes: the first finds the
 * last byte that is not white space, where the body ends when nothing
 * but white space follows the zone (trailing blank lines do not count,
 * and the fields left out may have stood after the last text). Returns
 * where the rest of the body starts (the blank line), or p when there is
 * no blank line (the filter then removes nothing).
 */
static const char *feed_zone(struct feed *f, const char *p, const char *end, const char *body_end)
{
	const char *zone_end = p, *nl;
	/* (a last line without its line end is no blank line) */
	while ((nl = memchr(zone_end, '\n', (size_t)(end - zone_end))) != NULL && nl != zone_end &&
	       !(nl == zone_end + 1 && *zone_end == '\r'))
		zone_end = nl + 1;
	if (!nl)
		return p; /* no blank line */
	/* nothing but white space after the zone: it ends the body */
	bool last_text = zone_end >= body_end;
	const char *cut = zone_end;
	for (int pass = last_text ? 0 : 1; pass < 2; pass++) {
		const char *run = p;
		bool skipping = false;
		for (const char *q = p; q < zone_end;) {
			const char *lnl = memchr(q, '\n', (size_t)(zone_end - q));
			const char *next = lnl ? lnl + 1 : zone_end;
			const char *le = lnl ? lnl : zone_end;
			if (le > q && le[-1] == '\r')
				le--;
			if (*q != ' ' && *q != '\t')
				skipping = chaff_tagged_field(q, (size_t)(le - q));
			if (skipping || next == zone_end) {
				const char *b = skipping ? q : next;
				if (pass == 0) { /* the last text byte kept so far */
					for (const char *x = b; x > run; x--)
						if (x[-1] != ' ' && x[-1] != '\t' &&
						    x[-1] != '\r' && x[-1] != '\n') {
							cut = x;
							break;
						}
				} else if (run < b && run < cut) {
					feed_body(f, run, (size_t)((b < cut ? b : cut) - run));
				}
				run = next;
			}
			q = next;
		}
		if (pass == 0 && cut == zone_end)
			cut = p; /* no text kept at all */
	}
	return zone_end;
}

void chaff_message_digest(const void *msg, size_t len, struct chaff_digest *out)
{
	if (!out)
		return;
	if (!msg)
		len = 0;
	const char *p = msg ? msg : "", *end = p + len;
	struct feed f;
	f.n = 0;
	XXH3_128bits_reset(&f.st);
	if (len >= 5 && memcmp(p, "From ", 5) == 0) {
		const char *nl = memchr(p, '\n', len);
		p = nl ? nl + 1 : end;
	}
	/* Headers: name, then the unfolded value. */
	bool odd = false; /* the block ended at a line that is no field */
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
		if (!ne) {
			odd = *p != ' ' && *p != '\t';
			break;
		}
		/* the header's extent: its continuation lines too */
		const char *next = nl ? nl + 1 : end;
		while (next < end && (*next == ' ' || *next == '\t')) {
			const char *n2 = memchr(next, '\n', (size_t)(end - next));
			next = n2 ? n2 + 1 : end;
		}
		if (identity_header(p, (size_t)(ne - p))) {
			for (const char *c = p; c < ne; c++) {
				char lc = tok_lc(*c);
				feed(&f, &lc, 1);
			}
			feed(&f, ":", 1);
			const char *v = colon + 1;
			size_t vn = (size_t)(next - v);
			while (vn && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')) {
				v++;
				vn--;
			}
			while (vn && (v[vn - 1] == '\n' || v[vn - 1] == '\r' || v[vn - 1] == ' ' ||
			              v[vn - 1] == '\t'))
				vn--;
			feed_squeezed(&f, v, vn);
			feed(&f, "\n", 1);
		}
		p = next;
	}
	feed(&f, "\n", 1);
	/* Trailing line ends and blanks do not count: an mbox adds a blank
	 * line after each message, a saved file may or may not end in one. */
	const char *whole = end;
	while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (odd)
		p = feed_zone(&f, p, whole, end);
	if (p < end)
		feed_body(&f, p, (size_t)(end - p));
	feed_flush(&f);
	XXH128_hash_t h = XXH3_128bits_digest(&f.st);
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, h);
	memcpy(out->bytes, c.digest, sizeof(out->bytes));
}
