/*
 * The tokenizer's public entry points and the token emitter every other
 * tokenizer file writes through.
 */
#include "tok.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void chaff_limits_default(struct chaff_limits *l)
{
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
	memset(cfg, 0, sizeof(*cfg));
	chaff_limits_default(&cfg->limits);
	cfg->pair_window = PAIR_WINDOW_MAX;
}

/* Received: dotted quads, bracketed IPv6 and dotted host names. A pattern
 * says this more plainly than a scanner, and Received is read once per hop. */
static const char RE_RECEIVED[] =
	"(?<![0-9.])(\\d{1,3}\\.\\d{1,3}\\.\\d{1,3})\\.\\d{1,3}(?![0-9]|\\.[0-9])"
	"|(?:IPv6:|\\[)([0-9a-f]*:[0-9a-f:.]*[0-9a-f])"
	"|(?<![a-z0-9.-])((?:[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\\.)+[a-z][a-z0-9-]*[a-z0-9])"
	"(?![a-z0-9-]|\\.[a-z0-9])";
/* Authentication-Results: method=result pairs. */
static const char RE_AUTH[] = "\\b(spf|dkim|dmarc|arc)\\s*=\\s*([a-z]+)";

static int compile(pcre2_code **out, const char *pattern)
{
	int err;
	PCRE2_SIZE off;
	*out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &err,
	                     &off, NULL);
	if (!*out)
		return CHAFF_EPATTERN;
	/* JIT is an optimisation: without it (some architectures) the
	 * interpreter gives the same matches. */
	(void)pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);
	return CHAFF_OK;
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
	    l->max_token_len < 2 || l->max_tokens < 16 || l->max_header_bytes < 64) {
		free(t);
		return CHAFF_EINVAL;
	}
	chaff_arena_init(&t->arena);
	int rc = compile(&t->re_received, RE_RECEIVED);
	if (rc == CHAFF_OK)
		rc = compile(&t->re_auth, RE_AUTH);
	if (rc == CHAFF_OK) {
		t->md = pcre2_match_data_create(8, NULL);
		if (!t->md)
			rc = CHAFF_ENOMEM;
	}
	if (rc != CHAFF_OK) {
		chaff_tokenizer_free(t);
		return rc;
	}
	*out = t;
	return CHAFF_OK;
}

void chaff_tokenizer_free(chaff_tokenizer *t)
{
	if (!t)
		return;
	tok_charsets_close(t);
	pcre2_match_data_free(t->md);
	pcre2_code_free(t->re_received);
	pcre2_code_free(t->re_auth);
	chaff_arena_free(&t->arena);
	free(t->toks);
	free(t);
}

void *tok_alloc(struct chaff_tokenizer *t, size_t n)
{
	void *p = chaff_arena_alloc(&t->arena, n);
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

static void push(struct chaff_tokenizer *t, unsigned origin, char *text, size_t len)
{
	struct chaff_token *tk = slot(t);
	if (!tk) {
		t->full = t->oom = true;
		return;
	}
	tk->hash = XXH3_64bits_withSeed(text, len, t->cfg.seed);
	tk->text = text;
	tk->len = (uint32_t)len;
	tk->origin = origin;
	if (t->ntoks >= t->cfg.limits.max_tokens)
		tok_limit(t, CHAFF_LIMIT_TOKENS);
}

void tok_emit(struct chaff_tokenizer *t, unsigned origin, const char *prefix, size_t plen,
              const char *s, size_t n)
{
	if (t->full)
		return;
	char *text = tok_alloc(t, plen + n + 1);
	if (!text)
		return;
	memcpy(text, prefix, plen);
	memcpy(text + plen, s, n);
	text[plen + n] = '\0';
	push(t, origin, text, plen + n);
}

void tok_emit_lower(struct chaff_tokenizer *t, unsigned origin, const char *prefix,
                    size_t plen, const char *s, size_t n)
{
	if (t->full)
		return;
	char *text = tok_alloc(t, plen + n + 1);
	if (!text)
		return;
	memcpy(text, prefix, plen);
	for (size_t i = 0; i < n; i++)
		text[plen + i] = tok_lc(s[i]);
	text[plen + n] = '\0';
	push(t, origin, text, plen + n);
}

static const char *const limit_names[] = {
	"limit:depth", "limit:parts", "limit:part_bytes",
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

int chaff_tokenize(chaff_tokenizer *t, const void *msg, size_t len, struct chaff_tokens *out)
{
	if (!t || !out || (!msg && len))
		return CHAFF_EINVAL;
	chaff_arena_reset(&t->arena);
	t->ntoks = 0;
	t->limits_hit = 0;
	t->parts = 0;
	t->full = t->oom = false;
	t->nprev = 0;
	const char *p = msg ? msg : "";
	if (len > t->cfg.limits.max_message_bytes) {
		len = t->cfg.limits.max_message_bytes;
		tok_limit(t, CHAFF_LIMIT_MESSAGE);
	}
	/* An mbox "From " separator line is not a header. */
	if (len >= 5 && memcmp(p, "From ", 5) == 0) {
		const char *nl = memchr(p, '\n', len);
		size_t skip = nl ? (size_t)(nl - p) + 1 : len;
		p += skip;
		len -= skip;
	}
	tok_entity(t, p, p + len, 0, true);
	out->items = t->toks;
	out->count = t->ntoks;
	out->limits_hit = t->limits_hit;
	return t->oom ? CHAFF_ENOMEM : CHAFF_OK;
}
