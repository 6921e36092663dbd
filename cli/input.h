/*
 * Message sources for the command line: single message files, mbox files
 * (mboxo and mboxrd), Maildir and plain folders, gzip-compressed files of
 * any of these, and standard input.
 */
#ifndef CHAFF_INPUT_H
#define CHAFF_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct input_msg {
	const char *data;
	size_t len;
	const char *path;  /* file it came from ("-" for stdin) */
	size_t index;      /* 0-based position inside an mbox, else 0 */
	bool in_mbox;      /* one of several messages of an mbox */
	int label;         /* CHAFF_SPAM or CHAFF_HAM from a TREC index, else -1 */
};

struct input;

/* Opens the list of paths (empty list or "-": standard input). Returns 0,
 * or -1 with a message in errbuf. */
int input_open(struct input **out, char *const *paths, size_t npaths, char *errbuf,
               size_t errlen);
/*
 * The next message: 1 when *msg was filled (valid until the next call),
 * 0 at the end, -1 when a path could not be read: errbuf says why and the
 * caller decides whether to go on (the next call moves past it).
 */
int input_next(struct input *in, struct input_msg *msg, char *errbuf, size_t errlen);
/* True when data starts as a mail message does: a header field ("Name:"),
 * after an mbox envelope line if there is one. Binary files and bare text
 * do not. */
bool input_is_mail(const char *data, size_t len);
/* True when data holds nothing but white space, after an mbox envelope
 * line if there is one. */
bool input_is_blank(const char *data, size_t len);
/* Why data is no message to learn ("empty message", or "not a mail
 * message ..."), or NULL when it is one: what chaff train, filter --learn
 * and serve's training addresses all refuse. */
const char *input_refusal(const char *data, size_t len);
/* True when the input is plainly many messages (see cli_bulk_heap): it
 * names at least CLI_BULK_MESSAGES files (an index or a folder does, most
 * often), or files of at least CLI_BULK_BYTES together (an mbox). Never
 * for standard input alone. */
bool input_is_bulk(const struct input *in);
/* Checks before any work that every file can be read, and sums their
 * sizes (compressed size for .gz). 0, or -1 with errbuf saying which. */
int input_check(struct input *in, uint64_t *total, char *errbuf, size_t errlen);
/* The first path whose messages have no class of their own (anything
 * but the lines of an index; "-" for standard input), or NULL when an
 * index names every one. */
const char *input_unlabelled(const struct input *in);
/* Bytes read so far from files (compressed size for .gz). */
size_t input_bytes(const struct input *in);
void input_close(struct input *in);

#endif
