/*
 * The MIME walk: parameters of structured headers, multipart splitting,
 * and the choice of what each part gives: text, a nested message, or
 * only its type and file name.
 */
#include "tok.h"

#include <string.h>

enum { P_BOUNDARY, P_CHARSET, P_NAME, P_FILENAME, P_COUNT };
enum { SEG_MAX = 16 };

/* One parameter: its plain form (name=value) and its RFC 2231 form
 * (name*=, name*0=, name*1*= ...), kept apart, since a sender may give
 * both (the plain one for older readers). */
struct param {
	struct span plain;
	bool has_plain;
	struct span seg[SEG_MAX];
	bool ext[SEG_MAX];
	unsigned top; /* highest RFC 2231 segment index seen + 1 */
};

static bool has_param(const struct param *p)
{
	return p->has_plain || p->top;
}

static bool wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int param_index(const char *name, size_t n)
{
	if (TOK_IEQ(name, n, "boundary"))
		return P_BOUNDARY;
	if (TOK_IEQ(name, n, "charset"))
		return P_CHARSET;
	if (TOK_IEQ(name, n, "name"))
		return P_NAME;
	if (TOK_IEQ(name, n, "filename"))
		return P_FILENAME;
	return -1;
}

/* A quoted-string's content; copied only when it holds backslash escapes. */
static struct span quoted(struct chaff_tokenizer *t, const char *s, size_t n, size_t *used)
{
	size_t i = 1;
	bool esc = false;
	while (i < n && s[i] != '"') {
		if (s[i] == '\\' && i + 1 < n) {
			esc = true;
			i++;
		}
		i++;
	}
	*used = i < n ? i + 1 : n;
	if (!esc)
		return (struct span){s + 1, i - 1};
	char *out = tok_alloc(t, i);
	if (!out)
		return (struct span){"", 0};
	size_t o = 0;
	for (size_t k = 1; k < i; k++) {
		if (s[k] == '\\' && k + 1 < i)
			k++;
		out[o++] = s[k];
	}
	return (struct span){out, o};
}

/* An unquoted value's length without a comment that ends it:
 * "koi8-r (Cyrillic)" is koi8-r (RFC 2045 allows comments between the
 * tokens of a structured header). Only a comment set off by white space
 * and closing the value counts, so a file name written without quotes,
 * "photo (1).jpg", stays whole. */
static size_t without_comment(const char *v, size_t n)
{
	if (n == 0 || v[n - 1] != ')')
		return n;
	unsigned depth = 0;
	for (size_t i = n; i-- > 0;) {
		if (v[i] == ')')
			depth++;
		else if (v[i] == '(' && --depth == 0) {
			if (i > 0 && !wsp(v[i - 1]))
				return n;
			while (i > 0 && wsp(v[i - 1]))
				i--;
			return i;
		}
	}
	return n;
}

/* Reads "; name=value" pairs after the header's first item. */
static void parse_params(struct chaff_tokenizer *t, const char *s, size_t n, struct param *ps)
{
	size_t i = 0;
	while (i < n) {
		const char *semi = memchr(s + i, ';', n - i);
		if (!semi)
			return;
		i = (size_t)(semi - s) + 1;
		while (i < n && wsp(s[i]))
			i++;
		size_t a = i;
		while (i < n && s[i] != '=' && s[i] != ';')
			i++;
		if (i >= n || s[i] != '=')
			continue;
		size_t b = i;
		while (b > a && wsp(s[b - 1]))
			b--;
		i++;
		while (i < n && wsp(s[i]))
			i++;
		struct span v;
		if (i < n && s[i] == '"') {
			size_t used;
			v = quoted(t, s + i, n - i, &used);
			i += used;
		} else {
			size_t e = i;
			while (e < n && s[e] != ';')
				e++;
			size_t f = e;
			while (f > i && wsp(s[f - 1]))
				f--;
			v = (struct span){s + i, without_comment(s + i, f - i)};
			i = e;
		}
		/* name, name*, name*N, name*N* */
		const char *star = memchr(s + a, '*', b - a);
		size_t base = star ? (size_t)(star - (s + a)) : b - a;
		int which = param_index(s + a, base);
		if (which < 0)
			continue;
		if (!star) {
			ps[which].plain = v;
			ps[which].has_plain = true;
			continue;
		}
		unsigned idx = 0;
		const char *q = star + 1, *qe = s + b;
		const char *digits = q;
		while (q < qe && *q >= '0' && *q <= '9' && idx < 1000)
			idx = idx * 10 + (unsigned)(*q++ - '0');
		/* "name*" alone is extended; "name*N" is extended only with a
		 * second star */
		bool ext = q == digits || (q < qe && *q == '*');
		if (idx >= SEG_MAX)
			continue;
		ps[which].seg[idx] = v;
		ps[which].ext[idx] = ext;
		if (idx + 1 > ps[which].top)
			ps[which].top = idx + 1;
	}
}

/* The value of a parameter: its RFC 2231 form when it has one
 * (continuations joined, percent escapes and charset applied), else its
 * plain value with RFC 2047 words decoded. */
static struct span param_value(struct chaff_tokenizer *t, const struct param *p, bool text)
{
	if (p->top == 0) {
		if (text && chaff_find_pair(p->plain.p, p->plain.p + p->plain.n, '=', '?'))
			return tok_decode_2047(t, p->plain.p, p->plain.n);
		return p->plain;
	}
	size_t total = 0;
	for (unsigned k = 0; k < p->top; k++)
		total += p->seg[k].n;
	char *out = tok_alloc(t, total + 1);
	if (!out)
		return (struct span){"", 0};
	size_t o = 0;
	struct span cs = {"", 0};
	for (unsigned k = 0; k < p->top; k++) {
		const char *s = p->seg[k].p;
		size_t n = p->seg[k].n;
		if (!s)
			continue;
		if (!p->ext[k]) {
			memcpy(out + o, s, n);
			o += n;
			continue;
		}
		if (k == 0) { /* charset'language'value */
			const char *q1 = memchr(s, '\'', n);
			const char *q2 = q1 ? memchr(q1 + 1, '\'', (size_t)(s + n - q1 - 1)) : NULL;
			if (q2) {
				cs = (struct span){s, (size_t)(q1 - s)};
				n -= (size_t)(q2 + 1 - s);
				s = q2 + 1;
			}
		}
		for (size_t i = 0; i < n; i++) {
			int b = s[i] == '%' ? tok_hexpair(s + i, n - i) : -1;
			if (b >= 0) {
				out[o++] = (char)b;
				i += 2;
			} else {
				out[o++] = s[i];
			}
		}
	}
	return tok_to_utf8(t, cs.p, cs.n, out, o);
}

static struct span lower_copy(struct chaff_tokenizer *t, const char *s, size_t n)
{
	char *out = tok_alloc(t, n + 1);
	if (!out)
		return (struct span){"", 0};
	for (size_t i = 0; i < n; i++)
		out[i] = tok_lc(s[i]);
	out[n] = '\0';
	return (struct span){out, n};
}

void tok_content_type(struct chaff_tokenizer *t, const char *s, size_t n, struct mime_info *info)
{
	size_t i = 0;
	while (i < n && wsp(s[i]))
		i++;
	size_t a = i;
	while (i < n && s[i] != ';' && !wsp(s[i]) && s[i] != '(')
		i++;
	if (i > a && i - a <= 128) {
		info->type = lower_copy(t, s + a, i - a);
		info->has_type = true;
	}
	struct param ps[P_COUNT];
	memset(ps, 0, sizeof(ps));
	parse_params(t, s + i, n - i, ps);
	if (has_param(&ps[P_BOUNDARY]))
		info->boundary = param_value(t, &ps[P_BOUNDARY], false);
	if (has_param(&ps[P_CHARSET]))
		info->charset = param_value(t, &ps[P_CHARSET], false);
	if (has_param(&ps[P_NAME]) && !info->filename.n)
		info->filename = param_value(t, &ps[P_NAME], true);
}

void tok_content_disposition(struct chaff_tokenizer *t, const char *s, size_t n,
                             struct mime_info *info)
{
	struct param ps[P_COUNT];
	memset(ps, 0, sizeof(ps));
	parse_params(t, s, n, ps);
	if (has_param(&ps[P_FILENAME])) /* filename wins over Content-Type's name */
		info->filename = param_value(t, &ps[P_FILENAME], true);
}

static bool is_type(const struct mime_info *info, const char *lit, size_t len)
{
	return info->type.n == len && memcmp(info->type.p, lit, len) == 0;
}
#define IS_TYPE(info, lit) is_type((info), lit, sizeof(lit) - 1)

static bool type_prefix(const struct mime_info *info, const char *lit, size_t len)
{
	return info->type.n >= len && memcmp(info->type.p, lit, len) == 0;
}
#define TYPE_PREFIX(info, lit) type_prefix((info), lit, sizeof(lit) - 1)

/* The transfer encoding that is undone: 'b' base64, 'q' quoted-printable,
 * 0 for any other (the name in any case). */
static char encoding(const struct mime_info *info)
{
	return TOK_IEQ(info->cte.p, info->cte.n, "base64")             ? 'b'
	       : TOK_IEQ(info->cte.p, info->cte.n, "quoted-printable") ? 'q'
	                                                               : 0;
}

/* A part's body with its transfer encoding undone, at most cap bytes of
 * it; *more when there was more. */
static struct span decoded(struct chaff_tokenizer *t, const struct mime_info *info,
                           const char *body, const char *end, size_t cap, bool *more)
{
	size_t n = (size_t)(end - body);
	*more = false;
	switch (encoding(info)) {
	case 'b': return tok_base64(t, body, n, cap, more);
	case 'q': return tok_qp(t, body, n, cap, more);
	}
	*more = n > cap;
	return (struct span){body, *more ? cap : n};
}

/* A text part: transfer decoding, then UTF-8, then HTML to text, then
 * words. At most max_part_bytes of decoded text are read. */
static void text_part(struct chaff_tokenizer *t, const struct mime_info *info, const char *body,
                      const char *end)
{
	bool more;
	struct span raw = decoded(t, info, body, end, t->cfg.limits.max_part_bytes, &more);
	if (more)
		tok_limit(t, CHAFF_LIMIT_PART_BYTES);
	struct span u = tok_to_utf8(t, info->charset.p, info->charset.n, raw.p, raw.n);
	if (IS_TYPE(info, "text/html"))
		u = tok_html_text(t, u.p, u.n);
	tok_words(t, u.p, u.n, "", 0, SCAN_URLS | SCAN_PAIRS);
}

static bool boundary_line(const char *p, const char *le, const char *b, size_t bl, bool *closing)
{
	if ((size_t)(le - p) < bl + 2 || p[0] != '-' || p[1] != '-' || memcmp(p + 2, b, bl) != 0)
		return false;
	const char *r = p + 2 + bl;
	*closing = le - r >= 2 && r[0] == '-' && r[1] == '-';
	if (*closing)
		r += 2;
	for (; r < le; r++)
		if (!wsp(*r))
			return false;
	return true;
}

/* Without a boundary parameter, the first "--xxx" line names it. */
static struct span guess_boundary(const char *p, const char *end)
{
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le - p > 2 && p[0] == '-' && p[1] == '-' && !wsp(p[2])) {
			const char *e = le;
			while (e > p + 2 && wsp(e[-1]))
				e--;
			return (struct span){p + 2, (size_t)(e - p - 2)};
		}
		p = nl ? nl + 1 : end;
	}
	return (struct span){"", 0};
}

/* The first line at or after s (which starts a line) that starts with
 * '-', as every boundary line does, or end. One search over the lines
 * between, not a step per line: each level of nested multiparts scans
 * the whole of what it holds, and a deep nest of large attachments of
 * short lines took a line step per line per level. */
static const char *dash_line(const char *s, const char *end)
{
	if (s >= end || *s == '-')
		return s;
	const char *hit = chaff_find_pair(s, end, '\n', '-');
	return hit ? hit + 1 : end;
}

static void multipart(struct chaff_tokenizer *t, const struct mime_info *info, const char *body,
                      const char *end, unsigned depth)
{
	struct span b = info->boundary.n ? info->boundary : guess_boundary(body, end);
	enum entity_kind kind =
	        IS_TYPE(info, "multipart/digest") ? ENTITY_DIGEST_PART : ENTITY_PART;
	const char *part = NULL, *p = dash_line(body, end);
	bool found = false;
	while (b.n && p < end && !(t->limits_hit & CHAFF_LIMIT_PARTS)) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		bool closing;
		if (*p == '-' && boundary_line(p, le, b.p, b.n, &closing)) {
			if (part)
				tok_entity(t, part, p, depth + 1, kind);
			found = true;
			part = closing ? NULL : (nl ? nl + 1 : end);
			if (closing)
				return; /* the epilogue is not read */
		}
		p = nl ? dash_line(nl + 1, end) : end;
	}
	if (part) /* no final boundary: the last part runs to the end */
		tok_entity(t, part, end, depth + 1, kind);
	if (!found) {
		struct mime_info plain = *info;
		plain.type = (struct span){"text/plain", 10};
		text_part(t, &plain, body, end);
	}
}

static void attachment_name(struct chaff_tokenizer *t, struct span f)
{
	while (f.n && wsp(f.p[f.n - 1]))
		f.n--;
	/* Only the last path component counts. */
	for (size_t i = f.n; i > 0; i--) {
		if (f.p[i - 1] == '/' || f.p[i - 1] == '\\') {
			f.p += i;
			f.n -= i;
			break;
		}
	}
	if (!f.n || f.n > 255)
		return;
	/* a decoded name (RFC 2231, RFC 2047) may hold any byte: its control
	 * characters become '?', as in tok_emit_value */
	char clean[255];
	tok_uncontrol(clean, f.p, f.n);
	f.p = clean;
	tok_emit_folded(t, CHAFF_ORIGIN_MIME, "fname:", 6, f.p, f.n);
	for (size_t i = f.n; i > 0; i--) {
		if (f.p[i - 1] == '.') {
			if (i < f.n && f.n - i <= 16)
				tok_emit_folded(t, CHAFF_ORIGIN_MIME, "fext:", 5, f.p + i, f.n - i);
			break;
		}
	}
}

/* Whether the entity holds a message: message/rfc822 (or its RFC 6532
 * twin), or nothing declared in a digest. */
static bool holds_message(const struct mime_info *info, enum entity_kind kind)
{
	return IS_TYPE(info, "message/rfc822") || IS_TYPE(info, "message/global") ||
	       (kind == ENTITY_DIGEST_PART && !info->has_type);
}

static void entity(struct chaff_tokenizer *t, const char *p, const char *end, unsigned depth,
                   enum entity_kind kind);

void tok_entity(struct chaff_tokenizer *t, const char *p, const char *end, unsigned depth,
                enum entity_kind kind)
{
	/* what the entity decodes, converts and unfolds is given back when
	 * it is done (its tokens stay, in their own arena) */
	struct chaff_arena_mark m = chaff_arena_mark(&t->scratch);
	entity(t, p, end, depth, kind);
	chaff_arena_release(&t->scratch, m);
}

static void entity(struct chaff_tokenizer *t, const char *p, const char *end, unsigned depth,
                   enum entity_kind kind)
{
	if (depth > t->cfg.limits.max_mime_depth) {
		tok_limit(t, CHAFF_LIMIT_DEPTH);
		return;
	}
	if (++t->parts > t->cfg.limits.max_parts) {
		tok_limit(t, CHAFF_LIMIT_PARTS);
		return;
	}
	struct mime_info info;
	const char *body = tok_headers(t, p, end, &info, kind == ENTITY_MESSAGE);
	if (t->full)
		return;
	if (info.has_type) {
		tok_emit_value(t, CHAFF_ORIGIN_MIME, "ct:", 3, info.type.p, info.type.n);
		if (info.charset.n && info.charset.n <= 40)
			tok_emit_value(t, CHAFF_ORIGIN_MIME, "charset:", 8, info.charset.p,
			               info.charset.n);
	}
	if (info.cte.n && info.cte.n <= 40)
		tok_emit_value(t, CHAFF_ORIGIN_MIME, "cte:", 4, info.cte.p, info.cte.n);
	if (info.filename.n)
		attachment_name(t, info.filename);
	if (TYPE_PREFIX(&info, "multipart/")) {
		multipart(t, &info, body, end, depth);
	} else if (holds_message(&info, kind)) {
		/* RFC 2046 allows only 7bit, 8bit and binary here; a message
		 * that was encoded anyway is read decoded, at most a part's
		 * worth of it: each level of such messages nested in one another
		 * would otherwise hold a decoded copy of all it contains */
		size_t cap = encoding(&info) ? t->cfg.limits.max_part_bytes : (size_t)(end - body);
		bool more;
		struct span m = decoded(t, &info, body, end, cap, &more);
		if (more)
			tok_limit(t, CHAFF_LIMIT_PART_BYTES);
		tok_entity(t, m.p, m.p + m.n, depth + 1, ENTITY_MESSAGE);
	} else if (!info.has_type || TYPE_PREFIX(&info, "text/") ||
	           TYPE_PREFIX(&info, "message/") || !memchr(info.type.p, '/', info.type.n)) {
		text_part(t, &info, body, end);
	}
}

/* Walks the MIME tree the way tok_entity does, but only looks for a
 * message/rfc822 part: the message a "forward as attachment" carries. */
static bool find_message(struct chaff_tokenizer *t, const char *p, const char *end, unsigned depth,
                         enum entity_kind kind, struct span *out)
{
	if (depth > t->cfg.limits.max_mime_depth || ++t->parts > t->cfg.limits.max_parts)
		return false;
	struct mime_info info;
	const char *body = tok_headers(t, p, end, &info, false);
	if (t->full)
		return false;
	if (holds_message(&info, kind)) {
		bool more;
		*out = decoded(t, &info, body, end, (size_t)(end - body), &more);
		return !t->full;
	}
	if (!TYPE_PREFIX(&info, "multipart/"))
		return false;
	struct span b = info.boundary.n ? info.boundary : guess_boundary(body, end);
	enum entity_kind sub =
	        IS_TYPE(&info, "multipart/digest") ? ENTITY_DIGEST_PART : ENTITY_PART;
	const char *part = NULL;
	for (const char *q = dash_line(body, end); b.n && q < end;) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		const char *le = nl ? nl : end;
		bool closing;
		if (*q == '-' && boundary_line(q, le, b.p, b.n, &closing)) {
			if (part && find_message(t, part, q, depth + 1, sub, out))
				return true;
			if (closing)
				return false;
			part = nl ? nl + 1 : end;
		}
		q = nl ? dash_line(nl + 1, end) : end;
	}
	return part && find_message(t, part, end, depth + 1, sub, out);
}

bool tok_find_message(struct chaff_tokenizer *t, const char *p, const char *end, unsigned depth,
                      struct span *out)
{
	return find_message(t, p, end, depth, ENTITY_PART, out);
}
