/*
 * chaff: a Naive Bayes spam classifier engine.
 *
 * This is the one public header. Every function that can fail returns an
 * int: CHAFF_OK (0) on success or a negative enum chaff_rc value; results
 * come back through pointer arguments. The library never prints and never
 * exits; it reports through the log callback a caller may set.
 */
#ifndef CHAFF_H
#define CHAFF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CHAFF_API __attribute__((visibility("default")))
#else
#define CHAFF_API
#endif

/* Result codes. Values are part of the ABI and are never renumbered. */
enum chaff_rc {
	CHAFF_OK = 0,
	CHAFF_ENOMEM = -1,   /* an allocation failed */
	CHAFF_EINVAL = -2,   /* an argument is out of range or NULL */
	CHAFF_EIO = -3,      /* reading or writing a file failed (see errno) */
	CHAFF_ECHARSET = -4, /* a charset converter could not be opened */
	CHAFF_EPATTERN = -5, /* a built-in pattern failed to compile */
	CHAFF_EFORMAT = -6,  /* input is not in the expected format */
};

/* A static, never-NULL description of rc. */
CHAFF_API const char *chaff_strerror(int rc);

enum chaff_log_level { CHAFF_LOG_ERROR, CHAFF_LOG_WARN, CHAFF_LOG_INFO };
typedef void (*chaff_log_fn)(void *user, enum chaff_log_level level, const char *msg);

/*
 * Caps that keep a hostile message from costing more than a normal one.
 * chaff_limits_default() fills the documented defaults (docs/tokens.md).
 */
struct chaff_limits {
	uint32_t max_mime_depth;    /* nested multipart / message levels (20) */
	uint32_t max_parts;         /* MIME parts per message (1000) */
	uint32_t max_part_bytes;    /* decoded bytes tokenized per part (1 MiB) */
	uint32_t max_header_bytes;  /* one unfolded header value (16 KiB) */
	uint32_t max_token_len;     /* bytes; longer words become long: tokens (40) */
	uint32_t max_tokens;        /* tokens per message (20000) */
	uint32_t max_message_bytes; /* bytes of one message scanned (32 MiB) */
};
CHAFF_API void chaff_limits_default(struct chaff_limits *limits);

/* Which limits a message hit: bits of chaff_tokens.limits_hit. */
enum chaff_limit_bit {
	CHAFF_LIMIT_DEPTH = 1u << 0,
	CHAFF_LIMIT_PARTS = 1u << 1,
	CHAFF_LIMIT_PART_BYTES = 1u << 2,
	CHAFF_LIMIT_HEADER = 1u << 3,
	CHAFF_LIMIT_TOKENS = 1u << 4,
	CHAFF_LIMIT_MESSAGE = 1u << 5,
};

/* Tokenizer options: bits of chaff_tokenizer_config.flags. */
enum chaff_tokenizer_flag {
	CHAFF_TOK_PAIRS = 1u << 0,         /* add orthogonal sparse bigrams */
	CHAFF_TOK_VERDICT_HEADERS = 1u << 1, /* read X-Spam-* and X-Chaff-* too */
};

/* Bump when any change alters the tokens of some message. */
#define CHAFF_TOKENIZER_VERSION 1

struct chaff_tokenizer_config {
	struct chaff_limits limits;
	uint64_t seed;          /* XXH3 seed for token hashes */
	uint32_t flags;         /* enum chaff_tokenizer_flag */
	uint32_t pair_window;   /* words paired with each word, 1..4 (4) */
	chaff_log_fn log;       /* may be NULL */
	void *log_user;
};
CHAFF_API void chaff_tokenizer_config_default(struct chaff_tokenizer_config *cfg);

/* Where a token came from, for statistics and explanations. */
enum chaff_origin {
	CHAFF_ORIGIN_BODY = 0,
	CHAFF_ORIGIN_HEADER = 1,
	CHAFF_ORIGIN_URL = 2,
	CHAFF_ORIGIN_ADDRESS = 3,
	CHAFF_ORIGIN_MIME = 4,
	CHAFF_ORIGIN_PAIR = 5,
	CHAFF_ORIGIN_LIMIT = 6,
};

struct chaff_token {
	uint64_t hash;     /* XXH3-64 of text with the configured seed */
	const char *text;  /* UTF-8, NUL-terminated, prefix included */
	uint32_t len;      /* bytes of text, without the NUL */
	uint32_t origin;   /* enum chaff_origin */
};

/*
 * The tokens of one message, in the order found, duplicates included.
 * Everything it points to is owned by the tokenizer and stays valid until
 * the next chaff_tokenize() call on the same tokenizer or its free.
 */
struct chaff_tokens {
	const struct chaff_token *items;
	size_t count;
	uint32_t limits_hit;   /* enum chaff_limit_bit */
};

/*
 * A tokenizer holds a per-message arena, cached charset converters and
 * compiled patterns. It is not thread-safe: use one per thread.
 */
typedef struct chaff_tokenizer chaff_tokenizer;

/* cfg may be NULL for defaults. On success *out must be freed by the caller
 * with chaff_tokenizer_free(). */
CHAFF_API int chaff_tokenizer_new(const struct chaff_tokenizer_config *cfg,
                                  chaff_tokenizer **out);
CHAFF_API void chaff_tokenizer_free(chaff_tokenizer *tok);

/*
 * Tokenizes one raw RFC 5322 message (LF or CRLF line ends, an mbox
 * "From " line allowed in front). A malformed message is never an error:
 * what can be read is tokenized. Fails only with CHAFF_ENOMEM or
 * CHAFF_EINVAL. The result is borrowed (see struct chaff_tokens).
 */
CHAFF_API int chaff_tokenize(chaff_tokenizer *tok, const void *msg, size_t len,
                             struct chaff_tokens *out);

#ifdef __cplusplus
}
#endif
#endif
