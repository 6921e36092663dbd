/*
 * The input reader (cli/input.c) and a file that another program cuts
 * short while it is being read: an mbox rewritten by a mail client, say.
 * Its last message would be taken half, so the file is an error, for a
 * small file read whole as for a large one read in steps.
 *
 * read() is wrapped at link time (-Wl,--wrap=read): when armed, the first
 * read cuts the file to a third of its size before reading, after the
 * reader has taken the file's size.
 */
#include "test_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/input.h"

#include "cli/cli.h"

/* The reader's warnings (cli/main.c is not linked in). */
void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

ssize_t __real_read(int fd, void *buf, size_t n);

static const char *cut_path; /* the file to cut at the next read, or NULL */
static off_t cut_to;

ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	if (cut_path) {
		if (truncate(cut_path, cut_to) != 0)
			fail_msg("truncate %s failed", cut_path);
		cut_path = NULL;
	}
	return __real_read(fd, buf, n);
}

/* An mbox of about size bytes in a new temporary file. */
static void write_mbox(char *path, size_t size)
{
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	size_t written = 0;
	for (int i = 0; written < size; i++) {
		int k = fprintf(f,
		                "From sender@example.org Thu Jan  1 00:00:00 2026\n"
		                "Subject: message %d\n\n"
		                "Some words of the body of message %d, and a few more.\n\n",
		                i, i);
		assert_true(k > 0);
		written += (size_t)k;
	}
	assert_int_equal(fclose(f), 0);
}

/* Reads path with the file cut at the first read: true when the reader
 * gave an error naming the cut, after no half message. */
static bool cut_is_an_error(const char *path, off_t size)
{
	char err[512] = "";
	struct input *in;
	char *paths[] = { (char *)path };
	assert_int_equal(input_open(&in, paths, 1, err, sizeof(err)), 0);
	cut_path = path;
	cut_to = size / 3;
	struct input_msg m;
	int r;
	bool failed = false;
	while ((r = input_next(in, &m, err, sizeof(err))) != 0) {
		if (r < 0) {
			failed = strstr(err, "cut short") != NULL;
			break;
		}
		/* every message taken is whole: its body line is there */
		assert_non_null(memmem(m.data, m.len, "a few more.", 11));
	}
	cut_path = NULL;
	input_close(in);
	return failed;
}

static void test_small_file_cut_short(void **state)
{
	(void)state;
	char path[] = "/tmp/chaff-input-XXXXXX";
	write_mbox(path, 4000); /* read whole, at once */
	bool failed = cut_is_an_error(path, 4000);
	unlink(path);
	assert_true(failed);
}

static void test_large_file_cut_short(void **state)
{
	(void)state;
	char path[] = "/tmp/chaff-input-XXXXXX";
	write_mbox(path, 3 << 20); /* read in steps */
	bool failed = cut_is_an_error(path, 3 << 20);
	unlink(path);
	assert_true(failed);
}

static void test_whole_file_reads(void **state)
{
	(void)state;
	char path[] = "/tmp/chaff-input-XXXXXX";
	write_mbox(path, 4000);
	char err[512] = "";
	struct input *in;
	char *paths[] = { path };
	assert_int_equal(input_open(&in, paths, 1, err, sizeof(err)), 0);
	struct input_msg m;
	int r, n = 0;
	while ((r = input_next(in, &m, err, sizeof(err))) > 0)
		n++;
	input_close(in);
	unlink(path);
	assert_int_equal(r, 0);
	assert_true(n > 10);
}

/* An mbox's quoted "From " lines come back unquoted: one '>' less for
 * each (mboxrd), wherever the message lies: in the read buffer (a file
 * named, unquoted in place; the last message of a large mbox, after the
 * buffer has been stepped through) or read ahead (a file in a folder,
 * unquoted into a copy). */
static const char quoted_box[] =
        "From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\n>From here\n>>From there\n"
        "> From not quoted\nx>From not at the start\n\n"
        "From c@d Mon Jan  1 00:00:00 2024\nSubject: two\n\nbody\n";

/* Reads path, skipping skip messages, and checks the quoted box's two. */
static void read_quoted_box(const char *path, int skip)
{
	char err[512] = "";
	struct input *in;
	char *paths[] = {(char *)path};
	assert_int_equal(input_open(&in, paths, 1, err, sizeof(err)), 0);
	struct input_msg m;
	for (int i = 0; i < skip; i++)
		assert_int_equal(input_next(in, &m, err, sizeof(err)), 1);
	assert_int_equal(input_next(in, &m, err, sizeof(err)), 1);
	static const char one[] = "Subject: one\n\nFrom here\n>From there\n> From not quoted\n"
	                          "x>From not at the start\n";
	/* (the envelope line comes with it: the tokenizer and the digest
	 * pass over it) */
	const char *nl = memchr(m.data, '\n', m.len);
	assert_non_null(nl);
	assert_int_equal(m.len - (size_t)(nl + 1 - m.data), sizeof(one)); /* one and a blank line */
	assert_memory_equal(nl + 1, one, sizeof(one) - 1);
	assert_int_equal(input_next(in, &m, err, sizeof(err)), 1);
	assert_non_null(memmem(m.data, m.len, "Subject: two\n\nbody\n", 19));
	assert_int_equal(input_next(in, &m, err, sizeof(err)), 0);
	input_close(in);
}

static void test_mbox_from_lines_unquoted(void **state)
{
	(void)state;
	char dir[] = "/tmp/chaff-input-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[600], big[600];
	snprintf(path, sizeof(path), "%s/box", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(quoted_box, f);
	fclose(f);
	read_quoted_box(path, 0); /* the file named */
	read_quoted_box(dir, 0);  /* the file found in its folder */
	/* after 3 MB of other messages, read in steps */
	snprintf(big, sizeof(big), "%s.big", dir);
	f = fopen(big, "w");
	assert_non_null(f);
	int n = 0;
	for (; n * 1000 < 3 << 20; n++) {
		fprintf(f, "From x@y Mon Jan  1 00:00:00 2024\nSubject: filler %d\n\n", n);
		for (int k = 0; k < 19; k++)
			fputs(">From a quoted line of the filler, and some more words to fill it\n",
			      f);
		fputs("\n", f);
	}
	fputs(quoted_box, f);
	fclose(f);
	read_quoted_box(big, n);
	unlink(big);
	unlink(path);
	rmdir(dir);
}

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* What cannot be read, found while listing the input (a line of an index
 * that names no file, a symbolic link in a folder that points nowhere),
 * is an error in its place: the entries around it are still read, and
 * input_check reports it before anything is. */
static void test_listing_errors_in_place(void **state)
{
	(void)state;
	char dir[] = "/tmp/chaff-input-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char p[4][512];
	snprintf(p[0], sizeof(p[0]), "%s/a", dir);
	put_file(p[0], "Subject: a\n\nbody\n");
	snprintf(p[1], sizeof(p[1]), "%s/index", dir);
	put_file(p[1], "spam a\nnot an index line\nham a\n");
	snprintf(p[2], sizeof(p[2]), "%s/folder", dir);
	assert_int_equal(mkdir(p[2], 0700), 0);
	snprintf(p[3], sizeof(p[3]), "%s/folder/gone", dir);
	assert_int_equal(symlink("/nonexistent/chaff-test", p[3]), 0);
	char file[600];
	snprintf(file, sizeof(file), "%s/folder/b", dir);
	put_file(file, "Subject: b\n\nbody\n");

	char *paths[] = {p[1], p[2]};
	char err[512] = "";
	struct input *in;
	assert_int_equal(input_open(&in, paths, 2, err, sizeof(err)), 0);
	uint64_t total;
	assert_int_equal(input_check(in, &total, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "index:2: expected 'spam PATH' or 'ham PATH'"));
	/* the index's error is no file without a class; the folder's are */
	assert_string_equal(input_unlabelled(in), file);
	struct input_msg m;
	/* index line 1, the error of line 2, line 3; then the folder in name
	 * order: b, and the link that points nowhere */
	assert_int_equal(input_next(in, &m, err, sizeof(err)), 1);
	assert_int_equal(m.label, CHAFF_SPAM);
	assert_int_equal(input_next(in, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "index:2:"));
	assert_int_equal(input_next(in, &m, err, sizeof(err)), 1);
	assert_int_equal(m.label, CHAFF_HAM);
	assert_int_equal(input_next(in, &m, err, sizeof(err)), 1);
	assert_string_equal(m.path, file);
	assert_int_equal(input_next(in, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "folder/gone: No such file or directory"));
	assert_int_equal(input_next(in, &m, err, sizeof(err)), 0);
	input_close(in);

	unlink(file);
	unlink(p[3]);
	rmdir(p[2]);
	unlink(p[1]);
	unlink(p[0]);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_whole_file_reads),
	        cmocka_unit_test(test_mbox_from_lines_unquoted),
	        cmocka_unit_test(test_small_file_cut_short),
	        cmocka_unit_test(test_large_file_cut_short),
	        cmocka_unit_test(test_listing_errors_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
