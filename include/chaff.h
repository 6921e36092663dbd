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
	CHAFF_ENOMEM = -1,    /* an allocation failed */
	CHAFF_EINVAL = -2,    /* an argument is out of range or NULL */
	CHAFF_EIO = -3,       /* reading or writing a file failed (see errno) */
	CHAFF_ECHARSET = -4,  /* a charset converter could not be opened */
	CHAFF_EPATTERN = -5,  /* a built-in pattern failed to compile */
	CHAFF_EFORMAT = -6,   /* input is not in the expected format */
	CHAFF_ENOTFOUND = -7, /* no such record, parameter or database */
	CHAFF_EVERSION = -8,  /* database made by an incompatible chaff */
	CHAFF_EDB = -9,       /* the database reported an error */
	CHAFF_ENOSPC = -10,   /* the disk is full */
	CHAFF_EACCES = -11,   /* permission denied, or the database is read-only */
	CHAFF_ECORRUPT = -12, /* the database is damaged */
	CHAFF_EEMPTY = -13,   /* nothing trained yet: no spam or no ham */
	CHAFF_EBUSY = -14,    /* the database is open already in this process, or,
	                         for a load, in another one */
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
	uint32_t max_header_bytes;  /* one unfolded header value, 64 or more (16 KiB) */
	uint32_t max_token_len;     /* bytes, 2 to 256; longer words become long: tokens (40) */
	uint32_t max_tokens;        /* tokens per message, 16 or more (20000) */
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
	CHAFF_TOK_PAIRS = 1u << 0,           /* add orthogonal sparse bigrams */
	CHAFF_TOK_VERDICT_HEADERS = 1u << 1, /* read X-Spam-* and X-Chaff-* too */
};

/* Bump when any change alters the tokens of some message. */
#define CHAFF_TOKENIZER_VERSION 5

struct chaff_tokenizer_config {
	struct chaff_limits limits;
	uint64_t seed;        /* XXH3 seed for token hashes */
	uint32_t flags;       /* enum chaff_tokenizer_flag */
	uint32_t pair_window; /* words paired with each word, 1..4 (4) */
	chaff_log_fn log;     /* may be NULL */
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
	uint64_t hash;    /* XXH3-64 of text with the configured seed */
	const char *text; /* UTF-8, NUL-terminated, prefix included */
	uint32_t len;     /* bytes of text, without the NUL */
	uint32_t origin;  /* enum chaff_origin */
};

/*
 * The tokens of one message, in the order found, duplicates included.
 * Everything it points to is owned by the tokenizer and stays valid until
 * the next chaff_tokenize() or chaff_attached_message() call on the same
 * tokenizer, or its free.
 */
struct chaff_tokens {
	const struct chaff_token *items;
	size_t count;
	uint32_t limits_hit; /* enum chaff_limit_bit */
};

/*
 * A tokenizer holds a per-message arena, cached charset converters and
 * compiled patterns. It is not thread-safe: use one per thread.
 */
typedef struct chaff_tokenizer chaff_tokenizer;

/* cfg may be NULL for defaults; CHAFF_EINVAL when a limit is out of the
 * range given above or pair_window is not 1 to 4. On success *out must be
 * freed by the caller with chaff_tokenizer_free(). Every *_free() and
 * chaff_db_close() takes NULL and does nothing. */
CHAFF_API int chaff_tokenizer_new(const struct chaff_tokenizer_config *cfg, chaff_tokenizer **out);
CHAFF_API void chaff_tokenizer_free(chaff_tokenizer *tok);

/*
 * Tokenizes one raw RFC 5322 message (LF or CRLF line ends, an mbox
 * "From " line allowed in front). A malformed message is never an error:
 * what can be read is tokenized. Fails only with CHAFF_ENOMEM or
 * CHAFF_EINVAL. The result is borrowed (see struct chaff_tokens).
 */
CHAFF_API int chaff_tokenize(chaff_tokenizer *tok, const void *msg, size_t len,
                             struct chaff_tokens *out);
/* chaff_tokenize() for a caller that reads only the tokens' text and
 * origin, such as a printer of tokens: every hash is left 0, which saves
 * about a tenth of the work. Never give such tokens to the database. */
CHAFF_API int chaff_tokenize_text(chaff_tokenizer *tok, const void *msg, size_t len,
                                  struct chaff_tokens *out);

/*
 * The first message attached to msg as a message/rfc822 part (how mail
 * clients forward a message "as attachment"), searched through nested
 * multiparts and decoded from its transfer encoding. *out is borrowed from
 * the tokenizer until its next call, so copy it before tokenizing it.
 * CHAFF_ENOTFOUND when msg carries no attached message.
 */
CHAFF_API int chaff_attached_message(chaff_tokenizer *tok, const void *msg, size_t len,
                                     const char **out, size_t *outlen);

/* ------------------------------------------------------------------ */
/* The database: per-token counts, message totals, digests, parameters. */

/* A trained message's identity (see chaff_message_digest()). */
struct chaff_digest {
	uint8_t bytes[16];
};

typedef struct chaff_db chaff_db;

enum chaff_db_flag {
	CHAFF_DB_READONLY = 1u << 0, /* never write; classification only */
	CHAFF_DB_CREATE = 1u << 1,   /* create the directory (mode 0700) if missing */
};

struct chaff_db_options {
	uint32_t flags;     /* enum chaff_db_flag */
	uint32_t tok_flags; /* tokenizer flags for a new database
	                       (CHAFF_TOK_PAIRS); an existing one keeps its own */
	chaff_log_fn log;   /* why an open failed, notices; may be NULL */
	void *log_user;
	uint64_t map_size; /* initial LMDB map in bytes (0: 64 MiB); it grows
	                      by itself when full */
};

/*
 * Opens the database in directory dir (LMDB). A database written by an
 * incompatible schema or tokenizer is refused with CHAFF_EVERSION, and the
 * log callback says what differs and how to rebuild. *out is freed with
 * chaff_db_close(). Any number of processes and threads may use one
 * database; writers take turns (a second one waits). Within a process
 * the threads share one handle: a second open of the same database in
 * the same process is refused with CHAFF_EBUSY (LMDB's rule: closing a
 * second handle would drop the first one's readers from the lock file).
 * A child of fork() opens its own.
 *
 * The callbacks of chaff_db_foreach(), chaff_db_foreach_digest() and
 * chaff_db_dump() run inside a read transaction and must not call the
 * library on the same database: a commit that has to grow the map waits
 * until no transaction of the process is open.
 */
CHAFF_API int chaff_db_open(const char *dir, const struct chaff_db_options *opt, chaff_db **out);
/* An in-memory database with the same records and results, for tests: one
 * thread only (a second writer gets CHAFF_EDB rather than waiting), and
 * CHAFF_DB_READONLY is refused (CHAFF_EINVAL: it starts empty). */
CHAFF_API int chaff_db_open_memory(const struct chaff_db_options *opt, chaff_db **out);
CHAFF_API void chaff_db_close(chaff_db *db);
/* Closes db and, when it holds no training at all and no other process
 * has it open, removes its files: for a database that a run created and
 * then failed to train. Returns 1 when the files were removed, else 0. */
CHAFF_API int chaff_db_close_unmade(chaff_db *db);

/* Scoring parameters, stored in the database. */
struct chaff_params {
	double robs;        /* s: strength of the prior x */
	double robx;        /* x: f(w) of a token never seen */
	double min_dev;     /* tokens with |f(w) - 0.5| below this are ignored */
	double ham_cutoff;  /* score <= this: ham */
	double spam_cutoff; /* score >= this: spam; between: unsure */
	double max_tokens;  /* the strongest this many tokens are combined (0: all) */
};
CHAFF_API void chaff_params_default(struct chaff_params *p);
CHAFF_API int chaff_db_params(chaff_db *db, struct chaff_params *out);
/* True when p holds a valid set of parameters: robs 1e-6 to 100, robx
 * strictly between 0 and 1, min_dev 0 to below 0.5, 0 <= ham_cutoff <=
 * spam_cutoff <= 1, max_tokens a whole number 0 to 1e6. */
CHAFF_API int chaff_params_valid(const struct chaff_params *p);
/* Sets one parameter of p by name: CHAFF_ENOTFOUND for an unknown name. */
CHAFF_API int chaff_params_set(struct chaff_params *p, const char *name, double value);
/* Names: robs, robx, min_dev, ham_cutoff, spam_cutoff, max_tokens.
 * CHAFF_ENOTFOUND for another name, CHAFF_EINVAL for a value out of range
 * or a set that would not be valid: the cutoffs are checked against each
 * other, so raise spam_cutoff before ham_cutoff past its old value. */
CHAFF_API int chaff_db_set_param(chaff_db *db, const char *name, double value);
CHAFF_API int chaff_db_get_param(chaff_db *db, const char *name, double *value);
/* NULL-terminated list of the parameter names. */
CHAFF_API const char *const *chaff_param_names(void);

/* The tokenizer settings the database was trained with (seed, flags):
 * every tokenizer used with it must be made from these. */
CHAFF_API int chaff_db_tokenizer_config(chaff_db *db, struct chaff_tokenizer_config *cfg);

struct chaff_db_stats {
	uint64_t spam_messages, ham_messages; /* trained, net of untraining */
	uint64_t tokens;                      /* distinct tokens stored */
	uint64_t digests;                     /* messages remembered by digest */
	uint64_t bytes_used;                  /* pages in use */
	uint64_t bytes_file;                  /* size of the data file */
	int64_t last_train;                   /* Unix time of the last training, 0 if never */
	uint32_t schema_version, tokenizer_version, tok_flags;
	uint64_t seed;
};
CHAFF_API int chaff_db_stats(chaff_db *db, struct chaff_db_stats *out);

/* One token's record. Counts saturate at UINT32_MAX and never go below 0;
 * day is the day (since 1970) the token was last trained. */
struct chaff_record {
	uint32_t spam, ham;
	uint32_t day;
};

/* Calls fn for every token in hash order inside one read transaction; a
 * non-zero return from fn stops the walk and is returned. */
CHAFF_API int chaff_db_foreach(chaff_db *db,
                               int (*fn)(void *user, uint64_t hash, const struct chaff_record *r),
                               void *user);
/* Calls fn for every remembered message digest and its class, in one read
 * transaction; a non-zero return from fn stops the walk and is returned. */
CHAFF_API int chaff_db_foreach_digest(
        chaff_db *db, int (*fn)(void *user, const struct chaff_digest *d, uint8_t cls), void *user);
/* Drops tokens last trained more than days ago (0: no age limit) and tokens
 * with spam + ham below min_count (0: no count limit). */
CHAFF_API int chaff_db_prune(chaff_db *db, uint32_t days, uint32_t min_count, uint64_t *removed);
/* A consistent, compacted copy into the empty or new directory dir, taken
 * while other processes keep training. */
CHAFF_API int chaff_db_backup(chaff_db *db, const char *dir);

/* Loading a dump into an empty database: the metadata first (seed,
 * tokenizer, totals), then the records, all in one transaction. */
struct chaff_db_image {
	uint64_t seed;
	uint32_t tokenizer_version, tok_flags;
	uint64_t spam_messages, ham_messages;
	int64_t last_train;
	struct chaff_params params;
};
CHAFF_API int chaff_db_image(chaff_db *db, struct chaff_db_image *out);
/* The whole database as one picture, for a dump taken while others
 * train: image once, then token for every token in hash order, then
 * digest for every digest, all inside one read transaction. A non-zero
 * return from a callback stops it and is returned. */
struct chaff_dump_fns {
	int (*image)(void *user, const struct chaff_db_image *img);
	int (*token)(void *user, uint64_t hash, const struct chaff_record *r);
	int (*digest)(void *user, const struct chaff_digest *d, uint8_t cls);
};
CHAFF_API int chaff_db_dump(chaff_db *db, const struct chaff_dump_fns *fns, void *user);
typedef struct chaff_loader chaff_loader;
CHAFF_API int chaff_loader_new(chaff_db *db, const struct chaff_db_image *img, chaff_loader **out);
CHAFF_API int chaff_loader_put(chaff_loader *l, uint64_t hash, const struct chaff_record *r);
/* A trained message's digest and class (CHAFF_SPAM or CHAFF_HAM). */
CHAFF_API int chaff_loader_put_digest(chaff_loader *l, const struct chaff_digest *d, uint8_t cls);
/* Commits everything put; chaff_loader_free() without it leaves the
 * database as it was. The load sets the database's seed and tokenizer
 * flags, so it needs the database to itself: CHAFF_EBUSY while another
 * process has it open; from then on this process holds it alone until
 * chaff_db_close(). Tokenizers and classifiers made from db before the
 * load hash with the old seed: make them anew. */
CHAFF_API int chaff_loader_commit(chaff_loader *l);
CHAFF_API void chaff_loader_free(chaff_loader *l);

/* ------------------------------------------------------------------ */
/* Training. */

enum chaff_class { CHAFF_HAM = 0, CHAFF_SPAM = 1 };

/* (struct chaff_digest is declared above, with the database calls.) */
/* A message's identity for training: a hash of its body and of the headers
 * a re-delivery does not change (From, To, Cc, Subject, Date, Message-ID),
 * so a copy that gained Received or X-Spam headers is the same message. */
CHAFF_API void chaff_message_digest(const void *msg, size_t len, struct chaff_digest *out);
/* True when the header line (line[0..n), its name, perhaps spaces, then
 * ':') is one of the fields chaff filter writes: X-Spam-Flag,
 * X-Spam-Status, X-Spam-Level and X-Chaff-*. The filter removes earlier
 * copies of them; where it does so past the end of the header block (up
 * to the blank line), the digest passes over them too, so a message and
 * its tagged copy are one message. */
CHAFF_API int chaff_tagged_field(const char *line, size_t n);

enum chaff_learned {
	CHAFF_LEARNED_TRAINED,     /* counted as the class asked for */
	CHAFF_LEARNED_MOVED,       /* was trained as the other class: moved */
	CHAFF_LEARNED_ALREADY,     /* already trained as this class: nothing done */
	CHAFF_LEARNED_UNTRAINED,   /* untrained */
	CHAFF_LEARNED_NOT_TRAINED, /* untrain refused: never trained as that class */
};

/*
 * A batch of messages trained or untrained in one write transaction: a
 * batch is atomic, and a crash loses at most the batch in flight.
 */
typedef struct chaff_batch chaff_batch;
CHAFF_API int chaff_batch_new(chaff_db *db, chaff_batch **out);
/* Queues one message's tokens (copied: tk may be reused at once). */
CHAFF_API int chaff_batch_add(chaff_batch *b, const struct chaff_tokens *tk,
                              const struct chaff_digest *digest, enum chaff_class cls, int untrain);
/* The same from the tokens' hashes alone (n of them, copied); a token
 * repeated in a message counts once either way. */
CHAFF_API int chaff_batch_add_hashes(chaff_batch *b, const uint64_t *hashes, size_t n,
                                     const struct chaff_digest *digest, enum chaff_class cls,
                                     int untrain);
/* Messages queued and not yet committed. */
CHAFF_API size_t chaff_batch_size(const chaff_batch *b);
/*
 * A hint, before the first message: about this many bytes of mail will be
 * queued. The batch sizes its tables for that much at once instead of
 * growing them step by step, each step a copy into fresh memory. Only a
 * hint: the tables still grow past it, and a wrong guess costs nothing
 * else. CHAFF_OK, or CHAFF_ENOMEM (the batch is then as it was).
 */
CHAFF_API int chaff_batch_expect(chaff_batch *b, uint64_t bytes);
/*
 * How many threads a commit may use (1, the default: only the caller's).
 * With 2 or more, a commit that writes the tokens anew (a batch that
 * changes as many tokens as the database holds) reads the stored ones on
 * a second thread while the caller's thread decides the messages and
 * sorts the changes. The result is the same either way.
 */
CHAFF_API void chaff_batch_threads(chaff_batch *b, unsigned threads);
/*
 * Applies the batch in one transaction. outcome, when not NULL, receives
 * one enum chaff_learned per queued message, in order. On failure nothing
 * of the batch is applied. Either way the batch is empty afterwards.
 */
CHAFF_API int chaff_batch_commit(chaff_batch *b, enum chaff_learned *outcome);
CHAFF_API void chaff_batch_free(chaff_batch *b);

/* ------------------------------------------------------------------ */
/* Scoring. */

enum chaff_verdict { CHAFF_VERDICT_SPAM = 0, CHAFF_VERDICT_HAM = 1, CHAFF_VERDICT_UNSURE = 2 };

/* One token that moved the score, for explanations. */
struct chaff_clue {
	const char *text;   /* NUL-terminated, but may hold a NUL of its own */
	uint32_t len;       /* bytes of text, without the final NUL */
	uint32_t spam, ham; /* its counts */
	double f;           /* Robinson's f(w) */
};

struct chaff_score {
	double score;     /* spamminess in [0, 1] */
	double logit;     /* ln(score / (1 - score)) computed without rounding:
	                     it still orders messages whose scores round to
	                     exactly 0 or 1 */
	double spam_prob; /* 1 - S, how strongly the clues say spam, and */
	double ham_prob;  /* 1 - H, how strongly they say ham: score is
	                     (1 + spam_prob - ham_prob) / 2 (engine/score.c
	                     names S and H) */
	enum chaff_verdict verdict;
	double spam_cutoff;             /* the cutoffs the verdict came from */
	double ham_cutoff;
	uint32_t tokens;                /* distinct tokens in the message */
	uint32_t used;                  /* tokens strong enough to count */
	const struct chaff_clue *clues; /* strongest first */
	size_t nclues;
	uint32_t limits_hit; /* from the tokenizer */
};

/*
 * A classifier keeps a tokenizer and scratch space for one thread. Each
 * call reads the database in one short read transaction, so training done
 * meanwhile by another process is seen by the next call.
 */
typedef struct chaff_classifier chaff_classifier;
CHAFF_API int chaff_classifier_new(chaff_db *db, chaff_classifier **out);
CHAFF_API void chaff_classifier_free(chaff_classifier *c);
/* Scores with p instead of the database's parameters (NULL: back to the
 * database's), for trying settings before storing them. CHAFF_EINVAL when
 * p is out of range. */
CHAFF_API int chaff_classifier_set_params(chaff_classifier *c, const struct chaff_params *p);
/*
 * A copy of the database's counts in memory, for scoring many messages: a
 * token is then one probe of a hash table instead of a walk down the
 * B-tree. It is read in one read transaction, so scores against it are
 * those of the database at that moment, and takes 32 to 64 bytes per
 * token (16-byte slots, a power of two at least twice the tokens).
 * CHAFF_ENOSPC (no room under the cap, not the disk) when the database
 * holds more than max_tokens tokens.
 */
typedef struct chaff_snapshot chaff_snapshot;
CHAFF_API int chaff_snapshot_new(chaff_db *db, size_t max_tokens, chaff_snapshot **out);
CHAFF_API void chaff_snapshot_free(chaff_snapshot *s);
/* The database's generation, which changes whenever a training commits
 * (in any process), and the one a snapshot was read at: a long-running
 * scorer takes a new snapshot when the two differ. */
CHAFF_API uint64_t chaff_db_generation(chaff_db *db);
CHAFF_API uint64_t chaff_snapshot_generation(const chaff_snapshot *s);
/* Scores against s from now on (NULL: the database again). s is only
 * read, by any number of classifiers, and must outlive their use of it. */
CHAFF_API void chaff_classifier_use_snapshot(chaff_classifier *c, const chaff_snapshot *s);
/* The classifier's tokenizer, made from the database's settings; owned by
 * c (not to be freed). */
CHAFF_API chaff_tokenizer *chaff_classifier_tokenizer(chaff_classifier *c);
/*
 * Scores one raw message. nclues asks for up to that many clues (0: none).
 * The result is borrowed until the next call on c or on its tokenizer
 * (the clues' text is the tokens'). CHAFF_EEMPTY when the database has no
 * spam or no ham yet.
 */
CHAFF_API int chaff_classify(chaff_classifier *c, const void *msg, size_t len, size_t nclues,
                             struct chaff_score *out);
/* The same for tokens already made by chaff_classifier_tokenizer(c) (or
 * by a tokenizer made from the database's settings): the clues' text is
 * then borrowed from tk, as long as its tokens are valid. */
CHAFF_API int chaff_classify_tokens(chaff_classifier *c, const struct chaff_tokens *tk,
                                    size_t nclues, struct chaff_score *out);

#ifdef __cplusplus
}
#endif
#endif
