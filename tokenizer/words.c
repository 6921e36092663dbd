/*
 * The word scanner: UTF-8 text in, case-folded words out, with URLs,
 * e-mail addresses, spaceless scripts and word pairs recognised on the way.
 * It is the tokenizer's hot loop, so ASCII takes a table lookup per byte
 * and only other characters pay for a Unicode property lookup.
 */
#include "tok.h"

#include <stdio.h>
#include <string.h>
#include <unicase.h>
#include <unictype.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { W_SEP = 0, W_ALNUM = 1, W_JOIN = 2, W_LOCAL = 3 };

/* ASCII classes: W_JOIN may stand inside a word, W_LOCAL only inside the
 * local part of an address. */
static const unsigned char ascii_class[128] = {
        ['0' ... '9'] = W_ALNUM, ['A' ... 'Z'] = W_ALNUM, ['a' ... 'z'] = W_ALNUM, ['\''] = W_JOIN,
        ['-'] = W_JOIN,          ['.'] = W_JOIN,          ['_'] = W_JOIN,          ['+'] = W_LOCAL,
        ['%'] = W_LOCAL,         ['='] = W_LOCAL,
};

/* ASCII letters and digits, folded; 0 for every other byte. */
static const char ascii_fold[256] = {
        ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5', ['6'] = '6',
        ['7'] = '7', ['8'] = '8', ['9'] = '9', ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd',
        ['e'] = 'e', ['f'] = 'f', ['g'] = 'g', ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k',
        ['l'] = 'l', ['m'] = 'm', ['n'] = 'n', ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r',
        ['s'] = 's', ['t'] = 't', ['u'] = 'u', ['v'] = 'v', ['w'] = 'w', ['x'] = 'x', ['y'] = 'y',
        ['z'] = 'z', ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f',
        ['G'] = 'g', ['H'] = 'h', ['I'] = 'i', ['J'] = 'j', ['K'] = 'k', ['L'] = 'l', ['M'] = 'm',
        ['N'] = 'n', ['O'] = 'o', ['P'] = 'p', ['Q'] = 'q', ['R'] = 'r', ['S'] = 's', ['T'] = 't',
        ['U'] = 'u', ['V'] = 'v', ['W'] = 'w', ['X'] = 'x', ['Y'] = 'y', ['Z'] = 'z',
};

/* ASCII bytes that can start nothing: all but letters, digits and '$'.
 * Bytes from 0x80 up may start a word and are looked at one by one. */
static const bool skip_byte[256] = {
        [0 ... '#'] = true,   ['%' ... '/'] = true,  [':' ... '@'] = true,
        ['[' ... '`'] = true, ['{' ... 0x7f] = true,
};

#ifdef __SSE2__
/* Sixteen bytes at a time: a word ends, and a separator run stops, at an
 * unpredictable byte, and a branch per byte mispredicts there once per
 * word. A mask of the bytes' classes and a count of trailing ones finds
 * the same place without a branch per byte. */
enum { VEC = 16 };

/* Folds the letters and digits at s into out (all sixteen bytes are
 * written); returns how many lead the block, 16 when all do. */
static inline size_t vec_fold(const char *s, char *out)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
	_mm_storeu_si128((__m128i *)(void *)out, tok_vec_lower(v));
	unsigned digit, alpha = tok_vec_alpha(v, &digit);
	return (size_t)__builtin_ctz(~(alpha | digit));
}

/* Bit i set when byte i of v is a joining byte: ' - . _ */
static inline unsigned vec_join(__m128i v)
{
	__m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('\''));
	__m128i h = _mm_cmpeq_epi8(v, _mm_set1_epi8('-'));
	__m128i d = _mm_cmpeq_epi8(v, _mm_set1_epi8('.'));
	__m128i u = _mm_cmpeq_epi8(v, _mm_set1_epi8('_'));
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, h), _mm_or_si128(d, u)));
}

/* How many bytes at s are separators (skip_byte), up to 16. */
static inline size_t vec_skip(const char *s)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
	unsigned digit, alpha = tok_vec_alpha(v, &digit);
	unsigned dollar = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('$')));
	unsigned high = (unsigned)_mm_movemask_epi8(v);
	return (size_t)__builtin_ctz(alpha | digit | dollar | high | 0x10000u);
}
#endif

/* Two-letter ASCII words ("to", "of", "is") are in every message of both
 * classes: counting them made the ranking worse in cross-validation. In
 * other scripts two letters are often a whole word (Korean "무료"). */
enum {
	WORD_BUF = WORD_MAX,
	HOST_MAX = 255,
	LOCAL_MAX = 64,
	MIN_WORD_CHARS = 3,
	USERINFO_MAX = 512
};

/* Decodes one UTF-8 character; *k is 0 for an invalid sequence. Input from
 * the converters is valid UTF-8, but the scanner must not trust that. */
static uint32_t next_cp(const unsigned char *p, size_t n, size_t *k)
{
	unsigned c = p[0];
	if (c < 0x80) {
		*k = 1;
		return c;
	}
	if (c >= 0xC2 && c <= 0xDF && n >= 2 && (p[1] & 0xC0) == 0x80) {
		*k = 2;
		return (c & 0x1F) << 6 | (p[1] & 0x3F);
	}
	if (c >= 0xE0 && c <= 0xEF && n >= 3 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
		*k = 3;
		return (c & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
	}
	if (c >= 0xF0 && c <= 0xF4 && n >= 4 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 &&
	    (p[3] & 0xC0) == 0x80) {
		*k = 4;
		return (c & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
		       (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
	}
	*k = 0;
	return 0;
}

/* Han, Hiragana, Katakana and Thai: scripts written without spaces (with
 * Han's iteration and number marks, 々 〇 〡..〩 〸..〻). */
static bool spaceless(uint32_t u)
{
	return (u >= 0x4E00 && u <= 0x9FFF) || (u >= 0x3400 && u <= 0x4DBF) || u == 0x3005 ||
	       u == 0x3007 || (u >= 0x3021 && u <= 0x3029) || (u >= 0x3038 && u <= 0x303B) ||
	       (u >= 0x3040 && u <= 0x30FF) || (u >= 0x31F0 && u <= 0x31FF) ||
	       (u >= 0xF900 && u <= 0xFAFF) || (u >= 0x20000 && u <= 0x3134F) ||
	       (u >= 0xFF66 && u <= 0xFF9F) || (u >= 0x0E01 && u <= 0x0E5B);
}

/* A letter, digit or combining mark (marks keep decomposed accents inside
 * their word), outside the spaceless scripts. */
static bool word_cp(uint32_t u)
{
	if (u < 0x80)
		return ascii_class[u] == W_ALNUM;
	if (spaceless(u))
		return false;
	return uc_is_alnum(u) || uc_is_general_category(u, UC_CATEGORY_M);
}

/* Case folding of one character: the lower case of its upper case, which
 * also makes one letter of the variants that lower-casing keeps apart
 * (final sigma, the micro sign, long s), as Unicode's simple folding does;
 * dotless i, which that would make i, is left alone, as that folding
 * does. libunistring folds whole strings only, allocating. */
static uint32_t fold(uint32_t u)
{
	if (u == 0x131) /* dotless i, a letter of its own in Turkish */
		return u;
	return uc_tolower(uc_toupper(u));
}

/* True when a word character starts at s[i]. */
static bool word_at(const char *s, size_t n, size_t i)
{
	if (i >= n)
		return false;
	unsigned char c = (unsigned char)s[i];
	if (c < 0x80)
		return ascii_class[c] == W_ALNUM;
	size_t k;
	uint32_t u = next_cp((const unsigned char *)s + i, n - i, &k);
	return k && word_cp(u);
}

size_t tok_emit_folded(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
                       const char *s, size_t n)
{
	size_t first = t->ntoks;
	if (tok_ascii_run((const unsigned char *)s, n) == n) {
		tok_emit_lower(t, origin, prefix, plen, s, n);
		return t->ntoks > first ? n : 0;
	}
	/* a folded character is at most half as long again as itself */
	char *text = tok_reserve(t, plen + 2 * n);
	if (!text)
		return 0;
	chaff_copy_small(text, prefix, plen);
	size_t o = plen;
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		uint32_t u = (unsigned char)s[i] < 0x80
		                     ? 0
		                     : next_cp((const unsigned char *)s + i, n - i, &k);
		if (k) {
			o += tok_put_utf8(text + o, fold(u));
			i += k;
		} else { /* ASCII, lowered; a byte that is not UTF-8, kept */
			text[o++] = tok_lc(s[i++]);
		}
	}
	tok_commit(t, origin, text, o);
	return t->ntoks > first ? o - plen : 0;
}

void tok_host(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
              const char *host, size_t n)
{
	while (n && (host[n - 1] == '.' || host[n - 1] == '-'))
		n--;
	while (n && (host[0] == '.' || host[0] == '-')) {
		host++;
		n--;
	}
	if (n == 0)
		return;
	if (n > HOST_MAX)
		n = HOST_MAX;
	size_t first = t->ntoks;
	size_t ln = tok_emit_folded(t, origin, prefix, plen, host, n);
	if (ln == 0)
		return; /* no more tokens taken */
	/* a dotted number has no parents */
	bool numeric = host[0] >= '0' && host[0] <= '9';
	for (size_t i = 1; numeric && i < n; i++)
		numeric = (host[i] >= '0' && host[i] <= '9') || host[i] == '.';
	if (numeric)
		return;
	/* Parent domains down to two labels: each suffix after a dot that
	 * still holds a dot itself, copied from the host's lowered token. */
	const char *low = t->toks[first].text + plen;
	const char *last = memrchr(low, '.', ln);
	for (const char *d = low; last && (d = memchr(d, '.', (size_t)(last - d))) != NULL; d++)
		tok_emit(t, origin, prefix, plen, d + 1, ln - (size_t)(d + 1 - low));
}

/* The length of the host name character at s[i], or 0: ASCII letters,
 * digits, '-', '.' and '_', and letters, digits and marks of any script
 * (internationalised names), but not the quotes, dashes and spaces of
 * typography that text puts right after a URL or an address. */
static size_t host_char(const char *s, size_t n, size_t i)
{
	unsigned char c = (unsigned char)s[i];
	if (c < 0x80)
		return tok_host_bytes[c];
	size_t k;
	uint32_t u = next_cp((const unsigned char *)s + i, n - i, &k);
	/* marks: the vowel signs of Indic and Thai names; not the ones that
	 * show nothing (variation selectors, the grapheme joiner), which
	 * would let a host hide behind one */
	if (!k || !(uc_is_alnum(u) || (uc_is_general_category(u, UC_CATEGORY_M) &&
	                               !uc_is_property_default_ignorable_code_point(u))))
		return 0;
	return k;
}

/* The end of the host name from s[i]. */
static size_t host_end(const char *s, size_t n, size_t i)
{
	size_t k;
	while (i < n && (k = host_char(s, n, i)) != 0)
		i += k;
	return i;
}

/* Bytes that may stand in a URL's user-info (RFC 3986: unreserved,
 * percent escapes, sub-delims and ':'), and NUL, which this search has
 * always passed over (tokenizer 5's tokens depend on it). */
static const bool userinfo_bytes[256] = {
        ['\0'] = true, ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true,
        ['-'] = true,  ['.'] = true,         ['_'] = true,         ['~'] = true,
        ['%'] = true,  ['!'] = true,         ['$'] = true,         ['&'] = true,
        ['\''] = true, ['('] = true,         [')'] = true,         ['*'] = true,
        ['+'] = true,  [','] = true,         [';'] = true,         ['='] = true,
        [':'] = true,
};

/* The full stops that IDNA maps to '.': ideographic, full-width and
 * half-width (a host written "evil。example。com" goes to evil.example.com). */
static size_t dot_variant(const unsigned char *p, size_t n)
{
	if (n >= 3 && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x82)
		return 3; /* U+3002 */
	if (n >= 3 && p[0] == 0xEF &&
	    ((p[1] == 0xBC && p[2] == 0x8E) || (p[1] == 0xBD && p[2] == 0xA1)))
		return 3; /* U+FF0E, U+FF61 */
	return 0;
}

/* The host at s[0..n) as a browser reads it, into out (room for
 * HOST_MAX bytes): percent escapes decoded, IDNA's other full stops made
 * '.'; *used gets the bytes of s it took. Returns its length. */
static size_t read_host(const char *s, size_t n, char *out, size_t *used)
{
	size_t i = 0, o = 0;
	while (i < n && o < HOST_MAX) {
		const unsigned char *p = (const unsigned char *)s + i;
		size_t k;
		if (tok_host_bytes[p[0]]) { /* the common byte, first */
			out[o++] = (char)p[0];
			i++;
			continue;
		}
		int d = p[0] == '%' ? tok_hexpair(s + i, n - i) : -1;
		if (d >= 0) {
			if (d < 0x80 && !tok_host_bytes[d])
				break;
			out[o++] = (char)d; /* a byte of UTF-8 too, checked when folded */
			i += 3;
		} else if (p[0] >= 0x80 && (k = dot_variant(p, n - i)) != 0) {
			out[o++] = '.';
			i += k;
		} else if ((k = host_char(s, n, i)) != 0 && o + k <= HOST_MAX) {
			memcpy(out + o, p, k);
			o += k;
			i += k;
		} else {
			break;
		}
	}
	*used = i;
	return o;
}

size_t tok_url(struct chaff_tokenizer *t, const char *s, size_t n)
{
	size_t i = 0;
	const char *sep = n >= 3 ? memchr(s, ':', n < 12 ? n : 12) : NULL;
	if (sep && (size_t)(sep - s) + 3 <= n && sep[1] == '/' && sep[2] == '/')
		i = (size_t)(sep - s) + 3;
	/* user:password@host: the host follows the last '@' of the
	 * authority, whatever the user-info holds ("www.paypal.com%20x@evil").
	 * The search is bounded: in a long run of such bytes each URL found
	 * would otherwise read the rest of the run again. */
	size_t h = i;
	for (size_t k = i;
	     k < n && k - i < USERINFO_MAX && (userinfo_bytes[(unsigned char)s[k]] || s[k] == '@');
	     k++)
		if (s[k] == '@')
			h = k + 1;
	if (h < n && s[h] == '[') { /* an IPv6 literal */
		size_t e = h + 1 + tok_ip6_run(s + h + 1, n - h - 1, 46);
		if (e < n && s[e] == ']' && e > h + 1) {
			tok_emit_lower(t, CHAFF_ORIGIN_URL, "url:", 4, s + h + 1, e - h - 1);
			return e + 1;
		}
	}
	char host[HOST_MAX] = {0}; /* zeroed: gcc cannot tell only hn bytes are read */
	size_t used;
	size_t hn = read_host(s + h, n - h, host, &used);
	/* a host longer than HOST_MAX is read whole, its token cut */
	size_t e = hn == HOST_MAX ? host_end(s, n, h + used) : h + used;
	tok_host(t, CHAFF_ORIGIN_URL, "url:", 4, host, hn);
	if (e < n && s[e] == ':')
		while (++e < n && s[e] >= '0' && s[e] <= '9')
			;
	return e;
}

struct scan {
	struct chaff_tokenizer *t;
	const char *s;
	size_t n;
	const char *prefix;
	size_t plen;
	unsigned mode;
	unsigned origin; /* of the words: a header's when there is a prefix */
	const char *at;  /* next '@' at or after the scan position, or NULL */
#ifdef __SSE2__
	__m128i pre; /* the prefix when it is at most 16 bytes, padded */
#endif
};

/* Whether an '@' close enough ahead of s[i] may make a word there an
 * address's local part; moves sc->at on to the next '@' once passed. */
static bool at_near(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	if (sc->at && sc->at < s + i)
		sc->at = memchr(s + i, '@', sc->n - i);
	return sc->at && (size_t)(sc->at - s) - i <= LOCAL_MAX;
}

/* An address starting at s[i]: a short local part of address characters,
 * '@', then a host. Returns the end of the address, or 0 when there is none. */
static size_t address(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	if (!at_near(sc, i))
		return 0;
	size_t a = (size_t)(sc->at - s);
	for (size_t k = i; k < a; k++) {
		unsigned char c = (unsigned char)s[k];
		if (c >= 0x80 || ascii_class[c] == W_SEP)
			return 0;
	}
	size_t e = host_end(s, sc->n, a + 1);
	while (e > a + 1 && (s[e - 1] == '.' || s[e - 1] == '-'))
		e--;
	if (e == a + 1 || !word_at(s, sc->n, a + 1))
		return 0;
	bool dotted = memchr(s + a + 1, '.', e - a - 1) != NULL;
	if (!dotted && !(sc->mode & SCAN_ADDRS))
		return 0;
	struct chaff_tokenizer *t = sc->t;
	const char *p = (sc->mode & SCAN_ADDRS) ? sc->prefix : "email:";
	size_t pl = (sc->mode & SCAN_ADDRS) ? sc->plen : 6;
	char pat[24];
	if (pl + 1 >= sizeof(pat))
		return e;
	if (e - i <= HOST_MAX)
		tok_emit_folded(t, CHAFF_ORIGIN_ADDRESS, p, pl, s + i, e - i);
	memcpy(pat, p, pl);
	pat[pl] = '@';
	tok_host(t, CHAFF_ORIGIN_ADDRESS, pat, pl + 1, s + a + 1, e - a - 1);
	return e;
}

/* Word pairs: the word with each of the words before it, marked with their
 * distance, so "buy cheap pills" gives "cheap 1 pills" and "buy 2 pills". */
static void pairs(struct chaff_tokenizer *t, const char *w, size_t wn)
{
	unsigned win = t->cfg.pair_window;
	for (unsigned d = 1; d <= t->nprev && d <= win; d++) {
		struct span *p = &t->prev[(t->nprev - d) % PAIR_WINDOW_MAX];
		char *text = tok_reserve(t, p->n + 3 + wn);
		if (!text)
			return;
		memcpy(text, p->p, p->n);
		text[p->n] = ' ';
		text[p->n + 1] = (char)('0' + d);
		text[p->n + 2] = ' ';
		memcpy(text + p->n + 3, w, wn);
		tok_commit(t, CHAFF_ORIGIN_PAIR, text, p->n + 3 + wn);
	}
	t->prev[t->nprev % PAIR_WINDOW_MAX] = (struct span){w, wn};
	t->nprev++;
	if (t->nprev >= 2 * PAIR_WINDOW_MAX)
		t->nprev -= PAIR_WINDOW_MAX;
}

/* A run of spaceless-script characters as overlapping pairs. */
static size_t spaceless_run(struct scan *sc, size_t i)
{
	const unsigned char *s = (const unsigned char *)sc->s;
	size_t b = i, c = i; /* starts of the last two characters */
	unsigned count = 0;
	while (i < sc->n) {
		size_t k;
		uint32_t u = next_cp(s + i, sc->n - i, &k);
		if (!k || !spaceless(u))
			break;
		b = c;
		c = i;
		i += k;
		if (++count >= 2)
			tok_emit(sc->t, sc->origin, sc->prefix, sc->plen, sc->s + b, i - b);
	}
	if (count == 1)
		tok_emit(sc->t, sc->origin, sc->prefix, sc->plen, sc->s + c, i - c);
	return i;
}

/* One word from s[i], folded straight into its token's place in the
 * arena; emits it (or its length class) and returns where scanning
 * resumes. */
static size_t word(struct scan *sc, size_t i)
{
	struct chaff_tokenizer *t = sc->t;
	char *text = tok_reserve(t, sc->plen + WORD_BUF + 4);
	if (!text)
		return sc->n;
	if (sc->plen)
		chaff_copy_small(text, sc->prefix, sc->plen);
	char *buf = text + sc->plen;
	const char *s = sc->s;
	size_t n = sc->n, j = i, bl = 0, chars = 0;
	bool wide = false; /* holds a non-ASCII letter */
	if (s[j] == '$') {
		buf[bl++] = '$';
		j++;
		chars++;
	}
	while (j < n) {
		/* Most of a word is a run of ASCII letters and digits: one
		 * table lookup per byte. Everything else takes the path below. */
		bool vec = false;
#ifdef __SSE2__
		vec = n - j >= VEC && bl + VEC <= WORD_BUF;
		if (vec) {
			size_t k = vec_fold(s + j, buf + bl);
			bl += k;
			j += k;
			chars += k;
			if (k == VEC)
				continue;
		}
#endif
		if (!vec && bl < WORD_BUF) {
			size_t room = WORD_BUF - bl, k = 0;
			if (n - j < room)
				room = n - j;
			char f;
			while (k < room && (f = ascii_fold[(unsigned char)s[j + k]]) != 0)
				buf[bl + k++] = f;
			bl += k;
			j += k;
			chars += k;
			if (k == room)
				continue;
		}
		unsigned char c = (unsigned char)s[j];
		if (c < 0x80) {
			unsigned cls = ascii_class[c];
			if (cls == W_ALNUM) { /* only past WORD_BUF: counted, not kept */
				if (bl < WORD_BUF)
					buf[bl] = tok_lc((char)c);
				bl++;
				j++;
				chars++;
				continue;
			}
			if (cls == W_JOIN && word_at(s, n, j + 1)) {
				if (bl < WORD_BUF)
					buf[bl] = (char)c;
				bl++;
				j++;
				continue;
			}
			break;
		}
		size_t k;
		uint32_t u = next_cp((const unsigned char *)s + j, n - j, &k);
		if (k && uc_is_property_default_ignorable_code_point(u)) {
			/* shows nothing, splits nothing: "via\u200Bgra" */
			j += k;
			if (!word_at(s, n, j))
				break;
			continue;
		}
		if (!k || !word_cp(u))
			break;
		if (bl < WORD_BUF)
			bl += tok_put_utf8(buf + bl, fold(u));
		else
			bl += k;
		j += k;
		chars++;
		wide = true;
	}
	if (sc->mode & SCAN_URLS) {
		bool url = (j + 3 <= n && s[j] == ':' && s[j + 1] == '/' && s[j + 2] == '/' &&
		            (TOK_IEQ(buf, bl, "http") || TOK_IEQ(buf, bl, "https") ||
		             TOK_IEQ(buf, bl, "ftp"))) ||
		           (bl > 4 && bl <= WORD_BUF && memcmp(buf, "www.", 4) == 0);
		if (url) {
			/* (a URL always takes its first byte: the scan must go on) */
			chaff_arena_trim(&t->arena, text, 0);
			size_t took = tok_url(t, s + i, n - i);
			return i + (took ? took : 1);
		}
	}
	if (bl > t->cfg.limits.max_token_len) {
		/* long:, its first character and its length class, under the
		 * header's prefix when there is one (subj:long:s:50) */
		char cls[32] = "long:";
		size_t k;
		uint32_t u = next_cp((const unsigned char *)buf, bl < WORD_BUF ? bl : WORD_BUF, &k);
		size_t fl = 5 + (k ? tok_put_utf8(cls + 5, u) : 0);
		int m = snprintf(cls + fl, sizeof(cls) - fl, ":%zu", bl / 10 * 10);
		chaff_arena_trim(&t->arena, text, 0);
		tok_emit(t, sc->origin, sc->prefix, sc->plen, cls, fl + (size_t)m);
		return j;
	}
	if (wide ? chars < 2 : bl < MIN_WORD_CHARS) {
		chaff_arena_trim(&t->arena, text, 0);
		return j;
	}
	tok_commit(t, sc->origin, text, sc->plen + bl);
	if ((sc->mode & SCAN_PAIRS) && !t->full)
		pairs(t, buf, bl);
	return j;
}

#ifdef __SSE2__
/* Emits a word of len ASCII letters and digits (with joining bytes) whose
 * folded bytes are the first of fold0 and fold1, under the scan's
 * prefix; false when no more tokens are taken. */
static inline __attribute__((always_inline)) bool emit_plain(struct scan *sc, size_t len,
                                                             __m128i fold0, __m128i fold1)
{
	struct chaff_tokenizer *t = sc->t;
	char *text = tok_reserve(t, sc->plen + 2 * VEC);
	if (!text)
		return false;
	if (sc->plen > VEC)
		chaff_copy_small(text, sc->prefix, sc->plen);
	else if (sc->plen) /* the rest of the 16 bytes is overwritten next */
		_mm_storeu_si128((__m128i *)(void *)text, sc->pre);
	char *buf = text + sc->plen;
	/* what lies past the word is cut off by the commit */
	_mm_storeu_si128((__m128i *)(void *)buf, fold0);
	_mm_storeu_si128((__m128i *)(void *)(buf + VEC), fold1);
	tok_commit(t, sc->origin, text, sc->plen + len);
	if ((sc->mode & SCAN_PAIRS) && !t->full)
		pairs(t, buf, len);
	return true;
}

/* The common word, whole: ASCII letters and digits, perhaps joined by
 * ' - . _ ("don't", "3.5"), at most 30 bytes, ended by a byte that cannot
 * continue it or start a URL, and no '@' close enough to make it an
 * address's local part. Its 32 bytes are classified once, in vector
 * compares, and it is folded by two vector stores. Returns where scanning
 * resumes, or 0 when the word is not of that kind and word() must read
 * it. s[i] is an ASCII letter or digit. */
static size_t plain_word(struct scan *sc, size_t i)
{
	const char *s = sc->s + i;
	if (at_near(sc, i))
		return 0;
	char tail[2 * VEC + 2];
	if (sc->n - i <= 2 * VEC) {
		/* The end of a text (all of a short header value): read from a
		 * copy padded with NULs, which end a word as the text's end
		 * does. */
		memset(tail, 0, sizeof(tail));
		memcpy(tail, s, sc->n - i);
		s = tail;
	}
	__m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)s);
	__m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(s + VEC));
	unsigned d0, d1, a0 = tok_vec_alpha(v0, &d0), a1 = tok_vec_alpha(v1, &d1);
	uint32_t word = (a0 | d0) | (a1 | d1) << VEC;
	/* a word's letters and digits all fold by setting bit 5 (digits
	 * have it) */
	__m128i fold0 = _mm_or_si128(v0, _mm_set1_epi8(0x20));
	__m128i fold1 = _mm_or_si128(v1, _mm_set1_epi8(0x20));
	size_t len = (size_t)__builtin_ctzll(~(uint64_t)word);
	if (len == 2 * VEC)
		return 0;
	if ((unsigned char)s[len] < 0x80 && ascii_class[(unsigned char)s[len]] == W_JOIN &&
	    (word >> len >> 1 & 1)) {
		/* "don't", "e-mail", "3.5": a joining character followed by a
		 * letter or digit belongs to the word */
		uint64_t in = word | ((vec_join(v0) | (uint64_t)vec_join(v1) << VEC) & word >> 1);
		len = (size_t)__builtin_ctzll(~in);
		/* what follows byte 31 is not known; www.example.com is a URL */
		if (len >= 2 * VEC - 1 ||
		    ((sc->mode & SCAN_URLS) && len > 4 && TOK_IPREFIX(s, len, "www.")))
			return 0;
		/* fold only the letters: '_' would become DEL */
		fold0 = tok_vec_lower(v0);
		fold1 = tok_vec_lower(v1);
	}
	/* s[len] and s[len + 1] are there: more than 32 bytes are left, or
	 * the copy's padding */
	unsigned char e = (unsigned char)s[len];
	if (e >= 0x80 || e == ':')
		return 0;
	if (ascii_class[e] == W_JOIN) {
		unsigned char f = (unsigned char)s[len + 1];
		if (f >= 0x80 || ascii_class[f] == W_ALNUM)
			return 0;
	}
	if (len < MIN_WORD_CHARS)
		return i + len;
	if (len > sc->t->cfg.limits.max_token_len)
		return 0;
	return emit_plain(sc, len, fold0, fold1) ? i + len : sc->n;
}

/* Bit k set when byte k of the 32-byte window v0, v1 is c. */
static inline uint64_t window_eq(__m128i v0, __m128i v1, char c)
{
	__m128i x = _mm_set1_epi8(c);
	return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v0, x)) |
	       (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v1, x)) << VEC;
}

/* The plain words of a text, and the separators between them, in 32-byte
 * windows whose bytes are classified once: a word and the separators
 * before it cost a few bit operations, where plain_word() classifies 32
 * bytes again for each. Takes the words plain_word() would take, and a
 * word near an '@' that a separator ends (which word() takes alike), in
 * the same way, and returns where the general path must go on: at a word
 * of any other kind, a byte that may start one ('$', non-ASCII), or fewer
 * than 32 bytes before the end. */
static size_t plain_words(struct scan *sc, size_t i)
{
	struct chaff_tokenizer *t = sc->t;
	while (sc->n - i >= 2 * VEC && !t->full) {
		const char *s = sc->s + i;
		__m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)s);
		__m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(s + VEC));
		unsigned d0, d1, a0 = tok_vec_alpha(v0, &d0), a1 = tok_vec_alpha(v1, &d1);
		/* bit k of each mask is byte k of the window; bit 32 is set
		 * in stop, and so in nothing a word may continue with */
		uint64_t alnum = (a0 | d0) | (uint64_t)(a1 | d1) << VEC;
		uint64_t high = (unsigned)_mm_movemask_epi8(v0) |
		                (uint64_t)(unsigned)_mm_movemask_epi8(v1) << VEC;
		/* where the general path takes over: '$' and non-ASCII bytes,
		 * which may start words of other kinds, and the window's end */
		uint64_t stop = high | 1ull << 2 * VEC | window_eq(v0, v1, '$');
		/* a word ended by one of those or by ':' (a URL's scheme) goes
		 * to the general path too; a ':' between words is a separator */
		uint64_t odd_end = stop | window_eq(v0, v1, ':');
		uint64_t join = vec_join(v0) | (uint64_t)vec_join(v1) << VEC;
		/* a joining byte followed by a letter or digit belongs to the
		 * word: "don't", "e-mail", "3.5" */
		uint64_t in = alnum | (join & alnum >> 1);
		size_t p = 0;
		for (;;) {
			p += (size_t)__builtin_ctzll((alnum | stop) >> p);
			if (!(alnum >> p & 1)) {
				if (p < 2 * VEC)
					return i + p; /* '$' or non-ASCII */
				break;                /* the window is done */
			}
			size_t len = (size_t)__builtin_ctzll(~in >> p), e = p + len;
			/* byte 31 may join what follows the window */
			if (e >= 2 * VEC - 1) {
				if (p == 0)
					return i;
				break;
			}
			if (odd_end >> e & 1)
				return i + p;
			/* a joining byte before a non-ASCII letter: the general
			 * path; before a separator it ends the word */
			if ((join >> e & 1) && (high >> (e + 1) & 1))
				return i + p;
			/* near an '@', a word may be an address's local part:
			 * not when a separator ends it (as address() reads it) */
			if (at_near(sc, i + p)) {
				unsigned char c = (unsigned char)s[e];
				if (c == '@' || ascii_class[c] != W_SEP)
					return i + p;
			}
			if (len >= MIN_WORD_CHARS) {
				bool joined = (in & ~alnum) >> p & ((1ull << len) - 1);
				/* www.example.com is a URL */
				if (joined && (sc->mode & SCAN_URLS) && len > 4 &&
				    TOK_IPREFIX(s + p, len, "www."))
					return i + p;
				if (len > t->cfg.limits.max_token_len || sc->n - i - p < 2 * VEC)
					return i + p;
				const char *w = s + p;
				__m128i w0 = _mm_loadu_si128((const __m128i *)(const void *)w);
				__m128i w1 =
				        _mm_loadu_si128((const __m128i *)(const void *)(w + VEC));
				/* letters and digits fold by setting bit 5 (digits
				 * have it); joining bytes must stay ('_' would be DEL) */
				__m128i f0 = joined ? tok_vec_lower(w0)
				                    : _mm_or_si128(w0, _mm_set1_epi8(0x20));
				__m128i f1 = joined ? tok_vec_lower(w1)
				                    : _mm_or_si128(w1, _mm_set1_epi8(0x20));
				if (!emit_plain(sc, len, f0, f1) || t->full)
					return sc->n;
			}
			p = e;
		}
		i += p < 2 * VEC ? p : 2 * VEC;
	}
	return i;
}
#endif

void tok_words(struct chaff_tokenizer *t, const char *s, size_t n, const char *prefix, size_t plen,
               unsigned mode)
{
	if (!(t->cfg.flags & CHAFF_TOK_PAIRS))
		mode &= ~(unsigned)SCAN_PAIRS;
	struct scan sc = {
	        t, s, n, prefix, plen, mode, plen ? CHAFF_ORIGIN_HEADER : CHAFF_ORIGIN_BODY, NULL};
#ifdef __SSE2__
	if (plen && plen <= VEC) {
		char pre[VEC] = {0};
		memcpy(pre, prefix, plen);
		sc.pre = _mm_loadu_si128((const __m128i *)(const void *)pre);
	}
#endif
	if (mode & (SCAN_URLS | SCAN_ADDRS))
		sc.at = memchr(s, '@', n);
	size_t i = 0;
	while (i < n && !t->full) {
#ifdef __SSE2__
		if (n - i >= 2 * VEC) {
			i = plain_words(&sc, i);
			if (i >= n || t->full)
				break;
		}
#endif
		/* Separators between words: spaces, punctuation, markup. */
#ifdef __SSE2__
		size_t run;
		while (n - i >= VEC && (run = vec_skip(s + i)) == VEC)
			i += VEC;
		if (n - i >= VEC)
			i += run;
		else
#endif
			while (i < n && skip_byte[(unsigned char)s[i]])
				i++;
		if (i >= n)
			break;
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80) {
			if (ascii_class[c] != W_ALNUM) { /* '$' */
				if (i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')
					i = word(&sc, i);
				else
					i++;
				continue;
			}
		} else {
			size_t k;
			uint32_t u = next_cp((const unsigned char *)s + i, n - i, &k);
			if (!k) {
				i++;
				continue;
			}
			if (spaceless(u)) {
				i = spaceless_run(&sc, i);
				continue;
			}
			/* a character that shows nothing starts no word (in
			 * one, word() passes over it) */
			if (!word_cp(u) || uc_is_property_default_ignorable_code_point(u)) {
				i += k;
				continue;
			}
		}
#ifdef __SSE2__
		if (c < 0x80) {
			size_t e = plain_word(&sc, i);
			if (e) {
				i = e;
				continue;
			}
		}
#endif
		if (sc.at) {
			size_t e = address(&sc, i);
			if (e) {
				i = e;
				continue;
			}
		}
		i = word(&sc, i);
	}
}
