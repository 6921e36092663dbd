/*
 * HTML to text. Not a browser: it keeps what a reader sees, drops what a
 * reader cannot (scripts, styles, comments, tags), and turns href and src
 * values into url: tokens. Tags that start a new block separate words;
 * inline tags and comments do not, because spammers split words with them.
 */
#include "tok.h"

#include <string.h>
#include <unictype.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Names of U+00A0..U+00FF, the Latin-1 entity set. */
static const char *const latin1_names[96] = {
        "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",
        "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn",
        "sup2",   "sup3",   "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",
        "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde",
        "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave",
        "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde",
        "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",
        "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
        "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",   "eth",
        "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
        "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

static const struct {
	const char *name;
	uint32_t cp;
} other_names[] = {
        {"amp", '&'},       {"lt", '<'},        {"gt", '>'},        {"quot", '"'},
        {"apos", '\''},     {"euro", 0x20AC},   {"trade", 0x2122},  {"hellip", 0x2026},
        {"mdash", 0x2014},  {"ndash", 0x2013},  {"lsquo", 0x2018},  {"rsquo", 0x2019},
        {"ldquo", 0x201C},  {"rdquo", 0x201D},  {"sbquo", 0x201A},  {"bdquo", 0x201E},
        {"bull", 0x2022},   {"dagger", 0x2020}, {"Dagger", 0x2021}, {"permil", 0x2030},
        {"lsaquo", 0x2039}, {"rsaquo", 0x203A}, {"OElig", 0x152},   {"oelig", 0x153},
        {"Scaron", 0x160},  {"scaron", 0x161},  {"Yuml", 0x178},    {"fnof", 0x192},
        {"circ", 0x2C6},    {"tilde", 0x2DC},   {"ensp", 0x2002},   {"emsp", 0x2003},
        {"thinsp", 0x2009}, {"zwnj", 0x200C},   {"zwj", 0x200D},    {"lrm", 0x200E},
        {"rlm", 0x200F},    {"larr", 0x2190},   {"rarr", 0x2192},   {"hearts", 0x2665},
};

/* Tags after which a reader sees a break between words, by name length:
 * every HTML message has hundreds of tags, so a tag is looked up among the
 * few names of its length only. */
static const char *const block_tags[11] = {
        [1] = "p",
        [2] = "brtdthtrliulolh1h2h3h4h5h6hrdddtdl",
        [3] = "divpreimgnav",
        [4] = "bodyhtmlheadformmetalinkmainmenu",
        [5] = "tabletbodytheadtfoottitleframeinputaside",
        [6] = "centeroptionselectiframebuttonheaderfooterfigurelegenddialoghgroupsearch",
        [7] = "addresssectionarticlecaptiondetailssummary",
        [8] = "textareafieldset",
        [10] = "blockquotefigcaption",
};

/* Characters that vanish rather than separate: those Unicode calls
 * default-ignorable (soft hyphen, zero-width characters, direction marks,
 * the grapheme joiner), favourite tools for splitting a word invisibly. */
static bool invisible(uint32_t cp)
{
	return uc_is_property_default_ignorable_code_point(cp);
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

static uint32_t named_entity(const char *s, size_t n)
{
	if (n == 0) /* a lone '&' */
		return 0;
	if (n == 4 && memcmp(s, "nbsp", 4) == 0) /* most of them, first */
		return 0xA0;
	for (size_t i = 0; i < sizeof(other_names) / sizeof(other_names[0]); i++)
		if (other_names[i].name[0] == s[0] && strncmp(other_names[i].name, s, n) == 0 &&
		    other_names[i].name[n] == '\0')
			return other_names[i].cp;
	for (size_t i = 0; i < 96; i++)
		if (latin1_names[i][0] == s[0] && strncmp(latin1_names[i], s, n) == 0 &&
		    latin1_names[i][n] == '\0')
			return 0xA0 + (uint32_t)i;
	return 0;
}

/* Browsers take a name of the Latin-1 set, or amp, lt, gt, quot (and the
 * upper-case AMP, LT, GT, QUOT, COPY, REG), without its semicolon too, and
 * in text the longest such name at the front of a run of letters: so
 * "&nbspFREE" is a space and FREE. The code point, its name's length in
 * *len, or 0 when the run starts with none of them. */
static uint32_t legacy_prefix(const char *s, size_t n, size_t *len)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} basic[] = {
	        {"amp", '&'}, {"lt", '<'}, {"gt", '>'},   {"quot", '"'},  {"AMP", '&'},
	        {"LT", '<'},  {"GT", '>'}, {"QUOT", '"'}, {"COPY", 0xA9}, {"REG", 0xAE},
	};
	uint32_t v = 0;
	*len = 0;
	for (size_t i = 0; i < sizeof(basic) / sizeof(basic[0]); i++) {
		size_t k = strlen(basic[i].name);
		if (k > *len && k <= n && memcmp(basic[i].name, s, k) == 0) {
			*len = k;
			v = basic[i].cp;
		}
	}
	for (size_t i = 0; i < 96; i++) {
		size_t k = strlen(latin1_names[i]);
		if (k > *len && k <= n && memcmp(latin1_names[i], s, k) == 0) {
			*len = k;
			v = 0xA0 + (uint32_t)i;
		}
	}
	return v;
}

/* Where a comment whose text starts at p ends, as a browser ends it:
 * "<!-->" and "<!--->" are empty comments, and "--!>" closes one as "-->"
 * does (a spammer's text after a comment browsers show must not vanish
 * here); a comment never closed runs to the end, hidden there too. */
static size_t comment_end(const char *s, size_t n, size_t p)
{
	if (p < n && s[p] == '>')
		return p + 1;
	if (p + 1 < n && s[p] == '-' && s[p + 1] == '>')
		return p + 2;
	while (p < n) {
		const char *e = chaff_find_pair(s + p, s + n, '-', '-');
		if (!e)
			return n;
		size_t k = (size_t)(e - s) + 2;
		if (k < n && s[k] == '>')
			return k + 1;
		if (k + 1 < n && s[k] == '!' && s[k + 1] == '>')
			return k + 2;
		p = k - 1;
	}
	return n;
}

/* Writes the character an entity names as the text shows it: nothing
 * for an invisible one, a plain space for a no-break space. Its length. */
static size_t put_entity(char *out, uint32_t cp)
{
	return invisible(cp) ? 0 : tok_put_utf8(out, cp == 0xA0 ? ' ' : cp);
}

/* Decodes the entity at s[0] == '&'. Returns bytes consumed and the code
 * point in *cp, or 0 when this '&' starts no entity. In an attribute's
 * value (attr) a name without its semicolon counts only as a whole run
 * of letters and digits not followed by '=', as browsers read it there:
 * "?a=1&copy=2" keeps its parameter. */
static size_t entity(const char *s, size_t n, uint32_t *cp, bool attr)
{
	size_t i = 1;
	uint32_t v = 0;
	if (i < n && s[i] == '#') {
		i++;
		bool hex = i < n && (s[i] == 'x' || s[i] == 'X');
		size_t start = hex ? ++i : i;
		/* every digit is the entity's, however many (leading zeros
		 * included); a value past the last code point stays there */
		for (; i < n; i++) {
			char c = s[i];
			unsigned d;
			if (c >= '0' && c <= '9')
				d = (unsigned)(c - '0');
			else if (hex && ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))
				d = (unsigned)((c | 0x20) - 'a' + 10);
			else
				break;
			if (v <= 0x10FFFF)
				v = v * (hex ? 16 : 10) + d;
		}
		if (i == start)
			return 0;
		if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
			v = ' ';
		else if (v >= 0x80 && v <= 0x9F) /* as browsers read them */
			v = tok_cp1252_hi[v - 0x80];
	} else {
		size_t start = i;
		while (i < n && i - start < 10 && is_alnum(s[i]))
			i++;
		v = named_entity(s + start, i - start);
		bool semicolon = i < n && s[i] == ';';
		if (v && attr && !semicolon && i < n && s[i] == '=')
			return 0;
		if (!v) {
			size_t k;
			if (attr || !(v = legacy_prefix(s + start, i - start, &k)))
				return 0;
			*cp = v;
			return start + k;
		}
	}
	if (i < n && s[i] == ';')
		i++;
	*cp = v;
	return i;
}

static bool block_tag(const char *name, size_t n)
{
	if (n >= sizeof(block_tags) / sizeof(block_tags[0]) || !block_tags[n])
		return false;
	/* names are a few bytes and most differ at the first: compared here
	 * rather than by a call to memcmp per name */
	char first = tok_lc(name[0]);
	for (const char *c = block_tags[n]; *c; c += n) {
		if (*c != first)
			continue;
		size_t k = 1;
		while (k < n && c[k] == tok_lc(name[k]))
			k++;
		if (k == n)
			return true;
	}
	return false;
}

/* Position after the next "</name" (case-insensitive, ended as a tag's
 * name ends: "</scriptx>" does not close a script) and its '>', or n. */
static size_t skip_element(const char *s, size_t n, size_t i, const char *name, size_t nl)
{
	while (i < n) {
		const char *lt = memchr(s + i, '<', n - i);
		if (!lt)
			return n;
		i = (size_t)(lt - s) + 1;
		size_t after = i + 1 + nl;
		if (i < n && s[i] == '/' && tok_iprefix(s + i + 1, n - i - 1, name, nl) &&
		    (after >= n || s[after] == '>' || s[after] == '/' || s[after] == ' ' ||
		     s[after] == '\t' || s[after] == '\n' || s[after] == '\r' ||
		     s[after] == '\f')) {
			const char *gt = memchr(s + i, '>', n - i);
			return gt ? (size_t)(gt - s) + 1 : n;
		}
	}
	return n;
}

/* An attribute's value with its character references decoded, as a
 * browser follows the link ("http://spam&#46;example" is spam.example):
 * the value itself when it has none. A character is never longer than
 * its reference, so the value's length is room enough. */
static struct span attr_value(struct chaff_tokenizer *t, const char *v, size_t n)
{
	if (!memchr(v, '&', n))
		return (struct span){v, n};
	char *out = tok_alloc(t, n + 1);
	if (!out)
		return (struct span){v, n};
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = v[i] == '&' ? entity(v + i, n - i, &cp, true) : 0;
		if (k) {
			o += put_entity(out + o, cp);
			i += k;
		} else {
			out[o++] = v[i++];
		}
	}
	out[o] = '\0';
	return (struct span){out, o};
}

/* The length of a URL scheme's slashes: browsers take "http:\\host" and
 * "http:/host" for "http://host". */
static size_t slashes(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (s[i] == '/' || s[i] == '\\'))
		i++;
	return i;
}

/* A link's value (href, src, ...) as a browser follows it, entities
 * already decoded: white space and control characters around it dropped,
 * and tabs and line ends inside it; then its url: tokens, or for mailto:
 * its words. */
static void link(struct chaff_tokenizer *t, struct span d)
{
	const char *val = d.p;
	size_t vl = d.n;
	while (vl && (unsigned char)*val <= ' ') {
		val++;
		vl--;
	}
	while (vl && (unsigned char)val[vl - 1] <= ' ')
		vl--;
	if (memchr(val, '\t', vl) || memchr(val, '\n', vl) || memchr(val, '\r', vl)) {
		char *c = tok_alloc(t, vl + 1);
		if (!c)
			return;
		size_t o = 0;
		for (size_t i = 0; i < vl; i++)
			if (val[i] != '\t' && val[i] != '\n' && val[i] != '\r')
				c[o++] = val[i];
		c[o] = '\0';
		val = c;
		vl = o;
	}
	size_t skip = 0;
	if (TOK_IPREFIX(val, vl, "mailto:")) {
		/* the words of its subject and body too, as they are written:
		 * cross-validation ranked worse without them ("?subject=remove"
		 * is spam's), and worse with their percent escapes decoded
		 * ("Remove%20me" gives the telling "20me") */
		tok_words(t, val + 7, vl - 7, "", 0, SCAN_URLS);
		return;
	}
	if (TOK_IPREFIX(val, vl, "http:"))
		skip = 5;
	else if (TOK_IPREFIX(val, vl, "https:"))
		skip = 6;
	else if (TOK_IPREFIX(val, vl, "ftp:"))
		skip = 4;
	if (skip || slashes(val, vl) >= 2)
		skip += slashes(val + skip, vl - skip);
	else if (!TOK_IPREFIX(val, vl, "www."))
		return; /* a relative link, or another scheme */
	if (skip < vl)
		tok_url(t, val + skip, vl - skip);
}

/* The bytes that end or separate the parts of a tag's attributes. */
enum { A_SPACE = 1, A_SLASH = 2, A_EQ = 4, A_GT = 8 };
static const unsigned char attr_bytes[256] = {
        [' '] = A_SPACE, ['\t'] = A_SPACE, ['\n'] = A_SPACE, ['\r'] = A_SPACE,
        ['/'] = A_SLASH, ['='] = A_EQ,     ['>'] = A_GT,
};

static inline bool attr_is(char c, unsigned bits)
{
	return attr_bytes[(unsigned char)c] & bits;
}

/* Reads the attributes of a tag from s[i] to its '>', emitting url: tokens
 * for href and src. Returns the position after '>'. */
static size_t attributes(struct chaff_tokenizer *t, const char *s, size_t n, size_t i)
{
	while (i < n) {
		while (i < n && attr_is(s[i], A_SPACE | A_SLASH))
			i++;
		if (i >= n || s[i] == '>')
			return i < n ? i + 1 : n;
		size_t an = i;
		while (i < n && !attr_is(s[i], A_EQ | A_GT | A_SPACE))
			i++;
		size_t alen = i - an;
		while (i < n && attr_is(s[i], A_SPACE))
			i++;
		if (i >= n || s[i] != '=')
			continue;
		i++;
		while (i < n && attr_is(s[i], A_SPACE))
			i++;
		size_t v = i, vend;
		if (i < n && (s[i] == '"' || s[i] == '\'')) {
			const char *q = memchr(s + i + 1, s[i], n - i - 1);
			v = i + 1;
			if (q) {
				vend = (size_t)(q - s);
				i = vend + 1;
			} else {
				/* An unclosed quote ends at the tag's end. */
				const char *gt = memchr(s + v, '>', n - v);
				vend = gt ? (size_t)(gt - s) : n;
				i = vend;
			}
		} else {
			while (i < n && !attr_is(s[i], A_GT | A_SPACE))
				i++;
			vend = i;
		}
		if (TOK_IEQ(s + an, alen, "href") || TOK_IEQ(s + an, alen, "src") ||
		    TOK_IEQ(s + an, alen, "action") || TOK_IEQ(s + an, alen, "background"))
			link(t, attr_value(t, s + v, vend - v));
	}
	return n;
}

/* Copies the text at s[i] up to the next '&' or '<' to out[o]; returns
 * its length. Sixteen bytes at a time where SSE2 is there: out has room,
 * since the text never grows (an entity is no shorter than its
 * character, a tag than the space it may become). */
static size_t plain_text(const char *s, size_t n, size_t i, char *out, size_t o)
{
	size_t start = i;
#ifdef __SSE2__
	const __m128i amp = _mm_set1_epi8('&'), lt = _mm_set1_epi8('<');
	while (n - i >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		_mm_storeu_si128((__m128i *)(void *)(out + o + (i - start)), v);
		unsigned m = (unsigned)_mm_movemask_epi8(
		        _mm_or_si128(_mm_cmpeq_epi8(v, amp), _mm_cmpeq_epi8(v, lt)));
		if (m)
			return i - start + (size_t)__builtin_ctz(m);
		i += 16;
	}
#endif
	for (; i < n && s[i] != '&' && s[i] != '<'; i++)
		out[o + (i - start)] = s[i];
	return i - start;
}

struct span tok_html_text(struct chaff_tokenizer *t, const char *s, size_t n)
{
	char *out = tok_alloc(t, n + 18);
	if (!out)
		return (struct span){"", 0};
	size_t o = 0, i = 0;
	while (i < n) {
		char c = s[i];
		if (c != '&' && c != '<') { /* plain text: copied as it is */
			size_t k = plain_text(s, n, i, out, o);
			i += k;
			o += k;
			continue;
		}
		if (c == '&') {
			uint32_t cp;
			size_t k = entity(s + i, n - i, &cp, false);
			if (k) {
				o += put_entity(out + o, cp);
				i += k;
				continue;
			}
		} else if (c == '<' && i + 1 < n) {
			char d = s[i + 1];
			if (d == '!' && i + 3 < n && s[i + 2] == '-' && s[i + 3] == '-') {
				i = comment_end(s, n, i + 4);
				continue;
			}
			bool closing = d == '/';
			if (d == '!' || d == '?' || (closing && i + 2 < n && !is_alpha(s[i + 2]))) {
				/* "<!x>", "<?x>", "</ x>" and "</>": a bogus comment
				 * (or nothing), which a browser hides without a
				 * break, so Vi<!x>agra is one word there */
				const char *gt = memchr(s + i, '>', n - i);
				i = gt ? (size_t)(gt - s) + 1 : n;
				continue;
			}
			size_t nm = i + 1 + closing;
			if (nm < n && is_alpha(s[nm])) {
				size_t ne = nm;
				while (ne < n && is_alnum(s[ne]))
					ne++;
				i = attributes(t, s, n, ne);
				if (!closing && TOK_IEQ(s + nm, ne - nm, "script"))
					i = skip_element(s, n, i, "script", 6);
				else if (!closing && TOK_IEQ(s + nm, ne - nm, "style"))
					i = skip_element(s, n, i, "style", 5);
				if (block_tag(s + nm, ne - nm))
					out[o++] = ' ';
				continue;
			}
		}
		out[o++] = c;
		i++;
	}
	out[o] = '\0';
	return (struct span){out, o};
}
