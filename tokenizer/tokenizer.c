/*
 * The tokenizer's public entry points and the token emitter every other
 * tokenizer file writes through.
 */
#include "tok.h"

#include <stdlib.h>
#include <string.h>

const unsigned char tok_lower[256] = {
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
        0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c,
        0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b,
        0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
        0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79,
        0x7a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
        0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
        0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
        0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95,
        0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4,
        0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3,
        0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc2,
        0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1,
        0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0,
        0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe,
        0xff,
};

const bool tok_name_bytes[256] = {['!' ... '9'] = true, [';' ... '~'] = true};

void chaff_limits_default(struct chaff_limits *l)
{
	if (!l)
		return;
	l->max_mime_depth = 20;
	l->max_parts = 1000;
	l->max_part_bytes = 1u << 20;
	l->max_header_bytes = 16u << 10;
	l->max_token_len = 40;
	l->max_tokens = 20000;
	l->max_message_bytes = 32u << 20;
}

void chaff_tokenizer_config_default(struct chaff_tokenizer_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	chaff_limits_default(&cfg->limits);
	cfg->pair_window = PAIR_WINDOW_MAX;
}

/* Authentication-Results: method=result pairs. */
static const char RE_AUTH[] = "\\b(spf|dkim|dmarc|arc)\\s*=\\s*([a-z]+)";

static int compile(pcre2_code **out, const char *pattern)
{
	int err;
	PCRE2_SIZE off;
	*out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &err, &off,
	                     NULL);
	if (!*out)
		return CHAFF_EPATTERN;
	/* JIT is an optimisation: without it (some architectures) the
	 * interpreter gives the same matches. */
	(void)pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);
	return CHAFF_OK;
}

/* The patterns are compiled when a message first needs them: most mail
 * has no Authentication-Results header, and a process that scores one
 * message (procmail) would otherwise spend a millisecond on JIT for
 * nothing. */
int tok_patterns(struct chaff_tokenizer *t)
{
	if (t->re_auth)
		return CHAFF_OK;
	int rc = compile(&t->re_auth, RE_AUTH);
	if (rc == CHAFF_OK && !(t->md = pcre2_match_data_create(8, NULL)))
		rc = CHAFF_ENOMEM;
	if (rc != CHAFF_OK) {
		pcre2_code_free(t->re_auth);
		t->re_auth = NULL;
	}
	return rc;
}

int chaff_tokenizer_new(const struct chaff_tokenizer_config *cfg, chaff_tokenizer **out)
{
	if (!out)
		return CHAFF_EINVAL;
	*out = NULL;
	struct chaff_tokenizer *t = calloc(1, sizeof(*t));
	if (!t)
		return CHAFF_ENOMEM;
	if (cfg)
		t->cfg = *cfg;
	else
		chaff_tokenizer_config_default(&t->cfg);
	struct chaff_limits *l = &t->cfg.limits;
	if (t->cfg.pair_window < 1 || t->cfg.pair_window > PAIR_WINDOW_MAX ||
	    l->max_token_len < 2 || l->max_token_len > WORD_MAX || l->max_tokens < 16 ||
	    l->max_header_bytes < 64) {
		free(t);
		return CHAFF_EINVAL;
	}
	chaff_arena_init(&t->arena);
	chaff_arena_init(&t->scratch);
	*out = t;
	return CHAFF_OK;
}

void chaff_tokenizer_free(chaff_tokenizer *t)
{
	if (!t)
		return;
	tok_charsets_close(t);
	pcre2_match_data_free(t->md);
	pcre2_code_free(t->re_auth);
	chaff_arena_free(&t->arena);
	chaff_arena_free(&t->scratch);
	free(t->toks);
	free(t);
}

void *tok_alloc(struct chaff_tokenizer *t, size_t n)
{
	void *p = chaff_arena_alloc(&t->scratch, n);
	if (!p)
		t->full = t->oom = true;
	return p;
}

/* Token slots are one array kept across messages: it grows to the largest
 * message seen, and appending a token is a store, not an allocation. */
static struct chaff_token *slot(struct chaff_tokenizer *t)
{
	if (t->ntoks == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct chaff_token *n = realloc(t->toks, cap * sizeof(*n));
		if (!n)
			return NULL;
		t->toks = n;
		t->cap = cap;
	}
	return &t->toks[t->ntoks++];
}

struct chaff_token *tok_slot_slow(struct chaff_tokenizer *t)
{
	struct chaff_token *tk = slot(t);
	if (!tk)
		t->full = t->oom = true;
	return tk;
}

void tok_emit(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
              const char *s, size_t n)
{
	char *text = tok_reserve(t, plen + n);
	if (!text)
		return;
	chaff_copy_small(text, prefix, plen);
	chaff_copy_small(text + plen, s, n);
	tok_commit(t, origin, text, plen + n);
}

/* s[0..n) to out with ASCII letters lowered; out may be s. */
static void lower_copy(char *out, const char *s, size_t n)
{
	size_t i = 0;
#ifdef __SSE2__
	for (; i + 16 <= n; i += 16) /* sixteen bytes at a time */
		_mm_storeu_si128((__m128i *)(void *)(out + i),
		                 tok_vec_lower(_mm_loadu_si128((const __m128i *)(const void *)(s + i))));
#endif
	for (; i < n; i++)
		out[i] = tok_lc(s[i]);
}

void tok_emit_lower(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
                    const char *s, size_t n)
{
	char *text = tok_reserve(t, plen + n);
	if (!text)
		return;
	chaff_copy_small(text, prefix, plen);
	lower_copy(text + plen, s, n);
	tok_commit(t, origin, text, plen + n);
}

void tok_uncontrol(char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool c1 = c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		          (unsigned char)s[i + 1] <= 0x9f;
		if (c1)
			out[i++] = '?'; /* and its second byte, below */
		out[i] = c1 || c < 0x20 || c == 0x7f ? '?' : s[i];
	}
}

void tok_emit_value(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
                    const char *s, size_t n)
{
	char *text = tok_reserve(t, plen + n);
	if (!text)
		return;
	chaff_copy_small(text, prefix, plen);
	char *out = text + plen;
	tok_uncontrol(out, s, n);
	lower_copy(out, out, n); /* ('?' and the bytes of UTF-8 stay) */
	tok_commit(t, origin, text, plen + n);
}

static const char *const limit_names[] = {
        "limit:depth",  "limit:parts",  "limit:part_bytes",
        "limit:header", "limit:tokens", "limit:message",
};

/* A limit is reported once per message, as a flag and as a token: a message
 * built to hit limits is evidence in itself. The token cap keeps one slot
 * free for its own token. */
void tok_limit(struct chaff_tokenizer *t, uint32_t bit)
{
	if (t->limits_hit & bit)
		return;
	t->limits_hit |= bit;
	unsigned i = 0;
	while ((1u << i) != bit)
		i++;
	bool was_full = t->full;
	t->full = false;
	tok_emit(t, CHAFF_ORIGIN_LIMIT, "", 0, limit_names[i], strlen(limit_names[i]));
	t->full = was_full || t->oom || bit == CHAFF_LIMIT_TOKENS;
}

/* Forgets the last message; returns where msg's headers start, past an
 * mbox "From " separator line, with *len cut to the message limit. */
static const char *start_message(struct chaff_tokenizer *t, const void *msg, size_t *len)
{
	chaff_arena_reset(&t->arena);
	chaff_arena_reset(&t->scratch);
	t->ntoks = 0;
	t->limits_hit = 0;
	t->parts = 0;
	t->full = t->oom = false;
	t->nprev = 0;
	t->nused = t->nunknown = 0;
	const char *p = msg ? msg : "";
	if (*len > t->cfg.limits.max_message_bytes) {
		*len = t->cfg.limits.max_message_bytes;
		tok_limit(t, CHAFF_LIMIT_MESSAGE);
	}
	if (*len >= 5 && memcmp(p, "From ", 5) == 0) {
		const char *nl = memchr(p, '\n', *len);
		size_t skip = nl ? (size_t)(nl - p) + 1 : *len;
		p += skip;
		*len -= skip;
	}
	return p;
}

static int tokenize(chaff_tokenizer *t, const void *msg, size_t len, struct chaff_tokens *out,
                    bool hashing)
{
	if (!t || !out || (!msg && len))
		return CHAFF_EINVAL;
	t->hashing = hashing;
	const char *p = start_message(t, msg, &len);
	tok_entity(t, p, p + len, 0, ENTITY_MESSAGE);
	out->items = t->toks;
	out->count = t->ntoks;
	out->limits_hit = t->limits_hit;
	return t->oom ? CHAFF_ENOMEM : CHAFF_OK;
}

int chaff_tokenize(chaff_tokenizer *t, const void *msg, size_t len, struct chaff_tokens *out)
{
	return tokenize(t, msg, len, out, true);
}

int chaff_tokenize_text(chaff_tokenizer *t, const void *msg, size_t len, struct chaff_tokens *out)
{
	return tokenize(t, msg, len, out, false);
}

int chaff_attached_message(chaff_tokenizer *t, const void *msg, size_t len, const char **out,
                           size_t *outlen)
{
	if (!t || !out || !outlen || (!msg && len))
		return CHAFF_EINVAL;
	const char *p = start_message(t, msg, &len);
	struct span m;
	bool found = tok_find_message(t, p, p + len, 0, &m);
	t->ntoks = 0; /* headers read on the way are no message's tokens */
	if (t->oom)
		return CHAFF_ENOMEM;
	if (!found)
		return CHAFF_ENOTFOUND;
	*out = m.p;
	*outlen = m.n;
	return CHAFF_OK;
}
