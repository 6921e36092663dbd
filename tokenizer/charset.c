/*
 * Charset conversion to UTF-8. Most mail is ASCII, UTF-8 or Latin-1 in
 * one of its spellings, so those take paths of their own; iconv handles
 * every other charset through descriptors opened once per tokenizer.
 */
#include "tok.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Windows-1252 bytes 0x80..0x9F; the rest of the range is Latin-1. Five
 * bytes are undefined and map to U+FFFD's stand-in, a space. */
const uint16_t tok_cp1252_hi[32] = {
        0x20AC, 0x0020, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x0020, 0x017D, 0x0020, 0x0020, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x0020, 0x017E, 0x0178,
};

enum conv { CONV_UTF8, CONV_CP1252, CONV_ICONV };

/* Declared names as mail writes them, and what they really mean. Latin-1
 * and ASCII labels are read as Windows-1252, its superset in practice. */
static const struct alias {
	const char *name;
	const char *target; /* NULL: one of the built-in paths */
	enum conv conv;
} aliases[] = {
        {"utf-8", NULL, CONV_UTF8},
        {"utf8", NULL, CONV_UTF8},
        {"unicode-1-1-utf-8", NULL, CONV_UTF8},
        {"us-ascii", NULL, CONV_CP1252},
        {"ascii", NULL, CONV_CP1252},
        {"iso-8859-1", NULL, CONV_CP1252},
        {"iso8859-1", NULL, CONV_CP1252},
        {"iso_8859-1", NULL, CONV_CP1252},
        {"latin1", NULL, CONV_CP1252},
        {"latin-1", NULL, CONV_CP1252},
        {"l1", NULL, CONV_CP1252},
        {"windows-1252", NULL, CONV_CP1252},
        {"cp1252", NULL, CONV_CP1252},
        {"x-cp1252", NULL, CONV_CP1252},
        {"ansi_x3.4-1968", NULL, CONV_CP1252},
        {"default", NULL, CONV_CP1252},
        {"ks_c_5601-1987", "CP949", CONV_ICONV},
        {"ks_c_5601", "CP949", CONV_ICONV},
        {"euc-kr", "CP949", CONV_ICONV},
        {"korean", "CP949", CONV_ICONV},
        {"gb2312", "GB18030", CONV_ICONV},
        {"gbk", "GB18030", CONV_ICONV},
        {"x-gbk", "GB18030", CONV_ICONV},
        {"cp936", "GB18030", CONV_ICONV},
        {"euc-cn", "GB18030", CONV_ICONV},
        {"chinese", "GB18030", CONV_ICONV},
        {"shift_jis", "CP932", CONV_ICONV},
        {"shift-jis", "CP932", CONV_ICONV},
        {"x-sjis", "CP932", CONV_ICONV},
        {"sjis", "CP932", CONV_ICONV},
        {"big5", "BIG5-HKSCS", CONV_ICONV},
        {"x-big5", "BIG5-HKSCS", CONV_ICONV},
        {"iso-2022-jp", "ISO-2022-JP-2", CONV_ICONV},
        {"iso-8859-8-i", "ISO-8859-8", CONV_ICONV},
        {"tis-620", "CP874", CONV_ICONV},
        {"windows-874", "CP874", CONV_ICONV},
};

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

/* True when every byte is ASCII. */
static bool all_ascii(const char *s, size_t n)
{
	return tok_ascii_run((const unsigned char *)s, n) == n;
}

static bool valid_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		if (p[i] < 0x80) {
			i += tok_ascii_run(p + i, n - i);
			continue;
		}
		size_t k = utf8_seq(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

static struct span from_cp1252(struct chaff_tokenizer *t, const char *s, size_t n)
{
	char *out = tok_alloc(t, n * 3 + 1);
	if (!out)
		return (struct span){"", 0};
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned c = (unsigned char)s[i];
		if (c < 0x80) {
			size_t k = tok_ascii_run((const unsigned char *)s + i, n - i);
			memcpy(out + o, s + i, k);
			o += k;
			i += k - 1;
			continue;
		}
		o += tok_put_utf8(out + o, c < 0xA0 ? tok_cp1252_hi[c - 0x80] : c);
	}
	out[o] = '\0';
	return (struct span){out, o};
}

/* Undeclared, unknown or mislabelled 8-bit text: UTF-8 when it is valid
 * UTF-8 (an unlikely accident for any other charset), else Windows-1252. */
static struct span guess(struct chaff_tokenizer *t, const char *s, size_t n)
{
	if (valid_utf8(s, n))
		return (struct span){s, n};
	return from_cp1252(t, s, n);
}

/* Text declared UTF-8 that is not all valid UTF-8: when most of its 8-bit
 * bytes still form UTF-8 characters, a stray bad byte is a separator and
 * the characters around it stay as they are; when most do not, the text
 * is really 8-bit (Latin-1 labelled UTF-8) and is read as Windows-1252. */
static struct span declared_utf8(struct chaff_tokenizer *t, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t good = 0, bad = 0;
	for (size_t i = 0; i < n;) {
		if (p[i] < 0x80) {
			i += tok_ascii_run(p + i, n - i);
			continue;
		}
		size_t k = utf8_seq(p + i, n - i);
		if (k)
			good++;
		else
			bad++;
		i += k ? k : 1;
	}
	if (bad == 0)
		return (struct span){s, n};
	if (good < bad)
		return from_cp1252(t, s, n);
	char *out = tok_alloc(t, n + 1);
	if (!out)
		return (struct span){"", 0};
	for (size_t i = 0; i < n;) {
		size_t k = p[i] < 0x80 ? 1 : utf8_seq(p + i, n - i);
		if (k) {
			memcpy(out + i, s + i, k);
			i += k;
		} else {
			out[i++] = ' ';
		}
	}
	out[n] = '\0';
	return (struct span){out, n};
}

static bool listed(char (*list)[40], unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/* The cached descriptor for a normalised name, opening it on first use.
 * Returns (iconv_t)-1 when iconv has no such converter, or when the name
 * would be this message's CHARSET_PER_MESSAGE + 1st charset or its
 * UNKNOWN_PER_MESSAGE + 1st unknown name: opening a converter loads a
 * module, and a message cycling through more charsets than the cache
 * holds would pay that for every encoded word. The counts are the
 * message's own, not the cache's, so a message's tokens never depend on
 * the messages before it (or on which thread tokenized them). */
static iconv_t descriptor(struct chaff_tokenizer *t, const char *name, const char *target)
{
	bool counted = listed(t->used, t->nused, name);
	if (!counted && (t->nused == CHARSET_PER_MESSAGE || t->nunknown == UNKNOWN_PER_MESSAGE ||
	                 listed(t->unknown, t->nunknown, name)))
		return (iconv_t)-1;
	iconv_t cd = (iconv_t)-1;
	bool cached = false;
	for (unsigned i = 0; i < t->ncharsets && !cached; i++)
		if (strcmp(t->charsets[i].name, name) == 0) {
			cd = t->charsets[i].cd;
			cached = true;
		}
	if (!cached) {
		cd = iconv_open("UTF-8", target);
		/* A full cache evicts its oldest entry; the working set of
		 * charsets in one mail stream is small. */
		struct charset_slot *slot;
		if (t->ncharsets < CHARSET_CACHE_SIZE) {
			slot = &t->charsets[t->ncharsets++];
		} else {
			if (t->charsets[0].cd != (iconv_t)-1)
				iconv_close(t->charsets[0].cd);
			memmove(&t->charsets[0], &t->charsets[1],
			        sizeof(t->charsets[0]) * (CHARSET_CACHE_SIZE - 1));
			slot = &t->charsets[CHARSET_CACHE_SIZE - 1];
		}
		snprintf(slot->name, sizeof(slot->name), "%s", name);
		slot->cd = cd;
	}
	if (cd == (iconv_t)-1)
		snprintf(t->unknown[t->nunknown++], sizeof(t->unknown[0]), "%s", name);
	else if (!counted)
		snprintf(t->used[t->nused++], sizeof(t->used[0]), "%s", name);
	return cd;
}

void tok_charsets_close(struct chaff_tokenizer *t)
{
	for (unsigned i = 0; i < t->ncharsets; i++)
		if (t->charsets[i].cd != (iconv_t)-1)
			iconv_close(t->charsets[i].cd);
	t->ncharsets = 0;
}

static bool printable(char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Runs iconv over the whole input. A character the converter rejects
 * becomes a space and conversion resumes after it, so one bad character
 * does not cost the words around it; a truncated final sequence is
 * dropped. The text gets room for twelve bytes out per byte in, the most
 * any charset writes (one TSCII byte), up to four times max_part_bytes: a
 * part whose text would be longer has the rest cut, and the part_bytes
 * limit noted. (Room that doubled as the text grew let a 1 MB part take
 * 28 MB.) What the text does not use is given back at once. */
/* What becomes of a converter's state past a rejected character. */
enum recover {
	RESET,      /* back to the start (UTF-7: else its base64 runs on) */
	KEEP_SHIFT, /* ISO-2022: stay in the two-byte set, where a printable
	             * byte and the next make one character */
	KEEP_UNITS, /* UTF-16: keep the byte order, skip a whole code unit */
};

static struct span run_iconv(struct chaff_tokenizer *t, iconv_t cd, const char *s, size_t n,
                             enum recover how)
{
	size_t cap = (size_t)t->cfg.limits.max_part_bytes * 4;
	size_t room = n <= cap / 12 ? n * 12 + 16 : cap + 16;
	char *out = tok_alloc(t, room + 1), *o = out; /* where output goes next */
	size_t left = room;                           /* and what is free after it */
	if (!out)
		return (struct span){"", 0};
	iconv(cd, NULL, NULL, NULL, NULL);
	char *in = (char *)s;
	size_t inleft = n;
	bool cut = false;
	while (inleft > 0) {
		size_t r = iconv(cd, &in, &inleft, &o, &left);
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG || (errno == EILSEQ && left == 0)) {
			cut = true;
			break;
		} else if (errno == EILSEQ) {
			/* Past the rejected character. An ISO-2022 text keeps its
			 * two-byte set (glibc rejects the NEC extras, such as the
			 * circled digits, common in Japanese mail: reset to ASCII,
			 * the rest of the run was read as ASCII), a UTF-16 text
			 * its byte order; any other converter starts afresh. */
			bool pair = inleft >= 2 &&
			            (how == KEEP_UNITS ||
			             (how == KEEP_SHIFT && printable(in[0]) && printable(in[1])));
			size_t skip = pair ? 2 : 1;
			*o++ = ' ';
			left--;
			in += skip;
			inleft -= skip;
			if (how == RESET)
				iconv(cd, NULL, NULL, NULL, NULL);
		} else {
			break; /* EINVAL: an incomplete sequence at the end */
		}
	}
	/* flush a stateful encoder (its shift back to ASCII; nothing in UTF-8) */
	iconv(cd, NULL, NULL, &o, &left);
	*o = '\0';
	size_t used = (size_t)(o - out);
	chaff_arena_trim(&t->scratch, out, used + 1);
	if (cut) /* after the trim: the limit's token takes arena room */
		tok_limit(t, CHAFF_LIMIT_PART_BYTES);
	return (struct span){out, used};
}

/* The name without '-' and '_', at most 15 bytes of it. */
static void bare_name(const char *name, char bare[16])
{
	size_t k = 0;
	for (const char *c = name; *c && k + 1 < 16; c++)
		if (*c != '-' && *c != '_')
			bare[k++] = *c;
	bare[k] = '\0';
}

/* Charsets whose text can be plain ASCII bytes yet mean something else,
 * however the name is spelt (iconv takes utf7 and UTF_16 too). */
static bool ascii_unsafe(const char *name)
{
	char bare[16];
	bare_name(name, bare);
	static const char *const prefix[] = {"utf7", "iso2022", "utf16",   "utf32",
	                                     "ucs2", "ucs4",    "unicode", "hz"};
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (strncmp(bare, prefix[i], strlen(prefix[i])) == 0)
			return true;
	return false;
}

/* UTF-16 (or UCS-2) by a name that does not say its byte order: with a
 * byte-order mark, the mark decides; without one RFC 2781 says big-endian
 * but Windows writes little-endian, and the side the zero bytes of its
 * Latin letters fall on tells which. NULL for any other name. */
static const char *utf16_order(const char *name, const char *s, size_t n)
{
	char bare[16];
	bare_name(name, bare);
	if (strcmp(bare, "utf16") != 0 && strcmp(bare, "ucs2") != 0 && strcmp(bare, "unicode") != 0)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	if (n >= 2 && ((p[0] == 0xFE && p[1] == 0xFF) || (p[0] == 0xFF && p[1] == 0xFE)))
		return "utf-16";
	size_t even = 0, odd = 0;
	for (size_t i = 0; i + 1 < n && i < 4096; i += 2) {
		even += p[i] == 0;
		odd += p[i + 1] == 0;
	}
	return odd > even ? "utf-16le" : "utf-16be";
}

struct span tok_to_utf8(struct chaff_tokenizer *t, const char *charset, size_t clen, const char *s,
                        size_t n)
{
	char name[40];
	size_t k = 0;
	for (size_t i = 0; i < clen && k + 1 < sizeof(name); i++) {
		char c = tok_lc(charset[i]);
		if (c == '"' || c == '\'' || c == ' ' || c == '\t')
			continue;
		name[k++] = c;
	}
	name[k] = '\0';
	if (k == 0)
		return all_ascii(s, n) ? (struct span){s, n} : guess(t, s, n);
	if (!ascii_unsafe(name) && all_ascii(s, n))
		return (struct span){s, n};
	const char *target = name;
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		if (strcmp(aliases[i].name, name) != 0)
			continue;
		if (aliases[i].conv == CONV_UTF8)
			return declared_utf8(t, s, n);
		if (aliases[i].conv == CONV_CP1252)
			return from_cp1252(t, s, n);
		target = aliases[i].target;
		break;
	}
	if (strncmp(name, "windows-125", 11) == 0 && name[11] && !name[12]) {
		static const char *const cp[] = {"CP1250", "CP1251", "CP1252", "CP1253", "CP1254",
		                                 "CP1255", "CP1256", "CP1257", "CP1258"};
		if (name[11] >= '0' && name[11] <= '8')
			target = cp[name[11] - '0'];
	}
	const char *order = utf16_order(name, s, n);
	iconv_t cd = order ? descriptor(t, order, order) : descriptor(t, name, target);
	if (cd == (iconv_t)-1)
		return guess(t, s, n);
	char bare[16];
	bare_name(order ? order : name, bare);
	enum recover how = strncmp(bare, "iso2022", 7) == 0 ? KEEP_SHIFT
	                   : strncmp(bare, "utf16", 5) == 0 ? KEEP_UNITS
	                                                    : RESET;
	return run_iconv(t, cd, s, n, how);
}
