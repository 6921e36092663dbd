/*
 * chaff tokens: what the tokenizer makes of messages. Without options it
 * prints one token per line, like bogolexer -p; --stats prints a summary
 * of a whole corpus instead.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "chaff.h"
#include "cli.h"
#include "common/smallcopy.h"
#include "input.h"
#include "tokmap.h"

static const char usage_text[] =
        "usage: chaff tokens [OPTIONS] [FILE|DIR...]\n"
        "Prints the tokens of each message (stdin when no file is named).\n"
        "Files may be single messages, mbox files, Maildir or other folders,\n"
        "gzip-compressed or not.\n\n"
        "  --pairs                 add word pairs (orthogonal sparse bigrams)\n"
        "  --keep-verdict-headers  read X-Spam-* and X-Chaff-* headers too\n"
        "  --hash                  print each token's 64-bit hash before it\n"
        "  --stats                 print corpus statistics instead of tokens\n"
        "  --top N                 with --stats: the N most common tokens (20)\n"
        "  --json                  with --stats: JSON output\n"
        "  -q, --quiet             tokenize and hash, print nothing (timing)\n";

struct opts {
	bool hash, stats, json, quiet, top_given;
	unsigned top;
};

/* Output goes through one large buffer, written with write(2): printing
 * is most of the work of this command, and stdio per token would
 * dominate it (stdio also cut the corpus's 21 MB into 700 writes). */
struct out {
	char buf[1 << 18];
	size_t n;
	bool failed;
};

static void out_write(struct out *o, const char *s, size_t n)
{
	while (n && !o->failed) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			o->failed = true;
			break;
		}
		s += w;
		n -= (size_t)w;
	}
}

static void out_flush(struct out *o)
{
	out_write(o, o->buf, o->n);
	o->n = 0;
}

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->n + n > sizeof(o->buf)) {
		out_flush(o);
		if (n > sizeof(o->buf)) {
			out_write(o, s, n);
			return;
		}
	}
	memcpy(o->buf + o->n, s, n);
	o->n += n;
}

/* One token and its line end: the loop that prints two million tokens. */
static inline void out_line(struct out *o, const char *s, size_t n)
{
	if (o->n + n + 1 > sizeof(o->buf)) {
		out_put(o, s, n);
		out_put(o, "\n", 1);
		return;
	}
	chaff_copy_small(o->buf + o->n, s, n);
	o->buf[o->n + n] = '\n';
	o->n += n + 1;
}

/* Copies s[0..n) to d with its NULs turned into line ends, in one pass;
 * returns how many NULs there were. */
static size_t copy_lines(char *d, const char *s, size_t n)
{
	size_t count = 0, i = 0;
#ifdef __SSE2__
	/* NULs are counted by summing the compare's low bits (psadbw): the
	 * baseline x86-64 has no popcount instruction, and libgcc's was 2% of
	 * printing the corpus */
	const __m128i zero = _mm_setzero_si128(), nl = _mm_set1_epi8('\n');
	const __m128i one = _mm_set1_epi8(1);
	__m128i sums = zero;
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i z = _mm_cmpeq_epi8(v, zero);
		sums = _mm_add_epi64(sums, _mm_sad_epu8(_mm_and_si128(z, one), zero));
		_mm_storeu_si128((__m128i *)(void *)(d + i),
		                 _mm_or_si128(_mm_andnot_si128(z, v), _mm_and_si128(z, nl)));
	}
	/* each half holds at most n / 2, and n is below 4 GB */
	count = (size_t)(uint32_t)_mm_cvtsi128_si32(sums) +
	        (size_t)(uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
#endif
	for (; i < n; i++) {
		d[i] = s[i] ? s[i] : '\n';
		count += !s[i];
	}
	return count;
}

/*
 * A message's tokens, a line each. The tokenizer writes each token's text
 * with its NUL right after the one before, so most of a message's tokens
 * lie in a few runs of memory: each run is copied whole and its NULs
 * become line ends, instead of a copy per token. A run whose NULs do not
 * number its tokens (a token holding a NUL of its own, which the
 * tokenizer no longer makes) is printed token by token.
 */
static void out_tokens(struct out *o, const struct chaff_token *tk, size_t count)
{
	size_t i = 0;
	while (i < count) {
		const char *start = tk[i].text, *end = start + tk[i].len + 1;
		size_t j = i + 1;
		while (j < count && tk[j].text == end && (size_t)(end - start) < sizeof(o->buf) / 2)
			end += tk[j++].len + 1;
		size_t n = (size_t)(end - start);
		if (o->n + n > sizeof(o->buf))
			out_flush(o);
		if (n <= sizeof(o->buf)) {
			if (copy_lines(o->buf + o->n, start, n) == j - i) {
				o->n += n;
				i = j;
				continue;
			}
		}
		for (; i < j; i++)
			out_line(o, tk[i].text, tk[i].len);
	}
}

struct stats {
	struct tokmap map; /* messages each distinct token occurs in */
	const struct chaff_token **order;
	size_t ocap;
	size_t messages, tokens, limited;
};

static int cmp_token_hash(const void *a, const void *b)
{
	uint64_t x = (*(const struct chaff_token *const *)a)->hash;
	uint64_t y = (*(const struct chaff_token *const *)b)->hash;
	return x < y ? -1 : x > y;
}

/* Counts each distinct token of one message once. */
static int count_message(struct stats *st, const struct chaff_tokens *tk)
{
	if (tk->count > st->ocap) {
		const struct chaff_token **o = realloc(st->order, tk->count * sizeof(*o));
		if (!o)
			return -1;
		st->order = o;
		st->ocap = tk->count;
	}
	for (size_t i = 0; i < tk->count; i++)
		st->order[i] = &tk->items[i];
	qsort(st->order, tk->count, sizeof(*st->order), cmp_token_hash);
	st->messages++;
	st->tokens += tk->count;
	if (tk->limits_hit)
		st->limited++;
	for (size_t i = 0; i < tk->count; i++) {
		if (i && st->order[i]->hash == st->order[i - 1]->hash)
			continue;
		if (tokmap_add(&st->map, st->order[i]->hash, st->order[i]->text, 1) < 0)
			return -1;
	}
	return 0;
}

static void print_stats(struct stats *st, const struct opts *o, size_t bytes, double secs)
{
	struct tokmap_entry *top = calloc(o->top ? o->top : 1, sizeof(*top));
	size_t ntop = top ? tokmap_top(&st->map, top, o->top) : 0;
	double mb = (double)bytes / 1e6;
	double per = st->messages ? (double)st->tokens / (double)st->messages : 0;
	if (o->json) {
		printf("{\"messages\":%zu,\"bytes\":%zu,\"tokens\":%zu,\"distinct\":%zu,"
		       "\"tokens_per_message\":%.1f,\"limited\":%zu,\"seconds\":%.3f,\"top\":[",
		       st->messages, bytes, st->tokens, st->map.used, per, st->limited, secs);
		for (size_t i = 0; i < ntop; i++) {
			printf("%s{\"token\":", i ? "," : "");
			cli_json_str(stdout, top[i].text);
			printf(",\"messages\":%llu}", (unsigned long long)top[i].count);
		}
		printf("]}\n");
	} else {
		printf("messages          %zu\n", st->messages);
		printf("bytes             %zu (%.1f MB)\n", bytes, mb);
		printf("tokens            %zu (%.1f per message)\n", st->tokens, per);
		printf("distinct tokens   %zu\n", st->map.used);
		printf("hit a limit       %zu messages\n", st->limited);
		printf("time              %.2f s (%.0f messages/s, %.1f MB/s)\n", secs,
		       secs > 0 ? (double)st->messages / secs : 0, secs > 0 ? mb / secs : 0);
		if (ntop)
			printf("\nmost common tokens (messages containing them):\n");
		for (size_t i = 0; i < ntop; i++)
			printf("%8llu  %s\n", (unsigned long long)top[i].count, top[i].text);
	}
	free(top);
}

static int parse(int argc, char **argv, struct opts *o, struct chaff_tokenizer_config *cfg)
{
	static const struct option longopts[] = {
		{ "pairs", no_argument, NULL, 'p' },
		{ "keep-verdict-headers", no_argument, NULL, 'k' },
		{ "hash", no_argument, NULL, 'H' },
		{ "stats", no_argument, NULL, 's' },
		{ "top", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': cfg->flags |= CHAFF_TOK_PAIRS; break;
		case 'k': cfg->flags |= CHAFF_TOK_VERDICT_HEADERS; break;
		case 'H': o->hash = true; break;
		case 's': o->stats = true; break;
		case 'j': o->json = true; break;
		case 'q': o->quiet = true; break;
		case 't': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || end == optarg || v > 100000) {
				cli_error("--top wants a number from 0 to 100000, not '%s'", optarg);
				return -1;
			}
			o->top = (unsigned)v;
			o->top_given = true;
			break;
		}
		case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
		default: fputs(usage_text, stderr); return -1;
		}
	}
	/* options that would be silently ignored are refused */
	const char *clash = o->stats && o->quiet  ? "--stats and -q"
	                    : o->stats && o->hash ? "--stats and --hash"
	                    : o->quiet && o->hash ? "-q and --hash"
	                                          : NULL;
	if (clash) {
		cli_error("%s do not go together", clash);
		return -1;
	}
	if (!o->stats && (o->json || o->top_given)) {
		cli_error("%s only goes with --stats", o->json ? "--json" : "--top");
		return -1;
	}
	return 0;
}

int cmd_tokens(int argc, char **argv)
{
	struct opts o = { .top = 20 };
	struct chaff_tokenizer_config cfg;
	chaff_tokenizer_config_default(&cfg);
	if (parse(argc, argv, &o, &cfg) < 0)
		return EXIT_USAGE;
	chaff_tokenizer *tok;
	int rc = chaff_tokenizer_new(&cfg, &tok);
	if (rc != CHAFF_OK) {
		cli_error("cannot create the tokenizer: %s", chaff_strerror(rc));
		return EXIT_FAIL;
	}
	char err[512];
	struct input *in;
	if (input_open(&in, argv + optind, (size_t)(argc - optind), err, sizeof(err)) < 0) {
		cli_error("%s", err);
		chaff_tokenizer_free(tok);
		return EXIT_FAIL;
	}
	/* many messages named (an index, a folder, an mbox): a bulk run from
	 * the start; else after some messages */
	if (input_is_bulk(in))
		cli_bulk_heap();
	size_t nread = 0;
	static struct out out;
	struct stats st = { 0 };
	tokmap_init(&st.map);
	const bool print_text = !o.stats && !o.quiet && !o.hash;
	int status = EXIT_OK;
	double t0 = cli_now();
	struct input_msg m;
	int r;
	while ((r = input_next(in, &m, err, sizeof(err))) != 0) {
		if (r < 0) {
			cli_error("%s", err);
			status = EXIT_FAIL;
			continue;
		}
		if (++nread == CLI_BULK_MESSAGES)
			cli_bulk_heap();
		struct chaff_tokens tk;
		/* printed text needs no hashes; -q times the tokenizing that
		 * training and scoring do, hashes included */
		rc = print_text ? chaff_tokenize_text(tok, m.data, m.len, &tk)
		                : chaff_tokenize(tok, m.data, m.len, &tk);
		if (rc != CHAFF_OK) {
			cli_warn("%s: %s; tokens may be incomplete", m.path, chaff_strerror(rc));
			status = EXIT_FAIL;
		}
		if (o.stats) {
			if (count_message(&st, &tk) < 0) {
				cli_error("out of memory");
				status = EXIT_FAIL;
				break;
			}
			continue;
		}
		if (o.quiet)
			continue;
		if (!o.hash) {
			out_tokens(&out, tk.items, tk.count);
			continue;
		}
		for (size_t i = 0; i < tk.count; i++) {
			char h[24];
			int k = snprintf(h, sizeof(h), "%016llx ",
			                 (unsigned long long)tk.items[i].hash);
			out_put(&out, h, (size_t)k);
			out_line(&out, tk.items[i].text, tk.items[i].len);
		}
	}
	out_flush(&out);
	if (o.stats)
		print_stats(&st, &o, input_bytes(in), cli_now() - t0);
	if (out.failed || fflush(stdout) != 0) {
		cli_error("writing output failed");
		status = EXIT_FAIL;
	}
	tokmap_free(&st.map);
	free(st.order);
	input_close(in);
	chaff_tokenizer_free(tok);
	return status;
}
