/*
 * chaff filter: stdin to stdout with verdict headers, for procmail and
 * Sieve. Rules written for SpamAssassin's X-Spam-Flag and X-Spam-Status
 * work unchanged. The message is read whole before anything is written,
 * and on any failure it is written back exactly as it came.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "common/bigmem.h"
#include "common/io.h"
#include "input.h"
#include "tag.h"

static const char filter_usage[] =
	"usage: chaff filter [--db DIR] [--learn]\n"
	"Copies the message on stdin to stdout with X-Spam-Flag (spam only),\n"
	"X-Spam-Status, X-Spam-Level, X-Chaff-Score and X-Chaff-Verdict headers\n"
	"added; earlier X-Spam-Flag, X-Spam-Status, X-Spam-Level and X-Chaff-*\n"
	"headers are removed. On any error the message is written unchanged and\n"
	"the exit code is 3.\n\n"
	"  --db DIR   the database (default $CHAFF_DB, else ~/.chaff)\n"
	"  --learn    train spam and ham verdicts (not unsure ones) into the database\n";

static int write_all(const char *p, size_t n)
{
	return chaff_write_all_wait(STDOUT_FILENO, p, n) ? 0 : -1;
}

/* Reads stdin whole into b (its bytes: *len). *ok is false when it could
 * not: *oom then says whether memory ran out (the rest of stdin is still
 * there to copy). */
static void read_stdin(struct chaff_buf *b, size_t *len, bool *ok, bool *oom)
{
	size_t n = 0;
	*ok = true;
	*oom = false;
	for (;;) {
		if (chaff_buf_reserve(b, n + 1, n, 1 << 16) != CHAFF_OK) {
			*ok = false;
			*oom = true;
			break;
		}
		ssize_t r = chaff_read_wait(STDIN_FILENO, b->p + n, b->cap - n);
		if (r < 0) {
			*ok = false;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
}

/* The rest of stdin to stdout as it comes, through a fixed buffer: for a
 * message too large to hold, after the part that was read. */
static int copy_rest(void)
{
	static char chunk[1 << 16];
	for (;;) {
		ssize_t r = chaff_read_wait(STDIN_FILENO, chunk, sizeof(chunk));
		if (r <= 0)
			return r < 0 ? -1 : 0;
		if (write_all(chunk, (size_t)r) < 0)
			return -1;
	}
}

static int write_out(void *user, const char *p, size_t n)
{
	(void)user;
	return write_all(p, n);
}

/* Trains one message as the verdict says (autolearn). */
static void learn(chaff_db *db, chaff_classifier *cl, const char *msg, size_t len,
                  enum chaff_class cls)
{
	enum chaff_learned outcome;
	int rc = cli_train_one(db, chaff_classifier_tokenizer(cl), msg, len, cls, &outcome);
	if (rc != CHAFF_OK)
		cli_warn("learning failed: %s", chaff_strerror(rc));
}

/* A fault while classifying (a damaged database file can make the mapped
 * file fault, or trip one of LMDB's assertions, which abort) must still
 * deliver the message: the handler writes it as it came, unless output
 * has begun, and exits with 3. It runs on a stack of its own, so that a
 * stack overflow is caught too. This one static is the handler's only
 * way to reach the message. */
static struct {
	const char *msg;
	size_t len;
	bool sent; /* the tagged message went out (learning may follow) */
} pending;

static void deliver_on_fault(int sig)
{
	(void)sig;
	static const char note[] = "chaff: internal fault; passing the message on unchanged\n";
	static const char late[] =
	        "chaff: internal fault after the message was passed on; nothing was learned\n";
	const char *say = pending.sent ? late : note;
	if (write(STDERR_FILENO, say, strlen(say)) < 0) {
		/* nothing more to do about it here */
	}
	if (pending.msg)
		write_all(pending.msg, pending.len);
	_exit(EXIT_FAIL);
}

static void catch_faults(void)
{
	static const int sigs[] = {SIGBUS, SIGSEGV, SIGABRT, SIGILL, SIGFPE};
	cli_catch_faults(deliver_on_fault, sigs, sizeof(sigs) / sizeof(sigs[0]));
}

/* The database, for writing when learning. One this user may read but
 * not write is still scored against, without learning. */
static chaff_db *open_db(const char *dbpath, bool *autolearn)
{
	if (!*autolearn)
		return cli_db_open(dbpath, CHAFF_DB_READONLY);
	struct chaff_db_options quiet = { .flags = 0 }; /* why it failed is said below */
	chaff_db *db;
	int rc = chaff_db_open(cli_db_path(dbpath), &quiet, &db);
	if (rc == CHAFF_OK)
		return db;
	if (rc != CHAFF_EACCES)
		return cli_db_open(dbpath, 0); /* fails again, saying why */
	db = cli_db_open(dbpath, CHAFF_DB_READONLY);
	if (db) {
		cli_warn("%s cannot be written; scoring without --learn", cli_db_path(dbpath));
		*autolearn = false;
	}
	return db;
}

int cmd_filter(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "learn", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dbpath = NULL;
	bool autolearn = false, bad_usage = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dbpath = optarg; break;
		case 'l': autolearn = true; break;
		case 'h': fputs(filter_usage, stdout); return EXIT_OK;
		default: bad_usage = true; break;
		}
	}
	if (optind < argc) {
		cli_error("'%s': chaff filter reads the message on stdin, not from a file",
		          argv[optind]);
		bad_usage = true;
	}
	/* A reader that goes away early is an error like any other (exit 3
	 * and a message), not a death by SIGPIPE that says nothing. */
	signal(SIGPIPE, SIG_IGN);
	size_t len;
	bool read_ok, oom;
	struct chaff_buf in = {0};
	read_stdin(&in, &len, &read_ok, &oom);
	const char *msg = in.p;
	if (!read_ok) {
		cli_error(oom ? "the message is too large to hold in memory; passing it on unchanged"
		              : "reading the message failed; passing on what was read unchanged");
		int w = msg ? write_all(msg, len) : 0;
		chaff_buf_free(&in);
		if (w == 0 && oom && copy_rest() < 0)
			cli_error("copying the message failed: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (bad_usage) {
		/* a mistyped recipe is an error to see (exit 3), but the mail
		 * still goes on, unchanged, as on any other error */
		fputs(filter_usage, stderr);
		cli_error("usage error; passing the message on unchanged");
		if (write_all(msg, len) < 0)
			cli_error("writing the message failed: %s", strerror(errno));
		chaff_buf_free(&in);
		return EXIT_FAIL;
	}
	pending.msg = msg;
	pending.len = len;
	catch_faults();
	chaff_db *db = open_db(dbpath, &autolearn);
	chaff_classifier *cl = NULL;
	struct chaff_score s;
	int rc = db ? chaff_classifier_new(db, &cl) : CHAFF_EDB;
	if (rc == CHAFF_OK)
		rc = chaff_classify(cl, msg, len, 0, &s);
	int status = EXIT_OK;
	if (rc == CHAFF_OK) {
		pending.msg = NULL; /* from here on, output has begun */
		if (cli_tag_message(msg, len, &s, write_out, NULL) < 0) {
			cli_error("writing the message failed: %s", strerror(errno));
			status = EXIT_FAIL;
		} else if (autolearn && s.verdict != CHAFF_VERDICT_UNSURE &&
		           input_refusal(msg, len)) {
			cli_warn("not learned: %s, as chaff train refuses it",
			         input_refusal(msg, len));
		} else if (autolearn && s.verdict != CHAFF_VERDICT_UNSURE) {
			pending.sent = true;
			learn(db, cl, msg, len,
			      s.verdict == CHAFF_VERDICT_SPAM ? CHAFF_SPAM : CHAFF_HAM);
		}
	} else {
		pending.msg = NULL;
		if (db)
			cli_error("cannot classify: %s; passing the message on unchanged",
			          chaff_strerror(rc));
		else
			cli_error("passing the message on unchanged");
		if (write_all(msg, len) < 0)
			cli_error("writing the message failed: %s", strerror(errno));
		status = EXIT_FAIL;
	}
	chaff_classifier_free(cl);
	chaff_db_close(db);
	chaff_buf_free(&in);
	return status;
}
