/* Helpers shared by the unit tests. */
#ifndef CHAFF_TEST_UTIL_H
#define CHAFF_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chaff.h"

/* A test file's tokenizer with the default configuration, `tok`, made
 * and freed by the group's setup and teardown. */
#define TEST_DEFAULT_TOKENIZER                                                 \
	static chaff_tokenizer *tok;                                           \
	static int setup(void **state)                                         \
	{                                                                      \
		(void)state;                                                   \
		return chaff_tokenizer_new(NULL, &tok);                        \
	}                                                                      \
	static int teardown(void **state)                                      \
	{                                                                      \
		(void)state;                                                   \
		chaff_tokenizer_free(tok);                                     \
		return 0;                                                      \
	}

/* Reads a whole file; NULL when it cannot be read. Caller frees. */
static inline char *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	*len = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[n < cap ? n : cap - 1] = '\0';
	*len = n;
	return buf;
}

/* A path below the source tree (CHAFF_SOURCE_DIR, set by ctest). */
static inline const char *test_source_path(char *buf, size_t len, const char *rel)
{
	const char *root = getenv("CHAFF_SOURCE_DIR");
	snprintf(buf, len, "%s/%s", root ? root : ".", rel);
	return buf;
}

static inline size_t test_count(const struct chaff_tokens *tk, const char *text)
{
	size_t n = 0;
	for (size_t i = 0; i < tk->count; i++)
		if (strcmp(tk->items[i].text, text) == 0)
			n++;
	return n;
}

/* Tokenizes a NUL-terminated message with a shared default tokenizer. */
static inline struct chaff_tokens test_tokenize(chaff_tokenizer *tok, const char *msg)
{
	struct chaff_tokens tk;
	assert_int_equal(chaff_tokenize(tok, msg, strlen(msg), &tk), CHAFF_OK);
	return tk;
}

#define assert_token(tk, text)                                                     \
	do {                                                                       \
		if (test_count(&(tk), (text)) == 0)                                \
			fail_msg("missing token '%s'", (text));                    \
	} while (0)
#define assert_no_token(tk, text)                                                  \
	do {                                                                       \
		if (test_count(&(tk), (text)) != 0)                                \
			fail_msg("unexpected token '%s'", (text));                 \
	} while (0)

#endif
