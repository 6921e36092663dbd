/*
 * Internals shared by the tokenizer's files. Nothing here is public.
 */
#ifndef CHAFF_TOK_H
#define CHAFF_TOK_H

#include "../common/arena.h"
#include "../common/findpair.h"
#include "../common/smallcopy.h"
#include "chaff.h"

#include <iconv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
/* Token hashing runs once per token on short keys: inlined, XXH3 is
 * specialised for them by the compiler. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#ifdef __SSE2__
#include <emmintrin.h>

/* The sixteen bytes of v with 'A' to 'Z' lowered: x + (0x80 - 'A') maps
 * them onto the 26 lowest signed bytes. */
static inline __m128i tok_vec_lower(__m128i v)
{
	__m128i up = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - 'A'))),
	                            _mm_set1_epi8((char)(-128 + 26)));
	return _mm_or_si128(v, _mm_and_si128(up, _mm_set1_epi8(0x20)));
}

/* Bit i set when byte i of v is an ASCII letter; *digit likewise for
 * digits. */
static inline unsigned tok_vec_alpha(__m128i v, unsigned *digit)
{
	/* x + (0x80 - lo) maps [lo, lo + len) onto the lowest signed bytes */
	__m128i low = _mm_or_si128(v, _mm_set1_epi8(0x20));
	__m128i a = _mm_add_epi8(low, _mm_set1_epi8((char)(0x80 - 'a')));
	__m128i d = _mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - '0')));
	__m128i isa = _mm_cmplt_epi8(a, _mm_set1_epi8((char)(-128 + 26)));
	__m128i isd = _mm_cmplt_epi8(d, _mm_set1_epi8((char)(-128 + 10)));
	*digit = (unsigned)_mm_movemask_epi8(isd);
	return (unsigned)_mm_movemask_epi8(isa);
}
#endif

/* The number of ASCII bytes at the start of p: most of most text, so
 * looked at sixteen at a time. */
static inline size_t tok_ascii_run(const unsigned char *p, size_t n)
{
	size_t i = 0;
#ifdef __SSE2__
	for (; n - i >= 16; i += 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(
		        _mm_loadu_si128((const __m128i *)(const void *)(p + i)));
		if (m)
			return i + (size_t)__builtin_ctz(m);
	}
#endif
	while (i < n && p[i] < 0x80)
		i++;
	return i;
}

/* A byte range; never NUL-terminated unless said so. */
struct span {
	const char *p;
	size_t n;
};

/* CHARSET_PER_MESSAGE: iconv charsets one message may use (opening one
 * loads a module); text in any further one is read as undeclared.
 * UNKNOWN_PER_MESSAGE: names iconv does not know that one message may
 * look up; they do not count against the charsets, so that a few bogus
 * names cannot turn the real charset of the body into undeclared text.
 * WORD_MAX: the longest word kept as it is (the word scanner's buffer),
 * and so the largest max_token_len a tokenizer accepts. */
enum {
	CHARSET_CACHE_SIZE = 24,
	CHARSET_PER_MESSAGE = 8,
	UNKNOWN_PER_MESSAGE = 32,
	PAIR_WINDOW_MAX = 4,
	WORD_MAX = 256
};

struct charset_slot {
	char name[40]; /* normalised declared name */
	iconv_t cd;    /* (iconv_t)-1 when iconv does not know it */
};

/* Word scanner modes: which extra recognisers run over the text. */
enum {
	SCAN_URLS = 1u << 0,  /* http://, www., e-mail addresses */
	SCAN_PAIRS = 1u << 1, /* word pairs, when configured */
	SCAN_ADDRS = 1u << 2, /* addresses as <prefix><addr>, <prefix>@<dom> */
};

struct chaff_tokenizer {
	struct chaff_tokenizer_config cfg;
	struct chaff_arena arena; /* the tokens' text */
	/* Everything else a message needs while it is read (decoded,
	 * converted and HTML-stripped text, unfolded headers): each MIME
	 * entity gives back its own when it is done, so a message of many
	 * parts holds one part's worth per level of nesting, not every
	 * part's at once. */
	struct chaff_arena scratch;

	struct chaff_token *toks;
	size_t ntoks, cap;
	uint32_t limits_hit;
	uint32_t parts;
	bool full; /* max_tokens reached or out of memory: stop emitting */
	bool hashing; /* false in chaff_tokenize_text(): hashes stay 0 */
	bool oom;

	/* The last words of the body, for word pairs (text without prefix). */
	struct span prev[PAIR_WINDOW_MAX];
	unsigned nprev;

	struct charset_slot charsets[CHARSET_CACHE_SIZE];
	unsigned ncharsets;
	char used[CHARSET_PER_MESSAGE][40];    /* iconv charsets this message used */
	char unknown[UNKNOWN_PER_MESSAGE][40]; /* names it gave that iconv lacks */
	unsigned nused, nunknown;

	pcre2_code *re_auth;
	pcre2_match_data *md;
};

/* tokenizer.c */
/* Compiles the patterns on first use: CHAFF_OK, or CHAFF_EPATTERN or
 * CHAFF_ENOMEM. */
int tok_patterns(struct chaff_tokenizer *t);
/* Records that a limit was hit (flag and limit: token), once per message. */
void tok_limit(struct chaff_tokenizer *t, uint32_t bit);
/* Scratch memory for the entity being read (see struct chaff_tokenizer);
 * on failure marks the message out of memory (chaff_tokenize then
 * returns CHAFF_ENOMEM) and returns NULL. */
void *tok_alloc(struct chaff_tokenizer *t, size_t n);
/* Building a token in place: tok_reserve() gives room for max bytes of
 * text (NULL when no more tokens are taken), tok_commit() keeps len of
 * them and records the token. Nothing else may allocate in between. */
struct chaff_token *tok_slot_slow(struct chaff_tokenizer *t);
static inline char *tok_reserve(struct chaff_tokenizer *t, size_t max)
{
	if (t->full)
		return NULL;
	char *p = chaff_arena_bytes(&t->arena, max + 1);
	if (!p)
		t->full = t->oom = true;
	return p;
}

static inline __attribute__((always_inline)) void
tok_commit(struct chaff_tokenizer *t, unsigned origin, char *text, size_t len)
{
	chaff_arena_trim(&t->arena, text, len + 1);
	text[len] = '\0';
	struct chaff_token *tk = t->ntoks < t->cap ? &t->toks[t->ntoks++] : tok_slot_slow(t);
	if (!tk)
		return;
	tk->hash = t->hashing ? XXH3_64bits_withSeed(text, len, t->cfg.seed) : 0;
	tk->text = text;
	tk->len = (uint32_t)len;
	tk->origin = origin;
	if (t->ntoks >= t->cfg.limits.max_tokens)
		tok_limit(t, CHAFF_LIMIT_TOKENS);
}
void tok_emit(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
              const char *s, size_t n);
/* Emits prefix + lower-cased ASCII s (host names, types, verdicts). */
void tok_emit_lower(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
                    const char *s, size_t n);
/* Copies s[0..n) to out with each byte of a control character as '?':
 * C0 and DEL, and the C1 controls written in UTF-8 (U+0080 to U+009F;
 * U+009B is a terminal's CSI). For values a header gives whole (types,
 * charsets, message IDs, file names), whose control characters would end
 * a line or steer a terminal wherever tokens are printed ("chaff tokens",
 * --explain). */
void tok_uncontrol(char *out, const char *s, size_t n);
/* Emits prefix + s lower-cased and tok_uncontrol'd. */
void tok_emit_value(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
                    const char *s, size_t n);
#define TOK_EMIT_LIT(t, origin, lit) tok_emit((t), (origin), "", 0, lit, sizeof(lit) - 1)

/* Writes code point u as UTF-8 (1 to 4 bytes) at out; returns the length.
 * The caller keeps u a valid scalar value and leaves room for 4 bytes. */
static inline size_t tok_put_utf8(char *out, uint32_t u)
{
	if (u < 0x80) {
		out[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		out[0] = (char)(0xC0 | u >> 6);
		out[1] = (char)(0x80 | (u & 0x3F));
		return 2;
	}
	if (u < 0x10000) {
		out[0] = (char)(0xE0 | u >> 12);
		out[1] = (char)(0x80 | ((u >> 6) & 0x3F));
		out[2] = (char)(0x80 | (u & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | u >> 18);
	out[1] = (char)(0x80 | ((u >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((u >> 6) & 0x3F));
	out[3] = (char)(0x80 | (u & 0x3F));
	return 4;
}

/* words.c */
void tok_words(struct chaff_tokenizer *t, const char *s, size_t n, const char *prefix, size_t plen,
               unsigned mode);
/* Emits prefix + s case-folded, letters of any script included (an
 * internationalised name's capitals, "MÜNCHEN.de", "ÄNDERUNG.ZIP"), bytes
 * that are not UTF-8 kept: the folded length, which may differ from n, or
 * 0 when no more tokens are taken. */
size_t tok_emit_folded(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
                       const char *s, size_t n);
/* Emits prefix + host and its parent domains down to two labels. */
void tok_host(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
              const char *host, size_t n);
/* Reads a URL value (href/src, or text after a scheme) and emits url: tokens;
 * returns bytes consumed through the host and port. */
size_t tok_url(struct chaff_tokenizer *t, const char *s, size_t n);

/* decode.c: output into the arena, at most cap bytes; *more set when the
 * input held more than cap bytes of output. */
struct span tok_base64(struct chaff_tokenizer *t, const char *s, size_t n, size_t cap, bool *more);
struct span tok_qp(struct chaff_tokenizer *t, const char *s, size_t n, size_t cap, bool *more);

/* charset.c: UTF-8 text of s declared as charset (may be NULL/empty). The
 * result may alias s when no conversion is needed. */
struct span tok_to_utf8(struct chaff_tokenizer *t, const char *charset, size_t clen, const char *s,
                        size_t n);
void tok_charsets_close(struct chaff_tokenizer *t);

/* html.c: visible text of an HTML document; emits url: tokens on the way. */
struct span tok_html_text(struct chaff_tokenizer *t, const char *s, size_t n);

/* header.c */
/* The ASCII bytes of a host name: letters, digits, '.', '-' and '_'. */
extern const bool tok_host_bytes[256];
/* charset.c: Windows-1252 bytes 0x80..0x9F as code points (a space for
 * the five it leaves undefined). */
extern const uint16_t tok_cp1252_hi[32];
struct mime_info {
	struct span type;    /* "text/plain", lower-cased; empty when absent */
	struct span charset; /* declared, raw */
	struct span boundary;
	struct span cte;      /* as written: compare it without case */
	struct span filename; /* UTF-8 */
	bool has_type;
};
/* Reads the header block at p; fills info; when top, emits header tokens.
 * Returns where the body starts. */
const char *tok_headers(struct chaff_tokenizer *t, const char *p, const char *end,
                        struct mime_info *info, bool top);
/* RFC 2047 decoding of an unfolded header value into UTF-8. */
struct span tok_decode_2047(struct chaff_tokenizer *t, const char *s, size_t n);

/* mime.c: parameters of a structured header value into info. */
void tok_content_type(struct chaff_tokenizer *t, const char *s, size_t n, struct mime_info *info);
void tok_content_disposition(struct chaff_tokenizer *t, const char *s, size_t n,
                             struct mime_info *info);
/* What tok_entity reads: a message (its headers give header tokens), a
 * MIME part, or a part of a multipart/digest (a message unless its
 * Content-Type says otherwise, RFC 2046 5.1.5). */
enum entity_kind { ENTITY_MESSAGE, ENTITY_PART, ENTITY_DIGEST_PART };
void tok_entity(struct chaff_tokenizer *t, const char *p, const char *end, unsigned depth,
                enum entity_kind kind);

/* mime.c: the first message/rfc822 part in the entity at p, decoded. */
bool tok_find_message(struct chaff_tokenizer *t, const char *p, const char *end, unsigned depth,
                      struct span *out);

/* Every byte with ASCII A-Z lowered: a load instead of two compares. */
extern const unsigned char tok_lower[256];

static inline char tok_lc(char c)
{
	return (char)tok_lower[(unsigned char)c];
}

/* The bytes of a header field's name: printable ASCII but ':'. */
extern const bool tok_name_bytes[256];

/* The line q..le as a header field: the end of its name (the colon
 * follows, perhaps after blanks) and *colon set, or NULL when it is no
 * field. A header block ends at its first line that is neither a field
 * nor a continuation, for the tokenizer and for the digest alike. */
static inline const char *tok_field(const char *q, const char *le, const char **colon)
{
	const char *c = q;
	while (c < le && tok_name_bytes[(unsigned char)*c])
		c++;
	const char *ne = c;
	while (c < le && (*c == ' ' || *c == '\t'))
		c++;
	if (ne == q || c >= le || *c != ':')
		return NULL;
	*colon = c;
	return ne;
}

/* Value of a hex digit in either case, or -1. */
static inline int tok_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The byte an escape's two hex digits after s[0] name ("=4A" in
 * quoted-printable and RFC 2047, "%4A" in URLs and RFC 2231), or -1 when
 * s[0..n) holds no such escape. */
static inline int tok_hexpair(const char *s, size_t n)
{
	if (n < 3)
		return -1;
	int hi = tok_hexval((unsigned char)s[1]), lo = tok_hexval((unsigned char)s[2]);
	return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

/* The length of the run of hex digits, ':' and '.' at s[0..n) (an IPv6
 * address's characters), read no further than max bytes. */
static inline size_t tok_ip6_run(const char *s, size_t n, size_t max)
{
	size_t e = 0;
	while (e < n && e < max &&
	       (tok_hexval((unsigned char)s[e]) >= 0 || s[e] == ':' || s[e] == '.'))
		e++;
	return e;
}

/* Case-insensitive ASCII comparison of s[0..n) with a lower-case literal. */
static inline bool tok_ieq(const char *s, size_t n, const char *lit, size_t litlen)
{
	if (n != litlen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (tok_lc(s[i]) != lit[i])
			return false;
	return true;
}
#define TOK_IEQ(s, n, lit) tok_ieq((s), (n), lit, sizeof(lit) - 1)

static inline bool tok_iprefix(const char *s, size_t n, const char *lit, size_t litlen)
{
	return n >= litlen && tok_ieq(s, litlen, lit, litlen);
}
#define TOK_IPREFIX(s, n, lit) tok_iprefix((s), (n), lit, sizeof(lit) - 1)

#endif
