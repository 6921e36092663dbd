/*
 * The header block: unfolding, RFC 2047 encoded words, and the tokens each
 * header gives (docs/tokens.md has the table). MIME headers fill a
 * struct mime_info for the body walk; the message's own headers also
 * become header-tagged tokens.
 */
#include "tok.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Q encoding: '_' is a space, "=XX" a byte, anything else itself. */
static size_t decode_q(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int b = c == '=' ? tok_hexpair(s + i, n - i) : -1;
		if (c == '_') {
			out[o++] = ' ';
		} else if (b >= 0) {
			out[o++] = (char)b;
			i += 2;
		} else {
			out[o++] = c;
		}
	}
	return o;
}

/* One encoded word "=?charset?E?text?=" at s; fills its parts and returns
 * its length, or 0 when s holds no well-formed encoded word. */
static size_t encoded_word(const char *s, size_t n, struct span *cs, char *enc, struct span *text)
{
	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	const char *q1 = memchr(s + 2, '?', n - 2 < 76 ? n - 2 : 76);
	if (!q1 || q1 == s + 2)
		return 0;
	size_t i = (size_t)(q1 - s) + 1;
	if (i + 2 >= n || s[i + 1] != '?')
		return 0;
	char e = tok_lc(s[i]);
	if (e != 'b' && e != 'q')
		return 0;
	size_t ts = i + 2;
	const char *end = NULL;
	for (size_t k = ts; k + 1 < n && k - ts < 1024; k++) {
		if (s[k] == '?' && s[k + 1] == '=') {
			end = s + k;
			break;
		}
		/* The start of another encoded word ("=?" then a charset; "=?="
		 * is B padding and the end): this one was never closed, and is
		 * kept as text rather than swallowing the next. */
		if (s[k] == '=' && s[k + 1] == '?' && (k + 2 >= n || s[k + 2] != '='))
			break;
		if (s[k] == '\n' || s[k] == '\r')
			break;
	}
	if (!end)
		return 0;
	cs->p = s + 2;
	cs->n = (size_t)(q1 - s) - 2;
	/* RFC 2231 language suffix: charset*lang */
	const char *star = memchr(cs->p, '*', cs->n);
	if (star)
		cs->n = (size_t)(star - cs->p);
	*enc = e;
	text->p = s + ts;
	text->n = (size_t)(end - s) - ts;
	return (size_t)(end - s) + 2;
}

struct dec {
	struct chaff_tokenizer *t;
	char *out;
	size_t o, cap;
	char *raw; /* decoded bytes of adjacent words in one charset */
	size_t rn;
	struct span cs;
};

/* Appends to the output, which holds four bytes per byte of the header: a
 * charset that writes more than that (one TSCII byte is up to twelve bytes
 * of UTF-8) is cut there, as a header over its limit is. */
static void put(struct dec *d, const char *s, size_t n)
{
	if (n > d->cap - d->o) {
		n = d->cap - d->o;
		tok_limit(d->t, CHAFF_LIMIT_HEADER);
	}
	memcpy(d->out + d->o, s, n);
	d->o += n;
}

static void flush(struct dec *d)
{
	if (!d->rn)
		return;
	struct span u = tok_to_utf8(d->t, d->cs.p, d->cs.n, d->raw, d->rn);
	put(d, u.p, u.n);
	d->rn = 0;
}

/* Decodes encoded words; raw 8-bit text around them is read as UTF-8 or
 * Windows-1252. Adjacent words in one charset are converted together, so
 * a character split across two of them survives. */
struct span tok_decode_2047(struct chaff_tokenizer *t, const char *s, size_t n)
{
	if (n < 8 || !chaff_find_pair(s, s + n, '=', '?'))
		return tok_to_utf8(t, NULL, 0, s, n);
	struct dec d = {t, tok_alloc(t, n * 4 + 17), 0, n * 4 + 16, tok_alloc(t, n + 1), 0, {"", 0}};
	if (!d.out || !d.raw)
		return (struct span){"", 0};
	size_t i = 0, plain = 0;
	bool after_word = false;
	while (i < n) {
		const char *q = chaff_find_pair(s + i, s + n, '=', '?');
		size_t at = q ? (size_t)(q - s) : n;
		struct span cs, text;
		char enc;
		size_t len = q ? encoded_word(q, n - at, &cs, &enc, &text) : 0;
		if (!len) {
			i = q ? at + 2 : n;
			continue;
		}
		/* Text between the last output and this word. */
		bool only_space = true;
		for (size_t k = plain; k < at; k++)
			if (!wsp(s[k]) && s[k] != '\r' && s[k] != '\n')
				only_space = false;
		if (!(after_word && only_space)) {
			flush(&d);
			struct span u = tok_to_utf8(t, NULL, 0, s + plain, at - plain);
			put(&d, u.p, u.n);
		}
		if (d.rn && !(cs.n == d.cs.n && strncasecmp(cs.p, d.cs.p, cs.n) == 0))
			flush(&d);
		d.cs = cs;
		if (enc == 'q') {
			d.rn += decode_q(text.p, text.n, d.raw + d.rn);
		} else {
			bool more;
			struct span b = tok_base64(t, text.p, text.n, text.n, &more);
			memcpy(d.raw + d.rn, b.p, b.n);
			d.rn += b.n;
		}
		i = plain = at + len;
		after_word = true;
	}
	flush(&d);
	struct span u = tok_to_utf8(t, NULL, 0, s + plain, n - plain);
	put(&d, u.p, u.n);
	d.out[d.o] = '\0';
	return (struct span){d.out, d.o};
}

const bool tok_host_bytes[256] = {
        ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
        ['.'] = true,         ['-'] = true,         ['_'] = true,
};

static bool host_byte(char c)
{
	return tok_host_bytes[(unsigned char)c];
}

#ifdef __SSE2__
/* Bit k set when byte k of v is a host byte; *dots gets the '.' bytes. */
static inline unsigned host_mask(__m128i v, unsigned *dots)
{
	unsigned digit, alpha = tok_vec_alpha(v, &digit);
	*dots = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
	__m128i hy = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')),
	                          _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
	return alpha | digit | *dots | (unsigned)_mm_movemask_epi8(hy);
}
#endif

/* The end of the run of host bytes that starts at s[i]; *dot gets the
 * run's last '.', or NULL. Received headers are mostly such runs, and a
 * step per byte was a twelfth of all tokenizing. */
static size_t host_run(const char *s, size_t n, size_t i, const char **dot)
{
	*dot = NULL;
#ifdef __SSE2__
	for (; n - i >= 16; i += 16) {
		unsigned dots,
		        in = host_mask(_mm_loadu_si128((const __m128i *)(const void *)(s + i)),
		                       &dots);
		unsigned len = (unsigned)__builtin_ctz(~in | 0x10000u);
		dots &= (1u << len) - 1;
		if (dots)
			*dot = s + i + 31 - __builtin_clz(dots);
		if (len < 16)
			return i + len;
	}
#endif
	for (; i < n && host_byte(s[i]); i++)
		if (s[i] == '.')
			*dot = s + i;
	return i;
}

/* A dotted quad of numbers up to 255; *net gets the length of its /24. */
static bool ipv4(const char *s, size_t n, size_t *net)
{
	unsigned dots = 0, digits = 0, val = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (!digits || ++dots > 3)
				return false;
			if (dots == 3)
				*net = i;
			digits = val = 0;
		} else if (s[i] >= '0' && s[i] <= '9' && digits < 3) {
			val = val * 10 + (unsigned)(s[i] - '0');
			digits++;
			if (val > 255)
				return false;
		} else {
			return false;
		}
	}
	return dots == 3 && digits;
}

/* A host name: dotted, its last label (after the dot at last_dot, or
 * none) starting with a letter. */
static bool host_name(const char *s, size_t n, const char *last_dot)
{
	if (!last_dot || last_dot == s || (size_t)(last_dot - s) + 1 >= n)
		return false;
	char c = tok_lc(last_dot[1]);
	return c >= 'a' && c <= 'z';
}

/* An IPv6 address written without brackets at s[0..n), as Exchange
 * writes a client's: "(2603:10b6:5:1ac::28)". Returns its length, or 0.
 * Clock times ("16:10:29") have too few groups and no "::". */
static size_t bare_ipv6(const char *s, size_t n)
{
	size_t e = tok_ip6_run(s, n, 46);
	unsigned colons = 0;
	bool gap = false;
	for (size_t k = 0; k < e; k++)
		if (s[k] == ':') {
			colons++;
			gap |= k > 0 && s[k - 1] == ':';
		}
	if (e > 45 || (e < n && host_byte(s[e])) || colons < 2 || (!gap && colons != 7))
		return 0;
	char buf[46];
	unsigned char addr[16];
	memcpy(buf, s, e);
	buf[e] = '\0';
	return inet_pton(AF_INET6, buf, addr) == 1 ? e : 0;
}

/* Received: each IPv4 address with its /24, IPv6 addresses, and
 * dotted host names with their parents. A scanner over runs of host
 * characters: a regular expression doing the same cost a quarter of all
 * tokenizing time, for a header every message has several of. */
static void received(struct chaff_tokenizer *t, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && !t->full) {
		if (s[i] == '[') {
			/* [IPv6:2001:db8::1] or [2001:db8::1] */
			size_t a = i + 1;
			if (TOK_IPREFIX(s + a, n - a, "ipv6:"))
				a += 5;
			size_t e = a + tok_ip6_run(s + a, n - a, 46);
			if (memchr(s + a, ':', e - a) && e < n && s[e] == ']' && e - a <= 45) {
				tok_emit_lower(t, CHAFF_ORIGIN_HEADER, "rcvd:", 5, s + a, e - a);
				i = e + 1;
				continue;
			}
		}
		if (!host_byte(s[i])) {
			i++;
			continue;
		}
		size_t a = i;
		const char *last_dot;
		i = host_run(s, n, i, &last_dot);
		bool colon = i < n && s[i] == ':';
		if (!last_dot && !colon)
			continue; /* a word ("from", "by", "id"): no address, no host */
		if (colon && (a == 0 || s[a - 1] != ':')) {
			/* "IPv6:2001:db8::1" or "2001:db8::1", no brackets */
			size_t at = TOK_IEQ(s + a, i - a, "ipv6") ? i + 1 : a;
			size_t v6 = bare_ipv6(s + at, n - at);
			if (v6) {
				tok_emit_lower(t, CHAFF_ORIGIN_HEADER, "rcvd:", 5, s + at, v6);
				i = at + v6;
				continue;
			}
		}
		size_t e = i;
		while (e > a && (s[e - 1] == '.' || s[e - 1] == '-'))
			e--;
		if (last_dot && last_dot >= s + e)
			last_dot = memrchr(s + a, '.', e - a);
		size_t net = 0;
		if (ipv4(s + a, e - a, &net)) {
			tok_emit(t, CHAFF_ORIGIN_HEADER, "rcvd:", 5, s + a, e - a);
			tok_emit(t, CHAFF_ORIGIN_HEADER, "rcvd:", 5, s + a, net);
		} else if (e - a <= 253 && (a == 0 || s[a - 1] != '/') &&
		           host_name(s + a, e - a, last_dot)) {
			/* a run after '/' is a software version, not a host */
			tok_host(t, CHAFF_ORIGIN_HEADER, "rcvd:", 5, s + a, e - a);
		}
	}
}

/* s[0..n) with its comments (parenthesised, nested, with quoted-pairs)
 * and quoted strings blanked out, in the arena; NULL when out of memory.
 * In Authentication-Results they hold other hosts' verdicts (Gmail
 * writes an earlier hop's "spf=pass dkim=pass" into the comment of its
 * own arc=pass) and free text that would read as verdicts. */
static char *uncommented(struct chaff_tokenizer *t, const char *s, size_t n)
{
	char *out = tok_alloc(t, n + 1);
	if (!out)
		return NULL;
	unsigned depth = 0;
	bool quoted = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool inside = depth || quoted;
		if (c == '\\' && inside && i + 1 < n) {
			out[i] = out[i + 1] = ' ';
			i++;
			continue;
		}
		if (c == '"' && !depth)
			quoted = !quoted;
		else if (c == '(' && !quoted)
			depth++;
		else if (c == ')' && depth && !quoted)
			depth--;
		out[i] = inside || depth || quoted || c == '"' ? ' ' : c;
	}
	out[n] = '\0';
	return out;
}

/* Authentication-Results: method=result for spf, dkim, dmarc and arc,
 * outside comments and quoted strings. */
static void auth_results(struct chaff_tokenizer *t, const char *raw, size_t n)
{
	if (tok_patterns(t) != CHAFF_OK) {
		t->full = t->oom = true;
		return;
	}
	const char *s = uncommented(t, raw, n);
	if (!s)
		return;
	PCRE2_SIZE start = 0;
	while (start < n && !t->full) {
		int rc = pcre2_match(t->re_auth, (PCRE2_SPTR)s, n, start, 0, t->md, NULL);
		if (rc < 3)
			break;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
		char buf[48];
		size_t ml = ov[3] - ov[2], rl = ov[5] - ov[4];
		if (ml + rl + 1 < sizeof(buf)) {
			memcpy(buf, s + ov[2], ml);
			buf[ml] = '=';
			memcpy(buf + ml + 1, s + ov[4], rl);
			tok_emit_lower(t, CHAFF_ORIGIN_HEADER, "auth:", 5, buf, ml + rl + 1);
		}
		start = ov[1];
	}
}

static void message_id(struct chaff_tokenizer *t, const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at) {
		TOK_EMIT_LIT(t, CHAFF_ORIGIN_HEADER, "msgid:none");
		return;
	}
	const char *e = at + 1, *end = s + n;
	while (e < end && *e != '>' && !wsp(*e) && e - at < 256)
		e++;
	if (e == at + 1)
		TOK_EMIT_LIT(t, CHAFF_ORIGIN_HEADER, "msgid:none");
	else
		tok_emit_value(t, CHAFF_ORIGIN_HEADER, "msgid:", 6, at + 1, (size_t)(e - at - 1));
}

static void received_spf(struct chaff_tokenizer *t, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && wsp(s[i]))
		i++;
	size_t b = i;
	while (i < n && ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') && i - b < 16)
		i++;
	if (i > b)
		tok_emit_lower(t, CHAFF_ORIGIN_HEADER, "auth:spf=", 9, s + b, i - b);
}

static void return_path(struct chaff_tokenizer *t, const char *s, size_t n)
{
	const char *lt = memchr(s, '<', n);
	if (lt && (size_t)(lt - s) + 1 < n && lt[1] == '>') {
		TOK_EMIT_LIT(t, CHAFF_ORIGIN_HEADER, "rpath:<>");
		return;
	}
	tok_words(t, s, n, "rpath:", 6, SCAN_ADDRS);
}

/* The tokens of one message header, by the table in docs/tokens.md. */
static void header_tokens(struct chaff_tokenizer *t, const char *name, size_t nl, const char *v,
                          size_t vn, bool *saw_msgid)
{
	struct span d;
	if (TOK_IEQ(name, nl, "subject")) {
		d = tok_decode_2047(t, v, vn);
		tok_words(t, d.p, d.n, "subj:", 5, 0);
	} else if (TOK_IEQ(name, nl, "from") || TOK_IEQ(name, nl, "sender")) {
		d = tok_decode_2047(t, v, vn);
		tok_words(t, d.p, d.n, "from:", 5, SCAN_ADDRS);
	} else if (TOK_IEQ(name, nl, "to") || TOK_IEQ(name, nl, "cc")) {
		d = tok_decode_2047(t, v, vn);
		tok_words(t, d.p, d.n, "to:", 3, SCAN_ADDRS);
	} else if (TOK_IEQ(name, nl, "reply-to")) {
		d = tok_decode_2047(t, v, vn);
		tok_words(t, d.p, d.n, "reply-to:", 9, SCAN_ADDRS);
	} else if (TOK_IEQ(name, nl, "return-path")) {
		return_path(t, v, vn);
	} else if (TOK_IEQ(name, nl, "received")) {
		received(t, v, vn);
	} else if (TOK_IEQ(name, nl, "message-id")) {
		*saw_msgid = true;
		message_id(t, v, vn);
	} else if (TOK_IEQ(name, nl, "x-mailer") || TOK_IEQ(name, nl, "user-agent")) {
		d = tok_decode_2047(t, v, vn);
		tok_words(t, d.p, d.n, "xm:", 3, 0);
	} else if (TOK_IPREFIX(name, nl, "list-") && nl > 5) {
		tok_emit_lower(t, CHAFF_ORIGIN_HEADER, "list:", 5, name + 5, nl - 5);
		if (TOK_IEQ(name, nl, "list-id")) {
			d = tok_decode_2047(t, v, vn);
			tok_words(t, d.p, d.n, "list-id:", 8, 0);
		}
	} else if (TOK_IEQ(name, nl, "authentication-results")) {
		auth_results(t, v, vn);
	} else if (TOK_IEQ(name, nl, "received-spf")) {
		received_spf(t, v, vn);
	} else if (!TOK_IPREFIX(name, nl, "content-type") &&
	           !TOK_IPREFIX(name, nl, "content-transfer-encoding") && nl <= 64) {
		/* Any other header: its presence, and the words of its value
		 * under its name (date:thu, x-priority:normal, ...). */
		tok_emit_lower(t, CHAFF_ORIGIN_HEADER, "hdr:", 4, name, nl);
		char prefix[66];
		for (size_t i = 0; i < nl; i++)
			prefix[i] = tok_lc(name[i]);
		prefix[nl] = ':';
		d = tok_decode_2047(t, v, vn);
		tok_words(t, d.p, d.n, prefix, nl + 1, 0);
	}
}

static bool verdict_header(const char *name, size_t nl)
{
	return TOK_IPREFIX(name, nl, "x-spam-") || TOK_IPREFIX(name, nl, "x-chaff-");
}

/* Headers a mail store or reader writes into a message it keeps: whether
 * it was read, replied to, flagged, its number in the folder. A filter
 * never sees them on arriving mail, and a classifier trained on kept mail
 * would learn the state of the mailbox it came from (its spam unread, its
 * ham read) instead of anything about the message. */
static bool store_header(const char *name, size_t nl)
{
	return TOK_IEQ(name, nl, "status") || TOK_IEQ(name, nl, "x-status") ||
	       TOK_IEQ(name, nl, "x-keywords") || TOK_IEQ(name, nl, "x-uid") ||
	       TOK_IEQ(name, nl, "x-uidl") || TOK_IEQ(name, nl, "x-imap") ||
	       TOK_IEQ(name, nl, "x-imapbase") || TOK_IEQ(name, nl, "x-mozilla-status") ||
	       TOK_IEQ(name, nl, "x-mozilla-status2") || TOK_IEQ(name, nl, "x-mozilla-keys") ||
	       TOK_IEQ(name, nl, "x-evolution-source");
}

/* Unfolds a header whose first line is [v, le) and whose continuation
 * lines follow; returns the value (aliasing the input when it was not
 * folded) and sets *next to the line after it. */
static struct span unfold(struct chaff_tokenizer *t, const char *v, const char *le, const char *end,
                          const char **next)
{
	const char *nl = le < end ? le + 1 : end;
	size_t cap = t->cfg.limits.max_header_bytes;
	while (v < le && wsp(*v))
		v++;
	size_t first = (size_t)(le - v);
	if (first && v[first - 1] == '\r')
		first--;
	if (nl >= end || !wsp(*nl)) {
		*next = nl;
		if (first > cap) {
			tok_limit(t, CHAFF_LIMIT_HEADER);
			first = cap;
		}
		return (struct span){v, first};
	}
	char *buf = tok_alloc(t, cap + 1);
	if (!buf) {
		*next = nl;
		return (struct span){"", 0};
	}
	size_t o = first < cap ? first : cap;
	memcpy(buf, v, o);
	bool over = first > cap;
	while (nl < end && wsp(*nl)) {
		const char *e = memchr(nl, '\n', (size_t)(end - nl));
		const char *lend = e ? e : end;
		const char *a = nl;
		while (a < lend && wsp(*a))
			a++;
		size_t len = (size_t)(lend - a);
		if (len && a[len - 1] == '\r')
			len--;
		if (o + 1 + len > cap) {
			over = true;
			len = o + 1 < cap ? cap - o - 1 : 0;
		}
		if (o < cap) {
			buf[o++] = ' ';
			memcpy(buf + o, a, len);
			o += len;
		}
		nl = e ? e + 1 : end;
	}
	/* the room the limit allowed, less what the header used: a message
	 * of many short folded headers costs its own size, not 16 KB each
	 * (before the limit's token, which takes arena room after it) */
	chaff_arena_trim(&t->scratch, buf, o + 1);
	if (over)
		tok_limit(t, CHAFF_LIMIT_HEADER);
	*next = nl;
	return (struct span){buf, o};
}

const char *tok_headers(struct chaff_tokenizer *t, const char *p, const char *end,
                        struct mime_info *info, bool top)
{
	memset(info, 0, sizeof(*info));
	bool saw_msgid = false, any = false;
	bool verdicts = (t->cfg.flags & CHAFF_TOK_VERDICT_HEADERS) != 0;
	const char *q = p;
	while (q < end) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		const char *le = nl ? nl : end;
		if (le == q || (le == q + 1 && *q == '\r')) {
			q = nl ? nl + 1 : end;
			break; /* the blank line before the body */
		}
		const char *c;
		const char *ne = tok_field(q, le, &c);
		if (!ne)
			break; /* not a header line: the body starts here, blank
			        * line or not (else a message could hide its whole
			        * body by leaving the blank line out) */
		any = true;
		size_t nlen = (size_t)(ne - q);
		const char *next;
		struct span v = unfold(t, c + 1, le, end, &next);
		if (TOK_IEQ(q, nlen, "content-type")) {
			tok_content_type(t, v.p, v.n, info);
		} else if (TOK_IEQ(q, nlen, "content-transfer-encoding")) {
			size_t a = 0, b = v.n;
			while (a < b && wsp(v.p[a]))
				a++;
			while (b > a && (wsp(v.p[b - 1]) || v.p[b - 1] == ';'))
				b--;
			info->cte = (struct span){v.p + a, b - a};
		} else if (TOK_IEQ(q, nlen, "content-disposition")) {
			tok_content_disposition(t, v.p, v.n, info);
		}
		if (top && !t->full && (verdicts || !verdict_header(q, nlen)) &&
		    !store_header(q, nlen))
			header_tokens(t, q, nlen, v.p, v.n, &saw_msgid);
		q = next;
	}
	if (top && any && !saw_msgid)
		TOK_EMIT_LIT(t, CHAFF_ORIGIN_HEADER, "msgid:none");
	return q;
}
