/*
 * Golden messages: every tests/messages/NAME.eml is tokenized with LF and
 * with CRLF line ends. Both must give the same token set; NAME.expect lines
 * ("+token" present, "-token" absent) must hold; and when NAME.tokens
 * exists, the sorted set of distinct tokens must equal it exactly.
 * CHAFF_GOLDEN_UPDATE=1 rewrites the .tokens files (review the diff).
 */
#include "test_util.h"

#include <dirent.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Distinct token texts of a message, sorted, as one "\n"-joined string. */
static char *token_set(chaff_tokenizer *tok, const char *msg, size_t len)
{
	struct chaff_tokens tk;
	assert_int_equal(chaff_tokenize(tok, msg, len, &tk), CHAFF_OK);
	const char **v = malloc((tk.count + 1) * sizeof(*v));
	assert_non_null(v);
	size_t total = 1;
	for (size_t i = 0; i < tk.count; i++) {
		v[i] = tk.items[i].text;
		total += tk.items[i].len + 1;
	}
	qsort(v, tk.count, sizeof(*v), cmp_str);
	char *out = malloc(total);
	assert_non_null(out);
	size_t o = 0;
	for (size_t i = 0; i < tk.count; i++) {
		if (i && strcmp(v[i], v[i - 1]) == 0)
			continue;
		size_t l = strlen(v[i]);
		memcpy(out + o, v[i], l);
		o += l;
		out[o++] = '\n';
	}
	out[o] = '\0';
	free(v);
	return out;
}

static bool in_set(const char *set, const char *tok)
{
	size_t l = strlen(tok);
	for (const char *p = set; *p;) {
		const char *nl = strchr(p, '\n');
		if ((size_t)(nl - p) == l && memcmp(p, tok, l) == 0)
			return true;
		p = nl + 1;
	}
	return false;
}

/* Converts every bare LF to CRLF, or every CRLF to LF. */
static char *convert(const char *s, size_t n, bool to_crlf, size_t *out_len)
{
	char *out = malloc(n * 2 + 1);
	assert_non_null(out);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (to_crlf && s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			out[o++] = '\r';
		if (!to_crlf && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			continue;
		out[o++] = s[i];
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

static int checked, expectations;

static void check_message(chaff_tokenizer *tok, const char *dir, const char *name)
{
	char path[2048];
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/%s.eml", dir, name);
	char *msg = test_read_file(path, &len);
	assert_non_null(msg);
	bool crlf = strstr(msg, "\r\n") != NULL;
	size_t olen;
	char *other = convert(msg, len, !crlf, &olen);
	char *set = token_set(tok, msg, len);
	char *set2 = token_set(tok, other, olen);
	if (strcmp(set, set2) != 0)
		fail_msg("%s: tokens differ between LF and CRLF line ends", name);

	snprintf(path, sizeof(path), "%s/%s.expect", dir, name);
	size_t elen;
	char *exp = test_read_file(path, &elen);
	if (!exp)
		fail_msg("%s: no .expect file", name);
	for (char *line = exp, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		size_t l = strlen(line);
		while (l && (line[l - 1] == '\r' || line[l - 1] == ' '))
			line[--l] = '\0';
		if (l < 2 || line[0] == '#')
			continue;
		if (strstr(line, " #"))
			fail_msg("%s.expect: one token per line; comments go on lines of their own: %s",
			         name, line);
		bool want = line[0] == '+';
		if (line[0] != '+' && line[0] != '-')
			fail_msg("%s.expect: line must start with + or -: %s", name, line);
		if (in_set(set, line + 1) != want)
			fail_msg("%s: token '%s' should %s", name, line + 1,
			         want ? "be emitted" : "not be emitted");
		expectations++;
	}
	free(exp);

	snprintf(path, sizeof(path), "%s/%s.tokens", dir, name);
	if (getenv("CHAFF_GOLDEN_UPDATE")) {
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		fputs(set, f);
		fclose(f);
	} else {
		char *golden = test_read_file(path, &elen);
		if (!golden)
			fail_msg("%s: no .tokens file (CHAFF_GOLDEN_UPDATE=1 writes it)", name);
		if (strcmp(golden, set) != 0)
			fail_msg("%s: tokens differ from %s.tokens", name, name);
		free(golden);
	}
	free(set);
	free(set2);
	free(other);
	free(msg);
	checked++;
}

static void test_golden_messages(void **state)
{
	(void)state;
	char dir[1024];
	test_source_path(dir, sizeof(dir), "tests/messages");
	DIR *d = opendir(dir);
	assert_non_null(d);
	char *names[512];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 512) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0)
			names[n++] = strndup(e->d_name, l - 4);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	chaff_tokenizer *tok;
	assert_int_equal(chaff_tokenizer_new(NULL, &tok), CHAFF_OK);
	for (size_t i = 0; i < n; i++) {
		check_message(tok, dir, names[i]);
		free(names[i]);
	}
	chaff_tokenizer_free(tok);
	print_message("%d golden messages, %d expectations\n", checked, expectations);
	assert_true(checked >= 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
