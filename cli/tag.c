/*
 * The verdict headers that chaff filter and chaff serve add to a message:
 * SpamAssassin's X-Spam-Flag, X-Spam-Status and X-Spam-Level, so existing
 * procmail and Sieve rules work unchanged, and chaff's own X-Chaff-Score
 * and X-Chaff-Verdict.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tag.h"

/* Whether a line (without its line end) is a header field: a name of
 * visible bytes other than ':', perhaps spaces (old syntax), then ':'.
 * The header block ends at the first line that is neither this nor a
 * continuation, blank or not. */
static bool field_line(const char *line, size_t n)
{
	size_t k = 0;
	while (k < n && line[k] != ':' && (unsigned char)line[k] > ' ' &&
	       (unsigned char)line[k] < 0x7f)
		k++;
	if (k == 0)
		return false;
	while (k < n && (line[k] == ' ' || line[k] == '\t'))
		k++;
	return k < n && line[k] == ':';
}

/* X-Spam-Level's stars, as SpamAssassin writes one per point of its score
 * against a usual threshold of 5: here five stars stand for the spam
 * cutoff (score / spam_cutoff * 5, at most 50), so a rule such as
 * "^X-Spam-Level: \*\*\*\*\*" matches what chaff calls spam. The verdict
 * settles the side of five: a score a hair below the cutoff must not round
 * up to it. */
static const char *stars(const struct chaff_score *s)
{
	static const char all[] = "**************************************************";
	/* a cutoff of 0 calls everything spam: all the stars */
	double v = s->spam_cutoff > 0 ? s->score / s->spam_cutoff * 5 : 50;
	size_t n = v >= 50 ? 50 : v > 0 ? (size_t)v : 0;
	if (s->verdict == CHAFF_VERDICT_SPAM && n < 5)
		n = 5;
	else if (s->verdict != CHAFF_VERDICT_SPAM && n > 4)
		n = 4;
	return all + (sizeof(all) - 1 - n);
}

/* The new header lines, each ended by eol; returns their length. */
static size_t verdict_headers(char *h, size_t cap, const struct chaff_score *s, const char *eol)
{
	bool spam = s->verdict == CHAFF_VERDICT_SPAM;
	bool ham = s->verdict == CHAFF_VERDICT_HAM;
	const char *verdict = spam ? "spam" : ham ? "ham" : "unsure";
	const char *test = spam ? "SPAM" : ham ? "HAM" : "UNSURE";
	int k = snprintf(h, cap,
	                 "%s%sX-Spam-Status: %s, score=%.3f required=%.3f tests=CHAFF_%s "
	                 "version=chaff-%s%sX-Spam-Level: %s%sX-Chaff-Score: %.6f%s"
	                 "X-Chaff-Verdict: %s%s",
	                 spam ? "X-Spam-Flag: YES" : "", spam ? eol : "", spam ? "Yes" : "No",
	                 s->score, s->spam_cutoff, test, CHAFF_VERSION, eol, stars(s), eol,
	                 s->score, eol, verdict, eol);
	return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}

/* Writes the kept lines [*run, upto) and moves *run there: the lines are
 * written in runs, not one by one, so that a header block of a million
 * lines is a few writes, not a million system calls. */
static int flush_run(cli_write_fn write_all, void *user, const char **run, const char *upto)
{
	if (upto > *run && write_all(user, *run, (size_t)(upto - *run)) < 0)
		return -1;
	*run = upto;
	return 0;
}

int cli_tag_message(const char *msg, size_t len, const struct chaff_score *s,
                    cli_write_fn write_all, void *user)
{
	const char *end = msg + len, *q = msg;
	const char *first_nl = len ? memchr(msg, '\n', len) : NULL;
	/* A leading mbox "From " line stays first. */
	if (len >= 5 && memcmp(msg, "From ", 5) == 0 && first_nl) {
		if (write_all(user, msg, (size_t)(first_nl + 1 - msg)) < 0)
			return -1;
		q = first_nl + 1;
	}
	/* New header lines end as the message's own header lines do (the
	 * envelope line may have been written by other software). */
	const char *hnl = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
	const char *eol = hnl && hnl > q && hnl[-1] == '\r' ? "\r\n" : "\n";
	char h[512];
	size_t hl = verdict_headers(h, sizeof(h), s, eol);
	/* The new header lines go where the tokenizer's header block ends: at
	 * the blank line, or at the first line that is neither a field nor a
	 * continuation, so that the tokenizer reads them as headers (and
	 * ignores them). A message with no blank line at all then needs one
	 * after them. Earlier copies of them are left out up to the blank
	 * line, since a mail reader may still take lines past an odd one for
	 * header fields. */
	bool blank = q < end && (*q == '\n' || (*q == '\r' && q + 1 < end && q[1] == '\n'));
	if (!blank && q < end)
		blank = memmem(q, (size_t)(end - q), "\n\n", 2) ||
		        memmem(q, (size_t)(end - q), "\n\r\n", 3);
	bool put = false, skipping = false, fields = false;
	const char *run = q; /* the kept lines not yet written: [run, q) */
	while (q < end) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		const char *next = nl ? nl + 1 : end;
		size_t ll = (size_t)((nl ? nl : end) - q);
		if (ll && q[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break; /* the blank line: the body starts after it */
		bool cont = (*q == ' ' || *q == '\t') && fields;
		bool field = !cont && field_line(q, ll);
		if (!cont && !field && !put) {
			if (flush_run(write_all, user, &run, q) < 0 || write_all(user, h, hl) < 0)
				return -1;
			put = true;
			/* No blank line anywhere: the body starts here, after
			 * one. So it does after a line led by white space: right
			 * after the new headers it would continue the last of
			 * them (a sender's " ham" appended to X-Chaff-Verdict);
			 * a blank line keeps it, and all after it, in the body,
			 * where the tokenizer has them. */
			if (!blank || *q == ' ' || *q == '\t')
				return write_all(user, eol, strlen(eol)) < 0 ||
				                       write_all(user, q, (size_t)(end - q)) < 0
				               ? -1
				               : 0;
		}
		if (field)
			/* headers chaff owns: an earlier copy (forged by a
			 * sender, or left by an earlier run) must not
			 * survive next to the new one */
			skipping = chaff_tagged_field(q, ll) != 0;
		else if (!cont)
			skipping = false;
		fields = true;
		if (skipping) {
			/* an owned field is left out, line end and all */
			if (flush_run(write_all, user, &run, q) < 0)
				return -1;
			q = run = next;
		} else if (!nl) {
			/* a header block without a final line end */
			q = next;
			if (flush_run(write_all, user, &run, q) < 0 ||
			    write_all(user, eol, strlen(eol)) < 0)
				return -1;
		} else {
			q = next;
		}
	}
	if (flush_run(write_all, user, &run, q) < 0)
		return -1;
	if (!put && write_all(user, h, hl) < 0)
		return -1;
	if (q >= end && write_all(user, eol, strlen(eol)) < 0)
		return -1; /* no body: end the header block */
	return q < end ? write_all(user, q, (size_t)(end - q)) : 0;
}
