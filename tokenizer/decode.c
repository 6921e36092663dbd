/*
 * Content-Transfer-Encoding decoders. Mail in the wild breaks both
 * encodings in every way, so both decode what they can and never fail:
 * a wrong byte costs that byte, not the part.
 */
#include "tok.h"

/* 0..63 for the base64 alphabet, 64 for everything else. */
static const unsigned char b64[256] = {
        ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,
        ['H'] = 7,  ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13,
        ['O'] = 14, ['P'] = 15, ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20,
        ['V'] = 21, ['W'] = 22, ['X'] = 23, ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27,
        ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31, ['g'] = 32, ['h'] = 33, ['i'] = 34,
        ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39, ['o'] = 40, ['p'] = 41,
        ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47, ['w'] = 48,
        ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
        ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['+'] = 62,
        ['/'] = 63,
};

static inline bool is_b64(unsigned char c)
{
	return b64[c] != 0 || c == 'A';
}

/* Writes the have - 1 bytes that a group of have characters (2 to 4)
 * holds; returns how many. */
static size_t group_bytes(unsigned char *out, uint32_t acc, unsigned have)
{
	acc <<= 6 * (4 - have);
	out[0] = (unsigned char)(acc >> 16);
	if (have > 2)
		out[1] = (unsigned char)(acc >> 8);
	if (have > 3)
		out[2] = (unsigned char)acc;
	return have - 1;
}

/* Skips every byte outside the alphabet and decodes the rest four
 * characters at a time; padding after two or three characters ends that
 * group early (some mailers join separately encoded pieces), and so does
 * the end of the input. */
struct span tok_base64(struct chaff_tokenizer *t, const char *s, size_t n, size_t cap, bool *more)
{
	*more = false;
	size_t room = n / 4 * 3 + 3;
	if (room > cap)
		room = cap;
	unsigned char *out = tok_alloc(t, room + 1);
	if (!out)
		return (struct span){"", 0};
	size_t o = 0;
	uint32_t acc = 0;
	unsigned have = 0;
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	for (; p < end; p++) {
		if (!(*p == '=' && have >= 2)) {
			if (!is_b64(*p))
				continue;
			acc = acc << 6 | b64[*p];
			if (++have < 4)
				continue;
		}
		if (o + have - 1 > room) {
			*more = true;
			break;
		}
		o += group_bytes(out + o, acc, have);
		have = 0;
		acc = 0;
	}
	if (!*more && have >= 2 && o + have - 1 <= room)
		o += group_bytes(out + o, acc, have);
	out[o] = '\0';
	return (struct span){(const char *)out, o};
}

/* Quoted-printable: "=XX" in either case is a byte, "=" before the line end
 * (trailing white space allowed) is a soft break, any other "=" is kept. */
struct span tok_qp(struct chaff_tokenizer *t, const char *s, size_t n, size_t cap, bool *more)
{
	*more = false;
	size_t room = n < cap ? n : cap;
	char *out = tok_alloc(t, room + 1);
	if (!out)
		return (struct span){"", 0};
	size_t o = 0, i = 0;
	while (i < n) {
		if (o >= room) {
			*more = true;
			break;
		}
		if (s[i] != '=') { /* the run up to the next '=', whole */
			const char *eq = memchr(s + i, '=', n - i);
			size_t run = (eq ? (size_t)(eq - s) : n) - i;
			if (run > room - o)
				run = room - o;
			memcpy(out + o, s + i, run);
			o += run;
			i += run;
			continue;
		}
		int b = tok_hexpair(s + i, n - i);
		if (b >= 0) {
			out[o++] = (char)b;
			i += 3;
			continue;
		}
		size_t j = i + 1;
		while (j < n && (s[j] == ' ' || s[j] == '\t'))
			j++;
		if (j < n && s[j] == '\r')
			j++;
		if (j >= n || s[j] == '\n') {
			i = j < n ? j + 1 : j;
			continue;
		}
		out[o++] = '=';
		i++;
	}
	out[o] = '\0';
	return (struct span){out, o};
}
